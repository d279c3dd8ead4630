//! Pixel-wise sigmoid cross-entropy with logits (Lin et al. 2018, §3: mean sigmoid cross-entropy
//! between the network's per-bin output and the label-smoothed Ideal Binary Mask), with class
//! weights and optional per-bin weights.
//!
//! Per element, with y the (smoothed) target, b the bin weight (1 without a weight slice),
//! w₊/w₋ the class weights and softplus(x) = max(x, 0) + ln(1 + e^(−|x|)):
//!
//! ```text
//! l = b · ( w₊ · y · softplus(−x) + w₋ · (1 − y) · softplus(x) )
//!   = −b · ( w₊ · y · ln σ(x) + w₋ · (1 − y) · ln(1 − σ(x)) )
//! ∂l/∂x = b · ( w₋ · (1 − y) · σ(x) − w₊ · y · (1 − σ(x)) )
//! loss = (1/N) · Σ l          (N = number of elements, whatever the weights)
//! ```
//!
//! With w₊ = w₋ = 1 this is `max(x,0) − x·y + ln(1 + e^(−|x|))`. The reduction follows PyTorch's
//! `BCEWithLogitsLoss(weight=b·w₋, pos_weight=w₊/w₋, reduction="mean")`, which also divides by N
//! and not by Σ b, so a bin weight of 2 everywhere doubles the loss. Class weights multiply the
//! positive and negative terms rather than picking one weight per bin; for hard 0/1 targets the
//! two readings agree (w₊ on y = 1 bins, w₋ on y = 0 bins), and for soft targets this one is
//! PyTorch's.

use super::par::{self, BLOCK};
use super::{check_len, check_range, ln_1p_unit, sigmoid_parts};
use crate::{Error, Result};

/// Options of [`bce_with_logits`].
#[derive(Debug, Clone, PartialEq)]
pub struct BceOptions {
    /// e in [0, 0.5): targets become y·(1 − 2e) + e, so hard labels 0/1 become e/1 − e.
    /// Lin et al. use 0.02 (0.02/0.98). Use 0 when the targets are already smoothed.
    pub label_smoothing: f32,
    /// w₊ ≥ 0: weight of the positive (vocal, y) term.
    pub pos_weight: f32,
    /// w₋ ≥ 0: weight of the negative (non-vocal, 1 − y) term.
    pub neg_weight: f32,
    /// Threads to split over; 0 = all available cores.
    pub threads: usize,
}

impl Default for BceOptions {
    /// Plain mean sigmoid cross-entropy: no smoothing, both class weights 1, one thread.
    fn default() -> Self {
        Self { label_smoothing: 0.0, pos_weight: 1.0, neg_weight: 1.0, threads: 1 }
    }
}

impl BceOptions {
    fn validate(&self) -> Result<()> {
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.5)?;
        check_range("pos_weight", self.pos_weight, 0.0, f32::INFINITY)?;
        check_range("neg_weight", self.neg_weight, 0.0, f32::INFINITY)
    }
}

/// Constants of one call, in f64 so products of large weights and logits cannot overflow.
struct Coeffs {
    scale: f64,
    offset: f64,
    pos_weight: f64,
    neg_weight: f64,
    inv_n: f64,
}

/// Mean (weighted) sigmoid cross-entropy of `logits` against `targets`, see the module docs for
/// the exact formula and reduction.
///
/// `targets` are hard 0/1 labels or soft values in [0, 1]; `opts.label_smoothing` is applied to
/// them here. `bin_weights`, when given, scales each element's term. `grad`, when given, is
/// overwritten with d(loss)/d(logit). All slices must have the logits' length
/// ([`Error::Mismatch`] otherwise); an empty input or an out-of-range option is
/// [`Error::InvalidArgument`]. A NaN logit makes the loss NaN (see the module docs).
pub fn bce_with_logits(
    logits: &[f32],
    targets: &[f32],
    bin_weights: Option<&[f32]>,
    opts: &BceOptions,
    grad: Option<&mut [f32]>,
) -> Result<f64> {
    let n = logits.len();
    check_len("targets", n, targets.len())?;
    if let Some(w) = bin_weights {
        check_len("bin_weights", n, w.len())?;
    }
    if let Some(g) = grad.as_deref() {
        check_len("grad", n, g.len())?;
    }
    opts.validate()?;
    if n == 0 {
        return Err(Error::InvalidArgument("bce_with_logits: empty input has no mean".into()));
    }

    let e = f64::from(opts.label_smoothing);
    let k = Coeffs {
        scale: 1.0 - 2.0 * e,
        offset: e,
        pos_weight: f64::from(opts.pos_weight),
        neg_weight: f64::from(opts.neg_weight),
        inv_n: 1.0 / n as f64,
    };
    let mut total = 0.0f64;
    par::for_each_chunk(
        n,
        opts.threads,
        grad,
        |r, g| {
            let (x, y) = (&logits[r.clone()], &targets[r.clone()]);
            // One monomorphised loop per combination keeps the absent options out of the loop.
            match (bin_weights.map(|w| &w[r]), g) {
                (None, None) => chunk::<false, false>(x, y, &[], &mut [], &k),
                (None, Some(g)) => chunk::<false, true>(x, y, &[], g, &k),
                (Some(w), None) => chunk::<true, false>(x, y, w, &mut [], &k),
                (Some(w), Some(g)) => chunk::<true, true>(x, y, w, g, &k),
            }
        },
        |s| total += s,
    );
    Ok(total * k.inv_n)
}

/// Sum of the per-element losses of one chunk (writing gradients when `G`). `w` is read only
/// when `W`, `g` only when `G`; otherwise they may be empty.
fn chunk<const W: bool, const G: bool>(x: &[f32], y: &[f32], w: &[f32], g: &mut [f32], k: &Coeffs) -> f64 {
    let mut total = 0.0f64;
    for start in (0..x.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(x.len());
        let mut acc = 0.0f64;
        for i in start..end {
            let xi = x[i];
            let (p, q, t) = sigmoid_parts(xi);
            let l1p = ln_1p_unit(t);
            let xd = f64::from(xi);
            let yd = f64::from(y[i]) * k.scale + k.offset;
            // `if` rather than f64::max: max would turn a NaN logit into 0 and hide it.
            let relu = if xd > 0.0 { xd } else { 0.0 };
            let softplus_pos = relu + f64::from(l1p); // −ln(1 − σ(x))
            let softplus_neg = (relu - xd) + f64::from(l1p); // −ln σ(x)
            let cp = k.pos_weight * yd;
            let cn = k.neg_weight * (1.0 - yd);
            let mut l = cp * softplus_neg + cn * softplus_pos;
            let mut d = cn * f64::from(p) - cp * f64::from(q);
            if W {
                let b = f64::from(w[i]);
                l *= b;
                d *= b;
            }
            acc += l;
            if G {
                g[i] = (d * k.inv_n) as f32;
            }
        }
        total += acc;
    }
    total
}
