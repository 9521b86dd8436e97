//! Each test's own world (issue 8): a temporary directory with its own history database,
//! compile cache, configuration file and network policy directory, and the `warden` command
//! pointed at them through `WARDEN_DB`, `WARDEN_CACHE_DIR`, `WARDEN_CONFIG` and
//! `WARDEN_NETWORK_POLICY_DIR`, so that no test reads or writes the host's real state and
//! results do not depend on which tests ran before.
//!
//! The one helper of the end-to-end tests of `warden-cli` (`mod support;`) and of the
//! integration tests of `warden-engine` (`#[path]`d there).

// Each test file uses a part of it; cargo also builds it alone as a test target.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A test's private directory, its database, cache and configuration inside.
pub struct World {
    dir: tempfile::TempDir,
}

impl Default for World {
    fn default() -> Self {
        Self::with_config("")
    }
}

impl World {
    /// A world with an empty configuration file (the defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// A world whose configuration file holds `toml`.
    pub fn with_config(toml: &str) -> Self {
        let world = Self {
            dir: tempfile::tempdir().expect("a temporary directory for the test"),
        };
        world.write_config(toml);
        world
    }

    /// The directory, for the test's own files.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The history database (`WARDEN_DB`); its directory does not exist until warden creates
    /// it.
    pub fn db(&self) -> PathBuf {
        self.path().join("data/history.sqlite3")
    }

    /// The compile cache's directory (`WARDEN_CACHE_DIR`).
    pub fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }

    /// The configuration file (`WARDEN_CONFIG`).
    pub fn config(&self) -> PathBuf {
        self.path().join("warden.toml")
    }

    /// The directory of imported network policies (`WARDEN_NETWORK_POLICY_DIR`); it does not
    /// exist until a policy is imported.
    pub fn policy_dir(&self) -> PathBuf {
        self.path().join("policies/network")
    }

    /// Replaces the configuration file.
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.config(), toml).expect("configuration written");
    }

    /// The variables that point warden at this world.
    pub fn env(&self) -> [(&'static str, PathBuf); 4] {
        [
            ("WARDEN_DB", self.db()),
            ("WARDEN_CACHE_DIR", self.cache()),
            ("WARDEN_CONFIG", self.config()),
            ("WARDEN_NETWORK_POLICY_DIR", self.policy_dir()),
        ]
    }

    /// `warden` with an empty environment but for this world's variables, stdin empty and
    /// stdout and stderr captured. Only the CLI's tests have the binary.
    pub fn warden(&self) -> Command {
        // `env!` would not compile in warden-engine's tests, which include this file too.
        let Some(binary) = option_env!("CARGO_BIN_EXE_warden") else {
            panic!("only warden-cli's tests spawn the warden binary");
        };
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The engine's settings in this world, as `warden` would load them.
    pub fn settings(&self) -> warden_engine::Settings {
        let env = self.env();
        warden_engine::Settings::load_with(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.display().to_string())
        })
        .expect("the world's settings load")
    }
}
