//! AdamW (Loshchilov & Hutter 2019) with its moments kept as named tensors, so a checkpoint can
//! save and restore them and `--resume` continues the exact optimisation (candle's own AdamW
//! keeps its state private). Also the learning-rate schedule: linear warm-up, cosine decay.

use std::collections::HashMap;

use candle_core::{Tensor, Var, backprop::GradStore};

use crate::{Error, Result};

/// AdamW settings.
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Gradients are rescaled so their global L2 norm is at most this.
    pub clip_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 1e-4, clip_norm: 5.0 }
    }
}

/// Optimiser state for a list of named variables.
pub struct AdamW {
    cfg: AdamWConfig,
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates applied so far.
    pub step: u64,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let m = vars.iter().map(|(_, v)| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        let v = vars.iter().map(|(_, v)| v.zeros_like()).collect::<candle_core::Result<Vec<_>>>()?;
        Ok(AdamW { cfg, vars, m, v, step: 0 })
    }

    /// One update with learning rate `lr`; returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        let mut sq = 0.0f64;
        let mut gs = Vec::with_capacity(self.vars.len());
        for (name, var) in &self.vars {
            // Detached: the optimiser state must not keep the autodiff graph of every step alive.
            let g = grads.get(var).ok_or_else(|| Error::Train(format!("no gradient for `{name}`")))?.detach();
            sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            gs.push(g);
        }
        let norm = sq.sqrt();
        if !norm.is_finite() {
            return Err(Error::Train(format!("non-finite gradient norm ({norm})")));
        }
        let clip = if norm > self.cfg.clip_norm { self.cfg.clip_norm / norm } else { 1.0 };
        self.step += 1;
        let t = self.step as i32;
        let (b1, b2) = (self.cfg.beta1, self.cfg.beta2);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for (i, ((_, var), g)) in self.vars.iter().zip(gs).enumerate() {
            let g = (g * clip)?;
            let m = ((&self.m[i] * b1)? + (&g * (1.0 - b1))?)?;
            let v = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&m / c1)? / ((&v / c2)?.sqrt()? + self.cfg.eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - lr * self.cfg.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?.detach())?;
            self.m[i] = m.detach();
            self.v[i] = v.detach();
        }
        Ok(norm)
    }

    /// The moments as named tensors (for checkpoints).
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.insert(format!("adam.m.{name}"), self.m[i].clone());
            out.insert(format!("adam.v.{name}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`AdamW::state`].
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("adam.m.", &mut self.m[i]), ("adam.v.", &mut self.v[i])] {
                let key = format!("{prefix}{name}");
                let t = state.get(&key).ok_or_else(|| Error::Train(format!("checkpoint lacks `{key}`")))?;
                if t.shape() != var.shape() {
                    return Err(Error::Train(format!(
                        "checkpoint `{key}` has shape {:?}, expected {:?}",
                        t.shape(),
                        var.shape()
                    )));
                }
                *slot = t.to_device(var.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Learning rate at `step` of `total`: linear warm-up over `warmup` steps to `peak`, then cosine
/// decay to `peak · floor`.
pub fn learning_rate(step: u64, total: u64, warmup: u64, peak: f64, floor: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    peak * (floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}
