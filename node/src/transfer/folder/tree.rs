//! Writing a tree under a target directory so that no name from a peer, and no
//! symbolic link planted in the target, can make a write land outside it.
//!
//! - Every path is a `RelPath` (checked when the manifest decoded: no `..`, no absolute
//!   path, no separator or NUL inside a name, length limits) and goes through
//!   `RelPath::join_under`, which also refuses names this platform would not read as
//!   one plain name.
//! - Directories are made one component at a time, and every component that exists is
//!   checked with `lstat`: anything but a real directory (a symbolic link above all)
//!   stops the fetch. The check is made again for a file's parents just before the file
//!   is placed, so a link swapped in while the fetch runs is found too; the file itself
//!   is placed by a hard link that never replaces an existing name.
//! - On a case-insensitive file system two names that differ only by case would be one
//!   file: such a tree is refused before anything is written (`case_insensitive` probes
//!   the target).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use dht_proto::RelPath;

/// Why the target cannot take the tree.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// A name this platform cannot hold.
    #[error("{0}")]
    Name(String),
    /// Something in the target is not the real directory the tree needs.
    #[error("{} is not a directory (a symbolic link or a file is in the way); nothing is written through it", .0.display())]
    NotADirectory(PathBuf),
    /// The file system failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> TreeError {
    let path = path.to_path_buf();
    move |source| TreeError::Io {
        action,
        path,
        source,
    }
}

/// Where `path` goes under `root`.
pub fn target(root: &Path, path: &RelPath) -> Result<PathBuf, TreeError> {
    path.join_under(root)
        .map_err(|e| TreeError::Name(format!("{path}: {e}")))
}

/// Makes the directories of `components` under `root`, one at a time; an existing
/// component must be a real directory. `root` itself must be one.
pub fn make_dirs(root: &Path, components: &[String]) -> Result<(), TreeError> {
    check_real_dir(root)?;
    let mut at = root.to_path_buf();
    for name in components {
        at.push(name);
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_dir() => {}
            Ok(_) => return Err(TreeError::NotADirectory(at)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match fs::create_dir(&at) {
                    Ok(()) => set_dir_mode(&at),
                    // Made meanwhile: checked below like any existing one.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(io_error("creating", &at)(e)),
                }
                check_real_dir(&at)?;
            }
            Err(e) => return Err(io_error("reading", &at)(e)),
        }
    }
    Ok(())
}

/// Checks that `root` and every parent of `path` under it are real directories (no
/// symbolic link on the way), just before a file is placed there.
pub fn check_parents(root: &Path, path: &RelPath) -> Result<(), TreeError> {
    check_real_dir(root)?;
    let parents = &path.components()[..path.components().len() - 1];
    let mut at = root.to_path_buf();
    for name in parents {
        at.push(name);
        check_real_dir(&at)?;
    }
    Ok(())
}

fn check_real_dir(dir: &Path) -> Result<(), TreeError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_dir() => Ok(()),
        Ok(_) => Err(TreeError::NotADirectory(dir.to_path_buf())),
        Err(e) => Err(io_error("reading", dir)(e)),
    }
}

/// Makes the target directory itself; it must not exist.
pub fn make_root(root: &Path) -> Result<(), TreeError> {
    fs::create_dir(root).map_err(io_error("creating", root))?;
    set_dir_mode(root);
    Ok(())
}

/// Directories placed for the user get the modes the user's umask gives (the daemon's
/// own umask keeps its data private).
fn set_dir_mode(dir: &Path) {
    #[cfg(unix)]
    if let Some(mode) = chunk_store::platform::output_mode(true) {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Gives a placed file its mode: executable or not, as the manifest says.
pub fn set_file_mode(file: &Path, executable: bool) -> Result<(), TreeError> {
    #[cfg(unix)]
    if chunk_store::platform::output_mode(executable).is_none() {
        // No user umask remembered (tests that drive the engine in process): the
        // executable bit follows the read bits the file has.
        use std::os::unix::fs::PermissionsExt;
        let meta = fs::symlink_metadata(file).map_err(io_error("reading", file))?;
        let mode = meta.permissions().mode() & 0o666;
        let mode = if executable {
            mode | ((mode & 0o444) >> 2)
        } else {
            mode
        };
        return fs::set_permissions(file, fs::Permissions::from_mode(mode))
            .map_err(io_error("setting the mode of", file));
    }
    chunk_store::platform::set_output_mode(file, executable)
        .map_err(io_error("setting the mode of", file))
}

/// Whether the file system of `dir` ignores case: a probe file made there is looked up
/// under its upper-case name.
pub fn case_insensitive(dir: &Path) -> Result<bool, TreeError> {
    let probe = dir.join(format!(".p2pd-case-probe-{:016x}", rand::random::<u64>()));
    fs::File::create_new(&probe).map_err(io_error("creating", &probe))?;
    let upper = dir.join(
        probe
            .file_name()
            .map(|n| n.to_string_lossy().to_uppercase())
            .unwrap_or_default(),
    );
    let found = fs::symlink_metadata(&upper).is_ok();
    let _ = fs::remove_file(&probe);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_made_but_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        make_root(&root).unwrap();
        make_dirs(&root, &["a".into(), "b".into()]).unwrap();
        assert!(root.join("a/b").is_dir());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("evil")).unwrap();
            let refused = make_dirs(&root, &["evil".into(), "x".into()]);
            assert!(
                matches!(refused, Err(TreeError::NotADirectory(_))),
                "{refused:?}"
            );
            assert!(!outside.join("x").exists());
            let path = RelPath::parse("evil/file").unwrap();
            assert!(matches!(
                check_parents(&root, &path),
                Err(TreeError::NotADirectory(_))
            ));
        }
        fs::write(root.join("file"), b"x").unwrap();
        assert!(make_dirs(&root, &["file".into(), "y".into()]).is_err());
        // The root must be new.
        assert!(make_root(&root).is_err());
    }

    #[test]
    fn this_file_system_is_probed_for_case() {
        let dir = tempfile::tempdir().unwrap();
        // Linux tmp directories are case-sensitive; the probe leaves nothing behind.
        if cfg!(target_os = "linux") {
            assert!(!case_insensitive(dir.path()).unwrap());
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
