//! Streaming, atomic WAV encoding: push planar `f32` blocks in, get a complete file or nothing.
//!
//! Samples go to a hidden temporary file in the destination's folder (same filesystem, so the
//! final rename is atomic); [`AudioWriter::finish`] completes the RIFF header (hound 3.5), syncs
//! the data to disk and renames the file into place. Dropping a writer without `finish` — an
//! error, a panic, a cancelled run — removes the temporary file, so a half-written output never
//! appears under the real name. Without `overwrite`, the final step uses a hard link, which fails
//! if the name was taken in the meantime, instead of silently replacing a file created by someone
//! else after [`AudioWriter::create`] checked.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    channels: usize,
    format: SampleFormat,
    overwrite: bool,
    frames: u64,
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
        let encode_err = |reason: String| Error::Encode {
            path: path.to_owned(),
            reason,
        };
        let channels_u16 = u16::try_from(channels)
            .ok()
            .filter(|&c| c > 0)
            .ok_or_else(|| encode_err(format!("cannot write {channels} channels (1..=65535)")))?;
        if sample_rate == 0 {
            return Err(encode_err("sample rate 0 Hz".into()));
        }
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                return Err(Error::io(
                    path,
                    io::Error::new(io::ErrorKind::IsADirectory, "output path is a directory"),
                ));
            }
            Ok(_) if !overwrite => {
                return Err(Error::OutputExists {
                    path: path.to_owned(),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let file_name = path
            .file_name()
            .ok_or_else(|| encode_err("the output path has no file name".into()))?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let temp = dir.join(format!(
            ".{}.{}-{}.voxmask-tmp",
            file_name.to_string_lossy(),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(|e| Error::io(&temp, e))?;
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
            channels,
            format,
            overwrite,
            frames: 0,
        };
        let writer = hound::WavWriter::new(BufWriter::with_capacity(1 << 16, file), spec)
            .map_err(|e| this.hound_err(e))?;
        this.writer = Some(writer);
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
                what: format!(
                    "{}: frames per channel in the written block",
                    self.path.display()
                ),
                expected: frames.to_string(),
                got: bad.len().to_string(),
            });
        }
        // Check before writing anything, so a refused block leaves no partial frames behind.
        for (channel, samples) in planar.iter().enumerate() {
            if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFiniteSample {
                    path: self.path.clone(),
                    channel,
                    frame: self.frames + i as u64,
                });
            }
        }
        let Some(writer) = self.writer.as_mut() else {
            return Err(Error::Encode {
                path: self.path.clone(),
                reason: "writer is closed".into(),
            });
        };
        let result = match self.format {
            SampleFormat::Int16 => write_frames(writer, planar, frames, |x| quantise(x, 15) as i16),
            SampleFormat::Int24 => write_frames(writer, planar, frames, |x| quantise(x, 23)),
            SampleFormat::Float32 => write_frames(writer, planar, frames, |x| x),
        };
        result.map_err(|e| self.hound_err(e))?;
        self.frames += frames as u64;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Completes the header, syncs the data and moves the file to its final name.
    pub fn finish(mut self) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return Err(Error::Encode {
                path: self.path.clone(),
                reason: "writer is closed".into(),
            });
        };
        writer.finalize().map_err(|e| self.hound_err(e))?;
        // hound's finalize flushed through to the file; fsync so the rename cannot expose a file
        // whose data is still only in the page cache after a crash.
        File::open(&self.temp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(&self.temp, e))?;
        if self.overwrite {
            fs::rename(&self.temp, &self.path).map_err(|e| Error::io(&self.path, e))?;
        } else {
            match fs::hard_link(&self.temp, &self.path) {
                Ok(()) => {
                    // The data is safely under its final name; the temporary name goes in Drop.
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::OutputExists {
                        path: self.path.clone(),
                    });
                }
                // Filesystems without hard links: a checked rename is the best we can do.
                Err(_) if !self.path.exists() => {
                    fs::rename(&self.temp, &self.path).map_err(|e| Error::io(&self.path, e))?;
                }
                Err(_) => {
                    return Err(Error::OutputExists {
                        path: self.path.clone(),
                    });
                }
            }
        }
        Ok(())
        // Drop removes `temp` (a no-op after a rename).
    }

    fn hound_err(&self, e: hound::Error) -> Error {
        match e {
            hound::Error::IoError(io) => Error::io(&self.temp, io),
            other => Error::Encode {
                path: self.path.clone(),
                reason: other.to_string(),
            },
        }
    }
}

impl Drop for AudioWriter {
    fn drop(&mut self) {
        // Close the file before unlinking it (needed on Windows; harmless elsewhere). hound's own
        // Drop tries to finalize the header; that is wasted but harmless work on a file we delete.
        drop(self.writer.take());
        let _ = fs::remove_file(&self.temp);
    }
}

/// `round(x * 2^bits)` clamped to the signed range of `bits + 1` bits, i.e. `x` clamped to
/// `[-1, 1 - 2^-bits]`.
fn quantise(x: f32, bits: u32) -> i32 {
    let full = (1i64 << bits) as f64;
    (f64::from(x) * full).round().clamp(-full, full - 1.0) as i32
}

fn write_frames<S: hound::Sample + Copy>(
    writer: &mut hound::WavWriter<BufWriter<File>>,
    planar: &[&[f32]],
    frames: usize,
    convert: impl Fn(f32) -> S,
) -> hound::Result<()> {
    for i in 0..frames {
        for channel in planar {
            writer.write_sample(convert(channel[i]))?;
        }
    }
    Ok(())
}
