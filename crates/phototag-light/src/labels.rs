//! The 1000 ImageNet-1k classes in torchvision's order, with WordNet ids and synonyms,
//! compiled in from `data/imagenet_classes.tsv`; and [`Prediction`], one of them as a
//! model ranked it for an image.
//!
//! May not: read files at run time.

use std::sync::OnceLock;

/// One ImageNet class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Index in the model's output (0..1000).
    pub index: usize,
    /// WordNet 3.0 noun id, e.g. `n02123045`.
    pub wnid: &'static str,
    /// torchvision's short name, e.g. `tabby`.
    pub name: &'static str,
    /// The ILSVRC-2012 synset words, e.g. `["tabby", "tabby cat"]`.
    pub synonyms: Vec<&'static str>,
}

/// One class in a model's answer for an image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Prediction {
    /// 1 for the most likely class.
    pub rank: usize,
    /// torchvision's class name.
    pub class: &'static str,
    /// Output index (0..1000).
    pub index: usize,
    /// Softmax probability in [0, 1].
    #[serde(skip)]
    pub probability: f32,
}

const TSV: &str = include_str!("../../../data/imagenet_classes.tsv");

/// Number of classes in ImageNet-1k.
pub const IMAGENET_CLASSES: usize = 1000;

/// All classes, indexed by their output index.
pub fn imagenet() -> &'static [Class] {
    static CLASSES: OnceLock<Vec<Class>> = OnceLock::new();
    CLASSES.get_or_init(|| {
        TSV.lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| {
                let mut f = line.split('\t');
                let (idx, wnid, name, syn) = (f.next(), f.next(), f.next(), f.next());
                // The data file is compiled in and checked by the tests below.
                let index: usize = idx.and_then(|s| s.parse().ok()).unwrap_or(usize::MAX);
                assert_eq!(
                    index,
                    i,
                    "data/imagenet_classes.tsv: line {} out of order",
                    i + 2
                );
                Class {
                    index,
                    wnid: wnid.unwrap_or(""),
                    name: name.unwrap_or(""),
                    synonyms: syn
                        .unwrap_or("")
                        .split(", ")
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect(),
                }
            })
            .collect()
    })
}

/// The class with this output index, if any.
pub fn class(index: usize) -> Option<&'static Class> {
    imagenet().get(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousand_classes_in_torchvision_order() {
        let c = imagenet();
        assert_eq!(c.len(), IMAGENET_CLASSES);
        assert_eq!(c[0].name, "tench");
        assert_eq!(c[281].name, "tabby");
        assert_eq!(c[281].wnid, "n02123045");
        assert_eq!(c[999].name, "toilet tissue");
        assert!(c[281].synonyms.contains(&"tabby cat"));
    }

    #[test]
    fn wnids_are_sorted_and_unique() {
        let c = imagenet();
        for w in c.windows(2) {
            assert!(w[0].wnid < w[1].wnid, "{} !< {}", w[0].wnid, w[1].wnid);
        }
        assert!(c
            .iter()
            .all(|k| k.wnid.len() == 9 && k.wnid.starts_with('n')));
    }
}
