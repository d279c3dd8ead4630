//! Datasets for training and evaluation (`voxmask-train`, `voxmask eval`), detected from the folder layout:
//!
//! - DSD100: `Mixtures/{Dev,Test}/<track>/mixture.wav` + `Sources/{Dev,Test}/<track>/{vocals,bass,drums,other}.wav`
//!   (Dev trains, Test evaluates; validation is a fraction or a list of Dev tracks);
//! - MUSDB18: `.stem.mp4` files in `train/` and `test/`, or one flat folder of them
//!   (streams: mixture, drums, bass, other, vocals; official 14-track validation subset);
//! - MUSDB18-HQ: `{train,test}/<track>/{mixture,vocals,bass,drums,other}.wav`;
//! - MIR-1K: `Wavfile/<singer>_<song>_<clip>.{wav,ogg}` (the folder holding `Wavfile/`, or
//!   `Wavfile/` itself): 16 kHz stereo clips with the accompaniment on the left channel and the
//!   vocals on the right; each clip is one mono track. There is no official split: whole singers
//!   ([`MIR1K_VALIDATION_SINGERS`]) are held out for validation, so no song is on both sides;
//! - plain: `<track>/{mixture,vocals,accompaniment}.wav` (evaluation of users' own data).
//!
//! accompaniment = drums + bass + other. The training mixture is rebuilt as vocals +
//! accompaniment (the stored mixture of MUSDB18 is coded separately and differs by codec noise).

use std::path::{Path, PathBuf};

use crate::audio::decode::{AudioInfo, read_all, read_track};
use crate::dsp::resample::Resampler;
use crate::{Error, Result};

/// The official MUSDB18 validation tracks (sigsep `musdb`, `split='valid'`).
pub const MUSDB_VALIDATION: &[&str] = &[
    "Actions - One Minute Smile",
    "Clara Berry And Wooldog - Waltz For My Victims",
    "Johnny Lokke - Promises & Lies",
    "Patrick Talbot - A Reason To Leave",
    "Triviul - Angelsaint",
    "Alexander Ross - Goodbye Bolero",
    "Fergessen - Nos Palpitants",
    "Leaf - Summerghost",
    "Skelpolu - Human Mistakes",
    "Young Griffo - Pennies",
    "ANiMAL - Rockshow",
    "James May - On The Line",
    "Meaxic - Take A Step",
    "Traffic Experiment - Sirens",
];

/// MIR-1K singers held out of training for its own sanity validation (85 of the 1000 clips).
/// Model selection stays on the MUSDB18 validation tracks; these only check that the MIR-1K
/// reader and the band-limited weights teach something that carries over to unseen singers.
pub const MIR1K_VALIDATION_SINGERS: &[&str] = &["abjones", "annar"];

/// Which layout a folder has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Dsd100,
    Musdb18,
    Musdb18Hq,
    Mir1k,
    Plain,
}

/// Which tracks to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Training tracks (without the validation ones).
    Train,
    /// Validation tracks (from the training part of the dataset).
    Valid,
    /// The test part.
    Test,
    /// Everything found.
    All,
}

/// How the stems of one track are stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackSource {
    /// Separate files; accompaniment is the sum of `accompaniment` files.
    Files { mixture: Option<PathBuf>, vocals: PathBuf, accompaniment: Vec<PathBuf> },
    /// One MUSDB18 stem file (streams 0 mixture, 1 drums, 2 bass, 3 other, 4 vocals).
    Stem(PathBuf),
    /// One stereo file with the accompaniment on the left channel and the vocals on the right
    /// (MIR-1K); the track is mono.
    ChannelPair(PathBuf),
}

/// One track of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub name: String,
    pub source: TrackSource,
    /// Part of the dataset it came from (`train`, `test`, `Dev`, ...).
    pub subset: String,
}

/// Decoded stems of one track at a common rate: `[channel][sample]`.
#[derive(Debug, Clone)]
pub struct Stems {
    pub sample_rate: u32,
    /// The rate the stems were stored at. Resampling up cannot add content above its Nyquist
    /// frequency, so training gives no weight to bins there ([`Stems::bandwidth_hz`]).
    pub source_rate: u32,
    pub mixture: Vec<Vec<f32>>,
    pub vocals: Vec<Vec<f32>>,
    pub accompaniment: Vec<Vec<f32>>,
    /// The stems that sum to the accompaniment, as the dataset stores them (MUSDB18: drums, bass,
    /// other), each `[channel][sample]`; only from [`load_stems_with_parts`], else empty.
    pub accompaniment_parts: Vec<Vec<Vec<f32>>>,
}

impl Stems {
    /// Highest frequency at which the stored stems carry their full content: the flat band of
    /// the resampler from the stored rate ([`crate::dsp::resample::PASSBAND_FRACTION`] of its
    /// Nyquist frequency), or the whole band when the stems were not stored at a lower rate.
    pub fn bandwidth_hz(&self) -> f32 {
        if self.source_rate >= self.sample_rate {
            self.sample_rate as f32 / 2.0
        } else {
            self.source_rate as f32 / 2.0 * crate::dsp::resample::PASSBAND_FRACTION
        }
    }

    /// Every signal held: mixture, vocals, accompaniment and its parts.
    fn signals_mut(&mut self) -> impl Iterator<Item = &mut Vec<Vec<f32>>> {
        [&mut self.mixture, &mut self.vocals, &mut self.accompaniment]
            .into_iter()
            .chain(self.accompaniment_parts.iter_mut())
    }
}

/// Detects the layout of `root`.
pub fn detect_layout(root: &Path) -> Result<Layout> {
    if !root.is_dir() {
        return Err(Error::io(root, std::io::Error::new(std::io::ErrorKind::NotFound, "dataset folder not found")));
    }
    if root.join("Mixtures").is_dir() && root.join("Sources").is_dir() {
        return Ok(Layout::Dsd100);
    }
    if mir1k_folder(root).is_some() {
        return Ok(Layout::Mir1k);
    }
    let has_stems = |d: &Path| list_sorted(d).iter().any(|p| is_stem_file(p));
    if has_stems(root) || has_stems(&root.join("train")) || has_stems(&root.join("test")) {
        return Ok(Layout::Musdb18);
    }
    for sub in ["train", "test"] {
        if list_sorted(&root.join(sub)).iter().any(|d| d.join("vocals.wav").is_file() && d.join("drums.wav").is_file())
        {
            return Ok(Layout::Musdb18Hq);
        }
    }
    if list_sorted(root).iter().any(|d| d.join("vocals.wav").is_file()) {
        return Ok(Layout::Plain);
    }
    Err(Error::InvalidArgument(format!(
        "{}: not a DSD100, MUSDB18, MUSDB18-HQ, MIR-1K or <track>/{{mixture,vocals,accompaniment}}.wav folder",
        root.display()
    )))
}

/// The folder of MIR-1K clips: `root/Wavfile`, or `root` itself when it is named `Wavfile`, holding
/// `<singer>_<song>_<clip>.wav` or `.ogg` files.
fn mir1k_folder(root: &Path) -> Option<PathBuf> {
    let dir = if file_name(root) == "Wavfile" { root.to_path_buf() } else { root.join("Wavfile") };
    list_sorted(&dir).iter().any(|p| mir1k_clip(p).is_some()).then_some(dir)
}

/// The clip name of a MIR-1K file `<singer>_<song>_<clip>.{wav,ogg}`.
fn mir1k_clip(p: &Path) -> Option<String> {
    let ext = p.extension()?.to_str()?.to_ascii_lowercase();
    if ext != "wav" && ext != "ogg" {
        return None;
    }
    let stem = p.file_stem()?.to_str()?;
    let mut parts = stem.split('_');
    let (singer, song, clip) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none() && !singer.is_empty() && !song.is_empty() && !clip.is_empty();
    ok.then(|| stem.to_string())
}

fn is_stem_file(p: &Path) -> bool {
    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(".stem.mp4"))
}

fn list_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
    v.sort();
    v
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Lists the tracks of `split`. `valid` overrides the validation list (DSD100: names, or None
/// to take every `valid_every`-th Dev track).
pub fn list_tracks(root: &Path, split: Split, valid: Option<&[String]>) -> Result<(Layout, Vec<Track>)> {
    list_tracks_with(root, split, valid, false)
}

/// [`list_tracks`] that keeps incomplete tracks (their missing stem paths included as expected)
/// instead of failing on the first, so an evaluation can report each bad track and score the
/// rest; see [`missing_files`].
pub fn list_tracks_lenient(root: &Path, split: Split, valid: Option<&[String]>) -> Result<(Layout, Vec<Track>)> {
    list_tracks_with(root, split, valid, true)
}

/// Stem files of `track` that do not exist (empty for a complete track).
pub fn missing_files(track: &Track) -> Vec<PathBuf> {
    match &track.source {
        TrackSource::Stem(p) | TrackSource::ChannelPair(p) => vec![p.clone()],
        TrackSource::Files { vocals, accompaniment, .. } => {
            std::iter::once(vocals).chain(accompaniment).cloned().collect()
        }
    }
    .into_iter()
    .filter(|p| !p.is_file())
    .collect()
}

fn list_tracks_with(
    root: &Path,
    split: Split,
    valid: Option<&[String]>,
    lenient: bool,
) -> Result<(Layout, Vec<Track>)> {
    let layout = detect_layout(root)?;
    let mut tracks = Vec::new();
    let incomplete = |dir: &Path, missing: &str| {
        Error::InvalidArgument(format!("{}: incomplete track, missing {missing}", dir.display()))
    };
    match layout {
        Layout::Dsd100 => {
            for subset in ["Dev", "Test"] {
                for mix_dir in list_sorted(&root.join("Mixtures").join(subset)).into_iter().filter(|p| p.is_dir()) {
                    let name = file_name(&mix_dir);
                    let src = root.join("Sources").join(subset).join(&name);
                    let mut acc = Vec::new();
                    for stem in ["bass", "drums", "other"] {
                        let p = src.join(format!("{stem}.wav"));
                        if !p.is_file() && !lenient {
                            return Err(incomplete(&src, &format!("{stem}.wav")));
                        }
                        acc.push(p);
                    }
                    let vocals = src.join("vocals.wav");
                    if !vocals.is_file() && !lenient {
                        return Err(incomplete(&src, "vocals.wav"));
                    }
                    let mixture = mix_dir.join("mixture.wav");
                    tracks.push(Track {
                        name,
                        source: TrackSource::Files {
                            mixture: mixture.is_file().then_some(mixture),
                            vocals,
                            accompaniment: acc,
                        },
                        subset: subset.into(),
                    });
                }
            }
        }
        Layout::Musdb18 => {
            let mut dirs = vec![(root.to_path_buf(), "train")];
            if root.join("train").is_dir() || root.join("test").is_dir() {
                dirs = vec![(root.join("train"), "train"), (root.join("test"), "test")];
            }
            for (dir, subset) in dirs {
                for p in list_sorted(&dir).into_iter().filter(|p| is_stem_file(p)) {
                    let name = file_name(&p).trim_end_matches(".stem.mp4").to_string();
                    tracks.push(Track { name, source: TrackSource::Stem(p), subset: subset.into() });
                }
            }
        }
        Layout::Musdb18Hq => {
            for subset in ["train", "test"] {
                for dir in list_sorted(&root.join(subset)).into_iter().filter(|p| p.is_dir()) {
                    let mut acc = Vec::new();
                    for stem in ["bass", "drums", "other"] {
                        let p = dir.join(format!("{stem}.wav"));
                        if !p.is_file() && !lenient {
                            return Err(incomplete(&dir, &format!("{stem}.wav")));
                        }
                        acc.push(p);
                    }
                    let vocals = dir.join("vocals.wav");
                    if !vocals.is_file() && !lenient {
                        return Err(incomplete(&dir, "vocals.wav"));
                    }
                    let mixture = dir.join("mixture.wav");
                    tracks.push(Track {
                        name: file_name(&dir),
                        source: TrackSource::Files {
                            mixture: mixture.is_file().then_some(mixture),
                            vocals,
                            accompaniment: acc,
                        },
                        subset: subset.into(),
                    });
                }
            }
        }
        Layout::Mir1k => {
            let dir = mir1k_folder(root).unwrap_or_else(|| root.join("Wavfile"));
            let mut seen = std::collections::HashSet::new();
            for p in list_sorted(&dir) {
                let Some(name) = mir1k_clip(&p) else { continue };
                // The same clip as .wav and .ogg (a re-encoded copy beside the original): take one.
                if seen.insert(name.clone()) {
                    tracks.push(Track { name, source: TrackSource::ChannelPair(p), subset: "train".into() });
                }
            }
        }
        Layout::Plain => {
            for dir in list_sorted(root).into_iter().filter(|p| p.is_dir()) {
                let vocals = dir.join("vocals.wav");
                let acc = dir.join("accompaniment.wav");
                if (!vocals.is_file() || !acc.is_file()) && !lenient {
                    return Err(incomplete(&dir, "vocals.wav or accompaniment.wav"));
                }
                let mixture = dir.join("mixture.wav");
                tracks.push(Track {
                    name: file_name(&dir),
                    source: TrackSource::Files {
                        mixture: mixture.is_file().then_some(mixture),
                        vocals,
                        accompaniment: vec![acc],
                    },
                    subset: "test".into(),
                });
            }
        }
    }
    let train_subset = |t: &Track| t.subset == "train" || t.subset == "Dev";
    // MIR-1K splits by singer, the first part of `<singer>_<song>_<clip>`.
    let singer =
        |t: &Track| (layout == Layout::Mir1k).then(|| t.name.split('_').next().unwrap_or_default().to_string());
    let in_valid = |t: &Track, i: usize| match (valid, layout) {
        (Some(list), _) => list.iter().any(|n| n == &t.name || singer(t).is_some_and(|s| &s == n)),
        (None, Layout::Dsd100) => i % 5 == 4, // every fifth Dev track: a 20% validation fraction
        (None, Layout::Mir1k) => singer(t).is_some_and(|s| MIR1K_VALIDATION_SINGERS.contains(&s.as_str())),
        (None, _) => MUSDB_VALIDATION.contains(&t.name.as_str()),
    };
    let selected = tracks
        .into_iter()
        .filter(|t| train_subset(t) || split == Split::Test || split == Split::All)
        .enumerate()
        .filter(|(i, t)| match split {
            Split::All => true,
            Split::Test => !train_subset(t) || layout == Layout::Plain,
            Split::Train => train_subset(t) && !in_valid(t, *i),
            Split::Valid => train_subset(t) && in_valid(t, *i),
        })
        .map(|(_, t)| t)
        .collect();
    Ok((layout, selected))
}

fn check_same(path: &Path, a: &AudioInfo, rate: u32, channels: usize) -> Result<()> {
    if a.sample_rate != rate || a.channels != channels {
        return Err(Error::Mismatch {
            what: format!("{}: stem format", path.display()),
            expected: format!("{rate} Hz, {channels} channels"),
            got: format!("{} Hz, {} channels", a.sample_rate, a.channels),
        });
    }
    Ok(())
}

fn add_into(acc: &mut Vec<Vec<f32>>, x: &[Vec<f32>]) {
    if acc.is_empty() {
        *acc = x.to_vec();
        return;
    }
    for (a, b) in acc.iter_mut().zip(x) {
        if a.len() < b.len() {
            a.resize(b.len(), 0.0);
        }
        for (s, v) in a.iter_mut().zip(b) {
            *s += v;
        }
    }
}

/// Decodes a track's stems, optionally resampled to `rate`, all cut to the shortest stem.
pub fn load_stems(track: &Track, rate: Option<u32>) -> Result<Stems> {
    load(track, rate, false)
}

/// [`load_stems`], keeping the accompaniment's stems as well (for training augmentation).
pub fn load_stems_with_parts(track: &Track, rate: Option<u32>) -> Result<Stems> {
    load(track, rate, true)
}

fn load(track: &Track, rate: Option<u32>, keep_parts: bool) -> Result<Stems> {
    let mut parts = Vec::new();
    let (native, mut mixture, vocals, accompaniment) = match &track.source {
        TrackSource::Stem(path) => {
            let (info, mixture) = read_track(path, 0)?;
            let (vi, vocals) = read_track(path, 4)?;
            check_same(path, &vi, info.sample_rate, info.channels)?;
            let mut acc = Vec::new();
            for idx in 1..=3 {
                let (ai, a) = read_track(path, idx)?;
                check_same(path, &ai, info.sample_rate, info.channels)?;
                add_into(&mut acc, &a);
                if keep_parts {
                    parts.push(a);
                }
            }
            (info.sample_rate, mixture, vocals, acc)
        }
        TrackSource::ChannelPair(path) => {
            let (info, mut x) = read_all(path)?;
            if info.channels != 2 {
                return Err(Error::Mismatch {
                    what: format!("{}: channels (accompaniment left, vocals right)", path.display()),
                    expected: "2".into(),
                    got: info.channels.to_string(),
                });
            }
            // The karaoke backing is one stem: no parts to keep, so these tracks are not donors
            // of part remixing.
            let vocals = vec![x.pop().unwrap_or_default()];
            let acc = vec![x.pop().unwrap_or_default()];
            (info.sample_rate, Vec::new(), vocals, acc)
        }
        TrackSource::Files { mixture, vocals, accompaniment } => {
            let (vi, v) = read_all(vocals)?;
            let mut acc = Vec::new();
            for p in accompaniment {
                let (ai, a) = read_all(p)?;
                check_same(p, &ai, vi.sample_rate, vi.channels)?;
                add_into(&mut acc, &a);
                if keep_parts {
                    parts.push(a);
                }
            }
            let mix = match mixture {
                Some(p) => {
                    let (mi, m) = read_all(p)?;
                    check_same(p, &mi, vi.sample_rate, vi.channels)?;
                    m
                }
                None => Vec::new(),
            };
            (vi.sample_rate, mix, v, acc)
        }
    };
    if mixture.is_empty() {
        mixture = vocals.clone();
        add_into(&mut mixture, &accompaniment);
    }
    let mut stems =
        Stems { sample_rate: native, source_rate: native, mixture, vocals, accompaniment, accompaniment_parts: parts };
    let lens = [&stems.mixture, &stems.vocals, &stems.accompaniment].map(|s| s.first().map_or(0, Vec::len));
    let (len, longest) = (lens.iter().copied().min().unwrap_or(0), lens.iter().copied().max().unwrap_or(0));
    // Codec rounding differs by a few ms; a stem that is far shorter is a broken track, not one
    // to score or train on silently cut to its shortest stem.
    if longest - len > (native / 10) as usize {
        let secs = |n: usize| format!("{:.2} s", n as f64 / native as f64);
        return Err(Error::Mismatch {
            what: format!("track '{}': stem lengths", track.name),
            expected: "equal lengths (within 100 ms)".into(),
            got: format!("mixture {}, vocals {}, accompaniment {}", secs(lens[0]), secs(lens[1]), secs(lens[2])),
        });
    }
    for s in stems.signals_mut() {
        s.iter_mut().for_each(|c| c.truncate(len));
    }
    if let Some(rate) = rate {
        for s in stems.signals_mut() {
            *s = resample_all(s, native, rate)?;
        }
        stems.sample_rate = rate;
    }
    Ok(stems)
}

/// Brings a whole signal (`[channel][sample]`) to a model's rate exactly as separation does,
/// band-limited even when the rates are equal ([`Resampler::band_limited`]).
pub fn resample_all(x: &[Vec<f32>], from: u32, to: u32) -> Result<Vec<Vec<f32>>> {
    let mut r = Resampler::band_limited(from, to, x.len(), 1 << 14)?;
    let mut out = vec![Vec::new(); x.len()];
    let slices: Vec<&[f32]> = x.iter().map(Vec::as_slice).collect();
    r.process(&slices, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}
