//! `wan-push` over loopback: a server and a fetcher process moving every byte asked for,
//! with many streams opened at once over several connections (the shape in which the
//! server's libp2p-stream drops streams that arrive together, which the fetcher must ask
//! for again). The WAN figures themselves need the netns lab and stay out of the suite.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest either step may take (debug builds, a shared machine).
const DEADLINE: Duration = Duration::from_secs(120);

/// Kills the process when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_byte_arrives_over_many_streams_and_connections() {
    let mut server = Killed(
        Command::new(env!("CARGO_BIN_EXE_wan-push"))
            .args(["serve", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("wan-push serve starts"),
    );
    let stdout = server.0.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let peer = lines.next().and_then(Result::ok);
        let listen = lines.next().and_then(Result::ok);
        let _ = tx.send((peer, listen));
    });
    let (peer, listen) = rx
        .recv_timeout(DEADLINE)
        .expect("the server prints its address");
    let peer = peer.and_then(|l| l.strip_prefix("peer ").map(str::to_owned));
    let listen = listen.and_then(|l| l.strip_prefix("listening ").map(str::to_owned));
    let (Some(peer), Some(listen)) = (peer, listen) else {
        panic!("wan-push serve printed no peer id or listen address");
    };

    let mut fetch = Killed(
        Command::new(env!("CARGO_BIN_EXE_wan-push"))
            .args(["fetch", "--peer", &format!("{listen}/p2p/{peer}")])
            .args(["--mib", "32", "--streams", "16", "--connections", "4"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("wan-push fetch starts"),
    );
    // Its output is a line or two: the pipes never fill while it runs.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = fetch.0.try_wait().expect("the fetch can be waited for") {
            break status;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the fetch did not end in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = fetch.0.stdout.take() {
        out.read_to_string(&mut stdout).expect("stdout");
    }
    if let Some(mut err) = fetch.0.stderr.take() {
        err.read_to_string(&mut stderr).expect("stderr");
    }
    assert!(status.success(), "fetch failed: {stdout}{stderr}");
    assert!(
        stdout.starts_with("33554432 bytes over 16 stream(s) on 4 connection(s)"),
        "{stdout}"
    );
}
