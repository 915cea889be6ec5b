//! The best `k` of a stream of scored items, in memory for `k` items only: what lets
//! `similar` read a million stored embeddings and keep twenty.
//!
//! May not: allocate per item beyond the `k` kept.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A scored item; ties go to the smaller key, so results do not depend on read order.
#[derive(Debug, Clone, PartialEq)]
struct Scored<T> {
    score: f32,
    key: T,
}

impl<T: Ord> Eq for Scored<T> {}

impl<T: Ord> PartialOrd for Scored<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Scored<T> {
    /// Better is greater: a higher score, then a smaller key.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.key.cmp(&self.key))
    }
}

/// The `k` best items seen so far.
#[derive(Debug, Clone)]
pub struct TopK<T: Ord> {
    k: usize,
    /// The worst kept item on top.
    heap: BinaryHeap<Reverse<Scored<T>>>,
}

impl<T: Ord> TopK<T> {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 16) + 1),
        }
    }

    /// The score an item must beat to be kept (None while fewer than `k` are kept).
    pub fn floor(&self) -> Option<f32> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|r| r.0.score)
        }
    }

    /// Whether an item with this score could be kept: cheap to ask before building its key.
    pub fn admits(&self, score: f32) -> bool {
        self.k > 0 && self.floor().is_none_or(|f| score >= f)
    }

    pub fn push(&mut self, score: f32, key: T) {
        if self.k == 0 || score.is_nan() {
            return;
        }
        let item = Scored { score, key };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(item));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if item > worst.0 {
                *worst = Reverse(item);
            }
        }
    }

    /// Adds everything another one kept.
    pub fn merge(&mut self, other: TopK<T>) {
        for Reverse(s) in other.heap {
            self.push(s.score, s.key);
        }
    }

    /// The kept items, best first.
    pub fn into_sorted(self) -> Vec<(f32, T)> {
        let mut v: Vec<Scored<T>> = self.heap.into_iter().map(|r| r.0).collect();
        v.sort_by(|a, b| b.cmp(a));
        v.into_iter().map(|s| (s.score, s.key)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_in_order_whatever_the_order_read() {
        let items: Vec<(f32, u32)> = (0..1000u32)
            .map(|i| (((i * 7919) % 1000) as f32 / 1000.0, i))
            .collect();
        let mut a = TopK::new(5);
        for &(s, k) in &items {
            a.push(s, k);
        }
        let mut b = TopK::new(5);
        for &(s, k) in items.iter().rev() {
            b.push(s, k);
        }
        let best = a.clone().into_sorted();
        assert_eq!(best, b.into_sorted());
        let scores: Vec<f32> = best.iter().map(|x| x.0).collect();
        assert_eq!(scores, vec![0.999, 0.998, 0.997, 0.996, 0.995]);
        assert_eq!(a.floor(), Some(0.995));
        assert!(!a.admits(0.5));
    }

    #[test]
    fn ties_go_to_the_smaller_key_and_merging_is_the_same() {
        let mut a = TopK::new(2);
        let mut b = TopK::new(2);
        a.push(0.5, 9u32);
        a.push(0.5, 3);
        b.push(0.5, 1);
        b.push(0.1, 0);
        a.merge(b);
        assert_eq!(a.into_sorted(), vec![(0.5, 1), (0.5, 3)]);
        let mut none: TopK<u32> = TopK::new(0);
        none.push(1.0, 1);
        assert!(none.into_sorted().is_empty());
    }
}
