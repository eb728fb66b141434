//! `p2pd config show`: the effective configuration as TOML that could be pasted into a
//! configuration file, each line ending with where its value came from; or as JSON.

use serde_json::{json, Value};

use super::{Effective, Setting, Source};

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env => f.write_str("env"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The text form: a comment naming the file, then one `key = value  # source` line per
/// setting (`# key: not set  # default` for an option without a value).
pub fn text(effective: &Effective) -> String {
    let file = match (&effective.file, effective.file_found) {
        (Some(path), true) => path.display().to_string(),
        (Some(path), false) => format!("{} (not there)", path.display()),
        (None, _) => "none (no home directory)".to_string(),
    };
    let mut out = format!("# p2pd daemon configuration; file: {file}\n");
    let lines: Vec<(String, String)> = effective
        .settings
        .iter()
        .map(|s| {
            let assignment = match toml_value(s) {
                Some(value) => format!("{} = {value}", s.key),
                None => format!("# {}: not set", s.key),
            };
            let source = match &s.source {
                Source::Env => format!("env {}", s.env),
                other => other.to_string(),
            };
            (assignment, source)
        })
        .collect();
    let width = lines.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    for (assignment, source) in lines {
        out.push_str(&format!("{assignment:width$}  # {source}\n"));
    }
    out
}

/// The JSON form: `{"file", "file_found", "settings": [{"key", "value", "source",
/// "env", "file"?, "line"?}]}`; `source` is `flag`, `env`, `file` or `default`.
pub fn json(effective: &Effective) -> Value {
    let settings: Vec<Value> = effective
        .settings
        .iter()
        .map(|s| {
            let mut entry = json!({
                "key": s.key,
                "value": json_value(s),
                "env": s.env,
                "source": match s.source {
                    Source::Flag => "flag",
                    Source::Env => "env",
                    Source::File { .. } => "file",
                    Source::Default => "default",
                },
            });
            if let Source::File { path, line } = &s.source {
                entry["file"] = json!(path);
                entry["line"] = json!(line);
            }
            entry
        })
        .collect();
    json!({
        "file": effective.file,
        "file_found": effective.file_found,
        "settings": settings,
    })
}

/// A decimal integer is written bare, so that the output reads as the file would.
fn is_integer(text: &str) -> bool {
    !text.is_empty() && text.len() < 20 && text.bytes().all(|b| b.is_ascii_digit())
}

fn toml_value(setting: &Setting) -> Option<String> {
    let one = |v: &String| {
        if setting.boolean || is_integer(v) {
            v.clone()
        } else {
            toml_string(v)
        }
    };
    if setting.list {
        let items: Vec<String> = setting.values.iter().map(one).collect();
        return Some(format!("[{}]", items.join(", ")));
    }
    setting.values.first().map(one)
}

fn json_value(setting: &Setting) -> Value {
    let one = |v: &String| {
        if setting.boolean {
            Value::Bool(v == "true")
        } else if is_integer(v) {
            v.parse::<u64>().map(Value::from).unwrap_or(json!(v))
        } else {
            json!(v)
        }
    };
    if setting.list {
        return Value::Array(setting.values.iter().map(one).collect());
    }
    setting.values.first().map(one).unwrap_or(Value::Null)
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Effective {
    /// Logs at start which configuration file the daemon read and which settings were
    /// set, and where (the defaults are left out: `p2pd config show` lists them).
    pub fn log(&self) {
        let file = match (&self.file, self.file_found) {
            (Some(path), true) => path.display().to_string(),
            (Some(path), false) => format!("none ({} is not there)", path.display()),
            (None, _) => "none".to_string(),
        };
        let set: Vec<String> = self
            .settings
            .iter()
            .filter(|s| s.source != Source::Default)
            .map(|s| match &s.source {
                Source::Env => format!("{} (env {})", s.key, s.env),
                other => format!("{} ({other})", s.key),
            })
            .collect();
        tracing::info!(file = %file, set = ?set, "configuration");
    }
}
