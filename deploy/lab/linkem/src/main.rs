//! `linkem`: runs the WAN lab's link emulator on existing TUN devices until its standard
//! input closes, then prints each link's counters as JSON. Tying its life to stdin means
//! that whoever started it stops it by closing the pipe, and that it never outlives a
//! parent that died:
//!
//! ```sh
//! sleep infinity | linkem --netns p2w1-core --realtime 10 --link h1up,delay=20ms,loss=0.5%,seed=1
//! ```

use std::io::Read as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use linkem::{Emulator, LinkSpec};

/// Emulates link delay, loss and (optionally) rate on TUN devices of the WAN lab.
#[derive(Debug, Parser)]
#[command(name = "linkem")]
struct Args {
    /// A link direction: DEVICE[,delay=20ms][,loss=0.5%][,rate=100mbit][,queue=256k]
    /// [,slots=16384][,seed=N] (repeatable). The TUN device must exist (ip tuntap add).
    #[arg(long = "link", value_name = "SPEC", required = true)]
    links: Vec<LinkSpec>,
    /// Network namespace (under /run/netns) holding the devices; default: this one.
    #[arg(long)]
    netns: Option<String>,
    /// Run the link threads at this real-time priority (SCHED_FIFO, 1–99), so that a busy
    /// machine does not delay packets past their due time.
    #[arg(long, value_name = "PRIORITY", value_parser = clap::value_parser!(u8).range(1..=99))]
    realtime: Option<u8>,
    /// Stop after this many seconds even if stdin stays open.
    #[arg(long)]
    duration: Option<u64>,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if e.use_stderr() => {
            eprintln!(
                "error: {}",
                e.to_string().trim_start_matches("error: ").trim()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    let emulator = match Emulator::start(args.netns.as_deref(), args.links) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(priority) = args.realtime {
        if let Err(e) = emulator.set_realtime(priority) {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let stdin_done = done_tx.clone();
    // Reads until EOF; the thread is left behind at exit if stdin never closes.
    std::thread::spawn(move || {
        let mut sink = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        let _ = stdin_done.send(());
    });
    match args.duration {
        Some(secs) => {
            let _ = done_rx.recv_timeout(Duration::from_secs(secs));
        }
        None => {
            let _ = done_rx.recv();
        }
    }
    drop(done_tx);
    let stats = emulator.stop();
    let failed = stats.iter().any(|s| s.error.is_some());
    let links: Vec<_> = stats.iter().map(|s| s.to_json()).collect();
    println!("{}", serde_json::json!({ "links": links }));
    if failed {
        for s in stats.iter().filter(|s| s.error.is_some()) {
            eprintln!(
                "error: link {}: {}",
                s.spec.device,
                s.error.as_deref().unwrap_or("")
            );
        }
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
