//! Track-level evaluation on top of BSS Eval v4, as SiSEC/MUSDB18 reports it: per-track checks
//! (channels, lengths, silent references), the per-track scores (median over windows of SDR, SIR,
//! SAR, ISR, plus the MDX SDR and SI-SDR) for the two targets `vocals` and `accompaniment`, the
//! dataset aggregate (median over tracks of the per-track medians), and oracle estimates.
//!
//! Oracles (what a mask can do at best and at worst with a given STFT): `ibm` applies the ideal
//! binary mask |V| > |A| to the mixture STFT (Lin et al. 2018 train against it), `irm` the ideal
//! ratio mask |V| / (|V| + |A|), and `mix` takes the mixture itself as the estimate of both
//! targets (no separation: the floor). Pure: decoded samples in, scores out; `voxmask eval` does
//! the file I/O.

use realfft::num_complex::Complex32;

use super::{BssEval, FrameScores, mdx_sdr, nan_median, si_sdr};
use crate::dsp::StftConfig;
use crate::dsp::stft::{istft, stft};
use crate::{Error, Result};

/// The two targets, in the order of every `[_; 2]` in this module.
pub const TARGETS: [&str; 2] = ["vocals", "accompaniment"];

/// An oracle estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oracle {
    /// Ideal binary mask: a bin is vocal when |V| > |A|.
    Ibm,
    /// Ideal ratio mask |V| / (|V| + |A|) (½ where both are zero).
    Irm,
    /// The mixture as the estimate of both targets.
    Mix,
}

impl Oracle {
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Ibm => "ibm",
            Oracle::Irm => "irm",
            Oracle::Mix => "mix",
        }
    }
}

/// The STFT `cfg` (designed for `from_rate`) with the same durations and frequency resolution at
/// `to_rate`: window, FFT size and hop scaled by `to_rate / from_rate` (FFT size kept even, hop
/// at most half the window). Identity when the rates are equal.
pub fn scale_stft(cfg: StftConfig, from_rate: u32, to_rate: u32) -> StftConfig {
    if from_rate == to_rate || from_rate == 0 {
        return cfg;
    }
    let r = to_rate as f64 / from_rate as f64;
    let win = ((cfg.win_length as f64 * r).round() as usize).max(2);
    let n_fft = ((((cfg.n_fft as f64 * r) / 2.0).round() as usize) * 2).max(win + win % 2);
    let hop = ((cfg.hop as f64 * r).round() as usize).clamp(1, win / 2);
    StftConfig { n_fft, win_length: win, hop, window: cfg.window }
}

/// Oracle estimates `[vocals, accompaniment]` of a track (`[channel][sample]`, all the same
/// length), computed channel by channel with `cfg`.
pub fn oracle_estimates(
    oracle: Oracle,
    cfg: StftConfig,
    mixture: &[Vec<f32>],
    vocals: &[Vec<f32>],
    accompaniment: &[Vec<f32>],
) -> Result<[Vec<Vec<f32>>; 2]> {
    check_shape("mixture", vocals, mixture)?;
    check_shape("accompaniment", vocals, accompaniment)?;
    if oracle == Oracle::Mix {
        return Ok([mixture.to_vec(), mixture.to_vec()]);
    }
    cfg.validate()?;
    let mut out_v = Vec::with_capacity(mixture.len());
    let mut out_a = Vec::with_capacity(mixture.len());
    for c in 0..mixture.len() {
        let len = mixture[c].len();
        let x = stft(cfg, &mixture[c])?;
        let v = stft(cfg, &vocals[c])?;
        let a = stft(cfg, &accompaniment[c])?;
        let mut xv: Vec<Vec<Complex32>> = Vec::with_capacity(x.len());
        let mut xa: Vec<Vec<Complex32>> = Vec::with_capacity(x.len());
        for ((xf, vf), af) in x.iter().zip(&v).zip(&a) {
            let mut fv = Vec::with_capacity(xf.len());
            let mut fa = Vec::with_capacity(xf.len());
            for ((&xb, vb), ab) in xf.iter().zip(vf).zip(af) {
                let (mv, ma) = (vb.norm(), ab.norm());
                let m = match oracle {
                    Oracle::Ibm => f32::from(mv > ma),
                    Oracle::Irm if mv + ma > 0.0 => mv / (mv + ma),
                    _ => 0.5,
                };
                fv.push(xb * m);
                fa.push(xb * (1.0 - m));
            }
            xv.push(fv);
            xa.push(fa);
        }
        out_v.push(istft(cfg, &xv, len)?);
        out_a.push(istft(cfg, &xa, len)?);
    }
    Ok([out_v, out_a])
}

fn check_shape(what: &str, reference: &[Vec<f32>], other: &[Vec<f32>]) -> Result<()> {
    if reference.len() != other.len() {
        return Err(Error::Mismatch {
            what: format!("{what} channels"),
            expected: reference.len().to_string(),
            got: other.len().to_string(),
        });
    }
    for (r, o) in reference.iter().zip(other) {
        if r.len() != o.len() {
            return Err(Error::Mismatch {
                what: format!("{what} length"),
                expected: format!("{} samples", r.len()),
                got: o.len().to_string(),
            });
        }
    }
    Ok(())
}

/// Scores of one target of one track.
#[derive(Debug, Clone, Default)]
pub struct SourceScores {
    /// Framewise values (NaN where undefined).
    pub frames: FrameScores,
    /// Medians over frames ignoring NaN, as museval aggregates a track.
    pub sdr: f64,
    pub sir: f64,
    pub sar: f64,
    pub isr: f64,
    /// MDX challenge SDR over the whole track.
    pub mdx_sdr: f64,
    /// SI-SDR over the whole track.
    pub si_sdr: f64,
}

/// Scores of one track: `[vocals, accompaniment]`.
#[derive(Debug, Clone, Default)]
pub struct TrackScores {
    pub targets: [SourceScores; 2],
    /// Window and hop used, in samples.
    pub win: usize,
    pub hop: usize,
}

/// Longest length difference between an estimate and its reference that is padded or cut (as
/// museval does) rather than refused: 100 ms, enough for codec and resampler rounding.
pub fn length_tolerance(sample_rate: u32) -> usize {
    (sample_rate / 10) as usize
}

/// Checks a track and scores it. `references` and `estimates` are `[vocals, accompaniment]`,
/// each `[channel][sample]`. Refuses (with the reason) a track whose references disagree in
/// channels or length, whose estimates have other channel counts or lengths further than
/// `max_len_diff` samples from the reference, whose reference of a target is silent throughout,
/// or which is shorter than one BSS window.
pub fn score_track(
    eval: &mut BssEval,
    references: [&[Vec<f32>]; 2],
    estimates: [&[Vec<f32>]; 2],
    max_len_diff: usize,
) -> Result<TrackScores> {
    let channels = references[0].len();
    let len = references[0].first().map_or(0, Vec::len);
    if channels == 0 || len == 0 {
        return Err(Error::InvalidArgument("reference vocals has no samples".into()));
    }
    for (t, r) in TARGETS.iter().zip(references) {
        check_shape(&format!("reference {t}"), references[0], r)?;
    }
    for (t, (e, r)) in TARGETS.iter().zip(estimates.iter().zip(references)) {
        if e.len() != channels {
            return Err(Error::Mismatch {
                what: format!("estimate {t} channels"),
                expected: channels.to_string(),
                got: e.len().to_string(),
            });
        }
        if let Some(ch) = e.iter().find(|ch| ch.len().abs_diff(len) > max_len_diff) {
            return Err(Error::Mismatch {
                what: format!("estimate {t} length"),
                expected: format!("{len} samples (± {max_len_diff}) like the reference"),
                got: ch.len().to_string(),
            });
        }
        if r.iter().all(|ch| ch.iter().all(|&s| s == 0.0)) {
            return Err(Error::InvalidArgument(format!(
                "reference {t} is silent throughout: BSS Eval is undefined for it"
            )));
        }
        if let Some(s) = e.iter().flatten().find(|s| !s.is_finite()) {
            return Err(Error::InvalidArgument(format!("estimate {t} holds a non-finite sample ({s})")));
        }
    }
    let win = eval.config().win;
    if eval.frame_count(len) == 0 {
        return Err(Error::InvalidArgument(format!(
            "track of {len} samples is shorter than one BSS Eval window ({win} samples)"
        )));
    }
    let refs: Vec<Vec<Vec<f32>>> = references.iter().map(|r| r.to_vec()).collect();
    let ests: Vec<Vec<Vec<f32>>> = estimates.iter().map(|e| e.to_vec()).collect();
    let frames = eval.evaluate(&refs, &ests)?;
    let mut out = TrackScores { win, hop: eval.config().hop, ..Default::default() };
    for (i, f) in frames.into_iter().enumerate().take(2) {
        let [sdr, isr, sir, sar] = f.medians();
        out.targets[i] = SourceScores {
            sdr,
            isr,
            sir,
            sar,
            mdx_sdr: mdx_sdr(references[i], estimates[i])?,
            si_sdr: si_sdr(references[i], estimates[i])?,
            frames: f,
        };
    }
    Ok(out)
}

/// The dataset score of one target: medians over tracks (ignoring NaN) of the per-track values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Aggregate {
    pub sdr: f64,
    pub sir: f64,
    pub sar: f64,
    pub isr: f64,
    pub mdx_sdr: f64,
    pub si_sdr: f64,
}

/// SiSEC's aggregate, `[vocals, accompaniment]`: the median over tracks of each per-track median.
pub fn aggregate<'a>(tracks: impl IntoIterator<Item = &'a TrackScores>) -> [Aggregate; 2] {
    let tracks: Vec<&TrackScores> = tracks.into_iter().collect();
    std::array::from_fn(|i| {
        let med =
            |f: fn(&SourceScores) -> f64| nan_median(&tracks.iter().map(|t| f(&t.targets[i])).collect::<Vec<_>>());
        Aggregate {
            sdr: med(|s| s.sdr),
            sir: med(|s| s.sir),
            sar: med(|s| s.sar),
            isr: med(|s| s.isr),
            mdx_sdr: med(|s| s.mdx_sdr),
            si_sdr: med(|s| s.si_sdr),
        }
    })
}
