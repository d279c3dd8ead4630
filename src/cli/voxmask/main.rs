//! `voxmask`: the command-line program. One file per subcommand (`separate.rs`, `eval.rs`,
//! `live.rs` with `devices`, `inspect.rs`); this file holds what they share: the argument group
//! for choosing and running a model, exit codes, output helpers. Subcommands parse arguments,
//! call the library and report; all separation logic lives in the library.
//!
//! Exit codes (also in the README):
//!   0 success · 1 some inputs failed (the others were written) · 2 bad command line ·
//!   3 the model or inference backend could not be loaded · 4 no input audio found ·
//!   5 (live, devices) no audio host/device or an unsupported configuration ·
//!   6 (live) the session failed while running: device lost, server stopped; recordings kept.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use clap::{Args, Parser, Subcommand, ValueEnum};

use voxmask::error::count_in;
use voxmask::model::source as builtin;
use voxmask::model::{BackendChoice, BuiltInModel, ExecutionProvider, ModelSource, RuntimeOptions};

mod eval;
mod inspect;
#[cfg(feature = "live")]
mod live;
mod separate;

const EXIT_PARTIAL: u8 = 1;
/// A bad option value that clap's parsing cannot catch (clap itself exits with 2 as well).
#[cfg_attr(not(feature = "live"), allow(dead_code))]
const EXIT_USAGE: u8 = 2;
const EXIT_MODEL: u8 = 3;
const EXIT_NO_INPUT: u8 = 4;
/// No host or device, or the device refuses the configuration.
#[cfg_attr(not(feature = "live"), allow(dead_code))]
const EXIT_DEVICE: u8 = 5;
/// The live session ended abnormally; recordings are finalised.
#[cfg_attr(not(feature = "live"), allow(dead_code))]
const EXIT_SESSION_FAILED: u8 = 6;

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
    Separate(separate::SeparateArgs),
    /// Score separations with BSS Eval v4 (model, oracle masks, or existing stems).
    Eval(eval::EvalArgs),
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
    Live(live::LiveArgs),
    /// List audio hosts and devices with their default configurations.
    #[cfg(feature = "live")]
    Devices(live::DevicesArgs),
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Separate(args) => separate::run(args),
        Command::Inspect { model, json } => inspect::run(model, json),
        #[cfg(feature = "live")]
        Command::Live(args) => live::run_live(args),
        #[cfg(feature = "live")]
        Command::Devices(args) => live::run_devices(args),
        Command::Eval(args) => eval::run(args),
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
            provider: match self.device {
                DeviceArg::Cpu => ExecutionProvider::Cpu,
                DeviceArg::Cuda => ExecutionProvider::Cuda,
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
