//! The peers of one download: provider lookups in the DHT ([`Lookup`]), and for each
//! peer ([`PeerSlot`]) what it was asked, what it sent, how often it failed, and
//! whether it was dropped. Sending a peer what it should be asked next (the manifest
//! while we lack it, then our bitfield) and taking in its bitfields and `Have`s.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use dht_proto::{Bitfield, Cid, Request, Response};
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::{Engine, Outcome};
use crate::network::{Network, Reply, RequestError};
use crate::transfer::picker::Picker;
use crate::transfer::PeerNews;

/// While fewer peers than this are sending, the DHT is asked again for providers.
pub(super) const ENOUGH_PEERS: usize = 4;
/// While the download knows fewer peers than this, the DHT is also asked again, every
/// [`DISCOVERY_INTERVAL`]: peers that became providers since the last lookup join the
/// download, so that in a swarm every peer is known to many downloaders and asked by
/// them, rather than the first providers found serving most of it (BitTorrent clients
/// keep asking their tracker, and exchange peers, for the same reason).
pub(super) const WANTED_PEERS: usize = 32;
/// How often a download that has [`ENOUGH_PEERS`] sending but fewer than
/// [`WANTED_PEERS`] known looks for more. Longer than most small files take, so a
/// folder's files make no lookup of their own.
pub(super) const DISCOVERY_INTERVAL: Duration = Duration::from_secs(15);
/// The first wait before the DHT is asked again, doubled each time up to
/// [`MAX_LOOKUP_INTERVAL`]: a provider that just started (its record gets addresses ~1 s
/// after start) is found quickly, and a long download with few peers does not keep
/// querying the DHT every few seconds.
const FIRST_LOOKUP_INTERVAL: Duration = Duration::from_secs(1);
/// The longest wait between two provider lookups of one download.
const MAX_LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// Failed requests after which a peer is dropped from this download.
pub(super) const MAX_PEER_FAILURES: u32 = 3;
/// A peer that choked us, or that a limit of ours kept us from asking, is asked again
/// after this pause.
pub(super) const BACKOFF: Duration = Duration::from_millis(500);
/// Peers one download keeps track of. Past this, a newcomer takes the place of an idle
/// peer (dropped ones first, then those that sent the least, the longest known first),
/// or is turned away while every peer has chunk requests in flight.
pub(super) const MAX_PEERS: usize = 256;

/// The provider lookups of one download.
pub(super) struct Lookup {
    providers: mpsc::Receiver<PeerId>,
    open: bool,
    interval: Duration,
    next: Instant,
    /// When the last lookup started (or, before the first, when this was made).
    last_started: Instant,
}

impl Lookup {
    /// Starts the first lookup.
    pub(super) async fn start(net: &Network, cid: Cid) -> Self {
        Lookup {
            providers: net.find_providers(cid).await,
            open: true,
            interval: FIRST_LOOKUP_INTERVAL,
            next: Instant::now() + FIRST_LOOKUP_INTERVAL,
            last_started: Instant::now(),
        }
    }

    /// No lookup yet: the first starts when [`Lookup::again_if_due`] finds it due.
    pub(super) fn later() -> Self {
        let (_, providers) = mpsc::channel(1);
        Lookup {
            providers,
            open: false,
            interval: FIRST_LOOKUP_INTERVAL / 2,
            next: Instant::now() + FIRST_LOOKUP_INTERVAL,
            last_started: Instant::now(),
        }
    }

    /// Whether a lookup is running.
    pub(super) fn is_open(&self) -> bool {
        self.open
    }

    /// The next provider found (`None` when the lookup has ended).
    pub(super) async fn next(&mut self) -> Option<PeerId> {
        self.providers.recv().await
    }

    /// The running lookup has ended.
    pub(super) fn close(&mut self) {
        self.open = false;
    }

    /// Starts another lookup if none runs and the wait since the last is over.
    pub(super) async fn again_if_due(&mut self, net: &Network, cid: Cid) {
        if self.open || Instant::now() < self.next {
            return;
        }
        self.begin(net, cid).await;
    }

    /// Starts another lookup if none runs and the last started [`DISCOVERY_INTERVAL`]
    /// ago or more: the download has enough peers sending, and looks for more.
    pub(super) async fn more_if_due(&mut self, net: &Network, cid: Cid) {
        if self.open || self.last_started.elapsed() < DISCOVERY_INTERVAL {
            return;
        }
        self.begin(net, cid).await;
    }

    async fn begin(&mut self, net: &Network, cid: Cid) {
        self.providers = net.find_providers(cid).await;
        self.open = true;
        self.last_started = Instant::now();
        self.interval = (self.interval * 2).min(MAX_LOOKUP_INTERVAL);
        self.next = Instant::now() + self.interval;
    }
}

/// One peer of a download.
#[derive(Default)]
pub(super) struct PeerSlot {
    /// Chunk requests in flight to it.
    pub in_flight: usize,
    /// Verified bytes it sent in this run.
    pub bytes: u64,
    /// Failed requests since its last verified chunk.
    pub failures: u32,
    pub asked_bitfield: bool,
    pub asked_manifest: bool,
    /// Asked for its bitfield beside the manifest, before we knew the manifest (once).
    pub early_asked: bool,
    /// Its answer to that early bitfield, kept until the manifest is known.
    pub early_have: Option<Bitfield>,
    /// Asked nothing before this: it answered `Choked`, or a limit of ours refused a
    /// request to it.
    pub wait_until: Option<Instant>,
    /// Dropped from this download (it failed, sent garbage, or lacks the file).
    pub dropped: bool,
    /// When it was first asked for a chunk (its delivery rate is measured from then).
    pub first_asked: Option<Instant>,
    /// Its last verified chunk, or when requests began going out to it while it had
    /// none out: the clock of anti-snubbing.
    pub last_delivery: Option<Instant>,
    /// Its last measured round trip (ping), refreshed every 500 ms
    /// ([`Engine::refresh_round_trips`](super::Engine)): how many requests it gets at once
    /// (`requests::depth_for`).
    pub rtt: Option<std::time::Duration>,
    /// When it was admitted, in admission order.
    admitted: u64,
}

/// The peers of one download (at most [`MAX_PEERS`]).
#[derive(Default)]
pub(super) struct Peers {
    /// Only [`Peers::admit`] adds to it.
    pub slots: HashMap<PeerId, PeerSlot>,
    /// Peers admitted so far.
    admitted: u64,
}

/// The answer to a peer asking in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// It is (now) one of the download's peers; `evicted` made room for it.
    In { evicted: Option<PeerId> },
    /// Every peer has requests in flight: no room.
    Full,
}

impl Peers {
    /// Makes `peer` one of the download's peers, making room if needed.
    pub(super) fn admit(&mut self, peer: PeerId) -> Admission {
        if self.slots.contains_key(&peer) {
            return Admission::In { evicted: None };
        }
        let mut evicted = None;
        if self.slots.len() >= MAX_PEERS {
            let idle = self
                .slots
                .iter()
                .filter(|(_, s)| s.in_flight == 0)
                .min_by_key(|(_, s)| (!s.dropped, s.bytes, s.admitted))
                .map(|(p, _)| *p);
            let Some(idle) = idle else {
                return Admission::Full;
            };
            self.slots.remove(&idle);
            evicted = Some(idle);
        }
        self.admitted += 1;
        let slot = PeerSlot {
            admitted: self.admitted,
            ..PeerSlot::default()
        };
        self.slots.insert(peer, slot);
        Admission::In { evicted }
    }

    /// Peers not dropped that hold at least one chunk.
    pub(super) fn active(&self, picker: &Picker) -> usize {
        self.slots
            .iter()
            .filter(|(peer, slot)| {
                !slot.dropped && picker.peer_have(peer).is_some_and(|h| h.count() > 0)
            })
            .count()
    }

    /// Peers of the download that were not dropped.
    pub(super) fn known(&self) -> usize {
        self.slots.values().filter(|s| !s.dropped).count()
    }

    /// Peers with chunk requests in flight.
    pub(super) fn sending(&self) -> usize {
        self.slots.values().filter(|s| s.in_flight > 0).count()
    }

    /// Whether some peer that was not dropped is being asked for the manifest.
    fn manifest_asked(&self) -> bool {
        self.slots.values().any(|p| p.asked_manifest && !p.dropped)
    }
}

impl Engine {
    /// A peer that may hold the file: a provider found, or a connected peer.
    pub(super) fn add_peer(&mut self, peer: PeerId) {
        if peer == self.transfers.net().local_peer_id() || self.transfers.is_banned(&peer) {
            return;
        }
        if !self.admit_peer(peer) {
            return;
        }
        let Some(slot) = self.peers.slots.get_mut(&peer) else {
            return;
        };
        if slot.dropped {
            // A provider found again gets another chance.
            slot.dropped = false;
            slot.failures = 0;
            slot.asked_bitfield = false;
            slot.asked_manifest = false;
            slot.early_asked = false;
            slot.early_have = None;
        }
        self.ask(peer);
    }

    /// Makes `peer` one of the download's peers if there is room; an evicted idle peer
    /// is forgotten by the picker too. Returns whether it is in.
    fn admit_peer(&mut self, peer: PeerId) -> bool {
        match self.peers.admit(peer) {
            Admission::In { evicted } => {
                if let Some(evicted) = evicted {
                    self.picker.remove_peer(evicted);
                }
                true
            }
            Admission::Full => false,
        }
    }

    /// Asks every peer what it should be asked next.
    pub(super) fn ask_all(&mut self) {
        let peers: Vec<PeerId> = self.peers.slots.keys().copied().collect();
        for peer in peers {
            self.ask(peer);
        }
    }

    /// Sends whatever a peer should be asked next: the manifest if we lack it (from one
    /// peer at a time), and its bitfield. Until the manifest is known, we hold nothing of
    /// the file, so the bitfield is asked at once beside the manifest with an empty one
    /// of ours (a responder answers a bitfield of the wrong length with its own and
    /// ignores ours, docs/protocol.md §5): the answers are there when the manifest
    /// arrives, and the first chunk requests leave a round trip sooner.
    pub(super) fn ask(&mut self, peer: PeerId) {
        let net = self.transfers.net().clone();
        let cid = self.params.target.cid;
        let manifest_asked = self.file.manifest.is_none() && self.peers.manifest_asked();
        let Some(slot) = self.peers.slots.get_mut(&peer) else {
            return;
        };
        if slot.dropped || slot.wait_until.is_some_and(|t| t > Instant::now()) {
            return;
        }
        if self.file.manifest.is_none() {
            if !slot.asked_manifest && !manifest_asked {
                slot.asked_manifest = true;
                let net = net.clone();
                self.pending.push(Box::pin(async move {
                    Outcome::Manifest(peer, net.request(peer, Request::Manifest { cid }).await)
                }));
            }
            if !slot.early_asked && !slot.asked_bitfield {
                slot.early_asked = true;
                slot.asked_bitfield = true;
                self.pending.push(Box::pin(async move {
                    let have = Bitfield::new(0);
                    Outcome::EarlyBitfield(
                        peer,
                        net.request(peer, Request::Bitfield { cid, have }).await,
                    )
                }));
            }
            return;
        }
        if !slot.asked_bitfield {
            slot.asked_bitfield = true;
            let have = self.file.have.clone();
            self.pending.push(Box::pin(async move {
                Outcome::Bitfield(
                    peer,
                    net.request(peer, Request::Bitfield { cid, have }).await,
                )
            }));
        }
    }

    /// A request to `peer` failed for a reason of ours (too many requests in flight
    /// here): not its fault. It is asked again after [`BACKOFF`] (see `ask_all` on the
    /// loop's tick); `reset` says what to ask again.
    pub(super) fn retry_later(&mut self, peer: PeerId, reset: impl FnOnce(&mut PeerSlot)) {
        if let Some(slot) = self.peers.slots.get_mut(&peer) {
            reset(slot);
            slot.wait_until = Some(Instant::now() + BACKOFF);
        }
    }

    /// Drops a peer from this download: it is asked nothing more unless found again.
    pub(super) fn drop_peer(&mut self, peer: PeerId) {
        if let Some(slot) = self.peers.slots.get_mut(&peer) {
            if !slot.dropped {
                slot.dropped = true;
                self.picker.remove_peer(peer);
            }
        }
    }

    /// Records what a peer holds, if it covers the file's chunks.
    fn set_peer_have(&mut self, peer: PeerId, have: Bitfield) {
        let Some(manifest) = &self.file.manifest else {
            return;
        };
        // Decoding checked the bits against the bitfield's own length.
        if have.len() != manifest.chunk_count() {
            return;
        }
        let Some(slot) = self.peers.slots.get(&peer) else {
            return;
        };
        if slot.dropped {
            return;
        }
        self.picker.set_peer_have(peer, have);
    }

    /// Once the manifest is known: the early bitfields' answers kept so far are used
    /// (`use_early_have`); those still on their way are used when they come.
    pub(super) fn take_early_haves(&mut self) {
        let early: Vec<(PeerId, Bitfield)> = self
            .peers
            .slots
            .iter_mut()
            .filter_map(|(peer, slot)| slot.early_have.take().map(|have| (*peer, have)))
            .collect();
        for (peer, have) in early {
            self.use_early_have(peer, have);
        }
    }

    /// An early bitfield's answer, the manifest being known: it goes to the picker, and
    /// a peer that did not claim the whole file is asked again with our real bitfield: a
    /// responder that downloads the file itself sends its `Have`s only to peers whose
    /// bitfield it could check (docs/architecture.md, `Bitfield`).
    fn use_early_have(&mut self, peer: PeerId, have: Bitfield) {
        let chunks = self.file.manifest.as_ref().map(|m| m.chunk_count());
        if Some(have.len()) != chunks || !have.is_complete() {
            if let Some(slot) = self.peers.slots.get_mut(&peer) {
                slot.asked_bitfield = false;
            }
            self.ask(peer);
        }
        self.set_peer_have(peer, have);
    }

    /// The answer to the bitfield asked beside the manifest. Before the manifest it is
    /// kept (`take_early_haves`); after, it is used at once. Any other answer is not held
    /// against the peer: once the manifest is known it is asked again as usual (a
    /// folder's CID has no bitfield, and a peer lacking the file is found out by the
    /// manifest request).
    pub(super) fn on_early_bitfield(&mut self, peer: PeerId, result: Result<Reply, RequestError>) {
        let Some(slot) = self.peers.slots.get_mut(&peer) else {
            return;
        };
        match result {
            Ok(Reply::Message(Response::Bitfield { have })) => {
                if self.file.manifest.is_none() {
                    slot.early_have = Some(have);
                } else {
                    self.use_early_have(peer, have);
                }
            }
            _ => {
                slot.asked_bitfield = false;
                if self.file.manifest.is_some() {
                    self.ask(peer);
                }
            }
        }
    }

    /// A peer's bitfield or `Have` that reached the upload side.
    pub(super) fn on_news(&mut self, news: PeerNews) {
        match news {
            PeerNews::Bitfield(peer, have) => {
                if self.admit_peer(peer) {
                    self.set_peer_have(peer, have);
                }
            }
            PeerNews::Have(peer, index) => self.picker.peer_gained(peer, index),
        }
    }

    /// The answer to our bitfield.
    pub(super) fn on_bitfield(&mut self, peer: PeerId, result: Result<Reply, RequestError>) {
        match result {
            Ok(Reply::Message(Response::Bitfield { have })) => self.set_peer_have(peer, have),
            Err(RequestError::ConnectionClosed) => {
                // The connection was replaced (relayed → direct): ask again.
                if let Some(slot) = self.peers.slots.get_mut(&peer) {
                    slot.asked_bitfield = false;
                }
                self.ask(peer);
            }
            Err(e) if !e.blames_peer() => self.retry_later(peer, |slot| {
                slot.asked_bitfield = false;
            }),
            _ => self.drop_peer(peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full map of idle peers that sent 0, 1, 2… bytes, admitted in that order.
    fn full_map() -> (Peers, Vec<PeerId>) {
        let mut peers = Peers::default();
        let mut by_bytes = Vec::new();
        for bytes in 0..MAX_PEERS as u64 {
            let peer = PeerId::random();
            peers.admit(peer);
            if let Some(slot) = peers.slots.get_mut(&peer) {
                slot.bytes = bytes;
            }
            by_bytes.push(peer);
        }
        (peers, by_bytes)
    }

    #[test]
    fn ten_thousand_peers_coming_and_going_keep_the_map_bounded() {
        let mut peers = Peers::default();
        // A peer that is sending stays, whatever comes.
        let busy = PeerId::random();
        assert_eq!(peers.admit(busy), Admission::In { evicted: None });
        if let Some(slot) = peers.slots.get_mut(&busy) {
            slot.in_flight = 1;
        }
        for n in 0..10_000u64 {
            let peer = PeerId::random();
            assert!(matches!(peers.admit(peer), Admission::In { .. }));
            // Some give a little and leave (dropped); others just go quiet.
            if let Some(slot) = peers.slots.get_mut(&peer) {
                slot.bytes = n % 7;
                slot.dropped = n % 2 == 0;
            }
            assert!(peers.slots.len() <= MAX_PEERS);
        }
        assert_eq!(peers.slots.len(), MAX_PEERS);
        assert!(peers.slots.contains_key(&busy));
    }

    #[test]
    fn dropped_peers_make_room_first_then_those_that_sent_least() {
        let (mut peers, by_bytes) = full_map();
        if let Some(slot) = peers.slots.get_mut(&by_bytes[200]) {
            slot.dropped = true;
        }
        let room = peers.admit(PeerId::random());
        assert_eq!(
            room,
            Admission::In {
                evicted: Some(by_bytes[200])
            }
        );
        // Of the peers that sent nothing (the first one and the newcomer that took the
        // dropped peer's place), the one known longest goes first.
        let newcomer = PeerId::random();
        let room = peers.admit(newcomer);
        assert_eq!(
            room,
            Admission::In {
                evicted: Some(by_bytes[0])
            }
        );
        // A peer with requests out is never evicted, even one that sent nothing.
        if let Some(slot) = peers.slots.get_mut(&newcomer) {
            slot.in_flight = 1;
        }
        for _ in 0..3 {
            let room = peers.admit(PeerId::random());
            assert!(matches!(room, Admission::In { evicted: Some(p) } if p != newcomer));
        }
        assert!(peers.slots.contains_key(&newcomer));
        // With every peer sending, a newcomer waits outside.
        for slot in peers.slots.values_mut() {
            slot.in_flight = 1;
        }
        assert_eq!(peers.admit(PeerId::random()), Admission::Full);
        assert_eq!(peers.slots.len(), MAX_PEERS);
    }
}
