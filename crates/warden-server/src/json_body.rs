//! Request bodies that must be JSON objects. serde fills a struct from a JSON array too (its
//! fields in order), which the OpenAPI document does not allow and a client never means: an
//! array where an object belongs is refused here, at the top and in the nested fields that use
//! [`object`] and [`objects`].

use axum::extract::{FromRequest, Request};
use axum::Json;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ApiError;

/// A JSON object deserialized into `T` (axum's `Json` rules for content type and size apply).
#[derive(Debug)]
pub(crate) struct JsonObject<T>(pub(crate) T);

/// [`JsonObject`], with the body as sent (what is kept to run it again after a restart).
#[derive(Debug)]
pub(crate) struct JsonObjectAsSent<T>(pub(crate) T, pub(crate) axum::body::Bytes);

impl<S, T> FromRequest<S> for JsonObject<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let JsonObjectAsSent(body, _) = JsonObjectAsSent::from_request(request, state).await?;
        Ok(JsonObject(body))
    }
}

impl<S, T> FromRequest<S> for JsonObjectAsSent<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let json = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            });
        if !json {
            return Err(ApiError {
                status: axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                kind: "request",
                message: "Expected request with `Content-Type: application/json`".to_owned(),
                retry_after: None,
            });
        }
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| ApiError {
                status: e.status(),
                kind: "request",
                message: e.body_text(),
                retry_after: None,
            })?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            let value: Result<Value, _> = serde_json::from_slice(&bytes);
            if let Ok(value) = value {
                return Err(ApiError::unprocessable(format!(
                    "the body must be a JSON object, not {}",
                    kind(&value)
                )));
            }
        }
        // axum's own rules from here: 400 for malformed JSON, 422 naming the field for a
        // wrong type or an unknown field.
        let Json(body) = Json::<T>::from_bytes(&bytes)?;
        Ok(JsonObjectAsSent(body, bytes))
    }
}

/// A nested struct field that must be a JSON object.
pub(crate) fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let value = Value::deserialize(d)?;
    if !value.is_object() {
        return Err(D::Error::custom(format!(
            "expected an object, found {}",
            kind(&value)
        )));
    }
    serde_json::from_value(value).map_err(D::Error::custom)
}

/// A list of structs, each of which must be a JSON object.
pub(crate) fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    Vec::<Value>::deserialize(d)?
        .into_iter()
        .map(|value| {
            if value.is_object() {
                serde_json::from_value(value).map_err(D::Error::custom)
            } else {
                Err(D::Error::custom(format!(
                    "expected an object, found {}",
                    kind(&value)
                )))
            }
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        a: u32,
    }

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(deserialize_with = "object")]
        #[allow(dead_code)]
        one: Inner,
        #[serde(deserialize_with = "objects")]
        #[allow(dead_code)]
        many: Vec<Inner>,
    }

    #[test]
    fn arrays_where_objects_belong_are_refused() {
        let ok: Result<Outer, _> = serde_json::from_str(r#"{"one":{"a":1},"many":[{"a":2}]}"#);
        assert!(ok.is_ok(), "{ok:?}");
        let as_array: Result<Outer, _> = serde_json::from_str(r#"{"one":[1],"many":[]}"#);
        assert!(as_array.is_err());
        let item_array: Result<Outer, _> = serde_json::from_str(r#"{"one":{"a":1},"many":[[2]]}"#);
        assert!(item_array.is_err());
        // What serde alone accepts:
        let plain: Result<Inner, _> = serde_json::from_str("[3]");
        assert!(plain.is_ok());
    }
}
