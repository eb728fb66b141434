//! The daemon's TCP stack for the bare-transport baselines (`bench` figure 7 and
//! `wan-push`): TCP with `nodelay`, secured and multiplexed by the daemon's own upgrade
//! (`p2pd::network::secure`: TLS 1.3 proposed alone, yamux), under a `libp2p-stream`
//! behaviour, with connections kept 60 s when idle; and the same with Noise, what the
//! daemon speaks with peers that refuse TLS.

use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt};
use libp2p::core::Transport as _;
use libp2p::{noise, tcp, yamux, Swarm};
use p2pd::network::secure::Upgrader;

/// A swarm of its own identity over the daemon's TCP stack.
pub fn daemon_tcp_swarm() -> anyhow::Result<Swarm<libp2p_stream::Behaviour>> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_other_transport(
            |key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                let upgrader = Upgrader::new(key)?;
                Ok(
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                        .and_then(move |conn, endpoint| upgrader.clone().upgrade(conn, endpoint)),
                )
            },
        )?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(idle)
        .build())
}

/// A swarm of its own identity over TCP, Noise and yamux.
pub fn tcp_noise_yamux_swarm() -> anyhow::Result<Swarm<libp2p_stream::Behaviour>> {
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| libp2p_stream::Behaviour::new())?
        .with_swarm_config(idle)
        .build())
}

/// Keeps idle connections 60 s.
pub fn idle(c: libp2p::swarm::Config) -> libp2p::swarm::Config {
    c.with_idle_connection_timeout(Duration::from_secs(60))
}

/// Reads `stream` to its end in 1 MiB reads, keeping nothing; returns the bytes read.
pub async fn drain(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(received);
        }
        received += n as u64;
    }
}
