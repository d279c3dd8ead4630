//! The offline pipeline: decode a file chunk by chunk, separate it with a [`Separator`], and
//! write `vocals` and `accompaniment` (or one of them) atomically, as WAV or FLAC, with a
//! picture of the separation when asked.
//! Memory stays bounded by the chunk size whatever the file's length.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{Separator, SeparatorConfig};
use crate::audio::decode::{AudioInfo, AudioReader};
use crate::audio::encode::{AudioWriter, Clipping, SampleFormat, commit_together, lock_folder, sweep_stale};
use crate::dsp::MaskRule;
use crate::model::Model;
use crate::plot::spectrogram::SeparationPicture;
use crate::{Error, Result};

/// Frames decoded per step (per channel); bounds memory together with the engine's window.
const DECODE_CHUNK_FRAMES: usize = 1 << 16;
/// Frames handed to the encoders at a time.
const WRITE_CHUNK_FRAMES: usize = 1 << 14;

/// What to do for one file.
#[derive(Debug, Clone)]
pub struct SeparateOptions {
    /// Mask rule; `None` uses the model's.
    pub mask: Option<MaskRule>,
    /// Output sample format; `None` keeps the input's depth (float for lossy inputs).
    pub format: Option<SampleFormat>,
    /// Replace existing outputs.
    pub overwrite: bool,
    /// Frames finalised per model call; `None` picks a size from the model's bins.
    pub block_frames: Option<usize>,
    /// Folder name for the stems under the output folder; `None` uses [`output_stem_name`].
    pub stem_name: Option<String>,
    /// File type of the stems.
    pub container: Container,
    /// Which stems to write.
    pub stems: StemSelection,
    /// Also draw `separation.png` beside the stems.
    pub plot: bool,
    /// Set (to the signal's number) when the run should stop: the file in progress is abandoned
    /// with [`Error::Interrupted`] and none of its outputs are kept.
    pub interrupt: Option<Arc<AtomicUsize>>,
}

impl Default for SeparateOptions {
    fn default() -> Self {
        SeparateOptions {
            mask: None,
            format: None,
            overwrite: false,
            block_frames: None,
            stem_name: None,
            container: Container::Wav,
            stems: StemSelection::Both,
            plot: false,
            interrupt: None,
        }
    }
}

/// Which stems `separate` writes (karaoke makers want only the accompaniment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StemSelection {
    Both,
    Vocals,
    Accompaniment,
}

impl StemSelection {
    fn vocals(self) -> bool {
        self != StemSelection::Accompaniment
    }

    fn accompaniment(self) -> bool {
        self != StemSelection::Vocals
    }
}

/// File type of the stems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    Wav,
    /// Lossless FLAC, 16 or 24 bits.
    Flac,
}

impl Container {
    pub fn extension(self) -> &'static str {
        match self {
            Container::Wav => "wav",
            Container::Flac => "flac",
        }
    }
}

/// Audio as `[channel][sample]`.
pub type Planar = Vec<Vec<f32>>;

/// Receives each block of the two stems as they become ready: `(vocals, accompaniment)`.
type StemSink<'a> = dyn FnMut(&[&[f32]], &[&[f32]]) -> Result<()> + 'a;

/// The picture `--plot` draws beside the stems.
pub const PICTURE_FILE: &str = "separation.png";

/// What a separation produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeparationReport {
    pub input: PathBuf,
    /// The stems written (`None` for a stem not asked for).
    pub vocals: Option<PathBuf>,
    pub accompaniment: Option<PathBuf>,
    /// The picture, with `--plot`.
    pub picture: Option<PathBuf>,
    /// Samples clamped to fit an integer format, over both stems.
    pub clipping: Clipping,
    /// Things done on the way worth a note (stale temporaries of interrupted runs removed).
    pub notes: Vec<String>,
    pub sample_rate: u32,
    pub channels: usize,
    pub frames: u64,
    pub audio_seconds: f64,
    pub wall_seconds: f64,
}

/// The folder name for an input's stems: its file name without the extension (and without
/// MUSDB18's `.stem` infix).
pub fn output_stem_name(input: &Path) -> String {
    let name = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "audio".into());
    let base = match name.rfind('.') {
        Some(i) if i > 0 => &name[..i],
        _ => name.as_str(),
    };
    base.strip_suffix(".stem").unwrap_or(base).to_string()
}

/// Paths of the two stems in the folder `name` under `out_dir`.
pub fn output_paths(out_dir: &Path, name: &str, container: Container) -> (PathBuf, PathBuf) {
    let dir = out_dir.join(name);
    let ext = container.extension();
    (dir.join(format!("vocals.{ext}")), dir.join(format!("accompaniment.{ext}")))
}

/// Folder names for a batch of inputs: each input's [`output_stem_name`], made unique within
/// the batch (the file name with its extension, then a numeric suffix) so that `song.mp3` and
/// `song.flac` do not write over each other.
pub fn unique_stem_names(inputs: &[PathBuf]) -> Vec<String> {
    let base: Vec<String> = inputs.iter().map(|p| output_stem_name(p)).collect();
    let mut names: Vec<String> = inputs
        .iter()
        .zip(&base)
        .map(|(p, b)| {
            if base.iter().filter(|o| *o == b).count() > 1 {
                p.file_name().map_or_else(|| b.clone(), |n| n.to_string_lossy().into_owned())
            } else {
                b.clone()
            }
        })
        .collect();
    for i in 0..names.len() {
        let mut k = 2;
        let original = names[i].clone();
        while names[..i].contains(&names[i]) {
            names[i] = format!("{original}-{k}");
            k += 1;
        }
    }
    names
}

/// The output format that keeps the input's depth: float for lossy inputs in WAV, 24 bits in
/// FLAC (which stores integers only).
pub fn default_format(info: &AudioInfo, container: Container) -> SampleFormat {
    match (info.lossy, info.bits_per_sample, container) {
        (false, Some(b), _) if b <= 16 => SampleFormat::Int16,
        (false, Some(b), _) if b <= 24 => SampleFormat::Int24,
        (_, _, Container::Flac) => SampleFormat::Int24,
        _ => SampleFormat::Float32,
    }
}

/// Separates one file; `progress(done, total)` is called with input frames processed.
pub fn separate_file(
    model: &mut Model,
    input: &Path,
    out_dir: &Path,
    opts: &SeparateOptions,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<SeparationReport> {
    let started = Instant::now();
    let mut reader = AudioReader::open(input)?;
    let info = reader.info().clone();
    let name = opts.stem_name.clone().unwrap_or_else(|| output_stem_name(input));
    let (vocals_path, accomp_path) = output_paths(out_dir, &name, opts.container);
    let picture_path = opts.plot.then(|| out_dir.join(&name).join(PICTURE_FILE));
    let wanted: Vec<&Path> = [
        opts.stems.vocals().then_some(vocals_path.as_path()),
        opts.stems.accompaniment().then_some(accomp_path.as_path()),
    ]
    .into_iter()
    .flatten()
    .chain(picture_path.as_deref())
    .collect();
    refuse_to_overwrite_input(input, &wanted)?;
    if let Some(p) = picture_path.as_deref().filter(|p| !opts.overwrite && p.exists()) {
        return Err(Error::OutputExists { path: p.to_path_buf() });
    }
    let format = opts.format.unwrap_or_else(|| default_format(&info, opts.container));
    let dir = vocals_path.parent().unwrap_or(out_dir);
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Runs writing the same folder take turns, so their stems are never mixed; holding the lock,
    // whatever temporaries are left there belong to runs that died.
    let _lock = lock_folder(dir);
    let notes = sweep_stale(dir);
    let create = |wanted: bool, path: &Path| -> Result<Option<AudioWriter>> {
        wanted.then(|| AudioWriter::create(path, info.sample_rate, info.channels, format, opts.overwrite)).transpose()
    };
    let mut vocals_out = create(opts.stems.vocals(), &vocals_path)?;
    let mut accomp_out = create(opts.stems.accompaniment(), &accomp_path)?;
    let mut picture = opts.plot.then(|| SeparationPicture::new(info.sample_rate));
    let mut sink = |v: &[&[f32]], a: &[&[f32]]| -> Result<()> {
        if let Some(w) = vocals_out.as_mut() {
            w.write(v)?;
        }
        if let Some(w) = accomp_out.as_mut() {
            w.write(a)?;
        }
        if let Some(p) = picture.as_mut() {
            p.push(v, a);
        }
        Ok(())
    };

    let channels = info.channels;
    let config = SeparatorConfig { length_hint: info.frames, ..separator_config(opts, channels, info.sample_rate) };
    let mut separator = Separator::new(&mut *model, &config)?;
    let (mut vocals, mut accomp) = (vec![Vec::new(); channels], vec![Vec::new(); channels]);
    let mut chunk: Vec<Vec<f32>> = vec![Vec::with_capacity(DECODE_CHUNK_FRAMES); channels];
    let mut done = 0u64;
    // Inference failures and unusable model output concern this input: say which (the model
    // alone, or an output file that will never exist, would send the user looking elsewhere).
    let attribute = |e: Error| match e {
        Error::Backend(msg) => Error::Backend(format!("{}: {msg}", input.display())),
        Error::NonFiniteSample { channel, frame, .. } => Error::Backend(format!(
            "{}: the separation produced a non-finite sample (NaN or Inf) in channel {channel} at frame {frame}: \
             the model's output is not usable on this input",
            input.display()
        )),
        other => other,
    };
    loop {
        chunk.iter_mut().for_each(Vec::clear);
        let n = reader.read_into(&mut chunk, DECODE_CHUNK_FRAMES)?;
        if n == 0 {
            break;
        }
        let slices: Vec<&[f32]> = chunk.iter().map(Vec::as_slice).collect();
        separator.push(&slices).map_err(&attribute)?;
        write_ready(&mut separator, &mut vocals, &mut accomp, &mut sink).map_err(&attribute)?;
        done += n as u64;
        progress(done, info.frames);
        if opts.interrupt.as_ref().is_some_and(|i| i.load(Ordering::Relaxed) != 0) {
            // Returning drops the writers, which removes their temporary files.
            return Err(Error::Interrupted { path: input.to_path_buf() });
        }
    }
    if done == 0 {
        return Err(Error::EmptyAudio { path: input.to_path_buf() });
    }
    separator.end_input().map_err(&attribute)?;
    write_ready(&mut separator, &mut vocals, &mut accomp, &mut sink).map_err(&attribute)?;
    let mut clipping = Clipping::default();
    for w in vocals_out.iter().chain(&accomp_out) {
        clipping.add(w.clipping());
    }
    let mut sealed = Vec::new();
    for w in vocals_out.into_iter().chain(accomp_out) {
        sealed.push(w.seal()?);
    }
    if let (Some(p), Some(path)) = (picture.as_mut(), picture_path.as_deref()) {
        let title = format!(
            "{} - {}",
            input.file_name().map_or_else(|| input.display().to_string(), |n| n.to_string_lossy().into_owned()),
            model.path().display()
        );
        sealed.push(p.draw(path, &title, opts.overwrite)?);
    }
    // Both stems (and the picture) appear together or not at all.
    commit_together(sealed)?;
    Ok(SeparationReport {
        input: input.to_path_buf(),
        vocals: opts.stems.vocals().then_some(vocals_path),
        accompaniment: opts.stems.accompaniment().then_some(accomp_path),
        picture: picture_path,
        clipping,
        notes,
        sample_rate: info.sample_rate,
        channels,
        frames: done,
        audio_seconds: done as f64 / info.sample_rate as f64,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Separates audio already in memory (`[channel][sample]` at `sample_rate`) exactly as
/// [`separate_file`] would separate a file holding it (same chunking, resampling and band split),
/// returning `(vocals, accompaniment)` of the input's length. `voxmask eval` scores this.
pub fn separate_planar(
    model: &mut Model,
    audio: &[Vec<f32>],
    sample_rate: u32,
    opts: &SeparateOptions,
) -> Result<(Planar, Planar)> {
    let channels = audio.len();
    let len = audio.first().map_or(0, Vec::len);
    if channels == 0 || len == 0 {
        return Err(Error::InvalidArgument("separate_planar: no audio samples".into()));
    }
    if let Some(c) = audio.iter().position(|c| c.len() != len) {
        return Err(Error::Mismatch {
            what: format!("separate_planar: channel {c} length"),
            expected: format!("{len} samples"),
            got: audio[c].len().to_string(),
        });
    }
    let config = SeparatorConfig { length_hint: Some(len as u64), ..separator_config(opts, channels, sample_rate) };
    let mut separator = Separator::new(model, &config)?;
    let mut vocals: Vec<Vec<f32>> = vec![Vec::with_capacity(len); channels];
    let mut accomp: Vec<Vec<f32>> = vec![Vec::with_capacity(len); channels];
    let slices: Vec<&[f32]> = audio.iter().map(Vec::as_slice).collect();
    separator.process(&slices, &mut vocals, &mut accomp)?;
    separator.finish(&mut vocals, &mut accomp)?;
    Ok((vocals, accomp))
}

/// The separator configuration of `opts` for `channels` channels at `sample_rate` Hz.
fn separator_config(opts: &SeparateOptions, channels: usize, sample_rate: u32) -> SeparatorConfig {
    SeparatorConfig {
        rule: opts.mask,
        block_frames: opts.block_frames,
        max_chunk: DECODE_CHUNK_FRAMES,
        ..SeparatorConfig::new(channels, sample_rate)
    }
}

/// Hands every ready frame's stems to `sink` in pieces, so the encoders' buffers stay small and
/// in cache (one model call makes half a million frames ready at once).
fn write_ready(
    separator: &mut Separator<&mut Model>,
    vocals: &mut [Vec<f32>],
    accomp: &mut [Vec<f32>],
    sink: &mut StemSink,
) -> Result<()> {
    loop {
        vocals.iter_mut().chain(accomp.iter_mut()).for_each(Vec::clear);
        if separator.pull(vocals, accomp, WRITE_CHUNK_FRAMES)? == 0 {
            return Ok(());
        }
        let v: Vec<&[f32]> = vocals.iter().map(Vec::as_slice).collect();
        let a: Vec<&[f32]> = accomp.iter().map(Vec::as_slice).collect();
        sink(&v, &a)?;
    }
}

fn refuse_to_overwrite_input(input: &Path, outputs: &[&Path]) -> Result<()> {
    let Ok(input_real) = input.canonicalize() else { return Ok(()) };
    for out in outputs {
        if out.canonicalize().is_ok_and(|o| o == input_real) {
            return Err(Error::InvalidArgument(format!(
                "{}: output {} would overwrite the input; choose another output folder",
                input.display(),
                out.display()
            )));
        }
    }
    Ok(())
}
