//! The OpenAPI 3.1 document of the control API, served at `GET /api/openapi.json`.
//!
//! Its paths come from the route table in [`super::http`], the same rows the router is
//! built from. Its schemas are written here by hand; the tests below serialize a value of
//! each type and check that its fields are exactly the documented properties, so a field
//! added to a type without its schema (or the reverse) fails the build's tests.

use serde_json::{json, Map, Value};

use super::http::{Access, Input, Output, RouteSpec};

pub(super) fn string() -> Value {
    json!({"type": "string"})
}
pub(super) fn nullable(kind: &str) -> Value {
    json!({"type": [kind, "null"]})
}
pub(super) fn integer() -> Value {
    json!({"type": "integer", "minimum": 0})
}
fn number() -> Value {
    json!({"type": "number"})
}
pub(super) fn boolean() -> Value {
    json!({"type": "boolean"})
}
pub(super) fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}
pub(super) fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}
fn list_of(name: &str) -> Value {
    json!({"type": "array", "items": reference(name)})
}

/// An object schema: each property with its schema and whether it is required.
pub(super) fn object(description: &str, properties: &[(&str, Value, bool)]) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    for (name, schema, needed) in properties {
        props.insert((*name).to_string(), schema.clone());
        if *needed {
            required.push(Value::from(*name));
        }
    }
    json!({
        "type": "object",
        "description": description,
        "properties": props,
        "required": required,
    })
}

/// Every schema the document names.
pub fn schemas() -> Map<String, Value> {
    let progress_props = [
        ("cid", string(), true),
        ("name", nullable("string"), true),
        (
            "state",
            json!({"type": "string", "enum": ["finding", "downloading", "done", "failed"]}),
            true,
        ),
        ("size", integer(), true),
        ("chunks_total", integer(), true),
        ("chunks_done", integer(), true),
        ("bytes_done", integer(), true),
        ("bytes_received", integer(), true),
        ("rate", number(), true),
        ("eta_secs", nullable("number"), true),
        ("peers", integer(), true),
        ("per_peer", list_of("PeerBytes"), true),
        ("elapsed_secs", number(), true),
        ("output", nullable("string"), true),
        ("error", nullable("string"), true),
        ("bad_input", boolean(), true),
    ];
    let mut download_props = progress_props.to_vec();
    download_props.push(("paused", boolean(), true));
    let peer_info_props = [
        ("peer_id", string(), true),
        ("addrs", strings(), true),
        ("direct", boolean(), true),
        ("rtt_ms", nullable("number"), true),
        ("agent", nullable("string"), true),
    ];
    let mut peer_view_props = peer_info_props.to_vec();
    peer_view_props.extend([
        ("bytes_received", integer(), true),
        ("bytes_sent", integer(), true),
        ("rate_down", number(), true),
        ("rate_up", number(), true),
        ("banned", boolean(), true),
        ("reputation", nullable("number"), true),
    ]);
    let event = |kind: &str, props: &[(&str, Value, bool)]| {
        let mut all = vec![("type", json!({"const": kind}), true)];
        all.extend(props.iter().cloned());
        object(kind, &all)
    };
    let mut m = Map::new();
    let mut put = |name: &str, schema: Value| {
        m.insert(name.to_string(), schema);
    };
    for (name, schema) in super::search::schemas() {
        put(name, schema);
    }
    put(
        "ErrorBody",
        object(
            "The body of every failed call.",
            &[("status", integer(), true), ("message", string(), true)],
        ),
    );
    put(
        "SessionInfo",
        object(
            "Whether the request is authenticated.",
            &[
                ("authenticated", boolean(), true),
                (
                    "via",
                    json!({"type": ["string", "null"], "enum": ["token", "session", null]}),
                    true,
                ),
                ("password_set", boolean(), true),
                ("csrf_token", nullable("string"), true),
                ("expires_in_secs", nullable("integer"), true),
            ],
        ),
    );
    put(
        "LoginRequest",
        object("The owner's password.", &[("password", string(), true)]),
    );
    put(
        "SetupRequest",
        object(
            "The setup link's token and the first password (at least 8 characters).",
            &[("token", string(), true), ("password", string(), true)],
        ),
    );
    put(
        "OpenApi",
        json!({"type": "object", "description": "An OpenAPI 3.1 document."}),
    );
    put(
        "IdResponse",
        object(
            "Peer id and full addresses.",
            &[("peer_id", string(), true), ("addrs", strings(), true)],
        ),
    );
    put(
        "NodeInfo",
        object(
            "The node's identity and reach.",
            &[
                ("peer_id", string(), true),
                ("listen_addrs", strings(), true),
                ("external_addrs", strings(), true),
                (
                    "nat_status",
                    json!({"type": "string", "enum": ["public", "private"]}),
                    true,
                ),
                ("dht_server", boolean(), true),
                ("connected_peers", integer(), true),
                ("routing_table_peers", integer(), true),
                ("provided_files", integer(), true),
                ("relay_reservations", strings(), true),
                ("provider_announcements", integer(), true),
                ("unannounced_files", integer(), true),
                ("dht_client_reason", nullable("string"), true),
                (
                    "relay_server",
                    json!({"type": "string", "enum": ["off", "serving", "disabled"]}),
                    true,
                ),
                ("relay_server_reason", nullable("string"), true),
            ],
        ),
    );
    put(
        "StatusResponse",
        object(
            "The daemon's state.",
            &[
                ("version", string(), true),
                ("uptime_secs", integer(), true),
                ("data_dir", string(), true),
                ("display_name", nullable("string"), true),
                ("node", reference("NodeInfo"), true),
                ("files", integer(), true),
                ("downloads", list_of("DownloadInfo"), true),
            ],
        ),
    );
    put(
        "RateSample",
        object(
            "Bandwidth over one second.",
            &[
                ("t_ms", integer(), true),
                ("down", number(), true),
                ("up", number(), true),
            ],
        ),
    );
    put(
        "StatsResponse",
        object(
            "Bandwidth now and over the last five minutes (bytes per second).",
            &[
                ("down_rate", number(), true),
                ("up_rate", number(), true),
                ("total_received", integer(), true),
                ("total_sent", integer(), true),
                ("history", list_of("RateSample"), true),
            ],
        ),
    );
    put(
        "Settings",
        object(
            "What the owner can change while the daemon runs.",
            &[(
                "display_name",
                json!({"type": ["string", "null"], "maxLength": 64}),
                false,
            )],
        ),
    );
    put("PeerView", object(
        "A connected peer, with this node's reputation score for it (null if it never dealt with us) and whether it is banned for corrupt data.",
        &peer_view_props,
    ));
    put(
        "PeerReputation",
        object(
            "This node's record of a peer: score from -100 to 100 and the counters behind it.",
            &[
                ("peer_id", string(), true),
                ("score", number(), true),
                ("banned", boolean(), true),
                ("received", integer(), true),
                ("sent", integer(), true),
                ("corrupt_chunks", integer(), true),
                ("forged_entries", integer(), true),
                ("failures", integer(), true),
                ("refusals", integer(), true),
                ("banned_until", nullable("integer"), true),
                ("last_seen", integer(), true),
            ],
        ),
    );
    put(
        "FileInfo",
        object(
            "A file the node holds.",
            &[
                ("cid", string(), true),
                ("name", nullable("string"), true),
                ("size", integer(), true),
                ("chunks", integer(), true),
                ("have_chunks", integer(), true),
                (
                    "state",
                    json!({"type": "string", "enum": ["complete", "partial", "changed"]}),
                    true,
                ),
                (
                    "location",
                    json!({"type": "string", "enum": ["store", "in_place", "partial"]}),
                    true,
                ),
                ("path", nullable("string"), true),
                ("pinned", boolean(), true),
                ("added_unix", integer(), true),
                ("published", boolean(), true),
                ("listed", boolean(), true),
                ("in_catalog", boolean(), true),
                (
                    "announcement",
                    json!({"anyOf": [reference("AnnouncementInfo"), {"type": "null"}]}),
                    true,
                ),
            ],
        ),
    );
    put(
        "AnnouncementInfo",
        object(
            "How announcing a file went.",
            &[
                ("last_announced_unix", nullable("integer"), true),
                ("peers", nullable("integer"), true),
                ("announcing", boolean(), true),
                ("retry_in_secs", nullable("integer"), true),
            ],
        ),
    );
    put(
        "CidResponse",
        object(
            "The file an operation changed.",
            &[("cid", string(), true), ("changed", boolean(), true)],
        ),
    );
    put(
        "AddRequest",
        object(
            "A file on the daemon's machine.",
            &[
                ("path", string(), true),
                ("no_copy", boolean(), false),
                ("name", nullable("string"), false),
                ("unlisted", boolean(), false),
            ],
        ),
    );
    put(
        "AddResponse",
        object(
            "A shared file.",
            &[
                ("cid", string(), true),
                ("name", nullable("string"), true),
                ("size", integer(), true),
                ("chunks", integer(), true),
                ("already_present", boolean(), true),
            ],
        ),
    );
    put(
        "FetchRequest",
        object(
            "A download to a path on the daemon's machine.",
            &[
                ("cid", string(), true),
                ("output", nullable("string"), false),
                ("output_dir", nullable("string"), false),
                ("timeout_secs", nullable("integer"), false),
            ],
        ),
    );
    put(
        "StartDownload",
        object(
            "A download into the store.",
            &[
                ("cid", string(), true),
                ("timeout_secs", nullable("integer"), false),
            ],
        ),
    );
    put(
        "PeerBytes",
        object(
            "Verified bytes one peer sent.",
            &[("peer_id", string(), true), ("bytes", integer(), true)],
        ),
    );
    put(
        "Progress",
        object("A snapshot of a download.", &progress_props),
    );
    put(
        "DownloadInfo",
        object(
            "A download and whether the owner paused it.",
            &download_props,
        ),
    );
    put(
        "NetEvent",
        json!({"oneOf": [
            event("peer_connected", &[("peer_id", string(), true)]),
            event("peer_disconnected", &[("peer_id", string(), true)]),
            event("external_address", &[("addr", string(), true)]),
        ]}),
    );
    put(
        "LiveEvent",
        json!({"oneOf": [
            event("net", &[("event", reference("NetEvent"), true)]),
            event("download", &[("download", reference("DownloadInfo"), true)]),
            event("file_added", &[("file", reference("AddResponse"), true)]),
            event("file_changed", &[
                ("cid", string(), true),
                ("change", json!({"type": "string", "enum": ["removed", "unpublished"]}), true),
            ]),
            event("stats", &[("sample", reference("RateSample"), true)]),
            event("reputation", &[
                ("peer_id", string(), true),
                ("score", number(), true),
                ("banned", boolean(), true),
            ]),
            event("settings", &[("settings", reference("Settings"), true)]),
        ]}),
    );
    m
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": reference("ErrorBody")}},
    })
}

fn operation(spec: &RouteSpec) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), spec.summary.into());
    op.insert(
        "operationId".into(),
        format!("{} {}", spec.method.to_lowercase(), spec.path).into(),
    );
    let mut parameters: Vec<Value> = spec
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect();
    parameters.extend(spec.query.iter().map(|(name, description)| {
        json!({"name": name, "in": "query", "required": false,
               "description": description, "schema": {"type": "string"}})
    }));
    if !parameters.is_empty() {
        op.insert("parameters".into(), parameters.into());
    }
    match spec.input {
        Input::None => {}
        Input::Json(schema) => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": reference(schema)}}}),
            );
        }
        Input::Raw => {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/octet-stream":
                    {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}}}),
            );
        }
    }
    let ok = match spec.output {
        Output::Json(schema) => json!({"description": "OK",
            "content": {"application/json": {"schema": reference(schema)}}}),
        Output::JsonList(schema) => json!({"description": "OK",
            "content": {"application/json": {"schema": list_of(schema)}}}),
        Output::Ndjson(schema) => json!({
            "description": format!(
                "JSON lines: `{{\"event\":\"progress\",…}}` while it works, then `{{\"event\":\"done\",…{schema}}}` or `{{\"event\":\"error\",\"status\":…,\"message\":…}}`."
            ),
            "content": {"application/x-ndjson": {"schema": reference(schema)}}}),
        Output::EventStream => json!({
            "description": "Server-sent events; each `data:` is a JSON LiveEvent.",
            "content": {"text/event-stream": {"schema": reference("LiveEvent")}}}),
        Output::File => json!({"description": "The file's bytes.",
            "content": {"application/octet-stream": {"schema": {"type": "string"}}}}),
        Output::Html => json!({"description": "An HTML page.",
            "content": {"text/html": {"schema": {"type": "string"}}}}),
        Output::Asset => json!({"description": "A static file.",
            "content": {"*/*": {"schema": {"type": "string"}}}}),
    };
    op.insert(
        "responses".into(),
        json!({
            "200": ok,
            "4XX": error_response("Bad request (400), not logged in (401), refused (403), not found (404), conflict (409), body too large (413), too many attempts (429)."),
            "5XX": error_response("The daemon failed."),
        }),
    );
    let security = match spec.access {
        Access::Public => json!([]),
        Access::Owner => json!([{"bearer": []}, {"session": []}]),
    };
    op.insert("security".into(), security);
    let tag = if spec.path.starts_with("/api/") {
        spec.path.split('/').nth(2).unwrap_or("api")
    } else {
        "web UI"
    };
    op.insert("tags".into(), json!([tag]));
    Value::Object(op)
}

/// The document for a route table.
pub fn document(routes: &[RouteSpec]) -> Value {
    let mut paths = Map::new();
    for spec in routes {
        let entry = paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}));
        if let Some(methods) = entry.as_object_mut() {
            methods.insert(spec.method.to_lowercase(), operation(spec));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "p2pd control API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The control API of a p2pd daemon. Owner routes need the bearer token from <data dir>/api.json, or a web session cookie; state-changing requests of a session also need its X-CSRF-Token header. Cross-origin requests are refused.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "The token in <data dir>/api.json."},
                "session": {"type": "apiKey", "in": "cookie", "name": "p2pd_session_<port>",
                            "description": "Set by /api/login; HttpOnly, SameSite=Strict."},
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;
    use crate::api::types::*;
    use crate::transfer::{DownloadState, PeerBytes};

    fn progress() -> Progress {
        Progress {
            cid: "b".into(),
            name: None,
            state: DownloadState::Downloading,
            size: 1,
            chunks_total: 1,
            chunks_done: 0,
            bytes_done: 0,
            bytes_received: 0,
            rate: 0.0,
            eta_secs: None,
            peers: 0,
            per_peer: vec![PeerBytes {
                peer_id: "p".into(),
                bytes: 1,
            }],
            elapsed_secs: 0.0,
            output: None,
            error: None,
            bad_input: false,
        }
    }

    fn peer_info() -> PeerInfo {
        PeerInfo {
            peer_id: "p".into(),
            addrs: vec![],
            direct: true,
            rtt_ms: None,
            agent: None,
        }
    }

    fn node_info() -> NodeInfo {
        NodeInfo {
            peer_id: "p".into(),
            listen_addrs: vec![],
            external_addrs: vec![],
            nat_status: "private".into(),
            dht_server: false,
            connected_peers: 0,
            routing_table_peers: 0,
            provided_files: 0,
            relay_reservations: vec![],
            provider_announcements: 0,
            unannounced_files: 0,
            dht_client_reason: None,
            relay_server: "off".into(),
            relay_server_reason: None,
        }
    }

    /// One value of each documented object type.
    fn samples() -> Vec<(&'static str, Value)> {
        let download = DownloadInfo {
            progress: progress(),
            paused: false,
        };
        let add = AddResponse {
            cid: "b".into(),
            name: None,
            size: 0,
            chunks: 0,
            already_present: false,
        };
        let sample = RateSample {
            t_ms: 0,
            down: 0.0,
            up: 0.0,
        };
        let mut all = crate::api::search::samples();
        all.extend(vec![
            (
                "ErrorBody",
                to(&ErrorBody {
                    status: 400,
                    message: "m".into(),
                }),
            ),
            (
                "SessionInfo",
                to(&SessionInfo {
                    authenticated: false,
                    via: None,
                    password_set: false,
                    csrf_token: None,
                    expires_in_secs: None,
                }),
            ),
            (
                "LoginRequest",
                to(&LoginRequest {
                    password: "p".into(),
                }),
            ),
            (
                "SetupRequest",
                to(&SetupRequest {
                    token: "t".into(),
                    password: "p".into(),
                }),
            ),
            (
                "IdResponse",
                to(&IdResponse {
                    peer_id: "p".into(),
                    addrs: vec![],
                }),
            ),
            ("NodeInfo", to(&node_info())),
            (
                "PeerReputation",
                to(&PeerReputation {
                    peer_id: "p".into(),
                    score: 0.0,
                    banned: false,
                    record: crate::transfer::reputation::PeerRecord::default(),
                }),
            ),
            (
                "StatusResponse",
                to(&StatusResponse {
                    version: "v".into(),
                    uptime_secs: 0,
                    data_dir: PathBuf::new(),
                    display_name: None,
                    node: to(&node_info()),
                    files: 0,
                    downloads: vec![],
                }),
            ),
            ("RateSample", to(&sample)),
            (
                "StatsResponse",
                to(&StatsResponse {
                    down_rate: 0.0,
                    up_rate: 0.0,
                    total_received: 0,
                    total_sent: 0,
                    history: vec![],
                }),
            ),
            ("Settings", to(&Settings { display_name: None })),
            (
                "PeerView",
                to(&PeerView {
                    info: peer_info(),
                    bytes_received: 0,
                    bytes_sent: 0,
                    rate_down: 0.0,
                    rate_up: 0.0,
                    banned: false,
                    reputation: None,
                }),
            ),
            (
                "FileInfo",
                to(&FileInfo {
                    cid: "b".into(),
                    name: None,
                    size: 0,
                    chunks: 0,
                    have_chunks: 0,
                    state: "complete".into(),
                    location: "store".into(),
                    path: None,
                    pinned: false,
                    added_unix: 0,
                    published: true,
                    announcement: None,
                    listed: true,
                    in_catalog: true,
                }),
            ),
            (
                "AnnouncementInfo",
                to(&AnnouncementInfo {
                    last_announced_unix: Some(1),
                    peers: Some(0),
                    announcing: false,
                    retry_in_secs: None,
                }),
            ),
            (
                "CidResponse",
                to(&CidResponse {
                    cid: "b".into(),
                    changed: true,
                }),
            ),
            (
                "AddRequest",
                to(&AddRequest {
                    path: PathBuf::new(),
                    no_copy: false,
                    name: None,
                    unlisted: false,
                }),
            ),
            ("AddResponse", to(&add)),
            (
                "FetchRequest",
                to(&FetchRequest {
                    cid: "b".into(),
                    output: None,
                    output_dir: None,
                    timeout_secs: None,
                }),
            ),
            (
                "StartDownload",
                to(&StartDownload {
                    cid: "b".into(),
                    timeout_secs: None,
                }),
            ),
            (
                "PeerBytes",
                to(&PeerBytes {
                    peer_id: "p".into(),
                    bytes: 0,
                }),
            ),
            ("Progress", to(&progress())),
            ("DownloadInfo", to(&download)),
            (
                "NetEvent",
                to(&NetEvent::PeerConnected {
                    peer_id: "p".into(),
                }),
            ),
            (
                "NetEvent",
                to(&NetEvent::PeerDisconnected {
                    peer_id: "p".into(),
                }),
            ),
            (
                "NetEvent",
                to(&NetEvent::ExternalAddress { addr: "a".into() }),
            ),
            (
                "LiveEvent",
                to(&LiveEvent::Net {
                    event: NetEvent::PeerConnected {
                        peer_id: "p".into(),
                    },
                }),
            ),
            ("LiveEvent", to(&LiveEvent::Download { download })),
            ("LiveEvent", to(&LiveEvent::FileAdded { file: add })),
            (
                "LiveEvent",
                to(&LiveEvent::FileChanged {
                    cid: "b".into(),
                    change: "removed".into(),
                }),
            ),
            ("LiveEvent", to(&LiveEvent::Stats { sample })),
            (
                "LiveEvent",
                to(&LiveEvent::Reputation {
                    peer_id: "p".into(),
                    score: 1.0,
                    banned: false,
                }),
            ),
            (
                "LiveEvent",
                to(&LiveEvent::Settings {
                    settings: Settings::default(),
                }),
            ),
        ]);
        all
    }

    fn to<T: serde::Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap_or_default()
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The object schemas a value may match (one, or each of a `oneOf`).
    fn variants(schema: &Value) -> Vec<&Value> {
        match schema.get("oneOf").and_then(Value::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![schema],
        }
    }

    #[test]
    fn schemas_list_exactly_the_fields_each_type_serializes() {
        let schemas = schemas();
        for (name, value) in samples() {
            let schema = schemas
                .get(name)
                .unwrap_or_else(|| panic!("no schema {name}"));
            let fields = keys(&value);
            let matched = variants(schema).into_iter().any(|s| {
                keys(&s["properties"]) == fields
                    && s["properties"]
                        .get("type")
                        .and_then(|t| t.get("const"))
                        .is_none_or(|c| *c == value["type"])
            });
            assert!(
                matched,
                "{name}: serialized fields {fields:?} match no documented variant of {schema:#}"
            );
        }
        // Every named schema is used by a sample or is the document itself.
        let sampled: BTreeSet<&str> = samples().iter().map(|(n, _)| *n).collect();
        for name in schemas.keys() {
            assert!(
                sampled.contains(name.as_str()) || name == "OpenApi",
                "schema {name} has no sample"
            );
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document(&crate::api::http::route_specs());
        let text = doc.to_string();
        let schemas = schemas();
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "unresolved reference {name}");
        }
        assert!(doc["paths"]["/api/files/{cid}"]["delete"]["parameters"][0]["name"] == "cid");
    }
}
