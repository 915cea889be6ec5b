//! What the configuration and the flags need to know about models without loading any:
//! the `auto` name, which names are valid folder names, and torchvision's checkpoint address.
//!
//! May not: touch the models folder or libtorch (see the main crate's `model`).

/// The name that picks the best prepared model.
pub const AUTO: &str = "auto";

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
