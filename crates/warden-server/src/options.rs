//! `warden serve`'s options: the `[server]` section of `warden.toml` with `--listen` applied
//! and every unset value given its default (some from the host's cores), plus the operator's
//! maxima that requests are checked against.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use warden_core::config::{MAX_QUEUE_SIZE, MAX_WORKERS};
use warden_core::{ByteSize, Limits, TokenConfig};
use warden_engine::Settings;

/// Where the server listens when neither `--listen` nor `[server] listen` says.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2358);

/// The file of the answers owed for later, beside the history database.
pub(crate) const RESULTS_FILE: &str = "results.sqlite3";

/// Everything the server is configured by, defaults applied.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Executions running at once.
    pub workers: usize,
    /// Threads of the async runtime, serving connections; executions run on threads of their
    /// own.
    pub io_threads: usize,
    /// Executions admitted beyond the running ones; past it, requests get 429.
    pub queue_size: usize,
    /// The largest request body, in bytes (413 beyond).
    pub max_body: usize,
    /// The most files one program may have.
    pub max_files: usize,
    /// The most requests one batch may carry.
    pub max_batch: usize,
    /// The most test cases one execution may carry.
    pub max_tests: usize,
    /// How long a synchronous request may wait in the queue and run (504 beyond).
    pub sync_deadline: Duration,
    /// How long running executions may take to finish once shutdown begins.
    pub shutdown_deadline: Duration,
    /// How long a connection may take to send a request's headers, or stay idle between two
    /// requests, or leave unread what the server sends it, before it is closed.
    pub header_read_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// The API tokens; empty means no authentication (loopback only).
    pub tokens: Vec<TokenConfig>,
    /// The most a request may ask for: asking more is refused, naming the field.
    pub maxima: Limits,
    /// The database of the answers owed for later (Judge0 submissions, `/v1` asynchronous
    /// executions): `results.sqlite3` beside the history. `None` keeps them in memory only.
    pub results: Option<PathBuf>,
    /// How long a finished answer is kept (`[server] results_max_age`).
    pub results_max_age: Duration,
    /// Whether a Judge0 submission may give a `callback_url` (`[server] judge0_callbacks`;
    /// by default only without tokens, docs/compat.md).
    pub judge0_callbacks: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map_or(2, usize::from)
            .min(MAX_WORKERS);
        Self {
            listen: vec![DEFAULT_LISTEN],
            workers,
            // Serving a request is a small part of its cost next to the execution's, which
            // runs on a thread of its own: fewer threads than cores leaves the cores to the
            // sandboxes, and a thread kept busy by several connections wakes less often (on
            // a 2-core VM, one thread instead of two gave two clients more runs in each of
            // five side-by-side runs, 0.5 to 6 points of bare, docs/BENCHMARKS.md).
            io_threads: (workers / 4).max(1),
            // Enough to keep the workers busy through bursts, small enough that a queued
            // request still finishes within a synchronous deadline.
            queue_size: default_queue_size(workers),
            max_body: ByteSize::mib(8).bytes() as usize,
            max_files: 64,
            max_batch: 20,
            // Above a judge's usual hundred cases; each case is a run of up to the wall
            // time's maximum, so a request's size is its cost.
            max_tests: 256,
            sync_deadline: Duration::from_secs(60),
            shutdown_deadline: Duration::from_secs(30),
            // Ample for a client on a slow link to send a few kilobytes of headers; short
            // enough that connections held open by a slow-loris client are freed quickly.
            header_read_timeout: Duration::from_secs(10),
            // Far below the file descriptor limit (the sandboxes need descriptors too), far
            // above what the workers can serve at once.
            max_connections: 512,
            tokens: Vec::new(),
            maxima: Limits::default_maxima(),
            results: None,
            // Long enough for any client that polls, short enough that the code and output
            // of asynchronous requests do not pile up on disk beside a history that may be
            // told to keep neither.
            results_max_age: Duration::from_secs(24 * 3600),
            // No tokens: the callers are this host's own.
            judge0_callbacks: true,
        }
    }
}

/// The queue when none is configured: 16 per worker, within the configuration's bound (the
/// workers are bounded too, so that it cannot overflow).
fn default_queue_size(workers: usize) -> usize {
    workers.saturating_mul(16).min(MAX_QUEUE_SIZE)
}

impl ServerOptions {
    /// The options of `settings`; a non-empty `listen` (from `--listen`) replaces the
    /// configured addresses.
    pub fn from_settings(settings: &Settings, listen: Vec<SocketAddr>) -> Self {
        let server = &settings.server;
        let defaults = Self::default();
        let workers = server.workers.unwrap_or(defaults.workers);
        let listen = match (listen.is_empty(), server.listen.is_empty()) {
            (false, _) => listen,
            (true, false) => server.listen.clone(),
            (true, true) => defaults.listen,
        };
        Self {
            listen,
            workers,
            io_threads: server.io_threads.unwrap_or(defaults.io_threads),
            queue_size: server
                .queue_size
                .unwrap_or_else(|| default_queue_size(workers)),
            max_body: server.max_body.map_or(defaults.max_body, |b| {
                usize::try_from(b.bytes()).unwrap_or(usize::MAX)
            }),
            max_files: server.max_files.unwrap_or(defaults.max_files),
            max_batch: server.max_batch.unwrap_or(defaults.max_batch),
            max_tests: server.max_tests.unwrap_or(defaults.max_tests),
            sync_deadline: server.sync_deadline.unwrap_or(defaults.sync_deadline),
            shutdown_deadline: server
                .shutdown_deadline
                .unwrap_or(defaults.shutdown_deadline),
            header_read_timeout: server
                .header_read_timeout
                .unwrap_or(defaults.header_read_timeout),
            max_connections: server.max_connections.unwrap_or(defaults.max_connections),
            tokens: server.tokens.clone(),
            maxima: settings.maxima,
            results: settings
                .history
                .path
                .parent()
                .map(|dir| dir.join(RESULTS_FILE)),
            results_max_age: server.results_max_age.unwrap_or(defaults.results_max_age),
            // With tokens the callers are remote, and a callback is a PUT of their making to
            // any loopback port of this host, where its private services listen.
            judge0_callbacks: server.judge0_callbacks.unwrap_or(server.tokens.is_empty()),
        }
    }

    /// The first address that is not loopback, when no token protects the server: binding it
    /// would open code execution to the network.
    pub fn exposed_without_token(&self) -> Option<SocketAddr> {
        if !self.tokens.is_empty() {
            return None;
        }
        self.listen.iter().copied().find(|a| !a.ip().is_loopback())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_a_token() {
        let mut options = ServerOptions::default();
        assert_eq!(options.exposed_without_token(), None);
        let public: SocketAddr = "0.0.0.0:2358".parse().expect("address");
        options.listen.push(public);
        assert_eq!(options.exposed_without_token(), Some(public));
        options.tokens.push(TokenConfig {
            name: "a".into(),
            token: "t".into(),
            max_concurrent: None,
            requests_per_minute: None,
            admin: false,
        });
        assert_eq!(options.exposed_without_token(), None);
    }

    #[test]
    fn connections_get_a_quarter_of_the_cores_unless_configured() {
        let defaults = ServerOptions::default();
        assert_eq!(defaults.io_threads, (defaults.workers / 4).max(1));
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("warden.toml");
        std::fs::write(&file, "[server]\nworkers = 16\nio_threads = 3\n").expect("written");
        let file = file.to_string_lossy().into_owned();
        let settings = Settings::load_with(|name| (name == "WARDEN_CONFIG").then(|| file.clone()))
            .expect("valid");
        let options = ServerOptions::from_settings(&settings, Vec::new());
        assert_eq!((options.workers, options.io_threads), (16, 3));
    }

    /// Judge0 callbacks are allowed by default only without tokens; the setting decides
    /// either way.
    #[test]
    fn judge0_callbacks_default_to_no_tokens() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let file = dir.path().join("warden.toml");
        let token = "[[server.tokens]]\nname = \"a\"\ntoken = \"t\"\n";
        for (config, allowed) in [
            (String::new(), true),
            (token.to_owned(), false),
            (format!("[server]\njudge0_callbacks = true\n{token}"), true),
            ("[server]\njudge0_callbacks = false\n".to_owned(), false),
        ] {
            std::fs::write(&file, &config).expect("written");
            let path = file.to_string_lossy().into_owned();
            let settings =
                Settings::load_with(|name| (name == "WARDEN_CONFIG").then(|| path.clone()))
                    .expect("valid");
            let options = ServerOptions::from_settings(&settings, Vec::new());
            assert_eq!(options.judge0_callbacks, allowed, "{config}");
        }
    }

    #[test]
    fn the_default_queue_is_bounded() {
        assert_eq!(default_queue_size(2), 32);
        assert_eq!(default_queue_size(MAX_WORKERS), 16 * MAX_WORKERS);
        assert_eq!(default_queue_size(usize::MAX), MAX_QUEUE_SIZE);
    }
}
