//! One simulated node: the daemon's own network layer (`p2pd::network::build_in_memory`,
//! the same behaviour, Kademlia configuration and swarm task as `p2pd daemon`), set up
//! from the daemon's own option defaults, and run with an observer feeding [`Probe`].
//!
//! A node that leaves drops its swarm: its connections close at once and its address
//! refuses connections from then on (libp2p's memory transport never frees a port whose
//! listener was dropped), like a host whose daemon exited. A node that comes back
//! listens at a new address, like a host that got a new IP address.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chunk_store::BufferPool;
use clap::Parser;
use libp2p::multiaddr::Protocol;
use libp2p::{identity, Multiaddr, PeerId};
use p2pd::daemon::IDLE_CONNECTION_TIMEOUT;
use p2pd::network::behaviour::RelayLimits;
use p2pd::network::{self, BehaviourConfig, InboundRequest, Network, NetworkConfig, Timers};
use p2pd::options::DaemonArgs;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::probe::Probe;

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

/// The `p2pd daemon` options as a user who sets only `options` gets them.
pub fn daemon_defaults(options: &[String]) -> anyhow::Result<DaemonArgs> {
    #[derive(Parser)]
    struct Daemon {
        #[command(flatten)]
        args: DaemonArgs,
    }
    let argv = std::iter::once("daemon").chain(options.iter().map(String::as_str));
    Ok(Daemon::try_parse_from(argv)
        .context("the daemon's options")?
        .args)
}

/// The daemon's network settings for a node at `addr`, as `p2pd daemon` builds them
/// from `defaults`, except: no mDNS and no UPnP (there is no LAN or router in memory,
/// and they must not reach the real ones), servers name their address as external
/// (`--external-addr`) and, with `relay_server`, relay for others (`--relay-server`),
/// and clients run in the DHT mode a NAT gives them (`--dht-mode client`). The
/// wall-clock timers that run beside churn (Kademlia's query timeout and routing-table
/// refresh, the ping interval and timeout, the idle-connection timeout) are `time_scale` times the daemon's, so that
/// a run whose simulated minute lasts longer than a real one keeps them in proportion.
pub fn network_config(
    defaults: &DaemonArgs,
    time_scale: f64,
    role: Role,
    relay_server: bool,
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
        // A node behind NAT in the daemon's automatic mode stays a DHT client because
        // AutoNAT never confirms its address. Over the memory transport every node is
        // reachable, and AutoNAT did confirm the own address of one client in a 200-node
        // run, which then rightly turned server and entered 719 routing tables: clients
        // are therefore set to the mode a NAT gives them (`--dht-mode client`).
        dht_mode: match role {
            Role::Server => defaults.dht_mode.into(),
            Role::Client => network::DhtMode::Client,
        },
        behaviour: BehaviourConfig {
            display_name: None,
            mdns: false,
            max_provider_keys: defaults.max_provider_keys,
            max_connections: defaults.max_connections,
            max_inbound_per_ip: p2pd::network::DEFAULT_MAX_INBOUND_PER_IP,
            request_timeout: Duration::from_secs(defaults.request_timeout.max(1)),
            relay_server: (relay_server && role == Role::Server).then(|| RelayLimits {
                max_reservations: defaults.relay_max_reservations,
                max_circuits: defaults.relay_max_circuits,
                max_circuit_duration: Duration::from_secs(defaults.relay_max_circuit_secs),
                max_circuit_bytes: defaults.relay_max_circuit_bytes,
            }),
            upnp: false,
            chunk_buffers: buffers,
            timers: Timers::scaled(time_scale),
        },
        idle_timeout: IDLE_CONNECTION_TIMEOUT.mul_f64(time_scale),
        test_panic_after: None,
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
    /// Its address now (or last).
    pub port: u64,
    pub role: Role,
    pub state: NodeState,
    /// Files it provides (it announces them again each time it starts, as the daemon
    /// announces what its store holds).
    pub files: Vec<usize>,
}

pub enum NodeState {
    Online(Running),
    Offline,
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
    pub fn new(role: Role) -> Self {
        let key = identity::Keypair::generate_ed25519();
        SimNode {
            peer_id: key.public().to_peer_id(),
            key,
            port: 0,
            role,
            state: NodeState::Offline,
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
            NodeState::Offline => None,
        }
    }

    /// Starts the node's network task.
    pub fn start(
        &mut self,
        index: usize,
        config: NetworkConfig,
        probe: &Arc<Probe>,
    ) -> anyhow::Result<()> {
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

    /// Stops the node: its swarm is dropped (connections close, its address refuses
    /// connections).
    pub async fn stop(&mut self) {
        let NodeState::Online(running) = std::mem::replace(&mut self.state, NodeState::Offline)
        else {
            return;
        };
        running.task.abort();
        let _ = running.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(time_scale: f64) -> NetworkConfig {
        let defaults = daemon_defaults(&[]).expect("the daemon's defaults");
        let addr: Multiaddr = "/memory/1".parse().expect("an address");
        network_config(
            &defaults,
            time_scale,
            Role::Server,
            false,
            addr,
            vec![],
            BufferPool::new(1 << 20),
        )
    }

    #[test]
    fn daemon_options_change_the_defaults_and_a_bad_one_is_refused() {
        let options = ["--max-connections=4096".to_owned()];
        let given = daemon_defaults(&options).expect("a valid option");
        assert_eq!(given.max_connections, 4096);
        assert_ne!(daemon_defaults(&[]).unwrap().max_connections, 4096);
        assert!(daemon_defaults(&["--max-connections=0".to_owned()]).is_err());
        assert!(daemon_defaults(&["--no-such-option".to_owned()]).is_err());
    }

    #[test]
    fn in_real_time_the_timers_are_the_daemons() {
        let real = config(1.0);
        assert_eq!(real.behaviour.timers, Timers::default());
        assert_eq!(real.idle_timeout, IDLE_CONNECTION_TIMEOUT);
    }

    #[test]
    fn a_slower_minute_stretches_the_timers_that_run_beside_churn() {
        let daemon = Timers::default();
        let slow = config(4.0);
        assert_eq!(
            slow.behaviour.timers.query_timeout,
            daemon.query_timeout * 4
        );
        assert_eq!(
            slow.behaviour.timers.periodic_bootstrap,
            daemon.periodic_bootstrap * 4
        );
        assert_eq!(
            slow.behaviour.timers.ping_interval,
            daemon.ping_interval * 4
        );
        assert_eq!(slow.behaviour.timers.ping_timeout, daemon.ping_timeout * 4);
        assert_eq!(slow.idle_timeout, IDLE_CONNECTION_TIMEOUT * 4);
    }
}
