//! Downloads run by the engine between in-process nodes.

use std::time::Duration;

use super::{eventually, Node, Setup};
use crate::transfer::DownloadState;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_unpublished_while_it_downloads_stays_unannounced() {
    // The seeder sends 1 MiB/s: the 6 MiB file takes seconds, time to unpublish it.
    let seeder = Node::start(Setup {
        upload_rate: Some(MIB as u64),
        ..Setup::default()
    })
    .await;
    let cid = seeder.add_file("six.bin", 6 * MIB, 1).await;
    let fetcher = Node::start(Setup {
        boot: Some(seeder.addr.clone()),
        ..Setup::default()
    })
    .await;
    let mut status = fetcher
        .transfers
        .start(cid, Duration::from_secs(30))
        .expect("the download starts");
    // Holding a verified chunk, the fetcher announces the file...
    eventually("the first verified chunk", || {
        let done = status.borrow().chunks_done;
        async move { (done >= 1).then_some(()) }
    })
    .await;
    eventually("the announcement", || async {
        (fetcher.provided_files().await == 1).then_some(())
    })
    .await;
    // ...until the owner unpublishes it, and for good, even once it is complete.
    fetcher.transfers.unpublish(cid).await.expect("unpublished");
    let ended = tokio::time::timeout(super::DEADLINE, status.wait_for(|s| s.state.has_ended()))
        .await
        .expect("the download ends")
        .expect("the engine runs")
        .clone();
    assert_eq!(ended.state, DownloadState::Done, "{ended:?}");
    assert_eq!(fetcher.provided_files().await, 0);
    let files = fetcher.transfers.files().await.expect("the store lists");
    assert!(files.iter().any(|f| f.cid == cid && !f.published));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_overload_is_never_held_against_the_peer() {
    // The seeder holds the Haves it is sent without answering.
    let seeder = Node::start(Setup {
        hold_haves: true,
        ..Setup::default()
    })
    .await;
    let cid = seeder.add_file("four.bin", 4 * MIB, 2).await;
    let seeder_id = seeder.net.local_peer_id();
    // The fetcher's download cap holds its chunk requests back, about a second each,
    // before they reach the network.
    let fetcher = Node::start(Setup {
        boot: Some(seeder.addr.clone()),
        download_rate: Some(MIB as u64),
        ..Setup::default()
    })
    .await;
    let mut status = fetcher
        .transfers
        .start(cid, Duration::from_secs(60))
        .expect("the download starts");
    eventually("chunk requests to the seeder", || {
        let peers = status.borrow().peers;
        async move { (peers >= 1).then_some(()) }
    })
    .await;
    // Requests the seeder does not answer fill this node's requests in flight to it
    // (128 per peer): the download's next chunk requests are refused here, locally.
    for _ in 0..130 {
        let net = fetcher.net.clone();
        tokio::spawn(async move {
            let _ = net
                .request(seeder_id, dht_proto::Request::Have { cid, index: 0 })
                .await;
        });
    }
    eventually("requests refused as a local overload", || {
        let net = fetcher.net.clone();
        async move {
            // A request that fits waits for its (held) answer: not what we look for.
            let have = dht_proto::Request::Have { cid, index: 0 };
            let answer =
                tokio::time::timeout(Duration::from_millis(200), net.request(seeder_id, have))
                    .await;
            matches!(answer, Ok(Err(crate::network::RequestError::Overloaded))).then_some(())
        }
    })
    .await;
    // Long enough for several of the download's requests to be refused.
    tokio::time::sleep(Duration::from_secs(3)).await;
    seeder.release_haves();
    let ended = tokio::time::timeout(super::DEADLINE, status.wait_for(|s| s.state.has_ended()))
        .await
        .expect("the download ends")
        .expect("the engine runs")
        .clone();
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
