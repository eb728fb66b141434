//! Issue 18: the protocol as a second implementation meets it. A bare libp2p client in
//! this process (TCP, Noise, Yamux, and raw bytes on the transfer protocols: nothing of
//! p2pd's own codec) talks to a real `p2pd` daemon on 127.0.0.1:
//!
//! - it replays `dht-proto/vectors/exchanges.json`: each request's bytes, written and
//!   the write side closed, must get exactly the vector's answer bytes, or, for
//!   `no_answer`, no byte before the stream ends (cleanly or by a reset);
//! - a banned requester (a peer whose corrupt chunk the daemon caught) gets `Choked` for
//!   a `Have`, a `Chunk` or a `Manifest`, and `Ack` for a `Cancel`, as docs/protocol.md
//!   says (the client speaks with the banned peer's own key);
//! - the daemon, which dials with TLS, reaches a peer that speaks only Noise on its
//!   first dial (protocol revision 4).
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::Path;
use std::time::Duration;

use dht_proto::message::{CHUNK_PROTOCOL, MANIFEST_PROTOCOL, MAX_RESPONSE_LEN};
use dht_proto::{Cid, Request, Response};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use harness::*;
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity::Keypair, Multiaddr, PeerId, StreamProtocol};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(30);

/// Requests and answers as raw bytes: the request is written and the write side closed;
/// the answer is whatever arrives before the stream ends (empty: none).
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> std::io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut bytes = Vec::new();
        io.take(MAX_RESPONSE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .await?;
        Ok(bytes)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&request).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        Err(std::io::ErrorKind::Unsupported.into())
    }
}

/// One request-response behaviour per transfer protocol, so that each request goes on
/// the protocol its vector names.
#[derive(NetworkBehaviour)]
struct Client {
    chunk: request_response::Behaviour<RawCodec>,
    manifest: request_response::Behaviour<RawCodec>,
}

/// A swarm over TCP, Noise and Yamux only (what an older or other libp2p node speaks).
fn noise_swarm<B: NetworkBehaviour>(key: Keypair, behaviour: B) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

fn raw(protocol: &'static str) -> request_response::Behaviour<RawCodec> {
    request_response::Behaviour::with_codec(
        RawCodec,
        [(StreamProtocol::new(protocol), ProtocolSupport::Outbound)],
        request_response::Config::default().with_request_timeout(DEADLINE),
    )
}

/// What came back for one request.
#[derive(Debug, PartialEq)]
enum Outcome {
    Answer(Vec<u8>),
    /// The stream ended (closed or reset) before any byte arrived.
    NoAnswer,
}

struct Peer {
    swarm: libp2p::Swarm<Client>,
    daemon: PeerId,
}

impl Peer {
    async fn connect(key: Keypair, daemon: &Daemon) -> Peer {
        let mut swarm = noise_swarm(
            key,
            Client {
                chunk: raw(CHUNK_PROTOCOL),
                manifest: raw(MANIFEST_PROTOCOL),
            },
        );
        let addr: Multiaddr = daemon.addr().parse().unwrap();
        let daemon_id: PeerId = daemon.peer_id().parse().unwrap();
        swarm.dial(addr).unwrap();
        tokio::time::timeout(DEADLINE, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == daemon_id => {
                        break
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dial: {error}"),
                    _ => {}
                }
            }
        })
        .await
        .expect("connected to the daemon");
        Peer {
            swarm,
            daemon: daemon_id,
        }
    }

    /// Sends `request` on `protocol` and waits for what comes back.
    async fn exchange(&mut self, protocol: &str, request: Vec<u8>) -> Outcome {
        let behaviour = self.swarm.behaviour_mut();
        let id = if protocol == CHUNK_PROTOCOL {
            behaviour.chunk.send_request(&self.daemon, request)
        } else {
            assert_eq!(protocol, MANIFEST_PROTOCOL);
            behaviour.manifest.send_request(&self.daemon, request)
        };
        tokio::time::timeout(DEADLINE, self.outcome(id))
            .await
            .unwrap_or_else(|_| panic!("no outcome within {DEADLINE:?}"))
    }

    async fn outcome(&mut self, id: OutboundRequestId) -> Outcome {
        loop {
            let event = match self.swarm.select_next_some().await {
                SwarmEvent::Behaviour(ClientEvent::Chunk(e) | ClientEvent::Manifest(e)) => e,
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == self.daemon => {
                    panic!("the daemon closed the connection")
                }
                _ => continue,
            };
            match event {
                request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                } if request_id == id => {
                    return if response.is_empty() {
                        Outcome::NoAnswer
                    } else {
                        Outcome::Answer(response)
                    };
                }
                request_response::Event::OutboundFailure {
                    request_id, error, ..
                } if request_id == id => {
                    // A reset (or an end mid-answer): acceptable only as "no answer",
                    // which the caller checks.
                    assert!(
                        matches!(error, request_response::OutboundFailure::Io(_)),
                        "{error}"
                    );
                    return Outcome::NoAnswer;
                }
                _ => {}
            }
        }
    }
}

/// BYTES as the vectors' README defines them: a hex string, `{"hex": …}`,
/// `{"repeat": …, "count": n}`, or `{"parts": [those…]}`.
fn hex(value: &Value) -> Vec<u8> {
    let decode = |text: &Value| {
        data_encoding::HEXLOWER
            .decode(text.as_str().unwrap().as_bytes())
            .unwrap()
    };
    if value.is_string() {
        return decode(value);
    }
    if let Some(parts) = value["parts"].as_array() {
        return parts.iter().flat_map(hex).collect();
    }
    if value["hex"].is_string() {
        return decode(&value["hex"]);
    }
    decode(&value["repeat"]).repeat(value["count"].as_u64().unwrap() as usize)
}

fn vectors() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dht-proto/vectors/exchanges.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_answers_every_exchange_vector_exactly() {
    let file = vectors();
    let setup = &file["setup"];
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("node"), &[]);
    let src = dir.path().join(setup["name"].as_str().unwrap());
    std::fs::write(&src, hex(&setup["file"])).unwrap();
    assert_eq!(add(&daemon, &src, &[]), setup["cid"].as_str().unwrap());

    let mut peer = Peer::connect(Keypair::generate_ed25519(), &daemon).await;
    let mut checked = 0;
    for v in file["vectors"].as_array().unwrap() {
        let name = v["name"].as_str().unwrap();
        let protocol = v["protocol"].as_str().unwrap();
        let got = peer.exchange(protocol, hex(&v["request"])).await;
        let expected = match v["outcome"].as_str().unwrap() {
            "answer" => Outcome::Answer(hex(&v["answer"])),
            "no_answer" => Outcome::NoAnswer,
            other => panic!("{name}: outcome {other}"),
        };
        assert_eq!(got, expected, "vector {name:?}");
        checked += 1;
    }
    assert_eq!(checked, file["vectors"].as_array().unwrap().len());
    assert!(checked >= 30, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_peer_gets_choked_except_for_cancel_which_is_acked() {
    let mut swarm = Swarm::new();
    let mut liar = swarm.node(&["--test-corrupt-chunks"]);
    let src = swarm.path("bait.bin");
    random_file(&src, 2 << 20, 1);
    let cid = add(&liar, &src, &[]);
    let fetcher = swarm.node(&[]);
    let failed = fetch(&fetcher, &cid, &swarm.path("bait.out"), 10);
    assert_ne!(failed.code, 0, "{failed:?}");
    let liar_id = liar.peer_id();
    wait_until("the liar banned", DEADLINE, || {
        fetcher
            .cli(&["reputation", "--json"])
            .success()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["peer_id"] == liar_id.as_str() && p["banned"] == true)
    });
    let key = std::fs::read(liar.data_dir.join("identity.key")).unwrap();
    liar.stop();
    let key = Keypair::from_protobuf_encoding(&key).unwrap();
    let mut peer = Peer::connect(key, &fetcher).await;
    let cid: Cid = cid.parse().unwrap();
    let choked = Response::Choked.encode();
    for request in [
        Request::Have { cid, index: 0 },
        Request::Chunk { cid, index: 0 },
        Request::Bitfield {
            cid,
            have: dht_proto::Bitfield::new(2),
        },
    ] {
        let got = peer.exchange(CHUNK_PROTOCOL, request.encode()).await;
        assert_eq!(got, Outcome::Answer(choked.clone()), "{request:?}");
    }
    let got = peer
        .exchange(MANIFEST_PROTOCOL, Request::Manifest { cid }.encode())
        .await;
    assert_eq!(got, Outcome::Answer(choked.clone()), "manifest");
    let got = peer
        .exchange(CHUNK_PROTOCOL, Request::Cancel { cid, index: 0 }.encode())
        .await;
    assert_eq!(got, Outcome::Answer(Response::Ack.encode()), "cancel");
}

/// docs/protocol.md §7, revision 4: a daemon dialing over TCP proposes TLS alone; a
/// peer that speaks only Noise refuses it, and the daemon connects again at once and
/// proposes Noise. Here the peer is a bare libp2p swarm (TCP, Noise, Yamux) that the
/// daemon has as its bootstrap node. The daemon's dials come from its listen port; the
/// connection made again within the refused dial comes from a new port, which tells it
/// from a later dial of the daemon's (that one would also propose Noise, the refusal
/// being remembered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_reaches_a_noise_only_peer_on_its_first_dial() {
    let key = Keypair::generate_ed25519();
    let noise_peer = key.public().to_peer_id();
    let mut swarm = noise_swarm(key, libp2p::swarm::dummy::Behaviour);
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let address = tokio::time::timeout(DEADLINE, async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address;
            }
        }
    })
    .await
    .expect("listening");
    // The swarm runs on its own task while the daemon starts, reporting who connected
    // and how many connections it refused.
    let (events, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished {
                    peer_id, endpoint, ..
                } => {
                    let _ = events.send(Some((peer_id, tcp_port(endpoint.get_remote_address()))));
                }
                SwarmEvent::IncomingConnectionError { .. } => {
                    let _ = events.send(None);
                }
                _ => {}
            }
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = format!("{address}/p2p/{noise_peer}");
    let node = dir.path().join("node");
    let daemon =
        tokio::task::spawn_blocking(move || Daemon::start(&node, &["--bootstrap", &bootstrap]))
            .await
            .unwrap();
    let daemon_id: PeerId = daemon.peer_id().parse().unwrap();
    let listen_port = tcp_port(&daemon.addr().parse().unwrap());
    let mut refused = 0;
    let connected = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = seen.recv().await {
            match event {
                Some((peer, port)) if peer == daemon_id => return Some(port),
                Some(_) => {}
                None => refused += 1,
            }
        }
        None
    })
    .await;
    driver.abort();
    let from_port = connected
        .ok()
        .flatten()
        .expect("the daemon reached the Noise-only peer");
    assert_eq!(
        refused, 1,
        "one connection refused (the TLS proposal), then Noise"
    );
    assert_ne!(
        from_port, listen_port,
        "connected again within the refused dial (from a new port), not by a later dial"
    );
}

/// The TCP port of `address`.
fn tcp_port(address: &Multiaddr) -> Option<u16> {
    address.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
        _ => None,
    })
}
