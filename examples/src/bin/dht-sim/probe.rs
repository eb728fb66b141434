//! What the simulation learns from inside the nodes. Each node's swarm task shows its
//! events to an observer ([`Probe::observer`]) before handling them; the observer keeps
//! Kademlia's own statistics of provider lookups (announcements are read from each
//! node's network layer, `announce.rs`), checks every routing-table insertion against the role of the peer inserted, and counts the
//! requests each node serves. Nothing here changes what a node does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use libp2p::kad::{self, GetProvidersError, GetProvidersOk, QueryResult};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::PeerId;
use p2pd::network::gate::{LimitReached, ALL_ESTABLISHED};
use p2pd::network::BehaviourEvent;

use crate::hops::HopTracker;
use crate::node::Role;

/// Routing-table violations kept as examples (all are counted).
const MAX_VIOLATION_EXAMPLES: usize = 20;

/// How one provider lookup went, from Kademlia's side.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    /// Requests sent (Kademlia's `QueryStats::num_requests`).
    pub requests: u32,
    /// Requests that failed or timed out.
    pub failures: u32,
    /// From start to end of the query.
    pub duration: Option<Duration>,
    /// Hops to the first peer that answered with a provider (0: our own store).
    pub hops: Option<u32>,
    /// The query hit Kademlia's query timeout.
    pub timed_out: bool,
    /// Every provider the DHT named (before the daemon dials them).
    pub named: Vec<PeerId>,
}

/// A provider query still running: hops to its first provider, the providers named.
#[derive(Default)]
struct RunningQuery {
    hops: Option<u32>,
    named: Vec<PeerId>,
}

/// Something the client/server check did not expect: a client in a routing table, or a
/// client that became reachable.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Violation {
    /// The node whose routing table took the peer.
    pub node: usize,
    pub peer: String,
    pub what: &'static str,
    /// An address involved, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// Counters over all nodes.
#[derive(Default)]
pub struct Counters {
    pub routing_insertions: AtomicU64,
    pub client_insertions: AtomicU64,
    pub client_mode_changes: AtomicU64,
    /// Direct (not relayed) external addresses confirmed on clients: in the daemon's
    /// automatic DHT mode each makes that node a server, as on a reachable host.
    pub client_direct_addrs: AtomicU64,
    pub inbound_find_node: AtomicU64,
    pub inbound_get_providers: AtomicU64,
    pub inbound_add_provider: AtomicU64,
    pub bootstrap_requests: AtomicU64,
    /// Inbound connections a server refused because its established connections were
    /// at the daemon's limit (`--max-connections`), and other connection-limit refusals.
    pub refused_at_max_established: AtomicU64,
    pub refused_other_limit: AtomicU64,
}

/// Shared by the simulation and every node's observer.
#[derive(Default)]
pub struct Probe {
    roles: RwLock<HashMap<PeerId, Role>>,
    /// Roles and ids by node index.
    node_roles: Mutex<Vec<Role>>,
    node_peers: Mutex<Vec<PeerId>>,
    /// Per node: its provider queries still running.
    running: Mutex<HashMap<(usize, kad::QueryId), RunningQuery>>,
    /// Per node: its last provider query that ended.
    finished: Mutex<HashMap<usize, QueryOutcome>>,
    /// Nodes whose first bootstrap since they started ended.
    bootstrapped: Mutex<std::collections::HashSet<usize>>,
    violations: Mutex<Vec<Violation>>,
    pub counters: Counters,
    pub hops: HopTracker,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Probe {
    /// Records the role of a new identity (before it starts); identities are numbered
    /// in the order they are registered.
    pub fn register(&self, peer: PeerId, role: Role) {
        lock(&self.node_roles).push(role);
        lock(&self.node_peers).push(peer);
        self.roles
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer, role);
    }

    fn role(&self, peer: &PeerId) -> Option<Role> {
        self.roles
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .copied()
    }

    /// The last provider query of `node` that ended, taken.
    pub fn take_lookup(&self, node: usize) -> Option<QueryOutcome> {
        lock(&self.finished).remove(&node)
    }

    /// Whether `node`'s first bootstrap since it started ended.
    pub fn bootstrapped(&self, node: usize) -> bool {
        lock(&self.bootstrapped).contains(&node)
    }

    /// Forgets that `node` bootstrapped (it is starting again).
    pub fn forget_bootstrap(&self, node: usize) {
        lock(&self.bootstrapped).remove(&node);
    }

    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.violations).clone()
    }

    /// The observer for node `node`'s swarm task.
    pub fn observer(
        self: &Arc<Self>,
        node: usize,
    ) -> impl FnMut(&SwarmEvent<BehaviourEvent>) + Send + 'static {
        let probe = self.clone();
        move |event| match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => probe.on_kad_event(node, event),
            SwarmEvent::IncomingConnectionError {
                error: ListenError::Denied { cause },
                ..
            } => {
                if let Some(limit) = cause.downcast_ref::<LimitReached>() {
                    let counter = if limit.what == ALL_ESTABLISHED {
                        &probe.counters.refused_at_max_established
                    } else {
                        &probe.counters.refused_other_limit
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address }
                if probe.node_role(node) == Some(Role::Client)
                    && !address.iter().any(|p| p == Protocol::P2pCircuit) =>
            {
                probe
                    .counters
                    .client_direct_addrs
                    .fetch_add(1, Ordering::Relaxed);
                let peer = probe.peer_of(node);
                probe.record(Violation {
                    node,
                    peer: peer.to_string(),
                    what: "a DHT client confirmed a direct external address",
                    address: Some(address.to_string()),
                });
            }
            _ => {}
        }
    }

    fn on_kad_event(&self, node: usize, event: &kad::Event) {
        let c = &self.counters;
        match event {
            kad::Event::OutboundQueryProgressed {
                id,
                result,
                stats,
                step,
            } => match result {
                QueryResult::GetProviders(result) => {
                    let mut running = lock(&self.running);
                    let query = running.entry((node, *id)).or_default();
                    if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = result {
                        if query.hops.is_none() && !providers.is_empty() {
                            query.hops = Some(self.hops.hops_to_last_answer(node, id));
                        }
                        query.named.extend(providers.iter().copied());
                    }
                    if step.last {
                        let query = running.remove(&(node, *id)).unwrap_or_default();
                        drop(running);
                        let outcome = QueryOutcome {
                            requests: stats.num_requests(),
                            failures: stats.num_failures(),
                            duration: stats.duration(),
                            hops: query.hops,
                            timed_out: matches!(result, Err(GetProvidersError::Timeout { .. })),
                            named: query.named,
                        };
                        lock(&self.finished).insert(node, outcome);
                    }
                }
                QueryResult::Bootstrap(_) => {
                    c.bootstrap_requests
                        .fetch_add(u64::from(stats.num_requests()), Ordering::Relaxed);
                    if step.last {
                        lock(&self.bootstrapped).insert(node);
                    }
                }
                _ => {}
            },
            kad::Event::RoutingUpdated {
                peer,
                is_new_peer: true,
                ..
            } => {
                c.routing_insertions.fetch_add(1, Ordering::Relaxed);
                if self.role(peer) == Some(Role::Client) {
                    c.client_insertions.fetch_add(1, Ordering::Relaxed);
                    self.violation(node, peer, "a DHT client entered a routing table");
                }
            }
            kad::Event::ModeChanged {
                new_mode: kad::Mode::Server,
            } if self.node_role(node) == Some(Role::Client) => {
                c.client_mode_changes.fetch_add(1, Ordering::Relaxed);
                self.violation(node, &self.peer_of(node), "a DHT client turned server");
            }
            kad::Event::InboundRequest { request } => {
                let counter = match request {
                    kad::InboundRequest::FindNode { .. } => &c.inbound_find_node,
                    kad::InboundRequest::GetProvider { .. } => &c.inbound_get_providers,
                    kad::InboundRequest::AddProvider { .. } => &c.inbound_add_provider,
                    _ => return,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    fn peer_of(&self, node: usize) -> PeerId {
        lock(&self.node_peers)
            .get(node)
            .copied()
            .unwrap_or(PeerId::random())
    }

    fn node_role(&self, node: usize) -> Option<Role> {
        lock(&self.node_roles).get(node).copied()
    }

    fn violation(&self, node: usize, peer: &PeerId, what: &'static str) {
        self.record(Violation {
            node,
            peer: peer.to_string(),
            what,
            address: None,
        });
    }

    fn record(&self, violation: Violation) {
        let mut v = lock(&self.violations);
        if v.len() < MAX_VIOLATION_EXAMPLES {
            v.push(violation);
        }
    }
}
