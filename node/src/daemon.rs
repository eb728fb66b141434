//! `p2pd daemon`: starts the store, the swarm task, the upload server, the catalog and
//! the control API, announces what the store holds, and runs until interrupted.

use std::fs;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chunk_store::{EntryState, Store};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::api::{http, Api};
use crate::control::ApiEndpoint;
use crate::network::behaviour::RelayLimits;
use crate::network::{self, BehaviourConfig, NetworkConfig, Timers};
use crate::options::{DaemonArgs, DhtModeArg};
use crate::tasks::{Essentials, Tasks};
use crate::transfer::serve::{self, ServeConfig};
use crate::transfer::{RateLimits, Transfers};
use crate::{paths, startup};

/// `p2pd daemon`: refuses nonsense options (exit 2) before it touches anything, makes
/// the data directory private, starts logging, and runs the node until it stops.
pub async fn start(data_dir: PathBuf, args: DaemonArgs) -> anyhow::Result<()> {
    startup::check_args(&args)?;
    // Checked by the option's parser; an empty name clears the saved one.
    let display_name = args
        .display_name
        .clone()
        .map(|name| Some(name).filter(|n| !n.is_empty()));
    if let Some(user_umask) = startup::private_umask() {
        chunk_store::platform::remember_user_umask(user_umask);
    }
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
    let mut registry = libp2p::metrics::Registry::default();
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
                max_inbound_per_ip: args.max_inbound_per_ip,
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
                timers: Timers::default(),
            },
            idle_timeout: IDLE_CONNECTION_TIMEOUT,
            test_panic_after,
        },
        inbound_tx,
        &mut registry,
    )?;
    let metrics = std::sync::Arc::new(crate::metrics::Metrics::new(registry));
    tracing::info!(peer_id = %net.local_peer_id(), data_dir = %data_dir.display(), "p2pd daemon starting");
    args.config.log();
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

    {
        // The stopping daemon waits for the last look at the routing table (the swarm
        // must still run to answer it): a node stopped within its first look interval
        // would otherwise save only what it knew at start.
        let (saved, last_saved) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = last_saved.await;
        });
        let tasks = tasks.clone();
        let stopping = async move { tasks.stopping().await };
        let keep = network::keep_known_peers(net.clone(), store.clone(), stopping);
        essentials.spawn("known peers", async move {
            let ended = keep.await;
            drop(saved);
            ended
        });
    }

    let transfers = Transfers::new(
        store.clone(),
        net.clone(),
        RateLimits {
            upload: args.upload_cap(),
            download: args.max_download_rate,
        },
        true,
        tasks.clone(),
    );
    transfers
        .import_legacy_reputation(&data_dir.join(paths::REPUTATION_FILE))
        .await;
    // Before the upload server starts: it must know the private files from the first
    // request on.
    let shares = crate::share::Shares::new(
        transfers.clone(),
        net.clone(),
        Some(data_dir.join(crate::share::SHARES_FILE)),
        args.share_grant_duration(),
    );
    essentials.spawn(
        "share access server",
        until_stop(&tasks, crate::share::serve::run(shares.clone())),
    );
    {
        let transfers = transfers.clone();
        let answer = move |peer, request| transfers.answer_standing(peer, request);
        let server = crate::network::standing::serve(net.clone(), answer);
        essentials.spawn("standing server", until_stop(&tasks, server));
    }
    essentials.spawn(
        "reputation saver",
        save_reputation_periodically(transfers.clone(), tasks.clone()),
    );
    essentials.spawn(
        "upload server",
        until_stop(
            &tasks,
            serve::run(
                transfers.clone(),
                ServeConfig {
                    upload_slots: args.upload_slots,
                    faults: args.test_faults(),
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

    // Downloads the last run left unfinished (even if it was killed) go on.
    transfers.restore_downloads().await?;

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
    // And the folders held whole, unless unpublished.
    let folders = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.folders()).await??
    };
    for folder in folders {
        if folder.record.complete && folder.record.published {
            net.start_providing(folder.cid).await;
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

    let api =
        Api::new(transfers.clone(), net.clone(), shares, data_dir.clone()).with_catalog(catalog);
    api.set_metrics(metrics);
    if let Some(addr) = args.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for metrics on {addr}"))?;
        tracing::info!(metrics = %listener.local_addr()?, "metrics ready");
        let (api, tasks) = (api.clone(), tasks.clone());
        essentials.spawn("metrics", async move {
            let stop = async move { tasks.stopping().await };
            http::ops::serve_metrics(listener, api, stop)
                .await
                .context("serving metrics")
        });
    }
    essentials.spawn("live monitor", until_stop(&tasks, api.live_monitor()));
    essentials.spawn(
        "changed file watch",
        until_stop(&tasks, api.watch_changed_files()),
    );
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

/// How long an idle peer connection is kept (`dht-sim` configures its nodes with it).
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);

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
    // Each download withdraws its requests, saves what it verified and ends paused.
    transfers.stop_downloads();
    // The swarm gets at least the last second to itself.
    let left = tasks.wait(deadline - Duration::from_secs(1)).await;
    if left > 0 {
        tracing::warn!(
            left,
            "stopping: downloads or streams still running are dropped"
        );
    }
    let saved = tokio::time::timeout_at(deadline, transfers.save_reputation()).await;
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

/// Saves what changed in peer reputation every 10 s to the store's ledger, on a
/// blocking thread, until the daemon stops (which saves it one last time itself).
async fn save_reputation_periodically(transfers: Transfers, tasks: Tasks) -> anyhow::Result<()> {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    every.tick().await;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = tasks.stopping() => return Ok(()),
        }
        transfers.save_reputation().await;
    }
}

/// Completes on Ctrl-C, or SIGTERM on Unix (what systemd and `kill` send); on Windows on
/// Ctrl-C, Ctrl-Break, or the console closing or the system shutting down.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
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
    #[cfg(windows)]
    {
        use tokio::signal::windows;
        let (Ok(mut brk), Ok(mut close), Ok(mut shutdown)) = (
            windows::ctrl_break(),
            windows::ctrl_close(),
            windows::ctrl_shutdown(),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = brk.recv() => {}
            _ = close.recv() => {}
            _ = shutdown.recv() => {}
        }
    }
}
