//! voxmask-train end to end on tiny generated datasets (MUSDB18-HQ, DSD100 and MIR-1K layouts, and
//! two datasets at once), cross-dataset batches and band-limited loss weights, prefetched batches,
//! the fused temporal convolution op against candle's generic ops, the loss op against the slice
//! kernel, dataset detection on the real MUSDB18 previews, Ctrl-C and an exact --resume, and a
//! diverging run that stops with its last good checkpoint intact.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use candle_core::{Device, Tensor, Var};
use common::*;
use voxmask::dataset::{Layout, Split, list_tracks, load_stems};
use voxmask::loss::{BceOptions, bce_with_logits};
use voxmask::train::ops::{LossKind, loss};

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voxmask-train"))
}

/// A track: a vocal-like tone burst over noise accompaniment split into three stems.
fn write_stems(dir: &Path, seed: u64, rate: u32, with_mixture: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let n = rate as usize * 2;
    let voice: Vec<f32> = sine(300.0 + 40.0 * seed as f32, rate, n, 0.3)
        .iter()
        .enumerate()
        .map(|(i, v)| if (i / 4000) % 2 == 0 { *v } else { 0.0 })
        .collect();
    let parts = [noise(n, seed * 3 + 1, 0.05), noise(n, seed * 3 + 2, 0.05), sine(80.0, rate, n, 0.1)];
    for (name, x) in [("vocals", &voice), ("drums", &parts[0]), ("bass", &parts[2]), ("other", &parts[1])] {
        write_wav(&dir.join(format!("{name}.wav")), rate, &[x.clone(), x.clone()], 16);
    }
    if with_mixture {
        let mix: Vec<f32> = (0..n).map(|i| voice[i] + parts[0][i] + parts[1][i] + parts[2][i]).collect();
        write_wav(&dir.join("mixture.wav"), rate, &[mix.clone(), mix], 16);
    }
}

fn musdb_hq_tree(root: &Path) {
    for (i, name) in ["alpha", "beta", "gamma"].iter().enumerate() {
        write_stems(&root.join("train").join(name), i as u64 + 1, 22_050, true);
    }
    write_stems(&root.join("test/delta"), 9, 22_050, true);
}

fn dsd100_tree(root: &Path) {
    for (subset, names) in
        [("Dev", vec!["001 - A", "002 - B", "003 - C", "004 - D", "005 - E"]), ("Test", vec!["006 - F"])]
    {
        for (i, name) in names.iter().enumerate() {
            let src = root.join("Sources").join(subset).join(name);
            write_stems(&src, i as u64 + 1, 16_000, false);
            let mix_dir = root.join("Mixtures").join(subset).join(name);
            std::fs::create_dir_all(&mix_dir).unwrap();
            std::fs::copy(src.join("vocals.wav"), mix_dir.join("mixture.wav")).unwrap();
        }
    }
}

fn quick_args(dataset: &Path, out: &Path, epochs: u64) -> Vec<String> {
    [
        "--dataset",
        dataset.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        &epochs.to_string(),
        "--steps-per-epoch",
        "3",
        "--batch",
        "2",
        "--frames",
        "32",
        "--valid",
        "alpha",
        "--seed",
        "5",
        "--threads",
        "1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// A one-epoch quick run into `out` with `extra` arguments, which must succeed; returns `out`.
fn quick_run(dataset: &Path, out: &Path, extra: &[&str]) -> PathBuf {
    let mut args = quick_args(dataset, out, 1);
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = run(trainer().args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    out.to_path_buf()
}

fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    let t = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    let mut v: Vec<(String, Vec<f32>)> = t
        .into_iter()
        .filter(|(k, _)| !k.starts_with("adam."))
        .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn trains_checkpoints_logs_and_exports_on_a_musdb18hq_tree() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let (layout, tracks) = list_tracks(&data, Split::Train, Some(&["alpha".to_string()])).unwrap();
    assert_eq!(layout, Layout::Musdb18Hq);
    assert_eq!(tracks.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["beta", "gamma"]);
    let run_dir = dir.path().join("run");
    let o = run(trainer().args(quick_args(&data, &run_dir, 2)));
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["last.ckpt", "last.json", "best.ckpt", "best.json", "log.csv", "curves.png"] {
        assert!(run_dir.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(run_dir.join("log.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.lines().nth(2).unwrap().starts_with("2,6,"), "{csv}");
    let rate: f64 = csv.lines().nth(2).unwrap().rsplit(',').next().unwrap().parse().unwrap();
    assert!(rate > 0.0 && rate.is_finite(), "steps per second of the epoch: {csv}");
    assert_eq!(&std::fs::read(run_dir.join("curves.png")).unwrap()[..4], b"\x89PNG");
    // Export with the full contract, then the runtime accepts it.
    let model = dir.path().join("m.onnx");
    let o = run(trainer().args(["export", run_dir.join("best.ckpt").to_str().unwrap(), "-o", model.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(voxmask().arg("inspect").arg("--json").arg(&model));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["metadata"]["voxmask.train.preset"], "offline");
    assert_eq!(v["metadata"]["voxmask.train.tracks"], "2 train, 1 validation");
    assert!(v["metadata"]["voxmask.train.valid_sdr_vocals"].as_str().unwrap().contains("dB"));
    // The mask rule chosen on validation can be stored at export.
    let paper = dir.path().join("paper.onnx");
    let o = run(trainer().args([
        "export",
        run_dir.join("best.ckpt").to_str().unwrap(),
        "-o",
        paper.to_str().unwrap(),
        "--mask",
        "paper",
        "--threshold",
        "0.3",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(voxmask().arg("inspect").arg(&paper));
    assert!(stdout(&o).contains("mask rule    paper (threshold 0.3)"), "{}", stdout(&o));
    let input = dir.path().join("in.wav");
    write_wav(&input, 44_100, &[noise(44_100, 3, 0.2)], 16);
    let o = run(voxmask().args(["separate", "-q", "-m"]).arg(&model).arg(&input).arg("-o").arg(dir.path().join("sep")));
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn init_warm_starts_and_bin_weights_change_the_update() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let base = dir.path().join("base");
    let o = run(trainer().args(quick_args(&data, &base, 1)));
    assert!(o.status.success(), "{}", stderr(&o));
    let init = base.join("last.ckpt");
    let with = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = quick_args(&data, &out, 1);
        args.extend(["--init".to_string(), init.to_str().unwrap().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let o = run(trainer().args(args));
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    // A learning rate of zero leaves the initial weights untouched: they are the checkpoint's.
    let frozen = with("frozen", &["--lr", "0"]);
    assert_same_weights(&init, &frozen.join("last.ckpt"), "--init with --lr 0");
    // The same steps from the same start, with and without bin weights, end apart.
    let plain = with("plain", &[]);
    let weighted = with("weighted", &["--bin-weight-power", "1"]);
    assert_ne!(weights(&plain.join("last.ckpt")), weights(&weighted.join("last.ckpt")));
    // Both settings travel into the exported model's provenance.
    let model = dir.path().join("w.onnx");
    let o =
        run(trainer().args(["export", weighted.join("best.ckpt").to_str().unwrap(), "-o", model.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(voxmask().arg("inspect").arg("--json").arg(&model));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["metadata"]["voxmask.train.bin_weights"], "|X|^1");
    assert!(v["metadata"]["voxmask.train.init"].as_str().unwrap().ends_with("last.ckpt"));
    // A checkpoint from before the normalisation cap (one huge scale) is capped on a warm start.
    let mut tensors = candle_core::safetensors::load(&init, &Device::Cpu).unwrap();
    let mut scale: Vec<f32> = tensors["norm.scale"].to_vec1().unwrap();
    let last = scale.len() - 1;
    scale[last] = 1e4;
    tensors.insert("norm.scale".into(), candle_core::Tensor::from_vec(scale, last + 1, &Device::Cpu).unwrap());
    let old = dir.path().join("old.ckpt");
    candle_core::safetensors::save(&tensors, &old).unwrap();
    // Checkpoints of that time carried no checksum either.
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("last.json")).unwrap()).unwrap();
    state.as_object_mut().unwrap().remove("checkpoint_crc32");
    std::fs::write(dir.path().join("old.json"), state.to_string()).unwrap();
    let out = dir.path().join("capped");
    let mut args = quick_args(&data, &out, 1);
    args.extend(["--init", old.to_str().unwrap(), "--lr", "0"].map(String::from));
    let o = run(trainer().args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    let capped: Vec<f32> =
        candle_core::safetensors::load(out.join("last.ckpt"), &Device::Cpu).unwrap()["norm.scale"].to_vec1().unwrap();
    let mut sorted = capped.clone();
    sorted.sort_by(f32::total_cmp);
    assert!(
        capped[last] <= sorted[last / 2] * 10.001,
        "scale {} not capped (median {})",
        capped[last],
        sorted[last / 2]
    );
    // A missing --init checkpoint is named.
    let mut args = quick_args(&data, &dir.path().join("bad"), 1);
    args.extend(["--init".into(), "/nonexistent/x.ckpt".into()]);
    let o = run(trainer().args(args));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("/nonexistent/x.ckpt"), "{}", stderr(&o));
}

#[test]
fn dropout_is_seeded_and_changes_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let train =
        |name: &str, extra: &[&str]| weights(&quick_run(&data, &dir.path().join(name), extra).join("last.ckpt"));
    let a = train("a", &["--dropout", "0.3"]);
    let b = train("b", &["--dropout", "0.3"]);
    let plain = train("plain", &[]);
    // The masks come from the step's seeded RNG: the same seed gives the same weights ...
    assert_eq!(a, b, "dropout runs with one seed differ");
    // ... and the dropout really acts.
    assert_ne!(a, plain, "--dropout changed nothing");
    let o = run(trainer().args(quick_args(&data, &dir.path().join("bad"), 1)).args(["--dropout", "0.95"]));
    assert!(!o.status.success() && stderr(&o).contains("--dropout"), "{}", stderr(&o));
}

/// `--part-remix` reads the accompaniment's stems from the MUSDB18-HQ tree, is seeded, changes
/// the batches, is recorded in the exported model, and refuses values outside 0..=1.
#[test]
fn part_remixing_is_seeded_and_changes_training() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let train = |name: &str, extra: &[&str]| quick_run(&data, &dir.path().join(name), extra);
    let (a, b, plain) = (train("a", &["--part-remix", "1"]), train("b", &["--part-remix", "1"]), train("plain", &[]));
    assert_eq!(weights(&a.join("last.ckpt")), weights(&b.join("last.ckpt")), "part-remix runs with one seed differ");
    assert_ne!(weights(&a.join("last.ckpt")), weights(&plain.join("last.ckpt")), "--part-remix changed nothing");
    let model = dir.path().join("pr.onnx");
    let o = run(trainer().args(["export", a.join("last.ckpt").to_str().unwrap(), "-o", model.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(voxmask().args(["inspect", model.to_str().unwrap()]));
    assert!(stdout(&o).contains("part remix 1"), "{}", stdout(&o));
    let o = run(trainer().args(quick_args(&data, &dir.path().join("bad"), 1)).args(["--part-remix", "1.5"]));
    assert!(!o.status.success() && stderr(&o).contains("--part-remix"), "{}", stderr(&o));
}

#[test]
fn autoencoder_pretraining_precedes_the_supervised_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    for preset in ["offline", "live", "lin2018"] {
        let out = dir.path().join(preset);
        let mut args = quick_args(&data, &out, 1);
        args.extend(["--pretrain-epochs", "2", "--preset", preset].map(String::from));
        let o = run(trainer().args(args));
        assert!(o.status.success(), "{preset}: {}", stderr(&o));
        let csv = std::fs::read_to_string(out.join("log.csv")).unwrap();
        let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
        assert_eq!(rows.len(), 3, "{preset}: {csv}");
        assert_eq!(rows.iter().map(|r| r[9]).collect::<Vec<_>>(), ["pretrain", "pretrain", "train"], "{preset}: {csv}");
        // Pre-training epochs report the reconstruction error and no scores; the supervised one
        // is validated, and only it can be the best checkpoint.
        for r in &rows[..2] {
            assert!(r[3].parse::<f64>().unwrap().is_finite() && r[5] == "NaN", "{preset}: {csv}");
        }
        assert!(rows[2][5].parse::<f64>().unwrap().is_finite(), "{preset}: {csv}");
        let best: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("best.json")).unwrap()).unwrap();
        assert_eq!(best["best_epoch"], 3, "{preset}");
        assert!(stderr(&o).contains("pre-training epoch 1 reconstruction MSE"), "{preset}: {}", stderr(&o));
    }
}

#[test]
fn ctrl_c_saves_and_resume_reproduces_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let straight = dir.path().join("straight");
    let o = run(trainer().args(quick_args(&data, &straight, 3)).arg("-q"));
    assert!(o.status.success(), "{}", stderr(&o));
    // Seeded runs are reproducible.
    let again = dir.path().join("again");
    let o = run(trainer().args(quick_args(&data, &again, 3)).arg("-q"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_weights(&straight.join("last.ckpt"), &again.join("last.ckpt"), "a second seeded run");

    let resumed = dir.path().join("resumed");
    let mut child = trainer().args(quick_args(&data, &resumed, 3)).arg("-q").spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !resumed.join("last.ckpt").is_file() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = child.wait().unwrap();
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(resumed.join("last.json")).unwrap()).unwrap();
    let step = state["step"].as_u64().unwrap();
    if status.code() == Some(130) {
        assert!((3..=9).contains(&step), "interrupted at step {step}");
    } else {
        // The run finished before the signal arrived: nothing to resume, still a valid run.
        assert!(status.success());
    }
    let o = run(trainer().args(["--resume", resumed.to_str().unwrap(), "-q"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_weights(&straight.join("last.ckpt"), &resumed.join("last.ckpt"), "the resumed run");
}

fn assert_same_weights(a: &Path, b: &Path, what: &str) {
    let (a, b) = (weights(a), weights(b));
    assert_eq!(a.len(), b.len());
    for ((na, wa), (nb, wb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        let max = wa.iter().zip(wb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(max <= 1e-5, "{na}: {what} differs by {max}");
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

#[test]
fn a_diverging_run_stops_with_a_message_and_keeps_its_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let out = dir.path().join("run");
    let mut args = quick_args(&data, &out, 6);
    let spe = args.iter().position(|a| a == "--steps-per-epoch").unwrap();
    args[spe + 1] = "1".into();
    args.extend(["--lr".into(), "1e6".into(), "-q".into()]);
    let o = run(trainer().args(&args));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("loss became") || err.contains("non-finite"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    if out.join("last.ckpt").is_file() {
        let w = weights(&out.join("last.ckpt"));
        assert!(w.iter().all(|(_, v)| v.iter().all(|x| x.is_finite())), "the kept checkpoint holds non-finite weights");
    }
}

#[test]
fn dsd100_layout_is_detected_split_and_trainable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("DSD100");
    dsd100_tree(&data);
    let (layout, train) = list_tracks(&data, Split::Train, None).unwrap();
    assert_eq!(layout, Layout::Dsd100);
    let (_, valid) = list_tracks(&data, Split::Valid, None).unwrap();
    let (_, test) = list_tracks(&data, Split::Test, None).unwrap();
    assert_eq!((train.len(), valid.len(), test.len()), (4, 1, 1));
    assert_eq!(test[0].name, "006 - F");
    let stems = load_stems(&train[0], Some(22_050)).unwrap();
    assert_eq!(stems.sample_rate, 22_050);
    assert_eq!(stems.vocals[0].len(), 44_100);
    let out = dir.path().join("run");
    let o = run(trainer().args([
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch",
        "2",
        "--frames",
        "32",
        "-q",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    // An incomplete track is a clear error naming it.
    std::fs::remove_file(data.join("Sources/Dev/002 - B/drums.wav")).unwrap();
    let err = list_tracks(&data, Split::Train, None).unwrap_err().to_string();
    assert!(err.contains("002 - B") && err.contains("drums.wav"), "{err}");
}

#[test]
fn loss_op_matches_the_slice_kernel_value_and_gradient() {
    let n = 3 * 7 * 11;
    let logits: Vec<f32> = noise(n, 1, 6.0);
    let targets: Vec<f32> = noise(n, 2, 1.0).iter().map(|v| if *v > 0.0 { 0.98 } else { 0.02 }).collect();
    let bin_weights: Vec<f32> = noise(n, 3, 1.0).iter().map(|v| 1.0 + v.abs() * 3.0).collect();
    for weights in [None, Some(bin_weights.as_slice())] {
        let var = Var::from_vec(logits.clone(), (3, 7, 11), &Device::Cpu).unwrap();
        let y = Tensor::from_vec(targets.clone(), (3, 7, 11), &Device::Cpu).unwrap();
        let value = loss(var.as_tensor(), &y, LossKind::Bce(BceOptions::default()), weights).unwrap();
        let grads = value.backward().unwrap();
        let g: Vec<f32> = grads.get(&var).unwrap().flatten_all().unwrap().to_vec1().unwrap();
        let mut expected = vec![0.0f32; n];
        let want = bce_with_logits(&logits, &targets, weights, &BceOptions::default(), Some(&mut expected)).unwrap();
        assert!((value.to_scalar::<f32>().unwrap() as f64 - want).abs() < 1e-6, "weights {}", weights.is_some());
        assert!(g.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-9), "weights {}", weights.is_some());
    }
    // The weights really enter: the weighted loss differs from the plain one.
    let plain = bce_with_logits(&logits, &targets, None, &BceOptions::default(), None).unwrap();
    let weighted = bce_with_logits(&logits, &targets, Some(&bin_weights), &BceOptions::default(), None).unwrap();
    assert!((plain - weighted).abs() > 1e-3);
}

#[test]
fn the_real_musdb18_previews_are_listed_with_the_official_split() {
    let Some(shared) = shared_data("", "the_real_musdb18_previews_are_listed_with_the_official_split") else { return };
    let root: PathBuf = shared.join("data/musdb18-7s");
    let (layout, train) = list_tracks(&root, Split::Train, None).unwrap();
    let (_, valid) = list_tracks(&root, Split::Valid, None).unwrap();
    assert_eq!(layout, Layout::Musdb18);
    assert_eq!((train.len(), valid.len()), (80, 14));
    assert!(valid.iter().all(|t| voxmask::dataset::MUSDB_VALIDATION.contains(&t.name.as_str())));
    let stems = load_stems(&valid[0], None).unwrap();
    let n = stems.vocals[0].len();
    assert!(n > 44_100 * 6);
    // The stored mixture is coded separately: it matches vocals + accompaniment to codec noise.
    let sum: Vec<f32> = (0..n).map(|i| stems.vocals[0][i] + stems.accompaniment[0][i]).collect();
    assert!(diff_db(&stems.mixture[0], &stems.mixture[0], &sum, 0..n) < -15.0);
}

/// Input normalisation never amplifies a nearly empty bin by more than 1/MIN_STD_FRACTION times
/// the median bin's scale. Band-limited training data leaves the top bins almost empty; before
/// this floor the shipped model standardised them with scales up to 800, which made it react
/// to any change in the band edge.
#[test]
fn feature_scales_of_nearly_empty_bins_are_bounded() {
    use voxmask::dataset::{Stems, resample_all};
    use voxmask::train::data::{MIN_STD_FRACTION, SpectralData};
    use voxmask::train::net::Preset;
    let contract = Preset::Live.contract();
    // Noise brought to the model's rate through the band-limiting resampler: its top bins hold
    // only the filter's stopband.
    let x = vec![noise(44_100 * 3, 7, 0.3)];
    let v = resample_all(&x, 44_100, 22_050).unwrap();
    let a = resample_all(&[noise(44_100 * 3, 8, 0.3)], 44_100, 22_050).unwrap();
    let stems = Stems {
        sample_rate: 22_050,
        source_rate: 22_050,
        mixture: v.clone(),
        vocals: v,
        accompaniment: a,
        accompaniment_parts: Vec::new(),
    };
    let data = SpectralData::new(&contract, &[("t".into(), stems)], 16).unwrap();
    let (_, scale) = data.feature_stats(&contract);
    let mut sorted = scale.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    let top = *sorted.last().unwrap();
    assert!(top <= median / MIN_STD_FRACTION as f32 * 1.001, "top scale {top} vs median {median}");
    // The top bins really are the capped ones (the floor acts, it is not vacuous).
    assert!(scale[contract.bins() - 1] >= median / MIN_STD_FRACTION as f32 * 0.999, "{}", scale[contract.bins() - 1]);
}

/// MIR-1K clips as users download them: `Wavfile/<singer>_<song>_<clip>.wav`, 16 kHz stereo with
/// the accompaniment (a low tone) on the left and the vocals (noise bursts) on the right.
fn mir1k_tree(root: &Path) -> PathBuf {
    let dir = root.join("Wavfile");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, name) in ["abjones_1_01", "amy_2_01", "amy_2_02", "bobon_3_01"].iter().enumerate() {
        let n = 16_000 * 2 + 37 * i;
        let acc = sine(110.0 + 10.0 * i as f32, 16_000, n, 0.2);
        let voc: Vec<f32> = noise(n, 40 + i as u64, 0.2)
            .iter()
            .enumerate()
            .map(|(j, v)| if (j / 3000) % 2 == 0 { *v } else { 0.0 })
            .collect();
        write_wav(&dir.join(format!("{name}.wav")), 16_000, &[acc, voc], 16);
    }
    dir
}

#[test]
fn mir1k_layout_gives_mono_tracks_with_the_vocals_from_the_right_channel() {
    use voxmask::dataset::MIR1K_VALIDATION_SINGERS;
    let dir = tempfile::tempdir().unwrap();
    let wavfile = mir1k_tree(&dir.path().join("MIR-1K"));
    assert!(MIR1K_VALIDATION_SINGERS.contains(&"abjones"));
    // The folder holding Wavfile/, and Wavfile/ itself.
    for root in [dir.path().join("MIR-1K"), wavfile.clone()] {
        let (layout, train) = list_tracks(&root, Split::Train, None).unwrap();
        assert_eq!(layout, Layout::Mir1k, "{}", root.display());
        let names: Vec<&str> = train.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["amy_2_01", "amy_2_02", "bobon_3_01"], "whole singers are held out");
        let (_, valid) = list_tracks(&root, Split::Valid, None).unwrap();
        assert_eq!(valid.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["abjones_1_01"]);
        assert!(list_tracks(&root, Split::Test, None).unwrap().1.is_empty(), "MIR-1K has no test part");
    }
    let (_, valid) = list_tracks(&wavfile, Split::Valid, None).unwrap();
    let (_, stored) = read_wav(&wavfile.join("abjones_1_01.wav"));
    let stems = load_stems(&valid[0], None).unwrap();
    assert_eq!((stems.sample_rate, stems.source_rate), (16_000, 16_000));
    assert_eq!(
        (stems.vocals.len(), stems.accompaniment.len(), stems.mixture.len()),
        (1, 1, 1),
        "one mono track per clip"
    );
    let close = |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
    assert!(close(&stems.vocals[0], &stored[1]), "vocals are the right channel");
    assert!(close(&stems.accompaniment[0], &stored[0]), "accompaniment is the left channel");
    let sum: Vec<f32> = stored[0].iter().zip(&stored[1]).map(|(a, v)| a + v).collect();
    assert!(close(&stems.mixture[0], &sum), "the mixture is left + right");
    // At the model's rate: the exact resampled length, and the band the 16 kHz source carries.
    let (_, train) = list_tracks(&wavfile, Split::Train, None).unwrap();
    let up = load_stems(&train[2], Some(22_050)).unwrap();
    let n = 16_000 * 2 + 37 * 3;
    assert_eq!((up.sample_rate, up.source_rate), (22_050, 16_000));
    assert_eq!(up.vocals[0].len(), (n as f64 * 22_050.0 / 16_000.0).round() as usize);
    assert_eq!(up.bandwidth_hz(), 6_000.0, "75 % of the source's 8 kHz Nyquist: the resampler's flat band");
}

/// Stems of one mono track at the model's rate, stored at `source_rate`.
fn noise_stems(seed: u64, source_rate: u32) -> voxmask::dataset::Stems {
    let n = 22_050 * 2;
    let v = vec![noise(n, seed, 0.3)];
    let a = vec![noise(n, seed + 1, 0.3)];
    voxmask::dataset::Stems {
        sample_rate: 22_050,
        source_rate,
        mixture: v.clone(),
        vocals: v,
        accompaniment: a,
        accompaniment_parts: Vec::new(),
    }
}

/// One batch of 16 × 24 frames drawn with `seed`: (features, targets, weights).
fn draw(data: &voxmask::train::data::SpectralData, seed: u64, power: f32) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    use voxmask::train::data::{Augment, step_rng};
    let contract = voxmask::train::net::Preset::Offline.contract();
    let aug = Augment { remix: 1.0, ..Augment::default() };
    let (mut f, mut t, mut w) = (Vec::new(), Vec::new(), Vec::new());
    data.batch(&contract, &mut step_rng(seed, 0), &aug, 16, 24, 0.02, power, &mut f, &mut t, &mut w).unwrap();
    (f, t, w)
}

#[test]
fn band_limited_stems_get_zero_loss_weight_above_their_band() {
    use voxmask::train::data::SpectralData;
    let contract = voxmask::train::net::Preset::Offline.contract();
    let bins = contract.bins();
    let hz = |k: usize| k as f32 * 22_050.0 / contract.stft.n_fft as f32;
    // Full-band material only: no weights unless asked for (the loss is the unweighted one).
    let full = SpectralData::new(&contract, &[("full".into(), noise_stems(1, 44_100))], 24).unwrap();
    assert!(draw(&full, 3, 0.0).2.is_empty());
    // Material stored at 16 kHz: weight 1 below its band, 0 above its Nyquist frequency.
    let low = SpectralData::new(&contract, &[("mir".into(), noise_stems(1, 16_000))], 24).unwrap();
    for power in [0.0, 1.0] {
        let (_, _, w) = draw(&low, 3, power);
        assert_eq!(w.len(), 16 * 24 * bins);
        for row in w.chunks(bins) {
            for (k, &v) in row.iter().enumerate() {
                if hz(k) > 8_000.0 {
                    assert_eq!(v, 0.0, "bin {k} ({} Hz) above the 16 kHz stem's Nyquist", hz(k));
                } else if hz(k) < 6_000.0 && power == 0.0 {
                    assert_eq!(v, 1.0, "bin {k} ({} Hz) inside the stem's band", hz(k));
                } else if hz(k) < 6_000.0 {
                    assert!(v > 0.0, "bin {k} ({} Hz) inside the band weighted by loudness", hz(k));
                }
            }
        }
    }
}

/// A dataset given as `DIR:vocals` lends only its vocals: its accompaniments (here 60 dB louder
/// than anything else, so any use of them shows in the features) never enter a batch, with or
/// without remixing, while its vocals do (the band-limited rows).
#[test]
fn vocals_only_datasets_never_lend_their_accompaniment() {
    use voxmask::train::data::{Augment, SpectralData, TrackRole, step_rng};
    use voxmask::train::trainer::DatasetSpec;
    let contract = voxmask::train::net::Preset::Offline.contract();
    let bins = contract.bins();
    let mut karaoke = noise_stems(5, 16_000);
    karaoke.accompaniment = vec![noise(22_050 * 2, 9, 300.0)];
    let tracks = [("musdb".into(), noise_stems(1, 44_100)), ("mir".into(), karaoke)];
    let role = |vocals_only| TrackRole { weight: 1.0, vocals_only };
    let peak = |data: &SpectralData, remix: f32| {
        let aug = Augment { remix, ..Augment::default() };
        let (mut f, mut t, mut w) = (Vec::new(), Vec::new(), Vec::new());
        data.batch(&contract, &mut step_rng(11, 0), &aug, 16, 24, 0.02, 0.0, &mut f, &mut t, &mut w).unwrap();
        let limited = w.chunks(bins).filter(|row| row[bins - 1] == 0.0).count();
        (f.iter().copied().fold(0.0f32, f32::max), limited)
    };
    let plain = SpectralData::with_roles(&contract, &tracks, Some(&[role(false), role(false)]), 24).unwrap();
    let vocals_only = SpectralData::with_roles(&contract, &tracks, Some(&[role(false), role(true)]), 24).unwrap();
    for remix in [0.0, 1.0] {
        let (loud, _) = peak(&plain, remix);
        let (quiet, limited) = peak(&vocals_only, remix);
        assert!(loud > quiet + 3.0, "remix {remix}: the karaoke accompaniment never showed ({loud} vs {quiet})");
        assert!(limited > 0, "remix {remix}: the vocals-only dataset's vocals were never drawn");
    }
    let err = SpectralData::with_roles(&contract, &tracks, Some(&[role(true), role(true)]), 24).err().unwrap();
    assert!(err.to_string().contains("must supply accompaniments"), "{err}");
    let spec = DatasetSpec::parse("/no/such/mir-1k:0.5:vocals").unwrap();
    assert_eq!((spec.path.to_str(), spec.weight, spec.vocals_only), (Some("/no/such/mir-1k"), 0.5, true));
    let spec = DatasetSpec::parse("/no/such/mir-1k:vocals").unwrap();
    assert_eq!((spec.path.to_str(), spec.weight, spec.vocals_only), (Some("/no/such/mir-1k"), 1.0, true));
    assert!(!DatasetSpec::parse("/no/such/musdb:2").unwrap().vocals_only);
}

#[test]
fn cross_dataset_mixing_is_seeded_and_follows_the_weights() {
    use voxmask::train::data::SpectralData;
    let contract = voxmask::train::net::Preset::Offline.contract();
    let bins = contract.bins();
    let tracks = [("musdb".into(), noise_stems(1, 44_100)), ("mir".into(), noise_stems(5, 16_000))];
    let limited = |w: &[f32]| w.chunks(bins).filter(|row| row[bins - 1] == 0.0).count();
    let data = SpectralData::weighted(&contract, &tracks, Some(&[1.0, 1.0]), 24).unwrap();
    let (a, b) = (draw(&data, 7, 0.0), draw(&data, 7, 0.0));
    assert!(a == b, "the same seed draws the same batch");
    assert!(draw(&data, 8, 0.0).0 != a.0, "another seed draws another batch");
    // Vocals and accompaniment are drawn independently: an example is full-band only when both
    // come from the full-band track (1 in 4 with equal weights).
    let rows = 16 * 24;
    let n = limited(&a.2);
    assert!(n > rows / 2 && n < rows, "{n} of {rows} frames band-limited");
    // Weight 0 never draws the full-band track; a tiny weight for the low-rate one almost never.
    let only_low = SpectralData::weighted(&contract, &tracks, Some(&[0.0, 1.0]), 24).unwrap();
    assert_eq!(limited(&draw(&only_low, 7, 0.0).2), rows);
    let mostly_full = SpectralData::weighted(&contract, &tracks, Some(&[1.0, 1e-9]), 24).unwrap();
    assert_eq!(limited(&draw(&mostly_full, 7, 0.0).2), 0);
    // Input statistics come from the full-band material, which is what the model will separate.
    let (mean_mixed, _) = data.feature_stats(&contract);
    let (mean_full, _) = SpectralData::new(&contract, &tracks[..1], 24).unwrap().feature_stats(&contract);
    assert_eq!(mean_mixed, mean_full);
}

#[test]
fn trains_on_two_datasets_at_once_and_eval_reads_mir1k() {
    let dir = tempfile::tempdir().unwrap();
    let musdb = dir.path().join("musdb18hq");
    musdb_hq_tree(&musdb);
    let mir = dir.path().join("MIR-1K");
    mir1k_tree(&mir);
    let out = dir.path().join("run");
    let mir_arg = format!("{}:2", mir.display());
    let run_dir = quick_run(&musdb, &out, &["--dataset", &mir_arg, "--preset", "live"]);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("last.json")).unwrap()).unwrap();
    assert_eq!(state["train_tracks"], 2 + 3, "two MUSDB18-HQ and three MIR-1K training tracks");
    assert_eq!(state["valid_tracks"], 1, "validation comes from the first dataset only");
    assert_eq!(state["config"]["datasets"][1]["weight"], 2.0);
    let model = dir.path().join("m.onnx");
    let o = run(trainer().args(["export", run_dir.join("best.ckpt").to_str().unwrap(), "-o", model.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(voxmask().arg("inspect").arg("--json").arg(&model));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let provenance = v["metadata"]["voxmask.train.dataset"].as_str().unwrap();
    assert!(provenance.contains("musdb18hq") && provenance.contains("MIR-1K (weight 2)"), "{provenance}");
    // `voxmask eval` scores MIR-1K's held-out singers with the trained model.
    let json = dir.path().join("mir.json");
    let o = run(voxmask()
        .args(["eval", "--dataset", mir.to_str().unwrap(), "--split", "valid", "-m", model.to_str().unwrap(), "--json"])
        .arg(&json));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["aggregate"]["tracks"], 1, "{v}");
    assert!(v.to_string().contains("abjones_1_01"), "{v}");
}

/// The fused temporal convolution op gives the logits and gradients of candle's generic ops.
#[test]
fn fused_temporal_convolution_matches_the_generic_path_forward_and_backward() {
    use voxmask::train::net::{Net, Preset};
    for preset in [Preset::Live, Preset::Offline] {
        let bins = preset.contract().bins();
        let net = Net::new(preset, &Device::Cpu, None, 11).unwrap();
        let (b, t) = (2, 45);
        let x: Vec<f32> = noise(b * t * bins, 21, 1.0).iter().map(|v| v.abs() * 3.0).collect();
        let x = Tensor::from_vec(x, (b, t, bins), &Device::Cpu).unwrap();
        let targets: Vec<f32> =
            noise(b * t * bins, 22, 1.0).iter().map(|v| if *v > 0.0 { 0.98 } else { 0.02 }).collect();
        let y = Tensor::from_vec(targets, (b, t, bins), &Device::Cpu).unwrap();
        let fused = net.forward(&x, true).unwrap();
        let generic = net.forward_generic(&x).unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let max_diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        let scale = flat(&generic).iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = max_diff(&flat(&fused), &flat(&generic));
        assert!(d <= 1e-5 * scale.max(1.0), "{}: logits differ by {d} (scale {scale})", preset.name());
        let gf = loss(&fused, &y, LossKind::Bce(BceOptions::default()), None).unwrap().backward().unwrap();
        let gg = loss(&generic, &y, LossKind::Bce(BceOptions::default()), None).unwrap().backward().unwrap();
        for (name, var) in net.trainable().unwrap() {
            let (a, b) = (flat(gf.get(&var).unwrap()), flat(gg.get(&var).unwrap()));
            let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{}: `{name}` has no gradient", preset.name());
            let d = max_diff(&a, &b);
            assert!(d <= 1e-4 * scale, "{}: gradient of `{name}` differs by {d} (largest {scale})", preset.name());
        }
    }
}

/// Batches prepared ahead on their own thread are exactly the batches drawn in place, and the
/// RNG each step continues with (for its dropout masks) is in the same state.
#[test]
fn prefetched_batches_equal_batches_drawn_in_place() {
    use rand::Rng;
    use std::sync::Arc;
    use voxmask::train::data::{Augment, BatchSpec, Prefetch, SpectralData, step_rng};
    let contract = voxmask::train::net::Preset::Offline.contract();
    let tracks = [("musdb".into(), noise_stems(1, 44_100)), ("mir".into(), noise_stems(5, 16_000))];
    let data = Arc::new(SpectralData::weighted(&contract, &tracks, Some(&[2.0, 1.0]), 24).unwrap());
    let spec =
        BatchSpec { seed: 9, augment: Augment::default(), batch: 3, frames: 24, smoothing: 0.02, weight_power: 1.0 };
    let ahead = Prefetch::start(data.clone(), contract.clone(), spec, 5..9).unwrap();
    for step in 5..9 {
        let mut got = ahead.next().unwrap();
        let mut rng = step_rng(9, step);
        let (mut f, mut t, mut w) = (Vec::new(), Vec::new(), Vec::new());
        data.batch(&contract, &mut rng, &spec.augment, 3, 24, 0.02, 1.0, &mut f, &mut t, &mut w).unwrap();
        assert_eq!(got.step, step);
        assert!(got.features == f && got.targets == t && got.weights == w, "step {step}");
        assert_eq!(
            got.rng.random::<u64>(),
            rng.random::<u64>(),
            "step {step}: the RNG continues where the batch left it"
        );
    }
    assert!(ahead.next().is_err(), "no batch beyond the range");
}

/// A run never overwrites another by accident: a folder holding a run is refused without
/// --resume or --overwrite, export keeps an existing model, --resume refuses other datasets or
/// presets, a damaged checkpoint is caught by its checksum, a file that is not a checkpoint is
/// called that, and nonsense options are refused with the limit.
#[test]
fn runs_checkpoints_and_models_are_protected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let out = quick_run(&data, &dir.path().join("run"), &[]);
    let before = std::fs::read(out.join("last.ckpt")).unwrap();
    // A second new run into the same folder.
    let o = run(trainer().args(quick_args(&data, &out, 1)));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already holds a run") && stderr(&o).contains("--resume"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("last.ckpt")).unwrap(), before, "the refused run touched the checkpoint");
    // --overwrite starts over.
    quick_run(&data, &out, &["--overwrite"]);
    // --resume with another dataset or preset.
    let other = dir.path().join("other");
    musdb_hq_tree(&other);
    for (extra, needle) in
        [(vec!["--dataset", other.to_str().unwrap()], "trains on"), (vec!["--preset", "live"], "preset")]
    {
        let mut args = vec!["--resume", out.to_str().unwrap(), "--epochs", "2", "-q"];
        args.extend(extra);
        let o = run(trainer().args(&args));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    // Export keeps an existing model unless told otherwise.
    let model = dir.path().join("m.onnx");
    std::fs::write(&model, b"keep me").unwrap();
    let export = |extra: &[&str]| {
        run(trainer()
            .args(["export", out.join("best.ckpt").to_str().unwrap(), "-o", model.to_str().unwrap()])
            .args(extra))
    };
    let o = export(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&model).unwrap(), b"keep me");
    assert!(export(&["--overwrite"]).status.success());
    // One flipped bit in the checkpoint: resume and export both refuse it.
    let mut bytes = std::fs::read(out.join("last.ckpt")).unwrap();
    let at = bytes.len() - 17;
    bytes[at] ^= 0x10;
    std::fs::write(out.join("last.ckpt"), &bytes).unwrap();
    let o = run(trainer().args(["--resume", out.to_str().unwrap(), "--epochs", "2", "-q"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    let o = run(trainer().args([
        "export",
        out.join("last.ckpt").to_str().unwrap(),
        "-o",
        dir.path().join("x.onnx").to_str().unwrap(),
    ]));
    assert!(stderr(&o).contains("damaged"), "{}", stderr(&o));
    // Not a checkpoint at all.
    let not_ckpt = dir.path().join("m.ckpt");
    std::fs::copy(&model, &not_ckpt).unwrap();
    let o =
        run(trainer().args(["export", not_ckpt.to_str().unwrap(), "-o", dir.path().join("y.onnx").to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a voxmask-train checkpoint"), "{}", stderr(&o));
    // An exported model exports again from its own weights: the same bytes. The offline preset
    // looks ahead, so it cannot stream; a model voxmask-train did not make cannot be read back.
    let again = dir.path().join("again.onnx");
    let o = run(trainer().args(["export", model.to_str().unwrap(), "-o", again.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read(&again).unwrap() == std::fs::read(&model).unwrap(), "re-export changed the model");
    let o = run(trainer().args([
        "export",
        model.to_str().unwrap(),
        "--streaming",
        "-o",
        dir.path().join("s.onnx").to_str().unwrap(),
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("only causal networks can stream"), "{}", stderr(&o));
    let foreign = dir.path().join("foreign.onnx");
    let c = contract(22_050, 0, 0, voxmask::dsp::MaskRule::Binary);
    std::fs::write(
        &foreign,
        voxmask::model::test_models::fixed_mask_model(c.bins(), &vec![0.0; c.bins()], &c.to_metadata()).unwrap(),
    )
    .unwrap();
    let o =
        run(trainer().args(["export", foreign.to_str().unwrap(), "-o", dir.path().join("f.onnx").to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not a network exported by voxmask-train"), "{}", stderr(&o));
    // Options out of range.
    for (flag, value) in [
        ("--lr", "nan"),
        ("--lr", "-1"),
        ("--lr", "1e30"),
        ("--epochs", "0"),
        ("--steps-per-epoch", "0"),
        ("--batch", "0"),
        ("--frames", "0"),
    ] {
        let mut args = quick_args(&data, &dir.path().join("bad"), 1);
        if let Some(i) = args.iter().position(|a| a == flag) {
            args.drain(i..i + 2);
        }
        args.push(format!("{flag}={value}"));
        let o = run(trainer().args(&args));
        assert!(matches!(o.status.code(), Some(1 | 2)), "{flag} {value}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(flag.trim_start_matches('-')) || stderr(&o).contains(flag),
            "{flag} {value}: {}",
            stderr(&o)
        );
        assert!(!dir.path().join("bad/last.ckpt").exists(), "{flag} {value} trained");
    }
}

/// `--ema`: the averaged weights are saved beside the optimiser's, validated and kept as
/// best.ckpt, and a resumed run continues the average exactly.
#[test]
fn weight_averaging_is_validated_kept_and_resumed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("musdb18hq");
    musdb_hq_tree(&data);
    let one = quick_run(&data, &dir.path().join("one"), &["--ema", "0.9"]);
    let last = candle_core::safetensors::load(one.join("last.ckpt"), &Device::Cpu).unwrap();
    let best = weights(&one.join("best.ckpt"));
    // One epoch: best.ckpt is that epoch's average, not the optimiser's weights.
    let mut differs = false;
    for (name, w) in &best {
        let avg: Vec<f32> = last[&format!("ema.{name}")].flatten_all().unwrap().to_vec1().unwrap();
        let raw: Vec<f32> = last[name].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(w, &avg, "{name}: best.ckpt is not the averaged weights");
        differs |= raw != avg;
    }
    assert!(differs, "the average equals the raw weights: nothing was averaged");
    // Two epochs straight, or one and a resume: the same weights and averages.
    let straight = dir.path().join("straight");
    let o = run(trainer().args(quick_args(&data, &straight, 2)).args(["--ema", "0.9"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(trainer().args(["--resume", one.to_str().unwrap(), "--epochs", "2", "-q", "--threads", "1"]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_weights(&straight.join("last.ckpt"), &one.join("last.ckpt"), "a resumed --ema run");
    let o = run(trainer().args(quick_args(&data, &dir.path().join("bad"), 1)).args(["--ema", "1"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--ema"), "{}", stderr(&o));
}
