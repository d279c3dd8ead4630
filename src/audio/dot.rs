//! Dot products for the polyphase resampler ([`crate::audio::resample`]): its whole cost.
//!
//! Each output is one dot product of a filter phase with a window of input history. One dot
//! product alone is bound by the latency of its multiply-add chain, so the kernels compute several
//! outputs side by side, and when outputs share a phase or a window ([`grid`]) they load it once.
//! Every output is summed in exactly the same order whichever kernel computes it (eight lane sums
//! over taps `l, l + 8, ...`, then one fixed reduction), so grouping, and therefore chunking,
//! never changes a result. Where the CPU has AVX2 and FMA (checked once per process) the lanes use
//! fused multiply-adds; every resampler in the process then uses the same kernels, so offline and
//! live output stay identical.

/// Taps are padded to a multiple of this (the extra taps are zero).
pub const LANES: usize = 8;

/// `out[s][p] = Σ_i c[p][i] · x[s][i]`: `P` filter phases against `S` input windows.
/// All slices have the same length, a multiple of [`LANES`].
#[inline]
pub fn grid<const P: usize, const S: usize>(c: [&[f32]; P], x: [&[f32]; S]) -> [[f32; P]; S] {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked by `has_fma`).
        return unsafe { fma::grid(c, x) };
    }
    grid_body(c, x)
}

/// `out[n] = Σ_i c[n][i] · x[n][i]`: `N` unrelated dot products. Same length rules as [`grid`].
#[inline]
pub fn pairs<const N: usize>(c: [&[f32]; N], x: [&[f32]; N]) -> [f32; N] {
    #[cfg(target_arch = "x86_64")]
    if has_fma() {
        // SAFETY: as in `grid`.
        return unsafe { fma::pairs(c, x) };
    }
    pairs_body(c, x)
}

#[cfg(target_arch = "x86_64")]
fn has_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

#[cfg(target_arch = "x86_64")]
mod fma {
    //! The same kernels on 8-lane AVX registers with fused multiply-adds (written with intrinsics:
    //! the auto-vectorised portable body only reaches 4-lane registers).
    use std::arch::x86_64::{__m256, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps, _mm256_storeu_ps};

    use super::{LANES, reduce};

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
        assert!(len % LANES == 0 && c.iter().chain(&x).all(|s| s.len() == len));
        let mut acc = [[_mm256_setzero_ps(); P]; S];
        let mut cs = [_mm256_setzero_ps(); P];
        // Plain loops, no closures: a closure would not inherit this function's target features
        // and would stay an out-of-line call per load.
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
        assert!(len % LANES == 0 && c.iter().chain(&x).all(|s| s.len() == len));
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
    assert!(len % LANES == 0 && c.iter().chain(&x).all(|s| s.len() == len));
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
    assert!(len % LANES == 0 && c.iter().chain(&x).all(|s| s.len() == len));
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
        (0..len).map(|i| ((i as u32 * 2654435761 ^ seed) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    /// Grouped kernels give bit-identical results to one dot product at a time, and match a
    /// double-precision sum closely.
    #[test]
    fn groups_equal_single_products() {
        let len = 64;
        let (c0, c1) = (data(len, 1), data(len, 2));
        let xs: Vec<Vec<f32>> = (0..4).map(|s| data(len, 10 + s)).collect();
        let one = |c: &[f32], x: &[f32]| pairs([c], [x])[0];
        let g = grid([&c0[..]], [&xs[0][..], &xs[1][..], &xs[2][..], &xs[3][..]]);
        for s in 0..4 {
            assert_eq!(g[s][0].to_bits(), one(&c0, &xs[s]).to_bits());
        }
        let g = grid([&c0[..], &c1[..]], [&xs[0][..], &xs[1][..]]);
        for s in 0..2 {
            assert_eq!(g[s][0].to_bits(), one(&c0, &xs[s]).to_bits());
            assert_eq!(g[s][1].to_bits(), one(&c1, &xs[s]).to_bits());
        }
        let p = pairs([&c0[..], &c1[..], &c0[..], &c1[..]], [&xs[0][..], &xs[1][..], &xs[2][..], &xs[3][..]]);
        for n in 0..4 {
            let c = if n % 2 == 0 { &c0 } else { &c1 };
            assert_eq!(p[n].to_bits(), one(c, &xs[n]).to_bits());
            let exact: f64 = c.iter().zip(&xs[n]).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!((p[n] as f64 - exact).abs() < 1e-4, "{} vs {exact}", p[n]);
        }
    }
}
