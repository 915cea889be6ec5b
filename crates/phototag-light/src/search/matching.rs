//! A compiled query: the syntax tree with every term turned into a set of class indexes and
//! a minimum probability, evaluated on one image's tags. This is what the catalog runs: it
//! fetches the tags of the classes the query mentions ([`Compiled::classes`]) through its
//! index, keeps per image the best probability satisfying each condition, and asks
//! [`Compiled::eval_best`] whether the image matches and with what score.
//!
//! Semantics: a term matches an image when one of the image's stored tags has a class in
//! the term's set and at least the term's probability. `AND`, `OR` and `NOT` combine
//! matches. The score ranks results: a term's is its best matching tag's probability,
//! `OR` takes the best of its parts, `AND` the weakest, `NOT` adds nothing.
//!
//! May not: know about words, labels or the catalog (only class indexes and probabilities).

/// A set of class indexes below [`ClassSet::CAPACITY`].
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassSet([u64; 32]);

impl ClassSet {
    /// Room for ImageNet-1k and the taught tags after it (`catalog::taught_class`).
    pub const CAPACITY: usize = 2048;

    pub fn from_indexes(indexes: impl IntoIterator<Item = usize>) -> ClassSet {
        let mut s = ClassSet::default();
        for i in indexes {
            if i < Self::CAPACITY {
                s.0[i / 64] |= 1 << (i % 64);
            }
        }
        s
    }

    pub fn contains(&self, i: usize) -> bool {
        i < Self::CAPACITY && self.0[i / 64] & (1 << (i % 64)) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }

    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..Self::CAPACITY).filter(|&i| self.contains(i))
    }
}

impl std::fmt::Debug for ClassSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// One term, resolved: which classes, how probable.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub classes: ClassSet,
    /// In [0, 1]; the term's own `>P` or the global minimum, whichever is higher.
    pub min_prob: f32,
}

/// The tree of a compiled query; leaves index [`Compiled::conditions`].
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Cond(usize),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// A query ready to run on tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub root: Node,
    pub conditions: Vec<Condition>,
    /// Whether each condition appears under an even number of `NOT`s (its matches are the
    /// ones a result shows as "matched").
    positive: Vec<bool>,
}

/// "No tag satisfies this condition", in the slices [`Compiled::eval_best`] takes.
pub const NONE: f32 = -1.0;

/// The result of evaluating a node on one image.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Eval {
    No,
    /// Matched; the score when some term matched positively (a bare `NOT x` has none).
    Yes(Option<f32>),
}

impl Compiled {
    pub fn new(root: Node, conditions: Vec<Condition>) -> Compiled {
        let root = simplify(root);
        let mut positive = vec![false; conditions.len()];
        mark(&root, true, &mut positive);
        Compiled {
            root,
            conditions,
            positive,
        }
    }

    /// Every class some term mentions, with the lowest probability any term asks of it:
    /// the tags the catalog must fetch to evaluate the query on any image. Sorted.
    pub fn classes(&self) -> Vec<(usize, f32)> {
        let mut out: Vec<(usize, f32)> = Vec::new();
        for i in 0..ClassSet::CAPACITY {
            let min = self
                .conditions
                .iter()
                .filter(|c| c.classes.contains(i))
                .map(|c| c.min_prob)
                .reduce(f32::min);
            if let Some(m) = min {
                out.push((i, m));
            }
        }
        out
    }

    /// The classes of the terms that are not negated, with the lowest probability such a
    /// term asks of each. Sorted. An image the query matches has a tag among these unless
    /// [`Compiled::matches_untagged`], and its score is at most that tag's probability.
    pub fn positive_classes(&self) -> Vec<(usize, f32)> {
        let mut out: Vec<(usize, f32)> = Vec::new();
        for i in 0..ClassSet::CAPACITY {
            let min = self
                .conditions
                .iter()
                .zip(&self.positive)
                .filter(|(c, &pos)| pos && c.classes.contains(i))
                .map(|(c, _)| c.min_prob)
                .reduce(f32::min);
            if let Some(m) = min {
                out.push((i, m));
            }
        }
        out
    }

    /// The conditions (indexes into [`Compiled::conditions`]) whose classes hold `class`.
    pub fn conditions_of(&self, class: usize) -> Vec<usize> {
        (0..self.conditions.len())
            .filter(|&i| self.conditions[i].classes.contains(class))
            .collect()
    }

    /// Whether the query matches an image none of whose tags are in [`Compiled::classes`]
    /// (e.g. `NOT cat`): then every image is a candidate, not only those the index finds.
    pub fn matches_untagged(&self) -> bool {
        self.eval_best(&vec![NONE; self.conditions.len()]).is_some()
    }

    /// Evaluates the query on an image's tags, `(class index, probability)`; tags of
    /// classes the query does not mention may be left out. The score when it matches.
    pub fn eval(&self, tags: &[(usize, f32)]) -> Option<f32> {
        self.eval_with(tags, &mut Vec::new())
    }

    /// [`Compiled::eval`] with a scratch buffer for its per-condition bests (no allocation
    /// per image once it has grown).
    pub fn eval_with(&self, tags: &[(usize, f32)], best: &mut Vec<f32>) -> Option<f32> {
        best.clear();
        best.resize(self.conditions.len(), NONE);
        for &(class, p) in tags {
            for (b, c) in best.iter_mut().zip(&self.conditions) {
                if c.classes.contains(class) && p >= c.min_prob {
                    *b = b.max(p);
                }
            }
        }
        self.eval_best(best)
    }

    /// Evaluates the query from, per condition, the best probability among the image's
    /// tags that satisfy it ([`NONE`] when none does). The score when it matches.
    pub fn eval_best(&self, best: &[f32]) -> Option<f32> {
        match self.node(&self.root, best) {
            Eval::No => None,
            Eval::Yes(score) => Some(score.unwrap_or(0.0)),
        }
    }

    /// Whether a tag satisfies a term that is not negated (shown as "matched").
    pub fn is_matching_tag(&self, class: usize, probability: f32) -> bool {
        self.conditions
            .iter()
            .zip(&self.positive)
            .any(|(c, &pos)| pos && c.classes.contains(class) && probability >= c.min_prob)
    }

    fn node(&self, n: &Node, best: &[f32]) -> Eval {
        match n {
            Node::Cond(i) => match best.get(*i) {
                Some(&p) if p >= 0.0 => Eval::Yes(Some(p)),
                _ => Eval::No,
            },
            Node::Not(inner) => match self.node(inner, best) {
                Eval::No => Eval::Yes(None),
                Eval::Yes(_) => Eval::No,
            },
            Node::And(items) => {
                let mut score: Option<f32> = None;
                for i in items {
                    match self.node(i, best) {
                        Eval::No => return Eval::No,
                        Eval::Yes(s) => score = min_some(score, s),
                    }
                }
                Eval::Yes(score)
            }
            Node::Or(items) => {
                let mut found = false;
                let mut score: Option<f32> = None;
                for i in items {
                    if let Eval::Yes(s) = self.node(i, best) {
                        found = true;
                        score = match (score, s) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                    }
                }
                if found {
                    Eval::Yes(score)
                } else {
                    Eval::No
                }
            }
        }
    }
}

fn min_some(a: Option<f32>, b: Option<f32>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `NOT NOT x` is `x` (and keeps its score).
fn simplify(n: Node) -> Node {
    match n {
        Node::Not(inner) => match simplify(*inner) {
            Node::Not(x) => *x,
            other => Node::Not(Box::new(other)),
        },
        Node::And(items) => Node::And(items.into_iter().map(simplify).collect()),
        Node::Or(items) => Node::Or(items.into_iter().map(simplify).collect()),
        leaf => leaf,
    }
}

fn mark(n: &Node, positive: bool, out: &mut [bool]) {
    match n {
        Node::Cond(i) => out[*i] |= positive,
        Node::Not(inner) => mark(inner, !positive, out),
        Node::And(items) | Node::Or(items) => items.iter().for_each(|i| mark(i, positive, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(classes: &[usize], min_prob: f32) -> Condition {
        Condition {
            classes: ClassSet::from_indexes(classes.iter().copied()),
            min_prob,
        }
    }

    /// dog = {1, 2}, cat = {3}: `dog AND NOT cat`.
    fn dog_not_cat() -> Compiled {
        Compiled::new(
            Node::And(vec![Node::Cond(0), Node::Not(Box::new(Node::Cond(1)))]),
            vec![cond(&[1, 2], 0.0), cond(&[3], 0.2)],
        )
    }

    #[test]
    fn class_sets() {
        let s = ClassSet::from_indexes([0, 63, 64, 999, 5000]);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![0, 63, 64, 999]);
        assert_eq!(s.len(), 4);
        assert!(!s.contains(5000) && !s.contains(1));
        assert!(ClassSet::default().is_empty());
    }

    #[test]
    fn and_not() {
        let q = dog_not_cat();
        assert_eq!(q.eval(&[(1, 0.6), (2, 0.3)]), Some(0.6));
        assert_eq!(q.eval(&[(1, 0.6), (3, 0.3)]), None);
        assert_eq!(
            q.eval(&[(1, 0.6), (3, 0.1)]),
            Some(0.6),
            "a cat tag below the term's minimum is not a cat"
        );
        assert_eq!(q.eval(&[(3, 0.9)]), None);
        assert_eq!(q.eval(&[]), None);
        assert!(!q.matches_untagged());
        assert_eq!(q.classes(), vec![(1, 0.0), (2, 0.0), (3, 0.2)]);
        assert_eq!(q.conditions_of(2), vec![0]);
        assert_eq!(q.positive_classes(), vec![(1, 0.0), (2, 0.0)]);
        assert_eq!(q.eval_best(&[0.6, NONE]), Some(0.6));
        assert_eq!(q.eval_best(&[0.6, 0.3]), None);
        assert!(q.is_matching_tag(2, 0.01));
        assert!(
            !q.is_matching_tag(3, 0.9),
            "negated terms do not make matches"
        );
    }

    #[test]
    fn scores_or_takes_the_best_and_the_weakest() {
        let or = Compiled::new(
            Node::Or(vec![Node::Cond(0), Node::Cond(1)]),
            vec![cond(&[1], 0.0), cond(&[2], 0.5)],
        );
        assert_eq!(or.eval(&[(1, 0.2), (2, 0.7)]), Some(0.7));
        assert_eq!(or.eval(&[(1, 0.2), (2, 0.4)]), Some(0.2));
        assert_eq!(or.eval(&[(2, 0.4)]), None);
        let and = Compiled::new(
            Node::And(vec![Node::Cond(0), Node::Cond(1)]),
            vec![cond(&[1], 0.0), cond(&[2], 0.0)],
        );
        assert_eq!(and.eval(&[(1, 0.2), (2, 0.7)]), Some(0.2));
        assert_eq!(and.eval(&[(1, 0.2)]), None);
    }

    #[test]
    fn a_bare_not_matches_untagged_images_with_score_zero() {
        let q = Compiled::new(Node::Not(Box::new(Node::Cond(0))), vec![cond(&[3], 0.0)]);
        assert!(q.matches_untagged());
        assert_eq!(q.eval(&[]), Some(0.0));
        assert_eq!(q.eval(&[(3, 0.01)]), None);
        let double = Compiled::new(
            Node::Not(Box::new(Node::Not(Box::new(Node::Cond(0))))),
            vec![cond(&[3], 0.0)],
        );
        assert_eq!(double.eval(&[(3, 0.4)]), Some(0.4));
        assert!(!double.matches_untagged());
        assert!(double.is_matching_tag(3, 0.4));
    }

    #[test]
    fn an_empty_term_matches_nothing() {
        let q = Compiled::new(Node::Cond(0), vec![cond(&[], 0.0)]);
        assert_eq!(q.eval(&[(1, 1.0)]), None);
        assert!(q.classes().is_empty());
        assert!(!q.matches_untagged());
    }
}
