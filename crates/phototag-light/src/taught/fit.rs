//! Logistic regression with L2 regularisation on embeddings, and the threshold chosen by
//! cross-validation: what `phototag teach` fits.
//!
//! Written here (~150 lines) rather than taken from `linfa-logistic`: that crate brings
//! `ndarray`, `argmin` and their dependencies for what is, on a few hundred unit vectors,
//! one accelerated gradient descent; and phototag needs class-balanced weights (a handful
//! of yes examples against many no) and stratified folds, which it would leave to us anyway.
//!
//! The loss: the mean log-loss with each class weighing half (so 5 yes against 200 no still
//! count), plus `LAMBDA / 2 · |w|²` (the bias is not regularised). Embeddings have length
//! 1, so the gradient is Lipschitz with constant at most `0.5 + LAMBDA` (the bias counted
//! as a feature of value 1): Nesterov's method with step `1 / L` converges without a line
//! search.
//!
//! May not: read the catalog or print.

/// The regularisation: small, since the classes differ by small angles between unit
/// vectors, but enough to keep the weights finite on separable examples.
pub const LAMBDA: f32 = 1e-4;

/// Gradient steps per fit (the loss is `LAMBDA`-strongly convex: this is past convergence
/// to within 1e-4 of the optimum on the sizes `teach` sees).
const STEPS: usize = 1000;

/// Folds of the cross-validation, at most (fewer when a class has fewer examples).
pub const FOLDS: usize = 5;

/// A fitted linear classifier: `p = sigmoid(weights · x + bias)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    pub weights: Vec<f32>,
    pub bias: f32,
}

impl Linear {
    /// The probability of an embedding given as floats.
    pub fn probability(&self, x: &[f32]) -> f32 {
        sigmoid(dot(&self.weights, x) + self.bias)
    }
}

/// What the cross-validation found: the threshold, and the precision and recall of the
/// out-of-fold predictions at it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Validation {
    pub folds: usize,
    pub threshold: f32,
    pub precision: f32,
    pub recall: f32,
}

pub fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fits on `xs` (each of the same length) and their labels. Each class must be present.
pub fn fit(xs: &[&[f32]], ys: &[bool]) -> Linear {
    let d = xs.first().map_or(0, |x| x.len());
    let pos = ys.iter().filter(|y| **y).count().max(1) as f32;
    let neg = ys.iter().filter(|y| !**y).count().max(1) as f32;
    let weight: Vec<f32> = ys
        .iter()
        .map(|&y| if y { 0.5 / pos } else { 0.5 / neg })
        .collect();
    let step = 1.0 / (0.5 + LAMBDA);
    // Nesterov: `w` the iterate, `v` the look-ahead point the gradient is taken at.
    let (mut w, mut b) = (vec![0.0f32; d], 0.0f32);
    let (mut v, mut vb) = (w.clone(), b);
    let mut grad = vec![0.0f32; d];
    for k in 0..STEPS {
        grad.iter_mut().zip(&v).for_each(|(g, v)| *g = LAMBDA * v);
        let mut gb = 0.0;
        for ((x, &y), &c) in xs.iter().zip(ys).zip(&weight) {
            let r = c * (sigmoid(dot(&v, x) + vb) - if y { 1.0 } else { 0.0 });
            grad.iter_mut().zip(*x).for_each(|(g, x)| *g += r * x);
            gb += r;
        }
        let momentum = k as f32 / (k as f32 + 3.0);
        for i in 0..d {
            let next = v[i] - step * grad[i];
            v[i] = next + momentum * (next - w[i]);
            w[i] = next;
        }
        let next_b = vb - step * gb;
        vb = next_b + momentum * (next_b - b);
        b = next_b;
    }
    Linear {
        weights: w,
        bias: b,
    }
}

/// Stratified `k`-fold cross-validation (`k` = [`FOLDS`], or the smaller class's count):
/// every example is predicted by a fit on the folds without it; the threshold is the one
/// that maximises F1 on those predictions, placed halfway between the two predictions it
/// separates. `None` when a class has fewer than 2 examples.
pub fn cross_validate(xs: &[&[f32]], ys: &[bool]) -> Option<Validation> {
    let pos: Vec<usize> = (0..ys.len()).filter(|&i| ys[i]).collect();
    let neg: Vec<usize> = (0..ys.len()).filter(|&i| !ys[i]).collect();
    let k = FOLDS.min(pos.len()).min(neg.len());
    if k < 2 {
        return None;
    }
    let mut fold = vec![0usize; ys.len()];
    for (n, &i) in pos.iter().enumerate() {
        fold[i] = n % k;
    }
    for (n, &i) in neg.iter().enumerate() {
        fold[i] = n % k;
    }
    let mut predicted = vec![0.0f32; ys.len()];
    for f in 0..k {
        let train: Vec<usize> = (0..ys.len()).filter(|&i| fold[i] != f).collect();
        let tx: Vec<&[f32]> = train.iter().map(|&i| xs[i]).collect();
        let ty: Vec<bool> = train.iter().map(|&i| ys[i]).collect();
        let model = fit(&tx, &ty);
        for i in (0..ys.len()).filter(|&i| fold[i] == f) {
            predicted[i] = model.probability(xs[i]);
        }
    }
    Some(choose_threshold(&predicted, ys, k))
}

/// The threshold maximising F1 on out-of-fold predictions (ties: the higher precision).
pub fn choose_threshold(predicted: &[f32], ys: &[bool], folds: usize) -> Validation {
    let mut order: Vec<usize> = (0..ys.len()).collect();
    order.sort_by(|&a, &b| predicted[b].total_cmp(&predicted[a]));
    let total_pos = ys.iter().filter(|y| **y).count() as f32;
    let mut best = Validation {
        folds,
        threshold: 0.5,
        precision: 0.0,
        recall: 0.0,
    };
    let mut best_f1 = -1.0f32;
    let (mut tp, mut fp) = (0.0f32, 0.0f32);
    for (n, &i) in order.iter().enumerate() {
        if ys[i] {
            tp += 1.0
        } else {
            fp += 1.0
        }
        // Only cut between two different predictions.
        let next = order.get(n + 1).map(|&j| predicted[j]);
        if next == Some(predicted[i]) {
            continue;
        }
        let precision = tp / (tp + fp);
        let recall = tp / total_pos;
        let f1 = if tp == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        if f1 > best_f1 || (f1 == best_f1 && precision > best.precision) {
            best_f1 = f1;
            let threshold = match next {
                Some(p) => (predicted[i] + p) / 2.0,
                None => predicted[i] / 2.0,
            };
            best = Validation {
                folds,
                threshold: threshold.clamp(0.05, 0.95),
                precision,
                recall,
            };
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors around two directions, with some noise from a fixed sequence.
    fn cloud(n: usize, centre: usize, d: usize, seed: u32) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let mut v: Vec<f32> = (0..d)
                    .map(|_| {
                        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (s >> 8) as f32 / (1u32 << 24) as f32 * 0.6
                    })
                    .collect();
                v[centre] += 1.0;
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= n);
                v
            })
            .collect()
    }

    #[test]
    fn separates_two_clouds_and_validates_them() {
        let yes = cloud(8, 0, 16, 1);
        let no = cloud(20, 1, 16, 2);
        let xs: Vec<&[f32]> = yes.iter().chain(&no).map(|v| v.as_slice()).collect();
        let ys: Vec<bool> = (0..xs.len()).map(|i| i < yes.len()).collect();
        let m = fit(&xs, &ys);
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(m.probability(x) > 0.5, *y);
        }
        // New points of each cloud fall on their side.
        for v in cloud(10, 0, 16, 3) {
            assert!(m.probability(&v) > 0.5, "{}", m.probability(&v));
        }
        for v in cloud(10, 1, 16, 4) {
            assert!(m.probability(&v) < 0.5);
        }
        let cv = cross_validate(&xs, &ys).unwrap();
        assert_eq!(cv.folds, 5);
        assert_eq!((cv.precision, cv.recall), (1.0, 1.0));
        assert!(cv.threshold > 0.05 && cv.threshold < 0.95);
    }

    #[test]
    fn no_validation_with_a_lone_example() {
        let yes = cloud(1, 0, 4, 1);
        let no = cloud(5, 1, 4, 2);
        let xs: Vec<&[f32]> = yes.iter().chain(&no).map(|v| v.as_slice()).collect();
        let ys: Vec<bool> = (0..xs.len()).map(|i| i == 0).collect();
        assert!(cross_validate(&xs, &ys).is_none());
    }

    #[test]
    fn the_threshold_maximises_f1_between_predictions() {
        let p = [0.9, 0.8, 0.6, 0.4, 0.3, 0.1];
        let y = [true, true, false, true, false, false];
        let v = choose_threshold(&p, &y, 3);
        // Cutting at 0.35 keeps 3 of 3 yes with one no: F1 0.857 beats 0.8 at 0.7.
        assert!((v.threshold - 0.35).abs() < 1e-6, "{v:?}");
        assert_eq!((v.precision, v.recall), (0.75, 1.0));
    }
}
