//! The CLI commands that find files: `search`, `browse`, and the catalog's own
//! `list`, `unlist` and `catalog`. Each checks its input before bothering the daemon
//! (bad input exits 2 with one `error:` line), calls the API, and prints a table for
//! people or JSON with `--json`.
//!
//! `search` on a terminal redraws its table as results arrive, best first, and leaves
//! the final ranking; piped, it prints the final table once. With `--json` it prints one
//! JSON array of results (`cid`, `name`, `size`, `media_type`, `added_unix`,
//! `publishers`, `sources`). Finding nothing is not an error: an empty table or `[]`,
//! exit 0.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::str::FromStr;

use dht_proto::catalog::CatalogRequest;
use reqwest::Method;

use crate::api::search::{
    BrowseRequest, BrowseResponse, CatalogInfo, CatalogSettingsRequest, ListingResponse,
    SearchDone, SearchRequest, SearchResult,
};
use crate::catalog::browse::BrowseTarget;
use crate::client::ApiClient;
use crate::commands::{check_cid, human_bytes, print_line};
use crate::UsageError;

/// Rows of a live table redrawn on a terminal (the rest are counted below it).
const LIVE_ROWS: usize = 20;
/// Widest name shown in a table, in characters.
const NAME_WIDTH: usize = 48;

fn out(line: impl std::fmt::Display) {
    print_line(format_args!("{line}"));
}

fn check_timeout(secs: u64, max: u64) -> anyhow::Result<()> {
    if secs == 0 || secs > max {
        return Err(UsageError(format!("--timeout must be 1 to {max} seconds")).into());
    }
    Ok(())
}

/// `p2pd search <words…> [--timeout SECS]`.
pub async fn search(
    data_dir: &Path,
    json: bool,
    words: &[String],
    timeout: u64,
) -> anyhow::Result<()> {
    let query = words.join(" ");
    CatalogRequest::search(&query).map_err(|e| UsageError(e.to_string()))?;
    check_timeout(timeout, crate::catalog::search::MAX_TIMEOUT.as_secs())?;
    let client = ApiClient::for_data_dir(data_dir)?;
    let request = SearchRequest {
        query,
        timeout_secs: Some(timeout),
    };
    let mut live = (!json && std::io::stdout().is_terminal()).then(LiveTable::default);
    let done: SearchDone = client
        .stream("/api/search", &request, |result: SearchResult| {
            if let Some(table) = live.as_mut() {
                table.update(result);
            }
        })
        .await?;
    if let Some(table) = live.as_mut() {
        table.clear();
    }
    if json {
        out(serde_json::to_string_pretty(&done.results)?);
        return Ok(());
    }
    print_table(&done.results, true);
    eprintln!(
        "{} result{} from {} of {} peer{} asked in {:.1} s{}",
        done.results.len(),
        if done.results.len() == 1 { "" } else { "s" },
        done.peers_answered,
        done.peers_asked,
        if done.peers_asked == 1 { "" } else { "s" },
        done.elapsed_ms as f64 / 1000.0,
        if done.timed_out {
            " (stopped at --timeout)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `p2pd browse <peer id | address>`.
pub async fn browse(data_dir: &Path, json: bool, peer: &str, timeout: u64) -> anyhow::Result<()> {
    BrowseTarget::from_str(peer).map_err(UsageError)?;
    check_timeout(timeout, crate::catalog::browse::MAX_TIMEOUT.as_secs())?;
    let client = ApiClient::for_data_dir(data_dir)?;
    let request = BrowseRequest {
        peer: peer.to_string(),
        timeout_secs: Some(timeout),
    };
    let r: BrowseResponse = client
        .send(Method::POST, "/api/browse", Some(&request))
        .await?;
    if json {
        out(serde_json::to_string_pretty(&r.files)?);
        return Ok(());
    }
    print_table(&r.files, false);
    eprintln!(
        "{}: {} file{}{}",
        r.peer_id,
        r.files.len(),
        if r.files.len() == 1 { "" } else { "s" },
        if r.complete {
            String::new()
        } else {
            format!(" of {} (stopped at 10,000)", r.total)
        }
    );
    Ok(())
}

/// `p2pd list <cid>` and `p2pd unlist <cid>`.
pub async fn set_listed(
    data_dir: &Path,
    json: bool,
    cid: &str,
    listed: bool,
) -> anyhow::Result<()> {
    check_cid(cid)?;
    let client = ApiClient::for_data_dir(data_dir)?;
    let verb = if listed { "list" } else { "unlist" };
    let r: ListingResponse = client
        .send::<(), _>(Method::POST, &format!("/api/files/{cid}/{verb}"), None)
        .await?;
    if json {
        out(serde_json::to_string_pretty(&r)?);
    } else if !listed {
        out(format!("{} is unlisted: fetchable by CID only", r.cid));
    } else if r.in_catalog {
        out(format!("{} is listed", r.cid));
    } else {
        out(format!(
            "{} is listed, but not in the catalog while it is {}",
            r.cid,
            r.reason.as_deref().unwrap_or("unavailable")
        ));
    }
    Ok(())
}

/// `p2pd catalog [--browse on|off]`.
pub async fn catalog(data_dir: &Path, json: bool, browse: Option<&str>) -> anyhow::Result<()> {
    let client = ApiClient::for_data_dir(data_dir)?;
    let info: CatalogInfo = match browse {
        None => client.get("/api/catalog").await?,
        Some(value) => {
            let request = CatalogSettingsRequest {
                browse: value == "on",
            };
            client
                .send(Method::PUT, "/api/catalog", Some(&request))
                .await?
        }
    };
    if json {
        out(serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    out(format!("listed files: {}", info.listed));
    out(format!(
        "keywords:     {} ({} announced to the DHT, {} not yet)",
        info.keywords, info.keywords_announced, info.keywords_unannounced
    ));
    out(format!(
        "browsing:     {}",
        if info.browse {
            "allowed"
        } else {
            "refused (search still finds listed files)"
        }
    ));
    Ok(())
}

/// `name` cut to `width` characters, with `…` when cut.
fn fit(name: &str, width: usize) -> String {
    // Control characters cannot reach here (entries refuse them), but a name must never
    // move the cursor.
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() <= width {
        return clean;
    }
    let mut cut: String = clean.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn row(r: &SearchResult, with_sources: bool) -> String {
    // A folder is marked as `ls -F` marks a directory.
    let shown = if r.folder {
        format!("{}/", r.name)
    } else {
        r.name.clone()
    };
    let name = fit(&shown, NAME_WIDTH);
    let pad = NAME_WIDTH.saturating_sub(name.chars().count());
    let sources = if with_sources {
        format!("  {:>7}", r.sources)
    } else {
        String::new()
    };
    format!(
        "{name}{:pad$}  {:>10}{sources}  {}",
        "",
        human_bytes(r.size),
        r.cid
    )
}

fn header(with_sources: bool) -> String {
    format!(
        "{:<NAME_WIDTH$}  {:>10}{}  CID",
        "NAME",
        "SIZE",
        if with_sources { "  SOURCES" } else { "" }
    )
}

fn print_table(results: &[SearchResult], with_sources: bool) {
    if results.is_empty() {
        out(if with_sources {
            "no files found"
        } else {
            "no listed files"
        });
        return;
    }
    out(header(with_sources));
    for r in results {
        out(row(r, with_sources));
    }
}

/// The results so far, redrawn on the terminal as they change.
#[derive(Default)]
struct LiveTable {
    results: HashMap<String, SearchResult>,
    /// Lines drawn last time (to move back over).
    drawn: usize,
}

impl LiveTable {
    fn update(&mut self, result: SearchResult) {
        self.results.insert(result.cid.clone(), result);
        let mut ranked: Vec<&SearchResult> = self.results.values().collect();
        ranked.sort_by(|a, b| b.sources.cmp(&a.sources).then_with(|| a.name.cmp(&b.name)));
        // Every line must fit the terminal: a wrapped line would throw off the redraw.
        let (height, width) = console::Term::stdout()
            .size_checked()
            .map_or((24, 80), |(h, w)| (usize::from(h), usize::from(w)));
        let rows = LIVE_ROWS.min(height.saturating_sub(4).max(1));
        let mut lines = vec![header(true)];
        lines.extend(ranked.iter().take(rows).map(|r| row(r, true)));
        if ranked.len() > rows {
            lines.push(format!("… and {} more", ranked.len() - rows));
        }
        self.clear();
        let mut stdout = std::io::stdout().lock();
        for line in &lines {
            let _ = writeln!(stdout, "{}", fit(line, width.saturating_sub(1).max(10)));
        }
        let _ = stdout.flush();
        self.drawn = lines.len();
    }

    /// Erases what was drawn.
    fn clear(&mut self) {
        if self.drawn > 0 {
            let mut stdout = std::io::stdout().lock();
            // Up over the drawn lines, then erase to the end of the screen.
            let _ = write!(stdout, "\x1b[{}A\x1b[J", self.drawn);
            let _ = stdout.flush();
            self.drawn = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_cut_and_rows_line_up() {
        assert_eq!(fit("short.txt", 10), "short.txt");
        assert_eq!(fit("abcdefghijkl", 5), "abcd…");
        assert_eq!(fit("Straße nach Österreich", 8), "Straße …");
        assert_eq!(fit("a\u{1b}[2Jb", 10), "a[2Jb");
        let r = SearchResult {
            cid: "bafy".into(),
            name: "Ünïcödé.txt".into(),
            size: 2048,
            media_type: "text/plain".into(),
            added_unix: 0,
            publishers: vec!["p".into()],
            sources: 1,
            folder: false,
        };
        let line = row(&r, true);
        assert!(line.starts_with("Ünïcödé.txt "));
        assert!(line.ends_with("2.0 KiB        1  bafy"), "{line}");
        let size_end = |s: &str| s.chars().take(NAME_WIDTH + 12).collect::<String>();
        assert!(size_end(&line).ends_with("2.0 KiB"));
        assert!(size_end(&header(true)).ends_with("SIZE"));
    }
}
