//! Faults of a training run, as a user meets them: `nequip train` killed with `kill -9` in the
//! middle of training, or during a checkpoint write (temp file left behind, lines written after
//! the checkpoint, a line cut off), then continued with `append: true`: it resumes from the last
//! checkpoint, no file is damaged, at most one epoch is lost and the result equals an
//! uninterrupted run's. Also: damaged files are clear errors (or repaired when nothing is lost),
//! and the log and CSV writers append in place.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nequip_core::train::run_dir::{is_temp_name, remove_stale_temps, Csv, FileMark, RunFileMarks, RunFiles};
use nequip_core::train::setup::STATE_FILE;
use nequip_core::train::state::TrainerState;

const CSVS: [&str; 4] = ["metrics_epoch.csv", "metrics_batch_train.csv", "metrics_batch_val.csv", "metrics_initialization.csv"];

fn root(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-faults-{tag}-")).tempdir().unwrap()
}

/// A tiny toluene run (2 training batches, 1 validation batch per epoch) in `root/run`.
fn config(root: &Path, max_epochs: usize) -> PathBuf {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/toluene_xtb.npz");
    let text = format!(
        "root: {}\nrun_name: run\nseed: 123\ndataset_seed: 456\ndevice: cpu\nmodel_dtype: float64\n\
         model_builders: [SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]\n\
         r_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\n\
         dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\n\
         npz_fixed_field_keys: [atomic_numbers]\nchemical_symbols: [H, C]\n\
         n_train: 10\nn_val: 5\nbatch_size: 5\nvalidation_batch_size: 5\nlearning_rate: 0.01\n\
         loss_coeffs: {{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}}\n\
         use_ema: true\nema_decay: 0.9\nlr_scheduler_name: ReduceLROnPlateau\nlr_scheduler_patience: 0\n\
         append: true\nmax_epochs: {max_epochs}\n",
        root.display(),
        data.display()
    );
    let p = root.join(format!("train_{max_epochs}.yaml"));
    std::fs::write(&p, text).unwrap();
    p
}

/// `nequip train --quiet CONFIG` (one intra-op thread, so runs are bitwise reproducible).
fn nequip_train(cfg: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nequip"));
    c.args(["train", "--quiet"]).arg(cfg).env("OMP_NUM_THREADS", "1").env_remove("NEQUIP_RS_KILL_BEFORE_RENAME").stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

fn train_ok(cfg: &Path) {
    let out = nequip_train(cfg).output().unwrap();
    assert!(out.status.success(), "nequip train {} failed: {}", cfg.display(), String::from_utf8_lossy(&out.stderr));
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The rows of a CSV without its `wall` column (the only one that depends on the clock).
fn without_wall(p: &Path) -> Vec<Vec<String>> {
    let text = read(p);
    let rows: Vec<Vec<String>> = text.lines().map(|l| l.split(',').map(str::to_string).collect()).collect();
    let wall = rows.first().and_then(|h| h.iter().position(|c| c.trim() == "wall"));
    rows.into_iter().map(|mut r| {
        if let Some(i) = wall {
            r.remove(i);
        }
        r
    }).collect()
}

/// The log's epoch table rows (`! Train …`, `! Validation …`) without the wall time.
fn log_tables(p: &Path) -> Vec<String> {
    read(p)
        .lines()
        .filter(|l| l.starts_with("! Train") || l.starts_with("! Validation") || l.starts_with("! Best model"))
        .map(|l| {
            let mut w: Vec<&str> = l.split_whitespace().collect();
            if !l.starts_with("! Best") {
                w.remove(3);
            }
            w.join(" ")
        })
        .collect()
}

/// Every CSV is well formed: a non-blank header, no blank or cut-off line, equal column counts.
fn assert_valid_csvs(dir: &Path) {
    for f in CSVS {
        let text = read(&dir.join(f));
        if text.is_empty() {
            continue;
        }
        assert!(text.ends_with('\n'), "{f}: last line cut off");
        let lines: Vec<&str> = text.lines().collect();
        let n = lines[0].split(',').count();
        for (i, l) in lines.iter().enumerate() {
            assert!(!l.trim().is_empty(), "{f}: line {} is blank", i + 1);
            assert_eq!(l.split(',').count(), n, "{f}: line {} has another number of columns", i + 1);
        }
    }
}

/// `b` (interrupted and continued) is the same run as `a` (uninterrupted): batch CSVs byte for
/// byte, epoch CSVs and the log's tables but for the wall time, and the final weights bitwise.
fn assert_same_run(a: &Path, b: &Path) {
    assert_valid_csvs(b);
    for f in ["metrics_batch_train.csv", "metrics_batch_val.csv"] {
        assert!(read(&a.join(f)) == read(&b.join(f)), "{f} differs from the uninterrupted run's");
    }
    for f in ["metrics_epoch.csv", "metrics_initialization.csv"] {
        assert_eq!(without_wall(&a.join(f)), without_wall(&b.join(f)), "{f} differs from the uninterrupted run's");
    }
    assert_eq!(log_tables(&a.join("log")), log_tables(&b.join("log")), "the log's epoch tables differ");
    nequip_plugins::link();
    let weights = |d: &Path| {
        let (m, _) = nequip_core::io::model_file::load(&d.join("last_model.safetensors"), Some("cpu")).unwrap();
        m.state_dict().into_iter().map(|t| (t.name, t.tensor)).collect::<Vec<_>>()
    };
    for ((na, ta), (_, tb)) in weights(a).iter().zip(&weights(b)) {
        assert!(ta.equal(tb), "{na} differs from the uninterrupted run's");
    }
}

fn complete_rows(p: &Path) -> usize {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    text.matches('\n').count().saturating_sub(1)
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| is_temp_name(n)).collect()
}

#[test]
fn kill_9_during_training_then_append_resumes_from_the_last_checkpoint() {
    const EPOCHS: usize = 40;
    let whole = root("whole");
    train_ok(&config(whole.path(), EPOCHS));

    let killed = root("killed");
    let cfg = config(killed.path(), EPOCHS);
    let dir = killed.path().join("run");
    let mut child = nequip_train(&cfg).spawn().unwrap();
    let t0 = Instant::now();
    // after the first epoch's checkpoint (the state file is renamed into place)
    while !dir.join(STATE_FILE).is_file() {
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        assert!(child.try_wait().unwrap().is_none(), "nequip train ended before its first checkpoint");
        std::thread::sleep(Duration::from_millis(2));
    }
    // let it get into the next epoch (rows after the checkpoint), then kill -9
    while complete_rows(&dir.join("metrics_batch_train.csv")) < 3 && child.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the run was not killed mid-way ({status}); raise EPOCHS");

    let state = TrainerState::load(&dir.join(STATE_FILE)).unwrap();
    let saved_epoch = state.state.progress.epoch as usize;
    let rows_at_kill = complete_rows(&dir.join("metrics_epoch.csv"));
    assert!(saved_epoch >= 1, "the state file exists only after an epoch");
    assert!(rows_at_kill <= saved_epoch + 1, "{rows_at_kill} epochs done at the kill, but the checkpoint is of epoch {saved_epoch}: more than one epoch lost");
    assert!(saved_epoch < EPOCHS);
    eprintln!("killed with {rows_at_kill} epochs in metrics_epoch.csv, the checkpoint of epoch {saved_epoch}");

    train_ok(&cfg);
    let log = read(&dir.join("log"));
    assert_eq!(log.matches("! Starting training").count(), 1, "started from scratch again:\n{log}");
    assert_eq!(log.matches("! Restarting training").count(), 1, "{log}");
    assert_eq!(complete_rows(&dir.join("metrics_epoch.csv")), EPOCHS);
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    assert_same_run(&whole.path().join("run"), &dir);
}

#[test]
fn a_kill_during_a_checkpoint_write_leaves_nothing_behind_after_the_restart() {
    let whole = root("whole5");
    train_ok(&config(whole.path(), 5));

    let parts = root("parts5");
    let cfg = config(parts.path(), 5);
    let dir = parts.path().join("run");
    // killed between writing epoch 3's trainer state and renaming it into place
    let child = nequip_train(&cfg).env("NEQUIP_RS_KILL_BEFORE_RENAME", format!("{STATE_FILE}:3")).spawn().unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(TrainerState::load(&dir.join(STATE_FILE)).unwrap().state.progress.epoch, 2);
    assert_eq!(temp_files(&dir), vec![format!("trainer_state.tmp{pid}")]);
    assert_eq!(complete_rows(&dir.join("metrics_epoch.csv")), 3, "epoch 3 was written before its checkpoint");
    // and what a kill at other moments leaves: other temp files, a cut-off line, a half log line
    std::fs::write(dir.join("best_model.tmp999999"), b"partial").unwrap();
    std::fs::write(dir.join("config.yaml.tmp999999"), b"root: ").unwrap();
    for f in ["metrics_batch_train.csv", "log"] {
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(dir.join(f)).unwrap().write_all(b"        4,    1,   0.12").unwrap();
    }
    // files that only look alike stay
    for keep in ["notes.tmp", "x.tmp12a", "tmp123"] {
        std::fs::write(dir.join(keep), b"mine").unwrap();
    }

    train_ok(&cfg);
    assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    for keep in ["notes.tmp", "x.tmp12a", "tmp123"] {
        assert_eq!(read(&dir.join(keep)), "mine");
    }
    assert_eq!(complete_rows(&dir.join("metrics_epoch.csv")), 5);
    assert_same_run(&whole.path().join("run"), &dir);
}

#[test]
fn csv_and_log_lines_are_appended_in_place() {
    let d = root("append");
    let mut files = RunFiles::open(d.path(), None, false).unwrap();
    let path = d.path().join("metrics_epoch.csv");
    let inode = std::fs::metadata(&path).unwrap().ino();
    let mut before = Vec::new();
    for e in 1..=5 {
        files.epoch.row(&[("epoch".into(), e as f64), ("wall".into(), 0.5), ("LR".into(), 0.01)]).unwrap();
        let now = std::fs::read(&path).unwrap();
        assert!(now.starts_with(&before), "epoch {e}: earlier bytes rewritten");
        let added = String::from_utf8(now[before.len()..].to_vec()).unwrap();
        let expect = if e == 1 { 2 } else { 1 };
        assert_eq!(added.lines().count(), expect, "epoch {e}: {added:?}");
        assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "the file was replaced, not appended to");
        assert_eq!(files.epoch.len(), e);
        assert_eq!(files.epoch.mark().bytes, now.len() as u64);
        before = now;
    }
    assert_eq!(read(&path).lines().next().unwrap(), "epoch,wall,LR");
    files.log.line("a line").unwrap();
    assert_eq!(read(&d.path().join("log")), "a line\n", "the log is written through at once");
}

#[test]
fn a_restart_cuts_the_files_back_to_the_checkpoint() {
    let d = root("cut");
    let mut files = RunFiles::open(d.path(), None, false).unwrap();
    let row = |e: f64| vec![("epoch".to_string(), e), ("loss".to_string(), 1.0 / e)];
    files.epoch.row(&row(1.0)).unwrap();
    files.log.line("epoch 1").unwrap();
    let marks = files.marks();
    let kept = read(&d.path().join("metrics_epoch.csv"));
    files.epoch.row(&row(2.0)).unwrap();
    files.log.line("epoch 2").unwrap();
    drop(files);
    let mut files = RunFiles::open(d.path(), Some(Some(&marks)), false).unwrap();
    assert_eq!(read(&d.path().join("metrics_epoch.csv")), kept);
    assert_eq!(read(&d.path().join("log")), "epoch 1\n");
    assert_eq!(files.marks(), marks);
    files.epoch.row(&row(2.0)).unwrap();
    assert_eq!(read(&d.path().join("metrics_epoch.csv")).lines().count(), 3, "the header is not written again");
}

#[test]
fn damaged_files_are_clear_errors_or_repaired() {
    let d = root("damaged");
    let p = d.path();
    RunFiles::open(p, None, false).unwrap();
    let csv = p.join("metrics_epoch.csv");
    // a CSV of blank lines (an earlier version's crash) with nothing recorded: emptied, and the
    // next row writes a real header
    std::fs::write(&csv, "\n\n").unwrap();
    let mut files = RunFiles::open(p, Some(Some(&RunFileMarks::default())), false).unwrap();
    files.epoch.row(&[("epoch".into(), 1.0)]).unwrap();
    assert_eq!(read(&csv).lines().next(), Some("epoch"));
    std::fs::write(&csv, "\n").unwrap();
    let c = Csv::resume(csv.clone(), None).unwrap();
    assert!(c.is_empty() && std::fs::metadata(&csv).unwrap().len() == 0);

    // shorter than the checkpoint recorded: rows were lost, which no restart can repair
    std::fs::write(&csv, "epoch\n1\n").unwrap();
    let marks = RunFileMarks { epoch: FileMark { lines: 3, bytes: 10 }, ..Default::default() };
    let e = RunFiles::open(p, Some(Some(&marks)), false).unwrap_err().to_string();
    assert!(e.contains("metrics_epoch.csv") && e.contains("8 bytes") && e.contains("last checkpoint"), "{e}");
    // a blank line, or a cut-off one, inside the part to keep
    std::fs::write(&csv, "epoch\n\n2\n").unwrap();
    let marks = RunFileMarks { epoch: FileMark { lines: 3, bytes: 9 }, ..Default::default() };
    let e = RunFiles::open(p, Some(Some(&marks)), false).unwrap_err().to_string();
    assert!(e.contains("metrics_epoch.csv") && e.contains("line 2 is blank"), "{e}");
    std::fs::write(&csv, "epoch,x\n1,2").unwrap();
    let e = Csv::resume(csv.clone(), None).unwrap_err().to_string();
    assert!(e.contains("metrics_epoch.csv") && e.contains("line 2 is cut off"), "{e}");
    // a damaged state file
    std::fs::write(p.join(STATE_FILE), b"\0\0\0").unwrap();
    let e = TrainerState::load(&p.join(STATE_FILE)).err().unwrap().to_string();
    assert!(e.contains(STATE_FILE) && e.contains("damaged trainer state"), "{e}");
}

#[test]
fn only_temp_files_of_atomic_writes_are_removed() {
    for n in ["trainer_state.tmp12", "best_model.tmp1", "config.yaml.tmp345", "log.tmp9"] {
        assert!(is_temp_name(n), "{n}");
    }
    for n in ["notes.tmp", "x.tmp12a", "tmp123", ".tmp12", "model.safetensors", "a.tmp-1"] {
        assert!(!is_temp_name(n), "{n}");
    }
    let d = root("temps");
    for n in ["last_model.tmp42", "notes.tmp"] {
        std::fs::write(d.path().join(n), b"x").unwrap();
    }
    std::fs::create_dir(d.path().join("dir.tmp7")).unwrap();
    assert_eq!(remove_stale_temps(d.path()).unwrap(), vec!["last_model.tmp42".to_string()]);
    assert!(d.path().join("notes.tmp").is_file() && d.path().join("dir.tmp7").is_dir());
}
