//! Models with libtorch: preparing TorchScript classifiers (`prepare`, `checkpoint`,
//! `resnet`, `efficientnet`, `fetch`) and running them (`classifier`, `optimized`). The
//! models folder and manifests are `phototag_light::model_files`.

pub mod checkpoint;
pub mod classifier;
pub mod efficientnet;
pub mod fetch;
pub mod network;
pub mod optimized;
pub mod prepare;
pub mod resnet;

pub use classifier::{Classifier, ClassifierOptions, ClassifyError};
