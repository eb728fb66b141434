//! Hostile directory manifests, sent by a peer to the real engine: a bare probe peer
//! connected to a fetcher answers its manifest request with crafted bytes that hash to
//! the CID asked for (so only the content can be refused). Every one must be refused
//! before anything is written, and its sender banned. And a whole folder between two
//! in-process nodes, for the engine's side of the round trip.

use std::path::Path;
use std::time::Duration;

use dht_proto::dirmanifest::MAX_DIR_ENTRIES;
use dht_proto::{Cid, Request, Response};
use serde::Serialize;

use super::{FolderState, FolderStatus};
use crate::transfer::tests::{Node, Probe, Setup, DEADLINE};
use crate::transfer::FetchTarget;

#[derive(Serialize)]
struct WireDir {
    t: String,
    v: u32,
    entries: Vec<WireEntry>,
}

#[derive(Serialize)]
struct WireEntry {
    c: Option<Cid>,
    p: Vec<String>,
    s: u64,
    x: bool,
}

/// A manifest with these paths, each a file with `file`'s CID, encoded with no check.
fn crafted(paths: &[Vec<String>], file: Cid) -> Vec<u8> {
    dht_proto::codec::encode(&WireDir {
        t: "dir".into(),
        v: 1,
        entries: paths
            .iter()
            .map(|p| WireEntry {
                c: Some(file),
                p: p.clone(),
                s: 10,
                x: false,
            })
            .collect(),
    })
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

/// Waits for the fetch to end.
pub(super) async fn ended(status: &mut tokio::sync::watch::Receiver<FolderStatus>) -> FolderStatus {
    tokio::time::timeout(DEADLINE, status.wait_for(FolderStatus::has_ended))
        .await
        .expect("the folder fetch ends in time")
        .expect("the fetch is kept")
        .clone()
}

/// Fetches folder `cid` into `copy` under the node's directory; returns where, and how
/// the fetch ended.
pub(super) async fn fetched(
    node: &Node,
    cid: Cid,
    timeout: Duration,
) -> (std::path::PathBuf, FolderStatus) {
    let root = node.dir.path().join("copy");
    let mut status = node
        .transfers
        .fetch_folder(FetchTarget {
            cid,
            output: Some(root.clone()),
            output_dir: None,
            timeout,
        })
        .expect("the fetch starts");
    (root, ended(&mut status).await)
}

/// Serves `bytes` to the fetcher as the manifest of their CID and checks that the fetch
/// writes nothing and bans the probe.
async fn refused(fetcher: &Node, what: &str, bytes: Vec<u8>) {
    let cid = Cid::for_manifest_bytes(&bytes);
    let mut probe = Probe::start(fetcher).await;
    let root = fetcher
        .dir
        .path()
        .join(format!("out-{}", what.replace(' ', "-")));
    let mut status = fetcher
        .transfers
        .fetch_folder(FetchTarget {
            cid,
            output: Some(root.clone()),
            output_dir: None,
            timeout: Duration::from_secs(2),
        })
        .expect("the fetch starts");
    // Answer every manifest request with the crafted bytes.
    let serve = async {
        while let Some(inbound) = probe.inbound.recv().await {
            let answer = match inbound.request {
                Request::Manifest { .. } => Response::Manifest {
                    manifest: serde_bytes::ByteBuf::from(bytes.clone()),
                    name: Some("evil".into()),
                },
                _ => Response::NotFound,
            };
            probe.net.respond(inbound.channel, answer).await;
        }
    };
    let end = tokio::select! {
        end = ended(&mut status) => end,
        () = serve => panic!("the probe's network stopped"),
    };
    assert!(
        matches!(end.state, FolderState::Failed(_)),
        "{what}: {:?}",
        end.state
    );
    assert!(!root.exists(), "{what}: the target was created");
    assert!(
        fetcher.transfers.is_banned(&probe.net.local_peer_id()),
        "{what}: the sender is not banned"
    );
    let store = fetcher.transfers.store().clone();
    assert!(store.folder(&cid).unwrap().is_none(), "{what}: kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_manifests_from_a_peer_are_refused_before_anything_is_written() {
    let fetcher = Node::start(Setup::default()).await;
    let file = Cid::for_manifest_bytes(b"any file manifest");
    // Empty directories: the smallest entries, so that the manifest fits a response.
    let many = dht_proto::codec::encode(&WireDir {
        t: "dir".into(),
        v: 1,
        entries: (0..=MAX_DIR_ENTRIES)
            .map(|i| WireEntry {
                c: None,
                p: vec![format!("{i}")],
                s: 0,
                x: false,
            })
            .collect(),
    });
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot dot", crafted(&[path(&["..", "escape.txt"])], file)),
        (
            "dot dot inside",
            crafted(&[path(&["a", "..", "..", "x"])], file),
        ),
        ("absolute", crafted(&[path(&["/etc", "passwd"])], file)),
        (
            "empty first name",
            crafted(&[path(&["", "etc", "passwd"])], file),
        ),
        ("backslash", crafted(&[path(&["..\\..\\x"])], file)),
        ("nul", crafted(&[path(&["a\0b"])], file)),
        ("newline", crafted(&[path(&["a\nb"])], file)),
        ("too long a name", crafted(&[vec!["n".repeat(256)]], file)),
        ("too deep", crafted(&[vec!["d".to_string(); 33]], file)),
        ("duplicates", crafted(&[path(&["a"]), path(&["a"])], file)),
        (
            "file as directory",
            crafted(&[path(&["a"]), path(&["a", "b"])], file),
        ),
        ("over the entry limit", many),
        ("no path", crafted(&[vec![]], file)),
    ];
    for (what, bytes) in cases {
        refused(&fetcher, what, bytes).await;
    }
    // Nothing at all was written beside the store.
    let written: Vec<String> = std::fs::read_dir(fetcher.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "store")
        .collect();
    assert!(written.is_empty(), "{written:?}");
}

pub(super) fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Adds the directory `src` to `node`'s store (copy mode, listed).
pub(super) async fn add_copy(node: &Node, src: std::path::PathBuf) -> super::FolderAdded {
    node.transfers
        .add_folder(
            src,
            super::FolderAddOptions {
                mode: chunk_store::ImportMode::Copy,
                listed: true,
                follow_symlinks: false,
                name: None,
            },
            |_| {},
        )
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_crosses_between_two_nodes_with_identical_files_fetched_once() {
    let seeder = Node::start(Setup::default()).await;
    let src = seeder.dir.path().join("tree");
    write(&src, "a/one.txt", b"same bytes");
    write(&src, "b/two.txt", b"same bytes");
    write(&src, "c.bin", &vec![7u8; 300_000]);
    let added = add_copy(&seeder, src.clone()).await;
    assert_eq!((added.files, added.unique_files), (3, 2));
    let fetcher = Node::start(Setup {
        boot: Some(seeder.addr.clone()),
        ..Setup::default()
    })
    .await;
    let (root, end) = fetched(&fetcher, added.cid, Duration::from_secs(20)).await;
    assert_eq!(end.state, FolderState::Done, "{end:?}");
    assert_eq!((end.files_done, end.files_total), (3, 3));
    assert_eq!(end.bytes_done, end.bytes_total);
    for rel in ["a/one.txt", "b/two.txt", "c.bin"] {
        assert_eq!(
            std::fs::read(root.join(rel)).unwrap(),
            std::fs::read(src.join(rel)).unwrap()
        );
    }
    // Two distinct files in the fetcher's store, neither listed on its own; the folder
    // is complete and listed.
    let store = fetcher.transfers.store().clone();
    let files = store.list().unwrap();
    assert_eq!(files.len(), 2);
    assert!(files.iter().all(|f| !f.listed));
    let folder = store.folder(&added.cid).unwrap().unwrap();
    assert!(folder.record.complete && folder.record.listed);
    assert_eq!(folder.record.fetch_to, None);
}

/// A folder's files are announced together: the reprovider sends their records grouped
/// (one `ADD_PROVIDER` stream per server for a region's keys), not one round per file,
/// on the side that adds the folder and on the side that fetches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folders_files_are_announced_in_batches() {
    const FILES: usize = 60;
    let seeder = Node::start(Setup::default()).await;
    let fetcher = Node::start(Setup {
        boot: Some(seeder.addr.clone()),
        ..Setup::default()
    })
    .await;
    for node in [&seeder, &fetcher] {
        crate::transfer::tests::eventually("a routing table", || async {
            (node.net.info().await.ok()?.routing_table_peers >= 1).then_some(())
        })
        .await;
    }
    let src = seeder.dir.path().join("tree");
    for i in 0..FILES {
        write(
            &src,
            &format!("d{}/f{i}", i % 4),
            format!("file {i}").as_bytes(),
        );
    }
    let announced_all = |node: &Node| {
        let net = node.net.clone();
        async move {
            crate::transfer::tests::eventually("every file announced", || async {
                let all = net.announcements().await.ok()?;
                (all.len() > FILES && all.iter().all(|a| a.peers.is_some())).then_some(())
            })
            .await;
            net.reprovide_stats().await.unwrap()
        }
    };
    let before = seeder.net.reprovide_stats().await.unwrap();
    let added = add_copy(&seeder, src).await;
    let after = announced_all(&seeder).await;
    let batches = after.batches - before.batches;
    // One command for the files, one for the folder.
    assert!(batches <= 2, "add: {batches} batches for {FILES} files");

    let before = fetcher.net.reprovide_stats().await.unwrap();
    let mut status = fetcher
        .transfers
        .fetch_folder(FetchTarget {
            cid: added.cid,
            output: Some(fetcher.dir.path().join("copy")),
            output_dir: None,
            timeout: Duration::from_secs(20),
        })
        .unwrap();
    let end = ended(&mut status).await;
    assert_eq!(end.state, FolderState::Done, "{end:?}");
    let after = announced_all(&fetcher).await;
    let batches = after.batches - before.batches;
    // One per placed batch of files, and the folder's.
    assert!(
        batches < FILES as u64 / 6,
        "fetch: {batches} batches for {FILES} files"
    );
}
