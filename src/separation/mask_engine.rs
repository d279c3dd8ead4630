//! The mask engine inside every [`Separator`](super::Separator): streaming
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
//! Streaming models (a contract with `stream_state`) are causal networks that carry each layer's
//! recent inputs from call to call: their window holds only the block, and before the first
//! block the engine feeds them `context_frames` zero feature frames, the same silence a window
//! starts with. Same stems, but each layer runs once per frame instead of once per window frame
//! (live: 1 frame per call instead of 31).
//!
//! Output timing. Stem sample `j` (counting everything the engine has emitted) belongs to input
//! sample `j − (win − hop)`: [`MaskEngine::index_offset`]. Live callers also wait for
//! `lookahead + block − 1` frames before a frame is masked: [`MaskEngine::latency_samples`].
//!
//! Rates. When the input's rate is a whole multiple `k` of the model's (44.1 kHz for a 22.05 kHz
//! model, or the model's own rate), the engine runs at the input's rate: window, DFT and hop are
//! `k` times the contract's, so frames span the same time and bins the same frequencies, and the
//! model reads the first `bins` bins. Its features are computed from `|X| · |H(f)| / k`, with
//! `H` the band-limiting filter of [`Resampler::band_limited`](crate::dsp::resample::Resampler::band_limited):
//! the spectrum the model would see after resampling to its rate (`1 / k` for the longer sum, `H`
//! for the band edge it was trained with), so no resampling is needed either way. At other rates
//! the engine runs at the model's rate and `super::rate_bridge` resamples around it.
//!
//! Full band. The model never sees the band above its Nyquist frequency; its vocal share is the
//! mean vocal mask over the model's top bins, `g`. At the input's rate the bins above the
//! model's get the mask `g` directly. At the model's rate the engine instead emits `g` as a
//! per-sample "high-band vocal gain", overlap-added with the same window weighting as the stems,
//! and the rate bridge splits the band the resamplers removed with it.

use realfft::num_complex::Complex32;

use super::MaskNetwork;
use crate::dsp::resample::band_limit_response;
use crate::dsp::{MaskRule, StereoWiener, StftConfig, StftPairAnalyzer, StftPairSynthesizer, mask::apply_masks, simd};
use crate::model::{Contract, StreamState};
use crate::{Error, Result};

/// Fraction of the model's bins, from the top, whose vocal mask decides the band above it.
const HIGH_BAND_FRACTION: usize = 8;

/// Largest multiple of the model's rate the engine runs at directly (176.4 kHz for a 22.05 kHz
/// model); beyond it the input is resampled.
const MAX_RATE_FACTOR: u32 = 8;

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
    fn new(cfg: StftConfig) -> Self {
        let weights: Vec<f32> = cfg.window.build(cfg.win_length).iter().map(|w| w * w).collect();
        let inverse_norm =
            (0..cfg.hop).map(|j| 1.0 / (j..cfg.win_length).step_by(cfg.hop).map(|i| weights[i]).sum::<f32>()).collect();
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

/// The transforms of a pair of channels (`2p`, `2p + 1`): one complex FFT per frame serves both
/// (`StftPairAnalyzer`). An odd last channel is paired with silence.
struct PairTransforms {
    analyzer: StftPairAnalyzer,
    vocals: StftPairSynthesizer,
    accompaniment: StftPairSynthesizer,
}

struct ChannelState {
    /// The high-band gain stream (engines at the model's rate only).
    gain: Option<GainSynthesizer>,
    /// Input samples waiting for a full hop.
    pending: Vec<f32>,
    /// Spectra of the frames after the context part of the window (`block + lookahead`).
    spectra: Vec<Complex32>,
}

/// Streaming separation, at the input's rate or the model's (see "Rates" in the module docs).
pub struct MaskEngine {
    contract: Contract,
    rule: MaskRule,
    /// The rate the engine runs at, and its STFT geometry there (the contract's, scaled).
    sample_rate: u32,
    stft: StftConfig,
    /// Bins of the engine's spectra (all of them) and of the model's input (the lowest ones).
    bins: usize,
    model_bins: usize,
    /// Per model bin, `|H(f)| / k` (engines at the input's rate; see the module docs).
    feature_scale: Option<Vec<f32>>,
    block: usize,
    /// Frames of past features at the front of the model's window: the contract's context, or
    /// none for a streaming model, which remembers its past in `state`.
    context: usize,
    window_frames: usize,
    /// A streaming model's state, and whether it has seen the silence before the signal yet.
    state: Option<StreamState>,
    warmed_up: bool,
    /// The silence fed to a streaming model before the signal, and where its output goes
    /// (allocated up front: the first model call may be on a real-time thread).
    warmup_in: Vec<f32>,
    warmup_out: Vec<f32>,
    channels: Vec<ChannelState>,
    pairs: Vec<PairTransforms>,
    /// Model input `[channels, window_frames, bins]`, context part first.
    features: Vec<f32>,
    model_out: Vec<f32>,
    /// Frames stored after the context part of the window.
    filled: usize,
    /// The stereo Wiener filter, when the rule asks for it and the input has two channels.
    wiener: Option<StereoWiener>,
    /// One frame's vocal and accompaniment spectra per channel (`[channels, bins]`).
    scratch_v: Vec<Complex32>,
    scratch_a: Vec<Complex32>,
    /// One frame's high-band vocal gain per channel.
    scratch_g: Vec<f32>,
    /// One hop of output for each channel of a pair.
    hop_v: Vec<f32>,
    hop_a: Vec<f32>,
    hop_g: Vec<f32>,
    /// The silent partner of an odd last channel: a hop of input, a spectrum, one written to.
    silent_hop: Vec<f32>,
    silent_spectrum: Vec<Complex32>,
    spare_spectrum: Vec<Complex32>,
    top_bins: usize,
    input_samples: u64,
    frames_emitted: u64,
    model_calls: u64,
}

impl MaskEngine {
    /// The engine for `channels` channels of input at `input_rate` Hz and blocks of
    /// `block_frames` frames, with every buffer allocated. It runs at `input_rate` itself when
    /// that is a whole multiple of the model's rate, else at the model's rate (see the module
    /// docs); [`sample_rate`](Self::sample_rate) says which.
    pub fn new(
        contract: &Contract,
        rule: MaskRule,
        channels: usize,
        block_frames: usize,
        input_rate: u32,
    ) -> Result<Self> {
        if channels == 0 || block_frames == 0 {
            return Err(Error::InvalidArgument(format!(
                "engine needs at least one channel and one frame per block (got {channels} and {block_frames})"
            )));
        }
        let model_rate = contract.sample_rate;
        let factor = input_rate
            .is_multiple_of(model_rate)
            .then_some(input_rate / model_rate)
            .filter(|k| (1..=MAX_RATE_FACTOR).contains(k));
        let model_stft = contract.stft;
        let model_bins = model_stft.bins();
        let (sample_rate, stft, feature_scale) = match factor {
            Some(k) => {
                let stft = StftConfig {
                    n_fft: model_stft.n_fft * k as usize,
                    win_length: model_stft.win_length * k as usize,
                    hop: model_stft.hop * k as usize,
                    window: model_stft.window,
                };
                let freqs: Vec<f64> =
                    (0..model_bins).map(|b| b as f64 * model_rate as f64 / model_stft.n_fft as f64).collect();
                let response = band_limit_response(input_rate, model_rate, &freqs).ok_or_else(|| {
                    Error::InvalidArgument(format!("no band-limiting filter for {input_rate} -> {model_rate} Hz"))
                })?;
                (input_rate, stft, Some(response.iter().map(|h| (h / k as f64) as f32).collect::<Vec<_>>()))
            }
            None => (model_rate, model_stft, None),
        };
        let bins = stft.bins();
        let context = if contract.is_streaming() { 0 } else { contract.context_frames };
        let window_frames = context + block_frames + contract.lookahead_frames;
        let pending_frames = block_frames + contract.lookahead_frames;
        let full_band = feature_scale.is_some();
        let pairs = (0..channels.div_ceil(2))
            .map(|_| -> Result<PairTransforms> {
                Ok(PairTransforms {
                    analyzer: StftPairAnalyzer::new(stft)?,
                    vocals: StftPairSynthesizer::new(stft)?,
                    accompaniment: StftPairSynthesizer::new(stft)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let channels: Vec<ChannelState> = (0..channels)
            .map(|_| ChannelState {
                gain: (!full_band).then(|| GainSynthesizer::new(stft)),
                pending: Vec::with_capacity(stft.hop),
                spectra: vec![Complex32::default(); pending_frames * bins],
            })
            .collect();
        let n = channels.len() * window_frames * model_bins;
        let warmup_values =
            if contract.is_streaming() { channels.len() * contract.context_frames * model_bins } else { 0 };
        Ok(MaskEngine {
            contract: contract.clone(),
            rule,
            sample_rate,
            stft,
            bins,
            model_bins,
            feature_scale,
            block: block_frames,
            context,
            window_frames,
            state: contract.is_streaming().then(|| StreamState::new(contract, channels.len())),
            warmed_up: false,
            warmup_in: vec![0.0; warmup_values],
            warmup_out: vec![0.0; warmup_values],
            features: vec![0.0; n],
            model_out: vec![0.0; n],
            filled: 0,
            wiener: StereoWiener::for_rule(rule, channels.len(), model_bins, stft.hop, sample_rate),
            scratch_v: vec![Complex32::default(); channels.len() * bins],
            scratch_a: vec![Complex32::default(); channels.len() * bins],
            scratch_g: vec![0.0; channels.len()],
            hop_v: vec![0.0; 2 * stft.hop],
            hop_a: vec![0.0; 2 * stft.hop],
            hop_g: vec![0.0; stft.hop],
            silent_hop: vec![0.0; stft.hop],
            silent_spectrum: vec![Complex32::default(); bins],
            spare_spectrum: vec![Complex32::default(); bins],
            pairs,
            top_bins: (model_bins / HIGH_BAND_FRACTION).max(1),
            channels,
            input_samples: 0,
            frames_emitted: 0,
            model_calls: 0,
        })
    }

    /// The rate the engine runs at: the input's when it is a whole multiple of the model's,
    /// else the model's.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples between frames at the engine's rate.
    pub fn hop(&self) -> usize {
        self.stft.hop
    }

    /// True when the engine emits no accompaniment stream because it equals the input minus the
    /// vocals (complementary mask rules).
    pub fn accompaniment_is_residual(&self) -> bool {
        self.rule.is_complementary()
    }

    /// STFT frames finalised per model call.
    pub fn block_frames(&self) -> usize {
        self.block
    }

    /// Frames the model looks ahead.
    pub fn lookahead_frames(&self) -> usize {
        self.contract.lookahead_frames
    }

    /// Blocks the network has run on so far.
    pub fn model_calls(&self) -> u64 {
        self.model_calls
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// Output sample `j` belongs to input sample `j − index_offset()`.
    pub fn index_offset(&self) -> usize {
        self.stft.latency_samples()
    }

    /// Algorithmic latency in samples when fed one hop at a time: STFT overlap, look-ahead and
    /// the frames a block waits for.
    pub fn latency_samples(&self) -> usize {
        self.stft.latency_samples() + (self.contract.lookahead_frames + self.block - 1) * self.stft.hop
    }

    /// Feeds samples (one slice per channel, equal lengths) and appends whatever output they complete.
    pub fn push(&mut self, network: &mut dyn MaskNetwork, input: &[&[f32]], out: &mut EngineOutput) -> Result<()> {
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
        let hop = self.stft.hop;
        let mut pos = 0;
        while pos < len {
            if self.channels[0].pending.is_empty() && len - pos >= hop {
                // A whole hop in the input: analysed where it lies.
                self.analyse(Some((input, pos)))?;
                pos += hop;
            } else {
                let take = (hop - self.channels[0].pending.len()).min(len - pos);
                for (ch, data) in self.channels.iter_mut().zip(input) {
                    ch.pending.extend_from_slice(&data[pos..pos + take]);
                }
                pos += take;
                if self.channels[0].pending.len() < hop {
                    continue;
                }
                self.analyse(None)?;
            }
            if self.filled == self.block + self.contract.lookahead_frames {
                self.run_block(network, self.block, out)?;
            }
        }
        self.input_samples += len as u64;
        Ok(())
    }

    /// Ends the signal: analyses the frames that overlap its tail (padding with silence) and
    /// finalises every frame, so that all input samples come out (offline use).
    pub fn finish(&mut self, network: &mut dyn MaskNetwork, out: &mut EngineOutput) -> Result<()> {
        let hop = self.stft.hop;
        let needed = self.stft.frames_for(self.input_samples as usize) as u64;
        while self.frames_emitted < needed {
            if self.frames_emitted + (self.filled as u64) < needed {
                for ch in &mut self.channels {
                    ch.pending.resize(hop, 0.0);
                }
                self.analyse(None)?;
                if self.filled == self.block + self.contract.lookahead_frames {
                    self.run_block(network, self.block, out)?;
                }
            } else {
                // Later frames lie wholly after the signal: zero features, which run_block
                // supplies. At most `block` frames per call keeps every look-ahead in the window.
                let ready = ((needed - self.frames_emitted) as usize).min(self.block);
                self.run_block(network, ready, out)?;
            }
        }
        Ok(())
    }

    /// Analyses the next hop of every channel: `input[c][pos..]` when given, else the pending
    /// samples.
    fn analyse(&mut self, input: Option<(&[&[f32]], usize)>) -> Result<()> {
        let (bins, model_bins, hop) = (self.bins, self.model_bins, self.stft.hop);
        let ctx = self.context;
        let slot = self.filled;
        let frame = slot * bins..(slot + 1) * bins;
        for (p, pair) in self.pairs.iter_mut().enumerate() {
            let (first, rest) = self.channels[2 * p..].split_first_mut().expect("a channel per pair");
            let (second_hop, second_spectrum) = match rest.first_mut() {
                Some(ch) => (hop_source(input, 2 * p + 1, hop, &ch.pending), &mut ch.spectra[frame.clone()]),
                None => (&self.silent_hop[..], &mut self.spare_spectrum[..]),
            };
            let hops = [hop_source(input, 2 * p, hop, &first.pending), second_hop];
            let spectra = [&mut first.spectra[frame.clone()], second_spectrum];
            pair.analyzer.push_hops(hops, spectra)?;
        }
        for (c, ch) in self.channels.iter_mut().enumerate() {
            ch.pending.clear();
            let row = (c * self.window_frames + ctx + slot) * model_bins;
            let features = &mut self.features[row..row + model_bins];
            self.contract.feature.compute_into(
                &ch.spectra[frame.clone()][..model_bins],
                self.feature_scale.as_deref(),
                features,
            );
        }
        self.filled += 1;
        Ok(())
    }

    /// Runs the model over the window and emits the first `ready` frames after the context.
    fn run_block(&mut self, network: &mut dyn MaskNetwork, ready: usize, out: &mut EngineOutput) -> Result<()> {
        let (bins, mb) = (self.bins, self.model_bins);
        let ctx = self.context;
        let wf = self.window_frames;
        let complementary = self.rule.is_complementary();
        // Frames not yet analysed are silence beyond the end of the signal.
        for c in 0..self.channels.len() {
            let start = (c * wf + ctx + self.filled) * mb;
            self.features[start..(c + 1) * wf * mb].fill(0.0);
        }
        match &mut self.state {
            None => network.run(&self.features, self.channels.len(), wf, &mut self.model_out)?,
            Some(state) => {
                if !self.warmed_up {
                    // The frames before the signal are zero features, as in a window: feed the
                    // receptive field's worth of them once, so the state holds what a window
                    // would have computed from them.
                    if !self.warmup_in.is_empty() {
                        let frames = self.contract.context_frames;
                        let (silence, ignored) = (&self.warmup_in, &mut self.warmup_out);
                        network.run_streaming(silence, self.channels.len(), frames, ignored, state)?;
                    }
                    self.warmed_up = true;
                }
                network.run_streaming(&self.features, self.channels.len(), wf, &mut self.model_out, state)?
            }
        }
        self.model_calls += 1;
        if !simd::all_finite(&self.model_out)
            && let Some(bad) = self.model_out.iter().position(|v| !v.is_finite())
        {
            return Err(Error::Backend(format!(
                "{}: the model produced a non-finite value at output index {bad}",
                network.name()
            )));
        }
        for f in 0..ready {
            for (c, ch) in self.channels.iter_mut().enumerate() {
                let row = (c * wf + ctx + f) * mb;
                let mixture = &ch.spectra[f * bins..(f + 1) * bins];
                let vocals = &mut self.scratch_v[c * bins..(c + 1) * bins];
                let probabilities = &mut self.model_out[row..row + mb];
                self.contract.output.to_probabilities(probabilities);
                let g = apply_masks(
                    &mixture[..mb],
                    probabilities,
                    self.rule,
                    &mut vocals[..mb],
                    (!complementary).then_some(&mut self.scratch_a[c * bins..c * bins + mb]),
                    self.top_bins,
                );
                self.scratch_g[c] = g;
                // The bins above the model's (engines at the input's rate): its top-band share.
                simd::scale_spectrum_by(&mixture[mb..], g, &mut vocals[mb..]);
                if !complementary {
                    simd::scale_spectrum_by(
                        &mixture[mb..],
                        1.0 - g,
                        &mut self.scratch_a[c * bins + mb..(c + 1) * bins],
                    );
                }
            }
            if let Some(wiener) = &mut self.wiener {
                let frame = f * bins..f * bins + mb;
                let (v1, v2) = self.scratch_v.split_at_mut(bins);
                let (x1, x2) = (&self.channels[0].spectra[frame.clone()], &self.channels[1].spectra[frame]);
                wiener.refine([x1, x2], [&mut v1[..mb], &mut v2[..mb]]);
            }
            // With complementary masks the accompaniment is the input minus the vocals
            // (the rate bridge forms it), which saves an inverse FFT per frame; the paper's rule
            // is not complementary, and its accompaniment is synthesised here.
            let channels = self.channels.len();
            for (p, pair) in self.pairs.iter_mut().enumerate() {
                let (c0, c1) = (2 * p, 2 * p + 1);
                let (h0, h1) = self.hop_v.split_at_mut(self.stft.hop);
                pair.vocals.push_frames(pair_of(&self.scratch_v, c0, bins, &self.silent_spectrum), [h0, h1])?;
                let (a0, a1) = self.hop_a.split_at_mut(self.stft.hop);
                if !complementary {
                    pair.accompaniment
                        .push_frames(pair_of(&self.scratch_a, c0, bins, &self.silent_spectrum), [a0, a1])?;
                }
                for (c, (v, a)) in [(c0, (&*h0, &*a0)), (c1, (&*h1, &*a1))] {
                    if c < channels {
                        out.vocals[c].extend_from_slice(v);
                        if !complementary {
                            out.accompaniment[c].extend_from_slice(a);
                        }
                    }
                }
            }
            for (c, ch) in self.channels.iter_mut().enumerate() {
                if let Some(gain) = &mut ch.gain {
                    gain.push(self.scratch_g[c], &mut self.hop_g);
                    out.high_gain[c].extend_from_slice(&self.hop_g);
                }
            }
        }
        for (c, ch) in self.channels.iter_mut().enumerate() {
            // Slide: the last `ctx` frames up to the block end become the next context.
            let row0 = c * wf * mb;
            self.features.copy_within(row0 + ready * mb..row0 + (ctx + self.filled) * mb, row0);
            ch.spectra.copy_within(ready * bins..self.filled * bins, 0);
        }
        self.filled -= ready;
        self.frames_emitted += ready as u64;
        Ok(())
    }
}

/// Where channel `c`'s next hop lies: in the input at `pos` when given, else in its pending samples.
fn hop_source<'a>(input: Option<(&[&'a [f32]], usize)>, c: usize, hop: usize, pending: &'a [f32]) -> &'a [f32] {
    match input {
        Some((input, pos)) => &input[c][pos..pos + hop],
        None => pending,
    }
}

/// Channels `c0` and `c0 + 1` of `[channels, bins]` spectra, silence standing in for a missing
/// second channel.
fn pair_of<'a>(spectra: &'a [Complex32], c0: usize, bins: usize, silent: &'a [Complex32]) -> [&'a [Complex32]; 2] {
    let second = spectra.get((c0 + 1) * bins..(c0 + 2) * bins).unwrap_or(silent);
    [&spectra[c0 * bins..(c0 + 1) * bins], second]
}
