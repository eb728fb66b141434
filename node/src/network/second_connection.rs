//! A second direct connection to a peer, asked for by a download whose only source is
//! far away ([`Network::add_second_connection`](super::Network::add_second_connection)).
//! On a long path that loses packets, one TCP connection spends much of its time
//! recovering: each loss holds back every stream's data behind it for a round trip, and
//! yamux's windows grow slowly meanwhile. Two connections recover independently, and
//! libp2p's request-response spreads a peer's requests over all of its connections (by
//! request id, in turn). Measured on the WAN lab's 1 Gbit/s, 80 ms, 0.5 % loss path
//! (docs/benchmarks.md): a single-source fetch moved 296–314 Mbit/s over one connection
//! and 334–374 over two, five runs each.
//!
//! Only a connection of ours is doubled: direct, not QUIC (QUIC recovers each stream on
//! its own), and dialled by us, so that its address is one the peer listens on. A peer
//! that already has more than one direct connection gets none.

use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::peers::is_relayed;
use super::quic_beside_tcp::is_quic;

/// Where to dial a second connection to a peer whose connections have these remote
/// addresses and that we last dialled at `dialed`: that address, when the peer's only
/// direct connection is a non-QUIC one made there.
fn second_dial_addr<'a>(
    connections: impl Iterator<Item = &'a Multiaddr>,
    dialed: Option<&Multiaddr>,
) -> Option<Multiaddr> {
    let direct: Vec<&Multiaddr> = connections.filter(|a| !is_relayed(a)).collect();
    let [only] = direct.as_slice() else {
        return None;
    };
    let dialed = dialed?;
    let mut remote = (*only).clone();
    if matches!(remote.iter().last(), Some(Protocol::P2p(_))) {
        remote.pop();
    }
    (remote == *dialed && !is_quic(dialed)).then(|| dialed.clone())
}

impl NetworkActor {
    /// Dials `peer` once more where our one direct connection to it was made, if that
    /// connection qualifies (see the module's doc).
    pub(super) fn add_second_connection(&mut self, peer: PeerId) {
        let Some(state) = self.peers.by_id.get(&peer) else {
            return;
        };
        let Some(addr) = second_dial_addr(state.connections.values(), state.dialed.as_ref()) else {
            tracing::debug!(%peer, "no second connection: not one direct TCP connection of ours");
            return;
        };
        tracing::debug!(%peer, %addr, "dialling a second connection to a far source");
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::Always)
            .addresses(vec![addr])
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, "second connection not dialled: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::network::peers::split_peer_addr;
    use crate::network::tests::{config, eventually, spawn_listening, TCP_AND_QUIC};
    use crate::network::DhtMode;

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("valid")
    }

    #[test]
    fn only_a_lone_direct_tcp_connection_of_ours_is_doubled() {
        let tcp = addr("/ip4/198.18.3.2/tcp/4001");
        let with_id = addr(
            "/ip4/198.18.3.2/tcp/4001/p2p/12D3KooWLLcQehhJ644mhYChrqkvS99t52swLi9EkdY4TogiFkVL",
        );
        assert_eq!(
            second_dial_addr([&with_id].into_iter(), Some(&tcp)),
            Some(tcp.clone()),
            "our dial, named with its peer id"
        );
        assert_eq!(
            second_dial_addr([&tcp, &tcp].into_iter(), Some(&tcp)),
            None,
            "already two"
        );
        let inbound = addr("/ip4/198.18.3.2/tcp/45372");
        assert_eq!(
            second_dial_addr([&inbound].into_iter(), Some(&tcp)),
            None,
            "the peer dialled us: its port is not one it listens on"
        );
        assert_eq!(
            second_dial_addr([&tcp].into_iter(), None),
            None,
            "never dialled"
        );
        let quic = addr("/ip4/198.18.3.2/udp/4001/quic-v1");
        assert_eq!(second_dial_addr([&quic].into_iter(), Some(&quic)), None);
        let relayed = addr(
            "/ip4/198.18.1.2/tcp/4001/p2p/12D3KooWLLcQehhJ644mhYChrqkvS99t52swLi9EkdY4TogiFkVL/p2p-circuit",
        );
        assert_eq!(
            second_dial_addr([&relayed, &with_id].into_iter(), Some(&tcp)),
            Some(tcp.clone()),
            "a relayed connection beside does not count"
        );
    }

    /// Two nodes built as the daemon builds them, connected over TCP: asked twice, the
    /// dialling one opens one more connection, not two.
    #[tokio::test]
    async fn a_second_connection_is_opened_once() {
        let a = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        let b = spawn_listening(config(DhtMode::Client), &TCP_AND_QUIC).await;
        let (b_id, _) = split_peer_addr(&b.addr).expect("ends in /p2p");
        let (_, b_tcp) = b.quic_and_tcp_addrs().await;
        a.net.dial(b_tcp).await.expect("a reaches b over TCP");
        eventually("one connection", || async {
            (a.addrs_of(b_id).await.len() == 1).then_some(())
        })
        .await;

        a.net.add_second_connection(b_id).await;
        eventually("a second connection", || async {
            (a.addrs_of(b_id).await.len() == 2).then_some(())
        })
        .await;
        a.net.add_second_connection(b_id).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let conns = a.addrs_of(b_id).await;
        assert_eq!(conns.len(), 2, "no third: {conns:?}");
        assert!(conns.iter().all(|c| !is_quic(c)), "{conns:?}");
    }
}
