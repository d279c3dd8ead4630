//! Lag-limited cross-correlations of long signals, by block FFT.
//!
//! BSS Eval only needs lags |k| < L (L = 512 filter taps) of each correlation, so instead of
//! museval's whole-track FFT (2^21 points for 30 s, one inverse FFT per pair) the plain signal is
//! cut into blocks of B samples, the lagged signal into blocks of B + 2L − 2 samples around them,
//! and the cross-spectra of all blocks are summed before a single short inverse FFT per pair.
//! Every block FFT stays in cache and the result is the same linear correlation up to rounding.

use std::sync::Arc;
use std::thread;

use realfft::num_complex::Complex;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};

/// Computes `r[k] = Σ_n x[n + k] · y[n]` for `k = −(L−1) ..= L−1`, with the signals taken as zero
/// outside `0..n` (a linear, not circular, correlation).
pub(crate) struct LagCorrelator {
    lags: usize,
    n_fft: usize,
    block: usize,
    fwd: Arc<dyn RealToComplex<f64>>,
    inv: Arc<dyn ComplexToReal<f64>>,
}

impl LagCorrelator {
    /// Plans the block FFTs for filters of `filter_len ≥ 1` taps.
    pub(crate) fn new(filter_len: usize) -> Self {
        let halo = 2 * filter_len.max(1) - 2;
        // Blocks 8× the halo keep its overhead near 12 % while each FFT still fits in L2.
        let n_fft = (8 * halo).max(1024).next_power_of_two();
        let mut planner = RealFftPlanner::<f64>::new();
        LagCorrelator {
            lags: filter_len.max(1),
            n_fft,
            block: n_fft - halo,
            fwd: planner.plan_fft_forward(n_fft),
            inv: planner.plan_fft_inverse(n_fft),
        }
    }

    /// For each `(xi, yi)` in `pairs`, the correlation of `lagged[xi]` against `plain[yi]`;
    /// entry `k + L − 1` of each output holds lag `k`. All signals must have length `n`.
    pub(crate) fn correlate(
        &self,
        lagged: &[&[f64]],
        plain: &[&[f64]],
        pairs: &[(usize, usize)],
        n: usize,
        threads: usize,
    ) -> Vec<Vec<f64>> {
        let bins = self.n_fft / 2 + 1;
        let n_blocks = n.div_ceil(self.block);
        let parts = threads.clamp(1, n_blocks.max(1));
        let per = n_blocks.div_ceil(parts.max(1)).max(1);
        let spectra: Vec<Vec<Vec<Complex<f64>>>> = if parts <= 1 {
            vec![self.accumulate(lagged, plain, pairs, n, 0..n_blocks)]
        } else {
            thread::scope(|s| {
                let handles: Vec<_> = (0..parts)
                    .map(|t| {
                        let range = (t * per).min(n_blocks)..((t + 1) * per).min(n_blocks);
                        s.spawn(move || self.accumulate(lagged, plain, pairs, n, range))
                    })
                    .collect();
                // A worker only panics on a bug in this module, never on user data.
                handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
            })
        };
        let mut total = vec![vec![Complex::new(0.0, 0.0); bins]; pairs.len()];
        for part in &spectra {
            for (t, p) in total.iter_mut().zip(part) {
                for (a, b) in t.iter_mut().zip(p) {
                    *a += b;
                }
            }
        }
        let mut time = self.inv.make_output_vec();
        let mut scratch = self.inv.make_scratch_vec();
        let norm = 1.0 / self.n_fft as f64;
        total
            .into_iter()
            .map(|mut spec| {
                // X·conj(Y) of real signals is real at DC and Nyquist; clear rounding-free -0.0
                // imaginary parts so the inverse transform accepts the spectrum.
                spec[0].im = 0.0;
                spec[bins - 1].im = 0.0;
                // Sizes match by construction and the edge bins are real, so this cannot fail.
                let _ = self.inv.process_with_scratch(&mut spec, &mut time, &mut scratch);
                time[..2 * self.lags - 1].iter().map(|v| v * norm).collect()
            })
            .collect()
    }

    /// Sums the block cross-spectra of blocks `range` for every pair.
    fn accumulate(
        &self,
        lagged: &[&[f64]],
        plain: &[&[f64]],
        pairs: &[(usize, usize)],
        n: usize,
        range: std::ops::Range<usize>,
    ) -> Vec<Vec<Complex<f64>>> {
        let bins = self.n_fft / 2 + 1;
        let halo = self.lags - 1;
        let mut acc = vec![vec![Complex::new(0.0, 0.0); bins]; pairs.len()];
        let used_x: Vec<bool> = (0..lagged.len()).map(|i| pairs.iter().any(|p| p.0 == i)).collect();
        let used_y: Vec<bool> = (0..plain.len()).map(|i| pairs.iter().any(|p| p.1 == i)).collect();
        let mut xs = vec![vec![Complex::new(0.0, 0.0); bins]; lagged.len()];
        let mut ys = vec![vec![Complex::new(0.0, 0.0); bins]; plain.len()];
        let mut buf = self.fwd.make_input_vec();
        let mut scratch = self.fwd.make_scratch_vec();
        for b in range {
            let start = b * self.block;
            for (i, x) in lagged.iter().enumerate() {
                if !used_x[i] {
                    continue;
                }
                // Lagged block covers [start − (L−1), start + B + L − 1), zero outside the track.
                buf.fill(0.0);
                let lo = start.saturating_sub(halo);
                let hi = (start + self.block + halo).min(n);
                let off = lo + halo - start;
                buf[off..off + (hi - lo)].copy_from_slice(&x[lo..hi]);
                let _ = self.fwd.process_with_scratch(&mut buf, &mut xs[i], &mut scratch);
            }
            for (i, y) in plain.iter().enumerate() {
                if !used_y[i] {
                    continue;
                }
                buf.fill(0.0);
                let hi = (start + self.block).min(n);
                buf[..hi - start].copy_from_slice(&y[start..hi]);
                let _ = self.fwd.process_with_scratch(&mut buf, &mut ys[i], &mut scratch);
            }
            for (a, &(xi, yi)) in acc.iter_mut().zip(pairs) {
                for ((s, x), y) in a.iter_mut().zip(&xs[xi]).zip(&ys[yi]) {
                    *s += x * y.conj();
                }
            }
        }
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Absolute error allowed against a direct O(n·L) sum of O(1) samples.
    const CORR_TOL: f64 = 1e-9;

    #[test]
    fn matches_direct_correlation() {
        let l = 37;
        let n = 5000;
        let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 1009) as f64 / 1009.0 - 0.5).collect();
        let y: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.013).sin()).collect();
        let corr = LagCorrelator::new(l);
        for threads in [1, 3] {
            let out = corr.correlate(&[&x, &y], &[&y], &[(0, 0), (1, 0)], n, threads);
            for (o, sig) in out.iter().zip([&x, &y]) {
                for k in -(l as isize - 1)..l as isize {
                    let direct: f64 = (0..n as isize)
                        .filter(|&m| m + k >= 0 && m + k < n as isize)
                        .map(|m| sig[(m + k) as usize] * y[m as usize])
                        .sum();
                    let got = o[(k + l as isize - 1) as usize];
                    assert!((got - direct).abs() < CORR_TOL, "lag {k}: {got} vs {direct}");
                }
            }
        }
    }
}
