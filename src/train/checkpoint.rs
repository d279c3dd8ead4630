//! Checkpoints: weights, optimiser moments and the averaged weights (`--ema`) in one
//! safetensors file, the training state in a JSON sidecar, each written atomically; loading
//! them back for `--resume`, `--init` and export.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::train::net::{Net, Preset};
use crate::train::optim::AdamW;
use crate::{Error, Result};

use crate::train::trainer::{TrainState, training_contract};

/// The JSON sidecar of a checkpoint file.
pub fn state_path(ckpt: &Path) -> PathBuf {
    ckpt.with_extension("json")
}

/// Name prefix of the averaged weights in a checkpoint.
pub(crate) const EMA_PREFIX: &str = "ema.";

/// The exponential moving average of a network's weights (`--ema`).
pub(crate) struct WeightAverage {
    decay: f64,
    weights: HashMap<String, Tensor>,
}

impl WeightAverage {
    /// Starts from the network's weights, or from the averages saved in a checkpoint.
    pub(crate) fn new(net: &Net, decay: f32, saved: Option<&HashMap<String, Tensor>>) -> Result<Self> {
        let mut weights = HashMap::new();
        let data = net.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        for (k, v) in data.iter() {
            let stored = saved.and_then(|s| s.get(&format!("{EMA_PREFIX}{k}")));
            weights.insert(
                k.clone(),
                stored.cloned().unwrap_or_else(|| v.as_tensor().copy().unwrap_or(v.as_tensor().clone())),
            );
        }
        Ok(WeightAverage { decay: f64::from(decay), weights })
    }

    /// After optimiser step `step`: the average moves towards the weights. The decay ramps up
    /// over the first steps ((1 + t) / (10 + t)), so the random start does not linger.
    pub(crate) fn update(&mut self, net: &Net, step: u64) -> Result<()> {
        let d = self.decay.min((1.0 + step as f64) / (10.0 + step as f64));
        let data = net.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        for (k, v) in data.iter() {
            if let Some(avg) = self.weights.get_mut(k) {
                *avg = ((&*avg * d)? + (v.as_tensor() * (1.0 - d))?)?;
            }
        }
        Ok(())
    }

    /// Swaps the network's weights with the averages (call again to swap back).
    pub(crate) fn swap(&mut self, net: &Net) -> Result<()> {
        let data = net.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        for (k, v) in data.iter() {
            if let Some(avg) = self.weights.get_mut(k) {
                let current = v.as_tensor().copy()?;
                v.set(avg)?;
                *avg = current;
            }
        }
        Ok(())
    }

    pub(crate) fn tensors(&self) -> impl Iterator<Item = (String, Tensor)> + '_ {
        self.weights.iter().map(|(k, t)| (format!("{EMA_PREFIX}{k}"), t.clone()))
    }
}

/// Writes weights (+ optimiser moments) and the state, each atomically.
pub(crate) fn save_checkpoint(net: &Net, opt: Option<&AdamW>, state: &TrainState, path: &Path) -> Result<()> {
    save_checkpoint_with(net, opt, None, state, path)
}

/// Writes weights (+ optimiser moments, + averaged weights) and the state, each atomically.
pub(crate) fn save_checkpoint_with(
    net: &Net,
    opt: Option<&AdamW>,
    average: Option<&WeightAverage>,
    state: &TrainState,
    path: &Path,
) -> Result<()> {
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    {
        let data = net.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        for (k, v) in data.iter() {
            tensors.insert(k.clone(), v.as_tensor().clone());
        }
    }
    if let Some(opt) = opt {
        tensors.extend(opt.state());
    }
    if let Some(average) = average {
        tensors.extend(average.tensors());
    }
    let tmp = path.with_extension("ckpt.tmp");
    candle_core::safetensors::save(&tensors, &tmp)?;
    let crc = crc32fast::hash(&std::fs::read(&tmp).map_err(|e| Error::io(&tmp, e))?);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    let state = TrainState { checkpoint_crc32: Some(crc), ..state.clone() };
    let json = serde_json::to_string_pretty(&state).map_err(|e| Error::Train(e.to_string()))?;
    let sp = state_path(path);
    let tmp = sp.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &sp).map_err(|e| Error::io(&sp, e))?;
    Ok(())
}

/// The training state saved beside a checkpoint (`best.json` for `best.ckpt`).
pub fn read_state(ckpt: &Path) -> Result<TrainState> {
    if !ckpt.is_file() {
        return Err(Error::io(ckpt, std::io::Error::new(std::io::ErrorKind::NotFound, "checkpoint not found")));
    }
    let sp = state_path(ckpt);
    if !sp.is_file() {
        return Err(Error::Train(format!(
            "{}: not a voxmask-train checkpoint (the training state {} that goes with one is missing)",
            ckpt.display(),
            sp.display()
        )));
    }
    let text = std::fs::read_to_string(&sp).map_err(|e| Error::io(&sp, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Train(format!("{}: {e}", sp.display())))
}

/// Loads a checkpoint's network (and the raw tensors, for the optimiser).
pub fn load_checkpoint(path: &Path, device: &Device) -> Result<(Net, TrainState, HashMap<String, Tensor>)> {
    let state = read_state(path)?;
    let preset = Preset::parse(&state.config.preset).ok_or_else(|| {
        Error::Train(format!("{}: unknown preset {:?}", state_path(path).display(), state.config.preset))
    })?;
    if let Some(expected) = state.checkpoint_crc32 {
        let crc = crc32fast::hash(&std::fs::read(path).map_err(|e| Error::io(path, e))?);
        if crc != expected {
            return Err(Error::Train(format!(
                "{}: the checkpoint is damaged (CRC-32 {crc:08x}, saved as {expected:08x}); use the other checkpoint of the run or start again",
                path.display()
            )));
        }
    }
    let tensors = candle_core::safetensors::load(path, device)
        .map_err(|e| Error::Train(format!("{}: not a readable checkpoint: {e}", path.display())))?;
    let mut net = Net::new(preset, device, None, 0)?;
    {
        let data = net.varmap.data().lock().map_err(|_| Error::Train("weights lock poisoned".into()))?;
        for (name, var) in data.iter() {
            let t =
                tensors.get(name).ok_or_else(|| Error::Train(format!("{}: lacks weight `{name}`", path.display())))?;
            if t.shape() != var.shape() {
                return Err(Error::Train(format!(
                    "{}: `{name}` has shape {:?}, expected {:?}",
                    path.display(),
                    t.shape(),
                    var.shape()
                )));
            }
            var.set(t)?;
        }
    }
    net.contract = training_contract(preset, &state);
    Ok((net, state, tensors))
}
