//! The run directory `root/run_name/` (nequip's `Output` and the trainer's files): `log`,
//! `metrics_epoch.csv`, `metrics_batch_train.csv`, `metrics_batch_val.csv`,
//! `metrics_initialization.csv`, `config.yaml`, `best_model.safetensors`,
//! `last_model.safetensors` (nequip-rs model files) and `trainer_state.safetensors` (optimizer,
//! EMA, scheduler, early stopping, progress). Every file is written atomically (temp file +
//! rename), so a kill at any moment leaves the previous complete version. The CSVs and the log
//! are kept in memory and written once per epoch (and when dropped, e.g. on an error), not per
//! batch.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tch::Tensor;

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // rename makes it atomic for a killed process; no fsync (a power cut is not the concern)
    let r = std::fs::File::create(&tmp).and_then(|mut f| f.write_all(bytes));
    if let Err(e) = r.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// A CSV file kept in memory and rewritten atomically; rows are appended.
pub struct Csv {
    path: PathBuf,
    header: Option<Vec<String>>,
    lines: Vec<String>,
    dirty: bool,
}

impl Csv {
    /// Open (keeping the rows of an earlier run when appending).
    pub fn open(path: PathBuf, keep: bool) -> Self {
        let text = if keep { std::fs::read_to_string(&path).unwrap_or_default() } else { String::new() };
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let header = (!lines.is_empty()).then(|| lines.remove(0).split(',').map(|s| s.trim().to_string()).collect());
        Csv { path, header, lines, dirty: !keep }
    }

    /// Append a row (the first row fixes the header; nequip's number formatting).
    pub fn row(&mut self, values: &[(String, f64)]) -> std::io::Result<()> {
        if self.header.is_none() {
            self.header = Some(values.iter().map(|(k, _)| k.clone()).collect());
        }
        let header = self.header.as_ref().map(|h| h.as_slice()).unwrap_or(&[]);
        let cells: Vec<String> = header.iter().map(|h| values.iter().find(|(k, _)| k == h).map(|(_, v)| format_cell(h, *v)).unwrap_or_default()).collect();
        self.lines.push(cells.join(","));
        self.dirty = true;
        Ok(())
    }

    /// Write the file (atomically) if rows were added since the last flush.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        let mut text = self.header.as_ref().map(|h| h.join(",")).unwrap_or_default();
        text.push('\n');
        for l in &self.lines {
            text.push_str(l);
            text.push('\n');
        }
        atomic_write(&self.path, text.as_bytes())
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

fn format_cell(name: &str, v: f64) -> String {
    if name == "epoch" || name == "batch" {
        format!("{:>10}", v as i64)
    } else {
        format!("{:>16}", format!("{:.8}", v).trim_end_matches('0').trim_end_matches('.'))
    }
}

/// The `log` file (also echoed to stdout unless quiet).
pub struct Log {
    path: PathBuf,
    text: String,
    dirty: bool,
    pub echo: bool,
}

impl Log {
    pub fn open(path: PathBuf, keep: bool, echo: bool) -> Self {
        let text = if keep { std::fs::read_to_string(&path).unwrap_or_default() } else { String::new() };
        Log { path, text, dirty: !keep, echo }
    }
    pub fn line(&mut self, s: &str) {
        if self.echo {
            // a closed stdout (e.g. piped into `head`) must not stop the training
            let _ = writeln!(std::io::stdout(), "{s}");
        }
        self.text.push_str(s);
        self.text.push('\n');
        self.dirty = true;
    }
    /// Write the file (atomically) if lines were added since the last flush.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.dirty = false;
            atomic_write(&self.path, self.text.as_bytes())?;
        }
        Ok(())
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Drop for Csv {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// nequip's epoch table: a header line and `! Name  epoch  wall  LR  values...`.
pub fn table(title: &str, rows: &[(&str, &[(String, f64)])]) -> Vec<String> {
    let Some((_, first)) = rows.first() else { return vec![] };
    let mut header = format!("  {title:<15}#    Epoch");
    for (k, _) in first.iter().filter(|(k, _)| k != "epoch") {
        header += &format!(" {:>12}", if k == "wall" { "wal" } else { k.as_str() });
    }
    let mut out = vec![String::new(), header];
    for (name, vals) in rows {
        let mut line = format!("! {name:<17}");
        for (k, v) in vals.iter() {
            line += &if k == "epoch" { format!("{:>6}", *v as i64) } else { format!(" {:>12}", fmt_g(*v)) };
        }
        out.push(line);
    }
    out
}

/// Three significant digits, like nequip's `{:12.3g}`.
pub fn fmt_g(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let e = v.abs().log10().floor() as i32;
    if !(-5..6).contains(&e) {
        format!("{v:.2e}")
    } else {
        let decimals = (2 - e).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    }
}

/// Save named tensors plus a JSON document into one safetensors file, atomically.
pub fn save_state(path: &Path, tensors: &[(String, Tensor)], json: &serde_json::Value) -> Result<(), String> {
    let mut named: Vec<(String, Tensor)> = tensors.iter().map(|(n, t)| (n.clone(), t.detach().to_device(tch::Device::Cpu).contiguous())).collect();
    // safetensors cannot hold 0-d tensors: store them as [1]
    for (_, t) in named.iter_mut() {
        if t.dim() == 0 {
            *t = t.reshape([1]);
        }
    }
    named.push(("__json__".into(), Tensor::from_slice(json.to_string().as_bytes())));
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    Tensor::write_safetensors(&named, &tmp).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Read [`save_state`]'s file back.
pub fn load_state(path: &Path) -> Result<(BTreeMap<String, Tensor>, serde_json::Value), String> {
    let mut t: BTreeMap<String, Tensor> = Tensor::read_safetensors(path).map_err(|e| format!("{}: {e}", path.display()))?.into_iter().collect();
    let json = t.remove("__json__").ok_or_else(|| format!("{}: not a trainer state file", path.display()))?;
    let bytes = Vec::<u8>::try_from(&json).map_err(|e| e.to_string())?;
    let v = serde_json::from_slice(&bytes).map_err(|e| format!("{}: corrupt trainer state: {e}", path.display()))?;
    Ok((t, v))
}
