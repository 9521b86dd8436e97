//! The `[sessions]` section of `warden.toml`: how many sessions `warden serve` keeps, how long
//! they live, and how much disk each gets (docs/sessions.md).
//!
//! ```toml
//! [sessions]
//! max = 32                # sessions alive at once on this server
//! max_per_caller = 8      # ...and per API token
//! idle_timeout = "10m"    # a session no call used for this long is stopped
//! max_lifetime = "1h"     # ...and every session after this long
//! disk = "256MiB"         # a session's workspace, unless the request asks for less or more
//! max_disk = "4GiB"       # the most a request may ask for
//! ```
//!
//! `idle_timeout` and `max_lifetime` are both the default and the most a request may ask for.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::ByteSize;

/// Sessions alive at once, by default.
pub const DEFAULT_MAX_SESSIONS: usize = 32;
/// Sessions of one caller alive at once, by default.
pub const DEFAULT_MAX_PER_CALLER: usize = 8;
/// A session's idle timeout, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A session's lifetime, by default.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(3600);
/// A session's workspace size, by default.
pub const DEFAULT_DISK: ByteSize = ByteSize::mib(256);
/// The largest workspace a request may ask for, by default.
pub const DEFAULT_MAX_DISK: ByteSize = ByteSize::mib(4096);

/// The `[sessions]` section; each field unset keeps its default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Sessions alive at once.
    pub max: Option<usize>,
    /// Sessions of one caller alive at once.
    pub max_per_caller: Option<usize>,
    /// A session no call used for this long is stopped; also the most a request may ask for.
    #[serde(with = "crate::units::human_duration_opt")]
    pub idle_timeout: Option<Duration>,
    /// Every session is stopped after this long; also the most a request may ask for.
    #[serde(with = "crate::units::human_duration_opt")]
    pub max_lifetime: Option<Duration>,
    /// A session's workspace size when the request names none.
    pub disk: Option<ByteSize>,
    /// The largest workspace a request may ask for.
    pub max_disk: Option<ByteSize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_reads_and_unknown_keys_are_refused() {
        let config: SessionsConfig =
            toml::from_str("max = 4\nidle_timeout = \"30s\"\ndisk = \"64MiB\"\n").expect("valid");
        assert_eq!(config.max, Some(4));
        assert_eq!(config.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.disk, Some(ByteSize::mib(64)));
        assert_eq!(config.max_lifetime, None);
        assert!(toml::from_str::<SessionsConfig>("idle = \"30s\"\n").is_err());
        assert!(toml::from_str::<SessionsConfig>("idle_timeout = \"soon\"\n").is_err());
    }
}
