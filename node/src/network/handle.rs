//! The handle to the swarm task: [`Network`] (cheap to clone), the [`Command`]s it sends
//! over the bounded command channel, and the errors its callers see.

use anyhow::Context as _;
use dht_proto::{Cid, Request};
use libp2p::request_response::ResponseChannel;
use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::announce::ProviderKey;
use super::codec::Reply;
use super::info::{Announcement, NetEvent, NodeInfo, PeerInfo};
use super::known_peers::PeerAddrs;
use super::reprovide::ReprovideStats;

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
    /// Stop announcing a file or a keyword.
    StopProviding(ProviderKey),
    /// Look up providers of a file; found peers are dialled and sent on `found` once
    /// connected (those not reached within 2 s are dropped); the sender is dropped when
    /// the lookup and its dials have ended.
    FindProviders {
        /// The file.
        cid: Cid,
        /// Where found providers go.
        found: mpsc::Sender<PeerId>,
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
    /// The peers in the DHT routing table and their addresses.
    RoutingTable(oneshot::Sender<Vec<PeerAddrs>>),
    /// Rejoin the network through peers known from an earlier run.
    Rejoin(Vec<PeerAddrs>),
}

/// A cheap, cloneable handle to the swarm task.
#[derive(Clone)]
pub struct Network {
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) events: broadcast::Sender<NetEvent>,
    pub(super) local_peer_id: PeerId,
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

    /// Stops announcing a file.
    pub async fn stop_providing(&self, cid: Cid) {
        self.stop_provide(ProviderKey::File(cid)).await;
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

    /// Starts a provider lookup; providers we could connect to arrive on the returned
    /// channel, which closes when the lookup ends.
    pub async fn find_providers(&self, cid: Cid) -> mpsc::Receiver<PeerId> {
        let (found, rx) = mpsc::channel(256);
        self.send(Command::FindProviders { cid, found }).await;
        rx
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

    /// Live network events.
    pub fn subscribe(&self) -> broadcast::Receiver<NetEvent> {
        self.events.subscribe()
    }
}
