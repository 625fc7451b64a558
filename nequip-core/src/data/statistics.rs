//! Dataset statistics. Mirrors `AtomicInMemoryDataset.statistics` / `_per_atom_statistics` /
//! `_per_species_statistics` (`nequip/data/_dataset/_base_datasets.py`), the ridge regression
//! `nequip/utils/regressor.py::solver`, and `avg_num_neighbors: auto`
//! (`nequip/model/builder_utils.py`) of nequip 0.6.2. Everything in float64 with compensated
//! sums.
//!
//! Modes: `count`, `rms`, `mean_std`, `absmax`, `per_atom_{mean_std,rms,absmax}` (graph fields
//! divided by the frame's atom count), `per_species_mean_std` (graph field: ridge regression on
//! species counts; node field: per-type mean/std), `per_species_rms` (node field).

use super::array::Array;
use super::atomic_data::AtomicData;
use super::dataset::InMemoryDataset;
use super::error::DataError;
use super::fields::{field_kind, FieldKind};
use super::keys::ATOM_TYPE_KEY;

/// Compensated (Neumaier) sum.
pub fn sum(xs: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in xs {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

/// Mean and standard deviation (`n - 1` denominator when `unbiased`).
pub fn mean_std(xs: &[f64], unbiased: bool) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = sum(xs.iter().copied()) / n;
    let var = sum(xs.iter().map(|x| (x - m) * (x - m))) / if unbiased { n - 1.0 } else { n };
    (m, var.sqrt())
}

/// A field's values over the selected frames as rows `[n, d]` (row-major), plus `d`.
struct Rows {
    data: Vec<f64>,
    width: usize,
    /// frame index (within the selection) of each row
    owner: Vec<usize>,
}

impl Rows {
    fn n(&self) -> usize {
        self.owner.len()
    }
    fn column(&self, c: usize) -> Vec<f64> {
        self.data
            .iter()
            .skip(c)
            .step_by(self.width)
            .copied()
            .collect()
    }
}

/// The frames statistics are computed over: `indices[::stride]`, sorted (as nequip's
/// `_selectors`), or all frames.
pub fn selection(n_frames: usize, indices: Option<&[usize]>, stride: usize) -> Vec<usize> {
    let stride = stride.max(1);
    let mut sel: Vec<usize> = match indices {
        Some(i) => i.iter().step_by(stride).copied().collect(),
        None => (0..n_frames).step_by(stride).collect(),
    };
    sel.sort_unstable();
    sel
}

fn gather(frames: &[&AtomicData], field: &str, file: &str) -> Result<(Rows, FieldKind), DataError> {
    let kind = field_kind(field).ok_or_else(|| {
        DataError::option(
            "statistics",
            format!("`{field}` is not registered as a node, edge or graph field"),
        )
    })?;
    let mut rows = Rows {
        data: Vec::new(),
        width: 0,
        owner: Vec::new(),
    };
    for (f, frame) in frames.iter().enumerate() {
        let a = frame.get(field).ok_or_else(|| DataError::MissingKey {
            file: file.into(),
            key: field.into(),
            available: frame
                .fields()
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
        })?;
        let (n, w) = match kind {
            FieldKind::Graph => (1, a.numel()),
            _ => (a.len0(), a.row_size()),
        };
        if f > 0 && w != rows.width {
            return Err(DataError::option(
                "statistics",
                format!("`{field}` has a different shape in different frames"),
            ));
        }
        if w == 0 {
            return Err(DataError::option(
                "statistics",
                format!("`{field}` is empty in frame {f}"),
            ));
        }
        rows.width = w;
        rows.data.extend(a.to_f64_vec());
        rows.owner.extend(std::iter::repeat_n(f, n));
    }
    Ok((rows, kind))
}

fn scalar(x: f64) -> Array {
    Array::f64(vec![], vec![x])
}

fn basic(mode: &str, r: &Rows, unbiased: bool) -> Result<Vec<Array>, DataError> {
    Ok(match mode {
        "rms" => vec![scalar(
            (sum(r.data.iter().map(|x| x * x)) / r.data.len() as f64).sqrt(),
        )],
        "absmax" => vec![scalar(r.data.iter().fold(0.0f64, |m, x| m.max(x.abs())))],
        "mean_std" => {
            if r.n() < 2 {
                return Err(DataError::option(
                    "statistics",
                    "can't do standard deviation without at least two samples",
                ));
            }
            let (m, s): (Vec<f64>, Vec<f64>) = (0..r.width)
                .map(|c| mean_std(&r.column(c), unbiased))
                .unzip();
            vec![Array::f64(vec![r.width], m), Array::f64(vec![r.width], s)]
        }
        other => {
            return Err(DataError::option(
                "statistics",
                format!("cannot handle statistics mode `{other}`"),
            ))
        }
    })
}

/// Per-frame type counts `[n_frames, max_type + 1]` (nequip's `bincount(atom_types, batch)`).
fn type_counts(frames: &[&AtomicData]) -> Result<Vec<Vec<f64>>, DataError> {
    let (types, nt) = frame_types(frames)?;
    Ok(types
        .iter()
        .map(|t| {
            let mut c = vec![0.0; nt];
            t.iter().for_each(|&x| c[x as usize] += 1.0);
            c
        })
        .collect())
}

/// Atom types of each frame, checked to lie in `0..2^20`; and `max + 1`.
fn frame_types<'a>(frames: &[&'a AtomicData]) -> Result<(Vec<&'a [i64]>, usize), DataError> {
    let types: Vec<&[i64]> = frames
        .iter()
        .map(|f| f.get(ATOM_TYPE_KEY).and_then(|a| a.as_i64()).unwrap_or(&[]))
        .collect();
    if let Some(bad) = types
        .iter()
        .flat_map(|t| t.iter())
        .find(|&&t| !(0..1 << 20).contains(&t))
    {
        return Err(DataError::option(
            "statistics",
            format!("invalid atom type {bad}"),
        ));
    }
    let nt = types
        .iter()
        .flat_map(|t| t.iter())
        .copied()
        .max()
        .map_or(0, |m| m as usize + 1);
    Ok((types, nt))
}

/// Computes `modes[i]` of `fields[i]` over `frames` (nequip's `statistics`); `alpha` is the ridge
/// regularisation of `per_species_mean_std` on graph fields (nequip default 0.001). Each result
/// is nequip's tuple: e.g. `[mean, std]` or `[rms]`.
pub fn statistics(
    frames: &[&AtomicData],
    fields: &[&str],
    modes: &[&str],
    unbiased: bool,
    alpha: f64,
    file: &str,
) -> Result<Vec<Vec<Array>>, DataError> {
    if fields.len() != modes.len() {
        return Err(DataError::option(
            "statistics",
            "fields and modes must have the same length",
        ));
    }
    let mut out = Vec::new();
    for (&field, &mode) in fields.iter().zip(modes) {
        let (rows, kind) = gather(frames, field, file)?;
        let res = if mode == "count" {
            let mut v = rows.data.clone();
            v.sort_by(f64::total_cmp);
            let mut uniq: Vec<f64> = Vec::new();
            let mut counts: Vec<i64> = Vec::new();
            for x in v {
                if uniq.last() == Some(&x) {
                    *counts.last_mut().unwrap_or(&mut 0) += 1;
                } else {
                    uniq.push(x);
                    counts.push(1);
                }
            }
            vec![
                Array::f64(vec![uniq.len()], uniq),
                Array::i64(vec![counts.len()], counts),
            ]
        } else if let Some(m) = mode.strip_prefix("per_atom_") {
            if kind != FieldKind::Graph {
                return Err(DataError::option("statistics", format!("it doesn't make sense to ask for `{mode}` since `{field}` is not per-graph")));
            }
            let mut r = rows;
            for (k, x) in r.data.iter_mut().enumerate() {
                *x /= frames[r.owner[k / r.width]].num_nodes() as f64;
            }
            basic(m, &r, unbiased)?
        } else if let Some(m) = mode.strip_prefix("per_species_") {
            per_species(m, &rows, kind, frames, unbiased, alpha)?
        } else {
            basic(mode, &rows, unbiased)?
        };
        out.push(res);
    }
    Ok(out)
}

fn per_species(
    mode: &str,
    r: &Rows,
    kind: FieldKind,
    frames: &[&AtomicData],
    unbiased: bool,
    alpha: f64,
) -> Result<Vec<Array>, DataError> {
    let unsupported = || {
        DataError::option(
            "statistics",
            format!("per_species_{mode} is not implemented for {kind:?} fields"),
        )
    };
    match (kind, mode) {
        (FieldKind::Graph, "mean_std") => {
            let x = type_counts(frames)?;
            let y: Vec<f64> = (0..r.n()).map(|i| r.data[i * r.width]).collect();
            let (m, s) = ridge_solver(&x, &y, alpha)?;
            Ok(vec![
                Array::f64(vec![m.len()], m),
                Array::f64(vec![s.len()], s),
            ])
        }
        (FieldKind::Node, "mean_std" | "rms") => {
            let (per_frame, nt) = frame_types(frames)?;
            let types: Vec<i64> = per_frame.concat();
            if types.len() != r.n() {
                return Err(DataError::option(
                    "statistics",
                    "atom_types and the field have different numbers of atoms",
                ));
            }
            let w = r.width;
            let mut by_type: Vec<Vec<usize>> = vec![Vec::new(); nt];
            for (i, &t) in types.iter().enumerate().take(r.n()) {
                by_type[t as usize].push(i);
            }
            let rows_of = |t: usize| by_type[t].iter().copied();
            if mode == "rms" {
                let v = (0..nt)
                    .map(|t| {
                        let n = rows_of(t).count() as f64;
                        let ms =
                            sum((0..w)
                                .map(|c| sum(rows_of(t).map(|i| r.data[i * w + c].powi(2))) / n))
                                / w as f64;
                        ms.sqrt()
                    })
                    .collect::<Vec<_>>();
                return Ok(vec![Array::f64(vec![nt], v)]);
            }
            if (0..nt).any(|t| rows_of(t).count() < 2) {
                return Err(DataError::option("statistics", "can't do per species standard deviation without at least two samples per species"));
            }
            let (mut means, mut stds) = (Vec::new(), Vec::new());
            for t in 0..nt {
                for c in 0..w {
                    let col: Vec<f64> = rows_of(t).map(|i| r.data[i * w + c]).collect();
                    let (m, s) = mean_std(&col, unbiased);
                    means.push(m);
                    stds.push(s);
                }
            }
            Ok(vec![
                Array::f64(vec![nt, w], means),
                Array::f64(vec![nt, w], stds),
            ])
        }
        _ => Err(unsupported()),
    }
}

/// Linear-interpolation quantile of sorted data (torch/numpy "linear", with torch's lerp).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let pos = p * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let (a, b, w) = (sorted[lo], sorted[hi], pos - lo as f64);
    if w < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// Cholesky factor `L` (lower) of a symmetric positive-definite matrix.
fn cholesky(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut l = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let s = a[i][j] - sum((0..j).map(|k| l[i][k] * l[j][k]));
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    return None;
                }
                l[i][i] = s.sqrt();
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    Some(l)
}

/// nequip's ridge regression `solver(X, y, alpha)`: per-species means and their uncertainties of
/// `y ≈ X μ`, after down-sampling each distinct composition to the 25/50/75 % quantiles of its `y`.
pub fn ridge_solver(
    x: &[Vec<f64>],
    y: &[f64],
    alpha: f64,
) -> Result<(Vec<f64>, Vec<f64>), DataError> {
    let nt = x.first().map_or(0, |r| r.len());
    if x.iter().any(|r| r.len() != nt) || x.len() != y.len() {
        return Err(DataError::option(
            "per_species_rescale",
            "species-count rows of different lengths, or not one energy per row",
        ));
    }
    if x.is_empty() || nt == 0 {
        return Err(DataError::option(
            "per_species_rescale",
            "no frames or no species for the regression",
        ));
    }
    // distinct compositions in lexicographic order (torch.unique(dim=0))
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| {
        x[a].iter()
            .zip(&x[b])
            .map(|(p, q)| p.total_cmp(q))
            .find(|o| o.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut k = 0;
    while k < order.len() {
        let mut group = vec![y[order[k]]];
        let mut e = k + 1;
        while e < order.len() && x[order[e]] == x[order[k]] {
            group.push(y[order[e]]);
            e += 1;
        }
        group.sort_by(f64::total_cmp);
        for p in [0.25, 0.5, 0.75] {
            xs.push(x[order[k]].clone());
            ys.push(quantile(&group, p));
        }
        k = e;
    }
    let norm = sum(xs.iter().flatten().copied());
    xs.iter_mut().flatten().for_each(|v| *v /= norm);
    ys.iter_mut().for_each(|v| *v /= norm);
    let n = xs.len();
    let y_mean = sum(ys.iter().copied()) / sum(xs.iter().flatten().copied());
    let mut a = vec![vec![0.0; nt]; nt];
    for i in 0..nt {
        for j in 0..nt {
            a[i][j] = sum((0..n).map(|r| xs[r][i] * xs[r][j]));
        }
        let rms = (sum((0..n).map(|r| xs[r][i] * xs[r][i])) / n as f64).sqrt();
        a[i][i] += rms * alpha * alpha;
    }
    let dy: Vec<f64> = (0..n)
        .map(|r| ys[r] - sum(xs[r].iter().copied()) * y_mean)
        .collect();
    let xy: Vec<f64> = (0..nt)
        .map(|i| sum((0..n).map(|r| xs[r][i] * dy[r])))
        .collect();
    let l = cholesky(&a).ok_or_else(|| {
        DataError::option(
            "per_species_rescale",
            "the species-count matrix is singular (a species that never occurs?)",
        )
    })?;
    // A^{-1} column by column via forward/back substitution
    let solve = |b: &[f64]| -> Vec<f64> {
        let mut z = vec![0.0; nt];
        for i in 0..nt {
            z[i] = (b[i] - sum((0..i).map(|k| l[i][k] * z[k]))) / l[i][i];
        }
        let mut x = vec![0.0; nt];
        for i in (0..nt).rev() {
            x[i] = (z[i] - sum((i + 1..nt).map(|k| l[k][i] * x[k]))) / l[i][i];
        }
        x
    };
    let mean = solve(&xy);
    let ainv: Vec<Vec<f64>> = (0..nt)
        .map(|c| solve(&(0..nt).map(|r| (r == c) as u8 as f64).collect::<Vec<_>>()))
        .collect();
    let resid: Vec<f64> = (0..n)
        .map(|r| sum((0..nt).map(|i| xs[r][i] * mean[i])) - dy[r])
        .collect();
    let sigma2 = mean_std(&resid, true).1.powi(2);
    // diag(A^-1 X^T X A^-1) = row norms of X A^-1 (A^-1 symmetric)
    let std: Vec<f64> = (0..nt)
        .map(|i| {
            let v = sum((0..n).map(|r| sum((0..nt).map(|j| xs[r][j] * ainv[j][i])).powi(2)));
            (sigma2 * v).sqrt()
        })
        .collect();
    Ok((mean.iter().map(|m| m + y_mean).collect(), std))
}

/// `avg_num_neighbors: auto`: mean and (unbiased) std over atoms of the number of edges each atom
/// is the centre of, over the frames.
pub fn avg_num_neighbors(frames: &[&AtomicData]) -> Result<(f64, f64), DataError> {
    let mut counts = Vec::new();
    for f in frames {
        let mut c = vec![0.0; f.num_nodes()];
        f.edge_index().0.iter().for_each(|&i| c[i as usize] += 1.0);
        counts.extend(c);
    }
    if counts.len() < 2 {
        return Err(DataError::option(
            "avg_num_neighbors",
            "needs at least two atoms",
        ));
    }
    Ok(mean_std(&counts, true))
}

impl InMemoryDataset {
    /// Frames `indices[::stride]` (sorted), or every `stride`-th frame.
    pub fn select(&self, indices: Option<&[usize]>, stride: usize) -> Vec<&AtomicData> {
        selection(self.len(), indices, stride)
            .into_iter()
            .filter_map(|i| self.get(i))
            .collect()
    }

    /// nequip's `dataset.statistics(fields, modes, stride, unbiased=True)` over the frames
    /// `indices` (e.g. the training split; all when `None`), ridge `alpha` 0.001 unless given.
    pub fn statistics(
        &self,
        fields: &[&str],
        modes: &[&str],
        indices: Option<&[usize]>,
        stride: usize,
        alpha: Option<f64>,
    ) -> Result<Vec<Vec<Array>>, DataError> {
        statistics(
            &self.select(indices, stride),
            fields,
            modes,
            true,
            alpha.unwrap_or(0.001),
            &self.file_name,
        )
    }
}

impl InMemoryDataset {
    /// The value of a statistic named as in nequip's rescale options, e.g. `dataset_forces_rms`,
    /// `dataset_total_energy_std`, `dataset_per_atom_total_energy_mean`,
    /// `dataset_per_species_total_energy_mean` (ridge), `dataset_per_species_forces_rms`; flat.
    pub fn dataset_statistic(
        &self,
        name: &str,
        indices: Option<&[usize]>,
        stride: usize,
        alpha: Option<f64>,
    ) -> Result<Vec<f64>, DataError> {
        let bad = || {
            DataError::option("statistics", format!("`{name}` is not a statistic name like dataset_[per_species_|per_atom_]<field>_<mean|std|rms|absmax>"))
        };
        let rest = name.strip_prefix("dataset_").ok_or_else(bad)?;
        let (rest, stat, part) = [
            ("_mean", "mean_std", 0),
            ("_std", "mean_std", 1),
            ("_rms", "rms", 0),
            ("_absmax", "absmax", 0),
        ]
        .iter()
        .find_map(|(suffix, mode, part)| rest.strip_suffix(suffix).map(|r| (r, *mode, *part)))
        .ok_or_else(bad)?;
        let (prefix, field) = ["per_species_", "per_atom_"]
            .iter()
            .find_map(|p| rest.strip_prefix(p).map(|f| (*p, f)))
            .unwrap_or(("", rest));
        if field.is_empty() {
            return Err(bad());
        }
        let mode = format!("{prefix}{stat}");
        let res = self.statistics(&[field], &[&mode], indices, stride, alpha)?;
        res.into_iter()
            .next()
            .and_then(|r| r.into_iter().nth(part))
            .map(|a| a.to_f64_vec())
            .ok_or_else(bad)
    }
}
