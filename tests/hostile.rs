//! Hostile input, generated at test time.
//!
//! - `a_folder_of_hostile_files_ends_in_time_with_per_file_errors`: one `voxmask separate` run
//!   over a folder of truncations and byte flips of real files of every supported format, absurd
//!   headers, zero-byte files, an ffmpeg-style streamed WAV, a symlink loop, a FIFO and a
//!   non-UTF-8 name, under a time limit: exit 1, no panic, each file either a complete pair of
//!   stems or an error line naming it, no temporary left behind.
//! - `hostile_models_are_refused_in_time`: a huge-context and an integer-output model.
//! - `mutation_fuzz_of_the_decoder`: a deterministic mutation fuzz on stable Rust (thousands of
//!   mutants of the bundled sample and of small fixtures of each format through the decoder):
//!   zero panics, decoded length bounded. `VOXMASK_FUZZ_CASES=100000 cargo test --release --test
//!   hostile mutation` runs a longer one.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use voxmask::audio::decode::{AudioReader, MAX_DAMAGED_PACKETS};

/// Fixtures of every supported format, and the bundled real excerpt.
const FIXTURES: [&str; 8] = [
    "tone_s16.wav",
    "tone_s24.wav",
    "tone_f32.wav",
    "tone.flac",
    "tone.mp3",
    "tone_noxing.mp3",
    "tone.ogg",
    "tone.m4a",
];

fn sources() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> =
        FIXTURES.iter().map(|f| (f.to_string(), std::fs::read(fixture(f)).unwrap())).collect();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/nightowl.mp3");
    v.push(("nightowl.mp3".into(), std::fs::read(sample).unwrap()));
    v
}

/// One mutant of `bytes`: a truncation, byte flips (mostly in the headers), an inserted or
/// deleted run, a duplicated block, or a 32-bit field forced to an absurd value.
fn mutate(bytes: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = bytes.to_vec();
    let len = v.len();
    match rng.below(6) {
        0 => v.truncate(rng.below(len)),
        1 => {
            let span = if rng.below(2) == 0 { len.min(1024) } else { len };
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(span);
                v[at] ^= (rng.next() as u8) | 1;
            }
        }
        2 => {
            let at = rng.below(len);
            let run: Vec<u8> = (0..1 + rng.below(64)).map(|_| rng.next() as u8).collect();
            v.splice(at..at, run);
        }
        3 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(256)).min(len);
            v.drain(at..end);
        }
        4 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(4096)).min(len);
            let block = v[at..end].to_vec();
            let to = rng.below(len);
            v.splice(to..to, block);
        }
        _ => {
            let at = rng.below(len.min(256).saturating_sub(4).max(1));
            let value: u32 = [0, 1, 0x7FFF_FFFF, 0xFFFF_FFFF, rng.next() as u32][rng.below(5)];
            if at + 4 <= len {
                v[at..at + 4].copy_from_slice(&value.to_le_bytes());
            }
        }
    }
    v
}

/// Decodes to the end, returning the frames delivered (Ok or Err: only a panic is a failure).
fn decode(path: &Path) -> Result<u64, voxmask::Error> {
    let mut reader = AudioReader::open(path)?;
    let mut out = vec![Vec::new(); reader.info().channels];
    let mut total = 0u64;
    loop {
        out.iter_mut().for_each(Vec::clear);
        match reader.read_into(&mut out, 8192)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
    }
}

#[test]
fn mutation_fuzz_of_the_decoder() {
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    // Decoder panics are caught and turned into errors; this counts them anyway, because a
    // panic in a decoder is a bug to know about even when it is contained.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let cases: usize = std::env::var("VOXMASK_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let dir = tempfile::tempdir().unwrap();
    let sources = sources();
    let mut rng = Rng::new(0x5DEE_CE66);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..cases {
        let (name, bytes) = &sources[i % sources.len()];
        let ext = Path::new(name).extension().unwrap().to_str().unwrap();
        let path = dir.path().join(format!("mutant.{ext}"));
        let mutant = mutate(bytes, &mut rng);
        std::fs::write(&path, &mutant).unwrap();
        match decode(&path) {
            Ok(frames) => {
                ok += 1;
                // Memory follows the frames delivered: never more than the file could hold plus
                // the capped silence that concealment may insert.
                let bound = 44_100 * 60 + (MAX_DAMAGED_PACKETS as u64 + 1) * 65_536;
                assert!(frames <= bound, "case {i} ({name}): {frames} frames from {} bytes", mutant.len());
            }
            Err(_) => refused += 1,
        }
    }
    eprintln!(
        "mutation fuzz: {cases} mutants, {ok} decoded, {refused} refused, {} panics",
        PANICS.load(Ordering::SeqCst)
    );
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "decoder panics (caught, but bugs)");
    assert!(ok > 0 && refused > 0, "the mutants should include both decodable and broken files");
}

/// Runs `cmd` to completion or kills it after `limit`; panics on a timeout.
fn run_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_folder_of_hostile_files_ends_in_time_with_per_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir(&input).unwrap();
    let mut rng = Rng::new(0x1234_5678);
    let mut names: Vec<PathBuf> = Vec::new();
    for (name, bytes) in sources().iter().filter(|(n, _)| n != "nightowl.mp3") {
        let (stem, ext) = name.rsplit_once('.').unwrap();
        for k in 0..6 {
            let cut = &bytes[..bytes.len() * k / 6];
            let p = input.join(format!("{stem}_cut{k}.{ext}"));
            std::fs::write(&p, cut).unwrap();
            names.push(p);
            let p = input.join(format!("{stem}_mut{k}.{ext}"));
            std::fs::write(&p, mutate(bytes, &mut rng)).unwrap();
            names.push(p);
        }
    }
    // Absurd headers: a WAV claiming 65535 channels at 4 GHz.
    let mut absurd = std::fs::read(fixture("tone_s16.wav")).unwrap();
    absurd[22..24].copy_from_slice(&u16::MAX.to_le_bytes());
    absurd[24..28].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(input.join("absurd.wav"), &absurd).unwrap();
    names.push(input.join("absurd.wav"));
    // A WAV streamed to a pipe (sizes 0xFFFFFFFF): valid, must separate.
    let mut streamed = std::fs::read(fixture("tone_s16.wav")).unwrap();
    let data = streamed.windows(4).position(|w| w == b"data").unwrap();
    streamed[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    streamed[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
    std::fs::write(input.join("streamed.wav"), &streamed).unwrap();
    names.push(input.join("streamed.wav"));
    // A zero-byte file, a non-UTF-8 name, a symlink loop and a FIFO.
    std::fs::write(input.join("zero.flac"), b"").unwrap();
    names.push(input.join("zero.flac"));
    let latin1 = input.join(std::ffi::OsStr::from_bytes(b"s\xe9.wav"));
    std::fs::copy(fixture("tone_s16.wav"), &latin1).unwrap();
    names.push(latin1);
    std::os::unix::fs::symlink(".", input.join("loop")).unwrap();
    let fifo = input.join("pipe.wav");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    let model = lowpass_model(dir.path(), 22_050, 1000.0);
    let out = dir.path().join("out");
    let o = run_within(
        voxmask().args(["separate", "--jobs", "2", "-o"]).arg(&out).arg("-m").arg(&model).arg(&input),
        Duration::from_secs(300),
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("pipe.wav") && err.contains("loop"), "the FIFO and the loop get notes: {err}");
    let names_of = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let stems = voxmask::separation::unique_stem_names(&names);
    let mut separated = 0;
    for (path, stem) in names.iter().zip(&stems) {
        let folder = out.join(stem);
        let files: Vec<String> =
            std::fs::read_dir(&folder).map(|d| d.flatten().map(|e| names_of(&e.path())).collect()).unwrap_or_default();
        if files.is_empty() {
            assert!(err.contains(&names_of(path)), "{}: neither stems nor an error line", path.display());
        } else {
            let mut files = files;
            files.sort();
            assert_eq!(files, ["accompaniment.wav", "vocals.wav"], "{}: half a pair or leftovers", path.display());
            separated += 1;
        }
    }
    for must in ["streamed", "s\u{fffd}"] {
        assert!(
            stems.iter().any(|s| s == must) && out.join(must).join("vocals.wav").is_file(),
            "{must} was not separated: {err}"
        );
    }
    assert!(separated > 10 && separated < names.len(), "{separated} of {} separated", names.len());
}

#[test]
fn hostile_models_are_refused_in_time() {
    use voxmask::dsp::MaskRule;
    use voxmask::model::test_models::fixed_mask_model;
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("tone_s16.wav");
    let mut huge = contract(22_050, 1_000_000, 0, MaskRule::Soft);
    huge.lookahead_frames = 100_000_000;
    let huge_path = dir.path().join("huge.onnx");
    std::fs::write(&huge_path, fixed_mask_model(huge.bins(), &vec![0.0; huge.bins()], &huge.to_metadata()).unwrap())
        .unwrap();
    // The same graph with its output declared as 64-bit integers (ONNX type 7).
    let c = contract(22_050, 0, 0, MaskRule::Soft);
    let mut bytes = fixed_mask_model(c.bins(), &vec![0.0; c.bins()], &c.to_metadata()).unwrap();
    let int_path = dir.path().join("int.onnx");
    {
        use prost::Message;
        let mut proto = voxmask::model::onnx_proto::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        for o in &mut graph.output {
            if let Some(voxmask::model::onnx_proto::type_proto::Value::TensorType(t)) =
                o.r#type.as_mut().and_then(|t| t.value.as_mut())
            {
                t.elem_type = 7;
            }
        }
        bytes = proto.encode_to_vec();
    }
    std::fs::write(&int_path, &bytes).unwrap();
    for (model, why) in [(&huge_path, "4096"), (&int_path, "32-bit float")] {
        for backend in ["tract", "auto"] {
            let o = run_within(
                voxmask()
                    .args(["separate", "-q", "--backend", backend, "-o"])
                    .arg(dir.path().join("out"))
                    .arg("-m")
                    .arg(model)
                    .arg(&input),
                Duration::from_secs(30),
            );
            let err = String::from_utf8_lossy(&o.stderr).into_owned();
            assert_eq!(o.status.code(), Some(3), "{}: {err}", model.display());
            assert!(err.contains(why) && !err.contains("panicked"), "{}: {err}", model.display());
        }
    }
}
