//! Small file-system helpers shared by the store and the node: durable atomic writes,
//! directory syncs, temporary names, free space. Every function here blocks on the disk.
//! What differs between operating systems is in `platform.rs`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::StoreError;

/// Replaces the file at `path` with `bytes` so that a crash leaves either the old content
/// or the new, never a mix: writes a temporary file in the same directory, syncs it,
/// renames it over `path` and syncs the directory (so the rename itself is durable). The
/// new file gets the default mode (0666 less the umask); see [`write_private`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, None)
}

/// [`write_atomic`] for a file only its owner may read or write (mode 0600 on Unix):
/// keys, tokens, password hashes. The file never exists with a wider mode, not even
/// under its temporary name.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, Some(0o600))
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> io::Result<()> {
    let tmp = temp_beside(path);
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(mode) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

/// Makes the entries of directory `dir` (files created, renamed or removed in it) durable.
/// File systems that cannot sync a directory (some network ones answer `EINVAL`) are
/// taken at their word.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir)?.sync_all() {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// [`sync_dir`] on the directory holding `path`.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// A hidden temporary name in the same directory as `path` (so a final rename is atomic)
/// that no other writer picks at the same time.
pub fn temp_beside(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    dir.join(format!(
        ".{}.p2pd-{:016x}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rand::random::<u64>()
    ))
}

/// Bytes an unprivileged user may still write on the file system holding `path`
/// (`statvfs`: available blocks times the fragment size). Fails with
/// [`io::ErrorKind::Unsupported`] where the platform does not tell (Windows).
pub fn free_space(path: &Path) -> io::Result<u64> {
    crate::platform::free_space(path)?.ok_or_else(|| io::ErrorKind::Unsupported.into())
}

/// Fails with [`StoreError::NoSpace`] ("needs 812 MiB, 64 MiB free on …") unless the
/// file system holding `path` has `needed` bytes free. Where free space is unknown
/// (Windows) nothing is checked: a full disk then fails the write itself.
pub fn ensure_free_space(path: &Path, needed: u64) -> Result<(), StoreError> {
    let free = match crate::platform::free_space(path) {
        Ok(Some(free)) => free,
        Ok(None) => return Ok(()),
        Err(e) => return Err(StoreError::io("checking free space on", path, e)),
    };
    if free < needed {
        return Err(StoreError::NoSpace {
            needed,
            free,
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Lower-case hex, the form of every hash in a file name of the store.
pub(crate) fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_whole_files_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A failed write names the file and leaves the old content.
        let missing = dir.path().join("no-such-dir/x");
        let e = write_atomic(&missing, b"x").unwrap_err();
        assert!(e.to_string().contains("no-such-dir/x"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_even_over_a_wider_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.key");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"secret").unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"secret");
    }

    #[cfg(unix)]
    #[test]
    fn free_space_is_checked_against_what_is_needed() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_space(dir.path()).unwrap();
        assert!(free > 0);
        ensure_free_space(dir.path(), 1).unwrap();
        let e = ensure_free_space(dir.path(), u64::MAX).unwrap_err();
        assert!(matches!(
            e,
            StoreError::NoSpace {
                needed: u64::MAX,
                ..
            }
        ));
        assert!(e.to_string().contains(" MiB free on "), "{e}");
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
