//! Figures 1 and 2, the main file's speed: `p2pd add` beside BLAKE3 on all cores and on
//! one, and a file copy; a single-source fetch beside raw TCP and the bare libp2p stream
//! carrying the same bytes.

use std::fs::File;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::harness::{file_hash, CpuMeter};
use crate::nodes::measure_self;
use crate::reference::Speeds;
use crate::report::{mib, size_label, Samples};
use crate::{transport, Bench, LONG_TIMEOUT, MIB};

impl Bench {
    pub(crate) fn figure_add(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[1] add {label}: p2pd add vs BLAKE3 (all cores) vs file copy");
        let file = self.main_file()?;
        let repeat = self.args.repeat.max(1);

        let mut b3_rayon = Samples::default();
        let mut b3_single = Samples::default();
        for _ in 0..repeat {
            let (rayon_hash, t, cpu) = measure_self(|| {
                let mut h = blake3::Hasher::new();
                h.update_mmap_rayon(&file)?;
                Ok(h.finalize())
            })?;
            b3_rayon.push(t, Some(cpu));
            let (single_hash, t, cpu) = measure_self(|| {
                let mut h = blake3::Hasher::new();
                h.update_mmap(&file)?;
                Ok(h.finalize())
            })?;
            b3_single.push(t, Some(cpu));
            if rayon_hash != single_hash {
                bail!("BLAKE3 with and without rayon disagree");
            }
        }
        self.note(format!("BLAKE3 update_mmap_rayon: {}", b3_rayon.show(size)));
        self.note(format!(
            "BLAKE3 update_mmap, one thread: {}",
            b3_single.show(size)
        ));

        let mut copy = Samples::default();
        let mut copy_sync = Samples::default();
        let target = self.path("copy.bin");
        for _ in 0..repeat {
            let _ = std::fs::remove_file(&target);
            let meter = CpuMeter::start(&[std::process::id()]);
            let t = Instant::now();
            std::fs::copy(&file, &target)?;
            copy.push(t.elapsed(), Some(meter.stop()));
            File::open(&target)?.sync_all()?;
            copy_sync.push(t.elapsed(), Some(meter.stop()));
            std::fs::remove_file(&target)?;
        }
        self.note(format!("std::fs::copy: {}", copy.show(size)));
        self.note(format!("std::fs::copy + fsync: {}", copy_sync.show(size)));

        let mut add = Samples::default();
        let mut cid = String::new();
        let mut chunks = 0;
        for run in 0..repeat {
            if run > 0 {
                // Forget the file so the next add does the whole job again.
                self.seeder()?
                    .cli(&["rm", &cid], LONG_TIMEOUT)?
                    .ok("p2pd rm")?;
            }
            let (c, n, wall, cpu) = self.add(self.seeder()?, &file, &[])?;
            add.push(wall, Some(cpu));
            cid = c;
            chunks = n;
        }
        self.note(format!("p2pd add ({chunks} chunks): {}", add.show(size)));
        self.seeded = Some((cid, file_hash(&file)?));

        let fig = format!("1 · `p2pd add` {label} (CLI start → CID)");
        let value = add.show(size);
        let ratio = |b: &Samples| format!("{:.2}", b.best() / add.best());
        self.row(
            &fig,
            &value,
            "BLAKE3 all cores (`update_mmap_rayon`)",
            &b3_rayon.show(size),
            ratio(&b3_rayon),
            "—",
        );
        self.row(
            &fig,
            &value,
            "BLAKE3 one core (`update_mmap`)",
            &b3_single.show(size),
            ratio(&b3_single),
            "—",
        );
        self.row(
            &fig,
            &value,
            "`std::fs::copy`",
            &copy.show(size),
            ratio(&copy),
            "—",
        );
        self.row(
            &fig,
            &value,
            "`std::fs::copy` + fsync",
            &copy_sync.show(size),
            ratio(&copy_sync),
            "—",
        );
        self.cpu_row("1 · `p2pd add` (daemon)", size, add.best_cpu());
        self.cpu_row("1 · BLAKE3 `update_mmap_rayon`", size, b3_rayon.best_cpu());
        self.cpu_row("1 · BLAKE3 `update_mmap`", size, b3_single.best_cpu());
        self.cpu_row("1 · `std::fs::copy` + fsync", size, copy_sync.best_cpu());
        Ok(())
    }

    pub(crate) fn figure_fetch(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[2] single-source fetch of {label}: p2pd vs raw TCP vs bare libp2p stream");
        let file = self.main_file()?;
        let repeat = self.args.repeat.max(1);

        // The measurements are interleaved, one of each per round, so that a machine
        // whose speed drifts (it is shared) slows each side alike; the ratio of each
        // round is reported beside the ratio of the best runs.
        let (cid, hash) = self.ensure_seeded()?;
        let mut tcp = Samples::default();
        let mut bare = Samples::default();
        let mut per_chunk = Samples::default();
        let mut retried = 0;
        let mut cli_secs = Samples::default();
        let mut wall = Samples::default();
        let mut round_ratios = Vec::new();
        let mut speeds = Speeds::default();
        for run in 0..repeat {
            let speed_before = speeds.measure();
            let (t, _, cpu) = measure_self(|| transport::raw_tcp(&file))?;
            tcp.push(t, Some(cpu));

            let rt = self.rt.clone();
            let (bare_t, _, cpu) = measure_self(|| {
                rt.block_on(transport::bare_libp2p(&file, transport::Stack::TcpDaemon))
            })?;
            bare.push(bare_t, Some(cpu));

            let rt = self.rt.clone();
            let ((t, r), _, cpu) =
                measure_self(|| rt.block_on(transport::bare_libp2p_per_chunk(&file, MIB, 8)))?;
            per_chunk.push(t, Some(cpu));
            retried += r;

            let fetcher = self.node("fetcher", &[])?;
            let f = self.fetch(
                &fetcher,
                &[self.seeder()?],
                &cid,
                &hash,
                &format!("single-{run}"),
            )?;
            cli_secs.push(Duration::from_secs_f64(f.secs), Some(f.cpu));
            wall.push(f.wall, Some(f.cpu));
            let ratio = bare_t.as_secs_f64() / f.secs;
            round_ratios.push(ratio);
            let speed_after = speeds.measure();
            self.note(format!(
                "round {}: machine reference {speed_before:.2} GB/s before, {speed_after:.2} after; bare stream {:.3} s; p2pd fetch --json seconds {:.3}, wall {:.3} s (ratio {ratio:.2}), fetcher VmHWM {} (at most {} threads); seeder + fetcher {}; file identical",
                run + 1,
                bare_t.as_secs_f64(),
                f.secs,
                f.wall.as_secs_f64(),
                mib(f.hwm),
                f.max_threads,
                f.cpu.show()
            ));
            drop(fetcher);
        }
        self.note(speeds.summary());
        self.note(format!("raw TCP over loopback: {}", tcp.show(size)));
        self.note(format!(
            "bare libp2p stream (the daemon's TCP stack): {}",
            bare.show(size)
        ));
        self.note(format!(
            "bare libp2p, one stream per 1 MiB chunk, 8 in flight: {} ({retried} requests retried in all)",
            per_chunk.show(size)
        ));
        round_ratios.sort_by(f64::total_cmp);
        let round_ratio = format!(
            "per round {:.2}–{:.2}, median {:.2}",
            round_ratios.first().copied().unwrap_or(0.0),
            round_ratios.last().copied().unwrap_or(0.0),
            round_ratios[round_ratios.len() / 2]
        );
        self.note(format!(
            "p2pd ÷ bare stream by speed, {round_ratio} (of {repeat} rounds)"
        ));
        let fig = format!("2 · single-source fetch {label} (`fetch --json` seconds)");
        let value = cli_secs.show(size);
        let ratio = |b: &Samples, s: &Samples| format!("{:.2}", b.best() / s.best());
        self.row(
            &fig,
            &value,
            "raw TCP over loopback",
            &tcp.show(size),
            ratio(&tcp, &cli_secs),
            "—",
        );
        self.row(
            &fig,
            &value,
            "bare libp2p stream (the daemon's TCP stack)",
            &bare.show(size),
            format!("{} ({round_ratio})", ratio(&bare, &cli_secs)),
            "≥ 0.80",
        );
        self.row(
            &fig,
            &value,
            "bare libp2p, one stream per 1 MiB chunk, 8 in flight (p2pd's request pattern, no store, CBOR or hashing)",
            &per_chunk.show(size),
            ratio(&per_chunk, &cli_secs),
            "—",
        );
        let fig = format!("2 · single-source fetch {label} (CLI wall time)");
        let value = wall.show(size);
        self.row(
            &fig,
            &value,
            "bare libp2p stream (the daemon's TCP stack)",
            &bare.show(size),
            ratio(&bare, &wall),
            "≥ 0.80",
        );
        self.cpu_row("2 · raw TCP (both ends)", size, tcp.best_cpu());
        self.cpu_row("2 · bare libp2p stream (both ends)", size, bare.best_cpu());
        self.cpu_row(
            "2 · bare libp2p, stream per chunk (both ends)",
            size,
            per_chunk.best_cpu(),
        );
        self.cpu_row(
            "2 · p2pd fetch (seeder + fetcher)",
            size,
            cli_secs.best_cpu(),
        );
        Ok(())
    }
}
