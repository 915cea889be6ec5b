//! Query text → tokens, each with the 1-based character position it starts at: words,
//! `"phrases"`, parentheses, `AND`/`OR`/`NOT` (upper case only), `-` before a term, and
//! `>P` / `>=P` / `>P%` minimum probabilities (checked to lie in [0, 1]).
//!
//! May not: know the grammar (see `parser`), labels, or the catalog.

use std::fmt;

/// A malformed query: what was expected, and where (1-based character position; one past
/// the end for "the query ended too soon").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syntax error at {}: {}", self.pos, self.message)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    /// `-` right before a term or group.
    Minus,
    And,
    Or,
    Not,
    Word(String),
    Phrase(String),
    /// `>P`, `>=P`, `>P%`, as a probability in [0, 1].
    Threshold(f32),
    End,
}

/// Characters that end a bare word.
fn breaks_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '>' | '<')
}

pub(super) fn lex(query: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let chars: Vec<char> = query.chars().collect();
    let err = |pos: usize, message: &str| SyntaxError {
        pos: pos + 1,
        message: message.to_string(),
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            '<' => {
                return Err(err(
                    i,
                    "unexpected '<': only minimum probabilities (term>P)",
                ))
            }
            '"' => {
                let Some(len) = chars[i + 1..].iter().position(|&c| c == '"') else {
                    return Err(err(chars.len(), "expected '\"' to close the quote"));
                };
                let text: String = chars[i + 1..i + 1 + len].iter().collect();
                i += len + 2;
                Tok::Phrase(text.split_whitespace().collect::<Vec<_>>().join(" "))
            }
            '-' => {
                i += 1;
                match chars.get(i) {
                    Some(&n) if !n.is_whitespace() && n != ')' && n != '>' => Tok::Minus,
                    _ => return Err(err(i, "expected a term after '-'")),
                }
            }
            '>' => {
                i += 1;
                if chars.get(i) == Some(&'=') {
                    i += 1;
                }
                while chars.get(i).is_some_and(|c| c.is_whitespace()) {
                    i += 1;
                }
                let num_start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_digit() || *c == '.')
                {
                    i += 1;
                }
                let digits: String = chars[num_start..i].iter().collect();
                let percent = chars.get(i) == Some(&'%');
                if percent {
                    i += 1;
                }
                let Ok(v) = digits.parse::<f32>() else {
                    return Err(err(
                        num_start,
                        "expected a probability after '>' (0.5 or 50%)",
                    ));
                };
                let p = if percent { v / 100.0 } else { v };
                if !(0.0..=1.0).contains(&p) {
                    return Err(err(
                        num_start,
                        "a probability is between 0 and 1 (write 0.5 or 50%)",
                    ));
                }
                if chars.get(i).is_some_and(|&c| !breaks_word(c)) {
                    return Err(err(i, "expected a space or ')' after the probability"));
                }
                Tok::Threshold(p)
            }
            _ => {
                while i < chars.len() && !breaks_word(chars[i]) {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect();
                match w.as_str() {
                    "AND" => Tok::And,
                    "OR" => Tok::Or,
                    "NOT" => Tok::Not,
                    _ => Tok::Word(w),
                }
            }
        };
        out.push((tok, start + 1));
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_positions() {
        let w = |s: &str| Tok::Word(s.into());
        assert_eq!(
            lex("(dog OR \"tiger  cat\")>0.5 -x AND NOT y>=25%").unwrap(),
            vec![
                (Tok::LParen, 1),
                (w("dog"), 2),
                (Tok::Or, 6),
                (Tok::Phrase("tiger cat".into()), 9),
                (Tok::RParen, 21),
                (Tok::Threshold(0.5), 22),
                (Tok::Minus, 27),
                (w("x"), 28),
                (Tok::And, 30),
                (Tok::Not, 34),
                (w("y"), 38),
                (Tok::Threshold(0.25), 39),
                (Tok::End, 44),
            ]
        );
        assert_eq!(lex("and or not").unwrap()[1].0, w("or"));
        assert_eq!(lex("man-eater").unwrap()[0].0, w("man-eater"));
    }
}
