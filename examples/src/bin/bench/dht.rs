//! Figure 5: what a large file costs the DHT. A sparse file added with `--no-copy`, and
//! the provider announcements the node made for it, beside the file's chunk count: the
//! goal is one announcement per file, not one per chunk.

use std::fs::File;
use std::time::Duration;

use anyhow::Context as _;

use crate::harness::Daemon;
use crate::report::{secs_rate, size_label};
use crate::{Bench, GIB};

impl Bench {
    pub(crate) fn figure_dht(&mut self) -> anyhow::Result<()> {
        let size = self.args.dht_size_gib * GIB;
        println!(
            "\n[5] DHT announcements for a sparse {} file added with --no-copy",
            size_label(size)
        );
        let node = self.provider_node("dht", &[])?;
        // Let start-up traffic (bootstrap, address confirmation) settle.
        std::thread::sleep(Duration::from_secs(2));
        let count = |node: &Daemon| -> anyhow::Result<u64> {
            node.status()?["node"]["provider_announcements"]
                .as_u64()
                .context("no node.provider_announcements in `status --json`")
        };
        let before = count(&node)?;
        let path = self.path("sparse.bin");
        File::create(&path)?.set_len(size)?;
        let (_, chunks, wall, _) = self.add(&node, &path, &["--no-copy"])?;
        let right_after = count(&node)?;
        std::thread::sleep(Duration::from_secs(5));
        let after = count(&node)?;
        let delta = after - before;
        self.note(format!(
            "add --no-copy: {chunks} chunks in {}; provider_announcements {before} before, {right_after} right after, {after} 5 s later",
            secs_rate(size, wall.as_secs_f64())
        ));
        self.row(
            &format!(
                "5 · DHT provider announcements for a {} file ({chunks} chunks)",
                size_label(size)
            ),
            &delta.to_string(),
            "chunks in the file",
            &chunks.to_string(),
            format!("{delta} per file"),
            "1 per file",
        );
        drop(node);
        std::fs::remove_file(&path)?;
        Ok(())
    }
}
