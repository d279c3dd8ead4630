//! Loss kernels shared by training, validation and the `voxmask` CLI.
//!
//! The model gives one logit per time-frequency bin, the logit of P(vocal). Its target is the
//! Ideal Binary Mask (IBM, |V| > |A|) with label smoothing, as in Lin et al. 2018, "Singing Voice
//! Separation Using a Deep Convolutional Neural Network Trained by Ideal Binary Mask and Cross
//! Entropy" (§3: mean sigmoid cross-entropy against a 0.02/0.98-smoothed IBM).
//!
//! Every kernel works on plain slices, computes the loss value and (optionally) its gradient with
//! respect to the logits in the same pass, never materialises a probability array, and splits
//! large inputs over `threads` scoped threads. They are pure functions so the trainer can wrap
//! them as candle custom ops with a hand-written backward and validation can call them as they are.
//!
//! Conventions common to all kernels:
//! - sums are accumulated in `f64` (per 1024-element block, then per thread, then over threads),
//!   so the thread count changes a loss only through summation order (≪ 1e-12 relative) and never
//!   changes a gradient element;
//! - `grad`, when given, is overwritten (not accumulated into) with d(loss)/d(logit);
//! - `threads == 0` means "all available cores"; inputs shorter than [`MIN_ELEMS_PER_THREAD`] per
//!   thread use fewer threads, because spawning costs more than it saves there;
//! - non-finite logits are not rejected (that would cost a pass): NaN propagates into the loss
//!   and into that element's gradient, ±inf may give an infinite or NaN loss. Callers (the
//!   trainer) stop on a non-finite loss. Finite logits of any magnitude, up to ±`f32::MAX`, give
//!   a finite loss and finite gradients.

mod bce;
mod dice;
mod ibm;
mod par;

pub use bce::{BceOptions, bce_with_logits};
pub use dice::{DiceOptions, self_adjusting_dice};
pub use ibm::{boundary_weights, ibm_targets};
pub use par::MIN_ELEMS_PER_THREAD;

use crate::{Error, Result};

/// Fails with [`Error::Mismatch`] unless `got == expected`.
fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::Mismatch { what: format!("{what} length"), expected: expected.to_string(), got: got.to_string() })
    }
}

/// Fails with [`Error::InvalidArgument`] unless `v` is finite and within `[lo, hi)`.
fn check_range(what: &str, v: f32, lo: f32, hi: f32) -> Result<()> {
    if v.is_finite() && v >= lo && v < hi {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("{what} = {v} is outside [{lo}, {hi})")))
    }
}

/// Logistic sigmoid p = σ(x), its complement 1 − p (both to full relative precision) and
/// t = e^(−|x|) ∈ (0, 1].
///
/// Computing `1 - p` by subtraction would lose every digit once p rounds to 1 (x ≳ 17 in f32);
/// going through t keeps both sides exact and never overflows. NaN in gives NaN out.
#[inline(always)]
fn sigmoid_parts(x: f32) -> (f32, f32, f32) {
    let t = (-x.abs()).exp();
    let r = 1.0 / (1.0 + t);
    let small = t * r;
    if x >= 0.0 { (r, small, t) } else { (small, r, t) }
}

/// ln(1 + t) for t ∈ [0, 1] (the t of [`sigmoid_parts`]), so that softplus(x) = max(x, 0) +
/// ln_1p_unit(t) = −ln(1 − σ(x)).
///
/// `f32::ln_1p` costs about twice `ln` here and dominated the BCE kernel. This is the classic
/// correction (Goldberg 1991, "What every computer scientist should know about floating-point
/// arithmetic", Theorem 4): with u = fl(1 + t), ln(u) · t / (u − 1) cancels the rounding of u and
/// stays within a few ulp; u = 1 means t is below half an ulp of 1 and ln(1 + t) = t.
#[inline(always)]
fn ln_1p_unit(t: f32) -> f32 {
    let u = 1.0 + t;
    if u == 1.0 { t } else { u.ln() * (t / (u - 1.0)) }
}
