//! One module per subcommand.

pub(crate) mod analyze;
pub(crate) mod detect;
pub(crate) mod doctor;
pub(crate) mod history;
pub(crate) mod languages;
pub(crate) mod run;
pub(crate) mod show;
mod sources;
pub(crate) mod stats;

use std::path::PathBuf;

use anyhow::Context;

/// The compile cache: `WARDEN_CACHE_DIR` or the default directory.
pub(crate) fn compile_cache() -> warden_engine::CompileCache {
    use warden_engine::compile_cache::{DEFAULT_CACHE_DIR, DEFAULT_MAX_BYTES};
    let dir = std::env::var_os("WARDEN_CACHE_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from);
    warden_engine::CompileCache::new(dir, DEFAULT_MAX_BYTES)
}

/// The operator's configuration: `WARDEN_CONFIG` (which must exist), else
/// /etc/warden/warden.toml if it exists, else the defaults.
pub(crate) fn config() -> anyhow::Result<warden_core::Config> {
    use anyhow::Context as _;
    let (path, optional) = match std::env::var_os("WARDEN_CONFIG") {
        Some(path) => (PathBuf::from(path), false),
        None => (
            PathBuf::from(warden_core::config::DEFAULT_CONFIG_PATH),
            true,
        ),
    };
    warden_core::Config::load(&path, optional).context("loading the configuration")
}

/// The history database: `WARDEN_DB`, else `configured` (the configuration's `[history] path`),
/// else `$XDG_DATA_HOME/warden/history.sqlite3`, else `$HOME/.local/share/warden/history.sqlite3`,
/// else `/var/lib/warden/history.sqlite3`.
pub(crate) fn history_path(configured: Option<PathBuf>) -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(db) = var("WARDEN_DB").or(configured) {
        return db;
    }
    // The XDG spec says to ignore a relative XDG_DATA_HOME.
    let data = var("XDG_DATA_HOME")
        .filter(|d| d.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".local/share")));
    data.map_or_else(
        || PathBuf::from("/var/lib/warden/history.sqlite3"),
        |d| d.join("warden/history.sqlite3"),
    )
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

/// The binary that acts as the sandbox helper: this very binary.
pub(crate) fn helper_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the warden binary to use as the sandbox helper")
}
