//! Extended XYZ reader with ASE's conventions (`ase/io/extxyz.py`: `key_val_str_to_dict`,
//! `parse_properties`, `_read_xyz_frame`, `set_calc_and_arrays`). Used by the `ase` dataset
//! (`nequip/data/_dataset/_ase_dataset.py`) for `.extxyz`/`.xyz` files.
//!
//! - comment line: `key=value` pairs; values quoted (`"..."`, `'...'`) or bracketed (`{...}`,
//!   `[...]`), backslash escapes; a bare key means `T`. Values become ints, floats, bools
//!   (`T`/`F`/`true`/...) or arrays of them, else strings.
//! - `Lattice` (9 numbers, rows = lattice vectors), `pbc` (default `T T T` with a `Lattice`,
//!   else `F F F`), `Properties` (default `species:S:1:pos:R:3`; types `R`, `I`, `S`, `L`).
//! - 9-number `stress`/`virial` are 3×3 matrices read in Fortran order (as ASE).
//! - column names `pos`, `Z`, `species`, `charge` are ASE's `positions`, `numbers`, `symbols`,
//!   `charges`.

use std::collections::BTreeMap;
use std::path::Path;

use super::array::Array;
use super::error::DataError;

/// A value of the comment line.
#[derive(Clone, Debug, PartialEq)]
pub enum InfoValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
    Bools(Vec<bool>),
    /// A 3×3 matrix (from 9 numbers of `stress`/`virial`), row-major.
    Matrix([f64; 9]),
}

impl InfoValue {
    /// The value as an array (`None` for strings): scalars `[]`, vectors `[n]`, matrices `[3, 3]`.
    pub fn to_array(&self) -> Option<Array> {
        Some(match self {
            InfoValue::Int(x) => Array::i64(vec![], vec![*x]),
            InfoValue::Float(x) => Array::f64(vec![], vec![*x]),
            InfoValue::Bool(x) => Array::bool(vec![], vec![*x]),
            InfoValue::Ints(v) => Array::i64(vec![v.len()], v.clone()),
            InfoValue::Floats(v) => Array::f64(vec![v.len()], v.clone()),
            InfoValue::Bools(v) => Array::bool(vec![v.len()], v.clone()),
            InfoValue::Matrix(m) => Array::f64(vec![3, 3], m.to_vec()),
            InfoValue::Str(_) => return None,
        })
    }
}

/// One frame, as ASE would build an `Atoms`.
#[derive(Clone, Debug, PartialEq)]
pub struct XyzFrame {
    /// 1-based line number of the atom-count line.
    pub line: usize,
    /// Chemical symbols (`species` column), if present.
    pub symbols: Option<Vec<String>>,
    /// Atomic numbers (`Z` column), if present.
    pub numbers: Option<Vec<i64>>,
    /// `[N, 3]` row-major positions.
    pub positions: Vec<f64>,
    /// Lattice vectors as rows (zeros without `Lattice`).
    pub cell: [[f64; 3]; 3],
    pub pbc: [bool; 3],
    /// Comment-line entries other than `Lattice`, `pbc`, `Properties`.
    pub info: BTreeMap<String, InfoValue>,
    /// Per-atom columns other than positions, numbers, symbols (ASE names), `[N]` or `[N, cols]`.
    pub arrays: BTreeMap<String, Array>,
}

impl XyzFrame {
    pub fn natoms(&self) -> usize {
        self.positions.len() / 3
    }
}

/// Splits a comment line into `(key, raw value)` pairs like ASE's `key_val_str_to_dict`.
pub fn split_key_values(line: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs: Vec<Vec<String>> = vec![vec![String::new()]];
    let mut delim: Option<char> = None;
    let mut escaped = false;
    for ch in line.trim().chars() {
        let cur = pairs.last_mut().and_then(|p| p.last_mut());
        if escaped {
            if let Some(c) = cur {
                c.push(ch);
            }
            escaped = false;
        } else if ch == '\\' {
            escaped = true;
        } else if let Some(d) = delim {
            if ch == d {
                delim = None;
            } else if let Some(c) = cur {
                c.push(ch);
            }
        } else if let Some(close) = match ch {
            '"' => Some('"'),
            '\'' => Some('\''),
            '{' => Some('}'),
            '[' => Some(']'),
            _ => None,
        } {
            delim = Some(close);
        } else if ch.is_whitespace() {
            let last = pairs
                .last()
                .map(|p| p.len() == 1 && p[0].is_empty())
                .unwrap_or(true);
            let last_part_empty = pairs
                .last()
                .and_then(|p| p.last())
                .map(|s| s.is_empty())
                .unwrap_or(true);
            if !(last || last_part_empty) {
                pairs.push(vec![String::new()]);
            }
        } else if ch == '=' {
            if pairs
                .last()
                .is_some_and(|p| p.len() == 1 && p[0].is_empty())
                && pairs.len() > 1
            {
                pairs.pop();
            }
            if let Some(p) = pairs.last_mut() {
                p.push(String::new());
            }
        } else if let Some(c) = cur {
            c.push(ch);
        }
    }
    if let Some(d) = delim {
        return Err(format!("unterminated value: missing closing `{d}`"));
    }
    let mut out = Vec::new();
    for p in pairs {
        match p.len() {
            0 => {}
            1 if p[0].is_empty() => {}
            1 => out.push((p[0].clone(), "T".to_string())),
            _ => out.push((p[0].clone(), p[1..].join("="))),
        }
    }
    Ok(out)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "T" | "true" | "True" | "TRUE" => Some(true),
        "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// Converts a raw value like ASE: ints, else floats, else bools, else the string.
pub fn parse_value(key: &str, raw: &str) -> Result<InfoValue, String> {
    if key.to_lowercase() == "uid" {
        return Ok(InfoValue::Str(raw.to_string()));
    }
    let parts: Vec<&str> = raw
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .collect();
    let ints: Option<Vec<i64>> = parts.iter().map(|s| s.parse::<i64>().ok()).collect();
    let floats: Option<Vec<f64>> = parts.iter().map(|s| s.parse::<f64>().ok()).collect();
    let value = match (ints, floats) {
        (Some(v), _) if !v.is_empty() => {
            if v.len() == 1 {
                InfoValue::Int(v[0])
            } else {
                InfoValue::Ints(v)
            }
        }
        (_, Some(v)) if !v.is_empty() => {
            if v.len() == 1 {
                InfoValue::Float(v[0])
            } else {
                InfoValue::Floats(v)
            }
        }
        _ => match parts
            .iter()
            .map(|s| parse_bool(s))
            .collect::<Option<Vec<bool>>>()
        {
            Some(b) if b.len() == 1 => InfoValue::Bool(b[0]),
            Some(b) if !b.is_empty() => InfoValue::Bools(b),
            _ => InfoValue::Str(raw.to_string()),
        },
    };
    if matches!(key, "Lattice" | "virial" | "stress") {
        let nums: Vec<f64> = match &value {
            InfoValue::Ints(v) => v.iter().map(|&x| x as f64).collect(),
            InfoValue::Floats(v) => v.clone(),
            _ => vec![],
        };
        if nums.len() != 9 {
            return Err(format!(
                "`{key}` must be 9 numbers (a 3×3 matrix), got `{raw}`"
            ));
        }
        // ASE reshapes in Fortran order
        let m: [f64; 9] = std::array::from_fn(|k| nums[(k % 3) * 3 + k / 3]);
        return Ok(InfoValue::Matrix(m));
    }
    Ok(value)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ColType {
    Real,
    Int,
    Str,
    Logical,
}

/// Parses a `Properties` string into `(name, type, columns)`.
fn parse_properties(s: &str) -> Result<Vec<(String, ColType, usize)>, String> {
    let parts: Vec<&str> = s.split(':').collect();
    if !parts.chunks_exact(3).remainder().is_empty() {
        return Err(format!(
            "`Properties={s}` is not a list of name:type:columns triples"
        ));
    }
    parts
        .chunks(3)
        .map(|c| {
            let t = match c[1] {
                "R" => ColType::Real,
                "I" => ColType::Int,
                "S" => ColType::Str,
                "L" => ColType::Logical,
                other => {
                    return Err(format!(
                        "unknown property type `{other}` of `{}` in Properties",
                        c[0]
                    ))
                }
            };
            let n: usize = c[2]
                .parse()
                .map_err(|_| format!("bad column count `{}` of `{}` in Properties", c[2], c[0]))?;
            if n == 0 {
                return Err(format!("zero columns for `{}` in Properties", c[0]));
            }
            Ok((c[0].to_string(), t, n))
        })
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f
            .to_uppercase()
            .chain(c.flat_map(|x| x.to_lowercase()))
            .collect(),
        None => String::new(),
    }
}

/// Reads every frame of an extended XYZ file.
pub fn read_extxyz(path: &Path) -> Result<Vec<XyzFrame>, DataError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        file: file.clone(),
        source,
    })?;
    parse_extxyz(&text, &file)
}

/// Parses extended XYZ text; `file` names the source in errors.
pub fn parse_extxyz(text: &str, file: &str) -> Result<Vec<XyzFrame>, DataError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut frames = Vec::new();
    let mut l = 0;
    while l < lines.len() {
        if lines[l..].iter().all(|s| s.trim().is_empty()) {
            break;
        }
        let frame = frames.len();
        let err = |line: usize, msg: String| DataError::Parse {
            file: file.to_string(),
            line: line + 1,
            frame,
            msg,
        };
        let natoms: usize = lines[l].trim().parse().map_err(|_| {
            err(
                l,
                format!("expected the number of atoms, got `{}`", lines[l].trim()),
            )
        })?;
        let comment = lines
            .get(l + 1)
            .ok_or_else(|| err(l + 1, "missing comment line (end of file)".into()))?;
        let mut info = BTreeMap::new();
        for (k, raw) in split_key_values(comment).map_err(|m| err(l + 1, m))? {
            let v = parse_value(&k, &raw).map_err(|m| err(l + 1, m))?;
            info.insert(k, v);
        }
        let lattice = info.remove("Lattice");
        let pbc = match info.remove("pbc") {
            Some(InfoValue::Bools(b)) if b.len() == 3 => [b[0], b[1], b[2]],
            Some(InfoValue::Bool(b)) => [b; 3],
            Some(other) => {
                return Err(err(
                    l + 1,
                    format!("`pbc` must be 3 booleans (e.g. \"T T F\"), got {other:?}"),
                ))
            }
            None => [lattice.is_some(); 3],
        };
        let mut cell = [[0.0; 3]; 3];
        if let Some(InfoValue::Matrix(m)) = lattice {
            // ASE: cell = Lattice(F-order).T, i.e. rows are consecutive triples
            for (r, row) in cell.iter_mut().enumerate() {
                *row = std::array::from_fn(|c| m[c * 3 + r]);
            }
        }
        let props = match info.remove("Properties") {
            None => "species:S:1:pos:R:3".to_string(),
            Some(InfoValue::Str(s)) => s,
            Some(other) => return Err(err(l + 1, format!("bad Properties value {other:?}"))),
        };
        let props = parse_properties(&props).map_err(|m| err(l + 1, m))?;
        let ncols: usize = props.iter().map(|p| p.2).sum();
        let mut columns: Vec<Vec<&str>> = vec![Vec::with_capacity(natoms); ncols];
        for a in 0..natoms {
            let li = l + 2 + a;
            let line = lines.get(li).ok_or_else(|| {
                err(
                    li,
                    format!("frame has {a} atoms, expected {natoms} (end of file)"),
                )
            })?;
            let toks: Vec<&str> = line.split_whitespace().collect();
            if toks.len() < ncols {
                return Err(err(
                    li,
                    format!("atom {a}: {} columns, Properties need {ncols}", toks.len()),
                ));
            }
            for (c, t) in toks.iter().take(ncols).enumerate() {
                columns[c].push(t);
            }
        }
        let mut out = XyzFrame {
            line: l + 1,
            symbols: None,
            numbers: None,
            positions: vec![],
            cell,
            pbc,
            info,
            arrays: BTreeMap::new(),
        };
        let mut col = 0;
        for (name, ty, n) in props {
            let cols = &columns[col..col + n];
            let at = |a: usize, c: usize| (l + 2 + a, c + col);
            let arr = match ty {
                ColType::Real | ColType::Int => {
                    let mut v = Vec::with_capacity(natoms * n);
                    for a in 0..natoms {
                        for (c, column) in cols.iter().enumerate() {
                            let x: f64 = column[a].parse().map_err(|_| {
                                let (li, cc) = at(a, c);
                                err(li, format!("atom {a}: column {} (`{name}`): cannot parse `{}` as a number", cc + 1, column[a]))
                            })?;
                            if ty == ColType::Int && x.fract() != 0.0 {
                                return Err(err(
                                    l + 2 + a,
                                    format!(
                                        "atom {a}: `{name}`: `{}` is not an integer",
                                        column[a]
                                    ),
                                ));
                            }
                            v.push(x);
                        }
                    }
                    let shape = if n == 1 {
                        vec![natoms]
                    } else {
                        vec![natoms, n]
                    };
                    if ty == ColType::Int {
                        Array::i64(shape, v.iter().map(|&x| x as i64).collect())
                    } else {
                        Array::f64(shape, v)
                    }
                }
                ColType::Logical => {
                    let mut v = Vec::with_capacity(natoms * n);
                    for a in 0..natoms {
                        for column in cols {
                            v.push(parse_bool(column[a]).ok_or_else(|| {
                                err(
                                    l + 2 + a,
                                    format!("atom {a}: `{name}`: `{}` is not a boolean", column[a]),
                                )
                            })?);
                        }
                    }
                    Array::bool(
                        if n == 1 {
                            vec![natoms]
                        } else {
                            vec![natoms, n]
                        },
                        v,
                    )
                }
                ColType::Str => {
                    if name == "species" {
                        out.symbols = Some(cols[0].iter().map(|s| capitalize(s)).collect());
                    }
                    col += n;
                    continue;
                }
            };
            col += n;
            match name.as_str() {
                "pos" => {
                    if n != 3 {
                        return Err(err(l + 1, format!("`pos` has {n} columns, expected 3")));
                    }
                    out.positions = arr.to_f64_vec();
                }
                "Z" => out.numbers = arr.to_i64().and_then(|a| a.as_i64().map(|v| v.to_vec())),
                "charge" => {
                    out.arrays.insert("charges".into(), arr);
                }
                other => {
                    out.arrays.insert(other.to_string(), arr);
                }
            }
        }
        if out.positions.len() != 3 * natoms {
            return Err(err(l + 1, "no `pos:R:3` column in Properties".into()));
        }
        if out.symbols.is_none() && out.numbers.is_none() {
            return Err(err(
                l + 1,
                "no `species` or `Z` column in Properties".into(),
            ));
        }
        frames.push(out);
        l += 2 + natoms;
    }
    Ok(frames)
}
