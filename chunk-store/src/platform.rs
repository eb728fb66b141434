//! What differs between operating systems, in one place: positioned reads and writes,
//! the bytes a file has allocated, free space, direct I/O, and the modes of the files
//! the store places for the user.
//!
//! Linux is the reference. macOS shares the Unix code except direct I/O (writes go
//! through the page cache). Windows reads and writes at an offset with
//! `seek_read`/`seek_write`, has no Unix modes (files get the directory's ACLs), and
//! does not report free space here: the check before a download is skipped there, and
//! a full disk fails the write instead.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;
use std::sync::OnceLock;

/// Reads exactly `buf.len()` bytes at `offset` of `file` (without moving a shared cursor
/// on Unix; several threads may read one file at once).
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(buf, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < buf.len() {
            match file.seek_read(&mut buf[done..], offset + done as u64) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Writes all of `data` at `offset` of `file`.
pub(crate) fn write_all_at(file: &File, data: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(data, offset)
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::FileExt;
        let mut done = 0;
        while done < data.len() {
            match file.seek_write(&data[done..], offset + done as u64) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Bytes the file system has allocated to a (sparse) file: what it needs no new space
/// for. 0 where that is not known (Windows), which only makes a free-space check
/// stricter.
pub(crate) fn allocated_bytes(meta: &Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        meta.blocks().saturating_mul(512)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        0
    }
}

/// Bytes an unprivileged user may still write on the file system holding `path`
/// (`statvfs`: available blocks times the fragment size); `None` where this platform
/// does not tell (Windows).
pub(crate) fn free_space(path: &Path) -> io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        let stat = rustix::fs::statvfs(path).map_err(io::Error::from)?;
        Ok(Some(stat.f_bavail.saturating_mul(stat.f_frsize)))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(None)
    }
}

/// Opens `path` for writing with direct I/O (`O_DIRECT`, Linux): writes skip the page
/// cache. Fails with an error that [`refuses_direct_io`] recognises where the file
/// system or the platform has none.
pub(crate) fn open_direct(path: &Path) -> io::Result<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Whether `e` says direct I/O is not available (Linux answers `EINVAL`, on the open or
/// on the first write), so the caller writes through the page cache from then on.
pub(crate) fn refuses_direct_io(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    if e.raw_os_error() == Some(libc::EINVAL) {
        return true;
    }
    e.kind() == io::ErrorKind::Unsupported
}

/// The umask the process started with, before the daemon made its own private.
static USER_UMASK: OnceLock<u32> = OnceLock::new();

/// Remembers the umask the user started the process with. The daemon runs with umask
/// 077 so that its data directory stays private; a file it places for the user (a
/// download's output, an export) gets the modes this umask gives instead, as if the
/// user had written it. Only the first call counts.
pub fn remember_user_umask(mask: u32) {
    let _ = USER_UMASK.set(mask & 0o777);
}

/// The mode of a file placed for the user: 0666, or 0777 for an executable, less the
/// remembered umask; `None` when none was remembered (the file keeps the mode the
/// process's umask gave it, which is then the user's own).
pub fn output_mode(executable: bool) -> Option<u32> {
    let full = if executable { 0o777 } else { 0o666 };
    USER_UMASK.get().map(|mask| full & !mask)
}

/// Gives the file at `path` the [`output_mode`] (no-op without Unix modes, or when no
/// umask was remembered).
pub fn set_output_mode(path: &Path, executable: bool) -> io::Result<()> {
    #[cfg(unix)]
    if let Some(mode) = output_mode(executable) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, executable);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positioned_writes_and_reads_meet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        write_all_at(&file, b"world", 6).unwrap();
        write_all_at(&file, b"hello ", 0).unwrap();
        let mut buf = [0u8; 11];
        read_exact_at(&file, &mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello world");
        let e = read_exact_at(&file, &mut buf, 4).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn an_unsupported_platform_answer_means_no_direct_io() {
        assert!(refuses_direct_io(&io::ErrorKind::Unsupported.into()));
        assert!(!refuses_direct_io(&io::ErrorKind::PermissionDenied.into()));
    }

    #[cfg(unix)]
    #[test]
    fn output_modes_follow_the_remembered_umask_and_the_executable_bit() {
        use std::os::unix::fs::PermissionsExt;
        remember_user_umask(0o027);
        remember_user_umask(0o077); // only the first call counts
        assert_eq!(output_mode(false), Some(0o640));
        assert_eq!(output_mode(true), Some(0o750));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, b"x").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        set_output_mode(&path, false).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o640);
        set_output_mode(&path, true).unwrap();
        assert_eq!(mode(&path), 0o750);
    }
}
