//! The `[sessions]` section of `warden.toml`: how many sessions `warden serve` keeps, how long
//! they live, and how much disk each gets (docs/sessions.md).
//!
//! ```toml
//! [sessions]
//! max = 32                # sessions alive at once on this server
//! max_per_caller = 8      # ...and per API token
//! max_kept_per_caller = 64  # sessions one API token keeps, running or stopped
//! idle_timeout = "10m"    # a session no call used for this long is stopped
//! max_lifetime = "1h"     # ...and every session after this long
//! disk = "256MiB"         # a session's workspace, unless the request asks for less or more
//! max_disk = "4GiB"       # the most a request may ask for
//! ```
//!
//! `idle_timeout` and `max_lifetime` are both the default and the most a request may ask for.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::MIN_VOLUME_SIZE;
use crate::units::ByteSize;

/// Sessions alive at once, by default.
pub const DEFAULT_MAX_SESSIONS: usize = 32;
/// Sessions of one caller alive at once, by default.
pub const DEFAULT_MAX_PER_CALLER: usize = 8;
/// Sessions one caller keeps, running or stopped, by default (at least `max_per_caller`).
pub const DEFAULT_MAX_KEPT_PER_CALLER: usize = 64;
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
    /// Sessions one caller keeps, running or stopped: a stopped session is kept until it is
    /// removed, and one given a volume as its workspace reserves no disk that the volumes'
    /// quota would bound. Unset: [`DEFAULT_MAX_KEPT_PER_CALLER`], or `max_per_caller` if more.
    pub max_kept_per_caller: Option<usize>,
    /// A session no call used for this long is stopped; also the most a request may ask for.
    #[serde(with = "crate::units::human_age_opt")]
    pub idle_timeout: Option<Duration>,
    /// Every session is stopped after this long; also the most a request may ask for.
    #[serde(with = "crate::units::human_age_opt")]
    pub max_lifetime: Option<Duration>,
    /// A session's workspace size when the request names none.
    pub disk: Option<ByteSize>,
    /// The largest workspace a request may ask for.
    pub max_disk: Option<ByteSize>,
}

impl SessionsConfig {
    /// The first mistake a parser cannot see, each of which would refuse every session: no
    /// session allowed, a zero timeout, a workspace below the smallest volume or above what
    /// a request may ask for or, when configured, a volume may be (`volume_max`, `[volumes]
    /// max_size`).
    pub fn check(&self, volume_max: ByteSize) -> Result<(), String> {
        let zero = [
            ("max", self.max),
            ("max_per_caller", self.max_per_caller),
            ("max_kept_per_caller", self.max_kept_per_caller),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == Some(0)) {
            return Err(format!("[sessions] {key} must be at least 1"));
        }
        let running = self.max_per_caller.unwrap_or(DEFAULT_MAX_PER_CALLER);
        if let Some(kept) = self.max_kept_per_caller.filter(|kept| *kept < running) {
            return Err(format!(
                "[sessions] max_kept_per_caller {kept} is below max_per_caller, {running}: a \
                 caller keeps every session it runs"
            ));
        }
        let times = [
            ("idle_timeout", self.idle_timeout),
            ("max_lifetime", self.max_lifetime),
        ];
        // Sessions keep time in whole milliseconds: less would be 0.
        let least = Duration::from_millis(1);
        if let Some((key, _)) = times.iter().find(|(_, v)| v.is_some_and(|d| d < least)) {
            return Err(format!("[sessions] {key} must be at least 1ms"));
        }
        let disk = self.disk.unwrap_or(DEFAULT_DISK);
        let max_disk = self.max_disk.unwrap_or(DEFAULT_MAX_DISK);
        for (key, size) in [("disk", disk), ("max_disk", max_disk)] {
            if size < MIN_VOLUME_SIZE {
                return Err(format!(
                    "[sessions] {key} {size} is below the smallest volume, {MIN_VOLUME_SIZE}"
                ));
            }
        }
        if disk > max_disk {
            return Err(format!(
                "[sessions] disk {disk} is above max_disk, {max_disk}"
            ));
        }
        // Only a configured `disk`: the default one is no reason to refuse a small
        // `[volumes] max_size` to an operator who does not serve sessions (a session's
        // request may still ask for a disk that fits).
        if self.disk.is_some_and(|d| d > volume_max) {
            return Err(format!(
                "[sessions] disk {disk} is above the largest volume, {volume_max} ([volumes] max_size)"
            ));
        }
        Ok(())
    }
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

    /// Bug hunt: each of these was accepted, and every session was then refused.
    #[test]
    fn settings_that_refuse_every_session_are_refused() {
        for (toml, why) in [
            ("[sessions]\nmax = 0\n", "[sessions] max must be at least 1"),
            (
                "[sessions]\nmax_per_caller = 0\n",
                "[sessions] max_per_caller must be",
            ),
            (
                "[sessions]\nmax_kept_per_caller = 0\n",
                "[sessions] max_kept_per_caller must be",
            ),
            (
                "[sessions]\nmax_kept_per_caller = 4\n",
                "[sessions] max_kept_per_caller 4 is below max_per_caller, 8",
            ),
            (
                "[sessions]\nidle_timeout = \"0s\"\n",
                "[sessions] idle_timeout must be at least 1ms",
            ),
            (
                "[sessions]\nmax_lifetime = \"500us\"\n",
                "[sessions] max_lifetime must be at least 1ms",
            ),
            ("[sessions]\ndisk = \"0\"\n", "[sessions] disk 0B is below"),
            (
                "[sessions]\ndisk = \"8GiB\"\n",
                "[sessions] disk 8GiB is above max_disk",
            ),
            (
                "[sessions]\ndisk = \"1GiB\"\n[volumes]\nmax_size = \"512MiB\"\n",
                "above the largest volume",
            ),
            (
                "[volumes]\nmax_size = \"0\"\n",
                "[volumes] max_size 0B is below",
            ),
            (
                "[volumes]\nmax_size = \"1MiB\"\n",
                "[volumes] max_size 1MiB is below",
            ),
        ] {
            let err = crate::config::Config::from_toml(std::path::Path::new("warden.toml"), toml)
                .expect_err(toml)
                .to_string();
            assert!(err.contains(why), "{toml}: {err}");
        }
        // A small [volumes] max_size alone is no mistake: sessions may ask for less.
        let small = "[volumes]\nmax_size = \"64MiB\"\n";
        assert!(
            crate::config::Config::from_toml(std::path::Path::new("warden.toml"), small).is_ok()
        );
    }
}
