//! Equivariance testing for any module (in the spirit of e3nn 0.5.9 `util/test.py`
//! `assert_equivariant`, extended with nequip's translation and permutation checks).
//!
//! Describe every input and output with a [`Field`]; [`check_equivariance`] evaluates the
//! function on transformed inputs and compares with the transformed outputs, for a random
//! rotation, the inversion, both together, a random translation (when a field is a
//! position) and a random permutation of axis 0 (when a field is marked permutable).
//!
//! ```no_run
//! # use nequip_core::e3nn::{testing::*, Irreps};
//! # use tch::{Kind, Device, Tensor};
//! let irreps: Irreps = "2x0e+1x1o".parse().unwrap();
//! let x = Tensor::randn([5, irreps.dim() as i64], (Kind::Double, Device::Cpu));
//! let errs = check_equivariance(
//!     |xs| vec![xs[0].shallow_clone()],
//!     &[(x, Field::irreps(irreps.clone()))],
//!     &[Field::irreps(irreps)],
//! );
//! assert!(errs.max() < 1e-12);
//! ```

use tch::{Kind, Tensor};

use super::irreps::Irreps;
use super::wigner::{angles_to_matrix, rand_angles, wigner_d};

/// How a tensor transforms.
#[derive(Clone, Debug)]
pub enum Field {
    /// Last axis laid out as `irreps`; permuted along axis 0 when `permute`.
    Irreps {
        /// The representation.
        irreps: Irreps,
        /// Whether axis 0 is an (atom/edge) index that permutes.
        permute: bool,
    },
    /// Cartesian positions `[..., 3]`: rotate and invert as a vector, shift under translations.
    Position {
        /// Whether axis 0 permutes.
        permute: bool,
    },
    /// Left untouched by every transformation (e.g. atom types when not permuting, indices).
    Fixed,
    /// Permuted along axis 0 only (e.g. atom types, invariants).
    PermuteOnly,
}

impl Field {
    /// An irreps field that does not permute.
    pub fn irreps(irreps: Irreps) -> Self {
        Field::Irreps {
            irreps,
            permute: false,
        }
    }
}

/// Largest relative error (max abs difference / max abs reference) per transformation.
#[derive(Clone, Debug, Default)]
pub struct EquivarianceErrors {
    /// Rotation only.
    pub rotation: f64,
    /// Inversion only.
    pub parity: f64,
    /// Rotation and inversion.
    pub rotation_parity: f64,
    /// Translation (0 when no position field).
    pub translation: f64,
    /// Permutation of axis 0 (0 when no permutable field).
    pub permutation: f64,
}

impl EquivarianceErrors {
    /// The largest of all.
    pub fn max(&self) -> f64 {
        [
            self.rotation,
            self.parity,
            self.rotation_parity,
            self.translation,
            self.permutation,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    }
}

/// Block-diagonal representation matrix `[dim, dim]` of `irreps` for the rotation given by
/// Euler angles (scalar tensors), times `p^k` with `k = parity as i32`.
pub fn irreps_d(irreps: &Irreps, angles: (&Tensor, &Tensor, &Tensor), parity: bool) -> Tensor {
    let (kind, device) = (angles.0.kind(), angles.0.device());
    let blocks: Vec<Tensor> = irreps
        .iter()
        .flat_map(|m| {
            let sign = if parity && m.ir.p == -1 { -1.0 } else { 1.0 };
            let d = wigner_d(m.ir.l, angles.0, angles.1, angles.2) * sign;
            (0..m.mul).map(move |_| d.shallow_clone())
        })
        .collect();
    if blocks.is_empty() {
        Tensor::zeros([0, 0], (kind, device))
    } else {
        Tensor::block_diag(&blocks)
    }
}

struct Transform {
    rot: Option<(Tensor, Tensor, Tensor)>,
    parity: bool,
    shift: Option<Tensor>,
    perm: Option<Tensor>,
}

impl Transform {
    fn apply(&self, x: &Tensor, field: &Field) -> Tensor {
        let kind = x.kind();
        let mut y = x.shallow_clone();
        let permute = match field {
            Field::Irreps { permute, .. } | Field::Position { permute } => *permute,
            Field::PermuteOnly => true,
            Field::Fixed => false,
        };
        if let (Some(p), true) = (&self.perm, permute) {
            y = y.index_select(0, p);
        }
        match field {
            Field::Irreps { irreps, .. } => {
                let angles = match &self.rot {
                    Some((a, b, c)) => (a.shallow_clone(), b.shallow_clone(), c.shallow_clone()),
                    None => {
                        let z = Tensor::zeros([], (Kind::Double, x.device()));
                        (z.shallow_clone(), z.shallow_clone(), z)
                    }
                };
                let d =
                    irreps_d(irreps, (&angles.0, &angles.1, &angles.2), self.parity).to_kind(kind);
                y = y.matmul(&d.transpose(0, 1));
            }
            Field::Position { .. } => {
                if let Some((a, b, c)) = &self.rot {
                    y = y.matmul(&angles_to_matrix(a, b, c).to_kind(kind).transpose(0, 1));
                }
                if self.parity {
                    y = -y;
                }
                if let Some(s) = &self.shift {
                    y = y + s.to_kind(kind);
                }
            }
            Field::Fixed | Field::PermuteOnly => {}
        }
        y
    }
}

fn rel_err(a: &[Tensor], b: &[Tensor]) -> f64 {
    let mut num: f64 = 0.0;
    let mut den: f64 = 0.0;
    for (x, y) in a.iter().zip(b) {
        if x.numel() == 0 {
            continue;
        }
        let x = x.to_kind(Kind::Double);
        let y = y.to_kind(Kind::Double);
        num = num.max((&x - &y).abs().max().double_value(&[]));
        den = den.max(y.abs().max().double_value(&[]));
    }
    if den > 0.0 {
        num / den
    } else {
        num
    }
}

/// Checks `f(T x) = T f(x)` for the transformations listed in [`EquivarianceErrors`].
/// Uses torch's global RNG (seed it with `tch::manual_seed` for reproducibility).
pub fn check_equivariance<F>(
    f: F,
    inputs: &[(Tensor, Field)],
    outputs: &[Field],
) -> EquivarianceErrors
where
    F: Fn(&[Tensor]) -> Vec<Tensor>,
{
    let device = inputs.first().map_or(tch::Device::Cpu, |(t, _)| t.device());
    let xs: Vec<Tensor> = inputs.iter().map(|(t, _)| t.shallow_clone()).collect();
    let ys = f(&xs);
    let angles = || {
        let (a, b, c) = rand_angles(&[], Kind::Double, device);
        Some((a, b, c))
    };
    let has_pos = inputs
        .iter()
        .any(|(_, f)| matches!(f, Field::Position { .. }));
    let n_perm = inputs.iter().find_map(|(t, f)| match f {
        Field::Irreps { permute: true, .. }
        | Field::Position { permute: true }
        | Field::PermuteOnly => Some(t.size()[0]),
        _ => None,
    });
    let run = |t: &Transform| {
        let txs: Vec<Tensor> = inputs.iter().map(|(x, fl)| t.apply(x, fl)).collect();
        let lhs = f(&txs);
        let rhs: Vec<Tensor> = ys
            .iter()
            .zip(outputs)
            .map(|(y, fl)| t.apply(y, fl))
            .collect();
        rel_err(&lhs, &rhs)
    };
    let none = || Transform {
        rot: None,
        parity: false,
        shift: None,
        perm: None,
    };
    EquivarianceErrors {
        rotation: run(&Transform {
            rot: angles(),
            ..none()
        }),
        parity: run(&Transform {
            parity: true,
            ..none()
        }),
        rotation_parity: run(&Transform {
            rot: angles(),
            parity: true,
            ..none()
        }),
        translation: if has_pos {
            run(&Transform {
                shift: Some(Tensor::randn([3], (Kind::Double, device)) * 3.0),
                ..none()
            })
        } else {
            0.0
        },
        permutation: match n_perm {
            Some(n) => run(&Transform {
                perm: Some(Tensor::randperm(n, (Kind::Int64, device))),
                ..none()
            }),
            None => 0.0,
        },
    }
}
