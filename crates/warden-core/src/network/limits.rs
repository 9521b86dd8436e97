//! The traffic limits of a network policy, enforced by the egress proxy per execution: token
//! buckets for bandwidth, caps on bytes and connections, and timeouts. Written in human units
//! (`"1MiB"`, `"10s"`); an unset cap is no cap. Zero is refused: a bandwidth of nothing, or a
//! timeout of no time, is a policy that denies by accident; so is a timeout below a
//! millisecond, and a timeout is whole milliseconds, the proxy's timers' step.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::units::{human_duration, ByteSize};

/// How long a connection may take to be established when the policy does not say.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may carry nothing when the policy does not say.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The `[limits]` table of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetLimits {
    /// Bytes per second the sandbox may send, all connections together.
    #[serde(deserialize_with = "positive_size")]
    pub bandwidth_up: Option<ByteSize>,
    /// Bytes per second the sandbox may receive, all connections together.
    #[serde(deserialize_with = "positive_size")]
    pub bandwidth_down: Option<ByteSize>,
    /// Bytes sent and received in total over the execution; connections are closed past it.
    #[serde(deserialize_with = "positive_size")]
    pub total_bytes: Option<ByteSize>,
    /// Connections open at once.
    #[serde(deserialize_with = "positive_count")]
    pub max_connections: Option<u32>,
    /// Connections opened over the execution.
    #[serde(deserialize_with = "positive_count")]
    pub total_connections: Option<u32>,
    /// How long establishing a connection may take.
    #[serde(with = "positive_duration")]
    pub connect_timeout: Duration,
    /// How long a connection may carry no data before it is closed.
    #[serde(with = "positive_duration")]
    pub idle_timeout: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        Self {
            bandwidth_up: None,
            bandwidth_down: None,
            total_bytes: None,
            max_connections: None,
            total_connections: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

fn positive_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ByteSize>, D::Error> {
    match ByteSize::deserialize(d)? {
        ByteSize(0) => Err(serde::de::Error::custom(
            "must be more than 0 (leave the key out for no limit)",
        )),
        size => Ok(Some(size)),
    }
}

fn positive_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(serde::de::Error::custom(
            "must be at least 1 (leave the key out for no limit)",
        )),
        n => Ok(Some(n)),
    }
}

/// The longest timeout a policy may set: a day, far beyond any connection's use, and far from
/// the clock's end (a deadline past it panicked the proxy).
pub(crate) const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// The shortest timeout a policy may set. Below it a connection could not even be set up on
/// the loopback (`1ns` was accepted where `0s` was refused, and denied as surely).
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// A duration in human units of whole milliseconds, from [`MIN_TIMEOUT`] to [`MAX_TIMEOUT`].
mod positive_duration {
    use super::{human_duration, MAX_TIMEOUT, MIN_TIMEOUT};
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        human_duration::serialize(d, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match human_duration::deserialize(d)? {
            Duration::ZERO => Err(serde::de::Error::custom("must be more than 0s")),
            d if d < MIN_TIMEOUT => Err(serde::de::Error::custom(format!(
                "{d:?} is too short: a timeout is at least 1ms"
            ))),
            d if d > MAX_TIMEOUT => Err(serde::de::Error::custom("must be at most 24h")),
            d if d.subsec_nanos() % 1_000_000 != 0 => Err(serde::de::Error::custom(format!(
                "{d:?} is not a whole number of milliseconds (the proxy's timers count no less)"
            ))),
            d => Ok(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        limits: NetLimits,
    }

    fn parse(toml: &str) -> Result<NetLimits, crate::data::DataError> {
        crate::data::from_str::<Doc>(toml).map(|d| d.limits)
    }

    #[test]
    fn network_limits_read_human_units_and_default_the_timeouts() {
        let limits = parse(
            "[limits]\nbandwidth_up = \"1 MiB\"\nbandwidth_down = 4096\nmax_connections = 8\n\
             idle_timeout = \"2m\"\n",
        )
        .expect("valid");
        assert_eq!(limits.bandwidth_up, Some(ByteSize::mib(1)));
        assert_eq!(limits.bandwidth_down, Some(ByteSize(4096)));
        assert_eq!(limits.total_bytes, None);
        assert_eq!(limits.max_connections, Some(8));
        assert_eq!(limits.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(limits.idle_timeout, Duration::from_secs(120));
        let limits = parse(
            "[limits]\nconnect_timeout = \"1ms\"\nidle_timeout = \"1.5s\"\n\
             total_bytes = \"1.1KiB\"\n",
        )
        .expect("valid");
        assert_eq!(limits.connect_timeout, Duration::from_millis(1));
        assert_eq!(limits.idle_timeout, Duration::from_millis(1500));
        assert_eq!(limits.total_bytes, Some(ByteSize(1126)), "rounded down");
    }

    #[test]
    fn network_limits_refuse_zero_and_unknown_keys_with_the_line() {
        for (toml, line, why) in [
            ("[limits]\n\ntotal_bytes = \"0B\"\n", 3, "more than 0"),
            ("[limits]\nmax_connections = 0\n", 2, "at least 1"),
            ("[limits]\nconnect_timeout = \"0s\"\n", 2, "more than 0s"),
            // Bug hunt: this one passed the import and panicked the proxy at its first
            // connection ("overflow when adding duration to instant"), the server with it.
            (
                "[limits]\nconnect_timeout = \"5000000000000000h\"\n",
                2,
                "at most 24h",
            ),
            ("[limits]\nidle_timeout = \"25h\"\n", 2, "at most 24h"),
            ("[limits]\nbandwidth = \"1MiB\"\n", 2, "unknown field"),
            ("[limits]\nidle_timeout = \"forever\"\n", 2, "forever"),
            // Bug hunt (net, finding 4): these were accepted, 1ns where 0s was refused, and a
            // fraction of a byte floored in silence.
            ("[limits]\nidle_timeout = \"1ns\"\n", 2, "at least 1ms"),
            (
                "[limits]\nconnect_timeout = \"0.0001s\"\n",
                2,
                "at least 1ms",
            ),
            (
                "[limits]\nconnect_timeout = \"1500us\"\n",
                2,
                "whole number of milliseconds",
            ),
            (
                "[limits]\nbandwidth_down = \"1.0000001B\"\n",
                2,
                "whole number of bytes",
            ),
            (
                "[limits]\ntotal_bytes = \"0.5\"\n",
                2,
                "whole number of bytes",
            ),
        ] {
            let err = parse(toml).expect_err(toml);
            assert_eq!(err.line, Some(line), "{toml}: {err:?}");
            assert!(err.message.contains(why), "{toml}: {err:?}");
        }
    }
}
