//! Gives every binary, test and doctest a RUNPATH to the libtorch it was linked against,
//! so nothing needs LD_LIBRARY_PATH. `make install` rewrites it to `$ORIGIN/../lib`.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        let lib = std::fs::canonicalize(&lib)
            .map(|p| p.display().to_string())
            .unwrap_or(lib);
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
}
