//! A figure drawn once per backend (PNG through the bitmap backend and our own PNG encoding,
//! SVG as text), the embedded font, and a grid of panels with an optional title.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::line::LinePanel;
use super::parity::{HistogramPanel, ParityPanel};
use super::PlotError;

/// DejaVu Sans 2.37 (Debian's fonts-dejavu-core; licence in `fonts/LICENSE`).
static DEJAVU_SANS: &[u8] = include_bytes!("fonts/DejaVuSans.ttf");

/// Register the embedded font for every family name plotters asks for (once). Text sizes in
/// the plots are even numbers of pixels: plotters' ab_glyph backend places each glyph at
/// `size / 2 + top`, truncated, so odd sizes move glyphs by a pixel (a raised decimal point).
fn fonts() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| ["sans-serif", "serif", "monospace"].iter().all(|f| plotters::style::register_font(f, FontStyle::Normal, DEJAVU_SANS).is_ok()));
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw { figure: "any".into(), reason: "the embedded font could not be read".into() })
    }
}

/// The text of a drawing error.
pub(crate) fn de<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// The series legend every panel draws (a white box at `position`).
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>, position: SeriesLabelPosition) -> Result<(), String> {
    chart.configure_series_labels().position(position).background_style(WHITE.mix(0.85)).border_style(BLACK.mix(0.3)).label_font(("sans-serif", 14)).draw().map_err(de)
}

/// Something drawn onto any plotters backend.
pub trait Draw {
    /// Size in pixels (the SVG uses the same numbers).
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A rendered figure: its file stem and the PNG and SVG versions.
pub struct Figure {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub png: Vec<u8>,
    pub svg: String,
}

impl Figure {
    /// Draw `what` into a PNG and an SVG.
    pub fn render<D: Draw>(name: &str, what: &D) -> Result<Figure, PlotError> {
        fonts()?;
        let err = |reason: String| PlotError::Draw { figure: name.to_string(), reason };
        let (width, height) = what.size();
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
            root.fill(&WHITE).map_err(de).map_err(err)?;
            what.draw(&root).map_err(err)?;
            root.present().map_err(de).map_err(err)?;
        }
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            root.fill(&WHITE).map_err(de).map_err(err)?;
            what.draw(&root).map_err(err)?;
            root.present().map_err(de).map_err(err)?;
        }
        let png = encode_png(&rgb, width, height).map_err(|e| err(format!("PNG encoding: {e}")))?;
        Ok(Figure { name: name.to_string(), width, height, png, svg })
    }

    /// Write `DIR/NAME.png` and `DIR/NAME.svg` (each atomically); returns both paths.
    pub fn write(&self, dir: &Path) -> Result<[PathBuf; 2], PlotError> {
        std::fs::create_dir_all(dir).map_err(|e| PlotError::io(dir, e))?;
        let png = dir.join(format!("{}.png", self.name));
        let svg = dir.join(format!("{}.svg", self.name));
        nequip_core::train::run_dir::atomic_write(&png, &self.png).map_err(|e| PlotError::io(&png, e))?;
        nequip_core::train::run_dir::atomic_write(&svg, self.svg.as_bytes()).map_err(|e| PlotError::io(&svg, e))?;
        Ok([png, svg])
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, png::EncodingError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header()?;
    w.write_image_data(rgb)?;
    w.finish()?;
    Ok(out)
}

/// One panel of a grid.
pub enum Panel {
    Line(LinePanel),
    Parity(ParityPanel),
    Histogram(HistogramPanel),
}

impl Panel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        match self {
            Panel::Line(p) => p.draw(area),
            Panel::Parity(p) => p.draw(area),
            Panel::Histogram(p) => p.draw(area),
        }
    }
}

/// Panels in rows of `columns`, each `cell` pixels, under an optional title.
pub struct Grid {
    pub title: Option<String>,
    pub columns: usize,
    pub cell: (u32, u32),
    pub panels: Vec<Panel>,
}

const TITLE_HEIGHT: u32 = 40;

impl Grid {
    fn rows(&self) -> usize {
        self.panels.len().div_ceil(self.columns.max(1)).max(1)
    }
}

impl Draw for Grid {
    fn size(&self) -> (u32, u32) {
        let cols = self.columns.clamp(1, self.panels.len().max(1)) as u32;
        let title = if self.title.is_some() { TITLE_HEIGHT } else { 0 };
        (cols * self.cell.0, self.rows() as u32 * self.cell.1 + title)
    }

    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let body = match &self.title {
            Some(t) => {
                let (top, body) = area.split_vertically(TITLE_HEIGHT);
                top.draw(&Text::new(t.clone(), (12, 10), ("sans-serif", 20).into_font().color(&BLACK))).map_err(de)?;
                body
            }
            None => area.clone(),
        };
        let cols = self.columns.clamp(1, self.panels.len().max(1));
        let cells = body.split_evenly((self.rows(), cols));
        for (p, cell) in self.panels.iter().zip(&cells) {
            p.draw(cell)?;
        }
        Ok(())
    }
}

/// A compact tick label: `0`, `0.25`, `12.5`, `1500`, `1e-4`, `2.5e5`.
pub fn tick(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 || !a.is_finite() {
        return if a == 0.0 { "0".into() } else { format!("{v}") };
    }
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        return s.replace(".0e", "e");
    }
    let decimals = (3 - a.log10().floor() as i32).clamp(0, 6) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A tick label on an axis spanning `span`: values within rounding noise of zero are `0`.
pub fn tick_on(v: f64, span: f64) -> String {
    if v.abs() <= 1e-9 * span.abs() {
        "0".into()
    } else {
        tick(v)
    }
}

/// A number with thousands separators: `44,595`.
pub fn count(n: usize) -> String {
    let s = n.to_string();
    let groups: Vec<&str> = s.as_bytes().rchunks(3).rev().map(|g| std::str::from_utf8(g).unwrap_or("")).collect();
    groups.join(",")
}

/// The colours of the plots (matplotlib's tab10, in its order).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(1500.0), "1500");
        assert_eq!(tick(1e-4), "1e-4");
        assert_eq!(tick(0.1 + 0.2), "0.3");
        assert_eq!(tick_on(6.9e-18, 0.06), "0");
        assert_eq!(tick_on(0.01, 0.06), "0.01");
        assert_eq!(count(44595), "44,595");
        assert_eq!(count(991), "991");
        assert_eq!(count(1_000_000), "1,000,000");
    }
}
