//! Streaming audio decoding: a pull reader that hands out de-interleaved `f32` frames a chunk at a
//! time, so an hour of stereo never has to sit in memory.
//!
//! Built on symphonia 0.6 (WAV 16/24-bit int and 32-bit float, FLAC, MP3, Ogg/Vorbis, M4A/AAC and
//! MUSDB18 `.stem.mp4`, which is an MP4 holding five AAC tracks). Encoder delay and padding are
//! removed so that decoded audio lines up sample-exactly with what went into the encoder:
//!
//! - MP3 (LAME/Xing "Info" tag) and Ogg/Vorbis (granule positions): symphonia's demuxer marks the
//!   priming and padding frames on each packet and the decoder drops them (gapless mode).
//! - MP4/M4A: symphonia 0.6 parses the edit list (ISO/IEC 14496-12 §8.6.6, `elst`) but does not
//!   apply it, and its AAC decoder emits every frame of every packet, priming included. We read the
//!   edit list ourselves (`super::mp4`) and drop `media_time` leading frames, then keep the edit's
//!   duration. Without this an AAC stream comes out too long by its priming + padding (2048 + 141
//!   frames for the MUSDB18 previews: 302080 decoded, 299891 kept).
//! - MP3 without a LAME/Xing tag carries no gapless information; it decodes with the encoder's
//!   delay left in (see the tests for the measured residual).
//!
//! Damaged packets in lossy streams: symphonia reports a `DecodeError` (or a bitstream overrun, or
//! an "unsupported feature" that is really garbage) for a packet it cannot decode: an MP3 frame
//! with broken side info, an AAC frame with a bad bitstream. A player would skip it; for
//! separation the timeline matters more than the glitch, so a damaged packet is replaced by
//! silence of the packet's duration, at most [`MAX_DAMAGED_PACKETS`] times per stream, after which
//! the file is reported as corrupt ([`AudioReader::damaged_packets`] tells the caller how many were
//! concealed). Lossless streams (PCM, FLAC) never conceal: the first damaged packet is an error,
//! because their whole point is bit-exact samples. Damage the demuxer sees (an Ogg page CRC
//! mismatch, a broken MP4 sample table) is always an error: the demuxer cannot say how much audio
//! was lost, so concealing it would shift everything after it.
//!
//! Robustness: every symphonia call runs under `catch_unwind`, so a panic inside a third-party
//! decoder on hostile input turns into `Error::CorruptAudio` instead of taking the process down.

use std::fs::File;
use std::io::{self, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known::*;
use symphonia::core::codecs::audio::{AudioCodecId, AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::{MediaSource, MediaSourceStream, MediaSourceStreamOptions};

use super::mp4::mp4_edits;
use super::streamed_wav::StreamedWav;
use symphonia::core::meta::MetadataOptions;

use crate::{Error, Result};

/// Lowest sample rate voxmask accepts, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate voxmask accepts, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 192_000;
/// Damaged packets a lossy stream may contain (each replaced by silence) before it counts as corrupt.
pub const MAX_DAMAGED_PACKETS: usize = 8;
/// Frames [`read_all`] pulls per call.
const READ_ALL_CHUNK: usize = 1 << 16;
/// A damaged packet's silence is capped at this many frames, so a corrupt duration field cannot
/// make us allocate without bound.
const MAX_SILENCE_FRAMES: u64 = 1 << 16;
/// WAV data chunks at least this large are treated as "size unknown" (streamed WAVs are written
/// with placeholder sizes near `u32::MAX`), so their length is not checked.
const WAV_PLACEHOLDER_BYTES: u64 = 0xFFFF_FF00;

/// What a decoded stream is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInfo {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channel count (>= 1).
    pub channels: usize,
    /// Frames the reader will deliver, after delay/padding trimming, when the container states it.
    /// Exact for WAV, FLAC, Ogg and MP4 (edit list); for MP3 it comes from the Xing/VBRI tag or,
    /// without one, is symphonia's estimate from the bitrate.
    pub frames: Option<u64>,
    /// Codec short name as symphonia reports it ("pcm_s16le", "flac", "mp3", "aac", "vorbis", ...).
    pub codec: String,
    /// True for codecs that discard information (MP3, AAC, Vorbis).
    pub lossy: bool,
    /// Bits per decoded sample where the codec defines it (PCM, FLAC).
    pub bits_per_sample: Option<u32>,
}

/// Streaming decoder for one audio track of one file.
pub struct AudioReader {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    info: AudioInfo,
    /// Frames the stream must deliver; fewer at the end means the file was cut short.
    expected_frames: Option<u64>,
    /// Leading frames still to drop (MP4 edit list).
    skip: u64,
    /// Total frames to deliver (MP4 edit list); the rest is encoder padding.
    limit: Option<u64>,
    /// Frames queued for delivery so far (delivered + pending); the absolute index of the next one.
    queued: u64,
    /// The last decoded packet, one vector per channel; `pending[..][pos..end]` is still to deliver.
    pending: Vec<Vec<f32>>,
    pending_pos: usize,
    pending_end: usize,
    damaged_packets: usize,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Finished,
    Failed,
}

impl AudioReader {
    /// Opens the first audio track (for a MUSDB18 `.stem.mp4` that is the mixture).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_track(path, 0)
    }

    /// Opens the `audio_track`-th audio track (0-based, counting audio tracks only).
    /// MUSDB18: 0 mixture, 1 drums, 2 bass, 3 other, 4 vocals.
    ///
    /// The first packet is decoded here, so an empty, undecodable or unsupported file fails now
    /// rather than at the first [`read_into`](Self::read_into).
    pub fn open_track(path: &Path, audio_track: usize) -> Result<Self> {
        let format = open_format(path)?;
        let audio_tracks: Vec<&Track> = format.tracks().iter().filter(|t| is_audio(t)).collect();
        let Some(track) = audio_tracks.get(audio_track).copied() else {
            if audio_tracks.is_empty() {
                return Err(Error::UnsupportedFormat {
                    path: path.to_owned(),
                    reason: "the container holds no audio track".into(),
                });
            }
            return Err(Error::InvalidArgument(format!(
                "{}: audio track {audio_track} requested, the file has {} audio track(s)",
                path.display(),
                audio_tracks.len()
            )));
        };
        let Some(CodecParameters::Audio(params)) = &track.codec_params else {
            return Err(corrupt(path, "audio track without codec parameters"));
        };
        let params = params.clone();
        let track_id = track.id;
        let track_num_frames = track.num_frames;

        let lossless = is_lossless(params.codec);
        if lossless && track_num_frames == Some(0) {
            return Err(Error::EmptyAudio { path: path.to_owned() });
        }

        let sample_rate = params.sample_rate.ok_or_else(|| Error::UnsupportedFormat {
            path: path.to_owned(),
            reason: "the stream does not state its sample rate".into(),
        })?;
        check_rate(path, sample_rate)?;

        let decoder = guarded(path, || {
            symphonia::default::get_codecs().make_audio_decoder(&params, &AudioDecoderOptions::default().gapless(true))
        })
        .map_err(|e| match e {
            Error::UnsupportedFormat { path, reason } => {
                let known = symphonia::default::get_codecs().get_audio_decoder(params.codec);
                let reason = match known {
                    Some(_) => format!("{} stream: {reason}", codec_name(params.codec)),
                    None => format!(
                        "no decoder for the {} codec (voxmask decodes PCM, FLAC, MP3, AAC-LC \
                         and Vorbis)",
                        codec_name(params.codec)
                    ),
                };
                Error::UnsupportedFormat { path, reason }
            }
            other => other,
        })?;
        let codec = decoder.codec_info().short_name.to_string();

        // Where the container says how many frames to expect and what to trim.
        let mut skip = 0;
        let mut limit = None;
        let mut expected_frames = None;
        if format.format_info().short_name == "isomp4" {
            let edits = mp4_edits(path)?;
            let edit = edits.iter().find(|e| e.track_id == track_id);
            let total = track_num_frames; // stts total, in sample units when timescale == rate
            match (edit, total) {
                (Some(e), Some(total)) if e.media_timescale == sample_rate => {
                    skip = e.skip.min(total);
                    let available = total - skip;
                    let keep = match e.keep {
                        // The edit's duration is in the coarse movie timescale (often 1 ms); when
                        // it agrees with the sample table to within one movie tick, the sample
                        // table is the exact end.
                        Some(keep) if keep.abs_diff(available) <= e.keep_resolution => available,
                        Some(keep) => keep.min(available),
                        None => available,
                    };
                    limit = Some(keep);
                    expected_frames = Some(keep);
                }
                (_, Some(total)) => {
                    limit = Some(total);
                    expected_frames = Some(total);
                }
                _ => {}
            }
        } else if codec == "mp3" && mp3_states_its_length(path) {
            // A LAME/Xing/VBRI tag gives the exact frame count: a file cut short is then caught
            // like a truncated WAV or FLAC (an untagged MP3's length is only an estimate).
            expected_frames = track_num_frames;
        } else if lossless {
            let bytes_per_frame = u64::from(params.bits_per_sample.unwrap_or(8).div_ceil(8))
                * params.channels.as_ref().map_or(1, |c| c.count() as u64);
            expected_frames = track_num_frames.filter(|&n| n.saturating_mul(bytes_per_frame) < WAV_PLACEHOLDER_BYTES);
        }
        if limit == Some(0) || expected_frames == Some(0) {
            return Err(Error::EmptyAudio { path: path.to_owned() });
        }

        let info = AudioInfo {
            sample_rate,
            channels: params.channels.as_ref().map_or(0, |c| c.count()),
            frames: expected_frames.or(track_num_frames),
            codec,
            lossy: !lossless,
            // symphonia leaves it unset for float PCM, where the codec id says it.
            bits_per_sample: params.bits_per_sample.or_else(|| float_pcm_bits(params.codec)),
        };

        let mut reader = AudioReader {
            path: path.to_owned(),
            format,
            decoder,
            track_id,
            info,
            expected_frames,
            skip,
            limit,
            queued: 0,
            pending: Vec::new(),
            pending_pos: 0,
            pending_end: 0,
            damaged_packets: 0,
            state: State::Running,
        };
        // Decode ahead to the first frame: it settles the channel count (some containers leave it
        // to the codec) and turns empty or undecodable files into errors at open.
        if !reader.fill_pending()? {
            return Err(Error::EmptyAudio { path: path.to_owned() });
        }
        Ok(reader)
    }

    /// The stream's properties.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// Damaged packets replaced by silence so far (lossy streams only; see the module docs).
    pub fn damaged_packets(&self) -> usize {
        self.damaged_packets
    }

    /// Appends up to `max_frames` de-interleaved frames to `out[ch]` (`out.len()` must equal
    /// `info().channels`); returns the number of frames appended, 0 once the stream is exhausted.
    ///
    /// At the end of the stream the length is checked against what the container promised, so a
    /// truncated file surfaces as `Error::CorruptAudio` from this call.
    pub fn read_into(&mut self, out: &mut [Vec<f32>], max_frames: usize) -> Result<usize> {
        if out.len() != self.info.channels {
            return Err(Error::Mismatch {
                what: format!("{}: output channel buffers", self.path.display()),
                expected: self.info.channels.to_string(),
                got: out.len().to_string(),
            });
        }
        if max_frames == 0 {
            return Err(Error::InvalidArgument("read_into: max_frames must be at least 1".into()));
        }
        let mut written = 0;
        while written < max_frames {
            if self.pending_pos == self.pending_end && !self.fill_pending()? {
                break;
            }
            let n = (self.pending_end - self.pending_pos).min(max_frames - written);
            let range = self.pending_pos..self.pending_pos + n;
            for (dst, src) in out.iter_mut().zip(&self.pending) {
                dst.extend_from_slice(&src[range.clone()]);
            }
            self.pending_pos += n;
            written += n;
        }
        Ok(written)
    }

    /// Decodes packets until some frames are pending; false at the end of the stream.
    fn fill_pending(&mut self) -> Result<bool> {
        match self.state {
            State::Finished => return Ok(false),
            State::Failed => {
                return Err(corrupt(&self.path, "decoding already failed; reopen the file"));
            }
            State::Running => {}
        }
        match self.fill_pending_inner() {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.state = State::Finished;
                match self.expected_frames {
                    Some(expected) if self.queued < expected => {
                        self.state = State::Failed;
                        Err(corrupt(
                            &self.path,
                            &format!(
                                "truncated or damaged: the container promises {expected} frames, \
                                 the stream holds {}",
                                self.queued
                            ),
                        ))
                    }
                    _ => Ok(false),
                }
            }
            Err(e) => {
                self.state = State::Failed;
                Err(e)
            }
        }
    }

    fn fill_pending_inner(&mut self) -> Result<bool> {
        loop {
            if self.limit.is_some_and(|limit| self.queued >= limit) {
                return Ok(false);
            }
            let format = &mut self.format;
            let Some(packet) = guarded(&self.path, || format.next_packet())? else {
                return Ok(false);
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let decoder = &mut self.decoder;
            let pending = &mut self.pending;
            let decoded = catch_unwind(AssertUnwindSafe(|| {
                decoder.decode(&packet).map(|buf| {
                    let spec = buf.spec();
                    let (rate, channels) = (spec.rate(), spec.channels().count());
                    buf.copy_to_vecs_planar::<f32>(pending);
                    (rate, channels)
                })
            }));
            let frames = match decoded {
                Err(_) => return Err(corrupt(&self.path, "the decoder panicked on this data")),
                Ok(Ok((rate, channels))) => {
                    self.check_spec(rate, channels)?;
                    self.pending.first().map_or(0, Vec::len)
                }
                Ok(Err(e)) if self.is_damaged_packet(&e) => {
                    // Concealing needs a known channel count and a lossy codec.
                    if !self.info.lossy || self.info.channels == 0 || self.damaged_packets >= MAX_DAMAGED_PACKETS {
                        let why = match e {
                            SymError::DecodeError(msg) | SymError::Unsupported(msg) => msg.into(),
                            other => other.to_string(),
                        };
                        return Err(corrupt(
                            &self.path,
                            &format!(
                                "malformed {} packet after {} frames ({} damaged packets \
                                 concealed before it): {why}",
                                self.info.codec, self.queued, self.damaged_packets
                            ),
                        ));
                    }
                    self.damaged_packets += 1;
                    let silence = packet.dur.get().min(MAX_SILENCE_FRAMES) as usize;
                    self.pending.resize_with(self.info.channels, Vec::new);
                    for plane in &mut self.pending {
                        plane.clear();
                        plane.resize(silence, 0.0);
                    }
                    silence
                }
                Ok(Err(e)) => return Err(map_sym_error(&self.path, e)),
            };

            let dropped = self.skip.min(frames as u64) as usize;
            self.skip -= dropped as u64;
            let mut available = frames - dropped;
            if let Some(limit) = self.limit {
                available = available.min((limit - self.queued).min(usize::MAX as u64) as usize);
            }
            self.pending_pos = dropped;
            self.pending_end = dropped + available;
            if available == 0 {
                continue;
            }
            self.check_finite()?;
            self.queued += available as u64;
            return Ok(true);
        }
    }

    /// Whether a decoder error means "this packet is damaged" rather than "this stream cannot be
    /// decoded at all". Decoders read packets from memory, so an I/O error there is a bitstream
    /// overrun; "unsupported feature" after audio has already come out is a damaged packet that
    /// happens to look like a rare codec feature (AAC coupling channels, program config).
    fn is_damaged_packet(&self, e: &SymError) -> bool {
        match e {
            SymError::DecodeError(_) | SymError::IoError(_) => true,
            SymError::Unsupported(_) => self.queued > 0 || self.damaged_packets > 0,
            _ => false,
        }
    }

    /// Rejects a packet whose rate or channel count differs from the stream's.
    fn check_spec(&mut self, rate: u32, channels: usize) -> Result<()> {
        if self.info.channels == 0 {
            // The container did not say; the first decoded packet does.
            self.info.channels = channels;
        }
        if channels != self.info.channels || channels == 0 {
            return Err(corrupt(
                &self.path,
                &format!("channel count changes mid-stream from {} to {channels}", self.info.channels),
            ));
        }
        if rate != self.info.sample_rate {
            return Err(Error::UnsupportedFormat {
                path: self.path.clone(),
                reason: format!("sample rate changes mid-stream from {} to {rate} Hz", self.info.sample_rate),
            });
        }
        Ok(())
    }

    fn check_finite(&self) -> Result<()> {
        for (channel, plane) in self.pending.iter().enumerate() {
            let window = &plane[self.pending_pos..self.pending_end];
            if let Some(i) = window.iter().position(|x| !x.is_finite()) {
                return Err(Error::NonFiniteSample { path: self.path.clone(), channel, frame: self.queued + i as u64 });
            }
        }
        Ok(())
    }
}

/// Number of audio tracks in the file (5 for a MUSDB18 `.stem.mp4`, 1 for ordinary audio files).
pub fn audio_track_count(path: &Path) -> Result<usize> {
    let format = open_format(path)?;
    Ok(format.tracks().iter().filter(|t| is_audio(t)).count())
}

/// Decodes the first audio track completely. Convenience for tests and short files; long inputs
/// should stream through [`AudioReader`].
pub fn read_all(path: &Path) -> Result<(AudioInfo, Vec<Vec<f32>>)> {
    read_track(path, 0)
}

/// Decodes the `audio_track`-th audio track completely (see [`AudioReader::open_track`]).
pub fn read_track(path: &Path, audio_track: usize) -> Result<(AudioInfo, Vec<Vec<f32>>)> {
    let mut reader = AudioReader::open_track(path, audio_track)?;
    let channels = reader.info().channels;
    let capacity = reader.info().frames.unwrap_or(0).min(1 << 24) as usize;
    let mut out: Vec<Vec<f32>> = (0..channels).map(|_| Vec::with_capacity(capacity)).collect();
    while reader.read_into(&mut out, READ_ALL_CHUNK)? > 0 {}
    let mut info = reader.info().clone();
    info.frames = Some(out.first().map_or(0, |c| c.len() as u64));
    Ok((info, out))
}

/// Whether an MP3's first frame carries a Xing/Info (with its frame-count flag) or VBRI tag,
/// which states the stream's exact length.
fn mp3_states_its_length(path: &Path) -> bool {
    let mut head = Vec::new();
    let Ok(file) = File::open(path) else { return false };
    if file.take(1 << 16).read_to_end(&mut head).is_err() {
        return false;
    }
    // Skip an ID3v2 tag (10-byte header, then a syncsafe size).
    let mut start = 0;
    if head.len() >= 10 && &head[..3] == b"ID3" {
        let size = head[6..10].iter().fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7f));
        start = 10 + size + if head[5] & 0x10 != 0 { 10 } else { 0 };
    }
    let Some(frame) = head.get(start..).and_then(|h| h.windows(2).position(|w| w[0] == 0xff && w[1] & 0xe0 == 0xe0))
    else {
        return false;
    };
    let first = &head[start + frame..(start + frame + 2048).min(head.len())];
    first.windows(8).any(|w| (&w[..4] == b"Xing" || &w[..4] == b"Info") && w[7] & 1 == 1)
        || first.windows(4).any(|w| w == b"VBRI")
}

/// Opens the file and probes its container.
fn open_format(path: &Path) -> Result<Box<dyn FormatReader>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(path, io::Error::new(io::ErrorKind::IsADirectory, "is a directory, not an audio file")));
    }
    if meta.len() == 0 {
        return Err(Error::EmptyAudio { path: path.to_owned() });
    }
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let source: Box<dyn MediaSource> = match StreamedWav::detect(file).map_err(|e| Error::io(path, e))? {
        Ok(streamed) => Box::new(streamed),
        Err(file) => Box::new(file),
    };
    let mss = MediaSourceStream::new(source, MediaSourceStreamOptions::default());
    guarded(path, || {
        symphonia::default::get_probe().probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
    })
    .map_err(|e| match e {
        // The prober found no reader at all (a reader that refused the file said why itself).
        Error::UnsupportedFormat { path, reason } if reason.contains("probe") => Error::UnsupportedFormat {
            path,
            reason: format!(
                "not a recognised audio container ({reason}); voxmask reads WAV, FLAC, MP3, \
                 Ogg/Vorbis, M4A/AAC and MP4 stems"
            ),
        },
        other => other,
    })
}

/// Runs a symphonia call, mapping its errors and any panic to voxmask errors.
fn guarded<T>(path: &Path, f: impl FnOnce() -> symphonia::core::errors::Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map_sym_error(path, e)),
        Err(_) => Err(corrupt(path, "the decoder panicked on this data")),
    }
}

fn map_sym_error(path: &Path, e: SymError) -> Error {
    match e {
        SymError::IoError(io) => match io.kind() {
            io::ErrorKind::UnexpectedEof => corrupt(path, "truncated: the file ends in the middle of the stream"),
            // symphonia's in-memory readers report overruns as `Other` ("unexpected end of
            // bitstream"); the OS never produces `Other` or `InvalidData`.
            io::ErrorKind::Other | io::ErrorKind::InvalidData => corrupt(path, &io.to_string()),
            _ => Error::io(path, io),
        },
        // A recognised container whose essential part is missing: cut off, not exotic.
        SymError::Unsupported(what @ ("isomp4: missing moov atom" | "wav: missing data chunk")) => {
            corrupt(path, &format!("truncated or incomplete file ({what})"))
        }
        SymError::Unsupported(what) => Error::UnsupportedFormat { path: path.to_owned(), reason: what.to_string() },
        // symphonia names the channels of a plain-PCM WAV by position, and there are 26.
        SymError::DecodeError("riff: invalid channel count") => Error::UnsupportedFormat {
            path: path.to_owned(),
            reason: "a WAV in the plain PCM format with more than 26 channels (or none): voxmask reads up to 26 \
                     this way; WAVE_FORMAT_EXTENSIBLE files up to their channel mask"
                .into(),
        },
        SymError::DecodeError(what) => corrupt(path, what),
        SymError::LimitError(what) => corrupt(path, &format!("exceeds a decoder limit: {what}")),
        SymError::ResetRequired => Error::UnsupportedFormat {
            path: path.to_owned(),
            reason: "the stream changes its parameters mid-way (chained or multiplexed streams)".into(),
        },
        other => corrupt(path, &other.to_string()),
    }
}

pub(super) fn corrupt(path: &Path, reason: &str) -> Error {
    Error::CorruptAudio { path: path.to_owned(), reason: reason.to_string() }
}

fn check_rate(path: &Path, rate: u32) -> Result<()> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(Error::UnsupportedSampleRate { path: path.to_owned(), rate, min: MIN_SAMPLE_RATE, max: MAX_SAMPLE_RATE })
    }
}

fn is_audio(track: &Track) -> bool {
    matches!(track.codec_params, Some(CodecParameters::Audio(_)))
}

fn is_lossless(codec: AudioCodecId) -> bool {
    // Linear PCM ids are contiguous; A-law and mu-law (companded) come after F64BE_PLANAR.
    (CODEC_ID_PCM_S32LE..=CODEC_ID_PCM_F64BE_PLANAR).contains(&codec)
        || codec == CODEC_ID_FLAC
        || codec == CODEC_ID_ALAC
}

fn float_pcm_bits(codec: AudioCodecId) -> Option<u32> {
    match codec {
        CODEC_ID_PCM_F32LE | CODEC_ID_PCM_F32LE_PLANAR | CODEC_ID_PCM_F32BE | CODEC_ID_PCM_F32BE_PLANAR => Some(32),
        CODEC_ID_PCM_F64LE | CODEC_ID_PCM_F64LE_PLANAR | CODEC_ID_PCM_F64BE | CODEC_ID_PCM_F64BE_PLANAR => Some(64),
        _ => None,
    }
}

/// A readable name for codecs we may meet but cannot decode.
fn codec_name(codec: AudioCodecId) -> String {
    let known = [
        (CODEC_ID_AAC, "AAC"),
        (CODEC_ID_MP3, "MP3"),
        (CODEC_ID_VORBIS, "Vorbis"),
        (CODEC_ID_FLAC, "FLAC"),
        (CODEC_ID_OPUS, "Opus"),
        (CODEC_ID_SPEEX, "Speex"),
        (CODEC_ID_AC3, "AC-3"),
        (CODEC_ID_EAC3, "E-AC-3"),
        (CODEC_ID_ALAC, "ALAC"),
        (CODEC_ID_WMA, "WMA"),
        (CODEC_ID_MP1, "MPEG-1 Layer I"),
        (CODEC_ID_MP2, "MPEG-1 Layer II"),
        (CODEC_ID_PCM_ALAW, "A-law PCM"),
        (CODEC_ID_PCM_MULAW, "mu-law PCM"),
        (CODEC_ID_ADPCM_MS, "MS ADPCM"),
        (CODEC_ID_ADPCM_IMA_WAV, "IMA ADPCM"),
    ];
    known
        .iter()
        .find(|(id, _)| *id == codec)
        .map_or_else(|| format!("unknown ({codec})"), |(_, name)| (*name).to_string())
}
