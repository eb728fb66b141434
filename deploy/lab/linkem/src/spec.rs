//! What one emulated link direction does ([`LinkSpec`]) and its command-line form,
//! `DEVICE[,delay=20ms][,loss=0.5%][,rate=100mbit][,queue=256k][,slots=16384][,seed=7]`.

use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context as _};

/// Packets a link may hold at once by default (waiting for the rate or the delay):
/// 1 Gbit/s for 50 ms is about 4,200 full-size packets, so this leaves room and still
/// bounds memory to about 24 MiB per link.
pub const DEFAULT_SLOTS: usize = 16_384;
/// Bytes waiting for linkem's own rate limit by default (a router's buffer).
pub const DEFAULT_QUEUE_BYTES: u64 = 256 << 10;
/// Longest one-way delay accepted: anything longer is a typo, not a link.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// One direction of one emulated link: the TUN device it reads from and writes back to,
/// and what happens to a packet in between.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkSpec {
    /// The TUN device (in the router namespace).
    pub device: String,
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Probability that a packet is lost, in `[0, 1)`.
    pub loss: f64,
    /// Rate enforced by linkem itself, bits per second (`None`: the packets leave as fast
    /// as they come; the lab shapes rates with tbf in front of the device instead).
    pub rate_bps: Option<u64>,
    /// Bytes that may wait for `rate_bps` before new packets are dropped.
    pub queue_bytes: u64,
    /// Packets that may be held at once (waiting for the rate or the delay).
    pub slots: usize,
    /// Seed of the loss draws: the same seed loses the same packets of the same stream.
    pub seed: u64,
}

impl LinkSpec {
    /// A link that only forwards (no delay, loss or rate).
    pub fn new(device: &str) -> Self {
        LinkSpec {
            device: device.to_string(),
            delay: Duration::ZERO,
            loss: 0.0,
            rate_bps: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            slots: DEFAULT_SLOTS,
            seed: 1,
        }
    }
}

impl FromStr for LinkSpec {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut parts = s.split(',');
        let device = parts.next().unwrap_or_default().trim();
        // Linux interface names are at most 15 bytes.
        if device.is_empty() || device.len() > 15 || device.contains(['/', ' ', '=']) {
            bail!("bad device name {device:?} in link {s:?}");
        }
        let mut spec = LinkSpec::new(device);
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("expected KEY=VALUE, got {part:?} in link {s:?}"))?;
            let value = value.trim();
            match key.trim() {
                "delay" => spec.delay = parse_duration(value)?,
                "loss" => spec.loss = parse_probability(value)?,
                "rate" => spec.rate_bps = Some(parse_rate(value)?),
                "queue" => spec.queue_bytes = parse_bytes(value)?,
                "slots" => {
                    spec.slots = value
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .with_context(|| format!("bad slots {value:?}"))?
                }
                "seed" => {
                    spec.seed = value
                        .parse()
                        .with_context(|| format!("bad seed {value:?}"))?
                }
                other => bail!("unknown link setting {other:?} in {s:?}"),
            }
        }
        Ok(spec)
    }
}

/// `20ms`, `1.5ms`, `250us`, `0.04s`, `0`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (number, unit) = split_unit(s);
    let scale = match unit {
        "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "" if number == "0" => 0.0,
        _ => bail!("bad duration {s:?} (use s, ms or us)"),
    };
    let secs = parse_number(number, s)? * scale;
    let d = Duration::from_secs_f64(secs);
    if d > MAX_DELAY {
        bail!("delay {s:?} is longer than {MAX_DELAY:?}");
    }
    Ok(d)
}

/// `0.5%` or `0.005`, in `[0, 1)`.
pub fn parse_probability(s: &str) -> anyhow::Result<f64> {
    let p = match s.strip_suffix('%') {
        Some(percent) => parse_number(percent, s)? / 100.0,
        None => parse_number(s, s)?,
    };
    if !(0.0..1.0).contains(&p) {
        bail!("loss {s:?} is not in [0, 1)");
    }
    Ok(p)
}

/// `100mbit`, `1gbit`, `500kbit`, `64000bit`, as tc writes rates; bits per second.
pub fn parse_rate(s: &str) -> anyhow::Result<u64> {
    let (number, unit) = split_unit(s);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => bail!("bad rate {s:?} (use bit, kbit, mbit or gbit)"),
    };
    let bps = parse_number(number, s)? * scale;
    if !(1e3..=1e11).contains(&bps) {
        bail!("rate {s:?} is outside 1 kbit/s to 100 Gbit/s");
    }
    Ok(bps as u64)
}

/// `256k`, `4m`, `1500` (k and m are powers of 1024).
pub fn parse_bytes(s: &str) -> anyhow::Result<u64> {
    let (number, unit) = split_unit(s);
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1024.0,
        "m" | "mb" => 1024.0 * 1024.0,
        _ => bail!("bad size {s:?} (use k or m)"),
    };
    let bytes = parse_number(number, s)? * scale;
    if !(1500.0..=(1u64 << 32) as f64).contains(&bytes) {
        bail!("queue {s:?} is outside 1500 bytes to 4 GiB");
    }
    Ok(bytes as u64)
}

fn split_unit(s: &str) -> (&str, &str) {
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s.split_at(at)
}

fn parse_number(number: &str, whole: &str) -> anyhow::Result<f64> {
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .with_context(|| format!("bad number in {whole:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_spec_parses() {
        let spec: LinkSpec = "h1up,delay=20ms,loss=0.5%,rate=100mbit,queue=512k,slots=100,seed=9"
            .parse()
            .unwrap();
        assert_eq!(
            spec,
            LinkSpec {
                device: "h1up".into(),
                delay: Duration::from_millis(20),
                loss: 0.005,
                rate_bps: Some(100_000_000),
                queue_bytes: 512 << 10,
                slots: 100,
                seed: 9,
            }
        );
        assert_eq!("t".parse::<LinkSpec>().unwrap(), LinkSpec::new("t"));
        assert_eq!(
            "t,delay=250us,loss=0.01".parse::<LinkSpec>().unwrap().delay,
            Duration::from_micros(250)
        );
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for bad in [
            "",
            "a-name-longer-than-15",
            "t,delay=20",
            "t,delay=20min",
            "t,delay=11s",
            "t,loss=100%",
            "t,loss=-1",
            "t,rate=fast",
            "t,rate=10tbit",
            "t,queue=10",
            "t,slots=0",
            "t,seed=x",
            "t,colour=red",
            "t,delay",
        ] {
            assert!(bad.parse::<LinkSpec>().is_err(), "{bad:?} was accepted");
        }
    }
}
