//! STFT against references: a naive DFT of the same windowed frame, and exact reconstruction of
//! iSTFT(STFT(x)) for every window/hop pair models use.

mod common;

use common::noise;
use realfft::num_complex::Complex32;
use voxmask::dsp::stft::{istft, stft};
use voxmask::dsp::{StftAnalyzer, StftConfig, WindowKind};

/// Reconstruction must be this far below the signal (issue: −100 dB).
const RECONSTRUCTION_DB: f64 = -100.0;
/// Max |FFT − naive DFT| relative to the frame's largest bin.
const DFT_REL_TOL: f64 = 1e-5;

fn error_db(reference: &[f32], estimate: &[f32]) -> f64 {
    let signal: f64 = reference.iter().map(|&x| (x as f64).powi(2)).sum();
    let error: f64 = reference.iter().zip(estimate).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
    10.0 * (error / signal).log10()
}

fn geometries() -> Vec<StftConfig> {
    let hann = WindowKind::Hann;
    vec![
        // Lin et al. 2018: Hann 1024 zero-padded to 4096, hop 256.
        StftConfig { n_fft: 4096, win_length: 1024, hop: 256, window: hann },
        StftConfig { n_fft: 2048, win_length: 2048, hop: 512, window: hann },
        StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: hann },
        StftConfig { n_fft: 1024, win_length: 1024, hop: 512, window: hann },
        StftConfig { n_fft: 512, win_length: 400, hop: 100, window: hann },
        StftConfig { n_fft: 256, win_length: 256, hop: 96, window: hann },
    ]
}

#[test]
fn istft_of_stft_reconstructs_below_minus_100_db() {
    for cfg in geometries() {
        for len in [1usize, cfg.hop - 1, 10_007, 44_100] {
            let x = noise(len, len as u64 + cfg.hop as u64, 1.0);
            let frames = stft(cfg, &x).unwrap();
            assert_eq!(frames.len(), cfg.frames_for(len));
            let y = istft(cfg, &frames, len).unwrap();
            let db = error_db(&x, &y);
            assert!(db < RECONSTRUCTION_DB, "{cfg:?}, {len} samples: error {db:.1} dB");
        }
    }
}

#[test]
fn stft_matches_naive_dft_of_the_windowed_frame() {
    for cfg in geometries() {
        let x = noise(3 * cfg.win_length, 7, 1.0);
        let frames = stft(cfg, &x).unwrap();
        let window = cfg.window.build(cfg.win_length);
        for k in [0usize, 3, frames.len() / 2] {
            // Frame k covers samples [k·hop − (win − hop), (k+1)·hop), zero outside the signal.
            let start = (k * cfg.hop) as isize - (cfg.win_length - cfg.hop) as isize;
            let windowed: Vec<f64> = (0..cfg.win_length)
                .map(|i| {
                    let idx = start + i as isize;
                    let s = if idx >= 0 && (idx as usize) < x.len() { x[idx as usize] as f64 } else { 0.0 };
                    s * window[i] as f64
                })
                .collect();
            let peak = frames[k].iter().map(|c| c.norm() as f64).fold(1e-12, f64::max);
            for bin in (0..cfg.bins()).step_by(37) {
                let (mut re, mut im) = (0.0f64, 0.0f64);
                for (n, &v) in windowed.iter().enumerate() {
                    let phase = -2.0 * std::f64::consts::PI * (bin * n) as f64 / cfg.n_fft as f64;
                    re += v * phase.cos();
                    im += v * phase.sin();
                }
                let got = frames[k][bin];
                let err = ((got.re as f64 - re).powi(2) + (got.im as f64 - im).powi(2)).sqrt() / peak;
                assert!(err < DFT_REL_TOL, "{cfg:?} frame {k} bin {bin}: relative error {err:e}");
            }
        }
    }
}

#[test]
fn invalid_geometry_is_an_error_not_a_panic() {
    let hann = WindowKind::Hann;
    for bad in [
        StftConfig { n_fft: 512, win_length: 1024, hop: 256, window: hann },
        StftConfig { n_fft: 1024, win_length: 1024, hop: 1024, window: hann },
        StftConfig { n_fft: 1024, win_length: 1024, hop: 0, window: hann },
        StftConfig { n_fft: 1023, win_length: 1000, hop: 250, window: hann },
    ] {
        assert!(StftAnalyzer::new(bad).is_err(), "{bad:?} accepted");
    }
    let cfg = StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: hann };
    let mut a = StftAnalyzer::new(cfg).unwrap();
    let mut spec = vec![Complex32::default(); cfg.bins()];
    assert!(a.push_hop(&[0.0; 10], &mut spec).is_err());
}

/// Two channels through one complex FFT (`StftPairAnalyzer`/`StftPairSynthesizer`, what the
/// separation engine runs) give each channel's own spectrum to within the FFT's rounding, and
/// the pair's round trip reconstructs both channels below −100 dB, for every geometry.
#[test]
fn channel_pairs_match_single_channels_and_reconstruct() {
    use voxmask::dsp::{StftPairAnalyzer, StftPairSynthesizer};
    for cfg in geometries() {
        let frames = 40;
        let (a, b) = (
            noise(frames * cfg.hop, 7, 1.0),
            noise(frames * cfg.hop, 8, 1.0).iter().map(|x| 0.01 * x).collect::<Vec<_>>(),
        );
        let mut pair = StftPairAnalyzer::new(cfg).unwrap();
        let mut synth = StftPairSynthesizer::new(cfg).unwrap();
        let (mut single_a, mut single_b) = (StftAnalyzer::new(cfg).unwrap(), StftAnalyzer::new(cfg).unwrap());
        let bins = cfg.bins();
        let (mut sa, mut sb, mut ra, mut rb) = (
            vec![Complex32::default(); bins],
            vec![Complex32::default(); bins],
            vec![Complex32::default(); bins],
            vec![Complex32::default(); bins],
        );
        let (mut out_a, mut out_b) = (Vec::new(), Vec::new());
        let (mut hop_a, mut hop_b) = (vec![0.0f32; cfg.hop], vec![0.0f32; cfg.hop]);
        for k in 0..frames {
            let r = k * cfg.hop..(k + 1) * cfg.hop;
            pair.push_hops([&a[r.clone()], &b[r.clone()]], [&mut sa, &mut sb]).unwrap();
            single_a.push_hop(&a[r.clone()], &mut ra).unwrap();
            single_b.push_hop(&b[r], &mut rb).unwrap();
            // Rounding is at the louder channel's scale (the quiet one is 40 dB down): within
            // 1e-6 of the pair's peak, 120 dB below it.
            let peak = ra.iter().chain(&rb).map(|z| z.norm()).fold(0.0f32, f32::max) as f64;
            for (got, want) in [(&sa, &ra), (&sb, &rb)] {
                let worst = got.iter().zip(want.iter()).map(|(g, w)| (g - w).norm() as f64).fold(0.0, f64::max);
                assert!(worst <= 1e-6 * peak, "{cfg:?} frame {k}: pair spectrum off by {worst:e} (peak {peak:e})");
            }
            synth.push_frames([&sa, &sb], [&mut hop_a, &mut hop_b]).unwrap();
            out_a.extend_from_slice(&hop_a);
            out_b.extend_from_slice(&hop_b);
        }
        let skip = cfg.latency_samples();
        let n = frames * cfg.hop - skip;
        for (name, x, y) in [("a", &a, &out_a), ("b", &b, &out_b)] {
            let db = error_db(&x[..n], &y[skip..skip + n]);
            assert!(db < RECONSTRUCTION_DB, "{cfg:?} channel {name}: pair round trip error {db:.1} dB");
        }
    }
}
