//! Two tiny, documented models made with the project's ONNX writer, which the fixtures, runtime
//! tests and benches are built from: [`fixed_mask_model`] (a known mask whatever the input) and
//! [`TinyConv`] (a small temporal convolution with past context and look-ahead), and the seeded
//! generator their weights come from.

use super::onnx_writer::*;
use crate::{Error, Result};

/// A model whose output ignores the input's values: `mask[b, t, f] = 0 * spec[b, t, f] + logit[f]`.
///
/// The multiply by zero keeps `mask` tied to `spec`'s dynamic `[batch, frames, bins]` shape (by
/// broadcasting) so runtimes must honour the symbolic axes, while the values are known exactly:
/// e.g. large positive logits for low bins and large negative ones above say "low frequencies
/// are vocal". Non-finite input values propagate (0 × ∞ is NaN), as in any real model.
/// `logits_per_bin.len()` must equal `bins`.
pub fn fixed_mask_model(bins: usize, logits_per_bin: &[f32], metadata: &[(String, String)]) -> Result<Vec<u8>> {
    if logits_per_bin.len() != bins {
        return Err(Error::Mismatch {
            what: "fixed mask model logits".into(),
            expected: format!("{bins} values (one per bin)"),
            got: logits_per_bin.len().to_string(),
        });
    }
    let mut g = GraphBuilder::new("voxmask_fixed_mask");
    g.voxmask_io(bins)?;
    let zero = g.initializer_f32("zero", &[1], &[0.0])?;
    let logits = g.initializer_f32("logits", &[to_i64(bins)?], logits_per_bin)?;
    let zeros = g.mul(INPUT_NAME, &zero);
    g.node("Add", &[&zeros, &logits], &[OUTPUT_NAME], Vec::new());
    for (k, v) in metadata {
        g.metadata(k, v);
    }
    g.to_bytes()
}

/// A tiny fully-convolutional network with bounded look-ahead, standing in for a trained model:
///
/// `spec [B,T,F]` → Unsqueeze → `[B,1,T,F]` → Conv(1→[`TinyConv::HIDDEN`], kernel
/// `(past + 1 + lookahead) × 3`, pads `[past, 1, lookahead, 1]`) → Relu → Conv(HIDDEN→1, 1×1)
/// → Squeeze → `mask [B,T,F]` (logits).
///
/// Output frame `t` depends on input frames `t - past ..= t + lookahead` only (zero padding at
/// the edges), and the frame and bin counts are preserved. Weights are deterministic
/// pseudo-random numbers (xorshift64) from the seed, uniform in ±[`TinyConv::WEIGHT_SCALE`]
/// (biases ±[`TinyConv::BIAS_SCALE`]).
#[derive(Clone, Debug, PartialEq)]
pub struct TinyConv {
    pub past_frames: usize,
    pub lookahead_frames: usize,
    /// First conv weight, `[HIDDEN, 1, past + 1 + lookahead, 3]` row-major.
    pub w1: Vec<f32>,
    /// First conv bias, `[HIDDEN]`.
    pub b1: Vec<f32>,
    /// Second conv weight, `[1, HIDDEN, 1, 1]`.
    pub w2: Vec<f32>,
    /// Second conv bias, `[1]`.
    pub b2: Vec<f32>,
}

impl TinyConv {
    /// Hidden channels.
    pub const HIDDEN: usize = 4;
    /// Kernel width along frequency.
    pub const FREQ_KERNEL: usize = 3;
    /// Half-range of the weights.
    pub const WEIGHT_SCALE: f32 = 0.5;
    /// Half-range of the biases.
    pub const BIAS_SCALE: f32 = 0.1;

    /// Draws the weights from `seed`. Draw order: `w1`, `b1`, `w2`, `b2`, each row-major.
    pub fn new(seed: u64, past_frames: usize, lookahead_frames: usize) -> Self {
        let mut rng = XorShift64::new(seed);
        let kh = past_frames + 1 + lookahead_frames;
        let mut draw = |n: usize, scale: f32| (0..n).map(|_| rng.next_signed() * scale).collect();
        let w1 = draw(Self::HIDDEN * kh * Self::FREQ_KERNEL, Self::WEIGHT_SCALE);
        let b1 = draw(Self::HIDDEN, Self::BIAS_SCALE);
        let w2 = draw(Self::HIDDEN, Self::WEIGHT_SCALE);
        let b2 = draw(1, Self::BIAS_SCALE);
        Self { past_frames, lookahead_frames, w1, b1, w2, b2 }
    }

    /// Kernel height along time: `past + 1 + lookahead`.
    pub fn kernel_frames(&self) -> usize {
        self.past_frames + 1 + self.lookahead_frames
    }

    /// The first convolution's geometry.
    pub fn conv1(&self) -> Result<Conv2d> {
        Conv2d::new(1, Self::HIDDEN, (self.kernel_frames(), Self::FREQ_KERNEL))
            .with_time_context(self.past_frames)?
            .with_same_freq()
    }

    /// Serialises the network for `bins` frequency bins with the given metadata.
    pub fn to_onnx(&self, bins: usize, metadata: &[(String, String)]) -> Result<Vec<u8>> {
        let mut g = GraphBuilder::new("voxmask_tiny_conv");
        g.voxmask_io(bins)?;
        let x = g.unsqueeze(INPUT_NAME, &[1]);
        let h = g.conv2d("conv1", &x, &self.conv1()?, &self.w1, Some(&self.b1))?;
        let h = g.relu(&h);
        let conv2 = Conv2d::new(Self::HIDDEN, 1, (1, 1));
        let y = g.conv2d("conv2", &h, &conv2, &self.w2, Some(&self.b2))?;
        let axes = g.initializer_i64("squeeze_axes", &[1], &[1])?;
        g.node("Squeeze", &[&y, &axes], &[OUTPUT_NAME], Vec::new());
        for (k, v) in metadata {
            g.metadata(k, v);
        }
        g.to_bytes()
    }

    /// Direct evaluation of the network on `spec` (`[batch, frames, bins]` row-major), as a
    /// reference for runtime outputs.
    pub fn forward(&self, spec: &[f32], batch: usize, frames: usize, bins: usize) -> Result<Vec<f32>> {
        let expected = batch.checked_mul(frames).and_then(|n| n.checked_mul(bins));
        if expected != Some(spec.len()) {
            return Err(Error::Mismatch {
                what: format!("tiny conv input [batch {batch}, frames {frames}, bins {bins}]"),
                expected: expected.map_or_else(|| "a representable size".into(), |n| n.to_string()),
                got: spec.len().to_string(),
            });
        }
        let kh = self.kernel_frames();
        let kw = Self::FREQ_KERNEL;
        let at = |b: usize, t: isize, f: isize| -> f32 {
            if t < 0 || f < 0 || t as usize >= frames || f as usize >= bins {
                0.0
            } else {
                spec[(b * frames + t as usize) * bins + f as usize]
            }
        };
        let mut out = vec![0.0f32; spec.len()];
        for b in 0..batch {
            for t in 0..frames {
                for f in 0..bins {
                    let mut logit = self.b2[0];
                    for c in 0..Self::HIDDEN {
                        let mut acc = self.b1[c];
                        for i in 0..kh {
                            let ti = t as isize + i as isize - self.past_frames as isize;
                            for j in 0..kw {
                                let fj = f as isize + j as isize - (kw / 2) as isize;
                                acc += self.w1[(c * kh + i) * kw + j] * at(b, ti, fj);
                            }
                        }
                        logit += self.w2[c] * acc.max(0.0);
                    }
                    out[(b * frames + t) * bins + f] = logit;
                }
            }
        }
        Ok(out)
    }
}

/// [`TinyConv::new`]`(seed, past, lookahead).to_onnx(bins, metadata)`.
pub fn tiny_conv_model(
    bins: usize,
    seed: u64,
    past_frames: usize,
    lookahead_frames: usize,
    metadata: &[(String, String)],
) -> Result<Vec<u8>> {
    TinyConv::new(seed, past_frames, lookahead_frames).to_onnx(bins, metadata)
}

/// Marsaglia's xorshift64 (shifts 13, 7, 17); the seed is scrambled by one splitmix64 step so
/// nearby seeds give unrelated streams, and a zero state (a fixed point) is avoided.
#[derive(Clone, Debug)]
pub struct XorShift64(u64);

impl XorShift64 {
    /// A generator seeded from any `seed`, zero included.
    pub fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x9E37_79B9_7F4A_7C15 } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[-1, 1)` with 24 bits of resolution (exact in f32).
    pub fn next_signed(&mut self) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32;
        2.0 * u - 1.0
    }
}
