//! One temporal convolution layer of the TCN presets as a single candle op on the CPU: the
//! dilated taps of the zero-padded input gathered into one matrix (im2col), one GEMM, bias and
//! ReLU fused, and a hand-written backward (two GEMMs, the bias sum, the taps scattered back).
//!
//! Why: candle's generic path for the same layer (pad, three `narrow`s, `cat`, `matmul`,
//! broadcast add, `relu`) copies the activations many times and its backward builds a
//! zero-padded tensor per tap; profiled on a training step, the GEMMs were a quarter of the time
//! and copies, element-wise passes and the page faults of their fresh buffers most of the rest.
//! `tests/train.rs` checks the op against that generic path, forward and backward.

use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use crate::train::net::TcnLayer;

/// `relu(conv_time(x) + b)` for `x: [batch, frames, cin]`, `w: [kernel·cin, hidden]` (tap-major
/// rows, as the generic path's `cat` orders them), `b: [hidden]` → `[batch, frames, hidden]`.
pub struct TemporalConv {
    layer: TcnLayer,
    kernel: usize,
    /// The im2col matrix of the forward pass, `[batch·frames, kernel·cin]`, kept for `bwd`.
    cols: Mutex<Option<Vec<f32>>>,
}

impl TemporalConv {
    pub fn new(layer: TcnLayer, kernel: usize) -> Self {
        TemporalConv { layer, kernel, cols: Mutex::new(None) }
    }

    /// Input frame that tap `j` of output frame `t` reads, if inside the sequence.
    fn source(&self, t: usize, j: usize, frames: usize) -> Option<usize> {
        (t + j * self.layer.dilation).checked_sub(self.layer.past).filter(|&s| s < frames)
    }
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => Err(candle_core::Error::RequiresContiguous { op: "voxmask temporal conv" }),
    }
}

fn threads() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]`, each given by its row and column strides.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
) {
    assert!(dst.len() >= m * n);
    assert!(m == 0 || k == 0 || lhs.len() > (m - 1) * lhs_rs + (k - 1) * lhs_cs);
    assert!(k == 0 || n == 0 || rhs.len() > (k - 1) * rhs_rs + (n - 1) * rhs_cs);
    // SAFETY: the asserts above keep every index the strides reach inside the slices.
    unsafe {
        gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            threads(),
        )
    }
}

impl CustomOp3 for TemporalConv {
    fn name(&self) -> &'static str {
        "voxmask-temporal-conv"
    }

    fn cpu_fwd(
        &self,
        sx: &CpuStorage,
        lx: &Layout,
        sw: &CpuStorage,
        lw: &Layout,
        sb: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (batch, frames, cin) = lx.shape().dims3()?;
        let (rows_w, hidden) = lw.shape().dims2()?;
        if rows_w != self.kernel * cin || lb.shape().elem_count() != hidden {
            return Err(candle_core::Error::Msg(format!(
                "temporal conv: weights {:?} and bias {:?} do not fit {cin} input channels",
                lw.shape(),
                lb.shape()
            )));
        }
        let (x, w, b) = (slice(sx, lx)?, slice(sw, lw)?, slice(sb, lb)?);
        let width = self.kernel * cin;
        let mut cols = vec![0.0f32; batch * frames * width];
        cols.par_chunks_mut(frames * width).enumerate().for_each(|(bi, block)| {
            for (t, row) in block.chunks_mut(width).enumerate() {
                for (j, tap) in row.chunks_mut(cin).enumerate() {
                    if let Some(s) = self.source(t, j, frames) {
                        tap.copy_from_slice(&x[(bi * frames + s) * cin..][..cin]);
                    }
                }
            }
        });
        let n = batch * frames;
        let mut y = vec![0.0f32; n * hidden];
        matmul(n, hidden, width, &mut y, &cols, width, 1, w, hidden, 1);
        y.par_chunks_mut(hidden).for_each(|row| row.iter_mut().zip(b).for_each(|(v, bias)| *v = (*v + bias).max(0.0)));
        if let Ok(mut c) = self.cols.lock() {
            *c = Some(cols);
        }
        Ok((CpuStorage::F32(y), Shape::from((batch, frames, hidden))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let cols =
            self.cols.lock().ok().and_then(|mut c| c.take()).ok_or_else(|| {
                candle_core::Error::Msg("temporal conv: backward called twice or before forward".into())
            })?;
        let (batch, frames, cin) = x.dims3()?;
        let (width, hidden) = w.dims2()?;
        let n = batch * frames;
        let y: Vec<f32> = res.flatten_all()?.to_vec1()?;
        let mut dz: Vec<f32> = grad_res.broadcast_as(res.shape())?.flatten_all()?.to_vec1()?;
        // Through the ReLU: no gradient where the output was clamped to zero.
        dz.par_iter_mut().zip(y.par_iter()).for_each(|(g, &v)| {
            if v <= 0.0 {
                *g = 0.0
            }
        });
        let mut db = vec![0.0f32; hidden];
        for row in dz.chunks(hidden) {
            db.iter_mut().zip(row).for_each(|(s, g)| *s += g);
        }
        // dW = colsᵀ · dz.
        let mut dw = vec![0.0f32; width * hidden];
        matmul(width, hidden, n, &mut dw, &cols, 1, width, &dz, hidden, 1);
        // dcols = dz · Wᵀ, reusing the im2col buffer.
        let wv: Vec<f32> = w.flatten_all()?.to_vec1()?;
        let mut dcols = cols;
        matmul(n, width, hidden, &mut dcols, &dz, hidden, 1, &wv, 1, hidden);
        // Each tap's gradient goes back to the frame it read.
        let mut dx = vec![0.0f32; n * cin];
        dx.par_chunks_mut(frames * cin).enumerate().for_each(|(bi, block)| {
            for t in 0..frames {
                let row = &dcols[(bi * frames + t) * width..][..width];
                for (j, tap) in row.chunks(cin).enumerate() {
                    if let Some(s) = self.source(t, j, frames) {
                        block[s * cin..(s + 1) * cin].iter_mut().zip(tap).for_each(|(d, g)| *d += g);
                    }
                }
            }
        });
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, w.shape(), dev)?),
            Some(Tensor::from_vec(db, hidden, dev)?),
        ))
    }
}
