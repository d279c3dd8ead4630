//! Where a model comes from: a file the user named, or one of the shipped models compiled into
//! the binary, so that an installed or copied `voxmask` separates from any folder with no
//! `models/` beside it. The built-in bytes are the files in `models/` at build time (cargo
//! rebuilds when they change).

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Model, ModelInfo, RuntimeOptions};
use crate::Result;

/// A shipped model compiled into the binary.
#[derive(Debug)]
pub struct BuiltInModel {
    /// Its file name in `models/`.
    pub file: &'static str,
    /// What it is for, in a few words.
    pub role: &'static str,
    pub bytes: &'static [u8],
}

/// The centred offline default of `separate` and `eval`.
pub static OFFLINE: BuiltInModel = BuiltInModel {
    file: "voxmask.onnx",
    role: "the offline default of separate and eval",
    bytes: include_bytes!("../../models/voxmask.onnx"),
};

/// The causal model `live` uses (at most 50 ms of algorithmic latency).
pub static LIVE: BuiltInModel = BuiltInModel {
    file: "voxmask-live.onnx",
    role: "the causal model of live",
    bytes: include_bytes!("../../models/voxmask-live.onnx"),
};

/// Every built-in model, the default first.
pub static BUILT_IN: [&BuiltInModel; 2] = [&OFFLINE, &LIVE];

/// The model a command runs.
#[derive(Debug, Clone)]
pub enum ModelSource {
    File(PathBuf),
    BuiltIn(&'static BuiltInModel),
}

impl ModelSource {
    /// `explicit` (`--model`), else `$VOXMASK_MODEL`, else the built-in `default`.
    pub fn choose(explicit: Option<&Path>, default: &'static BuiltInModel) -> Self {
        if let Some(p) = explicit {
            return ModelSource::File(p.to_path_buf());
        }
        match std::env::var_os("VOXMASK_MODEL").filter(|p| !p.is_empty()) {
            Some(p) => ModelSource::File(PathBuf::from(p)),
            None => ModelSource::BuiltIn(default),
        }
    }

    /// The name messages use: the file's path, or `built-in voxmask.onnx`. For built-in models it
    /// is also the [`Model::path`] of the loaded model.
    pub fn label(&self) -> PathBuf {
        match self {
            ModelSource::File(p) => p.clone(),
            ModelSource::BuiltIn(m) => PathBuf::from(format!("built-in {}", m.file)),
        }
    }

    /// Reads and checks the model without creating a session.
    pub fn read(&self) -> Result<(ModelInfo, Cow<'static, [u8]>)> {
        match self {
            ModelSource::File(p) => ModelInfo::read(p).map(|(info, bytes)| (info, Cow::Owned(bytes))),
            ModelSource::BuiltIn(m) => Ok((ModelInfo::from_bytes(m.bytes, &self.label())?, Cow::Borrowed(m.bytes))),
        }
    }

    /// Loads the model into a session.
    pub fn load(&self, opts: &RuntimeOptions) -> Result<Model> {
        match self {
            ModelSource::File(p) => Model::load(p, opts),
            ModelSource::BuiltIn(m) => Model::from_bytes(m.bytes, &self.label(), opts),
        }
    }
}

impl fmt::Display for ModelSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.label().display())
    }
}
