//! The configuration file: where it is, and its keys with the line each is on. It is
//! TOML, one top-level key per option, named like the option's flag without the dashes
//! (`upload-slots = 4`, `listen = ["/ip4/0.0.0.0/tcp/5891"]`). Values are kept as the
//! text the option's parser reads, so that a file, a flag and an environment variable
//! are checked by the same code.

use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

/// The file's name in the platform configuration directory.
pub const FILE_NAME: &str = "config.toml";

/// A configuration file larger than this is refused: a real one has a few dozen lines.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// A configuration file that was read.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it is.
    pub path: PathBuf,
    entries: Vec<Entry>,
}

/// One key of the file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key, e.g. `upload-slots`.
    pub key: String,
    /// The line it is on, from 1.
    pub line: usize,
    /// Its value as text: one element for a scalar, any number for an array.
    pub values: Vec<String>,
    /// Whether it was written as an array.
    pub is_list: bool,
}

/// The default place of the file: `config.toml` in the platform configuration directory
/// (`~/.config/p2pd` on Linux, `~/Library/Application Support/p2pd` on macOS,
/// `%APPDATA%\p2pd\config` on Windows); `None` without a home directory.
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "p2pd").map(|d| d.config_dir().join(FILE_NAME))
}

impl ConfigFile {
    /// Reads and parses the file at `path`. `Ok(None)` when it does not exist and was not
    /// asked for by name (`required` false: the default place may be empty).
    pub fn load(path: &Path, required: bool) -> Result<Option<ConfigFile>, String> {
        let shown = path.display();
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
            Err(e) => return Err(format!("cannot read the configuration file {shown}: {e}")),
        };
        if !meta.is_file() {
            return Err(format!("the configuration file {shown} is not a file"));
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(format!(
                "the configuration file {shown} is larger than {MAX_FILE_BYTES} bytes"
            ));
        }
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the configuration file {shown}: {e}"))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("the configuration file {shown} is not UTF-8 text"))?;
        let entries =
            parse(&text).map_err(|(line, message)| format!("{shown}:{line}: {message}"))?;
        Ok(Some(ConfigFile {
            path: path.to_path_buf(),
            entries,
        }))
    }

    /// The entry for `key`, if the file sets it.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// Every entry, in the order of the file.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// `path:line`, how an error points into the file.
    pub fn at(&self, line: usize) -> String {
        format!("{}:{line}", self.path.display())
    }

    /// The directory relative paths in the file are taken from.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Parses the text of a configuration file into its entries, in file order; an error
/// is `(line, message)`.
fn parse(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let table = DeTable::parse(text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(span.start));
        (line, format!("not valid TOML: {}", e.message().trim()))
    })?;
    let mut entries = Vec::new();
    for (key, value) in table.get_ref().iter() {
        let line = line_of(key.span().start);
        let key = key.get_ref().to_string();
        let bad = |what: &str| (line, format!("`{key}`: {what}"));
        let (values, is_list) = match value.get_ref() {
            DeValue::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items.iter() {
                    values.push(scalar(item.get_ref()).ok_or_else(|| {
                        bad("a list may hold only strings, numbers and booleans")
                    })?);
                }
                (values, true)
            }
            DeValue::Table(_) => {
                return Err(bad(
                    "sections are not used: write each option as a top-level key",
                ))
            }
            other => (
                vec![scalar(other).ok_or_else(|| bad("expected a string, a number or a boolean"))?],
                false,
            ),
        };
        entries.push(Entry {
            key,
            line,
            values,
            is_list,
        });
    }
    entries.sort_by_key(|e| e.line);
    Ok(entries)
}

/// A string, number or boolean as the text a flag would carry.
fn scalar(value: &DeValue<'_>) -> Option<String> {
    match value {
        DeValue::String(s) => Some(s.to_string()),
        DeValue::Integer(i) => i128::from_str_radix(i.as_str(), i.radix())
            .ok()
            .map(|n| n.to_string()),
        DeValue::Float(f) => Some(f.as_str().to_string()),
        DeValue::Boolean(b) => Some(b.to_string()),
        DeValue::Datetime(_) | DeValue::Array(_) | DeValue::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_come_with_their_lines_and_values_as_text() {
        let text = "# a comment\nupload-slots = 4\n\nlisten = [\n  \"/ip4/127.0.0.1/tcp/1\",\n  \"/ip4/127.0.0.1/tcp/2\",\n]\nno-mdns = true\nmax-connections = 0x10\nrate = 1.5\n";
        let entries = parse(text).unwrap();
        let summary: Vec<(&str, usize, Vec<&str>, bool)> = entries
            .iter()
            .map(|e| {
                let values = e.values.iter().map(String::as_str).collect();
                (e.key.as_str(), e.line, values, e.is_list)
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("upload-slots", 2, vec!["4"], false),
                (
                    "listen",
                    4,
                    vec!["/ip4/127.0.0.1/tcp/1", "/ip4/127.0.0.1/tcp/2"],
                    true
                ),
                ("no-mdns", 8, vec!["true"], false),
                ("max-connections", 9, vec!["16"], false),
                ("rate", 10, vec!["1.5"], false),
            ]
        );
    }

    #[test]
    fn syntax_errors_sections_and_dates_name_their_line() {
        assert_eq!(parse("a = 1\nb = = 2\n").unwrap_err().0, 2);
        assert_eq!(parse("a = 1\na = 2\n").unwrap_err().0, 2);
        let (line, message) = parse("a = 1\n[relay]\nmax = 3\n").unwrap_err();
        assert_eq!(line, 2, "{message}");
        assert!(message.contains("`relay`"), "{message}");
        let (line, message) = parse("\nwhen = 1979-05-27\n").unwrap_err();
        assert_eq!((line, message.contains("`when`")), (2, true), "{message}");
        let (line, _) = parse("list = [1, [2]]\n").unwrap_err();
        assert_eq!(line, 1);
    }

    #[test]
    fn a_missing_file_is_an_error_only_when_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        assert!(ConfigFile::load(&path, false).unwrap().is_none());
        let e = ConfigFile::load(&path, true).unwrap_err();
        assert!(e.contains("config.toml"), "{e}");
        std::fs::write(&path, "x = \"y\"\n").unwrap();
        let file = ConfigFile::load(&path, true).unwrap().unwrap();
        assert_eq!(file.get("x").unwrap().values, vec!["y".to_string()]);
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(ConfigFile::load(&path, true).unwrap_err().contains("UTF-8"));
    }
}
