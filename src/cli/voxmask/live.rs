//! `voxmask live` and `voxmask devices`: the command-line side of live separation. The separator,
//! the callbacks and the inference thread live in `voxmask::stream`; devices in
//! `voxmask::audio::device`.
//!
//! Exit codes added by these commands (also in the README): 5 no audio host/device, or the
//! device refuses the configuration (nothing was recorded); 6 the session ended abnormally
//! (device disappeared, audio server stopped, inference or disk failure) — the recording, if
//! any, is finalised and valid.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use serde_json::json;

use voxmask::audio::device::{self, Direction, Streams};
use voxmask::dsp::MaskRule;
use voxmask::stream::worker::{BufferPolicy, Recorder, Worker};
use voxmask::stream::{InputCallback, LiveConfig, LiveSeparator, Monitor, OutputCallback, Shared, load_f32};

use super::{EXIT_DEVICE, EXIT_MODEL, EXIT_SESSION_FAILED, EXIT_USAGE, Failure, RuntimeArgs, fail, print_json};

/// Algorithmic latency the shipped live model keeps within at 44.1 and 48 kHz.
const LIVE_LATENCY_MS: f64 = 50.0;

/// Seconds of output before xruns count as "after warm-up".
const WARMUP_SECONDS: f64 = 0.5;
/// The adaptive output buffer: where it starts (at least two periods), its smallest step after
/// an underrun, and its cap. Heard latency is the engine's (under 50 ms) + buffer + one period,
/// so starting at 10 ms keeps it near 65 ms at 48 kHz / 256.
const BUFFER_START_MS: f64 = 10.0;
const BUFFER_STEP_MS: f64 = 5.0;
const BUFFER_CAP_MS: f64 = 200.0;
/// Largest fixed `--buffer-ms`.
const MAX_BUFFER_MS: f64 = 2000.0;

#[derive(Clone, Copy, ValueEnum)]
pub enum MonitorArg {
    Vocals,
    Accompaniment,
    Mix,
    Split,
}

impl From<MonitorArg> for Monitor {
    fn from(m: MonitorArg) -> Self {
        match m {
            MonitorArg::Vocals => Monitor::Vocals,
            MonitorArg::Accompaniment => Monitor::Accompaniment,
            MonitorArg::Mix => Monitor::Mix,
            MonitorArg::Split => Monitor::Split,
        }
    }
}

#[derive(Args)]
pub struct LiveArgs {
    /// Audio host (alsa, jack, ...; default: the platform's default host).
    #[arg(long)]
    host: Option<String>,
    /// Input device: `default`, an id from `voxmask devices` (e.g. jack:input) or part of its name.
    #[arg(long)]
    input: Option<String>,
    /// Output device, as for --input.
    #[arg(long)]
    output: Option<String>,
    /// What to hear; switch while running with the keys v, a, m, s (or 1-4).
    #[arg(long, value_enum, default_value_t = MonitorArg::Vocals)]
    monitor: MonitorArg,
    /// Output gain (linear factor).
    #[arg(long, default_value_t = 1.0)]
    gain: f32,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Mask rule (default: the model's).
    #[arg(long, value_parser = MaskRule::NAMES)]
    mask: Option<String>,
    /// Threshold for --mask paper (default: the model's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Record input.wav, vocals.wav and accompaniment.wav (32-bit float) into this folder.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<f64>,
    /// Print one JSON summary on stdout at exit.
    #[arg(long)]
    json: bool,
    /// No status line or notes.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// STFT frames per model call: 1 is the lowest latency, more costs less CPU per frame.
    #[arg(long, default_value_t = 1)]
    block_frames: usize,
    /// Fix the output buffer (ms of silence primed before the first frame, 0–2000) that absorbs
    /// the inference thread's bursts. Default: adaptive, starting at 10 ms (at least two periods)
    /// and growing after each underrun, up to 200 ms.
    #[arg(long, value_name = "MS")]
    buffer_ms: Option<f64>,
}

#[derive(Args)]
pub struct DevicesArgs {
    /// Only this host (default: every available host).
    #[arg(long)]
    host: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run_devices(args: DevicesArgs) -> Result<ExitCode, Failure> {
    let hosts = match &args.host {
        Some(h) => vec![h.clone()],
        None => device::available_hosts(),
    };
    let mut all = Vec::new();
    let mut problems = Vec::new();
    for name in &hosts {
        match device::open_host(Some(name)).and_then(|h| device::list_devices(&h)) {
            Ok(list) => all.push((name.clone(), list)),
            Err(e) => problems.push((name.clone(), e.to_string())),
        }
    }
    if args.host.is_some() && all.is_empty() {
        let (_, why) = problems.pop().unwrap_or_default();
        return Err(Failure { error: anyhow!(why), code: EXIT_DEVICE });
    }
    if args.json {
        let value = json!({
            "default_host": cpal_default_host_name(),
            "hosts": all.iter().map(|(h, d)| json!({"host": h, "devices": d})).collect::<Vec<_>>(),
            "unavailable": problems.iter().map(|(h, e)| json!({"host": h, "error": e})).collect::<Vec<_>>(),
        });
        print_json(&value);
        return Ok(ExitCode::SUCCESS);
    }
    for (host, devices) in &all {
        println!("host {host}{}", if devices.is_empty() { " (no devices)" } else { "" });
        for d in devices {
            let mark = match (d.default_input, d.default_output) {
                (true, true) => " [default in/out]",
                (true, false) => " [default in]",
                (false, true) => " [default out]",
                _ => "",
            };
            println!("  {}  ({}){mark}", d.name, d.id);
            for (dir, c) in [("in ", &d.input), ("out", &d.output)] {
                if let Some(c) = c {
                    let period = match (c.buffer_min, c.buffer_max) {
                        (Some(a), Some(b)) if a == b => format!(", period {a}"),
                        (Some(a), Some(b)) => format!(", period {a}-{b}"),
                        _ => String::new(),
                    };
                    println!("    {dir} {} ch, {} Hz, {}{period}", c.channels, c.sample_rate, c.sample_format);
                }
            }
        }
    }
    for (host, e) in &problems {
        println!("host {host}: unavailable ({e})");
    }
    Ok(ExitCode::SUCCESS)
}

fn cpal_default_host_name() -> String {
    cpal::default_host().id().to_string()
}

/// Puts the terminal in unbuffered, no-echo mode while the session runs (restored on drop).
struct RawTerminal(bool);

impl RawTerminal {
    fn enable() -> Self {
        let ok = std::io::stdin().is_terminal()
            && std::process::Command::new("stty")
                .args(["-icanon", "-echo", "min", "1"])
                .stdin(std::process::Stdio::inherit())
                .status()
                .is_ok_and(|s| s.success());
        RawTerminal(ok)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::process::Command::new("stty")
                .args(["icanon", "echo"])
                .stdin(std::process::Stdio::inherit())
                .status();
        }
    }
}

fn db(v: f32) -> String {
    if v <= 1e-6 { " -inf".into() } else { format!("{:5.1}", 20.0 * v.log10()) }
}

pub fn run_live(args: LiveArgs) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    check_args(&args)?;
    let model_source = args.runtime.model_source_or(&voxmask::model::source::LIVE);
    let model = model_source
        .load(&args.runtime.options())
        .with_context(|| format!("loading model {model_source}"))
        .map_err(fail(EXIT_MODEL))?;
    let backend = model.backend().clone();
    let contract = model.contract().clone();
    let rule = MaskRule::choose(args.mask.as_deref(), args.threshold, contract.mask_rule, contract.threshold)
        .unwrap_or(contract.mask_rule);
    let model_latency_ms = contract.latency_samples() as f64 * 1000.0 / contract.sample_rate as f64;
    if model_latency_ms > LIVE_LATENCY_MS && !args.quiet {
        // A look-ahead model still runs live; say up front what it costs.
        eprintln!(
            "voxmask: note: {} looks {} frames ahead: at least {model_latency_ms:.1} ms of algorithmic latency, \
             above the {LIVE_LATENCY_MS} ms of the live model ({})",
            model_source,
            contract.lookahead_frames,
            voxmask::model::source::LIVE.file
        );
    }

    let dev = |e: voxmask::Error| Failure { error: e.into(), code: EXIT_DEVICE };
    let host = device::open_host(args.host.as_deref()).map_err(dev)?;
    let host_name = host.id().to_string();
    let input_device = device::find_device(&host, Direction::Input, args.input.as_deref()).map_err(dev)?;
    let output_device = device::find_device(&host, Direction::Output, args.output.as_deref()).map_err(dev)?;
    let (input_config, period) = device::stream_config(&input_device, Direction::Input, None).map_err(dev)?;
    let rate = input_config.sample_rate;
    let (output_config, _) = device::stream_config(&output_device, Direction::Output, Some(rate)).map_err(dev)?;
    let in_channels = input_config.channels as usize;
    let channels = in_channels.clamp(1, 2);

    let granularity = period.map_or(1, |p| p as usize).max(1);
    let cfg = LiveConfig {
        channels,
        device_rate: rate,
        block_frames: args.block_frames,
        granularity,
        max_chunk: 1024,
        max_call: voxmask::stream::worker::max_read_frames(granularity),
    };
    let separator = LiveSeparator::new(model, rule, cfg).map_err(|e| Failure { error: e.into(), code: EXIT_USAGE })?;
    let latency = separator.latency_samples();
    let frames_of = |ms: f64| (ms / 1000.0 * rate as f64).ceil() as usize;
    let preroll = frames_of(args.buffer_ms.unwrap_or(BUFFER_START_MS)).max(2 * granularity);
    let buffer = BufferPolicy {
        adaptive: args.buffer_ms.is_none(),
        step_frames: frames_of(BUFFER_STEP_MS).max(granularity),
        cap_frames: frames_of(BUFFER_CAP_MS).max(preroll),
    };
    // Four seconds of input: the inference thread would have to stall that long to lose a frame.
    let ring_frames = (4 * rate as usize).max(8 * granularity) + preroll + buffer.cap_frames;
    let (in_producer, in_consumer) = rtrb::RingBuffer::<f32>::new(ring_frames * in_channels);
    let (out_producer, out_consumer) =
        rtrb::RingBuffer::<f32>::new(ring_frames * voxmask::stream::rt::STREAMS * channels);
    let shared = Arc::new(Shared::new(args.monitor.into(), args.gain));
    shared.warmup_frames.store((WARMUP_SECONDS * rate as f64) as u64, Relaxed);

    let streams = Streams::start(
        &input_device,
        input_config,
        InputCallback::new(in_producer, in_channels, shared.clone()),
        &output_device,
        output_config,
        OutputCallback::new(out_consumer, channels, output_config.channels as usize, shared.clone()),
        &shared,
        period,
    )
    .map_err(dev)?;

    let recorder = match &args.record {
        Some(dir) => match Recorder::create(dir, rate, channels) {
            Ok(r) => Some(r),
            Err(e) => {
                drop(streams);
                return Err(Failure { error: anyhow!(e).context("--record"), code: EXIT_USAGE });
            }
        },
        None => None,
    };
    let worker = Worker {
        separator,
        input: in_consumer,
        output: out_producer,
        input_channels: in_channels,
        preroll_frames: preroll,
        shared: shared.clone(),
        recorder,
        buffer,
        sample_rate: rate,
    };
    let worker = std::thread::Builder::new()
        .name("voxmask-inference".into())
        .spawn(move || worker.run())
        .map_err(|e| Failure { error: anyhow!("starting the inference thread: {e}"), code: EXIT_SESSION_FAILED })?;

    {
        let s = shared.clone();
        // A second Ctrl-C while stopping is ignored; the recording is being finalised.
        let _ = ctrlc::set_handler(move || s.stopping.store(true, Relaxed));
    }
    let interactive = std::io::stderr().is_terminal() && !args.json && !args.quiet;
    let raw = if std::io::stdin().is_terminal() { RawTerminal::enable() } else { RawTerminal(false) };
    read_keys(shared.clone());
    if interactive {
        eprintln!(
            "voxmask: live on {host_name}: {} -> {} at {rate} Hz, {channels} ch; latency {:.1} ms + {:.1} ms buffer; \
             keys: v vocals, a accompaniment, m mix, s split, q quit",
            device::device_name(&input_device),
            device::device_name(&output_device),
            latency as f64 * 1000.0 / rate as f64,
            preroll as f64 * 1000.0 / rate as f64,
        );
    }

    let deadline = args.duration.map(|d| started + Duration::from_secs_f64(d));
    let mut last_status = Instant::now();
    // The buffer the listener hears: pre-roll, gaps of underruns, silence added after them.
    let heard_buffer = || preroll as u64 + shared.added_frames.load(Relaxed) + shared.underrun_frames.load(Relaxed);
    let mut reported_buffer = preroll as u64;
    let mut reported_realtime = false;
    let notes = !args.quiet && !args.json;
    let budget_ms = (args.block_frames * contract.stft.hop) as f64 * 1000.0 / contract.sample_rate as f64;
    let mut reason = "interrupted";
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if shared.fatal.load(Relaxed) {
            reason = "failed";
            break;
        }
        if shared.stopping.load(Relaxed) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            reason = "duration";
            break;
        }
        if notes && !reported_realtime && shared.realtime.load(Relaxed) == 2 {
            reported_realtime = true;
            eprintln!(
                "\rvoxmask: note: the inference thread runs at normal priority (no real-time scheduling allowed)\x1b[K"
            );
        }
        let buffer_now = heard_buffer();
        if notes && buffer_now != reported_buffer {
            eprintln!(
                "\rvoxmask: note: output buffer {:.1} ms after an underrun (was {:.1} ms)\x1b[K",
                buffer_now as f64 * 1000.0 / rate as f64,
                reported_buffer as f64 * 1000.0 / rate as f64
            );
        }
        reported_buffer = buffer_now;
        if interactive && last_status.elapsed() >= Duration::from_millis(250) {
            last_status = Instant::now();
            let line = status_line(&shared, rate, latency, buffer_now, budget_ms, backend.name());
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
        }
    }
    shared.stopping.store(true, Relaxed);
    let report = worker.join().unwrap_or_default();
    if shared.fatal.load(Relaxed) {
        reason = "failed";
    }
    drop(raw);
    if interactive {
        eprintln!();
    }
    // A stream whose server died may block in its teardown; the process is about to exit anyway.
    if reason == "failed" {
        std::mem::forget(streams);
    } else {
        drop(streams);
    }

    let wall = started.elapsed().as_secs_f64();
    let ms = |samples: f64| samples * 1000.0 / rate as f64;
    let p = |q: f64| report.block_time.quantile(q).map(|s| s * 1000.0);
    let audio_seconds = report.frames as f64 / rate as f64;
    let engine_seconds = shared.engine_nanos.load(Relaxed) as f64 / 1e9;
    let fatal = shared.fatal_message();
    let xruns_after_warmup = shared.underruns_after_warmup.load(Relaxed) + shared.overruns.load(Relaxed);
    let summary = json!({
        "ok": fatal.is_none() && report.recording_error.is_none(),
        "end": reason,
        "error": fatal,
        "latency_ms": ms(latency as f64),
        "latency_samples": latency,
        // What the listener hears: the engine's latency, the output buffer as it ended (pre-roll,
        // underrun gaps, growth) and one period.
        "buffer_ms": ms(heard_buffer() as f64),
        "total_latency_ms": ms((latency as u64 + heard_buffer() + granularity as u64) as f64),
        "buffer": {
            "adaptive": buffer.adaptive,
            "start_ms": ms(preroll as f64),
            "step_ms": ms(buffer.step_frames as f64),
            "cap_ms": ms(buffer.cap_frames as f64),
            "underrun_gap_ms": ms(shared.underrun_frames.load(Relaxed) as f64),
            "added_ms": ms(shared.added_frames.load(Relaxed) as f64),
            "changes": report.buffer_changes.iter().map(|c| json!({"at_seconds": c.at_seconds, "buffer_ms": ms(c.buffer_frames as f64)})).collect::<Vec<_>>(),
        },
        "realtime": report.realtime,
        "input_frames_delivered": shared.input_frames.load(Relaxed),
        "input_frames_recorded": report.recording.as_ref().map(|_| report.recorded_frames),
        "sample_rate": rate,
        "channels": channels,
        "period_frames": period,
        "xruns": shared.xruns(),
        "xruns_after_warmup": xruns_after_warmup,
        "xrun_detail": {
            // Frames the devices asked for: zero on one side means that callback never ran
            // (for JACK: the graph stalled before reaching this client).
            "input_callback_frames": shared.input_frames.load(Relaxed),
            "output_callback_frames": shared.output_frames.load(Relaxed),
            "input_overruns": shared.overruns.load(Relaxed),
            "output_underruns": shared.underruns.load(Relaxed),
            "output_underruns_after_warmup": shared.underruns_after_warmup.load(Relaxed),
            "server_xruns": shared.server_xruns.load(Relaxed),
            "output_ring_overflow_frames": report.output_overflow,
            "engine_starved_frames": report.starved_frames,
        },
        "blocks": report.model_blocks,
        "block_frames": args.block_frames,
        "block_budget_ms": budget_ms,
        "model_ms_per_block_p50": p(0.5),
        "model_ms_per_block_p99": p(0.99),
        "cpu_load": if audio_seconds > 0.0 { engine_seconds / audio_seconds } else { 0.0 },
        "audio_seconds": audio_seconds,
        "wall_seconds": wall,
        "backend": backend.name(),
        "backend_detail": backend.to_string(),
        "model": crate::lossy(&model_source.label()),
        "mask": rule.name(),
        "monitor": Monitor::from_u8(shared.monitor.load(Relaxed)).name(),
        "devices": {
            "host": host_name,
            "input": {"id": device::device_id(&input_device), "name": device::device_name(&input_device), "channels": in_channels},
            "output": {"id": device::device_id(&output_device), "name": device::device_name(&output_device), "channels": output_config.channels},
        },
        "recording": report.recording,
        "recording_error": report.recording_error,
    });
    if args.json {
        print_json(&summary);
    } else if !args.quiet {
        eprintln!(
            "voxmask: {:.1} s live, {} model blocks (p50 {:.2} ms, p99 {:.2} ms of {:.1} ms), xruns {}, latency {:.1} ms",
            audio_seconds,
            report.model_blocks,
            p(0.5).unwrap_or(0.0),
            p(0.99).unwrap_or(0.0),
            budget_ms,
            shared.xruns(),
            ms(latency as f64)
        );
        if let Some(r) = &report.recording {
            eprintln!("voxmask: recorded {}, {}, {}", r.input.display(), r.vocals.display(), r.accompaniment.display());
        }
    }
    if let Some(e) = &report.recording_error {
        return Err(Failure { error: anyhow!("finalising the recording: {e}"), code: EXIT_SESSION_FAILED });
    }
    if let Some(message) = fatal {
        let kept = if report.recording.is_some() { " (recording finalised)" } else { "" };
        return Err(Failure { error: anyhow!("{message}{kept}"), code: EXIT_SESSION_FAILED });
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses option values `live` cannot honour, before any device or model is touched.
fn check_args(args: &LiveArgs) -> Result<(), Failure> {
    if !(args.gain.is_finite() && args.gain >= 0.0) {
        return Err(Failure {
            error: anyhow!("--gain {} must be a finite, non-negative factor", args.gain),
            code: EXIT_USAGE,
        });
    }
    if let Some(t) = args.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(Failure { error: anyhow!("--threshold {t} is outside [0, 1]"), code: EXIT_USAGE });
    }
    if args.duration.is_some_and(|d| !(d.is_finite() && d > 0.0))
        || args.buffer_ms.is_some_and(|b| !(b.is_finite() && (0.0..=MAX_BUFFER_MS).contains(&b)))
    {
        return Err(Failure {
            error: anyhow!("--duration must be a positive number of seconds, --buffer-ms within 0..={MAX_BUFFER_MS}"),
            code: EXIT_USAGE,
        });
    }
    if args.block_frames == 0 || args.block_frames > 1024 {
        return Err(Failure { error: anyhow!("--block-frames must be within 1..=1024"), code: EXIT_USAGE });
    }
    Ok(())
}

/// Reads keys from a terminal, or commands piped on stdin by a script, on a thread of their own:
/// v a m s (or 1-4) choose what is monitored, space cycles, q stops.
fn read_keys(shared: Arc<Shared>) {
    let _ = std::thread::Builder::new().name("voxmask-keys".into()).spawn(move || {
        let mut byte = [0u8; 1];
        let mut stdin = std::io::stdin();
        while let Ok(1) = stdin.read(&mut byte) {
            if let Some(m) = Monitor::from_key(byte[0]) {
                shared.monitor.store(m.as_u8(), Relaxed);
            } else if matches!(byte[0], b'q' | b'Q') {
                shared.stopping.store(true, Relaxed);
            } else if byte[0] == b' ' {
                let next = (shared.monitor.load(Relaxed) + 1) % 4;
                shared.monitor.store(next, Relaxed);
            }
        }
    });
}

/// The interactive status line: what is monitored, levels, latency and buffer, model time per
/// block against its budget, CPU load, xruns, real-time scheduling and backend.
fn status_line(shared: &Shared, rate: u32, latency: usize, buffer: u64, budget_ms: f64, backend: &str) -> String {
    let frames = shared.engine_frames.load(Relaxed).max(1);
    let load = shared.engine_nanos.load(Relaxed) as f64 / 1e9 / (frames as f64 / rate as f64);
    let block_ms = shared.last_block_nanos.load(Relaxed) as f64 / 1e6;
    format!(
        "[{:<13}] in {} dB  voc {} dB  acc {} dB | latency {:.1} + buffer {:.1} ms | model {:.2}/{:.1} ms | cpu {:3.0}% | xruns {} | rt {} | {}",
        Monitor::from_u8(shared.monitor.load(Relaxed)).name(),
        db(load_f32(&shared.level_input)),
        db(load_f32(&shared.level_vocals)),
        db(load_f32(&shared.level_accomp)),
        latency as f64 * 1000.0 / rate as f64,
        buffer as f64 * 1000.0 / rate as f64,
        block_ms,
        budget_ms,
        load * 100.0,
        shared.xruns(),
        match shared.realtime.load(Relaxed) {
            1 => "yes",
            2 => "no",
            _ => "?",
        },
        backend,
    )
}
