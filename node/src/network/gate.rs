//! Connection limits: a small `NetworkBehaviour` ([`ConnectionGate`]) that bounds
//! pending and established connections in all, per peer, and (inbound) per IP address
//! and per subnet (/24 for IPv4, /64 for IPv6), so one host or one network cannot take
//! every slot. It replaces libp2p's `connection-limits`, which has no per-IP limit and
//! keeps an entry for every peer it ever saw. Every map here loses its entry when the
//! count behind it drops to zero.
//!
//! Handshakes still in progress are bounded, and evicted to make room, by the transport
//! wrapper in `pending.rs`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::hash::Hash;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, DialFailure, FromSwarm, ListenFailure,
    NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// A /24 of IPv4 or a /64 of IPv6: what one operator or one household usually holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subnet {
    /// The first three bytes of an IPv4 address.
    V4([u8; 3]),
    /// The first eight bytes of an IPv6 address.
    V6([u8; 8]),
}

/// The subnet an address belongs to (IPv4-mapped IPv6 addresses count as IPv4).
pub fn subnet_of(ip: IpAddr) -> Subnet {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Subnet::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => subnet_of(IpAddr::V4(v4)),
            None => {
                let o = v6.octets();
                let mut prefix = [0u8; 8];
                prefix.copy_from_slice(&o[..8]);
                Subnet::V6(prefix)
            }
        },
    }
}

/// The IP address of a (not relayed) multiaddr; `None` for relayed, memory or DNS ones.
pub fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    let mut ip = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(v4) => ip = Some(IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(IpAddr::V6(v6)),
            // Behind a relay, the IP is the relay's, not the peer's.
            Protocol::P2pCircuit => return None,
            _ => {}
        }
    }
    ip
}

/// The limits of the [`ConnectionGate`].
#[derive(Debug, Clone, Copy)]
pub struct GateLimits {
    /// Connections established, in all.
    pub max_established: u32,
    /// Connections established with one peer.
    pub max_per_peer: u32,
    /// Inbound connections established from one IP address.
    pub max_inbound_per_ip: u32,
    /// Inbound connections established from one subnet.
    pub max_inbound_per_subnet: u32,
    /// Inbound connections being set up.
    pub max_pending_inbound: u32,
    /// Outbound connections being set up (dials).
    pub max_pending_outbound: u32,
}

impl GateLimits {
    /// Our defaults around a total of `max_established`.
    pub fn with_max_established(max_established: u32) -> Self {
        GateLimits {
            max_established,
            max_per_peer: 4,
            max_inbound_per_ip: 32,
            max_inbound_per_subnet: 128,
            max_pending_inbound: 128,
            max_pending_outbound: 128,
        }
    }
}

/// Which limit refused a connection.
#[derive(Debug, thiserror::Error)]
#[error("connection limit reached: at most {limit} {what}")]
pub struct LimitReached {
    /// The limit.
    pub limit: u32,
    /// What it counts.
    pub what: &'static str,
}

fn check(count: u32, limit: u32, what: &'static str) -> Result<(), ConnectionDenied> {
    if count >= limit {
        return Err(ConnectionDenied::new(LimitReached { limit, what }));
    }
    Ok(())
}

/// Counts by key; a key whose count drops to zero is removed.
#[derive(Debug)]
struct Counts<K>(HashMap<K, u32>);

impl<K: Hash + Eq> Default for Counts<K> {
    fn default() -> Self {
        Counts(HashMap::new())
    }
}

impl<K: Hash + Eq> Counts<K> {
    fn get(&self, key: &K) -> u32 {
        self.0.get(key).copied().unwrap_or(0)
    }
    fn add(&mut self, key: K) {
        *self.0.entry(key).or_insert(0) += 1;
    }
    fn remove(&mut self, key: &K) {
        if let Some(n) = self.0.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(key);
            }
        }
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// What the gate remembers of an established connection.
struct Established {
    peer: PeerId,
    /// The remote IP of an inbound connection (only those are limited per IP).
    inbound_ip: Option<IpAddr>,
}

/// Bounds connections as [`GateLimits`] say.
pub struct ConnectionGate {
    limits: GateLimits,
    pending_inbound: HashSet<ConnectionId>,
    pending_outbound: HashSet<ConnectionId>,
    established: HashMap<ConnectionId, Established>,
    per_peer: Counts<PeerId>,
    per_ip: Counts<IpAddr>,
    per_subnet: Counts<Subnet>,
}

impl ConnectionGate {
    /// A gate with these limits.
    pub fn new(limits: GateLimits) -> Self {
        ConnectionGate {
            limits,
            pending_inbound: HashSet::new(),
            pending_outbound: HashSet::new(),
            established: HashMap::new(),
            per_peer: Counts::default(),
            per_ip: Counts::default(),
            per_subnet: Counts::default(),
        }
    }

    /// How many entries the gate holds in all its maps (for tests of boundedness).
    pub fn tracked_entries(&self) -> usize {
        self.pending_inbound.len()
            + self.pending_outbound.len()
            + self.established.len()
            + self.per_peer.len()
            + self.per_ip.len()
            + self.per_subnet.len()
    }

    fn check_established(
        &self,
        peer: &PeerId,
        inbound_ip: Option<IpAddr>,
    ) -> Result<(), ConnectionDenied> {
        let l = &self.limits;
        check(
            self.established.len() as u32,
            l.max_established,
            "connections",
        )?;
        check(
            self.per_peer.get(peer),
            l.max_per_peer,
            "connections per peer",
        )?;
        if let Some(ip) = inbound_ip {
            check(
                self.per_ip.get(&ip),
                l.max_inbound_per_ip,
                "inbound connections per IP address",
            )?;
            check(
                self.per_subnet.get(&subnet_of(ip)),
                l.max_inbound_per_subnet,
                "inbound connections per subnet",
            )?;
        }
        Ok(())
    }
}

impl NetworkBehaviour for ConnectionGate {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        check(
            self.pending_inbound.len() as u32,
            self.limits.max_pending_inbound,
            "inbound connections being set up",
        )?;
        self.pending_inbound.insert(connection_id);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending_inbound.remove(&connection_id);
        self.check_established(&peer, ip_of(remote_addr))?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _maybe_peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        check(
            self.pending_outbound.len() as u32,
            self.limits.max_pending_outbound,
            "dials at once",
        )?;
        self.pending_outbound.insert(connection_id);
        Ok(vec![])
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.pending_outbound.remove(&connection_id);
        self.check_established(&peer, None)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionEstablished(e) => {
                let inbound_ip = match e.endpoint {
                    ConnectedPoint::Listener { send_back_addr, .. } => ip_of(send_back_addr),
                    ConnectedPoint::Dialer { .. } => None,
                };
                self.per_peer.add(e.peer_id);
                if let Some(ip) = inbound_ip {
                    self.per_ip.add(ip);
                    self.per_subnet.add(subnet_of(ip));
                }
                self.established.insert(
                    e.connection_id,
                    Established {
                        peer: e.peer_id,
                        inbound_ip,
                    },
                );
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                if let Some(e) = self.established.remove(&connection_id) {
                    self.per_peer.remove(&e.peer);
                    if let Some(ip) = e.inbound_ip {
                        self.per_ip.remove(&ip);
                        self.per_subnet.remove(&subnet_of(ip));
                    }
                }
            }
            FromSwarm::DialFailure(DialFailure { connection_id, .. }) => {
                self.pending_outbound.remove(&connection_id);
            }
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.pending_inbound.remove(&connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_group_ipv4_by_24_and_ipv6_by_64() {
        let a: IpAddr = "10.1.2.3".parse().unwrap();
        let b: IpAddr = "10.1.2.200".parse().unwrap();
        let c: IpAddr = "10.1.3.3".parse().unwrap();
        assert_eq!(subnet_of(a), subnet_of(b));
        assert_ne!(subnet_of(a), subnet_of(c));
        let d: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let e: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        let f: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert_eq!(subnet_of(d), subnet_of(e));
        assert_ne!(subnet_of(d), subnet_of(f));
        let mapped: IpAddr = "::ffff:10.1.2.9".parse().unwrap();
        assert_eq!(subnet_of(mapped), subnet_of(a));
        assert_eq!(ip_of(&"/ip4/10.1.2.3/tcp/1".parse().unwrap()), Some(a));
        assert_eq!(
            ip_of(&"/ip4/10.1.2.3/tcp/1/p2p-circuit".parse().unwrap()),
            None
        );
    }
}
