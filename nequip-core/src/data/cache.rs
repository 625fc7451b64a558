//! The processed-data cache: `root/processed_dataset_<sha1 of the parameters>/` holding
//! `data.bin` (the processed frames) and `params.json`. Mirrors the caching of
//! `AtomicDataset.processed_dir` / `AtomicInMemoryDataset.process` (nequip 0.6.2), with two
//! additions: the raw file's size and modification time are recorded and checked (nequip does not
//! notice a changed raw file), and a SHA-1 trailer detects corruption. A corrupt or stale cache
//! is rebuilt with a warning; files are written atomically (temporary file + rename).

use std::io::Write;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use super::array::{Array, ArrayData};
use super::atomic_data::AtomicData;

const MAGIC: &[u8; 8] = b"NQRSDAT1";

/// What identifies a processed dataset: dataset kind, its options (as JSON), the float dtype and
/// the nequip-rs version.
pub fn processed_dir(
    root: &Path,
    kind: &str,
    options: &serde_json::Value,
) -> (PathBuf, serde_json::Value) {
    let params = serde_json::json!({
        "dataset": kind,
        "options": options,
        "dtype": "float64",
        "nequip_rs_version": env!("CARGO_PKG_VERSION"),
    });
    let hash = Sha1::digest(params.to_string().as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    (root.join(format!("processed_dataset_{hex}")), params)
}

/// Size and modification time (ns since the epoch) of the raw file.
pub fn source_stamp(path: &Path) -> (u64, u128) {
    std::fs::metadata(path)
        .map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (m.len(), t)
        })
        .unwrap_or((0, 0))
}

/// Processed frames plus the file-frame index of each.
#[derive(Clone, Debug, PartialEq)]
pub struct Processed {
    pub frames: Vec<AtomicData>,
    pub frame_ids: Vec<usize>,
}

fn put_u64(buf: &mut Vec<u8>, x: u64) {
    buf.extend_from_slice(&x.to_le_bytes());
}

/// Serialises processed frames, tagged with the raw file stamp.
pub fn encode(p: &Processed, stamp: (u64, u128)) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(MAGIC);
    put_u64(&mut b, stamp.0);
    b.extend_from_slice(&stamp.1.to_le_bytes());
    put_u64(&mut b, p.frames.len() as u64);
    for (f, id) in p.frames.iter().zip(&p.frame_ids) {
        put_u64(&mut b, *id as u64);
        put_u64(&mut b, f.fields().len() as u64);
        for (name, a) in f.fields() {
            put_u64(&mut b, name.len() as u64);
            b.extend_from_slice(name.as_bytes());
            let tag = match a.data {
                ArrayData::F64(_) => 0u8,
                ArrayData::I64(_) => 1,
                ArrayData::Bool(_) => 2,
            };
            b.push(tag);
            put_u64(&mut b, a.shape.len() as u64);
            for &s in &a.shape {
                put_u64(&mut b, s as u64);
            }
            match &a.data {
                ArrayData::F64(v) => v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
                ArrayData::I64(v) => v.iter().for_each(|x| b.extend_from_slice(&x.to_le_bytes())),
                ArrayData::Bool(v) => b.extend(v.iter().map(|&x| x as u8)),
            }
        }
    }
    let digest = Sha1::digest(&b);
    b.extend_from_slice(&digest);
    b
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("truncated")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().map_err(|_| "truncated")?,
        ))
    }
    fn len(&mut self) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.b.len())
            .ok_or_else(|| format!("implausible length {n}"))
    }
}

/// Parses [`encode`]d bytes; checks the checksum and the raw file stamp.
pub fn decode(bytes: &[u8], stamp: (u64, u128)) -> Result<Processed, String> {
    if bytes.len() < MAGIC.len() + 20 || &bytes[..8] != MAGIC {
        return Err("not a nequip-rs processed dataset (bad header)".into());
    }
    let (body, digest) = bytes.split_at(bytes.len() - 20);
    if Sha1::digest(body).as_slice() != digest {
        return Err("checksum mismatch".into());
    }
    let mut r = Reader { b: body, at: 8 };
    let size = r.u64()?;
    let mtime = u128::from_le_bytes(r.take(16)?.try_into().map_err(|_| "truncated")?);
    if (size, mtime) != stamp {
        return Err("the raw data file changed since it was processed".into());
    }
    let n = r.len()?;
    let mut out = Processed {
        frames: Vec::with_capacity(n),
        frame_ids: Vec::with_capacity(n),
    };
    for _ in 0..n {
        out.frame_ids.push(r.len()?);
        let nf = r.len()?;
        let mut fields = std::collections::BTreeMap::new();
        for _ in 0..nf {
            let ln = r.len()?;
            let name = String::from_utf8(r.take(ln)?.to_vec()).map_err(|_| "bad field name")?;
            let tag = r.take(1)?[0];
            let nd = r.len()?;
            let shape = (0..nd).map(|_| r.len()).collect::<Result<Vec<_>, _>>()?;
            let numel = shape
                .iter()
                .try_fold(1usize, |a, &b| a.checked_mul(b))
                .filter(|&n| n <= body.len())
                .ok_or("implausible shape")?;
            let a = match tag {
                0 => Array::f64(
                    shape,
                    r.take(numel * 8)?
                        .chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                ),
                1 => Array::i64(
                    shape,
                    r.take(numel * 8)?
                        .chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                ),
                2 => Array::bool(shape, r.take(numel)?.iter().map(|&x| x != 0).collect()),
                t => return Err(format!("bad dtype tag {t}")),
            };
            fields.insert(name, a);
        }
        out.frames.push(AtomicData::from_fields_unchecked(fields));
    }
    if r.at != body.len() {
        return Err("trailing bytes".into());
    }
    Ok(out)
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("data");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = dir.join(format!(".{name}.tmp-{}-{nanos}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Loads the cached frames, or `None` (with a warning on stderr for a corrupt/stale cache).
pub fn load(dir: &Path, stamp: (u64, u128)) -> Option<Processed> {
    let path = dir.join("data.bin");
    let bytes = std::fs::read(&path).ok()?;
    match decode(&bytes, stamp) {
        Ok(p) => Some(p),
        Err(why) => {
            eprintln!(
                "warning: processed dataset cache {} is unusable ({why}); rebuilding it",
                path.display()
            );
            None
        }
    }
}

/// Stores processed frames and their parameters; failures only warn (the data is still usable).
pub fn store(dir: &Path, params: &serde_json::Value, p: &Processed, stamp: (u64, u128)) {
    let result = std::fs::create_dir_all(dir).and_then(|_| {
        atomic_write(
            &dir.join("params.json"),
            serde_json::to_string_pretty(params)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        atomic_write(&dir.join("data.bin"), &encode(p, stamp))
    });
    if let Err(e) = result {
        eprintln!(
            "warning: cannot write the processed dataset cache {}: {e}",
            dir.display()
        );
    }
}
