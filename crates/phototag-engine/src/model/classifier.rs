//! Runs a prepared TorchScript classifier: loads it once (after checking its hash), optimises
//! it for inference when it can (falling back to the plain module with a warning), warms up
//! the batch sizes it will use, and turns preprocessed images into top-k classes and, for a
//! model that returns them (manifest `embedding_size`), the pooled features after the logits.
//!
//! May not: decode or preprocess images (see `imaging`), or load pickled weights.

use std::time::{Duration, Instant};

use tch::{CModule, Device, Kind, Tensor};

use super::optimized::{OptimizedModule, ShimError};
use phototag_light::labels::{self, Prediction};
use phototag_light::model_files::manifest::{Manifest, ManifestError};
use phototag_light::model_files::store::StoredModel;

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot load TorchScript model {path}: {source}")]
    Load {
        path: std::path::PathBuf,
        #[source]
        source: tch::TchError,
    },
    #[error("cannot read model {path}: {source}")]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model `{model}` failed on a batch of {batch}: {source}")]
    Forward {
        model: String,
        batch: usize,
        #[source]
        source: tch::TchError,
    },
    #[error("optimised model `{model}` failed on a batch of {batch}: {source}")]
    OptimizedForward {
        model: String,
        batch: usize,
        #[source]
        source: ShimError,
    },
    #[error("model `{model}` returned shape {shape:?}, expected [{batch}, {width}]: is the manifest right for this TorchScript file?")]
    BadOutput {
        model: String,
        shape: Vec<i64>,
        batch: usize,
        width: usize,
    },
    #[error("input {index} has {len} values, expected 3x{size}x{size}")]
    BadInput { index: usize, len: usize, size: u32 },
}

/// How to run the model.
#[derive(Debug, Clone, Copy)]
pub struct ClassifierOptions {
    /// Intra-op threads; 0 means all cores.
    pub threads: usize,
    pub device: Device,
    /// Freeze the module and apply `optimize_for_inference` at load time (CPU only). When
    /// that fails the plain module is used and a warning logged.
    pub optimize: bool,
}

impl Default for ClassifierOptions {
    fn default() -> Self {
        Self {
            threads: 0,
            device: Device::Cpu,
            optimize: true,
        }
    }
}

/// The module that runs the forward pass.
enum Engine {
    /// As saved by `model prepare`, run through tch (another device, or no shim).
    Plain(CModule),
    /// Loaded by the shim (on the CPU), frozen and optimised at load time when asked and
    /// that worked, run through the shim.
    Shim {
        module: OptimizedModule,
        optimized: bool,
    },
}

/// A loaded model, ready to classify.
pub struct Classifier {
    engine: Engine,
    manifest: Manifest,
    name: String,
    device: Device,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("name", &self.name)
            .field("optimized", &self.is_optimized())
            .finish()
    }
}

/// The model's answer for one input: its top classes, and its pooled features when the
/// model returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub predictions: Vec<Prediction>,
    /// The pooled features as the model computed them (not normalised).
    pub embedding: Option<Vec<f32>>,
}

/// Forward passes per batch size in `warm_up`.
const WARM_UP_PASSES: usize = 2;

/// Allocations from 1 MiB up (decoded photos, activations of a batch) are mapped and
/// unmapped again instead of staying in glibc's heap, whose threshold otherwise rises to
/// 32 MiB after the first large free: measured, peak RSS indexing 12-megapixel photos fell
/// from 407 to 353 MiB (EfficientNet-Lite0) at no clear cost in speed.
fn fixed_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// Number of threads `threads = 0` means.
pub fn all_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

impl Classifier {
    /// Reads the TorchScript file once, verifies it against its manifest's SHA-256, and loads
    /// it in eval mode: frozen and optimised for inference when `opts.optimize` asks and the
    /// device is the CPU, else (or when optimising fails, with a warning) as saved.
    pub fn load(model: &StoredModel, opts: &ClassifierOptions) -> Result<Self, ClassifyError> {
        let path = model.model_file();
        let bytes = std::fs::read(&path).map_err(|source| ClassifyError::Read {
            path: path.clone(),
            source,
        })?;
        model.manifest.verify_bytes(&path, &bytes)?;
        let threads = if opts.threads == 0 {
            all_cores()
        } else {
            opts.threads
        };
        tch::set_num_threads(threads as i32);
        fixed_mmap_threshold();
        let mut bytes = Some(bytes);
        let mut engine = None;
        if opts.device == Device::Cpu && super::optimized::AVAILABLE {
            match OptimizedModule::load(bytes.as_deref().unwrap_or_default()) {
                Ok(mut module) => {
                    // The file's bytes are not needed once the module is read: they are
                    // gone before freezing makes its copies (load peak -45 MiB, ResNet-18).
                    bytes = None;
                    super::optimized::release_free_heap();
                    let optimized = opts.optimize
                        && match module.optimize() {
                            Ok(()) => true,
                            Err(e) => {
                                tracing::warn!(
                                    model = %model.name,
                                    "cannot optimise the model for inference, running it as saved: {e}"
                                );
                                false
                            }
                        };
                    engine = Some(Engine::Shim { module, optimized });
                }
                Err(e) => tracing::warn!(
                    model = %model.name,
                    "the libtorch shim cannot load the model, loading it through tch: {e}"
                ),
            }
        }
        let engine = match (engine, bytes) {
            (Some(e), _) => e,
            (None, Some(bytes)) => {
                let mut module = CModule::load_data_on_device(&mut bytes.as_slice(), opts.device)
                    .map_err(|source| ClassifyError::Load { path, source })?;
                module.set_eval();
                Engine::Plain(module)
            }
            (None, None) => unreachable!("the bytes are dropped only once the shim has the module"),
        };
        Ok(Self {
            engine,
            manifest: model.manifest.clone(),
            name: model.name.clone(),
            device: opts.device,
        })
    }

    /// Whether the module was frozen and optimised for inference at load time.
    pub fn is_optimized(&self) -> bool {
        matches!(
            self.engine,
            Engine::Shim {
                optimized: true,
                ..
            }
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Runs forward passes at each batch size so the first real batch is not slow: libtorch's
    /// executor profiles each new input shape on its first pass and optimises on the next.
    /// Sizes of 0 are skipped. Returns the time it took.
    pub fn warm_up(&self, batch_sizes: &[usize]) -> Result<Duration, ClassifyError> {
        let start = Instant::now();
        let size = self.manifest.input_size as i64;
        for &n in batch_sizes.iter().filter(|&&n| n > 0) {
            let x = Tensor::zeros([n as i64, 3, size, size], (Kind::Float, self.device));
            for _ in 0..WARM_UP_PASSES {
                let _ = self.forward(&x, n)?;
            }
        }
        Ok(start.elapsed())
    }

    /// Width of the pooled features the model returns after its logits (0: none).
    pub fn embedding_size(&self) -> usize {
        self.manifest.embedding_size.unwrap_or(0) as usize
    }

    /// The whole output, `[batch, num_classes + embedding_size]`.
    fn forward(&self, x: &Tensor, batch: usize) -> Result<Tensor, ClassifyError> {
        let out = match &self.engine {
            Engine::Plain(m) => {
                tch::no_grad(|| m.forward_ts(&[x])).map_err(|source| ClassifyError::Forward {
                    model: self.name.clone(),
                    batch,
                    source,
                })?
            }
            Engine::Shim { module: m, .. } => {
                m.forward(x)
                    .map_err(|source| ClassifyError::OptimizedForward {
                        model: self.name.clone(),
                        batch,
                        source,
                    })?
            }
        };
        let width = self.manifest.num_classes + self.embedding_size();
        if out.size() != [batch as i64, width as i64] {
            return Err(ClassifyError::BadOutput {
                model: self.name.clone(),
                shape: out.size(),
                batch,
                width,
            });
        }
        Ok(out)
    }

    /// Softmax probabilities, `[inputs.len(), num_classes]`, for CHW inputs as made by
    /// `imaging::preprocess` with this model's parameters.
    pub fn probabilities(&self, inputs: &[&[f32]]) -> Result<Tensor, ClassifyError> {
        Ok(self.raw_logits(inputs)?.softmax(-1, Kind::Float))
    }

    /// The model's raw class outputs, `[inputs.len(), num_classes]` on the CPU, for CHW
    /// inputs as made by `imaging::preprocess` with this model's parameters.
    pub fn raw_logits(&self, inputs: &[&[f32]]) -> Result<Tensor, ClassifyError> {
        Ok(self.raw_outputs(inputs)?.0)
    }

    /// The logits, `[inputs.len(), num_classes]`, and the pooled features,
    /// `[inputs.len(), embedding_size]` (None for a model that returns none), on the CPU.
    pub fn raw_outputs(
        &self,
        inputs: &[&[f32]],
    ) -> Result<(Tensor, Option<Tensor>), ClassifyError> {
        let out = self.raw_output(inputs)?;
        let classes = self.manifest.num_classes as i64;
        let logits = out.narrow(1, 0, classes);
        let features = match self.embedding_size() as i64 {
            0 => None,
            d => Some(out.narrow(1, classes, d)),
        };
        Ok((logits, features))
    }

    fn raw_output(&self, inputs: &[&[f32]]) -> Result<Tensor, ClassifyError> {
        let size = self.manifest.input_size;
        let per = 3 * (size as usize) * (size as usize);
        let mut flat = Vec::with_capacity(per * inputs.len());
        for (index, x) in inputs.iter().enumerate() {
            if x.len() != per {
                return Err(ClassifyError::BadInput {
                    index,
                    len: x.len(),
                    size,
                });
            }
            flat.extend_from_slice(x);
        }
        let n = inputs.len();
        let x = Tensor::from_slice(&flat)
            .view([n as i64, 3, size as i64, size as i64])
            .to_device(self.device);
        Ok(self.forward(&x, n)?.to_device(Device::Cpu))
    }

    /// The top `k` classes of each input, most likely first, and its pooled features when
    /// the model returns them: both from one forward pass.
    pub fn classify(&self, inputs: &[&[f32]], k: usize) -> Result<Vec<Answer>, ClassifyError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let (logits, features) = self.raw_outputs(inputs)?;
        let top = top_k(&logits.softmax(-1, Kind::Float), k);
        let mut features = match features {
            Some(f) => rows(&f).into_iter().map(Some).collect(),
            None => vec![None; top.len()],
        }
        .into_iter();
        Ok(top
            .into_iter()
            .map(|predictions| Answer {
                predictions,
                embedding: features.next().flatten(),
            })
            .collect())
    }
}

/// The rows of a `[N, D]` float tensor.
fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    let (n, d) = match t.size().as_slice() {
        [n, d] => (*n as usize, *d as usize),
        _ => return Vec::new(),
    };
    let flat: Vec<f32> = Vec::try_from(t.contiguous().flatten(0, -1)).unwrap_or_default();
    if flat.len() != n * d || d == 0 {
        return Vec::new();
    }
    flat.chunks_exact(d).map(<[f32]>::to_vec).collect()
}

/// Top-k of each row of a `[N, C]` probability tensor.
pub fn top_k(probs: &Tensor, k: usize) -> Vec<Vec<Prediction>> {
    let (n, c) = match probs.size().as_slice() {
        [n, c] => (*n as usize, *c as usize),
        _ => return Vec::new(),
    };
    let k = k.clamp(1, c.max(1));
    let (values, indices) = probs.topk(k as i64, -1, true, true);
    let values: Vec<f32> = Vec::try_from(values.flatten(0, -1)).unwrap_or_default();
    let indices: Vec<i64> = Vec::try_from(indices.flatten(0, -1)).unwrap_or_default();
    (0..n)
        .map(|row| {
            (0..k)
                .filter_map(|j| {
                    let i = row * k + j;
                    let index = *indices.get(i)? as usize;
                    Some(Prediction {
                        rank: j + 1,
                        class: labels::class(index).map(|c| c.name).unwrap_or("?"),
                        index,
                        probability: *values.get(i)?,
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_and_names_classes() {
        let mut p = vec![0.0f32; 2000];
        p[281] = 0.6;
        p[285] = 0.3;
        p[282] = 0.1;
        p[1000 + 967] = 0.9;
        p[1000 + 968] = 0.05;
        p[1000 + 504] = 0.05;
        let t = Tensor::from_slice(&p).view([2, 1000]);
        let r = top_k(&t, 3);
        assert_eq!(r.len(), 2);
        let idx: Vec<usize> = r[0].iter().map(|p| p.index).collect();
        assert_eq!(idx, vec![281, 285, 282]);
        assert_eq!(r[0][0].class, "tabby");
        assert_eq!(r[0][0].rank, 1);
        assert_eq!(r[1][0].class, "espresso");
        assert!((r[0][1].probability - 0.3).abs() < 1e-6);
    }

    #[test]
    fn top_k_clamps_k() {
        let t = Tensor::from_slice(&[0.2f32, 0.8]).view([1, 2]);
        let r = top_k(&t, 10);
        assert_eq!(r[0].len(), 2);
        assert_eq!(r[0][0].index, 1);
    }
}
