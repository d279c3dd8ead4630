//! Exported networks must compute what candle computes: random-weight networks of every preset
//! are exported through the ONNX writer and run on one backend (per test binary, because the
//! backend is chosen once per process).

use std::path::Path;

use candle_core::{Device, Tensor};
use voxmask::model::{BackendChoice, Model, RuntimeOptions};
use voxmask::train::export::export_onnx;
use voxmask::train::net::{Net, Preset};

/// |ONNX − candle| on logits.
pub const EXPORT_TOLERANCE: f32 = 1e-4;

fn features(batch: usize, frames: usize, bins: usize, seed: u64) -> Vec<f32> {
    super::noise(batch * frames * bins, seed, 1.0).iter().map(|v| v.abs() * 3.0).collect()
}

/// Checks every preset on `backend`; returns the backend's name.
pub fn exported_nets_match_candle(backend: BackendChoice) -> String {
    let opts = RuntimeOptions { backend, threads: 1, ..Default::default() };
    let mut name = String::new();
    for (preset, batch, frames) in [(Preset::Live, 2, 40), (Preset::Offline, 2, 70), (Preset::Lin2018, 1, 5)] {
        let bins = preset.contract().bins();
        let norm_mean: Vec<f32> = (0..bins).map(|k| (k % 7) as f32 * 0.1).collect();
        let norm_scale: Vec<f32> = (0..bins).map(|k| 0.5 + (k % 5) as f32 * 0.1).collect();
        let net = Net::new(preset, &Device::Cpu, Some((&norm_mean, &norm_scale)), 3).unwrap();
        let bytes = export_onnx(&net).unwrap();
        let mut model = Model::from_bytes(&bytes, Path::new(preset.name()), &opts).unwrap();
        name = model.backend().name().to_string();
        let x = features(batch, frames, bins, 17);
        let want: Vec<f32> = net
            .forward(&Tensor::from_vec(x.clone(), (batch, frames, bins), &Device::Cpu).unwrap(), false)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut got = vec![0.0f32; want.len()];
        model.run(&x, batch, frames, &mut got).unwrap();
        let max = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max < EXPORT_TOLERANCE, "{} on {name}: max |onnx - candle| = {max:e}", preset.name());
    }
    name
}
