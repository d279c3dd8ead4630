//! The bridge between the input's sample rate and the [`MaskEngine`]'s: queues that keep every
//! stream aligned on the input's time axis and, when the engine runs at the model's rate,
//! resampling to it and back and the full-band split. [`Separator`](super::Separator) owns one;
//! offline files, `voxmask eval`, live and the trainer's validation all run through it.
//!
//! When the input's rate is a whole multiple of the model's (44.1 kHz for a 22.05 kHz model) the
//! engine runs at the input's rate and covers the whole band itself (`super::mask_engine`): no
//! resampling, and the stems are the engine's output. Otherwise:
//!
//! Full band: with `x` the input, `d = down(x)` what the model sees and `up(d)` what survives the
//! trip through the model's rate, the residual `h = x − up(d)` is the band the model never saw.
//! It is split with the engine's high-band gain `g` (the vocal mask of the model's top bins, a
//! smooth per-sample curve): vocals = up(V) + g·h, accompaniment = up(A) + (1 − g)·h. Because `g`
//! changes slowly (over a hop, hundreds of samples) it commutes with the band-limited `up` to
//! within rounding, so vocals are formed as `up(V − g·d) + g·x`: one resampler back up instead of
//! two (`up(V)` and `up(d)`), and no queue for `up(d)`. With a constant `g` the two forms are the
//! same signal. At the model's own rate `down` is still a band-limiting filter (the model must
//! see the band edge it was trained with) and `h` is the band above that edge. With
//! complementary masks (soft, binary) the accompaniment is the input minus the vocals, which is
//! the same signal and saves its inverse STFT and resampler; otherwise it is `up(A − (1 − g)·d) +
//! (1 − g)·x`. With a soft mask the stems always sum to the input.

use super::MaskNetwork;
use super::mask_engine::{EngineOutput, MaskEngine};
use crate::Result;
use crate::dsp::resample::Resampler;

/// Largest channel count handled without a per-call allocation of slice lists (here and in
/// `Separator::process`).
pub(super) const STACK_CHANNELS: usize = 8;

/// Calls `f` with `vecs` as a list of slices, without allocating for up to eight channels.
fn with_slices<R>(vecs: &[Vec<f32>], f: impl FnOnce(&[&[f32]]) -> R) -> R {
    if vecs.len() <= STACK_CHANNELS {
        let mut slices: [&[f32]; STACK_CHANNELS] = [&[]; STACK_CHANNELS];
        for (s, v) in slices.iter_mut().zip(vecs) {
            *s = v.as_slice();
        }
        f(&slices[..vecs.len()])
    } else {
        let slices: Vec<&[f32]> = vecs.iter().map(Vec::as_slice).collect();
        f(&slices)
    }
}

/// The resamplers the pipeline needs: one down to the model's rate, two back up (the second only
/// for masks that are not complementary). (The high-band gain is a smooth curve and goes up by
/// linear interpolation: [`GainUpsampler`].)
pub struct Resamplers {
    pub down: Resampler,
    pub up_vocals: Resampler,
    pub up_accomp: Resampler,
}

impl Resamplers {
    /// What a bridge around `engine` needs for input at `native` Hz: `None` when the engine
    /// runs at that rate itself, else [`new`](Self::new).
    fn for_engine(engine: &MaskEngine, native: u32, down_chunk: usize, up_extra: usize) -> Result<Option<Self>> {
        if engine.sample_rate() == native {
            return Ok(None);
        }
        Self::new(native, engine.sample_rate(), engine.channels(), down_chunk, up_extra).map(Some)
    }

    /// The band-limiting resampler down to the model's rate (a filter even at equal rates, so the
    /// model always sees the band edge it was trained with) for chunks of up to `down_chunk`
    /// frames, and two back up for chunks of up to [`up_chunk`](Self::up_chunk) frames: what
    /// one down chunk yields plus `up_extra`.
    pub fn new(native: u32, model_rate: u32, channels: usize, down_chunk: usize, up_extra: usize) -> Result<Self> {
        let down = Resampler::band_limited(native, model_rate, channels, down_chunk)?;
        let up_chunk = down.max_output_frames().max(1) + up_extra;
        Ok(Resamplers {
            down,
            up_vocals: Resampler::new(model_rate, native, channels, up_chunk)?,
            up_accomp: Resampler::new(model_rate, native, channels, up_chunk)?,
        })
    }

    /// Largest chunk the up resamplers were sized for.
    pub fn up_chunk(&self) -> usize {
        self.up_vocals.max_chunk_frames()
    }
}

/// Brings the engine's high-band gain from the model's rate to the native rate by linear
/// interpolation. The gain is an overlap-add of `w²`-weighted per-frame values (it changes over a
/// hop, hundreds of samples), so linear interpolation is within about 1e-5 of band-limited
/// interpolation at a small fraction of an FFT resampler's cost. Native sample `j` is the gain at
/// model time `j · model / native`, the same alignment as the delay-compensated resamplers, and
/// [`finish`](Self::finish) makes the stream exactly `round(n · native / model)` samples long.
struct GainUpsampler {
    /// Model samples per native sample as the reduced fraction `p / q`.
    p: u64,
    q: u64,
    /// Next native sample to produce.
    next: u64,
    /// Model-rate samples received so far.
    received: u64,
    /// Model-rate samples still needed, per channel; `buf[c][0]` is model sample `base`.
    buf: Vec<Vec<f32>>,
    base: u64,
}

impl GainUpsampler {
    fn new(native: u32, model_rate: u32, channels: usize, capacity: usize) -> Self {
        let (mut a, mut b) = (native as u64, model_rate as u64);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        GainUpsampler {
            p: model_rate as u64 / a,
            q: native as u64 / a,
            next: 0,
            received: 0,
            buf: (0..channels).map(|_| Vec::with_capacity(capacity)).collect(),
            base: 0,
        }
    }

    /// Appends model-rate gain and emits every native sample it makes computable.
    fn process(&mut self, gain: &[Vec<f32>], out: &mut [Vec<f32>]) {
        for (b, g) in self.buf.iter_mut().zip(gain) {
            b.extend_from_slice(g);
        }
        self.received += gain.first().map_or(0, |g| g.len()) as u64;
        self.emit(u64::MAX, out);
    }

    /// Emits native samples up to `limit` (exclusive) while their model-rate neighbours exist;
    /// past the last model sample the last value is held (only at the end of a stream).
    fn emit(&mut self, limit: u64, out: &mut [Vec<f32>]) {
        let (p, q) = (self.p, self.q);
        let len = self.buf.first().map_or(0, Vec::len) as u64;
        let end_model = self.base + len;
        let holding = limit != u64::MAX;
        // Last native sample whose right neighbour (or exact position) is available.
        let mut stop = if len == 0 { self.next } else { (end_model - 1) * q / p + 1 };
        if holding {
            stop = limit;
        }
        let stop = stop.max(self.next);
        let inv_q = 1.0 / q as f32;
        for (b, o) in self.buf.iter().zip(out.iter_mut()) {
            o.reserve((stop - self.next) as usize);
            let last = b.last().copied().unwrap_or(0.0);
            // Position of native sample j in model samples, kept as idx + rem / q.
            let t = self.next * p;
            let mut idx = (t / q - self.base) as usize;
            let mut rem = t % q;
            for _ in self.next..stop {
                let v = if rem == 0 {
                    b.get(idx).copied().unwrap_or(last)
                } else if idx + 1 < b.len() {
                    let (x0, x1) = (b[idx], b[idx + 1]);
                    x0 + (x1 - x0) * (rem as f32 * inv_q)
                } else {
                    b.get(idx).copied().unwrap_or(last)
                };
                o.push(v);
                rem += p;
                while rem >= q {
                    rem -= q;
                    idx += 1;
                }
            }
        }
        self.next = stop;
        // Drop model samples no future native sample needs.
        let keep_from = ((self.next * p) / q).min(end_model.saturating_sub(1)).max(self.base);
        let drop = (keep_from - self.base) as usize;
        if drop > 0 {
            for b in &mut self.buf {
                b.drain(..drop);
            }
            self.base = keep_from;
        }
    }

    /// Ends the stream: the native stream reaches `round(received · q / p)` samples.
    fn finish(&mut self, out: &mut [Vec<f32>]) {
        let target = (2 * self.received * self.q + self.p) / (2 * self.p);
        self.emit(target, out);
        self.next = 0;
        self.received = 0;
        self.base = 0;
        self.buf.iter_mut().for_each(Vec::clear);
    }
}

/// What a bridge around an engine at the model's rate adds: the resamplers and the high-band
/// gain brought up to the native rate.
struct Resampled {
    rs: Resamplers,
    up_gain: GainUpsampler,
}

/// Input-rate streams around a [`MaskEngine`], which it owns.
pub struct RateBridge {
    engine: MaskEngine,
    input_rate: u32,
    channels: usize,
    /// The engine emits no accompaniment: it is the input minus the vocals.
    residual: bool,
    /// `None` when the engine runs at the input's rate (no resampling, no band split).
    resampled: Option<Resampled>,
    /// Engine samples still to drop so that stems align with the input.
    skip: usize,
    engine_out: EngineOutput,
    model_in: Vec<Vec<f32>>,
    /// The model's input `d` not yet matched with engine output (engine output sample `j`, after
    /// `skip`, belongs to `d[j]`).
    model_queue: Vec<Vec<f32>>,
    /// Engine output with the model's input taken out, `V − g·d` (and `A − (1 − g)·d`), before
    /// it goes up.
    scratch_v: Vec<Vec<f32>>,
    scratch_a: Vec<Vec<f32>>,
    input: Vec<Vec<f32>>,
    vocals: Vec<Vec<f32>>,
    accomp: Vec<Vec<f32>>,
    gain: Vec<Vec<f32>>,
}

impl RateBridge {
    /// The bridge for input at `input_rate` Hz in chunks of at most `max_chunk` frames around
    /// `engine` (built for that rate), with resamplers when the engine runs at the model's rate.
    pub fn new(engine: MaskEngine, input_rate: u32, max_chunk: usize) -> Result<Self> {
        // The engine's output per chunk: one chunk's worth plus what a block can hold back.
        let held_back = (engine.block_frames() + engine.lookahead_frames() + 1) * engine.hop();
        let rs = Resamplers::for_engine(&engine, input_rate, max_chunk, held_back)?;
        let channels = engine.channels();
        let skip = engine.index_offset();
        let queues = |cap: usize| (0..channels).map(|_| Vec::with_capacity(cap)).collect::<Vec<_>>();
        // The model-rate queue holds what the engine has not answered yet: its latency, the
        // samples it drops at the start, and one down chunk and one engine call's output.
        let (down_out, up_chunk) = rs.as_ref().map_or((0, 0), |rs| (rs.down.max_output_frames().max(1), rs.up_chunk()));
        let model_queue_cap = if rs.is_some() { down_out + engine.latency_samples() + skip + up_chunk } else { 0 };
        Ok(RateBridge {
            channels,
            residual: engine.accompaniment_is_residual(),
            model_in: queues(down_out),
            model_queue: queues(model_queue_cap),
            scratch_v: queues(up_chunk),
            scratch_a: queues(up_chunk),
            resampled: rs.map(|rs| Resampled {
                up_gain: GainUpsampler::new(rs.down.from_rate(), rs.down.to_rate(), channels, 16),
                rs,
            }),
            skip,
            engine_out: EngineOutput::new(channels),
            input: queues(0),
            vocals: queues(0),
            accomp: queues(0),
            gain: queues(0),
            engine,
            input_rate,
        })
    }

    /// Gives every queue (the input-rate ones, and the engine's output) room for `frames` more
    /// frames, so that callers that never let more than that wait (live) never make them grow.
    pub fn reserve(&mut self, frames: usize) {
        let skip = self.skip;
        let out = &mut self.engine_out;
        for q in out.vocals.iter_mut().chain(&mut out.accompaniment).chain(&mut out.high_gain) {
            q.reserve(frames + skip);
        }
        for q in self.input.iter_mut().chain(&mut self.vocals).chain(&mut self.accomp).chain(&mut self.gain) {
            q.reserve(frames);
        }
        if let Some(r) = &mut self.resampled {
            r.up_gain.buf.iter_mut().for_each(|b| b.reserve(frames.max(16)));
        }
    }

    /// The input's sample rate.
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }

    /// The mask engine inside.
    pub fn engine(&self) -> &MaskEngine {
        &self.engine
    }

    /// The resamplers, when the engine runs at the model's rate.
    pub fn resamplers(&self) -> Option<&Resamplers> {
        self.resampled.as_ref().map(|r| &r.rs)
    }

    /// Feeds input frames (one slice per channel); returns the engine-rate samples produced.
    pub fn push(&mut self, network: &mut dyn MaskNetwork, chunk: &[&[f32]]) -> Result<usize> {
        let before = self.engine_out.len();
        for (q, c) in self.input.iter_mut().zip(chunk) {
            q.extend_from_slice(c);
        }
        match &mut self.resampled {
            Some(Resampled { rs, .. }) => {
                self.model_in.iter_mut().for_each(Vec::clear);
                rs.down.process(chunk, &mut self.model_in)?;
                self.feed_engine(network)?;
            }
            None => self.engine.push(network, chunk, &mut self.engine_out)?,
        }
        let produced = self.engine_out.len() - before;
        self.collect_engine_output()?;
        Ok(produced)
    }

    /// Ends the input: flushes the resamplers and the engine so every input frame has its stems.
    pub fn finish(&mut self, network: &mut dyn MaskNetwork) -> Result<()> {
        if let Some(Resampled { rs, .. }) = &mut self.resampled {
            self.model_in.iter_mut().for_each(Vec::clear);
            rs.down.finish(&mut self.model_in)?;
            self.feed_engine(network)?;
        }
        self.engine.finish(network, &mut self.engine_out)?;
        self.collect_engine_output()?;
        if let Some(Resampled { rs, up_gain }) = &mut self.resampled {
            rs.up_vocals.finish(&mut self.vocals)?;
            if !self.residual {
                rs.up_accomp.finish(&mut self.accomp)?;
            }
            up_gain.finish(&mut self.gain);
        }
        Ok(())
    }

    /// Hands the model-rate samples in `model_in` to the engine, keeping them for the band split.
    fn feed_engine(&mut self, network: &mut dyn MaskNetwork) -> Result<()> {
        for (q, m) in self.model_queue.iter_mut().zip(&self.model_in) {
            q.extend_from_slice(m);
        }
        let (engine, out) = (&mut self.engine, &mut self.engine_out);
        with_slices(&self.model_in, |m| engine.push(network, m, out))
    }

    fn collect_engine_output(&mut self) -> Result<()> {
        let drop = self.skip.min(self.engine_out.len());
        self.engine_out.drain_front(drop);
        self.skip -= drop;
        let n = self.engine_out.len();
        let Some(Resampled { rs, up_gain }) = &mut self.resampled else {
            // At the input's rate the engine's output is the stems: handed over by swapping
            // buffers when the queues are empty (the usual case), else appended.
            let out = &mut self.engine_out;
            for c in 0..self.channels {
                for (queue, stream) in
                    [(&mut self.vocals[c], &mut out.vocals[c]), (&mut self.accomp[c], &mut out.accompaniment[c])]
                {
                    if queue.is_empty() {
                        std::mem::swap(queue, stream);
                    } else {
                        queue.extend_from_slice(stream);
                        stream.clear();
                    }
                }
            }
            return Ok(());
        };
        if n > 0 {
            // Take the model's input out of the stems at the model's rate (`V − g·d`); past the
            // end of the input (the engine's flushed tail) `d` is silence.
            let out = &self.engine_out;
            for c in 0..self.channels {
                let queue = &mut self.model_queue[c];
                let matched = n.min(queue.len());
                let d = |i: usize| if i < matched { queue[i] } else { 0.0 };
                let (sv, sa) = (&mut self.scratch_v[c], &mut self.scratch_a[c]);
                sv.clear();
                sa.clear();
                for i in 0..n {
                    let g = out.high_gain[c][i].clamp(0.0, 1.0);
                    sv.push(out.vocals[c][i] - g * d(i));
                }
                if !self.residual {
                    for i in 0..n {
                        let g = out.high_gain[c][i].clamp(0.0, 1.0);
                        sa.push(out.accompaniment[c][i] - (1.0 - g) * d(i));
                    }
                }
                queue.drain(..matched);
            }
            with_slices(&self.scratch_v, |v| rs.up_vocals.process(v, &mut self.vocals))?;
            if !self.residual {
                with_slices(&self.scratch_a, |a| rs.up_accomp.process(a, &mut self.accomp))?;
            }
            up_gain.process(&self.engine_out.high_gain, &mut self.gain);
        }
        self.engine_out.drain_front(n);
        Ok(())
    }

    /// Frames for which every stream is available.
    pub fn ready(&self) -> usize {
        let mut ready = self.vocals[0].len().min(self.input[0].len());
        if self.resampled.is_some() {
            ready = ready.min(self.gain[0].len());
        }
        if !self.residual {
            ready = ready.min(self.accomp[0].len());
        }
        ready
    }

    /// Pads every queue with silence to at least `n` frames (the end of a file, where a
    /// resampler's rounding may leave a stream a frame short).
    pub fn pad_to(&mut self, n: usize) {
        for q in self.input.iter_mut().chain(&mut self.vocals).chain(&mut self.accomp).chain(&mut self.gain) {
            if q.len() < n {
                q.resize(n, 0.0);
            }
        }
    }

    /// Appends the stems of the first `n ≤ ready()` frames (with the band above the model's
    /// Nyquist frequency split between them) to `vocals` and `accompaniment`, and drops them.
    pub fn drain_into(&mut self, n: usize, vocals: &mut [Vec<f32>], accompaniment: &mut [Vec<f32>]) {
        // With resampling, the band the model never saw is split with the high-band gain.
        let split = self.resampled.is_some();
        for c in 0..self.channels {
            let x = &self.input[c][..n];
            let w = &self.vocals[c][..n];
            let g = if split { &self.gain[c][..n] } else { &[][..] };
            let start = vocals[c].len();
            if split {
                vocals[c].extend(w.iter().zip(x).zip(g).map(|((w, x), g)| w + g.clamp(0.0, 1.0) * x));
            } else {
                vocals[c].extend_from_slice(w);
            }
            if self.residual {
                let v = &vocals[c][start..];
                accompaniment[c].extend(x.iter().zip(v).map(|(x, v)| x - v));
            } else if split {
                let w = &self.accomp[c][..n];
                accompaniment[c].extend(w.iter().zip(x).zip(g).map(|((w, x), g)| w + (1.0 - g.clamp(0.0, 1.0)) * x));
            } else {
                accompaniment[c].extend_from_slice(&self.accomp[c][..n]);
            }
            for q in [&mut self.input[c], &mut self.vocals[c], &mut self.accomp[c], &mut self.gain[c]] {
                q.drain(..n.min(q.len()));
            }
        }
    }
}
