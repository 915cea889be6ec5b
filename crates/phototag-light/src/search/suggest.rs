//! Close labels for a term that matched nothing: names holding it as a whole word, near
//! spellings of a name (edit distance), or of a word within one.
//!
//! May not: decide what a term matches (see `hierarchy`), or print.

use super::hierarchy::{normalize, Hierarchy};

impl Hierarchy {
    /// Up to `max` words close to a term that matched nothing, one per synset: names
    /// holding it as a whole word (`golden` → `golden retriever`) first, then near
    /// spellings of a name (`dgo` → `dog`) or of a word in one (`shepard` → `German shepherd`).
    pub fn suggest(&self, term: &str, max: usize) -> Vec<&'static str> {
        let t = normalize(term);
        let t_words: Vec<&str> = t.split(' ').collect();
        let limit = match t.chars().count() {
            0..=2 => 0,
            3..=4 => 1,
            5..=8 => 2,
            _ => 3,
        };
        // The closest word of each synset (not every synonym of one).
        let mut scored: Vec<(usize, usize, &'static str)> = Vec::new();
        for s in self.synsets() {
            let mut best: Option<(usize, usize, &'static str)> = None;
            for &w in &s.words {
                let n = normalize(w);
                let n_words: Vec<&str> = n.split(' ').collect();
                let contains = n_words.len() > t_words.len()
                    && n_words
                        .windows(t_words.len())
                        .any(|win| win == t_words.as_slice());
                // A misspelt word of a longer name counts one more than a misspelt name.
                let in_a_word = || {
                    (t_words.len() == 1 && n_words.len() > 1 && t.len() >= 5)
                        .then(|| n_words.iter().map(|w| edit_distance(&t, w)).min())
                        .flatten()
                        .filter(|d| *d <= limit)
                        .map(|d| d + 1)
                };
                let score = if contains {
                    Some(0)
                } else {
                    let d = edit_distance(&t, &n);
                    (d <= limit).then_some(d).or_else(in_a_word)
                };
                if let Some(d) = score {
                    let candidate = (d, w.len(), w);
                    if best.is_none_or(|b| candidate < b) {
                        best = Some(candidate);
                    }
                }
            }
            scored.extend(best);
        }
        scored.sort();
        let mut out: Vec<&'static str> = Vec::new();
        for (_, _, w) in scored {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(w)) {
                out.push(w);
            }
            if out.len() == max {
                break;
            }
        }
        out
    }
}

/// Optimal string alignment distance (Levenshtein with adjacent transpositions), on chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 3 {
        return usize::MAX;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * w + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (d[(i - 1) * w + j] + 1)
                    .min(d[i * w + j - 1] + 1)
                    .min(d[(i - 1) * w + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(d[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    d[a.len() * w + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_misses() {
        let h = Hierarchy::get();
        assert_eq!(h.suggest("dgo", 3)[0], "dog");
        assert!(h.suggest("golden", 5).contains(&"golden retriever"));
        assert!(h
            .suggest("shepherd", 5)
            .iter()
            .any(|s| s.contains("shepherd")));
        assert!(h.suggest("zzzzzzzzq", 5).is_empty());
        assert!(h.suggest("shepard", 5).contains(&"German shepherd"));
        let beach = h.suggest("beach", 5);
        assert_eq!(beach[0], "beach wagon", "{beach:?}");
        assert!(
            !beach.contains(&"beach waggon"),
            "one word per synset: {beach:?}"
        );
        assert_eq!(edit_distance("abc", "acb"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
