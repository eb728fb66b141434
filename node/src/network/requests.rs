//! The transfer protocols inside the swarm task: outbound requests in flight (each
//! answered on its caller's oneshot), and inbound requests handed to the upload server
//! on the bounded `inbound` channel, answered `Choked` here when that channel is full.

use std::time::{Duration, Instant};

use dht_proto::{Request, Response};
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::ConnectionId;
use libp2p::PeerId;
use tokio::sync::{mpsc, oneshot};

use super::actor::NetworkActor;
use super::codec::Reply;
use super::handle::{InboundRequest, RequestError};
use super::in_flight::InFlight;

/// Most transfer-protocol requests in flight from this node at once.
pub(super) const MAX_PENDING_REQUESTS: usize = 4096;
/// Most in flight to one peer: below the 256 streams a p2pd peer accepts per
/// connection, so that our own burst (e.g. `Have`s) is refused here, as a local
/// overload, instead of being reset by the peer and blamed on it.
pub(super) const MAX_PENDING_PER_PEER: usize = 128;
/// How long a request's I/O failure waits for its connection to be reported closed.
/// When a peer closes a connection, a request whose stream was open on it (as each
/// is from the start: streams open with `V1Lazy`) fails with the stream's I/O error,
/// and the swarm reports the connection closed just after. Such a request was cut
/// short, not failed by the peer: it ends as `ConnectionClosed`, asked again over
/// another connection and never held against the peer. An I/O failure whose
/// connection stays open is passed on after this wait (up to one actor tick later).
const CLOSE_WAIT: Duration = Duration::from_millis(300);

/// The two request-response protocols of a transfer (they differ in response limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Transfer {
    Chunk,
    Manifest,
}

type ReplyTo = oneshot::Sender<Result<Reply, RequestError>>;

/// Outbound requests in flight and the way to the upload server.
pub(super) struct Requests {
    /// Requests in flight, by the protocol they went on and their id there.
    in_flight: InFlight<(Transfer, OutboundRequestId), ReplyTo>,
    /// Requests that failed with an I/O error, waiting [`CLOSE_WAIT`] to learn whether
    /// their connection closed (at most as many as were in flight).
    failed_on: Vec<HeldFailure>,
    inbound: mpsc::Sender<InboundRequest>,
}

/// A request's I/O failure held back until its connection closes or [`CLOSE_WAIT`]
/// passes.
struct HeldFailure {
    connection: ConnectionId,
    until: Instant,
    reply: ReplyTo,
    error: RequestError,
}

impl Requests {
    pub(super) fn new(inbound: mpsc::Sender<InboundRequest>) -> Self {
        Requests {
            in_flight: InFlight::new(MAX_PENDING_REQUESTS, MAX_PENDING_PER_PEER),
            failed_on: Vec::new(),
            inbound,
        }
    }

    /// The connection closed: requests that failed on it were cut short.
    pub(super) fn on_connection_closed(&mut self, connection: ConnectionId) {
        for held in self
            .failed_on
            .extract_if(.., |held| held.connection == connection)
        {
            let _ = held.reply.send(Err(RequestError::ConnectionClosed));
        }
    }

    /// Passes on the I/O failures whose connection is still open after [`CLOSE_WAIT`].
    pub(super) fn release_held_failures(&mut self, now: Instant) {
        for held in self.failed_on.extract_if(.., |held| held.until <= now) {
            let _ = held.reply.send(Err(held.error));
        }
    }

    /// Requests in flight, and peers they are in flight to.
    #[cfg(test)]
    pub(super) fn in_flight(&self) -> (usize, usize) {
        self.in_flight.counts()
    }
}

impl NetworkActor {
    pub(super) fn send_request(&mut self, peer: PeerId, request: Request, reply: ReplyTo) {
        if !self.requests.in_flight.has_room(&peer) {
            let _ = reply.send(Err(RequestError::Overloaded));
            return;
        }
        let behaviour = self.swarm.behaviour_mut();
        let key = match request {
            Request::Manifest { .. } => (
                Transfer::Manifest,
                behaviour.manifest.send_request(&peer, request),
            ),
            _ => (
                Transfer::Chunk,
                behaviour.chunk.send_request(&peer, request),
            ),
        };
        self.requests.in_flight.insert(key, peer, reply);
    }

    pub(super) fn respond(&mut self, channel: ResponseChannel<Reply>, response: Reply) {
        // A response channel carries its own sender: answering through the chunk
        // behaviour is right for requests of either transfer protocol.
        if self
            .swarm
            .behaviour_mut()
            .chunk
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!("response dropped: the requester went away");
        }
    }

    pub(super) fn on_transfer_event(
        &mut self,
        protocol: Transfer,
        event: request_response::Event<Request, Reply>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request,
                    channel,
                    request_id,
                } => {
                    tracing::trace!(%peer, %request_id, ?request, "inbound request");
                    let inbound = InboundRequest {
                        peer,
                        request,
                        channel,
                    };
                    if let Err(e) = self.requests.inbound.try_send(inbound) {
                        // Overloaded: say so rather than queue without bound.
                        let inbound = match e {
                            mpsc::error::TrySendError::Full(i)
                            | mpsc::error::TrySendError::Closed(i) => i,
                        };
                        self.respond(inbound.channel, Reply::Message(Response::Choked));
                    }
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    tracing::trace!(%peer, %request_id, "response received");
                    if let Some(reply) = self.requests.in_flight.remove(&(protocol, request_id)) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                connection_id,
            } => {
                tracing::debug!(%peer, "chunk request failed: {error}");
                let Some(reply) = self.requests.in_flight.remove(&(protocol, request_id)) else {
                    return;
                };
                if !matches!(error, OutboundFailure::Io(_)) {
                    let _ = reply.send(Err(error.into()));
                } else if !self.peers.is_open(&peer, connection_id) {
                    let _ = reply.send(Err(RequestError::ConnectionClosed));
                } else {
                    self.requests.failed_on.push(HeldFailure {
                        connection: connection_id,
                        until: Instant::now() + CLOSE_WAIT,
                        reply,
                        error: error.into(),
                    });
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound chunk request failed: {error}");
            }
            request_response::Event::ResponseSent {
                peer, request_id, ..
            } => tracing::trace!(%peer, %request_id, "response sent"),
        }
    }
}
