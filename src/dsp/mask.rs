//! From the model's per-bin output to the two stems' masks, and from the mixture spectrum to the
//! model's input features. Lin et al. 2018, §3.3: the vocal mask keeps P(vocal) where it reaches
//! a threshold and is 0 elsewhere; the accompaniment mask is built the same way from 1 − P.

use realfft::num_complex::Complex32;

use super::simd;

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
    pub fn choose(
        name: Option<&str>,
        threshold: Option<f32>,
        model_rule: MaskRule,
        model_threshold: f32,
    ) -> Option<Self> {
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
    /// Converts model output values to P(vocal) in place (the sigmoid of logits, or
    /// probabilities clamped to [0, 1]), mapping NaN to 0 (not vocal) so that a broken model can
    /// never write NaN into the stems.
    pub fn to_probabilities(self, values: &mut [f32]) {
        match self {
            ModelOutput::Logit => simd::sigmoid_in_place(values),
            ModelOutput::Probability => {
                values.iter_mut().for_each(|v| *v = if v.is_nan() { 0.0 } else { v.clamp(0.0, 1.0) })
            }
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

    /// Writes the features of one spectrum into `out`, from the magnitudes times `scale` (one
    /// factor per bin) when given.
    pub fn compute_into(self, spectrum: &[Complex32], scale: Option<&[f32]>, out: &mut [f32]) {
        simd::magnitude_features(spectrum, scale, self == Feature::Log1pMagnitude, out);
    }
}

/// Applies the masks derived from `probabilities` (P(vocal) per bin, from
/// [`ModelOutput::to_probabilities`]) to `mixture`, writing the vocal spectrum and, when asked
/// for, the accompaniment's (callers that form the accompaniment as the mixture minus the vocals
/// pass `None`), and returns the mean vocal mask over the top `top_bins` bins (used to split the
/// band above the model's Nyquist frequency). `probabilities` is left holding the vocal masks,
/// which saves a buffer.
pub fn apply_masks(
    mixture: &[Complex32],
    probabilities: &mut [f32],
    rule: MaskRule,
    vocals: &mut [Complex32],
    accompaniment: Option<&mut [Complex32]>,
    top_bins: usize,
) -> f32 {
    let n = mixture.len();
    let masks = &mut probabilities[..n];
    if let Some(accompaniment) = accompaniment {
        for ((a, x), &p) in accompaniment[..n].iter_mut().zip(mixture).zip(masks.iter()) {
            *a = x * rule.masks(p).1;
        }
    }
    // The soft rules' vocal mask is P itself.
    if !matches!(rule, MaskRule::Soft | MaskRule::Wiener) {
        masks.iter_mut().for_each(|m| *m = rule.masks(*m).0);
    }
    simd::scale_spectrum(mixture, masks, &mut vocals[..n]);
    let top = &masks[n.saturating_sub(top_bins)..];
    if top.is_empty() { 0.0 } else { top.iter().sum::<f32>() / top.len() as f32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rule's masks, the complex products and the top-band mean, over a length that is not
    /// a whole number of vector steps.
    #[test]
    fn masks_scale_every_bin_by_its_rule() {
        let n = 21;
        let mixture: Vec<Complex32> = (0..n).map(|i| Complex32::new(i as f32 + 1.0, -(i as f32) * 0.5)).collect();
        let logits: Vec<f32> = (0..n).map(|i| i as f32 * 0.4 - 4.0).collect();
        let mut probs = logits.clone();
        ModelOutput::Logit.to_probabilities(&mut probs);
        for rule in [MaskRule::Binary, MaskRule::Paper { threshold: 0.6 }, MaskRule::Soft, MaskRule::Wiener] {
            let (mut v, mut a) = (vec![Complex32::default(); n], vec![Complex32::default(); n]);
            let g = apply_masks(&mixture, &mut probs.clone(), rule, &mut v, Some(&mut a), 5);
            for i in 0..n {
                let (mv, ma) = rule.masks(probs[i]);
                assert_eq!(v[i], mixture[i] * mv, "{rule:?} vocals bin {i}");
                assert_eq!(a[i], mixture[i] * ma, "{rule:?} accompaniment bin {i}");
            }
            let top: f32 = (n - 5..n).map(|i| rule.masks(probs[i]).0).sum::<f32>() / 5.0;
            assert!((g - top).abs() < 1e-6, "{rule:?}: top-band gain {g} vs {top}");
        }
    }

    /// Probabilities are clamped and NaN becomes 0 (not vocal), for either kind of output.
    #[test]
    fn probabilities_are_finite_and_in_range() {
        let mut p = vec![-0.5, 0.25, 1.5, f32::NAN, f32::INFINITY];
        ModelOutput::Probability.to_probabilities(&mut p);
        assert_eq!(p, [0.0, 0.25, 1.0, 0.0, 1.0]);
        let mut l = vec![0.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        ModelOutput::Logit.to_probabilities(&mut l);
        assert_eq!(l[..3], [0.5, 0.0, 1.0]);
        assert!((0.0..1e-30).contains(&l[3]), "sigmoid(-inf) = {}", l[3]);
    }
}
