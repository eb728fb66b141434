//! Tests of the catalog protocol and keyword keys over libp2p's in-memory transport:
//! requests reach the catalog server or are refused without waiting, keyword keys are
//! announced, found and withdrawn like file keys, a lookup says what it cost, and a peer
//! can be dialed by its address alone.

use std::time::Duration;

use dht_proto::catalog::{
    CatalogRequest, CatalogResponse, MAX_CATALOG_REQUEST_LEN, MAX_CATALOG_RESPONSE_LEN,
};
use futures::io::Cursor;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::Codec as _;
use libp2p::{Multiaddr, StreamProtocol};
use tokio::sync::mpsc;

use super::catalog::CatalogCodec;
use super::tests::{config, eventually, spawn, Node};
use super::*;

async fn joining(boot: &Node) -> Node {
    let mut cfg = config(DhtMode::Server);
    cfg.bootstrap = vec![boot.addr.clone()];
    spawn(cfg).await
}

fn browse(page: u32) -> CatalogRequest {
    CatalogRequest::Browse { page }
}

#[tokio::test]
async fn requests_reach_the_catalog_server_or_are_refused_at_once() {
    let server = spawn(config(DhtMode::Server)).await;
    let client = spawn(config(DhtMode::Server)).await;
    let peer = server.net.local_peer_id();
    let addrs = vec![server.addr.clone()];

    // No catalog server yet: answered by the swarm task itself.
    let answer = client
        .net
        .catalog_request(peer, browse(0), addrs.clone())
        .await
        .unwrap();
    assert!(
        matches!(answer, CatalogResponse::Error { .. }),
        "{answer:?}"
    );

    // A server whose queue holds one request: the first waits there, the second is told
    // to come back (the swarm task never waits for the server).
    let (queue, mut inbound) = mpsc::channel(1);
    server.net.serve_catalog(queue).await;
    let first = tokio::spawn({
        let net = client.net.clone();
        let addrs = addrs.clone();
        async move { net.catalog_request(peer, browse(3), addrs).await }
    });
    let request = tokio::time::timeout(Duration::from_secs(20), inbound.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(request.request, browse(3));
    assert_eq!(request.peer, client.net.local_peer_id());
    // The queue is empty again; fill it, then ask once more.
    let second = tokio::spawn({
        let net = client.net.clone();
        let addrs = addrs.clone();
        async move { net.catalog_request(peer, browse(4), addrs).await }
    });
    let queued = eventually("the second request queued", || async {
        (inbound.len() == 1).then_some(())
    });
    queued.await;
    let refused = client
        .net
        .catalog_request(peer, browse(5), addrs.clone())
        .await
        .unwrap();
    assert_eq!(
        refused,
        CatalogResponse::RateLimited {
            retry_after_secs: 1
        }
    );
    // The server answers what it took.
    let page = CatalogResponse::Page {
        entries: vec![],
        page: 3,
        total: 0,
    };
    server
        .net
        .respond_catalog(request.channel, page.clone())
        .await;
    assert_eq!(first.await.unwrap().unwrap(), page);
    let request = inbound.recv().await.unwrap();
    server
        .net
        .respond_catalog(request.channel, CatalogResponse::BrowseDisabled)
        .await;
    assert_eq!(
        second.await.unwrap().unwrap(),
        CatalogResponse::BrowseDisabled
    );
    // Nothing is left in flight on either side.
    let (pending, peers, dials) = client.poke(|actor| actor.catalog.in_flight()).await;
    assert_eq!((pending, peers, dials), (0, 0, 0));
}

#[tokio::test]
async fn keyword_keys_are_announced_found_and_withdrawn_apart_from_files() {
    let boot = spawn(config(DhtMode::Server)).await;
    let provider = joining(&boot).await;
    let finder = joining(&boot).await;
    for (node, peers) in [(&provider, 1), (&finder, 1), (&boot, 2)] {
        eventually("a routing table", || async {
            (node.net.info().await.ok()?.routing_table_peers >= peers).then_some(())
        })
        .await;
    }
    provider.net.start_providing_keyword("holiday".into()).await;
    provider.net.start_providing_keyword("holiday".into()).await;
    let status = eventually("the keyword announced", || async {
        let k = provider.net.keyword_announcements().await.ok()?;
        (k.announced == 1).then_some(k)
    })
    .await;
    assert_eq!(status.provided, 1, "announcing twice is announcing once");
    assert_eq!(status.unannounced, 0);
    // A keyword is not a file: the file views do not show it.
    let info = provider.net.info().await.unwrap();
    assert_eq!(info.provided_files, 0);
    assert_eq!(info.provider_announcements, 1);
    assert!(provider.net.announcements().await.unwrap().is_empty());

    let provider_id = provider.net.local_peer_id();
    let key = ProviderKey::Keyword("holiday".into());
    let (found, requests) = eventually("the provider found by its keyword", || async {
        let mut lookup = finder.net.find_providers_of(key.clone()).await;
        let mut peers = vec![];
        while let Ok(Some(p)) =
            tokio::time::timeout(Duration::from_secs(20), lookup.found.recv()).await
        {
            peers.push(p);
        }
        let requests = lookup.finish().await;
        peers.contains(&provider_id).then_some((peers, requests))
    })
    .await;
    assert!(!found.contains(&finder.net.local_peer_id()));
    assert!(
        requests >= 1,
        "a lookup that found a provider sent a request"
    );
    // Another word, or the file key of the same bytes, finds nobody.
    let mut other = finder
        .net
        .find_providers_of(ProviderKey::Keyword("holidays".into()))
        .await;
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), other.found.recv())
            .await
            .unwrap(),
        None
    );

    // A lookup ended early says what it sent so far and leaves nothing behind.
    let lookup = finder.net.find_providers_of(key.clone()).await;
    lookup.finish().await;
    let running = finder.poke(|actor| actor.providers.queries.len()).await;
    assert_eq!(running, 0);

    provider.net.stop_providing_keyword("holiday".into()).await;
    let status = provider.net.keyword_announcements().await.unwrap();
    assert_eq!(status, KeywordAnnouncements::default());
}

#[tokio::test]
async fn a_peer_is_dialed_by_its_address_alone() {
    let target = spawn(config(DhtMode::Server)).await;
    let dialer = spawn(config(DhtMode::Server)).await;
    let mut bare = target.addr.clone();
    assert!(matches!(bare.pop(), Some(Protocol::P2p(_))));
    let peer = dialer.net.dial(bare).await.unwrap();
    assert_eq!(peer, target.net.local_peer_id());
    let nobody: Multiaddr = "/memory/4242424242".parse().unwrap();
    let failed = dialer.net.dial(nobody).await;
    assert!(matches!(failed, Err(RequestError::Dial(_))), "{failed:?}");
    let (_, _, dials) = dialer.poke(|actor| actor.catalog.in_flight()).await;
    assert_eq!(dials, 0);
}

#[tokio::test]
async fn the_codec_reads_no_further_than_the_limits() {
    let protocol = StreamProtocol::new(dht_proto::catalog::CATALOG_PROTOCOL);
    let mut codec = CatalogCodec;
    let request = CatalogRequest::search("holiday photos").unwrap();
    let mut good = Cursor::new(request.encode());
    assert_eq!(
        codec.read_request(&protocol, &mut good).await.unwrap(),
        request
    );
    let mut huge = Cursor::new(vec![0xa1; MAX_CATALOG_REQUEST_LEN + 1]);
    assert!(codec.read_request(&protocol, &mut huge).await.is_err());
    let mut huge = Cursor::new(vec![0xa1; MAX_CATALOG_RESPONSE_LEN + 1]);
    assert!(codec.read_response(&protocol, &mut huge).await.is_err());
    // A request with a word not in keyword form does not decode.
    let bad = CatalogRequest::Search {
        words: vec!["Holiday".into()],
    };
    let mut bad = Cursor::new(bad.encode());
    assert!(codec.read_request(&protocol, &mut bad).await.is_err());
}
