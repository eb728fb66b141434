//! The TCP connection upgrade over real sockets on 127.0.0.1: what a dialer proposes,
//! what a listener accepts, and the fall-back to Noise for a peer that refuses TLS.

use std::task::Poll;
use std::time::Duration;

use futures::future::{poll_fn, select, Either};
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use libp2p::core::muxing::{StreamMuxerBox, StreamMuxerExt as _};

use libp2p::core::transport::PortUse;
use libp2p::core::upgrade::{InboundConnectionUpgrade as _, OutboundConnectionUpgrade as _};
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::tcp::tokio::TcpStream;
use libp2p::{identity, noise, yamux, Multiaddr};
use multistream_select::{dialer_select_proto, listener_select_proto, Version};
use tokio::net::TcpListener;

use super::{Upgrader, NOISE, YAMUX};
use crate::network::tls;

const WAIT: Duration = Duration::from_secs(10);

fn dialer(address: Multiaddr) -> ConnectedPoint {
    ConnectedPoint::Dialer {
        address,
        role_override: Endpoint::Dialer,
        port_use: PortUse::New,
    }
}

fn listener() -> ConnectedPoint {
    let any: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().expect("address");
    ConnectedPoint::Listener {
        local_addr: any.clone(),
        send_back_addr: any,
    }
}

/// Two new node keys.
fn two_keys() -> (identity::Keypair, identity::Keypair) {
    (
        identity::Keypair::generate_ed25519(),
        identity::Keypair::generate_ed25519(),
    )
}

/// Runs both sides of a connection to their ends, within [`WAIT`].
async fn both<A: std::future::Future, B: std::future::Future>(
    a: A,
    b: B,
) -> (A::Output, B::Output) {
    tokio::time::timeout(WAIT, futures::future::join(a, b))
        .await
        .expect("in time")
}

/// A listening socket and the address a dialer names it by.
async fn listen() -> (TcpListener, Multiaddr) {
    let socket = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = socket.local_addr().expect("address").port();
    let address = Multiaddr::empty()
        .with(Protocol::Ip4([127, 0, 0, 1].into()))
        .with(Protocol::Tcp(port));
    (socket, address)
}

async fn connect(address: &Multiaddr) -> TcpStream {
    let Some(Protocol::Tcp(port)) = address.iter().nth(1) else {
        panic!("not a TCP address: {address}");
    };
    TcpStream(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect"),
    )
}

async fn accept(socket: &TcpListener) -> TcpStream {
    TcpStream(socket.accept().await.expect("accept").0)
}

/// Opens a stream on the dialer's connection and writes `hello` on it, driving the
/// connection meanwhile and for a while after (a dialer proposes yamux lazily, with its
/// first bytes, so a listener's upgrade ends only once the dialer writes).
async fn say_hello(mut muxer: StreamMuxerBox) {
    let mut stream = poll_fn(|cx| muxer.poll_outbound_unpin(cx))
        .await
        .expect("outbound stream");
    tokio::spawn(async move {
        let write = Box::pin(async move {
            stream.write_all(b"hello").await.expect("write");
            stream.flush().await.expect("flush");
            std::future::pending::<()>().await;
        });
        let drive = Box::pin(poll_fn(move |cx| {
            let _ = muxer.poll_unpin(cx);
            Poll::<()>::Pending
        }));
        let _ = tokio::time::timeout(WAIT, select(write, drive)).await;
    });
}

/// Reads the dialer's `hello` from the first stream it opens.
async fn hear_hello(mut muxer: StreamMuxerBox) {
    let mut stream = poll_fn(|cx| muxer.poll_inbound_unpin(cx))
        .await
        .expect("inbound stream");
    let mut read = [0u8; 5];
    let reading = Box::pin(stream.read_exact(&mut read));
    let drive = Box::pin(poll_fn(|cx| {
        let _ = muxer.poll_unpin(cx);
        Poll::<()>::Pending
    }));
    match select(reading, drive).await {
        Either::Left((r, _)) => r.expect("read"),
        Either::Right(_) => unreachable!("the driver never ends"),
    }
    assert_eq!(&read, b"hello");
}

/// Our side dialing `address` with a new upgrader for `key`: returns whom it reached,
/// after writing `hello` on the connection.
async fn our_dial(key: &identity::Keypair, address: &Multiaddr) -> libp2p::PeerId {
    let (peer, muxer) = Upgrader::new(key)
        .expect("upgrader")
        .upgrade(connect(address).await, dialer(address.clone()))
        .await
        .expect("dial");
    say_hello(muxer).await;
    peer
}

/// Our side accepting one connection on `socket` with a new upgrader for `key`:
/// returns who connected, after reading its `hello`.
async fn our_accept(key: &identity::Keypair, socket: &TcpListener) -> libp2p::PeerId {
    let (peer, muxer) = Upgrader::new(key)
        .expect("upgrader")
        .upgrade(accept(socket).await, listener())
        .await
        .expect("accept");
    hear_hello(muxer).await;
    peer
}

/// The listener's yamux on a secured `io`, then the dialer's `hello`.
async fn yamux_inbound_hello<S>(io: S)
where
    S: futures::AsyncRead + futures::AsyncWrite + Send + Unpin + 'static,
{
    let (_, io) = listener_select_proto(io, [YAMUX]).await.expect("yamux");
    let muxer = yamux::Config::default()
        .upgrade_inbound(io, YAMUX)
        .await
        .expect("muxer");
    hear_hello(StreamMuxerBox::new(muxer)).await;
}

/// A peer that speaks Noise only, listening on `socket`: it refuses the first
/// connection's TLS, then takes the next one with Noise and reads its `hello`; returns
/// the peer that connected.
async fn noise_only_peer(socket: &TcpListener, key: &identity::Keypair) -> libp2p::PeerId {
    let refused = accept(socket).await;
    assert!(listener_select_proto(refused, [NOISE]).await.is_err());
    let conn = accept(socket).await;
    let (_, io) = listener_select_proto(conn, [NOISE])
        .await
        .expect("negotiation");
    let (peer, io) = noise::Config::new(key)
        .expect("noise")
        .upgrade_inbound(io, NOISE)
        .await
        .expect("noise handshake");
    yamux_inbound_hello(io).await;
    peer
}

#[tokio::test]
async fn two_nodes_connect_over_tls_proposed_alone() {
    let (socket, address) = listen().await;
    let (ours, theirs) = two_keys();
    let their_tls = tls::Config::new(&theirs).expect("tls");
    let their_side = async {
        let conn = accept(&socket).await;
        // The listener would take Noise too: the dialer proposed TLS only.
        let (protocol, io) = listener_select_proto(conn, [NOISE, tls::PROTOCOL])
            .await
            .expect("negotiation");
        assert_eq!(protocol, tls::PROTOCOL);
        let (peer, io) = their_tls.accept(io).await.expect("tls handshake");
        yamux_inbound_hello(io).await;
        peer
    };
    let our_side = our_dial(&ours, &address);
    let (dialled, accepted) = both(our_side, their_side).await;
    assert_eq!(dialled, theirs.public().to_peer_id());
    assert_eq!(accepted, ours.public().to_peer_id());
}

#[tokio::test]
async fn two_upgraders_connect_each_naming_the_other() {
    let (socket, address) = listen().await;
    let (a, b) = two_keys();
    let (dialled, accepted) = both(our_dial(&a, &address), our_accept(&b, &socket)).await;
    assert_eq!(dialled, b.public().to_peer_id());
    assert_eq!(accepted, a.public().to_peer_id());
}

#[tokio::test]
async fn a_noise_only_dialer_is_accepted() {
    let (socket, address) = listen().await;
    let (ours, theirs) = two_keys();
    let our_side = our_accept(&ours, &socket);
    let their_side = async {
        let conn = connect(&address).await;
        let (_, io) = dialer_select_proto(conn, [NOISE], Version::V1Lazy)
            .await
            .expect("negotiation");
        let (peer, io) = noise::Config::new(&theirs)
            .expect("noise")
            .upgrade_outbound(io, NOISE)
            .await
            .expect("noise handshake");
        let (_, io) = dialer_select_proto(io, [YAMUX], Version::V1Lazy)
            .await
            .expect("yamux");
        let muxer = yamux::Config::default()
            .upgrade_outbound(io, YAMUX)
            .await
            .expect("muxer");
        say_hello(StreamMuxerBox::new(muxer)).await;
        peer
    };
    let (accepted, dialled) = both(our_side, their_side).await;
    assert_eq!(accepted, theirs.public().to_peer_id());
    assert_eq!(dialled, ours.public().to_peer_id());
}

#[tokio::test]
async fn a_peer_that_refuses_tls_is_dialed_with_noise_after_one_failure() {
    let (socket, address) = listen().await;
    let (ours, theirs) = two_keys();
    let noise_only_peer = noise_only_peer(&socket, &theirs);
    let upgrader = Upgrader::new(&ours).expect("upgrader");
    let our_dials = async {
        let first = upgrader
            .clone()
            .upgrade(connect(&address).await, dialer(address.clone()))
            .await;
        let remembered = upgrader.noise_only.contains(&address);
        let (second, muxer) = upgrader
            .clone()
            .upgrade(connect(&address).await, dialer(address.clone()))
            .await
            .expect("second dial");
        say_hello(muxer).await;
        (first.map(|(p, _)| p), remembered, second)
    };
    let ((first, remembered, second), accepted) = both(our_dials, noise_only_peer).await;
    assert!(
        first.is_err(),
        "a TLS dial to a Noise-only peer cannot succeed"
    );
    assert!(remembered, "the refusal is remembered");
    assert_eq!(second, theirs.public().to_peer_id());
    assert_eq!(accepted, ours.public().to_peer_id());
}

/// Both sides of one TLS handshake over a TCP connection on 127.0.0.1.
async fn tls_pair<D, A, DO, AO>(dial: D, accept_with: A) -> (DO, AO)
where
    D: FnOnce(TcpStream) -> futures::future::BoxFuture<'static, DO>,
    A: FnOnce(TcpStream) -> futures::future::BoxFuture<'static, AO>,
{
    let (socket, address) = listen().await;
    let accepting = async { accept_with(accept(&socket).await).await };
    let dialing = async { dial(connect(&address).await).await };
    both(dialing, accepting).await
}

/// A handshake between our own two TLS configurations: `client` dials, `server` accepts.
async fn our_handshake(
    client: tls::Config,
    server: tls::Config,
) -> (
    std::io::Result<(libp2p::PeerId, futures_rustls::TlsStream<TcpStream>)>,
    std::io::Result<(libp2p::PeerId, futures_rustls::TlsStream<TcpStream>)>,
) {
    tls_pair(
        |c| Box::pin(client.connect(c)),
        |c| Box::pin(server.accept(c)),
    )
    .await
}

fn suite<C>(stream: &futures_rustls::TlsStream<C>) -> rustls::CipherSuite {
    tls::negotiated_suite(stream).expect("a suite").suite()
}

#[tokio::test]
async fn tls_settles_on_aes_gcm_where_the_cpu_has_aes() {
    let (a, b) = two_keys();
    let (client, server) = (
        tls::Config::with_suites_for(&a, true).expect("a"),
        tls::Config::with_suites_for(&b, true).expect("b"),
    );
    let (dialled, accepted) = our_handshake(client, server).await;
    let ((b_id, d_stream), (a_id, a_stream)) = (dialled.expect("dial"), accepted.expect("accept"));
    assert_eq!(
        (b_id, a_id),
        (b.public().to_peer_id(), a.public().to_peer_id())
    );
    assert_eq!(
        suite(&d_stream),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    assert_eq!(
        suite(&a_stream),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
}

#[tokio::test]
async fn without_aes_the_server_picks_chacha_by_its_own_order() {
    let (a, b) = two_keys();
    let (client, server) = (
        tls::Config::with_suites_for(&a, true).expect("a"),
        tls::Config::with_suites_for(&b, false).expect("b"),
    );
    let (dialled, _) = our_handshake(client, server).await;
    assert_eq!(
        suite(&dialled.expect("dial").1),
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
}

#[tokio::test]
async fn libp2p_tls_peers_interoperate_and_get_aes_from_us() {
    let (ours, theirs) = two_keys();
    // Their client lists ChaCha first; our server picks by its own order.
    let their_client = libp2p::tls::Config::new(&theirs).expect("libp2p-tls");
    let our_server = tls::Config::with_suites_for(&ours, true).expect("ours");
    let (dialled, accepted) = tls_pair(
        |c| Box::pin(their_client.upgrade_outbound(c, tls::PROTOCOL)),
        |c| Box::pin(our_server.accept(c)),
    )
    .await;
    let ((their_view, _), (our_view, stream)) = (dialled.expect("dial"), accepted.expect("accept"));
    assert_eq!(their_view, ours.public().to_peer_id());
    assert_eq!(our_view, theirs.public().to_peer_id());
    assert_eq!(
        suite(&stream),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );

    // Their server follows our client's order.
    let their_server = libp2p::tls::Config::new(&theirs).expect("libp2p-tls");
    let our_client = tls::Config::with_suites_for(&ours, true).expect("ours");
    let (dialled, accepted) = tls_pair(
        |c| Box::pin(our_client.connect(c)),
        |c| Box::pin(their_server.upgrade_inbound(c, tls::PROTOCOL)),
    )
    .await;
    let ((our_view, stream), (their_view, _)) = (dialled.expect("dial"), accepted.expect("accept"));
    assert_eq!(our_view, theirs.public().to_peer_id());
    assert_eq!(their_view, ours.public().to_peer_id());
    assert_eq!(
        suite(&stream),
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    );
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let server = tls::Config::new(&identity::Keypair::generate_ed25519()).expect("server");
    let mut anonymous = rustls::ClientConfig::builder()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(tls::Libp2pCertificates))
        .with_no_client_auth();
    anonymous.alpn_protocols = vec![b"libp2p".to_vec()];
    let connector = futures_rustls::TlsConnector::from(std::sync::Arc::new(anonymous));
    let name =
        rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([0u8, 0, 0, 0]).into());
    let (_, accepted) = tls_pair(
        |c| {
            Box::pin(async move {
                // The client's side may finish before the server refuses; use it.
                let mut stream = connector.connect(name, c).await.ok()?;
                stream.write_all(b"hello").await.ok()?;
                stream.flush().await.ok()
            })
        },
        |c| Box::pin(server.accept(c)),
    )
    .await;
    assert!(accepted.is_err(), "a peer must present a certificate");
}

#[tokio::test]
async fn a_dial_that_can_connect_again_reaches_a_noise_only_peer_at_once() {
    let (socket, address) = listen().await;
    let (ours, theirs) = two_keys();
    let noise_only_peer = noise_only_peer(&socket, &theirs);
    let our_dial = async {
        let (peer, muxer) = Upgrader::new(&ours)
            .expect("upgrader")
            .upgrade_or_redial(
                connect(&address).await,
                dialer(address.clone()),
                |a| async move { Ok(connect(&a).await) },
            )
            .await
            .expect("one dial, connected twice");
        say_hello(muxer).await;
        peer
    };
    let (dialled, accepted) = both(our_dial, noise_only_peer).await;
    assert_eq!(dialled, theirs.public().to_peer_id());
    assert_eq!(accepted, ours.public().to_peer_id());
}

/// The CPU features the kernel reports for the first processor (`/proc/cpuinfo`'s
/// `flags` on x86, `Features` on Arm): a view of the CPU independent of `std::arch`.
#[cfg(target_os = "linux")]
fn kernel_cpu_flags() -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("/proc/cpuinfo");
    cpuinfo
        .lines()
        .find(|line| line.starts_with("flags") || line.starts_with("Features"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, flags)| flags.split_whitespace().map(str::to_string).collect())
        .expect("a flags line in /proc/cpuinfo")
}

/// The daemon's own configuration (`tls::Config::new`, which detects the CPU) settles on
/// AES-GCM exactly where the kernel says the CPU has AES and carry-less multiplication,
/// and on ChaCha20 elsewhere: a wrong detection would pick the slower suite silently.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[tokio::test]
async fn the_daemons_suite_follows_the_cpu_the_kernel_reports() {
    let flags = kernel_cpu_flags();
    let has = |flag: &str| flags.iter().any(|f| f == flag);
    let multiply = if cfg!(target_arch = "x86_64") {
        "pclmulqdq"
    } else {
        "pmull"
    };
    let expected = if has("aes") && has(multiply) {
        rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
    } else {
        rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    };
    let (a, b) = two_keys();
    let (client, server) = (
        tls::Config::new(&a).expect("a"),
        tls::Config::new(&b).expect("b"),
    );
    let (dialled, accepted) = our_handshake(client, server).await;
    assert_eq!(
        suite(&dialled.expect("dial").1),
        expected,
        "flags: {flags:?}"
    );
    assert_eq!(suite(&accepted.expect("accept").1), expected);
}
