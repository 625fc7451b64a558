//! Parity plots (prediction against label, MAE/RMSE and the count in the legend): a scatter
//! plot, or above [`MAX_SCATTER`] points a log-density view (counts per bin, colour bar) of all
//! of them; and histograms of the force errors per species.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::evaluation::{mae_rmse, Evaluation, Point, Target};
use super::figure::{count, de, draw_legend, tick, tick_on, Figure, Grid, Panel, PALETTE};
use super::line::finite_range;
use super::units::Units;
use super::PlotError;

/// Above this many points a parity plot shows their density instead of each point.
pub const MAX_SCATTER: usize = 5000;
/// Bins per axis of a density view.
pub const DENSITY_BINS: usize = 100;
/// Bins of a histogram.
pub const HISTOGRAM_BINS: usize = 60;
/// The file stem of the per-species force-error histograms.
pub const FORCE_ERRORS: &str = "force_errors_per_species";

/// The file stem of a target's parity plot: `parity_forces`, ...
pub fn parity_name(t: Target) -> String {
    format!("parity_{}", t.name())
}

/// How the points are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParityMode {
    Scatter,
    /// Counts in `bins × bins` squares, colour on a log scale.
    Density { bins: usize },
}

/// Prediction against label.
#[derive(Clone, Debug)]
pub struct ParityPanel {
    pub title: String,
    /// `energy per atom (eV/atom)`.
    pub axis: String,
    /// `(label, prediction)`.
    pub points: Vec<(f64, f64)>,
    pub legend: String,
    pub mode: ParityMode,
}

const DENSITY_BAR_WIDTH: u32 = 95;

impl ParityPanel {
    pub fn new(title: String, axis: String, points: &[Point], unit: &str) -> Self {
        let (mae, rmse) = mae_rmse(points);
        let mode = if points.len() > MAX_SCATTER { ParityMode::Density { bins: DENSITY_BINS } } else { ParityMode::Scatter };
        let legend = format!("MAE {} {unit}, RMSE {} {unit}", tick(mae), tick(rmse));
        ParityPanel { title, axis, points: points.iter().map(|p| (p.label, p.prediction)).collect(), legend, mode }
    }

    fn range(&self) -> (f64, f64) {
        let (lo, hi) = finite_range(self.points.iter().flat_map(|(a, b)| [a, b]));
        if lo > hi {
            return (0.0, 1.0);
        }
        let pad = 0.04 * (hi - lo).max(1e-12 * hi.abs().max(1.0));
        (lo - pad, hi + pad)
    }

    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (lo, hi) = self.range();
        let (main, bar) = match self.mode {
            ParityMode::Scatter => (area.clone(), None),
            ParityMode::Density { .. } => {
                let w = area.dim_in_pixel().0;
                let (m, b) = area.split_horizontally(w.saturating_sub(DENSITY_BAR_WIDTH));
                (m, Some(b))
            }
        };
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(42)
            .y_label_area_size(78)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc(format!("label: {}", self.axis))
            .y_desc(format!("prediction: {}", self.axis))
            .x_labels(7)
            .y_labels(7)
            .x_label_formatter(&|v| tick_on(*v, hi - lo))
            .y_label_formatter(&|v| tick_on(*v, hi - lo))
            .axis_desc_style(("sans-serif", 14))
            .label_style(("sans-serif", 12))
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(de)?;
        let color = PALETTE[0];
        let mut density_max = None;
        match self.mode {
            ParityMode::Scatter => {
                let pts = self.points.iter().filter(|(a, b)| a.is_finite() && b.is_finite());
                chart.draw_series(pts.map(|p| Circle::new(*p, 2, color.mix(0.6).filled()))).map_err(de)?.label(&self.legend).legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
            }
            ParityMode::Density { bins } => {
                let counts = bin_counts(&self.points, lo, hi, bins);
                let max = counts.iter().copied().max().unwrap_or(1).max(2) as f64;
                density_max = Some(max);
                let w = (hi - lo) / bins as f64;
                let cells = counts.iter().enumerate().filter(|(_, c)| **c > 0).map(|(k, &c)| {
                    let (i, j) = (k % bins, k / bins);
                    let x0 = lo + i as f64 * w;
                    let y0 = lo + j as f64 * w;
                    Rectangle::new([(x0, y0), (x0 + w, y0 + w)], density_color(c as f64, max).filled())
                });
                let swatch = density_color(max, max);
                chart.draw_series(cells).map_err(de)?.label(&self.legend).legend(move |(x, y)| Rectangle::new([(x + 4, y - 5), (x + 14, y + 5)], swatch.filled()));
            }
        }
        let diag = BLACK.mix(0.55).stroke_width(1);
        chart.draw_series(LineSeries::new(vec![(lo, lo), (hi, hi)], diag)).map_err(de)?.label("prediction = label").legend(move |(x, y)| PathElement::new(vec![(x, y + 5), (x + 18, y - 5)], diag));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        if let (Some(bar), Some(max)) = (bar, density_max) {
            draw_colour_bar(&bar, max)?;
        }
        Ok(())
    }
}

/// Counts per square bin of `lo..hi` on both axes, row-major by prediction.
fn bin_counts(points: &[(f64, f64)], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0usize; bins * bins];
    let idx = |v: f64| (((v - lo) / (hi - lo) * bins as f64).floor() as isize).clamp(0, bins as isize - 1) as usize;
    for &(a, b) in points.iter().filter(|(a, b)| a.is_finite() && b.is_finite()) {
        counts[idx(b) * bins + idx(a)] += 1;
    }
    counts
}

/// Viridis on a log scale: 1 → dark, `max` → yellow.
fn density_color(c: f64, max: f64) -> RGBColor {
    ViridisRGB.get_color((c.max(1.0).ln() / max.ln()) as f32)
}

/// A vertical colour bar (log scale, 1 to `max` points per bin), labelled at powers of ten.
fn draw_colour_bar<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, max: f64) -> Result<(), String> {
    let (_, h) = area.dim_in_pixel();
    let (x0, x1, top, bottom) = (8, 26, 50, h as i32 - 60);
    let steps = 64;
    let y_of = |v: f64| bottom - ((v.ln() / max.ln()) * (bottom - top) as f64).round() as i32;
    for k in 0..steps {
        let (a, b) = (max.powf(k as f64 / steps as f64), max.powf((k + 1) as f64 / steps as f64));
        area.draw(&Rectangle::new([(x0, y_of(b)), (x1, y_of(a))], density_color(a, max).filled())).map_err(de)?;
    }
    let font = ("sans-serif", 12).into_font().color(&BLACK);
    let mut v = 1.0;
    while v <= max {
        let y = y_of(v);
        area.draw(&PathElement::new(vec![(x1, y), (x1 + 4, y)], BLACK)).map_err(de)?;
        area.draw(&Text::new(tick(v), (x1 + 6, y - 7), font.clone())).map_err(de)?;
        v *= 10.0;
    }
    let desc = ("sans-serif", 14).into_font().transform(FontTransform::Rotate270).color(&BLACK);
    area.draw(&Text::new("points per bin (log scale)", (x1 + 48, (top + bottom) / 2 + 80), desc)).map_err(de)?;
    Ok(())
}

/// Histograms of prediction errors, one panel per group.
#[derive(Clone, Debug)]
pub struct HistogramPanel {
    pub title: String,
    pub x_label: String,
    /// `(first edge, bin width, counts)`.
    pub bins: (f64, f64, Vec<usize>),
    pub legend: String,
    pub color: RGBColor,
}

impl HistogramPanel {
    /// Counts of `errors` in `n` bins of `-m..m`.
    pub fn new(title: String, x_label: String, errors: &[f64], m: f64, n: usize, legend: String, color: RGBColor) -> Self {
        let w = 2.0 * m / n as f64;
        let mut counts = vec![0usize; n];
        for e in errors.iter().filter(|e| e.is_finite()) {
            counts[(((e + m) / w).floor() as isize).clamp(0, n as isize - 1) as usize] += 1;
        }
        HistogramPanel { title, x_label, bins: (-m, w, counts), legend, color }
    }

    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (x0, w, counts) = &self.bins;
        let x1 = x0 + w * counts.len() as f64;
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.08;
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(42)
            .y_label_area_size(70)
            .build_cartesian_2d(*x0..x1, 0f64..top)
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc("count")
            .x_labels(7)
            .x_label_formatter(&|v| tick_on(*v, x1 - x0))
            .y_label_formatter(&|v| tick(*v))
            .axis_desc_style(("sans-serif", 14))
            .label_style(("sans-serif", 12))
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(de)?;
        let c = self.color;
        let bars = counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, &n)| Rectangle::new([(x0 + i as f64 * w, 0.0), (x0 + (i + 1) as f64 * w, n as f64)], c.mix(0.75).filled()));
        chart.draw_series(bars).map_err(de)?.label(&self.legend).legend(move |(x, y)| Rectangle::new([(x + 4, y - 5), (x + 14, y + 5)], c.filled()));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}

/// The parity plot of one target, `None` when the evaluation has no such points.
pub fn parity_figure(ev: &Evaluation, t: Target, units: &Units) -> Option<Grid> {
    let points = ev.points(t);
    if points.is_empty() {
        return None;
    }
    let q = t.quantity();
    let unit = q.unit(units).unwrap_or_default();
    let frames = points.iter().map(|p| p.frame).collect::<std::collections::BTreeSet<_>>().len();
    let what = match t {
        Target::EnergyPerAtom => format!("{} frames", count(points.len())),
        Target::Forces | Target::Stress => format!("{} components ({} frames)", count(points.len()), count(frames)),
    };
    let mut panel = ParityPanel::new(String::new(), format!("{} ({unit})", q.noun()), points, &unit);
    panel.title = match panel.mode {
        ParityMode::Scatter => format!("{}: {what}", t.name()),
        ParityMode::Density { bins } => format!("{}: {what}, density in {bins}×{bins} bins", t.name()),
    };
    Some(Grid { title: None, columns: 1, cell: (if matches!(panel.mode, ParityMode::Density { .. }) { 760 } else { 620 }, 600), panels: vec![Panel::Parity(panel)] })
}

/// Histograms of the force-component errors per species (a common range), `None` without forces.
pub fn force_error_figure(ev: &Evaluation, units: &Units) -> Option<Grid> {
    let forces = ev.points(Target::Forces);
    if forces.is_empty() {
        return None;
    }
    let unit = Target::Forces.quantity().unit(units).unwrap_or_default();
    let (lo, hi) = finite_range(forces.iter().map(Point::error).collect::<Vec<_>>().iter());
    let m = lo.abs().max(hi.abs()).max(1e-12);
    let mut species: Vec<Option<usize>> = forces.iter().map(|p| p.species).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    species.sort();
    let panels: Vec<Panel> = species
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let pts: Vec<Point> = forces.iter().filter(|p| p.species == *s).copied().collect();
            let errors: Vec<f64> = pts.iter().map(Point::error).collect();
            let (mae, rmse) = mae_rmse(&pts);
            let name = s.and_then(|i| ev.species.get(i)).cloned().unwrap_or_else(|| "unknown species".into());
            let legend = format!("MAE {} {unit}, RMSE {} {unit}", tick(mae), tick(rmse));
            Panel::Histogram(HistogramPanel::new(format!("{name}: {} force components", count(errors.len())), format!("force error, prediction − label ({unit})"), &errors, m, HISTOGRAM_BINS, legend, PALETTE[k % PALETTE.len()]))
        })
        .collect();
    Some(Grid { title: Some("force errors per species".into()), columns: 2, cell: (620, 400), panels })
}

/// Every figure of an evaluation: a parity plot per target present, the force-error histograms.
pub fn evaluation_figures(ev: &Evaluation, units: &Units) -> Result<Vec<Figure>, PlotError> {
    let mut out = Vec::new();
    for t in Target::ALL {
        if let Some(g) = parity_figure(ev, t, units) {
            out.push(Figure::render(&parity_name(t), &g)?);
        }
    }
    if let Some(g) = force_error_figure(ev, units) {
        out.push(Figure::render(FORCE_ERRORS, &g)?);
    }
    if out.is_empty() {
        return Err(PlotError::Empty("the evaluation has no energies, forces or stresses with labels".into()));
    }
    Ok(out)
}
