//! STFT + iSTFT throughput (frames per second, one thread) for the geometries models use.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use realfft::num_complex::Complex32;
use voxmask::dsp::{StftAnalyzer, StftConfig, StftSynthesizer, WindowKind};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("stft_istft");
    for (name, cfg) in [
        ("default_1024_hop256", StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: WindowKind::Hann }),
        (
            "lin2018_4096_win1024_hop256",
            StftConfig { n_fft: 4096, win_length: 1024, hop: 256, window: WindowKind::Hann },
        ),
        ("2048_hop512", StftConfig { n_fft: 2048, win_length: 2048, hop: 512, window: WindowKind::Hann }),
    ] {
        let frames = 1000;
        let signal: Vec<f32> = (0..frames * cfg.hop).map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5).collect();
        let mut a = StftAnalyzer::new(cfg).unwrap();
        let mut s = StftSynthesizer::new(cfg).unwrap();
        let mut spec = vec![Complex32::default(); cfg.bins()];
        let mut out = vec![0.0f32; cfg.hop];
        group.throughput(Throughput::Elements(frames as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                for hop in signal.chunks_exact(cfg.hop) {
                    a.push_hop(hop, &mut spec).unwrap();
                    s.push_frame(&mut spec, &mut out).unwrap();
                }
                out[0]
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
