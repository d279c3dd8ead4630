//! Bounded memory: a 60-minute stereo 44.1 kHz file separates with peak RSS under 300 MB
//! (the binary reports its own peak, `VmHWM`, in `--json`). The input is a 16-bit WAV of
//! 318 MB; the whole file in memory as f32 would be 635 MB, so passing this needs streaming.

mod common;

use common::*;

const MAX_PEAK_RSS_MB: f64 = 300.0;

#[test]
fn sixty_minutes_of_stereo_separate_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let model = lowpass_model(dir.path(), 22_050, 1_000.0);
    let rate = 44_100u32;
    let minutes = 60;
    let input = dir.path().join("hour.wav");
    {
        // Written in one-second pieces so the test itself stays small.
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&input, spec).unwrap();
        let tone = sine(440.0, rate, rate as usize, 0.3);
        let hiss = noise(rate as usize, 4, 0.1);
        for _ in 0..minutes * 60 {
            for i in 0..rate as usize {
                w.write_sample(((tone[i] + hiss[i]) * 32767.0) as i16).unwrap();
                w.write_sample(((tone[i] - hiss[i]) * 32767.0) as i16).unwrap();
            }
        }
        w.finalize().unwrap();
    }
    let out = dir.path().join("out");
    let o = run(voxmask().args(["separate", "--json", "-m"]).arg(&model).arg(&input).arg("-o").arg(&out));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let peak = v["peak_rss_mb"].as_f64().unwrap();
    assert!(peak > 0.0 && peak < MAX_PEAK_RSS_MB, "peak RSS {peak:.0} MB");
    let seconds = v["audio_seconds"].as_f64().unwrap();
    assert!((seconds - (minutes * 60) as f64).abs() < 1e-6);
    let reader = hound::WavReader::open(out.join("hour/vocals.wav")).unwrap();
    assert_eq!(reader.duration(), rate * 60 * minutes as u32);
    eprintln!("60 min stereo: peak RSS {peak:.0} MB, {:.1}x real time", v["realtime_factor"].as_f64().unwrap());
}
