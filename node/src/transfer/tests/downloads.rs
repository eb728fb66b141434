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
