//! One execution: what is asked ([`ExecutionRequest`]) and what happened ([`ExecutionResult`],
//! whose JSON form is documented in docs/result-schema.md).

use serde::{Deserialize, Serialize, Serializer};
use warden_core::detect::{Candidate, DetectedBy, Detection};
use warden_core::{LanguageId, LimitOverrides, Limits, Mode, ModeRequest, Outcome, Usage};
use warden_sandbox::{OutputOrder, SandboxRun, Stdin};

use crate::cancel::Cancellation;
use crate::id::ExecutionId;
use crate::security::Security;
use crate::test_cases::{Comparison, SandboxReuse, TestCase, TestResult};

/// A program's source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The name the user gave it (a relative path for the files after the entry), if any.
    pub name: Option<String>,
    /// The code.
    pub code: Vec<u8>,
    /// Whether it is laid out executable (mode 0755, else 0644): a script the program runs by
    /// its path, as its host file was.
    pub executable: bool,
}

/// What to run and how.
#[derive(Debug, Default)]
pub struct ExecutionRequest {
    /// Language id or alias; detected from the entry file when absent (the result's
    /// `detection` says how sure that was).
    pub language: Option<String>,
    /// The program's files, entry first.
    pub sources: Vec<SourceFile>,
    /// Arguments passed to the program.
    pub args: Vec<String>,
    /// Options added to the compiler's command, each one the language's `[compile] options`
    /// admit (docs/languages.md, Compiler options); none for a language without them.
    pub compile_options: Vec<String>,
    /// The compiler is given the entry file alone (`{sources}` is the entry), as Judge0
    /// compiles `main.c`; the other files sit beside it to be included or found. Otherwise it
    /// is given every file in the language's extensions.
    pub compile_entry_only: bool,
    /// Standard input.
    pub stdin: Stdin,
    /// The program's stderr goes into its stdout, interleaved as written (one stream under
    /// the output limit; the result's stderr is empty). The compile stage keeps both.
    pub stderr_to_stdout: bool,
    /// Limits the request sets (clamped to the operator's maxima).
    pub limits: LimitOverrides,
    /// Limits of the compile stage the request sets, on top of the language's
    /// `[compile.limits]` (clamped to the operator's maxima); nothing for a language that
    /// compiles nothing.
    pub compile_limits: LimitOverrides,
    /// The isolation mode asked for; `None` takes the configuration's `[modes] default`.
    pub mode: Option<ModeRequest>,
    /// Test cases: when given, the program runs once per case (with the case's stdin instead
    /// of `stdin`) and each run gets a verdict.
    pub tests: Vec<TestCase>,
    /// How test case output is compared.
    pub comparison: Comparison,
    /// Stop at the first case that is not accepted.
    pub stop_on_failure: bool,
    /// Whether the compile stage and the runs share one sandbox.
    pub reuse: SandboxReuse,
    /// Cancels the execution from another thread (its sandboxes are killed).
    pub cancel: Option<Cancellation>,
    /// Who asked, as the history records it.
    pub origin: Origin,
    /// The network policy by name; `None` takes the configuration's default for the mode
    /// (docs/network.md). A policy the configuration does not allow is refused.
    pub network: Option<String>,
    /// Packages to install before the program runs, in the form the language's package manager
    /// takes (`six==1.16.0`, `is-number@7.0.0`); added to those of a manifest file among the
    /// sources (docs/network.md#dependencies).
    pub dependencies: Vec<String>,
    /// Host paths bound read-only into the sandbox beside the base tree, at the same path: set
    /// by the tool registry from an operator's tool file (docs/tools.md), never from an API
    /// request, which cannot widen what the operator allows.
    pub read_only: Vec<std::path::PathBuf>,
    /// An interactive run (an MCP relay, a CLI attached to a terminal): its output handed
    /// over as it is read, and a word when the network policy denies a connection; its sink's
    /// signals (`OutputSink::signal_source`) reach the program of every stage (installer,
    /// compiler, run). `None` collects the output to the end.
    pub interactive: Option<Interactive>,
    /// Named volumes mounted into the compile and run stages' sandboxes (docs/volumes.md).
    pub volumes: Vec<VolumeRequest>,
    /// Commands of the program's own in place of its language's (Judge0's multi-file
    /// program): set by an adapter from a fixed form, never from a request's fields.
    pub own_commands: Option<OwnCommands>,
}

/// A program that says how it is built and run (Judge0's multi-file program: a `compile` and a
/// `run` script). Both stages run in one sandbox, one after the other, so that what the
/// compile command leaves in the workspace is there for the run (the language's compile stage
/// and its cache do not apply). The program's files that these commands name are analysed in
/// the language (the others are not: the mode is at least `sandboxed`, whatever the analysis
/// found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCommands {
    /// The compile stage's command, if any (run in the workspace; a failure is a compile
    /// error, with its output).
    pub compile: Option<Vec<String>>,
    /// The run stage's command; the request's arguments follow it.
    pub run: Vec<String>,
}

/// A named volume a run asks for, and where it appears inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRequest {
    /// The volume's name.
    pub name: String,
    /// Where it is mounted inside the sandbox: absolute, outside `/work` and the sandbox's own
    /// tree.
    pub path: std::path::PathBuf,
    /// Mounted read-only: the run cannot write to it, and other runs may write meanwhile.
    #[serde(default)]
    pub read_only: bool,
}

/// What an interactive run reports while it runs (docs/mcp.md#wrapping-a-server).
pub struct Interactive {
    /// Receives the run stage's output as it is read; returning false ends the program.
    pub output: Box<dyn warden_sandbox::OutputSink>,
    /// Called with a description of each connection the network policy denies, as it is
    /// denied.
    pub on_denial: Option<DenialHook>,
    /// Called once as the run stage starts, with the compile stage's result for a compiled
    /// language (so that an adapter reports the stages in order); never when the program
    /// does not run.
    pub on_run: Option<RunHook>,
    /// Called once when the execution is prepared (its language chosen, its limits merged,
    /// before anything runs), with how the language was found and the warnings known by then
    /// (limits lowered to the operator's maxima), which the execution's `warnings` repeat: an
    /// attached CLI says them before the program's output.
    pub on_prepared: Option<PreparedHook>,
}

/// A callback told that the run stage starts, with the compile stage's result if any.
pub type RunHook = Box<dyn FnOnce(Option<&StageResult>) + Send>;

/// A callback told how the language was found and of the warnings known before the run.
pub type PreparedHook = Box<dyn FnOnce(&LanguageDetection, &[Warning]) + Send>;

/// A callback told of each denied connection.
pub type DenialHook = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

impl std::fmt::Debug for Interactive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interactive")
            .field("on_denial", &self.on_denial.is_some())
            .finish_non_exhaustive()
    }
}

/// Who asked for an execution: the interface and the API token's name, as the history records
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The interface: `cli`, `v1`, `piston`, `judge0`, or `library` (a Rust caller of the
    /// engine, the default).
    pub api: String,
    /// The configured name of the caller's API token, if any (never the token itself).
    pub token: Option<String>,
}

impl Origin {
    /// An origin of `api`, by the token named `token`.
    pub fn new(api: impl Into<String>, token: Option<String>) -> Self {
        Self {
            api: api.into(),
            token,
        }
    }
}

impl Default for Origin {
    fn default() -> Self {
        Self::new("library", None)
    }
}

/// One stage's result (the compile stage; the run stage's fields sit at the top level).
#[derive(Debug, Clone)]
pub struct StageResult {
    /// How the stage ended.
    pub outcome: Outcome,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// The order stdout and stderr were read in ([`OutputOrder::interleave`]).
    pub output_order: OutputOrder,
    /// Resources used.
    pub usage: Usage,
    /// Whether the stage's product came from a cache and nothing ran: the compile cache's
    /// artifact, the dependency cache's installed set.
    pub cached: bool,
    /// The dependency stage only: its policy (`limited_access`) and every connection attempt
    /// the installer made; absent when nothing was installed.
    pub network: Option<crate::engine::NetworkReport>,
    /// Its cgroup read while it ran (live resource monitoring); absent for a stage shorter
    /// than one interval.
    pub samples: Vec<warden_core::UsageSample>,
    /// The system calls the seccomp policy refused in the stage; they become the result's
    /// `security.violations` (docs/events.md), so they are not repeated here.
    pub denied_syscalls: Vec<warden_sandbox::DeniedSyscall>,
    /// The system calls the seccomp policy killed the stage's processes for; those of
    /// processes other than the program become `violation`s (the program's is its outcome).
    pub seccomp_kills: Vec<warden_sandbox::KilledSyscall>,
    /// Forks the process limit refused in the stage; a `process_limit` violation when not 0.
    pub process_limit_hits: u64,
    /// The writes to read-only paths the stage attempted; a `readonly_write` violation.
    pub readonly_writes: Option<warden_sandbox::ReadOnlyWrites>,
}

/// The stage as docs/result-schema.md shows it: its output as text and, when it is not valid
/// UTF-8, its exact bytes in base64 (`stdout_base64`, `stderr_base64`), as the run's; the
/// fields that become the result's `security.violations` are not repeated.
impl Serialize for StageResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            outcome: &'a Outcome,
            #[serde(serialize_with = "lossy")]
            stdout: &'a [u8],
            #[serde(skip_serializing_if = "Option::is_none")]
            stdout_base64: Option<String>,
            #[serde(serialize_with = "lossy")]
            stderr: &'a [u8],
            #[serde(skip_serializing_if = "Option::is_none")]
            stderr_base64: Option<String>,
            stdout_truncated: bool,
            stderr_truncated: bool,
            usage: &'a Usage,
            cached: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            network: &'a Option<crate::engine::NetworkReport>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            samples: &'a [warden_core::UsageSample],
        }
        // Every field named: one added to the stage must be added here too.
        let StageResult {
            outcome,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            output_order: _,
            usage,
            cached,
            network,
            samples,
            denied_syscalls: _,
            seccomp_kills: _,
            process_limit_hits: _,
            readonly_writes: _,
        } = self;
        Shown {
            outcome,
            stdout,
            stdout_base64: exact(stdout),
            stderr,
            stderr_base64: exact(stderr),
            stdout_truncated: *stdout_truncated,
            stderr_truncated: *stderr_truncated,
            usage,
            cached: *cached,
            network,
            samples,
        }
        .serialize(s)
    }
}

impl StageResult {
    pub(crate) fn from_run(run: SandboxRun) -> Self {
        Self {
            outcome: run.outcome,
            stdout: run.stdout,
            stderr: run.stderr,
            stdout_truncated: run.stdout_truncated,
            stderr_truncated: run.stderr_truncated,
            output_order: run.output_order,
            usage: run.usage,
            cached: false,
            network: None,
            samples: run.samples,
            denied_syscalls: run.denied_syscalls,
            seccomp_kills: run.seccomp_kills,
            process_limit_hits: run.process_limit_hits,
            readonly_writes: run.readonly_writes,
        }
    }

    /// A stage that ran nothing: exited 0, no output, no usage.
    pub(crate) fn empty() -> Self {
        Self {
            outcome: Outcome::Exited { code: 0 },
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            output_order: OutputOrder::default(),
            usage: Usage::default(),
            cached: false,
            network: None,
            samples: Vec::new(),
            denied_syscalls: Vec::new(),
            seccomp_kills: Vec::new(),
            process_limit_hits: 0,
            readonly_writes: None,
        }
    }

    /// A stage whose product came from a cache.
    pub fn cached() -> Self {
        Self {
            cached: true,
            ..Self::empty()
        }
    }
}

/// How the language of a request was resolved: named, or detected and how surely.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguageDetection {
    /// The language.
    pub language: LanguageId,
    /// From 0 to 1 (1 when named).
    pub confidence: f32,
    /// What decided.
    pub by: DetectedBy,
    /// The next most likely language, when another one was in the running.
    pub runner_up: Option<Candidate>,
}

impl LanguageDetection {
    /// Whether the language was detected with less than [`warden_core::detect::CONFIDENT`]
    /// confidence: an adapter should say which language it chose.
    pub fn is_unsure(&self) -> bool {
        self.confidence < warden_core::detect::CONFIDENT
    }
}

impl From<&Detection<'_>> for LanguageDetection {
    fn from(d: &Detection<'_>) -> Self {
        Self {
            language: d.language.id.clone(),
            confidence: d.confidence,
            by: d.by,
            runner_up: d.runner_up.clone(),
        }
    }
}

/// Something that went wrong beside the execution without failing it (the history could not
/// record it, say); an adapter shows it as a warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{what}: {detail}")]
pub struct Warning {
    /// What could not be done.
    pub what: WarningKind,
    /// Why, with its causes.
    pub detail: String,
}

/// What a [`Warning`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The execution was not recorded in the history.
    HistoryNotRecorded,
    /// The history was not pruned after recording.
    HistoryNotPruned,
    /// A limit the request asked for is above the operator's maximum, which applies instead.
    LimitLowered,
}

impl std::fmt::Display for WarningKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WarningKind::HistoryNotRecorded => "history not recorded",
            WarningKind::HistoryNotPruned => "history not pruned",
            WarningKind::LimitLowered => "limit lowered to the operator's maximum",
        })
    }
}

/// What [`crate::Engine::execute`] returns: the result, and the warnings beside it.
#[derive(Debug, Clone)]
pub struct Execution {
    /// What happened to the program.
    pub result: ExecutionResult,
    /// What went wrong beside it (never the program's own failure, never warden's failure to
    /// run it).
    pub warnings: Vec<Warning>,
    /// Where warden's time went, phase by phase (`warden run --profile`).
    pub phases: Vec<Phase>,
}

/// One phase of an execution and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Phase {
    /// `prepare` (language, files, limits, analysis, mode), `dependencies`, `plan` (the
    /// sandbox's spec, the network plan), `setup` (building sandboxes, starting proxies),
    /// `jobs` (warden's part of the compile and run jobs: sending each, and its end to the
    /// result), `program` (the programs' own wall time within them), `teardown` (destroying
    /// sandboxes or giving them back to the pool), `record` (the history).
    pub name: &'static str,
    /// How long it took.
    #[serde(rename = "ms", serialize_with = "millis_f64")]
    pub took: std::time::Duration,
}

fn millis_f64<S: Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// What happened.
#[derive(Debug, Clone)]
pub struct ExecutionResult {
    /// The execution's id.
    pub id: ExecutionId,
    /// The language id.
    pub language: LanguageId,
    /// How the language was chosen.
    pub detection: LanguageDetection,
    /// The isolation mode used.
    pub mode: Mode,
    /// How the program ended (`compile_error` or `dependency_error` when it never ran).
    pub outcome: Outcome,
    /// Standard output: in JSON as text (invalid UTF-8 replaced), and as `stdout_base64`, its
    /// exact bytes, when they are not UTF-8.
    pub stdout: Vec<u8>,
    /// Standard error, in JSON as `stdout` is.
    pub stderr: Vec<u8>,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// The order the run stage's stdout and stderr were read in: Piston's `output` puts them
    /// back together with [`OutputOrder::interleave`]. Not part of the JSON result.
    pub output_order: OutputOrder,
    /// Resources used by the run stage.
    pub usage: Usage,
    /// The run stage's cgroup read every 100 ms while it ran: time into the run, cpu time,
    /// memory charged, tasks (docs/result-schema.md); absent for a shorter run.
    pub samples: Vec<warden_core::UsageSample>,
    /// The limits enforced on the run stage.
    pub limits: Limits,
    /// The dependency installation, when the request named dependencies (`cached` when the
    /// set came from the dependency cache).
    pub dependencies: Option<StageResult>,
    /// The compile stage, for compiled languages.
    pub compile: Option<StageResult>,
    /// The test cases' results, in order (absent without test cases). The top-level outcome
    /// and output are the last case's.
    pub tests: Vec<TestResult>,
    /// The mode, why, the analysis and the run-time violations.
    pub security: Security,
    /// The network policy and every connection attempt its proxy logged; absent under a
    /// policy that lets nothing out (`no_access`: loopback only, nothing to log).
    pub network: Option<crate::engine::NetworkReport>,
    /// The named volumes mounted into the compile and run stages; absent without any.
    pub volumes: Vec<VolumeRequest>,
}

/// The result object of docs/result-schema.md: every field but `output_order`, and after
/// `stdout` and `stderr` their exact bytes in base64 when they are not valid UTF-8 (the text
/// has U+FFFD in place of what could not be read), so that a client (`warden run --server`)
/// can give back what the program wrote, byte for byte.
impl Serialize for ExecutionResult {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shown<'a> {
            id: &'a ExecutionId,
            language: &'a LanguageId,
            detection: &'a LanguageDetection,
            mode: &'a Mode,
            outcome: &'a Outcome,
            #[serde(serialize_with = "lossy")]
            stdout: &'a [u8],
            #[serde(skip_serializing_if = "Option::is_none")]
            stdout_base64: Option<String>,
            #[serde(serialize_with = "lossy")]
            stderr: &'a [u8],
            #[serde(skip_serializing_if = "Option::is_none")]
            stderr_base64: Option<String>,
            stdout_truncated: bool,
            stderr_truncated: bool,
            usage: &'a Usage,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            samples: &'a [warden_core::UsageSample],
            limits: &'a Limits,
            #[serde(skip_serializing_if = "Option::is_none")]
            dependencies: &'a Option<StageResult>,
            compile: &'a Option<StageResult>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            tests: &'a [TestResult],
            security: &'a Security,
            #[serde(skip_serializing_if = "Option::is_none")]
            network: &'a Option<crate::engine::NetworkReport>,
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            volumes: &'a [VolumeRequest],
        }
        // Every field named: one added to the result must be added here too.
        let ExecutionResult {
            id,
            language,
            detection,
            mode,
            outcome,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            output_order: _,
            usage,
            samples,
            limits,
            dependencies,
            compile,
            tests,
            security,
            network,
            volumes,
        } = self;
        Shown {
            id,
            language,
            detection,
            mode,
            outcome,
            stdout,
            stdout_base64: exact(stdout),
            stderr,
            stderr_base64: exact(stderr),
            stdout_truncated: *stdout_truncated,
            stderr_truncated: *stderr_truncated,
            usage,
            samples,
            limits,
            dependencies,
            compile,
            tests,
            security,
            network,
            volumes,
        }
        .serialize(s)
    }
}

/// `bytes` in base64 when they are not valid UTF-8 (their JSON text lost something).
fn exact(bytes: &[u8]) -> Option<String> {
    use base64::Engine as _;
    std::str::from_utf8(bytes)
        .is_err()
        .then(|| base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub(crate) fn lossy<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}
