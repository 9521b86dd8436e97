//! `GET /v1/openapi.json` (the document) and `GET /docs` (a reference page that renders it).
//! The page is self-contained, a few lines of inline script and style: the server may run on
//! a machine without internet access, so no viewer is fetched from a CDN.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use utoipa::OpenApi;

use crate::openapi::ApiDoc;

/// The reference page.
const PAGE: &str = include_str!("../../assets/docs.html");

/// The OpenAPI 3.1 document, built and serialized once: it never changes while the server
/// runs, and building it took milliseconds (10 in a debug build) of the threads that serve
/// every connection, for a request that needs no token.
pub(crate) async fn openapi() -> Response {
    static DOCUMENT: OnceLock<axum::body::Bytes> = OnceLock::new();
    let document = DOCUMENT.get_or_init(|| {
        serde_json::to_vec(&ApiDoc::openapi())
            .expect("the document serializes: it is made of strings, maps and lists")
            .into()
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.clone(),
    )
        .into_response()
}

/// The reference page.
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}
