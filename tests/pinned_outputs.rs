//! Pins what `voxmask separate` writes with the built-in offline model: the bundled sample
//! (44.1 kHz MP3, the engine at twice the model's rate) and a generated 3-minute 48 kHz file
//! (both resamplers and the band split). Each stem's energy per channel and per block (1 s for
//! the sample, 10 s for the long file) must stay what it was when the pins were taken, so a
//! refactor that changes the stems fails here even when the stems still look plausible.
//!
//! The pins were taken with ONNX Runtime; they hold to float rounding (relative 1e-6 per block;
//! tract differs from ONNX Runtime by about 2e-8), which is what a different CPU's vector paths
//! or backend move, while any change to the pipeline moves them by far more.
//! `VOXMASK_PIN_KEEP=DIR` keeps the inputs and stems there, to compare two builds' files byte
//! for byte.

mod common;

use std::path::Path;

use common::*;

/// Largest relative change of a block's energy accepted as rounding.
const TOLERANCE: f64 = 1e-6;

/// Energy per block of `seconds` of `[channel][sample]`: `[channel][block]`.
fn fingerprint(audio: &[Vec<f32>], rate: u32, seconds: usize) -> Vec<Vec<f64>> {
    let block = seconds * rate as usize;
    audio.iter().map(|c| c.chunks(block).map(|b| b.iter().map(|&x| (x as f64).powi(2)).sum()).collect()).collect()
}

/// Three minutes of a stereo "song" at 48 kHz: a gliding voice-like tone with harmonics over a
/// bass line, a chord and noise bursts, different on the two channels.
fn song(rate: u32) -> Vec<Vec<f32>> {
    let n = 180 * rate as usize;
    let mut rng = Rng::new(17);
    (0..2)
        .map(|c| {
            let mut phase = 0.0f64;
            (0..n)
                .map(|i| {
                    let t = i as f64 / rate as f64;
                    let f0 = 220.0 * (1.0 + 0.3 * (0.21 * t).sin()) * (1.0 + 0.01 * (5.5 * t).sin());
                    phase += 2.0 * std::f64::consts::PI * f0 / rate as f64;
                    let voice: f64 = (1..6).map(|h| (h as f64 * phase).sin() / h as f64).sum::<f64>()
                        * if (t * 0.5).fract() < 0.7 { 0.2 } else { 0.0 };
                    let bass = 0.15 * (2.0 * std::f64::consts::PI * (55.0 + 10.0 * c as f64) * t).sin();
                    let chord: f64 =
                        [261.6, 329.6, 392.0].iter().map(|f| 0.05 * (2.0 * std::f64::consts::PI * f * t).sin()).sum();
                    let burst = if (t * 2.0).fract() < 0.05 { 0.2 } else { 0.01 };
                    (voice + bass + chord) as f32 + burst * rng.uniform()
                })
                .collect()
        })
        .collect()
}

/// Separates `input` with the built-in model into 32-bit float stems and returns
/// `(vocals, accompaniment)` fingerprints over blocks of `seconds`.
fn separate(input: &Path, out: &Path, seconds: usize) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let o = run(voxmask().args(["separate", "--format", "wav32f", "--overwrite", "-q", "-o"]).arg(out).arg(input));
    assert!(o.status.success(), "voxmask separate {} failed: {}", input.display(), stderr(&o));
    let name = input.file_stem().unwrap().to_string_lossy().into_owned();
    let (spec, v) = read_wav(&out.join(&name).join("vocals.wav"));
    let (_, a) = read_wav(&out.join(&name).join("accompaniment.wav"));
    (fingerprint(&v, spec.sample_rate, seconds), fingerprint(&a, spec.sample_rate, seconds))
}

fn check(what: &str, got: &[Vec<f64>], pinned: &[&[f64]]) {
    let close = got.len() == pinned.len()
        && got.iter().zip(pinned).all(|(g, p)| {
            g.len() == p.len() && g.iter().zip(*p).all(|(g, p)| (g - p).abs() <= TOLERANCE * p.abs().max(1e-9))
        });
    assert!(close, "{what} changed: block energies now\n{got:?}\npinned\n{pinned:?}");
}

fn workdir() -> (Option<tempfile::TempDir>, std::path::PathBuf) {
    match std::env::var_os("VOXMASK_PIN_KEEP") {
        Some(dir) => {
            std::fs::create_dir_all(&dir).unwrap();
            (None, dir.into())
        }
        None => {
            let t = tempfile::tempdir().unwrap();
            let p = t.path().to_path_buf();
            (Some(t), p)
        }
    }
}

#[test]
fn bundled_sample_stems_are_pinned() {
    let (_keep, dir) = workdir();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/nightowl.mp3");
    let (v, a) = separate(&sample, &dir, 1);
    check("the bundled sample's vocals", &v, PINNED_SAMPLE_VOCALS);
    check("the bundled sample's accompaniment", &a, PINNED_SAMPLE_ACCOMPANIMENT);
}

#[test]
fn three_minute_file_stems_are_pinned() {
    let (_keep, dir) = workdir();
    let input = dir.join("song48k.wav");
    write_wav(&input, 48_000, &song(48_000), 32);
    let (v, a) = separate(&input, &dir, 10);
    check("the 3-minute file's vocals", &v, PINNED_SONG_VOCALS);
    check("the 3-minute file's accompaniment", &a, PINNED_SONG_ACCOMPANIMENT);
}

// Taken with ONNX Runtime 1.32 from the stems of the release before the Separator refactor
// (byte-identical to the refactor's, on both backends).
const PINNED_SAMPLE_VOCALS: &[&[f64]] = &[
    &[
        77.70728944508119,
        218.17879081102993,
        419.01714286987533,
        154.02245746387226,
        287.8998086743778,
        85.34808390414763,
        174.87254476518984,
    ],
    &[
        8.21405186103557,
        55.48682734010804,
        35.037930427949945,
        22.332484171344074,
        58.766144879811705,
        4.333302754778095,
        39.00235717043981,
    ],
];
const PINNED_SAMPLE_ACCOMPANIMENT: &[&[f64]] = &[
    &[
        768.5084515966338,
        835.2085158124214,
        793.9596872078383,
        628.8929346436746,
        709.1121917039886,
        686.0251311097488,
        959.4254269270798,
    ],
    &[
        1268.9349556603806,
        1325.954465132653,
        1412.7520774671943,
        1292.3992928963833,
        1308.4066398263076,
        1293.6910759165955,
        1383.3243605980215,
    ],
];
const PINNED_SONG_VOCALS: &[&[f64]] = &[
    &[
        10410.011477685868,
        9608.982638535785,
        9147.031720043706,
        10393.311088502101,
        9711.681800196817,
        9140.476665365048,
        10481.833368797126,
        9492.649578067332,
        9049.750911828485,
        10528.635539700199,
        9330.652815448771,
        8924.24258610843,
        10437.706475861789,
        9262.00723898979,
        8955.185813508102,
        10589.20876579433,
        9231.159604830013,
        8953.69760739238,
    ],
    &[
        10429.319890735635,
        9629.18298459483,
        9120.370636947071,
        10412.100252260083,
        9676.005832193434,
        9082.324228727693,
        10508.441581996092,
        9465.761979964806,
        8990.298218934837,
        10553.337794624165,
        9304.588467071771,
        8901.531457607245,
        10465.556530381036,
        9265.44489411145,
        8882.798892513318,
        10601.575930644573,
        9236.072098376746,
        8857.359991638883,
    ],
];
const PINNED_SONG_ACCOMPANIMENT: &[&[f64]] = &[
    &[
        6127.8173365596485,
        6332.687837070027,
        6211.508743473218,
        6134.251450452988,
        6261.916766396862,
        6244.009355366602,
        6194.438505838247,
        6305.4900555891145,
        6324.231980074752,
        6178.433325157363,
        6347.005800946723,
        6354.380207462866,
        6137.103869027619,
        6442.585616227063,
        6261.522202797485,
        6146.957575122072,
        6566.098500233993,
        6339.899453460765,
    ],
    &[
        6145.681074287379,
        6373.290515680432,
        6263.3802289113955,
        6158.7249440443975,
        6341.942170032051,
        6311.267306426313,
        6202.7931335544035,
        6357.0090889259145,
        6391.407530513134,
        6174.555710391392,
        6425.1870843350835,
        6389.125000261472,
        6161.907616089997,
        6512.392628204599,
        6359.190122835923,
        6163.02306142087,
        6639.0988240206825,
        6414.937116785858,
    ],
];
