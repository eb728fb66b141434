//! What `p2pd daemon` checks and prepares before it builds anything: its options make
//! sense together, its data directory is private (0700, every file in it 0600: the
//! directory holds the node key, the API token and the web password), its log file can
//! be written, and no other process already listens on its peer ports.
//!
//! Modes and the umask are Unix's; on Windows the data directory is created under the
//! user's profile, whose access rules already keep other users out, and nothing is
//! changed.

use std::fs::{self, File, OpenOptions};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

use crate::options::DaemonArgs;
use crate::paths;
use crate::UsageError;

/// Most entries of the data directory whose modes are checked at start (a store holds
/// a few files per shared file; far more means something else lives there).
#[cfg(unix)]
const MAX_CHECKED_ENTRIES: usize = 1_000_000;

/// Refuses options that make no sense together (exit 2), before anything is created.
/// (Each value on its own was checked by its parser, wherever it was written.)
pub fn check_args(args: &DaemonArgs) -> Result<(), UsageError> {
    if !args.api.ip().is_loopback() && !args.api_public {
        return Err(UsageError(format!(
            "--api {} is not a loopback address; add --api-public (api-public = true in the \
             configuration file) to expose the control API",
            args.api
        )));
    }
    Ok(())
}

/// Makes files and directories the daemon creates from now on private to its owner
/// (0600 and 0700), whoever creates them (the store, the log, libraries). Returns the
/// umask the process had, the user's, for files placed for the user (`None` where
/// there is no umask: Windows).
pub fn private_umask() -> Option<u32> {
    #[cfg(unix)]
    {
        use rustix::fs::Mode;
        let original = rustix::process::umask(Mode::from_raw_mode(0o077));
        // mode_t is u32 on Linux, u16 on macOS.
        #[allow(clippy::useless_conversion)]
        Some(u32::from(original.bits()))
    }
    #[cfg(not(unix))]
    None
}

/// Creates the data directory with mode 0700, or makes an existing one private: group
/// and others lose every right on it and on every directory and file in it (so 0755
/// becomes 0700, 0644 becomes 0600). Symbolic links are not followed. Returns what it
/// had to fix, for a warning once logging runs.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let meta = fs::metadata(dir)
        .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
    if !meta.is_dir() {
        anyhow::bail!("the data directory {} is not a directory", dir.display());
    }
    #[cfg(unix)]
    return make_private(dir);
    #[cfg(not(unix))]
    Ok(Vec::new())
}

/// Takes group and others' rights away from `dir` and everything under it.
#[cfg(unix)]
fn make_private(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut fixed = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(path) = stack.pop() {
        seen += 1;
        if seen > MAX_CHECKED_ENTRIES {
            break;
        }
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue; // gone meanwhile
        };
        if !meta.is_dir() && !meta.is_file() {
            continue; // symbolic links, sockets: not ours to change
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            // Only group and others lose their rights: a directory its owner made
            // read-only stays read-only (and is then refused below, not silently fixed).
            let private = mode & 0o700;
            fs::set_permissions(&path, fs::Permissions::from_mode(private)).with_context(|| {
                format!("cannot make {} private (mode {mode:o})", path.display())
            })?;
            fixed.push(path.clone());
        }
        if meta.is_dir() {
            let entries =
                fs::read_dir(&path).with_context(|| format!("cannot read {}", path.display()))?;
            for entry in entries.flatten() {
                stack.push(entry.path());
            }
        }
    }
    Ok(fixed)
}

/// Opens the log file for appending, created with mode 0600. Fails with the reason (a
/// read-only or unwritable data directory) instead of panicking later.
pub fn open_log(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join(paths::LOG_FILE);
    let mut options = OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
        .open(&path)
        .with_context(|| format!("cannot write the log file {}", path.display()))
}

/// Logs go to stderr and to `log` (the data directory's `p2pd.log`); `RUST_LOG` sets
/// the level. The guard flushes the file when dropped.
pub fn init_logging(log: File) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{fmt, EnvFilter};

    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,libp2p_mdns=warn,libp2p_swarm=warn"));
    let (file_writer, guard) = log_file_writer(log);
    tracing_subscriber::registry()
        .with(filter)
        // Colours only on a terminal: a redirected log stays plain text.
        .with(
            fmt::layer()
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr),
        )
        .with(fmt::layer().with_ansi(false).with_writer(file_writer))
        .try_init()
        .context("initialising logging")?;
    Ok(guard)
}

/// Log lines waiting for the log file's writer thread; past this, lines are dropped
/// (and counted) rather than blocking the daemon. tracing-appender's default, 128,000,
/// is a channel preallocated at 32 bytes a line: 3.9 MiB of the daemon's heap from
/// start-up on (measured with heaptrack), for bursts the writer thread drains in
/// microseconds.
const LOG_LINES_BUFFERED: usize = 8192;

/// The writer thread of the log file, with a bounded queue of lines.
fn log_file_writer<W: std::io::Write + Send + 'static>(
    writer: W,
) -> (
    tracing_appender::non_blocking::NonBlocking,
    tracing_appender::non_blocking::WorkerGuard,
) {
    tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_LINES_BUFFERED)
        .lossy(true)
        .finish(writer)
}

/// Checks that no other process listens on the TCP and UDP ports of `listen`, by
/// binding each with a plain socket, which (unlike libp2p's listeners, which set
/// SO_REUSEPORT) a port already taken refuses. Port 0 and non-IP addresses are not
/// checked. `allow_shared` lets a taken port through (with a warning from the caller).
pub fn check_listen_ports(listen: &[Multiaddr], allow_shared: bool) -> anyhow::Result<Vec<String>> {
    let mut shared = Vec::new();
    for addr in listen {
        let Some((socket, udp)) = socket_addr(addr) else {
            continue;
        };
        if socket.port() == 0 {
            continue;
        }
        let probe = if udp {
            UdpSocket::bind(socket).map(drop)
        } else {
            TcpListener::bind(socket).map(drop)
        };
        match probe {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && allow_shared => {
                shared.push(addr.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
                "cannot listen on {addr}: the port is in use by another process (another \
                 p2pd?); choose another --listen port, or pass --allow-shared-port to share it"
            ),
            Err(e) => anyhow::bail!("cannot listen on {addr}: {e}"),
        }
    }
    Ok(shared)
}

/// The socket address of a `/ip4|ip6/…/tcp/…` or `/ip4|ip6/…/udp/…` multiaddr, and
/// whether it is UDP.
fn socket_addr(addr: &Multiaddr) -> Option<(SocketAddr, bool)> {
    let mut parts = addr.iter();
    let ip: IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    match parts.next()? {
        Protocol::Tcp(port) => Some((SocketAddr::new(ip, port), false)),
        Protocol::Udp(port) => Some((SocketAddr::new(ip, port), true)),
        _ => None,
    }
}

/// Hands the one-time web setup link to the owner without putting the secret in a log:
/// into `setup-link` in the data directory (mode 0600) and, when stderr is a terminal,
/// onto it. Returns the file's path.
pub fn publish_setup_link(dir: &Path, link: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(paths::SETUP_LINK_FILE);
    chunk_store::fsutil::write_private(&path, format!("{link}\n").as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "no web UI password is set: open {link} to set one (one-time link), or run `p2pd passwd`"
        );
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multiaddr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    /// A log file whose writes wait until the test lets them go.
    struct StuckFile(std::sync::mpsc::Receiver<()>);

    impl std::io::Write for StuckFile {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.0.recv();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_log_queue_is_bounded() {
        use std::io::Write;
        let (release, stuck) = std::sync::mpsc::channel();
        let (mut writer, guard) = log_file_writer(StuckFile(stuck));
        // The writer thread takes one line and waits in `write`; the queue holds the
        // next LOG_LINES_BUFFERED; the rest are dropped and counted.
        for _ in 0..LOG_LINES_BUFFERED + 100 {
            writer.write_all(b"a line\n").unwrap();
        }
        let dropped = writer.error_counter().dropped_lines();
        assert!((99..=100).contains(&dropped), "{dropped} lines dropped");
        drop(release);
        drop(guard);
    }

    #[test]
    fn ports_of_tcp_and_quic_addresses_are_found() {
        let tcp = multiaddr("/ip4/127.0.0.1/tcp/4001");
        let quic = multiaddr("/ip6/::1/udp/4002/quic-v1");
        let dns = multiaddr("/dns4/example.org/tcp/1");
        assert_eq!(
            socket_addr(&tcp),
            Some(("127.0.0.1:4001".parse().unwrap(), false))
        );
        assert_eq!(
            socket_addr(&quic),
            Some(("[::1]:4002".parse().unwrap(), true))
        );
        assert_eq!(socket_addr(&dns), None);
    }

    #[test]
    fn a_taken_port_is_refused_unless_sharing_is_allowed() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let addr = multiaddr(&format!("/ip4/127.0.0.1/tcp/{port}"));
        let err = check_listen_ports(std::slice::from_ref(&addr), false).unwrap_err();
        assert!(
            err.to_string().contains("in use by another process"),
            "{err}"
        );
        assert_eq!(check_listen_ports(&[addr], true).unwrap().len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_data_directory_is_made_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("store")).unwrap();
        fs::write(data.join("p2pd.log"), "x").unwrap();
        fs::write(data.join("store/db"), "x").unwrap();
        for (path, mode) in [(&data, 0o755), (&data.join("store"), 0o755)] {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
        for file in ["p2pd.log", "store/db"] {
            fs::set_permissions(data.join(file), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let fixed = prepare_data_dir(&data).unwrap();
        assert_eq!(fixed.len(), 4, "{fixed:?}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("store")), 0o700);
        assert_eq!(mode(&data.join("p2pd.log")), 0o600);
        assert_eq!(mode(&data.join("store/db")), 0o600);
        // Private already: nothing to fix.
        assert!(prepare_data_dir(&data).unwrap().is_empty());
    }
}
