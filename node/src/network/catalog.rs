//! The catalog protocol `/p2pd/catalog/1.0.0` inside the swarm task: its libp2p codec
//! (one CBOR message each way per stream, read no further than `dht-proto`'s limits),
//! outbound requests in flight (each answered on its caller's oneshot, bounded per peer
//! and in all), inbound requests handed to the catalog server on a bounded channel
//! (answered here when there is no room), and dials to an address whose peer is not
//! known yet (browsing a peer by its address).

use std::collections::HashMap;
use std::io;
use std::time::Duration;

use dht_proto::catalog::{
    CatalogRequest, CatalogResponse, CATALOG_PROTOCOL, MAX_CATALOG_REQUEST_LEN,
    MAX_CATALOG_RESPONSE_LEN,
};
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use super::actor::NetworkActor;
use super::codec::{invalid, read_limited};
use super::handle::RequestError;
use super::in_flight::InFlight;

/// Longest a catalog request may wait for its answer (request and response together).
/// A searcher stops waiting at its own deadline, which is usually shorter.
pub(super) const CATALOG_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Catalog streams open at once on one connection. A searcher sends one request per peer
/// per search and a browser one page at a time, so this is generous; past it a peer's
/// further streams are reset.
const CATALOG_STREAMS_PER_CONNECTION: usize = 16;
/// Catalog requests in flight from this node to one peer, and in all.
const MAX_PENDING_PER_PEER: usize = 8;
const MAX_PENDING: usize = 1024;
/// Dials by address waiting for the peer to be known.
const MAX_PENDING_DIALS: usize = 64;

/// A catalog request from a peer, waiting for the catalog server's answer.
pub struct InboundCatalogRequest {
    /// Who asked (the catalog server rate-limits per peer).
    pub peer: PeerId,
    /// What they asked.
    pub request: CatalogRequest,
    /// Where the answer goes (back through [`Network::respond_catalog`](super::Network::respond_catalog)).
    pub channel: ResponseChannel<CatalogResponse>,
}

/// The request-response codec of the catalog protocol.
#[derive(Debug, Clone, Default)]
pub struct CatalogCodec;

impl request_response::Codec for CatalogCodec {
    type Protocol = StreamProtocol;
    type Request = CatalogRequest;
    type Response = CatalogResponse;

    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<CatalogRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_limited(io, MAX_CATALOG_REQUEST_LEN, "catalog message").await?;
        CatalogRequest::decode(&bytes).map_err(invalid)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<CatalogResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_limited(io, MAX_CATALOG_RESPONSE_LEN, "catalog message").await?;
        CatalogResponse::decode(&bytes).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: CatalogRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&request.encode()).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: CatalogResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&response.encode()).await?;
        io.close().await
    }
}

/// The catalog behaviour: our codec, our protocol name, our timeout and stream bound.
pub(super) fn catalog_behaviour() -> request_response::Behaviour<CatalogCodec> {
    request_response::Behaviour::with_codec(
        CatalogCodec,
        [(
            StreamProtocol::new(CATALOG_PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(CATALOG_REQUEST_TIMEOUT)
            .with_max_concurrent_streams(CATALOG_STREAMS_PER_CONNECTION),
    )
}

type ReplyTo = oneshot::Sender<Result<CatalogResponse, RequestError>>;

/// Catalog requests in flight, the way to the catalog server, and dials by address.
pub(super) struct CatalogRequests {
    in_flight: InFlight<OutboundRequestId, ReplyTo>,
    /// The catalog server's inbound channel, once it started.
    server: Option<mpsc::Sender<InboundCatalogRequest>>,
    dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, RequestError>>>,
}

impl Default for CatalogRequests {
    fn default() -> Self {
        CatalogRequests {
            in_flight: InFlight::new(MAX_PENDING, MAX_PENDING_PER_PEER),
            server: None,
            dials: HashMap::new(),
        }
    }
}

impl CatalogRequests {
    /// Requests and dials in flight, and peers requests are in flight to.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> (usize, usize, usize) {
        let (pending, peers) = self.in_flight.counts();
        (pending, peers, self.dials.len())
    }
}

impl NetworkActor {
    pub(super) fn send_catalog_request(
        &mut self,
        peer: PeerId,
        request: CatalogRequest,
        addrs: Vec<Multiaddr>,
        reply: ReplyTo,
    ) {
        if !self.catalog.in_flight.has_room(&peer) {
            let _ = reply.send(Err(RequestError::Overloaded));
            return;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .catalog
            .send_request_with_addresses(&peer, request, addrs);
        self.catalog.in_flight.insert(id, peer, reply);
    }

    pub(super) fn respond_catalog(
        &mut self,
        channel: ResponseChannel<CatalogResponse>,
        response: CatalogResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .catalog
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("catalog response dropped: the requester went away");
        }
    }

    pub(super) fn serve_catalog(&mut self, server: mpsc::Sender<InboundCatalogRequest>) {
        self.catalog.server = Some(server);
    }

    pub(super) fn on_catalog_event(
        &mut self,
        event: request_response::Event<CatalogRequest, CatalogResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.hand_to_catalog_server(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.catalog.in_flight.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                tracing::debug!(%peer, "catalog request failed: {error}");
                if let Some(reply) = self.catalog.in_flight.remove(&request_id) {
                    let _ = reply.send(Err(error.into()));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound catalog request failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Passes a request to the catalog server without ever waiting: when its queue is
    /// full the peer is told to come back later, and before the server runs (or after it
    /// stopped) that there is no catalog to ask.
    fn hand_to_catalog_server(
        &mut self,
        peer: PeerId,
        request: CatalogRequest,
        channel: ResponseChannel<CatalogResponse>,
    ) {
        let inbound = InboundCatalogRequest {
            peer,
            request,
            channel,
        };
        let refused = match &self.catalog.server {
            None => Some((inbound, false)),
            Some(server) => match server.try_send(inbound) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Full(i)) => Some((i, true)),
                Err(mpsc::error::TrySendError::Closed(i)) => Some((i, false)),
            },
        };
        if let Some((inbound, busy)) = refused {
            let response = if busy {
                CatalogResponse::RateLimited {
                    retry_after_secs: 1,
                }
            } else {
                CatalogResponse::Error {
                    message: "no catalog is served here".into(),
                }
            };
            self.respond_catalog(inbound.channel, response);
        }
    }

    /// Dials an address whose peer id we may not know; the answer is the peer that
    /// answered there.
    pub(super) fn dial_address(
        &mut self,
        addr: Multiaddr,
        reply: oneshot::Sender<Result<PeerId, RequestError>>,
    ) {
        if self.catalog.dials.len() >= MAX_PENDING_DIALS {
            let _ = reply.send(Err(RequestError::Overloaded));
            return;
        }
        let opts = DialOpts::unknown_peer_id().address(addr).build();
        let id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.catalog.dials.insert(id, reply);
            }
            Err(e) => {
                let _ = reply.send(Err(RequestError::Dial(e.to_string())));
            }
        }
    }

    /// A connection we dialed by address is up: its caller learns the peer.
    pub(super) fn on_dialed(&mut self, connection: ConnectionId, peer: PeerId) {
        if let Some(reply) = self.catalog.dials.remove(&connection) {
            let _ = reply.send(Ok(peer));
        }
    }

    /// A dial failed: a caller waiting on it learns why.
    pub(super) fn on_dial_failed(&mut self, connection: ConnectionId, error: String) {
        if let Some(reply) = self.catalog.dials.remove(&connection) {
            let _ = reply.send(Err(RequestError::Dial(error)));
        }
    }
}
