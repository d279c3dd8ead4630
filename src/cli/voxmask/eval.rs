//! `voxmask eval`: score separations with BSS Eval v4 (museval's images mode), the MDX SDR and
//! SI-SDR. Three sources of estimates: the model (run on each dataset track's mixture exactly as
//! `voxmask separate` runs it), an oracle mask (`ibm`, `irm`, `mix`) computed with the model's
//! STFT, or existing stems on disk (`--reference/--estimate`). Tracks are scored in parallel;
//! a bad track is reported with its reason and the others still run (exit code 1 at the end).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use voxmask::audio::decode::read_all;
use voxmask::dataset::{Split, Track, list_tracks_lenient, load_stems, missing_files};
use voxmask::dsp::{MaskRule, StftConfig, WindowKind};
use voxmask::eval::run::{
    Oracle, TARGETS, TrackScores, aggregate, length_tolerance, oracle_estimates, scale_stft, score_track,
};
use voxmask::eval::{BssConfig, BssEval};
use voxmask::model::{Model, ModelSource};
use voxmask::plot::scores::ScoreRow;
use voxmask::separation::{SeparateOptions, separate_planar};

use crate::{AUDIO_EXTENSIONS, EXIT_MODEL, EXIT_NO_INPUT, EXIT_PARTIAL, Failure, RuntimeArgs, fail};

/// Limits of `--win` and `--hop` (seconds) and `--filter-len` (taps; museval uses 512).
const MIN_WINDOW_SECONDS: f64 = 0.01;
const MAX_WINDOW_SECONDS: f64 = 3600.0;
const MAX_FILTER_LEN: usize = 4096;

/// STFT of the `mix` oracle, which uses no model (the shipped model's geometry at the track's rate).
const DEFAULT_ORACLE_STFT: StftConfig =
    StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: WindowKind::Hann };

#[derive(Args)]
pub struct EvalArgs {
    /// Dataset folder: DSD100, MUSDB18 (.stem.mp4), MUSDB18-HQ, or <track>/{mixture,vocals,accompaniment}.wav.
    #[arg(long, value_name = "DIR", required_unless_present = "reference", conflicts_with = "reference")]
    dataset: Option<PathBuf>,
    /// Which tracks of the dataset (valid = the official MUSDB18 validation subset, or every fifth DSD100 Dev track).
    #[arg(long, value_enum, default_value_t = SplitArg::Test)]
    split: SplitArg,
    /// Folder of reference stems: <track>/vocals.* and <track>/accompaniment.* (any decodable format).
    #[arg(long, value_name = "DIR", requires = "estimate")]
    reference: Option<PathBuf>,
    /// Folder of estimates under the same <track>/ names, e.g. another tool's output.
    #[arg(long, value_name = "DIR", requires = "reference")]
    estimate: Option<PathBuf>,
    /// Score an oracle instead of the model: ibm (ideal binary mask), irm (ideal ratio mask), mix (the mixture as estimate).
    #[arg(long, value_enum, requires = "dataset")]
    oracle: Option<OracleArg>,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Mask rule for the model's separations (default: the model's), as in `voxmask separate`.
    #[arg(long, value_parser = MaskRule::NAMES, conflicts_with = "oracle")]
    mask: Option<String>,
    /// Threshold for --mask paper (default: the model's).
    #[arg(long)]
    threshold: Option<f32>,
    /// Only tracks whose name contains NAME (repeatable).
    #[arg(long = "track", value_name = "NAME")]
    tracks: Vec<String>,
    /// Only the first N tracks (after --track).
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// BSS Eval window in seconds, at each track's sample rate.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    win: f64,
    /// BSS Eval hop in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    hop: f64,
    /// Distortion-filter length in taps (museval: 512).
    #[arg(long, default_value_t = 512)]
    filter_len: usize,
    /// Tracks evaluated in parallel (each job loads its own model session).
    #[arg(long, short = 'j', default_value_t = 1, value_parser = voxmask::error::count_in(1, 256))]
    jobs: usize,
    /// Write per-track and framewise scores as JSON to FILE (`-` for stdout, replacing the table).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write framewise scores as CSV to FILE.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Draw each track's vocals and accompaniment SDR as a bar chart into FILE (PNG).
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// No progress bar or notes.
    #[arg(long, short = 'q')]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum SplitArg {
    Train,
    Valid,
    Test,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum OracleArg {
    Ibm,
    Irm,
    Mix,
}

/// One unit of work.
enum Item {
    Dataset(Track),
    Files { name: String, reference: PathBuf, estimate: PathBuf },
}

impl Item {
    fn name(&self) -> &str {
        match self {
            Item::Dataset(t) => &t.name,
            Item::Files { name, .. } => name,
        }
    }
    fn subset(&self) -> &str {
        match self {
            Item::Dataset(t) => &t.subset,
            Item::Files { .. } => "",
        }
    }
}

/// Where estimates come from.
enum Mode {
    Model(ModelSource),
    /// The oracle and its STFT with the rate it was designed for (None: the default at the track's rate).
    Oracle(Oracle, Option<(StftConfig, u32)>),
    Files,
}

struct Outcome {
    sample_rate: u32,
    channels: usize,
    seconds: f64,
    scores: TrackScores,
}

pub fn run(args: EvalArgs) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    let show = !args.quiet;
    let note = |msg: String| {
        if show {
            eprintln!("voxmask: note: {msg}");
        }
    };
    // Bounded so that a slip cannot ask for millions of windows or a gigabyte filter.
    for (what, s) in [("--win", args.win), ("--hop", args.hop)] {
        if !(s.is_finite() && (MIN_WINDOW_SECONDS..=MAX_WINDOW_SECONDS).contains(&s)) {
            return Err(Failure {
                error: anyhow!("{what} {s} must be within {MIN_WINDOW_SECONDS}..={MAX_WINDOW_SECONDS} seconds"),
                code: 2,
            });
        }
    }
    if !(1..=MAX_FILTER_LEN).contains(&args.filter_len) {
        return Err(Failure {
            error: anyhow!("--filter-len {} must be within 1..={MAX_FILTER_LEN}", args.filter_len),
            code: 2,
        });
    }

    // What to evaluate.
    let mut layout = None;
    let mut items: Vec<Item> = if let Some(root) = &args.dataset {
        let split = match args.split {
            SplitArg::Train => Split::Train,
            SplitArg::Valid => Split::Valid,
            SplitArg::Test => Split::Test,
            SplitArg::All => Split::All,
        };
        let (l, tracks) = list_tracks_lenient(root, split, None)
            .with_context(|| format!("reading dataset {}", root.display()))
            .map_err(fail(EXIT_NO_INPUT))?;
        layout = Some(format!("{l:?}"));
        tracks.into_iter().map(Item::Dataset).collect()
    } else {
        let (r, e) =
            (args.reference.as_deref().unwrap_or(Path::new(".")), args.estimate.as_deref().unwrap_or(Path::new(".")));
        file_items(r, e).map_err(fail(EXIT_NO_INPUT))?
    };
    if !args.tracks.is_empty() {
        items.retain(|i| args.tracks.iter().any(|t| i.name().contains(t.as_str())));
    }
    if let Some(n) = args.limit {
        items.truncate(n);
    }
    if items.is_empty() {
        return Err(Failure {
            error: anyhow!("no tracks to evaluate (check --split, --track and the folder layout)"),
            code: EXIT_NO_INPUT,
        });
    }

    // Where estimates come from.
    let mode = match (&args.dataset, args.oracle) {
        (None, _) => Mode::Files,
        (Some(_), Some(o)) => {
            let oracle = match o {
                OracleArg::Ibm => Oracle::Ibm,
                OracleArg::Irm => Oracle::Irm,
                OracleArg::Mix => Oracle::Mix,
            };
            if oracle == Oracle::Mix {
                Mode::Oracle(oracle, None)
            } else {
                let p = args.runtime.model_source();
                let (info, _) =
                    p.read().with_context(|| format!("reading the STFT of model {p}")).map_err(fail(EXIT_MODEL))?;
                let c = &info.contract;
                note(format!(
                    "oracle {}: STFT of model {p} ({} window {}, FFT {}, hop {} at {} Hz, scaled to each track's rate)",
                    oracle.name(),
                    c.stft.window.name(),
                    c.stft.win_length,
                    c.stft.n_fft,
                    c.stft.hop,
                    c.sample_rate
                ));
                Mode::Oracle(oracle, Some((c.stft, c.sample_rate)))
            }
        }
        (Some(_), None) => Mode::Model(args.runtime.model_source()),
    };

    let jobs = args.jobs.max(1).min(items.len());
    let mut models: Vec<Option<Model>> = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        models.push(match &mode {
            Mode::Model(p) => Some(
                p.load(&args.runtime.options())
                    .with_context(|| format!("loading model {p}"))
                    .map_err(fail(EXIT_MODEL))?,
            ),
            _ => None,
        });
    }
    if let (Mode::Model(p), Some(Some(m))) = (&mode, models.first()) {
        note(format!("model {p} on {}", m.backend()));
    }
    // The mask rule of every separation (each job loads the same model), for them and the JSON.
    let mask = models.iter().flatten().next().and_then(|m| {
        let c = m.contract();
        MaskRule::choose(args.mask.as_deref(), args.threshold, c.mask_rule, c.threshold)
    });
    let separate_opts = SeparateOptions { mask, ..SeparateOptions::default() };

    let bar = ProgressBar::with_draw_target(
        Some(items.len() as u64),
        if show && std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix:>10} [{bar:30}] {pos}/{len} tracks {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix("eval");

    let queue = Mutex::new(items.iter().enumerate());
    let results: Mutex<Vec<(usize, Result<Outcome, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for mut model in models {
            let (queue, results, bar, mode, args, opts) = (&queue, &results, &bar, &mode, &args, &separate_opts);
            scope.spawn(move || {
                let mut eval: Option<(u32, BssEval)> = None;
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some((index, item)) = next else { break };
                    bar.set_message(item.name().to_string());
                    let outcome = evaluate_item(item, mode, model.as_mut(), &mut eval, opts, args)
                        .map_err(|e| voxmask::error::one_line(e.as_ref()));
                    bar.inc(1);
                    if let Ok(mut r) = results.lock() {
                        r.push((index, outcome));
                    }
                }
            });
        }
    });
    bar.finish_and_clear();
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);

    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    for (i, r) in &results {
        if let Err(message) = r {
            eprintln!("voxmask: error: track '{}': {message}", items[*i].name());
        }
    }
    let ok: Vec<&TrackScores> = results.iter().filter_map(|(_, r)| r.as_ref().ok().map(|o| &o.scores)).collect();
    let agg = aggregate(ok.iter().copied());
    let to_stdout = args.json.as_deref() == Some(Path::new("-"));
    if !to_stdout {
        print!("{}", table(&items, &results, &agg));
    }

    if let Some(path) = &args.plot {
        let rows: Vec<ScoreRow> = results
            .iter()
            .filter_map(|(i, r)| r.as_ref().ok().map(|o| (i, o)))
            .map(|(i, o)| ScoreRow {
                name: items[*i].name().to_string(),
                vocals: o.scores.targets[0].sdr,
                accompaniment: o.scores.targets[1].sdr,
            })
            .collect();
        let what = match &mode {
            Mode::Model(p) => format!("model {p}"),
            Mode::Oracle(o, _) => format!("oracle {}", o.name()),
            Mode::Files => "estimates".to_string(),
        };
        let title = format!("voxmask eval: {what}, {} tracks", rows.len());
        voxmask::plot::scores::draw(path, &title, &rows, (agg[0].sdr, agg[1].sdr))
            .with_context(|| format!("drawing {}", path.display()))
            .map_err(fail(EXIT_PARTIAL))?;
        if rows.len() > voxmask::plot::scores::MAX_TRACKS {
            note(format!(
                "{}: the first {} of {} tracks are drawn",
                path.display(),
                voxmask::plot::scores::MAX_TRACKS,
                rows.len()
            ));
        }
    }
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&items, &results))
            .with_context(|| format!("writing {}", path.display()))
            .map_err(fail(EXIT_PARTIAL))?;
    }
    if let Some(path) = &args.json {
        let mode_json = match &mode {
            Mode::Model(p) => {
                json!({"kind": "model", "model": crate::lossy(&p.label()), "mask": mask.map(|r| r.name())})
            }
            Mode::Oracle(o, stft) => json!({"kind": "oracle", "oracle": o.name(),
                "stft": stft.map(|(c, rate)| json!({"n_fft": c.n_fft, "win_length": c.win_length, "hop": c.hop,
                    "window": c.window.name(), "designed_for_rate": rate}))
                    .unwrap_or_else(|| json!({"n_fft": 1024, "win_length": 1024, "hop": 256, "window": "hann",
                        "designed_for_rate": null}))}),
            Mode::Files => json!({"kind": "estimates", "reference": args.reference, "estimate": args.estimate}),
        };
        let tracks: Vec<Value> = results.iter().map(|(i, r)| track_json(&items[*i], r)).collect();
        let doc = json!({
            "mode": mode_json,
            "dataset": args.dataset,
            "layout": layout,
            "split": args.dataset.as_ref().map(|_| args.split_name()),
            "bss_eval": {"version": "v4", "mode": "images", "win_seconds": args.win, "hop_seconds": args.hop,
                "filter_len": args.filter_len},
            "aggregate": {
                "tracks": ok.len(),
                "undefined": undefined_tracks(&items, &results),
                "vocals": agg_json(&agg[0]),
                "accompaniment": agg_json(&agg[1]),
            },
            "tracks": tracks,
            "failed": failed,
            "wall_seconds": started.elapsed().as_secs_f64(),
        });
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        if to_stdout {
            println!("{text}");
        } else {
            std::fs::write(path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))
                .map_err(fail(EXIT_PARTIAL))?;
        }
    }
    if show {
        eprintln!(
            "voxmask: {} track(s) scored, {failed} failed, in {:.1} s",
            results.len() - failed,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(if failed > 0 { ExitCode::from(EXIT_PARTIAL) } else { ExitCode::SUCCESS })
}

impl EvalArgs {
    fn split_name(&self) -> &'static str {
        match self.split {
            SplitArg::Train => "train",
            SplitArg::Valid => "valid",
            SplitArg::Test => "test",
            SplitArg::All => "all",
        }
    }
}

/// Loads (or computes) references and estimates of one track and scores them.
fn evaluate_item(
    item: &Item,
    mode: &Mode,
    model: Option<&mut Model>,
    eval: &mut Option<(u32, BssEval)>,
    opts: &SeparateOptions,
    args: &EvalArgs,
) -> anyhow::Result<Outcome> {
    let (rate, refs, ests) = match item {
        Item::Dataset(track) => {
            let missing = missing_files(track);
            if !missing.is_empty() {
                let list: Vec<String> = missing.iter().map(|p| p.display().to_string()).collect();
                return Err(anyhow!("missing stem file(s): {}", list.join(", ")));
            }
            let stems = load_stems(track, None)?;
            let rate = stems.sample_rate;
            let ests = match (mode, model) {
                (Mode::Model(_), Some(model)) => {
                    let (v, a) =
                        separate_planar(model, &stems.mixture, rate, opts).context("separating the mixture")?;
                    [v, a]
                }
                (Mode::Oracle(o, stft), _) => {
                    let cfg = stft.map_or(DEFAULT_ORACLE_STFT, |(c, from)| scale_stft(c, from, rate));
                    oracle_estimates(*o, cfg, &stems.mixture, &stems.vocals, &stems.accompaniment)?
                }
                _ => return Err(anyhow!("no model loaded")),
            };
            (rate, [stems.vocals, stems.accompaniment], ests)
        }
        Item::Files { reference, estimate, .. } => {
            let mut rate = 0;
            let mut load = |dir: &Path, role: &str, target: &str| -> anyhow::Result<Vec<Vec<f32>>> {
                let path =
                    find_stem(dir, target)?.ok_or_else(|| anyhow!("missing {role} {target}.* in {}", dir.display()))?;
                let (info, x) = read_all(&path)?;
                if rate == 0 {
                    rate = info.sample_rate;
                } else if info.sample_rate != rate {
                    return Err(anyhow!(
                        "{}: sample rate {} Hz, but the reference vocals are at {rate} Hz",
                        path.display(),
                        info.sample_rate
                    ));
                }
                Ok(x)
            };
            let rv = load(reference, "reference", "vocals")?;
            let ra = load(reference, "reference", "accompaniment")?;
            let ev = load(estimate, "estimate", "vocals")?;
            let ea = load(estimate, "estimate", "accompaniment")?;
            (rate, [rv, ra], [ev, ea])
        }
    };
    let secs = |s: f64| ((s * rate as f64).round() as usize).max(1);
    let cfg = BssConfig { win: secs(args.win), hop: secs(args.hop), filter_len: args.filter_len, threads: 1 };
    if eval.as_ref().is_none_or(|(r, _)| *r != rate) {
        *eval = Some((rate, BssEval::new(cfg)?));
    }
    let Some((_, bss)) = eval.as_mut() else { unreachable!() };
    let scores = score_track(bss, [&refs[0], &refs[1]], [&ests[0], &ests[1]], length_tolerance(rate))?;
    let channels = refs[0].len();
    let seconds = refs[0].first().map_or(0, Vec::len) as f64 / rate as f64;
    Ok(Outcome { sample_rate: rate, channels, seconds, scores })
}

/// `<dir>/<target>.<audio extension>`; two of them (`vocals.wav` and `vocals.flac`) are an error
/// rather than a silent pick.
fn find_stem(dir: &Path, target: &str) -> anyhow::Result<Option<PathBuf>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_stem().and_then(|s| s.to_str()) == Some(target)
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    found.sort();
    if found.len() > 1 {
        let names: Vec<String> =
            found.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
        return Err(anyhow!("{}: {} could be the {target}: keep one", dir.display(), names.join(" and ")));
    }
    Ok(found.into_iter().next())
}

/// Tracks of `--reference/--estimate`: every sub-folder of the reference folder holding a
/// `vocals.*` or `accompaniment.*` (or the folder itself when it holds them directly).
fn file_items(reference: &Path, estimate: &Path) -> anyhow::Result<Vec<Item>> {
    if !reference.is_dir() {
        return Err(anyhow!("{}: reference folder not found", reference.display()));
    }
    if !estimate.is_dir() {
        return Err(anyhow!("{}: estimate folder not found", estimate.display()));
    }
    // Ambiguous stems make a track too; scoring it reports the ambiguity.
    let is_track = |d: &Path| ["vocals", "accompaniment"].iter().any(|t| !matches!(find_stem(d, t), Ok(None)));
    if is_track(reference) {
        let name = reference.file_name().map_or("track".into(), |n| n.to_string_lossy().into_owned());
        return Ok(vec![Item::Files { name, reference: reference.to_path_buf(), estimate: estimate.to_path_buf() }]);
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(reference)
        .with_context(|| format!("listing {}", reference.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && is_track(p))
        .collect();
    dirs.sort();
    Ok(dirs
        .into_iter()
        .map(|d| {
            let name = d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Item::Files { estimate: estimate.join(&name), name, reference: d }
        })
        .collect())
}

fn fmt_db(x: f64) -> String {
    format!("{x:>7.2}")
}

/// One table row's numbers: `[SDR, SIR, SAR, ISR, MDX SDR]` of vocals and of accompaniment, in
/// the column order of the header (SDR/SIR/SAR/ISR per target, then the two MDX SDRs).
fn score_cells(v: [f64; 5], a: [f64; 5]) -> String {
    let four = |x: [f64; 5]| x[..4].iter().map(|d| fmt_db(*d)).collect::<Vec<_>>().join(" ");
    format!("{}  {}  {} {}", four(v), four(a), fmt_db(v[4]), fmt_db(a[4]))
}

/// Scored tracks whose vocals or accompaniment SDR is undefined (NaN): BSS Eval v4 leaves out
/// windows where a reference or an estimate is silent, so an all-silent stem has no score.
fn undefined_tracks(items: &[Item], results: &[(usize, Result<Outcome, String>)]) -> Vec<String> {
    results
        .iter()
        .filter_map(|(i, r)| r.as_ref().ok().map(|o| (i, o)))
        .filter(|(_, o)| o.scores.targets.iter().any(|t| t.sdr.is_nan()))
        .map(|(i, _)| items[*i].name().to_string())
        .collect()
}

fn table(
    items: &[Item],
    results: &[(usize, Result<Outcome, String>)],
    agg: &[voxmask::eval::run::Aggregate; 2],
) -> String {
    let n = results.iter().filter(|(_, r)| r.is_ok()).count();
    let undefined = undefined_tracks(items, results);
    let label = match undefined.len() {
        0 => format!("median of {n} track(s)"),
        k => format!("median of {} of {n} track(s)", n - k),
    };
    let width = items.iter().map(|i| i.name().chars().count()).chain([label.len()]).max().unwrap_or(5).clamp(18, 40);
    let mut s = String::new();
    let _ = writeln!(s, "{:<width$}  {:^31}  {:^31}  {:^15}", "", "vocals (dB)", "accompaniment (dB)", "MDX SDR (dB)");
    let _ = writeln!(
        s,
        "{:<width$}  {:>7} {:>7} {:>7} {:>7}  {:>7} {:>7} {:>7} {:>7}  {:>7} {:>7}",
        "track", "SDR", "SIR", "SAR", "ISR", "SDR", "SIR", "SAR", "ISR", "vocals", "accomp"
    );
    let name = |n: &str| {
        if n.chars().count() > width {
            let cut: String = n.chars().take(width - 1).collect();
            cut + "…"
        } else {
            n.to_string()
        }
    };
    for (i, r) in results {
        match r {
            Ok(o) => {
                let [v, a] = &o.scores.targets;
                let cells =
                    score_cells([v.sdr, v.sir, v.sar, v.isr, v.mdx_sdr], [a.sdr, a.sir, a.sar, a.isr, a.mdx_sdr]);
                let _ = writeln!(s, "{:<width$}  {cells}", name(items[*i].name()));
            }
            Err(_) => {
                let _ = writeln!(s, "{:<width$}  FAILED (see the error above)", name(items[*i].name()));
            }
        }
    }
    let [v, a] = agg;
    let cells = score_cells([v.sdr, v.sir, v.sar, v.isr, v.mdx_sdr], [a.sdr, a.sir, a.sar, a.isr, a.mdx_sdr]);
    let _ = writeln!(s, "{label:<width$}  {cells}");
    if !undefined.is_empty() {
        let _ = writeln!(
            s,
            "left out of the medians, their SDR undefined (a silent estimate or reference in every window): {}",
            undefined.join(", ")
        );
    }
    s
}

/// A score as JSON: NaN (undefined) as null, ±∞ (perfect or void component) as "inf"/"-inf".
fn num(x: f64) -> Value {
    if x.is_nan() {
        Value::Null
    } else if x.is_infinite() {
        Value::String(if x > 0.0 { "inf" } else { "-inf" }.into())
    } else {
        json!(x)
    }
}

fn nums(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| num(x)).collect())
}

fn agg_json(a: &voxmask::eval::run::Aggregate) -> Value {
    json!({"SDR": num(a.sdr), "SIR": num(a.sir), "SAR": num(a.sar), "ISR": num(a.isr),
        "MDX_SDR": num(a.mdx_sdr), "SI_SDR": num(a.si_sdr)})
}

fn track_json(item: &Item, r: &Result<Outcome, String>) -> Value {
    match r {
        Err(e) => json!({"name": item.name(), "subset": item.subset(), "ok": false, "error": e}),
        Ok(o) => {
            let targets: serde_json::Map<String, Value> = TARGETS
                .iter()
                .zip(&o.scores.targets)
                .map(|(t, s)| {
                    let times: Vec<f64> =
                        (0..s.frames.sdr.len()).map(|k| (k * o.scores.hop) as f64 / o.sample_rate as f64).collect();
                    (
                        t.to_string(),
                        json!({"SDR": num(s.sdr), "SIR": num(s.sir), "SAR": num(s.sar), "ISR": num(s.isr),
                            "MDX_SDR": num(s.mdx_sdr), "SI_SDR": num(s.si_sdr),
                            "frames": {"time": times, "SDR": nums(&s.frames.sdr), "SIR": nums(&s.frames.sir),
                                "SAR": nums(&s.frames.sar), "ISR": nums(&s.frames.isr)}}),
                    )
                })
                .collect();
            json!({"name": item.name(), "subset": item.subset(), "ok": true, "sample_rate": o.sample_rate,
                "channels": o.channels, "seconds": o.seconds, "win": o.scores.win, "hop": o.scores.hop,
                "targets": targets})
        }
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

fn csv_num(x: f64) -> String {
    if x.is_nan() { String::new() } else { x.to_string() }
}

/// Framewise scores, one row per track, target and window (museval's long table, made wide);
/// undefined windows have empty cells.
fn csv(items: &[Item], results: &[(usize, Result<Outcome, String>)]) -> String {
    let mut s = String::from("track,target,frame,time,SDR,SIR,SAR,ISR\n");
    for (i, r) in results {
        let Ok(o) = r else { continue };
        for (t, sc) in TARGETS.iter().zip(&o.scores.targets) {
            let f = &sc.frames;
            for k in 0..f.sdr.len() {
                let _ = writeln!(
                    s,
                    "{},{t},{k},{},{},{},{},{}",
                    csv_field(items[*i].name()),
                    (k * o.scores.hop) as f64 / o.sample_rate as f64,
                    csv_num(f.sdr[k]),
                    csv_num(f.sir[k]),
                    csv_num(f.sar[k]),
                    csv_num(f.isr[k])
                );
            }
        }
    }
    s
}
