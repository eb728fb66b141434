//! Figure 8: `add` at disk speed. In one run, interleaved round by round: the disk's own
//! direct-write speed (`dd oflag=direct` into the bench's directory, the filesystem the
//! store is on), `p2pd add --no-copy`, sendme's import of the same file (`sendme send`
//! until it prints its ticket), `p2pd add` in copy mode of a settled file, and copy mode
//! of a file written just before (its dirty pages not yet flushed).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::harness::{fill_random, Daemon};
use crate::report::{size_label, Samples};
use crate::{sendme, Bench, LONG_TIMEOUT, MIB};

impl Bench {
    pub(crate) fn figure_add_speed(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[8] add {label} at disk speed: --no-copy vs sendme's import; copy mode vs the disk's direct writes");
        let file = self.main_file()?;
        let sendme = sendme::find(self.args.wan.sendme.clone());
        if sendme.is_none() {
            self.note("sendme not found (install with `cargo install sendme`): its import is not measured".into());
        }
        let node = self.node("adder", &[])?;
        let (mut direct, mut no_copy, mut import, mut copy, mut fresh) = Default::default();
        for round in 0..self.args.repeat.max(1) {
            push(&mut direct, direct_write(&self.path("direct.bin"), size)?);
            push(&mut no_copy, add_then_rm(&node, &file, &["--no-copy"])?);
            if let Some(bin) = &sendme {
                push(
                    &mut import,
                    sendme_import(bin, &file, &self.path("sendme-import"))?,
                );
            }
            push(&mut copy, add_then_rm(&node, &file, &[])?);
            let just_written = self.path("just-written.bin");
            fill_random(&just_written, size, 1000 + round as u64)?;
            push(&mut fresh, add_then_rm(&node, &just_written, &[])?);
            std::fs::remove_file(&just_written)?;
        }
        for (what, s) in [
            ("dd oflag=direct (the disk's direct writes)", &direct),
            ("p2pd add --no-copy", &no_copy),
            ("sendme send until its ticket (import)", &import),
            ("p2pd add, copy mode, settled file", &copy),
            ("p2pd add, copy mode, file written just before", &fresh),
        ] {
            if !s.0.is_empty() {
                self.note(format!("{what}: {}", s.show(size)));
            }
        }
        let ratio = |b: &Samples, s: &Samples| format!("{:.2}", b.best() / s.best());
        let fig = format!("8 · `p2pd add --no-copy` {label}");
        if import.0.is_empty() {
            self.row(
                &fig,
                &no_copy.show(size),
                "sendme's import",
                "not measured",
                "—".into(),
                "≥ 2 ×, and ≥ 3 GB/s",
            );
        } else {
            self.row(
                &fig,
                &no_copy.show(size),
                "sendme's import (`sendme send` until the ticket)",
                &import.show(size),
                ratio(&import, &no_copy),
                "≥ 2 ×, and ≥ 3 GB/s",
            );
        }
        for (what, s) in [
            ("settled file", &copy),
            ("file written just before", &fresh),
        ] {
            self.row(
                &format!("8 · `p2pd add` {label}, copy mode, {what}"),
                &s.show(size),
                "the disk's direct writes (`dd oflag=direct`)",
                &direct.show(size),
                ratio(&direct, s),
                "≥ 0.90",
            );
        }
        Ok(())
    }
}

fn push(samples: &mut Samples, d: Duration) {
    samples.push(d, None);
}

/// `p2pd add` (CLI start to CID), then `rm`, so that the next add does the whole job.
fn add_then_rm(node: &Daemon, path: &Path, extra: &[&str]) -> anyhow::Result<Duration> {
    let path = path.to_str().context("non-UTF-8 path")?;
    let mut args = vec!["add", path, "--json"];
    args.extend_from_slice(extra);
    let run = node.cli(&args, LONG_TIMEOUT)?.ok("p2pd add")?;
    let cid = run.json()?["cid"]
        .as_str()
        .context("no cid in `add --json`")?
        .to_string();
    node.cli(&["rm", &cid], LONG_TIMEOUT)?.ok("p2pd rm")?;
    Ok(run.wall)
}

/// Writes `size` bytes of zeros to `path` with `dd oflag=direct` (4 MiB blocks) and
/// deletes it; returns dd's wall time.
fn direct_write(path: &Path, size: u64) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", path.display()))
        .args([
            "bs=4M",
            &format!("count={}", size.div_ceil(4 * MIB)),
            "oflag=direct",
            "conv=fsync",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running dd")?;
    let took = started.elapsed();
    std::fs::remove_file(path)?;
    if !status.success() {
        bail!("dd oflag=direct failed ({status})");
    }
    Ok(took)
}

/// How long `sendme send` takes to import `file` (from spawn to its ticket), in a fresh
/// working directory (where it keeps its store), removed afterwards; in a network
/// namespace with loopback only, like every sendme of the bench.
fn sendme_import(bin: &Path, file: &Path, dir: &Path) -> anyhow::Result<Duration> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let sender = sendme::send(
        sendme::isolated(bin)
            .arg("send")
            .arg(file)
            .args(sendme::SEND_OPTIONS)
            .current_dir(dir),
    )?;
    let took = sender.import;
    drop(sender);
    std::fs::remove_dir_all(dir)?;
    Ok(took)
}
