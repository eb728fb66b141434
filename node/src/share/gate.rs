//! Which peers may fetch a private file: the serving side's check on every transfer
//! request. A file is private while a password-protected share covers it: the share's
//! own CID, and for a folder also the folder's own files (those of no other folder and
//! not shared on their own). Their manifests, bitfields and chunks then go only to
//! peers that proved the password (`/p2pd/access/1.0.0`), for as long as their grant to
//! that share's CID lasts.

use std::collections::HashMap;
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
    /// Each private CID, with the CIDs of the password shares that cover it (a file
    /// shared by itself is its own; a folder's file is its folder's).
    private: HashMap<Cid, Vec<Cid>>,
    /// Grants by peer and share CID.
    grants: HashMap<(PeerId, Cid), Instant>,
}

/// A password share as the gate sees it: its CID and the other CIDs it covers.
pub struct Covered<'a> {
    /// The shared file or folder.
    pub root: Cid,
    /// A folder's own files (none for a file).
    pub members: &'a [Cid],
}

impl Gate {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the set of private files with what these password shares cover.
    pub fn set_private<'a>(&self, shares: impl IntoIterator<Item = Covered<'a>>) {
        let mut private: HashMap<Cid, Vec<Cid>> = HashMap::new();
        for share in shares {
            for cid in std::iter::once(&share.root).chain(share.members) {
                let roots = private.entry(*cid).or_default();
                if !roots.contains(&share.root) {
                    roots.push(share.root);
                }
            }
        }
        self.state().private = private;
    }

    /// Whether a file is private.
    pub fn is_private(&self, cid: &Cid) -> bool {
        self.state().private.contains_key(cid)
    }

    /// Lets `peer` fetch `root` (and what its share covers) until `until`.
    pub fn grant(&self, peer: PeerId, root: Cid, until: Instant) {
        let mut state = self.state();
        let now = Instant::now();
        state.grants.retain(|_, end| *end > now);
        if state.grants.len() >= MAX_GRANTS && !state.grants.contains_key(&(peer, root)) {
            let first_to_end = state.grants.iter().min_by_key(|(_, end)| **end);
            if let Some((key, _)) = first_to_end.map(|(k, e)| (*k, *e)) {
                state.grants.remove(&key);
            }
        }
        state.grants.insert((peer, root), until);
    }

    /// Ends every grant to a share's CID (its share was revoked).
    pub fn revoke(&self, root: &Cid) {
        self.state().grants.retain(|(_, c), _| c != root);
    }

    /// Whether `peer` may be sent anything of `cid`: any peer for a public file, only a
    /// peer with a running grant to a share covering it for a private one.
    pub fn may_serve(&self, peer: &PeerId, cid: &Cid) -> bool {
        let state = self.state();
        let Some(roots) = state.private.get(cid) else {
            return true;
        };
        let now = Instant::now();
        roots.iter().any(|root| {
            state
                .grants
                .get(&(*peer, *root))
                .is_some_and(|end| *end > now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cid(byte: u8) -> Cid {
        Cid::for_manifest_bytes(&[byte])
    }

    fn file(root: &Cid) -> Covered<'_> {
        Covered {
            root: *root,
            members: &[],
        }
    }

    #[test]
    fn private_files_go_only_to_granted_peers_while_the_grant_runs() {
        let gate = Gate::default();
        let (alice, bob) = (PeerId::random(), PeerId::random());
        let (secret, open) = (cid(1), cid(2));
        gate.set_private([file(&secret)]);
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
    fn a_grant_to_a_folder_covers_its_files_and_only_them() {
        let gate = Gate::default();
        let (alice, bob) = (PeerId::random(), PeerId::random());
        let (folder, other_folder) = (cid(10), cid(20));
        let (a, b, shared, elsewhere) = (cid(11), cid(12), cid(13), cid(21));
        gate.set_private([
            Covered {
                root: folder,
                members: &[a, b, shared],
            },
            Covered {
                root: other_folder,
                members: &[shared, elsewhere],
            },
        ]);
        for c in [folder, a, b, shared, other_folder, elsewhere] {
            assert!(gate.is_private(&c));
            assert!(!gate.may_serve(&alice, &c), "no grant yet");
        }
        gate.grant(alice, folder, Instant::now() + Duration::from_secs(60));
        for c in [folder, a, b, shared] {
            assert!(gate.may_serve(&alice, &c), "covered by the folder's grant");
            assert!(!gate.may_serve(&bob, &c), "per peer");
        }
        assert!(!gate.may_serve(&alice, &other_folder));
        assert!(
            !gate.may_serve(&alice, &elsewhere),
            "a grant to one folder opens nothing of another"
        );
        gate.grant(bob, other_folder, Instant::now() + Duration::from_secs(60));
        assert!(
            gate.may_serve(&bob, &shared),
            "either share opens a file both cover"
        );
        gate.revoke(&folder);
        assert!(!gate.may_serve(&alice, &a));
        assert!(gate.may_serve(&bob, &shared));
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
