//! `eval --plot`: each track's vocals and accompaniment SDR as horizontal bars, one row per track,
//! with the medians marked, so a glance shows which songs the separation fails on.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::Result;

/// Pixels per track row, and the picture's fixed parts.
const ROW_PX: u32 = 26;
const WIDTH: u32 = 1100;
const FRAME_PX: u32 = 120;
/// Tracks drawn at most (the picture stays a sensible size; the rest are in the CSV and JSON).
pub const MAX_TRACKS: usize = 300;

/// One track's scores (NaN where a score is undefined, e.g. a silent reference).
pub struct ScoreRow {
    pub name: String,
    pub vocals: f64,
    pub accompaniment: f64,
}

/// The picture's size for `tracks` tracks.
pub fn size(tracks: usize) -> (u32, u32) {
    (WIDTH, FRAME_PX + ROW_PX * tracks.clamp(1, MAX_TRACKS) as u32)
}

/// Draws `tracks` (at most [`MAX_TRACKS`]) with `title` into `path` (PNG, written atomically).
pub fn draw(path: &Path, title: &str, tracks: &[ScoreRow], medians: (f64, f64)) -> Result<()> {
    let tracks = &tracks[..tracks.len().min(MAX_TRACKS)];
    let n = tracks.len().max(1);
    let finite = tracks.iter().flat_map(|t| [t.vocals, t.accompaniment]).filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((0.0f64, 1.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Room on the right for the legend.
    let x_range = (lo.floor() - 1.0)..(hi.ceil() + 1.0 + 0.35 * (hi - lo.min(0.0)));
    let text = super::has_font();
    super::write_png_atomically(path, |temp| {
        let root = BitMapBackend::new(temp, size(tracks.len())).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(12).x_label_area_size(if text { 36 } else { 0 }).y_label_area_size(if text { 260 } else { 0 });
        if text {
            builder.caption(title, ("sans-serif", 20));
        }
        let mut chart = builder.build_cartesian_2d(x_range.clone(), 0.0..n as f64).map_err(|e| e.to_string())?;
        if text {
            chart
                .configure_mesh()
                .disable_y_mesh()
                .y_labels(0)
                .x_desc("SDR (dB, BSS Eval v4)")
                .draw()
                .map_err(|e| e.to_string())?;
            // Track names beside their rows, first track on top (drawn on the root area, left of
            // the axis, where the chart would clip them).
            let style = TextStyle::from(("sans-serif", 13)).pos(Pos::new(HPos::Right, VPos::Center));
            for (i, t) in tracks.iter().enumerate() {
                let (x, y) = chart.backend_coord(&(x_range.start, (n - 1 - i) as f64 + 0.5));
                let name: String = t.name.chars().take(40).collect();
                root.draw(&Text::new(name, (x - 8, y), style.clone())).map_err(|e| e.to_string())?;
            }
        }
        let bar = |i: usize, offset: f64, value: f64, color: RGBColor| {
            let top = (n - 1 - i) as f64 + offset;
            Rectangle::new(
                [(0.0, top + 0.08), (if value.is_finite() { value } else { 0.0 }, top + 0.46)],
                color.filled(),
            )
        };
        let vocals = tracks.iter().enumerate().map(|(i, t)| bar(i, 0.5, t.vocals, RED));
        let drawn = chart.draw_series(vocals).map_err(|e| e.to_string())?;
        if text {
            drawn
                .label(format!("vocals (median {:.2} dB)", medians.0))
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], RED.filled()));
        }
        let accompaniment = tracks.iter().enumerate().map(|(i, t)| bar(i, 0.0, t.accompaniment, BLUE));
        let drawn = chart.draw_series(accompaniment).map_err(|e| e.to_string())?;
        if text {
            drawn
                .label(format!("accompaniment (median {:.2} dB)", medians.1))
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], BLUE.filled()));
        }
        for (median, color) in [(medians.0, RED), (medians.1, BLUE)] {
            if median.is_finite() {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(median, 0.0), (median, n as f64)],
                        color.stroke_width(2),
                    )))
                    .map_err(|e| e.to_string())?;
            }
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())
    })
}
