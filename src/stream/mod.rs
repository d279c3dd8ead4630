//! Real-time separation: the live separator, the audio-callback side and the inference thread.
//!
//! Threads and data (ARCHITECTURE.md, "Invariants"):
//!
//! ```text
//! input callback ──rtrb──▶ inference thread ──rtrb──▶ output callback
//!  (rt::InputCallback)      (worker::run:               (rt::OutputCallback: monitor
//!                            LiveSeparator = Separator    selection, gain, xrun count)
//!                            + delay FIFO; recording)
//! ```
//!
//! The callbacks only copy samples and touch atomics in [`Shared`]; the model, the resamplers, the
//! WAV writers and every allocation live on the inference thread. The output ring is primed with
//! silence so the inference thread's bursts (a model call, a resampler block) fit in the slack.

pub mod live_separator;
pub mod priority;
pub mod rt;
pub mod worker;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};

pub use live_separator::{LiveConfig, LiveSeparator, ProcessInfo};
pub use rt::{InputCallback, OutputCallback};

/// What the output device plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Monitor {
    #[default]
    Vocals,
    Accompaniment,
    /// The input, delayed like the stems (for A/B comparison).
    Mix,
    /// Vocals on the left, accompaniment on the right.
    Split,
}

impl Monitor {
    pub fn from_u8(v: u8) -> Self {
        match v {
            1 => Monitor::Accompaniment,
            2 => Monitor::Mix,
            3 => Monitor::Split,
            _ => Monitor::Vocals,
        }
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }

    pub fn name(self) -> &'static str {
        match self {
            Monitor::Vocals => "vocals",
            Monitor::Accompaniment => "accompaniment",
            Monitor::Mix => "mix",
            Monitor::Split => "split",
        }
    }

    /// The mode a key selects (`v`, `a`, `m`, `s`; `1`–`4`), if any.
    pub fn from_key(key: u8) -> Option<Self> {
        match key.to_ascii_lowercase() {
            b'v' | b'1' => Some(Monitor::Vocals),
            b'a' | b'k' | b'2' => Some(Monitor::Accompaniment),
            b'm' | b'3' => Some(Monitor::Mix),
            b's' | b'4' => Some(Monitor::Split),
            _ => None,
        }
    }
}

/// State shared between the callbacks, the inference thread and the controlling thread. The
/// callbacks only use the atomics; `fatal_message` is written by error callbacks and the worker.
#[derive(Debug, Default)]
pub struct Shared {
    pub monitor: AtomicU8,
    /// Output gain as `f32` bits.
    pub gain: AtomicU32,
    /// Set by the inference thread once the output ring holds its silence pre-roll.
    pub primed: AtomicBool,
    /// Asks the inference thread to stop (Ctrl-C, `--duration`, a fatal error).
    pub stopping: AtomicBool,
    /// Something ended the session abnormally (device lost, server stopped, inference failed).
    pub fatal: AtomicBool,
    pub fatal_message: Mutex<Option<String>>,
    pub input_frames: AtomicU64,
    pub output_frames: AtomicU64,
    /// Input ring full: frames were dropped.
    pub overruns: AtomicU64,
    /// Output ring empty: silence was played.
    pub underruns: AtomicU64,
    /// Underruns after `warmup_frames` output frames.
    pub underruns_after_warmup: AtomicU64,
    pub warmup_frames: AtomicU64,
    /// Xruns the audio server itself reported (JACK).
    pub server_xruns: AtomicU64,
    /// Peak levels of the last processed chunk (`f32` bits): input, vocals, accompaniment.
    pub level_input: AtomicU32,
    pub level_vocals: AtomicU32,
    pub level_accomp: AtomicU32,
    /// Time the inference thread spent in the engine, and the audio it covered (device frames).
    pub engine_nanos: AtomicU64,
    pub engine_frames: AtomicU64,
    pub model_blocks: AtomicU64,
    /// Last measured engine time per model block, in nanoseconds.
    pub last_block_nanos: AtomicU64,
    /// Frames of silence the output callback played because the ring ran dry: each delays every
    /// later frame by as much, so it is part of the buffer the listener hears.
    pub underrun_frames: AtomicU64,
    /// Frames of silence the inference thread added to the output after underruns (adaptive
    /// buffer), on top of the pre-roll.
    pub added_frames: AtomicU64,
    /// Whether the inference thread runs with real-time scheduling: 0 not yet known, 1 yes, 2 no.
    pub realtime: AtomicU8,
}

impl Shared {
    pub fn new(monitor: Monitor, gain: f32) -> Self {
        let s = Shared::default();
        s.monitor.store(monitor.as_u8(), Relaxed);
        s.gain.store(gain.to_bits(), Relaxed);
        s
    }

    /// Records a fatal error (the first one wins) and asks everything to stop.
    pub fn fail(&self, message: String) {
        if let Ok(mut m) = self.fatal_message.lock() {
            m.get_or_insert(message);
        }
        self.fatal.store(true, Relaxed);
        self.stopping.store(true, Relaxed);
    }

    pub fn fatal_message(&self) -> Option<String> {
        self.fatal_message.lock().ok().and_then(|m| m.clone())
    }

    /// Total xruns: input overruns, output underruns and server-reported ones.
    pub fn xruns(&self) -> u64 {
        self.overruns.load(Relaxed) + self.underruns.load(Relaxed) + self.server_xruns.load(Relaxed)
    }
}

/// Bounded log-binned histogram of durations (2% resolution from 1 µs to ~100 s).
#[derive(Debug, Clone)]
pub struct Timing {
    bins: Vec<u64>,
    count: u64,
    max: f64,
}

const TIMING_STEP: f64 = 1.02;
const TIMING_MIN: f64 = 1e-6;

impl Default for Timing {
    fn default() -> Self {
        Timing { bins: vec![0; 1000], count: 0, max: 0.0 }
    }
}

impl Timing {
    /// Adds one duration in seconds.
    pub fn add(&mut self, seconds: f64) {
        let idx =
            if seconds <= TIMING_MIN { 0 } else { ((seconds / TIMING_MIN).ln() / TIMING_STEP.ln()).ceil() as usize };
        let last = self.bins.len() - 1;
        self.bins[idx.min(last)] += 1;
        self.count += 1;
        self.max = self.max.max(seconds);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0..=1) in seconds (upper edge of its bin), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let target = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Some((TIMING_MIN * TIMING_STEP.powi(i as i32)).min(self.max));
            }
        }
        Some(self.max)
    }
}

/// Stores an `f32` in an atomic as bits.
pub fn store_f32(a: &AtomicU32, v: f32) {
    a.store(v.to_bits(), Relaxed);
}

/// Loads an `f32` stored with [`store_f32`].
pub fn load_f32(a: &AtomicU32) -> f32 {
    f32::from_bits(a.load(Relaxed))
}
