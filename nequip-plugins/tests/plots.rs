//! Seeing a run: `nequip train` writes the learning curves, `nequip plot` redraws them (also
//! from a file a running training is writing), `nequip evaluate --plots` draws parity plots and
//! force-error histograms (and `nequip plot` redraws them from its `evaluation.csv`), `nequip
//! report` writes one self-contained page that headless Chromium renders without console
//! messages (it installs Debian's `chromium` when missing), and bad input is a clear error.
//! The figures are checked by their contents: polylines and their points, texts, pixels.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nequip_core::config::Config;
use nequip_core::train::{trainer_from_config, SetupOptions, Silent};
use nequip_plugins::plot::evaluation::{Evaluation, Point, Target};
use nequip_plugins::plot::figure::{count, tick};

fn nequip(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nequip")).args(args).output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The error of a failed command: non-zero exit, no panic; returns stderr.
fn fails(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "expected a failure, got success:\n{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn root(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("nequip-plots-{tag}-")).tempdir().unwrap()
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data").join(name).display().to_string()
}

/// A tiny model's training config (toluene, or Cu with stress) into `root/run`.
fn config(root: &Path, epochs: usize, stress: bool) -> PathBuf {
    let (ds, builders, species, loss) = if stress {
        (format!("dataset: ase\ndataset_file_name: {}\n", data("cu_emt.extxyz")), "[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, StressForceOutput, RescaleEnergyEtc]", "[Cu]", "{forces: 1.0, stress: 1.0}")
    } else {
        (format!("dataset: npz\ndataset_file_name: {}\nkey_mapping: {{z: atomic_numbers, E: total_energy, F: forces, R: pos}}\nnpz_fixed_field_keys: [atomic_numbers]\n", data("toluene_xtb.npz")), "[SimpleIrrepsConfig, EnergyModel, PerSpeciesRescale, ForceOutput, RescaleEnergyEtc]", "[H, C]", "{forces: 1.0, total_energy: [1.0, PerAtomMSELoss]}")
    };
    let text = format!(
        "root: {}\nrun_name: run\nseed: 1\ndevice: cpu\nmodel_dtype: float64\nmodel_builders: {builders}\nr_max: 4.0\nnum_basis: 4\nl_max: 1\nparity: true\nnum_features: 4\nnum_layers: 1\n{ds}chemical_symbols: {species}\nn_train: 6\nn_val: 3\nbatch_size: 3\nmax_epochs: {epochs}\nlearning_rate: 0.02\nlr_scheduler_name: ReduceLROnPlateau\nlr_scheduler_patience: 0\nlr_scheduler_factor: 0.5\nloss_coeffs: {loss}\n",
        root.display()
    );
    let p = root.join("t.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Train in-process (as the evaluate tests do); returns the run directory.
fn train(root: &Path, epochs: usize, stress: bool) -> PathBuf {
    nequip_plugins::link();
    let cfg = config(root, epochs, stress);
    let mut t = trainer_from_config(Config::load(&cfg).unwrap(), &SetupOptions::default()).unwrap();
    t.train(&mut Silent).unwrap();
    root.join("run")
}

/// Width, height and RGB(A) pixels of a PNG.
fn png(bytes: &[u8]) -> (u32, u32, usize, Vec<u8>) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut r = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf.truncate(info.buffer_size());
    (info.width, info.height, channels, buf)
}

/// Pixels of rows `y0..y1` that are dark (text, lines).
fn dark_pixels(img: &(u32, u32, usize, Vec<u8>), y0: u32, y1: u32) -> usize {
    let (w, _, c, px) = img;
    let row = *w as usize * c;
    px[y0 as usize * row..y1 as usize * row].chunks(*c).filter(|p| p[..3].iter().all(|&v| v < 110)).count()
}

/// The number of points of every `<polyline>` of an SVG.
fn polylines(svg: &str) -> Vec<usize> {
    svg.split("<polyline").skip(1).map(|p| {
        let pts = p.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        pts.split_whitespace().count()
    }).collect()
}

/// The texts of an SVG, unescaped.
fn texts(svg: &str) -> Vec<String> {
    svg.split("<text").skip(1).map(|t| {
        let body = t.split_once('>').unwrap().1.split("</text>").next().unwrap();
        body.trim().replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'").replace("&amp;", "&")
    }).collect()
}

fn has_text(svg: &str, t: &str) -> bool {
    texts(svg).iter().any(|x| x == t)
}

/// Header and rows of a CSV (cells trimmed).
fn csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines().map(|l| l.split(',').map(|c| c.trim().to_string()).collect::<Vec<_>>());
    (lines.next().unwrap(), lines.collect())
}

#[test]
fn train_writes_learning_curves_and_plot_redraws_them() {
    let r_dir = root("lc");
    let r = r_dir.path();
    let cfg = config(r, 4, false);
    let stdout = ok(&nequip(&["train", cfg.to_str().unwrap()]));
    let run = r.join("run");
    assert!(stdout.contains(&format!("learning curves: {}", run.join("learning_curves.png").display())), "{stdout}");

    // what the curves must show, from the CSV itself
    let (header, rows) = csv(&run.join("metrics_epoch.csv"));
    assert_eq!(rows.len(), 4);
    let col = |name: &str| -> Vec<f64> {
        let i = header.iter().position(|h| h == name).unwrap();
        rows.iter().map(|r| r[i].parse().unwrap()).collect()
    };
    let val = col("validation_loss");
    let best = (0..4).fold(0, |b, i| if val[i] < val[b] { i } else { b }) + 1;
    let metrics: Vec<&str> = header.iter().filter_map(|h| h.strip_prefix("training_")).collect();
    assert!(metrics.contains(&"loss_f") && metrics.contains(&"loss_e") && metrics.contains(&"f_mae"), "{metrics:?}");
    assert!(col("LR").windows(2).any(|w| w[1] < w[0]), "the scheduler should have lowered the LR");

    let svg = std::fs::read_to_string(run.join("learning_curves.svg")).unwrap();
    // a polyline per curve with a point per epoch: training + validation of every metric, the LR
    let per_epoch = polylines(&svg).iter().filter(|&&n| n == 4).count();
    assert_eq!(per_epoch, 2 * metrics.len() + 1, "{:?}", polylines(&svg));
    for label in ["loss (normalised units)", "learning rate", "epoch", "f_mae: force MAE (eV/Å)", "f_rmse: force RMSE (eV/Å)", "loss_f (normalised units)", "training", "validation"] {
        assert!(has_text(&svg, label), "no `{label}` in {:?}", texts(&svg));
    }
    let e_label = texts(&svg).into_iter().find(|t| t.starts_with("e/N_mae:") || t.starts_with("e_mae:")).unwrap();
    assert!(e_label.contains("energy") && e_label.contains("(eV"), "{e_label}");
    let best_text = format!("best epoch {best} (validation_loss {})", tick(val[best - 1]));
    assert_eq!(texts(&svg).iter().filter(|t| **t == best_text).count(), metrics.len(), "one marker per panel: {best_text}");
    assert!(has_text(&svg, "run: learning curves, 4 epochs (to epoch 4)"));

    // the PNG: a grid of 2 columns, text rendered (the title row is text only)
    let img = png(&std::fs::read(run.join("learning_curves.png")).unwrap());
    assert_eq!((img.0, img.1), (1280, 40 + 400 * metrics.len().div_ceil(2) as u32));
    assert!(dark_pixels(&img, 0, 40) > 300, "the title was not drawn: {} dark pixels", dark_pixels(&img, 0, 40));
    assert!(dark_pixels(&img, 40, img.1) > 5000);

    // `nequip plot` draws the same figure elsewhere
    let out = r.join("again");
    let s = ok(&nequip(&["plot", run.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    assert!(s.contains("learning curves ->"), "{s}");
    assert_eq!(std::fs::read_to_string(out.join("learning_curves.svg")).unwrap(), svg);
    assert_eq!(std::fs::read(out.join("learning_curves.png")).unwrap(), std::fs::read(run.join("learning_curves.png")).unwrap());

    // while a run is going: the file may end in an unfinished line; the epochs so far are drawn
    let going = r.join("going");
    std::fs::create_dir(&going).unwrap();
    let text = std::fs::read_to_string(run.join("metrics_epoch.csv")).unwrap();
    let cut = text.trim_end().rfind('\n').unwrap() + 10;
    std::fs::write(going.join("metrics_epoch.csv"), &text[..cut]).unwrap();
    ok(&nequip(&["plot", going.join("metrics_epoch.csv").to_str().unwrap()]));
    let svg3 = std::fs::read_to_string(going.join("learning_curves.svg")).unwrap();
    assert_eq!(polylines(&svg3).iter().filter(|&&n| n == 3).count(), 2 * metrics.len() + 1);

    // --no-plots: none
    let r2 = root("noplot");
    let cfg2 = config(r2.path(), 1, false);
    let s = ok(&nequip(&["train", cfg2.to_str().unwrap(), "--no-plots"]));
    assert!(!s.contains("learning curves"), "{s}");
    assert!(r2.path().join("run/metrics_epoch.csv").exists() && !r2.path().join("run/learning_curves.png").exists());
}

#[test]
fn evaluate_plots_parity_and_force_errors_and_plot_redraws_them() {
    let r_dir = root("eval");
    let r = r_dir.path();
    let run = train(r, 1, false);
    let ev = r.join("ev");
    let stdout = ok(&nequip(&["evaluate", "--train-dir", run.to_str().unwrap(), "--plots", ev.to_str().unwrap(), "--device", "cpu"]));
    let metric = |name: &str| -> f64 { stdout.lines().find(|l| l.trim_start().starts_with(&format!("{name} ="))).unwrap().split('=').nth(1).unwrap().trim().parse().unwrap() };

    // the points: every test frame's energy per atom and every force component, with species
    let (header, rows) = csv(&ev.join("evaluation.csv"));
    assert_eq!(header.join(","), "target,frame,atom,type,species,component,label,prediction");
    let of = |t: &str| rows.iter().filter(|r| r[0] == t).collect::<Vec<_>>();
    let (energies, forces) = (of("energy_per_atom"), of("forces"));
    assert_eq!((energies.len(), forces.len(), of("stress").len()), (991, 991 * 15 * 3, 0));
    let err = |r: &&Vec<String>| r[7].parse::<f64>().unwrap() - r[6].parse::<f64>().unwrap();
    let f_mae = forces.iter().map(|r| err(r).abs()).sum::<f64>() / forces.len() as f64;
    let f_rmse = (forces.iter().map(|r| err(r).powi(2)).sum::<f64>() / forces.len() as f64).sqrt();
    assert!((f_mae - metric("f_mae")).abs() < 1e-5 && (f_rmse - metric("f_rmse")).abs() < 1e-5, "{f_mae} {f_rmse}\n{stdout}");
    let h = forces.iter().filter(|r| r[4] == "H" && r[3] == "0").count();
    let c = forces.iter().filter(|r| r[4] == "C" && r[3] == "1").count();
    assert_eq!((h, c), (991 * 8 * 3, 991 * 7 * 3));

    // forces: 44,595 points -> density view, with the count and MAE/RMSE stated
    let svg = std::fs::read_to_string(ev.join("parity_forces.svg")).unwrap();
    assert!(has_text(&svg, "forces: 44,595 components (991 frames), density in 100×100 bins"), "{:?}", texts(&svg));
    assert!(has_text(&svg, &format!("MAE {} eV/Å, RMSE {} eV/Å", tick(f_mae), tick(f_rmse))), "{:?}", texts(&svg));
    assert!(has_text(&svg, "label: force (eV/Å)") && has_text(&svg, "prediction: force (eV/Å)") && has_text(&svg, "points per bin (log scale)"));
    let rects = svg.matches("<rect").count();
    assert!(rects > 100 && rects < 100 * 100 + 200, "{rects} rects");
    assert_eq!(svg.matches("<circle").count(), 0);
    // energy per atom: 991 points -> one dot each (+ the legend's)
    let svg_e = std::fs::read_to_string(ev.join("parity_energy_per_atom.svg")).unwrap();
    assert_eq!(svg_e.matches("<circle").count(), 991 + 1);
    assert!(has_text(&svg_e, "energy_per_atom: 991 frames") && has_text(&svg_e, "label: energy per atom (eV/atom)"), "{:?}", texts(&svg_e));
    // force errors per species
    let svg_h = std::fs::read_to_string(ev.join("force_errors_per_species.svg")).unwrap();
    assert!(has_text(&svg_h, "H: 23,784 force components") && has_text(&svg_h, "C: 20,811 force components"), "{:?}", texts(&svg_h));
    assert_eq!(texts(&svg_h).iter().filter(|t| *t == "force error, prediction − label (eV/Å)").count(), 2);
    for name in ["parity_forces", "parity_energy_per_atom", "force_errors_per_species"] {
        let img = png(&std::fs::read(ev.join(format!("{name}.png"))).unwrap());
        assert!(dark_pixels(&img, 0, img.1) > 2000, "{name}.png looks empty");
    }
    assert!(!ev.join("parity_stress.png").exists());

    // `nequip plot` on the evaluation output draws the same figures
    let again = r.join("again");
    ok(&nequip(&["plot", ev.to_str().unwrap(), "-o", again.to_str().unwrap()]));
    for name in ["parity_forces", "parity_energy_per_atom", "force_errors_per_species"] {
        assert_eq!(std::fs::read_to_string(again.join(format!("{name}.svg"))).unwrap(), std::fs::read_to_string(ev.join(format!("{name}.svg"))).unwrap(), "{name}");
    }
    assert!(!again.join("learning_curves.svg").exists());
}

#[test]
fn evaluate_plots_stress_of_a_periodic_model() {
    let r_dir = root("stress");
    let r = r_dir.path();
    let run = train(r, 1, true);
    let idx = r.join("idx.json");
    std::fs::write(&idx, "[100, 200, 300, 400, 500, 600, 700, 800, 900, 999]").unwrap();
    let ev = r.join("ev");
    ok(&nequip(&["evaluate", "--model", run.join("best_model.safetensors").to_str().unwrap(), "--dataset-config", r.join("t.yaml").to_str().unwrap(), "--test-indexes", idx.to_str().unwrap(), "--plots", ev.to_str().unwrap(), "--device", "cpu", "--energy-unit", "kcal/mol"]));
    let svg = std::fs::read_to_string(ev.join("parity_stress.svg")).unwrap();
    assert!(has_text(&svg, "stress: 90 components (10 frames)"), "{:?}", texts(&svg));
    assert!(has_text(&svg, "label: stress (kcal/mol/Å³)"), "{:?}", texts(&svg));
    assert_eq!(svg.matches("<circle").count(), 90 + 1);
    let svg_f = std::fs::read_to_string(ev.join("parity_forces.svg")).unwrap();
    assert!(has_text(&svg_f, "forces: 960 components (10 frames)"), "{:?}", texts(&svg_f));
    let svg_h = std::fs::read_to_string(ev.join("force_errors_per_species.svg")).unwrap();
    assert!(has_text(&svg_h, "Cu: 960 force components"));
}

#[test]
fn many_points_are_drawn_as_a_density_of_bounded_size() {
    // 150,000 force components (a large evaluation): the SVG stays small, the count is stated
    let mut ev = Evaluation::new(vec!["H".into(), "O".into()]);
    let mut s = 1u64;
    let mut rnd = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let points: Vec<Point> = (0..150_000).map(|i| {
        let label = 4.0 * rnd();
        Point { frame: i / 300, atom: Some(i / 3 % 100), species: Some(i / 3 % 2), component: i % 3, label, prediction: label + 0.1 * rnd() }
    }).collect();
    let csv_text = std::iter::once("target,frame,atom,type,species,component,label,prediction".to_string())
        .chain(points.iter().map(|p| format!("forces,{},{},{},{},{},{:e},{:e}", p.frame, p.atom.unwrap(), p.species.unwrap(), ev.species[p.species.unwrap()], ["x", "y", "z"][p.component], p.label, p.prediction)))
        .collect::<Vec<_>>()
        .join("\n");
    ev = Evaluation::parse(&csv_text, Path::new("big.csv")).unwrap();
    assert_eq!(ev.points(Target::Forces).len(), 150_000);
    let figs = nequip_plugins::plot::parity::evaluation_figures(&ev, &Default::default()).unwrap();
    let forces = figs.iter().find(|f| f.name == "parity_forces").unwrap();
    assert!(has_text(&forces.svg, &format!("forces: {} components (500 frames), density in 100×100 bins", count(150_000))));
    assert!(forces.svg.len() < 2_000_000, "{} bytes", forces.svg.len());
    let hist = figs.iter().find(|f| f.name == "force_errors_per_species").unwrap();
    assert!(has_text(&hist.svg, "H: 75,000 force components") && has_text(&hist.svg, "O: 75,000 force components"));
}

/// Debian's chromium, installed when missing (as root: apt-get update, then install).
fn chromium() -> PathBuf {
    let found = || ["chromium", "chromium-browser"].iter().map(PathBuf::from).find(|c| Command::new(c).arg("--version").output().map(|o| o.status.success()).unwrap_or(false));
    if let Some(c) = found() {
        return c;
    }
    let apt = |args: &[&str]| Command::new("apt-get").args(args).env("DEBIAN_FRONTEND", "noninteractive").status().map(|s| s.success()).unwrap_or(false);
    assert!(apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "chromium"]), "headless Chromium is needed for this test: `apt-get install chromium` failed (run as root on Debian, or install it first)");
    found().expect("chromium installed but not runnable")
}

/// Screenshot `page` with headless Chromium; returns the console messages it logged.
fn screenshot(page: &Path, shot: &Path) -> Vec<String> {
    let profile = root("chromium-profile");
    let o = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,5200", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(str::to_string).collect()
}

#[test]
fn report_is_one_self_contained_page_that_chromium_renders() {
    let r_dir = root("report");
    let r = r_dir.path();
    let run = train(r, 3, false);
    let page = r.join("report.html");
    let s = ok(&nequip(&["report", run.to_str().unwrap(), "-o", page.to_str().unwrap(), "--device", "cpu"]));
    assert!(s.contains(&format!("report -> {}", page.display())), "{s}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    // self-contained: images are data URIs, nothing points outside, no scripts
    assert!(html.contains("content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\""));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "external reference or script in the page");
    let imgs: Vec<&str> = html.split("<figure id=\"fig-").skip(1).map(|f| f.split('"').next().unwrap()).collect();
    assert_eq!(imgs, ["learning_curves", "parity_energy_per_atom", "parity_forces", "force_errors_per_species", "epoch_time"]);
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 5);
    // the embedded learning curves are the PNG `nequip plot` draws
    use base64::Engine as _;
    let b64 = html.split("src=\"data:image/png;base64,").nth(1).unwrap().split('"').next().unwrap();
    let embedded = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    ok(&nequip(&["plot", run.to_str().unwrap(), "-o", r.join("p").to_str().unwrap()]));
    assert_eq!(embedded, std::fs::read(r.join("p/learning_curves.png")).unwrap());
    // sections and contents
    for h in ["Summary", "Learning curves", "Test set", "Time per epoch", "Dataset", "Configuration"] {
        assert!(html.contains(&format!("\">{h}</h2>")), "no section {h}");
    }
    assert!(html.contains("the 991 frames not used for training or validation"));
    assert!(html.contains("<tr><td>f_mae</td><td class=\"num\">") && html.contains("<td>eV/Å</td>"));
    let n_params = nequip_core::io::model_file::read(&run.join("best_model.safetensors")).unwrap().metadata["n_parameters"].clone();
    assert!(html.contains(&format!("<tr><td>parameters</td><td>{}</td></tr>", count(n_params.parse().unwrap()))), "parameters {n_params}");
    assert!(html.contains("<tr><td>epochs in metrics_epoch.csv</td><td>3 (last: epoch 3)</td></tr>"));
    assert!(html.contains("<tr><td>epochs</td><td class=\"num\">3</td></tr>"), "timing table");
    let dataset = html.split("id=\"dataset\"").nth(1).unwrap().split("id=\"config\"").next().unwrap();
    assert!(dataset.lines().any(|l| l.starts_with("frames ") && l.trim_end().ends_with(" 1000")) && dataset.contains("species"), "dataset summary: {dataset}");
    assert!(html.contains("r_max: 4.0") && html.contains("run_name: run"), "config missing");

    // headless Chromium renders it without a console message; a page that breaks the policy logs one
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report_screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let console = screenshot(&page, &shot);
    assert!(console.is_empty(), "console messages: {console:#?}");
    let img = png(&std::fs::read(&shot).unwrap());
    assert_eq!((img.0, img.1), (1400, 5200));
    assert!(dark_pixels(&img, 0, 1000) > 5000, "the screenshot looks empty");
    let bad = r.join("bad.html");
    std::fs::write(&bad, html.replacen("<body>", "<body><img src=\"http://example.invalid/x.png\">", 1)).unwrap();
    assert_eq!(screenshot(&bad, &r.join("bad.png")).len(), 1, "the console check does not see a blocked resource");

    // the test set from an evaluate output, or left out
    let ev = r.join("ev");
    ok(&nequip(&["evaluate", "--train-dir", run.to_str().unwrap(), "--plots", ev.to_str().unwrap(), "--device", "cpu"]));
    ok(&nequip(&["report", run.to_str().unwrap(), "-o", r.join("r2.html").to_str().unwrap(), "--evaluation", ev.to_str().unwrap()]));
    let html2 = std::fs::read_to_string(r.join("r2.html")).unwrap();
    assert!(html2.contains("991 frames evaluated by `nequip evaluate --plots`") && html2.contains("<tr><td>f_mae</td>"));
    ok(&nequip(&["report", run.to_str().unwrap(), "--no-test"]));
    let html3 = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html3.contains("Left out") && html3.matches("data:image/png").count() == 2);
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let r_dir = root("bad");
    let r = r_dir.path();
    let listing = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
        v.sort();
        v
    };
    // a run directory without metrics
    let empty = r.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let e = fails(&nequip(&["plot", empty.to_str().unwrap()]));
    assert!(e.contains("empty: nothing to plot: no metrics_epoch.csv") && e.contains("no evaluation.csv"), "{e}");
    let e = fails(&nequip(&["report", empty.to_str().unwrap()]));
    assert!(e.contains("no metrics_epoch.csv"), "{e}");
    assert!(listing(&empty).is_empty());
    let e = fails(&nequip(&["plot", r.join("nowhere").to_str().unwrap()]));
    assert!(e.contains("nowhere: no such file or directory"), "{e}");

    let cases = [
        ("", "metrics_epoch.csv: the file is empty"),
        ("name,value\nf_mae,0.1\n", "metrics_epoch.csv: not a metrics_epoch.csv: no `epoch` column (columns: name, value)"),
        ("epoch,wall,LR\n1,0.5,0.01\n", "no `training_*` or `validation_*` column"),
        ("epoch,wall,LR,training_loss\n", "metrics_epoch.csv: no epochs yet"),
        ("epoch,wall,LR,training_loss\n1,0.5,0.01,abc\n", "metrics_epoch.csv: line 2, column `training_loss`: `abc` is not a number"),
    ];
    for (i, (text, msg)) in cases.iter().enumerate() {
        let d = r.join(format!("case{i}"));
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join("metrics_epoch.csv"), text).unwrap();
        let e = fails(&nequip(&["plot", d.to_str().unwrap()]));
        assert!(e.contains(msg), "case {i}: {e}");
        let e = fails(&nequip(&["report", d.to_str().unwrap()]));
        assert!(e.contains(msg), "report, case {i}: {e}");
        assert_eq!(listing(&d), ["metrics_epoch.csv"], "case {i} wrote something");
    }
    // a foreign evaluation file
    let d = r.join("ev");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("evaluation.csv"), "target,frame,atom,type,species,component,label,prediction\nforces,0,0,0,H,w,1,2\n").unwrap();
    let e = fails(&nequip(&["plot", d.to_str().unwrap()]));
    assert!(e.contains("evaluation.csv: line 2, column `component`: `w` is not a component of forces (x, y, z)"), "{e}");
    let e = fails(&nequip(&["report", r.join("case4").to_str().unwrap(), "--evaluation", d.to_str().unwrap()]));
    assert!(e.contains("line 2, column `training_loss`"), "{e}");
    assert_eq!(listing(&d), ["evaluation.csv"]);
}
