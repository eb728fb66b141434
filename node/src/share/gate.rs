//! Which peers may fetch a private file: the serving side's check on every transfer
//! request. A file is private while a password-protected share of it exists; its
//! manifest, bitfield and chunks then go only to peers that proved the password
//! (`/p2pd/access/1.0.0`), for as long as their grant lasts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use dht_proto::Cid;
use libp2p::PeerId;

/// Grants kept at once; past this, the one that ends first makes room.
pub const MAX_GRANTS: usize = 4096;

/// The private files and the grants of peers to them (cheap to share behind an `Arc`).
#[derive(Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    private: HashSet<Cid>,
    grants: HashMap<(PeerId, Cid), Instant>,
}

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the set of private files.
    pub fn set_private(&self, cids: HashSet<Cid>) {
        self.state().private = cids;
    }

    /// Whether a file is private.
    pub fn is_private(&self, cid: &Cid) -> bool {
        self.state().private.contains(cid)
    }

    /// Lets `peer` fetch `cid` until `until`.
    pub fn grant(&self, peer: PeerId, cid: Cid, until: Instant) {
        let mut state = self.state();
        let now = Instant::now();
        state.grants.retain(|_, end| *end > now);
        if state.grants.len() >= MAX_GRANTS && !state.grants.contains_key(&(peer, cid)) {
            let first_to_end = state.grants.iter().min_by_key(|(_, end)| **end);
            if let Some((key, _)) = first_to_end.map(|(k, e)| (*k, *e)) {
                state.grants.remove(&key);
            }
        }
        state.grants.insert((peer, cid), until);
    }

    /// Ends every grant to a file (its share was revoked).
    pub fn revoke(&self, cid: &Cid) {
        self.state().grants.retain(|(_, c), _| c != cid);
    }

    /// Whether `peer` may be sent anything of `cid`: any peer for a public file, only a
    /// peer with a running grant for a private one.
    pub fn may_serve(&self, peer: &PeerId, cid: &Cid) -> bool {
        let state = self.state();
        !state.private.contains(cid)
            || state
                .grants
                .get(&(*peer, *cid))
                .is_some_and(|end| *end > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cid(byte: u8) -> Cid {
        Cid::for_manifest_bytes(&[byte])
    }

    #[test]
    fn private_files_go_only_to_granted_peers_while_the_grant_runs() {
        let gate = Gate::default();
        let (alice, bob) = (PeerId::random(), PeerId::random());
        let (secret, open) = (cid(1), cid(2));
        gate.set_private([secret].into());
        assert!(gate.may_serve(&alice, &open));
        assert!(!gate.may_serve(&alice, &secret));
        gate.grant(alice, secret, Instant::now() + Duration::from_secs(60));
        assert!(gate.may_serve(&alice, &secret));
        assert!(!gate.may_serve(&bob, &secret));
        gate.grant(bob, secret, Instant::now() - Duration::from_secs(1));
        assert!(
            !gate.may_serve(&bob, &secret),
            "an ended grant lets nothing through"
        );
        gate.revoke(&secret);
        assert!(!gate.may_serve(&alice, &secret));
    }

    #[test]
    fn grants_are_bounded() {
        let gate = Gate::default();
        let file = cid(3);
        let later = Instant::now() + Duration::from_secs(60);
        for _ in 0..MAX_GRANTS + 10 {
            gate.grant(PeerId::random(), file, later);
        }
        assert_eq!(gate.state().grants.len(), MAX_GRANTS);
    }
}
