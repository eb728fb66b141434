//! The circuit relay v2 reservation, as p2pd reads it itself: a `RESERVE` request on
//! the hop protocol (`/libp2p/circuit/relay/0.2.0/hop`) and the relay's `STATUS`
//! answer, whose `reservation.expire` (Unix seconds) libp2p's relay client keeps to
//! itself. Sent on the connection that already holds the reservation, a `RESERVE` is a
//! refresh (the libp2p circuit v2 specification), so the answer names the reservation's
//! expiry from then on.
//!
//! The messages are the specification's `HopMessage` protobuf, each framed by an
//! unsigned-varint length:
//!
//! ```text
//! HopMessage { type (1): RESERVE = 0 | CONNECT = 1 | STATUS = 2, peer (2),
//!              reservation (3): Reservation { expire (1): uint64, addrs (2): bytes…, voucher (3): bytes },
//!              limit (4): Limit { duration (1): uint32 seconds, data (2): uint64 bytes },
//!              status (5): OK = 100 | 200… refusals | 400… errors }
//! ```
//!
//! The decoder is strict: a message over [`MAX_HOP_MESSAGE_LEN`] (libp2p-relay's own
//! limit) is refused before parsing; a missing type or status, a type other than
//! `STATUS`, a known field with the wrong wire type, a reservation or limit given
//! twice, or a duration over `u32` is refused; unknown fields are skipped, as protobuf
//! wants. At most [`MAX_RELAY_ADDRS`] relay addresses are kept.

use crate::kademlia::{put_bytes, put_varint};
use crate::protobuf::{self, Fields, FrameError, Value, WireError};

/// The hop protocol of circuit relay v2.
pub const HOP_PROTOCOL: &str = "/libp2p/circuit/relay/0.2.0/hop";
/// The largest hop message accepted (libp2p-relay's `MAX_MESSAGE_SIZE`).
pub const MAX_HOP_MESSAGE_LEN: usize = 4096;
/// Most relay addresses kept from one reservation.
pub const MAX_RELAY_ADDRS: usize = 32;

const TYPE_RESERVE: u64 = 0;
const TYPE_STATUS: u64 = 2;

/// Why a hop message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopDecodeError {
    /// The message is larger than [`MAX_HOP_MESSAGE_LEN`].
    #[error("relay hop message of {0} bytes is over the {MAX_HOP_MESSAGE_LEN}-byte limit")]
    TooLarge(u64),
    /// The bytes end in the middle of a field.
    #[error("relay hop message is truncated")]
    Truncated,
    /// Not a well-formed hop message.
    #[error("relay hop message is malformed: {0}")]
    Malformed(&'static str),
    /// A well-formed message that is not a `STATUS` answer.
    #[error("expected a relay STATUS answer, got message type {0}")]
    WrongType(u64),
}

impl From<WireError> for HopDecodeError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => HopDecodeError::Truncated,
            WireError::Malformed(why) => HopDecodeError::Malformed(why),
        }
    }
}

/// The status code of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopStatus {
    /// 100: accepted.
    Ok,
    /// 200: the relay refused the reservation.
    ReservationRefused,
    /// 201: the relay is at one of its limits.
    ResourceLimitExceeded,
    /// 202: the relay does not serve this peer.
    PermissionDenied,
    /// 203.
    ConnectionFailed,
    /// 204.
    NoReservation,
    /// 400: the relay could not read our request.
    MalformedMessage,
    /// 401: the relay did not expect our request.
    UnexpectedMessage,
    /// A code the specification does not name.
    Other(u64),
}

impl HopStatus {
    /// The status of a protobuf code.
    pub fn from_code(code: u64) -> Self {
        match code {
            100 => HopStatus::Ok,
            200 => HopStatus::ReservationRefused,
            201 => HopStatus::ResourceLimitExceeded,
            202 => HopStatus::PermissionDenied,
            203 => HopStatus::ConnectionFailed,
            204 => HopStatus::NoReservation,
            400 => HopStatus::MalformedMessage,
            401 => HopStatus::UnexpectedMessage,
            other => HopStatus::Other(other),
        }
    }

    /// Its protobuf code.
    pub fn code(self) -> u64 {
        match self {
            HopStatus::Ok => 100,
            HopStatus::ReservationRefused => 200,
            HopStatus::ResourceLimitExceeded => 201,
            HopStatus::PermissionDenied => 202,
            HopStatus::ConnectionFailed => 203,
            HopStatus::NoReservation => 204,
            HopStatus::MalformedMessage => 400,
            HopStatus::UnexpectedMessage => 401,
            HopStatus::Other(code) => code,
        }
    }
}

/// The reservation a relay granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    /// When it expires, in seconds since the Unix epoch (UTC).
    pub expire: Option<u64>,
    /// The relay's public addresses, as multiaddr bytes (not checked here).
    pub addrs: Vec<Vec<u8>>,
    /// The signed reservation voucher, if the relay sent one (not checked here).
    pub voucher: Option<Vec<u8>>,
}

/// The limits a relay puts on each circuit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CircuitLimit {
    /// Longest life of a circuit, in seconds (0 or absent: no limit).
    pub duration_secs: Option<u32>,
    /// Most bytes each way through a circuit (0 or absent: no limit).
    pub data_bytes: Option<u64>,
}

/// A relay's `STATUS` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopAnswer {
    /// Whether the request was accepted.
    pub status: HopStatus,
    /// The reservation, on an accepted `RESERVE`.
    pub reservation: Option<Reservation>,
    /// The circuit limits, if the relay applies any.
    pub limit: Option<CircuitLimit>,
}

impl HopAnswer {
    /// The expiry of the reservation an accepted `RESERVE` granted, in Unix seconds;
    /// `None` when the answer is a refusal or names no expiry.
    pub fn accepted_expiry(&self) -> Option<u64> {
        match self.status {
            HopStatus::Ok => self.reservation.as_ref()?.expire,
            _ => None,
        }
    }
}

fn framed(message: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 2);
    put_varint(&mut out, message.len() as u64);
    out.extend_from_slice(&message);
    out
}

fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_varint(out, field << 3);
    put_varint(out, value);
}

/// The framed `RESERVE` request: `HopMessage { type = RESERVE }`.
pub fn encode_reserve() -> Vec<u8> {
    let mut message = Vec::with_capacity(2);
    // proto2 `required`: written even though it is the default value.
    put_varint_field(&mut message, 1, TYPE_RESERVE);
    framed(message)
}

/// The framed `STATUS` answer a relay would send (fields in number order, as
/// libp2p-relay writes them), for tests and fuzzing.
pub fn encode_answer(answer: &HopAnswer) -> Vec<u8> {
    let mut message = Vec::new();
    put_varint_field(&mut message, 1, TYPE_STATUS);
    if let Some(reservation) = &answer.reservation {
        let mut inner = Vec::new();
        if let Some(expire) = reservation.expire {
            put_varint_field(&mut inner, 1, expire);
        }
        for addr in &reservation.addrs {
            put_bytes(&mut inner, 2, addr);
        }
        if let Some(voucher) = &reservation.voucher {
            put_bytes(&mut inner, 3, voucher);
        }
        put_bytes(&mut message, 3, &inner);
    }
    if let Some(limit) = &answer.limit {
        let mut inner = Vec::new();
        if let Some(duration) = limit.duration_secs {
            put_varint_field(&mut inner, 1, u64::from(duration));
        }
        if let Some(data) = limit.data_bytes {
            put_varint_field(&mut inner, 2, data);
        }
        put_bytes(&mut message, 4, &inner);
    }
    put_varint_field(&mut message, 5, answer.status.code());
    framed(message)
}

/// Reads a frame's length prefix from the start of `bytes`: the message length and the
/// prefix's own length, or `None` if `bytes` ends inside the prefix. A length over
/// [`MAX_HOP_MESSAGE_LEN`] is refused.
pub fn frame_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, HopDecodeError> {
    protobuf::frame_length(bytes, MAX_HOP_MESSAGE_LEN).map_err(|e| match e {
        FrameError::TooLarge(len) => HopDecodeError::TooLarge(len),
        FrameError::Wire(e) => e.into(),
    })
}

/// Decodes a relay's `STATUS` answer (the message, without its length prefix).
pub fn decode_answer(message: &[u8]) -> Result<HopAnswer, HopDecodeError> {
    if message.len() > MAX_HOP_MESSAGE_LEN {
        return Err(HopDecodeError::TooLarge(message.len() as u64));
    }
    let mut message_type = None;
    let mut status = None;
    let mut reservation = None;
    let mut limit = None;
    for field in Fields(message) {
        match field? {
            (1, Value::Varint(t)) => message_type = Some(t),
            (5, Value::Varint(code)) => status = Some(HopStatus::from_code(code)),
            (3, Value::Bytes(bytes)) => set_once(&mut reservation, decode_reservation(bytes)?)?,
            (4, Value::Bytes(bytes)) => set_once(&mut limit, decode_limit(bytes)?)?,
            (1 | 5, _) => return Err(HopDecodeError::Malformed("type or status is not a varint")),
            (3 | 4, _) => {
                return Err(HopDecodeError::Malformed(
                    "reservation or limit is not a message",
                ))
            }
            _ => {}
        }
    }
    match message_type {
        None => return Err(HopDecodeError::Malformed("no message type")),
        Some(TYPE_STATUS) => {}
        Some(other) => return Err(HopDecodeError::WrongType(other)),
    }
    Ok(HopAnswer {
        status: status.ok_or(HopDecodeError::Malformed(
            "a STATUS answer without a status",
        ))?,
        reservation,
        limit,
    })
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), HopDecodeError> {
    if slot.replace(value).is_some() {
        return Err(HopDecodeError::Malformed(
            "reservation or limit given twice",
        ));
    }
    Ok(())
}

fn decode_reservation(bytes: &[u8]) -> Result<Reservation, HopDecodeError> {
    let mut reservation = Reservation::default();
    for field in Fields(bytes) {
        match field? {
            (1, Value::Varint(expire)) => reservation.expire = Some(expire),
            (2, Value::Bytes(addr)) if reservation.addrs.len() < MAX_RELAY_ADDRS => {
                reservation.addrs.push(addr.to_vec())
            }
            // Past the limit: well-formed, not kept.
            (2, Value::Bytes(_)) => {}
            (3, Value::Bytes(voucher)) => reservation.voucher = Some(voucher.to_vec()),
            (1..=3, _) => {
                return Err(HopDecodeError::Malformed(
                    "a reservation field has the wrong wire type",
                ))
            }
            _ => {}
        }
    }
    Ok(reservation)
}

fn decode_limit(bytes: &[u8]) -> Result<CircuitLimit, HopDecodeError> {
    let mut limit = CircuitLimit::default();
    for field in Fields(bytes) {
        match field? {
            (1, Value::Varint(secs)) => {
                limit.duration_secs = Some(
                    u32::try_from(secs)
                        .map_err(|_| HopDecodeError::Malformed("limit duration over uint32"))?,
                )
            }
            (2, Value::Varint(data)) => limit.data_bytes = Some(data),
            (1 | 2, _) => {
                return Err(HopDecodeError::Malformed(
                    "a limit field has the wrong wire type",
                ))
            }
            _ => {}
        }
    }
    Ok(limit)
}

#[cfg(test)]
#[path = "relay_hop_tests.rs"]
mod tests;
