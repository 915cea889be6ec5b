//! Image embeddings as phototag keeps and compares them: a model's pooled features,
//! L2-normalised, stored as one signed byte per dimension with one scale ([`Embedding`]:
//! 1,280 bytes for EfficientNet-Lite0, 512 for ResNet-18), compared by cosine similarity
//! computed on the bytes in integers ([`dot`]). The best matches of a stream of them are
//! kept in bounded memory (`top`); near-duplicate groups are found by random-projection
//! hashing and checked exactly (`near`).
//!
//! Why 8 bits: measured on EfficientNet-Lite0 embeddings of the corpus photos (`benches/
//! near_dupes.rs` prints it), ranking by the stored bytes gives the same top 10 as ranking
//! by the 32-bit features, and scores differ by less than 0.002.
//!
//! May not: touch the catalog or files.

pub mod near;
pub mod sketch;
pub mod top;

/// An embedding as stored: `values[i] * scale` is the i-th component of the L2-normalised
/// features (so the vector of `values` times `scale` has length 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// One signed byte per dimension (as `i8` bits), the largest component at ±127.
    pub values: Vec<u8>,
    pub scale: f32,
}

impl Embedding {
    /// The stored form of a model's features: normalised to length 1, then each component
    /// rounded to a multiple of the largest one over 127. `None` for features that are all
    /// zero or not finite (no direction to compare).
    pub fn quantize(features: &[f32]) -> Option<Embedding> {
        let norm = features
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if !norm.is_finite() || norm == 0.0 {
            return None;
        }
        let max = features
            .iter()
            .map(|&x| (f64::from(x) / norm).abs())
            .fold(0.0f64, f64::max);
        let step = max / 127.0;
        let values: Vec<u8> = features
            .iter()
            .map(|&x| ((f64::from(x) / norm / step).round().clamp(-127.0, 127.0) as i8) as u8)
            .collect();
        let length = (dot(&values, &values) as f64).sqrt();
        Some(Embedding {
            values,
            scale: (1.0 / length) as f32,
        })
    }

    /// The borrowed form.
    pub fn as_ref(&self) -> EmbeddingRef<'_> {
        EmbeddingRef {
            values: &self.values,
            scale: self.scale,
        }
    }

    /// The normalised features back as floats.
    pub fn to_f32(&self) -> Vec<f32> {
        self.values
            .iter()
            .map(|&v| f32::from(v as i8) * self.scale)
            .collect()
    }
}

/// An embedding borrowed from where it is read (a catalog row, a block in memory).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbeddingRef<'a> {
    pub values: &'a [u8],
    pub scale: f32,
}

impl EmbeddingRef<'_> {
    /// `sigmoid(weights · x + bias)` with `x` the normalised features: a logistic
    /// regression's probability (a taught tag's score). 0 when the widths differ (another
    /// model's embedding).
    pub fn logistic(&self, weights: &[f32], bias: f32) -> f32 {
        const LANES: usize = 16;
        if weights.len() != self.values.len() {
            return 0.0;
        }
        let mut acc = [0.0f32; LANES];
        let mut w = weights.chunks_exact(LANES);
        let mut v = self.values.chunks_exact(LANES);
        for (w, v) in (&mut w).zip(&mut v) {
            for i in 0..LANES {
                acc[i] += w[i] * f32::from(v[i] as i8);
            }
        }
        let tail: f32 = w
            .remainder()
            .iter()
            .zip(v.remainder())
            .map(|(w, &v)| w * f32::from(v as i8))
            .sum();
        let z = (acc.iter().sum::<f32>() + tail) * self.scale + bias;
        1.0 / (1.0 + (-z).exp())
    }

    /// Cosine similarity, in [-1, 1]: 1 for the same direction. Embeddings of different
    /// widths (two models) are not comparable: 0.
    pub fn cosine(&self, other: &EmbeddingRef<'_>) -> f32 {
        if self.values.len() != other.values.len() {
            return 0.0;
        }
        (dot(self.values, other.values) as f32 * self.scale * other.scale).clamp(-1.0, 1.0)
    }
}

/// splitmix64: a small deterministic generator for fixed random directions (the sketch's
/// and `near`'s hyperplanes: the same every run, and the sketch's the same forever).
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The dot product of two vectors of signed bytes (stored as `u8` bits), exactly, in
/// integers. Written so that the compiler vectorises it (widening multiply-add); on a CPU
/// with AVX2 (checked once, at run time) the same code is compiled for it, about three
/// times as fast as the baseline x86-64 build.
pub fn dot(a: &[u8], b: &[u8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { dot_avx2(a, b) };
        }
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[u8], b: &[u8]) -> i32 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[u8], b: &[u8]) -> i32 {
    const LANES: usize = 32;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0i32; LANES];
    let mut chunks_a = a.chunks_exact(LANES);
    let mut chunks_b = b.chunks_exact(LANES);
    for (ca, cb) in (&mut chunks_a).zip(&mut chunks_b) {
        for i in 0..LANES {
            acc[i] += i32::from(ca[i] as i8) * i32::from(cb[i] as i8);
        }
    }
    let tail: i32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(&x, &y)| i32::from(x as i8) * i32::from(y as i8))
        .sum();
    acc.iter().sum::<i32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine_f32(a: &[f32], b: &[f32]) -> f32 {
        let d: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        d / (n(a) * n(b))
    }

    /// A deterministic pseudo-random vector (non-negative, like pooled ReLU features).
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
    fn stored_bytes_keep_the_cosine() {
        for n in [512, 1280, 37] {
            let a = features(1, n);
            let mut b = features(2, n);
            // A near copy of a, and an unrelated vector.
            let near: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + 0.1 * y).collect();
            b.iter_mut().for_each(|x| *x *= 3.0);
            let (qa, qb, qn) = (
                Embedding::quantize(&a).unwrap(),
                Embedding::quantize(&b).unwrap(),
                Embedding::quantize(&near).unwrap(),
            );
            assert_eq!(qa.values.len(), n);
            for (x, y, q1, q2) in [(&a, &b, &qa, &qb), (&a, &near, &qa, &qn)] {
                let exact = cosine_f32(x, y);
                let stored = q1.as_ref().cosine(&q2.as_ref());
                assert!((exact - stored).abs() < 2e-3, "{n}: {exact} vs {stored}");
            }
            assert!((qa.as_ref().cosine(&qa.as_ref()) - 1.0).abs() < 1e-6);
            let len: f32 = qa.to_f32().iter().map(|x| x * x).sum();
            assert!((len - 1.0).abs() < 1e-5, "unit length: {len}");
        }
    }

    #[test]
    fn scale_does_not_matter_and_signs_survive() {
        let a = vec![0.5f32, -0.25, 0.0, 1.0];
        let b: Vec<f32> = a.iter().map(|x| x * 1000.0).collect();
        assert_eq!(Embedding::quantize(&a), Embedding::quantize(&b));
        let q = Embedding::quantize(&a).unwrap();
        assert_eq!(
            q.values.iter().map(|&v| v as i8).collect::<Vec<_>>(),
            vec![64, -32, 0, 127]
        );
        let neg: Vec<f32> = a.iter().map(|x| -x).collect();
        let qn = Embedding::quantize(&neg).unwrap();
        assert!((q.as_ref().cosine(&qn.as_ref()) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn nothing_to_compare_is_none() {
        assert_eq!(Embedding::quantize(&[0.0; 8]), None);
        assert_eq!(Embedding::quantize(&[]), None);
        assert_eq!(Embedding::quantize(&[1.0, f32::NAN]), None);
        assert_eq!(Embedding::quantize(&[1.0, f32::INFINITY]), None);
    }

    #[test]
    fn the_vectorised_dot_is_the_portable_one() {
        for n in [0, 1, 31, 32, 33, 512, 1280, 1283] {
            let a: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            let b: Vec<u8> = (0..n).map(|i| (i * 101 + 3) as u8).collect();
            let want: i32 = a
                .iter()
                .zip(&b)
                .map(|(&x, &y)| i32::from(x as i8) * i32::from(y as i8))
                .sum();
            assert_eq!(dot(&a, &b), want, "{n}");
            assert_eq!(dot_portable(&a, &b), want, "{n}");
        }
    }

    #[test]
    fn dot_is_exact_at_the_extremes() {
        let a = vec![(-127i8) as u8; 1283];
        assert_eq!(dot(&a, &a), 127 * 127 * 1283);
        let b = vec![127u8; 1283];
        assert_eq!(dot(&a, &b), -127 * 127 * 1283);
        assert_eq!(dot(&a[..5], &b), -127 * 127 * 5, "the shorter length");
    }

    #[test]
    fn different_widths_are_not_similar() {
        let a = Embedding::quantize(&features(1, 512)).unwrap();
        let b = Embedding::quantize(&features(1, 1280)).unwrap();
        assert_eq!(a.as_ref().cosine(&b.as_ref()), 0.0);
    }
}
