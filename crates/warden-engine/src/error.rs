//! The engine's errors, and whose fault each one is ([`ErrorKind`]), so that an adapter maps
//! them to its own terms (HTTP 4xx or 5xx, an exit status) without reading the message.
//!
//! An [`EngineError`] is never the program's own failure: that is an `Ok` outcome
//! (DESIGN.md §7.4).

use warden_core::detect::DetectError;
use warden_core::filesystem::FilesystemPolicyError;
use warden_core::mode::ModeRefusal;
use warden_core::seccomp_policy::SeccompPolicyError;
use warden_core::{Analysis, Mode};
use warden_sandbox::SandboxError;

use crate::history::HistoryError;
use crate::settings::{SettingError, SettingsError};

/// Whose fault an [`EngineError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is wrong (unknown language, bad files, absurd limits): the caller can fix
    /// it. HTTP 4xx.
    Request,
    /// The request is well formed but the operator's policy will not run it. HTTP 403 or 422.
    Refused,
    /// This host lacks what the request needs (a toolchain, gVisor, an isolation feature);
    /// the operator can fix it. HTTP 503.
    Unavailable,
    /// warden itself failed (its data, its database, the sandbox machinery). HTTP 5xx.
    Internal,
    /// The caller cancelled the execution (`Cancellation`); nobody waits for an answer.
    Cancelled,
}

impl ErrorKind {
    /// The name used in JSON.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::Request => "request",
            ErrorKind::Refused => "refused",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
            ErrorKind::Cancelled => "cancelled",
        }
    }

    /// Whether the caller, rather than warden or its host, is the one to act.
    pub const fn is_caller_fault(self) -> bool {
        matches!(
            self,
            ErrorKind::Request | ErrorKind::Refused | ErrorKind::Cancelled
        )
    }
}

/// An error and its causes as one line, `a: b: c`, for a log or an answer. A cause whose text
/// the line already ends with (a variant that shows its source in its own message) is not
/// repeated, nor one that only puts a prefix before the cause shown last (rusqlite's `file is
/// not a database` has the source `Error code 26: file is not a database`).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut last = text.clone();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) && !cause_text.ends_with(&last) {
            text.push_str(": ");
            text.push_str(&cause_text);
            last = cause_text;
        }
        source = cause.source();
    }
    text
}

/// The program's files cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// More files than a program may have.
    #[error("more than {max} files")]
    TooMany {
        /// The most accepted.
        max: usize,
    },
    /// A file after the entry has no name.
    #[error("every file after the entry needs a name")]
    Unnamed,
    /// A file's name leaves the program's directory (or is empty).
    #[error("{path:?} is not a relative path inside the program")]
    NotContained {
        /// The name given.
        path: String,
    },
    /// Two files have the same name.
    #[error("two files are named {path:?}")]
    Duplicate {
        /// The name.
        path: String,
    },
    /// The entry is laid out under another name than it was given (Java's after its class),
    /// and another file has that name.
    #[error(
        "{} is laid out as {laid_out:?} ({why}), and another file is named {laid_out:?}",
        given.as_ref().map_or_else(|| "the code".to_owned(), |g| format!("{g:?}"))
    )]
    EntryNameTaken {
        /// The entry's name as given; `None` for inline code.
        given: Option<String>,
        /// Its name in the workspace.
        laid_out: String,
        /// Why it is renamed.
        why: warden_core::source_naming::Renamed,
    },
    /// One part of a file's path is longer than a file name can be.
    #[error("{path:?} has a part longer than a file name can be ({max} bytes)")]
    NameTooLong {
        /// The name given.
        path: String,
        /// The longest a file name can be.
        max: usize,
    },
    /// A file's path goes through another file, as if it were a directory.
    #[error("{path:?} would put a file under {file:?}, which is a file")]
    FileAsDirectory {
        /// The file in the way.
        file: String,
        /// The path that goes through it.
        path: String,
    },
    /// A file's name holds a NUL byte, which no file name can.
    #[error("{path:?} holds a NUL byte, which no file name can")]
    NulByte {
        /// The name given.
        path: String,
    },
    /// A file sits where the language's compiler writes the program (`main`, Java's
    /// `classes`): the compiler would overwrite it, or fail on it.
    #[error(
        "{path:?} is a name warden reserves: {language}'s compiler writes the program to \
         {artifact:?} in the workspace; give the file another name"
    )]
    Reserved {
        /// The file's path.
        path: String,
        /// The compile stage's artifact (`[compile] artifact`).
        artifact: String,
        /// The language's id.
        language: String,
    },
}

/// Arguments the kernel would refuse to start the program with (`execve`'s `E2BIG`, or a
/// string it cannot hold), found before anything is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    /// An argument holds a NUL byte.
    #[error("the argument {argument:?} holds a NUL byte, which no program argument can")]
    Nul {
        /// The argument (its first 64 characters).
        argument: String,
    },
    /// One argument is longer than the kernel takes one to be.
    #[error("an argument of {bytes} bytes is longer than a program argument can be ({max} bytes)")]
    TooLong {
        /// Its length.
        bytes: usize,
        /// The most a program argument can hold.
        max: usize,
    },
    /// The arguments together are more than the program's start leaves room for.
    #[error(
        "the arguments take {bytes} bytes, more than the {max} a program's start leaves them \
         (a quarter of its stack_size, at most 6 MiB, less {reserve} for its command and \
         environment)"
    )]
    TooMany {
        /// What they take: each one's bytes, its NUL and its pointer.
        bytes: usize,
        /// What they may take.
        max: usize,
        /// What is kept for the command and the environment.
        reserve: usize,
    },
}

/// A compiler option the request added that its language does not take. The messages name the
/// request's field, as the server reports them.
#[derive(Debug, thiserror::Error)]
pub enum CompileOptionError {
    /// The language compiles nothing, or takes no options.
    #[error("compile_options: {language} takes no compiler options")]
    NotTaken {
        /// The language.
        language: String,
    },
    /// The option is not one the language admits.
    #[error("compile_options: {option:?} is not one of {language}'s compiler options: {allowed}")]
    NotAllowed {
        /// The language.
        language: String,
        /// The option given.
        option: String,
        /// The language's patterns, for the message.
        allowed: String,
    },
    /// More options than a request may add.
    #[error("compile_options: more than {max} compiler options")]
    TooMany {
        /// The most accepted.
        max: usize,
    },
}

/// warden could not carry out the request (never the program's own failure).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The settings cannot be loaded.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A history setting is invalid, so the history cannot be used.
    #[error("the history settings")]
    HistorySetting(#[source] SettingError),
    /// The engine was configured without a history.
    #[error("this engine keeps no execution history")]
    NoHistory,
    /// The history database failed.
    #[error("the execution history")]
    History(#[from] HistoryError),
    /// A history listing's language is neither in the catalog nor recorded: most likely a typo.
    #[error("{:?}: no such language in the catalog (`warden languages` lists them), and no execution recorded under that name", language.as_str())]
    UnrecordedLanguage {
        /// The language as asked for.
        language: warden_core::LanguageId,
    },
    /// The language catalog is invalid.
    #[error("loading the language catalog")]
    Catalog(#[from] warden_core::CatalogError),
    /// The built-in filesystem policy is invalid.
    #[error("loading the built-in filesystem policy")]
    FilesystemPolicy(#[from] FilesystemPolicyError),
    /// The built-in seccomp policy is invalid.
    #[error("loading the built-in seccomp policy")]
    SeccompPolicy(#[from] SeccompPolicyError),
    /// The built-in analysis rules are invalid.
    #[error("loading the analysis rules")]
    AnalysisRules(#[from] warden_analysis::AnalysisError),
    /// The language is unknown or could not be detected.
    #[error(transparent)]
    Language(#[from] DetectError),
    /// The request has no program.
    #[error("no program given: pass a file or code")]
    NoSource,
    /// The program's files cannot be laid out. The reason is part of the message and not a
    /// `source()` as well: a chain printed whole (`{:#}`, [`chain`]) would say it twice.
    #[error("invalid program files: {0}")]
    BadSource(SourceError),
    /// The program's arguments cannot be given to it.
    #[error(transparent)]
    Arguments(#[from] ArgumentError),
    /// A compiler option the language does not take.
    #[error(transparent)]
    CompileOption(#[from] CompileOptionError),
    /// A requested limit is absurd.
    #[error(transparent)]
    Limit(#[from] warden_core::LimitError),
    /// The language's toolchain is not installed.
    #[error("{language} needs {program}, which is not installed on this host{hint}")]
    MissingRuntime {
        /// The language id.
        language: warden_core::LanguageId,
        /// The missing program.
        program: String,
        /// How to install it.
        hint: String,
    },
    /// The request's dependencies are malformed, or its language installs none.
    #[error(transparent)]
    Dependencies(#[from] warden_core::dependencies::DependencyError),
    /// Dependencies were asked for but this engine has no dependency cache to install into.
    #[error("this engine installs no dependencies: it has no dependency cache")]
    NoDependencyCache,
    /// The dependency cache is where every sandbox mounts its own directory, so a sandbox
    /// could never see a set in it.
    #[error("the dependency cache {dir} is under {hidden}, which every sandbox replaces with its own: set [cache] dir elsewhere")]
    DependencyCacheHidden {
        /// The cache's directory.
        dir: std::path::PathBuf,
        /// The sandbox's own directory it is under.
        hidden: &'static str,
    },
    /// A directory on the way to the dependency cache is closed to other users, and the
    /// sandbox's user is one: the sets bound from it could not be read.
    #[error(
        "the dependency cache {dir} is unreadable inside a sandbox: {closed} is closed to other \
         users (chmod o+x it, or set WARDEN_CACHE_DIR elsewhere)"
    )]
    DependencyCacheClosed {
        /// The cache's directory.
        dir: std::path::PathBuf,
        /// The directory without the others' search permission.
        closed: std::path::PathBuf,
    },
    /// An installed dependency set could not be stored.
    #[error("storing installed dependencies in {dir}")]
    DependencyCache {
        /// The cache's directory.
        dir: std::path::PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The caller cancelled the execution ([`crate::Cancellation`]) before its result; its
    /// sandboxes are killed. `ran` is the execution as the history recorded it, outcome
    /// `cancelled`, with what the sandbox stopped until then (docs/events.md); `None` when
    /// nothing of it had started in a sandbox (nothing is recorded then).
    #[error("the sandbox was cancelled")]
    Cancelled {
        /// The recorded execution.
        ran: Option<Box<crate::execution::ExecutionResult>>,
    },

    /// The kernel gave no random bytes for an id.
    #[error(transparent)]
    Random(#[from] crate::id::RandomError),
    /// The mode policy refuses to run this program (or this mode).
    #[error("{refusal}")]
    Refused {
        /// Why.
        refusal: ModeRefusal,
        /// The analysis that led to it.
        analysis: Analysis,
    },
    /// The chosen mode's backend is not available on this host.
    #[error("{mode} mode is not available: {why}")]
    ModeUnavailable {
        /// The mode.
        mode: Mode,
        /// What is missing.
        why: String,
    },
    /// The network policy cannot be found or read.
    #[error(transparent)]
    NetworkPolicy(#[from] crate::network::StoreError),
    /// The `[response]` rule refuses the caller for a while.
    #[error(
        "{caller} caused {events} security events within {within}: its executions are refused \
         until they age out of that window (warden.toml [response]; warden events lists them)"
    )]
    CallerRefused {
        /// The token's name, or the local caller.
        caller: String,
        /// Its events within the window.
        events: u64,
        /// The window.
        within: String,
    },
    /// The request names a network policy the configuration does not let requests choose.
    #[error(
        "the network policy {} is not allowed here (warden.toml [network] allowed)",
        warden_core::network::quoted_name(policy)
    )]
    NetworkRefused {
        /// The policy asked for.
        policy: String,
    },
    /// A network policy that lets traffic out cannot be enforced in this mode.
    #[error(
        "the network policy {policy:?} cannot be enforced in {mode} mode: it has no network \
         namespace to hold the proxy in, and its program has the host's network under no policy; \
         run it sandboxed or isolated"
    )]
    NetworkUnavailable {
        /// The policy asked for.
        policy: String,
        /// The mode chosen.
        mode: Mode,
    },
    /// The egress proxy of a sandbox could not be set up.
    #[error("setting up the sandbox's network ({step})")]
    Egress {
        /// The step that failed.
        step: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A named volume cannot be created, found, attached or removed.
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// A request's volume cannot go where it asks.
    #[error("{why}")]
    VolumeRequest {
        /// What is wrong.
        why: String,
    },
    /// A read-only path of the host that the sandbox's own mounts would hide (`/tmp`, the
    /// workspace, `/proc`, `/dev`): bound there, it would not be seen.
    #[error(
        "read-only path {path} is under {covered}, which the sandbox mounts its own over: \
         a program would not see it; use a path elsewhere, or a volume"
    )]
    HiddenReadOnly {
        /// The path.
        path: std::path::PathBuf,
        /// What covers it.
        covered: &'static str,
    },
    /// A read-only path of the host that the sandbox cannot bind where it is: one it already
    /// shows (under one of its own read-only binds), or `/etc` and the files the sandbox
    /// writes there itself.
    #[error("read-only path {path} cannot be added: {why}")]
    ReadOnlyInSandbox {
        /// The path.
        path: std::path::PathBuf,
        /// Why.
        why: String,
    },
    /// Volumes are mounted only where there is a mount namespace: not in `trusted` mode.
    #[error(
        "volumes cannot be mounted in {mode} mode: only sandboxed and isolated runs get volumes"
    )]
    VolumesUnsupported {
        /// The mode chosen.
        mode: Mode,
    },
}

impl From<SourceError> for EngineError {
    fn from(e: SourceError) -> Self {
        EngineError::BadSource(e)
    }
}

impl EngineError {
    /// The execution a cancel ended, as the history recorded it (outcome `cancelled`, with
    /// the events of what it ran until then), when something of it ran.
    pub fn cancelled_execution(&self) -> Option<&crate::execution::ExecutionResult> {
        match self {
            EngineError::Cancelled { ran } => ran.as_deref(),
            _ => None,
        }
    }

    /// What the job a cancel ended had run until then, taken out of the sandbox's error
    /// ([`SandboxError::Cancelled`]); `None` for any other error, or when nothing was running.
    pub(crate) fn take_cancelled_run(&mut self) -> Option<warden_sandbox::SandboxRun> {
        match self {
            EngineError::Sandbox(SandboxError::Cancelled { ran }) => ran.take().map(|run| *run),
            _ => None,
        }
    }

    /// Whether naming the language would settle the request (it could not be detected, or
    /// could be several): each adapter says how its caller names it (`--lang`, `language`).
    pub fn needs_language(&self) -> bool {
        matches!(self, EngineError::Language(e) if e.needs_language())
    }

    /// Whose fault this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Language(_)
            | EngineError::NoSource
            | EngineError::BadSource(_)
            | EngineError::Arguments(_)
            | EngineError::CompileOption(_)
            | EngineError::Dependencies(_)
            | EngineError::HiddenReadOnly { .. }
            | EngineError::ReadOnlyInSandbox { .. }
            | EngineError::Limit(_)
            | EngineError::UnrecordedLanguage { .. }
            | EngineError::VolumeRequest { .. } => ErrorKind::Request,
            EngineError::Volume(e) => match e.kind() {
                crate::volumes::VolumeErrorKind::Unavailable => ErrorKind::Unavailable,
                crate::volumes::VolumeErrorKind::Internal => ErrorKind::Internal,
                _ => ErrorKind::Request,
            },
            EngineError::History(
                HistoryError::InvalidId(_)
                | HistoryError::AmbiguousId(_)
                | HistoryError::UnknownId(_),
            ) => ErrorKind::Request,
            EngineError::Refused { .. }
            | EngineError::NetworkRefused { .. }
            | EngineError::CallerRefused { .. }
            | EngineError::VolumesUnsupported { .. } => ErrorKind::Refused,
            EngineError::NetworkPolicy(e) => e.kind(),
            EngineError::Sandbox(SandboxError::Cancelled { .. })
            | EngineError::Cancelled { .. } => ErrorKind::Cancelled,
            EngineError::Sandbox(
                SandboxError::JobFile { .. }
                | SandboxError::WorkspaceMisfit { .. }
                | SandboxError::MemoryHeld { .. },
            ) => ErrorKind::Request,
            EngineError::MissingRuntime { .. }
            | EngineError::ModeUnavailable { .. }
            | EngineError::NetworkUnavailable { .. }
            | EngineError::NoHistory
            | EngineError::NoDependencyCache
            | EngineError::DependencyCacheHidden { .. }
            | EngineError::DependencyCacheClosed { .. }
            | EngineError::Sandbox(
                SandboxError::Unsupported { .. } | SandboxError::NeedsRoot { .. },
            ) => ErrorKind::Unavailable,
            EngineError::Settings(_)
            | EngineError::HistorySetting(_)
            | EngineError::History(_)
            | EngineError::Catalog(_)
            | EngineError::FilesystemPolicy(_)
            | EngineError::SeccompPolicy(_)
            | EngineError::AnalysisRules(_)
            | EngineError::Egress { .. }
            | EngineError::DependencyCache { .. }
            | EngineError::Random(_)
            | EngineError::Sandbox(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::SettingSource;
    use warden_core::{Catalog, ThreatLevel};

    /// Bug hunt "modes" 9: the refusal said trusted runs had "only no_access", but a
    /// trusted program has the host's network.
    #[test]
    fn a_policy_trusted_cannot_hold_is_refused_saying_what_trusted_has() {
        let message = EngineError::NetworkUnavailable {
            policy: "limited_access".into(),
            mode: Mode::Trusted,
        }
        .to_string();
        assert!(!message.contains("only no_access"), "{message}");
        assert!(message.contains("the host's network"), "{message}");
    }

    #[test]
    fn request_mistakes_are_the_callers_and_failures_are_wardens() {
        let catalog = Catalog::builtin().expect("catalog");
        let unknown = warden_core::detect::resolve(&catalog, Some("cobol"), None, "")
            .expect_err("unknown language");
        let limit = warden_core::Limits {
            cpu_time: std::time::Duration::ZERO,
            ..warden_core::Limits::default()
        }
        .validate(&warden_core::LimitBounds::default())
        .expect_err("zero cpu time");
        let refusal = warden_core::ModePolicy::default()
            .choose(warden_core::ModeRequest::Auto, ThreatLevel::Critical)
            .expect_err("critical is refused");
        let cases = [
            (EngineError::Language(unknown), ErrorKind::Request),
            (EngineError::NoSource, ErrorKind::Request),
            (
                EngineError::BadSource(SourceError::Unnamed),
                ErrorKind::Request,
            ),
            (EngineError::Limit(limit), ErrorKind::Request),
            (
                EngineError::History(HistoryError::InvalidId("xyz".into())),
                ErrorKind::Request,
            ),
            (
                EngineError::Refused {
                    refusal,
                    analysis: Analysis::default(),
                },
                ErrorKind::Refused,
            ),
            (
                EngineError::MissingRuntime {
                    language: warden_core::LanguageId::new("go").expect("id"),
                    program: "/usr/bin/go".into(),
                    hint: String::new(),
                },
                ErrorKind::Unavailable,
            ),
            (
                EngineError::ModeUnavailable {
                    mode: Mode::Isolated,
                    why: "runsc is not installed".into(),
                },
                ErrorKind::Unavailable,
            ),
            (
                EngineError::Sandbox(SandboxError::Vanished),
                ErrorKind::Internal,
            ),
            (
                EngineError::HistorySetting(SettingError {
                    origin: SettingSource::Env("WARDEN_HISTORY_RETENTION"),
                    reason: "unknown".into(),
                }),
                ErrorKind::Internal,
            ),
            (
                EngineError::History(HistoryError::AmbiguousId("ab".into())),
                ErrorKind::Request,
            ),
            (
                EngineError::Arguments(ArgumentError::Nul {
                    argument: "a\0".into(),
                }),
                ErrorKind::Request,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
            assert_eq!(error.kind().is_caller_fault(), kind.is_caller_fault());
        }
        assert!(ErrorKind::Request.is_caller_fault());
        assert!(!ErrorKind::Internal.is_caller_fault());
        assert_eq!(
            serde_json::to_value(ErrorKind::Unavailable).expect("serializable"),
            "unavailable"
        );
    }

    /// Every level of `e`'s chain, as anyhow's `{:#}` prints it: nothing left out.
    fn levels(e: &dyn std::error::Error) -> Vec<String> {
        let mut levels = vec![e.to_string()];
        let mut source = e.source();
        while let Some(cause) = source {
            levels.push(cause.to_string());
            source = cause.source();
        }
        levels
    }

    /// Regression (hunt lang 4): `--json` said `invalid program files: two files are named
    /// "helper.py": two files are named "helper.py"`, the reason shown in the message and
    /// again as its source.
    #[test]
    fn no_message_repeats_its_cause() {
        let catalog = Catalog::builtin().expect("catalog");
        let io = || std::io::Error::other("disk on fire");
        let mut cases = vec![
            EngineError::BadSource(SourceError::Duplicate {
                path: "helper.py".into(),
            }),
            EngineError::BadSource(SourceError::Unnamed),
            EngineError::Language(
                warden_core::detect::resolve(&catalog, None, None, "").expect_err("undetected"),
            ),
            EngineError::Language(
                warden_core::detect::resolve(&catalog, Some("cobol"), None, "")
                    .expect_err("unknown"),
            ),
            EngineError::HistorySetting(SettingError {
                origin: SettingSource::Env("WARDEN_HISTORY_RETENTION"),
                reason: "unknown".into(),
            }),
            EngineError::History(HistoryError::CreateDir {
                path: "/var/lib/warden".into(),
                source: io(),
            }),
            EngineError::DependencyCache {
                dir: "/var/cache/x".into(),
                source: io(),
            },
            EngineError::Egress {
                step: "starting the proxy",
                source: Box::new(io()),
            },
            EngineError::Arguments(ArgumentError::Nul {
                argument: "a\0".into(),
            }),
            EngineError::CompileOption(CompileOptionError::TooMany { max: 32 }),
            EngineError::Sandbox(SandboxError::Vanished),
        ];
        let overrides = tempfile::tempdir().expect("tempdir");
        let missing = overrides.path().join("missing");
        cases.push(EngineError::Catalog(
            Catalog::with_overrides(&missing).expect_err("no directory"),
        ));
        std::fs::write(
            overrides.path().join("toy.toml"),
            "id = \"toy\"\ncolour = 1\n",
        )
        .expect("write");
        cases.push(EngineError::Catalog(
            Catalog::with_overrides(overrides.path()).expect_err("unknown field"),
        ));
        for error in cases {
            let levels = levels(&error);
            for pair in levels.windows(2) {
                assert!(
                    !pair[0].contains(&pair[1]),
                    "{:?} repeats its cause: {}",
                    error,
                    levels.join(": ")
                );
            }
            assert_eq!(chain(&error), levels.join(": "), "{error:?}");
        }
    }

    #[test]
    fn a_chain_names_every_cause_once() {
        let shown_inline = EngineError::BadSource(SourceError::Unnamed);
        assert_eq!(
            chain(&shown_inline),
            "invalid program files: every file after the entry needs a name"
        );
        let behind = EngineError::DependencyCache {
            dir: "/var/cache/x".into(),
            source: std::io::Error::other("disk on fire"),
        };
        assert_eq!(
            chain(&behind),
            "storing installed dependencies in /var/cache/x: disk on fire"
        );
    }

    /// Bug hunt (docs, finding 13): a corrupt history said `file is not a database: Error
    /// code 26: file is not a database`, SQLite's message and then its code before the same.
    #[test]
    fn a_cause_that_restates_the_one_before_is_not_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("history.sqlite3");
        std::fs::write(&path, vec![b'x'; 4096]).expect("write");
        let sqlite = rusqlite::Connection::open(&path)
            .and_then(|c| c.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(())))
            .expect_err("not a database");
        let error = EngineError::History(HistoryError::Corrupt {
            path: path.clone(),
            source: sqlite,
        });
        let shown = chain(&error);
        assert!(
            shown.ends_with(&format!(
                "{} is corrupt or not a SQLite database (move it aside to start a new \
                 history): file is not a database",
                path.display()
            )),
            "{shown}"
        );
    }
}
