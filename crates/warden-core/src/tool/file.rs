//! One tool as data: `tools/<name>.toml` (embedded), an operator's directory, or a file
//! registered at run time. Deserialized with `deny_unknown_fields` on every table, then
//! validated into a [`Tool`]; the input schema is the JSON Schema subset of
//! [`super::schema`], written as TOML.
//!
//! ```toml
//! name = "word_count"              # [a-z][a-z0-9_]{0,63}
//! description = "Counts the words of a text."
//! category = "compute"             # read_only, compute, filesystem, network, shell, host
//! example = { text = "a b c" }     # optional; must validate against [input]
//!
//! [input]                          # top-level type "object"
//! type = "object"
//! required = ["text"]
//! [input.properties.text]
//! type = "string"
//!
//! [output]
//! format = "text"                  # text (default) or json
//!
//! [run]                            # exactly one of builtin, program, command, mcp
//! program = "word_count.py"        # beside the tool file
//! language = "python"              # program only; else detected from the extension
//! dependencies = []                # program only
//! stdin = "text"                   # program or command: this string property is the stdin
//! mode = "sandboxed"               # trusted, sandboxed (default), isolated, auto
//! network = "no_access"            # a network policy name (default no_access)
//! read_only = []                   # absolute host paths bound read-only
//! writable = false                 # a persistent writable workspace
//!
//! [limits]                         # as a language file's [limits]
//! wall_time = "5s"
//! ```

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::assessment::Category;
use super::schema::{InputError, JsonType, Schema, SchemaError};
use super::template::{CommandTemplate, TemplateError};
use crate::limits::LimitOverrides;
use crate::mode::{Mode, ModeRequest};
use crate::source_naming::NAME_MAX;

/// The largest input a tool accepts, serialized as compact JSON.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

/// The deepest nesting of arrays and objects a tool's input may have.
pub const MAX_INPUT_DEPTH: usize = 64;

const MAX_DESCRIPTION_CHARS: usize = 2000;

/// The longest tool name, in bytes (`[a-z][a-z0-9_]{0,63}`).
pub const MAX_NAME_LEN: usize = 64;

/// A name a caller gave for a tool, as a message may quote it: its first [`MAX_NAME_LEN`]
/// bytes (cut at a character boundary) in quotes, escaped, and how long it was when cut. A
/// caller's name may be of any length (a megabyte over MCP), and a message that echoed it
/// whole would send it back and log it.
pub fn name_excerpt(name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        return format!("{name:?}");
    }
    let mut cut = MAX_NAME_LEN;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{:?}... ({} bytes)", &name[..cut], name.len())
}

/// A tool implemented inside warden, selected by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    /// Runs code in any catalog language.
    RunCode,
    /// Runs Python code.
    Python,
    /// Runs a shell script.
    Shell,
    /// Reads and writes files of a persistent workspace.
    Files,
}

impl Builtin {
    /// The name used in tool files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Builtin::RunCode => "run_code",
            Builtin::Python => "python",
            Builtin::Shell => "shell",
            Builtin::Files => "files",
        }
    }
}

/// How a tool runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    /// Code inside warden.
    Builtin(Builtin),
    /// A program file beside the tool file, run in a sandbox.
    Program {
        /// Its file name (no directory).
        file: String,
        /// Its language id; `None` lets the engine detect it.
        language: Option<String>,
        /// Packages it needs.
        dependencies: Vec<String>,
    },
    /// A host command built from the input.
    Command(CommandTemplate),
    /// A stdio MCP server: its argv, absolute program first.
    Mcp(Vec<String>),
}

impl Runner {
    /// The key of `[run]` that chose this runner.
    pub const fn key(&self) -> &'static str {
        match self {
            Runner::Builtin(_) => "builtin",
            Runner::Program { .. } => "program",
            Runner::Command(_) => "command",
            Runner::Mcp(_) => "mcp",
        }
    }
}

/// What the tool's output is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// Plain text.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

/// Where a tool file came from, as the loader states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolOrigin {
    /// Embedded in the binary (`tools/`); only these may use a builtin.
    Embedded,
    /// The operator's tool directory.
    Operator,
    /// Registered at run time through the API.
    Registered,
}

impl ToolOrigin {
    /// The name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            ToolOrigin::Embedded => "embedded",
            ToolOrigin::Operator => "operator",
            ToolOrigin::Registered => "registered",
        }
    }
}

/// A validated tool.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name, unique among tools.
    pub name: String,
    /// What it does, for the model choosing tools.
    pub description: String,
    /// The category its file declares.
    pub category: Category,
    /// The schema of its input.
    pub input: Schema,
    /// What its output is.
    pub output: OutputFormat,
    /// How it runs.
    pub runner: Runner,
    /// The string property whose value is the stdin; without one, a program gets the whole
    /// input as JSON on its stdin.
    pub stdin: Option<String>,
    /// The isolation it asks for.
    pub mode: ModeRequest,
    /// The network policy name.
    pub network: String,
    /// Host paths bound read-only into its sandbox.
    pub read_only: Vec<PathBuf>,
    /// Whether it keeps a persistent writable workspace.
    pub writable: bool,
    /// Its limit overrides.
    pub limits: LimitOverrides,
    /// An example input, valid against the schema.
    pub example: Option<Value>,
    /// Where its file came from.
    pub origin: ToolOrigin,
}

/// A tool file that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolFileError {
    /// The file does not deserialize (syntax, unknown key, wrong type).
    #[error("{}{message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Syntax {
        /// What the parser said.
        message: String,
        /// The 1-based line, when known.
        line: Option<usize>,
    },
    /// The name is badly spelled.
    #[error("tool name {name:?} must be a-z first, then up to 63 of a-z 0-9 _")]
    BadName {
        /// The name given.
        name: String,
    },
    /// The file name and the tool name disagree.
    #[error("{file}: name {name:?} does not match the file name")]
    FileName {
        /// The file name.
        file: String,
        /// The name inside.
        name: String,
    },
    /// The description is empty or too long.
    #[error("{tool}: description must be 1 to {MAX_DESCRIPTION_CHARS} characters")]
    Description {
        /// The tool.
        tool: String,
    },
    /// `[input]` is not a usable schema.
    #[error("{tool}: [input]: {error}")]
    Schema {
        /// The tool.
        tool: String,
        /// What is wrong.
        error: SchemaError,
    },
    /// `[input]` does not describe an object.
    #[error("{tool}: [input] must have type = \"object\"")]
    InputNotObject {
        /// The tool.
        tool: String,
    },
    /// `example` does not validate.
    #[error("{tool}: example does not match [input]: {}", join(errors))]
    Example {
        /// The tool.
        tool: String,
        /// Why.
        errors: Vec<InputError>,
    },
    /// `example` is larger than a schema may be: it is shown with the tool.
    #[error(
        "{tool}: example is {bytes} bytes as JSON, more than {}",
        super::MAX_SCHEMA_BYTES
    )]
    ExampleTooLarge {
        /// The tool.
        tool: String,
        /// Its size.
        bytes: usize,
    },
    /// `[run] command` is not a usable template.
    #[error("{tool}: [run] command: {error}")]
    Template {
        /// The tool.
        tool: String,
        /// What is wrong.
        error: TemplateError,
    },
    /// `[run]` sets none or several of builtin, program, command, mcp.
    #[error("{tool}: [run] must set exactly one of builtin, program, command, mcp (found: {})",
            if found.is_empty() { "none".to_owned() } else { found.join(", ") })]
    Runner {
        /// The tool.
        tool: String,
        /// The runner keys set.
        found: Vec<&'static str>,
    },
    /// A builtin in a file that is not embedded.
    #[error("{tool}: [run] builtin = {builtin:?} is only allowed in embedded tools, not {}",
            origin.as_str())]
    BuiltinNotEmbedded {
        /// The tool.
        tool: String,
        /// The builtin named.
        builtin: &'static str,
        /// Where the file came from.
        origin: ToolOrigin,
    },
    /// A key of `[run]` that does not fit the runner.
    #[error("{tool}: [run] {key} is not allowed with {runner}")]
    NotForRunner {
        /// The tool.
        tool: String,
        /// The key.
        key: &'static str,
        /// The runner's key.
        runner: &'static str,
    },
    /// Some value of `[run]` is unusable.
    #[error("{tool}: [run] {key}: {problem}")]
    Run {
        /// The tool.
        tool: String,
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: String,
    },
}

fn join(errors: &[InputError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTool {
    name: String,
    description: String,
    category: Category,
    #[serde(default)]
    example: Option<Value>,
    input: Value,
    #[serde(default)]
    output: RawOutput,
    run: RawRun,
    #[serde(default)]
    limits: LimitOverrides,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    #[serde(default)]
    format: OutputFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    builtin: Option<Builtin>,
    program: Option<String>,
    command: Option<Vec<String>>,
    mcp: Option<Vec<String>>,
    language: Option<String>,
    stdin: Option<String>,
    mode: Option<String>,
    network: Option<String>,
    dependencies: Option<Vec<String>>,
    #[serde(default)]
    read_only: Vec<PathBuf>,
    #[serde(default)]
    writable: bool,
}

impl Tool {
    /// Parses and validates a tool file (TOML, or the embedded JSON form).
    pub fn parse(text: &str, origin: ToolOrigin) -> Result<Tool, ToolFileError> {
        let raw: RawTool = crate::data::from_str(text).map_err(|e| ToolFileError::Syntax {
            message: e.message,
            line: e.line,
        })?;
        check_name(&raw.name)?;
        let tool = raw.name.clone();
        let chars = raw.description.chars().count();
        if raw.description.trim().is_empty() || chars > MAX_DESCRIPTION_CHARS {
            return Err(ToolFileError::Description { tool });
        }
        let input = Schema::parse(&raw.input).map_err(|error| ToolFileError::Schema {
            tool: tool.clone(),
            error,
        })?;
        if input.types() != [JsonType::Object] {
            return Err(ToolFileError::InputNotObject { tool });
        }
        if let Some(example) = &raw.example {
            let bytes = serde_json::to_vec(example).map_or(usize::MAX, |v| v.len());
            if bytes > super::MAX_SCHEMA_BYTES {
                return Err(ToolFileError::ExampleTooLarge { tool, bytes });
            }
            input
                .validate(example)
                .map_err(|errors| ToolFileError::Example {
                    tool: tool.clone(),
                    errors,
                })?;
        }
        let run = raw.run;
        let checker = RunChecker { tool: &tool };
        let runner = checker.runner(&run, &input, origin)?;
        checker.program_keys(&run, &runner)?;
        checker.stdin(run.stdin.as_deref(), &runner, &input)?;
        checker.read_only(&run.read_only)?;
        let mode = match run.mode.as_deref() {
            None => ModeRequest::Exactly(Mode::Sandboxed),
            Some(mode) => mode
                .parse()
                .map_err(|problem| checker.run("mode", problem))?,
        };
        let network = run.network.unwrap_or_else(|| "no_access".to_owned());
        crate::network::check_name(&network).map_err(|p| checker.run("network", p))?;
        Ok(Tool {
            name: raw.name,
            description: raw.description,
            category: raw.category,
            input,
            output: raw.output.format,
            runner,
            stdin: run.stdin,
            mode,
            network,
            read_only: run.read_only,
            writable: run.writable,
            limits: raw.limits,
            example: raw.example,
            origin,
        })
    }

    /// Parses a tool file named `file` (`word_count.toml`), whose stem must be the tool's name.
    pub fn from_file(file: &str, text: &str, origin: ToolOrigin) -> Result<Tool, ToolFileError> {
        let tool = Tool::parse(text, origin)?;
        let stem = file.strip_suffix(".toml").unwrap_or(file);
        if stem != tool.name {
            return Err(ToolFileError::FileName {
                file: file.to_owned(),
                name: tool.name,
            });
        }
        Ok(tool)
    }

    /// Checks an input against the tool's schema.
    pub fn validate_input(&self, input: &Value) -> Result<(), Vec<InputError>> {
        self.input.validate(input)
    }

    /// Checks an input's size and nesting (bounded work, no recursion), then its schema.
    pub fn check_input(&self, raw: &Value) -> Result<(), Vec<InputError>> {
        let refuse = |message: String| {
            Err(vec![InputError {
                path: String::new(),
                message,
            }])
        };
        match measure(raw) {
            Measure::TooDeep => refuse(format!(
                "nested deeper than {MAX_INPUT_DEPTH} levels of arrays and objects"
            )),
            Measure::TooLarge => refuse(format!("larger than {MAX_INPUT_BYTES} bytes as JSON")),
            Measure::Fits => self.validate_input(raw),
        }
    }
}

enum Measure {
    Fits,
    TooLarge,
    TooDeep,
}

/// Measures the compact JSON size (`serde_json::to_string`) and stops at the first limit
/// passed, walking with an explicit stack so that a hostile nesting cannot exhaust the thread's.
fn measure(value: &Value) -> Measure {
    let mut size = 0usize;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > MAX_INPUT_DEPTH {
            return Measure::TooDeep;
        }
        size += match value {
            Value::Null | Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(n) => n.to_string().len(),
            Value::String(s) => json_string_len(s),
            Value::Array(items) => {
                stack.extend(items.iter().map(|v| (v, depth + 1)));
                2 + items.len().saturating_sub(1)
            }
            Value::Object(map) => {
                stack.extend(map.values().map(|v| (v, depth + 1)));
                let keys: usize = map.keys().map(|k| json_string_len(k) + 1).sum();
                2 + keys + map.len().saturating_sub(1)
            }
        };
        if size > MAX_INPUT_BYTES {
            return Measure::TooLarge;
        }
    }
    Measure::Fits
}

/// The length of a string as serde_json writes it: quoted, with `"`, `\` and control
/// characters escaped (`\n` and its kind in two bytes, the others as `\u00XX`).
fn json_string_len(s: &str) -> usize {
    let escapes: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0..=0x1f => 5,
            _ => 0,
        })
        .sum();
    s.len() + escapes + 2
}

fn check_name(name: &str) -> Result<(), ToolFileError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && name.len() <= MAX_NAME_LEN
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ToolFileError::BadName {
            name: name.to_owned(),
        })
    }
}

/// Checks the `[run]` table of one tool.
struct RunChecker<'a> {
    tool: &'a str,
}

impl RunChecker<'_> {
    fn run(&self, key: &'static str, problem: impl Into<String>) -> ToolFileError {
        ToolFileError::Run {
            tool: self.tool.to_owned(),
            key,
            problem: problem.into(),
        }
    }

    fn runner(
        &self,
        run: &RawRun,
        input: &Schema,
        origin: ToolOrigin,
    ) -> Result<Runner, ToolFileError> {
        let found: Vec<&'static str> = [
            ("builtin", run.builtin.is_some()),
            ("program", run.program.is_some()),
            ("command", run.command.is_some()),
            ("mcp", run.mcp.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if found.len() != 1 {
            return Err(ToolFileError::Runner {
                tool: self.tool.to_owned(),
                found,
            });
        }
        if let Some(builtin) = run.builtin {
            if origin != ToolOrigin::Embedded {
                return Err(ToolFileError::BuiltinNotEmbedded {
                    tool: self.tool.to_owned(),
                    builtin: builtin.as_str(),
                    origin,
                });
            }
            return Ok(Runner::Builtin(builtin));
        }
        if let Some(file) = &run.program {
            if file.is_empty() || file == "." || file == ".." || file.contains(['/', '\0']) {
                return Err(self.run("program", format!("{file:?} is not a plain file name")));
            }
            // The registry writes it beside the tool file, where a longer name failed
            // (ENAMETOOLONG): a 500 for the caller's mistake (hunt srv 3).
            if file.len() > NAME_MAX {
                return Err(self.run(
                    "program",
                    format!(
                        "{} is longer than a file name can be ({NAME_MAX} bytes)",
                        name_excerpt(file)
                    ),
                ));
            }
            return Ok(Runner::Program {
                file: file.clone(),
                language: run.language.clone(),
                dependencies: run.dependencies.clone().unwrap_or_default(),
            });
        }
        if let Some(argv) = &run.command {
            return CommandTemplate::parse(argv, input)
                .map(Runner::Command)
                .map_err(|error| ToolFileError::Template {
                    tool: self.tool.to_owned(),
                    error,
                });
        }
        let argv = run.mcp.clone().unwrap_or_default();
        let program = argv.first().map(Path::new);
        if !program.is_some_and(|p| p.is_absolute() && !has_parent(p)) {
            return Err(self.run("mcp", "the program must be an absolute path without `..`"));
        }
        if argv.iter().any(|a| a.contains('\0')) {
            return Err(self.run("mcp", "an argument contains a NUL byte"));
        }
        Ok(Runner::Mcp(argv))
    }

    /// `language` and `dependencies` belong to programs only.
    fn program_keys(&self, run: &RawRun, runner: &Runner) -> Result<(), ToolFileError> {
        let not_for = |key| ToolFileError::NotForRunner {
            tool: self.tool.to_owned(),
            key,
            runner: runner.key(),
        };
        let Runner::Program {
            language,
            dependencies,
            ..
        } = runner
        else {
            if run.language.is_some() {
                return Err(not_for("language"));
            }
            if run.dependencies.is_some() {
                return Err(not_for("dependencies"));
            }
            return Ok(());
        };
        if let Some(language) = language {
            crate::language::LanguageId::new(language)
                .map_err(|e| self.run("language", e.to_string()))?;
        }
        // A name starting with `-` would be an option to the package manager.
        if let Some(bad) = dependencies.iter().find(|d| {
            d.is_empty()
                || d.starts_with('-')
                || d.contains(|c: char| c.is_whitespace() || c == '\0')
        }) {
            return Err(self.run("dependencies", format!("{bad:?} is not a package name")));
        }
        Ok(())
    }

    fn stdin(
        &self,
        stdin: Option<&str>,
        runner: &Runner,
        input: &Schema,
    ) -> Result<(), ToolFileError> {
        let Some(name) = stdin else {
            return Ok(());
        };
        if !matches!(runner, Runner::Program { .. } | Runner::Command(_)) {
            return Err(ToolFileError::NotForRunner {
                tool: self.tool.to_owned(),
                key: "stdin",
                runner: runner.key(),
            });
        }
        match input.property(name) {
            Some(p) if p.types() == [JsonType::String] => Ok(()),
            Some(_) => Err(self.run("stdin", format!("property {name:?} is not of type string"))),
            None => Err(self.run("stdin", format!("{name:?} is not a property of [input]"))),
        }
    }

    fn read_only(&self, paths: &[PathBuf]) -> Result<(), ToolFileError> {
        for path in paths {
            let problem = if !path.is_absolute() {
                Some("is not absolute")
            } else if has_parent(path) {
                Some("contains `..`")
            } else if path.as_os_str().as_encoded_bytes().contains(&0) {
                Some("contains a NUL byte")
            } else if path.parent().is_none() {
                Some("is the whole host filesystem")
            } else if ["/proc", "/sys", "/dev"]
                .iter()
                .any(|k| path.starts_with(k))
            {
                Some("is under /proc, /sys or /dev")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(self.run("read_only", format!("{} {problem}", path.display())));
            }
        }
        Ok(())
    }
}

fn has_parent(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

// The tests of this module are in `tool.rs` (`tool::tests`), keeping this file under the size
// the style guide asks for.
