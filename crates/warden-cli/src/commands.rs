//! One module per subcommand.

pub(crate) mod analyze;
pub(crate) mod batch;
mod client;
mod connect;
pub(crate) mod detect;
pub(crate) mod doctor;
pub(crate) mod events;
pub(crate) mod history;
pub(crate) mod languages;
mod limit_args;
pub(crate) mod mcp;
pub(crate) mod network;
mod passed_on;
pub(crate) mod run;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod show;
mod sources;
pub(crate) mod stats;
pub(crate) mod tool;
pub(crate) mod volume;

use std::io::{BufWriter, StdoutLock};
use std::path::PathBuf;

use anyhow::Context;

/// Text that others wrote (a tool's description, a file name a program made, a host name it
/// asked for, a policy's reason) for a terminal: a control character, a newline or an escape
/// sequence that would retitle the window, clear the screen or move the cursor over what the
/// operator reads, written as its escape instead.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Standard output for a command that writes its answer at once (a listing, a record, a
/// report). The standard stream is line-buffered, so a pretty-printed history of 100 000
/// executions took 4.4 million `write` calls and 7.6 s; buffered, a few thousand. The caller
/// flushes it, so that a failed write is an error rather than lost in a drop.
pub(crate) fn buffered_stdout() -> BufWriter<StdoutLock<'static>> {
    BufWriter::with_capacity(64 * 1024, std::io::stdout().lock())
}

/// The engine, configured from `warden.toml` and the environment (`warden_engine::Settings`).
/// `tweak` adjusts the configuration for one command (e.g. `--no-cache`).
pub(crate) fn engine(
    tweak: impl FnOnce(&mut warden_engine::EngineConfig),
) -> anyhow::Result<warden_engine::Engine> {
    let settings = warden_engine::Settings::load()?;
    let mut config = settings.engine_config(helper_binary()?);
    // The CLI is single-threaded when it runs a program: the helper can be forked rather than
    // exec'd.
    config.fork_helper = true;
    tweak(&mut config);
    Ok(warden_engine::Engine::new(config)?)
}

/// Reports warden's own failure of a `--json` command: `{"error": ...}` on stdout, the message
/// on stderr, exit status 125.
pub(crate) fn json_error(e: &anyhow::Error) -> anyhow::Result<std::process::ExitCode> {
    use std::io::Write as _;
    let error = serde_json::json!({ "error": format!("{e:#}") });
    writeln!(std::io::stdout().lock(), "{error}")?;
    eprintln!("warden: {e:#}");
    Ok(std::process::ExitCode::from(crate::exit_code::WARDEN_ERROR))
}

/// `e` for the user: when naming the language would settle it, how to on the command line
/// (the engine's message says only what is wrong, for every adapter alike).
pub(crate) fn with_language_hint(e: warden_engine::EngineError) -> anyhow::Error {
    if e.needs_language() {
        anyhow::anyhow!("{}; pass --lang", warden_engine::error_chain(&e))
    } else {
        e.into()
    }
}

/// The binary that acts as the sandbox helper: this very binary.
pub(crate) fn helper_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the warden binary to use as the sandbox helper")
}
