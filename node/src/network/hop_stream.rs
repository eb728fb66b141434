//! Outbound streams of the relay hop protocol on one chosen connection, for
//! `relay_expiry.rs`. The general stream behaviour (`libp2p_stream`) opens a stream on
//! a random one of the peer's connections; a `RESERVE` refreshes the reservation only
//! on the connection that holds it, and on any other it would take a second
//! reservation slot (which the relay then keeps that connection open for). Nothing is
//! ever accepted inbound, and no connection is kept open for these streams.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::task::{Context, Poll, Waker};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{DeniedUpgrade, ReadyUpgrade};
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{ConnectionEvent, DialUpgradeError, FullyNegotiatedOutbound};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, NotifyHandler, Stream, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::oneshot;

/// The hop protocol of circuit relay v2.
pub const HOP_PROTOCOL: StreamProtocol = StreamProtocol::new(dht_proto::relay_hop::HOP_PROTOCOL);
/// Stream requests waiting to reach their connection, and per connection.
const MAX_PENDING: usize = 16;

/// Where an opened stream (or why none) goes.
pub type StreamReply = oneshot::Sender<Result<Stream, String>>;

/// The behaviour: asked from the swarm task, answered through the reply channel.
#[derive(Default)]
pub struct HopStreams {
    pending: VecDeque<(PeerId, ConnectionId, StreamReply)>,
    waker: Option<Waker>,
}

impl HopStreams {
    /// Opens a hop stream to `peer` on `connection`. If the connection is gone by then,
    /// `reply` is dropped unanswered.
    pub fn open(&mut self, peer: PeerId, connection: ConnectionId, reply: StreamReply) {
        if self.pending.len() >= MAX_PENDING {
            let _ = reply.send(Err("too many hop streams waiting".into()));
            return;
        }
        self.pending.push_back((peer, connection, reply));
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl NetworkBehaviour for HopStreams {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::default())
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.pending.pop_front() {
            Some((peer_id, connection, reply)) => Poll::Ready(ToSwarm::NotifyHandler {
                peer_id,
                handler: NotifyHandler::One(connection),
                event: reply,
            }),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// One connection's side: opens the streams asked for, in order.
#[derive(Default)]
pub struct Handler {
    /// Asked for, not yet requested from the connection.
    to_open: VecDeque<StreamReply>,
    /// Requested from the connection, waiting for negotiation (answered in order).
    opening: VecDeque<StreamReply>,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = StreamReply;
    type ToBehaviour = Infallible;
    type InboundProtocol = DeniedUpgrade;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        SubstreamProtocol::new(DeniedUpgrade, ())
    }

    fn on_behaviour_event(&mut self, reply: StreamReply) {
        if self.to_open.len() + self.opening.len() >= MAX_PENDING {
            let _ = reply.send(Err("too many hop streams on this connection".into()));
            return;
        }
        self.to_open.push_back(reply);
    }

    fn connection_keep_alive(&self) -> bool {
        false
    }

    fn poll(
        &mut self,
        _: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Infallible>> {
        match self.to_open.pop_front() {
            Some(reply) => {
                self.opening.push_back(reply);
                Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                    protocol: SubstreamProtocol::new(ReadyUpgrade::new(HOP_PROTOCOL), ()),
                })
            }
            None => Poll::Pending,
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: stream,
                ..
            }) => {
                if let Some(reply) = self.opening.pop_front() {
                    let _ = reply.send(Ok(stream));
                }
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                if let Some(reply) = self.opening.pop_front() {
                    let _ = reply.send(Err(error.to_string()));
                }
            }
            _ => {}
        }
    }
}
