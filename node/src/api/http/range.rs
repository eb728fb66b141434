//! A file's bytes, `GET /api/files/{cid}/content`, whole or one byte range (`Range:
//! bytes=…`, answered 206), also while the file is still downloading: the range's
//! chunks are fetched before the rest of the file, and each is sent once verified, so a
//! browser's video starts before the download ends.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::stream::receiver_stream;
use super::AppState;
use crate::api::types::{ErrorBody, FileBytes};
use crate::api::ApiError;

/// What the reader asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The whole file (no Range, or one this server does not take: another unit,
    /// several ranges, bad syntax).
    Whole,
    /// Bytes `first..=last`.
    Part { first: u64, last: u64 },
    /// A range that starts past the end.
    Unsatisfiable,
}

/// Reads a `Range` header against a file of `size` bytes (RFC 9110, section 14).
fn wanted(range: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = range.and_then(|r| r.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    match (start.trim().is_empty(), end.trim().is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(end) {
            Some(0) => Wanted::Unsatisfiable,
            Some(_) if size == 0 => Wanted::Unsatisfiable,
            Some(n) => Wanted::Part {
                first: size - n.min(size),
                last: size - 1,
            },
            None => Wanted::Whole,
        },
        // `a-` or `a-b`.
        (false, open_end) => {
            let Some(first) = number(start) else {
                return Wanted::Whole;
            };
            let last = if open_end {
                Some(u64::MAX)
            } else {
                number(end)
            };
            match last {
                Some(last) if last < first => Wanted::Whole,
                Some(_) if first >= size => Wanted::Unsatisfiable,
                Some(last) => Wanted::Part {
                    first,
                    last: last.min(size - 1),
                },
                None => Wanted::Whole,
            }
        }
        (true, true) => Wanted::Whole,
    }
}

/// `filename*=` value: UTF-8, percent-encoded (RFC 5987).
fn percent_encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `attachment; filename="…"; filename*=UTF-8''…`.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encode(name)
    )
}

/// The bytes of a file (whole, or one range), verified as they are read; while the
/// file downloads, each chunk is sent once it arrives, the range's chunks first.
#[utoipa::path(get, path = "/api/files/{cid}/content", tag = "files",
    params(("cid" = String, Path, description = "The file CID.", example = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        ("Range" = Option<String>, Header, description = "One byte range, `bytes=first-last`, `bytes=first-` or `bytes=-suffix`; other forms get the whole file.")),
    responses(
        (status = 200, description = "The file's bytes; a failed read ends the body early.",
            content_type = "application/octet-stream", body = inline(FileBytes)),
        (status = 206, description = "The requested range (`Content-Range` says which); a failed read ends the body early.",
            content_type = "application/octet-stream", body = inline(FileBytes)),
        (status = 416, description = "The range starts past the end of the file (`Content-Range: bytes */size`).",
            body = ErrorBody)))]
pub(super) async fn content(
    State(s): State<AppState>,
    Path(cid): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let file = s.api.open_stream(&cid).await?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, first, last) = match wanted(range, file.size) {
        Wanted::Whole => (StatusCode::OK, 0, file.size.checked_sub(1)),
        Wanted::Part { first, last } => (StatusCode::PARTIAL_CONTENT, first, Some(last)),
        Wanted::Unsatisfiable => {
            let message = format!(
                "the range starts past the end of the file ({} bytes)",
                file.size
            );
            let mut response = ApiError::new(416, message).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", file.size)) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(response);
        }
    };
    let length = last.map_or(0, |last| last - first + 1);
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    if let Some(last) = last {
        let chunk_size = u64::from(file.chunk_size.max(1));
        let first_chunk = (first / chunk_size) as u32;
        let last_chunk = (last / chunk_size) as u32;
        let api = s.api.clone();
        let cid = file.cid;
        s.tasks.spawn_until_stop(async move {
            for index in first_chunk..=last_chunk {
                let item = api
                    .stream_chunk(cid, index, index..last_chunk + 1)
                    .await
                    .map(|chunk| {
                        // The part of this chunk inside the range.
                        let start = u64::from(index) * chunk_size;
                        let from = first.saturating_sub(start) as usize;
                        let to = ((last + 1 - start) as usize).min(chunk.len());
                        Bytes::copy_from_slice(&chunk.as_slice()[from..to])
                    })
                    .map_err(|e| std::io::Error::other(e.message));
                let failed = item.is_err();
                // A failed read ends the body early, so the browser sees a failed
                // download rather than a short file.
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
    }
    let mut response = Body::from_stream(receiver_stream(rx)).into_response();
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let (StatusCode::PARTIAL_CONTENT, Some(last)) = (status, last) {
        let value = format!("bytes {first}-{last}/{}", file.size);
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
    // A file from the network is never run as a page of this origin, even if opened.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition(&file.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let part = |first, last| Wanted::Part { first, last };
        for (header, size, expected) in [
            (None, 100, Wanted::Whole),
            (Some("bytes=0-9"), 100, part(0, 9)),
            (Some("bytes=90-"), 100, part(90, 99)),
            (Some("bytes=90-1000"), 100, part(90, 99)),
            (Some("bytes=-10"), 100, part(90, 99)),
            (Some("bytes=-1000"), 100, part(0, 99)),
            (Some("bytes=99-99"), 100, part(99, 99)),
            (Some("bytes=100-"), 100, Wanted::Unsatisfiable),
            (Some("bytes=-0"), 100, Wanted::Unsatisfiable),
            (Some("bytes=0-"), 0, Wanted::Unsatisfiable),
            (Some("bytes=-5"), 0, Wanted::Unsatisfiable),
            (Some("bytes=5-2"), 100, Wanted::Whole),
            (Some("bytes=0-1,5-6"), 100, Wanted::Whole),
            (Some("items=0-1"), 100, Wanted::Whole),
            (Some("bytes=x-"), 100, Wanted::Whole),
            (Some("bytes=-"), 100, Wanted::Whole),
            (
                Some("bytes=18446744073709551615-"),
                100,
                Wanted::Unsatisfiable,
            ),
        ] {
            assert_eq!(wanted(header, size), expected, "{header:?} of {size}");
        }
    }
}
