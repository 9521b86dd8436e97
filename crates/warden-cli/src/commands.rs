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
/// operator reads, and an invisible format character (a bidi override or isolate that shows a
/// line reversed or reordered, a zero-width one, a line separator), written as its escape
/// instead.
pub(crate) fn printable(text: &str) -> String {
    if !text.chars().any(hidden) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if hidden(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A character that does something on a terminal other than show itself: a control (Unicode
/// category Cc), a format character (Cf: U+200E/F marks, U+202A-202E embeddings and
/// overrides, U+2066-2069 isolates, U+061C, zero-width characters, tags, ...), or a line or
/// paragraph separator (Zl, Zp).
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061c}'
                | '\u{06dd}'
                | '\u{070f}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08e2}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{206f}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{110bd}'
                | '\u{110cd}'
                | '\u{13430}'..='\u{1343f}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0001}'
                | '\u{e0020}'..='\u{e007f}'
        )
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

#[cfg(test)]
mod tests {
    use super::printable;

    /// Hunt hist 4: Unicode format characters (bidi overrides and isolates, marks, zero-width
    /// ones) passed through: a tool's description or a path a program tried to write with
    /// U+202E showed reversed on the operator's terminal. They are escaped as controls are.
    #[test]
    fn bidi_and_format_characters_are_escaped() {
        for c in [
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{202e}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200e}',
            '\u{200f}',
            '\u{061c}',
            '\u{200b}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0041}',
            '\u{00ad}',
        ] {
            let shown = printable(&format!("/etc/x{c}abc"));
            assert_eq!(shown, format!("/etc/x{}abc", c.escape_default()), "{c:?}");
            assert!(shown.is_ascii(), "{shown}");
        }
        assert_eq!(printable("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        // Letters of every script, and combining marks, are text.
        for text in ["naïve café", "שלום", "مرحبا", "日本語", "e\u{301}"] {
            assert_eq!(printable(text), text);
        }
    }
}
