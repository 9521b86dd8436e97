//! `warden run --server`: the same run, in a running `warden serve` instead of a sandbox built
//! by this process. The server keeps its engine warm (configuration, catalog, compiled rules,
//! the history's connection) and its sandboxes pooled, so a run pays this process's start and
//! one request on loopback instead of building and tearing down a sandbox
//! (docs/cli.md#through-a-server).
//!
//! The request is `POST /v1/executions`'s (docs/server.md), built from the same arguments; the
//! answer is the result `warden run --json` prints, shown the same way. At a terminal the same
//! program goes over the server's WebSocket instead, attached as a local run is ([`attached`]). What a server's API
//! cannot carry is refused before anything is sent: files and standard input that are not
//! UTF-8 text (the API's bodies are JSON strings).

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Map, Value};
use warden_core::Outcome;

use super::{announce_detection, limit_field, read_stdin, Ending, FailedStage, RunArgs};
use crate::commands::client::{base64_text, exact_output, is_refusal, refused, Answer, Client};
use crate::commands::connect::Ended;
use crate::exit_code;

/// How long a run waits in all for room in a full server before its refusal is reported.
const MOST_WAITED: Duration = Duration::from_secs(60);

/// Runs `args` in the server at `server`.
pub(super) fn run(args: &RunArgs, server: &str) -> anyhow::Result<ExitCode> {
    let outcome = send(args, server);
    match outcome {
        Ok(done) => done,
        Err(e) if args.json => crate::commands::json_error(&e),
        Err(e) => Err(e),
    }
}

/// Sends the request and shows the answer. The outer `Err` is the run's failure (no answer,
/// or the server refused the request), which `--json` shows as `{"error"}`; the inner one a
/// failure to show the result.
fn send(args: &RunArgs, server: &str) -> anyhow::Result<anyhow::Result<ExitCode>> {
    let client = Client::new(server, args.token.clone())?;
    if !args.json && !args.profile && at_a_terminal() {
        return attached(args, &client);
    }
    let body = request(args, true)?;
    let started = Instant::now();
    let answer = send_waiting_for_room(&client, &body)?;
    let took = started.elapsed();
    let timing = answer.header("server-timing").map(str::to_owned);
    let status = answer.status;
    let value: Value = serde_json::from_slice(&answer.body)
        .with_context(|| format!("the server answered {status} with a body that is not JSON"))?;
    if args.profile {
        print_profile(timing.as_deref(), took);
    }
    if is_refusal(status, &value) {
        return Ok(refused(args.json, &value));
    }
    if !(200..300).contains(&status) {
        let message = value["error"].as_str().unwrap_or("no reason given");
        bail!("the server refused ({status}): {message}");
    }
    if args.json {
        let mut out = std::io::stdout().lock();
        out.write_all(&answer.body)
            .and_then(|()| writeln!(out))
            .context("writing the JSON result")?;
        return Ok(Ok(ExitCode::SUCCESS));
    }
    Ok(show(&value, false))
}

/// Whether this run is a terminal's: its stdin or stdout is one.
fn at_a_terminal() -> bool {
    std::io::stdin().is_terminal() || std::io::stdout().is_terminal()
}

/// A terminal's run goes over the server's WebSocket (`GET /v1/executions/connect`,
/// `commands/connect.rs`), as a local run is attached to its terminal: the output shown as it
/// comes, what is typed (or piped) relayed as it is read (a terminal's only when this is its
/// foreground job), Ctrl-C and the other signals that would end this command sent to the
/// program. A harness's pipes keep the one request, the quicker.
fn attached(args: &RunArgs, client: &Client) -> anyhow::Result<anyhow::Result<ExitCode>> {
    let body = request(args, false)?;
    let stdin = std::io::stdin();
    let forward = !stdin.is_terminal()
        || nix::unistd::tcgetpgrp(stdin.as_fd()).is_ok_and(|g| g == nix::unistd::getpgrp());
    match crate::commands::connect::run(client, "/v1/executions/connect", &body, forward)? {
        Ended::Result(result) => Ok(show(&result, true)),
        Ended::Error(error) if error["kind"] == "refused" => Ok(refused(false, &error)),
        Ended::Error(error) => bail!(
            "the server refused: {}",
            error["error"].as_str().unwrap_or("no reason given")
        ),
    }
}

/// Sends the request; while the server answers that its queue (or the token's quota) is full,
/// waits as long as its `Retry-After` says and sends it again, up to [`MOST_WAITED`] in all:
/// a harness that starts more runs than the server takes waits its turn instead of failing.
fn send_waiting_for_room(client: &Client, body: &Value) -> anyhow::Result<Answer> {
    let mut waited = Duration::ZERO;
    loop {
        let answer = client.send_json("POST", "/v1/executions", body)?;
        let wait = answer
            .header("retry-after")
            .and_then(|s| s.parse::<u64>().ok())
            .map(|secs| Duration::from_secs(secs.clamp(1, 10)));
        match wait {
            Some(wait) if answer.status == 429 && waited + wait <= MOST_WAITED => {
                std::thread::sleep(wait);
                waited += wait;
            }
            _ => return Ok(answer),
        }
    }
}

/// The body of `POST /v1/executions` for `args`, standard input included if `with_stdin`.
fn request(args: &RunArgs, with_stdin: bool) -> anyhow::Result<Value> {
    let mut body = Map::new();
    let files = args
        .sources()?
        .into_iter()
        .map(|file| {
            let mut entry = Map::new();
            if let Some(name) = file.name {
                entry.insert("name".into(), json!(name));
            }
            if file.executable {
                entry.insert("executable".into(), json!(true));
            }
            // A file that is not UTF-8 text goes as its bytes in base64.
            match String::from_utf8(file.code) {
                Ok(content) => {
                    entry.insert("content".into(), json!(content));
                }
                Err(e) => {
                    entry.insert("content".into(), json!(base64_text(e.as_bytes())));
                    entry.insert("encoding".into(), json!("base64"));
                }
            }
            Value::Object(entry)
        })
        .collect::<Vec<_>>();
    body.insert("files".into(), json!(files));
    if let Some(language) = &args.lang {
        body.insert("language".into(), json!(language));
    }
    if let Some(stdin) = with_stdin.then(stdin).transpose()?.flatten() {
        match String::from_utf8(stdin) {
            Ok(text) => body.insert("stdin".into(), json!(text)),
            Err(e) => body.insert("stdin_base64".into(), json!(base64_text(e.as_bytes()))),
        };
    }
    if !args.args.is_empty() {
        body.insert("args".into(), json!(args.args));
    }
    if !args.compile_options.is_empty() {
        body.insert("compile_options".into(), json!(args.compile_options));
    }
    if args.stderr_to_stdout {
        body.insert("stderr_to_stdout".into(), json!(true));
    }
    let limits = limits(args);
    if !limits.is_empty() {
        body.insert("limits".into(), Value::Object(limits));
    }
    if let Some(mode) = args.mode {
        let name = match mode {
            warden_core::ModeRequest::Auto => "auto",
            warden_core::ModeRequest::Exactly(mode) => mode.name(),
        };
        body.insert("mode".into(), json!(name));
    }
    if let Some(network) = &args.network {
        body.insert("network".into(), json!(network));
    }
    if !args.deps.is_empty() {
        body.insert("dependencies".into(), json!(args.deps));
    }
    if !args.volumes.is_empty() {
        let volumes: Vec<Value> = args
            .volumes
            .iter()
            .map(|v| json!({ "name": v.name, "path": v.path, "read_only": v.read_only }))
            .collect();
        body.insert("volumes".into(), json!(volumes));
    }
    Ok(Value::Object(body))
}

/// The limits the arguments set: durations in seconds, sizes in bytes.
fn limits(args: &RunArgs) -> Map<String, Value> {
    let given = args.limits();
    let mut limits = Map::new();
    let durations = [("cpu_time", given.cpu_time), ("wall_time", given.wall_time)];
    for (name, value) in durations {
        if let Some(d) = value {
            limits.insert(name.into(), json!(d.as_secs_f64()));
        }
    }
    let sizes = [
        ("memory", given.memory),
        ("max_output", given.max_output),
        ("max_file_size", given.max_file_size),
        ("workspace_size", given.workspace_size),
        ("stack_size", given.stack_size),
    ];
    for (name, value) in sizes {
        if let Some(size) = value {
            limits.insert(name.into(), json!(size.0));
        }
    }
    let counts = [
        ("max_procs", given.max_procs),
        ("max_open_files", given.max_open_files),
    ];
    for (name, value) in counts {
        if let Some(n) = value {
            limits.insert(name.into(), json!(n));
        }
    }
    limits
}

/// Standard input, read whole (a pipe cannot be handed to another process over HTTP); none
/// from a terminal, as for a local run.
fn stdin() -> anyhow::Result<Option<Vec<u8>>> {
    let stdin = std::io::stdin();
    // A closed standard input is an empty one, as for a local run.
    if stdin.is_terminal() || nix::sys::stat::fstat(stdin.as_fd()).is_err() {
        return Ok(None);
    }
    let bytes = read_stdin()?;
    Ok((!bytes.is_empty()).then_some(bytes))
}

/// Shows a server's result as a local run's; `shown`: its output was written as it came.
fn show(result: &Value, shown: bool) -> anyhow::Result<ExitCode> {
    let outcome = outcome(&result["outcome"])?;
    let detection = &result["detection"];
    if let (Some(confidence), Some(language)) = (
        detection["confidence"].as_f64(),
        detection["language"].as_str(),
    ) {
        if confidence < f64::from(warden_core::detect::CONFIDENT) {
            let by = detection["by"].as_str().unwrap_or("content");
            announce_detection(&language, confidence, &by);
        }
    }
    let failed_stage = match outcome {
        Outcome::DependencyError => stage(
            "installer",
            exit_code::DEPENDENCY_ERROR,
            &result["dependencies"],
        )?,
        Outcome::CompileError => stage("compiler", exit_code::COMPILE_ERROR, &result["compile"])?,
        _ => None,
    };
    if failed_stage.is_none() && !shown {
        // What the compiler said of a program it compiled, before the program's output, as a
        // local run shows it (the WebSocket's `compile` message came before the output).
        let compile = &result["compile"];
        let mut err = std::io::stderr().lock();
        for name in ["stdout", "stderr"] {
            let _ = err.write_all(&exact_output(compile, name));
        }
        let _ = err.flush();
    }
    let limit = limit_field(&outcome)
        .and_then(|field| result["limits"][field].as_str())
        .map(str::to_owned);
    let (stdout, stderr) = (
        exact_output(result, "stdout"),
        exact_output(result, "stderr"),
    );
    Ending {
        outcome,
        stdout: &stdout,
        stderr: &stderr,
        shown,
        failed_stage,
        limit,
    }
    .print()
}

fn outcome(value: &Value) -> anyhow::Result<Outcome> {
    serde_json::from_value(value.clone()).context("the server's result has no outcome")
}

/// A failed stage of a server's result, if it has one.
fn stage<'a>(
    who: &'static str,
    code: u8,
    value: &'a Value,
) -> anyhow::Result<Option<FailedStage<'a>>> {
    if !value.is_object() {
        return Ok(None);
    }
    Ok(Some(FailedStage {
        who,
        code,
        outcome: outcome(&value["outcome"])?,
        stdout: exact_output(value, "stdout"),
        stderr: exact_output(value, "stderr"),
    }))
}

/// `--profile` through a server: the server's own steps (its `Server-Timing` header) and the
/// round trip as this process saw it.
fn print_profile(timing: Option<&str>, round_trip: std::time::Duration) {
    eprintln!("warden: profile (the server's steps, then this process's round trip)");
    eprintln!("  {:<12} {:>9}", "phase", "ms");
    for entry in timing
        .unwrap_or_default()
        .split(", ")
        .filter(|e| !e.is_empty())
    {
        let (name, ms) = entry.split_once(";dur=").unwrap_or((entry, "?"));
        eprintln!("  {name:<12} {ms:>9}");
    }
    eprintln!(
        "  {:<12} {:>9.2}",
        "round trip",
        round_trip.as_secs_f64() * 1000.0
    );
}
