//! The flood itself: 1,000 connections to the seeder, idle, sending garbage, or valid
//! libp2p peers asking for the file as fast as they are answered, each reopened when
//! the seeder drops it, and the counters they keep.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dht_proto::message::{CHUNK_PROTOCOL, MANIFEST_PROTOCOL};
use dht_proto::{Bitfield, Cid, Request};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::Transport as _;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::io::AsyncWriteExt as _;

use crate::bound_tcp::BoundTcp;
use crate::{Args, MIB};

/// Longest one answer may take to arrive before a valid flooder gives up on it.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The source address of flood connection `i`: 127.1.<subnet>.<host>, 250 addresses in
/// ten /24s, four connections each.
fn source(i: usize) -> IpAddr {
    let n = i % 250;
    IpAddr::V4(Ipv4Addr::new(127, 1, (n / 25) as u8, (n % 25 + 1) as u8))
}

/// Counters the flood keeps.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) opened: AtomicU64,
    pub(crate) garbage_bytes: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) answers: AtomicU64,
    pub(crate) valid_connects: AtomicU64,
}

pub(crate) struct Flood {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Flood {
    pub(crate) fn start(
        args: &Args,
        target: SocketAddr,
        target_addr: Multiaddr,
        cid: Cid,
    ) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut tasks = Vec::new();
        for i in 0..args.idle + args.garbage {
            let garbage = i >= args.idle;
            let (stop, counts) = (stop.clone(), counts.clone());
            tasks.push(tokio::spawn(raw_connection(
                source(i),
                target,
                garbage,
                stop,
                counts,
            )));
        }
        for i in 0..args.valid {
            let (stop, counts) = (stop.clone(), counts.clone());
            let addr = target_addr.clone();
            tasks.push(tokio::spawn(async move {
                let from = source(i);
                if let Err(e) = valid_peer(from, addr, cid, i as u64, stop, counts).await {
                    eprintln!("valid flooder {i}: {e:#}");
                }
            }));
        }
        Flood {
            stop,
            counts,
            tasks,
        }
    }

    pub(crate) async fn stop(self) -> Arc<Counts> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.abort();
            let _ = task.await;
        }
        self.counts
    }
}

/// One idle or garbage TCP connection from `ip`, reopened whenever it ends.
async fn raw_connection(
    ip: IpAddr,
    target: SocketAddr,
    garbage: bool,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let mut seed = u64::from(u32::from(match ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => Ipv4Addr::LOCALHOST,
    })) | 1;
    while !stop.load(Ordering::Relaxed) {
        let socket = match tokio::net::TcpSocket::new_v4() {
            Ok(s) => s,
            Err(_) => return,
        };
        if socket.bind(SocketAddr::new(ip, 0)).is_err() {
            return;
        }
        let Ok(mut stream) = socket.connect(target).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        counts.opened.fetch_add(1, Ordering::Relaxed);
        if garbage {
            let mut buf = vec![0u8; 4096];
            loop {
                for b in buf.iter_mut() {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    *b = seed as u8;
                }
                match stream.write_all(&buf).await {
                    Ok(()) => {
                        counts
                            .garbage_bytes
                            .fetch_add(buf.len() as u64, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
        } else {
            // Wait for the seeder to drop it (a read of 0 bytes or an error).
            let mut byte = [0u8; 1];
            let _ = tokio::io::AsyncReadExt::read(&mut stream, &mut byte).await;
        }
    }
}

/// A libp2p peer that sends valid requests for `cid`, one after the other, dialing from
/// `source` (TCP bound there, then noise and yamux as the daemon speaks them).
async fn valid_peer(
    source: IpAddr,
    target: Multiaddr,
    cid: Cid,
    seed: u64,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) -> anyhow::Result<()> {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let noise = libp2p::noise::Config::new(&key)?;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|_| {
            BoundTcp { source }
                .upgrade(libp2p::core::upgrade::Version::V1)
                .authenticate(noise)
                .multiplex(libp2p::yamux::Config::default())
        })?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let peer: PeerId = match target.iter().last() {
        Some(Protocol::P2p(id)) => id,
        _ => anyhow::bail!("the target address has no /p2p part"),
    };
    let control = swarm.behaviour().new_control();
    let requests = tokio::spawn(send_requests(
        control,
        peer,
        cid,
        seed,
        stop.clone(),
        counts.clone(),
    ));
    let mut connected = false;
    let mut next_dial = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if !connected && Instant::now() >= next_dial {
            next_dial = Instant::now() + Duration::from_millis(200);
            let _ = swarm.dial(target.clone());
        }
        match tokio::time::timeout(Duration::from_millis(200), swarm.select_next_some()).await {
            Ok(SwarmEvent::ConnectionEstablished { .. }) => {
                connected = true;
                counts.valid_connects.fetch_add(1, Ordering::Relaxed);
            }
            Ok(SwarmEvent::ConnectionClosed {
                num_established: 0, ..
            }) => connected = false,
            _ => {}
        }
    }
    requests.abort();
    Ok(())
}

/// Opens a stream per request, writes it, closes the write side and reads the answer.
async fn send_requests(
    mut control: libp2p_stream::Control,
    peer: PeerId,
    cid: Cid,
    seed: u64,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
) {
    let chunks = 256u32;
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        n = n.wrapping_add(1);
        let index = (n % u64::from(chunks)) as u32;
        let (protocol, request) = match n % 4 {
            0 => (MANIFEST_PROTOCOL, Request::Manifest { cid }),
            1 => (
                CHUNK_PROTOCOL,
                Request::Bitfield {
                    cid,
                    have: Bitfield::new(chunks),
                },
            ),
            2 => (CHUNK_PROTOCOL, Request::Have { cid, index }),
            _ => (CHUNK_PROTOCOL, Request::Chunk { cid, index }),
        };
        let opened = control
            .open_stream(peer, StreamProtocol::new(protocol))
            .await;
        let Ok(mut stream) = opened else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        counts.requests.fetch_add(1, Ordering::Relaxed);
        let exchange = async {
            stream.write_all(&request.encode()).await?;
            stream.close().await?;
            let mut answer = Vec::new();
            (&mut stream).take(2 * MIB).read_to_end(&mut answer).await?;
            Ok::<_, std::io::Error>(answer)
        };
        if let Ok(Ok(answer)) = tokio::time::timeout(ANSWER_TIMEOUT, exchange).await {
            if !answer.is_empty() {
                counts.answers.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
