//! Predictions against labels of an evaluation, kept for plots: the energy per atom of every
//! frame, every force component, every stress component. `nequip evaluate --plots DIR` writes
//! them to `DIR/evaluation.csv` (one row per value: `target,frame,atom,type,species,component,
//! label,prediction`; `type` is the index of `species` in the model's `type_names`) with the printed metrics in `DIR/evaluation_metrics.csv` (`metric,value`), so
//! `nequip plot DIR` and `nequip report` can draw them again.

use std::fmt::Write as _;
use std::path::Path;

use nequip_core::data::keys::{ATOM_TYPE_KEY, FORCE_KEY, STRESS_KEY, TOTAL_ENERGY_KEY};
use nequip_core::data::AtomicData;

use super::units::Quantity;
use super::PlotError;

pub const EVALUATION_CSV: &str = "evaluation.csv";
pub const METRICS_CSV: &str = "evaluation_metrics.csv";
const HEADER: &str = "target,frame,atom,type,species,component,label,prediction";

/// What a point compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    EnergyPerAtom,
    Forces,
    Stress,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::EnergyPerAtom, Target::Forces, Target::Stress];

    pub fn name(self) -> &'static str {
        match self {
            Target::EnergyPerAtom => "energy_per_atom",
            Target::Forces => "forces",
            Target::Stress => "stress",
        }
    }
    pub fn quantity(self) -> Quantity {
        match self {
            Target::EnergyPerAtom => Quantity::EnergyPerAtom,
            Target::Forces => Quantity::Forces,
            Target::Stress => Quantity::Stress,
        }
    }
    /// Component names (`x`, `xy`, ...); empty for a scalar.
    pub fn components(self) -> &'static [&'static str] {
        match self {
            Target::EnergyPerAtom => &[],
            Target::Forces => &["x", "y", "z"],
            Target::Stress => &["xx", "xy", "xz", "yx", "yy", "yz", "zx", "zy", "zz"],
        }
    }
    fn parse(s: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == s)
    }
}

/// One compared value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// The frame's index in the dataset.
    pub frame: usize,
    pub atom: Option<usize>,
    /// Index into [`Evaluation::species`].
    pub species: Option<usize>,
    /// Index into [`Target::components`] (0 for a scalar).
    pub component: usize,
    pub label: f64,
    pub prediction: f64,
}

impl Point {
    pub fn error(&self) -> f64 {
        self.prediction - self.label
    }
}

/// The points of an evaluation, by target, and its metrics.
#[derive(Clone, Debug, Default)]
pub struct Evaluation {
    pub species: Vec<String>,
    points: [Vec<Point>; 3],
    /// The metrics as `nequip evaluate` prints them (`f_mae`, ...).
    pub metrics: Vec<(String, f64)>,
}

/// MAE and RMSE of the prediction errors.
pub fn mae_rmse(points: &[Point]) -> (f64, f64) {
    let n = points.len().max(1) as f64;
    let (a, s) = points.iter().fold((0.0, 0.0), |(a, s), p| (a + p.error().abs(), s + p.error() * p.error()));
    (a / n, (s / n).sqrt())
}

impl Evaluation {
    pub fn new(species: Vec<String>) -> Self {
        Evaluation { species, ..Default::default() }
    }

    pub fn points(&self, t: Target) -> &[Point] {
        &self.points[t as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.points.iter().all(Vec::is_empty)
    }

    /// Add a predicted frame and its labelled frame (dataset index `frame`); targets missing
    /// from either are skipped.
    pub fn push_frame(&mut self, frame: usize, label: &AtomicData, prediction: &AtomicData) {
        let n = label.num_nodes();
        let both = |key: &str| match (label.get(key), prediction.get(key)) {
            (Some(l), Some(p)) => Some((l.to_f64_vec(), p.to_f64_vec())),
            _ => None,
        };
        if let Some((l, p)) = both(TOTAL_ENERGY_KEY).filter(|(l, p)| !l.is_empty() && !p.is_empty() && n > 0) {
            self.points[Target::EnergyPerAtom as usize].push(Point { frame, atom: None, species: None, component: 0, label: l[0] / n as f64, prediction: p[0] / n as f64 });
        }
        if let Some((l, p)) = both(FORCE_KEY).filter(|(l, p)| l.len() == 3 * n && p.len() == 3 * n) {
            let types = label.get(ATOM_TYPE_KEY).and_then(|t| t.as_i64()).map(<[i64]>::to_vec).unwrap_or_default();
            for (i, (l, p)) in l.iter().zip(&p).enumerate() {
                let species = types.get(i / 3).and_then(|&t| usize::try_from(t).ok()).filter(|&t| t < self.species.len());
                self.points[Target::Forces as usize].push(Point { frame, atom: Some(i / 3), species, component: i % 3, label: *l, prediction: *p });
            }
        }
        if let Some((l, p)) = both(STRESS_KEY).filter(|(l, p)| l.len() == 9 && p.len() == 9) {
            for (c, (l, p)) in l.iter().zip(&p).enumerate() {
                self.points[Target::Stress as usize].push(Point { frame, atom: None, species: None, component: c, label: *l, prediction: *p });
            }
        }
    }

    /// Write `DIR/evaluation.csv` and `DIR/evaluation_metrics.csv` (each atomically).
    pub fn write(&self, dir: &Path) -> Result<(), PlotError> {
        std::fs::create_dir_all(dir).map_err(|e| PlotError::io(dir, e))?;
        let mut s = String::with_capacity(64 * self.points.iter().map(Vec::len).sum::<usize>() + 64);
        s.push_str(HEADER);
        s.push('\n');
        for t in Target::ALL {
            for p in self.points(t) {
                let opt = |v: Option<usize>| v.map(|v| v.to_string()).unwrap_or_default();
                let species = p.species.and_then(|i| self.species.get(i)).map(String::as_str).unwrap_or("");
                let component = t.components().get(p.component).copied().unwrap_or("");
                let _ = writeln!(s, "{},{},{},{},{species},{component},{:e},{:e}", t.name(), p.frame, opt(p.atom), opt(p.species), p.label, p.prediction);
            }
        }
        let f = dir.join(EVALUATION_CSV);
        nequip_core::train::run_dir::atomic_write(&f, s.as_bytes()).map_err(|e| PlotError::io(&f, e))?;
        let mut m = String::from("metric,value\n");
        for (k, v) in &self.metrics {
            let _ = writeln!(m, "{k},{v:e}");
        }
        let f = dir.join(METRICS_CSV);
        nequip_core::train::run_dir::atomic_write(&f, m.as_bytes()).map_err(|e| PlotError::io(&f, e))
    }

    /// Read an `evaluation.csv` and, when it is there, the `evaluation_metrics.csv` beside it.
    pub fn read(csv: &Path) -> Result<Self, PlotError> {
        let text = std::fs::read_to_string(csv).map_err(|e| PlotError::io(csv, e))?;
        let mut ev = Self::parse(&text, csv)?;
        let mf = csv.with_file_name(METRICS_CSV);
        if mf.exists() {
            let text = std::fs::read_to_string(&mf).map_err(|e| PlotError::io(&mf, e))?;
            for (i, line) in text.lines().enumerate().skip(1).filter(|(_, l)| !l.trim().is_empty()) {
                let (k, v) = line.split_once(',').ok_or_else(|| PlotError::bad(&mf, format!("line {}: expected `metric,value`", i + 1)))?;
                let v: f64 = v.trim().parse().map_err(|_| PlotError::bad(&mf, format!("line {}, column `value`: `{}` is not a number", i + 1, v.trim())))?;
                ev.metrics.push((k.trim().to_string(), v));
            }
        }
        Ok(ev)
    }

    /// Parse the text of an `evaluation.csv` (`file` names it in errors).
    pub fn parse(text: &str, file: &Path) -> Result<Self, PlotError> {
        let bad = |reason: String| PlotError::bad(file, reason);
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| bad(format!("the file is empty (expected the header `{HEADER}`)")))?;
        if header.trim() != HEADER {
            return Err(bad(format!("not an evaluation file: the header is `{}`, expected `{HEADER}`", header.trim())));
        }
        let mut ev = Evaluation::default();
        let cols: Vec<&str> = HEADER.split(',').collect();
        for (i, line) in lines {
            let row: Vec<&str> = line.split(',').map(str::trim).collect();
            if row.len() != cols.len() {
                return Err(bad(format!("line {}: {} cells, expected {}", i + 1, row.len(), cols.len())));
            }
            let at = |c: usize, what: &str| bad(format!("line {}, column `{}`: `{}` is not {what}", i + 1, cols[c], row[c]));
            let target = Target::parse(row[0]).ok_or_else(|| at(0, "energy_per_atom, forces or stress"))?;
            let index = |c: usize| -> Result<Option<usize>, PlotError> { if row[c].is_empty() { Ok(None) } else { row[c].parse().map(Some).map_err(|_| at(c, "an index")) } };
            let frame = index(1)?.ok_or_else(|| at(1, "an index"))?;
            let atom = index(2)?;
            let species = index(3)?;
            if let Some(t) = species {
                if ev.species.len() <= t {
                    ev.species.resize(t + 1, String::new());
                }
                match ev.species[t].as_str() {
                    "" => ev.species[t] = row[4].to_string(),
                    name if name != row[4] => return Err(at(4, &format!("`{name}`, the species of type {t} in an earlier line"))),
                    _ => {}
                }
            }
            let component = match (target.components(), row[5]) {
                ([], "") => 0,
                (names, c) => names.iter().position(|n| *n == c).ok_or_else(|| at(5, &format!("a component of {} ({})", target.name(), names.join(", "))))?,
            };
            let label: f64 = row[6].parse().map_err(|_| at(6, "a number"))?;
            let prediction: f64 = row[7].parse().map_err(|_| at(7, "a number"))?;
            ev.points[target as usize].push(Point { frame, atom, species, component, label, prediction });
        }
        if ev.is_empty() {
            return Err(bad("no points (only the header)".into()));
        }
        Ok(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let mut ev = Evaluation::new(vec!["H".into(), "C".into()]);
        ev.points[Target::Forces as usize].push(Point { frame: 3, atom: Some(1), species: Some(1), component: 2, label: 0.5, prediction: 0.25 });
        ev.points[Target::EnergyPerAtom as usize].push(Point { frame: 3, atom: None, species: None, component: 0, label: -1.0, prediction: -1.5 });
        ev.metrics.push(("f_mae".into(), 0.25));
        let dir = tempfile::tempdir().unwrap();
        ev.write(dir.path()).unwrap();
        let back = Evaluation::read(&dir.path().join(EVALUATION_CSV)).unwrap();
        assert_eq!(back.points(Target::Forces), ev.points(Target::Forces));
        assert_eq!(back.points(Target::EnergyPerAtom), ev.points(Target::EnergyPerAtom));
        // only species with points come back (type 0 has none here)
        assert_eq!(back.species, vec!["", "C"]);
        assert_eq!(back.metrics, ev.metrics);
        assert_eq!(mae_rmse(back.points(Target::Forces)), (0.25, 0.25));
        let f = Path::new("e.csv");
        let msg = |t: &str| Evaluation::parse(t, f).unwrap_err().to_string();
        assert!(msg("").contains("e.csv: the file is empty"));
        assert!(msg("epoch,wall\n1,2\n").contains("not an evaluation file"));
        assert!(msg(&format!("{HEADER}\n")).contains("no points"));
        assert!(msg(&format!("{HEADER}\nforces,1,0,0,H,w,1,2\n")).contains("line 2, column `component`: `w` is not a component of forces (x, y, z)"));
        assert!(msg(&format!("{HEADER}\nforces,1,0,0,H,x,1,2\nforces,1,1,0,C,x,1,2\n")).contains("line 3, column `species`: `C` is not `H`, the species of type 0 in an earlier line"));
        assert!(msg(&format!("{HEADER}\nvirial,1,,,,,1,2\n")).contains("column `target`"));
        assert!(msg(&format!("{HEADER}\nenergy_per_atom,1,,,,,1,nan?\n")).contains("column `prediction`"));
    }
}
