//! Throughput of `voxmask::dsp::resample::Resampler` on stereo audio, one thread.
//!
//! Each iteration resamples 10 s of stereo noise in 4096-frame chunks through the non-allocating
//! `process_into` path (plus `finish_into`), so criterion's "elem/s" reads directly as seconds of
//! audio per second, i.e. the real-time factor. voxmask budgets >= 2000x per direction.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use voxmask::dsp::resample::Resampler;

const SECONDS: usize = 10;
const CHUNK: usize = 4096;

fn noise(frames: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    (0..frames)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

fn bench_pair(c: &mut Criterion, from: u32, to: u32) {
    let frames = SECONDS * from as usize;
    let input = [noise(frames, 1), noise(frames, 2)];
    let mut r = Resampler::new(from, to, 2, CHUNK).expect("supported rates");
    let out_len = r.max_output_frames().max(r.delay_frames() + 2 * r.output_block_frames());
    let mut out_l = vec![0.0f32; out_len];
    let mut out_r = vec![0.0f32; out_len];

    let mut group = c.benchmark_group("resample_stereo");
    group.throughput(Throughput::Elements(SECONDS as u64));
    group.bench_function(format!("{from}->{to} process_into"), |b| {
        b.iter(|| {
            let mut produced = 0;
            for start in (0..frames).step_by(CHUNK) {
                let end = (start + CHUNK).min(frames);
                let mut outs = [out_l.as_mut_slice(), out_r.as_mut_slice()];
                produced += r
                    .process_into(&[&input[0][start..end], &input[1][start..end]], &mut outs)
                    .expect("buffers sized by max_output_frames");
            }
            let mut outs = [out_l.as_mut_slice(), out_r.as_mut_slice()];
            produced += r.finish_into(&mut outs).expect("buffers sized for the tail");
            black_box(produced)
        })
    });
    group.finish();
}

fn bench_offline(c: &mut Criterion) {
    let (from, to) = (44100u32, 22050u32);
    let frames = SECONDS * from as usize;
    let input = [noise(frames, 3), noise(frames, 4)];
    let mut r = Resampler::new(from, to, 2, CHUNK).expect("supported rates");
    let mut group = c.benchmark_group("resample_stereo");
    group.throughput(Throughput::Elements(SECONDS as u64));
    group.bench_function(format!("{from}->{to} process (Vec append)"), |b| {
        b.iter(|| {
            let mut out = vec![Vec::new(), Vec::new()];
            for start in (0..frames).step_by(CHUNK) {
                let end = (start + CHUNK).min(frames);
                r.process(&[&input[0][start..end], &input[1][start..end]], &mut out).expect("stereo input");
            }
            r.finish(&mut out).expect("stereo output");
            black_box(out)
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_pair(c, 44100, 22050);
    bench_pair(c, 22050, 44100);
    bench_pair(c, 48000, 44100);
    bench_offline(c);
}

criterion_group! {
    name = resample;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(resample);
