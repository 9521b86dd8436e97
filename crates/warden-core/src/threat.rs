//! What static analysis says about a program: findings, each with a severity, rolled up into a
//! threat level. Analysis is advisory input to choosing an execution mode; the sandbox, not the
//! analysis, is the security boundary (DESIGN.md §2).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How dangerous a program looks, from `none` to `critical`. Ordered.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ThreatLevel {
    /// Nothing of note.
    #[default]
    None,
    /// Ordinary things worth knowing (reading the environment, say).
    Low,
    /// Capabilities an attacker would use (processes, network, files outside the workspace).
    Medium,
    /// Strong signs of intent (dynamic code from decoded data, native code, credential reads).
    High,
    /// Unmistakably hostile (fork bombs, kernel interfaces, sandbox escapes).
    Critical,
}

impl ThreatLevel {
    /// Every level, lowest first.
    pub const ALL: [ThreatLevel; 5] = [
        ThreatLevel::None,
        ThreatLevel::Low,
        ThreatLevel::Medium,
        ThreatLevel::High,
        ThreatLevel::Critical,
    ];

    /// The name used in JSON, TOML and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            ThreatLevel::None => "none",
            ThreatLevel::Low => "low",
            ThreatLevel::Medium => "medium",
            ThreatLevel::High => "high",
            ThreatLevel::Critical => "critical",
        }
    }
}

impl fmt::Display for ThreatLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ThreatLevel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ThreatLevel::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| {
                format!("unknown threat level {s:?} (none, low, medium, high, critical)")
            })
    }
}

/// One thing the analyzer noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's id, e.g. `python.subprocess`.
    pub rule: String,
    /// How serious it is.
    pub severity: ThreatLevel,
    /// 1-based line of the match.
    pub line: u32,
    /// The matched code, at most one line, shortened.
    pub excerpt: String,
    /// One line saying why this matters.
    pub explanation: String,
}

/// The analysis of one program.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Analysis {
    /// The rolled-up level: the highest severity of the findings, or the level given to code
    /// that could not be parsed.
    pub threat_level: ThreatLevel,
    /// What was found, in source order.
    pub findings: Vec<Finding>,
    /// Why the code could not be parsed (it was then analysed as far as possible), if it
    /// could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_ordered_and_round_trip_through_their_names() {
        assert!(ThreatLevel::None < ThreatLevel::Low && ThreatLevel::High < ThreatLevel::Critical);
        for level in ThreatLevel::ALL {
            assert_eq!(level.name().parse::<ThreatLevel>(), Ok(level));
            assert_eq!(
                serde_json::to_string(&level).expect("serializable"),
                format!("\"{}\"", level.name())
            );
        }
        assert!("severe".parse::<ThreatLevel>().is_err());
    }
}
