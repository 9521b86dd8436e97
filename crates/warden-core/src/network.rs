//! Network policies as data (DESIGN.md §4, docs/network.md): what a sandbox may reach, as an
//! ordered list of first-match rules over protocol, host and ports, a default action, traffic
//! limits, and a fixed deny set no rule can lift. The built-in policies are
//! `policies/network/*.toml`, embedded in the binary; the operator imports others (the store
//! is the engine's, `warden_engine::network::store`).
//!
//! This module parses, validates, exports and evaluates policies. It runs wherever it is
//! called: in the CLI for `warden network check`, in the egress proxy for every connection.
//!
//! ```toml
//! name = "example"
//! description = "HTTPS to one organisation's hosts"
//! level = "custom"               # none, limited, internet or custom
//! default_action = "deny"        # what an attempt no rule matches gets
//! registries = false             # also admit the package registries found on the host
//! log_detail = false             # kept for older files; every attempt is logged in full
//! allow_denied = []              # imported policies only: deny-set addresses to exempt
//!
//! [limits]
//! bandwidth_down = "4MiB"        # per second
//! max_connections = 8
//!
//! [[rule]]
//! protocol = "https"             # any (default), tcp, udp, http, https or dns
//! host = "*.example.org"         # * (default), a name, *.suffix, an address or a CIDR block
//! ports = 443                    # * (default), 443 or "8000-8999"
//! action = "allow"
//! reason = "the organisation's services"
//! ```

mod choice;
mod deny_set;
mod evaluate;
mod export;
mod host;
mod limits;
mod port_set;
mod registry;
mod rule;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

pub use deny_set::{DeniedRange, DENY_SET};
pub use evaluate::{Attempt, Decision, EvalContext, Matched};
pub use host::{normalize_name, HostPattern, IpNet, NAME_SYNTAX};
pub use limits::{NetLimits, DEFAULT_CONNECT_TIMEOUT, DEFAULT_IDLE_TIMEOUT};
pub use registry::{host_of_url, Registry, REGISTRY_PORTS};
pub use rule::{Action, PortRange, Protocol, Rule};

use crate::embedded::NETWORK_POLICY_FILES;

/// The built-in policies, by name; the first is the default of a request that names none.
pub const BUILTIN_NAMES: [&str; 4] = [
    "no_access",
    "limited_access",
    "internet_access",
    "development",
];

/// How much a policy opens, as a label people and the enforcement can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Nothing: no rule allows anything (the sandbox keeps only its loopback).
    None,
    /// Named destinations only: the default action is deny.
    Limited,
    /// The public internet: the default action is allow.
    Internet,
    /// Anything the rules say.
    Custom,
}

impl Level {
    /// The name used in TOML, JSON and tables.
    pub const fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::Limited => "limited",
            Level::Internet => "internet",
            Level::Custom => "custom",
        }
    }
}

impl choice::Choice for Level {
    const ALL: &'static [Self] = &[Level::None, Level::Limited, Level::Internet, Level::Custom];

    fn name(self) -> &'static str {
        Level::name(self)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated network policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Its name: lowercase letters, digits, `_` and `-`, at most 64 (also its file name).
    pub name: String,
    /// One line for people.
    pub description: String,
    /// How much it opens.
    pub level: Level,
    /// What an attempt no rule matches gets.
    pub default_action: Action,
    /// The rules, in order; the first that matches decides.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    /// Traffic limits.
    pub limits: NetLimits,
    /// Read and written back for older files; changes nothing (every attempt is logged in
    /// full whatever it says).
    pub log_detail: bool,
    /// Whether the package registries found on the host (and the operator's additions) are
    /// admitted, on their ports, after the rules.
    pub registries: bool,
    /// Addresses exempted from the deny set's fixed ranges; honoured only for a policy the
    /// operator imported, and never for the host's own or warden's addresses. A policy with
    /// any is dangerous ([`Policy::is_dangerous`]).
    pub allow_denied: Vec<IpNet>,
}

/// A policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(deserialize_with = "policy_name")]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(deserialize_with = "level")]
    level: Level,
    #[serde(deserialize_with = "default_action")]
    default_action: Action,
    #[serde(default, rename = "rule")]
    rules: Vec<rule::RuleFile>,
    #[serde(default)]
    limits: NetLimits,
    #[serde(default)]
    log_detail: bool,
    #[serde(default)]
    registries: bool,
    #[serde(default)]
    allow_denied: Vec<IpNet>,
}

/// A network policy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The file does not deserialize: bad syntax, an unknown key, a bad host, port or value.
    #[error("{file}{}: {message}", at(*line))]
    Parse {
        /// The file.
        file: String,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The file deserializes but does not make a coherent policy.
    #[error("{file}{}: {message}", at(*line))]
    Invalid {
        /// The file.
        file: String,
        /// The 1-based line of the key or rule at fault, when it can be found.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A built-in policy is missing from the binary or names itself differently.
    #[error("the embedded network policy {0} is missing or misnamed")]
    Builtin(String),
}

fn at(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

impl Policy {
    /// The built-in policy `name`, or `None` if there is no such built-in.
    pub fn builtin(name: &str) -> Option<Result<Self, PolicyError>> {
        let file = format!("{name}.toml");
        let (file, text) = NETWORK_POLICY_FILES.iter().find(|(f, _)| *f == file)?;
        Some(Self::from_toml(file, text).and_then(|p| {
            if p.name == name && p.allow_denied.is_empty() {
                Ok(p)
            } else {
                Err(PolicyError::Builtin(name.to_owned()))
            }
        }))
    }

    /// Every built-in policy, in [`BUILTIN_NAMES`] order.
    pub fn builtins() -> Result<Vec<Self>, PolicyError> {
        BUILTIN_NAMES
            .iter()
            .map(|name| {
                Self::builtin(name).unwrap_or_else(|| Err(PolicyError::Builtin((*name).into())))
            })
            .collect()
    }

    /// Parses and validates a policy; `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, PolicyError> {
        let parsed: PolicyFile = crate::data::from_str(text).map_err(|e| PolicyError::Parse {
            file: file.to_owned(),
            line: e.line,
            message: e.message,
        })?;
        let invalid = |line, message| PolicyError::Invalid {
            file: file.to_owned(),
            line,
            message,
        };
        let mut rules = Vec::with_capacity(parsed.rules.len());
        for (i, raw) in parsed.rules.into_iter().enumerate() {
            let rule = raw
                .validate()
                .map_err(|why| invalid(rule_line(text, i), format!("rule {}: {why}", i + 1)))?;
            rules.push(rule);
        }
        let policy = Policy {
            name: parsed.name,
            description: parsed.description,
            level: parsed.level,
            default_action: parsed.default_action,
            rules,
            limits: parsed.limits,
            log_detail: parsed.log_detail,
            registries: parsed.registries,
            allow_denied: parsed.allow_denied,
        };
        policy
            .check_level()
            .map_err(|(key, why)| invalid(key_line(text, key), why))?;
        Ok(policy)
    }

    /// Whether the policy exempts addresses from the deny set.
    pub fn is_dangerous(&self) -> bool {
        !self.allow_denied.is_empty()
    }

    /// The level must say what the rest of the policy does: the key at fault and why not.
    fn check_level(&self) -> Result<(), (&'static str, String)> {
        let allows = self.rules.iter().any(|r| r.action == Action::Allow);
        match (self.level, self.default_action) {
            (Level::None, _) if allows || self.registries || self.is_dangerous() => Err((
                "level",
                "level \"none\" allows nothing: it takes no allow rule, no registries and no \
                 allow_denied (use level \"limited\" or \"custom\")"
                    .to_owned(),
            )),
            (Level::None | Level::Limited, Action::Allow) => Err((
                "default_action",
                format!(
                    "level {:?} denies what no rule allows: default_action must be \"deny\" \
                     (use level \"internet\" or \"custom\")",
                    self.level.name()
                ),
            )),
            (Level::Internet, Action::Deny) => Err((
                "default_action",
                "level \"internet\" allows what no rule denies: default_action must be \
                 \"allow\" (use level \"limited\" or \"custom\")"
                    .to_owned(),
            )),
            _ => Ok(()),
        }
    }
}

/// Reads a policy name, refusing one that could not be a file name in the store.
fn level<'de, D: Deserializer<'de>>(d: D) -> Result<Level, D::Error> {
    choice::read(d, "level")
}

fn default_action<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
    choice::read(d, "default_action")
}

fn policy_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    check_name(&name).map_err(serde::de::Error::custom)?;
    Ok(name)
}

/// The longest policy name, in bytes.
const MAX_NAME: usize = 64;

/// Why `name` cannot name a policy, if it cannot: lowercase ASCII letters, digits, `_` and
/// `-`, starting with a letter or digit, at most 64 bytes.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !name.starts_with(['-', '_']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "policy name {}: use 1 to 64 lowercase letters, digits, `_` and `-`, \
             starting with a letter or digit",
            quoted_name(name)
        ))
    }
}

/// A policy name as a message quotes it: escaped as `{:?}` escapes it and, when it is longer
/// than any policy's name, cut after 64 bytes with its length said (`"aaaa"… (100000 bytes)`).
/// The name comes from the request: a refusal must not echo whatever it sent (a 100,000-byte
/// name made a 100 kB answer), as the traffic log cuts an invalid host name at 253 bytes.
pub fn quoted_name(name: &str) -> String {
    if name.len() <= MAX_NAME {
        return format!("{name:?}");
    }
    let cut = (0..=MAX_NAME)
        .rev()
        .find(|&at| name.is_char_boundary(at))
        .unwrap_or(0);
    format!("{:?}… ({} bytes)", &name[..cut], name.len())
}

/// The line of the top-level `key` (top-level keys come before the first table header).
fn key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The line of the `index`-th `[[rule]]` header.
fn rule_line(text: &str, index: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            l.trim_start()
                .strip_prefix("[[")
                .and_then(|rest| rest.trim_start().strip_prefix("rule"))
                .is_some_and(|rest| rest.trim_start().starts_with("]]"))
        })
        .nth(index)
        .map(|(i, _)| i + 1)
}

#[cfg(test)]
mod tests;
