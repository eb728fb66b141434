//! Share tickets: one copy-pasteable string that holds everything a fetcher needs to
//! reach a file or directory without the DHT: its CID, name and size, the provider's
//! peer id and addresses, the expiry, whether a password is needed, and the share id the
//! provider looks the share up by.
//!
//! Text form: `p2pd1` followed by the binary form in RFC 4648 base32, lower case, no
//! padding. Decoding accepts upper case (a QR code carries the upper-case form, which
//! fits QR's compact alphanumeric mode) and ignores whitespace, so a ticket wrapped over
//! lines still reads. The binary form ends in a 4-byte BLAKE3 checksum, and starts with
//! its own length, so a mistyped ticket is told apart from a truncated one.
//!
//! Multiaddrs and the peer id are carried as their binary forms (`Multiaddr::to_vec`,
//! `PeerId::to_bytes`): this crate does not parse them, the node does
//! (`Multiaddr::try_from(Vec<u8>)`, `PeerId::from_bytes`) and treats a failure like any
//! malformed ticket.

use std::fmt;
use std::str::FromStr;

use data_encoding::BASE32_NOPAD;

use crate::cid::{read_varint, write_varint, Cid, Codec, CID_BYTES_LEN};
use crate::identity::MAX_PEER_ID_LEN;

/// What every ticket starts with: the name, then the format version.
pub const TICKET_PREFIX: &str = "p2pd";
/// The version character after [`TICKET_PREFIX`].
pub const TICKET_VERSION: char = '1';
/// The checksum is the first 4 bytes of BLAKE3 of this domain and the bytes before it.
pub const TICKET_CHECKSUM_DOMAIN: &[u8] = b"p2pd ticket v1\0";
/// Length of the checksum.
pub const CHECKSUM_LEN: usize = 4;
/// Length of a share id.
pub const SHARE_ID_LEN: usize = 8;
/// Most addresses in a ticket.
pub const MAX_TICKET_ADDRS: usize = 8;
/// The longest binary multiaddr in a ticket.
pub const MAX_TICKET_ADDR_LEN: usize = 255;
/// The longest name in a ticket, in bytes.
pub const MAX_TICKET_NAME_LEN: usize = 255;
/// The longest ticket text accepted (whitespace included), checked before anything else.
/// The largest valid ticket is 3,917 characters.
pub const MAX_TICKET_TEXT_LEN: usize = 4096;
/// The largest size or expiry a ticket can carry (a varint of at most 9 bytes).
pub const MAX_TICKET_NUMBER: u64 = i64::MAX as u64;

/// The shortest binary ticket: length, flags, CID, 1-byte size, share id, a 1-byte peer
/// id, a 1-byte name, no address, checksum.
const MIN_TICKET_BYTES: usize = 2 + 1 + CID_BYTES_LEN + 1 + SHARE_ID_LEN + 2 + 2 + 1 + CHECKSUM_LEN;

const FLAG_PASSWORD: u8 = 0b001;
const FLAG_DIRECTORY: u8 = 0b010;
const FLAG_EXPIRES: u8 = 0b100;

/// Why a string is not a usable ticket. Each variant's message is one line for a user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// Nothing but whitespace.
    #[error("empty ticket")]
    Empty,
    /// Longer than [`MAX_TICKET_TEXT_LEN`]; nothing was decoded.
    #[error("ticket is too long ({0} characters)")]
    TooLong(usize),
    /// Does not start with `p2pd`.
    #[error("not a p2pd ticket (tickets start with \"p2pd1\")")]
    NotATicket,
    /// A later ticket format than this program reads.
    #[error("ticket version {0:?} is not supported by this version of p2pd (it reads version 1)")]
    UnknownVersion(char),
    /// A character that never occurs in a ticket (only a-z and 2-7 follow the prefix).
    #[error("ticket is mistyped: character {position} ({character:?}) cannot occur in a ticket")]
    BadCharacter {
        /// Position in the ticket text, counting from 1, whitespace excluded.
        position: usize,
        /// The character.
        character: char,
    },
    /// Characters are missing at the end.
    #[error("ticket is truncated: at least {missing} characters are missing at the end")]
    Truncated {
        /// Characters missing at least, rounded up.
        missing: usize,
    },
    /// Characters follow the end of the ticket.
    #[error("ticket has {extra} extra characters at the end")]
    TrailingCharacters {
        /// Characters too many, rounded up.
        extra: usize,
    },
    /// The checksum does not match: a character was changed.
    #[error("ticket is mistyped (its checksum does not match); copy it again")]
    BadChecksum,
    /// The checksum matches but the content breaks the format: a ticket made by a
    /// broken or hostile program, not a typo.
    #[error("ticket is malformed: {0}")]
    Malformed(String),
    /// A ticket being built breaks a limit (from [`Ticket::encode`]).
    #[error("cannot make a ticket: {0}")]
    Invalid(String),
}

/// The content of a share ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The file or directory CID (codec `dag-cbor`).
    pub cid: Cid,
    /// Whether the CID names a directory manifest.
    pub directory: bool,
    /// The provider's name for it: 1 to 255 bytes, no control characters.
    pub name: String,
    /// Size in bytes (a directory: the sum of its files).
    pub size: u64,
    /// The provider's binary peer id (`PeerId::to_bytes`), 1 to 70 bytes.
    pub provider: Vec<u8>,
    /// Up to 8 binary multiaddrs of the provider (`Multiaddr::to_vec`), best first:
    /// direct addresses, then relay circuit addresses (`…/p2p/<relay>/p2p-circuit`),
    /// each without the provider's own `/p2p/<id>` suffix, 1 to 255 bytes each.
    pub addrs: Vec<Vec<u8>>,
    /// When the share ends, in seconds since the Unix epoch; `None`: never.
    pub expires: Option<u64>,
    /// Whether the provider serves it only to peers that prove they know a password.
    pub password: bool,
    /// The provider's id for this share (random; a handle, not a secret).
    pub share_id: [u8; SHARE_ID_LEN],
}

impl Ticket {
    /// Checks every limit of the format.
    pub fn check(&self) -> Result<(), TicketError> {
        let fail = |what: String| Err(TicketError::Invalid(what));
        if self.cid.codec() != Codec::DagCbor {
            return fail(format!("{} is not a file or directory CID", self.cid));
        }
        if self.name.is_empty() || self.name.len() > MAX_TICKET_NAME_LEN {
            return fail(format!(
                "name of {} bytes (1 to 255 allowed)",
                self.name.len()
            ));
        }
        if self.name.chars().any(char::is_control) {
            return fail("name holds a control character".into());
        }
        if self.size > MAX_TICKET_NUMBER || self.expires.is_some_and(|e| e > MAX_TICKET_NUMBER) {
            return fail("size or expiry out of range".into());
        }
        if self.provider.is_empty() || self.provider.len() > MAX_PEER_ID_LEN {
            return fail(format!("peer id of {} bytes", self.provider.len()));
        }
        if self.addrs.len() > MAX_TICKET_ADDRS {
            return fail(format!("{} addresses (at most 8)", self.addrs.len()));
        }
        if let Some(addr) = self
            .addrs
            .iter()
            .find(|a| a.is_empty() || a.len() > MAX_TICKET_ADDR_LEN)
        {
            return fail(format!("address of {} bytes", addr.len()));
        }
        Ok(())
    }

    /// Whether the ticket has expired at `now` (Unix seconds): from the second `expires`
    /// on.
    pub fn is_expired_at(&self, now: u64) -> bool {
        self.expires.is_some_and(|expires| now >= expires)
    }

    /// The binary form, checksum included.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TicketError> {
        self.check()?;
        let mut body = Vec::with_capacity(256);
        let flags = (if self.password { FLAG_PASSWORD } else { 0 })
            | (if self.directory { FLAG_DIRECTORY } else { 0 })
            | (if self.expires.is_some() {
                FLAG_EXPIRES
            } else {
                0
            });
        body.push(flags);
        body.extend_from_slice(&self.cid.to_bytes());
        write_varint(&mut body, self.size);
        if let Some(expires) = self.expires {
            write_varint(&mut body, expires);
        }
        body.extend_from_slice(&self.share_id);
        // check() bounds every length below by 255, so each fits its length byte.
        body.push(self.provider.len() as u8);
        body.extend_from_slice(&self.provider);
        body.push(self.name.len() as u8);
        body.extend_from_slice(self.name.as_bytes());
        body.push(self.addrs.len() as u8);
        for addr in &self.addrs {
            body.push(addr.len() as u8);
            body.extend_from_slice(addr);
        }
        let mut out = Vec::with_capacity(body.len() + 2 + CHECKSUM_LEN);
        out.extend_from_slice(&((body.len() + CHECKSUM_LEN) as u16).to_be_bytes());
        out.extend_from_slice(&body);
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        Ok(out)
    }

    /// The text form, lower case: `p2pd1…`.
    pub fn encode(&self) -> Result<String, TicketError> {
        let bytes = self.to_bytes()?;
        let body = BASE32_NOPAD.encode(&bytes).to_ascii_lowercase();
        Ok(format!("{TICKET_PREFIX}{TICKET_VERSION}{body}"))
    }

    /// The text form in upper case, for a QR code (alphanumeric mode: 5.5 bits a
    /// character instead of 8).
    pub fn qr_text(&self) -> Result<String, TicketError> {
        Ok(self.encode()?.to_ascii_uppercase())
    }

    /// Reads a ticket's text form (any letter case, whitespace ignored).
    pub fn decode(text: &str) -> Result<Self, TicketError> {
        if text.len() > MAX_TICKET_TEXT_LEN {
            return Err(TicketError::TooLong(text.len()));
        }
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() {
            return Err(TicketError::Empty);
        }
        let Some(after_prefix) = strip_prefix_ignore_case(&compact, TICKET_PREFIX) else {
            return Err(TicketError::NotATicket);
        };
        let mut rest = after_prefix.chars();
        match rest.next() {
            None => {
                return Err(TicketError::Truncated {
                    missing: 1 + chars_for(MIN_TICKET_BYTES),
                })
            }
            Some(TICKET_VERSION) => {}
            Some(other) => return Err(TicketError::UnknownVersion(other)),
        }
        let body = rest.as_str();
        let header_chars = TICKET_PREFIX.len() + 1;
        if let Some((index, character)) = body
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_alphabetic() || ('2'..='7').contains(c)))
        {
            return Err(TicketError::BadCharacter {
                position: header_chars + index + 1,
                character,
            });
        }
        Ticket::from_base32(body)
    }

    fn from_base32(body: &str) -> Result<Self, TicketError> {
        let (bytes, leftover_bits) = base32_decode(body.as_bytes());
        // Unpadded base32 leaves fewer than 5 bits over; 5 or more means one character
        // too many or too few, told apart by the length the ticket states.
        Ticket::from_decoded(&bytes, leftover_bits >= 5)
    }

    /// Reads the binary form (what [`Ticket::to_bytes`] writes), checksum included.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TicketError> {
        if bytes.len() > MAX_TICKET_TEXT_LEN {
            return Err(TicketError::TooLong(bytes.len()));
        }
        Ticket::from_decoded(bytes, false)
    }

    /// Checks length and checksum, in the order that names the likeliest mistake: the
    /// stated length against the bytes present (truncated, or characters added), then
    /// the checksum (a character changed). `dangling`: the text had one character that
    /// cannot end a base32 text.
    fn from_decoded(bytes: &[u8], dangling: bool) -> Result<Self, TicketError> {
        let Some((len, _)) = bytes.split_first_chunk::<2>() else {
            return Err(TicketError::Truncated {
                missing: chars_for(MIN_TICKET_BYTES - bytes.len()),
            });
        };
        let expected = 2 + usize::from(u16::from_be_bytes(*len));
        let sum_ok = bytes.len() >= 2 + CHECKSUM_LEN && {
            let (signed, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
            checksum(signed) == sum
        };
        if bytes.len() != expected && sum_ok && !dangling {
            // The checksum covers the length: whoever wrote it, wrote it wrong.
            return Err(malformed("its length field is wrong".into()));
        }
        if bytes.len() != expected && !dangling && length_typo(bytes) {
            return Err(TicketError::BadChecksum);
        }
        if bytes.len() < expected {
            return Err(TicketError::Truncated {
                missing: chars_for(expected - bytes.len()),
            });
        }
        if bytes.len() > expected || dangling {
            return Err(TicketError::TrailingCharacters {
                extra: chars_for(bytes.len() - expected) + usize::from(dangling),
            });
        }
        if !sum_ok {
            return Err(TicketError::BadChecksum);
        }
        Ticket::parse_body(&bytes[2..bytes.len() - CHECKSUM_LEN])
    }

    fn parse_body(body: &[u8]) -> Result<Self, TicketError> {
        let mut input = body;
        let flags = take(&mut input, 1, "flags")?[0];
        if flags & !(FLAG_PASSWORD | FLAG_DIRECTORY | FLAG_EXPIRES) != 0 {
            return Err(malformed(format!("unknown flags 0x{flags:02x}")));
        }
        let cid = Cid::from_bytes(take(&mut input, CID_BYTES_LEN, "CID")?)
            .map_err(|e| malformed(e.to_string()))?;
        let varint = |input: &mut &[u8], what: &str| {
            read_varint(input).map_err(|_| malformed(format!("bad {what}")))
        };
        let size = varint(&mut input, "size")?;
        let expires = match flags & FLAG_EXPIRES {
            0 => None,
            _ => Some(varint(&mut input, "expiry")?),
        };
        let share_id: [u8; SHARE_ID_LEN] = take(&mut input, SHARE_ID_LEN, "share id")?
            .try_into()
            .map_err(|_| malformed("share id".into()))?;
        let provider = take_prefixed(&mut input, "peer id")?.to_vec();
        let name = String::from_utf8(take_prefixed(&mut input, "name")?.to_vec())
            .map_err(|_| malformed("name is not UTF-8".into()))?;
        let count = usize::from(take(&mut input, 1, "address count")?[0]);
        if count > MAX_TICKET_ADDRS {
            return Err(malformed(format!("{count} addresses (at most 8)")));
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            addrs.push(take_prefixed(&mut input, "address")?.to_vec());
        }
        if !input.is_empty() {
            return Err(malformed(format!(
                "{} bytes after the addresses",
                input.len()
            )));
        }
        let ticket = Ticket {
            cid,
            directory: flags & FLAG_DIRECTORY != 0,
            name,
            size,
            provider,
            addrs,
            expires,
            password: flags & FLAG_PASSWORD != 0,
            share_id,
        };
        ticket.check().map_err(|e| match e {
            TicketError::Invalid(what) => TicketError::Malformed(what),
            other => other,
        })?;
        Ok(ticket)
    }
}

impl fmt::Display for Ticket {
    /// The text form; an invalid ticket shows as its error (use [`Ticket::encode`] to
    /// handle that case).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encode() {
            Ok(text) => f.write_str(&text),
            Err(e) => write!(f, "<{e}>"),
        }
    }
}

impl FromStr for Ticket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ticket::decode(s)
    }
}

/// Whether `text` looks like a ticket rather than a CID (so a command taking either can
/// pick the parser and report that parser's error).
pub fn looks_like_ticket(text: &str) -> bool {
    strip_prefix_ignore_case(text.trim_start(), TICKET_PREFIX).is_some()
}

/// The checksum of the bytes before it.
pub fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(TICKET_CHECKSUM_DOMAIN);
    hasher.update(bytes);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..CHECKSUM_LEN]);
    out
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Whether the checksum would match if the length field stated the real length: then
/// the ticket is whole and a character of the length field was mistyped.
fn length_typo(bytes: &[u8]) -> bool {
    if bytes.len() < 2 + CHECKSUM_LEN {
        return false;
    }
    let Ok(real) = u16::try_from(bytes.len() - 2) else {
        return false;
    };
    let mut fixed = bytes.to_vec();
    fixed[..2].copy_from_slice(&real.to_be_bytes());
    let (signed, sum) = fixed.split_at(fixed.len() - CHECKSUM_LEN);
    checksum(signed) == sum
}

/// Decodes RFC 4648 base32 of either letter case (the caller has checked the
/// characters), keeping whole bytes; returns them and the number of bits left over.
/// Unlike a strict decoder it accepts any length and non-zero leftover bits, so that a
/// cut ticket can be told apart from a mistyped one.
fn base32_decode(text: &[u8]) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in text {
        let value = match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            _ => c.wrapping_sub(b'2').wrapping_add(26) & 31,
        };
        acc = (acc << 5 | u32::from(value)) & 0x1fff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (out, bits)
}

/// Base32 characters that carry `bytes` bytes, rounded up.
fn chars_for(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

fn malformed(what: String) -> TicketError {
    TicketError::Malformed(what)
}

fn take<'a>(input: &mut &'a [u8], len: usize, what: &str) -> Result<&'a [u8], TicketError> {
    if input.len() < len {
        return Err(malformed(format!("{what} cut short")));
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

fn take_prefixed<'a>(input: &mut &'a [u8], what: &str) -> Result<&'a [u8], TicketError> {
    let len = usize::from(take(input, 1, what)?[0]);
    take(input, len, what)
}

#[cfg(test)]
pub(crate) mod tests;
