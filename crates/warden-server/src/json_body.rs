//! Request bodies that must be JSON objects. serde fills a struct from a JSON array too (its
//! fields in order), which the OpenAPI document does not allow and a client never means: an
//! array where an object belongs is refused here, at the top and in the nested fields that use
//! [`object`] and [`objects`]. A key given twice in any object of the body is refused too
//! ([`duplicate_key`]): a struct read straight from the body refuses it, but one read through
//! a `serde_json::Value` (every nested object here) or a map took its last value.

use axum::extract::{FromRequest, Request};
use axum::Json;
use serde::de::{DeserializeOwned, DeserializeSeed as _, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ApiError;

/// A JSON object deserialized into `T` (axum's `Json` rules for content type and size apply).
#[derive(Debug)]
pub(crate) struct JsonObject<T>(pub(crate) T);

/// [`JsonObject`], with the body as sent (what is kept to run it again after a restart).
#[derive(Debug)]
pub(crate) struct JsonObjectAsSent<T>(pub(crate) T, pub(crate) axum::body::Bytes);

/// A JSON body as sent, read but not parsed (axum's `Json` rules for content type and size
/// apply), for a handler that checks it before parsing it ([`more_items_than`]).
#[derive(Debug)]
pub(crate) struct JsonBytes(pub(crate) axum::body::Bytes);

/// A body up to this size is parsed on the connection's thread: it costs microseconds. A
/// larger one (up to `max_body`, 8 MiB by default) is parsed on a blocking thread: a body of
/// millions of small items took seconds to parse, during which the thread answered no other
/// connection (`io_threads` is one on a 2-core host).
const PARSED_IN_PLACE: usize = 64 << 10;

impl<S, T> FromRequest<S> for JsonObject<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send + 'static,
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
    T: DeserializeOwned + Send + 'static,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let JsonBytes(bytes) = JsonBytes::from_request(request, state).await?;
        let sent = bytes.clone();
        let body = off_thread_if_large(bytes.len(), move || parse_json_object(&sent)).await?;
        Ok(JsonObjectAsSent(body, bytes))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
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
            .map_err(ApiError::from)?;
        Ok(JsonBytes(bytes))
    }
}

/// `parse`'s answer, computed on a blocking thread when the body is larger than
/// [`PARSED_IN_PLACE`] (`size` bytes), in place otherwise.
pub(crate) async fn off_thread_if_large<T: Send + 'static>(
    size: usize,
    parse: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if size <= PARSED_IN_PLACE {
        return parse();
    }
    tokio::task::spawn_blocking(parse)
        .await
        .map_err(|e| ApiError::internal(&e))?
}

/// `value` as a JSON answer (200), serialized on a blocking thread: a result carries the
/// output, up to gigabytes of JSON (docs/server.md), which `Json` serialized on the thread
/// that serves every connection (one `GET` of a big job stalled every other client for
/// seconds).
pub(crate) async fn json_answer<T: serde::Serialize + Send + 'static>(
    value: T,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let bytes = tokio::task::spawn_blocking(move || serde_json::to_vec(&value))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|e| ApiError::internal(&e))?;
    let json = axum::http::HeaderValue::from_static("application/json");
    Ok(([(axum::http::header::CONTENT_TYPE, json)], bytes).into_response())
}

/// Whether the array under `key` in the JSON object `json` has more than `most` items, read
/// no further than the item past `most`: a body of millions of items is refused for its
/// length before they are parsed. `false` when `json` is not such an object (its parse then
/// says what is wrong).
pub(crate) fn more_items_than(json: &[u8], key: &str, most: usize) -> bool {
    let mut reader = serde_json::Deserializer::from_slice(json);
    let counted = Counted { key, most }.deserialize(&mut reader);
    counted.is_err_and(|e| e.is_data() && e.to_string().starts_with(TOO_MANY))
}

/// The error that stops [`Counted`] at the item past its bound.
const TOO_MANY: &str = "more items than the bound";

/// An object whose array under `key` may have at most `most` items; nothing of it is kept.
#[derive(Clone, Copy)]
struct Counted<'k> {
    key: &'k str,
    most: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Counted<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Counted<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == self.key {
                map.next_value_seed(Items(self.most))?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// An array of at most `.0` items, each passed over.
struct Items(usize);

impl<'de> serde::de::DeserializeSeed<'de> for Items {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Items {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let mut count = 0usize;
        while items.next_element::<serde::de::IgnoredAny>()?.is_some() {
            count += 1;
            if count > self.0 {
                return Err(A::Error::custom(TOO_MANY));
            }
        }
        Ok(())
    }
}

/// The JSON object `bytes` deserialized into `T`, checked as a request's body is: a value
/// other than an object, or a key given twice, is refused (422); then axum's own rules: 400
/// for malformed JSON, 422 naming the field's path for a wrong type or an unknown field.
/// `warden batch --requests` checks its lines with it, so that a line runs exactly when
/// the same body sent to the server would.
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        let value: Result<Value, _> = serde_json::from_slice(bytes);
        if let Ok(value) = value {
            return Err(ApiError::unprocessable(format!(
                "the body must be a JSON object, not {}",
                kind(&value)
            )));
        }
    }
    if let Some(e) = duplicate_key(bytes) {
        return Err(ApiError::unprocessable(format!(
            "Failed to deserialize the JSON body into the target type: {e}"
        )));
    }
    let Json(body) = Json::<T>::from_bytes(bytes)?;
    Ok(body)
}

/// A nested struct field that must be a JSON object. An error inside it names its field
/// (`limits: memory: ...`): the body's own path ends at the nested object, read from a `Value`.
pub(crate) fn object<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<T, D::Error> {
    let value = Value::deserialize(d)?;
    if !value.is_object() {
        return Err(D::Error::custom(format!(
            "expected an object, found {}",
            kind(&value)
        )));
    }
    serde_path_to_error::deserialize(value).map_err(D::Error::custom)
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

/// The first key given twice in an object of `json`, at any depth (`duplicate field `stdin`
/// at line 1 column 45`); `None` when there is none, or when `json` is not valid JSON (its
/// parse then says what is wrong).
pub(crate) fn duplicate_key(json: &[u8]) -> Option<serde_json::Error> {
    serde_json::from_slice::<NoDuplicateKeys>(json)
        .err()
        .filter(serde_json::Error::is_data)
}

/// Any JSON value whose objects have no key twice; nothing of it is kept.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeys {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut items: A) -> Result<Self, A::Error> {
        while items.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut keys = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if keys.contains(&key) {
                return Err(A::Error::custom(format!("duplicate field `{key}`")));
            }
            map.next_value::<NoDuplicateKeys>()?;
            keys.insert(key);
        }
        Ok(self)
    }
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
    fn a_key_given_twice_is_found_at_any_depth() {
        for twice in [
            r#"{"a":1,"a":2}"#,
            r#"{"one":{"a":1,"a":2}}"#,
            r#"{"many":[{"a":1},{"b":[{"c":1,"c":1}]}]}"#,
        ] {
            let found = duplicate_key(twice.as_bytes()).map(|e| e.to_string());
            assert!(
                found
                    .as_deref()
                    .is_some_and(|e| e.starts_with("duplicate field")),
                "{twice}: {found:?}"
            );
        }
        for once in [
            r#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#,
            r#"[1,"x",null,true,{"\u0061":1,"b":1.5}]"#,
            r#"{"a":"#,
        ] {
            assert!(duplicate_key(once.as_bytes()).is_none(), "{once}");
        }
        // Escapes are read before keys are compared: "\u0061" is "a".
        assert!(duplicate_key(br#"{"a":1,"\u0061":2}"#).is_some());
    }

    /// Records the name of the thread that serializes it.
    struct SerializedOn(std::sync::Arc<std::sync::Mutex<Option<String>>>);

    impl serde::Serialize for SerializedOn {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let name = std::thread::current().name().map(str::to_owned);
            *self.0.lock().expect("not poisoned") = name;
            s.serialize_str("big")
        }
    }

    /// Bug hunt: a big answer was serialized on the thread serving connections.
    #[test]
    fn an_answer_is_serialized_off_the_connections_thread() {
        let seen = std::sync::Arc::default();
        let value = SerializedOn(std::sync::Arc::clone(&seen));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let answer = std::thread::Builder::new()
            .name("connections".into())
            .spawn(move || runtime.block_on(json_answer(value)))
            .expect("a thread")
            .join()
            .expect("no panic")
            .expect("an answer");
        assert_eq!(answer.status(), axum::http::StatusCode::OK);
        let on = seen.lock().expect("not poisoned").clone();
        assert!(on.is_some_and(|name| name != "connections"));
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
