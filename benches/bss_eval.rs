//! BSS Eval v4 speed on stereo two-source tracks at 44.1 kHz: six 7-second tracks scored one
//! after another by one evaluator, as a dataset eval of MUSDB18's 7 s previews does (time per
//! track), and one 30 s track; on one thread and on all cores.
//!
//! `BSS_EVAL_WAV_DIR=DIR` also writes the six 7 s tracks there as float WAVs
//! (`track{i}/{ref,est}_{0,1}.wav`) for `benches/museval_reference.py`.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Instant;
use voxmask::eval::{BssConfig, BssEval};

const RATE: usize = 44100;
/// Tracks in the dataset-like group: enough that no one track's data dominates.
const SHORT_TRACKS: u64 = 6;

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
/// Estimates: each reference plus 10 % of the other and independent noise. `seed` 0 is the
/// original 30 s track's data.
fn track(seconds: usize, seed: u64) -> (Sources, Sources) {
    let len = RATE * seconds;
    let s = 1000 * seed;
    let mut refs: Sources = (0..2u64).map(|j| (0..2u64).map(|c| noise(len, s + 1 + 2 * j + c)).collect()).collect();
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
                    let n = noise(len, s + 100 + 2 * j as u64 + c as u64);
                    (0..len).map(|i| refs[j][c][i] + 0.1 * refs[1 - j][c][i] + 0.05 * n[i]).collect()
                })
                .collect()
        })
        .collect();
    (refs, ests)
}

/// Writes one source `[channel][sample]` as a 32-bit float WAV, so museval reads the same samples.
fn write_wav(path: &std::path::Path, channels: &[Vec<f32>]) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: RATE as u32,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for i in 0..channels[0].len() {
        for ch in channels {
            w.write_sample(ch[i]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    w.finalize().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn bench(c: &mut Criterion) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());

    let short: Vec<(Sources, Sources)> = (1..=SHORT_TRACKS).map(|seed| track(7, seed)).collect();
    if let Some(dir) = std::env::var_os("BSS_EVAL_WAV_DIR") {
        for (i, (refs, ests)) in short.iter().enumerate() {
            let d = std::path::Path::new(&dir).join(format!("track{i}"));
            std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
            for j in 0..2 {
                write_wav(&d.join(format!("ref_{j}.wav")), &refs[j]);
                write_wav(&d.join(format!("est_{j}.wav")), &ests[j]);
            }
            // The same line as museval_reference.py's, to check both scored the same data.
            let mut ev = BssEval::new(BssConfig::default()).expect("default config is valid");
            let sdr: Vec<String> = ev
                .evaluate(refs, ests)
                .expect("valid track")
                .iter()
                .map(|fs| format!("{:.4}", fs.medians()[0]))
                .collect();
            eprintln!("track{i}: median SDR per source {} dB", sdr.join(" "));
        }
    }
    let mut group = c.benchmark_group(format!("bss_eval_v4_7s_stereo_2src_x{SHORT_TRACKS}"));
    group.sample_size(10);
    for threads in [1, all] {
        let mut ev = BssEval::new(BssConfig { threads, ..BssConfig::default() }).expect("default config is valid");
        // Criterion's time is per track: every iteration scores all tracks, divided by their count.
        group.bench_function(format!("per_track_threads_{threads}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for (refs, ests) in &short {
                        black_box(ev.evaluate(black_box(refs), black_box(ests)).expect("valid track"));
                    }
                }
                start.elapsed() / SHORT_TRACKS as u32
            })
        });
    }
    group.finish();

    let (refs, ests) = track(30, 0);
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
