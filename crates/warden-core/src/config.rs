//! The operator's configuration, `warden.toml`: the mode policy, the limits' maxima, the
//! execution history, the compile cache and the language override directory. A request can
//! never widen what this file allows (DESIGN.md §7.6). Every section is optional; an absent file
//! is the defaults. Environment variables that override a setting are applied by the engine's
//! settings loader (`warden_engine::Settings`), not here.
//!
//! ```toml
//! [modes]
//! default = "auto"        # the mode of a request that names none
//! trusted_enabled = false
//! none = "sandboxed"      # the weakest mode allowed per threat level, or "refuse"
//! high = "isolated"
//! critical = "refuse"
//!
//! [maxima]                # the most any request may get; unset fields keep the defaults
//! cpu_time = "60s"
//! memory = "2GiB"
//!
//! [history]               # the execution history (docs/history.md); environment variables win
//! path = "/var/lib/warden/history.sqlite3"
//! retention = "code"      # metadata, code or full
//! max_age = "30d"
//! max_count = 100000
//! max_size = "1GiB"      # the database's bound, pruned past it
//! max_kept = "256KiB"    # the most kept of each code or output of an execution
//!
//! [cache]                 # the compile cache; WARDEN_CACHE_DIR wins over `dir`
//! enabled = true
//! dir = "/var/cache/warden/compile"
//! max_size = "1GiB"
//!
//! [languages]             # language files replacing or adding to the embedded ones
//! dir = "/etc/warden/languages"
//!
//! [server]                # `warden serve` (config/server.rs, docs/server.md)
//! listen = ["127.0.0.1:2358"]
//!
//! [network]               # network policies (config/network.rs, docs/network.md)
//! default = "no_access"
//!
//! [tools]                 # the tool registry (config/tools.rs, docs/tools.md)
//! approval = ["host"]
//!
//! [dependencies]          # the install stage's policy and package indexes (config/dependencies.rs)
//! policy = "limited_access"
//!
//! [response]              # a caller that keeps causing security events (config/response.rs)
//! events = 5
//! within = "10m"
//! action = "isolate"
//!
//! [volumes]               # named persistent volumes (config/volumes.rs, docs/volumes.md)
//! max_size = "10GiB"
//! ```

mod dependencies;
mod locate;
mod network;
mod response;
mod server;
mod sessions;
mod tools;
mod volumes;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use dependencies::DependenciesConfig;
pub use network::{NetworkConfig, DEFAULT_POLICY_DIR};
pub use response::{ResponseAction, ResponseConfig};
pub use server::{
    ServerConfig, TokenConfig, MAX_BATCH, MAX_CONNECTIONS, MAX_FILES, MAX_IO_THREADS,
    MAX_POOL_SIZE, MAX_QUEUE_SIZE, MAX_TESTS, MAX_WORKERS, MIN_BODY,
};
pub use sessions::{
    SessionsConfig, DEFAULT_DISK, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_DISK,
    DEFAULT_MAX_KEPT_PER_CALLER, DEFAULT_MAX_LIFETIME, DEFAULT_MAX_PER_CALLER,
    DEFAULT_MAX_SESSIONS,
};
pub use tools::ToolsConfig;
pub use volumes::{
    ConcurrentWriters, VolumesConfig, DEFAULT_MAX_VOLUME_SIZE, DEFAULT_QUOTA_PER_CALLER,
    DEFAULT_WRITER_WAIT, MIN_VOLUME_SIZE,
};

use crate::bounded_file::MAX_SETTINGS_FILE;
use crate::limits::{LimitBounds, LimitOverrides, Limits};
use crate::mode::ModePolicy;
use crate::units::ByteSize;

/// Where warden looks for its configuration when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/warden/warden.toml";

/// The configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Which execution modes are allowed for which threat levels.
    pub modes: ModePolicy,
    /// Lower (or raise) the default operator maxima.
    pub maxima: LimitOverrides,
    /// Where the execution history is kept and what it keeps.
    pub history: HistoryConfig,
    /// The compile cache.
    pub cache: CacheConfig,
    /// Where extra language files are.
    pub languages: LanguagesConfig,
    /// `warden serve`: addresses, admission, request caps and API tokens.
    pub server: ServerConfig,
    /// Network policies: the import directory, the allowed and default policies, registries.
    pub network: NetworkConfig,
    /// The tool registry: operator directories, state, categories and approval.
    pub tools: ToolsConfig,
    /// The dependency stage: its network policy and the package indexes.
    pub dependencies: DependenciesConfig,
    /// What happens to a caller whose executions keep causing security events.
    pub response: Option<ResponseConfig>,
    /// `warden serve`'s sessions: how many, how long they live, their disk.
    pub sessions: SessionsConfig,
    /// Named volumes: where they are kept, their largest size, pruning, concurrent writers.
    pub volumes: VolumesConfig,
}

/// The `[history]` section: each field unset keeps the default (docs/history.md). `max_age`
/// is read as a duration here and the sizes as sizes; `retention`, `max_count`, `max_size`,
/// `max_kept` and `path` are checked by the engine's settings loader (the history's own types
/// live with the history store), with the same values from `WARDEN_HISTORY_*` and
/// `WARDEN_DB`: a bad one is an error of loading.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// The database file.
    pub path: Option<PathBuf>,
    /// What is kept of code and output: `metadata`, `code` or `full`.
    pub retention: Option<String>,
    /// Executions older than this are deleted after each record: `30d`, `2w`, `12h`.
    #[serde(with = "history_max_age", skip_serializing_if = "Option::is_none")]
    pub max_age: Option<std::time::Duration>,
    /// Only this many executions, the newest, are kept.
    pub max_count: Option<u64>,
    /// The bound on the database's size: past it, the oldest records of the caller that
    /// holds the most go.
    pub max_size: Option<ByteSize>,
    /// The most kept of each of an execution's code and outputs; the rest is cut.
    pub max_kept: Option<ByteSize>,
}

/// The `[history] max_age` field: an age, its errors naming the key (TOML's own errors give
/// only the line).
mod history_max_age {
    use crate::units::human_age_opt;
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        human_age_opt::serialize(d, s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        human_age_opt::deserialize(d)
            .map_err(|e| serde::de::Error::custom(format!("[history] max_age: {e}")))
    }
}

/// The `[cache]` section: the compile cache (docs/cli.md#compile-cache).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Whether compile artifacts are cached at all (default true).
    pub enabled: Option<bool>,
    /// The cache's directory (`WARDEN_CACHE_DIR` wins).
    pub dir: Option<PathBuf>,
    /// The bound on the cache's total size; one entry may take a sixteenth of it.
    pub max_size: Option<ByteSize>,
}

/// The `[languages]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LanguagesConfig {
    /// A directory of language files replacing or adding to the embedded ones.
    pub dir: Option<PathBuf>,
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not deserialize.
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line, when known.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
}

impl Config {
    /// Reads `path`; a missing file is the defaults only when `optional` (the default path).
    pub fn load(path: &Path, optional: bool) -> Result<Self, ConfigError> {
        let text = match crate::bounded_file::read_to_string(path, MAX_SETTINGS_FILE) {
            Ok(text) => text,
            Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        Self::from_toml(path, &text)
    }

    /// Parses a configuration; `path` names it in errors.
    pub fn from_toml(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let config: Self = crate::data::from_str(text).map_err(|e| {
            let message = e.message.trim_end().to_owned();
            // TOML names the line of a bad value; the key is said too, unless the message
            // has it already (`[history] max_age: ...`, ``unknown field `x` ``).
            let key = e.line.and_then(|line| locate::key_on_line(text, line));
            let message = match key {
                Some(key) if !locate::names(&message, &key) => format!("{key}: {message}"),
                _ => message,
            };
            ConfigError::Parse {
                path: path.to_owned(),
                line: e.line,
                message,
            }
        })?;
        config
            .modes
            .check()
            .and_then(|()| config.check_maxima())
            .and_then(|()| config.server.check())
            .and_then(|()| config.network.check())
            .and_then(|()| config.dependencies.check())
            .and_then(|()| {
                config
                    .response
                    .as_ref()
                    .map_or(Ok(()), ResponseConfig::check)
            })
            .and_then(|()| config.volumes.check())
            .and_then(|()| config.sessions.check(config.volumes.max_size()))
            .map_err(|message| ConfigError::Parse {
                path: path.to_owned(),
                // The checks name the key; the line is said too.
                line: locate::line_of_key(text, &message),
                message,
            })?;
        Ok(config)
    }

    /// The operator maxima: the defaults with this file's `[maxima]` applied.
    pub fn maxima(&self) -> Limits {
        Limits::default_maxima().with(&self.maxima)
    }

    /// Refuses maxima outside the bounds every request's limits must be in: below them, every
    /// request would be clamped to a limit the sandbox then refuses, and every run would fail.
    fn check_maxima(&self) -> Result<(), String> {
        self.maxima()
            .validate(&LimitBounds::default())
            .map_err(|e| {
                format!(
                    "[maxima] {}: {} is outside the accepted range {} – {}",
                    e.name.replace('-', "_"),
                    e.value,
                    e.min,
                    e.max
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mode::{LevelRule, Mode};
    use std::time::Duration;

    #[test]
    fn an_empty_or_missing_file_is_the_defaults() {
        let path = Path::new("warden.toml");
        assert_eq!(
            Config::from_toml(path, "").expect("empty is valid"),
            Config::default()
        );
        let missing = Config::load(Path::new("/nonexistent/warden.toml"), true).expect("optional");
        assert_eq!(missing, Config::default());
        assert!(Config::load(Path::new("/nonexistent/warden.toml"), false).is_err());
    }

    #[test]
    fn sections_apply_and_mistakes_name_their_line() {
        let path = Path::new("warden.toml");
        let config = Config::from_toml(
            path,
            "[modes]\ntrusted_enabled = true\nhigh = \"refuse\"\n[maxima]\ncpu_time = \"2s\"\n\
             [history]\npath = \"/tmp/h.db\"\nretention = \"full\"\nmax_count = 10\n\
             max_size = \"2GiB\"\nmax_kept = \"64KiB\"\n",
        )
        .expect("valid");
        assert!(config.modes.trusted_enabled);
        assert_eq!(config.modes.default, crate::mode::ModeRequest::Auto);
        let isolated = Config::from_toml(path, "[modes]\ndefault = \"isolated\"\n").expect("valid");
        assert_eq!(
            isolated.modes.default,
            crate::mode::ModeRequest::Exactly(Mode::Isolated)
        );
        let err =
            Config::from_toml(path, "[modes]\ndefault = \"fast\"\n").expect_err("bad default");
        assert!(err.to_string().contains("fast"), "{err}");
        assert_eq!(config.modes.high, LevelRule::Refuse);
        assert_eq!(config.modes.none, LevelRule::Mode(Mode::Sandboxed));
        assert_eq!(config.maxima().cpu_time, Duration::from_secs(2));
        assert_eq!(config.history.path, Some(PathBuf::from("/tmp/h.db")));
        assert_eq!(config.history.retention.as_deref(), Some("full"));
        assert_eq!(config.history.max_count, Some(10));
        assert_eq!(config.history.max_size, Some(ByteSize(2 * ByteSize::GIB)));
        assert_eq!(config.history.max_kept, Some(ByteSize::kib(64)));
        assert_eq!(config.history.max_age, None);
        assert_eq!(config.cache, CacheConfig::default());
        let err = Config::from_toml(path, "[modes]\nnone = \"yolo\"\n").expect_err("bad mode");
        assert!(err.to_string().contains("yolo"), "{err}");
        let err = Config::from_toml(path, "\n[limitz]\n").expect_err("unknown section");
        assert!(err.to_string().starts_with("warden.toml:2"), "{err}");
    }

    #[test]
    fn cache_languages_and_ages_are_typed_at_load() {
        let path = Path::new("warden.toml");
        let config = Config::from_toml(
            path,
            "[history]\nmax_age = \"2w\"\n[cache]\nenabled = false\ndir = \"/c\"\n\
             max_size = \"64MiB\"\n[languages]\ndir = \"/l\"\n",
        )
        .expect("valid");
        assert_eq!(
            config.history.max_age,
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(config.cache.enabled, Some(false));
        assert_eq!(config.cache.dir, Some(PathBuf::from("/c")));
        assert_eq!(config.cache.max_size, Some(ByteSize::mib(64)));
        assert_eq!(config.languages.dir, Some(PathBuf::from("/l")));
        let err = Config::from_toml(path, "[history]\nmax_count = 1\nmax_age = \"soon\"\n")
            .expect_err("bad age");
        let message = err.to_string();
        assert!(message.starts_with("warden.toml:3"), "{message}");
        assert!(message.contains("[history] max_age"), "{message}");
        let err = Config::from_toml(path, "[cache]\nsize = 1\n").expect_err("unknown key");
        assert!(err.to_string().contains("size"), "{err}");
    }

    /// Bug hunt: `[history] max_age` and `[volumes] prune_after` took `1d` and `2w`, and
    /// every other duration of the file refused them (`unknown unit "d"`).
    #[test]
    fn every_duration_of_the_file_takes_days_and_weeks() {
        let config = Config::from_toml(
            Path::new("warden.toml"),
            "[maxima]\nwall_time = \"1d\"\n\
             [server]\nresults_max_age = \"1w\"\nsync_deadline = \"1d\"\n\
             shutdown_deadline = \"1d\"\nheader_read_timeout = \"1d\"\n\
             [sessions]\nidle_timeout = \"1d\"\nmax_lifetime = \"2w\"\n\
             [volumes]\nwriter_wait = \"1d\"\n\
             [response]\nevents = 1\nwithin = \"1d\"\naction = \"isolate\"\n",
        )
        .expect("valid");
        let day = Duration::from_secs(86_400);
        assert_eq!(config.maxima().wall_time, day);
        assert_eq!(config.server.results_max_age, Some(7 * day));
        assert_eq!(config.server.sync_deadline, Some(day));
        assert_eq!(config.sessions.idle_timeout, Some(day));
        assert_eq!(config.sessions.max_lifetime, Some(14 * day));
        assert_eq!(config.volumes.writer_wait, Some(day));
        assert_eq!(config.response.map(|r| r.within), Some(day));
        let err = Config::from_toml(
            Path::new("warden.toml"),
            "[server]\nsync_deadline = \"1y\"\n",
        )
        .expect_err("years");
        assert!(
            err.to_string().contains("d, w"),
            "the units are listed: {err}"
        );
    }

    /// Bug hunt "modes" 6: `critical = "sandboxed"` beside the default `high = "isolated"`
    /// was accepted, and a `ctypes` program that added a dead fork bomb ran in the native
    /// sandbox instead of gVisor: looking more dangerous lowered its mode.
    #[test]
    fn a_mode_map_where_a_higher_level_is_weaker_is_refused() {
        let path = Path::new("warden.toml");
        for (toml, why) in [
            (
                "[modes]\ncritical = \"sandboxed\"\n",
                "warden.toml:2: [modes] critical: \"sandboxed\" is weaker than high's \"isolated\"",
            ),
            (
                "[modes]\ntrusted_enabled = true\nnone = \"isolated\"\nlow = \"trusted\"\n",
                "warden.toml:4: [modes] low: \"trusted\" is weaker than none's \"isolated\"",
            ),
            (
                "[modes]\nmedium = \"refuse\"\n",
                "[modes] high: \"isolated\" is weaker than medium's \"refuse\"",
            ),
            // Bug hunt cli 2: every request without a mode was refused.
            (
                "[modes]\ndefault = \"trusted\"\n",
                "[modes] default: \"trusted\" would refuse every request that names no mode \
                 (refused: trusted mode is disabled",
            ),
            // Regression hunt: enabled, but weaker than every level's minimum.
            (
                "[modes]\ntrusted_enabled = true\ndefault = \"trusted\"\n",
                "[modes] default: \"trusted\" would refuse every request that names no mode \
                 (refused: mode trusted is weaker than sandboxed",
            ),
        ] {
            let err = Config::from_toml(path, toml).expect_err(toml).to_string();
            assert!(err.starts_with(why) || err.contains(why), "{toml}: {err}");
        }
        for fine in [
            "[modes]\ncritical = \"isolated\"\n",
            "[modes]\nnone = \"trusted\"\nlow = \"trusted\"\nmedium = \"isolated\"\n",
            "[modes]\nhigh = \"refuse\"\n",
            "[modes]\ntrusted_enabled = true\ndefault = \"trusted\"\nnone = \"trusted\"\n",
            "[modes]\ndefault = \"isolated\"\n",
        ] {
            assert!(Config::from_toml(path, fine).is_ok(), "{fine}");
        }
    }

    /// Bug hunt: `[maxima] cpu_time = "0s"` was accepted, and every run then failed (the server
    /// answered 500 "internal error").
    #[test]
    fn maxima_outside_the_limit_bounds_are_refused() {
        let path = Path::new("warden.toml");
        for (toml, why) in [
            (
                "[maxima]\ncpu_time = \"0s\"\n",
                "[maxima] cpu_time: 0s is outside",
            ),
            (
                "[maxima]\nmemory = \"1MiB\"\n",
                "[maxima] memory: 1MiB is outside",
            ),
            (
                "[maxima]\nmax_procs = 0\n",
                "[maxima] max_procs: 0 is outside",
            ),
            ("[maxima]\nwall_time = \"48h\"\n", "[maxima] wall_time"),
        ] {
            let err = Config::from_toml(path, toml).expect_err(toml).to_string();
            // The file, the line of the key, the key.
            assert!(err.starts_with("warden.toml:2: "), "{err}");
            assert!(err.contains(why), "{toml}: {err}");
        }
        let low = Config::from_toml(path, "[maxima]\ncpu_time = \"10ms\"\nmemory = \"8MiB\"\n");
        assert!(low.is_ok(), "the bounds themselves are accepted");
    }

    /// Bug hunt: TOML's errors of a bad value named the line and not the key
    /// (`warden.toml:4: unknown unit "gigs"`), and the checks after parsing the key and not
    /// the line. Both are said now, as docs/modes.md promises.
    #[test]
    fn a_mistake_names_its_line_and_its_key() {
        let path = Path::new("warden.toml");
        for (toml, said) in [
            (
                "[server]\n\n[maxima]\nmemory = \"5 gigs\"\n",
                "warden.toml:4: [maxima] memory: ",
            ),
            (
                "[modes]\nhigh = \"sandboxd\"\n",
                "warden.toml:2: [modes] high: ",
            ),
            (
                "[modes]\ntrusted_enabled = \"yes\"\n",
                "warden.toml:2: [modes] trusted_enabled: ",
            ),
            (
                "[history]\nmax_count = -5\n",
                "warden.toml:2: [history] max_count: ",
            ),
            (
                "[history]\nmax_age = \"forever\"\n",
                "warden.toml:2: [history] max_age: ",
            ),
        ] {
            let err = Config::from_toml(path, toml).expect_err(toml).to_string();
            assert!(err.starts_with(said), "{toml}: {err}");
            assert!(!err.ends_with('\n'), "{err:?}");
        }
    }
}
