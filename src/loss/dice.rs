//! Self-adjusting Dice loss (Li et al. 2020, "Dice Loss for Data-imbalanced NLP Tasks", §3.4,
//! eq. 12, in its set-level form), on per-bin logits.
//!
//! ```text
//! p = σ(x),   p̃ = (1 − p)^α · p
//! D = 1 − (2 Σ p̃·y + s) / (Σ p̃ + Σ y + s)
//! ```
//!
//! The (1 − p)^α factor pushes down bins the model already calls confidently vocal, so that easy
//! bins do not dominate; α = 0 gives the plain soft Dice loss. Because the gradient of every
//! element depends on the three global sums, a gradient call makes two passes: the sums, then
//! the gradient, recomputing p̃ on the fly instead of storing it. With A = 2 Σ p̃·y + s and
//! B = Σ p̃ + Σ y + s:
//!
//! ```text
//! ∂D/∂p̃ᵢ = (A − 2 yᵢ B) / B²,   ∂p̃ᵢ/∂xᵢ = p̃ᵢ · ((1 − pᵢ) − α pᵢ)
//! ```
//!
//! (the second form needs no negative power of 1 − p, so it holds for α < 1 too).

use super::par::{self, BLOCK};
use super::{check_len, check_range, sigmoid_parts};
use crate::Result;

/// Options of [`self_adjusting_dice`].
#[derive(Debug, Clone, PartialEq)]
pub struct DiceOptions {
    /// α ≥ 0: exponent of the (1 − p) down-weighting factor; 0 is plain soft Dice.
    pub alpha: f32,
    /// s > 0: added to numerator and denominator; keeps the loss defined (and 0) when there are
    /// no positive targets and no predicted mass, and stops the ratio from exploding near it.
    pub smoothing: f32,
    /// Threads to split over; 0 = all available cores.
    pub threads: usize,
}

impl Default for DiceOptions {
    /// α = 1, s = 1, one thread.
    fn default() -> Self {
        Self { alpha: 1.0, smoothing: 1.0, threads: 1 }
    }
}

/// How to form (1 − p)^α: the two common exponents avoid a `powf` per element.
const ALPHA_ZERO: u8 = 0;
const ALPHA_ONE: u8 = 1;
const ALPHA_ANY: u8 = 2;

/// Self-adjusting Dice loss of `logits` against `targets` (soft or hard, in [0, 1]), see the
/// module docs. `grad`, when given, is overwritten with dD/d(logit). Length mismatches are
/// [`crate::Error::Mismatch`]; α < 0, s ≤ 0 or non-finite options are
/// [`crate::Error::InvalidArgument`]. An empty input gives 0 (both sums vanish, s/s = 1).
/// A NaN logit makes the loss NaN (see the parent module's docs).
pub fn self_adjusting_dice(
    logits: &[f32],
    targets: &[f32],
    opts: &DiceOptions,
    grad: Option<&mut [f32]>,
) -> Result<f64> {
    let n = logits.len();
    check_len("targets", n, targets.len())?;
    if let Some(g) = grad.as_deref() {
        check_len("grad", n, g.len())?;
    }
    check_range("alpha", opts.alpha, 0.0, f32::INFINITY)?;
    if !(opts.smoothing.is_finite() && opts.smoothing > 0.0) {
        let msg = format!("smoothing = {} must be finite and > 0", opts.smoothing);
        return Err(crate::Error::InvalidArgument(msg));
    }

    let alpha = opts.alpha;
    let mode = if alpha == 0.0 {
        ALPHA_ZERO
    } else if alpha == 1.0 {
        ALPHA_ONE
    } else {
        ALPHA_ANY
    };
    let mut sums = Sums::default();
    par::for_each_chunk(
        n,
        opts.threads,
        None,
        |r, _| {
            let (x, y) = (&logits[r.clone()], &targets[r]);
            match mode {
                ALPHA_ZERO => sums_chunk::<ALPHA_ZERO>(x, y, alpha),
                ALPHA_ONE => sums_chunk::<ALPHA_ONE>(x, y, alpha),
                _ => sums_chunk::<ALPHA_ANY>(x, y, alpha),
            }
        },
        |s| sums.add(&s),
    );

    let s = f64::from(opts.smoothing);
    let num = 2.0 * sums.pt_y + s;
    let den = sums.pt + sums.y + s;
    let loss = 1.0 - num / den;

    if let Some(grad) = grad {
        let k = GradCoeffs { num_over_den2: num / (den * den), two_over_den: 2.0 / den, alpha };
        par::for_each_chunk(
            n,
            opts.threads,
            Some(grad),
            |r, g| {
                let (x, y) = (&logits[r.clone()], &targets[r]);
                // for_each_chunk hands every range its piece of the Some(grad) it was given.
                if let Some(g) = g {
                    match mode {
                        ALPHA_ZERO => grad_chunk::<ALPHA_ZERO>(x, y, g, &k),
                        ALPHA_ONE => grad_chunk::<ALPHA_ONE>(x, y, g, &k),
                        _ => grad_chunk::<ALPHA_ANY>(x, y, g, &k),
                    }
                }
            },
            |()| {},
        );
    }
    Ok(loss)
}

/// Σ p̃·y, Σ p̃ and Σ y over some range.
#[derive(Default)]
struct Sums {
    pt_y: f64,
    pt: f64,
    y: f64,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.pt_y += o.pt_y;
        self.pt += o.pt;
        self.y += o.y;
    }
}

/// p̃ = (1 − p)^α · p and the derivative factor (1 − p) − α p, from one logit.
#[inline(always)]
fn p_tilde<const MODE: u8>(x: f32, alpha: f32) -> (f32, f32) {
    let (p, q, _) = sigmoid_parts(x);
    let pt = match MODE {
        ALPHA_ZERO => p,
        ALPHA_ONE => q * p,
        _ => q.powf(alpha) * p,
    };
    (pt, q - alpha * p)
}

fn sums_chunk<const MODE: u8>(x: &[f32], y: &[f32], alpha: f32) -> Sums {
    let mut total = Sums::default();
    for start in (0..x.len()).step_by(BLOCK) {
        let end = (start + BLOCK).min(x.len());
        let mut acc = Sums::default();
        for i in start..end {
            let (pt, _) = p_tilde::<MODE>(x[i], alpha);
            let (pt, yi) = (f64::from(pt), f64::from(y[i]));
            acc.pt_y += pt * yi;
            acc.pt += pt;
            acc.y += yi;
        }
        total.add(&acc);
    }
    total
}

struct GradCoeffs {
    /// A / B²
    num_over_den2: f64,
    /// 2 / B, so that (A − 2 y B) / B² = A/B² − y · 2/B
    two_over_den: f64,
    alpha: f32,
}

fn grad_chunk<const MODE: u8>(x: &[f32], y: &[f32], g: &mut [f32], k: &GradCoeffs) {
    for ((gi, &xi), &yi) in g.iter_mut().zip(x).zip(y) {
        let (pt, dfac) = p_tilde::<MODE>(xi, k.alpha);
        let d_pt = k.num_over_den2 - f64::from(yi) * k.two_over_den;
        *gi = (d_pt * f64::from(pt) * f64::from(dfac)) as f32;
    }
}
