//! Gives both binaries, the integration tests and the benches a RUNPATH to the libtorch they
//! were linked against, so nothing needs LD_LIBRARY_PATH (`make install` rewrites it to
//! `$ORIGIN/../lib`). The engine crate's own build script compiles its C++ shim.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let lib = std::fs::canonicalize(&lib)
            .map(|p| p.display().to_string())
            .unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
