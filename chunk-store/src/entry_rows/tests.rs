//! The in-place index stays equal to what the entries say at every write site, is built
//! for a database from before it, and keeps import from reading every entry.

use std::fs;
use std::path::{Path, PathBuf};

use dht_proto::Cid;
use redb::{Durability, ReadableMultimapTable};

use super::*;
use crate::store::cid_of;
use crate::tables::DECODED;
use crate::{EntryState, ImportMode, Repair, Store};

/// Every (path, file) row of the index, sorted.
fn index(store: &Store) -> Vec<(PathBuf, Cid)> {
    let mut rows = store
        .db
        .read(|tx| {
            let table = tx.open_multimap_table(IN_PLACE_PATHS)?;
            let mut rows = Vec::new();
            for item in table.iter()? {
                let (path, keys) = item?;
                let path = PathBuf::from(String::from_utf8(path.value().to_vec()).unwrap());
                for key in keys {
                    let key = <[u8; 32]>::try_from(key?.value()).unwrap();
                    rows.push((path.clone(), cid_of(key)));
                }
            }
            Ok(rows)
        })
        .unwrap();
    rows.sort();
    rows
}

/// What the index must hold, worked out from the entries themselves.
fn expected(store: &Store) -> Vec<(PathBuf, Cid)> {
    let mut rows: Vec<_> = store
        .entries()
        .unwrap()
        .into_iter()
        .filter_map(|(key, record)| match record.location {
            Location::Reference { path, .. } => Some((path, cid_of(key))),
            _ => None,
        })
        .collect();
    rows.sort();
    rows
}

fn assert_index_right(store: &Store) -> Vec<(PathBuf, Cid)> {
    let rows = index(store);
    assert_eq!(
        rows,
        expected(store),
        "the index disagrees with the entries"
    );
    rows
}

fn add_in_place(store: &Store, path: &Path) -> crate::ImportOutcome {
    store
        .import(path, ImportMode::Reference, None, &mut |_| {})
        .unwrap()
}

#[test]
fn the_index_follows_add_change_flags_remove_and_downloads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let a = fs::canonicalize(dir.path()).unwrap().join("a.bin");
    let b = a.with_file_name("b.bin");
    fs::write(&a, vec![1u8; 70_000]).unwrap();
    fs::write(&b, vec![2u8; 70_000]).unwrap();

    // Added in place: one row each.
    let first = add_in_place(&store, &a);
    let other = add_in_place(&store, &b);
    assert_eq!(
        assert_index_right(&store),
        vec![(a.clone(), first.cid), (b.clone(), other.cid)]
    );
    let first_manifest = store.manifest_bytes(&first.cid).unwrap().unwrap();

    // Flags leave the place alone.
    store.set_pinned(&first.cid, true).unwrap();
    store.set_listed(&first.cid, false).unwrap();
    store.set_published(&first.cid, false).unwrap();
    assert_eq!(assert_index_right(&store).len(), 2);

    // Added again after it changed: the old entry and its row go, the new one has a row.
    fs::write(&a, vec![3u8; 80_000]).unwrap();
    let second = add_in_place(&store, &a);
    assert_eq!(second.replaced, vec![first.cid]);
    assert_eq!(
        assert_index_right(&store),
        vec![(a.clone(), second.cid), (b.clone(), other.cid)]
    );

    // Found changed on disk by a read: still tracked there (an import at that path
    // must still find it), so the row stays.
    fs::write(&b, vec![4u8; 70_000]).unwrap();
    assert!(store.read_chunk(&other.cid, 0).is_err());
    assert_eq!(
        store.info(&other.cid).unwrap().unwrap().state,
        EntryState::ChangedOnDisk
    );
    assert_eq!(assert_index_right(&store).len(), 2);

    // A file tracked in place that changed is downloaded again into the store: partial,
    // no row; then completed to an output path: a row for that path.
    let partial_cid = other.cid;
    let other_manifest = store.manifest_bytes(&partial_cid).unwrap().unwrap();
    let (manifest, mut have) = store
        .begin_download(&partial_cid, &other_manifest, None)
        .unwrap();
    assert_eq!(assert_index_right(&store), vec![(a.clone(), second.cid)]);
    let bytes = vec![2u8; 70_000];
    let chunk_size = manifest.chunk_size() as usize;
    for i in 0..manifest.chunk_count() {
        let start = i as usize * chunk_size;
        let end = (start + chunk_size).min(bytes.len());
        store
            .write_chunk(&partial_cid, &manifest, i, &bytes[start..end])
            .unwrap();
        have.set(i);
    }
    let output = a.with_file_name("fetched.bin");
    store
        .complete_download(&partial_cid, &have, Some(&output))
        .unwrap();
    assert_eq!(
        assert_index_right(&store),
        vec![(a.clone(), second.cid), (output.clone(), partial_cid)]
    );

    // The first content again, downloaded into the store (a blob): no row.
    let (manifest, mut have) = store
        .begin_download(&first.cid, &first_manifest, None)
        .unwrap();
    for i in 0..manifest.chunk_count() {
        let start = i as usize * manifest.chunk_size() as usize;
        let end = (start + manifest.chunk_size() as usize).min(70_000);
        store
            .write_chunk(&first.cid, &manifest, i, &vec![1u8; 70_000][start..end])
            .unwrap();
        have.set(i);
    }
    store.complete_download(&first.cid, &have, None).unwrap();
    assert_eq!(assert_index_right(&store).len(), 2);

    // Removal drops the row.
    store.remove(&second.cid).unwrap();
    assert_eq!(assert_index_right(&store), vec![(output, partial_cid)]);
}

#[test]
fn a_repair_keeps_the_index_right() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let copied = dir.path().join("copied.bin");
    let tracked = fs::canonicalize(dir.path()).unwrap().join("tracked.bin");
    fs::write(&copied, vec![6u8; 70_000]).unwrap();
    fs::write(&tracked, vec![7u8; 70_000]).unwrap();
    let blob = store
        .import(&copied, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    let in_place = add_in_place(&store, &tracked);

    // A damaged copy goes back to partial; a damaged file tracked in place is marked
    // changed and stays tracked at its path.
    let blob_path = store.blob_path(blob.cid.hash());
    let mut bytes = fs::read(&blob_path).unwrap();
    bytes[0] ^= 1;
    fs::write(&blob_path, &bytes).unwrap();
    let mut bytes = fs::read(&tracked).unwrap();
    bytes[0] ^= 1;
    let mtime = fs::metadata(&tracked).unwrap().modified().unwrap();
    fs::write(&tracked, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&tracked)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let report = store.repair(&blob.cid).unwrap();
    assert!(matches!(report.repair, Some(Repair::BackToPartial { .. })));
    let report = store.repair(&in_place.cid).unwrap();
    assert_eq!(report.repair, Some(Repair::MarkedChanged));
    assert_eq!(
        assert_index_right(&store),
        vec![(tracked.clone(), in_place.cid)]
    );

    // Adding what is at that path now forgets the stale entry through the index.
    let again = add_in_place(&store, &tracked);
    assert_eq!(again.replaced, vec![in_place.cid]);
    assert_eq!(assert_index_right(&store), vec![(tracked, again.cid)]);
}

#[test]
fn a_database_from_before_the_index_gets_it_built_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let source = fs::canonicalize(dir.path()).unwrap();
    let mut cids = Vec::new();
    {
        let store = Store::open(&root).unwrap();
        for i in 0..5u8 {
            let path = source.join(format!("f{i}.bin"));
            fs::write(&path, vec![i; 10_000]).unwrap();
            cids.push(add_in_place(&store, &path).cid);
        }
        let copy = source.join("copy.bin");
        fs::write(&copy, vec![9u8; 10_000]).unwrap();
        store
            .import(&copy, ImportMode::Copy, None, &mut |_| {})
            .unwrap();
        assert_eq!(assert_index_right(&store).len(), 5);
        // What an older binary wrote: the entries without the index table.
        store
            .db
            .write(Durability::Immediate, |tx| {
                assert!(tx.delete_multimap_table(IN_PLACE_PATHS)?);
                Ok(())
            })
            .unwrap();
    }
    let store = Store::open(&root).unwrap();
    let rows = assert_index_right(&store);
    assert_eq!(rows.len(), 5);
    assert!(cids.iter().all(|cid| rows.iter().any(|(_, c)| c == cid)));

    // And it is used: a changed file added again replaces its stale entry.
    let f0 = source.join("f0.bin");
    fs::write(&f0, vec![42u8; 11_000]).unwrap();
    assert_eq!(add_in_place(&store, &f0).replaced, vec![cids[0]]);
    assert_index_right(&store);
}

/// Decodes made by one import into a store holding `others` files besides.
fn decodes_of_one_import(dir: &Path, others: u32) -> u64 {
    let store = Store::open(dir.join("store")).unwrap();
    let files = dir.join("files");
    fs::create_dir_all(&files).unwrap();
    for i in 0..others {
        let path = files.join(format!("{i}.bin"));
        fs::write(&path, i.to_le_bytes()).unwrap();
        let mode = if i % 2 == 0 {
            ImportMode::Reference
        } else {
            ImportMode::Copy
        };
        store.import(&path, mode, None, &mut |_| {}).unwrap();
    }
    // A file added once, changed, and added again: the path lookup finds one stale entry.
    let path = files.join("measured.bin");
    fs::write(&path, b"before").unwrap();
    add_in_place(&store, &path);
    fs::write(&path, b"after, longer").unwrap();
    let before = DECODED.with(|n| n.get());
    let outcome = add_in_place(&store, &path);
    let decoded = DECODED.with(|n| n.get()) - before;
    assert_eq!(outcome.replaced.len(), 1);
    decoded
}

/// Fails if import goes back to reading every entry to find the stale ones at its path.
#[test]
fn import_reads_as_many_entries_in_a_big_store_as_in_a_small_one() {
    let small = tempfile::tempdir().unwrap();
    let big = tempfile::tempdir().unwrap();
    let in_small = decodes_of_one_import(small.path(), 1);
    let in_big = decodes_of_one_import(big.path(), 300);
    assert_eq!(
        in_small, in_big,
        "import read more entries in a bigger store"
    );
    assert!(in_big <= 4, "{in_big} entries decoded for one import");
}
