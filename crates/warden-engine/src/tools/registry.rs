//! The registry's contents: the tools embedded in the binary, the operator's directories, and
//! the tools registered at run time (kept under the state directory, one directory each), with
//! each tool's assessment and status.
//!
//! Loading and registering take the engine's judgement as parameters ([`Judge`]): the
//! assessment needs the analyzer, the availability the network settings and the catalog.

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use warden_core::bounded_file::{self, MAX_PROGRAM_FILE, MAX_SETTINGS_FILE};
use warden_core::tool::{self, Assessment, Category, Runner, Tool, ToolFileError, ToolOrigin};
use warden_core::ByteSize;

use super::{Registrant, ToolsSettings};

/// A program file of a tool: its name beside the tool file and its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramFile {
    /// The file's name.
    pub name: String,
    /// Its contents.
    pub code: Vec<u8>,
}

/// Whether a tool can be called.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ToolStatus {
    /// It can be called.
    Active,
    /// Its category needs an operator's approval first (`warden tool approve`).
    Pending,
    /// This host or configuration cannot run it (a missing command, a policy the
    /// configuration does not allow); it is listed with the reason.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// Where a tool's file came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "path")]
pub enum ToolSource {
    /// Embedded in the binary (`tools/` of the source tree).
    Embedded,
    /// An operator's directory (`[tools] dirs`).
    Operator(PathBuf),
    /// Registered at run time (`warden tool register`, `POST /v1/tools`).
    Registered(PathBuf),
}

/// One tool of the registry.
#[derive(Debug, Clone)]
pub struct RegisteredTool {
    /// The tool file.
    pub tool: Tool,
    /// What it needs and how risky it is.
    pub assessment: Assessment,
    /// Whether it can be called.
    pub status: ToolStatus,
    /// Where its file is.
    pub source: ToolSource,
    /// Its program, for a tool that runs one.
    pub program: Option<ProgramFile>,
    /// The API token that registered it over HTTP (`""` on a server without tokens); `None`
    /// for the built-in, operator and operator-registered tools, which every caller sees.
    pub owner: Option<String>,
    /// The digest of a registered tool's files as loaded (its tool file and program), which
    /// an approval of a client's registration names (`tools/digest.rs`); `None` for the
    /// built-in and operator tools.
    pub digest: Option<String>,
}

/// A tool as the CLI and the HTTP API show it.
#[derive(Debug, Clone, Serialize)]
pub struct ToolView {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Its category: the higher of the declared one and the one its assessment found.
    pub category: Category,
    /// Its risk level.
    pub level: warden_core::ThreatLevel,
    /// Whether it can be called.
    pub status: ToolStatus,
    /// Where its file is.
    pub source: SourceView,
    /// How it runs: `builtin`, `program`, `command`.
    pub runs: &'static str,
    /// The isolation mode it asks for.
    pub mode: warden_core::ModeRequest,
    /// Its network policy.
    pub network: String,
    /// Its input's JSON Schema.
    pub input_schema: serde_json::Value,
    /// What its output is.
    pub output: warden_core::tool::OutputFormat,
    /// An example input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<serde_json::Value>,
    /// The assessment: the needed and declared categories, the level and why.
    pub assessment: Assessment,
    /// Its limits beyond the defaults.
    pub limits: warden_core::LimitOverrides,
    /// Host paths it sees read-only.
    pub read_only: Vec<PathBuf>,
    /// A registered tool's digest, which approving a client's registration names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Where a tool's file came from, as shown: `{"kind": "registered", "path": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceView {
    /// `embedded`, `operator` or `registered`.
    pub kind: &'static str,
    /// The file's directory; absent for an embedded tool, and for an API client
    /// ([`RegisteredTool::client_view`]): the server's directories are the operator's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
}

impl ToolSource {
    /// As shown, with its path.
    fn view(&self) -> SourceView {
        let (kind, path) = match self {
            ToolSource::Embedded => ("embedded", None),
            ToolSource::Operator(path) => ("operator", Some(path.clone())),
            ToolSource::Registered(path) => ("registered", Some(path.clone())),
        };
        SourceView { kind, path }
    }
}

impl RegisteredTool {
    /// The tool as an API client is shown it: without the host's paths of its file.
    pub fn client_view(&self) -> ToolView {
        let mut view = self.view();
        view.source.path = None;
        view
    }

    /// Whether a client authenticated as `token` (`None`: without a token) sees and calls
    /// this tool: a tool a client registered is its token's alone (docs/tools.md#registering),
    /// so that one token's registrations never reach another's `tools/list`, neither its size
    /// nor its text; every other tool is everyone's.
    pub fn visible_to(&self, token: Option<&str>) -> bool {
        self.owner
            .as_deref()
            .is_none_or(|owner| owner == token.unwrap_or_default())
    }

    /// The category calls are counted under: the higher of the declared and the needed one.
    pub fn category(&self) -> Category {
        self.assessment.category.max(self.tool.category)
    }

    /// The tool as shown.
    pub fn view(&self) -> ToolView {
        let tool = &self.tool;
        ToolView {
            name: tool.name.clone(),
            description: tool.description.clone(),
            category: self.category(),
            level: self.assessment.level,
            status: self.status.clone(),
            source: self.source.view(),
            runs: tool.runner.key(),
            mode: tool.mode,
            network: tool.network.clone(),
            input_schema: tool.input.to_json().clone(),
            output: tool.output,
            example: tool.example.clone(),
            assessment: self.assessment.clone(),
            limits: tool.limits,
            read_only: tool.read_only.clone(),
            digest: self.digest.clone(),
        }
    }
}

/// Why a registration (or removal, or approval) is refused.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The tool file is invalid.
    #[error(transparent)]
    File(#[from] ToolFileError),
    /// The assessment refuses it.
    #[error("tool {name:?} is refused: {}", problems.join("; "))]
    Assessment {
        /// The tool.
        name: String,
        /// Why.
        problems: Vec<String>,
    },
    /// Its category may not be registered here.
    #[error(
        "tool {name:?} is in category {category}, which [tools] allowed_categories does not allow"
    )]
    Category {
        /// The tool.
        name: String,
        /// Its category.
        category: Category,
    },
    /// The name is taken.
    #[error("a tool named {0:?} already exists")]
    Exists(String),
    /// The name is a built-in or operator tool's, which no registration takes or replaces.
    #[error("a tool named {0:?} comes from {1}: a registration cannot take its name")]
    Reserved(String, &'static str),
    /// No such tool.
    #[error("no tool named {0:?}")]
    Unknown(String),
    /// The tool is not a registered one (embedded and operator tools are changed by files).
    #[error("tool {0:?} is not a registered tool: it comes from {1}")]
    NotRegistered(String, &'static str),
    /// The program file the tool names is missing.
    #[error("tool {name:?} runs {file:?}, which was not given")]
    MissingProgram {
        /// The tool.
        name: String,
        /// The file.
        file: String,
    },
    /// The tool is not pending.
    #[error("tool {0:?} is not awaiting approval")]
    NotPending(String),
    /// The tool's files are not those of the digest approved: replaced since the review.
    #[error(
        "tool {name:?} changed since it was reviewed (its digest is now {digest}): review it \
         again (warden tool show {name}) before approving"
    )]
    Changed {
        /// The tool.
        name: String,
        /// The digest of its files now.
        digest: String,
    },
    /// A client's registration approved without the digest of what was reviewed.
    #[error(
        "tool {name:?} was registered by API token {owner:?}, which may replace it at any \
         time: approve what you reviewed, with the digest warden tool show {name} prints \
         (warden tool approve {name} --digest DIGEST)"
    )]
    Unreviewed {
        /// The tool.
        name: String,
        /// The token that registered it.
        owner: String,
    },
    /// A client holds as many registered tools as one may. `unloaded` names those of them
    /// that are kept but do not load ([`LoadProblem::tool`]), which hold places all the same.
    #[error(
        "this API token has registered {most} tools, as many as one may (remove one first){}",
        unloaded_note(unloaded)
    )]
    TooMany {
        /// The most one token may hold.
        most: usize,
        /// The token's registrations that do not load.
        unloaded: Vec<String>,
    },
    /// A file is larger than the registry loads: registered, it would be kept and never
    /// loaded (a tool no one could list, call or remove).
    #[error("{file} is {size} bytes, larger than {}, the most the registry loads of it", ByteSize(*most))]
    TooLarge {
        /// The tool file, or the program file by name.
        file: String,
        /// Its size in bytes.
        size: usize,
        /// The bound.
        most: u64,
    },
    /// A client asked to replace or remove a tool that another token (or the operator)
    /// registered.
    #[error("tool {0:?} was registered by another API token or by the operator")]
    NotYours(String),
    /// The program's file name is one the registry keeps beside it.
    #[error("tool {name:?} runs {file:?}, a name the registry keeps for itself ({TOOL_FILE}, {PENDING}, {OWNER})")]
    ReservedFile {
        /// The tool.
        name: String,
        /// The file.
        file: String,
    },
    /// A file was given that the tool does not run.
    #[error("tool {name:?} runs no file named {file:?} (it runs {runs})")]
    UnusedFile {
        /// The tool.
        name: String,
        /// The file given.
        file: String,
        /// What the tool runs instead.
        runs: String,
    },
    /// A tool file (or its program) given by path could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state directory could not be written.
    #[error("{step} {path}")]
    State {
        /// What was being done.
        step: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The end of [`RegistryError::TooMany`]'s message: the token's tools that do not load.
fn unloaded_note(unloaded: &[String]) -> String {
    if unloaded.is_empty() {
        return String::new();
    }
    format!(
        "; of them, {} do not load (shown with why by GET /v1/tools/NAME), and may be removed",
        unloaded.join(", ")
    )
}

impl RegistryError {
    /// Whether the caller, not warden's host, is at fault.
    pub fn is_caller_fault(&self) -> bool {
        !matches!(self, RegistryError::State { .. })
    }
}

/// A tool file that did not load, with why (the others load).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadProblem {
    /// The file.
    pub file: String,
    /// Why it was skipped.
    pub problem: String,
    /// For a registered tool's file, the name it is registered under (its directory's),
    /// which `warden tool rm` and `DELETE /v1/tools/NAME` remove it by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// For a file an API token registered, the token (`""` on a server without tokens).
    #[serde(skip)]
    pub owner: Option<String>,
}

impl LoadProblem {
    /// Whether a client authenticated as `token` registered this file, and so may be told
    /// of it ([`RegisteredTool::visible_to`]).
    pub fn registered_by(&self, token: Option<&str>) -> bool {
        self.owner
            .as_deref()
            .is_some_and(|owner| owner == token.unwrap_or_default())
    }
}

/// The engine's judgement of a tool: its assessment, and whether this host can run it.
pub(crate) trait Judge {
    /// The assessment of `tool` with its program.
    fn assess(&self, tool: &Tool, program: Option<&ProgramFile>) -> Assessment;
    /// Why `tool` cannot run here, if it cannot.
    fn unavailable(&self, tool: &Tool, program: Option<&ProgramFile>) -> Option<String>;
}

/// The loaded registry.
#[derive(Debug)]
pub(crate) struct Registry {
    tools: RwLock<BTreeMap<String, Arc<RegisteredTool>>>,
    settings: ToolsSettings,
    problems: Vec<LoadProblem>,
}

/// The marker file of a registered tool awaiting approval.
const PENDING: &str = "pending";
/// The most tools one API token may have registered at once.
pub(crate) const MAX_PER_CLIENT: usize = 64;

/// The file naming the API token that registered a tool (empty: a server without tokens);
/// absent for the operator's registrations.
const OWNER: &str = "owner";
/// A registered tool's file in its directory.
pub(super) const TOOL_FILE: &str = "tool.toml";

impl Registry {
    /// The embedded tools, then each operator directory (a file there replaces an embedded
    /// tool of the same name), then the registered ones. A file that does not load or whose
    /// assessment refuses it is skipped and reported in [`Registry::problems`].
    pub(crate) fn load(settings: ToolsSettings, judge: &dyn Judge) -> Self {
        let mut registry = Self {
            tools: RwLock::new(BTreeMap::new()),
            settings,
            problems: Vec::new(),
        };
        for (file, text) in tool::embedded_files() {
            let program =
                |name: &str| tool::embedded_source(name).map(|code| code.as_bytes().to_vec());
            registry.add_file(
                file,
                text,
                ToolOrigin::Embedded,
                ToolSource::Embedded,
                &program,
                false,
                judge,
            );
        }
        for dir in registry.settings.dirs.clone() {
            for path in toml_files(&dir) {
                let Ok(text) = bounded_file::read_to_string(&path, MAX_SETTINGS_FILE) else {
                    registry.problem(&path.display().to_string(), "cannot be read".into());
                    continue;
                };
                let beside =
                    |name: &str| bounded_file::read(&dir.join(name), MAX_PROGRAM_FILE).ok();
                let source = ToolSource::Operator(path.clone());
                registry.add_file(
                    &path.display().to_string(),
                    &text,
                    ToolOrigin::Operator,
                    source,
                    &beside,
                    false,
                    judge,
                );
            }
        }
        let registered = registry.settings.state_dir.join("registered");
        sweep_building(&registered);
        for dir in registered_dirs(&registered) {
            let path = dir.join(TOOL_FILE);
            let text = match bounded_file::read_to_string(&path, MAX_SETTINGS_FILE) {
                Ok(text) => text,
                // Kept, and holding its token's place: said, so that it can be found and
                // removed (a registration over 4 MiB, before they were refused, was neither).
                Err(e) => {
                    registry.problem(&path.display().to_string(), format!("cannot be read: {e}"));
                    registry.set_registration(&dir);
                    continue;
                }
            };
            let beside = |name: &str| bounded_file::read(&dir.join(name), MAX_PROGRAM_FILE).ok();
            let pending = dir.join(PENDING).exists();
            let source = ToolSource::Registered(dir.clone());
            registry.add_file(
                &path.display().to_string(),
                &text,
                ToolOrigin::Registered,
                source,
                &beside,
                pending,
                judge,
            );
            registry.set_owner(&dir);
            registry.set_registration(&dir);
        }
        registry
    }

    /// Marks the last problem recorded as the registered tool kept in `dir`'s, if it is that
    /// file's: named by its directory, with its [`OWNER`].
    fn set_registration(&mut self, dir: &Path) {
        let file = dir.join(TOOL_FILE).display().to_string();
        let Some(problem) = self.problems.last_mut().filter(|p| p.file == file) else {
            return;
        };
        problem.tool = Some(
            dir.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned(),
        );
        problem.owner = std::fs::read(dir.join(OWNER))
            .ok()
            .map(|owner| String::from_utf8_lossy(&owner).into_owned());
    }

    #[allow(clippy::too_many_arguments)]
    fn add_file(
        &mut self,
        file: &str,
        text: &str,
        origin: ToolOrigin,
        source: ToolSource,
        program: &dyn Fn(&str) -> Option<Vec<u8>>,
        pending: bool,
        judge: &dyn Judge,
    ) {
        let registered = matches!(source, ToolSource::Registered(_));
        let built = Tool::parse(text, origin)
            .map_err(|e| e.to_string())
            .and_then(|tool| {
                let program = program_of(&tool, program).map_err(|e| e.to_string())?;
                let mut entry = self
                    .admit(tool, program, source, pending, judge)
                    .map_err(|e| e.to_string())?;
                if registered {
                    entry.digest = Some(super::digest::of(text.as_bytes(), entry.program.as_ref()));
                }
                Ok(entry)
            });
        match built {
            Ok(entry) => {
                let mut tools = self.tools.write().unwrap_or_else(|p| p.into_inner());
                if matches!(entry.source, ToolSource::Registered(_))
                    && tools.contains_key(&entry.tool.name)
                {
                    drop(tools);
                    self.problem(
                        file,
                        format!("a tool named {:?} already exists", entry.tool.name),
                    );
                    return;
                }
                tools.insert(entry.tool.name.clone(), Arc::new(entry));
            }
            Err(problem) => self.problem(file, problem),
        }
    }

    /// Records who registered the tool kept in `dir`, from its [`OWNER`] file (none: the
    /// operator).
    fn set_owner(&mut self, dir: &Path) {
        let Ok(owner) = std::fs::read(dir.join(OWNER)) else {
            return;
        };
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let mut tools = self.tools.write().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = tools.get_mut(name.as_ref()) {
            if matches!(&entry.source, ToolSource::Registered(at) if at == dir) {
                Arc::make_mut(entry).owner = Some(String::from_utf8_lossy(&owner).into_owned());
            }
        }
    }

    fn problem(&mut self, file: &str, problem: String) {
        tracing::warn!(file, %problem, "tool file skipped");
        self.problems.push(LoadProblem {
            file: file.to_owned(),
            problem,
            tool: None,
            owner: None,
        });
    }

    /// Assesses `tool` and decides its status.
    fn admit(
        &self,
        tool: Tool,
        program: Option<ProgramFile>,
        source: ToolSource,
        pending: bool,
        judge: &dyn Judge,
    ) -> Result<RegisteredTool, RegistryError> {
        let assessment = judge.assess(&tool, program.as_ref());
        if !assessment.problems.is_empty() {
            return Err(RegistryError::Assessment {
                name: tool.name.clone(),
                problems: assessment.problems.clone(),
            });
        }
        if !self
            .settings
            .allows(assessment.declared.max(assessment.category))
        {
            return Err(RegistryError::Category {
                name: tool.name.clone(),
                category: assessment.declared.max(assessment.category),
            });
        }
        let status = match judge.unavailable(&tool, program.as_ref()) {
            Some(reason) => ToolStatus::Unavailable { reason },
            None if pending => ToolStatus::Pending,
            None => ToolStatus::Active,
        };
        Ok(RegisteredTool {
            tool,
            assessment,
            status,
            source,
            program,
            owner: None,
            digest: None,
        })
    }

    /// Every tool, by name, the disabled ones left out.
    pub(crate) fn list(&self) -> Vec<Arc<RegisteredTool>> {
        let tools = self.tools.read().unwrap_or_else(|p| p.into_inner());
        tools
            .values()
            .filter(|t| !self.settings.disabled.contains(&t.tool.name))
            .cloned()
            .collect()
    }

    /// One tool by name.
    pub(crate) fn get(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        if self.settings.disabled.iter().any(|d| d == name) {
            return None;
        }
        let tools = self.tools.read().unwrap_or_else(|p| p.into_inner());
        tools.get(name).cloned()
    }

    /// The files that did not load.
    pub(crate) fn problems(&self) -> &[LoadProblem] {
        &self.problems
    }

    /// Registers a tool file with its program files: parsed, assessed, refused when its
    /// category is not allowed, pending when the category needs approval from `by`, then kept
    /// in the state directory. `replace` lets it replace a registered tool of the same name
    /// that `by` may change ([`Registry::remove`]).
    pub(crate) fn register(
        &self,
        text: &str,
        files: &[ProgramFile],
        replace: bool,
        by: Registrant,
        judge: &dyn Judge,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        // What the loader would skip is refused here: kept, it would be a tool no one lists,
        // calls or removes, holding a place among its token's (hunt srv 2).
        if text.len() as u64 > MAX_SETTINGS_FILE {
            return Err(RegistryError::TooLarge {
                file: "the tool file".to_owned(),
                size: text.len(),
                most: MAX_SETTINGS_FILE,
            });
        }
        let tool = Tool::parse(text, ToolOrigin::Registered)?;
        let name = tool.name.clone();
        let program = program_of(&tool, &|file| {
            files
                .iter()
                .find(|f| f.name == file)
                .map(|f| f.code.clone())
        })?;
        if let Some(program) = program
            .as_ref()
            .filter(|p| p.code.len() as u64 > MAX_PROGRAM_FILE)
        {
            return Err(RegistryError::TooLarge {
                file: format!("program file {:?}", program.name),
                size: program.code.len(),
                most: MAX_PROGRAM_FILE,
            });
        }
        if let Some(program) = program
            .as_ref()
            .filter(|p| [TOOL_FILE, PENDING, OWNER].contains(&p.name.as_str()))
        {
            return Err(RegistryError::ReservedFile {
                name,
                file: program.name.clone(),
            });
        }
        if let Some(unused) = files
            .iter()
            .find(|f| program.as_ref().is_none_or(|p| p.name != f.name))
        {
            return Err(RegistryError::UnusedFile {
                name,
                file: unused.name.clone(),
                runs: match &tool.runner {
                    Runner::Program { file, .. } => format!("{file:?} only"),
                    _ => "no program file".to_owned(),
                },
            });
        }
        let pending = self.settings.needs_approval(
            judge
                .assess(&tool, program.as_ref())
                .category
                .max(tool.category),
            by,
        );
        let dir = self.settings.state_dir.join("registered").join(&name);
        let mut entry = self.admit(
            tool,
            program,
            ToolSource::Registered(dir.clone()),
            pending,
            judge,
        )?;
        if let Registrant::Client(token) = by {
            entry.owner = Some(token.unwrap_or_default().to_owned());
        }
        entry.digest = Some(super::digest::of(text.as_bytes(), entry.program.as_ref()));
        let mut tools = self.tools.write().unwrap_or_else(|p| p.into_inner());
        // Registrations of every registry and process (a server loads a new one at each
        // change, the CLI has its own) are decided one at a time, from the state directory:
        // two of one name at once would replace each other, and a token's count would be
        // read by each before the other's was stored.
        let registered = self.settings.state_dir.join("registered");
        let _one = lock_registrations(&registered)?;
        match tools.get(&name).map(|t| &t.source) {
            Some(ToolSource::Registered(dir)) if replace => may_change(dir, &name, by)?,
            // `replace` replaces registered tools only: a built-in or operator tool is changed
            // by its file.
            Some(ToolSource::Embedded) if replace => {
                return Err(RegistryError::NotRegistered(name, "the binary"))
            }
            Some(ToolSource::Operator(_)) if replace => {
                return Err(RegistryError::NotRegistered(
                    name,
                    "an operator's directory",
                ))
            }
            Some(ToolSource::Embedded) => return Err(RegistryError::Reserved(name, "the binary")),
            Some(ToolSource::Operator(_)) => {
                return Err(RegistryError::Reserved(name, "an operator's directory"))
            }
            Some(ToolSource::Registered(_)) => return Err(RegistryError::Exists(name)),
            // Registered meanwhile by another registry or process.
            None if dir.exists() && replace => may_change(&dir, &name, by)?,
            None if dir.exists() => return Err(RegistryError::Exists(name)),
            None => {
                // A token's registrations are its own `tools/list`'s, and its names are taken
                // from every caller: bounded.
                if let Registrant::Client(_) = by {
                    let held = registered_dirs(&registered)
                        .iter()
                        .filter(|dir| may_change(dir, "", by).is_ok())
                        .count();
                    if held >= MAX_PER_CLIENT {
                        let token = match by {
                            Registrant::Client(token) => token,
                            Registrant::Operator => None,
                        };
                        return Err(RegistryError::TooMany {
                            most: MAX_PER_CLIENT,
                            unloaded: self.unloaded(token),
                        });
                    }
                }
            }
        }
        store(&dir, text, entry.program.as_ref(), pending, by)?;
        let entry = Arc::new(entry);
        tools.insert(name, entry.clone());
        Ok(entry)
    }

    /// Removes a registered tool: any, for the operator; a client, only one its token
    /// registered.
    ///
    /// A registered tool that did not load ([`LoadProblem::tool`]) is removed the same way: it
    /// is kept, and holds its token's place, all the same.
    pub(crate) fn remove(&self, name: &str, by: Registrant) -> Result<(), RegistryError> {
        let mut tools = self.tools.write().unwrap_or_else(|p| p.into_inner());
        let dir = match registered_dir(tools.get(name), name) {
            Err(RegistryError::Unknown(_)) => self
                .unloaded_dir(name)
                .ok_or_else(|| RegistryError::Unknown(name.to_owned()))?,
            found => found?,
        };
        may_change(&dir, name, by)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RegistryError::Unknown(name.to_owned()))
            }
            removed => removed.map_err(|source| RegistryError::State {
                step: "removing",
                path: dir.clone(),
                source,
            })?,
        }
        tools.remove(name);
        Ok(())
    }

    /// The directory of the registered tool `name` if it did not load (and is still there:
    /// the problems are the load's).
    fn unloaded_dir(&self, name: &str) -> Option<PathBuf> {
        let dir = self.settings.state_dir.join("registered").join(name);
        (self
            .problems
            .iter()
            .any(|p| p.tool.as_deref() == Some(name))
            && dir.is_dir())
        .then_some(dir)
    }

    /// The names of the tools `token` registered that did not load.
    fn unloaded(&self, token: Option<&str>) -> Vec<String> {
        self.problems
            .iter()
            .filter(|p| p.registered_by(token))
            .filter_map(|p| p.tool.clone())
            .collect()
    }

    /// Approves a pending registered tool: a client's only by the digest of what the operator
    /// reviewed (`reviewed`, which `warden tool show` prints), checked against its files under
    /// the registrations' lock, so that a replacement made since is not approved.
    pub(crate) fn approve(
        &self,
        name: &str,
        reviewed: Option<&str>,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        let mut tools = self.tools.write().unwrap_or_else(|p| p.into_inner());
        let entry = tools
            .get(name)
            .cloned()
            .ok_or_else(|| RegistryError::Unknown(name.to_owned()))?;
        if entry.status != ToolStatus::Pending {
            return Err(RegistryError::NotPending(name.to_owned()));
        }
        let dir = registered_dir(Some(&entry), name)?;
        // No registration, replacement or removal between the check and the approval.
        let _one = lock_registrations(&self.settings.state_dir.join("registered"))?;
        let digest = super::digest::of_dir(&dir)?;
        match (reviewed, std::fs::read(dir.join(OWNER))) {
            (Some(reviewed), _) if reviewed != digest => {
                return Err(RegistryError::Changed {
                    name: name.to_owned(),
                    digest,
                })
            }
            (None, Ok(owner)) => {
                return Err(RegistryError::Unreviewed {
                    name: name.to_owned(),
                    owner: String::from_utf8_lossy(&owner).into_owned(),
                })
            }
            _ => {}
        }
        let marker = dir.join(PENDING);
        std::fs::remove_file(&marker).map_err(|source| RegistryError::State {
            step: "approving",
            path: marker,
            source,
        })?;
        // The approval changes a tool's own directory only: say it in `registered/` too, whose
        // modification time tells another process's registry to load again (`stamp`).
        if let Some(parent) = dir.parent() {
            let changed = parent.join(".approved");
            let _ = write_private(&parent.join(".approved.new"), name.as_bytes())
                .and_then(|()| std::fs::rename(parent.join(".approved.new"), &changed));
        }
        let approved = Arc::new(RegisteredTool {
            status: ToolStatus::Active,
            ..(*entry).clone()
        });
        tools.insert(name.to_owned(), approved.clone());
        Ok(approved)
    }
}

/// What tells whether the registered tools changed since a registry was loaded (by this
/// process or another: `warden tool register` beside a running server): the modification
/// time of the registered tools' directory, which every registration, removal and approval
/// changes. `None` when there is none yet.
pub(crate) fn stamp(settings: &ToolsSettings) -> Option<std::time::SystemTime> {
    std::fs::metadata(settings.state_dir.join("registered"))
        .and_then(|m| m.modified())
        .ok()
}

/// Whether `by` may replace or remove the registered tool kept in `dir`: the operator may,
/// a client only when its token registered it (the [`OWNER`] file names the token).
fn may_change(dir: &Path, name: &str, by: Registrant) -> Result<(), RegistryError> {
    let Registrant::Client(token) = by else {
        return Ok(());
    };
    match std::fs::read(dir.join(OWNER)) {
        Ok(owner) if owner == token.unwrap_or_default().as_bytes() => Ok(()),
        _ => Err(RegistryError::NotYours(name.to_owned())),
    }
}

/// Creates `dir` and its missing parents with mode 0700: the registered tools are the
/// tokens' programs, and the history's directory above them (the default state directory is
/// `tools/` beside the database) holds submitted code (docs/history.md). `create_dir_all`
/// made them 0755 when `warden tool register` came before any run.
fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Writes a new file of a registered tool, readable by its owner only (mode 0600).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?
        .write_all(contents)
}

/// Holds the registrations' lock (an `flock` on `registered/.lock`) until dropped.
fn lock_registrations(
    registered: &Path,
) -> Result<nix::fcntl::Flock<std::fs::File>, RegistryError> {
    let state = |step, path: &Path| {
        let path = path.to_owned();
        move |source| RegistryError::State { step, path, source }
    };
    create_private_dir_all(registered).map_err(state("creating", registered))?;
    let path = registered.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(state("opening", &path))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| state("locking", &path)(errno.into()))
}

/// The directory of a registered tool, or why `entry` is not one.
fn registered_dir(
    entry: Option<&Arc<RegisteredTool>>,
    name: &str,
) -> Result<PathBuf, RegistryError> {
    match entry.map(|e| &e.source) {
        None => Err(RegistryError::Unknown(name.to_owned())),
        Some(ToolSource::Registered(dir)) => Ok(dir.clone()),
        Some(ToolSource::Embedded) => {
            Err(RegistryError::NotRegistered(name.to_owned(), "the binary"))
        }
        Some(ToolSource::Operator(_)) => Err(RegistryError::NotRegistered(
            name.to_owned(),
            "an operator's directory",
        )),
    }
}

/// The program a tool runs, read through `read`; `None` for a tool that runs none.
fn program_of(
    tool: &Tool,
    read: &dyn Fn(&str) -> Option<Vec<u8>>,
) -> Result<Option<ProgramFile>, RegistryError> {
    let Runner::Program { file, .. } = &tool.runner else {
        return Ok(None);
    };
    let code = read(file).ok_or_else(|| RegistryError::MissingProgram {
        name: tool.name.clone(),
        file: file.clone(),
    })?;
    Ok(Some(ProgramFile {
        name: file.clone(),
        code,
    }))
}

/// Writes a registered tool's directory: built beside its place, then renamed into it, so
/// that a crash leaves either the old tool or the new one.
fn store(
    dir: &Path,
    text: &str,
    program: Option<&ProgramFile>,
    pending: bool,
    by: Registrant,
) -> Result<(), RegistryError> {
    let state = |step, path: &Path| {
        let path = path.to_owned();
        move |source| RegistryError::State { step, path, source }
    };
    let parent = dir.parent().unwrap_or(dir);
    create_private_dir_all(parent).map_err(state("creating", parent))?;
    let building = parent.join(format!(
        ".building-{}",
        dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    let _ = std::fs::remove_dir_all(&building);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&building)
        .map_err(state("creating", &building))?;
    let _unfinished = Building(building.clone());
    write_private(&building.join(TOOL_FILE), text.as_bytes())
        .map_err(state("writing", &building))?;
    if let Some(program) = program {
        write_private(&building.join(&program.name), &program.code)
            .map_err(state("writing", &building))?;
    }
    if pending {
        write_private(&building.join(PENDING), b"").map_err(state("writing", &building))?;
    }
    if let Registrant::Client(token) = by {
        write_private(&building.join(OWNER), token.unwrap_or_default().as_bytes())
            .map_err(state("writing", &building))?;
    }
    // The new directory takes the old one's place in one step (`RENAME_EXCHANGE`), and the
    // old one, now at `building`, is removed after: removed first, a crash between the two
    // steps lost both, and a server loading the registry meanwhile saw no such tool.
    match nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        &building,
        nix::fcntl::AT_FDCWD,
        dir,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    ) {
        Ok(()) => {
            std::fs::remove_dir_all(&building).map_err(state("removing the replaced", &building))
        }
        Err(nix::errno::Errno::ENOENT) => {
            std::fs::rename(&building, dir).map_err(state("storing", dir))
        }
        Err(e) => Err(state("replacing", dir)(e.into())),
    }
}

/// A registered tool's directory being written beside its place ([`store`]): removed when
/// dropped, so that a registration that fails at any step (a file the file system refuses,
/// a full disk) leaves nothing behind. Each left one for ever, with up to `max_body` of tool
/// file in it, and a new name left another (hunt srv 3). Once renamed into its place there is
/// nothing left to remove.
struct Building(PathBuf);

impl Drop for Building {
    fn drop(&mut self) {
        match std::fs::remove_dir_all(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %self.0.display(), error = %e, "a registration's unfinished directory was not removed");
            }
            _ => {}
        }
    }
}

/// Removes what registrations left in `registered` that ended before [`Building`] could
/// (a crash, a warden before it): `.building-NAME` directories. Under the registrations'
/// lock, and only when it is free at once: a registration under way holds it while it builds
/// its own, and a load never waits for one (the next load sweeps).
fn sweep_building(registered: &Path) {
    let Ok(entries) = std::fs::read_dir(registered) else {
        return;
    };
    let left: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".building-"))
        .map(|e| e.path())
        .collect();
    if left.is_empty() {
        return;
    }
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(registered.join(".lock"))
    else {
        return;
    };
    let Ok(_one) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return;
    };
    for dir in left {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(path = %dir.display(), "removed what a registration left"),
            Err(e) => {
                tracing::warn!(path = %dir.display(), error = %e, "what a registration left was not removed");
            }
        }
    }
}

/// The `*.toml` files of a directory, sorted; none when it does not exist.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file());
    files.sort();
    files
}

/// The directories of registered tools, sorted.
fn registered_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.retain(|p| {
        p.is_dir()
            && !p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    dirs.sort();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Judges every tool by its file alone, and available.
    struct FileJudge;

    impl Judge for FileJudge {
        fn assess(&self, tool: &Tool, _: Option<&ProgramFile>) -> Assessment {
            tool::assess(tool, None)
        }

        fn unavailable(&self, _: &Tool, _: Option<&ProgramFile>) -> Option<String> {
            None
        }
    }

    /// Bug hunt: each registry counted a token's tools in its own memory, and a server loads a
    /// new one at every change (the CLI has its own): registrations at once through two of them
    /// kept more than the bound. They are decided one at a time from the state directory now.
    #[test]
    fn registrations_through_two_registries_at_once_keep_the_bound() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = ToolsSettings::new(dir.path().to_owned());
        let registries = [
            Registry::load(settings.clone(), &FileJudge),
            Registry::load(settings, &FileJudge),
        ];
        let kept = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for (n, registry) in registries.iter().enumerate() {
                let kept = &kept;
                s.spawn(move || {
                    for i in 0..MAX_PER_CLIENT {
                        let text = format!(
                            "name = \"r{n}_{i}\"\ndescription = \"d\"\ncategory = \"host\"\n\
                             [input]\ntype = \"object\"\n[run]\ncommand = [\"/bin/true\"]\n"
                        );
                        let by = Registrant::Client(Some("a"));
                        if registry.register(&text, &[], false, by, &FileJudge).is_ok() {
                            kept.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        assert_eq!(kept.into_inner(), MAX_PER_CLIENT);
        assert_eq!(
            registered_dirs(&dir.path().join("registered")).len(),
            MAX_PER_CLIENT
        );
    }

    /// A replacement removed the old tool's directory before renaming the new one into its
    /// place: a server loading the registry between the two steps found no such tool (a call
    /// of it at that moment answered that it does not exist), and a crash there lost both.
    #[test]
    fn a_replaced_tool_is_never_missing_from_its_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let place = dir.path().join("registered").join("t");
        let text = |n: u32| format!("name = \"t\"\ndescription = \"{n}\"\n");
        store(&place, &text(0), None, false, Registrant::Operator).expect("stored");
        let done = std::sync::atomic::AtomicBool::new(false);
        let missing = std::thread::scope(|s| {
            let watcher = s.spawn(|| {
                let mut missing = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    if std::fs::metadata(place.join(TOOL_FILE)).is_err() {
                        missing += 1;
                    }
                }
                missing
            });
            for n in 1..=300 {
                let program = ProgramFile {
                    name: "main.py".into(),
                    code: vec![b'#'; 4096],
                };
                store(
                    &place,
                    &text(n),
                    Some(&program),
                    false,
                    Registrant::Operator,
                )
                .expect("replaced");
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            watcher.join().expect("watcher")
        });
        assert_eq!(missing, 0, "the tool was missing {missing} times");
        assert_eq!(
            std::fs::read_to_string(place.join(TOOL_FILE)).expect("the last one"),
            text(300)
        );
        let left: Vec<_> = std::fs::read_dir(dir.path().join("registered"))
            .expect("registered")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["t"], "left beside it: {left:?}");
    }

    /// A tool file of `name` that runs `p.py`.
    fn program_tool(name: &str) -> String {
        format!(
            "name = \"{name}\"\ndescription = \"d\"\ncategory = \"compute\"\n\
             [input]\ntype = \"object\"\n[run]\nprogram = \"p.py\"\n"
        )
    }

    fn program(code: Vec<u8>) -> ProgramFile {
        ProgramFile {
            name: "p.py".into(),
            code,
        }
    }

    /// Regression (hunt srv 2): a tool file over the 4 MiB the loader reads was registered
    /// over HTTP and kept, then skipped at every load without a word: a tool no one could
    /// list, call or remove, holding one of its token's 64 places. It is refused now, and one
    /// kept before is a problem naming it, which its token may remove.
    #[test]
    fn what_the_loader_skips_is_refused_and_a_kept_one_is_named_and_removable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = ToolsSettings::new(dir.path().to_owned());
        let registry = Registry::load(settings.clone(), &FileJudge);
        let alice = Registrant::Client(Some("alice"));
        let padded = format!(
            "#{}\n{}",
            "p".repeat(MAX_SETTINGS_FILE as usize),
            program_tool("ghost")
        );
        let small = [program(b"print(1)".to_vec())];
        let err = registry
            .register(&padded, &small, false, alice, &FileJudge)
            .expect_err("larger than the loader reads");
        assert!(matches!(err, RegistryError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("than 4MiB"), "{err}");
        assert!(err.is_caller_fault());
        let big = [program(vec![b'#'; MAX_PROGRAM_FILE as usize + 1])];
        let err = registry
            .register(&program_tool("big"), &big, false, alice, &FileJudge)
            .expect_err("a program larger than the loader reads");
        assert!(err.to_string().contains("\"p.py\""), "{err}");
        assert!(err.to_string().contains("than 16MiB"), "{err}");
        assert!(registered_dirs(&dir.path().join("registered")).is_empty());

        // One an earlier warden kept: named among the problems, to its token only.
        let place = dir.path().join("registered").join("ghost");
        store(&place, &padded, Some(&small[0]), false, alice).expect("stored");
        let registry = Registry::load(settings, &FileJudge);
        assert!(registry.get("ghost").is_none());
        let problem = registry
            .problems()
            .iter()
            .find(|p| p.tool.as_deref() == Some("ghost"))
            .expect("a problem naming it");
        assert!(problem.problem.contains("than 4MiB"), "{problem:?}");
        assert!(problem.registered_by(Some("alice")));
        assert!(!problem.registered_by(Some("bob")));
        // It holds a place, and the refusal past the bound says so.
        for i in 1..MAX_PER_CLIENT {
            let text = program_tool(&format!("t{i}"));
            registry
                .register(&text, &small, false, alice, &FileJudge)
                .expect("below the bound");
        }
        let err = registry
            .register(&program_tool("one_more"), &small, false, alice, &FileJudge)
            .expect_err("at the bound");
        assert!(
            matches!(&err, RegistryError::TooMany { unloaded, .. } if unloaded == &["ghost"]),
            "{err}"
        );
        let bob = Registrant::Client(Some("bob"));
        let err = registry.remove("ghost", bob).expect_err("not bob's");
        assert!(matches!(err, RegistryError::NotYours(_)), "{err}");
        registry.remove("ghost", alice).expect("removed");
        assert!(!place.exists());
        let err = registry.remove("ghost", alice).expect_err("gone");
        assert!(matches!(err, RegistryError::Unknown(_)), "{err}");
    }

    /// Regression (hunt srv 3): a registration that failed while its directory was written
    /// (a program name the file system refuses, a full disk) left `.building-NAME` behind for
    /// ever, with up to `max_body` of tool file in it, and a new name left another. A failure
    /// removes it now, and a load removes those an earlier warden (or a crash) left.
    #[test]
    fn a_failed_registration_leaves_no_building_directory_and_a_load_sweeps_old_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registered = dir.path().join("registered");
        let refused = ProgramFile {
            name: "a".repeat(256),
            code: b"print(1)".to_vec(),
        };
        let err = store(
            &registered.join("t"),
            "name = \"t\"\n",
            Some(&refused),
            false,
            Registrant::Operator,
        )
        .expect_err("a name the file system refuses");
        assert!(!err.is_caller_fault(), "{err}");
        let left: Vec<_> = std::fs::read_dir(&registered)
            .expect("registered")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        let old = registered.join(".building-old");
        std::fs::create_dir(&old).expect("mkdir");
        std::fs::write(old.join(TOOL_FILE), "name = \"old\"\n").expect("write");
        Registry::load(ToolsSettings::new(dir.path().to_owned()), &FileJudge);
        assert!(!old.exists(), "swept at the load");
    }

    /// Regression (hunt mcp 3): an approval named the tool only, and a client replaced its
    /// pending tool between the operator's review and the approval, whose host paths the
    /// replacement then got. A client's registration is approved by the digest reviewed.
    #[test]
    fn a_clients_tool_is_approved_only_as_it_was_reviewed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::load(ToolsSettings::new(dir.path().to_owned()), &FileJudge);
        let host_tool = |program: &str| {
            format!(
                "name = \"swap\"\ndescription = \"d\"\ncategory = \"host\"\n\
                 [input]\ntype = \"object\"\n[run]\ncommand = [\"{program}\"]\n"
            )
        };
        let alice = Registrant::Client(Some("alice"));
        let reviewed = registry
            .register(&host_tool("/bin/true"), &[], false, alice, &FileJudge)
            .expect("registered");
        assert_eq!(reviewed.status, ToolStatus::Pending);
        let reviewed = reviewed.digest.clone().expect("a registered tool's digest");
        let err = registry.approve("swap", None).expect_err("no digest");
        assert!(matches!(err, RegistryError::Unreviewed { .. }), "{err}");
        // Replaced after the review: pending again, and not approved by the old digest.
        let swapped = registry
            .register(&host_tool("/bin/cat"), &[], true, alice, &FileJudge)
            .expect("replaced");
        let err = registry
            .approve("swap", Some(&reviewed))
            .expect_err("changed");
        assert!(matches!(err, RegistryError::Changed { .. }), "{err}");
        let now = swapped.digest.clone().expect("digest");
        assert_ne!(now, reviewed);
        let approved = registry.approve("swap", Some(&now)).expect("approved");
        assert_eq!(approved.status, ToolStatus::Active);
        // The operator's own registrations are approved by name, as before.
        let mut settings = ToolsSettings::new(dir.path().to_owned());
        settings.approval = vec![Category::Host];
        let registry = Registry::load(settings, &FileJudge);
        let operator = host_tool("/bin/true").replace("swap", "mine");
        registry
            .register(&operator, &[], false, Registrant::Operator, &FileJudge)
            .expect("registered");
        let approved = registry.approve("mine", None).expect("approved by name");
        assert_eq!(approved.status, ToolStatus::Active);
    }
}
