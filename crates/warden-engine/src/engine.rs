//! The execution use case: request -> language -> plan -> sandbox -> result.

use std::path::{Path, PathBuf};

use warden_core::detect::{self, DetectError};
use warden_core::language::{expand_argv, CommandValues};
use warden_core::{Catalog, FilesystemPolicy, Language, LimitBounds, Limits, SeccompPolicy};
use warden_sandbox::{Sandbox, SandboxError, SandboxPlan, WorkspaceFile, WORKDIR};

use crate::execution::{ExecutionRequest, ExecutionResult, Mode};
use crate::id::ExecutionId;

/// Operator configuration of the engine.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The binary that acts as the sandbox helper (normally the running warden binary).
    pub helper: PathBuf,
    /// A directory of language files replacing or adding to the embedded ones.
    pub languages_dir: Option<PathBuf>,
    /// The most any request may get.
    pub maxima: Limits,
}

impl EngineConfig {
    /// Defaults for a helper binary.
    pub fn new(helper: PathBuf) -> Self {
        Self {
            helper,
            languages_dir: None,
            maxima: Limits::default_maxima(),
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
    /// A requested limit is absurd.
    #[error(transparent)]
    Limit(#[from] warden_core::LimitError),
    /// The language needs a compile stage.
    #[error("{language} needs a compile stage, which this build does not run yet")]
    CompileUnsupported {
        /// The language id.
        language: String,
    },
    /// The language's runtime is not installed.
    #[error("the {language} runtime {program} is not installed on this host")]
    MissingRuntime {
        /// The language id.
        language: String,
        /// The missing program.
        program: String,
    },
    /// The sandbox failed.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

/// Runs requests.
#[derive(Debug)]
pub struct Engine {
    catalog: Catalog,
    filesystem: FilesystemPolicy,
    seccomp: SeccompPolicy,
    sandbox: Sandbox,
    maxima: Limits,
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
            sandbox: Sandbox::new(config.helper)?,
            maxima: config.maxima,
        })
    }

    /// The language catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs one request to completion.
    pub fn execute(&self, request: ExecutionRequest) -> Result<ExecutionResult, EngineError> {
        let source = request.source.as_ref().ok_or(EngineError::NoSource)?;
        let code = String::from_utf8_lossy(&source.code);
        let (language, _) = detect::resolve(
            &self.catalog,
            request.language.as_deref(),
            source.name.as_deref(),
            &code,
        )?;
        let limits = self.limits_for(language, &request)?;
        let plan = self.plan(language, source.code.clone(), &request.args, limits)?;
        let run = self.sandbox.run(&plan, request.stdin)?;
        Ok(ExecutionResult {
            id: ExecutionId::random(),
            language: language.id.to_string(),
            mode: Mode::Sandboxed,
            outcome: run.outcome,
            stdout: run.stdout,
            stderr: run.stderr,
            stdout_truncated: run.stdout_truncated,
            stderr_truncated: run.stderr_truncated,
            usage: run.usage,
            limits,
        })
    }

    /// Defaults ⊕ language ⊕ request, refused when absurd, clamped to the operator's maxima.
    fn limits_for(
        &self,
        language: &Language,
        request: &ExecutionRequest,
    ) -> Result<Limits, EngineError> {
        let limits = Limits::default()
            .with(&language.limits)
            .with(&request.limits);
        limits.validate(&LimitBounds::default())?;
        Ok(limits.clamp_to(&self.maxima))
    }

    /// The sandbox plan for one program in `language`.
    pub fn plan(
        &self,
        language: &Language,
        code: Vec<u8>,
        args: &[String],
        limits: Limits,
    ) -> Result<SandboxPlan, EngineError> {
        if language.compile.is_some() {
            // TODO(#3): run the compile stage in the sandbox and cache its artifact.
            return Err(EngineError::CompileUnsupported {
                language: language.id.to_string(),
            });
        }
        let program = &language.run.argv[0];
        if !Path::new(program).exists() {
            return Err(EngineError::MissingRuntime {
                language: language.id.to_string(),
                program: program.clone(),
            });
        }
        let source = format!("{WORKDIR}/{}", language.source_file);
        let values = CommandValues {
            source: &source,
            workdir: WORKDIR,
            artifact: "",
            args,
        };
        let argv = expand_argv(&language.run.argv, &values);
        let mut plan = SandboxPlan::new(argv, &self.filesystem, self.seccomp.clone());
        for mount in &language.mounts {
            plan.add_bind(mount);
        }
        for (key, value) in &language.env {
            plan.set_env(key, value);
        }
        plan.files
            .push(WorkspaceFile::new(language.source_file.clone(), code));
        plan.limits = limits;
        Ok(plan)
    }
}
