//! The model-rate separation engine shared by the offline pipeline and the live mode: streaming
//! STFT per channel → features → model over a sliding window of frames → mask rule (→ the stereo
//! Wiener filter, which couples the two channels of a frame) → streaming iSTFTs. One code path;
//! offline uses large blocks, live uses small ones.
//!
//! Frames and exactness. The model sees the feature sequence of the zero-extended signal: a
//! window of `context + block + lookahead` frames, where frames before the start of the signal
//! are zero features. Each call finalises the `block` frames in the middle, whose outputs depend
//! only on frames inside the window (the contract's receptive field), so any block size gives the
//! same stems as one call over the whole file. Every call has the same shape, so backends that
//! specialise on shapes (tract) optimise the graph once.
//!
//! Output timing. Stem sample `j` (counting everything the engine has emitted) belongs to input
//! sample `j − (win − hop)`: [`MaskEngine::index_offset`]. Live callers also wait for
//! `lookahead + block − 1` frames before a frame is masked: [`MaskEngine::latency_samples`].
//!
//! Full band. Besides the stems, the engine emits a per-sample "high-band vocal gain": the mean
//! vocal mask over the model's top bins, overlap-added with the same window weighting as the
//! stems. The file pipeline uses it to split the band above the model's Nyquist frequency, which
//! the model never sees, between the two stems.

use realfft::num_complex::Complex32;

use crate::dsp::{MaskRule, StereoWiener, StftAnalyzer, StftSynthesizer, mask::apply_masks};
use crate::model::{Contract, Model};
use crate::{Error, Result};

/// Fraction of the model's bins, from the top, whose vocal mask decides the band above it.
const HIGH_BAND_FRACTION: usize = 8;

/// Per-channel output streams appended by the engine.
#[derive(Debug, Default, Clone)]
pub struct EngineOutput {
    pub vocals: Vec<Vec<f32>>,
    pub accompaniment: Vec<Vec<f32>>,
    /// Vocal share for content above the model's band, one value per output sample.
    pub high_gain: Vec<Vec<f32>>,
}

impl EngineOutput {
    /// Empty streams for `channels` channels.
    pub fn new(channels: usize) -> Self {
        EngineOutput {
            vocals: vec![Vec::new(); channels],
            accompaniment: vec![Vec::new(); channels],
            high_gain: vec![Vec::new(); channels],
        }
    }

    /// Samples available per channel.
    pub fn len(&self) -> usize {
        self.vocals.first().map_or(0, Vec::len)
    }

    /// True when no samples are buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops the first `n` samples of every stream.
    pub fn drain_front(&mut self, n: usize) {
        for s in self.vocals.iter_mut().chain(&mut self.accompaniment).chain(&mut self.high_gain) {
            s.drain(..n.min(s.len()));
        }
    }
}

/// Overlap-adds one scalar per frame with the synthesis weighting w², normalised, so a per-frame
/// value becomes a smooth per-sample curve aligned with the iSTFT output.
struct GainSynthesizer {
    weights: Vec<f32>,
    inverse_norm: Vec<f32>,
    accumulator: Vec<f32>,
    hop: usize,
}

impl GainSynthesizer {
    fn new(contract: &Contract) -> Self {
        let cfg = contract.stft;
        let weights: Vec<f32> = cfg.window.build(cfg.win_length).iter().map(|w| w * w).collect();
        let inverse_norm = (0..cfg.hop)
            .map(|j| 1.0 / (j..cfg.win_length).step_by(cfg.hop).map(|i| weights[i]).sum::<f32>())
            .collect();
        GainSynthesizer { weights, inverse_norm, accumulator: vec![0.0; cfg.win_length], hop: cfg.hop }
    }

    fn push(&mut self, gain: f32, out: &mut [f32]) {
        for (acc, w) in self.accumulator.iter_mut().zip(&self.weights) {
            *acc += gain * w;
        }
        for ((o, acc), n) in out.iter_mut().zip(&self.accumulator).zip(&self.inverse_norm) {
            *o = acc * n;
        }
        let len = self.accumulator.len();
        self.accumulator.copy_within(self.hop.., 0);
        self.accumulator[len - self.hop..].fill(0.0);
    }
}

struct ChannelState {
    analyzer: StftAnalyzer,
    vocals: StftSynthesizer,
    accompaniment: StftSynthesizer,
    gain: GainSynthesizer,
    /// Input samples waiting for a full hop.
    pending: Vec<f32>,
    /// Spectra of the frames after the context part of the window (`block + lookahead`).
    spectra: Vec<Complex32>,
}

/// Streaming separation at the model's sample rate.
pub struct MaskEngine {
    contract: Contract,
    rule: MaskRule,
    block: usize,
    window_frames: usize,
    channels: Vec<ChannelState>,
    /// Model input `[channels, window_frames, bins]`, context part first.
    features: Vec<f32>,
    model_out: Vec<f32>,
    /// Frames stored after the context part of the window.
    filled: usize,
    /// The stereo Wiener filter, when the rule asks for it and the input has two channels.
    wiener: Option<StereoWiener>,
    scratch_spec: Vec<Complex32>,
    /// One frame's vocal spectrum per channel (`[channels, bins]`).
    scratch_v: Vec<Complex32>,
    scratch_a: Vec<Complex32>,
    /// One frame's high-band vocal gain per channel.
    scratch_g: Vec<f32>,
    hop_v: Vec<f32>,
    hop_a: Vec<f32>,
    hop_g: Vec<f32>,
    top_bins: usize,
    input_samples: u64,
    frames_emitted: u64,
}

impl MaskEngine {
    /// Allocates every buffer for `channels` channels and blocks of `block_frames` frames.
    pub fn new(contract: &Contract, rule: MaskRule, channels: usize, block_frames: usize) -> Result<Self> {
        if channels == 0 || block_frames == 0 {
            return Err(Error::InvalidArgument(format!(
                "engine needs at least one channel and one frame per block (got {channels} and {block_frames})"
            )));
        }
        let cfg = contract.stft;
        let bins = cfg.bins();
        let window_frames = contract.context_frames + block_frames + contract.lookahead_frames;
        let pending_frames = block_frames + contract.lookahead_frames;
        let channels = (0..channels)
            .map(|_| -> Result<ChannelState> {
                Ok(ChannelState {
                    analyzer: StftAnalyzer::new(cfg)?,
                    vocals: StftSynthesizer::new(cfg)?,
                    accompaniment: StftSynthesizer::new(cfg)?,
                    gain: GainSynthesizer::new(contract),
                    pending: Vec::with_capacity(cfg.hop),
                    spectra: vec![Complex32::default(); pending_frames * bins],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let n = channels.len() * window_frames * bins;
        Ok(MaskEngine {
            contract: contract.clone(),
            rule,
            block: block_frames,
            window_frames,
            features: vec![0.0; n],
            model_out: vec![0.0; n],
            filled: 0,
            wiener: StereoWiener::for_rule(rule, channels.len(), bins, cfg.hop, contract.sample_rate),
            scratch_spec: vec![Complex32::default(); bins],
            scratch_v: vec![Complex32::default(); channels.len() * bins],
            scratch_a: vec![Complex32::default(); bins],
            scratch_g: vec![0.0; channels.len()],
            hop_v: vec![0.0; cfg.hop],
            hop_a: vec![0.0; cfg.hop],
            hop_g: vec![0.0; cfg.hop],
            top_bins: (bins / HIGH_BAND_FRACTION).max(1),
            channels,
            input_samples: 0,
            frames_emitted: 0,
        })
    }

    /// True when the engine emits no accompaniment stream because it equals the input minus the
    /// vocals (complementary mask rules).
    pub fn accompaniment_is_residual(&self) -> bool {
        self.rule.is_complementary()
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// Output sample `j` belongs to input sample `j − index_offset()`.
    pub fn index_offset(&self) -> usize {
        self.contract.stft.latency_samples()
    }

    /// Algorithmic latency in samples when fed one hop at a time: STFT overlap, look-ahead and
    /// the frames a block waits for.
    pub fn latency_samples(&self) -> usize {
        self.contract.latency_samples() + (self.block - 1) * self.contract.stft.hop
    }

    /// Feeds samples (one slice per channel, equal lengths) and appends whatever output they complete.
    pub fn push(&mut self, model: &mut Model, input: &[&[f32]], out: &mut EngineOutput) -> Result<()> {
        if input.len() != self.channels.len() || out.vocals.len() != self.channels.len() {
            return Err(Error::Mismatch {
                what: "engine channels".into(),
                expected: self.channels.len().to_string(),
                got: format!("{} in, {} out", input.len(), out.vocals.len()),
            });
        }
        let len = input[0].len();
        if input.iter().any(|c| c.len() != len) {
            return Err(Error::InvalidArgument("channel slices differ in length".into()));
        }
        let hop = self.contract.stft.hop;
        let mut pos = 0;
        while pos < len {
            let take = (hop - self.channels[0].pending.len()).min(len - pos);
            for (ch, data) in self.channels.iter_mut().zip(input) {
                ch.pending.extend_from_slice(&data[pos..pos + take]);
            }
            pos += take;
            if self.channels[0].pending.len() == hop {
                self.analyse_pending()?;
                if self.filled == self.block + self.contract.lookahead_frames {
                    self.run_block(model, self.block, out)?;
                }
            }
        }
        self.input_samples += len as u64;
        Ok(())
    }

    /// Ends the signal: analyses the frames that overlap its tail (padding with silence) and
    /// finalises every frame, so that all input samples come out (offline use).
    pub fn finish(&mut self, model: &mut Model, out: &mut EngineOutput) -> Result<()> {
        let hop = self.contract.stft.hop;
        let needed = self.contract.stft.frames_for(self.input_samples as usize) as u64;
        while self.frames_emitted < needed {
            if self.frames_emitted + (self.filled as u64) < needed {
                for ch in &mut self.channels {
                    ch.pending.resize(hop, 0.0);
                }
                self.analyse_pending()?;
                if self.filled == self.block + self.contract.lookahead_frames {
                    self.run_block(model, self.block, out)?;
                }
            } else {
                // Later frames lie wholly after the signal: zero features, which run_block
                // supplies. At most `block` frames per call keeps every look-ahead in the window.
                let ready = ((needed - self.frames_emitted) as usize).min(self.block);
                self.run_block(model, ready, out)?;
            }
        }
        Ok(())
    }

    fn analyse_pending(&mut self) -> Result<()> {
        let bins = self.contract.bins();
        let ctx = self.contract.context_frames;
        let slot = self.filled;
        for (c, ch) in self.channels.iter_mut().enumerate() {
            ch.analyzer.push_hop(&ch.pending, &mut self.scratch_spec)?;
            ch.pending.clear();
            ch.spectra[slot * bins..(slot + 1) * bins].copy_from_slice(&self.scratch_spec);
            let row = (c * self.window_frames + ctx + slot) * bins;
            self.contract.feature.compute_into(&self.scratch_spec, &mut self.features[row..row + bins]);
        }
        self.filled += 1;
        Ok(())
    }

    /// Runs the model over the window and emits the first `ready` frames after the context.
    fn run_block(&mut self, model: &mut Model, ready: usize, out: &mut EngineOutput) -> Result<()> {
        let bins = self.contract.bins();
        let ctx = self.contract.context_frames;
        let wf = self.window_frames;
        // Frames not yet analysed are silence beyond the end of the signal.
        for c in 0..self.channels.len() {
            let start = (c * wf + ctx + self.filled) * bins;
            self.features[start..(c + 1) * wf * bins].fill(0.0);
        }
        model.run(&self.features, self.channels.len(), wf, &mut self.model_out)?;
        if let Some(bad) = self.model_out.iter().position(|v| !v.is_finite()) {
            return Err(Error::Backend(format!(
                "{}: the model produced a non-finite value at output index {bad}",
                model.path().display()
            )));
        }
        for f in 0..ready {
            for (c, ch) in self.channels.iter_mut().enumerate() {
                let row = (c * wf + ctx + f) * bins;
                self.scratch_g[c] = apply_masks(
                    &ch.spectra[f * bins..(f + 1) * bins],
                    &self.model_out[row..row + bins],
                    self.contract.output,
                    self.rule,
                    &mut self.scratch_v[c * bins..(c + 1) * bins],
                    (!self.rule.is_complementary()).then_some(&mut self.scratch_a[..]),
                    self.top_bins,
                );
                // The paper's rule is not complementary: its accompaniment is synthesised here.
                if !self.rule.is_complementary() {
                    ch.accompaniment.push_frame(&self.scratch_a, &mut self.hop_a)?;
                    out.accompaniment[c].extend_from_slice(&self.hop_a);
                }
            }
            if let Some(wiener) = &mut self.wiener {
                let frame = f * bins..(f + 1) * bins;
                let (v1, v2) = self.scratch_v.split_at_mut(bins);
                let (x1, x2) = (&self.channels[0].spectra[frame.clone()], &self.channels[1].spectra[frame]);
                wiener.refine([x1, x2], [v1, v2]);
            }
            // With complementary masks the accompaniment is the input minus the vocals
            // (`NativePipeline` forms it), which saves an inverse FFT per frame.
            for (c, ch) in self.channels.iter_mut().enumerate() {
                ch.vocals.push_frame(&self.scratch_v[c * bins..(c + 1) * bins], &mut self.hop_v)?;
                ch.gain.push(self.scratch_g[c], &mut self.hop_g);
                out.vocals[c].extend_from_slice(&self.hop_v);
                out.high_gain[c].extend_from_slice(&self.hop_g);
            }
        }
        for (c, ch) in self.channels.iter_mut().enumerate() {
            // Slide: the last `ctx` frames up to the block end become the next context.
            let row0 = c * wf * bins;
            self.features.copy_within(row0 + ready * bins..row0 + (ctx + self.filled) * bins, row0);
            ch.spectra.copy_within(ready * bins..self.filled * bins, 0);
        }
        self.filled -= ready;
        self.frames_emitted += ready as u64;
        Ok(())
    }
}
