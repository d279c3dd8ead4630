//! Dot products for the polyphase resampler ([`crate::dsp::resample`]): its whole cost.
//!
//! Each output is one dot product of a filter phase with a window of input history. One dot
//! product alone is bound by the latency of its multiply-add chain, so the kernels compute several
//! outputs side by side, and when outputs share a phase or a window they load it once ([`polyphase`]).
//! Every output is summed in exactly the same order whichever kernel computes it (eight lane sums
//! over taps `l, l + 8, ...`, then one fixed reduction), so grouping, and therefore chunking,
//! never changes a result. Where the CPU has AVX2 and FMA (checked once per process) the lanes use
//! fused multiply-adds; every resampler in the process then uses the same kernels, so offline and
//! live output stay identical.

/// Taps are padded to a multiple of this (the extra taps are zero).
pub const LANES: usize = 8;

/// Outputs computed side by side.
const GROUP: usize = 4;

/// Where one output reads: its input window starts at `start` in the history, and its filter
/// phase at `phase` in the coefficient table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tap {
    pub start: usize,
    pub phase: usize,
}

/// `out[o] = coefs[t.phase..][..taps] · hist[t.start..][..taps]` for each `t = taps_at[o]`: a run
/// of polyphase outputs in one call, so the whole loop runs on the CPU's best kernel. Groups of
/// four outputs that share one phase (decimation) or pair two phases on two windows
/// (interpolation by two) load each shared slice once.
pub fn polyphase(coefs: &[f32], taps: usize, hist: &[f32], taps_at: &[Tap], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if crate::dsp::simd::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked by `has_avx2_fma`).
        unsafe { fma::polyphase(coefs, taps, hist, taps_at, out) };
        return;
    }
    polyphase_body(coefs, taps, hist, taps_at, out, grid_body, grid_body, pairs_body, pairs_body);
}

/// The loop of [`polyphase`], with its kernels passed in (closures defined in a
/// `#[target_feature]` function inherit its features, and this body is inlined into it).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn polyphase_body(
    coefs: &[f32],
    taps: usize,
    hist: &[f32],
    taps_at: &[Tap],
    out: &mut [f32],
    grid14: impl Fn([&[f32]; 1], [&[f32]; GROUP]) -> [[f32; 1]; GROUP],
    grid22: impl Fn([&[f32]; 2], [&[f32]; 2]) -> [[f32; 2]; 2],
    pairs4: impl Fn([&[f32]; GROUP], [&[f32]; GROUP]) -> [f32; GROUP],
    pairs1: impl Fn([&[f32]; 1], [&[f32]; 1]) -> [f32; 1],
) {
    let coef = |t: Tap| &coefs[t.phase..t.phase + taps];
    let win = |t: Tap| &hist[t.start..t.start + taps];
    let n = taps_at.len().min(out.len());
    let (groups, rest) = (taps_at[..n].chunks_exact(GROUP), &taps_at[n - n % GROUP..n]);
    for (g, dst) in groups.zip(out.chunks_exact_mut(GROUP)) {
        let g: [Tap; GROUP] = g.try_into().unwrap();
        if g.iter().all(|t| t.phase == g[0].phase) {
            let v = grid14([coef(g[0])], g.map(win));
            dst.copy_from_slice(&v.map(|[v]| v));
        } else if g[0].phase == g[2].phase
            && g[1].phase == g[3].phase
            && g[0].start == g[1].start
            && g[2].start == g[3].start
        {
            let v = grid22([coef(g[0]), coef(g[1])], [win(g[0]), win(g[2])]);
            dst.copy_from_slice(&[v[0][0], v[0][1], v[1][0], v[1][1]]);
        } else {
            dst.copy_from_slice(&pairs4(g.map(coef), g.map(win)));
        }
    }
    for (t, o) in rest.iter().zip(&mut out[n - n % GROUP..n]) {
        *o = pairs1([coef(*t)], [win(*t)])[0];
    }
}

#[cfg(target_arch = "x86_64")]
mod fma {
    //! The same kernels on 8-lane AVX registers with fused multiply-adds (written with intrinsics:
    //! the auto-vectorised portable body only reaches 4-lane registers).
    use std::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps};

    use super::{GROUP, LANES, Tap, reduce};

    /// [`super::polyphase`] on AVX2 + FMA.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn polyphase(coefs: &[f32], taps: usize, hist: &[f32], taps_at: &[Tap], out: &mut [f32]) {
        // SAFETY (all four closures): this function only runs where AVX2 and FMA exist.
        super::polyphase_body(
            coefs,
            taps,
            hist,
            taps_at,
            out,
            |c, x| unsafe { grid::<1, GROUP>(c, x) },
            |c, x| unsafe { grid::<2, 2>(c, x) },
            |c, x| unsafe { pairs::<GROUP>(c, x) },
            |c, x| unsafe { pairs::<1>(c, x) },
        );
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; the caller has checked the slice lengths.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(s: &[f32], i: usize) -> __m256 {
        debug_assert!(i + LANES <= s.len());
        // SAFETY: `i + LANES <= s.len()` (the kernels' length assertion).
        unsafe { _mm256_loadu_ps(s.as_ptr().add(i)) }
    }

    #[target_feature(enable = "avx2,fma")]
    fn lane_sum(v: __m256) -> f32 {
        let mut s = [0.0f32; LANES];
        // SAFETY: `s` holds LANES floats.
        unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) };
        reduce(&s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn grid<const P: usize, const S: usize>(c: [&[f32]; P], x: [&[f32]; S]) -> [[f32; P]; S] {
        let len = c[0].len();
        assert!(len.is_multiple_of(LANES) && c.iter().chain(&x).all(|s| s.len() == len));
        let mut acc = [[_mm256_setzero_ps(); P]; S];
        let mut cs = [_mm256_setzero_ps(); P];
        for i in (0..len).step_by(LANES) {
            for p in 0..P {
                // SAFETY: i + LANES <= len for every slice (asserted above).
                cs[p] = unsafe { load(c[p], i) };
            }
            for s in 0..S {
                // SAFETY: as above.
                let xs = unsafe { load(x[s], i) };
                for p in 0..P {
                    acc[s][p] = _mm256_fmadd_ps(cs[p], xs, acc[s][p]);
                }
            }
        }
        let mut out = [[0.0f32; P]; S];
        for s in 0..S {
            for p in 0..P {
                out[s][p] = lane_sum(acc[s][p]);
            }
        }
        out
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn pairs<const N: usize>(c: [&[f32]; N], x: [&[f32]; N]) -> [f32; N] {
        let len = c[0].len();
        assert!(len.is_multiple_of(LANES) && c.iter().chain(&x).all(|s| s.len() == len));
        let mut acc = [_mm256_setzero_ps(); N];
        for i in (0..len).step_by(LANES) {
            for n in 0..N {
                // SAFETY: i + LANES <= len for every slice (asserted above).
                let (a, b) = unsafe { (load(c[n], i), load(x[n], i)) };
                acc[n] = _mm256_fmadd_ps(a, b, acc[n]);
            }
        }
        let mut out = [0.0f32; N];
        for n in 0..N {
            out[n] = lane_sum(acc[n]);
        }
        out
    }
}

/// One lane step of the portable kernels: `acc + a · b`.
#[inline(always)]
fn step(acc: &mut [f32; LANES], a: &[f32; LANES], b: &[f32; LANES]) {
    for l in 0..LANES {
        acc[l] += a[l] * b[l];
    }
}

#[inline(always)]
fn reduce(s: &[f32; LANES]) -> f32 {
    ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]))
}

#[inline(always)]
fn lanes(s: &[f32], i: usize) -> &[f32; LANES] {
    s[i..i + LANES].try_into().unwrap()
}

#[inline(always)]
fn grid_body<const P: usize, const S: usize>(c: [&[f32]; P], x: [&[f32]; S]) -> [[f32; P]; S] {
    let len = c[0].len();
    assert!(len.is_multiple_of(LANES) && c.iter().chain(&x).all(|s| s.len() == len));
    let mut acc = [[[0.0f32; LANES]; P]; S];
    for i in (0..len).step_by(LANES) {
        let cs = c.map(|c| lanes(c, i));
        for s in 0..S {
            let xs = lanes(x[s], i);
            for p in 0..P {
                step(&mut acc[s][p], cs[p], xs);
            }
        }
    }
    acc.map(|row| row.map(|a| reduce(&a)))
}

#[inline(always)]
fn pairs_body<const N: usize>(c: [&[f32]; N], x: [&[f32]; N]) -> [f32; N] {
    let len = c[0].len();
    assert!(len.is_multiple_of(LANES) && c.iter().chain(&x).all(|s| s.len() == len));
    let mut acc = [[0.0f32; LANES]; N];
    for i in (0..len).step_by(LANES) {
        for n in 0..N {
            step(&mut acc[n], lanes(c[n], i), lanes(x[n], i));
        }
    }
    acc.map(|a| reduce(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) % 1000).map(|v| v as f32 / 500.0 - 1.0).collect()
    }

    /// Every way of grouping (one shared phase, two phases on two windows, unrelated outputs, the
    /// remainder) gives bit-identical results to computing each output alone, close to an exact sum.
    #[test]
    fn grouping_never_changes_a_result() {
        let taps = 64;
        let coefs = data(2 * taps, 1);
        let hist = data(taps + 40, 2);
        let t = |start: usize, phase: usize| Tap { start, phase: phase * taps };
        let runs: [&[Tap]; 4] = [
            &[t(0, 0), t(2, 0), t(4, 0), t(6, 0), t(8, 0)],
            &[t(3, 0), t(3, 1), t(4, 0), t(4, 1), t(5, 0), t(5, 1)],
            &[t(1, 1), t(7, 0), t(2, 0), t(9, 1)],
            &[t(11, 1), t(12, 0), t(13, 1)],
        ];
        for run in runs {
            let mut grouped = vec![0.0f32; run.len()];
            polyphase(&coefs, taps, &hist, run, &mut grouped);
            for (tap, g) in run.iter().zip(&grouped) {
                let mut alone = [0.0f32];
                polyphase(&coefs, taps, &hist, &[*tap], &mut alone);
                assert_eq!(g.to_bits(), alone[0].to_bits(), "{tap:?}");
                let exact: f64 = (0..taps).map(|i| coefs[tap.phase + i] as f64 * hist[tap.start + i] as f64).sum();
                assert!((*g as f64 - exact).abs() < 1e-4, "{tap:?}: {g} vs {exact}");
            }
        }
    }
}
