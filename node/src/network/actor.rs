//! The swarm task: [`NetworkActor`] owns the `Swarm` and the state of every part of the
//! network layer, runs the loop over swarm events, commands and a tick, dispatches
//! each to the module that owns it, and answers the snapshot commands (`Info`,
//! `Peers`).

use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{kad, Multiaddr, Swarm};
use tokio::sync::{broadcast, mpsc};

use super::behaviour::{Behaviour, BehaviourEvent};
use super::catalog::CatalogRequests;
use super::dht::Dht;
use super::handle::Command;
use super::info::{DhtRole, NatStatus, NetEvent, NodeInfo};
use super::lan::LanPeers;
use super::peers::{is_relayed, Peers};
use super::providers::ProviderLookups;
use super::quic_beside_tcp::QuicBesideTcp;
use super::reach::Reach;
use super::relays::RelayBook;
use super::requests::Requests;

/// How often the actor runs its timers (announcements due, relay reservations, clean-up).
const TICK: Duration = Duration::from_millis(500);

/// The task that owns the swarm.
pub struct NetworkActor {
    /// See [`NetworkConfig::test_panic_after`](super::NetworkConfig::test_panic_after).
    pub(super) test_panic_at: Option<Instant>,
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) events: broadcast::Sender<NetEvent>,
    pub(super) requests: Requests,
    pub(super) dht: Dht,
    pub(super) reach: Reach,
    pub(super) peers: Peers,
    pub(super) relays: RelayBook,
    pub(super) providers: ProviderLookups,
    /// libp2p's metrics, when the daemon serves them.
    pub(super) metrics: Option<libp2p::metrics::Metrics>,
    pub(super) catalog: CatalogRequests,
    pub(super) lan: LanPeers,
    pub(super) quic_beside_tcp: QuicBesideTcp,
}

impl NetworkActor {
    /// Runs until every [`Network`](super::Network) handle is dropped.
    pub async fn run(self) {
        self.run_observed(|_| {}).await
    }

    /// [`run`](Self::run), showing each swarm event to `observe` before handling it:
    /// how `dht-sim` measures the daemon's own Kademlia (query statistics, routing
    /// table insertions) without a copy of it.
    pub async fn run_observed(mut self, mut observe: impl FnMut(&SwarmEvent<BehaviourEvent>)) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    observe(&event);
                    self.on_swarm_event(event);
                }
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::debug!("network task stopped");
    }

    pub(super) fn on_tick(&mut self) {
        let now = Instant::now();
        if self.test_panic_at.is_some_and(|at| now >= at) {
            panic!("test fault: the network task panics as asked (--test-panic-network-after)");
        }
        self.run_due_announcements(now);
        self.keep_reservations(now);
        self.start_expiry_probes(now);
        self.tend_provider_lookups(now);
        self.redial_lan_peers(now);
        self.close_quic_beside_tcp(now);
        self.requests.release_held_failures(now);
        self.report_serving();
    }

    /// Dials a peer at addresses we were given (a share ticket's), keeping them for
    /// later dials.
    fn dial_at(&mut self, peer: libp2p::PeerId, addrs: Vec<Multiaddr>) {
        for addr in &addrs {
            self.swarm.add_peer_address(peer, addr.clone());
        }
        if self.swarm.is_connected(&peer) {
            return;
        }
        let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
            .addresses(addrs)
            .extend_addresses_through_behaviour()
            .build();
        if let Err(e) = self.swarm.dial(opts) {
            tracing::debug!(%peer, "cannot dial a ticket's provider: {e}");
        }
    }

    /// Whether an address that is not relayed is confirmed reachable.
    pub(super) fn is_public(&self) -> bool {
        self.swarm.external_addresses().any(|a| !is_relayed(a))
    }

    pub(super) fn on_command(&mut self, command: Command) {
        match command {
            Command::Request {
                peer,
                request,
                reply,
            } => self.send_request(peer, request, reply),
            Command::Respond { channel, response } => self.respond(channel, response),
            Command::StartProviding(subject) => self.start_providing(vec![subject]),
            Command::StartProvidingMany(subjects) => self.start_providing(subjects),
            Command::StopProviding(subject) => self.stop_providing(subject),
            Command::FindProviders {
                key,
                found,
                started,
            } => self.find_providers(key, found, started),
            Command::FinishLookup { id, done } => self.finish_provider_query(id, done),
            Command::KeywordAnnouncements(reply) => {
                let _ = reply.send(self.dht.reprovider.provided.keywords());
            }
            Command::CatalogRequest {
                peer,
                request,
                addrs,
                reply,
            } => self.send_catalog_request(peer, request, addrs, reply),
            Command::RespondCatalog { channel, response } => {
                self.respond_catalog(channel, response)
            }
            Command::ServeCatalog(server) => self.serve_catalog(server),
            Command::Dial { addr, reply } => self.dial_address(addr, reply),
            Command::Info(reply) => {
                let _ = reply.send(self.node_info());
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peers.infos());
            }
            Command::Announcements(reply) => {
                let _ = reply.send(self.dht.reprovider.provided.snapshot());
            }
            Command::ReprovideStats(reply) => {
                let _ = reply.send(self.reprovide_stats());
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Relays(reply) => {
                let _ = reply.send(self.relays_report());
            }
            Command::AddRelay { peer, addr, reply } => {
                let _ = reply.send(self.add_relay(peer, addr));
            }
            Command::DropRelay { peer, reply } => {
                let _ = reply.send(self.drop_relay(peer));
            }
            Command::RelayExpiry { relay, expiry } => self.relays.on_expiry_read(relay, expiry),
            Command::RoutingTable(reply) => {
                let _ = reply.send(self.routing_table());
            }
            Command::Rejoin(peers) => self.rejoin(peers),
            Command::DialAt { peer, addrs, done } => {
                self.dial_at(peer, addrs);
                let _ = done.send(());
            }
        }
    }

    pub(super) fn node_info(&mut self) -> NodeInfo {
        let local = *self.swarm.local_peer_id();
        // Relayed addresses already end in our id (`…/p2p-circuit/p2p/<us>`).
        let with_id = |a: &Multiaddr| match a.iter().last() {
            Some(Protocol::P2p(_)) => a.clone(),
            _ => a.clone().with(Protocol::P2p(local)),
        };
        let routing_table_peers = self
            .swarm
            .behaviour_mut()
            .kad
            .kbuckets()
            .map(|b| b.num_entries())
            .sum();
        NodeInfo {
            relay_reservations: self.reach.circuit_addrs(),
            peer_id: local,
            listen_addrs: self.swarm.listeners().map(with_id).collect(),
            external_addrs: self.swarm.external_addresses().map(with_id).collect(),
            nat_status: if self.is_public() {
                NatStatus::Public
            } else {
                NatStatus::Private
            },
            dht_role: match self.swarm.behaviour().kad.mode() {
                kad::Mode::Server => DhtRole::Server,
                kad::Mode::Client => DhtRole::Client,
            },
            dht_client_reason: self.dht_client_reason(),
            relay_server: self.relay_server_status(),
            connected_peers: self.swarm.connected_peers().count(),
            routing_table_peers,
            provided_files: self.dht.provided_count(),
            provider_announcements: self.dht.announcements_started(),
            unannounced_files: self.dht.reprovider.provided.unannounced(),
            provider_lookups: self.providers.started,
        }
    }

    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let Some(metrics) = &self.metrics {
            super::metrics::record(metrics, &event);
        }
        match event {
            SwarmEvent::NewListenAddr {
                address,
                listener_id,
            } => {
                tracing::info!(%address, "listening");
                self.reach.on_new_listen_addr(listener_id, address);
            }
            SwarmEvent::ExpiredListenAddr {
                address,
                listener_id,
            } => self.reach.on_expired_listen_addr(listener_id, &address),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                if let Some(relay) = self.reach.on_listener_closed(listener_id, &reason) {
                    let reason = reason.err().map(|e| e.to_string());
                    self.relays.on_reservation_ended(relay, reason);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.on_dialed(connection_id, peer_id);
                self.lan.connected(&peer_id);
                self.relays.on_connection(connection_id, peer_id, &endpoint);
                self.on_connection_established(peer_id, connection_id, &endpoint, num_established);
                self.providers.on_connected(peer_id);
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                tracing::info!(peer = %peer_id, cause = ?cause, "connection closed");
                self.relays.on_connection_closed(connection_id, peer_id);
                self.on_connection_closed(peer_id, connection_id, num_established);
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                error,
                connection_id,
            } => {
                tracing::debug!(peer = ?peer_id, "dial failed: {error}");
                self.on_dial_failed(connection_id, error.to_string());
                if let Some(peer) = peer_id {
                    self.lan.dial_failed(&peer, Instant::now());
                    self.on_provider_dial_failed(peer);
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                tracing::info!(%address, "external address confirmed");
                let _ = self
                    .events
                    .send(NetEvent::ExternalAddressConfirmed(address.clone()));
                self.update_dht_mode();
                self.on_address_confirmed(address);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "external address expired");
                self.update_dht_mode();
                self.on_address_expired(&address);
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Chunk(event) => {
                self.on_transfer_event(super::requests::Transfer::Chunk, event)
            }
            BehaviourEvent::Manifest(event) => {
                self.on_transfer_event(super::requests::Transfer::Manifest, event)
            }
            BehaviourEvent::Catalog(event) => self.on_catalog_event(event),
            BehaviourEvent::Kad(event) => self.on_kad_event(event),
            BehaviourEvent::Provide(event) => self.on_add_provider_event(event),
            BehaviourEvent::Identify(event) => self.on_identify_event(event),
            BehaviourEvent::Ping(event) => self.peers.on_ping(event),
            BehaviourEvent::Mdns(event) => self.on_mdns_event(event),
            BehaviourEvent::Dcutr(event) => super::reach::on_dcutr_event(event),
            BehaviourEvent::RelayClient(event) => self.on_relay_client_event(event),
            BehaviourEvent::RelayServer(event) => self.relays.on_server_event(event),
            BehaviourEvent::Upnp(event) => {
                tracing::info!(?event, "UPnP");
            }
            BehaviourEvent::AutonatClient(event) => match event.result {
                Ok(()) => {
                    tracing::debug!(addr = %event.tested_addr, server = %event.server, "AutoNAT probe: reachable");
                }
                // libp2p's AutoNAT v2 client never tests this address again.
                Err(e) => {
                    tracing::info!(addr = %event.tested_addr, server = %event.server, "AutoNAT probe: not reachable: {e}");
                }
            },
            _ => {}
        }
    }
}
