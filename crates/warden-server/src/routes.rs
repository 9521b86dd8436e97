//! The own API's routes under `/v1`, the OpenAPI document and the reference page; one module
//! per resource. The compatible APIs (`piston*.rs`, `judge0*.rs`) add their own routes to the
//! router built here.

pub(crate) mod batch;
pub(crate) mod connect;
pub(crate) mod docs;
pub(crate) mod executions;
pub(crate) mod health;
pub(crate) mod history;
pub(crate) mod languages;
pub(crate) mod sessions;
pub(crate) mod stream;
pub(crate) mod tools;
pub(crate) mod volumes;

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

use crate::error::ApiError;
use crate::state::{Api, AppState, Caller};

/// The own API, its documents, and a body cap for every route.
pub fn router(state: AppState) -> Router {
    let max_body = state.options().max_body;
    Router::new()
        .route("/v1/executions", post(executions::create))
        .route("/v1/executions/stream", post(stream::create))
        .route("/v1/executions/connect", get(connect::connect))
        .route(
            "/v1/executions/{id}",
            get(executions::status).delete(executions::delete),
        )
        .route("/v1/batch", post(batch::create))
        .route("/v1/languages", get(languages::list))
        .route("/v1/health", get(health::health))
        .route("/v1/ready", get(health::ready))
        .route("/v1/stats", get(history::stats))
        .route("/v1/history", get(history::list))
        .route("/v1/tools", get(tools::list).post(tools::register))
        .route("/v1/tools/stats", get(tools::stats))
        .route("/v1/tools/{name}", get(tools::get).delete(tools::remove))
        .route("/v1/tools/{name}/call", post(tools::call))
        .route("/v1/sessions", get(sessions::list).post(sessions::create))
        .route(
            "/v1/sessions/{id}",
            get(sessions::get).delete(sessions::remove),
        )
        .route("/v1/sessions/{id}/exec", post(sessions::exec))
        .route("/v1/sessions/{id}/connect", get(connect::connect_session))
        .route("/v1/sessions/{id}/files", get(sessions::list_files))
        .route(
            "/v1/sessions/{id}/file",
            get(sessions::download)
                .put(sessions::upload)
                .delete(sessions::delete_file),
        )
        .route("/v1/volumes", get(volumes::list).post(volumes::create))
        .route("/v1/volumes/prune", post(volumes::prune))
        .route(
            "/v1/volumes/{name}",
            get(volumes::get).delete(volumes::remove),
        )
        .route("/v1/openapi.json", get(docs::openapi))
        .route("/metrics", get(crate::metrics::metrics))
        .route("/docs", get(docs::page))
        .merge(mcp_routes(&state))
        .merge(crate::piston::routes())
        .merge(crate::judge0::routes())
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::body_pace::pace,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::local_only::guard,
        ))
        .with_state(state)
}

/// `/mcp`: the tool registry over MCP's streamable HTTP (docs/mcp.md), authenticated like
/// the own API. rmcp caps the body itself (`DefaultBodyLimit` does not reach a service).
fn mcp_routes(state: &AppState) -> Router<AppState> {
    let options = crate::mcp::HttpOptions {
        // rmcp's own Host check is left open: the server's guard (`local_only.rs`) holds every
        // route, `/mcp` included, to loopback names when there are no tokens, and takes the
        // same names everywhere (rmcp's list refused `foo.localhost`, which `/v1` takes).
        allowed_hosts: Vec::new(),
        max_body: state.options().max_body,
        shutdown: state.mcp_shutdown().clone(),
        idle: crate::mcp::HttpOptions::default().idle,
        on_closed: Some(crate::mcp::SessionClosed({
            let state = state.clone();
            std::sync::Arc::new(move |id: &str| state.mcp_owners().ended(id))
        })),
    };
    let tools = std::sync::Arc::new(crate::mcp::ServerTools {
        state: state.clone(),
    });
    Router::new()
        .route_service("/mcp", crate::mcp::http_service(tools, options))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            mcp_auth,
        ))
}

/// Authenticates an MCP request and hands its caller to the MCP server.
async fn mcp_auth(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    const SESSION: &str = "mcp-session-id";
    match state.authenticate(request.headers(), Api::Mcp) {
        // Refused before it is read, in rmcp's words for a body past its cap: rmcp reads the
        // body itself, and would answer the refusal the server's layer stands it for as a
        // failed read (500).
        Ok(_) if crate::body_pace::announced_over(request.headers(), state.options().max_body) => {
            let max = state.options().max_body;
            (
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: request body exceeds {max} bytes ([server] max_body)"),
            )
                .into_response()
        }
        Ok(caller) => {
            let mut session = request
                .headers()
                .get(SESSION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            // Another token's session is not found: it may neither use nor end it, nor tell it
            // from an unknown one. Its request goes on naming a session no one has, so that it
            // is answered as an unknown session's, by rmcp and along the same path. A `DELETE`
            // of a session not the caller's, or unknown (rmcp accepts that one with 202), is
            // answered 404 here, in rmcp's words for an unknown session.
            if let Some(id) = &session {
                let token = caller.token.as_deref();
                if request.method() == axum::http::Method::DELETE
                    && !state.mcp_owners().owns(id, token)
                {
                    return session_not_found();
                }
                if !state.mcp_owners().may_use(id, token) {
                    request.headers_mut().insert(
                        SESSION,
                        axum::http::HeaderValue::from_static(FOREIGN_SESSION),
                    );
                    session = Some(FOREIGN_SESSION.to_owned());
                }
            }
            let method = request.method().clone();
            // A GET is the session's event stream, open until the client leaves; a request's
            // POST, an event stream open until its answer: each a place among the caller's
            // long-lived connections, held while the stream lasts.
            let mut cancels = None;
            // An `initialize`'s place among the caller's sessions, until rmcp's answer names
            // the session (or gives it back, dropped, when none opened).
            let mut opening = None;
            let stream = match method {
                axum::http::Method::GET => match state.hold_stream(&caller) {
                    Ok(permit) => Some((permit, None, None)),
                    Err(e) => return ApiError::from(e).into_response(),
                },
                axum::http::Method::POST => {
                    match admit_post(&state, &caller, session.as_deref(), request).await {
                        Ok(Admitted::Post(read, held, opens)) => {
                            request = read;
                            opening = opens;
                            held
                        }
                        Ok(Admitted::Cancel(read, id)) => {
                            request = read;
                            cancels = Some(id);
                            None
                        }
                        Err(answer) => return answer,
                    }
                }
                _ => None,
            };
            request
                .extensions_mut()
                .insert(crate::mcp::McpCaller(caller.token.clone()));
            let delete = request.method() == axum::http::Method::DELETE;
            let json = method == axum::http::Method::POST && is_json(request.headers());
            let mut response = next.run(request).await;
            // rmcp took the cancel (202): the request is no longer in flight, its id free again
            // (`mcp_requests.rs`). Only now, so that a request of the same id comes to rmcp
            // after the cancel, never before it.
            if let (Some(id), Some(session)) = (&cancels, &session) {
                if response.status().is_success() {
                    state.mcp_requests().cancelled(session, id);
                }
            }
            // rmcp's 415 for a JSON body is its failure to parse it.
            if json && response.status() == axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE {
                return parse_error(response).await;
            }
            match (&session, response.headers().get(SESSION)) {
                (None, Some(opened)) => {
                    if let Ok(id) = opened.to_str() {
                        match opening.take() {
                            Some(opening) => opening.opened(id),
                            None => state.mcp_owners().opened(id, caller.token),
                        }
                    }
                }
                (Some(id), _) if delete && response.status().is_success() => {
                    state.mcp_owners().ended(id);
                }
                _ => {}
            }
            // rmcp accepts a session's DELETE with 202; clients (the Python SDK) expect the
            // 200 of a completed request.
            if delete && response.status() == axum::http::StatusCode::ACCEPTED {
                *response.status_mut() = axum::http::StatusCode::OK;
            }
            match stream {
                Some(held) => response.map(|body| {
                    let chunks = tokio_stream::StreamExt::map(body.into_data_stream(), move |c| {
                        let _held = &held;
                        c
                    });
                    axum::body::Body::from_stream(chunks)
                }),
                None => response,
            }
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// rmcp's answer to a request naming a session it does not have: 404, its text, no content
/// type.
fn session_not_found() -> axum::response::Response {
    let mut response =
        axum::response::Response::new(axum::body::Body::from("Not Found: Session not found"));
    *response.status_mut() = axum::http::StatusCode::NOT_FOUND;
    response
}

/// The session id another token's session is replaced with: none rmcp hands out (its ids
/// are UUIDs).
const FOREIGN_SESSION: &str = "not-a-session";

/// What a `POST /mcp` holds while its answer streams: a place among the caller's long-lived
/// connections, its request's id among those in flight in its session, and its count among
/// the answers shutdown waits for.
type PostHeld = (
    crate::quota::StreamPermit,
    Option<crate::mcp_requests::Flying>,
    Option<crate::mcp_requests::Answer>,
);

/// A `POST /mcp` let through, its body read.
enum Admitted {
    /// A request, with what it holds while its answer streams; or a notification or a
    /// response (nothing held).
    Post(
        axum::extract::Request,
        Option<PostHeld>,
        Option<crate::mcp_owners::Opening>,
    ),
    /// A cancel of the request of this id (compact JSON), which is free again once rmcp has
    /// taken the cancel.
    Cancel(axum::extract::Request, String),
}

/// Reads a `POST /mcp`'s body (rmcp would read it whole all the same) to tell a request from
/// a notification: a request whose id is in flight in its session is answered `-32600` at
/// once (`mcp_requests.rs`), and every other request takes a place among the caller's
/// long-lived connections (429 past them), as its event stream stays open until its answer.
/// A notification or a response takes none, so that a client at its limit can still cancel.
async fn admit_post(
    state: &AppState,
    caller: &Caller,
    session: Option<&str>,
    request: axum::extract::Request,
) -> Result<Admitted, axum::response::Response> {
    use crate::mcp_requests::{duplicate_id, Message};
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let max = state.options().max_body;
    let body = axum::body::to_bytes(body, max).await.map_err(|e| {
        // In rmcp's words and statuses for a body it could not read.
        let inner = e.into_inner();
        if inner.is::<http_body_util::LengthLimitError>() {
            let said =
                format!("Payload Too Large: request body exceeds {max} bytes ([server] max_body)");
            (axum::http::StatusCode::PAYLOAD_TOO_LARGE, said).into_response()
        } else {
            let said = format!("Failed to read request body: {inner}");
            (axum::http::StatusCode::INTERNAL_SERVER_ERROR, said).into_response()
        }
    })?;
    let message = Message::of(&body);
    let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(body));
    let mut opening = None;
    let flying = match (message, session) {
        (Message::Other, _) => return Ok(Admitted::Post(request, None, None)),
        (Message::Cancel { id }, _) => return Ok(Admitted::Cancel(request, id)),
        (Message::Request { id, .. }, Some(session)) => {
            match state.mcp_requests().start(session, &id) {
                Some(flying) => Some(flying),
                None => return Err(axum::Json(duplicate_id(&id)).into_response()),
            }
        }
        // An `initialize` without a session opens one (rmcp opens one for nothing else):
        // bounded per caller and charged to its rate, as sessions cost memory until they idle
        // out. Other requests without a session (`ping`, a request of the handshake-free
        // revision) open none, and are not counted as sessions.
        (
            Message::Request {
                initialize: true, ..
            },
            None,
        ) => {
            opening = Some(
                state
                    .open_mcp_session(caller)
                    .map_err(|e| ApiError::from(e).into_response())?,
            );
            None
        }
        _ => None,
    };
    let place = state
        .stream_place(caller)
        .map_err(|e| ApiError::from(e).into_response())?;
    Ok(Admitted::Post(
        request,
        Some((place, flying, Some(state.mcp_answering().start()))),
        opening,
    ))
}

/// Whether `headers` say the body is JSON, as rmcp checks it (`application/json`, any
/// parameters).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// JSON-RPC's parse error (-32700, 400, `id` null) for a body rmcp could not read as a message
/// (JSON nested deeper than serde_json reads, cut short, not a JSON-RPC message), which rmcp
/// answers 415 in plain text, as it answers a body that is not JSON at all; its reason is
/// kept.
async fn parse_error(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse;
    let said = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let reason = said
        .strip_prefix("fail to deserialize request body ")
        .unwrap_or(&said);
    let error = serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": -32700, "message": format!("Parse error: {reason}")},
    });
    (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response()
}

/// Runs `work` on the engine on a blocking thread: what a route that reads the history or the
/// registry does, so that SQLite and file reads stay off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &AppState,
    work: impl FnOnce(&warden_engine::Engine) -> T + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || work(state.engine()))
        .await
        .map_err(|_| ApiError::from(crate::state::ExecError::Worker))
}

/// The caller of an own-API route, authenticated by its bearer token.
#[derive(Debug)]
pub(crate) struct V1Caller(pub(crate) Caller);

impl FromRequestParts<AppState> for V1Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(state.authenticate(&parts.headers, Api::Own)?))
    }
}
