//! Validation: each validation track's mixture separated by the product's [`Separator`] with the
//! candle network inside (so the scores are those `voxmask separate` gives the exported model),
//! scored with BSS Eval v4, plus the cross-entropy against the IBM over the whole track.

use candle_core::{Device, Tensor};

use crate::dataset::Stems;
use crate::dsp::stft::stft;
use crate::eval::{BssConfig, bss_eval_v4, mdx_sdr, nan_median};
use crate::loss::{BceOptions, bce_with_logits, ibm_targets};
use crate::model::Contract;
use crate::separation::{MaskNetwork, Separator, SeparatorConfig};
use crate::train::net::{Net, Preset};
use crate::{Error, Result};

/// The validation loss and scores of one track.
struct Scored {
    loss: f64,
    sdr_vocals: f64,
    sdr_accomp: f64,
    mdx_vocals: f64,
}

/// Logits for a whole sequence `[channels, frames, bins]`, computed block by block with the
/// contract's context on each side so that memory stays bounded and results equal one pass.
pub fn forward_long(net: &Net, features: &[f32], channels: usize, frames: usize) -> Result<Vec<f32>> {
    let c = &net.contract;
    let bins = c.bins();
    let block = validation_block(net.preset);
    let (ctx, la) = (c.context_frames, c.lookahead_frames);
    let mut out = vec![0.0f32; channels * frames * bins];
    let mut start = 0;
    while start < frames {
        let end = (start + block).min(frames);
        let (lo, hi) = (start.saturating_sub(ctx), (end + la).min(frames));
        let mut window = Vec::with_capacity(channels * (hi - lo) * bins);
        for ch in 0..channels {
            window.extend_from_slice(&features[(ch * frames + lo) * bins..(ch * frames + hi) * bins]);
        }
        let x = Tensor::from_vec(window, (channels, hi - lo, bins), &net.device)?;
        let y = net.forward(&x, false)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
        for ch in 0..channels {
            let src = (ch * (hi - lo) + (start - lo)) * bins;
            let dst = (ch * frames + start) * bins;
            out[dst..dst + (end - start) * bins].copy_from_slice(&y[src..src + (end - start) * bins]);
        }
        start = end;
    }
    Ok(out)
}

/// Model-call blocks for the network in training: long for the temporal presets (memory grows
/// with the block only linearly), short for lin2018's per-frame patches.
fn validation_block(preset: Preset) -> usize {
    match preset {
        Preset::Live | Preset::Offline => 2048,
        Preset::Lin2018 => 32,
    }
}

/// The candle network in training runs inside the product's [`Separator`]: validation scores
/// are those `voxmask separate` would give the exported model (up to float rounding).
impl MaskNetwork for &Net {
    fn contract(&self) -> &Contract {
        &self.contract
    }

    fn name(&self) -> String {
        format!("the {} network in training", self.preset.name())
    }

    fn run(&mut self, input: &[f32], batch: usize, frames: usize, output: &mut [f32]) -> Result<()> {
        let x = Tensor::from_slice(input, (batch, frames, self.contract.bins()), &self.device)?;
        let y = self.forward(&x, false)?.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?;
        if y.len() != output.len() {
            return Err(Error::Train(format!("network output has {} values, expected {}", y.len(), output.len())));
        }
        output.copy_from_slice(&y);
        Ok(())
    }
}

fn validate_track(net: &Net, stems: &Stems, smoothing: f32) -> Result<Scored> {
    let c = net.contract.clone();
    let bins = c.bins();
    let channels = stems.vocals.len();
    let mixture: Vec<Vec<f32>> = stems
        .vocals
        .iter()
        .zip(&stems.accompaniment)
        .map(|(v, a)| v.iter().zip(a).map(|(v, a)| v + a).collect())
        .collect();
    // The loss against the IBM, over the whole track.
    let mut features = Vec::new();
    let mut targets = Vec::new();
    let mut frames = 0;
    for ((mix, vocals), accompaniment) in mixture.iter().zip(&stems.vocals).zip(&stems.accompaniment) {
        let xs = stft(c.stft, mix)?;
        let vs = stft(c.stft, vocals)?;
        let as_ = stft(c.stft, accompaniment)?;
        frames = xs.len();
        let mut feat = vec![0.0f32; bins];
        let mut tgt = vec![0.0f32; bins];
        for ((x, v), a) in xs.iter().zip(&vs).zip(&as_) {
            c.feature.compute_into(x, None, &mut feat);
            features.extend_from_slice(&feat);
            let vm: Vec<f32> = v.iter().map(|z| z.norm()).collect();
            let am: Vec<f32> = a.iter().map(|z| z.norm()).collect();
            ibm_targets(&vm, &am, smoothing, &mut tgt)?;
            targets.extend_from_slice(&tgt);
        }
    }
    let logits = forward_long(net, &features, channels, frames)?;
    let loss = bce_with_logits(&logits, &targets, None, &BceOptions::default(), None)?;
    // The scores of what the product's separator makes of the mixture.
    let config = SeparatorConfig {
        block_frames: Some(validation_block(net.preset)),
        ..SeparatorConfig::new(channels, c.sample_rate)
    };
    let mut separator = Separator::new(net, &config)?;
    let (mut est_v, mut est_a) = (vec![Vec::new(); channels], vec![Vec::new(); channels]);
    let input: Vec<&[f32]> = mixture.iter().map(Vec::as_slice).collect();
    separator.process(&input, &mut est_v, &mut est_a)?;
    separator.finish(&mut est_v, &mut est_a)?;
    let refs = vec![stems.vocals.clone(), stems.accompaniment.clone()];
    let ests = vec![est_v, est_a];
    let win = c.sample_rate as usize;
    let cfg = BssConfig { win, hop: win, filter_len: 512, threads: 1 };
    let scores = bss_eval_v4(&refs, &ests, &cfg)?;
    Ok(Scored {
        loss,
        sdr_vocals: nan_median(&scores[0].sdr),
        sdr_accomp: nan_median(&scores[1].sdr),
        mdx_vocals: mdx_sdr(&refs[0], &ests[0])?,
    })
}

/// Validation loss and scores over tracks (medians over tracks, as SiSEC reports).
pub fn validate(net: &Net, tracks: &[(String, Stems)], smoothing: f32) -> Result<(f64, f64, f64, f64)> {
    let mut losses = Vec::new();
    let (mut v, mut a, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for (_, stems) in tracks {
        let s = validate_track(net, stems, smoothing)?;
        losses.push(s.loss);
        v.push(s.sdr_vocals);
        a.push(s.sdr_accomp);
        m.push(s.mdx_vocals);
    }
    let mean_loss = losses.iter().sum::<f64>() / losses.len().max(1) as f64;
    Ok((mean_loss, nan_median(&v), nan_median(&a), nan_median(&m)))
}
