//! Per-bin vector kernels of the separation loop: the sigmoid that turns the model's logits into
//! probabilities, the magnitude features, the masks' products, and the split and merge of two
//! channels' spectra that share one complex FFT (`super::stft::StftPairAnalyzer`). The first two
//! were a seventh of a whole separation.
//!
//! Each kernel is written once as plain scalar arithmetic (no calls, no branches) that the compiler
//! vectorises, and compiled twice: for the baseline x86-64 CPU (4-lane SSE2) and for AVX2 + FMA
//! (8 lanes), picked once per process where the CPU has them, as the resampler's dot products are
//! (`crate::dsp::resample`'s `dot.rs`). `exp` and `ln` are Cephes' single-precision polynomials (within about an
//! ulp of the standard library's, which are calls that do not vectorise). Both compilations run the
//! same operations in the same order (the compiler forms no fused multiply-adds on its own), so
//! every CPU computes bit-identical results.

use realfft::num_complex::Complex32;

/// True where the CPU has AVX2 and FMA (checked once per process).
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// `values[i] = 1 / (1 + e^(−values[i]))`, with NaN mapped to 0.
pub fn sigmoid_in_place(values: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx2::sigmoid(values) };
    }
    sigmoid_body(values)
}

/// `out[i] = |spectrum[i]| · scale[i]` (`scale` 1 when `None`), through `ln(1 + ·)` when `log`.
pub fn magnitude_features(spectrum: &[Complex32], scale: Option<&[f32]>, log: bool, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx2::magnitude_features(spectrum, scale, log, out) };
    }
    features_dispatch(spectrum, scale, log, out)
}

/// Splits the complex FFT `z` (length `N`) of `a + i·b`, with `a` and `b` real, into their own
/// spectra (bins `0..=N/2`): `A[k] = (Z[k] + Z*[N−k]) / 2`, `B[k] = (Z[k] − Z*[N−k]) / 2i`.
pub fn split_pair_spectrum(z: &[Complex32], a: &mut [Complex32], b: &mut [Complex32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx2::split_pair_spectrum(z, a, b) };
    }
    split_body(z, a, b)
}

/// The inverse of [`split_pair_spectrum`]: the full-circle spectrum `z` of `a + i·b` from the
/// half spectra `A` and `B` (the imaginary parts of their DC and Nyquist bins taken as zero).
pub fn merge_pair_spectrum(a: &[Complex32], b: &[Complex32], z: &mut [Complex32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx2::merge_pair_spectrum(a, b, z) };
    }
    merge_body(a, b, z)
}

/// `out[i] = x[i] · m[i]`: a mask applied to a spectrum.
pub fn scale_spectrum(x: &[Complex32], m: &[f32], out: &mut [Complex32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx2::scale_spectrum(x, m, out) };
    }
    scale_body(x, m, out)
}

/// `out[i] = x[i] · g`: one gain applied to a spectrum.
pub fn scale_spectrum_by(x: &[Complex32], g: f32, out: &mut [Complex32]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA.
        return unsafe { avx2::scale_spectrum_by(x, g, out) };
    }
    scale_by_body(x, g, out)
}

#[inline(always)]
fn scale_body(x: &[Complex32], m: &[f32], out: &mut [Complex32]) {
    for ((o, x), m) in out.iter_mut().zip(x).zip(m) {
        *o = Complex32::new(x.re * m, x.im * m);
    }
}

#[inline(always)]
fn scale_by_body(x: &[Complex32], g: f32, out: &mut [Complex32]) {
    for (o, x) in out.iter_mut().zip(x) {
        *o = Complex32::new(x.re * g, x.im * g);
    }
}

#[inline(always)]
fn split_body(z: &[Complex32], a: &mut [Complex32], b: &mut [Complex32]) {
    let n = z.len();
    let half = n / 2;
    let (a, b) = (&mut a[..=half], &mut b[..=half]);
    a[0] = Complex32::new(z[0].re, 0.0);
    b[0] = Complex32::new(z[0].im, 0.0);
    // Bins 1..=N/2 pair with N−1 down to N/2: the mirror image read backwards.
    let (low, high) = (&z[1..=half], &z[half..]);
    for (((p, q), a), b) in low.iter().zip(high.iter().rev()).zip(&mut a[1..]).zip(&mut b[1..]) {
        let q = q.conj();
        let (sum, diff) = (p + q, p - q);
        *a = Complex32::new(0.5 * sum.re, 0.5 * sum.im);
        *b = Complex32::new(0.5 * diff.im, -0.5 * diff.re);
    }
}

#[inline(always)]
fn merge_body(a: &[Complex32], b: &[Complex32], z: &mut [Complex32]) {
    let n = z.len();
    let half = n / 2;
    z[0] = Complex32::new(a[0].re, b[0].re);
    z[half] = Complex32::new(a[half].re, b[half].re);
    let (low, high) = z.split_at_mut(half);
    // A + iB at k, and conj(A) + i·conj(B) at N − k.
    for (((x, y), lo), hi) in a[1..half].iter().zip(&b[1..half]).zip(&mut low[1..]).zip(high[1..].iter_mut().rev()) {
        *lo = Complex32::new(x.re - y.im, x.im + y.re);
        *hi = Complex32::new(x.re + y.im, y.re - x.im);
    }
}

/// The kernels compiled for AVX2 + FMA: the bodies are `#[inline(always)]`, so they are
/// generated again inside these functions with the wider instructions.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use realfft::num_complex::Complex32;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn sigmoid(values: &mut [f32]) {
        super::sigmoid_body(values)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn split_pair_spectrum(z: &[Complex32], a: &mut [Complex32], b: &mut [Complex32]) {
        super::split_body(z, a, b)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn merge_pair_spectrum(a: &[Complex32], b: &[Complex32], z: &mut [Complex32]) {
        super::merge_body(a, b, z)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scale_spectrum(x: &[Complex32], m: &[f32], out: &mut [Complex32]) {
        super::scale_body(x, m, out)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scale_spectrum_by(x: &[Complex32], g: f32, out: &mut [Complex32]) {
        super::scale_by_body(x, g, out)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn magnitude_features(spectrum: &[Complex32], scale: Option<&[f32]>, log: bool, out: &mut [f32]) {
        super::features_dispatch(spectrum, scale, log, out)
    }
}

/// One loop per combination, so that no choice is left inside it.
#[inline(always)]
fn features_dispatch(spectrum: &[Complex32], scale: Option<&[f32]>, log: bool, out: &mut [f32]) {
    match (scale, log) {
        (Some(s), true) => features_body::<true, true>(spectrum, s, out),
        (Some(s), false) => features_body::<true, false>(spectrum, s, out),
        (None, true) => features_body::<false, true>(spectrum, &[], out),
        (None, false) => features_body::<false, false>(spectrum, &[], out),
    }
}

/// True when no value is NaN or infinite. `x · 0` is 0 for finite `x` and NaN otherwise; summing
/// those over lanes without an early exit lets the check run on vectors.
pub fn all_finite(values: &[f32]) -> bool {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += v * 0.0;
        }
    }
    lanes.iter().all(|l| *l == 0.0) && chunks.remainder().iter().all(|v| v.is_finite())
}

#[inline(always)]
fn sigmoid_body(values: &mut [f32]) {
    for v in values {
        *v = sigmoid(*v);
    }
}

#[inline(always)]
fn features_body<const SCALED: bool, const LOG: bool>(spectrum: &[Complex32], scale: &[f32], out: &mut [f32]) {
    let n = out.len().min(spectrum.len());
    let scale = if SCALED { &scale[..n] } else { &[][..] };
    for (i, (o, c)) in out[..n].iter_mut().zip(&spectrum[..n]).enumerate() {
        let mut m = (c.re * c.re + c.im * c.im).sqrt();
        if SCALED {
            m *= scale[i];
        }
        *o = if LOG { ln_1p(m) } else { m };
    }
}

/// `1 / (1 + e^(−x))`; NaN gives 0 (a broken model must never write NaN into the stems).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    let p = 1.0 / (1.0 + exp(-x));
    if x.is_nan() { 0.0 } else { p }
}

/// ln(1 + x) for x ≥ 0 via Goldberg's correction, ln(u)·x/(u − 1) with u = 1 + x: accurate to
/// an ulp or two where 1 + x rounds, with only `ln`.
#[inline(always)]
pub fn ln_1p(x: f32) -> f32 {
    let u = 1.0 + x;
    let r = ln(u) * x / (u - 1.0);
    if u == 1.0 { x } else { r }
}

/// Rounds to the nearest integer (ties to even) when added and then subtracted: 1.5 · 2²³.
const ROUND: f32 = 12_582_912.0;
/// ln 2 as a short high part (exact in products with small integers) and the remainder.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;

/// e^x (Cephes `expf`), for x clamped to [−87.3, 88], where 2^n stays a normal number.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.336_54, 88.0);
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1)
        * r
        + 5e-1;
    let e = p * (r * r) + r + 1.0;
    // 2^n from the integer n that sits in the low bits of `t` (|n| ≤ 127 ≪ 2²²), by integer
    // arithmetic: `n as i32` would be a saturating conversion, which does not vectorise.
    let n_int = t.to_bits().wrapping_sub(ROUND.to_bits());
    e * f32::from_bits(n_int.wrapping_add(127) << 23)
}

/// ln x (Cephes `logf`) for finite x > 0 in the normal range (here always x ≥ 1).
#[inline(always)]
fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    // x = m · 2^e with m in [0.5, 1), then m folded into [√½, √2) around 1.
    let e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000);
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    let e = (e - small as i32) as f32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    let p = (((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f - 1.242_014_1e-1) * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333e-1;
    let y = (p * f * z + LN2_LO * e) - 0.5 * z;
    (f + y) + LN2_HI * e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, rel: f32) -> bool {
        a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
    }

    /// The vector sigmoid agrees with the standard library's `exp` to a few ulps, NaN included
    /// (mapped to 0), and stays within [0, 1].
    #[test]
    fn sigmoid_matches_the_standard_library() {
        let mut values: Vec<f32> = (-4000..=4000).map(|i| i as f32 * 0.01).collect();
        values.extend([
            1e4,
            -1e4,
            87.0,
            -87.0,
            88.5,
            -88.5,
            104.0,
            -104.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            0.0,
            -0.0,
        ]);
        let mut out = values.clone();
        sigmoid_in_place(&mut out);
        for (&x, &p) in values.iter().zip(&out) {
            let s = if x.is_nan() { 0.0 } else { 1.0 / (1.0 + (-x).exp()) };
            assert!(close(p, s, 1e-6) || (p - s).abs() < 1e-30, "sigmoid({x}): {p} vs {s}");
            assert!((0.0..=1.0).contains(&p), "sigmoid({x}) = {p}");
            assert_eq!(p, sigmoid(x), "dispatched and inline sigmoid differ at {x}");
        }
    }

    /// Any NaN or infinity anywhere, in the vector body or the remainder, is found.
    #[test]
    fn all_finite_finds_every_non_finite_value() {
        let clean: Vec<f32> = (0..21).map(|i| i as f32 * 1e30 - 3e31).collect();
        assert!(all_finite(&clean));
        assert!(all_finite(&[]));
        for at in 0..clean.len() {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut v = clean.clone();
                v[at] = bad;
                assert!(!all_finite(&v), "{bad} at {at} not found");
            }
        }
    }

    /// ln(1 + x) agrees with the standard library's `ln_1p` over the magnitudes spectra have.
    #[test]
    fn ln_1p_matches_the_standard_library() {
        let mut values = vec![0.0f32, 1e-30, 1e-12, 1e-8, 6e-8, 1e-7, 1e-3, 0.5, 1.0, 2.0, 1e3, 1e6, 1e12, 1e30, 3e38];
        values.extend((0..400).map(|i| (i as f32 * 0.1).exp() * 1e-9));
        for &x in &values {
            let (got, want) = (ln_1p(x), x.ln_1p());
            assert!(close(got, want, 4e-7), "ln_1p({x}): {got} vs {want}");
        }
    }

    /// The feature kernel computes |x| · scale, through ln(1 + ·) when asked, for every length
    /// (vector body and remainder).
    #[test]
    fn magnitude_features_match_the_scalar_formula() {
        for n in [0, 1, 7, 8, 9, 513, 1025] {
            let spectrum: Vec<Complex32> =
                (0..n).map(|i| Complex32::new((i as f32 * 0.37).sin() * 3.0, (i as f32 * 0.11).cos())).collect();
            let scale: Vec<f32> = (0..n).map(|i| 0.5 + (i % 5) as f32 * 0.1).collect();
            for (scaled, log) in [(false, false), (false, true), (true, false), (true, true)] {
                let mut out = vec![f32::NAN; n];
                magnitude_features(&spectrum, scaled.then_some(&scale[..]), log, &mut out);
                for i in 0..n {
                    let m = spectrum[i].norm() * if scaled { scale[i] } else { 1.0 };
                    let want = if log { m.ln_1p() } else { m };
                    assert!(
                        close(out[i], want, 1e-6),
                        "n {n}, bin {i}, scaled {scaled}, log {log}: {} vs {want}",
                        out[i]
                    );
                }
            }
        }
    }

    /// Both mask products equal the complex-by-real product, bin for bin, for every length.
    #[test]
    fn spectrum_scaling_matches_the_complex_product() {
        for n in [0, 1, 7, 8, 9, 512, 1025] {
            let x: Vec<Complex32> =
                (0..n).map(|i| Complex32::new((i as f32 * 0.37).sin() * 3.0, (i as f32 * 0.11).cos())).collect();
            let m: Vec<f32> = (0..n).map(|i| (i % 7) as f32 / 6.0).collect();
            let (mut out, mut out_by) = (vec![Complex32::new(f32::NAN, f32::NAN); n], vec![Complex32::default(); n]);
            scale_spectrum(&x, &m, &mut out);
            scale_spectrum_by(&x, 0.3, &mut out_by);
            for i in 0..n {
                assert_eq!(out[i], x[i] * m[i], "n {n}, bin {i}");
                assert_eq!(out_by[i], x[i] * 0.3, "n {n}, bin {i}");
            }
        }
    }
}
