//! Search terms → the set of ImageNet classes they name. Today a query is a list of terms
//! joined by OR, each matching a class whose name or synonym equals it (case-insensitive);
//! the query type is where a fuller language (AND, NOT, the WordNet hierarchy) will go.
//!
//! May not: touch the catalog (it produces the classes `catalog::search` looks up).

use crate::labels;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Terms, any of which may match.
    pub any: Vec<String>,
}

/// What a query resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Class indices, sorted, without repeats.
    pub classes: Vec<usize>,
    /// Terms that name no class.
    pub unknown: Vec<String>,
}

impl Query {
    /// Builds a query from command-line terms (each may hold several words: `"tiger cat"`).
    pub fn parse(terms: &[String]) -> Self {
        Self {
            any: terms
                .iter()
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }

    /// The classes the terms name.
    pub fn resolve(&self) -> Resolved {
        let mut classes = Vec::new();
        let mut unknown = Vec::new();
        for term in &self.any {
            let found = classes_named(term);
            if found.is_empty() {
                unknown.push(term.clone());
            }
            classes.extend(found);
        }
        classes.sort_unstable();
        classes.dedup();
        Resolved { classes, unknown }
    }
}

/// Classes whose name or one of whose synonyms equals `term`, ignoring case.
pub fn classes_named(term: &str) -> Vec<usize> {
    let t = term.trim().to_lowercase();
    labels::imagenet()
        .iter()
        .filter(|c| c.name.to_lowercase() == t || c.synonyms.iter().any(|s| s.to_lowercase() == t))
        .map(|c| c.index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_synonyms_match_case_insensitively() {
        assert_eq!(classes_named("Tabby"), vec![281]);
        assert_eq!(classes_named("tabby cat"), vec![281]);
        assert_eq!(classes_named("ESPRESSO"), vec![967]);
        assert!(classes_named("dogg").is_empty());
    }

    #[test]
    fn a_query_is_the_union_of_its_terms() {
        let q = Query::parse(&[
            "espresso".into(),
            "  tiger   cat ".into(),
            "nonsense".into(),
        ]);
        assert_eq!(q.any, vec!["espresso", "tiger cat", "nonsense"]);
        let r = q.resolve();
        assert!(r.classes.contains(&967) && r.classes.contains(&282));
        assert_eq!(r.unknown, vec!["nonsense"]);
    }
}
