//! Training targets from separated sources: the Ideal Binary Mask (Lin et al. 2018, §3: a bin is
//! vocal when |V| > |A|, label-smoothed to 0.02/0.98) and per-bin weights that emphasise the
//! IBM's boundaries, where the mask is hardest to get right and errors are most audible.
//!
//! Spectrogram slices are frame-major: element `t * bins + f` is frame `t`, frequency bin `f`
//! (the layout of the model's 9 × 2049 input and output).

use super::{check_len, check_range};
use crate::{Error, Result};

/// Writes the smoothed IBM of one spectrogram: `out[i] = 1 − e` where `vocals_mag[i] >
/// accomp_mag[i]`, else `e` (e = `smoothing` in [0, 0.5); 0 gives the hard 0/1 mask).
///
/// Ties (including silence, 0 vs 0) and NaN comparisons are non-vocal. Do not smooth twice:
/// feed [`super::bce_with_logits`] either these targets with `label_smoothing = 0`, or the hard
/// mask (`smoothing = 0` here) with its own `label_smoothing`.
pub fn ibm_targets(vocals_mag: &[f32], accomp_mag: &[f32], smoothing: f32, out: &mut [f32]) -> Result<()> {
    let n = vocals_mag.len();
    check_len("accomp_mag", n, accomp_mag.len())?;
    check_len("out", n, out.len())?;
    check_range("smoothing", smoothing, 0.0, 0.5)?;
    let (on, off) = (1.0 - smoothing, smoothing);
    for ((o, &v), &a) in out.iter_mut().zip(vocals_mag).zip(accomp_mag) {
        *o = if v > a { on } else { off };
    }
    Ok(())
}

/// Writes per-bin weights for [`super::bce_with_logits`]: `boost` on every bin whose mask class
/// differs from one of its four time or frequency neighbours (both sides of each boundary), 1
/// elsewhere. Neighbours outside the `frames × bins` grid do not count.
///
/// `ibm` may be hard (0/1) or smoothed: a bin is vocal when its value is above 0.5. `ibm` and
/// `out` must hold `frames * bins` values ([`Error::Mismatch`]); `boost` must be finite and ≥ 0.
pub fn boundary_weights(ibm: &[f32], frames: usize, bins: usize, boost: f32, out: &mut [f32]) -> Result<()> {
    let n = frames
        .checked_mul(bins)
        .ok_or_else(|| Error::InvalidArgument(format!("boundary_weights: {frames} frames × {bins} bins overflows")))?;
    check_len("ibm", n, ibm.len())?;
    check_len("out", n, out.len())?;
    check_range("boost", boost, 0.0, f32::INFINITY)?;
    if n == 0 {
        return Ok(());
    }
    out.fill(1.0);
    let vocal = |i: usize| ibm[i] > 0.5;
    for t in 0..frames {
        let row = t * bins;
        for f in 0..bins {
            let i = row + f;
            // Mark each differing neighbour pair once, from its earlier member.
            if f + 1 < bins && vocal(i) != vocal(i + 1) {
                out[i] = boost;
                out[i + 1] = boost;
            }
            if t + 1 < frames && vocal(i) != vocal(i + bins) {
                out[i] = boost;
                out[i + bins] = boost;
            }
        }
    }
    Ok(())
}
