//! Port of e3nn 0.5.9 `o3/_irreps.py`: irreducible representations of O(3) (`Irrep`),
//! multiplicities (`MulIr`) and direct sums (`Irreps`).
//!
//! Layout convention (as e3nn): a feature vector of `Irreps` is the concatenation of its
//! blocks; block `mul x ir` is `[mul, 2l+1]` flattened, mul-major.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use super::E3nnError;

/// An irreducible representation of O(3): degree `l` and parity `p = ±1`.
///
/// Ordered like e3nn's tuple `(l, p)`: `0o < 0e < 1o < 1e < 2o ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Irrep {
    /// Degree.
    pub l: u32,
    /// Parity, `1` (even, "e") or `-1` (odd, "o").
    pub p: i32,
}

impl Irrep {
    /// New irrep; errors when `p` is not ±1.
    pub fn new(l: u32, p: i32) -> Result<Self, E3nnError> {
        if p != 1 && p != -1 {
            return Err(E3nnError::BadParity(p));
        }
        Ok(Irrep { l, p })
    }

    /// Dimension `2l + 1`.
    pub fn dim(&self) -> usize {
        2 * self.l as usize + 1
    }

    /// True for `0e`.
    pub fn is_scalar(&self) -> bool {
        self.l == 0 && self.p == 1
    }

    /// Irreps of the tensor product `self ⊗ other`: `|l1-l2| ..= l1+l2`, parity `p1 p2`.
    pub fn product(&self, other: &Irrep) -> Vec<Irrep> {
        let lmin = self.l.abs_diff(other.l);
        (lmin..=self.l + other.l)
            .map(|l| Irrep {
                l,
                p: self.p * other.p,
            })
            .collect()
    }
}

impl fmt::Display for Irrep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.l, if self.p == 1 { 'e' } else { 'o' })
    }
}

impl FromStr for Irrep {
    type Err = E3nnError;
    /// Parses `"1o"`, `"2e"`, or `"3y"` (`y` = spherical-harmonic parity `(-1)^l`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || E3nnError::BadIrrep(s.to_string());
        let t = s.trim();
        let last = t.chars().last().ok_or_else(bad)?;
        let l: u32 = t[..t.len() - last.len_utf8()]
            .trim()
            .parse()
            .map_err(|_| bad())?;
        let p = match last {
            'e' => 1,
            'o' => -1,
            'y' => {
                if l.is_multiple_of(2) {
                    1
                } else {
                    -1
                }
            }
            _ => return Err(bad()),
        };
        Ok(Irrep { l, p })
    }
}

/// `mul` copies of an irrep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MulIr {
    /// Multiplicity.
    pub mul: usize,
    /// The irrep.
    pub ir: Irrep,
}

impl MulIr {
    /// Dimension `mul * (2l+1)`.
    pub fn dim(&self) -> usize {
        self.mul * self.ir.dim()
    }
}

impl fmt::Display for MulIr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.mul, self.ir)
    }
}

/// A direct sum of irreps with multiplicities, e.g. `16x0e+8x1o`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Irreps(pub Vec<MulIr>);

/// Result of [`Irreps::sort`] (e3nn's `sort()` named tuple).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortedIrreps {
    /// The sorted irreps (not simplified).
    pub irreps: Irreps,
    /// `p[i_old] = i_new`.
    pub p: Vec<usize>,
    /// `inv[i_new] = i_old`.
    pub inv: Vec<usize>,
}

impl Irreps {
    /// Irreps from `(mul, l, p)` triples; errors on a bad parity.
    pub fn from_tuples(items: &[(usize, u32, i32)]) -> Result<Self, E3nnError> {
        items
            .iter()
            .map(|&(mul, l, p)| {
                Ok(MulIr {
                    mul,
                    ir: Irrep::new(l, p)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Irreps)
    }

    /// `1x0e+1x1o+1x2e+...` up to `lmax` with parity `p^l` (`p = -1`: vectors, `1`: pseudovectors).
    pub fn spherical_harmonics(lmax: u32, p: i32) -> Self {
        Irreps(
            (0..=lmax)
                .map(|l| MulIr {
                    mul: 1,
                    ir: Irrep { l, p: p.pow(l) },
                })
                .collect(),
        )
    }

    /// Number of blocks.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no block.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the blocks.
    pub fn iter(&self) -> std::slice::Iter<'_, MulIr> {
        self.0.iter()
    }

    /// Total dimension.
    pub fn dim(&self) -> usize {
        self.0.iter().map(MulIr::dim).sum()
    }

    /// Total number of irreps (sum of multiplicities).
    pub fn num_irreps(&self) -> usize {
        self.0.iter().map(|m| m.mul).sum()
    }

    /// `l` of every irrep copy.
    pub fn ls(&self) -> Vec<u32> {
        self.0
            .iter()
            .flat_map(|m| std::iter::repeat_n(m.ir.l, m.mul))
            .collect()
    }

    /// Largest `l`, or `None` when empty.
    pub fn lmax(&self) -> Option<u32> {
        self.0.iter().map(|m| m.ir.l).max()
    }

    /// Component ranges of every block in the feature vector.
    pub fn slices(&self) -> Vec<Range<usize>> {
        let mut start = 0;
        self.0
            .iter()
            .map(|m| {
                let r = start..start + m.dim();
                start = r.end;
                r
            })
            .collect()
    }

    /// Total multiplicity of `ir`.
    pub fn count(&self, ir: Irrep) -> usize {
        self.0.iter().filter(|m| m.ir == ir).map(|m| m.mul).sum()
    }

    /// Whether `ir` occurs (with any multiplicity, even 0, as in e3nn).
    pub fn contains(&self, ir: Irrep) -> bool {
        self.0.iter().any(|m| m.ir == ir)
    }

    /// Merges consecutive equal irreps and drops zero multiplicities (does not sort).
    pub fn simplify(&self) -> Irreps {
        let mut out: Vec<MulIr> = Vec::new();
        for m in &self.0 {
            match out.last_mut() {
                Some(last) if last.ir == m.ir => last.mul += m.mul,
                _ if m.mul > 0 => out.push(*m),
                _ => {}
            }
        }
        Irreps(out)
    }

    /// Drops blocks with zero multiplicity.
    pub fn remove_zero_multiplicities(&self) -> Irreps {
        Irreps(self.0.iter().copied().filter(|m| m.mul > 0).collect())
    }

    /// Stable sort by irrep (then original index), with the permutation.
    pub fn sort(&self) -> SortedIrreps {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.sort_by_key(|&i| (self.0[i].ir, i));
        let mut p = vec![0; idx.len()];
        for (new, &old) in idx.iter().enumerate() {
            p[old] = new;
        }
        SortedIrreps {
            irreps: Irreps(idx.iter().map(|&i| self.0[i]).collect()),
            p,
            inv: idx,
        }
    }

    /// `sort().irreps.simplify()`.
    pub fn regroup(&self) -> Irreps {
        self.sort().irreps.simplify()
    }

    /// Concatenation `self + other`.
    pub fn concat(&self, other: &Irreps) -> Irreps {
        Irreps(self.0.iter().chain(other.0.iter()).copied().collect())
    }

    /// The blocks repeated `n` times (e3nn's `irreps * n`).
    pub fn repeat(&self, n: usize) -> Irreps {
        Irreps(
            self.0
                .iter()
                .copied()
                .cycle()
                .take(self.len() * n)
                .collect(),
        )
    }

    /// All irreps (multiplicity 1 each, sorted and simplified with multiplicities summed) of
    /// the full tensor product `self ⊗ other`: `sum mul1*mul2 x (ir1 ⊗ ir2)`.
    pub fn tensor_product(&self, other: &Irreps) -> Irreps {
        let mut out = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                for ir in a.ir.product(&b.ir) {
                    out.push(MulIr {
                        mul: a.mul * b.mul,
                        ir,
                    });
                }
            }
        }
        Irreps(out).regroup()
    }

    /// Keeps only the blocks whose irrep is in `keep`.
    pub fn filter_keep(&self, keep: &[Irrep]) -> Irreps {
        Irreps(
            self.0
                .iter()
                .copied()
                .filter(|m| keep.contains(&m.ir))
                .collect(),
        )
    }
}

impl std::ops::Index<usize> for Irreps {
    type Output = MulIr;
    fn index(&self, i: usize) -> &MulIr {
        &self.0[i]
    }
}

impl<'a> IntoIterator for &'a Irreps {
    type Item = &'a MulIr;
    type IntoIter = std::slice::Iter<'a, MulIr>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Irreps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl FromStr for Irreps {
    type Err = E3nnError;
    /// Parses `"16x0e+8x1o"`, `"0e + 1o"` (mul 1), `""` (empty).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().is_empty() {
            return Ok(Irreps::default());
        }
        let bad = || E3nnError::BadIrreps(s.to_string());
        s.split('+')
            .map(|part| {
                let (mul, ir) = match part.split_once('x') {
                    Some((m, ir)) => (m.trim().parse::<usize>().map_err(|_| bad())?, ir),
                    None => (1, part),
                };
                let ir = ir.parse::<Irrep>().map_err(|_| bad())?;
                Ok(MulIr { mul, ir })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Irreps)
    }
}

impl TryFrom<&str> for Irreps {
    type Error = E3nnError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}
