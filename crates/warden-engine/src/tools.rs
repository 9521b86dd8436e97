//! The tool registry (docs/tools.md): the capabilities an agent may call, each a tool file
//! (`tools/*.toml` embedded, the operator's directories, or registered at run time), assessed
//! and categorised when it is loaded, called with a JSON input checked against its schema, run
//! as an execution in a sandbox under its own mode, network policy and limits, and counted
//! per tool in the history.
//!
//! The calls themselves are the engine's (`Engine::call_tool`); this module holds what they
//! work with: the registry, the `files` workspaces, and the call's request, reply and errors.

mod digest;
pub(crate) mod files;
mod registry;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use warden_core::tool::{Category, InputError};

use crate::cancel::Cancellation;
use crate::error::EngineError;
use crate::execution::{ExecutionResult, Origin};

pub(crate) use files::Workspaces;
pub use files::{FileEntry, FilesError, Listing, MAX_LISTED};
pub(crate) use registry::{stamp as registry_stamp, Judge, Registry};
pub use registry::{
    LoadProblem, ProgramFile, RegisteredTool, RegistryError, SourceView, ToolSource, ToolStatus,
    ToolView,
};

/// The default quota of one caller's `files` workspace.
pub const DEFAULT_FILES_QUOTA: u64 = 64 << 20;

/// The `[tools]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolsSettings {
    /// Directories of the operator's tool files.
    pub dirs: Vec<PathBuf>,
    /// Where registered tools and the `files` workspaces are kept.
    pub state_dir: PathBuf,
    /// The categories a tool may have; all when `None`.
    pub allowed_categories: Option<Vec<Category>>,
    /// The categories whose registered tools wait for an operator's approval.
    pub approval: Vec<Category>,
    /// Tools left out of the registry, by name (built-in ones included).
    pub disabled: Vec<String>,
    /// The most one caller's `files` workspace holds, in bytes.
    pub files_quota: u64,
}

impl ToolsSettings {
    /// The defaults with `state_dir`.
    pub fn new(state_dir: PathBuf) -> Self {
        Self {
            dirs: Vec::new(),
            state_dir,
            allowed_categories: None,
            approval: Vec::new(),
            disabled: Vec::new(),
            files_quota: DEFAULT_FILES_QUOTA,
        }
    }

    /// Whether a tool of `category` may be in the registry.
    pub(crate) fn allows(&self, category: Category) -> bool {
        self.allowed_categories
            .as_ref()
            .is_none_or(|allowed| allowed.contains(&category))
    }

    /// Whether a tool of `category` registered by `by` waits for approval: a client's tool
    /// that needs `host` always does.
    pub(crate) fn needs_approval(&self, category: Category, by: Registrant) -> bool {
        self.approval.contains(&category)
            || (category == Category::Host && matches!(by, Registrant::Client(_)))
    }
}

/// Who registers, replaces or removes a tool (docs/tools.md#registering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrant<'a> {
    /// The operator, at the host (`warden tool`): `[tools] approval` decides what waits, and
    /// any registered tool may be replaced or removed.
    Operator,
    /// A client of the HTTP API, by its token's name (`None` on a server without tokens): a
    /// tool of category `host` waits for the operator's approval whatever `approval` says,
    /// and only the tools this token registered may be replaced or removed.
    Client(Option<&'a str>),
}

/// One call of a tool.
#[derive(Debug)]
pub struct ToolCallRequest {
    /// The tool's name.
    pub tool: String,
    /// Its input (a JSON object matching the tool's input schema).
    pub input: Value,
    /// Who calls, as the history records it.
    pub origin: Origin,
    /// Cancels the call's execution from another thread.
    pub cancel: Option<Cancellation>,
}

/// What a tool call produced. A tool's failure (its program exited non-zero, hit a limit, a
/// file was missing) is a reply with `is_error`, never an `Err`.
#[derive(Debug, Clone, Serialize)]
pub struct ToolReply {
    /// The tool.
    pub tool: String,
    /// Whether the tool failed.
    pub is_error: bool,
    /// The output as text: what an agent reads.
    pub text: String,
    /// The output as JSON, for a tool whose output is JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub structured: Option<Value>,
    /// The execution the call ran as (absent for the `files` tool, which runs none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionResult>,
    /// Nothing ran: the call was refused after its input matched the schema (a value that
    /// would be read as an option, limits out of range, the code refused by the analysis or
    /// the mode policy). An error like a failure for the agent; counted as a refusal.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// From the call's arrival to its reply.
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
}

/// What [`crate::Engine::check_tool_call`] finds of a call before it runs; given back to
/// [`crate::Engine::call_checked`], which calls (or refuses) the call as it was checked.
#[derive(Debug)]
pub enum CallCheck {
    /// Nothing refuses it before it runs: it takes a place and a worker. Its tool.
    Runs(std::sync::Arc<RegisteredTool>),
    /// Refused before anything runs: [`crate::Engine::call_checked`] records the refusal and
    /// runs nothing, whatever the registry holds by then (a tool registered or replaced
    /// between the check and the call ran outside every admission: hunt mcp 1).
    Refused(CallRefusal),
}

impl CallCheck {
    /// The tool the call names, as the check found it (`None`: unknown to its caller).
    pub fn tool(&self) -> Option<&std::sync::Arc<RegisteredTool>> {
        match self {
            CallCheck::Runs(tool) => Some(tool),
            CallCheck::Refused(refusal) => refusal.tool.as_ref(),
        }
    }
}

/// Why a call is refused before anything runs.
#[derive(Debug)]
pub struct CallRefusal {
    /// The tool, if its caller sees one of that name.
    pub(crate) tool: Option<std::sync::Arc<RegisteredTool>>,
    pub(crate) reason: RefusalReason,
}

/// How a refused call is answered.
#[derive(Debug)]
pub(crate) enum RefusalReason {
    /// As an `Err`: an unknown tool, input the schema refuses, a tool awaiting approval or
    /// unavailable.
    Error(ToolCallError),
    /// As a reply with [`ToolReply::refused`]: input the schema takes that no call may have
    /// (a `run_code` call's limits above the operator's maxima).
    Input(String),
}

impl std::fmt::Display for CallRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            RefusalReason::Error(e) => e.fmt(f),
            RefusalReason::Input(message) => f.write_str(message),
        }
    }
}

/// A tool call that did not run the tool: its caller's mistake, the operator's refusal, or
/// warden's own failure ([`ToolCallError::is_caller_fault`]).
#[derive(Debug, thiserror::Error)]
pub enum ToolCallError {
    /// No tool of that name (the message quotes at most the name's first 64 bytes).
    #[error("no tool named {} (warden tool list shows them)", warden_core::tool::name_excerpt(.0))]
    Unknown(String),
    /// The input does not match the schema.
    #[error("invalid input for tool {tool:?}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Input {
        /// The tool.
        tool: String,
        /// What is wrong, by JSON pointer.
        errors: Vec<InputError>,
    },
    /// The tool awaits an operator's approval.
    #[error("tool {0:?} awaits an operator's approval (warden tool approve)")]
    Pending(String),
    /// The tool cannot run on this host or under this configuration.
    #[error("tool {tool:?} is unavailable: {reason}")]
    Unavailable {
        /// The tool.
        tool: String,
        /// Why.
        reason: String,
    },
    /// The tool is not called but run another way (an MCP server: `warden mcp wrap`).
    #[error("tool {tool:?} cannot be called: {reason}")]
    NotCallable {
        /// The tool.
        tool: String,
        /// Why, and how to run it.
        reason: String,
    },
    /// The engine refused or failed the execution.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The `files` tool failed on the host.
    #[error(transparent)]
    Files(FilesError),
}

impl ToolCallError {
    /// Whether the caller (or the operator's policy) rather than warden is at fault.
    pub fn is_caller_fault(&self) -> bool {
        match self {
            ToolCallError::Engine(e) => e.kind().is_caller_fault(),
            ToolCallError::Files(e) => !e.is_internal(),
            ToolCallError::Unavailable { .. } => false,
            _ => true,
        }
    }
}

/// `Duration` as whole milliseconds (`latency_ms` in JSON).
mod millis {
    use serde::Serializer;
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// What `warden tool wrap` makes a tool of: a host command (its absolute program first, then
/// the fixed arguments the operator chose), whose caller adds arguments and stdin.
#[derive(Debug, Clone, Default)]
pub struct WrapRequest {
    /// The tool's name.
    pub name: String,
    /// The command: an absolute program, then fixed arguments.
    pub command: Vec<String>,
    /// What it does; a sentence naming the command when absent.
    pub description: Option<String>,
    /// Its network policy (default `no_access`).
    pub network: Option<String>,
    /// Host paths it sees read-only beside the sandbox's base tree.
    pub read_only: Vec<PathBuf>,
    /// Its wall-time limit, as the limits take it (`30s`).
    pub wall_time: Option<String>,
    /// Its memory limit (`256MiB`).
    pub memory: Option<String>,
}

/// The tool file of a wrapped command (docs/tools.md#wrapping): input `args` (appended after
/// the fixed arguments; none may begin with `-`, so that a caller supplies operands and the
/// operator's fixed arguments are the only options) and `stdin`, plain-text output, category
/// `host`.
pub fn wrap_definition(wrap: &WrapRequest) -> String {
    let program = wrap.command.first().map(String::as_str).unwrap_or_default();
    let description = wrap.description.clone().unwrap_or_else(|| {
        format!(
            "Runs the host's {} in a sandbox with the arguments and standard input given{}.",
            wrap.command.join(" "),
            if wrap.command.len() > 1 {
                " after the fixed ones"
            } else {
                ""
            }
        )
    });
    let mut command: Vec<String> = vec![toml_string(program)];
    command.extend(
        wrap.command
            .iter()
            .skip(1)
            .map(|a| toml_string(&a.replace('{', "{{").replace('}', "}}"))),
    );
    command.push(toml_string("{args...}"));
    let read_only: Vec<String> = wrap
        .read_only
        .iter()
        .map(|p| toml_string(&p.to_string_lossy()))
        .collect();
    let mut text = format!(
        "# Made by `warden tool wrap` (docs/tools.md#wrapping).\n\
         name = {name}\n\
         description = {description}\n\
         category = \"host\"\n\n\
         [input]\n\
         type = \"object\"\n\
         additionalProperties = false\n\n\
         [input.properties.args]\n\
         type = \"array\"\n\
         description = \"Arguments after the fixed ones; none may begin with '-'.\"\n\
         maxItems = 256\n\
         items = {{ type = \"string\" }}\n\n\
         [input.properties.stdin]\n\
         type = \"string\"\n\
         description = \"Standard input.\"\n\n\
         [output]\n\
         format = \"text\"\n\n\
         [run]\n\
         command = [{command}]\n\
         stdin = \"stdin\"\n\
         network = {network}\n\
         read_only = [{read_only}]\n",
        name = toml_string(&wrap.name),
        description = toml_string(&description),
        command = command.join(", "),
        network = toml_string(wrap.network.as_deref().unwrap_or("no_access")),
        read_only = read_only.join(", "),
    );
    let limits: Vec<String> = [("wall_time", &wrap.wall_time), ("memory", &wrap.memory)]
        .into_iter()
        .filter_map(|(key, value)| {
            value
                .as_ref()
                .map(|v| format!("{key} = {}\n", toml_string(v)))
        })
        .collect();
    if !limits.is_empty() {
        text.push_str("\n[limits]\n");
        text.push_str(&limits.concat());
    }
    text
}

/// `s` as a TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::tool::{Runner, Tool, ToolOrigin};

    #[test]
    fn a_wrapped_command_is_a_valid_tool_file_that_keeps_its_fixed_arguments() {
        let text = wrap_definition(&WrapRequest {
            name: "sq".into(),
            command: vec![
                "/usr/bin/sqlite3".into(),
                "-json".into(),
                "{weird} \"quoted\"\\".into(),
            ],
            wall_time: Some("5s".into()),
            read_only: vec![PathBuf::from("/srv/data")],
            ..WrapRequest::default()
        });
        let tool = Tool::parse(&text, ToolOrigin::Registered).expect("valid");
        let Runner::Command(template) = &tool.runner else {
            panic!("a command: {text}");
        };
        let argv = template
            .expand(&serde_json::json!({"args": ["select 1"]}))
            .expect("expands");
        assert_eq!(
            argv,
            [
                "/usr/bin/sqlite3",
                "-json",
                "{weird} \"quoted\"\\",
                "select 1"
            ]
        );
        assert!(template
            .expand(&serde_json::json!({"args": ["-cmd"]}))
            .is_err());
        assert_eq!(tool.read_only, [PathBuf::from("/srv/data")]);
        assert_eq!(tool.stdin.as_deref(), Some("stdin"));
    }
}
