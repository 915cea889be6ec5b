//! The manifest that sits beside every prepared TorchScript model (`manifest.toml`): what
//! the model is, how to preprocess its input, where its labels come from, and the SHA-256
//! of the TorchScript file.
//!
//! May not: load the model itself (see `classifier`), or trust a file whose hash differs.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;

/// Name of the manifest file inside a model's folder.
pub const MANIFEST_FILE: &str = "manifest.toml";
/// Name of the TorchScript file inside a model's folder.
pub const MODEL_FILE: &str = "model.pt";
/// The manifest format this binary writes and understands. 2 added `embedding_size`: a
/// version-1 model gives no embeddings (it still classifies).
pub const MANIFEST_VERSION: u32 = 2;

/// Where the class names of a model's outputs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelSet {
    /// The 1000 ImageNet-1k classes in torchvision's order, compiled into phototag.
    #[serde(rename = "imagenet-1k")]
    Imagenet1k,
}

/// A model's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub manifest_version: u32,
    /// Name the model is prepared under (`resnet18`, `efficientnet-lite0`, ...).
    pub name: String,
    /// Architecture (`resnet18`, `efficientnet-lite0`).
    pub architecture: String,
    /// True when the weights are trained; false for random test weights.
    pub pretrained: bool,
    /// Where the weights came from (file name and its SHA-256, package, or seed).
    pub source: String,
    /// Square input size the network expects.
    pub input_size: u32,
    /// Shorter side is resized to this before cropping.
    pub resize: u32,
    /// Centre crop size.
    pub crop: u32,
    /// Resampling used for the resize.
    pub interpolation: String,
    /// Per-channel mean (RGB) subtracted after scaling to [0, 1].
    pub mean: [f32; 3],
    /// Per-channel standard deviation (RGB).
    pub std: [f32; 3],
    pub num_classes: usize,
    /// Width of the pooled features the model returns after its logits (its output is
    /// N x (num_classes + embedding_size)); absent for a model prepared before phototag
    /// kept them, which gives no embeddings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_size: Option<u32>,
    pub labels: LabelSet,
    /// SHA-256 of `model.pt`, lower-case hex.
    pub sha256: String,
    /// When it was prepared (seconds since the Unix epoch).
    pub created_unix: u64,
    /// phototag version that prepared it.
    pub phototag_version: String,
}

/// A model prepared before phototag kept its pooled features: it classifies, but gives
/// no embeddings for `similar` and `dupes --near`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("model `{model}` was prepared before phototag kept image embeddings, so it gives none: prepare it again with `phototag model prepare {hint}` (its tags stay the same), then run `phototag retag --embeddings`", hint = crate::model_files::names::prepare_hint(model))]
pub struct NoEmbeddings {
    pub model: String,
}

/// Problems with a manifest or the file it describes.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid model manifest: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: manifest_version {found} is newer than this phototag understands ({MANIFEST_VERSION}); upgrade phototag")]
    TooNew { path: PathBuf, found: u32 },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path} has SHA-256 {actual}, but its manifest says {expected}: the file was changed or damaged after it was prepared; prepare the model again")]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
}

impl Manifest {
    /// Reads and validates a manifest (not the model file's hash: see [`Manifest::verify_file`]).
    pub fn read(path: &Path) -> Result<Self, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let m: Manifest = toml::from_str(&text).map_err(|e| ManifestError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        m.validate(path)?;
        Ok(m)
    }

    /// Checks the values a classifier relies on.
    pub fn validate(&self, path: &Path) -> Result<(), ManifestError> {
        let invalid = |message: String| ManifestError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if self.manifest_version > MANIFEST_VERSION {
            return Err(ManifestError::TooNew {
                path: path.to_path_buf(),
                found: self.manifest_version,
            });
        }
        if self.crop == 0 || self.resize < self.crop || self.input_size != self.crop {
            return Err(invalid(format!(
                "inconsistent sizes: resize {}, crop {}, input_size {} (need resize >= crop = input_size > 0)",
                self.resize, self.crop, self.input_size
            )));
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(invalid(format!(
                "bad normalisation: mean {:?}, std {:?}",
                self.mean, self.std
            )));
        }
        if self.interpolation != "bilinear" {
            return Err(invalid(format!(
                "interpolation `{}` is not supported (only `bilinear`)",
                self.interpolation
            )));
        }
        let expected = match self.labels {
            LabelSet::Imagenet1k => crate::labels::IMAGENET_CLASSES,
        };
        if self.num_classes != expected {
            return Err(invalid(format!(
                "num_classes is {}, but label set {:?} has {expected}",
                self.num_classes, self.labels
            )));
        }
        if self.embedding_size == Some(0) {
            return Err(invalid("embedding_size is 0".into()));
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(format!(
                "sha256 `{}` is not 64 hex digits",
                self.sha256
            )));
        }
        Ok(())
    }

    /// Whether the model returns embeddings, or what to run so that it does.
    pub fn embeddings(&self) -> Result<u32, NoEmbeddings> {
        self.embedding_size.ok_or_else(|| NoEmbeddings {
            model: self.name.clone(),
        })
    }

    /// Writes the manifest atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> Result<(), ManifestError> {
        let text = toml::to_string_pretty(self).map_err(|e| ManifestError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let body = format!(
            "# Written by `phototag model prepare`. phototag checks model.pt against sha256 at every load.\n{text}"
        );
        write_atomic(path, body.as_bytes()).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Checks that `file` hashes to this manifest's `sha256`.
    pub fn verify_file(&self, file: &Path) -> Result<(), ManifestError> {
        let actual = sha256_file(file).map_err(|source| ManifestError::Io {
            path: file.to_path_buf(),
            source,
        })?;
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(ManifestError::HashMismatch {
                path: file.to_path_buf(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl Manifest {
    /// Checks that `bytes`, read from `file`, hash to this manifest's `sha256`.
    pub fn verify_bytes(&self, file: &Path, bytes: &[u8]) -> Result<(), ManifestError> {
        let actual = hex(&Sha256::digest(bytes));
        if !actual.eq_ignore_ascii_case(&self.sha256) {
            return Err(ManifestError::HashMismatch {
                path: file.to_path_buf(),
                expected: self.sha256.clone(),
                actual,
            });
        }
        Ok(())
    }
}

/// SHA-256 of a file, lower-case hex.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            manifest_version: MANIFEST_VERSION,
            name: "resnet18-random".into(),
            architecture: "resnet18".into(),
            pretrained: false,
            source: "seed 7".into(),
            input_size: 224,
            resize: 256,
            crop: 224,
            interpolation: "bilinear".into(),
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            num_classes: 1000,
            embedding_size: Some(512),
            labels: LabelSet::Imagenet1k,
            sha256: "0".repeat(64),
            created_unix: 0,
            phototag_version: "0.1.0".into(),
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let m = sample();
        m.write(&p).unwrap();
        assert_eq!(Manifest::read(&p).unwrap(), m);
    }

    #[test]
    fn refuses_inconsistent_values() {
        let p = Path::new("m.toml");
        let mut m = sample();
        m.crop = 300;
        assert!(matches!(m.validate(p), Err(ManifestError::Invalid { .. })));
        let mut m = sample();
        m.std[1] = 0.0;
        assert!(matches!(m.validate(p), Err(ManifestError::Invalid { .. })));
        let mut m = sample();
        m.num_classes = 10;
        assert!(matches!(m.validate(p), Err(ManifestError::Invalid { .. })));
        let mut m = sample();
        m.manifest_version = MANIFEST_VERSION + 1;
        assert!(matches!(m.validate(p), Err(ManifestError::TooNew { .. })));
        let mut m = sample();
        m.sha256 = "xyz".into();
        assert!(matches!(m.validate(p), Err(ManifestError::Invalid { .. })));
    }

    #[test]
    fn a_version_1_manifest_reads_without_embeddings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let mut m = sample();
        m.manifest_version = 1;
        m.embedding_size = None;
        let text = toml::to_string(&m).unwrap();
        assert!(!text.contains("embedding_size"), "{text}");
        std::fs::write(&p, text).unwrap();
        let read = Manifest::read(&p).unwrap();
        assert_eq!(read, m);
        let err = read.embeddings().unwrap_err().to_string();
        assert!(
            err.contains("phototag model prepare resnet18-random --seed 1")
                && err.contains("retag --embeddings"),
            "{err}"
        );
        assert_eq!(sample().embeddings().unwrap(), 512);
        let mut zero = sample();
        zero.embedding_size = Some(0);
        assert!(matches!(
            zero.validate(&p),
            Err(ManifestError::Invalid { .. })
        ));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(MANIFEST_FILE);
        let text = toml::to_string(&sample()).unwrap() + "surprise = 1\n";
        std::fs::write(&p, text).unwrap();
        let err = Manifest::read(&p).unwrap_err().to_string();
        assert!(err.contains("surprise"), "{err}");
    }

    #[test]
    fn hash_check_catches_a_changed_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(MODEL_FILE);
        std::fs::write(&f, b"abc").unwrap();
        let mut m = sample();
        // SHA-256("abc"), a published test vector.
        m.sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into();
        m.verify_file(&f).unwrap();
        std::fs::write(&f, b"abd").unwrap();
        let err = m.verify_file(&f).unwrap_err();
        assert!(matches!(err, ManifestError::HashMismatch { .. }), "{err}");
        assert!(err.to_string().contains("prepare the model again"));
    }
}
