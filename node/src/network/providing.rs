//! The swarm task's side of providing: starting and stopping to provide a key (and our
//! own record in the local Kademlia store), driving the batched reprovider
//! (`reprovide/`), and carrying out what it asks: region lookups through libp2p-kad,
//! `ADD_PROVIDER` batches through `add_provider.rs`.

use std::time::{Duration, Instant};

use libp2p::kad::store::RecordStore as _;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::{kad, Multiaddr, PeerId};

use super::actor::NetworkActor;
use super::add_provider::AddProviderBatch;
use super::announce::ProviderKey;
use super::reprovide::{Action, ReprovideStats};

/// Most of our addresses put in a provider record.
const MAX_RECORD_ADDRS: usize = 16;

/// The addresses our provider records carry: the confirmed external ones (as
/// libp2p-kad's own announcements do), or, while none is confirmed, our listen
/// addresses. A server fills in the addresses of a record that has none from its routing
/// table, and a node whose address is not confirmed is a DHT client, in nobody's routing
/// table: a record without addresses would name it nowhere. (Just started, its first
/// announcements go out before AutoNAT confirms anything; once an address is confirmed,
/// everything is announced again with it.) Loopback listen addresses go only when there
/// are no others: a peer on another machine cannot use them.
fn record_addresses<'a>(
    external: impl Iterator<Item = &'a Multiaddr>,
    listen: impl Iterator<Item = &'a Multiaddr>,
) -> Vec<Multiaddr> {
    let external: Vec<Multiaddr> = external.take(MAX_RECORD_ADDRS).cloned().collect();
    if !external.is_empty() {
        return external;
    }
    let (loopback, other): (Vec<&Multiaddr>, Vec<&Multiaddr>) =
        listen.partition(|a| super::is_loopback(a));
    let chosen = if other.is_empty() { loopback } else { other };
    chosen.into_iter().take(MAX_RECORD_ADDRS).cloned().collect()
}

impl NetworkActor {
    /// Changes how often provided keys are announced again (benchmarks and tests; the
    /// daemon keeps [`DEFAULT_REPROVIDE_INTERVAL`](super::DEFAULT_REPROVIDE_INTERVAL)).
    pub fn set_reprovide_interval(&mut self, interval: Duration) {
        self.dht.reprovider.set_interval(interval);
    }

    pub(super) fn reprovide_stats(&self) -> ReprovideStats {
        self.dht.reprovider.stats()
    }

    /// Starts providing `subjects`; the reprovider is driven once for all of them, so
    /// that keys of one keyspace region go out in one `ADD_PROVIDER` batch.
    pub(super) fn start_providing(&mut self, subjects: Vec<ProviderKey>) {
        let now = Instant::now();
        let mut started = 0usize;
        for subject in subjects {
            if !self.dht.reprovider.provide(subject.clone(), now) {
                // Already provided: the reprovider announces it again on its schedule.
                continue;
            }
            // Our own record in the local store, so that a finder asking us gets us too.
            let local = *self.swarm.local_peer_id();
            let record = kad::ProviderRecord::new(subject.record_key(), local, Vec::new());
            if let Err(e) = self
                .swarm
                .behaviour_mut()
                .kad
                .store_mut()
                .add_provider(record)
            {
                tracing::debug!(%subject, "local provider record not stored: {e}");
            }
            if started == 0 {
                tracing::info!(%subject, "announcing as provider");
            } else {
                tracing::debug!(%subject, "announcing as provider");
            }
            started += 1;
        }
        if started > 0 {
            self.drive_reprovider(now);
        }
    }

    pub(super) fn stop_providing(&mut self, subject: ProviderKey) {
        if let Some(key) = self.dht.reprovider.stop(&subject) {
            self.swarm.behaviour_mut().kad.stop_providing(&key);
        }
    }

    /// Announces everything we provide again (our addresses changed, or we joined).
    pub(super) fn announce_all(&mut self) {
        let now = Instant::now();
        let keys = self.dht.reprovider.announce_all(now);
        tracing::info!(keys, "announcing provider records");
        self.drive_reprovider(now);
    }

    /// Starts what is due and sends what can be sent.
    pub(super) fn drive_reprovider(&mut self, now: Instant) {
        let mut actions = Vec::new();
        self.dht.reprovider.poll(now, &mut actions);
        self.carry_out(actions);
    }

    fn carry_out(&mut self, mut actions: Vec<Action>) {
        while let Some(action) = actions.pop() {
            match action {
                Action::Lookup { id, target } => {
                    let query = self.swarm.behaviour_mut().kad.get_closest_peers(target);
                    self.dht.reprovide_lookups.insert(query, id);
                }
                Action::Send {
                    id,
                    peer,
                    addrs,
                    keys,
                } => {
                    let batch = self.add_provider_batch(&keys);
                    let request = self
                        .swarm
                        .behaviour_mut()
                        .provide
                        .send_request_with_addresses(&peer, batch, addrs);
                    self.dht.reprovide_batches.insert(request, id);
                }
            }
        }
    }

    /// The framed `ADD_PROVIDER` messages of `keys`, carrying the addresses of
    /// [`record_addresses`]; without them if they do not fit in a Kademlia message.
    fn add_provider_batch(&self, keys: &[kad::RecordKey]) -> AddProviderBatch {
        let provider = self.swarm.local_peer_id().to_bytes();
        let mut addrs: Vec<Vec<u8>> =
            record_addresses(self.swarm.external_addresses(), self.swarm.listeners())
                .iter()
                .map(|a| a.to_vec())
                .collect();
        let mut messages = Vec::with_capacity(keys.len());
        for key in keys {
            let message = dht_proto::kademlia::add_provider(key.as_ref(), &provider, &addrs)
                .or_else(|e| {
                    tracing::warn!("provider records sent without addresses: {e}");
                    addrs.clear();
                    dht_proto::kademlia::add_provider(key.as_ref(), &provider, &addrs)
                });
            match message {
                Ok(message) => messages.push(message),
                Err(e) => tracing::warn!("provider record not sent: {e}"),
            }
        }
        AddProviderBatch(messages)
    }

    /// A lookup of the reprovider ended (`found`: the closest servers that answered).
    pub(super) fn on_reprovide_lookup(
        &mut self,
        query: kad::QueryId,
        found: Vec<kad::PeerInfo>,
        stats: &kad::QueryStats,
    ) {
        let Some(id) = self.dht.reprovide_lookups.remove(&query) else {
            return;
        };
        let found = found.into_iter().map(|p| (p.peer_id, p.addrs)).collect();
        let mut actions = Vec::new();
        self.dht.reprovider.on_lookup(
            id,
            found,
            stats.num_requests(),
            Instant::now(),
            &mut actions,
        );
        self.carry_out(actions);
    }

    /// Whether `query` is one of the reprovider's lookups.
    pub(super) fn is_reprovide_lookup(&self, query: &kad::QueryId) -> bool {
        self.dht.reprovide_lookups.contains_key(query)
    }

    pub(super) fn on_add_provider_event(
        &mut self,
        event: request_response::Event<AddProviderBatch, ()>,
    ) {
        let (request, written, peer): (OutboundRequestId, bool, PeerId) = match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, .. },
                ..
            } => (request_id, true, peer),
            request_response::Event::OutboundFailure {
                request_id,
                peer,
                error,
                ..
            } => {
                tracing::debug!(%peer, "ADD_PROVIDER batch failed: {error}");
                (request_id, false, peer)
            }
            _ => return,
        };
        let Some(id) = self.dht.reprovide_batches.remove(&request) else {
            return;
        };
        tracing::trace!(%peer, written, "ADD_PROVIDER batch done");
        let mut actions = Vec::new();
        self.dht
            .reprovider
            .on_batch(id, written, Instant::now(), &mut actions);
        self.carry_out(actions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn records_carry_confirmed_addresses_else_listen_addresses_loopback_last() {
        let external = addrs(&["/ip4/203.0.113.7/tcp/4001"]);
        let listen = addrs(&["/ip4/127.0.0.1/tcp/4001", "/ip4/192.168.1.5/tcp/4001"]);
        assert_eq!(record_addresses(external.iter(), listen.iter()), external);
        assert_eq!(
            record_addresses([].iter(), listen.iter()),
            addrs(&["/ip4/192.168.1.5/tcp/4001"])
        );
        let only_loopback = addrs(&["/ip4/127.0.0.1/tcp/4001"]);
        assert_eq!(
            record_addresses([].iter(), only_loopback.iter()),
            only_loopback
        );
        let many: Vec<Multiaddr> = (0..40)
            .map(|i| format!("/ip4/10.0.0.{i}/tcp/4001").parse().unwrap())
            .collect();
        assert_eq!(
            record_addresses([].iter(), many.iter()).len(),
            MAX_RECORD_ADDRS
        );
    }
}
