//! Connection limits: a small `NetworkBehaviour` ([`ConnectionGate`]) that bounds
//! pending and established connections in all, per peer, and (inbound) per IP address
//! and per subnet (/24 for IPv4, /64 for IPv6), so one host or one network cannot take
//! every slot. When every slot is taken, a new inbound peer gets one by closing the
//! oldest inbound connection of the address that holds the most (if it holds at least
//! two more than the newcomer's address), rather than being refused. It replaces
//! libp2p's `connection-limits`, which has no per-IP limit and keeps an entry for every
//! peer it ever saw. Every map here loses its entry when the count behind it drops to
//! zero.
//!
//! Handshakes still in progress are bounded, and evicted to make room, by the transport
//! wrapper in `pending.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::hash::Hash;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use libp2p::core::transport::PortUse;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionClosed, ConnectionDenied, ConnectionId, DialFailure,
    FromSwarm, ListenFailure, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
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

/// Inbound connections from one IP address, unless `--max-inbound-per-ip` says otherwise.
pub const DEFAULT_MAX_INBOUND_PER_IP: u32 = 32;

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
            max_inbound_per_ip: DEFAULT_MAX_INBOUND_PER_IP,
            max_inbound_per_subnet: 128,
            max_pending_inbound: 128,
            max_pending_outbound: 128,
        }
    }
}

impl GateLimits {
    /// These limits with at most `n` inbound connections from one IP address (and at
    /// least as many from one subnet).
    pub fn with_inbound_per_ip(self, n: u32) -> Self {
        GateLimits {
            max_inbound_per_ip: n,
            max_inbound_per_subnet: self.max_inbound_per_subnet.max(n),
            ..self
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

/// [`LimitReached::what`] of the limit on established connections in all
/// (`--max-connections`).
pub const ALL_ESTABLISHED: &str = "connections";

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
    since: Instant,
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
    /// Connections closed to make room, not yet reported closed.
    closing: HashSet<ConnectionId>,
    /// Closes to ask the swarm for.
    to_close: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
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
            closing: HashSet::new(),
            to_close: VecDeque::new(),
            waker: None,
        }
    }

    /// When every slot is taken and a newcomer arrives from `ip`, the inbound
    /// connection to close for it: the oldest from the address holding the most inbound
    /// connections, if that address holds more than the newcomer's already does (so room
    /// goes to addresses that hold few, never from one honest peer to the next).
    fn make_room_for(&self, ip: IpAddr) -> Option<(PeerId, ConnectionId)> {
        let mut busiest: Option<(IpAddr, u32)> = None;
        for (other, n) in &self.per_ip.0 {
            if busiest.is_none_or(|(_, m)| *n > m) {
                busiest = Some((*other, *n));
            }
        }
        let (victim_ip, n) = busiest?;
        if n <= self.per_ip.get(&ip) + 1 {
            return None;
        }
        self.established
            .iter()
            .filter(|(id, e)| e.inbound_ip == Some(victim_ip) && !self.closing.contains(id))
            .min_by_key(|(_, e)| e.since)
            .map(|(id, e)| (e.peer, *id))
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
        &mut self,
        peer: &PeerId,
        inbound_ip: Option<IpAddr>,
    ) -> Result<(), ConnectionDenied> {
        let l = self.limits;
        let open = (self.established.len() - self.closing.len()) as u32;
        if open >= l.max_established {
            match inbound_ip.and_then(|ip| self.make_room_for(ip)) {
                Some((victim_peer, victim)) => {
                    tracing::debug!(peer = %victim_peer, "closing a connection to make room for a new peer");
                    self.closing.insert(victim);
                    self.to_close.push_back((victim_peer, victim));
                    if let Some(w) = self.waker.take() {
                        w.wake();
                    }
                }
                None => check(open, l.max_established, ALL_ESTABLISHED)?,
            }
        }
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
                        since: Instant::now(),
                    },
                );
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                self.closing.remove(&connection_id);
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

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.to_close.pop_front() {
            Some((peer_id, connection)) => Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::One(connection),
            }),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
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

    fn inbound(from: &str) -> (ConnectedPoint, Multiaddr) {
        let addr: Multiaddr = format!("/ip4/{from}/tcp/1").parse().unwrap();
        (
            ConnectedPoint::Listener {
                local_addr: "/ip4/127.0.0.1/tcp/2".parse().unwrap(),
                send_back_addr: addr.clone(),
            },
            addr,
        )
    }

    /// Admits an inbound connection the way the swarm does; whether it was allowed.
    fn connect(gate: &mut ConnectionGate, id: usize, from: &str) -> bool {
        let (endpoint, addr) = inbound(from);
        let local: Multiaddr = "/ip4/127.0.0.1/tcp/2".parse().unwrap();
        let connection_id = ConnectionId::new_unchecked(id);
        let peer = PeerId::random();
        if gate
            .handle_established_inbound_connection(connection_id, peer, &local, &addr)
            .is_err()
        {
            return false;
        }
        gate.on_swarm_event(FromSwarm::ConnectionEstablished(
            libp2p::swarm::behaviour::ConnectionEstablished {
                peer_id: peer,
                connection_id,
                endpoint: &endpoint,
                failed_addresses: &[],
                other_established: 0,
            },
        ));
        true
    }

    fn closes(gate: &mut ConnectionGate) -> Vec<ConnectionId> {
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut out = vec![];
        while let Poll::Ready(ToSwarm::CloseConnection { connection, .. }) = gate.poll(&mut cx) {
            match connection {
                CloseConnection::One(id) => out.push(id),
                CloseConnection::All => panic!("closes one connection at a time"),
            }
        }
        out
    }

    #[test]
    fn a_full_node_makes_room_for_a_new_address_at_the_busiest_ones_expense() {
        let mut limits = GateLimits::with_max_established(4);
        limits.max_inbound_per_ip = 10;
        let mut gate = ConnectionGate::new(limits);
        for id in 0..3 {
            assert!(connect(&mut gate, id, "10.0.0.1"));
        }
        assert!(connect(&mut gate, 3, "10.0.1.1"));
        // Full: a newcomer from a new address is let in, and the busiest address's
        // oldest connection is closed for it.
        assert!(connect(&mut gate, 4, "10.0.2.1"));
        assert_eq!(closes(&mut gate), vec![ConnectionId::new_unchecked(0)]);
        // Another from the busiest address itself gets nothing at others' expense.
        assert!(!connect(&mut gate, 5, "10.0.0.1"));
        // Nor does anyone when every address holds about as many.
        let mut even = ConnectionGate::new(GateLimits::with_max_established(2));
        assert!(connect(&mut even, 0, "10.0.0.1"));
        assert!(connect(&mut even, 1, "10.0.1.1"));
        assert!(!connect(&mut even, 2, "10.0.2.1"));
        assert!(closes(&mut even).is_empty());
    }

    #[test]
    fn the_per_ip_bound_is_the_configured_one_and_the_subnet_follows_it() {
        let defaults = GateLimits::with_max_established(2048);
        let mut gate = ConnectionGate::new(defaults);
        for id in 0..DEFAULT_MAX_INBOUND_PER_IP as usize {
            assert!(connect(&mut gate, id, "127.0.0.1"));
        }
        assert!(!connect(&mut gate, 999, "127.0.0.1"));

        // Raised (`--max-inbound-per-ip 200`): past the default, and past the subnet's
        // default of 128 too.
        let raised = defaults.with_inbound_per_ip(200);
        assert_eq!(raised.max_inbound_per_subnet, 200);
        let mut gate = ConnectionGate::new(raised);
        for id in 0..200 {
            assert!(connect(&mut gate, id, "127.0.0.1"), "connection {id}");
        }
        assert!(!connect(&mut gate, 999, "127.0.0.1"));
        // Lowered: the subnet bound stays as it was.
        assert_eq!(defaults.with_inbound_per_ip(2).max_inbound_per_subnet, 128);
    }
}
