//! Line charts: one polyline per series (non-finite points left out), a log scale where the
//! values span more than a decade, an optional second y axis on the right (the learning rate)
//! and an optional vertical marker (the best epoch).

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::figure::{de, draw_legend, tick, tick_on};

/// Linear or logarithmic axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
}

impl Scale {
    /// Log when every finite value is positive and they span at least a factor of 10.
    pub fn auto<'a>(values: impl IntoIterator<Item = &'a f64>) -> Scale {
        let (lo, hi) = finite_range(values);
        if lo > 0.0 && hi / lo >= 10.0 {
            Scale::Log
        } else {
            Scale::Linear
        }
    }
}

/// A y axis: its label and scale.
#[derive(Clone, Debug)]
pub struct Axis {
    pub label: String,
    pub scale: Scale,
}

/// One curve.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub color: RGBColor,
}

impl Series {
    fn points(&self) -> Vec<(f64, f64)> {
        self.x.iter().zip(&self.y).filter(|(x, y)| x.is_finite() && y.is_finite()).map(|(x, y)| (*x, *y)).collect()
    }
}

/// A vertical line at `x` with a legend entry.
#[derive(Clone, Debug)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    pub color: RGBColor,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct LinePanel {
    pub title: String,
    pub x_label: String,
    pub y: Axis,
    pub series: Vec<Series>,
    /// A second y axis on the right with its curve.
    pub right: Option<(Axis, Series)>,
    pub marker: Option<Marker>,
}

/// Points are drawn as dots too when a curve has at most this many.
const MAX_DOTS: usize = 40;

/// `(min, max)` of the finite values; `(inf, -inf)` when there are none.
pub(crate) fn finite_range<'a>(values: impl IntoIterator<Item = &'a f64>) -> (f64, f64) {
    values.into_iter().filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)))
}

/// A padded plotting range for values on `scale` (a log axis gets only the positive values).
fn axis_range<'a>(values: impl IntoIterator<Item = &'a f64>, scale: Scale) -> (f64, f64) {
    match scale {
        Scale::Log => {
            let (lo, hi) = finite_range(values.into_iter().filter(|v| **v > 0.0));
            if lo > hi {
                (0.1, 10.0)
            } else {
                (lo / 1.25, hi * 1.25)
            }
        }
        Scale::Linear => {
            let (lo, hi) = finite_range(values);
            if lo > hi {
                (0.0, 1.0)
            } else if hi - lo <= 1e-12 * hi.abs().max(1e-300) {
                let d = if lo == 0.0 { 1.0 } else { 0.1 * lo.abs() };
                (lo - d, hi + d)
            } else {
                let pad = 0.05 * (hi - lo);
                (lo - pad, hi + pad)
            }
        }
    }
}

impl LinePanel {
    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (x0, x1) = finite_range(self.series.iter().flat_map(|s| &s.x));
        let x = if x0 > x1 {
            0.0..1.0
        } else if x1 - x0 < 1e-12 {
            x0 - 0.5..x1 + 0.5
        } else {
            x0..x1
        };
        let y = axis_range(self.series.iter().flat_map(|s| &s.y), self.y.scale);
        let (r, rs) = match &self.right {
            Some((a, s)) => (axis_range(&s.y, a.scale), a.scale),
            None => ((0.0, 1.0), Scale::Linear),
        };
        use Scale::*;
        match (self.y.scale, rs) {
            (Linear, Linear) => self.draw_on(area, x, y, y.0..y.1, r.0..r.1),
            (Linear, Log) => self.draw_on(area, x, y, y.0..y.1, (r.0..r.1).log_scale()),
            (Log, Linear) => self.draw_on(area, x, y, (y.0..y.1).log_scale(), r.0..r.1),
            (Log, Log) => self.draw_on(area, x, y, (y.0..y.1).log_scale(), (r.0..r.1).log_scale()),
        }
    }

    fn draw_on<DB, Y, R>(&self, area: &DrawingArea<DB, Shift>, x: Range<f64>, y: (f64, f64), y_spec: Y, r_spec: R) -> Result<(), String>
    where
        DB: DrawingBackend,
        Y: AsRangedCoord<Value = f64>,
        R: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
        R::CoordDescType: ValueFormatter<f64>,
    {
        let right_width = if self.right.is_some() { 75 } else { 10 };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(42)
            .y_label_area_size(78)
            .right_y_label_area_size(right_width)
            .build_cartesian_2d(x.clone(), y_spec)
            .map_err(de)?
            .set_secondary_coord(x, r_spec);
        // epochs: label whole numbers only
        let integral_x = self.series.iter().flat_map(|s| &s.x).all(|v| v.fract() == 0.0);
        let x_fmt = |v: &f64| if !integral_x { tick(*v) } else if v.fract() == 0.0 { format!("{v:.0}") } else { String::new() };
        let y_fmt = |v: &f64| tick_on(*v, y.1 - y.0);
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y.label)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&y_fmt)
            .axis_desc_style(("sans-serif", 14))
            .label_style(("sans-serif", 12))
            .light_line_style(BLACK.mix(0.04))
            .bold_line_style(BLACK.mix(0.12))
            .draw()
            .map_err(de)?;
        for s in &self.series {
            let pts = s.points();
            let style = s.color.stroke_width(2);
            let dots = pts.len() <= MAX_DOTS;
            chart.draw_series(LineSeries::new(pts.clone(), style)).map_err(de)?.label(&s.label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            if dots {
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, s.color.filled()))).map_err(de)?;
            }
        }
        if let Some((axis, s)) = &self.right {
            chart
                .configure_secondary_axes()
                .y_desc(&axis.label)
                .y_labels(6)
                .y_label_formatter(&|v| tick(*v))
                .axis_desc_style(("sans-serif", 14))
                .label_style(("sans-serif", 12))
                .draw()
                .map_err(de)?;
            let style = s.color.stroke_width(1);
            chart.draw_secondary_series(LineSeries::new(s.points(), style)).map_err(de)?.label(&s.label).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        if let Some(m) = &self.marker {
            let style = m.color.stroke_width(1);
            chart.draw_series(LineSeries::new(vec![(m.x, y.0), (m.x, y.1)], style)).map_err(de)?.label(&m.label).legend(move |(x, y)| PathElement::new(vec![(x + 9, y - 6), (x + 9, y + 6)], style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    }
}
