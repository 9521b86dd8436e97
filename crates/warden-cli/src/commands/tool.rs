//! `warden tool`: the tool registry (docs/tools.md): list and show the tools, call one,
//! register a tool file or wrap a host command, approve or remove a registered tool, and the
//! per-tool statistics. The engine owns all of it; this parses and renders.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use warden_core::bounded_file::{self, MAX_SETTINGS_FILE};
use warden_engine::tools::{wrap_definition, WrapRequest};
use warden_engine::{Engine, Origin, Registrant, ToolCallRequest, ToolStats, ToolStatus};

use super::history::{parse_since, write_table};
use super::printable;

/// Arguments of `warden tool`.
#[derive(Debug, Args)]
pub(crate) struct ToolArgs {
    #[command(subcommand)]
    command: ToolCommand,
}

#[derive(Debug, Subcommand)]
enum ToolCommand {
    /// List the tools: name, category, risk level, status.
    List(JsonFlag),
    /// Show one tool: its description, assessment, input schema and how it runs.
    Show {
        /// The tool's name.
        name: String,
        #[command(flatten)]
        json: JsonFlag,
    },
    /// Call a tool. Prints its output; exits 0 when it succeeded, 1 when it failed, 2 when
    /// the call was refused (unknown tool, invalid input), 125 when warden failed or the tool
    /// is unavailable on this host.
    Call(CallArgs),
    /// Register a tool file (and the program it names, read from beside it).
    Register {
        /// The tool file (TOML).
        file: PathBuf,
        /// Replace a registered tool of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Register a host command as a sandboxed tool: `warden tool wrap NAME -- COMMAND [ARGS]`.
    /// Its callers pass more arguments (never options) and stdin.
    Wrap(WrapArgs),
    /// Approve a registered tool that awaits approval.
    Approve {
        /// The tool's name.
        name: String,
        /// The digest `warden tool show NAME` printed for what you reviewed: needed for a
        /// tool an API client registered, which it may replace at any time; refused when the
        /// tool's files changed since.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Remove a registered tool.
    Rm {
        /// The tool's name.
        name: String,
    },
    /// Calls, successes, failures, refusals, violations and latency per tool and category.
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
struct JsonFlag {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CallArgs {
    /// The tool's name.
    name: String,
    /// The input, a JSON object; `-` reads it from stdin. Default `{}`.
    #[arg(long, value_name = "JSON")]
    input: Option<String>,
    /// Print the whole reply (output, structured output, execution) as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct WrapArgs {
    /// The tool's name.
    name: String,
    /// What the tool does, for the agents choosing it.
    #[arg(long)]
    description: Option<String>,
    /// The network policy it runs under (default no_access).
    #[arg(long)]
    network: Option<String>,
    /// A host path it may read (repeatable), beside the sandbox's base tree.
    #[arg(long = "read-only", value_name = "PATH")]
    read_only: Vec<PathBuf>,
    /// Its wall-time limit (e.g. 30s).
    #[arg(long)]
    wall_time: Option<String>,
    /// Its memory limit (e.g. 256MiB).
    #[arg(long)]
    memory: Option<String>,
    /// Replace a registered tool of the same name.
    #[arg(long)]
    replace: bool,
    /// The command and its fixed arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, Args)]
struct StatsArgs {
    /// Only calls made within this long (e.g. 30m, 1h, 2d).
    #[arg(long, value_parser = parse_since, value_name = "DURATION")]
    since: Option<SystemTime>,
    #[command(flatten)]
    json: JsonFlag,
}

/// The exit status of a refused call.
const REFUSED: u8 = 2;

pub(crate) fn run(args: ToolArgs) -> anyhow::Result<ExitCode> {
    // Only a call writes the history; every other command reads it or leaves it alone, and a
    // history that does not exist yet is not created by them.
    let engine = match args.command {
        ToolCommand::Call(_) => super::engine(|_| {})?,
        _ => super::history::history_engine()?,
    };
    let mut out = std::io::stdout().lock();
    match args.command {
        ToolCommand::List(json) => list(&mut out, &engine, json.json)?,
        ToolCommand::Show { name, json } => show(&mut out, &engine, &name, json.json)?,
        ToolCommand::Call(call_args) => return call(&mut out, &engine, call_args),
        ToolCommand::Register { file, replace } => {
            let tool = engine.register_tool_file(&file, replace)?;
            registered(&mut out, &tool)?;
        }
        ToolCommand::Wrap(wrap) => {
            let text = wrap_definition(&wrap.request()?);
            let tool = engine.register_tool(&text, &[], wrap.replace, Registrant::Operator)?;
            registered(&mut out, &tool)?;
        }
        ToolCommand::Approve { name, digest } => {
            let tool = engine.approve_tool(&name, digest.as_deref())?;
            match &tool.digest {
                Some(digest) => writeln!(out, "approved {name} (digest {digest})")?,
                None => writeln!(out, "approved {name}")?,
            }
        }
        ToolCommand::Rm { name } => {
            engine.remove_tool(&name, Registrant::Operator)?;
            writeln!(out, "removed {name}")?;
        }
        ToolCommand::Stats(stats) => {
            let figures = engine.tool_stats(stats.since, None)?;
            write_stats(&mut out, &figures, stats.json.json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl WrapArgs {
    /// The wrap request, with the command resolved to an absolute program through `PATH`.
    fn request(&self) -> anyhow::Result<WrapRequest> {
        let mut command = self.command.clone();
        command[0] = absolute_program(&command[0])?;
        Ok(WrapRequest {
            name: self.name.clone(),
            command,
            description: self.description.clone(),
            network: self.network.clone(),
            read_only: self.read_only.clone(),
            wall_time: self.wall_time.clone(),
            memory: self.memory.clone(),
        })
    }
}

/// `program` if absolute, else the first executable of that name on `PATH`. Links are kept:
/// a virtual environment's `bin/python3` is a link whose path tells Python where its packages
/// are.
pub(super) fn absolute_program(program: &str) -> anyhow::Result<String> {
    let found = if program.starts_with('/') {
        Some(PathBuf::from(program))
    } else if program.contains('/') {
        Some(
            std::env::current_dir()
                .context("finding the current directory")?
                .join(program),
        )
    } else {
        // Without PATH, the search path a shell would use (confstr's _CS_PATH plus /usr/local).
        let path =
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    };
    match found {
        Some(found) if found.is_file() => Ok(found.to_string_lossy().into_owned()),
        Some(found) => bail!("{} does not exist", found.display()),
        None => bail!("{program} is not on PATH; give its absolute path"),
    }
}

fn list(out: &mut impl Write, engine: &Engine, json: bool) -> anyhow::Result<()> {
    let tools: Vec<_> = engine.tools().iter().map(|t| t.view()).collect();
    if json {
        serde_json::to_writer_pretty(&mut *out, &tools).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tools
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.category.to_string(),
                t.level.to_string(),
                status(&t.status),
                first_sentence(&t.description),
            ]
        })
        .collect();
    write_table(
        out,
        &["NAME", "CATEGORY", "LEVEL", "STATUS", "DESCRIPTION"],
        &rows,
    )?;
    for problem in engine.tool_load_problems() {
        // A registered file's problem may quote its registrant's text.
        write!(
            out,
            "skipped {}: {}",
            problem.file,
            printable(&problem.problem)
        )?;
        match &problem.tool {
            // Kept in the state directory all the same: said how it goes.
            Some(name) => writeln!(out, " (registered as {name}: warden tool rm {name})")?,
            None => writeln!(out)?,
        }
    }
    Ok(())
}

fn show(out: &mut impl Write, engine: &Engine, name: &str, json: bool) -> anyhow::Result<()> {
    let Some(tool) = engine.tool(name) else {
        bail!("no tool named {name:?} (warden tool list shows them)");
    };
    let view = tool.view();
    if json {
        serde_json::to_writer_pretty(&mut *out, &view).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    // A registered tool's text is its registrant's: escaped, so that it cannot move the
    // cursor over the assessment an operator reads before approving it.
    writeln!(
        out,
        "{}: {}",
        printable(&view.name),
        printable(&view.description)
    )?;
    writeln!(
        out,
        "category:    {} (declared {}), level {}",
        view.category, view.assessment.declared, view.level
    )?;
    writeln!(out, "status:      {}", status(&view.status))?;
    writeln!(
        out,
        "runs:        {} in mode {}, network {}",
        view.runs,
        match view.mode {
            warden_core::ModeRequest::Auto => "auto",
            warden_core::ModeRequest::Exactly(mode) => mode.name(),
        },
        view.network
    )?;
    for reason in &view.assessment.reasons {
        writeln!(out, "because:     {}", printable(reason))?;
    }
    for path in &view.read_only {
        writeln!(out, "read-only:   {}", printable(&path.to_string_lossy()))?;
    }
    if let Some(digest) = &view.digest {
        writeln!(out, "digest:      {digest}")?;
        if view.status == ToolStatus::Pending {
            writeln!(
                out,
                "approve:     warden tool approve {} --digest {digest}",
                view.name
            )?;
        }
    }
    writeln!(out, "input schema:")?;
    serde_json::to_writer_pretty(&mut *out, &view.input_schema)?;
    writeln!(out)?;
    if let Some(example) = &view.example {
        writeln!(
            out,
            "example:     warden tool call {} --input '{example}'",
            view.name
        )?;
    }
    Ok(())
}

fn call(out: &mut impl Write, engine: &Engine, args: CallArgs) -> anyhow::Result<ExitCode> {
    let text = match args.input.as_deref() {
        None => "{}".to_owned(),
        // Bounded: `--input - < /dev/zero` must not grow until the OOM killer comes; the
        // engine refuses an input over 1 MiB as compact JSON anyway (docs/tools.md).
        Some("-") => {
            let bytes = bounded_file::read_from(std::io::stdin().lock(), MAX_SETTINGS_FILE)
                .context("reading the input from stdin")?;
            String::from_utf8(bytes).context("reading the input from stdin: not UTF-8 text")?
        }
        Some(s) => s.to_owned(),
    };
    // The caller's mistake, refused before anything ran: exit 2, as an input the schema
    // refuses (125 says warden itself failed).
    let input: serde_json::Value = match serde_json::from_str(&text) {
        Ok(input) => input,
        Err(e) => {
            eprintln!("warden: the input is not valid JSON: {e}");
            return Ok(ExitCode::from(REFUSED));
        }
    };
    let reply = engine.call_tool(ToolCallRequest {
        tool: args.name,
        input,
        origin: Origin::new("cli", None),
        cancel: None,
    });
    let reply = match reply {
        Ok(reply) => reply,
        Err(e) if e.is_caller_fault() => {
            eprintln!("warden: {e}");
            return Ok(ExitCode::from(REFUSED));
        }
        Err(e) => return Err(e.into()),
    };
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &reply).context("writing JSON")?;
        writeln!(out)?;
    } else {
        out.write_all(reply.text.as_bytes())?;
        if !reply.text.is_empty() && !reply.text.ends_with('\n') {
            writeln!(out)?;
        }
    }
    Ok(if reply.refused {
        ExitCode::from(REFUSED)
    } else if reply.is_error {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn registered(out: &mut impl Write, tool: &warden_engine::RegisteredTool) -> anyhow::Result<()> {
    let view = tool.view();
    writeln!(
        out,
        "registered {}: category {}, level {}, {}",
        view.name,
        view.category,
        view.level,
        status(&view.status)
    )?;
    Ok(())
}

fn write_stats(out: &mut impl Write, stats: &ToolStats, json: bool) -> anyhow::Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, stats).context("writing JSON")?;
        writeln!(out)?;
        return Ok(());
    }
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |v| format!("{v}ms"));
    let rows: Vec<Vec<String>> = stats
        .tools
        .iter()
        .map(|t| {
            vec![
                t.tool.clone(),
                t.category.clone(),
                t.calls.to_string(),
                t.successes.to_string(),
                t.failures.to_string(),
                t.refusals.to_string(),
                t.violations.to_string(),
                ms(t.latency_p50_ms),
                ms(t.latency_p95_ms),
                t.last_error
                    .as_ref()
                    .map_or(String::new(), |e| first_sentence(&e.error)),
            ]
        })
        .collect();
    write_table(
        out,
        &[
            "TOOL",
            "CATEGORY",
            "CALLS",
            "OK",
            "FAILED",
            "REFUSED",
            "VIOLATIONS",
            "P50",
            "P95",
            "LAST ERROR",
        ],
        &rows,
    )?;
    writeln!(out)?;
    let rows: Vec<Vec<String>> = stats
        .categories
        .iter()
        .map(|c| {
            vec![
                c.category.clone(),
                c.calls.to_string(),
                c.successes.to_string(),
                c.failures.to_string(),
                c.refusals.to_string(),
                c.violations.to_string(),
            ]
        })
        .collect();
    write_table(
        out,
        &["CATEGORY", "CALLS", "OK", "FAILED", "REFUSED", "VIOLATIONS"],
        &rows,
    )?;
    Ok(())
}

fn status(status: &ToolStatus) -> String {
    match status {
        ToolStatus::Active => "active".into(),
        ToolStatus::Pending => "pending approval".into(),
        ToolStatus::Unavailable { reason } => format!("unavailable: {reason}"),
    }
}

/// The first sentence of `text`, at most 80 characters.
fn first_sentence(text: &str) -> String {
    let end = text.find(". ").map_or(text.len(), |i| i + 1);
    let sentence = &text[..end];
    if sentence.chars().count() > 80 {
        let cut: String = sentence.chars().take(77).collect();
        format!("{cut}...")
    } else {
        sentence.to_owned()
    }
}
