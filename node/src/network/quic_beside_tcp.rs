//! One transport per peer: a direct QUIC connection beside a direct TCP one is closed.
//! libp2p's request-response spreads a peer's requests over all of its connections, so
//! a QUIC connection left beside a TCP one carries a share of every transfer. libp2p's
//! QUIC costs about 2.5 times the CPU of TCP + noise + yamux here, and on the WAN lab's
//! lossy 80 ms path two home seeders reached over both sent 18 and 25 MiB of a 256 MiB
//! fetch while the two reached over TCP alone sent 106 and 107 (docs/benchmarks.md).
//! Our own dials prefer TCP (`dial_order.rs`), but a peer's QUIC dial, or its AutoNAT
//! dial-back to our QUIC address, still adds a QUIC connection beside a TCP one.
//!
//! So once a peer has both, each of its direct QUIC connections is closed
//! [`QUIC_GRACE`] later: long enough for an AutoNAT dial-back over it to finish. And a
//! peer reached over direct QUIC only (its dial-back came before any other connection)
//! is dialled at its TCP listen addresses on the same IP, when identify names them.
//! Requests cut short are retried over the TCP connection at once
//! (`RequestError::ConnectionClosed`, never held against the peer). A peer that relays
//! for us, or holds a reservation or a circuit through us, keeps its connections: a
//! reservation lives only as long as the connection it was made on.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::gate::ip_of;
use super::peers::is_relayed;

/// Most TCP addresses dialled for one peer reached over QUIC only.
const MAX_TCP_DIAL_ADDRS: usize = 4;

/// How long a QUIC connection beside a TCP one stays open: an AutoNAT dial-back takes a
/// round trip or two after the connection is up.
pub(super) const QUIC_GRACE: Duration = Duration::from_secs(2);

/// Whether a (direct) address is QUIC.
pub(super) fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, Protocol::QuicV1 | Protocol::Quic))
}

/// Whether a (direct) address is TCP.
fn is_tcp(addr: &Multiaddr) -> bool {
    !is_quic(addr) && addr.iter().any(|p| matches!(p, Protocol::Tcp(_)))
}

/// The TCP addresses among a peer's `listen` addresses to dial when its connections
/// (their remote addresses) are direct QUIC ones only: those on an IP it is connected
/// at. None when a direct connection is not QUIC, or when there is no direct one.
fn tcp_beside_quic<'a>(
    connections: impl Iterator<Item = &'a Multiaddr>,
    listen: &[Multiaddr],
) -> Vec<Multiaddr> {
    let direct: Vec<&Multiaddr> = connections.filter(|a| !is_relayed(a)).collect();
    if direct.is_empty() || direct.iter().any(|a| !is_quic(a)) {
        return Vec::new();
    }
    let ips: HashSet<IpAddr> = direct.iter().filter_map(|a| ip_of(a)).collect();
    listen
        .iter()
        .filter(|a| !is_relayed(a) && is_tcp(a) && ip_of(a).is_some_and(|ip| ips.contains(&ip)))
        .take(MAX_TCP_DIAL_ADDRS)
        .cloned()
        .collect()
}

/// QUIC connections to close, each with its peer and when. An entry exists only for an
/// open connection (it is forgotten when the connection closes), so the map is bounded
/// by the connection limits.
#[derive(Debug, Default)]
pub(super) struct QuicBesideTcp {
    due: HashMap<ConnectionId, (PeerId, Instant)>,
}

impl QuicBesideTcp {
    /// `peer`'s connections now (id, remote address): if a direct TCP one is among them,
    /// its direct QUIC ones not yet noted are to close at `now + QUIC_GRACE`.
    fn on_connections<'a>(
        &mut self,
        peer: PeerId,
        connections: impl Iterator<Item = (&'a ConnectionId, &'a Multiaddr)> + Clone,
        now: Instant,
    ) {
        let direct = connections.filter(|(_, addr)| !is_relayed(addr));
        if !direct.clone().any(|(_, addr)| !is_quic(addr)) {
            return;
        }
        for (id, _) in direct.filter(|(_, addr)| is_quic(addr)) {
            self.due.entry(*id).or_insert((peer, now + QUIC_GRACE));
        }
    }

    fn forget(&mut self, id: &ConnectionId) {
        self.due.remove(id);
    }

    /// The connections whose time has come, forgotten here.
    fn take_due(&mut self, now: Instant) -> Vec<(PeerId, ConnectionId)> {
        let due: Vec<(PeerId, ConnectionId)> = self
            .due
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(id, (peer, _))| (*peer, *id))
            .collect();
        for (_, id) in &due {
            self.due.remove(id);
        }
        due
    }
}

impl NetworkActor {
    /// A connection to `peer` opened (after it is in the peer's state).
    pub(super) fn note_quic_beside_tcp(&mut self, peer: PeerId) {
        if let Some(state) = self.peers.by_id.get(&peer) {
            self.quic_beside_tcp
                .on_connections(peer, state.connections.iter(), Instant::now());
        }
    }

    /// Identify named `peer`'s listen addresses: if it is reached over direct QUIC only,
    /// dial it over TCP beside (the QUIC connection then closes after the grace).
    pub(super) fn dial_tcp_beside_quic(&mut self, peer: PeerId, listen: &[Multiaddr]) {
        let Some(state) = self.peers.by_id.get(&peer) else {
            return;
        };
        let tcp = tcp_beside_quic(state.connections.values(), listen);
        if tcp.is_empty() {
            return;
        }
        tracing::debug!(%peer, addrs = ?tcp, "reached over QUIC only: dialling it over TCP");
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::Always)
            .addresses(tcp)
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, "TCP dial beside QUIC not made: {e}");
        }
    }

    pub(super) fn forget_quic_beside_tcp(&mut self, id: &ConnectionId) {
        self.quic_beside_tcp.forget(id);
    }

    /// Closes the QUIC connections whose grace has passed, if their peer still has a
    /// direct TCP connection and neither relays for the other.
    pub(super) fn close_quic_beside_tcp(&mut self, now: Instant) {
        for (peer, id) in self.quic_beside_tcp.take_due(now) {
            let Some(state) = self.peers.by_id.get(&peer) else {
                continue;
            };
            let has_tcp = state
                .connections
                .values()
                .any(|addr| !is_relayed(addr) && !is_quic(addr));
            if !has_tcp || !state.connections.contains_key(&id) {
                continue;
            }
            if self.relays.relays_with(&peer) {
                tracing::debug!(%peer, "QUIC connection beside TCP kept: the peer relays for us or through us");
                continue;
            }
            tracing::debug!(%peer, "closing a QUIC connection: a TCP one exists");
            self.swarm.close_connection(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::peers::split_peer_addr;
    use crate::network::tests::{config, eventually, spawn_listening, DEADLINE, TCP_AND_QUIC};
    use crate::network::DhtMode;

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("valid")
    }

    #[test]
    fn quic_beside_a_direct_tcp_connection_is_due_after_the_grace_once() {
        let mut book = QuicBesideTcp::default();
        let peer = PeerId::random();
        let (tcp, quic, relayed) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        let t0 = Instant::now();
        let mut conns = HashMap::new();
        conns.insert(quic, addr("/ip4/198.18.3.2/udp/4001/quic-v1"));
        conns.insert(
            relayed,
            addr("/ip4/198.18.1.2/tcp/4001/p2p/12D3KooWLLcQehhJ644mhYChrqkvS99t52swLi9EkdY4TogiFkVL/p2p-circuit"),
        );
        book.on_connections(peer, conns.iter(), t0);
        assert!(
            book.take_due(t0 + QUIC_GRACE * 10).is_empty(),
            "QUIC alone (beside a relayed one) stays"
        );

        conns.insert(tcp, addr("/ip4/198.18.3.2/tcp/4001"));
        book.on_connections(peer, conns.iter(), t0);
        // Noted again later: the first time counts.
        book.on_connections(peer, conns.iter(), t0 + Duration::from_secs(1));
        assert!(book
            .take_due(t0 + QUIC_GRACE - Duration::from_millis(1))
            .is_empty());
        assert_eq!(book.take_due(t0 + QUIC_GRACE), vec![(peer, quic)]);
        assert!(book.take_due(t0 + QUIC_GRACE * 10).is_empty(), "taken once");

        book.on_connections(peer, conns.iter(), t0);
        book.forget(&quic);
        assert!(
            book.take_due(t0 + QUIC_GRACE).is_empty(),
            "a closed connection is forgotten"
        );
    }

    #[test]
    fn a_peer_reached_over_quic_only_is_dialled_at_its_tcp_addresses_on_that_ip() {
        let quic = addr("/ip4/198.18.4.2/udp/4001/quic-v1");
        let listen = vec![
            addr("/ip4/127.0.0.1/tcp/4001"),
            addr("/ip4/198.18.4.2/tcp/4001"),
            addr("/ip4/198.18.4.2/udp/4001/quic-v1"),
            addr("/ip4/10.0.0.9/tcp/4001"),
        ];
        assert_eq!(
            tcp_beside_quic([&quic].into_iter(), &listen),
            vec![addr("/ip4/198.18.4.2/tcp/4001")]
        );
        let tcp = addr("/ip4/198.18.4.2/tcp/4001");
        assert!(
            tcp_beside_quic([&quic, &tcp].into_iter(), &listen).is_empty(),
            "a TCP connection exists"
        );
        let relayed = addr(
            "/ip4/198.18.1.2/tcp/4001/p2p/12D3KooWLLcQehhJ644mhYChrqkvS99t52swLi9EkdY4TogiFkVL/p2p-circuit",
        );
        assert!(
            tcp_beside_quic([&relayed].into_iter(), &listen).is_empty(),
            "no direct connection"
        );
        let punched = addr("/ip4/203.0.113.5/udp/4001/quic-v1");
        assert!(
            tcp_beside_quic([&punched].into_iter(), &listen).is_empty(),
            "no TCP address on the connection's IP"
        );
    }

    /// Two nodes built as the daemon builds them, connected over TCP; then one dials the
    /// other's QUIC address, as an AutoNAT dial-back does. Both keep the QUIC
    /// connection through the grace, then only TCP.
    #[tokio::test]
    async fn a_quic_connection_beside_a_tcp_one_is_closed_after_the_grace() {
        let a = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        let b = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        let (a_id, _) = split_peer_addr(&a.addr).expect("ends in /p2p");
        let (b_id, _) = split_peer_addr(&b.addr).expect("ends in /p2p");
        let (_, b_tcp) = b.quic_and_tcp_addrs().await;
        let (a_quic, _) = a.quic_and_tcp_addrs().await;

        a.net.dial(b_tcp).await.expect("a reaches b over TCP");
        b.net.dial(a_quic).await.expect("b reaches a over QUIC");
        let both = eventually("a QUIC connection beside the TCP one", || async {
            let conns = a.addrs_of(b_id).await;
            (conns.len() == 2).then_some(conns)
        })
        .await;
        let seen = Instant::now();
        assert_eq!(both.iter().filter(|c| is_quic(c)).count(), 1, "{both:?}");

        let start = Instant::now();
        loop {
            let (on_a, on_b) = (a.addrs_of(b_id).await, b.addrs_of(a_id).await);
            let quic = on_a.iter().chain(&on_b).any(is_quic);
            if !quic {
                assert!(
                    !on_a.is_empty() && !on_b.is_empty(),
                    "the TCP connection is kept: {on_a:?} {on_b:?}"
                );
                assert!(
                    seen.elapsed() >= QUIC_GRACE / 2,
                    "closed before the grace: {:?}",
                    seen.elapsed()
                );
                break;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "the QUIC connection stayed: {on_a:?} {on_b:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A node dialled at its QUIC address alone (as an AutoNAT dial-back does before
    /// any other connection) ends up reached over TCP only.
    #[tokio::test]
    async fn a_peer_reached_over_quic_only_ends_up_reached_over_tcp() {
        let a = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        let b = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        let (b_id, _) = split_peer_addr(&b.addr).expect("ends in /p2p");
        let (b_quic, _) = b.quic_and_tcp_addrs().await;
        a.net.dial(b_quic).await.expect("a reaches b over QUIC");
        let start = Instant::now();
        loop {
            let on_a = a.addrs_of(b_id).await;
            if !on_a.is_empty() && on_a.iter().all(|c| !is_quic(c)) {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "still over QUIC: {on_a:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
