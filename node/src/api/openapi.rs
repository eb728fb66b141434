//! The OpenAPI 3.1 document of the control API, served at `GET /api/openapi.json`.
//!
//! Nothing in it is written by hand but prose: the schemas are derived (utoipa's
//! `ToSchema`) from the wire types in [`super::types`], which the handlers, the CLI and
//! the web UI use; each operation comes from its handler's `#[utoipa::path]` attribute;
//! and [`super::http`] assembles the document from the same route table it builds the
//! router from. This module holds what is common to every operation: the document's
//! head, its security schemes, who may call each route and the error answers.

use utoipa::openapi::path::{Operation, Paths};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::OpenApi;

use super::folders::{FolderAddProgress, FolderAddResponse, FolderProgress};
use super::search::{SearchDone, SearchResult};
use super::types::{AddProgress, ErrorBody, Progress};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "p2pd control API",
        description = "The control API of a p2pd daemon. Owner routes need the bearer token from <data dir>/api.json, or a web session cookie; state-changing requests of a session also need its X-CSRF-Token header. Cross-origin requests are refused. Every error is a JSON ErrorBody.",
    ),
    // Schemas the answers name but that only appear inside inline ones.
    components(schemas(
        ErrorBody,
        AddProgress,
        Progress,
        SearchResult,
        SearchDone,
        FolderAddProgress,
        FolderAddResponse,
        FolderProgress
    ))
)]
struct Head;

/// The document before any route is added: its head, the error body's schema and the
/// two ways to authenticate.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut doc = Head::openapi();
    if let Some(components) = doc.components.as_mut() {
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("The token in <data dir>/api.json.".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut cookie = ApiKeyValue::new("p2pd_session_<port>");
        cookie.description = Some(
            "Set by /api/login or /api/setup; HttpOnly, SameSite=Strict. Requests other than GET also send the session's X-CSRF-Token header."
                .into(),
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(cookie)));
    }
    doc
}

fn error_response(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

/// Adds to each operation of a route-table row who may call it (`owner`: the bearer
/// token or a session; else anyone) and its error answers.
pub fn describe(paths: &mut Paths, owner: bool) {
    for item in paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            describe_operation(operation, owner);
        }
    }
}

fn describe_operation(operation: &mut Operation, owner: bool) {
    operation.security = Some(if owner {
        vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]
    } else {
        Vec::new()
    });
    let responses = &mut operation.responses.responses;
    responses.entry("4XX".into()).or_insert_with(|| {
        error_response(
            "Bad request (400), not logged in (401), refused (403), not found (404), \
             conflict (409), body too large (413), wrong media type (415), \
             unparsable body (422), too many attempts (429).",
        )
    });
    responses
        .entry("5XX".into())
        .or_insert_with(|| error_response("The daemon failed."));
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_reference_resolves_and_every_operation_says_who_may_call_it() {
        let doc = serde_json::to_value(crate::api::http::document()).unwrap_or_default();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        let schemas = &doc["components"]["schemas"];
        for part in text.split("#/components/schemas/").skip(1) {
            let name: String = part.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.get(&name).is_some(), "unresolved reference {name}");
        }
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(paths.len() >= 20, "{} paths", paths.len());
        for (path, methods) in paths {
            for (method, op) in methods.as_object().cloned().unwrap_or_default() {
                assert!(op["security"].is_array(), "{method} {path}: no security");
                for code in ["200", "4XX", "5XX"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path}: no {code} answer"
                    );
                }
                let public = op["security"].as_array().is_some_and(Vec::is_empty);
                assert_eq!(
                    public,
                    path == "/" || path.starts_with("/assets/") || {
                        ["/api/session", "/api/login", "/api/logout", "/api/setup"]
                            .contains(&path.as_str())
                    },
                    "{method} {path}"
                );
            }
        }
        assert_eq!(
            doc["paths"]["/api/files/{cid}"]["delete"]["parameters"][0]["name"],
            Value::from("cid")
        );
    }
}
