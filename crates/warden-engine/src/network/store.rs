//! The network policies warden knows: the built-in ones embedded in the binary, and those the
//! operator imported into a directory (`[network] policy_dir`, `WARDEN_NETWORK_POLICY_DIR`),
//! one `<name>.toml` each. Runs in whichever process asks (the CLI, the server).
//!
//! An import is validated first and written whole or not at all (a temporary file renamed into
//! place), so a bad file changes nothing; an imported policy cannot take a built-in's name, and
//! only imported policies can be removed.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Serialize;
use warden_core::bounded_file::{self, MAX_SETTINGS_FILE};
use warden_core::network::{check_name, Policy, PolicyError, BUILTIN_NAMES};

use crate::error::ErrorKind;

/// Where a policy comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyOrigin {
    /// Embedded in the binary (`policies/network/`).
    BuiltIn,
    /// Imported by the operator into the policy directory.
    Imported,
}

impl PolicyOrigin {
    /// The name used in JSON and tables.
    pub const fn name(self) -> &'static str {
        match self {
            PolicyOrigin::BuiltIn => "built-in",
            PolicyOrigin::Imported => "imported",
        }
    }
}

/// A policy and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    /// The policy.
    pub policy: Policy,
    /// Built in or imported.
    pub origin: PolicyOrigin,
    /// Its file, for an imported policy.
    pub path: Option<PathBuf>,
}

impl StoredPolicy {
    /// Whether the operator imported it: only then is its `allow_denied` honoured
    /// (`EvalContext::imported`).
    pub fn is_imported(&self) -> bool {
        self.origin == PolicyOrigin::Imported
    }
}

/// A policy operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No built-in or imported policy has this name.
    #[error("no network policy is named {name:?} (see `warden network policies`)")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// An import would shadow, or a removal would remove, a built-in policy.
    #[error("{name:?} is a built-in policy: it cannot be {action}")]
    BuiltIn {
        /// The policy's name.
        name: String,
        /// What was attempted: `replaced by an import`, `removed`.
        action: &'static str,
    },
    /// A name that cannot be a policy's.
    #[error("{0}")]
    BadName(String),
    /// The file to import is not a valid policy: its importer's to fix.
    #[error(transparent)]
    Invalid(PolicyError),
    /// A policy warden has is not valid: a file of the policy directory (the operator's to fix:
    /// edited by hand, or left by an older warden), or a built-in one.
    #[error(transparent)]
    Broken(PolicyError),
    /// An imported file's policy has another name than its file.
    #[error("{path} holds the policy {name:?}: an imported policy's file is named after it")]
    Misnamed {
        /// The file.
        path: PathBuf,
        /// The name inside.
        name: String,
    },
    /// Reading or writing a file failed.
    #[error("{step} {path}")]
    Io {
        /// What was being done: `reading`, `writing`, `removing`.
        step: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// Whose fault it is. A policy warden has that cannot be read (broken, misnamed, or its
    /// file unreadable) is never the fault of the request that names it: it is warden's side,
    /// whose details (the server's paths) go to the server's log, not to an API's caller.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Io { .. } | StoreError::Misnamed { .. } | StoreError::Broken(_) => {
                ErrorKind::Internal
            }
            StoreError::NotFound { .. }
            | StoreError::BuiltIn { .. }
            | StoreError::BadName(_)
            | StoreError::Invalid(_) => ErrorKind::Request,
        }
    }
}

/// The built-in policies and the imported ones in `dir`.
#[derive(Debug, Clone)]
pub struct PolicyStore {
    dir: PathBuf,
}

impl PolicyStore {
    /// The store whose imported policies are in `dir` (which need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory of imported policies.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every policy: the built-in ones, then the imported ones by name. An invalid file in
    /// the directory is an error naming it (remove it with `warden network rm`).
    pub fn list(&self) -> Result<Vec<StoredPolicy>, StoreError> {
        self.list_each()?.into_iter().collect()
    }

    /// Every policy, built-in first, each imported file read on its own: a file that cannot
    /// be read (malformed, misnamed) is its error in the list, the others are still listed.
    /// An error: the built-in policies or the directory itself.
    pub fn list_each(&self) -> Result<Vec<Result<StoredPolicy, StoreError>>, StoreError> {
        let mut all: Vec<Result<StoredPolicy, StoreError>> = Policy::builtins()
            .map_err(StoreError::Broken)?
            .into_iter()
            .map(|policy| {
                Ok(StoredPolicy {
                    policy,
                    origin: PolicyOrigin::BuiltIn,
                    path: None,
                })
            })
            .collect();
        for path in self.imported_files()? {
            all.push(self.load(&path));
        }
        Ok(all)
    }

    /// The policy `name`.
    pub fn get(&self, name: &str) -> Result<StoredPolicy, StoreError> {
        if let Some(policy) = Policy::builtin(name) {
            return Ok(StoredPolicy {
                policy: policy.map_err(StoreError::Broken)?,
                origin: PolicyOrigin::BuiltIn,
                path: None,
            });
        }
        check_name(name).map_err(StoreError::BadName)?;
        let path = self.file_of(name);
        if !path.exists() {
            return Err(StoreError::NotFound {
                name: name.to_owned(),
            });
        }
        self.load(&path)
    }

    /// Validates the policy in `text` (read from `file`, which names it in errors) and stores
    /// it, replacing an imported policy of the same name. Nothing changes if it is invalid.
    pub fn import(&self, file: &str, text: &str) -> Result<StoredPolicy, StoreError> {
        let policy = Policy::from_toml(file, text).map_err(StoreError::Invalid)?;
        if BUILTIN_NAMES.contains(&policy.name.as_str()) {
            return Err(StoreError::BuiltIn {
                name: policy.name,
                action: "replaced by an import",
            });
        }
        let path = self.file_of(&policy.name);
        let io = |step, path: &Path| {
            let path = path.to_owned();
            move |source| StoreError::Io { step, path, source }
        };
        fs::create_dir_all(&self.dir).map_err(io("creating", &self.dir))?;
        let temp = self
            .dir
            .join(format!(".{}.toml.{}.tmp", policy.name, std::process::id()));
        let written = fs::File::options()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()))
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io("writing", &path)(e));
        }
        Ok(StoredPolicy {
            policy,
            origin: PolicyOrigin::Imported,
            path: Some(path),
        })
    }

    /// Removes the imported policy `name` (its file need not be valid).
    pub fn remove(&self, name: &str) -> Result<PathBuf, StoreError> {
        if BUILTIN_NAMES.contains(&name) {
            return Err(StoreError::BuiltIn {
                name: name.to_owned(),
                action: "removed",
            });
        }
        check_name(name).map_err(StoreError::BadName)?;
        let path = self.file_of(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound {
                name: name.to_owned(),
            }),
            Err(source) => Err(StoreError::Io {
                step: "removing",
                path,
                source,
            }),
        }
    }

    fn file_of(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.toml"))
    }

    /// The `*.toml` files of the directory, sorted; none if it does not exist. Hidden files
    /// (an import's temporary file) are not policies.
    fn imported_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let read_err = |source| StoreError::Io {
            step: "reading",
            path: self.dir.clone(),
            source,
        };
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(read_err(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(read_err)?.path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if !hidden && path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    fn load(&self, path: &Path) -> Result<StoredPolicy, StoreError> {
        let text = bounded_file::read_to_string(path, MAX_SETTINGS_FILE).map_err(|source| {
            StoreError::Io {
                step: "reading",
                path: path.to_owned(),
                source,
            }
        })?;
        let policy =
            Policy::from_toml(&path.display().to_string(), &text).map_err(StoreError::Broken)?;
        if path.file_stem().is_none_or(|s| *s != *policy.name) {
            return Err(StoreError::Misnamed {
                path: path.to_owned(),
                name: policy.name,
            });
        }
        Ok(StoredPolicy {
            policy,
            origin: PolicyOrigin::Imported,
            path: Some(path.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINE: &str = "name = \"mine\"\nlevel = \"limited\"\ndefault_action = \"deny\"\n\
                        [[rule]]\nprotocol = \"https\"\nhost = \"*.example.org\"\nports = 443\n\
                        action = \"allow\"\nreason = \"the organisation's hosts\"\n";

    fn store() -> (tempfile::TempDir, PolicyStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = PolicyStore::new(dir.path().join("policies"));
        (dir, store)
    }

    #[test]
    fn network_imports_are_listed_after_the_builtins_and_removed() {
        let (_dir, store) = store();
        assert_eq!(store.list().expect("lists").len(), BUILTIN_NAMES.len());
        let stored = store.import("mine.toml", MINE).expect("valid");
        assert!(stored.is_imported());
        let names: Vec<String> = store
            .list()
            .expect("lists")
            .into_iter()
            .map(|p| p.policy.name)
            .collect();
        assert_eq!(names.last().map(String::as_str), Some("mine"));
        assert_eq!(store.get("mine").expect("found").policy, stored.policy);
        assert_eq!(
            store.get("no_access").expect("found").origin,
            PolicyOrigin::BuiltIn
        );
        let edited = MINE.replace("the organisation's hosts", "our hosts");
        store.import("again.toml", &edited).expect("replaces");
        assert_eq!(
            store.get("mine").expect("found").policy.rules[0].reason,
            "our hosts"
        );
        store.remove("mine").expect("removed");
        assert!(matches!(
            store.get("mine"),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.remove("mine"),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn network_a_bad_import_changes_nothing() {
        let (_dir, store) = store();
        store.import("mine.toml", MINE).expect("valid");
        let bad = MINE.replace("*.example.org", "10.0.0.1/8");
        let err = store.import("mine.toml", &bad).expect_err("bad CIDR");
        assert!(err.to_string().starts_with("mine.toml:6: "), "{err}");
        assert_eq!(err.kind(), ErrorKind::Request);
        assert_eq!(
            store.get("mine").expect("kept").policy.rules[0]
                .host
                .to_string(),
            "*.example.org"
        );
        let entries = fs::read_dir(store.dir()).expect("dir").count();
        assert_eq!(entries, 1, "no temporary file is left behind");
    }

    #[test]
    fn network_builtins_cannot_be_shadowed_or_removed() {
        let (_dir, store) = store();
        let shadow = MINE.replace("\"mine\"", "\"internet_access\"");
        let err = store.import("x.toml", &shadow).expect_err("shadows");
        assert!(matches!(err, StoreError::BuiltIn { .. }), "{err}");
        assert!(matches!(
            store.remove("no_access"),
            Err(StoreError::BuiltIn { .. })
        ));
        assert!(matches!(
            store.remove("../etc"),
            Err(StoreError::BadName(_))
        ));
        assert!(matches!(
            store.get("../../etc/passwd"),
            Err(StoreError::BadName(_))
        ));
        assert!(!store.dir().exists(), "nothing was created");
    }

    /// Regression (hunt net 7): a broken file of the policy directory, named by a request, was
    /// the caller's fault (a 422 `request` quoting the server's path) while a misnamed one was
    /// warden's (a 500): both are the operator's files, neither the caller's doing. A file
    /// given to `import` is still its importer's to fix.
    #[test]
    fn network_a_broken_file_in_the_directory_is_never_the_callers_fault() {
        let (_dir, store) = store();
        fs::create_dir_all(store.dir()).expect("dir");
        let broken = MINE.replace("\"limited\"", "5");
        fs::write(store.dir().join("mine.toml"), &broken).expect("write");
        fs::write(store.dir().join("zz.toml"), MINE).expect("write");
        for name in ["mine", "zz"] {
            let err = store.get(name).expect_err("broken");
            assert_eq!(err.kind(), ErrorKind::Internal, "{name}: {err}");
        }
        let err = store.import("mine.toml", &broken).expect_err("invalid");
        assert_eq!(err.kind(), ErrorKind::Request, "{err}");
    }

    #[test]
    fn network_a_misnamed_file_in_the_directory_is_reported() {
        let (_dir, store) = store();
        fs::create_dir_all(store.dir()).expect("dir");
        fs::write(store.dir().join("other.toml"), MINE).expect("write");
        let err = store.list().expect_err("misnamed");
        assert!(matches!(err, StoreError::Misnamed { .. }), "{err}");
        store
            .remove("other")
            .expect("a broken file can still be removed");
    }
}
