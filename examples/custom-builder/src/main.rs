//! `nequip-custom`: the `nequip` command with this crate's builders linked in.
fn main() -> std::process::ExitCode {
    nequip_custom_builder::link();
    nequip_plugins::cli::main()
}
