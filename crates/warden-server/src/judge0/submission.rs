//! A Judge0 submission's input: the body of `POST /submissions` (and of each item of a batch),
//! checked as Judge0's model validates it (422 with a map of field → messages), its
//! `base64_encoded` fields decoded, and turned into warden's [`ExecutionRequest`].

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value};
use warden_core::{ByteSize, Language, LimitBounds, LimitOverrides, Limits};
use warden_engine::{ExecutionRequest, OwnCommands, SourceFile, TestCase};
use warden_sandbox::Stdin;

use super::languages::language_of;
use super::{callback, zip};
use crate::state::AppState;

/// Field → messages, Judge0's 422 body.
pub(crate) type Invalid = BTreeMap<String, Vec<String>>;

/// A checked submission.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Input {
    /// Judge0's language id.
    pub(crate) language_id: i64,
    /// warden's language id.
    pub(crate) language: String,
    /// The language's name as `/languages` lists it under `language_id`.
    pub(crate) language_name: String,
    /// The code, decoded.
    pub(crate) source_code: Vec<u8>,
    /// The files of `additional_files`, beside the code in the program's directory.
    pub(crate) additional_files: Vec<SourceFile>,
    /// Standard input, decoded.
    pub(crate) stdin: Option<Vec<u8>>,
    /// The expected output, decoded.
    pub(crate) expected_output: Option<Vec<u8>>,
    /// Arguments, split from `command_line_arguments`.
    pub(crate) args: Vec<String>,
    /// Compiler options, split from `compiler_options`, each one the language admits.
    pub(crate) compile_options: Vec<String>,
    /// The limits the submission sets.
    pub(crate) limits: LimitOverrides,
    /// The limits its run will have (the language's, the submission's, within the maxima),
    /// shown for those it did not send until the run says which it had.
    pub(crate) planned: Option<Limits>,
    /// Append stderr to stdout.
    pub(crate) redirect_stderr_to_stdout: bool,
    /// The cpu time limit asked for, when `cpu_extra_time` lets the program run past it: a run
    /// that used more is a Time Limit Exceeded however it ended (isolate's `-x`).
    pub(crate) cpu_time_limit: Option<Duration>,
    /// Judge0's multi-file program (language 89): no `source_code`, and the archive's `run`
    /// script (after its `compile` script, if any) is the program.
    pub(crate) project: bool,
    /// How many times the program runs (`number_of_runs`, 1 to 20 and at most `[server]
    /// max_tests`, as test cases are: [`super::info::max_runs`]): each run in a fresh
    /// sandbox with the same input, until one is not Accepted: that one's output and status
    /// shown (else the last's), time and memory averaged over the runs made.
    pub(crate) number_of_runs: u32,
    /// Where to `PUT` the result (a loopback URL).
    pub(crate) callback_url: Option<String>,
    /// The other attributes as sent, echoed back by `fields`.
    pub(crate) echo: Map<String, Value>,
}

impl Input {
    /// The engine's request.
    pub(crate) fn execution(&self) -> ExecutionRequest {
        let sources = if self.project {
            // The run script first (the entry), then the rest, as the archive had them.
            let (run, rest): (Vec<&SourceFile>, Vec<&SourceFile>) = self
                .additional_files
                .iter()
                .partition(|f| f.name.as_deref() == Some(RUN_SCRIPT));
            run.into_iter().chain(rest).cloned().collect()
        } else {
            std::iter::once(SourceFile {
                name: None,
                code: self.source_code.clone(),
                executable: false,
            })
            .chain(self.additional_files.iter().cloned())
            .collect()
        };
        // Judge0's `compile_cmd` and `run_cmd` for language 89.
        let own_commands = self.project.then(|| OwnCommands {
            compile: self
                .additional_files
                .iter()
                .any(|f| f.name.as_deref() == Some(COMPILE_SCRIPT))
                .then(|| vec!["/bin/bash".to_owned(), COMPILE_SCRIPT.to_owned()]),
            run: vec!["/bin/bash".to_owned(), RUN_SCRIPT.to_owned()],
        });
        ExecutionRequest {
            language: Some(self.language.clone()),
            sources,
            own_commands,
            args: self.args.clone(),
            compile_options: self.compile_options.clone(),
            // Judge0 compiles `main.c` (`Main.java`, ...) alone; additional files are there to
            // be included or found.
            compile_entry_only: true,
            // Judge0 gives the program one descriptor for both.
            stderr_to_stdout: self.redirect_stderr_to_stdout,
            stdin: Stdin::Bytes(self.stdin.clone().unwrap_or_default()),
            limits: self.run_limits(),
            // With `number_of_runs` the runs are test cases with the same input: one compile,
            // a fresh sandbox each, stopping at the first that is not accepted, as Judge0
            // stops at the first that is not Accepted (fields.rs shows that one). The
            // engine's comparison is Judge0's but for a trailing NUL or vertical tab, which
            // Ruby's `rstrip` also strips: such a run stops the runs a run early, and is still
            // shown as Accepted.
            tests: match self.number_of_runs {
                0 | 1 => Vec::new(),
                n => (0..n)
                    .map(|_| TestCase {
                        stdin: self.stdin.clone().unwrap_or_default(),
                        args: Vec::new(),
                        expected_output: self.expected_output.clone(),
                    })
                    .collect(),
            },
            stop_on_failure: true,
            ..ExecutionRequest::default()
        }
    }
}

impl Input {
    /// The submission's limits, `max_file_size` also bounding each output stream (lowering
    /// the run's output limit, never raising it): isolate's `-f` bounds the files Judge0 has
    /// the program's stdout and stderr written to, so output past it ends the run as SIGXFSZ
    /// (status 8), as warden's output limit is shown.
    fn run_limits(&self) -> LimitOverrides {
        let mut limits = self.limits;
        if let Some(file) = limits.max_file_size.filter(|size| size.bytes() > 0) {
            let output = self
                .planned
                .as_ref()
                .map_or(file, |p| p.max_output.min(file));
            limits.max_output = Some(output);
        }
        limits
    }
}

/// Judge0's multi-file program: its scripts are in `additional_files`.
pub(crate) const MULTI_FILE: i64 = 89;
/// The multi-file program's run script.
const RUN_SCRIPT: &str = "run";
/// The multi-file program's compile script, if it has one.
const COMPILE_SCRIPT: &str = "compile";

/// Attributes echoed as sent (limits and options warden reads or refuses).
const ECHOED: [&str; 16] = [
    "compiler_options",
    "additional_files",
    "command_line_arguments",
    "cpu_time_limit",
    "cpu_extra_time",
    "wall_time_limit",
    "memory_limit",
    "stack_limit",
    "max_processes_and_or_threads",
    "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit",
    "max_file_size",
    "redirect_stderr_to_stdout",
    "enable_network",
    "number_of_runs",
    "callback_url",
];

/// Checks and decodes one submission.
pub(crate) fn parse(state: &AppState, body: &Value, base64: bool) -> Result<Input, Invalid> {
    let mut invalid = Invalid::new();
    let Some(body) = body.as_object() else {
        add(
            &mut invalid,
            "submission",
            "must be a JSON object".to_owned(),
        );
        return Err(invalid);
    };
    let source_code = text(body, "source_code", base64, &mut invalid);
    let stdin = text(body, "stdin", base64, &mut invalid);
    let expected_output = text(body, "expected_output", base64, &mut invalid);
    let project = body.get("language_id").and_then(|v| language_id(v).ok()) == Some(MULTI_FILE);
    let has_code = matches!(&source_code, Some(s) if !s.is_empty());
    if project && has_code {
        add(&mut invalid, "source_code", "must be blank".to_owned());
    } else if !project && !has_code && !invalid.contains_key("source_code") {
        add(&mut invalid, "source_code", "can't be blank".to_owned());
    }
    let language = match body.get("language_id") {
        None | Some(Value::Null) => {
            add(&mut invalid, "language_id", "can't be blank".to_owned());
            None
        }
        Some(v) => match language_id(v) {
            Err(message) => {
                add(&mut invalid, "language_id", message.to_owned());
                None
            }
            Ok(id) => match language_of(state, id) {
                Some(l) => Some((id, l)),
                None => {
                    add(
                        &mut invalid,
                        "language_id",
                        format!("language with id {id} doesn't exist"),
                    );
                    None
                }
            },
        },
    };
    let maxima = &state.options().maxima;
    let most_runs = super::info::max_runs(state.options());
    let (limits, number_of_runs, cpu_time_limit) = limits(body, maxima, most_runs, &mut invalid);
    let args = split(body, "command_line_arguments", &mut invalid);
    let compile_options = split(body, "compiler_options", &mut invalid);
    if let (false, Some((_, language))) = (compile_options.is_empty(), language) {
        check_compile_options(language, &compile_options, &mut invalid);
    }
    let additional_files = additional_files(state, body, &mut invalid);
    if project && !invalid.contains_key("additional_files") {
        let has_run = additional_files
            .iter()
            .any(|f| f.name.as_deref() == Some(RUN_SCRIPT));
        if additional_files.is_empty() {
            add(
                &mut invalid,
                "additional_files",
                "can't be blank".to_owned(),
            );
        } else if !has_run {
            let message = format!("must contain a {RUN_SCRIPT:?} script");
            add(&mut invalid, "additional_files", message);
        }
    }
    refuse_unsupported(body, &mut invalid);
    let callback_url = match body.get("callback_url") {
        None | Some(Value::Null) => None,
        // Judge0 calls back only when the URL is `present?`: blank is none.
        Some(Value::String(url)) if url.trim().is_empty() => None,
        // Judge0's answer where `ENABLE_CALLBACKS` is off.
        Some(Value::String(_)) if !state.options().judge0_callbacks => {
            let message = "setting callback is not allowed".to_owned();
            add(&mut invalid, "callback_url", message);
            None
        }
        Some(Value::String(url)) => callback::check(url)
            .map_err(|message| add(&mut invalid, "callback_url", message))
            .ok()
            .map(|()| url.clone()),
        Some(_) => {
            add(&mut invalid, "callback_url", "must be a string".to_owned());
            None
        }
    };
    let redirect = body
        .get("redirect_stderr_to_stdout")
        .is_some_and(rails_true);
    let (Some((language_id, language)), true) = (language, invalid.is_empty()) else {
        return Err(invalid);
    };
    let source_code = source_code.unwrap_or_default();
    let echo = ECHOED
        .iter()
        .filter_map(|k| Some(((*k).to_owned(), body.get(*k)?.clone())))
        .collect();
    let planned = state.engine().planned_limits(language.id.as_str(), &limits);
    let input = Input {
        planned,
        language_id,
        language: language.id.as_str().to_owned(),
        language_name: super::languages::name(language_id, language).to_owned(),
        source_code,
        additional_files,
        stdin,
        expected_output,
        args,
        compile_options,
        limits,
        redirect_stderr_to_stdout: redirect,
        number_of_runs,
        cpu_time_limit,
        project,
        callback_url,
        echo,
    };
    check_program(state, &input)?;
    Ok(input)
}

/// Asks the engine whether it can lay out `input`'s program (docs/compat.md#judge0-ce), so
/// that a name that clashes (with the source's, with another file's, with where the compiler
/// writes) is a 422 on its field when the submission is made, as the archive's own faults
/// are, not a run that fails after a token was given.
fn check_program(state: &AppState, input: &Input) -> Result<(), Invalid> {
    let Err(e) = state.engine().check_program(&input.execution()) else {
        return Ok(());
    };
    let field = match &e {
        warden_engine::EngineError::BadSource(_) => "additional_files",
        warden_engine::EngineError::CompileOption(_) => "compiler_options",
        // Found again, in the same terms, when the run prepares it.
        _ if !e.kind().is_caller_fault() => return Ok(()),
        _ => "submission",
    };
    let message = match &e {
        warden_engine::EngineError::BadSource(source) => source.to_string(),
        e => warden_engine::error_chain(e),
    };
    Err(Invalid::from([(field.to_owned(), vec![message])]))
}

fn add(invalid: &mut Invalid, field: &str, message: String) {
    invalid.entry(field.to_owned()).or_default().push(message);
}

/// A text attribute, decoded from base64 when the request says so.
fn text(
    body: &Map<String, Value>,
    field: &str,
    base64: bool,
    invalid: &mut Invalid,
) -> Option<Vec<u8>> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if base64 => decode(s)
            .map_err(|()| add(invalid, field, "is not valid base64".to_owned()))
            .ok(),
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(_) => {
            add(invalid, field, "must be a string".to_owned());
            None
        }
    }
}

/// Base64 as Ruby's `Base64.decode64` takes it: line breaks and missing padding allowed.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, ()> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(compact).map_err(|_| ())
}

/// A `language_id` as an integer: a number or its text; `71.0` is 71, as the integer column
/// Judge0 keeps it in reads it; `71.5` is not an id (Judge0 would truncate it to another
/// language without a word).
fn language_id(v: &Value) -> Result<i64, &'static str> {
    if let Some(id) = v.as_i64() {
        return Ok(id);
    }
    let number = match v {
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(id) => return Ok(id),
            Err(_) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        },
        v => v.as_f64(),
    };
    match number {
        None => Err("is not a number"),
        Some(n) if n.fract() == 0.0 && n.abs() < 2f64.powi(53) => Ok(n as i64),
        Some(_) => Err("must be an integer"),
    }
}

/// Judge0's limit attributes as warden's: seconds, kilobytes, counts; checked against the
/// operator's `maxima` with Judge0's messages (above one is a 422 naming the field, not a run
/// silently held to less than it asked: docs/server.md#configuration). With them,
/// `number_of_runs` (1 when absent, at most `most_runs`), and the cpu time limit as asked when
/// `cpu_extra_time` raised the enforced one.
fn limits(
    body: &Map<String, Value>,
    maxima: &Limits,
    most_runs: usize,
    invalid: &mut Invalid,
) -> (LimitOverrides, u32, Option<Duration>) {
    // What warden runs anything with at the least (a request below it would otherwise get its
    // token and end as an Internal Error): Judge0's own minima where they are higher.
    let least = LimitBounds::default().min;
    let kb = ByteSize::KIB as f64;
    let mut number = |field: &str, min: f64, max: f64| -> Option<f64> {
        let value = match body.get(field) {
            None | Some(Value::Null) => return None,
            // "NaN" and "inf" parse as floats, and NaN passes every range check.
            Some(v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .filter(|n: &f64| n.is_finite()),
        };
        match value {
            None => add(invalid, field, "is not a number".to_owned()),
            Some(v) if v < min => add(
                invalid,
                field,
                format!("must be greater than or equal to {min}"),
            ),
            Some(v) if v > max => add(
                invalid,
                field,
                format!("must be less than or equal to {max}"),
            ),
            Some(v) => return Some(v),
        }
        None
    };
    let seconds = |v: f64| Duration::from_secs_f64(v);
    let cpu = number("cpu_time_limit", 0.0, maxima.cpu_time.as_secs_f64());
    let wall = number("wall_time_limit", 0.0, maxima.wall_time.as_secs_f64());
    let memory = number(
        "memory_limit",
        (least.memory.bytes() as f64 / kb).max(2048.0),
        maxima.memory.bytes() as f64 / kb,
    );
    let procs = number(
        "max_processes_and_or_threads",
        1.0,
        f64::from(maxima.max_procs),
    );
    let file = number(
        "max_file_size",
        0.0,
        maxima.max_file_size.bytes() as f64 / kb,
    );
    let extra = number("cpu_extra_time", 0.0, maxima.cpu_time.as_secs_f64());
    let stack = number("stack_limit", 0.0, maxima.stack_size.bytes() as f64 / kb);
    let runs = number("number_of_runs", 1.0, most_runs as f64).map_or(1, |v| v as u32);
    // Positive but below what warden runs anything with (Judge0 takes any positive value; 0
    // leaves the default).
    let too_small = [
        ("cpu_time_limit", cpu, least.cpu_time.as_secs_f64()),
        ("wall_time_limit", wall, least.wall_time.as_secs_f64()),
        ("stack_limit", stack, least.stack_size.bytes() as f64 / kb),
    ];
    for (field, value, min) in too_small {
        if value.is_some_and(|v| v > 0.0 && v < min) {
            add(
                invalid,
                field,
                format!("must be greater than or equal to {min}"),
            );
        }
    }
    // Judge0 counts 0 as "no limit given" for the times; warden needs a positive limit.
    let cpu = cpu.filter(|v| *v > 0.0);
    // Extra time, as isolate's `-x`: the program is killed that much later, and judged
    // against the limit asked for (fields.rs).
    let extra = extra.filter(|v| *v > 0.0);
    let enforced = cpu.map(|v| (v + extra.unwrap_or(0.0)).min(maxima.cpu_time.as_secs_f64()));
    let limits = LimitOverrides {
        cpu_time: enforced.map(seconds),
        wall_time: wall.filter(|v| *v > 0.0).map(seconds),
        memory: memory.map(|v| ByteSize((v * kb) as u64)),
        max_procs: procs.map(|v| v as u32),
        max_file_size: file.map(|v| ByteSize((v * kb) as u64)),
        // 0, as for the times, leaves the default.
        stack_size: stack
            .filter(|v| *v > 0.0)
            .map(|v| ByteSize((v * kb) as u64)),
        ..LimitOverrides::default()
    };
    (limits, runs, cpu.filter(|_| extra.is_some()).map(seconds))
}

/// `command_line_arguments` or `compiler_options` as Judge0 sanitizes them (shell
/// metacharacters removed), split on white space; warden runs no shell, so quotes are not
/// interpreted.
fn split(body: &Map<String, Value>, field: &str, invalid: &mut Invalid) -> Vec<String> {
    match body.get(field) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.chars().count() > 512 => {
            add(
                invalid,
                field,
                "is too long (maximum is 512 characters)".to_owned(),
            );
            Vec::new()
        }
        Some(Value::String(s)) if s.contains('\0') => {
            add(
                invalid,
                field,
                "holds a NUL byte, which no argument can".to_owned(),
            );
            Vec::new()
        }
        Some(Value::String(s)) => s
            .chars()
            .filter(|c| !matches!(c, '$' | '&' | ';' | '<' | '>' | '|' | '`'))
            .collect::<String>()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        Some(_) => {
            add(invalid, field, "must be a string".to_owned());
            Vec::new()
        }
    }
}

/// `additional_files`: a zip archive, base64 whatever `base64_encoded` says (as Judge0 reads
/// it), whose files join the code in the program's directory. The archive may hold as many
/// files as a program may have besides its entry, and inflate to no more than a request body
/// may hold; each name must be a relative path inside the directory.
fn additional_files(
    state: &AppState,
    body: &Map<String, Value>,
    invalid: &mut Invalid,
) -> Vec<SourceFile> {
    let field = "additional_files";
    let archive = match body.get(field) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::String(s)) if s.is_empty() => return Vec::new(),
        Some(Value::String(s)) => match decode(s) {
            Ok(archive) => archive,
            Err(()) => {
                add(invalid, field, "is not valid base64".to_owned());
                return Vec::new();
            }
        },
        Some(_) => {
            add(invalid, field, "must be a string".to_owned());
            return Vec::new();
        }
    };
    let options = state.options();
    let max_files = options.max_files.saturating_sub(1);
    let files = match zip::files(&archive, max_files, options.max_body as u64) {
        Ok(files) => files,
        Err(e) => {
            add(invalid, field, e.to_string());
            return Vec::new();
        }
    };
    let mut seen = std::collections::BTreeSet::new();
    for file in &files {
        let contained = !file.name.is_empty()
            && std::path::Path::new(&file.name)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !contained {
            let message = format!(
                "has {:?}, which is not a relative path inside the program",
                file.name
            );
            add(invalid, field, message);
        } else if !seen.insert(file.name.as_str()) {
            add(invalid, field, format!("has {:?} twice", file.name));
        }
    }
    files
        .into_iter()
        .map(|f| SourceFile {
            name: Some(f.name),
            code: f.contents,
            executable: false,
        })
        .collect()
}

/// Judge0 refuses compiler options for a language without a compile command; warden also
/// refuses an option its language does not admit (docs/languages.md, Compiler options).
fn check_compile_options(language: &Language, options: &[String], invalid: &mut Invalid) {
    let field = "compiler_options";
    let Some(stage) = language.compile.as_ref().filter(|c| !c.options.is_empty()) else {
        let message = "setting compiler options is only allowed for compiled languages";
        return add(invalid, field, message.to_owned());
    };
    for option in options.iter().filter(|o| !stage.allows(o)) {
        let allowed = stage.options.join(" ");
        add(
            invalid,
            field,
            format!(
                "{option} is not an allowed compiler option for {} (allowed: {allowed})",
                language.name
            ),
        );
    }
}

/// What warden cannot honour is refused rather than ignored.
fn refuse_unsupported(body: &Map<String, Value>, invalid: &mut Invalid) {
    let given = |field: &str| body.get(field).is_some_and(rails_true);
    if given("enable_network") {
        add(
            invalid,
            "enable_network",
            "enabling network is not allowed: warden's sandboxes have no network".to_owned(),
        );
    }
    // Judge0's own refusal where `config_info` says `allow_enable_...: false`: a time or
    // memory limit per process would loosen the limits warden sets on the whole run.
    for field in [
        "enable_per_process_and_thread_time_limit",
        "enable_per_process_and_thread_memory_limit",
    ] {
        if given(field) {
            add(invalid, field, "this option cannot be enabled".to_owned());
        }
    }
}

/// A boolean attribute as Rails casts it: `false`, `null`, `0`, and the strings "", "0", "f",
/// "false", "off" (any case) are false, anything else true.
fn rails_true(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !matches!(
            s.to_ascii_lowercase().as_str(),
            "" | "0" | "f" | "false" | "off"
        ),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_cast_as_rails_casts_them() {
        use serde_json::json;
        for value in [
            json!(true),
            json!("true"),
            json!("1"),
            json!(1),
            json!("yes"),
            json!([]),
        ] {
            assert!(rails_true(&value), "{value}");
        }
        for value in [
            json!(false),
            json!(null),
            json!(0),
            json!(""),
            json!("0"),
            json!("F"),
            json!("false"),
            json!("OFF"),
        ] {
            assert!(!rails_true(&value), "{value}");
        }
    }

    #[test]
    fn base64_is_read_as_ruby_reads_it() {
        assert_eq!(decode("aGVsbG8=").as_deref(), Ok(&b"hello"[..]));
        assert_eq!(decode("aGVs\nbG8").as_deref(), Ok(&b"hello"[..]));
        assert!(decode("not base64!").is_err());
    }

    /// Bug hunt: `71.0` and `71.5` were "is not a number".
    #[test]
    fn a_language_id_is_an_integer_in_any_spelling() {
        use serde_json::json;
        for (v, want) in [
            (json!(71), Ok(71)),
            (json!("71"), Ok(71)),
            (json!(71.0), Ok(71)),
            (json!(" 71.0 "), Ok(71)),
            (json!(71.5), Err("must be an integer")),
            (json!("71.5"), Err("must be an integer")),
            (json!(1e30), Err("must be an integer")),
            (json!("python"), Err("is not a number")),
            (json!(true), Err("is not a number")),
        ] {
            assert_eq!(language_id(&v), want, "{v}");
        }
    }

    #[test]
    fn limits_are_converted_and_checked_with_judge0s_messages() {
        let maxima = Limits::default_maxima();
        let body = serde_json::json!({
            "cpu_time_limit": 2.5, "memory_limit": 65536, "wall_time_limit": 0,
            "max_processes_and_or_threads": 10, "number_of_runs": 3,
        });
        let mut invalid = Invalid::new();
        let (got, runs, _) = limits(body.as_object().expect("object"), &maxima, 20, &mut invalid);
        assert!(invalid.is_empty(), "{invalid:?}");
        assert_eq!(runs, 3);
        let extra = serde_json::json!({ "cpu_time_limit": 1, "cpu_extra_time": 0.5 });
        let (enforced, _, asked) = limits(
            extra.as_object().expect("object"),
            &maxima,
            20,
            &mut invalid,
        );
        assert_eq!(enforced.cpu_time, Some(Duration::from_millis(1500)));
        assert_eq!(asked, Some(Duration::from_secs(1)));
        assert_eq!(got.cpu_time, Some(Duration::from_millis(2500)));
        assert_eq!(got.memory, Some(ByteSize::mib(64)));
        assert_eq!(got.wall_time, None, "0 is no limit given");
        assert_eq!(got.max_procs, Some(10));

        // Bug hunt: "NaN" passed every range check (and ran with the defaults).
        let nan = serde_json::json!({ "cpu_time_limit": "NaN", "memory_limit": "-NaN",
                                      "number_of_runs": "inf" });
        let mut invalid = Invalid::new();
        let _ = limits(nan.as_object().expect("object"), &maxima, 20, &mut invalid);
        for field in ["cpu_time_limit", "memory_limit", "number_of_runs"] {
            assert_eq!(invalid[field], ["is not a number"], "{field}");
        }

        let body = serde_json::json!({ "cpu_time_limit": 1e9, "memory_limit": "lots",
                                       "number_of_runs": 21 });
        let mut invalid = Invalid::new();
        let (_, runs, _) = limits(body.as_object().expect("object"), &maxima, 20, &mut invalid);
        assert_eq!(runs, 1);
        assert_eq!(
            invalid["number_of_runs"],
            ["must be less than or equal to 20"]
        );
        assert_eq!(
            invalid["cpu_time_limit"],
            ["must be less than or equal to 300"]
        );
        assert_eq!(invalid["memory_limit"], ["is not a number"]);

        // Below what warden runs anything with: a field error, not a token that ends as an
        // Internal Error.
        let body = serde_json::json!({ "cpu_time_limit": 0.001, "wall_time_limit": "0.005",
                                       "memory_limit": 4096, "stack_limit": 64 });
        let mut invalid = Invalid::new();
        limits(body.as_object().expect("object"), &maxima, 20, &mut invalid);
        assert_eq!(
            invalid["cpu_time_limit"],
            ["must be greater than or equal to 0.01"]
        );
        assert_eq!(
            invalid["wall_time_limit"],
            ["must be greater than or equal to 0.01"]
        );
        assert_eq!(
            invalid["memory_limit"],
            ["must be greater than or equal to 8192"]
        );
        assert_eq!(
            invalid["stack_limit"],
            ["must be greater than or equal to 512"]
        );
    }

    /// Hunt compat 1: the limits were checked against the built-in maxima, whatever the
    /// operator's `[maxima]` said.
    #[test]
    fn limits_are_checked_against_the_operators_maxima() {
        let maxima = Limits {
            cpu_time: Duration::from_secs(2),
            memory: ByteSize::mib(128),
            ..Limits::default_maxima()
        };
        let body = serde_json::json!({ "cpu_time_limit": 10, "memory_limit": 1_000_000,
                                       "cpu_extra_time": 2.5 });
        let mut invalid = Invalid::new();
        limits(body.as_object().expect("object"), &maxima, 20, &mut invalid);
        assert_eq!(
            invalid["cpu_time_limit"],
            ["must be less than or equal to 2"]
        );
        assert_eq!(
            invalid["cpu_extra_time"],
            ["must be less than or equal to 2"]
        );
        assert_eq!(
            invalid["memory_limit"],
            ["must be less than or equal to 131072"]
        );
    }

    #[test]
    fn arguments_are_sanitized_as_judge0_does() {
        let body = serde_json::json!({ "command_line_arguments": "a  b;rm -rf $HOME|x" });
        let args = split(
            body.as_object().expect("object"),
            "command_line_arguments",
            &mut Invalid::new(),
        );
        assert_eq!(args, ["a", "brm", "-rf", "HOMEx"]);
    }

    #[test]
    fn a_nul_byte_in_the_arguments_is_a_field_error() {
        let body = serde_json::json!({ "command_line_arguments": "a\u{0}b" });
        let mut invalid = Invalid::new();
        let args = split(
            body.as_object().expect("object"),
            "command_line_arguments",
            &mut invalid,
        );
        assert!(args.is_empty());
        assert_eq!(
            invalid["command_line_arguments"],
            ["holds a NUL byte, which no argument can"]
        );
    }
}
