//! The label hierarchy: every ImageNet class is a WordNet 3.0 synset, and a search word
//! covers every class at or below the synsets it names (`dog` → the 118 breeds, `cat` →
//! domestic and big cats). Compiled in from `data/imagenet_hierarchy.tsv` (hypernyms, made
//! by `data/gen_hierarchy.py`) and the class words of [`crate::labels`]. A word matches a
//! synset when it equals one of its words as a whole (case-insensitive; `-`, `_` and
//! spaces alike; regular and irregular plurals), so `dog` is not `hot dog` and `cat` is
//! not `catamaran`. (Close words for a term that matches nothing: `suggest`.)
//!
//! May not: parse queries, touch the catalog, or read files at run time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::OnceLock;

use crate::labels;

const TSV: &str = include_str!("../../../../data/imagenet_hierarchy.tsv");

/// One WordNet synset: an ImageNet class or a hypernym of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synset {
    /// WordNet 3.0 noun id, e.g. `n02084071`.
    pub wnid: &'static str,
    /// Its words, most common first (for a class: torchvision's name, then the synset's).
    pub words: Vec<&'static str>,
    /// Direct hypernyms (indexes into the hierarchy); several where WordNet has several.
    pub parents: Vec<usize>,
    /// The ImageNet class it is, if it is one.
    pub class: Option<usize>,
}

/// What a term names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resolved {
    /// The synsets whose words it matched (indexes), in hierarchy order.
    pub synsets: Vec<usize>,
    /// Every class at or below them, sorted, each once.
    pub classes: Vec<usize>,
}

/// The synsets and the lookups built from them (once per process).
#[derive(Debug)]
pub struct Hierarchy {
    synsets: Vec<Synset>,
    /// class index → synset index.
    of_class: Vec<usize>,
    /// normalised word (and WNID) → synsets having it.
    words: HashMap<String, Vec<usize>>,
    /// irregular plural → singular (last words only).
    plurals: HashMap<&'static str, &'static str>,
}

/// Lower case, `-` and `_` as spaces, runs of spaces made one.
pub fn normalize(s: &str) -> String {
    s.to_lowercase()
        .replace(['-', '_'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The regular English noun endings WordNet's morphology strips (plural → singular).
const SUFFIXES: [(&str, &str); 8] = [
    ("ses", "s"),
    ("xes", "x"),
    ("zes", "z"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("men", "man"),
    ("ies", "y"),
    ("s", ""),
];

impl Hierarchy {
    /// The hierarchy compiled into the binary.
    pub fn get() -> &'static Hierarchy {
        static H: OnceLock<Hierarchy> = OnceLock::new();
        H.get_or_init(|| Hierarchy::build(TSV))
    }

    fn build(tsv: &'static str) -> Hierarchy {
        let mut rows: Vec<(&'static str, &'static str, &'static str)> = Vec::new();
        let mut plurals = HashMap::new();
        for line in tsv.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let f: Vec<&'static str> = line.split('\t').collect();
            match f.as_slice() {
                ["S", wnid, parents, words] => rows.push((wnid, parents, words)),
                ["X", plural, singular] => {
                    plurals.insert(*plural, *singular);
                }
                // The file is generated and compiled in; the tests below check it.
                _ => panic!("data/imagenet_hierarchy.tsv: bad line {line:?}"),
            }
        }
        let index: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, r)| (r.0, i)).collect();
        let mut synsets: Vec<Synset> = rows
            .iter()
            .map(|(wnid, parents, words)| Synset {
                wnid,
                words: words.split(", ").filter(|w| !w.is_empty()).collect(),
                parents: parents
                    .split(' ')
                    .filter(|p| !p.is_empty())
                    .map(|p| index[p])
                    .collect(),
                class: None,
            })
            .collect();
        let mut of_class = Vec::with_capacity(labels::IMAGENET_CLASSES);
        for c in labels::imagenet() {
            let s = index[c.wnid];
            let mut words = vec![c.name];
            for w in &c.synonyms {
                if !words.iter().any(|x| x.eq_ignore_ascii_case(w)) {
                    words.push(w);
                }
            }
            synsets[s].words = words;
            synsets[s].class = Some(c.index);
            of_class.push(s);
        }
        let mut words: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in synsets.iter().enumerate() {
            for w in s.words.iter().copied().chain([s.wnid]) {
                let list = words.entry(normalize(w)).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
            }
        }
        Hierarchy {
            synsets,
            of_class,
            words,
            plurals,
        }
    }

    /// All synsets, sorted by WNID.
    pub fn synsets(&self) -> &[Synset] {
        &self.synsets
    }

    /// The synset of an ImageNet class.
    pub fn of_class(&self, class: usize) -> Option<&Synset> {
        self.of_class.get(class).map(|&s| &self.synsets[s])
    }

    /// Every synset above a class (all paths of WordNet's multiple inheritance), nearest
    /// first, each once; the class itself first.
    pub fn ancestors(&self, class: usize) -> Vec<&Synset> {
        let Some(&start) = self.of_class.get(class) else {
            return Vec::new();
        };
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        let mut out = Vec::new();
        while let Some(s) = queue.pop_front() {
            out.push(&self.synsets[s]);
            for &p in &self.synsets[s].parents {
                if seen.insert(p) {
                    queue.push_back(p);
                }
            }
        }
        out
    }

    /// The synsets a term names: its words as written, else their singular.
    fn synsets_named(&self, term: &str) -> Vec<usize> {
        let t = normalize(term);
        if let Some(found) = self.words.get(&t) {
            return found.clone();
        }
        let (head, last) = match t.rsplit_once(' ') {
            Some((h, l)) => (format!("{h} "), l),
            None => (String::new(), t.as_str()),
        };
        let mut singulars: Vec<String> = Vec::new();
        if let Some(s) = self.plurals.get(last) {
            singulars.push(s.to_lowercase());
        }
        for (suffix, with) in SUFFIXES {
            if let Some(stem) = last.strip_suffix(suffix) {
                if !stem.is_empty() {
                    singulars.push(format!("{stem}{with}"));
                }
            }
        }
        let mut out = Vec::new();
        for s in singulars {
            for &i in self.words.get(&format!("{head}{s}")).into_iter().flatten() {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// The classes a term covers: those at or below every synset it names.
    pub fn resolve(&self, term: &str) -> Resolved {
        let synsets = self.synsets_named(term);
        if synsets.is_empty() {
            return Resolved::default();
        }
        let classes = (0..self.of_class.len())
            .filter(|&c| self.is_below(self.of_class[c], &synsets))
            .collect();
        Resolved { synsets, classes }
    }

    /// Whether synset `s` is one of `targets` or below one of them.
    fn is_below(&self, s: usize, targets: &[usize]) -> bool {
        let mut stack = vec![s];
        let mut seen = HashSet::new();
        while let Some(x) = stack.pop() {
            if targets.contains(&x) {
                return true;
            }
            if seen.insert(x) {
                stack.extend(&self.synsets[x].parents);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(classes: &[usize]) -> Vec<&'static str> {
        classes
            .iter()
            .map(|&c| labels::imagenet()[c].name)
            .collect()
    }

    #[test]
    fn every_class_is_in_the_hierarchy_under_entity() {
        let h = Hierarchy::get();
        assert!(h.synsets().len() > 1000 && h.synsets().len() < 3000);
        for c in 0..labels::IMAGENET_CLASSES {
            let a = h.ancestors(c);
            assert_eq!(a[0].class, Some(c));
            assert!(
                a.iter().any(|s| s.wnid == "n00001740"),
                "entity is above all"
            );
        }
        assert!(TSV.len() < 200_000, "the data file stays compact");
    }

    #[test]
    fn dog_is_the_118_breeds_and_not_hot_dog() {
        let r = Hierarchy::get().resolve("dog");
        assert_eq!(r.classes, (151..=268).collect::<Vec<_>>());
        let n = names(&r.classes);
        assert!(n.contains(&"pug") && n.contains(&"Pembroke") && n.contains(&"Cardigan"));
        assert!(!n.contains(&"hotdog"));
        assert_eq!(Hierarchy::get().resolve("Dogs").classes, r.classes);
        assert_eq!(Hierarchy::get().resolve("hot dog").classes, vec![934]);
    }

    #[test]
    fn cat_is_domestic_and_wild_cats_not_catamaran() {
        let r = Hierarchy::get().resolve("cat");
        let n = names(&r.classes);
        for c in [
            "tabby",
            "tiger cat",
            "Persian cat",
            "lion",
            "tiger",
            "cougar",
            "lynx",
        ] {
            assert!(n.contains(&c), "{c} in {n:?}");
        }
        assert!(!n.contains(&"catamaran") && !n.contains(&"hotdog"));
        assert!(n.len() < 20, "{n:?}");
        assert_eq!(Hierarchy::get().resolve("cats").classes, r.classes);
    }

    #[test]
    fn broad_words_cover_their_kinds() {
        let h = Hierarchy::get();
        let has = |term: &str, class: &str| names(&h.resolve(term).classes).contains(&class);
        assert!(has("bird", "goldfinch") && has("bird", "ostrich"));
        assert!(has("vehicle", "sports car") && has("vehicle", "canoe"));
        assert!(has("food", "hotdog") && has("food", "pizza"));
        assert!(has("fruit", "banana") && has("fruit", "strawberry"));
        assert!(has("instrument", "violin") && has("instruments", "grand piano"));
        assert!(has("building", "church") && has("buildings", "barn"));
        assert!(has("animal", "tabby") && has("animal", "goldfish"));
        assert!(!has("animal", "pizza"));
        // Irregular plurals (noun.exc) and the -ies ending.
        assert!(has("geese", "goose"));
        assert!(has("butterflies", "monarch"));
        assert!(has("boxes", "carton"));
    }

    #[test]
    fn words_match_whole_names_case_and_hyphen_insensitively() {
        let h = Hierarchy::get();
        assert_eq!(h.resolve("Golden Retriever").classes, vec![207]);
        assert_eq!(h.resolve("TABBY CAT").classes, vec![281]);
        assert_eq!(h.resolve("man eater").classes, vec![2]);
        assert_eq!(h.resolve("n02123045").classes, vec![281]);
        assert!(h.resolve("golden").classes.is_empty());
        assert!(h.resolve("retriever").classes.contains(&207));
        assert!(h.resolve("catam").classes.is_empty());
    }

    #[test]
    fn multiple_inheritance_keeps_every_path() {
        let h = Hierarchy::get();
        // A dog is both a canine and a domestic animal.
        let words: Vec<&str> = h
            .ancestors(207)
            .iter()
            .flat_map(|s| s.words.clone())
            .collect();
        assert!(words.contains(&"canine") && words.contains(&"domestic animal"));
        assert!(h.resolve("domestic animal").classes.contains(&207));
    }
}
