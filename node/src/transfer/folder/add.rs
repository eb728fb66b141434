//! Adding a directory: walk the tree, import every regular file as an ordinary store
//! entry (identical files become one entry: the store is content-addressed; the
//! entries are committed a batch at a time, see `chunk_store::ImportBatch`), build the
//! directory manifest of names, sizes, file CIDs and executable bits, keep it in the
//! store, and announce the files and the folder.
//!
//! The walk never leaves the tree by a symbolic link unless asked to
//! ([`FolderAddOptions::follow_symlinks`]): a link is skipped with a warning. Followed
//! links that lead back into a directory being walked are skipped too (a loop). Other
//! special files (FIFOs, sockets, devices) are always skipped with a warning. A name
//! that a manifest cannot carry (not UTF-8, or refused by `RelPath`) fails the add, so
//! that no file is left out silently.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use chunk_store::{FolderRecord, ImportMode, Store, StoreError};
use dht_proto::dirmanifest::{DirEntry, EntryKind, MAX_DIR_ENTRIES};
use dht_proto::{Cid, DirManifest, RelPath};

use super::now_unix;
use crate::transfer::{blocking, EngineError, Transfers};

/// How to add a directory.
#[derive(Debug, Clone)]
pub struct FolderAddOptions {
    /// Copy the files into the store, or track them in place.
    pub mode: ImportMode,
    /// Whether the node's catalog lists the folder (its files are never listed alone).
    pub listed: bool,
    /// Follow symbolic links (to files and directories) instead of skipping them.
    pub follow_symlinks: bool,
    /// The folder's name (default: the directory's own name).
    pub name: Option<String>,
}

/// What the add reports as it goes.
#[derive(Debug, Clone)]
pub enum FolderAddEvent {
    /// Files and bytes imported so far, of the totals the walk found.
    Progress {
        /// Files imported.
        files_done: u64,
        /// Files found.
        files: u64,
        /// Bytes read.
        bytes: u64,
        /// Bytes found.
        size: u64,
    },
    /// Something left out of the tree, and why.
    Skipped(String),
}

/// What an added folder is.
#[derive(Debug, Clone)]
pub struct FolderAdded {
    /// The directory CID.
    pub cid: Cid,
    /// Its name.
    pub name: Option<String>,
    /// Files in the tree.
    pub files: u64,
    /// Distinct file contents (identical files are stored once).
    pub unique_files: u64,
    /// Empty directories in the tree.
    pub empty_dirs: u64,
    /// Sum of the file sizes.
    pub size: u64,
    /// Whether the store had this folder already.
    pub already_present: bool,
    /// What was left out, one line each.
    pub skipped: Vec<String>,
}

/// One regular file the walk found.
struct Found {
    path: RelPath,
    source: PathBuf,
    size: u64,
    executable: bool,
}

/// What the walk found.
#[derive(Default)]
struct Walk {
    files: Vec<Found>,
    empty_dirs: Vec<RelPath>,
    skipped: Vec<String>,
}

impl Transfers {
    /// Adds the directory at `root` as one folder and announces it and its files.
    /// `events` is told the progress and what was skipped.
    pub async fn add_folder(
        &self,
        root: PathBuf,
        options: FolderAddOptions,
        mut events: impl FnMut(FolderAddEvent) + Send + 'static,
    ) -> Result<FolderAdded, EngineError> {
        let store = self.store().clone();
        let (added, file_cids) =
            blocking(move || add_blocking(&store, &root, &options, &mut events)).await?;
        // In batches: the reprovider groups them by keyspace region, instead of one
        // `ADD_PROVIDER` round per file.
        self.net().start_providing_many(file_cids).await;
        self.net().start_providing(added.cid).await;
        tracing::info!(cid = %added.cid, files = added.files, size = added.size, "folder added");
        Ok(added)
    }
}

fn add_blocking(
    store: &Store,
    root: &Path,
    options: &FolderAddOptions,
    events: &mut dyn FnMut(FolderAddEvent),
) -> Result<(FolderAdded, Vec<Cid>), StoreError> {
    let meta = fs::metadata(root).map_err(|e| io_error("reading", root, e))?;
    if !meta.is_dir() {
        return Err(StoreError::Invalid(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let name = match &options.name {
        Some(n) => Some(check_name(n)?),
        None => root
            .file_name()
            .and_then(|n| dht_proto::names::sanitize_file_name(&n.to_string_lossy())),
    };
    let mut walk = Walk::default();
    let mut ancestors = vec![fs::canonicalize(root).map_err(|e| io_error("reading", root, e))?];
    walk_dir(
        root,
        &[],
        options.follow_symlinks,
        &mut ancestors,
        &mut walk,
    )?;
    for line in &walk.skipped {
        events(FolderAddEvent::Skipped(line.clone()));
    }
    let total_files = walk.files.len() as u64;
    let total_size: u64 = walk.files.iter().map(|f| f.size).sum();
    let mut entries = Vec::with_capacity(walk.files.len() + walk.empty_dirs.len());
    let mut distinct: HashSet<Cid> = HashSet::new();
    let mut bytes_before = 0u64;
    let mut last_report = std::time::Instant::now();
    // One commit per batch of files rather than per file (see `ImportBatch`).
    let mut batch = store.import_batch();
    for (i, found) in walk.files.iter().enumerate() {
        let outcome = batch.import(&found.source, options.mode, None, false, &mut |read| {
            if last_report.elapsed().as_millis() >= 100 {
                last_report = std::time::Instant::now();
                events(FolderAddEvent::Progress {
                    files_done: i as u64,
                    files: total_files,
                    bytes: bytes_before + read,
                    size: total_size,
                });
            }
        })?;
        bytes_before += outcome.size;
        distinct.insert(outcome.cid);
        entries.push(DirEntry {
            path: found.path.clone(),
            kind: EntryKind::File {
                cid: outcome.cid,
                size: outcome.size,
                executable: found.executable,
            },
        });
        if last_report.elapsed().as_millis() >= 100 {
            last_report = std::time::Instant::now();
            events(FolderAddEvent::Progress {
                files_done: i as u64 + 1,
                files: total_files,
                bytes: bytes_before,
                size: total_size,
            });
        }
    }
    batch.finish()?;
    entries.extend(walk.empty_dirs.iter().map(|path| DirEntry {
        path: path.clone(),
        kind: EntryKind::EmptyDir,
    }));
    let empty_dirs = walk.empty_dirs.len() as u64;
    let manifest = DirManifest::new(entries)
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", root.display())))?;
    let cid = manifest.cid();
    let already_present = store.folder(&cid)?.is_some_and(|f| f.record.complete);
    store.put_folder(
        &cid,
        &manifest.encode(),
        &FolderRecord {
            name: name.clone(),
            added_unix: now_unix(),
            complete: true,
            published: true,
            listed: options.listed,
            files: 0,
            size: 0,
            fetch_to: None,
        },
    )?;
    events(FolderAddEvent::Progress {
        files_done: total_files,
        files: total_files,
        bytes: manifest.total_size(),
        size: manifest.total_size(),
    });
    let added = FolderAdded {
        cid,
        name,
        files: total_files,
        unique_files: distinct.len() as u64,
        empty_dirs,
        size: manifest.total_size(),
        already_present,
        skipped: walk.skipped,
    };
    Ok((added, distinct.into_iter().collect()))
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A folder name given by the user: one plain file name.
fn check_name(name: &str) -> Result<String, StoreError> {
    if dht_proto::names::sanitize_file_name(name).as_deref() == Some(name) {
        Ok(name.to_string())
    } else {
        Err(StoreError::Invalid(format!(
            "invalid name {name:?}: a name is one plain file name (no path parts, control \
             characters or leading dot, at most 255 bytes)"
        )))
    }
}

/// Walks `dir` (at `prefix` inside the tree) depth first, in name order.
fn walk_dir(
    dir: &Path,
    prefix: &[String],
    follow_symlinks: bool,
    ancestors: &mut Vec<PathBuf>,
    walk: &mut Walk,
) -> Result<(), StoreError> {
    let listing = fs::read_dir(dir).map_err(|e| io_error("listing", dir, e))?;
    let mut children: Vec<fs::DirEntry> = Vec::new();
    for item in listing {
        children.push(item.map_err(|e| io_error("listing", dir, e))?);
    }
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let source = child.path();
        let Some(name) = child.file_name().to_str().map(String::from) else {
            return Err(StoreError::Invalid(format!(
                "{}: the name is not UTF-8, which a folder cannot carry",
                source.display()
            )));
        };
        let mut components = prefix.to_vec();
        components.push(name);
        let path = RelPath::new(components.clone())
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", source.display())))?;
        let mut meta =
            fs::symlink_metadata(&source).map_err(|e| io_error("reading", &source, e))?;
        if meta.file_type().is_symlink() {
            if !follow_symlinks {
                walk.skipped.push(format!(
                    "{path}: a symbolic link (skipped; --follow-symlinks follows them)"
                ));
                continue;
            }
            meta = match fs::metadata(&source) {
                Ok(m) => m,
                Err(e) => {
                    walk.skipped
                        .push(format!("{path}: a broken symbolic link ({e})"));
                    continue;
                }
            };
        }
        if walk.files.len() + walk.empty_dirs.len() >= MAX_DIR_ENTRIES {
            return Err(StoreError::Invalid(format!(
                "more than {MAX_DIR_ENTRIES} files and empty directories: too many for one folder"
            )));
        }
        if meta.is_dir() {
            let real = fs::canonicalize(&source).map_err(|e| io_error("reading", &source, e))?;
            if ancestors.contains(&real) {
                walk.skipped.push(format!(
                    "{path}: a link back into the tree (a loop; skipped)"
                ));
                continue;
            }
            ancestors.push(real);
            let before = walk.files.len() + walk.empty_dirs.len();
            walk_dir(&source, &components, follow_symlinks, ancestors, walk)?;
            ancestors.pop();
            if walk.files.len() + walk.empty_dirs.len() == before {
                walk.empty_dirs.push(path);
            }
        } else if meta.is_file() {
            walk.files.push(Found {
                path,
                source,
                size: meta.len(),
                executable: is_executable(&meta),
            });
        } else {
            walk.skipped
                .push(format!("{path}: not a regular file or directory (skipped)"));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}
