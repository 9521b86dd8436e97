//! Which API token opened each MCP session of `/mcp`: rmcp's session manager knows sessions,
//! not tokens, and a session id presented with another token's credentials must find
//! nothing (another token could otherwise end the session, killing its calls, or call tools
//! in it). Ids are recorded from the answer to the request that opened the session and
//! forgotten when the session ends: by its `DELETE`, or closed idle (`mcp/idle.rs`, which
//! tells the server). Forgetting it after a time unused, as before, let another token use a
//! session whose one call ran longer.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// The sessions' owners (`None`: the server has no tokens).
#[derive(Debug, Default)]
pub(crate) struct McpOwners(Mutex<HashMap<String, Option<String>>>);

impl McpOwners {
    /// Records that `token` opened the session `id`.
    pub(crate) fn opened(&self, id: &str, token: Option<String>) {
        let mut owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners.insert(id.to_owned(), token);
    }

    /// Whether `token` may use the session `id`: its owner, or a session this server does not
    /// know (rmcp answers that one as not found).
    pub(crate) fn may_use(&self, id: &str, token: Option<&str>) -> bool {
        let owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners.get(id).is_none_or(|owner| owner.as_deref() == token)
    }

    /// Whether `token` opened the session `id`, which this server knows.
    pub(crate) fn owns(&self, id: &str, token: Option<&str>) -> bool {
        let owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners
            .get(id)
            .is_some_and(|owner| owner.as_deref() == token)
    }

    /// How many sessions `token` opened that are not ended.
    pub(crate) fn open_by(&self, token: Option<&str>) -> usize {
        let owners = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        owners
            .values()
            .filter(|owner| owner.as_deref() == token)
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
