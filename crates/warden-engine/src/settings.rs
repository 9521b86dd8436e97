//! The engine's settings: `warden.toml` with the environment applied on top, in one place, so
//! that every adapter (the CLI now, the HTTP and MCP servers next) gets the same precedence.
//!
//! Each setting comes from its environment variable if set, else from the configuration file,
//! else the default (docs/cli.md#environment, docs/history.md#where-it-is). A bad value names
//! where it came from: the variable, or the file's section and key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use warden_core::config::{DEFAULT_CONFIG_PATH, DEFAULT_POLICY_DIR};
use warden_core::network::{Registry, BUILTIN_NAMES};
use warden_core::{
    parse_age, ByteSize, Config, ConfigError, Limits, Mode, ModePolicy, NetworkConfig, ServerConfig,
};

use crate::compile_cache::{CompileCache, DEFAULT_CACHE_DIR, DEFAULT_MAX_BYTES};
use crate::dependency_cache::DependencyCache;
use crate::engine::EngineConfig;
use crate::history::{Prune, Retention, DEFAULT_MAX_KEPT, DEFAULT_MAX_SIZE, MIN_MAX_SIZE};

/// Where the history database is when nothing names it and no home directory is known.
pub const SYSTEM_HISTORY_PATH: &str = "/var/lib/warden/history.sqlite3";

/// Everything the engine is configured by.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Which modes the operator allows for which threat levels (`[modes]`).
    pub modes: ModePolicy,
    /// The most any request may get (`[maxima]` over the default maxima).
    pub maxima: Limits,
    /// A directory of language files replacing or adding to the embedded ones (`[languages]`).
    pub languages_dir: Option<PathBuf>,
    /// The compile cache (`[cache]`, `WARDEN_CACHE_DIR`).
    pub cache: CacheSettings,
    /// The execution history (`[history]`, `WARDEN_DB`, `WARDEN_HISTORY_*`). An invalid value
    /// is an error of [`Settings::load`]: nothing runs until it is fixed (docs/history.md).
    pub history: HistorySettings,
    /// `warden serve`'s section (`[server]`), read by the server only.
    pub server: ServerConfig,
    /// Network policies (`[network]`, `WARDEN_NETWORK_POLICY_DIR`).
    pub network: NetworkSettings,
    /// The `[tools]` settings with `WARDEN_TOOLS_DIR` applied.
    pub tools: crate::tools::ToolsSettings,
    /// The `[dependencies]` settings: the install stage's policy and package indexes.
    pub install: InstallSettings,
    /// The `[response]` rule, if any.
    pub response: Option<warden_core::ResponseConfig>,
    /// The `[sessions]` settings with `WARDEN_SESSIONS_DIR` applied.
    pub sessions: crate::sessions::SessionsSettings,
    /// The `[volumes]` settings with `WARDEN_VOLUMES_DIR` applied.
    pub volumes: crate::volumes::VolumesSettings,
}

/// How dependencies are installed (`[dependencies]` of `warden.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallSettings {
    /// The network policy of the dependency stage.
    pub policy: String,
    /// Per language id, the package index its installer uses instead of its default.
    pub index: BTreeMap<String, String>,
}

impl Default for InstallSettings {
    fn default() -> Self {
        Self {
            policy: crate::engine::dependencies::INSTALL_POLICY.to_owned(),
            index: BTreeMap::new(),
        }
    }
}

/// Which network policies requests may have, and where imported ones are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    /// The directory of imported policies (`PolicyStore`).
    pub policy_dir: PathBuf,
    /// The policies a request may choose.
    pub allowed: Vec<String>,
    /// The policy of a request that names none.
    pub default: String,
    /// The policy of a request that names none, for the modes that have their own.
    pub mode_default: BTreeMap<Mode, String>,
    /// The registries the operator adds to those found on the host.
    pub registries: Vec<Registry>,
}

/// The source named by registries the operator adds.
pub const OPERATOR_REGISTRIES: &str = "warden.toml [network] registries";

impl NetworkSettings {
    /// The policy a request that names none gets in `mode`.
    pub fn default_for(&self, mode: Mode) -> &str {
        self.mode_default.get(&mode).unwrap_or(&self.default)
    }

    /// Whether a request may choose the policy `name`.
    pub fn allows(&self, name: &str) -> bool {
        self.allowed.iter().any(|a| a == name)
    }
}

/// The compile cache's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSettings {
    /// Whether artifacts are cached at all.
    pub enabled: bool,
    /// The cache's directory.
    pub dir: PathBuf,
    /// The bound on its total size.
    pub max_size: ByteSize,
}

impl CacheSettings {
    /// The cache these settings describe, if it is enabled.
    pub fn cache(&self) -> Option<CompileCache> {
        self.enabled
            .then(|| CompileCache::new(self.dir.clone(), self.max_size.bytes()))
    }

    /// Where a one-shot process keeps its analyses for the next (`analysis` beside the compile
    /// cache's directory), when caching is enabled.
    pub fn analysis_dir(&self) -> Option<PathBuf> {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        self.enabled.then(|| parent.join("analysis"))
    }

    /// The dependency cache beside the compile cache (`dependencies` in the parent of its
    /// directory), with the same bound. It exists even when compile caching is disabled: runs
    /// bind their installed set from it.
    pub fn dependency_cache(&self) -> DependencyCache {
        let parent = self.dir.parent().unwrap_or(&self.dir);
        DependencyCache::new(parent.join("dependencies"), self.max_size.bytes())
    }
}

/// Where the history is and what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistorySettings {
    /// The database file.
    pub path: PathBuf,
    /// What is kept of code and output.
    pub retention: Retention,
    /// Executions older than this are deleted after each record.
    pub max_age: Option<Duration>,
    /// Only this many executions, the newest, are kept.
    pub max_count: Option<u64>,
    /// The bound on the database's size (`[history] max_size`): past it, the oldest records
    /// of the caller that holds the most are deleted.
    pub max_size: ByteSize,
    /// The most kept of each of an execution's code and outputs (`[history] max_kept`); the
    /// rest is cut, and the entry says so.
    pub max_kept: ByteSize,
}

impl HistorySettings {
    /// The settings of a history at `path` keeping `retention`, every bound at its default.
    pub fn new(path: PathBuf, retention: Retention) -> Self {
        Self {
            path,
            retention,
            max_age: None,
            max_count: None,
            max_size: DEFAULT_MAX_SIZE,
            max_kept: DEFAULT_MAX_KEPT,
        }
    }

    /// What to delete after a record made at `now`: always something, since the size is
    /// always bounded.
    pub fn prune_rule(&self, now: SystemTime) -> Option<Prune> {
        Some(Prune {
            older_than: self.max_age.and_then(|age| now.checked_sub(age)),
            keep_last: self.max_count,
            max_size: Some(self.max_size),
        })
    }
}

/// Where a setting's value came from, to name it in an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingSource {
    /// An environment variable.
    Env(&'static str),
    /// A key of the configuration file, as `[section] key`.
    File(&'static str),
}

impl std::fmt::Display for SettingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SettingSource::Env(name) | SettingSource::File(name) => f.write_str(name),
        }
    }
}

/// One setting has a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {reason}")]
pub struct SettingError {
    /// Where the value came from.
    pub origin: SettingSource,
    /// What is wrong with it.
    pub reason: String,
}

/// The settings cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The configuration file is unreadable or invalid.
    #[error("loading the configuration")]
    Config(#[from] ConfigError),
    /// An environment variable that overrides a setting has a value that cannot be used.
    #[error("reading the environment")]
    Environment(#[source] SettingError),
}

impl Settings {
    /// The settings from the process's environment and the configuration file it names.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_with(|name| std::env::var_os(name).and_then(|v| v.into_string().ok()))
    }

    /// The settings with `env` as the environment (a test's, or a server's own).
    pub fn load_with(env: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        // An empty variable is unset, as for every other variable. WARDEN_CONFIG must exist;
        // the default file is optional.
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let (path, optional) = match env("WARDEN_CONFIG") {
            Some(path) => (PathBuf::from(path), false),
            None => (PathBuf::from(DEFAULT_CONFIG_PATH), true),
        };
        let config = Config::load(&path, optional)?;
        Self::from_config(config, env).map_err(|e| match e.origin {
            // A key of the file: reported as the file's other mistakes are.
            SettingSource::File(_) => SettingsError::Config(ConfigError::Parse {
                path,
                line: None,
                message: e.to_string(),
            }),
            SettingSource::Env(_) => SettingsError::Environment(e),
        })
    }

    /// The settings of `config` with `env` (empty values already left out) applied on top.
    fn from_config(
        config: Config,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingError> {
        let maxima = config.maxima();
        let cache = CacheSettings {
            enabled: config.cache.enabled.unwrap_or(true),
            dir: env("WARDEN_CACHE_DIR")
                .map(PathBuf::from)
                .or(config.cache.dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR)),
            max_size: config.cache.max_size.unwrap_or(ByteSize(DEFAULT_MAX_BYTES)),
        };
        let history = history(config.history, &env)?;
        let tools = tools(config.tools, &history, &env);
        let mut sessions = sessions(&config.sessions, &history, &env);
        let volumes = volumes(&config.volumes, &history, &env);
        // A session's workspace is a volume: the defaults of a size the operator did not set
        // stay within `[volumes] max_size` (64MiB there made every session a 422 naming a
        // 256MiB nobody asked for).
        if config.sessions.disk.is_none() {
            sessions.disk = sessions.disk.min(volumes.max_size);
        }
        if config.sessions.max_disk.is_none() {
            sessions.max_disk = sessions.max_disk.min(volumes.max_size);
        }
        Ok(Self {
            volumes,
            sessions,
            maxima,
            modes: config.modes,
            languages_dir: config.languages.dir,
            cache,
            history,
            server: config.server,
            network: network(config.network, &env),
            tools,
            response: config.response,
            install: InstallSettings {
                policy: config
                    .dependencies
                    .policy
                    .unwrap_or_else(|| crate::engine::dependencies::INSTALL_POLICY.to_owned()),
                index: config.dependencies.index,
            },
        })
    }

    /// The engine's configuration for these settings, with `helper` as the sandbox helper and
    /// the analysis worker (the analysis of untrusted code confined: docs/analysis.md#bounds).
    pub fn engine_config(&self, helper: PathBuf) -> EngineConfig {
        EngineConfig {
            confine_analysis: true,
            languages_dir: self.languages_dir.clone(),
            maxima: self.maxima,
            cache: self.cache.cache(),
            analyses_dir: self.cache.analysis_dir(),
            dependencies: Some(self.cache.dependency_cache()),
            modes: self.modes.clone(),
            history: Some(Ok(self.history.clone())),
            network: Some(self.network.clone()),
            services: self.server.listen.clone(),
            tools: Some(self.tools.clone()),
            install: self.install.clone(),
            response: self.response.clone(),
            sessions: self.sessions.clone(),
            volumes: self.volumes.clone(),
            ..EngineConfig::new(helper)
        }
    }
}

/// The `[network]` section with `WARDEN_NETWORK_POLICY_DIR` applied (the section was checked
/// when the file was read: names, defaults within `allowed`, registry URLs).
fn network(config: NetworkConfig, env: &impl Fn(&str) -> Option<String>) -> NetworkSettings {
    let registries = config
        .registries
        .iter()
        .filter_map(|url| Registry::from_url(url, OPERATOR_REGISTRIES))
        .collect();
    NetworkSettings {
        policy_dir: env("WARDEN_NETWORK_POLICY_DIR")
            .map(PathBuf::from)
            .or(config.policy_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_POLICY_DIR)),
        allowed: config
            .allowed
            .unwrap_or_else(|| BUILTIN_NAMES.map(str::to_owned).to_vec()),
        default: config
            .default
            .unwrap_or_else(|| BUILTIN_NAMES[0].to_owned()),
        mode_default: config.mode_default,
        registries,
    }
}

/// The `[sessions]` section with `WARDEN_SESSIONS_DIR` applied; the state directory defaults
/// to `sessions/` beside the history database, as the tools' does.
fn sessions(
    config: &warden_core::SessionsConfig,
    history: &HistorySettings,
    env: &impl Fn(&str) -> Option<String>,
) -> crate::sessions::SessionsSettings {
    let dir = env("WARDEN_SESSIONS_DIR")
        .map(PathBuf::from)
        .or_else(|| Some(history.path.parent()?.join("sessions")))
        .unwrap_or_else(|| PathBuf::from(crate::sessions::SYSTEM_SESSIONS_DIR));
    crate::sessions::SessionsSettings::new(config, dir)
}

/// The `[volumes]` section with `WARDEN_VOLUMES_DIR` applied; the directory defaults to
/// `volumes/` beside the history database, as the tools' does.
fn volumes(
    config: &warden_core::VolumesConfig,
    history: &HistorySettings,
    env: &impl Fn(&str) -> Option<String>,
) -> crate::volumes::VolumesSettings {
    let dir = env("WARDEN_VOLUMES_DIR")
        .map(PathBuf::from)
        .or_else(|| config.dir.clone())
        .or_else(|| Some(history.path.parent()?.join("volumes")))
        .unwrap_or_else(|| PathBuf::from(crate::volumes::SYSTEM_VOLUMES_DIR));
    let defaults = crate::volumes::VolumesSettings::in_dir(dir);
    crate::volumes::VolumesSettings {
        max_size: config.max_size(),
        quota_per_caller: config.quota_per_caller(),
        prune_after: config.prune_after,
        concurrent_writers: config.concurrent_writers,
        writer_wait: config.writer_wait.unwrap_or(defaults.writer_wait),
        ..defaults
    }
}

/// The `[tools]` section with `WARDEN_TOOLS_DIR` applied. The state directory defaults to
/// `tools/` beside the history database (so that a test's world, or an operator's data
/// directory, holds both), else the system's.
fn tools(
    config: warden_core::ToolsConfig,
    history: &HistorySettings,
    env: &impl Fn(&str) -> Option<String>,
) -> crate::tools::ToolsSettings {
    let state_dir = env("WARDEN_TOOLS_DIR")
        .map(PathBuf::from)
        .or(config.state_dir)
        .or_else(|| Some(history.path.parent()?.join("tools")))
        .unwrap_or_else(|| PathBuf::from(SYSTEM_TOOLS_DIR));
    crate::tools::ToolsSettings {
        dirs: config.dirs,
        state_dir,
        allowed_categories: config.allowed_categories,
        approval: config.approval,
        disabled: config.disabled,
        files_quota: config
            .files_quota
            .map_or(crate::tools::DEFAULT_FILES_QUOTA, |q| q.0),
    }
}

/// The tools' state directory when nothing else says.
const SYSTEM_TOOLS_DIR: &str = "/var/lib/warden/tools";

/// The `[history]` section with `WARDEN_DB` and `WARDEN_HISTORY_*` applied, each value
/// checked: a mistake names the variable or the key it came from.
fn history(
    config: warden_core::HistoryConfig,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<HistorySettings, SettingError> {
    let invalid = |origin, reason: String| SettingError { origin, reason };
    let retention = match env("WARDEN_HISTORY_RETENTION") {
        Some(v) => v
            .parse()
            .map_err(|e| invalid(SettingSource::Env("WARDEN_HISTORY_RETENTION"), e))?,
        None => match config.retention {
            Some(v) => v
                .parse()
                .map_err(|e| invalid(SettingSource::File("[history] retention"), e))?,
            None => Retention::default(),
        },
    };
    let (max_age, age_origin) = match env("WARDEN_HISTORY_MAX_AGE") {
        Some(v) => {
            let origin = SettingSource::Env("WARDEN_HISTORY_MAX_AGE");
            let age = parse_age(&v).map_err(|e| invalid(origin, e.to_string()))?;
            (Some(age), origin)
        }
        // Checked when the file was read: `Config::load` names the key and line.
        None => (config.max_age, SettingSource::File("[history] max_age")),
    };
    // As a count of none: every execution, the one just recorded included, would go at once.
    if max_age == Some(std::time::Duration::ZERO) {
        return Err(invalid(age_origin, "must be more than 0s".to_owned()));
    }
    let (max_count, origin) = match env("WARDEN_HISTORY_MAX_COUNT") {
        Some(v) => {
            let origin = SettingSource::Env("WARDEN_HISTORY_MAX_COUNT");
            let n = v
                .parse::<u64>()
                .map_err(|e| invalid(origin, format!("{v:?}: {e}")))?;
            (Some(n), origin)
        }
        None => (config.max_count, SettingSource::File("[history] max_count")),
    };
    // Keeping none would delete every execution, the one just recorded included.
    if max_count == Some(0) {
        return Err(invalid(origin, "must be at least 1".to_owned()));
    }
    let max_size = history_size(
        env,
        ("WARDEN_HISTORY_MAX_SIZE", "[history] max_size"),
        config.max_size,
        (DEFAULT_MAX_SIZE, MIN_MAX_SIZE),
        "",
    )?;
    let max_kept = history_size(
        env,
        ("WARDEN_HISTORY_MAX_KEPT", "[history] max_kept"),
        config.max_kept,
        (DEFAULT_MAX_KEPT, ByteSize(1)),
        " (retention = \"metadata\" keeps none of the code and output)",
    )?;
    let (path, origin) = history_path(config.path, env);
    check_history_path(&path).map_err(|reason| invalid(origin, reason))?;
    Ok(HistorySettings {
        path,
        retention,
        max_age,
        max_count,
        max_size,
        max_kept,
    })
}

/// A size of `[history]`: the variable `names.0` if set, else the file's key `names.1`, else
/// `bounds.0`; below `bounds.1` it is refused, named by where it came from (`hint` added to
/// the reason).
fn history_size(
    env: &impl Fn(&str) -> Option<String>,
    names: (&'static str, &'static str),
    configured: Option<ByteSize>,
    bounds: (ByteSize, ByteSize),
    hint: &str,
) -> Result<ByteSize, SettingError> {
    let invalid = |origin, reason: String| SettingError { origin, reason };
    let (size, origin) = match env(names.0) {
        Some(v) => {
            let origin = SettingSource::Env(names.0);
            let size = v
                .parse::<ByteSize>()
                .map_err(|e| invalid(origin, format!("{v:?}: {e}")))?;
            (size, origin)
        }
        // Read as a size when the file was read: `Config::load` names the key and line.
        None => (configured.unwrap_or(bounds.0), SettingSource::File(names.1)),
    };
    if size < bounds.1 {
        return Err(invalid(
            origin,
            format!("{size} is below {}{hint}", bounds.1),
        ));
    }
    Ok(size)
}

/// Refuses a history path that names a directory: SQLite would create the database (and its
/// `-wal` and `-shm` files, holding submitted code) under names nothing reads back. Refuses
/// one that names anything else but a regular file (bug hunt): a FIFO held every command that
/// opens the history blocked in the open, past the signals that should end `warden run`, and
/// `/dev/null` answered "disk I/O error" and left a world-writable `/dev/null-journal`.
fn check_history_path(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt as _;
    if path.as_os_str().as_bytes().ends_with(b"/") || path.is_dir() {
        return Err(format!(
            "{} is a directory; name the database file (e.g. {})",
            path.display(),
            path.join("history.sqlite3").display()
        ));
    }
    match std::fs::metadata(path) {
        Ok(found) if !found.is_file() => Err(format!(
            "{} is not a regular file (a FIFO, a socket or a device); name the database file",
            path.display()
        )),
        _ => Ok(()),
    }
}

/// The history database: `WARDEN_DB`, else `configured` (the configuration's `[history] path`),
/// else `$XDG_DATA_HOME/warden/history.sqlite3`, else `$HOME/.local/share/warden/history.sqlite3`,
/// else [`SYSTEM_HISTORY_PATH`]; with the setting it came from (the defaults are named as the
/// key they stand for).
fn history_path(
    configured: Option<PathBuf>,
    env: &impl Fn(&str) -> Option<String>,
) -> (PathBuf, SettingSource) {
    let var = |name| env(name).map(PathBuf::from);
    if let Some(db) = var("WARDEN_DB") {
        return (db, SettingSource::Env("WARDEN_DB"));
    }
    let origin = SettingSource::File("[history] path");
    if let Some(db) = configured {
        return (db, origin);
    }
    // The XDG spec says to ignore a relative XDG_DATA_HOME.
    let data = var("XDG_DATA_HOME")
        .filter(|d| d.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".local/share")));
    let path = data.map_or_else(
        || PathBuf::from(SYSTEM_HISTORY_PATH),
        |d| d.join("warden/history.sqlite3"),
    );
    (path, origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    fn try_settings(toml: &str, vars: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let config = Config::from_toml(Path::new("warden.toml"), toml).expect("valid");
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_config(config, |name| vars.get(name).cloned())
    }

    fn settings(toml: &str, vars: &[(&str, &str)]) -> Settings {
        try_settings(toml, vars).expect("valid settings")
    }

    #[test]
    fn the_environment_wins_over_the_file_which_wins_over_the_defaults() {
        let file = "[history]\npath = \"/f/h.db\"\nretention = \"full\"\nmax_count = 5\n\
                    max_age = \"2d\"\n[cache]\ndir = \"/f/cache\"\n";
        let s = settings(file, &[]);
        let h = s.history.clone();
        assert_eq!(h.path, PathBuf::from("/f/h.db"));
        assert_eq!(h.retention, Retention::Full);
        assert_eq!(h.max_count, Some(5));
        assert_eq!(h.max_age, Some(Duration::from_secs(2 * 86_400)));
        assert_eq!(s.cache.dir, PathBuf::from("/f/cache"));
        let env = [
            ("WARDEN_DB", "/e/h.db"),
            ("WARDEN_HISTORY_RETENTION", "metadata"),
            ("WARDEN_HISTORY_MAX_COUNT", "7"),
            ("WARDEN_HISTORY_MAX_AGE", "1w"),
            ("WARDEN_CACHE_DIR", "/e/cache"),
        ];
        let s = settings(file, &env);
        let h = s.history;
        assert_eq!(h.path, PathBuf::from("/e/h.db"));
        assert_eq!(h.retention, Retention::Metadata);
        assert_eq!(h.max_count, Some(7));
        assert_eq!(h.max_age, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(s.cache.dir, PathBuf::from("/e/cache"));
        let s = settings("", &[]);
        assert_eq!(s.cache.dir, PathBuf::from(DEFAULT_CACHE_DIR));
        assert!(s.cache.enabled);
        assert_eq!(s.history.retention, Retention::Code);
    }

    #[test]
    fn the_history_path_falls_back_through_xdg_and_home() {
        let path = |vars: &[(&str, &str)]| settings("", vars).history.path;
        assert_eq!(
            path(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]),
            PathBuf::from("/x/warden/history.sqlite3")
        );
        assert_eq!(
            path(&[("XDG_DATA_HOME", "relative"), ("HOME", "/h")]),
            PathBuf::from("/h/.local/share/warden/history.sqlite3")
        );
        assert_eq!(path(&[]), PathBuf::from(SYSTEM_HISTORY_PATH));
    }

    #[test]
    fn a_bad_value_names_its_source() {
        let err = try_settings("", &[("WARDEN_HISTORY_RETENTION", "forever")]).expect_err("bad");
        assert!(
            err.to_string().starts_with("WARDEN_HISTORY_RETENTION: "),
            "{err}"
        );
        let err = try_settings("[history]\nretention = \"forever\"\n", &[]).expect_err("bad");
        assert!(
            err.to_string().starts_with("[history] retention: "),
            "{err}"
        );
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_AGE", "soon")]).expect_err("bad");
        assert_eq!(err.origin, SettingSource::Env("WARDEN_HISTORY_MAX_AGE"));
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_COUNT", "-1")]).expect_err("bad");
        assert_eq!(err.origin, SettingSource::Env("WARDEN_HISTORY_MAX_COUNT"));
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_COUNT", "abc")]).expect_err("bad");
        assert!(err.to_string().contains("\"abc\""), "{err}");
    }

    /// Bug hunt: `max_count = 0` deleted the whole history, the run just recorded included.
    #[test]
    fn a_sessions_default_disk_stays_within_the_volumes_largest() {
        // Bug hunt: `[volumes] max_size = "64MiB"` alone made every session a 422 naming the
        // default 256MiB workspace.
        let small = settings("[volumes]\nmax_size = \"64MiB\"\n", &[]);
        assert_eq!(small.sessions.disk, ByteSize::mib(64));
        assert_eq!(small.sessions.max_disk, ByteSize::mib(64));
        let set = settings("[sessions]\ndisk = \"32MiB\"\n", &[]);
        assert_eq!(set.sessions.disk, ByteSize::mib(32));
    }

    #[test]
    fn a_callers_volumes_quota_defaults_to_at_least_the_largest_volume() {
        let none = settings("", &[]);
        assert_eq!(none.volumes.quota_per_caller, ByteSize::mib(16 * 1024));
        let large = settings("[volumes]\nmax_size = \"32GiB\"\n", &[]);
        assert_eq!(large.volumes.quota_per_caller, ByteSize::mib(32 * 1024));
        let quota = settings("[volumes]\nquota_per_caller = \"1GiB\"\n", &[]);
        assert_eq!(quota.volumes.quota_per_caller, ByteSize::mib(1024));
        assert_eq!(quota.volumes.max_size, ByteSize::mib(1024));
        assert_eq!(quota.sessions.disk, ByteSize::mib(256));
        assert_eq!(quota.sessions.max_disk, ByteSize::mib(1024));
    }

    #[test]
    fn keeping_no_executions_is_refused() {
        let err = try_settings("[history]\nmax_count = 0\n", &[]).expect_err("zero");
        assert_eq!(err.to_string(), "[history] max_count: must be at least 1");
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_COUNT", "0")]).expect_err("zero");
        assert_eq!(err.origin, SettingSource::Env("WARDEN_HISTORY_MAX_COUNT"));
        let kept = settings("[history]\nmax_count = 1\n", &[])
            .history
            .max_count;
        assert_eq!(kept, Some(1));
        // Nor any age: every execution would be pruned as it is recorded (bug hunt).
        let err = try_settings("[history]\nmax_age = \"0s\"\n", &[]).expect_err("zero");
        assert_eq!(err.to_string(), "[history] max_age: must be more than 0s");
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_AGE", "0s")]).expect_err("zero");
        assert_eq!(err.origin, SettingSource::Env("WARDEN_HISTORY_MAX_AGE"));
    }

    /// Hunt srv 1: nothing bounded the history by default (no `max_count`, no `max_age`, and
    /// the code kept whole up to the server's 8 MiB `max_body`): a client filled the disk
    /// through it. Its size and each code and output it keeps are bounded in bytes now, by
    /// default.
    #[test]
    fn the_history_is_bounded_in_bytes_by_default() {
        let h = settings("", &[]).history;
        assert_eq!(h.max_size, ByteSize(ByteSize::GIB));
        assert_eq!(h.max_kept, ByteSize::kib(256));
        let rule = h.prune_rule(SystemTime::now()).expect("a rule");
        assert_eq!(rule.max_size, Some(ByteSize(ByteSize::GIB)));
        let file = "[history]\nmax_size = \"2GiB\"\nmax_kept = \"64KiB\"\n";
        let h = settings(file, &[]).history;
        assert_eq!(
            (h.max_size, h.max_kept),
            (ByteSize(2 * ByteSize::GIB), ByteSize::kib(64))
        );
        let env = [
            ("WARDEN_HISTORY_MAX_SIZE", "100MiB"),
            ("WARDEN_HISTORY_MAX_KEPT", "1MiB"),
        ];
        let h = settings(file, &env).history;
        assert_eq!(
            (h.max_size, h.max_kept),
            (ByteSize::mib(100), ByteSize::mib(1))
        );
        let err = try_settings("[history]\nmax_size = \"512KiB\"\n", &[]).expect_err("small");
        assert_eq!(err.to_string(), "[history] max_size: 512KiB is below 1MiB");
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_KEPT", "0")]).expect_err("none");
        assert_eq!(err.origin, SettingSource::Env("WARDEN_HISTORY_MAX_KEPT"));
        assert!(err.to_string().contains("metadata"), "{err}");
        let err = try_settings("", &[("WARDEN_HISTORY_MAX_SIZE", "lots")]).expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("WARDEN_HISTORY_MAX_SIZE: \"lots\""),
            "{err}"
        );
    }

    /// Bug hunt: `WARDEN_DB=/dir/` made SQLite create `dir`, `dir-wal` and `dir-shm` files
    /// that `warden history` never read back.
    #[test]
    fn a_history_path_naming_a_directory_is_refused() {
        let err = try_settings("", &[("WARDEN_DB", "/tmp/x/dir/")]).expect_err("trailing /");
        assert_eq!(err.origin, SettingSource::Env("WARDEN_DB"));
        assert!(err.to_string().contains("is a directory"), "{err}");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = format!("[history]\npath = {:?}\n", dir.path().display().to_string());
        let err = try_settings(&file, &[]).expect_err("a directory");
        assert_eq!(err.origin, SettingSource::File("[history] path"));
        let db = dir.path().join("h.db").display().to_string();
        assert_eq!(
            settings("", &[("WARDEN_DB", &db)]).history.path,
            PathBuf::from(&db)
        );
    }

    /// Bug hunt: `WARDEN_CONFIG=""` was read as a file named "" while every other empty
    /// variable is unset.
    #[test]
    fn an_empty_variable_is_unset_warden_config_included() {
        let vars = [("WARDEN_CONFIG", ""), ("WARDEN_DB", "/e/h.db")];
        let settings = Settings::load_with(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        });
        let settings = settings.expect("an empty WARDEN_CONFIG is the default file");
        assert_eq!(settings.history.path, PathBuf::from("/e/h.db"));
    }

    #[test]
    fn a_bad_variable_is_an_error_of_loading() {
        let vars = [("WARDEN_HISTORY_RETENTION", "bogus")];
        let err = Settings::load_with(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
        .expect_err("refused");
        let chain = crate::error_chain(&err);
        assert!(chain.contains("WARDEN_HISTORY_RETENTION"), "{chain}");
    }

    #[test]
    fn network_settings_take_the_environment_then_the_file_then_the_defaults() {
        let s = settings("", &[]);
        assert_eq!(s.network.policy_dir, PathBuf::from(DEFAULT_POLICY_DIR));
        assert_eq!(s.network.default_for(Mode::Sandboxed), "no_access");
        assert!(s.network.allows("internet_access") && !s.network.allows("mine"));
        let file = "[network]\npolicy_dir = \"/f/p\"\nallowed = [\"no_access\", \"mine\"]\n\
                    registries = [\"https://mirror.pkgs.example:8443/simple\"]\n\
                    [network.mode_default]\ntrusted = \"mine\"\n";
        let s = settings(file, &[]);
        assert_eq!(s.network.policy_dir, PathBuf::from("/f/p"));
        assert_eq!(s.network.default_for(Mode::Trusted), "mine");
        assert_eq!(s.network.default_for(Mode::Isolated), "no_access");
        assert!(s.network.allows("mine") && !s.network.allows("internet_access"));
        assert_eq!(
            s.network.registries[0].to_string(),
            "mirror.pkgs.example:8443"
        );
        assert_eq!(s.network.registries[0].source, OPERATOR_REGISTRIES);
        let s = settings(file, &[("WARDEN_NETWORK_POLICY_DIR", "/e/p")]);
        assert_eq!(s.network.policy_dir, PathBuf::from("/e/p"));
    }

    #[test]
    fn the_volumes_dir_is_the_environment_then_the_file_then_beside_the_history() {
        let s = settings("[history]\npath = \"/f/h.db\"\n", &[]);
        assert_eq!(s.volumes.dir, PathBuf::from("/f/volumes"));
        assert_eq!(
            s.volumes.max_size,
            warden_core::config::DEFAULT_MAX_VOLUME_SIZE
        );
        let file = "[volumes]\ndir = \"/f/v\"\nmax_size = \"1GiB\"\n\
                    concurrent_writers = \"wait\"\nwriter_wait = \"2s\"\n";
        let s = settings(file, &[]);
        assert_eq!(s.volumes.dir, PathBuf::from("/f/v"));
        assert_eq!(s.volumes.max_size, ByteSize::mib(1024));
        assert_eq!(s.volumes.writer_wait, Duration::from_secs(2));
        assert_eq!(
            s.volumes.concurrent_writers,
            warden_core::config::ConcurrentWriters::Wait
        );
        let s = settings(file, &[("WARDEN_VOLUMES_DIR", "/e/v")]);
        assert_eq!(s.volumes.dir, PathBuf::from("/e/v"));
    }

    #[test]
    fn a_disabled_cache_is_none() {
        let s = settings("[cache]\nenabled = false\nmax_size = \"1MiB\"\n", &[]);
        assert!(s.cache.cache().is_none());
        assert_eq!(s.cache.max_size, ByteSize::mib(1));
    }
}
