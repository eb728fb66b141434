//! The command line: clap's definition of every `p2pd` command and its options, and the
//! error that marks a failure as the user's (exit code 2).

use std::path::PathBuf;

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
///
/// Parse it with [`crate::config::parse`], which adds each setting's environment
/// variable and the configuration file.
#[derive(Debug, Parser)]
#[command(name = "p2pd", version, about, propagate_version = true)]
pub struct Cli {
    /// Data directory (default: the platform's data directory for p2pd).
    #[arg(long, global = true, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: config.toml in the platform's configuration
    /// directory for p2pd, if it is there).
    #[arg(long, global = true, value_name = "FILE", env = crate::config::CONFIG_ENV,
          value_hint = clap::ValueHint::FilePath)]
    pub config: Option<PathBuf>,
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
    Daemon(crate::options::DaemonArgs),
    /// Share a file or a directory (as one folder): import it, announce it, print its CID.
    Add {
        /// The file or directory.
        path: PathBuf,
        /// Track the file where it is instead of copying it into the store.
        #[arg(long)]
        no_copy: bool,
        /// The name to list it under.
        #[arg(long)]
        name: Option<String>,
        /// Keep it out of this node's catalog: fetchable by CID only, never found by search.
        #[arg(long)]
        unlisted: bool,
        /// In a directory, follow symbolic links (to files and directories) instead of
        /// skipping them with a warning.
        #[arg(long)]
        follow_symlinks: bool,
    },
    /// Download a file or a folder by CID, or by a ticket from `p2pd share`.
    Fetch {
        /// The file's or folder's CID, or a ticket (`p2pd1…`).
        cid: String,
        /// Where to write it (default: the provider's name for it, in the current
        /// directory). A folder is written to this new directory; fetching a folder again
        /// into the directory of its unfinished fetch resumes it.
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Give up after this many seconds without progress.
        #[arg(long, value_name = "SECS", default_value_t = 60)]
        timeout: u64,
        /// Let the daemon download it into the store and return at once (it goes on
        /// across daemon restarts; see `p2pd downloads`).
        #[arg(long, conflicts_with = "output")]
        detach: bool,
    },
    /// List the files this node shares and downloads.
    Ls,
    /// Node id, addresses, NAT status, DHT mode, downloads.
    Status,
    /// Peer id and full listen addresses (what others bootstrap from).
    Id,
    /// Connected peers.
    Peers,
    /// This node's scores for the peers it has dealt with; with `--mine`, how the
    /// connected peers see this node.
    Reputation {
        /// Ask the connected peers how they see this node.
        #[arg(long)]
        mine: bool,
    },
    /// Stop announcing a file, or a folder and its files (they stay in the store).
    Unpublish {
        /// The file's or folder's CID.
        cid: String,
    },
    /// Stop sharing a file and delete the store's copy; for a folder, also its files
    /// that belong to no other share.
    Rm {
        /// The file's or folder's CID.
        cid: String,
    },
    /// Set the web UI password (read from the terminal, or the first line of stdin).
    Passwd,
    /// Re-hash the store: report bad or missing chunks and changed `--no-copy` files
    /// (exit 1 if any).
    Verify {
        /// Drop what is bad, so that fetching the file again gets it back.
        #[arg(long)]
        repair: bool,
    },
    /// Find files on the network by the words of their names (all must match).
    Search {
        /// The words (3 letters or digits or more; letter case does not matter).
        #[arg(required = true, value_name = "WORDS")]
        words: Vec<String>,
        /// Stop after this many seconds (results so far are kept).
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
    },
    /// List a peer's shared files.
    Browse {
        /// A peer id, or an address such as /ip4/192.0.2.7/tcp/5891/p2p/12D3Koo…
        peer: String,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
    },
    /// List a file or folder in this node's catalog (found by search, shown to peers
    /// that browse).
    List {
        /// The file's or folder's CID.
        cid: String,
    },
    /// Take a file or folder out of this node's catalog (fetchable by CID only).
    Unlist {
        /// The file's or folder's CID.
        cid: String,
    },
    /// This node's catalog: files listed, keywords announced, whether peers may browse it.
    Catalog {
        /// Allow (on) or refuse (off) browsing of the whole catalog; search works either way.
        #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
        browse: Option<String>,
    },
    #[command(flatten)]
    Ops(OpsCommand),
    #[command(flatten)]
    Downloads(crate::commands::downloads::DownloadCommand),
    #[command(flatten)]
    Share(crate::commands::share::ShareCommand),
    #[command(flatten)]
    Network(crate::commands::doctor::NetworkCommand),
}

/// Commands for the operator: bandwidth, configuration, shell completions, manual
/// (`ops.rs`).
#[derive(Debug, Subcommand)]
// Parsed once per process, like `Command`.
#[allow(clippy::large_enum_variant)]
pub enum OpsCommand {
    /// Bandwidth: bytes sent and received in all, rates now and over the last minutes.
    Stats,
    /// The configuration `p2pd daemon` runs with.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script (e.g. `p2pd completions bash > /etc/bash_completion.d/p2pd`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; `p2pd man | man -l -`), or write one page per
    /// command into a directory.
    Man {
        /// Write p2pd.1 and p2pd-<command>.1 pages here instead.
        #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
        out_dir: Option<PathBuf>,
    },
}

/// `p2pd config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration `p2pd daemon` with these options would run with, and
    /// where each value comes from: flag, environment, file:line, or default.
    Show(crate::options::DaemonArgs),
}
