//! `nequip list [KIND] [--verbose] [--json]`: everything registered, sorted.

use std::process::ExitCode;

use nequip_core::registry::{self, Kind, ModelBuilderFactory, Registration};
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct ListArgs {
    /// Only this kind: model_builder, dataset, nn_module, loss, metric, optimizer, lr_scheduler.
    pub kind: Option<String>,
    /// Show every key with its type, default and doc.
    #[arg(short, long)]
    pub verbose: bool,
    /// One JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct KeyJson {
    name: &'static str,
    #[serde(rename = "type")]
    ty: &'static str,
    required: bool,
    default: Option<serde_json::Value>,
    doc: &'static str,
    nested: Option<Kind>,
}

#[derive(Serialize)]
struct ItemJson {
    kind: Kind,
    name: &'static str,
    aliases: &'static [&'static str],
    #[serde(rename = "crate")]
    krate: &'static str,
    source: String,
    summary: &'static str,
    doc: &'static str,
    prefixes: Vec<String>,
    keys: Vec<KeyJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    injects: Option<Vec<&'static str>>,
}

fn item_json(r: &Registration) -> ItemJson {
    ItemJson {
        kind: r.kind,
        name: r.name,
        aliases: r.aliases,
        krate: r.krate,
        source: format!("{}:{}", r.file, r.line),
        summary: r.summary(),
        doc: r.doc,
        prefixes: prefixes(r),
        keys: r
            .keys
            .iter()
            .map(|k| KeyJson {
                name: k.name,
                ty: k.ty,
                required: k.is_required(),
                default: k.default.map(|d| serde_json::to_value(d()).unwrap_or(serde_json::Value::Null)),
                doc: k.doc,
                nested: k.nested,
            })
            .collect(),
        injects: r.factory.downcast_ref::<ModelBuilderFactory>().map(|f| f.params.iter().map(|p| p.as_str()).collect()),
    }
}

fn prefixes(r: &Registration) -> Vec<String> {
    let mut p = Vec::new();
    if r.class_prefix {
        p.push(r.name.to_string());
    }
    p.extend(r.prefix.map(str::to_string));
    p
}

pub fn run(a: ListArgs) -> anyhow::Result<ExitCode> {
    let kind = match &a.kind {
        Some(k) => Some(Kind::parse(k).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            anyhow::anyhow!("unknown kind `{k}`; expected one of: {}", names.join(", "))
        })?),
        None => None,
    };
    let items: Vec<&Registration> = registry::all().into_iter().filter(|r| kind.is_none_or(|k| r.kind == k)).collect();
    if a.json {
        let json = serde_json::json!({ "items": items.iter().map(|r| item_json(r)).collect::<Vec<_>>() });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    let width = items.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for k in Kind::ALL {
        let of_kind: Vec<&&Registration> = items.iter().filter(|r| r.kind == k).collect();
        if of_kind.is_empty() {
            continue;
        }
        println!("{k}:");
        for r in of_kind {
            let alias = if r.aliases.is_empty() { String::new() } else { format!(" (aliases: {})", r.aliases.join(", ")) };
            println!("  {:width$}  [{}] {}{alias}", r.name, r.krate, r.summary());
            if a.verbose {
                let p = prefixes(r);
                if !p.is_empty() {
                    println!("      key prefixes: {}", p.join(", "));
                }
                for key in r.keys {
                    let doc = key.doc.lines().next().unwrap_or("");
                    let nested = key.nested.map(|n| format!(" (names a {n})")).unwrap_or_default();
                    println!("      {}: {} = {}{nested}  {doc}", key.name, key.ty, key.default_display());
                }
                println!("      defined at {}", r.source());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
