//! The small files of a folder fetch: files of one chunk, fetched many to a request and
//! placed in batches, instead of one engine download each.
//!
//! A download asks for the manifest, then the peer's bitfield, then the chunk (three
//! round trips), and commits twice and syncs twice per file; for a folder of thousands
//! of 4 KiB files those fixed costs were the whole fetch. A file of one chunk needs
//! none of it: its manifest is a function of its bytes (the chunk size is one of the
//! size, the encoding canonical, docs/protocol.md §3), so the fetcher asks the folder's
//! providers for chunk 0 of each such file directly, many files in one `Chunks` batch
//! ([`small_ask`](super::small_ask), [`BATCHES_PER_PEER`] batches in flight per
//! provider), or one `Chunk` request per file ([`PER_PEER`] in flight) to a provider
//! that does not answer batches; it rebuilds the manifest from the bytes that arrive
//! and keeps them only if it hashes to the file's CID. Verified files are placed in
//! batches ([`small_place`](super::small_place): [`chunk_store::Store::place_fetched`],
//! one sync of each directory and one commit per batch) and announced in batches.
//!
//! Nothing here bans a peer: bytes that do not rebuild the CID (a peer whose manifest
//! uses another chunk size would send those too) send the file to the engine, which
//! gets the manifest and bans a peer whose chunk fails it. So does a file no provider
//! sends, and one the store already knows (complete: it is copied out; partial: the
//! download resumes).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chunk_store::Fetched;
use dht_proto::manifest::{chunk_size_for, DEFAULT_CHUNK_SIZE};
use dht_proto::{Cid, Manifest, RelPath};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::watch;

use super::fetch::{report, FileGroup, Shared};
use super::small_ask::{ask_batch, ask_one, take_batch, Asked, BATCHES_PER_PEER};
use super::small_place::{Batches, Ready};
use super::sources::MAX_FOLDER_SOURCES;
use super::tree;
use super::FolderStatus;
use crate::transfer::status::Failure;
use crate::transfer::Transfers;

/// The largest file fetched here: one chunk of the default size.
pub(super) const SMALL_FILE_MAX: u64 = DEFAULT_CHUNK_SIZE as u64;
/// Chunk requests in flight to one provider. Each carries a few KiB, so the round
/// trip, not the bytes, sets the pace: on a loaded machine one took about 10 ms with 16
/// in flight. The responder's read budget is 32 permits, one per small chunk
/// (docs/protocol.md §5): this leaves 8 of them to other requesters.
pub(super) const PER_PEER: usize = 24;
/// Bytes received and not yet placed at most; past this no new request goes out.
const BUFFERED_BYTES: u64 = 64 << 20;
/// Files larger than this are verified on a blocking thread.
const HASH_INLINE_MAX: u64 = 64 << 10;
/// A provider that answered `Choked` (or a limit of ours refused a request to it) is
/// asked nothing more for this long (as the engine does).
const BACKOFF: Duration = Duration::from_millis(500);
/// Failed requests after which a provider is asked nothing more by this fetch.
const MAX_FAILURES: u32 = 3;
/// How often the loop wakes up with nothing arriving (a provider's backoff ended, the
/// folder's status is due).
const TICK: Duration = Duration::from_millis(100);

/// A small file of the tree that no engine download handles.
pub(super) struct Wanted {
    pub(super) cid: Cid,
    pub(super) size: u64,
    pub(super) path: RelPath,
    pub(super) out: PathBuf,
    pub(super) executable: bool,
    /// Providers (by their index) asked for it without getting it.
    pub(super) tried: u32,
}

/// One of the folder's providers.
struct Provider {
    peer: PeerId,
    /// Requests in flight: batches, or single files once it answers no batches.
    in_flight: usize,
    failures: u32,
    wait_until: Option<Instant>,
    /// Whether it is sent batches (until one fails).
    batches: bool,
}

impl Provider {
    fn can_take(&self, now: Instant) -> bool {
        let most = if self.batches {
            BATCHES_PER_PEER
        } else {
            PER_PEER
        };
        self.in_flight < most
            && self.failures < MAX_FAILURES
            && self.wait_until.is_none_or(|t| t <= now)
    }
}

/// What came back about one file.
pub(super) enum Answer {
    /// The bytes rebuilt the file's CID: its manifest.
    Verified(Vec<u8>, Vec<u8>),
    /// Bytes came, but not the file's.
    Unverified,
    /// Ask this provider again later; no fault of its.
    Later,
    /// This provider does not send it.
    NotHere { blame: bool },
}

/// The manifest of a file of one chunk whose bytes are `data`; `None` if the file would
/// have more than one.
fn manifest_of_one_chunk(data: &[u8]) -> Option<Manifest> {
    let size = data.len() as u64;
    let chunk_size = chunk_size_for(size)?;
    if size > u64::from(chunk_size) {
        return None;
    }
    let chunks = if data.is_empty() {
        Vec::new()
    } else {
        vec![*blake3::hash(data).as_bytes()]
    };
    Manifest::new(size, chunk_size, chunks).ok()
}

/// The manifest bytes of `data` if they are the file `cid`.
fn rebuilt_manifest(cid: &Cid, data: &[u8]) -> Option<Vec<u8>> {
    let bytes = manifest_of_one_chunk(data)?.encode();
    (Cid::for_manifest_bytes(&bytes) == *cid).then_some(bytes)
}

/// What the small-file fetch needs from the folder fetch.
pub(super) struct SmallFetch<'a> {
    pub transfers: &'a Transfers,
    pub root: &'a Path,
    pub shared: &'a Arc<Shared>,
    pub status: &'a watch::Sender<FolderStatus>,
    pub started: Instant,
}

impl SmallFetch<'_> {
    /// Fetches and places the small files of `groups` (each file's first path; the
    /// others are left to the engine, which copies the file out of the store); returns
    /// what is left for the engine: the other groups, and the files this could not do.
    pub(super) async fn run(
        &self,
        groups: Vec<FileGroup>,
        sources: impl std::future::Future<Output = Vec<PeerId>>,
    ) -> Result<Vec<FileGroup>, Failure> {
        let (mut left, wanted, placed) = self.sort(groups).await?;
        let mut fetch = Batches::default();
        for ready in placed {
            fetch.ready.push(ready);
        }
        if !wanted.is_empty() {
            let peers = sources.await;
            let mut providers: Vec<Provider> = peers
                .into_iter()
                .take(MAX_FOLDER_SOURCES)
                .map(|peer| Provider {
                    peer,
                    in_flight: 0,
                    failures: 0,
                    wait_until: None,
                    batches: true,
                })
                .collect();
            if providers.is_empty() {
                left.extend(wanted.into_iter().map(Wanted::into_group));
            } else {
                self.request_all(wanted, &mut providers, &mut fetch, &mut left)
                    .await?;
            }
        }
        fetch.flush_all(self).await?;
        report(self.status, self.shared, self.started);
        Ok(merged(left))
    }

    /// Sorts the groups: those the engine does (large files, files the store knows, the
    /// second and later paths of a file), the small files to fetch, and those found in
    /// place already (a fetch cut short before its batch's commit).
    async fn sort(
        &self,
        groups: Vec<FileGroup>,
    ) -> Result<(Vec<FileGroup>, Vec<Wanted>, Vec<Ready>), Failure> {
        let store = self.transfers.store().clone();
        let root = self.root.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut left = Vec::new();
            let mut wanted = Vec::new();
            let mut placed = Vec::new();
            for mut group in groups {
                if group.size > SMALL_FILE_MAX || group.paths.is_empty() {
                    left.push(group);
                    continue;
                }
                if store.info(&group.cid).map_err(Failure::of_store)?.is_some() {
                    left.push(group);
                    continue;
                }
                let (path, executable) = group.paths.remove(0);
                let out = tree::target(&root, &path)?;
                tree::check_parents(&root, &path)?;
                let file = Wanted {
                    cid: group.cid,
                    size: group.size,
                    path,
                    out,
                    executable,
                    tried: 0,
                };
                if !group.paths.is_empty() {
                    left.push(group);
                }
                if file.out.symlink_metadata().is_err() {
                    wanted.push(file);
                    continue;
                }
                match in_place(&file) {
                    Some(manifest) => placed.push(Ready {
                        fetched: Fetched::placed(file.cid, manifest, file.out.clone()),
                        wanted: file,
                        from: None,
                    }),
                    None => {
                        return Err(Failure::bad_input(format!(
                            "{} exists and is not the folder's file",
                            file.out.display()
                        )))
                    }
                }
            }
            Ok((left, wanted, placed))
        })
        .await
        .map_err(|e| Failure::storage(e.to_string()))?
    }

    /// Asks the providers for every wanted file, [`PER_PEER`] at a time each, and
    /// places what arrives in batches.
    async fn request_all(
        &self,
        wanted: Vec<Wanted>,
        providers: &mut [Provider],
        fetch: &mut Batches,
        left: &mut Vec<FileGroup>,
    ) -> Result<(), Failure> {
        let mut queue: VecDeque<Wanted> = wanted.into();
        let mut pending = FuturesUnordered::new();
        let mut tick = tokio::time::interval(TICK);
        let all: u32 = (1 << providers.len()) - 1;
        loop {
            let now = Instant::now();
            while fetch.buffered < BUFFERED_BYTES {
                let Some(file) = queue.front() else { break };
                let Some(at) = (0..providers.len())
                    .filter(|&i| file.tried & (1 << i) == 0 && providers[i].can_take(now))
                    .min_by_key(|&i| providers[i].in_flight)
                else {
                    break;
                };
                let net = self.transfers.net().clone();
                let peer = providers[at].peer;
                providers[at].in_flight += 1;
                if providers[at].batches {
                    let files = take_batch(&mut queue, at);
                    fetch.buffered += files.iter().map(|f| f.size).sum::<u64>();
                    pending.push(futures::future::Either::Left(async move {
                        (at, ask_batch(net, peer, files).await)
                    }));
                } else {
                    let Some(file) = queue.pop_front() else { break };
                    fetch.buffered += file.size;
                    pending.push(futures::future::Either::Right(async move {
                        (at, ask_one(net, peer, file).await)
                    }));
                }
            }
            // Files every usable provider was asked for go to the engine.
            let dead = (0..providers.len())
                .filter(|&i| providers[i].failures >= MAX_FAILURES)
                .fold(0u32, |m, i| m | (1 << i));
            if queue.iter().any(|f| f.tried | dead == all) {
                let (done, keep): (Vec<Wanted>, Vec<Wanted>) =
                    queue.drain(..).partition(|f| f.tried | dead == all);
                queue = keep.into();
                left.extend(done.into_iter().map(Wanted::into_group));
            }
            if !fetch.is_flushing() && !fetch.ready.is_empty() {
                fetch.start_flush(self);
            }
            if queue.is_empty() && pending.is_empty() {
                return Ok(());
            }
            tokio::select! {
                Some((at, asked)) = pending.next(), if !pending.is_empty() => {
                    let provider: &mut Provider = &mut providers[at];
                    provider.in_flight -= 1;
                    let answered = match asked {
                        Asked::Files(answered) => answered,
                        Asked::NoBatches(files) => {
                            tracing::debug!(peer = %provider.peer, "no batches: one request per file");
                            provider.batches = false;
                            for file in files.into_iter().rev() {
                                fetch.buffered -= file.size;
                                queue.push_front(file);
                            }
                            continue;
                        }
                    };
                    for (mut file, answer) in answered.into_iter().rev() {
                    match answer {
                        Answer::Verified(manifest, data) => {
                            provider.failures = 0;
                            fetch.ready.push(Ready {
                                fetched: Fetched {
                                    cid: file.cid,
                                    manifest_bytes: manifest,
                                    data: Some(data),
                                    output: file.out.clone(),
                                },
                                wanted: file,
                                from: Some(provider.peer),
                            });
                        }
                        Answer::Unverified => {
                            fetch.buffered -= file.size;
                            left.push(file.into_group());
                        }
                        Answer::Later => {
                            fetch.buffered -= file.size;
                            provider.wait_until = Some(Instant::now() + BACKOFF);
                            queue.push_front(file);
                        }
                        Answer::NotHere { blame } => {
                            fetch.buffered -= file.size;
                            if blame {
                                provider.failures += 1;
                                self.transfers.note_failure(provider.peer);
                            }
                            file.tried |= 1 << at;
                            queue.push_front(file);
                        }
                    }
                    }
                }
                flushed = fetch.wait_flush(), if fetch.is_flushing() => {
                    fetch.finish_flush(self, flushed).await?;
                }
                _ = tick.tick() => report(self.status, self.shared, self.started),
            }
        }
    }
}

/// The groups with every path of one file in one group (a file this could not fetch
/// joins the group of its other paths), so that the engine fetches each file once.
fn merged(groups: Vec<FileGroup>) -> Vec<FileGroup> {
    let mut out: Vec<FileGroup> = Vec::with_capacity(groups.len());
    let mut index: std::collections::HashMap<Cid, usize> = std::collections::HashMap::new();
    for group in groups {
        match index.get(&group.cid) {
            Some(&at) => {
                // The file's first path comes first: it is fetched, the others copied.
                let mut paths = group.paths;
                paths.append(&mut out[at].paths);
                out[at].paths = paths;
            }
            None => {
                index.insert(group.cid, out.len());
                out.push(group);
            }
        }
    }
    out
}

/// Whether `data` is `file` (its manifest rebuilt from it hashes to its CID).
pub(super) async fn check(file: &Wanted, data: Vec<u8>) -> Answer {
    if data.len() as u64 != file.size {
        return Answer::Unverified;
    }
    let cid = file.cid;
    let verified = if file.size <= HASH_INLINE_MAX {
        rebuilt_manifest(&cid, &data).map(|m| (m, data))
    } else {
        tokio::task::spawn_blocking(move || rebuilt_manifest(&cid, &data).map(|m| (m, data)))
            .await
            .ok()
            .flatten()
    };
    match verified {
        Some((manifest, data)) => Answer::Verified(manifest, data),
        None => Answer::Unverified,
    }
}

/// The manifest of the file found at `file.out`, if it is that file.
fn in_place(file: &Wanted) -> Option<Vec<u8>> {
    let meta = file.out.symlink_metadata().ok()?;
    if !meta.is_file() || meta.len() != file.size {
        return None;
    }
    let data = std::fs::read(&file.out).ok()?;
    rebuilt_manifest(&file.cid, &data)
}

impl Wanted {
    fn into_group(self) -> FileGroup {
        FileGroup {
            cid: self.cid,
            size: self.size,
            paths: vec![(self.path, self.executable)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_rebuilt_from_the_bytes_names_the_file_and_nothing_else() {
        for len in [0usize, 1, 4096, 300_000, DEFAULT_CHUNK_SIZE as usize] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let manifest = Manifest::new(
                len as u64,
                DEFAULT_CHUNK_SIZE,
                data.chunks(DEFAULT_CHUNK_SIZE as usize)
                    .map(|c| *blake3::hash(c).as_bytes())
                    .collect(),
            )
            .unwrap();
            let cid = manifest.cid();
            assert_eq!(rebuilt_manifest(&cid, &data), Some(manifest.encode()));
            // One byte off, or the same bytes under a manifest of another chunk size.
            if len > 0 {
                let mut other = data.clone();
                other[len / 2] ^= 1;
                assert_eq!(rebuilt_manifest(&cid, &other), None);
                let odd = Manifest::new(
                    len as u64,
                    dht_proto::manifest::MAX_CHUNK_SIZE,
                    vec![*blake3::hash(&data).as_bytes()],
                )
                .unwrap();
                assert_eq!(rebuilt_manifest(&odd.cid(), &data), None);
            }
        }
        // Two chunks' worth is not a file of one chunk.
        let big = vec![1u8; DEFAULT_CHUNK_SIZE as usize + 1];
        assert!(manifest_of_one_chunk(&big).is_none());
    }
}
