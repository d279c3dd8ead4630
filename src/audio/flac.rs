//! Streaming FLAC encoding through the pure-Rust `flacenc` crate: interleaved integer samples go
//! in, fixed-size frames come out as bytes, and the stream header (whose MD5 and sample count are
//! only known at the end) is produced last, to be written over a placeholder of the same length.
//! The file handling (temporary name, sync, atomic rename) is [`AudioWriter`](super::encode::AudioWriter)'s.

use flacenc::bitsink::MemSink;
use flacenc::component::{BitRepr, Stream, StreamInfo};
use flacenc::error::Verify;
use flacenc::source::{Context, Fill, FrameBuf};

/// Samples per channel in a frame (the reference encoder's default).
const BLOCK_FRAMES: usize = 4096;

/// One FLAC stream being encoded.
pub struct FlacEncoder {
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    info: StreamInfo,
    channels: usize,
    /// Interleaved samples not yet filling a frame.
    pending: Vec<i32>,
    frame: FrameBuf,
    context: Context,
    frames_encoded: usize,
    frame_sizes: Option<(usize, usize)>,
    sink: MemSink<u8>,
}

impl FlacEncoder {
    /// `bits` is 16 or 24 (FLAC stores integers only).
    pub fn new(sample_rate: u32, channels: usize, bits: u16) -> Result<Self, String> {
        let config = flacenc::config::Encoder::default().into_verified().map_err(|(_, e)| e.to_string())?;
        let mut info = StreamInfo::new(sample_rate as usize, channels, bits as usize).map_err(|e| e.to_string())?;
        info.set_block_sizes(BLOCK_FRAMES, BLOCK_FRAMES).map_err(|e| e.to_string())?;
        Ok(FlacEncoder {
            config,
            info,
            channels,
            pending: Vec::with_capacity(BLOCK_FRAMES * channels),
            frame: FrameBuf::with_size(channels, BLOCK_FRAMES).map_err(|e| e.to_string())?,
            context: Context::new(bits as usize, channels),
            frames_encoded: 0,
            frame_sizes: None,
            sink: MemSink::new(),
        })
    }

    /// The header's length in bytes: what to reserve before the first frame.
    pub fn header_len(&self) -> Result<usize, String> {
        Ok(self.header()?.len())
    }

    /// Adds interleaved samples (each within the stream's bit depth) and hands every completed
    /// frame's bytes to `out`.
    pub fn push(
        &mut self,
        interleaved: &[i32],
        out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<(), String> {
        let block = BLOCK_FRAMES * self.channels;
        let mut rest = interleaved;
        while !rest.is_empty() {
            let take = (block - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == block {
                self.encode_pending(out)?;
            }
        }
        Ok(())
    }

    /// Encodes what is left (a shorter last frame) and returns the final header bytes.
    pub fn finish(&mut self, out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> Result<Vec<u8>, String> {
        if !self.pending.is_empty() {
            self.encode_pending(out)?;
        }
        self.info.set_md5_digest(&self.context.md5_digest());
        self.info.set_total_samples(self.context.total_samples());
        if let Some((min, max)) = self.frame_sizes {
            self.info.set_frame_sizes(min, max).map_err(|e| e.to_string())?;
        }
        self.header()
    }

    fn encode_pending(&mut self, out: &mut dyn FnMut(&[u8]) -> std::io::Result<()>) -> Result<(), String> {
        let len = self.pending.len() / self.channels;
        if len != self.frame.size() {
            self.frame.resize(len);
        }
        self.frame.fill_interleaved(&self.pending).map_err(|e| e.to_string())?;
        self.context.fill_interleaved(&self.pending).map_err(|e| e.to_string())?;
        let frame = flacenc::encode_fixed_size_frame(&self.config, &self.frame, self.frames_encoded, &self.info)
            .map_err(|e| e.to_string())?;
        self.sink.clear();
        frame.write(&mut self.sink).map_err(|e| e.to_string())?;
        let bytes = self.sink.as_slice();
        self.frame_sizes = Some(
            self.frame_sizes.map_or((bytes.len(), bytes.len()), |(lo, hi)| (lo.min(bytes.len()), hi.max(bytes.len()))),
        );
        out(bytes).map_err(|e| e.to_string())?;
        self.frames_encoded += 1;
        self.pending.clear();
        Ok(())
    }

    /// `fLaC` and the STREAMINFO block, as [`Stream`] writes them for a stream with no frames.
    fn header(&self) -> Result<Vec<u8>, String> {
        let mut sink = MemSink::<u8>::new();
        Stream::with_stream_info(self.info.clone()).write(&mut sink).map_err(|e| e.to_string())?;
        Ok(sink.into_inner())
    }
}
