//! The standing protocol `/p2pd/standing/1.0.0`: "how do you see me?". A peer asks
//! another for the counters it keeps about the asker, and shows them to its owner
//! (`p2pd reputation --mine`). The answer is only the answering node's claim; it
//! changes nothing on the asking side.
//!
//! Counters are named from the answering node's side: `sent_to_you` are bytes it sent
//! the asker, `received_from_you` verified bytes it got from the asker.

use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError};

/// The libp2p protocol name.
pub const STANDING_PROTOCOL: &str = "/p2pd/standing/1.0.0";
/// Length of the optional nonce.
pub const STANDING_NONCE_LEN: usize = 16;
/// The largest request (with a nonce it is 24 bytes).
pub const MAX_STANDING_REQUEST_LEN: usize = 64;
/// The largest response.
pub const MAX_STANDING_RESPONSE_LEN: usize = 1024;
/// The longest ban reason.
pub const MAX_BAN_REASON_LEN: usize = 200;
/// The lowest score, in hundredths of a point (-100.00).
pub const MIN_SCORE_HUNDREDTHS: i32 = -10_000;
/// The highest score, in hundredths of a point (100.00).
pub const MAX_SCORE_HUNDREDTHS: i32 = 10_000;

/// The question. The nonce, if any, comes back in the answer, so an asker can match a
/// shown answer to the question it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StandingRequest {
    /// Random bytes to echo, or `None`.
    #[serde(with = "serde_bytes")]
    pub nonce: Option<[u8; STANDING_NONCE_LEN]>,
}

/// A ban the answering node holds against the asker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// Why, in words (e.g. "sent a corrupt chunk").
    pub reason: String,
    /// Until when, in seconds since the Unix epoch.
    pub until: u64,
}

/// What the answering node keeps about the asker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Bytes the answering node sent the asker.
    pub sent_to_you: u64,
    /// Verified bytes the answering node received from the asker.
    pub received_from_you: u64,
    /// Chunks from the asker that failed verification.
    pub corrupt_chunks: u32,
    /// Requests to the asker that timed out.
    pub timeouts: u32,
    /// Requests to the asker that it refused (choked, or did not have).
    pub refusals: u32,
    /// The answering node's score for the asker in hundredths of a point, from -10 000
    /// (-100.00) to 10 000 (100.00): an integer, because p2pd's CBOR has no floats.
    pub score_hundredths: i32,
    /// A ban in force, if any.
    pub ban: Option<Ban>,
    /// When the answering node first dealt with the asker (Unix seconds), if it knows.
    pub first_seen: Option<u64>,
    /// When it last did (Unix seconds).
    pub last_seen: Option<u64>,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StandingResponse {
    /// The counters.
    Known {
        /// The request's nonce.
        #[serde(with = "serde_bytes")]
        nonce: Option<[u8; STANDING_NONCE_LEN]>,
        /// What it keeps about the asker.
        standing: Standing,
    },
    /// The answering node keeps nothing about the asker.
    Unknown {
        /// The request's nonce.
        #[serde(with = "serde_bytes")]
        nonce: Option<[u8; STANDING_NONCE_LEN]>,
    },
    /// The asker asked too often; ask again after this many seconds.
    RateLimited {
        /// Seconds to wait.
        retry_after_secs: u32,
    },
}

/// Why a decoded answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StandingError {
    /// The score is outside -10 000 to 10 000 hundredths.
    #[error("score out of range")]
    Score,
    /// The ban reason is longer than [`MAX_BAN_REASON_LEN`] bytes or holds a control
    /// character.
    #[error("bad ban reason")]
    BanReason,
    /// `first_seen` is after `last_seen`.
    #[error("first seen after last seen")]
    SeenOrder,
}

impl StandingRequest {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a request of at most [`MAX_STANDING_REQUEST_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, MAX_STANDING_REQUEST_LEN)
    }
}

impl Standing {
    /// The score in points (-100.0 to 100.0).
    pub fn score(&self) -> f64 {
        f64::from(self.score_hundredths) / 100.0
    }

    /// Hundredths of a point for a score in points, rounded and clamped to the range
    /// (NaN gives 0).
    pub fn hundredths(score: f64) -> i32 {
        if score.is_nan() {
            return 0;
        }
        // The clamp keeps the product in i32's range, so the cast is exact.
        (score * 100.0).round().clamp(
            f64::from(MIN_SCORE_HUNDREDTHS),
            f64::from(MAX_SCORE_HUNDREDTHS),
        ) as i32
    }

    fn check(&self) -> Result<(), StandingError> {
        if !(MIN_SCORE_HUNDREDTHS..=MAX_SCORE_HUNDREDTHS).contains(&self.score_hundredths) {
            return Err(StandingError::Score);
        }
        if let Some(ban) = &self.ban {
            if ban.reason.len() > MAX_BAN_REASON_LEN || ban.reason.chars().any(char::is_control) {
                return Err(StandingError::BanReason);
            }
        }
        if let (Some(first), Some(last)) = (self.first_seen, self.last_seen) {
            if first > last {
                return Err(StandingError::SeenOrder);
            }
        }
        Ok(())
    }
}

impl StandingResponse {
    /// Encodes the response.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a response of at most [`MAX_STANDING_RESPONSE_LEN`] bytes and checks the
    /// score range, the ban reason and the order of the two times.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let response: StandingResponse = codec::decode(bytes, MAX_STANDING_RESPONSE_LEN)?;
        if let StandingResponse::Known { standing, .. } = &response {
            standing
                .check()
                .map_err(|e| DecodeError::Invalid(e.to_string()))?;
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    fn standing() -> Standing {
        Standing {
            sent_to_you: 10 << 20,
            received_from_you: 3 << 20,
            corrupt_chunks: 1,
            timeouts: 2,
            refusals: 0,
            score_hundredths: -3800,
            ban: Some(Ban {
                reason: "sent a corrupt chunk".into(),
                until: 1_700_003_600,
            }),
            first_seen: Some(1_700_000_000),
            last_seen: Some(1_700_000_100),
        }
    }

    #[test]
    fn round_trips() {
        for request in [
            StandingRequest { nonce: None },
            StandingRequest {
                nonce: Some([7; STANDING_NONCE_LEN]),
            },
        ] {
            let bytes = request.encode();
            assert!(bytes.len() <= MAX_STANDING_REQUEST_LEN);
            assert_eq!(StandingRequest::decode(&bytes).unwrap(), request);
        }
        for response in [
            StandingResponse::Known {
                nonce: Some([7; STANDING_NONCE_LEN]),
                standing: standing(),
            },
            StandingResponse::Known {
                nonce: None,
                standing: Standing {
                    ban: None,
                    first_seen: None,
                    last_seen: None,
                    score_hundredths: 10_000,
                    ..standing()
                },
            },
            StandingResponse::Unknown { nonce: None },
            StandingResponse::RateLimited {
                retry_after_secs: 10,
            },
        ] {
            let bytes = response.encode();
            assert_eq!(StandingResponse::decode(&bytes).unwrap(), response);
            for len in 0..bytes.len() {
                assert!(StandingResponse::decode(&bytes[..len]).is_err());
            }
        }
    }

    #[test]
    fn bad_answers_are_refused() {
        let long_reason = Standing {
            ban: Some(Ban {
                reason: "x".repeat(MAX_BAN_REASON_LEN + 1),
                until: 0,
            }),
            ..standing()
        };
        let escape = Standing {
            ban: Some(Ban {
                reason: "\u{1b}[2Jgotcha".into(),
                until: 0,
            }),
            ..standing()
        };
        let backwards = Standing {
            first_seen: Some(2),
            last_seen: Some(1),
            ..standing()
        };
        for bad in [
            Standing {
                score_hundredths: MAX_SCORE_HUNDREDTHS + 1,
                ..standing()
            },
            Standing {
                score_hundredths: i32::MIN,
                ..standing()
            },
            long_reason,
            escape,
            backwards,
        ] {
            let bytes = StandingResponse::Known {
                nonce: None,
                standing: bad.clone(),
            }
            .encode();
            assert!(
                matches!(
                    StandingResponse::decode(&bytes),
                    Err(DecodeError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            StandingRequest::decode(&[0; MAX_STANDING_REQUEST_LEN + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            StandingResponse::decode(&[0; MAX_STANDING_RESPONSE_LEN + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn scores_convert_to_hundredths_and_back() {
        assert_eq!(Standing::hundredths(-38.0), -3800);
        assert_eq!(Standing::hundredths(12.345), 1235);
        assert_eq!(Standing::hundredths(250.0), MAX_SCORE_HUNDREDTHS);
        assert_eq!(
            Standing::hundredths(f64::NEG_INFINITY),
            MIN_SCORE_HUNDREDTHS
        );
        assert_eq!(Standing::hundredths(f64::NAN), 0);
        assert_eq!(standing().score(), -38.0);
    }

    #[test]
    fn the_largest_answer_fits() {
        let largest = StandingResponse::Known {
            nonce: Some([0xff; STANDING_NONCE_LEN]),
            standing: Standing {
                sent_to_you: u64::MAX,
                received_from_you: u64::MAX,
                corrupt_chunks: u32::MAX,
                timeouts: u32::MAX,
                refusals: u32::MAX,
                score_hundredths: MIN_SCORE_HUNDREDTHS,
                ban: Some(Ban {
                    reason: "é".repeat(MAX_BAN_REASON_LEN / 2),
                    until: u64::MAX,
                }),
                first_seen: Some(u64::MAX),
                last_seen: Some(u64::MAX),
            },
        };
        let len = largest.encode().len();
        assert!(len <= MAX_STANDING_RESPONSE_LEN, "{len}");
        assert_eq!(
            StandingResponse::decode(&largest.encode()).unwrap(),
            largest
        );
    }

    /// The worked example of docs/protocol.md, pinned.
    #[test]
    fn worked_example() {
        let request = StandingRequest {
            nonce: Some([7; STANDING_NONCE_LEN]),
        };
        assert_eq!(
            HEXLOWER.encode(&request.encode()),
            "a1656e6f6e63655007070707070707070707070707070707"
        );
        assert_eq!(
            HEXLOWER.encode(&StandingRequest::default().encode()),
            "a1656e6f6e6365f6"
        );
        let response = StandingResponse::Known {
            nonce: Some([7; STANDING_NONCE_LEN]),
            standing: standing(),
        };
        assert_eq!(
            HEXLOWER.encode(&response.encode()),
            concat!(
                "a1656b6e6f776ea2656e6f6e63655007070707070707070707070707070707",
                "687374616e64696e67a9",
                "6b73656e745f746f5f796f751a00a00000",
                "7172656365697665645f66726f6d5f796f751a00300000",
                "6e636f72727570745f6368756e6b7301",
                "6874696d656f75747302",
                "687265667573616c7300",
                "7073636f72655f68756e64726564746873390ed7",
                "6362616ea266726561736f6e7473656e74206120636f7272757074206368756e6b",
                "65756e74696c1a6553ff10",
                "6a66697273745f7365656e1a6553f100",
                "696c6173745f7365656e1a6553f164"
            )
        );
        assert_eq!(response.encode().len(), 212);
        assert_eq!(
            HEXLOWER.encode(&StandingResponse::Unknown { nonce: None }.encode()),
            "a167756e6b6e6f776ea1656e6f6e6365f6"
        );
    }
}
