//! A small HTTP/1.1 client over `std::net::TcpStream`, for tests of the control API
//! that need full control of the request (no token, a forged `Origin` or `Host`, a
//! session cookie, a body that is not JSON) and a look at raw answers and streams.
//! One request per connection (`Connection: close`); chunked bodies are decoded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a request may take unless told otherwise.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a daemon's API listens and its bearer token, from `api.json`.
pub fn endpoint(data_dir: &Path) -> (String, String) {
    let text = std::fs::read_to_string(data_dir.join("api.json")).expect("api.json");
    let v: Value = serde_json::from_str(&text).expect("api.json is JSON");
    (
        v["addr"].as_str().expect("addr").to_string(),
        v["token"].as_str().expect("token").to_string(),
    )
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The (de-chunked) body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts the error contract: this status and a JSON `{status, message}` body.
    pub fn assert_error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text());
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error without a JSON body: {self:?}"
        );
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        let message = body["message"].as_str().expect("message").to_string();
        assert!(!message.is_empty());
        message
    }
}

/// One request to be sent.
#[derive(Debug, Clone)]
pub struct Request {
    addr: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Starts a request to `addr` (`host:port`).
pub fn request(addr: &str, method: &str, path: &str) -> Request {
    Request {
        addr: addr.to_string(),
        method: method.to_string(),
        path: path.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Decodes as much of a chunked body as has arrived; returns it and whether the last
/// chunk was seen.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(raw, b"\r\n") else {
            return (out, false);
        };
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
        else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let start = eol + 2;
        if raw.len() < start + size + 2 {
            out.extend_from_slice(&raw[start..raw.len().min(start + size)]);
            return (out, false);
        }
        out.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}

impl Request {
    /// Adds a header (a `Host` header replaces the default one).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body.
    pub fn json(mut self, value: &Value) -> Self {
        self.body = serde_json::to_vec(value).unwrap();
        self.header("Content-Type", "application/json")
    }

    /// A raw body.
    pub fn body(mut self, bytes: Vec<u8>) -> Self {
        self.body = bytes;
        self
    }

    fn connect(&self) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.addr));
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            head.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        stream.write_all(head.as_bytes()).unwrap();
        // The server may answer (413, 401) and close before reading a large body.
        let _ = stream.write_all(&self.body);
        stream
    }

    /// Sends the request and reads the whole answer.
    pub fn send(self) -> Response {
        self.read_until(HTTP_TIMEOUT, |_| false)
    }

    /// Sends the request and reads until the body so far satisfies `done` (for streams),
    /// the body ends, or `timeout` passes (then panics).
    pub fn read_until(self, timeout: Duration, mut done: impl FnMut(&[u8]) -> bool) -> Response {
        let mut stream = self.connect();
        let deadline = Instant::now() + timeout;
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 << 10];
        loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                let response = parse(&raw[..end], &raw[end + 4..]);
                let chunked = response
                    .header("transfer-encoding")
                    .is_some_and(|t| t.contains("chunked"));
                let length = response
                    .header("content-length")
                    .and_then(|l| l.parse::<usize>().ok());
                let (body, complete) = if chunked {
                    dechunk(&raw[end + 4..])
                } else {
                    let body = raw[end + 4..].to_vec();
                    let complete = length.is_some_and(|l| body.len() >= l);
                    (body, complete)
                };
                if complete || done(&body) {
                    return Response { body, ..response };
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} {}: no complete answer within {timeout:?}; got {:?}",
                self.method,
                self.path,
                String::from_utf8_lossy(&raw)
            );
            match stream.read(&mut buf) {
                Ok(0) => {
                    let end = find(&raw, b"\r\n\r\n").unwrap_or_else(|| {
                        panic!(
                            "{} {}: connection closed before an answer: {:?}",
                            self.method,
                            self.path,
                            String::from_utf8_lossy(&raw)
                        )
                    });
                    let response = parse(&raw[..end], &raw[end + 4..]);
                    let body = if response
                        .header("transfer-encoding")
                        .is_some_and(|t| t.contains("chunked"))
                    {
                        dechunk(&raw[end + 4..]).0
                    } else {
                        raw[end + 4..].to_vec()
                    };
                    return Response { body, ..response };
                }
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                    let end = find(&raw, b"\r\n\r\n").expect("an answer before the reset");
                    return parse(&raw[..end], &raw[end + 4..]);
                }
                Err(e) => panic!("{} {}: reading: {e}", self.method, self.path),
            }
        }
    }

    /// Sends the request and returns as soon as the status line and headers arrived
    /// (for endless streams).
    pub fn head_only(self) -> Response {
        self.read_until(HTTP_TIMEOUT, |_| true)
    }
}

fn parse(head: &[u8], body: &[u8]) -> Response {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_decoded_as_they_arrive() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
            (b"abcde".to_vec(), true)
        );
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd"), (b"abcd".to_vec(), false));
        assert_eq!(dechunk(b""), (Vec::new(), false));
    }
}
