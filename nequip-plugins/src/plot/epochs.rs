//! `metrics_epoch.csv` (nequip's and ours): `epoch`, `wall`, `LR`, then `training_*` and
//! `validation_*` columns. The trainer rewrites the file atomically after each epoch, so it can
//! be read while a run is going.

use std::path::{Path, PathBuf};

use super::PlotError;

/// Training or validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Training,
    Validation,
}

impl Phase {
    pub fn prefix(self) -> &'static str {
        match self {
            Phase::Training => "training_",
            Phase::Validation => "validation_",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Phase::Training => "training",
            Phase::Validation => "validation",
        }
    }
}

/// One metric of one phase, a value per epoch (NaN where a diverged run wrote one).
#[derive(Clone, Debug)]
pub struct MetricColumn {
    pub phase: Phase,
    /// The name without the phase prefix: `loss`, `loss_f`, `f_mae`, ...
    pub metric: String,
    pub values: Vec<f64>,
}

/// The rows of a `metrics_epoch.csv`.
#[derive(Clone, Debug)]
pub struct EpochTable {
    pub file: PathBuf,
    pub epoch: Vec<f64>,
    /// Seconds since the (re)start of the `train` call that ran the epoch.
    pub wall: Option<Vec<f64>>,
    pub lr: Option<Vec<f64>>,
    pub columns: Vec<MetricColumn>,
}

impl EpochTable {
    pub fn read(path: &Path) -> Result<Self, PlotError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlotError::io(path, e))?;
        Self::parse(&text, path)
    }

    /// Parse the text of `file`: every error names the file, and the line and column it is in.
    pub fn parse(text: &str, file: &Path) -> Result<Self, PlotError> {
        let bad = |reason: String| PlotError::bad(file, reason);
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
        let (_, header) = lines.next().ok_or_else(|| bad("the file is empty (expected the header `epoch,wall,LR,training_...`)".into()))?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |n: &str| names.iter().position(|h| *h == n);
        let shown = || names.iter().take(8).copied().collect::<Vec<_>>().join(", ");
        let epoch_col = find("epoch").ok_or_else(|| bad(format!("not a metrics_epoch.csv: no `epoch` column (columns: {})", shown())))?;
        let metric_cols: Vec<(usize, Phase, &str)> = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| {
                [Phase::Training, Phase::Validation].into_iter().find_map(|p| n.strip_prefix(p.prefix()).filter(|m| !m.is_empty()).map(|m| (i, p, m)))
            })
            .collect();
        if metric_cols.is_empty() {
            return Err(bad(format!("not a metrics_epoch.csv: no `training_*` or `validation_*` column (columns: {})", shown())));
        }
        let mut cells: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let mut rows: Vec<(usize, &str)> = lines.collect();
        // a run being written may leave its last line unfinished (no newline yet): skip it
        if !text.ends_with('\n') && rows.last().is_some_and(|(_, l)| l.split(',').count() < names.len()) {
            rows.pop();
        }
        for (i, line) in rows {
            let row: Vec<&str> = line.split(',').map(str::trim).collect();
            if row.len() != names.len() {
                return Err(bad(format!("line {}: {} cells, the header has {}", i + 1, row.len(), names.len())));
            }
            for (c, cell) in row.iter().enumerate() {
                let v: f64 = cell.parse().map_err(|_| bad(format!("line {}, column `{}`: `{cell}` is not a number", i + 1, names[c])))?;
                cells[c].push(v);
            }
        }
        if cells[epoch_col].is_empty() {
            return Err(bad("no epochs yet (only the header)".into()));
        }
        let take = |i: usize| cells[i].clone();
        let columns = metric_cols.iter().map(|&(i, phase, m)| MetricColumn { phase, metric: m.to_string(), values: take(i) }).collect();
        Ok(EpochTable { file: file.to_path_buf(), epoch: take(epoch_col), wall: find("wall").map(take), lr: find("LR").map(take), columns })
    }

    pub fn len(&self) -> usize {
        self.epoch.len()
    }
    pub fn is_empty(&self) -> bool {
        self.epoch.is_empty()
    }

    /// The metric names in file order, each once (`loss`, `f_mae`, ...).
    pub fn metrics(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in &self.columns {
            if !out.contains(&c.metric.as_str()) {
                out.push(&c.metric);
            }
        }
        out
    }

    pub fn column(&self, phase: Phase, metric: &str) -> Option<&[f64]> {
        self.columns.iter().find(|c| c.phase == phase && c.metric == metric).map(|c| c.values.as_slice())
    }

    /// A full column name (`validation_loss`, `training_f_mae`).
    pub fn column_named(&self, name: &str) -> Option<&[f64]> {
        [Phase::Training, Phase::Validation].into_iter().find_map(|p| name.strip_prefix(p.prefix()).and_then(|m| self.column(p, m)))
    }

    /// The best epoch by `metrics_key` as the trainer chooses it (the first smallest value):
    /// `(epoch, value)`; `None` when the column is missing or has no finite value.
    pub fn best(&self, metrics_key: &str) -> Option<(f64, f64)> {
        let col = self.column_named(metrics_key)?;
        let mut best: Option<(f64, f64)> = None;
        for (e, v) in self.epoch.iter().zip(col) {
            if v.is_finite() && best.is_none_or(|(_, b)| *v < b) {
                best = Some((*e, *v));
            }
        }
        best
    }

    /// Seconds per epoch from the `wall` column (which restarts at 0 when a run is continued).
    pub fn epoch_seconds(&self) -> Option<Vec<f64>> {
        let wall = self.wall.as_ref()?;
        Some(wall.iter().enumerate().map(|(i, &w)| if i > 0 && w >= wall[i - 1] { w - wall[i - 1] } else { w }).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<EpochTable, PlotError> {
        EpochTable::parse(t, Path::new("m.csv"))
    }

    #[test]
    fn reads_ours_and_nequips_header() {
        let t = parse("epoch, wall, LR,training_loss,training_f_mae,validation_loss,validation_f_mae\n1, 1.5, 0.01, 2.0, 0.5, 3.0, 0.6\n2, 2.5, 0.005, 1.0, 0.4, 1.0, 0.5\n3, 0.5, 0.005, 1.0, 0.4, 1.0, 0.5\n").unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!(t.metrics(), vec!["loss", "f_mae"]);
        assert_eq!(t.column(Phase::Validation, "f_mae").unwrap(), &[0.6, 0.5, 0.5]);
        assert_eq!(t.best("validation_loss"), Some((2.0, 1.0)));
        assert_eq!(t.epoch_seconds().unwrap(), vec![1.5, 1.0, 0.5]);
        assert_eq!(t.lr.as_deref(), Some(&[0.01, 0.005, 0.005][..]));
    }

    #[test]
    fn bad_files_are_named_errors() {
        let msg = |t: &str| parse(t).unwrap_err().to_string();
        assert!(msg("").contains("m.csv: the file is empty"));
        assert!(msg("a,b\n1,2\n").contains("m.csv: not a metrics_epoch.csv: no `epoch` column (columns: a, b)"));
        assert!(msg("epoch,wall\n1,2\n").contains("no `training_*` or `validation_*` column"));
        assert!(msg("epoch,training_loss\n").contains("no epochs yet"));
        assert!(msg("epoch,training_loss\n1,x\n").contains("line 2, column `training_loss`: `x` is not a number"));
        assert!(msg("epoch,training_loss\n1\n").contains("line 2: 1 cells, the header has 2"));
        // an unfinished last line of a running training is left out
        assert_eq!(parse("epoch,wall,training_loss\n1,2,3\n2,4").unwrap().len(), 1);
    }
}
