//! The run directory `root/run_name/` (nequip's `Output` and the trainer's files): `log`,
//! `metrics_epoch.csv`, `metrics_batch_train.csv`, `metrics_batch_val.csv`,
//! `metrics_initialization.csv`, `config.yaml`, `best_model.safetensors`,
//! `last_model.safetensors` (nequip-rs model files) and `trainer_state.safetensors` (see
//! [`super::state`]).
//!
//! The log and the CSVs are appended to as their lines are produced (one `write` per line, no
//! copy in memory, so long runs cost neither quadratic I/O nor memory). Each checkpoint records
//! how far every one of them had got ([`RunFileMarks`]); a restart cuts them back to that point
//! before appending, so lines written by a killed run after its last checkpoint disappear and a
//! resumed run's files equal an uninterrupted run's. Every other file is written atomically
//! (temp file + rename); temp files a killed run left behind are removed at the next start.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A damaged or unreadable run-directory file.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {reason}; it was damaged after the last checkpoint (trainer_state.safetensors) and cannot be continued: restore it, or start a new run", path.display())]
    Damaged { path: PathBuf, reason: String },
    #[error("{}: damaged trainer state ({reason}); restore it, or start a new run", path.display())]
    State { path: PathBuf, reason: String },
}

impl RunFileError {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| RunFileError::Io { path: path.to_path_buf(), source }
    }
    fn damaged(path: &Path, reason: String) -> Self {
        RunFileError::Damaged { path: path.to_path_buf(), reason }
    }
}

/// The temporary file [`atomic_write`] (and the other atomic writers) use for `path`:
/// `name.tmp<pid>` (`best_model.safetensors` → `best_model.tmp<pid>`).
pub fn temp_path(path: &Path) -> PathBuf {
    path.with_extension(format!("tmp{}", std::process::id()))
}

/// Whether `name` has the form of a temp file of an atomic write: `<stem>.tmp<digits>`
/// (also `config.yaml.tmp<pid>`, from [`crate::config::Config::save`]).
pub fn is_temp_name(name: &str) -> bool {
    name.rsplit_once(".tmp").is_some_and(|(stem, pid)| !stem.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Remove the temp files of atomic writes that a killed run left in `dir` (other files are
/// left alone). Returns the names removed.
pub fn remove_stale_temps(dir: &Path) -> Result<Vec<String>, RunFileError> {
    let mut removed = vec![];
    for entry in std::fs::read_dir(dir).map_err(RunFileError::io(dir))? {
        let entry = entry.map_err(RunFileError::io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temp_name(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path()).map_err(RunFileError::io(&entry.path()))?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

/// Rename a finished temp file onto `path` (the last step of an atomic write).
///
/// Test hook: `NEQUIP_RS_KILL_BEFORE_RENAME=<file name>:<n>` kills the process (`SIGKILL`)
/// before the `n`-th rename onto `<file name>`, leaving the temp file, as a `kill -9` at that
/// moment would.
pub fn commit_temp(tmp: &Path, path: &Path) -> std::io::Result<()> {
    if let Ok(spec) = std::env::var("NEQUIP_RS_KILL_BEFORE_RENAME") {
        kill_hook(&spec, path);
    }
    std::fs::rename(tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(tmp);
    })
}

fn kill_hook(spec: &str, path: &Path) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let Some((name, n)) = spec.rsplit_once(':') else { return };
    if path.file_name().is_some_and(|f| f == name) && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == n.parse().unwrap_or(0) {
        // SAFETY: kill(2) on our own pid; nothing is shared
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        std::process::abort();
    }
}

/// Write `bytes` to `path` through a temporary file and a rename.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temp_path(path);
    // rename makes it atomic for a killed process; no fsync (a power cut is not the concern)
    if let Err(e) = File::create(&tmp).and_then(|mut f| f.write_all(bytes)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    commit_temp(&tmp, path)
}

/// How far an appended file had got: its lines (for a CSV, the header counts) and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileMark {
    pub lines: u64,
    pub bytes: u64,
}

/// A file appended to line by line, written through at once (no buffer, no copy in memory).
#[derive(Debug)]
pub struct AppendFile {
    path: PathBuf,
    file: File,
    mark: FileMark,
}

/// What [`AppendFile::resume`] checks of the part it keeps.
struct Kept {
    mark: FileMark,
    /// The first line (a CSV's header).
    first: String,
}

impl AppendFile {
    /// A new, empty file (an existing one is emptied).
    pub fn create(path: PathBuf) -> Result<Self, RunFileError> {
        let file = File::create(&path).map_err(RunFileError::io(&path))?;
        Ok(AppendFile { path, file, mark: FileMark::default() })
    }

    /// Reopen a file to continue it: cut back to `mark` (what the last checkpoint recorded),
    /// or kept whole when `mark` is `None` (a state written before marks were recorded).
    /// A file shorter than its mark, or whose kept part does not hold `mark.lines` complete
    /// lines (blank lines too, when `!blank_lines`), is [`RunFileError::Damaged`].
    fn resume(path: PathBuf, mark: Option<FileMark>, blank_lines: bool) -> Result<(Self, String), RunFileError> {
        let io = RunFileError::io(&path);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        let len = file.metadata().map_err(RunFileError::io(&path))?.len();
        let keep = mark.map_or(len, |m| m.bytes);
        if len < keep {
            return Err(RunFileError::damaged(&path, format!("{len} bytes, but the last checkpoint recorded {keep}")));
        }
        let kept = scan(&file, keep, blank_lines).map_err(|reason| RunFileError::damaged(&path, reason))?;
        if let Some(m) = mark.filter(|m| m.lines != kept.mark.lines) {
            return Err(RunFileError::damaged(&path, format!("{} lines in its first {keep} bytes, but the last checkpoint recorded {}", kept.mark.lines, m.lines)));
        }
        file.set_len(keep).map_err(RunFileError::io(&path))?;
        let mut f = AppendFile { path, file, mark: kept.mark };
        f.file.seek(SeekFrom::End(0)).map_err(RunFileError::io(&f.path))?;
        Ok((f, kept.first))
    }

    /// Append `line` and a newline (one write).
    pub fn line(&mut self, line: &str) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.mark.lines += 1;
        self.mark.bytes += buf.len() as u64;
        Ok(())
    }

    pub fn mark(&self) -> FileMark {
        self.mark
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Count the complete lines of the first `keep` bytes of `file` (streamed, not read whole).
fn scan(file: &File, keep: u64, blank_lines: bool) -> Result<Kept, String> {
    let mut r = BufReader::new(file.take(keep));
    let (mut mark, mut first, mut buf) = (FileMark::default(), String::new(), Vec::new());
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(Kept { mark, first });
        }
        if buf.last() != Some(&b'\n') {
            return Err(format!("line {} is cut off", mark.lines + 1));
        }
        let text = String::from_utf8_lossy(&buf[..n - 1]);
        if !blank_lines && text.trim().is_empty() {
            return Err(format!("line {} is blank", mark.lines + 1));
        }
        if mark.lines == 0 {
            first = text.into_owned();
        }
        mark.lines += 1;
        mark.bytes += n as u64;
    }
}

/// A CSV file with nequip's layout: the first row fixes the header, then one line per row.
#[derive(Debug)]
pub struct Csv {
    file: AppendFile,
    header: Option<Vec<String>>,
}

impl Csv {
    /// A new, empty CSV (the header is written with the first row).
    pub fn create(path: PathBuf) -> Result<Self, RunFileError> {
        Ok(Csv { file: AppendFile::create(path)?, header: None })
    }

    /// Continue a CSV from its [`FileMark`] (see [`AppendFile`]; blank lines are damage).
    /// Without a mark, a file of nothing but whitespace is emptied (earlier versions wrote a
    /// lone newline for a CSV without rows).
    pub fn resume(path: PathBuf, mark: Option<FileMark>) -> Result<Self, RunFileError> {
        let small = std::fs::metadata(&path).is_ok_and(|m| m.len() < 4096);
        let blank = mark.is_none() && small && std::fs::read(&path).is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace));
        let (file, first) = AppendFile::resume(path, if blank { Some(FileMark::default()) } else { mark }, false)?;
        let header = (file.mark.lines > 0).then(|| first.split(',').map(|s| s.trim().to_string()).collect());
        Ok(Csv { file, header })
    }

    /// Append a row (the first row fixes the header; nequip's number formatting).
    pub fn row(&mut self, values: &[(String, f64)]) -> std::io::Result<()> {
        if self.header.is_none() {
            let h: Vec<String> = values.iter().map(|(k, _)| k.clone()).collect();
            self.file.line(&h.join(","))?;
            self.header = Some(h);
        }
        let header = self.header.as_deref().unwrap_or(&[]);
        let cells: Vec<String> = header.iter().map(|h| values.iter().find(|(k, _)| k == h).map(|(_, v)| format_cell(h, *v)).unwrap_or_default()).collect();
        self.file.line(&cells.join(","))
    }

    /// Rows (without the header).
    pub fn len(&self) -> usize {
        self.file.mark.lines.saturating_sub(1) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn path(&self) -> &Path {
        self.file.path()
    }
    pub fn mark(&self) -> FileMark {
        self.file.mark()
    }
}

fn format_cell(name: &str, v: f64) -> String {
    if name == "epoch" || name == "batch" {
        format!("{:>10}", v as i64)
    } else {
        format!("{:>16}", format!("{:.8}", v).trim_end_matches('0').trim_end_matches('.'))
    }
}

/// The `log` file (also echoed to stdout when `echo`).
#[derive(Debug)]
pub struct Log {
    file: AppendFile,
    pub echo: bool,
}

impl Log {
    pub fn line(&mut self, s: &str) -> std::io::Result<()> {
        if self.echo {
            // a closed stdout (e.g. piped into `head`) must not stop the training
            let _ = writeln!(std::io::stdout(), "{s}");
        }
        self.file.line(s)
    }
    pub fn mark(&self) -> FileMark {
        self.file.mark()
    }
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

/// How far each appended file of a run had got at a checkpoint (saved in the trainer state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunFileMarks {
    pub log: FileMark,
    pub epoch: FileMark,
    pub batch_train: FileMark,
    pub batch_val: FileMark,
    pub initialization: FileMark,
}

/// The log and the metrics CSVs of a run directory.
#[derive(Debug)]
pub struct RunFiles {
    pub log: Log,
    pub epoch: Csv,
    pub batch_train: Csv,
    pub batch_val: Csv,
    pub initialization: Csv,
}

const NAMES: [&str; 5] = ["log", "metrics_epoch.csv", "metrics_batch_train.csv", "metrics_batch_val.csv", "metrics_initialization.csv"];

impl RunFiles {
    /// Open the files of `dir` (removing leftover temp files first): new, empty ones for a
    /// fresh run (`resume: None`); for a continued run, the existing ones cut back to the
    /// marks of its last checkpoint (`Some(None)`: a state without marks, files kept whole).
    pub fn open(dir: &Path, resume: Option<Option<&RunFileMarks>>, echo: bool) -> Result<Self, RunFileError> {
        remove_stale_temps(dir)?;
        let [log, epoch, batch_train, batch_val, initialization] = NAMES.map(|n| dir.join(n));
        Ok(match resume {
            None => RunFiles { log: Log { file: AppendFile::create(log)?, echo }, epoch: Csv::create(epoch)?, batch_train: Csv::create(batch_train)?, batch_val: Csv::create(batch_val)?, initialization: Csv::create(initialization)? },
            Some(m) => RunFiles {
                log: Log { file: AppendFile::resume(log, m.map(|m| m.log), true)?.0, echo },
                epoch: Csv::resume(epoch, m.map(|m| m.epoch))?,
                batch_train: Csv::resume(batch_train, m.map(|m| m.batch_train))?,
                batch_val: Csv::resume(batch_val, m.map(|m| m.batch_val))?,
                initialization: Csv::resume(initialization, m.map(|m| m.initialization))?,
            },
        })
    }

    /// Where every file is now (recorded with a checkpoint).
    pub fn marks(&self) -> RunFileMarks {
        RunFileMarks { log: self.log.mark(), epoch: self.epoch.mark(), batch_train: self.batch_train.mark(), batch_val: self.batch_val.mark(), initialization: self.initialization.mark() }
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
