//! `p2pd`: the daemon and its command-line client, as a library; `main.rs` is a thin
//! binary over [`cli::Cli`] and [`commands::run`].
//!
//! # Layout
//! - `cli.rs`: the command line (clap) and [`cli::UsageError`], the error of bad input.
//! - `options.rs`: the daemon's options, one field each; `config/`: each option as a
//!   flag, an environment variable and a key of the configuration file, their
//!   precedence, and `p2pd config show`.
//! - `daemon.rs`: `p2pd daemon`, wiring the parts together; `startup.rs`: what it
//!   checks and prepares first (options, a private data directory, the log, free ports).
//! - `ops.rs`: `p2pd stats`, `config show`, `completions` and `man`.
//! - `metrics.rs`: the Prometheus registry (libp2p's families and the daemon's).
//! - `network/`: the task that owns the libp2p swarm, and its handle.
//! - `catalog/`: this node's signed catalog (what it lists, answered to peers) and
//!   keyword search and browsing of other nodes' catalogs.
//! - `transfer/`: the transfer engine: its operations on files, downloads and peers
//!   (`Transfers`), one task per download (`fetch/`), and uploads (`serve.rs`).
//! - `api/`: the facade of daemon operations, its serde types, its HTTP server, the
//!   OpenAPI document, and web login (`auth.rs`).
//! - `share/`: shares and their tickets, the access protocol that enforces expiry and
//!   passwords, and the gate that keeps a password share's file private.
//! - `web/`: the web UI's static files, embedded in the binary.
//! - `client.rs` and `commands.rs`: the CLI, a thin client of the API; `find.rs`: its
//!   search, browse and listing commands; `commands/share.rs`: share, shares,
//!   unshare, publish and opening a ticket.
//! - `control.rs` (`api.json`: where the API listens, its token) and `password.rs` (the
//!   web password file): the files the daemon and the CLI both read or write.
//! - `tasks.rs`: the daemon's task tree (essential tasks, downloads and streams).
//! - `identity.rs`, `paths.rs`: the node key and the data directory.
//!
//! Errors end as one line on stderr, `error: …`, and an exit code: 2 for bad usage or
//! input ([`cli::UsageError`]), 1 for everything else that failed.

pub mod api;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod control;
pub mod daemon;
pub mod find;
pub mod identity;
pub mod metrics;
pub mod network;
pub mod ops;
pub mod options;
pub mod password;
pub mod paths;
pub mod share;
pub mod startup;
pub mod tasks;
pub mod transfer;
pub mod web;

pub use cli::{Cli, Command, UsageError};
