//! Loss + gradient throughput on a 16 M-element batch (about 1 000 of the paper's 9 × 2049
//! patches' outputs), in GB/s of logits + targets read, beside a plain `copy_from_slice` of the
//! same bytes as the memory-bandwidth ceiling. One thread and all available threads.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxmask::loss::{BceOptions, DiceOptions, bce_with_logits, self_adjusting_dice};

const N: usize = 1 << 24;

fn inputs() -> (Vec<f32>, Vec<f32>) {
    // Cheap deterministic spread of logits over [-8, 8) and ~30 % positive labels.
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = (0..N).map(|_| next() * 16.0 - 8.0).collect();
    let y = (0..N).map(|_| if next() < 0.3 { 1.0 } else { 0.0 }).collect();
    (x, y)
}

fn bench(c: &mut Criterion) {
    let (x, y) = inputs();
    let mut grad = vec![0.0f32; N];
    let (mut copy_x, mut copy_y) = (vec![0.0f32; N], vec![0.0f32; N]);
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut g = c.benchmark_group("loss_16M");
    g.throughput(Throughput::Bytes((2 * N * size_of::<f32>()) as u64));
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(6));

    g.bench_function("copy_from_slice", |b| {
        b.iter(|| {
            copy_x.copy_from_slice(black_box(&x));
            copy_y.copy_from_slice(black_box(&y));
        })
    });
    for threads in [1, all] {
        let opts = BceOptions { label_smoothing: 0.02, threads, ..BceOptions::default() };
        g.bench_function(format!("bce_grad/threads={threads}"), |b| {
            b.iter(|| bce_with_logits(black_box(&x), black_box(&y), None, &opts, Some(&mut grad)))
        });
        let opts = DiceOptions { threads, ..DiceOptions::default() };
        g.bench_function(format!("dice_grad/threads={threads}"), |b| {
            b.iter(|| self_adjusting_dice(black_box(&x), black_box(&y), &opts, Some(&mut grad)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
