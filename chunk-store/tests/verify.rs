//! Verify and repair against a real on-disk store: damage made by hand, found, reported
//! per file, and repaired so that a download makes the file whole again.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::os::unix::fs::FileExt;

use chunk_store::{EntryState, ImportMode, Repair, Store};
use common::*;
use dht_proto::Bitfield;

fn damage(path: &std::path::Path, offset: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    let mut byte = [0u8; 1];
    fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut byte, offset)
        .unwrap();
    file.write_all_at(&[byte[0] ^ 0xff], offset).unwrap();
}

#[test]
fn verify_reports_bad_and_missing_chunks_and_repair_makes_the_copy_a_download_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let bytes = data(5 * MIB + 10, 1);
    let cid = store
        .import(
            &write(dir.path(), "f.bin", &bytes),
            ImportMode::Copy,
            None,
            &mut |_| {},
        )
        .unwrap()
        .cid;
    let blob = root.join("blobs").join(content_name(&cid));
    damage(&blob, MIB as u64 + 7);
    fs::OpenOptions::new()
        .write(true)
        .open(&blob)
        .unwrap()
        .set_len(4 * MIB as u64 + 3)
        .unwrap();

    let report = store.verify(&cid).unwrap();
    assert_eq!(report.chunks_checked, 6);
    assert_eq!(report.bad_chunks, vec![1]);
    assert_eq!(report.missing_chunks, vec![4, 5]);
    assert!(!report.is_ok() && !report.changed_on_disk && report.repair.is_none());
    // Verifying changes nothing.
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Complete
    );
    assert!(blob.exists());

    let report = store.repair(&cid).unwrap();
    assert_eq!(report.repair, Some(Repair::BackToPartial { have: 3 }));
    assert!(!blob.exists());
    assert!(root.join("partial").join(content_name(&cid)).exists());
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Partial { have: 3 }
    );
    assert!(store.complete_cids().unwrap().is_empty());
    // The repaired store is consistent, and a download fetches only what is missing.
    assert!(store.verify(&cid).unwrap().is_ok());
    let manifest_bytes = store.manifest_bytes(&cid).unwrap().unwrap();
    drop(store);
    let store = Store::open(&root).unwrap();
    let (manifest, mut have) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    assert_eq!(have.iter_set().collect::<Vec<_>>(), vec![0, 2, 3]);
    for i in [1, 4, 5] {
        store
            .write_chunk(&cid, &manifest, i, chunk(&bytes, i))
            .unwrap();
        have.set(i);
    }
    store.complete_download(&cid, &have, None).unwrap();
    assert_eq!(read_all(&store, &cid), bytes);
    assert!(store.verify(&cid).unwrap().is_ok());
}

#[test]
fn a_lost_copy_is_all_missing_and_repaired_into_an_empty_download() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let cid = store
        .import(
            &write(dir.path(), "f.bin", &data(2 * MIB, 2)),
            ImportMode::Copy,
            None,
            &mut |_| {},
        )
        .unwrap()
        .cid;
    fs::remove_file(root.join("blobs").join(content_name(&cid))).unwrap();
    let report = store.repair(&cid).unwrap();
    assert_eq!(report.missing_chunks, vec![0, 1]);
    assert_eq!(report.repair, Some(Repair::BackToPartial { have: 0 }));
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Partial { have: 0 }
    );
}

#[test]
fn repair_drops_a_partial_downloads_bad_chunks_from_its_bitfield() {
    let dir = tempfile::tempdir().unwrap();
    let (cid, manifest_bytes, bytes) = source_file(dir.path(), 4 * MIB, 3);
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let (manifest, mut have) = store.begin_download(&cid, &manifest_bytes, None).unwrap();
    for i in [0, 2, 3] {
        store
            .write_chunk(&cid, &manifest, i, chunk(&bytes, i))
            .unwrap();
        have.set(i);
    }
    store.save_progress(&cid, &have).unwrap();
    damage(
        &root.join("partial").join(content_name(&cid)),
        2 * MIB as u64,
    );

    let report = store.verify(&cid).unwrap();
    assert_eq!(
        report.chunks_checked, 3,
        "only the chunks the bitfield claims"
    );
    assert_eq!(report.bad_chunks, vec![2]);
    let report = store.repair(&cid).unwrap();
    assert_eq!(
        report.repair,
        Some(Repair::DroppedFromPartial { dropped: 1 })
    );
    let saved = store.partial_have(&cid).unwrap().unwrap();
    assert_eq!(saved.iter_set().collect::<Vec<_>>(), vec![0, 3]);
    assert!(store.verify(&cid).unwrap().is_ok());
}

#[test]
fn a_changed_in_place_file_is_reported_and_repair_marks_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let path = write(dir.path(), "mine.bin", &data(3 * MIB, 4));
    let cid = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap()
        .cid;
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    damage(&path, 2 * MIB as u64 + 1);
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();

    let report = store.verify(&cid).unwrap();
    assert!(report.changed_on_disk);
    assert_eq!(report.bad_chunks, vec![2]);
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::Complete
    );
    let report = store.repair(&cid).unwrap();
    assert_eq!(report.repair, Some(Repair::MarkedChanged));
    assert_eq!(
        store.info(&cid).unwrap().unwrap().state,
        EntryState::ChangedOnDisk
    );
    // Already marked: reported, nothing more to repair.
    let report = store.repair(&cid).unwrap();
    assert!(report.changed_on_disk && report.repair.is_none());
}

#[test]
fn verify_store_reports_every_file_and_the_totals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let mut cids = Vec::new();
    for i in 0..3u8 {
        let path = write(dir.path(), &format!("f{i}"), &data(MIB + 1, 10 + i));
        cids.push(
            store
                .import(&path, ImportMode::Copy, None, &mut |_| {})
                .unwrap()
                .cid,
        );
    }
    let (cid, manifest_bytes, _) = source_file(dir.path(), 2 * MIB, 20);
    store.begin_download(&cid, &manifest_bytes, None).unwrap();
    store.save_progress(&cid, &Bitfield::new(2)).unwrap();

    let clean = store.verify_store(false, &mut |_| {}).unwrap();
    assert!(clean.is_ok());
    assert_eq!(clean.files_checked, 4);
    assert_eq!(clean.files.iter().map(|f| f.chunks_checked).sum::<u32>(), 6);

    damage(&root.join("blobs").join(content_name(&cids[1])), 5);
    fs::remove_file(root.join("blobs").join(content_name(&cids[2]))).unwrap();
    let mut seen = Vec::new();
    let report = store
        .verify_store(false, &mut |f| seen.push(f.cid))
        .unwrap();
    assert_eq!(seen.len(), 4);
    assert_eq!(
        (report.bad_chunks, report.missing_chunks, report.repaired),
        (1, 2, 0)
    );
    assert!(!report.is_ok());
    let report = store.verify_store(true, &mut |_| {}).unwrap();
    assert_eq!(report.repaired, 2);
    assert!(store.verify_store(false, &mut |_| {}).unwrap().is_ok());
}

/// CPU seconds (user + system, all threads) this process has used so far, from
/// `/proc/self/stat` (Linux; clock ticks of 10 ms).
fn cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Prints what `verify` costs on a 256 MiB file tracked in place (wall time and CPU time),
/// beside the way it used to work (one `read_chunk` per chunk, each with its own lookups,
/// open and hash, then a second hash), measured in the same run. Run by hand:
/// `cargo test --release -p chunk-store --test verify -- --ignored --nocapture verify_cost`
#[test]
#[ignore = "prints timings; run by hand"]
fn verify_cost_beside_the_chunk_by_chunk_baseline() {
    use std::time::Instant;
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let path = write(dir.path(), "big.bin", &data(256 * MIB, 1));
    let cid = store
        .import(&path, ImportMode::Reference, None, &mut |_| {})
        .unwrap()
        .cid;
    let manifest = store.manifest(&cid).unwrap().unwrap();
    let measure = |run: &dyn Fn()| {
        let (start, cpu) = (Instant::now(), cpu_seconds());
        run();
        (start.elapsed().as_secs_f64(), cpu_seconds() - cpu)
    };
    for round in 1..=3 {
        let (wall_before, cpu_before) = measure(&|| {
            for i in 0..manifest.chunk_count() {
                let bytes = store.read_chunk(&cid, i).unwrap();
                assert!(manifest.verify_chunk(i, &bytes));
            }
        });
        let (wall, cpu) = measure(&|| assert!(store.verify(&cid).unwrap().is_ok()));
        println!(
            "round {round}: 256 MiB in place: chunk by chunk {:.0} ms wall, {:.2} s CPU; \
             verify {:.0} ms wall, {:.2} s CPU",
            wall_before * 1e3,
            cpu_before,
            wall * 1e3,
            cpu,
        );
    }
}

#[test]
fn a_download_that_completes_while_it_is_verified_is_not_reported_missing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    let dir = tempfile::tempdir().unwrap();
    // Distinct files, so that no round's entry is taken for another's.
    let source = Store::open(dir.path().join("src")).unwrap();
    let files: Vec<(dht_proto::Cid, Vec<u8>, Vec<u8>)> = (0..=255u8)
        .map(|seed| {
            let bytes = data(64 * 1024 + 3, seed);
            let path = write(dir.path(), &format!("source-{seed}.bin"), &bytes);
            let cid = source
                .import(&path, ImportMode::Copy, None, &mut |_| {})
                .unwrap()
                .cid;
            (cid, source.manifest_bytes(&cid).unwrap().unwrap(), bytes)
        })
        .collect();
    let store = Store::open(dir.path().join("dst")).unwrap();
    let current = Mutex::new(None);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let verifier = scope.spawn(|| {
            let mut checked = 0u32;
            while !done.load(Ordering::Relaxed) {
                let Some(cid) = *current.lock().unwrap() else {
                    continue;
                };
                match store.verify(&cid) {
                    Ok(report) => {
                        assert!(report.is_ok(), "after {checked} clean checks: {report:?}");
                        checked += 1;
                    }
                    Err(chunk_store::StoreError::NotFound(_)) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            checked
        });
        // Each file is downloaded and completed (into the store or to an output file, in
        // turn) while the verifier checks it.
        let mut rounds = 0;
        for (round, (cid, manifest_bytes, bytes)) in files.iter().enumerate() {
            if verifier.is_finished() {
                break;
            }
            let (manifest, mut have) = store.begin_download(cid, manifest_bytes, None).unwrap();
            *current.lock().unwrap() = Some(*cid);
            for i in 0..manifest.chunk_count() {
                store
                    .write_chunk(cid, &manifest, i, chunk(bytes, i))
                    .unwrap();
                have.set(i);
            }
            store.save_progress(cid, &have).unwrap();
            let output = dir.path().join(format!("out-{round}.bin"));
            store
                .complete_download(cid, &have, (round % 2 == 1).then_some(output.as_path()))
                .unwrap();
            rounds += 1;
        }
        done.store(true, Ordering::Relaxed);
        let checked = verifier.join().unwrap();
        assert!(
            rounds == 256 && checked > 256,
            "{rounds} rounds, {checked} checks"
        );
    });
}
