//! The own API's handlers through the router (`oneshot`, no socket, no root): bad input gets
//! the documented status and a precise message, authentication, the documents. What runs a
//! program is tested end to end in warden-cli's `tests/serve.rs`.

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use tower::ServiceExt;
use warden_core::TokenConfig;
use warden_engine::{Engine, EngineConfig};
use warden_server::{router, AppState, ServerOptions};

/// An engine that can resolve, analyse and refuse, but has no sandbox helper: nothing runs.
fn app(options: ServerOptions) -> Router {
    let engine = Engine::new(EngineConfig::new(PathBuf::from("/nonexistent/warden")))
        .expect("engine without a sandbox");
    router(AppState::with_options(engine, options))
}

fn with_token() -> ServerOptions {
    ServerOptions {
        tokens: vec![TokenConfig {
            name: "grader".into(),
            token: "s3cret".into(),
            max_concurrent: None,
            requests_per_minute: None,
            admin: false,
        }],
        ..ServerOptions::default()
    }
}

async fn send(app: Router, request: Request<Body>) -> (StatusCode, serde_json::Value, String) {
    let response = app.oneshot(request).await.expect("a response");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (status, json, text)
}

fn post(uri: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).expect("request")
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let (status, json, _) = send(app(with_token()), get("/v1/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["status"], "ok");
    assert!(
        json["load"]["workers"].as_u64().is_some_and(|w| w >= 1),
        "{json}"
    );
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_types_422_with_the_place() {
    let (status, json, _) = send(
        app(ServerOptions::default()),
        post("/v1/executions", "{\"code\":"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    assert_eq!(json["kind"], "request");
    let (status, json, _) = send(
        app(ServerOptions::default()),
        post("/v1/executions", r#"{"code": 5}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains("code")),
        "{json}"
    );
    let (status, json, _) = send(
        app(ServerOptions::default()),
        post(
            "/v1/executions",
            r#"{"code": "x", "limits": {"cpu": "1s"}}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains("cpu")),
        "{json}"
    );
}

/// Regression hunt L4: `"limits": {"memory": 268435456.5}` was refused with serde's `data
/// did not match any variant of untagged enum Raw`; the same value as text said it is not a
/// whole number of bytes. Both say so now, naming the field.
#[tokio::test]
async fn a_fractional_size_is_refused_as_one_naming_its_field() {
    for (limits, why) in [
        (
            r#"{"memory": 268435456.5}"#,
            "268435456.5 is not a whole number of bytes",
        ),
        (
            r#"{"memory": "268435456.5"}"#,
            "\"268435456.5\" is not a whole number of bytes",
        ),
        (
            r#"{"max_output": 1.5}"#,
            "1.5 is not a whole number of bytes",
        ),
        (
            r#"{"max_file_size": -1}"#,
            "-1 is not a size: it is negative",
        ),
    ] {
        let body = format!(r#"{{"language": "python", "code": "x", "limits": {limits}}}"#);
        let (status, json, _) =
            send(app(ServerOptions::default()), post("/v1/executions", body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{limits}: {json}");
        let error = json["error"].as_str().unwrap_or_default();
        let field = limits.split('"').nth(1).unwrap_or_default();
        assert!(
            error.contains(&format!("limits: {field}: {why}")),
            "{limits}: {json}"
        );
    }
}

#[tokio::test]
async fn an_unknown_language_absurd_limits_and_too_many_files_are_422() {
    let (status, json, _) = send(
        app(ServerOptions::default()),
        post("/v1/executions", r#"{"language": "cobol", "code": "x"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains("cobol")),
        "{json}"
    );
    let (status, json, _) = send(
        app(ServerOptions::default()),
        post(
            "/v1/executions",
            r#"{"language": "python", "code": "x", "limits": {"memory": "64TiB"}}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("limits.memory")),
        "{json}"
    );
    let (status, json, _) = send(
        app(ServerOptions::default()),
        post(
            "/v1/executions",
            r#"{"language": "python", "code": "x", "limits": {"cpu_time": "1ms"}}"#,
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "below the sane minimum: {json}"
    );
    let options = ServerOptions {
        max_files: 2,
        ..ServerOptions::default()
    };
    let files: Vec<_> = (0..3)
        .map(|i| serde_json::json!({"name": format!("f{i}.py"), "content": ""}))
        .collect();
    let body = serde_json::json!({ "files": files }).to_string();
    let (status, json, _) = send(app(options), post("/v1/executions", body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("files:")),
        "{json}"
    );
}

/// Issue 10: a dependency that is an installer option or shell text is the caller's mistake,
/// refused before anything runs.
#[tokio::test]
async fn a_malformed_dependency_is_422_with_the_spec() {
    for (spec, why) in [
        ("-r /etc/passwd", "installer options are not allowed"),
        ("a;b", "only letters"),
    ] {
        let body = serde_json::json!({"language": "python", "code": "x", "dependencies": [spec]});
        let (status, json, _) = send(
            app(ServerOptions::default()),
            post("/v1/executions", body.to_string()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        let error = json["error"].as_str().unwrap_or_default();
        assert!(error.contains(spec) && error.contains(why), "{json}");
    }
}

#[tokio::test]
async fn a_body_over_the_cap_is_413() {
    let options = ServerOptions {
        max_body: 1024,
        ..ServerOptions::default()
    };
    // Every API said axum's "Failed to buffer the request body: length limit
    // exceeded", naming neither the limit nor its setting. Each says both now, in its shape,
    // for a body that grew past the cap and for one announced so by its `Content-Length`.
    const SAID: &str =
        "the request body is larger than the server takes (1024 bytes, [server] max_body)";
    let announced = |request: Request<Body>, length: usize| {
        let (mut parts, body) = request.into_parts();
        parts.headers.insert(
            "content-length",
            length.to_string().parse().expect("a value"),
        );
        Request::from_parts(parts, body)
    };
    let body = serde_json::json!({ "code": "#".repeat(4096) }).to_string();
    let length = body.len();
    for uri in ["/v1/executions", "/v1/tools/wc/call"] {
        for request in [
            post(uri, body.clone()),
            announced(post(uri, body.clone()), length),
        ] {
            let (status, json, text) = send(app(options.clone()), request).await;
            assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {text}");
            assert_eq!(json["error"], SAID, "{uri}: {text}");
            assert_eq!(json["kind"], "request", "{uri}: {text}");
        }
    }
    // Bug hunt: the compatible APIs answered it in axum's plain text.
    let judge0 = serde_json::json!({ "language_id": 71, "source_code": "#".repeat(4096) });
    for uri in ["/submissions", "/submissions/batch"] {
        let (status, json, text) = send(app(options.clone()), post(uri, judge0.to_string())).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}: {text}");
        assert_eq!(json["error"], SAID, "{uri}: {text}");
    }
    let piston = serde_json::json!({
        "language": "python", "version": "*", "files": [{ "content": "#".repeat(4096) }]
    })
    .to_string();
    let length = piston.len();
    for request in [
        post("/api/v2/execute", piston.clone()),
        announced(post("/api/v2/execute", piston), length),
    ] {
        let (status, json, text) = send(app(options.clone()), request).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
        assert_eq!(json["message"], SAID, "{text}");
    }
    // MCP's answer is rmcp's plain text, which says the bytes; the setting too now.
    let mcp = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("content-length", length.to_string())
        .body(Body::from("#".repeat(length)))
        .expect("request");
    let (status, _, text) = send(app(options), mcp).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(
        text.ends_with("exceeds 1024 bytes ([server] max_body)"),
        "{text}"
    );
}

#[tokio::test]
async fn the_own_api_needs_a_bearer_token_when_tokens_are_configured() {
    let body = r#"{"language": "cobol", "code": "x"}"#;
    let (status, json, _) = send(app(with_token()), post("/v1/executions", body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(json["kind"], "unauthorized");
    let wrong = Request::post("/v1/executions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer nope")
        .body(Body::from(body))
        .expect("request");
    assert_eq!(
        send(app(with_token()), wrong).await.0,
        StatusCode::UNAUTHORIZED
    );
    let right = Request::post("/v1/executions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer s3cret")
        .body(Body::from(body))
        .expect("request");
    // Authenticated: now the language is what is wrong.
    assert_eq!(
        send(app(with_token()), right).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn batches_are_capped_and_answer_per_item() {
    let options = ServerOptions {
        max_batch: 2,
        ..ServerOptions::default()
    };
    let item = serde_json::json!({"language": "cobol", "code": "x"});
    let three = serde_json::json!({ "executions": [item, item, item] }).to_string();
    let (status, json, _) = send(app(options.clone()), post("/v1/batch", three)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    let two =
        serde_json::json!({ "executions": [item, {"code": "x", "limits": {"memory": "64TiB"}}] });
    let (status, json, _) = send(app(options), post("/v1/batch", two.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["results"][0]["status"], 422);
    assert!(json["results"][1]["error"]["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("limits.memory")));
}

/// Bug hunt: a batch of millions of `{}` was parsed whole, on the thread serving
/// connections, before its length was compared with `max_batch`: seconds during which no other
/// client was answered. Its length is checked as it is read now: the item past `max_batch`
/// refuses it, and what follows is never parsed (here, a body cut short).
#[tokio::test]
async fn a_batch_is_refused_at_the_item_past_max_batch() {
    let options = ServerOptions {
        max_batch: 2,
        ..ServerOptions::default()
    };
    let cut_short = r#"{"executions": [{}, {}, {}, {"language": "#;
    let (status, json, text) = send(app(options.clone()), post("/v1/batch", cut_short)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert_eq!(
        json["error"], "executions: more than 2 in one batch, at most 2 are accepted",
        "{text}"
    );
    // Within the bound, the body is read as before: a malformed one is a 400.
    let (status, _, text) = send(app(options), post("/v1/batch", r#"{"executions": [{}, "#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
}

#[tokio::test]
async fn unknown_jobs_are_404_and_languages_are_listed() {
    let (status, _, _) = send(app(ServerOptions::default()), get("/v1/executions/abc")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, json, _) = send(app(ServerOptions::default()), get("/v1/languages")).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<_> = json
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|l| l["id"].as_str())
        .collect();
    assert!(ids.contains(&"python") && ids.contains(&"cpp"), "{ids:?}");
}

#[tokio::test]
async fn the_openapi_document_and_the_reference_page_are_served() {
    let (status, json, _) = send(app(ServerOptions::default()), get("/v1/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(json["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    let (status, _, text) = send(app(ServerOptions::default()), get("/docs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text.contains("/v1/openapi.json") && !text.contains("https://"),
        "self-contained"
    );
}

/// Bug hunt: without tokens, `/mcp` refused the loopback names `/v1` takes (`foo.localhost`),
/// rmcp's own Host list being narrower than the server's guard; a name that is not loopback
/// is still refused, by the guard.
#[tokio::test]
async fn mcp_takes_the_loopback_names_the_rest_of_the_api_takes() {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let request = |host: &str| {
        Request::post("/mcp")
            .header("host", host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(init))
            .expect("request")
    };
    let app = || app(ServerOptions::default());
    let (status, _, text) = send(app(), request("foo.localhost:2358")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let (status, _, text) = send(app(), request("evil.example:2358")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{text}");
}

/// A `POST /mcp` of `body` in `session`, as a streamable HTTP client sends it.
fn mcp_post(session: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request.body(Body::from(body.to_owned())).expect("request")
}

/// An MCP session of `app`, initialized.
async fn mcp_session(app: &Router) -> String {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let response = app
        .clone()
        .oneshot(mcp_post(None, init))
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let (status, _, text) = send(app.clone(), mcp_post(Some(&session), initialized)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    session
}

/// Regression hunt: over `/mcp` a request re-using the id of one the client had just
/// cancelled was refused as a duplicate (-32600) until the cancelled request's event stream
/// ended, where over stdio it runs. The id is free again as soon as rmcp took the cancel;
/// until then, or without a cancel, a second request with it is still refused.
#[tokio::test]
async fn mcp_a_cancelled_id_is_free_again_at_once() {
    let app = app(ServerOptions::default());
    let session = mcp_session(&app).await;
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"shell","arguments":{"command":"sleep 30"}}}"#;
    // Its event stream is held unread: the request stays in flight.
    let first = app
        .clone()
        .oneshot(mcp_post(Some(&session), call))
        .await
        .expect("a response");
    let ping = r#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#;
    let (_, json, text) = send(app.clone(), mcp_post(Some(&session), ping)).await;
    assert_eq!(json["error"]["code"], -32600, "{text}");
    // Bug hunt: written as a float, the id passed the check (rmcp reads `7.0` as 7).
    let float = r#"{"jsonrpc":"2.0","id":7.0,"method":"ping"}"#;
    let (_, json, text) = send(app.clone(), mcp_post(Some(&session), float)).await;
    assert_eq!(json["error"]["code"], -32600, "{text}");
    let cancel = r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}}"#;
    let (status, _, text) = send(app.clone(), mcp_post(Some(&session), cancel)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{text}");
    let (status, _, text) = send(app.clone(), mcp_post(Some(&session), ping)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains(r#""id":7,"result""#), "{text}");
    // The cancelled request's stream ending later frees nothing of the new one's: it was
    // answered, and 7 is free; a request in flight still keeps its id to itself.
    drop(first);
    let second = app
        .clone()
        .oneshot(mcp_post(Some(&session), call))
        .await
        .expect("a response");
    let (_, json, text) = send(app.clone(), mcp_post(Some(&session), ping)).await;
    assert_eq!(json["error"]["code"], -32600, "{text}");
    drop(second);
}

/// Bug hunt: a key given twice in a nested object of a body (a test case's `stdin`, a
/// volume's `name`) was taken with its last value, where the same key twice at the top is
/// refused: both are refused now, naming the key.
#[tokio::test]
async fn a_key_given_twice_is_refused_at_any_depth() {
    let bodies = [
        r#"{"language":"bash","code":"cat","code":"echo"}"#,
        r#"{"language":"bash","code":"cat","tests":[{"stdin":"1","stdin":"2","expected_output":"2"}]}"#,
        r#"{"language":"bash","code":"cat","limits":{"memory":"64MiB","memory":"128MiB"}}"#,
        r#"{"language":"bash","code":"cat","volumes":[{"name":"a","name":"b","path":"/data"}]}"#,
        r#"{"language":"bash","files":[{"name":"a.sh","content":"x","content":"y"}]}"#,
    ];
    for body in bodies {
        let (status, json, text) =
            send(app(ServerOptions::default()), post("/v1/executions", body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {text}");
        assert!(
            json["error"]
                .as_str()
                .is_some_and(|e| e.contains("duplicate")),
            "{body}: {text}"
        );
    }
    let call = r#"{"command":"true","limits":{"wall_time":"1s","wall_time":"2s"}}"#;
    let (status, _, text) = send(
        app(ServerOptions::default()),
        post("/v1/sessions/nosuch/exec", call),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let batch =
        r#"{"executions":[{"language":"bash","code":"cat","tests":[{"stdin":"1","stdin":"2"}]}]}"#;
    let (status, json, text) = send(app(ServerOptions::default()), post("/v1/batch", batch)).await;
    let refused = status == StatusCode::UNPROCESSABLE_ENTITY || json["results"][0]["status"] == 422;
    assert!(refused, "{text}");
}

/// Bug hunt: `PUT /v1/sessions/{id}/file?path=%ff%fe` wrote a file named U+FFFD U+FFFD: the
/// query was decoded with invalid UTF-8 replaced. A path that is not UTF-8 is refused, by
/// every file operation, before the session is looked up.
#[tokio::test]
async fn a_file_path_that_is_not_utf8_is_refused() {
    let uri = "/v1/sessions/nosuch/file?path=%ff%fe";
    let put = Request::put(uri).body(Body::from("x")).expect("request");
    let (status, json, text) = send(app(ServerOptions::default()), put).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        json["error"].as_str().is_some_and(|e| e.contains("UTF-8")),
        "{text}"
    );
    for uri in [uri, "/v1/sessions/nosuch/files?path=a%80"] {
        let (status, _, text) = send(app(ServerOptions::default()), get(uri)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {text}");
    }
    let delete = Request::delete(uri).body(Body::empty()).expect("request");
    let (status, _, text) = send(app(ServerOptions::default()), delete).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    // Encoded UTF-8, and an encoded U+FFFD itself, are names like any other.
    let (status, _, text) = send(
        app(ServerOptions::default()),
        get("/v1/sessions/nosuch/file?path=%C3%A9%EF%BF%BD"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
}

/// Bug hunt: a body `/mcp` could not parse (JSON nested too deep, cut short) was answered 415
/// in plain text by rmcp, as if its content type were wrong: it is a JSON-RPC parse error
/// now, 400.
#[tokio::test]
async fn mcp_answers_a_body_it_cannot_parse_with_a_json_rpc_parse_error() {
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    for body in [deep.as_str(), r#"{"a":"#] {
        let request = Request::post("/mcp")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(body.to_owned()))
            .expect("request");
        let (status, json, text) = send(app(ServerOptions::default()), request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        assert_eq!(json["jsonrpc"], "2.0", "{text}");
        assert_eq!(json["error"]["code"], -32700, "{text}");
        assert!(json["id"].is_null(), "{text}");
    }
    // A content type that is not JSON is still rmcp's 415.
    let request = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "text/plain")
        .header("accept", "application/json, text/event-stream")
        .body(Body::from("{}"))
        .expect("request");
    let (status, _, text) = send(app(ServerOptions::default()), request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
}

/// Bug hunt (net, finding 3): a request naming a network policy of 100,000 bytes got a 403
/// quoting all of it, a 100 kB answer. The name is cut in the message, its length said, in
/// every resource that takes one. No policy can have such a name, so it is refused as a bad
/// name (422) before the configuration's `allowed` list is looked at (docs, finding 1).
#[tokio::test]
async fn a_refused_network_policy_name_is_cut_in_the_answer() {
    let name = "a".repeat(100_000);
    for (uri, body) in [
        (
            "/v1/executions",
            serde_json::json!({"language": "python", "code": "print(1)", "network": name}),
        ),
        ("/v1/sessions", serde_json::json!({"network": name})),
    ] {
        let (status, json, text) =
            send(app(ServerOptions::default()), post(uri, body.to_string())).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {}",
            &text[..200]
        );
        let error = json["error"].as_str().unwrap_or_default();
        assert!(text.len() < 1024, "{uri}: {} bytes", text.len());
        assert!(
            error.contains(&format!("\"{}\"… (100000 bytes)", "a".repeat(64)))
                && error.contains("use 1 to 64 lowercase letters"),
            "{uri}: {error}"
        );
    }
}

/// Regression (hunt net 7): a policy file the operator left broken in the policy directory,
/// named by a request, answered 422 `request` with the server's path (`level = 5`), and a
/// misnamed one 500: neither is the caller's to fix. Both are warden's side (500 `internal`),
/// the path in the server's log, not in the answer.
#[tokio::test]
async fn a_broken_policy_file_is_the_servers_fault_and_its_path_stays_in_the_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let head = "level = \"limited\"\ndefault_action = \"deny\"\n";
    std::fs::write(
        dir.path().join("yy.toml"),
        "name = \"yy\"\nlevel = 5\ndefault_action = \"deny\"\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("zz.toml"),
        format!("name = \"other\"\n{head}"),
    )
    .expect("write");
    let app = || {
        let mut config = EngineConfig::new(PathBuf::from("/nonexistent/warden"));
        config.network = Some(warden_engine::settings::NetworkSettings {
            policy_dir: dir.path().to_owned(),
            allowed: vec!["no_access".into(), "yy".into(), "zz".into()],
            default: "no_access".into(),
            mode_default: Default::default(),
            registries: Vec::new(),
        });
        let engine = Engine::new(config).expect("engine without a sandbox");
        router(AppState::with_options(engine, ServerOptions::default()))
    };
    for name in ["yy", "zz"] {
        for (uri, body) in [
            (
                "/v1/executions",
                serde_json::json!({"language": "python", "code": "print(1)", "network": name}),
            ),
            ("/v1/sessions", serde_json::json!({"network": name})),
        ] {
            let (status, json, text) = send(app(), post(uri, body.to_string())).await;
            assert_eq!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{uri} {name}: {text}"
            );
            assert_eq!(json["kind"], "internal", "{uri} {name}: {text}");
            let shown = dir.path().to_string_lossy();
            assert!(!text.contains(&*shown), "{uri} {name}: {text}");
        }
    }
}

/// Bug hunt: Judge0's Internal Error (status 13) told warden's own failure in its own words
/// (here the helper's path, elsewhere a policy file's), where the own API gives a request id
/// and keeps the details in the server's log. Piston's 500: its own router test.
#[tokio::test]
async fn judge0_keeps_an_internal_errors_details_in_the_log() {
    let body = serde_json::json!({ "language_id": 71, "source_code": "print(1)" });
    let (status, json, text) = send(
        app(ServerOptions::default()),
        post("/submissions?wait=true", body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert_eq!(json["status"]["id"], 13, "{text}");
    let said = json["message"].as_str().unwrap_or_default();
    assert!(
        said.starts_with("internal error (request ") && !text.contains("/nonexistent"),
        "{text}"
    );
}
