//! Bytes carried through each relay: the relay client's transport is wrapped so that
//! every stream of a connection through a relay counts what it reads and writes, under
//! that relay's peer id (from the connection's address: the peer just before
//! `/p2p-circuit`). The counts are of the streams' own bytes (what the protocols sent),
//! not of the noise and yamux framing around them. libp2p's bandwidth metrics count
//! relayed bytes in all, not per relay.
//!
//! The counters are shared with the swarm task, which reads them for `p2pd relays`.

use std::collections::HashMap;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent};
use libp2p::core::ConnectedPoint;
use libp2p::PeerId;

use super::relays::relay_of;

/// Relays whose bytes are counted one by one; connections through further relays are
/// not counted (a peer's addresses may name any relay).
const MAX_COUNTED_RELAYS: usize = 128;

/// Bytes one relay carried for us.
#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

/// The counters of every relay, shared by the transport and the swarm task.
#[derive(Debug, Clone, Default)]
pub struct RelayTraffic {
    by_relay: Arc<Mutex<HashMap<PeerId, Arc<Counters>>>>,
}

impl RelayTraffic {
    fn counters(&self, relay: PeerId) -> Option<Arc<Counters>> {
        let mut map = self.by_relay.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&relay) {
            return Some(c.clone());
        }
        if map.len() >= MAX_COUNTED_RELAYS {
            return None;
        }
        Some(map.entry(relay).or_default().clone())
    }

    /// Bytes sent and received through `relay` since the daemon started.
    pub fn of(&self, relay: &PeerId) -> (u64, u64) {
        let map = self.by_relay.lock().unwrap_or_else(|p| p.into_inner());
        map.get(relay).map_or((0, 0), |c| {
            (
                c.sent.load(Ordering::Relaxed),
                c.received.load(Ordering::Relaxed),
            )
        })
    }

    /// Wraps a new connection's muxer: counted if it goes through a relay.
    pub fn count(&self, muxer: StreamMuxerBox, endpoint: &ConnectedPoint) -> StreamMuxerBox {
        let addr = match endpoint {
            ConnectedPoint::Dialer { address, .. } => address,
            ConnectedPoint::Listener { local_addr, .. } => local_addr,
        };
        match relay_of(addr).and_then(|relay| self.counters(relay)) {
            Some(counters) => StreamMuxerBox::new(CountedMuxer {
                inner: muxer,
                counters,
            }),
            None => muxer,
        }
    }
}

/// A connection's muxer whose streams count their bytes.
struct CountedMuxer {
    inner: StreamMuxerBox,
    counters: Arc<Counters>,
}

impl StreamMuxer for CountedMuxer {
    type Substream = CountedStream;
    type Error = std::io::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let counters = self.counters.clone();
        Pin::new(&mut self.inner)
            .poll_inbound(cx)
            .map_ok(|inner| CountedStream { inner, counters })
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let counters = self.counters.clone();
        Pin::new(&mut self.inner)
            .poll_outbound(cx)
            .map_ok(|inner| CountedStream { inner, counters })
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// A stream that counts what passes.
struct CountedStream {
    inner: libp2p::core::muxing::SubstreamBox,
    counters: Arc<Counters>,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = read {
            self.counters
                .received
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        read
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            self.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
