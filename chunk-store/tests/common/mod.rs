//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use chunk_store::{ImportMode, Store};
use dht_proto::Cid;

pub const MIB: usize = 1 << 20;

/// Deterministic bytes that differ with `seed`.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u64::from(seed) + 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

pub fn read_all(store: &Store, cid: &Cid) -> Vec<u8> {
    let manifest = store.manifest(cid).unwrap().unwrap();
    let mut out = Vec::new();
    for i in 0..manifest.chunk_count() {
        out.extend_from_slice(&store.read_chunk(cid, i).unwrap());
    }
    out
}

/// Imports `len` bytes (seeded by `seed`) into a source store under `dir` and returns
/// the CID, the manifest bytes and the bytes, as a peer would serve them.
pub fn source_file(dir: &Path, len: usize, seed: u8) -> (Cid, Vec<u8>, Vec<u8>) {
    let src = Store::open(dir.join(format!("src-{seed}"))).unwrap();
    let bytes = data(len, seed);
    let path = write(dir, &format!("source-{seed}.bin"), &bytes);
    let out = src
        .import(&path, ImportMode::Copy, None, &mut |_| {})
        .unwrap();
    let manifest = src.manifest_bytes(&out.cid).unwrap().unwrap();
    (out.cid, manifest, bytes)
}

/// The name of a file's content file under `blobs/` or `partial/`.
pub fn content_name(cid: &Cid) -> String {
    data_encoding::HEXLOWER.encode(cid.hash())
}

/// Chunk `index` of `bytes` cut with 1 MiB chunks.
pub fn chunk(bytes: &[u8], index: u32) -> &[u8] {
    let start = index as usize * MIB;
    &bytes[start..(start + MIB).min(bytes.len())]
}

/// A tmpfs of a few MiB mounted for one test and unmounted when dropped, even when the
/// test fails. Needs root; `None` (with the reason printed) otherwise.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(test: &str, mib: u32) -> Option<Tmpfs> {
        if !rustix::process::geteuid().is_root() {
            println!("SKIPPED {test}: mounting a small tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .status();
        match status {
            Ok(s) if s.success() => Some(Tmpfs { dir }),
            other => {
                println!("SKIPPED {test}: cannot mount a tmpfs here ({other:?})");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `name` until the file system is full; returns the bytes written.
    pub fn fill(&self, name: &str) -> u64 {
        use std::io::Write;
        let mut file = fs::File::create(self.path().join(name)).unwrap();
        let block = vec![0x5au8; 64 << 10];
        let mut written = 0u64;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling the tmpfs: {e}"),
            }
        }
        // Smaller writes take the last partial block.
        for size in [4096usize, 512, 1] {
            while file.write(&block[..size]).is_ok_and(|n| n > 0) {
                written += size as u64;
            }
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
