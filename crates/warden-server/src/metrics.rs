//! `GET /metrics`: the server's counters and gauges in the Prometheus text exposition format
//! (version 0.0.4), for a scraper. Counted here, in memory, since the server started: each
//! execution by interface, language, mode and outcome kind (and by error kind when warden
//! failed it), its duration and its stages' (queue, dependencies, compile, run), the security
//! violations by kind, the admissions refused, the connections a network policy denied and the
//! bytes it let through, the tool calls by tool and result; read at scrape time: the queue and
//! the workers, the warm pool.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use warden_engine::{EngineError, Execution, ExecutionResult, ToolCallError, ToolReply};

use crate::error::ApiError;
use crate::routes::V1Caller;
use crate::state::AppState;

/// The `tool` label of a call whose tool does not exist: a name no tool can have (names are
/// `[a-z][a-z0-9_]{0,63}`).
const UNKNOWN_TOOL: &str = "<unknown>";
/// The name calls of tools registered at run time are counted under.
pub(crate) const REGISTERED_TOOL: &str = "<registered>";

/// Upper bounds of the duration histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// What the server counts.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// (api, language, mode, outcome) → executions.
    executions: BTreeMap<(String, String, String, String), u64>,
    /// (api, error kind) → executions warden did not run to a result.
    failures: BTreeMap<(String, String), u64>,
    /// api → execution durations.
    durations: BTreeMap<String, Histogram>,
    /// reason → admissions refused.
    refused: BTreeMap<String, u64>,
    /// (policy) → connections denied.
    denied: BTreeMap<String, u64>,
    /// stage → durations (`queue`, `dependencies`, `compile`, `run`).
    stages: BTreeMap<&'static str, Histogram>,
    /// outcome kind → security violations.
    violations: BTreeMap<String, u64>,
    /// direction (`up`, `down`) → bytes relayed by the egress proxies.
    network_bytes: BTreeMap<&'static str, u64>,
    /// (tool, result) → tool calls (`ok`, `error`, `refused`).
    tool_calls: BTreeMap<(String, &'static str), u64>,
}

/// A histogram over [`BUCKETS`]: the count per bucket, the sum of seconds, the count.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        for (bucket, bound) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    /// Its `_bucket`, `_sum` and `_count` lines under `labels`.
    fn render(&self, out: &mut String, name: &str, labels: &[(&str, &str)]) {
        for (bound, n) in BUCKETS.iter().zip(&self.buckets) {
            let le = bound.to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            sample(out, &format!("{name}_bucket"), &with_le, *n as f64);
        }
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        sample(out, &format!("{name}_bucket"), &inf, self.count as f64);
        sample(out, &format!("{name}_sum"), labels, self.sum);
        sample(out, &format!("{name}_count"), labels, self.count as f64);
    }
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts one execution through `api` that ran to `result` in `took` (a cancelled one,
    /// outcome `cancelled`, as a failure whose security events count).
    pub(crate) fn ran(&self, api: &str, took: Duration, result: &ExecutionResult) {
        self.counts().execution(api, took, Ok(result));
    }

    /// Counts one execution through `api` that took `took`.
    pub(crate) fn executed(
        &self,
        api: &str,
        took: Duration,
        result: &Result<Execution, EngineError>,
    ) {
        let result = result.as_ref().map(|execution| &execution.result);
        self.counts().execution(api, took, result);
    }

    /// Counts one tool call through `api` that took `took`: under its tool and result, and
    /// the execution it ran (if any) as any other execution of `api`. `tool` is the name the
    /// caller gave; a name no tool has is counted as [`UNKNOWN_TOOL`], so that callers cannot
    /// add series (each name of any length a series of its own, kept until the server stops).
    pub(crate) fn tool_called(
        &self,
        api: &str,
        tool: &str,
        took: Duration,
        reply: &Result<ToolReply, ToolCallError>,
    ) {
        let mut counts = self.counts();
        let (tool, result) = match reply {
            // As the history counts it (`/v1/tools/stats`, `warden tool stats`): nothing ran.
            Ok(reply) if reply.refused => (tool, "refused"),
            Ok(reply) if reply.is_error => (tool, "error"),
            Ok(_) => (tool, "ok"),
            Err(ToolCallError::Unknown(_)) => (UNKNOWN_TOOL, "refused"),
            Err(_) => (tool, "refused"),
        };
        *counts
            .tool_calls
            .entry((tool.to_owned(), result))
            .or_default() += 1;
        match reply {
            Ok(ToolReply {
                execution: Some(result),
                ..
            }) => counts.execution(api, took, Ok(result)),
            Err(ToolCallError::Engine(e)) => counts.execution(api, took, Err(e)),
            // The `files` tool runs no execution; a refused call reached none.
            Ok(_) | Err(_) => {}
        }
    }

    /// Counts the time an execution waited in the queue for a worker.
    pub(crate) fn queued(&self, waited: Duration) {
        self.counts()
            .stages
            .entry("queue")
            .or_default()
            .observe(waited);
    }

    /// Counts an admission refused for `reason` (`queue_full`, `quota`, ...).
    pub(crate) fn refused(&self, reason: &str) {
        *self.counts().refused.entry(reason.to_owned()).or_default() += 1;
    }
}

impl Counts {
    /// One execution through `api` that took `took`: its result, or warden's failure to
    /// reach one.
    fn execution(
        &mut self,
        api: &str,
        took: Duration,
        result: Result<&ExecutionResult, &EngineError>,
    ) {
        match result {
            Ok(r) if r.outcome != warden_core::Outcome::Cancelled => {
                let key = (
                    api.to_owned(),
                    r.language.as_str().to_owned(),
                    r.mode.name().to_owned(),
                    r.outcome.kind().to_string(),
                );
                *self.executions.entry(key).or_default() += 1;
                self.events_of(r);
                self.stages_of(r);
            }
            // A cancelled tool call's reply carries its execution as the history recorded it.
            Ok(cancelled) => self.cancelled(api, Some(cancelled)),
            Err(e) if e.kind() == warden_engine::ErrorKind::Cancelled => {
                self.cancelled(api, e.cancelled_execution());
            }
            Err(e) => {
                let kind = format!("{:?}", e.kind()).to_lowercase();
                *self.failures.entry((api.to_owned(), kind)).or_default() += 1;
            }
        }
        self.durations
            .entry(api.to_owned())
            .or_default()
            .observe(took);
    }

    /// An execution its caller cancelled before its result: a failure of kind `cancelled`
    /// (it reached no result), and what the sandbox stopped in what it ran until then, as
    /// the history records it (docs/events.md).
    fn cancelled(&mut self, api: &str, ran: Option<&ExecutionResult>) {
        *self
            .failures
            .entry((api.to_owned(), "cancelled".to_owned()))
            .or_default() += 1;
        if let Some(r) = ran {
            self.events_of(r);
        }
    }

    /// What the sandbox stopped in an execution (its violations by kind, its proxies' denied
    /// connections) and the bytes its proxies relayed.
    fn events_of(&mut self, r: &ExecutionResult) {
        // The installer's proxy as the program's: both let traffic out.
        let installer = r.dependencies.as_ref().and_then(|d| d.network.as_ref());
        for network in r.network.iter().chain(installer) {
            if network.denied > 0 {
                *self.denied.entry(network.policy.clone()).or_default() +=
                    u64::from(network.denied);
            }
        }
        for violation in &r.security.violations {
            *self
                .violations
                .entry(violation.kind.to_string())
                .or_default() += 1;
        }
        for connection in r
            .network
            .iter()
            .chain(installer)
            .flat_map(|n| &n.connections)
        {
            *self.network_bytes.entry("up").or_default() += connection.bytes_up;
            *self.network_bytes.entry("down").or_default() += connection.bytes_down;
        }
    }

    /// An execution's stage durations.
    fn stages_of(&mut self, r: &ExecutionResult) {
        self.stages
            .entry("analysis")
            .or_default()
            .observe(r.security.analysis_time);
        let ran = [
            ("dependencies", r.dependencies.as_ref()),
            ("compile", r.compile.as_ref()),
        ];
        for (stage, result) in ran {
            if let Some(result) = result.filter(|s| !s.cached) {
                self.stages
                    .entry(stage)
                    .or_default()
                    .observe(result.usage.wall_time);
            }
        }
        if !matches!(
            r.outcome,
            warden_core::Outcome::CompileError | warden_core::Outcome::DependencyError
        ) {
            self.stages
                .entry("run")
                .or_default()
                .observe(r.usage.wall_time);
        }
    }
}

/// `GET /metrics`: every token's activity (executions, violations, denials, tool calls), so
/// an `admin` token's only when the server has tokens, as `/v1/stats` shows other tokens'
/// runs only to one (Hunt gv 5); a server without tokens (loopback only) answers its caller.
pub(crate) async fn metrics(
    State(state): State<AppState>,
    V1Caller(caller): V1Caller,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(name) = &caller.token {
        if !state.tokens().is_admin(name) {
            return Err(ApiError::with_status(
                axum::http::StatusCode::FORBIDDEN,
                "/metrics counts every token's activity: it needs a token marked `admin = true` \
                 in [[server.tokens]]",
            ));
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render(&state),
    ))
}

fn render(state: &AppState) -> String {
    let mut out = String::new();
    let counts = state.metrics().counts();
    family(
        &mut out,
        "warden_executions_total",
        "counter",
        "Executions run to a result, by interface, language, mode and outcome kind.",
    );
    for ((api, language, mode, outcome), n) in &counts.executions {
        sample(
            &mut out,
            "warden_executions_total",
            &[
                ("api", api),
                ("language", language),
                ("mode", mode),
                ("outcome", outcome),
            ],
            *n as f64,
        );
    }
    family(
        &mut out,
        "warden_execution_failures_total",
        "counter",
        "Executions that ended without a result, by interface and whose fault.",
    );
    for ((api, kind), n) in &counts.failures {
        sample(
            &mut out,
            "warden_execution_failures_total",
            &[("api", api), ("kind", kind)],
            *n as f64,
        );
    }
    family(
        &mut out,
        "warden_execution_duration_seconds",
        "histogram",
        "Time from a worker taking an execution to its result, by interface.",
    );
    for (api, histogram) in &counts.durations {
        histogram.render(
            &mut out,
            "warden_execution_duration_seconds",
            &[("api", api)],
        );
    }
    family(
        &mut out,
        "warden_admissions_refused_total",
        "counter",
        "Requests refused before running, by reason.",
    );
    for (reason, n) in &counts.refused {
        sample(
            &mut out,
            "warden_admissions_refused_total",
            &[("reason", reason)],
            *n as f64,
        );
    }
    family(
        &mut out,
        "warden_network_denied_total",
        "counter",
        "Connection attempts a network policy denied, by policy.",
    );
    for (policy, n) in &counts.denied {
        sample(
            &mut out,
            "warden_network_denied_total",
            &[("policy", policy)],
            *n as f64,
        );
    }
    family(
        &mut out,
        "warden_stage_duration_seconds",
        "histogram",
        "Time per stage: waiting for a worker (queue), static analysis, installing dependencies, compiling, running.",
    );
    for (stage, histogram) in &counts.stages {
        histogram.render(
            &mut out,
            "warden_stage_duration_seconds",
            &[("stage", stage)],
        );
    }
    family(
        &mut out,
        "warden_security_violations_total",
        "counter",
        "What the sandbox stopped (limits hit, forbidden operations, denied connections), by kind.",
    );
    for (kind, n) in &counts.violations {
        sample(
            &mut out,
            "warden_security_violations_total",
            &[("kind", kind)],
            *n as f64,
        );
    }
    family(
        &mut out,
        "warden_network_bytes_total",
        "counter",
        "Bytes the egress proxies relayed, by direction (up: from the programs).",
    );
    for (direction, n) in &counts.network_bytes {
        sample(
            &mut out,
            "warden_network_bytes_total",
            &[("direction", direction)],
            *n as f64,
        );
    }
    family(
        &mut out,
        "warden_tool_calls_total",
        "counter",
        "Tool calls over HTTP and MCP, by tool and result (ok, error, refused).",
    );
    for ((tool, result), n) in &counts.tool_calls {
        sample(
            &mut out,
            "warden_tool_calls_total",
            &[("tool", tool), ("result", result)],
            *n as f64,
        );
    }
    drop(counts);
    family(
        &mut out,
        "warden_workers",
        "gauge",
        "Executions that may run at once.",
    );
    sample(
        &mut out,
        "warden_workers",
        &[],
        state.options().workers as f64,
    );
    let load = state.load();
    for (name, help, value) in [
        (
            "warden_executions_running",
            "Executions running now.",
            load.running,
        ),
        (
            "warden_executions_queued",
            "Executions admitted and waiting for a worker.",
            load.queued,
        ),
    ] {
        family(&mut out, name, "gauge", help);
        sample(&mut out, name, &[], value as f64);
    }
    if let Some(pool) = state.engine().pool_stats() {
        for (name, kind, help, value) in [
            (
                "warden_pool_ready",
                "gauge",
                "Sandboxes ready in the warm pool.",
                pool.ready as u64,
            ),
            (
                "warden_pool_hits_total",
                "counter",
                "Runs that took a ready sandbox.",
                pool.hits,
            ),
            (
                "warden_pool_reused_total",
                "counter",
                "Hits on a sandbox reset after its owner's earlier run.",
                pool.reused,
            ),
            (
                "warden_pool_misses_total",
                "counter",
                "Runs that built their own sandbox.",
                pool.misses,
            ),
            (
                "warden_pool_shrunk_total",
                "counter",
                "Ready sandboxes destroyed for memory pressure.",
                pool.shrunk,
            ),
        ] {
            family(&mut out, name, kind, help);
            sample(&mut out, name, &[], value as f64);
        }
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line; label values escaped as the format wants (`\`, `"`, newline).
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            let _ = write!(out, "{key}=\"{escaped}\"");
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::detect::DetectedBy;
    use warden_core::{ByteSize, LanguageId, Limits, Mode, Outcome, ThreatLevel, Usage};
    use warden_engine::{
        Connection, ExecutionId, LanguageDetection, NetworkReport, Security, StageResult,
    };

    /// A policy's report of one allowed attempt (`up` and `down` bytes) and `denied` denials.
    fn report(policy: &str, up: u64, down: u64, denied: u32) -> NetworkReport {
        let attempt = |allowed: bool| Connection {
            started_ms: 0,
            protocol: "https".to_owned(),
            host: Some("mirror.test".to_owned()),
            addr: None,
            port: 443,
            allowed,
            rule: "rule 1".to_owned(),
            reason: "test".to_owned(),
            bytes_up: if allowed { up } else { 0 },
            bytes_down: if allowed { down } else { 0 },
            duration_ms: 1,
            cut_by: None,
            repeats: 0,
        };
        let mut connections = vec![attempt(true)];
        connections.extend((0..denied).map(|_| attempt(false)));
        NetworkReport {
            policy: policy.to_owned(),
            connections,
            denied,
            dropped: 0,
        }
    }

    fn result(network: Option<NetworkReport>, installer: Option<NetworkReport>) -> ExecutionResult {
        let language = LanguageId::new("python").expect("a language id");
        let mut dependencies = StageResult::cached();
        dependencies.cached = false;
        dependencies.network = installer;
        ExecutionResult {
            id: ExecutionId::random().expect("random bytes"),
            detection: LanguageDetection {
                language: language.clone(),
                confidence: 1.0,
                by: DetectedBy::Explicit,
                runner_up: None,
            },
            language,
            mode: Mode::Sandboxed,
            outcome: Outcome::Exited { code: 0 },
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
            output_order: Default::default(),
            usage: Usage {
                cpu_time: Duration::from_millis(3),
                wall_time: Duration::from_millis(9),
                peak_memory: ByteSize::mib(4),
            },
            samples: Vec::new(),
            limits: Limits::default(),
            dependencies: Some(dependencies),
            compile: None,
            tests: Vec::new(),
            security: Security {
                mode: Mode::Sandboxed,
                reason: "requested".to_owned(),
                threat_level: ThreatLevel::Low,
                findings: Vec::new(),
                parse_error: None,
                violations: Vec::new(),
                analysis_time: Duration::ZERO,
            },
            network,
            volumes: Vec::new(),
        }
    }

    /// The dependency installer's proxy counts in the denials and bytes as the program's does
    /// (only the program's did), each under its own policy.
    #[test]
    fn the_installers_traffic_counts_with_the_programs() {
        let mut counts = Counts::default();
        let program = report("development", 10, 20, 1);
        let installer = report("limited_access", 100, 2000, 2);
        counts.execution(
            "v1",
            Duration::ZERO,
            Ok(&result(Some(program), Some(installer))),
        );
        counts.execution(
            "v1",
            Duration::ZERO,
            Ok(&result(None, Some(report("limited_access", 1, 2, 0)))),
        );
        assert_eq!(counts.denied.get("development"), Some(&1));
        assert_eq!(counts.denied.get("limited_access"), Some(&2));
        assert_eq!(counts.network_bytes.get("up"), Some(&111));
        assert_eq!(counts.network_bytes.get("down"), Some(&2022));
    }

    /// Bug hunt: a call the `[response]` rule refused (`is_error` and `refused`) was counted
    /// as `result="error"`, while `/v1/tools/stats` counts it as a refusal.
    #[test]
    fn a_refused_tool_reply_counts_as_refused() {
        let metrics = Metrics::default();
        let reply = |is_error: bool, refused: bool| {
            Ok(ToolReply {
                tool: "run_code".to_owned(),
                is_error,
                text: String::new(),
                structured: None,
                execution: None,
                refused,
                latency: Duration::ZERO,
            })
        };
        for (is_error, refused) in [(true, true), (true, false), (false, false)] {
            metrics.tool_called("mcp", "run_code", Duration::ZERO, &reply(is_error, refused));
        }
        let counts = metrics.counts();
        for result in ["refused", "error", "ok"] {
            assert_eq!(
                counts.tool_calls.get(&("run_code".to_owned(), result)),
                Some(&1),
                "{result}: {:?}",
                counts.tool_calls
            );
        }
    }

    #[test]
    fn samples_escape_their_label_values() {
        let mut out = String::new();
        sample(&mut out, "m", &[("a", "x\"y\\z\nw")], 2.0);
        sample(&mut out, "n", &[], 0.5);
        assert_eq!(out, "m{a=\"x\\\"y\\\\z\\nw\"} 2\nn 0.5\n");
    }
}
