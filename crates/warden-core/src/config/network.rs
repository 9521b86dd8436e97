//! The `[network]` section of `warden.toml`: where imported network policies live, which
//! policies a request may choose, which one it gets when it names none, and the registries the
//! operator adds to those found on the host (docs/network.md#configuration).
//!
//! ```toml
//! [network]
//! policy_dir = "/etc/warden/policies/network"   # WARDEN_NETWORK_POLICY_DIR wins
//! allowed = ["no_access", "limited_access"]     # default: every built-in policy
//! default = "no_access"                         # a request naming no policy gets this
//! registries = ["https://mirror.example/simple/", "pkgs.example:8443"]
//!
//! [network.mode_default]                        # per mode, instead of `default`
//! sandboxed = "limited_access"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mode::Mode;
use crate::network::{check_name, host_of_url, BUILTIN_NAMES};

/// Where imported network policies are kept when nothing says otherwise.
pub const DEFAULT_POLICY_DIR: &str = "/etc/warden/policies/network";

/// The `[network]` section; each field unset keeps the default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// The directory of imported policies.
    pub policy_dir: Option<PathBuf>,
    /// The policies a request may choose (default: every built-in policy; an imported policy
    /// must be listed here to be chosen).
    pub allowed: Option<Vec<String>>,
    /// The policy of a request that names none (default `no_access`).
    pub default: Option<String>,
    /// The policy of a request that names none, per mode; a mode not listed gets `default`.
    pub mode_default: BTreeMap<Mode, String>,
    /// Registry hosts added to those discovered: URLs or `host[:port]`.
    pub registries: Vec<String>,
}

impl NetworkConfig {
    /// The first mistake a parser cannot see: a name that cannot be a policy's, a default
    /// that requests are not allowed, a registry that names no host.
    pub fn check(&self) -> Result<(), String> {
        let names = self.allowed.iter().flatten();
        // Unset, the default is the first built-in policy: it must be allowed all the same,
        // unless every mode has a default of its own.
        let every_mode = [Mode::Trusted, Mode::Sandboxed, Mode::Isolated]
            .iter()
            .all(|m| self.mode_default.contains_key(m));
        let default = match &self.default {
            Some(name) => Some(name.as_str()),
            None => (!every_mode).then_some(BUILTIN_NAMES[0]),
        };
        let defaults = default
            .into_iter()
            .chain(self.mode_default.values().map(String::as_str));
        for name in names.map(String::as_str).chain(defaults.clone()) {
            check_name(name).map_err(|e| format!("[network] {e}"))?;
        }
        for name in defaults {
            if !self.allows(name) {
                return Err(format!(
                    "[network] the default policy {name:?} is not in `allowed`"
                ));
            }
        }
        if let Some(bad) = self.registries.iter().find(|r| host_of_url(r).is_none()) {
            return Err(format!(
                "[network] registries: {bad:?} is not an http(s) URL or host[:port]"
            ));
        }
        Ok(())
    }

    /// Whether a request may choose the policy `name`.
    pub fn allows(&self, name: &str) -> bool {
        match &self.allowed {
            Some(allowed) => allowed.iter().any(|a| a == name),
            None => BUILTIN_NAMES.contains(&name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(toml: &str) -> Result<NetworkConfig, String> {
        Config::from_toml(Path::new("warden.toml"), toml)
            .map(|c| c.network)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn network_section_reads_and_defaults() {
        let network = parse(
            "[network]\npolicy_dir = \"/p\"\nallowed = [\"no_access\", \"mine\"]\n\
             default = \"mine\"\nregistries = [\"https://registry.test/\"]\n\
             [network.mode_default]\ntrusted = \"no_access\"\n",
        )
        .expect("valid");
        assert_eq!(network.policy_dir, Some(PathBuf::from("/p")));
        assert!(network.allows("mine") && !network.allows("internet_access"));
        assert_eq!(
            network.mode_default.get(&Mode::Trusted).map(String::as_str),
            Some("no_access")
        );
        let own = "[network]\nallowed = [\"a\"]\n[network.mode_default]\n\
                   trusted = \"a\"\nsandboxed = \"a\"\nisolated = \"a\"\n";
        assert_eq!(parse(own).err(), None, "every mode has its own default");
        let empty = parse("").expect("empty");
        assert!(empty.allows("internet_access") && !empty.allows("mine"));
    }

    #[test]
    fn network_section_mistakes_are_named() {
        for (toml, why) in [
            ("[network]\ndefault = \"mine\"\n", "not in `allowed`"),
            (
                "[network]\nallowed = [\"a\"]\ndefault = \"a\"\n[network.mode_default]\nisolated = \"b\"\n",
                "\"b\"",
            ),
            ("[network]\nallowed = [\"../x\"]\n", "policy name"),
            // Bug hunt: the unset default, no_access, was not checked against `allowed`.
            (
                "[network]\nallowed = []\n",
                "\"no_access\" is not in `allowed`",
            ),
            (
                "[network]\nallowed = [\"limited_access\"]\n",
                "\"no_access\"",
            ),
            ("[network]\nregistries = [\"file:///srv\"]\n", "registries"),
            ("[network.mode_default]\nturbo = \"no_access\"\n", "turbo"),
            ("[network]\npolicies = 1\n", "policies"),
        ] {
            let err = parse(toml).expect_err(toml);
            assert!(err.contains(why), "{toml}: {err}");
        }
    }
}
