//! The network presets, in candle, with their ONNX export.
//!
//! - `live` and `offline`: dilated temporal convolution networks (TCN) over spectrogram frames
//!   (22.05 kHz, Hann 1024 / hop 256, 513 bins, log-magnitude input). Each frame's 513 bins are
//!   the channels of 1-D convolutions along time: kernel 3, growing dilations, residual
//!   connections, and a final per-frame projection back to one logit per bin.
//!   - `live` (`tcn-192x4`, dilations 1, 2, 4, 8) is causal: it sees the current frame and 30
//!     past frames and no future one, which keeps live separation within 50 ms at any device rate
//!     (34.8 ms of STFT overlap, plus the hop step and the band-limiting filters: at most 49 ms).
//!     A frame of look-ahead would add 11.6 ms. About 1.5 MFLOP per frame.
//!   - `offline` (`tcn-256x5c`, dilations 1, 2, 4, 8, 16) is centred: every layer looks as far
//!     ahead as back, 31 frames (360 ms) each way, so a frame is judged by what follows it as
//!     well (where a phrase ends, whether a hit decays like a drum or sustains like a voice).
//!     Offline nothing stops a separator from waiting for the future. About 2.6 MFLOP per frame.
//! - `lin2018`: the network of Lin et al. 2018 exactly as its authors' code has it: 9 × 2049 linear
//!   magnitude patches, conv 3×12 (32) → conv 3×12 (16) → max-pool 1×12 → conv 3×12 (64) →
//!   conv 3×12 (32) → max-pool 1×12 → flatten 4320 → dropout → FC 2048 → dropout → FC 512 →
//!   FC 18441 logits; ReLU, SAME padding, Xavier init, bias 0.1. Inference keeps the centre frame.
//!
//! Both map features `[batch, frames, bins]` to logits of the same shape, which is the voxmask
//! model contract; the export writes the same computation as an ONNX graph.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Init, VarBuilder, VarMap};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::dsp::{Feature, MaskRule, ModelOutput, StftConfig, WindowKind};
use crate::model::Contract;
use crate::train::tcn_op::TemporalConv;
use crate::{Error, Result};

/// Network presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Causal TCN for `voxmask live` (`models/voxmask-live.onnx`).
    Live,
    /// Centred TCN, the offline default (`models/voxmask.onnx`).
    Offline,
    /// Lin et al. 2018's CNN on 9-frame patches.
    Lin2018,
}

impl Preset {
    /// Every preset name, for command-line parsing.
    pub const NAMES: [&'static str; 3] = ["offline", "live", "lin2018"];

    /// Parses a preset name. `default` is the name the causal network had before the offline
    /// one existed; checkpoints of that time still load.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "live" | "default" => Some(Preset::Live),
            "offline" => Some(Preset::Offline),
            "lin2018" => Some(Preset::Lin2018),
            _ => None,
        }
    }

    /// The preset's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Live => "live",
            Preset::Offline => "offline",
            Preset::Lin2018 => "lin2018",
        }
    }

    /// The temporal convolution network of a TCN preset (`None` for lin2018).
    pub fn tcn(self) -> Option<TcnShape> {
        match self {
            Preset::Live => Some(LIVE_TCN),
            Preset::Offline => Some(OFFLINE_TCN),
            Preset::Lin2018 => None,
        }
    }

    /// The contract a model of this preset satisfies (before training provenance is added).
    pub fn contract(self) -> Contract {
        match self {
            Preset::Live | Preset::Offline => {
                let tcn = self.tcn().expect("a TCN preset");
                Contract {
                    sample_rate: 22_050,
                    stft: StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: WindowKind::Hann },
                    context_frames: tcn.layers.iter().map(|l| l.past).sum(),
                    lookahead_frames: tcn.layers.iter().map(|l| l.future).sum(),
                    feature: Feature::Log1pMagnitude,
                    output: ModelOutput::Logit,
                    mask_rule: MaskRule::Wiener,
                    threshold: 0.5,
                    arch: tcn.arch(),
                    extra: Default::default(),
                    stream_state: Vec::new(),
                }
            }
            Preset::Lin2018 => Contract {
                sample_rate: 22_050,
                stft: StftConfig { n_fft: 4096, win_length: 1024, hop: 256, window: WindowKind::Hann },
                context_frames: LIN_PATCH / 2,
                lookahead_frames: LIN_PATCH / 2,
                feature: Feature::Magnitude,
                output: ModelOutput::Logit,
                mask_rule: MaskRule::Paper { threshold: 0.15 },
                threshold: 0.15,
                arch: "lin2018-cnn".into(),
                extra: Default::default(),
                stream_state: Vec::new(),
            },
        }
    }
}

/// One temporal convolution layer of the default network.
#[derive(Debug, Clone, Copy)]
pub struct TcnLayer {
    pub dilation: usize,
    /// Frames of context on each side: past + future = (kernel − 1) · dilation.
    pub past: usize,
    pub future: usize,
}

/// Kernel size of every temporal layer.
pub const TCN_KERNEL: usize = 3;

/// The shape of a temporal convolution network: hidden channels and its layers.
#[derive(Debug, Clone, Copy)]
pub struct TcnShape {
    pub hidden: usize,
    pub layers: &'static [TcnLayer],
}

impl TcnShape {
    /// Architecture name in the model contract: `tcn-<hidden>x<layers>`, `c` when centred.
    pub fn arch(&self) -> String {
        let centred = if self.layers.iter().any(|l| l.future > 0) { "c" } else { "" };
        format!("tcn-{}x{}{centred}", self.hidden, self.layers.len())
    }
}

/// The causal live network: 30 past frames, none ahead.
pub const LIVE_TCN: TcnShape = TcnShape {
    hidden: 192,
    layers: &[
        TcnLayer { dilation: 1, past: 2, future: 0 },
        TcnLayer { dilation: 2, past: 4, future: 0 },
        TcnLayer { dilation: 4, past: 8, future: 0 },
        TcnLayer { dilation: 8, past: 16, future: 0 },
    ],
};

/// The centred offline network: 31 frames each way.
pub const OFFLINE_TCN: TcnShape = TcnShape {
    hidden: 256,
    layers: &[
        TcnLayer { dilation: 1, past: 1, future: 1 },
        TcnLayer { dilation: 2, past: 2, future: 2 },
        TcnLayer { dilation: 4, past: 4, future: 4 },
        TcnLayer { dilation: 8, past: 8, future: 8 },
        TcnLayer { dilation: 16, past: 16, future: 16 },
    ],
};
/// Frames per lin2018 patch.
pub const LIN_PATCH: usize = 9;
const LIN_BINS: usize = 2049;
const LIN_POOL: usize = 12;
/// Conv channels and FC sizes of lin2018.
const LIN_CONV: [(usize, usize); 4] = [(1, 32), (32, 16), (16, 64), (64, 32)];
const LIN_FC: [usize; 3] = [2048, 512, LIN_PATCH * LIN_BINS];
const LIN_DROPOUT: f32 = 0.5;

/// A network of either preset with its weights.
pub struct Net {
    pub preset: Preset,
    pub contract: Contract,
    pub varmap: VarMap,
    pub device: Device,
}

/// Names of the fixed (non-trained) input normalisation tensors.
pub const NORM_MEAN: &str = "norm.mean";
pub const NORM_SCALE: &str = "norm.scale";

impl Net {
    /// Creates a freshly initialised network. `norm` holds the per-bin mean and 1/std of the
    /// input features measured on the training data (the default preset only).
    ///
    /// Weights are drawn from a generator seeded with `seed` (candle's own CPU generator cannot
    /// be seeded), so a run is reproducible from its seed.
    pub fn new(preset: Preset, device: &Device, norm: Option<(&[f32], &[f32])>, seed: u64) -> Result<Self> {
        let contract = preset.contract();
        let varmap = VarMap::new();
        let vb = SeededInit {
            vb: VarBuilder::from_varmap(&varmap, DType::F32, device),
            varmap: varmap.clone(),
            rng: std::cell::RefCell::new(StdRng::seed_from_u64(seed)),
            device: device.clone(),
        };
        let bins = contract.bins();
        match preset.tcn() {
            Some(tcn) => {
                let (mean, scale) = match norm {
                    Some((m, s)) => (m.to_vec(), s.to_vec()),
                    None => (vec![0.0; bins], vec![1.0; bins]),
                };
                vb.vb.get_with_hints(bins, NORM_MEAN, Init::Const(0.0))?;
                vb.vb.get_with_hints(bins, NORM_SCALE, Init::Const(1.0))?;
                let mut vm = varmap.clone();
                vm.set_one(NORM_MEAN, Tensor::from_vec(mean, bins, device)?)?;
                vm.set_one(NORM_SCALE, Tensor::from_vec(scale, bins, device)?)?;
                let mut cin = bins;
                for i in 0..tcn.layers.len() {
                    let fan_in = TCN_KERNEL * cin;
                    let bound = (6.0 / fan_in as f64).sqrt();
                    vb.get_with_hints(
                        (fan_in, tcn.hidden),
                        &format!("tcn{i}.w"),
                        Init::Uniform { lo: -bound, up: bound },
                    )?;
                    vb.get_with_hints(tcn.hidden, &format!("tcn{i}.b"), Init::Const(0.0))?;
                    cin = tcn.hidden;
                }
                let bound = (3.0 / tcn.hidden as f64).sqrt();
                vb.get_with_hints((tcn.hidden, bins), "out.w", Init::Uniform { lo: -bound, up: bound })?;
                vb.get_with_hints(bins, "out.b", Init::Const(0.0))?;
            }
            None => {
                for (i, (cin, cout)) in LIN_CONV.iter().enumerate() {
                    let (fan_in, fan_out) = (cin * 3 * 12, cout * 3 * 12);
                    let b = (6.0 / (fan_in + fan_out) as f64).sqrt();
                    vb.get_with_hints((*cout, *cin, 3, 12), &format!("conv{i}.w"), Init::Uniform { lo: -b, up: b })?;
                    vb.get_with_hints(*cout, &format!("conv{i}.b"), Init::Const(0.1))?;
                }
                let mut fin = lin_flatten();
                for (i, fout) in LIN_FC.iter().enumerate() {
                    let b = (6.0 / (fin + fout) as f64).sqrt();
                    vb.get_with_hints((fin, *fout), &format!("fc{i}.w"), Init::Uniform { lo: -b, up: b })?;
                    vb.get_with_hints(*fout, &format!("fc{i}.b"), Init::Const(0.1))?;
                    fin = *fout;
                }
            }
        }
        Ok(Net { preset, contract, varmap, device: device.clone() })
    }

    fn var(&self, name: &str) -> Result<Tensor> {
        let data = self.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        data.get(name).map(|v| v.as_tensor().clone()).ok_or_else(|| Error::Train(format!("missing weight `{name}`")))
    }

    /// Applies [`cap_scales`](crate::train::data::cap_scales) to the default network's input
    /// normalisation (a warm start from a checkpoint made before the cap existed).
    pub fn cap_input_scales(&mut self) -> Result<()> {
        if self.preset.tcn().is_none() {
            return Ok(());
        }
        let mut scale: Vec<f32> = self.var(NORM_SCALE)?.to_vec1()?;
        crate::train::data::cap_scales(&mut scale);
        let bins = scale.len();
        self.varmap.set_one(NORM_SCALE, Tensor::from_vec(scale, bins, &self.device)?)?;
        Ok(())
    }

    /// Weights the optimiser updates (everything but the input normalisation).
    pub fn trainable(&self) -> Result<Vec<(String, Var)>> {
        let data = self.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        let mut v: Vec<(String, Var)> =
            data.iter().filter(|(k, _)| !k.starts_with("norm.")).map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    }

    /// Number of trainable weights.
    pub fn parameter_count(&self) -> Result<usize> {
        Ok(self.trainable()?.iter().map(|(_, v)| v.elem_count()).sum())
    }

    /// Logits `[batch, frames, bins]` for features of the same shape. `train` enables lin2018's
    /// dropout (the paper's); the default network's is [`forward_dropout`](Self::forward_dropout).
    pub fn forward(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        match self.preset {
            Preset::Live | Preset::Offline => self.forward_tcn(features, &mut None),
            Preset::Lin2018 => self.forward_lin2018(features, train),
        }
    }

    /// The default network in training with dropout `p` on its normalised input and after every
    /// temporal layer, the masks drawn from `rng` (the step's seeded RNG, so runs stay exactly
    /// reproducible and resumable). Inference never drops anything.
    pub fn forward_dropout(&self, features: &Tensor, p: f32, rng: &mut StdRng) -> Result<Tensor> {
        self.forward_tcn(features, &mut Some((p, rng)))
    }

    /// The TCN forward through candle's generic ops only (what the fused
    /// [`TemporalConv`] op must equal; it also runs on devices other than the CPU).
    pub fn forward_generic(&self, features: &Tensor) -> Result<Tensor> {
        self.forward_tcn_with(features, &mut None, false)
    }

    fn forward_tcn(&self, x: &Tensor, drop: &mut Option<(f32, &mut StdRng)>) -> Result<Tensor> {
        self.forward_tcn_with(x, drop, true)
    }

    fn forward_tcn_with(&self, x: &Tensor, drop: &mut Option<(f32, &mut StdRng)>, fused: bool) -> Result<Tensor> {
        let tcn =
            self.preset.tcn().ok_or_else(|| Error::Train(format!("{} is not a TCN preset", self.preset.name())))?;
        let hidden = tcn.hidden;
        let (b, t, _) = x.dims3()?;
        let mut h = x.broadcast_sub(&self.var(NORM_MEAN)?)?.broadcast_mul(&self.var(NORM_SCALE)?)?;
        h = dropout(h, drop)?;
        for (i, layer) in tcn.layers.iter().enumerate() {
            let cin = h.dim(2)?;
            let (w, bias) = (self.var(&format!("tcn{i}.w"))?, self.var(&format!("tcn{i}.b"))?);
            let y = if fused && h.device().is_cpu() {
                h.contiguous()?.apply_op3(&w, &bias, TemporalConv::new(*layer, TCN_KERNEL))?
            } else {
                let padded = h.pad_with_zeros(1, layer.past, layer.future)?;
                let taps = (0..TCN_KERNEL)
                    .map(|j| padded.narrow(1, j * layer.dilation, t))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                let stacked = Tensor::cat(&taps, 2)?.reshape((b * t, TCN_KERNEL * cin))?;
                stacked.matmul(&w)?.broadcast_add(&bias)?.relu()?.reshape((b, t, hidden))?
            };
            let y = dropout(y, drop)?;
            h = if cin == hidden { (y + h)? } else { y };
        }
        let bins = self.contract.bins();
        let out = h
            .reshape((b * t, hidden))?
            .matmul(&self.var("out.w")?)?
            .broadcast_add(&self.var("out.b")?)?
            .reshape((b, t, bins))?;
        Ok(out)
    }

    /// lin2018 on whole patches: `[n, 9, 2049]` magnitudes → `[n, 9·2049]` logits.
    pub fn forward_lin2018_patches(&self, patches: &Tensor, train: bool) -> Result<Tensor> {
        let n = patches.dim(0)?;
        let mut h = patches.unsqueeze(1)?;
        for i in 0..LIN_CONV.len() {
            // SAME padding for a 3×12 kernel: 1/1 in time, 5/6 in frequency (TensorFlow's split).
            let padded = h.pad_with_zeros(2, 1, 1)?.pad_with_zeros(3, 5, 6)?;
            h = padded
                .conv2d(&self.var(&format!("conv{i}.w"))?, 0, 1, 1, 1)?
                .broadcast_add(&self.var(&format!("conv{i}.b"))?.reshape((1, (), 1, 1))?)?
                .relu()?;
            if i == 1 || i == 3 {
                let w = h.dim(3)?;
                let pad = w.div_ceil(LIN_POOL) * LIN_POOL - w;
                // Post-ReLU values are ≥ 0, so zero padding equals SAME max-pooling's.
                h = h.pad_with_zeros(3, 0, pad)?.max_pool2d_with_stride((1, LIN_POOL), (1, LIN_POOL))?;
            }
        }
        let mut h = h.reshape((n, lin_flatten()))?;
        for i in 0..LIN_FC.len() {
            if train && i < 2 {
                h = candle_nn::ops::dropout(&h, LIN_DROPOUT)?;
            }
            h = h.matmul(&self.var(&format!("fc{i}.w"))?)?.broadcast_add(&self.var(&format!("fc{i}.b"))?)?;
            if i + 1 < LIN_FC.len() {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    fn forward_lin2018(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let (b, t, f) = x.dims3()?;
        let half = LIN_PATCH / 2;
        let padded = x.pad_with_zeros(1, half, half)?;
        let patches = (0..LIN_PATCH).map(|j| padded.narrow(1, j, t)).collect::<candle_core::Result<Vec<_>>>()?;
        let patches = Tensor::stack(&patches, 2)?.reshape((b * t, LIN_PATCH, f))?;
        let out = self.forward_lin2018_patches(&patches, train)?.reshape((b * t, LIN_PATCH, f))?;
        Ok(out.narrow(1, half, 1)?.reshape((b, t, f))?)
    }

    /// Reads a weight as a flat `Vec<f32>` (export, tests).
    pub fn weight(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.var(name)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
    }
}

/// Creates variables like `VarBuilder::get_with_hints`, but draws uniform initialisations from a
/// seeded generator.
struct SeededInit<'a> {
    vb: VarBuilder<'a>,
    varmap: VarMap,
    rng: std::cell::RefCell<StdRng>,
    device: Device,
}

impl SeededInit<'_> {
    fn get_with_hints<S: Into<candle_core::Shape>>(&self, shape: S, name: &str, init: Init) -> Result<Tensor> {
        let shape: candle_core::Shape = shape.into();
        let t = self.vb.get_with_hints(shape.clone(), name, Init::Const(0.0))?;
        let values: Vec<f32> = match init {
            Init::Uniform { lo, up } => {
                let mut rng = self.rng.borrow_mut();
                (0..shape.elem_count()).map(|_| rng.random_range(lo as f32..up as f32)).collect()
            }
            Init::Const(c) => vec![c as f32; shape.elem_count()],
            _ => return Err(Error::Train(format!("unsupported initialisation for `{name}`"))),
        };
        let src = Tensor::from_vec(values, shape, &self.device)?;
        self.varmap.clone().set_one(name, &src)?;
        Ok(t)
    }
}

fn lin_flatten() -> usize {
    let pooled = LIN_BINS.div_ceil(LIN_POOL).div_ceil(LIN_POOL);
    LIN_CONV[3].1 * LIN_PATCH * pooled
}

impl Module for Net {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        Net::forward(self, xs, false).map_err(|e| candle_core::Error::Msg(e.to_string()))
    }
}

/// Inverted dropout with a mask from the caller's RNG: each element is zeroed with probability
/// `p` and the rest scaled by 1/(1 − p). `None` or `p = 0` is the identity.
fn dropout(x: Tensor, drop: &mut Option<(f32, &mut StdRng)>) -> Result<Tensor> {
    let Some((p, rng)) = drop else { return Ok(x) };
    if *p <= 0.0 {
        return Ok(x);
    }
    let keep = 1.0 / (1.0 - *p);
    let mask: Vec<f32> = (0..x.elem_count()).map(|_| if rng.random::<f32>() < *p { 0.0 } else { keep }).collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    Ok((x * mask)?)
}
