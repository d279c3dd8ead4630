//! Audio I/O at the edges of the pipeline: streaming decoding (symphonia), atomic WAV and FLAC writing (hound,
//! flacenc) and live devices (cpal). Samples are planar `f32` in [-1, 1].

pub mod decode;
#[cfg(feature = "live")]
pub mod device;
pub mod encode;
pub mod flac;
mod mp4;
pub mod streamed_wav;
