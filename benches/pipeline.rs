//! The whole offline pipeline per second of audio: decode the bundled stereo 44.1 kHz MP3,
//! resample to the model's rate, STFT, model, mask, iSTFT, resample back, encode — on one thread.
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

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxmask::dsp::{Feature, MaskRule, ModelOutput, StftConfig, WindowKind};
use voxmask::model::onnx_writer::{fixed_mask_model, tiny_conv_model};
use voxmask::model::{BackendChoice, Contract, Model, RuntimeOptions};
use voxmask::separate::{SeparateOptions, separate_file};

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
    for (name, bytes) in models {
        let mut model = Model::from_bytes(&bytes, Path::new(name), &opts).unwrap();
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
