//! Streaming multi-channel sample-rate conversion between the input file's rate and the model's rate.
//!
//! The resampler is a polyphase Kaiser-windowed sinc FIR on the common grid of both rates,
//! evaluated one output frame at a time: output appears as soon as the filter's half-length of
//! input past it has arrived (no block buffering), so the same resampler serves the training
//! data, offline and live separation, and the model always sees the same band edge.
//! The filter is flat to 75% of the lower Nyquist frequency and 110 dB down from the Nyquist
//! frequency itself (no aliasing into the band). That wide transition keeps the delay at about
//! 1.3 ms per direction, which is what lets live separation stay within 50 ms at 44.1/48 kHz;
//! the band it gives up (8.3–11 kHz at 22.05 kHz) is restored by the full-band split
//! (`crate::separation::rate_bridge`), which passes everything the trip through the model's rate removed.
//!
//! Why not rubato for this too: its synchronous FFT resampler buffers whole blocks (a block and a
//! half of delay, 50–70 ms for the live round trip), and its asynchronous sinc resampler works in
//! fixed-size chunks and interpolates between points of an oversampled sinc table, so it neither
//! starts an output as soon as its inputs exist nor hits the exact rational phases.
//!
//! Rate pairs whose polyphase table would be too large (a huge common multiple, e.g. from a
//! corrupt header) fall back to rubato's synchronous FFT resampler (`rubato::Fft`, Blackman-Harris²
//! windowed sinc, flat to 95% of the lower Nyquist frequency, a block and a half of delay).
//!
//! Guarantees the rest of voxmask relies on, for both methods:
//! - **Time alignment.** The filter's group delay is dropped from the front of the output, so
//!   output frame `k` is the input evaluated at time `k / to_rate`.
//! - **Exact length.** After [`Resampler::finish`] a stream of `n` input frames has produced exactly
//!   `round(n * to / from)` output frames (halves round up), however the input was chunked.
//! - **No drift.** The rate ratio is held exactly as the integer pair `from / gcd : to / gcd`.
//! - **Chunking invariance.** Any chunking gives bit-identical output.
//!
//! All buffers are allocated in [`Resampler::new`]; [`Resampler::process_into`],
//! [`Resampler::finish_into`] and [`Resampler::reset`] never allocate, which makes them safe on a
//! real-time audio thread. [`Resampler::process`] and [`Resampler::finish`] are the offline
//! conveniences that append to growing `Vec`s.

use rubato::audioadapter_buffers::direct::{SequentialSliceOfSlices, SequentialSliceOfVecs};
use rubato::{Fft, FixedSync, Indexing, Resampler as _, WindowFunction};

mod dot;
use crate::{Error, Result};

/// The FFT block on the lower-rate side is at least this many frames. The block length sets the
/// filter length and so the transition band. Measured at 512: flat (within 0.001 dB) to 95% of the
/// lower Nyquist frequency, -3 dB near 97% (10.7 kHz at 22050 Hz), tones above it at -140 dB (the
/// f32 floor), and a delay of 256 frames of the lower rate (12 ms at 22050 Hz). Larger blocks
/// were no faster per sample (FFT cost grows as log N), only slower to respond.
const MIN_LOW_RATE_BLOCK: usize = 512;

/// Highest rate accepted. Bounds the FFT size (at most `4 * rate` points for coprime rates), so a
/// corrupt header cannot make `new` allocate gigabytes.
pub const MAX_RATE: u32 = 768_000;

/// A fixed-ratio, streaming, multi-channel resampler with delay compensation and exact output length.
pub struct Resampler {
    from_rate: u32,
    to_rate: u32,
    channels: usize,
    max_chunk_frames: usize,
    /// `None` when `from_rate == to_rate`: samples are copied untouched.
    method: Option<Method>,
    /// Input frames accepted since construction, the last `reset` or `finish`.
    frames_in: u64,
    /// Output frames handed out over the same span (after the delay was dropped).
    frames_out: u64,
}

struct FftFilter {
    fft: Fft<f32>,
    block_in: usize,
    block_out: usize,
    /// Input frames collected until a whole block is available.
    pending: Vec<Vec<f32>>,
    pending_len: usize,
    /// One block of output, straight from rubato.
    block: Vec<Vec<f32>>,
    /// Output frames still to drop from the front of the stream to cancel the filter delay.
    skip: usize,
}

/// Where produced frames go: appended to `Vec`s (offline) or written into caller slices (real time).
enum Sink<'s, 'b> {
    Append(&'s mut [Vec<f32>]),
    Slices { out: &'s mut [&'b mut [f32]], written: usize },
}

impl Sink<'_, '_> {
    fn push(&mut self, block: &[Vec<f32>], start: usize, len: usize) {
        match self {
            Sink::Append(out) => {
                for (dst, src) in out.iter_mut().zip(block) {
                    dst.extend_from_slice(&src[start..start + len]);
                }
            }
            Sink::Slices { out, written } => {
                for (dst, src) in out.iter_mut().zip(block) {
                    dst[*written..*written + len].copy_from_slice(&src[start..start + len]);
                }
                *written += len;
            }
        }
    }

    fn push_slices(&mut self, input: &[&[f32]]) {
        match self {
            Sink::Append(out) => {
                for (dst, src) in out.iter_mut().zip(input) {
                    dst.extend_from_slice(src);
                }
            }
            Sink::Slices { out, written } => {
                let len = input.first().map_or(0, |c| c.len());
                for (dst, src) in out.iter_mut().zip(input) {
                    dst[*written..*written + len].copy_from_slice(src);
                }
                *written += len;
            }
        }
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn rubato_error(e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("resampler: {e}"))
}

impl Resampler {
    /// Creates a resampler from `from_rate` to `to_rate` Hz for `channels` channels: the
    /// polyphase filter (low delay, no block buffering), or the FFT resampler for the rare rate
    /// pairs whose polyphase table would be too large. Every path of voxmask (training data,
    /// offline and live separation) uses this one design, so the model always sees the
    /// same band edge.
    ///
    /// `max_chunk_frames` is the largest input chunk the caller intends to pass to
    /// [`process_into`](Self::process_into); it only sizes [`max_output_frames`](Self::max_output_frames).
    /// [`process`](Self::process) accepts chunks of any length.
    pub fn new(from_rate: u32, to_rate: u32, channels: usize, max_chunk_frames: usize) -> Result<Self> {
        Self::build(from_rate, to_rate, channels, max_chunk_frames, true)
    }

    /// The resampler in front of a model: [`new`](Self::new), except that equal rates are not
    /// passed through but band-limited by the same polyphase filter (one phase). The model then
    /// sees the same band edge whatever the input's rate; a model trained on band-limited data
    /// and fed the full band at its own rate behaves very differently (its top bins are nearly
    /// empty in training and standardised with large scales).
    pub fn band_limited(from_rate: u32, to_rate: u32, channels: usize, max_chunk_frames: usize) -> Result<Self> {
        let mut r = Self::new(from_rate, to_rate, channels, max_chunk_frames)?;
        if from_rate == to_rate {
            r.method = PolyphaseFilter::try_new(from_rate, to_rate, channels).map(Method::Polyphase);
        }
        Ok(r)
    }

    /// Like [`new`](Self::new), but always with the FFT resampler (rubato), the fallback for rate
    /// pairs the polyphase filter cannot take; tests and benches reach it through here.
    pub fn new_fft(from_rate: u32, to_rate: u32, channels: usize, max_chunk_frames: usize) -> Result<Self> {
        Self::build(from_rate, to_rate, channels, max_chunk_frames, false)
    }

    fn build(from_rate: u32, to_rate: u32, channels: usize, max_chunk_frames: usize, polyphase: bool) -> Result<Self> {
        for (name, rate) in [("input", from_rate), ("output", to_rate)] {
            if rate == 0 || rate > MAX_RATE {
                return Err(Error::InvalidArgument(format!(
                    "resampler {name} rate {rate} Hz is outside 1..={MAX_RATE} Hz"
                )));
            }
        }
        if channels == 0 {
            return Err(Error::InvalidArgument("resampler needs at least one channel".into()));
        }
        if max_chunk_frames == 0 {
            return Err(Error::InvalidArgument("resampler max_chunk_frames must be at least 1".into()));
        }
        let method = if from_rate == to_rate {
            None
        } else if let Some(d) = polyphase.then(|| PolyphaseFilter::try_new(from_rate, to_rate, channels)).flatten() {
            Some(Method::Polyphase(d))
        } else {
            Some(Method::Fft(Box::new(FftFilter::new(from_rate, to_rate, channels)?)))
        };
        Ok(Resampler { from_rate, to_rate, channels, max_chunk_frames, method, frames_in: 0, frames_out: 0 })
    }

    /// The largest input chunk [`max_output_frames`](Self::max_output_frames) is sized for.
    pub fn max_chunk_frames(&self) -> usize {
        self.max_chunk_frames
    }

    /// Input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from_rate
    }

    /// Output rate in Hz.
    pub fn to_rate(&self) -> u32 {
        self.to_rate
    }

    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// `true` when the rates are equal: samples are copied bit-exactly with no filtering or delay.
    pub fn is_passthrough(&self) -> bool {
        self.method.is_none()
    }

    /// The filter's delay in output frames. It is compensated inside: this many frames are dropped
    /// from the front of the output stream, which therefore starts at input time zero.
    pub fn delay_frames(&self) -> usize {
        match &self.method {
            None => 0,
            Some(Method::Fft(e)) => e.block_out / 2,
            Some(Method::Polyphase(e)) => e.delay_out_frames(),
        }
    }

    /// Frames per internal block on the input side (1 for passthrough). Output appears in whole
    /// blocks, so a real-time caller sees up to `block_in + delay` input frames of buffering latency.
    pub fn input_block_frames(&self) -> usize {
        match &self.method {
            Some(Method::Fft(e)) => e.block_in,
            _ => 1,
        }
    }

    /// Frames per internal block on the output side (1 for passthrough).
    pub fn output_block_frames(&self) -> usize {
        match &self.method {
            Some(Method::Fft(e)) => e.block_out,
            _ => 1,
        }
    }

    /// How many frames a fresh stream has produced after `input_frames` input frames (before
    /// [`finish`](Self::finish)). A real-time caller's buffering latency is the worst case of
    /// `input_frames * to / from - output_frames_after(input_frames)`.
    pub fn output_frames_after(&self, input_frames: u64) -> u64 {
        match &self.method {
            None => input_frames,
            Some(Method::Fft(e)) => {
                ((input_frames / e.block_in as u64) * e.block_out as u64).saturating_sub(e.block_out as u64 / 2)
            }
            Some(Method::Polyphase(e)) => e.outputs_after(input_frames),
        }
    }

    /// Exactly how many frames the next [`process`](Self::process) / [`process_into`](Self::process_into)
    /// call with `input_frames` frames per channel will produce.
    pub fn output_frames_next(&self, input_frames: usize) -> usize {
        match &self.method {
            None => input_frames,
            Some(Method::Fft(e)) => {
                let blocks = (e.pending_len + input_frames) / e.block_in;
                (blocks * e.block_out).saturating_sub(e.skip)
            }
            Some(Method::Polyphase(_)) => {
                (self.output_frames_after(self.frames_in + input_frames as u64) - self.frames_out) as usize
            }
        }
    }

    /// Upper bound on the frames one [`process_into`](Self::process_into) call with at most
    /// `max_chunk_frames` input frames can produce; size real-time output buffers with this.
    pub fn max_output_frames(&self) -> usize {
        match &self.method {
            None => self.max_chunk_frames,
            Some(Method::Fft(e)) => self.max_chunk_frames.div_ceil(e.block_in) * e.block_out,
            Some(Method::Polyphase(e)) => (self.max_chunk_frames as u64 * e.l).div_ceil(e.m) as usize + 1,
        }
    }

    /// Exactly how many frames [`finish`](Self::finish) / [`finish_into`](Self::finish_into)
    /// would produce now.
    pub fn finish_frames(&self) -> usize {
        // frames_out never exceeds the target: a block is only emitted once the input extends half a
        // block (the filter's reach) beyond its last output frame.
        self.target_frames().saturating_sub(self.frames_out) as usize
    }

    /// round(frames_in * to / from), halves up, in exact integer arithmetic (u128: a 60-minute
    /// 768 kHz stream times 768000 overflows nothing).
    fn target_frames(&self) -> u64 {
        let num = self.frames_in as u128 * self.to_rate as u128;
        let from = self.from_rate as u128;
        ((2 * num + from) / (2 * from)) as u64
    }

    fn check_input(&self, input: &[&[f32]]) -> Result<usize> {
        if input.len() != self.channels {
            return Err(Error::Mismatch {
                what: "resampler input channels".into(),
                expected: self.channels.to_string(),
                got: input.len().to_string(),
            });
        }
        let frames = input[0].len();
        if let Some((ch, c)) = input.iter().enumerate().find(|(_, c)| c.len() != frames) {
            return Err(Error::Mismatch {
                what: format!("resampler input frames in channel {ch}"),
                expected: frames.to_string(),
                got: c.len().to_string(),
            });
        }
        Ok(frames)
    }

    fn check_out_channels(&self, got: usize) -> Result<()> {
        if got != self.channels {
            return Err(Error::Mismatch {
                what: "resampler output channels".into(),
                expected: self.channels.to_string(),
                got: got.to_string(),
            });
        }
        Ok(())
    }

    fn check_out_slices(&self, out: &[&mut [f32]], needed: usize) -> Result<()> {
        self.check_out_channels(out.len())?;
        if let Some((ch, c)) = out.iter().enumerate().find(|(_, c)| c.len() < needed) {
            return Err(Error::Mismatch {
                what: format!("resampler output buffer frames in channel {ch}"),
                expected: format!("at least {needed}"),
                got: c.len().to_string(),
            });
        }
        Ok(())
    }

    /// Consumes `input` (one slice per channel, all the same length, any length) and appends the
    /// produced frames to `out[ch]`. Allocates only when the `Vec`s grow.
    pub fn process(&mut self, input: &[&[f32]], out: &mut [Vec<f32>]) -> Result<()> {
        let frames = self.check_input(input)?;
        self.check_out_channels(out.len())?;
        let produced = self.output_frames_next(frames);
        for o in out.iter_mut() {
            o.reserve(produced);
        }
        self.run(input, &mut Sink::Append(out))
    }

    /// Real-time variant of [`process`](Self::process): writes the produced frames to the start of
    /// `out[ch]` and returns how many. Never allocates. `out[ch]` must hold at least
    /// [`output_frames_next(input_frames)`](Self::output_frames_next) frames (at most
    /// [`max_output_frames`](Self::max_output_frames) for chunks up to `max_chunk_frames`);
    /// otherwise nothing is consumed and an error is returned.
    pub fn process_into(&mut self, input: &[&[f32]], out: &mut [&mut [f32]]) -> Result<usize> {
        let frames = self.check_input(input)?;
        let produced = self.output_frames_next(frames);
        self.check_out_slices(out, produced)?;
        let mut sink = Sink::Slices { out, written: 0 };
        self.run(input, &mut sink)?;
        match sink {
            Sink::Slices { written, .. } => Ok(written),
            Sink::Append(_) => Ok(produced),
        }
    }

    /// Flushes the tail: appends the remaining frames so that the stream's total output is exactly
    /// `round(input_frames * to / from)`, then resets for a new stream.
    pub fn finish(&mut self, out: &mut [Vec<f32>]) -> Result<()> {
        self.check_out_channels(out.len())?;
        let needed = self.finish_frames();
        for o in out.iter_mut() {
            o.reserve(needed);
        }
        self.flush(&mut Sink::Append(out))
    }

    /// Non-allocating variant of [`finish`](Self::finish): writes [`finish_frames`](Self::finish_frames)
    /// frames to the start of `out[ch]` and returns that count, then resets for a new stream.
    pub fn finish_into(&mut self, out: &mut [&mut [f32]]) -> Result<usize> {
        let needed = self.finish_frames();
        self.check_out_slices(out, needed)?;
        self.flush(&mut Sink::Slices { out, written: 0 })?;
        Ok(needed)
    }

    /// Forgets all buffered input and filter state; the next sample starts a new stream at time zero.
    pub fn reset(&mut self) {
        self.frames_in = 0;
        self.frames_out = 0;
        match &mut self.method {
            None => {}
            Some(Method::Fft(e)) => e.reset(),
            Some(Method::Polyphase(e)) => e.reset(),
        }
    }

    fn run(&mut self, input: &[&[f32]], sink: &mut Sink<'_, '_>) -> Result<()> {
        let frames = input[0].len();
        self.frames_in += frames as u64;
        match &mut self.method {
            None => {
                sink.push_slices(input);
                self.frames_out += frames as u64;
            }
            Some(Method::Fft(e)) => self.frames_out += e.push(input, sink)? as u64,
            Some(Method::Polyphase(e)) => self.frames_out += e.push(input, sink, usize::MAX) as u64,
        }
        Ok(())
    }

    fn flush(&mut self, sink: &mut Sink<'_, '_>) -> Result<()> {
        let target = self.target_frames();
        let mut remaining = target.saturating_sub(self.frames_out) as usize;
        match &mut self.method {
            None => {}
            Some(Method::Fft(e)) => {
                // The rest of the last partial block, then as many silent blocks as the filter's
                // reach needs; rubato fills everything past `pending_len` with zeros.
                while remaining > 0 {
                    remaining -= e.run_pending_block(sink, remaining)?;
                }
            }
            Some(Method::Polyphase(e)) => {
                // Silence past the end until the filter has seen all it needs for the last frame.
                while remaining > 0 {
                    remaining -= e.push_zeros(sink, remaining);
                }
            }
        }
        self.reset();
        Ok(())
    }
}

enum Method {
    // Boxed: the FFT resampler's plans and buffers dwarf the polyphase filter.
    Fft(Box<FftFilter>),
    Polyphase(PolyphaseFilter),
}

impl FftFilter {
    fn new(from_rate: u32, to_rate: u32, channels: usize) -> Result<Self> {
        let g = gcd(from_rate as u64, to_rate as u64);
        let (a, b) = ((from_rate as u64 / g) as usize, (to_rate as u64 / g) as usize);
        // The block must span an even number of minimal blocks (a : b frames). Only then is the
        // filter's centre tap, at block_in / 2 input frames, exactly block_out / 2 output frames,
        // so dropping whole output frames cancels the delay with no sub-sample shift.
        let mut c = MIN_LOW_RATE_BLOCK.div_ceil(a.min(b));
        c += c % 2;
        let block_in = c * a;
        // With FixedSync::Both rubato uses a single FFT block of exactly `chunk_size` input frames
        // when chunk_size is a multiple of `a`.
        let fft = Fft::<f32>::new_custom(
            from_rate as usize,
            to_rate as usize,
            block_in,
            1,
            channels,
            WindowFunction::BlackmanHarris2,
            FixedSync::Both,
        )
        .map_err(rubato_error)?;
        let block_out = c * b;
        if fft.input_frames_next() != block_in
            || fft.output_frames_next() != block_out
            || fft.output_delay() != block_out / 2
        {
            return Err(Error::InvalidArgument(format!(
                "resampler {from_rate} -> {to_rate} Hz: rubato chose blocks {} -> {} frames, expected {block_in} -> {block_out}",
                fft.input_frames_next(),
                fft.output_frames_next()
            )));
        }
        Ok(FftFilter {
            fft,
            block_in,
            block_out,
            pending: vec![vec![0.0; block_in]; channels],
            pending_len: 0,
            block: vec![vec![0.0; block_out]; channels],
            skip: block_out / 2,
        })
    }

    fn reset(&mut self) {
        self.fft.reset();
        self.pending_len = 0;
        self.skip = self.block_out / 2;
    }

    /// Feeds `input` through, emitting every completed block; returns the frames emitted.
    fn push(&mut self, input: &[&[f32]], sink: &mut Sink<'_, '_>) -> Result<usize> {
        let channels = input.len();
        let frames = input[0].len();
        let mut pos = 0;
        let mut emitted = 0;
        while pos < frames {
            if self.pending_len == 0 && frames - pos >= self.block_in {
                // Whole block available in the caller's buffer: read it in place.
                let adapter = SequentialSliceOfSlices::new(input, channels, frames).map_err(rubato_error)?;
                let mut out =
                    SequentialSliceOfVecs::new_mut(&mut self.block, channels, self.block_out).map_err(rubato_error)?;
                let indexing = Indexing { input_offset: pos, ..Indexing::default() };
                self.fft.process_into_buffer(&adapter, &mut out, Some(&indexing)).map_err(rubato_error)?;
                pos += self.block_in;
                emitted += self.emit(sink, usize::MAX);
            } else {
                let take = (self.block_in - self.pending_len).min(frames - pos);
                for (dst, src) in self.pending.iter_mut().zip(input) {
                    dst[self.pending_len..self.pending_len + take].copy_from_slice(&src[pos..pos + take]);
                }
                self.pending_len += take;
                pos += take;
                if self.pending_len == self.block_in {
                    emitted += self.run_pending_block(sink, usize::MAX)?;
                }
            }
        }
        Ok(emitted)
    }

    /// Resamples the pending block (zero-padded past `pending_len`) and emits at most `limit` frames.
    fn run_pending_block(&mut self, sink: &mut Sink<'_, '_>, limit: usize) -> Result<usize> {
        let channels = self.pending.len();
        let adapter = SequentialSliceOfVecs::new(&self.pending, channels, self.block_in).map_err(rubato_error)?;
        let mut out =
            SequentialSliceOfVecs::new_mut(&mut self.block, channels, self.block_out).map_err(rubato_error)?;
        let indexing = Indexing { partial_len: Some(self.pending_len), ..Indexing::default() };
        self.fft.process_into_buffer(&adapter, &mut out, Some(&indexing)).map_err(rubato_error)?;
        self.pending_len = 0;
        Ok(self.emit(sink, limit))
    }

    /// Hands the current output block to `sink`, minus the delay still to drop; at most `limit` frames.
    fn emit(&mut self, sink: &mut Sink<'_, '_>, limit: usize) -> usize {
        let dropped = self.skip.min(self.block_out);
        self.skip -= dropped;
        let len = (self.block_out - dropped).min(limit);
        if len > 0 {
            sink.push(&self.block, dropped, len);
        }
        len
    }
}

/// Stopband attenuation of the polyphase filter (Kaiser design target, also bounding the
/// passband ripple to about 3e-6).
const DIRECT_ATTEN_DB: f64 = 110.0;
/// The polyphase filter is flat up to this fraction of the lower Nyquist frequency ...
const DIRECT_PASS: f64 = 0.75;
/// Fraction of the lower Nyquist frequency up to which resampled material is flat (both methods:
/// the FFT fallback is flat further, to 95 %). Above it a signal stored at a lower rate than the
/// model's carries less than its full content.
pub const PASSBAND_FRACTION: f32 = DIRECT_PASS as f32;
/// ... and at least `DIRECT_ATTEN_DB` down from this fraction on: nothing above the lower Nyquist
/// frequency folds back into the band. The transition width sets the filter length, hence the
/// delay: N = (A − 7.95) / (2.285 Δω) taps on the common grid, about 1.3 ms per direction at any
/// rate pair (the 0.95–1.04 design it replaced needed 4.1 ms).
const DIRECT_STOP: f64 = 1.0;
/// Input frames appended to the history per step; bounds the scratch buffers.
const DIRECT_PIECE: usize = 256;
/// Polyphase tables larger than this (coprime rates with a huge common multiple) use the FFT
/// resampler instead, so no rate pair can make `new` allocate more than ~16 MB.
const DIRECT_MAX_COEFS: usize = 1 << 22;

/// Zeroth-order modified Bessel function of the first kind (Kaiser window), by its power series.
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, q) = (1.0, 1.0, x * x / 4.0);
    for k in 1..200 {
        term *= q / (k * k) as f64;
        sum += term;
        if term < sum * 1e-17 {
            break;
        }
    }
    sum
}

/// The polyphase filter: a FIR on the common grid of both rates. With `L = to / g`
/// and `M = from / g`, input frame `i` sits at grid index `i L` and output frame `k` at `k M`;
/// output `k` is the prototype filter `h` (length `2c + 1`, centred, so linear phase with its delay
/// cancelled) applied to the inputs within `c` grid steps of `k M`. Each output is computed
/// as soon as its last input (`floor((k M + c) / L)`) has arrived, and each phase's taps sum to
/// exactly 1 so that DC passes unchanged.
struct PolyphaseFilter {
    l: u64,
    m: u64,
    c: u64,
    /// Taps per phase.
    taps: usize,
    /// `L` phases of `taps` coefficients, each reversed to run forward over the input history.
    coefs: Vec<f32>,
    /// Input history per channel; `hist[ch][0]` is absolute input frame `hist_start`.
    hist: Vec<Vec<f32>>,
    hist_len: usize,
    hist_start: i64,
    /// Output scratch for one step.
    out: Vec<Vec<f32>>,
    /// Where each output of one step reads (shared by the channels).
    taps_at: Vec<dot::Tap>,
    /// Inputs accepted (including the silence appended by `finish`) and the next output frame.
    n_in: u64,
    k_next: u64,
}

/// The polyphase filter's prototype lowpass: a Kaiser-windowed sinc of `2c + 1` taps on the
/// common grid of both rates (`L · from` Hz, with `L = to / g` and `M = from / g`).
struct Prototype {
    l: u64,
    m: u64,
    c: u64,
    /// Cut-off in cycles per grid step.
    cutoff: f64,
    beta: f64,
    i0_beta: f64,
}

impl Prototype {
    fn design(from_rate: u32, to_rate: u32) -> Self {
        let g = gcd(from_rate as u64, to_rate as u64);
        let (l, m) = (to_rate as u64 / g, from_rate as u64 / g);
        let fine = (l * from_rate as u64) as f64;
        let low_nyquist = from_rate.min(to_rate) as f64 / 2.0;
        let (pass, stop) = (DIRECT_PASS * low_nyquist, DIRECT_STOP * low_nyquist);
        let dw = 2.0 * std::f64::consts::PI * (stop - pass) / fine;
        let n = ((DIRECT_ATTEN_DB - 7.95) / (2.285 * dw)).ceil() as u64;
        let beta = 0.1102 * (DIRECT_ATTEN_DB - 8.7);
        Prototype { l, m, c: n.div_ceil(2), cutoff: 0.5 * (pass + stop) / fine, beta, i0_beta: bessel_i0(beta) }
    }

    /// Tap `j` (`0..=2c`; centred on `c`).
    fn tap(&self, j: u64) -> f64 {
        let (c, cutoff) = (self.c as f64, self.cutoff);
        let t = j as f64 - c;
        let x = 2.0 * cutoff * t;
        let sinc = if t == 0.0 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
        let r = t / c;
        2.0 * cutoff * sinc * bessel_i0(self.beta * (1.0 - r * r).max(0.0).sqrt()) / self.i0_beta
    }
}

/// Magnitude response, at each of `freqs` (Hz), of the filter in
/// [`Resampler::band_limited`]`(from_rate, to_rate, ..)` when `from_rate` is a whole multiple of
/// `to_rate`: then it has one phase and is a plain FIR at `from_rate` (normalised to unit gain
/// at DC), followed by keeping every `from / to`-th sample. The mask engine scales the model's
/// features by it when it analyses the input at its own rate instead of resampling it
/// (`crate::separation::mask_engine`). `None` for other rate pairs.
pub fn band_limit_response(from_rate: u32, to_rate: u32, freqs: &[f64]) -> Option<Vec<f64>> {
    if from_rate == 0 || to_rate == 0 || !from_rate.is_multiple_of(to_rate) {
        return None;
    }
    let p = Prototype::design(from_rate, to_rate);
    let taps: Vec<f64> = (0..=2 * p.c).map(|j| p.tap(j)).collect();
    let sum: f64 = taps.iter().sum();
    Some(
        freqs
            .iter()
            .map(|&f| {
                let w = 2.0 * std::f64::consts::PI * f / from_rate as f64;
                let (re, im) = taps.iter().enumerate().fold((0.0, 0.0), |(re, im), (j, h)| {
                    let (s, c) = (w * j as f64).sin_cos();
                    (re + h * c, im - h * s)
                });
                (re * re + im * im).sqrt() / sum
            })
            .collect(),
    )
}

impl PolyphaseFilter {
    /// `None` when the polyphase table would be too large for this rate pair.
    fn try_new(from_rate: u32, to_rate: u32, channels: usize) -> Option<Self> {
        let proto = Prototype::design(from_rate, to_rate);
        let (l, m, c) = (proto.l, proto.m, proto.c);
        // Rounded up to whole SIMD lanes: the extra (oldest) taps are zero, and `dot` then needs no
        // remainder loop.
        let taps = ((2 * c / l + 1) as usize).next_multiple_of(dot::LANES);
        if taps.checked_mul(l as usize)? > DIRECT_MAX_COEFS {
            return None;
        }
        let h = |j: u64| proto.tap(j);
        let mut coefs = vec![0.0f32; l as usize * taps];
        let mut phase = vec![0.0f64; taps];
        for r in 0..l {
            for (q, p) in phase.iter_mut().enumerate() {
                let j = r + q as u64 * l;
                *p = if j <= 2 * c { h(j) } else { 0.0 };
            }
            let sum: f64 = phase.iter().sum();
            let row = &mut coefs[r as usize * taps..(r as usize + 1) * taps];
            for (q, p) in phase.iter().enumerate() {
                row[taps - 1 - q] = (p / sum) as f32;
            }
        }
        let out_piece = (DIRECT_PIECE as u64 * l).div_ceil(m) as usize + 1;
        Some(PolyphaseFilter {
            l,
            m,
            c,
            taps,
            coefs,
            hist: vec![vec![0.0; taps - 1 + DIRECT_PIECE]; channels],
            hist_len: taps - 1,
            hist_start: -(taps as i64 - 1),
            out: vec![vec![0.0; out_piece]; channels],
            taps_at: Vec::with_capacity(out_piece),
            n_in: 0,
            k_next: 0,
        })
    }

    fn reset(&mut self) {
        for h in &mut self.hist {
            h[..self.taps - 1].fill(0.0);
        }
        self.hist_len = self.taps - 1;
        self.hist_start = -(self.taps as i64 - 1);
        self.n_in = 0;
        self.k_next = 0;
    }

    /// The compensated delay in output frames (half the filter, rounded up).
    fn delay_out_frames(&self) -> usize {
        self.c.div_ceil(self.m) as usize
    }

    /// Outputs computable after `n` inputs: those `k` with `k M + c < n L`.
    fn outputs_after(&self, n: u64) -> u64 {
        (n * self.l).saturating_sub(self.c).div_ceil(self.m)
    }

    /// Appends `input` (or `zeros` frames of silence when `input` is `None`) one piece at a time
    /// and emits every output that becomes computable, at most `limit`; returns the frames emitted.
    fn feed(&mut self, input: Option<&[&[f32]]>, zeros: usize, sink: &mut Sink<'_, '_>, limit: usize) -> usize {
        let frames = input.map_or(zeros, |i| i[0].len());
        let mut pos = 0;
        let mut emitted = 0;
        while pos < frames && emitted < limit {
            let take = (frames - pos).min(DIRECT_PIECE);
            for (ch, h) in self.hist.iter_mut().enumerate() {
                let dst = &mut h[self.hist_len..self.hist_len + take];
                match input {
                    Some(i) => dst.copy_from_slice(&i[ch][pos..pos + take]),
                    None => dst.fill(0.0),
                }
            }
            self.hist_len += take;
            self.n_in += take as u64;
            pos += take;
            let end = self.outputs_after(self.n_in);
            let count = ((end - self.k_next) as usize).min(limit - emitted);
            let taps = self.taps;
            // Output k reads inputs up to i_max = (k M + c) / L with phase r = (k M + c) mod L;
            // both advance by M / L and M mod L per output (no division in the loop).
            let s = self.k_next * self.m + self.c;
            let (mut i_max, mut r) = ((s / self.l) as i64, (s % self.l) as usize);
            let (step_i, step_r, l) = ((self.m / self.l) as i64, (self.m % self.l) as usize, self.l as usize);
            self.taps_at.clear();
            for _ in 0..count {
                let start = (i_max - taps as i64 + 1 - self.hist_start) as usize;
                self.taps_at.push(dot::Tap { start, phase: r * taps });
                i_max += step_i;
                r += step_r;
                if r >= l {
                    r -= l;
                    i_max += 1;
                }
            }
            for (h, out) in self.hist.iter().zip(self.out.iter_mut()) {
                dot::polyphase(&self.coefs, taps, h, &self.taps_at, &mut out[..count]);
            }
            if count > 0 {
                sink.push(&self.out, 0, count);
            }
            self.k_next += count as u64;
            emitted += count;
            // Keep only the history the next output still needs.
            let first = (self.k_next * self.m + self.c) / self.l;
            let needed = first as i64 - taps as i64 + 1;
            let drop = ((needed - self.hist_start).max(0) as usize).min(self.hist_len);
            if drop > 0 {
                for h in &mut self.hist {
                    h.copy_within(drop..self.hist_len, 0);
                }
                self.hist_len -= drop;
                self.hist_start += drop as i64;
            }
        }
        emitted
    }

    fn push(&mut self, input: &[&[f32]], sink: &mut Sink<'_, '_>, limit: usize) -> usize {
        self.feed(Some(input), 0, sink, limit)
    }

    fn push_zeros(&mut self, sink: &mut Sink<'_, '_>, limit: usize) -> usize {
        self.feed(None, DIRECT_PIECE, sink, limit)
    }
}
