//! `voxmask separate`: files and folders in, stems out, with a progress bar, a summary and
//! `--json`; the separation itself is `voxmask::separation::separate_file`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use voxmask::audio::encode::SampleFormat;
use voxmask::dsp::MaskRule;
use voxmask::error::count_in;
use voxmask::separation::{
    Container, SeparateOptions, SeparationReport, StemSelection, separate_file, unique_stem_names,
};

use crate::{AUDIO_EXTENSIONS, EXIT_MODEL, EXIT_NO_INPUT, EXIT_PARTIAL, Failure, RuntimeArgs, fail};
use crate::{interrupt_on_signals, lossy, peak_rss_mb, print_json, signal_name};

#[derive(Args)]
pub(crate) struct SeparateArgs {
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
pub(crate) fn run(args: SeparateArgs) -> Result<ExitCode, Failure> {
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
            StemsArg::Both => StemSelection::Both,
            StemsArg::Vocals => StemSelection::Vocals,
            StemsArg::Accompaniment => StemSelection::Accompaniment,
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
