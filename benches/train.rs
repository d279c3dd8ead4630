//! Training steps per second on the CPU for each preset: one optimiser step is a forward pass,
//! the cross-entropy loss op (our kernel), the backward pass and an AdamW update, on a batch of
//! the preset's default shape (TCN presets: 16 × 128 frames × 513 bins; lin2018: 107 patches of
//! 9 × 2049). Throughput is reported in steps. `<preset>-generic` runs the TCN presets through
//! candle's generic ops instead of the fused temporal convolution op, for comparison in one run.

use candle_core::{Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxmask::loss::BceOptions;
use voxmask::train::net::{Net, Preset};
use voxmask::train::ops::{LossKind, loss};
use voxmask::train::optim::{AdamW, AdamWConfig};
use voxmask::train::trainer::TrainConfig;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step_cpu");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1));
    let only = std::env::var("VOXMASK_BENCH_PRESETS").ok();
    let cases = [
        (Preset::Offline, false),
        (Preset::Offline, true),
        (Preset::Live, false),
        (Preset::Live, true),
        (Preset::Lin2018, false),
    ];
    for (preset, generic) in cases {
        let name = if generic { format!("{}-generic", preset.name()) } else { preset.name().to_string() };
        if only.as_deref().is_some_and(|o| !o.split(',').any(|p| p == name)) {
            continue;
        }
        let cfg = TrainConfig::for_preset(Default::default(), preset);
        let bins = preset.contract().bins();
        let net = Net::new(preset, &Device::Cpu, None, 1).unwrap();
        let mut opt = AdamW::new(net.trainable().unwrap(), AdamWConfig::default()).unwrap();
        let n = cfg.batch * cfg.frames * bins;
        let x = Tensor::from_vec(
            (0..n).map(|i| ((i * 7919) % 1000) as f32 / 300.0).collect::<Vec<_>>(),
            (cfg.batch, cfg.frames, bins),
            &Device::Cpu,
        )
        .unwrap();
        let y = Tensor::from_vec(
            (0..n).map(|i| if (i * 31) % 3 == 0 { 0.98f32 } else { 0.02 }).collect::<Vec<_>>(),
            (cfg.batch, cfg.frames, bins),
            &Device::Cpu,
        )
        .unwrap();
        group.bench_function(&name, |b| {
            b.iter(|| {
                let logits = match (preset, generic) {
                    (Preset::Lin2018, _) => {
                        net.forward_lin2018_patches(&x, true).unwrap().reshape((cfg.batch, cfg.frames, bins)).unwrap()
                    }
                    (_, true) => net.forward_generic(&x).unwrap(),
                    (_, false) => net.forward(&x, true).unwrap(),
                };
                let l = loss(&logits, &y, LossKind::Bce(BceOptions::default()), None).unwrap();
                let grads = l.backward().unwrap();
                opt.step(&grads, 1e-4).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
