//! The `[dependencies]` section of `warden.toml`: the network policy the dependency stage runs
//! under, and the package index each language's installer uses instead of its default
//! (docs/network.md#dependencies).
//!
//! ```toml
//! [dependencies]
//! policy = "limited_access"                       # the default; must be in [network] allowed
//! [dependencies.index]                            # language id -> index URL
//! python = "https://pypi.mirror.example/simple/"
//! javascript = "https://npm.mirror.example/"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::network::{check_name, host_of_url};

/// The `[dependencies]` section; each field unset keeps the default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DependenciesConfig {
    /// The network policy of the dependency stage (default `limited_access`).
    pub policy: Option<String>,
    /// Per language id, the package index its installer uses.
    pub index: BTreeMap<String, String>,
}

impl DependenciesConfig {
    /// The first mistake a parser cannot see: a name that cannot be a policy's, an index that
    /// is not an http(s) URL with a host.
    pub fn check(&self) -> Result<(), String> {
        if let Some(policy) = &self.policy {
            check_name(policy).map_err(|e| format!("[dependencies] policy: {e}"))?;
        }
        for (language, url) in &self.index {
            let web = url.starts_with("http://") || url.starts_with("https://");
            if !web || host_of_url(url).is_none() {
                return Err(format!(
                    "[dependencies.index] {language}: {url:?} is not an http(s) URL with a host"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_names_are_checked() {
        let good: DependenciesConfig = toml::from_str(
            "policy = \"mirrors\"\n[index]\npython = \"http://127.0.0.1:8080/simple/\"\n",
        )
        .expect("valid");
        assert_eq!(good.check(), Ok(()));
        let bad: DependenciesConfig =
            toml::from_str("[index]\npython = \"file:///srv/wheels\"\n").expect("parses");
        assert!(bad.check().is_err());
        let name: DependenciesConfig = toml::from_str("policy = \"Not A Name\"\n").expect("parses");
        assert!(name.check().is_err());
        assert!(toml::from_str::<DependenciesConfig>("mirror = 1\n").is_err());
    }
}
