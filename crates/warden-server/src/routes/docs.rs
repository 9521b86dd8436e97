//! `GET /v1/openapi.json` (the document) and `GET /docs` (a reference page that renders it).
//! The page is self-contained, a few lines of inline script and style: the server may run on
//! a machine without internet access, so no viewer is fetched from a CDN.

use axum::response::Html;
use axum::Json;
use utoipa::OpenApi;

use crate::openapi::ApiDoc;

/// The reference page.
const PAGE: &str = include_str!("../../assets/docs.html");

/// The OpenAPI 3.1 document.
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The reference page.
pub(crate) async fn page() -> Html<&'static str> {
    Html(PAGE)
}
