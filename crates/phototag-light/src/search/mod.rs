//! Search queries: text → a [`Compiled`] query over ImageNet class indexes, which the
//! catalog runs. `dog AND NOT cat`, `(beach OR seashore) -people`, `"golden retriever"`,
//! `animal>0.3`; every word covers the classes at or below the WordNet synsets it names.
//!
//! Layout, one job per file: `lexer` (text → tokens), `parser` (tokens → syntax tree,
//! positioned errors), `hierarchy` (words → classes through WordNet), `suggest` (close
//! labels for a miss), `matching` (the compiled tree, evaluated on an image's tags),
//! `time` (the dates of `--since` and `--until`). This file joins them.
//!
//! May not: touch the catalog (it produces what `catalog::search` runs), or print.

pub mod hierarchy;
mod lexer;
pub mod matching;
pub mod parser;
mod suggest;
pub mod time;

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

pub use hierarchy::{Hierarchy, Resolved};
pub use lexer::SyntaxError;
pub use matching::{ClassSet, Compiled, Condition, Node};
pub use parser::{join_args, parse, Expr, Term};

/// Unknown terms that get suggestions, at most (the first ones written).
pub const SUGGESTED_TERMS: usize = 5;

/// A query that cannot be run (exit code 2, bad usage).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Malformed: the message, then the query with a caret under the position.
    #[error("{error}\n  {query}\n  {caret}^", caret = " ".repeat(error.pos.saturating_sub(1)))]
    Syntax { error: SyntaxError, query: String },
}

/// A search as the catalog runs it ([`crate::catalog::Catalog::find`]): a compiled query,
/// where and when, how many, and whether hits need their tags.
#[derive(Debug, Clone)]
pub struct Request {
    pub query: Compiled,
    /// Only files strictly under one of these folders (all files when empty).
    pub under: Vec<PathBuf>,
    /// Only files whose mtime is in this range of Unix nanoseconds.
    pub mtime_ns: Option<Range<i64>>,
    /// At most this many files (the best ones); all when `None`.
    pub limit: Option<usize>,
    /// Also read every hit's stored tags (JSON and tables need them; paths do not).
    pub with_tags: bool,
}

impl Request {
    /// Every file the query matches, without tags.
    pub fn new(query: Compiled) -> Request {
        Request {
            query,
            under: Vec::new(),
            mtime_ns: None,
            limit: None,
            with_tags: false,
        }
    }
}

/// What one term of a query covers.
#[derive(Debug, Clone, PartialEq)]
pub struct TermReport {
    /// As written (without quotes).
    pub text: String,
    pub resolved: Resolved,
    /// Close labels, when it covers nothing.
    pub suggestions: Vec<&'static str>,
}

/// A query, parsed and resolved.
#[derive(Debug, Clone)]
pub struct Query {
    /// The text it was parsed from.
    pub text: String,
    pub expr: Expr,
    pub compiled: Compiled,
    /// Every term, in order of appearance.
    pub terms: Vec<TermReport>,
}

impl Query {
    /// Parses `text` and resolves its terms through the label hierarchy. `min_prob` (in
    /// [0, 1]) applies to every term that asks for less.
    pub fn compile(text: &str, min_prob: f32) -> Result<Query, QueryError> {
        let expr = parse(text).map_err(|error| QueryError::Syntax {
            error,
            query: text.to_string(),
        })?;
        let h = Hierarchy::get();
        let mut terms = Vec::new();
        let mut conditions = Vec::new();
        let mut suggested = 0;
        let root = lower(&expr, &mut |t: &Term| {
            let resolved = h.resolve(&t.text);
            // Suggestions cost an edit distance against every name: only for the first few.
            let suggestions = if resolved.classes.is_empty() && suggested < SUGGESTED_TERMS {
                suggested += 1;
                h.suggest(&t.text, 5)
            } else {
                Vec::new()
            };
            conditions.push(Condition {
                classes: ClassSet::from_indexes(resolved.classes.iter().copied()),
                min_prob: t.min_prob.unwrap_or(0.0).max(min_prob),
            });
            terms.push(TermReport {
                text: t.text.clone(),
                resolved,
                suggestions,
            });
            conditions.len() - 1
        });
        Ok(Query {
            text: text.to_string(),
            expr,
            compiled: Compiled::new(root, conditions),
            terms,
        })
    }

    /// The query of command-line arguments (see [`join_args`]).
    pub fn from_args(args: &[String], min_prob: f32) -> Result<Query, QueryError> {
        Query::compile(&join_args(args), min_prob)
    }

    /// Terms that cover no class.
    pub fn unknown(&self) -> impl Iterator<Item = &TermReport> {
        self.terms.iter().filter(|t| t.resolved.classes.is_empty())
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}

fn lower(e: &Expr, leaf: &mut impl FnMut(&Term) -> usize) -> Node {
    match e {
        Expr::Term(t) => Node::Cond(leaf(t)),
        Expr::Not(inner) => Node::Not(Box::new(lower(inner, leaf))),
        Expr::And(items) => Node::And(items.iter().map(|i| lower(i, leaf)).collect()),
        Expr::Or(items) => Node::Or(items.iter().map(|i| lower(i, leaf)).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_resolve_through_the_hierarchy() {
        let q = Query::compile("dogs AND NOT cat>0.5", 0.1).unwrap();
        assert_eq!(q.terms.len(), 2);
        assert_eq!(q.terms[0].resolved.classes.len(), 118);
        let c = &q.compiled.conditions;
        assert_eq!((c[0].min_prob, c[1].min_prob), (0.1, 0.5));
        // A golden retriever (207) matches; with a tabby (281) at 60% it does not.
        assert!(q.compiled.eval(&[(207, 0.9)]).is_some());
        assert!(q.compiled.eval(&[(207, 0.9), (281, 0.6)]).is_none());
        assert!(q.compiled.eval(&[(207, 0.9), (281, 0.4)]).is_some());
        assert!(
            q.compiled.eval(&[(207, 0.05)]).is_none(),
            "below --min-prob"
        );
        assert_eq!(q.unknown().count(), 0);
    }

    #[test]
    fn unknown_terms_are_reported_with_suggestions() {
        let q = Query::compile("dgo OR tabby", 0.0).unwrap();
        let unknown: Vec<_> = q.unknown().collect();
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].text, "dgo");
        assert!(unknown[0].suggestions.contains(&"dog"));
        assert!(q.compiled.eval(&[(281, 0.3)]).is_some());
    }

    #[test]
    fn only_the_first_unknown_terms_get_suggestions() {
        let words = ["dgo", "kat", "hors", "tigr", "snaek", "brid", "fishh"];
        let q = Query::compile(&words.join(" OR "), 0.0).unwrap();
        let with: Vec<bool> = q.unknown().map(|t| !t.suggestions.is_empty()).collect();
        assert_eq!(with.len(), words.len());
        assert!(with[..SUGGESTED_TERMS].iter().all(|w| *w), "{with:?}");
        assert!(with[SUGGESTED_TERMS..].iter().all(|w| !*w), "{with:?}");
    }

    #[test]
    fn syntax_errors_show_where() {
        let e = Query::compile("(dog OR cat", 0.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "syntax error at 12: expected ')'\n  (dog OR cat\n             ^"
        );
    }

    #[test]
    fn arguments_become_one_query() {
        let args: Vec<String> = vec!["TIGER CAT".into()];
        let q = Query::from_args(&args, 0.0).unwrap();
        assert_eq!(q.terms[0].resolved.classes, vec![282]);
        let args: Vec<String> = ["dog", "AND", "NOT", "cat"].map(String::from).to_vec();
        assert_eq!(
            Query::from_args(&args, 0.0).unwrap().to_string(),
            "(dog AND NOT cat)"
        );
    }
}
