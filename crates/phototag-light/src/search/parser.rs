//! Query text → syntax tree. The language: terms (words, or `"quoted phrases"`) combined
//! with `AND` (or juxtaposition), `OR`, `NOT` / `-term`, and parentheses; a term or a group
//! may carry a minimum probability (`dog>0.5`, `dog>50%`, `(cat OR dog)>0.3`). Precedence,
//! tightest first: `NOT`/`-`, `AND`, `OR`. Operators are upper case; `and`, `or`, `not` are
//! ordinary words. Errors carry the 1-based character position they refer to. Tokens come
//! from `lexer`.
//!
//! May not: know about labels, classes or the catalog (a term is only its text here).

use std::fmt;

use super::lexer::{lex, SyntaxError, Tok};

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Term(Term),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A word or phrase as written, with its own minimum probability if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// The text, without quotes, with runs of white space made one space.
    pub text: String,
    /// Whether it was written in quotes.
    pub quoted: bool,
    /// `term>P`: at least this probability, in [0, 1].
    pub min_prob: Option<f32>,
    /// 1-based character position where the term starts.
    pub pos: usize,
}

/// Deeper nesting than this is refused rather than risking the stack.
pub const MAX_DEPTH: usize = 64;
/// Longer queries are refused before they are read: what a query costs (and what the web
/// server spends on one) stays bounded.
pub const MAX_CHARS: usize = 2000;
/// Queries with more terms than this are refused.
pub const MAX_TERMS: usize = 64;

/// Parses a query (see the module documentation for the language).
pub fn parse(query: &str) -> Result<Expr, SyntaxError> {
    // Bytes first: a huge query is refused without even counting its characters.
    if query.len() > MAX_CHARS && (query.len() > 4 * MAX_CHARS || query.chars().count() > MAX_CHARS)
    {
        return Err(SyntaxError {
            pos: MAX_CHARS + 1,
            message: format!("the query is longer than {MAX_CHARS} characters"),
        });
    }
    let tokens = lex(query)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
        terms: 0,
    };
    let e = p.or()?;
    match p.peek() {
        Tok::End => Ok(e),
        Tok::RParen => Err(p.error("unexpected ')'")),
        Tok::Threshold(_) => Err(p.error("unexpected '>': a probability follows a term")),
        _ => Err(p.error("expected AND, OR or the end of the query")),
    }
}

/// Turns command-line arguments into one query. Arguments are joined with spaces, except
/// that an argument holding several words and no query syntax (quotes, parentheses,
/// `AND`/`OR`/`NOT`, `-term`, `>`) is one phrase: `phototag search "golden retriever"`
/// searches the phrase, as `'"golden retriever"'` would.
pub fn join_args(args: &[String]) -> String {
    let mut parts = Vec::new();
    for a in args {
        let words: Vec<&str> = a.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let plain = |w: &&str| {
            !matches!(*w, "AND" | "OR" | "NOT")
                && !w.starts_with('-')
                && !w.contains(['(', ')', '"', '>', '<'])
        };
        if words.len() > 1 && words.iter().all(plain) {
            parts.push(format!("\"{}\"", words.join(" ")));
        } else {
            parts.push(a.trim().to_string());
        }
    }
    parts.join(" ")
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    at: usize,
    depth: usize,
    /// Terms read so far.
    terms: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.at].0
    }

    fn pos(&self) -> usize {
        self.tokens[self.at].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.tokens[self.at].clone();
        if self.at + 1 < self.tokens.len() {
            self.at += 1;
        }
        t
    }

    fn error(&self, message: &str) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            message: message.to_string(),
        }
    }

    fn or(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.and()?];
        while *self.peek() == Tok::Or {
            self.bump();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, SyntaxError> {
        let mut items = vec![self.unary()?];
        loop {
            match self.peek() {
                Tok::And => {
                    self.bump();
                    items.push(self.unary()?);
                }
                Tok::Word(_) | Tok::Phrase(_) | Tok::LParen | Tok::Minus | Tok::Not => {
                    items.push(self.unary()?);
                }
                _ => break,
            }
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one item")
        } else {
            Expr::And(items)
        })
    }

    fn unary(&mut self) -> Result<Expr, SyntaxError> {
        if matches!(self.peek(), Tok::Not | Tok::Minus) {
            self.bump();
            self.nest()?;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner?)));
        }
        self.primary()
    }

    fn nest(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("the query is nested too deeply"));
        }
        Ok(())
    }

    fn primary(&mut self) -> Result<Expr, SyntaxError> {
        let (tok, pos) = self.bump();
        if matches!(tok, Tok::Word(_) | Tok::Phrase(_)) {
            self.terms += 1;
            if self.terms > MAX_TERMS {
                return Err(SyntaxError {
                    pos,
                    message: format!("a query has at most {MAX_TERMS} terms"),
                });
            }
        }
        let mut e = match tok {
            Tok::LParen => {
                self.nest()?;
                let inner = self.or();
                self.depth -= 1;
                let inner = inner?;
                if *self.peek() != Tok::RParen {
                    return Err(self.error("expected ')'"));
                }
                self.bump();
                inner
            }
            Tok::Word(text) => Expr::Term(Term {
                text,
                quoted: false,
                min_prob: None,
                pos,
            }),
            Tok::Phrase(text) if text.is_empty() => {
                return Err(SyntaxError {
                    pos,
                    message: "empty quotes: expected a term".into(),
                })
            }
            Tok::Phrase(text) => Expr::Term(Term {
                text,
                quoted: true,
                min_prob: None,
                pos,
            }),
            other => {
                let message = match other {
                    Tok::RParen => "expected a term before ')'",
                    Tok::And => "expected a term before AND",
                    Tok::Or => "expected a term before OR",
                    Tok::Threshold(_) => "expected a term before '>'",
                    _ => "expected a term",
                };
                return Err(SyntaxError {
                    pos,
                    message: message.into(),
                });
            }
        };
        if let Tok::Threshold(p) = *self.peek() {
            self.bump();
            raise_min(&mut e, p);
        }
        Ok(e)
    }
}

/// Applies `term>P` (or `(group)>P`) to every term in `e`, keeping any stricter one.
fn raise_min(e: &mut Expr, p: f32) {
    match e {
        Expr::Term(t) => t.min_prob = Some(t.min_prob.map_or(p, |q| q.max(p))),
        Expr::Not(inner) => raise_min(inner, p),
        Expr::And(items) | Expr::Or(items) => items.iter_mut().for_each(|i| raise_min(i, p)),
    }
}

impl fmt::Display for Expr {
    /// A normalised, fully parenthesised form (for logs and tests).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Term(t) => {
                if t.quoted {
                    write!(f, "\"{}\"", t.text)?;
                } else {
                    write!(f, "{}", t.text)?;
                }
                if let Some(p) = t.min_prob {
                    write!(f, ">{p}")?;
                }
                Ok(())
            }
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::And(items) | Expr::Or(items) => {
                let op = if matches!(self, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                write!(f, "(")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, "{op}")?;
                    }
                    write!(f, "{e}")?;
                }
                write!(f, ")")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(q: &str) -> String {
        parse(q)
            .map(|e| e.to_string())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn precedence_not_and_or() {
        assert_eq!(show("dog"), "dog");
        assert_eq!(show("dog cat"), "(dog AND cat)");
        assert_eq!(show("a OR b AND c"), "(a OR (b AND c))");
        assert_eq!(show("a AND b OR c"), "((a AND b) OR c)");
        assert_eq!(show("NOT a AND b"), "(NOT a AND b)");
        assert_eq!(show("-a b OR c"), "((NOT a AND b) OR c)");
        assert_eq!(show("NOT NOT a"), "NOT NOT a");
        assert_eq!(show("dog AND NOT cat"), "(dog AND NOT cat)");
        assert_eq!(show("(a OR b) c"), "((a OR b) AND c)");
        assert_eq!(show("-(a OR b)"), "NOT (a OR b)");
        assert_eq!(
            show("(beach OR seashore) -people"),
            "((beach OR seashore) AND NOT people)"
        );
    }

    #[test]
    fn lower_case_operators_are_words() {
        assert_eq!(show("cat and dog"), "(cat AND and AND dog)");
        assert_eq!(
            show("\"black and gold garden spider\""),
            "\"black and gold garden spider\""
        );
    }

    #[test]
    fn quotes_make_one_term() {
        let e = parse("  \"golden   retriever\"  ").unwrap();
        assert_eq!(
            e,
            Expr::Term(Term {
                text: "golden retriever".into(),
                quoted: true,
                min_prob: None,
                pos: 3
            })
        );
        assert_eq!(show("\"OR\""), "\"OR\"");
        assert_eq!(show("man-eater"), "man-eater");
        assert_eq!(show("potter's"), "potter's");
    }

    #[test]
    fn thresholds_on_terms_and_groups() {
        assert_eq!(show("dog>0.5"), "dog>0.5");
        assert_eq!(show("dog>=0.5"), "dog>0.5");
        assert_eq!(show("dog > 50%"), "dog>0.5");
        assert_eq!(show("\"tiger cat\">0.25 x"), "(\"tiger cat\">0.25 AND x)");
        assert_eq!(
            show("(cat>0.7 OR dog)>0.3"),
            "(cat>0.7 OR dog>0.3)",
            "a group's threshold never loosens a stricter term's"
        );
        assert_eq!(show("animal>0.3"), "animal>0.3");
    }

    #[test]
    fn errors_point_at_the_position() {
        assert_eq!(show("(dog OR cat"), "syntax error at 12: expected ')'");
        assert_eq!(show("dog AND"), "syntax error at 8: expected a term");
        assert_eq!(
            show("OR cat"),
            "syntax error at 1: expected a term before OR"
        );
        assert_eq!(show("dog)"), "syntax error at 4: unexpected ')'");
        assert_eq!(show("()"), "syntax error at 2: expected a term before ')'");
        assert_eq!(show(""), "syntax error at 1: expected a term");
        assert_eq!(
            show("a \"b c"),
            "syntax error at 7: expected '\"' to close the quote"
        );
        assert_eq!(
            show("dog - cat"),
            "syntax error at 6: expected a term after '-'"
        );
        assert_eq!(
            show("dog>2"),
            "syntax error at 5: a probability is between 0 and 1 (write 0.5 or 50%)"
        );
        assert_eq!(
            show("dog>x"),
            "syntax error at 5: expected a probability after '>' (0.5 or 50%)"
        );
        assert_eq!(
            show("dog>0.5x"),
            "syntax error at 8: expected a space or ')' after the probability"
        );
        assert_eq!(
            show(">0.5"),
            "syntax error at 1: expected a term before '>'"
        );
        assert_eq!(
            show("dog>0.5>0.2"),
            "syntax error at 8: unexpected '>': a probability follows a term"
        );
        assert_eq!(
            show("\"\""),
            "syntax error at 1: empty quotes: expected a term"
        );
        assert!(show("dog < 0.5").starts_with("syntax error at 5: unexpected '<'"));
        // Positions count characters, not bytes.
        assert_eq!(show("caf\u{e9} (x"), "syntax error at 8: expected ')'");
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let q = format!("{}dog{}", "(".repeat(900), ")".repeat(900));
        assert!(show(&q).contains("nested too deeply"));
        let q = format!("{}dog", "NOT ".repeat(400));
        assert!(show(&q).contains("nested too deeply"));
        let q = format!("{}dog{}", "(".repeat(20), ")".repeat(20));
        assert_eq!(show(&q), "dog");
    }

    #[test]
    fn long_queries_and_many_terms_are_refused() {
        // The hostile probe's query: 60 KB of unknown words.
        let q = vec!["abcde"; 10_000].join("+");
        assert_eq!(
            show(&q),
            "syntax error at 2001: the query is longer than 2000 characters"
        );
        let q = "é".repeat(MAX_CHARS);
        assert!(!show(&q).contains("longer than"), "characters, not bytes");
        let q = vec!["dog"; MAX_TERMS].join(" OR ");
        assert!(parse(&q).is_ok());
        let q = vec!["dog"; MAX_TERMS + 1].join(" OR ");
        assert_eq!(
            show(&q),
            format!(
                "syntax error at {}: a query has at most 64 terms",
                7 * 64 + 1
            )
        );
    }

    #[test]
    fn arguments_with_spaces_are_phrases_unless_they_are_queries() {
        let j = |a: &[&str]| join_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(j(&["golden retriever"]), "\"golden retriever\"");
        assert_eq!(j(&["TIGER  CAT", "-dog"]), "\"TIGER CAT\" -dog");
        assert_eq!(j(&["dog AND NOT cat"]), "dog AND NOT cat");
        assert_eq!(j(&["dog", "AND", "NOT", "cat"]), "dog AND NOT cat");
        assert_eq!(
            j(&["(beach OR seashore) -people"]),
            "(beach OR seashore) -people"
        );
        assert_eq!(j(&["dog>0.5 cat"]), "dog>0.5 cat");
        assert_eq!(j(&["", "  ", "dog"]), "dog");
    }
}
