//! The WAN lab as the bench drives it: built by `deploy/lab/wan.sh` (hosts h1…hN around
//! a router namespace), delay and loss from the `linkem` emulator running in this
//! process at real-time priority on the router's TUN devices, and the tools measured
//! against p2pd (ping, iperf3) run inside the hosts' namespaces. Everything is torn
//! down when the [`WanLab`] is dropped; every helper process is killed by its pid.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use linkem::{Emulator, LinkSpec, LinkStats};
use serde_json::Value;

use crate::harness::Helper;

/// Real-time priority of the emulator's threads (SCHED_FIFO).
const EMULATOR_PRIORITY: u8 = 10;
/// Port of the iperf3 server.
const IPERF_PORT: &str = "5201";

/// One host's access link: what its router does to what it sends (up) and receives
/// (down).
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// Rates in bits per second (`None`: unshaped).
    pub up_bps: Option<u64>,
    pub down_bps: Option<u64>,
    /// Delay each way.
    pub one_way: Duration,
    /// Loss probability each way.
    pub loss: f64,
    /// Router buffer in front of each shaped direction, bytes.
    pub queue_bytes: u64,
}

impl Access {
    /// `20 Mbit/s up, 200 Mbit/s down, 5 ms each way`.
    pub fn describe(&self) -> String {
        let rate = |r: Option<u64>| r.map_or("unshaped".to_string(), mbit);
        let mut s = format!(
            "{} up, {} down, {} ms each way",
            rate(self.up_bps),
            rate(self.down_bps),
            self.one_way.as_secs_f64() * 1e3
        );
        if self.loss > 0.0 {
            s.push_str(&format!(", {}% loss each way", self.loss * 100.0));
        }
        s
    }
}

/// `100 Mbit/s`, `1 Gbit/s`.
pub fn mbit(bps: u64) -> String {
    if bps >= 1_000_000_000 && bps.is_multiple_of(1_000_000_000) {
        format!("{} Gbit/s", bps / 1_000_000_000)
    } else {
        format!("{} Mbit/s", bps as f64 / 1e6)
    }
}

/// tc's spelling of a rate.
fn tc_rate(bps: Option<u64>) -> String {
    bps.map_or("-".to_string(), |b| format!("{b}bit"))
}

/// A built lab; torn down on drop.
pub struct WanLab {
    script: PathBuf,
    id: String,
    links: Vec<(usize, Access)>,
    emulator: Option<Emulator>,
}

impl WanLab {
    /// Builds lab `id` with `hosts` hosts, all directly linked to the router.
    pub fn up(script: &Path, id: &str, hosts: usize) -> anyhow::Result<Self> {
        let lab = WanLab {
            script: script.to_path_buf(),
            id: id.to_string(),
            links: Vec::new(),
            emulator: None,
        };
        lab.script(&["up", id, &hosts.to_string()])?;
        Ok(lab)
    }

    fn script(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new("bash")
            .arg(&self.script)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running wan.sh")?;
        if !out.status.success() {
            bail!(
                "wan.sh {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Gives host `host` an emulated access link (call before [`WanLab::start_emulator`]).
    pub fn link(&mut self, host: usize, access: Access) -> anyhow::Result<()> {
        self.script(&[
            "link",
            &self.id,
            &format!("h{host}"),
            &tc_rate(access.up_bps),
            &tc_rate(access.down_bps),
            &access.queue_bytes.to_string(),
        ])?;
        self.links.push((host, access));
        Ok(())
    }

    /// Starts delay and loss on every linked host's devices (loss draws seeded from
    /// `seed`, a different stream per device).
    pub fn start_emulator(&mut self, seed: u64) -> anyhow::Result<()> {
        let mut specs = Vec::new();
        for (n, (host, access)) in self.links.iter().enumerate() {
            for (k, dir) in ["up", "dn"].iter().enumerate() {
                let mut spec = LinkSpec::new(&format!("h{host}{dir}"));
                spec.delay = access.one_way;
                spec.loss = access.loss;
                spec.seed = seed.wrapping_mul(1000) + (2 * n + k) as u64;
                specs.push(spec);
            }
        }
        let emulator = Emulator::start(Some(&self.core()), specs)?;
        emulator.set_realtime(EMULATOR_PRIORITY)?;
        self.emulator = Some(emulator);
        Ok(())
    }

    /// The emulator's counters so far.
    pub fn emulator_stats(&self) -> Vec<LinkStats> {
        self.emulator
            .as_ref()
            .map(Emulator::stats)
            .unwrap_or_default()
    }

    /// Packets the router dropped in front of the emulator (TUN device queue full: the
    /// emulator did not read fast enough) and in the tbf queues (the link's buffer was
    /// full, as on a real bottleneck), summed over all TUN devices.
    pub fn router_drops(&self) -> anyhow::Result<u64> {
        let out = Command::new("ip")
            .args(["-n", &self.core(), "-s", "-j", "link", "show"])
            .output()
            .context("ip -s link")?;
        let links: Value = serde_json::from_slice(&out.stdout).context("ip -j output")?;
        Ok(links
            .as_array()
            .into_iter()
            .flatten()
            .filter(|l| {
                l["ifname"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("up") || n.ends_with("dn"))
            })
            .map(|l| l["stats64"]["tx"]["dropped"].as_u64().unwrap_or(0))
            .sum())
    }

    fn core(&self) -> String {
        format!("p2w{}-core", self.id)
    }

    /// The namespace of host `host`.
    pub fn ns(&self, host: usize) -> String {
        format!("p2w{}-h{host}", self.id)
    }

    /// The address of host `host`.
    pub fn addr(&self, host: usize) -> String {
        format!("198.18.{host}.2")
    }

    /// `program` to be run inside host `host`.
    pub fn command(&self, host: usize, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns(host), program]);
        command
    }
}

impl Drop for WanLab {
    fn drop(&mut self) {
        if let Some(emulator) = self.emulator.take() {
            emulator.stop();
        }
        let _ = self.script(&["down", &self.id]);
    }
}

/// What `ping` saw.
#[derive(Debug, Clone, Copy)]
pub struct Ping {
    pub sent: u64,
    pub received: u64,
    pub min_ms: f64,
    pub avg_ms: f64,
    pub max_ms: f64,
}

/// `count` pings from host `from` to host `to`, `interval` apart.
pub fn ping(
    lab: &WanLab,
    from: usize,
    to: usize,
    count: u32,
    interval: Duration,
) -> anyhow::Result<Ping> {
    // A busy machine stretches the interval (and the last answer may take 2 s).
    let wait = interval * count * 3 + Duration::from_secs(10);
    let mut helper = Helper::spawn(
        lab.command(from, "ping")
            .args([
                "-q",
                "-n",
                "-c",
                &count.to_string(),
                "-i",
                &format!("{:.3}", interval.as_secs_f64()),
                // Answers later than this count as lost (none should be).
                "-W",
                "2",
                &lab.addr(to),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )?;
    helper.wait(wait)?;
    let mut text = String::new();
    if let Some(mut out) = helper.child().stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut text)?;
    }
    parse_ping(&text).with_context(|| format!("unexpected ping output: {text}"))
}

fn parse_ping(text: &str) -> Option<Ping> {
    // "1000 packets transmitted, 990 received, 1% packet loss, time 5012ms"
    let stats = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut numbers = stats
        .split(',')
        .filter_map(|part| part.split_whitespace().next()?.parse::<u64>().ok());
    let sent = numbers.next()?;
    let received = numbers.next()?;
    // "rtt min/avg/max/mdev = 40.262/40.323/40.416/0.035 ms"
    let rtt = text.lines().find(|l| l.starts_with("rtt"))?;
    let values: Vec<f64> = rtt
        .split('=')
        .nth(1)?
        .split_whitespace()
        .next()?
        .split('/')
        .filter_map(|v| v.parse().ok())
        .collect();
    Some(Ping {
        sent,
        received,
        min_ms: *values.first()?,
        avg_ms: *values.get(1)?,
        max_ms: *values.get(2)?,
    })
}

/// What one iperf3 run measured, at the receiver.
#[derive(Debug, Clone, Copy)]
pub struct Iperf {
    pub secs: f64,
    pub bits_per_sec: f64,
    pub retransmits: u64,
}

/// One TCP iperf3 transfer from host `sender` to host `receiver` (the receiver runs the
/// client in reverse mode, like a fetch: it connects and the other side sends). `amount`
/// is iperf3's `-n BYTES` or `-t SECS` with its value; `congestion` picks the sender's
/// algorithm (default: the kernel's).
pub fn iperf3(
    lab: &WanLab,
    sender: usize,
    receiver: usize,
    amount: (&str, String),
    congestion: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<Iperf> {
    let _server = Helper::spawn(
        lab.command(sender, "iperf3")
            .args(["-s", "-1", "-p", IPERF_PORT, "-B", &lab.addr(sender)])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let mut args = vec![
            "-c".to_string(),
            lab.addr(sender),
            "-p".into(),
            IPERF_PORT.into(),
            "-R".into(),
            "-J".into(),
            amount.0.into(),
            amount.1.clone(),
        ];
        if let Some(cc) = congestion {
            args.extend(["-C".into(), cc.into()]);
        }
        let mut client = Helper::spawn(
            lab.command(receiver, "iperf3")
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        let mut out = client.child().stdout.take().context("iperf3 stdout")?;
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut s);
            s
        });
        client.wait(timeout)?;
        let text = reader.join().unwrap_or_default();
        // The server may not listen yet: try again shortly.
        if text.contains("Connection refused") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        break text;
    };
    let json: Value =
        serde_json::from_str(&text).with_context(|| format!("iperf3 output: {text}"))?;
    if let Some(error) = json["error"].as_str() {
        bail!("iperf3: {error}");
    }
    let received = &json["end"]["sum_received"];
    Ok(Iperf {
        secs: received["seconds"].as_f64().context("no seconds")?,
        bits_per_sec: received["bits_per_second"].as_f64().context("no rate")?,
        retransmits: json["end"]["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_summaries_parse() {
        let text = "PING 198.18.3.2 (198.18.3.2) 56(84) bytes of data.\n\n--- 198.18.3.2 ping statistics ---\n1000 packets transmitted, 990 received, 1% packet loss, time 5012ms\nrtt min/avg/max/mdev = 40.262/40.323/40.416/0.035 ms\n";
        let p = parse_ping(text).unwrap();
        assert_eq!((p.sent, p.received), (1000, 990));
        assert_eq!((p.min_ms, p.avg_ms, p.max_ms), (40.262, 40.323, 40.416));
    }
}
