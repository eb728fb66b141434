//! Figure 12 (issue 16, streaming): how soon a player gets its first 1 MiB. A fresh
//! fetcher that holds nothing of the main file (1 GiB by default) is told through its
//! own API to download it (`POST /api/downloads`, as the web UI's button does) and at
//! once asked for one MiB by Range (`GET /api/files/{cid}/content`, `Range: bytes=…`),
//! at the start of the file and from its middle; the time runs from the download
//! request to the last byte of that MiB. The fetcher must find the provider through the
//! DHT, get the manifest and fetch the range's chunks first. Baselines from the same
//! run: the same request to the seeder, whose copy is complete (the API's own cost),
//! and a fresh fetcher's whole `fetch` of a 64 KiB file (the DHT cold start any first
//! byte pays).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use super::harness::{random_file, Daemon};
use super::report::{size_label, Samples};
use super::{latency, Bench, MIB};

/// Fresh fetchers per offset.
const RUNS: usize = 3;
/// Longest one ranged read may take.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

impl Bench {
    pub(super) fn figure_first_mib(&mut self) -> anyhow::Result<()> {
        println!("\n[12] time to the first 1 MiB by Range of a file nothing of which is local");
        let (cid, _) = self.ensure_seeded()?;
        let source = self.main_file()?;
        self.seeder()?.wait_announced(Duration::from_secs(60))?;
        let size = self.main_size();
        let offsets = [0, (size / 2) / MIB * MIB];

        let mut cold = Samples::default();
        let mut by_offset = Vec::new();
        for offset in offsets {
            let mut samples = Samples::default();
            for run in 0..RUNS {
                let fetcher = self.node(&format!("range-fetcher-{offset}-{run}"), &[])?;
                let took = first_mib(&fetcher, &cid, offset, true, &source)?;
                samples.push(took, None);
                cold.push(took, None);
                let dir = fetcher.data_dir.clone();
                drop(fetcher);
                // The stream went on downloading the rest: do not keep a GiB per run.
                let _ = std::fs::remove_dir_all(dir);
            }
            by_offset.push((offset, samples));
        }

        let mut local = Samples::default();
        for _ in 0..RUNS {
            local.push(
                first_mib(self.seeder()?, &cid, offsets[1], false, &source)?,
                None,
            );
        }

        // The cold start of any first byte: a fresh fetcher's `fetch` of one chunk.
        let small = self.path("first-mib-small.bin");
        random_file(&small, 64 * 1024, 12)?;
        let small_str = small.to_str().context("non-UTF-8 path")?.to_string();
        let small_cid = self
            .seeder()?
            .cli(&["add", &small_str], READ_TIMEOUT)?
            .ok("p2pd add")?
            .stdout
            .trim()
            .to_string();
        self.seeder()?.wait_announced(Duration::from_secs(60))?;
        let mut fetch_small = Samples::default();
        for run in 0..RUNS {
            let fetcher = self.node(&format!("small-fetcher-{run}"), &[])?;
            let out = self.path(&format!("first-mib-small-out-{run}.bin"));
            let out_str = out.to_str().context("non-UTF-8 path")?;
            let wall = fetcher
                .cli(
                    &["fetch", &small_cid, "-o", out_str, "--timeout", "60"],
                    READ_TIMEOUT,
                )?
                .ok("p2pd fetch")?
                .wall;
            fetch_small.push(wall, None);
            let _ = std::fs::remove_file(&out);
        }

        let show = |s: &Samples| {
            format!(
                "{:.3} s median (best {:.3} s, {} runs)",
                s.median(),
                s.best(),
                s.0.len()
            )
        };
        for (offset, samples) in &by_offset {
            self.note(format!(
                "first MiB at offset {} MiB, fresh fetcher: {}",
                offset / MIB,
                show(samples)
            ));
        }
        self.note(format!(
            "the same MiB from the seeder's complete copy: {}",
            show(&local)
        ));
        self.note(format!(
            "`fetch` of a 64 KiB file by a fresh fetcher (DHT cold start): {}",
            show(&fetch_small)
        ));
        self.row(
            &format!(
                "12 · first 1 MiB by Range of a {} file, nothing local",
                size_label(size)
            ),
            &show(&cold),
            "`fetch` of 64 KiB, DHT cold start",
            &show(&fetch_small),
            format!("{:.2}", fetch_small.median() / cold.median()),
            "close to the cold start",
        );
        std::fs::remove_file(&small)?;
        Ok(())
    }
}

/// `GET /api/files/{cid}/content` with `Range: bytes=offset-(offset+1 MiB-1)` on
/// `node`'s API, after `POST /api/downloads` of the file if `start_download`: the time
/// from the first request to the last byte of the MiB. Fails unless the answer is 206
/// with the MiB of `source` at `offset`.
fn first_mib(
    node: &Daemon,
    cid: &str,
    offset: u64,
    start_download: bool,
    source: &std::path::Path,
) -> anyhow::Result<Duration> {
    let (addr, token) = latency::endpoint(&node.data_dir)?;
    let last = offset + MIB - 1;
    let start = Instant::now();
    if start_download {
        let body = format!("{{\"cid\":\"{cid}\"}}");
        let mut stream = TcpStream::connect(&addr)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        write!(
            stream,
            "POST /api/downloads HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        if !answer.starts_with(b"HTTP/1.1 200") {
            bail!(
                "POST /api/downloads answered {}",
                String::from_utf8_lossy(&answer[..answer.len().min(300)])
            );
        }
    }
    let mut stream = TcpStream::connect(&addr)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_nodelay(true)?;
    write!(
        stream,
        "GET /api/files/{cid}/content HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Range: bytes={offset}-{last}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::with_capacity(MIB as usize + 4096);
    let mut buf = vec![0u8; 64 * 1024];
    let mut body_at = None;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if body_at.is_none() {
            body_at = answer
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4);
        }
        if body_at.is_some_and(|at| answer.len() - at >= MIB as usize) {
            break;
        }
    }
    let took = start.elapsed();
    let head = String::from_utf8_lossy(&answer[..answer.len().min(300)]).into_owned();
    if !answer.starts_with(b"HTTP/1.1 206") {
        let body = body_at.map_or(&answer[..0], |at| &answer[at..]);
        bail!(
            "the ranged read answered {}: {}",
            head.lines().next().unwrap_or(""),
            String::from_utf8_lossy(body)
        );
    }
    let body = body_at.map_or(&answer[..0], |at| &answer[at..]);
    if body.len() < MIB as usize {
        bail!("the ranged read ended after {} bytes: {head:?}", body.len());
    }
    let mut expected = vec![0u8; MIB as usize];
    let mut file = std::fs::File::open(source)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(offset))?;
    file.read_exact(&mut expected)?;
    if body[..MIB as usize] != expected[..] {
        bail!("the MiB at offset {offset} differs from the source");
    }
    Ok(took)
}
