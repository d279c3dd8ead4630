//! Streaming STFT and inverse STFT (weighted overlap-add) on realfft.
//!
//! Framing is the streaming one: frame `k` covers input samples `[k·hop − (win − hop), (k+1)·hop)`,
//! i.e. each new hop of input completes one frame, and each synthesised frame completes one hop
//! of output. The output therefore lags the input by exactly `win − hop` samples
//! ([`StftConfig::latency_samples`]); offline callers drop that many leading samples. Every sample
//! at index ≥ 0 is covered by the same number of frames, so the inverse normalises by the
//! steady-state sum of squared windows and reconstructs exactly for any hop ≤ win/2.
//!
//! The window of `win` samples sits at the start of an `n_fft`-point buffer (zero-padded DFT, as in
//! Lin et al. 2018: Hann 1024 in a 4096-point DFT). All buffers are allocated in `new`; pushing a
//! hop or a frame never allocates.

use std::sync::Arc;

use realfft::num_complex::Complex32;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};

use super::simd;
use super::window::WindowKind;
use crate::{Error, Result};

/// STFT geometry, as a model's contract states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StftConfig {
    /// DFT size; the spectrum has `n_fft / 2 + 1` bins.
    pub n_fft: usize,
    /// Window length in samples (≤ `n_fft`; the rest of the DFT buffer is zero).
    pub win_length: usize,
    /// Hop between frames in samples (≤ `win_length / 2`).
    pub hop: usize,
    /// Window function used for analysis and synthesis.
    pub window: WindowKind,
}

impl StftConfig {
    /// Number of frequency bins per frame.
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// Delay of the streaming STFT→iSTFT round trip in samples.
    pub fn latency_samples(&self) -> usize {
        self.win_length - self.hop
    }

    /// Frames needed to carry `n` input samples all the way through synthesis.
    pub fn frames_for(&self, n: usize) -> usize {
        (n + self.latency_samples()).div_ceil(self.hop)
    }

    /// Checks that the geometry reconstructs exactly.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("STFT {self:?}: {why}")));
        if self.hop == 0 || self.win_length == 0 || self.n_fft == 0 {
            return bad("sizes must be positive".into());
        }
        if self.win_length > self.n_fft {
            return bad(format!("window {} longer than the DFT {}", self.win_length, self.n_fft));
        }
        if !self.n_fft.is_multiple_of(2) {
            return bad("the DFT size must be even".into());
        }
        if self.hop * 2 > self.win_length {
            return bad(format!(
                "hop {} exceeds half the window {}: overlap-add would not reconstruct",
                self.hop, self.win_length
            ));
        }
        Ok(())
    }

    fn steady_state_inverse_norm(&self, window: &[f32]) -> Vec<f32> {
        (0..self.hop)
            .map(|j| {
                let sum: f64 = (j..self.win_length).step_by(self.hop).map(|i| (window[i] as f64).powi(2)).sum();
                (1.0 / sum) as f32
            })
            .collect()
    }
}

/// Streaming analysis: one hop of samples in, one spectrum out.
pub struct StftAnalyzer {
    cfg: StftConfig,
    window: Vec<f32>,
    /// The last `win_length` input samples (oldest first).
    history: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    frame: Vec<f32>,
    scratch: Vec<Complex32>,
}

impl StftAnalyzer {
    /// Plans the FFT and allocates every buffer.
    pub fn new(cfg: StftConfig) -> Result<Self> {
        cfg.validate()?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        let scratch = fft.make_scratch_vec();
        Ok(StftAnalyzer {
            window: cfg.window.build(cfg.win_length),
            history: vec![0.0; cfg.win_length],
            frame: vec![0.0; cfg.n_fft],
            scratch,
            fft,
            cfg,
        })
    }

    /// The geometry this analyzer was built with.
    pub fn config(&self) -> &StftConfig {
        &self.cfg
    }

    /// Forgets all past input (as if the signal started now).
    pub fn reset(&mut self) {
        self.history.fill(0.0);
    }

    /// Consumes exactly `hop` new samples and writes the spectrum of the frame they complete.
    pub fn push_hop(&mut self, hop_samples: &[f32], spectrum: &mut [Complex32]) -> Result<()> {
        let (hop, win) = (self.cfg.hop, self.cfg.win_length);
        check_len("STFT input hop", hop, hop_samples.len())?;
        check_len("STFT spectrum", self.cfg.bins(), spectrum.len())?;
        slide_in(&mut self.history, hop_samples);
        for ((f, &h), &w) in self.frame.iter_mut().zip(&self.history).zip(&self.window) {
            *f = h * w;
        }
        self.frame[win..].fill(0.0);
        self.fft
            .process_with_scratch(&mut self.frame, spectrum, &mut self.scratch)
            .map_err(|e| Error::InvalidArgument(format!("forward FFT: {e}")))
    }
}

/// Streaming synthesis: one (masked) spectrum in, one hop of finished samples out.
pub struct StftSynthesizer {
    cfg: StftConfig,
    window: Vec<f32>,
    inverse_norm: Vec<f32>,
    /// Overlap-add accumulator covering the last frame's `win_length` samples.
    accumulator: Vec<f32>,
    ifft: Arc<dyn ComplexToReal<f32>>,
    frame: Vec<f32>,
    scratch: Vec<Complex32>,
}

impl StftSynthesizer {
    /// Plans the inverse FFT and allocates every buffer.
    pub fn new(cfg: StftConfig) -> Result<Self> {
        cfg.validate()?;
        let ifft = RealFftPlanner::<f32>::new().plan_fft_inverse(cfg.n_fft);
        let window = cfg.window.build(cfg.win_length);
        Ok(StftSynthesizer {
            inverse_norm: cfg.steady_state_inverse_norm(&window),
            window,
            accumulator: vec![0.0; cfg.win_length],
            frame: vec![0.0; cfg.n_fft],
            scratch: ifft.make_scratch_vec(),
            ifft,
            cfg,
        })
    }

    /// Clears the overlap-add state.
    pub fn reset(&mut self) {
        self.accumulator.fill(0.0);
    }

    /// Adds one frame and writes the `hop` output samples it completes. The inverse FFT works in
    /// place, so `spectrum` is left holding scratch values (callers pass spectra they are done
    /// with; copying each one first cost more than the FFT's own pre-processing).
    pub fn push_frame(&mut self, spectrum: &mut [Complex32], out: &mut [f32]) -> Result<()> {
        let (hop, n) = (self.cfg.hop, self.cfg.n_fft);
        check_len("iSTFT spectrum", self.cfg.bins(), spectrum.len())?;
        check_len("iSTFT output hop", hop, out.len())?;
        // realfft's inverse requires a purely real DC and Nyquist bin; a real mask keeps them
        // real in theory, rounding may not.
        spectrum[0].im = 0.0;
        let last = spectrum.len() - 1;
        spectrum[last].im = 0.0;
        self.ifft
            .process_with_scratch(spectrum, &mut self.frame, &mut self.scratch)
            .map_err(|e| Error::InvalidArgument(format!("inverse FFT: {e}")))?;
        let frame = self.frame.iter().copied();
        overlap_add(&mut self.accumulator, frame, &self.window, 1.0 / n as f32, &self.inverse_norm, out);
        Ok(())
    }
}

/// Two channels' streaming analysis with one complex FFT. The real FFTs `A` and `B` of channels
/// `a` and `b` are the Hermitian and anti-Hermitian parts of the complex FFT `Z` of `a + i·b`:
/// `A[k] = (Z[k] + Z*[N−k]) / 2` and `B[k] = (Z[k] − Z*[N−k]) / 2i`. One `N`-point FFT costs
/// about as much as two `N/2`-point ones, and the split needs no twiddle factors, so a stereo
/// frame costs about two thirds of two real FFTs (whose pre- and post-processing was half
/// their time). Same framing and results, to rounding, as two [`StftAnalyzer`]s.
pub struct StftPairAnalyzer {
    cfg: StftConfig,
    window: Vec<f32>,
    /// The last `win_length` input samples of each channel (oldest first).
    history: [Vec<f32>; 2],
    fft: Arc<dyn Fft<f32>>,
    buffer: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl StftPairAnalyzer {
    /// Plans the FFT and allocates every buffer.
    pub fn new(cfg: StftConfig) -> Result<Self> {
        cfg.validate()?;
        let fft = FftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        Ok(StftPairAnalyzer {
            window: cfg.window.build(cfg.win_length),
            history: [vec![0.0; cfg.win_length], vec![0.0; cfg.win_length]],
            buffer: vec![Complex32::default(); cfg.n_fft],
            scratch: vec![Complex32::default(); fft.get_inplace_scratch_len()],
            fft,
            cfg,
        })
    }

    /// Consumes exactly `hop` new samples of each channel and writes the spectra of the frames
    /// they complete.
    pub fn push_hops(&mut self, hops: [&[f32]; 2], spectra: [&mut [Complex32]; 2]) -> Result<()> {
        let (hop, win) = (self.cfg.hop, self.cfg.win_length);
        for (history, samples) in self.history.iter_mut().zip(hops) {
            check_len("STFT input hop", hop, samples.len())?;
            slide_in(history, samples);
        }
        for s in &spectra {
            check_len("STFT spectrum", self.cfg.bins(), s.len())?;
        }
        let [a, b] = &self.history;
        for (((z, &x), &y), &w) in self.buffer.iter_mut().zip(a).zip(b).zip(&self.window) {
            *z = Complex32::new(x * w, y * w);
        }
        self.buffer[win..].fill(Complex32::default());
        self.fft.process_with_scratch(&mut self.buffer, &mut self.scratch);
        let [sa, sb] = spectra;
        simd::split_pair_spectrum(&self.buffer, sa, sb);
        Ok(())
    }
}

/// Two channels' streaming synthesis with one complex inverse FFT: `Z = A + i·B` (extended to
/// the full circle by Hermitian symmetry) transforms back to `a + i·b`. The counterpart of
/// [`StftPairAnalyzer`]; same results, to rounding, as two [`StftSynthesizer`]s.
pub struct StftPairSynthesizer {
    cfg: StftConfig,
    window: Vec<f32>,
    inverse_norm: Vec<f32>,
    accumulator: [Vec<f32>; 2],
    ifft: Arc<dyn Fft<f32>>,
    buffer: Vec<Complex32>,
    scratch: Vec<Complex32>,
}

impl StftPairSynthesizer {
    /// Plans the inverse FFT and allocates every buffer.
    pub fn new(cfg: StftConfig) -> Result<Self> {
        cfg.validate()?;
        let ifft = FftPlanner::<f32>::new().plan_fft_inverse(cfg.n_fft);
        let window = cfg.window.build(cfg.win_length);
        Ok(StftPairSynthesizer {
            inverse_norm: cfg.steady_state_inverse_norm(&window),
            window,
            accumulator: [vec![0.0; cfg.win_length], vec![0.0; cfg.win_length]],
            buffer: vec![Complex32::default(); cfg.n_fft],
            scratch: vec![Complex32::default(); ifft.get_inplace_scratch_len()],
            ifft,
            cfg,
        })
    }

    /// Adds one frame of each channel and writes the `hop` output samples each completes. As for
    /// [`StftSynthesizer::push_frame`], the imaginary parts of the DC and Nyquist bins are taken
    /// as zero.
    pub fn push_frames(&mut self, spectra: [&[Complex32]; 2], out: [&mut [f32]; 2]) -> Result<()> {
        let (hop, n) = (self.cfg.hop, self.cfg.n_fft);
        for s in &spectra {
            check_len("iSTFT spectrum", self.cfg.bins(), s.len())?;
        }
        for o in &out {
            check_len("iSTFT output hop", hop, o.len())?;
        }
        let [a, b] = spectra;
        simd::merge_pair_spectrum(a, b, &mut self.buffer);
        self.ifft.process_with_scratch(&mut self.buffer, &mut self.scratch);
        // Channel `a` is the real part of the transform, `b` the imaginary part.
        for (c, (acc, o)) in self.accumulator.iter_mut().zip(out).enumerate() {
            let frame = self.buffer.iter().map(|z| if c == 0 { z.re } else { z.im });
            overlap_add(acc, frame, &self.window, 1.0 / n as f32, &self.inverse_norm, o);
        }
        Ok(())
    }
}

/// Appends one hop of input to `history`, the last `win_length` samples (oldest first).
fn slide_in(history: &mut [f32], samples: &[f32]) {
    let (win, hop) = (history.len(), samples.len());
    history.copy_within(hop.., 0);
    history[win - hop..].copy_from_slice(samples);
}

/// Weighted overlap-add of one inverse-transformed frame: adds `frame · window · scale` to the
/// accumulator, writes the `out.len()` (one hop) samples it completes, normalised by the
/// steady-state sum of squared windows, and moves the accumulator on by that hop.
fn overlap_add(
    accumulator: &mut [f32],
    frame: impl Iterator<Item = f32>,
    window: &[f32],
    scale: f32,
    inverse_norm: &[f32],
    out: &mut [f32],
) {
    let (win, hop) = (accumulator.len(), out.len());
    for ((acc, x), &w) in accumulator.iter_mut().zip(frame).zip(window) {
        *acc += x * w * scale;
    }
    for ((o, &acc), &g) in out.iter_mut().zip(accumulator.iter()).zip(inverse_norm) {
        *o = acc * g;
    }
    accumulator.copy_within(hop.., 0);
    accumulator[win - hop..].fill(0.0);
}

fn check_len(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::Mismatch { what: what.into(), expected: format!("{expected} samples"), got: format!("{got}") })
    }
}

/// Whole-signal STFT: frames in time order, each `bins` long (convenience for tests and tools).
pub fn stft(cfg: StftConfig, signal: &[f32]) -> Result<Vec<Vec<Complex32>>> {
    let mut analyzer = StftAnalyzer::new(cfg)?;
    let frames = cfg.frames_for(signal.len());
    let mut hop_buf = vec![0.0; cfg.hop];
    let mut out = Vec::with_capacity(frames);
    for k in 0..frames {
        let start = (k * cfg.hop).min(signal.len());
        let end = ((k + 1) * cfg.hop).min(signal.len());
        hop_buf.fill(0.0);
        hop_buf[..end - start].copy_from_slice(&signal[start..end]);
        let mut spec = vec![Complex32::default(); cfg.bins()];
        analyzer.push_hop(&hop_buf, &mut spec)?;
        out.push(spec);
    }
    Ok(out)
}

/// Whole-signal inverse of [`stft`]: returns `len` samples aligned with the original signal.
pub fn istft(cfg: StftConfig, frames: &[Vec<Complex32>], len: usize) -> Result<Vec<f32>> {
    let mut synth = StftSynthesizer::new(cfg)?;
    let mut out = Vec::with_capacity(frames.len() * cfg.hop);
    let mut hop_buf = vec![0.0; cfg.hop];
    let mut spec = vec![Complex32::default(); cfg.bins()];
    for frame in frames {
        spec.clone_from(frame);
        synth.push_frame(&mut spec, &mut hop_buf)?;
        out.extend_from_slice(&hop_buf);
    }
    let skip = cfg.latency_samples();
    if out.len() < skip + len {
        return Err(Error::Mismatch {
            what: "iSTFT frames".into(),
            expected: format!("at least {}", cfg.frames_for(len)),
            got: frames.len().to_string(),
        });
    }
    Ok(out[skip..skip + len].to_vec())
}
