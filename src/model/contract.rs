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
        ];
        let frames = |k: &str| -> Result<usize, String> {
            let n = num(k)?;
            // The engine holds context + block + look-ahead frames per channel: bound it.
            if n > MAX_CONTEXT_FRAMES {
                return Err(format!("`{k}` = {n} frames is more than the {MAX_CONTEXT_FRAMES} this voxmask supports"));
            }
            Ok(n)
        };
        Ok(Contract {
            sample_rate: sample_rate as u32,
            stft,
            context_frames: frames(keys::CONTEXT_FRAMES)?,
            lookahead_frames: frames(keys::LOOKAHEAD_FRAMES)?,
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
        out.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
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
