//! Which transport carries a connection when a peer is dialed at both a TCP and a QUIC
//! address: TCP gets a head start. The swarm dials a peer's addresses at once and keeps
//! the first connection that comes up, which over a real round trip is QUIC (one round
//! trip against about three for TCP + noise + yamux). But libp2p's QUIC moves bytes at
//! two to four times the CPU cost of TCP + noise + yamux (docs/benchmarks.md, figure 7
//! and the WAN figures), and its UDP socket keeps the kernel's default receive buffer,
//! so a busy receiver drops datagrams and its congestion control backs off: on the
//! emulated home link a fetch over QUIC got a quarter of what it got over TCP on the
//! same busy machine. So a QUIC dial waits while a TCP dial to the same peer is in
//! progress, for at most [`QUIC_HEAD_START`]; if TCP fails sooner, QUIC goes at once.
//!
//! [`DialOrder::note_tcp`] wraps the (upgraded) TCP transport and records its dials in
//! progress; [`DialOrder::tcp_first`] wraps the QUIC transport and makes its dials wait. Dials as
//! the listener of a hole punch (DCUtR) are never held back, and the other side's
//! punching goes on for the whole handshake timeout, so a delayed dialer still meets it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt as _;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::{Endpoint, Transport};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::gate::ip_of;

/// Longest a QUIC dial waits for a TCP dial to the same peer: more than the three or
/// four round trips TCP + noise + yamux take on a 100 ms path, plus the one second
/// after which the kernel sends a lost SYN again (Linux's initial retransmission
/// timeout), short enough that a peer reachable over QUIC only is still connected
/// within the handshake timeout. With 600 ms, a lost SYN handed the connection to QUIC:
/// over the WAN lab's lossy path one of four home seeders was reached over QUIC and
/// sent 6 MiB in 39 s, QUIC's loss-based congestion control crawling where the
/// kernel's TCP (BBR) did not (docs/benchmarks.md).
pub const QUIC_HEAD_START: Duration = Duration::from_millis(1500);
/// How often a waiting QUIC dial looks whether the TCP dial ended.
const RECHECK: Duration = Duration::from_millis(20);
/// How long a QUIC dial waits before its first look. The swarm creates the dials of one
/// attempt together, but the DNS transport wrapped around ours calls our `dial` only
/// when its own dial future is first polled, and the swarm polls them one after the
/// other: without this pause a QUIC dial polled before its TCP sibling would find no
/// TCP dial in progress and go at once (seen in the WAN lab, where most connections
/// came up over QUIC).
const FIRST_LOOK: Duration = Duration::from_millis(5);
/// Peers (or hosts) with TCP dials in progress that are tracked; past this a QUIC dial
/// to an untracked one is not held back.
const MAX_TRACKED: usize = 1024;

/// Who a dial goes to: the peer when the address names it, else its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Peer(PeerId),
    Host(IpAddr),
}

fn target_of(addr: &Multiaddr) -> Option<Target> {
    let peer = addr.iter().find_map(|p| match p {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    });
    match (peer, ip_of(addr)) {
        // A relayed address: its IP is the relay's; the peer is dialed through it.
        (_, None) => None,
        (Some(peer), Some(_)) => Some(Target::Peer(peer)),
        (None, Some(ip)) => Some(Target::Host(ip)),
    }
}

/// TCP dials in progress, per target (shared by the two wrappers).
#[derive(Debug, Clone, Default)]
pub struct TcpDials(Arc<Mutex<HashMap<Target, usize>>>);

impl TcpDials {
    /// Records a TCP dial to `addr`; it counts until the returned guard drops.
    fn start(&self, addr: &Multiaddr) -> Option<DialGuard> {
        let target = target_of(addr)?;
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(&target) {
            return None;
        }
        *map.entry(target).or_insert(0) += 1;
        Some(DialGuard {
            dials: self.clone(),
            target,
        })
    }

    /// Whether a TCP dial to the target of `addr` is in progress.
    fn in_progress(&self, addr: &Multiaddr) -> bool {
        let Some(target) = target_of(addr) else {
            return false;
        };
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.contains_key(&target)
    }

    /// Waits [`FIRST_LOOK`], then until no TCP dial to the target of `addr` is in
    /// progress or `head_start` has passed since `since`.
    async fn wait(&self, addr: &Multiaddr, since: Instant, head_start: Duration) {
        tokio::time::sleep(FIRST_LOOK.min(head_start)).await;
        while self.in_progress(addr) && since.elapsed() < head_start {
            tokio::time::sleep(RECHECK.min(head_start.saturating_sub(since.elapsed()))).await;
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One TCP dial in progress; forgotten when the dial ends or is dropped.
struct DialGuard {
    dials: TcpDials,
    target: Target,
}

impl Drop for DialGuard {
    fn drop(&mut self) {
        let mut map = self.dials.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.target) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.target);
            }
        }
    }
}

/// What a wrapped transport does on a dial.
enum Role {
    /// The TCP transport: records its dials in progress.
    NoteTcp,
    /// The QUIC transport: its dials wait for TCP dials to the same peer, at most this
    /// long.
    AfterTcp(Duration),
}

/// A transport wrapped for the dial order (see the module documentation): the TCP one
/// ([`DialOrder::note_tcp`]) or the QUIC one ([`DialOrder::tcp_first`]).
pub struct DialOrder<T> {
    inner: T,
    dials: TcpDials,
    role: Role,
}

impl<T> DialOrder<T> {
    /// The TCP transport, recording its dials in `dials`.
    pub fn note_tcp(inner: T, dials: TcpDials) -> Self {
        DialOrder {
            inner,
            dials,
            role: Role::NoteTcp,
        }
    }

    /// The QUIC transport, whose dials wait up to `head_start` for the TCP dials in
    /// `dials`.
    pub fn tcp_first(inner: T, dials: TcpDials, head_start: Duration) -> Self {
        DialOrder {
            inner,
            dials,
            role: Role::AfterTcp(head_start),
        }
    }
}

impl<T> Transport for DialOrder<T>
where
    T: Transport + Unpin,
    T::Dial: Send + 'static,
{
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = BoxFuture<'static, Result<T::Output, T::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        match self.role {
            Role::NoteTcp => {
                let guard = self.dials.start(&addr);
                let dial = self.inner.dial(addr, opts)?;
                Ok(async move {
                    let result = dial.await;
                    drop(guard);
                    result
                }
                .boxed())
            }
            Role::AfterTcp(head_start) => {
                let punching = opts.role == Endpoint::Listener;
                // libp2p-quic sends nothing until its dial future is polled, so holding
                // the future back holds the dial back.
                let dial = self.inner.dial(addr.clone(), opts)?;
                if punching {
                    return Ok(dial.boxed());
                }
                let dials = self.dials.clone();
                let since = Instant::now();
                Ok(async move {
                    // The TCP dials of this attempt are recorded once the swarm has
                    // polled them, within [`FIRST_LOOK`].
                    dials.wait(&addr, since, head_start).await;
                    dial.await
                }
                .boxed())
            }
        }
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::peers::split_peer_addr;
    use crate::network::quic_beside_tcp::is_quic;
    use crate::network::tests::{config, spawn_listening, tcp_proxy, TCP_AND_QUIC};
    use crate::network::DhtMode;

    fn quic(peer: PeerId) -> Multiaddr {
        format!("/ip4/198.18.3.2/udp/4001/quic-v1/p2p/{peer}")
            .parse()
            .unwrap()
    }

    fn tcp(peer: PeerId) -> Multiaddr {
        format!("/ip4/198.18.3.2/tcp/4001/p2p/{peer}")
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn quic_waits_for_a_tcp_dial_to_the_same_peer_at_most_the_head_start() {
        let dials = TcpDials::default();
        let peer = PeerId::random();
        let head_start = Duration::from_millis(300);
        // No TCP dial: QUIC goes at once.
        let t = Instant::now();
        dials.wait(&quic(peer), t, head_start).await;
        assert!(t.elapsed() < Duration::from_millis(100));
        // A TCP dial that never ends: QUIC waits the whole head start.
        let guard = dials.start(&tcp(peer));
        assert!(guard.is_some());
        let t = Instant::now();
        dials.wait(&quic(peer), t, head_start).await;
        assert!(t.elapsed() >= head_start);
        // A TCP dial to another peer does not hold this one back.
        let t = Instant::now();
        dials.wait(&quic(PeerId::random()), t, head_start).await;
        assert!(t.elapsed() < Duration::from_millis(100));
        // The TCP dial fails after 50 ms: QUIC goes then, not at the end of the head start.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(guard);
        });
        let t = Instant::now();
        dials.wait(&quic(peer), t, Duration::from_secs(10)).await;
        assert!(t.elapsed() < Duration::from_secs(5));
        assert_eq!(dials.tracked(), 0);
    }

    /// Two nodes built as the daemon builds them (the DNS transport around TCP and
    /// QUIC), the dialled one listening on both, its TCP address reached through a
    /// proxy that holds each connection back 150 ms (a longer path, as TCP + noise +
    /// yamux take more round trips than QUIC): every connection still comes up over
    /// TCP, even with the QUIC address listed first.
    #[tokio::test]
    async fn a_peer_dialled_at_quic_and_tcp_addresses_is_connected_over_tcp() {
        let a = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        for round in 0..4 {
            let b = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
            let (b_id, _) = split_peer_addr(&b.addr).expect("ends in /p2p");
            let (quic, tcp) = b.quic_and_tcp_addrs().await;
            let proxy = tcp_proxy(&tcp, Duration::from_millis(150), Duration::ZERO).await;
            let via_proxy: Multiaddr = format!("/ip4/127.0.0.1/tcp/{proxy}/p2p/{b_id}")
                .parse()
                .expect("valid");
            a.net.dial_at(b_id, vec![quic, via_proxy]).await;
            let over = a.connected_to(b_id).await;
            assert!(
                over.iter().all(|addr| !is_quic(addr)),
                "round {round}: connected over {over:?}"
            );
        }
    }

    #[test]
    fn relayed_addresses_are_not_tracked_and_the_map_is_bounded() {
        let dials = TcpDials::default();
        let relayed: Multiaddr = format!(
            "/ip4/198.18.1.2/tcp/4001/p2p/{}/p2p-circuit/p2p/{}",
            PeerId::random(),
            PeerId::random()
        )
        .parse()
        .unwrap();
        assert!(dials.start(&relayed).is_none());
        let guards: Vec<_> = (0..MAX_TRACKED + 10)
            .filter_map(|_| dials.start(&tcp(PeerId::random())))
            .collect();
        assert_eq!(guards.len(), MAX_TRACKED);
        // Two dials to one peer count as one entry, gone when both end.
        let peer = PeerId::random();
        drop(guards);
        let a = dials.start(&tcp(peer));
        let b = dials.start(&tcp(peer));
        assert_eq!(dials.tracked(), 1);
        drop(a);
        assert!(dials.in_progress(&quic(peer)));
        drop(b);
        assert!(!dials.in_progress(&quic(peer)));
        assert_eq!(dials.tracked(), 0);
    }
}
