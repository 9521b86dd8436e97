//! One language as data: how to name its source, how to compile and run it, what it needs
//! mounted, its limit overrides and its smoke test. Read from `languages/<id>.toml`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::limits::LimitOverrides;
use crate::units::ByteSize;

/// A language id: lowercase ASCII letters, digits, `-`, `_`, `+`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LanguageId(String);

impl LanguageId {
    /// Checks the spelling of an id.
    pub fn new(id: &str) -> Result<Self, LanguageError> {
        let ok = !id.is_empty()
            && id.len() <= 32
            && id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_+".contains(c));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(LanguageError::BadId { id: id.to_owned() })
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LanguageId {
    type Error = LanguageError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        LanguageId::new(&s)
    }
}

impl From<LanguageId> for String {
    fn from(id: LanguageId) -> String {
        id.0
    }
}

impl fmt::Display for LanguageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How the entry file is named inside the workspace. A closed set: a language that needs a new
/// rule gets a new variant here, never a module of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceNaming {
    /// The file name the user gave, or `source_file` for inline code.
    #[default]
    Fixed,
    /// `<Class>.java`, after the public class of the code (or the class holding `main`);
    /// `{class}` expands to the class holding `main`, qualified by the code's package.
    JavaPublicClass,
}

/// A command template: absolute program path, then arguments with placeholders.
pub type ArgvTemplate = Vec<String>;

/// The placeholders a command template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "{source}",
    "{sources}",
    "{workdir}",
    "{args}",
    "{artifact}",
    "{class}",
    "{options}",
    "{memory_bytes}",
    "{memory_mib}",
    "{memory_mib_three_quarters}",
];

/// Placeholders that expand to the run's memory limit: only `[run] argv` takes them (a
/// compile command's would have to be part of the compile cache's key).
const MEMORY_PLACEHOLDERS: &[&str] = &[
    "{memory_bytes}",
    "{memory_mib}",
    "{memory_mib_three_quarters}",
];

/// Placeholders that expand to zero or more whole elements.
const LIST_PLACEHOLDERS: &[&str] = &["{args}", "{sources}", "{options}"];

/// A language file as written (`languages/<id>.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    /// Canonical id, also the file stem.
    pub id: LanguageId,
    /// Human name.
    pub name: String,
    /// Other names accepted by `--lang`.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// File extensions without the dot.
    #[serde(default)]
    pub extensions: Vec<String>,
    /// Interpreter names recognised in a `#!` line (`python3`, `env python3`).
    #[serde(default)]
    pub shebangs: Vec<String>,
    /// Name of the entry file inside the workspace.
    pub source_file: String,
    /// How the entry file is named.
    #[serde(default)]
    pub source_naming: SourceNaming,
    /// Command that prints the toolchain version.
    pub version: ArgvTemplate,
    /// Debian packages that provide the toolchain (installed by `scripts/setup.sh`, named in
    /// the error when the toolchain is missing).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Host paths the runtime needs, bound read-only beyond the base filesystem policy.
    #[serde(default)]
    pub mounts: Vec<PathBuf>,
    /// Environment of the program, on top of the sandbox's clean base environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The optional compile stage.
    #[serde(default)]
    pub compile: Option<CompileStage>,
    /// The run stage.
    pub run: RunStage,
    /// How the language's package manager installs a request's dependencies, if it can.
    #[serde(default)]
    pub dependencies: Option<crate::dependencies::Installer>,
    /// Limit overrides for programs in this language.
    #[serde(default)]
    pub limits: LimitOverrides,
    /// A program that must print `stdout` when run.
    pub smoke: SmokeTest,
    /// How to recognise the language's code when a request does not name it.
    #[serde(default)]
    pub detect: DetectRules,
}

/// How to compile a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileStage {
    /// The compiler command.
    pub argv: ArgvTemplate,
    /// Name of the file the compiler produces, inside the workspace (`{artifact}`).
    pub artifact: String,
    /// Limit overrides for the compiler (on top of the language's).
    #[serde(default)]
    pub limits: LimitOverrides,
    /// The compiler options a request may add, where `{options}` stands in `argv`: each an
    /// exact option (`-O0`) or a prefix ending in `*` (`-std=*`), whose rest must be non-empty
    /// and may only hold letters, digits and `_ + - . = :` (no paths, no `,`: `-W*` does not
    /// admit `-Wl,...`). Non-empty because a bare `-D`, `-U` or `-l` makes the compiler take
    /// the next argument as its value (`-l -o` links a library named `-o`).
    /// Empty: the language takes none.
    #[serde(default)]
    pub options: Vec<String>,
    /// The extensions (without the dot) by which the compiler takes the entry file as a
    /// source of this language; an entry file named otherwise (`prog.txt`, `prog`, a header
    /// `x.h`) is laid out as `<stem>.<the first of them>`, since gcc would hand it to the
    /// linker and `go build` take it for a package. Empty: the language's `extensions`.
    #[serde(default)]
    pub entry_extensions: Vec<String>,
    /// File names the compiler leaves out of the files it is given, `*` standing for any text
    /// at one end: `go build` skips `_*` and `*_test.go` (tests), and would answer only `no
    /// packages to build`. An entry so named is laid out as `source_file`. Empty: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_names: Vec<String>,
}

impl CompileStage {
    /// Whether the compiler leaves a file `name` out (see [`CompileStage::ignored_names`]).
    pub fn ignores(&self, name: &str) -> bool {
        self.ignored_names.iter().any(|pattern| {
            match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
                (Some(suffix), _) => name.ends_with(suffix),
                (_, Some(prefix)) => name.starts_with(prefix),
                _ => name == pattern,
            }
        })
    }

    /// Whether a request may add `option` (see [`CompileStage::options`]).
    pub fn allows(&self, option: &str) -> bool {
        self.options
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => option.strip_prefix(prefix).is_some_and(|rest| {
                    !rest.is_empty()
                        && rest
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_+-.=:".contains(c))
                }),
                None => option == pattern,
            })
    }
}

/// How to run a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunStage {
    /// The command; `{args}` expands to the program's arguments.
    pub argv: ArgvTemplate,
    /// Environment of the run stage only, on top of `[env]`; values may take the memory
    /// placeholders (`{memory_mib_three_quarters}` and its siblings), expanded with the run's
    /// memory limit (`expand_env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A smoke test: this code must print exactly `stdout`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeTest {
    /// The program.
    pub code: String,
    /// Its standard input.
    #[serde(default)]
    pub stdin: String,
    /// What it must print.
    pub stdout: String,
}

/// The `[detect]` section: how content detection (`crate::detect`) recognises the language.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectRules {
    /// Extensions owned by another language that files of this one also use (`h`, owned by C,
    /// for C++): for such a file the content decides between the owner and the sharers.
    #[serde(default)]
    pub shared_extensions: Vec<String>,
    /// Constructs that point to the language (or, with a negative weight, away from it).
    #[serde(default)]
    pub patterns: Vec<DetectPattern>,
}

/// One construct looked for in the code: plain text, no regular expressions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectPattern {
    /// The text, matched case-sensitively.
    pub text: String,
    /// Where in a line the text must sit.
    #[serde(default)]
    pub at: MatchAt,
    /// What one match adds to the language's score, -10 to 10 but not 0.
    pub weight: i32,
}

/// Where a pattern's text must sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchAt {
    /// Anywhere.
    #[default]
    Anywhere,
    /// Not glued to a letter, digit or `_` at an end that is itself one (`nil` does not match
    /// in `nile`).
    Word,
    /// At the start of a line, after its indentation.
    LineStart,
    /// At the end of a line, before trailing spaces.
    LineEnd,
    /// The whole line, indentation and trailing spaces aside.
    Line,
}

/// The largest weight of a detection pattern, either way.
pub const MAX_PATTERN_WEIGHT: i32 = 10;

/// A language file that cannot be used. Each names the file (its path, for an operator's
/// override) and where in it: the line of a syntax or type error, else the field
/// (`[run] argv`, `[detect] patterns`), as the configuration's errors do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LanguageError {
    /// The id is badly spelled.
    #[error("language id {id:?} must be 1-32 of a-z 0-9 - _ +")]
    BadId {
        /// The id given.
        id: String,
    },
    /// The TOML does not deserialize.
    #[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Parse {
        /// The file.
        file: String,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// The file name and the id disagree.
    #[error("{file}: id {id:?} does not match the file name")]
    FileName {
        /// The file.
        file: String,
        /// The id inside.
        id: String,
    },
    /// A command template is unusable.
    #[error("{file}: {field} {argv:?}: {problem}")]
    Command {
        /// The file.
        file: String,
        /// `[run] argv`, `[compile] argv` or `version`.
        field: &'static str,
        /// The template.
        argv: Vec<String>,
        /// What is wrong.
        problem: String,
    },
    /// A name, alias or extension is claimed twice.
    #[error("{file}: {what} {name:?} is also claimed by {first} ({first_file})")]
    Duplicate {
        /// The file of the second claimant.
        file: String,
        /// `id`, `alias` or `extension`.
        what: &'static str,
        /// The contested name.
        name: String,
        /// The first claimant's id.
        first: String,
        /// The first claimant's file.
        first_file: String,
    },
    /// Some other field is unusable.
    #[error("{file}: {field}: {problem}")]
    Invalid {
        /// The file.
        file: String,
        /// The field, as a path (`source_file`, `[compile] artifact`).
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl Language {
    /// Parses and validates one language file (TOML, or the embedded JSON form); `file` is
    /// its path as errors show it, whose file name must be `<id>.toml`.
    pub fn from_toml(file: &str, text: &str) -> Result<Self, LanguageError> {
        let lang: Language = crate::data::from_str(text).map_err(|e| LanguageError::Parse {
            file: file.to_owned(),
            line: e.line,
            message: e.message,
        })?;
        let name = std::path::Path::new(file)
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        if name.strip_suffix(".toml").unwrap_or(&name) != lang.id.as_str() {
            return Err(LanguageError::FileName {
                file: file.to_owned(),
                id: lang.id.to_string(),
            });
        }
        lang.validate(file)?;
        Ok(lang)
    }

    fn validate(&self, file: &str) -> Result<(), LanguageError> {
        let invalid = |field, problem: &str| LanguageError::Invalid {
            file: file.to_owned(),
            field,
            problem: problem.to_owned(),
        };
        check_argv(self, file, "version", &self.version)?;
        check_argv(self, file, "[run] argv", &self.run.argv)?;
        if self.run.argv.iter().any(|a| a == "{options}") {
            return Err(invalid(
                "[run] argv",
                "only the compile stage takes {options}",
            ));
        }
        for (field, argv) in std::iter::once(("version", &self.version))
            .chain(self.compile.as_ref().map(|c| ("[compile] argv", &c.argv)))
        {
            if let Some(p) = MEMORY_PLACEHOLDERS
                .iter()
                .find(|p| argv.iter().any(|a| a.contains(*p)))
            {
                return Err(invalid(
                    field,
                    &format!("only [run] argv takes {p} (the run's memory limit)"),
                ));
            }
        }
        if let Some(compile) = &self.compile {
            check_argv(self, file, "[compile] argv", &compile.argv)?;
            check_file_name(&compile.artifact).map_err(|p| invalid("[compile] artifact", &p))?;
            let takes = compile.argv.iter().any(|a| a == "{options}");
            if takes == compile.options.is_empty() {
                return Err(invalid(
                    "[compile] options",
                    "they and {options} in [compile] argv go together: both or neither",
                ));
            }
            if let Some(ext) = compile
                .entry_extensions
                .iter()
                .find(|e| e.is_empty() || e.contains(['.', '/', '\\', '\0']))
            {
                return Err(invalid(
                    "[compile] entry_extensions",
                    &format!("{ext:?} must be a plain extension without the dot"),
                ));
            }
            if let Some(pattern) = compile.ignored_names.iter().find(|p| {
                let inner = p
                    .strip_prefix('*')
                    .or_else(|| p.strip_suffix('*'))
                    .unwrap_or(p);
                inner.is_empty() || inner.contains(['*', '/', '\\', '\0'])
            }) {
                return Err(invalid(
                    "[compile] ignored_names",
                    &format!("{pattern:?} must be a file name, with at most one `*` at one end"),
                ));
            }
            if compile.ignores(&self.source_file) {
                return Err(invalid(
                    "[compile] ignored_names",
                    &format!("source_file {:?} is one of them", self.source_file),
                ));
            }
        } else if self.run.argv.iter().any(|a| a.contains("{artifact}")) {
            return Err(invalid(
                "[run] argv",
                "{artifact} is used but there is no compile stage",
            ));
        }
        check_file_name(&self.source_file).map_err(|p| invalid("source_file", &p))?;
        if let Some(problem) = self.dependencies.as_ref().and_then(|d| d.problem()) {
            return Err(invalid("[dependencies]", &problem));
        }
        self.check_detect(file)?;
        if let Some(path) = self.mounts.iter().find(|p| !p.is_absolute()) {
            return Err(invalid(
                "mounts",
                &format!("{} is not absolute", path.display()),
            ));
        }
        // The workspace and /tmp are the sandbox's own: a bind there was hidden under them in
        // `sandboxed` and showed the host's directory inside the writable /work in
        // `isolated` (hunt iso).
        if let Some(path) = self.mounts.iter().find(|p| {
            p.as_path() == std::path::Path::new("/")
                || p.starts_with("/work")
                || p.starts_with("/tmp")
        }) {
            return Err(invalid(
                "mounts",
                &format!(
                    "{} is the sandbox's own (/, /work and /tmp and below are not bound)",
                    path.display()
                ),
            ));
        }
        if let Some(ext) = self
            .extensions
            .iter()
            .find(|e| e.starts_with('.') || e.is_empty())
        {
            return Err(invalid(
                "extensions",
                &format!("{ext:?} must be given without the dot"),
            ));
        }
        for (field, env) in [("[env]", &self.env), ("[run] env", &self.run.env)] {
            if let Some(key) = env
                .keys()
                .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
            {
                return Err(invalid(
                    field,
                    &format!("environment name {key:?} is not valid"),
                ));
            }
            if let Some(value) = env.values().find(|v| v.contains('\0')) {
                return Err(invalid(
                    field,
                    &format!("environment value {value:?} holds a NUL byte"),
                ));
            }
        }
        if let Some((key, p)) = self.run.env.iter().find_map(|(k, v)| {
            PLACEHOLDERS
                .iter()
                .find(|p| v.contains(*p) && !MEMORY_PLACEHOLDERS.contains(p))
                .map(|p| (k, p))
        }) {
            return Err(invalid(
                "[run] env",
                &format!(
                    "{key} takes {p}: an environment value takes only the memory placeholders"
                ),
            ));
        }
        if let Some((key, p)) = self.env.iter().find_map(|(k, v)| {
            MEMORY_PLACEHOLDERS
                .iter()
                .find(|p| v.contains(*p))
                .map(|p| (k, p))
        }) {
            return Err(invalid(
                "[env]",
                &format!(
                    "{key} takes {p}: only [run] env and [run] argv take the run's memory limit"
                ),
            ));
        }
        Ok(())
    }

    fn check_detect(&self, file: &str) -> Result<(), LanguageError> {
        let invalid = |field, problem: String| LanguageError::Invalid {
            file: file.to_owned(),
            field,
            problem,
        };
        for ext in &self.detect.shared_extensions {
            if ext.is_empty() || ext.starts_with('.') {
                return Err(invalid(
                    "[detect] shared_extensions",
                    format!("{ext:?} must be given without the dot"),
                ));
            }
            if self.extensions.contains(ext) {
                return Err(invalid(
                    "[detect] shared_extensions",
                    format!("{ext:?} is both owned and shared (it is in extensions)"),
                ));
            }
        }
        for pattern in &self.detect.patterns {
            if let Some(problem) = pattern_problem(pattern) {
                return Err(invalid(
                    "[detect] patterns",
                    format!("{:?}: {problem}", pattern.text),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a command template of `lang`: `field` names it in the error.
fn check_argv(
    lang: &Language,
    file: &str,
    field: &'static str,
    argv: &[String],
) -> Result<(), LanguageError> {
    let problem = |p: &str| LanguageError::Command {
        file: file.to_owned(),
        field,
        argv: argv.to_vec(),
        problem: p.to_owned(),
    };
    let program = argv.first().ok_or_else(|| problem("is empty"))?;
    let runs_artifact = program == "{artifact}" && lang.compile.is_some() && field == "[run] argv";
    if !program.starts_with('/') && !runs_artifact {
        return Err(problem(
            "the program must be an absolute path (or {artifact} in run)",
        ));
    }
    for arg in argv {
        let mut rest = arg.as_str();
        while let Some(start) = rest.find('{') {
            let end = rest[start..]
                .find('}')
                .ok_or_else(|| problem("has an unclosed {"))?;
            let placeholder = &rest[start..start + end + 1];
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(problem(&format!("unknown placeholder {placeholder}")));
            }
            rest = &rest[start + end + 1..];
        }
    }
    for list in LIST_PLACEHOLDERS {
        if argv.iter().any(|a| a.contains(list) && a != list) {
            return Err(problem(&format!("{list} must stand alone as one element")));
        }
    }
    Ok(())
}

/// Why a detection pattern could never match or would weigh nothing, if it is unusable.
fn pattern_problem(pattern: &DetectPattern) -> Option<&'static str> {
    let text = pattern.text.as_str();
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    if text.is_empty() || text.len() > 100 {
        Some("the text must be 1-100 bytes")
    } else if text.contains(['\n', '\r']) {
        Some("the text must fit on one line")
    } else if pattern.weight == 0 || pattern.weight.abs() > MAX_PATTERN_WEIGHT {
        Some("the weight must be -10 to 10 and not 0")
    } else if match pattern.at {
        MatchAt::Anywhere | MatchAt::Word => false,
        MatchAt::LineStart => text.starts_with(char::is_whitespace),
        MatchAt::LineEnd => text.ends_with(char::is_whitespace),
        MatchAt::Line => text.trim() != text,
    } {
        Some("the text has spaces where the line is trimmed, so it never matches")
    } else if pattern.at == MatchAt::Word
        && !ident(text.chars().next())
        && !ident(text.chars().next_back())
    {
        Some("a word pattern needs a letter, digit or _ at one end")
    } else {
        None
    }
}

/// Why `name` is not a plain file name, if it is not.
fn check_file_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.contains('/')
        && name != "."
        && name != ".."
        && !name.contains('\0');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a plain file name"))
    }
}

/// Values substituted into a command template.
#[derive(Debug, Clone, Copy)]
pub struct CommandValues<'a> {
    /// Absolute path of the entry file inside the sandbox.
    pub source: &'a str,
    /// Absolute paths of every source file of the program, entry first.
    pub sources: &'a [String],
    /// The class to run, package-qualified (`SourceNaming::JavaPublicClass`), else empty.
    pub class: &'a str,
    /// The workspace directory inside the sandbox.
    pub workdir: &'a str,
    /// Absolute path of the compiled artifact inside the sandbox.
    pub artifact: &'a str,
    /// The program's own arguments.
    pub args: &'a [String],
    /// The compiler options the request added (`{options}`).
    pub options: &'a [String],
    /// The memory limit of the job, in bytes (`{memory_bytes}`, `{memory_mib}`,
    /// `{memory_mib_three_quarters}`).
    pub memory: u64,
}

/// Expands a template: `{args}` and `{sources}` become zero or more elements, the others are
/// substituted. The memory limit is given in MiB rounded down, and three quarters of it, at
/// least 1.
pub fn expand_argv(template: &[String], values: &CommandValues<'_>) -> Vec<String> {
    let memory = memory_values(values.memory);
    let mut argv = Vec::with_capacity(template.len() + values.args.len());
    for arg in template {
        match arg.as_str() {
            "{args}" => argv.extend(values.args.iter().cloned()),
            "{sources}" => argv.extend(values.sources.iter().cloned()),
            "{options}" => argv.extend(values.options.iter().cloned()),
            _ => {
                // The numbers first, so that no path or class substituted after is read again.
                let arg = expand_memory(arg, &memory);
                argv.push(
                    arg.replace("{source}", values.source)
                        .replace("{workdir}", values.workdir)
                        .replace("{artifact}", values.artifact)
                        .replace("{class}", values.class),
                );
            }
        }
    }
    argv
}

/// `[run] env` with the memory placeholders of its values expanded as `expand_argv` does.
pub fn expand_env(template: &BTreeMap<String, String>, memory: u64) -> Vec<(String, String)> {
    let memory = memory_values(memory);
    template
        .iter()
        .map(|(key, value)| (key.clone(), expand_memory(value, &memory)))
        .collect()
}

/// The memory placeholders' values for a limit of `memory` bytes: in MiB rounded down, and
/// three quarters of it, at least 1.
fn memory_values(memory: u64) -> [(&'static str, String); 3] {
    let mib = memory / ByteSize::MIB;
    [
        ("{memory_bytes}", memory.to_string()),
        ("{memory_mib}", mib.max(1).to_string()),
        (
            "{memory_mib_three_quarters}",
            (mib.saturating_mul(3) / 4).max(1).to_string(),
        ),
    ]
}

fn expand_memory(text: &str, memory: &[(&str, String); 3]) -> String {
    memory
        .iter()
        .fold(text.to_owned(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
id = "toy"
name = "Toy"
source_file = "main.toy"
version = ["/usr/bin/toy", "--version"]
[run]
argv = ["/usr/bin/toy", "{source}", "{args}"]
[smoke]
code = "say hi"
stdout = "hi\n"
"#;

    #[test]
    fn a_minimal_file_parses() {
        let lang = Language::from_toml("toy.toml", MINIMAL).expect("valid");
        assert_eq!(lang.id.as_str(), "toy");
        assert!(lang.compile.is_none());
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            (
                MINIMAL.replace("\"/usr/bin/toy\", \"{source}\"", "\"toy\", \"{source}\""),
                "absolute",
            ),
            (
                MINIMAL.replace("{source}\", \"{args}", "{sauce}\", \"{args}"),
                "unknown placeholder {sauce}",
            ),
            (
                MINIMAL.replace("\"{args}\"]", "\"--{args}\"]"),
                "stand alone",
            ),
            (
                MINIMAL.replace("main.toy", "../main.toy"),
                "plain file name",
            ),
            (format!("{MINIMAL}\ncolour = \"red\""), "unknown field"),
        ];
        let compiled = |ignored: &str| {
            MINIMAL.replace(
                "[run]",
                &format!(
                    "[compile]\nargv = [\"/usr/bin/toyc\", \"{{source}}\"]\nartifact = \"a\"\n\
                     ignored_names = [{ignored}]\n[run]"
                ),
            )
        };
        let cases = cases.into_iter().chain([
            (compiled("\"*\""), "at most one `*` at one end"),
            (compiled("\"a*b*\""), "at most one `*` at one end"),
            (compiled("\"*/x\""), "at most one `*` at one end"),
            (
                compiled("\"*.toy\""),
                "source_file \"main.toy\" is one of them",
            ),
        ]);
        for (text, expected) in cases {
            let err = Language::from_toml("toy.toml", &text).expect_err(expected);
            assert!(
                err.to_string().contains(expected),
                "{err} should mention {expected}"
            );
        }
        let err = Language::from_toml("other.toml", MINIMAL).expect_err("name mismatch");
        assert!(matches!(err, LanguageError::FileName { .. }));
    }

    #[test]
    fn detect_section_mistakes_are_named() {
        let with = |section: &str| format!("{MINIMAL}\n[detect]\n{section}\n");
        let lang = Language::from_toml(
            "toy.toml",
            &with("shared_extensions = [\"h\"]\npatterns = [{ text = \"say\", at = \"word\", weight = 3 }]"),
        )
        .expect("valid");
        assert_eq!(lang.detect.patterns[0].at, MatchAt::Word);
        let cases = [
            ("patterns = [{ text = \"\", weight = 1 }]", "1-100 bytes"),
            ("patterns = [{ text = \"a\\nb\", weight = 1 }]", "one line"),
            ("patterns = [{ text = \"say\", weight = 0 }]", "not 0"),
            ("patterns = [{ text = \"say\", weight = 11 }]", "-10 to 10"),
            (
                "patterns = [{ text = \" say\", at = \"line_start\", weight = 1 }]",
                "never matches",
            ),
            (
                "patterns = [{ text = \"end \", at = \"line\", weight = 1 }]",
                "never matches",
            ),
            (
                "patterns = [{ text = \"<-\", at = \"word\", weight = 1 }]",
                "letter, digit or _",
            ),
            (
                "patterns = [{ text = \"x\", at = \"middle\", weight = 1 }]",
                "unknown variant",
            ),
            (
                "patterns = [{ text = \"x\", weight = 1, regex = true }]",
                "unknown field",
            ),
            ("shared_extensions = [\".h\"]", "without the dot"),
        ];
        for (section, expected) in cases {
            let err = Language::from_toml("toy.toml", &with(section)).expect_err(expected);
            assert!(
                err.to_string().contains(expected),
                "{err} should mention {expected}"
            );
        }
        let owned = with("shared_extensions = [\"toy\"]")
            .replace("source_file", "extensions = [\"toy\"]\nsource_file");
        let err = Language::from_toml("toy.toml", &owned).expect_err("owned and shared");
        assert!(err.to_string().contains("both owned and shared"), "{err}");
    }

    #[test]
    fn ignored_names_match_at_their_star() {
        let stage = |ignored: &[&str]| CompileStage {
            argv: ArgvTemplate::default(),
            artifact: "main".into(),
            limits: LimitOverrides::default(),
            options: Vec::new(),
            entry_extensions: Vec::new(),
            ignored_names: ignored.iter().map(|&s| s.to_owned()).collect(),
        };
        let go = stage(&["_*", "*_test.go"]);
        for (name, ignored) in [
            ("sol_test.go", true),
            ("_sol.go", true),
            ("sol.go", false),
            ("test.go", false),
            ("sol_test.go.txt", false),
        ] {
            assert_eq!(go.ignores(name), ignored, "{name}");
        }
        assert!(stage(&["exact.c"]).ignores("exact.c"));
        assert!(!stage(&[]).ignores("_x"));
    }

    #[test]
    fn compiler_options_are_admitted_by_their_patterns_only() {
        let compiled = |options: &str, argv: &str| {
            MINIMAL.replace(
                "[run]",
                &format!(
                    "[compile]\nargv = {argv}\nartifact = \"main\"\noptions = {options}\n[run]"
                ),
            )
        };
        let argv = r#"["/usr/bin/toyc", "{options}", "-o", "{artifact}", "{sources}"]"#;
        let lang = Language::from_toml("toy.toml", &compiled(r#"["-O0", "-std=*", "-W*"]"#, argv))
            .expect("valid");
        let stage = lang.compile.as_ref().expect("compiled");
        for ok in ["-O0", "-std=c++17", "-Wall", "-Wno-unused"] {
            assert!(stage.allows(ok), "{ok}");
        }
        for refused in [
            "-O2",
            "-O0 ",
            "-std=../x",
            "-Wl,--plugin=x.so",
            "-Wa,x",
            "-W/x",
            "-fplugin=x",
            "",
            // A bare prefix: the compiler would take the next argument as its value.
            "-std=",
            "-W",
        ] {
            assert!(!stage.allows(refused), "{refused}");
        }
        let values = CommandValues {
            source: "/work/main.toy",
            sources: &["/work/main.toy".to_owned()],
            class: "",
            workdir: "/work",
            artifact: "/work/main",
            args: &[],
            options: &["-O0".to_owned(), "-Wall".to_owned()],
            memory: 0,
        };
        let stage_argv = &lang.compile.as_ref().expect("compiled").argv;
        assert_eq!(
            expand_argv(stage_argv, &values),
            [
                "/usr/bin/toyc",
                "-O0",
                "-Wall",
                "-o",
                "/work/main",
                "/work/main.toy"
            ]
        );
        let mistakes = [
            (compiled("[]", argv), "both or neither"),
            (
                compiled(
                    r#"["-O0"]"#,
                    r#"["/usr/bin/toyc", "-o", "{artifact}", "{sources}"]"#,
                ),
                "both or neither",
            ),
            (
                compiled(
                    r#"["-O0"]"#,
                    r#"["/usr/bin/toyc", "x{options}", "{sources}"]"#,
                ),
                "must stand alone",
            ),
            (
                MINIMAL.replace("\"{args}\"]", "\"{options}\"]"),
                "only the compile stage",
            ),
        ];
        for (text, expected) in mistakes {
            let err = Language::from_toml("toy.toml", &text).expect_err(expected);
            assert!(
                err.to_string().contains(expected),
                "{err} should mention {expected}"
            );
        }
    }

    #[test]
    fn args_expand_to_zero_or_more_elements() {
        let template: Vec<String> = ["/bin/x", "{source}", "{args}", "--out={artifact}"]
            .map(String::from)
            .to_vec();
        let args = vec!["a b".to_owned(), "c".to_owned()];
        let sources = vec!["/work/main.x".to_owned(), "/work/util.x".to_owned()];
        let values = CommandValues {
            source: "/work/main.x",
            sources: &sources,
            class: "",
            workdir: "/work",
            artifact: "/work/main",
            args: &args,
            options: &[],
            memory: 0,
        };
        assert_eq!(
            expand_argv(&template, &values),
            ["/bin/x", "/work/main.x", "a b", "c", "--out=/work/main"]
        );
        let none = CommandValues {
            args: &[],
            ..values
        };
        assert_eq!(expand_argv(&template, &none).len(), 3);
    }

    #[test]
    fn the_memory_limit_expands_in_bytes_and_mib() {
        let template: Vec<String> = [
            "/bin/x",
            "-XX:MaxRAM={memory_bytes}",
            "--old={memory_mib_three_quarters}",
            "{memory_mib}",
            "{source}",
        ]
        .map(String::from)
        .to_vec();
        let values = CommandValues {
            source: "/work/{memory_mib}.x",
            sources: &[],
            class: "",
            workdir: "/work",
            artifact: "",
            args: &[],
            options: &[],
            memory: 96 * ByteSize::MIB + 1,
        };
        assert_eq!(
            expand_argv(&template, &values),
            [
                "/bin/x",
                "-XX:MaxRAM=100663297",
                "--old=72",
                "96",
                // A value substituted is not read again for placeholders.
                "/work/{memory_mib}.x",
            ]
        );
        // Never 0, which a runtime could take for "no limit".
        let tiny = CommandValues {
            memory: ByteSize::MIB + 1,
            ..values
        };
        assert_eq!(expand_argv(&template, &tiny)[2..4], ["--old=1", "1"]);
        let lang = Language::from_toml(
            "toy.toml",
            &MINIMAL.replace(
                "\"{source}\", \"{args}\"",
                "\"--heap={memory_mib}\", \"{source}\"",
            ),
        )
        .expect("[run] argv takes the memory limit");
        assert_eq!(lang.run.argv[1], "--heap={memory_mib}");
        let compiled = MINIMAL.replace(
            "[run]",
            "[compile]\nargv = [\"/usr/bin/toyc\", \"-m{memory_bytes}\", \"{source}\"]\n\
             artifact = \"a\"\n[run]",
        );
        let versioned =
            MINIMAL.replace("\"--version\"", "\"--version={memory_mib_three_quarters}\"");
        for (text, expected) in [(compiled, "[compile] argv"), (versioned, "version")] {
            let err = Language::from_toml("toy.toml", &text).expect_err(expected);
            let err = err.to_string();
            assert!(
                err.contains(expected) && err.contains("only [run] argv takes {memory_"),
                "{err}"
            );
        }
    }

    /// Hunt iso: a bind under /work was hidden by the workspace in `sandboxed` and showed the
    /// host's directory inside the writable /work in `isolated`.
    #[test]
    fn mounts_in_the_sandboxes_own_places_are_refused() {
        for path in ["/", "/work", "/work/lib", "/tmp", "/tmp/x"] {
            let text = format!("mounts = [{path:?}]\n{MINIMAL}");
            let err = Language::from_toml("toy.toml", &text).expect_err(path);
            assert!(
                err.to_string().contains("the sandbox's own"),
                "{path}: {err}"
            );
        }
        for path in ["/workshop", "/usr/lib/jvm", "/etc/java-17-openjdk"] {
            let text = format!("mounts = [{path:?}]\n{MINIMAL}");
            Language::from_toml("toy.toml", &text).expect(path);
        }
    }

    #[test]
    fn run_env_takes_the_memory_placeholders_and_env_does_not() {
        let run_env = MINIMAL.replace(
            "[smoke]",
            "env = { TOYMEM = \"{memory_mib_three_quarters}MiB\", TOYMODE = \"fast\" }\n[smoke]",
        );
        let lang = Language::from_toml("toy.toml", &run_env).expect("[run] env is valid");
        assert_eq!(
            expand_env(&lang.run.env, 256 * ByteSize::MIB),
            [
                ("TOYMEM".to_owned(), "192MiB".to_owned()),
                ("TOYMODE".to_owned(), "fast".to_owned()),
            ]
        );
        assert_eq!(expand_env(&lang.run.env, 1)[0].1, "1MiB");
        let pathed = run_env.replace("fast", "{workdir}");
        let global = format!("{MINIMAL}[env]\nTOYMEM = \"{{memory_mib}}\"\n");
        let named = run_env.replace("TOYMODE", "\"TOY=MODE\"");
        for (text, expected) in [
            (pathed, "only the memory placeholders"),
            (global, "only [run] env and [run] argv take"),
            (named, "is not valid"),
        ] {
            let err = Language::from_toml("toy.toml", &text).expect_err(expected);
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[test]
    fn a_dependencies_section_is_validated() {
        let section = "[dependencies]\nargv = [\"/usr/bin/toy-get\", \"{deps}\", \"{packages}\"]\n\
                       manifest = \"requirements_txt\"\nenv = { TOYPATH = \"{deps}\" }\n";
        let lang = Language::from_toml("toy.toml", &format!("{MINIMAL}{section}")).expect("valid");
        let installer = lang.dependencies.expect("an installer");
        assert_eq!(installer.env["TOYPATH"], "{deps}");
        let bad = section.replace("\"{deps}\", ", "");
        let err =
            Language::from_toml("toy.toml", &format!("{MINIMAL}{bad}")).expect_err("no {deps}");
        assert!(err.to_string().contains("[dependencies]"), "{err}");
        let unknown = format!("{MINIMAL}{section}shell = true\n");
        assert!(
            Language::from_toml("toy.toml", &unknown).is_err(),
            "unknown keys are refused"
        );
    }
}
