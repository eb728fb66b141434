//! The handle to the swarm task: [`Network`] (cheap to clone), the [`Command`]s it sends
//! over the bounded command channel, and the errors its callers see.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use dht_proto::catalog::{CatalogRequest, CatalogResponse};
use dht_proto::{Cid, Request};
use libp2p::request_response::ResponseChannel;
use libp2p::{kad, Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::announce::ProviderKey;
use super::catalog::InboundCatalogRequest;
use super::codec::Reply;
use super::info::{Announcement, KeywordAnnouncements, NetEvent, NodeInfo, PeerInfo};
use super::known_peers::PeerAddrs;
use super::relays::{RelayChoiceError, RelaysReport};
use super::reprovide::ReprovideStats;

/// Keys one [`Command::StartProvidingMany`] carries at most.
pub const MAX_PROVIDE_AT_ONCE: usize = 1024;

/// Why an outbound chunk-protocol request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The peer could not be reached.
    #[error("dial failed: {0}")]
    Dial(String),
    /// No response within the request timeout.
    #[error("timed out")]
    Timeout,
    /// The connection closed or the peer does not speak the protocol.
    #[error("{0}")]
    Other(String),
    /// The connection carrying the request closed (e.g. a relayed connection replaced
    /// by a direct one); worth retrying at once.
    #[error("connection closed")]
    ConnectionClosed,
    /// The network task is gone (daemon shutting down).
    #[error("network task stopped")]
    Stopped,
    /// Too many requests in flight from this node (to this peer, or in all): a local
    /// limit, never the peer's fault.
    #[error("too many requests in flight here")]
    Overloaded,
}

impl From<libp2p::request_response::OutboundFailure> for RequestError {
    fn from(error: libp2p::request_response::OutboundFailure) -> Self {
        use libp2p::request_response::OutboundFailure;
        match error {
            OutboundFailure::DialFailure => RequestError::Dial("cannot reach peer".into()),
            OutboundFailure::Timeout => RequestError::Timeout,
            OutboundFailure::ConnectionClosed => RequestError::ConnectionClosed,
            other => RequestError::Other(other.to_string()),
        }
    }
}

impl RequestError {
    /// Whether the failure may be held against the peer (it could not be reached, or
    /// did not answer in time or in the protocol); local limits, closed connections
    /// and shutdown are not.
    pub fn blames_peer(&self) -> bool {
        matches!(
            self,
            RequestError::Dial(_) | RequestError::Timeout | RequestError::Other(_)
        )
    }
}

/// A request from a peer, waiting for an answer.
pub struct InboundRequest {
    /// Who asked.
    pub peer: PeerId,
    /// What they asked.
    pub request: Request,
    /// Where the answer goes (back through [`Network::respond`]).
    pub channel: ResponseChannel<Reply>,
}

/// What the swarm task can be asked to do.
pub enum Command {
    /// Send a chunk-protocol request.
    Request {
        /// To whom.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Reply, RequestError>>,
    },
    /// Answer an inbound request.
    Respond {
        /// The request's channel.
        channel: ResponseChannel<Reply>,
        /// The answer.
        response: Reply,
    },
    /// Announce that we provide a file or a keyword (and keep announcing it again).
    StartProviding(ProviderKey),
    /// [`Command::StartProviding`] for several keys (at most [`MAX_PROVIDE_AT_ONCE`]).
    StartProvidingMany(Vec<ProviderKey>),
    /// Stop announcing a file or a keyword.
    StopProviding(ProviderKey),
    /// Look up providers of a key; found peers are dialled and sent on `found` once
    /// connected (those not reached within 2 s are dropped); the sender is dropped when
    /// the lookup and its dials have ended.
    FindProviders {
        /// The file or keyword.
        key: ProviderKey,
        /// Where found providers go.
        found: mpsc::Sender<PeerId>,
        /// Told the lookup's id and its request counter when it starts.
        started: Option<oneshot::Sender<(kad::QueryId, Arc<AtomicU32>)>>,
    },
    /// End a provider lookup now; `done` is told once its request count is final.
    FinishLookup {
        /// The lookup.
        id: kad::QueryId,
        /// Told when it is over.
        done: oneshot::Sender<()>,
    },
    /// How the keyword keys' announcements stand.
    KeywordAnnouncements(oneshot::Sender<KeywordAnnouncements>),
    /// Send a catalog-protocol request (dialing `addrs` too if not connected).
    CatalogRequest {
        /// To whom.
        peer: PeerId,
        /// What.
        request: CatalogRequest,
        /// Addresses to try besides those the node knows.
        addrs: Vec<Multiaddr>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<CatalogResponse, RequestError>>,
    },
    /// Answer an inbound catalog request.
    RespondCatalog {
        /// The request's channel.
        channel: ResponseChannel<CatalogResponse>,
        /// The answer.
        response: CatalogResponse,
    },
    /// From now on, hand inbound catalog requests to this channel.
    ServeCatalog(mpsc::Sender<InboundCatalogRequest>),
    /// Dial an address (whose peer id may be unknown) and say which peer answered.
    Dial {
        /// Where.
        addr: Multiaddr,
        /// The peer, or why not.
        reply: oneshot::Sender<Result<PeerId, RequestError>>,
    },
    /// Our own identity and reach.
    Info(oneshot::Sender<NodeInfo>),
    /// Connected peers.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// How announcing each provided file went.
    Announcements(oneshot::Sender<Vec<Announcement>>),
    /// What the batched reprovider did since start.
    ReprovideStats(oneshot::Sender<ReprovideStats>),
    /// Peers we are connected to now (ids only).
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    /// The relays in use and the relay server's load.
    Relays(oneshot::Sender<RelaysReport>),
    /// Hold a reservation on this relay from now on (the owner's choice).
    AddRelay {
        /// The relay.
        peer: PeerId,
        /// A direct address of it (without `/p2p/…`).
        addr: Multiaddr,
        /// Whether it was taken.
        reply: oneshot::Sender<Result<(), RelayChoiceError>>,
    },
    /// Give back the reservation on this relay and do not pick it again.
    DropRelay {
        /// The relay.
        peer: PeerId,
        /// Whether it was known.
        reply: oneshot::Sender<Result<(), RelayChoiceError>>,
    },
    /// The peers in the DHT routing table and their addresses.
    RoutingTable(oneshot::Sender<Vec<PeerAddrs>>),
    /// Rejoin the network through peers known from an earlier run.
    Rejoin(Vec<PeerAddrs>),
    /// An expiry probe's result (from the task `relay_expiry` spawned).
    RelayExpiry {
        /// The relay asked.
        relay: PeerId,
        /// When our reservation on it expires, or why that was not read.
        expiry: Result<std::time::SystemTime, String>,
    },
    /// Remember addresses of a peer (from a share ticket) and dial it there now.
    DialAt {
        /// The peer.
        peer: PeerId,
        /// Where it said it can be reached.
        addrs: Vec<libp2p::Multiaddr>,
        /// Told once the addresses are known to the swarm and the dial started.
        done: oneshot::Sender<()>,
    },
}

/// A cheap, cloneable handle to the swarm task.
#[derive(Clone)]
pub struct Network {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<NetEvent>,
    pub(super) local_peer_id: PeerId,
    pub(super) streams: libp2p_stream::Control,
}

impl Network {
    async fn send(&self, command: Command) {
        // If the task is gone the daemon is shutting down; callers see closed oneshots.
        let _ = self.commands.send(command).await;
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Sends a chunk-protocol request and waits for the answer.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Reply, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await;
        answer.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Answers an inbound request.
    pub async fn respond(&self, channel: ResponseChannel<Reply>, response: impl Into<Reply>) {
        let response = response.into();
        self.send(Command::Respond { channel, response }).await;
    }

    /// Announces a file.
    pub async fn start_providing(&self, cid: Cid) {
        self.provide(ProviderKey::File(cid)).await;
    }

    /// Announces many files at once (a folder fetch's batch): the reprovider sends
    /// them grouped by keyspace region instead of one `ADD_PROVIDER` round per file.
    pub async fn start_providing_many(&self, cids: Vec<Cid>) {
        for some in cids.chunks(MAX_PROVIDE_AT_ONCE) {
            let keys = some.iter().map(|cid| ProviderKey::File(*cid)).collect();
            self.send(Command::StartProvidingMany(keys)).await;
        }
    }

    /// Stops announcing a file.
    pub async fn stop_providing(&self, cid: Cid) {
        self.stop_provide(ProviderKey::File(cid)).await;
    }

    /// Announces a keyword of our listed files (the reprovider announces it with the
    /// files' records).
    pub async fn start_providing_keyword(&self, word: String) {
        self.provide(ProviderKey::Keyword(word)).await;
    }

    /// Stops announcing a keyword.
    pub async fn stop_providing_keyword(&self, word: String) {
        self.stop_provide(ProviderKey::Keyword(word)).await;
    }

    /// Announces any key (a file, a keyword): the batched reprovider announces it soon,
    /// grouped with other keys of its keyspace region, and again every reprovide
    /// interval.
    pub async fn provide(&self, key: ProviderKey) {
        self.send(Command::StartProviding(key)).await;
    }

    /// Stops announcing a key (records already stored elsewhere expire with their TTL).
    pub async fn stop_provide(&self, key: ProviderKey) {
        self.send(Command::StopProviding(key)).await;
    }

    /// What the batched reprovider did since start.
    pub async fn reprovide_stats(&self) -> anyhow::Result<ReprovideStats> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ReprovideStats(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Starts a provider lookup of a file; providers we could connect to arrive on the
    /// returned channel, which closes when the lookup ends.
    pub async fn find_providers(&self, cid: Cid) -> mpsc::Receiver<PeerId> {
        let (found, rx) = mpsc::channel(256);
        self.send(Command::FindProviders {
            key: ProviderKey::File(cid),
            found,
            started: None,
        })
        .await;
        rx
    }

    /// Starts a provider lookup of any key. Providers we could connect to arrive on the
    /// lookup's `found` channel, which closes when the lookup and its dials end;
    /// [`ProviderLookup::finish`] ends it early and says how many DHT requests it sent.
    pub async fn find_providers_of(&self, key: ProviderKey) -> ProviderLookup {
        let (found_tx, found) = mpsc::channel(256);
        let (started, id) = oneshot::channel();
        self.send(Command::FindProviders {
            key,
            found: found_tx,
            started: Some(started),
        })
        .await;
        let (id, requests) = match id.await {
            Ok((id, requests)) => (Some(id), requests),
            Err(_) => (None, Arc::default()),
        };
        ProviderLookup {
            found,
            id,
            requests,
            commands: self.commands.clone(),
        }
    }

    /// How the keyword keys' announcements stand.
    pub async fn keyword_announcements(&self) -> anyhow::Result<KeywordAnnouncements> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::KeywordAnnouncements(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Sends a catalog request and waits for the answer (at most the protocol's request
    /// timeout). `addrs` are tried besides the addresses the node knows of `peer`.
    pub async fn catalog_request(
        &self,
        peer: PeerId,
        request: CatalogRequest,
        addrs: Vec<Multiaddr>,
    ) -> Result<CatalogResponse, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::CatalogRequest {
            peer,
            request,
            addrs,
            reply,
        })
        .await;
        answer.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Answers an inbound catalog request.
    pub async fn respond_catalog(
        &self,
        channel: ResponseChannel<CatalogResponse>,
        response: CatalogResponse,
    ) {
        self.send(Command::RespondCatalog { channel, response })
            .await;
    }

    /// Hands inbound catalog requests to `server` from now on (until then they are
    /// answered "no catalog").
    pub async fn serve_catalog(&self, server: mpsc::Sender<InboundCatalogRequest>) {
        self.send(Command::ServeCatalog(server)).await;
    }

    /// Dials `addr` and returns the peer that answered there.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, RequestError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await;
        answer.await.unwrap_or(Err(RequestError::Stopped))
    }

    /// Our identity and reach.
    pub async fn info(&self) -> anyhow::Result<NodeInfo> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Info(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Connected peers.
    pub async fn peers(&self) -> anyhow::Result<Vec<PeerInfo>> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Peers(reply)).await;
        answer.await.context("network task stopped")
    }

    /// How announcing each provided file went, sorted by CID.
    pub async fn announcements(&self) -> anyhow::Result<Vec<Announcement>> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Announcements(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Ids of the peers connected now.
    pub async fn connected_peers(&self) -> Vec<PeerId> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::ConnectedPeers(reply)).await;
        answer.await.unwrap_or_default()
    }

    /// Remembers `addrs` for `peer` (later dials, the transfer protocols' included, use
    /// them) and dials it there at once, without a DHT lookup.
    pub async fn dial_at(&self, peer: PeerId, addrs: Vec<libp2p::Multiaddr>) {
        let (done, dialing) = oneshot::channel();
        self.send(Command::DialAt { peer, addrs, done }).await;
        let _ = dialing.await;
    }

    /// The relays in use and, on a relay node, what it carries.
    pub async fn relays(&self) -> anyhow::Result<RelaysReport> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Relays(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Holds a reservation on a relay from now on, even while reachable directly.
    pub async fn add_relay(&self, peer: PeerId, addr: Multiaddr) -> Result<(), RelayChoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::AddRelay { peer, addr, reply }).await;
        answer.await.unwrap_or(Err(RelayChoiceError::Stopped))
    }

    /// Gives back the reservation on a relay; it is not picked again until added.
    pub async fn drop_relay(&self, peer: PeerId) -> Result<(), RelayChoiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::DropRelay { peer, reply }).await;
        answer.await.unwrap_or(Err(RelayChoiceError::Stopped))
    }

    /// Opens and accepts plain streams (protocols served outside the swarm task).
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// Live network events.
    pub fn subscribe(&self) -> broadcast::Receiver<NetEvent> {
        self.events.subscribe()
    }
}

/// A provider lookup started with [`Network::find_providers_of`].
pub struct ProviderLookup {
    /// Providers as they are found (never ourselves); closes when the lookup ends.
    pub found: mpsc::Receiver<PeerId>,
    id: Option<kad::QueryId>,
    requests: Arc<AtomicU32>,
    commands: mpsc::Sender<Command>,
}

impl ProviderLookup {
    /// Ends the lookup if it still runs, and returns how many DHT requests it sent.
    pub async fn finish(self) -> u32 {
        let ProviderLookup {
            found,
            id,
            requests,
            commands,
        } = self;
        drop(found);
        if let Some(id) = id {
            let (done, over) = oneshot::channel();
            if commands
                .send(Command::FinishLookup { id, done })
                .await
                .is_ok()
            {
                let _ = over.await;
            }
        }
        requests.load(Ordering::Relaxed)
    }
}
