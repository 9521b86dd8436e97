//! `warden`: run untrusted code in a sandbox. Also the sandbox helper: the binary re-executes
//! itself as `warden __sandbox-helper` to build each sandbox from a fresh, single-threaded
//! process (docs/sandbox-setup.md).

mod commands;
mod exit_code;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Runs untrusted code in many languages, safely and fast.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a program in the sandbox.
    Run(Box<commands::run::RunArgs>),
    /// Run many programs in one process, several at once, each in its own sandbox: files, or
    /// JSON Lines of requests; one JSON result per line, in order.
    Batch(Box<commands::batch::BatchArgs>),
    /// Report which isolation features this host supports.
    Doctor(commands::doctor::DoctorArgs),
    /// List the languages warden knows and whether their runtimes are installed.
    Languages(commands::languages::LanguagesArgs),
    /// Tell which language a file or code is in, how surely, and the runner-up.
    Detect(commands::detect::DetectArgs),
    /// Statically analyse a program: findings and threat level. Runs nothing.
    Analyze(commands::analyze::AnalyzeArgs),
    /// List recorded executions, newest first.
    History(commands::history::HistoryArgs),
    /// Show everything recorded of one execution.
    Show(commands::show::ShowArgs),
    /// Statistics over recorded executions.
    Stats(commands::stats::StatsArgs),
    /// Security events of recorded executions: limits hit, forbidden operations, denied
    /// connections, with their severity.
    Events(commands::events::EventsArgs),
    /// Serve the HTTP API (own API under /v1) until SIGTERM, SIGINT or SIGHUP.
    Serve(commands::serve::ServeArgs),
    /// Network policies: list, show, export, import, remove, check a destination; the package
    /// registries found on this host; the recorded executions' traffic log and its statistics.
    Network(commands::network::NetworkArgs),
    /// The tool registry: list, show, call, register, wrap a host command, approve, remove,
    /// statistics.
    Tool(commands::tool::ToolArgs),
    /// Sessions of a running `warden serve`: sandboxes that live across calls, with a
    /// persistent workspace (create, exec, cp, ls, rm, list, show).
    Session(commands::session::SessionArgs),
    /// Serve the tool registry over MCP on stdin/stdout; `mcp wrap` runs a third-party MCP
    /// server in a sandbox.
    Mcp(commands::mcp::McpArgs),
    /// Named persistent volumes: create with a quota, list, inspect, remove, prune.
    Volume(commands::volume::VolumeArgs),
}

/// `warden run` alone, parsed first: clap builds the whole command tree, every subcommand's
/// arguments, before it parses, which cost each run about 0.7 ms. A command line this one
/// does not accept (another command, `--help`, a mistake) goes to [`Cli`], which answers it
/// as before.
#[derive(Debug, Parser)]
#[command(name = "warden", version, about, propagate_version = true)]
struct RunCli {
    #[command(subcommand)]
    command: RunOnly,
}

#[derive(Debug, Subcommand)]
enum RunOnly {
    Run(Box<commands::run::RunArgs>),
}

fn main() -> ExitCode {
    // The helper must not start logging threads or parse arguments: it is the clean,
    // single-threaded process that builds a sandbox.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::HELPER_ARG)
    {
        warden_sandbox::helper_main();
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::ZYGOTE_ARG)
    {
        warden_sandbox::zygote_main();
    }
    // A gVisor job's first step, inside the sandbox: install the seccomp filter, exec the job.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::SECCOMP_EXEC_ARG)
    {
        warden_sandbox::seccomp_exec_main();
    }
    // A one-job gVisor sandbox's job: join the run's cgroup, become `runsc run`.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_sandbox::CGROUP_EXEC_ARG)
    {
        warden_sandbox::cgroup_exec_main();
    }
    init_logging();
    let run_only = std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "run")
        .then(RunCli::try_parse)
        .and_then(Result::ok);
    let command = match run_only {
        Some(RunCli {
            command: RunOnly::Run(args),
        }) => Command::Run(args),
        None => Cli::parse().command,
    };
    let result = match command {
        Command::Run(args) => commands::run::run(*args),
        Command::Batch(args) => commands::batch::run(*args),
        Command::Doctor(args) => commands::doctor::run(args),
        Command::Languages(args) => commands::languages::run(args),
        Command::Detect(args) => commands::detect::run(args),
        Command::Analyze(args) => commands::analyze::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Show(args) => commands::show::run(args),
        Command::Stats(args) => commands::stats::run(args),
        Command::Events(args) => commands::events::run(args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Network(args) => commands::network::run(args),
        Command::Tool(args) => commands::tool::run(args),
        Command::Mcp(args) => commands::mcp::run(args),
        Command::Volume(args) => commands::volume::run(args),
        Command::Session(args) => commands::session::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) && stdout_is_broken() => {
            ExitCode::from(exit_code::BROKEN_PIPE)
        }
        Err(e) => {
            // Each cause once: an error that shows its source in its own message is not
            // followed by it again.
            eprintln!("warden: {}", warden_engine::error_chain(e.as_ref()));
            ExitCode::from(exit_code::WARDEN_ERROR)
        }
    }
}

/// Whether `e` came of writing to a pipe whose reader had gone.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = match cause.downcast_ref::<std::io::Error>() {
            Some(io) => Some(io.kind()),
            // serde_json's error hides its io::Error from `source()`.
            None => cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind),
        };
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether standard output is a pipe whose reader has gone (`warden history | head`): then
/// the broken pipe is the reader's choice, and warden ends quietly, as `SIGPIPE` would have
/// ended it. Asked of the stream itself: another pipe's failure (a program's stdin, a socket)
/// is still reported.
fn stdout_is_broken() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd as _;
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLERR))
}

/// Logs go to stderr, filtered by `WARDEN_LOG` (e.g. `WARDEN_LOG=debug`); stdout carries only
/// results.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
        // rmcp logs whole messages at debug: programs' code and output, which are data and
        // never logged (DESIGN.md §2.9).
        .add_directive("rmcp=warn".parse().expect("a valid directive"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
