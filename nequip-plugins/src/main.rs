//! The `nequip` command with every built-in linked.
fn main() -> std::process::ExitCode {
    nequip_plugins::link();
    nequip_plugins::cli::main()
}
