//! Signal processing shared by the offline, live and training paths: windows, the streaming
//! STFT/iSTFT, the mask rules and the stereo Wiener filter. Pure code on slices; buffers are
//! allocated only in constructors.

pub mod mask;
pub mod resample;
pub mod simd;
pub mod spatial;
pub mod stft;
pub mod window;

pub use mask::{Feature, MaskRule, ModelOutput};
pub use spatial::StereoWiener;
pub use stft::{StftAnalyzer, StftConfig, StftPairAnalyzer, StftPairSynthesizer, StftSynthesizer};
pub use window::WindowKind;
