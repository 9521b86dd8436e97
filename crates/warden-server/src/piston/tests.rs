//! Router tests of the Piston facade: what needs no sandbox (validation, runtimes).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use warden_engine::{Engine, EngineConfig};

use super::routes_with;
use crate::state::AppState;
use crate::toolchains::Toolchains;

fn app() -> axum::Router {
    let engine = Engine::new(EngineConfig::new("/nonexistent/warden".into())).expect("engine");
    let versions = [
        ("python", "Python 3.11.2"),
        ("cpp", "g++ (Debian 12.2.0-14) 12.2.0"),
    ]
    .into_iter()
    .map(|(id, v)| (id.to_owned(), Some(v.to_owned())))
    .collect();
    routes_with(Toolchains::known(versions)).with_state(AppState::new(engine))
}

async fn call(request: Request<Body>) -> (StatusCode, Value) {
    crate::test_support::answer(app(), request).await
}

fn execute(content_type: &str, body: String) -> Request<Body> {
    Request::post("/api/v2/execute")
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request")
}

#[tokio::test]
async fn runtimes_use_pistons_names_and_semver() {
    let (status, body) = call(
        Request::get("/api/v2/runtimes")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cpp = body
        .as_array()
        .and_then(|r| r.iter().find(|r| r["language"] == "c++"))
        .expect("c++ listed");
    assert_eq!(cpp["version"], "12.2.0");
    assert_eq!(cpp["runtime"], "gcc");
    let listed: Vec<&str> = body
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["language"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(listed.len(), 2, "only probed toolchains: {listed:?}");
}

#[tokio::test]
async fn bad_requests_get_pistons_status_and_message() {
    let cases = [
        (json!({}), "language is required as a string"),
        (
            json!({"language": "python"}),
            "version is required as a string",
        ),
        (
            json!({"language": "python", "version": "*"}),
            "files is required as an array",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"name": "a"}]}),
            "files[0].content is required as a string",
        ),
        (
            json!({"language": "cobol", "version": "*", "files": [{"content": "x"}]}),
            "cobol-* runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "2.7", "files": [{"content": "x"}]}),
            "python-2.7 runtime is unknown",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "eA==", "encoding": "base64"}]}),
            "files must include at least one utf8 encoded file",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}], "run_timeout": "1"}),
            "If specified, run_timeout must be a number",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}], "run_timeout": -5}),
            "run_timeout must be non-negative",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}], "run_timeout": 5.5}),
            "run_timeout cannot be less than 10",
        ),
        (
            json!({"language": "python", "version": "*", "files": [{"content": "x"}], "run_memory_limit": 4096}),
            "run_memory_limit cannot be less than 8388608",
        ),
    ];
    for (body, message) in cases {
        let (status, answer) = call(execute("application/json", body.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(answer["message"], message, "{body}");
    }
}

#[tokio::test]
async fn only_json_and_forms_are_taken() {
    let (status, body) = call(execute("text/plain", "x".into())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["message"], "requests must be of type application/json");
    let (status, body) = call(execute("application/json", "{".into())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().is_some_and(|m| m.contains("JSON")));
    // pistonapi's form: reaches the runtime lookup.
    let form = "language=cobol&version=%2A&files=print%28%29&stdin=".to_owned();
    let (status, body) = call(execute("application/x-www-form-urlencoded", form)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "cobol-* runtime is unknown");
    // Bug hunt: "NaN" parsed as a float and passed every range check.
    for limit in ["run_timeout=NaN", "compile_timeout=inf"] {
        let form = format!("language=python&version=%2A&files=print%28%29&{limit}");
        let (status, body) = call(execute("application/x-www-form-urlencoded", form)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{limit}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("must be a number")),
            "{limit}: {body}"
        );
    }
}

fn packages(method: &str, body: Value) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/api/v2/packages")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

#[tokio::test]
async fn packages_are_the_hosts_runtimes_all_installed() {
    let (status, body) = call(
        Request::get("/api/v2/packages")
            .body(Body::empty())
            .expect("request"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut listed = body.as_array().cloned().expect("a list");
    listed.sort_by_key(|p| p["language"].to_string());
    assert_eq!(
        listed,
        [
            json!({"language": "c++", "language_version": "12.2.0", "installed": true}),
            json!({"language": "python", "language_version": "3.11.2", "installed": true}),
        ]
    );
}

#[tokio::test]
async fn installing_an_installed_package_answers_as_piston_and_nothing_else_exists() {
    let (status, body) = call(packages(
        "POST",
        json!({"language": "python", "version": "3.11.2"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"language": "python", "version": "3.11.2"}));

    for (request, message) in [
        (
            json!({"language": "python", "version": "2.7.18"}),
            "Requested package python-2.7.18 does not exist",
        ),
        (
            json!({"language": "cobol", "version": "1.0.0"}),
            "Requested package cobol-1.0.0 does not exist",
        ),
        (
            json!({"language": "python"}),
            "Requested package python-undefined does not exist",
        ),
    ] {
        let (status, body) = call(packages("POST", request)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["message"], message);
    }

    let (status, body) = call(packages(
        "DELETE",
        json!({"language": "python", "version": "3.11.2"}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"]
        .as_str()
        .is_some_and(|m| m.contains("does not uninstall")));
    let (status, _) = call(packages(
        "DELETE",
        json!({"language": "cobol", "version": "1.0.0"}),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Hunt compat 5: a form content type (curl's `-d`) was read as JSON here, where execute
    // answers Piston's 415 for it.
    for (method, content_type) in [
        ("POST", "application/x-www-form-urlencoded"),
        ("DELETE", "text/plain"),
        ("POST", ""),
    ] {
        let mut request = packages(method, json!({"language": "python", "version": "3.11.2"}));
        request.headers_mut().remove("content-type");
        if !content_type.is_empty() {
            let value = content_type.parse().expect("a header value");
            request.headers_mut().insert("content-type", value);
        }
        let (status, body) = call(request).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}");
        assert_eq!(body["message"], "requests must be of type application/json");
    }
}

/// Bug hunt: a 500 told warden's own failure in its own words (here the helper's path,
/// elsewhere a policy file's); the details belong in the server's log, under the request id
/// the caller is given.
#[tokio::test]
async fn an_internal_errors_details_stay_in_the_log() {
    let body = json!({"language": "python", "version": "3", "files": [{"content": "print(1)"}]});
    let (status, body) = call(execute("application/json", body.to_string())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let said = body["message"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("internal error (request ") && !said.contains("/nonexistent"),
        "{body}"
    );
}
