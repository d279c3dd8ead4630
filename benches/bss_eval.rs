//! BSS Eval v4 speed on a 30 s stereo two-source track at 44.1 kHz (museval 0.4.1 takes about
//! 13 s for this on the development machine), on one thread and on all cores.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use voxmask::eval::{BssConfig, BssEval};

const RATE: usize = 44100;
const SECONDS: usize = 30;

/// Deterministic white noise in [-0.5, 0.5) (xorshift64); distinct seeds give distinct streams.
fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = (seed + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// `[source][channel][sample]`.
type Sources = Vec<Vec<Vec<f32>>>;

/// References: two stereo noise sources, one low-passed so the Gram matrix is not diagonal.
/// Estimates: each reference plus 10 % of the other and independent noise.
fn track() -> (Sources, Sources) {
    let len = RATE * SECONDS;
    let mut refs: Sources = (0..2u64).map(|j| (0..2u64).map(|c| noise(len, 1 + 2 * j + c)).collect()).collect();
    for ch in &mut refs[1] {
        let mut y = 0.0f32;
        for v in ch.iter_mut() {
            y = 0.9 * y + 0.1 * *v;
            *v = y * 3.0;
        }
    }
    let ests = (0..2)
        .map(|j| {
            (0..2)
                .map(|c| {
                    let n = noise(len, 100 + 2 * j as u64 + c as u64);
                    (0..len).map(|i| refs[j][c][i] + 0.1 * refs[1 - j][c][i] + 0.05 * n[i]).collect()
                })
                .collect()
        })
        .collect();
    (refs, ests)
}

fn bench(c: &mut Criterion) {
    let (refs, ests) = track();
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut group = c.benchmark_group("bss_eval_v4_30s_stereo_2src");
    group.sample_size(10);
    for threads in [1, all] {
        let mut ev = BssEval::new(BssConfig { threads, ..BssConfig::default() }).expect("default config is valid");
        group.bench_function(format!("threads_{threads}"), |b| {
            b.iter(|| black_box(ev.evaluate(black_box(&refs), black_box(&ests)).expect("valid track")))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
