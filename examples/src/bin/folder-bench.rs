//! The issue-13 folder figure: add a tree of many small files on one daemon and fetch it
//! from another on 127.0.0.1 (and add it with `--no-copy`, files referenced in place as
//! sendme does, on a third), beside baselines measured in the same run on the same
//! tree: `cp -r` (local copy, no network, no hashing), `tar | tar` over a raw loopback
//! TCP socket (one stream, no hashing, no per-file protocol), and sendme (issue 17's
//! peer tool: `sendme send <dir>` until its ticket, then `sendme receive`, in a network
//! namespace with loopback only; skipped when sendme is not installed). See
//! `docs/benchmarks.md` for results and how to read them.
//!
//! ```sh
//! cargo build --release -p p2pd
//! cargo build --release -p p2pd-examples --bin folder-bench
//! nice target/release/folder-bench                    # 10,000 files of 4 KiB
//! target/release/folder-bench --files 500             # smoke run
//! ```
//!
//! The tree has `--files` files of `--size` bytes (distinct pseudo-random contents), 100
//! per directory. The fetched tree is compared with the source, file by file. Daemons
//! are killed by pid at the end, also on Ctrl-C; data lives under `target/bench-tmp/`
//! and is deleted.

#[path = "bench/harness.rs"]
#[allow(dead_code)]
mod harness;
#[path = "bench/sendme.rs"]
mod sendme;

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use harness::{CpuMeter, Daemon};

/// Longest the add or the fetch may take.
const LONG: Duration = Duration::from_secs(3600);

/// Benchmarks adding and fetching a tree of small files on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "folder-bench")]
struct Args {
    /// Files in the tree.
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Bytes per file.
    #[arg(long, default_value_t = 4096)]
    size: u64,
    /// The p2pd binary (default: `p2pd` beside this program).
    #[arg(long)]
    p2pd: Option<PathBuf>,
    /// Where to put the trees and data directories (default: `target/bench-tmp`).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Keep the temporary directory (and its daemon logs) at the end.
    #[arg(long)]
    keep: bool,
    /// The sendme binary (default: `sendme` on PATH or in ~/.cargo/bin; without one the
    /// sendme baseline is skipped).
    #[arg(long)]
    sendme: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bin = match &args.p2pd {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the program's directory")?
            .join("p2pd"),
    };
    if !bin.exists() {
        bail!(
            "{} not found: build p2pd first (or pass --p2pd)",
            bin.display()
        );
    }
    let base = args
        .tmp_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/bench-tmp"));
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("folder-bench-")
        .tempdir_in(&base)?;
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            runtime.block_on(harness::interrupted());
            harness::kill_all_registered();
            std::process::exit(130);
        }
    });
    let result = run(&args, &bin, tmp.path());
    harness::kill_all_registered();
    if args.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    result
}

fn run(args: &Args, bin: &Path, tmp: &Path) -> anyhow::Result<()> {
    let src = tmp.join("tree");
    let made = Instant::now();
    make_tree(&src, args.files, args.size)?;
    let total = args.files as u64 * args.size;
    println!(
        "tree: {} files of {} bytes ({:.1} MiB) in {} directories, written in {:.1}s",
        args.files,
        args.size,
        total as f64 / (1 << 20) as f64,
        args.files.div_ceil(100),
        made.elapsed().as_secs_f64()
    );
    println!(
        "load average before: {}",
        p2pd_examples::procfs::load_average()
    );
    sync();

    // Baseline 1: a local copy.
    let dest = tmp.join("cp-copy");
    let t = Instant::now();
    let ok = Command::new("cp").arg("-r").arg(&src).arg(&dest).status()?;
    if !ok.success() {
        bail!("cp -r failed");
    }
    sync();
    let cp = t.elapsed();
    // Copies are deleted only at the end (with the temporary directory): on this
    // machine's ext4, creating files soon after thousands were deleted cost the next
    // measurement much of its time (perf: the inode allocator's `recently_deleted`).

    // Baseline 2: tar | tar over a loopback TCP socket.
    let dest = tmp.join("tar-copy");
    std::fs::create_dir_all(&dest)?;
    let tar = tar_over_tcp(&src, &dest)?;
    sync();
    check_same(&src, &dest)?;

    // Baseline 3: sendme sends the tree to a receiver on loopback.
    let sendme = match sendme::find(args.sendme.clone()) {
        Some(bin) => Some(sendme_tree(&bin, &src, tmp)?),
        None => {
            println!("sendme not found (`cargo install sendme`): its baseline is skipped");
            None
        }
    };

    // p2pd: a provider and a fetcher that bootstraps from it.
    let provider = Daemon::start(
        bin,
        &tmp.join("provider"),
        "provider",
        &["--dht-mode", "server"],
    )?;
    let addr = provider.addr()?;
    let fetcher = Daemon::start(
        bin,
        &tmp.join("fetcher"),
        "fetcher",
        &["--bootstrap", &addr],
    )?;
    // `add --no-copy` on a daemon of its own (the same tree added twice to one store
    // would find its files there already): files are hashed and referenced in place,
    // which is what `sendme send` does (iroh-blobs' `ImportMode::TryReference`).
    let referencer = Daemon::start(bin, &tmp.join("referencer"), "referencer", &[])?;
    let cpu = CpuMeter::start(&[referencer.pid()]);
    let referenced = referencer
        .cli(
            &["add", src.to_str().context("path")?, "--no-copy", "--json"],
            LONG,
        )?
        .ok("add --no-copy")?;
    let reference_cpu = cpu.stop();
    drop(referencer);
    let cpu = CpuMeter::start(&[provider.pid()]);
    let added = provider
        .cli(&["add", src.to_str().context("path")?, "--json"], LONG)?
        .ok("add")?;
    let add_cpu = cpu.stop();
    let add_wall = added.wall;
    let add = added.json()?;
    let cid = add["cid"].as_str().context("cid")?.to_string();
    let dest = tmp.join("p2pd-copy");
    let cpu = CpuMeter::start(&[provider.pid(), fetcher.pid()]);
    let fetched = fetcher
        .cli(
            &[
                "fetch",
                &cid,
                "-o",
                dest.to_str().context("path")?,
                "--json",
            ],
            LONG,
        )?
        .ok("fetch")?;
    let fetch_cpu = cpu.stop();
    check_same(&src, &dest)?;

    let rate = |d: Duration| args.files as f64 / d.as_secs_f64();
    println!();
    println!("| what | wall | files/s | MiB/s |");
    println!("| --- | --- | --- | --- |");
    let mut rows = vec![
        ("`cp -r` (baseline, local)", cp),
        ("`tar | tar` over loopback TCP (baseline)", tar),
    ];
    if let Some(s) = &sendme {
        rows.push((
            "`sendme send <dir>` until its ticket (baseline: import)",
            s.import,
        ));
        rows.push(("`sendme receive <ticket>` (baseline: fetch)", s.receive));
    }
    rows.push((
        "`p2pd add <dir> --no-copy` (hash, reference in place)",
        referenced.wall,
    ));
    rows.push(("`p2pd add <dir>` (hash, copy into the store)", add_wall));
    rows.push(("`p2pd fetch <dir-cid>` (second daemon)", fetched.wall));
    for (what, d) in rows {
        println!(
            "| {what} | {:.2} s | {:.0} | {:.2} |",
            d.as_secs_f64(),
            rate(d),
            total as f64 / (1 << 20) as f64 / d.as_secs_f64()
        );
    }
    println!();
    if let Some(s) = &sendme {
        let x = |p2pd: Duration, base: Duration| base.as_secs_f64() / p2pd.as_secs_f64();
        println!(
            "p2pd ÷ sendme (files/s): add --no-copy {:.2} ×, add {:.2} ×, fetch {:.2} × (goal ≥ 2 ×)",
            x(referenced.wall, s.import),
            x(add_wall, s.import),
            x(fetched.wall, s.receive)
        );
        let busy = &s.receive_cpu;
        println!(
            "sendme receive: machine {:.0}% busy",
            100.0 * busy.machine / (busy.wall * busy.cores)
        );
    }
    println!("add --no-copy: its daemon {}", reference_cpu.show());
    println!("add:   provider {}", add_cpu.show());
    println!("fetch: both daemons {}", fetch_cpu.show());
    println!(
        "load average after: {}",
        p2pd_examples::procfs::load_average()
    );
    println!("folder {cid}: {add}");
    Ok(())
}

/// What sendme took for the tree.
struct SendmeRun {
    /// `sendme send <dir>` from spawn to its ticket: its import.
    import: Duration,
    /// `sendme receive <ticket>` from spawn to exit, the tree written.
    receive: Duration,
    receive_cpu: p2pd_examples::procfs::CpuUse,
}

/// sendme on the same tree: `send` then `receive` into a fresh directory, relays
/// disabled. Both run in a network namespace of their own with loopback only (the
/// sender's, made by `unshare -n`; the receiver joins it with `nsenter`), so that
/// neither can reach anything beyond 127.0.0.1. The received tree is compared with the
/// source (and deleted with the temporary directory at the end).
fn sendme_tree(bin: &Path, src: &Path, tmp: &Path) -> anyhow::Result<SendmeRun> {
    let send_dir = tmp.join("sendme-send");
    let recv_dir = tmp.join("sendme-recv");
    for dir in [&send_dir, &recv_dir] {
        std::fs::create_dir_all(dir)?;
    }
    let src_str = src.to_str().context("non-UTF-8 path")?;
    let mut sender = sendme::send(
        sendme::isolated(bin)
            .args(["send", src_str])
            .args(sendme::SEND_OPTIONS)
            .current_dir(&send_dir),
    )?;
    let netns = format!("--net=/proc/{}/ns/net", sender.pid());
    let cpu = CpuMeter::start(&[]);
    let started = Instant::now();
    let mut receiver = harness::Helper::spawn(
        Command::new("nsenter")
            .arg(&netns)
            .arg(bin)
            .args(["receive", &sender.ticket])
            .args(sendme::RECEIVE_OPTIONS)
            .current_dir(&recv_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let status = receiver.wait(LONG)?;
    let receive = started.elapsed();
    let receive_cpu = cpu.stop();
    if !status.success() {
        bail!("sendme receive failed ({status})");
    }
    let name = src.file_name().context("tree name")?;
    check_same(src, &recv_dir.join(name))?;
    let import = sender.import;
    drop(sender);
    Ok(SendmeRun {
        import,
        receive,
        receive_cpu,
    })
}

/// `files` files of `size` distinct pseudo-random bytes, 100 per directory.
fn make_tree(root: &Path, files: usize, size: u64) -> anyhow::Result<()> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = vec![0u8; size as usize];
    for i in 0..files {
        let dir = root.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&dir)?;
        }
        for chunk in buf.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let bytes = state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        std::fs::write(dir.join(format!("f{i:05}.bin")), &buf)?;
    }
    Ok(())
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// `tar -cf - .` in `src`, sent over one loopback TCP connection into `tar -xf -` in
/// `dest`; the time from the start to both ends having finished.
fn tar_over_tcp(src: &Path, dest: &Path) -> anyhow::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let t = Instant::now();
    let mut extract = Command::new("tar")
        .arg("-xf")
        .arg("-")
        .arg("-C")
        .arg(dest)
        .stdin(Stdio::piped())
        .spawn()?;
    let mut extract_in = extract.stdin.take().context("tar stdin")?;
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut socket, _) = listener.accept()?;
        let n = std::io::copy(&mut socket, &mut extract_in)?;
        extract_in.flush()?;
        Ok(n)
    });
    let mut create = Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(src)
        .arg(".")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut create_out = create.stdout.take().context("tar stdout")?;
    let mut socket = TcpStream::connect(addr)?;
    std::io::copy(&mut create_out, &mut socket)?;
    drop(socket);
    if !create.wait()?.success() {
        bail!("tar -c failed");
    }
    receiver
        .join()
        .map_err(|_| anyhow::anyhow!("the receiving thread panicked"))??;
    if !extract.wait()?.success() {
        bail!("tar -x failed");
    }
    Ok(t.elapsed())
}

/// Fails unless every file of `src` is in `dest` with the same bytes, and no more.
fn check_same(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let a = hashes(src)?;
    let b = hashes(dest)?;
    if a != b {
        bail!(
            "{} and {} differ ({} and {} files)",
            src.display(),
            dest.display(),
            a.len(),
            b.len()
        );
    }
    Ok(())
}

fn hashes(root: &Path) -> anyhow::Result<Vec<(PathBuf, blake3::Hash)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for item in std::fs::read_dir(&dir)? {
            let item = item?;
            let kind = item.file_type()?;
            if kind.is_dir() {
                stack.push(item.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(item.path())?;
                out.push((
                    item.path().strip_prefix(root)?.to_path_buf(),
                    blake3::hash(&bytes),
                ));
            }
        }
    }
    out.sort_by(|x, y| x.0.cmp(&y.0));
    Ok(out)
}
