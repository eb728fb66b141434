//! TCP dials from our listen port, with a way out. libp2p's TCP transport dials from
//! the port we listen on (so that peers see the port they can dial back, and so that
//! hole punching works), but a connection is a four-tuple: while one from that port to
//! the same address is open or in `TIME_WAIT`, a second dial from it fails with "address
//! already in use" (libp2p-tcp retries from a new port only for "address not
//! available"). Seen in a test: a fetch by ticket failed to reach a provider it had just
//! been connected to. [`ReuseOrNewPort`] dials such a connection again from a new port.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt as _;
use libp2p::core::transport::{DialOpts, ListenerId, PortUse, TransportError, TransportEvent};
use libp2p::core::Transport;
use libp2p::{tcp, Multiaddr};

/// A TCP transport (libp2p's tokio one in the daemon) whose dials from the listen port
/// that fail because the port cannot make the connection are made again from a new
/// port, by a transport of its own with no listener (`fresh`).
pub(super) struct ReuseOrNewPort<T> {
    inner: T,
    fresh: Arc<dyn Fn() -> T + Send + Sync>,
}

impl ReuseOrNewPort<tcp::tokio::Transport> {
    pub(super) fn new(config: tcp::Config) -> Self {
        ReuseOrNewPort {
            inner: tcp::tokio::Transport::new(config.clone()),
            fresh: Arc::new(move || tcp::tokio::Transport::new(config.clone())),
        }
    }
}

/// One TCP connection to `address` from a new port, by a transport of its own (for a
/// dial that must connect again: `secure.rs`).
pub(super) async fn dial_from_new_port(
    config: tcp::Config,
    address: Multiaddr,
) -> io::Result<tcp::tokio::TcpStream> {
    let opts = DialOpts {
        role: libp2p::core::Endpoint::Dialer,
        port_use: PortUse::New,
    };
    match tcp::tokio::Transport::new(config).dial(address, opts) {
        Ok(dial) => dial.await,
        Err(TransportError::Other(e)) => Err(e),
        Err(TransportError::MultiaddrNotSupported(a)) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a TCP address: {a}"),
        )),
    }
}

/// Whether a dial from the listen port failed because that port cannot make this
/// connection (and a new port could).
fn port_taken(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
    )
}

impl<T> Transport for ReuseOrNewPort<T>
where
    T: Transport<Error = io::Error> + Unpin + 'static,
    T::Dial: Send + 'static,
    T::Output: Send + 'static,
{
    type Output = T::Output;
    type Error = io::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = BoxFuture<'static, io::Result<T::Output>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        let first = self.inner.dial(addr.clone(), opts)?;
        if opts.port_use != PortUse::Reuse {
            return Ok(first.boxed());
        }
        let fresh = self.fresh.clone();
        Ok(async move {
            match first.await {
                Err(e) if port_taken(&e) => {
                    tracing::debug!(%addr, "dial from the listen port failed ({e}): dialling from a new port");
                    let new_port = DialOpts {
                        port_use: PortUse::New,
                        ..opts
                    };
                    // (The transport is dropped here: only its dial is awaited.)
                    let retry = fresh().dial(addr, new_port);
                    match retry {
                        Ok(dial) => dial.await,
                        Err(TransportError::Other(e)) => Err(e),
                        Err(TransportError::MultiaddrNotSupported(a)) => Err(io::Error::other(
                            format!("address not supported: {a}"),
                        )),
                    }
                }
                other => other,
            }
        }
        .boxed())
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use libp2p::core::Endpoint;

    use super::*;

    fn reuse() -> DialOpts {
        DialOpts {
            role: Endpoint::Dialer,
            port_use: PortUse::Reuse,
        }
    }

    /// Listens on 127.0.0.1 and returns the port, once the transport reports it (only
    /// then does libp2p-tcp dial from it).
    async fn listen(transport: &mut ReuseOrNewPort<tcp::tokio::Transport>) -> u16 {
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        transport.listen_on(ListenerId::next(), addr).unwrap();
        let event = tokio::time::timeout(
            Duration::from_secs(5),
            futures::future::poll_fn(|cx| Pin::new(&mut *transport).poll(cx)),
        )
        .await
        .expect("a listen address in time");
        let TransportEvent::NewAddress { listen_addr, .. } = event else {
            panic!("not a new address: {event:?}");
        };
        match listen_addr.iter().nth(1) {
            Some(libp2p::multiaddr::Protocol::Tcp(port)) => port,
            other => panic!("no port in {listen_addr}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn dials_go_through_and_come_from_the_listen_port_when_they_can() {
        let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port_of_server = server.local_addr().unwrap().port();
        let server_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port_of_server}")
            .parse()
            .unwrap();
        let accepting = tokio::spawn(async move {
            let mut kept = Vec::new();
            while let Ok((stream, _)) = server.accept().await {
                kept.push(stream);
            }
        });
        let mut transport = ReuseOrNewPort::new(tcp::Config::default());
        let port = listen(&mut transport).await;
        let first = transport
            .dial(server_addr.clone(), reuse())
            .unwrap()
            .await
            .unwrap();
        assert_eq!(first.0.local_addr().unwrap().port(), port);
        // The same four-tuple is taken: this one comes from another port.
        let second = transport.dial(server_addr, reuse()).unwrap().await.unwrap();
        assert_ne!(second.0.local_addr().unwrap().port(), port);
        drop((first, second));
        accepting.abort();
    }

    /// A transport whose dials from the listen port fail as a taken port does, and
    /// whose other dials succeed; it counts what it was asked.
    #[derive(Clone, Default)]
    struct TakenPort {
        dials: Arc<std::sync::Mutex<Vec<PortUse>>>,
    }

    impl Transport for TakenPort {
        type Output = PortUse;
        type Error = io::Error;
        type ListenerUpgrade = futures::future::Pending<io::Result<PortUse>>;
        type Dial = futures::future::Ready<io::Result<PortUse>>;

        fn listen_on(
            &mut self,
            _: ListenerId,
            _: Multiaddr,
        ) -> Result<(), TransportError<io::Error>> {
            Ok(())
        }

        fn remove_listener(&mut self, _: ListenerId) -> bool {
            false
        }

        fn dial(
            &mut self,
            _: Multiaddr,
            opts: DialOpts,
        ) -> Result<Self::Dial, TransportError<io::Error>> {
            self.dials.lock().unwrap().push(opts.port_use);
            Ok(futures::future::ready(match opts.port_use {
                PortUse::Reuse => Err(io::Error::from(io::ErrorKind::AddrInUse)),
                PortUse::New => Ok(PortUse::New),
            }))
        }

        fn poll(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_dial_whose_listen_port_is_in_use_is_made_again_from_a_new_port() {
        let taken = TakenPort::default();
        let fresh = taken.clone();
        let mut transport = ReuseOrNewPort {
            inner: taken.clone(),
            fresh: Arc::new(move || fresh.clone()),
        };
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let got = transport.dial(addr.clone(), reuse()).unwrap().await;
        assert_eq!(got.unwrap(), PortUse::New);
        assert_eq!(*taken.dials.lock().unwrap(), [PortUse::Reuse, PortUse::New]);
        // A dial that asked for a new port is not made twice.
        let new_port = DialOpts {
            port_use: PortUse::New,
            ..reuse()
        };
        transport.dial(addr, new_port).unwrap().await.unwrap();
        assert_eq!(taken.dials.lock().unwrap().len(), 3);
    }
}
