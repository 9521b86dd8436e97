//! The dependency stage (docs/network.md#dependencies): before the compile stage, the
//! language's package manager installs the request's dependencies into the workspace of a
//! fresh native sandbox under `limited_access`, or `[dependencies] policy` (whatever the
//! request's own policy, which applies to the program), from the operator's index when
//! `[dependencies.index]` names one; the set it sends back is stored in the dependency cache,
//! or the set is taken from the cache and nothing is installed. Later sandboxes of the
//! execution bind the set read-only.

use std::path::{Path, PathBuf};

use warden_core::dependencies::{self, DependencyError};
use warden_core::{Language, Mode, Outcome};
use warden_sandbox::{Job, SandboxSpec, Stdin, WORKDIR};

use super::runner::Runner;
use super::NetworkReport;
use super::{require_installed, Engine, Prepared};
use crate::cancel::Cancellation;
use crate::compile_cache::toolchain_identity;
use crate::dependency_cache::{DependencyKey, SetInUse};
use crate::error::EngineError;
use crate::execution::{ExecutionRequest, StageResult};
use crate::test_cases::SandboxReuse;
use crate::workspace::Program;

/// The network policy installations run under unless `[dependencies] policy` names another.
pub(crate) const INSTALL_POLICY: &str = "limited_access";
/// Where the installer writes, relative to the workspace (`{deps}` while installing).
const INSTALL_DIR: &str = ".deps";
/// The directories every sandbox mounts afresh (docs/sandbox-setup.md): a host directory under
/// one of them is hidden inside, so a dependency set there could never be bound.
const SANDBOX_OWN: [&str; 4] = ["/tmp", "/work", "/proc", "/dev"];

/// What the dependency stage did.
pub(super) enum Installed {
    /// The request names no dependencies.
    Nothing,
    /// The set in the cache, held for the execution, and the stage as the result shows it.
    Set(SetInUse, StageResult),
    /// The installer failed; the stage says how.
    Failed(StageResult),
    /// A cancel ended the installer; the stage is what it ran until then (outcome
    /// `cancelled`), to be recorded (`cancelled.rs`).
    Cancelled(StageResult),
}

/// The request's dependencies: those it names and those of its language's manifest file among
/// its sources, checked and normalised. A language without an installer accepts none (a
/// manifest file is then only a file).
pub(super) fn requested(
    language: &Language,
    request: &ExecutionRequest,
    program: &Program,
) -> Result<Vec<String>, EngineError> {
    let mut specs = request.dependencies.clone();
    let Some(installer) = &language.dependencies else {
        if specs.is_empty() {
            return Ok(Vec::new());
        }
        return Err(DependencyError::Unsupported {
            language: language.id.to_string(),
        }
        .into());
    };
    if let Some(manifest) = installer.manifest {
        let file = program
            .files
            .iter()
            .find(|f| f.path == Path::new(manifest.file_name()));
        if let Some(file) = file {
            let text = String::from_utf8_lossy(&file.contents);
            specs.extend(manifest.parse(&text)?);
        }
    }
    let name_colon_version = installer
        .manifest
        .is_some_and(dependencies::Manifest::name_colon_version);
    Ok(dependencies::normalise(&specs, name_colon_version)?)
}

impl Engine {
    /// Installs the prepared dependencies, or takes their set from the cache.
    pub(super) fn dependency_stage(
        &self,
        prepared: &Prepared<'_>,
        cancel: Option<Cancellation>,
        caller: Option<&mut dyn warden_sandbox::OutputSink>,
    ) -> Result<Installed, EngineError> {
        let language = prepared.language;
        let specs = &prepared.dependencies;
        let Some(installer) = language.dependencies.as_ref().filter(|_| !specs.is_empty()) else {
            return Ok(Installed::Nothing);
        };
        let cache = self
            .dependencies
            .as_ref()
            .ok_or(EngineError::NoDependencyCache)?;
        if let Some(hidden) = SANDBOX_OWN
            .into_iter()
            .find(|d| cache.root().starts_with(d))
        {
            return Err(EngineError::DependencyCacheHidden {
                dir: cache.root().to_owned(),
                hidden,
            });
        }
        if let Some(closed) = closed_ancestor(cache.root()) {
            return Err(EngineError::DependencyCacheClosed {
                dir: cache.root().to_owned(),
                closed,
            });
        }
        require_installed(language, &installer.argv)?;
        let index = self
            .install
            .index
            .get(language.id.as_str())
            .map(String::as_str);
        let identity = installer_identity(&installer.argv, &language.run.argv[0], index);
        let key = DependencyKey::new(language, &identity, specs);
        if let Some(dir) = cache.get(&key) {
            tracing::debug!(key = key.as_str(), "dependency cache hit");
            return Ok(Installed::Set(dir, StageResult::cached()));
        }
        let limits = self.limits(&[&language.limits, &installer.limits])?;
        let mut spec = SandboxSpec::new(&self.filesystem, self.seccomp.clone());
        for mount in &language.mounts {
            spec.add_bind(mount);
        }
        spec.limits = limits;
        let policy = self.install.policy.as_str();
        let network = self.network.plan(Some(policy), Mode::Sandboxed)?;
        let mut runner = Runner::new(
            self.sandbox()?,
            Mode::Sandboxed,
            spec,
            SandboxReuse::Fresh,
            cancel,
        )?
        .with_network(network);
        let target = format!("{WORKDIR}/{INSTALL_DIR}");
        let mut job = Job::new(installer.command(&target, specs, index), limits);
        for (key, value) in language.env.iter().chain(&installer.install_env) {
            job.set_env(key, &value.replace("{deps}", &target));
        }
        // Every request of the installer goes through the proxy, an index on an address the
        // proxy's own policy admits (an operator's mirror on this host) included: the installer
        // has nothing of its own to reach on the sandbox's loopback.
        for key in ["NO_PROXY", "no_proxy"] {
            job.set_env(key, "");
        }
        job.collect = Some(PathBuf::from(INSTALL_DIR));
        // The set (up to 512 MiB) goes to disk as it comes, beside where it is stored, not
        // into warden's memory; a directory that is not warden's own is refused at `put`.
        if std::fs::create_dir_all(cache.root()).is_ok() && cache.is_own() {
            job.spool = Some(cache.root().to_owned());
        }
        let run = runner.run_signalled(&job, Stdin::Null, caller);
        let finished = runner.finish();
        let run = match run {
            Err(mut e) if e.kind() == crate::ErrorKind::Cancelled => {
                let Some(ran) = e.take_cancelled_run() else {
                    return Err(EngineError::Cancelled { ran: None });
                };
                let mut stage = StageResult::from_run(ran);
                stage.network = Some(NetworkReport::new(policy, runner.take_traffic()));
                return Ok(Installed::Cancelled(stage));
            }
            run => run?,
        };
        finished?;
        let clean = run.outcome == (Outcome::Exited { code: 0 });
        let mut stage = StageResult::from_run(run.clone());
        stage.network = Some(NetworkReport::new(policy, runner.take_traffic()));
        let installed_nothing =
            run.collected.is_empty() && run.spooled.as_ref().is_none_or(|s| s.is_empty());
        if !clean || installed_nothing {
            if clean {
                // The installer claimed success but left nothing (or what warden refused).
                let why = run
                    .collect_error
                    .unwrap_or_else(|| "the installer installed nothing".to_owned());
                stage
                    .stderr
                    .extend_from_slice(format!("warden: {why}\n").as_bytes());
                stage.outcome = Outcome::Exited { code: 1 };
            }
            return Ok(Installed::Failed(stage));
        }
        // A set that cannot be stored (a full disk, a directory shared with other users) fails
        // the stage, recorded with the installer's run and its traffic, not an error that
        // loses them.
        let stored = match &run.spooled {
            Some(spooled) => cache.put_spooled(&key, Path::new(INSTALL_DIR), spooled),
            None => cache.put(&key, Path::new(INSTALL_DIR), &run.collected),
        };
        let dir = match stored {
            Ok(dir) => dir,
            Err(e) => {
                let e = EngineError::DependencyCache {
                    dir: cache.root().to_owned(),
                    source: e,
                };
                tracing::warn!(error = %crate::error_chain(&e), "an installed set was not stored");
                let why = format!("warden: {}\n", crate::error_chain(&e));
                stage.stderr.extend_from_slice(why.as_bytes());
                stage.outcome = Outcome::Exited { code: 1 };
                return Ok(Installed::Failed(stage));
            }
        };
        Ok(Installed::Set(dir, stage))
    }
}

/// The environment a program using the set in `dir` gets from `language`'s installer.
pub(super) fn environment(language: &Language, dir: &Path) -> Vec<(String, String)> {
    let dir = dir.to_string_lossy();
    language
        .dependencies
        .iter()
        .flat_map(|installer| &installer.env)
        .map(|(key, value)| (key.clone(), value.replace("{deps}", &dir)))
        .collect()
}

/// What a dependency set installed by `installer` for `runtime` from `index` depends on besides
/// its specs: each file the installer's command names (npm's `npm-cli.js` beside node, not
/// only node) and the runtime, by path, size, inode and modification time, so that an upgrade
/// of either changes the key; and the index, since a set installed from another may differ.
fn installer_identity(installer: &[String], runtime: &str, index: Option<&str>) -> String {
    let mut identity = installer
        .iter()
        .filter(|a| a.starts_with('/') && Path::new(a.as_str()).is_file())
        .map(String::as_str)
        .chain([runtime])
        .map(|program| toolchain_identity(program).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(url) = index {
        identity.push_str(" index=");
        identity.push_str(url);
    }
    identity
}

/// The first existing directory from `/` down to `dir` that others may not search: the
/// sandbox's user (an unprivileged uid of its own) could not reach a set below it.
fn closed_ancestor(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .find(|d| {
            std::fs::metadata(d).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o001 == 0)
        })
        .map(Path::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::SourceFile;
    use warden_core::Catalog;

    fn request(deps: &[&str], files: &[(&str, &str)]) -> ExecutionRequest {
        ExecutionRequest {
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
            sources: files
                .iter()
                .map(|(name, code)| SourceFile {
                    name: Some((*name).to_owned()),
                    code: code.as_bytes().to_vec(),
                    executable: false,
                })
                .collect(),
            ..ExecutionRequest::default()
        }
    }

    fn requested_in(
        language: &str,
        request: &ExecutionRequest,
    ) -> Result<Vec<String>, EngineError> {
        let catalog = Catalog::builtin().expect("catalog");
        let language = catalog.get(language).expect("language");
        let program = Program::prepare(language, &request.sources).expect("program");
        requested(language, request, &program)
    }

    /// An upgrade of the installer's script (npm's `npm-cli.js`, run by an unchanged node)
    /// changes the key: the sets the old one installed are not served for the new one.
    #[test]
    fn the_installer_script_and_the_index_are_part_of_the_identity() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = dir.path().join("node");
        let script = dir.path().join("npm-cli.js");
        std::fs::write(&node, "node").expect("node");
        std::fs::write(&script, "npm 9").expect("script");
        let argv: Vec<String> = [node.to_str(), script.to_str(), Some("install")]
            .into_iter()
            .map(|a| a.expect("utf-8").to_owned())
            .collect();
        let runtime = node.to_str().expect("utf-8");
        let before = installer_identity(&argv, runtime, None);
        assert_eq!(before, installer_identity(&argv, runtime, None), "stable");
        assert!(!before.contains("install "), "{before}");
        std::fs::remove_file(&script).expect("remove");
        std::fs::write(&script, "npm 10, upgraded").expect("upgrade");
        let after = installer_identity(&argv, runtime, None);
        assert_ne!(before, after, "the script's upgrade changes the identity");
        assert_ne!(
            after,
            installer_identity(&argv, runtime, Some("http://mirror.test/"))
        );
    }

    #[test]
    fn named_and_manifest_dependencies_are_merged_sorted_and_deduplicated() {
        let r = request(
            &["six==1.16.0"],
            &[
                ("main.py", "import six"),
                ("requirements.txt", "attrs\nsix==1.16.0\n"),
            ],
        );
        assert_eq!(
            requested_in("python", &r).expect("requested"),
            ["attrs", "six==1.16.0"]
        );
        let js = request(
            &[],
            &[
                ("main.js", ""),
                (
                    "package.json",
                    r#"{"dependencies": {"is-number": "7.0.0"}}"#,
                ),
            ],
        );
        assert_eq!(
            requested_in("javascript", &js).expect("requested"),
            ["is-number@7.0.0"]
        );
        let none = request(&[], &[("main.py", "print(1)")]);
        assert!(requested_in("python", &none).expect("requested").is_empty());
    }

    #[test]
    fn a_language_without_an_installer_refuses_dependencies_but_not_a_manifest_file() {
        let named = request(&["six"], &[("main.sh", "echo hi")]);
        let err = requested_in("bash", &named).expect_err("bash installs nothing");
        assert_eq!(err.kind(), crate::ErrorKind::Request);
        let file = request(
            &[],
            &[
                ("main.sh", "cat requirements.txt"),
                ("requirements.txt", "six\n"),
            ],
        );
        assert!(requested_in("bash", &file).expect("only a file").is_empty());
        let bad = request(&["-r", "/etc/passwd"], &[("main.py", "")]);
        assert_eq!(
            requested_in("python", &bad).expect_err("an option").kind(),
            crate::ErrorKind::Request
        );
    }

    #[test]
    fn a_cache_under_a_directory_closed_to_others_is_found() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = dir.path().join("cache/dependencies");
        std::fs::create_dir_all(&cache).expect("dirs");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        assert_eq!(closed_ancestor(&cache), None);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        assert_eq!(closed_ancestor(&cache), Some(dir.path().to_owned()));
    }
}
