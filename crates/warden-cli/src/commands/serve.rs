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
    let open_files = raise_open_files(options.max_connections, options.workers);
    let mut config = settings.engine_config(super::helper_binary()?);
    config.proxy_share = Some(proxy_share(
        open_files,
        options.max_connections,
        options.workers,
    ));
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
/// default) open connections and as many running executions can take), and returns it; warns
/// when even the hard limit is below what `max_connections`, the spare and the proxies of
/// `workers` executions with egress, each holding its most, take together. Past the limit the
/// server does not fail: a connection it cannot accept waits, and the accept is tried again a
/// second later; the proxies' part is divided among the executions ([`proxy_share`]). The
/// programs never see it: every sandbox sets their own (`max_open_files`).
fn raise_open_files(max_connections: usize, workers: usize) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return u64::MAX;
    };
    let mut open = soft;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => open = hard,
            Err(e) => tracing::warn!(error = %e, soft, hard, "raising the open files limit failed"),
        }
    }
    let wanted = kept_for_the_server(max_connections)
        .saturating_add(warden_net::ProxyShare::needed(workers));
    if open < wanted {
        let share = proxy_share(open, max_connections, workers);
        tracing::warn!(
            open_files = open,
            wanted,
            max_connections,
            workers,
            proxy_connections = share.max_clients,
            proxy_descriptors = share.descriptors.total(),
            "the open files limit (RLIMIT_NOFILE) is below [server] max_connections, the \
             descriptors the executions need and their proxies' at the most; each \
             execution's proxy holds fewer of its program's connections at once \
             (proxy_connections, 256 otherwise), all of them together what proxy_descriptors \
             allows (two a connection; past it they are refused), and connections past the \
             limit wait to be accepted"
        );
    }
    open
}

/// The descriptors kept for the server besides the proxies: a connection each, and the spare.
fn kept_for_the_server(max_connections: usize) -> u64 {
    u64::try_from(max_connections)
        .unwrap_or(u64::MAX)
        .saturating_add(SPARE_FILES)
}

/// The proxies' part of `open_files`, what is left after [`kept_for_the_server`], shared by
/// `workers` executions: all of them holding their most fit in it, so that one caller's
/// programs cannot take the descriptors another's executions, the API or the warm pool need
/// (docs/server.md, Open files).
fn proxy_share(open_files: u64, max_connections: usize, workers: usize) -> warden_net::ProxyShare {
    let for_proxies = open_files.saturating_sub(kept_for_the_server(max_connections));
    warden_net::ProxyShare::new(for_proxies, workers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt net N2: the proxies' descriptors were not counted: with a hard limit of 1600, 512
    /// connections and four workers, three executions' proxies (about 517 descriptors each)
    /// took the server's and another caller's execution failed with "Too many open files".
    #[test]
    fn the_proxies_of_all_workers_fit_in_what_the_server_leaves_them() {
        let share = proxy_share(1600, 512, 4);
        assert_eq!(share.descriptors.total(), 1600 - 512 - 1024);
        assert_eq!(share.max_clients, warden_net::MIN_CLIENTS);
        let share = proxy_share(20_000, 512, 40);
        let per_proxy = warden_net::DESCRIPTORS_PER_PROXY
            + u64::from(share.max_clients) * warden_net::DESCRIPTORS_PER_CONNECTION;
        assert!(40 * per_proxy <= share.descriptors.total());
        assert!(share.max_clients < warden_net::DEFAULT_MAX_CLIENTS);
        let plenty = proxy_share(1 << 20, 512, 40);
        assert_eq!(plenty.max_clients, warden_net::DEFAULT_MAX_CLIENTS);
        let none_left = proxy_share(1000, 512, 4);
        assert_eq!(
            none_left.descriptors.total(),
            0,
            "every connection is refused"
        );
    }
}
