//! How a refused command line is told: clap's own message for usage errors, and one
//! line naming where a bad value or an unknown key was written.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::{env_name, is_setting, ConfigFile};

/// Why the command line was not accepted.
#[derive(Debug)]
pub enum Refusal {
    /// Clap's own answer: usage errors, and `--help` and `--version` (printed as clap
    /// prints them).
    Clap(clap::Error),
    /// A bad value or key, in one line (exit code 2).
    Usage(String),
}

/// Turns clap's error about a bad value into one line naming where the value was
/// written: the flag, the environment variable, or the file and line. Other errors
/// (usage, `--help`) stay clap's.
pub(super) fn one_line(
    err: clap::Error,
    argv: &[OsString],
    from_file: &HashMap<String, usize>,
    file: Option<&ConfigFile>,
) -> Refusal {
    if !matches!(
        err.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return Refusal::Clap(err);
    }
    let text = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    let value = text(ContextKind::InvalidValue);
    let shown_arg = text(ContextKind::InvalidArg);
    // Shown as `--upload-slots <N>` or `--no-mdns[=<BOOL>]`.
    let flag_name: String = shown_arg
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let key = flag_name.trim_start_matches('-').to_string();
    let reason = reason(&err);
    let on_command_line = argv.iter().any(|a| {
        let a = a.to_string_lossy();
        a == flag_name || a.starts_with(&format!("{flag_name}="))
    });
    let message = match (from_file.get(&key), file) {
        (Some(line), Some(file)) if !on_command_line => format!(
            "{}: invalid value \"{value}\" for {key}: {reason}",
            file.at(*line)
        ),
        _ if on_command_line || key.is_empty() => {
            format!("invalid value \"{value}\" for {flag_name}: {reason}")
        }
        _ => format!("invalid value \"{value}\" for {}: {reason}", env_name(&key)),
    };
    Refusal::Usage(message)
}

/// What was wrong with a value, from clap's error: the value parser's own message, or
/// the values allowed.
fn reason(err: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(err) {
        return source.to_string();
    }
    if let Some(ContextValue::Strings(valid)) = err.get(ContextKind::ValidValue) {
        return format!("expected one of {}", valid.join(", "));
    }
    let rendered = err.to_string();
    rendered
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_string()
}

/// ` (did you mean "upload-slots"?)` for a key one or two edits away from a real one.
pub(super) fn suggestion(command: &clap::Command, key: &str) -> String {
    let best = command
        .get_arguments()
        .filter(|arg| is_setting(arg))
        .filter_map(|arg| arg.get_long())
        .map(|long| (edit_distance(key, long), long))
        .min();
    match best {
        Some((distance, long)) if distance <= 2 => format!(" (did you mean \"{long}\"?)"),
        _ => " (each key is the name of a flag of `p2pd daemon --help`)".to_string(),
    }
}

/// Levenshtein distance, for short keys.
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}
