//! The compile stage: run the language's compiler over the program in the request's mode, or
//! take its artifact from the compile cache.

use std::path::PathBuf;

use warden_core::Outcome;
use warden_sandbox::{CollectedFile, Stdin};

use super::runner::Runner;
use super::{require_installed, Engine, Prepared};
use crate::compile_cache::{toolchain_identity, CacheKey};
use crate::error::EngineError;
use crate::execution::StageResult;

/// The outcome of a compile stage.
pub(super) enum Compiled {
    /// The artifact, and the stage as the result shows it.
    Artifact(Vec<CollectedFile>, StageResult),
    /// The compiler failed; the stage says how.
    Failed(StageResult),
}

impl Engine {
    /// Runs the compile stage of a compiled language, or takes its artifact from the cache.
    pub(super) fn compile_stage(
        &self,
        prepared: &Prepared<'_>,
        runner: &mut Runner,
        caller: Option<&mut dyn warden_sandbox::OutputSink>,
    ) -> Result<Compiled, EngineError> {
        let language = prepared.language;
        let Some(stage) = &language.compile else {
            return Ok(Compiled::Artifact(Vec::new(), StageResult::empty()));
        };
        require_installed(language, &stage.argv)?;
        let mut toolchain = toolchain_identity(&stage.argv[0]).unwrap_or_default();
        if let Some(dir) = &prepared.dependency_dir {
            // The compiler sees the installed set: its directory, named by the set's key, is
            // part of what determines the artifact.
            toolchain.push_str(&format!(" dependencies:{}", dir.display()));
        }
        if prepared.program.compile_entry_only {
            // The same files, another command: another artifact (or none).
            toolchain.push_str(" entry-only");
        }
        let key = CacheKey::new(
            language,
            &prepared.program.compile_options,
            prepared.mode,
            &toolchain,
            &prepared.program.files,
        );
        let cache = self.cache.as_ref().filter(|_| prepared.cacheable);
        if let Some(files) = cache.and_then(|c| c.get(&key)) {
            tracing::debug!(key = key.as_str(), "compile cache hit");
            return Ok(Compiled::Artifact(files, StageResult::cached()));
        }
        let limits = prepared
            .compile_limits
            .expect("a language with a compile stage has compile limits");
        let mut job = prepared.with_dependencies(self.job(
            language,
            &stage.argv,
            &prepared.program,
            &[],
            limits,
        ));
        job.collect = Some(PathBuf::from(&stage.artifact));
        let run = runner.run_signalled(&job, Stdin::Null, caller)?;
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
        if let Some(cache) = cache {
            if let Err(e) = cache.put(&key, &run.collected) {
                tracing::warn!(dir = %cache.root().display(), error = %e, "storing a compile artifact");
            }
        }
        let files = run.collected.clone();
        Ok(Compiled::Artifact(files, StageResult::from_run(run)))
    }
}
