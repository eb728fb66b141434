//! Issue 5: the control API over real HTTP against running daemons: who may call it
//! (token, web session with CSRF token, setup link, throttled logins, cross-origin
//! refusals), every operation's happy path, bad input answered 4xx with a JSON body,
//! and the OpenAPI document checked against the router.
#![allow(clippy::unwrap_used)]

mod harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::http::{endpoint, request, Response};
use harness::*;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;
/// A well-formed file CID that no daemon here holds.
const UNKNOWN_CID: &str = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Runs `p2pd passwd` with `input` on stdin.
fn passwd(data_dir: &Path, input: &str) -> CliResult {
    cli_with_stdin(data_dir, &["passwd"], input)
}

/// The token of the one-time setup link of a daemon without a password.
fn setup_token(daemon: &Daemon) -> String {
    setup_token_in(&daemon.setup_link())
}

/// The token of a setup link.
fn setup_token_in(link: &str) -> String {
    let start = link.find("/#/setup/").expect("a setup link") + "/#/setup/".len();
    link[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// A daemon in `dir/a` whose web password is `password`.
fn daemon_with_password(dir: &Path, password: &str) -> Daemon {
    let data = dir.join("a");
    std::fs::create_dir_all(&data).unwrap();
    passwd(&data, &format!("{password}\n")).success();
    Daemon::start(&data, &[])
}

/// Logs in and returns the `Cookie` header value and the CSRF token.
fn login(addr: &str, password: &str) -> (String, String) {
    let r = request(addr, "POST", "/api/login")
        .json(&json!({"password": password}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    session_of(&r)
}

fn session_of(r: &Response) -> (String, String) {
    let set_cookie = r.header("set-cookie").expect("a session cookie");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let csrf = r.json()["csrf_token"].as_str().unwrap().to_string();
    (cookie, csrf)
}

/// Every (method, path) the OpenAPI document lists.
fn documented(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{cid}", UNKNOWN_CID)
        .replace("{file}", "app.js")
}

#[test]
fn every_route_needs_the_token_or_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let (addr, token) = endpoint(&node.data_dir);
    let doc = request(&addr, "GET", "/api/openapi.json")
        .bearer(&token)
        .send()
        .json();

    // Without credentials, or with a wrong token, every owner route answers 401 JSON.
    // Exactly these routes are public; the document says so, and so does the router.
    let public_routes: Vec<(String, String)> = [
        ("GET", "/"),
        ("GET", "/assets/{file}"),
        ("GET", "/api/session"),
        ("POST", "/api/login"),
        ("POST", "/api/logout"),
        ("POST", "/api/setup"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    let mut owner_routes = 0;
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let public = op["security"].as_array().unwrap().is_empty();
        assert_eq!(
            public,
            public_routes.contains(&(method.clone(), path.clone())),
            "{method} {path}: public in the document: {public}"
        );
        let url = concrete(&path);
        let r = request(&addr, &method, &url).head_only();
        if public {
            assert_ne!(r.status, 401, "{method} {path} is public");
            continue;
        }
        owner_routes += 1;
        let message = request(&addr, &method, &url).send().assert_error(401);
        assert!(message.contains("log in"), "{message}");
        request(&addr, &method, &url)
            .bearer("0000")
            .send()
            .assert_error(401);
    }
    assert!(owner_routes >= 20, "only {owner_routes} owner routes");
    let routes = documented(&doc);
    for route in &public_routes {
        assert!(routes.contains(route), "{route:?} is not documented");
    }

    // No password yet: login is refused and says how to set one.
    let session = request(&addr, "GET", "/api/session").send().json();
    assert_eq!(session["password_set"], false);
    assert_eq!(session["authenticated"], false);
    let message = request(&addr, "POST", "/api/login")
        .json(&json!({"password": "whatever1"}))
        .send()
        .assert_error(409);
    assert!(message.contains("p2pd passwd"), "{message}");

    // `p2pd passwd` sets it (stdin when not a terminal); short passwords are bad input.
    passwd(&node.data_dir, "short\n").assert_clean_error(2);
    let out = passwd(&node.data_dir, "correct horse battery\n").success();
    assert!(out.stdout.contains(&addr), "{}", out.stdout);
    let stored = std::fs::read_to_string(node.data_dir.join("web-password")).unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let mode = std::fs::metadata(node.data_dir.join("web-password"))
        .unwrap()
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o077,
        0,
        "the hash is private"
    );

    // A wrong password is 401; the right one gives an HttpOnly, SameSite=Strict cookie
    // that expires.
    request(&addr, "POST", "/api/login")
        .json(&json!({"password": "wrong password"}))
        .send()
        .assert_error(401);
    let r = request(&addr, "POST", "/api/login")
        .json(&json!({"password": "correct horse battery"}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let set_cookie = r.header("set-cookie").unwrap().to_string();
    let port = addr.rsplit(':').next().unwrap();
    assert!(
        set_cookie.starts_with(&format!("p2pd_session_{port}=")),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let (cookie, csrf) = session_of(&r);

    // The session reads freely; writes need its CSRF token.
    let status = request(&addr, "GET", "/api/status")
        .header("Cookie", &cookie)
        .send();
    assert_eq!(status.status, 200);
    let info = request(&addr, "GET", "/api/session")
        .header("Cookie", &cookie)
        .send()
        .json();
    assert_eq!(info["via"], "session");
    assert_eq!(info["csrf_token"], csrf.as_str());
    let rename = json!({"display_name": "via session"});
    let message = request(&addr, "PUT", "/api/settings")
        .header("Cookie", &cookie)
        .json(&rename)
        .send()
        .assert_error(403);
    assert!(message.contains("CSRF"), "{message}");
    request(&addr, "PUT", "/api/settings")
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", "0123")
        .json(&rename)
        .send()
        .assert_error(403);
    let r = request(&addr, "PUT", "/api/settings")
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .json(&rename)
        .send();
    assert_eq!(r.json()["display_name"], "via session");

    // Cross-origin requests are refused, even with valid credentials; a same-origin
    // browser request passes.
    for (name, value) in [
        ("Origin", "http://evil.example"),
        ("Origin", "null"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        request(&addr, "GET", "/api/status")
            .bearer(&token)
            .header(name, value)
            .send()
            .assert_error(403);
    }
    request(&addr, "GET", "/api/status")
        .bearer(&token)
        .header("Host", "attacker.example:80")
        .send()
        .assert_error(403);
    let same = request(&addr, "PUT", "/api/settings")
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .header("Origin", &format!("http://{addr}"))
        .header("Sec-Fetch-Site", "same-origin")
        .json(&rename)
        .send();
    assert_eq!(same.status, 200, "{}", same.text());
    let localhost = request(&addr, "GET", "/api/status")
        .bearer(&token)
        .header("Host", &format!("localhost:{port}"))
        .send();
    assert_eq!(localhost.status, 200);

    // A new password (`p2pd passwd`) ends the sessions made with the old one.
    let (other_cookie, _) = login(&addr, "correct horse battery");
    passwd(&node.data_dir, "a brand new password\n").success();
    request(&addr, "GET", "/api/status")
        .header("Cookie", &other_cookie)
        .send()
        .assert_error(401);
    let (cookie, _) = login(&addr, "a brand new password");
    let r = request(&addr, "GET", "/api/status")
        .header("Cookie", &cookie)
        .send();
    assert_eq!(r.status, 200);

    // After logout the cookie is worthless.
    let r = request(&addr, "POST", "/api/logout")
        .header("Cookie", &cookie)
        .header("Origin", &format!("http://{addr}"))
        .send();
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    request(&addr, "GET", "/api/status")
        .header("Cookie", &cookie)
        .send()
        .assert_error(401);

    // The CLI still works with its token.
    node.cli(&["status"]).success();
}

#[test]
fn failed_logins_are_slowed_down() {
    let dir = tempfile::tempdir().unwrap();
    let node = daemon_with_password(dir.path(), "the real password");
    let (addr, _) = endpoint(&node.data_dir);
    let attempt = |password: &str| {
        request(&addr, "POST", "/api/login")
            .json(&json!({"password": password}))
            .send()
    };
    // The first failures answer at once (401); then the daemon makes the caller wait,
    // and refuses even the right password until the wait is over.
    for _ in 0..3 {
        attempt("guess").assert_error(401);
    }
    let refused = attempt("the real password");
    let message = refused.assert_error(429);
    assert!(message.contains("try again"), "{message}");
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    // The first wait is 1 s (Retry-After rounds the rest of it up).
    assert_eq!(wait, 1);
    // Waiting out the advertised Retry-After is the behaviour under test, not a guess.
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
    attempt("guess again").assert_error(401);
    // Each further failure doubles the wait.
    let wait2: u64 = attempt("x").header("retry-after").unwrap().parse().unwrap();
    assert_eq!(wait2, 2 * wait);
    std::thread::sleep(Duration::from_secs(wait2) + Duration::from_millis(200));
    let ok = attempt("the real password");
    assert_eq!(ok.status, 200, "{}", ok.text());
    // Success resets the count: two failures in a row are answered at once again
    // (without the reset, the second would be locked out: 429).
    attempt("guess").assert_error(401);
    attempt("guess").assert_error(401);
}

#[test]
fn the_setup_link_sets_the_first_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let (addr, _) = endpoint(&node.data_dir);
    let token = setup_token(&node);
    assert_eq!(token.len(), 64, "{token}");
    let setup = |token: &str, password: &str| {
        request(&addr, "POST", "/api/setup")
            .json(&json!({"token": token, "password": password}))
            .send()
    };
    setup("00", "long enough password").assert_error(403);
    setup(&token, "short").assert_error(400);
    let r = setup(&token, "long enough password");
    assert_eq!(r.status, 200, "{}", r.text());
    let (cookie, _) = session_of(&r);
    let status = request(&addr, "GET", "/api/status")
        .header("Cookie", &cookie)
        .send();
    assert_eq!(status.status, 200);
    // Used up: the link cannot set another password.
    setup(&token, "another password").assert_error(409);
    login(&addr, "long enough password");
    // A restarted daemon with a password prints no link.
    let mut node = node;
    node.restart();
    assert!(!node.log().contains("/#/setup/"), "{}", node.log());
    assert!(!node.data_dir.join("setup-link").exists());
}

#[test]
fn openapi_document_matches_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let (addr, token) = endpoint(&node.data_dir);
    let doc = request(&addr, "GET", "/api/openapi.json")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(doc["openapi"], "3.1.0");
    let routes = documented(&doc);

    // The routes the CLI relies on are all there.
    for (method, path) in [
        ("GET", "/api/id"),
        ("GET", "/api/status"),
        ("GET", "/api/files"),
        ("DELETE", "/api/files/{cid}"),
        ("POST", "/api/files/{cid}/unpublish"),
        ("POST", "/api/add"),
        ("POST", "/api/fetch"),
        ("GET", "/api/downloads"),
        ("GET", "/api/peers"),
        ("GET", "/api/events"),
        ("POST", "/api/search"),
        ("POST", "/api/browse"),
        ("POST", "/api/files/{cid}/list"),
        ("POST", "/api/files/{cid}/unlist"),
        ("GET", "/api/catalog"),
        ("PUT", "/api/catalog"),
    ] {
        assert!(
            routes.contains(&(method.to_string(), path.to_string())),
            "{method} {path} is not documented"
        );
    }

    // Every documented route is served: the router answers it (never with its
    // "no such route" 404 or a 405), with JSON unless it is a file, a page or a stream.
    for (method, path) in &routes {
        let url = concrete(path);
        let op = &doc["paths"][path][method.to_lowercase()];
        let ok_types: Vec<&String> = op["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        let streaming = ok_types.iter().any(|t| {
            *t == "text/event-stream" || (*t == "application/x-ndjson" && method == "GET")
        });
        let mut req = request(&addr, method, &url).bearer(&token);
        if op["requestBody"]["content"]["application/json"].is_object() {
            req = req.json(&json!({}));
        }
        let r = if streaming {
            req.head_only()
        } else {
            req.send()
        };
        assert_ne!(r.status, 405, "{method} {path}: {}", r.text());
        if r.status == 404 {
            assert_ne!(
                r.json()["message"],
                "no such route",
                "{method} {path} is documented but not routed"
            );
        }
        if r.status < 300 {
            let content_type = r.header("content-type").unwrap_or("");
            assert!(
                ok_types
                    .iter()
                    .any(|t| *t == "*/*" || content_type.starts_with(t.as_str())),
                "{method} {path}: answered {content_type}, documented {ok_types:?}"
            );
        } else {
            r.assert_error(r.status);
        }
    }

    // And nothing else is: other methods on documented paths are 405, other paths 404.
    for (_, path) in &routes {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if routes.contains(&(method.to_string(), path.clone())) {
                continue;
            }
            let r = request(&addr, method, &concrete(path))
                .bearer(&token)
                .send();
            r.assert_error(405);
        }
    }
    for path in ["/api/nothing", "/api/files/x/y/z", "/nothing", "/api"] {
        let message = request(&addr, "GET", path)
            .bearer(&token)
            .send()
            .assert_error(404);
        assert_eq!(message, "no such route");
    }
}

/// Polls `GET path` until `ok` holds.
fn wait_json(
    addr: &str,
    token: &str,
    path: &str,
    what: &str,
    mut ok: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = request(addr, "GET", path).bearer(token).send().json();
        if ok(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn download<'a>(list: &'a Value, cid: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|d| d["cid"] == cid)
}

#[test]
fn each_operation_works_over_http() {
    let dir = tempfile::tempdir().unwrap();
    // B shares files, slowly enough (2 MiB/s) that a download can be paused midway.
    let seeder = Daemon::start(
        &dir.path().join("b"),
        &["--dht-mode", "server", "--max-upload-rate", "2MiB"],
    );
    let mut node = Daemon::start(
        &dir.path().join("a"),
        &[
            "--bootstrap",
            &seeder.addr(),
            "--display-name",
            "Alice",
            "--max-upload",
            "1MiB",
        ],
    );
    let (addr, token) = endpoint(&node.data_dir);
    let get = |path: &str| {
        let r = request(&addr, "GET", path).bearer(&token).send();
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    };

    // Identity, status (with the display name), settings.
    let id = get("/api/id");
    assert!(id["peer_id"].as_str().unwrap().starts_with("12D3Koo"));
    let status = get("/api/status");
    assert_eq!(status["display_name"], "Alice");
    assert_eq!(status["node"]["peer_id"], id["peer_id"]);
    assert!(node
        .cli(&["status"])
        .success()
        .stdout
        .contains("name:        Alice"));
    let r = request(&addr, "PUT", "/api/settings")
        .bearer(&token)
        .json(&json!({"display_name": "  Alice's laptop "}))
        .send();
    assert_eq!(r.json()["display_name"], "Alice's laptop");
    assert_eq!(get("/api/settings")["display_name"], "Alice's laptop");

    // Live events: open the stream before anything happens.
    let (ev_addr, ev_token) = (addr.clone(), token.clone());
    let events = std::thread::spawn(move || {
        request(&ev_addr, "GET", "/api/events/live")
            .bearer(&ev_token)
            .read_until(Duration::from_secs(120), |body| {
                let text = String::from_utf8_lossy(body);
                text.contains("\"type\":\"file_added\"")
                    && text.contains("\"state\":\"done\"")
                    && text.contains("\"type\":\"stats\"")
                    && text.contains("\"type\":\"reputation\"")
            })
    });

    // Upload through the raw-body endpoint; list; read back.
    let small = dir.path().join("small.bin");
    random_file(&small, 300_000, 1);
    let bytes = std::fs::read(&small).unwrap();
    let r = request(&addr, "POST", "/api/upload?name=..%2Fholiday%20photo.jpg")
        .bearer(&token)
        .header("Content-Type", "application/octet-stream")
        .body(bytes.clone())
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let added = r.json();
    assert_eq!(added["name"], "holiday photo.jpg");
    assert_eq!(added["size"], 300_000);
    let cid = added["cid"].as_str().unwrap().to_string();
    let files = get("/api/files");
    let listed = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cid"] == cid.as_str())
        .unwrap();
    assert_eq!(listed["published"], true);
    assert_eq!(listed["location"], "store");
    let r = request(&addr, "GET", &format!("/api/files/{cid}/content"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, bytes);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let disposition = r.header("content-disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"holiday photo.jpg\""),
        "{disposition}"
    );
    assert!(std::fs::read_dir(node.data_dir.join("uploads"))
        .unwrap()
        .next()
        .is_none());

    // Uploads over --max-upload are refused with 413, and leave nothing behind.
    let r = request(&addr, "POST", "/api/upload?name=big")
        .bearer(&token)
        .body(vec![7u8; (MIB + 1) as usize])
        .send();
    assert!(r.assert_error(413).contains("--max-upload"));
    assert!(std::fs::read_dir(node.data_dir.join("uploads"))
        .unwrap()
        .next()
        .is_none());

    // Add by path, in place (NDJSON stream ending in `done`).
    let in_place = dir.path().join("in-place.bin");
    random_file(&in_place, 50_000, 2);
    let r = request(&addr, "POST", "/api/add")
        .bearer(&token)
        .json(&json!({"path": in_place, "no_copy": true}))
        .send();
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done", "{}", r.text());
    let in_place_cid = last["cid"].as_str().unwrap().to_string();
    let files = get("/api/files");
    let f = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cid"] == in_place_cid.as_str())
        .unwrap();
    assert_eq!(f["location"], "in_place");

    // Unpublish, then remove.
    let r = request(
        &addr,
        "POST",
        &format!("/api/files/{in_place_cid}/unpublish"),
    )
    .bearer(&token)
    .send();
    assert_eq!(r.json()["changed"], true);
    let files = get("/api/files");
    let f = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cid"] == in_place_cid.as_str())
        .unwrap();
    assert_eq!(f["published"], false);
    let r = request(&addr, "DELETE", &format!("/api/files/{in_place_cid}"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200);
    assert!(!get("/api/files").to_string().contains(&in_place_cid));
    assert!(in_place.exists(), "removing never deletes an in-place file");

    // Download into the store from the seeder; the finished file is served back.
    let src = dir.path().join("seeded.bin");
    random_file(&src, 3 * MIB, 3);
    let remote = add(&seeder, &src, &[]);
    let r = request(&addr, "POST", "/api/downloads")
        .bearer(&token)
        .json(&json!({"cid": remote}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["cid"], remote.as_str());
    assert_eq!(r.json()["paused"], false);
    let list = wait_json(&addr, &token, "/api/downloads", "the download", |v| {
        download(v, &remote).is_some_and(|d| d["state"] == "done")
    });
    let d = download(&list, &remote).unwrap();
    assert_eq!(d["bytes_done"], 3 * MIB);
    let r = request(&addr, "GET", &format!("/api/files/{remote}/content"))
        .bearer(&token)
        .send();
    assert_eq!(
        blake3::hash(&r.body),
        blake3::hash(&std::fs::read(&src).unwrap())
    );

    // The live stream saw the new file, the finished download and bandwidth samples.
    let live = events.join().unwrap();
    assert_eq!(live.status, 200);
    assert!(live
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let text = live.text();
    let mut reputation_events = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("data:")) {
        let event: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
        assert!(event["type"].is_string(), "{event}");
        if event["type"] == "reputation" {
            reputation_events.push(event);
        }
    }
    // The seeder's score rose as it delivered the file, and the stream said so.
    let seeder_id = seeder.peer_id();
    assert!(
        reputation_events
            .iter()
            .any(|e| e["peer_id"] == seeder_id.as_str() && e["score"].as_f64().unwrap() > 0.0),
        "{reputation_events:?}"
    );

    // Peers: the seeder, with the bytes it sent us; stats count them too.
    let peers = get("/api/peers");
    let p = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer_id"] == seeder_id.as_str())
        .unwrap();
    assert!(p["bytes_received"].as_u64().unwrap() >= 3 * MIB, "{p}");
    assert_eq!(p["banned"], false);
    // 3 MiB of verified data: 10 × log2(1 + 3) = 20.
    assert_eq!(p["reputation"].as_f64(), Some(20.0), "{p}");
    assert!(p["direct"].as_bool().unwrap());
    // Sampled once a second.
    let stats = wait_json(&addr, &token, "/api/stats", "traffic counted", |s| {
        s["total_received"].as_u64().unwrap() >= 3 * MIB
    });
    assert!(!stats["history"].as_array().unwrap().is_empty());

    // Pause a slow download midway; it keeps its chunks and resumes to the end.
    let slow_src = dir.path().join("slow.bin");
    random_file(&slow_src, 12 * MIB, 4);
    let slow = add(&seeder, &slow_src, &[]);
    request(&addr, "POST", "/api/downloads")
        .bearer(&token)
        .json(&json!({"cid": slow}))
        .send();
    wait_json(&addr, &token, "/api/downloads", "some progress", |v| {
        download(v, &slow).is_some_and(|d| d["bytes_done"].as_u64().unwrap() >= 2 * MIB)
    });
    let r = request(&addr, "POST", &format!("/api/downloads/{slow}/pause"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    let paused = r.json();
    assert_eq!(paused["paused"], true, "{paused}");
    assert_eq!(paused["state"], "paused");
    let held = paused["bytes_done"].as_u64().unwrap();
    assert!((2 * MIB..12 * MIB).contains(&held), "{held}");
    // Not a wait for something: the window in which a paused download must not move.
    std::thread::sleep(Duration::from_millis(1500));
    let list = get("/api/downloads");
    let still = download(&list, &slow).unwrap();
    assert_eq!(still["paused"], true);
    assert_eq!(
        still["bytes_done"].as_u64().unwrap(),
        held,
        "a paused download stays put"
    );
    // Pausing again changes nothing; resuming a running download is refused.
    let again = request(&addr, "POST", &format!("/api/downloads/{slow}/pause"))
        .bearer(&token)
        .send();
    assert_eq!(again.json()["paused"], true);
    let r = request(&addr, "POST", &format!("/api/downloads/{slow}/resume"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    request(&addr, "POST", &format!("/api/downloads/{slow}/resume"))
        .bearer(&token)
        .send()
        .assert_error(409);
    let done = wait_json(
        &addr,
        &token,
        "/api/downloads",
        "the resumed download",
        |v| download(v, &slow).is_some_and(|d| d["state"] == "done"),
    );
    let d = download(&done, &slow).unwrap();
    assert_eq!(d["paused"], false);
    assert!(
        d["bytes_received"].as_u64().unwrap() <= 12 * MIB - held,
        "resumed, not restarted: {d}"
    );
    let r = request(&addr, "GET", &format!("/api/files/{slow}/content"))
        .bearer(&token)
        .send();
    assert_eq!(
        blake3::hash(&r.body),
        blake3::hash(&std::fs::read(&slow_src).unwrap())
    );

    // Cancel a download midway: what it fetched is deleted.
    let third_src = dir.path().join("third.bin");
    random_file(&third_src, 12 * MIB, 5);
    let third = add(&seeder, &third_src, &[]);
    request(&addr, "POST", "/api/downloads")
        .bearer(&token)
        .json(&json!({"cid": third}))
        .send();
    wait_json(&addr, &token, "/api/downloads", "some progress", |v| {
        download(v, &third).is_some_and(|d| d["bytes_done"].as_u64().unwrap() > 0)
    });
    let r = request(&addr, "DELETE", &format!("/api/downloads/{third}"))
        .bearer(&token)
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["state"], "cancelled");
    assert!(
        !get("/api/files").to_string().contains(&third),
        "partial deleted"
    );
    request(&addr, "GET", &format!("/api/files/{third}/content"))
        .bearer(&token)
        .send()
        .assert_error(404);

    // The display name is kept in the data directory; at a restart, --display-name
    // sets it again.
    let saved = std::fs::read_to_string(node.data_dir.join("settings.json")).unwrap();
    assert!(saved.contains("Alice's laptop"), "{saved}");
    node.restart();
    let (addr, token) = endpoint(&node.data_dir);
    let status = request(&addr, "GET", "/api/status")
        .bearer(&token)
        .send()
        .json();
    assert_eq!(status["display_name"], "Alice");
}

#[test]
fn bad_requests_get_4xx_with_a_json_message() {
    let dir = tempfile::tempdir().unwrap();
    let node = Daemon::start(&dir.path().join("a"), &[]);
    let (addr, token) = endpoint(&node.data_dir);
    let call = |method: &str, path: &str| request(&addr, method, path).bearer(&token);

    let cases: Vec<(Response, u16, &str)> = vec![
        (
            call("POST", "/api/downloads")
                .json(&json!({"cid": "nope"}))
                .send(),
            400,
            "invalid CID",
        ),
        (
            call("POST", "/api/downloads")
                .json(&json!({"cid": UNKNOWN_CID, "timeout_secs": 0}))
                .send(),
            400,
            "timeout",
        ),
        (
            call("POST", "/api/downloads")
                .json(&json!({"cid": 5}))
                .send(),
            422,
            "bad request body",
        ),
        (
            call("POST", "/api/downloads")
                .body(b"{not json".to_vec())
                .header("Content-Type", "application/json")
                .send(),
            400,
            "bad request body",
        ),
        (
            call("POST", "/api/downloads").body(b"{}".to_vec()).send(),
            415,
            "bad request body",
        ),
        (
            call("POST", "/api/downloads")
                .json(&json!({"cid": "b".repeat(70 << 10)}))
                .send(),
            413,
            "length limit",
        ),
        (
            call("GET", "/api/files/nope/content").send(),
            400,
            "invalid CID",
        ),
        (
            call("GET", &format!("/api/files/{UNKNOWN_CID}/content")).send(),
            404,
            "not in the store",
        ),
        (
            call("DELETE", &format!("/api/files/{UNKNOWN_CID}")).send(),
            404,
            "not in the store",
        ),
        (call("POST", "/api/files/%ff%fe/unpublish").send(), 400, ""),
        (
            call("POST", &format!("/api/downloads/{UNKNOWN_CID}/pause")).send(),
            404,
            "no download",
        ),
        (
            call("DELETE", &format!("/api/downloads/{UNKNOWN_CID}")).send(),
            404,
            "no download",
        ),
        (
            call("PUT", "/api/settings")
                .json(&json!({"display_name": "x".repeat(65)}))
                .send(),
            400,
            "at most 64",
        ),
        (
            call("PUT", "/api/settings")
                .json(&json!({"display_name": "a\u{7}b"}))
                .send(),
            400,
            "control",
        ),
        (
            call("POST", "/api/add")
                .json(&json!({"path": "relative/file"}))
                .send(),
            200,
            "",
        ),
        // Its size says 0 bytes, then it has some: it changed while being read, which
        // is the file's doing, not a failure of the daemon.
        (
            call("POST", "/api/add")
                .json(&json!({"path": "/proc/self/status"}))
                .send(),
            200,
            "",
        ),
        (
            call("POST", "/api/fetch")
                .json(&json!({"cid": UNKNOWN_CID, "output": "/nonexistent-dir/x"}))
                .send(),
            400,
            "does not exist",
        ),
        (
            call("POST", "/api/upload?name=a&name=b")
                .body(vec![1])
                .send(),
            400,
            "query",
        ),
        (
            call("GET", "/assets/..%2FCargo.toml").send(),
            404,
            "no asset",
        ),
        (
            request(&addr, "POST", "/api/login")
                .json(&json!({"pass": 1}))
                .send(),
            422,
            "password",
        ),
        (
            request(&addr, "POST", "/api/setup")
                .json(&json!({"token": "", "password": "long enough!"}))
                .send(),
            403,
            "not valid",
        ),
    ];
    for (r, status, needle) in cases {
        if status == 200 {
            // NDJSON operations report bad input in their final line.
            let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
            assert_eq!(last["event"], "error", "{last}");
            assert_eq!(last["status"], 400, "{last}");
            continue;
        }
        let message = r.assert_error(status);
        assert!(
            message.contains(needle),
            "{status}: {message:?} lacks {needle:?}"
        );
    }
    // The daemon is still fine.
    assert!(node.log().find("panicked").is_none(), "{}", node.log());
    node.cli(&["status"]).success();
}

#[test]
fn concurrent_wrong_logins_are_checked_no_more_than_the_throttle_allows() {
    let dir = tempfile::tempdir().unwrap();
    let node = daemon_with_password(dir.path(), "the real password");
    let (addr, _) = endpoint(&node.data_dir);
    // 50 wrong guesses at once: the throttle lets 3 be checked (each a 401), and the
    // others are refused at once (429), not queued to be checked one after another.
    let guesses: Vec<_> = (0..50)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                request(&addr, "POST", "/api/login")
                    .json(&json!({"password": format!("guess {i}")}))
                    .send()
            })
        })
        .collect();
    let mut checked = 0;
    let mut refused = 0;
    for guess in guesses {
        let r = guess.join().unwrap();
        match r.status {
            401 => checked += 1,
            429 => {
                r.assert_error(429);
                assert!(r.header("retry-after").is_some());
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(
        checked <= 3,
        "{checked} guesses were checked, {refused} refused"
    );
    assert_eq!(checked + refused, 50);
    // The owner gets in once the wait is over.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = request(&addr, "POST", "/api/login")
            .json(&json!({"password": "the real password"}))
            .send();
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 429, "{}", r.text());
        assert!(Instant::now() < deadline, "still locked out");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        std::thread::sleep(Duration::from_secs(wait));
    }
}

/// A daemon started with the setup link's lifetime shortened (a test-faults build
/// reads `P2PD_TEST_SETUP_TTL_MS`), killed when dropped.
struct ShortSetupDaemon {
    child: std::process::Child,
    data_dir: std::path::PathBuf,
}

impl ShortSetupDaemon {
    fn start(data_dir: &Path, ttl_ms: u64) -> Self {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = std::fs::File::create(data_dir.join("stderr.log")).unwrap();
        let child = Command::new(p2pd_bin())
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "daemon",
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--api",
                "127.0.0.1:0",
            ])
            .args(["--no-upnp", "--no-mdns"])
            .env("P2PD_TEST_SETUP_TTL_MS", ttl_ms.to_string())
            .env_remove("P2PD_DATA_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = ShortSetupDaemon {
            child,
            data_dir: data_dir.to_path_buf(),
        };
        wait_until("the daemon's API and setup link", START_TIMEOUT, || {
            daemon.data_dir.join("api.json").exists() && daemon.data_dir.join("setup-link").exists()
        });
        daemon
    }

    /// The setup link it handed to its owner.
    fn setup_link(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("setup-link")).unwrap_or_default()
    }
}

impl Drop for ShortSetupDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_setup_link_expires() {
    let dir = tempfile::tempdir().unwrap();
    let node = ShortSetupDaemon::start(&dir.path().join("a"), 1500);
    let (addr, _) = endpoint(&node.data_dir);
    let token = setup_token_in(&node.setup_link());
    let setup = || {
        request(&addr, "POST", "/api/setup")
            .json(&json!({"token": token, "password": "long enough password"}))
            .send()
    };
    // The link's lifetime started before the daemon answered; let it run out.
    std::thread::sleep(Duration::from_millis(1600));
    let message = setup().assert_error(403);
    assert!(message.contains("expired"), "{message}");
    assert!(!std::fs::exists(node.data_dir.join("web-password")).unwrap());

    // A password set with `p2pd passwd` ends a link that has not expired yet.
    let other = ShortSetupDaemon::start(&dir.path().join("b"), 3_600_000);
    let (addr, _) = endpoint(&other.data_dir);
    let token = setup_token_in(&other.setup_link());
    passwd(&other.data_dir, "set by the owner\n").success();
    request(&addr, "POST", "/api/setup")
        .json(&json!({"token": token, "password": "set by the attacker"}))
        .send()
        .assert_error(409);
    let r = request(&addr, "POST", "/api/login")
        .json(&json!({"password": "set by the owner"}))
        .send();
    assert_eq!(r.status, 200, "{}", r.text());
}
