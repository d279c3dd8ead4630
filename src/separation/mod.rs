//! Separation: the [`Separator`], which owns a network, its mask engine and the rate bridge
//! around it, and turns input samples into vocals and accompaniment with one call shape for
//! every user: `voxmask separate` (`file.rs`), `voxmask eval`, live (`crate::stream`) and the
//! trainer's validation, which runs its candle network through the same path.
//!
//! Inside, in the order a sample travels: [`rate_bridge`] queues the input and, when the input's
//! rate is not a whole multiple of the model's, resamples it down; [`mask_engine`] runs the
//! STFT, the features, the network, **applies the mask** (and the stereo Wiener filter) and the
//! inverse STFT; the rate bridge brings the stems back to the input's rate and splits the band
//! the model never saw.

pub mod file;
pub mod mask_engine;
pub mod rate_bridge;

pub use file::{
    Container, SeparateOptions, SeparationReport, StemSelection, output_stem_name, separate_file, separate_planar,
    unique_stem_names,
};
pub use mask_engine::MaskEngine;

use crate::dsp::MaskRule;
use crate::model::{Contract, Model, StreamState};
use crate::{Error, Result};
use rate_bridge::{RateBridge, STACK_CHANNELS};

/// Something that maps features to the model's output per bin (`[batch, frames, bins]` in and
/// out, what its [`Contract`] says): an ONNX [`Model`], or the candle network in training.
pub trait MaskNetwork {
    /// How to feed the network and read its output.
    fn contract(&self) -> &Contract;

    /// Names the network in messages (a model's path).
    fn name(&self) -> String;

    /// Runs a network without state on `frames` frames of `batch` sequences.
    fn run(&mut self, input: &[f32], batch: usize, frames: usize, output: &mut [f32]) -> Result<()>;

    /// Runs a streaming network on the next `frames` frames, advancing `state`.
    fn run_streaming(
        &mut self,
        input: &[f32],
        batch: usize,
        frames: usize,
        output: &mut [f32],
        state: &mut StreamState,
    ) -> Result<()> {
        let _ = (input, batch, frames, output, state);
        Err(Error::InvalidArgument(format!("{}: this network keeps no state between calls", self.name())))
    }
}

impl MaskNetwork for Model {
    fn contract(&self) -> &Contract {
        Model::contract(self)
    }

    fn name(&self) -> String {
        self.path().display().to_string()
    }

    fn run(&mut self, input: &[f32], batch: usize, frames: usize, output: &mut [f32]) -> Result<()> {
        Model::run(self, input, batch, frames, output)
    }

    fn run_streaming(
        &mut self,
        input: &[f32],
        batch: usize,
        frames: usize,
        output: &mut [f32],
        state: &mut StreamState,
    ) -> Result<()> {
        Model::run_streaming(self, input, batch, frames, output, state)
    }
}

/// A borrowed network runs as itself, so callers keep their model across separations.
impl<M: MaskNetwork + ?Sized> MaskNetwork for &mut M {
    fn contract(&self) -> &Contract {
        (**self).contract()
    }

    fn name(&self) -> String {
        (**self).name()
    }

    fn run(&mut self, input: &[f32], batch: usize, frames: usize, output: &mut [f32]) -> Result<()> {
        (**self).run(input, batch, frames, output)
    }

    fn run_streaming(
        &mut self,
        input: &[f32],
        batch: usize,
        frames: usize,
        output: &mut [f32],
        state: &mut StreamState,
    ) -> Result<()> {
        (**self).run_streaming(input, batch, frames, output, state)
    }
}

/// Model input values per call the default block size aims at (channels × frames × bins).
const MODEL_CALL_VALUES: usize = 1 << 20;

/// How a [`Separator`] is built.
#[derive(Debug, Clone)]
pub struct SeparatorConfig {
    /// Channels of the input (each is masked on its own; two are coupled by the Wiener filter).
    pub channels: usize,
    /// The input's sample rate.
    pub sample_rate: u32,
    /// Mask rule; `None` uses the model's.
    pub rule: Option<MaskRule>,
    /// STFT frames finalised per model call; `None` picks about a million input values per call,
    /// and no more than an input of `length_hint` frames needs. Any size gives the same stems.
    pub block_frames: Option<usize>,
    /// The input's length in frames, when known (sizes the default block).
    pub length_hint: Option<u64>,
    /// Largest piece of input handed on at once: `process` and `push` split longer input (live
    /// sizes its queues from it; a model call may still emit a whole block at once).
    pub max_chunk: usize,
}

impl SeparatorConfig {
    /// Offline defaults for `channels` channels at `sample_rate` Hz.
    pub fn new(channels: usize, sample_rate: u32) -> Self {
        SeparatorConfig { channels, sample_rate, rule: None, block_frames: None, length_hint: None, max_chunk: 1 << 16 }
    }

    /// The block size this configuration asks for with `contract` (see `block_frames`).
    fn block_for(&self, contract: &Contract) -> usize {
        if let Some(block) = self.block_frames {
            return block;
        }
        let by_size = (MODEL_CALL_VALUES / (self.channels.max(1) * contract.bins())).clamp(16, 1024);
        let Some(frames) = self.length_hint else { return by_size };
        let stft = contract.stft;
        let model_samples = frames as f64 * contract.sample_rate as f64 / self.sample_rate as f64;
        // The input's STFT frames, with a frame to spare for rounding and an estimated MP3 length.
        let by_length = (model_samples / stft.hop as f64).ceil() as usize + stft.win_length.div_ceil(stft.hop) + 1;
        by_length.clamp(16, by_size)
    }
}

/// Turns input samples into vocals and accompaniment of the same length, at the input's rate.
///
/// [`process`](Self::process) appends to the outputs every frame whose stems are complete;
/// [`finish`](Self::finish) ends the input and appends the rest, so that the stems have exactly
/// the input's length. Stem frame `k` always belongs to input frame `k`, and any chunking of the
/// input gives the same stems. After an error (a failed model call) it refuses further work.
pub struct Separator<N: MaskNetwork = Model> {
    network: N,
    bridge: RateBridge,
    max_chunk: usize,
    frames_in: u64,
    frames_out: u64,
    finished: bool,
    failed: bool,
}

impl<N: MaskNetwork> Separator<N> {
    /// A separator running `network` on input shaped as `config` says.
    pub fn new(network: N, config: &SeparatorConfig) -> Result<Self> {
        if config.max_chunk == 0 {
            return Err(Error::InvalidArgument("separator: max_chunk must be at least 1".into()));
        }
        let contract = network.contract().clone();
        let rule = config.rule.unwrap_or(contract.mask_rule);
        let engine =
            MaskEngine::new(&contract, rule, config.channels, config.block_for(&contract), config.sample_rate)?;
        let bridge = RateBridge::new(engine, config.sample_rate, config.max_chunk)?;
        Ok(Separator {
            network,
            bridge,
            max_chunk: config.max_chunk,
            frames_in: 0,
            frames_out: 0,
            finished: false,
            failed: false,
        })
    }

    /// Separates `input` (one slice per channel, equal lengths) and appends to `vocals` and
    /// `accompaniment` (one `Vec` per channel) every frame whose stems are now complete; returns
    /// how many. Appending never reallocates an output with room for this call's input plus
    /// [`latency`](Self::latency).
    pub fn process(
        &mut self,
        input: &[&[f32]],
        vocals: &mut [Vec<f32>],
        accompaniment: &mut [Vec<f32>],
    ) -> Result<usize> {
        self.check_outputs(vocals, accompaniment)?;
        let mut appended = 0;
        self.feed(input, &mut |s: &mut Self| appended += s.drain(vocals, accompaniment, usize::MAX))?;
        Ok(appended)
    }

    /// Ends the input and appends the stems of every frame not yet handed out, so that the
    /// outputs reach exactly the input's length; returns how many frames were appended.
    pub fn finish(&mut self, vocals: &mut [Vec<f32>], accompaniment: &mut [Vec<f32>]) -> Result<usize> {
        self.end_input()?;
        self.pull(vocals, accompaniment, usize::MAX)
    }

    /// Like [`process`](Self::process) without handing out stems (nothing is drained between
    /// the pieces of a long input): [`pull`](Self::pull) takes them, in pieces of the caller's
    /// choosing (the file writer keeps its buffers small and in cache, where one model call makes
    /// half a million frames ready at once).
    pub fn push(&mut self, input: &[&[f32]]) -> Result<()> {
        self.feed(input, &mut |_: &mut Self| {})
    }

    /// Like [`finish`](Self::finish) without handing out stems; [`pull`](Self::pull) takes the rest.
    pub fn end_input(&mut self) -> Result<()> {
        self.usable()?;
        if self.finished {
            return Ok(());
        }
        let ended = self.bridge.finish(&mut self.network);
        self.failed = ended.is_err();
        ended?;
        self.finished = true;
        // A resampler's rounding may leave a stream a frame short at the very end.
        self.bridge.pad_to((self.frames_in - self.frames_out) as usize);
        Ok(())
    }

    /// Appends up to `max_frames` frames of complete stems; returns how many (0: none ready yet,
    /// or, after [`end_input`](Self::end_input), all handed out).
    pub fn pull(
        &mut self,
        vocals: &mut [Vec<f32>],
        accompaniment: &mut [Vec<f32>],
        max_frames: usize,
    ) -> Result<usize> {
        self.check_outputs(vocals, accompaniment)?;
        self.usable()?;
        Ok(self.drain(vocals, accompaniment, max_frames))
    }

    /// Moves up to `max_frames` complete frames out (outputs already checked).
    fn drain(&mut self, vocals: &mut [Vec<f32>], accompaniment: &mut [Vec<f32>], max_frames: usize) -> usize {
        let n = self.bridge.ready().min(max_frames).min((self.frames_in - self.frames_out) as usize);
        self.bridge.drain_into(n, vocals, accompaniment);
        self.frames_out += n as u64;
        n
    }

    /// Hands `input` to the bridge in pieces of at most `max_chunk` frames, calling `after`
    /// after each (so `process` drains as it goes and no queue outgrows its reservation).
    fn feed(&mut self, input: &[&[f32]], after: &mut dyn FnMut(&mut Self)) -> Result<()> {
        let len = self.check_input(input)?;
        self.usable()?;
        if self.finished {
            return Err(Error::InvalidArgument("separator: input after the end of the input".into()));
        }
        let (mut stack, mut heap): ([&[f32]; STACK_CHANNELS], Vec<&[f32]>) = ([&[]; STACK_CHANNELS], Vec::new());
        let slices: &mut [&[f32]] = if input.len() <= STACK_CHANNELS {
            &mut stack[..input.len()]
        } else {
            heap.resize(input.len(), &[]);
            &mut heap
        };
        let mut pos = 0;
        while pos < len {
            let take = (len - pos).min(self.max_chunk);
            for (s, c) in slices.iter_mut().zip(input) {
                *s = &c[pos..pos + take];
            }
            let pushed = self.bridge.push(&mut self.network, slices);
            self.failed = pushed.is_err();
            pushed?;
            self.frames_in += take as u64;
            after(self);
            pos += take;
        }
        Ok(())
    }

    /// Refuses work after an earlier error left the queues out of step.
    fn usable(&self) -> Result<()> {
        if self.failed {
            return Err(Error::InvalidArgument("separator: unusable after an earlier error".into()));
        }
        Ok(())
    }

    fn check_outputs(&self, vocals: &[Vec<f32>], accompaniment: &[Vec<f32>]) -> Result<()> {
        let ch = self.channels();
        if vocals.len() != ch || accompaniment.len() != ch {
            return Err(Error::Mismatch {
                what: "separator output channels".into(),
                expected: ch.to_string(),
                got: format!("{} and {}", vocals.len(), accompaniment.len()),
            });
        }
        Ok(())
    }

    /// Checks the input's channel count and that its channels have one length, which it returns.
    fn check_input(&self, input: &[&[f32]]) -> Result<usize> {
        let ch = self.channels();
        if input.len() != ch {
            return Err(Error::Mismatch {
                what: "separator input channels".into(),
                expected: ch.to_string(),
                got: input.len().to_string(),
            });
        }
        let len = input.first().map_or(0, |c| c.len());
        if input.iter().any(|c| c.len() != len) {
            return Err(Error::InvalidArgument("separator: the input's channels differ in length".into()));
        }
        Ok(len)
    }

    /// Worst-case delay, in input frames, between an input frame and its stems when input
    /// arrives in multiples of `granularity` frames (see [`latency_for`]).
    pub fn latency(&self, granularity: usize) -> usize {
        bridge_latency(&self.bridge, granularity)
    }

    /// Sizes every internal queue for input that arrives in multiples of `granularity` frames,
    /// so that `process` never grows them (live), and returns how many frames may wait inside
    /// between two calls (for sizing the caller's outputs).
    pub fn reserve_for_stream(&mut self, granularity: usize) -> usize {
        let latency = self.latency(granularity);
        let engine = self.bridge.engine();
        let held_back = (engine.block_frames() + engine.lookahead_frames() + 1) * engine.hop();
        let (engine_chunk, up_chunk) = match self.bridge.resamplers() {
            Some(rs) => (rs.up_chunk(), rs.up_vocals.max_output_frames() + rs.up_vocals.output_block_frames()),
            None => (self.max_chunk + held_back, self.max_chunk + held_back),
        };
        // What can wait between two calls plus one chunk's worth of output.
        let frames = (latency + self.max_chunk + 2 * up_chunk + granularity).max(engine_chunk);
        self.bridge.reserve(frames);
        frames
    }

    /// Model calls so far.
    pub fn model_calls(&self) -> u64 {
        self.bridge.engine().model_calls()
    }

    /// Channels separated.
    pub fn channels(&self) -> usize {
        self.bridge.engine().channels()
    }

    /// The network.
    pub fn network(&self) -> &N {
        &self.network
    }
}

/// The latency of a [`Separator`] for a network with `contract` built with `config`, when input
/// arrives in multiples of `granularity` frames: STFT overlap, look-ahead, the model's block and
/// the resamplers' filters, in input frames. It depends on the geometry alone, not the weights.
pub fn latency_for(contract: &Contract, config: &SeparatorConfig, granularity: usize) -> Result<usize> {
    let rule = config.rule.unwrap_or(contract.mask_rule);
    let engine = MaskEngine::new(contract, rule, config.channels, config.block_for(contract), config.sample_rate)?;
    Ok(bridge_latency(&RateBridge::new(engine, config.sample_rate, config.max_chunk)?, granularity))
}

/// Computed from the block structure alone (no model run), as the largest `n − ready(n)` over
/// input counts `n` that are multiples of `granularity`, where `ready(n)` is how many frames have
/// their stems after `n` input frames.
fn bridge_latency(bridge: &RateBridge, granularity: usize) -> usize {
    let g = granularity.max(1);
    let engine = bridge.engine();
    let hop = engine.hop();
    let (block, la, skip) = (engine.block_frames(), engine.lookahead_frames(), engine.index_offset());
    let engine_count = |m: usize| {
        let frames = m / hop;
        let emitted = if frames >= la + block { (frames - la) / block * block } else { 0 };
        (emitted * hop).saturating_sub(skip)
    };
    let rs = bridge.resamplers();
    let count = |r: &crate::dsp::resample::Resampler, n: usize| r.output_frames_after(n as u64) as usize;
    // A frame is ready once its stems have come back up from the engine's rate.
    let ready = |n: usize| match rs {
        Some(rs) => n.min(count(&rs.up_vocals, engine_count(count(&rs.down, n)))),
        None => n.min(engine_count(n)),
    };
    // The count functions are periodic after start-up; cover many periods of every block.
    let rate = bridge.input_rate() as usize;
    let ratio = rate as f64 / engine.sample_rate() as f64;
    let period = rs
        .map_or(0, |rs| rs.down.input_block_frames() + (rs.up_vocals.input_block_frames() as f64 * ratio) as usize)
        + ((block * hop) as f64 * ratio) as usize
        + g;
    let horizon = (rate * 4).max(64 * period);
    (0..=horizon / g).map(|i| i * g).map(|n| n - ready(n)).max().unwrap_or(0)
}
