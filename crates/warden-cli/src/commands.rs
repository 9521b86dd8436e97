//! One module per subcommand.

pub(crate) mod doctor;
pub(crate) mod languages;
pub(crate) mod run;

use std::path::PathBuf;

use anyhow::Context;

/// The binary that acts as the sandbox helper: this very binary.
pub(crate) fn helper_binary() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("finding the warden binary to use as the sandbox helper")
}
