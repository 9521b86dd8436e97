//! The `[server]` section of `warden.toml`: what `warden serve` listens on, how much work it
//! admits, how large a request may be, and the API tokens with their quotas (docs/server.md).
//! Every field is optional; `warden-server` fills in the defaults (some depend on the host's
//! cores).
//!
//! ```toml
//! [server]
//! listen = ["127.0.0.1:2358"]   # `--listen` replaces this list
//! workers = 2                    # executions at once (default: the host's cores)
//! io_threads = 1                 # threads serving connections (default: a quarter of the cores)
//! queue_size = 64                # executions admitted beyond the running ones
//! max_body = "8MiB"              # largest request body
//! max_files = 64                 # files of one program
//! max_batch = 20                 # requests of one POST /v1/batch (and of a Judge0 batch, at most 20)
//! max_tests = 256                # test cases of one execution
//! sync_deadline = "60s"          # how long a synchronous request may wait and run
//! shutdown_deadline = "30s"      # how long running executions may take to finish on SIGTERM
//! header_read_timeout = "10s"    # a connection that has not sent a request's headers (or read an answer) by then is closed
//! max_connections = 512          # open connections at once; more wait to be accepted
//! results_max_age = "24h"        # how long finished asynchronous answers are kept
//! judge0_callbacks = false       # Judge0 callback_url (a PUT to a loopback port); default: only without tokens
//!
//! [[server.tokens]]
//! name = "grader"                # recorded in the history (the token itself never is)
//! token = "s3cret"
//! max_concurrent = 4             # executions at once for this token
//! requests_per_minute = 600
//! admin = true                   # may list every caller's Judge0 submissions (Judge0's `X-Auth-User`)
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{human_age_opt, ByteSize};

/// The `[server]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The addresses to listen on (`--listen` replaces them).
    pub listen: Vec<SocketAddr>,
    /// How many executions run at once.
    pub workers: Option<usize>,
    /// How many threads serve connections (HTTP, JSON, WebSockets); executions run on
    /// threads of their own.
    pub io_threads: Option<usize>,
    /// How many executions wait beyond the running ones before requests are refused.
    pub queue_size: Option<usize>,
    /// The largest request body.
    pub max_body: Option<ByteSize>,
    /// The most files one program may have.
    pub max_files: Option<usize>,
    /// The most requests one batch may carry.
    pub max_batch: Option<usize>,
    /// The most test cases one execution may carry.
    pub max_tests: Option<usize>,
    /// How long a synchronous request may wait in the queue and run.
    #[serde(with = "human_age_opt", skip_serializing_if = "Option::is_none")]
    pub sync_deadline: Option<Duration>,
    /// How long running executions may take to finish once shutdown begins.
    #[serde(with = "human_age_opt", skip_serializing_if = "Option::is_none")]
    pub shutdown_deadline: Option<Duration>,
    /// How long a connection may take to send a request's headers (also the idle time allowed
    /// between two requests of a kept-alive connection, and how long a write may wait on a
    /// client that reads none of it) before it is closed: a slow-loris client, or one that
    /// never reads its answers, cannot hold a connection open.
    #[serde(with = "human_age_opt", skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<Duration>,
    /// How many connections may be open at once; more wait in the listen backlog.
    pub max_connections: Option<usize>,
    /// How long a finished asynchronous answer (a `wait=false` job, a Judge0 submission, with
    /// its code and output) is kept for its client to fetch.
    #[serde(with = "human_age_opt", skip_serializing_if = "Option::is_none")]
    pub results_max_age: Option<Duration>,
    /// Native sandboxes kept ready per kind of program (the warm pool); 0 for none.
    pub pool_size: Option<usize>,
    /// Runs one pooled sandbox may serve for one caller (the same token), reset in between;
    /// 1 runs each sandbox once.
    pub pool_reuse: Option<u64>,
    /// Sandboxes kept ready from start-up for each of these languages' default runs (`python =
    /// 4`); the count replaces `pool_size` for that kind of program.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pool_languages: std::collections::BTreeMap<String, usize>,
    /// Whether a Judge0 submission may give a `callback_url`, which the server `PUT`s its
    /// answer to on a loopback port of the client's choosing (Judge0's `ENABLE_CALLBACKS`).
    /// Unset: allowed without tokens (the only callers are this host's own, which reach those
    /// ports anyway), refused with tokens (the callers are remote, and the host's loopback
    /// services are not theirs to reach).
    pub judge0_callbacks: Option<bool>,
    /// The API tokens; none means no authentication (allowed on loopback only).
    pub tokens: Vec<TokenConfig>,
}

/// One API token (`[[server.tokens]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// The caller's name, recorded in the history.
    pub name: String,
    /// The secret the caller presents.
    pub token: String,
    /// Executions this token may have admitted at once (unlimited when unset).
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// Executions this token may ask for per minute (unlimited when unset).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Whether this token authorizes what Judge0 reserves to its authorization token
    /// (`X-Auth-User`): listing every caller's submissions, counting them, and deleting them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub admin: bool,
}

/// The most executions a server runs at once: far above any host's cores, far below what the
/// admission semaphore and the thread per execution can take (tokio's semaphore panics past
/// `usize::MAX >> 3` permits).
pub const MAX_WORKERS: usize = 1024;
/// The most threads serving connections: serving is a small part of a request's cost, and
/// each thread has a stack (100 000 spawned some 14 000 and aborted).
pub const MAX_IO_THREADS: usize = 256;
/// The most executions admitted beyond the running ones (16 × `MAX_WORKERS` is 16 384).
pub const MAX_QUEUE_SIZE: usize = 65_536;
/// The most connections open at once: each is a file descriptor.
pub const MAX_CONNECTIONS: usize = 65_536;
/// The most files of one program, requests of one batch, and sandboxes kept ready per kind
/// of program: each is work done per request or at start-up.
pub const MAX_FILES: usize = 65_536;
/// See [`MAX_FILES`].
pub const MAX_BATCH: usize = 1024;
/// See [`MAX_FILES`].
pub const MAX_TESTS: usize = 65_536;
/// See [`MAX_FILES`].
pub const MAX_POOL_SIZE: usize = 256;
/// The smallest `max_body`: the smallest request is a few dozen bytes of JSON.
pub const MIN_BODY: ByteSize = ByteSize::kib(1);

impl ServerConfig {
    /// The first mistake a parser cannot see: a count or size out of its range, a zero
    /// duration, an empty, duplicate or unusable token or name, a zero quota.
    pub fn check(&self) -> Result<(), String> {
        let counts = [
            ("workers", self.workers, 1, MAX_WORKERS),
            ("io_threads", self.io_threads, 1, MAX_IO_THREADS),
            ("queue_size", self.queue_size, 0, MAX_QUEUE_SIZE),
            ("max_files", self.max_files, 1, MAX_FILES),
            ("max_batch", self.max_batch, 1, MAX_BATCH),
            ("max_tests", self.max_tests, 1, MAX_TESTS),
            ("max_connections", self.max_connections, 1, MAX_CONNECTIONS),
            ("pool_size", self.pool_size, 0, MAX_POOL_SIZE),
        ];
        for (key, value, min, max) in counts {
            match value {
                Some(v) if v < min => return Err(format!("[server] {key} must be at least {min}")),
                Some(v) if v > max => return Err(format!("[server] {key} {v} is above {max}")),
                _ => {}
            }
        }
        for (language, count) in &self.pool_languages {
            if *count > MAX_POOL_SIZE {
                return Err(format!(
                    "[server] pool_languages {language} = {count} is above {MAX_POOL_SIZE}"
                ));
            }
        }
        if self.pool_reuse == Some(0) {
            return Err("[server] pool_reuse must be at least 1 (1 runs each sandbox once)".into());
        }
        if self.max_body.is_some_and(|b| b < MIN_BODY) {
            return Err(format!("[server] max_body must be at least {MIN_BODY}"));
        }
        let durations = [
            ("sync_deadline", self.sync_deadline),
            ("header_read_timeout", self.header_read_timeout),
            ("results_max_age", self.results_max_age),
        ];
        if let Some((key, _)) = durations.iter().find(|(_, d)| *d == Some(Duration::ZERO)) {
            return Err(format!("[server] {key} must be more than 0s"));
        }
        for (i, token) in self.tokens.iter().enumerate() {
            check_token(token, &self.tokens[..i], i)?;
        }
        Ok(())
    }
}

/// The mistakes of the token `token`, the `i`th, after `earlier`.
fn check_token(token: &TokenConfig, earlier: &[TokenConfig], i: usize) -> Result<(), String> {
    if token.name.is_empty() || token.token.is_empty() {
        return Err(format!(
            "[[server.tokens]] #{}: name and token must not be empty",
            i + 1
        ));
    }
    // A name is written in logs and listings, one line each: a control character in it could
    // forge another line.
    if token.name.chars().any(char::is_control) {
        return Err(format!(
            "[[server.tokens]] #{}: the name {:?} holds a control character",
            i + 1,
            token.name
        ));
    }
    // A client sends the secret in an HTTP header, read as visible ASCII (spaces included)
    // and trimmed: a token with other characters, or space at either end, could never match.
    let secret = &token.token;
    let printable = secret.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if !printable || secret.trim() != secret {
        return Err(format!(
            "[[server.tokens]] {:?}: the token must be visible ASCII characters, without \
             space at either end (no control or non-ASCII characters): no client could send it",
            token.name
        ));
    }
    if token.max_concurrent == Some(0) || token.requests_per_minute == Some(0) {
        return Err(format!(
            "[[server.tokens]] {:?}: a quota must be at least 1",
            token.name
        ));
    }
    if earlier.iter().any(|t| t.name == token.name) {
        return Err(format!(
            "[[server.tokens]] name {:?} is used twice",
            token.name
        ));
    }
    if earlier.iter().any(|t| t.token == token.token) {
        return Err(format!(
            "[[server.tokens]] {:?} repeats another token's secret",
            token.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn parse(toml: &str) -> Result<ServerConfig, String> {
        Config::from_toml(Path::new("warden.toml"), toml)
            .map(|c| c.server)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_section_reads_addresses_sizes_durations_and_tokens() {
        let server = parse(
            "[server]\nlisten = [\"127.0.0.1:1\", \"[::1]:2\"]\nworkers = 3\nio_threads = 2\nqueue_size = 9\n\
             max_body = \"1MiB\"\nsync_deadline = \"5s\"\nheader_read_timeout = \"3s\"\n\
             max_connections = 100\nresults_max_age = \"2h\"\n\
             [[server.tokens]]\nname = \"ci\"\ntoken = \"t\"\nrequests_per_minute = 60\n\
             [[server.tokens]]\nname = \"root\"\ntoken = \"u\"\nadmin = true\n",
        )
        .expect("valid");
        assert_eq!(server.listen.len(), 2);
        assert_eq!(server.workers, Some(3));
        assert_eq!(server.io_threads, Some(2));
        assert_eq!(server.max_body, Some(ByteSize::mib(1)));
        assert_eq!(server.sync_deadline, Some(Duration::from_secs(5)));
        assert_eq!(server.header_read_timeout, Some(Duration::from_secs(3)));
        assert_eq!(server.max_connections, Some(100));
        assert_eq!(server.results_max_age, Some(Duration::from_secs(7200)));
        assert_eq!(server.tokens[0].requests_per_minute, Some(60));
        assert_eq!(server.tokens[0].max_concurrent, None);
        assert_eq!(
            (server.tokens[0].admin, server.tokens[1].admin),
            (false, true)
        );
        assert!(server.check().is_ok());
        assert_eq!(parse("").expect("empty"), ServerConfig::default());
    }

    #[test]
    fn mistakes_are_named() {
        let err = parse("[server]\nlisten = [\"localhost\"]\n").expect_err("not an address");
        assert!(err.contains("warden.toml:2"), "{err}");
        let err = parse("[server]\nthreads = 2\n").expect_err("unknown key");
        assert!(err.contains("threads"), "{err}");
        let err = parse("[[server.tokens]]\nname = \"a\"\n").expect_err("no secret");
        assert!(err.contains("token"), "{err}");
        let twice = parse(
            "[[server.tokens]]\nname = \"a\"\ntoken = \"x\"\n[[server.tokens]]\nname = \"a\"\ntoken = \"y\"\n",
        )
        .expect_err("duplicate names");
        assert!(twice.contains("used twice"), "{twice}");
        let zero = parse("[server]\nworkers = 0\n").expect_err("zero workers");
        assert!(zero.contains("[server] workers"), "{zero}");
        let zero = parse("[server]\nio_threads = 0\n").expect_err("zero threads");
        assert!(
            zero.contains("[server] io_threads must be at least 1"),
            "{zero}"
        );
        let no_time = parse("[server]\nheader_read_timeout = \"0s\"\n").expect_err("zero");
        assert!(no_time.contains("header_read_timeout"), "{no_time}");
    }

    /// Bug hunt: each was accepted and then failed every request.
    #[test]
    fn sizes_and_deadlines_that_refuse_every_request_are_refused() {
        for (toml, why) in [
            (
                "[server]\nmax_body = 0\n",
                "[server] max_body must be at least 1KiB",
            ),
            ("[server]\nmax_body = \"1000B\"\n", "[server] max_body"),
            (
                "[server]\nsync_deadline = \"0s\"\n",
                "[server] sync_deadline must be more than 0s",
            ),
        ] {
            let err = parse(toml).expect_err(toml);
            assert!(err.contains(why), "{toml}: {err}");
        }
        assert!(parse("[server]\nmax_body = \"1KiB\"\nqueue_size = 0\n").is_ok());
    }

    /// Bug hunt: `workers = 4611686018427387904` panicked in tokio's semaphore, `io_threads =
    /// 100000` spawned thousands of threads and aborted, and `workers = 2^60` made the default
    /// queue (16 × workers) overflow to 0.
    #[test]
    fn counts_above_their_bound_are_refused() {
        for (toml, why) in [
            (
                "[server]\nworkers = 4611686018427387904\n",
                "[server] workers 4611686018427387904 is above 1024",
            ),
            (
                "[server]\nworkers = 1152921504606846976\n",
                "[server] workers",
            ),
            (
                "[server]\nio_threads = 100000\n",
                "[server] io_threads 100000 is above 256",
            ),
            (
                "[server]\nqueue_size = 1000000\n",
                "[server] queue_size 1000000 is above 65536",
            ),
            (
                "[server]\nmax_connections = 1000000\n",
                "[server] max_connections",
            ),
            ("[server]\nmax_files = 1000000\n", "[server] max_files"),
            ("[server]\nmax_batch = 1000000\n", "[server] max_batch"),
            ("[server]\npool_size = 100000\n", "[server] pool_size"),
            (
                "[server]\npool_reuse = 0\n",
                "[server] pool_reuse must be at least 1",
            ),
            (
                "[server.pool_languages]\npython = 100000\n",
                "[server] pool_languages python",
            ),
        ] {
            let err = parse(toml).expect_err(toml);
            assert!(err.contains(why), "{toml}: {err}");
        }
        let most = "[server]\nworkers = 1024\nio_threads = 256\nqueue_size = 65536\n";
        assert_eq!(parse(most).err(), None);
    }

    /// Bug hunt: tokens no client can present were accepted, and a name with a newline forged
    /// a line in `warden events`.
    #[test]
    fn tokens_no_client_can_send_and_names_with_control_characters_are_refused() {
        let token = |name: &str, secret: &str| {
            parse(&format!(
                "[[server.tokens]]\nname = {name:?}\ntoken = {secret:?}\n"
            ))
        };
        for secret in [
            "secret ",
            " ",
            " secret",
            "h\u{e9}llo",
            "tab\tbed",
            "new\nline",
        ] {
            let err = token("ci", secret).expect_err(secret);
            assert!(err.contains("[[server.tokens]] \"ci\": the token"), "{err}");
        }
        let err = token("ci\nforged", "s3cret").expect_err("a newline in the name");
        assert!(err.contains("control character"), "{err}");
        assert!(token("ci", "a long random secret").is_ok());
        assert!(token("cl\u{e9}ment", "s3cret~!").is_ok());
    }
}
