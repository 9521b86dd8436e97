//! The OpenAPI 3.1 document of the own API, generated from the handlers' and types'
//! annotations (utoipa), so that it cannot drift from the code. The compatible APIs document
//! themselves by reference to Piston's and Judge0's own documentation (docs/server.md).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    batch, connect, executions, health, history, languages, sessions, stream, tools, volumes,
};

/// The own API's document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "warden",
        description = "Run untrusted code in a sandbox: warden's own HTTP API. The result \
                       object is documented in docs/result-schema.md."
    ),
    paths(
        executions::create,
        executions::status,
        executions::delete,
        stream::create,
        connect::connect,
        batch::create,
        languages::list,
        health::health,
        health::ready,
        history::list,
        history::stats,
        tools::list,
        tools::get,
        tools::register,
        tools::remove,
        tools::call,
        tools::stats,
        sessions::create,
        sessions::list,
        sessions::get,
        sessions::remove,
        sessions::exec,
        connect::connect_session,
        sessions::list_files,
        sessions::download,
        sessions::upload,
        sessions::delete_file,
        volumes::create,
        volumes::list,
        volumes::get,
        volumes::remove,
        volumes::prune,
    ),
    modifiers(&BearerToken, &ErrorBodies),
    tags(
        (name = "executions", description = "Run programs"),
        (name = "languages", description = "What can run"),
        (name = "health", description = "Liveness and readiness"),
        (name = "history", description = "Recorded executions"),
        (name = "tools", description = "The tool registry: tools for agents, each run in a sandbox"),
        (name = "sessions", description = "Sandboxes that live across calls, with a persistent workspace"),
        (name = "volumes", description = "Named persistent volumes with a quota, mounted into runs"),
    )
)]
pub struct ApiDoc;

/// The `bearer` security scheme the paths refer to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What every error of the own API answers: `{error, kind}` (`ApiError::body`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: errors are written by `ApiError::body`.
pub(crate) struct ErrorBody {
    /// What went wrong, for a person.
    error: String,
    /// For a program: `request`, `not_found`, `unauthorized`, `forbidden`, `conflict`,
    /// `too_large`, `unsupported`, `rate_limited`, `unavailable`, `timeout`, `internal`, ...
    kind: String,
}

/// Gives each error response (4xx, 5xx) that names no content the `ErrorBody` schema.
struct ErrorBodies;

impl Modify for ErrorBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Content, Ref, RefOr};
        use utoipa::{PartialSchema, ToSchema};
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .schemas
            .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
        let reference = format!("#/components/schemas/{}", ErrorBody::name());
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for (status, response) in &mut operation.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    let error = status.starts_with('4') || status.starts_with('5');
                    if error && response.content.is_empty() {
                        response.content.insert(
                            "application/json".to_owned(),
                            Content::new(Some(Ref::new(reference.clone()))),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_route() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializable");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        for path in [
            "/v1/executions",
            "/v1/executions/{id}",
            "/v1/batch",
            "/v1/languages",
            "/v1/health",
            "/v1/ready",
            "/v1/history",
            "/v1/sessions",
            "/v1/sessions/{id}/exec",
            "/v1/sessions/{id}/file",
            "/v1/stats",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} is documented");
        }
        assert!(doc["components"]["schemas"]["ExecutionBody"].is_object());
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    }

    /// Each request body names the schema of what its route reads: two structs of one name
    /// (sessions' and volumes' bodies) once made `POST /v1/sessions` document the volume's
    /// body, so that a generated client could not create a session.
    #[test]
    fn each_request_body_is_its_own_routes() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializable");
        let body_of = |path: &str| -> serde_json::Value {
            let reference = doc["paths"][path]["post"]["requestBody"]["content"]
                ["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{path} has a body schema"))
                .trim_start_matches("#/components/schemas/")
                .to_owned();
            doc["components"]["schemas"][reference].clone()
        };
        let session = body_of("/v1/sessions");
        for field in [
            "mode",
            "network",
            "limits",
            "idle_timeout",
            "disk",
            "workspace",
        ] {
            assert!(
                session["properties"][field].is_object(),
                "{field}: {session}"
            );
        }
        let volume = body_of("/v1/volumes");
        assert!(volume["properties"]["size"].is_object(), "{volume}");
        assert!(
            volume["properties"].get("idle_timeout").is_none(),
            "{volume}"
        );
    }

    /// Hunter report (docs, finding 2): `POST /v1/executions`'s `volumes` items were
    /// documented as the volume-create body (`{name, size}`), which the route refuses, because
    /// both structs were named `VolumeBody` and utoipa keeps one schema per name.
    #[test]
    fn an_executions_volumes_are_the_mounts_it_reads() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializable");
        let schemas = &doc["components"]["schemas"];
        let items = &schemas["ExecutionBody"]["properties"]["volumes"]["items"];
        let name = items["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("volumes items refer to a schema: {items}"))
            .trim_start_matches("#/components/schemas/");
        let volume = &schemas[name];
        for field in ["name", "path", "read_only"] {
            assert!(volume["properties"][field].is_object(), "{field}: {volume}");
        }
        assert!(volume["properties"].get("size").is_none(), "{volume}");
    }

    /// utoipa keys schemas by the type's name, so two types deriving `ToSchema` under one name
    /// make one document the other without a word. Read from the sources, which is where the
    /// names are: every `ToSchema` type of this crate has a name of its own.
    #[test]
    fn no_two_schema_types_share_a_name() {
        fn sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("the crate's sources") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    sources(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push(path);
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut seen = std::collections::BTreeMap::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("a readable source");
            let mut deriving = false;
            for line in text.lines().map(str::trim) {
                if line.starts_with("#[derive(") && line.contains("ToSchema") {
                    deriving = true;
                } else if deriving && line.starts_with("#[schema(as") {
                    // Renamed in the document: not keyed by the type's own name.
                    deriving = false;
                } else if deriving && !line.starts_with("#[") && !line.starts_with("///") {
                    let name = line
                        .split_whitespace()
                        .skip_while(|w| !matches!(*w, "struct" | "enum"))
                        .nth(1)
                        .map(|n| n.trim_end_matches(['{', '(', ';']).to_owned());
                    if let Some(name) = name {
                        if let Some(earlier) = seen.insert(name.clone(), file.clone()) {
                            panic!("{name} in {} and {}", earlier.display(), file.display());
                        }
                    }
                    deriving = false;
                }
            }
        }
        assert!(seen.len() > 20, "{seen:?}");
    }

    /// Bug hunt: errors had no schema, where every one is `{error, kind}`.
    #[test]
    fn every_error_response_has_the_error_body() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializable");
        let schema = &doc["components"]["schemas"]["ErrorBody"];
        assert!(schema["properties"]["error"].is_object(), "{schema}");
        let mut errors = 0;
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("an item") {
                let Some(responses) = operation["responses"].as_object() else {
                    continue;
                };
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        errors += 1;
                        // Its own body where the route names one (`/v1/ready`'s 503).
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert!(schema.is_string(), "{method} {path} {status}");
                        if schema != "#/components/schemas/ErrorBody" {
                            assert_eq!((path.as_str(), status.as_str()), ("/v1/ready", "503"));
                        }
                    }
                }
            }
        }
        assert!(errors > 50, "{errors} error responses");
    }

    /// Bug hunt: a file's upload was documented as an array of integers (`Vec<u8>`), which a
    /// generated client would send as JSON.
    #[test]
    fn a_files_bytes_are_documented_as_binary() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializable");
        let body = &doc["paths"]["/v1/sessions/{id}/file"]["put"]["requestBody"]["content"]
            ["application/octet-stream"]["schema"]["$ref"];
        let name = body
            .as_str()
            .expect("a schema")
            .trim_start_matches("#/components/schemas/");
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["type"], "string", "{schema}");
        assert_eq!(schema["format"], "binary", "{schema}");
    }

    /// Found by the property-based run (crates/warden-cli/tests/openapi.rs, issue 9): query
    /// parameters were documented as required path parameters, and two pairs of operations
    /// shared an `operationId`, which code generators reject.
    #[test]
    fn parameters_sit_where_the_routes_read_them_and_operation_ids_are_unique() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializable");
        let mut ids = std::collections::BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let id = operation["operationId"].as_str().expect("an operationId");
                assert!(
                    ids.insert(id.to_owned()),
                    "{method} {path}: {id} used twice"
                );
                let parameters = operation["parameters"].as_array().cloned();
                for parameter in parameters.unwrap_or_default() {
                    let name = parameter["name"].as_str().expect("a name");
                    let templated = path.contains(&format!("{{{name}}}"));
                    let expected = if templated { "path" } else { "query" };
                    assert_eq!(parameter["in"], expected, "{method} {path} {name}");
                }
            }
        }
    }
}
