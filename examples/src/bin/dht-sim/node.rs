//! One simulated node: the daemon's own network layer (`p2pd::network::build_in_memory`,
//! the same behaviour, Kademlia configuration and swarm task as `p2pd daemon`), set up
//! from the daemon's own option defaults, run with an observer feeding [`Probe`], and
//! what is left of it after it leaves (a black-hole listener, see [`Departure`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chunk_store::BufferPool;
use clap::Parser;
use futures::StreamExt;
use libp2p::core::transport::{ListenerId, MemoryTransport, Transport as _, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::{identity, Multiaddr, PeerId};
use p2pd::daemon::{DaemonArgs, IDLE_CONNECTION_TIMEOUT};
use p2pd::network::{self, BehaviourConfig, InboundRequest, Network, NetworkConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::probe::Probe;

/// How long a departed node's black hole keeps each connection attempt before dropping
/// it: longer than the daemon's handshake timeout (5 s), so the dialer times out first,
/// as it does when the host is gone.
const BLACK_HOLE_HOLD: Duration = Duration::from_secs(15);

/// Whether a node is a DHT server or a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A public host: `p2pd daemon --external-addr <its address>` (DHT mode auto, which
    /// turns server on the confirmed address).
    Server,
    /// A node behind NAT: `p2pd daemon` with no confirmed address (DHT mode auto, which
    /// stays client), i.e. known unreachable.
    Client,
}

/// What happens when a node leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Departure {
    /// Its connections close and its address stops answering: dials to it hang until
    /// the dialer's handshake timeout, like a host that went offline.
    Silent,
    /// Its connections close and dials to its address fail at once, like a host whose
    /// daemon exited (connection refused).
    Closed,
}

/// The `p2pd daemon` options as a user who sets none gets them.
pub fn daemon_defaults() -> anyhow::Result<DaemonArgs> {
    #[derive(Parser)]
    struct Daemon {
        #[command(flatten)]
        args: DaemonArgs,
    }
    Ok(Daemon::try_parse_from(["daemon"])
        .context("the daemon's defaults")?
        .args)
}

/// The daemon's network settings for a node at `addr`, as `p2pd daemon` builds them
/// from `defaults`, except: no mDNS and no UPnP (there is no LAN or router in memory,
/// and they must not reach the real ones), and servers name their address as external.
pub fn network_config(
    defaults: &DaemonArgs,
    role: Role,
    addr: Multiaddr,
    bootstrap: Vec<Multiaddr>,
    buffers: BufferPool,
) -> NetworkConfig {
    NetworkConfig {
        listen: vec![addr.clone()],
        bootstrap,
        external: match role {
            Role::Server => vec![addr],
            Role::Client => vec![],
        },
        relays: vec![],
        dht_mode: defaults.dht_mode.into(),
        behaviour: BehaviourConfig {
            display_name: None,
            mdns: false,
            max_provider_keys: defaults.max_provider_keys,
            max_connections: defaults.max_connections,
            request_timeout: Duration::from_secs(defaults.request_timeout.max(1)),
            // The daemon runs a relay server only with --relay-server or --dht-mode
            // server; neither is set.
            relay_server: None,
            upnp: false,
            chunk_buffers: buffers,
        },
        idle_timeout: IDLE_CONNECTION_TIMEOUT,
    }
}

/// `/memory/<port>`.
pub fn memory_addr(port: u64) -> Multiaddr {
    Multiaddr::empty().with(Protocol::Memory(port))
}

/// One identity of the simulation, online or not.
pub struct SimNode {
    pub key: identity::Keypair,
    pub peer_id: PeerId,
    /// Its address; it comes back at the same one.
    pub port: u64,
    pub role: Role,
    pub state: NodeState,
    /// Files it provides (it announces them again each time it starts, as the daemon
    /// announces what its store holds).
    pub files: Vec<usize>,
}

pub enum NodeState {
    Online(Running),
    /// Gone; a silent departure leaves a black hole at its address.
    Offline(Option<JoinHandle<()>>),
}

/// A node whose swarm task runs.
pub struct Running {
    pub net: Network,
    task: JoinHandle<()>,
    /// Chunk requests from peers (none are sent in the simulation); kept open so that
    /// the node's request handling stays as in the daemon.
    _inbound: mpsc::Receiver<InboundRequest>,
}

impl SimNode {
    pub fn new(port: u64, role: Role) -> Self {
        let key = identity::Keypair::generate_ed25519();
        SimNode {
            peer_id: key.public().to_peer_id(),
            key,
            port,
            role,
            state: NodeState::Offline(None),
            files: Vec::new(),
        }
    }

    pub fn addr(&self) -> Multiaddr {
        memory_addr(self.port)
    }

    /// Its address ending in `/p2p/<id>`, as a bootstrap entry.
    pub fn p2p_addr(&self) -> Multiaddr {
        self.addr().with(Protocol::P2p(self.peer_id))
    }

    pub fn running(&self) -> Option<&Running> {
        match &self.state {
            NodeState::Online(r) => Some(r),
            NodeState::Offline(_) => None,
        }
    }

    /// Starts the node's network task (after its black hole, if any, is gone).
    pub async fn start(
        &mut self,
        index: usize,
        config: NetworkConfig,
        probe: &Arc<Probe>,
    ) -> anyhow::Result<()> {
        if let NodeState::Offline(Some(hole)) = &mut self.state {
            hole.abort();
            let _ = hole.await;
        }
        let (inbound_tx, inbound) = mpsc::channel(16);
        let (actor, net) = network::build_in_memory(self.key.clone(), config, inbound_tx)
            .with_context(|| format!("starting node {index}"))?;
        let observer = probe.observer(index);
        let span = tracing::info_span!("sim_node", node = index);
        let task = tokio::spawn(actor.run_observed(observer).instrument(span));
        self.state = NodeState::Online(Running {
            net,
            task,
            _inbound: inbound,
        });
        Ok(())
    }

    /// Stops the node: its swarm is dropped (connections close); with
    /// [`Departure::Silent`] its address then swallows connection attempts.
    pub async fn stop(&mut self, departure: Departure) {
        let NodeState::Online(running) =
            std::mem::replace(&mut self.state, NodeState::Offline(None))
        else {
            return;
        };
        running.task.abort();
        // The swarm and its listener are dropped once the aborted task is.
        let _ = running.task.await;
        if departure == Departure::Silent {
            self.state = NodeState::Offline(black_hole(self.port));
        }
    }
}

/// Listens at `port` and holds every incoming connection unanswered for
/// [`BLACK_HOLE_HOLD`].
fn black_hole(port: u64) -> Option<JoinHandle<()>> {
    let mut transport = MemoryTransport::default();
    transport
        .listen_on(ListenerId::next(), memory_addr(port))
        .ok()?;
    Some(tokio::spawn(async move {
        let mut held = futures::stream::FuturesUnordered::new();
        loop {
            tokio::select! {
                event = std::future::poll_fn(|cx| std::pin::Pin::new(&mut transport).poll(cx)) => {
                    if let TransportEvent::Incoming { upgrade, .. } = event {
                        held.push(async move {
                            let connection = upgrade.await;
                            tokio::time::sleep(BLACK_HOLE_HOLD).await;
                            drop(connection);
                        });
                    }
                }
                Some(()) = held.next(), if !held.is_empty() => {}
            }
        }
    }))
}
