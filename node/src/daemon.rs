//! `p2pd daemon`: starts the store, the swarm task, the upload server, the catalog and
//! the control API, announces what the store holds, and runs until interrupted.

use std::fs;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chunk_store::{EntryState, Store};
use libp2p::Multiaddr;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{http, Api};
use crate::control::ApiEndpoint;
use crate::network::behaviour::RelayLimits;
use crate::network::{self, BehaviourConfig, DhtMode, NetworkConfig};
use crate::tasks::{Essentials, Tasks};
use crate::transfer::serve::{self, ServeConfig};
use crate::transfer::{RateLimits, Transfers};
use crate::{paths, startup};

/// Default control API address.
pub const DEFAULT_API: &str = "127.0.0.1:5890";

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
    /// Start even if another process listens on a --listen port: both then share it,
    /// and peers reach one or the other (normally a mistake).
    #[arg(long)]
    pub allow_shared_port: bool,
    /// Test only: serve corrupt chunks.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub test_corrupt_chunks: bool,
    /// Test only: the network task panics this many seconds after start.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "SECS")]
    pub test_panic_network_after: Option<u64>,
    /// Test only: the catalog server sends forged entries.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_enum)]
    pub test_forge_catalog: Option<crate::catalog::forge::Forgery>,
    /// Test only: the catalog server answers this many seconds late.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "SECS")]
    pub test_catalog_delay: Option<u64>,
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

/// `p2pd daemon`: refuses nonsense options (exit 2) before it touches anything, makes
/// the data directory private, starts logging, and runs the node until it stops.
pub async fn start(data_dir: PathBuf, args: DaemonArgs) -> anyhow::Result<()> {
    startup::check_args(&args)?;
    let display_name = match args.display_name.clone() {
        Some(name) => Some(
            crate::api::check_display_name(Some(name))
                .map_err(|e| crate::UsageError(format!("--display-name: {}", e.message)))?,
        ),
        None => None,
    };
    startup::private_umask();
    let fixed = startup::prepare_data_dir(&data_dir)?;
    let _log_guard = startup::init_logging(startup::open_log(&data_dir)?)?;
    if !fixed.is_empty() {
        let shown: Vec<String> = fixed
            .iter()
            .take(5)
            .map(|p| p.display().to_string())
            .collect();
        tracing::warn!(
            count = fixed.len(),
            first = ?shown,
            "the data directory or files in it were open to other users: group and others lost their rights (directories 0700, files 0600)"
        );
    }
    run(data_dir, args, display_name).await
}

/// Runs the daemon in a prepared `data_dir` until SIGINT or SIGTERM, or until an
/// essential task ends.
async fn run(
    data_dir: PathBuf,
    args: DaemonArgs,
    display_name: Option<Option<String>>,
) -> anyhow::Result<()> {
    if !args.api.ip().is_loopback() {
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

    if let Some(display_name) = display_name {
        crate::api::save_settings(&data_dir, &crate::api::types::Settings { display_name })
            .context("saving the display name")?;
    }
    // libp2p's listeners share ports (SO_REUSEPORT): without this check a second daemon
    // on a taken port would listen beside the first and take some of its peers.
    for addr in startup::check_listen_ports(&args.listen, args.allow_shared_port)? {
        tracing::warn!(%addr, "another process listens on this port too (--allow-shared-port)");
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

    // The task tree: essential tasks below; downloads and streamed answers are children
    // in `tasks`. The swarm task has a stop of its own: it goes last, so that downloads
    // can still withdraw their requests while they stop.
    let tasks = Tasks::new();
    let mut essentials = Essentials::new();
    let network_stop = CancellationToken::new();

    #[cfg(feature = "test-faults")]
    let test_panic_after = args.test_panic_network_after.map(Duration::from_secs);
    #[cfg(not(feature = "test-faults"))]
    let test_panic_after = None;
    let (inbound_tx, inbound_rx) = mpsc::channel(1024);
    let signer = crate::identity::signing_key(&key);
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
                request_timeout: Duration::from_secs(args.request_timeout),
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
            idle_timeout: Duration::from_secs(120),
            test_panic_after,
        },
        inbound_tx,
    )?;
    tracing::info!(peer_id = %net.local_peer_id(), data_dir = %data_dir.display(), "p2pd daemon starting");
    {
        let stop = network_stop.clone();
        essentials.spawn("network", async move {
            tokio::select! {
                () = actor.run() => {}
                // Dropping the swarm closes every connection.
                () = stop.cancelled() => {}
            }
            Ok(())
        });
    }

    let transfers = Transfers::new(
        store.clone(),
        net.clone(),
        RateLimits {
            upload: args.max_upload_rate,
            download: args.max_download_rate,
        },
        Some(data_dir.join(paths::REPUTATION_FILE)),
        tasks.clone(),
    );
    essentials.spawn(
        "reputation saver",
        save_reputation_periodically(transfers.clone(), tasks.clone()),
    );
    #[cfg(feature = "test-faults")]
    let corrupt_chunks = args.test_corrupt_chunks;
    #[cfg(not(feature = "test-faults"))]
    let corrupt_chunks = false;
    essentials.spawn(
        "upload server",
        until_stop(
            &tasks,
            serve::run(
                transfers.clone(),
                ServeConfig {
                    upload_slots: args.upload_slots,
                    corrupt_chunks,
                },
                inbound_rx,
            ),
        ),
    );

    let (catalog, catalog_task) = crate::catalog::Catalog::start(crate::catalog::CatalogParts {
        store: store.clone(),
        net: net.clone(),
        transfers: transfers.clone(),
        signer,
        data_dir: data_dir.clone(),
        tasks: tasks.clone(),
        #[cfg(feature = "test-faults")]
        forgery: args.test_forge_catalog,
        #[cfg(feature = "test-faults")]
        answer_delay: args.test_catalog_delay.map(Duration::from_secs),
    })
    .await;
    essentials.spawn("catalog", until_stop(&tasks, catalog_task));

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
    endpoint.write(&data_dir)?;
    tracing::info!(api = %api_addr, "control API ready");

    let api = Api::new(transfers.clone(), data_dir.clone()).with_catalog(catalog);
    essentials.spawn("live monitor", until_stop(&tasks, api.live_monitor()));
    let app = http::app(
        api,
        http::ServerConfig {
            token,
            addr: api_addr,
            public: args.api_public,
            max_upload: args.max_upload,
            tasks: tasks.clone(),
        },
    );
    let setup_link_path = data_dir.join(paths::SETUP_LINK_FILE);
    match &app.setup_link {
        Some(link) => {
            let path = startup::publish_setup_link(&data_dir, link)?;
            tracing::warn!(
                "no web UI password is set: the one-time setup link is in {} (readable only by you), or run `p2pd passwd`",
                path.display()
            );
        }
        None => {
            let _ = fs::remove_file(&setup_link_path);
        }
    }
    {
        let tasks = tasks.clone();
        let stopping = async move { tasks.stopping().await };
        essentials.spawn("control API", async move {
            http::serve(listener, app, stopping)
                .await
                .context("serving the control API")
        });
    }

    let failure = tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("stopping: signal received");
            None
        }
        ended = essentials.next_end() => {
            tracing::error!("{ended}: the daemon stops (a supervisor such as systemd restarts it)");
            Some(ended)
        }
    };
    stop(tasks, essentials, network_stop, &transfers).await;
    let _ = fs::remove_file(data_dir.join(paths::API_FILE));
    drop(lock);
    match failure {
        None => {
            tracing::info!("p2pd daemon stopped");
            Ok(())
        }
        Some(ended) => Err(anyhow::anyhow!("{ended}")),
    }
}

/// Longest the daemon takes to stop after SIGTERM or Ctrl-C, or after an essential task
/// ended (systemd's default is to wait 90 s; ours is a promise to the operator).
pub const STOP_WITHIN: Duration = Duration::from_secs(5);

/// Stops the daemon in order: no new requests (the API stops accepting, streamed answers
/// end, the upload server and the savers return), downloads save what they verified,
/// the reputation ledger is written, then the swarm goes and its connections with it.
/// Whatever has not ended a little before [`STOP_WITHIN`] is aborted.
async fn stop(
    tasks: Tasks,
    mut essentials: Essentials,
    network_stop: CancellationToken,
    transfers: &Transfers,
) {
    let started = Instant::now();
    let deadline = started + STOP_WITHIN - Duration::from_millis(500);
    tasks.stop();
    for download in transfers.downloads() {
        if let Ok(cid) = download.cid.parse() {
            transfers.cancel(&cid);
        }
    }
    // The swarm gets at least the last second to itself.
    let left = tasks.wait(deadline - Duration::from_secs(1)).await;
    if left > 0 {
        tracing::warn!(
            left,
            "stopping: downloads or streams still running are dropped"
        );
    }
    let saver = transfers.clone();
    let saved = tokio::time::timeout_at(
        deadline,
        tokio::task::spawn_blocking(move || saver.save_reputation()),
    )
    .await;
    if saved.is_err() {
        tracing::warn!("stopping: saving peer reputation took too long");
    }
    network_stop.cancel();
    let aborted = essentials.finish(deadline).await;
    if !aborted.is_empty() {
        tracing::warn!(tasks = ?aborted, "stopping: tasks that did not end in time were aborted");
    }
    tracing::debug!(secs = started.elapsed().as_secs_f64(), "stopped");
}

/// Runs `task` until it ends or the daemon stops. Its ending first is not an error of
/// its own; the supervisor treats any end of an essential task before shutdown as fatal.
fn until_stop(
    tasks: &Tasks,
    task: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let tasks = tasks.clone();
    async move {
        tokio::select! {
            () = task => {}
            () = tasks.stopping() => {}
        }
        Ok(())
    }
}

/// Saves peer reputation every 30 s when it changed, on a blocking thread (it writes a
/// file), until the daemon stops (which saves it one last time itself).
async fn save_reputation_periodically(transfers: Transfers, tasks: Tasks) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = tasks.stopping() => return Ok(()),
        }
        let transfers = transfers.clone();
        tokio::task::spawn_blocking(move || transfers.save_reputation())
            .await
            .context("saving peer reputation")?;
    }
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
