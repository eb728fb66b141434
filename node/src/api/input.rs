//! Checks of what users send: CIDs, output paths, timeouts, display names, names of
//! uploads. Each answers a clear 400 error for bad input.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use dht_proto::Cid;

use super::types::FetchRequest;
use super::{ApiError, DEFAULT_FETCH_TIMEOUT, MAX_DISPLAY_NAME};
use crate::transfer::FetchTarget;

/// Parses a CID given by a user.
pub fn parse_cid(text: &str) -> Result<Cid, ApiError> {
    let cid = Cid::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("invalid CID {text:?}: {e}")))?;
    if cid.codec() != dht_proto::Codec::DagCbor {
        return Err(ApiError::bad_request(format!(
            "{cid} names a single chunk (raw), not a file"
        )));
    }
    Ok(cid)
}

/// Refuses a relative path: the daemon's working directory is not the user's.
pub fn check_absolute(path: &Path) -> Result<(), ApiError> {
    if path.is_absolute() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "path must be absolute: {}",
            path.display()
        )))
    }
}

/// What a fetch of a file or a folder asks for, checked: a CID that names a file or
/// folder, absolute paths, a timeout in range. Whether the paths suit a file or a
/// folder is for the caller to check.
pub fn fetch_target(request: FetchRequest) -> Result<FetchTarget, ApiError> {
    let cid = parse_cid(&request.cid)?;
    for path in [&request.output, &request.output_dir].into_iter().flatten() {
        check_absolute(path)?;
    }
    Ok(FetchTarget {
        cid,
        output: request.output,
        output_dir: request.output_dir,
        timeout: fetch_timeout(request.timeout_secs)?,
    })
}

/// Runs checks that touch the file system (a `stat`, a probe file) on a blocking
/// thread: on a busy disk they can wait behind its writes, and the runtime's threads
/// must keep answering meanwhile.
pub async fn off_runtime<T: Send + 'static>(
    check: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(check)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(format!("check failed: {e}"))))
}

/// Checks, before anything is downloaded, that a download can be written to `output`:
/// nothing is there (not even a dangling symbolic link, which the final link would
/// refuse) and its directory exists and takes new files.
pub fn check_output(output: &Path) -> Result<(), ApiError> {
    if output.symlink_metadata().is_ok() {
        return Err(ApiError::bad_request(format!(
            "{} already exists",
            output.display()
        )));
    }
    let dir = match output.parent() {
        Some(dir) if dir.is_dir() => dir,
        _ => {
            return Err(ApiError::bad_request(format!(
                "directory of {} does not exist",
                output.display()
            )))
        }
    };
    let probe = dir.join(format!(
        ".p2pd-write-check-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot write in {}: {e}",
            dir.display()
        ))),
    }
}

/// Checks a display name: `None` or empty clears it.
pub fn check_display_name(name: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(name) = name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(ApiError::bad_request(format!(
            "the display name must have at most {MAX_DISPLAY_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the display name must not contain control characters",
        ));
    }
    Ok(Some(name))
}

/// A name for a file uploaded through the browser: its safe form
/// ([`dht_proto::names::sanitize_file_name`]), or `upload` if nothing usable is left.
pub fn upload_name(name: Option<&str>) -> String {
    name.and_then(dht_proto::names::sanitize_file_name)
        .unwrap_or_else(|| "upload".into())
}

/// The no-progress timeout of a download, from the seconds a user gave.
pub fn fetch_timeout(secs: Option<u64>) -> Result<Duration, ApiError> {
    match secs {
        Some(0) => Err(ApiError::bad_request("timeout must be at least 1 second")),
        Some(secs) if secs > 7 * 24 * 3600 => Err(ApiError::bad_request(
            "timeout must be at most a week (604800 seconds)",
        )),
        Some(secs) => Ok(Duration::from_secs(secs)),
        None => Ok(DEFAULT_FETCH_TIMEOUT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn checks_of_the_disk_leave_the_runtime_free() {
        let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counter = ticks.clone();
        let ticker = tokio::spawn(async move {
            loop {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        // A check that blocks its thread, as a stat on a busy disk does.
        off_runtime(|| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        })
        .await
        .unwrap();
        ticker.abort();
        // On the runtime's only thread, the ticker would not have run at all.
        assert!(ticks.load(std::sync::atomic::Ordering::Relaxed) > 5);
    }

    #[test]
    fn display_names_are_checked() {
        assert_eq!(check_display_name(None).ok(), Some(None));
        assert_eq!(check_display_name(Some("  ".into())).ok(), Some(None));
        assert_eq!(
            check_display_name(Some(" Ada's laptop ".into())).ok(),
            Some(Some("Ada's laptop".into()))
        );
        assert!(check_display_name(Some("a\nb".into())).is_err());
        assert!(check_display_name(Some("x".repeat(65))).is_err());
    }

    #[test]
    fn upload_names_are_made_safe() {
        assert_eq!(upload_name(Some("report.pdf")), "report.pdf");
        assert_eq!(upload_name(Some("C:\\Users\\a\\b.txt")), "b.txt");
        assert_eq!(upload_name(Some("../x")), "x");
        assert_eq!(upload_name(Some("..")), "upload");
        assert_eq!(upload_name(None), "upload");
        assert_eq!(upload_name(Some(&"é".repeat(200))).len(), 254);
    }
}
