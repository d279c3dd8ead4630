//! The inference thread: drains the input ring in whole multiples of the separator's granularity,
//! runs the [`LiveSeparator`], feeds the output ring and writes the recording. It owns the model,
//! every buffer and the WAV writers, and finalises the recording on every way out (stop request,
//! fatal device error, inference or disk failure), so `--record` files are valid afterwards.
//!
//! It asks for real-time scheduling first ([`super::priority`]). With an adaptive buffer it
//! starts with a small pre-roll and, after each output underrun, adds silence to the output (the
//! underrun's own gap, already played, plus a step of at least [`BufferPolicy::step_frames`]) up
//! to a cap: the listener's delay grows only when the machine proved it needs more. The
//! recording is not delayed by any of this, so `input.wav` and the stems stay aligned, and at
//! the end every input frame the device delivered is processed and recorded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant};

use rtrb::{Consumer, Producer};

use super::rt::STREAMS;
use super::{LiveSeparator, Shared, Timing, store_f32};
use crate::Result;
use crate::audio::encode::{AudioWriter, SampleFormat};

/// Largest chunk the inference thread takes from the input ring at once (device frames).
const MAX_READ_FRAMES: usize = 4096;
/// After a stop request, how long to let an input callback that was already running finish
/// before the ring is drained for the last time.
const DRAIN_GRACE: Duration = Duration::from_millis(30);

/// How the output buffer behaves.
#[derive(Debug, Clone, Copy)]
pub struct BufferPolicy {
    /// Grow after underruns (else the pre-roll stays as set by `--buffer-ms`).
    pub adaptive: bool,
    /// Smallest growth after an underrun, in device frames.
    pub step_frames: usize,
    /// Total output buffer (pre-roll, underrun gaps and growth) beyond which it no longer grows.
    pub cap_frames: usize,
}

/// One change of the output buffer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BufferChange {
    /// Seconds of audio processed when it happened.
    pub at_seconds: f64,
    /// The buffer after the change, in device frames.
    pub buffer_frames: u64,
}

/// Where a recording went.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecordPaths {
    pub input: PathBuf,
    pub vocals: PathBuf,
    pub accompaniment: PathBuf,
}

/// Streaming 32-bit float WAV recording of the input and both stems (the stems as played:
/// delayed by the separator's latency, which starts them with that much silence).
pub struct Recorder {
    paths: RecordPaths,
    input: AudioWriter,
    vocals: AudioWriter,
    accompaniment: AudioWriter,
}

impl Recorder {
    /// Creates `input.wav`, `vocals.wav` and `accompaniment.wav` in `dir` (created if needed);
    /// refuses to replace existing files.
    pub fn create(dir: &Path, rate: u32, channels: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        let paths = RecordPaths {
            input: dir.join("input.wav"),
            vocals: dir.join("vocals.wav"),
            accompaniment: dir.join("accompaniment.wav"),
        };
        let mk = |p: &Path| AudioWriter::create(p, rate, channels, SampleFormat::Float32, false);
        Ok(Recorder {
            input: mk(&paths.input)?,
            vocals: mk(&paths.vocals)?,
            accompaniment: mk(&paths.accompaniment)?,
            paths,
        })
    }

    fn write(&mut self, input: &[&[f32]], vocals: &[&[f32]], accompaniment: &[&[f32]]) -> Result<()> {
        self.input.write(input)?;
        self.vocals.write(vocals)?;
        self.accompaniment.write(accompaniment)
    }

    /// Completes the three files (each is renamed into place even if another fails).
    pub fn finish(self) -> Result<RecordPaths> {
        let a = self.input.finish();
        let b = self.vocals.finish();
        let c = self.accompaniment.finish();
        a.and(b).and(c).map(|_| self.paths)
    }
}

/// The most frames the inference thread hands the separator at once with input in multiples of
/// `granularity` frames.
pub fn max_read_frames(granularity: usize) -> usize {
    (MAX_READ_FRAMES / granularity.max(1)).max(1) * granularity.max(1)
}

/// Everything the inference thread owns.
pub struct Worker {
    pub separator: LiveSeparator,
    /// Input ring (interleaved, `input_channels` per frame).
    pub input: Consumer<f32>,
    /// Output ring (interleaved, [`STREAMS`] × separated channels per frame).
    pub output: Producer<f32>,
    pub input_channels: usize,
    /// Frames of silence written to the output ring before the first real frame.
    pub preroll_frames: usize,
    pub shared: Arc<Shared>,
    pub recorder: Option<Recorder>,
    pub buffer: BufferPolicy,
    pub sample_rate: u32,
}

/// What the inference thread did.
#[derive(Debug, Clone, Default)]
pub struct WorkerReport {
    /// Engine time per model block (seconds).
    pub block_time: Timing,
    pub model_blocks: u64,
    pub frames: u64,
    /// Output frames dropped because the output ring was full.
    pub output_overflow: u64,
    pub starved_frames: u64,
    pub recording: Option<RecordPaths>,
    /// Why the recording could not be finalised, if it could not.
    pub recording_error: Option<String>,
    /// Input frames written to `input.wav` (equal to the frames the device delivered unless the
    /// input ring overflowed).
    pub recorded_frames: u64,
    pub realtime: super::priority::RealtimeStatus,
    pub buffer_changes: Vec<BufferChange>,
}

impl Worker {
    /// Runs until `shared.stopping`; then finalises the recording.
    pub fn run(mut self) -> WorkerReport {
        let mut report = WorkerReport { realtime: super::priority::promote_current_thread(), ..Default::default() };
        self.shared.realtime.store(if report.realtime.granted { 1 } else { 2 }, Relaxed);
        if let Err(e) = self.run_loop(&mut report) {
            self.shared.fail(format!("inference thread: {e}"));
        }
        if let Some(rec) = self.recorder.take() {
            match rec.finish() {
                Ok(paths) => report.recording = Some(paths),
                Err(e) => report.recording_error = Some(e.to_string()),
            }
        }
        report.model_blocks = self.separator.model_blocks();
        report.starved_frames = self.separator.starved_frames();
        report
    }

    fn run_loop(&mut self, report: &mut WorkerReport) -> Result<()> {
        let ch = self.separator.channels();
        let ic = self.input_channels.max(1);
        let g = self.separator.config().granularity;
        let max_frames = max_read_frames(g);
        let bufs = || -> Vec<Vec<f32>> { vec![vec![0.0; max_frames]; ch] };
        let (mut inp, mut voc, mut acc, mut mix) = (bufs(), bufs(), bufs(), bufs());
        let stride = STREAMS * ch;

        let pre = self.preroll_frames.min(self.output.slots() / stride);
        self.add_silence(pre);
        self.shared.primed.store(true, Release);
        let (mut seen_underruns, mut seen_gap) = (0u64, 0u64);

        let mut last_pass = false;
        loop {
            if self.shared.stopping.load(Relaxed) && !last_pass {
                // One more pass over whatever the input callbacks accepted before the stop.
                std::thread::sleep(DRAIN_GRACE);
                last_pass = true;
            }
            if self.buffer.adaptive {
                let underruns = self.shared.underruns.load(Relaxed);
                if underruns > seen_underruns {
                    let gap = self.shared.underrun_frames.load(Relaxed);
                    self.grow_after_underrun(gap - seen_gap, report);
                    (seen_underruns, seen_gap) = (underruns, gap);
                }
            }
            let available = self.input.slots() / ic;
            let whole = (available.min(max_frames) / g) * g;
            // The last pass takes the remainder too, padded to the granularity with silence.
            let n = if last_pass { available.min(max_frames) } else { whole };
            if n == 0 {
                if last_pass {
                    break;
                }
                std::thread::sleep(Duration::from_micros(500));
                continue;
            }
            let chunk = self.input.read_chunk(n * ic).map_err(|e| crate::Error::InvalidArgument(e.to_string()))?;
            let (a, b) = chunk.as_slices();
            for (i, v) in a.iter().chain(b).enumerate() {
                let (frame, dc) = (i / ic, i % ic);
                if dc < ch {
                    inp[dc][frame] = *v;
                }
            }
            chunk.commit_all();
            // A mono input feeding a stereo separator never happens (channels = min(input, 2)).
            let padded = n.div_ceil(g) * g;
            for c in &mut inp {
                c[n..padded].fill(0.0);
            }

            let started = Instant::now();
            let info = {
                let i: Vec<&[f32]> = inp.iter().map(|c| &c[..padded]).collect();
                let mut v: Vec<&mut [f32]> = voc.iter_mut().map(|c| &mut c[..padded]).collect();
                let mut a: Vec<&mut [f32]> = acc.iter_mut().map(|c| &mut c[..padded]).collect();
                let mut m: Vec<&mut [f32]> = mix.iter_mut().map(|c| &mut c[..padded]).collect();
                self.separator.process(&i, &mut v, &mut a, &mut m)?
            };
            let elapsed = started.elapsed();
            self.shared.engine_nanos.fetch_add(elapsed.as_nanos() as u64, Relaxed);
            self.shared.engine_frames.fetch_add(n as u64, Relaxed);
            if info.model_blocks > 0 {
                let per_block = elapsed.as_secs_f64() / info.model_blocks as f64;
                for _ in 0..info.model_blocks {
                    report.block_time.add(per_block);
                }
                self.shared.model_blocks.fetch_add(info.model_blocks, Relaxed);
                self.shared.last_block_nanos.store((per_block * 1e9) as u64, Relaxed);
            }

            let fit = (self.output.slots() / stride).min(n);
            report.output_overflow += (n - fit) as u64;
            if let Ok(out) = self.output.write_chunk_uninit(fit * stride) {
                let (voc, acc, mix) = (&voc, &acc, &mix);
                out.fill_from_iter((0..fit).flat_map(move |f| {
                    (0..stride).map(move |k| {
                        let (stream, c) = (k / ch, k % ch);
                        match stream {
                            0 => voc[c][f],
                            1 => acc[c][f],
                            _ => mix[c][f],
                        }
                    })
                }));
            }
            let peak = |bufs: &[Vec<f32>]| bufs.iter().flat_map(|c| &c[..n]).fold(0.0f32, |m, v| m.max(v.abs()));
            store_f32(&self.shared.level_input, peak(&inp));
            store_f32(&self.shared.level_vocals, peak(&voc));
            store_f32(&self.shared.level_accomp, peak(&acc));
            report.frames += n as u64;

            if let Some(rec) = self.recorder.as_mut() {
                let i: Vec<&[f32]> = inp.iter().map(|c| &c[..n]).collect();
                let v: Vec<&[f32]> = voc.iter().map(|c| &c[..n]).collect();
                let a: Vec<&[f32]> = acc.iter().map(|c| &c[..n]).collect();
                rec.write(&i, &v, &a)?;
                report.recorded_frames += n as u64;
            }
        }
        Ok(())
    }

    /// Writes `frames` of silence to the output ring (as many as fit).
    fn add_silence(&mut self, frames: usize) -> usize {
        let stride = STREAMS * self.separator.channels();
        let frames = frames.min(self.output.slots() / stride);
        if let Ok(chunk) = self.output.write_chunk_uninit(frames * stride) {
            chunk.fill_from_iter(std::iter::repeat(0.0));
        }
        frames
    }

    /// After an underrun whose gap (frames of silence already played) was `gap`: the buffer has
    /// grown by the gap by itself; add a step of at least the policy's, up to the cap.
    fn grow_after_underrun(&mut self, gap: u64, report: &mut WorkerReport) {
        let current = self.preroll_frames as u64
            + self.shared.added_frames.load(Relaxed)
            + self.shared.underrun_frames.load(Relaxed);
        let room = (self.buffer.cap_frames as u64).saturating_sub(current);
        let step = (self.buffer.step_frames as u64).max(gap).min(room) as usize;
        let added = self.add_silence(step) as u64;
        self.shared.added_frames.fetch_add(added, Relaxed);
        report.buffer_changes.push(BufferChange {
            at_seconds: report.frames as f64 / self.sample_rate as f64,
            buffer_frames: current + added,
        });
    }
}
