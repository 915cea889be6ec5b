//! Gives every binary, test and doctest a RUNPATH to the libtorch it was linked against,
//! so nothing needs LD_LIBRARY_PATH (`make install` rewrites it to `$ORIGIN/../lib`), and
//! compiles the small C++ shim (`src/model/shim/optimize.cpp`) that reaches what tch has no
//! binding for (`torch::jit::optimize_for_inference`). When the shim cannot be compiled the
//! build still succeeds, with a warning, and models run unoptimised.
use std::path::PathBuf;

const SHIM: &str = "src/model/shim/optimize.cpp";

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_INCLUDE");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed={SHIM}");
    println!("cargo::rustc-check-cfg=cfg(phototag_shim)");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").ok().map(|lib| {
        std::fs::canonicalize(&lib)
            .map(|p| p.display().to_string())
            .unwrap_or(lib)
    });
    if let Some(lib) = &lib {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    match compile_shim(lib.as_deref()) {
        Ok(()) => println!("cargo:rustc-cfg=phototag_shim"),
        Err(why) => println!(
            "cargo:warning=phototag: the libtorch shim was not built ({why}); models will run without optimize_for_inference"
        ),
    }
}

/// libtorch's include folders, found as torch-sys finds them: `LIBTORCH_INCLUDE`, else
/// `LIBTORCH`, else beside the library folder torch-sys linked.
fn include_root(lib: Option<&str>) -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("LIBTORCH_INCLUDE") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir));
    }
    lib.map(|l| PathBuf::from(l).join(".."))
}

fn compile_shim(lib: Option<&str>) -> Result<(), String> {
    let root = include_root(lib).ok_or("libtorch not found")?;
    let include = root.join("include");
    let api = include.join("torch/csrc/api/include");
    if !include.join("torch/script.h").is_file() {
        return Err(format!("no torch/script.h under {}", include.display()));
    }
    // The same flags torch-sys builds its own wrapper with, so the ABI matches.
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .debug(false)
        .include(&include)
        .include(&api)
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file(SHIM)
        .try_compile("phototag_shim")
        .map_err(|e| e.to_string())
}
