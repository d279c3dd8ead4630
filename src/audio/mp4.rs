//! The MP4 edit list (ISO/IEC 14496-12 §8.6.6, `elst`), read straight from the file's boxes:
//! symphonia parses it but does not apply it, and the decoder needs it to drop an AAC stream's
//! priming and padding (`super::decode`). Only box headers are read outside `moov`; malformed
//! boxes give `None` or an error, never a panic.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::decode::corrupt;
use crate::{Error, Result};

/// The trimming an MP4 edit list asks for on one track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mp4Edit {
    pub(crate) track_id: u32,
    pub(crate) media_timescale: u32,
    /// Leading frames to drop (`media_time` of the first non-empty edit), in media timescale.
    pub(crate) skip: u64,
    /// Frames to keep after that, in media timescale; None when the edit runs to the end.
    pub(crate) keep: Option<u64>,
    /// One movie-timescale tick, in media timescale (rounded up): the precision of `keep`.
    pub(crate) keep_resolution: u64,
}

/// Largest `moov` box we are willing to load (the MUSDB18 ones are ~25 KB; the cover art in
/// `udta` is the bulk).
const MAX_MOOV_BYTES: u64 = 64 << 20;

/// Reads the edit list of every track in an MP4 file. Only box headers are read outside `moov`,
/// so `mdat` is never loaded. Malformed boxes yield `CorruptAudio`, never a panic.
pub(crate) fn mp4_edits(path: &Path) -> Result<Vec<Mp4Edit>> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut pos = 0;
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos)).map_err(|e| Error::io(path, e))?;
        let mut head = [0u8; 16];
        let got = read_up_to(&mut file, &mut head).map_err(|e| Error::io(path, e))?;
        let Some((kind, header, size)) = box_header(&head[..got], len - pos) else {
            return Err(corrupt(path, "malformed MP4 box header"));
        };
        if &kind == b"moov" {
            let body_len = size - header;
            if body_len > MAX_MOOV_BYTES {
                return Err(corrupt(path, "MP4 moov box is implausibly large"));
            }
            file.seek(SeekFrom::Start(pos + header)).map_err(|e| Error::io(path, e))?;
            let mut moov = vec![0u8; body_len as usize];
            file.read_exact(&mut moov).map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => corrupt(path, "truncated MP4 moov box"),
                _ => Error::io(path, e),
            })?;
            return parse_moov(&moov).ok_or_else(|| corrupt(path, "malformed MP4 edit list"));
        }
        pos += size;
    }
    Ok(Vec::new())
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Parses a box header at the start of `buf`: (type, header length, total size). `room` is how
/// many bytes remain in the parent; a size of 0 means "to the end of the parent".
fn box_header(buf: &[u8], room: u64) -> Option<([u8; 4], u64, u64)> {
    let size32 = u32::from_be_bytes(buf.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
    let (header, size) = match size32 {
        0 => (8, room),
        1 => (16, u64::from_be_bytes(buf.get(8..16)?.try_into().ok()?)),
        n => (8, u64::from(n)),
    };
    (size >= header && size <= room).then_some((kind, header, size))
}

/// Iterates the child boxes of a box body: (type, body).
fn children(body: &[u8]) -> impl Iterator<Item = Option<([u8; 4], &[u8])>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos + 8 > body.len() {
            return None;
        }
        let rest = &body[pos..];
        let item = box_header(rest, rest.len() as u64).map(|(kind, header, size)| {
            let child = &rest[header as usize..size as usize];
            pos += size as usize;
            (kind, child)
        });
        if item.is_none() {
            pos = body.len();
        }
        Some(item)
    })
}

fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<Option<&'a [u8]>> {
    for item in children(body) {
        let (k, b) = item?;
        if &k == kind {
            return Some(Some(b));
        }
    }
    Some(None)
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Timescale of an `mvhd` or `mdhd` body (both put it after version/flags and two timestamps).
fn header_timescale(body: &[u8]) -> Option<u32> {
    match body.first()? {
        0 => be_u32(body, 12),
        1 => be_u32(body, 20),
        _ => None,
    }
}

/// None: malformed. Tracks without an edit list, or that are not audio, are left out.
fn parse_moov(moov: &[u8]) -> Option<Vec<Mp4Edit>> {
    let movie_timescale = header_timescale(child(moov, b"mvhd")??)?;
    let mut edits = Vec::new();
    for item in children(moov) {
        let (kind, trak) = item?;
        if &kind != b"trak" {
            continue;
        }
        let tkhd = child(trak, b"tkhd")??;
        let track_id = match tkhd.first()? {
            0 => be_u32(tkhd, 12)?,
            1 => be_u32(tkhd, 20)?,
            _ => return None,
        };
        let mdia = child(trak, b"mdia")??;
        let Some(hdlr) = child(mdia, b"hdlr")? else {
            continue;
        };
        if hdlr.get(8..12)? != b"soun" {
            continue;
        }
        let media_timescale = header_timescale(child(mdia, b"mdhd")??)?;
        let Some(edts) = child(trak, b"edts")? else {
            continue;
        };
        let Some(elst) = child(edts, b"elst")? else {
            continue;
        };
        if movie_timescale == 0 || media_timescale == 0 {
            return None;
        }
        let version = *elst.first()?;
        let count = be_u32(elst, 4)? as usize;
        let entry_len = if version == 1 { 20 } else { 12 };
        // Empty edits (media_time -1) only delay presentation; the first real edit says where the
        // playable media starts.
        for i in 0..count.min(elst.len() / entry_len) {
            let at = 8 + i * entry_len;
            let (duration, media_time) = match version {
                0 => (u64::from(be_u32(elst, at)?), i64::from(be_u32(elst, at + 4)? as i32)),
                1 => (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64),
                _ => return None,
            };
            if media_time < 0 {
                continue;
            }
            let scale = |ticks: u64| {
                (u128::from(ticks) * u128::from(media_timescale) / u128::from(movie_timescale))
                    .min(u128::from(u64::MAX)) as u64
            };
            edits.push(Mp4Edit {
                track_id,
                media_timescale,
                skip: media_time as u64,
                keep: (duration > 0).then(|| scale(duration)),
                keep_resolution: u64::from(media_timescale.div_ceil(movie_timescale)),
            });
            break;
        }
    }
    Some(edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    /// version 0 header: version/flags, creation, modification, timescale, duration.
    fn timescale_box(kind: &[u8; 4], timescale: u32) -> Vec<u8> {
        let mut body = vec![0u8; 12];
        body.extend_from_slice(&timescale.to_be_bytes());
        body.extend_from_slice(&[0u8; 4]);
        mp4_box(kind, &body)
    }

    fn moov(entries: &[(u32, i32)], handler: &[u8; 4]) -> Vec<u8> {
        let mut tkhd = vec![0u8; 12];
        tkhd.extend_from_slice(&7u32.to_be_bytes());
        tkhd.extend_from_slice(&[0u8; 8]);
        let mut elst = vec![0u8; 4];
        elst.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for &(dur, media_time) in entries {
            elst.extend_from_slice(&dur.to_be_bytes());
            elst.extend_from_slice(&media_time.to_be_bytes());
            elst.extend_from_slice(&[0, 1, 0, 0]);
        }
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        let mdia = [timescale_box(b"mdhd", 44100), mp4_box(b"hdlr", &hdlr)].concat();
        let trak =
            [mp4_box(b"tkhd", &tkhd), mp4_box(b"edts", &mp4_box(b"elst", &elst)), mp4_box(b"mdia", &mdia)].concat();
        [timescale_box(b"mvhd", 1000), mp4_box(b"trak", &trak)].concat()
    }

    #[test]
    fn edit_list_is_read_in_media_units() {
        let edits = parse_moov(&moov(&[(300, 1024)], b"soun")).expect("well-formed moov");
        assert_eq!(
            edits,
            vec![Mp4Edit { track_id: 7, media_timescale: 44100, skip: 1024, keep: Some(13230), keep_resolution: 45 }]
        );
    }

    #[test]
    fn empty_edits_are_skipped_and_non_audio_tracks_ignored() {
        let edits = parse_moov(&moov(&[(10, -1), (300, 2048)], b"soun")).expect("well-formed");
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].skip, 2048);
        assert!(parse_moov(&moov(&[(300, 1024)], b"vide")).expect("well-formed").is_empty());
    }

    #[test]
    fn malformed_moov_never_panics() {
        let good = moov(&[(300, 1024)], b"soun");
        for cut in 0..good.len() {
            let _ = parse_moov(&good[..cut]);
        }
        for i in 0..good.len() {
            for bit in [0x01u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[i] ^= bit;
                let _ = parse_moov(&bad);
            }
        }
    }
}
