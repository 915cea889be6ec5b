//! ResNet-18 written with `tch::nn`, with torchvision's parameter names exactly, so a
//! torchvision state dict fills it one-to-one.
//!
//! May not: reshape with a batch size known at trace time (uses `flatten(1, -1)`, so the
//! traced TorchScript accepts any batch size).

use tch::nn::{self, ModuleT};
use tch::Tensor;

use super::network::Network;

/// Width of ResNet-18's pooled features (the flattened `avgpool` output `fc` consumes).
pub const FEATURES: i64 = 512;

fn conv(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        stride,
        padding,
        bias: false,
        ..Default::default()
    };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

fn basic_block(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> impl ModuleT {
    let conv1 = conv(&p / "conv1", c_in, c_out, 3, stride, 1);
    let bn1 = bn(&p / "bn1", c_out);
    let conv2 = conv(&p / "conv2", c_out, c_out, 3, 1, 1);
    let bn2 = bn(&p / "bn2", c_out);
    let downsample = if stride != 1 || c_in != c_out {
        let d = &p / "downsample";
        Some((
            conv(&d / "0", c_in, c_out, 1, stride, 0),
            bn(&d / "1", c_out),
        ))
    } else {
        None
    };
    nn::func_t(move |xs, train| {
        let ys = xs
            .apply(&conv1)
            .apply_t(&bn1, train)
            .relu()
            .apply(&conv2)
            .apply_t(&bn2, train);
        let shortcut = match &downsample {
            Some((c, b)) => xs.apply(c).apply_t(b, train),
            None => xs.shallow_clone(),
        };
        (ys + shortcut).relu()
    })
}

fn layer(p: nn::Path, c_in: i64, c_out: i64, stride: i64) -> impl ModuleT {
    nn::seq_t()
        .add(basic_block(&p / "0", c_in, c_out, stride))
        .add(basic_block(&p / "1", c_out, c_out, 1))
}

/// torchvision's `resnet18(num_classes)`; input N x 3 x H x W, output N x num_classes logits
/// ([`Network::features_t`]: the flattened `avgpool` output, N x 512).
pub fn resnet18(p: &nn::Path, num_classes: i64) -> Network {
    let conv1 = conv(p / "conv1", 3, 64, 7, 2, 3);
    let bn1 = bn(p / "bn1", 64);
    let layer1 = layer(p / "layer1", 64, 64, 1);
    let layer2 = layer(p / "layer2", 64, 128, 2);
    let layer3 = layer(p / "layer3", 128, 256, 2);
    let layer4 = layer(p / "layer4", 256, 512, 2);
    let fc = nn::linear(p / "fc", FEATURES, num_classes, Default::default());
    let body = nn::func_t(move |xs: &Tensor, train| {
        xs.apply(&conv1)
            .apply_t(&bn1, train)
            .relu()
            .max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
            .apply_t(&layer1, train)
            .apply_t(&layer2, train)
            .apply_t(&layer3, train)
            .apply_t(&layer4, train)
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    });
    Network::new(body, fc, 0.0, FEATURES)
}

/// Checkpoint keys that have no VarStore counterpart in this architecture.
pub fn ignored_key(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
}
