//! The `Separator`'s contract with its callers: any chunking of the input and any way of taking
//! the stems (`process`, or `push` and `pull` in pieces) gives the same stems, of exactly the
//! input's length, at rates with and without resampling; misuse is refused with an error.

mod common;

use common::*;
use voxmask::model::{Model, RuntimeOptions};
use voxmask::separation::{Separator, SeparatorConfig};

type Planar = Vec<Vec<f32>>;

fn signal(rate: u32, frames: usize) -> Planar {
    let l: Vec<f32> = sine(440.0, rate, frames, 0.3).iter().zip(noise(frames, 3, 0.1)).map(|(a, b)| a + b).collect();
    let r: Vec<f32> = sine(990.0, rate, frames, 0.2).iter().zip(noise(frames, 4, 0.2)).map(|(a, b)| a + b).collect();
    vec![l, r]
}

fn separator(model: &mut Model, rate: u32, block: usize) -> Separator<&mut Model> {
    let config = SeparatorConfig { block_frames: Some(block), max_chunk: 3000, ..SeparatorConfig::new(2, rate) };
    Separator::new(model, &config).unwrap()
}

/// `process` in calls of the given sizes (cycled), then `finish`.
fn by_process(model: &mut Model, input: &Planar, rate: u32, block: usize, calls: &[usize]) -> (Planar, Planar) {
    let mut s = separator(model, rate, block);
    let (mut v, mut a) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
    let mut pos = 0;
    for &n in calls.iter().cycle() {
        if pos >= input[0].len() {
            break;
        }
        let end = (pos + n).min(input[0].len());
        let chunk: Vec<&[f32]> = input.iter().map(|c| &c[pos..end]).collect();
        let before = v[0].len();
        let appended = s.process(&chunk, &mut v, &mut a).unwrap();
        assert_eq!(v[0].len(), before + appended, "process reports what it appended");
        assert!(v[0].len() <= end, "never more stems than input");
        pos = end;
    }
    s.finish(&mut v, &mut a).unwrap();
    (v, a)
}

/// `push` everything, then `pull` in pieces of `piece` frames.
fn by_pull(model: &mut Model, input: &Planar, rate: u32, block: usize, piece: usize) -> (Planar, Planar) {
    let mut s = separator(model, rate, block);
    let (mut v, mut a) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
    let whole: Vec<&[f32]> = input.iter().map(Vec::as_slice).collect();
    s.push(&whole).unwrap();
    s.end_input().unwrap();
    loop {
        let before = v[0].len();
        let n = s.pull(&mut v, &mut a, piece).unwrap();
        assert!(n <= piece && v[0].len() == before + n);
        if n == 0 {
            break;
        }
    }
    (v, a)
}

#[test]
fn any_chunking_and_any_way_of_taking_the_stems_gives_the_same_stems() {
    let dir = tempfile::tempdir().unwrap();
    // 44.1 kHz: the engine at twice the model's rate; 48 kHz: resampled both ways.
    for rate in [44_100u32, 48_000] {
        let mut model = Model::load(&conv_model(dir.path(), 22_050, 4, 2), &RuntimeOptions::default()).unwrap();
        let input = signal(rate, rate as usize + 1234);
        let (v, a) = by_process(&mut model, &input, rate, 16, &[input[0].len()]);
        assert_eq!((v[0].len(), a[1].len()), (input[0].len(), input[0].len()), "stems of the input's length");
        // The soft mask is complementary: the stems add up to the input.
        let worst = (0..input[0].len()).map(|i| (v[0][i] + a[0][i] - input[0][i]).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "stems do not add up to the input at {rate} Hz: {worst}");
        for (block, calls) in [(1, vec![1, 7, 300, 4096]), (5, vec![256]), (16, vec![999, 1, 2])] {
            let other = by_process(&mut model, &input, rate, block, &calls);
            assert_eq!(other, (v.clone(), a.clone()), "{rate} Hz, block {block}, calls {calls:?}");
        }
        for piece in [1, 1000, 1 << 20] {
            assert_eq!(by_pull(&mut model, &input, rate, 16, piece), (v.clone(), a.clone()), "pieces of {piece}");
        }
    }
}

#[test]
fn misuse_is_refused_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::load(&conv_model(dir.path(), 22_050, 4, 2), &RuntimeOptions::default()).unwrap();
    let input = signal(44_100, 5000);
    let stereo: Vec<&[f32]> = input.iter().map(Vec::as_slice).collect();
    let mut s = separator(&mut model, 44_100, 4);
    let (mut v, mut a) = (vec![Vec::new(); 2], vec![Vec::new(); 2]);
    let (mut v1, mut a1) = (vec![Vec::new(); 1], vec![Vec::new(); 1]);
    let err = |e: voxmask::Error| e.to_string();
    assert!(err(s.process(&stereo[..1], &mut v, &mut a).unwrap_err()).contains("channels"));
    assert!(err(s.process(&stereo, &mut v1, &mut a1).unwrap_err()).contains("channels"));
    assert!(err(s.pull(&mut v1, &mut a1, 10).unwrap_err()).contains("channels"));
    let ragged = [&input[0][..100], &input[1][..99]];
    assert!(err(s.process(&ragged, &mut v, &mut a).unwrap_err()).contains("length"));
    let early = s.process(&stereo, &mut v, &mut a).unwrap();
    assert_eq!(s.finish(&mut v, &mut a).unwrap(), 5000 - early, "finish appends the rest");
    assert_eq!(v[0].len(), 5000);
    assert_eq!(s.finish(&mut v, &mut a).unwrap(), 0, "a second finish appends nothing");
    assert!(err(s.process(&stereo, &mut v, &mut a).unwrap_err()).contains("after the end"));
}
