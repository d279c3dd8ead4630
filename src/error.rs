//! The library's one error type. Every variant carries the structured facts a user needs to fix
//! the problem (which file, what was expected, what was found); binaries add context with anyhow.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in voxmask's library code.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed at the operating-system level.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not audio voxmask can decode (unknown container, unsupported codec such as Opus).
    #[error("{}: unsupported format: {reason}", .path.display())]
    UnsupportedFormat { path: PathBuf, reason: String },

    /// The file looked like audio but could not be decoded to the end.
    #[error("{}: corrupt or truncated audio: {reason}", .path.display())]
    CorruptAudio { path: PathBuf, reason: String },

    /// The file decoded to zero samples.
    #[error("{}: contains no audio samples", .path.display())]
    EmptyAudio { path: PathBuf },

    /// A decoded sample is NaN or infinite.
    #[error("{}: non-finite sample (NaN or Inf) in channel {channel} at frame {frame}", .path.display())]
    NonFiniteSample { path: PathBuf, channel: usize, frame: u64 },

    /// The sample rate is outside what voxmask supports.
    #[error("{}: sample rate {rate} Hz is outside the supported range {min}–{max} Hz", .path.display())]
    UnsupportedSampleRate { path: PathBuf, rate: u32, min: u32, max: u32 },

    /// Writing an output file failed.
    #[error("{}: cannot write audio: {reason}", .path.display())]
    Encode { path: PathBuf, reason: String },

    /// An output exists and the caller did not allow overwriting it.
    #[error("{}: already exists (pass --overwrite to replace it)", .path.display())]
    OutputExists { path: PathBuf },

    /// A model file is not a voxmask model or asks for something the runtime cannot honour.
    #[error("{}: not a usable voxmask model: {reason}", .path.display())]
    ModelContract { path: PathBuf, reason: String },

    /// The inference backend (ONNX Runtime or tract) failed to load or to run.
    #[error("inference backend: {0}")]
    Backend(String),

    /// Two things that must agree do not ("expected 2 channels, got 6").
    #[error("{what}: expected {expected}, got {got}")]
    Mismatch { what: String, expected: String, got: String },

    /// Training failed (tensor library error, non-finite loss, bad checkpoint).
    #[error("training: {0}")]
    Train(String),

    /// A caller passed an argument that cannot work.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// An audio host or device is missing, refuses a configuration or failed while streaming.
    #[error("audio device: {0}")]
    AudioDevice(String),

    /// The run was interrupted (SIGINT, SIGTERM) while working on this file; nothing of it was kept.
    #[error("{}: interrupted; its partial outputs were removed", .path.display())]
    Interrupted { path: PathBuf },
}

#[cfg(feature = "train")]
impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Train(e.to_string())
    }
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// An error and its causes on one line ("a: b: c"), skipping a cause that the message before it
/// already ends with: library errors such as [`Error::Io`] print their cause in their own
/// message, and error-chain printers would otherwise repeat it.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = c.source();
    }
    message
}

/// A command-line parser for a whole number within `lo..=hi` (both programs use it): counts that
/// become threads or allocations are bounded, so a slip (`--threads 1000`, `--batch 100000`) is
/// a clear error instead of a stalled machine or an aborted allocation.
pub fn count_in(
    lo: usize,
    hi: usize,
) -> impl Fn(&str) -> std::result::Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.parse::<usize>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number within {lo}..={hi}")),
    }
}
