//! names::sanitize_file_name on arbitrary text: the file name a peer sends with a manifest
//! (and a browser upload or a user's --name) before it names a file on disk. It must not
//! panic, and what it keeps must be safe: one plain component of at most MAX_NAME_LEN
//! bytes, no control characters, no surrounding white space, not hidden, and stable (a
//! safe name sanitizes to itself).
#![no_main]

use dht_proto::message::MAX_NAME_LEN;
use dht_proto::names::sanitize_file_name;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(safe) = sanitize_file_name(&text) {
        assert!(!safe.is_empty() && safe.len() <= MAX_NAME_LEN, "{safe:?}");
        assert!(!safe.contains(['/', '\\']), "{safe:?} has a path separator");
        assert!(!safe.chars().any(char::is_control), "{safe:?}");
        assert!(!safe.starts_with('.'), "{safe:?} is hidden or a dot name");
        assert_eq!(safe.trim(), safe, "surrounding white space");
        assert_eq!(sanitize_file_name(&safe).as_deref(), Some(safe.as_str()));
    }
});
