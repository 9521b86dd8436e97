//! The tool model (issue 11, "tool registry"): a tool is a TOML file naming its input schema,
//! how it runs (a builtin, a program file beside it, a wrapped host command, or a stdio MCP
//! server), its sandbox (mode, network policy, read-only paths, limits) and the risk category
//! it declares. [`assess`] computes the category it actually needs and refuses a file that
//! understates it.
//!
//! Pure: this module parses text it is given and its embedded `tools/` directory; finding,
//! storing and running tools is the engine's.
//!
//! - [`schema`](Schema): the JSON Schema subset of tool inputs.
//! - [`template`](CommandTemplate): the argv template of a wrapped command.
//! - [`file`](Tool): the tool file.
//! - [`assessment`](Assessment): categories and the assessment.

mod assessment;
mod file;
mod schema;
mod template;

pub use assessment::{assess, Assessment, Category, Implies, ProgramAnalysis};
pub use file::{
    name_excerpt, Builtin, OutputFormat, Runner, Tool, ToolFileError, ToolOrigin, MAX_INPUT_BYTES,
    MAX_INPUT_DEPTH, MAX_NAME_LEN,
};
pub use schema::{
    InputError, JsonType, Schema, SchemaError, MAX_DEPTH, MAX_ERRORS, MAX_PATTERN_PROGRAM,
    MAX_PATTERN_WORK, MAX_SCHEMA_BYTES, MAX_SCHEMA_STRING_CHARS,
};
pub use template::{CommandTemplate, TemplateError};

use crate::embedded::{TOOL_FILES, TOOL_SOURCES};

/// The embedded tool files (`tools/*.toml`): (file name, contents as JSON), for
/// [`Tool::from_file`] with [`ToolOrigin::Embedded`].
pub fn embedded_files() -> impl Iterator<Item = (&'static str, &'static str)> {
    TOOL_FILES.iter().copied()
}

/// An embedded file of `tools/` other than a tool file (a program source), by file name.
pub fn embedded_source(name: &str) -> Option<&'static str> {
    TOOL_SOURCES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    //! The tests of `file.rs`, here to keep that file within the size the style guide asks.

    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    const MINIMAL: &str = r#"
name = "word_count"
description = "Counts the words of a text."
category = "compute"
example = { text = "a b c" }

[input]
type = "object"
required = ["text"]
[input.properties.text]
type = "string"
maxLength = 100000

[run]
program = "word_count.py"
stdin = "text"
"#;

    fn parse(text: &str) -> Result<Tool, ToolFileError> {
        Tool::parse(text, ToolOrigin::Registered)
    }

    fn with_run(run: &str) -> String {
        MINIMAL.replace("program = \"word_count.py\"\nstdin = \"text\"", run)
    }

    #[test]
    fn a_minimal_file_parses_with_its_defaults() {
        let tool = parse(MINIMAL).expect("valid");
        assert_eq!(tool.name, "word_count");
        assert_eq!(tool.category, Category::Compute);
        assert_eq!(tool.output, OutputFormat::Text);
        assert_eq!(tool.network, "no_access");
        assert_eq!(tool.mode, "sandboxed".parse().expect("a mode"));
        assert_eq!(tool.stdin.as_deref(), Some("text"));
        assert_eq!(tool.example, Some(json!({"text": "a b c"})));
        assert!(
            matches!(&tool.runner, Runner::Program { file, language: None, .. }
            if file == "word_count.py")
        );
        assert!(tool.input.is_required("text"));
        assert_eq!(
            tool.input.to_json()["properties"]["text"]["maxLength"],
            100000
        );
    }

    #[test]
    fn every_key_is_read() {
        let text = r#"
name = "grep_files"
description = "Searches."
category = "host"
[input]
type = "object"
properties = { pattern = { type = "string" }, files = { type = "array", items = { type = "string" } } }
[output]
format = "json"
[run]
command = ["/usr/bin/grep", "-e", "{pattern}", "--", "{files...}"]
mode = "auto"
network = "limited_access"
read_only = ["/srv/data"]
writable = true
[limits]
wall_time = "5s"
memory = "64MiB"
"#;
        let tool = parse(text).expect("valid");
        assert_eq!(tool.output, OutputFormat::Json);
        assert_eq!(tool.read_only, [PathBuf::from("/srv/data")]);
        assert!(tool.writable);
        assert_eq!(
            tool.limits.wall_time,
            Some(std::time::Duration::from_secs(5))
        );
        let Runner::Command(template) = &tool.runner else {
            panic!("a command")
        };
        let argv = template
            .expand(&json!({"pattern": "x", "files": ["-a"]}))
            .expect("expands");
        assert_eq!(argv.len(), 5);
        let mcp = with_run("mcp = [\"/usr/bin/python3\", \"/srv/server.py\"]");
        assert!(matches!(parse(&mcp).expect("valid").runner, Runner::Mcp(_)));
        let json = serde_json::to_string(&toml::from_str::<toml::Value>(MINIMAL).expect("toml"))
            .expect("json");
        assert_eq!(
            parse(&json),
            parse(MINIMAL),
            "the embedded JSON form reads alike"
        );
    }

    #[test]
    fn builtins_are_for_embedded_files_only() {
        let text = with_run("builtin = \"files\"");
        let tool = Tool::parse(&text, ToolOrigin::Embedded).expect("embedded");
        assert_eq!(tool.runner, Runner::Builtin(Builtin::Files));
        for origin in [ToolOrigin::Operator, ToolOrigin::Registered] {
            let err = Tool::parse(&text, origin).expect_err("not embedded");
            assert!(
                matches!(err, ToolFileError::BuiltinNotEmbedded { .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn every_mistake_is_named() {
        let cases: Vec<(String, &str)> = vec![
            (
                format!("{MINIMAL}colour = 1"),
                "line 17: unknown field `colour`",
            ),
            (
                format!("colour = 1{MINIMAL}"),
                "line 1: unknown field `colour`",
            ),
            (
                MINIMAL.replace("maxLength", "maxLenght"),
                "unknown keyword \"maxLenght\"",
            ),
            (
                MINIMAL.replace("[run]", "[run]\nshell = true"),
                "unknown field `shell`",
            ),
            (
                format!("{MINIMAL}[output]\nformat = \"xml\""),
                "unknown variant `xml`",
            ),
            (
                format!("{MINIMAL}[output]\nstyle = 1"),
                "unknown field `style`",
            ),
            (
                format!("{MINIMAL}[limits]\ncpu = \"1s\""),
                "unknown field `cpu`",
            ),
            (
                MINIMAL.replace("\"word_count\"", "\"Word-Count\""),
                "tool name \"Word-Count\"",
            ),
            (MINIMAL.replace("\"word_count\"", "\"9lives\""), "tool name"),
            (
                MINIMAL.replace("Counts the words of a text.", " "),
                "description must be",
            ),
            (
                MINIMAL.replace("\"compute\"", "\"root\""),
                "unknown variant `root`",
            ),
            (
                MINIMAL.replace("type = \"object\"", "type = \"array\""),
                "type = \"object\"",
            ),
            (
                MINIMAL
                    .replace("pattern", "x")
                    .replace("maxLength = 100000", "pattern = \"(\""),
                "does not compile",
            ),
            (
                MINIMAL.replace("\"a b c\"", "3"),
                "example does not match [input]: /text: expected string",
            ),
            (with_run(""), "found: none"),
            (
                with_run("program = \"a.py\"\nmcp = [\"/bin/x\"]"),
                "found: program, mcp",
            ),
            (with_run("program = \"../a.py\""), "not a plain file name"),
            // Regression (hunt srv 3): the file system refuses it, and the registration was
            // a 500 that left its half-written directory behind.
            (
                with_run(&format!("program = \"{}.py\"", "a".repeat(253))),
                "[run] program: \"aaaa",
            ),
            (
                with_run(&format!("program = \"{}.py\"", "a".repeat(253))),
                "is longer than a file name can be (255 bytes)",
            ),
            (
                with_run("program = \"a.py\"\nlanguage = \"Py thon\""),
                "[run] language",
            ),
            (
                with_run("program = \"a.py\"\ndependencies = [\"--index-url=x\"]"),
                "not a package name",
            ),
            (
                with_run("mcp = [\"/bin/x\"]\nlanguage = \"python\""),
                "language is not allowed with mcp",
            ),
            (
                with_run("command = [\"/bin/x\"]\ndependencies = []"),
                "dependencies is not allowed with command",
            ),
            (
                with_run("mcp = [\"/bin/x\"]\nstdin = \"text\""),
                "stdin is not allowed with mcp",
            ),
            (
                with_run("program = \"a.py\"\nstdin = \"txt\""),
                "\"txt\" is not a property",
            ),
            (
                with_run("command = [\"jq\"]"),
                "[run] command: the program \"jq\"",
            ),
            (
                with_run("command = [\"/bin/x\", \"{txt}\"]"),
                "{txt} names no property",
            ),
            (
                with_run("mcp = [\"python3\"]"),
                "[run] mcp: the program must be",
            ),
            (with_run("mcp = []"), "[run] mcp"),
            (
                with_run("program = \"a.py\"\nmode = \"jail\""),
                "[run] mode: unknown mode",
            ),
            (
                with_run("program = \"a.py\"\nnetwork = \"All Access\""),
                "[run] network: policy name",
            ),
            (
                with_run("program = \"a.py\"\nread_only = [\"etc\"]"),
                "is not absolute",
            ),
            (
                with_run("program = \"a.py\"\nread_only = [\"/srv/../etc\"]"),
                "contains `..`",
            ),
            (
                with_run("program = \"a.py\"\nread_only = [\"/proc/1\"]"),
                "under /proc",
            ),
            (
                with_run("program = \"a.py\"\nread_only = [\"/dev\"]"),
                "under /proc",
            ),
            (
                with_run("program = \"a.py\"\nread_only = [\"/\"]"),
                "whole host",
            ),
            (with_run("builtin = \"sudo\""), "unknown variant `sudo`"),
        ];
        for (text, expected) in cases {
            let err = parse(&text).expect_err(expected).to_string();
            assert!(
                err.contains(expected),
                "{err:?} should mention {expected:?}"
            );
        }
        let longest = with_run(&format!("program = \"{}.py\"", "a".repeat(252)));
        assert!(
            parse(&longest).is_ok(),
            "a name of 255 bytes is a file name"
        );
        let number = MINIMAL.replace("type = \"string\"", "type = \"number\"");
        let err = parse(&number.replace("\"a b c\"", "1")).expect_err("stdin not string");
        assert!(err.to_string().contains("not of type string"), "{err}");
        let err = Tool::from_file("other.toml", MINIMAL, ToolOrigin::Operator).expect_err("name");
        assert!(matches!(err, ToolFileError::FileName { .. }), "{err}");
        assert!(Tool::from_file("word_count.toml", MINIMAL, ToolOrigin::Operator).is_ok());
    }

    #[test]
    fn inputs_are_capped_before_validation() {
        let tool = parse(MINIMAL).expect("valid");
        assert!(tool.check_input(&json!({"text": "a b"})).is_ok());
        let errors = tool
            .check_input(&json!({"text": "x".repeat(MAX_INPUT_BYTES)}))
            .expect_err("too large");
        assert_eq!(errors.len(), 1);
        assert!(errors[0]
            .to_string()
            .starts_with("input: larger than 1048576 bytes"));
        // `{"text":"…"}`: 11 bytes, and 6 for each escaped control character.
        let at_cap = |extra: usize| {
            let text = "\u{1}".repeat(1000) + &"x".repeat(MAX_INPUT_BYTES - 11 - 6000 + extra);
            tool.check_input(&json!({ "text": text }))
                .expect_err("too long")
        };
        assert_eq!(at_cap(0)[0].message, "longer than 100000 characters");
        assert!(at_cap(1)[0].message.starts_with("larger than"));
        let errors = tool.check_input(&json!({"text": 5})).expect_err("schema");
        assert_eq!(errors[0].to_string(), "/text: expected string, got number");
        assert!(tool.validate_input(&json!({})).is_err());
        // Built by hand: `json!` would serialize (recursively) an interpolated value.
        let mut deep = json!(1);
        for _ in 0..100_000 {
            deep = serde_json::Value::Array(vec![deep]);
        }
        let mut input = json!({"text": ""});
        input["x"] = deep;
        let errors = tool.check_input(&input).expect_err("too deep");
        assert!(
            errors[0].message.contains("nested deeper than 64"),
            "{errors:?}"
        );
        // Dropping a value this deep recurses; leak it rather than test serde_json's stack.
        std::mem::forget(input);
    }

    #[test]
    fn embedded_tool_files_parse() {
        for (file, text) in embedded_files() {
            let tool = Tool::from_file(file, text, ToolOrigin::Embedded)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            if let Runner::Program { file: program, .. } = &tool.runner {
                assert!(
                    embedded_source(program).is_some(),
                    "{file}: {program} is missing"
                );
            }
        }
        assert_eq!(embedded_source("no such file"), None);
    }

    #[test]
    fn a_name_is_quoted_whole_up_to_its_longest_and_cut_beyond() {
        assert_eq!(name_excerpt("no_such_tool"), "\"no_such_tool\"");
        let long = "é".repeat(1 << 19);
        let quoted = name_excerpt(&long);
        assert!(quoted.len() < 100, "{quoted}");
        assert!(quoted.ends_with("\"... (1048576 bytes)"), "{quoted}");
        assert!(
            quoted.starts_with(&format!("\"{}", "é".repeat(MAX_NAME_LEN / 2))),
            "{quoted}"
        );
    }
}
