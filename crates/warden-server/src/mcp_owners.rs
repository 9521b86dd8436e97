//! Which API token opened each MCP session of `/mcp`: rmcp's session manager knows sessions,
//! not tokens, and a session id presented with another token's credentials must find
//! nothing (another token could otherwise end the session, killing its calls, or call tools
//! in it). Ids are recorded from the answer to the request that opened the session and
//! forgotten when the session ends: by its `DELETE`, or closed idle (`mcp/idle.rs`, which
//! tells the server). Forgetting it after a time unused, as before, let another token use a
//! session whose one call ran longer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The sessions' owners (`None`: the server has no tokens).
#[derive(Debug, Default)]
pub(crate) struct McpOwners(Arc<Mutex<Owners>>);

#[derive(Debug, Default)]
struct Owners {
    /// Each open session's opener.
    sessions: HashMap<String, Option<String>>,
    /// By token, the sessions being opened: `initialize`s admitted whose answer has not come.
    /// They count against the token's bound as open ones do, so that requests arriving
    /// together cannot all pass the check before any is recorded.
    opening: HashMap<Option<String>, usize>,
}

impl Owners {
    fn count(&self, token: Option<&str>) -> usize {
        let open = self
            .sessions
            .values()
            .filter(|owner| owner.as_deref() == token)
            .count();
        open + self
            .opening
            .get(&token.map(str::to_owned))
            .copied()
            .unwrap_or(0)
    }

    fn done_opening(&mut self, token: &Option<String>) {
        if let Some(n) = self.opening.get_mut(token) {
            *n -= 1;
            if *n == 0 {
                self.opening.remove(token);
            }
        }
    }
}

/// A session being opened ([`McpOwners::reserve`]): counted as `token`'s until it is
/// [`opened`](Opening::opened) or dropped (the `initialize` failed, the client left).
#[derive(Debug)]
pub(crate) struct Opening {
    owners: Arc<Mutex<Owners>>,
    token: Option<String>,
    done: bool,
}

impl Opening {
    /// The session `id` opened: its opener's from now on.
    pub(crate) fn opened(mut self, id: &str) {
        let mut owners = lock(&self.owners);
        owners.done_opening(&self.token);
        owners.sessions.insert(id.to_owned(), self.token.take());
        self.done = true;
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.owners).done_opening(&self.token);
        }
    }
}

fn lock(owners: &Mutex<Owners>) -> MutexGuard<'_, Owners> {
    owners.lock().unwrap_or_else(PoisonError::into_inner)
}

impl McpOwners {
    /// Records that `token` opened the session `id` (a session opened by a request not
    /// admitted as an `initialize`, which no [`Opening`] holds: still its opener's only).
    pub(crate) fn opened(&self, id: &str, token: Option<String>) {
        lock(&self.0).sessions.insert(id.to_owned(), token);
    }

    /// A place for one more session of `token`'s, if it has fewer than `most` open or being
    /// opened; checked and taken under one lock.
    pub(crate) fn reserve(&self, token: Option<&str>, most: usize) -> Option<Opening> {
        let mut owners = lock(&self.0);
        if owners.count(token) >= most {
            return None;
        }
        let token = token.map(str::to_owned);
        *owners.opening.entry(token.clone()).or_default() += 1;
        Some(Opening {
            owners: Arc::clone(&self.0),
            token,
            done: false,
        })
    }

    /// Whether `token` may use the session `id`: its owner, or a session this server does not
    /// know (rmcp answers that one as not found).
    pub(crate) fn may_use(&self, id: &str, token: Option<&str>) -> bool {
        lock(&self.0)
            .sessions
            .get(id)
            .is_none_or(|owner| owner.as_deref() == token)
    }

    /// Whether `token` opened the session `id`, which this server knows.
    pub(crate) fn owns(&self, id: &str, token: Option<&str>) -> bool {
        lock(&self.0)
            .sessions
            .get(id)
            .is_some_and(|owner| owner.as_deref() == token)
    }

    /// How many sessions `token` opened that are not ended, or is opening.
    #[cfg(test)]
    pub(crate) fn open_by(&self, token: Option<&str>) -> usize {
        lock(&self.0).count(token)
    }

    /// The session `id` ended.
    pub(crate) fn ended(&self, id: &str) {
        lock(&self.0).sessions.remove(id);
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

    #[test]
    fn sessions_being_opened_count_until_opened_or_dropped() {
        let owners = McpOwners::default();
        let first = owners.reserve(Some("alice"), 2).expect("a first place");
        let second = owners.reserve(Some("alice"), 2).expect("a second place");
        assert!(
            owners.reserve(Some("alice"), 2).is_none(),
            "two being opened fill the bound"
        );
        assert!(owners.reserve(Some("bob"), 2).is_some(), "bob's own");
        assert_eq!(owners.open_by(Some("alice")), 2);
        first.opened("s1");
        assert!(owners.owns("s1", Some("alice")));
        assert_eq!(owners.open_by(Some("alice")), 2, "one open, one opening");
        drop(second);
        assert_eq!(
            owners.open_by(Some("alice")),
            1,
            "a failed opening gives its place back"
        );
        let third = owners.reserve(Some("alice"), 2).expect("a place again");
        assert!(owners.reserve(Some("alice"), 2).is_none());
        drop(third);
        owners.ended("s1");
        assert_eq!(owners.open_by(Some("alice")), 0);
        assert!(lock(&owners.0).opening.is_empty(), "nothing left counted");
    }
}
