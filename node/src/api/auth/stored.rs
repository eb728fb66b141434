//! The owner's password as the daemon knows it: the password file, re-read only when
//! it changed. Every cookie request needs to know which password is current (a new one
//! ends the sessions of the old), and that costs one `stat` of the file, not a read and
//! a hash; argon2 runs only when someone logs in or sets a password.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The password file's contents that matter.
#[derive(Debug)]
pub struct Stored {
    /// The argon2id hash, a PHC string.
    pub phc: String,
    /// A fingerprint of the file: setting any password, even the same one, changes it
    /// (the hash has a random salt).
    pub version: [u8; 32],
}

/// What tells one version of the file from another without reading it: a rewrite
/// (`p2pd passwd` writes a new file and renames it over the old) changes the inode and
/// the change time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    changed: (i64, i64),
}

fn file_key(meta: &fs::Metadata) -> FileKey {
    #[cfg(unix)]
    use std::os::unix::fs::MetadataExt;
    FileKey {
        len: meta.len(),
        modified: meta.modified().ok(),
        #[cfg(unix)]
        inode: (meta.dev(), meta.ino()),
        #[cfg(unix)]
        changed: (meta.ctime(), meta.ctime_nsec()),
    }
}

#[derive(Default)]
struct Cache {
    key: Option<FileKey>,
    current: Option<Arc<Stored>>,
    /// How often the file was read (for tests).
    reads: u64,
}

/// The password file of one data directory, cached.
pub struct StoredPassword {
    path: PathBuf,
    cache: Mutex<Cache>,
}

impl StoredPassword {
    /// The password kept at `path` (which need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        StoredPassword {
            path,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The password as it is now (`None` while none is set, or the file is unreadable).
    pub fn current(&self) -> Option<Arc<Stored>> {
        let key = fs::metadata(&self.path).ok().map(|m| file_key(&m));
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.key != key || key.is_none() {
            cache.current = match key {
                Some(_) => {
                    cache.reads += 1;
                    fs::read(&self.path).ok().map(|bytes| {
                        Arc::new(Stored {
                            phc: String::from_utf8_lossy(&bytes).trim().to_string(),
                            version: *blake3::hash(&bytes).as_bytes(),
                        })
                    })
                }
                None => None,
            };
            cache.key = key;
        }
        cache.current.clone()
    }

    /// How often the file was read.
    #[cfg(test)]
    fn reads(&self) -> u64 {
        self.cache.lock().map(|c| c.reads).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_read_once_per_version_not_per_request() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let stored = StoredPassword::new(dir.path().join(crate::password::PASSWORD_FILE));
        assert!(stored.current().is_none());
        crate::password::store(dir.path(), "first password").unwrap_or_else(|e| panic!("{e}"));
        let first = stored.current().map(|s| s.version);
        assert!(first.is_some());
        for _ in 0..100 {
            assert_eq!(stored.current().map(|s| s.version), first);
        }
        assert_eq!(stored.reads(), 1);
        // A new password (even the same one) is a new version, seen at once.
        crate::password::store(dir.path(), "first password").unwrap_or_else(|e| panic!("{e}"));
        let second = stored.current();
        assert!(second.as_ref().is_some_and(|s| Some(s.version) != first));
        assert!(second.is_some_and(|s| crate::password::verify("first password", &s.phc)));
        assert_eq!(stored.reads(), 2);
        std::fs::remove_file(dir.path().join(crate::password::PASSWORD_FILE))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(stored.current().is_none());
    }
}
