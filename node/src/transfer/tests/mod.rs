//! In-process tests of the transfer engine: whole nodes (a store in a temporary
//! directory, the daemon's network over libp2p's in-memory transport, the engine and
//! its upload server) in one process, driven through the engine's operations.

mod downloads;
mod uploads;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chunk_store::{ImportMode, Store};
use dht_proto::{Cid, Request, Response};
use libp2p::{identity, Multiaddr};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::serve::{self, ServeConfig};
use super::{DownloadStatus, RateLimits, Transfers};
use crate::network::tests::Poke;
use crate::network::{
    self, BehaviourConfig, DhtMode, InboundRequest, Network, NetworkConfig, Reply, Timers,
};

pub(super) use crate::network::tests::eventually;

/// Longest any test waits for a download to end.
pub(super) const DEADLINE: Duration = Duration::from_secs(30);

/// A running node: store, network, engine and upload server.
pub(super) struct Node {
    pub transfers: Transfers,
    pub net: Network,
    /// Its listen address, ending in `/p2p/<id>`.
    pub addr: Multiaddr,
    pub dir: tempfile::TempDir,
    /// Requests peers sent it, by kind (`Request`'s CBOR name: "chunk", "chunks", …),
    /// counted if [`Setup::count_requests`].
    pub asked: Asked,
    tasks: Vec<JoinHandle<()>>,
    /// Set to release the held `Have` requests (see [`Setup::hold_haves`]).
    release: watch::Sender<bool>,
    /// Pokes into its network task.
    pokes: mpsc::Sender<Poke>,
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// How a test node is set up.
#[derive(Default)]
pub(super) struct Setup {
    /// A node to bootstrap from.
    pub boot: Option<Multiaddr>,
    /// Upload cap in bytes per second.
    pub upload_rate: Option<u64>,
    /// Download cap in bytes per second.
    pub download_rate: Option<u64>,
    /// Upload slots (default 8).
    pub upload_slots: Option<usize>,
    /// Hold the `Have` requests peers send, unanswered, until [`Node::release_haves`].
    pub hold_haves: bool,
    /// Hold the `Chunk` requests peers send, never answered.
    pub hold_chunks: bool,
    /// Hold the `Bitfield` requests peers send, never answered.
    pub hold_bitfields: bool,
    /// Hold the `Manifest` requests peers send, never answered.
    pub hold_manifests: bool,
    /// How its upload side misbehaves.
    pub faults: serve::faults::Faults,
    /// Count the requests peers send it ([`Node::asked`]).
    pub count_requests: bool,
}

/// Requests a node was sent, by kind.
pub(super) type Asked = Arc<std::sync::Mutex<std::collections::HashMap<&'static str, usize>>>;

impl Node {
    pub(super) async fn start(setup: Setup) -> Node {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(Store::open(dir.path().join("store")).expect("a store"));
        let config = network_config(setup.boot.into_iter().collect(), store.buffers().clone());
        let (inbound_tx, mut inbound_rx) = mpsc::channel(1024);
        let (actor, net) =
            network::build_in_memory(identity::Keypair::generate_ed25519(), config, inbound_tx)
                .expect("an in-memory node builds");
        let (pokes, poke_rx) = mpsc::channel(8);
        let mut tasks = vec![tokio::spawn(network::tests::drive(actor, poke_rx))];
        let (release, released) = watch::channel(!setup.hold_haves);
        let asked = Asked::default();
        if setup.hold_haves
            || setup.hold_chunks
            || setup.hold_bitfields
            || setup.hold_manifests
            || setup.count_requests
        {
            let (to_serve, from_net) = mpsc::channel(1024);
            tasks.push(tokio::spawn(relay(
                inbound_rx,
                to_serve,
                released,
                Holds {
                    chunks: setup.hold_chunks,
                    bitfields: setup.hold_bitfields,
                    manifests: setup.hold_manifests,
                },
                asked.clone(),
            )));
            inbound_rx = from_net;
        }
        let transfers = Transfers::new(
            store,
            net.clone(),
            RateLimits {
                upload: setup.upload_rate,
                download: setup.download_rate,
            },
            true,
            crate::tasks::Tasks::new(),
        );
        tasks.push(tokio::spawn(serve::run(
            transfers.clone(),
            ServeConfig {
                upload_slots: setup.upload_slots.unwrap_or(8),
                faults: setup.faults,
            },
            inbound_rx,
        )));
        let addr = eventually("a listen address", || async {
            net.info().await.ok()?.listen_addrs.into_iter().next()
        })
        .await;
        Node {
            transfers,
            net,
            addr,
            dir,
            asked,
            tasks,
            release,
            pokes,
        }
    }

    /// Makes the network report `peer` `rtt` away, as its pings would.
    pub(super) async fn set_round_trip(&self, peer: libp2p::PeerId, rtt: Duration) {
        let poke: Poke = Box::new(move |actor| network::tests::set_round_trip(actor, peer, rtt));
        self.pokes.send(poke).await.expect("the node runs");
    }

    /// How many requests of `kind` (`request_kind`) it was sent so far, if
    /// [`Setup::count_requests`].
    pub(super) fn asked_count(&self, kind: &str) -> usize {
        *self
            .asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(kind)
            .unwrap_or(&0)
    }

    /// Answers the `Have` requests held so far, and those to come.
    pub(super) fn release_haves(&self) {
        self.release.send_replace(true);
    }

    /// Writes `len` bytes (a pattern set by `seed`) to a file and adds it (copied).
    pub(super) async fn add_file(&self, name: &str, len: usize, seed: u8) -> Cid {
        self.add_file_as(name, len, seed, ImportMode::Copy).await
    }

    /// Writes `len` bytes (a pattern set by `seed`) to a file and adds it.
    pub(super) async fn add_file_as(
        &self,
        name: &str,
        len: usize,
        seed: u8,
        mode: ImportMode,
    ) -> Cid {
        let path = self.dir.path().join(name);
        write_pattern(&path, len, seed);
        self.transfers
            .add(path, mode, None, true, |_| {})
            .await
            .expect("the file is added")
            .cid
    }

    /// Whether the node announces `cid` in the DHT now.
    pub(super) async fn provided_files(&self) -> usize {
        self.net
            .info()
            .await
            .expect("the network runs")
            .provided_files
    }
}

/// A bare network node that asks a node questions by hand and records what it is
/// told: a peer that is not p2pd's engine (a test client).
pub(super) struct Probe {
    pub net: Network,
    /// Requests other nodes sent it, unanswered.
    pub inbound: mpsc::Receiver<InboundRequest>,
    task: JoinHandle<()>,
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Its swarm goes with its task: every connection closes.
        self.task.abort();
    }
}

impl Probe {
    /// A probe connected to `node`.
    pub(super) async fn start(node: &Node) -> Probe {
        let (inbound_tx, inbound) = mpsc::channel(1024);
        let config = network_config(
            vec![node.addr.clone()],
            chunk_store::BufferPool::new(8 << 20),
        );
        let (actor, net) =
            network::build_in_memory(identity::Keypair::generate_ed25519(), config, inbound_tx)
                .expect("an in-memory node builds");
        let task = tokio::spawn(actor.run());
        let peer = node.net.local_peer_id();
        eventually("the probe connects", || async {
            net.connected_peers().await.contains(&peer).then_some(())
        })
        .await;
        Probe { net, inbound, task }
    }

    /// Sends `request` to `node` and returns its answer.
    pub(super) async fn ask(&self, node: &Node, request: Request) -> Response {
        let answer = self
            .net
            .request(node.net.local_peer_id(), request)
            .await
            .expect("the node answers");
        match answer {
            Reply::Message(response) => response,
            Reply::Chunk(data) => Response::Chunk {
                data: serde_bytes::ByteBuf::from(data.as_slice().to_vec()),
            },
        }
    }
}

/// The in-memory network of a test node.
fn network_config(
    bootstrap: Vec<Multiaddr>,
    chunk_buffers: chunk_store::BufferPool,
) -> NetworkConfig {
    NetworkConfig {
        listen: vec!["/memory/0".parse().expect("valid address")],
        bootstrap,
        external: vec![],
        relays: vec![],
        dht_mode: DhtMode::Server,
        behaviour: BehaviourConfig {
            display_name: None,
            mdns: false,
            max_provider_keys: 1024,
            max_connections: 64,
            max_inbound_per_ip: crate::network::DEFAULT_MAX_INBOUND_PER_IP,
            request_timeout: Duration::from_secs(10),
            relay_server: None,
            upnp: false,
            chunk_buffers,
            timers: Timers::default(),
        },
        idle_timeout: Duration::from_secs(60),
        test_panic_after: None,
    }
}

/// Requests [`relay`] holds for good.
struct Holds {
    /// Every `Chunk` request.
    chunks: bool,
    /// Every `Bitfield` request.
    bitfields: bool,
    /// Every `Manifest` request.
    manifests: bool,
}

/// Passes inbound requests to the upload server, counting them by kind, but holds
/// `Have`s until released, and what `holds` says for good.
async fn relay(
    mut inbound: mpsc::Receiver<InboundRequest>,
    to_serve: mpsc::Sender<InboundRequest>,
    mut released: watch::Receiver<bool>,
    holds: Holds,
    asked: Asked,
) {
    let mut held = Vec::new();
    let mut unanswered = Vec::new();
    loop {
        tokio::select! {
            next = inbound.recv() => {
                let Some(request) = next else { return };
                *asked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(request_kind(&request.request))
                    .or_default() += 1;
                let is_chunk = matches!(request.request, dht_proto::Request::Chunk { .. });
                let is_bitfield = matches!(request.request, dht_proto::Request::Bitfield { .. });
                let is_manifest = matches!(request.request, dht_proto::Request::Manifest { .. });
                if (is_chunk && holds.chunks)
                    || (is_bitfield && holds.bitfields)
                    || (is_manifest && holds.manifests)
                {
                    unanswered.push(request);
                } else if matches!(request.request, dht_proto::Request::Have { .. }) && !*released.borrow() {
                    held.push(request);
                } else if to_serve.send(request).await.is_err() {
                    return;
                }
            }
            Ok(()) = released.changed() => {
                for request in held.drain(..) {
                    if to_serve.send(request).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// A request's kind, as its CBOR name.
pub(super) fn request_kind(request: &Request) -> &'static str {
    match request {
        Request::Manifest { .. } => "manifest",
        Request::Chunk { .. } => "chunk",
        Request::Bitfield { .. } => "bitfield",
        Request::Have { .. } => "have",
        Request::Cancel { .. } => "cancel",
        Request::Chunks { .. } => "chunks",
    }
}

/// Bytes that differ from file to file and from chunk to chunk.
pub(super) fn write_pattern(path: &Path, len: usize, seed: u8) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i as u64).wrapping_mul(2654435761).to_le_bytes()[(i % 4) + 1] ^ seed)
        .collect();
    std::fs::write(path, bytes).expect("the file is written");
}

/// Waits until the download's status satisfies `ok`.
pub(super) async fn until(
    what: &str,
    status: &mut watch::Receiver<DownloadStatus>,
    ok: impl FnMut(&DownloadStatus) -> bool,
) -> DownloadStatus {
    let reached = match tokio::time::timeout(DEADLINE, status.wait_for(ok)).await {
        Ok(Ok(reached)) => Some(reached.clone()),
        Ok(Err(_)) => panic!("the engine forgot the download while waiting for {what}"),
        Err(_) => None,
    };
    reached.unwrap_or_else(|| panic!("timed out waiting for {what}: {:?}", *status.borrow()))
}

/// A seeder holding a file of `len` bytes, and a fetcher that bootstraps from it and
/// starts downloading it into its store.
pub(super) async fn seeder_and_fetcher(
    seeder: Setup,
    fetcher: Setup,
    len: usize,
    seed: u8,
) -> (Node, Node, Cid, watch::Receiver<DownloadStatus>) {
    let seeder = Node::start(seeder).await;
    let cid = seeder.add_file("file.bin", len, seed).await;
    let fetcher = Node::start(Setup {
        boot: Some(seeder.addr.clone()),
        ..fetcher
    })
    .await;
    let status = fetcher
        .transfers
        .start(cid, Duration::from_secs(60))
        .expect("the download starts");
    (seeder, fetcher, cid, status)
}
