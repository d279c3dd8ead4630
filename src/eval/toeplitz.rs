//! Solves the BSS Eval Gram system through its Cholesky factor, found by the generalized Schur
//! algorithm (Kailath & Sayed, "Displacement structure", SIAM Review 37(3), 1995).
//!
//! Ordered by delay, then channel, the Gram matrix is block Toeplitz (q × q blocks, q reference
//! channels), so `T − Z T Zᵀ` (Z: one block down) has rank 2q and an `n × 2q` generator yields
//! the factor in O(q·n²) flops: ~70 Mflop instead of Cholesky's 2.9 Gflop for 2048 unknowns.
//! Hyperbolic rotations are applied in the mixed form, the stable one for positive-definite
//! Toeplitz matrices (Bojanczyk, Brent, de Hoog & Sweet, SIAM J. Matrix Anal. Appl. 16(1), 1995);
//! one with |ρ| ≥ 1 means the matrix is not numerically positive definite, and the caller falls
//! back to a dense solver.

/// Dot product with eight independent partial sums: strict IEEE order would stop LLVM from
/// vectorising a single-accumulator loop.
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// The Schur algorithm's buffers, kept between systems.
#[derive(Default)]
pub(crate) struct ToeplitzCholesky {
    /// The lower factor packed by columns: column j, rows j..n, starts at `col_start(j)`.
    l: Vec<f64>,
    /// Generator `[U V]`, 2q columns of n rows; see `solve`.
    generator: Vec<f64>,
    /// One row value per generator row, the reflections' `w = X v`.
    w: Vec<f64>,
    /// A reflection's vector.
    vs: Vec<f64>,
}

impl ToeplitzCholesky {
    /// Solves `(T + diag·I) x = b` in place for every `b` in `rhs`, `T` the symmetric
    /// block-Toeplitz matrix of `blocks` × `blocks` blocks of `q` × `q` whose first block column
    /// is `first(i, a, b) = T[(i, a), (0, b)]`; unknowns are ordered as the matrix, entry `i·q + a`
    /// for delay i, channel a. Returns `false`, `rhs` garbage, when `T + diag·I` is not
    /// numerically positive definite.
    pub(crate) fn solve(
        &mut self,
        q: usize,
        blocks: usize,
        first: impl Fn(usize, usize, usize) -> f64,
        diag: f64,
        rhs: &mut [Vec<f64>],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if crate::dsp::simd::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA.
            return unsafe { self.solve_avx2(q, blocks, &first, diag, rhs) };
        }
        self.solve_body(q, blocks, &first, diag, rhs)
    }

    /// The same arithmetic at AVX2 width (no fused multiply-adds: both paths round alike).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn solve_avx2(
        &mut self,
        q: usize,
        blocks: usize,
        first: &dyn Fn(usize, usize, usize) -> f64,
        diag: f64,
        rhs: &mut [Vec<f64>],
    ) -> bool {
        self.solve_body(q, blocks, first, diag, rhs)
    }

    #[inline(always)]
    fn solve_body(
        &mut self,
        q: usize,
        blocks: usize,
        first: &dyn Fn(usize, usize, usize) -> f64,
        diag: f64,
        rhs: &mut [Vec<f64>],
    ) -> bool {
        let n = q * blocks;
        if n == 0 {
            return true;
        }
        // Leading block C₀ = Lc Lcᵀ (row-major, lower).
        let mut lc = vec![0.0f64; q * q];
        for a in 0..q {
            for b in 0..=a {
                lc[a * q + b] = first(0, a, b);
            }
            lc[a * q + a] += diag;
        }
        for j in 0..q {
            let d = lc[j * q + j] - dot(&lc[j * q..j * q + j], &lc[j * q..j * q + j]);
            if !(d > 0.0 && d.is_finite()) {
                return false;
            }
            let s = d.sqrt();
            lc[j * q + j] = s;
            for i in j + 1..q {
                lc[i * q + j] = (lc[i * q + j] - dot(&lc[i * q..i * q + j], &lc[j * q..j * q + j])) / s;
            }
        }
        // T − Z T Zᵀ = U Uᵀ − V Vᵀ with block row i of U equal to Cᵢ Lc⁻ᵀ (block 0: Lc) and V the
        // same without block 0. Columns are contiguous so every transform below is a vector loop.
        let g = &mut self.generator;
        g.clear();
        g.resize(2 * q * n, 0.0);
        let mut y = vec![0.0f64; q];
        for i in 0..blocks {
            for a in 0..q {
                let row = i * q + a;
                if i == 0 {
                    for c in 0..=a {
                        g[c * n + row] = lc[a * q + c];
                    }
                    continue;
                }
                for c in 0..q {
                    y[c] = (first(i, a, c) - dot(&lc[c * q..c * q + c], &y[..c])) / lc[c * q + c];
                }
                for (c, &v) in y.iter().enumerate() {
                    g[c * n + row] = v;
                    g[(q + c) * n + row] = v;
                }
            }
        }
        // Every entry is written before it is read: no need to clear what the last system left.
        if self.l.len() < n * (n + 1) / 2 {
            self.l.resize(n * (n + 1) / 2, 0.0);
        }
        self.w.resize(n, 0.0);
        let (u, v) = self.generator.split_at_mut(q * n);
        let (w, vs) = (&mut self.w, &mut self.vs);
        for k in 0..blocks {
            // Step k: U's rows 0..rows and V's rows vo..n are the generator of the trailing
            // (n − kq)-square Schur complement. Shifting U down one block between steps is free:
            // its row r stands for row kq + r of the matrix.
            let rows = n - k * q;
            let vo = k * q;
            // Step 0's top block, [Lc 0], is already proper.
            let to_zero = if k == 0 { 0 } else { q };
            for r in 0..to_zero {
                // Zero the top block's row r right of the diagonal in U ...
                if let Some((tau, beta)) = householder(u, n, r, q, r, vs) {
                    project(u, n, r, q, r, rows, vs, w);
                    for c in r..q {
                        let f = tau * vs[c - r];
                        for (x, wi) in u[c * n + r..c * n + rows].iter_mut().zip(&w[r..rows]) {
                            *x -= f * wi;
                        }
                        // The row's exact image: (β, 0, …, 0).
                        u[c * n + r] = if c == r { beta } else { 0.0 };
                    }
                }
                // ... and past column 0 in V, then V's last entry on it with one hyperbolic
                // rotation against U's diagonal, in the same pass as V's column 0.
                let reflected = householder(v, n, 0, q, vo + r, vs);
                let a = u[r * n + r];
                let b = match reflected {
                    Some((tau, beta)) => {
                        project(v, n, 0, q, vo + r, n, vs, w);
                        for c in 1..q {
                            let f = tau * vs[c];
                            for (x, wi) in v[c * n + vo + r..c * n + n].iter_mut().zip(&w[vo + r..n]) {
                                *x -= f * wi;
                            }
                            v[c * n + vo + r] = 0.0;
                        }
                        beta
                    }
                    None => v[vo + r],
                };
                let rho = b / a;
                if rho.is_nan() || rho.abs() >= 1.0 {
                    return false;
                }
                let c = ((1.0 - rho) * (1.0 + rho)).sqrt();
                let (ur, v0) = (&mut u[r * n + r..r * n + rows], &mut v[vo + r..n]);
                // Mixed form: V's entry from U's updated one, not from the original pair.
                match reflected {
                    // V's column 0 takes its reflection's update on the way.
                    Some((tau, _)) => {
                        for ((x, y), wi) in ur.iter_mut().zip(v0.iter_mut()).zip(&w[vo + r..n]) {
                            let yr = *y - tau * wi;
                            let xn = (*x - rho * yr) / c;
                            *y = c * yr - rho * xn;
                            *x = xn;
                        }
                    }
                    None => {
                        for (x, y) in ur.iter_mut().zip(v0.iter_mut()) {
                            let xn = (*x - rho * *y) / c;
                            *y = c * *y - rho * xn;
                            *x = xn;
                        }
                    }
                }
                // The top row's exact image: (a·c, 0).
                ur[0] = (a - rho * b) / c;
                v0[0] = 0.0;
            }
            // Block column k of the factor is U's (its diagonal may be negative: a column's sign
            // cancels in L Lᵀ): forward substitution L y = b while it is in cache, and kept for
            // the backward pass.
            for c in 0..q {
                let j = k * q + c;
                let col = &u[c * n + c..c * n + rows];
                if !(col[0] != 0.0 && col[0].is_finite()) {
                    return false;
                }
                for b in rhs.iter_mut() {
                    let y = b[j] / col[0];
                    b[j] = y;
                    for (bi, li) in b[j + 1..].iter_mut().zip(&col[1..]) {
                        *bi -= y * li;
                    }
                }
                let s = col_start(n, j);
                self.l[s..s + n - j].copy_from_slice(col);
            }
        }
        // Lᵀ x = y, one pass over the factor (too large for cache) for every right-hand side.
        for j in (0..n).rev() {
            let s = col_start(n, j);
            let col = &self.l[s..s + n - j];
            for b in rhs.iter_mut() {
                b[j] = (b[j] - dot(&col[1..], &b[j + 1..])) / col[0];
            }
        }
        true
    }
}

/// Where column `j` of an `n × n` lower factor packed by columns starts.
fn col_start(n: usize, j: usize) -> usize {
    j * (2 * n - j + 1) / 2
}

/// The Householder reflection `H = I − τ v vᵀ` (LAPACK's dlarfg, `v₀ = 1`, into `vs`) that maps
/// row `piv` of columns `c0..c1` of the column-major `m` (column stride `n`) onto its first
/// column, and `(τ, β)`, β the row's first entry after it; `None` when that row is already zero
/// past its first column.
#[inline(always)]
fn householder(m: &[f64], n: usize, c0: usize, c1: usize, piv: usize, vs: &mut Vec<f64>) -> Option<(f64, f64)> {
    if c1 - c0 < 2 {
        return None;
    }
    let x0 = m[c0 * n + piv];
    let tail: f64 = (c0 + 1..c1).map(|c| m[c * n + piv] * m[c * n + piv]).sum();
    if tail == 0.0 {
        return None;
    }
    let beta = -(x0 * x0 + tail).sqrt().copysign(x0);
    let scale = 1.0 / (x0 - beta);
    vs.clear();
    vs.extend((c0..c1).map(|c| if c == c0 { 1.0 } else { m[c * n + piv] * scale }));
    Some(((beta - x0) / beta, beta))
}

/// `w[piv..end] = Σ_c vs[c − c0] · m[c][piv..end]` over columns `c0..c1` (at least two), the
/// rows below `piv` the reflection acts on (the rows above are zero in these columns).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn project(m: &[f64], n: usize, c0: usize, c1: usize, piv: usize, end: usize, vs: &[f64], w: &mut [f64]) {
    let w = &mut w[piv..end];
    let v1 = vs[1];
    let (x0, x1) = (&m[c0 * n + piv..c0 * n + end], &m[(c0 + 1) * n + piv..(c0 + 1) * n + end]);
    for ((wi, a), b) in w.iter_mut().zip(x0).zip(x1) {
        *wi = a + v1 * b;
    }
    for c in c0 + 2..c1 {
        let vc = vs[c - c0];
        for (wi, x) in w.iter_mut().zip(&m[c * n + piv..c * n + end]) {
            *wi += vc * x;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative residual allowed for the well-conditioned systems below, in f64.
    const SOLVE_TOL: f64 = 1e-10;

    fn signal(len: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    /// `r_ab(k) = Σ x_a[t + k] x_b[t]`, the Gram entries of delayed copies of `x`.
    fn corr(x: &[Vec<f64>], a: usize, b: usize, k: isize) -> f64 {
        let n = x[0].len() as isize;
        (0..n).filter(|&t| t + k >= 0 && t + k < n).map(|t| x[a][(t + k) as usize] * x[b][t as usize]).sum()
    }

    /// The dense matrix `T[(u, a), (v, b)] = r_ab(v − u)` and the factor's `first`.
    fn system(q: usize, blocks: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
        // Channel 1 mixes channel 0 in, so the off-diagonal blocks are not zero.
        let mut x: Vec<Vec<f64>> = (0..q as u64).map(|c| signal(300, seed + c)).collect();
        for c in 1..q {
            let prev = x[c - 1].clone();
            for (v, p) in x[c].iter_mut().zip(prev) {
                *v += 0.5 * p;
            }
        }
        let n = q * blocks;
        let mut t = vec![0.0; n * n];
        for u in 0..blocks {
            for v in 0..blocks {
                for a in 0..q {
                    for b in 0..q {
                        t[(u * q + a) * n + v * q + b] = corr(&x, a, b, v as isize - u as isize);
                    }
                }
            }
        }
        (x, t)
    }

    #[test]
    fn solves_block_toeplitz_systems() {
        for (q, blocks) in [(1, 1), (1, 9), (2, 7), (3, 5), (4, 16)] {
            let (x, t) = system(q, blocks, 7 * q as u64 + blocks as u64);
            let n = q * blocks;
            let mut f = ToeplitzCholesky::default();
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37 + 1.0).sin()).collect();
            let mut sol = vec![b.clone(), b.iter().map(|v| -2.0 * v).collect()];
            assert!(f.solve(q, blocks, |i, a, b| corr(&x, a, b, -(i as isize)), 1e-3, &mut sol));
            for (s, scale) in sol.iter().zip([1.0, -2.0]) {
                let mut worst = 0.0f64;
                for i in 0..n {
                    let r: f64 = (0..n).map(|j| t[i * n + j] * s[j]).sum::<f64>() + 1e-3 * s[i] - scale * b[i];
                    worst = worst.max(r.abs());
                }
                assert!(worst < SOLVE_TOL * 2.0, "q={q} blocks={blocks}: residual {worst}");
            }
        }
    }

    #[test]
    fn rejects_indefinite_matrix() {
        // Lag-1 correlation above the lag-0 energy: [[1, 2], [2, 1]] is indefinite.
        let mut f = ToeplitzCholesky::default();
        assert!(!f.solve(1, 2, |i, _, _| if i == 0 { 1.0 } else { 2.0 }, 0.0, &mut [vec![1.0; 2]]));
        // And a leading block that is not positive definite.
        assert!(!f.solve(2, 1, |_, a, b| if a == b { 1.0 } else { 3.0 }, 0.0, &mut [vec![1.0; 2]]));
    }
}
