//! The device-rate live engine: `process(&mut self, input, output)` with equal input and output
//! lengths and a fixed, exactly known delay between them.
//!
//! It runs the same computation as the offline pipeline (`crate::separate`, through
//! [`NativePipeline`]): the [`MaskEngine`] at the device's rate when it is a whole multiple of the
//! model's (44.1 kHz), else resampling to the model's rate and back and splitting the band above
//! the model's Nyquist frequency with the engine's high-band gain. The resamplers are the same
//! polyphase ones as offline (`Resampler::new`, about 1.3 ms of delay per direction, no block
//! buffering), so live and offline stems differ only by rounding.
//! The mask engine produces output in bursts (whole hops, whole model blocks), so the engine keeps a FIFO
//! primed with `latency_samples()` frames of silence: output frame `k` is always the stem of
//! input frame `k − latency_samples()`, whatever the call sizes. The latency is computed from
//! the block structure alone (no model run) as the worst case of `n − ready(n)` over every
//! input count `n` the caller can produce (multiples of `granularity`).
//!
//! Everything is allocated in [`LiveEngine::new`]; inputs longer than `max_chunk` are split
//! internally so no queue grows past its initial capacity. The model call itself (ONNX Runtime or
//! tract) may allocate, which is why this runs on the inference thread and never in an audio
//! callback.

use crate::audio::resample::Resampler;
use crate::dsp::MaskRule;
use crate::engine::MaskEngine;
use crate::model::{Contract, Model};
use crate::native::{NativePipeline, Resamplers};
use crate::{Error, Result};

/// Geometry that fixes the live engine's latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Channels separated (each on its own, as offline).
    pub channels: usize,
    /// The device's sample rate; the engine resamples to the model's rate and back.
    pub device_rate: u32,
    /// STFT frames per model call. 1 gives the lowest latency; larger blocks cost less per frame.
    pub block_frames: usize,
    /// Every `process` call is a multiple of this many frames (the device period when the host
    /// guarantees one, else 1). Larger values lower the engine's own latency; the caller's
    /// buffering makes up the difference.
    pub granularity: usize,
    /// Largest number of frames handed to the inner pipeline at once.
    pub max_chunk: usize,
}

impl EngineConfig {
    /// A configuration with one frame per model call, any call size and chunks of 1024 frames.
    pub fn new(channels: usize, device_rate: u32) -> Self {
        EngineConfig { channels, device_rate, block_frames: 1, granularity: 1, max_chunk: 1024 }
    }
}

/// What one `process` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Model calls made.
    pub model_blocks: u64,
    /// Output frames that were not ready and came out as silence (never happens when the
    /// call sizes respect `granularity`).
    pub starved: u64,
}

/// Streaming separation at the device's rate with a constant delay; see the module docs.
pub struct LiveEngine {
    mask: MaskEngine,
    contract: Contract,
    cfg: EngineConfig,
    /// Resampling, aligned queues and the band split, shared with the offline pipeline.
    native: NativePipeline,
    /// Finished frames, delayed by `latency` (primed with silence).
    fifo_vocals: Vec<Vec<f32>>,
    fifo_accomp: Vec<Vec<f32>>,
    fifo_mix: Vec<Vec<f32>>,
    latency: usize,
    total_blocks: u64,
    total_starved: u64,
}

/// Frames a fixed-ratio resampler has produced after `n` input frames.
fn resampler_count(r: &Resampler, n: usize) -> usize {
    r.output_frames_after(n as u64) as usize
}

impl LiveEngine {
    /// Builds the engine for `contract` with mask `rule`.
    pub fn new(contract: &Contract, rule: MaskRule, cfg: EngineConfig) -> Result<Self> {
        if cfg.granularity == 0 || cfg.max_chunk == 0 {
            return Err(Error::InvalidArgument(format!(
                "live engine needs granularity and max_chunk of at least 1 (got {} and {})",
                cfg.granularity, cfg.max_chunk
            )));
        }
        let mask = MaskEngine::new(contract, rule, cfg.channels, cfg.block_frames, cfg.device_rate)?;
        let ch = cfg.channels;
        // The engine's output per call: one chunk's worth plus what a block can hold back.
        let held_back = (cfg.block_frames + contract.lookahead_frames + 1) * mask.hop();
        let rs = Resamplers::for_engine(&mask, cfg.device_rate, cfg.max_chunk, held_back)?;
        let skip = mask.index_offset();
        let latency = Self::compute_latency(contract, &cfg, &mask, rs.as_ref(), skip);

        // Queue capacities: what can wait between two calls plus one chunk's worth of output.
        let (engine_chunk, up_chunk) = match &rs {
            Some(rs) => (rs.up_chunk(), rs.up_vocals.max_output_frames() + rs.up_vocals.output_block_frames()),
            None => (cfg.max_chunk + held_back, cfg.max_chunk + held_back),
        };
        let queue_cap = (latency + cfg.max_chunk + 2 * up_chunk + cfg.granularity).max(engine_chunk);
        let fifo = |cap: usize| {
            (0..ch)
                .map(|_| {
                    let mut v = Vec::with_capacity(cap);
                    v.resize(latency, 0.0);
                    v
                })
                .collect::<Vec<_>>()
        };
        let fifo_cap = latency + queue_cap + cfg.max_chunk;
        Ok(LiveEngine {
            native: NativePipeline::new(rs, &mask, skip, queue_cap),
            contract: contract.clone(),
            mask,
            cfg,
            fifo_vocals: fifo(fifo_cap),
            fifo_accomp: fifo(fifo_cap),
            fifo_mix: fifo(fifo_cap),
            latency,
            total_blocks: 0,
            total_starved: 0,
        })
    }

    /// Worst case of `n − ready(n)` over input counts `n` that are multiples of the granularity,
    /// where `ready(n)` is how many aligned output frames exist after `n` input frames.
    fn compute_latency(
        contract: &Contract,
        cfg: &EngineConfig,
        mask: &MaskEngine,
        rs: Option<&Resamplers>,
        skip: usize,
    ) -> usize {
        let hop = mask.hop();
        let (block, la) = (cfg.block_frames, contract.lookahead_frames);
        let engine_count = |m: usize| {
            let frames = m / hop;
            let emitted = if frames >= la + block { (frames - la) / block * block } else { 0 };
            (emitted * hop).saturating_sub(skip)
        };
        // A frame is ready once its stems have come back up from the engine's rate.
        let ready = |n: usize| match rs {
            Some(rs) => n.min(resampler_count(&rs.up_vocals, engine_count(resampler_count(&rs.down, n)))),
            None => n.min(engine_count(n)),
        };
        // The count functions are periodic after start-up; cover many periods of every block.
        let ratio = cfg.device_rate as f64 / mask.sample_rate() as f64;
        let period = rs
            .map_or(0, |rs| rs.down.input_block_frames() + (rs.up_vocals.input_block_frames() as f64 * ratio) as usize)
            + ((block * hop) as f64 * ratio) as usize
            + cfg.granularity;
        let horizon = (cfg.device_rate as usize * 4).max(64 * period);
        let g = cfg.granularity;
        (0..=horizon / g).map(|i| i * g).map(|n| n - ready(n)).max().unwrap_or(0)
    }

    /// Channels separated.
    pub fn channels(&self) -> usize {
        self.cfg.channels
    }

    /// The configuration the engine was built with.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The model contract.
    pub fn contract(&self) -> &Contract {
        &self.contract
    }

    /// Exact delay, in device frames, between an input frame and its stems in the output:
    /// STFT overlap, look-ahead, model block and both resamplers' buffering.
    pub fn latency_samples(&self) -> usize {
        self.latency
    }

    /// `latency_samples()` in milliseconds.
    pub fn latency_ms(&self) -> f64 {
        self.latency as f64 * 1000.0 / self.cfg.device_rate as f64
    }

    /// Device frames covered by one model call (the block's real-time budget).
    pub fn block_budget_seconds(&self) -> f64 {
        (self.cfg.block_frames * self.contract.stft.hop) as f64 / self.contract.sample_rate as f64
    }

    /// Model calls so far.
    pub fn model_blocks(&self) -> u64 {
        self.total_blocks
    }

    /// Output frames that came out as silence because they were not ready (should stay 0).
    pub fn starved_frames(&self) -> u64 {
        self.total_starved
    }

    /// Separates `input` (one slice per channel) and writes as many frames of vocals,
    /// accompaniment and the equally delayed input (`mix`), each one slice per channel of the
    /// same length as the input.
    pub fn process(
        &mut self,
        model: &mut Model,
        input: &[&[f32]],
        vocals: &mut [&mut [f32]],
        accompaniment: &mut [&mut [f32]],
        mix: &mut [&mut [f32]],
    ) -> Result<ProcessInfo> {
        let ch = self.cfg.channels;
        if input.len() != ch || vocals.len() != ch || accompaniment.len() != ch || mix.len() != ch {
            return Err(Error::Mismatch {
                what: "live engine channels".into(),
                expected: ch.to_string(),
                got: format!("{} in, {}/{}/{} out", input.len(), vocals.len(), accompaniment.len(), mix.len()),
            });
        }
        let n = input[0].len();
        let all_out = vocals.iter().chain(accompaniment.iter()).chain(mix.iter());
        if input.iter().any(|c| c.len() != n) || all_out.into_iter().any(|c| c.len() != n) {
            return Err(Error::InvalidArgument(
                "live engine: every input and output slice must have the same length".into(),
            ));
        }
        let blocks_before = self.total_blocks;
        let mut pos = 0;
        while pos < n {
            let take = (n - pos).min(self.cfg.max_chunk);
            let mut slices: [&[f32]; 8] = [&[]; 8];
            if ch > slices.len() {
                return Err(Error::InvalidArgument(format!("live engine supports at most 8 channels, got {ch}")));
            }
            for (s, c) in slices.iter_mut().zip(input) {
                *s = &c[pos..pos + take];
            }
            self.push_chunk(model, &slices[..ch])?;
            pos += take;
        }
        let have = self.fifo_vocals[0].len().min(n);
        let starved = (n - have) as u64;
        for c in 0..ch {
            for (dst, fifo) in [
                (&mut *vocals[c], &mut self.fifo_vocals[c]),
                (&mut *accompaniment[c], &mut self.fifo_accomp[c]),
                (&mut *mix[c], &mut self.fifo_mix[c]),
            ] {
                dst[..have].copy_from_slice(&fifo[..have]);
                dst[have..].fill(0.0);
                fifo.drain(..have);
            }
        }
        self.total_starved += starved;
        Ok(ProcessInfo { model_blocks: self.total_blocks - blocks_before, starved })
    }

    fn push_chunk(&mut self, model: &mut Model, chunk: &[&[f32]]) -> Result<()> {
        let produced = self.native.push(model, &mut self.mask, chunk)?;
        let frames = produced / self.mask.hop();
        self.total_blocks += frames.div_ceil(self.cfg.block_frames) as u64;
        let ready = self.native.ready();
        self.native.drain_into(ready, &mut self.fifo_vocals, &mut self.fifo_accomp, Some(&mut self.fifo_mix));
        Ok(())
    }
}
