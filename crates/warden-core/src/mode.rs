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

use crate::threat::ThreatLevel;

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

impl FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Mode::Trusted, Mode::Sandboxed, Mode::Isolated]
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (trusted, sandboxed, isolated)"))
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

/// What the operator's policy requires for one threat level: a mode name, or `refuse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LevelRule {
    /// At least this mode.
    Mode(Mode),
    /// Never run.
    Refuse,
}

impl TryFrom<String> for LevelRule {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        match s.as_str() {
            "refuse" => Ok(LevelRule::Refuse),
            _ => match s.parse::<ModeRequest>() {
                Ok(ModeRequest::Exactly(mode)) => Ok(LevelRule::Mode(mode)),
                _ => Err(format!(
                    "{s:?} is not a mode (trusted, sandboxed, isolated) or refuse"
                )),
            },
        }
    }
}

impl From<LevelRule> for String {
    fn from(rule: LevelRule) -> String {
        match rule {
            LevelRule::Mode(mode) => mode.name().to_owned(),
            LevelRule::Refuse => "refuse".to_owned(),
        }
    }
}

/// The operator's mode policy (`[modes]` in warden.toml).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModePolicy {
    /// The mode of a request that names none (`warden run` without `--mode`).
    #[serde(with = "request_name")]
    pub default: ModeRequest,
    /// Whether `trusted` (no namespaces) may be used at all.
    pub trusted_enabled: bool,
    /// The weakest mode allowed per threat level (`refuse` to never run), indexed
    /// none, low, medium, high, critical.
    pub none: LevelRule,
    /// See `none`.
    pub low: LevelRule,
    /// See `none`.
    pub medium: LevelRule,
    /// See `none`.
    pub high: LevelRule,
    /// See `none`.
    pub critical: LevelRule,
}

impl Default for ModePolicy {
    /// None, low and medium run sandboxed, high runs isolated, critical is refused.
    fn default() -> Self {
        Self {
            default: ModeRequest::Auto,
            trusted_enabled: false,
            none: LevelRule::Mode(Mode::Sandboxed),
            low: LevelRule::Mode(Mode::Sandboxed),
            medium: LevelRule::Mode(Mode::Sandboxed),
            high: LevelRule::Mode(Mode::Isolated),
            critical: LevelRule::Refuse,
        }
    }
}

/// `default` in `[modes]`: `auto` or a mode's name, as `--mode` takes it.
mod request_name {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::ModeRequest;

    pub(super) fn serialize<S: Serializer>(request: &ModeRequest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match request {
            ModeRequest::Auto => "auto",
            ModeRequest::Exactly(mode) => mode.name(),
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ModeRequest, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// A request the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModeRefusal {
    /// The threat level is above the operator's ceiling.
    #[error("refused: the code's threat level is {level}, which this configuration never runs")]
    ThreatTooHigh {
        /// The program's level.
        level: ThreatLevel,
    },
    /// The requested mode is weaker than the policy's minimum for the level.
    #[error("refused: mode {requested} is weaker than {minimum}, the weakest this configuration allows for threat level {level}")]
    TooWeak {
        /// What was asked.
        requested: Mode,
        /// The policy's minimum.
        minimum: Mode,
        /// The program's level.
        level: ThreatLevel,
    },
    /// The `[response]` rule runs the caller's executions isolated, and this one runs in a
    /// session of a weaker mode, which cannot change.
    #[error("refused: {why}, and this session's mode is {mode}")]
    Escalated {
        /// The session's mode.
        mode: Mode,
        /// The rule's reason (`response rule: CALLER caused N security events within W, ...`).
        why: String,
    },
    /// `trusted` was asked for but the operator has not enabled it.
    #[error("refused: trusted mode is disabled in this configuration (modes.trusted_enabled)")]
    TrustedDisabled,
}

/// The mode chosen for a program, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChoice {
    /// The mode.
    pub mode: Mode,
    /// One sentence for the result's `security.reason`.
    pub reason: String,
}

impl LevelRule {
    /// How strict the rule is: `trusted` < `sandboxed` < `isolated` < `refuse`.
    const fn strictness(self) -> u8 {
        match self {
            LevelRule::Mode(Mode::Trusted) => 0,
            LevelRule::Mode(Mode::Sandboxed) => 1,
            LevelRule::Mode(Mode::Isolated) => 2,
            LevelRule::Refuse => 3,
        }
    }
}

impl ModePolicy {
    /// Refuses a map in which a higher threat level allows a weaker mode than a lower one
    /// (`critical = "sandboxed"` beside `high = "isolated"`): `choose` reads the program's own
    /// level only, so under such a map a program would get a weaker mode by adding a finding
    /// (bug hunt "modes" 6). The message names both keys, the higher level first.
    pub fn check(&self) -> Result<(), String> {
        for pair in ThreatLevel::ALL.windows(2) {
            let (lower, higher) = (pair[0], pair[1]);
            let (below, above) = (self.rule(lower), self.rule(higher));
            if above.strictness() < below.strictness() {
                return Err(format!(
                    "[modes] {higher}: {:?} is weaker than {lower}'s {:?}: a higher threat \
                     level must get at least the mode of a lower one",
                    String::from(above),
                    String::from(below)
                ));
            }
        }
        // Bug hunt: a default mode that the lowest level refuses, the higher ones refuse too
        // (checked above): every request that names no mode would be refused.
        if self.none != LevelRule::Refuse {
            if let (ModeRequest::Exactly(mode), Err(refusal)) =
                (self.default, self.choose(self.default, ThreatLevel::None))
            {
                return Err(format!(
                    "[modes] default: \"{mode}\" would refuse every request that names no mode \
                     ({refusal}); choose \"auto\" or a mode the levels allow"
                ));
            }
        }
        Ok(())
    }

    fn rule(&self, level: ThreatLevel) -> LevelRule {
        match level {
            ThreatLevel::None => self.none,
            ThreatLevel::Low => self.low,
            ThreatLevel::Medium => self.medium,
            ThreatLevel::High => self.high,
            ThreatLevel::Critical => self.critical,
        }
    }

    /// Chooses the mode for a program of `level` asked to run in `request`. A request can
    /// never get a weaker mode than the policy allows for its level; `trusted` is chosen only
    /// when enabled.
    pub fn choose(
        &self,
        request: ModeRequest,
        level: ThreatLevel,
    ) -> Result<ModeChoice, ModeRefusal> {
        let minimum = match self.rule(level) {
            LevelRule::Refuse => return Err(ModeRefusal::ThreatTooHigh { level }),
            LevelRule::Mode(Mode::Trusted) if !self.trusted_enabled => Mode::Sandboxed,
            LevelRule::Mode(mode) => mode,
        };
        match request {
            ModeRequest::Auto => Ok(ModeChoice {
                mode: minimum,
                reason: format!(
                    "auto: threat level {level} runs {minimum} under this configuration"
                ),
            }),
            ModeRequest::Exactly(Mode::Trusted) if !self.trusted_enabled => {
                Err(ModeRefusal::TrustedDisabled)
            }
            ModeRequest::Exactly(requested) if requested < minimum => Err(ModeRefusal::TooWeak {
                requested,
                minimum,
                level,
            }),
            ModeRequest::Exactly(requested) => Ok(ModeChoice {
                mode: requested,
                reason: format!(
                    "requested {requested}; threat level {level} allows {minimum} or stronger"
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug hunt "auth": a session call the `[response]` rule could not isolate was refused as
    /// if its code had been graded `high`.
    #[test]
    fn an_escalated_session_call_is_refused_with_the_rules_reason() {
        let refusal = ModeRefusal::Escalated {
            mode: Mode::Sandboxed,
            why: "response rule: alice caused 3 security events within 10m, so its executions run isolated".into(),
        };
        assert_eq!(
            refusal.to_string(),
            "refused: response rule: alice caused 3 security events within 10m, so its executions \
             run isolated, and this session's mode is sandboxed"
        );
    }

    #[test]
    fn the_default_policy_maps_levels_to_modes() {
        let policy = ModePolicy::default();
        let auto = |level| policy.choose(ModeRequest::Auto, level).map(|c| c.mode);
        assert_eq!(auto(ThreatLevel::None), Ok(Mode::Sandboxed));
        assert_eq!(auto(ThreatLevel::Medium), Ok(Mode::Sandboxed));
        assert_eq!(auto(ThreatLevel::High), Ok(Mode::Isolated));
        assert_eq!(
            auto(ThreatLevel::Critical),
            Err(ModeRefusal::ThreatTooHigh {
                level: ThreatLevel::Critical
            })
        );
    }

    #[test]
    fn a_request_never_gets_weaker_than_the_policy() {
        let policy = ModePolicy::default();
        let sandboxed = ModeRequest::Exactly(Mode::Sandboxed);
        assert!(matches!(
            policy.choose(sandboxed, ThreatLevel::High),
            Err(ModeRefusal::TooWeak {
                minimum: Mode::Isolated,
                ..
            })
        ));
        let isolated = ModeRequest::Exactly(Mode::Isolated);
        assert_eq!(
            policy.choose(isolated, ThreatLevel::None).map(|c| c.mode),
            Ok(Mode::Isolated)
        );
    }

    #[test]
    fn trusted_needs_the_operator() {
        let trusted = ModeRequest::Exactly(Mode::Trusted);
        assert_eq!(
            ModePolicy::default().choose(trusted, ThreatLevel::None),
            Err(ModeRefusal::TrustedDisabled)
        );
        let mut policy = ModePolicy {
            trusted_enabled: true,
            ..ModePolicy::default()
        };
        assert!(
            policy.choose(trusted, ThreatLevel::None).is_err(),
            "enabled, but the default policy's weakest mode for none is sandboxed"
        );
        policy.none = LevelRule::Mode(Mode::Trusted);
        assert_eq!(
            policy.choose(trusted, ThreatLevel::None).map(|c| c.mode),
            Ok(Mode::Trusted)
        );
        assert!(
            policy.choose(trusted, ThreatLevel::Medium).is_err(),
            "medium needs at least sandboxed"
        );
        assert_eq!(
            policy
                .choose(ModeRequest::Auto, ThreatLevel::None)
                .map(|c| c.mode),
            Ok(Mode::Trusted)
        );
        policy.trusted_enabled = false;
        assert_eq!(
            policy
                .choose(ModeRequest::Auto, ThreatLevel::None)
                .map(|c| c.mode),
            Ok(Mode::Sandboxed),
            "trusted is never chosen automatically unless enabled"
        );
    }

    #[test]
    fn policies_read_from_toml() {
        let policy: ModePolicy = toml::from_str(
            "trusted_enabled = true
high = \"refuse\"\nlow = \"trusted\"\n",
        )
        .expect("valid policy");
        assert!(policy.trusted_enabled);
        assert_eq!(policy.high, LevelRule::Refuse);
        assert_eq!(policy.low, LevelRule::Mode(Mode::Trusted));
        assert_eq!(policy.medium, ModePolicy::default().medium);
    }

    #[test]
    fn modes_parse_and_order_by_strength() {
        assert_eq!("auto".parse(), Ok(ModeRequest::Auto));
        assert_eq!("isolated".parse(), Ok(ModeRequest::Exactly(Mode::Isolated)));
        assert!("paranoid".parse::<ModeRequest>().is_err());
        assert!(Mode::Trusted < Mode::Sandboxed && Mode::Sandboxed < Mode::Isolated);
    }
}
