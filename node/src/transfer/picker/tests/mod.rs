//! Tests of the chunk picker's rules: rarest first, never a chunk nobody holds, failed
//! chunks picked again, endgame, rounds, probes. Its choices against a full sort, and
//! the cost of a pick by file size, are in `against_full_sort.rs`.

use super::*;

mod against_full_sort;
use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Requests one peer may have in flight in these tests (as the engine's pipeline depth).
const DEPTH: usize = 6;
/// Chunks one download may hold at once in these tests (as the engine's limit).
const BUDGET: usize = 24;

fn some_peers<const N: usize>() -> [PeerId; N] {
    std::array::from_fn(|_| PeerId::random())
}

fn holding(len: u32, chunks: impl IntoIterator<Item = u32>) -> Bitfield {
    let mut have = Bitfield::new(len);
    for i in chunks {
        have.set(i);
    }
    have
}

fn ready(peers: &[PeerId], free_slots: usize) -> Vec<ReadyPeer> {
    peers
        .iter()
        .map(|peer| ReadyPeer {
            peer: *peer,
            free_slots,
            idle: true,
        })
        .collect()
}

/// Settles a chunk as the engine does after a good write.
fn store(picker: &mut Picker, have: &mut Bitfield, index: u32) {
    picker.start_verifying(index);
    picker.finish_verifying(index, true);
    have.set(index);
}

#[test]
fn the_rarest_chunk_is_picked_first() {
    let n = 32;
    let [a, b, c] = some_peers();
    let mut picker = Picker::new(n, 7);
    // Chunk 20 is held by one peer, 5 and 11 by two, the rest by all three.
    picker.set_peer_have(a, Bitfield::full(n));
    picker.set_peer_have(b, holding(n, (0..n).filter(|i| *i != 20)));
    picker.set_peer_have(c, holding(n, (0..n).filter(|i| ![5, 11, 20].contains(i))));
    let have = Bitfield::new(n);
    let now = Instant::now();

    let first = picker.plan(&have, &ready(&[a], 1), BUDGET, now);
    assert_eq!(first, vec![(a, 20)]);
    let mut next: Vec<u32> = picker
        .plan(&have, &ready(&[a], 2), BUDGET, now)
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    next.sort_unstable();
    assert_eq!(next, vec![5, 11]);
    // Peer c lacks the rare ones, so it gets a common one.
    let (_, common) = picker.plan(&have, &ready(&[c], 1), BUDGET, now)[0];
    assert!(![5, 11, 20].contains(&common));
}

#[test]
fn a_chunk_nobody_holds_is_never_picked() {
    let n = 40;
    let [a, b] = some_peers();
    let mut picker = Picker::new(n, 1);
    // Nobody ever holds 3; only b holds 30, and b leaves; a turns out not to hold 17.
    picker.set_peer_have(a, holding(n, (0..n).filter(|i| *i != 3 && *i != 30)));
    picker.set_peer_have(b, holding(n, [30]));
    picker.remove_peer(b);
    picker.peer_lacks(a, 17);
    let mut have = Bitfield::new(n);
    let mut now = Instant::now();
    let mut picked = HashSet::new();
    for _ in 0..20 {
        for (_, index) in picker.plan(&have, &ready(&[a], DEPTH), BUDGET, now) {
            assert!(picked.insert(index), "chunk {index} picked twice");
            store(&mut picker, &mut have, index);
        }
        now += REORDER_INTERVAL;
    }
    for lost in [3, 17, 30] {
        assert!(!picked.contains(&lost), "chunk {lost} has no holder");
    }
    assert_eq!(picked.len(), n as usize - 3);
}

#[test]
fn a_chunk_that_failed_verification_is_picked_again() {
    let n = 64;
    let [a, b] = some_peers();
    let mut picker = Picker::new(n, 3);
    picker.set_peer_have(a, Bitfield::full(n));
    picker.set_peer_have(b, Bitfield::full(n));
    let mut have = Bitfield::new(n);
    let now = Instant::now();
    let picks = picker.plan(&have, &ready(&[a], n as usize), n as usize, now);
    assert_eq!(picks.len(), n as usize);
    // Every chunk arrives; the earliest picked one is corrupt, and so is the last.
    let corrupt = [picks[0].1, picks[n as usize - 1].1];
    for (_, index) in &picks {
        picker.start_verifying(*index);
    }
    for (_, index) in &picks {
        let good = !corrupt.contains(index);
        picker.finish_verifying(*index, good);
        if good {
            have.set(*index);
        }
    }
    // Both come back, to the peer whose scan had passed them, as fresh picks.
    let mut again: Vec<u32> = picker
        .plan(&have, &ready(&[a], DEPTH), BUDGET, now)
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    again.sort_unstable();
    let mut expected = corrupt.to_vec();
    expected.sort_unstable();
    assert_eq!(again, expected);
    assert!(picker.requested.values().all(|asked| asked == &[a]));
}

#[test]
fn a_chunk_whose_request_failed_is_picked_again() {
    let n = 50;
    let [a, b] = some_peers();
    let mut picker = Picker::new(n, 11);
    picker.set_peer_have(a, Bitfield::full(n));
    picker.set_peer_have(b, holding(n, 0..25));
    let mut have = Bitfield::new(n);
    let now = Instant::now();
    let picks = picker.plan(&have, &ready(&[a, b], DEPTH), BUDGET, now);
    assert_eq!(picks.len(), 2 * DEPTH);
    // Everything else arrives; b's first request is refused (choked).
    let (_, refused) = picks[1];
    assert!(refused < 25);
    picker.forget_request(refused, b);
    for (_, index) in picks.iter().filter(|(_, i)| *i != refused) {
        store(&mut picker, &mut have, *index);
    }
    // Only b is ready: the chunk it held and gave back is its first pick again.
    let next = picker.plan(&have, &ready(&[b], 1), BUDGET, now);
    assert_eq!(next, vec![(b, refused)]);
}

#[test]
fn endgame_asks_a_second_idle_peer_one_per_round_never_a_third() {
    let n = 5;
    let peers: [PeerId; 3] = some_peers();
    let mut picker = Picker::new(n, 5);
    for peer in &peers {
        picker.set_peer_have(*peer, Bitfield::full(n));
    }
    let have = Bitfield::new(n);
    let now = Instant::now();
    let fresh = picker.plan(&have, &ready(&peers, 2), BUDGET, now);
    assert_eq!(fresh.len(), n as usize);
    // Chunk 4's answer is being verified: it needs no second request.
    let verified = fresh
        .iter()
        .find(|(_, i)| *i == 4)
        .map(|(_, i)| *i)
        .unwrap();
    picker.start_verifying(verified);

    // Peers still sending get no duplicates, however many slots they have free.
    let busy: Vec<ReadyPeer> = ready(&peers, DEPTH)
        .into_iter()
        .map(|r| ReadyPeer { idle: false, ..r })
        .collect();
    assert!(picker.plan(&have, &busy, BUDGET, now).is_empty());
    // Idle peers get one duplicate each per round.
    let mut dups = Vec::new();
    for _ in 0..n {
        let round = picker.plan(&have, &ready(&peers, DEPTH), BUDGET, now);
        let askers: HashSet<PeerId> = round.iter().map(|(p, _)| *p).collect();
        assert_eq!(
            askers.len(),
            round.len(),
            "one per peer per round: {round:?}"
        );
        dups.extend(round);
    }
    assert_eq!(dups.len(), n as usize - 1);
    for index in 0..n - 1 {
        let asked = &picker.requested[&index];
        assert_eq!(asked.len(), 2, "chunk {index} asked of {asked:?}");
        assert_ne!(asked[0], asked[1]);
    }
    assert_eq!(picker.requested[&verified].len(), 1);
    // Nothing more to ask, however many slots are free.
    assert!(picker
        .plan(&have, &ready(&peers, DEPTH), BUDGET, now)
        .is_empty());
}

/// An idle peer duplicates first the chunks of the peer with the most in flight: that
/// peer splits its upload the most ways and finishes its last chunk last.
#[test]
fn endgame_duplicates_the_busiest_peers_chunks_first() {
    let n = 5;
    let [light, heavy, idle]: [PeerId; 3] = some_peers();
    let mut picker = Picker::new(n, 9);
    picker.set_peer_have(light, holding(n, [0]));
    picker.set_peer_have(heavy, Bitfield::full(n));
    picker.set_peer_have(idle, Bitfield::full(n));
    let have = Bitfield::new(n);
    let now = Instant::now();
    let mut first = ready(&[light], 1);
    first.extend(ready(&[heavy], 4));
    let fresh = picker.plan(&have, &first, BUDGET, now);
    assert!(fresh.contains(&(light, 0)), "{fresh:?}");
    assert_eq!(fresh.iter().filter(|(p, _)| *p == heavy).count(), 4);

    let dup = picker.plan(&have, &ready(&[idle], DEPTH), BUDGET, now);
    assert_eq!(dup.len(), 1, "{dup:?}");
    let (peer, index) = dup[0];
    assert_eq!(peer, idle);
    assert_eq!(
        picker.requested[&index][0], heavy,
        "chunk {index} is the light peer's"
    );
}

#[test]
fn picks_spread_over_the_peers_in_rounds() {
    let n = 200;
    let peers: [PeerId; 4] = some_peers();
    let mut picker = Picker::new(n, 9);
    for peer in &peers {
        picker.set_peer_have(*peer, Bitfield::full(n));
    }
    let have = Bitfield::new(n);
    let now = Instant::now();
    // A budget smaller than the peers' room: one per peer per round, in the order given.
    let picks = picker.plan(&have, &ready(&peers, DEPTH), 10, now);
    let who: Vec<PeerId> = picks.iter().map(|(p, _)| *p).collect();
    let rounds: Vec<PeerId> = peers.iter().cycle().take(10).copied().collect();
    assert_eq!(who, rounds);
    // Enough budget: every peer's pipeline fills.
    let more = picker.plan(&have, &ready(&peers, DEPTH), 4 * DEPTH, now);
    for peer in &peers {
        assert_eq!(more.iter().filter(|(p, _)| p == peer).count(), DEPTH);
    }
    let distinct: HashSet<u32> = picks.iter().chain(&more).map(|(_, i)| *i).collect();
    assert_eq!(distinct.len(), picks.len() + more.len());
}

#[test]
fn a_new_bitfield_is_usable_at_once_and_a_have_soon() {
    let n = 30;
    let [a, b] = some_peers();
    let mut picker = Picker::new(n, 2);
    picker.set_peer_have(a, holding(n, 0..10));
    let mut have = Bitfield::new(n);
    let now = Instant::now();
    for (_, index) in picker.plan(&have, &ready(&[a], 10), BUDGET, now) {
        store(&mut picker, &mut have, index);
    }
    assert_eq!(have.count(), 10);
    // A bitfield arriving right after a pick is used at once.
    picker.set_peer_have(b, holding(n, 10..20));
    let picks = picker.plan(&have, &ready(&[b], 1), BUDGET, now);
    assert!(picks.len() == 1 && (10..20).contains(&picks[0].1));
    store(&mut picker, &mut have, picks[0].1);
    // A `Have` is used by the next rebuild, at most REORDER_INTERVAL later.
    picker.peer_gained(a, 25);
    let later = now + REORDER_INTERVAL;
    let picks = picker.plan(&have, &ready(&[a], 1), BUDGET, later);
    assert_eq!(picks, vec![(a, 25)]);
}

#[test]
fn a_probe_asks_for_a_chunk_asked_of_nobody_first() {
    let n = 8;
    let [suspect, other] = some_peers();
    let mut picker = Picker::new(n, 3);
    picker.set_peer_have(suspect, holding(n, [1, 2, 3]));
    picker.set_peer_have(other, holding(n, [1, 2, 3]));
    let mut have = Bitfield::new(n);
    store(&mut picker, &mut have, 1);
    // Chunk 2 is asked of the other peer already: the probe takes 3.
    let asked = picker.plan(&have, &ready(&[other], 1), 1, Instant::now());
    let asked_index = asked[0].1;
    let fresh = if asked_index == 2 { 3 } else { 2 };
    assert_eq!(picker.probe(&suspect, &have), Some(fresh));
    // Then, everything being asked, the chunk asked of the other peer: a probe needs an
    // answer, not a fresh chunk.
    assert_eq!(picker.probe(&suspect, &have), Some(asked_index));
    assert_eq!(picker.requesters(asked_index), &[other, suspect]);
    // Nothing left it holds and we lack that it was not asked for: no probe.
    assert_eq!(picker.probe(&suspect, &have), None);
    // A peer whose bitfield we do not know is not probed.
    assert_eq!(picker.probe(&PeerId::random(), &have), None);
}
