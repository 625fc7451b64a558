//! Process-wide settings and libtorch helpers for running models: the C allocator's
//! thresholds, an operator census, backward into chosen leaves (the C++ side is
//! `csrc/runtime.cpp`).
//!
//! libtorch's CPU allocator takes every tensor from `malloc` and gives it back on drop. With
//! glibc's defaults, blocks above the (adaptive) mmap threshold are fresh `mmap`s and freed
//! heap tops are trimmed back to the kernel, so a training step that allocates and frees the
//! same few hundred edge-sized tensors each call spends 10–15 % of its time in page faults
//! (measured with `perf` on the toluene example model). [`tune_allocator`] keeps such blocks
//! in the heap for reuse, as PyTorch users get with `jemalloc`/`tcmalloc`. (The `nequip`
//! binary goes further: it links mimalloc in place of glibc's `malloc` for the whole process,
//! `nequip-plugins/src/main.rs`; the settings then only matter to programs without it, such
//! as the benchmarks and tests of this crate.)

use tch::Tensor;

/// Keep allocations below 1 GiB in the heap and never trim freed heap back to the kernel
/// (glibc only; a no-op elsewhere). Call once at start-up, before tensors are allocated.
/// The resident size then stays at the peak of the run, which is what a trainer needs anyway.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 1 << 30;
        const TRIM_THRESHOLD: libc::c_int = libc::c_int::MAX;
        const TOP_PAD: libc::c_int = 64 << 20;
        // SAFETY: mallopt only changes glibc's allocation parameters; it is called before any
        // other thread of ours allocates and its failure (0) leaves the defaults in place.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            libc::mallopt(libc::M_TOP_PAD, TOP_PAD);
        }
    }
}

extern "C" {
    fn nequip_backward_to(loss: *const torch_sys::C_tensor, inputs: *const *const torch_sys::C_tensor, n: usize, err: *mut std::os::raw::c_char, err_len: usize) -> i32;
    fn nequip_op_census_start();
    fn nequip_op_census_stop(buf: *mut std::os::raw::c_char, cap: usize) -> usize;
}

/// Runs `f` while counting the libtorch operators it dispatches (forward ops and autograd
/// backward nodes, nested calls included; `csrc/op_census.cpp`). Returns `f`'s result and
/// `(count, name)` rows, most frequent first; backward nodes are named `[bwd] …`.
/// Not reentrant: one census at a time per process.
pub fn op_census<R>(f: impl FnOnce() -> R) -> (R, Vec<(u64, String)>) {
    // SAFETY: start/stop only register/remove a RecordFunction callback guarded by a mutex.
    unsafe { nequip_op_census_start() };
    let r = f();
    let mut buf = vec![0u8; 1 << 16];
    // SAFETY: the buffer is writable for its length; the callee NUL-terminates within it.
    let mut n = unsafe { nequip_op_census_stop(buf.as_mut_ptr().cast(), buf.len()) };
    if n >= buf.len() {
        buf = vec![0u8; n + 1];
        // a second stop returns the same table (the counts are kept until the next start)
        n = unsafe { nequip_op_census_stop(buf.as_mut_ptr().cast(), buf.len()) };
    }
    let text = String::from_utf8_lossy(&buf[..n.min(buf.len())]);
    let rows = text
        .lines()
        .filter_map(|l| {
            let (c, name) = l.split_once('\t')?;
            Some((c.parse().ok()?, name.to_owned()))
        })
        .collect();
    (r, rows)
}

/// `torch.autograd.backward([loss], inputs=inputs)`: accumulates `d loss / d input` into
/// each input's `.grad` (as `loss.backward()` does for every leaf) and runs only the part of
/// the graph leading to `inputs`. With a force loss and `inputs` = the parameters this skips
/// every derivative back to the positions, which `loss.backward()` would also compute
/// (a leaf that requires grad) and throw away. Inputs that do not require grad are skipped.
pub fn backward_to(loss: &Tensor, inputs: &[Tensor]) -> Result<(), String> {
    let ptrs: Vec<*const torch_sys::C_tensor> = inputs.iter().filter(|t| t.requires_grad()).map(|t| t.as_ptr()).collect();
    let mut err = [0 as std::os::raw::c_char; 1024];
    // SAFETY: the handles are live tch tensors (`at::Tensor*`) for the duration of the call;
    // the callee copies them and writes a NUL-terminated message into `err` on failure.
    let rc = unsafe { nequip_backward_to(loss.as_ptr(), ptrs.as_ptr(), ptrs.len(), err.as_mut_ptr(), err.len()) };
    if rc == 0 {
        Ok(())
    } else {
        // SAFETY: NUL-terminated by the callee.
        Err(unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned())
    }
}
