//! Near-duplicate groups among many embeddings without comparing every pair: random-
//! projection hashing (SimHash) proposes candidate pairs, each candidate is checked exactly
//! on the stored bytes, and groups form around the best-quality photo.
//!
//! - The embeddings are centred first (their mean subtracted): pooled ReLU features all
//!   point into one orthant, and hyperplanes through the origin would barely separate them.
//! - Each hyperplane is sparse (64 random coordinates with random signs), so hashing costs
//!   64 additions per bit instead of a full dot product; and each embedding is projected
//!   once on a pool of 512 of them, from which every table draws its bits.
//! - `tables` hash tables of `bits` bits each: a pair is a candidate when all bits of one
//!   table agree. `bits` grows with the number of images (about log2 n, so a table's
//!   buckets stay small); `tables` is chosen so that a pair at the threshold is proposed
//!   with probability at least [`RECALL`] (the centred angle of such a pair is estimated
//!   from the spread of the centred embeddings; see [`Plan::new`]).
//! - Groups: photos are taken best first (most pixels); each one not yet in a group starts
//!   one and takes every photo not yet grouped whose similarity to it is at least the
//!   threshold. So every member is at least that similar to the first, which is what the
//!   output reports, and two different photos are never chained through a third.
//!
//! May not: touch the catalog; compare more than the candidates.

use std::collections::HashSet;

use super::EmbeddingRef;

/// The probability with which a pair exactly at the threshold is proposed, by design.
pub const RECALL: f64 = 0.995;

/// Non-zero coordinates of each hyperplane.
const NON_ZERO: usize = 64;

/// Directions each embedding is projected on once; tables draw their bits from them.
const POOL: usize = 512;

/// Most hash tables used (time grows with them).
const MAX_TABLES: usize = 400;

/// Up to this many embeddings every pair is compared exactly (no hashing).
pub const EXACT_UP_TO: usize = 1000;

/// Many embeddings of one width, side by side.
#[derive(Debug, Clone, Default)]
pub struct Vectors {
    dim: usize,
    values: Vec<u8>,
    scales: Vec<f32>,
}

impl Vectors {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            ..Default::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.scales.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scales.is_empty()
    }

    /// Adds one; false (and nothing added) when its width differs.
    pub fn push(&mut self, e: EmbeddingRef<'_>) -> bool {
        if e.values.len() != self.dim {
            return false;
        }
        self.values.extend_from_slice(e.values);
        self.scales.push(e.scale);
        true
    }

    pub fn get(&self, i: usize) -> EmbeddingRef<'_> {
        EmbeddingRef {
            values: &self.values[i * self.dim..(i + 1) * self.dim],
            scale: self.scales[i],
        }
    }
}

/// A group: indexes into the [`Vectors`], the first the best-quality photo, each with its
/// similarity to the first (1 for the first).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub members: Vec<(usize, f32)>,
}

/// How the hashing was set up, and what it cost: for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Plan {
    pub bits: usize,
    pub tables: usize,
    /// The centred cosine that a pair at the threshold is estimated to have at least.
    pub centred_threshold: f64,
    /// Distinct pairs checked exactly.
    pub candidates: u64,
    /// Pairs at or above the threshold.
    pub similar_pairs: u64,
}

impl Plan {
    /// Bits per table and tables for `n` embeddings whose centred squared lengths have a
    /// low quantile `spread`, at `threshold`. A pair at cosine `t` is `sqrt(2 - 2t)` apart
    /// whether centred or not; centred, its length is about `sqrt(spread)` or more, so its
    /// centred cosine is at least about `1 - (1 - t) / spread`. SimHash puts it on the same
    /// side of a random hyperplane with probability `1 - angle / pi`.
    pub fn new(n: usize, spread: f64, threshold: f32) -> Plan {
        let bits = ((n.max(2) as f64).log2().round() as usize).clamp(8, 24);
        let centred = (1.0 - (1.0 - f64::from(threshold)) / spread.max(1e-6)).clamp(-1.0, 1.0);
        let p_bit = 1.0 - centred.acos() / std::f64::consts::PI;
        let p_table = p_bit.powi(bits as i32);
        let tables = if p_table >= 1.0 {
            1
        } else if p_table <= 0.0 {
            MAX_TABLES
        } else {
            ((1.0 - RECALL).ln() / (1.0 - p_table).ln()).ceil() as usize
        };
        Plan {
            bits,
            tables: tables.clamp(1, MAX_TABLES),
            centred_threshold: centred,
            ..Default::default()
        }
    }
}

/// The mean of the normalised embeddings, and a low quantile (5%) of the squared length of
/// each one once centred.
fn centre(v: &Vectors) -> (Vec<f64>, f64) {
    let n = v.len();
    let mut mean = vec![0.0f64; v.dim];
    for i in 0..n {
        let e = v.get(i);
        for (m, &x) in mean.iter_mut().zip(e.values) {
            *m += f64::from(x as i8) * f64::from(e.scale);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let mean_sq: f64 = mean.iter().map(|m| m * m).sum();
    let mut lengths: Vec<f64> = (0..n)
        .map(|i| {
            let e = v.get(i);
            let along: f64 = mean
                .iter()
                .zip(e.values)
                .map(|(m, &x)| m * f64::from(x as i8) * f64::from(e.scale))
                .sum();
            (1.0 - 2.0 * along + mean_sq).max(0.0)
        })
        .collect();
    lengths.sort_by(f64::total_cmp);
    let low = lengths.get(n / 20).copied().unwrap_or(1.0);
    (mean, low)
}

/// The hash bits of every embedding, packed per table. Each embedding is projected once on
/// a pool of [`POOL`] sparse centred directions; each table's `bits` bits are the signs of
/// `bits` distinct directions drawn from the pool (so a table is `bits` random hyperplanes,
/// as the plan assumes, and hashing costs the pool's projections, not `bits * tables`).
fn signatures(v: &Vectors, mean: &[f64], plan: &Plan) -> Vec<Vec<u32>> {
    let dim = v.dim;
    let mut rng = super::SplitMix64(0x05ee_d0fd_09e5);
    // Each direction: (coordinate, +1 or -1), and the projection of the mean.
    let mut coords = Vec::with_capacity(POOL * NON_ZERO);
    let mut offsets = Vec::with_capacity(POOL);
    for _ in 0..POOL {
        let mut offset = 0.0f64;
        for _ in 0..NON_ZERO {
            let r = rng.next();
            let c = (r % dim as u64) as usize;
            let positive = (r >> 63) == 0;
            coords.push((c as u32, positive));
            offset += if positive { mean[c] } else { -mean[c] };
        }
        offsets.push(offset);
    }
    // Each table's directions: `bits` distinct pool indexes.
    let picks: Vec<Vec<usize>> = (0..plan.tables)
        .map(|_| {
            let mut chosen: Vec<usize> = Vec::with_capacity(plan.bits);
            while chosen.len() < plan.bits {
                let p = (rng.next() % POOL as u64) as usize;
                if !chosen.contains(&p) {
                    chosen.push(p);
                }
            }
            chosen
        })
        .collect();
    let mut tables = vec![Vec::with_capacity(v.len()); plan.tables];
    let mut signs = [0u64; POOL / 64];
    for i in 0..v.len() {
        let e = v.get(i);
        signs.fill(0);
        for p in 0..POOL {
            let mut s = 0i32;
            for &(c, positive) in &coords[p * NON_ZERO..(p + 1) * NON_ZERO] {
                let x = i32::from(e.values[c as usize] as i8);
                s += if positive { x } else { -x };
            }
            if f64::from(s) * f64::from(e.scale) > offsets[p] {
                signs[p / 64] |= 1 << (p % 64);
            }
        }
        for (table, pick) in tables.iter_mut().zip(&picks) {
            let mut key = 0u32;
            for (b, &p) in pick.iter().enumerate() {
                key |= (((signs[p / 64] >> (p % 64)) & 1) as u32) << b;
            }
            table.push(key);
        }
    }
    tables
}

/// Pairs (i < j) with similarity at least `threshold`, found through the hash tables, with
/// their similarity; and the plan with its counts.
pub fn similar_pairs(v: &Vectors, threshold: f32) -> (Vec<(u32, u32, f32)>, Plan) {
    let n = v.len();
    if n < 2 {
        return (Vec::new(), Plan::default());
    }
    if n <= EXACT_UP_TO {
        // Few enough to compare every pair (~0.5 M at most): exact, and as fast.
        let pairs = all_similar_pairs(v, threshold);
        let plan = Plan {
            candidates: (n * (n - 1) / 2) as u64,
            similar_pairs: pairs.len() as u64,
            ..Default::default()
        };
        return (pairs, plan);
    }
    let (mean, spread) = centre(v);
    let mut plan = Plan::new(n, spread, threshold);
    let tables = signatures(v, &mean, &plan);
    // Pairs already checked, as `a << 32 | b`. Measured on 100,000 generated embeddings
    // (19 M pairs checked): foldhash took 23 s of CPU where the standard SipHash took 33 s
    // and a stamp per anchor photo (no set, buckets looked up photo by photo) 38 s, its
    // lookups missing the cache. A fast hash that does not resist chosen keys is fine here:
    // the keys are our own indexes.
    let mut checked: HashSet<u64, foldhash::fast::FixedState> =
        HashSet::with_capacity_and_hasher(n * 16, Default::default());
    let mut pairs = Vec::new();
    let mut order: Vec<u32> = (0..n as u32).collect();
    for keys in &tables {
        order.sort_unstable_by_key(|&i| keys[i as usize]);
        let mut start = 0;
        while start < n {
            let key = keys[order[start] as usize];
            let mut end = start + 1;
            while end < n && keys[order[end] as usize] == key {
                end += 1;
            }
            let bucket = &order[start..end];
            for (x, &a) in bucket.iter().enumerate() {
                for &b in &bucket[x + 1..] {
                    let pair = (a.min(b), a.max(b));
                    if !checked.insert(u64::from(pair.0) << 32 | u64::from(pair.1)) {
                        continue;
                    }
                    let s = v.get(pair.0 as usize).cosine(&v.get(pair.1 as usize));
                    if s >= threshold {
                        pairs.push((pair.0, pair.1, s));
                    }
                }
            }
            start = end;
        }
    }
    plan.candidates = checked.len() as u64;
    plan.similar_pairs = pairs.len() as u64;
    pairs.sort_unstable_by_key(|&(a, b, _)| (a, b));
    (pairs, plan)
}

/// Every pair (i < j) at or above `threshold`, comparing all of them: the reference
/// [`similar_pairs`] is measured against (tests and benchmarks).
pub fn all_similar_pairs(v: &Vectors, threshold: f32) -> Vec<(u32, u32, f32)> {
    let mut out = Vec::new();
    for i in 0..v.len() {
        let a = v.get(i);
        for j in i + 1..v.len() {
            let s = a.cosine(&v.get(j));
            if s >= threshold {
                out.push((i as u32, j as u32, s));
            }
        }
    }
    out
}

/// Groups from similar pairs: photos best first by `quality` (then index); each not yet
/// grouped starts a group and takes its similar photos not yet grouped. Groups of one are
/// left out. Groups are ordered by their first member's index.
pub fn group(n: usize, pairs: &[(u32, u32, f32)], quality: impl Fn(usize) -> u64) -> Vec<Group> {
    let mut neighbours: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    for &(a, b, s) in pairs {
        neighbours[a as usize].push((b, s));
        neighbours[b as usize].push((a, s));
    }
    let mut order: Vec<usize> = (0..n).filter(|&i| !neighbours[i].is_empty()).collect();
    order.sort_by(|&a, &b| quality(b).cmp(&quality(a)).then(a.cmp(&b)));
    let mut taken = vec![false; n];
    let mut groups = Vec::new();
    for leader in order {
        if taken[leader] {
            continue;
        }
        let mut members: Vec<(usize, f32)> = neighbours[leader]
            .iter()
            .filter(|(m, _)| !taken[*m as usize])
            .map(|&(m, s)| (m as usize, s))
            .collect();
        if members.is_empty() {
            continue;
        }
        taken[leader] = true;
        for (m, _) in &members {
            taken[*m] = true;
        }
        members.sort_by(|a, b| {
            quality(b.0)
                .cmp(&quality(a.0))
                .then(b.1.total_cmp(&a.1))
                .then(a.0.cmp(&b.0))
        });
        members.insert(0, (leader, 1.0));
        groups.push(Group { members });
    }
    groups.sort_by_key(|g| g.members[0].0);
    groups
}

#[cfg(test)]
mod tests {
    use super::super::Embedding;
    use super::*;

    struct Rand(u64);
    impl Rand {
        fn unit(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    /// `bases` random non-negative "photos" (sharing a common component, as pooled
    /// features do) and `copies` noisy near copies of each.
    fn library(bases: usize, copies: usize, noise: f32, dim: usize) -> (Vectors, Vec<usize>) {
        let mut r = Rand(7);
        let common: Vec<f32> = (0..dim).map(|_| r.unit()).collect();
        let mut v = Vectors::new(dim);
        let mut truth = Vec::new();
        for b in 0..bases {
            let base: Vec<f32> = (0..dim)
                .map(|i| common[i] + r.unit().powi(4) * 3.0)
                .collect();
            for _ in 0..=copies {
                let x: Vec<f32> = base
                    .iter()
                    .map(|x| (x + noise * r.unit()).max(0.0))
                    .collect();
                v.push(Embedding::quantize(&x).unwrap().as_ref());
                truth.push(b);
            }
        }
        (v, truth)
    }

    #[test]
    fn hashing_finds_what_comparing_every_pair_finds() {
        let (v, _) = library(300, 3, 0.6, 256);
        for t in [0.9f32, 0.95] {
            let all = all_similar_pairs(&v, t);
            let (found, plan) = similar_pairs(&v, t);
            assert!(!all.is_empty());
            let all_set: HashSet<(u32, u32)> = all.iter().map(|p| (p.0, p.1)).collect();
            let found_set: HashSet<(u32, u32)> = found.iter().map(|p| (p.0, p.1)).collect();
            assert!(found_set.is_subset(&all_set), "only true pairs");
            let recall = found_set.len() as f64 / all_set.len() as f64;
            assert!(recall >= 0.98, "{t}: recall {recall}, {plan:?}");
            let n = v.len() as u64;
            assert!(
                plan.candidates < n * (n - 1) / 2 / 4,
                "far fewer checks than all pairs: {plan:?}"
            );
        }
    }

    #[test]
    fn a_small_library_is_compared_exactly() {
        let (v, _) = library(100, 1, 0.6, 256);
        let n = v.len() as u64;
        assert!(v.len() <= EXACT_UP_TO);
        let (found, plan) = similar_pairs(&v, 0.9);
        assert_eq!(plan.candidates, n * (n - 1) / 2, "every pair");
        assert_eq!(found, all_similar_pairs(&v, 0.9));
    }

    #[test]
    fn groups_start_at_the_best_photo_and_never_chain() {
        // 0 ~ 1, 1 ~ 2, but 0 !~ 2; 3 ~ 4. Quality: 2 best, then 0.
        let pairs = [(0, 1, 0.95), (1, 2, 0.93), (3, 4, 0.99)];
        let quality = |i: usize| [50, 10, 90, 5, 5][i];
        let g = group(5, &pairs, quality);
        assert_eq!(
            g,
            vec![
                Group {
                    members: vec![(2, 1.0), (1, 0.93)]
                },
                Group {
                    members: vec![(3, 1.0), (4, 0.99)]
                },
            ]
        );
    }

    #[test]
    fn groups_match_the_truth_of_a_generated_library() {
        let (v, truth) = library(200, 2, 0.4, 1280);
        let (pairs, _) = similar_pairs(&v, 0.9);
        let groups = group(v.len(), &pairs, |_| 1);
        assert_eq!(groups.len(), 200, "one group per photo");
        for g in &groups {
            assert_eq!(g.members.len(), 3);
            let b = truth[g.members[0].0];
            assert!(g.members.iter().all(|(m, s)| truth[*m] == b && *s >= 0.9));
        }
    }

    #[test]
    fn few_or_none() {
        assert!(similar_pairs(&Vectors::new(4), 0.9).0.is_empty());
        let mut one = Vectors::new(4);
        one.push(Embedding::quantize(&[1.0, 0.0, 0.0, 0.0]).unwrap().as_ref());
        assert!(similar_pairs(&one, 0.9).0.is_empty());
        assert!(!one.push(Embedding::quantize(&[1.0]).unwrap().as_ref()));
    }
}
