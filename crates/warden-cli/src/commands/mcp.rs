//! `warden mcp`: the tool registry served over MCP on stdin/stdout (docs/mcp.md), and
//! `warden mcp wrap`, which runs a third-party stdio MCP server in a sandbox and relays its
//! messages. stdout is the protocol channel: nothing else may be written to it (logs go to
//! stderr). Both end at once on SIGTERM, SIGINT, SIGHUP or SIGQUIT (how MCP clients end a
//! stdio server that outlives its closed stdin), recording what was in flight, and exit 128 +
//! the signal.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use warden_engine::{McpWrap, Origin, RelayReport, RelayStop, StopKind, ToolStatus};

use crate::signal_watcher::SignalWatcher;

/// Arguments of `warden mcp`.
#[derive(Debug, Args)]
pub(crate) struct McpArgs {
    #[command(subcommand)]
    command: Option<McpCommand>,
}

#[derive(Debug, Subcommand)]
enum McpCommand {
    /// Run a stdio MCP server in a sandbox and relay its messages:
    /// `warden mcp wrap NAME [--network POLICY] [--read-only PATH] -- COMMAND [ARGS]`. Use it
    /// as the command an MCP client launches.
    Wrap(WrapArgs),
}

#[derive(Debug, Args)]
struct WrapArgs {
    /// The server's name: its tools are counted as NAME/TOOL in `warden tool stats`.
    name: String,
    /// The network policy it runs under (default: the configuration's `[network] default`,
    /// `no_access` unless the operator changed it).
    #[arg(long)]
    network: Option<String>,
    /// A host path it may read (repeatable): its code, its packages.
    #[arg(long = "read-only", value_name = "PATH")]
    read_only: Vec<PathBuf>,
    /// Its memory limit (default 512MiB).
    #[arg(long)]
    memory: Option<warden_core::ByteSize>,
    /// How long it may live (default: the operator's maximum wall time).
    #[arg(long, value_parser = warden_core::parse_duration)]
    wall_time: Option<std::time::Duration>,
    /// How long a tool call may wait for its answer before it fails (default 120s).
    #[arg(long, value_parser = warden_core::parse_duration)]
    call_timeout: Option<std::time::Duration>,
    /// The server's command: an absolute program (or one on PATH) and its arguments. Without
    /// it, NAME is a registered tool file with `[run] mcp = [...]`, whose command, network
    /// policy, read-only paths and limits are used.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub(crate) fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => serve(),
        Some(McpCommand::Wrap(wrap)) => relay(wrap),
    }
}

/// How long a signalled `warden mcp` waits for its cancelled calls to be recorded: killing a
/// sandbox and writing its record take well under a second; an MCP client sends SIGKILL about
/// 2 s after SIGTERM.
const CANCELLED_CALLS_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the registry on stdio until the client closes its side, or a signal (SIGTERM,
/// SIGINT, SIGHUP, SIGQUIT) ends the session at once: the calls in flight are cancelled and
/// recorded (docs/mcp.md#answers, Cancelling) and the exit status is 128 + the signal's number.
fn serve() -> anyhow::Result<ExitCode> {
    let settings = warden_engine::Settings::load()?;
    let mut config = settings.engine_config(super::helper_binary()?);
    // The async runtime makes this process multi-threaded: a zygote forks the helpers.
    config.fork_helper = false;
    config.zygote = true;
    // A long-lived process: its analyses stay in its memory, and a miss writes no file.
    config.analyses_dir = None;
    // `[server] workers` and `queue_size` bound the calls a client runs at once, as they
    // bound a server's executions (docs/mcp.md#connecting-a-client).
    let server = warden_server::ServerOptions::from_settings(&settings, Vec::new());
    let engine = Arc::new(warden_engine::Engine::new(config)?);
    let tools = Arc::new(warden_server::mcp::EngineTools::new(
        engine,
        server.workers,
        server.queue_size,
    ));
    let host: Arc<dyn warden_server::mcp::ToolHost> = tools.clone();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let signals = SignalWatcher::start(move |_| {
        stop.send_replace(true);
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("warden-mcp")
        .build()
        .context("starting the async runtime")?;
    let served = runtime.block_on(warden_server::mcp::serve_stdio(host, stopped));
    if signals.received().is_some() {
        if !runtime.block_on(tools.finish(CANCELLED_CALLS_GRACE)) {
            tracing::warn!("calls cancelled by a signal had not ended when warden mcp exited");
        }
        // Not the runtime's drop, which would wait for a blocking read of stdin (a terminal)
        // that only the client can end; the calls have ended above.
        runtime.shutdown_background();
    } else {
        // Waits for the calls the session's end cancelled to be recorded, the signals still
        // watched (a signal now only sets the exit status: they are cancelled already).
        drop(runtime);
    }
    match signals.stop() {
        Some(signal) => Ok(crate::signal_watcher::exit_status(signal)),
        None => {
            served.context("serving MCP over stdio")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The wrap of the registered MCP server `name`, which must be approved.
fn registered(engine: &warden_engine::Engine, name: &str) -> anyhow::Result<McpWrap> {
    let Some(tool) = engine.tool(name) else {
        bail!(
            "no tool named {name:?}: give the server's command after --, or register its tool file"
        );
    };
    match &tool.status {
        ToolStatus::Active => {}
        ToolStatus::Pending => bail!("{name} awaits an operator's approval (warden tool approve)"),
        ToolStatus::Unavailable { reason } => bail!("{name} is unavailable: {reason}"),
    }
    McpWrap::from_tool(&tool).with_context(|| format!("{name} is a tool, not an MCP server"))
}

/// Relays between this process's stdin/stdout and the sandboxed server until both are done,
/// or a signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) ends the relay at once: the server is
/// killed, its execution and the calls recorded, and the exit status is 128 + the signal's
/// number.
fn relay(args: WrapArgs) -> anyhow::Result<ExitCode> {
    let engine = super::engine(|_| {})?;
    let mut wrap = match args.command.first() {
        Some(program) => {
            let mut command = args.command.clone();
            command[0] = super::tool::absolute_program(program)?;
            McpWrap {
                name: args.name,
                command,
                network: None,
                read_only: Vec::new(),
                limits: warden_core::LimitOverrides::default(),
                origin: Origin::new("mcp", None),
                call_timeout: warden_engine::DEFAULT_CALL_TIMEOUT,
                stop: RelayStop::default(),
            }
        }
        None => registered(&engine, &args.name)?,
    };
    wrap.network = args.network.or(wrap.network);
    wrap.read_only.extend(args.read_only);
    wrap.limits.memory = args.memory.or(wrap.limits.memory);
    wrap.limits.wall_time = args.wall_time.or(wrap.limits.wall_time);
    if let Some(timeout) = args.call_timeout {
        wrap.call_timeout = timeout;
    }
    let signals = SignalWatcher::start({
        let stop = wrap.stop.clone();
        move |_| stop.stop()
    })?;
    let report = engine.relay_mcp(
        wrap,
        Box::new(std::io::stdin()),
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    );
    if let Some(signal) = signals.stop() {
        // The relay has recorded what it could before it returned; its failure is logged.
        if let Err(e) = &report {
            eprintln!("warden: {e:#}");
        }
        return Ok(crate::signal_watcher::exit_status(signal));
    }
    Ok(exit_status(&report?))
}

/// The exit status of a relay that ended on its own (docs/cli.md#warden-mcp-and-warden-mcp-wrap).
fn exit_status(report: &RelayReport) -> ExitCode {
    if let Some(stopped) = &report.stopped {
        eprintln!("warden: the wrapped server was stopped: {}", stopped.reason);
        return ExitCode::from(match stopped.kind {
            StopKind::Denied => crate::exit_code::VIOLATION,
            StopKind::OutputLimit => crate::exit_code::OUTPUT_LIMIT,
            StopKind::StoppedReading => crate::exit_code::MCP_SERVER_FAILED,
        });
    }
    match &report.execution {
        // Killed after its client left (`EXIT_GRACE`): the relay's ordinary end, as before the
        // cancelled execution was recorded.
        Some(execution) if execution.outcome == warden_core::Outcome::Cancelled => {
            ExitCode::SUCCESS
        }
        Some(execution) if !execution.outcome.is_success() => {
            eprintln!("warden: the wrapped server ended: {}", execution.outcome);
            ExitCode::from(crate::exit_code::for_outcome(&execution.outcome))
        }
        _ => ExitCode::SUCCESS,
    }
}
