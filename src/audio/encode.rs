//! Streaming, atomic WAV and FLAC encoding: push planar `f32` blocks in, get a complete file or
//! nothing. The file's extension picks the container: `.flac` is FLAC ([`super::flac`], 16 or 24
//! bits), anything else WAV.
//!
//! For WAV, hound writes the header (so the layout is hound's, byte for byte); the samples are then
//! interleaved and quantised a block at a time into a byte buffer and written straight to the
//! file, and the two size fields are patched at the end, which is several times faster than
//! hound's per-sample writes.
//!
//! Samples go to a hidden temporary file in the destination's folder (same filesystem, so the
//! final rename is atomic); [`AudioWriter::finish`] completes the RIFF header (hound 3.5), syncs
//! the data to disk and renames the file into place. Dropping a writer without `finish` — an
//! error, a panic, a cancelled run — removes the temporary file, so a half-written output never
//! appears under the real name. Without `overwrite`, the final step uses a hard link, which fails
//! if the name was taken in the meantime, instead of silently replacing a file created by someone
//! else after [`AudioWriter::create`] checked.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::flac::FlacEncoder;
use crate::{Error, Result};

/// Sample encoding of the WAV data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    /// 16-bit signed PCM: `round(x * 32768)` clamped to `[-32768, 32767]`.
    Int16,
    /// 24-bit signed PCM: `round(x * 8388608)` clamped to `[-8388608, 8388607]`.
    Int24,
    /// 32-bit IEEE float, written unchanged (no clamping).
    Float32,
}

impl SampleFormat {
    fn bytes(self) -> usize {
        self.bits() as usize / 8
    }

    fn bits(self) -> u16 {
        match self {
            SampleFormat::Int16 => 16,
            SampleFormat::Int24 => 24,
            SampleFormat::Float32 => 32,
        }
    }
}

/// Distinguishes temporary files of writers in the same process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Streaming WAV writer; see the module docs for the atomicity guarantees.
pub struct AudioWriter {
    path: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
    /// Header length in bytes (the data starts here). For WAV the data chunk's size field is the
    /// last four bytes of the header; for FLAC the header is rewritten whole at the end.
    header_len: u64,
    data_bytes: u64,
    /// Interleaved, encoded bytes of the block being written (WAV).
    scratch: Vec<u8>,
    /// `Some` when writing FLAC, with the block's interleaved integer samples.
    flac: Option<(FlacEncoder, Vec<i32>)>,
    channels: usize,
    format: SampleFormat,
    overwrite: bool,
    frames: u64,
    clipping: Clipping,
}

/// Samples an integer format could not hold: how many were clamped, and the largest magnitude
/// seen (so a user knows how much to lower the level).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Clipping {
    pub samples: u64,
    pub peak: f32,
}

impl AudioWriter {
    /// Starts writing `path` (through a temporary file beside it; nothing appears at `path` until
    /// [`finish`](Self::finish)). Fails with `Error::OutputExists` when `path` exists and
    /// `!overwrite`.
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: usize,
        format: SampleFormat,
        overwrite: bool,
    ) -> Result<Self> {
        let encode_err = |reason: String| Error::Encode { path: path.to_owned(), reason };
        let channels_u16 = u16::try_from(channels)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| encode_err(format!("cannot write {channels} channels (1..=65535)")))?;
        if sample_rate == 0 {
            return Err(encode_err("sample rate 0 Hz".into()));
        }
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::io(path, io::Error::new(io::ErrorKind::IsADirectory, "output path is a directory")));
            }
            Ok(_) if !overwrite => {
                return Err(Error::OutputExists { path: path.to_owned() });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let flac = if is_flac(path) {
            if format == SampleFormat::Float32 {
                return Err(encode_err("FLAC stores integer samples: use 16 or 24 bits".into()));
            }
            Some((FlacEncoder::new(sample_rate, channels, format.bits()).map_err(&encode_err)?, Vec::new()))
        } else {
            None
        };
        let file_name = path.file_name().ok_or_else(|| encode_err("the output path has no file name".into()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let temp = side_name(&dir.join(file_name), TEMP_SUFFIX);
        let file = OpenOptions::new().write(true).create_new(true).open(&temp).map_err(|e| Error::io(&temp, e))?;
        let spec = hound::WavSpec {
            channels: channels_u16,
            sample_rate,
            bits_per_sample: format.bits(),
            sample_format: match format {
                SampleFormat::Float32 => hound::SampleFormat::Float,
                _ => hound::SampleFormat::Int,
            },
        };
        // From here on `Drop` owns the cleanup of `temp`.
        let mut this = AudioWriter {
            path: path.to_owned(),
            temp,
            writer: None,
            header_len: 0,
            data_bytes: 0,
            scratch: Vec::new(),
            flac,
            channels,
            format,
            overwrite,
            frames: 0,
            clipping: Clipping::default(),
        };
        if let Some((encoder, _)) = &this.flac {
            // A placeholder of the header's length; `finish` writes the real one over it.
            let header = vec![0u8; encoder.header_len().map_err(&encode_err)?];
            let mut file = file;
            file.write_all(&header).map_err(|e| Error::io(&this.temp, e))?;
            this.header_len = header.len() as u64;
            this.writer = Some(BufWriter::with_capacity(1 << 16, file));
            return Ok(this);
        }
        // hound writes a complete header for zero samples; the file is then reopened to append.
        hound::WavWriter::new(BufWriter::new(file), spec)
            .and_then(hound::WavWriter::finalize)
            .map_err(|e| this.hound_err(e))?;
        let mut file = OpenOptions::new().write(true).open(&this.temp).map_err(|e| Error::io(&this.temp, e))?;
        this.header_len = file.seek(SeekFrom::End(0)).map_err(|e| Error::io(&this.temp, e))?;
        this.writer = Some(BufWriter::with_capacity(1 << 16, file));
        Ok(this)
    }

    /// Appends one block: `planar[ch]` holds channel `ch`, all slices the same length. Integer
    /// formats clamp to `[-1, 1)` and round to nearest; NaN or infinite samples are refused
    /// (`Error::NonFiniteSample`, with the frame index counted from the start of the file).
    pub fn write(&mut self, planar: &[&[f32]]) -> Result<()> {
        if planar.len() != self.channels {
            return Err(Error::Mismatch {
                what: format!("{}: channels in the written block", self.path.display()),
                expected: self.channels.to_string(),
                got: planar.len().to_string(),
            });
        }
        let frames = planar.first().map_or(0, |c| c.len());
        if let Some(bad) = planar.iter().find(|c| c.len() != frames) {
            return Err(Error::Mismatch {
                what: format!("{}: frames per channel in the written block", self.path.display()),
                expected: frames.to_string(),
                got: bad.len().to_string(),
            });
        }
        // Check before writing anything, so a refused block leaves no partial frames behind.
        for (channel, samples) in planar.iter().enumerate() {
            if crate::dsp::simd::all_finite(samples) {
                continue;
            }
            if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFiniteSample { path: self.path.clone(), channel, frame: self.frames + i as u64 });
            }
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Encode { path: self.path.clone(), reason: "writer is closed".into() });
        };
        if self.format != SampleFormat::Float32 {
            self.clipping.count(planar, self.format.bits());
        }
        if let Some((encoder, ints)) = self.flac.as_mut() {
            let bits = self.format.bits() as u32 - 1;
            ints.resize(frames * self.channels, 0);
            for (c, channel) in planar.iter().enumerate() {
                for (o, &x) in ints[c..].iter_mut().step_by(self.channels).zip(channel.iter()) {
                    *o = quantise(x, bits);
                }
            }
            let temp = &self.temp;
            encoder
                .push(ints, &mut |bytes| writer.write_all(bytes))
                .map_err(|reason| Error::Encode { path: temp.clone(), reason })?;
            self.frames += frames as u64;
            return Ok(());
        }
        let bytes = frames * self.channels * self.format.bytes();
        if self.data_bytes + bytes as u64 > u32::MAX as u64 - self.header_len {
            return Err(Error::Encode { path: self.path.clone(), reason: "WAV data would exceed 4 GiB".into() });
        }
        self.scratch.resize(bytes, 0);
        match self.format {
            SampleFormat::Int16 => {
                interleave::<2>(planar, &mut self.scratch, |x| (quantise(x, 15) as i16).to_le_bytes())
            }
            SampleFormat::Int24 => interleave::<3>(planar, &mut self.scratch, |x| {
                let b = quantise(x, 23).to_le_bytes();
                [b[0], b[1], b[2]]
            }),
            SampleFormat::Float32 => interleave::<4>(planar, &mut self.scratch, f32::to_le_bytes),
        }
        writer.write_all(&self.scratch).map_err(|e| Error::io(&self.temp, e))?;
        self.data_bytes += bytes as u64;
        self.frames += frames as u64;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Samples clamped so far to fit the integer format (none for float).
    pub fn clipping(&self) -> Clipping {
        self.clipping
    }

    /// Completes the header, syncs the data and moves the file to its final name.
    pub fn finish(self) -> Result<()> {
        commit_together(vec![self.seal()?])
    }

    /// Completes the header and syncs the data, leaving the file under its temporary name for
    /// [`commit_together`].
    pub fn seal(mut self) -> Result<Sealed> {
        let Some(writer) = self.writer.take() else {
            return Err(Error::Encode { path: self.path.clone(), reason: "writer is closed".into() });
        };
        // The RIFF size (everything after its own field) and the data chunk's size, as hound's
        // finalize would write them; then fsync so the rename cannot expose a file whose data is
        // still only in the page cache after a crash.
        let riff_size = (self.header_len - 8 + self.data_bytes) as u32;
        let data_size = self.data_bytes as u32;
        let header_len = self.header_len;
        if let Some((mut encoder, _)) = self.flac.take() {
            let mut writer = writer;
            let header = encoder
                .finish(&mut |bytes| writer.write_all(bytes))
                .map_err(|reason| Error::Encode { path: self.temp.clone(), reason })?;
            if header.len() as u64 != header_len {
                return Err(Error::Encode { path: self.path.clone(), reason: "the FLAC header changed length".into() });
            }
            writer
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|mut f| {
                    f.seek(SeekFrom::Start(0))?;
                    f.write_all(&header)?;
                    f.sync_all()
                })
                .map_err(|e| Error::io(&self.temp, e))?;
            return Ok(self.into_sealed());
        }
        writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(4))?;
                f.write_all(&riff_size.to_le_bytes())?;
                f.seek(SeekFrom::Start(header_len - 4))?;
                f.write_all(&data_size.to_le_bytes())?;
                f.sync_all()
            })
            .map_err(|e| Error::io(&self.temp, e))?;
        Ok(self.into_sealed())
    }

    fn into_sealed(mut self) -> Sealed {
        // The temporary file now belongs to the `Sealed` (this writer's Drop must not remove it).
        let temp = std::mem::take(&mut self.temp);
        Sealed { temp, path: self.path.clone(), overwrite: self.overwrite }
    }

    fn hound_err(&self, e: hound::Error) -> Error {
        match e {
            hound::Error::IoError(io) => Error::io(&self.temp, io),
            other => Error::Encode { path: self.path.clone(), reason: other.to_string() },
        }
    }
}

impl Drop for AudioWriter {
    fn drop(&mut self) {
        // Close the file before unlinking it (needed on Windows; harmless elsewhere). hound's own
        // Drop tries to finalize the header; that is wasted but harmless work on a file we delete.
        drop(self.writer.take());
        if !self.temp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A finished output, synced under its temporary name beside `path`, waiting for
/// [`commit_together`]. Dropping it removes the temporary file.
pub struct Sealed {
    temp: PathBuf,
    path: PathBuf,
    overwrite: bool,
}

impl Sealed {
    /// Takes charge of a finished temporary file written by other means (the picture).
    pub fn new(temp: PathBuf, path: PathBuf, overwrite: bool) -> Self {
        Sealed { temp, path, overwrite }
    }
}

impl Drop for Sealed {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.temp);
    }
}

/// A hidden name beside `path` for a temporary or backup file of this process:
/// `.<name>.<pid>-<n>.<suffix>`. [`sweep_stale`] recognises these names.
pub fn side_name(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.{}-{n}.{suffix}", std::process::id()))
}

/// Suffix of temporary outputs, and of the previous outputs set aside while `--overwrite`
/// commits new ones.
const TEMP_SUFFIX: &str = "voxmask-tmp";
const BACKUP_SUFFIX: &str = "voxmask-old";

/// Moves every sealed output to its final name, all or none: a folder ends up holding all the
/// new outputs, or (after an error, which is returned) exactly what it held before. Outputs
/// replaced under `overwrite` are first set aside under a backup name and restored if a later
/// step fails; without `overwrite` a name that exists (or appears meanwhile) fails the commit.
pub fn commit_together(outputs: Vec<Sealed>) -> Result<()> {
    for o in outputs.iter().filter(|o| !o.overwrite) {
        if fs::symlink_metadata(&o.path).is_ok() {
            return Err(Error::OutputExists { path: o.path.clone() });
        }
    }
    let mut backups: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut placed: Vec<PathBuf> = Vec::new();
    let mut result = Ok(());
    for o in &outputs {
        if let Err(e) = place(o, &mut backups) {
            result = Err(e);
            break;
        }
        placed.push(o.path.clone());
    }
    if result.is_err() {
        for p in &placed {
            let _ = fs::remove_file(p);
        }
        for (original, backup) in &backups {
            let _ = fs::rename(backup, original);
        }
        return result;
    }
    for (_, backup) in &backups {
        let _ = fs::remove_file(backup);
    }
    // Make the renames durable too (best effort: not every filesystem syncs folders).
    if let Some(dir) = outputs.first().and_then(|o| o.path.parent()).filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
    // Each Sealed's Drop removes its temporary name (a no-op after a rename).
}

fn place(o: &Sealed, backups: &mut Vec<(PathBuf, PathBuf)>) -> Result<()> {
    if o.overwrite {
        if fs::symlink_metadata(&o.path).is_ok() {
            let backup = side_name(&o.path, BACKUP_SUFFIX);
            fs::rename(&o.path, &backup).map_err(|e| Error::io(&o.path, e))?;
            backups.push((o.path.clone(), backup));
        }
        return fs::rename(&o.temp, &o.path).map_err(|e| Error::io(&o.path, e));
    }
    // A hard link fails if the name was taken since the check, where a rename would replace a
    // file someone else just created.
    match fs::hard_link(&o.temp, &o.path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::OutputExists { path: o.path.clone() }),
        // Filesystems without hard links: a checked rename is the best we can do.
        Err(_) if !o.path.exists() => fs::rename(&o.temp, &o.path).map_err(|e| Error::io(&o.path, e)),
        Err(_) => Err(Error::OutputExists { path: o.path.clone() }),
    }
}

/// Removes the temporary files that runs which no longer exist (killed, or a crashed machine)
/// left in `dir`, and puts back outputs such a run had set aside while replacing them. Returns
/// one line per file handled. Call it holding the folder's lock ([`lock_folder`]).
pub fn sweep_stale(dir: &Path) -> Vec<String> {
    let mut notes = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return notes };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((original, pid, suffix)) = parse_side_name(&name) else { continue };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue; // ours, or a live run's
        }
        let path = entry.path();
        let original_path = dir.join(original);
        if suffix == BACKUP_SUFFIX && fs::symlink_metadata(&original_path).is_err() {
            if fs::rename(&path, &original_path).is_ok() {
                notes.push(format!("restored {} set aside by an interrupted run (pid {pid})", original_path.display()));
            }
        } else if fs::remove_file(&path).is_ok() {
            notes.push(format!("removed {} left by an interrupted run (pid {pid})", path.display()));
        }
    }
    notes
}

/// `.<name>.<pid>-<n>.<suffix>[.png]` → (name, pid, suffix).
fn parse_side_name(file: &str) -> Option<(&str, u32, &str)> {
    let rest = file.strip_prefix('.')?;
    let rest = rest.strip_suffix(".png").unwrap_or(rest);
    let (rest, suffix) = rest.rsplit_once('.')?;
    if suffix != TEMP_SUFFIX && suffix != BACKUP_SUFFIX {
        return None;
    }
    let (original, tag) = rest.rsplit_once('.')?;
    let pid = tag.split_once('-')?.0.parse().ok()?;
    Some((original, pid, suffix))
}

/// Holds an exclusive lock on `dir` (flock on the folder itself, so no lock file is left behind)
/// until dropped: runs writing the same output folder take turns. `None` where the filesystem
/// cannot lock; the outputs are still committed atomically, only not serialised.
pub fn lock_folder(dir: &Path) -> Option<File> {
    let handle = File::open(dir).ok()?;
    handle.lock().ok()?;
    Some(handle)
}

/// Whether `path` names a FLAC file (by its extension, any case).
pub fn is_flac(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("flac"))
}

impl Clipping {
    /// Adds another writer's count (the peak is the larger one).
    pub fn add(&mut self, other: Clipping) {
        self.samples += other.samples;
        self.peak = self.peak.max(other.peak);
    }

    /// Counts the samples of `planar` that [`quantise`] clamps for `bits`-bit integers: those
    /// that round outside `[-2^(bits-1), 2^(bits-1) - 1]`.
    fn count(&mut self, planar: &[&[f32]], bits: u16) {
        let full = (1u32 << (bits - 1)) as f32;
        let (top, bottom) = ((full - 0.5) / full, -(full + 0.5) / full);
        for channel in planar {
            for &x in channel.iter() {
                if x >= top || x < bottom {
                    self.samples += 1;
                    self.peak = self.peak.max(x.abs());
                }
            }
        }
    }
}

/// `round(x * 2^bits)` clamped to the signed range of `bits + 1` bits, i.e. `x` clamped to
/// `[-1, 1 - 2^-bits]`. Scaling by a power of two is exact in `f32` and every bound is an `f32`
/// integer below 2^24, so this is the exact result.
#[inline]
fn quantise(x: f32, bits: u32) -> i32 {
    let full = (1u32 << bits) as f32;
    (x * full).round().clamp(-full, full - 1.0) as i32
}

/// Interleaves `planar` into `out` (frame by frame, channel by channel), `N` bytes per sample.
fn interleave<const N: usize>(planar: &[&[f32]], out: &mut [u8], encode: impl Fn(f32) -> [u8; N]) {
    let channels = planar.len();
    if channels == 2 {
        let (l, r) = (planar[0], planar[1]);
        for ((o, &a), &b) in out.chunks_exact_mut(2 * N).zip(l).zip(r) {
            o[..N].copy_from_slice(&encode(a));
            o[N..].copy_from_slice(&encode(b));
        }
        return;
    }
    for (c, channel) in planar.iter().enumerate() {
        for (o, &x) in out.chunks_exact_mut(channels * N).zip(channel.iter()) {
            o[c * N..(c + 1) * N].copy_from_slice(&encode(x));
        }
    }
}
