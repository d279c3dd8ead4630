//! WAVs written to a pipe (`ffmpeg -f wav -`, `sox ... -t wav -`) cannot go back to fill in their
//! sizes, so their RIFF and `data` sizes hold the placeholder 0xFFFFFFFF. They are valid and
//! common, but symphonia reads the placeholder as the real length and fails at the end of the file
//! ("the file ends in the middle of the stream"), dropping the last packet. [`StreamedWav`]
//! presents such a file to symphonia with the two sizes it should have had: the `data` chunk runs
//! to the end of the file (whole frames), the RIFF chunk holds everything after its header.
//! Every other file is read unchanged.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use symphonia::core::io::MediaSource;

/// Sizes at least this large are placeholders, not lengths (some writers use 0xFFFFFFFF, others
/// a little less).
pub const PLACEHOLDER: u32 = 0xFFFF_FF00;

/// A file with up to two little-endian `u32` fields replaced.
pub struct StreamedWav {
    file: File,
    len: u64,
    pos: u64,
    patches: Vec<(u64, [u8; 4])>,
}

impl StreamedWav {
    /// Wraps `file`; returns `None` when it is not a WAV with placeholder sizes (read it as is).
    pub fn detect(mut file: File) -> io::Result<Result<Self, File>> {
        let len = file.metadata()?.len();
        let patches = match placeholder_patches(&mut file, len) {
            Ok(p) if !p.is_empty() => p,
            _ => {
                file.seek(SeekFrom::Start(0))?;
                return Ok(Err(file));
            }
        };
        file.seek(SeekFrom::Start(0))?;
        Ok(Ok(StreamedWav { file, len, pos: 0, patches }))
    }
}

/// The fields to rewrite: RIFF's size at offset 4 and the `data` chunk's size, when the latter
/// is a placeholder. Walks the chunks before `data` (fmt, LIST, ...) by their sizes.
fn placeholder_patches(file: &mut File, len: u64) -> io::Result<Vec<(u64, [u8; 4])>> {
    let mut header = [0u8; 12];
    file.read_exact(&mut header)?;
    if &header[0..4] != b"RIFF" || &header[8..12] != b"WAVE" {
        return Ok(Vec::new());
    }
    let mut block_align = 1u64;
    let mut pos = 12u64;
    while pos + 8 <= len {
        let mut chunk = [0u8; 8];
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut chunk)?;
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
        if &chunk[0..4] == b"fmt " && size >= 16 {
            let mut fmt = [0u8; 16];
            file.read_exact(&mut fmt)?;
            block_align = u64::from(u16::from_le_bytes([fmt[12], fmt[13]])).max(1);
        }
        if &chunk[0..4] == b"data" {
            if size < PLACEHOLDER {
                return Ok(Vec::new());
            }
            let data = len - (pos + 8);
            let data = (data - data % block_align).min(u64::from(PLACEHOLDER - 1)) as u32;
            let riff = (len - 8).min(u64::from(u32::MAX)) as u32;
            return Ok(vec![(4, riff.to_le_bytes()), (pos + 4, data.to_le_bytes())]);
        }
        if size >= PLACEHOLDER {
            return Ok(Vec::new()); // a chunk before `data` without a length: nothing to go by
        }
        pos += 8 + u64::from(size) + u64::from(size & 1);
    }
    Ok(Vec::new())
}

impl Read for StreamedWav {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        for (offset, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let at = offset + i as u64;
                if (self.pos..self.pos + n as u64).contains(&at) {
                    buf[(at - self.pos) as usize] = *b;
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for StreamedWav {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for StreamedWav {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}
