//! `warden serve`: the HTTP service (docs/server.md). Thin: settings, an engine that never
//! forks its helpers itself (the server is multi-threaded, ARCHITECTURE.md invariant 8) but has
//! a single-threaded zygote fork them (no exec of the binary per run), then
//! `warden_server::serve` until SIGTERM, SIGINT or SIGHUP.

use anyhow::Context;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Args;

/// Native sandboxes the server keeps ready per kind of program, unless `[server] pool_size`
/// says otherwise: two, so that two clients in a row both find one.
const DEFAULT_POOL_SIZE: usize = 2;

/// Runs one pooled sandbox serves, unless `[server] pool_reuse` says otherwise: one, so that a
/// pooled sandbox is, from inside, a fresh one. Reuse (reset in between, for one caller only)
/// is the operator's choice (docs/server.md, Warm pool).
const DEFAULT_POOL_REUSE: u64 = 1;

/// Arguments of `warden serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (repeatable); replaces `[server] listen`. Default 127.0.0.1:2358.
    /// Anything but loopback needs a token in `[[server.tokens]]`.
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = warden_engine::Settings::load()?;
    let options = warden_server::ServerOptions::from_settings(&settings, args.listen);
    let mut config = settings.engine_config(super::helper_binary()?);
    config.fork_helper = false;
    config.zygote = true;
    // Answer before the history is written; readers of the history still see every run.
    config.record_in_background = true;
    config.pool_size = settings.server.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    config.pool_reuse = settings
        .server
        .pool_reuse
        .unwrap_or(DEFAULT_POOL_REUSE)
        .max(1);
    config.pool_languages = settings
        .server
        .pool_languages
        .iter()
        .map(|(language, count)| (language.clone(), *count))
        .collect();
    let engine = warden_engine::Engine::new(config)?;
    engine
        .warm_pool()
        .context("starting the warm pool ([server] pool_languages)")?;
    warden_server::serve(engine, options)?;
    Ok(ExitCode::SUCCESS)
}
