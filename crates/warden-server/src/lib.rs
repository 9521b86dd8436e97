//! `warden serve`: the execution service. An adapter over `warden-engine`, like the CLI: it
//! parses HTTP requests, admits them (a bounded queue in front of a fixed number of workers),
//! calls the engine on a blocking thread, and renders the answer in the vocabulary of the API
//! that was asked: warden's own (`/v1`), Piston's (`/api/v2`) or Judge0's (the root).

mod admission;
mod auth;
mod body_pace;
mod error;
mod execution_request;
mod jobs;
mod json_body;
pub mod judge0;
mod kept;
mod local_only;
pub mod mcp;
mod mcp_owners;
mod mcp_requests;
mod metrics;
mod openapi;
mod options;
mod outbox;
pub mod piston;
mod quota;
mod resume;
mod routes;
mod send_pace;
mod serve;
mod state;
mod text;
mod toolchains;
mod websocket;

pub use admission::Load;
pub use auth::AuthError;
pub use error::ApiError;
pub use execution_request::{ExecutionBody, FileBody, LimitsBody, ModeBody, TestBody};
pub use jobs::{JobState, JobStatus};
pub use json_body::parse_json_object;
pub use openapi::ApiDoc;
pub use options::{ServerOptions, DEFAULT_LISTEN};
pub use routes::router;
pub use serve::{serve, ServeError};
pub use state::{Api, AppState, Caller, ExecError};

/// What the router tests of the compatible APIs share.
#[cfg(test)]
mod test_support {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::Router;
    use serde_json::Value;
    use tower::ServiceExt;

    /// `app`'s answer to `request`: its status and its body as JSON (`null` when not JSON).
    pub(crate) async fn answer(app: Router, request: Request<Body>) -> (StatusCode, Value) {
        let response = app.oneshot(request).await.expect("answered");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }
}
