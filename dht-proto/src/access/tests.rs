use super::*;
use crate::identity::tests::peer;
use data_encoding::HEXLOWER;

const SALT: [u8; SALT_LEN] = [0x11; SALT_LEN];
const NONCE: [u8; NONCE_LEN] = [0x22; NONCE_LEN];
const SHARE: [u8; SHARE_ID_LEN] = [0x5e, 0x1f, 0x0a, 0x33, 0x9c, 0x41, 0xd2, 0x07];

/// One derivation with the real parameters, shared by the tests (Argon2 is slow in a
/// debug build).
fn example_key() -> AccessKey {
    static KEY: std::sync::OnceLock<AccessKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| derive_key("correct horse", &SALT, KdfParams::DEFAULT).unwrap())
        .clone()
}

#[test]
fn the_right_password_proves_and_others_do_not() {
    let key = example_key();
    let (provider, fetcher) = (peer(1), peer(2));
    let proof = proof(&key, &NONCE, &provider, &fetcher, &SHARE).unwrap();
    assert!(check_proof(
        &key, &NONCE, &provider, &fetcher, &SHARE, &proof
    ));
    // The same proof is refused for another nonce, provider, fetcher or share.
    assert!(!check_proof(
        &key,
        &[0x23; NONCE_LEN],
        &provider,
        &fetcher,
        &SHARE,
        &proof
    ));
    assert!(!check_proof(
        &key,
        &NONCE,
        &peer(3),
        &fetcher,
        &SHARE,
        &proof
    ));
    assert!(!check_proof(
        &key,
        &NONCE,
        &provider,
        &peer(3),
        &SHARE,
        &proof
    ));
    assert!(!check_proof(
        &key,
        &NONCE,
        &provider,
        &fetcher,
        &[0; SHARE_ID_LEN],
        &proof
    ));
    // Swapping the two peers changes the proof.
    assert!(!check_proof(
        &key, &NONCE, &fetcher, &provider, &SHARE, &proof
    ));
    let mut flipped = proof;
    flipped[31] ^= 1;
    assert!(!check_proof(
        &key, &NONCE, &provider, &fetcher, &SHARE, &flipped
    ));
    // A wrong password gives another key.
    let wrong = derive_key("correct horsf", &SALT, KdfParams::DEFAULT).unwrap();
    assert_ne!(wrong, key);
    let wrong_proof = super::proof(&wrong, &NONCE, &provider, &fetcher, &SHARE).unwrap();
    assert!(!check_proof(
        &key,
        &NONCE,
        &provider,
        &fetcher,
        &SHARE,
        &wrong_proof
    ));
}

#[test]
fn passwords_are_normalized_to_nfc() {
    let composed = derive_key("café", &SALT, KdfParams::DEFAULT).unwrap();
    let decomposed = derive_key("cafe\u{301}", &SALT, KdfParams::DEFAULT).unwrap();
    assert_eq!(composed, decomposed);
    assert_eq!(format!("{composed:?}"), "AccessKey(..)");
    assert_eq!(AccessKey::from_bytes(composed.to_bytes()), composed);
}

#[test]
fn parameters_and_inputs_out_of_range_are_refused() {
    for params in [
        KdfParams { m: 8, t: 1, p: 1 },
        KdfParams {
            t: 1,
            ..KdfParams::DEFAULT
        },
        KdfParams {
            m: 1 << 20,
            ..KdfParams::DEFAULT
        },
        KdfParams {
            t: 100,
            ..KdfParams::DEFAULT
        },
        KdfParams {
            p: 0,
            ..KdfParams::DEFAULT
        },
        KdfParams {
            p: 16,
            ..KdfParams::DEFAULT
        },
    ] {
        assert_eq!(
            derive_key("pw", &SALT, params),
            Err(AccessError::Params(params))
        );
    }
    assert_eq!(
        derive_key("", &SALT, KdfParams::DEFAULT),
        Err(AccessError::PasswordLength)
    );
    assert_eq!(
        derive_key(&"x".repeat(MAX_PASSWORD_LEN + 1), &SALT, KdfParams::DEFAULT),
        Err(AccessError::PasswordLength)
    );
    let key = AccessKey::from_bytes([7; KEY_LEN]);
    assert_eq!(
        proof(&key, &NONCE, &[], &peer(2), &SHARE),
        Err(AccessError::PeerId)
    );
    assert_eq!(
        proof(&key, &NONCE, &peer(1), &[1; MAX_PEER_ID_LEN + 1], &SHARE),
        Err(AccessError::PeerId)
    );
    assert!(!check_proof(
        &key,
        &NONCE,
        &[],
        &peer(2),
        &SHARE,
        &[0; PROOF_LEN]
    ));
}

#[test]
fn messages_round_trip_and_are_bounded() {
    let requests = [
        AccessRequest::Challenge { share_id: SHARE },
        AccessRequest::Prove {
            share_id: SHARE,
            nonce: NONCE,
            proof: [9; PROOF_LEN],
        },
    ];
    for r in requests {
        let bytes = r.encode();
        assert!(bytes.len() <= MAX_ACCESS_REQUEST_LEN);
        assert_eq!(AccessRequest::decode(&bytes).unwrap(), r);
        for len in 0..bytes.len() {
            assert!(AccessRequest::decode(&bytes[..len]).is_err());
        }
    }
    let responses = [
        AccessResponse::Challenge {
            nonce: NONCE,
            salt: SALT,
            kdf: KdfParams::MAX,
        },
        AccessResponse::Granted {
            valid_secs: u32::MAX,
        },
        AccessResponse::Denied,
        AccessResponse::RateLimited {
            retry_after_secs: 30,
        },
        AccessResponse::UnknownShare,
        AccessResponse::Expired,
    ];
    for r in responses {
        let bytes = r.encode();
        assert!(bytes.len() <= MAX_ACCESS_RESPONSE_LEN);
        assert_eq!(AccessResponse::decode(&bytes).unwrap(), r);
        for len in 0..bytes.len() {
            assert!(AccessResponse::decode(&bytes[..len]).is_err());
        }
    }
    assert!(matches!(
        AccessRequest::decode(&[0; MAX_ACCESS_REQUEST_LEN + 1]),
        Err(DecodeError::TooLarge { .. })
    ));
    // A nonce of the wrong length does not decode.
    #[derive(Serialize)]
    #[serde(rename_all = "snake_case")]
    enum Fake {
        Challenge { share_id: serde_bytes::ByteBuf },
    }
    let short = codec::encode(&Fake::Challenge {
        share_id: serde_bytes::ByteBuf::from(vec![1; 7]),
    });
    assert!(AccessRequest::decode(&short).is_err());
}

/// The worked example of docs/protocol.md, pinned.
#[test]
fn worked_example() {
    // Checked independently with the reference implementation's command line tool:
    // echo -n "correct horse" | argon2 "$(printf '\x11%.0s' {1..16})" -id -t 2 -k 19456 -p 1 -l 32 -r
    let key = example_key();
    assert_eq!(
        HEXLOWER.encode(&key.to_bytes()),
        "616c328329ea1734133d756c8e0f9cb674ed0940bd847d0b8d0dbdec0af5c078"
    );
    let p = proof(&key, &NONCE, &peer(1), &peer(2), &SHARE).unwrap();
    assert_eq!(
        HEXLOWER.encode(&p),
        "7c974aa8641bdd9ccbf9b3bbbd0e77eb4d89a814ae3c8d2a952bbd00d608868f"
    );
    let hex = |bytes: Vec<u8>| HEXLOWER.encode(&bytes);
    assert_eq!(
        hex(AccessRequest::Challenge { share_id: SHARE }.encode()),
        "a1696368616c6c656e6765a16873686172655f6964485e1f0a339c41d207"
    );
    let challenge = AccessResponse::Challenge {
        nonce: NONCE,
        salt: SALT,
        kdf: KdfParams::DEFAULT,
    };
    assert_eq!(
        hex(challenge.encode()),
        concat!(
            "a1696368616c6c656e6765a3",
            "656e6f6e63655820",
            "2222222222222222222222222222222222222222222222222222222222222222",
            "6473616c7450",
            "11111111111111111111111111111111",
            "636b6466a3616d194c00617402617001"
        )
    );
    let prove = AccessRequest::Prove {
        share_id: SHARE,
        nonce: NONCE,
        proof: p,
    };
    assert_eq!(
        hex(prove.encode()),
        concat!(
            "a16570726f7665a3",
            "6873686172655f6964485e1f0a339c41d207",
            "656e6f6e63655820",
            "2222222222222222222222222222222222222222222222222222222222222222",
            "6570726f6f665820",
            "7c974aa8641bdd9ccbf9b3bbbd0e77eb4d89a814ae3c8d2a952bbd00d608868f"
        )
    );
    assert_eq!(prove.encode().len(), 106);
    assert_eq!(challenge.encode().len(), 90);
    assert_eq!(
        hex(AccessResponse::Granted { valid_secs: 3600 }.encode()),
        "a1676772616e746564a16a76616c69645f73656373190e10"
    );
    assert_eq!(hex(AccessResponse::Denied.encode()), "6664656e696564");
}
