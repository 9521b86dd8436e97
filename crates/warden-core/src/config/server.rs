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
//! max_batch = 20                 # requests of one POST /v1/batch
//! sync_deadline = "60s"          # how long a synchronous request may wait and run
//! shutdown_deadline = "30s"      # how long running executions may take to finish on SIGTERM
//! header_read_timeout = "10s"    # a connection that has not sent a request's headers by then is closed
//! max_connections = 512          # open connections at once; more wait to be accepted
//! results_max_age = "24h"        # how long finished asynchronous answers are kept
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

use crate::units::{human_duration_opt, ByteSize};

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
    /// How long a synchronous request may wait in the queue and run.
    #[serde(with = "human_duration_opt", skip_serializing_if = "Option::is_none")]
    pub sync_deadline: Option<Duration>,
    /// How long running executions may take to finish once shutdown begins.
    #[serde(with = "human_duration_opt", skip_serializing_if = "Option::is_none")]
    pub shutdown_deadline: Option<Duration>,
    /// How long a connection may take to send a request's headers (also the idle time allowed
    /// between two requests of a kept-alive connection) before it is closed: a slow-loris
    /// client cannot hold a connection open.
    #[serde(with = "human_duration_opt", skip_serializing_if = "Option::is_none")]
    pub header_read_timeout: Option<Duration>,
    /// How many connections may be open at once; more wait in the listen backlog.
    pub max_connections: Option<usize>,
    /// How long a finished asynchronous answer (a `wait=false` job, a Judge0 submission, with
    /// its code and output) is kept for its client to fetch.
    #[serde(with = "human_duration_opt", skip_serializing_if = "Option::is_none")]
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

impl ServerConfig {
    /// The first mistake a parser cannot see: an empty or duplicate token or name, a zero
    /// quota or size.
    pub fn check(&self) -> Result<(), String> {
        let zero = [
            ("workers", self.workers),
            ("io_threads", self.io_threads),
            ("max_files", self.max_files),
            ("max_batch", self.max_batch),
            ("max_connections", self.max_connections),
        ];
        if let Some((key, _)) = zero.iter().find(|(_, v)| *v == Some(0)) {
            return Err(format!("[server] {key} must be at least 1"));
        }
        if self.header_read_timeout == Some(Duration::ZERO) {
            return Err("[server] header_read_timeout must be more than 0s".to_owned());
        }
        if self.results_max_age == Some(Duration::ZERO) {
            return Err("[server] results_max_age must be more than 0s".to_owned());
        }
        for (i, token) in self.tokens.iter().enumerate() {
            if token.name.is_empty() || token.token.is_empty() {
                return Err(format!(
                    "[[server.tokens]] #{}: name and token must not be empty",
                    i + 1
                ));
            }
            if token.max_concurrent == Some(0) || token.requests_per_minute == Some(0) {
                return Err(format!(
                    "[[server.tokens]] {:?}: a quota must be at least 1",
                    token.name
                ));
            }
            let earlier = &self.tokens[..i];
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
        }
        Ok(())
    }
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
}
