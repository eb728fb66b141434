//! The bare transport on each profile's path: `wan-push` (a program beside the bench)
//! moves the fetch's bytes from the seeder's namespace to the fetcher's over the
//! daemon's TCP stack (TLS or noise, yamux; `bare_stack.rs`), without p2pd's DHT, requests, store or hashing.
//! Three shapes: one long stream; 16 long streams on one connection (p2pd keeps many
//! chunk requests, each a stream, in flight on one connection; `wan-push` opens them one
//! after the other, and that time counts); one long stream on each of two connections.
//! Skipped, and said so, when `wan-push` was not built.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context as _};

use super::{FETCHER, SEEDER};
use crate::harness::Helper;
use crate::lab::WanLab;
use crate::LONG_TIMEOUT;

/// Where the server listens in the seeder's namespace.
const PUSH_PORT: u16 = 4100;

/// The shapes measured: (streams, connections).
pub(super) const SHAPES: [(usize, usize); 3] = [(1, 1), (16, 1), (1, 2)];

/// Describes a shape for the report.
pub(super) fn shape_label((streams, connections): (usize, usize)) -> String {
    let streams = match streams {
        1 => "one long stream".to_string(),
        n => format!("{n} long streams"),
    };
    match connections {
        1 => format!("{streams} on one connection"),
        n => format!("{streams} on each of {n} connections"),
    }
}

/// `wan-push` beside this program, if it was built.
pub(super) fn find() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join("wan-push");
    path.is_file().then_some(path)
}

/// Moves `size` bytes in each of [`SHAPES`]; returns bits per second per shape, or the
/// error of the shapes that failed.
pub(super) fn measure(
    lab: &WanLab,
    bin: &Path,
    size: u64,
) -> anyhow::Result<Vec<anyhow::Result<f64>>> {
    let bin = bin.to_str().context("non-UTF-8 path")?;
    // Killed when dropped, at the end or on an error.
    let mut server = Helper::spawn(
        lab.command(SEEDER, bin)
            .args([
                "serve",
                "--listen",
                &format!("/ip4/0.0.0.0/tcp/{PUSH_PORT}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )?;
    let stdout = server.child().stdout.take().context("no stdout")?;
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first)?;
    let Some(peer) = first.trim().strip_prefix("peer ") else {
        bail!("wan-push serve printed {first:?} instead of its peer id");
    };
    let addr = format!("/ip4/{}/tcp/{PUSH_PORT}/p2p/{peer}", lab.addr(SEEDER));
    let mib = (size >> 20).max(1).to_string();
    let mut rates = Vec::new();
    for (streams, connections) in SHAPES {
        let fetch = Helper::spawn(
            lab.command(FETCHER, bin)
                .args(["fetch", "--peer", &addr, "--mib", &mib])
                .args(["--streams", &streams.to_string()])
                .args(["--connections", &connections.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )?;
        rates.push(wait_rate(fetch));
    }
    Ok(rates)
}

/// Waits for a `wan-push fetch` (bounded) and reads the rate it printed.
fn wait_rate(mut fetch: Helper) -> anyhow::Result<f64> {
    let status = fetch.wait(LONG_TIMEOUT)?;
    let mut out = String::new();
    if let Some(mut stdout) = fetch.child().stdout.take() {
        stdout.read_to_string(&mut out)?;
    }
    if !status.success() {
        let mut err = String::new();
        if let Some(mut stderr) = fetch.child().stderr.take() {
            stderr.read_to_string(&mut err)?;
        }
        bail!(
            "wan-push fetch failed ({status}): {}",
            err.lines().next().unwrap_or("")
        );
    }
    let mbit = out
        .rsplit("= ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .with_context(|| format!("no rate in {out:?}"))?;
    Ok(mbit * 1e6)
}
