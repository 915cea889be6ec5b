//! A TorchScript module loaded from memory without copies and, when asked, frozen and passed
//! through `torch::jit::optimize_for_inference` at load time (conv/batch-norm folding,
//! conv+add+relu fusion, oneDNN weight layouts), through the C++ shim in `shim/optimize.cpp`
//! that `build.rs` compiles: tch 0.26 has no binding for either.
//!
//! May not: verify hashes or check output shapes (the `Classifier` does), or let a C++
//! exception cross into Rust (every shim call reports failure as a message).

use std::ffi::{c_char, c_int, c_void, CStr};

use tch::Tensor;

/// Why the shim could not load or run a module.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ShimError(pub String);

/// Whether this build has the shim (it is skipped, with a build warning, when libtorch's
/// headers were not found).
pub const AVAILABLE: bool = cfg!(phototag_shim);

#[cfg(phototag_shim)]
extern "C" {
    fn phototag_module_load(
        data: *const c_char,
        len: usize,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut c_void;
    fn phototag_module_optimize(module: *mut c_void, err: *mut c_char, err_len: usize) -> c_int;
    fn phototag_module_forward(
        module: *mut c_void,
        input: *mut c_void,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut c_void;
    fn phototag_module_free(module: *mut c_void);
}

const ERR_LEN: usize = 1024;

fn message(buf: &[c_char; ERR_LEN]) -> String {
    // SAFETY: the buffer is zeroed and the shim writes at most ERR_LEN - 1 bytes plus a NUL.
    let s = unsafe { CStr::from_ptr(buf.as_ptr()) };
    let s = s.to_string_lossy();
    // libtorch messages end with a C++ backtrace after the first lines; keep the reason.
    let first: Vec<&str> = s.lines().take(2).collect();
    if first.is_empty() {
        "unknown error".into()
    } else {
        first.join(" ")
    }
}

/// Hands freed heap back to the system, so it does not count in the resident size: after
/// freezing and optimising (copies of every weight), and after a model is unloaded.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// An optimised module owned by the shim (a `torch::jit::Module*` on the heap).
pub struct OptimizedModule {
    ptr: *mut c_void,
}

// SAFETY: a loaded TorchScript module is immutable here; libtorch allows concurrent
// forward calls on one module (tch declares its `CModule` Send and Sync for the same reason).
unsafe impl Send for OptimizedModule {}
unsafe impl Sync for OptimizedModule {}

impl OptimizedModule {
    /// Loads a serialized TorchScript module from memory on the CPU, in eval mode, as saved
    /// (see [`OptimizedModule::optimize`]). `bytes` may be freed as soon as this returns.
    #[cfg(phototag_shim)]
    pub fn load(bytes: &[u8]) -> Result<Self, ShimError> {
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: data/len describe a live slice; err is a writable buffer of ERR_LEN bytes.
        let ptr = unsafe {
            phototag_module_load(
                bytes.as_ptr().cast(),
                bytes.len(),
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if ptr.is_null() {
            return Err(ShimError(message(&err)));
        }
        Ok(Self { ptr })
    }

    #[cfg(not(phototag_shim))]
    pub fn load(_bytes: &[u8]) -> Result<Self, ShimError> {
        Err(ShimError(
            "this build has no libtorch shim (libtorch's headers were not found when it was built)"
                .into(),
        ))
    }

    /// Replaces the module by its frozen and optimised form, then hands the freed heap
    /// back. On failure the module still runs, as saved or frozen (freezing only folds and
    /// inlines; the outputs agree).
    #[cfg(phototag_shim)]
    pub fn optimize(&mut self) -> Result<(), ShimError> {
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: self.ptr is a live module; err is a writable buffer of ERR_LEN bytes.
        let rc = unsafe { phototag_module_optimize(self.ptr, err.as_mut_ptr(), ERR_LEN) };
        release_free_heap();
        if rc != 0 {
            return Err(ShimError(message(&err)));
        }
        Ok(())
    }

    #[cfg(not(phototag_shim))]
    pub fn optimize(&mut self) -> Result<(), ShimError> {
        Err(ShimError("this build has no libtorch shim".into()))
    }

    /// `forward(x)`, run under InferenceMode; the result is an ordinary tensor.
    #[cfg(phototag_shim)]
    pub fn forward(&self, x: &Tensor) -> Result<Tensor, ShimError> {
        let mut err = [0 as c_char; ERR_LEN];
        // SAFETY: self.ptr is a live module; the shim only reads the input tensor and returns
        // a new heap tensor, which Tensor::from_ptr takes ownership of.
        let out = unsafe {
            phototag_module_forward(
                self.ptr,
                x.as_ptr() as *mut c_void,
                err.as_mut_ptr(),
                ERR_LEN,
            )
        };
        if out.is_null() {
            return Err(ShimError(message(&err)));
        }
        Ok(unsafe { Tensor::from_ptr(out.cast()) })
    }

    #[cfg(not(phototag_shim))]
    pub fn forward(&self, _x: &Tensor) -> Result<Tensor, ShimError> {
        Err(ShimError("this build has no libtorch shim".into()))
    }
}

impl Drop for OptimizedModule {
    fn drop(&mut self) {
        #[cfg(phototag_shim)]
        // SAFETY: ptr came from phototag_module_load and is freed once.
        unsafe {
            phototag_module_free(self.ptr)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_crash() {
        if !AVAILABLE {
            eprintln!("SKIPPED garbage_is_an_error_not_a_crash: this build has no libtorch shim");
            return;
        }
        let e = OptimizedModule::load(b"not a TorchScript archive")
            .err()
            .expect("garbage must not load");
        assert!(!e.0.is_empty());
    }
}
