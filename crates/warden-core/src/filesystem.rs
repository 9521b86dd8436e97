//! The filesystem policy: which host paths every sandbox sees read-only
//! (`policies/filesystem/base.toml`). Each entry carries the reason it is exposed.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::embedded::FILESYSTEM_FILES;

/// One host path bound read-only into every sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadOnlyMount {
    /// Absolute host path, also its path inside the sandbox.
    pub path: PathBuf,
    /// Why the sandbox needs it.
    pub reason: String,
}

/// The base read-only mounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemPolicy {
    /// The mounts, in order.
    #[serde(rename = "mount")]
    pub mounts: Vec<ReadOnlyMount>,
}

/// A filesystem policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesystemPolicyError {
    /// The embedded file is missing.
    #[error("the embedded filesystem policy base.toml is missing")]
    Missing,
    /// The TOML does not deserialize.
    #[error("{file}: {message}")]
    Parse {
        /// The file name.
        file: String,
        /// What the parser said.
        message: String,
    },
    /// An entry is unusable.
    #[error("{file}: mount {path:?}: {problem}")]
    Invalid {
        /// The file name.
        file: String,
        /// The entry's path.
        path: PathBuf,
        /// What is wrong.
        problem: &'static str,
    },
}

impl FilesystemPolicy {
    /// The policy embedded in the binary.
    pub fn builtin() -> Result<Self, FilesystemPolicyError> {
        let (file, text) = FILESYSTEM_FILES
            .iter()
            .find(|(name, _)| *name == "base.toml")
            .ok_or(FilesystemPolicyError::Missing)?;
        Self::from_toml(file, text)
    }

    /// Parses and validates a policy file.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, FilesystemPolicyError> {
        let policy: Self =
            crate::data::from_str(text).map_err(|e| FilesystemPolicyError::Parse {
                file: file.to_owned(),
                message: e.message,
            })?;
        for m in &policy.mounts {
            let invalid = |problem| FilesystemPolicyError::Invalid {
                file: file.to_owned(),
                path: m.path.clone(),
                problem,
            };
            if !m.path.is_absolute() || m.path.components().count() < 2 {
                return Err(invalid("must be an absolute path below /"));
            }
            if m.path
                .components()
                .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(invalid("must not contain .."));
            }
            if m.reason.trim().is_empty() {
                return Err(invalid("has no reason"));
            }
        }
        Ok(policy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn builtin_policy_loads_and_never_exposes_secrets() {
        let policy = FilesystemPolicy::builtin().expect("builtin policy is valid");
        assert!(policy.mounts.iter().any(|m| m.path == Path::new("/usr")));
        for forbidden in [
            "/etc",
            "/root",
            "/home",
            "/var",
            "/proc",
            "/sys",
            "/etc/shadow",
            "/run",
        ] {
            assert!(
                policy.mounts.iter().all(|m| m.path != Path::new(forbidden)),
                "{forbidden} must never be exposed"
            );
        }
    }

    #[test]
    fn entries_without_reason_or_relative_paths_are_refused() {
        let no_reason = "[[mount]]\npath = \"/usr\"\nreason = \" \"\n";
        assert!(FilesystemPolicy::from_toml("t.toml", no_reason).is_err());
        let relative = "[[mount]]\npath = \"usr\"\nreason = \"r\"\n";
        assert!(FilesystemPolicy::from_toml("t.toml", relative).is_err());
        let root = "[[mount]]\npath = \"/\"\nreason = \"everything\"\n";
        assert!(FilesystemPolicy::from_toml("t.toml", root).is_err());
    }
}
