//! StandingResponse::decode on arbitrary bytes. If it decodes: the score is from -10 000
//! to 10 000 hundredths, a ban reason is short and free of control characters, first seen
//! is not after last seen, and encode() decodes back to an equal response.
#![no_main]

mod roundtrip;

use dht_proto::standing::{
    StandingResponse, MAX_BAN_REASON_LEN, MAX_SCORE_HUNDREDTHS, MAX_STANDING_RESPONSE_LEN,
    MIN_SCORE_HUNDREDTHS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(response) = StandingResponse::decode(data) {
        if let StandingResponse::Known { standing, .. } = &response {
            assert!(
                (MIN_SCORE_HUNDREDTHS..=MAX_SCORE_HUNDREDTHS).contains(&standing.score_hundredths)
            );
            if let Some(ban) = &standing.ban {
                assert!(ban.reason.len() <= MAX_BAN_REASON_LEN);
                assert!(!ban.reason.chars().any(char::is_control));
            }
            if let (Some(first), Some(last)) = (standing.first_seen, standing.last_seen) {
                assert!(first <= last);
            }
        }
        roundtrip::check(
            &response,
            StandingResponse::encode,
            StandingResponse::decode,
            MAX_STANDING_RESPONSE_LEN,
        );
    }
});
