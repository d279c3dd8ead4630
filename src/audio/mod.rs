//! Audio I/O at the edges of the pipeline: streaming decoding (symphonia), resampling (a polyphase
//! filter, rubato as the fallback) and atomic WAV writing (hound). Samples are planar `f32` in [-1, 1].

pub mod decode;
#[cfg(feature = "live")]
pub mod device;
mod dot;
pub mod encode;
pub mod flac;
pub mod resample;
pub mod streamed_wav;
