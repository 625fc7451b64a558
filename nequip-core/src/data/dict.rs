//! Functions on [`AtomicDataDict`] (tensors, autograd-aware). Mirrors `with_edge_vectors` and
//! `with_batch` of `nequip/data/AtomicDataDict.py` (nequip 0.6.2).

use tch::{Kind, Tensor};

use super::keys::*;
use super::AtomicDataDict;

/// Error of the dict helpers: a required key is absent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("AtomicDataDict lacks `{0}`")]
pub struct MissingField(pub &'static str);

fn get<'a>(d: &'a AtomicDataDict, k: &'static str) -> Result<&'a Tensor, MissingField> {
    d.get(k).ok_or(MissingField(k))
}

/// Adds `edge_vectors` (`pos[j] - pos[i] + shift · cell`, with `cell[batch[i]]` for batched cells)
/// and, with `with_lengths`, `edge_lengths`; connected to `pos` and `cell` in the autograd graph.
/// Existing `edge_vectors` are kept (only the lengths are added if missing).
pub fn with_edge_vectors(
    data: &mut AtomicDataDict,
    with_lengths: bool,
) -> Result<(), MissingField> {
    if !data.contains_key(EDGE_VECTORS_KEY) {
        let pos = get(data, POSITIONS_KEY)?;
        let ei = get(data, EDGE_INDEX_KEY)?;
        let (i, j) = (ei.get(0), ei.get(1));
        let mut vec = pos.index_select(0, &j) - pos.index_select(0, &i);
        if let Some(cell) = data.get(CELL_KEY) {
            let cell = cell.view([-1, 3, 3]);
            let shift = get(data, EDGE_CELL_SHIFT_KEY)?.to_kind(cell.kind());
            if cell.size()[0] > 1 {
                let batch = get(data, BATCH_KEY)?;
                let per_edge = cell.index_select(0, &batch.index_select(0, &i));
                vec += Tensor::einsum("ni,nij->nj", &[&shift, &per_edge], None::<i64>);
            } else {
                vec += shift.matmul(&cell.squeeze_dim(0));
            }
        }
        data.insert(EDGE_VECTORS_KEY.into(), vec);
    }
    if with_lengths && !data.contains_key(EDGE_LENGTH_KEY) {
        let len =
            get(data, EDGE_VECTORS_KEY)?.linalg_norm(2.0, [-1i64].as_slice(), false, None::<Kind>);
        data.insert(EDGE_LENGTH_KEY.into(), len);
    }
    Ok(())
}

/// Adds `batch` (zeros) and `ptr` (`[0, N]`) when absent.
pub fn with_batch(data: &mut AtomicDataDict) -> Result<(), MissingField> {
    if data.contains_key(BATCH_KEY) {
        return Ok(());
    }
    let n = get(data, POSITIONS_KEY)?.size()[0];
    let device = get(data, POSITIONS_KEY)?.device();
    data.insert(BATCH_KEY.into(), Tensor::zeros([n], (Kind::Int64, device)));
    data.insert(
        BATCH_PTR_KEY.into(),
        Tensor::from_slice(&[0i64, n]).to_device(device),
    );
    Ok(())
}
