//! A classifier network split where phototag needs it: a body that ends in the pooled
//! features (the visual descriptor `similar` and `dupes --near` compare), and the final
//! linear layer that turns them into class logits. `model prepare` traces
//! [`Network::traced_output`], the logits and the features side by side in one tensor.
//!
//! May not: know an architecture (see `resnet`, `efficientnet`), or reshape with a batch
//! size known at trace time.

use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// A body ending in pooled, flattened features, and the linear layer after it.
#[derive(Debug)]
pub struct Network {
    body: nn::FuncT<'static>,
    fc: nn::Linear,
    /// Dropout before `fc` while training (0 for none); a no-op in eval mode.
    dropout: f64,
    embedding_size: i64,
}

impl Network {
    /// `body` maps N x 3 x H x W to N x `embedding_size` features, which `fc` maps to logits.
    pub fn new(
        body: nn::FuncT<'static>,
        fc: nn::Linear,
        dropout: f64,
        embedding_size: i64,
    ) -> Self {
        Self {
            body,
            fc,
            dropout,
            embedding_size,
        }
    }

    /// Width of the pooled features (ResNet-18: 512, EfficientNet-Lite0: 1280).
    pub fn embedding_size(&self) -> i64 {
        self.embedding_size
    }

    /// The pooled features, N x `embedding_size`: what the final linear layer consumes.
    pub fn features_t(&self, xs: &Tensor, train: bool) -> Tensor {
        xs.apply_t(&self.body, train)
    }

    /// Logits and pooled features from one forward pass (eval mode).
    pub fn logits_and_features(&self, xs: &Tensor) -> (Tensor, Tensor) {
        let features = self.features_t(xs, false);
        (self.fc.forward(&features), features)
    }

    /// What a prepared model returns: N x (classes + `embedding_size`), the logits, then
    /// the features. One tensor rather than a tuple, so every way of running the saved
    /// module (tch's, the optimising shim's) takes it unchanged, and a model prepared
    /// before features were kept is told apart by its width alone.
    pub fn traced_output(&self, xs: &Tensor) -> Tensor {
        let (logits, features) = self.logits_and_features(xs);
        Tensor::cat(&[logits, features], 1)
    }
}

impl ModuleT for Network {
    /// The logits, as the original network computes them.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.features_t(xs, train)
            .dropout(self.dropout, train)
            .apply(&self.fc)
    }
}
