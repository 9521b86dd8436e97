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
    raise_open_files(options.max_connections);
    let mut config = settings.engine_config(super::helper_binary()?);
    config.fork_helper = false;
    config.zygote = true;
    // Answer before the history is written; readers of the history still see every run.
    config.record_in_background = true;
    // A server lives on: its analyses stay in its memory, and a miss writes no file.
    config.analyses_dir = None;
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

/// Descriptors the server needs besides one per connection: each running execution's pipes,
/// pidfds and sockets, the databases, the listeners, the zygote's channel.
const SPARE_FILES: u64 = 1024;

/// Raises the soft limit on open files to the hard one, as long-running servers do (a
/// service manager's default soft limit, 1024, is below what `max_connections` (512 by
/// default) open connections and as many running executions can take); warns when even the
/// hard limit is below `max_connections` and the spare. Past the limit the server does not
/// fail: a connection it cannot accept waits, and the accept is tried again a second later.
/// The programs never see it: every sandbox sets their own (`max_open_files`).
fn raise_open_files(max_connections: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let mut open = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => open = hard,
            Err(e) => tracing::warn!(error = %e, soft, hard, "raising the open files limit failed"),
        }
    }
    let wanted = u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_FILES);
    if open < wanted {
        tracing::warn!(
            open_files = open,
            max_connections,
            "the open files limit (RLIMIT_NOFILE) is below [server] max_connections and the \
             descriptors the executions need; connections past it wait to be accepted"
        );
    }
}
