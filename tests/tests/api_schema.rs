//! Issue 10 point 2: every answer of the control API matches the OpenAPI document the
//! daemon serves. Real daemons answer every documented operation, with successes and
//! errors; each answer's status must be documented for its operation, and its body is
//! validated against the documented schema with a JSON Schema (2020-12) validator: JSON
//! bodies whole, JSON lines line by line, server-sent events event by event.
#![allow(clippy::unwrap_used)]

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use harness::http::{endpoint, request, Request, Response};
use harness::*;
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;
/// A well-formed file CID that no daemon here holds.
const UNKNOWN_CID: &str = "bafyr4iaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Checks answers against the document and remembers what was checked.
struct Checker {
    doc: Value,
    validators: BTreeMap<String, jsonschema::Validator>,
    /// Statuses seen per documented operation (`METHOD path-template`).
    seen: BTreeMap<String, BTreeSet<u16>>,
}

/// `a/b~c` as a JSON pointer token.
fn pointer_token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Checker {
    fn new(doc: Value) -> Self {
        Checker {
            doc,
            validators: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// Every documented operation.
    fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, methods) in self.doc["paths"].as_object().unwrap() {
            for method in methods.as_object().unwrap().keys() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
        out
    }

    /// A validator for the schema at `pointer` in the document: the document itself is
    /// the root, so the `#/components/schemas/…` references inside resolve.
    fn validator(&mut self, pointer: &str) -> &jsonschema::Validator {
        let doc = &self.doc;
        self.validators
            .entry(pointer.to_string())
            .or_insert_with(|| {
                assert!(doc.pointer(pointer).is_some(), "no schema at {pointer}");
                let mut root = doc.clone();
                // A URI fragment: braces of path templates are percent-encoded.
                let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
                root["$ref"] = Value::from(format!("#{fragment}"));
                jsonschema::draft202012::new(&root)
                    .unwrap_or_else(|e| panic!("schema at {pointer} does not compile: {e}"))
            })
    }

    fn validate(&mut self, what: &str, pointer: &str, instance: &Value) {
        let errors: Vec<String> = self
            .validator(pointer)
            .iter_errors(instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match {pointer}:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }

    /// Checks one answer to `method template` (a documented path with `{name}`s).
    fn check(&mut self, method: &str, template: &str, r: &Response) {
        let what = format!("{method} {template} → {}", r.status);
        let op_pointer = format!(
            "/paths/{}/{}",
            pointer_token(template),
            method.to_lowercase()
        );
        let op = self
            .doc
            .pointer(&op_pointer)
            .unwrap_or_else(|| panic!("{method} {template} is not documented"))
            .clone();
        let status = r.status.to_string();
        let class = format!("{}XX", r.status / 100);
        let code = [status.as_str(), class.as_str(), "default"]
            .into_iter()
            .find(|c| op["responses"].get(*c).is_some())
            .unwrap_or_else(|| panic!("{what}: status not documented: {}", r.text()));
        let content_type = r
            .header("content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap()
            .trim()
            .to_string();
        let contents = op["responses"][code]["content"].as_object().cloned();
        if let Some(contents) = contents {
            let media = contents
                .keys()
                .find(|m| *m == &content_type || *m == "*/*")
                .unwrap_or_else(|| {
                    panic!("{what}: answered {content_type:?}, documented {contents:?}")
                })
                .clone();
            let pointer = format!(
                "{op_pointer}/responses/{code}/content/{}/schema",
                pointer_token(&media)
            );
            match media.as_str() {
                "application/json" => {
                    let body = r.json();
                    self.validate(&what, &pointer, &body);
                }
                "application/x-ndjson" => {
                    let text = r.text();
                    assert!(!text.trim().is_empty(), "{what}: no lines");
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        let value: Value = serde_json::from_str(line)
                            .unwrap_or_else(|e| panic!("{what}: a line is not JSON ({e}): {line}"));
                        self.validate(&what, &pointer, &value);
                    }
                }
                "text/event-stream" => {
                    let text = r.text();
                    let mut events = 0;
                    for data in text.lines().filter_map(|l| l.strip_prefix("data:")) {
                        let value: Value = serde_json::from_str(data.trim()).unwrap_or_else(|e| {
                            panic!("{what}: an event is not JSON ({e}): {data}")
                        });
                        self.validate(&what, &pointer, &value);
                        events += 1;
                    }
                    assert!(events > 0, "{what}: no events");
                }
                _ => {} // bytes of a file, a page, an asset
            }
        }
        self.seen
            .entry(format!("{method} {template}"))
            .or_default()
            .insert(r.status);
    }

    /// Sends `req` (to `method template`), checks the answer and returns it.
    fn send(&mut self, method: &str, template: &str, req: Request) -> Response {
        let r = req.send();
        self.check(method, template, &r);
        r
    }
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn setup_token(daemon: &Daemon) -> String {
    let link = daemon.setup_link();
    let start = link.find("/#/setup/").expect("a setup link") + "/#/setup/".len();
    link[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

#[test]
fn every_answer_matches_the_openapi_document() {
    let dir = tempfile::tempdir().unwrap();
    // The seeder shares files slowly enough (2 MiB/s) that a download can be paused.
    let seeder = Daemon::start(
        &dir.path().join("seeder"),
        &["--dht-mode", "server", "--max-upload-rate", "2MiB"],
    );
    let node = Daemon::start(
        &dir.path().join("node"),
        &["--bootstrap", &seeder.addr(), "--max-upload", "1MiB"],
    );
    let (addr, token) = endpoint(&node.data_dir);
    let doc = request(&addr, "GET", "/api/openapi.json")
        .bearer(&token)
        .send()
        .json();
    let mut c = Checker::new(doc);
    // The validator is strict enough to refuse a malformed error body.
    assert!(!c
        .validator("/components/schemas/ErrorBody")
        .is_valid(&json!({"status": "400", "message": "m"})));
    let owner = |method: &str, path: &str| request(&addr, method, path).bearer(&token);
    let anyone = |method: &str, path: &str| request(&addr, method, path);

    // Streams first, so they see what follows.
    let (a, t) = (addr.clone(), token.clone());
    let net_events = std::thread::spawn(move || {
        request(&a, "GET", "/api/events")
            .bearer(&t)
            .read_until(Duration::from_secs(90), |body| {
                String::from_utf8_lossy(body).contains("peer_connected")
            })
    });
    let (a, t) = (addr.clone(), token.clone());
    let live = std::thread::spawn(move || {
        request(&a, "GET", "/api/events/live")
            .bearer(&t)
            .read_until(Duration::from_secs(120), |body| {
                let text = String::from_utf8_lossy(body);
                [
                    "\"file_added\"",
                    "\"state\":\"done\"",
                    "\"stats\"",
                    "\"settings\"",
                ]
                .iter()
                .all(|needle| text.contains(needle))
            })
    });
    // A third node connects to this one: a network event.
    let _third = Daemon::start(&dir.path().join("third"), &["--bootstrap", &node.addr()]);

    // Who may call: without credentials every owner operation is a 401 error body.
    for (method, path) in c.operations() {
        let url = path
            .replace("{cid}", UNKNOWN_CID)
            .replace("{file}", "app.js");
        let op = c.doc["paths"][&path][method.to_lowercase()].clone();
        if op["security"].as_array().unwrap().is_empty() {
            continue;
        }
        let r = c.send(&method, &path, anyone(&method, &url));
        assert_eq!(r.status, 401, "{method} {path}");
    }

    // The web UI's files.
    c.send("GET", "/", anyone("GET", "/"));
    c.send("GET", "/assets/{file}", anyone("GET", "/assets/app.js"));
    c.send("GET", "/assets/{file}", anyone("GET", "/assets/nothing.js"));

    // Logging in: no password yet (409), a bad setup token (403), a short password
    // (400), the setup link (200), logins wrong and right, logout, a locked-out login
    // (429).
    c.send("GET", "/api/session", anyone("GET", "/api/session"));
    let login = |password: &str| anyone("POST", "/api/login").json(&json!({"password": password}));
    assert_eq!(
        c.send("POST", "/api/login", login("nothing set")).status,
        409
    );
    let setup = |token: &str, password: &str| {
        anyone("POST", "/api/setup").json(&json!({"token": token, "password": password}))
    };
    assert_eq!(
        c.send("POST", "/api/setup", setup("00", "long enough"))
            .status,
        403
    );
    let setup_token = setup_token(&node);
    assert_eq!(
        c.send("POST", "/api/setup", setup(&setup_token, "short"))
            .status,
        400
    );
    let r = c.send(
        "POST",
        "/api/setup",
        setup(&setup_token, "the first password"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.send("POST", "/api/login", login("the first password"));
    assert_eq!(r.status, 200, "{}", r.text());
    let cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = c.send(
        "GET",
        "/api/session",
        anyone("GET", "/api/session").header("Cookie", &cookie),
    );
    assert_eq!(r.json()["via"], "session");
    let r = c.send(
        "POST",
        "/api/logout",
        anyone("POST", "/api/logout").header("Cookie", &cookie),
    );
    assert_eq!(r.status, 200);
    let r = c.send(
        "POST",
        "/api/login",
        anyone("POST", "/api/login").json(&json!({"pass": 1})),
    );
    assert_eq!(r.status, 422);
    let mut statuses = BTreeSet::new();
    for _ in 0..5 {
        statuses.insert(c.send("POST", "/api/login", login("wrong guess")).status);
    }
    assert_eq!(statuses, BTreeSet::from([401, 429]));

    // The node.
    c.send(
        "GET",
        "/api/openapi.json",
        owner("GET", "/api/openapi.json"),
    );
    c.send("GET", "/api/id", owner("GET", "/api/id"));
    c.send("GET", "/api/stats", owner("GET", "/api/stats"));
    c.send("GET", "/api/settings", owner("GET", "/api/settings"));
    let r = c.send(
        "PUT",
        "/api/settings",
        owner("PUT", "/api/settings").json(&json!({"display_name": "schema test"})),
    );
    assert_eq!(r.status, 200);
    let r = c.send(
        "PUT",
        "/api/settings",
        owner("PUT", "/api/settings").json(&json!({"display_name": "x".repeat(65)})),
    );
    assert_eq!(r.status, 400);
    let r = c.send(
        "PUT",
        "/api/settings",
        owner("PUT", "/api/settings").body(b"{}".to_vec()),
    );
    assert_eq!(r.status, 415);
    let r = c.send(
        "PUT",
        "/api/settings",
        owner("PUT", "/api/settings")
            .header("Content-Type", "application/json")
            .body(b"{not json".to_vec()),
    );
    assert_eq!(r.status, 400);

    // Files: upload (and one too large), add by path (and a relative path: an error
    // line), list, read, unpublish, remove.
    let small = dir.path().join("small.bin");
    random_file(&small, 300_000, 1);
    let r = c.send(
        "POST",
        "/api/upload",
        owner("POST", "/api/upload?name=small.bin").body(std::fs::read(&small).unwrap()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let uploaded = r.json()["cid"].as_str().unwrap().to_string();
    let r = c.send(
        "POST",
        "/api/upload",
        owner("POST", "/api/upload?name=big").body(vec![7; (MIB + 1) as usize]),
    );
    assert_eq!(r.status, 413);
    let in_place = dir.path().join("in-place.bin");
    random_file(&in_place, 2 * MIB, 2);
    let r = c.send(
        "POST",
        "/api/add",
        owner("POST", "/api/add").json(&json!({"path": in_place, "no_copy": true})),
    );
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done", "{}", r.text());
    let added = last["cid"].as_str().unwrap().to_string();
    let r = c.send(
        "POST",
        "/api/add",
        owner("POST", "/api/add").json(&json!({"path": "relative/file"})),
    );
    assert!(r.text().contains("\"event\":\"error\""), "{}", r.text());
    c.send("GET", "/api/files", owner("GET", "/api/files"));
    let r = c.send(
        "POST",
        "/api/verify",
        owner("POST", "/api/verify").json(&json!({"repair": false})),
    );
    assert_eq!(r.json()["ok"], true, "{}", r.text());
    let content = "/api/files/{cid}/content";
    let r = c.send(
        "GET",
        content,
        owner("GET", &format!("/api/files/{uploaded}/content")),
    );
    assert_eq!(r.body, std::fs::read(&small).unwrap());
    let r = c.send("GET", content, owner("GET", "/api/files/nope/content"));
    assert_eq!(r.status, 400);
    let r = c.send(
        "GET",
        content,
        owner("GET", &format!("/api/files/{UNKNOWN_CID}/content")),
    );
    assert_eq!(r.status, 404);
    let unpublish = "/api/files/{cid}/unpublish";
    let r = c.send(
        "POST",
        unpublish,
        owner("POST", &format!("/api/files/{added}/unpublish")),
    );
    assert_eq!(r.status, 200);
    let r = c.send(
        "DELETE",
        "/api/files/{cid}",
        owner("DELETE", &format!("/api/files/{added}")),
    );
    assert_eq!(r.status, 200);
    let r = c.send(
        "DELETE",
        "/api/files/{cid}",
        owner("DELETE", &format!("/api/files/{added}")),
    );
    assert_eq!(r.status, 404);

    // Downloads from the seeder: a fetch to a path (JSON lines to the end), and one
    // into the store that is paused, resumed and cancelled.
    let src = dir.path().join("seeded.bin");
    random_file(&src, MIB, 3);
    let seeded = add(&seeder, &src, &[]);
    let out = dir.path().join("fetched.bin");
    let r = c.send(
        "POST",
        "/api/fetch",
        owner("POST", "/api/fetch")
            .json(&json!({"cid": seeded, "output": out, "timeout_secs": 60})),
    );
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done", "{}", r.text());
    assert_eq!(file_hash(&out), file_hash(&src));
    let r = c.send(
        "POST",
        "/api/fetch",
        owner("POST", "/api/fetch").json(&json!({"cid": UNKNOWN_CID, "output": out})),
    );
    // (The same fetch again would find its download done: another file's is refused.)
    assert_eq!(r.status, 400, "the output exists: {}", r.text());
    // Folders: one added here, one fetched from the seeder, both listed.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    random_file(&tree.join("sub/a.bin"), 5000, 5);
    let r = c.send(
        "POST",
        "/api/folders",
        owner("POST", "/api/folders").json(&json!({"path": tree, "unlisted": true})),
    );
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done", "{}", r.text());
    let here = last["cid"].as_str().unwrap().to_string();
    let other_tree = dir.path().join("other tree");
    std::fs::create_dir_all(&other_tree).unwrap();
    random_file(&other_tree.join("b.bin"), 7000, 6);
    let seeded_tree = seeder
        .cli(&["add", other_tree.to_str().unwrap()])
        .success()
        .last_line()
        .to_string();
    let r = c.send(
        "POST",
        "/api/folders/fetch",
        owner("POST", "/api/folders/fetch").json(
            &json!({"cid": seeded_tree, "output": dir.path().join("tree-copy"), "timeout_secs": 60}),
        ),
    );
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done", "{}", r.text());
    let r = c.send(
        "POST",
        "/api/folders/fetch",
        owner("POST", "/api/folders/fetch").json(&json!({"cid": seeded_tree})),
    );
    assert_eq!(r.status, 400, "no output: {}", r.text());
    let r = c.send("GET", "/api/folders", owner("GET", "/api/folders"));
    assert_eq!(r.json().as_array().unwrap().len(), 2, "{}", r.text());
    let r = c.send(
        "GET",
        "/api/folders/{cid}",
        owner("GET", &format!("/api/folders/{here}")),
    );
    assert_eq!(r.json()["entries"][0]["path"], "sub/a.bin", "{}", r.text());
    let r = c.send(
        "GET",
        "/api/folders/{cid}",
        owner("GET", &format!("/api/folders/{UNKNOWN_CID}")),
    );
    assert_eq!(r.status, 404);
    let slow_src = dir.path().join("slow.bin");
    random_file(&slow_src, 12 * MIB, 4);
    let slow = add(&seeder, &slow_src, &[]);
    let r = c.send(
        "POST",
        "/api/downloads",
        owner("POST", "/api/downloads").json(&json!({"cid": slow})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.send(
        "POST",
        "/api/downloads",
        owner("POST", "/api/downloads").json(&json!({"cid": 5})),
    );
    assert_eq!(r.status, 422);
    wait_for("some progress", || node.bytes_done(&slow) >= MIB);
    let pause = "/api/downloads/{cid}/pause";
    let resume = "/api/downloads/{cid}/resume";
    let r = c.send(
        "POST",
        pause,
        owner("POST", &format!("/api/downloads/{slow}/pause")),
    );
    assert_eq!(r.json()["paused"], true, "{}", r.text());
    let r = c.send(
        "POST",
        pause,
        owner("POST", &format!("/api/downloads/{UNKNOWN_CID}/pause")),
    );
    assert_eq!(r.status, 404);
    let r = c.send(
        "POST",
        resume,
        owner("POST", &format!("/api/downloads/{slow}/resume")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.send(
        "POST",
        resume,
        owner("POST", &format!("/api/downloads/{slow}/resume")),
    );
    assert_eq!(r.status, 409);
    let r = c.send("GET", "/api/downloads", owner("GET", "/api/downloads"));
    assert!(r.text().contains(&slow));
    let r = c.send("GET", "/api/status", owner("GET", "/api/status"));
    assert!(r.text().contains(&slow), "status lists the download");
    let r = c.send(
        "DELETE",
        "/api/downloads/{cid}",
        owner("DELETE", &format!("/api/downloads/{slow}")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.send(
        "DELETE",
        "/api/downloads/{cid}",
        owner("DELETE", &format!("/api/downloads/{UNKNOWN_CID}")),
    );
    assert_eq!(r.status, 404);
    // Issue 16: the history of ended downloads is cleared; the metrics are text.
    let r = c.send(
        "DELETE",
        "/api/downloads",
        owner("DELETE", "/api/downloads"),
    );
    assert!(r.json()["cleared"].as_u64().unwrap() >= 1, "{}", r.text());
    let r = c.send("GET", "/metrics", owner("GET", "/metrics"));
    assert!(
        r.text().contains("p2pd_downloads{state=\"cancelled\"} 0"),
        "{}",
        r.text()
    );
    // Shares: make, list, draw, revoke; open a ticket of the seeder's; publish again.
    let r = c.send(
        "POST",
        "/api/shares",
        owner("POST", "/api/shares").json(&json!({"cid": uploaded, "expires_secs": 3600})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let share_id = r.json()["id"].as_str().unwrap().to_string();
    assert!(r.json()["ticket"].as_str().unwrap().starts_with("p2pd1"));
    let r = c.send(
        "POST",
        "/api/shares",
        owner("POST", "/api/shares").json(&json!({"cid": UNKNOWN_CID})),
    );
    assert_eq!(r.status, 404);
    let r = c.send("GET", "/api/shares", owner("GET", "/api/shares"));
    assert!(r.text().contains(&share_id));
    let qr = "/api/shares/{id}/qr";
    let r = c.send(
        "GET",
        qr,
        owner("GET", &format!("/api/shares/{share_id}/qr")),
    );
    assert!(r.text().starts_with("<svg"), "{}", r.text());
    let r = c.send("GET", qr, owner("GET", "/api/shares/0000000000000000/qr"));
    assert_eq!(r.status, 404);
    let ticket = seeder
        .cli(&["share", &seeded])
        .success()
        .last_line()
        .to_string();
    let r = c.send(
        "POST",
        "/api/tickets/open",
        owner("POST", "/api/tickets/open").json(&json!({"ticket": ticket})),
    );
    assert_eq!(r.json()["cid"], seeded.as_str(), "{}", r.text());
    let r = c.send(
        "POST",
        "/api/tickets/open",
        owner("POST", "/api/tickets/open").json(&json!({"ticket": "p2pd1aaaa"})),
    );
    assert_eq!(r.status, 400);
    let unshare = "/api/shares/{key}";
    let r = c.send(
        "DELETE",
        unshare,
        owner("DELETE", &format!("/api/shares/{share_id}")),
    );
    assert_eq!(r.json()[0]["id"], share_id.as_str(), "{}", r.text());
    let r = c.send(
        "DELETE",
        unshare,
        owner("DELETE", &format!("/api/shares/{share_id}")),
    );
    assert_eq!(r.status, 404);
    let publish = "/api/files/{cid}/publish";
    let r = c.send(
        "POST",
        publish,
        owner("POST", &format!("/api/files/{uploaded}/publish")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = c.send(
        "POST",
        publish,
        owner("POST", &format!("/api/files/{UNKNOWN_CID}/publish")),
    );
    assert_eq!(r.status, 404);
    c.send("GET", "/api/peers", owner("GET", "/api/peers"));
    c.send("GET", "/api/reputation", owner("GET", "/api/reputation"));
    c.send(
        "GET",
        "/api/reputation/mine",
        owner("GET", "/api/reputation/mine"),
    );
    // Issue 16: the self-check; relays listed, added (a bad address, then one nobody
    // answers at), dropped (then unknown).
    let r = c.send("POST", "/api/doctor", owner("POST", "/api/doctor"));
    assert_eq!(r.status, 200, "{}", r.text());
    c.send("GET", "/api/relays", owner("GET", "/api/relays"));
    let relay = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
    let add = |addr: &str| owner("POST", "/api/relays").json(&json!({ "addr": addr }));
    let r = c.send("POST", "/api/relays", add("nonsense"));
    assert_eq!(r.status, 400, "{}", r.text());
    let r = c.send(
        "POST",
        "/api/relays",
        add(&format!("/ip4/127.0.0.1/tcp/1/p2p/{relay}")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let drop = || owner("DELETE", &format!("/api/relays/{relay}"));
    assert_eq!(c.send("DELETE", "/api/relays/{peer}", drop()).status, 200);
    assert_eq!(c.send("DELETE", "/api/relays/{peer}", drop()).status, 404);
    let r = c.send(
        "POST",
        "/api/downloads",
        owner("POST", "/api/downloads").json(&json!({"cid": "b".repeat(70 << 10)})),
    );
    assert_eq!(r.status, 413);

    // Search and browse the seeder's catalog (it lists seeded.bin), list and unlist,
    // the catalog's state and setting.
    wait_for("the seeder's keywords announced", || {
        let c = seeder.cli(&["catalog", "--json"]);
        c.code == 0 && {
            let c = c.json();
            c["keywords"].as_u64() > Some(0) && c["keywords_announced"] == c["keywords"]
        }
    });
    let r = c.send(
        "POST",
        "/api/search",
        owner("POST", "/api/search").json(&json!({"query": "SEEDED bin", "timeout_secs": 20})),
    );
    let last: Value = serde_json::from_str(r.text().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done", "{}", r.text());
    assert!(r.text().contains(&seeded), "{}", r.text());
    let r = c.send(
        "POST",
        "/api/search",
        owner("POST", "/api/search").json(&json!({"query": "a b"})),
    );
    assert_eq!(r.status, 400);
    let r = c.send(
        "POST",
        "/api/browse",
        owner("POST", "/api/browse").json(&json!({"peer": seeder.peer_id()})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(&seeded), "{}", r.text());
    let r = c.send(
        "POST",
        "/api/browse",
        owner("POST", "/api/browse").json(&json!({"peer": "nobody"})),
    );
    assert_eq!(r.status, 400);
    seeder.cli(&["catalog", "--browse", "off"]).success();
    let r = c.send(
        "POST",
        "/api/browse",
        owner("POST", "/api/browse").json(&json!({"peer": seeder.peer_id()})),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    for verb in ["unlist", "list"] {
        let path = format!("/api/files/{{cid}}/{verb}");
        let r = c.send(
            "POST",
            &path,
            owner("POST", &format!("/api/files/{uploaded}/{verb}")),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let r = c.send(
            "POST",
            &path,
            owner("POST", &format!("/api/files/{UNKNOWN_CID}/{verb}")),
        );
        assert_eq!(r.status, 404);
    }
    c.send("GET", "/api/catalog", owner("GET", "/api/catalog"));
    let r = c.send(
        "PUT",
        "/api/catalog",
        owner("PUT", "/api/catalog").json(&json!({"browse": false})),
    );
    assert_eq!(r.json()["browse"], false);
    let r = c.send(
        "PUT",
        "/api/catalog",
        owner("PUT", "/api/catalog").json(&json!({"browse": "no"})),
    );
    assert_eq!(r.status, 422);

    // The streams, event by event.
    let r = net_events.join().unwrap();
    c.check("GET", "/api/events", &r);
    let r = live.join().unwrap();
    c.check("GET", "/api/events/live", &r);

    // Every documented operation answered at least once with success, and every kind
    // of error the document lists was met.
    for (method, path) in c.operations() {
        let seen = c
            .seen
            .get(&format!("{method} {path}"))
            .cloned()
            .unwrap_or_default();
        assert!(
            seen.iter().any(|s| (200..300).contains(s)),
            "{method} {path} never answered with success: {seen:?}"
        );
    }
    let all: BTreeSet<u16> = c.seen.values().flatten().copied().collect();
    for status in [400, 401, 403, 404, 409, 413, 415, 422, 429] {
        assert!(all.contains(&status), "no {status} was checked: {all:?}");
    }
    assert!(!node.log().contains("panicked"));
}
