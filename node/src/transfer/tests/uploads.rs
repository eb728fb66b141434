//! The upload side as another implementation sees it: requests sent by hand from a
//! probe (a bare network node) and the answers docs/protocol.md §5 specifies.

use std::time::Duration;

use chunk_store::ImportMode;
use dht_proto::{Bitfield, Cid, Codec, Request, Response};

use super::{eventually, seeder_and_fetcher, until, Node, Probe, Setup};
use crate::transfer::reputation::rules::Taking;
use crate::transfer::DownloadState;

const MIB: usize = 1 << 20;

use crate::transfer::answer_name as short;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_cid_is_answered_like_a_file_not_held() {
    let node = Node::start(Setup::default()).await;
    let file = node.add_file("f.bin", MIB + 1, 3).await;
    let probe = Probe::start(&node).await;
    let raw = Cid::new(Codec::Raw, *file.hash());
    let bitfield = Bitfield::new(2);
    let cases = [
        (Request::Manifest { cid: raw }, "not found"),
        (Request::Chunk { cid: raw, index: 0 }, "not found"),
        (
            Request::Bitfield {
                cid: raw,
                have: bitfield,
            },
            "not found",
        ),
        (Request::Have { cid: raw, index: 0 }, "ack"),
        (Request::Cancel { cid: raw, index: 0 }, "ack"),
        // The same answers as for a file nobody holds.
        (
            Request::Cancel {
                cid: file,
                index: 9,
            },
            "ack",
        ),
        (
            Request::Have {
                cid: file,
                index: 9,
            },
            "ack",
        ),
        (
            Request::Chunk {
                cid: file,
                index: 9,
            },
            "not found",
        ),
    ];
    for (request, expected) in cases {
        let answer = probe.ask(&node, request.clone()).await;
        assert_eq!(short(&answer), expected, "{request:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bitfield_of_the_wrong_length_is_ignored_and_the_question_answered() {
    // The node downloads a 6-chunk file slowly from a seeder; two probes send it their
    // bitfields meanwhile, one of the wrong length.
    let seeder = Setup {
        upload_rate: Some(MIB as u64),
        ..Setup::default()
    };
    let (_seeder, node, cid, mut status) =
        seeder_and_fetcher(seeder, Setup::default(), 6 * MIB, 4).await;
    until("the manifest", &mut status, |s| s.chunks_total > 0).await;
    let mut wrong = Probe::start(&node).await;
    let mut right = Probe::start(&node).await;
    for (probe, len) in [(&wrong, 3), (&right, 6)] {
        let answer = probe
            .ask(
                &node,
                Request::Bitfield {
                    cid,
                    have: Bitfield::new(len),
                },
            )
            .await;
        // Answered with the node's own bitfield, of the file's true length.
        let Response::Bitfield { have } = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(have.len(), 6);
    }
    until("the end", &mut status, |s| s.state == DownloadState::Done).await;
    // Only the probe whose bitfield counted was told of new chunks (and asked for its
    // bitfield in turn).
    let haves = |probe: &mut Probe| {
        let mut told = 0;
        while let Ok(request) = probe.inbound.try_recv() {
            told += usize::from(matches!(request.request, Request::Have { .. }));
        }
        told
    };
    assert!(
        haves(&mut right) > 0,
        "the peer with a valid bitfield gets Haves"
    );
    assert_eq!(haves(&mut wrong), 0, "an ignored bitfield gets none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_is_free_as_soon_as_its_peer_leaves() {
    let node = Node::start(Setup {
        upload_slots: Some(8),
        ..Setup::default()
    })
    .await;
    let cid = node.add_file("nine.bin", 9 * MIB, 5).await;
    // Eight peers each take a chunk, holding the eight slots, and leave.
    for index in 0..8 {
        let probe = Probe::start(&node).await;
        let answer = probe.ask(&node, Request::Chunk { cid, index }).await;
        assert_eq!(short(&answer), "chunk");
    }
    eventually("the eight peers gone", || async {
        (node.net.connected_peers().await.is_empty()).then_some(())
    })
    .await;
    // A ninth is served at once, not at the next rechoke (up to 10 s later).
    let ninth = Probe::start(&node).await;
    let started = tokio::time::Instant::now();
    loop {
        let answer = ninth.ask(&node, Request::Chunk { cid, index: 8 }).await;
        if short(&answer) == "chunk" {
            break;
        }
        assert_eq!(short(&answer), "choked");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "choked for {:?} while nobody else downloads",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_goes_from_a_peer_that_stopped_asking_to_the_next_that_asks() {
    let node = Node::start(Setup {
        upload_slots: Some(2),
        ..Setup::default()
    })
    .await;
    let cid = node.add_file("three.bin", 3 * MIB, 6).await;
    // Two peers take a chunk each and stay connected, asking nothing more.
    let mut idle = Vec::new();
    for index in 0..2 {
        let probe = Probe::start(&node).await;
        assert_eq!(
            short(&probe.ask(&node, Request::Chunk { cid, index }).await),
            "chunk"
        );
        idle.push(probe);
    }
    let third = Probe::start(&node).await;
    let started = tokio::time::Instant::now();
    let waited = loop {
        let answer = third.ask(&node, Request::Chunk { cid, index: 2 }).await;
        if short(&answer) == "chunk" {
            break started.elapsed();
        }
        assert_eq!(short(&answer), "choked");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "still choked");
    };
    // Served once the others had asked nothing for 2 s (`SLOT_IDLE`).
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_budget_is_32_mib_and_past_it_chunks_are_choked_but_haves_acked() {
    // Capped at 64 KiB/s, every accepted 1 MiB chunk waits for seconds: the budget
    // stays spent while the test looks.
    let node = Node::start(Setup {
        upload_rate: Some(64 << 10),
        ..Setup::default()
    })
    .await;
    let cid = node.add_file("forty.bin", 40 * MIB, 7).await;
    let probe = Probe::start(&node).await;
    let peer = node.net.local_peer_id();
    let mut asked = Vec::new();
    for index in 0..40 {
        let net = probe.net.clone();
        asked.push(tokio::spawn(async move {
            net.request(peer, Request::Chunk { cid, index }).await
        }));
    }
    // Exactly 8 are refused: 32 permits, one per 1 MiB chunk; the 8 wait for permits
    // for a second (READ_WAIT), in vain. The others wait for the upload cap.
    let mut choked = 0;
    let mut waiting = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    for (index, request) in asked.iter_mut().enumerate() {
        match tokio::time::timeout_at(deadline, request).await {
            Ok(Ok(Ok(crate::network::Reply::Message(Response::Choked)))) => choked += 1,
            Ok(other) => panic!("chunk {index}: {other:?}"),
            Err(_) => waiting.push(index as u32),
        }
    }
    assert_eq!((choked, waiting.len()), (8, 32));
    // A Have is not a read: it is acknowledged, budget spent or not.
    assert_eq!(
        short(&probe.ask(&node, Request::Have { cid, index: 0 }).await),
        "ack"
    );
    // A cancelled request is answered at once and gives its permit back: the next
    // request is accepted (it waits for the cap) instead of being choked.
    let index = waiting[0];
    let answer = probe.ask(&node, Request::Cancel { cid, index }).await;
    assert_eq!(short(&answer), "ack");
    let cancelled = tokio::time::timeout(Duration::from_secs(3), &mut asked[index as usize])
        .await
        .expect("answered at once");
    assert!(
        matches!(
            cancelled,
            Ok(Ok(crate::network::Reply::Message(Response::Cancelled)))
        ),
        "{cancelled:?}"
    );
    let net = probe.net.clone();
    let again = tokio::spawn(async move { net.request(peer, Request::Chunk { cid, index }).await });
    assert!(
        tokio::time::timeout(Duration::from_secs(1), again)
            .await
            .is_err(),
        "accepted, not choked"
    );
}

/// A far peer's burst: 64 chunk requests at once, twice the read budget. Under a cap of
/// 96 MiB/s the first 32 hold their permits for about a third of a second in all; the
/// 32 past the budget wait for those permits (at most `serve::READ_WAIT`, a second) instead
/// of being choked at once: every one is answered with its chunk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_read_budget_waits_for_permits_instead_of_being_choked() {
    let node = Node::start(Setup {
        upload_rate: Some(96 * MIB as u64),
        ..Setup::default()
    })
    .await;
    let cid = node.add_file("sixty-four.bin", 64 * MIB, 9).await;
    let probe = Probe::start(&node).await;
    let peer = node.net.local_peer_id();
    let asked: Vec<_> = (0..64)
        .map(|index| {
            let net = probe.net.clone();
            tokio::spawn(async move { net.request(peer, Request::Chunk { cid, index }).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in asked {
        let answer = tokio::time::timeout(Duration::from_secs(20), request)
            .await
            .expect("answered")
            .expect("the request task runs");
        answers.push(match answer {
            Ok(crate::network::Reply::Chunk(_)) => "chunk".to_string(),
            other => format!("{other:?}"),
        });
    }
    let not_chunks: Vec<&String> = answers.iter().filter(|a| *a != "chunk").collect();
    assert!(
        not_chunks.is_empty(),
        "{} not served: {not_chunks:?}",
        not_chunks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_changed_on_disk_is_not_found_and_no_longer_announced() {
    let node = Node::start(Setup::default()).await;
    let cid = node
        .add_file_as("in-place.bin", 2 * MIB, 8, ImportMode::Reference)
        .await;
    let probe = Probe::start(&node).await;
    assert_eq!(
        short(&probe.ask(&node, Request::Manifest { cid }).await),
        "manifest"
    );
    assert_eq!(node.provided_files().await, 1);
    // The tracked file changes.
    let path = node.dir.path().join("in-place.bin");
    super::write_pattern(&path, 2 * MIB + 10, 9);
    let bitfield = Request::Bitfield {
        cid,
        have: Bitfield::new(2),
    };
    for request in [
        bitfield,
        Request::Manifest { cid },
        Request::Chunk { cid, index: 0 },
        Request::Chunk { cid, index: 1 },
    ] {
        let answer = probe.ask(&node, request.clone()).await;
        assert_eq!(short(&answer), "not found", "{request:?}");
    }
    assert_eq!(node.provided_files().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_asking_again_for_chunks_they_were_sent_do_not_hold_the_slots() {
    // Issue 11's flood, small: three peers ask for the same four chunks over and over,
    // as fast as they are answered, and hold both upload slots; an honest downloader
    // that asks each chunk once must still get its chunks at once, not at the next
    // rechoke (10 s).
    let node = Node::start(Setup {
        upload_slots: Some(2),
        ..Setup::default()
    })
    .await;
    let cid = node.add_file("eight.bin", 8 * MIB, 9).await;
    let peer = node.net.local_peer_id();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..3 {
        let probe = Probe::start(&node).await;
        let stop = stop.clone();
        flood.push(tokio::spawn(async move {
            let (mut chunks, mut choked) = (0u32, 0u32);
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let index = n % 4;
                n += 1;
                let asked = probe.net.request(peer, Request::Chunk { cid, index });
                // Longer than a repeater's refusals are held back (serve/tarpit.rs).
                match tokio::time::timeout(Duration::from_secs(3), asked).await {
                    Ok(Ok(crate::network::Reply::Chunk(_))) => chunks += 1,
                    Ok(Ok(crate::network::Reply::Message(Response::Choked))) => {
                        choked += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    // A throttled chunk still on its way: asked again, or another.
                    _ => {}
                }
            }
            (chunks, choked)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let honest = Probe::start(&node).await;
    let started = tokio::time::Instant::now();
    for index in 0..8 {
        loop {
            let answer = honest.ask(&node, Request::Chunk { cid, index }).await;
            if short(&answer) == "chunk" {
                break;
            }
            assert_eq!(short(&answer), "choked");
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the honest peer got {index} of 8 chunks in 5 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Long enough for refusals held back from repeaters (serve/tarpit.rs) to arrive.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for peer in flood {
        let (chunks, choked) = peer.await.expect("the flood peer ran");
        // Each was served its four chunks, then repeats, and then mostly refused.
        assert!(
            chunks >= 4 && choked > 0,
            "{chunks} chunks, {choked} choked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeaters_answers_are_held_back_and_an_honest_peers_are_not() {
    // A flood peer asking for the manifest over and over gets each answer at once until
    // it is judged a repeater, then a second late; an honest peer meanwhile at once.
    let node = Node::start(Setup::default()).await;
    let cid = node.add_file("manifest.bin", 4 * MIB, 13).await;
    async fn timed(node: &Node, probe: &Probe, request: Request) -> (&'static str, Duration) {
        let started = tokio::time::Instant::now();
        let answer = probe.ask(node, request).await;
        (short(&answer), started.elapsed())
    }
    let flood = Probe::start(&node).await;
    let mut took = Vec::new();
    for _ in 0..12 {
        let (answer, elapsed) = timed(&node, &flood, Request::Manifest { cid }).await;
        assert_eq!(answer, "manifest");
        took.push(elapsed);
    }
    let hold = crate::transfer::serve::tarpit::HOLD;
    assert!(took[0] < hold / 2, "first answer took {:?}", took[0]);
    assert!(
        took[11] >= hold * 9 / 10,
        "twelfth answer took {:?}",
        took[11]
    );
    let honest = Probe::start(&node).await;
    for request in [Request::Manifest { cid }, Request::Chunk { cid, index: 0 }] {
        let (_, elapsed) = timed(&node, &honest, request).await;
        assert!(elapsed < hold / 2, "the honest peer waited {elapsed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_probes_a_peer_it_served_and_a_freeloader_becomes_a_taker() {
    // The node holds the whole file and downloads nothing. A freeloader takes 3 MiB,
    // announces a chunk, and answers every chunk request `Choked`; an honest peer does
    // the same but serves what it is asked.
    let node = Node::start(Setup::default()).await;
    let cid = node.add_file("four.bin", 4 * MIB, 11).await;
    let mut peers = Vec::new();
    for gives in [false, true] {
        let mut probe = Probe::start(&node).await;
        for index in 0..3 {
            let answer = probe.ask(&node, Request::Chunk { cid, index }).await;
            assert_eq!(short(&answer), "chunk");
        }
        let id = probe.net.local_peer_id();
        let net = probe.net.clone();
        let mut inbound = std::mem::replace(&mut probe.inbound, tokio::sync::mpsc::channel(1).1);
        let ours = node.transfers.store().read_chunk(&cid, 0).expect("chunk 0");
        tokio::spawn(async move {
            while let Some(asked) = inbound.recv().await {
                let reply: crate::network::Reply = match asked.request {
                    Request::Bitfield { .. } => Response::Bitfield {
                        have: Bitfield::new(4),
                    }
                    .into(),
                    Request::Chunk { index: 0, .. } if gives => {
                        crate::network::Reply::Chunk(chunk_store::ChunkBuf::copy_from(&ours))
                    }
                    Request::Chunk { .. } => Response::Choked.into(),
                    _ => Response::Ack.into(),
                };
                net.respond(asked.channel, reply).await;
            }
        });
        let answer = probe.ask(&node, Request::Have { cid, index: 0 }).await;
        assert_eq!(short(&answer), "ack");
        peers.push((id, probe));
    }
    let (freeloader, honest) = (peers[0].0, peers[1].0);
    eventually("the seed judges the freeloader a taker", || async {
        (node.transfers.peer_judgement(&freeloader).1 != Taking::No).then_some(())
    })
    .await;
    let standing = |peer| {
        node.transfers
            .reputation()
            .into_iter()
            .find(|s| s.peer == peer)
            .expect("a record")
            .record
    };
    let honest = standing(honest);
    assert!(honest.received > 0 && honest.chokes == 0, "{honest:?}");
    assert_eq!(node.transfers.peer_judgement(&peers[1].0).1, Taking::No);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_downloader_is_no_hoarder() {
    // One seeder, one downloader, nobody else: the downloader had nobody to pass the
    // seeder's chunks on to, so holding them on is no hoarding (with each sole chunk
    // counted as a chance, 12 MiB would make it a taker, throttled to 64 KiB/s).
    let (seeder, fetcher, _cid, mut status) =
        seeder_and_fetcher(Setup::default(), Setup::default(), 12 * MIB, 9).await;
    until("the end", &mut status, |s| s.state == DownloadState::Done).await;
    tokio::time::sleep(
        crate::transfer::reputation::pass_on::PASS_ON_WINDOW + Duration::from_secs(1),
    )
    .await;
    seeder.transfers.mature_pass_on();
    let lone = fetcher.net.local_peer_id();
    let (_, taking) = seeder.transfers.peer_judgement(&lone);
    assert_eq!(taking, Taking::No, "a lone downloader judged a taker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_no_longer_holds_a_chunk_it_announced_is_not_banned_for_it() {
    // The seed probes a peer it sent 3 MiB and got nothing from, for a chunk the peer
    // announced; the peer deleted the file since and answers `NotFound`. That is no
    // lie (a `Have` is no promise to keep the chunk): it is not asked again for that
    // chunk, and not banned for "advertising chunks it does not have".
    let node = Node::start(Setup::default()).await;
    let cid = node.add_file("four.bin", 4 * MIB, 8).await;
    let mut peer = Probe::start(&node).await;
    for index in 0..3 {
        let answer = peer.ask(&node, Request::Chunk { cid, index }).await;
        assert_eq!(short(&answer), "chunk");
    }
    assert_eq!(
        short(&peer.ask(&node, Request::Have { cid, index: 0 }).await),
        "ack"
    );
    let mut probed = 0;
    let started = tokio::time::Instant::now();
    // Long enough for five probes at one every 2 s (`PROBE_EVERY`) if it kept asking.
    while started.elapsed() < Duration::from_secs(10) {
        let Ok(Some(inbound)) =
            tokio::time::timeout(Duration::from_millis(200), peer.inbound.recv()).await
        else {
            continue;
        };
        probed += usize::from(matches!(inbound.request, Request::Chunk { .. }));
        peer.net.respond(inbound.channel, Response::NotFound).await;
    }
    assert_eq!(probed, 1, "probed once, then the announcement is forgotten");
    assert!(!node.transfers.is_banned(&peer.net.local_peer_id()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_asks_for_bitfields_only_about_files_of_more_than_one_chunk() {
    // A seed asks a peer that asks it about a file for its bitfield in return (to learn
    // who passes chunks on), but not about a file of one chunk: a folder's small files
    // are fetched with one request each, and a bitfield per file would double that.
    let node = Node::start(Setup::default()).await;
    let small = node.add_file("small.bin", 4096, 1).await;
    let large = node.add_file("large.bin", 2 * MIB, 2).await;
    let mut peer = Probe::start(&node).await;
    async fn first_chunk(peer: &Probe, node: &Node, cid: Cid) -> &'static str {
        short(&peer.ask(node, Request::Chunk { cid, index: 0 }).await)
    }
    fn bitfields_about(peer: &mut Probe, cid: Cid) -> usize {
        let mut asked = 0;
        while let Ok(inbound) = peer.inbound.try_recv() {
            asked += usize::from(
                matches!(inbound.request, Request::Bitfield { cid: c, .. } if c == cid),
            );
        }
        asked
    }
    assert_eq!(first_chunk(&peer, &node, small).await, "chunk");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        bitfields_about(&mut peer, small),
        0,
        "asked for a bitfield about a one-chunk file"
    );
    assert_eq!(first_chunk(&peer, &node, large).await, "chunk");
    let asked = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if bitfields_about(&mut peer, large) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        asked.is_ok(),
        "never asked for a bitfield about a two-chunk file"
    );
}
