//! Reading a daemon's control API: a plain HTTP/1.1 `GET` with the bearer token from
//! its `api.json`, so that sampling 20 daemons every second costs no process spawns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde_json::Value;

/// Longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read (a 10 000-peer reputation table is a few MiB).
const MAX_ANSWER: u64 = 64 << 20;

/// Where a daemon's API listens, and its token.
#[derive(Debug, Clone)]
pub struct Endpoint {
    addr: String,
    token: String,
}

impl Endpoint {
    /// The endpoint written by the daemon in `data_dir`.
    pub fn of(data_dir: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(data_dir.join("api.json"))?;
        let v: Value = serde_json::from_str(&text)?;
        Ok(Endpoint {
            addr: v["addr"]
                .as_str()
                .context("no addr in api.json")?
                .to_string(),
            token: v["token"]
                .as_str()
                .context("no token in api.json")?
                .to_string(),
        })
    }

    /// `GET path`, its JSON answer.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let addr = self.addr.parse().context("bad API address")?;
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.addr, self.token
        )?;
        let mut answer = Vec::new();
        stream.take(MAX_ANSWER).read_to_end(&mut answer)?;
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of headers")?;
        let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
        if !head.starts_with("http/1.1 200") {
            bail!("GET {path}: {}", head.lines().next().unwrap_or(""));
        }
        let body = &answer[split + 4..];
        let body = if head.contains("transfer-encoding: chunked") {
            dechunk(body)?
        } else {
            body.to_vec()
        };
        Ok(serde_json::from_slice(&body)?)
    }
}

/// The body of a chunked answer.
fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunked body")?;
        let size_text = std::str::from_utf8(&body[..line_end])?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            bail!("truncated chunked body");
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").unwrap(),
            b"abcde"
        );
        assert!(dechunk(b"9\r\nabc\r\n").is_err());
    }
}
