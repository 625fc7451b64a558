//! Batching. Mirrors `Batch.from_data_list` (`nequip/utils/torch_geometric/batch.py`), the
//! `Collater` and `AtomicData.__cat_dim__` of nequip 0.6.2: node and edge fields are concatenated,
//! `edge_index` along dimension 1 with node offsets (PyG also offsets any other key containing
//! `index` or `face`), graph fields are stacked on a new batch dimension (`cell` `[B, 3, 3]`,
//! `pbc` `[B, 3]`, `total_energy` `[B, 1]`), and `batch` `[N]` / `ptr` `[B + 1]` are added.

use std::collections::BTreeMap;

use super::array::{Array, ArrayData};
use super::atomic_data::AtomicData;
use super::error::DataError;
use super::fields::{field_kind, FieldKind};
use super::keys::*;

fn offset_key(k: &str) -> bool {
    k.contains("index") || k.contains("face")
}

/// Collates frames into one batched [`AtomicData`]. All frames must have the same fields; frames
/// that already carry `batch` are refused.
pub fn collate(frames: &[&AtomicData]) -> Result<AtomicData, DataError> {
    let err = |msg: String| DataError::option("batch", msg);
    let first = frames
        .first()
        .ok_or_else(|| err("cannot collate an empty list of frames".into()))?;
    let keys: Vec<&String> = first.fields().keys().collect();
    let mut offsets = Vec::with_capacity(frames.len() + 1);
    offsets.push(0i64);
    for (b, f) in frames.iter().enumerate() {
        if f.contains(BATCH_KEY) {
            return Err(err(format!("frame {b} is already batched")));
        }
        if f.fields().keys().ne(keys.iter().copied()) {
            return Err(err(format!(
                "frame {b} has fields {:?}, frame 0 has {:?}",
                f.fields().keys().collect::<Vec<_>>(),
                keys
            )));
        }
        offsets.push(offsets[b] + f.num_nodes() as i64);
    }
    let mut out = BTreeMap::new();
    for key in keys {
        let parts: Vec<Array> = frames
            .iter()
            .enumerate()
            .map(|(b, f)| {
                let a = f
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| Array::f64(vec![0], vec![]));
                match (&a.data, offset_key(key)) {
                    (ArrayData::I64(v), true) => {
                        Array::i64(a.shape.clone(), v.iter().map(|x| x + offsets[b]).collect())
                    }
                    _ => a,
                }
            })
            .collect();
        let refs: Vec<&Array> = parts.iter().collect();
        let joined = if key == EDGE_INDEX_KEY {
            // [2, E_b] -> [2, ΣE]: concatenate the two rows separately
            let rows: Vec<Array> = (0..2)
                .map(|r| {
                    Array::concat(
                        &refs
                            .iter()
                            .map(|a| a.index0(r))
                            .collect::<Vec<_>>()
                            .iter()
                            .collect::<Vec<_>>(),
                        false,
                    )
                })
                .collect::<Option<_>>()
                .ok_or_else(|| err("bad edge_index".into()))?;
            let e = rows[0].numel();
            Array::concat(&[&rows[0], &rows[1]], false).map(|a| a.reshaped(vec![2, e]))
        } else {
            Array::concat(&refs, field_kind(key) == Some(FieldKind::Graph))
        };
        let joined = joined.ok_or_else(|| {
            err(format!(
                "field `{key}` has inconsistent shapes or dtypes across frames"
            ))
        })?;
        out.insert(key.clone(), joined);
    }
    let n = *offsets.last().unwrap_or(&0) as usize;
    let mut batch = Vec::with_capacity(n);
    for (b, f) in frames.iter().enumerate() {
        batch.extend(std::iter::repeat_n(b as i64, f.num_nodes()));
    }
    out.insert(BATCH_KEY.into(), Array::i64(vec![n], batch));
    out.insert(
        BATCH_PTR_KEY.into(),
        Array::i64(vec![frames.len() + 1], offsets),
    );
    Ok(AtomicData::from_fields_unchecked(out))
}

impl AtomicData {
    /// Number of frames in a batch (1 for an unbatched frame).
    pub fn num_graphs(&self) -> usize {
        self.get(BATCH_PTR_KEY)
            .map_or(1, |p| p.numel().saturating_sub(1))
    }

    /// Frame `b` of a batch (nequip's `Batch.get_example`).
    pub fn get_example(&self, b: usize) -> Option<AtomicData> {
        let ptr = self.get(BATCH_PTR_KEY)?.as_i64()?;
        let (n0, n1) = (*ptr.get(b)?, *ptr.get(b + 1)?);
        let (c, _) = self.edge_index();
        let edges: Vec<usize> = (0..c.len()).filter(|&e| c[e] >= n0 && c[e] < n1).collect();
        let mut out = BTreeMap::new();
        for (k, a) in self.fields() {
            if k == BATCH_KEY || k == BATCH_PTR_KEY {
                continue;
            }
            let v = if k == EDGE_INDEX_KEY {
                let ei = a.as_i64()?;
                let e = c.len();
                let mut v: Vec<i64> = edges.iter().map(|&x| ei[x] - n0).collect();
                v.extend(edges.iter().map(|&x| ei[e + x] - n0));
                Array::i64(vec![2, edges.len()], v)
            } else {
                match field_kind(k) {
                    Some(FieldKind::Graph) => a.index0(b),
                    Some(FieldKind::Edge) => {
                        let parts: Vec<Array> =
                            edges.iter().map(|&e| a.slice_rows(e, e + 1)).collect();
                        let mut shape = a.shape.clone();
                        shape[0] = 0;
                        Array::concat(&parts.iter().collect::<Vec<_>>(), false).unwrap_or(Array {
                            shape,
                            data: a.slice_rows(0, 0).data,
                        })
                    }
                    _ => {
                        let s = a.slice_rows(n0 as usize, n1 as usize);
                        match (&s.data, offset_key(k)) {
                            (ArrayData::I64(v), true) => {
                                Array::i64(s.shape.clone(), v.iter().map(|x| x - n0).collect())
                            }
                            _ => s,
                        }
                    }
                }
            };
            out.insert(k.clone(), v);
        }
        Some(AtomicData::from_fields_unchecked(out))
    }
}
