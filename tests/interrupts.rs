//! Interrupted and failing runs of `voxmask separate`: SIGINT and SIGTERM leave no temporary file
//! and no half pair; temporaries of a killed run are swept by the next one; a write that fails
//! (file size limit, as a full disk) keeps neither stem, and under `--overwrite` leaves the old
//! pair intact; two concurrent `--overwrite` runs into one folder leave one run's pair.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The shipped model (real work per second of audio, so a long input takes seconds).
fn shipped_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/voxmask.onnx")
}

/// Names in `dir` (empty when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn long_input(dir: &Path, seconds: usize) -> PathBuf {
    let input = dir.join("long.wav");
    let n = 44_100 * seconds;
    write_wav(&input, 44_100, &[sine(220.0, 44_100, n, 0.3), noise(n, 3, 0.1)], 16);
    input
}

#[test]
fn sigint_and_sigterm_keep_no_temporaries_and_no_half_pair() {
    let dir = tempfile::tempdir().unwrap();
    let input = long_input(dir.path(), 240);
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let out = dir.path().join(format!("out_{signal}"));
        let mut child = voxmask()
            .args(["separate", "--threads", "1", "-o", out.to_str().unwrap(), "-m", shipped_model().to_str().unwrap()])
            .arg(&input)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the stems are being written, then interrupt.
        let stems = out.join("long");
        let started = Instant::now();
        while !names(&stems).iter().any(|n| n.ends_with("voxmask-tmp")) {
            assert!(started.elapsed() < Duration::from_secs(60), "no temporary file appeared");
            assert!(child.try_wait().unwrap().is_none(), "the separation ended before it could be interrupted");
            std::thread::sleep(Duration::from_millis(20));
        }
        let kill = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(kill.success());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(code), "SIG{signal}: {err}");
        assert!(err.contains(&format!("interrupted by SIG{signal}")), "{err}");
        assert_eq!(names(&stems), Vec::<String>::new(), "SIG{signal} left files behind");
    }
}

#[test]
fn temporaries_of_a_killed_run_are_swept_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let model = lowpass_model(dir.path(), 22_050, 1000.0);
    let input = dir.path().join("song.wav");
    write_wav(&input, 44_100, &[sine(440.0, 44_100, 44_100, 0.3)], 16);
    let stems = dir.path().join("out/song");
    std::fs::create_dir_all(&stems).unwrap();
    // A process that has ended: its pid names the leftovers of a "killed" run.
    let mut gone = Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    let pid = gone.id();
    let stale = [format!(".vocals.wav.{pid}-0.voxmask-tmp"), format!(".separation.png.{pid}-2.voxmask-tmp.png")];
    for name in &stale {
        std::fs::write(stems.join(name), b"partial").unwrap();
    }
    // A live process's temporary is not touched (it may be writing it now).
    let alive = format!(".accompaniment.wav.{}-0.voxmask-tmp", std::process::id());
    std::fs::write(stems.join(&alive), b"in use").unwrap();
    let o = run(voxmask().args(["separate", "-o"]).arg(dir.path().join("out")).arg("-m").arg(&model).arg(&input));
    assert!(o.status.success(), "{}", stderr(&o));
    for name in &stale {
        assert!(stderr(&o).contains(name.as_str()), "no note for {name}: {}", stderr(&o));
    }
    assert_eq!(names(&stems), [alive.as_str(), "accompaniment.wav", "vocals.wav"]);
}

/// Runs `voxmask separate` with the size of any file it writes limited to `kib` KiB: writing
/// past it fails with EFBIG, the way a full disk fails a write.
fn separate_with_file_limit(kib: u64, args: &[&str]) -> std::process::Output {
    let script = format!("trap '' XFSZ; ulimit -f {kib}; exec \"$0\" separate \"$@\"");
    run(Command::new("bash").arg("-c").arg(script).arg(env!("CARGO_BIN_EXE_voxmask")).args(args))
}

#[test]
fn a_failed_write_keeps_neither_stem_and_the_old_pair_survives() {
    let dir = tempfile::tempdir().unwrap();
    let model = conv_model(dir.path(), 22_050, 2, 1);
    let input = dir.path().join("song.wav");
    let n = 44_100 * 4;
    write_wav(&input, 44_100, &[noise(n, 4, 0.3), noise(n, 5, 0.3)], 16);
    let out = dir.path().join("out");
    let stems = out.join("song");
    let args = ["-o", out.to_str().unwrap(), "-m", model.to_str().unwrap(), "--mask", "soft"];
    // 16-bit stereo stems of 4 s are 706 KB each: a 300 KiB limit fails both mid-write.
    let mut first: Vec<&str> = args.to_vec();
    first.push(input.to_str().unwrap());
    let o = separate_with_file_limit(300, &first);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("song") && stderr(&o).to_lowercase().contains("too large"), "{}", stderr(&o));
    assert_eq!(names(&stems), Vec::<String>::new(), "a failed run left files");
    // A good pair, then a failing --overwrite run: the old pair is kept whole.
    let o = sep_ok(&first);
    let before =
        (std::fs::read(stems.join("vocals.wav")).unwrap(), std::fs::read(stems.join("accompaniment.wav")).unwrap());
    let mut again = first.clone();
    again.extend(["--overwrite", "--format", "wav32f"]);
    let o2 = separate_with_file_limit(1000, &again);
    assert_eq!(o2.status.code(), Some(1), "{}", stderr(&o2));
    assert_eq!(names(&stems), ["accompaniment.wav", "vocals.wav"], "{}", stderr(&o));
    let after =
        (std::fs::read(stems.join("vocals.wav")).unwrap(), std::fs::read(stems.join("accompaniment.wav")).unwrap());
    assert!(before == after, "the old pair changed");
}

fn sep_ok(args: &[&str]) -> std::process::Output {
    let o = run(voxmask().arg("separate").arg("-q").args(args));
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

#[test]
fn concurrent_overwrite_runs_leave_one_runs_pair() {
    let dir = tempfile::tempdir().unwrap();
    let model = conv_model(dir.path(), 22_050, 2, 1);
    let n = 44_100 * 6;
    // Two different songs with the same name, separated into the same folder at once.
    let inputs: Vec<(PathBuf, Vec<f32>)> = (0..2)
        .map(|i| {
            let d = dir.path().join(format!("src{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let x = noise(n, 10 + 10 * i as u64, 0.3);
            write_wav(&d.join("song.wav"), 44_100, std::slice::from_ref(&x), 32);
            (d.join("song.wav"), x)
        })
        .collect();
    let out = dir.path().join("out");
    for round in 0..3 {
        let children: Vec<_> = inputs
            .iter()
            .map(|(p, _)| {
                voxmask()
                    .args([
                        "separate",
                        "-q",
                        "--overwrite",
                        "--mask",
                        "soft",
                        "--format",
                        "wav32f",
                        "-o",
                        out.to_str().unwrap(),
                    ])
                    .arg("-m")
                    .arg(&model)
                    .arg(p)
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", String::from_utf8_lossy(&o.stderr));
        }
        // The soft-mask stems sum to their own input: a mixed pair would sum to neither.
        let (_, v) = read_wav(&out.join("song/vocals.wav"));
        let (_, a) = read_wav(&out.join("song/accompaniment.wav"));
        let sum: Vec<f32> = v[0].iter().zip(&a[0]).map(|(v, a)| v + a).collect();
        let diffs: Vec<f64> = inputs.iter().map(|(_, x)| diff_db(x, &sum, x, 0..n)).collect();
        let matches = diffs.iter().filter(|d| **d < -60.0).count();
        assert_eq!(matches, 1, "round {round}: the folder holds stems of two runs ({diffs:?} dB)");
        assert_eq!(names(&out.join("song")), ["accompaniment.wav", "vocals.wav"]);
    }
}
