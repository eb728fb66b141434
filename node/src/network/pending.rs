//! Inbound handshakes in progress, bounded per IP address, per subnet and in all, and
//! making room rather than refusing: a transport wrapper ([`PendingGate`]) around the
//! upgraded TCP transport. When a bound is reached, the oldest handshake of the address
//! with the most handshakes in progress (within the full subnet, or anywhere) is dropped,
//! so connections that never finish their handshake cannot keep new peers out.
//!
//! Before that, each address and subnet may open only so many connections a second
//! ([`AcceptRate`]); one past its rate is closed as soon as it is accepted, with no
//! handshake at all, and never reaches the swarm: the swarm would give it a pending
//! connection, a handshake timer and an error event each, which under a flood of
//! reopened connections cost the node more CPU than the honest transfers it served.
//!
//! This sits in the transport because libp2p's swarm offers no way to end a pending
//! inbound connection: a behaviour can only refuse new ones, which is what let idle
//! sockets lock new peers out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::{AbortHandle, AbortRegistration, Abortable, Aborted};
use futures::{Future, FutureExt as _};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport;
use libp2p::Multiaddr;

use super::accept_rate::{AcceptRate, RateLimits};
use super::gate::{ip_of, subnet_of, Subnet, DEFAULT_MAX_INBOUND_PER_IP};

/// Bounds on inbound handshakes in progress.
#[derive(Debug, Clone, Copy)]
pub struct PendingLimits {
    /// From one IP address.
    pub per_ip: usize,
    /// From one /24 (IPv4) or /64 (IPv6).
    pub per_subnet: usize,
    /// In all.
    pub total: usize,
    /// New connections a second, from one address and from one subnet.
    pub rate: RateLimits,
}

impl Default for PendingLimits {
    fn default() -> Self {
        PendingLimits {
            per_ip: 8,
            per_subnet: 32,
            total: 64,
            rate: RateLimits::for_inbound_per_ip(DEFAULT_MAX_INBOUND_PER_IP),
        }
    }
}

struct Entry {
    ip: IpAddr,
    started: Instant,
    abort: AbortHandle,
}

/// The handshakes in progress, shared between the transport and their futures (which
/// remove themselves when they end or are dropped).
#[derive(Default)]
struct Table {
    entries: HashMap<u64, Entry>,
    next_id: u64,
}

impl Table {
    /// The handshake to drop among those `within` selects: the oldest of the address
    /// with the most handshakes in progress (ties: the address whose oldest is oldest).
    fn victim(&self, within: impl Fn(&Entry) -> bool) -> Option<u64> {
        let mut by_ip: HashMap<IpAddr, (usize, Instant, u64)> = HashMap::new();
        for (id, e) in self.entries.iter().filter(|(_, e)| within(e)) {
            let slot = by_ip.entry(e.ip).or_insert((0, e.started, *id));
            slot.0 += 1;
            if e.started < slot.1 {
                slot.1 = e.started;
                slot.2 = *id;
            }
        }
        by_ip
            .into_values()
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, _, id)| id)
    }

    fn evict(&mut self, id: u64) {
        if let Some(e) = self.entries.remove(&id) {
            tracing::debug!(ip = %e.ip, "dropping an unfinished inbound handshake to make room");
            e.abort.abort();
        }
    }

    /// Makes room for one more handshake from `ip`, then registers it.
    fn admit(&mut self, ip: IpAddr, limits: &PendingLimits) -> (u64, AbortRegistration) {
        let subnet: Subnet = subnet_of(ip);
        let from_ip = self.entries.values().filter(|e| e.ip == ip).count();
        let from_subnet = self
            .entries
            .values()
            .filter(|e| subnet_of(e.ip) == subnet)
            .count();
        let victim = if from_ip >= limits.per_ip {
            self.victim(|e| e.ip == ip)
        } else if from_subnet >= limits.per_subnet {
            self.victim(|e| subnet_of(e.ip) == subnet)
        } else if self.entries.len() >= limits.total {
            self.victim(|_| true)
        } else {
            None
        };
        if let Some(id) = victim {
            self.evict(id);
        }
        let (abort, registration) = AbortHandle::new_pair();
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                ip,
                started: Instant::now(),
                abort,
            },
        );
        (id, registration)
    }
}

/// A transport whose inbound upgrades (handshakes) are bounded as [`PendingLimits`] say.
pub struct PendingGate<T> {
    inner: T,
    limits: PendingLimits,
    table: Arc<Mutex<Table>>,
    rate: AcceptRate,
}

impl<T> PendingGate<T> {
    /// Wraps `inner`, an upgraded (authenticated, multiplexed) transport.
    pub fn new(inner: T, limits: PendingLimits) -> Self {
        PendingGate {
            inner,
            limits,
            table: Arc::default(),
            rate: AcceptRate::new(limits.rate),
        }
    }
}

/// Why a gated handshake ended without a connection.
#[derive(Debug, thiserror::Error)]
pub enum GateError<E> {
    /// The inner transport failed.
    #[error(transparent)]
    Inner(E),
    /// Dropped to make room for newer handshakes.
    #[error("handshake dropped to make room for other peers")]
    Evicted,
}

/// An inbound upgrade that can be dropped by the gate, and that leaves the gate's table
/// when it ends.
pub struct GatedUpgrade<F> {
    inner: Abortable<F>,
    id: Option<u64>,
    table: Arc<Mutex<Table>>,
}

impl<F> GatedUpgrade<F> {
    fn leave(&mut self) {
        if let Some(id) = self.id.take() {
            if let Ok(mut table) = self.table.lock() {
                table.entries.remove(&id);
            }
        }
    }
}

impl<F> Drop for GatedUpgrade<F> {
    fn drop(&mut self) {
        self.leave();
    }
}

impl<F, O, E> Future for GatedUpgrade<F>
where
    F: Future<Output = Result<O, E>> + Unpin,
{
    type Output = Result<O, GateError<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = match self.inner.poll_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(Ok(output))) => Ok(output),
            Poll::Ready(Ok(Err(e))) => Err(GateError::Inner(e)),
            Poll::Ready(Err(Aborted)) => Err(GateError::Evicted),
        };
        self.leave();
        Poll::Ready(result)
    }
}

impl<T> Transport for PendingGate<T>
where
    T: Transport + Unpin,
    T::ListenerUpgrade: Unpin,
{
    type Output = T::Output;
    type Error = GateError<T::Error>;
    type ListenerUpgrade = GatedUpgrade<T::ListenerUpgrade>;
    type Dial = futures::future::MapErr<T::Dial, fn(T::Error) -> GateError<T::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner
            .listen_on(id, addr)
            .map_err(|e| e.map(GateError::Inner))
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        use futures::TryFutureExt as _;
        self.inner
            .dial(addr, opts)
            .map(|dial| dial.map_err(GateError::Inner as fn(T::Error) -> GateError<T::Error>))
            .map_err(|e| e.map(GateError::Inner))
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = &mut *self;
        for _ in 0..MAX_CLOSED_PER_POLL {
            let event = match Pin::new(&mut this.inner).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(event) => event,
            };
            if let TransportEvent::Incoming { send_back_addr, .. } = &event {
                let ip = ip_of(send_back_addr);
                if ip.is_some_and(|ip| !this.rate.allow(ip, Instant::now())) {
                    tracing::trace!(addr = %send_back_addr, "inbound connection closed: too many from its address or subnet");
                    // Dropping the upgrade closes the socket before any handshake.
                    continue;
                }
            }
            return Poll::Ready(this.gate(event));
        }
        // Many closed in a row: let the swarm's other work run before the next ones.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Connections closed for their rate in one poll, at most, before the gate yields.
const MAX_CLOSED_PER_POLL: usize = 64;

impl<T> PendingGate<T>
where
    T: Transport + Unpin,
    T::ListenerUpgrade: Unpin,
{
    /// The event `event` of the inner transport, its inbound upgrade bounded.
    fn gate(
        &mut self,
        event: TransportEvent<T::ListenerUpgrade, T::Error>,
    ) -> TransportEvent<GatedUpgrade<T::ListenerUpgrade>, GateError<T::Error>> {
        match event {
            TransportEvent::Incoming {
                listener_id,
                upgrade,
                local_addr,
                send_back_addr,
            } => {
                let (id, registration) = match ip_of(&send_back_addr) {
                    Some(ip) => match self.table.lock() {
                        Ok(mut table) => {
                            let (id, registration) = table.admit(ip, &self.limits);
                            (Some(id), registration)
                        }
                        Err(_) => (None, AbortHandle::new_pair().1),
                    },
                    // Addresses without an IP (none over TCP) are not bounded here.
                    None => (None, AbortHandle::new_pair().1),
                };
                TransportEvent::Incoming {
                    listener_id,
                    upgrade: GatedUpgrade {
                        inner: Abortable::new(upgrade, registration),
                        id,
                        table: self.table.clone(),
                    },
                    local_addr,
                    send_back_addr,
                }
            }
            TransportEvent::NewAddress {
                listener_id,
                listen_addr,
            } => TransportEvent::NewAddress {
                listener_id,
                listen_addr,
            },
            TransportEvent::AddressExpired {
                listener_id,
                listen_addr,
            } => TransportEvent::AddressExpired {
                listener_id,
                listen_addr,
            },
            TransportEvent::ListenerClosed {
                listener_id,
                reason,
            } => TransportEvent::ListenerClosed {
                listener_id,
                reason: reason.map_err(GateError::Inner),
            },
            TransportEvent::ListenerError { listener_id, error } => TransportEvent::ListenerError {
                listener_id,
                error: GateError::Inner(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn room_is_made_at_the_expense_of_the_busiest_address() {
        let limits = PendingLimits {
            per_ip: 3,
            per_subnet: 5,
            total: 8,
            ..PendingLimits::default()
        };
        let mut table = Table::default();
        // A flood from one /24: 3 from .2, 2 from .3 fill the subnet.
        for a in ["10.0.0.2", "10.0.0.2", "10.0.0.2", "10.0.0.3", "10.0.0.3"] {
            table.admit(ip(a), &limits);
        }
        let count = |t: &Table, a: &str| t.entries.values().filter(|e| e.ip == ip(a)).count();
        // A newcomer in that subnet displaces one of the busiest address.
        table.admit(ip("10.0.0.9"), &limits);
        assert_eq!(count(&table, "10.0.0.2"), 2);
        assert_eq!(count(&table, "10.0.0.9"), 1);
        assert_eq!(table.entries.len(), 5);
        // Another subnet is untouched by the first one's limit, up to the total.
        for _ in 0..3 {
            table.admit(ip("10.9.9.9"), &limits);
        }
        assert_eq!(table.entries.len(), 8);
        // One address past its own limit displaces only its own oldest.
        table.admit(ip("10.9.9.9"), &limits);
        assert_eq!(count(&table, "10.9.9.9"), 3);
        assert_eq!(table.entries.len(), 8);
        // Past the total, the busiest address anywhere gives way; the newcomer stays.
        table.admit(ip("192.168.1.1"), &limits);
        assert_eq!(table.entries.len(), 8);
        assert_eq!(count(&table, "192.168.1.1"), 1);
        assert_eq!(count(&table, "10.0.0.9"), 1);
    }
}
