//! Models: preparing TorchScript classifiers, their manifests, and running them.

pub mod checkpoint;
pub mod classifier;
pub mod efficientnet;
pub mod fetch;
pub mod manifest;
pub mod optimized;
pub mod prepare;
pub mod resnet;
pub mod store;

pub use classifier::{Classifier, ClassifierOptions, ClassifyError, Prediction};
pub use manifest::Manifest;
pub use store::{ModelStore, StoredModel, AUTO};
