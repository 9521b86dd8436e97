//! The client's requests in flight through `warden mcp wrap`, each passed to the wrapped
//! server under an id of the relay's own and answered to the client under its own id. Runs in
//! the relay (`warden mcp wrap`'s process).
//!
//! The relay forwarded the client's ids unchanged: after a call timed out (`-32001`) or was
//! cancelled, its id was free again for the client, and the server's late answer to the old
//! call was delivered as the answer to the next request reusing the id, whose own answer was
//! then dropped (hunt mcp 5). With ids of its own, a late answer matches no request in flight
//! and is dropped, as `warden mcp` does for stdio (`warden-server/src/mcp/unique_ids.rs`).
//!
//! The client's ids are compared as `warden mcp` compares them, which reads them as rmcp
//! does: a number in float form that is a whole number is that integer (`7.0` and `7e0` are
//! `7`), and a string is never a number (`"7"` is not `7`). Compared as JSON text, `7.0` was
//! passed on while `7` was in flight, and a cancel of `8.0` missed the call `8` (hunt mcp 2).

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

/// A client's request id as `warden mcp` tells ids apart (rmcp's `NumberOrString`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ClientId {
    /// A number that is an integer, in whatever form it was written.
    Integer(i64),
    String(String),
    /// Anything else (a fraction, a number beyond `i64`, `null`, an object) by its JSON text:
    /// `warden mcp` refuses such an id; the relay leaves that to the wrapped server.
    Other(String),
}

impl ClientId {
    fn of(id: &Value) -> Self {
        match id {
            Value::String(text) => Self::String(text.clone()),
            Value::Number(number) => number
                .as_i64()
                .or_else(|| number.as_u64().and_then(|u| i64::try_from(u).ok()))
                .or_else(|| number.as_f64().and_then(integral))
                .map_or_else(|| Self::Other(id.to_string()), Self::Integer),
            other => Self::Other(other.to_string()),
        }
    }
}

/// The integer a number in float form stands for, when an `f64` holds it exactly: below
/// 2^53, as rmcp reads it (2^53 + 1 parses to the same `f64` as 2^53).
fn integral(float: f64) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (float.fract() == 0.0 && float.abs() < EXACT).then_some(float as i64)
}

/// The client's requests the server has not answered, by the id the server knows each by.
#[derive(Default)]
pub(super) struct InFlight {
    requests: HashMap<u64, Request>,
    /// The same, the other way: the server's id of each, by the client's id.
    by_client: HashMap<ClientId, u64>,
    /// The id the next request is passed on under.
    last: u64,
}

impl InFlight {
    /// Whether a request with the client's id `client_id` is in flight.
    pub(super) fn holds(&self, client_id: &Value) -> bool {
        self.by_client.contains_key(&ClientId::of(client_id))
    }

    /// A request with the client's id `client_id` is passed on: the id the server gets.
    pub(super) fn admit(&mut self, client_id: Value, call: Option<Call>) -> u64 {
        self.last += 1;
        self.by_client.insert(ClientId::of(&client_id), self.last);
        self.requests.insert(self.last, Request { client_id, call });
        self.last
    }

    /// The server answered the request it knows as `ours`: that request, no longer in flight;
    /// `None` when no request of that id is (answered already, timed out, cancelled).
    pub(super) fn answered(&mut self, ours: &Value) -> Option<Request> {
        let request = self.requests.remove(&ours.as_u64()?)?;
        self.by_client.remove(&ClientId::of(&request.client_id));
        Some(request)
    }

    /// The client cancelled its request `client_id`: the server's id of it, and the request,
    /// no longer in flight; `None` when no request of that id is.
    pub(super) fn cancelled(&mut self, client_id: &Value) -> Option<(u64, Request)> {
        let ours = self.by_client.remove(&ClientId::of(client_id))?;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Hunt mcp 2: ids were compared as JSON text.
    #[test]
    fn a_whole_number_in_float_form_is_the_integer() {
        let mut in_flight = InFlight::default();
        let ours = in_flight.admit(json!(7), None);
        for same in [
            json!(7.0),
            json!(7e0),
            serde_json::from_str("70e-1").expect("JSON"),
        ] {
            assert!(in_flight.holds(&same), "{same} is 7");
        }
        let (cancelled, request) = in_flight.cancelled(&json!(7.0)).expect("7 in flight");
        assert_eq!((cancelled, request.client_id), (ours, json!(7)));
        assert!(in_flight.is_empty());

        let ours = in_flight.admit(json!(8.0), None);
        assert!(in_flight.holds(&json!(8)));
        let request = in_flight.answered(&json!(ours)).expect("in flight");
        assert_eq!(
            request.client_id,
            json!(8.0),
            "answered under the id it came with"
        );
        assert!(!in_flight.holds(&json!(8)), "free again");
    }

    #[test]
    fn a_string_is_never_a_number_and_a_fraction_is_not_its_integer() {
        let mut in_flight = InFlight::default();
        in_flight.admit(json!(7), None);
        assert!(!in_flight.holds(&json!("7")));
        assert!(!in_flight.holds(&json!(7.5)));
        assert!(in_flight.cancelled(&json!("7")).is_none());
        in_flight.admit(json!("8"), None);
        assert!(!in_flight.holds(&json!(8)));
        assert!(in_flight.holds(&json!("8")));
        in_flight.admit(json!(2.5), None);
        assert!(in_flight.holds(&json!(2.5)));
        assert!(!in_flight.holds(&json!(2)));
        // 2^53 + 1 is not the float 2^53 + 1 reads as.
        in_flight.admit(json!(9_007_199_254_740_993_i64), None);
        assert!(!in_flight.holds(&json!(9_007_199_254_740_992.0)));
    }
}
