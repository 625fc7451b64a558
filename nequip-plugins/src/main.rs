//! The `nequip` command with every built-in linked.
// mimalloc for the whole process: with its `override` feature its malloc/free replace glibc's
// at link time, so libtorch's tensor allocations use it too (faster for the thousands of
// small tensors a training step allocates and frees; README, "Dependencies and why").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    nequip_plugins::link();
    nequip_plugins::cli::main()
}
