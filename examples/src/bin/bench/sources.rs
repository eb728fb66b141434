//! Figures 3 and 10: fetches from several sources.
//!
//! Figure 3: a multi-source fetch from `--seeders` seeders, each capped at
//! `--rate-mib` MiB/s (R), beside R: the goal is at least 3.5 × R.
//!
//! Figure 10: scale with sources. The same file fetched from one uncapped seeder and
//! from `--many-seeders` uncapped seeders (16 by default), all on 127.0.0.1, a fresh
//! fetcher each time; the fetch from many must be no slower than from one (no collapse
//! from contention or request overhead). CPU per GiB is that of the seeders that
//! hold the file and the fetcher together.

use std::time::Duration;

use crate::harness::{file_hash, random_file, Daemon};
use crate::report::{mib, size_label, Samples};
use crate::{Bench, MIB};

impl Bench {
    pub(crate) fn figure_multi(&mut self) -> anyhow::Result<()> {
        let size = self.args.multi_size_mib * MIB;
        let n = self.args.seeders;
        let r = self.args.rate_mib;
        let rate_bytes = r * MIB;
        let label = size_label(size);
        println!("\n[3] multi-source fetch of {label} from {n} seeders capped at {r} MiB/s each");
        let file = self.path("multi.bin");
        random_file(&file, size, 2)?;
        let hash = file_hash(&file)?;
        let cap = format!("{r}MiB");
        let mut seeders = Vec::new();
        let mut cid = String::new();
        for i in 0..n {
            let s = self.provider_node(
                &format!("capped-seeder{}", i + 1),
                &["--max-upload-rate", &cap],
            )?;
            cid = self.add(&s, &file, &[])?.0;
            seeders.push(s);
        }
        // Let the announcements reach the DHT before asking.
        std::thread::sleep(Duration::from_secs(2));
        let fetcher = self.node("multi-fetcher", &[])?;
        let providers: Vec<&Daemon> = seeders.iter().collect();
        let f = self.fetch(&fetcher, &providers, &cid, &hash, "multi")?;
        let rate = size as f64 / f.secs;
        let ratio = rate / rate_bytes as f64;
        let ids: Vec<String> = seeders
            .iter()
            .map(Daemon::peer_id)
            .collect::<anyhow::Result<_>>()?;
        let mut shares = Vec::new();
        for p in f.json["peers"].as_array().into_iter().flatten() {
            let id = p["peer_id"].as_str().unwrap_or("?");
            let who = ids
                .iter()
                .position(|s| s == id)
                .map_or_else(|| "other".to_string(), |i| format!("seeder{}", i + 1));
            shares.push(format!("{who} {}", mib(p["bytes"].as_u64().unwrap_or(0))));
        }
        self.note(format!(
            "fetch --json seconds {:.3} ({:.1} MiB/s = {ratio:.2} × R), wall {:.3} s; bytes from {}; fetcher VmHWM {}; file identical",
            f.secs,
            rate / MIB as f64,
            f.wall.as_secs_f64(),
            shares.join(", "),
            mib(f.hwm)
        ));
        self.row(
            &format!("3 · multi-source fetch {label}, {n} seeders at R = {r} MiB/s"),
            &format!("{:.3} s · {:.1} MiB/s", f.secs, rate / MIB as f64),
            &format!("R (one seeder's cap); {n} × R = {} MiB/s", n as u64 * r),
            &format!("{r} MiB/s"),
            format!("{ratio:.2} × R"),
            "≥ 3.5 × R",
        );
        drop(fetcher);
        drop(seeders);
        std::fs::remove_file(&file)?;
        Ok(())
    }

    pub(crate) fn figure_many_sources(&mut self) -> anyhow::Result<()> {
        let size = self.args.multi_size_mib * MIB;
        let n = self.args.many_seeders.max(2);
        let label = size_label(size);
        println!("\n[10] fetch of {label} from 1 and from {n} uncapped seeders on 127.0.0.1");
        // Two files of the same size: one held by every seeder, one by the first only.
        let file = self.path("sources.bin");
        random_file(&file, size, 10)?;
        let hash = file_hash(&file)?;
        let single = self.path("sources-one.bin");
        random_file(&single, size, 11)?;
        let single_hash = file_hash(&single)?;
        let mut seeders: Vec<Daemon> = Vec::new();
        let mut cid = String::new();
        for i in 0..n {
            let s = self.provider_node(&format!("source{}", i + 1), &[])?;
            cid = self.add(&s, &file, &[])?.0;
            seeders.push(s);
        }
        let single_cid = self.add(&seeders[0], &single, &[])?.0;
        for s in &seeders {
            s.wait_announced(Duration::from_secs(60))?;
        }
        let (mut one, mut many) = (Samples::default(), Samples::default());
        for round in 0..self.args.repeat.max(1) {
            let fetcher = self.node("one-source-fetcher", &[])?;
            let f = self.fetch(
                &fetcher,
                &[&seeders[0]],
                &single_cid,
                &single_hash,
                &format!("one-{round}"),
            )?;
            one.push(Duration::from_secs_f64(f.secs), Some(f.cpu));
            let peers_one = f.json["peers"].as_array().map_or(0, Vec::len);
            drop(fetcher);
            let fetcher = self.node("many-source-fetcher", &[])?;
            let all: Vec<&Daemon> = seeders.iter().collect();
            let f = self.fetch(&fetcher, &all, &cid, &hash, &format!("many-{round}"))?;
            many.push(Duration::from_secs_f64(f.secs), Some(f.cpu));
            let peers_many = f.json["peers"].as_array().map_or(0, Vec::len);
            self.note(format!(
                "round {}: from one seeder {:.3} s ({peers_one} peers served); from {n} {:.3} s ({peers_many} peers served; {})",
                round + 1,
                one.0[round],
                f.secs,
                f.cpu.show()
            ));
        }
        self.row(
            &format!("10 · fetch {label} from {n} uncapped seeders"),
            &many.show(size),
            "the same fetch from one uncapped seeder",
            &one.show(size),
            format!("{:.2}", one.best() / many.best()),
            "≥ 1 (no slower)",
        );
        self.cpu_row(
            "10 · fetch from 1 seeder (seeders + fetcher)",
            size,
            one.best_cpu(),
        );
        self.cpu_row(
            &format!("10 · fetch from {n} seeders (seeders + fetcher)"),
            size,
            many.best_cpu(),
        );
        drop(seeders);
        std::fs::remove_file(&file)?;
        std::fs::remove_file(&single)?;
        Ok(())
    }
}
