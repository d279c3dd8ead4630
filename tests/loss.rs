//! Loss kernels against references: PyTorch's `BCEWithLogitsLoss` (values and autograd
//! gradients), central finite differences of independent f64 implementations, extreme logits,
//! thread-count invariance, and hand-computed IBM / boundary-weight examples.

mod common;

use common::Rng;
use voxmask::Error;
use voxmask::loss::{
    BceOptions, DiceOptions, MIN_ELEMS_PER_THREAD, bce_with_logits, boundary_weights, ibm_targets, self_adjusting_dice,
};

/// Kernel loss vs an f64 reference: the kernels evaluate exp/log1p in f32 (rel. error ~1e-7).
const LOSS_RTOL: f64 = 2e-6;
/// Kernel gradient vs a reference gradient, relative to the largest reference component.
const GRAD_RTOL: f64 = 2e-5;
/// Loss with different thread counts: only the f64 summation order may differ.
const THREADS_RTOL: f64 = 1e-12;
/// Step of the central differences (error O(h²) ≈ 1e-10 relative, rounding ≈ 1e-12).
const FD_STEP: f64 = 1e-5;

/// Inputs from the tests' one generator (`common::Rng`), so they are the same on every run.
trait Draw {
    fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32>;
    fn labels(&mut self, n: usize, p: f64) -> Vec<f32>;
}

impl Draw for Rng {
    fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| (lo + (hi - lo) * self.unit()) as f32).collect()
    }

    fn labels(&mut self, n: usize, p: f64) -> Vec<f32> {
        (0..n).map(|_| if self.unit() < p { 1.0 } else { 0.0 }).collect()
    }
}

fn assert_close(what: &str, got: f64, want: f64, rtol: f64) {
    let err = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(err <= rtol, "{what}: got {got:e}, want {want:e}, rel err {err:e} > {rtol:e}");
}

fn assert_grad_close(what: &str, got: &[f32], want: &[f64], rtol: f64) {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(scale > 0.0, "{what}: reference gradient is all zero, test would be vacuous");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs() / scale;
        assert!(err <= rtol, "{what}[{i}]: got {g:e}, want {w:e}, err/max|g| {err:e} > {rtol:e}");
    }
}

fn central_diff(f: impl Fn(&[f64]) -> f64, x: &[f32]) -> Vec<f64> {
    let mut xd: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    (0..xd.len())
        .map(|i| {
            let x0 = xd[i];
            xd[i] = x0 + FD_STEP;
            let up = f(&xd);
            xd[i] = x0 - FD_STEP;
            let down = f(&xd);
            xd[i] = x0;
            (up - down) / (2.0 * FD_STEP)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// BCE

/// Textbook (not the kernel's stable) form, in f64: −b·(w₊ y ln σ + w₋ (1−y) ln(1−σ)), mean over N.
/// Fine for |x| ≲ 30, which is all it is used for.
fn bce_ref(x: &[f64], t: &[f32], b: Option<&[f32]>, o: &BceOptions) -> f64 {
    let e = f64::from(o.label_smoothing);
    let sum: f64 = (0..x.len())
        .map(|i| {
            let p = 1.0 / (1.0 + (-x[i]).exp());
            let y = f64::from(t[i]) * (1.0 - 2.0 * e) + e;
            let l = -(f64::from(o.pos_weight) * y * p.ln() + f64::from(o.neg_weight) * (1.0 - y) * (1.0 - p).ln());
            l * b.map_or(1.0, |b| f64::from(b[i]))
        })
        .sum();
    sum / x.len() as f64
}

/// PyTorch 2.15.0 (`pip install torch`, the PyPI wheel, run on CPU), in float64 on these exactly
/// representable inputs. Class weights map onto PyTorch as weight = b·w₋, pos_weight = w₊/w₋:
///
/// ```python
/// import torch
/// x = torch.tensor([-6.5, -2.25, -0.75, 0.0, 0.5, 1.25, 3.0, 8.0, -15.0, 20.0, 0.125, -0.375], dtype=torch.float64)
/// y = torch.tensor([0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0], dtype=torch.float64)
/// soft = torch.tensor([0.1, 0.9, 0.3, 0.5, 0.75, 0.0, 1.0, 0.25, 0.6, 0.05, 0.4, 0.95], dtype=torch.float64)
/// b = torch.tensor([1.0, 2.0, 0.5, 1.0, 4.0, 1.0, 0.25, 1.0, 3.0, 1.0, 2.0, 0.0], dtype=torch.float64)
/// def case(name, t, e, wp, wn, bw):
///     xx = x.clone().requires_grad_(True)
///     ts = t * (1 - 2 * e) + e
///     w = wn * (bw if bw is not None else torch.ones_like(x))
///     loss = torch.nn.BCEWithLogitsLoss(weight=w, pos_weight=torch.tensor(wp / wn, dtype=torch.float64),
///                                       reduction="mean")(xx, ts)
///     loss.backward()
///     print(name, repr(loss.item()), [repr(v) for v in xx.grad.tolist()])
/// case("plain", y, 0.0, 1.0, 1.0, None)
/// case("smooth_class_bin", y, 0.02, 3.0, 0.5, b)
/// case("soft_class", soft, 0.0, 2.0, 1.0, None)
/// ```
#[test]
fn bce_matches_pytorch_bce_with_logits_loss() {
    let x = [-6.5f32, -2.25, -0.75, 0.0, 0.5, 1.25, 3.0, 8.0, -15.0, 20.0, 0.125, -0.375];
    let y = [0f32, 1., 0., 1., 1., 0., 1., 0., 1., 0., 1., 0.];
    let soft = [0.1f32, 0.9, 0.3, 0.5, 0.75, 0.0, 1.0, 0.25, 0.6, 0.05, 0.4, 0.95];
    let b = [1.0f32, 2.0, 0.5, 1.0, 4.0, 1.0, 0.25, 1.0, 3.0, 1.0, 2.0, 0.0];
    // The soft targets 0.1, 0.3, … are not exact in f32; PyTorch saw the f64 values. The
    // difference (≤ 3e-8 per target, times |x| ≤ 20) is far inside LOSS_RTOL / GRAD_RTOL.
    // (name, targets, options, bin weights, PyTorch loss, PyTorch gradient)
    type Case<'a> = (&'a str, &'a [f32], BceOptions, Option<&'a [f32]>, f64, [f64; 12]);
    let cases: [Case; 3] = [
        (
            "plain",
            &y,
            BceOptions::default(),
            None,
            4.134364873886991,
            [
                0.00012509852139474932,
                -0.07538754459174088,
                0.026735108402050584,
                -0.041666666666666664,
                -0.03146172239984545,
                0.06477498843122426,
                -0.003952156098130553,
                0.0833053874891278,
                -0.08333330784148109,
                0.08333333316157053,
                -0.03906588555218698,
                0.03394445000382752,
            ],
        ),
        (
            "smooth_class_bin",
            &y,
            BceOptions { label_smoothing: 0.02, pos_weight: 3.0, neg_weight: 0.5, threads: 1 },
            Some(&b),
            14.379103562302177,
            [
                -0.0049311958132328875,
                -0.4431198464246045,
                0.004852154810563912,
                -0.12208333333333332,
                -0.3679149909848429,
                0.030626243637173343,
                -0.0027063817890379447,
                0.04081796311902029,
                -0.7349997743971076,
                0.040833333238863796,
                -0.22882205809123646,
                0.0,
            ],
        ),
        (
            "soft_class",
            &soft,
            BceOptions { pos_weight: 2.0, ..BceOptions::default() },
            None,
            4.648507112733798,
            [
                -0.016529058293132445,
                -0.13490300139097433,
                -0.015244359077334235,
                -0.020833333333333332,
                -0.034224680866396205,
                0.06477498843122426,
                -0.007904312196261106,
                0.06246506769474308,
                -0.09999995921303641,
                0.07916666648631572,
                -0.004692239773061778,
                -0.09214165582586965,
            ],
        ),
    ];
    for (name, t, opts, bw, want_loss, want_grad) in cases {
        let mut g = vec![f32::NAN; x.len()];
        let loss = bce_with_logits(&x, t, bw, &opts, Some(&mut g)).unwrap();
        assert_close(name, loss, want_loss, LOSS_RTOL);
        assert_grad_close(name, &g, &want_grad, GRAD_RTOL);
        let loss_only = bce_with_logits(&x, t, bw, &opts, None).unwrap();
        assert_eq!(loss, loss_only, "{name}: computing the gradient changed the loss");
    }
}

#[test]
fn bce_gradient_matches_finite_differences_for_every_option_combination() {
    let n = 97;
    let mut rng = Rng::new(0x5eed_0001);
    let x = rng.vec(n, -9.0, 9.0);
    let hard = rng.labels(n, 0.3);
    let soft = rng.vec(n, 0.0, 1.0);
    let bins = rng.vec(n, 0.0, 5.0);
    let mut combos = 0;
    for smoothing in [0.0, 0.02, 0.2] {
        for (pos_weight, neg_weight) in [(1.0, 1.0), (4.0, 1.0), (1.0, 0.25), (3.0, 0.5), (0.0, 2.0)] {
            for bw in [None, Some(bins.as_slice())] {
                for t in [&hard, &soft] {
                    let opts = BceOptions { label_smoothing: smoothing, pos_weight, neg_weight, threads: 1 };
                    let what = format!("{opts:?} bins={} soft={}", bw.is_some(), std::ptr::eq(t, &soft));
                    let mut g = vec![f32::NAN; n];
                    let loss = bce_with_logits(&x, t, bw, &opts, Some(&mut g)).unwrap();
                    let xd: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                    assert_close(&what, loss, bce_ref(&xd, t, bw, &opts), LOSS_RTOL);
                    let fd = central_diff(|xs| bce_ref(xs, t, bw, &opts), &x);
                    assert_grad_close(&what, &g, &fd, GRAD_RTOL);
                    combos += 1;
                }
            }
        }
    }
    assert_eq!(combos, 60);
}

#[test]
fn bce_extreme_logits_give_finite_exact_values() {
    let big = [1e4f32, 88.0, 89.0, 104.0, 1e30, f32::MAX];
    let opts_all = BceOptions { label_smoothing: 0.02, pos_weight: 10.0, neg_weight: 10.0, threads: 1 };
    for &m in &big {
        for sign in [1.0f32, -1.0] {
            let x = sign * m;
            for y in [0.0f32, 1.0] {
                for (opts, bw) in [(BceOptions::default(), 1.0f32), (opts_all.clone(), 1e3)] {
                    let mut g = [f32::NAN];
                    let loss = bce_with_logits(&[x], &[y], Some(&[bw]), &opts, Some(&mut g)).unwrap();
                    assert!(loss.is_finite() && g[0].is_finite(), "x={x} y={y} {opts:?}: {loss} {g:?}");
                    // Saturated sigmoid: the loss is linear in x and the gradient is constant.
                    let e = f64::from(opts.label_smoothing);
                    let ys = f64::from(y) * (1.0 - 2.0 * e) + e;
                    let (w, xd) = (f64::from(opts.pos_weight) * f64::from(bw), f64::from(x));
                    let (want_loss, want_grad) =
                        if x > 0.0 { (w * (1.0 - ys) * xd, w * (1.0 - ys)) } else { (w * ys * -xd, -w * ys) };
                    let tol = |v: f64| 1e-6 * v.abs() + 1e-30;
                    assert!((loss - want_loss).abs() <= tol(want_loss), "x={x} y={y}: {loss} vs {want_loss}");
                    assert!(
                        (f64::from(g[0]) - want_grad).abs() <= tol(want_grad),
                        "x={x} y={y}: {} vs {want_grad}",
                        g[0]
                    );
                }
            }
        }
    }
    // Around 0 nothing saturates: x = ±1e-30 is σ = ½, loss ln 2, gradient ½ − y.
    let mut g = [0.0f32; 2];
    let loss = bce_with_logits(&[1e-30, -1e-30], &[1.0, 0.0], None, &BceOptions::default(), Some(&mut g)).unwrap();
    assert_close("tiny logits", loss, std::f64::consts::LN_2, LOSS_RTOL);
    assert_eq!(g, [-0.25, 0.25]);
}

#[test]
fn bce_nan_logit_gives_nan_loss_and_gradient() {
    let mut g = [0.0f32; 3];
    let loss =
        bce_with_logits(&[0.5, f32::NAN, -1.0], &[1.0, 0.0, 1.0], None, &BceOptions::default(), Some(&mut g)).unwrap();
    assert!(loss.is_nan());
    assert!(g[1].is_nan() && g[0].is_finite() && g[2].is_finite(), "{g:?}");
}

#[test]
fn bce_rejects_bad_input() {
    let (x, y) = ([0.0f32; 4], [1.0f32; 4]);
    let o = BceOptions::default();
    let mismatch = |r: voxmask::Result<f64>| matches!(r, Err(Error::Mismatch { .. }));
    assert!(mismatch(bce_with_logits(&x, &y[..3], None, &o, None)));
    assert!(mismatch(bce_with_logits(&x, &y, Some(&[1.0; 5]), &o, None)));
    assert!(mismatch(bce_with_logits(&x, &y, None, &o, Some(&mut [0.0; 3]))));
    let invalid =
        |opts: BceOptions| matches!(bce_with_logits(&x, &y, None, &opts, None), Err(Error::InvalidArgument(_)));
    assert!(invalid(BceOptions { label_smoothing: 0.5, ..o.clone() }));
    assert!(invalid(BceOptions { label_smoothing: -0.01, ..o.clone() }));
    assert!(invalid(BceOptions { pos_weight: -1.0, ..o.clone() }));
    assert!(invalid(BceOptions { neg_weight: f32::NAN, ..o.clone() }));
    assert!(matches!(bce_with_logits(&[], &[], None, &o, None), Err(Error::InvalidArgument(_))));
}

// ---------------------------------------------------------------------------------------------
// Self-adjusting Dice

/// Direct f64 transcription of Li et al. 2020's set-level formula.
fn dice_ref(x: &[f64], t: &[f32], o: &DiceOptions) -> f64 {
    let (mut pty, mut pt, mut ys) = (0.0, 0.0, 0.0);
    for (&xi, &yi) in x.iter().zip(t) {
        let p = 1.0 / (1.0 + (-xi).exp());
        let ptilde = (1.0 - p).powf(f64::from(o.alpha)) * p;
        pty += ptilde * f64::from(yi);
        pt += ptilde;
        ys += f64::from(yi);
    }
    let s = f64::from(o.smoothing);
    1.0 - (2.0 * pty + s) / (pt + ys + s)
}

#[test]
fn dice_value_and_gradient_match_finite_differences() {
    let n = 83;
    let mut rng = Rng::new(0x5eed_0002);
    let x = rng.vec(n, -7.0, 7.0);
    let hard = rng.labels(n, 0.25);
    let soft = rng.vec(n, 0.0, 1.0);
    for alpha in [0.0f32, 0.1, 0.5, 1.0, 2.0] {
        for smoothing in [1.0f32, 1e-3] {
            for t in [&hard, &soft] {
                let opts = DiceOptions { alpha, smoothing, threads: 1 };
                let what = format!("{opts:?} soft={}", std::ptr::eq(t, &soft));
                let mut g = vec![f32::NAN; n];
                let loss = self_adjusting_dice(&x, t, &opts, Some(&mut g)).unwrap();
                let xd: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
                assert_close(&what, loss, dice_ref(&xd, t, &opts), LOSS_RTOL);
                let fd = central_diff(|xs| dice_ref(xs, t, &opts), &x);
                assert_grad_close(&what, &g, &fd, GRAD_RTOL);
                assert_eq!(loss, self_adjusting_dice(&x, t, &opts, None).unwrap());
            }
        }
    }
}

#[test]
fn dice_hand_computed_value() {
    // x = 0 everywhere: p = ½; α = 1 gives p̃ = ¼. Targets 1, 0: D = 1 − (2·¼ + 1)/(½ + 1 + 1) = 0.4.
    let loss = self_adjusting_dice(&[0.0, 0.0], &[1.0, 0.0], &DiceOptions::default(), None).unwrap();
    assert_close("dice x=0", loss, 0.4, 1e-12);
    // Empty input: both sums vanish, D = 1 − s/s = 0.
    assert_eq!(self_adjusting_dice(&[], &[], &DiceOptions::default(), Some(&mut [])).unwrap(), 0.0);
}

#[test]
fn dice_extreme_logits_give_finite_values() {
    let mut xs = vec![];
    for m in [1e4f32, 88.0, 89.0, 104.0, 1e30, f32::MAX, 1e-30] {
        xs.extend([m, -m]);
    }
    let ys: Vec<f32> = (0..xs.len()).map(|i| (i / 2 % 2) as f32).collect();
    for alpha in [0.0f32, 0.5, 1.0, 2.0] {
        let opts = DiceOptions { alpha, smoothing: 1.0, threads: 1 };
        let mut g = vec![f32::NAN; xs.len()];
        let loss = self_adjusting_dice(&xs, &ys, &opts, Some(&mut g)).unwrap();
        assert!(loss.is_finite() && g.iter().all(|v| v.is_finite()), "α={alpha}: {loss} {g:?}");
        // Saturated logits contribute p̃ = 0 (α > 0) or p ∈ {0, 1} (α = 0), exactly, and the
        // f64 reference agrees on these inputs.
        let xd: Vec<f64> = xs.iter().map(|&v| f64::from(v)).collect();
        assert_close(&format!("α={alpha}"), loss, dice_ref(&xd, &ys, &opts), LOSS_RTOL);
    }
}

#[test]
fn dice_rejects_bad_input() {
    let (x, y) = ([0.0f32; 4], [1.0f32; 4]);
    let d = DiceOptions::default();
    assert!(matches!(self_adjusting_dice(&x, &y[..2], &d, None), Err(Error::Mismatch { .. })));
    assert!(matches!(self_adjusting_dice(&x, &y, &d, Some(&mut [0.0; 5])), Err(Error::Mismatch { .. })));
    for bad in [
        DiceOptions { alpha: -0.5, ..d.clone() },
        DiceOptions { smoothing: 0.0, ..d.clone() },
        DiceOptions { smoothing: f32::INFINITY, ..d.clone() },
    ] {
        assert!(matches!(self_adjusting_dice(&x, &y, &bad, None), Err(Error::InvalidArgument(_))), "{bad:?}");
    }
    let nan = self_adjusting_dice(&[f32::NAN, 1.0], &[1.0, 0.0], &d, None).unwrap();
    assert!(nan.is_nan());
}

// ---------------------------------------------------------------------------------------------
// Threads and chunking

#[test]
fn thread_count_changes_nothing_but_summation_order() {
    // Not a multiple of the block (1024), of MIN_ELEMS_PER_THREAD, or of any thread count used.
    let n = 5 * MIN_ELEMS_PER_THREAD + 777;
    let mut rng = Rng::new(0x5eed_0003);
    let x = rng.vec(n, -12.0, 12.0);
    let y = rng.labels(n, 0.4);
    let bins = rng.vec(n, 0.5, 3.0);
    let bce_opts = |threads| BceOptions { label_smoothing: 0.02, pos_weight: 2.0, neg_weight: 0.7, threads };
    let dice_opts = |threads| DiceOptions { alpha: 0.6, smoothing: 1.0, threads };

    let mut g1 = vec![f32::NAN; n];
    let bce1 = bce_with_logits(&x, &y, Some(&bins), &bce_opts(1), Some(&mut g1)).unwrap();
    let mut d1 = vec![f32::NAN; n];
    let dice1 = self_adjusting_dice(&x, &y, &dice_opts(1), Some(&mut d1)).unwrap();
    assert!(g1.iter().chain(&d1).all(|v| v.is_finite()), "single-thread pass left elements unwritten");

    for threads in [0, 2, 3, 4, 5, 6, 7, 13] {
        let mut g = vec![f32::NAN; n];
        let bce = bce_with_logits(&x, &y, Some(&bins), &bce_opts(threads), Some(&mut g)).unwrap();
        assert_close(&format!("bce threads={threads}"), bce, bce1, THREADS_RTOL);
        // Bitwise: each element's gradient is computed the same way whichever thread does it,
        // and a NaN left over would mean a chunk was skipped.
        assert!(g.iter().zip(&g1).all(|(a, b)| a.to_bits() == b.to_bits()), "bce grad threads={threads}");
        let no_grad = bce_with_logits(&x, &y, Some(&bins), &bce_opts(threads), None).unwrap();
        assert_eq!(no_grad, bce, "threads={threads}");

        let mut d = vec![f32::NAN; n];
        let dice = self_adjusting_dice(&x, &y, &dice_opts(threads), Some(&mut d)).unwrap();
        assert_close(&format!("dice threads={threads}"), dice, dice1, THREADS_RTOL);
        // The Dice gradient depends on the global sums, which may differ in the last bits.
        let scale = d1.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(d.iter().zip(&d1).all(|(a, b)| (a - b).abs() <= 1e-6 * scale), "dice grad threads={threads}");
    }
}

// ---------------------------------------------------------------------------------------------
// IBM targets and boundary weights

#[test]
fn ibm_targets_hand_example() {
    let v = [1.0f32, 0.5, 0.0, 2.0, 0.3, f32::NAN];
    let a = [0.5f32, 1.0, 0.0, 2.0, 0.299, 1.0];
    let mut out = [-1.0f32; 6];
    ibm_targets(&v, &a, 0.0, &mut out).unwrap();
    assert_eq!(out, [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    ibm_targets(&v, &a, 0.02, &mut out).unwrap();
    assert_eq!(out, [0.98, 0.02, 0.02, 0.02, 0.98, 0.02]);
    assert!(matches!(ibm_targets(&v, &a[..5], 0.0, &mut out), Err(Error::Mismatch { .. })));
    assert!(matches!(ibm_targets(&v, &a, 0.0, &mut [0.0; 2]), Err(Error::Mismatch { .. })));
    assert!(matches!(ibm_targets(&v, &a, 0.5, &mut out), Err(Error::InvalidArgument(_))));
}

#[test]
fn boundary_weights_hand_example() {
    // 3 frames × 4 bins, frame-major, smoothed IBM (0.98 = vocal):
    //   t0: 0 0 1 1        t0: 1 5 5 1
    //   t1: 0 0 0 1   ->   t1: 1 1 5 5
    //   t2: 0 0 0 0        t2: 1 1 1 5
    // (0,3) keeps 1: both its neighbours are vocal like it.
    let (lo, hi) = (0.02f32, 0.98f32);
    let ibm = [lo, lo, hi, hi, lo, lo, lo, hi, lo, lo, lo, lo];
    let mut out = [0.0f32; 12];
    boundary_weights(&ibm, 3, 4, 5.0, &mut out).unwrap();
    assert_eq!(out, [1., 5., 5., 1., 1., 1., 5., 5., 1., 1., 1., 5.]);

    // One frame: only frequency neighbours exist.
    let mut row = [0.0f32; 4];
    boundary_weights(&[0.0, 1.0, 1.0, 1.0], 1, 4, 3.0, &mut row).unwrap();
    assert_eq!(row, [3.0, 3.0, 1.0, 1.0]);

    assert!(matches!(boundary_weights(&ibm, 4, 4, 5.0, &mut out), Err(Error::Mismatch { .. })));
    assert!(matches!(boundary_weights(&ibm, 3, 4, 5.0, &mut [0.0; 11]), Err(Error::Mismatch { .. })));
    assert!(matches!(boundary_weights(&ibm, 3, 4, f32::NAN, &mut out), Err(Error::InvalidArgument(_))));
    assert!(matches!(boundary_weights(&[], usize::MAX, 2, 1.0, &mut []), Err(Error::InvalidArgument(_))));
}

#[test]
fn boundary_weights_match_brute_force_neighbour_check() {
    let (frames, bins) = (7, 9);
    let mut rng = Rng::new(0x5eed_0004);
    let ibm = rng.labels(frames * bins, 0.5);
    let mut out = vec![0.0f32; frames * bins];
    boundary_weights(&ibm, frames, bins, 2.5, &mut out).unwrap();
    let mut boosted = 0;
    for t in 0..frames {
        for f in 0..bins {
            let c = ibm[t * bins + f];
            let differs = [(t.wrapping_sub(1), f), (t + 1, f), (t, f.wrapping_sub(1)), (t, f + 1)]
                .iter()
                .any(|&(tt, ff)| tt < frames && ff < bins && ibm[tt * bins + ff] != c);
            assert_eq!(out[t * bins + f], if differs { 2.5 } else { 1.0 }, "t={t} f={f}");
            boosted += usize::from(differs);
        }
    }
    assert!(boosted > 0 && boosted < frames * bins, "random mask should have some boundary and some interior");
}
