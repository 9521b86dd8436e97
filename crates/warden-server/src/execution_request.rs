//! The own API's execution request: the JSON body of `POST /v1/executions` (and of each item of
//! `POST /v1/batch`), the same request as `warden run`, and its translation into the engine's
//! [`ExecutionRequest`]. What the engine would silently clamp is refused here with the field
//! named: an API caller should learn that it asked for more than the operator allows.

use std::time::Duration;

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use warden_core::units::format_duration;
use warden_core::{ByteSize, LimitOverrides, Limits, Mode, ModeRequest};
use warden_engine::{Comparison, ExecutionRequest, SandboxReuse, SourceFile, TestCase};
use warden_sandbox::Stdin;

use crate::error::ApiError;
use crate::options::ServerOptions;

/// A program to run: its language (or none, to detect it), its code inline or as files, and
/// how to run it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionBody {
    /// Language id or alias (`python`, `py`, `cpp`, ...); detected from the entry file's name
    /// and content when absent (the result's `detection` says how surely).
    #[serde(default)]
    pub language: Option<String>,
    /// The program's code, inline (one file). Give this or `files`.
    #[serde(default)]
    pub code: Option<String>,
    /// The program's files, the entry first; the files after it need names. Give this or
    /// `code`.
    #[serde(default, deserialize_with = "crate::json_body::objects")]
    pub files: Vec<FileBody>,
    /// Standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Standard input in base64, for input that is not UTF-8 text; instead of `stdin`.
    #[serde(default)]
    pub stdin_base64: Option<String>,
    /// Arguments passed to the program.
    #[serde(default)]
    pub args: Vec<String>,
    /// Options added to the compiler's command (`["-O0", "-DDEBUG"]`), each one the language
    /// admits (`GET /v1/languages` lists them as `compile_options`; docs/languages.md,
    /// Compiler options); refused (422) otherwise, and for a language that takes none.
    #[serde(default)]
    pub compile_options: Vec<String>,
    /// The program's stderr goes into its stdout, interleaved as written (one stream under
    /// `max_output`; the result's `stderr` is then empty).
    #[serde(default)]
    pub stderr_to_stdout: bool,
    /// Limits, each at most the operator's maximum.
    #[serde(default, deserialize_with = "crate::json_body::object")]
    pub limits: LimitsBody,
    /// Limits of the compile stage, on top of the language's own (`{"wall_time": "60s"}` for a
    /// slow build), each at most the operator's maximum; ignored for a language that compiles
    /// nothing.
    #[serde(default, deserialize_with = "crate::json_body::object")]
    pub compile_limits: LimitsBody,
    /// Isolation mode; the operator's default (normally `auto`) when absent.
    #[serde(default)]
    pub mode: Option<ModeBody>,
    /// The network policy by name (`no_access`, `limited_access`, `internet_access`,
    /// `development`, or one the operator imported); the operator's default when absent. A
    /// policy the configuration does not allow is refused (403).
    #[serde(default)]
    pub network: Option<String>,
    /// Packages to install before the program runs, as the language's package manager names
    /// them (`six==1.16.0` for Python, `is-number@7.0.0` for JavaScript, `rake:13.0.6` for
    /// Ruby); added to those of a `requirements.txt`, `package.json` or `Gemfile` among the
    /// files. Installed under `limited_access` whatever `network` says, and cached: the same
    /// set is installed once. A malformed spec (an installer option, a path, a URL, shell
    /// text) is refused (422); a failed installation is the outcome `dependency_error`.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Test cases: the program is compiled once and run once per case, each with a verdict;
    /// at most the operator's `max_tests` (256 by default).
    #[serde(default, deserialize_with = "crate::json_body::objects")]
    pub tests: Vec<TestBody>,
    /// How a case's output is compared with its expected output.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "trailing_whitespace")]
    pub comparison: Option<Comparison>,
    /// Stop at the first case that is not accepted.
    #[serde(default)]
    pub stop_on_failure: bool,
    /// Whether the compile stage and the runs share one sandbox (`shared`) or each get a
    /// fresh one (`fresh`, the default).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "fresh")]
    pub reuse: Option<SandboxReuse>,
    /// Named volumes mounted into the run's sandbox (docs/volumes.md); not in trusted mode.
    /// An unknown volume is a 422, as is a volume another run writes to under
    /// `concurrent_writers = "refuse"`.
    #[serde(default, deserialize_with = "crate::json_body::objects")]
    pub volumes: Vec<ExecutionVolume>,
}

/// A named volume and where the run sees it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionVolume {
    /// The volume's name (`POST /v1/volumes` creates one).
    pub name: String,
    /// Where it is mounted: an absolute path outside `/work` and the sandbox's own tree.
    #[schema(value_type = String, example = "/data")]
    pub path: std::path::PathBuf,
    /// Mount it read-only.
    #[serde(default)]
    pub read_only: bool,
}

/// One file of a program.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileBody {
    /// Its name, a relative path (optional for the entry).
    #[serde(default)]
    pub name: Option<String>,
    /// Its content, as `encoding` says.
    pub content: String,
    /// How `content` is written: `utf8` (the default) or `base64` (a file that is not UTF-8
    /// text), as Piston's files say it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "utf8")]
    pub encoding: Option<Encoding>,
    /// Lay the file out executable (0755; 0644 otherwise): a script the program runs by its
    /// path, as `warden run` keeps a host file's executable bit.
    #[serde(default)]
    pub executable: bool,
}

/// How a file's content is written in the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// Text, as it is.
    #[default]
    Utf8,
    /// Bytes in base64.
    Base64,
}

/// A request's standard input from its `stdin` (text) or `stdin_base64` (bytes), not both.
pub(crate) fn stdin_of(text: Option<String>, encoded: Option<String>) -> Result<Stdin, ApiError> {
    Ok(match (text, encoded) {
        (Some(_), Some(_)) => {
            return Err(ApiError::unprocessable(
                "give `stdin` or `stdin_base64`, not both",
            ))
        }
        (Some(text), None) => Stdin::Bytes(text.into_bytes()),
        (None, Some(encoded)) => Stdin::Bytes(base64_field("stdin_base64", &encoded)?),
        (None, None) => Stdin::Null,
    })
}

/// `text` decoded from base64, or a 422 naming `field`.
fn base64_field(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| ApiError::unprocessable(format!("{field} is not valid base64: {e}")))
}

/// One test case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// Standard input of this run.
    #[serde(default)]
    pub stdin: String,
    /// The expected standard output; absent accepts any output of a clean exit.
    #[serde(default)]
    pub expected_output: Option<String>,
    /// Arguments of this run, after the request's own.
    #[serde(default)]
    pub args: Vec<String>,
}

/// An isolation mode.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModeBody {
    /// Chosen by the operator's policy from the code's threat level.
    Auto,
    /// Namespaces, seccomp, cgroups.
    Sandboxed,
    /// gVisor.
    Isolated,
    /// Limits only, when the operator enables it.
    Trusted,
}

/// Limits of one execution. Durations are text (`2s`, `500ms`) or a number of seconds; sizes
/// text (`256MiB`) or a number of bytes.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsBody {
    /// CPU time of the whole process tree.
    #[serde(default, deserialize_with = "duration")]
    #[schema(schema_with = duration_schema)]
    pub cpu_time: Option<Duration>,
    /// Wall-clock time.
    #[serde(default, deserialize_with = "duration")]
    #[schema(schema_with = duration_schema)]
    pub wall_time: Option<Duration>,
    /// Memory of the whole process tree.
    #[serde(default)]
    #[schema(schema_with = size_schema)]
    pub memory: Option<ByteSize>,
    /// Processes and threads at once.
    #[serde(default)]
    // u32: the document would otherwise say int32, a range half as wide.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub max_procs: Option<u32>,
    /// Bytes kept of each of stdout and stderr.
    #[serde(default)]
    #[schema(schema_with = size_schema)]
    pub max_output: Option<ByteSize>,
    /// Largest file the program may write.
    #[serde(default)]
    #[schema(schema_with = size_schema)]
    pub max_file_size: Option<ByteSize>,
    /// Size of the writable workspace.
    #[serde(default)]
    #[schema(schema_with = size_schema)]
    pub workspace_size: Option<ByteSize>,
    /// Open file descriptors per process.
    #[serde(default)]
    // u32: the document would otherwise say int32, a range half as wide.
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 4294967295_i64)]
    pub max_open_files: Option<u32>,
    /// Stack of each process's main thread (and glibc's default for a new thread's).
    #[serde(default)]
    #[schema(schema_with = size_schema)]
    pub stack_size: Option<ByteSize>,
}

/// The document's schema of a duration: text with a unit (`2s`, `500ms`), or seconds.
fn duration_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::Type;
    text_or_number(
        "text with a unit (2s, 500ms) or seconds",
        "2s",
        Type::Number,
    )
}

/// The document's schema of a size: text with a unit (`256MiB`), or bytes.
pub(crate) fn size_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::Type;
    text_or_number(
        "text with a unit (256MiB, 1MiB) or bytes",
        "256MiB",
        Type::Integer,
    )
}

/// `string | number (>= 0) | null`: what the limits' deserializers take.
fn text_or_number(
    description: &str,
    example: &str,
    number: utoipa::openapi::schema::Type,
) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .description(Some(description))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .examples([example]),
        )
        .item(ObjectBuilder::new().schema_type(number).minimum(Some(0)))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build()
        .into()
}

/// A duration as text (`2s`) or a number of seconds.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Seconds(s)) => Duration::try_from_secs_f64(s)
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{s} is not a duration in seconds"))),
        Some(Raw::Text(t)) => warden_core::parse_duration(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl ExecutionBody {
    /// The engine's request, or the first field the server's caps or the operator's maxima
    /// refuse.
    pub fn into_request(self, options: &ServerOptions) -> Result<ExecutionRequest, ApiError> {
        if self.tests.len() > options.max_tests {
            return Err(ApiError::unprocessable(format!(
                "tests: {} cases, at most {} are accepted",
                self.tests.len(),
                options.max_tests
            )));
        }
        let limits = self.limits.checked(&options.maxima)?;
        let compile_limits = self
            .compile_limits
            .checked_as("compile_limits", &options.maxima)?;
        let sources = match (self.code, self.files.is_empty()) {
            (Some(_), false) => {
                return Err(ApiError::unprocessable("give `code` or `files`, not both"))
            }
            (None, true) => {
                return Err(ApiError::unprocessable(
                    "no program: give `code` or `files`",
                ))
            }
            (Some(code), true) => vec![SourceFile {
                name: None,
                code: code.into_bytes(),
                executable: false,
            }],
            (None, false) if self.files.len() > options.max_files => {
                return Err(ApiError::unprocessable(format!(
                    "files: {} files, at most {} are accepted",
                    self.files.len(),
                    options.max_files
                )))
            }
            (None, false) => self
                .files
                .into_iter()
                .enumerate()
                .map(|(i, f)| {
                    let code = match f.encoding.unwrap_or_default() {
                        Encoding::Utf8 => f.content.into_bytes(),
                        Encoding::Base64 => {
                            base64_field(&format!("files[{i}].content"), &f.content)?
                        }
                    };
                    Ok(SourceFile {
                        name: f.name,
                        code,
                        executable: f.executable,
                    })
                })
                .collect::<Result<_, ApiError>>()?,
        };
        let stdin = stdin_of(self.stdin, self.stdin_base64)?;
        Ok(ExecutionRequest {
            language: self.language,
            sources,
            args: self.args,
            compile_options: self.compile_options,
            stderr_to_stdout: self.stderr_to_stdout,
            stdin,
            limits,
            compile_limits,
            mode: self.mode.map(ModeBody::request),
            network: self.network,
            dependencies: self.dependencies,
            tests: self.tests.into_iter().map(TestBody::case).collect(),
            comparison: self.comparison.unwrap_or_default(),
            stop_on_failure: self.stop_on_failure,
            reuse: self.reuse.unwrap_or_default(),
            volumes: self
                .volumes
                .into_iter()
                .map(|v| warden_engine::VolumeRequest {
                    name: v.name,
                    path: v.path,
                    read_only: v.read_only,
                })
                .collect(),
            ..ExecutionRequest::default()
        })
    }
}

/// Refuses what a single interactive run cannot carry, before it starts: test cases (`what`
/// names the endpoint: "a streamed execution"), and a language the catalog does not know.
pub(crate) fn check_single_run(
    request: &ExecutionRequest,
    catalog: &warden_core::Catalog,
    what: &str,
) -> Result<(), ApiError> {
    if !request.tests.is_empty() {
        return Err(ApiError::unprocessable(format!(
            "tests: {what} runs the program once; use POST /v1/executions"
        )));
    }
    if let Some(language) = &request.language {
        if catalog.get(language).is_none() {
            return Err(ApiError::unprocessable(format!(
                "language: unknown language {language:?} (GET /v1/languages lists them)"
            )));
        }
    }
    Ok(())
}

impl ModeBody {
    pub(crate) fn request(self) -> ModeRequest {
        match self {
            ModeBody::Auto => ModeRequest::Auto,
            ModeBody::Sandboxed => ModeRequest::Exactly(Mode::Sandboxed),
            ModeBody::Isolated => ModeRequest::Exactly(Mode::Isolated),
            ModeBody::Trusted => ModeRequest::Exactly(Mode::Trusted),
        }
    }
}

impl TestBody {
    fn case(self) -> TestCase {
        TestCase {
            stdin: self.stdin.into_bytes(),
            args: self.args,
            expected_output: self.expected_output.map(String::into_bytes),
        }
    }
}

impl LimitsBody {
    /// The overrides, or a 422 naming the first limit above the operator's maximum.
    pub(crate) fn checked(self, maxima: &Limits) -> Result<LimitOverrides, ApiError> {
        self.checked_as("limits", maxima)
    }

    /// [`LimitsBody::checked`] of the body's field `name`.
    pub(crate) fn checked_as(
        self,
        name: &str,
        maxima: &Limits,
    ) -> Result<LimitOverrides, ApiError> {
        let over = |field: &str, asked: String, max: String| {
            Err(ApiError::unprocessable(format!(
                "{name}.{field}: {asked} is above the operator's maximum of {max}"
            )))
        };
        let durations = [
            ("cpu_time", self.cpu_time, maxima.cpu_time),
            ("wall_time", self.wall_time, maxima.wall_time),
        ];
        for (field, asked, max) in durations {
            if let Some(asked) = asked.filter(|a| *a > max) {
                return over(field, format_duration(asked), format_duration(max));
            }
        }
        let sizes = [
            ("memory", self.memory, maxima.memory),
            ("max_output", self.max_output, maxima.max_output),
            ("max_file_size", self.max_file_size, maxima.max_file_size),
            ("workspace_size", self.workspace_size, maxima.workspace_size),
            ("stack_size", self.stack_size, maxima.stack_size),
        ];
        for (field, asked, max) in sizes {
            if let Some(asked) = asked.filter(|a| *a > max) {
                return over(field, asked.to_string(), max.to_string());
            }
        }
        let counts = [
            ("max_procs", self.max_procs, maxima.max_procs),
            ("max_open_files", self.max_open_files, maxima.max_open_files),
        ];
        for (field, asked, max) in counts {
            if let Some(asked) = asked.filter(|a| *a > max) {
                return over(field, asked.to_string(), max.to_string());
            }
        }
        Ok(LimitOverrides {
            cpu_time: self.cpu_time,
            wall_time: self.wall_time,
            memory: self.memory,
            max_procs: self.max_procs,
            max_output: self.max_output,
            max_file_size: self.max_file_size,
            workspace_size: self.workspace_size,
            max_open_files: self.max_open_files,
            stack_size: self.stack_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> ExecutionBody {
        serde_json::from_str(json).expect("valid body")
    }

    #[test]
    fn limits_above_the_maxima_are_refused_by_name() {
        let options = ServerOptions::default();
        let err = body(r#"{"code": "x", "limits": {"memory": "1TiB"}}"#)
            .into_request(&options)
            .expect_err("above the maximum");
        assert_eq!(err.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            err.message.starts_with("limits.memory: "),
            "{}",
            err.message
        );
        let err = body(r#"{"code": "x", "limits": {"cpu_time": 100000}}"#)
            .into_request(&options)
            .expect_err("above the maximum");
        assert!(
            err.message.starts_with("limits.cpu_time: "),
            "{}",
            err.message
        );
        let ok = body(r#"{"code": "x", "limits": {"cpu_time": "2s", "memory": 1048576000}}"#)
            .into_request(&options)
            .expect("within the maxima");
        assert_eq!(ok.limits.cpu_time, Some(Duration::from_secs(2)));
    }

    #[test]
    fn a_program_is_code_or_files_within_the_cap() {
        let options = ServerOptions {
            max_files: 1,
            ..ServerOptions::default()
        };
        assert!(body("{}").into_request(&options).is_err());
        let both = r#"{"code": "x", "files": [{"content": "y"}]}"#;
        assert!(body(both).into_request(&options).is_err());
        let two = r#"{"files": [{"content": "y"}, {"name": "b", "content": "z"}]}"#;
        let err = body(two).into_request(&options).expect_err("too many");
        assert!(err.message.starts_with("files: 2 files"), "{}", err.message);
        let tests = r#"{"code": "x", "mode": "sandboxed", "tests": [{"stdin": "1", "expected_output": "2"}]}"#;
        let request = body(tests).into_request(&options).expect("valid");
        assert_eq!(request.tests.len(), 1);
        assert_eq!(request.mode, Some(ModeRequest::Exactly(Mode::Sandboxed)));
    }

    /// Bug hunt "comp": nothing bounded the test cases, and a 30 KB body of 2,000 cases each
    /// printing a megabyte grew the server past 4 GB.
    #[test]
    fn test_cases_are_counted_against_the_cap() {
        let options = ServerOptions {
            max_tests: 3,
            ..ServerOptions::default()
        };
        let cases = |n: usize| {
            let case = r#"{"stdin": "1"}"#;
            format!(r#"{{"code": "x", "tests": [{}]}}"#, vec![case; n].join(","))
        };
        let request = body(&cases(3)).into_request(&options).expect("at the cap");
        assert_eq!(request.tests.len(), 3);
        let err = body(&cases(4))
            .into_request(&options)
            .expect_err("past the cap");
        assert_eq!(err.message, "tests: 4 cases, at most 3 are accepted");
        assert_eq!(ServerOptions::default().max_tests, 256);
    }

    #[test]
    fn bytes_that_are_not_text_come_in_base64() {
        let options = ServerOptions::default();
        let request = body(
            r#"{"files": [{"name": "a.sh", "content": "/3Q=", "encoding": "base64"},
                          {"name": "b.txt", "content": "plain", "encoding": "utf8"}],
                "stdin_base64": "/wA="}"#,
        )
        .into_request(&options)
        .expect("valid");
        let codes: Vec<&[u8]> = request.sources.iter().map(|f| &f.code[..]).collect();
        assert_eq!(codes, [&b"\xfft"[..], b"plain"]);
        assert!(matches!(&request.stdin, Stdin::Bytes(b) if b == b"\xff\x00"));
        let err = body(r#"{"code": "x", "stdin": "a", "stdin_base64": "YQ=="}"#)
            .into_request(&options)
            .expect_err("both");
        assert_eq!(err.message, "give `stdin` or `stdin_base64`, not both");
        let err = body(r#"{"code": "x", "stdin_base64": "not base64!"}"#)
            .into_request(&options)
            .expect_err("invalid");
        assert!(
            err.message.starts_with("stdin_base64 is not valid base64"),
            "{}",
            err.message
        );
        let err = body(r#"{"files": [{"content": "%%", "encoding": "base64"}]}"#)
            .into_request(&options)
            .expect_err("invalid");
        assert!(
            err.message
                .starts_with("files[0].content is not valid base64"),
            "{}",
            err.message
        );
        let err = serde_json::from_str::<ExecutionBody>(
            r#"{"files": [{"content": "x", "encoding": "hex"}]}"#,
        )
        .expect_err("an unknown encoding");
        assert!(err.to_string().contains("hex"), "{err}");
    }

    #[test]
    fn unknown_fields_and_modes_are_named() {
        let err = serde_json::from_str::<ExecutionBody>(r#"{"code": "x", "langauge": "py"}"#)
            .expect_err("typo");
        assert!(err.to_string().contains("langauge"), "{err}");
        let err = serde_json::from_str::<ExecutionBody>(r#"{"code": "x", "mode": "fast"}"#)
            .expect_err("mode");
        assert!(err.to_string().contains("fast"), "{err}");
    }
}
