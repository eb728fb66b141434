//! Sending keys to servers: each server's queue of keys, the batches in flight and their
//! outcomes, and the end of a key's round (its next one scheduled, the tally logged).

use std::collections::VecDeque;
use std::time::Instant;

use libp2p::{kad, Multiaddr};

use super::{Action, Reprovider, BATCHES_PER_PEER, MAX_BATCHES_IN_FLIGHT, MAX_UNREACHABLE};
use crate::network::add_provider::MAX_BATCH_KEYS;
use crate::network::announce::ProviderKey;
use crate::network::keyspace::Point;

/// Keys waiting to be sent to one peer.
#[derive(Default)]
pub(super) struct Outbox {
    pub(super) keys: VecDeque<Point>,
    pub(super) in_flight: usize,
    pub(super) addrs: Vec<Multiaddr>,
}

/// Finished rounds not logged yet (logged once per poll, not once per key).
#[derive(Default)]
pub(super) struct Tally {
    pub(super) reached: u64,
    pub(super) peers: u64,
    pub(super) unreached: u64,
    pub(super) last: Option<ProviderKey>,
}

impl Reprovider {
    /// Hands out batches while the limits allow.
    pub(super) fn pump(&mut self, actions: &mut Vec<Action>) {
        let mut emptied = Vec::new();
        for (peer, outbox) in &mut self.outboxes {
            while outbox.in_flight < BATCHES_PER_PEER
                && self.batches.len() < MAX_BATCHES_IN_FLIGHT
                && !outbox.keys.is_empty()
            {
                let take = outbox.keys.len().min(MAX_BATCH_KEYS);
                self.queued_sends -= take;
                let points: Vec<Point> = outbox.keys.drain(..take).collect();
                let (points, keys): (Vec<Point>, Vec<kad::RecordKey>) = points
                    .into_iter()
                    .filter_map(|p| {
                        let key = self.provided.keys.get(&p)?;
                        key.round.is_some().then(|| (p, key.key.clone()))
                    })
                    .unzip();
                if keys.is_empty() {
                    continue;
                }
                self.next_id += 1;
                let id = self.next_id;
                self.batches.insert(id, (*peer, points));
                outbox.in_flight += 1;
                self.stats.batches += 1;
                actions.push(Action::Send {
                    id,
                    peer: *peer,
                    addrs: outbox.addrs.clone(),
                    keys,
                });
            }
            if outbox.keys.is_empty() && outbox.in_flight == 0 {
                emptied.push(*peer);
            }
        }
        for peer in emptied {
            self.outboxes.remove(&peer);
        }
    }

    /// The outcome of a batch. A peer that could not be reached is not tried again
    /// this round: the rest of its queue fails with it.
    pub(in crate::network) fn on_batch(
        &mut self,
        id: u64,
        written: bool,
        now: Instant,
        actions: &mut Vec<Action>,
    ) {
        let Some((peer, mut points)) = self.batches.remove(&id) else {
            return;
        };
        if !written && self.unreachable.len() < MAX_UNREACHABLE {
            self.unreachable.insert(peer, now);
        }
        if let Some(outbox) = self.outboxes.get_mut(&peer) {
            outbox.in_flight -= 1;
            if !written {
                self.queued_sends -= outbox.keys.len();
                points.extend(outbox.keys.drain(..));
            }
        }
        if written {
            self.stats.messages_sent += points.len() as u64;
        } else {
            tracing::debug!(%peer, keys = points.len(), "ADD_PROVIDER batch not delivered");
            self.stats.messages_failed += points.len() as u64;
        }
        for point in points {
            let Some(round) = self
                .provided
                .keys
                .get_mut(&point)
                .and_then(|k| k.round.as_mut())
            else {
                continue;
            };
            round.outstanding = round.outstanding.saturating_sub(1);
            if written {
                round.reached += 1;
            }
            if round.outstanding == 0 {
                let reached = round.reached;
                self.finish(&point, reached, now);
            }
        }
        self.poll(now, actions);
    }

    /// Ends a key's round and schedules its next one.
    pub(super) fn finish(&mut self, point: &Point, reached: u32, now: Instant) {
        let len = self.prefix_len();
        let Some(key) = self.provided.keys.get_mut(point) else {
            return;
        };
        self.stats.rounds += 1;
        let retry = key.finish_round(reached, now);
        let at = if key.again {
            key.again = false;
            now
        } else {
            retry.unwrap_or_else(|| {
                self.timetable
                    .next_turn(&point.prefix(len), now + self.timetable.interval / 2)
            })
        };
        key.next_at = Some(at);
        self.schedule.insert((at, *point));
        if reached > 0 {
            self.tally.reached += 1;
            self.tally.peers += u64::from(reached);
        } else {
            self.tally.unreached += 1;
        }
        self.tally.last = Some(key.subject.clone());
    }

    pub(super) fn log_tally(&mut self) {
        let tally = std::mem::take(&mut self.tally);
        let single = |n: u64| if n == 1 { tally.last.clone() } else { None };
        if tally.reached > 0 {
            let subject = single(tally.reached + tally.unreached).map(|s| s.to_string());
            tracing::info!(
                keys = tally.reached,
                peers = tally.peers / tally.reached,
                subject,
                "provider records sent to DHT servers"
            );
        }
        if tally.unreached > 0 {
            let subject = single(tally.reached + tally.unreached).map(|s| s.to_string());
            tracing::warn!(
                keys = tally.unreached,
                subject,
                "provider records reached no DHT server: they cannot be found yet (retried)"
            );
        }
    }
}
