//! Analysis/synthesis windows. voxmask uses the periodic Hann window (the DFT-even form used by
//! librosa, torch.stft and the founding paper's code), which tiles exactly at hops of win/2^k.

use std::f64::consts::PI;

/// Window functions a model may ask for in its contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Periodic Hann: w[n] = 0.5 − 0.5·cos(2πn/N), n = 0..N.
    Hann,
}

impl WindowKind {
    /// Parses the contract's `window` value.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hann" => Some(WindowKind::Hann),
            _ => None,
        }
    }

    /// The contract's name for this window.
    pub fn name(self) -> &'static str {
        match self {
            WindowKind::Hann => "hann",
        }
    }

    /// Returns the `len`-point window.
    pub fn build(self, len: usize) -> Vec<f32> {
        match self {
            WindowKind::Hann => {
                (0..len).map(|n| (0.5 - 0.5 * (2.0 * PI * n as f64 / len as f64).cos()) as f32).collect()
            }
        }
    }
}
