//! The web UI: a single page of plain HTML, CSS and JavaScript, embedded in the binary
//! with `include_bytes!`, so `cargo build` alone makes a daemon that serves it. There is
//! no build step and no framework: `app.js` talks to the same control API as the CLI
//! (with a session cookie and a CSRF header instead of the bearer token) and listens to
//! `GET /api/events/live` for live updates.

/// The embedded files: name, bytes, media type.
const ASSETS: &[(&str, &[u8], &str)] = &[
    (
        "index.html",
        include_bytes!("index.html"),
        "text/html; charset=utf-8",
    ),
    (
        "app.css",
        include_bytes!("app.css"),
        "text/css; charset=utf-8",
    ),
    (
        "app.js",
        include_bytes!("app.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "reputation.js",
        include_bytes!("reputation.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "standing.js",
        include_bytes!("standing.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "search.js",
        include_bytes!("search.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "share.js",
        include_bytes!("share.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "player.js",
        include_bytes!("player.js"),
        "text/javascript; charset=utf-8",
    ),
    (
        "relays.js",
        include_bytes!("relays.js"),
        "text/javascript; charset=utf-8",
    ),
    ("icon.svg", include_bytes!("icon.svg"), "image/svg+xml"),
];

/// An embedded file and its media type.
pub fn asset(name: &str) -> Option<(&'static [u8], &'static str)> {
    ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, bytes, mime)| (*bytes, *mime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_embedded_assets() {
        let html = String::from_utf8_lossy(asset("index.html").map_or(&[][..], |a| a.0));
        for part in html.split("/assets/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(asset(&name).is_some(), "index.html names missing {name}");
        }
        assert!(asset("../Cargo.toml").is_none());
    }
}
