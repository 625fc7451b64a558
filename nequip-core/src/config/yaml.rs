//! The one YAML module. Everything that parses or prints YAML goes through here, so the archived
//! `serde_yaml` can be swapped for a maintained fork (`serde_yml`, `serde_norway`, ...) in one place.
//!
//! Mirrors nequip's use of PyYAML's full loader: Python tags that nequip writes or accepts
//! (`!!python/tuple`, `!!python/object/apply:builtins.range`, `!!python/object/new:...TorchVersion`,
//! `!!python/name:...`) are turned into plain values by [`normalize_python_tags`].

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use serde_yaml::{Mapping, Value};

/// A position in a YAML file (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A YAML syntax error with its position.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub message: String,
    pub location: Option<Location>,
}

/// A parsed YAML document: its root value and where each block-style key sits.
#[derive(Debug, Clone)]
pub struct Document {
    pub root: Value,
    /// `a.b.c` → position of the key `c` (block-style keys; flow-style keys map to their parent).
    pub key_locations: HashMap<String, Location>,
}

impl Document {
    /// Position of a dotted key path, falling back to the nearest ancestor that has one.
    pub fn locate(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(l) = self.key_locations.get(p) {
                return Some(*l);
            }
            p = &p[..p.rfind('.')?];
        }
    }
}

/// Parse YAML text. Syntax errors carry line and column.
pub fn parse(text: &str) -> Result<Document, SyntaxError> {
    let retagged = retag_python(text);
    let root: Value = serde_yaml::from_str(&retagged).map_err(|e| SyntaxError {
        message: strip_location_suffix(&e.to_string()),
        location: e.location().map(|l| Location { line: l.line(), column: l.column() }),
    })?;
    Ok(Document { root, key_locations: scan_key_locations(text) })
}

/// serde_yaml treats `!!` (core-schema) tags as type hints and drops unknown ones, which would
/// silently turn `!!python/object/apply:builtins.range [0, 6, 2]` into the list `[0, 6, 2]`.
/// Rewrite `!!python/` as the local tag ` !python/` (same length, so positions stay exact).
fn retag_python(text: &str) -> std::borrow::Cow<'_, str> {
    const TAG: &str = "!!python/";
    if !text.contains(TAG) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(TAG) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let at_token_start = before.chars().next_back().is_none_or(|c| c.is_whitespace() || matches!(c, ':' | '-' | '[' | ',' | '{'));
        out.push_str(if at_token_start { " !python/" } else { TAG });
        rest = &after[TAG.len()..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

fn strip_location_suffix(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Serialize any value into a YAML [`Value`]. Infallible for the plain data used in configs;
/// a value that cannot be represented becomes a string describing the failure.
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Value {
    serde_yaml::to_value(v).unwrap_or_else(|e| Value::String(format!("<unrepresentable: {e}>")))
}

/// Deserialize a [`Value`]; the error message says what was expected and what was found.
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_yaml::from_value(v).map_err(|e| strip_location_suffix(&e.to_string()))
}

/// Deserialize a mapping into `T`, reporting the path of the first offending key.
pub fn from_mapping_with_path<T: DeserializeOwned>(m: Mapping) -> Result<T, (String, String)> {
    let v = Value::Mapping(m);
    serde_path_to_error::deserialize(v).map_err(|e| (e.path().to_string(), strip_location_suffix(&e.inner().to_string())))
}

/// Print a value as YAML.
pub fn to_string<T: Serialize + ?Sized>(v: &T) -> Result<String, String> {
    serde_yaml::to_string(v).map_err(|e| e.to_string())
}

/// Short one-line rendering of a value for messages (`"abc"`, `3`, `[1, 2]`, `{a: 1}`).
pub fn render(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("{s:?}"),
        Value::Sequence(s) => format!("[{}]", s.iter().map(render).collect::<Vec<_>>().join(", ")),
        Value::Mapping(m) => format!(
            "{{{}}}",
            m.iter().map(|(k, v)| format!("{}: {}", key_str(k), render(v))).collect::<Vec<_>>().join(", ")
        ),
        Value::Tagged(t) => format!("{} {}", t.tag, render(&t.value)),
    }
}

/// A mapping key as a string (non-string keys are rendered).
pub fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => render(other),
    }
}

/// The kind of a value, as shown in type errors.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Sequence(_) => "list",
        Value::Mapping(_) => "mapping",
        Value::Tagged(_) => "tagged value",
    }
}

/// Replace the Python tags nequip configs contain by plain YAML values, recursively.
/// Returns an error message for a Python tag we cannot interpret.
pub fn normalize_python_tags(v: Value) -> Result<Value, String> {
    Ok(match v {
        Value::Sequence(s) => Value::Sequence(s.into_iter().map(normalize_python_tags).collect::<Result<_, _>>()?),
        Value::Mapping(m) => {
            let mut out = Mapping::new();
            for (k, v) in m {
                out.insert(k, normalize_python_tags(v)?);
            }
            Value::Mapping(out)
        }
        Value::Tagged(t) => {
            let tag = t.tag.to_string();
            let tag = tag.trim_start_matches('!').trim_start_matches("tag:yaml.org,2002:").trim_start_matches('!');
            let inner = normalize_python_tags(t.value)?;
            if tag == "python/tuple" || tag == "python/list" {
                inner
            } else if tag == "python/object/apply:builtins.range" {
                python_range(&inner)?
            } else if tag.starts_with("python/object/new:") || tag.starts_with("python/object/apply:") {
                // e.g. torch.torch_version.TorchVersion ['2.1.0']: a one-argument constructor of a
                // string-like object; keep the argument.
                match inner {
                    Value::Sequence(s) if s.len() == 1 => s.into_iter().next().unwrap_or(Value::Null),
                    Value::Mapping(m) if m.contains_key("args") => match m.get("args") {
                        Some(Value::Sequence(s)) if s.len() == 1 => s[0].clone(),
                        _ => return Err(format!("unsupported Python object `!!{tag}`")),
                    },
                    other => other,
                }
            } else if let Some(name) = tag.strip_prefix("python/name:") {
                Value::String(name.to_string())
            } else if tag.starts_with("python/") {
                return Err(format!("unsupported Python tag `!!{tag}`"));
            } else {
                inner
            }
        }
        other => other,
    })
}

fn python_range(args: &Value) -> Result<Value, String> {
    let nums: Vec<i64> = match args {
        Value::Sequence(s) => s.iter().map(|x| x.as_i64().ok_or(())).collect::<Result<_, _>>(),
        _ => Err(()),
    }
    .map_err(|_| "`!!python/object/apply:builtins.range` needs [start, stop, step] integers".to_string())?;
    let (start, stop, step) = match nums.as_slice() {
        [stop] => (0, *stop, 1),
        [start, stop] => (*start, *stop, 1),
        [start, stop, step] => (*start, *stop, *step),
        _ => return Err("`!!python/object/apply:builtins.range` takes 1 to 3 integers".into()),
    };
    if step == 0 {
        return Err("`!!python/object/apply:builtins.range` step must not be zero".into());
    }
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(Value::Number(i.into()));
        i += step;
    }
    Ok(Value::Sequence(out))
}

/// Positions of block-style mapping keys, by dotted path. A light scanner over the text (flow
/// collections, multi-line strings and list items are skipped; their keys fall back to the
/// parent key's position). Only used to point at the place of an error.
fn scan_key_locations(text: &str) -> HashMap<String, Location> {
    let mut out = HashMap::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut block_scalar_indent: Option<usize> = None;
    for (lineno, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let line = raw.trim_start_matches(' ');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(bi) = block_scalar_indent {
            if indent > bi {
                continue;
            }
            block_scalar_indent = None;
        }
        if line.starts_with("- ") || line == "-" || line.starts_with("---") || line.starts_with("...") {
            continue;
        }
        let Some((key, rest)) = split_key(line) else { continue };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = stack.iter().map(|(_, k)| k.as_str()).chain(std::iter::once(key.as_str())).collect::<Vec<_>>().join(".");
        out.entry(path).or_insert(Location { line: lineno + 1, column: indent + 1 });
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            block_scalar_indent = Some(indent);
        }
        stack.push((indent, key));
    }
    out
}

/// `key: rest` → (key, rest) for an unquoted or quoted key.
fn split_key(line: &str) -> Option<(String, &str)> {
    if let Some(q) = line.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = line[1..].find(q)? + 1;
        let rest = line[end + 1..].strip_prefix(':')?;
        return (rest.is_empty() || rest.starts_with(' ')).then(|| (line[1..end].to_string(), rest));
    }
    let bytes = line.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'#' | b'{' | b'[' | b'"' | b'\'' => return None,
            b':' if i + 1 == bytes.len() || bytes[i + 1] == b' ' => {
                return Some((line[..i].trim_end().to_string(), &line[i + 1..]));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_of_nested_block_keys() {
        let doc = parse("a: 1\nb:\n  c: 2\n  d:\n    e: x # c\nf: {g: 1}\n").unwrap();
        assert_eq!(doc.locate("a"), Some(Location { line: 1, column: 1 }));
        assert_eq!(doc.locate("b.c"), Some(Location { line: 3, column: 3 }));
        assert_eq!(doc.locate("b.d.e"), Some(Location { line: 5, column: 5 }));
        assert_eq!(doc.locate("f.g"), Some(Location { line: 6, column: 1 }));
    }

    #[test]
    fn python_tags_become_plain_values() {
        let doc = parse("t: !!python/tuple [0.9, 0.999]\nr: !!python/object/apply:builtins.range [0, 10, 3]\nv: !!python/object/new:torch.torch_version.TorchVersion\n- 2.1.0\n").unwrap();
        let v = normalize_python_tags(doc.root).unwrap();
        assert_eq!(render(&v["t"]), "[0.9, 0.999]");
        assert_eq!(render(&v["r"]), "[0, 3, 6, 9]");
        assert_eq!(render(&v["v"]), "\"2.1.0\"");
        let bad = parse("x: !!python/object:foo.Bar {a: 1}\n").unwrap();
        assert!(normalize_python_tags(bad.root).unwrap_err().contains("python/object:foo.Bar"));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        let loc = e.location.expect("location");
        assert!(loc.line >= 2, "{loc}");
    }
}
