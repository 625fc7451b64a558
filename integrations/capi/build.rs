// Embeds an rpath to libtorch into libnequip_capi.so and the test binaries, so they run without
// LD_LIBRARY_PATH (see README, "libtorch"), and gives the shared library its soname.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnequip_capi.so");
}
