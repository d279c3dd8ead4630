//! Dense symmetric positive-definite solver for the BSS Eval Gram system.
//!
//! museval solves `(G + eps·I) C = D` with `numpy.linalg.solve` (LU with partial pivoting). `G` is
//! a Gram matrix, so a Cholesky factorisation gives the same solution up to rounding at half the
//! cost; when the factorisation breaks down (a rank-deficient `G`, e.g. a reference whose two
//! channels are bit-identical) we fall back to LU with partial pivoting, as numpy would compute it.
//!
//! The Cholesky is blocked and right-looking: the O(n³) trailing update is a packed 8×8 register
//! tile kernel, compiled for AVX-512 / AVX2+FMA and chosen at run time, split across threads by
//! rows; the LU fallback is blocked the same way. Matrices are row-major, `a[i * n + j]`, and only the lower triangle is read.

use std::thread;

/// Columns per panel: 64 measured faster than 128 or 256 for the 2048² BSS Eval system (the
/// packed panel stays in L2).
const NB: usize = 64;
/// Rows and columns per register tile of the trailing update.
const TILE: usize = 8;

/// Dot product with eight independent partial sums: strict IEEE order would stop LLVM from
/// vectorising a single-accumulator loop.
#[inline(always)]
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
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

/// `out[r][c] = Σ_k pa[k*TILE + r] · pb[k*TILE + c]` over `kb` steps of two packed row groups.
#[inline(always)]
fn tile_kernel<const FMA: bool>(pa: &[f64], pb: &[f64], kb: usize) -> [[f64; TILE]; TILE] {
    let mut acc = [[0.0f64; TILE]; TILE];
    let pa = &pa[..kb * TILE];
    let pb = &pb[..kb * TILE];
    for (ka, kbv) in pa.chunks_exact(TILE).zip(pb.chunks_exact(TILE)) {
        for r in 0..TILE {
            let x = ka[r];
            for c in 0..TILE {
                acc[r][c] = if FMA { x.mul_add(kbv[c], acc[r][c]) } else { acc[r][c] + x * kbv[c] };
            }
        }
    }
    acc
}

#[derive(Clone, Copy)]
enum Isa {
    Generic,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn detect_isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma") {
            return Isa::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Generic
}

/// Splits `0..groups` into at most `parts` contiguous ranges of roughly equal total `weight`.
fn split_weighted(groups: usize, parts: usize, weight: impl Fn(usize) -> usize) -> Vec<(usize, usize)> {
    let total: usize = (0..groups).map(&weight).sum();
    let parts = parts.clamp(1, groups.max(1));
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    let mut acc = 0;
    for g in 0..groups {
        acc += weight(g);
        if acc * parts >= total * (out.len() + 1) && out.len() + 1 < parts {
            out.push((start, g + 1));
            start = g + 1;
        }
    }
    if start < groups {
        out.push((start, groups));
    }
    out
}

/// A rank-`kb` update `C -= A Bᵀ` of a trailing block, both factors packed as groups of TILE
/// rows, k-major (`pack[g][k * TILE + r]`), zero-padded to whole groups.
struct Update<'a> {
    /// Row stride of the matrix.
    n: usize,
    /// First column of the updated block.
    col0: usize,
    rows: usize,
    cols: usize,
    pack_a: &'a [f64],
    pack_b: &'a [f64],
    kb: usize,
    /// Only tiles on or below the diagonal (a symmetric update).
    lower: bool,
}

impl Update<'_> {
    /// Updates row groups `g0..g1` of the block; `rows` starts at the first row of group `g0`.
    #[inline(always)]
    fn apply<const FMA: bool>(&self, rows: &mut [f64], g0: usize, g1: usize) {
        let stride = self.kb * TILE;
        let col_groups = self.cols.div_ceil(TILE);
        for gi in g0..g1 {
            let pa = &self.pack_a[gi * stride..(gi + 1) * stride];
            let rmax = (self.rows - gi * TILE).min(TILE);
            let gj_end = if self.lower { gi + 1 } else { col_groups };
            for gj in 0..gj_end {
                let pb = &self.pack_b[gj * stride..(gj + 1) * stride];
                let acc = tile_kernel::<FMA>(pa, pb, self.kb);
                let cmax = (self.cols - gj * TILE).min(TILE);
                for (r, acc_r) in acc.iter().enumerate().take(rmax) {
                    let off = ((gi - g0) * TILE + r) * self.n + self.col0 + gj * TILE;
                    for (v, a) in rows[off..off + cmax].iter_mut().zip(acc_r) {
                        *v -= a;
                    }
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,fma")]
    fn apply_avx512(&self, rows: &mut [f64], g0: usize, g1: usize) {
        self.apply::<true>(rows, g0, g1)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn apply_avx2(&self, rows: &mut [f64], g0: usize, g1: usize) {
        self.apply::<true>(rows, g0, g1)
    }

    fn dispatch(&self, isa: Isa, rows: &mut [f64], g0: usize, g1: usize) {
        match isa {
            Isa::Generic => self.apply::<false>(rows, g0, g1),
            // SAFETY: these variants are only produced by `detect_isa` after the CPU reported
            // the features the functions are compiled for.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { self.apply_avx2(rows, g0, g1) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { self.apply_avx512(rows, g0, g1) },
        }
    }

    /// Runs the update on `block` (the matrix rows of the updated block) on up to `threads`
    /// threads, each owning a contiguous band of row groups of about equal work.
    fn run(&self, isa: Isa, block: &mut [f64], threads: usize) {
        let groups = self.rows.div_ceil(TILE);
        let col_groups = self.cols.div_ceil(TILE);
        // Below ~4 Mflop a thread costs more than it saves.
        let big = self.rows * self.cols * self.kb > 1 << 22;
        let weight = |g: usize| if self.lower { g + 3 } else { col_groups };
        let parts = split_weighted(groups, if big { threads } else { 1 }, weight);
        if parts.len() <= 1 {
            self.dispatch(isa, block, 0, groups);
            return;
        }
        thread::scope(|s| {
            let mut rest: &mut [f64] = block;
            for &(g0, g1) in &parts {
                let band = ((g1 * TILE).min(self.rows) - g0 * TILE) * self.n;
                let (mine, tail) = rest.split_at_mut(band.min(rest.len()));
                rest = tail;
                s.spawn(move || self.dispatch(isa, mine, g0, g1));
            }
        });
    }
}

/// Packs rows `r0..r0 + rows`, columns `c0..c0 + kb` as TILE-row groups, k-major.
fn pack_rows(a: &[f64], n: usize, r0: usize, rows: usize, c0: usize, kb: usize, out: &mut Vec<f64>) {
    let stride = kb * TILE;
    out.clear();
    out.resize(rows.div_ceil(TILE) * stride, 0.0);
    for i in 0..rows {
        let (g, r) = (i / TILE, i % TILE);
        let src = &a[(r0 + i) * n + c0..(r0 + i) * n + c0 + kb];
        let dst = &mut out[g * stride..(g + 1) * stride];
        for (k, v) in src.iter().enumerate() {
            dst[k * TILE + r] = *v;
        }
    }
}

/// Packs the transpose of rows `r0..r0 + kb`, columns `c0..c0 + cols` as TILE-column groups,
/// k-major, so that it can serve as the `B` of an [`Update`].
fn pack_cols(a: &[f64], n: usize, r0: usize, kb: usize, c0: usize, cols: usize, out: &mut Vec<f64>) {
    let stride = kb * TILE;
    out.clear();
    out.resize(cols.div_ceil(TILE) * stride, 0.0);
    for k in 0..kb {
        let src = &a[(r0 + k) * n + c0..(r0 + k) * n + c0 + cols];
        for (j, v) in src.iter().enumerate() {
            out[(j / TILE) * stride + k * TILE + j % TILE] = *v;
        }
    }
}

/// Solves the rows of `rows` (each of length `n`, panel columns `k0..k0+kb`) against the
/// already factored diagonal block `diag` (rows `k0..k0+kb` of the matrix): `x L11ᵀ = a`.
#[inline(always)]
fn panel_solve_impl(rows: &mut [f64], diag: &[f64], n: usize, k0: usize, kb: usize) {
    for row in rows.chunks_exact_mut(n) {
        for j in 0..kb {
            let lj = &diag[j * n + k0..j * n + k0 + j];
            let s = row[k0 + j] - dot(&row[k0..k0 + j], lj);
            row[k0 + j] = s / diag[j * n + k0 + j];
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
fn panel_solve_avx512(rows: &mut [f64], diag: &[f64], n: usize, k0: usize, kb: usize) {
    panel_solve_impl(rows, diag, n, k0, kb)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn panel_solve_avx2(rows: &mut [f64], diag: &[f64], n: usize, k0: usize, kb: usize) {
    panel_solve_impl(rows, diag, n, k0, kb)
}

/// The panel solve is ~10 % of the flops, too many to leave at SSE2 width.
fn panel_solve(isa: Isa, rows: &mut [f64], diag: &[f64], n: usize, k0: usize, kb: usize) {
    match isa {
        Isa::Generic => panel_solve_impl(rows, diag, n, k0, kb),
        // SAFETY: these variants are only produced by `detect_isa` after the CPU reported the
        // features the functions are compiled for.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { panel_solve_avx2(rows, diag, n, k0, kb) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { panel_solve_avx512(rows, diag, n, k0, kb) },
    }
}

/// In-place Cholesky factorisation `A = L Lᵀ` of the `n × n` row-major matrix `a` (lower
/// triangle read and overwritten with `L`). Returns `false` if a pivot is not positive and
/// finite, i.e. `A` is not numerically positive definite; `a` is then garbage.
pub(crate) fn cholesky_in_place(a: &mut [f64], n: usize, threads: usize) -> bool {
    if a.len() < n * n {
        return false;
    }
    let isa = detect_isa();
    let threads = threads.max(1);
    let mut pack: Vec<f64> = Vec::new();
    let mut rowbuf = vec![0.0f64; NB];
    let mut k0 = 0;
    while k0 < n {
        let kb = NB.min(n - k0);
        // Diagonal block, unblocked: earlier panels' contributions were already subtracted.
        for j in k0..k0 + kb {
            let off = j * n;
            let d = a[off + j] - dot(&a[off + k0..off + j], &a[off + k0..off + j]);
            if !(d > 0.0 && d.is_finite()) {
                return false;
            }
            let ljj = d.sqrt();
            a[off + j] = ljj;
            let w = j - k0;
            rowbuf[..w].copy_from_slice(&a[off + k0..off + j]);
            for i in j + 1..k0 + kb {
                let oi = i * n;
                let s = a[oi + j] - dot(&a[oi + k0..oi + j], &rowbuf[..w]);
                a[oi + j] = s / ljj;
            }
        }
        let t0 = k0 + kb;
        let m = n - t0;
        if m == 0 {
            break;
        }
        let (top, bottom) = a.split_at_mut(t0 * n);
        let diag = &top[k0 * n..];
        // Panel below the diagonal block, rows independent.
        let row_parts = threads.min(m.div_ceil(64)).max(1);
        if row_parts == 1 {
            panel_solve(isa, bottom, diag, n, k0, kb);
        } else {
            let per = m.div_ceil(row_parts);
            thread::scope(|s| {
                for chunk in bottom.chunks_mut(per * n) {
                    s.spawn(move || panel_solve(isa, chunk, diag, n, k0, kb));
                }
            });
        }
        // Trailing update A22 -= L21 L21ᵀ (lower triangle, whole tiles on the diagonal).
        pack_rows(bottom, n, 0, m, k0, kb, &mut pack);
        let upd = Update { n, col0: t0, rows: m, cols: m, pack_a: &pack, pack_b: &pack, kb, lower: true };
        upd.run(isa, bottom, threads);
        k0 = t0;
    }
    true
}

/// Solves `L Lᵀ x = b` in place for a factor from [`cholesky_in_place`].
pub(crate) fn cholesky_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s = b[i] - dot(&l[i * n..i * n + i], &b[..i]);
        b[i] = s / l[i * n + i];
    }
    // Lᵀ x = y column by column, so every access to L walks a contiguous row.
    for i in (0..n).rev() {
        let xi = b[i] / l[i * n + i];
        b[i] = xi;
        for (bk, lk) in b[..i].iter_mut().zip(&l[i * n..i * n + i]) {
            *bk -= xi * lk;
        }
    }
}

/// LU factorisation with partial pivoting of the row-major `n × n` matrix `a` (full matrix
/// read), the fallback for systems Cholesky rejects. Blocked like LAPACK's `getrf`: an unblocked
/// panel factorisation, then a packed update of the trailing matrix. Returns the row
/// permutation (`perm[i]` is the original row now at `i`), or `None` when an exact zero pivot
/// makes the matrix singular (numpy raises `LinAlgError` there).
pub(crate) fn lu_in_place(a: &mut [f64], n: usize, threads: usize) -> Option<Vec<usize>> {
    if a.len() < n * n {
        return None;
    }
    let isa = detect_isa();
    let mut perm: Vec<usize> = (0..n).collect();
    let (mut pack_a, mut pack_b) = (Vec::new(), Vec::new());
    let mut k0 = 0;
    while k0 < n {
        let kb = NB.min(n - k0);
        let t0 = k0 + kb;
        for k in k0..t0 {
            let mut p = k;
            let mut best = a[k * n + k].abs();
            for i in k + 1..n {
                let v = a[i * n + k].abs();
                if v > best {
                    best = v;
                    p = i;
                }
            }
            if best == 0.0 || !best.is_finite() {
                return None;
            }
            if p != k {
                // Whole rows: the already computed multipliers move with their row, as LAPACK's
                // row interchanges do.
                let (lo, hi) = a.split_at_mut(p * n);
                lo[k * n..k * n + n].swap_with_slice(&mut hi[..n]);
                perm.swap(k, p);
            }
            let (top, below) = a.split_at_mut((k + 1) * n);
            let rowk = &top[k * n..k * n + n];
            let pivot = rowk[k];
            for row in below.chunks_exact_mut(n) {
                let f = row[k] / pivot;
                row[k] = f;
                if f != 0.0 {
                    for (x, y) in row[k + 1..t0].iter_mut().zip(&rowk[k + 1..t0]) {
                        *x -= f * y;
                    }
                }
            }
        }
        if t0 == n {
            break;
        }
        // U12 = L11⁻¹ A12 (unit lower triangular L11), row by row.
        for k in k0..t0 {
            let (top, below) = a.split_at_mut((k + 1) * n);
            let rowk = &top[k * n + t0..k * n + n];
            for i in k + 1..t0 {
                let off = (i - k - 1) * n;
                let f = below[off + k];
                if f != 0.0 {
                    for (x, y) in below[off + t0..off + n].iter_mut().zip(rowk) {
                        *x -= f * y;
                    }
                }
            }
        }
        // A22 -= L21 U12.
        let m = n - t0;
        pack_rows(a, n, t0, m, k0, kb, &mut pack_a);
        pack_cols(a, n, k0, kb, t0, m, &mut pack_b);
        let upd = Update { n, col0: t0, rows: m, cols: m, pack_a: &pack_a, pack_b: &pack_b, kb, lower: false };
        upd.run(isa, &mut a[t0 * n..], threads);
        k0 = t0;
    }
    Some(perm)
}

/// Solves `A x = b` from the output of [`lu_in_place`]; `b` is overwritten with `x`.
pub(crate) fn lu_solve(lu: &[f64], n: usize, perm: &[usize], b: &mut [f64]) {
    let pb: Vec<f64> = perm.iter().map(|&p| b[p]).collect();
    b.copy_from_slice(&pb);
    for i in 0..n {
        let s = b[i] - dot(&lu[i * n..i * n + i], &b[..i]);
        b[i] = s;
    }
    for i in (0..n).rev() {
        let s = b[i] - dot(&lu[i * n + i + 1..i * n + n], &b[i + 1..n]);
        b[i] = s / lu[i * n + i];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Relative residual allowed for a well-conditioned random SPD system in f64.
    const SOLVE_TOL: f64 = 1e-10;

    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        let mut rnd = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        let b: Vec<f64> = (0..n * n).map(|_| rnd()).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>();
            }
            a[i * n + i] += n as f64 * 0.1;
        }
        a
    }

    fn residual(a: &[f64], n: usize, x: &[f64], b: &[f64]) -> f64 {
        let mut num = 0.0f64;
        for i in 0..n {
            let r: f64 = (0..n).map(|j| a[i * n + j] * x[j]).sum::<f64>() - b[i];
            num = num.max(r.abs());
        }
        num / b.iter().fold(0.0f64, |m, v| m.max(v.abs()))
    }

    #[test]
    fn cholesky_and_lu_solve_spd_systems() {
        // Sizes straddle the panel width and the tile size so partial groups are exercised.
        for (n, threads) in [(1, 1), (7, 1), (130, 1), (301, 3), (300, 2)] {
            let a = spd(n, 0x9e3779b97f4a7c15 ^ n as u64);
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37 + 1.0).sin()).collect();
            let mut l = a.clone();
            assert!(cholesky_in_place(&mut l, n, threads));
            let mut x = b.clone();
            cholesky_solve(&l, n, &mut x);
            assert!(residual(&a, n, &x, &b) < SOLVE_TOL, "cholesky n={n}");
            let mut lu = a.clone();
            let perm = lu_in_place(&mut lu, n, threads).expect("SPD matrix is not singular");
            let mut y = b.clone();
            lu_solve(&lu, n, &perm, &mut y);
            assert!(residual(&a, n, &y, &b) < SOLVE_TOL, "lu n={n}");
        }
    }

    #[test]
    fn lu_solves_general_systems_that_need_pivoting() {
        for (n, threads) in [(5, 1), (200, 1), (300, 2)] {
            let mut s = 0x2545f4914f6cdd1d_u64 ^ n as u64;
            let mut a: Vec<f64> = (0..n * n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
                })
                .collect();
            // A zero leading pivot forces a row interchange in the first panel.
            a[0] = 0.0;
            let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.61 + 0.3).cos()).collect();
            let mut lu = a.clone();
            let perm = lu_in_place(&mut lu, n, threads).expect("random matrix is not singular");
            let mut x = b.clone();
            lu_solve(&lu, n, &perm, &mut x);
            // Random matrices are less well conditioned than the SPD ones above.
            assert!(residual(&a, n, &x, &b) < 1e3 * SOLVE_TOL, "lu n={n}");
        }
        assert!(lu_in_place(&mut [0.0, 0.0, 0.0, 0.0], 2, 1).is_none());
    }

    #[test]
    fn cholesky_rejects_indefinite_matrix() {
        let mut a = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky_in_place(&mut a, 2, 1));
    }

    #[test]
    fn weighted_split_covers_all_groups() {
        for groups in [1, 5, 100, 255] {
            for parts in 1..6 {
                let s = split_weighted(groups, parts, |g| g + 3);
                assert_eq!(s.first().map(|r| r.0), Some(0));
                assert_eq!(s.last().map(|r| r.1), Some(groups));
                assert!(s.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
                assert!(s.len() <= parts);
            }
        }
    }
}
