//! `voxmask-train`: trains a voxmask network on DSD100 / MUSDB18 / MUSDB18-HQ / MIR-1K and exports it to
//! ONNX with the model contract. Exit codes: 0 done · 1 training failed · 2 bad command line ·
//! 130 interrupted (checkpoint saved; continue with `--resume`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow, bail};
use candle_core::Device;
use clap::{Args, Parser, Subcommand, ValueEnum};

use voxmask::dsp::MaskRule;
use voxmask::error::count_in;
use voxmask::train::checkpoint::{load_checkpoint, read_state};
use voxmask::train::export::{GraphKind, export_onnx, import_onnx};
use voxmask::train::net::Preset;
use voxmask::train::trainer::{
    DatasetSpec, LossChoice, RunOptions, TrainConfig, TrainOutcome, dataset_list, train, training_contract,
};

/// Largest `--lr` accepted: far past any useful rate (AdamW's default is 1e-3), low enough that a
/// typo like `1e30` is caught.
const MAX_LR: f64 = 1e6;

#[derive(Parser)]
#[command(
    name = "voxmask-train",
    version,
    about = "Train a voxmask vocal-mask network",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Export a checkpoint to an ONNX model with the full voxmask contract.
    Export {
        /// Checkpoint (`best.ckpt` or `last.ckpt` in a run folder), or a TCN model this program
        /// exported (`.onnx`), to export again with the same weights and contract.
        checkpoint: PathBuf,
        /// Export a causal network as a streaming graph, which keeps each layer's last inputs
        /// between calls so `voxmask live` computes every layer once per frame.
        #[arg(long)]
        streaming: bool,
        /// Output .onnx file.
        #[arg(short, long)]
        output: PathBuf,
        /// Mask rule stored in the contract (default: the preset's); pick it on validation.
        #[arg(long, value_parser = MaskRule::NAMES)]
        mask: Option<String>,
        /// Threshold for the `paper` rule.
        #[arg(long)]
        threshold: Option<f32>,
        /// Replace an existing output file.
        #[arg(long)]
        overwrite: bool,
    },
}

#[derive(Args)]
struct TrainArgs {
    /// Dataset folder (DSD100, MUSDB18 .stem.mp4, MUSDB18-HQ, MIR-1K), as DIR or DIR:WEIGHT.
    /// Repeat it to train on several: vocals of one meet accompaniments of another, and each
    /// dataset is drawn in proportion to its weight (default 1). The first one supplies the
    /// validation tracks. A `:vocals` suffix uses only that dataset's vocals, always over
    /// another dataset's accompaniments (e.g. MIR-1K without its karaoke backings).
    #[arg(long, value_name = "DIR[:WEIGHT][:vocals]")]
    dataset: Vec<String>,
    /// Network preset: `offline` (centred, the default of `voxmask separate`; the default), `live`
    /// (causal), `lin2018` (the paper's CNN).
    #[arg(long, value_enum)]
    preset: Option<PresetArg>,
    /// Run folder for checkpoints, log.csv and curves.png (default: runs/<preset>). A folder that
    /// already holds a run is refused unless --resume or --overwrite says what to do with it.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in --out (or the folder given here) from its last checkpoint (its preset
    /// and datasets; naming others is an error).
    #[arg(long, value_name = "RUN_DIR", num_args = 0..=1, default_missing_value = "")]
    resume: Option<PathBuf>,
    /// Start a new run in a folder that holds one, replacing its checkpoints and log.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Epochs to train (1–100000; on --resume, extends or shortens the schedule).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    epochs: Option<u64>,
    /// Optimiser steps per epoch (1–1000000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    steps_per_epoch: Option<u64>,
    /// Examples per step (1–1024).
    #[arg(long, value_parser = count_in(1, 1024))]
    batch: Option<usize>,
    /// Frames per training excerpt (TCN presets).
    #[arg(long, value_parser = count_in(1, 4096))]
    frames: Option<usize>,
    /// Peak learning rate (0–1000000; 0 keeps the initial weights).
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Loss: the paper's cross-entropy, or cross-entropy plus self-adjusting Dice.
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
    /// Weight each bin's cross-entropy by |X|^P of the mixture (normalised to mean 1), so loud
    /// bins, which dominate SDR, count more. 0 (the default) is the paper's unweighted loss.
    #[arg(long, value_name = "P")]
    bin_weight_power: Option<f32>,
    /// Autoencoder pre-training epochs before the supervised ones (Lin et al.): the network first
    /// learns to output the mixture features where the IBM says vocal (Mix·IBM, mean squared error).
    #[arg(long, value_name = "N")]
    pretrain_epochs: Option<u64>,
    /// Dropout of the default network in training, on its input and after every layer (0..0.9).
    #[arg(long, value_name = "P")]
    dropout: Option<f32>,
    /// Validate, keep and export an exponential moving average of the weights with this decay
    /// per step (0 < D < 1, e.g. 0.999; default: none).
    #[arg(long, value_name = "D")]
    ema: Option<f32>,
    /// Probability that a training example's accompaniment is rebuilt from its stems (drums,
    /// bass, other), each from a random track, channel and excerpt with its own gain (0..=1).
    #[arg(long, value_name = "P")]
    part_remix: Option<f32>,
    /// Start from the weights of this checkpoint (same preset) instead of a random init.
    #[arg(long, value_name = "CKPT")]
    init: Option<PathBuf>,
    /// Use at most N training and N validation tracks (quick runs).
    #[arg(long)]
    max_tracks: Option<usize>,
    /// Validation tracks by name (DSD100; MUSDB18 defaults to the official list).
    #[arg(long, value_delimiter = ',')]
    valid: Vec<String>,
    /// CPU threads for the tensor library.
    #[arg(long, value_parser = count_in(1, 256))]
    threads: Option<usize>,
    #[arg(long, value_enum, default_value_t = DeviceArg::Cpu)]
    device: DeviceArg,
    /// No progress bar or per-epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum PresetArg {
    Offline,
    Live,
    Lin2018,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Bce,
    BceDice,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("voxmask-train: error: {}", voxmask::error::one_line(e.as_ref()));
            ExitCode::from(1)
        }
    }
}

fn device(arg: DeviceArg) -> anyhow::Result<Device> {
    match arg {
        DeviceArg::Cpu => Ok(Device::Cpu),
        DeviceArg::Cuda => {
            if !candle_core::utils::cuda_is_available() {
                bail!("--device cuda: this voxmask-train was built without CUDA (build with --features cuda)");
            }
            Device::new_cuda(0).context("opening CUDA device 0")
        }
    }
}

/// On `--resume`, datasets or a preset named on the command line must be the run's own: the
/// schedule, normalisation and validation all depend on them.
fn check_resume_matches(out: &std::path::Path, datasets: &[DatasetSpec], preset: Option<Preset>) -> anyhow::Result<()> {
    let state = read_state(&out.join("last.ckpt"))?;
    let stored = &state.config;
    if !datasets.is_empty() && datasets != stored.datasets.as_slice() {
        bail!(
            "--resume {}: the run trains on {}, not {}; resume without --dataset, or start a new run",
            out.display(),
            dataset_list(&stored.datasets),
            dataset_list(datasets)
        );
    }
    if let Some(p) = preset.filter(|p| Preset::parse(&stored.preset) != Some(*p)) {
        bail!("--resume {}: the run is preset {:?}, not {:?}", out.display(), stored.preset, p.name());
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Export { checkpoint, streaming, output, mask, threshold, overwrite }) = cli.command {
        if output.exists() && !overwrite {
            bail!("{}: already exists (pass --overwrite to replace it)", output.display());
        }
        let from_model = checkpoint.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        let (mut net, trained) = if from_model {
            let net = import_onnx(&checkpoint).with_context(|| format!("reading model {}", checkpoint.display()))?;
            (net, None)
        } else {
            let (mut net, state, _) = load_checkpoint(&checkpoint, &Device::Cpu)
                .with_context(|| format!("reading checkpoint {}", checkpoint.display()))?;
            net.contract = training_contract(net.preset, &state);
            (net, Some((state.best_epoch, state.best_sdr_vocals)))
        };
        if let Some(t) = threshold {
            if !(0.0..=1.0).contains(&t) {
                bail!("--threshold {t} is outside [0, 1]");
            }
            net.contract.threshold = t;
        }
        let c = &net.contract;
        net.contract.mask_rule =
            MaskRule::choose(mask.as_deref(), None, c.mask_rule, c.threshold).unwrap_or(c.mask_rule);
        let kind = if streaming { GraphKind::Streaming } else { GraphKind::Windowed };
        let bytes = export_onnx(&net, kind)?;
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = output.with_extension("onnx.tmp");
        std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &output).with_context(|| format!("writing {}", output.display()))?;
        let what = match trained {
            Some((epochs, sdr)) => format!(" ({epochs} epochs, validation vocals SDR {sdr:.2} dB)"),
            None => String::new(),
        };
        eprintln!(
            "voxmask-train: exported {}{what} to {}{} ({} bytes)",
            checkpoint.display(),
            output.display(),
            if streaming { " as a streaming graph" } else { "" },
            bytes.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let a = cli.train;
    let preset = match a.preset.unwrap_or(PresetArg::Offline) {
        PresetArg::Offline => Preset::Offline,
        PresetArg::Live => Preset::Live,
        PresetArg::Lin2018 => Preset::Lin2018,
    };
    if let Some(lr) = a.lr.filter(|lr| !(lr.is_finite() && (0.0..=MAX_LR).contains(lr))) {
        bail!("--lr {lr} must be a number within 0..={MAX_LR} (0 freezes the weights)");
    }
    if let Some(n) = a.threads {
        // candle's CPU kernels use rayon's global pool, but candle sizes its GEMM parallelism and
        // its spinning barrier pool from RAYON_NUM_THREADS (else the core count): without it,
        // `--threads 1` still spun a second thread, and two runs side by side crawled.
        // SAFETY: set before any other thread exists (the batch thread, rayon's, candle's).
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
        rayon::ThreadPoolBuilder::new().num_threads(n.max(1)).build_global().ok();
    }
    let resume_dir = a.resume.clone().filter(|p| !p.as_os_str().is_empty());
    let out = resume_dir.clone().or(a.out.clone()).unwrap_or_else(|| PathBuf::from("runs").join(preset.name()));
    let resume = a.resume.is_some();
    if resume && !out.join("last.ckpt").is_file() {
        bail!("--resume: no checkpoint at {}", out.join("last.ckpt").display());
    }
    if a.dataset.is_empty() && !resume {
        return Err(anyhow!("--dataset is required (or --resume RUN_DIR)"));
    }
    // On --resume the datasets are taken from the checkpoint.
    let datasets = a.dataset.iter().map(|d| DatasetSpec::parse(d)).collect::<Result<Vec<_>, _>>()?;
    if resume {
        check_resume_matches(&out, &datasets, a.preset.map(|_| preset))?;
    } else if !a.overwrite
        && let Some(existing) = ["last.ckpt", "best.ckpt", "log.csv"].iter().map(|f| out.join(f)).find(|p| p.exists())
    {
        bail!(
            "{} already holds a run ({}): continue it with --resume {}, start over with --overwrite, or pick another --out",
            out.display(),
            existing.display(),
            out.display()
        );
    }
    let mut cfg = TrainConfig::for_preset(datasets, preset);
    if let Some(v) = a.epochs {
        cfg.epochs = v;
    }
    if let Some(v) = a.steps_per_epoch {
        cfg.steps_per_epoch = v;
    }
    if let Some(v) = a.batch {
        cfg.batch = v;
    }
    if let Some(v) = a.frames {
        match preset.tcn() {
            Some(_) => cfg.frames = v,
            None if !a.quiet => {
                eprintln!("voxmask-train: note: --frames applies to the TCN presets; lin2018 trains on 9-frame patches")
            }
            None => {}
        }
    }
    if let Some(v) = a.lr {
        cfg.lr = v;
    }
    if let Some(v) = a.seed {
        cfg.seed = v;
    }
    if let Some(l) = a.loss {
        cfg.loss = match l {
            LossArg::Bce => LossChoice::Bce,
            LossArg::BceDice => LossChoice::BceDice,
        };
    }
    if let Some(p) = a.bin_weight_power {
        if !(0.0..=4.0).contains(&p) {
            bail!("--bin-weight-power must be within 0..=4 (got {p})");
        }
        cfg.bin_weight_power = p;
    }
    cfg.init = a.init.clone();
    if let Some(p) = a.dropout {
        if !(0.0..0.9).contains(&p) {
            bail!("--dropout must be within 0..0.9 (got {p})");
        }
        cfg.dropout = p;
    }
    if let Some(d) = a.ema {
        if !(d > 0.0 && d < 1.0) {
            bail!("--ema must be within 0..1, exclusive (got {d})");
        }
        cfg.ema = d;
    }
    if let Some(p) = a.part_remix {
        if !(0.0..=1.0).contains(&p) {
            bail!("--part-remix must be within 0..=1 (got {p})");
        }
        cfg.part_remix = p;
    }
    if let Some(n) = a.pretrain_epochs {
        cfg.pretrain_epochs = n;
    }
    cfg.max_tracks = a.max_tracks;
    cfg.valid_tracks = a.valid.clone();
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupt.clone();
        ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    }
    let run = RunOptions {
        out: out.clone(),
        resume,
        device: device(a.device)?,
        quiet: a.quiet,
        interrupt,
        epochs_override: a.epochs.filter(|_| resume),
    };
    match train(cfg, &run)? {
        TrainOutcome::Finished(state) => {
            eprintln!(
                "voxmask-train: done: {} epochs, best validation vocals SDR {:.2} dB at epoch {} ({}); export with `voxmask-train export {} -o MODEL.onnx`",
                state.epoch,
                state.best_sdr_vocals,
                state.best_epoch,
                out.join("best.ckpt").display(),
                out.join("best.ckpt").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        TrainOutcome::Interrupted(state) => {
            eprintln!(
                "voxmask-train: interrupted at step {}; checkpoint saved, continue with `voxmask-train --resume {}`",
                state.step,
                out.display()
            );
            Ok(ExitCode::from(130))
        }
    }
}
