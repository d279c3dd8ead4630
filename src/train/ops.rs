//! The loss kernels of `crate::loss` as candle custom ops with a hand-written backward, so the
//! trainer's autodiff uses exactly the code that validation and the CLI use. The forward pass
//! computes the loss and its gradient in one fused pass and keeps the gradient for `bwd`.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::loss::{BceOptions, DiceOptions, bce_with_logits, self_adjusting_dice};

/// Which kernel the op runs.
#[derive(Debug, Clone)]
pub enum LossKind {
    Bce(BceOptions),
    Dice(DiceOptions),
}

/// A loss op over (logits, targets) of the same shape, returning a scalar.
pub struct LossOp {
    kind: LossKind,
    /// Per-bin weights (BCE only), one per logit.
    weights: Option<Vec<f32>>,
    grad: Mutex<Option<Vec<f32>>>,
}

impl LossOp {
    pub fn new(kind: LossKind, weights: Option<Vec<f32>>) -> Self {
        LossOp { kind, weights, grad: Mutex::new(None) }
    }
}

fn contiguous<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(candle_core::Error::RequiresContiguous { op: "voxmask loss" }),
    }
}

impl CustomOp2 for LossOp {
    fn name(&self) -> &'static str {
        "voxmask-loss"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let logits = contiguous(s1, l1)?;
        let targets = contiguous(s2, l2)?;
        let mut grad = vec![0.0f32; logits.len()];
        let value = match &self.kind {
            LossKind::Bce(o) => bce_with_logits(logits, targets, self.weights.as_deref(), o, Some(&mut grad)),
            LossKind::Dice(o) => self_adjusting_dice(logits, targets, o, Some(&mut grad)),
        }
        .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        if let Ok(mut g) = self.grad.lock() {
            *g = Some(grad);
        }
        Ok((CpuStorage::F32(vec![value as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        arg1: &Tensor,
        _arg2: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let cached = self.grad.lock().ok().and_then(|mut g| g.take());
        let grad = match cached {
            Some(g) => g,
            None => {
                return Err(candle_core::Error::Msg("voxmask loss: backward called twice or before forward".into()));
            }
        };
        let g = Tensor::from_vec(grad, arg1.shape(), arg1.device())?;
        Ok((Some(g.broadcast_mul(grad_res)?), None))
    }
}

/// Applies the loss op: `logits` and `targets` of the same shape → scalar tensor. `weights`, one
/// per element, weight the BCE per bin (the Dice loss ignores them).
pub fn loss(logits: &Tensor, targets: &Tensor, kind: LossKind, weights: Option<&[f32]>) -> candle_core::Result<Tensor> {
    logits.contiguous()?.apply_op2(&targets.contiguous()?, LossOp::new(kind, weights.map(<[f32]>::to_vec)))
}
