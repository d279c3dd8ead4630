//! The device-rate live engine: `process(&mut self, input, output)` with equal input and output
//! lengths and a fixed, exactly known delay between them.
//!
//! It runs the same computation as the offline pipeline (`crate::separate`): resample to the
//! model's rate, [`MaskEngine`], resample the stems back, and split the band above the model's
//! Nyquist frequency with the engine's high-band gain. The resamplers are the low-latency
//! polyphase ones (`Resampler::new_low_latency`, ~4 ms per direction instead of the FFT engine's
//! blocks); offline keeps the FFT ones, and the two differ only near the model's Nyquist
//! frequency, where the band split restores the input (measured −73 dB apart, `tests/live.rs`).
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
use crate::engine::{EngineOutput, MaskEngine};
use crate::model::{Contract, Model};
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
    passthrough: bool,
    down: Resampler,
    up_low: Resampler,
    up_vocals: Resampler,
    up_accomp: Resampler,
    up_gain: Resampler,
    /// Mask-engine samples still to drop so that stems align with the input.
    skip: usize,
    engine_out: EngineOutput,
    model_in: Vec<Vec<f32>>,
    /// Device-rate streams aligned on the input's time axis, waiting until all are available.
    input: Vec<Vec<f32>>,
    low: Vec<Vec<f32>>,
    vocals: Vec<Vec<f32>>,
    accomp: Vec<Vec<f32>>,
    gain: Vec<Vec<f32>>,
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
        let mask = MaskEngine::new(contract, rule, cfg.channels, cfg.block_frames)?;
        let (native, model_rate, ch) = (cfg.device_rate, contract.sample_rate, cfg.channels);
        // The low-latency polyphase engine: no block buffering, ~4 ms of filter delay per direction
        // (the FFT engine's blocks cost 50-70 ms in total at 44.1/48 kHz).
        let mk = |from, to, chunk| Resampler::new_low_latency(from, to, ch, chunk);
        let down = mk(native, model_rate, cfg.max_chunk)?;
        let model_chunk = down.max_output_frames().max(1);
        let up_low = mk(model_rate, native, model_chunk)?;
        let engine_chunk = model_chunk + (cfg.block_frames + contract.lookahead_frames + 1) * contract.stft.hop;
        let up_vocals = mk(model_rate, native, engine_chunk)?;
        let up_accomp = mk(model_rate, native, engine_chunk)?;
        let up_gain = mk(model_rate, native, engine_chunk)?;
        let skip = mask.index_offset();
        let latency = Self::compute_latency(contract, &cfg, &down, &up_vocals, skip);

        // Queue capacities: what can wait between two calls plus one chunk's worth of output.
        let up_chunk = up_vocals.max_output_frames() + up_vocals.output_block_frames();
        let queue_cap = latency + cfg.max_chunk + 2 * up_chunk + cfg.granularity;
        let queues = |cap: usize| (0..ch).map(|_| Vec::with_capacity(cap)).collect::<Vec<_>>();
        let mut engine_out = EngineOutput::new(ch);
        for s in engine_out.vocals.iter_mut().chain(&mut engine_out.accompaniment).chain(&mut engine_out.high_gain) {
            s.reserve(engine_chunk + skip);
        }
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
            passthrough: down.is_passthrough(),
            contract: contract.clone(),
            mask,
            cfg,
            down,
            up_low,
            up_vocals,
            up_accomp,
            up_gain,
            skip,
            engine_out,
            model_in: queues(model_chunk),
            input: queues(queue_cap),
            low: queues(queue_cap),
            vocals: queues(queue_cap),
            accomp: queues(queue_cap),
            gain: queues(queue_cap),
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
    fn compute_latency(contract: &Contract, cfg: &EngineConfig, down: &Resampler, up: &Resampler, skip: usize) -> usize {
        let hop = contract.stft.hop;
        let (block, la) = (cfg.block_frames, contract.lookahead_frames);
        let engine_count = |m: usize| {
            let frames = m / hop;
            let emitted = if frames >= la + block { (frames - la) / block * block } else { 0 };
            (emitted * hop).saturating_sub(skip)
        };
        let ready = |n: usize| {
            let m = resampler_count(down, n);
            let stems = resampler_count(up, engine_count(m));
            if down.is_passthrough() { n.min(stems) } else { n.min(stems).min(resampler_count(up, m)) }
        };
        // The count functions are periodic after start-up; cover many periods of every block.
        let ratio = cfg.device_rate as f64 / contract.sample_rate as f64;
        let period = down.input_block_frames()
            + (up.input_block_frames() as f64 * ratio) as usize
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
            return Err(Error::InvalidArgument("live engine: every input and output slice must have the same length".into()));
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
            for (dst, fifo) in [(&mut *vocals[c], &mut self.fifo_vocals[c]), (&mut *accompaniment[c], &mut self.fifo_accomp[c]), (&mut *mix[c], &mut self.fifo_mix[c])] {
                dst[..have].copy_from_slice(&fifo[..have]);
                dst[have..].fill(0.0);
                fifo.drain(..have);
            }
        }
        self.total_starved += starved;
        Ok(ProcessInfo { model_blocks: self.total_blocks - blocks_before, starved })
    }

    fn push_chunk(&mut self, model: &mut Model, chunk: &[&[f32]]) -> Result<()> {
        for (q, c) in self.input.iter_mut().zip(chunk) {
            q.extend_from_slice(c);
        }
        let produced_before = self.engine_out.len();
        if self.passthrough {
            self.mask.push(model, chunk, &mut self.engine_out)?;
        } else {
            self.model_in.iter_mut().for_each(Vec::clear);
            self.down.process(chunk, &mut self.model_in)?;
            let m = &self.model_in;
            let mut slices: [&[f32]; 8] = [&[]; 8];
            for (s, c) in slices.iter_mut().zip(m) {
                *s = c.as_slice();
            }
            let m = &slices[..self.cfg.channels];
            self.up_low.process(m, &mut self.low)?;
            self.mask.push(model, m, &mut self.engine_out)?;
        }
        let frames = (self.engine_out.len() - produced_before) / self.contract.stft.hop;
        self.total_blocks += frames.div_ceil(self.cfg.block_frames) as u64;
        self.collect_engine_output()?;
        self.emit_ready();
        Ok(())
    }

    fn collect_engine_output(&mut self) -> Result<()> {
        let drop = self.skip.min(self.engine_out.len());
        self.engine_out.drain_front(drop);
        self.skip -= drop;
        let out = &mut self.engine_out;
        if self.passthrough {
            for c in 0..self.cfg.channels {
                self.vocals[c].extend_from_slice(&out.vocals[c]);
                self.accomp[c].extend_from_slice(&out.accompaniment[c]);
            }
        } else if !out.is_empty() {
            let mut slices: [&[f32]; 8] = [&[]; 8];
            let ch = self.cfg.channels;
            for (s, c) in slices.iter_mut().zip(&out.vocals) {
                *s = c.as_slice();
            }
            self.up_vocals.process(&slices[..ch], &mut self.vocals)?;
            for (s, c) in slices.iter_mut().zip(&out.accompaniment) {
                *s = c.as_slice();
            }
            self.up_accomp.process(&slices[..ch], &mut self.accomp)?;
            for (s, c) in slices.iter_mut().zip(&out.high_gain) {
                *s = c.as_slice();
            }
            self.up_gain.process(&slices[..ch], &mut self.gain)?;
        }
        let len = out.len();
        out.drain_front(len);
        Ok(())
    }

    /// Moves every frame for which all aligned streams exist into the output FIFO, combining
    /// them exactly as the offline pipeline does.
    fn emit_ready(&mut self) {
        let mut ready = self.vocals[0].len().min(self.accomp[0].len()).min(self.input[0].len());
        if !self.passthrough {
            ready = ready.min(self.low[0].len()).min(self.gain[0].len());
        }
        if ready == 0 {
            return;
        }
        for c in 0..self.cfg.channels {
            if self.passthrough {
                self.fifo_vocals[c].extend_from_slice(&self.vocals[c][..ready]);
                self.fifo_accomp[c].extend_from_slice(&self.accomp[c][..ready]);
            } else {
                for i in 0..ready {
                    let high = self.input[c][i] - self.low[c][i];
                    let g = self.gain[c][i].clamp(0.0, 1.0);
                    self.fifo_vocals[c].push(self.vocals[c][i] + g * high);
                    self.fifo_accomp[c].push(self.accomp[c][i] + (1.0 - g) * high);
                }
                self.low[c].drain(..ready);
                self.gain[c].drain(..ready);
            }
            self.fifo_mix[c].extend_from_slice(&self.input[c][..ready]);
            self.input[c].drain(..ready);
            self.vocals[c].drain(..ready);
            self.accomp[c].drain(..ready);
        }
    }
}
