//! Peers found on the LAN by mDNS, and how they are dialled: from a fresh port, and
//! again with backoff while dials fail, until connected or mDNS forgets them.
//!
//! Why a fresh port: two nodes that find each other at the same instant (mDNS answers
//! reach both at once) and dial from their listen ports (libp2p's default port reuse)
//! can make one TCP connection by simultaneous open. Both ends then negotiate as the
//! dialer, the handshake fails on both, and mDNS does not report the peer again for
//! minutes. Dials from fresh ports make two connections, each with one dialer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId};

use super::actor::NetworkActor;

/// The wait before the first redial of a LAN peer; it doubles after each failure.
const FIRST_REDIAL: Duration = Duration::from_secs(1);
/// The longest wait between two dials of a LAN peer.
const LONGEST_REDIAL: Duration = Duration::from_secs(30);

/// LAN peers not connected yet, with their addresses and when to dial them next.
#[derive(Debug, Default)]
pub(super) struct LanPeers {
    peers: HashMap<PeerId, LanPeer>,
}

#[derive(Debug)]
struct LanPeer {
    addrs: Vec<Multiaddr>,
    failures: u32,
    /// `None` while a dial is in flight.
    next_dial: Option<Instant>,
}

impl LanPeers {
    /// Notes a peer mDNS found at `addr`; true when it is new, so should be dialled now.
    pub(super) fn found(&mut self, peer: PeerId, addr: Multiaddr) -> bool {
        match self.peers.get_mut(&peer) {
            Some(known) => {
                if !known.addrs.contains(&addr) {
                    known.addrs.push(addr);
                }
                false
            }
            None => {
                let lan_peer = LanPeer {
                    addrs: vec![addr],
                    failures: 0,
                    next_dial: None,
                };
                self.peers.insert(peer, lan_peer);
                true
            }
        }
    }

    /// The addresses to dial a peer at.
    pub(super) fn addrs(&self, peer: &PeerId) -> Vec<Multiaddr> {
        self.peers
            .get(peer)
            .map(|p| p.addrs.clone())
            .unwrap_or_default()
    }

    /// A dial of `peer` failed (or could not start): it is dialled again after a wait
    /// that doubles with each failure.
    pub(super) fn dial_failed(&mut self, peer: &PeerId, now: Instant) {
        if let Some(known) = self.peers.get_mut(peer) {
            let wait = FIRST_REDIAL
                .saturating_mul(1 << known.failures.min(16))
                .min(LONGEST_REDIAL);
            known.failures += 1;
            known.next_dial = Some(now + wait);
        }
    }

    /// The peer is connected: nothing more to do for it.
    pub(super) fn connected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// mDNS no longer sees the peer at `addr`; it is forgotten with its last address.
    pub(super) fn expired(&mut self, peer: &PeerId, addr: &Multiaddr) {
        if let Some(known) = self.peers.get_mut(peer) {
            known.addrs.retain(|a| a != addr);
            if known.addrs.is_empty() {
                self.peers.remove(peer);
            }
        }
    }

    /// The peers whose redial is due, now marked as being dialled.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<PeerId> {
        let mut due = Vec::new();
        for (peer, known) in &mut self.peers {
            if known.next_dial.is_some_and(|at| at <= now) {
                known.next_dial = None;
                due.push(*peer);
            }
        }
        due
    }
}

/// How a LAN peer is dialled: at the addresses mDNS gave, from a fresh port.
pub(super) fn lan_dial(peer: PeerId, addrs: Vec<Multiaddr>) -> DialOpts {
    let addrs = addrs
        .into_iter()
        .map(|addr| match addr.iter().last() {
            Some(Protocol::P2p(_)) => addr,
            _ => addr.with(Protocol::P2p(peer)),
        })
        .collect();
    DialOpts::peer_id(peer)
        .addresses(addrs)
        .allocate_new_port()
        .build()
}

impl NetworkActor {
    pub(super) fn on_mdns_event(&mut self, event: libp2p::mdns::Event) {
        match event {
            libp2p::mdns::Event::Discovered(found) => {
                for (peer, addr) in found {
                    tracing::debug!(%peer, %addr, "found on the LAN");
                    if !self.swarm.is_connected(&peer) && self.lan.found(peer, addr) {
                        self.dial_lan_peer(peer);
                    }
                }
            }
            libp2p::mdns::Event::Expired(gone) => {
                for (peer, addr) in gone {
                    self.lan.expired(&peer, &addr);
                }
            }
        }
    }

    /// Dials a LAN peer at every address mDNS gave for it.
    pub(super) fn dial_lan_peer(&mut self, peer: PeerId) {
        let opts = lan_dial(peer, self.lan.addrs(&peer));
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, "cannot dial LAN peer: {e}");
            self.lan.dial_failed(&peer, Instant::now());
        }
    }

    /// Dials again the LAN peers whose wait after a failed dial is over.
    pub(super) fn redial_lan_peers(&mut self, now: Instant) {
        for peer in self.lan.take_due(now) {
            if self.swarm.is_connected(&peer) {
                self.lan.connected(&peer);
            } else {
                self.dial_lan_peer(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::peers::split_peer_addr;
    use crate::network::tests::{config, spawn_over_tcp, tcp_port, Node};
    use crate::network::DhtMode;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/192.0.2.7/tcp/{port}").parse().expect("valid")
    }

    #[test]
    fn a_failed_lan_dial_is_retried_with_a_doubling_wait_until_connected() {
        let mut lan = LanPeers::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert!(lan.found(peer, addr(1)), "a new peer is dialled at once");
        assert!(
            !lan.found(peer, addr(1)),
            "a known one is not dialled twice"
        );
        assert!(!lan.found(peer, addr(2)));
        assert_eq!(lan.addrs(&peer), vec![addr(1), addr(2)]);
        assert!(
            lan.take_due(t0 + LONGEST_REDIAL).is_empty(),
            "dial in flight"
        );

        lan.dial_failed(&peer, t0);
        assert!(lan.take_due(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(lan.take_due(t0 + FIRST_REDIAL), vec![peer]);
        assert!(lan.take_due(t0 + FIRST_REDIAL).is_empty(), "taken once");

        lan.dial_failed(&peer, t0);
        assert!(lan.take_due(t0 + Duration::from_millis(1999)).is_empty());
        assert_eq!(lan.take_due(t0 + Duration::from_secs(2)), vec![peer]);
        for _ in 0..10 {
            lan.dial_failed(&peer, t0);
        }
        assert!(lan
            .take_due(t0 + LONGEST_REDIAL - Duration::from_millis(1))
            .is_empty());
        assert_eq!(lan.take_due(t0 + LONGEST_REDIAL), vec![peer], "capped");

        lan.dial_failed(&peer, t0);
        lan.connected(&peer);
        assert!(lan.take_due(t0 + LONGEST_REDIAL).is_empty(), "connected");
        assert!(
            lan.found(peer, addr(1)),
            "found again after it was connected"
        );
    }

    #[test]
    fn a_lan_peer_is_forgotten_when_mdns_expires_its_last_address() {
        let mut lan = LanPeers::default();
        let peer = PeerId::random();
        lan.found(peer, addr(1));
        lan.found(peer, addr(2));
        lan.dial_failed(&peer, Instant::now());
        lan.expired(&peer, &addr(1));
        assert_eq!(lan.addrs(&peer), vec![addr(2)]);
        lan.expired(&peer, &addr(2));
        assert!(lan.addrs(&peer).is_empty());
        assert!(lan.take_due(Instant::now() + LONGEST_REDIAL).is_empty());
    }

    /// The port `from` connects to `to` from, as `to` sees it.
    async fn port_seen_by(to: &Node, from: PeerId) -> u16 {
        tcp_port(&to.connected_to(from).await[0])
    }

    #[tokio::test]
    async fn lan_peers_are_dialled_from_a_fresh_port_where_other_dials_reuse_the_listen_port() {
        let a = spawn_over_tcp(config(DhtMode::Client)).await;
        let b = spawn_over_tcp(config(DhtMode::Client)).await;
        let c = spawn_over_tcp(config(DhtMode::Client)).await;
        let (a_id, a_listen) = split_peer_addr(&a.addr).expect("ends in /p2p");
        let (b_id, b_addr) = split_peer_addr(&b.addr).expect("ends in /p2p");

        a.net.dial(c.addr.clone()).await.expect("a reaches c");
        assert_eq!(
            port_seen_by(&c, a_id).await,
            tcp_port(&a_listen),
            "an ordinary dial comes from the listen port (else this test shows nothing)"
        );

        a.poke(move |actor| {
            assert!(actor.lan.found(b_id, b_addr));
            actor.dial_lan_peer(b_id);
        })
        .await;
        assert_ne!(port_seen_by(&b, a_id).await, tcp_port(&a_listen));
        let pending = a.poke(move |actor| actor.lan.addrs(&b_id)).await;
        assert!(pending.is_empty(), "connected, so no longer pending");
    }
}
