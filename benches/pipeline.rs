//! The whole offline pipeline per second of audio: decode the bundled stereo 44.1 kHz MP3,
//! STFT at the file's rate (twice the model's: no resampling), model, mask, iSTFT, encode — on one thread.
//!
//! `fixed_mask` is a model that costs almost nothing (one multiply-add per bin), so its figure is
//! the cost of everything outside the model; `tiny_conv` adds a small real convolution. Each runs
//! with the soft mask and with the stereo Wiener filter (`wiener`, the shipped model's rule). Throughput
//! is in input frames per second: divide by 44 100 for the real-time factor.
//!
//! The inference backend is chosen once per process, so run the bench once per backend:
//!
//!     VOXMASK_BENCH_BACKEND=tract       cargo bench --bench pipeline
//!     VOXMASK_BENCH_BACKEND=onnxruntime cargo bench --bench pipeline
//!
//! The second group is issue 2's target: a 3-minute stereo 44.1 kHz MP3 with the near-free model,
//! where per-file set-up no longer matters. The file is `VOXMASK_BENCH_LONG` when set, else made
//! once with ffmpeg from the bundled sample (`target/bench-3min.mp3`; the group is skipped without
//! ffmpeg). Its outputs go to `/dev/shm` where it exists and are deleted before each run, outside
//! the timing, so neither the disk nor freeing the last run's files is measured.

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use voxmask::dsp::{Feature, MaskRule, ModelOutput, StftConfig, WindowKind};
use voxmask::model::test_models::{fixed_mask_model, tiny_conv_model};
use voxmask::model::{BackendChoice, Contract, Model, RuntimeOptions};
use voxmask::separation::{SeparateOptions, separate_file};

fn contract(context: usize, lookahead: usize) -> Contract {
    Contract {
        sample_rate: 22_050,
        stft: StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: WindowKind::Hann },
        context_frames: context,
        lookahead_frames: lookahead,
        feature: Feature::Log1pMagnitude,
        output: ModelOutput::Logit,
        mask_rule: MaskRule::Soft,
        threshold: 0.5,
        arch: "bench".into(),
        extra: Default::default(),
        stream_state: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let backend = match std::env::var("VOXMASK_BENCH_BACKEND").as_deref() {
        Ok("onnxruntime") => BackendChoice::OnnxRuntime,
        Ok("tract") => BackendChoice::Tract,
        _ => BackendChoice::Auto,
    };
    let opts = RuntimeOptions { backend, threads: 1, ..Default::default() };
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/nightowl.mp3");
    let (info, _) = voxmask::audio::decode::read_all(&sample).expect("bundled sample");
    let frames = info.frames.unwrap_or(0).max(1);
    let dir = tempfile::tempdir().unwrap();
    let fixed = contract(0, 0);
    let models = [
        ("fixed_mask", fixed_mask_model(fixed.bins(), &vec![0.5; fixed.bins()], &fixed.to_metadata()).unwrap()),
        ("tiny_conv", tiny_conv_model(fixed.bins(), 3, 2, 1, &contract(2, 1).to_metadata()).unwrap()),
    ];
    let mut group = c.benchmark_group("pipeline_stereo_44k_mp3");
    group.sample_size(10);
    group.throughput(Throughput::Elements(frames));
    for (name, bytes) in &models {
        let mut model = Model::from_bytes(bytes, Path::new(name), &opts).unwrap();
        // The soft mask, and the stereo Wiener filter that the shipped model asks for.
        for rule in [MaskRule::Soft, MaskRule::Wiener] {
            let label = format!("{name}_{}_{}", rule.name(), model.backend().name());
            let sep = SeparateOptions { overwrite: true, mask: Some(rule), ..Default::default() };
            group.bench_function(label, |b| {
                b.iter(|| separate_file(&mut model, &sample, dir.path(), &sep, &mut |_, _| {}).unwrap())
            });
        }
    }
    group.finish();
    bench_long(c, &opts, &models[0].1);
}

/// The 3-minute file of the module docs, made with ffmpeg when needed; `None` without ffmpeg.
fn long_input() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("VOXMASK_BENCH_LONG") {
        return Some(PathBuf::from(path));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("target/bench-3min.mp3");
    if path.exists() {
        return Some(path);
    }
    let made = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-stream_loop", "30", "-i"])
        .arg(root.join("samples/nightowl.mp3"))
        .args(["-t", "180", "-b:a", "192k"])
        .arg(&path)
        .status();
    match made {
        Ok(status) if status.success() => Some(path),
        _ => {
            eprintln!(
                "pipeline bench: no ffmpeg to make the 3-minute MP3 (set VOXMASK_BENCH_LONG); skipping that group"
            );
            None
        }
    }
}

fn bench_long(c: &mut Criterion, opts: &RuntimeOptions, fixed_model: &[u8]) {
    let Some(input) = long_input() else { return };
    let (info, _) = voxmask::audio::decode::read_all(&input).expect("3-minute MP3");
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let mut model = Model::from_bytes(fixed_model, Path::new("fixed_mask"), opts).unwrap();
    let mut group = c.benchmark_group("pipeline_3min_stereo_44k_mp3");
    group.sample_size(10);
    group.throughput(Throughput::Elements(info.frames.unwrap_or(0).max(1)));
    for rule in [MaskRule::Soft, MaskRule::Wiener] {
        let label = format!("fixed_mask_{}_{}", rule.name(), model.backend().name());
        let sep = SeparateOptions { mask: Some(rule), ..Default::default() };
        group.bench_function(label, |b| {
            b.iter_batched(
                || {
                    for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
                        std::fs::remove_dir_all(entry.path()).unwrap();
                    }
                },
                |()| separate_file(&mut model, &input, dir.path(), &sep, &mut |_, _| {}).unwrap(),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
