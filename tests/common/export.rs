//! Exported networks must compute what candle computes: random-weight networks of every preset
//! are exported through the ONNX writer and run on one backend (per test binary, because the
//! backend is chosen once per process).

use std::path::Path;

use candle_core::{Device, Tensor};
use voxmask::model::{BackendChoice, Model, RuntimeOptions};
use voxmask::train::export::{GraphKind, export_onnx};
use voxmask::train::net::{Net, Preset};

/// |ONNX − candle| on logits.
pub const EXPORT_TOLERANCE: f32 = 1e-4;

fn features(batch: usize, frames: usize, bins: usize, seed: u64) -> Vec<f32> {
    super::noise(batch * frames * bins, seed, 1.0).iter().map(|v| v.abs() * 3.0).collect()
}

/// A network of `preset` with random weights (from `seed`) and a non-trivial input normalisation.
fn random_net(preset: Preset, seed: u64) -> Net {
    let bins = preset.contract().bins();
    let norm_mean: Vec<f32> = (0..bins).map(|k| (k % 7) as f32 * 0.1).collect();
    let norm_scale: Vec<f32> = (0..bins).map(|k| 0.5 + (k % 5) as f32 * 0.1).collect();
    Net::new(preset, &Device::Cpu, Some((&norm_mean, &norm_scale)), seed).unwrap()
}

/// The candle forward of `net` (inference mode) on `x`, `[batch, frames, bins]`, flattened.
fn candle_forward(net: &Net, x: &[f32], batch: usize, frames: usize) -> Vec<f32> {
    let bins = net.contract.bins();
    let input = Tensor::from_vec(x.to_vec(), (batch, frames, bins), &Device::Cpu).unwrap();
    net.forward(&input, false).unwrap().flatten_all().unwrap().to_vec1().unwrap()
}

/// Checks every preset on `backend`; returns the backend's name.
pub fn exported_nets_match_candle(backend: BackendChoice) -> String {
    let opts = RuntimeOptions { backend, threads: 1, ..Default::default() };
    let mut name = String::new();
    for (preset, batch, frames) in [(Preset::Live, 2, 40), (Preset::Offline, 2, 70), (Preset::Lin2018, 1, 5)] {
        let bins = preset.contract().bins();
        let net = random_net(preset, 3);
        let bytes = export_onnx(&net, GraphKind::Windowed).unwrap();
        let mut model = Model::from_bytes(&bytes, Path::new(preset.name()), &opts).unwrap();
        name = model.backend().name().to_string();
        let x = features(batch, frames, bins, 17);
        let want = candle_forward(&net, &x, batch, frames);
        let mut got = vec![0.0f32; want.len()];
        model.run(&x, batch, frames, &mut got).unwrap();
        let max = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max < EXPORT_TOLERANCE, "{} on {name}: max |onnx - candle| = {max:e}", preset.name());
    }
    name
}

/// The live preset exported as a streaming graph on `backend`: run in calls of assorted sizes
/// from a zero state it equals the candle forward over the whole sequence (a zero state is the
/// windowed graph's zero padding), and through the engine, which first feeds it the silence
/// before the signal, it gives the same stems as the windowed export of the same weights.
pub fn streaming_export_matches_windowed(backend: BackendChoice) {
    use voxmask::model::StreamState;
    use voxmask::separation::{Separator, SeparatorConfig};
    let opts = RuntimeOptions { backend, threads: 1, ..Default::default() };
    let preset = Preset::Live;
    let bins = preset.contract().bins();
    let net = random_net(preset, 5);
    let streaming = export_onnx(&net, GraphKind::Streaming).unwrap();
    let windowed = export_onnx(&net, GraphKind::Windowed).unwrap();
    let mut stream_model = Model::from_bytes(&streaming, Path::new("streaming.onnx"), &opts).unwrap();
    let mut window_model = Model::from_bytes(&windowed, Path::new("windowed.onnx"), &opts).unwrap();
    let contract = stream_model.contract().clone();
    assert!(contract.is_streaming() && !window_model.contract().is_streaming());
    assert_eq!(contract.stream_state.len(), 4, "one state per layer: {:?}", contract.stream_state);

    // Calls of 1, 2, 5, 1, 9, ... frames against one candle forward.
    let (batch, frames) = (2, 40);
    let x = features(batch, frames, bins, 23);
    let want = candle_forward(&net, &x, batch, frames);
    let mut state = StreamState::new(&contract, batch);
    let mut start = 0;
    for size in [1, 2, 5, 1, 9, 3, 19].iter().cycle() {
        if start >= frames {
            break;
        }
        let n = (*size).min(frames - start);
        let mut call = Vec::with_capacity(batch * n * bins);
        for b in 0..batch {
            call.extend_from_slice(&x[(b * frames + start) * bins..(b * frames + start + n) * bins]);
        }
        let mut got = vec![0.0; call.len()];
        stream_model.run_streaming(&call, batch, n, &mut got, &mut state).unwrap();
        for b in 0..batch {
            for (i, (g, w)) in
                got[b * n * bins..(b + 1) * n * bins].iter().zip(&want[(b * frames + start) * bins..]).enumerate()
            {
                assert!((g - w).abs() < EXPORT_TOLERANCE, "batch {b}, frame {}: {g} vs {w}", start + i / bins);
            }
        }
        start += n;
    }
    let mut plain = vec![0.0; batch * bins];
    let err = stream_model.run(&x[..batch * bins], batch, 1, &mut plain).unwrap_err().to_string();
    assert!(err.contains("streaming"), "{err}");

    // Separators at 44.1 kHz, stereo, blocks of 1 and 4 frames, against the windowed model.
    let signal: Vec<Vec<f32>> = (0..2).map(|c| super::noise(44_100 * 2 + 777, 40 + c, 0.3)).collect();
    let run = |model: &mut Model, block: usize| -> Vec<Vec<f32>> {
        let config = SeparatorConfig { block_frames: Some(block), ..SeparatorConfig::new(2, 44_100) };
        let mut separator = Separator::new(model, &config).unwrap();
        let (mut vocals, mut accompaniment) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
        for chunk in (0..signal[0].len()).step_by(3000) {
            let end = (chunk + 3000).min(signal[0].len());
            let input: Vec<&[f32]> = signal.iter().map(|c| &c[chunk..end]).collect();
            separator.process(&input, &mut vocals, &mut accompaniment).unwrap();
        }
        separator.finish(&mut vocals, &mut accompaniment).unwrap();
        vocals
    };
    let reference = run(&mut window_model, 1);
    for block in [1, 4] {
        let got = run(&mut stream_model, block);
        for c in 0..2 {
            let (r, g) = (&reference[c], &got[c]);
            assert_eq!(r.len(), g.len());
            let energy: f64 = r.iter().map(|v| (*v as f64).powi(2)).sum();
            let diff: f64 = r.iter().zip(g).map(|(a, b)| ((a - b) as f64).powi(2)).sum();
            let db = 10.0 * (diff / energy).log10();
            assert!(db < -80.0, "block {block}, channel {c}: streaming vs windowed stems differ at {db:.1} dB");
        }
    }
}
