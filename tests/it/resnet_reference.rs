//! ResNet-18 import against real PyTorch: a torchvision-format state dict, imported strictly,
//! traced at batch 1 and saved, must reproduce torchvision's logits at batch 2.

use crate::common;

use phototag_engine::model::checkpoint::{self, CheckpointError};
use phototag_engine::model::prepare::{self, PrepareError, Recipe};
use phototag_engine::model::resnet;
use phototag_light::model_files::ModelStore;
use tch::nn::{self, ModuleT};
use tch::{CModule, Device, Tensor};

const TEST: &str = "resnet_reference";

#[test]
fn torchvision_checkpoint_traced_matches_pytorch_logits() {
    let Some(dir) = common::shared("models", TEST) else {
        return;
    };
    let pth = dir.join("resnet18-tvformat-test.pth");
    let input = Tensor::read_npy(dir.join("resnet18-tvformat-test.input.npy")).unwrap();
    let expected = Tensor::read_npy(dir.join("resnet18-tvformat-test.logits.npy")).unwrap();
    assert_eq!(input.size(), [2, 3, 224, 224]);

    let tmp = tempfile::tempdir().unwrap();
    let store = ModelStore::new(tmp.path().join("models"));
    let recipe = Recipe::Resnet18 {
        from: Some(pth),
        name: Some("tvformat-test".into()),
        url: String::new(),
    };
    let m = prepare::prepare(&store, tmp.path(), &recipe).unwrap();
    assert_eq!(m.manifest.architecture, "resnet18");
    assert!(
        m.manifest.source.contains("not torchvision's"),
        "{}",
        m.manifest.source
    );

    // The saved TorchScript was traced at batch 1; run it at batch 2. It returns the
    // logits, then the pooled features (512).
    let module = CModule::load(m.model_file()).unwrap();
    let out = tch::no_grad(|| module.forward_ts(&[&input])).unwrap();
    assert_eq!(out.size(), [2, 1000 + resnet::FEATURES]);
    let diff = common::max_abs_diff(&out.narrow(1, 0, 1000), &expected);
    eprintln!("resnet18 traced (batch 2) vs torchvision: max abs diff {diff:.3e}");
    assert!(diff <= 1e-4, "max abs diff {diff}");
}

#[test]
fn a_checkpoint_that_is_not_torchvisions_needs_a_name() {
    let Some(dir) = common::shared("models", TEST) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let store = ModelStore::new(tmp.path());
    let recipe = Recipe::Resnet18 {
        from: Some(dir.join("resnet18-tvformat-test.pth")),
        name: None,
        url: String::new(),
    };
    let err = prepare::prepare(&store, tmp.path(), &recipe).unwrap_err();
    assert!(matches!(err, PrepareError::NotOfficial { .. }), "{err}");
    assert!(err.to_string().contains("--name"), "{err}");
    assert!(store.list().unwrap().is_empty(), "nothing may be prepared");
}

#[test]
fn strict_loading_refuses_missing_unknown_and_misshapen_tensors() {
    let Some(dir) = common::shared("models", TEST) else {
        return;
    };
    let state = checkpoint::read_state_dict(&dir.join("resnet18-tvformat-test.pth")).unwrap();
    assert_eq!(state.len(), 122);
    let fresh = || {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = resnet::resnet18(&vs.root(), 1000);
        (vs, net)
    };

    // Everything present: fills, and the running statistics really are copied.
    let (vs, _net) = fresh();
    checkpoint::fill_strict(&vs, &state, resnet::ignored_key).unwrap();
    let rm = &vs.variables()["bn1.running_mean"];
    assert!(common::max_abs_diff(rm, &state["bn1.running_mean"]) == 0.0);

    let mut missing = state
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect::<std::collections::BTreeMap<_, _>>();
    missing.remove("layer3.1.bn2.running_var");
    let (vs, _net) = fresh();
    let e = checkpoint::fill_strict(&vs, &missing, resnet::ignored_key).unwrap_err();
    assert!(
        matches!(e, CheckpointError::Missing { .. })
            && e.to_string().contains("layer3.1.bn2.running_var"),
        "{e}"
    );

    let mut extra = state
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect::<std::collections::BTreeMap<_, _>>();
    extra.insert(
        "fc.extra".into(),
        Tensor::zeros([3], (tch::Kind::Float, Device::Cpu)),
    );
    let (vs, _net) = fresh();
    let e = checkpoint::fill_strict(&vs, &extra, resnet::ignored_key).unwrap_err();
    assert!(
        matches!(e, CheckpointError::Unexpected { .. }) && e.to_string().contains("fc.extra"),
        "{e}"
    );

    let mut shaped = state
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect::<std::collections::BTreeMap<_, _>>();
    shaped.insert(
        "fc.bias".into(),
        Tensor::zeros([1], (tch::Kind::Float, Device::Cpu)),
    );
    let (vs, _net) = fresh();
    let e = checkpoint::fill_strict(&vs, &shaped, resnet::ignored_key).unwrap_err();
    assert!(matches!(e, CheckpointError::Mismatch { .. }), "{e}");

    let mut kinds = state
        .iter()
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect::<std::collections::BTreeMap<_, _>>();
    let w = kinds["fc.bias"].to_kind(tch::Kind::Double);
    kinds.insert("fc.bias".into(), w);
    let (vs, _net) = fresh();
    let e = checkpoint::fill_strict(&vs, &kinds, resnet::ignored_key).unwrap_err();
    assert!(matches!(e, CheckpointError::Mismatch { .. }), "{e}");
}

#[test]
fn eager_import_matches_before_tracing_too() {
    let Some(dir) = common::shared("models", TEST) else {
        return;
    };
    let state = checkpoint::read_state_dict(&dir.join("resnet18-tvformat-test.pth")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = resnet::resnet18(&vs.root(), 1000);
    checkpoint::fill_strict(&vs, &state, resnet::ignored_key).unwrap();
    let input = Tensor::read_npy(dir.join("resnet18-tvformat-test.input.npy")).unwrap();
    let expected = Tensor::read_npy(dir.join("resnet18-tvformat-test.logits.npy")).unwrap();
    let out = tch::no_grad(|| net.forward_t(&input, false));
    let diff = common::max_abs_diff(&out, &expected);
    eprintln!("resnet18 eager vs torchvision: max abs diff {diff:.3e}");
    assert!(diff <= 1e-4, "max abs diff {diff}");
}

#[test]
fn prepared_model_gives_pytorchs_features_plain_and_optimised() {
    let Some(dir) = common::shared("models", TEST) else {
        return;
    };
    let input = Tensor::read_npy(dir.join("resnet18-tvformat-test.input.npy")).unwrap();
    let logits = Tensor::read_npy(dir.join("resnet18-tvformat-test.logits.npy")).unwrap();
    let features = Tensor::read_npy(dir.join("resnet18-tvformat-test.features.npy")).unwrap();
    assert_eq!(features.size(), [2, 512]);
    let tmp = tempfile::tempdir().unwrap();
    let store = ModelStore::new(tmp.path().join("models"));
    let recipe = Recipe::Resnet18 {
        from: Some(dir.join("resnet18-tvformat-test.pth")),
        name: Some("tvformat-test".into()),
        url: String::new(),
    };
    let m = prepare::prepare(&store, tmp.path(), &recipe).unwrap();
    assert_eq!(m.manifest.embedding_size, Some(512));
    let chw = common::chw_inputs(&input);
    let refs: Vec<&[f32]> = chw.iter().map(Vec::as_slice).collect();
    for (optimize, c) in common::assert_outputs_match(TEST, &m, &input, &logits, &features, 1e-4) {
        assert_eq!(c.is_optimized(), optimize);
        // What the classification flow stores comes from these features.
        let answers = c.classify(&refs, 3).unwrap();
        let first: Vec<f32> = Vec::try_from(features.get(0)).unwrap();
        let stored = phototag_light::vectors::Embedding::quantize(&first).unwrap();
        let got =
            phototag_light::vectors::Embedding::quantize(answers[0].embedding.as_ref().unwrap())
                .unwrap();
        assert!(stored.as_ref().cosine(&got.as_ref()) > 0.9999);
    }
}
