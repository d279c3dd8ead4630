//! Pictures drawn with plotters: the separation's spectrograms and mask (`separate --plot`), the
//! per-track scores of `eval --plot`, and the training curves. Each PNG is drawn to a hidden
//! temporary file and renamed into place, so a failed drawing never leaves half a picture.
//! Text needs a font: DejaVu Sans from the system is used when present, otherwise the pictures
//! are drawn without labels (and [`has_font`] says so, for a note).

#[cfg(feature = "train")]
pub mod curves;
pub mod scores;
pub mod spectrogram;

use std::path::{Path, PathBuf};

use plotters::style::FontStyle;

use crate::audio::encode::{Sealed, side_name};
use crate::{Error, Result};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers DejaVu Sans as plotters' `sans-serif` once; false when no font file was found.
pub fn has_font() -> bool {
    static REGISTERED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONT_PATHS.iter().filter_map(|p| std::fs::read(p).ok()).next().is_some_and(|bytes| {
            let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, leaked).is_ok()
        })
    })
}

/// Draws into a temporary PNG beside `path` with `draw`, then renames it to `path`.
pub(crate) fn write_png_atomically(
    path: &Path,
    draw: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    crate::audio::encode::commit_together(vec![draw_png_sealed(path, true, draw)?])
}

/// Draws into a temporary PNG beside `path` with `draw`, for committing together with other
/// outputs ([`commit_together`](crate::audio::encode::commit_together)).
pub(crate) fn draw_png_sealed(
    path: &Path,
    overwrite: bool,
    draw: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<Sealed> {
    // plotters picks the encoder from the extension, so the temporary name ends in .png.
    let temp = PathBuf::from(format!("{}.png", side_name(path, "voxmask-tmp").display()));
    let sealed = Sealed::new(temp.clone(), path.to_path_buf(), overwrite);
    draw(&temp).map_err(|reason| Error::Encode { path: path.to_path_buf(), reason })?;
    Ok(sealed)
}
