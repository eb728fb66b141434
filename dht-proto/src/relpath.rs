//! Relative paths inside a shared directory, validated so that no name from a peer can
//! reach outside the directory it is written under.
//!
//! The same rules hold on both sides: `add` refuses (or skips) a name that breaks them,
//! and a fetcher refuses a manifest that holds one. A component is refused when it is
//! empty, `.` or `..`; holds `/`, `\` or any control character (NUL, newline, escape,
//! C1 controls); or is longer than [`MAX_COMPONENT_LEN`] bytes. A path is refused when
//! it has no component, more than [`MAX_DEPTH`], or more than [`MAX_PATH_LEN`] bytes.
//!
//! Windows-reserved names (`CON`, `aux.c`, `NUL.txt`, names ending in a dot or space,
//! names with `<>:"|?*`) are valid POSIX names and are *accepted* in a manifest, so
//! that a tree made on Linux (a C project with `aux.c`) can be shared. The platform
//! check is [`RelPath::local_path`]: on Windows it refuses them, and on every platform
//! it refuses a component the standard library would not read as one plain name.
//!
//! These rules refuse; [`names::sanitize_file_name`](crate::names::sanitize_file_name)
//! repairs. A single file's name from a peer is a hint and is repaired; a directory
//! manifest's paths are content named by its CID and are refused whole if one is bad.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};

use unicode_normalization::UnicodeNormalization;

/// The longest path component, in bytes (Linux's `NAME_MAX`).
pub const MAX_COMPONENT_LEN: usize = 255;
/// The most components in a path.
pub const MAX_DEPTH: usize = 32;
/// The longest path, in bytes, its components joined with `/`.
pub const MAX_PATH_LEN: usize = 2048;

/// Why a name or path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A path with no component.
    #[error("empty path")]
    EmptyPath,
    /// An empty component (`a//b`).
    #[error("empty name")]
    Empty,
    /// `.` or `..`.
    #[error("name {0:?} is not allowed")]
    Dots(String),
    /// A component with `/` or `\`.
    #[error("name {0:?} holds a path separator")]
    Separator(String),
    /// A component with a control character.
    #[error("name {0:?} holds a control character")]
    Control(String),
    /// A component over [`MAX_COMPONENT_LEN`] bytes.
    #[error("name of {0} bytes is longer than {MAX_COMPONENT_LEN}")]
    TooLong(usize),
    /// More than [`MAX_DEPTH`] components.
    #[error("path of {0} levels is deeper than {MAX_DEPTH}")]
    TooDeep(usize),
    /// More than [`MAX_PATH_LEN`] bytes.
    #[error("path of {0} bytes is longer than {MAX_PATH_LEN}")]
    PathTooLong(usize),
    /// Valid in a manifest, but this platform cannot hold it as one plain name.
    #[error("name {name:?} cannot be used on this system: {why}")]
    NotPortable {
        /// The component.
        name: String,
        /// What the platform makes of it.
        why: &'static str,
    },
}

/// Checks one path component against the rules of the module documentation.
pub fn validate_component(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameError::Dots(name.into()));
    }
    if name.len() > MAX_COMPONENT_LEN {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains(['/', '\\']) {
        return Err(NameError::Separator(name.into()));
    }
    if name.chars().any(char::is_control) {
        return Err(NameError::Control(name.into()));
    }
    Ok(())
}

/// What Windows makes of a name that POSIX accepts, if anything: a reserved device name
/// (with any extension, any case), a trailing dot or space, or a character Windows
/// forbids in names.
pub fn windows_problem(name: &str) -> Option<&'static str> {
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(stem)) {
        return Some("a reserved device name");
    }
    if name.ends_with(['.', ' ']) {
        return Some("a name ending in a dot or space");
    }
    if name.contains(['<', '>', ':', '"', '|', '?', '*']) {
        return Some("a character Windows forbids in names");
    }
    None
}

/// The form under which case-insensitive file systems (Windows, macOS by default) see a
/// name: NFC, lower case. Two names of one directory with the same folded form are the
/// same file there.
pub fn fold_case(name: &str) -> String {
    name.nfc().flat_map(char::to_lowercase).collect()
}

/// A validated relative path: one or more components, each passing
/// [`validate_component`]. It cannot name the directory itself, a parent of it, or an
/// absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(Vec<String>);

impl RelPath {
    /// A path from its components.
    pub fn new(components: Vec<String>) -> Result<Self, NameError> {
        if components.is_empty() {
            return Err(NameError::EmptyPath);
        }
        if components.len() > MAX_DEPTH {
            return Err(NameError::TooDeep(components.len()));
        }
        for component in &components {
            validate_component(component)?;
        }
        let len = components.iter().map(String::len).sum::<usize>() + components.len() - 1;
        if len > MAX_PATH_LEN {
            return Err(NameError::PathTooLong(len));
        }
        Ok(RelPath(components))
    }

    /// A path from `/`-separated text (`photos/2024/a.jpg`); no leading, trailing or
    /// doubled `/`.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError::EmptyPath);
        }
        RelPath::new(text.split('/').map(String::from).collect())
    }

    /// The components.
    pub fn components(&self) -> &[String] {
        &self.0
    }

    /// The last component: the file or directory name.
    pub fn file_name(&self) -> &str {
        // new() refuses an empty path.
        self.0.last().map(String::as_str).unwrap_or_default()
    }

    /// Whether `other` lies inside this path (is longer and starts with it).
    pub fn is_ancestor_of(&self, other: &RelPath) -> bool {
        other.0.len() > self.0.len() && other.0.starts_with(&self.0)
    }

    /// The path for this platform, relative. Refuses a component this platform would
    /// not read as one plain name (on Windows: a drive prefix such as `C:`, and every
    /// name [`windows_problem`] reports).
    pub fn local_path(&self) -> Result<PathBuf, NameError> {
        let mut path = PathBuf::new();
        for name in &self.0 {
            if cfg!(windows) {
                if let Some(why) = windows_problem(name) {
                    return Err(NameError::NotPortable {
                        name: name.clone(),
                        why,
                    });
                }
            }
            let mut parts = Path::new(name).components();
            match (parts.next(), parts.next()) {
                (Some(Component::Normal(part)), None) if part == name.as_str() => {}
                _ => {
                    return Err(NameError::NotPortable {
                        name: name.clone(),
                        why: "not a plain file name here",
                    })
                }
            }
            path.push(name);
        }
        Ok(path)
    }

    /// `root` joined with [`RelPath::local_path`]: always a path inside `root`.
    pub fn join_under(&self, root: &Path) -> Result<PathBuf, NameError> {
        Ok(root.join(self.local_path()?))
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("/"))
    }
}

/// Pairs of paths that name the same file or directory on a case-insensitive file
/// system: names of one directory (same exact parent) whose [`fold_case`] forms are
/// equal. Directories implied by longer paths count (`Docs/a` and `docs` collide as
/// `Docs` and `docs`). Each pair is reported once, first-seen path first.
pub fn case_collisions<'a>(
    paths: impl IntoIterator<Item = &'a RelPath>,
) -> Vec<(RelPath, RelPath)> {
    let mut seen: HashMap<(&[String], String), &[String]> = HashMap::new();
    let mut reported: HashSet<(&[String], &[String])> = HashSet::new();
    let mut pairs: Vec<(RelPath, RelPath)> = Vec::new();
    for path in paths {
        for depth in 1..=path.0.len() {
            let prefix = &path.0[..depth];
            let (parent, name) = prefix.split_at(depth - 1);
            let first = *seen.entry((parent, fold_case(&name[0]))).or_insert(prefix);
            if first != prefix && reported.insert((first, prefix)) {
                pairs.push((RelPath(first.to_vec()), RelPath(prefix.to_vec())));
            }
        }
    }
    pairs
}

#[cfg(test)]
mod tests;
