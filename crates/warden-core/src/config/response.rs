//! The `[response]` section of `warden.toml`: what warden does about a caller (an API token, or
//! the local user) whose executions keep causing security events (docs/events.md).
//!
//! ```toml
//! [response]
//! events = 5          # this many security events of one caller...
//! within = "10m"      # ...within this long...
//! action = "isolate"  # ...and its next executions run isolated (gVisor), or "refuse"
//! ```
//!
//! The response lasts while the caller's events within the window reach the threshold: once
//! they age out of it, the caller is back to normal (the cool-down is the window).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What happens to a caller over the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseAction {
    /// Its executions run in `isolated` mode, whatever they ask.
    Isolate,
    /// Its executions are refused, saying why and until when.
    Refuse,
}

/// The `[response]` section; absent: no response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseConfig {
    /// Security events of one caller that trigger the action.
    pub events: u64,
    /// The window they are counted in.
    #[serde(with = "crate::units::human_age")]
    pub within: Duration,
    /// What happens.
    pub action: ResponseAction,
}

impl ResponseConfig {
    /// The first mistake a parser cannot see: a threshold of no events, or an empty window,
    /// under which every execution of every caller would get the action.
    pub fn check(&self) -> Result<(), String> {
        if self.events == 0 {
            return Err("[response] events must be at least 1".to_owned());
        }
        if self.within.is_zero() {
            return Err("[response] within must be more than 0s".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_reads_and_bad_ones_are_refused() {
        let rule: ResponseConfig =
            toml::from_str("events = 3\nwithin = \"10m\"\naction = \"refuse\"\n").expect("valid");
        assert_eq!(rule.within, Duration::from_secs(600));
        assert_eq!(rule.action, ResponseAction::Refuse);
        assert!(toml::from_str::<ResponseConfig>(
            "events = 3\nwithin = \"10m\"\naction = \"ban\"\n"
        )
        .is_err());
        assert!(toml::from_str::<ResponseConfig>("events = 3\naction = \"refuse\"\n").is_err());
    }

    /// Bug hunt: `events = 0` was accepted, and every request was then refused.
    #[test]
    fn a_rule_that_catches_everyone_is_refused() {
        let parse = |toml: &str| {
            crate::config::Config::from_toml(std::path::Path::new("warden.toml"), toml)
                .map_err(|e| e.to_string())
        };
        let err = parse("[response]\nevents = 0\nwithin = \"10m\"\naction = \"refuse\"\n")
            .expect_err("no events");
        assert!(
            err.contains("[response] events must be at least 1"),
            "{err}"
        );
        let err = parse("[response]\nevents = 1\nwithin = \"0s\"\naction = \"refuse\"\n")
            .expect_err("no window");
        assert!(err.contains("[response] within"), "{err}");
        assert!(parse("[response]\nevents = 1\nwithin = \"1s\"\naction = \"refuse\"\n").is_ok());
    }
}
