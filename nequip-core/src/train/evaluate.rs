//! Evaluating a model on frames of a dataset: the core of `nequip/scripts/evaluate.py`
//! (nequip 0.6.2) — batches in eval mode, metrics in physical units, and each frame's
//! predictions as an [`AtomicData`] (for `--output` extended XYZ). Unlike nequip 0.6.2 the
//! predicted frames keep the input's `pbc` (nequip writes `pbc="F F F"` for periodic data).

use tch::{Device, Kind};

use super::metrics::Metrics;
use super::setup::TrainError;
use crate::data::batch::collate;
use crate::data::keys::*;
use crate::data::{AtomicData, AtomicDataDict, InMemoryDataset};
use crate::nn::{GraphModel, GraphModule};

/// The model outputs written for each predicted frame.
pub const OUTPUT_FIELDS: [&str; 5] = [TOTAL_ENERGY_KEY, FORCE_KEY, PER_ATOM_ENERGY_KEY, STRESS_KEY, VIRIAL_KEY];
/// The input fields kept with them.
const INPUT_FIELDS: [&str; 9] = [POSITIONS_KEY, ATOM_TYPE_KEY, ATOMIC_NUMBERS_KEY, CELL_KEY, PBC_KEY, EDGE_INDEX_KEY, EDGE_CELL_SHIFT_KEY, BATCH_KEY, BATCH_PTR_KEY];

/// Run `model` on `indices` of `ds` in batches of `batch_size`; accumulate `metrics` (against
/// the frames' labels) and hand every predicted frame to `on_frame(dataset index, frame)`.
pub fn evaluate(
    model: &GraphModel,
    ds: &InMemoryDataset,
    indices: &[usize],
    batch_size: usize,
    device: Device,
    mut metrics: Option<&mut Metrics>,
    extra_fields: &[&str],
    on_frame: &mut dyn FnMut(usize, AtomicData) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    for idx in indices.chunks(batch_size.max(1)) {
        let frames: Vec<&AtomicData> = idx.iter().map(|&i| ds.get(i).ok_or_else(|| TrainError::Invalid(format!("frame {i} is not in the dataset ({} frames)", ds.len())))).collect::<Result<_, _>>()?;
        let batch = collate(&frames)?;
        let data: AtomicDataDict = batch.to_dict().into_iter().map(|(k, v)| (k, v.to_device(device))).collect();
        let out = model.forward(data.iter().map(|(k, v)| (k.clone(), v.shallow_clone())).collect(), false)?;
        if let Some(m) = metrics.as_deref_mut() {
            m.accumulate(&out, &data)?;
        }
        let mut keep = AtomicDataDict::new();
        for k in INPUT_FIELDS {
            if let Some(t) = data.get(k) {
                keep.insert(k.into(), t.to_device(Device::Cpu));
            }
        }
        for k in OUTPUT_FIELDS.iter().chain(extra_fields) {
            if let Some(t) = out.get(*k) {
                if t.numel() == 0 {
                    continue;
                }
                let t = t.detach().to_device(Device::Cpu);
                let t = if t.is_floating_point() { t.to_kind(Kind::Double) } else { t };
                // per-frame outputs of a batch carry a leading frame axis; single values [B, 1]
                keep.insert((*k).into(), t);
            }
        }
        let predicted = AtomicData::from_dict(&keep)?;
        for (b, &i) in idx.iter().enumerate() {
            let frame = predicted.get_example(b).ok_or_else(|| TrainError::Invalid(format!("could not split the batch at frame {i}")))?;
            on_frame(i, frame)?;
        }
    }
    Ok(())
}

impl From<tch::TchError> for TrainError {
    fn from(e: tch::TchError) -> Self {
        TrainError::Invalid(format!("libtorch: {e}"))
    }
}
