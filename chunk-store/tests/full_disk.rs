//! A store on a file system that fills up (a small tmpfs; needs root, skipped otherwise):
//! it keeps answering, frees space when asked, recovers without a restart, and opens on
//! a full disk.
#![allow(clippy::unwrap_used)]

mod common;

use chunk_store::{fsutil, EntryState, ImportMode, Store, StoreError};
use common::*;

#[test]
fn a_full_disk_neither_wedges_the_store_nor_stops_it_opening() {
    let Some(mnt) = Tmpfs::mount(
        "a_full_disk_neither_wedges_the_store_nor_stops_it_opening",
        24,
    ) else {
        return;
    };
    let outside = tempfile::tempdir().unwrap();
    let root = mnt.path().join("store");
    let (cid_partial, manifest_partial, bytes_partial) = source_file(outside.path(), 6 * MIB, 1);
    let (cid_big, manifest_big, _) = source_file(outside.path(), 3 * MIB, 2);
    {
        let store = Store::open(&root).unwrap();
        let copy = store
            .import(
                &write(outside.path(), "copy.bin", &data(2 * MIB, 3)),
                ImportMode::Copy,
                None,
                &mut |_| {},
            )
            .unwrap();
        let (manifest, mut have) = store
            .begin_download(&cid_partial, &manifest_partial, None)
            .unwrap();
        for i in 0..4 {
            store
                .write_chunk(&cid_partial, &manifest, i, chunk(&bytes_partial, i))
                .unwrap();
            have.set(i);
        }
        store.save_progress(&cid_partial, &have).unwrap();

        mnt.fill("filler");
        assert!(fsutil::free_space(mnt.path()).unwrap() < 64 << 10);

        // Copies and downloads check for room before writing anything.
        let e = store
            .import(
                &write(outside.path(), "late.bin", &data(MIB, 4)),
                ImportMode::Copy,
                None,
                &mut |_| {},
            )
            .unwrap_err();
        assert!(
            matches!(e, StoreError::NoSpace { needed, .. } if needed == MIB as u64),
            "{e}"
        );
        let message = e.to_string();
        assert!(
            message.starts_with("needs 1 MiB, 0 MiB free on ") && message.contains("/store/tmp"),
            "{message}"
        );
        let e = store
            .begin_download(&cid_big, &manifest_big, None)
            .unwrap_err();
        assert!(
            e.to_string().starts_with("needs 3 MiB, 0 MiB free on "),
            "{e}"
        );
        assert!(store.info(&cid_big).unwrap().is_none());

        // Metadata alone, until the database itself meets the full disk.
        let mut db_error = None;
        for i in 0..400 {
            let path = write(
                outside.path(),
                &format!("ref-{i:03}-{}", "n".repeat(200)),
                &[i as u8; 64],
            );
            match store.import(&path, ImportMode::Reference, None, &mut |_| {}) {
                Ok(_) => {}
                Err(e) => {
                    db_error = Some(e);
                    break;
                }
            }
        }
        let db_error = db_error.expect("the database never hit the full disk");
        assert!(db_error.is_disk_full(), "{db_error}");

        // Still answering.
        assert!(store.list().unwrap().len() >= 2);
        assert_eq!(read_all(&store, &copy.cid), data(2 * MIB, 3));

        // Cancelling the download and removing the copy free their space, full disk or not.
        let partial_file = root.join("partial").join(content_name(&cid_partial));
        assert!(partial_file.exists());
        assert!(store.remove(&cid_partial).unwrap());
        assert!(!partial_file.exists());
        assert!(store.remove(&copy.cid).unwrap());
        // 4 MiB of chunks and a 2 MiB copy, less what the database took meanwhile.
        let free = fsutil::free_space(mnt.path()).unwrap();
        assert!(free > 5 * MIB as u64, "{free} bytes free");

        // And the store writes again, without a restart.
        let path = write(outside.path(), "after.bin", &data(1000, 5));
        let after = store
            .import(&path, ImportMode::Copy, None, &mut |_| {})
            .unwrap();
        assert_eq!(
            store.info(&after.cid).unwrap().unwrap().state,
            EntryState::Complete
        );
        println!("database reopened {} time(s)", store.database_reopens());

        // Full again, for the restart below.
        mnt.fill("filler-2");
    }
    let store = Store::open(&root).expect("the store opens on a full disk");
    let listed = store.list().unwrap();
    assert!(listed.iter().all(|e| e.cid != cid_partial));
    assert!(!listed.is_empty());
}
