//! The JSON-RPC requests in flight in each MCP session of `/mcp`, by id, so that a request
//! whose id is already in flight in its session is refused at once. Runs in the server
//! process, in the `/mcp` middleware (`routes.rs`), which reads each `POST`'s body to tell a
//! request from a notification before rmcp does.
//!
//! rmcp's session manager routes each answer to the `POST` that carries its request by the
//! request's id: a second request with the id of one in flight took the route, and the first
//! `POST`'s event stream never got its answer and stayed open, kept alive with comments, for
//! five minutes (bug hunt). JSON-RPC asks a client for ids unique among its requests in flight;
//! this is where warden holds it to that.
//!
//! An id is free again once its request is answered, or as soon as rmcp has taken the client's
//! `notifications/cancelled` for it, as over stdio: the session's transport passes each
//! request on to rmcp under an id of its own (`mcp/unique_ids.rs`), so that the cancelled
//! handler, which may run on a while, and a new request of the same id never meet there; and
//! rmcp closes the cancelled request's stream at the cancel, so no answer can reach it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;

/// What a `POST /mcp` body is, as far as admission cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Message {
    /// A request: it is answered on the `POST`'s event stream, held open until its answer.
    /// `id` is its id as compact JSON; `initialize` whether it is one (without a session, the
    /// only request that opens one).
    Request { id: String, initialize: bool },
    /// `notifications/cancelled` for the request of id `id` (compact JSON): answered at once
    /// with `202`, and the id is free again once rmcp has taken it.
    Cancel { id: String },
    /// A notification or a response to the server: answered at once with `202`.
    Other,
    /// Not read as one JSON-RPC message (rmcp answers it): counted as a request would be,
    /// without an id to check.
    Unread,
}

impl Message {
    /// Reads `body` as far as needed: the `method` and the `id`, nothing kept of the rest.
    pub(crate) fn of(body: &[u8]) -> Message {
        #[derive(Deserialize)]
        struct Probe {
            #[serde(default)]
            id: Option<serde_json::Value>,
            #[serde(default)]
            method: Option<Method>,
        }
        /// The method, as far as it matters here, without keeping its name.
        enum Method {
            Initialize,
            Cancelled,
            Other,
        }
        impl<'de> Deserialize<'de> for Method {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(match name.as_ref() {
                    "initialize" => Method::Initialize,
                    "notifications/cancelled" => Method::Cancelled,
                    _ => Method::Other,
                })
            }
        }
        // serde reads a struct from an array too: a body that is not an object is not read.
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Message::Unread;
        }
        match serde_json::from_slice::<Probe>(body) {
            Ok(Probe {
                id: Some(id),
                method: Some(method),
            }) => Message::Request {
                id: id_key(&id),
                initialize: matches!(method, Method::Initialize),
            },
            Ok(Probe {
                id: None,
                method: Some(Method::Cancelled),
            }) => Message::cancelled(body),
            Ok(_) => Message::Other,
            Err(_) => Message::Unread,
        }
    }

    /// A cancel's request id, read a second time (a cancel is small): [`Message::Other`] when
    /// it names none, for rmcp to answer as it will.
    fn cancelled(body: &[u8]) -> Message {
        #[derive(Deserialize)]
        struct Cancel {
            params: Params,
        }
        #[derive(Deserialize)]
        struct Params {
            #[serde(rename = "requestId")]
            request_id: serde_json::Value,
        }
        match serde_json::from_slice::<Cancel>(body) {
            Ok(cancel) => Message::Cancel {
                id: id_key(&cancel.params.request_id),
            },
            Err(_) => Message::Other,
        }
    }
}

/// A request id as rmcp reads it, as compact JSON: rmcp reads a number written as a float
/// that is a whole number (`7.0`, `7e0`) as that integer, and routes its answer so, so `7.0`
/// is id `7` here too. An id rmcp does not read (`7.5`, `null`) keeps its text: rmcp refuses
/// its request.
fn id_key(id: &serde_json::Value) -> String {
    serde_json::from_value::<rmcp::model::RequestId>(id.clone())
        .ok()
        .and_then(|id| serde_json::to_string(&id).ok())
        .unwrap_or_else(|| id.to_string())
}

/// The ids in flight, by session id, each with the number of the request that holds it.
#[derive(Debug, Default, Clone)]
pub(crate) struct InFlight(Arc<Mutex<Sessions>>);

#[derive(Debug, Default)]
struct Sessions {
    ids: HashMap<String, HashMap<String, u64>>,
    /// The number of the next request admitted.
    next: u64,
}

/// A request's place among its session's ids in flight, given back when dropped (its answer
/// sent, or its client gone), unless a cancel gave it back before and another request of the
/// same id holds it now.
#[derive(Debug)]
pub(crate) struct Flying {
    ids: InFlight,
    session: String,
    id: String,
    request: u64,
}

impl InFlight {
    /// Marks `id` in flight in `session`, or `None` when it already is.
    pub(crate) fn start(&self, session: &str, id: &str) -> Option<Flying> {
        let mut sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let request = sessions.next;
        let ids = sessions.ids.entry(session.to_owned()).or_default();
        if ids.contains_key(id) {
            return None;
        }
        ids.insert(id.to_owned(), request);
        sessions.next += 1;
        Some(Flying {
            ids: self.clone(),
            session: session.to_owned(),
            id: id.to_owned(),
            request,
        })
    }

    /// The client cancelled its request `id` in `session`, and rmcp took the cancel: the id is
    /// free again at once, as over stdio, though the cancelled request's stream may not have
    /// ended yet.
    pub(crate) fn cancelled(&self, session: &str, id: &str) {
        let mut sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.forget(session, id, None);
    }
}

impl Sessions {
    /// Removes `id` from `session`'s ids, if held by `request` (any request: `None`).
    fn forget(&mut self, session: &str, id: &str, request: Option<u64>) {
        if let Some(ids) = self.ids.get_mut(session) {
            if request.is_none_or(|request| ids.get(id) == Some(&request)) {
                ids.remove(id);
            }
            if ids.is_empty() {
                self.ids.remove(session);
            }
        }
    }
}

impl Drop for Flying {
    fn drop(&mut self) {
        let mut sessions = self.ids.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.forget(&self.session, &self.id, Some(self.request));
    }
}

/// How many `POST /mcp` requests, server-wide, are still answering (their event streams
/// open): shutdown waits for them to be written before it ends the sessions, which would cut
/// them short (docs/server.md#shutdown).
#[derive(Debug, Clone)]
pub(crate) struct Answering(Arc<tokio::sync::watch::Sender<usize>>);

impl Default for Answering {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(0)))
    }
}

/// One request's answer still being written; counted in its [`Answering`] until dropped.
#[derive(Debug)]
pub(crate) struct Answer(Answering);

impl Answering {
    /// Counts a request until the returned [`Answer`] is dropped.
    pub(crate) fn start(&self) -> Answer {
        self.0.send_modify(|open| *open += 1);
        Answer(self.clone())
    }

    /// Waits until no request is answering.
    pub(crate) async fn all_answered(&self) {
        // The sender lives as long as `self`: the wait cannot fail.
        let _ = self.0.subscribe().wait_for(|open| *open == 0).await;
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.0 .0.send_modify(|open| *open = open.saturating_sub(1));
    }
}

/// JSON-RPC's answer to a request whose id is in flight: `-32600` (invalid request), sent as
/// the `POST`'s JSON answer (streamable HTTP lets a server answer a request so).
pub(crate) fn duplicate_id(id: &str) -> serde_json::Value {
    let id: serde_json::Value = serde_json::from_str(id).unwrap_or(serde_json::Value::Null);
    serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32600,
            "message": format!(
                "request id {id} is already in flight in this session: \
                 an id must be unique among a session's requests until answered"
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_is_told_apart_and_an_id_in_flight_is_refused_until_answered() {
        assert_eq!(
            Message::of(br#"{"jsonrpc":"2.0","id":7,"method":"ping"}"#),
            Message::Request {
                id: "7".into(),
                initialize: false
            }
        );
        assert_eq!(
            Message::of(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            Message::Request {
                id: "1".into(),
                initialize: true
            }
        );
        assert_eq!(
            Message::of(br#"{"jsonrpc":"2.0","method":"notifications/cancelled"}"#),
            Message::Other
        );
        assert_eq!(
            Message::of(
                br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7,"reason":"x"}}"#
            ),
            Message::Cancel { id: "7".into() }
        );
        assert_eq!(
            Message::of(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Message::Other
        );
        // Bug hunt: `7.0` passed the check against a request `7` in flight, and rmcp, which
        // reads it as 7, gave it the first request's answer; a cancel of `7e0` cancels 7.
        for seven in ["7.0", "7e0", "70e-1"] {
            assert_eq!(
                Message::of(
                    format!(r#"{{"jsonrpc":"2.0","id":{seven},"method":"ping"}}"#).as_bytes()
                ),
                Message::Request {
                    id: "7".into(),
                    initialize: false
                },
                "{seven}"
            );
            assert_eq!(
                Message::of(
                    format!(r#"{{"jsonrpc":"2.0","method":"notifications/cancelled","params":{{"requestId":{seven}}}}}"#)
                        .as_bytes()
                ),
                Message::Cancel { id: "7".into() },
                "{seven}"
            );
        }
        assert_eq!(
            Message::of(br#"{"jsonrpc":"2.0","id":"7","method":"ping"}"#),
            Message::Request {
                id: "\"7\"".into(),
                initialize: false
            }
        );
        assert_eq!(Message::of(b"[1]"), Message::Unread);
        assert_eq!(
            Message::of(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            Message::Unread
        );
        assert_eq!(Message::of(b"not json"), Message::Unread);
        let ids = InFlight::default();
        let first = ids.start("s1", "7").expect("first");
        assert!(ids.start("s1", "7").is_none(), "in flight");
        let _other = ids.start("s2", "7").expect("another session's");
        let _string = ids.start("s1", "\"7\"").expect("a string id is another id");
        drop(first);
        assert!(ids.start("s1", "7").is_some(), "answered");
        // Regression hunt: a cancelled id was refused until the cancelled request's stream
        // ended; it is free at once, and the cancelled request's end frees no later one's.
        let cancelled = ids.start("s1", "8").expect("first");
        assert!(ids.start("s1", "8").is_none(), "in flight");
        ids.cancelled("s1", "8");
        let again = ids.start("s1", "8").expect("free once cancelled");
        drop(cancelled);
        assert!(ids.start("s1", "8").is_none(), "still the new request's");
        drop(again);
        assert!(ids.start("s1", "8").is_some(), "answered");
        let refusal = duplicate_id("7");
        assert_eq!(refusal["id"], 7);
        assert_eq!(refusal["error"]["code"], -32600);
    }
}
