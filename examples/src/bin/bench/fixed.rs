//! Figure 9: the fixed cost of a fetch. A 1 KiB file whose provider is already
//! connected (the fetcher fetched another file from it just before), from the CLI's
//! start to the file written; beside it, in the same rounds, a CLI command that makes
//! one round trip to the daemon (`p2pd status --json`), the least any command costs.

use std::time::Duration;

use crate::harness::{file_hash, random_file};
use crate::report::Samples;
use crate::Bench;

const ROUNDS: usize = 10;
const SMALL: u64 = 1024;

impl Bench {
    pub(crate) fn figure_fixed_cost(&mut self) -> anyhow::Result<()> {
        println!("\n[9] fetch of a 1 KiB file whose provider is already connected (CLI start → file written)");
        let fetcher = self.node("small-fetcher", &[])?;
        let mut fetch = Samples::default();
        let mut status = Samples::default();
        // Round 0 connects the fetcher to the seeder; it is not counted.
        for round in 0..=ROUNDS {
            let file = self.path(&format!("small-{round}.bin"));
            random_file(&file, SMALL, 9000 + round as u64)?;
            let hash = file_hash(&file)?;
            let (cid, ..) = self.add(self.seeder()?, &file, &[])?;
            self.seeder()?.wait_announced(Duration::from_secs(60))?;
            let f = self.fetch(
                &fetcher,
                &[self.seeder()?],
                &cid,
                &hash,
                &format!("small-{round}"),
            )?;
            let s = fetcher
                .cli(&["status", "--json"], Duration::from_secs(30))?
                .ok("status")?;
            std::fs::remove_file(&file)?;
            if round > 0 {
                fetch.push(f.wall, None);
                status.push(s.wall, None);
            }
        }
        let ms = |s: &Samples| {
            format!(
                "best {:.1} ms, median {:.1} ms of {}",
                s.best() * 1e3,
                s.median() * 1e3,
                s.0.len()
            )
        };
        self.note(format!("fetch 1 KiB, provider connected: {}", ms(&fetch)));
        self.note(format!("p2pd status --json: {}", ms(&status)));
        self.row(
            "9 · `p2pd fetch` of 1 KiB, provider connected (CLI wall time)",
            &ms(&fetch),
            "`p2pd status --json` (one round trip to the daemon)",
            &ms(&status),
            format!("{:.1} × (medians)", fetch.median() / status.median()),
            "≤ 50 ms",
        );
        Ok(())
    }
}
