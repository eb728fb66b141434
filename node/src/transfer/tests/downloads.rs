//! Downloads run by the engine between in-process nodes.

use std::time::Duration;

use dht_proto::Request;

use super::{eventually, seeder_and_fetcher, until, Node, Setup};
use crate::network::RequestError;
use crate::transfer::DownloadState;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_unpublished_while_it_downloads_stays_unannounced() {
    // The seeder sends 1 MiB/s: the 6 MiB file takes seconds, time to unpublish it.
    let seeder = Setup {
        upload_rate: Some(MIB as u64),
        ..Setup::default()
    };
    let (_seeder, fetcher, cid, mut status) =
        seeder_and_fetcher(seeder, Setup::default(), 6 * MIB, 1).await;
    // Holding a verified chunk, the fetcher announces the file...
    until("the first verified chunk", &mut status, |s| {
        s.chunks_done >= 1
    })
    .await;
    eventually("the announcement", || async {
        (fetcher.provided_files().await == 1).then_some(())
    })
    .await;
    // ...until the owner unpublishes it, and for good, even once it is complete.
    fetcher.transfers.unpublish(cid).await.expect("unpublished");
    let ended = until("the end", &mut status, |s| s.state.has_ended()).await;
    assert_eq!(ended.state, DownloadState::Done, "{ended:?}");
    assert_eq!(fetcher.provided_files().await, 0);
    let files = fetcher.transfers.files().await.expect("the store lists");
    assert!(files.iter().any(|f| f.cid == cid && !f.published));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_overload_is_never_held_against_the_peer() {
    // The seeder holds the Haves it is sent without answering. The fetcher's download
    // cap holds its chunk requests back, about a second each, before they reach the
    // network.
    let seeder = Setup {
        hold_haves: true,
        ..Setup::default()
    };
    let fetcher = Setup {
        download_rate: Some(MIB as u64),
        ..Setup::default()
    };
    let (seeder, fetcher, cid, mut status) = seeder_and_fetcher(seeder, fetcher, 4 * MIB, 2).await;
    let seeder_id = seeder.net.local_peer_id();
    until("chunk requests to the seeder", &mut status, |s| {
        s.peers >= 1
    })
    .await;
    // Requests the seeder does not answer fill this node's requests in flight to it
    // (128 per peer): the download's next chunk requests are refused here, locally.
    let have = Request::Have { cid, index: 0 };
    for _ in 0..130 {
        let net = fetcher.net.clone();
        let have = have.clone();
        tokio::spawn(async move {
            let _ = net.request(seeder_id, have).await;
        });
    }
    eventually("requests refused as a local overload", || {
        let net = fetcher.net.clone();
        let have = have.clone();
        async move {
            // A request that fits waits for its (held) answer: not what we look for.
            let answer =
                tokio::time::timeout(Duration::from_millis(200), net.request(seeder_id, have))
                    .await;
            matches!(answer, Ok(Err(RequestError::Overloaded))).then_some(())
        }
    })
    .await;
    // Long enough for several of the download's requests to be refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    seeder.release_haves();
    let ended = until("the end", &mut status, |s| s.state.has_ended()).await;
    assert_eq!(ended.state, DownloadState::Done, "{ended:?}");
    let record = fetcher
        .transfers
        .reputation()
        .into_iter()
        .find(|p| p.peer == seeder_id)
        .expect("the seeder is known")
        .record;
    assert_eq!(record.failures, 0, "{record:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_with_enough_sources_still_finds_a_provider_that_comes_later() {
    // Four seeders; the fetcher's download cap (1.5 MiB/s) makes the 64 MiB download
    // last some 40 s. Once all four send, a fifth peer gets the file. Looking up
    // providers only while fewer than four peers send, the download would never learn
    // of it.
    let fetcher = Setup {
        download_rate: Some(3 * MIB as u64 / 2),
        ..Setup::default()
    };
    let (first, fetcher, cid, mut status) =
        seeder_and_fetcher(Setup::default(), fetcher, 64 * MIB, 3).await;
    let mut seeders = vec![first];
    for _ in 0..3 {
        let seeder = Node::start(Setup {
            boot: Some(seeders[0].addr.clone()),
            ..Setup::default()
        })
        .await;
        assert_eq!(seeder.add_file("file.bin", 64 * MIB, 3).await, cid);
        seeders.push(seeder);
    }
    let fetcher_id = fetcher.net.local_peer_id();
    let sent_by = |node: &Node| {
        node.transfers
            .traffic()
            .get(&fetcher_id)
            .map_or(0, |t| t.sent)
    };
    eventually("all four seeders sending", || async {
        seeders.iter().all(|s| sent_by(s) > 0).then_some(())
    })
    .await;
    let late = Node::start(Setup {
        boot: Some(seeders[0].addr.clone()),
        ..Setup::default()
    })
    .await;
    assert_eq!(late.add_file("file.bin", 64 * MIB, 3).await, cid);
    let found = tokio::time::timeout(Duration::from_secs(40), async {
        while sent_by(&late) == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let now = status.borrow().clone();
    assert!(
        found.is_ok(),
        "the late provider never sent anything; download: {now:?}"
    );
    let ended = until("the end", &mut status, |s| s.state.has_ended()).await;
    assert_eq!(ended.state, DownloadState::Done, "{ended:?}");
}

/// How many chunk requests a fetcher keeps in flight to its one source, `rtt` away
/// (none: never measured), against a seeder that answers none of them.
async fn requests_in_flight_to_one_source(rtt: Option<Duration>) -> usize {
    let seeder = Setup {
        hold_chunks: true,
        count_requests: true,
        ..Setup::default()
    };
    let (seeder, fetcher, _cid, mut status) =
        seeder_and_fetcher(seeder, Setup::default(), 64 * MIB, 3).await;
    until("a source", &mut status, |s| s.peers >= 1).await;
    chunk_requests_once_steady(&fetcher, &seeder, rtt).await
}

/// The chunk requests `seeder` has been sent once their count has stayed the same for
/// 2 s (at most 8 s), with the round trip to it set to `rtt` all along: the download
/// reads the round trips every 500 ms, and pings on the in-memory transport would
/// report about nothing, so the far one is set again and again.
async fn chunk_requests_once_steady(fetcher: &Node, seeder: &Node, rtt: Option<Duration>) -> usize {
    let seeder_id = seeder.net.local_peer_id();
    let chunks = || seeder.asked_count("chunk");
    let start = std::time::Instant::now();
    let mut last = 0;
    let mut steady_since = start;
    while start.elapsed() < Duration::from_secs(8) {
        if let Some(rtt) = rtt {
            fetcher.set_round_trip(seeder_id, rtt).await;
        }
        let now = chunks();
        if now != last {
            (last, steady_since) = (now, std::time::Instant::now());
        } else if last > 0 && steady_since.elapsed() > Duration::from_secs(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_single_source_gets_more_requests_in_flight_than_a_near_one() {
    // Up to 10 ms of round trip: 6 (and up to 2 probes beside).
    let near = requests_in_flight_to_one_source(None).await;
    assert!(
        (6..=8).contains(&near),
        "near source: {near} chunk requests in flight"
    );
    // 80 ms: 48, within the 64 chunks a download from one source may hold.
    let far = requests_in_flight_to_one_source(Some(Duration::from_millis(80))).await;
    assert!(
        (48..=50).contains(&far),
        "far source: {far} chunk requests in flight"
    );
}

/// A source whose fellow providers have been asked for their bitfields, and not
/// answered yet, is not the download's one source: it gets its share of the chunks
/// several sources hold (24 for two: 12), not the 48 one far source gets. (Four home
/// seeders, the first to answer once took 48 requests its uplink needed 20 s for.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_source_is_not_the_only_one_while_another_has_not_sent_its_bitfield() {
    let far = Node::start(Setup {
        hold_chunks: true,
        count_requests: true,
        ..Setup::default()
    })
    .await;
    let cid = far.add_file("file.bin", 64 * MIB, 3).await;
    let silent = Node::start(Setup {
        boot: Some(far.addr.clone()),
        hold_bitfields: true,
        ..Setup::default()
    })
    .await;
    assert_eq!(silent.add_file("file.bin", 64 * MIB, 3).await, cid);
    let fetcher = Node::start(Setup {
        boot: Some(far.addr.clone()),
        ..Setup::default()
    })
    .await;
    let (far_id, silent_id) = (far.net.local_peer_id(), silent.net.local_peer_id());
    // Both are connected before the download starts: the lookup finds them at once.
    fetcher
        .net
        .dial_at(silent_id, vec![silent.addr.clone()])
        .await;
    eventually("connected to both", || async {
        let peers = fetcher.net.peers().await.ok()?;
        let connected = |id| peers.iter().any(|p| p.peer_id == id);
        (connected(far_id) && connected(silent_id)).then_some(())
    })
    .await;
    let mut status = fetcher
        .transfers
        .start(cid, Duration::from_secs(60))
        .expect("the download starts");
    until("a source", &mut status, |s| s.peers >= 1).await;
    let last = chunk_requests_once_steady(&fetcher, &far, Some(Duration::from_millis(80))).await;
    // 12, and up to 2 probes beside.
    assert!(
        (6..=14).contains(&last),
        "far source beside a silent one: {last} chunk requests in flight"
    );
}

/// The bitfield is asked beside the manifest, not after it: a seeder that never answers
/// the manifest is still asked for its bitfield (with an empty one of ours).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bitfield_is_asked_before_the_manifest_has_arrived() {
    let seeder = Setup {
        hold_manifests: true,
        count_requests: true,
        ..Setup::default()
    };
    let (seeder, _fetcher, _cid, _status) =
        seeder_and_fetcher(seeder, Setup::default(), 4 * MIB, 5).await;
    let asked = |kind: &str| seeder.asked_count(kind);
    let start = std::time::Instant::now();
    while asked("bitfield") == 0 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        asked("manifest"),
        1,
        "the manifest is asked, and never answered"
    );
    assert_eq!(asked("bitfield"), 1, "the bitfield is asked meanwhile");
}

/// The early bitfield's answer is kept until the manifest comes and then used: a whole
/// seeder is asked for its bitfield once, and the download finishes from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeder_is_asked_for_its_bitfield_once() {
    let seeder = Setup {
        count_requests: true,
        ..Setup::default()
    };
    let (seeder, _fetcher, _cid, mut status) =
        seeder_and_fetcher(seeder, Setup::default(), 4 * MIB, 6).await;
    let ended = until("the end", &mut status, |s| s.state.has_ended()).await;
    assert_eq!(ended.state, DownloadState::Done, "{ended:?}");
    let asked = seeder
        .asked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(asked.get("bitfield"), Some(&1), "{asked:?}");
    assert_eq!(asked.get("manifest"), Some(&1), "{asked:?}");
}

/// A peer whose early bitfield shows it lacks part of the file is asked again, with
/// our real bitfield, once the manifest is known: a responder that downloads the file
/// itself sends `Have`s only to peers whose bitfield it could check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_peer_is_asked_again_with_our_real_bitfield() {
    // The seed never answers chunk requests, so the other downloader stays partial.
    let seed = Node::start(Setup {
        hold_chunks: true,
        ..Setup::default()
    })
    .await;
    let cid = seed.add_file("file.bin", 8 * MIB, 7).await;
    let partial = Node::start(Setup {
        boot: Some(seed.addr.clone()),
        count_requests: true,
        ..Setup::default()
    })
    .await;
    let mut partial_status = partial
        .transfers
        .start(cid, Duration::from_secs(60))
        .expect("the download starts");
    until("the manifest", &mut partial_status, |s| s.chunks_total > 0).await;
    let bitfields = || partial.asked_count("bitfield");
    // The seed asks for the partial peer's bitfield too (its subscription to `Have`s).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = bitfields();

    let fetcher = Node::start(Setup {
        boot: Some(partial.addr.clone()),
        ..Setup::default()
    })
    .await;
    // The partial peer announces nothing (it holds no chunk): the fetcher asks it as a
    // peer it is connected to.
    let partial_id = partial.net.local_peer_id();
    eventually("the fetcher connected to the partial peer", || async {
        fetcher
            .net
            .connected_peers()
            .await
            .contains(&partial_id)
            .then_some(())
    })
    .await;
    let _status = fetcher
        .transfers
        .start(cid, Duration::from_secs(60))
        .expect("the download starts");
    let start = std::time::Instant::now();
    while bitfields() < before + 2 && start.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        bitfields(),
        before + 2,
        "the early bitfield, then ours once the manifest is known"
    );
}
