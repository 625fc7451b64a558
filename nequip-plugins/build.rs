// Embeds an rpath to libtorch so test binaries run without LD_LIBRARY_PATH (see README, "libtorch").
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
