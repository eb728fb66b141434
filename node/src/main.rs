//! The `p2pd` binary: parses the command line (with the environment and the
//! configuration file), runs it on a tokio runtime, and turns an error into one line on
//! stderr and an exit code (2 for bad usage or input, else 1).

use std::process::ExitCode;

use p2pd::config::{self, Refusal};
use p2pd::{commands, UsageError};

fn main() -> ExitCode {
    let cli = match config::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(Refusal::Clap(e)) => {
            // --help and --version are not errors; clap exits 2 for bad usage.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
        Err(Refusal::Usage(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    // Disk work runs on blocking threads; a few suffice, and each extra thread can keep a
    // malloc arena of chunk buffers: memory that would grow with the transfer.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(8)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // A blocking thread still at work (an import the daemon stopped waiting for) must not
    // hold the process past the daemon's promise to stop within seconds; the store
    // survives being cut off like that.
    runtime.shutdown_timeout(std::time::Duration::from_millis(300));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !message.contains(&cause) {
                    message.push_str(": ");
                    message.push_str(&cause);
                }
            }
            eprintln!("error: {message}");
            let usage = e.chain().any(|c| c.downcast_ref::<UsageError>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
