//! The transfer protocols inside the swarm task: outbound requests in flight (each
//! answered on its caller's oneshot), and inbound requests handed to the upload server
//! on the bounded `inbound` channel, answered `Choked` here when that channel is full.

use dht_proto::{Request, Response};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
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
    inbound: mpsc::Sender<InboundRequest>,
}

impl Requests {
    pub(super) fn new(inbound: mpsc::Sender<InboundRequest>) -> Self {
        Requests {
            in_flight: InFlight::new(MAX_PENDING_REQUESTS, MAX_PENDING_PER_PEER),
            inbound,
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
                ..
            } => {
                tracing::debug!(%peer, "chunk request failed: {error}");
                if let Some(reply) = self.requests.in_flight.remove(&(protocol, request_id)) {
                    let _ = reply.send(Err(error.into()));
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
