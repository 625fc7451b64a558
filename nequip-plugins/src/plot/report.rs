//! The report page of a run (`nequip report`): one self-contained HTML file from the template
//! `report.html` — figures embedded as PNG data URIs, no scripts, no network resources (its
//! Content-Security-Policy allows only inline styles and `data:` images).

use std::fmt::Write as _;

use base64::Engine as _;

use super::figure::{count, tick, Figure};
use super::units::{MetricName, Units};
use super::PlotError;

const TEMPLATE: &str = include_str!("report.html");

/// A section that may be missing, with the reason shown on the page.
pub type Part<T> = Result<T, String>;

/// The test-set section.
pub struct TestSet {
    /// Which frames, e.g. `991 frames not used for training or validation`.
    pub description: String,
    pub metrics: Vec<(String, f64)>,
    pub figures: Vec<Figure>,
}

/// Everything the page shows.
pub struct Report {
    /// The run's name.
    pub title: String,
    /// The run directory as given.
    pub run_dir: String,
    /// `(what, value)` rows of the summary table: epochs, best epoch, parameters, ...
    pub summary: Vec<(String, String)>,
    pub learning_curves: Figure,
    pub test: Option<Part<TestSet>>,
    /// The time-per-epoch figure and its summary rows.
    pub timing: Part<(Figure, Vec<(String, String)>)>,
    /// `nequip data info` of the run's dataset.
    pub dataset: Part<String>,
    /// The run's `config.yaml`.
    pub config: String,
    pub units: Units,
}

/// Escape text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Replace every `{{name}}` of `template`; a placeholder without a value, or a value without a
/// placeholder, is an error (the template and this code must agree).
pub fn fill(template: &str, values: &[(&str, String)]) -> Result<String, PlotError> {
    let mut out = String::with_capacity(template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>());
    let mut rest = template;
    let mut used = vec![false; values.len()];
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").ok_or_else(|| PlotError::Empty("report template: unclosed `{{`".into()))? + start;
        let key = &rest[start + 2..end];
        let k = values.iter().position(|(n, _)| *n == key).ok_or_else(|| PlotError::Empty(format!("report template: no value for `{{{{{key}}}}}`")))?;
        used[k] = true;
        out.push_str(&values[k].1);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    if let Some(k) = used.iter().position(|u| !u) {
        return Err(PlotError::Empty(format!("report template: no placeholder `{{{{{}}}}}`", values[k].0)));
    }
    Ok(out)
}

fn img(f: &Figure, caption: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(&f.png);
    format!("<figure id=\"fig-{name}\"><img alt=\"{alt}\" width=\"{w}\" height=\"{h}\" src=\"data:image/png;base64,{data}\"><figcaption>{cap}</figcaption></figure>\n", name = esc(&f.name), alt = esc(&f.name.replace('_', " ")), w = f.width, h = f.height, cap = esc(caption))
}

fn table(head: [&str; 2], rows: &[(String, String)], numeric: bool) -> String {
    let mut s = String::from("<table>\n");
    if head.iter().any(|h| !h.is_empty()) {
        let _ = writeln!(s, "<tr><th>{}</th><th>{}</th></tr>", esc(head[0]), esc(head[1]));
    }
    let class = if numeric { " class=\"num\"" } else { "" };
    for (k, v) in rows {
        let _ = writeln!(s, "<tr><td>{}</td><td{class}>{}</td></tr>", esc(k), esc(v));
    }
    s.push_str("</table>\n");
    s
}

fn note(reason: &str) -> String {
    format!("<p class=\"note\">Not available: {}</p>\n", esc(reason))
}

impl Report {
    fn test_html(&self) -> String {
        let t = match &self.test {
            None => return "<p>Left out (<code>--no-test</code>).</p>\n".into(),
            Some(Err(e)) => return note(e),
            Some(Ok(t)) => t,
        };
        let mut s = format!("<p>{}.</p>\n", esc(&t.description));
        let mut rows = String::from("<table><tr><th>metric</th><th>value</th><th>unit</th></tr>\n");
        for (k, v) in &t.metrics {
            let unit = MetricName::parse(k).quantity.unit(&self.units).unwrap_or_default();
            let _ = writeln!(rows, "<tr><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>", esc(k), esc(&format!("{v:.6}")), esc(&unit));
        }
        rows.push_str("</table>\n");
        s.push_str(&rows);
        s.push_str("<div class=\"figs\">\n");
        for f in &t.figures {
            s.push_str(&img(f, &f.name.replace('_', " ")));
        }
        s.push_str("</div>\n");
        s
    }

    /// The page.
    pub fn html(&self) -> Result<String, PlotError> {
        let timing = match &self.timing {
            Ok((f, rows)) => format!("{}{}", table(["per epoch", "seconds"], rows, true), img(f, "wall time of each epoch (training and validation)")),
            Err(e) => note(e),
        };
        let dataset = match &self.dataset {
            Ok(text) => format!("<pre>{}</pre>\n", esc(text)),
            Err(e) => note(e),
        };
        fill(
            TEMPLATE,
            &[
                ("generator", format!("nequip-rs {}", env!("CARGO_PKG_VERSION"))),
                ("title", esc(&format!("nequip-rs run {}", self.title))),
                ("subtitle", esc(&format!("{} — report by nequip-rs {}; units assumed: {}, {}", self.run_dir, env!("CARGO_PKG_VERSION"), self.units.energy, self.units.length))),
                ("summary", table(["", ""], &self.summary, false)),
                ("learning_curves", img(&self.learning_curves, "training and validation per epoch; learning rate on the right axis of the loss panel; the best epoch marked")),
                ("test", self.test_html()),
                ("timing", timing),
                ("dataset", dataset),
                ("config", esc(&self.config)),
            ],
        )
    }
}

/// Summary rows of seconds per epoch: count, mean, median, min, max, total.
pub fn timing_rows(secs: &[f64]) -> Vec<(String, String)> {
    let mut v: Vec<f64> = secs.iter().copied().filter(|s| s.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return vec![];
    }
    let total: f64 = v.iter().sum();
    let median = if v.len() % 2 == 1 { v[v.len() / 2] } else { 0.5 * (v[v.len() / 2 - 1] + v[v.len() / 2]) };
    vec![
        ("epochs".into(), count(v.len())),
        ("mean".into(), tick(total / v.len() as f64)),
        ("median".into(), tick(median)),
        ("fastest".into(), tick(v[0])),
        ("slowest".into(), tick(v[v.len() - 1])),
        ("total".into(), tick(total)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_placeholders_match() {
        assert_eq!(fill("a {{x}} b", &[("x", "1".into())]).unwrap(), "a 1 b");
        assert!(fill("a {{x}} {{y}}", &[("x", "1".into())]).unwrap_err().to_string().contains("no value for `{{y}}`"));
        assert!(fill("a", &[("x", "1".into())]).unwrap_err().to_string().contains("no placeholder `{{x}}`"));
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let rows = timing_rows(&[1.0, 3.0, 2.0, 4.0]);
        assert_eq!(rows[2], ("median".to_string(), "2.5".to_string()));
        assert_eq!(rows[5], ("total".to_string(), "10".to_string()));
    }
}
