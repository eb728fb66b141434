//! Securing and multiplexing one TCP connection: TLS 1.3 ([`super::tls`]) or Noise,
//! then Yamux.
//!
//! A listener accepts either (TLS preferred). A dialer proposes TLS alone, so that
//! multistream-select's `V1Lazy` sends the TLS handshake with the proposal instead of
//! waiting a round trip for the listener to confirm it (a dialer proposing two
//! protocols must wait for the answer to the first). When a listener refuses TLS (a
//! peer that speaks only Noise), its address is remembered ([`NoiseOnly`]) and every
//! later dial to it proposes Noise; a dial given a way to connect again
//! ([`Upgrader::upgrade_or_redial`]) connects again at once and proposes Noise, so that
//! the first dial to such a peer succeeds too.

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, Mutex};

use futures::future::Either;
use futures::io::BufWriter;
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::upgrade::{
    InboundConnectionUpgrade as _, NegotiationError, OutboundConnectionUpgrade as _, Version,
};
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::{identity, noise, yamux, Multiaddr, PeerId};
use multistream_select::{dialer_select_proto, listener_select_proto};

use super::tls;

/// Noise's protocol id.
const NOISE: &str = "/noise";
/// Yamux's protocol id.
const YAMUX: &str = "/yamux/1.0.0";
/// Bytes of yamux frames gathered before they go to TLS. Yamux writes each frame's
/// 12-byte header and its body (up to 16 KiB) with separate writes, and rustls seals
/// every write into records of its own: unbuffered, each frame would cost a record
/// for its header alone.
const TLS_WRITE_BUFFER: usize = 64 * 1024;
/// Addresses remembered as refusing TLS; past this many, one is forgotten for each new.
const MAX_NOISE_ONLY: usize = 1024;

/// Addresses whose listener refused TLS: dials to them propose Noise.
#[derive(Clone, Default)]
struct NoiseOnly(Arc<Mutex<HashSet<Multiaddr>>>);

impl NoiseOnly {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Multiaddr>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn contains(&self, address: &Multiaddr) -> bool {
        self.lock().contains(address)
    }

    fn insert(&self, address: Multiaddr) {
        let mut set = self.lock();
        if set.len() >= MAX_NOISE_ONLY {
            if let Some(old) = set.iter().next().cloned() {
                set.remove(&old);
            }
        }
        set.insert(address);
    }
}

/// Whether `e` says the listener refused the protocol we proposed.
fn refused(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<NegotiationError>())
        .is_some_and(|n| matches!(n, NegotiationError::Failed))
}

/// What secures and multiplexes the node's TCP connections.
#[derive(Clone)]
pub struct Upgrader {
    tls: tls::Config,
    noise: noise::Config,
    yamux: yamux::Config,
    noise_only: NoiseOnly,
}

impl Upgrader {
    pub fn new(key: &identity::Keypair) -> io::Result<Self> {
        Ok(Upgrader {
            tls: tls::Config::new(key)?,
            noise: noise::Config::new(key).map_err(io::Error::other)?,
            yamux: yamux::Config::default(),
            noise_only: NoiseOnly::default(),
        })
    }

    /// Secures and multiplexes `conn`, as the side `endpoint` gives us (a hole punch
    /// may make a dialer act as the listener).
    pub async fn upgrade<C>(
        self,
        conn: C,
        endpoint: ConnectedPoint,
    ) -> io::Result<(PeerId, StreamMuxerBox)>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let address = match &endpoint {
            ConnectedPoint::Dialer {
                address,
                role_override: Endpoint::Dialer,
                ..
            } => address.clone(),
            _ => return self.accept(conn).await,
        };
        if self.noise_only.contains(&address) {
            let (_, io) = dialer_select_proto(conn, [NOISE], Version::V1Lazy).await?;
            let (peer, io) = self
                .noise
                .upgrade_outbound(io, NOISE)
                .await
                .map_err(io::Error::other)?;
            return multiplex_outbound(peer, io, self.yamux).await;
        }
        let (_, io) = dialer_select_proto(conn, [tls::PROTOCOL], Version::V1Lazy).await?;
        match self.tls.connect(io).await {
            Ok((peer, io)) => multiplex_outbound(peer, write_buffered(io), self.yamux).await,
            Err(e) => {
                if refused(&e) {
                    tracing::debug!(%address, "the peer refused TLS; dialing it with Noise from now on");
                    self.noise_only.insert(address);
                }
                Err(e)
            }
        }
    }

    /// As [`Upgrader::upgrade`]; when the listener refuses TLS, connects to the same
    /// address again with `redial` and proposes Noise on the new connection.
    pub async fn upgrade_or_redial<C, R, F>(
        self,
        conn: C,
        endpoint: ConnectedPoint,
        redial: R,
    ) -> io::Result<(PeerId, StreamMuxerBox)>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
        R: FnOnce(Multiaddr) -> F,
        F: std::future::Future<Output = io::Result<C>>,
    {
        match self.clone().upgrade(conn, endpoint.clone()).await {
            Err(e) if refused(&e) => {
                let address = endpoint.get_remote_address().clone();
                let conn = redial(address).await?;
                // The address is now one that refuses TLS: this proposes Noise.
                self.upgrade(conn, endpoint).await
            }
            result => result,
        }
    }

    async fn accept<C>(self, conn: C) -> io::Result<(PeerId, StreamMuxerBox)>
    where
        C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (protocol, io) = listener_select_proto(conn, [tls::PROTOCOL, NOISE]).await?;
        let (peer, io) = if protocol == tls::PROTOCOL {
            let (peer, io) = self.tls.accept(io).await?;
            (peer, Either::Left(write_buffered(io)))
        } else {
            let (peer, io) = self
                .noise
                .upgrade_inbound(io, NOISE)
                .await
                .map_err(io::Error::other)?;
            (peer, Either::Right(io))
        };
        let (_, io) = listener_select_proto(io, [YAMUX]).await?;
        let muxer = self.yamux.upgrade_inbound(io, YAMUX).await?;
        Ok((peer, StreamMuxerBox::new(muxer)))
    }
}

/// A TLS stream with [`TLS_WRITE_BUFFER`] bytes of yamux frames gathered before each
/// write to it.
fn write_buffered<S: AsyncWrite>(tls_stream: S) -> BufWriter<S> {
    BufWriter::with_capacity(TLS_WRITE_BUFFER, tls_stream)
}

async fn multiplex_outbound<S>(
    peer: PeerId,
    io: S,
    yamux: yamux::Config,
) -> io::Result<(PeerId, StreamMuxerBox)>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (_, io) = dialer_select_proto(io, [YAMUX], Version::V1Lazy).await?;
    let muxer = yamux.upgrade_outbound(io, YAMUX).await?;
    Ok((peer, StreamMuxerBox::new(muxer)))
}

#[cfg(test)]
#[path = "secure_tests.rs"]
mod tests;
