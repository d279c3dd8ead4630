//! Training examples from decoded tracks. Each track's vocal and accompaniment STFTs are computed
//! once; because the STFT is linear, an augmented mixture g_v·V_i + g_a·A_j (vocals and
//! accompaniment from different tracks, random gains, either channel, random excerpts) is formed
//! directly in the spectral domain, and its IBM target is |g_v·V_i| > |g_a·A_j|.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realfft::num_complex::Complex32;

use crate::dsp::stft::stft;
use crate::loss::ibm_targets;
use crate::model::Contract;
use crate::dataset::Stems;
use crate::{Error, Result};

/// Spectra of one channel of one track: `frames × bins`, row-major.
pub struct ChannelSpectra {
    pub frames: usize,
    pub vocals: Vec<Complex32>,
    pub accompaniment: Vec<Complex32>,
}

/// All training material, spectral domain.
pub struct SpectralData {
    pub bins: usize,
    /// `[track][channel]`.
    pub tracks: Vec<Vec<ChannelSpectra>>,
    pub names: Vec<String>,
}

/// Augmentation settings.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    /// Probability that vocals and accompaniment come from different tracks.
    pub remix: f32,
    /// Gains are drawn uniformly in dB from this range, per stem.
    pub gain_db: (f32, f32),
}

impl Default for Augment {
    fn default() -> Self {
        Augment { remix: 0.5, gain_db: (-9.0, 3.0) }
    }
}

/// Smallest per-bin feature deviation used for normalisation, as a fraction of the median bin's.
pub const MIN_STD_FRACTION: f64 = 0.1;

/// Caps per-bin normalisation scales (1/deviation) at the median bin's divided by
/// [`MIN_STD_FRACTION`], i.e. floors each deviation at that fraction of the median one.
pub fn cap_scales(scale: &mut [f32]) {
    if scale.is_empty() {
        return;
    }
    let mut sorted = scale.to_vec();
    sorted.sort_by(f32::total_cmp);
    let cap = sorted[sorted.len() / 2] / MIN_STD_FRACTION as f32;
    scale.iter_mut().for_each(|v| *v = v.min(cap));
}

fn flat_stft(contract: &Contract, x: &[f32]) -> Result<Vec<Complex32>> {
    Ok(stft(contract.stft, x)?.into_iter().flatten().collect())
}

impl SpectralData {
    /// Computes the spectra of every channel of every track (stems at the model's rate).
    pub fn new(contract: &Contract, tracks: &[(String, Stems)], min_frames: usize) -> Result<Self> {
        let mut out = Vec::new();
        let mut names = Vec::new();
        for (name, stems) in tracks {
            if stems.sample_rate != contract.sample_rate {
                return Err(Error::Mismatch {
                    what: format!("track {name} sample rate"),
                    expected: contract.sample_rate.to_string(),
                    got: stems.sample_rate.to_string(),
                });
            }
            let mut chans = Vec::new();
            for (v, a) in stems.vocals.iter().zip(&stems.accompaniment) {
                let vocals = flat_stft(contract, v)?;
                let accompaniment = flat_stft(contract, a)?;
                chans.push(ChannelSpectra { frames: vocals.len() / contract.bins(), vocals, accompaniment });
            }
            if chans.first().is_some_and(|c| c.frames >= min_frames) {
                out.push(chans);
                names.push(name.clone());
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidArgument(format!("no track is long enough for {min_frames}-frame excerpts")));
        }
        Ok(SpectralData { bins: contract.bins(), tracks: out, names })
    }

    /// Mean and 1/std per bin of the features of the unaugmented mixtures (input normalisation).
    /// Each bin's deviation is floored at `MIN_STD_FRACTION` of the median bin's: bins that are
    /// nearly empty in training (the top of the band, above the resampler's edge) would otherwise
    /// get scales in the hundreds and turn tiny input differences into large activations.
    pub fn feature_stats(&self, contract: &Contract) -> (Vec<f32>, Vec<f32>) {
        let bins = self.bins;
        let (mut sum, mut sq, mut n) = (vec![0.0f64; bins], vec![0.0f64; bins], 0usize);
        let mut feat = vec![0.0f32; bins];
        let mut mix = vec![Complex32::default(); bins];
        for track in &self.tracks {
            for ch in track {
                for f in 0..ch.frames {
                    for k in 0..bins {
                        mix[k] = ch.vocals[f * bins + k] + ch.accompaniment[f * bins + k];
                    }
                    contract.feature.compute_into(&mix, &mut feat);
                    for k in 0..bins {
                        sum[k] += feat[k] as f64;
                        sq[k] += (feat[k] as f64).powi(2);
                    }
                    n += 1;
                }
            }
        }
        let n = n.max(1) as f64;
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let mut scale: Vec<f32> =
            sq.iter().zip(&sum).map(|(q, s)| (1.0 / (q / n - (s / n).powi(2)).max(1e-16).sqrt()) as f32).collect();
        cap_scales(&mut scale);
        (mean, scale)
    }

    /// Fills `features` and `targets` (`batch × frames × bins`) with one augmented batch drawn
    /// from `rng`; `smoothing` is the IBM label smoothing. With `weight_power` p > 0, `weights`
    /// gets one loss weight per bin, |X|^p of the mixture normalised to mean 1 over the batch:
    /// SDR is an energy measure, so a wrong decision on a loud bin costs far more than on a bin
    /// near silence, and unweighted cross-entropy spends the model on the many quiet bins.
    /// With p = 0 `weights` is left empty.
    pub fn batch(
        &self,
        contract: &Contract,
        rng: &mut StdRng,
        aug: &Augment,
        batch: usize,
        frames: usize,
        smoothing: f32,
        weight_power: f32,
        features: &mut Vec<f32>,
        targets: &mut Vec<f32>,
        weights: &mut Vec<f32>,
    ) -> Result<()> {
        let bins = self.bins;
        features.resize(batch * frames * bins, 0.0);
        targets.resize(batch * frames * bins, 0.0);
        weights.clear();
        if weight_power > 0.0 {
            weights.resize(batch * frames * bins, 0.0);
        }
        let mut mix = vec![Complex32::default(); bins];
        let (mut vm, mut am) = (vec![0.0f32; bins], vec![0.0f32; bins]);
        for b in 0..batch {
            let ti = rng.random_range(0..self.tracks.len());
            let tj = if rng.random::<f32>() < aug.remix { rng.random_range(0..self.tracks.len()) } else { ti };
            let ci = rng.random_range(0..self.tracks[ti].len());
            let cj = rng.random_range(0..self.tracks[tj].len());
            let (vs, acs) = (&self.tracks[ti][ci], &self.tracks[tj][cj]);
            let oi = rng.random_range(0..=vs.frames - frames);
            let oj = rng.random_range(0..=acs.frames - frames);
            let db = |rng: &mut StdRng| 10f32.powf(rng.random_range(aug.gain_db.0..=aug.gain_db.1) / 20.0);
            let (gv, ga) = (db(rng), db(rng));
            for f in 0..frames {
                let v = &vs.vocals[(oi + f) * bins..(oi + f + 1) * bins];
                let a = &acs.accompaniment[(oj + f) * bins..(oj + f + 1) * bins];
                for k in 0..bins {
                    let (vk, ak) = (v[k] * gv, a[k] * ga);
                    mix[k] = vk + ak;
                    vm[k] = vk.norm();
                    am[k] = ak.norm();
                }
                let row = (b * frames + f) * bins;
                contract.feature.compute_into(&mix, &mut features[row..row + bins]);
                ibm_targets(&vm, &am, smoothing, &mut targets[row..row + bins])?;
                if weight_power > 0.0 {
                    for (w, x) in weights[row..row + bins].iter_mut().zip(&mix) {
                        *w = x.norm().powf(weight_power);
                    }
                }
            }
        }
        if !weights.is_empty() {
            let mean = weights.iter().map(|&w| w as f64).sum::<f64>() / weights.len() as f64;
            if mean > 0.0 && mean.is_finite() {
                let scale = (1.0 / mean) as f32;
                weights.iter_mut().for_each(|w| *w *= scale);
            } else {
                weights.fill(1.0);
            }
        }
        Ok(())
    }
}

/// The RNG for global step `step`: every step's batch depends only on the seed and the step, so
/// a resumed run draws exactly the batches an uninterrupted one would have.
pub fn step_rng(seed: u64, step: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step)
}
