//! The live separator's cost per model block against the block's real-time budget.
//!
//! Each iteration feeds exactly one block (`block_frames` hops) of stereo audio through
//! [`LiveSeparator::process`] at the model's rate, so the reported time per iteration is the
//! separator's time per block; the budget is `block_frames × hop / sample_rate` (11.6 ms per frame for the
//! shipped model's 256-sample hop at 22.05 kHz). The load target is a model time per
//! second of audio of at most 20% of one core: time per block ≤ 0.2 × budget. After the
//! criterion output each case prints that ratio. A 48 kHz device case adds both resamplers.
//!
//! Models: the shipped live model `models/voxmask-live.onnx` when present (streaming), its
//! windowed twin exported from the same weights, and a tiny convolutional model made by the
//! project's ONNX writer (the cost of everything around the model). One backend per
//! process: `VOXMASK_BENCH_BACKEND=tract|onnxruntime cargo bench --bench live_separator`.

#[cfg(feature = "live")]
mod imp {
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    use criterion::{Criterion, Throughput};
    use voxmask::dsp::{Feature, MaskRule, ModelOutput, StftConfig, WindowKind};
    use voxmask::model::test_models::tiny_conv_model;
    use voxmask::model::{BackendChoice, Contract, Model, RuntimeOptions};
    use voxmask::stream::{LiveConfig, LiveSeparator};
    use voxmask::train::export::{GraphKind, export_onnx, import_onnx};

    fn tiny_contract() -> Contract {
        Contract {
            sample_rate: 22_050,
            stft: StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: WindowKind::Hann },
            context_frames: 8,
            lookahead_frames: 1,
            feature: Feature::Log1pMagnitude,
            output: ModelOutput::Logit,
            mask_rule: MaskRule::Soft,
            threshold: 0.5,
            arch: "bench".into(),
            extra: Default::default(),
            stream_state: Vec::new(),
        }
    }

    /// The models benched, by name and file (each case loads its own: a live separator owns it).
    fn models(dir: &Path, opts: &RuntimeOptions) -> Vec<(String, PathBuf)> {
        let mut out = Vec::new();
        let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/voxmask-live.onnx");
        if shipped.is_file() {
            match Model::load(&shipped, opts) {
                Ok(_) => out.push(("shipped".to_string(), shipped.clone())),
                Err(e) => eprintln!("live_separator bench: skipping the shipped model: {e}"),
            }
            // Its windowed twin (the same weights, every call over the whole 31-frame window):
            // what streaming saves, measured in the same run.
            let twin = dir.join("shipped_windowed.onnx");
            let exported = import_onnx(&shipped).and_then(|net| export_onnx(&net, GraphKind::Windowed));
            match exported.map(|bytes| std::fs::write(&twin, bytes)) {
                Ok(Ok(())) => out.push(("shipped_windowed".to_string(), twin)),
                Ok(Err(e)) => eprintln!("live_separator bench: skipping the windowed twin: {e}"),
                Err(e) => eprintln!("live_separator bench: skipping the windowed twin: {e}"),
            }
        } else {
            eprintln!("live_separator bench: models/voxmask-live.onnx not found; benching the tiny model only");
        }
        let c = tiny_contract();
        let path = dir.join("tiny_conv.onnx");
        std::fs::write(
            &path,
            tiny_conv_model(c.bins(), 5, c.context_frames, c.lookahead_frames, &c.to_metadata()).unwrap(),
        )
        .unwrap();
        out.push(("tiny_conv".to_string(), path));
        out
    }

    fn signal(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed | 1;
        (0..len)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                0.3 * (i as f32 * 0.031).sin() + 0.1 * ((s >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
            })
            .collect()
    }

    pub fn bench(c: &mut Criterion) {
        let backend = match std::env::var("VOXMASK_BENCH_BACKEND").as_deref() {
            Ok("onnxruntime") => BackendChoice::OnnxRuntime,
            Ok("tract") => BackendChoice::Tract,
            _ => BackendChoice::Auto,
        };
        let opts = RuntimeOptions { backend, threads: 1, ..Default::default() };
        let dir = tempfile::tempdir().unwrap();
        let mut summary = Vec::new();
        let mut group = c.benchmark_group("live_separator_per_block");
        group.sample_size(20);
        for (name, path) in models(dir.path(), &opts) {
            let contract = Model::load(&path, &opts).unwrap().contract().clone();
            let rule = contract.mask_rule;
            for block in [1usize, 4, 16] {
                for device_rate in [contract.sample_rate, 48_000] {
                    let ratio = device_rate as f64 / contract.sample_rate as f64;
                    // Device frames per block (rounded: resampled cases average out over calls).
                    let frames = ((block * contract.stft.hop) as f64 * ratio).round() as usize;
                    let cfg = LiveConfig { block_frames: block, max_call: frames, ..LiveConfig::new(2, device_rate) };
                    let model = Model::load(&path, &opts).unwrap();
                    let backend = model.backend().name();
                    let mut separator = LiveSeparator::new(model, rule, cfg).unwrap();
                    let input = [signal(frames, 1), signal(frames, 2)];
                    let mut outs = vec![vec![0.0f32; frames]; 6];
                    let mut run = |separator: &mut LiveSeparator| {
                        let i: Vec<&[f32]> = input.iter().map(Vec::as_slice).collect();
                        let (v, rest) = outs.split_at_mut(2);
                        let (a, m) = rest.split_at_mut(2);
                        let mut v: Vec<&mut [f32]> = v.iter_mut().map(|c| c.as_mut_slice()).collect();
                        let mut a: Vec<&mut [f32]> = a.iter_mut().map(|c| c.as_mut_slice()).collect();
                        let mut m: Vec<&mut [f32]> = m.iter_mut().map(|c| c.as_mut_slice()).collect();
                        separator.process(&i, &mut v, &mut a, &mut m).unwrap();
                    };
                    // Warm up past the start-up latency so every iteration runs a model block.
                    for _ in 0..64 {
                        run(&mut separator);
                    }
                    let budget = (block * contract.stft.hop) as f64 / contract.sample_rate as f64;
                    let label = format!("{name}_{backend}_block{block}_{device_rate}Hz");
                    group.throughput(Throughput::Elements(frames as u64));
                    group.bench_function(&label, |b| b.iter(|| run(&mut separator)));
                    // A direct measurement for the budget ratio printed below.
                    let reps = 50;
                    let t = Instant::now();
                    for _ in 0..reps {
                        run(&mut separator);
                    }
                    let per_block = t.elapsed().as_secs_f64() / reps as f64;
                    summary.push(format!(
                        "{label}: {:.3} ms per block of {:.1} ms budget = {:.1}% of one core (target ≤ 20%)",
                        per_block * 1e3,
                        budget * 1e3,
                        100.0 * per_block / budget
                    ));
                }
            }
        }
        group.finish();
        for line in summary {
            eprintln!("{line}");
        }
    }
}

#[cfg(feature = "live")]
criterion::criterion_group!(benches, imp::bench);
#[cfg(feature = "live")]
criterion::criterion_main!(benches);

#[cfg(not(feature = "live"))]
fn main() {
    eprintln!("the live_separator bench needs the `live` feature");
}
