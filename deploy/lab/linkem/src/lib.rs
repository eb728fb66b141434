//! linkem, the link emulator of the WAN lab (`deploy/lab/wan.sh`). This kernel has no
//! netem, so delay and loss are done here, in userspace. Each emulated link direction is
//! a TUN device in the lab's router namespace: the kernel routes that direction's
//! packets into the device (through a tbf qdisc when the link has a rate), linkem reads
//! each packet, loses it with the link's probability (a seeded RNG, so a run can be
//! repeated), holds it for the link's one-way delay (after its serialization time, if
//! linkem enforces the rate itself), and writes it back into the same device, from
//! where the kernel routes it on to its destination.
//!
//! Each link has a reader thread and a writer thread joined by a bounded queue: a packet
//! that finds the queue full is dropped and counted, as a router would. Timing is kept
//! per packet; how late the writer was against each packet's due time is recorded, so a
//! run on a busy machine shows whether the emulator kept up.

mod spec;

pub use spec::{parse_duration, parse_probability, parse_rate, LinkSpec};

use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rand::{rngs::StdRng, Rng as _, SeedableRng as _};
use tun_rs::{DeviceBuilder, SyncDevice};

/// How often blocked threads look at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);
/// Largest packet read (the lab's MTU is 1500; TUN devices allow up to 64 KiB).
const MAX_PACKET: usize = 65_536;

/// When each packet of one link leaves it: after its one-way delay, and after the
/// packets before it have been serialized when the link enforces a rate.
#[derive(Debug)]
pub struct Schedule {
    delay: Duration,
    rate_bps: Option<u64>,
    queue_bytes: u64,
    /// When the last admitted packet has finished serializing (rate mode).
    busy_until: Option<Instant>,
}

impl Schedule {
    pub fn new(spec: &LinkSpec) -> Self {
        Schedule {
            delay: spec.delay,
            rate_bps: spec.rate_bps,
            queue_bytes: spec.queue_bytes,
            busy_until: None,
        }
    }

    /// When a packet of `len` bytes arriving at `now` is to be delivered, or `None` if the
    /// bytes already waiting for the rate leave no room for it (it is dropped).
    pub fn admit(&mut self, now: Instant, len: usize) -> Option<Instant> {
        let Some(rate) = self.rate_bps else {
            return Some(now + self.delay);
        };
        let start = self.busy_until.map_or(now, |busy| busy.max(now));
        let waiting_bytes = (start - now).as_secs_f64() * rate as f64 / 8.0;
        if waiting_bytes + len as f64 > self.queue_bytes as f64 {
            return None;
        }
        let end = start + Duration::from_secs_f64(len as f64 * 8.0 / rate as f64);
        self.busy_until = Some(end);
        Some(end + self.delay)
    }
}

/// What happened on one link so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets read from the device.
    pub received: AtomicU64,
    pub received_bytes: AtomicU64,
    /// Packets dropped by the loss draw.
    pub lost: AtomicU64,
    /// Packets dropped because the queue (rate backlog or slots) was full.
    pub dropped: AtomicU64,
    /// Packets written back.
    pub delivered: AtomicU64,
    pub delivered_bytes: AtomicU64,
    /// Sum and maximum of how late each packet was written against its due time, µs.
    pub late_sum_us: AtomicU64,
    pub late_max_us: AtomicU64,
    /// Packets written more than 1 ms after their due time.
    pub late_over_1ms: AtomicU64,
}

/// A snapshot of one link's counters.
#[derive(Debug, Clone)]
pub struct LinkStats {
    pub spec: LinkSpec,
    pub received: u64,
    pub received_bytes: u64,
    pub lost: u64,
    pub dropped: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
    pub late_mean_us: f64,
    pub late_max_us: u64,
    pub late_over_1ms: u64,
    /// The error that stopped this link's threads, if any.
    pub error: Option<String>,
}

impl LinkStats {
    /// The counters as JSON (what the `linkem` program prints).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "device": self.spec.device,
            "delay_us": self.spec.delay.as_micros() as u64,
            "loss": self.spec.loss,
            "rate_bps": self.spec.rate_bps,
            "received": self.received,
            "received_bytes": self.received_bytes,
            "lost": self.lost,
            "dropped": self.dropped,
            "delivered": self.delivered,
            "delivered_bytes": self.delivered_bytes,
            "late_mean_us": self.late_mean_us,
            "late_max_us": self.late_max_us,
            "late_over_1ms": self.late_over_1ms,
            "error": self.error,
        })
    }
}

struct Link {
    spec: LinkSpec,
    counters: Arc<Counters>,
    error: Arc<Mutex<Option<String>>>,
}

/// Running links; stopped (threads joined) on [`Emulator::stop`] or drop.
pub struct Emulator {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Kernel thread ids of the link threads (for [`Emulator::set_realtime`]).
    thread_ids: Vec<i32>,
    links: Vec<Link>,
}

impl Emulator {
    /// Opens each link's TUN device (inside network namespace `netns`, a name under
    /// `/run/netns`, if given; the devices must exist there, e.g. made persistent by
    /// `ip tuntap add`) and starts forwarding.
    pub fn start(netns: Option<&str>, specs: Vec<LinkSpec>) -> anyhow::Result<Self> {
        let names: Vec<String> = specs.iter().map(|s| s.device.clone()).collect();
        let devices = open_devices(netns, &names)?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut emulator = Emulator {
            stop: stop.clone(),
            threads: Vec::new(),
            thread_ids: Vec::new(),
            links: Vec::new(),
        };
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        for (spec, device) in specs.into_iter().zip(devices) {
            let counters = Arc::new(Counters::default());
            let error = Arc::new(Mutex::new(None));
            device
                .set_nonblocking(true)
                .with_context(|| format!("{}: non-blocking mode", spec.device))?;
            // One descriptor for both threads: a second one (`try_clone`) needs a
            // multi-queue device, which would spread packets over queues.
            let device = Arc::new(device);
            let (tx, rx) = sync_channel(spec.slots);
            let reader = Reader {
                device: device.clone(),
                schedule: Schedule::new(&spec),
                rng: StdRng::seed_from_u64(spec.seed),
                loss: spec.loss,
                queue: tx,
                counters: counters.clone(),
                stop: stop.clone(),
            };
            let writer = Writer {
                device,
                queue: rx,
                counters: counters.clone(),
                stop: stop.clone(),
            };
            for (role, run) in [
                (
                    "read",
                    Box::new(move || reader.run()) as Box<dyn FnOnce() -> _ + Send>,
                ),
                ("write", Box::new(move || writer.run())),
            ] {
                let error = error.clone();
                let tid_tx = tid_tx.clone();
                let thread = std::thread::Builder::new()
                    .name(format!("{}-{role}", spec.device))
                    .spawn(move || {
                        let _ = tid_tx.send(nix::unistd::gettid().as_raw());
                        if let Err(e) = run() {
                            *error.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(format!("{e:#}"));
                        }
                    })
                    .context("spawning a link thread")?;
                emulator.threads.push(thread);
                if let Ok(tid) = tid_rx.recv() {
                    emulator.thread_ids.push(tid);
                }
            }
            emulator.links.push(Link {
                spec,
                counters,
                error,
            });
        }
        Ok(emulator)
    }

    /// Gives every link thread real-time priority `priority` (SCHED_FIFO, 1–99) with
    /// `chrt`, so that on a busy machine packets leave when due rather than when the
    /// scheduler gets round to the writer (measured here: 40 ms of configured round trip
    /// became 40–135 ms under load without it, 40.3–40.4 ms with it). The threads sleep
    /// between packets, so they take only the CPU their packets need.
    pub fn set_realtime(&self, priority: u8) -> anyhow::Result<()> {
        for tid in &self.thread_ids {
            let status = std::process::Command::new("chrt")
                .args(["-f", "-p", &priority.to_string(), &tid.to_string()])
                .stdout(std::process::Stdio::null())
                .status()
                .context("running chrt (util-linux)")?;
            anyhow::ensure!(status.success(), "chrt -f -p {priority} {tid} failed");
        }
        Ok(())
    }

    /// The counters of every link so far.
    pub fn stats(&self) -> Vec<LinkStats> {
        self.links
            .iter()
            .map(|link| {
                let c = &link.counters;
                let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
                let delivered = get(&c.delivered);
                LinkStats {
                    spec: link.spec.clone(),
                    received: get(&c.received),
                    received_bytes: get(&c.received_bytes),
                    lost: get(&c.lost),
                    dropped: get(&c.dropped),
                    delivered,
                    delivered_bytes: get(&c.delivered_bytes),
                    late_mean_us: get(&c.late_sum_us) as f64 / delivered.max(1) as f64,
                    late_max_us: get(&c.late_max_us),
                    late_over_1ms: get(&c.late_over_1ms),
                    error: link.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                }
            })
            .collect()
    }

    /// Stops every link and returns the final counters.
    pub fn stop(mut self) -> Vec<LinkStats> {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Opens the named TUN devices, from inside `netns` if given. A TUN device is found by
/// name in the network namespace of the thread that attaches to it, so a short-lived
/// thread enters the namespace (`setns` moves only the calling thread) and attaches;
/// the descriptors it returns keep working from any thread.
fn open_devices(netns: Option<&str>, names: &[String]) -> anyhow::Result<Vec<SyncDevice>> {
    let netns = netns.map(str::to_string);
    let names = names.to_vec();
    std::thread::spawn(move || -> anyhow::Result<Vec<SyncDevice>> {
        if let Some(ns) = &netns {
            let path = format!("/run/netns/{ns}");
            let file = std::fs::File::open(&path)
                .with_context(|| format!("opening {path} (no such network namespace?)"))?;
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .with_context(|| format!("entering network namespace {ns}"))?;
        }
        names
            .iter()
            .map(|name| {
                DeviceBuilder::new()
                    .name(name)
                    .build_sync()
                    .with_context(|| format!("attaching to TUN device {name}"))
            })
            .collect()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the thread opening the TUN devices panicked"))?
}

/// A packet and when it is due.
type Held = (Instant, Vec<u8>);

struct Reader {
    device: Arc<SyncDevice>,
    schedule: Schedule,
    rng: StdRng,
    loss: f64,
    queue: SyncSender<Held>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Reader {
    fn run(mut self) -> anyhow::Result<()> {
        let mut buf = vec![0u8; MAX_PACKET];
        while !self.stop.load(Ordering::Relaxed) {
            let mut fds = [PollFd::new(self.device.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, poll_timeout()) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e).context("poll"),
            }
            // Drain everything that is waiting before polling again.
            loop {
                let len = match self.device.recv(&mut buf) {
                    Ok(len) => len,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e).context("reading from the TUN device"),
                };
                self.handle(&buf[..len]);
            }
        }
        Ok(())
    }

    fn handle(&mut self, packet: &[u8]) {
        let now = Instant::now();
        let c = &self.counters;
        c.received.fetch_add(1, Ordering::Relaxed);
        c.received_bytes
            .fetch_add(packet.len() as u64, Ordering::Relaxed);
        if self.loss > 0.0 && self.rng.gen::<f64>() < self.loss {
            c.lost.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(due) = self.schedule.admit(now, packet.len()) else {
            c.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match self.queue.try_send((due, packet.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Writer {
    device: Arc<SyncDevice>,
    queue: Receiver<Held>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
}

impl Writer {
    fn run(self) -> anyhow::Result<()> {
        let c = &self.counters;
        while !self.stop.load(Ordering::Relaxed) {
            let (due, packet) = match self.queue.recv_timeout(STOP_CHECK) {
                Ok(held) => held,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Due times only grow (one delay per link, serialization in order), so the
            // head of the queue is always the next packet to leave.
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            match self.device.send(&packet) {
                Ok(_) => {}
                // A full device queue on the way out is a drop, like any full queue.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    c.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(e) => return Err(e).context("writing to the TUN device"),
            }
            let late = Instant::now().saturating_duration_since(due).as_micros() as u64;
            c.delivered.fetch_add(1, Ordering::Relaxed);
            c.delivered_bytes
                .fetch_add(packet.len() as u64, Ordering::Relaxed);
            c.late_sum_us.fetch_add(late, Ordering::Relaxed);
            c.late_max_us.fetch_max(late, Ordering::Relaxed);
            if late > 1000 {
                c.late_over_1ms.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

fn poll_timeout() -> PollTimeout {
    PollTimeout::from(STOP_CHECK.as_millis() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> LinkSpec {
        s.parse().unwrap()
    }

    #[test]
    fn without_a_rate_every_packet_is_due_one_delay_later() {
        let mut schedule = Schedule::new(&spec("t,delay=20ms"));
        let t0 = Instant::now();
        for i in 0..1000 {
            let now = t0 + Duration::from_micros(i);
            assert_eq!(
                schedule.admit(now, 1500),
                Some(now + Duration::from_millis(20))
            );
        }
    }

    #[test]
    fn a_rate_serializes_packets_and_a_full_queue_drops() {
        // 12 Mbit/s: a 1500-byte packet takes 1 ms. The queue counts every byte not yet
        // serialized, the packet on the wire included: 4500 bytes are three packets.
        let mut schedule = Schedule::new(&spec("t,delay=10ms,rate=12mbit,queue=4500"));
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(schedule.admit(t0, 1500), Some(t0 + ms(11)));
        assert_eq!(schedule.admit(t0, 1500), Some(t0 + ms(12)));
        assert_eq!(schedule.admit(t0, 1500), Some(t0 + ms(13)));
        assert_eq!(schedule.admit(t0, 1500), None);
        // 1 ms later the first packet is out: room for one more.
        assert_eq!(schedule.admit(t0 + ms(1), 1500), Some(t0 + ms(14)));
        // Once the link has drained, a packet goes out at once again.
        let later = t0 + ms(100);
        assert_eq!(schedule.admit(later, 1500), Some(later + ms(11)));
    }

    #[test]
    fn the_rate_holds_over_a_long_run() {
        // 10,000 packets offered faster than 100 Mbit/s leave at 100 Mbit/s.
        let mut schedule = Schedule::new(&spec("t,rate=100mbit,queue=64m"));
        let t0 = Instant::now();
        let mut last = t0;
        for i in 0..10_000u32 {
            last = schedule
                .admit(t0 + Duration::from_micros(u64::from(i)), 1250)
                .unwrap();
        }
        // 10,000 × 1250 bytes = 100 Mbit: one second.
        let took = (last - t0).as_secs_f64();
        assert!((took - 1.0).abs() < 1e-3, "{took}");
    }

    #[test]
    fn the_loss_draws_are_repeatable_and_near_the_probability() {
        let draws = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..200_000)
                .map(|_| rng.gen::<f64>() < 0.005)
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let lost = draws(7).iter().filter(|l| **l).count() as f64;
        // Binomial(200000, 0.005): mean 1000, standard deviation 31.5; 5 sigma.
        assert!((lost - 1000.0).abs() < 160.0, "{lost}");
    }
}
