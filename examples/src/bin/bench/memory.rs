//! Figure 4: the fetching daemon's peak RSS for a small, a large and (unless
//! `--rss-huge-mib 0`) a huge file, to show memory does not grow with the file.

use crate::harness::{file_hash, random_file};
use crate::report::{mib, size_label};
use crate::{Bench, MIB};

impl Bench {
    pub(crate) fn figure_rss(&mut self) -> anyhow::Result<()> {
        let small = self.args.rss_small_mib * MIB;
        let large = self.args.rss_large_mib.unwrap_or(self.args.size_mib) * MIB;
        let mut sizes = vec![small, large];
        if self.args.rss_huge_mib > 0 {
            sizes.push(self.args.rss_huge_mib * MIB);
        }
        println!(
            "\n[4] peak RSS of the fetching daemon: {}",
            sizes
                .iter()
                .map(|s| size_label(*s))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut files = Vec::new();
        for (bytes, seed) in sizes.iter().copied().zip(3..) {
            if bytes == self.main_size() {
                files.push(self.ensure_seeded()?);
            } else {
                let path = self.path(&format!("rss-{}.bin", bytes / MIB));
                random_file(&path, bytes, seed)?;
                let (cid, ..) = self.add(self.seeder()?, &path, &[])?;
                files.push((cid, file_hash(&path)?));
                std::fs::remove_file(&path)?;
            }
        }
        let mut peaks = Vec::new();
        for ((cid, hash), bytes) in files.iter().zip(sizes.iter().copied()) {
            let fetcher = self.node(&format!("rss-fetcher-{}", bytes / MIB), &[])?;
            let idle = fetcher.proc_status_bytes("VmHWM")?;
            let f = self.fetch(
                &fetcher,
                &[self.seeder()?],
                cid,
                hash,
                &format!("rss-{}", bytes / MIB),
            )?;
            let rss = fetcher.proc_status_bytes("VmRSS")?;
            self.note(format!(
                "{} fetch: {:.3} s; fetcher VmHWM {} after the fetch ({} after start-up), VmRSS now {}, at most {} threads; file identical",
                size_label(bytes),
                f.secs,
                mib(f.hwm),
                mib(idle),
                mib(rss),
                f.max_threads
            ));
            peaks.push((bytes, f.hwm, idle));
        }
        let small_peak = peaks.first().map_or(0, |p| p.1);
        for (bytes, hwm, idle) in peaks {
            self.row(
                &format!(
                    "4 · peak RSS (VmHWM) of the fetching daemon, {} fetch",
                    size_label(bytes)
                ),
                &mib(hwm),
                "same daemon right after start-up",
                &mib(idle),
                format!(
                    "{:.2} × the {} fetch",
                    hwm as f64 / small_peak as f64,
                    size_label(small)
                ),
                "≤ 64 MiB, the same for every size",
            );
        }
        Ok(())
    }
}
