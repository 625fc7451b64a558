//! Port of e3nn 0.5.9 `o3/_wigner.py` and the Euler-angle helpers of `o3/_rotation.py`:
//! Wigner 3j symbols and Wigner D matrices in e3nn's real basis.
//!
//! The 3j symbols are built as e3nn does: complex SU(2) Clebsch–Gordan coefficients (Racah's
//! formula, summed exactly in rational arithmetic where it fits in `i128`) brought to the real
//! basis with e3nn's change of basis `Q_l` (which includes the `(-i)^l` factor that makes them
//! real), then normalised to Frobenius norm 1. The result therefore has e3nn's signs.
//! Everything is computed once in `f64` and cached.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use tch::{Device, Kind, Tensor};

use super::E3nnError;

/// Minimal complex number for the small basis-change computations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct C64 {
    re: f64,
    im: f64,
}

impl C64 {
    const fn new(re: f64, im: f64) -> Self {
        C64 { re, im }
    }
    fn mul(self, o: C64) -> C64 {
        C64::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    fn add(self, o: C64) -> C64 {
        C64::new(self.re + o.re, self.im + o.im)
    }
    fn conj(self) -> C64 {
        C64::new(self.re, -self.im)
    }
    fn scale(self, s: f64) -> C64 {
        C64::new(self.re * s, self.im * s)
    }
}

/// Square complex matrix, row-major.
type CMat = Vec<Vec<C64>>;

/// e3nn's `change_basis_real_to_complex(l)`: `q[complex m, real m]`, times `(-i)^l`.
fn change_basis_real_to_complex(l: usize) -> CMat {
    let d = 2 * l + 1;
    let s = std::f64::consts::FRAC_1_SQRT_2;
    let mut q = vec![vec![C64::default(); d]; d];
    let li = l as i64;
    for m in -li..0 {
        let (r, a) = ((li + m) as usize, m.unsigned_abs() as usize);
        q[r][l + a] = C64::new(s, 0.0);
        q[r][l - a] = C64::new(0.0, -s);
    }
    q[l][l] = C64::new(1.0, 0.0);
    for m in 1..=li {
        let (r, a) = ((li + m) as usize, m as usize);
        let sign = if m % 2 == 0 { 1.0 } else { -1.0 };
        q[r][l + a] = C64::new(sign * s, 0.0);
        q[r][l - a] = C64::new(0.0, sign * s);
    }
    // (-i)^l, exact.
    let f = [
        C64::new(1.0, 0.0),
        C64::new(0.0, -1.0),
        C64::new(-1.0, 0.0),
        C64::new(0.0, 1.0),
    ][l % 4];
    q.iter()
        .map(|row| row.iter().map(|&z| f.mul(z)).collect())
        .collect()
}

fn factorial(n: i64) -> i128 {
    (1..=n as i128).product()
}

/// Racah's formula for `<j1 m1 j2 m2 | j3 m3>` (integer j), as e3nn's `_su2_clebsch_gordan_coeff`.
fn su2_cg_coeff(j1: i64, m1: i64, j2: i64, m2: i64, j3: i64, m3: i64) -> f64 {
    if m3 != m1 + m2 {
        return 0.0;
    }
    let vmin = (-j1 + j2 + m3).max(-j1 + m1).max(0);
    let vmax = (j2 + j3 + m1).min(j3 - j1 + j2).min(j3 + m3);
    let f = |n: i64| factorial(n) as f64;
    let pref = ((2 * j3 + 1) as f64
        * (f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3) * f(j3 + m3) * f(j3 - m3)
            / (f(j1 + j2 + j3 + 1) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2))))
    .sqrt();
    // Exact rational sum when it fits in i128, f64 otherwise.
    let terms: Vec<(i128, i128)> = (vmin..=vmax)
        .map(|v| {
            let sign = if (v + j2 + m2).rem_euclid(2) == 0 {
                1
            } else {
                -1
            };
            let num = factorial(j2 + j3 + m1 - v).checked_mul(factorial(j1 - m1 + v));
            let den = factorial(v)
                .checked_mul(factorial(j3 - j1 + j2 - v))
                .and_then(|x| x.checked_mul(factorial(j3 + m3 - v)))
                .and_then(|x| x.checked_mul(factorial(v + j1 - j2 - m3)));
            match (num, den) {
                (Some(n), Some(d)) => (sign * n, d),
                _ => (0, 0),
            }
        })
        .collect();
    let exact = terms
        .iter()
        .all(|&(_, d)| d != 0)
        .then(|| rational_sum(&terms))
        .flatten();
    let s = match exact {
        Some((n, d)) => n as f64 / d as f64,
        None => (vmin..=vmax)
            .map(|v| {
                let sign = if (v + j2 + m2).rem_euclid(2) == 0 {
                    1.0
                } else {
                    -1.0
                };
                sign * f(j2 + j3 + m1 - v) * f(j1 - m1 + v)
                    / (f(v) * f(j3 - j1 + j2 - v) * f(j3 + m3 - v) * f(v + j1 - j2 - m3))
            })
            .sum(),
    };
    pref * s
}

fn gcd(a: i128, b: i128) -> i128 {
    if b == 0 {
        a.abs()
    } else {
        gcd(b, a % b)
    }
}

fn rational_sum(terms: &[(i128, i128)]) -> Option<(i128, i128)> {
    let (mut n, mut d) = (0i128, 1i128);
    for &(tn, td) in terms {
        let g = gcd(d, td);
        let nn = n.checked_mul(td / g)?.checked_add(tn.checked_mul(d / g)?)?;
        let dd = (d / g).checked_mul(td)?;
        let g2 = gcd(nn, dd).max(1);
        n = nn / g2;
        d = dd / g2;
    }
    Some((n, d))
}

/// Real Wigner 3j symbol in e3nn's basis, as a flat row-major `[2l1+1, 2l2+1, 2l3+1]` f64 array.
fn compute_wigner_3j(l1: usize, l2: usize, l3: usize) -> Vec<f64> {
    let (d1, d2, d3) = (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1);
    let (j1, j2, j3) = (l1 as i64, l2 as i64, l3 as i64);
    // Complex SU(2) CG, indexed [j1+m1][j2+m2][j3+m3].
    let mut su2 = vec![0.0; d1 * d2 * d3];
    for m1 in -j1..=j1 {
        for m2 in -j2..=j2 {
            if (m1 + m2).abs() <= j3 {
                let idx =
                    ((j1 + m1) as usize * d2 + (j2 + m2) as usize) * d3 + (j3 + m1 + m2) as usize;
                su2[idx] = su2_cg_coeff(j1, m1, j2, m2, j3, m1 + m2);
            }
        }
    }
    let (q1, q2, q3) = (
        change_basis_real_to_complex(l1),
        change_basis_real_to_complex(l2),
        change_basis_real_to_complex(l3),
    );
    // C[j,l,m] = sum_{i,k,n} Q1[i,j] Q2[k,l] conj(Q3[n,m]) su2[i,k,n]; keep the real part.
    let mut c = vec![0.0; d1 * d2 * d3];
    for j in 0..d1 {
        for l in 0..d2 {
            for m in 0..d3 {
                let mut acc = C64::default();
                for i in 0..d1 {
                    for k in 0..d2 {
                        let a = q1[i][j].mul(q2[k][l]);
                        if a == C64::default() {
                            continue;
                        }
                        for n in 0..d3 {
                            let s = su2[(i * d2 + k) * d3 + n];
                            if s != 0.0 {
                                acc = acc.add(a.mul(q3[n][m].conj()).scale(s));
                            }
                        }
                    }
                }
                c[(j * d2 + l) * d3 + m] = acc.re;
            }
        }
    }
    let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
    c.iter().map(|x| x / norm).collect()
}

/// Whether `(l1, l2, l3)` satisfy the triangle inequality.
pub fn triangle(l1: u32, l2: u32, l3: u32) -> bool {
    l1.abs_diff(l2) <= l3 && l3 <= l1 + l2
}

/// Cached `wigner_3j(l1, l2, l3)` as flat f64 (row-major `[d1, d2, d3]`).
pub fn wigner_3j_f64(l1: u32, l2: u32, l3: u32) -> Result<std::sync::Arc<Vec<f64>>, E3nnError> {
    if !triangle(l1, l2, l3) {
        return Err(E3nnError::Triangle(l1, l2, l3));
    }
    type Cache = Mutex<HashMap<(u32, u32, u32), std::sync::Arc<Vec<f64>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    Ok(guard
        .entry((l1, l2, l3))
        .or_insert_with(|| {
            std::sync::Arc::new(compute_wigner_3j(l1 as usize, l2 as usize, l3 as usize))
        })
        .clone())
}

/// e3nn's `o3.wigner_3j(l1, l2, l3)`: tensor `[2l1+1, 2l2+1, 2l3+1]`, Frobenius norm 1,
/// invariant under `D^{l1} ⊗ D^{l2} ⊗ D^{l3}`.
pub fn wigner_3j(
    l1: u32,
    l2: u32,
    l3: u32,
    kind: Kind,
    device: Device,
) -> Result<Tensor, E3nnError> {
    let c = wigner_3j_f64(l1, l2, l3)?;
    let dims = [2 * l1 as i64 + 1, 2 * l2 as i64 + 1, 2 * l3 as i64 + 1];
    Ok(Tensor::from_slice(&c)
        .reshape(dims)
        .to_kind(kind)
        .to_device(device))
}

/// e3nn's `so3_generators(l)`: three real `[2l+1, 2l+1]` generators (x, y, z order of e3nn:
/// `X[0]` generates rotations about x, `X[1]` about y), flat row-major.
pub fn so3_generators(l: u32) -> [Vec<f64>; 3] {
    let l = l as usize;
    let d = 2 * l + 1;
    let j = l as f64;
    // su2 generators: raising/lowering.
    let mut raising = vec![vec![0.0; d]; d];
    let mut lowering = vec![vec![0.0; d]; d];
    for k in 0..d - 1 {
        let m = -j + k as f64; // m in -j..j-1
        raising[k + 1][k] = -(j * (j + 1.0) - m * (m + 1.0)).sqrt();
        let m2 = -j + 1.0 + k as f64; // m in -j+1..j
        lowering[k][k + 1] = (j * (j + 1.0) - m2 * (m2 - 1.0)).sqrt();
    }
    let mut x: [CMat; 3] = std::array::from_fn(|_| vec![vec![C64::default(); d]; d]);
    for a in 0..d {
        for b in 0..d {
            x[0][a][b] = C64::new(0.5 * (raising[a][b] + lowering[a][b]), 0.0);
            x[2][a][b] = C64::new(0.0, -0.5 * (raising[a][b] - lowering[a][b]));
        }
        x[1][a][a] = C64::new(0.0, -j + a as f64);
    }
    let q = change_basis_real_to_complex(l);
    // real(Q^† X Q)
    x.map(|xm| {
        let mut out = vec![0.0; d * d];
        for r in 0..d {
            for c in 0..d {
                let mut acc = C64::default();
                for a in 0..d {
                    for b in 0..d {
                        acc = acc.add(q[a][r].conj().mul(xm[a][b]).mul(q[b][c]));
                    }
                }
                out[r * d + c] = acc.re;
            }
        }
        out
    })
}

/// e3nn's `wigner_D(l, alpha, beta, gamma)` = `exp(a X1) exp(b X0) exp(c X1)` for angle
/// tensors of any (equal) shape `[...]`; returns `[..., 2l+1, 2l+1]` in the angles' kind/device.
pub fn wigner_d(l: u32, alpha: &Tensor, beta: &Tensor, gamma: &Tensor) -> Tensor {
    let d = 2 * l as i64 + 1;
    let gens = so3_generators(l);
    let (kind, device) = (alpha.kind(), alpha.device());
    let g = |i: usize| {
        Tensor::from_slice(&gens[i])
            .reshape([d, d])
            .to_kind(kind)
            .to_device(device)
    };
    let (x0, x1) = (g(0), g(1));
    // Angles reduced to [-pi, pi]: the generators have eigenvalues i m, |m| <= l, so the
    // exponent has spectral norm <= pi l.
    let two_pi = 2.0 * std::f64::consts::PI;
    let e = |a: &Tensor, x: &Tensor| {
        let a = a - (a / two_pi).round().detach() * two_pi;
        expm(
            &(a.unsqueeze(-1).unsqueeze(-1) * x),
            std::f64::consts::PI * l as f64,
        )
    };
    e(alpha, &x1).matmul(&e(beta, &x0)).matmul(&e(gamma, &x1))
}

/// Matrix exponential of `a [..., d, d]` with spectral norm at most `bound`, by scaling and
/// squaring with a degree-18 Taylor polynomial (scaled norm <= 1/2, truncation < 1e-22).
/// libtorch's `matrix_exp` loses ~1e-10 for small angles in f64, hence this.
fn expm(a: &Tensor, bound: f64) -> Tensor {
    let s = if bound > 0.5 {
        (bound / 0.5).log2().ceil() as i32
    } else {
        0
    };
    let a = a / 2f64.powi(s);
    let d = a.size()[a.dim() - 1];
    let eye = Tensor::eye(d, (a.kind(), a.device())).expand_as(&a);
    // Horner: I + A/1 (I + A/2 (I + ... (I + A/18)))
    let mut r = eye.shallow_clone();
    for k in (1..=18).rev() {
        r = &eye + a.matmul(&r) / k as f64;
    }
    for _ in 0..s {
        r = r.matmul(&r);
    }
    r
}

/// e3nn's `angles_to_matrix(a, b, c) = Ry(a) Rx(b) Ry(c)`; returns `[..., 3, 3]`.
pub fn angles_to_matrix(alpha: &Tensor, beta: &Tensor, gamma: &Tensor) -> Tensor {
    let ry = |a: &Tensor| {
        let (c, s, o, z) = (a.cos(), a.sin(), a.ones_like(), a.zeros_like());
        Tensor::stack(&[&c, &z, &s, &z, &o, &z, &(-&s), &z, &c], -1).unflatten(-1, [3, 3])
    };
    let rx = |a: &Tensor| {
        let (c, s, o, z) = (a.cos(), a.sin(), a.ones_like(), a.zeros_like());
        Tensor::stack(&[&o, &z, &z, &z, &c, &(-&s), &z, &s, &c], -1).unflatten(-1, [3, 3])
    };
    ry(alpha).matmul(&rx(beta)).matmul(&ry(gamma))
}

/// Haar-random Euler angles `(alpha, beta, gamma)`, each of shape `shape`, from torch's RNG.
pub fn rand_angles(shape: &[i64], kind: Kind, device: Device) -> (Tensor, Tensor, Tensor) {
    let two_pi = 2.0 * std::f64::consts::PI;
    let a = Tensor::rand(shape, (kind, device)) * two_pi;
    let c = Tensor::rand(shape, (kind, device)) * two_pi;
    let b = (Tensor::rand(shape, (kind, device)) * 2.0 - 1.0).acos();
    (a, b, c)
}
