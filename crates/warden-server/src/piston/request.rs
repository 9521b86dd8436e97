//! Piston's execute request (the body of `POST /api/v2/execute` and of the WebSocket's `init`
//! message), checked in Piston's order with Piston's messages (`v2.js`, `get_job`), and turned
//! into warden's [`ExecutionRequest`].
//!
//! Piston takes JSON only. `pistonapi` 1.0.1 (PyPI) posts a form instead (`files` repeated, each
//! one file's content), which real Piston refuses with 415; warden reads it too, so that client
//! works (docs/compat.md).

use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use warden_core::{ByteSize, LimitBounds, LimitOverrides, Limits};
use warden_engine::{ExecutionRequest, SourceFile};
use warden_sandbox::Stdin;

use super::PistonError;
use crate::ServerOptions;

/// A checked execute request, before its runtime is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecuteRequest {
    /// A Piston language name or alias.
    pub(crate) language: String,
    /// A semver range.
    pub(crate) version: String,
    /// The files, decoded; the entry (the first utf8 file) first.
    pub(crate) files: Vec<SourceFile>,
    /// Standard input, with the trailing newline Piston adds.
    pub(crate) stdin: Vec<u8>,
    /// Program arguments.
    pub(crate) args: Vec<String>,
    /// The run stage's limits (`run_timeout`, `run_cpu_time`, `run_memory_limit`).
    pub(crate) limits: LimitOverrides,
    /// The compile stage's (`compile_timeout`, `compile_cpu_time`, `compile_memory_limit`).
    pub(crate) compile_limits: LimitOverrides,
}

impl ExecuteRequest {
    /// The engine's request for the resolved language `language_id`.
    pub(crate) fn into_execution(self, language_id: &str) -> ExecutionRequest {
        ExecutionRequest {
            language: Some(language_id.to_owned()),
            sources: self.files,
            args: self.args,
            stdin: Stdin::Bytes(self.stdin),
            limits: self.limits,
            compile_limits: self.compile_limits,
            ..ExecutionRequest::default()
        }
    }
}

/// The numeric limit fields, in the order Piston checks them.
const LIMIT_FIELDS: [&str; 6] = [
    "compile_timeout",
    "run_timeout",
    "compile_cpu_time",
    "run_cpu_time",
    "compile_memory_limit",
    "run_memory_limit",
];

/// Reads a JSON body of at most `[server] max_files` files, its limits within `[maxima]`.
pub(crate) fn from_json(
    body: &Value,
    options: &ServerOptions,
) -> Result<ExecuteRequest, PistonError> {
    let field = |name: &str| body.get(name);
    let language = field("language")
        .and_then(Value::as_str)
        .ok_or_else(|| PistonError::bad_request("language is required as a string"))?;
    let version = field("version")
        .and_then(Value::as_str)
        .ok_or_else(|| PistonError::bad_request("version is required as a string"))?;
    let files = field("files")
        .and_then(Value::as_array)
        .ok_or_else(|| PistonError::bad_request("files is required as an array"))?;
    too_many(files.len(), options.max_files)?;
    let mut decoded = Vec::with_capacity(files.len());
    for (i, file) in files.iter().enumerate() {
        decoded.push(file_of(i, file)?);
    }
    let decoded = entry_first(decoded)?;
    let stdin = match field("stdin") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(PistonError::bad_request("stdin must be a string")),
    };
    let args = match field("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(_) => return Err(PistonError::bad_request("args must be an array")),
    };
    let mut numbers = Vec::new();
    for name in LIMIT_FIELDS {
        match field(name) {
            None | Some(Value::Null) => numbers.push(None),
            Some(Value::Number(n)) => numbers.push(n.as_f64()),
            Some(_) => return Err(not_a_number(name)),
        }
    }
    let [limits, compile_limits] = limits_of(&numbers, &options.maxima)?;
    Ok(finish(
        language,
        version,
        decoded,
        &stdin,
        args,
        limits,
        compile_limits,
    ))
}

/// Reads a form body (`application/x-www-form-urlencoded`, as `pistonapi` sends it), as
/// [`from_json`] reads JSON.
pub(crate) fn from_form(
    body: &[u8],
    options: &ServerOptions,
) -> Result<ExecuteRequest, PistonError> {
    let pairs = form_pairs(body);
    let first = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let all = |name: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k == name || *k == format!("{name}[]"))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let language = first("language")
        .ok_or_else(|| PistonError::bad_request("language is required as a string"))?;
    let version = first("version")
        .ok_or_else(|| PistonError::bad_request("version is required as a string"))?;
    let files: Vec<(SourceFile, bool)> = all("files")
        .into_iter()
        .map(|content| {
            let file = SourceFile {
                name: None,
                code: content.into_bytes(),
                executable: false,
            };
            (file, true)
        })
        .collect();
    if files.is_empty() {
        return Err(PistonError::bad_request("files is required as an array"));
    }
    too_many(files.len(), options.max_files)?;
    let files = entry_first(files)?;
    let mut numbers = Vec::new();
    for name in LIMIT_FIELDS {
        match first(name) {
            None | Some("") => numbers.push(None),
            Some(text) => numbers.push(Some(
                // "NaN" and "inf" parse as floats, and NaN passes every range check.
                text.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| not_a_number(name))?,
            )),
        }
    }
    let [limits, compile_limits] = limits_of(&numbers, &options.maxima)?;
    let stdin = first("stdin").unwrap_or_default();
    Ok(finish(
        language,
        version,
        files,
        stdin,
        all("args"),
        limits,
        compile_limits,
    ))
}

/// Refuses more files than the server takes, as `/v1` does (its message, Piston's 400).
fn too_many(files: usize, max_files: usize) -> Result<(), PistonError> {
    if files > max_files {
        return Err(PistonError::bad_request(format!(
            "files: {files} files, at most {max_files} are accepted"
        )));
    }
    Ok(())
}

fn finish(
    language: &str,
    version: &str,
    files: Vec<SourceFile>,
    stdin: &str,
    args: Vec<String>,
    limits: LimitOverrides,
    compile_limits: LimitOverrides,
) -> ExecuteRequest {
    let mut stdin = stdin.as_bytes().to_vec();
    // Piston appends the newline line-reading programs wait for; an empty stdin stays empty so
    // that a program reading to end-of-file sees nothing.
    if !stdin.is_empty() && !stdin.ends_with(b"\n") {
        stdin.push(b'\n');
    }
    ExecuteRequest {
        language: language.to_owned(),
        version: version.to_owned(),
        files,
        stdin,
        args,
        limits,
        compile_limits,
    }
}

/// A file of `files`, its content decoded by its `encoding`; whether it is utf8 (only a utf8
/// file may be the entry).
fn file_of(i: usize, file: &Value) -> Result<(SourceFile, bool), PistonError> {
    let content = file.get("content").and_then(Value::as_str).ok_or_else(|| {
        PistonError::bad_request(format!("files[{i}].content is required as a string"))
    })?;
    let encoding = file
        .get("encoding")
        .and_then(Value::as_str)
        .unwrap_or("utf8");
    let code = match encoding {
        "utf8" => content.as_bytes().to_vec(),
        "base64" => base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .map_err(|_| {
                PistonError::bad_request(format!("files[{i}].content is not valid base64"))
            })?,
        "hex" => hex(content).ok_or_else(|| {
            PistonError::bad_request(format!("files[{i}].content is not valid hex"))
        })?,
        _ => {
            return Err(PistonError::bad_request(format!(
                "files[{i}].encoding must be one of utf8, base64, hex"
            )))
        }
    };
    let name = file.get("name").and_then(Value::as_str).map(str::to_owned);
    Ok((
        SourceFile {
            name,
            code,
            executable: false,
        },
        encoding == "utf8",
    ))
}

/// The files with the entry (the first utf8 file) first. The entry keeps the name it was
/// given, or none (warden's language rule names it); every other file needs one to be laid out
/// by, Piston's `file{i}.code` when it has none.
fn entry_first(files: Vec<(SourceFile, bool)>) -> Result<Vec<SourceFile>, PistonError> {
    let entry = files.iter().position(|(_, utf8)| *utf8).ok_or_else(|| {
        PistonError::bad_request("files must include at least one utf8 encoded file")
    })?;
    let mut named: Vec<SourceFile> = files
        .into_iter()
        .enumerate()
        .map(|(i, (mut file, _))| {
            if i != entry && file.name.is_none() {
                file.name = Some(format!("file{i}.code"));
            }
            file
        })
        .collect();
    let first = named.remove(entry);
    named.insert(0, first);
    Ok(named)
}

/// Piston's limits as warden's overrides of the run and of the compile stage: milliseconds and
/// bytes, 0 meaning unset, checked against the operator's `maxima` (Piston's "configured
/// limit").
fn limits_of(numbers: &[Option<f64>], maxima: &Limits) -> Result<[LimitOverrides; 2], PistonError> {
    let ceiling = |name: &str| -> f64 {
        match name {
            "compile_timeout" | "run_timeout" => maxima.wall_time.as_millis() as f64,
            "compile_cpu_time" | "run_cpu_time" => maxima.cpu_time.as_millis() as f64,
            _ => maxima.memory.bytes() as f64,
        }
    };
    // What warden runs anything with at the least (Piston has no floor; below it the engine
    // would refuse the run with its own words).
    let least = LimitBounds::default().min;
    let floor = |name: &str| -> f64 {
        match name {
            "compile_timeout" | "run_timeout" => least.wall_time.as_millis() as f64,
            "compile_cpu_time" | "run_cpu_time" => least.cpu_time.as_millis() as f64,
            _ => least.memory.bytes() as f64,
        }
    };
    let (mut run, mut compile) = (LimitOverrides::default(), LimitOverrides::default());
    for (name, value) in LIMIT_FIELDS.iter().zip(numbers) {
        let Some(value) = value.filter(|v| *v != 0.0) else {
            continue;
        };
        if value < 0.0 {
            return Err(PistonError::bad_request(format!(
                "{name} must be non-negative"
            )));
        }
        if value > ceiling(name) {
            return Err(PistonError::bad_request(format!(
                "{name} cannot exceed the configured limit of {}",
                ceiling(name)
            )));
        }
        if value < floor(name) {
            return Err(PistonError::bad_request(format!(
                "{name} cannot be less than {}",
                floor(name)
            )));
        }
        let stage = if name.starts_with("compile_") {
            &mut compile
        } else {
            &mut run
        };
        match name.split_once('_').map_or("", |(_, limit)| limit) {
            "timeout" => stage.wall_time = Some(Duration::from_millis(value as u64)),
            "cpu_time" => stage.cpu_time = Some(Duration::from_millis(value as u64)),
            _ => stage.memory = Some(ByteSize(value as u64)),
        }
    }
    Ok([run, compile])
}

fn not_a_number(name: &str) -> PistonError {
    PistonError::bad_request(format!("If specified, {name} must be a number"))
}

fn hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `application/x-www-form-urlencoded` pairs, percent- and plus-decoded.
fn form_pairs(body: &[u8]) -> Vec<(String, String)> {
    body.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut parts = pair.splitn(2, |b| *b == b'=');
            let key = percent_decode(parts.next().unwrap_or_default());
            let value = percent_decode(parts.next().unwrap_or_default());
            (key, value)
        })
        .collect()
}

fn percent_decode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = byte {
                    out.push(byte);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// Options taking `max_files` files and the built-in maxima.
    fn taking(max_files: usize) -> ServerOptions {
        ServerOptions {
            max_files,
            ..ServerOptions::default()
        }
    }

    /// Bug hunt: Piston's requests took any number of files (up to the engine's 1000), past
    /// `[server] max_files`, which every other API holds them to.
    #[test]
    fn more_files_than_the_server_takes_are_refused_in_json_and_forms() {
        let file = serde_json::json!({"content": "print(1)"});
        let body = serde_json::json!({"language": "python", "version": "*",
            "files": [file.clone(), file.clone(), file]});
        assert!(from_json(&body, &taking(3)).is_ok());
        let refused = from_json(&body, &taking(2)).expect_err("three files, at most two");
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.message, "files: 3 files, at most 2 are accepted");
        let form = b"language=python&version=*&files=a&files=b&files=c";
        assert!(from_form(form, &taking(3)).is_ok());
        let refused = from_form(form, &taking(2)).expect_err("three files, at most two");
        assert_eq!(refused.message, "files: 3 files, at most 2 are accepted");
    }

    /// Hunt compat 1: the limits were checked against the built-in maxima (600000 ms of wall
    /// time), whatever the operator's `[maxima]` said.
    #[test]
    fn limits_are_checked_against_the_operators_maxima() {
        let options = ServerOptions {
            maxima: Limits {
                cpu_time: Duration::from_secs(2),
                wall_time: Duration::from_secs(4),
                ..Limits::default_maxima()
            },
            ..ServerOptions::default()
        };
        let body = |field: &str, value: u64| {
            serde_json::json!({"language": "python", "version": "*",
                "files": [{"content": "print(1)"}], field: value})
        };
        for (field, value, limit) in [("run_cpu_time", 10_000, 2000), ("run_timeout", 4001, 4000)] {
            let refused = from_json(&body(field, value), &options).expect_err("above");
            assert_eq!(
                refused.message,
                format!("{field} cannot exceed the configured limit of {limit}")
            );
            let form = format!("language=python&version=*&files=a&{field}={value}");
            let refused = from_form(form.as_bytes(), &options).expect_err("above");
            assert_eq!(
                refused.message,
                format!("{field} cannot exceed the configured limit of {limit}")
            );
        }
        let at = from_json(&body("run_timeout", 4000), &options).expect("at the maximum");
        assert_eq!(at.limits.wall_time, Some(Duration::from_secs(4)));
    }
}
