//! A 256-bit sketch of a stored embedding, for finding the few embeddings worth comparing
//! among a million without reading them all: bit `i` is the sign of the embedding's
//! projection on fixed sparse random direction `i` (SimHash). Two embeddings at angle θ
//! differ in about `256 · θ / π` bits, so the Hamming distance of two sketches (32 bytes,
//! four popcounts) estimates their cosine; `similar` scans sketches, keeps the closest few
//! thousand, and compares only those exactly (see `similar`).
//!
//! The directions depend only on the embedding's width and a fixed seed: the same in every
//! catalog and every release (the catalog stores sketches; changing them needs a
//! migration that writes them again). They are not centred on any catalog's mean, so a
//! sketch never goes stale as the catalog grows.
//!
//! May not: touch the catalog or files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Bits in a sketch.
pub const BITS: usize = 256;

/// Bytes in a stored sketch.
pub const BYTES: usize = BITS / 8;

/// Non-zero coordinates of each direction (each +1 or -1).
const NON_ZERO: usize = 64;

/// A stored sketch.
pub type Sketch = [u8; BYTES];

/// The directions for one width: for each bit, its coordinates and signs.
struct Directions {
    coords: Vec<(u16, bool)>,
}

impl Directions {
    fn new(dim: usize) -> Directions {
        // splitmix64 from a fixed seed: the same directions forever.
        let mut rng = super::SplitMix64(0x5ce7_c400_0000_0000 ^ dim as u64);
        let mut next = || rng.next();
        let coords = (0..BITS * NON_ZERO)
            .map(|_| {
                let r = next();
                (((r & 0xffff_ffff) % dim as u64) as u16, r >> 63 == 0)
            })
            .collect();
        Directions { coords }
    }
}

/// The directions of each width met so far (a process meets one or two).
fn directions(dim: usize) -> Arc<Directions> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<Directions>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(dim)
        .or_insert_with(|| Arc::new(Directions::new(dim)))
        .clone()
}

/// The sketch of a stored embedding's bytes (signed, one per dimension; the scale does not
/// change a sign). Widths past 65,536 dimensions only use the first 65,536.
pub fn sketch(values: &[u8]) -> Sketch {
    let mut out = [0u8; BYTES];
    let dim = values.len().min(1 << 16);
    if dim == 0 {
        return out;
    }
    let d = directions(dim);
    for (bit, plane) in d.coords.chunks_exact(NON_ZERO).enumerate() {
        let mut s = 0i32;
        for &(c, positive) in plane {
            let x = i32::from(values[usize::from(c)] as i8);
            s += if positive { x } else { -x };
        }
        if s > 0 {
            out[bit / 8] |= 1 << (bit % 8);
        }
    }
    out
}

/// Bits that differ between two sketches.
pub fn distance(a: &Sketch, b: &Sketch) -> u32 {
    let word =
        |s: &Sketch, i: usize| u64::from_le_bytes(s[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    (0..BYTES / 8)
        .map(|i| (word(a, i) ^ word(b, i)).count_ones())
        .sum()
}

/// The distance two sketches are expected to have when their embeddings have cosine
/// `cosine`, and its standard deviation (bits differ independently with probability
/// θ/π).
pub fn expected_distance(cosine: f32) -> (f64, f64) {
    let p = f64::from(cosine.clamp(-1.0, 1.0)).acos() / std::f64::consts::PI;
    let n = BITS as f64;
    (n * p, (n * p * (1.0 - p)).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::Embedding;

    fn features(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32).powi(3) * 6.0
            })
            .collect()
    }

    #[test]
    fn the_same_direction_gives_the_same_sketch() {
        let a = features(1, 1280);
        let b: Vec<f32> = a.iter().map(|x| x * 7.0).collect();
        let (qa, qb) = (
            Embedding::quantize(&a).unwrap(),
            Embedding::quantize(&b).unwrap(),
        );
        assert_eq!(sketch(&qa.values), sketch(&qb.values));
        assert_eq!(distance(&sketch(&qa.values), &sketch(&qa.values)), 0);
        let neg: Vec<f32> = a.iter().map(|x| -x).collect();
        let qn = Embedding::quantize(&neg).unwrap();
        // Opposite directions differ in every bit whose projection is not exactly 0.
        assert!(distance(&sketch(&qa.values), &sketch(&qn.values)) > 240);
    }

    #[test]
    fn distance_follows_the_angle() {
        // Pairs at many angles: the measured distance stays within 4 standard deviations
        // of the expected one, and closer pairs are nearer on average.
        for dim in [512, 1280] {
            let mut means = Vec::new();
            for mix in [0.05f32, 0.3, 0.8, 2.0] {
                let mut total = 0.0;
                for seed in 0..40 {
                    let a = features(seed * 2 + 1, dim);
                    let b: Vec<f32> = a
                        .iter()
                        .zip(features(seed * 2 + 2, dim))
                        .map(|(x, y)| x + mix * y)
                        .collect();
                    let (qa, qb) = (
                        Embedding::quantize(&a).unwrap(),
                        Embedding::quantize(&b).unwrap(),
                    );
                    let cos = qa.as_ref().cosine(&qb.as_ref());
                    let d = distance(&sketch(&qa.values), &sketch(&qb.values));
                    let (mean, sd) = expected_distance(cos);
                    assert!(
                        (f64::from(d) - mean).abs() <= 4.0 * sd + 2.0,
                        "{dim} {mix}: cos {cos} distance {d}, expected {mean:.1} ± {sd:.1}"
                    );
                    total += f64::from(d);
                }
                means.push(total / 40.0);
            }
            assert!(means.windows(2).all(|w| w[0] < w[1]), "{means:?}");
        }
    }

    #[test]
    fn fixed_forever() {
        // Stored sketches must stay valid: these bits may never change without a
        // migration that rewrites every stored sketch.
        let q = Embedding::quantize(&features(3, 512)).unwrap();
        let s = sketch(&q.values);
        let hex: String = s[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, FIXED_512);
    }

    const FIXED_512: &str = "44d9896da0643696";
}
