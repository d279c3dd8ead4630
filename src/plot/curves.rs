//! A PNG of the training curves (loss, validation SDR per epoch).

use std::path::Path;

use plotters::prelude::*;

use crate::Result;
use crate::train::trainer::EpochLog;

/// One curve: its name, colour and (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-3);
    (lo - pad, hi + pad)
}

/// Draws `history` into `path` (two panels: losses and validation SDR per epoch).
pub fn curves(path: &Path, history: &[EpochLog]) -> Result<()> {
    // Pre-training epochs have another loss and no scores: only supervised epochs are drawn.
    let history: Vec<&EpochLog> = history.iter().filter(|h| !h.pretrain).collect();
    if history.is_empty() {
        return Ok(());
    }
    let text = super::has_font();
    // Drawn to a temporary file and renamed, like the other pictures: a run killed mid-draw
    // leaves the previous curves, never half a PNG.
    super::write_png_atomically(path, |temp| {
        let root = BitMapBackend::new(temp, (1000, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(500);
        let epochs = (0.0, history.last().map_or(1, |h| h.epoch).max(1) as f64);
        let panels: [(&str, Vec<Series>); 2] = [
            (
                "loss (BCE)",
                vec![
                    ("train", BLUE, history.iter().map(|h| (h.epoch as f64, h.train_loss)).collect()),
                    ("validation", RED, history.iter().map(|h| (h.epoch as f64, h.val_loss)).collect()),
                ],
            ),
            (
                "validation SDR (dB, BSS Eval v4)",
                vec![
                    ("vocals", RED, history.iter().map(|h| (h.epoch as f64, h.val_sdr_vocals)).collect()),
                    (
                        "accompaniment",
                        BLUE,
                        history.iter().map(|h| (h.epoch as f64, h.val_sdr_accompaniment)).collect(),
                    ),
                ],
            ),
        ];
        for (area, (title, series)) in [left, right].into_iter().zip(panels) {
            let y = range(series.iter().flat_map(|s| s.2.iter().map(|p| p.1)));
            let mut builder = ChartBuilder::on(&area);
            builder.margin(12).x_label_area_size(if text { 30 } else { 0 }).y_label_area_size(if text {
                50
            } else {
                0
            });
            if text {
                builder.caption(title, ("sans-serif", 18));
            }
            let mut chart = builder.build_cartesian_2d(epochs.0..epochs.1, y.0..y.1).map_err(|e| e.to_string())?;
            if text {
                chart.configure_mesh().x_desc("epoch").draw().map_err(|e| e.to_string())?;
            }
            for (name, color, points) in series {
                let drawn =
                    chart.draw_series(LineSeries::new(points, color.stroke_width(2))).map_err(|e| e.to_string())?;
                if text {
                    drawn.label(name).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
                }
            }
            if text {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        root.present().map_err(|e| e.to_string())
    })
}
