//! voxmask: singing-voice separation by pixel-wise classification of a magnitude spectrogram.
//!
//! Pipeline (Lin et al. 2018, "Singing Voice Separation Using a Deep Convolutional Neural Network
//! Trained by Ideal Binary Mask and Cross Entropy"): STFT → a CNN that gives P(vocal) for every
//! time-frequency bin → mask → inverse STFT. Offline, live and training share the same code.

pub mod error;

pub use error::{Error, Result};
pub mod audio;
pub mod dataset;
pub mod dsp;
pub mod engine;
pub mod eval;
pub mod loss;
pub mod model;
pub mod native;
pub mod plot;
pub mod separate;
#[cfg(feature = "live")]
pub mod stream;
#[cfg(feature = "train")]
pub mod train;
