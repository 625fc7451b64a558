//! The C ABI of nequip-rs models: `include/nequip_rs.h` is its contract (hand-written; the
//! test `tests/c_header.rs` compiles a C program against it and compares its numbers with
//! [`nequip_core::potential::Potential`]). Each function maps to one method of `Potential`; a
//! Rust panic is caught at the boundary and reported as `NQRS_ERROR_INTERNAL`; the message of
//! the last failure is thread-local (`nqrs_last_error`). A handle serialises calls through a
//! mutex, so one handle may be shared by threads.
//!
//! Built-in builders are linked through [`nequip_plugins::link`]. A downstream crate with its
//! own builders makes its own cdylib: depend on `nequip-capi` and the plugin crate, re-export
//! `pub use nequip_capi::*;` and call the plugin's `link()` from an exported function (README,
//! "C library").

#![allow(clippy::missing_safety_doc)]

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::os::raw::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Mutex;

pub use nequip_core::potential::{Graph, Outputs, Potential, PotentialError, Request};

pub const NQRS_OK: c_int = 0;
pub const NQRS_ERROR_INVALID_ARGUMENT: c_int = 1;
pub const NQRS_ERROR_MODEL_FILE: c_int = 2;
pub const NQRS_ERROR_COMPUTE: c_int = 3;
pub const NQRS_ERROR_INTERNAL: c_int = 4;

/// The opaque handle of the header.
#[allow(non_camel_case_types)]
pub struct nqrs_model {
    potential: Mutex<Potential>,
    type_names: Vec<CString>,
    dtype: CString,
    device: CString,
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// A failure: its status code and message.
struct Failure(c_int, String);

impl From<PotentialError> for Failure {
    fn from(e: PotentialError) -> Self {
        let code = match &e {
            PotentialError::ModelFile(_) | PotentialError::Unsupported { .. } => NQRS_ERROR_MODEL_FILE,
            PotentialError::Input(_) => NQRS_ERROR_INVALID_ARGUMENT,
            PotentialError::Model(_) | PotentialError::Torch(_) => NQRS_ERROR_COMPUTE,
        };
        Failure(code, e.to_string())
    }
}

fn invalid(msg: impl Into<String>) -> Failure {
    Failure(NQRS_ERROR_INVALID_ARGUMENT, msg.into())
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Run `f`, turning errors and panics into a status code and the thread's last error.
fn guard(f: impl FnOnce() -> Result<(), Failure>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => NQRS_OK,
        Ok(Err(Failure(code, msg))) => {
            set_error(&msg);
            code
        }
        Err(panic) => {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned()).unwrap_or_else(|| "unknown panic".into());
            set_error(&format!("internal error in nequip-rs: {what}"));
            NQRS_ERROR_INTERNAL
        }
    }
}

unsafe fn model_ref<'a>(m: *const nqrs_model) -> Result<&'a nqrs_model, Failure> {
    m.as_ref().ok_or_else(|| invalid("the model handle is NULL"))
}

unsafe fn out_ref<'a, T>(p: *mut T, what: &str) -> Result<&'a mut T, Failure> {
    p.as_mut().ok_or_else(|| invalid(format!("the output pointer `{what}` is NULL")))
}

unsafe fn slice<'a, T>(p: *const T, len: usize, what: &str) -> Result<&'a [T], Failure> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(invalid(format!("`{what}` is NULL")));
    }
    Ok(std::slice::from_raw_parts(p, len))
}

/// `n` engine type indices as the model's (i64).
unsafe fn node_types(types: *const i32, n: usize) -> Result<Vec<i64>, Failure> {
    Ok(slice(types, n, "types")?.iter().map(|&t| t as i64).collect())
}

/// `3 n` doubles as `n` vectors.
unsafe fn vec3s(p: *const f64, n: usize, what: &str) -> Result<Vec<[f64; 3]>, Failure> {
    Ok(slice(p, 3 * n, what)?.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect())
}

fn count(n: i64, what: &str) -> Result<usize, Failure> {
    usize::try_from(n).map_err(|_| invalid(format!("`{what}` must be >= 0, got {n}")))
}

fn lock(m: &nqrs_model) -> std::sync::MutexGuard<'_, Potential> {
    // a panic inside a call poisons the mutex; the model itself is immutable, so go on
    m.potential.lock().unwrap_or_else(|p| p.into_inner())
}

/// Copy the requested outputs into the caller's arrays.
unsafe fn write_outputs(o: &Outputs, energy: *mut f64, forces: *mut f64, virial: *mut f64, atom_energies: *mut f64) -> Result<(), Failure> {
    *out_ref(energy, "energy")? = o.energy;
    if let (false, Some(f)) = (forces.is_null(), &o.forces) {
        std::slice::from_raw_parts_mut(forces, 3 * f.len()).copy_from_slice(f.as_flattened());
    }
    if let (false, Some(v)) = (virial.is_null(), &o.virial) {
        std::slice::from_raw_parts_mut(virial, 9).copy_from_slice(v.as_flattened());
    }
    if let (false, Some(a)) = (atom_energies.is_null(), &o.atom_energies) {
        std::slice::from_raw_parts_mut(atom_energies, a.len()).copy_from_slice(a);
    }
    Ok(())
}

#[no_mangle]
pub extern "C" fn nqrs_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

#[no_mangle]
pub extern "C" fn nqrs_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[no_mangle]
pub extern "C" fn nqrs_set_num_threads(n: i32) -> c_int {
    guard(|| {
        if n < 1 {
            return Err(invalid(format!("the number of threads must be >= 1, got {n}")));
        }
        tch::set_num_threads(n);
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_load(path: *const c_char, device: *const c_char, model: *mut *mut nqrs_model) -> c_int {
    guard(|| {
        let out = out_ref(model, "model")?;
        *out = std::ptr::null_mut();
        if path.is_null() {
            return Err(invalid("the model path is NULL"));
        }
        let path = CStr::from_ptr(path).to_str().map_err(|_| invalid("the model path is not UTF-8"))?;
        let device = if device.is_null() { None } else { Some(CStr::from_ptr(device).to_str().map_err(|_| invalid("the device is not UTF-8"))?) };
        nequip_plugins::link();
        let p = Potential::load(Path::new(path), device)?;
        let cstr = |s: &str| CString::new(s).unwrap_or_default();
        let dtype = if p.model_dtype() == tch::Kind::Double { "float64" } else { "float32" };
        let handle = nqrs_model {
            type_names: p.type_names().iter().map(|s| cstr(s)).collect(),
            dtype: cstr(dtype),
            device: cstr(&format!("{:?}", p.device()).to_lowercase().replace("cuda(", "cuda:").replace(')', "")),
            potential: Mutex::new(p),
        };
        *out = Box::into_raw(Box::new(handle));
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_free(model: *mut nqrs_model) {
    if !model.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| drop(Box::from_raw(model))));
    }
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_r_max(model: *const nqrs_model, r_max: *mut f64) -> c_int {
    guard(|| {
        *out_ref(r_max, "r_max")? = lock(model_ref(model)?).r_max();
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_num_types(model: *const nqrs_model, num_types: *mut i32) -> c_int {
    guard(|| {
        *out_ref(num_types, "num_types")? = model_ref(model)?.type_names.len() as i32;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_type_name(model: *const nqrs_model, index: i32, name: *mut *const c_char) -> c_int {
    guard(|| {
        let m = model_ref(model)?;
        let s = usize::try_from(index).ok().and_then(|i| m.type_names.get(i)).ok_or_else(|| invalid(format!("type index {index} is out of range: the model has {} types", m.type_names.len())))?;
        *out_ref(name, "name")? = s.as_ptr();
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_dtype(model: *const nqrs_model, dtype: *mut *const c_char) -> c_int {
    guard(|| {
        *out_ref(dtype, "dtype")? = model_ref(model)?.dtype.as_ptr();
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_device(model: *const nqrs_model, device: *mut *const c_char) -> c_int {
    guard(|| {
        *out_ref(device, "device")? = model_ref(model)?.device.as_ptr();
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_num_layers(model: *const nqrs_model, num_layers: *mut i32) -> c_int {
    guard(|| {
        *out_ref(num_layers, "num_layers")? = lock(model_ref(model)?).num_layers() as i32;
        Ok(())
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_model_energy_shift(model: *const nqrs_model, shift: *mut f64) -> c_int {
    guard(|| {
        *out_ref(shift, "shift")? = lock(model_ref(model)?).energy_shift();
        Ok(())
    })
}

fn request(forces: *mut f64, virial: *mut f64, atom_energies: *mut f64) -> Request {
    Request { forces: !forces.is_null(), virial: !virial.is_null(), atom_energies: !atom_energies.is_null() }
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_compute(
    model: *mut nqrs_model,
    n_atoms: i64,
    positions: *const f64,
    types: *const i32,
    cell: *const f64,
    pbc: *const i32,
    energy: *mut f64,
    forces: *mut f64,
    virial: *mut f64,
    atom_energies: *mut f64,
) -> c_int {
    guard(|| {
        let m = model_ref(model)?;
        let n = count(n_atoms, "n_atoms")?;
        let pos = vec3s(positions, n, "positions")?;
        let types = node_types(types, n)?;
        let cell = if cell.is_null() { None } else { vec3s(cell, 3, "cell")?.try_into().ok() };
        let pbc = if pbc.is_null() { [true; 3] } else { let p = slice(pbc, 3, "pbc")?; [p[0] != 0, p[1] != 0, p[2] != 0] };
        out_ref(energy, "energy")?;
        let o = lock(m).compute(&pos, &types, cell.as_ref(), pbc, request(forces, virial, atom_energies))?;
        write_outputs(&o, energy, forces, virial, atom_energies)
    })
}

#[no_mangle]
pub unsafe extern "C" fn nqrs_compute_graph(
    model: *mut nqrs_model,
    n_nodes: i64,
    types: *const i32,
    n_energy_nodes: i64,
    n_edges: i64,
    edge_index: *const i64,
    edge_vectors: *const f64,
    energy: *mut f64,
    forces: *mut f64,
    virial: *mut f64,
    atom_energies: *mut f64,
) -> c_int {
    guard(|| {
        let m = model_ref(model)?;
        let n = count(n_nodes, "n_nodes")?;
        let ne = count(n_edges, "n_edges")?;
        let n_energy_nodes = count(n_energy_nodes, "n_energy_nodes")?;
        let types = node_types(types, n)?;
        let ei = slice(edge_index, 2 * ne, "edge_index")?;
        let vectors = vec3s(edge_vectors, ne, "edge_vectors")?;
        out_ref(energy, "energy")?;
        let g = Graph { types: &types, n_energy_nodes, centers: &ei[..ne], neighbors: &ei[ne..], vectors: &vectors };
        let o = lock(m).compute_graph(&g, request(forces, virial, atom_energies))?;
        write_outputs(&o, energy, forces, virial, atom_energies)
    })
}
