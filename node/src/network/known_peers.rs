//! Rejoining the network without a bootstrap node: the routing table (peer ids and
//! addresses) is saved in the store while the daemon runs, and at the next start its
//! peers are put back into Kademlia and a few of them dialled; the first connection to
//! any of them refreshes the routing table (a Kademlia bootstrap) and announces what we
//! provide, as a connection to a bootstrap node does. The swarm task only answers
//! [`Command::RoutingTable`] and takes [`Command::Rejoin`]; saving and loading is
//! [`keep_known_peers`]'s, a task of its own beside it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use chunk_store::{KnownPeer, Store};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::handle::{Command, Network};

/// Peers taken back from the store at most (the store keeps no more either).
const MAX_REJOIN_PEERS: usize = chunk_store::known_peers::MAX_KNOWN_PEERS;
/// Saved peers dialled at start: enough that some are likely up; the Kademlia
/// bootstrap that the first connection starts finds the rest.
const REJOIN_DIALS: usize = 20;
/// How often the routing table is compared with what was saved.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// Least time between two saves (each is a durable write).
const SAVE_EVERY: Duration = Duration::from_secs(10);

/// A peer and where it was reached.
pub type PeerAddrs = (PeerId, Vec<Multiaddr>);

impl NetworkActor {
    /// The peers in the routing table and their addresses.
    pub(super) fn routing_table(&mut self) -> Vec<PeerAddrs> {
        let mut peers = vec![];
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let addrs = entry.node.value.iter().cloned().collect();
                peers.push((*entry.node.key.preimage(), addrs));
            }
        }
        peers
    }

    /// Puts saved peers back into Kademlia, treats them as bootstrap nodes, and dials a
    /// few.
    pub(super) fn rejoin(&mut self, peers: Vec<PeerAddrs>) {
        let local = *self.swarm.local_peer_id();
        let mut dialled = 0;
        for (peer, addrs) in peers.into_iter().take(MAX_REJOIN_PEERS) {
            if peer == local || addrs.is_empty() {
                continue;
            }
            for addr in &addrs {
                self.swarm
                    .behaviour_mut()
                    .kad
                    .add_address(&peer, addr.clone());
            }
            self.dht.bootstrap_peers.insert(peer);
            if dialled < REJOIN_DIALS && !self.swarm.is_connected(&peer) {
                let opts = DialOpts::peer_id(peer).addresses(addrs).build();
                match self.swarm.dial(opts) {
                    Ok(()) => dialled += 1,
                    Err(e) => tracing::debug!(%peer, "cannot dial a saved peer: {e}"),
                }
            }
        }
        tracing::info!(dialled, "rejoining through saved peers");
    }
}

impl Network {
    /// The peers in our DHT routing table and their addresses.
    pub async fn routing_table(&self) -> anyhow::Result<Vec<PeerAddrs>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let _ = self.commands.send(Command::RoutingTable(reply)).await;
        answer.await.context("network task stopped")
    }

    /// Rejoins the network through peers known from an earlier run.
    pub async fn rejoin(&self, peers: Vec<PeerAddrs>) {
        let _ = self.commands.send(Command::Rejoin(peers)).await;
    }
}

/// Loads the saved peers into the network, then follows the routing table (every
/// [`LOOK_EVERY`]) and saves it when its peers changed, at most every [`SAVE_EVERY`], and
/// once more when `stopping` completes (what was last seen, if the network has stopped
/// by then). An empty routing table is never saved over a list that had peers: a node
/// that starts while the network is down keeps what it knew.
pub async fn keep_known_peers(
    net: Network,
    store: Arc<Store>,
    stopping: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let saved = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.known_peers()).await??
    };
    let peers = from_store(saved);
    if !peers.is_empty() {
        net.rejoin(peers).await;
    }
    let mut last_saved: Vec<PeerId> = vec![];
    let mut last_save_at: Option<tokio::time::Instant> = None;
    let mut unsaved: Option<(Vec<PeerId>, Vec<PeerAddrs>)> = None;
    let mut every = tokio::time::interval(LOOK_EVERY);
    tokio::pin!(stopping);
    loop {
        let stop = tokio::select! {
            _ = every.tick() => false,
            () = &mut stopping => true,
        };
        let table = tokio::time::timeout(LOOK_EVERY, net.routing_table()).await;
        if let Ok(Ok(table)) = table {
            let mut ids: Vec<PeerId> = table.iter().map(|(p, _)| *p).collect();
            ids.sort();
            if !table.is_empty() && ids != last_saved {
                unsaved = Some((ids, table));
            }
        }
        let due = stop || last_save_at.is_none_or(|at| at.elapsed() >= SAVE_EVERY);
        if let Some((ids, table)) = unsaved.take_if(|_| due) {
            let records = to_store(&table);
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.save_known_peers(&records)).await? {
                Ok(()) => {
                    tracing::debug!(peers = ids.len(), "routing table saved");
                    last_saved = ids;
                    last_save_at = Some(tokio::time::Instant::now());
                }
                Err(e) => tracing::warn!("cannot save the routing table: {e}"),
            }
        }
        if stop {
            return Ok(());
        }
    }
}

fn to_store(peers: &[PeerAddrs]) -> Vec<KnownPeer> {
    peers
        .iter()
        .map(|(peer, addrs)| KnownPeer {
            peer_id: peer.to_bytes(),
            addrs: addrs
                .iter()
                .map(|a| serde_bytes::ByteBuf::from(a.to_vec()))
                .collect(),
        })
        .collect()
}

/// Saved peers in domain types; what does not parse is skipped.
fn from_store(saved: Vec<KnownPeer>) -> Vec<PeerAddrs> {
    saved
        .into_iter()
        .filter_map(|k| {
            let peer = PeerId::from_bytes(&k.peer_id).ok()?;
            let addrs: Vec<Multiaddr> = k
                .addrs
                .into_iter()
                .filter_map(|a| Multiaddr::try_from(a.into_vec()).ok())
                .collect();
            (!addrs.is_empty()).then_some((peer, addrs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_go_to_the_store_and_back_and_garbage_is_skipped() {
        let peer = PeerId::random();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let saved = to_store(&[(peer, vec![addr.clone()])]);
        assert_eq!(from_store(saved.clone()), vec![(peer, vec![addr])]);
        let garbage = KnownPeer {
            peer_id: vec![1, 2, 3],
            addrs: saved[0].addrs.clone(),
        };
        let bad_addr = KnownPeer {
            peer_id: saved[0].peer_id.clone(),
            addrs: vec![serde_bytes::ByteBuf::from(vec![0xff; 4])],
        };
        assert!(from_store(vec![garbage, bad_addr]).is_empty());
    }
}
