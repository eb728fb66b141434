//! The transfer baselines, all inside the benchmark process on 127.0.0.1:
//!
//! - raw TCP: a `TcpListener`/`TcpStream` pair; the sender reads the file in 1 MiB
//!   buffers and writes them, the receiver reads until end of stream.
//! - the bare transport: two libp2p swarms over one [`Stack`] (the daemon's own is TCP
//!   with `nodelay`, noise, yamux with default settings), one stream of a custom
//!   protocol (`libp2p-stream`), the same file pushed in 1 MiB buffers. No store, no
//!   hashing, no request-response framing.
//!
//! Both measure from the first byte read from the file to the moment the receiver has
//! read the last one, and check that the receiver got exactly the file's length.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{quic, tcp, tls, yamux, Multiaddr, StreamProtocol, Swarm};
use p2pd_examples::bare_stack::{self, idle};

const BUF: usize = 1 << 20;
const PUSH_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pd-bench/push/1.0.0");

/// Pushes the file over a plain loopback TCP connection; returns the transfer time.
pub fn raw_tcp(path: &Path) -> anyhow::Result<Duration> {
    let size = std::fs::metadata(path)?.len();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> anyhow::Result<(u64, Instant)> {
        let (mut stream, _) = listener.accept()?;
        let mut buf = vec![0u8; BUF];
        let mut received = 0u64;
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                break;
            }
            received += n as u64;
        }
        Ok((received, Instant::now()))
    });
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; BUF];
    let start = Instant::now();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        stream.write_all(&buf[..n])?;
    }
    stream.shutdown(Shutdown::Write)?;
    let (received, end) = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver thread panicked"))??;
    if received != size {
        bail!("raw TCP: received {received} of {size} bytes");
    }
    Ok(end - start)
}

/// The secure transports a bare stream can run over (figure 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The daemon's TCP stack: TCP with `nodelay`, its own upgrade (TLS 1.3 with the
    /// suite this CPU runs fastest, proposed alone), yamux (defaults).
    TcpDaemon,
    /// TCP with `nodelay`, noise, yamux (defaults): what the daemon speaks with peers
    /// that refuse TLS.
    TcpNoise,
    /// TCP with `nodelay`, TLS 1.3 as libp2p-tls configures it (ChaCha20 first), yamux.
    TcpTls,
    /// QUIC (libp2p-quic) as the daemon configures it: libp2p's defaults.
    Quic,
    /// QUIC with flow-control windows of [`QUIC_STREAM_WINDOW`] per stream and
    /// [`QUIC_CONNECTION_WINDOW`] per connection.
    QuicWide,
}

/// Flow-control windows of [`Stack::QuicWide`] (libp2p's defaults: 10 MB and 15 MB).
pub const QUIC_STREAM_WINDOW: u32 = 32 << 20;
pub const QUIC_CONNECTION_WINDOW: u32 = 48 << 20;

impl Stack {
    pub const ALL: [Stack; 5] = [
        Stack::TcpDaemon,
        Stack::TcpNoise,
        Stack::TcpTls,
        Stack::Quic,
        Stack::QuicWide,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Stack::TcpDaemon => {
                "TCP+TLS 1.3 (AES-GCM where the CPU has AES)+yamux (the daemon's TCP stack)"
            }
            Stack::TcpNoise => "TCP+noise+yamux (the daemon's stack for Noise-only peers)",
            Stack::TcpTls => "TCP+TLS 1.3 as libp2p-tls orders it (ChaCha20 first)+yamux",
            Stack::Quic => "QUIC, libp2p's default windows (the daemon's QUIC)",
            Stack::QuicWide => "QUIC, windows 32 MiB per stream, 48 MiB per connection",
        }
    }

    fn listen_addr(self) -> &'static str {
        match self {
            Stack::TcpDaemon | Stack::TcpNoise | Stack::TcpTls => "/ip4/127.0.0.1/tcp/0",
            Stack::Quic | Stack::QuicWide => "/ip4/127.0.0.1/udp/0/quic-v1",
        }
    }
}

fn bench_swarm(stack: Stack) -> anyhow::Result<Swarm<libp2p_stream::Behaviour>> {
    let builder = libp2p::SwarmBuilder::with_new_identity().with_tokio();
    let tcp = tcp::Config::default().nodelay(true);
    // The same transport configuration as the daemon (node/src/network/build.rs) for
    // TcpDaemon and Quic.
    let swarm = match stack {
        Stack::TcpDaemon => bare_stack::daemon_tcp_swarm()?,
        Stack::TcpNoise => bare_stack::tcp_noise_yamux_swarm()?,
        Stack::TcpTls => builder
            .with_tcp(tcp, tls::Config::new, yamux::Config::default)?
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(idle)
            .build(),
        Stack::Quic => builder
            .with_quic()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(idle)
            .build(),
        Stack::QuicWide => builder
            .with_quic_config(|mut c: quic::Config| {
                c.max_stream_data = QUIC_STREAM_WINDOW;
                c.max_connection_data = QUIC_CONNECTION_WINDOW;
                c
            })
            .with_behaviour(|_| libp2p_stream::Behaviour::new())?
            .with_swarm_config(idle)
            .build(),
    };
    Ok(swarm)
}

/// The tasks driving a [`connected_pair`]; dropping this stops them.
struct Drivers([tokio::task::JoinHandle<()>; 2]);

impl Drop for Drivers {
    fn drop(&mut self) {
        for driver in &self.0 {
            driver.abort();
        }
    }
}

/// Two swarms over the daemon's stack, connected over 127.0.0.1 and driven by tasks of
/// their own. Returns the dialing side's control (to open streams), the listening
/// side's incoming streams of `protocol`, the listener's peer id, and the drivers.
async fn connected_pair(
    protocol: StreamProtocol,
    stack: Stack,
) -> anyhow::Result<(
    libp2p_stream::Control,
    libp2p_stream::IncomingStreams,
    libp2p::PeerId,
    Drivers,
)> {
    let mut dialer = bench_swarm(stack)?;
    let mut listener = bench_swarm(stack)?;
    let incoming = listener
        .behaviour()
        .new_control()
        .accept(protocol)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    listener.listen_on(stack.listen_addr().parse()?)?;
    let listen_addr: Multiaddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = listener.select_next_some().await {
            break address;
        }
    };
    let listener_id = *listener.local_peer_id();
    dialer.dial(listen_addr.with(Protocol::P2p(listener_id)))?;
    // Drive both swarms until the connection is up on both sides.
    let (mut dialer_up, mut listener_up) = (false, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(dialer_up && listener_up) {
        tokio::select! {
            e = dialer.select_next_some() => match e {
                SwarmEvent::ConnectionEstablished { .. } => dialer_up = true,
                SwarmEvent::OutgoingConnectionError { error, .. } => bail!("dial failed: {error}"),
                _ => {}
            },
            e = listener.select_next_some() => {
                if let SwarmEvent::ConnectionEstablished { .. } = e {
                    listener_up = true;
                }
            }
            _ = tokio::time::sleep_until(deadline) => bail!("the bare libp2p connection did not come up"),
        }
    }
    let control = dialer.behaviour().new_control();
    let drivers = Drivers([
        tokio::spawn(async move {
            loop {
                dialer.select_next_some().await;
            }
        }),
        tokio::spawn(async move {
            loop {
                listener.select_next_some().await;
            }
        }),
    ]);
    Ok((control, incoming, listener_id, drivers))
}

/// Pushes the file over one libp2p stream between two swarms in this process, over
/// `stack`; returns the transfer time. Must run inside a Tokio runtime.
pub async fn bare_libp2p(path: &Path, stack: Stack) -> anyhow::Result<Duration> {
    let size = std::fs::metadata(path)?.len();
    let (mut control, mut incoming, receiver_id, _drivers) =
        connected_pair(PUSH_PROTOCOL, stack).await?;
    let mut reader = tokio::spawn(async move {
        let (_, mut stream) = incoming.next().await.context("no incoming stream")?;
        let received = bare_stack::drain(&mut stream).await?;
        anyhow::Ok((received, Instant::now()))
    });
    let result = async {
        let mut stream = control
            .open_stream(receiver_id, PUSH_PROTOCOL)
            .await
            .map_err(|e| anyhow::anyhow!("opening the stream: {e}"))?;
        let mut file = File::open(path)?;
        let mut buf = vec![0u8; BUF];
        let start = Instant::now();
        loop {
            // A read of 1 MiB from the page cache takes well under a millisecond; the
            // raw TCP baseline reads the file the same way.
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            stream.write_all(&buf[..n]).await?;
        }
        stream.close().await?;
        let (received, end) = tokio::time::timeout(Duration::from_secs(600), &mut reader)
            .await
            .context("the reader did not finish")???;
        if received != size {
            bail!("bare libp2p: received {received} of {size} bytes");
        }
        Ok(end - start)
    }
    .await;
    reader.abort();
    result
}

const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/p2pd-bench/chunk/1.0.0");

/// p2pd's request pattern on the bare transport, without its store, CBOR or hashing: the
/// fetching swarm opens one stream per chunk and sends the chunk's index; the serving
/// swarm reads that chunk from the file and writes it back; `depth` requests are in
/// flight at once (p2pd: 8 per peer). Returns the transfer time and the requests retried.
pub async fn bare_libp2p_per_chunk(
    path: &Path,
    chunk: u64,
    depth: usize,
) -> anyhow::Result<(Duration, u64)> {
    use std::os::unix::fs::FileExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    let size = std::fs::metadata(path)?.len();
    let chunks = size.div_ceil(chunk);
    let (control, mut incoming, server_id, _drivers) =
        connected_pair(CHUNK_PROTOCOL, Stack::TcpDaemon).await?;
    let file = Arc::new(File::open(path)?);
    let serve = tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let file = file.clone();
            tokio::spawn(async move {
                let mut index = [0u8; 8];
                stream.read_exact(&mut index).await?;
                let offset = u64::from_le_bytes(index) * chunk;
                let len = chunk.min(size.saturating_sub(offset)) as usize;
                let mut data = vec![0u8; len];
                file.read_exact_at(&mut data, offset)?;
                stream.write_all(&data).await?;
                stream.close().await?;
                anyhow::Ok(())
            });
        }
    });
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..depth.max(1) {
        let mut control = control.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let (mut received, mut retries) = (0u64, 0u64);
            let mut buf = Vec::with_capacity(chunk as usize);
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= chunks {
                    return anyhow::Ok((received, retries));
                }
                // libp2p-stream drops an inbound stream when its accept queue (one slot)
                // is full, so a burst of opens can lose one: ask again, as p2pd would.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    buf.clear();
                    let result = async {
                        let mut stream = control
                            .open_stream(server_id, CHUNK_PROTOCOL)
                            .await
                            .map_err(|e| anyhow::anyhow!("opening a stream: {e}"))?;
                        stream.write_all(&index.to_le_bytes()).await?;
                        stream.close().await?;
                        stream.read_to_end(&mut buf).await?;
                        let want = chunk.min(size - index * chunk);
                        if buf.len() as u64 != want {
                            bail!("chunk {index}: {} of {want} bytes", buf.len());
                        }
                        anyhow::Ok(())
                    }
                    .await;
                    match result {
                        Ok(()) => break,
                        Err(e) if attempt >= 5 => return Err(e),
                        Err(_) => retries += 1,
                    }
                }
                received += buf.len() as u64;
            }
        }));
    }
    let (mut received, mut retries) = (0, 0);
    let mut failure = None;
    for w in workers {
        match w.await {
            Ok(Ok((n, r))) => {
                received += n;
                retries += r;
            }
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow::anyhow!("worker failed: {e}")),
        }
    }
    let elapsed = start.elapsed();
    serve.abort();
    if let Some(e) = failure {
        return Err(e);
    }
    if received != size {
        bail!("bare libp2p per chunk: received {received} of {size} bytes");
    }
    Ok((elapsed, retries))
}
