//! The device-rate live separator: `process(&mut self, input, outputs)` with equal input and
//! output lengths and a fixed, exactly known delay between them.
//!
//! It is a [`Separator`] (the same computation as `voxmask separate`, so live and offline stems
//! differ only by rounding) with a FIFO in front of its output: the separator produces stems in
//! bursts (whole hops, whole model blocks, resampler filters), so the FIFO is primed with
//! `latency_samples()` frames of silence and output frame `k` is always the stem of input frame
//! `k − latency_samples()`, whatever the call sizes. The latency is the separator's worst case
//! for input in multiples of `granularity` frames ([`Separator::latency`]).
//!
//! Everything is allocated in [`LiveSeparator::new`]; the separator splits inputs longer than
//! `max_chunk`, so no queue grows past its initial capacity. The model call itself (ONNX Runtime
//! or tract) may allocate, which is why this runs on the inference thread and never in an audio
//! callback.

use crate::dsp::MaskRule;
use crate::model::{Contract, Model};
use crate::separation::{Separator, SeparatorConfig};
use crate::{Error, Result};

/// Geometry that fixes the live separator's latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// Channels separated (each on its own, as offline).
    pub channels: usize,
    /// The device's sample rate (the separator resamples to the model's rate and back where it
    /// is not a whole multiple of it).
    pub device_rate: u32,
    /// STFT frames per model call. 1 gives the lowest latency; larger blocks cost less per frame.
    pub block_frames: usize,
    /// Every `process` call is a multiple of this many frames (the device period when the host
    /// guarantees one, else 1). Larger values lower the engine's own latency; the caller's
    /// buffering makes up the difference.
    pub granularity: usize,
    /// Largest number of frames handed to the inner pipeline at once.
    pub max_chunk: usize,
    /// Largest `process` call (sizes the delay FIFOs so they never grow).
    pub max_call: usize,
}

impl LiveConfig {
    /// A configuration with one frame per model call, any call size up to 4096 frames and chunks
    /// of 1024 frames.
    pub fn new(channels: usize, device_rate: u32) -> Self {
        LiveConfig { channels, device_rate, block_frames: 1, granularity: 1, max_chunk: 1024, max_call: 4096 }
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
pub struct LiveSeparator {
    separator: Separator<Model>,
    cfg: LiveConfig,
    /// Finished frames and the input they belong to, delayed by `latency` (primed with silence).
    fifo_vocals: Vec<Vec<f32>>,
    fifo_accomp: Vec<Vec<f32>>,
    fifo_mix: Vec<Vec<f32>>,
    latency: usize,
    total_starved: u64,
}

impl LiveSeparator {
    /// Builds the live separator running `model` with mask `rule`.
    pub fn new(model: Model, rule: MaskRule, cfg: LiveConfig) -> Result<Self> {
        if cfg.granularity == 0 || cfg.max_chunk == 0 {
            return Err(Error::InvalidArgument(format!(
                "live separator needs granularity and max_chunk of at least 1 (got {} and {})",
                cfg.granularity, cfg.max_chunk
            )));
        }
        let config = SeparatorConfig {
            rule: Some(rule),
            block_frames: Some(cfg.block_frames),
            max_chunk: cfg.max_chunk,
            ..SeparatorConfig::new(cfg.channels, cfg.device_rate)
        };
        let mut separator = Separator::new(model, &config)?;
        let latency = separator.latency(cfg.granularity);
        let waiting = separator.reserve_for_stream(cfg.granularity);
        // The mix FIFO holds the latency plus one call's input; the stem FIFOs at most what waits
        // inside plus one call's output.
        let fifo_cap = latency + waiting + cfg.max_chunk.max(cfg.max_call);
        let fifo = || {
            (0..cfg.channels)
                .map(|_| {
                    let mut v = Vec::with_capacity(fifo_cap);
                    v.resize(latency, 0.0);
                    v
                })
                .collect::<Vec<_>>()
        };
        Ok(LiveSeparator {
            separator,
            cfg,
            fifo_vocals: fifo(),
            fifo_accomp: fifo(),
            fifo_mix: fifo(),
            latency,
            total_starved: 0,
        })
    }

    /// Channels separated.
    pub fn channels(&self) -> usize {
        self.cfg.channels
    }

    /// The configuration the separator was built with.
    pub fn config(&self) -> &LiveConfig {
        &self.cfg
    }

    /// The model contract.
    pub fn contract(&self) -> &Contract {
        self.separator.network().contract()
    }

    /// The model.
    pub fn model(&self) -> &Model {
        self.separator.network()
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
        let contract = self.contract();
        (self.cfg.block_frames * contract.stft.hop) as f64 / contract.sample_rate as f64
    }

    /// Model calls so far.
    pub fn model_blocks(&self) -> u64 {
        self.separator.model_calls()
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
        input: &[&[f32]],
        vocals: &mut [&mut [f32]],
        accompaniment: &mut [&mut [f32]],
        mix: &mut [&mut [f32]],
    ) -> Result<ProcessInfo> {
        let ch = self.cfg.channels;
        if input.len() != ch || vocals.len() != ch || accompaniment.len() != ch || mix.len() != ch {
            return Err(Error::Mismatch {
                what: "live separator channels".into(),
                expected: ch.to_string(),
                got: format!("{} in, {}/{}/{} out", input.len(), vocals.len(), accompaniment.len(), mix.len()),
            });
        }
        let n = input[0].len();
        let all_out = vocals.iter().chain(accompaniment.iter()).chain(mix.iter());
        if input.iter().any(|c| c.len() != n) || all_out.into_iter().any(|c| c.len() != n) {
            return Err(Error::InvalidArgument(
                "live separator: every input and output slice must have the same length".into(),
            ));
        }
        let calls_before = self.separator.model_calls();
        for (fifo, c) in self.fifo_mix.iter_mut().zip(input) {
            fifo.extend_from_slice(c);
        }
        self.separator.process(input, &mut self.fifo_vocals, &mut self.fifo_accomp)?;
        // The mix FIFO holds every input frame, the stem FIFOs those with stems; both start at
        // the same frame, so taking as many from each keeps them aligned.
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
        Ok(ProcessInfo { model_blocks: self.separator.model_calls() - calls_before, starved })
    }
}
