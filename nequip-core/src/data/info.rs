//! `nequip data info`: what a user checks before training, as one serialisable summary. No
//! nequip counterpart (nequip prints some of these numbers while building a model); the
//! statistics use nequip's formulas ([`super::statistics`]).

use std::collections::{BTreeMap, BTreeSet};

use super::dataset::InMemoryDataset;
use super::error::DataError;
use super::keys::*;
use super::statistics::{avg_num_neighbors, mean_std, ridge_solver, selection, sum};

/// Atoms per frame: one number, or one per frame when it varies.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum NAtoms {
    Fixed(usize),
    PerFrame(Vec<usize>),
}

/// Periodicity and cell volumes.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CellSummary {
    /// Distinct pbc patterns, e.g. `["TTT"]`, with their frame counts.
    pub pbc: BTreeMap<String, usize>,
    /// Smallest, mean and largest volume of frames periodic in all three directions.
    pub volume_min: Option<f64>,
    pub volume_mean: Option<f64>,
    pub volume_max: Option<f64>,
}

/// The summary of `nequip data info`; keys as in the issue.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DataInfo {
    pub file: String,
    pub n_frames: usize,
    pub n_atoms: NAtoms,
    /// Symbol (type name) → atoms of that species in one frame (fixed composition) or in total.
    pub species: BTreeMap<String, usize>,
    /// `"per_frame"` or `"total"`: how to read `species`.
    pub species_counts: String,
    pub r_max: f64,
    pub avg_num_neighbors: f64,
    /// Standard deviation of the neighbor count (nequip stores it as `var_num_neighbors`).
    pub std_num_neighbors: f64,
    pub energy_mean: Option<f64>,
    pub energy_std: Option<f64>,
    pub per_atom_energy_mean: Option<f64>,
    pub per_atom_energy_std: Option<f64>,
    pub forces_rms: Option<f64>,
    /// Per-species energies (eV) from nequip's ridge regression (`alpha` 0.001) on species counts.
    pub per_species_energy: Option<BTreeMap<String, f64>>,
    pub cell: CellSummary,
    /// File frame indices with no edge at `r_max`.
    pub frames_without_edges: Vec<usize>,
}

fn det3(c: &[f64]) -> f64 {
    c[0] * (c[4] * c[8] - c[5] * c[7]) - c[1] * (c[3] * c[8] - c[5] * c[6])
        + c[2] * (c[3] * c[7] - c[4] * c[6])
}

/// Computes the summary over the frames `indices` (e.g. a training split) or the whole dataset.
pub fn data_info(ds: &InMemoryDataset, indices: Option<&[usize]>) -> Result<DataInfo, DataError> {
    let sel = selection(ds.len(), indices, 1);
    let frames: Vec<_> = sel.iter().filter_map(|&i| ds.get(i)).collect();
    let names = &ds.type_mapper.type_names;
    let n_atoms: Vec<usize> = frames.iter().map(|f| f.num_nodes()).collect();
    let comps: Vec<Vec<f64>> = frames
        .iter()
        .map(|f| {
            let mut c = vec![0.0; names.len()];
            for &t in f.get(ATOM_TYPE_KEY).and_then(|a| a.as_i64()).unwrap_or(&[]) {
                if let Some(x) = usize::try_from(t).ok().and_then(|t| c.get_mut(t)) {
                    *x += 1.0;
                }
            }
            c
        })
        .collect();
    let fixed = comps.windows(2).all(|w| w[0] == w[1]);
    let species = names
        .iter()
        .enumerate()
        .map(|(t, n)| {
            (
                n.clone(),
                if fixed {
                    comps.first().map_or(0.0, |c| c[t])
                } else {
                    sum(comps.iter().map(|c| c[t]))
                } as usize,
            )
        })
        .filter(|(_, c)| *c > 0)
        .collect();
    let (ann, snn) = avg_num_neighbors(&frames)?;
    let energies: Option<Vec<f64>> = frames
        .iter()
        .map(|f| {
            f.get(TOTAL_ENERGY_KEY)
                .and_then(|e| e.as_f64())
                .and_then(|e| e.first().copied())
        })
        .collect();
    let two = |v: &[f64]| {
        if v.len() >= 2 {
            Some(mean_std(v, true))
        } else {
            None
        }
    };
    let e_stats = energies.as_deref().and_then(two);
    let per_atom: Option<Vec<f64>> = energies
        .as_ref()
        .map(|e| e.iter().zip(&n_atoms).map(|(e, n)| e / *n as f64).collect());
    let pa_stats = per_atom.as_deref().and_then(two);
    let forces: Option<Vec<&[f64]>> = frames
        .iter()
        .map(|f| f.get(FORCE_KEY).and_then(|a| a.as_f64()))
        .collect();
    let forces_rms = forces.map(|fs| {
        let n: usize = fs.iter().map(|f| f.len()).sum();
        (sum(fs.iter().flat_map(|f| f.iter().map(|x| x * x))) / n as f64).sqrt()
    });
    let per_species_energy = match &energies {
        Some(e) if !e.is_empty() => {
            let (mu, _) = ridge_solver(&comps, e, 0.001)?;
            Some(names.iter().cloned().zip(mu).collect())
        }
        _ => None,
    };
    let mut pbc = BTreeMap::new();
    let mut vols = Vec::new();
    for f in &frames {
        let p = f
            .get(PBC_KEY)
            .and_then(|p| p.as_bool())
            .map(|p| p.to_vec())
            .unwrap_or(vec![false; 3]);
        *pbc.entry(
            p.iter()
                .map(|&b| if b { 'T' } else { 'F' })
                .collect::<String>(),
        )
        .or_insert(0) += 1;
        if p.iter().all(|&b| b) {
            if let Some(c) = f.get(CELL_KEY).and_then(|c| c.as_f64()) {
                vols.push(det3(c).abs());
            }
        }
    }
    let cell = CellSummary {
        pbc,
        volume_min: vols.iter().copied().reduce(f64::min),
        volume_mean: (!vols.is_empty()).then(|| sum(vols.iter().copied()) / vols.len() as f64),
        volume_max: vols.iter().copied().reduce(f64::max),
    };
    let uniq: BTreeSet<usize> = n_atoms.iter().copied().collect();
    Ok(DataInfo {
        file: ds.file_name.clone(),
        n_frames: frames.len(),
        n_atoms: if uniq.len() <= 1 {
            NAtoms::Fixed(uniq.first().copied().unwrap_or(0))
        } else {
            NAtoms::PerFrame(n_atoms.clone())
        },
        species,
        species_counts: if fixed {
            "per_frame".into()
        } else {
            "total".into()
        },
        r_max: ds.r_max,
        avg_num_neighbors: ann,
        std_num_neighbors: snn,
        energy_mean: e_stats.map(|s| s.0),
        energy_std: e_stats.map(|s| s.1),
        per_atom_energy_mean: pa_stats.map(|s| s.0),
        per_atom_energy_std: pa_stats.map(|s| s.1),
        forces_rms,
        per_species_energy,
        cell,
        frames_without_edges: sel
            .iter()
            .zip(&frames)
            .filter(|(_, f)| f.num_edges() == 0)
            .map(|(&i, _)| ds.frame_ids[i])
            .collect(),
    })
}

impl std::fmt::Display for DataInfo {
    /// The human-readable form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let opt = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.6}"));
        writeln!(f, "file              {}", self.file)?;
        writeln!(f, "frames            {}", self.n_frames)?;
        match &self.n_atoms {
            NAtoms::Fixed(n) => writeln!(f, "atoms per frame   {n}")?,
            NAtoms::PerFrame(v) => writeln!(
                f,
                "atoms per frame   {}..{} (varies)",
                v.iter().min().unwrap_or(&0),
                v.iter().max().unwrap_or(&0)
            )?,
        }
        let sp: Vec<String> = self
            .species
            .iter()
            .map(|(s, c)| format!("{s}: {c}"))
            .collect();
        writeln!(f, "species ({})  {}", self.species_counts, sp.join(", "))?;
        writeln!(f, "r_max             {}", self.r_max)?;
        writeln!(
            f,
            "avg_num_neighbors {:.6} (std {:.6})",
            self.avg_num_neighbors, self.std_num_neighbors
        )?;
        writeln!(
            f,
            "energy            mean {} std {}",
            opt(self.energy_mean),
            opt(self.energy_std)
        )?;
        writeln!(
            f,
            "energy per atom   mean {} std {}",
            opt(self.per_atom_energy_mean),
            opt(self.per_atom_energy_std)
        )?;
        writeln!(f, "forces RMS        {}", opt(self.forces_rms))?;
        if let Some(pse) = &self.per_species_energy {
            let v: Vec<String> = pse.iter().map(|(s, e)| format!("{s}: {e:.6}")).collect();
            writeln!(f, "per-species E     {}", v.join(", "))?;
        }
        let pbc: Vec<String> = self
            .cell
            .pbc
            .iter()
            .map(|(p, n)| format!("{p} x{n}"))
            .collect();
        writeln!(f, "pbc               {}", pbc.join(", "))?;
        if let (Some(a), Some(m), Some(b)) = (
            self.cell.volume_min,
            self.cell.volume_mean,
            self.cell.volume_max,
        ) {
            writeln!(f, "cell volume       min {a:.4} mean {m:.4} max {b:.4}")?;
        }
        write!(f, "frames w/o edges  {:?}", self.frames_without_edges)
    }
}
