//! Training examples from decoded tracks. Each track's vocal and accompaniment STFTs are computed
//! once; because the STFT is linear, an augmented mixture g_v·V_i + g_a·A_j (vocals and
//! accompaniment from different tracks, random gains, either channel, random excerpts) is formed
//! directly in the spectral domain, and its IBM target is |g_v·V_i| > |g_a·A_j|. With part
//! remixing the accompaniment is instead Σ_p g_p·P_p, each of its stems (drums, bass, other)
//! from its own random track, channel and excerpt: far more distinct accompaniments than tracks.
//!
//! Tracks may come from several datasets, each drawn with its own probability (the dataset's
//! weight shared among its tracks), and vocals of one dataset meet accompaniments of another.
//! Material stored at a lower rate than the model's (MIR-1K's 16 kHz) has nothing above its own
//! band: an IBM there would teach the network that vocals stop at 6–8 kHz, so those bins get zero
//! loss weight in every example that uses such a stem.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realfft::num_complex::Complex32;

use crate::dataset::Stems;
use crate::dsp::stft::stft;
use crate::loss::ibm_targets;
use crate::model::Contract;
use crate::{Error, Result};

/// Spectra of one channel of one track: `frames × bins`, row-major.
pub struct ChannelSpectra {
    pub frames: usize,
    pub vocals: Vec<Complex32>,
    pub accompaniment: Vec<Complex32>,
    /// The accompaniment's stems, each `frames × bins` (empty unless loaded with its parts).
    pub parts: Vec<Vec<Complex32>>,
    /// Bins `0..band_bins` carry the stems' full content ([`Stems::bandwidth_hz`]); the bins above
    /// are empty or attenuated by the resampler and take no part in the loss.
    pub band_bins: usize,
}

/// All training material, spectral domain.
pub struct SpectralData {
    pub bins: usize,
    /// `[track][channel]`.
    pub tracks: Vec<Vec<ChannelSpectra>>,
    pub names: Vec<String>,
    /// Cumulative probabilities of drawing each track (`None`: uniform, drawn as an index).
    cumulative: Option<Vec<f64>>,
    /// Where accompaniments come from when some tracks supply vocals only: those tracks'
    /// indices and cumulative probabilities (`None`: from any track, as `cumulative`).
    accompaniments: Option<(Vec<usize>, Vec<f64>)>,
    /// Tracks whose accompaniment is never used.
    vocals_only: Vec<bool>,
    /// Tracks that hold their accompaniment's stems (the donors of part remixing).
    with_parts: Vec<usize>,
}

/// Number of bins, counted from DC, whose centre frequency is at most `bandwidth_hz`.
pub fn band_bins(contract: &Contract, bandwidth_hz: f32) -> usize {
    let bin_hz = contract.sample_rate as f32 / contract.stft.n_fft as f32;
    ((bandwidth_hz / bin_hz).floor() as usize + 1).min(contract.bins())
}

/// How one training track is drawn: its relative probability, and whether only its vocals are
/// used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackRole {
    pub weight: f64,
    pub vocals_only: bool,
}

/// Augmentation settings.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    /// Probability that vocals and accompaniment come from different tracks.
    pub remix: f32,
    /// Gains are drawn uniformly in dB from this range, per stem.
    pub gain_db: (f32, f32),
    /// Probability that the accompaniment is rebuilt from its stems, each from a random track,
    /// channel and excerpt with its own gain (needs data loaded with its parts).
    pub part_remix: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Augment { remix: 0.5, gain_db: (-9.0, 3.0), part_remix: 0.0 }
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
    /// Computes the spectra of every channel of every track (stems at the model's rate); tracks
    /// are drawn uniformly.
    pub fn new(contract: &Contract, tracks: &[(String, Stems)], min_frames: usize) -> Result<Self> {
        Self::weighted(contract, tracks, None, min_frames)
    }

    /// [`SpectralData::new`] with a relative probability of drawing each track (`weights[i]` for
    /// `tracks[i]`; `None` is uniform).
    pub fn weighted(
        contract: &Contract,
        tracks: &[(String, Stems)],
        weights: Option<&[f64]>,
        min_frames: usize,
    ) -> Result<Self> {
        let roles: Option<Vec<TrackRole>> =
            weights.map(|w| w.iter().map(|&weight| TrackRole { weight, vocals_only: false }).collect());
        Self::with_roles(contract, tracks, roles.as_deref(), min_frames)
    }

    /// [`SpectralData::weighted`] where some tracks may supply vocals only: their vocals are
    /// always mixed with another track's accompaniment, drawn by weight among the other tracks.
    pub fn with_roles(
        contract: &Contract,
        tracks: &[(String, Stems)],
        roles: Option<&[TrackRole]>,
        min_frames: usize,
    ) -> Result<Self> {
        let weights: Option<Vec<f64>> = roles.map(|r| r.iter().map(|r| r.weight).collect());
        let weights = weights.as_deref();
        if let Some(w) = weights.filter(|w| w.len() != tracks.len() || w.iter().any(|v| !(v.is_finite() && *v >= 0.0)))
        {
            return Err(Error::InvalidArgument(format!(
                "{} track weights for {} tracks, or a weight that is not ≥ 0",
                w.len(),
                tracks.len()
            )));
        }
        let spectra = |(name, stems): &(String, Stems)| -> Result<Vec<ChannelSpectra>> {
            if stems.sample_rate != contract.sample_rate {
                return Err(Error::Mismatch {
                    what: format!("track {name} sample rate"),
                    expected: contract.sample_rate.to_string(),
                    got: stems.sample_rate.to_string(),
                });
            }
            let band = band_bins(contract, stems.bandwidth_hz());
            let mut chans = Vec::new();
            for (ch, (v, a)) in stems.vocals.iter().zip(&stems.accompaniment).enumerate() {
                let vocals = flat_stft(contract, v)?;
                let accompaniment = flat_stft(contract, a)?;
                let parts =
                    stems.accompaniment_parts.iter().map(|p| flat_stft(contract, &p[ch])).collect::<Result<_>>()?;
                chans.push(ChannelSpectra {
                    frames: vocals.len() / contract.bins(),
                    vocals,
                    accompaniment,
                    parts,
                    band_bins: band,
                });
            }
            Ok(chans)
        };
        // Tracks are independent: their STFTs run on every core (the order is kept).
        let all: Vec<Vec<ChannelSpectra>> = {
            use rayon::prelude::*;
            tracks.par_iter().map(spectra).collect::<Result<_>>()?
        };
        let mut out = Vec::new();
        let mut names = Vec::new();
        let mut kept_weights = Vec::new();
        let mut vocals_only = Vec::new();
        for (i, ((name, _), chans)) in tracks.iter().zip(all).enumerate() {
            if chans.first().is_some_and(|c| c.frames >= min_frames) {
                out.push(chans);
                names.push(name.clone());
                kept_weights.push(weights.map_or(1.0, |w| w[i]));
                vocals_only.push(roles.is_some_and(|r| r[i].vocals_only));
            }
        }
        if out.is_empty() {
            return Err(Error::InvalidArgument(format!("no track is long enough for {min_frames}-frame excerpts")));
        }
        // Part remixing draws part p of one track with part p of others: all tracks that hold
        // their stems must agree (tracks stored without them, like MIR-1K's, are not donors).
        let with_parts: Vec<usize> = (0..out.len()).filter(|&i| !out[i][0].parts.is_empty()).collect();
        if let Some(&first) = with_parts.first() {
            let parts = out[first][0].parts.len();
            if let Some(&i) = with_parts.iter().find(|&&i| out[i].iter().any(|c| c.parts.len() != parts)) {
                return Err(Error::InvalidArgument(format!(
                    "track {} has {} accompaniment stems, track {} has {parts}: part remixing needs the same stems in every track",
                    names[i],
                    out[i][0].parts.len(),
                    names[first]
                )));
            }
        }
        let total: f64 = kept_weights.iter().sum();
        if total.is_nan() || total <= 0.0 {
            return Err(Error::InvalidArgument("every track has weight 0".into()));
        }
        let uniform = kept_weights.iter().all(|&w| w == kept_weights[0]);
        let cumulative = (!uniform).then(|| {
            let mut acc = 0.0;
            kept_weights
                .iter()
                .map(|w| {
                    acc += w / total;
                    acc
                })
                .collect()
        });
        let accompaniments = if vocals_only.iter().any(|&v| v) {
            let donors: Vec<usize> = (0..out.len()).filter(|&i| !vocals_only[i]).collect();
            let total: f64 = donors.iter().map(|&i| kept_weights[i]).sum();
            if donors.is_empty() || total.is_nan() || total <= 0.0 {
                return Err(Error::InvalidArgument(
                    "every track supplies vocals only: a dataset must supply accompaniments".into(),
                ));
            }
            let mut acc = 0.0;
            let cumulative: Vec<f64> = donors
                .iter()
                .map(|&i| {
                    acc += kept_weights[i] / total;
                    acc
                })
                .collect();
            Some((donors, cumulative))
        } else {
            None
        };
        Ok(SpectralData {
            bins: contract.bins(),
            tracks: out,
            names,
            cumulative,
            accompaniments,
            vocals_only,
            with_parts,
        })
    }

    /// Draws a track index: uniformly, or by the tracks' weights.
    fn draw_track(&self, rng: &mut StdRng) -> usize {
        match &self.cumulative {
            None => rng.random_range(0..self.tracks.len()),
            Some(c) => {
                let u = rng.random::<f64>();
                c.partition_point(|&p| p <= u).min(self.tracks.len() - 1)
            }
        }
    }

    /// Draws the track whose accompaniment goes under the vocals of track `vocals` (`remix`:
    /// the example is remixed). Without vocals-only tracks this is [`Self::draw_track`] exactly
    /// when remixing, so such runs keep their batches.
    fn draw_accompaniment(&self, vocals: usize, remix: bool, rng: &mut StdRng) -> usize {
        match &self.accompaniments {
            None if remix => self.draw_track(rng),
            None => vocals,
            Some(_) if !remix && !self.vocals_only[vocals] => vocals,
            Some((donors, cumulative)) => {
                let u = rng.random::<f64>();
                donors[cumulative.partition_point(|&p| p <= u).min(donors.len() - 1)]
            }
        }
    }

    /// Mean and 1/std per bin of the features of the unaugmented mixtures (input normalisation).
    /// Each bin's deviation is floored at `MIN_STD_FRACTION` of the median bin's: bins that are
    /// nearly empty in training (the top of the band, above the resampler's edge) would otherwise
    /// get scales in the hundreds and turn tiny input differences into large activations.
    /// Only full-band tracks count when there are any: the statistics describe the music the
    /// model will separate, not the empty top band of material stored at a lower rate.
    pub fn feature_stats(&self, contract: &Contract) -> (Vec<f32>, Vec<f32>) {
        let bins = self.bins;
        let (mut sum, mut sq, mut n) = (vec![0.0f64; bins], vec![0.0f64; bins], 0usize);
        let mut feat = vec![0.0f32; bins];
        let mut mix = vec![Complex32::default(); bins];
        // Mixtures of vocals-only tracks never reach the network.
        let mixtures = || self.tracks.iter().zip(&self.vocals_only).filter(|(_, v)| !**v).map(|(t, _)| t);
        let any_full = mixtures().any(|t| t[0].band_bins == bins);
        for track in mixtures().filter(|t| !any_full || t[0].band_bins == bins) {
            for ch in track {
                for f in 0..ch.frames {
                    let frame = f * bins..(f + 1) * bins;
                    for ((m, v), a) in mix.iter_mut().zip(&ch.vocals[frame.clone()]).zip(&ch.accompaniment[frame]) {
                        *m = v + a;
                    }
                    contract.feature.compute_into(&mix, None, &mut feat);
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
    /// Bins above the band of either stem of an example get weight 0 ([`ChannelSpectra::band_bins`]).
    /// With p = 0 and every stem full-band, `weights` is left empty.
    // The three outputs are caller-owned buffers reused across steps, so they stay arguments.
    #[allow(clippy::too_many_arguments)]
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
        let band_limited = self.tracks.iter().any(|t| t[0].band_bins < bins);
        if weight_power > 0.0 || band_limited {
            weights.resize(batch * frames * bins, 0.0);
        }
        let mut mix = vec![Complex32::default(); bins];
        let mut acc = vec![Complex32::default(); bins];
        let (mut vm, mut am) = (vec![0.0f32; bins], vec![0.0f32; bins]);
        let db = |rng: &mut StdRng| 10f32.powf(rng.random_range(aug.gain_db.0..=aug.gain_db.1) / 20.0);
        // Where each accompaniment stem is read when the accompaniment is rebuilt: (spectra, first frame, gain).
        let mut parts: Vec<(&[Complex32], usize, f32)> = Vec::new();
        for b in 0..batch {
            let ti = self.draw_track(rng);
            let tj = self.draw_accompaniment(ti, rng.random::<f32>() < aug.remix, rng);
            let ci = rng.random_range(0..self.tracks[ti].len());
            let cj = rng.random_range(0..self.tracks[tj].len());
            let (vs, acs) = (&self.tracks[ti][ci], &self.tracks[tj][cj]);
            let oi = rng.random_range(0..=vs.frames - frames);
            let oj = rng.random_range(0..=acs.frames - frames);
            let (gv, ga) = (db(rng), db(rng));
            parts.clear();
            // Drawn only when asked for, so runs without part remixing keep their batches.
            let mut band = vs.band_bins.min(acs.band_bins);
            if aug.part_remix > 0.0 && !acs.parts.is_empty() && rng.random::<f32>() < aug.part_remix {
                for p in 0..acs.parts.len() {
                    let t = &self.tracks[self.with_parts[rng.random_range(0..self.with_parts.len())]];
                    band = band.min(t[0].band_bins);
                    let c = &t[rng.random_range(0..t.len())];
                    let o = rng.random_range(0..=c.frames - frames);
                    parts.push((&c.parts[p], o, db(rng)));
                }
            }
            for f in 0..frames {
                let v = &vs.vocals[(oi + f) * bins..(oi + f + 1) * bins];
                if parts.is_empty() {
                    for (a, &x) in acc.iter_mut().zip(&acs.accompaniment[(oj + f) * bins..(oj + f + 1) * bins]) {
                        *a = x * ga;
                    }
                } else {
                    acc.fill(Complex32::default());
                    for &(spectra, o, g) in &parts {
                        for (a, &x) in acc.iter_mut().zip(&spectra[(o + f) * bins..(o + f + 1) * bins]) {
                            *a += x * g;
                        }
                    }
                }
                for k in 0..bins {
                    let (vk, ak) = (v[k] * gv, acc[k]);
                    mix[k] = vk + ak;
                    vm[k] = vk.norm();
                    am[k] = ak.norm();
                }
                let row = (b * frames + f) * bins;
                contract.feature.compute_into(&mix, None, &mut features[row..row + bins]);
                ibm_targets(&vm, &am, smoothing, &mut targets[row..row + bins])?;
                if !weights.is_empty() {
                    let (inside, above) = weights[row..row + bins].split_at_mut(band);
                    if weight_power > 0.0 {
                        inside.iter_mut().zip(&mix).for_each(|(w, x)| *w = x.norm().powf(weight_power));
                    } else {
                        inside.fill(1.0);
                    }
                    above.fill(0.0);
                }
            }
        }
        // Loudness weights are normalised to mean 1; band limits alone keep in-band weights at 1.
        if weight_power > 0.0 {
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

/// How every batch of a run is drawn.
#[derive(Debug, Clone, Copy)]
pub struct BatchSpec {
    pub seed: u64,
    pub augment: Augment,
    pub batch: usize,
    pub frames: usize,
    pub smoothing: f32,
    pub weight_power: f32,
}

/// One step's batch, with the step's RNG as drawing the batch left it (the step goes on to draw
/// its dropout masks from it, exactly as if it had drawn the batch itself).
pub struct PreparedBatch {
    pub step: u64,
    pub features: Vec<f32>,
    pub targets: Vec<f32>,
    pub weights: Vec<f32>,
    pub rng: StdRng,
}

/// Batches prepared ahead on their own thread, so that forming mixtures, features and targets
/// overlaps the previous step's forward and backward passes. Every batch depends only on the seed
/// and its step ([`step_rng`]), so prefetching changes no value. The thread ends when the
/// `Prefetch` is dropped.
pub struct Prefetch {
    rx: std::sync::mpsc::Receiver<Result<PreparedBatch>>,
}

/// Batches waiting at most: enough to hide a slow batch, few enough to bound memory.
const PREFETCH_DEPTH: usize = 2;

impl Prefetch {
    /// Starts drawing the batches of `steps` in order.
    pub fn start(
        data: std::sync::Arc<SpectralData>,
        contract: Contract,
        spec: BatchSpec,
        steps: std::ops::Range<u64>,
    ) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(PREFETCH_DEPTH);
        std::thread::Builder::new()
            .name("voxmask-batches".into())
            .spawn(move || {
                for step in steps {
                    let mut rng = step_rng(spec.seed, step);
                    let (mut features, mut targets, mut weights) = (Vec::new(), Vec::new(), Vec::new());
                    let drawn = data.batch(
                        &contract,
                        &mut rng,
                        &spec.augment,
                        spec.batch,
                        spec.frames,
                        spec.smoothing,
                        spec.weight_power,
                        &mut features,
                        &mut targets,
                        &mut weights,
                    );
                    let item = drawn.map(|_| PreparedBatch { step, features, targets, weights, rng });
                    // A closed channel means the trainer stopped: nothing more to prepare.
                    if tx.send(item).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| Error::Train(format!("starting the batch thread: {e}")))?;
        Ok(Prefetch { rx })
    }

    /// The next batch (blocks until it is ready).
    pub fn next(&self) -> Result<PreparedBatch> {
        self.rx.recv().map_err(|_| Error::Train("the batch thread stopped".into()))?
    }
}

/// The RNG for global step `step`: every step's batch depends only on the seed and the step, so
/// a resumed run draws exactly the batches an uninterrupted one would have.
pub fn step_rng(seed: u64, step: u64) -> StdRng {
    StdRng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::net::Preset;

    /// One mono track whose every frame has the same spectrum (so every excerpt is alike); its
    /// accompaniment is the sum of two stems, which are stored scaled by `parts`.
    fn steady_data(bins: usize, parts: [f32; 2]) -> SpectralData {
        let frames = 40;
        let spectrum =
            |f: &dyn Fn(usize) -> Complex32| -> Vec<Complex32> { (0..frames * bins).map(|i| f(i % bins)).collect() };
        let p1 = |k: usize| Complex32::new((k % 7) as f32, 1.0);
        let p2 = |k: usize| Complex32::new(0.5, (k % 5) as f32 - 2.0);
        let track = ChannelSpectra {
            frames,
            vocals: spectrum(&|k| Complex32::new(((k * 3) % 11) as f32, -1.0)),
            accompaniment: spectrum(&|k| p1(k) + p2(k)),
            parts: vec![spectrum(&|k| p1(k) * parts[0]), spectrum(&|k| p2(k) * parts[1])],
            band_bins: bins,
        };
        SpectralData {
            bins,
            tracks: vec![vec![track]],
            names: vec!["steady".into()],
            cumulative: None,
            accompaniments: None,
            vocals_only: vec![false],
            with_parts: vec![0],
        }
    }

    fn batch(data: &SpectralData, contract: &Contract, part_remix: f32) -> (Vec<f32>, Vec<f32>) {
        let aug = Augment { remix: 0.5, gain_db: (0.0, 0.0), part_remix };
        let mut rng = StdRng::seed_from_u64(7);
        let (mut f, mut t, mut w) = (Vec::new(), Vec::new(), Vec::new());
        data.batch(contract, &mut rng, &aug, 4, 16, 0.0, 0.0, &mut f, &mut t, &mut w).unwrap();
        (f, t)
    }

    /// Rebuilding the accompaniment from its stems gives the accompaniment when the stems are
    /// steady and sum to it, and uses the stems (not the summed accompaniment) when they do not.
    #[test]
    fn part_remixing_rebuilds_the_accompaniment_from_its_stems() {
        let contract = Preset::Live.contract();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * (1.0 + x.abs()));
        let data = steady_data(contract.bins(), [1.0, 1.0]);
        let (f0, t0) = batch(&data, &contract, 0.0);
        let (f1, t1) = batch(&data, &contract, 1.0);
        assert!(close(&f0, &f1), "features differ although the stems sum to the accompaniment");
        assert!(close(&t0, &t1));
        let data = steady_data(contract.bins(), [3.0, 3.0]);
        let (f0, _) = batch(&data, &contract, 0.0);
        let (f1, _) = batch(&data, &contract, 1.0);
        assert!(!close(&f0, &f1), "louder stems did not change the features: the stems were not used");
    }

    /// Tracks with different sets of accompaniment stems cannot be part-remixed: a clear error.
    #[test]
    fn tracks_must_agree_on_their_stems() {
        let contract = Preset::Live.contract();
        let track = |parts: usize| {
            let x = vec![vec![0.01f32; 22_050]];
            let stems = Stems {
                sample_rate: 22_050,
                source_rate: 22_050,
                mixture: x.clone(),
                vocals: x.clone(),
                accompaniment: x.clone(),
                accompaniment_parts: vec![x; parts],
            };
            (format!("t{parts}"), stems)
        };
        let err = SpectralData::new(&contract, &[track(3), track(2)], 16).err().expect("an error").to_string();
        assert!(err.contains("t2") && err.contains("same stems"), "{err}");
        assert!(SpectralData::new(&contract, &[track(3), track(3)], 16).is_ok());
    }
}
