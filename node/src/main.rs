//! `p2pd`: the daemon and its command-line client.
//!
//! # Layout
//! - `daemon.rs`: `p2pd daemon`, wiring the parts together.
//! - `network/`: the task that owns the libp2p swarm, and its handle.
//! - `transfer/`: downloads (`fetch.rs`) and uploads (`serve.rs`).
//! - `api/`: the facade of daemon operations, its serde types, its HTTP server, the
//!   OpenAPI document, and web login (`auth.rs`).
//! - `web/`: the web UI's static files, embedded in the binary.
//! - `client.rs` and `commands.rs`: the CLI, a thin client of the API.
//! - `identity.rs`, `paths.rs`: the node key and the data directory.
//!
//! Errors end as one line on stderr, `error: …`, and an exit code: 2 for bad usage or
//! input ([`UsageError`]), 1 for everything else that failed.

mod api;
mod client;
mod commands;
mod daemon;
mod identity;
mod network;
mod paths;
mod transfer;
mod web;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// An error caused by the user's input: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// p2pd: share files by content ID over a peer-to-peer network.
#[derive(Debug, Parser)]
#[command(name = "p2pd", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory (default: the platform's data directory for p2pd).
    #[arg(long, global = true, env = "P2PD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
// Parsed once per process: the size of the daemon's options does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the node.
    Daemon(daemon::DaemonArgs),
    /// Share a file: import it, announce it, print its CID.
    Add {
        /// The file.
        path: PathBuf,
        /// Track the file where it is instead of copying it into the store.
        #[arg(long)]
        no_copy: bool,
        /// The name to list it under.
        #[arg(long)]
        name: Option<String>,
    },
    /// Download a file by CID.
    Fetch {
        /// The file's CID.
        cid: String,
        /// Where to write it (default: the provider's name for it, in the current directory).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Give up after this many seconds without progress.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
    },
    /// List the files this node shares and downloads.
    Ls,
    /// Node id, addresses, NAT status, DHT mode, downloads.
    Status,
    /// Peer id and full listen addresses (what others bootstrap from).
    Id,
    /// Connected peers.
    Peers,
    /// This node's scores for the peers it has dealt with.
    Reputation,
    /// Stop announcing a file (it stays in the store).
    Unpublish {
        /// The file's CID.
        cid: String,
    },
    /// Stop sharing a file and delete the store's copy.
    Rm {
        /// The file's CID.
        cid: String,
    },
    /// Set the web UI password (read from the terminal, or the first line of stdin).
    Passwd,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are not errors; clap exits 2 for bad usage.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Disk work runs on blocking threads; a few suffice, and each extra thread can keep a
    // malloc arena of chunk buffers: memory that would grow with the transfer.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message.push_str(": ");
                    message.push_str(&cause);
                }
            }
            eprintln!("error: {message}");
            let usage = e.chain().any(|c| c.downcast_ref::<UsageError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
