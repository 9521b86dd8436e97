//! Domain types of warden: human units, limits, outcomes, the language catalog and the sandbox
//! policies kept as data (`languages/`, `policies/`).
//!
//! Pure: no I/O beyond reading its own embedded data, an optional override directory and the
//! operator's files ([`bounded_file`]), no `unsafe`, no async runtime.

pub mod bounded_file;
pub mod catalog;
pub mod config;
mod data;
pub mod dependencies;
pub mod detect;
pub mod filesystem;
pub mod language;
pub mod limits;
pub mod mode;
pub mod network;
pub mod outcome;
pub mod seccomp_policy;
pub mod source_naming;
pub mod threat;
pub mod tool;
pub mod units;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

pub use catalog::{Catalog, CatalogError};
pub use config::{
    CacheConfig, Config, ConfigError, DependenciesConfig, HistoryConfig, LanguagesConfig,
    NetworkConfig, ResponseAction, ResponseConfig, ServerConfig, SessionsConfig, TokenConfig,
    ToolsConfig, VolumesConfig,
};
pub use filesystem::{FilesystemPolicy, ReadOnlyMount};
pub use language::{Language, LanguageError, LanguageId};
pub use limits::{LimitBounds, LimitError, LimitOverrides, Limits, OverMaximum};
pub use mode::{Mode, ModePolicy, ModeRequest};
pub use outcome::{
    Outcome, OutcomeKind, ProgramEnd, Signal, Stream, TimeLimitKind, Usage, UsageSample,
};
pub use seccomp_policy::SeccompPolicy;
pub use threat::{Analysis, Finding, ThreatLevel};
pub use units::{parse_age, parse_duration, parse_since, ByteSize, UnitError};
