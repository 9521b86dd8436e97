//! The stdio session's request ids: a request whose id is already in flight is refused at
//! once, as `/mcp` refuses it (`mcp_requests.rs`), and each request reaches rmcp under an id
//! of its own, never used before in the session. Runs in `warden mcp`, and in the server
//! below each `/mcp` session (`http_sessions.rs`), where the middleware refuses a duplicate
//! before rmcp sees it.
//!
//! rmcp answers each request by its id: a second request with the id of one in flight ran, and
//! only one of the two was answered; the other held a worker to its end, and
//! `notifications/cancelled` for the id reached only the later one (bug hunt). JSON-RPC asks a
//! client for ids unique among its requests in flight; this transport holds it to that.
//!
//! An id is free again once its request is answered or cancelled; but rmcp keeps a cancelled
//! request's id until its handler has returned, and routes that handler's answer, which it
//! means to drop, by the id: a request sent right after the cancel with the same id was
//! answered as cancelled, and cancelled (a bug left by the hunts of 2026-12-07). So rmcp never sees the client's ids:
//! each request is passed on under a number of this session's own, and its answer goes back
//! under the client's id.
//!
//! Below an `/mcp` session, the end of its messages is the session's end (`DELETE /mcp`, or
//! warden closing it idle): nobody can receive an answer any more, so each request in flight
//! is then cancelled, as by the client's `notifications/cancelled`, before rmcp is told the
//! input ended. rmcp would give its handlers 5 s to answer first, as to a stdio client that
//! closed stdin (which keeps that grace): a call that ended within them ran on after the
//! `DELETE` and counted as answered (hunt mcp 1).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::{ready, Either};
use rmcp::model::{
    CancelledNotification, CancelledNotificationParam, ClientJsonRpcMessage, ClientNotification,
    ErrorData, JsonRpcMessage, NumberOrString, RequestId, ServerJsonRpcMessage,
};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleServer;

use super::idle::Activity;

/// A server transport that refuses, on `inner`, a request whose id is in flight (received and
/// neither answered nor cancelled), and passes each other request on under an id of its own.
pub(crate) struct UniqueIds<T> {
    inner: T,
    /// The client's ids in flight, each with the id rmcp knows its request by.
    in_flight: HashMap<RequestId, RequestId>,
    /// The same, the other way: rmcp's id of each request in flight, with the client's.
    clients: HashMap<RequestId, RequestId>,
    /// The id the next request is passed on under.
    next: i64,
    /// Told of every message and of the requests in flight: an `/mcp` session's, whose idle
    /// time is warden's to keep (`idle.rs`), and whose requests in flight are cancelled
    /// when its input ends (the session ended).
    activity: Option<Arc<Activity>>,
}

impl<T> UniqueIds<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            in_flight: HashMap::new(),
            clients: HashMap::new(),
            next: 1,
            activity: None,
        }
    }

    /// The same, telling `activity` of every message and of the requests in flight, for an
    /// `/mcp` session: its requests in flight are cancelled when its input ends.
    pub(crate) fn watched(inner: T, activity: Arc<Activity>) -> Self {
        Self {
            activity: Some(activity),
            ..Self::new(inner)
        }
    }

    fn touch(&self) {
        if let Some(activity) = &self.activity {
            activity.touch(self.in_flight.len());
        }
    }

    /// The request with the client's id `id` is in flight: the id rmcp gets for it.
    fn admit(&mut self, id: RequestId) -> RequestId {
        let ours = NumberOrString::Number(self.next);
        self.next += 1;
        self.in_flight.insert(id.clone(), ours.clone());
        self.clients.insert(ours.clone(), id);
        ours
    }

    /// The request rmcp knows as `ours` is answered: the client's id for it, which is free
    /// again; `None` when it is not in flight (cancelled: its answer is not sent).
    fn answered(&mut self, ours: &RequestId) -> Option<RequestId> {
        let id = self.clients.remove(ours)?;
        self.in_flight.remove(&id);
        Some(id)
    }

    /// The client cancelled its request `id`: the id rmcp knows it by, and `id` is free again;
    /// `None` when no request of that id is in flight.
    fn cancelled(&mut self, id: &RequestId) -> Option<RequestId> {
        let ours = self.in_flight.remove(id)?;
        self.clients.remove(&ours);
        Some(ours)
    }
}

/// The input ended: below an `/mcp` session, `notifications/cancelled` for one of its
/// requests in flight (under rmcp's id, which is no longer in flight), `None` once there are
/// none; over stdio `None` at once (a closed stdin keeps rmcp's grace, docs/mcp.md).
fn cancel_at_the_end<T>(ids: &mut UniqueIds<T>) -> Option<ClientJsonRpcMessage> {
    ids.activity.as_ref()?;
    let ours = ids.clients.keys().next()?.clone();
    ids.answered(&ours);
    ids.touch();
    let cancelled = CancelledNotification::new(CancelledNotificationParam::new(
        Some(ours),
        Some("the session ended".into()),
    ));
    Some(JsonRpcMessage::notification(
        ClientNotification::CancelledNotification(cancelled),
    ))
}

/// JSON-RPC's answer to a request whose id is in flight: `-32600` (invalid request), in the
/// words `/mcp` uses.
fn duplicate_id(id: &RequestId) -> ErrorData {
    ErrorData::invalid_request(
        format!(
            "request id {} is already in flight in this session: an id must be unique among a \
             session's requests until answered",
            serde_json::to_string(id).unwrap_or_default()
        ),
        None,
    )
}

impl<T: Transport<RoleServer>> Transport<RoleServer> for UniqueIds<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        mut item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let ours = match &mut item {
            JsonRpcMessage::Response(response) => Some(&mut response.id),
            JsonRpcMessage::Error(error) => error.id.as_mut(),
            JsonRpcMessage::Request(_) | JsonRpcMessage::Notification(_) => None,
        };
        let Some(ours) = ours else {
            self.touch();
            return Either::Right(self.inner.send(item));
        };
        let answered = self.answered(ours);
        self.touch();
        match answered {
            Some(id) => *ours = id,
            // A cancelled request's: rmcp drops those itself; never under an id the client
            // did not send.
            None => {
                tracing::debug!(id = %ours, "answer of a request not in flight dropped");
                return Either::Left(ready(Ok(())));
            }
        }
        Either::Right(self.inner.send(item))
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let Some(mut message) = self.inner.receive().await else {
                return cancel_at_the_end(self);
            };
            self.touch();
            match &mut message {
                JsonRpcMessage::Request(request) if self.in_flight.contains_key(&request.id) => {
                    let refusal = ServerJsonRpcMessage::error(
                        duplicate_id(&request.id),
                        Some(request.id.clone()),
                    );
                    if let Err(error) = self.inner.send(refusal).await {
                        tracing::info!(%error, "mcp client gone");
                        return None;
                    }
                }
                JsonRpcMessage::Request(request) => {
                    request.id = self.admit(request.id.clone());
                    self.touch();
                    return Some(message);
                }
                JsonRpcMessage::Notification(notification) => {
                    // A cancelled request is not answered: its id is free again. A cancel of
                    // no request in flight is dropped: rmcp would read its id as one of ours.
                    if let ClientNotification::CancelledNotification(cancelled) =
                        &mut notification.notification
                    {
                        let Some(id) = cancelled.params.request_id.as_mut() else {
                            continue;
                        };
                        match self.cancelled(id) {
                            Some(ours) => *id = ours,
                            None => continue,
                        }
                        self.touch();
                    }
                    return Some(message);
                }
                _ => return Some(message),
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
