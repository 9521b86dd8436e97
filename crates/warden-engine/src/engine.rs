//! The execution use case: request -> language -> program layout -> [compile stage, cached]
//! -> run stage -> result.

use std::path::{Path, PathBuf};

use warden_analysis::Analyzer;
use warden_core::detect::{self, DetectError};
use warden_core::language::{expand_argv, ArgvTemplate, CommandValues, CompileStage};
use warden_core::mode::ModeRefusal;
use warden_core::{
    Analysis, Catalog, FilesystemPolicy, Language, LimitBounds, LimitOverrides, Limits, Mode,
    ModePolicy, ModeRequest, Outcome, SeccompPolicy,
};
use warden_sandbox::{
    CollectedFile, Sandbox, SandboxError, SandboxPlan, SandboxRun, Stdin, WorkspaceFile, WORKDIR,
};

use crate::compile_cache::{toolchain_identity, CacheKey, CompileCache};
use crate::execution::{ExecutionRequest, ExecutionResult, Security, StageResult};
use crate::id::ExecutionId;
use crate::workspace::Program;

/// Operator configuration of the engine.
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
    /// Which modes the operator allows for which threat levels.
    pub modes: ModePolicy,
    /// Fork the sandbox helper without exec when the process is single-threaded (a CLI);
    /// see `warden_sandbox::Sandbox::fork_helper_when_single_threaded`.
    pub fork_helper: bool,
}

impl EngineConfig {
    /// Defaults for a helper binary: embedded languages, default maxima, no compile cache.
    pub fn new(helper: PathBuf) -> Self {
        Self {
            helper,
            languages_dir: None,
            maxima: Limits::default_maxima(),
            cache: None,
            modes: ModePolicy::default(),
            fork_helper: false,
        }
    }
}

/// warden could not execute the request (never the program's own failure).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The language catalog is invalid.
    #[error("loading the language catalog")]
    Catalog(#[from] warden_core::CatalogError),
    /// A built-in policy file is invalid.
    #[error("loading the built-in policies: {0}")]
    Policy(String),
    /// The language is unknown or could not be detected.
    #[error(transparent)]
    Language(#[from] DetectError),
    /// The request has no program.
    #[error("no program given: pass a file or code")]
    NoSource,
    /// The program's files cannot be laid out.
    #[error("invalid program files: {0}")]
    BadSource(String),
    /// A requested limit is absurd.
    #[error(transparent)]
    Limit(#[from] warden_core::LimitError),
    /// The language's toolchain is not installed.
    #[error("{language} needs {program}, which is not installed on this host{hint}")]
    MissingRuntime {
        /// The language id.
        language: String,
        /// The missing program.
        program: String,
        /// How to install it.
        hint: String,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
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
}

/// Runs requests.
#[derive(Debug)]
pub struct Engine {
    catalog: Catalog,
    filesystem: FilesystemPolicy,
    seccomp: SeccompPolicy,
    sandbox: Sandbox,
    maxima: Limits,
    cache: Option<CompileCache>,
    modes: ModePolicy,
    analyzer: Analyzer,
}

/// The outcome of a compile stage.
enum Compiled {
    /// The artifact, and the stage as the result shows it.
    Artifact(Vec<CollectedFile>, StageResult),
    /// The compiler failed; the stage says how.
    Failed(StageResult),
}

impl Engine {
    /// Loads the catalog and policies and checks that this host can sandbox.
    pub fn new(config: EngineConfig) -> Result<Self, EngineError> {
        let catalog = match &config.languages_dir {
            Some(dir) => Catalog::with_overrides(dir)?,
            None => Catalog::builtin()?,
        };
        Ok(Self {
            catalog,
            filesystem: FilesystemPolicy::builtin()
                .map_err(|e| EngineError::Policy(e.to_string()))?,
            seccomp: SeccompPolicy::builtin().map_err(|e| EngineError::Policy(e.to_string()))?,
            sandbox: if config.fork_helper {
                Sandbox::new(config.helper)?.fork_helper_when_single_threaded()
            } else {
                Sandbox::new(config.helper)?
            },
            maxima: config.maxima,
            cache: config.cache,
            modes: config.modes,
            analyzer: Analyzer::builtin().map_err(|e| EngineError::Policy(e.to_string()))?,
        })
    }

    /// The language catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The static analysis of one program (what `execute` decides the mode from).
    pub fn analyze(&self, language: &Language, code: &[u8]) -> Analysis {
        self.analyzer.analyze(language.id.as_str(), code)
    }

    /// Runs one request to completion.
    pub fn execute(&self, request: ExecutionRequest) -> Result<ExecutionResult, EngineError> {
        let entry = request.sources.first().ok_or(EngineError::NoSource)?;
        let code = String::from_utf8_lossy(&entry.code);
        let language = detect::resolve(
            &self.catalog,
            request.language.as_deref(),
            entry.name.as_deref(),
            &code,
        )?
        .language;
        let program = Program::prepare(language, &request.sources)?;
        let limits = self.limits(&[&language.limits, &request.limits])?;
        let security = self.judge(language, &program, request.mode)?;
        let mode = security.mode;
        let mut result = ExecutionResult {
            id: ExecutionId::random(),
            language: language.id.to_string(),
            mode,
            outcome: Outcome::CompileError,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            usage: Default::default(),
            limits,
            compile: None,
            security,
        };
        let artifacts = match &language.compile {
            None => Vec::new(),
            Some(stage) => {
                let compiled = self.compile(language, stage, &program, mode)?;
                let (files, stage) = match compiled {
                    Compiled::Artifact(files, stage) => (Some(files), stage),
                    Compiled::Failed(stage) => (None, stage),
                };
                result.security.note("compile", &stage.outcome);
                result.compile = Some(stage);
                match files {
                    Some(files) => files,
                    None => return Ok(result),
                }
            }
        };
        require_installed(language, &language.run.argv)?;
        let mut plan = self.plan(
            language,
            &language.run.argv,
            &program,
            &request.args,
            limits,
        );
        plan.files
            .extend(artifacts.into_iter().map(|f| WorkspaceFile {
                executable: f.executable,
                ..WorkspaceFile::new(f.path, f.contents)
            }));
        let run = self.run_plan(mode, &plan, request.stdin)?;
        result.security.note("run", &run.outcome);
        result.outcome = run.outcome;
        result.stdout = run.stdout;
        result.stderr = run.stderr;
        result.stdout_truncated = run.stdout_truncated;
        result.stderr_truncated = run.stderr_truncated;
        result.usage = run.usage;
        Ok(result)
    }

    /// Analyses every source file of the program in its language and chooses the mode; a
    /// refusal carries the analysis.
    fn judge(
        &self,
        language: &Language,
        program: &Program,
        request: ModeRequest,
    ) -> Result<Security, EngineError> {
        let mut analysis = Analysis::default();
        for file in program.files.iter().filter(|f| program.is_source(f)) {
            let part = self.analyzer.analyze(language.id.as_str(), &file.contents);
            analysis.threat_level = analysis.threat_level.max(part.threat_level);
            analysis.findings.extend(part.findings);
            analysis.parse_error = analysis.parse_error.or(part.parse_error);
        }
        let choice = self
            .modes
            .choose(request, analysis.threat_level)
            .map_err(|refusal| EngineError::Refused {
                refusal,
                analysis: analysis.clone(),
            })?;
        Ok(Security {
            mode: choice.mode,
            reason: choice.reason,
            threat_level: analysis.threat_level,
            findings: analysis.findings,
            parse_error: analysis.parse_error,
            violations: Vec::new(),
        })
    }

    /// Runs a plan in the chosen mode's backend; a mode this host cannot provide is an error,
    /// never a silent downgrade.
    fn run_plan(
        &self,
        mode: Mode,
        plan: &SandboxPlan,
        stdin: Stdin,
    ) -> Result<SandboxRun, EngineError> {
        match mode {
            Mode::Sandboxed => Ok(self.sandbox.run(plan, stdin)?),
            Mode::Trusted => Ok(self.sandbox.run_trusted(plan, stdin)?),
            Mode::Isolated => Ok(self.sandbox.run_isolated(plan, stdin)?),
        }
    }

    /// The toolchain's version, as its `version` command prints it inside a sandbox (the first
    /// non-empty line of stdout, else of stderr).
    pub fn toolchain_version(&self, language: &Language) -> Result<String, EngineError> {
        require_installed(language, &language.version)?;
        let program = Program::prepare(
            language,
            &[crate::execution::SourceFile {
                name: None,
                code: Vec::new(),
            }],
        )?;
        let limits = Limits {
            wall_time: std::time::Duration::from_secs(20),
            cpu_time: std::time::Duration::from_secs(20),
            ..self.limits(&[&language.limits])?
        };
        let plan = self.plan(language, &language.version, &program, &[], limits);
        let run = self.sandbox.run(&plan, Stdin::Null)?;
        let first_line = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        };
        Ok(first_line(&run.stdout)
            .or_else(|| first_line(&run.stderr))
            .unwrap_or_else(|| format!("unknown ({})", run.outcome)))
    }

    /// Runs the compile stage, or takes its artifact from the cache.
    fn compile(
        &self,
        language: &Language,
        stage: &CompileStage,
        program: &Program,
        mode: Mode,
    ) -> Result<Compiled, EngineError> {
        require_installed(language, &stage.argv)?;
        let toolchain = toolchain_identity(&stage.argv[0]).unwrap_or_default();
        let key = CacheKey::new(language, &toolchain, &program.files);
        if let Some(files) = self.cache.as_ref().and_then(|c| c.get(&key)) {
            tracing::debug!(key = key.as_str(), "compile cache hit");
            return Ok(Compiled::Artifact(files, StageResult::cached()));
        }
        let limits = self.limits(&[&language.limits, &stage.limits])?;
        let mut plan = self.plan(language, &stage.argv, program, &[], limits);
        plan.collect = Some(PathBuf::from(&stage.artifact));
        let run = self.run_plan(mode, &plan, Stdin::Null)?;
        let clean = run.outcome == (Outcome::Exited { code: 0 });
        if !clean || run.collected.is_empty() {
            let mut result = StageResult::from_run(run.clone());
            if clean {
                // The compiler claimed success but left no artifact (or one warden refused).
                let why = run
                    .collect_error
                    .unwrap_or_else(|| format!("the compiler did not produce {}", stage.artifact));
                result
                    .stderr
                    .extend_from_slice(format!("warden: {why}\n").as_bytes());
                result.outcome = Outcome::Exited { code: 1 };
            }
            return Ok(Compiled::Failed(result));
        }
        if let Some(cache) = &self.cache {
            if let Err(e) = cache.put(&key, &run.collected) {
                tracing::warn!(dir = %cache.root().display(), error = %e, "storing a compile artifact");
            }
        }
        let files = run.collected.clone();
        Ok(Compiled::Artifact(files, StageResult::from_run(run)))
    }

    /// Defaults ⊕ each override in order, refused when absurd, clamped to the operator's maxima.
    fn limits(&self, overrides: &[&LimitOverrides]) -> Result<Limits, EngineError> {
        let limits = overrides.iter().fold(Limits::default(), |l, o| l.with(o));
        limits.validate(&LimitBounds::default())?;
        Ok(limits.clamp_to(&self.maxima))
    }

    /// The sandbox plan running `argv` over `program`'s files.
    fn plan(
        &self,
        language: &Language,
        argv: &ArgvTemplate,
        program: &Program,
        args: &[String],
        limits: Limits,
    ) -> SandboxPlan {
        let artifact = language
            .compile
            .as_ref()
            .map(|c| format!("{WORKDIR}/{}", c.artifact))
            .unwrap_or_default();
        let values = CommandValues {
            source: &program.source,
            sources: &program.sources,
            class: &program.class,
            workdir: WORKDIR,
            artifact: &artifact,
            args,
        };
        let mut plan = SandboxPlan::new(
            expand_argv(argv, &values),
            &self.filesystem,
            self.seccomp.clone(),
        );
        for mount in &language.mounts {
            plan.add_bind(mount);
        }
        for (key, value) in &language.env {
            plan.set_env(key, value);
        }
        plan.files = program.files.clone();
        plan.limits = limits;
        plan
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
        language: language.id.to_string(),
        program: program.clone(),
        hint,
    })
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
}
