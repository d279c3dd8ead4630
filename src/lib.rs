//! voxmask: singing-voice separation by pixel-wise classification of a magnitude spectrogram.
//!
//! Pipeline (Lin et al. 2018, "Singing Voice Separation Using a Deep Convolutional Neural Network
//! Trained by Ideal Binary Mask and Cross Entropy"): STFT → a CNN that gives P(vocal) for every
//! time-frequency bin → mask → inverse STFT. Offline, live and training share the same code.
//!
//! Separating audio in memory with the built-in offline model and a [`Separator`](separation::Separator)
//! (`voxmask separate`, `eval`, `live` and the trainer's validation all run through one;
//! `ARCHITECTURE.md` maps the rest):
//!
//! ```
//! use voxmask::model::{ModelSource, RuntimeOptions, source::OFFLINE};
//! use voxmask::separation::{Separator, SeparatorConfig};
//!
//! // Half a second of stereo at 44.1 kHz, `[channel][sample]`.
//! let tone: Vec<f32> = (0..22_050).map(|i| 0.3 * (i as f32 * 0.0627).sin()).collect();
//! let audio = [tone.as_slice(), tone.as_slice()];
//! let model = ModelSource::BuiltIn(&OFFLINE).load(&RuntimeOptions::default())?;
//! let mut separator = Separator::new(model, &SeparatorConfig::new(2, 44_100))?;
//! let (mut vocals, mut accompaniment) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
//! separator.process(&audio, &mut vocals, &mut accompaniment)?; // any number of times
//! separator.finish(&mut vocals, &mut accompaniment)?;
//! assert_eq!((vocals.len(), vocals[0].len()), (2, 22_050));
//! // The default mask rule is complementary: the stems add up to the input.
//! let worst = (0..22_050).map(|i| (vocals[0][i] + accompaniment[0][i] - audio[0][i]).abs()).fold(0.0, f32::max);
//! assert!(worst < 1e-4, "{worst}");
//! # Ok::<(), voxmask::Error>(())
//! ```

pub mod error;

pub use error::{Error, Result};
pub mod audio;
pub mod dataset;
pub mod dsp;
pub mod eval;
pub mod loss;
pub mod model;
pub mod plot;
pub mod separation;
#[cfg(feature = "live")]
pub mod stream;
#[cfg(feature = "train")]
pub mod train;
