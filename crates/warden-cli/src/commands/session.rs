//! `warden session`: sandboxes that live across calls (docs/sessions.md). A session lives in a
//! running `warden serve`, so these commands are its clients: `--server` (or `WARDEN_SERVER`)
//! says where, `--token` (or `WARDEN_TOKEN`) who asks.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use warden_core::bounded_file::{self, MAX_PROGRAM_FILE};
use warden_core::{ByteSize, Outcome};

use super::client::{
    base64_text, exact_output, is_refusal, query_value, refused, Client, DEFAULT_SERVER,
};
use super::printable;

/// Arguments of `warden session`.
#[derive(Debug, Args)]
pub(crate) struct SessionArgs {
    /// The server, `http://HOST:PORT`.
    #[arg(long, env = "WARDEN_SERVER", default_value = DEFAULT_SERVER, global = true)]
    server: String,
    /// The API token, if the server requires one.
    #[arg(long, env = "WARDEN_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    #[command(subcommand)]
    command: SessionCommand,
}

#[derive(Debug, Subcommand)]
enum SessionCommand {
    /// Start a session; prints its id.
    Create(CreateArgs),
    /// Run a command in a session (`-- CMD ARGS...`, joined into one shell line), or a program
    /// file with `--file`. Prints its output; exits as `warden run` does.
    Exec(ExecArgs),
    /// Copy a file into or out of a session: `cp LOCAL ID:PATH` or `cp ID:PATH LOCAL`
    /// (`-` for stdin or stdout).
    Cp {
        /// The source.
        from: String,
        /// The destination.
        to: String,
    },
    /// List a directory of a session's workspace: `ls ID[:DIR]`.
    Ls {
        /// The session and, after a colon, the directory.
        target: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a session and remove it with its workspace.
    Rm {
        /// The session's id.
        id: String,
    },
    /// List the sessions: id, state, mode, calls, last use, why it stopped.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one session as JSON: its state, why it stopped, its resources now.
    Show {
        /// The session's id.
        id: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// `sandboxed`, `isolated` or `auto` (what the operator's policy gives code without
    /// findings).
    #[arg(long)]
    mode: Option<String>,
    /// The network policy of every call.
    #[arg(long)]
    network: Option<String>,
    /// Memory of the whole session (every process of every call).
    #[arg(long)]
    memory: Option<ByteSize>,
    /// Processes and threads of the whole session.
    #[arg(long)]
    max_procs: Option<u32>,
    /// Each call's wall-clock limit.
    #[arg(long, value_name = "DURATION")]
    wall_time: Option<String>,
    /// Stop the session after this long without a call (`10m`).
    #[arg(long, value_name = "DURATION")]
    idle_timeout: Option<String>,
    /// Stop it this long after it started (`1h`).
    #[arg(long, value_name = "DURATION")]
    max_lifetime: Option<String>,
    /// Its workspace's size (`256MiB`), a hard quota.
    #[arg(long)]
    disk: Option<ByteSize>,
    /// An existing volume to use as the workspace (kept when the session is removed).
    #[arg(long)]
    workspace: Option<String>,
    /// Print the session as JSON instead of its id.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct ExecArgs {
    /// The session's id.
    id: String,
    /// Run this program file (laid out in the workspace under its name) instead of a command.
    #[arg(long, conflicts_with = "command")]
    file: Option<PathBuf>,
    /// The program's language (detected when absent); only with `--file`.
    // `conflicts_with` too: clap drops `requires = "file"` once `command`, which conflicts
    // with `file`, is given, and `--lang L ID -- CMD` went through with `--lang` ignored.
    #[arg(long = "lang", requires = "file", conflicts_with = "command")]
    language: Option<String>,
    /// Pass this process's standard input to the call.
    #[arg(long)]
    stdin: bool,
    /// Talk to the call as it runs: this process's standard input (a terminal's lines, or a
    /// pipe) goes to it as it comes, and its output is printed as it is produced
    /// (`/v1/sessions/{id}/connect`).
    #[arg(long, conflicts_with_all = ["stdin", "json"])]
    interactive: bool,
    /// The call's wall-clock limit.
    #[arg(long, value_name = "DURATION")]
    wall_time: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// The command and its arguments, joined with spaces into one shell line.
    // Required without `--file`: clap then refuses neither (exit 2), as it refuses every
    // other missing argument.
    #[arg(last = true, required_unless_present = "file")]
    command: Vec<String>,
}

/// The most `cp` reads of a local file or of standard input, and `exec --stdin` of its
/// input: the most a session's file is downloaded at (docs/sessions.md). The server takes at
/// most its `max_body` (8 MiB by default), which a client does not know; the bound keeps a
/// device or an endless pipe (`/dev/zero`) from growing this process until the host's memory
/// runs out.
const MAX_LOCAL_READ: u64 = 64 << 20;

/// Runs `warden session`.
pub(crate) fn run(args: SessionArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(&args.server, args.token)?;
    match args.command {
        SessionCommand::Create(create) => create_session(&client, create),
        SessionCommand::Exec(exec) => exec_call(&client, exec),
        SessionCommand::Cp { from, to } => copy(&client, &from, &to),
        SessionCommand::Ls { target, json } => list_files(&client, &target, json),
        SessionCommand::Rm { id } => {
            client
                .request(
                    "DELETE",
                    &format!("/v1/sessions/{}", query_value(&id)),
                    None,
                    &[],
                )?
                .ok()?;
            Ok(ExitCode::SUCCESS)
        }
        SessionCommand::List { json } => list_sessions(&client, json),
        SessionCommand::Show { id } => {
            let session = client
                .get(&format!("/v1/sessions/{}", query_value(&id)))?
                .json()?;
            line(&serde_json::to_string_pretty(&session)?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn create_session(client: &Client, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let mut limits = serde_json::Map::new();
    if let Some(memory) = args.memory {
        limits.insert("memory".into(), json!(memory.to_string()));
    }
    if let Some(procs) = args.max_procs {
        limits.insert("max_procs".into(), json!(procs));
    }
    if let Some(wall) = args.wall_time {
        limits.insert("wall_time".into(), json!(wall));
    }
    let mut body = json!({ "limits": limits });
    let fields = [
        ("mode", args.mode),
        ("network", args.network),
        ("idle_timeout", args.idle_timeout),
        ("max_lifetime", args.max_lifetime),
        ("disk", args.disk.map(|d| d.to_string())),
        ("workspace", args.workspace),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            body[key] = json!(value);
        }
    }
    let session = client.send_json("POST", "/v1/sessions", &body)?.json()?;
    if args.json {
        line(&session.to_string())?;
    } else {
        line(session["id"].as_str().unwrap_or_default())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn exec_call(client: &Client, args: ExecArgs) -> anyhow::Result<ExitCode> {
    let mut body = match &args.file {
        Some(path) => {
            // A regular file, at most what `warden run` reads of a program's files.
            let code = bounded_file::read_to_string(path, MAX_PROGRAM_FILE)
                .with_context(|| format!("reading {}", printable(&path.display().to_string())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "main".into());
            let mut body = json!({ "files": [{ "name": name, "content": code }] });
            if let Some(language) = &args.language {
                body["language"] = json!(language);
            }
            body
        }
        // clap requires the command without --file (`ExecArgs::command`).
        None => json!({ "command": args.command.join(" ") }),
    };
    if args.interactive {
        if let Some(wall) = args.wall_time {
            body["limits"] = json!({ "wall_time": wall });
        }
        return interactive(client, &args.id, &body);
    }
    if args.stdin {
        let input = bounded_file::read_from(std::io::stdin().lock(), MAX_LOCAL_READ)
            .context("reading standard input")?;
        // Input that is not UTF-8 text goes as its bytes.
        match String::from_utf8(input) {
            Ok(text) => body["stdin"] = json!(text),
            Err(e) => body["stdin_base64"] = json!(base64_text(e.as_bytes())),
        }
    }
    if let Some(wall) = args.wall_time {
        body["limits"] = json!({ "wall_time": wall });
    }
    let answer = client.send_json(
        "POST",
        &format!("/v1/sessions/{}/exec", query_value(&args.id)),
        &body,
    )?;
    if let Ok(refusal) = serde_json::from_slice::<Value>(&answer.body) {
        if is_refusal(answer.status, &refusal) {
            return refused(args.json, &refusal);
        }
    }
    let result = answer.json()?;
    if args.json {
        line(&result.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    show_failed_compile(&result);
    std::io::stdout().write_all(&exact_output(&result, "stdout"))?;
    std::io::stderr().write_all(&exact_output(&result, "stderr"))?;
    let outcome: Outcome = serde_json::from_value(result["outcome"].clone())
        .context("the server's result has no outcome")?;
    if !matches!(outcome, Outcome::Exited { .. }) {
        eprintln!("warden: {outcome}");
    }
    Ok(ExitCode::from(crate::exit_code::for_outcome(&outcome)))
}

/// A failed compile stage's stderr, on this process's stderr.
fn show_failed_compile(result: &Value) {
    if let Some(compile) = result["compile"].as_object() {
        if compile.get("outcome").and_then(|o| o["kind"].as_str()) != Some("exited")
            || compile.get("outcome").and_then(|o| o["code"].as_i64()) != Some(0)
        {
            eprint!(
                "{}",
                compile
                    .get("stderr")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            );
        }
    }
}

/// `warden session exec --interactive`: the call over the server's WebSocket
/// (`commands/connect.rs`: stdin forwarded as it is read, the output printed as it comes, the
/// signals that would end this command sent to the program instead); the exit status the
/// program's, as for a plain call.
fn interactive(client: &Client, id: &str, body: &Value) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/sessions/{}/connect", query_value(id));
    let result = match super::connect::run(client, &path, body, true)? {
        super::connect::Ended::Result(result) => result,
        super::connect::Ended::Error(error) if error["kind"] == "refused" => {
            return refused(false, &error);
        }
        super::connect::Ended::Error(error) => bail!(
            "the server refused: {}",
            error["error"].as_str().unwrap_or("no reason given")
        ),
    };
    show_failed_compile(&result);
    let outcome: Outcome = serde_json::from_value(result["outcome"].clone())
        .context("the server's result has no outcome")?;
    if !matches!(outcome, Outcome::Exited { .. }) {
        eprintln!("warden: {outcome}");
    }
    Ok(ExitCode::from(crate::exit_code::for_outcome(&outcome)))
}

/// `ID:PATH` split, if `text` names a session's file.
fn session_path(text: &str) -> Option<(&str, &str)> {
    let (id, path) = text.split_once(':')?;
    (!id.is_empty() && !id.contains('/')).then_some((id, path))
}

fn copy(client: &Client, from: &str, to: &str) -> anyhow::Result<ExitCode> {
    match (session_path(from), session_path(to)) {
        (Some(_), Some(_)) => bail!("copy between sessions through a local file"),
        (None, None) => bail!("one side is a session's file: ID:PATH"),
        (None, Some((id, path))) => {
            // Standard input, or a regular file: a device or a FIFO is refused at once.
            let bytes = if from == "-" {
                bounded_file::read_from(std::io::stdin().lock(), MAX_LOCAL_READ)
                    .context("reading standard input")?
            } else {
                bounded_file::read(std::path::Path::new(from), MAX_LOCAL_READ)
                    .with_context(|| format!("reading {}", printable(from)))?
            };
            client
                .request(
                    "PUT",
                    &format!(
                        "/v1/sessions/{}/file?path={}",
                        query_value(id),
                        query_value(path)
                    ),
                    Some("application/octet-stream"),
                    &bytes,
                )?
                .ok()?;
        }
        (Some((id, path)), None) => {
            let answer = client.get(&format!(
                "/v1/sessions/{}/file?path={}",
                query_value(id),
                query_value(path)
            ))?;
            if answer.status != 200 {
                return answer.ok().map(|()| ExitCode::FAILURE);
            }
            if to == "-" {
                std::io::stdout().write_all(&answer.body)?;
            } else {
                std::fs::write(to, &answer.body).with_context(|| format!("writing {to}"))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_files(client: &Client, target: &str, json: bool) -> anyhow::Result<ExitCode> {
    let (id, dir) = session_path(target).unwrap_or((target, ""));
    // The server answers a page at a time (docs/sessions.md#files): each is printed as it
    // comes, with `--json` as a line of its own.
    let mut after = String::new();
    loop {
        let page = client
            .get(&format!(
                "/v1/sessions/{}/files?path={}&after={}",
                query_value(id),
                query_value(dir),
                query_value(&after)
            ))?
            .json()?;
        if json {
            line(&page.to_string())?;
        } else {
            print_entries(&page)?;
            if let Some(omitted) = page["omitted"].as_u64() {
                eprintln!(
                    "warden: {omitted} more entries whose names read alike (bytes that are not \
                     UTF-8) were left out"
                );
            }
        }
        let last = page["entries"].as_array().and_then(|e| e.last());
        match last.and_then(|entry| entry["name"].as_str()) {
            Some(name) if page["truncated"] == true => after = name.to_owned(),
            _ => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn print_entries(page: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for entry in page["entries"].as_array().into_iter().flatten() {
        // The program named its files: a newline or an escape sequence in a name is shown
        // escaped, not as a line or a command of the terminal's.
        let name = printable(entry["name"].as_str().unwrap_or_default());
        match entry["kind"].as_str() {
            Some("directory") => writeln!(out, "{name}/")?,
            Some("file") => writeln!(out, "{name}\t{}", entry["size"])?,
            _ => writeln!(out, "{name}\t({})", entry["kind"].as_str().unwrap_or("?"))?,
        }
    }
    Ok(())
}

fn list_sessions(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let sessions = client.get("/v1/sessions")?.json()?;
    if json {
        line(&sessions.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = sessions
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let text = |key: &str| s[key].as_str().unwrap_or_default().to_owned();
            vec![
                text("id"),
                text("state"),
                text("mode"),
                s["calls"].to_string(),
                text("last_used_at"),
                s["stopped_reason"].as_str().unwrap_or("").to_owned(),
            ]
        })
        .collect();
    super::history::write_table(
        &mut std::io::stdout().lock(),
        &[
            "ID",
            "STATE",
            "MODE",
            "CALLS",
            "LAST USED",
            "STOPPED BECAUSE",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// One line on stdout.
fn line(text: &str) -> std::io::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")
}
