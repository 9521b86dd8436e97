//! The client's requests in flight through `warden mcp wrap`, each passed to the wrapped
//! server under an id of the relay's own and answered to the client under its own id. Runs in
//! the relay (`warden mcp wrap`'s process).
//!
//! The relay forwarded the client's ids unchanged: after a call timed out (`-32001`) or was
//! cancelled, its id was free again for the client, and the server's late answer to the old
//! call was delivered as the answer to the next request reusing the id, whose own answer was
//! then dropped (hunt mcp 5). With ids of its own, a late answer matches no request in flight
//! and is dropped, as `warden mcp` does for stdio (`warden-server/src/mcp/unique_ids.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `tools/call` in flight.
pub(super) struct Call {
    /// The tool it names, as recorded.
    pub(super) tool: String,
    /// When the client sent it.
    pub(super) started: Instant,
}

/// A request of the client's in flight.
pub(super) struct Request {
    /// The client's id, which its answer goes back under.
    pub(super) client_id: Value,
    /// The call, when it is a `tools/call`.
    pub(super) call: Option<Call>,
}

/// The client's requests the server has not answered, by the id the server knows each by.
#[derive(Default)]
pub(super) struct InFlight {
    requests: HashMap<u64, Request>,
    /// The same, the other way: the server's id of each, by the client's id as JSON text.
    by_client: HashMap<String, u64>,
    /// The id the next request is passed on under.
    last: u64,
}

impl InFlight {
    /// Whether a request with the client's id `client_id` is in flight.
    pub(super) fn holds(&self, client_id: &Value) -> bool {
        self.by_client.contains_key(&client_id.to_string())
    }

    /// A request with the client's id `client_id` is passed on: the id the server gets.
    pub(super) fn admit(&mut self, client_id: Value, call: Option<Call>) -> u64 {
        self.last += 1;
        self.by_client.insert(client_id.to_string(), self.last);
        self.requests.insert(self.last, Request { client_id, call });
        self.last
    }

    /// The server answered the request it knows as `ours`: that request, no longer in flight;
    /// `None` when no request of that id is (answered already, timed out, cancelled).
    pub(super) fn answered(&mut self, ours: &Value) -> Option<Request> {
        let request = self.requests.remove(&ours.as_u64()?)?;
        self.by_client.remove(&request.client_id.to_string());
        Some(request)
    }

    /// The client cancelled its request `client_id`: the server's id of it, and the request,
    /// no longer in flight; `None` when no request of that id is.
    pub(super) fn cancelled(&mut self, client_id: &Value) -> Option<(u64, Request)> {
        let ours = self.by_client.remove(&client_id.to_string())?;
        let request = self.requests.remove(&ours)?;
        Some((ours, request))
    }

    /// The calls that have waited longer than `timeout`, no longer in flight.
    pub(super) fn expired(&mut self, timeout: Duration) -> Vec<Request> {
        let mut late: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                r.call
                    .as_ref()
                    .is_some_and(|c| c.started.elapsed() > timeout)
            })
            .map(|(ours, _)| *ours)
            .collect();
        late.sort_unstable();
        late.into_iter()
            .filter_map(|ours| self.answered(&Value::from(ours)))
            .collect()
    }

    /// Every request in flight, in the order they came, no longer in flight.
    pub(super) fn drain(&mut self) -> Vec<Request> {
        self.by_client.clear();
        let mut all: Vec<(u64, Request)> = self.requests.drain().collect();
        all.sort_unstable_by_key(|(ours, _)| *ours);
        all.into_iter().map(|(_, request)| request).collect()
    }

    /// Whether no request is in flight.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}
