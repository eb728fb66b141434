//! Bare-transport transfers between two processes, for the WAN lab (issue 17): what the
//! daemon's TCP stack (TCP, TLS, yamux) moves over an emulated path without p2pd's store,
//! request codec, hashing or DHT. One process serves, the other fetches, each in its own
//! lab namespace (`bench --wan` runs both when this program sits beside it):
//!
//! ```sh
//! ip netns exec p2w1-h3 wan-push serve --listen /ip4/0.0.0.0/tcp/4100
//! ip netns exec p2w1-h2 wan-push fetch --peer /ip4/198.18.3.2/tcp/4100/p2p/<id> \
//!     --mib 256 --streams 16 --connections 1
//! ```
//!
//! The fetcher splits `--mib` evenly over `--streams` long streams, asked for at once and
//! spread over `--connections` connections (one swarm each), and prints the rate from
//! the first stream asked for to the last byte read. libp2p-stream opens a connection's
//! outbound streams one after the other, about a round trip each on the WAN lab's far
//! paths, and that time counts: 64 streams on one 80 ms connection took about 5 s
//! longer than one (docs/benchmarks.md). The server answers each stream's
//! request (a byte count) with that many bytes.

use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol};
use p2pd_examples::bare_stack::{daemon_tcp_swarm, drain};

const PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pd-bench/wan-push/1.0.0");
const BUF: usize = 1 << 20;
/// Times a stream dropped unanswered by the server is asked for again, after
/// [`ASK_AGAIN_AFTER`] times the attempt (the server's accept loop takes the stream
/// waiting in its channel meanwhile).
const ASK_AGAIN: usize = 8;
const ASK_AGAIN_AFTER: Duration = Duration::from_millis(20);
/// Longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Parser)]
#[command(name = "wan-push")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve pushes until killed; prints `peer <id>` first, then `listening <addr>` for
    /// each listen address.
    Serve {
        #[arg(long)]
        listen: Multiaddr,
    },
    /// Fetch `--mib` MiB from a server and print the rate.
    Fetch {
        /// The server's address, ending in /p2p/<peer id>.
        #[arg(long)]
        peer: Multiaddr,
        #[arg(long, default_value_t = 256)]
        mib: u64,
        /// Long streams at once.
        #[arg(long, default_value_t = 1)]
        streams: usize,
        /// Connections to the server; stream i goes over connection i mod this.
        #[arg(long, default_value_t = 1)]
        connections: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Quiet unless RUST_LOG asks, on stderr (stdout carries the results).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Command::Serve { listen } => serve(listen).await,
        Command::Fetch {
            peer,
            mib,
            streams,
            connections,
        } => fetch(peer, mib << 20, streams.max(1), connections.max(1)).await,
    }
}

async fn serve(listen: Multiaddr) -> anyhow::Result<()> {
    let mut swarm = daemon_tcp_swarm()?;
    let mut incoming = swarm
        .behaviour()
        .new_control()
        .accept(PROTOCOL)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    swarm.listen_on(listen)?;
    println!("peer {}", swarm.local_peer_id());
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            tokio::spawn(async move {
                let mut len = [0u8; 8];
                stream.read_exact(&mut len).await?;
                let mut left = u64::from_le_bytes(len);
                let buf = vec![7u8; BUF];
                while left > 0 {
                    let n = left.min(BUF as u64) as usize;
                    stream.write_all(&buf[..n]).await?;
                    left -= n as u64;
                }
                stream.close().await?;
                anyhow::Ok(())
            });
        }
    });
    loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            // A caller that read only the peer id may have closed our stdout: not an
            // error of the server's.
            let _ = writeln!(std::io::stdout(), "listening {address}");
        }
    }
}

/// Dials `peer` from a swarm of its own; returns its stream control and the task that
/// drives it.
async fn connect(
    peer: &Multiaddr,
) -> anyhow::Result<(libp2p_stream::Control, tokio::task::JoinHandle<()>)> {
    let mut swarm = daemon_tcp_swarm()?;
    swarm.dial(peer.clone())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            e = swarm.select_next_some() => match e {
                SwarmEvent::ConnectionEstablished { .. } => break,
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial failed: {error}"),
                _ => {}
            },
            _ = tokio::time::sleep_until(deadline) => bail!("no connection within 10 s"),
        }
    }
    let control = swarm.behaviour().new_control();
    let driver = tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    Ok((control, driver))
}

/// Reads stream `i`'s `want` bytes; returns them and how many times the stream was
/// asked for again. libp2p-stream hands inbound streams to the server through a channel
/// of one place and drops a stream that arrives while it is taken (several connections
/// open streams at the same moment; the stream then ends with nothing, or is reset), so
/// such a stream is asked for again, up to [`ASK_AGAIN`] times.
async fn read_stream(
    mut control: libp2p_stream::Control,
    server: libp2p::PeerId,
    i: usize,
    want: u64,
) -> anyhow::Result<(u64, usize)> {
    let mut last = None;
    for again in 0..=ASK_AGAIN {
        if again > 0 {
            tokio::time::sleep(ASK_AGAIN_AFTER * again as u32).await;
        }
        let got = async {
            let mut stream = control
                .open_stream(server, PROTOCOL)
                .await
                .map_err(std::io::Error::other)?;
            stream.write_all(&want.to_le_bytes()).await?;
            drain(&mut stream).await
        }
        .await;
        match got {
            Ok(got) if got == want => return Ok((got, again)),
            Ok(0) => last = Some(format!("0 of {want} bytes")),
            Err(e) => last = Some(e.to_string()),
            Ok(got) => bail!("stream {i}: {got} of {want} bytes"),
        }
    }
    bail!(
        "stream {i}: unanswered after {} asks: {}",
        ASK_AGAIN + 1,
        last.unwrap_or_default()
    )
}

async fn fetch(
    peer: Multiaddr,
    size: u64,
    streams: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let Some(Protocol::P2p(server)) = peer.iter().last() else {
        bail!("--peer must end in /p2p/<peer id>");
    };
    let mut controls = Vec::new();
    let mut drivers = Vec::new();
    for _ in 0..connections {
        let (control, driver) = connect(&peer).await?;
        controls.push(control);
        drivers.push(driver);
    }
    let share = size.div_ceil(streams as u64);
    let start = Instant::now();
    let mut readers = Vec::new();
    for i in 0..streams {
        let want = share.min(size.saturating_sub(i as u64 * share));
        let control = controls[i % connections].clone();
        readers.push(tokio::spawn(read_stream(control, server, i, want)));
    }
    let (mut received, mut asked_again) = (0, 0);
    for r in readers {
        let (got, again) = tokio::time::timeout(FETCH_TIMEOUT, r)
            .await
            .context("the fetch did not finish in time")???;
        received += got;
        asked_again += again;
    }
    let secs = start.elapsed().as_secs_f64();
    for d in drivers {
        d.abort();
    }
    let again = match asked_again {
        0 => String::new(),
        n => format!(" ({n} stream(s) asked again: the server dropped them unanswered)"),
    };
    println!(
        "{received} bytes over {streams} stream(s) on {connections} connection(s) in {secs:.3} s = {:.1} Mbit/s{again}",
        received as f64 * 8.0 / secs / 1e6
    );
    Ok(())
}
