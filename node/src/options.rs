//! The options of `p2pd daemon`, one field each. This struct is the one place an option
//! is declared: each field is a flag (`--upload-slots`), and `config/` derives from it a
//! key of the configuration file (`upload-slots`) and an environment variable
//! (`P2PD_UPLOAD_SLOTS`). A value is checked by the field's value parser, whichever of
//! the three it came from, so that a bad one is refused naming where it was written.
//!
//! To add an option: add a field with its doc comment (the `--help` text), its default
//! and, if its type needs one, a value parser; read it in `daemon.rs`. Nothing else:
//! the file key, the environment variable, `p2pd config show`, the completions and the
//! man page follow.

use std::net::SocketAddr;

use libp2p::Multiaddr;

use crate::config::Effective;
use crate::network::DhtMode;
use crate::transfer::rate::parse_rate;

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
    /// Also serve Prometheus metrics at http://ADDR/metrics, without the API token (they
    /// are always at /metrics on the API, behind it).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
    /// DHT participation: auto (server once reachable), server, or client.
    #[arg(long, value_enum, default_value_t = DhtModeArg::Auto)]
    pub dht_mode: DhtModeArg,
    /// Do not look for peers on the LAN with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Most provider keys kept in the DHT store (ours and other peers').
    #[arg(long, value_name = "N", default_value_t = 65_536, value_parser = at_least_one::<usize>)]
    pub max_provider_keys: usize,
    /// Most established peer connections. A DHT server is contacted by every node whose
    /// lookups pass near it: in a simulated network of 1,000 nodes, a limit of 512
    /// failed a third of the lookups.
    #[arg(long, value_name = "N", default_value_t = 2048, value_parser = at_least_one::<u32>)]
    pub max_connections: u32,
    /// Most inbound connections from one IP address. Raise it to run many daemons on
    /// one host, or for a bootstrap node that many peers reach through one NAT address.
    #[arg(long, value_name = "N", default_value_t = crate::network::DEFAULT_MAX_INBOUND_PER_IP, value_parser = at_least_one::<u32>)]
    pub max_inbound_per_ip: u32,
    /// Peers we upload to at once; peers that upload to us get them first.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = at_least_one::<usize>)]
    pub upload_slots: usize,
    /// Upload cap for the whole node, e.g. `10MiB` (bytes per second).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_upload_rate: Option<u64>,
    /// Download cap for the whole node, e.g. `10MiB` (bytes per second).
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub max_download_rate: Option<u64>,
    /// A name for this node, shown in the web UI and `p2pd status` (kept in the data
    /// directory; the web UI can change it).
    #[arg(long, value_name = "NAME", value_parser = display_name)]
    pub display_name: Option<String>,
    /// Largest file the web UI may upload, e.g. `4GiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_rate, default_value = "4GiB")]
    pub max_upload: u64,
    /// Seconds a chunk request may take before it is retried elsewhere.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = at_least_one::<u64>)]
    pub request_timeout: u64,
    /// Act as a relay for peers behind NAT (on by default with --dht-mode server).
    #[arg(long)]
    pub relay_server: bool,
    /// Relay reservations held at once (relay server).
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub relay_max_reservations: usize,
    /// Relayed circuits open at once (relay server).
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub relay_max_circuits: usize,
    /// Longest life of one relayed circuit in seconds (relay server).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub relay_max_circuit_secs: u64,
    /// Most bytes through one relayed circuit, 0 for no limit (relay server).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
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
    /// Test only: serve this fraction (0 to 1) of chunks corrupt.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "P", value_parser = fraction)]
    pub test_corrupt_rate: Option<f64>,
    /// Test only: download, but refuse every chunk request (a freeloader).
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub test_freeload: bool,
    /// Test only: serve at most RATE bytes per second (a slow peer).
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "RATE")]
    pub test_slow: Option<u64>,
    /// Test only: advertise every chunk of every file held, even partly.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true)]
    pub test_lie_have: bool,
    /// Test only: the network task panics this many seconds after start.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "SECS")]
    pub test_panic_network_after: Option<u64>,
    /// Test only: grants to password shares last this many seconds (not an hour).
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "SECS")]
    pub test_grant_secs: Option<u64>,
    /// Test only: the catalog server sends forged entries.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_enum)]
    pub test_forge_catalog: Option<crate::catalog::forge::Forgery>,
    /// Test only: the catalog server answers this many seconds late.
    #[cfg(feature = "test-faults")]
    #[arg(long, hide = true, value_name = "SECS")]
    pub test_catalog_delay: Option<u64>,
    /// Where each value came from (filled in by `config::parse`; not an option).
    #[arg(skip)]
    pub config: Effective,
}

impl DaemonArgs {
    /// The upload side's misbehaviour asked for by the `--test-*` flags (see
    /// `transfer::serve::faults`); none in builds without the `test-faults` feature.
    pub fn test_faults(&self) -> crate::transfer::serve::faults::Faults {
        #[cfg(feature = "test-faults")]
        return crate::transfer::serve::faults::Faults {
            corrupt_rate: if self.test_corrupt_chunks {
                1.0
            } else {
                self.test_corrupt_rate.unwrap_or(0.0)
            },
            freeload: self.test_freeload,
            lie_have: self.test_lie_have,
        };
        #[cfg(not(feature = "test-faults"))]
        crate::transfer::serve::faults::Faults::default()
    }

    /// How long a grant to a share lasts (`--test-grant-secs` shortens it).
    pub fn share_grant_duration(&self) -> std::time::Duration {
        #[cfg(feature = "test-faults")]
        if let Some(secs) = self.test_grant_secs {
            return std::time::Duration::from_secs(secs.max(1));
        }
        crate::share::serve::GRANT_DURATION
    }

    /// The upload cap: `--max-upload-rate`, lowered by `--test-slow` (a slow peer).
    pub fn upload_cap(&self) -> Option<u64> {
        #[cfg(feature = "test-faults")]
        if let Some(slow) = self.test_slow {
            return Some(self.max_upload_rate.map_or(slow, |cap| cap.min(slow)));
        }
        self.max_upload_rate
    }
}

/// A fraction from 0 to 1 (`--test-corrupt-rate`).
#[cfg(feature = "test-faults")]
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a fraction from 0 to 1")),
    }
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

/// A count or a duration that makes no sense as 0.
fn at_least_one<T>(text: &str) -> Result<T, String>
where
    T: std::str::FromStr + Default + PartialEq,
    T::Err: std::fmt::Display,
{
    let value: T = text.trim().parse().map_err(|e| format!("{e}"))?;
    if value == T::default() {
        return Err("must be at least 1".to_string());
    }
    Ok(value)
}

/// A display name as the web UI would accept it (an empty one clears the saved name).
fn display_name(text: &str) -> Result<String, String> {
    crate::api::check_display_name(Some(text.to_string()))
        .map(Option::unwrap_or_default)
        .map_err(|e| e.message)
}
