//! The voxmask model contract: the `metadata_props` of an `.onnx` file that say how to feed it
//! and how to read its output (ARCHITECTURE.md, "The model contract"). The runtime refuses a model whose
//! contract it cannot honour, naming the key at fault.

use std::collections::BTreeMap;

use crate::dsp::{Feature, MaskRule, ModelOutput, StftConfig, WindowKind};

/// Contract version this runtime writes and understands.
pub const CONTRACT_VERSION: u32 = 1;
/// Name of the model's input tensor: features, shape `[batch, frames, bins]`.
pub const INPUT_NAME: &str = "spec";
/// Name of the model's output tensor: one value per bin, shape `[batch, frames, bins]`.
pub const OUTPUT_NAME: &str = "mask";
/// Prefix of the training-provenance keys (data, epochs, validation scores, commit, ...).
pub const PROVENANCE_PREFIX: &str = "voxmask.train.";
/// Lowest and highest model sample rates accepted.
const MODEL_RATE_RANGE: (u32, u32) = (8_000, 192_000);

/// Metadata keys, one place for their spelling.
pub mod keys {
    pub const CONTRACT: &str = "voxmask.contract";
    pub const SAMPLE_RATE: &str = "voxmask.sample_rate";
    pub const N_FFT: &str = "voxmask.n_fft";
    pub const WIN_LENGTH: &str = "voxmask.win_length";
    pub const HOP_LENGTH: &str = "voxmask.hop_length";
    pub const WINDOW: &str = "voxmask.window";
    pub const CONTEXT_FRAMES: &str = "voxmask.context_frames";
    pub const LOOKAHEAD_FRAMES: &str = "voxmask.lookahead_frames";
    pub const FEATURE: &str = "voxmask.feature";
    pub const OUTPUT: &str = "voxmask.output";
    pub const MASK_RULE: &str = "voxmask.mask_rule";
    pub const THRESHOLD: &str = "voxmask.threshold";
    pub const ARCH: &str = "voxmask.arch";
    pub const STREAM_STATE: &str = "voxmask.stream_state";
}

/// Largest width (values per frame) of a streaming state tensor.
pub const MAX_STATE_WIDTH: usize = 1 << 16;
/// Most state values per channel, all tensors together (64 MiB of floats): a hostile contract
/// must not make the engine allocate gigabytes.
pub const MAX_STATE_VALUES: usize = 1 << 24;

/// One state tensor of a streaming model: an input `name` of shape `[batch, frames, width]`
/// holding what the model must remember from earlier calls, and an output `<name>.next` of the
/// same shape to feed back on the next call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateTensor {
    pub name: String,
    pub frames: usize,
    pub width: usize,
}

impl StateTensor {
    /// The output that carries this state to the next call.
    pub fn next_name(&self) -> String {
        format!("{}.next", self.name)
    }
}

/// Everything the runtime needs to know to use a model.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// Sample rate the model was trained at; audio is resampled to it.
    pub sample_rate: u32,
    /// STFT geometry of the model's input.
    pub stft: StftConfig,
    /// Past frames an output frame depends on (receptive field towards the past).
    pub context_frames: usize,
    /// Future frames an output frame depends on (adds `lookahead_frames · hop` of latency).
    pub lookahead_frames: usize,
    /// Input feature transform.
    pub feature: Feature,
    /// What the output values mean.
    pub output: ModelOutput,
    /// Default mask rule (with the model's threshold for `paper`).
    pub mask_rule: MaskRule,
    /// The threshold used by the `paper` rule.
    pub threshold: f32,
    /// Architecture name (for people; the runtime does not depend on it).
    pub arch: String,
    /// Training provenance and any other keys, as stored.
    pub extra: BTreeMap<String, String>,
    /// Empty for a model that sees its whole receptive field in every call (`context_frames` of
    /// past features in the window). A streaming model instead keeps these state tensors between
    /// calls and reads only the new frames: a causal network run frame by frame computes each
    /// layer once per frame instead of once per window frame. Written as
    /// `name:frames:width,...`; streaming models have no look-ahead.
    pub stream_state: Vec<StateTensor>,
}

/// Most frames of past context, and of look-ahead, a model may ask for (about 47 s at 22.05 kHz
/// with hop 256): a corrupt or hostile contract must not make the engine allocate gigabytes.
pub const MAX_CONTEXT_FRAMES: usize = 4096;

impl Contract {
    /// Reads and checks a contract from metadata key/value pairs. The error is a sentence that
    /// names the offending key.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<Self, String> {
        let get = |k: &str| meta.get(k).map(|s| s.trim()).ok_or_else(|| format!("metadata key `{k}` is missing"));
        let num = |k: &str| -> Result<usize, String> {
            get(k)?
                .parse::<usize>()
                .map_err(|_| format!("metadata `{k}` = {:?} is not a non-negative integer", meta[k]))
        };
        let version = get(keys::CONTRACT)?;
        if version != CONTRACT_VERSION.to_string() {
            return Err(format!(
                "contract version {version} is not supported (this voxmask understands version {CONTRACT_VERSION})"
            ));
        }
        let sample_rate = num(keys::SAMPLE_RATE)?;
        if sample_rate < MODEL_RATE_RANGE.0 as usize || sample_rate > MODEL_RATE_RANGE.1 as usize {
            return Err(format!(
                "`{}` = {sample_rate} Hz is outside {}–{} Hz",
                keys::SAMPLE_RATE,
                MODEL_RATE_RANGE.0,
                MODEL_RATE_RANGE.1
            ));
        }
        let window_name = get(keys::WINDOW)?;
        let window = WindowKind::parse(window_name)
            .ok_or_else(|| format!("`{}` = {window_name:?} is not supported (known: hann)", keys::WINDOW))?;
        let stft = StftConfig {
            n_fft: num(keys::N_FFT)?,
            win_length: num(keys::WIN_LENGTH)?,
            hop: num(keys::HOP_LENGTH)?,
            window,
        };
        stft.validate().map_err(|e| format!("STFT keys: {e}"))?;
        let feature_name = get(keys::FEATURE)?;
        let feature = Feature::parse(feature_name).ok_or_else(|| {
            format!("`{}` = {feature_name:?} is not supported (known: magnitude, log1p_magnitude)", keys::FEATURE)
        })?;
        let output = match get(keys::OUTPUT)? {
            "logit" => ModelOutput::Logit,
            "probability" => ModelOutput::Probability,
            other => {
                return Err(format!("`{}` = {other:?} is not supported (known: logit, probability)", keys::OUTPUT));
            }
        };
        let threshold_text = get(keys::THRESHOLD)?;
        let threshold: f32 = threshold_text
            .parse()
            .ok()
            .filter(|t: &f32| (0.0..=1.0).contains(t))
            .ok_or_else(|| format!("`{}` = {threshold_text:?} is not a number in [0, 1]", keys::THRESHOLD))?;
        let rule_name = get(keys::MASK_RULE)?;
        let mask_rule = MaskRule::parse(rule_name, threshold).ok_or_else(|| {
            format!("`{}` = {rule_name:?} is not supported (known: {})", keys::MASK_RULE, MaskRule::NAMES.join(", "))
        })?;
        let known = [
            keys::CONTRACT,
            keys::SAMPLE_RATE,
            keys::N_FFT,
            keys::WIN_LENGTH,
            keys::HOP_LENGTH,
            keys::WINDOW,
            keys::CONTEXT_FRAMES,
            keys::LOOKAHEAD_FRAMES,
            keys::FEATURE,
            keys::OUTPUT,
            keys::MASK_RULE,
            keys::THRESHOLD,
            keys::ARCH,
            keys::STREAM_STATE,
        ];
        let frames = |k: &str| -> Result<usize, String> {
            let n = num(k)?;
            // The engine holds context + block + look-ahead frames per channel: bound it.
            if n > MAX_CONTEXT_FRAMES {
                return Err(format!("`{k}` = {n} frames is more than the {MAX_CONTEXT_FRAMES} this voxmask supports"));
            }
            Ok(n)
        };
        let lookahead_frames = frames(keys::LOOKAHEAD_FRAMES)?;
        let stream_state = match meta.get(keys::STREAM_STATE) {
            None => Vec::new(),
            Some(text) => parse_stream_state(text)?,
        };
        if !stream_state.is_empty() && lookahead_frames > 0 {
            return Err(format!(
                "`{}` declares a streaming model, which cannot look ahead, but `{}` = {lookahead_frames}",
                keys::STREAM_STATE,
                keys::LOOKAHEAD_FRAMES
            ));
        }
        Ok(Contract {
            sample_rate: sample_rate as u32,
            stft,
            context_frames: frames(keys::CONTEXT_FRAMES)?,
            lookahead_frames,
            feature,
            output,
            mask_rule,
            threshold,
            arch: get(keys::ARCH)?.to_string(),
            extra: meta
                .iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            stream_state,
        })
    }

    /// The metadata pairs that describe this contract (what the ONNX writer stores).
    pub fn to_metadata(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = [
            (keys::CONTRACT, CONTRACT_VERSION.to_string()),
            (keys::SAMPLE_RATE, self.sample_rate.to_string()),
            (keys::N_FFT, self.stft.n_fft.to_string()),
            (keys::WIN_LENGTH, self.stft.win_length.to_string()),
            (keys::HOP_LENGTH, self.stft.hop.to_string()),
            (keys::WINDOW, self.stft.window.name().to_string()),
            (keys::CONTEXT_FRAMES, self.context_frames.to_string()),
            (keys::LOOKAHEAD_FRAMES, self.lookahead_frames.to_string()),
            (keys::FEATURE, self.feature.name().to_string()),
            (
                keys::OUTPUT,
                match self.output {
                    ModelOutput::Logit => "logit",
                    ModelOutput::Probability => "probability",
                }
                .to_string(),
            ),
            (keys::MASK_RULE, self.mask_rule.name().to_string()),
            (keys::THRESHOLD, self.threshold.to_string()),
            (keys::ARCH, self.arch.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if !self.stream_state.is_empty() {
            let list: Vec<String> =
                self.stream_state.iter().map(|s| format!("{}:{}:{}", s.name, s.frames, s.width)).collect();
            out.push((keys::STREAM_STATE.to_string(), list.join(",")));
        }
        out.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Whether the model keeps state between calls (see [`Contract::stream_state`]).
    pub fn is_streaming(&self) -> bool {
        !self.stream_state.is_empty()
    }

    /// Number of frequency bins the model reads and writes.
    pub fn bins(&self) -> usize {
        self.stft.bins()
    }

    /// Algorithmic latency at the model's rate: the STFT round trip plus the look-ahead frames.
    pub fn latency_samples(&self) -> usize {
        self.stft.latency_samples() + self.lookahead_frames * self.stft.hop
    }

    /// Training provenance entries (`voxmask.train.*`), keys without the prefix.
    pub fn provenance(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra.iter().filter_map(|(k, v)| k.strip_prefix(PROVENANCE_PREFIX).map(|k| (k, v.as_str())))
    }
}

/// Parses `name:frames:width,...` (the value of `voxmask.stream_state`).
fn parse_stream_state(text: &str) -> Result<Vec<StateTensor>, String> {
    let key = keys::STREAM_STATE;
    let mut states: Vec<StateTensor> = Vec::new();
    for item in text.split(',').map(str::trim) {
        let parts: Vec<&str> = item.split(':').collect();
        let [name, frames, width] = parts[..] else {
            return Err(format!("`{key}` entry {item:?} is not name:frames:width"));
        };
        let count = |what: &str, v: &str, max: usize| -> Result<usize, String> {
            v.parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| format!("`{key}` entry {item:?}: {what} {v:?} is not a whole number in 1..={max}"))
        };
        let state = StateTensor {
            name: name.to_string(),
            frames: count("frames", frames, MAX_CONTEXT_FRAMES)?,
            width: count("width", width, MAX_STATE_WIDTH)?,
        };
        if name.is_empty() || name == INPUT_NAME || name == OUTPUT_NAME || states.iter().any(|s| s.name == name) {
            return Err(format!("`{key}` entry {item:?}: the name must be new and not empty"));
        }
        states.push(state);
    }
    let total: usize = states.iter().map(|s| s.frames * s.width).sum();
    if total > MAX_STATE_VALUES {
        return Err(format!("`{key}` asks for {total} state values per channel, more than {MAX_STATE_VALUES}"));
    }
    Ok(states)
}
