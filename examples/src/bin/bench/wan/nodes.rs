//! The p2pd nodes of a profile, each a daemon in its lab host's namespace, and the two
//! fetches measured on them: from the single seeder and from the four home seeders.

use std::time::Duration;

use p2pd_examples::procfs::CpuUse;
use serde_json::Value;

use super::{Files, BOOTSTRAP, FETCHER, HOME_SEEDERS, LISTEN, SEEDER};
use crate::harness::Daemon;
use crate::lab::WanLab;
use crate::{Bench, MIB};

/// The p2pd nodes of one profile: the bootstrap node and the single seeder stay up for
/// both figures; fetchers and home seeders come and go.
pub(super) struct P2pNet {
    /// Kept alive for the DHT; dropped (killed) with the net.
    _bootstrap: Daemon,
    bootstrap_addr: String,
    /// The single seeder and the CID of its file, once the single-source figure ran.
    seeder: Option<(Daemon, String)>,
    /// The four home seeders and the CID of their file, once the multi-source figure ran.
    home_seeders: Option<(Vec<Daemon>, String)>,
    name: &'static str,
    /// Fetchers started so far (each round of either figure starts one); names them.
    fetchers: usize,
}

impl P2pNet {
    pub(super) fn start(
        bench: &mut Bench,
        lab: &WanLab,
        name: &'static str,
    ) -> anyhow::Result<Self> {
        let bootstrap = lab_daemon(
            bench,
            lab,
            BOOTSTRAP,
            &format!("{name}-bootstrap"),
            &["--dht-mode", "server"],
        )?;
        let bootstrap_addr = format!(
            "/ip4/{}/tcp/4001/p2p/{}",
            lab.addr(BOOTSTRAP),
            bootstrap.peer_id()?
        );
        Ok(P2pNet {
            _bootstrap: bootstrap,
            bootstrap_addr,
            seeder: None,
            home_seeders: None,
            name,
            fetchers: 0,
        })
    }

    pub(super) fn node(
        &self,
        bench: &mut Bench,
        lab: &WanLab,
        host: usize,
        role: &str,
    ) -> anyhow::Result<Daemon> {
        lab_daemon(
            bench,
            lab,
            host,
            &format!("{}-{role}", self.name),
            &["--bootstrap", &self.bootstrap_addr],
        )
    }

    /// Returns the fetch's `--json` seconds, the CPU of seeder and fetcher, and the
    /// transport of the fetcher's connection to the seeder. The first call starts the
    /// seeder and adds the file; each call fetches it on a new fetcher.
    pub(super) fn single_source(
        &mut self,
        bench: &mut Bench,
        lab: &WanLab,
        files: &Files,
    ) -> anyhow::Result<(f64, CpuUse, String)> {
        if self.seeder.is_none() {
            let seeder = self.node(bench, lab, SEEDER, "seeder")?;
            let (cid, ..) = bench.add(&seeder, &files.single, &[])?;
            seeder.wait_announced(Duration::from_secs(60))?;
            self.seeder = Some((seeder, cid));
        }
        self.fetchers += 1;
        let role = match self.fetchers {
            1 => "fetcher".to_string(),
            n => format!("fetcher{n}"),
        };
        let fetcher = self.node(bench, lab, FETCHER, &role)?;
        let (seeder, cid) = self.seeder.as_ref().expect("started above");
        let f = bench.fetch(
            &fetcher,
            &[seeder],
            cid,
            &files.single_hash,
            &format!("{}-single", self.name),
        )?;
        let transport = transport_to(&fetcher, &seeder.peer_id()?)?;
        Ok((f.secs, f.cpu, transport))
    }

    /// Returns the fetch's seconds, the CPU of the seeders and the fetcher, and the
    /// bytes each seeder sent. The first call starts the home seeders and adds the file
    /// on each; each call fetches it on a new fetcher.
    pub(super) fn multi_source(
        &mut self,
        bench: &mut Bench,
        lab: &WanLab,
        files: &Files,
    ) -> anyhow::Result<(f64, CpuUse, String)> {
        if self.home_seeders.is_none() {
            let mut seeders = Vec::new();
            let mut cid = String::new();
            for (i, host) in HOME_SEEDERS.iter().enumerate() {
                let seeder = self.node(bench, lab, *host, &format!("home{}", i + 1))?;
                cid = bench.add(&seeder, &files.multi, &[])?.0;
                seeders.push(seeder);
            }
            for seeder in &seeders {
                seeder.wait_announced(Duration::from_secs(60))?;
            }
            self.home_seeders = Some((seeders, cid));
        }
        self.fetchers += 1;
        let role = format!("multi-fetcher{}", self.fetchers);
        let fetcher = self.node(bench, lab, FETCHER, &role)?;
        let (seeders, cid) = self.home_seeders.as_ref().expect("started above");
        let providers: Vec<&Daemon> = seeders.iter().collect();
        let f = bench.fetch(
            &fetcher,
            &providers,
            cid,
            &files.multi_hash,
            &format!("{}-multi", self.name),
        )?;
        let ids: Vec<String> = seeders
            .iter()
            .map(Daemon::peer_id)
            .collect::<anyhow::Result<_>>()?;
        let mut shares = Vec::new();
        for p in f.json["peers"].as_array().into_iter().flatten() {
            let who = ids
                .iter()
                .position(|id| p["peer_id"] == id.as_str())
                .map_or("other".to_string(), |i| format!("home{}", i + 1));
            let over = match p["peer_id"].as_str() {
                Some(id) => transport_kind(&transport_to(&fetcher, id)?),
                None => "?",
            };
            shares.push(format!(
                "{who} {:.1} MiB over {over}",
                p["bytes"].as_u64().unwrap_or(0) as f64 / MIB as f64
            ));
        }
        Ok((f.secs, f.cpu, shares.join(", ")))
    }
}

/// A daemon on host `host`, listening on the lab's ports, announcing its lab address.
fn lab_daemon(
    bench: &mut Bench,
    lab: &WanLab,
    host: usize,
    name: &str,
    extra: &[&str],
) -> anyhow::Result<Daemon> {
    bench.next_node += 1;
    let dir = bench.path(&format!("node{}-{name}", bench.next_node));
    let tcp = format!("/ip4/{}/tcp/4001", lab.addr(host));
    let quic = format!("/ip4/{}/udp/4001/quic-v1", lab.addr(host));
    let mut args = vec!["--external-addr", &tcp, "--external-addr", &quic];
    args.extend_from_slice(extra);
    Daemon::start_in(Some(&lab.ns(host)), &LISTEN, &bench.bin, &dir, name, &args)
}

/// `tcp`, `quic` or both, from the addresses [`transport_to`] lists.
fn transport_kind(addrs: &str) -> &'static str {
    match (addrs.contains("/tcp/"), addrs.contains("/quic")) {
        (true, true) => "tcp+quic",
        (true, false) => "tcp",
        (false, true) => "quic",
        (false, false) => "?",
    }
}

/// `tcp` or `quic`: how the fetcher is connected to `peer` (from `peers --json`).
fn transport_to(fetcher: &Daemon, peer: &str) -> anyhow::Result<String> {
    let peers = fetcher
        .cli(&["peers", "--json"], Duration::from_secs(30))?
        .ok("peers")?
        .json()?;
    let entry = peers
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["peer_id"] == peer)
        .cloned()
        .unwrap_or(Value::Null);
    let addrs: Vec<&str> = entry["addrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    Ok(if addrs.is_empty() {
        "an unknown transport (no longer connected)".into()
    } else {
        addrs.join(" + ")
    })
}
