//! The execution use case: request -> language -> analysis and mode -> program layout ->
//! [dependency stage, cached] -> [compile stage, cached] -> run stage -> result -> history.
//!
//! The stages of one execution are jobs of live sandboxes (`runner.rs`): the compile stage and
//! every run share one sandbox, or each get a fresh one, as the request says. The dependency
//! stage has a sandbox of its own, under its own network policy (`dependencies.rs`).

mod analysis;
mod analysis_cache;
mod analysis_store;
mod cancelled;
mod compile;
pub(crate) mod dependencies;
mod history;
mod host;
mod mcp_relay;
mod mode_choice;
pub(crate) mod network;
mod opaque_files;
mod outcome;
mod pool;
mod runner;
mod session_files;
mod sessions;
mod tool_analyses;
mod tool_calls;
mod volumes;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use warden_analysis::Analyzer;
use warden_core::detect;
use warden_core::language::{expand_argv, expand_env, ArgvTemplate, CommandValues};
use warden_core::{
    Analysis, Catalog, FilesystemPolicy, Language, LimitBounds, LimitOverrides, Limits, Mode,
    ModePolicy, Outcome, SeccompPolicy,
};
use warden_sandbox::{
    CollectedFile, Job, Sandbox, SandboxPlan, SandboxRun, SandboxSpec, Stdin, WorkspaceFile,
    WORKDIR,
};

use crate::compile_cache::CompileCache;
use crate::confined_analysis;
use crate::dependency_cache::DependencyCache;
use crate::error::EngineError;
use crate::execution::{Execution, ExecutionRequest, LanguageDetection, StageResult};
use crate::settings::{HistorySettings, NetworkSettings, SettingError};
use crate::test_cases::{TestResult, Verdict};
use crate::workspace::Program;

pub use host::SandboxCheck;
pub use mcp_relay::{McpWrap, RelayReport, RelayStop, StopKind, Stopped, DEFAULT_CALL_TIMEOUT};
pub use network::{Connection, NetworkReport};
pub use pool::{host_memory_pressure, MemoryPressure, PoolStats};
pub use session_files::{FileAnswer, FileOp, SessionFile, MAX_DOWNLOAD};
pub use sessions::SessionCall;

use outcome::{finish, test_result, KeptOutput};

/// Operator configuration of the engine; [`crate::Settings::engine_config`] builds it from
/// `warden.toml` and the environment.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The binary that acts as the sandbox helper (normally the running warden binary).
    pub helper: PathBuf,
    /// A directory of language files replacing or adding to the embedded ones.
    pub languages_dir: Option<PathBuf>,
    /// The most any request may get.
    pub maxima: Limits,
    /// The compile cache, if any.
    pub cache: Option<CompileCache>,
    /// Where analyses are kept for the next process (a one-shot CLI's: `engine/analysis_store.rs`);
    /// `None` keeps them in this engine's memory only (a server's, which lives on).
    pub analyses_dir: Option<PathBuf>,
    /// Where installed dependency sets are kept; without it, a request with dependencies is
    /// refused.
    pub dependencies: Option<DependencyCache>,
    /// Which modes the operator allows for which threat levels.
    pub modes: ModePolicy,
    /// Fork the sandbox helper without exec when the process is single-threaded (a CLI);
    /// see `warden_sandbox::Sandbox::fork_helper_when_single_threaded`.
    pub fork_helper: bool,
    /// Have a zygote fork every sandbox helper (a multi-threaded server, which must not fork
    /// them itself); see `warden_sandbox::Sandbox::with_zygote`.
    pub zygote: bool,
    /// Analyse untrusted code in another process, bounded in memory and time and killed past
    /// them (docs/analysis.md#bounds): forked when `fork_helper` and the process is
    /// single-threaded, else an `helper __analysis-worker`. Off by default, for a library user
    /// or a test without a warden binary: the analysis then runs in the caller, unbounded.
    pub confine_analysis: bool,
    /// Native sandboxes kept ready per spec (a server's warm pool, `engine/pool.rs`); 0 for
    /// none.
    pub pool_size: usize,
    /// Runs one pooled sandbox may serve for one owner, reset in between (`engine/pool.rs`);
    /// 1 runs each sandbox once.
    pub pool_reuse: u64,
    /// Sandboxes kept ready for each of these languages' default runs, from start-up
    /// (`[server] pool_languages`); their count replaces `pool_size` for them.
    pub pool_languages: Vec<(String, usize)>,
    /// How the pool tells that the host is short of memory, to shrink
    /// (`pool::host_memory_pressure` by default; tests replace it).
    pub memory_pressure: pool::MemoryPressure,
    /// How long a pooled sandbox waits for a run before it is destroyed: a reset one for its
    /// owner's next, a fresh one of a spec no run asked for meanwhile (`pool::IDLE`, 30 s, by
    /// default; the languages of `pool_languages` stay ready).
    pub pool_idle: std::time::Duration,
    /// The execution history: `None` records nothing; an invalid setting records nothing and
    /// says so in each execution's warnings.
    pub history: Option<Result<HistorySettings, SettingError>>,
    /// Write the history from a thread of its own, off the executions' path (a server):
    /// `engine/history.rs`. Readers of the history still see every finished execution.
    pub record_in_background: bool,
    /// The history is only read (`warden history`, `show`, `stats`...): a database that does
    /// not exist yet is read as an empty one, not created with its directory.
    pub history_reads_only: bool,
    /// The `[network]` settings; `None`: the built-in policies, `no_access` by default.
    pub network: Option<NetworkSettings>,
    /// warden's own service addresses (a server's listeners): no policy reaches them.
    pub services: Vec<std::net::SocketAddr>,
    /// The tool registry's settings; `None`: the embedded tools, state in the temporary
    /// directory.
    pub tools: Option<crate::tools::ToolsSettings>,
    /// How dependencies are installed: the stage's network policy, the package indexes.
    pub install: crate::settings::InstallSettings,
    /// What happens to a caller whose executions keep causing security events.
    pub response: Option<warden_core::ResponseConfig>,
    /// Sessions: their state directory, how many, how long, how much disk.
    pub sessions: crate::sessions::SessionsSettings,
    /// Named volumes: where they are kept, their largest size, concurrent writers.
    pub volumes: crate::volumes::VolumesSettings,
    /// The descriptors of the process the proxies of all executions may hold, and each
    /// execution's share (a server's: `warden serve` sizes it from its open files limit and
    /// its workers); `None` bounds each proxy by `warden_net::DEFAULT_MAX_CLIENTS` alone.
    pub proxy_share: Option<warden_net::ProxyShare>,
}

impl EngineConfig {
    /// Defaults for a helper binary: embedded languages, default maxima, no compile cache, no
    /// history.
    pub fn new(helper: PathBuf) -> Self {
        Self {
            helper,
            languages_dir: None,
            maxima: Limits::default_maxima(),
            cache: None,
            analyses_dir: None,
            dependencies: None,
            modes: ModePolicy::default(),
            fork_helper: false,
            zygote: false,
            confine_analysis: false,
            pool_size: 0,
            pool_reuse: 1,
            pool_languages: Vec::new(),
            memory_pressure: pool::host_memory_pressure,
            pool_idle: pool::IDLE,
            history: None,
            record_in_background: false,
            history_reads_only: false,
            network: None,
            services: Vec::new(),
            tools: None,
            install: crate::settings::InstallSettings::default(),
            response: None,
            sessions: crate::sessions::SessionsSettings::new(
                &warden_core::SessionsConfig::default(),
                PathBuf::from(crate::sessions::SYSTEM_SESSIONS_DIR),
            ),
            volumes: crate::volumes::VolumesSettings::in_dir(PathBuf::from(
                crate::volumes::SYSTEM_VOLUMES_DIR,
            )),
            proxy_share: None,
        }
    }
}

/// Runs requests, records them and answers questions about them.
#[derive(Debug)]
pub struct Engine {
    catalog: Catalog,
    filesystem: FilesystemPolicy,
    seccomp: SeccompPolicy,
    helper: PathBuf,
    fork_helper: bool,
    zygote: bool,
    pool_size: usize,
    pool_reuse: u64,
    pool_languages: Vec<(String, usize)>,
    memory_pressure: pool::MemoryPressure,
    pool_idle: std::time::Duration,
    pool: OnceLock<pool::Pool>,
    network: network::NetworkConfig,
    analyses: analysis_cache::AnalysisCache,
    /// Created at the first run, so that what needs no sandbox (analysis, the history) works on
    /// a host that cannot sandbox.
    sandbox: OnceLock<Sandbox>,
    /// Held while the sandbox is created: threads that need it at once (a batch's or a
    /// server's first runs) wait for one, rather than each checking the host and starting a
    /// zygote that all but one then drop.
    creating_sandbox: std::sync::Mutex<()>,
    maxima: Limits,
    cache: Option<CompileCache>,
    dependencies: Option<DependencyCache>,
    modes: ModePolicy,
    analyzer: Analyzer,
    /// Where `analyzer` runs on untrusted code.
    confinement: confined_analysis::Confinement,
    history: Option<history::Journal>,
    tools: Option<crate::tools::ToolsSettings>,
    install: crate::settings::InstallSettings,
    response: Option<warden_core::ResponseConfig>,
    /// The tool registry, loaded at its first use.
    /// The tool registry and the registered tools' stamp it was loaded at.
    #[allow(clippy::type_complexity)]
    registry: std::sync::RwLock<
        Option<(
            Option<std::time::SystemTime>,
            std::sync::Arc<crate::tools::Registry>,
        )>,
    >,
    /// Held while the registry is loaded again: one load at a time, outside `registry`'s
    /// lock, which readers take (`tool_calls.rs`, `Engine::registry`).
    loading_registry: std::sync::Mutex<()>,
    /// The analyses of the tools' programs, kept whatever their outcome (`tool_analyses.rs`).
    tool_analyses: tool_analyses::ToolAnalyses,
    /// The `files` tool's workspaces.
    workspaces: OnceLock<crate::tools::Workspaces>,
    /// `warden serve`'s sessions, opened at the first use (`sessions.rs`).
    sessions: OnceLock<std::sync::Arc<crate::sessions::Sessions>>,
    sessions_settings: crate::sessions::SessionsSettings,
    /// Named volumes, attached to the executions that ask for them (`volumes.rs`).
    volumes: crate::volumes::Volumes,
}

/// A request made ready to run: its language, its files and limits, and the mode chosen from
/// its analysis.
struct Prepared<'e> {
    language: &'e Language,
    detection: LanguageDetection,
    program: Program,
    limits: Limits,
    /// The compile stage's limits, when the language compiles.
    compile_limits: Option<Limits>,
    mode: Mode,
    reason: String,
    analysis: Analysis,
    /// How long the analysis took.
    analysis_time: std::time::Duration,
    /// The dependencies to install, normalised.
    dependencies: Vec<String>,
    /// The installed set once the dependency stage ran, bound into every sandbox, and held
    /// as long as the execution lasts (eviction leaves it alone).
    dependency_dir: Option<crate::dependency_cache::SetInUse>,
    /// The request's extra read-only host paths (a tool's).
    read_only: Vec<PathBuf>,
    /// A session's shell command: the run is `bash -c` of the program's text, and no file is
    /// written into the workspace (`sessions.rs`).
    command: bool,
    /// The program's own commands, in place of the language's.
    own_commands: Option<crate::execution::OwnCommands>,
    /// The request's limits above the operator's maxima (lowered to them).
    lowered: Vec<crate::execution::Warning>,
    /// Whether the compile stage may take its artifact from the cache and keep it there: only
    /// when what the compiler can read beyond the read-only tree is the program's files, which
    /// the key holds. Not with volumes or read-only host paths (their files are in no key and
    /// change: a header there would give another's binary), nor in a session (its workspace
    /// holds what earlier calls wrote), nor in trusted mode (it reads the host's files).
    cacheable: bool,
}

/// A sandbox's ceilings raised to hold a stage run in it with `stage`'s limits. Each job of
/// the sandbox still runs under its own: the cgroup is set to its memory and processes, the
/// workspace resized to its `workspace_size` (docs/sandbox-setup.md, part 5), its rlimits set
/// by its payload or, under gVisor, its loader. Those rlimits can only be lowered from the
/// sandbox's: a gVisor keeper's hard limits are what every job it execs starts from, so the
/// ones a stage may ask more of (cpu, file size, open files, stack) are raised too, or a
/// shared sandbox's compile was killed by the run's file size (SIGXFSZ writing the binary).
fn raise_ceilings(ceilings: &mut Limits, stage: &Limits) {
    ceilings.memory = ceilings.memory.max(stage.memory);
    ceilings.max_procs = ceilings.max_procs.max(stage.max_procs);
    ceilings.workspace_size = ceilings.workspace_size.max(stage.workspace_size);
    ceilings.cpu_time = ceilings.cpu_time.max(stage.cpu_time);
    ceilings.max_file_size = ceilings.max_file_size.max(stage.max_file_size);
    ceilings.max_open_files = ceilings.max_open_files.max(stage.max_open_files);
    ceilings.stack_size = ceilings.stack_size.max(stage.stack_size);
}

impl Prepared<'_> {
    /// `job` with the installed set's environment, if there is one.
    fn with_dependencies(&self, mut job: Job) -> Job {
        if let Some(set) = &self.dependency_dir {
            for (key, value) in dependencies::environment(self.language, set.path()) {
                job.set_env(&key, &value);
            }
        }
        job
    }
}

impl Engine {
    /// Loads the catalog, the policies and the analysis rules. The sandbox is checked at the
    /// first run.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let catalog = match &config.languages_dir {
            Some(dir) => Catalog::with_overrides(dir)?,
            None => Catalog::builtin()?,
        };
        let confinement = confined_analysis::Confinement::new(
            config.confine_analysis,
            config.fork_helper,
            config.helper.clone(),
        );
        Ok(Self {
            catalog,
            filesystem: FilesystemPolicy::builtin()?,
            seccomp: SeccompPolicy::builtin()?,
            helper: config.helper,
            fork_helper: config.fork_helper,
            zygote: config.zygote,
            pool_size: config.pool_size,
            pool_reuse: config.pool_reuse,
            pool_languages: config.pool_languages,
            memory_pressure: config.memory_pressure,
            pool_idle: config.pool_idle,
            pool: OnceLock::new(),
            network: network::NetworkConfig {
                settings: config.network,
                services: std::sync::Arc::new(std::sync::RwLock::new(config.services)),
                share: config.proxy_share,
            },
            analyses: analysis_cache::AnalysisCache::new(config.analyses_dir),
            sandbox: OnceLock::new(),
            creating_sandbox: std::sync::Mutex::new(()),
            maxima: config.maxima,
            cache: config.cache,
            dependencies: config.dependencies,
            modes: config.modes,
            analyzer: Analyzer::builtin()?,
            confinement,
            history: config.history.map(|h| {
                history::Journal::new(h, config.record_in_background, config.history_reads_only)
            }),
            tools: config.tools,
            install: config.install,
            response: config.response,
            registry: std::sync::RwLock::new(None),
            loading_registry: std::sync::Mutex::new(()),
            tool_analyses: tool_analyses::ToolAnalyses::default(),
            workspaces: OnceLock::new(),
            sessions: OnceLock::new(),
            sessions_settings: config.sessions,
            volumes: crate::volumes::Volumes::new(config.volumes),
        })
    }

    /// Sets warden's own service addresses (a server's listeners once bound: what
    /// `--listen` chose, the port the kernel gave for port 0), which no policy reaches; for
    /// the executions planned from now on.
    pub fn set_services(&self, services: Vec<std::net::SocketAddr>) {
        *self
            .network
            .services
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = services;
    }

    /// The named volumes (docs/volumes.md).
    pub fn volumes(&self) -> &crate::volumes::Volumes {
        &self.volumes
    }

    /// The language catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The limits a run of `language` asking `overrides` gets (the language's, the request's
    /// on top, within the operator's maxima), as `run` would enforce them; `None` for a
    /// language the catalog does not have or limits `run` would refuse.
    pub fn planned_limits(&self, language: &str, overrides: &LimitOverrides) -> Option<Limits> {
        let language = self.catalog.get(language)?;
        self.limits(&[&language.limits, overrides]).ok()
    }

    /// The language of a program: `explicit` (an id or alias) if given, else detected from its
    /// file name, `#!` line and content.
    pub fn detect(
        &self,
        explicit: Option<&str>,
        file_name: Option<&str>,
        code: &[u8],
    ) -> Result<LanguageDetection, EngineError> {
        let (_, detection) = self.resolve(explicit, file_name, code)?;
        Ok(detection)
    }

    /// The static analysis of one program, in its language (named or detected); what
    /// `execute` decides the mode from. Runs nothing.
    pub fn analyze(
        &self,
        explicit: Option<&str>,
        file_name: Option<&str>,
        code: &[u8],
    ) -> Result<(LanguageDetection, Analysis), EngineError> {
        let (language, detection) = self.resolve(explicit, file_name, code)?;
        Ok((detection, self.analyze_one(language.id.as_str(), code)))
    }

    /// The mode `execute` would run `request` in, as its language, its analysis and the mode
    /// policy decide it; `None` when it would be refused or is not a program. Runs nothing; the
    /// analysis is kept (a bounded cache), so a run of the same program soon after does not
    /// analyse it again. A batch uses it to start the slowest programs (gVisor's) first.
    pub fn expected_mode(&self, request: &ExecutionRequest) -> Option<Mode> {
        self.prepare(request).ok().map(|prepared| prepared.mode)
    }

    /// Checks that `request`'s program can be laid out as `execute` lays it out: its language
    /// known, its files' names contained, none twice, none under another file, none where the
    /// language's compiler writes the program, its compiler options admitted. Runs and
    /// analyses nothing: for an adapter that accepts a request to run later (a queued Judge0
    /// submission), so that the caller's mistake is answered when it is made, in the adapter's
    /// terms, rather than as a failed run.
    pub fn check_program(&self, request: &ExecutionRequest) -> Result<(), EngineError> {
        let entry = request.sources.first().ok_or(EngineError::NoSource)?;
        let (language, _) = self.resolve(
            request.language.as_deref(),
            entry.name.as_deref(),
            &entry.code,
        )?;
        Self::lay_out(language, request).map(drop)
    }

    /// `request`'s files laid out for `language` ([`Engine::check_program`]).
    fn lay_out(language: &Language, request: &ExecutionRequest) -> Result<Program, EngineError> {
        let mut program = Program::prepare(language, &request.sources)?
            .with_compile_options(language, &request.compile_options)?;
        program.compile_entry_only = request.compile_entry_only;
        match &request.own_commands {
            // The scripts the commands name are read as the language's code.
            Some(own) => program.add_sources_named(own.compile.iter().flatten().chain(&own.run)),
            // The program's own commands build nothing of warden's: no name is taken.
            None => program.check_reserved(language)?,
        }
        Ok(program)
    }

    /// Runs one request to completion and records it in the history.
    pub fn execute(&self, mut request: ExecutionRequest) -> Result<Execution, EngineError> {
        let mut clock = PhaseClock::start();
        let responded = self.respond(&mut request)?;
        let mut prepared = self.prepare(&request)?;
        if let Some(why) = responded {
            prepared.reason = format!("{why}; {}", prepared.reason);
        }
        let lowered = std::mem::take(&mut prepared.lowered);
        if let Some(prepared_hook) = request
            .interactive
            .as_mut()
            .and_then(|i| i.on_prepared.take())
        {
            prepared_hook(&prepared.detection, &lowered);
        }
        let input = history::Pending::of(&request);
        clock.lap("prepare");
        let cancel = request.cancel.clone();
        let installed = self.dependency_stage(&prepared, cancel, caller(&mut request))?;
        if !prepared.dependencies.is_empty() {
            clock.lap("dependencies");
        }
        let installed = match installed {
            dependencies::Installed::Nothing => None,
            dependencies::Installed::Set(dir, stage) => {
                prepared.dependency_dir = Some(dir);
                Some(stage)
            }
            dependencies::Installed::Cancelled(stage) => {
                let nothing_after = Stages::default();
                let ran = self.record_cancel(
                    prepared,
                    Some(stage),
                    nothing_after,
                    None,
                    &mut request,
                    &input,
                );
                return Err(EngineError::Cancelled { ran });
            }
            dependencies::Installed::Failed(stage) => {
                let result = finish(
                    prepared,
                    Some(stage),
                    None,
                    (Vec::new(), None),
                    Vec::new(),
                    None,
                )?;
                let mut warnings = lowered;
                warnings.extend(self.record(&result, input.borrowed()));
                clock.lap("record");
                return Ok(Execution {
                    result,
                    warnings,
                    phases: clock.phases,
                });
            }
        };
        let mut spec = self.spec(&prepared)?;
        // Dropped at the end of `execute`, after the runner has ended the sandboxes.
        let leases = volumes::attach(
            self.volumes.of(request.origin.token.as_deref()),
            &request.volumes,
            prepared.mode,
            &mut spec,
            prepared.limits.wall_time,
            request.cancel.as_ref(),
        );
        let _leases = match leases {
            // Cancelled while it waited for a volume's writer: recorded as a cancel in the
            // dependency stage is (when that stage installed something).
            Err(EngineError::Cancelled { .. }) => {
                let nothing_after = Stages::default();
                let ran = self.record_cancel(
                    prepared,
                    installed,
                    nothing_after,
                    None,
                    &mut request,
                    &input,
                );
                return Err(EngineError::Cancelled { ran });
            }
            leases => leases?,
        };
        // A pooled sandbox has no volumes, and one with volumes must not be pooled.
        let pool = if spec.volumes.is_empty() {
            self.pool()?
        } else {
            None
        };
        let mut network = self
            .network
            .plan(request.network.as_deref(), prepared.mode)?;
        if let Some(hook) = request
            .interactive
            .as_ref()
            .and_then(|i| i.on_denial.clone())
        {
            network.watch_denials(hook);
        }
        let mut runner = runner::Runner::new(
            self.sandbox()?,
            prepared.mode,
            spec,
            // The program's own compile and run commands share one workspace.
            if prepared.own_commands.is_some() {
                crate::test_cases::SandboxReuse::Shared
            } else {
                request.reuse
            },
            request.cancel.clone(),
        )?
        .with_pool(pool, request.origin.token.as_deref().unwrap_or(""))
        .with_network(network.clone())
        .meanwhile(|| self.open_history());
        tracing::debug!(
            mode = %prepared.mode,
            network = %network.name,
            volumes = request.volumes.len(),
            "sandbox planned"
        );
        clock.lap("plan");
        let mut done = Stages::default();
        let stages = self.stages(&prepared, &mut request, &mut runner, &mut done);
        // The last sandbox ends while the history is written: its processes exit and its
        // mounts go (an RCU grace period) on another CPU meanwhile. A stage's error returns
        // here, and dropping the runner ends and removes that sandbox as `finish` would.
        let let_go = runner.let_go();
        let report = network
            .has_egress()
            .then(|| NetworkReport::new(&network.name, runner.take_traffic()));
        if let Err(mut e) = stages {
            if e.kind() != crate::ErrorKind::Cancelled {
                return Err(e);
            }
            if let Some(ran) = e.take_cancelled_run() {
                done.cancelled(ran);
            }
            let ran = self.record_cancel(prepared, installed, done, report, &mut request, &input);
            return Err(EngineError::Cancelled { ran });
        }
        let_go?;
        clock.split(&runner.timings().phases());
        let Stages {
            compile,
            run,
            tests,
            earlier,
            ..
        } = done;
        let mut result = finish(prepared, installed, compile, (earlier, run), tests, report)?;
        tracing::debug!(id = %result.id, outcome = %result.outcome, "execution ended");
        result.volumes = std::mem::take(&mut request.volumes);
        let mut warnings = lowered;
        warnings.extend(self.record(&result, input.borrowed()));
        clock.lap("record");
        // Recorded even if removing the sandbox then fails: the program ran, and the error
        // still reaches the caller.
        runner.finish()?;
        clock.lap("ending");
        Ok(Execution {
            result,
            warnings,
            phases: clock.phases,
        })
    }

    /// The compile stage, then the run, or one run per test case, each into `done` as it ends.
    fn stages(
        &self,
        prepared: &Prepared<'_>,
        request: &mut ExecutionRequest,
        runner: &mut runner::Runner,
        done: &mut Stages,
    ) -> Result<(), EngineError> {
        if let Some(own) = &prepared.own_commands {
            if let Some(argv) = &own.compile {
                let compiled = self.own_compile(prepared, runner, argv, caller(request))?;
                let clean = compiled.is_ok();
                done.compile = Some(compiled.unwrap_or_else(|failed| failed));
                if !clean {
                    return Ok(());
                }
            }
            return self.runs(prepared, request, runner, Vec::new(), done);
        }
        let artifacts = match &prepared.language.compile {
            None => Vec::new(),
            Some(_) => match self.compile_stage(prepared, runner, caller(request))? {
                compile::Compiled::Artifact(files, stage) => {
                    done.compile = Some(stage);
                    files
                }
                compile::Compiled::Failed(stage) => {
                    done.compile = Some(stage);
                    return Ok(());
                }
            },
        };
        self.runs(prepared, request, runner, artifacts, done)
    }

    /// The program's own compile command, in the sandbox its runs will use: `Ok` with the
    /// stage when it exited 0, `Err` with it otherwise (a compile error).
    fn own_compile(
        &self,
        prepared: &Prepared<'_>,
        runner: &mut runner::Runner,
        argv: &[String],
        caller: Option<&mut dyn warden_sandbox::OutputSink>,
    ) -> Result<Result<StageResult, StageResult>, EngineError> {
        let limits = prepared
            .compile_limits
            .expect("own compile commands have compile limits");
        let language = prepared.language;
        let mut job = prepared.with_dependencies(self.job(
            language,
            &language.run.argv,
            &prepared.program,
            &[],
            limits,
        ));
        job.argv = argv.to_vec();
        // As the language's compile stage (`compile_stage`): output past the limit is cut.
        job.truncate_output = true;
        let run = runner.run_signalled(&job, Stdin::Null, caller)?;
        let clean = run.outcome == (Outcome::Exited { code: 0 });
        let stage = StageResult::from_run(run);
        Ok(if clean { Ok(stage) } else { Err(stage) })
    }

    /// The run stage: one run with the request's stdin, or one per test case.
    fn runs(
        &self,
        prepared: &Prepared<'_>,
        request: &mut ExecutionRequest,
        runner: &mut runner::Runner,
        artifacts: Vec<CollectedFile>,
        done: &mut Stages,
    ) -> Result<(), EngineError> {
        let language = prepared.language;
        require_installed(language, &language.run.argv)?;
        // Moved into shared contents once (no copy), each job's a reference to them.
        let artifacts: Vec<WorkspaceFile> = artifacts
            .into_iter()
            .map(|f| WorkspaceFile {
                executable: f.executable,
                ..WorkspaceFile::new(f.path, f.contents)
            })
            .collect();
        let run_env = expand_env(&language.run.env, prepared.limits.memory.bytes());
        let job_for = |args: &[String]| {
            let mut job = self.job(
                language,
                &language.run.argv,
                &prepared.program,
                args,
                prepared.limits,
            );
            for (key, value) in &run_env {
                job.set_env(key, value);
            }
            let mut job = prepared.with_dependencies(job);
            job.files.extend(artifacts.iter().cloned());
            job.merge_stderr = request.stderr_to_stdout;
            if let Some(own) = &prepared.own_commands {
                job.argv = own.run.iter().chain(args).cloned().collect();
                if own.compile.is_some() {
                    // The workspace is the compile command's, as it left it.
                    job.files.clear();
                }
            }
            if prepared.command {
                let entry = prepared.program.files.first();
                let text = String::from_utf8_lossy(entry.map_or(&[][..], |f| &f.contents));
                job.argv = ["/bin/bash", "-c", &text, "bash"]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(args.iter().cloned())
                    .collect();
                job.files.clear();
            }
            job
        };
        done.running = true;
        if request.tests.is_empty() {
            let stdin = std::mem::take(&mut request.stdin);
            let job = job_for(&request.args);
            let run = match request.interactive.as_mut() {
                Some(interactive) => {
                    if let Some(started) = interactive.on_run.take() {
                        started(done.compile.as_ref());
                    }
                    runner.run_streaming(&job, stdin, interactive.output.as_mut())?
                }
                None => runner.run(&job, stdin)?,
            };
            done.run = Some(run);
            return Ok(());
        }
        done.tests.reserve(request.tests.len());
        let mut kept = KeptOutput::for_cases(prepared.limits.max_output);
        for case in &request.tests {
            let args: Vec<String> = request.args.iter().chain(&case.args).cloned().collect();
            let run = runner.run(&job_for(&args), Stdin::Bytes(case.stdin.clone()))?;
            let mut result = test_result(&run, case, request.comparison);
            kept.cut(&mut result);
            let failed = result.verdict != Verdict::Accepted;
            done.tests.push(result);
            done.push_run(run);
            if failed && request.stop_on_failure {
                break;
            }
        }
        Ok(())
    }

    /// Resolves the language, lays out the files, merges the limits, analyses the code and
    /// chooses the mode: everything decided before anything runs.
    fn prepare(&self, request: &ExecutionRequest) -> Result<Prepared<'_>, EngineError> {
        let entry = request.sources.first().ok_or(EngineError::NoSource)?;
        let (language, detection) = self.resolve(
            request.language.as_deref(),
            entry.name.as_deref(),
            &entry.code,
        )?;
        let program = Self::lay_out(language, request)?;
        let limits = self.limits(&[&language.limits, &request.limits])?;
        self.usable_read_only(language, &request.read_only)?;
        crate::workspace::check_arguments(&request.args, limits.stack_size)?;
        for case in &request.tests {
            let args: Vec<String> = request.args.iter().chain(&case.args).cloned().collect();
            crate::workspace::check_arguments(&args, limits.stack_size)?;
        }
        let lowered = [("", &request.limits), ("compile ", &request.compile_limits)]
            .into_iter()
            .flat_map(|(stage, asked)| {
                Limits::above_maxima(asked, &self.maxima)
                    .into_iter()
                    .map(move |what| crate::execution::Warning {
                        what: crate::execution::WarningKind::LimitLowered,
                        detail: format!("{stage}{what}"),
                    })
            })
            .collect();
        let compile_limits = match (&request.own_commands, &language.compile) {
            (Some(own), _) => own
                .compile
                .as_ref()
                .map(|_| self.limits(&[&language.limits, &request.compile_limits]))
                .transpose()?,
            (None, stage) => stage
                .as_ref()
                .map(|stage| {
                    self.limits(&[&language.limits, &stage.limits, &request.compile_limits])
                })
                .transpose()?,
        };
        let analysing = std::time::Instant::now();
        let analysis = self.analyze_program(language, &program);
        let analysis_time = analysing.elapsed();
        let dependencies = dependencies::requested(language, request, &program)?;
        tracing::debug!(
            language = %language.id,
            by = ?detection.by,
            confidence = %format_args!("{:.2}", detection.confidence),
            files = program.files.len(),
            "language resolved"
        );
        tracing::debug!(
            threat = %analysis.threat_level,
            findings = analysis.findings.len(),
            took = ?analysis_time,
            "analysed"
        );
        let (mode, reason) = self.execution_mode(request, &analysis)?;
        tracing::debug!(%mode, %reason, "mode chosen");
        tracing::debug!(
            cpu = ?limits.cpu_time,
            wall = ?limits.wall_time,
            memory = %limits.memory,
            output = %limits.max_output,
            procs = limits.max_procs,
            "limits"
        );
        Ok(Prepared {
            language,
            detection,
            program,
            limits,
            compile_limits,
            mode,
            reason,
            analysis,
            analysis_time,
            dependencies,
            dependency_dir: None,
            read_only: request.read_only.clone(),
            command: false,
            own_commands: request.own_commands.clone(),
            lowered,
            // A trusted compile reads the host's files, which no key holds (`#include
            // "/tmp/x.h"`).
            cacheable: request.volumes.is_empty()
                && request.read_only.is_empty()
                && mode != Mode::Trusted,
        })
    }

    /// The language and how it was found. Detection reads only the start of the code.
    fn resolve(
        &self,
        explicit: Option<&str>,
        file_name: Option<&str>,
        code: &[u8],
    ) -> Result<(&Language, LanguageDetection), EngineError> {
        let head = &code[..code.len().min(detect::SCANNED_BYTES)];
        let text = String::from_utf8_lossy(head);
        let found = detect::resolve(&self.catalog, explicit, file_name, &text)?;
        Ok((found.language, LanguageDetection::from(&found)))
    }

    /// Runs a plan in the chosen mode's backend; a mode this host cannot provide is an error,
    /// never a silent downgrade. The one place the engine calls the sandbox.
    fn run_plan(
        &self,
        mode: Mode,
        plan: &SandboxPlan,
        stdin: Stdin,
    ) -> Result<SandboxRun, EngineError> {
        let sandbox = self.sandbox()?;
        match mode {
            Mode::Sandboxed => Ok(sandbox.run(plan, stdin)?),
            Mode::Trusted => Ok(sandbox.run_trusted(plan, stdin)?),
            Mode::Isolated => Ok(sandbox.run_isolated(plan, stdin)?),
        }
    }

    /// The sandbox, created (and the host checked) at the first use.
    fn sandbox(&self) -> Result<&Sandbox, EngineError> {
        if let Some(sandbox) = self.sandbox.get() {
            return Ok(sandbox);
        }
        let _creating = self
            .creating_sandbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sandbox) = self.sandbox.get() {
            return Ok(sandbox);
        }
        let sandbox = Sandbox::new(self.helper.clone())?;
        let sandbox = if self.zygote {
            sandbox.with_zygote()?
        } else if self.fork_helper {
            sandbox.fork_helper_when_single_threaded()
        } else {
            sandbox
        };
        Ok(self.sandbox.get_or_init(|| sandbox))
    }

    /// The warm pool, started at the first use when the configuration asks for one.
    fn pool(&self) -> Result<Option<&pool::Pool>, EngineError> {
        if self.pool_size == 0 && self.pool_languages.is_empty() {
            return Ok(None);
        }
        if let Some(pool) = self.pool.get() {
            return Ok(Some(pool));
        }
        let host = self.sandbox()?.clone();
        Ok(Some(self.pool.get_or_init(|| {
            pool::Pool::start(
                host,
                self.pool_size,
                self.pool_reuse,
                self.memory_pressure,
                self.pool_idle,
            )
        })))
    }

    /// Starts the warm pool and has it build, for each language of `[server] pool_languages`,
    /// its number of sandboxes of that language's default run, so that the first runs find
    /// them ready. An unknown language is an error (the server refuses to start).
    pub fn warm_pool(&self) -> Result<(), EngineError> {
        let Some(pool) = self.pool()? else {
            return Ok(());
        };
        for (name, count) in &self.pool_languages {
            let language = self.catalog.get(name).ok_or_else(|| {
                EngineError::Language(warden_core::detect::DetectError::Unknown {
                    name: name.clone(),
                    known: self.catalog.names().join(", "),
                })
            })?;
            let limits = self.limits(&[&language.limits])?;
            pool.prewarm(&self.language_spec(language, limits)?, *count);
        }
        Ok(())
    }

    /// How the warm pool has done; `None` without a pool.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        self.pool.get().map(pool::Pool::stats)
    }

    /// Defaults ⊕ each override in order, refused when absurd, clamped to the operator's maxima.
    fn limits(&self, overrides: &[&LimitOverrides]) -> Result<Limits, EngineError> {
        let limits = overrides.iter().fold(Limits::default(), |l, o| l.with(o));
        limits.validate(&LimitBounds::default())?;
        Ok(limits.clamp_to(&self.maxima))
    }

    /// The sandbox one execution's jobs run in: the base filesystem and the language's mounts,
    /// the seccomp policy, and ceilings that hold both the compile stage's and the run's
    /// limits.
    fn spec(&self, prepared: &Prepared<'_>) -> Result<SandboxSpec, EngineError> {
        let mut spec = self.language_spec(prepared.language, prepared.limits)?;
        if let Some(compile) = &prepared.compile_limits {
            // The request's compile limits may ask more than the language's.
            raise_ceilings(&mut spec.limits, compile);
        }
        if let Some(set) = &prepared.dependency_dir {
            spec.add_bind(set.path());
        }
        for path in &prepared.read_only {
            spec.add_bind(path);
        }
        Ok(spec)
    }

    /// Refuses read-only paths a sandbox of `language` would hide under its own mounts, or
    /// cannot bind ([`Engine::check_read_only`]).
    pub(crate) fn usable_read_only(
        &self,
        language: &Language,
        paths: &[PathBuf],
    ) -> Result<(), EngineError> {
        for path in paths {
            let covered = ["/tmp", warden_sandbox::WORKDIR, "/proc", "/dev"]
                .into_iter()
                .find(|cover| path.starts_with(cover));
            if let Some(covered) = covered {
                return Err(EngineError::HiddenReadOnly {
                    path: path.clone(),
                    covered,
                });
            }
        }
        if paths.is_empty() {
            return Ok(());
        }
        self.check_read_only(language, paths)
    }

    /// Refuses the read-only paths the sandbox cannot bind (bound, every run of the language
    /// failed at setup with a 500): one under a bind the sandbox has already (it is seen
    /// there, read-only; its mount point cannot be made in a read-only bind), and `/etc` or
    /// the files the sandbox writes there itself.
    fn check_read_only(&self, language: &Language, paths: &[PathBuf]) -> Result<(), EngineError> {
        const WRITTEN: [&str; 5] = [
            "/etc",
            "/etc/passwd",
            "/etc/group",
            "/etc/hosts",
            "/etc/resolv.conf",
        ];
        let spec = self.language_spec(language, Limits::default())?;
        for path in paths {
            let refuse = |why: String| {
                Err(EngineError::ReadOnlyInSandbox {
                    path: path.clone(),
                    why,
                })
            };
            if WRITTEN.iter().any(|w| path == Path::new(w)) {
                return refuse(
                    "the sandbox writes its own /etc/passwd, group, hosts and resolv.conf; \
                     name the directories of /etc the program needs instead"
                        .to_owned(),
                );
            }
            let shown = spec
                .binds
                .iter()
                .find(|b| path != &b.path && path.starts_with(&b.path));
            if let Some(bind) = shown {
                return refuse(format!(
                    "the sandbox shows it already, read-only, under {}",
                    bind.path.display()
                ));
            }
        }
        Ok(())
    }

    /// The sandbox of a run of `language` with `limits`, before a request's extra binds: what
    /// the warm pool builds ahead for a language (`warm_pool`).
    fn language_spec(
        &self,
        language: &Language,
        limits: Limits,
    ) -> Result<SandboxSpec, EngineError> {
        let mut spec = SandboxSpec::new(&self.filesystem, self.seccomp.clone());
        for mount in &language.mounts {
            spec.add_bind(mount);
        }
        let mut limits = limits;
        if let Some(stage) = &language.compile {
            raise_ceilings(
                &mut limits,
                &self.limits(&[&language.limits, &stage.limits])?,
            );
        }
        spec.limits = limits;
        Ok(spec)
    }

    /// The job running `argv` over `program`'s files.
    fn job(
        &self,
        language: &Language,
        argv: &ArgvTemplate,
        program: &Program,
        args: &[String],
        limits: Limits,
    ) -> Job {
        let artifact = language
            .compile
            .as_ref()
            .map(|c| format!("{WORKDIR}/{}", c.artifact))
            .unwrap_or_default();
        let values = CommandValues {
            source: &program.source,
            sources: program.compiled(),
            class: &program.class,
            workdir: WORKDIR,
            artifact: &artifact,
            args,
            options: &program.compile_options,
            memory: limits.memory.bytes(),
        };
        let mut job = Job::new(expand_argv(argv, &values), limits);
        for (key, value) in &language.env {
            job.set_env(key, value);
        }
        job.files = program.files.clone();
        job
    }

    /// A one-shot plan running `argv` over `program`'s files (host checks).
    fn plan(
        &self,
        language: &Language,
        argv: &ArgvTemplate,
        program: &Program,
        args: &[String],
        limits: Limits,
    ) -> SandboxPlan {
        let job = self.job(language, argv, program, args, limits);
        let mut plan = SandboxPlan::new(job.argv, &self.filesystem, self.seccomp.clone());
        for mount in &language.mounts {
            plan.add_bind(mount);
        }
        plan.env = job.env;
        plan.files = job.files;
        plan.limits = limits;
        plan
    }
}

/// What the stages of an execution produced, filled in as each ends, so that an execution a
/// cancel ends is recorded with what ran before it (`cancelled.rs`).
#[derive(Debug, Default)]
struct Stages {
    /// The compile stage, once it ended (a compile error included).
    compile: Option<StageResult>,
    /// Whether the run stage began: a job cancelled before it was the compile stage's.
    running: bool,
    /// The run, or the last test case's.
    run: Option<SandboxRun>,
    /// The test cases' results.
    tests: Vec<TestResult>,
    /// The runs of the cases before the last, their output dropped (it is in their test
    /// results): kept for what the sandbox stopped in them.
    earlier: Vec<SandboxRun>,
}

impl Stages {
    /// Makes `run` the last run; the one before it joins the earlier ones.
    fn push_run(&mut self, run: SandboxRun) {
        if let Some(mut before) = self.run.replace(run) {
            // What the sandbox stopped in it is the execution's too (docs/events.md); its
            // output is in its test result already.
            before.stdout = Vec::new();
            before.stderr = Vec::new();
            before.collected = Vec::new();
            before.samples = Vec::new();
            self.earlier.push(before);
        }
    }
}

/// Times an execution's phases one after another.
struct PhaseClock {
    last: std::time::Instant,
    phases: Vec<crate::execution::Phase>,
}

impl PhaseClock {
    fn start() -> Self {
        Self {
            last: std::time::Instant::now(),
            phases: Vec::new(),
        }
    }

    /// Ends the phase `name` now.
    fn lap(&mut self, name: &'static str) {
        let now = std::time::Instant::now();
        self.phases.push(crate::execution::Phase {
            name,
            took: now - self.last,
        });
        self.last = now;
    }

    /// Ends a stretch measured inside as `parts`; what they do not cover is `other`.
    fn split(&mut self, parts: &[(&'static str, std::time::Duration)]) {
        let now = std::time::Instant::now();
        let mut rest = now - self.last;
        for (name, took) in parts {
            self.phases
                .push(crate::execution::Phase { name, took: *took });
            rest = rest.saturating_sub(*took);
        }
        self.phases.push(crate::execution::Phase {
            name: "other",
            took: rest,
        });
        self.last = now;
    }
}

/// Fails with an install hint when the program of `argv` is missing (the artifact of a compile
/// stage is not a host program and is skipped).
fn require_installed(language: &Language, argv: &ArgvTemplate) -> Result<(), EngineError> {
    let program = &argv[0];
    if !program.starts_with('/') || Path::new(program).exists() {
        return Ok(());
    }
    let hint = if language.packages.is_empty() {
        String::new()
    } else {
        format!(
            " (install it with: apt-get install {})",
            language.packages.join(" ")
        )
    };
    Err(EngineError::MissingRuntime {
        language: language.id.clone(),
        program: program.clone(),
        hint,
    })
}

/// The sink of an interactive request, whose signals reach every stage's program.
fn caller(request: &mut ExecutionRequest) -> Option<&mut dyn warden_sandbox::OutputSink> {
    match request.interactive.as_mut() {
        Some(interactive) => {
            Some(interactive.output.as_mut() as &mut dyn warden_sandbox::OutputSink)
        }
        None => None,
    }
}

/// The analysis `prepare` gives a program of `language` made of `files` (named, entry first),
/// with `engine`: for the tests of the engine's modules.
#[cfg(test)]
pub(crate) fn analysis_of(
    engine: &Engine,
    language: &str,
    files: &[(&str, &[u8])],
) -> Result<Analysis, EngineError> {
    let request = ExecutionRequest {
        language: Some(language.into()),
        sources: files
            .iter()
            .map(|(name, code)| crate::execution::SourceFile {
                name: Some((*name).to_owned()),
                code: code.to_vec(),
                executable: false,
            })
            .collect(),
        ..ExecutionRequest::default()
    };
    engine.prepare(&request).map(|p| p.analysis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_toolchain_names_the_packages_to_install() {
        let catalog = Catalog::builtin().expect("catalog");
        let mut go = catalog.get("go").expect("go").clone();
        go.compile.as_mut().expect("go compiles").argv[0] = "/nonexistent/go".to_owned();
        let argv = go.compile.as_ref().expect("go compiles").argv.clone();
        let err = require_installed(&go, &argv).expect_err("missing");
        let message = err.to_string();
        assert!(message.contains("/nonexistent/go"), "{message}");
        assert!(message.contains("apt-get install golang-go"), "{message}");
        let run = go.run.argv.clone();
        assert!(
            require_installed(&go, &run).is_ok(),
            "{{artifact}} is not a host program"
        );
    }

    #[test]
    fn analysis_and_detection_need_no_sandbox() {
        let engine = Engine::new(EngineConfig::new(PathBuf::from("/nonexistent/warden")))
            .expect("an engine without a sandbox");
        let (detection, analysis) = engine
            .analyze(None, Some("x.py"), b"eval(input())\n")
            .expect("analysed");
        assert_eq!(detection.language.as_str(), "python");
        assert!(!detection.is_unsure());
        assert!(!analysis.findings.is_empty());
        let detection = engine.detect(None, None, b"echo hi").expect("detected");
        assert_eq!(detection.language.as_str(), "bash");
        assert!(detection.is_unsure());
    }

    /// A loader runs a file of any name (`runpy.run_path("/work/helper2.txt")`): every file of
    /// the program is analysed, a file in another language's extension as that language, and a
    /// data file adds its findings but not its parse errors.
    #[test]
    fn every_file_of_a_program_is_analysed() {
        let engine = Engine::new(EngineConfig::new(PathBuf::from("/nonexistent/warden")))
            .expect("an engine without a sandbox");
        let file = |name: Option<&str>, code: &str| crate::execution::SourceFile {
            name: name.map(str::to_owned),
            code: code.as_bytes().to_vec(),
            executable: false,
        };
        let prepare = |sources| {
            let request = ExecutionRequest {
                language: Some("python".into()),
                sources,
                ..ExecutionRequest::default()
            };
            engine.prepare(&request).map(|p| p.analysis)
        };
        let entry = "import runpy as r\nr.run_path('/work/helper2.txt')\n";
        let analysis = prepare(vec![
            file(Some("main.py"), entry),
            file(
                Some("helper2.txt"),
                "import ctypes\nctypes.CDLL(None).system(b'id')\n",
            ),
        ])
        .expect("prepared");
        assert_eq!(
            analysis.threat_level,
            warden_core::ThreatLevel::High,
            "{analysis:#?}"
        );
        assert!(analysis
            .findings
            .iter()
            .any(|f| f.rule == "python.native_code"));
        let analysis = prepare(vec![
            file(Some("main.py"), "print(open('run.sh').read())\n"),
            file(Some("run.sh"), "echo aGk= | base64 -d | bash\n"),
        ])
        .expect("prepared");
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule == "bash.decode_and_run"),
            "{analysis:#?}"
        );
        let data = "name,score\nada,3\n)(]{,,\n\u{1}\n".repeat(50);
        let analysis = prepare(vec![
            file(Some("main.py"), "print(open('scores.csv').read())\n"),
            file(Some("scores.csv"), &data),
        ])
        .expect("prepared");
        assert_eq!(
            analysis.threat_level,
            warden_core::ThreatLevel::None,
            "{analysis:#?}"
        );
        assert_eq!(analysis.parse_error, None);
        // Bug hunt: data that merely holds a rule's word was graded as code (a CSV of names,
        // a README saying "eval mode" sent their programs to gVisor).
        for (name, data) in [
            ("people.csv", "name,city\nJosé,São Paulo\nZoë,Köln\n"),
            (
                "README.md",
                "# Model\n\nRun the model in eval mode, then exec the report.\n",
            ),
        ] {
            let analysis = prepare(vec![
                file(Some("main.py"), "print(open('data').read())\n"),
                file(Some(name), data),
            ])
            .expect("prepared");
            assert_eq!(
                analysis.threat_level,
                warden_core::ThreatLevel::None,
                "{name}: {analysis:#?}"
            );
        }
        // Bug hunt: a helper in another language that could not be read (a fork bomb behind
        // a NUL byte) counted only for its findings, none, and the program ran in the native
        // sandbox; and a helper named without an extension but with a `#!` line was read as
        // data, its fork bomb unseen.
        let bomb = ":(){ :|:& };:\n";
        let analysis = prepare(vec![
            file(
                Some("main.py"),
                "import subprocess\nsubprocess.run(['bash', 'helper.sh'])\n",
            ),
            file(Some("helper.sh"), &format!("#\0\n{bomb}")),
        ])
        .expect("prepared");
        assert_eq!(
            analysis.threat_level,
            warden_core::ThreatLevel::High,
            "{analysis:#?}"
        );
        assert!(analysis.parse_error.is_some(), "{analysis:#?}");
        let refused = prepare(vec![
            file(
                Some("main.py"),
                "import subprocess\nsubprocess.run(['./helper'])\n",
            ),
            file(Some("helper"), &format!("#!/bin/bash\n{bomb}")),
        ])
        .expect_err("a fork bomb is refused");
        assert!(
            matches!(
                &refused,
                EngineError::Refused { analysis, .. }
                    if analysis.threat_level == warden_core::ThreatLevel::Critical
                        && analysis.findings.iter().any(|f| f.rule == "bash.fork_bomb")
            ),
            "{refused:?}"
        );
        // Bug hunt hr2, F1: a helper for another shell (`#!/bin/dash`) or an interpreter
        // without rules (`#!/usr/bin/perl`) was read as data and counted for nothing.
        let run_helper = "import subprocess\nsubprocess.run(['./h'])\n";
        let analysis = prepare(vec![
            file(Some("main.py"), run_helper),
            file(Some("h"), "#!/bin/dash\ncat /etc/shadow\n"),
        ])
        .expect("prepared");
        assert!(
            analysis
                .findings
                .iter()
                .any(|f| f.rule == "bash.credentials"),
            "{analysis:#?}"
        );
        let analysis = prepare(vec![
            file(Some("main.py"), run_helper),
            file(Some("h"), "#!/usr/bin/perl\nprint `cat /etc/passwd`;\n"),
        ])
        .expect("prepared");
        assert_eq!(
            analysis.threat_level,
            warden_core::ThreatLevel::High,
            "{analysis:#?}"
        );
        assert!(
            analysis
                .parse_error
                .as_deref()
                .is_some_and(|e| e.contains("perl")),
            "{analysis:#?}"
        );
    }

    /// Regression hunt: `E=eval` in a file that reads `$E` only as an argument counts for
    /// nothing, but files are analysed one by one, and another file of the program may run it
    /// in the same shell (`source ./lib.sh; $E id`, or the other way round), which alone is
    /// graded `low` as any command named by a variable. In a program of several files it holds
    /// unless another file reads the variable, and the cache keeps the analyses of the same
    /// bytes among different files apart.
    #[test]
    fn a_variable_assigned_eval_counts_where_another_file_may_run_it() {
        let engine = Engine::new(EngineConfig::new(PathBuf::from("/nonexistent/warden")))
            .expect("an engine without a sandbox");
        let lib: &[u8] = b"E=eval\necho \"mode: $E\"\n";
        let hidden = |analysis: &Analysis| {
            analysis
                .findings
                .iter()
                .any(|f| f.rule == "bash.hidden_command")
        };
        let alone = || analysis_of(&engine, "bash", &[("lib.sh", lib)]).expect("prepared");
        let analysis = alone();
        assert_eq!(
            analysis.threat_level,
            warden_core::ThreatLevel::None,
            "{analysis:#?}"
        );
        let programs: [&[(&str, &[u8])]; 4] = [
            &[("main.sh", b"source ./lib.sh\n$E id\n"), ("lib.sh", lib)],
            // The shell joins a line continued inside a name before it splits words.
            &[
                ("main.sh", b"source ./lib.sh\n$MODE id\n"),
                ("lib.sh", b"MO\\\nDE=eval\n"),
            ],
            &[
                ("main.sh", b"for f in ./*.sh; do . \"$f\"; done\n$E id\n"),
                ("lib.sh", lib),
            ],
            &[
                ("main.sh", b"E=eval\necho \"mode: $E\"\nsource ./run.txt\n"),
                ("run.txt", b"$E id\n"),
            ],
        ];
        for files in programs {
            let analysis = analysis_of(&engine, "bash", files).expect("prepared");
            assert!(
                analysis.threat_level >= warden_core::ThreatLevel::High && hidden(&analysis),
                "{:?}: {analysis:#?}",
                files.iter().map(|(name, _)| name).collect::<Vec<_>>()
            );
        }
        let analysis = alone();
        assert!(!hidden(&analysis), "{analysis:#?}");
        // Regression hunt: in a program of several files it counted wherever it was, though
        // no other file read it (`MODE=eval` in a training script beside its Python and a
        // README): graded `high`.
        let training: &[(&str, &[u8])] = &[
            (
                "train.sh",
                b"MODE=eval\n./train --mode \"$MODE\" --out \"runs/${MODE}\"\n",
            ),
            ("train.py", b"import sys\nprint(sys.argv)\n"),
            ("README.md", b"Run `bash train.sh` to eval the model.\n"),
        ];
        let analysis = analysis_of(&engine, "bash", training).expect("prepared");
        assert!(!hidden(&analysis), "{analysis:#?}");
        assert!(
            analysis.threat_level < warden_core::ThreatLevel::High,
            "{analysis:#?}"
        );
    }

    /// Hunt "ana": the findings of a program's files were listed without a cap (6 files of
    /// 250 findings made a record of 1500), where docs/analysis.md lists at most 200, the most
    /// severe.
    #[test]
    fn a_program_lists_at_most_200_findings_the_most_severe() {
        let engine = Engine::new(EngineConfig::new(PathBuf::from("/nonexistent/warden")))
            .expect("an engine without a sandbox");
        let noisy = "import os\n".to_owned() + &"os.getenv('A')\n".repeat(250);
        let native = noisy.clone() + "import ctypes\n";
        let mut files: Vec<(String, &[u8])> = (0..5)
            .map(|i| (format!("m{i}.py"), noisy.as_bytes()))
            .collect();
        files.push(("n.py".to_owned(), native.as_bytes()));
        let files: Vec<(&str, &[u8])> = files.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let analysis = analysis_of(&engine, "python", &files).expect("prepared");
        assert_eq!(analysis.threat_level, warden_core::ThreatLevel::High);
        assert_eq!(analysis.findings.len(), warden_analysis::MAX_FINDINGS);
        assert!(analysis
            .findings
            .iter()
            .any(|f| f.rule == "python.native_code"));
    }

    /// Bug hunt "comp": C and C++ (`#include "b.txt"` inside a function), Rust (`include!`)
    /// and bash (`source`, which runs commands up to the first syntax error) take a fragment of
    /// a file of any name, and a file read as data counted only when it parsed whole: one stray
    /// `}` hid a fork bomb, which ran sandboxed instead of being refused, and one Latin-1 byte
    /// in a comment hid anything. Their findings count now; data still counts for nothing in a
    /// language that needs a whole file.
    #[test]
    fn a_fragment_a_compiler_includes_counts_whatever_it_parses_as() {
        let engine = Engine::new(EngineConfig::new(PathBuf::from("/nonexistent/warden")))
            .expect("an engine without a sandbox");
        let prepare =
            |language: &str, files: &[(&str, &[u8])]| analysis_of(&engine, language, files);
        let refused_as_critical = |result: Result<Analysis, EngineError>, rule: &str| {
            assert!(
                matches!(
                    &result,
                    Err(EngineError::Refused { analysis, .. })
                        if analysis.threat_level == warden_core::ThreatLevel::Critical
                            && analysis.findings.iter().any(|f| f.rule == rule)
                ),
                "{rule}: {result:?}"
            );
        };
        let main_c: &[u8] = b"#include <unistd.h>\nint main(void) {\n#include \"b.txt\"\n";
        for language in ["c", "cpp"] {
            let name = if language == "c" {
                "main.c"
            } else {
                "main.cpp"
            };
            refused_as_critical(
                prepare(
                    language,
                    &[(name, main_c), ("b.txt", b"  for (;;) fork();\n}\n")],
                ),
                &format!("{language}.spawn_in_endless_loop"),
            );
        }
        refused_as_critical(
            prepare(
                "c",
                &[
                    (
                        "main.c",
                        b"#include <stdlib.h>\nint main(void) {\n#include \"u.txt\"\n}\n",
                    ),
                    ("u.txt", b"/* caf\xe9 */ for (;;) system(\"true\");\n"),
                ],
            ),
            "c.spawn_in_endless_loop",
        );
        let analysis = prepare(
            "rust",
            &[
                ("main.rs", b"fn main() { let v: u64 = include!(\"p.txt\"); println!(\"{v}\"); }\n"),
                ("p.txt", b"unsafe { let x: u64; core::arch::asm!(\"mov {0}, 42\", out(reg) x); x } + 0\n"),
            ],
        )
        .expect("prepared");
        assert!(
            analysis.threat_level >= warden_core::ThreatLevel::High,
            "{analysis:#?}"
        );
        refused_as_critical(
            prepare(
                "bash",
                &[
                    ("main.sh", b"source ./notes.txt\n"),
                    ("notes.txt", b":(){ :|:& };:\nfi\n"),
                ],
            ),
            "bash.fork_bomb",
        );
        // Bug hunt "regr2": a file of another language's extension included by a C source
        // was read as that language alone.
        refused_as_critical(
            prepare(
                "c",
                &[
                    (
                        "main.c",
                        b"#include <unistd.h>\nint main(void) {\n#include \"b.php\"\n}\n",
                    ),
                    ("b.php", b"  for (;;) fork();\n"),
                ],
            ),
            "c.spawn_in_endless_loop",
        );
        // Bug hunt "regr2": text no source names (a README, a Makefile) sent ordinary bash, C
        // and Rust programs to gVisor once fragments counted in every file.
        for (language, main, data) in [
            (
                "bash",
                ("main.sh", &b"echo hello; wc -l < README.md\n"[..]),
                ("README.md", &b"Install:\n```bash\nsudo apt-get install jq\n```\neval mode is the default.\n"[..]),
            ),
            (
                "c",
                ("main.c", &b"int main(void) { return 0; }\n"[..]),
                ("README.md", &b"Reads n. Does not call syscall(2) directly.\n"[..]),
            ),
            (
                "rust",
                ("main.rs", &b"fn main() { println!(\"hi\"); }\n"[..]),
                ("README.md", &b"every `unsafe { }` block is audited. Uses `#[no_mangle]` exports\n"[..]),
            ),
        ] {
            let analysis = prepare(language, &[main, data]).expect("prepared");
            assert_eq!(
                analysis.threat_level,
                warden_core::ThreatLevel::None,
                "{language}: {analysis:#?}"
            );
        }
        // Python runs no part of a file that does not compile: a README that does not parse is
        // still data there.
        let analysis = prepare(
            "python",
            &[
                ("main.py", b"print(open('README').read())\n"),
                (
                    "README",
                    b"Run it in eval mode, then exec(the report).\n)\n",
                ),
            ],
        )
        .expect("prepared");
        assert_eq!(
            analysis.threat_level,
            warden_core::ThreatLevel::None,
            "{analysis:#?}"
        );
    }

    /// Every sandbox mounts its own `/tmp`: a set stored there could never be seen inside, so
    /// the request is refused, saying why, before anything is installed.
    #[test]
    fn a_dependency_cache_a_sandbox_cannot_see_is_refused() {
        let run = |dependencies| {
            let config = EngineConfig {
                dependencies,
                ..EngineConfig::new(PathBuf::from("/nonexistent/warden"))
            };
            let engine = Engine::new(config).expect("an engine");
            engine.execute(ExecutionRequest {
                language: Some("python".into()),
                sources: vec![crate::execution::SourceFile {
                    name: None,
                    code: b"import six".to_vec(),
                    executable: false,
                }],
                dependencies: vec!["six==1.16.0".into()],
                ..ExecutionRequest::default()
            })
        };
        let hidden = DependencyCache::new(PathBuf::from("/tmp/warden-deps"), 1 << 20);
        let err = run(Some(hidden)).expect_err("hidden from sandboxes");
        assert!(
            matches!(
                err,
                EngineError::DependencyCacheHidden { hidden: "/tmp", .. }
            ),
            "{err}"
        );
        assert_eq!(err.kind(), crate::ErrorKind::Unavailable);
        let err = run(None).expect_err("no cache");
        assert!(matches!(err, EngineError::NoDependencyCache), "{err}");
    }
}
