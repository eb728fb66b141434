//! Tests of the choking rules.

use super::*;

const MIB: u64 = 1 << 20;

fn peers(n: usize) -> Vec<PeerId> {
    (0..n).map(|_| PeerId::random()).collect()
}

/// The unchoked peers but the optimistic one.
fn regular_slots(choker: &Choker) -> HashSet<PeerId> {
    let optimistic = choker.optimistic.map(|(o, _)| o);
    choker
        .unchoked
        .iter()
        .filter(|x| Some(**x) != optimistic)
        .copied()
        .collect()
}

#[test]
fn everyone_is_served_while_there_is_room() {
    let mut choker = Choker::new(3);
    let now = Instant::now();
    let p = peers(3);
    assert!(p.iter().all(|peer| choker.allow(*peer, now)));
    let late = PeerId::random();
    assert!(!choker.allow(late, now));
}

#[test]
fn peers_that_give_back_get_the_slots_first() {
    let mut choker = Choker::new(3);
    let now = Instant::now();
    let p = peers(6);
    for peer in &p {
        choker.allow(*peer, now);
    }
    // p[4] and p[5] uploaded to us; the others gave nothing.
    let mut received = HashMap::new();
    received.insert(p[4], 5_000_000);
    received.insert(p[5], 1_000_000);
    choker.rechoke(now, &received);
    assert!(choker.is_unchoked(&p[4]) && choker.is_unchoked(&p[5]));
    // One optimistic slot goes to one of the freeloaders.
    let freeloaders = p[..4].iter().filter(|x| choker.is_unchoked(x)).count();
    assert_eq!(freeloaders, 1);
    // Ranking uses what they gave since the last rechoke: p[4] stops giving, p[0]
    // starts, p[5] gives 2 MB more. The regular slots go to p[0] and p[5], though
    // p[4]'s total (5 MB) is still above p[5]'s (3 MB).
    received.insert(p[0], 9_000_000);
    received.insert(p[5], 3_000_000);
    for peer in &p {
        choker.allow(*peer, now);
    }
    choker.rechoke(now + RECHOKE_INTERVAL, &received);
    let regular = regular_slots(&choker);
    assert_eq!(regular, HashSet::from([p[0], p[5]]));
}

#[test]
fn the_optimistic_slot_rotates_and_idle_peers_lose_interest() {
    let mut choker = Choker::new(2);
    let start = Instant::now();
    let p = peers(5);
    let mut seen = HashSet::new();
    for round in 0..40u32 {
        let now = start + OPTIMISTIC_INTERVAL * round;
        for peer in &p {
            choker.allow(*peer, now);
        }
        choker.rechoke(now, &HashMap::new());
        assert_eq!(p.iter().filter(|x| choker.is_unchoked(x)).count(), 2);
        seen.extend(p.iter().filter(|x| choker.is_unchoked(x)).copied());
    }
    assert!(
        seen.len() >= 4,
        "optimistic slot should rotate, saw {}",
        seen.len()
    );
    // Nobody asks for a while: nobody holds a slot.
    choker.rechoke(
        start + OPTIMISTIC_INTERVAL * 41 + INTEREST_TIMEOUT,
        &HashMap::new(),
    );
    assert!(p.iter().all(|x| !choker.is_unchoked(x)));
}

#[test]
fn a_slot_is_free_as_soon_as_its_peer_leaves() {
    let mut choker = Choker::new(8);
    let now = Instant::now();
    let p = peers(8);
    for peer in &p {
        assert!(choker.allow(*peer, now));
        choker.started(*peer);
        choker.finished(*peer, MIB, now);
    }
    let ninth = PeerId::random();
    assert!(!choker.allow(ninth, now));
    choker.left(&p[3]);
    assert!(choker.allow(ninth, now));
    assert!(!choker.is_unchoked(&p[3]));
}

#[test]
fn a_peer_that_stops_asking_loses_its_slot_to_the_next_that_asks() {
    // The peers asking here have held a slot before, so only this rule gives them one (a
    // newcomer may take an unused slot sooner: see the tests of slot_use.rs below).
    let mut choker = Choker::new(2);
    let start = Instant::now();
    let at = |ms: u64| start + Duration::from_millis(ms);
    let [a, b, c] = [PeerId::random(), PeerId::random(), PeerId::random()];
    assert!(choker.allow(c, start) && choker.allow(a, start));
    // c stops asking, a does not: once c has been idle for SLOT_IDLE, b takes its slot.
    assert!(choker.allow(a, start + SLOT_IDLE));
    assert!(choker.allow(b, start + SLOT_IDLE));
    assert!(!choker.is_unchoked(&c) && choker.is_unchoked(&a) && choker.is_unchoked(&b));
    // b's chunk is still being sent: never idle, however long it takes.
    choker.started(b);
    assert!(
        !choker.allow(c, at(3000)),
        "a asked 1 s ago, b is being sent a chunk"
    );
    assert!(choker.allow(c, at(4000)), "a stopped asking 2 s ago");
    assert!(!choker.is_unchoked(&a) && choker.is_unchoked(&b) && choker.is_unchoked(&c));
    // Once b's upload ends and b stops asking, b's slot goes to the next peer.
    choker.finished(b, MIB, at(5000));
    assert!(choker.allow(c, at(5000)), "c keeps asking");
    assert!(!choker.allow(a, at(6000)));
    assert!(choker.allow(c, at(6500)));
    assert!(choker.allow(a, at(7000)));
    assert!(!choker.is_unchoked(&b));
}

#[test]
fn a_newcomer_takes_the_slot_of_a_holder_that_leaves_it_unused() {
    let mut choker = Choker::new(2);
    let t0 = Instant::now();
    let ms = |n: u64| Duration::from_millis(n);
    let [slow, busy, newcomer] = [PeerId::random(), PeerId::random(), PeerId::random()];
    assert!(choker.allow(slow, t0) && choker.allow(busy, t0));
    for i in 0..20 {
        assert!(choker.allow(busy, t0 + ms(50 * i)));
        choker.started(busy);
        choker.finished(busy, MIB, t0 + ms(50 * i));
    }
    // The slow holder asks for a chunk now and then (never idle), two in its first second.
    for at in [t0, t0 + ms(600)] {
        assert!(choker.allow(slow, at));
        choker.started(slow);
        choker.finished(slow, MIB, at);
    }
    assert!(
        !choker.allow(newcomer, t0 + SLOT_TRIAL / 2),
        "slots still on trial"
    );
    assert!(choker.allow(slow, t0 + SLOT_TRIAL));
    let later = t0 + SLOT_TRIAL + ms(100);
    assert!(choker.allow(newcomer, later));
    assert!(choker.is_unchoked(&newcomer) && choker.is_unchoked(&busy));
    assert!(!choker.is_unchoked(&slow));
    // The slow peer held a slot before: it does not take one back from the newcomer,
    // unused as the newcomer's still is; it waits for the rechoke (or an idle slot).
    assert!(!choker.allow(slow, later + SLOT_TRIAL + ms(100)));
}

#[test]
fn newcomers_take_no_slot_being_used_given_for_or_asked_by_a_taker() {
    let mut choker = Choker::new(3);
    let t0 = Instant::now();
    let [sending, giver, unused] = [(); 3].map(|_| PeerId::random());
    for p in [sending, giver, unused] {
        assert!(choker.allow(p, t0));
    }
    // The giver sent us data: it counts as reciprocating.
    choker.rechoke(t0, &HashMap::from([(giver, 1 << 20)]));
    choker.started(sending);
    let later = t0 + SLOT_TRIAL * 3 / 2;
    let taker = PeerId::random();
    choker.rejudge(taker, 0.0, Taking::Refuses);
    assert!(
        !choker.allow(taker, later),
        "a taker takes no slot this way"
    );
    let newcomer = PeerId::random();
    assert!(choker.allow(newcomer, later));
    assert!(
        !choker.is_unchoked(&unused),
        "the only slot used for nothing"
    );
    assert!(choker.is_unchoked(&sending) && choker.is_unchoked(&giver));
    assert!(
        !choker.allow(PeerId::random(), later),
        "nothing left to take"
    );
}

#[test]
fn ten_thousand_peers_coming_and_going_keep_the_maps_bounded() {
    let mut choker = Choker::new(8);
    let start = Instant::now();
    for n in 0..10_000u32 {
        let now = start + Duration::from_millis(u64::from(n));
        let peer = PeerId::random();
        choker.allow(peer, now);
        choker.started(peer);
        choker.finished(peer, MIB, now);
        // Half of them disconnect; the others just stop asking.
        if n % 2 == 0 {
            choker.left(&peer);
        }
        assert!(choker.interest.len() <= MAX_TRACKED);
        assert!(choker.unchoked.len() <= 8);
    }
    assert!(choker.uploading.is_empty());
    // Once nobody has asked for a while, nobody is tracked.
    choker.rechoke(
        start + Duration::from_secs(10) + INTEREST_TIMEOUT,
        &HashMap::new(),
    );
    assert!(choker.interest.is_empty() && choker.unchoked.is_empty());
}

#[test]
fn a_taker_gets_only_the_optimistic_slot_even_when_slots_are_free() {
    let mut choker = Choker::new(4);
    let now = Instant::now();
    let [giver, t1, t2, t3] = [(); 4].map(|_| PeerId::random());
    choker.judge([
        (giver, 10.0, Taking::No),
        (t1, 0.0, Taking::Refuses),
        (t2, 0.0, Taking::Refuses),
        (t3, 0.0, Taking::Refuses),
    ]);
    assert!(choker.allow(giver, now));
    assert!(choker.allow(t1, now));
    // Two slots are free, but a taker already holds one.
    assert!(!choker.allow(t2, now) && !choker.allow(t3, now));
    // Rechoking keeps one taker at most, whatever the slots free.
    for round in 1..20u32 {
        let at = now + RECHOKE_INTERVAL * round;
        for p in [giver, t1, t2, t3] {
            choker.allow(p, at);
        }
        choker.rechoke(at, &HashMap::new());
        assert!(choker.is_unchoked(&giver), "round {round}");
        let takers = [t1, t2, t3]
            .iter()
            .filter(|p| choker.is_unchoked(p))
            .count();
        assert_eq!(takers, 1, "round {round}");
    }
}

#[test]
fn hoarders_are_held_back_only_while_someone_else_wants_chunks() {
    let mut choker = Choker::new(4);
    let now = Instant::now();
    let [h1, h2, honest] = [(); 3].map(|_| PeerId::random());
    // Two peers that passed nothing on, and nobody else: both are served in full.
    choker.judge([(h1, 0.0, Taking::Hoards), (h2, 0.0, Taking::Hoards)]);
    assert!(choker.allow(h1, now) && choker.allow(h2, now));
    choker.rechoke(now, &HashMap::new());
    assert!(choker.is_unchoked(&h1) && choker.is_unchoked(&h2));
    assert!(!choker.is_throttled(&h1) && !choker.is_throttled(&h2));
    // A downloader that is no taker asks: the hoarders are takers again, one at a
    // time in the optimistic slot, throttled.
    assert!(choker.allow(honest, now));
    choker.judge([
        (h1, 0.0, Taking::Hoards),
        (h2, 0.0, Taking::Hoards),
        (honest, 0.0, Taking::No),
    ]);
    assert!(choker.is_throttled(&h1) && choker.is_throttled(&h2));
    let later = now + RECHOKE_INTERVAL;
    for p in [h1, h2, honest] {
        choker.allow(p, later);
    }
    choker.rechoke(later, &HashMap::new());
    assert!(choker.is_unchoked(&honest));
    assert_eq!([h1, h2].iter().filter(|p| choker.is_unchoked(p)).count(), 1);
    // It leaves: the hoarders are served in full again.
    choker.left(&honest);
    assert!(!choker.is_throttled(&h1) && !choker.is_throttled(&h2));
    // A refuser is held back even alone.
    choker.rejudge(h1, 0.0, Taking::Refuses);
    assert!(choker.is_throttled(&h1) && !choker.is_throttled(&h2));
}

#[test]
fn while_trading_peers_that_refused_us_and_gave_nothing_lately_are_throttled() {
    let mut choker = Choker::new(8);
    let start = Instant::now();
    let [giver, refuser, newcomer] = [(); 3].map(|_| PeerId::random());
    for p in [giver, refuser] {
        choker.allow(p, start);
    }
    // Nobody gave anything: we are seeding, nobody is throttled.
    choker.rechoke(start, &HashMap::new());
    assert!(!choker.is_throttled(&giver) && !choker.is_throttled(&refuser));
    // The giver sends us data, the refuser answers our requests `Choked`: the
    // refuser shares one slot's worth from now on, though slots are free.
    let received = HashMap::from([(giver, 4 << 20), (refuser, 0)]);
    choker.refusals([(refuser, 2)]);
    let later = start + RECHOKE_INTERVAL;
    for p in [giver, refuser] {
        choker.allow(p, later);
    }
    choker.rechoke(later, &received);
    assert!(!choker.is_throttled(&giver) && choker.is_throttled(&refuser));
    // A newcomer we never asked anything could not give: served as usual.
    assert!(!choker.is_throttled(&newcomer));
    choker.started(refuser);
    assert!(!choker.allow(refuser, later), "one chunk at a time");
    choker.started(newcomer);
    assert!(choker.allow(newcomer, later), "not throttled");
    choker.finished(newcomer, MIB, later);
    assert!(choker.allow(giver, later));
    choker.finished(refuser, MIB, later);
    assert!(choker.allow(refuser, later));
    // One quiet period later (no new refusal, no new gift) nothing changes.
    let one_quiet = later + RECHOKE_INTERVAL;
    for p in [giver, refuser] {
        choker.allow(p, one_quiet);
    }
    choker.rechoke(one_quiet, &received);
    assert!(!choker.is_throttled(&giver) && choker.is_throttled(&refuser));
    // What counts is the recent past: nobody gave or refused since.
    let quiet = later + RECIPROCATION_MEMORY;
    for p in [giver, refuser] {
        choker.allow(p, quiet);
    }
    choker.rechoke(quiet, &received);
    assert!(!choker.is_throttled(&giver) && !choker.is_throttled(&refuser));
    // A taker is throttled even then.
    choker.judge([(refuser, 0.0, Taking::Refuses)]);
    assert!(choker.is_throttled(&refuser) && !choker.is_throttled(&giver));
}

#[test]
fn a_peer_that_had_nothing_we_lacked_is_not_throttled_for_giving_nothing() {
    // A peer lagging behind has nothing we lack: we never ask it, it never gives,
    // and it is served like the givers while we trade.
    let mut choker = Choker::new(8);
    let start = Instant::now();
    let [giver, lagging] = [(); 2].map(|_| PeerId::random());
    for round in 0..4u32 {
        let now = start + RECHOKE_INTERVAL * round;
        for p in [giver, lagging] {
            choker.allow(p, now);
        }
        let received = HashMap::from([(giver, u64::from(round + 1) << 20)]);
        choker.rechoke(now, &received);
        assert!(!choker.is_throttled(&lagging), "round {round}");
        choker.started(giver);
        assert!(choker.allow(lagging, now));
        choker.finished(giver, MIB, now);
    }
}

#[test]
fn a_throttled_peer_is_sent_one_chunk_at_a_time() {
    let mut choker = Choker::new(4);
    let now = Instant::now();
    let [giver, taker] = [(); 2].map(|_| PeerId::random());
    choker.judge([(giver, 10.0, Taking::No), (taker, 0.0, Taking::Refuses)]);
    assert!(choker.allow(taker, now));
    choker.started(taker);
    assert!(!choker.allow(taker, now), "a second chunk at once");
    choker.finished(taker, MIB, now);
    assert!(choker.allow(taker, now));
    // A giver has no such bound.
    for _ in 0..3 {
        assert!(choker.allow(giver, now));
        choker.started(giver);
    }
}

#[test]
fn throttled_peers_share_one_slot_of_the_upload_cap() {
    // One slot's share of what was really uploaded lately…
    assert_eq!(throttled_rate(Some(4 << 20), 8, 2 << 20), 256 << 10);
    assert_eq!(throttled_rate(None, 8, 16 << 20), 2 << 20);
    // …never more than a slot's share of the cap…
    assert_eq!(throttled_rate(Some(4 << 20), 8, 100 << 20), 512 << 10);
    assert_eq!(throttled_rate(Some(4 << 20), 1, 100 << 20), 4 << 20);
    // …and never nothing.
    assert_eq!(throttled_rate(Some(4 << 20), 8, 0), THROTTLED_FLOOR);
    assert_eq!(throttled_rate(Some(3), 8, 1 << 20), THROTTLED_FLOOR);
}

#[test]
fn a_seed_gives_its_regular_slots_to_the_peers_it_served_least() {
    let mut choker = Choker::new(3);
    let now = Instant::now();
    // Highest peer ids first, so that the peer-id tie-break alone would pick others.
    let mut p = peers(5);
    p.sort_by(|a, b| b.cmp(a));
    for peer in &p {
        choker.allow(*peer, now);
    }
    // Nobody gives a seed anything: p[0] and p[1] had the least so far.
    choker.served([
        (p[0], 1),
        (p[1], 2),
        (p[2], 3 << 20),
        (p[3], 4 << 20),
        (p[4], 5 << 20),
    ]);
    choker.rechoke(now + RECHOKE_INTERVAL, &HashMap::new());
    let regular = regular_slots(&choker);
    assert_eq!(regular, HashSet::from([p[0], p[1]]));
}

#[test]
fn a_peer_judged_a_taker_between_rechokes_loses_its_regular_slot_at_once() {
    let mut choker = Choker::new(4);
    let now = Instant::now();
    let [giver, freeloader] = [(); 2].map(|_| PeerId::random());
    assert!(choker.allow(giver, now) && choker.allow(freeloader, now));
    choker.rechoke(now, &HashMap::new());
    assert!(choker.is_unchoked(&freeloader));
    // Our download just found that it refuses us: no slot until it is the one taker
    // in the optimistic slot, and one chunk at a time.
    choker.rejudge(freeloader, 0.0, Taking::Refuses);
    assert!(!choker.is_unchoked(&freeloader) && choker.is_throttled(&freeloader));
    choker.rejudge(giver, 5.0, Taking::No);
    assert!(choker.is_unchoked(&giver) && !choker.is_throttled(&giver));
    // It gives back later: judged again, it is no taker any more.
    choker.rejudge(freeloader, 0.0, Taking::No);
    assert!(!choker.is_throttled(&freeloader));
}

#[test]
fn a_seed_gives_its_regular_slots_to_the_peers_that_pass_its_chunks_on() {
    // A seed receives nothing: what ranks its leechers is what they passed on of
    // the chunks only they got from it (`Transfers::contributions`).
    let mut choker = Choker::new(3);
    let start = Instant::now();
    let p = peers(6);
    for peer in &p {
        choker.allow(*peer, start);
    }
    choker.rechoke(start, &HashMap::new());
    let later = start + RECHOKE_INTERVAL;
    for peer in &p {
        choker.allow(*peer, later);
    }
    let passed_on = HashMap::from([(p[1], 3 << 20), (p[4], 1 << 20)]);
    choker.rechoke(later, &passed_on);
    assert_eq!(regular_slots(&choker), HashSet::from([p[1], p[4]]));
    // The peers that passed nothing on are not throttled for it (a seed asks
    // nothing of them, so they could not refuse it); one that refused its probes
    // is.
    assert!(p.iter().all(|x| !choker.is_throttled(x)));
    choker.refusals([(p[0], 1)]);
    let then = later + RECHOKE_INTERVAL;
    for peer in &p {
        choker.allow(*peer, then);
    }
    choker.rechoke(then, &passed_on);
    assert!(p.iter().all(|x| choker.is_throttled(x) == (*x == p[0])));
}

#[test]
fn equal_givers_are_ranked_by_score() {
    let mut choker = Choker::new(3);
    let now = Instant::now();
    let p = peers(5);
    for peer in &p {
        choker.allow(*peer, now);
    }
    // Nobody gave anything; p[3] and p[4] score best.
    choker.judge(
        p.iter()
            .enumerate()
            .map(|(i, peer)| (*peer, i as f64 * 10.0, Taking::No)),
    );
    choker.rechoke(now + RECHOKE_INTERVAL, &HashMap::new());
    assert!(choker.is_unchoked(&p[3]) && choker.is_unchoked(&p[4]));
}

#[test]
fn under_an_upload_cap_a_holder_taking_its_share_keeps_its_slot() {
    // Two holders each taking 1.5 MiB in a little over a second: unused against the
    // uncapped threshold (4 MiB/s), in use against a cap of 4 MiB/s for 2 slots (half a
    // slot's share: 1 MiB/s).
    let taken_from = |cap: Option<u64>| {
        let mut choker = Choker::new(2);
        choker.set_upload_cap(cap);
        let t0 = Instant::now();
        let [a, b, newcomer] = [(); 3].map(|_| PeerId::random());
        for p in [a, b] {
            assert!(choker.allow(p, t0));
            choker.started(p);
            choker.finished(p, 3 * MIB / 2, t0);
        }
        let later = t0 + SLOT_TRIAL + Duration::from_millis(100);
        choker.allow(newcomer, later)
    };
    assert!(taken_from(None));
    assert!(!taken_from(Some(4 * MIB)));
}
