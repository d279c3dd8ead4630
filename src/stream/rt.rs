//! The audio-callback side of live separation. These two structs are everything that runs on a
//! device's real-time thread: they move interleaved samples between the device buffers and two
//! lock-free single-producer/single-consumer rings (rtrb), apply the monitor selection and gain,
//! and count xruns in atomics. No allocation, lock, log, system call or model call happens here;
//! `tests/live.rs` runs both under `assert_no_alloc`.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed};

use rtrb::{Consumer, Producer};

use super::{Monitor, Shared};

/// Values per frame in the output ring: vocals, accompaniment and the delayed input, each with
/// the engine's channels.
pub const STREAMS: usize = 3;

/// Input-device callback: device buffer → input ring.
pub struct InputCallback {
    producer: Producer<f32>,
    channels: usize,
    shared: Arc<Shared>,
}

impl InputCallback {
    /// `channels` is the device's interleaved channel count.
    pub fn new(producer: Producer<f32>, channels: usize, shared: Arc<Shared>) -> Self {
        InputCallback { producer, channels: channels.max(1), shared }
    }

    /// Called with each interleaved input buffer. A full ring drops the frames that do not fit
    /// and counts an overrun.
    pub fn process(&mut self, data: &[f32]) {
        // After a stop request the session's input is closed: the inference thread drains what
        // was accepted, so the recording holds exactly the frames counted here.
        if self.shared.stopping.load(Relaxed) {
            return;
        }
        let frames = data.len() / self.channels;
        let room = self.producer.slots() / self.channels;
        let n = frames.min(room);
        if n < frames {
            self.shared.overruns.fetch_add(1, Relaxed);
        }
        if n > 0
            && let Ok(chunk) = self.producer.write_chunk_uninit(n * self.channels)
        {
            chunk.fill_from_iter(data[..n * self.channels].iter().copied());
        }
        self.shared.input_frames.fetch_add(frames as u64, Relaxed);
    }
}

/// Output-device callback: output ring → device buffer, through the monitor selection.
pub struct OutputCallback {
    consumer: Consumer<f32>,
    engine_channels: usize,
    device_channels: usize,
    shared: Arc<Shared>,
}

impl OutputCallback {
    /// `engine_channels` as separated; `device_channels` is the output's interleaved count.
    pub fn new(consumer: Consumer<f32>, engine_channels: usize, device_channels: usize, shared: Arc<Shared>) -> Self {
        OutputCallback {
            consumer,
            engine_channels: engine_channels.max(1),
            device_channels: device_channels.max(1),
            shared,
        }
    }

    /// Fills one interleaved output buffer. Before the inference thread has primed the ring the
    /// output is silence; afterwards a short ring plays what it has, then silence, and counts an
    /// underrun (xrun).
    pub fn process(&mut self, data: &mut [f32]) {
        let oc = self.device_channels;
        let ec = self.engine_channels;
        let stride = STREAMS * ec;
        let frames = data.len() / oc;
        if !self.shared.primed.load(Acquire) {
            data.fill(0.0);
            return;
        }
        let available = self.consumer.slots() / stride;
        let n = frames.min(available);
        let position = self.shared.output_frames.fetch_add(frames as u64, Relaxed);
        if n < frames && !self.shared.stopping.load(Relaxed) {
            self.shared.underruns.fetch_add(1, Relaxed);
            self.shared.underrun_frames.fetch_add((frames - n) as u64, Relaxed);
            if position >= self.shared.warmup_frames.load(Relaxed) {
                self.shared.underruns_after_warmup.fetch_add(1, Relaxed);
            }
        }
        let monitor = Monitor::from_u8(self.shared.monitor.load(Relaxed));
        let gain = f32::from_bits(self.shared.gain.load(Relaxed));
        if let Ok(chunk) = self.consumer.read_chunk(n * stride) {
            let (a, b) = chunk.as_slices();
            let at = |i: usize| if i < a.len() { a[i] } else { b[i - a.len()] };
            for f in 0..n {
                let base = f * stride;
                for o in 0..oc {
                    let value = match monitor {
                        Monitor::Vocals => at(base + o.min(ec - 1)),
                        Monitor::Accompaniment => at(base + ec + o.min(ec - 1)),
                        Monitor::Mix => at(base + 2 * ec + o.min(ec - 1)),
                        Monitor::Split => {
                            // Left: vocals, right: accompaniment, each downmixed to mono.
                            let stem = if o % 2 == 0 || oc == 1 { 0 } else { ec };
                            let mut sum = 0.0;
                            for c in 0..ec {
                                sum += at(base + stem + c);
                            }
                            sum / ec as f32
                        }
                    };
                    data[f * oc + o] = value * gain;
                }
            }
            chunk.commit_all();
        }
        data[n * oc..].fill(0.0);
    }
}
