//! Which API token opened each MCP session of `/mcp`: rmcp's session manager knows sessions,
//! not tokens, and a session id presented with another token's credentials must find
//! nothing (another token could otherwise end the session, killing its calls, or call tools
//! in it). Ids are recorded from the answer to the request that opened the session and
//! forgotten when the session is ended, or after [`FORGET_AFTER`] unused (rmcp closes a session
//! idle for 5 minutes).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long an unused session's owner is kept: past rmcp's idle timeout, with a margin.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// How long a session unused is counted among its token's open ones ([`McpOwners::open_by`]):
/// rmcp closes it after 5 minutes idle.
const COUNTED_FOR: Duration = Duration::from_secs(5 * 60 + 30);

/// The sessions' owners (`None`: the server has no tokens).
#[derive(Debug, Default)]
pub(crate) struct McpOwners(Mutex<HashMap<String, (Option<String>, Instant)>>);

impl McpOwners {
    /// Records that `token` opened the session `id` ([`McpOwners::open_by`] forgets the
    /// sessions long unused).
    pub(crate) fn opened(&self, id: &str, token: Option<String>) {
        let mut owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners.insert(id.to_owned(), (token, Instant::now()));
    }

    /// Whether `token` may use the session `id`: its owner, or a session this server does not
    /// know (rmcp answers that one as not found).
    pub(crate) fn may_use(&self, id: &str, token: Option<&str>) -> bool {
        let mut owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match owners.get_mut(id) {
            Some((owner, used)) if owner.as_deref() == token => {
                *used = Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Whether `token` opened the session `id`, which this server knows.
    pub(crate) fn owns(&self, id: &str, token: Option<&str>) -> bool {
        let owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners
            .get(id)
            .is_some_and(|(owner, _)| owner.as_deref() == token)
    }

    /// How many sessions `token` opened that may still be open (used within rmcp's idle
    /// timeout), forgetting the sessions long unused.
    pub(crate) fn open_by(&self, token: Option<&str>) -> usize {
        let mut owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        owners.retain(|_, (_, used)| now.duration_since(*used) < FORGET_AFTER);
        owners
            .values()
            .filter(|(owner, used)| {
                owner.as_deref() == token && now.duration_since(*used) < COUNTED_FOR
            })
            .count()
    }

    /// The session `id` ended.
    pub(crate) fn ended(&self, id: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_opening_token_may_use_a_session() {
        let owners = McpOwners::default();
        owners.opened("s1", Some("alice".into()));
        assert!(owners.may_use("s1", Some("alice")));
        assert!(!owners.may_use("s1", Some("bob")));
        assert!(!owners.may_use("s1", None));
        assert!(owners.may_use("unknown", Some("bob")), "rmcp answers it");
        assert!(owners.owns("s1", Some("alice")));
        assert!(!owners.owns("s1", Some("bob")));
        assert!(!owners.owns("unknown", Some("bob")));
        assert_eq!(owners.open_by(Some("alice")), 1);
        assert_eq!(owners.open_by(Some("bob")), 0);
        owners.ended("s1");
        assert!(
            owners.may_use("s1", Some("bob")),
            "forgotten: rmcp answers it"
        );
        assert_eq!(owners.open_by(Some("alice")), 0);
    }
}
