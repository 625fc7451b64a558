//! `nequip config check FILE`, `nequip config explain FILE` and `nequip config schema`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use nequip_core::check::{check_config, Report};
use nequip_core::config::{yaml, Config, Origin, Resolution};

#[derive(clap::Subcommand, Debug)]
pub enum ConfigCommand {
    /// Resolve everything resolvable without data; report unknown keys, type errors and
    /// unknown builder names. Exit code 0 only when clean.
    Check {
        file: PathBuf,
        /// Unused keys are warnings instead of errors (nequip's --warn-unused).
        #[arg(long)]
        warn_unused: bool,
    },
    /// Every key with its value, where it came from, and who consumed it under which name.
    Explain {
        file: PathBuf,
        #[arg(long)]
        warn_unused: bool,
    },
    /// A JSON Schema of every registered key (types, defaults, docs) for YAML language servers,
    /// e.g. `# yaml-language-server: $schema=nequip.schema.json` at the top of a config.
    Schema {
        /// Write it to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn load_and_check(file: &PathBuf, warn_unused: bool) -> anyhow::Result<(Config, Report)> {
    let mut config = Config::load(file).with_context(|| format!("loading {}", file.display()))?;
    let report = check_config(&mut config, warn_unused);
    Ok((config, report))
}

fn print_report(report: &Report) {
    for n in &report.notes {
        eprintln!("note: {n}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for e in &report.errors {
        eprintln!("error: {e}");
    }
}

pub fn run(c: ConfigCommand) -> anyhow::Result<ExitCode> {
    match c {
        ConfigCommand::Check { file, warn_unused } => {
            let (_, report) = load_and_check(&file, warn_unused)?;
            print_report(&report);
            if report.is_clean() {
                println!("{}: ok", file.display());
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}: {} error(s)", file.display(), report.errors.len());
                Ok(ExitCode::FAILURE)
            }
        }
        ConfigCommand::Explain { file, warn_unused } => {
            let (config, report) = load_and_check(&file, warn_unused)?;
            explain(&config, &report);
            print_report(&report);
            Ok(if report.is_clean() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        ConfigCommand::Schema { output } => {
            let text = serde_json::to_string_pretty(&nequip_core::config::schema::json_schema())? + "\n";
            match output {
                Some(p) => std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn explain(config: &Config, report: &Report) {
    let usage = config.usage_snapshot();
    println!("# keys of the config");
    for (k, e) in config.entries() {
        println!("{k}: {}", yaml::render(&e.value));
        println!("    from: {}", e.source);
        match usage.get(k) {
            Some(uses) => {
                for u in uses {
                    let status = if u.won { "" } else { " (overridden by a higher-priority key)" };
                    println!("    used by: {} as `{}`{status}", u.component, u.param);
                }
            }
            None if nequip_core::config::defaults::is_accepted_without_consumer(k) => println!("    used by: (accepted; Python-only feature)"),
            None => println!("    used by: nobody"),
        }
    }
    println!();
    println!("# parameters of each component");
    for r in &report.resolutions {
        print_resolution(r, 0);
    }
}

fn print_resolution(r: &Resolution, depth: usize) {
    let pad = "  ".repeat(depth);
    println!("{pad}[{}]", r.component);
    for (k, v) in &r.values {
        let from = match &v.origin {
            Origin::Default => "default".to_string(),
            Origin::Positional => "set by the caller".to_string(),
            Origin::Found { found_as, source: Some(s), .. } => format!("{found_as} ({s})"),
            Origin::Found { found_as, .. } => found_as.clone(),
            Origin::Nested => "nested builder".to_string(),
        };
        println!("{pad}  {k} = {}    <- {from}", yaml::render(&v.value));
    }
    for n in r.nested.values() {
        print_resolution(n, depth + 1);
    }
}
