//! Fetching a folder: the directory manifest first (from the store, or through a file
//! download of the CID, which keeps a directory manifest it finds in the store), then
//! the tree's directories, then every distinct file through the download engine,
//! [`FILES_AT_ONCE`] at a time, each written straight to its place. Identical files
//! are fetched once; the engine copies the others out of the store. Executable bits are
//! restored as each file lands.
//!
//! Resume: the store remembers which directory an unfinished fetch writes to
//! (`FolderRecord::fetch_to`); fetching again into that directory continues. A file
//! already at its place counts as done once its bytes verify against its manifest;
//! the engine resumes partial files as for any download (and the daemon resumes the
//! unfinished file downloads by itself when it starts again).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunk_store::EntryState;
use dht_proto::{Cid, DirManifest, RelPath};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::{watch, OnceCell};

use super::tree::{self, TreeError};
use super::{ActiveFile, FolderState, FolderStatus, Running, MAX_FOLDER_FETCHES};
use crate::transfer::status::{DownloadState, DownloadStatus, Failure, FailureKind};
use crate::transfer::{blocking, lock, EngineError, FetchParams, FetchTarget, Transfers};

/// Files of one folder fetched at once (the engine runs at most 16 downloads).
pub const FILES_AT_ONCE: usize = 16;
/// How often the folder's status is refreshed while files arrive.
const STATUS_EVERY: Duration = Duration::from_millis(200);

impl From<TreeError> for Failure {
    fn from(e: TreeError) -> Self {
        match e {
            TreeError::Io { .. } => Failure::storage(e.to_string()),
            _ => Failure::bad_input(e.to_string()),
        }
    }
}

/// One distinct file of a tree and every path that holds it (executable or not).
struct FileGroup {
    cid: Cid,
    size: u64,
    paths: Vec<(RelPath, bool)>,
}

/// The distinct files of a manifest, each with every path that holds it, in manifest
/// order: identical files are fetched once.
fn groups(manifest: &DirManifest) -> Vec<FileGroup> {
    let mut order: Vec<FileGroup> = Vec::new();
    let mut index: HashMap<Cid, usize> = HashMap::new();
    for (path, cid, size, executable) in manifest.files() {
        let i = *index.entry(*cid).or_insert_with(|| {
            order.push(FileGroup {
                cid: *cid,
                size,
                paths: Vec::new(),
            });
            order.len() - 1
        });
        order[i].paths.push((path.clone(), executable));
    }
    order
}

/// What the running files share with the status reporter.
#[derive(Default)]
struct Shared {
    files_done: AtomicU64,
    bytes_done: AtomicU64,
    active: Mutex<HashMap<String, (u64, watch::Receiver<DownloadStatus>)>>,
}

impl Transfers {
    /// Starts fetching a folder, or attaches to its running fetch (refused if that one
    /// writes elsewhere); returns its status, updated as it goes.
    pub fn fetch_folder(
        &self,
        params: FetchTarget,
    ) -> Result<watch::Receiver<FolderStatus>, EngineError> {
        let mut fetches = lock(&self.inner.folders.fetches);
        if let Some(running) = fetches.get(&params.cid) {
            if !running.status.borrow().has_ended() {
                if params.output.is_some() && running.output != params.output {
                    return Err(EngineError::DownloadingElsewhere {
                        cid: params.cid,
                        output: running.output.clone(),
                    });
                }
                return Ok(running.status.subscribe());
            }
        }
        if fetches.len() >= MAX_FOLDER_FETCHES && !fetches.contains_key(&params.cid) {
            fetches.retain(|_, f| !f.status.borrow().has_ended());
            if fetches.len() >= MAX_FOLDER_FETCHES {
                return Err(EngineError::TooManyDownloads(fetches.len()));
            }
        }
        let (status, rx) = watch::channel(FolderStatus::new(params.cid));
        fetches.insert(
            params.cid,
            Running {
                output: params.output.clone(),
                status: status.clone(),
            },
        );
        let transfers = self.clone();
        self.inner.tasks.spawn(async move {
            let started = Instant::now();
            let result = transfers.drive_folder(&params, &status, started).await;
            status.send_modify(|s| {
                s.elapsed = started.elapsed();
                s.active.clear();
                s.state = match result {
                    Ok(()) => FolderState::Done,
                    Err(failure) => {
                        tracing::warn!(cid = %params.cid, "folder fetch failed: {}", failure.message);
                        FolderState::Failed(failure)
                    }
                };
            });
        });
        Ok(rx)
    }

    async fn drive_folder(
        &self,
        params: &FetchTarget,
        status: &watch::Sender<FolderStatus>,
        started: Instant,
    ) -> Result<(), Failure> {
        let cid = params.cid;
        let (manifest, name, fetch_to) = self.folder_manifest(cid, params.timeout).await?;
        let root = match (&params.output, &params.output_dir) {
            (Some(output), _) => output.clone(),
            (None, Some(dir)) => dir.join(crate::transfer::files::safe_file_name(
                name.as_deref(),
                &cid,
            )),
            (None, None) => {
                return Err(Failure::bad_input(
                    "a folder needs a directory to be written to",
                ))
            }
        };
        // Every name, before anything is written.
        for entry in manifest.entries() {
            tree::target(&root, &entry.path)?;
        }
        status.send_modify(|s| {
            s.name = name.clone();
            s.state = FolderState::Fetching;
            s.files_total = manifest.files().count() as u64;
            s.bytes_total = manifest.total_size();
            s.output = Some(root.clone());
        });
        let resuming = fetch_to.as_deref() == Some(root.as_path()) && root.is_dir();
        if !resuming {
            if root.symlink_metadata().is_ok() {
                return Err(Failure::bad_input(format!(
                    "{} already exists",
                    root.display()
                )));
            }
            tree::make_root(&root)?;
        }
        let collisions = manifest.case_collisions();
        if let Some((a, b)) = collisions.first() {
            let root_probe = root.clone();
            let insensitive =
                tokio::task::spawn_blocking(move || tree::case_insensitive(&root_probe))
                    .await
                    .map_err(|e| Failure::storage(e.to_string()))??;
            if insensitive {
                if !resuming {
                    let _ = std::fs::remove_dir(&root);
                }
                return Err(Failure::bad_input(format!(
                    "{a} and {b} differ only by case, and the file system of {} ignores case: \
                     refused ({} such pairs)",
                    root.display(),
                    collisions.len()
                )));
            }
        }
        let store = self.store().clone();
        let remember = root.clone();
        blocking(move || store.update_folder(&cid, |r| r.fetch_to = Some(remember.clone())))
            .await
            .map_err(Failure::of_store)?;
        let dir_root = root.clone();
        let dirs_manifest = manifest.clone();
        tokio::task::spawn_blocking(move || make_all_dirs(&dir_root, &dirs_manifest))
            .await
            .map_err(|e| Failure::storage(e.to_string()))??;

        let sources = Arc::new(Sources {
            folder: cid,
            peers: OnceCell::new(),
        });
        let shared = Arc::new(Shared::default());
        let mut groups = groups(&manifest).into_iter();
        let mut running = FuturesUnordered::new();
        let mut tick = tokio::time::interval(STATUS_EVERY);
        loop {
            while running.len() < FILES_AT_ONCE {
                let Some(group) = groups.next() else {
                    break;
                };
                let job = FileJob {
                    transfers: self.clone(),
                    root: root.clone(),
                    cid: group.cid,
                    size: group.size,
                    paths: group.paths,
                    timeout: params.timeout,
                    sources: sources.clone(),
                    shared: shared.clone(),
                };
                running.push(job.run());
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = running.next() => done?,
                _ = tick.tick() => report(status, &shared, started),
            }
        }
        report(status, &shared, started);
        let store = self.store().clone();
        blocking(move || {
            store.update_folder(&cid, |r| {
                r.complete = true;
                r.fetch_to = None;
            })
        })
        .await
        .map_err(Failure::of_store)?;
        self.net().start_providing(cid).await;
        tracing::info!(%cid, files = manifest.files().count(), secs = started.elapsed().as_secs_f64(), "folder fetched");
        Ok(())
    }

    /// The folder's manifest, name and unfinished fetch directory: from the store, or
    /// through a download of the CID, which keeps a directory manifest it finds.
    async fn folder_manifest(
        &self,
        cid: Cid,
        timeout: Duration,
    ) -> Result<(DirManifest, Option<String>, Option<PathBuf>), Failure> {
        if let Some(found) = self.stored_folder(cid).await? {
            return Ok(found);
        }
        let mut status = self
            .fetch(FetchParams::from(FetchTarget {
                cid,
                output: None,
                output_dir: None,
                timeout,
            }))
            .map_err(|e| Failure::bad_input(e.to_string()))?;
        let ended = status
            .wait_for(|s| s.state.has_ended())
            .await
            .map(|s| s.state.clone())
            .unwrap_or_else(|_| status.borrow().state.clone());
        match ended {
            DownloadState::Failed(f) if f.kind == FailureKind::Folder => {}
            DownloadState::Failed(f) => return Err(f),
            DownloadState::Done => {
                return Err(Failure::bad_input(format!(
                    "{cid} names a file, not a folder (it is in the store now)"
                )))
            }
            other => {
                return Err(Failure::network(format!(
                    "the manifest of {cid}: {other:?}"
                )))
            }
        }
        self.stored_folder(cid)
            .await?
            .ok_or_else(|| Failure::storage(format!("the manifest of {cid} was not kept")))
    }

    async fn stored_folder(
        &self,
        cid: Cid,
    ) -> Result<Option<(DirManifest, Option<String>, Option<PathBuf>)>, Failure> {
        let store = self.store().clone();
        blocking(move || {
            let Some(info) = store.folder(&cid)? else {
                return Ok(None);
            };
            Ok(store
                .folder_manifest(&cid)?
                .map(|m| (m, info.record.name, info.record.fetch_to)))
        })
        .await
        .map_err(Failure::of_store)
    }
}

/// Makes every directory the tree needs (each file's parents, each empty directory).
fn make_all_dirs(root: &Path, manifest: &DirManifest) -> Result<(), TreeError> {
    let mut made: HashSet<&[String]> = HashSet::new();
    for entry in manifest.entries() {
        let components = entry.path.components();
        let dirs = match entry.kind {
            dht_proto::dirmanifest::EntryKind::EmptyDir => components,
            dht_proto::dirmanifest::EntryKind::File { .. } => &components[..components.len() - 1],
        };
        if !dirs.is_empty() && made.insert(dirs) {
            tree::make_dirs(root, dirs)?;
        }
    }
    Ok(())
}

fn report(status: &watch::Sender<FolderStatus>, shared: &Shared, started: Instant) {
    let mut active: Vec<ActiveFile> = lock(&shared.active)
        .iter()
        .map(|(path, (size, rx))| {
            let s = rx.borrow();
            ActiveFile {
                path: path.clone(),
                size: *size,
                bytes_done: s.bytes_done,
                peers: s.peers,
            }
        })
        .collect();
    active.sort_by(|a, b| a.path.cmp(&b.path));
    let in_flight: u64 = active.iter().map(|a| a.bytes_done).sum();
    status.send_modify(|s| {
        s.files_done = shared.files_done.load(Ordering::Relaxed);
        s.bytes_done = shared.bytes_done.load(Ordering::Relaxed) + in_flight;
        s.active = active;
        s.elapsed = started.elapsed();
    });
}

/// The folder's providers (see `sources.rs`), shared by its files.
struct Sources {
    folder: Cid,
    peers: OnceCell<Vec<PeerId>>,
}

/// One distinct file of the tree and every path that holds it.
struct FileJob {
    transfers: Transfers,
    root: PathBuf,
    cid: Cid,
    size: u64,
    paths: Vec<(RelPath, bool)>,
    timeout: Duration,
    sources: Arc<Sources>,
    shared: Arc<Shared>,
}

impl FileJob {
    async fn run(self) -> Result<(), Failure> {
        for (path, executable) in &self.paths {
            let out = tree::target(&self.root, path)?;
            self.check_parents(path).await?;
            if out.symlink_metadata().is_ok() {
                if !self.already_placed(&out).await? {
                    return Err(Failure::bad_input(format!(
                        "{} exists and is not the folder's file",
                        out.display()
                    )));
                }
            } else {
                self.download(path, &out).await?;
                // A link swapped in while the file downloaded is reported (the file was
                // placed by a hard link, which never replaces an existing name).
                self.check_parents(path).await?;
            }
            tree::set_file_mode(&out, *executable)?;
            self.shared.files_done.fetch_add(1, Ordering::Relaxed);
            self.shared
                .bytes_done
                .fetch_add(self.size, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The folder's providers, looked for once, by the first file that needs them (a
    /// file the store holds whole needs none).
    async fn sources(&self) -> Result<Vec<PeerId>, Failure> {
        let store = self.transfers.store().clone();
        let cid = self.cid;
        let held = blocking(move || store.info(&cid))
            .await
            .map_err(Failure::of_store)?
            .is_some_and(|f| f.state == EntryState::Complete);
        if held {
            return Ok(Vec::new());
        }
        let transfers = &self.transfers;
        let folder = self.sources.folder;
        Ok(self
            .sources
            .peers
            .get_or_init(|| transfers.folder_sources(folder))
            .await
            .clone())
    }

    async fn check_parents(&self, path: &RelPath) -> Result<(), Failure> {
        let (root, path) = (self.root.clone(), path.clone());
        tokio::task::spawn_blocking(move || tree::check_parents(&root, &path))
            .await
            .map_err(|e| Failure::storage(e.to_string()))??;
        Ok(())
    }

    async fn download(&self, path: &RelPath, out: &Path) -> Result<(), Failure> {
        let mut status = self
            .transfers
            .fetch(FetchParams {
                target: FetchTarget {
                    cid: self.cid,
                    output: Some(out.to_path_buf()),
                    output_dir: None,
                    timeout: self.timeout,
                },
                in_folder: true,
                sources: self.sources().await?,
            })
            .map_err(|e| Failure::bad_input(format!("{path}: {e}")))?;
        let key = path.to_string();
        lock(&self.shared.active).insert(key.clone(), (self.size, status.clone()));
        let ended = status
            .wait_for(|s| s.state.has_ended())
            .await
            .map(|s| s.state.clone())
            .unwrap_or_else(|_| status.borrow().state.clone());
        lock(&self.shared.active).remove(&key);
        match ended {
            DownloadState::Done => Ok(()),
            DownloadState::Failed(f) => Err(Failure {
                kind: f.kind,
                message: format!("{path}: {}", f.message),
            }),
            DownloadState::Paused => {
                Err(Failure::network(format!("{path}: the download was paused")))
            }
            DownloadState::Cancelled => Err(Failure::network(format!(
                "{path}: the download was cancelled"
            ))),
            other => Err(Failure::network(format!("{path}: ended {other:?}"))),
        }
    }

    /// Whether the file at `out` is already this file (a fetch that resumes): its size
    /// and every chunk's hash match the file's manifest.
    async fn already_placed(&self, out: &Path) -> Result<bool, Failure> {
        let store = self.transfers.store().clone();
        let (cid, out, size) = (self.cid, out.to_path_buf(), self.size);
        tokio::task::spawn_blocking(move || {
            let Ok(Some(manifest)) = store.manifest(&cid) else {
                return false;
            };
            let Ok(meta) = out.symlink_metadata() else {
                return false;
            };
            if !meta.is_file() || meta.len() != size || manifest.size() != size {
                return false;
            }
            let Ok(mut file) = std::fs::File::open(&out) else {
                return false;
            };
            let mut buf = vec![0u8; manifest.chunk_size() as usize];
            for index in 0..manifest.chunk_count() {
                let len = manifest.chunk_len(index) as usize;
                if file.read_exact(&mut buf[..len]).is_err()
                    || !manifest.verify_chunk(index, &buf[..len])
                {
                    return false;
                }
            }
            true
        })
        .await
        .map_err(|e| Failure::storage(e.to_string()))
    }
}
