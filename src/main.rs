//! `voxmask`: the command-line front end. Subcommands parse arguments, call the library and
//! report; all separation logic lives in the library.
//!
//! Exit codes (also in the README):
//!   0 success · 1 some inputs failed (the others were written) · 2 bad command line ·
//!   3 the model or inference backend could not be loaded · 4 no input audio found ·
//!   5 (live, devices) no audio host/device or an unsupported configuration ·
//!   6 (live) the session failed while running: device lost, server stopped; recordings kept.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use voxmask::audio::encode::SampleFormat;
use voxmask::dsp::MaskRule;
use voxmask::error::count_in;
use voxmask::model::source as builtin;
use voxmask::model::{BackendChoice, BuiltInModel, Device, ModelInfo, ModelSource, RuntimeOptions};
use voxmask::separation::{Container, SeparateOptions, SeparationReport, Stems, separate_file, unique_stem_names};

mod eval_cmd;

#[cfg(feature = "live")]
mod live_cmd;

const EXIT_PARTIAL: u8 = 1;
const EXIT_MODEL: u8 = 3;
const EXIT_NO_INPUT: u8 = 4;

/// File extensions taken as audio when walking folders.
const AUDIO_EXTENSIONS: &[&str] =
    &["wav", "wave", "flac", "mp3", "ogg", "oga", "m4a", "mp4", "aac", "opus", "aif", "aiff", "caf", "mka", "webm"];

#[derive(Parser)]
#[command(name = "voxmask", version, about = "Separate singing voice from accompaniment")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Separate files or folders into vocals.wav and accompaniment.wav.
    Separate(SeparateArgs),
    /// Score separations with BSS Eval v4 (model, oracle masks, or existing stems).
    Eval(eval_cmd::EvalArgs),
    /// Print a model's contract, signature and provenance (no file: the built-in models).
    Inspect {
        /// The .onnx model (default: every model built into this binary).
        model: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Separate live audio from an input device to an output device.
    #[cfg(feature = "live")]
    Live(live_cmd::LiveArgs),
    /// List audio hosts and devices with their default configurations.
    #[cfg(feature = "live")]
    Devices(live_cmd::DevicesArgs),
}

#[derive(Args, Clone)]
struct RuntimeArgs {
    /// Model file (default: $VOXMASK_MODEL, else the built-in voxmask.onnx; `live` uses the
    /// built-in voxmask-live.onnx).
    #[arg(long, short = 'm')]
    model: Option<PathBuf>,
    /// Inference backend.
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
    /// ONNX Runtime shared library to load (else $VOXMASK_ORT_LIB, $ORT_DYLIB_PATH, Python's onnxruntime, system paths).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Inference threads per job (1–256).
    #[arg(long, default_value_t = 1, value_parser = count_in(1, 256))]
    threads: usize,
    /// Where inference runs.
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
}

#[derive(Args)]
struct SeparateArgs {
    /// Audio files or folders (walked recursively).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output folder; stems go to OUTDIR/<input name>/.
    #[arg(long, short = 'o', default_value = "separated")]
    out_dir: PathBuf,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Mask rule (default: the model's).
    #[arg(long, value_parser = MaskRule::NAMES)]
    mask: Option<String>,
    /// Threshold for --mask paper (default: the model's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Output file type and sample format (default: WAV at the input's depth; float for lossy
    /// inputs). FLAC is lossless and about half the size.
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Which stems to write.
    #[arg(long, value_enum, default_value_t = StemsArg::Both)]
    stems: StemsArg,
    /// Also draw separation.png beside the stems: the input's spectrogram, the vocal mask and
    /// both stems' spectrograms.
    #[arg(long)]
    plot: bool,
    /// Replace existing outputs.
    #[arg(long)]
    overwrite: bool,
    /// Files separated in parallel (each job loads its own session).
    #[arg(long, short = 'j', default_value_t = 1, value_parser = count_in(1, 256))]
    jobs: usize,
    /// Print one JSON summary on stdout.
    #[arg(long)]
    json: bool,
    /// No progress bars or notes.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Explain backend selection and per-file timing.
    #[arg(long, short = 'v')]
    verbose: bool,
    /// Frames per model call (tuning and tests; default from the model size).
    #[arg(long, hide = true)]
    block_frames: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum BackendArg {
    Auto,
    Onnxruntime,
    Tract,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Wav16,
    Wav24,
    Wav32f,
    Flac16,
    Flac24,
}

#[derive(Clone, Copy, ValueEnum)]
enum StemsArg {
    Both,
    Vocals,
    Accompaniment,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Separate(args) => run_separate(args),
        Command::Inspect { model, json } => run_inspect(model, json),
        #[cfg(feature = "live")]
        Command::Live(args) => live_cmd::run_live(args),
        #[cfg(feature = "live")]
        Command::Devices(args) => live_cmd::run_devices(args),
        Command::Eval(args) => eval_cmd::run(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("voxmask: error: {}", voxmask::error::one_line(failure.error.as_ref()));
            ExitCode::from(failure.code)
        }
    }
}

struct Failure {
    error: anyhow::Error,
    code: u8,
}

fn fail(code: u8) -> impl FnOnce(anyhow::Error) -> Failure {
    move |error| Failure { error, code }
}

impl RuntimeArgs {
    fn options(&self) -> RuntimeOptions {
        RuntimeOptions {
            backend: match self.backend {
                BackendArg::Auto => BackendChoice::Auto,
                BackendArg::Onnxruntime => BackendChoice::OnnxRuntime,
                BackendArg::Tract => BackendChoice::Tract,
            },
            ort_lib: self.ort_lib.clone(),
            threads: self.threads,
            device: match self.device {
                DeviceArg::Cpu => Device::Cpu,
                DeviceArg::Cuda => Device::Cuda,
            },
        }
    }

    /// The model for `separate` and `eval`: `--model`, else `$VOXMASK_MODEL`, else the built-in
    /// offline model.
    fn model_source(&self) -> ModelSource {
        self.model_source_or(&builtin::OFFLINE)
    }

    /// `--model`, else `$VOXMASK_MODEL`, else the built-in `default`.
    fn model_source_or(&self, default: &'static BuiltInModel) -> ModelSource {
        ModelSource::choose(self.model.as_deref(), default)
    }
}

fn run_inspect(model: Option<PathBuf>, json: bool) -> Result<ExitCode, Failure> {
    let one_file = model.is_some();
    let sources: Vec<(ModelSource, Option<&str>)> = match model {
        Some(p) => vec![(ModelSource::File(p), None)],
        None => builtin::BUILT_IN.iter().map(|m| (ModelSource::BuiltIn(m), Some(m.role))).collect(),
    };
    let mut described = Vec::new();
    for (source, role) in &sources {
        let (info, _) = source.read().map_err(|e| fail(EXIT_MODEL)(e.into()))?;
        described.push((source.label(), *role, info));
    }
    if json {
        let values: Vec<_> = described.iter().map(|(label, role, info)| inspect_json(label, *role, info)).collect();
        // One file gives one object (as before); the built-in models give an array.
        print_json(&if one_file { values[0].clone() } else { json!(values) });
        return Ok(ExitCode::SUCCESS);
    }
    let text: Vec<String> = described.iter().map(|(label, role, info)| describe(label, *role, info)).collect();
    print_text(&text.join("\n"));
    Ok(ExitCode::SUCCESS)
}

fn inspect_json(path: &Path, role: Option<&str>, info: &ModelInfo) -> serde_json::Value {
    let c = &info.contract;
    json!({
        "path": lossy(path),
        "built_in": role.is_some(),
        "role": role,
        "metadata": info.metadata,
        "inputs": info.inputs,
        "outputs": info.outputs,
        "parameters": info.parameters,
        "opset": info.opset,
        "producer": info.producer,
        "latency_ms": c.latency_samples() as f64 * 1000.0 / c.sample_rate as f64,
    })
}

/// The text `inspect` prints for one model.
fn describe(path: &Path, role: Option<&str>, info: &ModelInfo) -> String {
    use std::fmt::Write;
    let c = &info.contract;
    let mut out = String::new();
    let _ = match role {
        Some(role) => writeln!(out, "model        {} ({role})", path.display()),
        None => writeln!(out, "model        {}", path.display()),
    };
    let _ = writeln!(
        out,
        "architecture {} ({} parameters, opset {}, producer {:?})",
        c.arch, info.parameters, info.opset, info.producer
    );
    let _ = writeln!(out, "sample rate  {} Hz", c.sample_rate);
    let _ = writeln!(
        out,
        "STFT         {} window {} / FFT {} ({} bins) / hop {}",
        c.stft.window.name(),
        c.stft.win_length,
        c.stft.n_fft,
        c.bins(),
        c.stft.hop
    );
    let _ = writeln!(out, "context      {} past frames, {} look-ahead frames", c.context_frames, c.lookahead_frames);
    if c.is_streaming() {
        let states: Vec<String> =
            c.stream_state.iter().map(|s| format!("{} ({}×{})", s.name, s.frames, s.width)).collect();
        let _ = writeln!(out, "streaming    state kept between calls: {}", states.join(", "));
    }
    let _ = writeln!(
        out,
        "latency      {} samples = {:.1} ms (STFT overlap + look-ahead)",
        c.latency_samples(),
        c.latency_samples() as f64 * 1000.0 / c.sample_rate as f64
    );
    let _ = writeln!(out, "feature      {}", c.feature.name());
    let _ = writeln!(out, "output       {:?} of P(vocal) per bin", c.output);
    let _ = writeln!(out, "mask rule    {} (threshold {})", c.mask_rule.name(), c.threshold);
    for (name, dims) in info.inputs.iter().map(|i| ("input ", i)).chain(info.outputs.iter().map(|o| ("output", o))) {
        let shape: Vec<String> = dims.1.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
        let _ = writeln!(out, "{name}       {} [{}]", dims.0, shape.join(", "));
    }
    let provenance: Vec<_> = c.provenance().collect();
    if provenance.is_empty() {
        let _ = writeln!(out, "provenance   (none recorded)");
    }
    for (k, v) in provenance {
        let _ = writeln!(out, "{:<12} {v}", format!("train.{k}"));
    }
    out
}

/// Peak resident memory of this process (Linux `VmHWM`), in MB; 0 where unknown.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn collect_inputs(inputs: &[PathBuf], out_dir: &Path, notes: &mut Vec<String>) -> Vec<PathBuf> {
    let out_real = out_dir.canonicalize().ok();
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, out_real.as_deref(), &mut files, notes);
        } else {
            // Named files are always attempted, so that a bad one gets its own error.
            files.push(input.clone());
        }
    }
    files
}

fn same_folder(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Prints a JSON document on stdout. A closed pipe (`voxmask ... --json | head`) is the
/// reader's choice, not an error worth a panic.
fn print_json(value: &serde_json::Value) {
    print_text(&format!("{}\n", serde_json::to_string_pretty(value).unwrap_or_default()));
}

/// Writes to stdout, ignoring a closed pipe (`voxmask inspect | head`): `println!` would panic.
fn print_text(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// A path as text for JSON: file names need not be UTF-8 (serde refuses such a `PathBuf`, and
/// `json!` would panic), so invalid bytes become U+FFFD.
fn lossy(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn walk(dir: &Path, skip: Option<&Path>, files: &mut Vec<PathBuf>, notes: &mut Vec<String>) {
    walk_once(dir, skip, &mut std::collections::HashSet::new(), files, notes);
}

/// Walks `dir` recursively, entering each real folder once (a symlink back to a folder already
/// walked would otherwise loop forever or repeat files) and taking only regular files: a FIFO,
/// device or socket named like audio would block or fail, so it is skipped with a note.
fn walk_once(
    dir: &Path,
    skip: Option<&Path>,
    visited: &mut std::collections::HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    notes: &mut Vec<String>,
) {
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if skip == Some(real.as_path()) {
        return;
    }
    if !visited.insert(real) {
        notes.push(format!("{}: skipped (a folder already walked, reached again through a link)", dir.display()));
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            notes.push(format!("{}: cannot list folder: {e}", dir.display()));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            walk_once(&p, skip, visited, files, notes);
        } else {
            let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
            let audio = ext.as_deref().is_some_and(|e| AUDIO_EXTENSIONS.contains(&e));
            if audio && !std::fs::metadata(&p).is_ok_and(|m| m.is_file()) {
                notes.push(format!("{}: skipped (not a regular file)", p.display()));
            } else if audio {
                files.push(p);
            } else {
                notes.push(format!("{}: skipped (not an audio file extension)", p.display()));
            }
        }
    }
}

/// Stops `separate` cleanly on SIGINT or SIGTERM: the flag holds the signal's number, the file in
/// progress is abandoned (its temporaries removed), no new file starts. A second signal ends the
/// process at once.
fn interrupt_on_signals() -> Arc<AtomicUsize> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let interrupt = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        // Registered first, so it only fires once `seen` was set by an earlier signal.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&seen));
        let _ = signal_hook::flag::register(signal, Arc::clone(&seen));
        let _ = signal_hook::flag::register_usize(signal, Arc::clone(&interrupt), signal as usize);
    }
    interrupt
}

fn signal_name(signal: usize) -> &'static str {
    match signal as i32 {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

fn run_separate(args: SeparateArgs) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let interrupt = interrupt_on_signals();
    let model_source = args.runtime.model_source();
    let runtime = args.runtime.options();
    let jobs = args.jobs.max(1);
    let mut notes = Vec::new();
    if let Some(same) = args.inputs.iter().find(|i| i.is_dir() && same_folder(i, &args.out_dir)) {
        return Err(Failure {
            error: anyhow!(
                "{}: is also the output folder; the stems would land among the inputs (and be taken as inputs next time): choose another -o",
                same.display()
            ),
            code: 2,
        });
    }
    let files = collect_inputs(&args.inputs, &args.out_dir, &mut notes);
    let show = !args.quiet && !args.json;
    if show {
        for n in &notes {
            eprintln!("voxmask: note: {n}");
        }
    }
    if files.is_empty() {
        return Err(Failure { error: anyhow!("no audio files found in the given inputs"), code: EXIT_NO_INPUT });
    }
    let mut models = Vec::with_capacity(jobs.min(files.len()));
    for _ in 0..jobs.min(files.len()) {
        models.push(
            model_source
                .load(&runtime)
                .with_context(|| format!("loading model {model_source}"))
                .map_err(fail(EXIT_MODEL))?,
        );
    }
    let backend = models[0].backend().clone();
    if args.verbose && !args.json {
        if let Some(sel) = voxmask::model::backend::selected() {
            for n in &sel.notes {
                eprintln!("voxmask: backend: {n}");
            }
        }
        eprintln!("voxmask: backend {backend}, model {model_source}");
    }
    let contract = models[0].contract().clone();
    let opts = SeparateOptions {
        mask: MaskRule::choose(args.mask.as_deref(), args.threshold, contract.mask_rule, contract.threshold),
        format: args.format.map(|f| match f {
            FormatArg::Wav16 | FormatArg::Flac16 => SampleFormat::Int16,
            FormatArg::Wav24 | FormatArg::Flac24 => SampleFormat::Int24,
            FormatArg::Wav32f => SampleFormat::Float32,
        }),
        overwrite: args.overwrite,
        block_frames: args.block_frames,
        stem_name: None,
        container: match args.format {
            Some(FormatArg::Flac16 | FormatArg::Flac24) => Container::Flac,
            _ => Container::Wav,
        },
        stems: match args.stems {
            StemsArg::Both => Stems::Both,
            StemsArg::Vocals => Stems::Vocals,
            StemsArg::Accompaniment => Stems::Accompaniment,
        },
        plot: args.plot,
        interrupt: Some(Arc::clone(&interrupt)),
    };
    if let Some(t) = args.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
        return Err(Failure { error: anyhow!("--threshold {t} is outside [0, 1]"), code: 2 });
    }

    let bars = MultiProgress::with_draw_target(if show && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let overall = bars.add(ProgressBar::new(files.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} files {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    overall.set_prefix("total");

    let names = unique_stem_names(&files);
    let queue = Mutex::new(files.iter().zip(&names).enumerate());
    let results: Mutex<Vec<(usize, Result<SeparationReport, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for mut model in models {
            let (queue, results, bars, overall, opts, out_dir) =
                (&queue, &results, &bars, &overall, &opts, &args.out_dir);
            scope.spawn(move || {
                loop {
                    if opts.interrupt.as_ref().is_some_and(|i| i.load(Ordering::Relaxed) != 0) {
                        break;
                    }
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((index, (file, name))) = next else { break };
                    let opts = SeparateOptions { stem_name: Some(name.clone()), ..opts.clone() };
                    let bar = bars.insert_before(overall, ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {percent:>3}% {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_prefix("job");
                    bar.set_message(file.display().to_string());
                    let outcome = separate_file(&mut model, file, out_dir, &opts, &mut |done, total| {
                        if let Some(t) = total {
                            bar.set_length(t);
                        }
                        bar.set_position(done);
                    })
                    .map_err(|e| e.to_string());
                    bar.finish_and_clear();
                    overall.inc(1);
                    if let Ok(mut r) = results.lock() {
                        r.push((index, outcome));
                    }
                }
            });
        }
    });
    overall.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);

    let wall = started.elapsed().as_secs_f64();
    let mut failed = 0;
    let mut audio_seconds = 0.0;
    let mut entries = Vec::new();
    for (i, outcome) in &results {
        match outcome {
            Ok(report) => {
                audio_seconds += report.audio_seconds;
                if show {
                    for n in &report.notes {
                        eprintln!("voxmask: note: {n}");
                    }
                }
                let folder = report.vocals.iter().chain(&report.accompaniment).next().and_then(|p| p.parent());
                if show {
                    eprintln!(
                        "voxmask: {} -> {} ({:.1} s audio in {:.2} s)",
                        report.input.display(),
                        folder.map_or(String::new(), |p| p.display().to_string()),
                        report.audio_seconds,
                        report.wall_seconds
                    );
                }
                let clip = report.clipping;
                if clip.samples > 0 && !args.json && !args.quiet {
                    // Clipping is reported even without a terminal: it changes the sound.
                    eprintln!(
                        "voxmask: note: {}: {} samples clipped to fit the integer format (peak {:.3} = {:+.1} dBFS); \
                         --format wav32f keeps them, or lower the input's level by {:.1} dB",
                        report.input.display(),
                        clip.samples,
                        clip.peak,
                        20.0 * clip.peak.log10(),
                        20.0 * clip.peak.log10()
                    );
                }
                let path = |p: &Option<PathBuf>| p.as_deref().map(lossy);
                entries.push(json!({"input": lossy(&report.input), "ok": true, "vocals": path(&report.vocals),
                    "accompaniment": path(&report.accompaniment), "picture": path(&report.picture),
                    "sample_rate": report.sample_rate, "channels": report.channels,
                    "audio_seconds": report.audio_seconds, "wall_seconds": report.wall_seconds,
                    "clipped_samples": clip.samples, "clipping_peak": clip.peak}));
            }
            Err(message) => {
                failed += 1;
                // Errors are printed even with --quiet: a failed file must never pass silently.
                eprintln!("voxmask: error: {message}");
                entries.push(json!({"input": lossy(&files[*i]), "ok": false, "error": message}));
            }
        }
    }
    if args.json {
        let summary = json!({
            "inputs": entries,
            "model": lossy(&model_source.label()),
            "backend": backend.name(),
            "backend_detail": backend.to_string(),
            "threads": args.runtime.threads,
            "jobs": jobs,
            "succeeded": results.len() - failed,
            "failed": failed,
            "audio_seconds": audio_seconds,
            "wall_seconds": wall,
            "realtime_factor": if wall > 0.0 { audio_seconds / wall } else { 0.0 },
            "peak_rss_mb": peak_rss_mb(),
            "interrupted": match interrupt.load(Ordering::Relaxed) { 0 => None, s => Some(signal_name(s)) },
        });
        print_json(&summary);
    }
    let signal = interrupt.load(Ordering::Relaxed);
    if signal != 0 {
        // Said even with --quiet: the run did not do all it was asked.
        eprintln!(
            "voxmask: interrupted by {}: {} file(s) separated and kept, {} failed or abandoned (no partial outputs left), {} not started",
            signal_name(signal),
            results.len() - failed,
            failed,
            files.len() - results.len()
        );
        return Ok(ExitCode::from((128 + signal).min(255) as u8));
    }
    Ok(if failed > 0 { ExitCode::from(EXIT_PARTIAL) } else { ExitCode::SUCCESS })
}
