//! The small files of a folder fetch: many to a `Chunks` batch from a provider that
//! answers batches, one `Chunk` request each from one that does not (an older peer),
//! never a manifest or bitfield request of their own; bytes that do not rebuild a file's
//! CID send it to the engine without a ban. Against a bare probe peer (which answers by
//! hand and sees every request) and against a real seeder (whose upload side answers
//! batches, and which misbehaves on request).

use std::collections::HashMap;
use std::time::Duration;

use dht_proto::dirmanifest::{DirEntry, EntryKind};
use dht_proto::message::BatchAnswer;
use dht_proto::{Bitfield, Cid, DirManifest, Manifest, RelPath, Request, Response};
use serde_bytes::ByteBuf;

use super::small_ask::FILES_PER_BATCH;
use super::tests::{add_copy, ended, fetched, write};
use super::FolderState;
use crate::transfer::serve::faults::Faults;
use crate::transfer::tests::{request_kind, Node, Probe, Setup};
use crate::transfer::FetchTarget;

/// How the probe answers a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Batches {
    /// As p2pd does.
    Answered,
    /// Not at all: the stream ends without an answer, as from a peer that does not know
    /// the request.
    Dropped,
    /// `Error`.
    Refused,
}

/// Each file's manifest and bytes, by CID.
type Files = HashMap<Cid, (Vec<u8>, Vec<u8>)>;

/// A folder of `count` small files (one in 50 empty), with its files.
fn small_folder(count: usize) -> (DirManifest, Files) {
    let mut files = HashMap::new();
    let mut entries = Vec::new();
    for i in 0..count {
        let data = format!("small file number {i}\n")
            .repeat(i % 50 * 7)
            .into_bytes();
        let manifest = Manifest::new(
            data.len() as u64,
            dht_proto::manifest::DEFAULT_CHUNK_SIZE,
            if data.is_empty() {
                vec![]
            } else {
                vec![*blake3::hash(&data).as_bytes()]
            },
        )
        .unwrap();
        entries.push(DirEntry {
            path: RelPath::parse(&format!("d{}/f{i}", i % 3)).unwrap(),
            kind: EntryKind::File {
                cid: manifest.cid(),
                size: data.len() as u64,
                executable: i % 5 == 0,
            },
        });
        files.insert(manifest.cid(), (manifest.encode(), data));
    }
    (DirManifest::new(entries).unwrap(), files)
}

/// Fetches a folder of small files from a probe that answers batches as `batches`
/// says; returns how often each kind of request was made about each file.
async fn fetch_from_probe(batches: Batches) -> HashMap<(&'static str, Cid), usize> {
    const FILES: usize = 150;
    let fetcher = Node::start(Setup::default()).await;
    let mut probe = Probe::start(&fetcher).await;
    let (dir, files) = small_folder(FILES);
    let dir_bytes = dir.encode();
    let dir_cid = Cid::for_manifest_bytes(&dir_bytes);
    // The file whose first answer is someone else's bytes.
    let odd = dir.files().nth(7).map(|(_, cid, _, _)| *cid).unwrap();
    let root = fetcher.dir.path().join("small");
    let mut status = fetcher
        .transfers
        .fetch_folder(FetchTarget {
            cid: dir_cid,
            output: Some(root.clone()),
            output_dir: None,
            timeout: Duration::from_secs(20),
        })
        .unwrap();
    let mut asked: HashMap<(&'static str, Cid), usize> = HashMap::new();
    let batch_cid = Cid::for_manifest_bytes(b"batches");
    let serve = async {
        while let Some(inbound) = probe.inbound.recv().await {
            let kind = request_kind(&inbound.request);
            let bytes_of = |cid: &Cid, first: bool| match files.get(cid) {
                Some(_) if *cid == odd && first => b"not this file".to_vec(),
                Some((_, data)) => data.clone(),
                None => Vec::new(),
            };
            let (about, answer) = match &inbound.request {
                Request::Manifest { cid } if *cid == dir_cid => (
                    *cid,
                    Response::Manifest {
                        manifest: ByteBuf::from(dir_bytes.clone()),
                        name: Some("small".into()),
                    },
                ),
                Request::Manifest { cid } => (
                    *cid,
                    match files.get(cid) {
                        Some((manifest, _)) => Response::Manifest {
                            manifest: ByteBuf::from(manifest.clone()),
                            name: None,
                        },
                        None => Response::NotFound,
                    },
                ),
                Request::Bitfield { cid, .. } => (
                    *cid,
                    Response::Bitfield {
                        have: Bitfield::full(1),
                    },
                ),
                Request::Chunk { cid, .. } => {
                    let first = !asked.contains_key(&("chunk", *cid))
                        && !asked.contains_key(&("in a batch", *cid));
                    (
                        *cid,
                        Response::Chunk {
                            data: ByteBuf::from(bytes_of(cid, first)),
                        },
                    )
                }
                Request::Chunks { .. } if batches == Batches::Dropped => {
                    *asked.entry((kind, batch_cid)).or_default() += 1;
                    // The channel goes unanswered.
                    continue;
                }
                Request::Chunks { .. } if batches == Batches::Refused => (
                    batch_cid,
                    Response::Error {
                        message: "unknown request".into(),
                    },
                ),
                Request::Chunks { cids } => {
                    let answers = cids
                        .iter()
                        .map(|cid| {
                            let first = !asked.contains_key(&("in a batch", *cid));
                            *asked.entry(("in a batch", *cid)).or_default() += 1;
                            BatchAnswer::Data(ByteBuf::from(bytes_of(cid, first)))
                        })
                        .collect();
                    (batch_cid, Response::Chunks { answers })
                }
                other => (*other.cid().unwrap(), Response::Ack),
            };
            *asked.entry((kind, about)).or_default() += 1;
            probe.net.respond(inbound.channel, answer).await;
        }
    };
    let end = tokio::select! {
        end = ended(&mut status) => end,
        () = serve => panic!("the probe's network stopped"),
    };
    assert_eq!(end.state, FolderState::Done, "{batches:?}: {end:?}");
    assert_eq!(end.files_done, FILES as u64);
    for (path, cid, _, _) in dir.files() {
        let data = &files[cid].1;
        assert_eq!(&std::fs::read(root.join(path.to_string())).unwrap(), data);
    }
    let count = |kind: &str, cid: &Cid| asked.get(&(kind, *cid)).copied().unwrap_or(0);
    assert_eq!(count("manifest", &dir_cid), 1);
    for cid in files.keys() {
        if *cid == odd {
            // The engine: the manifest, the bitfield, the chunk.
            assert_eq!(count("manifest", cid), 1);
            assert_eq!(count("bitfield", cid), 1);
            continue;
        }
        assert_eq!(count("manifest", cid), 0, "{cid}: manifest asked");
        assert_eq!(count("bitfield", cid), 0, "{cid}: bitfield asked");
    }
    assert!(!fetcher.transfers.is_banned(&probe.net.local_peer_id()));
    // Every file is in the store, tracked in place, unlisted.
    let store = fetcher.transfers.store().clone();
    for cid in files.keys() {
        let info = store.info(cid).unwrap().unwrap();
        assert_eq!(info.state, chunk_store::EntryState::Complete);
        assert!(!info.listed);
    }
    asked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_come_in_batches_from_a_peer_that_answers_them() {
    let asked = fetch_from_probe(Batches::Answered).await;
    let batches = asked[&("chunks", Cid::for_manifest_bytes(b"batches"))];
    // 150 files, 64 to a batch at most.
    assert!(
        (3..=4).contains(&batches),
        "{batches} batches for 150 files of {FILES_PER_BATCH} at most"
    );
    // Each non-empty file was in one batch, and only the odd one (whose bytes were not
    // the file's) was asked for alone, by the engine.
    let in_batches: Vec<usize> = asked
        .iter()
        .filter(|((kind, _), _)| *kind == "in a batch")
        .map(|(_, n)| *n)
        .collect();
    // 150 files, 3 of them empty (no request).
    assert_eq!(in_batches.len(), 147);
    assert!(in_batches.iter().all(|n| *n == 1), "{in_batches:?}");
    let alone: usize = asked
        .iter()
        .filter(|((kind, _), _)| *kind == "chunk")
        .map(|(_, n)| *n)
        .sum();
    assert_eq!(alone, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_does_not_answer_batches_is_asked_one_file_at_a_time() {
    for batches in [Batches::Dropped, Batches::Refused] {
        let asked = fetch_from_probe(batches).await;
        // The batches sent before the first failed (all the files fit 3), no more.
        let tried = asked[&("chunks", Cid::for_manifest_bytes(b"batches"))];
        assert!((1..=3).contains(&tried), "{batches:?}: {tried}");
        // Every non-empty file alone: the odd one twice (its bytes, then the engine).
        let alone: usize = asked
            .iter()
            .filter(|((kind, _), _)| *kind == "chunk")
            .map(|(_, n)| *n)
            .sum();
        assert_eq!(alone, 147 + 1, "{batches:?}");
    }
}

/// A seeder holding a folder of `count` small files, and a fetcher connected to it.
async fn seeder_with_folder(seeder: Setup, count: usize) -> (Node, Node, Cid, std::path::PathBuf) {
    let seeder = Node::start(seeder).await;
    let src = seeder.dir.path().join("tree");
    for i in 0..count {
        write(
            &src,
            &format!("d{}/f{i}", i % 4),
            format!("file {i} ").repeat(i % 40).as_bytes(),
        );
    }
    let added = add_copy(&seeder, src.clone()).await;
    let fetcher = Node::start(Setup {
        boot: Some(seeder.addr.clone()),
        ..Setup::default()
    })
    .await;
    (seeder, fetcher, added.cid, src)
}

/// A real seeder answers the fetcher's batches: the folder arrives in a few batch
/// requests and no single chunk request, and what it sent is counted for the fetcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_answers_a_folder_of_small_files_in_batches() {
    const FILES: usize = 200;
    let counted = Setup {
        count_requests: true,
        ..Setup::default()
    };
    let (seeder, fetcher, cid, src) = seeder_with_folder(counted, FILES).await;
    let (root, end) = fetched(&fetcher, cid, Duration::from_secs(20)).await;
    assert_eq!(end.state, FolderState::Done, "{end:?}");
    assert_eq!(end.files_done, FILES as u64);
    for i in 0..FILES {
        let rel = format!("d{}/f{i}", i % 4);
        assert_eq!(
            std::fs::read(root.join(&rel)).unwrap(),
            std::fs::read(src.join(&rel)).unwrap()
        );
    }
    let asked = seeder.asked.lock().unwrap().clone();
    let batches = asked.get("chunks").copied().unwrap_or(0);
    assert!(
        (FILES / FILES_PER_BATCH..=FILES / FILES_PER_BATCH + 2).contains(&batches),
        "{asked:?}"
    );
    assert_eq!(asked.get("chunk"), None, "{asked:?}");
    let sent = seeder
        .transfers
        .traffic()
        .get(&fetcher.net.local_peer_id())
        .map_or(0, |t| t.sent);
    assert_eq!(
        sent, end.bytes_total,
        "bytes counted as sent to the fetcher"
    );
}

/// A seeder that corrupts what it sends: no bytes of it are kept (each file goes to
/// the engine, which finds the chunk bad), the seeder ends up banned, and the fetch
/// fails without writing a wrong file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupting_seeders_batches_are_not_kept() {
    let corrupt = Setup {
        faults: Faults {
            corrupt_rate: 1.0,
            ..Faults::default()
        },
        count_requests: true,
        ..Setup::default()
    };
    let (seeder, fetcher, cid, _) = seeder_with_folder(corrupt, 20).await;
    let (root, end) = fetched(&fetcher, cid, Duration::from_secs(2)).await;
    assert!(matches!(end.state, FolderState::Failed(_)), "{end:?}");
    assert!(seeder.asked.lock().unwrap().get("chunks").is_some());
    assert!(fetcher.transfers.is_banned(&seeder.net.local_peer_id()));
    // Only the empty file may be in place; nothing else was written.
    for i in 1..20 {
        let rel = format!("d{}/f{i}", i % 4);
        let written = std::fs::read(root.join(&rel)).ok();
        assert!(written.is_none(), "{rel} came from a corrupting seeder");
    }
}

/// The upload side's answers to a batch: held files of one chunk with their bytes, a
/// file not held, of several chunks or private (no grant) `NotFound`; to a banned peer,
/// or from a freeloading seeder, `Choked` as a whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_answered_file_by_file_and_refused_as_a_chunk_would_be() {
    let node = Node::start(Setup::default()).await;
    let small = node.add_file("small.bin", 5000, 1).await;
    let other = node.add_file("other.bin", 300, 2).await;
    let big = node.add_file("big.bin", (1 << 20) + 1, 3).await;
    let private = node.add_file("private.bin", 100, 4).await;
    let unknown = Cid::for_manifest_bytes(b"not held");
    node.transfers
        .inner
        .share_gate
        .set_private([crate::share::gate::Covered {
            root: private,
            members: &[],
        }]);
    let probe = Probe::start(&node).await;
    let cids = vec![small, unknown, big, private, other];
    let answers = match probe
        .ask(&node, Request::Chunks { cids: cids.clone() })
        .await
    {
        Response::Chunks { answers } => answers,
        other => panic!("{other:?}"),
    };
    let data = |name: &str| std::fs::read(node.dir.path().join(name)).unwrap();
    assert_eq!(
        answers,
        vec![
            BatchAnswer::Data(ByteBuf::from(data("small.bin"))),
            BatchAnswer::NotFound,
            BatchAnswer::NotFound,
            BatchAnswer::NotFound,
            BatchAnswer::Data(ByteBuf::from(data("other.bin"))),
        ]
    );
    let me = probe.net.local_peer_id();
    let sent = node.transfers.traffic().get(&me).map_or(0, |t| t.sent);
    assert_eq!(sent, 5300, "the batch's bytes are counted as sent");
    // With a grant, the private file is sent too.
    node.transfers.inner.share_gate.grant(
        me,
        private,
        std::time::Instant::now() + Duration::from_secs(60),
    );
    let answers = match probe
        .ask(
            &node,
            Request::Chunks {
                cids: vec![private],
            },
        )
        .await
    {
        Response::Chunks { answers } => answers,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        answers,
        vec![BatchAnswer::Data(ByteBuf::from(data("private.bin")))]
    );
    // A banned peer is choked.
    node.transfers.ban(me);
    let answer = probe
        .ask(&node, Request::Chunks { cids: vec![small] })
        .await;
    assert_eq!(answer, Response::Choked);

    // A freeloading seeder refuses batches as it refuses chunks.
    let freeloader = Node::start(Setup {
        faults: Faults {
            freeload: true,
            ..Faults::default()
        },
        ..Setup::default()
    })
    .await;
    let held = freeloader.add_file("small.bin", 5000, 1).await;
    let probe = Probe::start(&freeloader).await;
    let answer = probe
        .ask(&freeloader, Request::Chunks { cids: vec![held] })
        .await;
    assert_eq!(answer, Response::Choked);
}
