//! BSS Eval v4, MDX SDR and SI-SDR against museval 0.4.1's golden numbers
//! (`shared/fixtures/bss_eval`, see `shared/data/README.md`) and against signals whose scores are
//! known analytically.

mod common;

use std::path::Path;

use common::noise;

use voxmask::Error;
use voxmask::eval::{BssConfig, BssEval, FrameScores, bss_eval_v4, mdx_sdr, nan_median, si_sdr};

/// Required agreement with museval for every framewise value and every median (the spec).
const FRAME_TOL_DB: f64 = 0.01;
/// MDX SDR and SI-SDR are plain sums in f64 on identical samples: only summation order differs.
const GLOBAL_TOL_DB: f64 = 1e-6;
/// Scores computed twice on the same data by different thread counts differ only by rounding.
const THREADS_TOL_DB: f64 = 1e-7;

const SOURCES: [&str; 2] = ["vocals", "accompaniment"];
const METRICS: [&str; 4] = ["SDR", "ISR", "SIR", "SAR"];

/// 16-bit PCM as stored, scaled by 1/32768 exactly as soundfile does: `[channel][sample]`.
fn read_wav(path: &Path) -> Vec<Vec<f32>> {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(spec.bits_per_sample, 16, "{}", path.display());
    assert_eq!(spec.sample_format, hound::SampleFormat::Int, "{}", path.display());
    let nc = spec.channels as usize;
    let mut out = vec![Vec::new(); nc];
    for (i, s) in reader.samples::<i16>().enumerate() {
        let s = s.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out[i % nc].push(f32::from(s) / 32768.0);
    }
    out
}

fn json_f64(v: &serde_json::Value) -> f64 {
    if v.is_null() { f64::NAN } else { v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")) }
}

fn scores_of<'a>(fs: &'a FrameScores, metric: &str) -> &'a [f64] {
    match metric {
        "SDR" => &fs.sdr,
        "ISR" => &fs.isr,
        "SIR" => &fs.sir,
        _ => &fs.sar,
    }
}

/// Checks one fixture case; returns the largest framewise/median deviation seen, in dB.
fn check_case(dir: &Path, case: &str, threads: usize) -> f64 {
    let case_dir = dir.join(case);
    let text =
        std::fs::read_to_string(case_dir.join("expected.json")).unwrap_or_else(|e| panic!("{case}/expected.json: {e}"));
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{case}: {e}"));
    let refs: Vec<_> = SOURCES.iter().map(|s| read_wav(&case_dir.join(format!("ref_{s}.wav")))).collect();
    let ests: Vec<_> = SOURCES.iter().map(|s| read_wav(&case_dir.join(format!("est_{s}.wav")))).collect();
    let as_usize = |k: &str| expected[k].as_u64().unwrap_or_else(|| panic!("{case}: missing {k}")) as usize;
    let cfg = BssConfig { win: as_usize("win"), hop: as_usize("hop"), filter_len: as_usize("filters_len"), threads };
    assert_eq!(expected["mode"], "v4", "{case}");
    let got = bss_eval_v4(&refs, &ests, &cfg).unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(got.len(), SOURCES.len());
    let mut worst = 0.0f64;
    for (j, src) in SOURCES.iter().enumerate() {
        let exp = &expected["sources"][src];
        for (m, metric) in METRICS.iter().enumerate() {
            let want: Vec<f64> = exp["framewise"][metric]
                .as_array()
                .unwrap_or_else(|| panic!("{case}/{src}/{metric}: no framewise array"))
                .iter()
                .map(json_f64)
                .collect();
            let have = scores_of(&got[j], metric);
            assert_eq!(have.len(), want.len(), "{case}/{src}/{metric}: frame count");
            for (t, (h, w)) in have.iter().zip(&want).enumerate() {
                assert_eq!(h.is_nan(), w.is_nan(), "{case}/{src}/{metric} frame {t}: got {h}, museval {w}");
                if !w.is_nan() {
                    let d = (h - w).abs();
                    worst = worst.max(d);
                    assert!(d < FRAME_TOL_DB, "{case}/{src}/{metric} frame {t}: got {h}, museval {w}");
                }
            }
            let want_med = json_f64(&exp["median"][metric]);
            let have_med = got[j].medians()[m];
            assert_eq!(nan_median(have), have_med);
            let d = (have_med - want_med).abs();
            worst = worst.max(d);
            assert!(d < FRAME_TOL_DB, "{case}/{src}/{metric} median: got {have_med}, museval {want_med}");
        }
        let mdx = mdx_sdr(&refs[j], &ests[j]).unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = json_f64(&exp["mdx_new_sdr"]);
        assert!((mdx - want).abs() < GLOBAL_TOL_DB, "{case}/{src} MDX SDR: got {mdx}, expected {want}");
        let si = si_sdr(&refs[j], &ests[j]).unwrap_or_else(|e| panic!("{case}: {e}"));
        let want = json_f64(&exp["si_sdr"]);
        assert!((si - want).abs() < GLOBAL_TOL_DB, "{case}/{src} SI-SDR: got {si}, expected {want}");
    }
    worst
}

#[test]
fn matches_museval_golden_fixtures() {
    let Some(dir) = common::shared_data("fixtures/bss_eval", "matches_museval_golden_fixtures") else { return };
    for (case, threads) in [("crosstalk", 1), ("filtered", 1), ("silent_start", 2), ("real_irm", 1)] {
        let worst = check_case(&dir, case, threads);
        eprintln!("{case}: largest deviation from museval {worst:.2e} dB");
    }
}

/// Two stereo sources of independent noise, `[source][channel][sample]`.
fn two_sources(len: usize, seed: u64) -> Vec<Vec<Vec<f32>>> {
    (0..2u64).map(|j| (0..2u64).map(|c| noise(len, seed + 10 * j + c, 0.5)).collect()).collect()
}

/// Small windows and filters keep these tests quick in unoptimised builds.
fn small_cfg() -> BssConfig {
    BssConfig { win: 2000, hop: 2000, filter_len: 16, threads: 1 }
}

fn db(x: f64) -> f64 {
    10.0 * x.log10()
}

#[test]
fn additive_independent_noise_gives_its_snr() {
    // Noise at 1/√10 of the reference amplitude: 10 dB SDR in expectation, and exactly the
    // window's energy ratio by definition (images mode SDR is the SNR of the estimate).
    let (len, cfg) = (16000, small_cfg());
    let refs = two_sources(len, 1);
    let gain = 10f32.powf(-0.5);
    let ests: Vec<Vec<Vec<f32>>> = refs
        .iter()
        .enumerate()
        .map(|(j, src)| {
            src.iter()
                .enumerate()
                .map(|(c, ch)| {
                    ch.iter().zip(noise(len, 100 + 2 * j as u64 + c as u64, 0.5)).map(|(s, n)| s + gain * n).collect()
                })
                .collect()
        })
        .collect();
    let got = bss_eval_v4(&refs, &ests, &cfg).expect("valid input");
    for (j, fs) in got.iter().enumerate() {
        assert_eq!(fs.sdr.len(), 8);
        for (t, &sdr) in fs.sdr.iter().enumerate() {
            let w = t * cfg.hop..t * cfg.hop + cfg.win;
            let (mut num, mut den) = (0.0f64, 0.0f64);
            for (r, e) in refs[j].iter().zip(&ests[j]) {
                for i in w.clone() {
                    let (r, e) = (f64::from(r[i]), f64::from(e[i]));
                    num += r * r;
                    den += (e - r) * (e - r);
                }
            }
            assert!((sdr - db(num / den)).abs() < 1e-9, "source {j} frame {t}: {sdr} vs {}", db(num / den));
        }
        let [sdr, isr, sir, sar] = fs.medians();
        // 4000 noise samples per window: the energy ratio scatters by about 0.1 dB.
        assert!((sdr - 10.0).abs() < 0.5, "SDR {sdr}");
        // The noise is independent of both references, so the projections leave it as artifacts.
        assert!((sar - 10.0).abs() < 0.5, "SAR {sar}");
        assert!(isr > 20.0 && sir > 20.0, "ISR {isr} SIR {sir}");
    }
    let mdx = mdx_sdr(&refs[0], &ests[0]).expect("same channels");
    assert!((mdx - 10.0).abs() < 0.2, "MDX SDR {mdx}");
    let si = si_sdr(&refs[0], &ests[0]).expect("same channels");
    assert!((si - 10.0).abs() < 0.2, "SI-SDR {si}");
}

#[test]
fn perfect_estimate_scores_infinite_sdr() {
    let refs = two_sources(8000, 7);
    let got = bss_eval_v4(&refs, &refs, &small_cfg()).expect("valid input");
    for fs in &got {
        assert!(fs.sdr.iter().all(|v| *v == f64::INFINITY), "{:?}", fs.sdr);
        // The projections reproduce the reference up to rounding of the least-squares fit.
        for v in fs.isr.iter().chain(&fs.sir).chain(&fs.sar) {
            assert!(*v > 100.0, "{fs:?}");
        }
    }
    assert!(mdx_sdr(&refs[0], &refs[0]).expect("same channels") > 100.0);
}

#[test]
fn gain_error_is_spatial_distortion() {
    // ŝ = s/2: the error is all in the (own-source) projection, so SDR = ISR = 10·log10(4).
    let refs = two_sources(8000, 3);
    let ests: Vec<Vec<Vec<f32>>> =
        refs.iter().map(|s| s.iter().map(|c| c.iter().map(|v| v * 0.5).collect()).collect()).collect();
    let got = bss_eval_v4(&refs, &ests, &small_cfg()).expect("valid input");
    let want = db(4.0);
    for fs in &got {
        for t in 0..fs.sdr.len() {
            assert!((fs.sdr[t] - want).abs() < 1e-9, "SDR {}", fs.sdr[t]);
            assert!((fs.isr[t] - want).abs() < 1e-6, "ISR {}", fs.isr[t]);
            assert!(fs.sir[t] > 100.0 && fs.sar[t] > 100.0, "{fs:?}");
        }
    }
    let si = si_sdr(&refs[0], &ests[0]).expect("same channels");
    assert!(si > 100.0, "SI-SDR is blind to gain, got {si}");
    assert!((mdx_sdr(&refs[0], &ests[0]).expect("same channels") - want).abs() < 1e-6);
}

#[test]
fn silent_window_is_nan_for_every_source() {
    let cfg = small_cfg();
    let mut refs = two_sources(10000, 5);
    for ch in &mut refs[1] {
        ch[cfg.hop..cfg.hop + cfg.win].fill(0.0);
    }
    let ests = two_sources(10000, 55)
        .into_iter()
        .zip(&refs)
        .map(|(n, r)| r.iter().zip(n).map(|(r, n)| r.iter().zip(n).map(|(a, b)| a + 0.1 * b).collect()).collect())
        .collect::<Vec<Vec<Vec<f32>>>>();
    let got = bss_eval_v4(&refs, &ests, &cfg).expect("valid input");
    for fs in &got {
        for (t, v) in [&fs.sdr, &fs.isr, &fs.sir, &fs.sar].iter().enumerate() {
            assert!(v[1].is_nan(), "metric {t}: window 1 should be NaN: {v:?}");
            assert!(v.iter().enumerate().all(|(i, x)| i == 1 || x.is_finite()), "metric {t}: {v:?}");
        }
        assert!(fs.medians().iter().all(|m| m.is_finite()));
    }
}

#[test]
fn silent_estimate_throughout_gives_all_nan() {
    let refs = two_sources(6000, 9);
    let mut ests = refs.clone();
    for ch in &mut ests[0] {
        ch.fill(0.0);
    }
    let got = bss_eval_v4(&refs, &ests, &small_cfg()).expect("valid input");
    assert!(got.iter().all(|fs| fs.medians().iter().all(|m| m.is_nan())));
}

#[test]
fn frame_count_padding_and_threads() {
    // Overlapping windows, an estimate longer than the reference on one channel and shorter on
    // the other: cut and zero-padded as museval does.
    let cfg = BssConfig { win: 3000, hop: 1300, filter_len: 24, threads: 1 };
    let len = 11000;
    let refs = two_sources(len, 11);
    let long: Vec<Vec<Vec<f32>>> = two_sources(len + 500, 21)
        .into_iter()
        .zip(&refs)
        .map(|(n, r)| {
            r.iter()
                .zip(n)
                .map(|(r, n)| n.iter().enumerate().map(|(i, v)| r.get(i).unwrap_or(&0.0) + 0.3 * v).collect())
                .collect()
        })
        .collect();
    let mut ragged = long.clone();
    for src in &mut ragged {
        src[1].truncate(len - 700);
    }
    let got = bss_eval_v4(&refs, &ragged, &cfg).expect("valid input");
    assert_eq!(got[0].sdr.len(), (len - cfg.win + cfg.hop) / cfg.hop);
    // Cutting and padding explicitly gives the same scores.
    let mut ests = ragged.clone();
    for src in &mut ests {
        for ch in src.iter_mut() {
            ch.resize(len, 0.0);
        }
    }
    let fixed = bss_eval_v4(&refs, &ests, &cfg).expect("valid input");
    assert_eq!(got, fixed);
    let mut ev = BssEval::new(BssConfig { threads: 3, ..cfg }).expect("valid config");
    let par = ev.evaluate(&refs, &ests).expect("valid input");
    for (a, b) in got.iter().zip(&par) {
        for (x, y) in a
            .sdr
            .iter()
            .chain(&a.isr)
            .chain(&a.sir)
            .chain(&a.sar)
            .zip(b.sdr.iter().chain(&b.isr).chain(&b.sir).chain(&b.sar))
        {
            assert!((x - y).abs() < THREADS_TOL_DB, "1 thread {x} vs 3 threads {y}");
        }
    }
    // The evaluator is reusable across tracks of different lengths.
    let short: Vec<Vec<Vec<f32>>> = refs.iter().map(|s| s.iter().map(|c| c[..5000].to_vec()).collect()).collect();
    let again = ev.evaluate(&short, &short).expect("valid input");
    assert_eq!(again[0].sdr.len(), 2);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let cfg = small_cfg();
    let refs = two_sources(4000, 1);
    let none: Vec<Vec<Vec<f32>>> = Vec::new();
    assert!(matches!(bss_eval_v4(&none, &none, &cfg), Err(Error::InvalidArgument(_))));
    assert!(matches!(bss_eval_v4(&refs, &refs[..1], &cfg), Err(Error::Mismatch { .. })));
    let mono: Vec<Vec<Vec<f32>>> = refs.iter().map(|s| s[..1].to_vec()).collect();
    assert!(matches!(bss_eval_v4(&refs, &mono, &cfg), Err(Error::Mismatch { .. })));
    let ragged = vec![refs[0].clone(), vec![refs[1][0].clone(), refs[1][1][..3000].to_vec()]];
    assert!(matches!(bss_eval_v4(&ragged, &refs, &cfg), Err(Error::Mismatch { .. })));
    let short: Vec<Vec<Vec<f32>>> = refs.iter().map(|s| s.iter().map(|c| c[..1999].to_vec()).collect()).collect();
    assert!(matches!(bss_eval_v4(&short, &short, &cfg), Err(Error::InvalidArgument(_))));
    let empty_chans: Vec<Vec<Vec<f32>>> = vec![Vec::new(); 2];
    assert!(matches!(bss_eval_v4(&empty_chans, &empty_chans, &cfg), Err(Error::InvalidArgument(_))));
    let mut nan = refs.clone();
    nan[1][0][17] = f32::NAN;
    assert!(matches!(bss_eval_v4(&refs, &nan, &cfg), Err(Error::InvalidArgument(_))));
    assert!(matches!(BssEval::new(BssConfig { hop: 0, ..cfg.clone() }), Err(Error::InvalidArgument(_))));
    assert!(matches!(BssEval::new(BssConfig { filter_len: 0, ..cfg }), Err(Error::InvalidArgument(_))));
    assert!(matches!(mdx_sdr(&refs[0], &refs[0][..1]), Err(Error::Mismatch { .. })));
    assert!(matches!(si_sdr(&[], &[]), Err(Error::InvalidArgument(_))));
}

#[test]
fn nan_median_ignores_nan_like_numpy() {
    assert_eq!(nan_median(&[f64::NAN, 1.0, 3.0, 2.0]), 2.0);
    assert_eq!(nan_median(&[4.0, 1.0, f64::NAN, 3.0, 2.0]), 2.5);
    assert!(nan_median(&[f64::NAN, f64::NAN]).is_nan());
    assert!(nan_median(&[]).is_nan());
    assert_eq!(nan_median(&[f64::INFINITY, 1.0, f64::INFINITY]), f64::INFINITY);
}
