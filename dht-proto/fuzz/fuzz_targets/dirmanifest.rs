//! DirManifest::decode on arbitrary bytes. If it decodes: the input was the canonical
//! encoding (encode() gives it back byte for byte), decode_any_for under its own CID
//! gives the same directory, every path joined under a root stays inside the root as
//! plain components, the files add up to total_size, and case_collisions() runs.
#![no_main]

use std::path::{Component, Path};

use dht_proto::dirmanifest::{decode_any_for, is_dir_manifest, AnyManifest, DirManifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = DirManifest::decode(data) {
        assert_eq!(m.encode(), data, "decoded a non-canonical encoding");
        assert!(is_dir_manifest(data));
        match decode_any_for(&m.cid(), data) {
            Ok(AnyManifest::Dir(again)) => assert_eq!(again, m),
            other => panic!("decode_any_for gave {other:?}"),
        }
        let root = Path::new("/target/dir");
        for entry in m.entries() {
            if let Ok(joined) = entry.path.join_under(root) {
                let inside = joined
                    .strip_prefix(root)
                    .expect("joined path leaves the root");
                assert!(inside
                    .components()
                    .all(|c| matches!(c, Component::Normal(_))));
                assert_eq!(inside.components().count(), entry.path.components().len());
            }
        }
        let total: u64 = m.files().map(|(_, _, size, _)| size).sum();
        assert_eq!(total, m.total_size());
        let _ = m.case_collisions();
    }
});
