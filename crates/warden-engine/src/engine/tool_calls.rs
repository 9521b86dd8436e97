//! The tool registry's use cases (docs/tools.md): list, register, approve and remove tools, and
//! call one: check the input against its schema, run it as an execution (or, for `files`, as
//! an operation on the caller's workspace), render the reply, and record the call.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::{json, Value};
use warden_core::bounded_file;
use warden_core::tool::{
    self, Assessment, Builtin, Implies, OutputFormat, ProgramAnalysis, Runner, Tool,
};
use warden_core::{Finding, LimitOverrides, Limits, Mode, ModeRequest, Outcome, OutcomeKind};
use warden_sandbox::Stdin;

use super::Engine;
use crate::error::EngineError;
use crate::execution::{ExecutionRequest, ExecutionResult, SourceFile};
use crate::history::{ToolCallRecord, ToolCallStatus, ToolStats};
use crate::tools::{
    CallCheck, CallRefusal, Judge, LoadProblem, ProgramFile, RefusalReason, RegisteredTool,
    Registrant, Registry, RegistryError, ToolCallError, ToolCallRequest, ToolReply, ToolStatus,
    ToolsSettings, Workspaces,
};

/// The interface of the host's operator (`warden tool call`), whose calls reach every tool.
const OPERATOR_API: &str = "cli";

impl Engine {
    /// Every tool of the registry, by name.
    pub fn tools(&self) -> Vec<Arc<RegisteredTool>> {
        self.registry().list()
    }

    /// The tools a client authenticated as `token` sees ([`RegisteredTool::visible_to`]):
    /// every tool but those other tokens registered.
    pub fn tools_for(&self, token: Option<&str>) -> Vec<Arc<RegisteredTool>> {
        let mut tools = self.registry().list();
        tools.retain(|t| t.visible_to(token));
        tools
    }

    /// One tool by name.
    pub fn tool(&self, name: &str) -> Option<Arc<RegisteredTool>> {
        self.registry().get(name)
    }

    /// The tool files that did not load, with why.
    pub fn tool_load_problems(&self) -> Vec<LoadProblem> {
        self.registry().problems().to_vec()
    }

    /// Registers a tool file and its program files (docs/tools.md#registering), for `by`: its
    /// program analysed afresh, in place of an analysis kept from before.
    pub fn register_tool(
        &self,
        text: &str,
        files: &[ProgramFile],
        replace: bool,
        by: Registrant,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        self.fresh_registry()
            .register(text, files, replace, by, &EngineJudge::registering(self))
    }

    /// Registers the tool file at `path`, with the program file it names read from beside it:
    /// the operator's registration (a path of the host).
    pub fn register_tool_file(
        &self,
        path: &Path,
        replace: bool,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        let read = |path: &Path, most| {
            bounded_file::read(path, most).map_err(|source| RegistryError::Read {
                path: path.to_owned(),
                source,
            })
        };
        let text =
            String::from_utf8_lossy(&read(path, bounded_file::MAX_SETTINGS_FILE)?).into_owned();
        let tool = Tool::parse(&text, tool::ToolOrigin::Registered)?;
        let mut files = Vec::new();
        if let Runner::Program { file, .. } = &tool.runner {
            let beside = path.parent().unwrap_or(Path::new(".")).join(file);
            files.push(ProgramFile {
                name: file.clone(),
                code: read(&beside, bounded_file::MAX_PROGRAM_FILE)?,
            });
        }
        self.register_tool(&text, &files, replace, Registrant::Operator)
    }

    /// Removes a registered tool, if `by` may.
    pub fn remove_tool(&self, name: &str, by: Registrant) -> Result<(), RegistryError> {
        self.fresh_registry().remove(name, by)
    }

    /// Approves a registered tool awaiting approval; one a client registered only with the
    /// digest of what was reviewed (`reviewed`, [`RegisteredTool::digest`]), which its files
    /// must still have.
    pub fn approve_tool(
        &self,
        name: &str,
        reviewed: Option<&str>,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        self.fresh_registry().approve(name, reviewed)
    }

    /// The registry's statistics over the calls made at or after `since` by the API token
    /// named `caller` (every caller's when `None`).
    pub fn tool_stats(
        &self,
        since: Option<SystemTime>,
        caller: Option<&str>,
    ) -> Result<ToolStats, EngineError> {
        self.with_store(|store| store.tool_stats_of(since, caller))
    }

    /// Calls a tool and records the call. The tool's own failure is an `Ok` reply with
    /// `is_error`; so is a refusal the caller can act on once the tool ran (the analysis
    /// refused its code, its language is unknown). `Err` is a call that never reached the
    /// tool: unknown, awaiting approval, unavailable, invalid input, or warden's failure.
    pub fn call_tool(&self, request: ToolCallRequest) -> Result<ToolReply, ToolCallError> {
        let started = Instant::now();
        let Some(entry) = self.visible_tool(&request) else {
            return Err(ToolCallError::Unknown(request.tool));
        };
        let outcome = self.call_entry(&entry, &request, started);
        self.record_call(&entry, &request, &outcome, started);
        outcome
    }

    /// Calls `request` as [`Engine::check_tool_call`] found it (`checked`, the check of this
    /// same request): the tool the check resolved, not the one its name resolves to now, and
    /// a call refused at the check is refused for the check's reason, recorded, and never run.
    /// A server checks a call, admits it (a place in the queue, a worker, the caller's quota)
    /// only when it runs, then calls it here: resolving the name again would run a tool
    /// registered between the two, outside that admission (hunt mcp 1).
    pub fn call_checked(
        &self,
        request: ToolCallRequest,
        checked: CallCheck,
    ) -> Result<ToolReply, ToolCallError> {
        let started = Instant::now();
        let (entry, outcome) = match checked {
            CallCheck::Runs(entry) => {
                let outcome = self.call_entry(&entry, &request, started);
                (entry, outcome)
            }
            CallCheck::Refused(refusal) => {
                let outcome = match refusal.reason {
                    RefusalReason::Error(e) => Err(e),
                    RefusalReason::Input(message) => match &refusal.tool {
                        Some(entry) => Ok(refused(&entry.tool, message, started)),
                        None => Err(ToolCallError::Unknown(request.tool.clone())),
                    },
                };
                // An unknown tool is not recorded, as `call_tool` does not record it.
                let Some(entry) = refusal.tool else {
                    return outcome;
                };
                (entry, outcome)
            }
        };
        self.record_call(&entry, &request, &outcome, started);
        outcome
    }

    /// Records a call of `entry` that ended with `outcome`.
    fn record_call(
        &self,
        entry: &RegisteredTool,
        request: &ToolCallRequest,
        outcome: &Result<ToolReply, ToolCallError>,
        started: Instant,
    ) {
        let (status, execution, error) = match outcome {
            Ok(reply) => (
                status_of(reply),
                reply.execution.as_ref().map(|e| e.id.to_string()),
                reply.is_error.then(|| match &reply.execution {
                    // A cancelled call's reply says who cancelled it (its session's stop).
                    Some(result)
                        if !result.outcome.is_success() && result.outcome != Outcome::Cancelled =>
                    {
                        result.outcome.to_string()
                    }
                    _ => first_line(&reply.text),
                }),
            ),
            Err(e) => (ToolCallStatus::Refused, None, Some(e.to_string())),
        };
        self.record_tool_call(&ToolCallRecord {
            tool: &entry.tool.name,
            category: entry.category().as_str(),
            api: &request.origin.api,
            caller: request.origin.token.as_deref(),
            status,
            latency: started.elapsed(),
            execution_id: execution.as_deref(),
            error: error.as_deref(),
            answered_at: None,
        });
    }

    /// What [`Engine::call_tool`] would refuse `request` for before anything runs: an unknown
    /// tool (to its caller), one awaiting approval, unavailable or not callable, input the
    /// schema refuses, and input it takes that no call may have (a `run_code` call's limits
    /// above the operator's maxima). Records nothing: a server (and `warden mcp`) checks a
    /// call so before it takes a place in the queue and a worker
    /// (docs/server.md#admission-quotas-cancellation), then gives the check to
    /// [`Engine::call_checked`], which runs the call, or records its refusal.
    pub fn check_tool_call(&self, request: &ToolCallRequest) -> CallCheck {
        let refuse = |tool, reason| CallCheck::Refused(CallRefusal { tool, reason });
        let Some(entry) = self.visible_tool(request) else {
            let unknown = ToolCallError::Unknown(request.tool.clone());
            return refuse(None, RefusalReason::Error(unknown));
        };
        if let Err(e) = check_entry(&entry, request) {
            return refuse(Some(entry), RefusalReason::Error(e));
        }
        let input = if request.input.is_null() {
            &json!({})
        } else {
            &request.input
        };
        match self.input_refusal(&entry.tool, input) {
            Some(reason) => refuse(Some(entry), RefusalReason::Input(reason)),
            None => CallCheck::Runs(entry),
        }
    }

    /// The tool `request` names, if its caller sees it: the operator's own interface calls
    /// any tool; a client, those it sees (another token's registration is unknown to it, as
    /// in its `tools/list`).
    fn visible_tool(&self, request: &ToolCallRequest) -> Option<Arc<RegisteredTool>> {
        self.registry().get(&request.tool).filter(|entry| {
            request.origin.api == OPERATOR_API || entry.visible_to(request.origin.token.as_deref())
        })
    }

    fn call_entry(
        &self,
        entry: &RegisteredTool,
        request: &ToolCallRequest,
        started: Instant,
    ) -> Result<ToolReply, ToolCallError> {
        let tool = &entry.tool;
        check_entry(entry, request)?;
        let input = if request.input.is_null() {
            &json!({})
        } else {
            &request.input
        };
        let session = input.get("session").and_then(Value::as_str);
        if let Runner::Builtin(Builtin::Files) = tool.runner {
            if let Some(session) = session {
                return self.session_files_call(tool, request, session, input, started);
            }
            return self.files_call(tool, request, input, started);
        }
        let execution = match self.tool_execution(entry, input) {
            Ok(execution) => execution,
            Err(Refusal::Input(message)) => return Ok(refused(tool, message, started)),
            Err(Refusal::Engine(e)) if e.kind().is_caller_fault() => {
                return Ok(refused(tool, refusal_text(&e), started))
            }
            Err(Refusal::Engine(e)) => return Err(ToolCallError::Engine(e)),
        };
        let request_execution = ExecutionRequest {
            cancel: request.cancel.clone(),
            origin: request.origin.clone(),
            ..execution
        };
        if let Some(session) = session {
            return self.session_tool_call(tool, session, input, request_execution, started);
        }
        match self.execute(request_execution) {
            Ok(done) => Ok(reply(tool, done.result, started)),
            // Cancelled (the client's `notifications/cancelled`, its session ended): it ran, and
            // failed; the statistics count a failure, not a refusal (docs/mcp.md), of the
            // execution recorded with what it ran until then.
            Err(e) if e.kind() == crate::ErrorKind::Cancelled => Ok(ToolReply {
                execution: e.cancelled_execution().cloned(),
                ..failed(tool, e.to_string(), started)
            }),
            // Refused before the program ran (the analysis, the mode policy, a bad limit).
            Err(e) if e.kind().is_caller_fault() => Ok(refused(tool, refusal_text(&e), started)),
            Err(e) => Err(ToolCallError::Engine(e)),
        }
    }

    /// A `run_code`, `python` or `shell` call made in a session: the session's mode, network
    /// and workspace instead of the tool's.
    fn session_tool_call(
        &self,
        tool: &Tool,
        session: &str,
        input: &Value,
        mut execution: ExecutionRequest,
        started: Instant,
    ) -> Result<ToolReply, ToolCallError> {
        // As `POST /v1/sessions/{id}/exec` refuses them: a call asking for a mode or a policy
        // would otherwise get the session's, weaker perhaps, without a word.
        let named = |key: &str| input.get(key).is_some_and(|v| !v.is_null());
        if named("mode") || named("network") {
            return Ok(refused(
                tool,
                "a call in a session runs in the session's mode and network policy: leave out \
                 `mode` and `network`"
                    .to_owned(),
                started,
            ));
        }
        execution.mode = None;
        execution.network = None;
        let call = match tool.runner {
            Runner::Builtin(Builtin::Shell) => super::SessionCall::Command {
                command: input["command"].as_str().unwrap_or_default().to_owned(),
                request: execution,
            },
            Runner::Builtin(Builtin::RunCode | Builtin::Python) => {
                super::SessionCall::Program(execution)
            }
            _ => {
                return Ok(failed(
                    tool,
                    format!("{} does not run in a session", tool.name),
                    started,
                ))
            }
        };
        let caller = call_origin(&call).token.clone();
        match self.session_call(session, caller.as_deref(), call) {
            Ok(done) => Ok(reply(tool, done.result, started)),
            Err(e) => session_failure(tool, e, started),
        }
    }

    /// The `files` tool on a session's workspace.
    fn session_files_call(
        &self,
        tool: &Tool,
        request: &ToolCallRequest,
        session: &str,
        input: &Value,
        started: Instant,
    ) -> Result<ToolReply, ToolCallError> {
        use super::{FileAnswer, FileOp};
        let path = input["path"].as_str().unwrap_or_default().to_owned();
        let op = match input["operation"].as_str().unwrap_or_default() {
            "list" => FileOp::List {
                path: path.clone(),
                after: input["after"].as_str().unwrap_or_default().to_owned(),
            },
            "read" => FileOp::Read(path.clone()),
            "write" => match input["content"].as_str() {
                Some(content) => FileOp::Write(path.clone(), content.as_bytes().to_vec()),
                None => {
                    return Ok(failed(
                        tool,
                        "write needs \"content\" (the file's text)".into(),
                        started,
                    ))
                }
            },
            "delete" => FileOp::Delete(path.clone()),
            other => {
                return Ok(failed(
                    tool,
                    format!("unknown operation {other:?}: list, read, write or delete"),
                    started,
                ))
            }
        };
        let caller = request.origin.token.as_deref();
        let value = match self.session_files(session, caller, op) {
            Ok(FileAnswer::Entries(listing)) => listing.to_json(&path),
            Ok(FileAnswer::Bytes(bytes)) => match String::from_utf8(bytes) {
                Ok(text) => json!({"path": path, "content": text}),
                Err(_) => {
                    return Ok(failed(
                        tool,
                        crate::tools::FilesError::Binary(path).to_string(),
                        started,
                    ))
                }
            },
            // `File` answers an `Open`, which the tool never asks for.
            Ok(FileAnswer::Done | FileAnswer::File(_)) => match input["operation"].as_str() {
                Some("write") => json!({"written": path}),
                _ => json!({"deleted": path}),
            },
            Err(e) => return session_failure(tool, e, started),
        };
        Ok(files_reply(tool, value, started))
    }

    /// The `files` tool: an operation on the caller's workspace, no sandbox involved.
    fn files_call(
        &self,
        tool: &Tool,
        request: &ToolCallRequest,
        input: &Value,
        started: Instant,
    ) -> Result<ToolReply, ToolCallError> {
        match self
            .workspaces()
            .operate(request.origin.token.as_deref(), input)
        {
            Ok(value) => Ok(files_reply(tool, value, started)),
            Err(e) if e.is_internal() => Err(ToolCallError::Files(e)),
            Err(e) => Ok(failed(tool, e.to_string(), started)),
        }
    }

    /// The execution a call of a sandboxed tool is.
    fn tool_execution(
        &self,
        entry: &RegisteredTool,
        input: &Value,
    ) -> Result<ExecutionRequest, Refusal> {
        let tool = &entry.tool;
        let mut execution = ExecutionRequest {
            mode: Some(tool.mode),
            network: Some(tool.network.clone()),
            limits: tool.limits,
            read_only: tool.read_only.clone(),
            ..ExecutionRequest::default()
        };
        let text = |key: &str| input.get(key).and_then(Value::as_str).map(str::to_owned);
        let strings = |key: &str| -> Vec<String> {
            input
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let stdin_of = |key: Option<&str>| match key.and_then(&text) {
            Some(s) => Stdin::Bytes(s.into_bytes()),
            None => Stdin::Null,
        };
        match &tool.runner {
            Runner::Builtin(Builtin::RunCode) => {
                execution.language = text("language");
                execution.sources = run_code_sources(input);
                execution.stdin = stdin_of(Some("stdin"));
                execution.args = strings("args");
                execution.dependencies = strings("dependencies");
                if let Some(network) = text("network") {
                    execution.network = Some(network);
                }
                if let Some(mode) = run_code_mode(input).map_err(Refusal::Input)? {
                    execution.mode = Some(mode);
                }
                if let Some(asked) = self.run_code_limits(input).map_err(Refusal::Input)? {
                    execution.limits = execution.limits.overridden_by(&asked);
                }
            }
            Runner::Builtin(Builtin::Python) => {
                execution.language = Some("python".into());
                execution.sources = vec![source(None, text("code").unwrap_or_default())];
                execution.stdin = stdin_of(Some("stdin"));
                execution.dependencies = strings("dependencies");
            }
            Runner::Builtin(Builtin::Shell) => {
                execution.language = Some("bash".into());
                execution.sources = vec![source(None, text("command").unwrap_or_default())];
                execution.stdin = stdin_of(Some("stdin"));
            }
            Runner::Builtin(other) => {
                return Err(Refusal::Input(format!(
                    "the built-in {} does not run as an execution",
                    other.as_str()
                )))
            }
            Runner::Program {
                language,
                dependencies,
                ..
            } => {
                let program = entry
                    .program
                    .as_ref()
                    .ok_or_else(|| Refusal::Engine(EngineError::NoSource))?;
                execution.language = language.clone();
                execution.sources = vec![SourceFile {
                    name: Some(program.name.clone()),
                    code: program.code.clone(),
                    executable: false,
                }];
                execution.dependencies = dependencies.clone();
                execution.stdin = match &tool.stdin {
                    Some(key) => stdin_of(Some(key)),
                    None => Stdin::Bytes(input.to_string().into_bytes()),
                };
            }
            Runner::Command(template) => {
                let argv = template
                    .expand(input)
                    .map_err(|e| Refusal::Input(e.to_string()))?;
                execution.language = Some("bash".into());
                execution.sources = vec![source(
                    None,
                    format!(
                        "exec {} \"$@\"\n",
                        shell_quote(&template.program().to_string_lossy())
                    ),
                )];
                execution.args = argv.into_iter().skip(1).collect();
                execution.stdin = stdin_of(tool.stdin.as_deref());
            }
            Runner::Mcp(_) => {
                return Err(Refusal::Input("an MCP server is not called".into()));
            }
        }
        Ok(execution)
    }

    /// Why a call whose input its tool's schema takes is refused all the same, before
    /// anything would run (what [`Engine::tool_execution`] refuses as [`Refusal::Input`]): a
    /// `run_code` call's `mode` that is none, its `limits` malformed or above the operator's
    /// maxima; a wrapped command's value that would be read as an option. Cheap (no analysis,
    /// no execution built), so it is asked before a call takes a place.
    fn input_refusal(&self, tool: &Tool, input: &Value) -> Option<String> {
        match &tool.runner {
            Runner::Builtin(Builtin::RunCode) => run_code_mode(input)
                .err()
                .or_else(|| self.run_code_limits(input).err()),
            Runner::Command(template) => template.expand(input).err().map(|e| e.to_string()),
            _ => None,
        }
    }

    /// A `run_code` input's `limits`, if it asks for any; refused above the operator's
    /// maxima, as the API refuses a request's (docs/server.md): a client must learn it did
    /// not get what it asked for.
    fn run_code_limits(&self, input: &Value) -> Result<Option<LimitOverrides>, String> {
        let Some(limits) = input.get("limits") else {
            return Ok(None);
        };
        let asked: LimitOverrides = serde_json::from_value(whole_numbers(limits)?)
            .map_err(|e| format!("invalid limits: {e}"))?;
        match Limits::over_maxima(&asked, &self.maxima).first() {
            Some(over) => Err(format!("limits.{over}")),
            None => Ok(Some(asked)),
        }
    }

    pub(super) fn record_tool_call(&self, call: &ToolCallRecord<'_>) {
        if let Err(e) = self.with_writer(|store, rule| store.record_tool_call(call, rule)) {
            if !matches!(e, EngineError::NoHistory) {
                tracing::warn!(error = %e, tool = call.tool, "tool call not recorded");
            }
        }
    }

    /// The tool registry, loaded again when the registered tools changed since (another
    /// process registered, removed or approved one: `registry::stamp`).
    ///
    /// One thread loads it at a time, without holding the lock readers take: while it does,
    /// the others go on with the registry loaded before (which has this process's own
    /// registrations already), and only the first load is waited for. A load analyses only
    /// the programs it was not given before (`tool_analyses.rs`), but a program another
    /// process registered takes up to the analysis' bounds (hunt tenants 1: every reader of
    /// the server waited behind loads of a token's tools that spent their budget).
    pub(super) fn registry(&self) -> std::sync::Arc<Registry> {
        self.load_registry(false)
    }

    /// The tool registry as [`Engine::registry`] gives it, but after the load in progress, if
    /// one is: what a registration, a replacement, an approval or a removal is decided on and
    /// made in. The registry loaded before did not have what changed since (hunt regsrv 2: a
    /// tool `warden tool rm` removed was "already exists" to its owner's registration during
    /// a load, and "registered by another API token" to a replacement). These are rare, and a
    /// server makes them on a worker.
    fn fresh_registry(&self) -> std::sync::Arc<Registry> {
        self.load_registry(true)
    }

    /// [`Engine::registry`]; `wait`: [`Engine::fresh_registry`].
    fn load_registry(&self, wait: bool) -> std::sync::Arc<Registry> {
        let settings = self.tools_settings();
        let loaded = || {
            self.registry
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        };
        let stamp = crate::tools::registry_stamp(&settings);
        let before = match loaded() {
            Some((at, registry)) if at == stamp => return registry,
            before => before.map(|(_, registry)| registry),
        };
        let _loading = match (self.loading_registry.try_lock(), before) {
            (Ok(loading), _) => loading,
            (Err(std::sync::TryLockError::Poisoned(p)), _) => p.into_inner(),
            (Err(std::sync::TryLockError::WouldBlock), Some(before)) if !wait => return before,
            (Err(std::sync::TryLockError::WouldBlock), _) => self
                .loading_registry
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        };
        // Loaded by another thread meanwhile?
        let stamp = crate::tools::registry_stamp(&settings);
        if let Some((at, registry)) = loaded() {
            if at == stamp {
                return registry;
            }
        }
        let mark = self.tool_analyses.mark();
        let judge = EngineJudge::loading(self);
        let registry = std::sync::Arc::new(Registry::load(settings, &judge));
        judge.keep_only_assessed(mark);
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) =
            Some((stamp, std::sync::Arc::clone(&registry)));
        registry
    }

    /// How many analyses of tools' programs this engine ran (not found kept).
    pub fn tool_analyses_run(&self) -> u64 {
        self.tool_analyses.runs()
    }

    /// The `files` workspaces.
    fn workspaces(&self) -> &Workspaces {
        self.workspaces.get_or_init(|| {
            let settings = self.tools_settings();
            Workspaces::new(settings.state_dir.join("files"), settings.files_quota)
        })
    }

    fn tools_settings(&self) -> ToolsSettings {
        self.tools
            .clone()
            .unwrap_or_else(|| ToolsSettings::new(std::env::temp_dir().join("warden-tools")))
    }
}

/// Why a call's execution could not be built.
enum Refusal {
    /// The input, though valid for the schema, cannot be run (a bad mode, bad limits).
    Input(String),
    /// The engine refused.
    Engine(EngineError),
}

/// The engine's judgement of tools for the registry.
struct EngineJudge<'e> {
    engine: &'e Engine,
    /// A registration's judge, which analyses each program afresh (once: the registry asks
    /// more than once), not a load's, which takes the analyses kept.
    afresh: bool,
    /// The programs assessed.
    assessed: std::sync::Mutex<std::collections::HashSet<super::tool_analyses::Key>>,
}

impl<'e> EngineJudge<'e> {
    /// A judge for a registration, which analyses its program afresh: it is admitted with a
    /// worker and its caller's quota, and an analysis kept from before may have been stopped
    /// for a reason outside the program (hunt regsrv 1: a stalled worker's `high` stayed the
    /// grade of a harmless program, even registered again with `replace`).
    fn registering(engine: &'e Engine) -> Self {
        Self {
            engine,
            afresh: true,
            assessed: std::sync::Mutex::default(),
        }
    }

    /// A judge for a load of the registry, which takes the analyses kept and says the
    /// programs it assessed.
    fn loading(engine: &'e Engine) -> Self {
        Self {
            engine,
            afresh: false,
            assessed: std::sync::Mutex::default(),
        }
    }

    /// Forgets the analyses of the programs this load did not assess (no longer registered),
    /// but those kept since `mark`, when it began ([`super::tool_analyses::ToolAnalyses::keep_only`]).
    fn keep_only_assessed(&self, mark: u64) {
        let assessed = self.assessed.lock().unwrap_or_else(|p| p.into_inner());
        self.engine.tool_analyses.keep_only(&assessed, mark);
    }
}

impl Judge for EngineJudge<'_> {
    fn assess(&self, tool: &Tool, program: Option<&ProgramFile>) -> Assessment {
        let analysis = program.and_then(|program| self.analyse(tool, program));
        tool::assess(tool, analysis.as_ref())
    }

    fn unavailable(&self, tool: &Tool, program: Option<&ProgramFile>) -> Option<String> {
        let engine = self.engine;
        // A program graded above what its mode may run: the mode policy would refuse every
        // call (the program is the same at each).
        if let Some(analysis) = program.and_then(|p| self.analyse(tool, p)) {
            if let Err(refusal) = engine.modes.choose(tool.mode, analysis.threat_level) {
                return Some(format!(
                    "the mode policy refuses every call of its program: {refusal}"
                ));
            }
        }
        if let Err(e) = engine.network.plan(Some(&tool.network), Mode::Sandboxed) {
            return Some(e.to_string());
        }
        let program = match &tool.runner {
            Runner::Command(template) => Some(template.program()),
            Runner::Mcp(argv) => argv.first().map(std::path::Path::new),
            _ => None,
        };
        if let Some(program) = program {
            if !program.exists() {
                return Some(format!(
                    "{} is not installed on this host",
                    program.display()
                ));
            }
            let visible = engine
                .filesystem
                .mounts
                .iter()
                .map(|m| m.path.as_path())
                .chain(tool.read_only.iter().map(|p| p.as_path()))
                .any(|root| program.starts_with(root));
            if !visible {
                return Some(format!(
                    "{} is outside the sandbox's read-only tree; add its directory to the \
                     tool's read_only",
                    program.display()
                ));
            }
        }
        if let Some(p) = tool.read_only.iter().find(|p| !p.exists()) {
            return Some(format!(
                "its read-only path {} does not exist on this host",
                p.display()
            ));
        }
        // What every call would refuse: paths its sandbox hides or cannot bind, limits out of
        // the operator's range. Told now, not by every call.
        let language = match &tool.runner {
            Runner::Program {
                language: Some(id), ..
            } => engine.catalog.get(id),
            Runner::Program { file, .. } => engine
                .resolve(None, Some(file), b"")
                .ok()
                .map(|(language, _)| language),
            _ => engine.catalog.get("bash"),
        };
        if let Some(language) = language {
            if let Err(e) = engine.usable_read_only(language, &tool.read_only) {
                return Some(e.to_string());
            }
            if let Err(e) = engine.limits(&[&language.limits, &tool.limits]) {
                return Some(format!("its limits: {e}"));
            }
            // Above the operator's range: not lowered in silence, as a call's would not be.
            if let Some(over) = Limits::over_maxima(&tool.limits, &engine.maxima).first() {
                return Some(format!("its [limits] {over}"));
            }
        }
        None
    }
}

impl EngineJudge<'_> {
    /// The static analysis of a tool's program, each finding with what its rule implies.
    fn analyse(&self, tool: &Tool, program: &ProgramFile) -> Option<ProgramAnalysis> {
        let engine = self.engine;
        let language = match &tool.runner {
            Runner::Program {
                language: Some(id), ..
            } => Some(id.as_str()),
            _ => None,
        };
        let (language, _) = engine
            .resolve(language, Some(&program.name), &program.code)
            .ok()?;
        let id = language.id.as_str();
        // Kept whatever its outcome: one that spent its budget or was stopped is graded as
        // such, not analysed again at each load (hunt tenants 1); a registration analyses
        // afresh (hunt regsrv 1).
        let key = super::tool_analyses::key(id, &program.code);
        let first = self
            .assessed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        let analyse = || engine.analyze_one(id, &program.code);
        let analysis = if self.afresh && first {
            engine.tool_analyses.run(key, analyse)
        } else {
            engine.tool_analyses.get_or_run(key, analyse)
        };
        let rules = engine.analyzer.rules(id);
        let implies = |finding: &Finding| {
            use warden_analysis::Category as C;
            match rules
                .iter()
                .find(|r| r.id == finding.rule)
                .map(|r| r.category)
            {
                Some(C::Network) => Implies::Network,
                Some(C::Filesystem) => Implies::Filesystem,
                Some(C::Process | C::UnboundedSpawn | C::PackageInstall) => Implies::Process,
                _ => Implies::Other,
            }
        };
        Some(ProgramAnalysis {
            threat_level: analysis.threat_level,
            findings: analysis
                .findings
                .into_iter()
                .map(|f| {
                    let i = implies(&f);
                    (f, i)
                })
                .collect(),
        })
    }
}

/// A `run_code` input's `mode`, if it asks for one.
fn run_code_mode(input: &Value) -> Result<Option<ModeRequest>, String> {
    input
        .get("mode")
        .and_then(Value::as_str)
        .map(str::parse::<ModeRequest>)
        .transpose()
}

/// The sources of a `run_code` input: `code`, then `files`.
fn run_code_sources(input: &Value) -> Vec<SourceFile> {
    let code = input["code"].as_str().unwrap_or_default().to_owned();
    let mut sources = vec![source(None, code)];
    for file in input["files"].as_array().into_iter().flatten() {
        sources.push(source(
            file["name"].as_str().map(str::to_owned),
            file["content"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    sources
}

fn source(name: Option<String>, code: String) -> SourceFile {
    SourceFile {
        name,
        code: code.into_bytes(),
        executable: false,
    }
}

/// `s` quoted for a POSIX shell.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A reply for a tool that failed before or without running.
fn failed(tool: &Tool, message: String, started: Instant) -> ToolReply {
    ToolReply {
        tool: tool.name.clone(),
        is_error: true,
        text: message,
        structured: None,
        execution: None,
        latency: started.elapsed(),
        refused: false,
    }
}

/// The reply of a call refused before anything ran ([`ToolReply::refused`]).
/// What a call the engine refused is told: the error, and when naming the language would
/// settle it, the call's own field for that (`run_code`'s `language`).
fn refusal_text(e: &EngineError) -> String {
    if e.needs_language() {
        format!("{e}; set \"language\"")
    } else {
        e.to_string()
    }
}

fn refused(tool: &Tool, message: String, started: Instant) -> ToolReply {
    ToolReply {
        refused: true,
        ..failed(tool, message, started)
    }
}

/// The reply of a tool whose call ran as `result`.
fn reply(tool: &Tool, result: ExecutionResult, started: Instant) -> ToolReply {
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    let ok = result.outcome.is_success();
    let code_runner = matches!(
        tool.runner,
        Runner::Builtin(Builtin::RunCode | Builtin::Python | Builtin::Shell)
    );
    let mut text = stdout.clone();
    let mut structured = None;
    let mut is_error = !ok;
    if code_runner {
        structured = Some(json!({
            "language": result.language,
            "mode": result.mode,
            "outcome": result.outcome,
            "stdout": stdout,
            "stderr": stderr,
            "stdout_truncated": result.stdout_truncated,
            "stderr_truncated": result.stderr_truncated,
            "usage": result.usage,
            "execution_id": result.id.to_string(),
        }));
    } else if ok && tool.output == OutputFormat::Json {
        match serde_json::from_str::<Value>(&stdout) {
            Ok(value) => structured = Some(value),
            Err(e) => {
                is_error = true;
                text = format!("the tool's output is not JSON ({e}): {stdout}");
            }
        }
    }
    if !ok {
        let compile = result
            .compile
            .as_ref()
            .filter(|c| !c.outcome.is_success())
            .map(|c| String::from_utf8_lossy(&c.stderr).into_owned());
        for extra in [compile, Some(stderr)].into_iter().flatten() {
            if !extra.is_empty() {
                text.push_str(if text.is_empty() || text.ends_with('\n') {
                    ""
                } else {
                    "\n"
                });
                text.push_str(&extra);
            }
        }
        text.push_str(if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        });
        text.push_str(&format!("[{}]", result.outcome));
    }
    ToolReply {
        tool: tool.name.clone(),
        is_error,
        text,
        structured,
        execution: Some(result),
        latency: started.elapsed(),
        refused: false,
    }
}

/// Refuses a call of `entry` that cannot run: the tool awaits approval, is unavailable or is
/// not called (an MCP server), or the input does not match its schema.
fn check_entry(entry: &RegisteredTool, request: &ToolCallRequest) -> Result<(), ToolCallError> {
    let tool = &entry.tool;
    match &entry.status {
        ToolStatus::Active => {}
        ToolStatus::Pending => return Err(ToolCallError::Pending(tool.name.clone())),
        ToolStatus::Unavailable { reason } => {
            return Err(ToolCallError::Unavailable {
                tool: tool.name.clone(),
                reason: reason.clone(),
            })
        }
    }
    if let Runner::Mcp(_) = tool.runner {
        return Err(ToolCallError::NotCallable {
            tool: tool.name.clone(),
            reason: format!(
                "it is an MCP server, not a tool: an MCP client runs it with \
                 `warden mcp wrap {}`",
                tool.name
            ),
        });
    }
    let input = if request.input.is_null() {
        &json!({})
    } else {
        &request.input
    };
    tool.check_input(input)
        .map_err(|errors| ToolCallError::Input {
            tool: tool.name.clone(),
            errors,
        })
}

/// How the statistics count a reply.
fn status_of(reply: &ToolReply) -> ToolCallStatus {
    if reply.refused {
        return ToolCallStatus::Refused;
    }
    let Some(result) = &reply.execution else {
        return if reply.is_error {
            ToolCallStatus::Failure
        } else {
            ToolCallStatus::Success
        };
    };
    let denied = result.network.as_ref().is_some_and(|n| n.denied > 0);
    if result.outcome.kind() == OutcomeKind::Violation
        || denied
        || result.security.violations.iter().any(stopped_forbidden)
    {
        ToolCallStatus::Violation
    } else if reply.is_error {
        ToolCallStatus::Failure
    } else {
        ToolCallStatus::Success
    }
}

/// Whether `violation` is a forbidden operation the sandbox stopped, though the program may
/// have lived on (docs/tools.md#statistics): a process seccomp killed, a connection the policy
/// denied, or a refused system call that is a step of a known escape (`mount`, namespaces,
/// `ptrace`: the events of severity high). A limit, or a harmless refused call, is not.
fn stopped_forbidden(violation: &crate::security::Violation) -> bool {
    violation.kind == crate::security::ViolationKind::Violation
        || crate::history::Severity::of(violation) == crate::history::Severity::High
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or(text);
    line.chars().take(300).collect()
}

/// The origin of a session call's request.
fn call_origin(call: &super::SessionCall) -> &crate::execution::Origin {
    match call {
        super::SessionCall::Command { request, .. } | super::SessionCall::Program(request) => {
            &request.origin
        }
    }
}

/// A session call that failed: a program the engine refused (the analysis, the mode policy,
/// the `[response]` rule, a bad limit) is refused as outside a session; the caller's other
/// mistakes (an unknown or stopped session, a bad path) are the tool's error; warden's own
/// failure is an `Err`.
fn session_failure(
    tool: &Tool,
    e: crate::sessions::SessionError,
    started: Instant,
) -> Result<ToolReply, ToolCallError> {
    use crate::sessions::SessionError;
    match e {
        SessionError::Engine(e) if !e.kind().is_caller_fault() => Err(ToolCallError::Engine(e)),
        SessionError::Files(e) if e.is_internal() => Err(ToolCallError::Files(e)),
        // Nothing ran: an unknown, stopped or unreachable session, limits above the session's,
        // the engine's refusal; a refusal, as the same call's refusals without a session are
        // (hunt mcp 7, hunt gv 4: they were failures, `refused: false`).
        e @ (SessionError::NotFound(_)
        | SessionError::Stopped { call: None, .. }
        | SessionError::Invalid(_)
        | SessionError::TooMany(_)
        | SessionError::Elsewhere { .. }) => Ok(refused(tool, e.to_string(), started)),
        SessionError::Engine(e) if e.cancelled_execution().is_none() => {
            Ok(refused(tool, refusal_text(&e), started))
        }
        // A call its session's stop cancelled ran, as the history recorded it.
        e => Ok(ToolReply {
            execution: e.cancelled_execution().cloned(),
            ..failed(tool, e.to_string(), started)
        }),
    }
}

/// The reply of a `files` operation: a read's content as the text, else the JSON answer.
fn files_reply(tool: &Tool, value: Value, started: Instant) -> ToolReply {
    ToolReply {
        tool: tool.name.clone(),
        is_error: false,
        text: match value.get("content").and_then(Value::as_str) {
            Some(content) => content.to_owned(),
            None => value.to_string(),
        },
        structured: Some(value),
        execution: None,
        latency: started.elapsed(),
        refused: false,
    }
}

/// `limits` with each whole number in float form written as the integer: `2.0` is `2`, as
/// the schema's `integer` and the command templates read it (serde's `u32` refused it, hunt
/// mcp 5); a number with a fraction is refused, naming its field.
fn whole_numbers(limits: &Value) -> Result<Value, String> {
    /// Below 2^53 an `f64` holds every integer exactly.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let mut limits = limits.clone();
    let Value::Object(fields) = &mut limits else {
        return Ok(limits);
    };
    for (name, value) in fields.iter_mut() {
        let Some(float) = value.as_f64().filter(|_| value.is_f64()) else {
            continue;
        };
        if float.fract() != 0.0 {
            return Err(format!(
                "invalid limits: {name} must be a whole number, not {value}"
            ));
        }
        if float.abs() < EXACT {
            // Whole and below 2^53: the cast loses nothing.
            *value = Value::from(float as i64);
        }
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt mcp 5: `"max_procs": 2.0` was refused (`invalid type: floating point`), though the
    /// schema says integer and `2.0` is one; `2.5` is refused saying what is wrong.
    #[test]
    fn a_run_code_limit_in_float_form_is_its_whole_number() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        let limits = |limits: Value| engine.run_code_limits(&json!({ "limits": limits }));
        let asked = limits(json!({"max_procs": 2.0, "memory": 1048576.0}))
            .expect("whole numbers")
            .expect("limits");
        assert_eq!(asked.max_procs, Some(2));
        assert_eq!(asked.memory, Some(warden_core::ByteSize(1 << 20)));
        assert_eq!(
            limits(json!({"max_procs": 2.5})).expect_err("a fraction"),
            "invalid limits: max_procs must be a whole number, not 2.5"
        );
        assert_eq!(
            limits(json!({"max_procs": 2})).expect("an integer"),
            Some(LimitOverrides {
                max_procs: Some(2),
                ..LimitOverrides::default()
            })
        );
    }

    fn engine_with_tools(dir: &Path) -> Engine {
        Engine::new(crate::EngineConfig {
            tools: Some(ToolsSettings::new(dir.to_owned())),
            ..crate::EngineConfig::new(std::path::PathBuf::from("/nonexistent/warden"))
        })
        .expect("an engine without a sandbox")
    }

    /// A compute tool of bob's whose input `n` must be at most `maximum`.
    fn register_late(engine: &Engine, maximum: u32, replace: bool) {
        late_registration(engine, maximum, replace).expect("registered");
    }

    fn late_registration(
        engine: &Engine,
        maximum: u32,
        replace: bool,
    ) -> Result<Arc<RegisteredTool>, RegistryError> {
        let text = format!(
            "name = \"late\"\ndescription = \"d\"\ncategory = \"compute\"\n\
             [input]\ntype = \"object\"\n\
             [input.properties.n]\ntype = \"integer\"\nmaximum = {maximum}\n\
             [run]\nprogram = \"late.py\"\n"
        );
        let program = ProgramFile {
            name: "late.py".into(),
            code: b"print(1)\n".to_vec(),
        };
        engine.register_tool(&text, &[program], replace, Registrant::Client(Some("bob")))
    }

    /// Another process on the same registry (`warden tool` beside a server).
    fn another_process(dir: &Path) -> Engine {
        engine_with_tools(dir)
    }

    /// Another process registers a tool: the registry loads again at its next use.
    fn registered_elsewhere(dir: &Path) {
        let text = "name = \"other\"\ndescription = \"d\"\ncategory = \"compute\"\n\
                    [input]\ntype = \"object\"\n[run]\nprogram = \"other.py\"\n";
        let program = ProgramFile {
            name: "other.py".into(),
            code: b"print(2)\n".to_vec(),
        };
        another_process(dir)
            .register_tool(text, &[program], true, Registrant::Operator)
            .expect("registered");
    }

    /// Regression (hunt regsrv 1): a program's kept analysis was its grade for good, even
    /// when a stalled or killed worker had stopped it: registered again, with `replace`, it
    /// kept the stopped analysis' `high`. A load takes the kept analysis; a registration
    /// analyses afresh, and keeps that one.
    #[test]
    fn a_registration_analyses_its_program_again_and_a_load_does_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        register_late(&engine, 10, false);
        registered_elsewhere(dir.path());
        let registered = engine.tool("late").expect("registered").assessment.clone();
        // What a worker stopped for a passing reason left: a grade not the program's.
        let key = crate::engine::tool_analyses::key("python", b"print(1)\n");
        let stopped = warden_analysis::stopped("the analysis took longer than 3s".into());
        assert_ne!(registered.level, stopped.threat_level);
        engine.tool_analyses.run(key, || stopped);
        registered_elsewhere(dir.path());
        let runs = engine.tool_analyses_run();
        let loaded = engine.tool("late").expect("still registered");
        assert_ne!(loaded.assessment, registered, "the kept one");
        assert_eq!(
            engine.tool_analyses_run(),
            runs,
            "a load analyses nothing kept"
        );
        register_late(&engine, 10, true);
        assert_eq!(
            engine.tool_analyses_run(),
            runs + 1,
            "analysed once, afresh"
        );
        assert_eq!(
            engine.tool("late").expect("replaced").assessment,
            registered
        );
        registered_elsewhere(dir.path());
        assert_eq!(engine.tool("late").expect("loaded").assessment, registered);
        assert_eq!(
            engine.tool_analyses_run(),
            runs + 1,
            "the fresh one is kept"
        );
    }

    /// Regression (hunt regsrv 2): while a load ran, a registration was decided on the
    /// registry loaded before it: a tool the operator had removed (`warden tool rm`) "already
    /// exists" to its owner, and was "registered by another API token" to a replacement. A
    /// registration waits for the load in progress.
    #[test]
    fn a_registration_during_a_load_is_decided_on_the_registry_it_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        for replace in [false, true] {
            register_late(&engine, 10, replace);
            assert!(engine.tool("late").is_some());
            another_process(dir.path())
                .remove_tool("late", Registrant::Operator)
                .expect("removed");
            // A load in progress, on another thread.
            let loading = engine.loading_registry.lock().expect("not poisoned");
            std::thread::scope(|scope| {
                let registering = scope.spawn(|| late_registration(&engine, 10, replace));
                // Time enough for a registration that does not wait to answer (no assertion
                // on it: one that waits passes however long this takes).
                std::thread::sleep(std::time::Duration::from_millis(200));
                drop(loading);
                let registered = registering.join().expect("no panic");
                assert!(registered.is_ok(), "replace {replace}: {registered:?}");
            });
        }
    }

    /// Regression (hunt regsrv 3): a load forgot the analyses of the programs it did not list,
    /// among them one registered while it ran, which the next load analysed again. A load
    /// forgets none kept after it began.
    #[test]
    fn a_program_registered_while_a_load_runs_keeps_its_analysis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        assert!(engine.tool("late").is_none());
        // A load's steps (`Engine::load_registry`), with a registration after its listing.
        let mark = engine.tool_analyses.mark();
        let judge = EngineJudge::loading(&engine);
        let _listed = Registry::load(engine.tools_settings(), &judge);
        register_late(&engine, 10, false);
        judge.keep_only_assessed(mark);
        let runs = engine.tool_analyses_run();
        assert!(engine.tool("late").is_some(), "loaded again");
        assert_eq!(engine.tool_analyses_run(), runs, "not analysed again");
    }

    fn bobs_call(n: u32) -> ToolCallRequest {
        ToolCallRequest {
            tool: "late".into(),
            input: json!({ "n": n }),
            origin: crate::Origin::new("mcp", Some("bob".into())),
            cancel: None,
        }
    }

    /// Regression (hunt mcp 1): a call refused at the check was called all the same, without
    /// a place, a worker or the caller's quota, and the engine resolved its tool again: a tool
    /// registered between the two ran, outside every admission. The check's refusal stands.
    #[test]
    fn a_call_of_a_tool_registered_after_its_check_is_not_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        let checked = engine.check_tool_call(&bobs_call(1));
        assert!(matches!(checked, CallCheck::Refused(_)), "{checked:?}");
        register_late(&engine, 10, false);
        assert!(matches!(
            engine.check_tool_call(&bobs_call(1)),
            CallCheck::Runs(_)
        ));
        let reply = engine.call_checked(bobs_call(1), checked);
        assert!(
            matches!(reply, Err(ToolCallError::Unknown(ref name)) if name == "late"),
            "{reply:?}"
        );
    }

    /// Regression (hunt mcp 1): the same with a tool replaced between the check and the call
    /// by one whose schema takes the input the first refused.
    #[test]
    fn a_call_refused_by_a_schema_replaced_after_its_check_is_not_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        register_late(&engine, 10, false);
        let checked = engine.check_tool_call(&bobs_call(100));
        assert!(matches!(checked, CallCheck::Refused(_)), "{checked:?}");
        register_late(&engine, 1000, true);
        let reply = engine.call_checked(bobs_call(100), checked);
        assert!(
            matches!(reply, Err(ToolCallError::Input { ref tool, .. }) if tool == "late"),
            "{reply:?}"
        );
    }

    /// Regression (hunt tenants 1): every load of the registry (at each change of the
    /// registered tools) analysed every registered program again, and an analysis that was
    /// stopped or spent its budget was never kept: a token's programs that spend it froze the
    /// server for seconds at each load. A program is analysed once, at its registration, and
    /// keeps the grade it had then (here the analysis fails: no warden binary to confine it).
    #[test]
    fn a_load_of_the_registry_does_not_analyse_a_registered_program_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let engine = engine_with_tools(dir.path());
        register_late(&engine, 10, false);
        let registered = engine.tool("late").expect("registered");
        let runs = engine.tool_analyses_run();
        let text = "name = \"other\"\ndescription = \"d\"\ncategory = \"compute\"\n\
                    [input]\ntype = \"object\"\n[run]\nprogram = \"other.py\"\n";
        let program = ProgramFile {
            name: "other.py".into(),
            code: b"print(2)\n".to_vec(),
        };
        for _ in 0..3 {
            // Another registration, by another process: the registry loads again.
            let other = Engine::new(crate::EngineConfig {
                tools: Some(ToolsSettings::new(dir.path().to_owned())),
                ..crate::EngineConfig::new(std::path::PathBuf::from("/nonexistent/warden"))
            })
            .expect("another engine");
            other
                .register_tool(
                    text,
                    std::slice::from_ref(&program),
                    true,
                    Registrant::Operator,
                )
                .expect("registered");
            let late = engine.tool("late").expect("still registered");
            assert_eq!(late.assessment, registered.assessment);
            assert!(engine.tool("other").is_some());
        }
        assert_eq!(
            engine.tool_analyses_run(),
            runs + 1,
            "only the other program, once"
        );
    }

    /// Regression (hunt mcp 7): a call in a session refused before anything ran (limits above
    /// the session's, an unknown session) was counted as a failure, `refused: false`.
    #[test]
    fn a_session_call_refused_before_it_ran_is_a_refusal() {
        let text = "name = \"t\"\ndescription = \"d\"\ncategory = \"compute\"\n\
                    [input]\ntype = \"object\"\n[run]\nprogram = \"t.py\"\n";
        let tool = Tool::parse(text, tool::ToolOrigin::Registered).expect("a tool");
        let started = Instant::now();
        use crate::sessions::SessionError;
        for e in [
            SessionError::Invalid("limits.memory 512MiB is above the session's".into()),
            SessionError::NotFound("s1".into()),
            SessionError::Stopped {
                id: "s1".into(),
                reason: "idle".into(),
                call: None,
            },
        ] {
            let reply = session_failure(&tool, e, started).expect("a reply");
            assert!(reply.refused && reply.is_error, "{}", reply.text);
            assert_eq!(status_of(&reply), ToolCallStatus::Refused);
        }
        let missing = crate::tools::FilesError::NotFound("x".into());
        let reply = session_failure(&tool, SessionError::Files(missing), started).expect("reply");
        assert!(!reply.refused && reply.is_error);
    }

    /// Regression (hunt lang 6): the hint was the CLI's `--lang` everywhere; a tool call
    /// names the language in its `language` argument.
    #[test]
    fn a_refused_call_is_told_its_own_field() {
        let catalog = warden_core::Catalog::builtin().expect("catalog");
        let undetected = warden_core::detect::resolve(&catalog, None, None, "print(1)")
            .expect_err("python or r");
        let text = refusal_text(&EngineError::Language(undetected));
        assert!(text.ends_with("; set \"language\""), "{text}");
        assert!(!text.contains("--lang"), "{text}");
        assert_eq!(
            refusal_text(&EngineError::NoSource),
            EngineError::NoSource.to_string()
        );
    }
}
