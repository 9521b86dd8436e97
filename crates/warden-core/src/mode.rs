//! Execution modes: how strongly a program is isolated, and how `auto` chooses one.
//!
//! - `trusted`: limits only (cgroup and rlimits), no namespaces; only when the operator allows it.
//! - `sandboxed`: the native backend (namespaces, seccomp, cgroups).
//! - `isolated`: the same plan under gVisor (`runsc`): the program talks to a user-space kernel.
//! - `auto`: the operator's policy maps the threat level to a mode; above its ceiling the request
//!   is refused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A concrete isolation mode. Ordered from weakest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Limits only, no namespaces.
    Trusted,
    /// The native sandbox.
    Sandboxed,
    /// gVisor.
    Isolated,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModeRequest {
    /// Let the operator's policy decide from the threat level.
    #[default]
    Auto,
    /// This mode, if the policy allows it for the program's threat level.
    Exactly(Mode),
}

impl Mode {
    /// The name used in JSON, TOML and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Mode::Trusted => "trusted",
            Mode::Sandboxed => "sandboxed",
            Mode::Isolated => "isolated",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModeRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(ModeRequest::Auto),
            "trusted" => Ok(ModeRequest::Exactly(Mode::Trusted)),
            "sandboxed" => Ok(ModeRequest::Exactly(Mode::Sandboxed)),
            "isolated" => Ok(ModeRequest::Exactly(Mode::Isolated)),
            _ => Err(format!(
                "unknown mode {s:?} (auto, trusted, sandboxed, isolated)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_and_order_by_strength() {
        assert_eq!("auto".parse(), Ok(ModeRequest::Auto));
        assert_eq!("isolated".parse(), Ok(ModeRequest::Exactly(Mode::Isolated)));
        assert!("paranoid".parse::<ModeRequest>().is_err());
        assert!(Mode::Trusted < Mode::Sandboxed && Mode::Sandboxed < Mode::Isolated);
    }
}
