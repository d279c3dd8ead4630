//! Separation-quality metrics: BSS Eval v4 (images mode), the MDX "new SDR" and SI-SDR.
//!
//! BSS Eval v4 follows museval 0.4.1 `museval.evaluate(refs, ests, win, hop, mode="v4")`, itself
//! Vincent, Gribonval & Févotte, "Performance measurement in blind audio source separation" (IEEE
//! TASLP 14(4), 2006) with the v4 change of Liutkus, Stöter & Ito, "The 2018 Signal Separation
//! Evaluation Campaign" (LVA/ICA 2018, §3): the multichannel distortion filters (`filter_len` taps
//! per reference channel) are fitted once over the whole track, by least squares on the Gram
//! system `(G + eps·I) C = D` with eps the f64 epsilon, then every window of `win` samples (hop
//! `hop`) is decomposed with them:
//!
//! * `s` is the reference image, `P_j` its projection on delayed copies of the same source's
//!   channels, `P` the projection on delayed copies of every source's channels (each window's
//!   samples filtered on their own, the `filter_len − 1`-sample tail included);
//! * SDR = ‖s‖² / ‖ŝ − s‖², ISR = ‖s‖² / ‖P_j − s‖², SIR = ‖P_j‖² / ‖P − P_j‖²,
//!   SAR = ‖P‖² / ‖ŝ − P‖², in dB, a zero denominator giving +∞ as museval's `_safe_db` does;
//! * a window is NaN for every source when any reference or estimate is silent in it (museval's
//!   test: the sum over channels is zero at every sample);
//! * there are ⌊(n − win + hop) / hop⌋ windows and estimates are zero-padded or cut to the
//!   reference length.
//!
//! Differences from museval, all deliberate: a track whose reference or estimate is silent
//! throughout gives all-NaN windows instead of an exception; the Gram system, block Toeplitz, is
//! solved by the Schur algorithm for its Cholesky factor (`toeplitz`; dense Cholesky, then LU
//! with partial pivoting, numpy's method, only when that breaks down), which agrees with numpy
//! to rounding on the well-conditioned systems the metric is defined for.
//!
//! The MDX "new SDR" (Mitsufuji et al., "Music Demixing Challenge 2021", Frontiers 2022) is
//! `10·log10((Σ s² + 1e-7) / (Σ (s − ŝ)² + 1e-7))` over the whole track and all channels. SI-SDR
//! (Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019) is computed over all channels
//! flattened into one vector, without mean removal, as the golden fixtures define it.

mod corr;
pub mod run;
mod toeplitz;

use std::thread;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

use crate::{Error, Result};
use corr::LagCorrelator;
use toeplitz::ToeplitzCholesky;

/// Settings of a BSS Eval v4 run. The defaults are museval's: 1 s windows and hops at 44.1 kHz,
/// 512-tap distortion filters, one thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BssConfig {
    /// Window length in samples.
    pub win: usize,
    /// Hop between window starts in samples.
    pub hop: usize,
    /// Distortion-filter length in taps (museval's `filters_len`).
    pub filter_len: usize,
    /// Worker threads; 0 means all available cores. Results agree across thread counts to
    /// rounding (summation order), far below 0.01 dB.
    pub threads: usize,
}

impl Default for BssConfig {
    fn default() -> Self {
        BssConfig { win: 44100, hop: 44100, filter_len: 512, threads: 1 }
    }
}

/// Per-window scores of one source, in dB; NaN where the window is undefined (silence).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameScores {
    /// Source to distortion ratio.
    pub sdr: Vec<f64>,
    /// Source image to spatial distortion ratio.
    pub isr: Vec<f64>,
    /// Source to interference ratio.
    pub sir: Vec<f64>,
    /// Source to artifacts ratio.
    pub sar: Vec<f64>,
}

impl FrameScores {
    /// The per-track scores as museval aggregates them: the median over windows ignoring NaN,
    /// in the order `[SDR, ISR, SIR, SAR]`.
    pub fn medians(&self) -> [f64; 4] {
        [nan_median(&self.sdr), nan_median(&self.isr), nan_median(&self.sir), nan_median(&self.sar)]
    }

    fn clear_resize(&mut self, n: usize) {
        for v in [&mut self.sdr, &mut self.isr, &mut self.sir, &mut self.sar] {
            v.clear();
            v.resize(n, f64::NAN);
        }
    }
}

/// Median of the non-NaN values (numpy's `nanmedian`: the mean of the two middle values for an
/// even count); NaN when every value is NaN or the slice is empty.
pub fn nan_median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// Sample `i` of an estimate channel, zero past its end (museval pads short estimates).
#[inline]
fn padded(ch: &[f32], i: usize) -> f64 {
    ch.get(i).map_or(0.0, |&v| f64::from(v))
}

fn check_channels(reference: &[Vec<f32>], estimate: &[Vec<f32>]) -> Result<()> {
    if reference.is_empty() {
        return Err(Error::InvalidArgument("reference has no channels".into()));
    }
    if reference.len() != estimate.len() {
        return Err(Error::Mismatch {
            what: "estimate channel count".into(),
            expected: reference.len().to_string(),
            got: estimate.len().to_string(),
        });
    }
    Ok(())
}

/// MDX challenge "new SDR" of one source over the whole track, `[channel][sample]`. Estimate
/// channels are zero-padded or cut to the reference channel's length.
pub fn mdx_sdr(reference: &[Vec<f32>], estimate: &[Vec<f32>]) -> Result<f64> {
    // The MDX challenge's stabiliser: keeps silent references and perfect estimates finite.
    const DELTA: f64 = 1e-7;
    check_channels(reference, estimate)?;
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (r, e) in reference.iter().zip(estimate) {
        for (i, &s) in r.iter().enumerate() {
            let s = f64::from(s);
            let d = s - padded(e, i);
            num += s * s;
            den += d * d;
        }
    }
    Ok(10.0 * ((num + DELTA) / (den + DELTA)).log10())
}

/// Scale-invariant SDR of one source, `[channel][sample]`, with all channels flattened into one
/// vector and no mean removal: `α = ⟨ŝ, s⟩ / ‖s‖²`, `10·log10(‖α s‖² / ‖α s − ŝ‖²)`. NaN for a
/// silent reference. Estimate channels are zero-padded or cut to the reference length.
pub fn si_sdr(reference: &[Vec<f32>], estimate: &[Vec<f32>]) -> Result<f64> {
    check_channels(reference, estimate)?;
    let (mut rr, mut er) = (0.0f64, 0.0f64);
    for (r, e) in reference.iter().zip(estimate) {
        for (i, &s) in r.iter().enumerate() {
            let s = f64::from(s);
            rr += s * s;
            er += padded(e, i) * s;
        }
    }
    if rr == 0.0 {
        return Ok(f64::NAN);
    }
    let alpha = er / rr;
    let (mut tt, mut dd) = (0.0f64, 0.0f64);
    for (r, e) in reference.iter().zip(estimate) {
        for (i, &s) in r.iter().enumerate() {
            let t = alpha * f64::from(s);
            let d = t - padded(e, i);
            tt += t * t;
            dd += d * d;
        }
    }
    Ok(10.0 * (tt / dd).log10())
}

/// museval's `_safe_db`: a zero denominator is a perfect component, +∞ dB.
#[inline]
fn safe_db(num: f64, den: f64) -> f64 {
    if den == 0.0 { f64::INFINITY } else { 10.0 * (num / den).log10() }
}

/// Smallest even length ≥ `n` whose only prime factors are 2, 3, 5 and 7 (fast for rustfft).
/// Even, so that the last bin of a real FFT is the (real) Nyquist bin.
fn good_fft_len(n: usize) -> usize {
    let mut m = n.max(2).next_multiple_of(2);
    loop {
        let mut r = m;
        for p in [2, 3, 5, 7] {
            while r.is_multiple_of(p) {
                r /= p;
            }
        }
        if r == 1 {
            return m;
        }
        m += 2;
    }
}

/// Reusable BSS Eval v4 evaluator: FFT plans are made in [`BssEval::new`] and the large Gram
/// buffers are kept between tracks.
pub struct BssEval {
    cfg: BssConfig,
    threads: usize,
    corr: LagCorrelator,
    frame_fft: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    /// The last track's samples in f64, kept so the next track reuses the allocations.
    track: Track,
    /// The block-Toeplitz factor, kept between systems and tracks.
    toeplitz: ToeplitzCholesky,
    /// The distortion filters' spectra, kept between tracks.
    filter_spectra: Vec<Vec<Complex<f64>>>,
    /// Tests compare the two solvers.
    #[cfg(test)]
    dense_only: bool,
}

/// A track converted to f64, `[source * channels + channel][sample]`.
#[derive(Default)]
struct Track {
    sources: usize,
    channels: usize,
    len: usize,
    refs: Vec<Vec<f64>>,
    ests: Vec<Vec<f64>>,
}

impl BssEval {
    /// Checks `cfg` and plans the FFTs.
    pub fn new(cfg: BssConfig) -> Result<Self> {
        if cfg.win == 0 || cfg.hop == 0 || cfg.filter_len == 0 {
            return Err(Error::InvalidArgument(format!(
                "BSS Eval needs win, hop and filter_len ≥ 1 (got win {}, hop {}, filter_len {})",
                cfg.win, cfg.hop, cfg.filter_len
            )));
        }
        let threads =
            if cfg.threads == 0 { thread::available_parallelism().map_or(1, |n| n.get()) } else { cfg.threads };
        let frame_fft = good_fft_len(cfg.win + cfg.filter_len - 1);
        let mut planner = RealFftPlanner::<f64>::new();
        Ok(BssEval {
            corr: LagCorrelator::new(cfg.filter_len),
            fwd: planner.plan_fft_forward(frame_fft),
            frame_fft,
            threads,
            cfg,
            toeplitz: ToeplitzCholesky::default(),
            filter_spectra: Vec::new(),
            #[cfg(test)]
            dense_only: false,
            track: Track::default(),
        })
    }

    /// The configuration this evaluator was built with.
    pub fn config(&self) -> &BssConfig {
        &self.cfg
    }

    /// Number of windows for a track of `len` samples, or 0 when it is shorter than one window.
    pub fn frame_count(&self, len: usize) -> usize {
        if len < self.cfg.win { 0 } else { (len - self.cfg.win + self.cfg.hop) / self.cfg.hop }
    }

    /// Evaluates one track: `references` and `estimates` are `[source][channel][sample]`.
    /// Returns one [`FrameScores`] per source.
    pub fn evaluate(&mut self, references: &[Vec<Vec<f32>>], estimates: &[Vec<Vec<f32>>]) -> Result<Vec<FrameScores>> {
        let mut out = Vec::new();
        self.evaluate_into(references, estimates, &mut out)?;
        Ok(out)
    }

    /// [`BssEval::evaluate`] writing into `out` (resized to one entry per source), so a caller
    /// scoring many tracks reuses its vectors.
    pub fn evaluate_into(
        &mut self,
        references: &[Vec<Vec<f32>>],
        estimates: &[Vec<Vec<f32>>],
        out: &mut Vec<FrameScores>,
    ) -> Result<()> {
        let mut track = std::mem::take(&mut self.track);
        let result = self.load(references, estimates, &mut track).and_then(|()| self.evaluate_track(&track, out));
        self.track = track;
        result
    }

    fn evaluate_track(&mut self, track: &Track, out: &mut Vec<FrameScores>) -> Result<()> {
        let (ns, nc, l) = (track.sources, track.channels, self.cfg.filter_len);
        let n_frames = self.frame_count(track.len);
        out.resize_with(ns, FrameScores::default);
        out.truncate(ns);
        for fs in out.iter_mut() {
            fs.clear_resize(n_frames);
        }
        let active: Vec<bool> = (0..n_frames).map(|t| !self.frame_silent(track, t)).collect();
        if !active.iter().any(|&a| a) {
            return Ok(());
        }

        // Correlations: every reference channel against every reference channel (G) and every
        // estimate channel (D), lags −(L−1)..=L−1.
        let p = ns * nc;
        let mut pairs = Vec::with_capacity(p * (p + 1) / 2 + p * p);
        for a in 0..p {
            for b in a..p {
                pairs.push((a, b));
            }
        }
        let d_base = pairs.len();
        for a in 0..p {
            for b in 0..p {
                pairs.push((a, p + b));
            }
        }
        let lagged: Vec<&[f64]> = track.refs.iter().map(|v| v.as_slice()).collect();
        let plain: Vec<&[f64]> = track.refs.iter().chain(&track.ests).map(|v| v.as_slice()).collect();
        let r = self.corr.correlate(&lagged, &plain, &pairs, track.len, self.threads);
        // Pair (a, b), a ≤ b, sits at a·p − a(a−1)/2 + (b − a) in the G list.
        let g_pos = |a: usize, b: usize| -> usize {
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            a * p - a * a.saturating_sub(1) / 2 + (b - a)
        };
        // D entry for reference channel a, estimate channel c, delay `tap`: ⟨x_a(· − tap), ŝ_c⟩.
        let d_at = |a: usize, c: usize, tap: usize| r[d_base + a * p + c][l - 1 - tap];

        // Filters from every source (whole system) to each estimate channel.
        let chans: Vec<usize> = (0..p).collect();
        // A mono stem stored as stereo (common in MUSDB18: both vocals channels bit-identical)
        // makes the Gram matrix singular, which the Schur algorithm rejects. The delayed copies
        // of an identical twin span nothing new, so the system without it gives the same
        // projections, hence the same scores, at Schur speed instead of a dense LU's.
        let twin: Vec<Option<usize>> = (0..p).map(|a| (0..a).find(|&b| track.refs[b] == track.refs[a])).collect();
        let rhs_all: Vec<Vec<f64>> = (0..p).map(|c| (0..p * l).map(|i| d_at(i / l, c, i % l)).collect()).collect();
        let filt_all = self.solve_system(&r, &g_pos, &chans, &twin, l, rhs_all)?;
        // Filters from each source's own channels to its estimate's channels.
        let mut filt_own: Vec<Vec<f64>> = Vec::with_capacity(p);
        for j in 0..ns {
            let own: Vec<usize> = (j * nc..(j + 1) * nc).collect();
            let rhs: Vec<Vec<f64>> =
                (0..nc).map(|c| (0..nc * l).map(|i| d_at(j * nc + i / l, j * nc + c, i % l)).collect()).collect();
            filt_own.extend(self.solve_system(&r, &g_pos, &own, &twin, l, rhs)?);
        }

        self.score_frames(track, &active, &filt_all, &filt_own, out);
        Ok(())
    }

    /// Checks the shapes and samples and converts them into `track`.
    fn load(&self, references: &[Vec<Vec<f32>>], estimates: &[Vec<Vec<f32>>], track: &mut Track) -> Result<()> {
        let ns = references.len();
        if ns == 0 {
            return Err(Error::InvalidArgument("BSS Eval needs at least one reference source".into()));
        }
        if estimates.len() != ns {
            return Err(Error::Mismatch {
                what: "number of estimated sources".into(),
                expected: ns.to_string(),
                got: estimates.len().to_string(),
            });
        }
        let nc = references[0].len();
        if nc == 0 {
            return Err(Error::InvalidArgument("reference source 0 has no channels".into()));
        }
        let len = references[0][0].len();
        for (j, (r, e)) in references.iter().zip(estimates).enumerate() {
            for (what, got) in [("reference", r.len()), ("estimate", e.len())] {
                if got != nc {
                    return Err(Error::Mismatch {
                        what: format!("channel count of {what} source {j}"),
                        expected: nc.to_string(),
                        got: got.to_string(),
                    });
                }
            }
            for (c, ch) in r.iter().enumerate() {
                if ch.len() != len {
                    return Err(Error::Mismatch {
                        what: format!("length of reference source {j} channel {c}"),
                        expected: len.to_string(),
                        got: ch.len().to_string(),
                    });
                }
            }
        }
        if len < self.cfg.win {
            return Err(Error::InvalidArgument(format!(
                "track of {len} samples is shorter than one BSS Eval window ({} samples)",
                self.cfg.win
            )));
        }
        let p = ns * nc;
        track.refs.resize_with(p, Vec::new);
        track.ests.resize_with(p, Vec::new);
        for (j, (r, e)) in references.iter().zip(estimates).enumerate() {
            for (c, (rc, ec)) in r.iter().zip(e).enumerate() {
                let rv = &mut track.refs[j * nc + c];
                rv.clear();
                rv.extend(rc.iter().map(|&v| f64::from(v)));
                let ev = &mut track.ests[j * nc + c];
                ev.clear();
                ev.extend(ec[..ec.len().min(len)].iter().map(|&v| f64::from(v)));
                ev.resize(len, 0.0);
                for (what, v) in [("reference", &*rv), ("estimate", &*ev)] {
                    // A branch-free scan first (it vectorises); the position only on failure.
                    if v.chunks(256).all(|c| c.iter().fold(true, |ok, x| ok & x.is_finite())) {
                        continue;
                    }
                    let i = v.iter().position(|x| !x.is_finite()).unwrap_or_default();
                    return Err(Error::InvalidArgument(format!(
                        "non-finite sample in {what} source {j} channel {c} at sample {i}"
                    )));
                }
            }
        }
        track.refs.truncate(p);
        track.ests.truncate(p);
        track.sources = ns;
        track.channels = nc;
        track.len = len;
        Ok(())
    }

    /// museval's `_any_source_silent` on window `t` of the references or the estimates.
    fn frame_silent(&self, track: &Track, t: usize) -> bool {
        let start = t * self.cfg.hop;
        let end = start + self.cfg.win;
        let nc = track.channels;
        [&track.refs, &track.ests].iter().any(|set| {
            (0..track.sources).any(|j| {
                let chans = &set[j * nc..(j + 1) * nc];
                (start..end).all(|i| chans.iter().map(|ch| ch[i]).sum::<f64>() == 0.0)
            })
        })
    }

    /// Solves `(G_sub + eps·I) x = b` for every right-hand side in `rhs` (each `[channel][tap]`),
    /// where `G_sub` is the Gram matrix of the reference channels `chans` at delays `0..l`: by the
    /// block-Toeplitz Schur algorithm, without the channels whose identical twin (`twin[a]`, an
    /// earlier channel) is also in `chans` (their filters are zero), or densely on the whole
    /// system ([`solve_dense`]) when that breaks down.
    #[allow(clippy::too_many_arguments)]
    fn solve_system(
        &mut self,
        r: &[Vec<f64>],
        g_pos: &dyn Fn(usize, usize) -> usize,
        chans: &[usize],
        twin: &[Option<usize>],
        l: usize,
        rhs: Vec<Vec<f64>>,
    ) -> Result<Vec<Vec<f64>>> {
        // T[(i, a), (0, b)] = ⟨x_a(· − i), x_b⟩ = r_ab(−i), stored as lag −i of (a, b) when a ≤ b
        // and as lag i of (b, a) otherwise.
        let block = |chans: &[usize], i: usize, a: usize, b: usize| {
            let (a, b) = (chans[a], chans[b]);
            if a <= b { r[g_pos(a, b)][l - 1 - i] } else { r[g_pos(a, b)][l - 1 + i] }
        };
        let first = |i: usize, a: usize, b: usize| block(chans, i, a, b);
        #[cfg(test)]
        if self.dense_only {
            return solve_dense(&first, chans.len(), l, rhs);
        }
        // Positions in `chans` of the channels kept.
        let kept: Vec<usize> =
            (0..chans.len()).filter(|&a| twin[chans[a]].is_none_or(|t| !chans.contains(&t))).collect();
        let sub: Vec<usize> = kept.iter().map(|&a| chans[a]).collect();
        let q = sub.len();
        // The Schur algorithm orders unknowns by delay, then channel.
        let mut x: Vec<Vec<f64>> =
            rhs.iter().map(|b| (0..q * l).map(|i| b[kept[i % q] * l + i / q]).collect()).collect();
        if !self.toeplitz.solve(q, l, |i, a, b| block(&sub, i, a, b), f64::EPSILON, &mut x) {
            return solve_dense(&first, chans.len(), l, rhs);
        }
        Ok(x.iter()
            .map(|x| {
                let mut f = vec![0.0; chans.len() * l];
                for (k, &a) in kept.iter().enumerate() {
                    for u in 0..l {
                        f[a * l + u] = x[u * q + k];
                    }
                }
                f
            })
            .collect())
    }

    /// Decomposes every active window and writes the four ratios of every source.
    fn score_frames(
        &mut self,
        track: &Track,
        active: &[bool],
        filt_all: &[Vec<f64>],
        filt_own: &[Vec<f64>],
        out: &mut [FrameScores],
    ) {
        let (ns, nc, l) = (track.sources, track.channels, self.cfg.filter_len);
        let p = ns * nc;
        let bins = self.frame_fft / 2 + 1;
        // Filter spectra: all[(c_est * p) + a] maps reference channel a to estimate channel
        // c_est; own[(j·nc + c) · nc + ca] maps source j's channel ca to its estimate channel c.
        // Kept between tracks: 24 spectra of 22 401 bins for two stereo sources.
        let mut buf = self.fwd.make_input_vec();
        let mut scratch = self.fwd.make_scratch_vec();
        let taps = filt_all
            .iter()
            .flat_map(|f| (0..p).map(move |a| &f[a * l..(a + 1) * l]))
            .chain(filt_own.iter().flat_map(|f| (0..nc).map(move |ca| &f[ca * l..(ca + 1) * l])));
        self.filter_spectra.resize_with(p * p + p * nc, Vec::new);
        for (spec, taps) in self.filter_spectra.iter_mut().zip(taps) {
            buf.fill(0.0);
            buf[..taps.len()].copy_from_slice(taps);
            spec.resize(bins, Complex::new(0.0, 0.0));
            // Sizes match by construction, so this cannot fail.
            let _ = self.fwd.process_with_scratch(&mut buf, spec, &mut scratch);
        }
        let (spec_all, spec_own) = self.filter_spectra[..p * p + p * nc].split_at(p * p);
        let frames: Vec<usize> = (0..active.len()).filter(|&t| active[t]).collect();
        let parts = self.threads.clamp(1, frames.len().max(1));
        let per = frames.len().div_ceil(parts).max(1);
        let ctx = FrameCtx { eval: self, track, spec_all, spec_own };
        let results: Vec<Vec<(usize, Vec<[f64; 4]>)>> = if parts == 1 {
            vec![ctx.run(&frames)]
        } else {
            thread::scope(|s| {
                let handles: Vec<_> = frames.chunks(per).map(|chunk| s.spawn(|| ctx.run(chunk))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            })
        };
        for (t, scores) in results.into_iter().flatten() {
            for (fs, s) in out.iter_mut().zip(scores) {
                fs.sdr[t] = s[0];
                fs.isr[t] = s[1];
                fs.sir[t] = s[2];
                fs.sar[t] = s[3];
            }
        }
    }
}

/// The fallback for systems the Schur algorithm finds not numerically positive definite:
/// `(T + eps·I) x = b` densely, `T[(a, u), (b, v)] = first(v − u, a, b)` read as a symmetric
/// block-Toeplitz matrix (`first` as in [`ToeplitzCholesky::solve`] for u ≥ v), unknowns ordered
/// `[channel][tap]` like `rhs`. Cholesky, then LU with partial pivoting (numpy's method) when
/// Cholesky breaks down; an exact zero pivot is an error, where numpy raises `LinAlgError`.
///
/// faer rather than the hand-written blocked Cholesky/LU this replaced: on the 2048-unknown
/// system of two stereo sources, one thread of the 2-core development VM, Cholesky and four
/// solves took 132–140 ms with faer 0.24 against 276–322 ms, LU 273–335 ms against 529–636 ms.
fn solve_dense(
    first: &dyn Fn(usize, usize, usize) -> f64,
    q: usize,
    l: usize,
    rhs: Vec<Vec<f64>>,
) -> Result<Vec<Vec<f64>>> {
    use faer::linalg::solvers::Solve;
    let m = q * l;
    let g = faer::Mat::<f64>::from_fn(m, m, |i, j| {
        let ((a, u), (b, v)) = ((i / l, i % l), (j / l, j % l));
        // Block (u, v) is block (u − v, 0) for u ≥ v and the transpose of (v − u, 0) otherwise.
        let x = if u >= v { first(u - v, a, b) } else { first(v - u, b, a) };
        if i == j { x + f64::EPSILON } else { x }
    });
    let mut x = faer::Mat::<f64>::from_fn(m, rhs.len(), |i, c| rhs[c][i]);
    if let Ok(llt) = g.llt(faer::Side::Lower) {
        llt.solve_in_place(x.as_mut());
    } else {
        let lu = g.partial_piv_lu();
        if (0..m).any(|i| lu.U()[(i, i)] == 0.0) {
            return Err(Error::InvalidArgument("BSS Eval distortion-filter system is exactly singular".into()));
        }
        lu.solve_in_place(x.as_mut());
    }
    Ok((0..rhs.len()).map(|c| x.col(c).iter().copied().collect()).collect())
}

struct FrameCtx<'a> {
    eval: &'a BssEval,
    track: &'a Track,
    spec_all: &'a [Vec<Complex<f64>>],
    spec_own: &'a [Vec<Complex<f64>>],
}

impl FrameCtx<'_> {
    /// Scores windows `frames`, returning `(window, [SDR, ISR, SIR, SAR] per source)`.
    fn run(&self, frames: &[usize]) -> Vec<(usize, Vec<[f64; 4]>)> {
        let ev = self.eval;
        let tr = self.track;
        let (ns, nc, win) = (tr.sources, tr.channels, ev.cfg.win);
        let p = ns * nc;
        let nf = ev.frame_fft;
        let bins = nf / 2 + 1;
        let norm = 1.0 / nf as f64;
        let mut buf = ev.fwd.make_input_vec();
        let mut scratch = ev.fwd.make_scratch_vec();
        let zero = Complex::new(0.0, 0.0);
        let mut xs = vec![vec![zero; bins]; p];
        let mut ys = vec![vec![zero; bins]; p];
        let mut chunk: ChunkBuf = [[0.0; CHUNK]; 8];
        let mut out = Vec::with_capacity(frames.len());
        for &t in frames {
            let start = t * ev.cfg.hop;
            for (spec, sig) in xs.iter_mut().zip(&tr.refs).chain(ys.iter_mut().zip(&tr.ests)) {
                buf[..win].copy_from_slice(&sig[start..start + win]);
                buf[win..].fill(0.0);
                // Sizes match by construction, so this cannot fail.
                let _ = ev.fwd.process_with_scratch(&mut buf, spec, &mut scratch);
            }
            // The projections are never needed as signals, only their energies, so they stay
            // spectra and Parseval gives the energies: the window, its (filter_len − 1)-sample
            // tail and nothing else fit in `nf` samples, so the circular products are the linear
            // convolutions museval computes. Per estimate channel, lane sums of
            // [‖P_j−s‖², ‖P_j‖², ‖P−P_j‖², ‖P‖², ‖ŝ−P‖²] over all bins counted once.
            let mut sums = vec![[[0.0f64; LANES]; 5]; p];
            for k0 in (0..bins).step_by(CHUNK) {
                let k1 = (k0 + CHUNK).min(bins);
                for (ce, acc) in sums.iter_mut().enumerate() {
                    let j = ce / nc;
                    let bands = Bands {
                        x: &xs,
                        h: &self.spec_all[ce * p..(ce + 1) * p],
                        xj: &xs[j * nc..(j + 1) * nc],
                        hj: &self.spec_own[ce * nc..(ce + 1) * nc],
                        s: &xs[ce],
                        y: &ys[ce],
                    };
                    bands.energies(k0, k1, &mut chunk, acc);
                }
            }
            let mut scores = Vec::with_capacity(ns);
            for j in 0..ns {
                // [‖s‖², ‖ŝ−s‖², ‖P_j−s‖², ‖P_j‖², ‖P−P_j‖², ‖P‖², ‖ŝ−P‖²]
                let mut e = [0.0f64; 7];
                for c in 0..nc {
                    let ce = j * nc + c;
                    // SDR straight from the samples, exactly as museval sums them.
                    for (&s, &est) in tr.refs[ce][start..start + win].iter().zip(&tr.ests[ce][start..start + win]) {
                        e[0] += s * s;
                        e[1] += (est - s) * (est - s);
                    }
                    // A real signal's spectrum holds each bin but DC and Nyquist twice.
                    let edges = [0, bins - 1].map(|k| {
                        let bands = Bands {
                            x: &xs,
                            h: &self.spec_all[ce * p..(ce + 1) * p],
                            xj: &xs[j * nc..(j + 1) * nc],
                            hj: &self.spec_own[ce * nc..(ce + 1) * nc],
                            s: &xs[ce],
                            y: &ys[ce],
                        };
                        let mut acc = [[0.0f64; LANES]; 5];
                        bands.energies(k, k + 1, &mut chunk, &mut acc);
                        acc.map(|lanes| lane_sum(&lanes))
                    });
                    for (m, acc) in e[2..].iter_mut().enumerate() {
                        *acc += (2.0 * lane_sum(&sums[ce][m]) - edges[0][m] - edges[1][m]) * norm;
                    }
                }
                scores.push([safe_db(e[0], e[1]), safe_db(e[0], e[2]), safe_db(e[3], e[4]), safe_db(e[5], e[6])]);
            }
            out.push((t, scores));
        }
        out
    }
}

/// Bins per pass of [`Bands::energies`]: its buffers and every slice it reads stay in L1.
const CHUNK: usize = 256;
/// Independent partial sums per energy, so the loop vectorises (a single sum has a fixed order).
const LANES: usize = 4;
/// [`Bands::energies`]' split spectra: both projections, the reference image and the estimate.
type ChunkBuf = [[f64; CHUNK]; 8];

fn lane_sum(l: &[f64; LANES]) -> f64 {
    (l[0] + l[2]) + (l[1] + l[3])
}

/// The spectra that decompose one estimate channel in one window: every reference channel `x`
/// with the filters `h` to it, the own source's channels `xj` with theirs `hj`, the reference
/// image `s` and the estimate `y`.
struct Bands<'a> {
    x: &'a [Vec<Complex<f64>>],
    h: &'a [Vec<Complex<f64>>],
    xj: &'a [Vec<Complex<f64>>],
    hj: &'a [Vec<Complex<f64>>],
    s: &'a [Complex<f64>],
    y: &'a [Complex<f64>],
}

impl Bands<'_> {
    /// Adds the lane sums of [‖P_j−s‖², ‖P_j‖², ‖P−P_j‖², ‖P‖², ‖ŝ−P‖²] over bins `k0..k1`
    /// (at most [`CHUNK`]) to `acc`, `P = Σ x·h`, `P_j = Σ xj·hj`.
    fn energies(&self, k0: usize, k1: usize, buf: &mut ChunkBuf, acc: &mut [[f64; LANES]; 5]) {
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA.
            unsafe { self.energies_avx2(k0, k1, buf, acc) };
            return;
        }
        self.energies_body(k0, k1, buf, acc);
    }

    /// The same arithmetic at AVX2 width (no fused multiply-adds: both paths round alike).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn energies_avx2(&self, k0: usize, k1: usize, buf: &mut ChunkBuf, acc: &mut [[f64; LANES]; 5]) {
        self.energies_body(k0, k1, buf, acc)
    }

    #[inline(always)]
    fn energies_body(&self, k0: usize, k1: usize, buf: &mut ChunkBuf, acc: &mut [[f64; LANES]; 5]) {
        let n = k1 - k0;
        // Split real and imaginary parts, zero past `n` so the lanes need no remainder loop.
        let len = n.next_multiple_of(LANES);
        let [ar, ai, or, oi, sr, si, yr, yi] = buf;
        let sum_products =
            |re: &mut [f64; CHUNK], im: &mut [f64; CHUNK], x: &[Vec<Complex<f64>>], h: &[Vec<Complex<f64>>]| {
                for (m, (x, h)) in x.iter().zip(h).enumerate() {
                    let terms = re.iter_mut().zip(im.iter_mut()).zip(&x[k0..k1]).zip(&h[k0..k1]);
                    if m == 0 {
                        for (((r, i), x), h) in terms {
                            *r = x.re * h.re - x.im * h.im;
                            *i = x.re * h.im + x.im * h.re;
                        }
                    } else {
                        for (((r, i), x), h) in terms {
                            *r += x.re * h.re - x.im * h.im;
                            *i += x.re * h.im + x.im * h.re;
                        }
                    }
                }
                re[n..len].fill(0.0);
                im[n..len].fill(0.0);
            };
        sum_products(ar, ai, self.x, self.h);
        sum_products(or, oi, self.xj, self.hj);
        for (k, (s, y)) in self.s[k0..k1].iter().zip(&self.y[k0..k1]).enumerate() {
            (sr[k], si[k], yr[k], yi[k]) = (s.re, s.im, y.re, y.im);
        }
        for v in [&mut *sr, &mut *si, &mut *yr, &mut *yi] {
            v[n..len].fill(0.0);
        }
        for i in (0..len).step_by(LANES) {
            // `l` is the lane of every accumulator and the offset of its bin alike.
            #[allow(clippy::needless_range_loop)]
            for l in 0..LANES {
                let k = i + l;
                let (ar, ai, or, oi) = (ar[k], ai[k], or[k], oi[k]);
                let (sr, si, yr, yi) = (sr[k], si[k], yr[k], yi[k]);
                acc[0][l] += (or - sr) * (or - sr) + (oi - si) * (oi - si);
                acc[1][l] += or * or + oi * oi;
                acc[2][l] += (ar - or) * (ar - or) + (ai - oi) * (ai - oi);
                acc[3][l] += ar * ar + ai * ai;
                acc[4][l] += (yr - ar) * (yr - ar) + (yi - ai) * (yi - ai);
            }
        }
    }
}

/// One-shot BSS Eval v4 (images mode) of a track, `[source][channel][sample]`: one
/// [`FrameScores`] per source. See the module documentation for the exact definition.
pub fn bss_eval_v4(
    references: &[Vec<Vec<f32>>],
    estimates: &[Vec<Vec<f32>>],
    cfg: &BssConfig,
) -> Result<Vec<FrameScores>> {
    BssEval::new(cfg.clone())?.evaluate(references, estimates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest difference allowed between the Schur and the dense solver's scores, in dB
    /// (measured: under 5e-8 dB, singular systems included); museval's own tolerance is 0.01 dB.
    const SOLVERS_TOL_DB: f64 = 1e-6;

    fn noise(len: usize, seed: u64) -> Vec<f32> {
        let mut s = (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
            })
            .collect()
    }

    /// Harmonic tones without noise, like the CLI tests' voice: a Gram matrix of rank ~6 per
    /// channel out of 512, singular to working precision.
    fn tones(len: usize, ch: usize) -> Vec<f32> {
        (0..len)
            .map(|i| {
                let p = 2.0 * std::f32::consts::PI * 220.0 * i as f32 / 44100.0;
                0.3 * (p.sin() + 0.5 * (2.0 * p + 0.3 * ch as f32).sin() + 0.25 * (3.0 * p).sin())
            })
            .collect()
    }

    fn both(refs: &[Vec<Vec<f32>>], ests: &[Vec<Vec<f32>>], cfg: &BssConfig) -> [Vec<FrameScores>; 2] {
        let mut ev = BssEval::new(cfg.clone()).expect("valid config");
        let schur = ev.evaluate(refs, ests).expect("valid track");
        ev.dense_only = true;
        let dense = ev.evaluate(refs, ests).expect("valid track");
        [schur, dense]
    }

    fn values(f: &[FrameScores]) -> Vec<f64> {
        f.iter().flat_map(|s| s.sdr.iter().chain(&s.isr).chain(&s.sir).chain(&s.sar).copied()).collect()
    }

    #[test]
    fn schur_and_dense_solvers_agree() {
        let len = 3 * 44100;
        let cfg = BssConfig { win: 22050, hop: 22050, filter_len: 64, threads: 1 };
        let refs: Vec<Vec<Vec<f32>>> = (0..2).map(|j| (0..2).map(|c| noise(len, 2 * j + c)).collect()).collect();
        let ests: Vec<Vec<Vec<f32>>> = (0..2)
            .map(|j| {
                (0..2)
                    .map(|c| {
                        let n = noise(len, 10 + 2 * j as u64 + c as u64);
                        (0..len)
                            .map(|i| refs[j][c][i] + 0.2 * refs[1 - j][c][i.saturating_sub(3)] + 0.1 * n[i])
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let [schur, dense] = both(&refs, &ests, &cfg);
        for (a, b) in values(&schur).iter().zip(values(&dense)) {
            assert!((a - b).abs() < SOLVERS_TOL_DB, "Schur {a} vs dense {b}");
        }
    }

    #[test]
    fn singular_systems_still_project() {
        // Pure tones: the Gram matrix is singular to rounding, so either solver's filters are
        // arbitrary along its null space, but the projections, hence the scores, are not.
        let len = 2 * 44100;
        let cfg = BssConfig { win: 44100, hop: 44100, filter_len: 512, threads: 1 };
        let refs: Vec<Vec<Vec<f32>>> = vec![
            (0..2).map(|c| tones(len, c)).collect(),
            (0..2).map(|c| noise(len, 40 + c as u64).iter().map(|v| 0.1 * v).collect()).collect(),
        ];
        for solver in both(&refs, &refs, &cfg) {
            // Measured: ≥ 187 dB from either solver.
            assert!(values(&solver).iter().all(|&v| v > 150.0), "{:?}", values(&solver));
        }
        let ests: Vec<Vec<Vec<f32>>> = (0..2)
            .map(|j| {
                (0..2)
                    .map(|c| {
                        let n = noise(len, 50 + 2 * j as u64 + c as u64);
                        (0..len).map(|i| 0.9 * refs[j][c][i] + 0.1 * refs[1 - j][c][i] + 0.01 * n[i]).collect()
                    })
                    .collect()
            })
            .collect();
        let [schur, dense] = both(&refs, &ests, &cfg);
        for (a, b) in values(&schur).iter().zip(values(&dense)) {
            assert!((a - b).abs() < SOLVERS_TOL_DB, "Schur {a} vs dense {b}");
        }
    }

    #[test]
    fn identical_channels_match_the_dense_solver() {
        // A mono stem stored as stereo: the Schur algorithm drops the twin channel, the dense
        // solver (numpy's LU, as museval) solves the singular system whole.
        let len = 3 * 44100;
        let cfg = BssConfig { win: 44100, hop: 44100, filter_len: 512, threads: 1 };
        let mono = noise(len, 60);
        let refs: Vec<Vec<Vec<f32>>> =
            vec![vec![mono.clone(), mono], (0..2).map(|c| noise(len, 61 + c as u64)).collect()];
        let ests: Vec<Vec<Vec<f32>>> = (0..2)
            .map(|j| {
                (0..2)
                    .map(|c| {
                        let n = noise(len, 70 + 2 * j as u64 + c as u64);
                        (0..len)
                            .map(|i| refs[j][c][i] + 0.2 * refs[1 - j][c][i.saturating_sub(2)] + 0.1 * n[i])
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let [schur, dense] = both(&refs, &ests, &cfg);
        let mut worst = 0.0f64;
        for (a, b) in values(&schur).iter().zip(values(&dense)) {
            assert!((a - b).abs() < SOLVERS_TOL_DB, "Schur {a} vs dense {b}");
            worst = worst.max((a - b).abs());
        }
        eprintln!("identical channels: largest difference from the dense solver {worst:.2e} dB");
    }
}
