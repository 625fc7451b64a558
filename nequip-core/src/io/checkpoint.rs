//! `torch.save` zip checkpoints → named tensors, without libtorch's loaders (which cannot read a
//! top-level `OrderedDict` state dict: see the fixtures README, "Reading nequip run directories").
//! Layout: `<root>/data.pkl` (pickle) + `<root>/data/<key>` (raw little-endian storages).

use std::io::Read;
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use super::pickle::{self, PValue, TensorRef};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{}: cannot read: {source}", file.display())]
    Io { file: PathBuf, source: std::io::Error },
    #[error("{}: not a torch zip checkpoint ({message})", file.display())]
    NotAZip { file: PathBuf, message: String },
    #[error("{}: no `data.pkl` in the archive (a TorchScript or legacy file?)", file.display())]
    NoPickle { file: PathBuf },
    #[error("{}: {source}", file.display())]
    Pickle { file: PathBuf, source: pickle::PickleError },
    #[error("{}: expected a state dict (a dict of name -> tensor), found {found}", file.display())]
    NotAStateDict { file: PathBuf, found: String },
    #[error("{}: tensor `{name}`: {message}", file.display())]
    BadTensor { file: PathBuf, name: String, message: String },
}

/// Read a state dict saved with `torch.save(model.state_dict(), f)`; names in file order.
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, CheckpointError> {
    let (root, value, mut archive) = open(path)?;
    let PValue::Dict(items) = value else {
        return Err(CheckpointError::NotAStateDict { file: path.into(), found: describe(&value) });
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let name = match k {
            PValue::Str(s) => s,
            other => return Err(CheckpointError::NotAStateDict { file: path.into(), found: format!("a key {}", describe(&other)) }),
        };
        let PValue::Tensor(t) = v else {
            return Err(CheckpointError::BadTensor { file: path.into(), name, message: format!("not a tensor but {}", describe(&v)) });
        };
        let tensor = load_tensor(&mut archive, &root, &t).map_err(|message| CheckpointError::BadTensor { file: path.into(), name: name.clone(), message })?;
        out.push((name, tensor));
    }
    Ok(out)
}

/// The top-level pickled value of any torch zip file (e.g. `trainer.pth`), tensors unresolved.
pub fn read_pickle(path: &Path) -> Result<PValue, CheckpointError> {
    Ok(open(path)?.1)
}

type Archive = zip::ZipArchive<std::fs::File>;

fn open(path: &Path) -> Result<(String, PValue, Archive), CheckpointError> {
    let file = std::fs::File::open(path).map_err(|e| CheckpointError::Io { file: path.into(), source: e })?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| CheckpointError::NotAZip { file: path.into(), message: e.to_string() })?;
    let pkl = archive.file_names().find(|n| *n == "data.pkl" || n.ends_with("/data.pkl")).map(str::to_string).ok_or_else(|| CheckpointError::NoPickle { file: path.into() })?;
    let root = pkl.strip_suffix("data.pkl").unwrap_or("").to_string();
    let bytes = read_entry(&mut archive, &pkl).map_err(|m| CheckpointError::NotAZip { file: path.into(), message: m })?;
    let value = pickle::parse(&bytes).map_err(|e| CheckpointError::Pickle { file: path.into(), source: e })?;
    Ok((root, value, archive))
}

fn read_entry(archive: &mut Archive, name: &str) -> Result<Vec<u8>, String> {
    let mut f = archive.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let mut buf = Vec::with_capacity(f.size() as usize);
    f.read_to_end(&mut buf).map_err(|e| format!("{name}: {e}"))?;
    Ok(buf)
}

/// Element kind and size of a typed storage class.
fn storage_kind(name: &str) -> Option<(Kind, usize)> {
    Some(match name {
        "DoubleStorage" => (Kind::Double, 8),
        "FloatStorage" => (Kind::Float, 4),
        "HalfStorage" => (Kind::Half, 2),
        "BFloat16Storage" => (Kind::BFloat16, 2),
        "LongStorage" => (Kind::Int64, 8),
        "IntStorage" => (Kind::Int, 4),
        "ShortStorage" => (Kind::Int16, 2),
        "CharStorage" => (Kind::Int8, 1),
        "ByteStorage" => (Kind::Uint8, 1),
        "BoolStorage" => (Kind::Bool, 1),
        _ => return None,
    })
}

fn load_tensor(archive: &mut Archive, root: &str, t: &TensorRef) -> Result<Tensor, String> {
    let (kind, elem) = storage_kind(&t.storage_type).ok_or_else(|| format!("unsupported storage type {}", t.storage_type))?;
    let bytes = read_entry(archive, &format!("{root}data/{}", t.key))?;
    if bytes.len() != t.storage_numel as usize * elem {
        return Err(format!("storage {} has {} bytes, expected {} x {elem}", t.key, bytes.len(), t.storage_numel));
    }
    if t.size.len() != t.stride.len() || t.size.iter().chain(&t.stride).any(|&x| x < 0) || t.offset < 0 {
        return Err(format!("bad view: size {:?} stride {:?} offset {}", t.size, t.stride, t.offset));
    }
    let numel: i64 = t.size.iter().product();
    if numel > 0 {
        let last = t.offset + t.size.iter().zip(&t.stride).map(|(n, s)| (n - 1) * s).sum::<i64>();
        if last >= t.storage_numel {
            return Err(format!("view reaches element {last} of a storage of {}", t.storage_numel));
        }
    }
    let storage = Tensor::f_from_data_size(&bytes, &[t.storage_numel], kind).map_err(|e| e.to_string())?;
    Ok(storage.as_strided(t.size.as_slice(), t.stride.as_slice(), Some(t.offset)).contiguous())
}

fn describe(v: &PValue) -> String {
    match v {
        PValue::Dict(_) => "a dict".into(),
        PValue::List(_) => "a list".into(),
        PValue::Tuple(_) => "a tuple".into(),
        PValue::Call(f, _) => format!("an object built by {}", describe(f)),
        PValue::Global(m, n) => format!("{m}.{n}"),
        PValue::Tensor(_) => "a tensor".into(),
        other => format!("{other:?}"),
    }
}
