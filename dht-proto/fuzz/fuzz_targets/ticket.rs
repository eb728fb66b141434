//! Ticket parsing. Byte 0 picks the mode: even, the rest is text for Ticket::decode;
//! odd, the rest is a ticket body that gets a correct length field and checksum, so the
//! fuzzer reaches the body parser behind the checksum. If a ticket decodes: its text
//! decodes back to an equal ticket (lower and upper case), the text is within the
//! length limit, the binary form round-trips, and check() passes.
#![no_main]

use dht_proto::ticket::{checksum, Ticket, CHECKSUM_LEN, MAX_TICKET_TEXT_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let decoded = if mode % 2 == 0 {
        let text = match std::str::from_utf8(rest) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default(),
        };
        Ticket::decode(text)
    } else {
        let Ok(len) = u16::try_from(rest.len() + CHECKSUM_LEN) else {
            return;
        };
        let mut sealed = len.to_be_bytes().to_vec();
        sealed.extend_from_slice(rest);
        let sum = checksum(&sealed);
        sealed.extend_from_slice(&sum);
        Ticket::from_bytes(&sealed)
    };
    if let Ok(ticket) = decoded {
        ticket.check().expect("a decoded ticket passes check()");
        let text = ticket.encode().expect("a decoded ticket encodes");
        assert!(text.len() <= MAX_TICKET_TEXT_LEN);
        assert_eq!(Ticket::decode(&text).expect("own text decodes"), ticket);
        let upper = ticket.qr_text().expect("a decoded ticket encodes");
        assert_eq!(Ticket::decode(&upper).expect("upper case decodes"), ticket);
        let bytes = ticket.to_bytes().expect("a decoded ticket encodes");
        assert_eq!(
            Ticket::from_bytes(&bytes).expect("own bytes decode"),
            ticket
        );
    }
});
