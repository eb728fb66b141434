//! Scenarios against a real on-disk store in a temporary directory.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;

use chunk_store::{EntryState, ImportMode, Location, Store, StoreError};
use common::{data, read_all, source_file, write, MIB};
use dht_proto::manifest::DEFAULT_CHUNK_SIZE;
use dht_proto::{Bitfield, Manifest};

#[test]
fn imports_and_reads_back_every_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    for (len, mode) in [
        (0, ImportMode::Copy),
        (1, ImportMode::Copy),
        (MIB, ImportMode::Copy),
        (3 * MIB + 17, ImportMode::Copy),
        (9 * MIB + 1, ImportMode::Reference),
    ] {
        let bytes = data(len, len as u8);
        let path = write(dir.path(), &format!("f{len}"), &bytes);
        let mut seen = 0;
        let out = store.import(&path, mode, None, &mut |n| seen = n).unwrap();
        assert_eq!(seen, len as u64);
        assert_eq!(out.size, len as u64);
        assert_eq!(out.chunks as usize, len.div_ceil(MIB));
        assert!(!out.already_present);
        assert_eq!(read_all(&store, &out.cid), bytes, "size {len}");
        assert_eq!(
            store.verify(&out.cid).unwrap().bad_chunks,
            Vec::<u32>::new()
        );
        let manifest = store.manifest(&out.cid).unwrap().unwrap();
        assert_eq!(manifest.chunk_size(), DEFAULT_CHUNK_SIZE);
        assert_eq!(manifest.cid(), out.cid);
    }
    assert_eq!(store.list().unwrap().len(), 5);
}

#[test]
fn same_bytes_under_two_names_have_one_cid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let bytes = data(2 * MIB + 5, 1);
    let a = write(dir.path(), "a.bin", &bytes);
    let b = write(dir.path(), "b.bin", &bytes);
    let first = store
        .import(&a, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    let second = store
        .import(&b, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    assert_eq!(first.cid, second.cid);
    assert!(second.already_present);
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.list().unwrap()[0].name.as_deref(), Some("a.bin"));
}

#[test]
fn a_file_tracked_in_place_is_refused_once_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let bytes = data(2 * MIB, 2);
    let path = write(dir.path(), "live.bin", &bytes);
    let out = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    assert_eq!(store.read_chunk(&out.cid, 1).unwrap(), &bytes[MIB..]);
    // Same size, different bytes, and (after a pause) a different mtime.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut changed = bytes.clone();
    changed[MIB + 10] ^= 0xff;
    fs::write(&path, &changed).unwrap();
    assert!(matches!(
        store.read_chunk(&out.cid, 1),
        Err(StoreError::Changed(_))
    ));
    // Changed bytes behind an unchanged size and mtime are caught by the hash.
    let sneaky = data(2 * MIB, 5);
    let fresh = write(dir.path(), "sneaky.bin", &sneaky);
    let out = store
        .import(&fresh, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    let mtime = fs::metadata(&fresh).unwrap().modified().unwrap();
    let mut changed = sneaky.clone();
    changed[MIB + 10] ^= 0xff;
    fs::write(&fresh, &changed).unwrap();
    fs::File::options()
        .write(true)
        .open(&fresh)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(store.read_chunk(&out.cid, 0).is_ok());
    assert!(matches!(
        store.read_chunk(&out.cid, 1),
        Err(StoreError::Changed(_))
    ));
}

#[test]
fn interrupted_imports_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    {
        let store = Store::open(&root).unwrap();
        let missing = store.import(
            &dir.path().join("nope"),
            ImportMode::Copy,
            None,
            &mut |_| {},
        );
        assert!(matches!(missing, Err(StoreError::Io { .. })));
        let not_file = store.import(dir.path(), ImportMode::Copy, None, &mut |_| {});
        assert!(matches!(not_file, Err(StoreError::Invalid(_))));
        assert!(store.is_empty().unwrap());
    }
    // What a crash mid-import leaves: a temporary copy and an orphan blob.
    fs::write(root.join("tmp/import-0000000000000001"), b"half").unwrap();
    fs::write(root.join("blobs").join("ab".repeat(32)), b"orphan").unwrap();
    let store = Store::open(&root).unwrap();
    assert!(store.is_empty().unwrap());
    assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(root.join("blobs")).unwrap().count(), 0);
}

#[test]
fn remove_deletes_copies_but_not_files_tracked_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let copied = store
        .import(
            &write(dir.path(), "c", &data(100, 3)),
            ImportMode::Copy,
            None,
            &mut |_| {},
        )
        .unwrap();
    let in_place_path = write(dir.path(), "r", &data(100, 4));
    let in_place = store
        .import(&in_place_path, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    assert!(store.remove(&copied.cid).unwrap());
    assert!(store.remove(&in_place.cid).unwrap());
    assert!(!store.remove(&copied.cid).unwrap());
    assert!(in_place_path.exists());
    assert_eq!(
        fs::read_dir(dir.path().join("store/blobs"))
            .unwrap()
            .count(),
        0
    );
    assert!(matches!(
        store.read_chunk(&copied.cid, 0),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_download_resumes_with_chunks_written_after_the_last_save() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, manifest_bytes, bytes) = source_file(dir.path(), 5 * MIB + 3, 9);
    let root = dir.path().join("dst");
    {
        let store = Store::open(&root).unwrap();
        let (manifest, mut have) = store
            .begin_download(&cid, &manifest_bytes, Some("x".into()))
            .unwrap();
        assert_eq!(have.count(), 0);
        for i in [0u32, 2] {
            let chunk =
                &bytes[manifest.chunk_offset(i) as usize..][..manifest.chunk_len(i) as usize];
            store.write_chunk(&cid, &manifest, i, chunk).unwrap();
            have.set(i);
        }
        store.save_progress(&cid, &have).unwrap();
        // Written but never saved: as if the daemon was killed right after.
        let i = 4;
        let chunk = &bytes[manifest.chunk_offset(i) as usize..][..manifest.chunk_len(i) as usize];
        store.write_chunk(&cid, &manifest, i, chunk).unwrap();
        // A corrupt chunk is refused and nothing is written.
        assert!(matches!(
            store.write_chunk(&cid, &manifest, 1, &vec![0u8; MIB]),
            Err(StoreError::BadChunk { index: 1 })
        ));
        // Partial chunks are served only once verified.
        assert!(store.read_chunk(&cid, 0).is_ok());
        assert!(matches!(
            store.read_chunk(&cid, 1),
            Err(StoreError::ChunkUnavailable { .. })
        ));
    }
    let store = Store::open(&root).unwrap();
    let info = store.info(&cid).unwrap().unwrap();
    assert_eq!(info.state, EntryState::Partial { have: 2 });
    let (manifest, mut have) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    assert_eq!(have.iter_set().collect::<Vec<_>>(), vec![0, 2, 4]);
    for i in 0..manifest.chunk_count() {
        if !have.get(i) {
            let chunk =
                &bytes[manifest.chunk_offset(i) as usize..][..manifest.chunk_len(i) as usize];
            store.write_chunk(&cid, &manifest, i, chunk).unwrap();
            have.set(i);
        }
    }
    let output = dir.path().join("out.bin");
    fs::write(&output, b"occupied").unwrap();
    assert!(store.complete_download(&cid, &have, Some(&output)).is_err());
    fs::remove_file(&output).unwrap();
    let location = store.complete_download(&cid, &have, Some(&output)).unwrap();
    assert!(matches!(location, Location::Reference { .. }));
    assert_eq!(fs::read(&output).unwrap(), bytes);
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Complete
    );
    assert_eq!(read_all(&store, &cid), bytes);
    assert!(matches!(
        store.begin_download(&cid, &manifest_bytes, None),
        Err(StoreError::AlreadyComplete(_))
    ));
}

#[test]
fn a_download_refuses_a_manifest_that_is_not_the_cid() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, mut manifest_bytes, bytes) = source_file(dir.path(), MIB + 1, 9);
    let store = Store::open(dir.path().join("dst")).unwrap();
    // Change one byte of the first chunk's hash: still a well-formed manifest, just not
    // the one the CID names.
    let hash = blake3::hash(&bytes[..MIB]);
    let at = manifest_bytes
        .windows(32)
        .position(|w| w == hash.as_bytes())
        .expect("the manifest holds the first chunk's hash");
    manifest_bytes[at] ^= 1;
    assert!(Manifest::decode(&manifest_bytes).is_ok());
    assert!(matches!(
        store.begin_download(&cid, &manifest_bytes, None),
        Err(StoreError::Invalid(m)) if m.contains("do not hash")
    ));
    assert!(store.is_empty().unwrap());
}

#[test]
fn an_incomplete_download_cannot_be_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, manifest_bytes, _) = source_file(dir.path(), 2 * MIB, 9);
    let store = Store::open(dir.path().join("dst")).unwrap();
    let (manifest, _) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    let mut lie = Bitfield::new(manifest.chunk_count());
    lie.set(0);
    assert!(store.complete_download(&cid, &lie, None).is_err());
    let _: &Manifest = &manifest;
}

#[test]
fn chunks_in_pool_buffers_are_written_with_direct_io_and_read_back_intact() {
    // Under target/ (a real disk file system), not /tmp, which may be a tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (cid, manifest_bytes, bytes) = source_file(dir.path(), 3 * MIB + 5, 9);
    let store = Store::open(dir.path().join("dst")).unwrap();
    let (manifest, mut have) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    // Out of order, as a swarm delivers them; chunk 1 arrives in memory that is not
    // page-aligned (one byte into a Vec).
    for i in [3u32, 0, 2, 1] {
        let chunk = &bytes[manifest.chunk_offset(i) as usize..][..manifest.chunk_len(i) as usize];
        if i == 1 {
            let mut unaligned = vec![0u8; chunk.len() + 1];
            unaligned[1..].copy_from_slice(chunk);
            store
                .write_chunk(&cid, &manifest, i, &unaligned[1..])
                .unwrap();
        } else {
            let mut buf = store.buffers().get(chunk.len());
            buf.copy_from_slice(chunk);
            store.write_chunk(&cid, &manifest, i, &buf).unwrap();
        }
        have.set(i);
        // Served from the partial file right away, verified.
        assert_eq!(store.read_chunk(&cid, i).unwrap(), chunk);
    }
    if cfg!(target_os = "linux") {
        // Chunks 0 and 2 are whole pages in aligned buffers; chunk 3 (5 bytes) and the
        // unaligned chunk 1 are written through the page cache.
        assert_eq!(store.direct_writes(), 2);
    }
    store.complete_download(&cid, &have, None).unwrap();
    assert_eq!(read_all(&store, &cid), bytes);
    // Turned off, every chunk goes through the page cache.
    store.set_direct_io(false);
    let (cid3, manifest_bytes3, bytes3) = source_file(&dir.path().join("c"), 2 * MIB + 1, 9);
    let (manifest3, _) = store.begin_download(&cid3, &manifest_bytes3, None).unwrap();
    let before = store.direct_writes();
    let mut buf = store.buffers().get(MIB);
    buf.copy_from_slice(&bytes3[..MIB]);
    store.write_chunk(&cid3, &manifest3, 0, &buf).unwrap();
    assert_eq!(store.direct_writes(), before);
    assert_eq!(store.read_chunk(&cid3, 0).unwrap(), &bytes3[..MIB]);
    store.set_direct_io(true);
    // A corrupt chunk in a pool buffer is refused like any other.
    let (cid2, manifest_bytes2, _) = source_file(&dir.path().join("b"), 2 * MIB, 9);
    let (manifest2, _) = store.begin_download(&cid2, &manifest_bytes2, None).unwrap();
    // (Pool buffers are reused: this one may still hold a valid chunk 0.)
    let mut buf = store.buffers().get(MIB);
    buf.fill(0);
    assert!(matches!(
        store.write_chunk(&cid2, &manifest2, 0, &buf),
        Err(StoreError::BadChunk { index: 0 })
    ));
}

#[test]
fn listing_many_files_keeps_the_manifests_being_served_in_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let served = write(dir.path(), "served.bin", &data(MIB, 1));
    let served = store
        .import(&served, ImportMode::Copy, None, &mut |_| {})
        .unwrap()
        .cid;
    for i in 0..80u32 {
        let path = write(dir.path(), &format!("f{i}"), &i.to_le_bytes());
        store
            .import(&path, ImportMode::Copy, None, &mut |_| {})
            .unwrap();
    }
    store.read_chunk(&served, 0).unwrap();
    assert!(store.cached_manifest(&served).is_some());
    assert_eq!(store.list().unwrap().len(), 81);
    // The listing decoded 80 manifests without caching them, so the one in use stayed.
    assert!(store.cached_manifest(&served).is_some());
}

/// Sets a file's mtime back to `mtime`, so that a change hides behind unchanged metadata.
fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
}

#[test]
fn a_changed_file_is_marked_persistently_stops_being_served_and_is_re_added() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let bytes = data(3 * MIB, 6);
    let path = write(dir.path(), "tracked.bin", &bytes);
    let cid = {
        let store = Store::open(&root).unwrap();
        let cid = store
            .import(&path, ImportMode::Reference, None, &mut |_| {})
            .unwrap()
            .cid;
        // Bytes changed behind an unchanged size and mtime: only the hash sees it.
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        let mut changed = bytes.clone();
        changed[2 * MIB + 1] ^= 0xff;
        fs::write(&path, &changed).unwrap();
        set_mtime(&path, mtime);
        assert_eq!(
            store.info(&cid).unwrap().unwrap().state,
            EntryState::Complete
        );
        assert!(store.read_chunk(&cid, 0).is_ok());
        assert!(matches!(
            store.read_chunk(&cid, 2),
            Err(StoreError::Changed(_))
        ));
        // From now on no chunk is served, even the unchanged ones, and the file is
        // listed as changed and no longer among the files to announce.
        assert!(matches!(
            store.read_chunk(&cid, 0),
            Err(StoreError::Changed(_))
        ));
        assert_eq!(
            store.info(&cid).unwrap().unwrap().state,
            EntryState::ChangedOnDisk
        );
        assert!(store.complete_cids().unwrap().is_empty());
        cid
    };
    // The mark survives a restart, even though size and mtime still look unchanged.
    let store = Store::open(&root).unwrap();
    assert_eq!(store.list().unwrap()[0].state, EntryState::ChangedOnDisk);
    assert!(matches!(
        store.read_chunk(&cid, 0),
        Err(StoreError::Changed(_))
    ));

    // The original bytes back, added again: the same CID, served again.
    fs::write(&path, &bytes).unwrap();
    let again = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    assert_eq!(again.cid, cid);
    assert!(!again.already_present, "it could not be served before");
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Complete
    );
    assert_eq!(read_all(&store, &cid), bytes);
    assert_eq!(store.complete_cids().unwrap(), vec![cid]);

    // New content at that path: a stat finds the change; added again, it gets a new
    // CID and the stale entry is dropped.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let new_bytes = data(MIB + 5, 7);
    fs::write(&path, &new_bytes).unwrap();
    assert_eq!(store.find_changed_in_place_files().unwrap(), vec![cid]);
    assert!(store.find_changed_in_place_files().unwrap().is_empty());
    let newer = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap();
    assert_ne!(newer.cid, cid);
    assert_eq!(newer.replaced, vec![cid]);
    assert!(store.info(&cid).unwrap().is_none());
    assert_eq!(read_all(&store, &newer.cid), new_bytes);

    // Changed and added again before anything noticed: replaced all the same.
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&path, data(MIB, 8)).unwrap();
    let newest = store
        .import(&path, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    assert_eq!(newest.replaced, vec![newer.cid]);
    assert_eq!(store.list().unwrap().len(), 1);
}

#[test]
fn a_vanished_file_is_listed_as_changed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let path = write(dir.path(), "gone.bin", &data(MIB, 8));
    let cid = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap()
        .cid;
    fs::remove_file(&path).unwrap();
    // A stat is enough for listings; nothing was recorded yet.
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::ChangedOnDisk
    );
    assert!(store.complete_cids().unwrap().is_empty());
    assert!(matches!(store.read_chunk(&cid, 0), Err(StoreError::Changed(p)) if p == path));
}

#[test]
fn a_fetch_of_a_file_changed_on_disk_downloads_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, manifest_bytes, bytes) = source_file(dir.path(), 2 * MIB, 10);
    let store = Store::open(dir.path().join("store")).unwrap();
    let path = write(dir.path(), "mine.bin", &bytes);
    store
        .import(
            &path,
            ImportMode::Reference,
            Some("mine.bin".into()),
            &mut |_| {},
        )
        .unwrap();
    assert!(matches!(
        store.begin_download(&cid, &manifest_bytes, None),
        Err(StoreError::AlreadyComplete(_))
    ));
    fs::write(&path, b"something else").unwrap();
    let (manifest, mut have) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    assert_eq!(have.count(), 0);
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Partial { have: 0 }
    );
    for i in 0..manifest.chunk_count() {
        store
            .write_chunk(&cid, &manifest, i, common::chunk(&bytes, i))
            .unwrap();
        have.set(i);
    }
    store.complete_download(&cid, &have, None).unwrap();
    assert_eq!(read_all(&store, &cid), bytes);
    assert_eq!(fs::read(&path).unwrap(), b"something else", "left alone");
    assert_eq!(
        store.info(&cid).unwrap().unwrap().name.as_deref(),
        Some("mine.bin")
    );
}

#[test]
fn a_fifo_is_refused_before_it_is_opened() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let fifo = dir.path().join("pipe");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let result = store.import(&fifo, ImportMode::Copy, None, &mut |_| {});
            let _ = tx.send(result.map(|o| o.cid));
        });
        let result = rx.recv_timeout(std::time::Duration::from_secs(10));
        if result.is_err() {
            // Unblock the import stuck in open() so the scope can end, then fail.
            let _ = fs::OpenOptions::new().write(true).open(&fifo);
        }
        let result = result.expect("importing a FIFO blocked");
        assert!(
            matches!(&result, Err(StoreError::Invalid(m)) if m.contains("not a regular file")),
            "{result:?}"
        );
    });
    assert!(store.is_empty().unwrap());
    assert_eq!(
        fs::read_dir(dir.path().join("store/tmp")).unwrap().count(),
        0
    );
}

#[test]
fn names_with_path_parts_are_refused_and_names_from_peers_made_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let path = write(dir.path(), "plain.bin", b"x");
    for bad in ["../../n", "a/b", ".hidden", "", "tab\there"] {
        assert!(
            matches!(
                store.import(&path, ImportMode::Copy, Some(bad.into()), &mut |_| {}),
                Err(StoreError::Invalid(m)) if m.contains("invalid name")
            ),
            "{bad:?}"
        );
    }
    assert!(store.is_empty().unwrap());
    let ok = store
        .import(
            &path,
            ImportMode::Copy,
            Some("report 2.pdf".into()),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(ok.name.as_deref(), Some("report 2.pdf"));

    let (cid, manifest_bytes, _) = source_file(dir.path(), 100, 11);
    store
        .begin_download(&cid, &manifest_bytes, Some("../../etc/passwd".into()))
        .unwrap();
    assert_eq!(
        store.info(&cid).unwrap().unwrap().name.as_deref(),
        Some("passwd")
    );
    let (cid, manifest_bytes, _) = source_file(dir.path(), 100, 12);
    store
        .begin_download(&cid, &manifest_bytes, Some("..".into()))
        .unwrap();
    assert_eq!(store.info(&cid).unwrap().unwrap().name, None);
}

#[test]
fn a_lost_partial_file_reads_as_chunks_not_held_and_is_recreated_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, manifest_bytes, bytes) = source_file(dir.path(), 2 * MIB, 13);
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let (manifest, _) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    store
        .write_chunk(&cid, &manifest, 0, common::chunk(&bytes, 0))
        .unwrap();
    fs::remove_file(root.join("partial").join(common::content_name(&cid))).unwrap();
    assert!(matches!(
        store.read_chunk(&cid, 0),
        Err(StoreError::ChunkUnavailable { index: 0, .. })
    ));
    let (_, have) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    assert_eq!(have.count(), 0);
    assert!(root
        .join("partial")
        .join(common::content_name(&cid))
        .exists());
}
