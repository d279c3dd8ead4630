//! The training loop behind `voxmask-train`: batches from [`SpectralData`], the loss kernels as
//! candle ops, AdamW with warm-up and cosine decay, validation by separating the validation
//! tracks and scoring them with BSS Eval v4 (`crate::eval`), checkpoints every epoch and on
//! Ctrl-C, exact `--resume`, a CSV log and a PNG of the curves.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::dataset::{Split, Stems, list_tracks, load_stems, load_stems_with_parts};
use crate::loss::{BceOptions, DiceOptions};
use crate::model::Contract;
use crate::train::checkpoint::load_checkpoint;
use crate::train::checkpoint::{WeightAverage, save_checkpoint, save_checkpoint_with};
use crate::train::data::{Augment, BatchSpec, Prefetch, PreparedBatch, SpectralData, TrackRole};
use crate::train::net::{LIN_PATCH, Net, Preset};
use crate::train::ops::{LossKind, loss};
use crate::train::optim::{AdamW, AdamWConfig, learning_rate};
use crate::train::validation::validate;
use crate::{Error, Result};

/// Steps between progress lines when stderr is not a terminal.
const LOG_EVERY: u64 = 50;

/// Which loss drives training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LossChoice {
    /// Pixel-wise sigmoid cross-entropy against the IBM (the paper's loss).
    Bce,
    /// BCE plus the self-adjusting Dice loss (for the vocal/background imbalance).
    BceDice,
}

/// One training dataset and how often its tracks are drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetSpec {
    pub path: PathBuf,
    /// Relative probability of drawing this dataset's tracks (shared among them), so a small
    /// dataset is not drowned by a large one.
    pub weight: f64,
    /// Use only this dataset's vocals, always over another dataset's accompaniments (MIR-1K's
    /// karaoke backings are not the music voxmask separates).
    #[serde(default)]
    pub vocals_only: bool,
}

/// The `--dataset` suffix that makes a dataset supply vocals only.
pub const VOCALS_ONLY_SUFFIX: &str = ":vocals";

impl DatasetSpec {
    /// Parses `DIR`, `DIR:WEIGHT`, and either with `:vocals` appended (a trailing `:number` is a
    /// weight unless `DIR:number` is itself an existing folder).
    pub fn parse(arg: &str) -> Result<Self> {
        let (rest, vocals_only) = match arg.strip_suffix(VOCALS_ONLY_SUFFIX) {
            Some(rest) if !Path::new(arg).exists() => (rest, true),
            _ => (arg, false),
        };
        let weighted = rest.rsplit_once(':').and_then(|(dir, w)| Some((dir, w.parse::<f64>().ok()?)));
        match weighted {
            Some((dir, weight)) if !Path::new(rest).exists() => {
                if !(weight.is_finite() && weight > 0.0 && weight <= 1e6) {
                    return Err(Error::InvalidArgument(format!("--dataset {arg}: the weight must be within (0, 1e6]")));
                }
                Ok(DatasetSpec { path: dir.into(), weight, vocals_only })
            }
            _ => Ok(DatasetSpec { path: rest.into(), weight: 1.0, vocals_only }),
        }
    }
}

/// Everything that defines a training run (stored in the checkpoint, so `--resume` needs only
/// the output folder).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Training data; the first dataset also supplies the validation tracks.
    pub datasets: Vec<DatasetSpec>,
    pub preset: String,
    pub epochs: u64,
    pub steps_per_epoch: u64,
    pub batch: usize,
    /// Frames per training excerpt (lin2018 always uses 9-frame patches).
    pub frames: usize,
    pub lr: f64,
    pub warmup_steps: u64,
    pub weight_decay: f64,
    pub label_smoothing: f32,
    pub loss: LossChoice,
    pub seed: u64,
    /// Use at most this many training / validation tracks (quick runs, tests).
    pub max_tracks: Option<usize>,
    /// Validation track names (DSD100; MUSDB18 uses the official list when empty).
    pub valid_tracks: Vec<String>,
    pub remix: f32,
    /// Probability of rebuilding an example's accompaniment from its stems ([`Augment::part_remix`]).
    #[serde(default)]
    pub part_remix: f32,
    /// Exponent p of the per-bin loss weights |X|^p (0: unweighted, the paper's loss).
    #[serde(default)]
    pub bin_weight_power: f32,
    /// Checkpoint whose weights start the run (a warm start; the optimiser starts fresh).
    #[serde(default)]
    pub init: Option<PathBuf>,
    /// Autoencoder pre-training epochs before the `epochs` supervised ones (Lin et al.'s optional
    /// pre-training): the network learns to output Mix·IBM, the mixture features where the
    /// vocals dominate, with a mean squared error, then switches to cross-entropy.
    #[serde(default)]
    pub pretrain_epochs: u64,
    /// Dropout of the default network in training (input features and every temporal layer).
    #[serde(default)]
    pub dropout: f32,
    /// Decay of an exponential moving average of the weights (0: none). With it, validation,
    /// `best.ckpt` and the exported model use the averaged weights, which wander less from
    /// step to step than the optimiser's.
    #[serde(default)]
    pub ema: f32,
}

impl TrainConfig {
    /// Defaults for a preset.
    pub fn for_preset(datasets: Vec<DatasetSpec>, preset: Preset) -> Self {
        let (batch, frames, lr) = match preset {
            Preset::Live | Preset::Offline => (16, 128, 1e-3),
            Preset::Lin2018 => (107, LIN_PATCH, 1e-4),
        };
        TrainConfig {
            datasets,
            preset: preset.name().into(),
            epochs: 60,
            steps_per_epoch: 100,
            batch,
            frames,
            lr,
            warmup_steps: 200,
            weight_decay: if preset == Preset::Lin2018 { 0.0 } else { 1e-4 },
            label_smoothing: 0.02,
            loss: LossChoice::Bce,
            seed: 1,
            max_tracks: None,
            valid_tracks: Vec::new(),
            remix: 0.5,
            part_remix: 0.0,
            bin_weight_power: 0.0,
            init: None,
            pretrain_epochs: 0,
            dropout: 0.0,
            ema: 0.0,
        }
    }
}

/// One line of the training log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: u64,
    pub step: u64,
    pub lr: f64,
    pub train_loss: f64,
    pub val_loss: f64,
    /// BSS Eval v4 SDR, median over 1 s frames then over tracks, at the model's rate.
    pub val_sdr_vocals: f64,
    pub val_sdr_accompaniment: f64,
    /// MDX "new SDR" of the vocals, median over tracks.
    pub val_mdx_vocals: f64,
    pub wall_seconds: f64,
    /// Optimiser steps per second over the epoch's training steps (batches, forward, backward,
    /// update; validation excluded).
    #[serde(default)]
    pub steps_per_second: f64,
    /// An autoencoder pre-training epoch: `train_loss` is the MSE to Mix·IBM and there are no
    /// validation scores (NaN).
    #[serde(default)]
    pub pretrain: bool,
}

/// Progress of a run, saved next to each checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainState {
    pub config: TrainConfig,
    /// Epochs completed.
    pub epoch: u64,
    /// Optimiser steps taken.
    pub step: u64,
    pub best_sdr_vocals: f64,
    pub best_epoch: u64,
    pub history: Vec<EpochLog>,
    pub wall_seconds: f64,
    pub train_tracks: usize,
    pub valid_tracks: usize,
    /// CRC-32 of the checkpoint file this state was saved with, checked when it is loaded (a
    /// damaged checkpoint must not resume quietly). Absent in checkpoints from before it existed.
    #[serde(default)]
    pub checkpoint_crc32: Option<u32>,
}

/// Where a run keeps its files.
pub struct RunDir(pub PathBuf);

impl RunDir {
    pub fn last(&self) -> PathBuf {
        self.0.join("last.ckpt")
    }
    pub fn best(&self) -> PathBuf {
        self.0.join("best.ckpt")
    }
    pub fn csv(&self) -> PathBuf {
        self.0.join("log.csv")
    }
    pub fn png(&self) -> PathBuf {
        self.0.join("curves.png")
    }
}

/// The preset's contract plus the training provenance of `state`.
pub fn training_contract(preset: Preset, state: &TrainState) -> Contract {
    let mut c = preset.contract();
    let p = crate::model::contract::PROVENANCE_PREFIX;
    let best = state.history.iter().find(|h| h.epoch == state.best_epoch);
    let mut put = |k: &str, v: String| {
        c.extra.insert(format!("{p}{k}"), v);
    };
    put("preset", preset.name().into());
    put("dataset", dataset_list(&state.config.datasets));
    put("tracks", format!("{} train, {} validation", state.train_tracks, state.valid_tracks));
    put("epochs", state.best_epoch.to_string());
    put("steps", best.map_or(state.step, |b| b.step).to_string());
    put("seed", state.config.seed.to_string());
    put("loss", format!("{:?}, label smoothing {}", state.config.loss, state.config.label_smoothing));
    if state.config.pretrain_epochs > 0 {
        put("pretrain_epochs", format!("{} (autoencoder to Mix·IBM)", state.config.pretrain_epochs));
    }
    if state.config.dropout > 0.0 {
        put("dropout", state.config.dropout.to_string());
    }
    put(
        "bin_weights",
        if state.config.bin_weight_power > 0.0 {
            format!("|X|^{}", state.config.bin_weight_power)
        } else {
            "none".into()
        },
    );
    if let Some(init) = &state.config.init {
        put("init", init.display().to_string());
    }
    put(
        "augmentation",
        format!(
            "remix {} , part remix {} , gains {:?} dB, random channel and excerpt",
            state.config.remix,
            state.config.part_remix,
            Augment::default().gain_db
        ),
    );
    if let Some(b) = best {
        put("valid_sdr_vocals", format!("{:.2} dB (BSS Eval v4 median, at the model rate)", b.val_sdr_vocals));
        put("valid_sdr_accompaniment", format!("{:.2} dB", b.val_sdr_accompaniment));
    }
    put("voxmask_version", env!("CARGO_PKG_VERSION").into());
    c
}

/// Options of one invocation that are not part of the run's identity.
pub struct RunOptions {
    pub out: PathBuf,
    pub resume: bool,
    pub device: Device,
    pub quiet: bool,
    /// Set by Ctrl-C: save and stop at the next step boundary.
    pub interrupt: Arc<AtomicBool>,
    /// On resume, train to this many epochs instead of the checkpoint's (extends the schedule).
    pub epochs_override: Option<u64>,
}

/// The datasets as one line: `a, b (weight 2)`.
pub fn dataset_list(datasets: &[DatasetSpec]) -> String {
    let one = |d: &DatasetSpec| {
        let mut notes = Vec::new();
        if d.weight != 1.0 {
            notes.push(format!("weight {}", d.weight));
        }
        if d.vocals_only {
            notes.push("vocals only".to_string());
        }
        if notes.is_empty() {
            d.path.display().to_string()
        } else {
            format!("{} ({})", d.path.display(), notes.join(", "))
        }
    };
    datasets.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// Loads a split of one dataset at the model's rate, with the accompaniment's stems when
/// `parts`. `--valid` names apply to the first dataset, the validation source.
fn load_split(cfg: &TrainConfig, dataset: usize, split: Split, rate: u32, parts: bool) -> Result<Vec<(String, Stems)>> {
    let valid = (dataset == 0 && !cfg.valid_tracks.is_empty()).then_some(cfg.valid_tracks.as_slice());
    let (_, mut tracks) = list_tracks(&cfg.datasets[dataset].path, split, valid)?;
    if let Some(n) = cfg.max_tracks {
        tracks.truncate(n);
    }
    let load = if parts { load_stems_with_parts } else { load_stems };
    // Decoding and resampling are independent per track: spread them over the cores.
    use rayon::prelude::*;
    tracks.par_iter().map(|t| Ok((t.name.clone(), load(t, Some(rate))?))).collect()
}

/// A track's name and its decoded stems.
type NamedStems = (String, Stems);

/// The training tracks of every dataset, each with its drawing weight and whether it supplies
/// vocals only.
fn load_training_tracks(cfg: &TrainConfig, rate: u32, parts: bool) -> Result<(Vec<NamedStems>, Vec<TrackRole>)> {
    let (mut tracks, mut roles) = (Vec::new(), Vec::new());
    for (i, spec) in cfg.datasets.iter().enumerate() {
        let t = load_split(cfg, i, Split::Train, rate, parts)?;
        if t.is_empty() {
            return Err(Error::InvalidArgument(format!("{}: no training tracks", spec.path.display())));
        }
        let role = TrackRole { weight: spec.weight / t.len() as f64, vocals_only: spec.vocals_only };
        roles.extend(std::iter::repeat_n(role, t.len()));
        tracks.extend(t);
    }
    Ok((tracks, roles))
}

/// Outcome of [`train`].
#[derive(Debug)]
pub enum TrainOutcome {
    Finished(TrainState),
    Interrupted(TrainState),
}

/// Runs (or resumes) training.
pub fn train(cfg: TrainConfig, run: &RunOptions) -> Result<TrainOutcome> {
    let dir = RunDir(run.out.clone());
    std::fs::create_dir_all(&dir.0).map_err(|e| Error::io(&dir.0, e))?;
    let started = Instant::now();
    let (cfg, resumed, mut state, saved) = if run.resume && dir.last().is_file() {
        let (net, mut state, tensors) = load_checkpoint(&dir.last(), &run.device)?;
        if let Some(e) = run.epochs_override {
            state.config.epochs = e;
        }
        (state.config.clone(), Some(net), Some(state), Some(tensors))
    } else {
        (cfg, None, None, None)
    };
    let preset =
        Preset::parse(&cfg.preset).ok_or_else(|| Error::InvalidArgument(format!("unknown preset {:?}", cfg.preset)))?;
    let contract = preset.contract();
    let say = |msg: String| {
        if !run.quiet {
            eprintln!("voxmask-train: {msg}");
        }
    };
    if cfg.datasets.is_empty() {
        return Err(Error::InvalidArgument("no --dataset given".into()));
    }
    say(format!("loading {} ...", dataset_list(&cfg.datasets)));
    let (train_tracks, track_roles) = load_training_tracks(&cfg, contract.sample_rate, cfg.part_remix > 0.0)?;
    let valid_tracks = load_split(&cfg, 0, Split::Valid, contract.sample_rate, false)?;
    if valid_tracks.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: found {} training and no validation tracks; both are needed",
            cfg.datasets[0].path.display(),
            train_tracks.len(),
        )));
    }
    let roles = (cfg.datasets.len() > 1).then_some(track_roles.as_slice());
    let data = Arc::new(SpectralData::with_roles(&contract, &train_tracks, roles, cfg.frames)?);
    drop(train_tracks);
    say(format!("{} training tracks, {} validation tracks", data.tracks.len(), valid_tracks.len()));
    let net = match (resumed, &cfg.init) {
        (Some(net), _) => net,
        (None, Some(init)) => {
            let (mut net, from, _) = load_checkpoint(init, &run.device)?;
            // New runs always normalise with capped scales, warm starts included.
            net.cap_input_scales()?;
            if from.config.preset != cfg.preset {
                return Err(Error::Train(format!(
                    "{}: --init checkpoint is preset {:?}, this run is {:?}",
                    init.display(),
                    from.config.preset,
                    cfg.preset
                )));
            }
            say(format!("starting from the weights of {} (epoch {})", init.display(), from.epoch));
            net
        }
        (None, None) => {
            let (mean, scale) = data.feature_stats(&contract);
            Net::new(preset, &run.device, Some((&mean, &scale)), cfg.seed)?
        }
    };
    let mut opt = AdamW::new(net.trainable()?, AdamWConfig { weight_decay: cfg.weight_decay, ..Default::default() })?;
    let mut state = match state.take() {
        Some(s) => {
            if let Some(t) = &saved {
                opt.load_state(t, s.step)?;
            }
            say(format!("resuming at epoch {} step {}", s.epoch, s.step));
            s
        }
        None => TrainState {
            config: cfg.clone(),
            epoch: 0,
            step: 0,
            best_sdr_vocals: f64::NEG_INFINITY,
            best_epoch: 0,
            history: Vec::new(),
            wall_seconds: 0.0,
            train_tracks: data.tracks.len(),
            valid_tracks: valid_tracks.len(),
            checkpoint_crc32: None,
        },
    };
    let mut average = match cfg.ema {
        d if d > 0.0 => Some(WeightAverage::new(&net, d, saved.as_ref())?),
        _ => None,
    };
    let wall_before = state.wall_seconds;
    let all_epochs = cfg.pretrain_epochs + cfg.epochs;
    let total_steps = all_epochs * cfg.steps_per_epoch;
    let bar = ProgressBar::with_draw_target(
        Some(total_steps),
        if run.quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps {per_sec} {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_position(state.step);
    let aug = Augment { remix: cfg.remix, part_remix: cfg.part_remix, ..Augment::default() };
    // Without a terminal (logs, CI) the bar is hidden: print a line every LOG_EVERY steps instead.
    let log_lines = !run.quiet && !std::io::stderr().is_terminal();
    let first_step = state.step;
    let kind_bce = LossKind::Bce(BceOptions { label_smoothing: 0.0, ..BceOptions::default() });
    let spec = BatchSpec {
        seed: cfg.seed,
        augment: aug,
        batch: cfg.batch,
        frames: cfg.frames,
        smoothing: cfg.label_smoothing,
        weight_power: cfg.bin_weight_power,
    };
    let batches = Prefetch::start(data.clone(), contract.clone(), spec, state.step..total_steps)?;
    while state.epoch < all_epochs {
        let epoch_started = Instant::now();
        let epoch_first_step = state.step;
        let pretrain = state.epoch < cfg.pretrain_epochs;
        bar.set_prefix(if pretrain {
            format!("pre-training {}/{}", state.epoch + 1, cfg.pretrain_epochs)
        } else {
            format!("epoch {}/{}", state.epoch + 1 - cfg.pretrain_epochs, cfg.epochs)
        });
        let mut loss_sum = 0.0;
        let mut loss_n = 0u64;
        let epoch_end = (state.epoch + 1) * cfg.steps_per_epoch;
        while state.step < epoch_end {
            if run.interrupt.load(Ordering::SeqCst) {
                state.wall_seconds = wall_before + started.elapsed().as_secs_f64();
                save_checkpoint_with(&net, Some(&opt), average.as_ref(), &state, &dir.last())?;
                bar.abandon_with_message("interrupted; checkpoint saved");
                return Ok(TrainOutcome::Interrupted(state));
            }
            let PreparedBatch { step, features, targets, weights, mut rng } = batches.next()?;
            debug_assert_eq!(step, state.step, "batches arrive in step order");
            let bins = contract.bins();
            let x = Tensor::from_slice(&features, (cfg.batch, cfg.frames, bins), &run.device)?;
            let y = Tensor::from_slice(&targets, (cfg.batch, cfg.frames, bins), &Device::Cpu)?;
            let logits = match preset {
                Preset::Live | Preset::Offline => net.forward_dropout(&x, cfg.dropout, &mut rng)?,
                Preset::Lin2018 => net.forward_lin2018_patches(&x, true)?.reshape((cfg.batch, cfg.frames, bins))?,
            };
            let value = if pretrain {
                // Mix·IBM in the network's own feature space (hard IBM: the smoothed target ≥ ½).
                let masked: Vec<f32> =
                    features.iter().zip(&targets).map(|(x, t)| if *t >= 0.5 { *x } else { 0.0 }).collect();
                let target = Tensor::from_vec(masked, (cfg.batch, cfg.frames, bins), &run.device)?;
                (logits - target)?.sqr()?.mean_all()?.to_device(&Device::Cpu)?
            } else {
                // The loss kernels run on the CPU; on a GPU the logits come over for them.
                let logits_cpu = logits.to_device(&Device::Cpu)?;
                let bin_weights = (!weights.is_empty()).then_some(weights.as_slice());
                let mut value = loss(&logits_cpu, &y, kind_bce.clone(), bin_weights)?;
                if cfg.loss == LossChoice::BceDice {
                    let dice = LossKind::Dice(DiceOptions::default());
                    value = (value + loss(&logits_cpu, &y, dice, None)?)?;
                }
                value
            };
            let v = value.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            if !v.is_finite() {
                bar.abandon();
                let last = if dir.last().is_file() {
                    format!("the last good checkpoint is {}", dir.last().display())
                } else {
                    "no checkpoint was saved yet".to_string()
                };
                return Err(Error::Train(format!(
                    "loss became {v} at step {}; stopping ({last}). A lower --lr may help",
                    state.step
                )));
            }
            let grads = value.backward()?;
            let lr = learning_rate(state.step, total_steps, cfg.warmup_steps, cfg.lr, 0.05);
            opt.step(&grads, lr)?;
            state.step += 1;
            if let Some(a) = average.as_mut() {
                a.update(&net, state.step)?;
            }
            loss_sum += v;
            loss_n += 1;
            bar.set_position(state.step);
            bar.set_message(format!("loss {:.4}", loss_sum / loss_n as f64));
            if log_lines && state.step % LOG_EVERY == 0 {
                let rate = (state.step - first_step) as f64 / started.elapsed().as_secs_f64();
                say(format!(
                    "step {}/{total_steps} loss {:.4} ({rate:.2} steps/s)",
                    state.step,
                    loss_sum / loss_n as f64
                ));
            }
        }
        let steps_per_second = (state.step - epoch_first_step) as f64 / epoch_started.elapsed().as_secs_f64();
        // With --ema the averaged weights are validated (and become best.ckpt); the optimiser's
        // come back before the run goes on.
        if let Some(a) = average.as_mut() {
            a.swap(&net)?;
        }
        // Pre-training epochs output magnitudes, not masks: nothing to validate yet.
        let (val_loss, sdr_v, sdr_a, mdx_v) = if pretrain {
            (f64::NAN, f64::NAN, f64::NAN, f64::NAN)
        } else {
            validate(&net, &valid_tracks, cfg.label_smoothing)?
        };
        state.epoch += 1;
        state.wall_seconds = wall_before + started.elapsed().as_secs_f64();
        let log = EpochLog {
            epoch: state.epoch,
            step: state.step,
            lr: learning_rate(state.step.saturating_sub(1), total_steps, cfg.warmup_steps, cfg.lr, 0.05),
            train_loss: loss_sum / loss_n.max(1) as f64,
            val_loss,
            val_sdr_vocals: sdr_v,
            val_sdr_accompaniment: sdr_a,
            val_mdx_vocals: mdx_v,
            wall_seconds: state.wall_seconds,
            steps_per_second,
            pretrain,
        };
        bar.suspend(|| {
            say(if pretrain {
                format!("pre-training epoch {} reconstruction MSE {:.4}", log.epoch, log.train_loss)
            } else {
                format!(
                    "epoch {} loss {:.4} val loss {:.4} val SDR vocals {:.2} dB accompaniment {:.2} dB ({:.2} steps/s)",
                    log.epoch,
                    log.train_loss,
                    log.val_loss,
                    log.val_sdr_vocals,
                    log.val_sdr_accompaniment,
                    log.steps_per_second
                )
            })
        });
        state.history.push(log);
        let improved = sdr_v > state.best_sdr_vocals || (state.best_sdr_vocals.is_infinite() && sdr_v.is_finite());
        if improved {
            state.best_sdr_vocals = sdr_v;
            state.best_epoch = state.epoch;
        }
        if improved {
            save_checkpoint(&net, None, &state, &dir.best())?;
        }
        if let Some(a) = average.as_mut() {
            a.swap(&net)?;
        }
        save_checkpoint_with(&net, Some(&opt), average.as_ref(), &state, &dir.last())?;
        write_csv(&dir.csv(), &state.history)?;
        if let Err(e) = crate::plot::curves::curves(&dir.png(), &state.history) {
            bar.suspend(|| say(format!("note: could not draw {}: {e}", dir.png().display())));
        }
    }
    bar.finish_and_clear();
    Ok(TrainOutcome::Finished(state))
}

fn write_csv(path: &Path, history: &[EpochLog]) -> Result<()> {
    let mut s = String::from(
        "epoch,step,lr,train_loss,val_loss,val_sdr_vocals,val_sdr_accompaniment,val_mdx_vocals,wall_seconds,phase,steps_per_second\n",
    );
    for h in history {
        s.push_str(&format!(
            "{},{},{:.6e},{:.6},{:.6},{:.4},{:.4},{:.4},{:.1},{},{:.3}\n",
            h.epoch,
            h.step,
            h.lr,
            h.train_loss,
            h.val_loss,
            h.val_sdr_vocals,
            h.val_sdr_accompaniment,
            h.val_mdx_vocals,
            h.wall_seconds,
            if h.pretrain { "pretrain" } else { "train" },
            h.steps_per_second
        ));
    }
    std::fs::write(path, s).map_err(|e| Error::io(path, e))
}
