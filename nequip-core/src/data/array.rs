//! A small owned n-dimensional array (row-major, `f64` / `i64` / `bool`), the storage of
//! [`AtomicData`](super::AtomicData) fields before they become `tch` tensors. No nequip
//! counterpart (nequip stores torch tensors directly); keeping frames as plain Rust arrays makes
//! neighbor lists, statistics and the processed-data cache independent of libtorch.

use tch::{Kind, Tensor};

/// The element buffer of an [`Array`].
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// Element type of an [`Array`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F64,
    I64,
    Bool,
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F64 => "float64",
            DType::I64 => "int64",
            DType::Bool => "bool",
        })
    }
}

/// A row-major array with an explicit shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: ArrayData,
}

impl Array {
    /// A float array; `data.len()` must equal the product of `shape`.
    pub fn f64(shape: Vec<usize>, data: Vec<f64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Array {
            shape,
            data: ArrayData::F64(data),
        }
    }
    /// An integer array.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Array {
            shape,
            data: ArrayData::I64(data),
        }
    }
    /// A boolean array.
    pub fn bool(shape: Vec<usize>, data: Vec<bool>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Array {
            shape,
            data: ArrayData::Bool(data),
        }
    }

    pub fn dtype(&self) -> DType {
        match self.data {
            ArrayData::F64(_) => DType::F64,
            ArrayData::I64(_) => DType::I64,
            ArrayData::Bool(_) => DType::Bool,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        match &self.data {
            ArrayData::F64(v) => v.len(),
            ArrayData::I64(v) => v.len(),
            ArrayData::Bool(v) => v.len(),
        }
    }

    /// Size of the leading dimension (1 for a 0-d array).
    pub fn len0(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }

    /// Elements per leading-dimension row.
    pub fn row_size(&self) -> usize {
        self.shape.iter().skip(1).product()
    }

    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            ArrayData::F64(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            ArrayData::I64(v) => Some(v),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            ArrayData::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// Values as `f64` whatever the dtype (bools as 0/1).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match &self.data {
            ArrayData::F64(v) => v.clone(),
            ArrayData::I64(v) => v.iter().map(|&x| x as f64).collect(),
            ArrayData::Bool(v) => v.iter().map(|&x| x as u8 as f64).collect(),
        }
    }

    /// Converts to `i64` (floats must be integral; returns `None` otherwise).
    pub fn to_i64(&self) -> Option<Array> {
        let data = match &self.data {
            ArrayData::I64(v) => v.clone(),
            ArrayData::Bool(v) => v.iter().map(|&b| b as i64).collect(),
            ArrayData::F64(v) => {
                if v.iter().any(|x| x.fract() != 0.0 || !x.is_finite()) {
                    return None;
                }
                v.iter().map(|&x| x as i64).collect()
            }
        };
        Some(Array::i64(self.shape.clone(), data))
    }

    /// Same data, new shape (element count must match).
    pub fn reshaped(mut self, shape: Vec<usize>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), self.numel());
        self.shape = shape;
        self
    }

    /// Rows `start..end` of the leading dimension.
    pub fn slice_rows(&self, start: usize, end: usize) -> Array {
        let rs = self.row_size();
        let mut shape = self.shape.clone();
        if shape.is_empty() {
            return self.clone();
        }
        shape[0] = end - start;
        let (a, b) = (start * rs, end * rs);
        let data = match &self.data {
            ArrayData::F64(v) => ArrayData::F64(v[a..b].to_vec()),
            ArrayData::I64(v) => ArrayData::I64(v[a..b].to_vec()),
            ArrayData::Bool(v) => ArrayData::Bool(v[a..b].to_vec()),
        };
        Array { shape, data }
    }

    /// Row `i` of the leading dimension, without that dimension.
    pub fn index0(&self, i: usize) -> Array {
        if self.shape.is_empty() {
            return self.clone();
        }
        let mut a = self.slice_rows(i, i + 1);
        a.shape.remove(0);
        a
    }

    /// Concatenates along the leading dimension (all parts must share dtype and trailing shape).
    /// With `new_axis`, stacks on a new leading dimension instead.
    pub fn concat(parts: &[&Array], new_axis: bool) -> Option<Array> {
        let first = parts.first()?;
        let tail: Vec<usize> = if new_axis {
            first.shape.clone()
        } else {
            first.shape.get(1..)?.to_vec()
        };
        let mut n0 = 0;
        for p in parts {
            let ptail = if new_axis {
                &p.shape[..]
            } else {
                p.shape.get(1..)?
            };
            if ptail != &tail[..] || p.dtype() != first.dtype() {
                return None;
            }
            n0 += if new_axis { 1 } else { p.shape[0] };
        }
        let mut shape = vec![n0];
        shape.extend(tail);
        let data = match first.data {
            ArrayData::F64(_) => ArrayData::F64(
                parts
                    .iter()
                    .flat_map(|p| p.as_f64().unwrap_or(&[]).iter().copied())
                    .collect(),
            ),
            ArrayData::I64(_) => ArrayData::I64(
                parts
                    .iter()
                    .flat_map(|p| p.as_i64().unwrap_or(&[]).iter().copied())
                    .collect(),
            ),
            ArrayData::Bool(_) => ArrayData::Bool(
                parts
                    .iter()
                    .flat_map(|p| p.as_bool().unwrap_or(&[]).iter().copied())
                    .collect(),
            ),
        };
        Some(Array { shape, data })
    }

    /// A CPU tensor (`Double`, `Int64` or `Bool`) with this shape.
    pub fn to_tensor(&self) -> Tensor {
        let shape: Vec<i64> = self.shape.iter().map(|&s| s as i64).collect();
        let t = match &self.data {
            ArrayData::F64(v) => Tensor::from_slice(v),
            ArrayData::I64(v) => Tensor::from_slice(v),
            ArrayData::Bool(v) => Tensor::from_slice(v),
        };
        t.reshape(&shape[..])
    }

    /// Copies a CPU tensor of kind `Double`/`Float` (→ f64), an integer kind (→ i64) or `Bool`.
    pub fn from_tensor(t: &Tensor) -> Result<Array, tch::TchError> {
        let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
        let flat = t.f_contiguous()?.f_view([-1])?;
        Ok(match t.kind() {
            Kind::Bool => Array::bool(shape, Vec::<bool>::try_from(&flat)?),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16 => {
                Array::f64(shape, Vec::<f64>::try_from(&flat.f_to_kind(Kind::Double)?)?)
            }
            _ => Array::i64(shape, Vec::<i64>::try_from(&flat.f_to_kind(Kind::Int64)?)?),
        })
    }
}
