// 1. Embeds an rpath to libtorch so test binaries run without LD_LIBRARY_PATH (see README,
//    "libtorch").
// 2. Compiles the native convolution kernel (csrc/uvu_native.cpp, called from
//    src/e3nn/uvu_native.rs) against the libtorch that torch-sys found, with the flags
//    torch-sys uses for its own C++ wrapper; with it the libtorch helpers of src/runtime.rs
//    (csrc/runtime.cpp: the operator census, backward into chosen leaves).
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=csrc/uvu_native.cpp");
    println!("cargo:rerun-if-changed=csrc/runtime.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let lib = PathBuf::from(
        std::env::var("DEP_TCH_LIBTORCH_LIB")
            .expect("torch-sys did not report its libtorch lib directory (DEP_TCH_LIBTORCH_LIB)"),
    );
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let include = lib.parent().map(|p| p.join("include")).unwrap_or_default();
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let mut build = cc::Build::new();
    // at::parallel_for is a header template over `#pragma omp parallel` (libtorch's Linux
    // builds use OpenMP; torch-sys links libgomp): without -fopenmp it silently runs serially
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        build.flag("-fopenmp");
    }
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .opt_level(3)
        // reassociation lets the dot products over the channels vectorise (NaN and Inf still
        // propagate: no -ffinite-math-only)
        .flag("-fno-math-errno")
        .flag("-fassociative-math")
        .flag("-fno-signed-zeros")
        .flag("-fno-trapping-math")
        .file("csrc/uvu_native.cpp")
        .file("csrc/runtime.cpp")
        .compile("nequip_uvu_native");
}
