//! The directory manifest: a tree of files named as one CID.
//!
//! Like a file manifest it is dag-cbor, hashed with BLAKE3 into a `dag-cbor` CID, and
//! fetched over `/p2pd/manifest/1.0.0`; its top-level key `"t": "dir"` tells it apart
//! (a file manifest has no `t`). It lists every file by validated relative path
//! ([`RelPath`]), size, file CID and executable bit, and every empty directory, sorted
//! by path: `{"t": "dir", "v": 1, "entries": [{"c": cid / null, "p": [names…], "s":
//! size, "x": bool}…]}`. Only the canonical encoding decodes, so a tree has exactly one
//! CID.

use serde::{Deserialize, Serialize};

use crate::cid::{Cid, Codec};
use crate::codec::{self, DecodeError};
use crate::manifest::{Manifest, MAX_FILE_SIZE, MAX_MANIFEST_LEN};
use crate::relpath::{case_collisions, NameError, RelPath};

/// The value of the `t` key.
pub const DIR_MANIFEST_TAG: &str = "dir";
/// The format version.
pub const DIR_MANIFEST_VERSION: u32 = 1;
/// The most entries (files and empty directories) in one manifest.
pub const MAX_DIR_ENTRIES: usize = 1 << 17;
/// The largest encoded directory manifest: the same as a file manifest, so it fits
/// the manifest protocol's response limit.
pub const MAX_DIR_MANIFEST_LEN: usize = MAX_MANIFEST_LEN;
/// The largest sum of file sizes.
pub const MAX_DIR_TOTAL_SIZE: u64 = 1 << 44;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File {
        /// Its file CID (a file manifest).
        cid: Cid,
        /// Its size in bytes; the fetcher checks it against the file manifest.
        size: u64,
        /// Whether it is executable (written with mode 0755 rather than 0644).
        executable: bool,
    },
    /// A directory with nothing in it (other directories are implied by file paths).
    EmptyDir,
}

/// One file or empty directory of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Where it goes, relative to the directory being written.
    pub path: RelPath,
    /// File or empty directory.
    pub kind: EntryKind,
}

/// A validated directory tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirManifest {
    entries: Vec<DirEntry>,
    total_size: u64,
}

/// Why a directory manifest is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirManifestError {
    /// More than [`MAX_DIR_ENTRIES`] entries.
    #[error("{0} entries (at most {MAX_DIR_ENTRIES})")]
    TooManyEntries(usize),
    /// A path is refused.
    #[error("bad path {path:?}: {error}")]
    Name {
        /// The path as sent, components joined with `/`.
        path: String,
        /// Why.
        error: NameError,
    },
    /// The same path twice.
    #[error("path {0} appears twice")]
    Duplicate(RelPath),
    /// A file is also used as a directory (`a` and `a/b`).
    #[error("{0} is a file but other entries lie inside it")]
    FileAsDirectory(RelPath),
    /// An "empty" directory has entries inside it.
    #[error("{0} is listed as an empty directory but is not empty")]
    DirNotEmpty(RelPath),
    /// A file's CID does not name a file manifest.
    #[error("{0}: not a file CID")]
    NotAFileCid(RelPath),
    /// A file larger than a file manifest can describe.
    #[error("{0}: larger than the largest file")]
    FileTooLarge(RelPath),
    /// The files add up to more than [`MAX_DIR_TOTAL_SIZE`].
    #[error("files add up to more than {MAX_DIR_TOTAL_SIZE} bytes")]
    TooLarge,
    /// An empty directory with a size, CID or executable bit.
    #[error("{0}: a directory entry has a size or executable bit")]
    DirWithFileFields(RelPath),
    /// Not tagged as a directory manifest, or an unknown version.
    #[error("not a version-1 directory manifest")]
    NotADirManifest,
    /// Valid content in a non-canonical encoding (order, integer width, extra keys).
    #[error("directory manifest is not in canonical form")]
    NotCanonical,
}

#[derive(Serialize, Deserialize)]
struct WireDir {
    t: String,
    v: u32,
    entries: Vec<WireEntry>,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    c: Option<Cid>,
    p: Vec<String>,
    s: u64,
    x: bool,
}

/// A decoded manifest of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyManifest {
    /// A file manifest.
    File(Manifest),
    /// A directory manifest.
    Dir(DirManifest),
}

impl DirManifest {
    /// Builds a manifest from entries in any order: sorts them by path and checks every
    /// rule (limits, names, no duplicate, no file used as a directory, no non-empty
    /// "empty" directory, sizes).
    pub fn new(mut entries: Vec<DirEntry>) -> Result<Self, DirManifestError> {
        if entries.len() > MAX_DIR_ENTRIES {
            return Err(DirManifestError::TooManyEntries(entries.len()));
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let mut total_size: u64 = 0;
        for (i, entry) in entries.iter().enumerate() {
            let next = entries.get(i + 1).map(|e| &e.path);
            if next == Some(&entry.path) {
                return Err(DirManifestError::Duplicate(entry.path.clone()));
            }
            // Sorted by components, the paths inside `entry.path` come right after it.
            let has_children = next.is_some_and(|n| entry.path.is_ancestor_of(n));
            match entry.kind {
                EntryKind::File { cid, size, .. } => {
                    if has_children {
                        return Err(DirManifestError::FileAsDirectory(entry.path.clone()));
                    }
                    if cid.codec() != Codec::DagCbor {
                        return Err(DirManifestError::NotAFileCid(entry.path.clone()));
                    }
                    if size > MAX_FILE_SIZE {
                        return Err(DirManifestError::FileTooLarge(entry.path.clone()));
                    }
                    total_size = total_size
                        .checked_add(size)
                        .filter(|t| *t <= MAX_DIR_TOTAL_SIZE)
                        .ok_or(DirManifestError::TooLarge)?;
                }
                EntryKind::EmptyDir if has_children => {
                    return Err(DirManifestError::DirNotEmpty(entry.path.clone()));
                }
                EntryKind::EmptyDir => {}
            }
        }
        Ok(DirManifest {
            entries,
            total_size,
        })
    }

    /// Every entry, sorted by path.
    pub fn entries(&self) -> &[DirEntry] {
        &self.entries
    }

    /// The files: path, CID, size, executable bit.
    pub fn files(&self) -> impl Iterator<Item = (&RelPath, &Cid, u64, bool)> {
        self.entries.iter().filter_map(|e| match &e.kind {
            EntryKind::File {
                cid,
                size,
                executable,
            } => Some((&e.path, cid, *size, *executable)),
            EntryKind::EmptyDir => None,
        })
    }

    /// The sum of the file sizes.
    pub fn total_size(&self) -> u64 {
        self.total_size
    }

    /// Paths that would name the same file on a case-insensitive file system (see
    /// [`case_collisions`]); a fetcher writing to such a file system refuses the tree
    /// or renames one of each pair.
    pub fn case_collisions(&self) -> Vec<(RelPath, RelPath)> {
        case_collisions(self.entries.iter().map(|e| &e.path))
    }

    /// The canonical encoding; its BLAKE3 hash is the directory's CID.
    pub fn encode(&self) -> Vec<u8> {
        let entries = self
            .entries
            .iter()
            .map(|e| match e.kind {
                EntryKind::File {
                    cid,
                    size,
                    executable,
                } => WireEntry {
                    c: Some(cid),
                    p: e.path.components().to_vec(),
                    s: size,
                    x: executable,
                },
                EntryKind::EmptyDir => WireEntry {
                    c: None,
                    p: e.path.components().to_vec(),
                    s: 0,
                    x: false,
                },
            })
            .collect();
        codec::encode(&WireDir {
            t: DIR_MANIFEST_TAG.into(),
            v: DIR_MANIFEST_VERSION,
            entries,
        })
    }

    /// The directory CID (`dag-cbor`, like a file CID).
    pub fn cid(&self) -> Cid {
        Cid::for_manifest_bytes(&self.encode())
    }

    /// Decodes and validates a manifest of at most [`MAX_DIR_MANIFEST_LEN`] bytes, in
    /// canonical form only.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let wire: WireDir = codec::decode(bytes, MAX_DIR_MANIFEST_LEN)?;
        let invalid = |e: DirManifestError| DecodeError::Invalid(e.to_string());
        if wire.t != DIR_MANIFEST_TAG || wire.v != DIR_MANIFEST_VERSION {
            return Err(invalid(DirManifestError::NotADirManifest));
        }
        if wire.entries.len() > MAX_DIR_ENTRIES {
            return Err(invalid(DirManifestError::TooManyEntries(
                wire.entries.len(),
            )));
        }
        let mut entries = Vec::with_capacity(wire.entries.len());
        for entry in wire.entries {
            let shown = entry.p.join("/");
            let path = RelPath::new(entry.p)
                .map_err(|error| invalid(DirManifestError::Name { path: shown, error }))?;
            let kind = match entry.c {
                Some(cid) => EntryKind::File {
                    cid,
                    size: entry.s,
                    executable: entry.x,
                },
                None if entry.s != 0 || entry.x => {
                    return Err(invalid(DirManifestError::DirWithFileFields(path)))
                }
                None => EntryKind::EmptyDir,
            };
            entries.push(DirEntry { path, kind });
        }
        let manifest = DirManifest::new(entries).map_err(invalid)?;
        if manifest.encode() != bytes {
            return Err(invalid(DirManifestError::NotCanonical));
        }
        Ok(manifest)
    }

    /// Decodes a manifest and checks that it is the one `cid` names.
    pub fn decode_for(cid: &Cid, bytes: &[u8]) -> Result<Self, DecodeError> {
        check_cid(cid, bytes)?;
        DirManifest::decode(bytes)
    }
}

/// Whether encoded manifest bytes are tagged as a directory manifest (a cheap look at the
/// first key; [`DirManifest::decode`] still checks everything).
pub fn is_dir_manifest(bytes: &[u8]) -> bool {
    // map(3), "t", "dir": the canonical start of every directory manifest.
    bytes.starts_with(&[0xa3, 0x61, b't', 0x63, b'd', b'i', b'r'])
}

/// Decodes the manifest `cid` names, file or directory, after checking the bytes hash
/// to it.
pub fn decode_any_for(cid: &Cid, bytes: &[u8]) -> Result<AnyManifest, DecodeError> {
    check_cid(cid, bytes)?;
    if is_dir_manifest(bytes) {
        DirManifest::decode(bytes).map(AnyManifest::Dir)
    } else {
        Manifest::decode(bytes).map(AnyManifest::File)
    }
}

fn check_cid(cid: &Cid, bytes: &[u8]) -> Result<(), DecodeError> {
    if Cid::for_manifest_bytes(bytes) != *cid {
        return Err(DecodeError::Invalid(format!(
            "manifest bytes do not hash to {cid}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
