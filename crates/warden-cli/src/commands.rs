//! One module per subcommand.

pub(crate) mod detect;
pub(crate) mod doctor;
pub(crate) mod languages;
pub(crate) mod run;
mod sources;

use std::path::PathBuf;

use anyhow::Context;

/// The compile cache: `WARDEN_CACHE_DIR` or the default directory.
pub(crate) fn compile_cache() -> warden_engine::CompileCache {
    use warden_engine::compile_cache::{DEFAULT_CACHE_DIR, DEFAULT_MAX_BYTES};
    let dir = std::env::var_os("WARDEN_CACHE_DIR")
        .map_or_else(|| PathBuf::from(DEFAULT_CACHE_DIR), PathBuf::from);
    warden_engine::CompileCache::new(dir, DEFAULT_MAX_BYTES)
}

/// The binary that acts as the sandbox helper: this very binary.
pub(crate) fn helper_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the warden binary to use as the sandbox helper")
}
