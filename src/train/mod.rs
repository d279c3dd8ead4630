//! Training (feature `train`): datasets, augmented spectral batches, the two network presets in
//! candle, the loss kernels as candle ops, AdamW, the trainer and ONNX export.

pub mod data;
pub mod export;
pub mod net;
pub mod ops;
pub mod optim;
pub mod plot;
pub mod trainer;
