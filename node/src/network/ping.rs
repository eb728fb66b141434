//! The libp2p ping protocol (`/ipfs/ping/1.0.0`, 32 bytes echoed), our own: we measure
//! each connection's round-trip time with it, and we always answer a peer's pings.
//!
//! libp2p-ping 0.48 stops polling its whole handler once a peer answers our ping with
//! "protocol not supported", so from then on it no longer answers that peer's own
//! pings either; js-libp2p's connection monitor then drops the connection after about
//! 15 s. Here a peer that does not answer pings is simply not pinged again, and inbound
//! pings are answered whatever happened outbound.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{AsyncReadExt, AsyncWriteExt, Future, FutureExt};
use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{NegotiationError, ReadyUpgrade};
use libp2p::core::Endpoint;
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, Stream, StreamUpgradeError, SubstreamProtocol, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// The ping protocol's name.
pub const PING_PROTOCOL: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");
const PING_SIZE: usize = 32;
/// What a node that does not answer pings listens under instead: a name nobody asks for.
const NOT_ANSWERING: StreamProtocol = StreamProtocol::new("/p2pd/not-answering-pings");

/// How often and how patiently we ping.
#[derive(Debug, Clone, Copy)]
pub struct PingConfig {
    /// Pause between two pings on a connection.
    pub interval: Duration,
    /// Longest a ping may take.
    pub timeout: Duration,
    /// Whether to answer peers' pings (always, except for tests that play a peer that
    /// does not).
    pub answer: bool,
}

/// What a ping told about a connection.
#[derive(Debug)]
pub struct PingEvent {
    /// The peer.
    pub peer: PeerId,
    /// The connection.
    pub connection: ConnectionId,
    /// The round-trip time, or why there is none.
    pub result: Result<Duration, PingFailure>,
}

/// Why a ping gave no round-trip time.
#[derive(Debug, thiserror::Error)]
pub enum PingFailure {
    /// The peer does not speak the ping protocol (it is not pinged again on this
    /// connection; its own pings are still answered).
    #[error("the peer does not support ping")]
    Unsupported,
    /// No answer in time.
    #[error("ping timed out")]
    Timeout,
    /// The stream failed or the answer was wrong.
    #[error("ping failed: {0}")]
    Other(io::Error),
}

/// Pings every connection and answers every ping.
pub struct Ping {
    config: PingConfig,
    events: VecDeque<PingEvent>,
}

impl Ping {
    /// A ping behaviour with `config`.
    pub fn new(config: PingConfig) -> Self {
        Ping {
            config,
            events: VecDeque::new(),
        }
    }
}

impl NetworkBehaviour for Ping {
    type ConnectionHandler = Handler;
    type ToSwarm = PingEvent;

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.config))
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(Handler::new(self.config))
    }

    fn on_swarm_event(&mut self, _: FromSwarm) {}

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        result: THandlerOutEvent<Self>,
    ) {
        // Bounded: a handler reports at most one event per ping interval.
        if self.events.len() < 1024 {
            self.events.push_back(PingEvent {
                peer,
                connection,
                result,
            });
        }
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<PingEvent, THandlerInEvent<Self>>> {
        match self.events.pop_front() {
            Some(e) => Poll::Ready(ToSwarm::GenerateEvent(e)),
            None => Poll::Pending,
        }
    }
}

type Pinging = BoxFuture<'static, Result<(Stream, Duration), PingFailure>>;

enum Outbound {
    /// Waiting for the next ping.
    Waiting(Pin<Box<tokio::time::Sleep>>, Option<Stream>),
    /// A stream was asked for.
    Opening,
    /// A ping is out.
    Pinging(Pinging),
    /// The peer does not speak ping: we stop asking.
    Unsupported,
}

/// One connection's pings.
pub struct Handler {
    config: PingConfig,
    /// The peer's ping stream, answered as long as it stays open.
    inbound: Option<BoxFuture<'static, io::Result<Stream>>>,
    outbound: Outbound,
    report: Option<Result<Duration, PingFailure>>,
}

impl Handler {
    fn new(config: PingConfig) -> Self {
        Handler {
            config,
            inbound: None,
            // The first ping goes out at once.
            outbound: Outbound::Waiting(Box::pin(tokio::time::sleep(Duration::ZERO)), None),
            report: None,
        }
    }

    fn wait(&self, stream: Option<Stream>) -> Outbound {
        Outbound::Waiting(Box::pin(tokio::time::sleep(self.config.interval)), stream)
    }
}

async fn answer(mut stream: Stream) -> io::Result<Stream> {
    let mut payload = [0u8; PING_SIZE];
    stream.read_exact(&mut payload).await?;
    stream.write_all(&payload).await?;
    stream.flush().await?;
    Ok(stream)
}

async fn ping(mut stream: Stream, timeout: Duration) -> Result<(Stream, Duration), PingFailure> {
    let payload: [u8; PING_SIZE] = rand::random();
    let exchange = async {
        stream.write_all(&payload).await?;
        stream.flush().await?;
        let started = Instant::now();
        let mut echo = [0u8; PING_SIZE];
        stream.read_exact(&mut echo).await?;
        if echo != payload {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "wrong ping echo",
            ));
        }
        Ok(started.elapsed())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Err(PingFailure::Timeout),
        Ok(Err(e)) if refused_lazily(&e) => Err(PingFailure::Unsupported),
        Ok(Err(e)) => Err(PingFailure::Other(e)),
        Ok(Ok(rtt)) => Ok((stream, rtt)),
    }
}

/// Whether a ping stream's error is the peer refusing the protocol. Streams are opened
/// with `V1Lazy` (see `build::swarm_config`), so a refusal arrives when we read the
/// echo, wrapped in an I/O error, not as a failed negotiation.
fn refused_lazily(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<NegotiationError>())
        .is_some_and(|e| matches!(e, NegotiationError::Failed))
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Result<Duration, PingFailure>;
    type InboundProtocol = ReadyUpgrade<StreamProtocol>;
    type OutboundProtocol = ReadyUpgrade<StreamProtocol>;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = ();

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol> {
        let name = if self.config.answer {
            PING_PROTOCOL
        } else {
            NOT_ANSWERING
        };
        SubstreamProtocol::new(ReadyUpgrade::new(name), ())
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, (), Self::ToBehaviour>> {
        // Answer the peer's pings first, whatever happened to ours.
        if let Some(fut) = self.inbound.as_mut() {
            match fut.poll_unpin(cx) {
                Poll::Pending => {}
                Poll::Ready(Ok(stream)) => self.inbound = Some(answer(stream).boxed()),
                Poll::Ready(Err(e)) => {
                    tracing::trace!("inbound ping stream ended: {e}");
                    self.inbound = None;
                }
            }
        }
        if let Some(report) = self.report.take() {
            return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(report));
        }
        loop {
            match std::mem::replace(&mut self.outbound, Outbound::Opening) {
                Outbound::Unsupported => {
                    self.outbound = Outbound::Unsupported;
                    return Poll::Pending;
                }
                Outbound::Opening => return Poll::Pending,
                Outbound::Waiting(mut timer, stream) => {
                    if timer.as_mut().poll(cx).is_pending() {
                        self.outbound = Outbound::Waiting(timer, stream);
                        return Poll::Pending;
                    }
                    match stream {
                        Some(stream) => {
                            self.outbound =
                                Outbound::Pinging(ping(stream, self.config.timeout).boxed());
                        }
                        None => {
                            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                                protocol: SubstreamProtocol::new(
                                    ReadyUpgrade::new(PING_PROTOCOL),
                                    (),
                                )
                                .with_timeout(self.config.timeout),
                            });
                        }
                    }
                }
                Outbound::Pinging(mut fut) => match fut.poll_unpin(cx) {
                    Poll::Pending => {
                        self.outbound = Outbound::Pinging(fut);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok((stream, rtt))) => {
                        self.outbound = self.wait(Some(stream));
                        return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(Ok(rtt)));
                    }
                    Poll::Ready(Err(e)) => {
                        self.outbound = match e {
                            PingFailure::Unsupported => Outbound::Unsupported,
                            // A new stream for the next ping.
                            _ => self.wait(None),
                        };
                        return Poll::Ready(ConnectionHandlerEvent::NotifyBehaviour(Err(e)));
                    }
                },
            }
        }
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<Self::InboundProtocol, Self::OutboundProtocol>,
    ) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: mut stream,
                ..
            }) => {
                // A ping stream must not keep an idle connection open.
                stream.ignore_for_keep_alive();
                self.inbound = Some(answer(stream).boxed());
            }
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: mut stream,
                ..
            }) => {
                stream.ignore_for_keep_alive();
                self.outbound = Outbound::Pinging(ping(stream, self.config.timeout).boxed());
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { error, .. }) => {
                let failure = match error {
                    StreamUpgradeError::NegotiationFailed => {
                        self.outbound = Outbound::Unsupported;
                        PingFailure::Unsupported
                    }
                    StreamUpgradeError::Timeout => {
                        self.outbound = self.wait(None);
                        PingFailure::Timeout
                    }
                    StreamUpgradeError::Io(e) => {
                        self.outbound = self.wait(None);
                        PingFailure::Other(e)
                    }
                    StreamUpgradeError::Apply(never) => match never {},
                };
                self.report = Some(Err(failure));
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_read_through_a_lazy_negotiation_is_unsupported() {
        // What multistream-select's `Negotiated` returns when the listener refuses the
        // protocol the dialer settled on.
        let refused: io::Error = NegotiationError::Failed.into();
        assert!(refused_lazily(&refused));
        assert!(!refused_lazily(&io::Error::other("connection reset")));
        assert!(!refused_lazily(&io::Error::from(
            io::ErrorKind::UnexpectedEof
        )));
    }
}
