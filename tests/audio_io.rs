//! Audio I/O against known signals: lossless formats bit-exact, lossy formats sample-aligned with
//! their source, every error path named, no panic on damaged input, atomic WAV output.
//!
//! Fixtures: tests/fixtures/audio (made by its `make.sh`; the signal is defined in `gen_wav.py`
//! and re-computed by [`signal`]). Real MUSDB18 previews are used when the shared data folder is
//! present (`VOXMASK_SHARED_DIR`, else `CARGO_MANIFEST_DIR/../shared`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Rng, fixture};
use voxmask::Error;
use voxmask::audio::decode::{
    AudioReader, MAX_DAMAGED_PACKETS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, audio_track_count, read_all, read_track,
};
use voxmask::audio::encode::{AudioWriter, SampleFormat};

/// Frames in tone_s16.wav and in everything encoded from it (0.3 s at 44.1 kHz).
const SOURCE_FRAMES: usize = 13230;
/// Largest error of a correctly rounded 16-bit sample against the exact signal (half an LSB,
/// plus slack for f32 vs f64 evaluation of the formula).
const S16_QUANT_TOL: f64 = 0.5 / 32768.0 + 1e-6;
const S24_QUANT_TOL: f64 = 0.5 / 8_388_608.0 + 1e-7;
/// f32 storage of the f64 formula: half an ulp at |x| <= 1.
const F32_TOL: f64 = 6e-8;
/// Lossy codecs at 96-128 kbit/s on the test signal: error relative to the source, in dB.
/// Measured (ffmpeg's own decoders give the same numbers): MP3 -26.0 / -26.0, AAC -21.4 / -31.1,
/// Vorbis -37.7 / -14.6 (tone / chirp). This only asks "the right signal came out"; alignment is
/// checked separately by the cross-correlation peak and by lag 0 beating lags -1 and +1.
const LOSSY_ERROR_DB_MAX: f64 = -12.0;
/// RMS level of the decoded 440 Hz tone against the source's, in dB (measured within 0.2 dB).
const LOSSY_TONE_LEVEL_DB_TOL: f64 = 1.0;
/// Lags searched for the cross-correlation peak.
const MAX_LAG: isize = 3000;
/// MUSDB18 previews: mixture vs sum of the four stems (separately AAC-coded streams). The data
/// README reports -21 to -35 dB; measured here over all 94 train previews: -33.4 to -24.0 dB.
/// A one-sample misalignment between streams would push it towards 0 dB.
const MUSDB_MIX_ERROR_DB_MAX: f64 = -15.0;

/// The fixture signal (see fixtures/audio/gen_wav.py).
fn signal(ch: usize, n: usize, rate: u32) -> f64 {
    use std::f64::consts::PI;
    let t = n as f64 / f64::from(rate);
    match ch {
        0 => 0.5 * (2.0 * PI * 440.0 * t).sin(),
        1 => 0.3 * (2.0 * PI * (200.0 * t + (6000.0 - 200.0) / (2.0 * 0.3) * t * t)).sin(),
        k => 0.25 * (2.0 * PI * 220.0 * (k + 1) as f64 * t).sin(),
    }
}

fn max_abs_error(got: &[f32], ch: usize, rate: u32) -> f64 {
    got.iter().enumerate().map(|(n, &x)| (f64::from(x) - signal(ch, n, rate)).abs()).fold(0.0, f64::max)
}

/// 10·log10(‖a − b‖² / ‖b‖²) over the common length.
fn error_db(a: &[f32], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let err: f64 = (0..n).map(|i| (f64::from(a[i]) - b[i]).powi(2)).sum();
    let energy: f64 = b[..n].iter().map(|x| x * x).sum();
    10.0 * (err / energy).log10()
}

/// Lag of `got` relative to `reference` at the cross-correlation peak (positive: `got` is late).
fn xcorr_peak_lag(got: &[f32], reference: &[f64]) -> isize {
    let mut best = (f64::NEG_INFINITY, 0);
    for lag in -MAX_LAG..=MAX_LAG {
        let mut acc = 0.0;
        for (n, &r) in reference.iter().enumerate() {
            let i = n as isize + lag;
            if i >= 0 && (i as usize) < got.len() {
                acc += f64::from(got[i as usize]) * r;
            }
        }
        if acc > best.0 {
            best = (acc, lag);
        }
    }
    best.1
}

fn hound_planar(path: &Path) -> Vec<Vec<f32>> {
    let mut reader = hound::WavReader::open(path).expect("hound opens the fixture");
    let spec = reader.spec();
    let ch = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().map(|s| s.expect("sample")).collect(),
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.expect("sample") as f32 / scale).collect()
        }
    };
    (0..ch).map(|c| samples.iter().skip(c).step_by(ch).copied().collect()).collect()
}

// ---------------------------------------------------------------------------------------------
// Lossless formats

#[test]
fn wav16_is_bit_exact() {
    let path = fixture("tone_s16.wav");
    let (info, data) = read_all(&path).expect("decodes");
    assert_eq!((info.sample_rate, info.channels), (44100, 2));
    assert_eq!(info.frames, Some(SOURCE_FRAMES as u64));
    assert_eq!(info.bits_per_sample, Some(16));
    assert!(!info.lossy);
    assert_eq!(data, hound_planar(&path));
    for (ch, plane) in data.iter().enumerate() {
        assert!(max_abs_error(plane, ch, 44100) <= S16_QUANT_TOL, "channel {ch}");
    }
}

#[test]
fn wav24_is_bit_exact() {
    let path = fixture("tone_s24.wav");
    let (info, data) = read_all(&path).expect("decodes");
    assert_eq!((info.sample_rate, info.channels, info.bits_per_sample), (44100, 2, Some(24)));
    assert_eq!(data[0].len(), 4410);
    assert_eq!(data, hound_planar(&path));
    for (ch, plane) in data.iter().enumerate() {
        assert!(max_abs_error(plane, ch, 44100) <= S24_QUANT_TOL, "channel {ch}");
    }
}

#[test]
fn wav_float_is_exact() {
    let path = fixture("tone_f32.wav");
    let (info, data) = read_all(&path).expect("decodes");
    assert_eq!((info.sample_rate, info.channels, info.bits_per_sample), (44100, 2, Some(32)));
    assert_eq!(data[0].len(), 4410);
    assert_eq!(data, hound_planar(&path));
    for (ch, plane) in data.iter().enumerate() {
        assert!(max_abs_error(plane, ch, 44100) <= F32_TOL, "channel {ch}");
    }
}

#[test]
fn flac_is_bit_exact_to_its_source() {
    let (info, flac) = read_all(&fixture("tone.flac")).expect("decodes");
    let (_, wav) = read_all(&fixture("tone_s16.wav")).expect("decodes");
    assert_eq!(info.codec, "flac");
    assert!(!info.lossy);
    assert_eq!(info.frames, Some(SOURCE_FRAMES as u64));
    assert_eq!(flac, wav);
}

#[test]
fn six_channel_wav() {
    let (info, data) = read_all(&fixture("six_ch.wav")).expect("decodes");
    assert_eq!(info.channels, 6);
    assert_eq!(data.len(), 6);
    for (ch, plane) in data.iter().enumerate() {
        assert_eq!(plane.len(), 2205);
        assert!(max_abs_error(plane, ch, 44100) <= S16_QUANT_TOL, "channel {ch}");
    }
}

#[test]
fn sample_rate_limits() {
    for (name, rate, frames) in [("rate_8000.wav", 8000, 2000), ("rate_192000.wav", 192000, 9600)] {
        let (info, data) = read_all(&fixture(name)).expect(name);
        assert_eq!((info.sample_rate, data[0].len()), (rate, frames), "{name}");
        assert!(max_abs_error(&data[0], 0, rate) <= S16_QUANT_TOL, "{name}");
    }
    for (name, rate) in [("rate_4000.wav", 4000), ("rate_384000.wav", 384000)] {
        match AudioReader::open(&fixture(name)) {
            Err(Error::UnsupportedSampleRate { path, rate: r, min, max }) => {
                assert_eq!((r, min, max), (rate, MIN_SAMPLE_RATE, MAX_SAMPLE_RATE));
                assert!(path.ends_with(name));
            }
            Err(e) => panic!("{name}: wrong error {e}"),
            Ok(_) => panic!("{name}: accepted"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lossy formats: delay and padding trimmed

fn reference(ch: usize) -> Vec<f64> {
    (0..SOURCE_FRAMES).map(|n| signal(ch, n, 44100)).collect()
}

/// 10·log10(‖got[n + lag] − reference[n]‖² / ‖reference‖²) over the overlap.
fn error_db_at_lag(got: &[f32], reference: &[f64], lag: isize) -> f64 {
    let shifted: Vec<f32> = (0..reference.len())
        .map(|n| {
            let i = n as isize + lag;
            if i >= 0 { got.get(i as usize).copied().unwrap_or(0.0) } else { 0.0 }
        })
        .collect();
    error_db(&shifted, reference)
}

fn rms_db(x: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = x.fold((0.0, 0usize), |(s, n), v| (s + v * v, n + 1));
    10.0 * (sum / n as f64).log10()
}

/// Length, lag and error of a lossy fixture against the source signal.
fn lossy_report(name: &str) -> (usize, isize, [f64; 2]) {
    let (info, data) = read_all(&fixture(name)).expect(name);
    assert!(info.lossy, "{name}");
    assert_eq!((info.sample_rate, info.channels), (44100, 2), "{name}");
    let chirp = reference(1);
    let lag = xcorr_peak_lag(&data[1], &chirp);
    let err = [error_db(&data[0], &reference(0)), error_db(&data[1], &chirp)];
    eprintln!("{name}: {} frames, lag {lag}, error {:.1} / {:.1} dB", data[0].len(), err[0], err[1]);
    (data[0].len(), lag, err)
}

#[test]
fn lossy_formats_align_sample_exactly() {
    for name in ["tone.mp3", "tone.m4a", "tone.ogg"] {
        let (frames, lag, err) = lossy_report(name);
        assert_eq!(frames, SOURCE_FRAMES, "{name}: length");
        assert_eq!(lag, 0, "{name}: cross-correlation peak");
        assert!(err.iter().all(|&e| e < LOSSY_ERROR_DB_MAX), "{name}: error {err:?}");
        let (_, data) = read_all(&fixture(name)).expect(name);
        let chirp = reference(1);
        let at = |lag| error_db_at_lag(&data[1], &chirp, lag);
        assert!(at(0) < at(-1) && at(0) < at(1), "{name}: not aligned to the sample");
        let level = rms_db(data[0].iter().map(|&x| f64::from(x))) - rms_db(reference(0).into_iter());
        assert!(level.abs() < LOSSY_TONE_LEVEL_DB_TOL, "{name}: tone level off by {level:.2} dB");
    }
}

/// Without a LAME/Xing tag an MP3 carries no gapless information, so nothing can be trimmed: the
/// output keeps the encoder + decoder delay in front and the encoder's padding at the end, and is
/// a whole number of MP3 frames (1152 each). This pins the measured residual for our fixture.
#[test]
fn mp3_without_gapless_info_keeps_encoder_delay() {
    /// libmp3lame's delay (576) plus the decoder's filterbank delay (529).
    const LEADING_RESIDUAL: isize = 1105;
    /// Padding up to the 13th whole frame: 13 * 1152 - 13230 - 1105.
    const TRAILING_RESIDUAL: usize = 641;
    let (frames, lag, _) = lossy_report("tone_noxing.mp3");
    assert_eq!(lag, LEADING_RESIDUAL);
    assert_eq!(frames, SOURCE_FRAMES + LEADING_RESIDUAL as usize + TRAILING_RESIDUAL);
    assert_eq!(frames % 1152, 0);
}

#[test]
fn multi_track_mp4_stems() {
    let path = fixture("stems.mp4");
    assert_eq!(audio_track_count(&path).expect("probes"), 3);
    let tracks: Vec<Vec<f32>> = (0..3)
        .map(|t| {
            let (info, mut data) = read_track(&path, t).expect("decodes");
            assert_eq!((info.channels, info.codec.as_str()), (1, "aac"));
            data.remove(0)
        })
        .collect();
    for t in &tracks {
        assert_eq!(t.len(), SOURCE_FRAMES);
    }
    // Each stem against its source, and the mix against the sum of the decoded stems.
    let tone: Vec<f64> = (0..SOURCE_FRAMES).map(|n| 0.5 * signal(0, n, 44100)).collect();
    let chirp: Vec<f64> = (0..SOURCE_FRAMES).map(|n| 0.5 * signal(1, n, 44100)).collect();
    assert_eq!(xcorr_peak_lag(&tracks[2], &chirp), 0);
    assert!(error_db(&tracks[1], &tone) < LOSSY_ERROR_DB_MAX);
    assert!(error_db(&tracks[2], &chirp) < LOSSY_ERROR_DB_MAX);
    let sum: Vec<f64> = (0..SOURCE_FRAMES).map(|n| f64::from(tracks[1][n]) + f64::from(tracks[2][n])).collect();
    assert!(error_db(&tracks[0], &sum) < LOSSY_ERROR_DB_MAX);
    match AudioReader::open_track(&path, 3) {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains("stems.mp4"), "{msg}"),
        other => panic!("track 3 of 3: {:?}", other.err()),
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming

#[test]
fn chunked_reads_equal_read_all() {
    for name in ["tone_s16.wav", "tone.flac", "tone.mp3", "tone.m4a", "tone.ogg", "six_ch.wav"] {
        let (_, whole) = read_all(&fixture(name)).expect(name);
        for chunk in [1, 7, 1000, 4096, 100_000] {
            let mut reader = AudioReader::open(&fixture(name)).expect(name);
            let mut out = vec![Vec::new(); reader.info().channels];
            loop {
                let before = out[0].len();
                let n = reader.read_into(&mut out, chunk).expect(name);
                assert!(n <= chunk);
                assert_eq!(out[0].len(), before + n);
                if n == 0 {
                    break;
                }
            }
            assert_eq!(out, whole, "{name}, chunk {chunk}");
            // The end is sticky.
            assert_eq!(reader.read_into(&mut out, chunk).expect(name), 0);
        }
    }
}

#[test]
fn reader_and_writer_can_move_to_worker_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<AudioReader>();
    assert_send::<AudioWriter>();
}

#[test]
fn read_into_checks_its_arguments() {
    let mut reader = AudioReader::open(&fixture("tone_s16.wav")).expect("opens");
    let mut one = vec![Vec::new()];
    assert!(matches!(reader.read_into(&mut one, 10), Err(Error::Mismatch { .. })));
    let mut two = vec![Vec::new(), Vec::new()];
    assert!(matches!(reader.read_into(&mut two, 0), Err(Error::InvalidArgument(_))));
    assert_eq!(reader.read_into(&mut two, 10).expect("reads"), 10);
}

// ---------------------------------------------------------------------------------------------
// Errors

fn open_err(path: &Path) -> Error {
    match AudioReader::open(path) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => e,
    }
}

#[test]
fn opus_is_unsupported_with_a_reason() {
    match open_err(&fixture("tone.opus")) {
        Error::UnsupportedFormat { path, reason } => {
            assert!(path.ends_with("tone.opus"));
            assert!(reason.contains("Opus"), "{reason}");
        }
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn unknown_format_is_unsupported() {
    match open_err(&fixture("not_audio.txt")) {
        Error::UnsupportedFormat { path, .. } => assert!(path.ends_with("not_audio.txt")),
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn missing_file_and_directory_are_io_errors() {
    let missing = fixture("no_such_file.wav");
    match open_err(&missing) {
        Error::Io { path, source } => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        e => panic!("wrong error: {e}"),
    }
    let dir = fixture("");
    match open_err(&dir) {
        Error::Io { path, .. } => assert_eq!(path, dir),
        e => panic!("wrong error: {e}"),
    }
    assert!(matches!(audio_track_count(&missing), Err(Error::Io { .. })));
}

#[test]
fn empty_wav_is_empty_audio() {
    match open_err(&fixture("empty.wav")) {
        Error::EmptyAudio { path } => assert!(path.ends_with("empty.wav")),
        e => panic!("wrong error: {e}"),
    }
}

#[test]
fn truncated_wav_is_corrupt() {
    let path = fixture("truncated.wav");
    // The header promises 2000 frames; the 1000 present decode, then the shortfall is reported.
    match read_all(&path) {
        Err(Error::CorruptAudio { path: p, reason }) => {
            assert_eq!(p, path);
            assert!(reason.contains("truncated"), "{reason}");
        }
        other => panic!("wrong result: {:?}", other.map(|(i, _)| i)),
    }
}

#[test]
fn non_finite_samples_are_reported_with_position() {
    for (name, channel, frame) in [("nan_f32.wav", 1, 37), ("inf_f32.wav", 0, 5)] {
        match read_all(&fixture(name)) {
            Err(Error::NonFiniteSample { path, channel: c, frame: f }) => {
                assert!(path.ends_with(name));
                assert_eq!((c, f), (channel, frame), "{name}");
            }
            other => panic!("{name}: wrong result {:?}", other.map(|(i, _)| i)),
        }
    }
}

#[test]
fn errors_name_the_file() {
    for name in ["tone.opus", "not_audio.txt", "empty.wav", "rate_4000.wav", "missing.wav"] {
        let msg = open_err(&fixture(name)).to_string();
        assert!(msg.contains(name), "{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// Damaged input

/// Decodes to the end; only asks that it returns (Ok or Err) instead of panicking.
fn decode_fully(path: &Path) -> Result<usize, Error> {
    let mut reader = AudioReader::open(path)?;
    let mut out = vec![Vec::new(); reader.info().channels];
    let mut total = 0;
    loop {
        out.iter_mut().for_each(Vec::clear);
        match reader.read_into(&mut out, 4096)? {
            0 => return Ok(total),
            n => total += n,
        }
    }
}

const FUZZ_FIXTURES: [&str; 11] = [
    "tone_s16.wav",
    "tone_s24.wav",
    "tone_f32.wav",
    "six_ch.wav",
    "tone.flac",
    "tone.mp3",
    "tone_noxing.mp3",
    "tone.ogg",
    "tone.m4a",
    "tone.opus",
    "stems.mp4",
];

#[test]
fn truncated_and_bit_flipped_inputs_never_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng::new(0x9E37_79B9);
    let mut cases = 0;
    for name in FUZZ_FIXTURES {
        let bytes = fs::read(fixture(name)).expect(name);
        let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("bin");
        let target = dir.path().join(format!("case.{ext}"));
        let mut variants: Vec<Vec<u8>> = Vec::new();
        // Prefixes: the empty file, inside the headers, and through the payload.
        for cut in [0, 1, 4, 8, 12, 16, 36, 44, 64, 100, 500, 1000] {
            variants.push(bytes[..cut.min(bytes.len())].to_vec());
        }
        for k in 1..8 {
            variants.push(bytes[..bytes.len() * k / 8].to_vec());
        }
        variants.push(bytes[..bytes.len() - 1].to_vec());
        // Single and burst byte flips, biased to the first 512 bytes where the headers live.
        for i in 0..40 {
            let mut v = bytes.clone();
            let span = if i % 2 == 0 { v.len().min(512) } else { v.len() };
            for _ in 0..(1 + i % 4) {
                let at = rng.below(span);
                v[at] ^= (rng.next() as u8) | 1;
            }
            variants.push(v);
        }
        for v in variants {
            fs::write(&target, &v).expect("write case");
            let _ = decode_fully(&target);
            let _ = audio_track_count(&target);
            cases += 1;
        }
    }
    assert!(cases > 600, "ran {cases} cases");
}

#[test]
fn damaged_flac_is_corrupt_not_concealed() {
    let bytes = fs::read(fixture("tone.flac")).expect("fixture");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("damaged.flac");
    let mut v = bytes.clone();
    // Well inside the audio frames: corrupts a frame, which the frame CRC catches.
    let mid = v.len() / 2;
    for b in &mut v[mid..mid + 64] {
        *b ^= 0x5A;
    }
    fs::write(&path, &v).expect("write");
    match decode_fully(&path) {
        Err(Error::CorruptAudio { path: p, .. }) => assert_eq!(p, path),
        other => panic!("damaged FLAC: {other:?}"),
    }
}

/// Offsets of the MPEG audio frame headers in an MP3 file (sync word + layer III).
fn mp3_frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        // 128 kbit/s, 44.1 kHz, MPEG-1 layer III: 417 or 418 bytes per frame.
        if bytes[i] == 0xFF && bytes[i + 1] == 0xFB {
            out.push(i);
            i += 417;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn damaged_mp3_frames_are_concealed_up_to_a_limit() {
    let bytes = fs::read(fixture("tone.mp3")).expect("fixture");
    let frames = mp3_frame_offsets(&bytes);
    assert!(frames.len() > MAX_DAMAGED_PACKETS + 4, "{} frames", frames.len());
    let dir = tempfile::tempdir().expect("tempdir");
    // Breaking a frame's side information (the 32 bytes after the 4-byte header) makes the
    // decoder reject that frame (big_values > 288 in every granule).
    let damage = |count: usize| {
        let mut v = bytes.clone();
        for &at in frames.iter().skip(3).take(count) {
            for b in &mut v[at + 4..at + 36] {
                *b = 0xFF;
            }
        }
        v
    };
    let few = dir.path().join("few.mp3");
    fs::write(&few, damage(2)).expect("write");
    let mut reader = AudioReader::open(&few).expect("opens");
    let mut out = vec![Vec::new(); 2];
    while reader.read_into(&mut out, 4096).expect("2 damaged frames are concealed") > 0 {}
    assert_eq!(reader.damaged_packets(), 2);
    // Concealment keeps the timeline: same length as the clean file.
    assert_eq!(out[0].len(), SOURCE_FRAMES);

    let many = dir.path().join("many.mp3");
    fs::write(&many, damage(MAX_DAMAGED_PACKETS + 1)).expect("write");
    match decode_fully(&many) {
        Err(Error::CorruptAudio { path, reason }) => {
            assert_eq!(path, many);
            assert!(reason.contains("malformed"), "{reason}");
        }
        other => panic!("too many damaged frames: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Real MUSDB18 previews

#[test]
fn musdb18_stems_align_and_sum_to_the_mixture() {
    let Some(shared) = common::shared_data("", "musdb18_stems_align_and_sum_to_the_mixture") else { return };
    let train = shared.join("data/musdb18-7s/train");
    let mut files: Vec<PathBuf> = fs::read_dir(&train)
        .expect("musdb18-7s/train is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".stem.mp4"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .stem.mp4 in {}", train.display());
    let mut worst = f64::NEG_INFINITY;
    let mut best = f64::INFINITY;
    for file in &files {
        assert_eq!(audio_track_count(file).expect("probes"), 5, "{}", file.display());
        let tracks: Vec<Vec<Vec<f32>>> = (0..5)
            .map(|t| {
                let (info, data) = read_track(file, t).expect("decodes");
                assert_eq!((info.sample_rate, info.channels), (44100, 2));
                data
            })
            .collect();
        let len = tracks[0][0].len();
        for t in &tracks {
            assert_eq!(t[0].len(), len, "{}: stem lengths differ", file.display());
        }
        let mut err = 0.0;
        let mut energy = 0.0;
        for (ch, mix) in tracks[0].iter().enumerate() {
            for (n, &m) in mix.iter().enumerate() {
                let sum: f64 = tracks[1..].iter().map(|stem| f64::from(stem[ch][n])).sum();
                err += (f64::from(m) - sum).powi(2);
                energy += f64::from(m).powi(2);
            }
        }
        let db = 10.0 * (err / energy).log10();
        worst = worst.max(db);
        best = best.min(db);
        assert!(db < MUSDB_MIX_ERROR_DB_MAX, "{}: mixture vs stems {db:.1} dB", file.display());
    }
    eprintln!("musdb18-7s: {} files, mixture vs sum of stems {best:.1} .. {worst:.1} dB", files.len());
}

// ---------------------------------------------------------------------------------------------
// WAV writer

fn test_block(channels: usize, frames: usize, offset: usize) -> Vec<Vec<f32>> {
    (0..channels).map(|ch| (0..frames).map(|n| signal(ch, n + offset, 44100) as f32).collect()).collect()
}

fn write_in_blocks(path: &Path, format: SampleFormat, data: &[Vec<f32>], blocks: &[usize]) {
    let mut w = AudioWriter::create(path, 44100, data.len(), format, false).expect("create");
    let mut at = 0;
    for &len in blocks {
        let planes: Vec<&[f32]> = data.iter().map(|c| &c[at..at + len]).collect();
        w.write(&planes).expect("write");
        at += len;
    }
    assert_eq!(w.frames_written(), at as u64);
    w.finish().expect("finish");
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn wav_round_trip_each_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = test_block(3, 5000, 0);
    for (format, bits) in [(SampleFormat::Int16, 16), (SampleFormat::Int24, 24), (SampleFormat::Float32, 32)] {
        let path = dir.path().join(format!("out_{bits}.wav"));
        write_in_blocks(&path, format, &data, &[1, 999, 4000]);
        let (info, back) = read_all(&path).expect("reads back");
        assert_eq!((info.sample_rate, info.channels, info.bits_per_sample), (44100, 3, Some(bits)));
        for (ch, (got, sent)) in back.iter().zip(&data).enumerate() {
            assert_eq!(got.len(), sent.len());
            for (n, (&g, &s)) in got.iter().zip(sent).enumerate() {
                let expected = match format {
                    SampleFormat::Float32 => s,
                    _ => {
                        let full = (1i64 << (bits - 1)) as f64;
                        ((f64::from(s) * full).round() / full) as f32
                    }
                };
                assert_eq!(g, expected, "{bits}-bit channel {ch} frame {n}");
            }
        }
    }
    assert_eq!(entries(dir.path()), ["out_16.wav", "out_24.wav", "out_32.wav"]);
}

#[test]
fn int_formats_clamp_and_round() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clamp.wav");
    let input = [1.0f32, -1.0, 1.5, -2.0, 0.5 / 32768.0, -0.4 / 32768.0, 1.6 / 32768.0];
    let mut w = AudioWriter::create(&path, 8000, 1, SampleFormat::Int16, false).expect("create");
    w.write(&[&input]).expect("write");
    w.finish().expect("finish");
    let mut r = hound::WavReader::open(&path).expect("hound reads it");
    let got: Vec<i16> = r.samples::<i16>().map(|s| s.expect("sample")).collect();
    assert_eq!(got, [32767, -32768, 32767, -32768, 1, 0, 2]);
}

#[test]
fn writer_refuses_bad_blocks_and_non_finite_samples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.wav");
    let mut w = AudioWriter::create(&path, 44100, 2, SampleFormat::Float32, false).expect("create");
    let a = [0.0f32; 10];
    let b = [0.0f32; 9];
    assert!(matches!(w.write(&[&a]), Err(Error::Mismatch { .. })));
    assert!(matches!(w.write(&[&a, &b]), Err(Error::Mismatch { .. })));
    w.write(&[&a, &a]).expect("good block");
    let mut nan = [0.0f32; 10];
    nan[4] = f32::NAN;
    match w.write(&[&a, &nan]) {
        Err(Error::NonFiniteSample { path: p, channel, frame }) => {
            assert_eq!((p, channel, frame), (path.clone(), 1, 14));
        }
        other => panic!("NaN accepted: {other:?}"),
    }
    assert!(AudioWriter::create(&path, 44100, 0, SampleFormat::Int16, false).is_err());
    // Nothing visible yet; only the one temporary file.
    assert!(!path.exists());
    assert_eq!(entries(dir.path()).len(), 1);
    drop(w);
    assert!(entries(dir.path()).is_empty(), "temp left: {:?}", entries(dir.path()));
}

#[test]
fn overwrite_is_refused_unless_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("exists.wav");
    fs::write(&path, b"precious").expect("write");
    match AudioWriter::create(&path, 44100, 1, SampleFormat::Int16, false) {
        Err(Error::OutputExists { path: p }) => assert_eq!(p, path),
        other => panic!("overwrote: {:?}", other.err()),
    }
    assert_eq!(fs::read(&path).expect("read"), b"precious");
    assert_eq!(entries(dir.path()), ["exists.wav"]);

    let data = test_block(1, 100, 0);
    let mut w = AudioWriter::create(&path, 44100, 1, SampleFormat::Int16, true).expect("create");
    w.write(&[&data[0]]).expect("write");
    // Until finish the old file stays intact.
    assert_eq!(fs::read(&path).expect("read"), b"precious");
    w.finish().expect("finish");
    assert_eq!(read_all(&path).expect("reads").1[0].len(), 100);
    assert_eq!(entries(dir.path()), ["exists.wav"]);
}

#[test]
fn a_file_created_meanwhile_is_not_clobbered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("race.wav");
    let mut w = AudioWriter::create(&path, 44100, 1, SampleFormat::Int16, false).expect("create");
    w.write(&[&[0.25f32; 10]]).expect("write");
    fs::write(&path, b"someone else").expect("write");
    assert!(matches!(w.finish(), Err(Error::OutputExists { .. })));
    assert_eq!(fs::read(&path).expect("read"), b"someone else");
    assert_eq!(entries(dir.path()), ["race.wav"]);
}

#[test]
fn dropped_writer_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("dropped.wav");
    {
        let mut w = AudioWriter::create(&path, 44100, 2, SampleFormat::Int24, false).expect("create");
        let data = test_block(2, 1000, 0);
        w.write(&[&data[0], &data[1]]).expect("write");
    }
    assert!(entries(dir.path()).is_empty(), "left: {:?}", entries(dir.path()));
    // Into a missing folder: an Io error naming the temporary file's folder, nothing created.
    let missing = dir.path().join("no/such/dir/out.wav");
    assert!(matches!(AudioWriter::create(&missing, 44100, 1, SampleFormat::Int16, false), Err(Error::Io { .. })));
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn decoding_and_re_encoding_never_touches_the_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("input.wav");
    fs::copy(fixture("tone_s16.wav"), &input).expect("copy");
    let before = fs::read(&input).expect("read");
    let mtime = fs::metadata(&input).and_then(|m| m.modified()).expect("mtime");

    let output = dir.path().join("output.wav");
    let mut reader = AudioReader::open(&input).expect("open");
    let info = reader.info().clone();
    let mut writer =
        AudioWriter::create(&output, info.sample_rate, info.channels, SampleFormat::Int16, false).expect("create");
    let mut block = vec![Vec::new(); info.channels];
    loop {
        block.iter_mut().for_each(Vec::clear);
        if reader.read_into(&mut block, 1024).expect("read") == 0 {
            break;
        }
        let planes: Vec<&[f32]> = block.iter().map(Vec::as_slice).collect();
        writer.write(&planes).expect("write");
    }
    writer.finish().expect("finish");

    assert_eq!(fs::read(&input).expect("read"), before);
    assert_eq!(fs::metadata(&input).and_then(|m| m.modified()).expect("mtime"), mtime);
    // 16-bit in, 16-bit out: identical samples.
    assert_eq!(read_all(&output).expect("reads").1, read_all(&input).expect("reads").1);
    // Writing over the input without --overwrite is refused.
    assert!(matches!(
        AudioWriter::create(&input, 44100, 2, SampleFormat::Int16, false),
        Err(Error::OutputExists { .. })
    ));
    assert_eq!(fs::read(&input).expect("read"), before);
}

/// FLAC through the writer: 24-bit, three channels, a length that is not a whole number of
/// blocks, decoded back exactly; float samples are refused up front, leaving nothing behind.
#[test]
fn flac_writer_round_trips_and_refuses_float() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.flac");
    let n = 10_000;
    let data: Vec<Vec<f32>> =
        (0..3).map(|c| (0..n).map(|i| ((i * (c + 3)) % 2001) as f32 / 1000.0 - 1.0).collect()).collect();
    let mut w = AudioWriter::create(&path, 48_000, 3, SampleFormat::Int24, false).expect("create");
    for start in (0..n).step_by(3_001) {
        let end = (start + 3_001).min(n);
        let block: Vec<&[f32]> = data.iter().map(|c| &c[start..end]).collect();
        w.write(&block).unwrap();
    }
    w.finish().unwrap();
    let (info, decoded) = voxmask::audio::decode::read_all(&path).unwrap();
    assert_eq!((info.sample_rate, info.channels, info.bits_per_sample), (48_000, 3, Some(24)));
    for (c, channel) in decoded.iter().enumerate() {
        assert_eq!(channel.len(), n);
        for (i, (&got, &x)) in channel.iter().zip(&data[c]).enumerate() {
            let want = (x * 8_388_608.0).round().clamp(-8_388_608.0, 8_388_607.0) / 8_388_608.0;
            assert_eq!(got, want, "channel {c} sample {i}");
        }
    }
    let float = dir.path().join("float.flac");
    let err = AudioWriter::create(&float, 48_000, 1, SampleFormat::Float32, false).err().expect("float FLAC refused");
    assert!(err.to_string().contains("integer"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only three.flac remains");
}

/// A WAV written to a pipe (`ffmpeg -f wav -`) carries 0xFFFFFFFF for its RIFF and data sizes
/// (and often a LIST chunk before the data): it decodes to every sample of the same WAV with real
/// sizes, and a trailing partial frame is dropped.
#[test]
fn streamed_wav_with_placeholder_sizes_decodes_completely() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, reference) = read_all(&fixture("tone_s16.wav")).unwrap();
    let bytes = fs::read(fixture("tone_s16.wav")).unwrap();
    // Rebuild it the way ffmpeg streams it: RIFF, fmt, LIST, data with placeholder sizes.
    let data_at = bytes.windows(4).position(|w| w == b"data").unwrap();
    let fmt = &bytes[12..data_at];
    let samples = &bytes[data_at + 8..];
    let mut streamed = b"RIFF\xff\xff\xff\xffWAVE".to_vec();
    streamed.extend_from_slice(fmt);
    streamed.extend_from_slice(b"LIST\x06\x00\x00\x00INFOab");
    streamed.extend_from_slice(b"data\xff\xff\xff\xff");
    streamed.extend_from_slice(samples);
    let path = dir.path().join("streamed.wav");
    for trailing in [&[][..], &[7u8][..]] {
        let mut v = streamed.clone();
        v.extend_from_slice(trailing);
        fs::write(&path, &v).unwrap();
        let (info, decoded) = read_all(&path).unwrap_or_else(|e| panic!("trailing {trailing:?}: {e}"));
        assert_eq!(info.frames, Some(SOURCE_FRAMES as u64));
        assert!(decoded == reference, "trailing {trailing:?}: samples differ");
    }
}

/// An MP3 whose LAME/Xing tag states its length is caught when cut short, like WAV and FLAC; one
/// without a tag cannot be checked and decodes what is there.
#[test]
fn truncated_mp3_with_a_length_tag_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = fs::read(fixture("tone.mp3")).unwrap();
    assert_eq!(decode_fully(&fixture("tone.mp3")).unwrap(), SOURCE_FRAMES);
    let path = dir.path().join("cut.mp3");
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match decode_fully(&path) {
        Err(Error::CorruptAudio { reason, .. }) => assert!(reason.contains("truncated"), "{reason}"),
        other => panic!("half an MP3 with a Xing tag: {other:?}"),
    }
    let untagged = fs::read(fixture("tone_noxing.mp3")).unwrap();
    fs::write(&path, &untagged[..untagged.len() / 2]).unwrap();
    assert!(decode_fully(&path).unwrap() > 0);
}

/// Zero-byte files are called empty; plain-PCM WAVs with more channels than symphonia names are
/// refused as unsupported with the limit (26), not as corrupt, and 26 channels decode.
#[test]
fn empty_files_and_channel_limits_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("nothing.mp3");
    fs::write(&empty, b"").unwrap();
    assert!(matches!(AudioReader::open(&empty), Err(Error::EmptyAudio { .. })));
    for (channels, ok) in [(26u16, true), (32, false)] {
        let path = dir.path().join(format!("ch{channels}.wav"));
        let spec = hound::WavSpec {
            channels,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..800 * channels as i32 {
            w.write_sample((i % 300) as i16).unwrap();
        }
        w.finalize().unwrap();
        // hound writes WAVE_FORMAT_EXTENSIBLE above two channels; make it plain PCM as many
        // tools do (format tag 1, a 16-byte fmt chunk keeps its layout up to the tag).
        let mut bytes = fs::read(&path).unwrap();
        let fmt = bytes.windows(4).position(|w| w == b"fmt ").unwrap();
        bytes[fmt + 8] = 1;
        bytes[fmt + 9] = 0;
        fs::write(&path, &bytes).unwrap();
        match (AudioReader::open(&path), ok) {
            (Ok(r), true) => assert_eq!(r.info().channels, channels as usize),
            (Err(Error::UnsupportedFormat { reason, .. }), false) => assert!(reason.contains("26"), "{reason}"),
            (other, _) => panic!("{channels} channels: {:?}", other.map(|r| r.info().clone())),
        }
    }
}
