//! Audio I/O at the edges of the pipeline: streaming decoding (symphonia), resampling (rubato)
//! and atomic WAV writing (hound). Samples are planar `f32` in [-1, 1].

pub mod decode;
#[cfg(feature = "live")]
pub mod device;
pub mod encode;
pub mod resample;
