//! Reads PyTorch state dicts (`torch.save` zip or legacy format) and fills a `tch` VarStore
//! strictly: every variable filled, no unknown key, shapes and dtypes equal.
//!
//! May not: load pickles at classification time (only `model prepare` calls this), or
//! coerce a tensor into a shape or dtype it does not have.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use pytorch_reader::{DType, PytorchReader};
use tch::{Kind, Tensor};

/// Why a checkpoint could not be read or did not fit the architecture.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("checkpoint tensor `{name}` has element type {dtype:?}, which phototag cannot load")]
    UnsupportedDType { name: String, dtype: DType },
    #[error("checkpoint is missing {count} tensor(s) the architecture needs: {names}")]
    Missing { count: usize, names: String },
    #[error("checkpoint has {count} tensor(s) the architecture does not know: {names}")]
    Unexpected { count: usize, names: String },
    #[error("tensor `{name}`: checkpoint has shape {found:?} {found_kind:?}, the architecture wants {expected:?} {expected_kind:?}")]
    Mismatch {
        name: String,
        found: Vec<i64>,
        found_kind: Kind,
        expected: Vec<i64>,
        expected_kind: Kind,
    },
    #[error("copying tensor `{name}`: {source}")]
    Torch {
        name: String,
        #[source]
        source: tch::TchError,
    },
}

fn kind_of(dtype: DType) -> Option<Kind> {
    Some(match dtype {
        DType::F64 => Kind::Double,
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::I64 => Kind::Int64,
        DType::I32 => Kind::Int,
        DType::I16 => Kind::Int16,
        DType::I8 => Kind::Int8,
        DType::U8 => Kind::Uint8,
        DType::Bool => Kind::Bool,
        DType::U64 | DType::U32 | DType::U16 => return None,
    })
}

/// Reads every tensor of a state dict into CPU tensors, keyed by their dotted names.
pub fn read_state_dict(path: &Path) -> Result<BTreeMap<String, Tensor>, CheckpointError> {
    let read_err = |reason: String| CheckpointError::Read {
        path: path.to_path_buf(),
        reason,
    };
    let reader = PytorchReader::new(path).map_err(|e| read_err(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, t) in reader.tensors() {
        let kind = kind_of(t.dtype()).ok_or_else(|| CheckpointError::UnsupportedDType {
            name: name.clone(),
            dtype: t.dtype(),
        })?;
        let bytes = t.read().map_err(|e| read_err(e.to_string()))?;
        let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
        let tensor =
            Tensor::f_from_data_size(&bytes, &shape, kind).map_err(|e| CheckpointError::Torch {
                name: name.clone(),
                source: e,
            })?;
        out.insert(name.clone(), tensor);
    }
    Ok(out)
}

fn list(names: &BTreeSet<String>) -> String {
    let mut s: Vec<&str> = names.iter().map(String::as_str).take(8).collect();
    if names.len() > 8 {
        s.push("...");
    }
    s.join(", ")
}

/// Copies `state` into the variables of `vs`, refusing any difference. Checkpoint keys for
/// which `ignore` returns true (e.g. batch norm's `num_batches_tracked`) may be absent from
/// the VarStore; every other key must match one variable exactly.
pub fn fill_strict(
    vs: &tch::nn::VarStore,
    state: &BTreeMap<String, Tensor>,
    ignore: impl Fn(&str) -> bool,
) -> Result<(), CheckpointError> {
    let vars = vs.variables();
    let missing: BTreeSet<String> = vars
        .keys()
        .filter(|k| !state.contains_key(*k))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(CheckpointError::Missing {
            count: missing.len(),
            names: list(&missing),
        });
    }
    let unexpected: BTreeSet<String> = state
        .keys()
        .filter(|k| !vars.contains_key(*k) && !ignore(k))
        .cloned()
        .collect();
    if !unexpected.is_empty() {
        return Err(CheckpointError::Unexpected {
            count: unexpected.len(),
            names: list(&unexpected),
        });
    }
    tch::no_grad(|| {
        for (name, var) in vars.iter() {
            let src = &state[name];
            if src.size() != var.size() || src.kind() != var.kind() {
                return Err(CheckpointError::Mismatch {
                    name: name.clone(),
                    found: src.size(),
                    found_kind: src.kind(),
                    expected: var.size(),
                    expected_kind: var.kind(),
                });
            }
            let mut var = var.shallow_clone();
            var.f_copy_(src).map_err(|e| CheckpointError::Torch {
                name: name.clone(),
                source: e,
            })?;
        }
        Ok(())
    })
}
