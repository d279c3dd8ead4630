//! Training (feature `train`): augmented spectral batches from one or more datasets, the network
//! presets in candle (with a fused temporal convolution op), the loss kernels as candle ops,
//! AdamW, the training loop (`trainer`), its checkpoints and validation, and ONNX export.

pub mod checkpoint;
pub mod data;
pub mod export;
pub mod net;
pub mod ops;
pub mod optim;
pub mod tcn_op;
pub mod trainer;
pub mod validation;
