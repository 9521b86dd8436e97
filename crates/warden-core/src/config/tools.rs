//! The `[tools]` section of `warden.toml`: the operator's tool directories, where registered
//! tools and the `files` workspaces are kept, which categories may be registered and which
//! wait for approval (docs/tools.md#configuration).
//!
//! ```toml
//! [tools]
//! dirs = ["/etc/warden/tools"]          # operator tool files, loaded with the built-in ones
//! state_dir = "/var/lib/warden/tools"   # WARDEN_TOOLS_DIR wins; default beside the history
//! allowed_categories = ["read_only", "compute", "shell", "filesystem", "network", "host"]
//! approval = ["host", "network"]        # registered tools of these wait for `warden tool approve`
//! disabled = ["http_fetch"]             # tools left out, built-in ones included
//! files_quota = "64MiB"                 # each caller's `files` workspace
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::tool::Category;
use crate::units::ByteSize;

/// The `[tools]` section; each field unset keeps the default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolsConfig {
    /// Directories of the operator's tool files.
    pub dirs: Vec<PathBuf>,
    /// Where registered tools and the `files` workspaces are kept.
    pub state_dir: Option<PathBuf>,
    /// The categories a tool may have (default: all).
    pub allowed_categories: Option<Vec<Category>>,
    /// The categories whose registered tools wait for an operator's approval.
    pub approval: Vec<Category>,
    /// Tools left out of the registry, by name.
    pub disabled: Vec<String>,
    /// The most one caller's `files` workspace holds.
    pub files_quota: Option<ByteSize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_checked_when_read() {
        let ok: ToolsConfig =
            toml::from_str("approval = [\"host\"]\nfiles_quota = \"1MiB\"\n").expect("valid");
        assert_eq!(ok.approval, vec![Category::Host]);
        assert_eq!(ok.files_quota, Some(ByteSize::mib(1)));
        let bad = toml::from_str::<ToolsConfig>("approval = [\"hosts\"]\n");
        assert!(bad.is_err());
        assert!(toml::from_str::<ToolsConfig>("colour = 1\n").is_err());
    }
}
