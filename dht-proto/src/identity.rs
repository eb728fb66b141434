//! How a signed record names its signer: an Ed25519 public key, and the libp2p peer id
//! that key gives, so a node can check "signed by the peer that sent it" without libp2p
//! in this crate.
//!
//! A libp2p Ed25519 peer id is the *identity* multihash of the protobuf-encoded public
//! key: `0x00 0x24` (identity, 36 bytes) then `0x08 0x01` (field 1, `KeyType::Ed25519`)
//! `0x12 0x20` (field 2, 32 bytes) and the key. Keys of 42 bytes or less are inlined this
//! way instead of hashed, which is why the key can be read back out of the peer id.
//!
//! A node signs with the secret half of its libp2p identity: with libp2p-identity,
//! `keypair.try_into_ed25519()?.to_bytes()[..32]` is the seed for
//! [`SigningKey::from_bytes`], or `keypair.sign(message)` gives the same signature (Ed25519
//! signatures are deterministic).

pub use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of the binary peer id of an Ed25519 key.
pub const ED25519_PEER_ID_LEN: usize = 38;
/// The longest binary peer id accepted anywhere in this crate (libp2p's own bound on a
/// peer id's multihash is 64 bytes of digest; with its header that stays under 70).
pub const MAX_PEER_ID_LEN: usize = 70;

/// The bytes a peer id of an Ed25519 key starts with: identity multihash of 36 bytes,
/// then the protobuf header of an Ed25519 `PublicKey`.
const ED25519_PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

/// The binary libp2p peer id (`PeerId::to_bytes`) of an Ed25519 public key.
pub fn ed25519_peer_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; ED25519_PEER_ID_LEN] {
    let mut out = [0u8; ED25519_PEER_ID_LEN];
    out[..ED25519_PEER_ID_PREFIX.len()].copy_from_slice(&ED25519_PEER_ID_PREFIX);
    out[ED25519_PEER_ID_PREFIX.len()..].copy_from_slice(public_key);
    out
}

/// The Ed25519 public key inlined in a binary peer id, or `None` for a peer id of
/// another key type (RSA, secp256k1, ECDSA) or bytes that are not a peer id.
pub fn ed25519_key_of_peer_id(peer_id: &[u8]) -> Option<[u8; PUBLIC_KEY_LEN]> {
    let key = peer_id.strip_prefix(&ED25519_PEER_ID_PREFIX)?;
    key.try_into().ok()
}

/// Whether `signature` is a valid strict Ed25519 signature of `message` by `public_key`.
/// Strict verification refuses small-order keys and non-canonical signatures, so one
/// entry has exactly one valid signature per key.
pub fn verify(
    public_key: &[u8; PUBLIC_KEY_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    key.verify_strict(message, &Signature::from_bytes(signature))
        .is_ok()
}

/// Signs `message` with `key`.
pub fn sign(key: &SigningKey, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    use ed25519_dalek::Signer;
    key.sign(message).to_bytes()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    /// A test signing key: the seed is 32 bytes of `seed`.
    pub(crate) fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// The binary peer id of [`key`]`(seed)`.
    pub(crate) fn peer(seed: u8) -> Vec<u8> {
        ed25519_peer_id(&key(seed).verifying_key().to_bytes()).to_vec()
    }

    /// The Ed25519 test key of the libp2p peer-id specification (also rust-libp2p's
    /// `keypair_protobuf_roundtrip_ed25519` test): seed and protobuf public key.
    const SPEC_SEED: &str = "7e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d";
    const SPEC_PUBLIC_PROTOBUF: &str =
        "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
    const SPEC_PEER_ID: &str = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

    fn spec_key() -> SigningKey {
        let seed: [u8; 32] = HEXLOWER
            .decode(SPEC_SEED.as_bytes())
            .unwrap()
            .try_into()
            .unwrap();
        SigningKey::from_bytes(&seed)
    }

    #[test]
    fn the_spec_key_gives_the_known_peer_id() {
        let public = spec_key().verifying_key().to_bytes();
        let peer_id = ed25519_peer_id(&public);
        assert_eq!(
            HEXLOWER.encode(&peer_id[2..]),
            SPEC_PUBLIC_PROTOBUF,
            "the multihash digest is the protobuf public key"
        );
        let parsed = libp2p_identity::PeerId::from_bytes(&peer_id).unwrap();
        assert_eq!(parsed.to_base58(), SPEC_PEER_ID);
        assert_eq!(ed25519_key_of_peer_id(&peer_id), Some(public));
    }

    #[test]
    fn agrees_with_libp2p_identity_for_many_keys() {
        for i in 0..64u8 {
            let seed = *blake3::hash(&[i]).as_bytes();
            let libp2p_secret = libp2p_identity::ed25519::SecretKey::try_from_bytes(seed).unwrap();
            let libp2p_pair = libp2p_identity::ed25519::Keypair::from(libp2p_secret);
            let libp2p_peer = libp2p_identity::PublicKey::from(libp2p_pair.public()).to_peer_id();

            let ours = SigningKey::from_bytes(&seed);
            let public = ours.verifying_key().to_bytes();
            assert_eq!(public, libp2p_pair.public().to_bytes());
            assert_eq!(ed25519_peer_id(&public).to_vec(), libp2p_peer.to_bytes());

            // Signatures made by libp2p's keypair verify here, and the other way round.
            let message = [b"p2pd test ", &[i][..]].concat();
            let theirs: [u8; 64] = libp2p_pair.sign(&message).try_into().unwrap();
            assert!(verify(&public, &message, &theirs));
            assert_eq!(sign(&ours, &message), theirs);
            assert!(libp2p_pair
                .public()
                .verify(&message, &sign(&ours, &message)));
        }
    }

    #[test]
    fn other_peer_ids_have_no_ed25519_key() {
        // A secp256k1 peer id (identity multihash of a 37-byte protobuf key).
        let mut secp = vec![0x00, 0x25, 0x08, 0x02, 0x12, 0x21];
        secp.extend([0x02; 33]);
        assert_eq!(ed25519_key_of_peer_id(&secp), None);
        // An RSA peer id (sha2-256 multihash).
        let mut rsa = vec![0x12, 0x20];
        rsa.extend([0x11; 32]);
        assert_eq!(ed25519_key_of_peer_id(&rsa), None);
        let good = ed25519_peer_id(&[7; 32]);
        assert_eq!(ed25519_key_of_peer_id(&good[..37]), None);
        assert_eq!(ed25519_key_of_peer_id(&[&good[..], &[0]].concat()), None);
        assert_eq!(ed25519_key_of_peer_id(&[]), None);
    }

    #[test]
    fn tampered_signatures_and_bad_keys_fail() {
        let key = spec_key();
        let public = key.verifying_key().to_bytes();
        let signature = sign(&key, b"message");
        assert!(verify(&public, b"message", &signature));
        assert!(!verify(&public, b"messagf", &signature));
        let mut bad = signature;
        bad[10] ^= 1;
        assert!(!verify(&public, b"message", &bad));
        // The identity point is a small-order key: strict verification refuses it.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert!(!verify(&identity_point, b"message", &signature));
    }
}
