//! The incremental picker against the full sort it replaced: the same choices with a
//! fresh order, the rules kept with a stale one, and the cost of a pick by file size
//! (`pick_cost_by_file_size`, ignored by default).

use super::*;

/// The picker before it was made incremental: every call sorts all the fresh chunks.
/// `peers` are the known peers' bitfields; picks are recorded in `requested`.
#[allow(clippy::too_many_arguments)]
fn full_sort_plan(
    have: &Bitfield,
    verifying: &HashSet<u32>,
    requested: &mut Requests,
    avail: &[u16],
    peers: &HashMap<PeerId, Bitfield>,
    ready: &[ReadyPeer],
    budget: usize,
    salt: u32,
) -> Vec<(PeerId, u32)> {
    let missing: Vec<u32> = (0..have.len())
        .filter(|i| !have.get(*i) && !verifying.contains(i))
        .collect();
    let mut fresh: Vec<u32> = missing
        .iter()
        .copied()
        .filter(|i| !requested.contains_key(i) && avail[*i as usize] > 0)
        .collect();
    fresh.sort_by_key(|i| (avail[*i as usize], rotation(*i, salt)));
    let endgame = fresh.is_empty();
    // Endgame candidates: the chunks of the peer with the most in flight first.
    let mut candidates: Vec<u32> = missing
        .iter()
        .copied()
        .filter(|i| requested.contains_key(i))
        .collect();
    let mut load: HashMap<PeerId, usize> = HashMap::new();
    for i in &candidates {
        for peer in &requested[i] {
            *load.entry(*peer).or_default() += 1;
        }
    }
    candidates.sort_by_key(|i| {
        let heaviest = requested[i].iter().map(|p| load[p]).max().unwrap_or(0);
        (std::cmp::Reverse(heaviest), *i)
    });
    let mut taken = vec![false; fresh.len()];
    let mut first_untaken = 0;
    let mut slots: Vec<ReadyPeer> = ready
        .iter()
        .filter(|r| r.free_slots > 0 && peers.contains_key(&r.peer))
        .copied()
        .collect();
    let mut budget = budget;
    let mut picks = Vec::new();
    while !slots.is_empty() {
        slots.retain_mut(|slot| {
            if budget == 0 || slot.free_slots == 0 {
                return false;
            }
            let holds = &peers[&slot.peer];
            let pick = if !endgame {
                while first_untaken < taken.len() && taken[first_untaken] {
                    first_untaken += 1;
                }
                let found =
                    (first_untaken..fresh.len()).find(|j| !taken[*j] && holds.get(fresh[*j]));
                found.map(|j| {
                    taken[j] = true;
                    fresh[j]
                })
            } else {
                // Duplicates go to idle peers only, one per round.
                if !slot.idle {
                    return false;
                }
                slot.idle = false;
                candidates.iter().copied().find(|i| {
                    holds.get(*i)
                        && requested
                            .get(i)
                            .is_some_and(|asked| asked.len() < 2 && !asked.contains(&slot.peer))
                })
            };
            let Some(index) = pick else {
                return false;
            };
            requested.entry(index).or_default().push(slot.peer);
            picks.push((slot.peer, index));
            budget -= 1;
            slot.free_slots -= 1;
            true
        });
    }
    picks
}

/// A download driven by random events: answers, failures, refusals, corrupt chunks,
/// `Have`s, peers leaving and coming back.
struct Swarm {
    picker: Picker,
    salt: u32,
    have: Bitfield,
    peers: Vec<PeerId>,
    /// Requests sent and not answered.
    in_flight: Vec<(PeerId, u32)>,
    /// Chunks received and not yet verified.
    verifying: Vec<u32>,
    rng: StdRng,
    now: Instant,
}

impl Swarm {
    fn new(n: u32, peer_count: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let salt = rng.gen();
        let mut swarm = Swarm {
            picker: Picker::new(n, salt),
            salt,
            have: Bitfield::new(n),
            peers: (0..peer_count).map(|_| PeerId::random()).collect(),
            in_flight: Vec::new(),
            verifying: Vec::new(),
            rng,
            now: Instant::now(),
        };
        // One seeder stays (but for a few chunks nobody has); the others hold parts.
        let seeder = swarm.peers[0];
        let lost: HashSet<u32> = (0..3).map(|_| swarm.rng.gen_range(0..n)).collect();
        swarm
            .picker
            .set_peer_have(seeder, holding(n, (0..n).filter(|i| !lost.contains(i))));
        for k in 1..peer_count {
            let have = swarm.random_bitfield();
            swarm.picker.set_peer_have(swarm.peers[k], have);
        }
        swarm
    }

    fn random_bitfield(&mut self) -> Bitfield {
        let n = self.have.len();
        let share = self.rng.gen_range(0.0..1.0);
        let chunks: Vec<u32> = (0..n).filter(|_| self.rng.gen_bool(share)).collect();
        holding(n, chunks)
    }

    /// One random event that is not a pick.
    fn event(&mut self) {
        let n = self.have.len();
        match self.rng.gen_range(0..10) {
            0..=3 if !self.in_flight.is_empty() => {
                let at = self.rng.gen_range(0..self.in_flight.len());
                let (peer, index) = self.in_flight.swap_remove(at);
                if self.have.get(index) || self.picker.is_verifying(index) {
                    self.picker.forget_request(index, peer);
                } else {
                    self.picker.start_verifying(index);
                    self.verifying.push(index);
                }
            }
            4 if !self.in_flight.is_empty() => {
                let at = self.rng.gen_range(0..self.in_flight.len());
                let (peer, index) = self.in_flight.swap_remove(at);
                if self.rng.gen_bool(0.5) {
                    self.picker.peer_lacks(peer, index);
                }
                self.picker.forget_request(index, peer);
            }
            5..=6 if !self.verifying.is_empty() => {
                let at = self.rng.gen_range(0..self.verifying.len());
                let index = self.verifying.swap_remove(at);
                let good = self.rng.gen_bool(0.8);
                self.picker.finish_verifying(index, good);
                if good {
                    self.have.set(index);
                }
            }
            7 => {
                let peer = self.peers[self.rng.gen_range(1..self.peers.len())];
                let index = self.rng.gen_range(0..n);
                self.picker.peer_gained(peer, index);
            }
            8 => {
                let peer = self.peers[self.rng.gen_range(1..self.peers.len())];
                if self.picker.peer_have(&peer).is_some() {
                    self.picker.remove_peer(peer);
                } else {
                    let have = self.random_bitfield();
                    self.picker.set_peer_have(peer, have);
                }
            }
            _ => {}
        }
    }

    fn ready(&self) -> Vec<ReadyPeer> {
        let mut ready = Vec::new();
        for peer in &self.peers {
            let busy = self.in_flight.iter().filter(|(p, _)| p == peer).count();
            if busy < DEPTH {
                ready.push(ReadyPeer {
                    peer: *peer,
                    free_slots: DEPTH - busy,
                    idle: busy == 0,
                });
            }
        }
        ready
    }

    fn budget(&self) -> usize {
        BUDGET.saturating_sub(self.in_flight.len() + self.verifying.len())
    }

    /// What the full-sort picker would pick now, and the requests it would leave.
    fn full_sort_picks(&self) -> (Vec<(PeerId, u32)>, Requests) {
        let mut requested = self.picker.requested.clone();
        let peers: HashMap<PeerId, Bitfield> = self
            .picker
            .peers
            .iter()
            .map(|(p, c)| (*p, c.have.clone()))
            .collect();
        let picks = full_sort_plan(
            &self.have,
            &self.picker.verifying,
            &mut requested,
            &self.picker.avail,
            &peers,
            &self.ready(),
            self.budget(),
            self.salt,
        );
        (picks, requested)
    }

    fn plan(&mut self) -> Vec<(PeerId, u32)> {
        let picks = self
            .picker
            .plan(&self.have, &self.ready(), self.budget(), self.now);
        self.in_flight.extend(&picks);
        picks
    }
}

/// With the order fresh (time moves on by the rebuild interval before each pick),
/// the incremental picker makes exactly the choices of the full sort.
#[test]
fn picks_match_a_full_sort_of_the_fresh_chunks() {
    for seed in 0..20 {
        let mut swarm = Swarm::new(300, 5, seed);
        for step in 0..2000 {
            swarm.event();
            swarm.now += REORDER_INTERVAL;
            let (expected, requested) = swarm.full_sort_picks();
            let picks = swarm.plan();
            assert_eq!(picks, expected, "seed {seed}, step {step}");
            assert_eq!(
                swarm.picker.requested, requested,
                "seed {seed}, step {step}"
            );
        }
    }
}

/// With the order often stale, every pick still obeys the rules, and the download
/// still gets every chunk that some peer holds.
#[test]
fn stale_order_picks_obey_the_rules_and_finish() {
    for seed in 0..20 {
        let mut swarm = Swarm::new(300, 5, 100 + seed);
        for step in 0..2000 {
            swarm.event();
            swarm.now += REORDER_INTERVAL / 10;
            let was_requested = swarm.picker.requested.clone();
            let picks = swarm.plan();
            // A plan is all fresh chunks or, in endgame, all second requests.
            let duplicates = picks
                .iter()
                .filter(|(_, i)| was_requested.contains_key(i))
                .count();
            assert!(duplicates == 0 || duplicates == picks.len(), "seed {seed}");
            for (peer, index) in picks {
                let at = format!("seed {seed}, step {step}, chunk {index}");
                assert!(
                    swarm.picker.avail[index as usize] > 0,
                    "{at}: nobody has it"
                );
                assert!(swarm.picker.peer_have(&peer).unwrap().get(index), "{at}");
                assert!(!swarm.have.get(index), "{at}: ours already");
                assert!(!swarm.picker.is_verifying(index), "{at}: being verified");
                let asked = &swarm.picker.requested[&index];
                assert!(asked.len() <= 2, "{at}: asked of {asked:?}");
                assert!(
                    !asked[..asked.len() - 1].contains(&peer),
                    "{at}: asked twice"
                );
            }
        }
        // Everything gets answered and stored now: the download completes but for
        // the chunks no peer holds.
        for _ in 0..1000 {
            swarm.now += REORDER_INTERVAL;
            swarm.plan();
            for (peer, index) in std::mem::take(&mut swarm.in_flight) {
                if swarm.have.get(index) || swarm.picker.is_verifying(index) {
                    swarm.picker.forget_request(index, peer);
                } else {
                    swarm.picker.start_verifying(index);
                    swarm.verifying.push(index);
                }
            }
            for index in std::mem::take(&mut swarm.verifying) {
                swarm.picker.finish_verifying(index, true);
                swarm.have.set(index);
            }
        }
        for index in 0..swarm.have.len() {
            if swarm.picker.avail[index as usize] > 0 {
                assert!(swarm.have.get(index), "seed {seed}, chunk {index}");
            }
        }
        assert!(swarm.picker.requested.is_empty(), "seed {seed}");
    }
}

/// Old and new cost of one scheduling pass at 1024 and 2^19 chunks (the most a file
/// may have), printed, not asserted. Run with
/// `cargo test --release -p p2pd pick_cost -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run by hand"]
fn pick_cost_by_file_size() {
    for n in [1024u32, 1 << 19] {
        let salt = 0x5eed;
        let peers: [PeerId; 5] = some_peers();
        // Four seeders and a peer with every other chunk.
        let mut bitfields: HashMap<PeerId, Bitfield> = HashMap::new();
        for peer in &peers[..4] {
            bitfields.insert(*peer, Bitfield::full(n));
        }
        bitfields.insert(peers[4], holding(n, (0..n).step_by(2)));

        let started = Instant::now();
        let mut picker = Picker::new(n, salt);
        let setup = started.elapsed();
        for (peer, have) in &bitfields {
            picker.set_peer_have(*peer, have.clone());
        }
        let mut have = Bitfield::new(n);
        let started = Instant::now();
        picker.rebuild_order(&have, Instant::now());
        let rebuild = started.elapsed();

        // Each pass: pick up to the budget, then four requests are answered and
        // stored (oldest first), as after four events of a running download.
        // An eighth of the file: far from the endgame.
        let calls = 20_000.min(n as usize / 8);
        let mut in_flight: VecDeque<u32> = VecDeque::new();
        let mut spent = Duration::ZERO;
        let now = Instant::now();
        for _ in 0..calls {
            let budget = BUDGET - in_flight.len();
            let started = Instant::now();
            let picks = picker.plan(&have, &ready(&peers, DEPTH), budget, now);
            spent += started.elapsed();
            in_flight.extend(picks.iter().map(|(_, i)| *i));
            for index in in_flight.drain(..4.min(in_flight.len())) {
                store(&mut picker, &mut have, index);
            }
        }
        let incremental = spent / calls as u32;

        // The same passes with the full sort.
        let calls = if n > 10_000 { 20 } else { n as usize / 8 };
        let avail = picker.avail.clone();
        let mut have = Bitfield::new(n);
        let mut requested = Requests::new();
        let mut in_flight: VecDeque<u32> = VecDeque::new();
        let mut spent = Duration::ZERO;
        for _ in 0..calls {
            let budget = BUDGET - in_flight.len();
            let started = Instant::now();
            let picks = full_sort_plan(
                &have,
                &HashSet::new(),
                &mut requested,
                &avail,
                &bitfields,
                &ready(&peers, DEPTH),
                budget,
                salt,
            );
            spent += started.elapsed();
            in_flight.extend(picks.iter().map(|(_, i)| *i));
            for index in in_flight.drain(..4.min(in_flight.len())) {
                requested.remove(&index);
                have.set(index);
            }
        }
        let full_sort = spent / calls as u32;
        println!(
            "{n:>7} chunks: full sort {full_sort:>12.3?} per pass, incremental \
             {incremental:>9.3?} per pass; once per download {setup:.3?}, \
             per rebuild {rebuild:.3?}"
        );
    }
}
