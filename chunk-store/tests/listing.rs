//! The `listed` flag (what the node's catalog shows) and the entry watcher that keeps a
//! catalog in step with the store.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::sync::{Arc, Mutex};

use chunk_store::{EntryState, ImportMode, Store};
use common::{data, source_file, write, MIB};
use dht_proto::Cid;

/// A store whose watcher records every CID it is told about.
fn watched(root: &std::path::Path) -> (Store, Arc<Mutex<Vec<Cid>>>) {
    let store = Store::open(root).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    store.watch_entries(move |cid| log.lock().unwrap().push(*cid));
    (store, seen)
}

fn take(seen: &Mutex<Vec<Cid>>) -> Vec<Cid> {
    std::mem::take(&mut *seen.lock().unwrap())
}

#[test]
fn files_are_listed_unless_imported_unlisted_and_the_choice_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let listed = write(dir.path(), "listed.bin", &data(1000, 1));
    let hidden = write(dir.path(), "hidden.bin", &data(1000, 2));
    let a = store
        .import(&listed, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    let b = store
        .import_listed(&hidden, ImportMode::Reference, None, false, &mut |_| {})
        .unwrap();
    assert!(store.info(&a.cid).unwrap().unwrap().listed);
    assert!(!store.info(&b.cid).unwrap().unwrap().listed);

    store.set_listed(&a.cid, false).unwrap();
    store.set_listed(&b.cid, true).unwrap();
    drop(store);
    let store = Store::open(&root).unwrap();
    let list = store.list().unwrap();
    let flag = |cid: &Cid| list.iter().find(|e| e.cid == *cid).unwrap().listed;
    assert!(!flag(&a.cid));
    assert!(flag(&b.cid));
    assert!(store
        .set_listed(&Cid::for_manifest_bytes(b"x"), true)
        .is_err());
}

#[test]
fn adding_bytes_again_sets_their_listing_to_the_new_choice() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let path = write(dir.path(), "f.bin", &data(5000, 3));
    let first = store
        .import_listed(&path, ImportMode::Copy, None, false, &mut |_| {})
        .unwrap();
    store.set_published(&first.cid, false).unwrap();
    let again = store
        .import(&path, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    assert!(again.already_present);
    let info = store.info(&first.cid).unwrap().unwrap();
    assert!(info.listed && info.published);
    let hidden_again = store
        .import_listed(&path, ImportMode::Copy, None, false, &mut |_| {})
        .unwrap();
    assert!(hidden_again.already_present);
    assert!(!store.info(&first.cid).unwrap().unwrap().listed);
}

#[test]
fn the_watcher_hears_of_every_committed_change() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen) = watched(&dir.path().join("store"));
    let path = write(dir.path(), "f.bin", &data(3000, 4));
    let added = store
        .import(&path, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    assert_eq!(take(&seen), vec![added.cid], "import");
    store.set_listed(&added.cid, false).unwrap();
    store.set_published(&added.cid, false).unwrap();
    store.set_pinned(&added.cid, true).unwrap();
    assert_eq!(take(&seen), vec![added.cid; 3], "flags");
    // Adding the same bytes again changes the flags back: one change.
    store
        .import(&path, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    assert_eq!(take(&seen), vec![added.cid], "import again");
    // Nothing to change: nothing heard.
    store
        .import(&path, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    assert!(take(&seen).is_empty(), "an import that changed nothing");
    assert!(store.remove(&added.cid).unwrap());
    assert_eq!(take(&seen), vec![added.cid], "remove");
    assert!(!store.remove(&added.cid).unwrap());
    assert!(take(&seen).is_empty(), "removing what is gone");
    // A failed change is not heard.
    assert!(store.set_listed(&added.cid, true).is_err());
    assert!(take(&seen).is_empty(), "a failed change");
}

#[test]
fn the_watcher_hears_a_download_begin_and_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, manifest_bytes, bytes) = source_file(dir.path(), 2 * MIB + 9, 5);
    let (store, seen) = watched(&dir.path().join("dst"));
    let (manifest, mut have) = store
        .begin_download(&cid, &manifest_bytes, Some("movie.mkv".into()))
        .unwrap();
    assert_eq!(take(&seen), vec![cid], "begin");
    let info = store.info(&cid).unwrap().unwrap();
    assert!(info.listed, "a download is listed by default once complete");
    assert!(matches!(info.state, EntryState::Partial { .. }));
    for i in 0..manifest.chunk_count() {
        let chunk = &bytes[manifest.chunk_offset(i) as usize..][..manifest.chunk_len(i) as usize];
        store.write_chunk(&cid, &manifest, i, chunk).unwrap();
        have.set(i);
    }
    store.save_progress(&cid, &have).unwrap();
    assert!(
        take(&seen).is_empty(),
        "chunks and progress are not entry changes"
    );
    store.complete_download(&cid, &have, None).unwrap();
    assert_eq!(take(&seen), vec![cid], "complete");
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Complete
    );
}

#[test]
fn the_watcher_hears_a_file_found_changed_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seen) = watched(&dir.path().join("store"));
    let path = write(dir.path(), "in-place.bin", &data(MIB + 1, 6));
    let added = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    take(&seen);
    fs::write(&path, data(MIB + 1, 7)).unwrap();
    assert!(store.read_chunk(&added.cid, 0).is_err());
    assert_eq!(take(&seen), vec![added.cid]);
    // Marked once: later reads change nothing.
    assert!(store.read_chunk(&added.cid, 0).is_err());
    assert!(take(&seen).is_empty());
}
