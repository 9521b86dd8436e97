//! What the engine can tell about its host by running something: that the sandbox works
//! (`warden doctor`) and which version of each toolchain is installed (`warden languages`).

use std::time::Duration;

use serde::Serialize;
use warden_core::{Language, Limits, Mode, Outcome};
use warden_sandbox::{SandboxPlan, Stdin};

use super::{require_installed, Engine};
use crate::error::EngineError;
use crate::execution::SourceFile;
use crate::workspace::Program;

/// The result of running `/bin/true` in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SandboxCheck {
    /// How `/bin/true` ended (`exited 0` when the chain works).
    pub outcome: Outcome,
    /// The cgroup version in use (`v1` or `v2`).
    pub cgroup: String,
}

impl Engine {
    /// Runs `/bin/true` in the sandboxed mode: proof that the whole chain (helper, namespaces,
    /// mounts, seccomp, cgroups) works on this host.
    pub fn sandbox_check(&self) -> Result<SandboxCheck, EngineError> {
        let plan = SandboxPlan::new(
            vec!["/bin/true".into()],
            &self.filesystem,
            self.seccomp.clone(),
        );
        let run = self.run_plan(Mode::Sandboxed, &plan, Stdin::Null)?;
        Ok(SandboxCheck {
            outcome: run.outcome,
            cgroup: self.sandbox()?.cgroups().version().to_string(),
        })
    }

    /// Whether `language`'s toolchain (compiler and runtime) is installed on this host; the
    /// error names what is missing and how to install it. Runs nothing.
    pub fn toolchain_installed(&self, language: &Language) -> Result<(), EngineError> {
        if let Some(compile) = &language.compile {
            require_installed(language, &compile.argv)?;
        }
        require_installed(language, &language.run.argv)
    }

    /// The toolchain's version, as its `version` command prints it inside a sandbox (the first
    /// non-empty line of stdout, else of stderr).
    pub fn toolchain_version(&self, language: &Language) -> Result<String, EngineError> {
        require_installed(language, &language.version)?;
        let program = Program::prepare(
            language,
            &[SourceFile {
                name: None,
                code: Vec::new(),
                executable: false,
            }],
        )?;
        // Some runtimes (the JVM, R) start slowly on a busy host.
        let limits = Limits {
            wall_time: Duration::from_secs(20),
            cpu_time: Duration::from_secs(20),
            ..self.limits(&[&language.limits])?
        };
        let plan = self.plan(language, &language.version, &program, &[], limits);
        let run = self.run_plan(Mode::Sandboxed, &plan, Stdin::Null)?;
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
}
