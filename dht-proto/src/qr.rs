//! QR codes of share tickets, drawn as text: an SVG document for the web UI and Unicode
//! half blocks for a terminal. Pure string output (no image crate, no I/O), kept next
//! to the ticket format so that the CLI and the web UI draw the same code for the same
//! ticket; the `qrcode` crate only computes the module matrix.
//!
//! Give these functions [`Ticket::qr_text`](crate::ticket::Ticket::qr_text): the upper-case
//! form fits QR's alphanumeric mode, so a ticket with three addresses (293 characters)
//! is a version 10 code at error correction level M (57 × 57 modules).

use qrcode::{Color, EcLevel, QrCode};

/// Quiet zone around the SVG code, in modules (the QR standard asks for 4).
pub const SVG_QUIET_ZONE: usize = 4;
/// Quiet zone around the terminal code, in modules: 2, to fit an 80-column terminal
/// (phone scanners read it; the terminal's own margin adds to it).
pub const TERMINAL_QUIET_ZONE: usize = 2;
/// Size of one module in the SVG's `width`/`height`, in CSS pixels (the drawing scales:
/// it has a `viewBox`).
pub const SVG_MODULE_PX: usize = 4;

/// Why a text has no QR code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    /// Too long for the largest QR code (version 40).
    #[error("text of {0} bytes is too long for a QR code")]
    TooLong(usize),
}

/// A QR code's modules: `true` is dark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrMatrix {
    width: usize,
    dark: Vec<bool>,
}

impl QrMatrix {
    /// The code for `text`, at error correction level M (15 % of the code can be lost),
    /// or L for a text too long for M.
    pub fn new(text: &str) -> Result<Self, QrError> {
        let code = QrCode::with_error_correction_level(text, EcLevel::M)
            .or_else(|_| QrCode::with_error_correction_level(text, EcLevel::L))
            .map_err(|_| QrError::TooLong(text.len()))?;
        Ok(QrMatrix {
            width: code.width(),
            dark: code
                .to_colors()
                .into_iter()
                .map(|c| c == Color::Dark)
                .collect(),
        })
    }

    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Whether the module at column `x`, row `y` is dark; outside the code (the quiet
    /// zone) it is light.
    pub fn is_dark(&self, x: isize, y: isize) -> bool {
        let w = self.width as isize;
        (0..w).contains(&x) && (0..w).contains(&y) && self.dark[(y * w + x) as usize]
    }

    /// An SVG document: a white square with the quiet zone, and one black path of the
    /// dark modules, merged into horizontal runs.
    pub fn to_svg(&self) -> String {
        let side = self.width + 2 * SVG_QUIET_ZONE;
        let px = side * SVG_MODULE_PX;
        let mut path = String::new();
        for y in 0..self.width as isize {
            let mut x = 0isize;
            while x < self.width as isize {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while self.is_dark(x, y) {
                    x += 1;
                }
                let q = SVG_QUIET_ZONE as isize;
                let run = x - start;
                path.push_str(&format!("M{} {}h{run}v1h-{run}z", start + q, y + q));
            }
        }
        format!(
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" "#,
                r#"width="{px}" height="{px}" shape-rendering="crispEdges">"#,
                r##"<rect width="{side}" height="{side}" fill="#fff"/>"##,
                r##"<path fill="#000" d="{path}"/></svg>"##
            ),
            side = side,
            px = px,
            path = path
        )
    }

    /// Lines of Unicode half blocks (`▀ ▄ █` and space), two module rows per line, with a
    /// quiet zone of [`TERMINAL_QUIET_ZONE`]. `dark_background`: the terminal shows
    /// light text on a dark background, so light modules are drawn as blocks; otherwise
    /// dark modules are.
    pub fn to_terminal(&self, dark_background: bool) -> String {
        let q = TERMINAL_QUIET_ZONE as isize;
        let end = self.width as isize + q;
        let inked = |x: isize, y: isize| self.is_dark(x, y) != dark_background;
        let mut out = String::new();
        let mut y = -q;
        while y < end {
            for x in -q..end {
                out.push(match (inked(x, y), y + 1 < end && inked(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            out.push('\n');
            y += 2;
        }
        out
    }
}

/// The SVG drawing of the QR code of `text` (see [`QrMatrix::to_svg`]).
pub fn qr_svg(text: &str) -> Result<String, QrError> {
    Ok(QrMatrix::new(text)?.to_svg())
}

/// The terminal drawing of the QR code of `text` (see [`QrMatrix::to_terminal`]).
pub fn qr_terminal(text: &str, dark_background: bool) -> Result<String, QrError> {
    Ok(QrMatrix::new(text)?.to_terminal(dark_background))
}

#[cfg(test)]
mod tests;
