//! `warden`: run untrusted code in a sandbox. Also the sandbox helper: the binary re-executes
//! itself as `warden __sandbox-helper` to build each sandbox from a fresh, single-threaded
//! process (docs/sandbox-setup.md).

mod commands;
mod exit_code;
mod signal_watcher;
mod usage_hints;

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
    // An analysis worker of a multi-threaded warden (docs/analysis.md#bounds): no logging
    // thread, no arguments.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == warden_engine::ANALYSIS_WORKER_ARG)
    {
        return warden_engine::analysis_worker_main();
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
        None => match Cli::try_parse() {
            Ok(cli) => cli.command,
            Err(e) => {
                let args: Vec<_> = std::env::args_os().skip(1).collect();
                usage_hints::with_hint(e, &args).exit()
            }
        },
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
    let (filter, ignored) = log_filter(std::env::var("WARDEN_LOG"));
    if let Some(why) = ignored {
        eprintln!("warden: warning: {why}");
    }
    // rmcp logs whole messages at debug: programs' code and output, which are data and never
    // logged (DESIGN.md §2.9).
    let filter = filter.add_directive("rmcp=warn".parse().expect("a valid directive"));
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(coloured(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
        .init();
}

/// Whether log lines are coloured: only on a terminal (a log file, a pipe or journald would
/// keep the escape sequences as text), and not when `NO_COLOR` is set to anything but the
/// empty string (no-color.org).
fn coloured(stderr_is_terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// The log filter `WARDEN_LOG`'s value asks for; a value that is no filter (a typo, text that
/// is not UTF-8) gives the default, `warn`, and the one-line warning saying so and why.
fn log_filter(
    value: Result<String, std::env::VarError>,
) -> (tracing_subscriber::EnvFilter, Option<String>) {
    use tracing_subscriber::EnvFilter;
    const DEFAULT: &str = "warn";
    let why = match value {
        Err(std::env::VarError::NotPresent) => return (EnvFilter::new(DEFAULT), None),
        Err(std::env::VarError::NotUnicode(raw)) => {
            format!("WARDEN_LOG={raw:?} is ignored: it is not UTF-8")
        }
        Ok(text) => match EnvFilter::try_new(&text) {
            Ok(filter) => return (filter, None),
            Err(e) => format!("WARDEN_LOG={text:?} is ignored: {e}"),
        },
    };
    let why = why.replace(['\n', '\r'], " ");
    (
        EnvFilter::new(DEFAULT),
        Some(format!("{why}; logging at the default level ({DEFAULT})")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt cli 5: log lines written to a file or a pipe carried ANSI colour codes.
    #[test]
    fn logs_are_coloured_only_on_a_terminal_without_no_color() {
        assert!(coloured(true, None));
        assert!(coloured(true, Some("".into())));
        assert!(!coloured(false, None));
        assert!(!coloured(true, Some("1".into())));
        assert!(!coloured(false, Some("1".into())));
    }

    /// Bug hunt: `WARDEN_LOG=nonsense=foo[` was dropped without a word, and logging went on at
    /// the default level as if the variable were unset.
    #[test]
    fn a_bad_warden_log_is_named_in_one_line_and_the_default_kept() {
        let (filter, ignored) = log_filter(Ok("nonsense=foo[".into()));
        let ignored = ignored.expect("a warning");
        assert!(
            ignored.starts_with("WARDEN_LOG=\"nonsense=foo[\" is ignored: ")
                && ignored.ends_with("; logging at the default level (warn)")
                && !ignored.contains('\n'),
            "{ignored}"
        );
        assert_eq!(filter.to_string(), "warn");
        let not_utf8 = std::os::unix::ffi::OsStringExt::from_vec(vec![b'd', 0xff]);
        let (_, ignored) = log_filter(Err(std::env::VarError::NotUnicode(not_utf8)));
        assert!(ignored.is_some_and(|w| w.contains("not UTF-8")));
        for quiet in [
            Err(std::env::VarError::NotPresent),
            Ok("debug".into()),
            Ok("warden_engine=debug,info".into()),
        ] {
            let (_, ignored) = log_filter(quiet.clone());
            assert_eq!(ignored, None, "{quiet:?}");
        }
        assert_eq!(log_filter(Ok("debug".into())).0.to_string(), "debug");
    }
}
