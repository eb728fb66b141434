//! `p2pd daemon`: starts the store, the swarm task, the upload server and the control
//! API, announces what the store holds, and runs until interrupted.

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chunk_store::{EntryState, Store};
use libp2p::Multiaddr;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::api::{http, Api};
use crate::network::behaviour::RelayLimits;
use crate::network::{self, BehaviourConfig, DhtMode, NetworkConfig};
use crate::paths;
use crate::transfer::serve::{self, ServeConfig};
use crate::transfer::{RateLimits, Transfers};

/// Default control API address.
pub const DEFAULT_API: &str = "127.0.0.1:5890";
/// How long an idle peer connection is kept (`dht-sim` configures its nodes with it).
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

/// `p2pd daemon` options.
#[derive(Debug, Clone, clap::Args)]
pub struct DaemonArgs {
    /// Address to listen on for peers (repeatable).
    #[arg(long, value_name = "MULTIADDR", default_values_t = [
        "/ip4/0.0.0.0/tcp/5891".parse::<Multiaddr>().expect("valid default"),
        "/ip4/0.0.0.0/udp/5891/quic-v1".parse::<Multiaddr>().expect("valid default"),
    ])]
    pub listen: Vec<Multiaddr>,
    /// A bootstrap node, `/…/p2p/<peer id>` (repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// An address this node is reachable at from outside (public hosts; repeatable).
    #[arg(long, value_name = "MULTIADDR")]
    pub external_addr: Vec<Multiaddr>,
    /// Control API address (HTTP). Must be a loopback address unless --api-public.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_API)]
    pub api: SocketAddr,
    /// Allow the control API on a non-loopback address.
    #[arg(long)]
    pub api_public: bool,
    /// DHT participation: auto (server once reachable), server, or client.
    #[arg(long, value_enum, default_value_t = DhtModeArg::Auto)]
    pub dht_mode: DhtModeArg,
    /// Do not look for peers on the LAN with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Most provider keys kept in the DHT store (ours and other peers').
    #[arg(long, default_value_t = 65_536)]
    pub max_provider_keys: usize,
    /// Most established peer connections.
    #[arg(long, default_value_t = 512)]
    pub max_connections: u32,
    /// Peers we upload to at once; peers that upload to us get them first.
    #[arg(long, default_value_t = 8)]
    pub upload_slots: usize,
    /// Upload cap for the whole node, e.g. `10MiB` (bytes per second).
    #[arg(long, value_name = "RATE", value_parser = crate::transfer::rate::parse_rate)]
    pub max_upload_rate: Option<u64>,
    /// Download cap for the whole node, e.g. `10MiB` (bytes per second).
    #[arg(long, value_name = "RATE", value_parser = crate::transfer::rate::parse_rate)]
    pub max_download_rate: Option<u64>,
    /// A name for this node, shown in the web UI and `p2pd status` (kept in the data
    /// directory; the web UI can change it).
    #[arg(long, value_name = "NAME")]
    pub display_name: Option<String>,
    /// Largest file the web UI may upload, e.g. `4GiB`.
    #[arg(long, value_name = "SIZE", value_parser = crate::transfer::rate::parse_rate,
          default_value = "4GiB")]
    pub max_upload: u64,
    /// Seconds a chunk request may take before it is retried elsewhere.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// Act as a relay for peers behind NAT (on by default with --dht-mode server).
    #[arg(long)]
    pub relay_server: bool,
    /// Relay reservations held at once (relay server).
    #[arg(long, default_value_t = 128)]
    pub relay_max_reservations: usize,
    /// Relayed circuits open at once (relay server).
    #[arg(long, default_value_t = 64)]
    pub relay_max_circuits: usize,
    /// Longest life of one relayed circuit in seconds (relay server).
    #[arg(long, default_value_t = 3600)]
    pub relay_max_circuit_secs: u64,
    /// Most bytes through one relayed circuit, 0 for no limit (relay server).
    #[arg(long, default_value_t = 0)]
    pub relay_max_circuit_bytes: u64,
    /// A relay to reserve a slot on when behind NAT, `/…/p2p/<peer id>` (repeatable;
    /// bootstrap nodes that relay are used too).
    #[arg(long, value_name = "MULTIADDR")]
    pub relay: Vec<Multiaddr>,
    /// Do not ask the router for a port mapping (UPnP).
    #[arg(long)]
    pub no_upnp: bool,
    /// Write downloaded chunks through the page cache instead of with direct I/O (for
    /// file systems where direct I/O is slow; those that refuse it are detected).
    #[arg(long)]
    pub no_direct_io: bool,
    /// Test only: serve corrupt chunks.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub test_corrupt_chunks: bool,
}

/// `--dht-mode`: the command-line spelling of [`DhtMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DhtModeArg {
    /// Server once an address that is not relayed is confirmed reachable; client before.
    Auto,
    /// Always answer DHT queries (public bootstrap nodes).
    Server,
    /// Never answer DHT queries.
    Client,
}

impl From<DhtModeArg> for DhtMode {
    fn from(arg: DhtModeArg) -> Self {
        match arg {
            DhtModeArg::Auto => DhtMode::Auto,
            DhtModeArg::Server => DhtMode::Server,
            DhtModeArg::Client => DhtMode::Client,
        }
    }
}

/// What the daemon writes for the CLI: where its API is and the token it wants.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiEndpoint {
    /// `host:port` of the control API.
    pub addr: SocketAddr,
    /// Bearer token.
    pub token: String,
    /// The daemon's process id.
    pub pid: u32,
}

/// Runs the daemon in `data_dir` until SIGINT or SIGTERM.
pub async fn run(data_dir: PathBuf, args: DaemonArgs) -> anyhow::Result<()> {
    if !args.api.ip().is_loopback() {
        if !args.api_public {
            anyhow::bail!(crate::UsageError(format!(
                "--api {} is not a loopback address; add --api-public to expose the control API",
                args.api
            )));
        }
        tracing::warn!(api = %args.api, "the control API listens on a non-loopback address");
    }
    // One daemon per data directory.
    let lock_path = data_dir.join(paths::LOCK_FILE);
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("creating {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        anyhow::bail!(
            "another p2pd daemon is running with data directory {}",
            data_dir.display()
        );
    }

    if let Some(name) = args.display_name.clone() {
        let display_name = crate::api::check_display_name(Some(name))
            .map_err(|e| crate::UsageError(format!("--display-name: {}", e.message)))?;
        crate::api::save_settings(&data_dir, &crate::api::types::Settings { display_name })
            .context("saving the display name")?;
    }

    let key = crate::identity::load_or_create(&data_dir.join(paths::IDENTITY_FILE))?;
    let store_dir = data_dir.join(paths::STORE_DIR);
    let store = Arc::new(
        tokio::task::spawn_blocking(move || Store::open(store_dir))
            .await?
            .context("opening the store")?,
    );
    if args.no_direct_io {
        store.set_direct_io(false);
    }

    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let (actor, net) = network::build(
        key,
        NetworkConfig {
            listen: args.listen.clone(),
            bootstrap: args.bootstrap.clone(),
            external: args.external_addr.clone(),
            relays: args.relay.clone(),
            dht_mode: args.dht_mode.into(),
            behaviour: BehaviourConfig {
                // Peers see the owner's display name in our identify agent string.
                display_name: crate::api::load_settings(&data_dir).display_name,
                mdns: !args.no_mdns,
                max_provider_keys: args.max_provider_keys,
                max_connections: args.max_connections,
                request_timeout: Duration::from_secs(args.request_timeout.max(1)),
                relay_server: (args.relay_server || args.dht_mode == DhtModeArg::Server).then(
                    || RelayLimits {
                        max_reservations: args.relay_max_reservations,
                        max_circuits: args.relay_max_circuits,
                        max_circuit_duration: Duration::from_secs(args.relay_max_circuit_secs),
                        max_circuit_bytes: args.relay_max_circuit_bytes,
                    },
                ),
                upnp: !args.no_upnp,
                chunk_buffers: store.buffers().clone(),
            },
            idle_timeout: IDLE_CONNECTION_TIMEOUT,
        },
        inbound_tx,
    )?;
    tracing::info!(peer_id = %net.local_peer_id(), data_dir = %data_dir.display(), "p2pd daemon starting");
    tokio::spawn(actor.run());

    let transfers = Transfers::new(
        store.clone(),
        net.clone(),
        RateLimits {
            upload: args.max_upload_rate,
            download: args.max_download_rate,
        },
        Some(data_dir.join(paths::REPUTATION_FILE)),
    );
    {
        let transfers = transfers.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                every.tick().await;
                transfers.save_reputation();
            }
        });
    }
    #[cfg(feature = "test-faults")]
    let corrupt_chunks = args.test_corrupt_chunks;
    #[cfg(not(feature = "test-faults"))]
    let corrupt_chunks = false;
    tokio::spawn(serve::run(
        transfers.clone(),
        ServeConfig {
            upload_slots: args.upload_slots,
            corrupt_chunks,
        },
        inbound_rx,
    ));

    // Re-announce everything we hold, complete or partly downloaded.
    let held = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.list()).await??
    };
    for entry in held {
        let holds_some = entry.published
            && match entry.state {
                EntryState::Complete => true,
                EntryState::Partial { have } => have > 0,
                EntryState::ChangedOnDisk => false,
            };
        if holds_some {
            net.start_providing(entry.cid).await;
        }
    }

    let listener = tokio::net::TcpListener::bind(args.api)
        .await
        .with_context(|| format!("cannot listen for the control API on {}", args.api))?;
    let api_addr = listener.local_addr()?;
    let token = crate::api::auth::random_hex();
    let endpoint = ApiEndpoint {
        addr: api_addr,
        token: token.clone(),
        pid: std::process::id(),
    };
    chunk_store::fsutil::write_private(
        &data_dir.join(paths::API_FILE),
        &serde_json::to_vec_pretty(&endpoint)?,
    )?;
    tracing::info!(api = %api_addr, "control API ready");

    let app = http::app(
        Api::new(transfers.clone(), data_dir.clone()),
        http::ServerConfig {
            token,
            addr: api_addr,
            public: args.api_public,
            max_upload: args.max_upload,
        },
    );
    http::serve(listener, app, shutdown_signal())
        .await
        .context("control API failed")?;
    transfers.save_reputation();
    let _ = fs::remove_file(data_dir.join(paths::API_FILE));
    tracing::info!("p2pd daemon stopped");
    drop(lock);
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
