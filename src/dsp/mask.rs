//! From the model's per-bin output to the two stems' masks, and from the mixture spectrum to the
//! model's input features. Lin et al. 2018, §3.3: the vocal mask keeps P(vocal) where it reaches
//! a threshold and is 0 elsewhere; the accompaniment mask is built the same way from 1 − P.

use realfft::num_complex::Complex32;
use wide::f32x8;

/// Bins per SIMD step (`wide::f32x8`) of the feature, mask and Wiener filter loops.
pub(super) const STEP: usize = 8;

/// How P(vocal) becomes the vocal and accompaniment masks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaskRule {
    /// Hard decision at 0.5: vocal mask 1 where P ≥ 0.5, accompaniment its complement.
    Binary,
    /// The paper's rule: vocal mask P where P ≥ threshold else 0; accompaniment likewise from 1 − P.
    Paper { threshold: f32 },
    /// The probabilities themselves; the two stems sum back to the mixture.
    Soft,
    /// The soft mask, refined on stereo input by a multichannel Wiener filter that also uses
    /// where each source sits in the stereo image ([`super::spatial`]); the soft mask itself on
    /// mono or more than two channels. The two stems sum back to the mixture.
    Wiener,
}

impl MaskRule {
    /// Parses a rule name (`binary`, `paper`, `soft`, `wiener`); `paper` takes `threshold`.
    pub fn parse(name: &str, threshold: f32) -> Option<Self> {
        match name {
            "binary" => Some(MaskRule::Binary),
            "paper" => Some(MaskRule::Paper { threshold }),
            "soft" => Some(MaskRule::Soft),
            "wiener" => Some(MaskRule::Wiener),
            _ => None,
        }
    }

    /// The rule's name as the CLI and the contract spell it.
    pub fn name(&self) -> &'static str {
        match self {
            MaskRule::Binary => "binary",
            MaskRule::Paper { .. } => "paper",
            MaskRule::Soft => "soft",
            MaskRule::Wiener => "wiener",
        }
    }

    /// The rule a user asked for, falling back to the model's: `name` (`binary`, `paper`,
    /// `soft`) or the model's rule, with `threshold` (else the model's) for `paper`. `None` for an
    /// unknown name.
    pub fn choose(name: Option<&str>, threshold: Option<f32>, model_rule: MaskRule, model_threshold: f32) -> Option<Self> {
        let threshold = threshold.unwrap_or(model_threshold);
        match (name, model_rule) {
            (Some(name), _) => MaskRule::parse(name, threshold),
            (None, MaskRule::Paper { .. }) => Some(MaskRule::Paper { threshold }),
            (None, rule) => Some(rule),
        }
    }

    /// Names accepted by [`MaskRule::parse`] (for command-line parsers).
    pub const NAMES: [&'static str; 4] = ["binary", "paper", "soft", "wiener"];

    /// True when the two masks sum to one in every bin, so that the accompaniment is exactly the
    /// input minus the vocals and need not be synthesised on its own.
    pub fn is_complementary(&self) -> bool {
        matches!(self, MaskRule::Binary | MaskRule::Soft | MaskRule::Wiener)
    }

    /// Vocal and accompaniment mask values for one bin with P(vocal) = `p`.
    #[inline]
    pub fn masks(&self, p: f32) -> (f32, f32) {
        match *self {
            MaskRule::Binary => {
                if p >= 0.5 {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            MaskRule::Paper { threshold } => {
                let q = 1.0 - p;
                (if p >= threshold { p } else { 0.0 }, if q >= threshold { q } else { 0.0 })
            }
            // The Wiener filter starts from the soft mask; `MaskEngine` refines it on stereo.
            MaskRule::Soft | MaskRule::Wiener => (p, 1.0 - p),
        }
    }
}

/// What the model's output values mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelOutput {
    /// Logit of P(vocal); the runtime applies the sigmoid.
    Logit,
    /// P(vocal) itself.
    Probability,
}

impl ModelOutput {
    /// Converts one model output value to P(vocal), mapping NaN to 0 (not vocal) so a broken
    /// model can never write NaN into the stems.
    #[inline]
    pub fn probability(self, v: f32) -> f32 {
        let p = match self {
            ModelOutput::Logit => 1.0 / (1.0 + (-v).exp()),
            ModelOutput::Probability => v.clamp(0.0, 1.0),
        };
        if p.is_nan() { 0.0 } else { p }
    }

    /// [`probability`](Self::probability) of eight values at once (the sigmoid on 8-lane
    /// vectors: the per-bin `exp` call was most of the mask's cost).
    #[inline]
    fn probability8(self, v: [f32; STEP]) -> [f32; STEP] {
        match self {
            ModelOutput::Logit => {
                let v = f32x8::from(v);
                let p = f32x8::ONE / (f32x8::ONE + (-v).exp());
                // NaN in, NaN out: mapped to 0 like the scalar path. Huge negative logits give
                // exp = inf and p = 0 on their own.
                p.is_nan().select(f32x8::ZERO, p).to_array()
            }
            ModelOutput::Probability => v.map(|x| self.probability(x)),
        }
    }
}

/// Input features computed from the mixture spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// |X| (the paper's input).
    Magnitude,
    /// ln(1 + |X|), which compresses the dynamic range.
    Log1pMagnitude,
}

impl Feature {
    /// Parses the contract's `feature` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "magnitude" => Some(Feature::Magnitude),
            "log1p_magnitude" => Some(Feature::Log1pMagnitude),
            _ => None,
        }
    }

    /// The contract's spelling.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Magnitude => "magnitude",
            Feature::Log1pMagnitude => "log1p_magnitude",
        }
    }

    /// Writes the features of one spectrum into `out`.
    pub fn compute_into(self, spectrum: &[Complex32], out: &mut [f32]) {
        match self {
            Feature::Magnitude => {
                for (o, c) in out.iter_mut().zip(spectrum) {
                    *o = magnitude(c);
                }
            }
            Feature::Log1pMagnitude => {
                for (o, c) in out.iter_mut().zip(spectrum) {
                    *o = magnitude(c);
                }
                let mut chunks = out.chunks_exact_mut(STEP);
                for o in &mut chunks {
                    let x = f32x8::from(<[f32; STEP]>::try_from(&*o).unwrap());
                    o.copy_from_slice(&ln_1p8(x).to_array());
                }
                for o in chunks.into_remainder() {
                    *o = ln_1p(*o);
                }
            }
        }
    }
}

/// |c| without `hypot`'s overflow guards, which cost a fifth of the feature time and are not
/// needed for audio spectra (|re|, |im| < 1e18).
#[inline]
fn magnitude(c: &Complex32) -> f32 {
    (c.re * c.re + c.im * c.im).sqrt()
}

/// ln(1 + x) for x ≥ 0 via Goldberg's correction, ln(u)·x/(u − 1) with u = 1 + x: as accurate
/// as `f32::ln_1p` (within an ulp or two) and about twice as fast, since it needs only `ln`.
#[inline]
fn ln_1p(x: f32) -> f32 {
    let u = 1.0 + x;
    if u == 1.0 { x } else { u.ln() * x / (u - 1.0) }
}

/// [`ln_1p`] on eight values (`wide`'s vector `ln`: the per-bin `ln` call was most of the
/// feature's cost).
#[inline]
fn ln_1p8(x: f32x8) -> f32x8 {
    let u = f32x8::ONE + x;
    let exact = u.simd_eq(f32x8::ONE);
    exact.select(x, u.ln() * x / (u - f32x8::ONE))
}

/// Applies the masks derived from `model_out` (one value per bin) to `mixture`, writing the vocal
/// spectrum and, when asked for, the accompaniment's (callers that form the accompaniment as the
/// mixture minus the vocals pass `None`), and returns the mean vocal mask over the top `top_bins`
/// bins (used to split the band above the model's Nyquist frequency).
pub fn apply_masks(
    mixture: &[Complex32],
    model_out: &[f32],
    output: ModelOutput,
    rule: MaskRule,
    vocals: &mut [Complex32],
    mut accompaniment: Option<&mut [Complex32]>,
    top_bins: usize,
) -> f32 {
    let n = mixture.len();
    let top_start = n.saturating_sub(top_bins);
    let (mixture, model_out, vocals) = (&mixture[..n], &model_out[..n], &mut vocals[..n]);
    let mut top_sum = 0.0f32;
    let mut masks_v = [0.0f32; STEP];
    let mut masks_a = [0.0f32; STEP];
    for start in (0..n).step_by(STEP) {
        let len = STEP.min(n - start);
        let probs = if len == STEP {
            output.probability8(model_out[start..start + STEP].try_into().unwrap())
        } else {
            let mut p = [0.0f32; STEP];
            for (p, &r) in p.iter_mut().zip(&model_out[start..start + len]) {
                *p = output.probability(r);
            }
            p
        };
        for j in 0..STEP {
            (masks_v[j], masks_a[j]) = rule.masks(probs[j]);
        }
        let range = start..start + len;
        for ((v, x), m) in vocals[range.clone()].iter_mut().zip(&mixture[range.clone()]).zip(&masks_v) {
            *v = x * m;
        }
        if let Some(a) = accompaniment.as_deref_mut() {
            for ((a, x), m) in a[range.clone()].iter_mut().zip(&mixture[range]).zip(&masks_a) {
                *a = x * m;
            }
        }
        for j in top_start.saturating_sub(start).min(len)..len {
            top_sum += masks_v[j];
        }
    }
    if top_bins == 0 { 0.0 } else { top_sum / (n - top_start) as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, rel: f32) -> bool {
        (a == b) || (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    /// The 8-lane sigmoid agrees with the scalar one to a few ulps, NaN included (mapped to 0).
    #[test]
    fn vector_sigmoid_matches_scalar() {
        let mut values: Vec<f32> = (-400..=400).map(|i| i as f32 * 0.1).collect();
        values.extend([1e4, -1e4, 88.0, -88.0, 104.0, -104.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 0.0, -0.0]);
        values.resize(values.len().next_multiple_of(STEP), 0.5);
        for chunk in values.chunks_exact(STEP) {
            let v = ModelOutput::Logit.probability8(chunk.try_into().unwrap());
            for (&x, &p) in chunk.iter().zip(&v) {
                let s = ModelOutput::Logit.probability(x);
                assert!(close(p, s, 1e-6) || (p - s).abs() < 1e-30, "sigmoid({x}): {p} vs {s}");
                assert!((0.0..=1.0).contains(&p), "sigmoid({x}) = {p}");
            }
        }
    }

    /// The 8-lane log1p agrees with the scalar one to a few ulps over the magnitudes spectra have.
    #[test]
    fn vector_log1p_matches_scalar() {
        let mut values = vec![0.0f32, 1e-30, 1e-12, 1e-8, 6e-8, 1e-7, 1e-3, 0.5, 1.0, 2.0, 1e3, 1e6, 1e12];
        values.extend((0..200).map(|i| (i as f32 * 0.2).exp() * 1e-9));
        let spectrum: Vec<Complex32> = values.iter().map(|&m| Complex32::new(m, 0.0)).collect();
        let mut out = vec![0.0f32; spectrum.len()];
        Feature::Log1pMagnitude.compute_into(&spectrum, &mut out);
        for (c, &f) in spectrum.iter().zip(&out) {
            let x = magnitude(c);
            let s = ln_1p(x);
            assert!(close(f, s, 4e-7), "ln_1p({x}): {f} vs {s}");
        }
    }
}
