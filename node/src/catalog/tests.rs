//! The catalog in one process: real stores in temporary directories, whole nodes over
//! libp2p's in-memory transport. The catalog follows its store, announces one key per
//! distinct word, and a search from another node finds verified entries; a browse reads
//! exactly the listed ones. (The multi-process tests in tests/tests/search.rs do the
//! same through the CLI with real daemons.)

use std::sync::Arc;
use std::time::Duration;

use chunk_store::{ImportMode, Store};
use dht_proto::Cid;
use libp2p::identity::Keypair;
use tokio::sync::mpsc;

use super::*;
use crate::network::tests::config;
use crate::network::{build_in_memory, DhtMode};
use crate::transfer::RateLimits;
use dht_proto::catalog::{CatalogRequest, CatalogResponse};

const DEADLINE: Duration = Duration::from_secs(30);

struct Node {
    catalog: Catalog,
    store: Arc<Store>,
    net: Network,
    transfers: Transfers,
    dir: tempfile::TempDir,
}

async fn node(bootstrap: Option<&Node>) -> Node {
    node_with(bootstrap, None).await
}

async fn node_with(
    bootstrap: Option<&Node>,
    #[allow(unused_variables)] forgery: Option<&str>,
) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("store")).unwrap());
    let key = Keypair::generate_ed25519();
    let mut cfg = config(DhtMode::Server);
    if let Some(boot) = bootstrap {
        let addr = boot.net.info().await.unwrap().listen_addrs[0].clone();
        cfg.bootstrap = vec![addr];
    }
    let (inbound, _uploads) = mpsc::channel(8);
    let (actor, net) = build_in_memory(key.clone(), cfg, inbound).unwrap();
    tokio::spawn(actor.run());
    let transfers = Transfers::new(
        store.clone(),
        net.clone(),
        RateLimits::default(),
        false,
        Tasks::new(),
    );
    let (catalog, task) = Catalog::start(CatalogParts {
        store: store.clone(),
        net: net.clone(),
        transfers: transfers.clone(),
        signer: crate::identity::signing_key(&key),
        data_dir: dir.path().to_path_buf(),
        tasks: Tasks::new(),
        #[cfg(feature = "test-faults")]
        forgery: forgery.map(|f| clap::ValueEnum::from_str(f, true).unwrap()),
        #[cfg(feature = "test-faults")]
        answer_delay: None,
    })
    .await;
    tokio::spawn(task);
    // Listening takes a moment; a node without an address cannot be bootstrapped from.
    eventually("a listen address", || async {
        (!net.info().await.ok()?.listen_addrs.is_empty()).then_some(())
    })
    .await;
    Node {
        catalog,
        store,
        net,
        transfers,
        dir,
    }
}

async fn eventually<T, Fut: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut check: impl FnMut() -> Fut,
) -> T {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn add(node: &Node, name: &str, listed: bool) -> Cid {
    let path = node.dir.path().join(name);
    std::fs::write(&path, format!("the bytes of {name}")).unwrap();
    node.store
        .import_listed(&path, ImportMode::Copy, None, listed, &mut |_| {})
        .unwrap()
        .cid
}

async fn wait_listed(node: &Node, listed: usize, keywords: usize) {
    eventually("the catalog in step", || async {
        let status = node.catalog.status().await;
        (status.listed == listed
            && status.keywords == keywords
            && status.announcements.provided == keywords)
            .then_some(())
    })
    .await;
}

fn names(hits: &[SearchHit]) -> Vec<&str> {
    let mut names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    names.sort();
    names
}

async fn search(node: &Node, text: &str) -> SearchSummary {
    let mut events = node.catalog.search(text, DEADLINE).unwrap();
    let mut hits = 0;
    loop {
        match events.recv().await.expect("a search ends with Done") {
            SearchEvent::Hit(_) => hits += 1,
            SearchEvent::Done(summary) => {
                assert!(hits >= summary.results.len(), "every result was streamed");
                return summary;
            }
        }
    }
}

#[tokio::test]
async fn the_catalog_follows_the_store_and_provides_each_word_once() {
    let node = node(None).await;
    let photos = add(&node, "Holiday Photos.zip", true);
    let video = add(&node, "holiday video.mkv", true);
    let secret = add(&node, "secret holiday plans.txt", false);
    // holiday photos zip video mkv: five words, one key each.
    wait_listed(&node, 2, 5).await;
    assert!(node.catalog.contains(&photos) && !node.catalog.contains(&secret));
    assert_eq!(
        node.catalog.set_listed(secret, true).await.unwrap(),
        None,
        "listed at once"
    );
    wait_listed(&node, 3, 8).await;
    assert_eq!(
        node.catalog.set_listed(secret, false).await.unwrap(),
        Some(NotInCatalog::Unlisted)
    );
    wait_listed(&node, 2, 5).await;
    // Unpublishing and removing take files out too, through the store's watcher.
    node.store.set_published(&video, false).unwrap();
    wait_listed(&node, 1, 3).await;
    assert_eq!(
        node.catalog.set_listed(video, true).await.unwrap(),
        Some(NotInCatalog::Unpublished)
    );
    node.store.remove(&photos).unwrap();
    wait_listed(&node, 0, 0).await;
    assert!(node
        .catalog
        .set_listed(photos, true)
        .await
        .is_err_and(|e| matches!(e, StoreError::NotFound(_))));
}

#[tokio::test]
async fn the_server_answers_searches_and_pages_but_browsing_can_be_turned_off() {
    let node = node(None).await;
    add(&node, "Straße nach Österreich.pdf", true);
    add(&node, "straße 2.pdf", true);
    add(&node, "hidden straße.pdf", false);
    wait_listed(&node, 2, 4).await;
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let CatalogResponse::Results { entries, more } = node.catalog.answer(&CatalogRequest::Search {
        words: words(&["straße"]),
    }) else {
        panic!("a search is answered with results");
    };
    assert_eq!((entries.len(), more), (2, false));
    let CatalogResponse::Page { entries, total, .. } =
        node.catalog.answer(&CatalogRequest::Browse { page: 0 })
    else {
        panic!("a browse is answered with a page");
    };
    assert_eq!((entries.len(), total), (2, 2));
    node.catalog
        .set_settings(CatalogSettings { browse: false })
        .await
        .unwrap();
    assert_eq!(
        node.catalog.answer(&CatalogRequest::Browse { page: 0 }),
        CatalogResponse::BrowseDisabled
    );
    assert_eq!(
        load_settings(node.dir.path()),
        CatalogSettings { browse: false }
    );
}

#[tokio::test]
async fn a_search_from_another_node_finds_verified_entries_and_browse_reads_the_listed() {
    let boot = node(None).await;
    let publisher = node(Some(&boot)).await;
    let other = node(Some(&boot)).await;
    let searcher = node(Some(&boot)).await;
    let shared = add(&publisher, "Holiday Photos 2024.zip", true);
    add(&publisher, "holiday video.mkv", true);
    add(&publisher, "holiday secrets.txt", false);
    add(&other, "Holiday Photos 2024.zip", true);
    wait_listed(&publisher, 2, 6).await;
    wait_listed(&other, 1, 4).await;
    eventually("the keywords stored in the DHT", || async {
        let a = publisher.catalog.status().await.announcements;
        let b = other.catalog.status().await.announcements;
        (a.announced == 6 && b.announced == 4).then_some(())
    })
    .await;

    let found = search(&searcher, "HOLIDAY photos").await;
    assert_eq!(names(&found.results), ["Holiday Photos 2024.zip"]);
    let hit = &found.results[0];
    assert_eq!(hit.cid, shared);
    assert_eq!(hit.publishers.len(), 2, "two nodes list the same bytes");
    assert_eq!(found.rejected_entries, 0);
    assert!(found.dht_requests > 0 && found.catalog_requests >= 2);
    assert!(found.first_result.is_some() && !found.timed_out);

    let all = search(&searcher, "holiday").await;
    assert_eq!(
        names(&all.results),
        ["Holiday Photos 2024.zip", "holiday video.mkv"]
    );
    assert_eq!(
        all.results[0].name, "Holiday Photos 2024.zip",
        "two publishers rank first"
    );
    assert!(search(&searcher, "secrets").await.results.is_empty());
    assert!(search(&searcher, "nothing-here-xyz")
        .await
        .results
        .is_empty());

    let browsed = searcher
        .catalog
        .browse(BrowseTarget::Peer(publisher.net.local_peer_id()), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        names(&browsed.files),
        ["Holiday Photos 2024.zip", "holiday video.mkv"]
    );
    assert!(browsed.complete);
    assert_eq!(browsed.total, 2);
}

#[cfg(feature = "test-faults")]
#[tokio::test]
async fn forged_entries_are_dropped_and_cost_the_sender() {
    let boot = node(None).await;
    let honest = node(Some(&boot)).await;
    let forger = node_with(Some(&boot), Some("foreign-key")).await;
    let searcher = node(Some(&boot)).await;
    add(&honest, "quarterly report.pdf", true);
    add(&forger, "quarterly numbers.pdf", true);
    for (n, keywords) in [(&honest, 3), (&forger, 3)] {
        wait_listed(n, 1, keywords).await;
        eventually("the keywords stored in the DHT", || async {
            (n.catalog.status().await.announcements.announced == keywords).then_some(())
        })
        .await;
    }
    let found = search(&searcher, "quarterly").await;
    assert_eq!(names(&found.results), ["quarterly report.pdf"]);
    assert_eq!(found.rejected_entries, 1);
    let forger_id = forger.net.local_peer_id();
    let record = searcher
        .transfers
        .reputation()
        .into_iter()
        .find(|r| r.peer == forger_id)
        .expect("the forger has a record");
    assert_eq!(record.record.forged_entries, 1);
    assert!(record.score < 0.0);
    // Browsing the forger drops its entries the same way.
    let browsed = searcher
        .catalog
        .browse(BrowseTarget::Peer(forger.net.local_peer_id()), DEADLINE)
        .await
        .unwrap();
    assert!(browsed.files.is_empty());
    assert_eq!(browsed.rejected_entries, 1);
}
