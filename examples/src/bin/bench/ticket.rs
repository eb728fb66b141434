//! Figure 7: how soon a fetch by ticket (issue 13) has its file, beside today's fetch by
//! CID through the DHT. Each run starts a fresh fetcher daemon and times `p2pd fetch`
//! of a one-chunk file from the command's start to its exit: an upper bound on the time
//! to the first verified byte (the whole file is one verified chunk). The ticket
//! fetcher knows no node at all and dials the ticket's addresses; the DHT fetcher knows
//! only the bootstrap node and must look the provider up (a cold start). The same
//! command for a file the fetcher already holds is noted as the floor: the CLI's
//! process start and its API calls, without the network.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use super::harness::{file_hash, random_file, Daemon};
use super::report::Samples;
use super::Bench;

/// A file of one chunk.
const SIZE: u64 = 64 * 1024;
/// Fresh fetchers of each kind.
const RUNS: usize = 5;
/// Longest one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(120);

impl Bench {
    pub(super) fn figure_ticket(&mut self) -> anyhow::Result<()> {
        println!("\n[7] time from `fetch` to a verified one-chunk file: ticket vs DHT cold start");
        let src = self.path("ticket-src.bin");
        random_file(&src, SIZE, 7)?;
        let src_str = src.to_str().context("non-UTF-8 path")?.to_string();
        let hash = file_hash(&src)?;
        let seeder = self.seeder()?;
        let cid = seeder
            .cli(&["add", &src_str], FETCH_TIMEOUT)?
            .ok("p2pd add")?
            .stdout
            .trim()
            .to_string();
        let ticket = seeder
            .cli(&["share", &cid], FETCH_TIMEOUT)?
            .ok("p2pd share")?
            .stdout
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        wait_announced(seeder, &cid)?;

        let mut by_ticket = Samples::default();
        let mut by_dht = Samples::default();
        let mut floor = Samples::default();
        for run in 0..RUNS {
            let dht_node = self.node("dht-fetcher", &[])?;
            by_dht.push(
                self.timed_fetch(&dht_node, &cid, &hash, &format!("{run}"))?,
                None,
            );
            drop(dht_node);
            self.next_node += 1;
            let dir = self.path(&format!("node{}-ticket-fetcher", self.next_node));
            let ticket_node = Daemon::start(&self.bin, &dir, "ticket-fetcher", &[])?;
            by_ticket.push(
                self.timed_fetch(&ticket_node, &ticket, &hash, &format!("{run}"))?,
                None,
            );
            // The floor: the same command for a file the node holds already costs the
            // process start and the API calls, no network.
            floor.push(
                self.timed_fetch(&ticket_node, &cid, &hash, &format!("{run}-again"))?,
                None,
            );
        }
        let show = |s: &Samples| {
            format!(
                "{:.3} s median (best {:.3} s, {RUNS} runs)",
                s.median(),
                s.best()
            )
        };
        self.note(format!(
            "by ticket, fetcher knows no node: {}",
            show(&by_ticket)
        ));
        self.note(format!(
            "by CID through the DHT, fetcher knows the bootstrap node: {}",
            show(&by_dht)
        ));
        self.note(format!(
            "the same command for a file the fetcher holds (no network): {}",
            show(&floor)
        ));
        self.row(
            "7 · `fetch` to a verified 64 KiB file, fresh fetcher, by ticket",
            &show(&by_ticket),
            "by CID, DHT cold start",
            &show(&by_dht),
            format!("{:.2}", by_dht.median() / by_ticket.median()),
            "≤ 0.2 s with a ticket",
        );
        Ok(())
    }

    /// Fetches `what` (a CID or a ticket) on `node`; returns the command's wall time.
    /// The output stays (the fetcher's store tracks it in place); the temporary
    /// directory goes at the end.
    fn timed_fetch(
        &self,
        node: &Daemon,
        what: &str,
        hash: &str,
        label: &str,
    ) -> anyhow::Result<Duration> {
        let out = self.path(&format!("ticket-out-{label}-{}.bin", node.name));
        let _ = std::fs::remove_file(&out);
        let out_str = out.to_str().context("non-UTF-8 path")?;
        let took = node
            .cli(
                &["fetch", what, "-o", out_str, "--timeout", "60"],
                FETCH_TIMEOUT,
            )?
            .ok("p2pd fetch")?
            .wall;
        if file_hash(&out)? != hash {
            bail!("the file fetched by {} differs from its source", node.name);
        }
        Ok(took)
    }
}

/// Waits until the seeder's record of `cid` reached a DHT server, so that the DHT
/// fetcher measures a lookup, not the announcement.
fn wait_announced(seeder: &Daemon, cid: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let files = seeder.cli(&["ls", "--json"], FETCH_TIMEOUT)?.json()?;
        let announced = files.as_array().is_some_and(|list| {
            list.iter()
                .any(|f| f["cid"] == cid && f["announcement"]["peers"].as_u64().unwrap_or(0) > 0)
        });
        if announced {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{cid} was not announced within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
