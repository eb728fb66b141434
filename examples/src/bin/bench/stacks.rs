//! Figure 7: one bare libp2p stream over each secure transport p2pd could use
//! (TCP+noise+yamux, TCP+TLS 1.3+yamux, QUIC with libp2p's windows and with wider
//! ones), beside raw TCP, all on 127.0.0.1 inside the bench process, so that the CPU
//! counted is both ends' together. The measurements are interleaved round by round,
//! like figure 2's, so that a shared machine's drift slows each alike.

use crate::nodes::measure_self;
use crate::reference::Speeds;
use crate::report::{size_label, Samples};
use crate::transport::{self, Stack};
use crate::{Bench, GIB};

impl Bench {
    pub(crate) fn figure_transport(&mut self) -> anyhow::Result<()> {
        let size = self.main_size();
        let label = size_label(size);
        println!("\n[7] one bare stream of {label} over each secure transport, beside raw TCP");
        let file = self.main_file()?;
        let mut tcp = Samples::default();
        let mut stacks: Vec<(Stack, Samples)> = Stack::ALL
            .iter()
            .map(|s| (*s, Samples::default()))
            .collect();
        let mut speeds = Speeds::default();
        for round in 0..self.args.repeat.max(1) {
            let speed_before = speeds.measure();
            let (t, _, cpu) = measure_self(|| transport::raw_tcp(&file))?;
            tcp.push(t, Some(cpu));
            let mut line = format!(
                "round {}: machine reference {speed_before:.2} GB/s before; raw TCP {:.3} s",
                round + 1,
                t.as_secs_f64()
            );
            for (stack, samples) in &mut stacks {
                let rt = self.rt.clone();
                let stack = *stack;
                let drops_before = udp_receive_buffer_errors();
                let (t, _, cpu) =
                    measure_self(|| rt.block_on(transport::bare_libp2p(&file, stack)))?;
                let drops = udp_receive_buffer_errors()
                    .zip(drops_before)
                    .map_or("?".to_string(), |(a, b)| (a - b).to_string());
                samples.push(t, Some(cpu));
                line.push_str(&format!(
                    "; {} {:.3} s, {:.2} CPU-s per GiB, UDP datagrams dropped for a full receive buffer: {drops} ({})",
                    stack.label(),
                    t.as_secs_f64(),
                    cpu.own * GIB as f64 / size as f64,
                    cpu.show()
                ));
            }
            line.push_str(&format!(
                "; machine reference {:.2} GB/s after",
                speeds.measure()
            ));
            self.note(line);
        }
        self.note(speeds.summary());
        let fig = format!("7 · one bare stream of {label}");
        for (stack, samples) in &stacks {
            self.row(
                &format!("{fig} over {}", stack.label()),
                &samples.show(size),
                "raw TCP over loopback",
                &tcp.show(size),
                format!("{:.2}", tcp.best() / samples.best()),
                "—",
            );
        }
        self.cpu_row("7 · raw TCP (both ends)", size, tcp.best_cpu());
        for (stack, samples) in &stacks {
            self.cpu_row(
                &format!("7 · bare stream, {} (both ends)", stack.label()),
                size,
                samples.best_cpu(),
            );
        }
        Ok(())
    }
}

/// `RcvbufErrors` of `/proc/net/snmp`: UDP datagrams this network namespace dropped
/// because the receiving socket's buffer was full.
fn udp_receive_buffer_errors() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names = udp.next()?.split_whitespace();
    let values = udp.next()?.split_whitespace();
    names
        .zip(values)
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
}
