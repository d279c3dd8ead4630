//! Helpers shared by the integration tests: the real binaries, generated audio, tiny models
//! written by the project's own ONNX writer, and error measures.
#![allow(dead_code)]

#[cfg(feature = "train")]
pub mod export;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use voxmask::dsp::{Feature, MaskRule, ModelOutput, StftConfig, WindowKind};
use voxmask::model::Contract;
use voxmask::model::test_models::{fixed_mask_model, tiny_conv_model};

/// Path of the built `voxmask` binary.
pub fn voxmask() -> Command {
    Command::new(env!("CARGO_BIN_EXE_voxmask"))
}

/// Runs a command, returning its output (never panics on a non-zero exit).
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the binary could not be started")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The repository's `tests/fixtures/audio` folder.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/audio").join(name)
}

/// `../shared` beside the checkout (or `$VOXMASK_SHARED_DIR`), if present.
pub fn shared_dir() -> Option<PathBuf> {
    let p = std::env::var_os("VOXMASK_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    p.is_dir().then_some(p)
}

/// `rel` inside the shared data folder, or `None` after a loud SKIPPED line naming `test`. With
/// `$VOXMASK_REQUIRE_SHARED` set (CI), a missing folder fails the test instead: the specification
/// tests (the museval goldens, the real previews) must not go green without running.
pub fn shared_data(rel: &str, test: &str) -> Option<PathBuf> {
    let found = shared_dir().map(|s| s.join(rel)).filter(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("VOXMASK_REQUIRE_SHARED").is_none(),
            "{test}: VOXMASK_REQUIRE_SHARED is set but ../shared/{rel} is missing"
        );
        eprintln!("\n*** SKIPPED {test}: ../shared/{rel} not found (set VOXMASK_SHARED_DIR) ***\n");
    }
    found
}

/// A contract at `rate` with a 1024-point STFT, hop 256.
pub fn contract(rate: u32, context: usize, lookahead: usize, rule: MaskRule) -> Contract {
    Contract {
        sample_rate: rate,
        stft: StftConfig { n_fft: 1024, win_length: 1024, hop: 256, window: WindowKind::Hann },
        context_frames: context,
        lookahead_frames: lookahead,
        feature: Feature::Log1pMagnitude,
        output: ModelOutput::Logit,
        mask_rule: rule,
        threshold: 0.5,
        arch: "test".into(),
        extra: Default::default(),
        stream_state: Vec::new(),
    }
}

/// Writes a model whose mask says "vocal" below `cutoff_hz` and "accompaniment" above.
pub fn lowpass_model(dir: &Path, rate: u32, cutoff_hz: f32) -> PathBuf {
    let c = contract(rate, 0, 0, MaskRule::Binary);
    let bins = c.bins();
    let logits: Vec<f32> = (0..bins)
        .map(|k| if (k as f32) * rate as f32 / c.stft.n_fft as f32 <= cutoff_hz { 30.0 } else { -30.0 })
        .collect();
    let path = dir.join(format!("lowpass_{rate}.onnx"));
    std::fs::write(&path, fixed_mask_model(bins, &logits, &c.to_metadata()).unwrap()).unwrap();
    path
}

/// Writes a small convolutional model with real context and look-ahead (soft mask).
pub fn conv_model(dir: &Path, rate: u32, past: usize, lookahead: usize) -> PathBuf {
    let c = contract(rate, past, lookahead, MaskRule::Soft);
    let path = dir.join(format!("conv_{rate}_{past}_{lookahead}.onnx"));
    std::fs::write(&path, tiny_conv_model(c.bins(), 7, past, lookahead, &c.to_metadata()).unwrap()).unwrap();
    path
}

pub fn sine(freq: f32, rate: u32, len: usize, amp: f32) -> Vec<f32> {
    (0..len).map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()).collect()
}

/// The tests' one deterministic generator (xorshift64): the same seed gives the same stream,
/// distinct seeds give distinct streams.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng((seed.wrapping_add(1)).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n` (`n` at least 1).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1) with 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// White noise uniform in [-amp, amp).
pub fn noise(len: usize, seed: u64, amp: f32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| amp * rng.uniform()).collect()
}

/// Writes planar channels as a WAV (`bits` 16, 24 or 32 = float).
pub fn write_wav(path: &Path, rate: u32, channels: &[Vec<f32>], bits: u16) {
    let spec = hound::WavSpec {
        channels: channels.len() as u16,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: if bits == 32 { hound::SampleFormat::Float } else { hound::SampleFormat::Int },
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..channels[0].len() {
        for c in channels {
            match bits {
                32 => w.write_sample(c[i]).unwrap(),
                16 => w.write_sample((c[i] * 32767.0).round() as i16).unwrap(),
                _ => w.write_sample((c[i] * 8_388_607.0).round() as i32).unwrap(),
            }
        }
    }
    w.finalize().unwrap();
}

/// Reads a WAV as planar f32 with its spec.
pub fn read_wav(path: &Path) -> (hound::WavSpec, Vec<Vec<f32>>) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let n = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap()).collect(),
        hound::SampleFormat::Int => {
            let scale = (1u32 << (spec.bits_per_sample - 1)) as f32;
            r.samples::<i32>().map(|s| s.unwrap() as f32 / scale).collect()
        }
    };
    let mut out = vec![Vec::with_capacity(samples.len() / n); n];
    for (i, s) in samples.into_iter().enumerate() {
        out[i % n].push(s);
    }
    (spec, out)
}

/// Energy of `a − b` relative to the energy of `reference`, in dB, over the sample range.
pub fn diff_db(reference: &[f32], a: &[f32], b: &[f32], range: std::ops::Range<usize>) -> f64 {
    let e: f64 = range.clone().map(|i| (a[i] as f64 - b[i] as f64).powi(2)).sum();
    let s: f64 = range.map(|i| (reference[i] as f64).powi(2)).sum();
    10.0 * (e.max(1e-30) / s).log10()
}
