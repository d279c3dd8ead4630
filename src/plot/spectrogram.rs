//! `separate --plot`: a picture of what was separated. Four panels share a time axis and a
//! logarithmic frequency axis: the input's spectrogram, the vocal mask, and the two stems'
//! spectrograms (dB colour scale).
//!
//! The stems are fed in as they are written; the picture is built from them alone. The input is
//! their sum (the two stems add up to the input by construction), and the mask shown is the one
//! the stems carry, |V| / (|V| + |A|) per cell: the model's mask after the mask rule and the
//! Wiener filter, i.e. what was applied. Memory is bounded whatever the file's length: STFT frames
//! are summed into at most [`MAX_COLUMNS`] columns, and when a file outgrows them neighbouring
//! columns are merged (each column then covers twice the time).

use std::path::Path;
use std::sync::Arc;

use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;

use crate::Result;
use crate::audio::encode::Sealed;
use crate::dsp::window::WindowKind;

/// FFT size of the picture's STFT at 44.1 kHz (scaled with the rate to keep ~46 ms frames).
const FFT_AT_44K: usize = 2048;
/// Rows of the picture: log-spaced frequency bands from [`LOW_HZ`] to the Nyquist frequency.
const ROWS: usize = 240;
/// Lowest frequency shown.
const LOW_HZ: f64 = 30.0;
/// Columns kept before neighbours are merged; the picture has between half this and this many.
pub const MAX_COLUMNS: usize = 1600;
/// Dynamic range of the colour scale.
const RANGE_DB: f32 = 80.0;
/// Picture size in pixels.
const SIZE: (u32, u32) = (1400, 1150);

/// The three spectrograms, as summed power per column and row.
#[derive(Clone, Copy)]
enum Layer {
    Input = 0,
    Vocals = 1,
    Accompaniment = 2,
}

/// Accumulates the stems into a decimated log-frequency spectrogram and draws it.
pub struct SeparationPicture {
    sample_rate: u32,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    hop: usize,
    /// The FFT bins `[start, end)` summed into each row.
    rows: Vec<(usize, usize)>,
    /// Mono downmix of each stem not yet analysed (starts at a frame boundary).
    pending: [Vec<f32>; 2],
    /// Finished columns, `[layer][column * ROWS + row]`.
    columns: [Vec<f32>; 3],
    /// The column being filled and how many STFT frames it holds.
    current: [Vec<f32>; 3],
    frames_in_current: usize,
    /// STFT frames per column (a power of two).
    frames_per_column: usize,
    /// Input frames analysed (for the time axis).
    samples: u64,
    scratch_in: Vec<f32>,
    scratch_out: Vec<Complex<f32>>,
}

impl SeparationPicture {
    pub fn new(sample_rate: u32) -> Self {
        let n_fft = (FFT_AT_44K as f64 * sample_rate as f64 / 44_100.0).round().max(64.0) as usize & !1;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let bins = n_fft / 2 + 1;
        let nyquist = sample_rate as f64 / 2.0;
        let bin_hz = sample_rate as f64 / n_fft as f64;
        let rows = (0..ROWS)
            .map(|r| {
                let lo = LOW_HZ * (nyquist / LOW_HZ).powf(r as f64 / ROWS as f64);
                let hi = LOW_HZ * (nyquist / LOW_HZ).powf((r + 1) as f64 / ROWS as f64);
                let start = ((lo / bin_hz).round() as usize).min(bins - 1);
                let end = ((hi / bin_hz).round() as usize).clamp(start + 1, bins);
                (start, end)
            })
            .collect();
        SeparationPicture {
            sample_rate,
            scratch_in: fft.make_input_vec(),
            scratch_out: fft.make_output_vec(),
            fft,
            window: WindowKind::Hann.build(n_fft),
            hop: n_fft / 4,
            rows,
            pending: [Vec::new(), Vec::new()],
            columns: [Vec::new(), Vec::new(), Vec::new()],
            current: [vec![0.0; ROWS], vec![0.0; ROWS], vec![0.0; ROWS]],
            frames_in_current: 0,
            frames_per_column: 1,
            samples: 0,
        }
    }

    /// Adds the next block of both stems (planar, same length).
    pub fn push(&mut self, vocals: &[&[f32]], accompaniment: &[&[f32]]) {
        let frames = vocals.first().map_or(0, |c| c.len());
        for (pending, stem) in self.pending.iter_mut().zip([vocals, accompaniment]) {
            let scale = 1.0 / stem.len().max(1) as f32;
            pending.extend((0..frames).map(|i| stem.iter().map(|c| c[i]).sum::<f32>() * scale));
        }
        self.samples += frames as u64;
        let n_fft = self.window.len();
        let mut start = 0;
        while self.pending[0].len() - start >= n_fft {
            self.analyse(start);
            start += self.hop;
        }
        for p in &mut self.pending {
            p.drain(..start);
        }
    }

    /// One STFT frame of both stems (and their sum) at `start` of the pending samples.
    fn analyse(&mut self, start: usize) {
        let n_fft = self.window.len();
        let mut power = [
            vec![0.0f32; self.scratch_out.len()],
            vec![0.0f32; self.scratch_out.len()],
            vec![0.0f32; self.scratch_out.len()],
        ];
        for (layer, mix) in
            [(Layer::Vocals, [1.0, 0.0]), (Layer::Accompaniment, [0.0, 1.0]), (Layer::Input, [1.0, 1.0])]
        {
            for (i, x) in self.scratch_in.iter_mut().enumerate() {
                let s = mix[0] * self.pending[0][start + i] + mix[1] * self.pending[1][start + i];
                *x = s * self.window[i];
            }
            if self.fft.process(&mut self.scratch_in, &mut self.scratch_out).is_err() {
                return;
            }
            for (p, c) in power[layer as usize].iter_mut().zip(&self.scratch_out) {
                *p = c.norm_sqr() / n_fft as f32;
            }
        }
        for (layer, power) in power.iter().enumerate() {
            for (cell, &(a, b)) in self.current[layer].iter_mut().zip(&self.rows) {
                *cell += power[a..b].iter().sum::<f32>() / (b - a) as f32;
            }
        }
        self.frames_in_current += 1;
        if self.frames_in_current == self.frames_per_column {
            self.close_column();
        }
    }

    fn close_column(&mut self) {
        for (done, current) in self.columns.iter_mut().zip(&mut self.current) {
            done.extend(current.iter().map(|p| p / self.frames_in_current.max(1) as f32));
            current.iter_mut().for_each(|p| *p = 0.0);
        }
        self.frames_in_current = 0;
        if self.columns[0].len() / ROWS >= MAX_COLUMNS {
            // Merge neighbours: half the columns, each twice as long.
            for layer in &mut self.columns {
                let merged: Vec<f32> = layer
                    .chunks(2 * ROWS)
                    .flat_map(|pair| {
                        let (a, b) = pair.split_at(ROWS.min(pair.len()));
                        (0..ROWS).map(move |r| if b.is_empty() { a[r] } else { 0.5 * (a[r] + b[r]) })
                    })
                    .collect();
                *layer = merged;
            }
            self.frames_per_column *= 2;
        }
    }

    /// Columns drawn so far (tests: bounded by [`MAX_COLUMNS`]).
    pub fn columns(&self) -> usize {
        self.columns[0].len() / ROWS + usize::from(self.frames_in_current > 0)
    }

    /// Draws the picture for `path` (PNG) with `title` above it, into a temporary file to be
    /// committed with the stems.
    pub fn draw(&mut self, path: &Path, title: &str, overwrite: bool) -> Result<Sealed> {
        if self.frames_in_current > 0 {
            self.close_column();
        }
        let seconds = (self.samples as f64 / self.sample_rate as f64).max(1e-3);
        let nyquist = self.sample_rate as f64 / 2.0;
        let cols = self.columns[0].len() / ROWS;
        let peak = self.columns.iter().flatten().fold(1e-12f32, |m, &p| m.max(p));
        let db = |p: f32| ((10.0 * (p / peak).max(1e-12).log10() + RANGE_DB) / RANGE_DB).clamp(0.0, 1.0);
        let layer = |l: Layer| self.columns[l as usize].as_slice();
        let mask: Vec<f32> = layer(Layer::Vocals)
            .iter()
            .zip(layer(Layer::Accompaniment))
            .map(|(&v, &a)| {
                let (v, a) = (v.sqrt(), a.sqrt());
                if v + a > 0.0 { v / (v + a) } else { 0.0 }
            })
            .collect();
        let panels: [(&str, Vec<f32>); 4] = [
            ("input (dB)", layer(Layer::Input).iter().map(|&p| db(p)).collect()),
            ("vocal mask |V| / (|V| + |A|), 0 to 1", mask),
            ("vocals (dB)", layer(Layer::Vocals).iter().map(|&p| db(p)).collect()),
            ("accompaniment (dB)", layer(Layer::Accompaniment).iter().map(|&p| db(p)).collect()),
        ];
        let text = super::has_font();
        super::draw_png_sealed(path, overwrite, |temp| {
            let root = BitMapBackend::new(temp, SIZE).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let root = if text { root.titled(title, ("sans-serif", 22)).map_err(|e| e.to_string())? } else { root };
            for (area, (caption, values)) in root.split_evenly((4, 1)).iter().zip(panels) {
                let mut builder = ChartBuilder::on(area);
                builder.margin(8).x_label_area_size(if text { 28 } else { 0 }).y_label_area_size(if text {
                    64
                } else {
                    0
                });
                if text {
                    builder.caption(caption, ("sans-serif", 16));
                }
                let mut chart = builder
                    .build_cartesian_2d(0.0..seconds, (LOW_HZ..nyquist).log_scale())
                    .map_err(|e| e.to_string())?;
                if text {
                    chart
                        .configure_mesh()
                        .disable_mesh()
                        .x_desc("time (s)")
                        .y_desc("Hz")
                        .y_label_formatter(&|f| {
                            if *f >= 1000.0 { format!("{:.0}k", f / 1000.0) } else { format!("{f:.0}") }
                        })
                        .draw()
                        .map_err(|e| e.to_string())?;
                }
                let (w, h) = chart.plotting_area().dim_in_pixel();
                let image = render(&values, cols, w as usize, h as usize);
                let element = BitMapElement::with_owned_buffer((0.0, nyquist), (w, h), image)
                    .ok_or_else(|| "image buffer size".to_string())?;
                chart.draw_series(std::iter::once(element)).map_err(|e| e.to_string())?;
            }
            root.present().map_err(|e| e.to_string())
        })
    }
}

/// Resamples `values` (`cols` × [`ROWS`], 0..1, row 0 the lowest band) to a `w` × `h` RGB image,
/// highest band at the top.
fn render(values: &[f32], cols: usize, w: usize, h: usize) -> Vec<u8> {
    let mut image = vec![0u8; w * h * 3];
    if cols == 0 {
        return image;
    }
    for y in 0..h {
        let row = ((h - 1 - y) * ROWS / h.max(1)).min(ROWS - 1);
        for x in 0..w {
            let col = (x * cols / w.max(1)).min(cols - 1);
            let RGBColor(r, g, b) = ViridisRGB::get_color_normalized(values[col * ROWS + row], 0.0, 1.0);
            image[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[r, g, b]);
        }
    }
    image
}
