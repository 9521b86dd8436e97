//! One recorded execution: what is written ([`Row`]), what is read back ([`HistoryEntry`]),
//! how much of the code and output is kept ([`Retention`]) and which rows are selected
//! ([`HistoryFilter`]); `super::prune` deletes them. Its connections are `super::traffic`'s.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{
    params, Connection, OptionalExtension, Row as SqlRow, Transaction, TransactionBehavior,
};
use serde::de::value::StrDeserializer;
use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize, Serializer};
use warden_core::{
    ByteSize, Finding, LanguageId, Limits, Mode, Outcome, OutcomeKind, ThreatLevel, Usage,
};

use super::time::{rfc3339, utc};
use super::{classify, traffic, unix_ms, HistoryError};
use crate::engine::NetworkReport;
use crate::execution::{ExecutionResult, StageResult};
use crate::id::ExecutionId;
use crate::security::Violation;

/// The default of `[history] max_kept`: the most kept of each of an execution's code and
/// outputs. Programs are rarely larger; a request may be up to the server's `max_body` (8 MiB),
/// and a run's output up to its `max_output`, which the history kept whole before (three
/// 7 MB programs grew the database by 21 MB).
pub const DEFAULT_MAX_KEPT: ByteSize = ByteSize::kib(256);

/// How much of an execution's code and output the history keeps. Metadata (language, mode,
/// threat level, outcome, usage, sizes) is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Metadata only; finding excerpts (which quote the code) are dropped too.
    Metadata,
    /// Metadata and the submitted code.
    #[default]
    Code,
    /// Metadata, the code, and the output (stdout, stderr and the compiler's output).
    Full,
}

impl Retention {
    /// The name used in configuration and JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Retention::Metadata => "metadata",
            Retention::Code => "code",
            Retention::Full => "full",
        }
    }

    fn keeps_code(self) -> bool {
        self != Retention::Metadata
    }

    fn keeps_output(self) -> bool {
        self == Retention::Full
    }
}

impl fmt::Display for Retention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Retention {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Retention::Metadata, Retention::Code, Retention::Full]
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("unknown retention {s:?} (metadata, code, full)"))
    }
}

/// What the result does not say about an execution's input.
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a> {
    /// The submitted code (the entry file of a multi-file program).
    pub code: &'a [u8],
    /// Bytes of standard input, when known (a pipe passed through unread is not measured).
    pub stdin_bytes: Option<u64>,
    /// The interface that asked (`cli`, `v1`, `piston`, `judge0`, `library`).
    pub api: &'a str,
    /// The name of the API token that asked, if any (never the token itself).
    pub token: Option<&'a str>,
}

/// Which executions [`super::HistoryStore::list`] returns. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Language.
    pub language: Option<LanguageId>,
    /// Outcome kind.
    pub outcome: Option<OutcomeKind>,
    /// Mode.
    pub mode: Option<Mode>,
    /// Only executions that finished at or after this time.
    pub since: Option<SystemTime>,
    /// At most this many (the newest).
    pub limit: Option<u32>,
    /// Only executions listed after this one, by its id or a unique prefix of it: the next
    /// page of a listing whose last entry it was.
    pub before: Option<String>,
    /// Only executions asked for with this API token (by its name); `before` is then one of
    /// them.
    pub token: Option<String>,
}

/// A stage before the run of a recorded execution: the compile stage, or the dependency
/// installation (`cached`: the set came from the dependency cache).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompileRecord {
    /// How the compiler ended.
    pub outcome: Outcome,
    /// What it used.
    pub usage: Usage,
    /// Whether the artifact came from the compile cache.
    pub cached: bool,
    /// Size of the compiler's standard output.
    pub stdout_bytes: u64,
    /// Size of the compiler's standard error.
    pub stderr_bytes: u64,
    /// The compiler's standard output, when the retention keeps output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// The compiler's standard error, when the retention keeps output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Whether `stdout` is only the start of it: the history keeps at most `[history]
    /// max_kept` bytes of each output (`stdout_bytes` is its whole size).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stdout_cut: bool,
    /// Whether `stderr` is only the start of it, as `stdout_cut`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stderr_cut: bool,
    /// The dependency installer's policy and connections, when asked for (one execution, not
    /// a list; kept in the traffic log, not in this record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkReport>,
}

/// The security section of a recorded execution.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SecurityRecord {
    /// Why the mode was chosen.
    #[serde(default)]
    pub reason: String,
    /// What static analysis found (excerpts empty when the retention keeps no code).
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Why the code could not be parsed for analysis (dropped when the retention keeps no
    /// code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// What the sandbox stopped at run time (limits hit, forbidden operations). Rows
    /// recorded before violations were structured hold text (`run: seccomp: ptrace`), read
    /// back into the same form.
    #[serde(default)]
    pub violations: Vec<Violation>,
    /// The named volumes the execution mounted (docs/volumes.md); kept here, in the row's
    /// security JSON, since they are what its sandbox could reach beside its own tree.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<crate::execution::VolumeRequest>,
}

/// A recorded execution, as read back.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// The execution's id.
    pub id: ExecutionId,
    /// When it finished (when it was recorded), shown in JSON as RFC 3339 UTC.
    #[serde(serialize_with = "rfc3339")]
    pub finished_at: SystemTime,
    /// The language.
    pub language: LanguageId,
    /// The isolation mode used.
    pub mode: Mode,
    /// The threat level static analysis gave the code (absent when it was not analysed).
    pub threat_level: Option<ThreatLevel>,
    /// How the program ended.
    pub outcome: Outcome,
    /// What the run stage used.
    pub usage: Usage,
    /// The limits enforced on the run stage.
    pub limits: Option<Limits>,
    /// Size of the submitted code.
    pub code_bytes: u64,
    /// Size of standard input, when known.
    pub stdin_bytes: Option<u64>,
    /// Size of standard output (as returned: at most the output limit).
    pub stdout_bytes: u64,
    /// Size of standard error.
    pub stderr_bytes: u64,
    /// Whether stdout was cut at the output limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    pub stderr_truncated: bool,
    /// Whether the history kept only the start of the code: at most `[history] max_kept`
    /// bytes of it (`code_bytes` is its whole size). Not the same as a `_truncated` flag,
    /// which says the program's output was cut at its limit as it ran.
    pub code_cut: bool,
    /// Whether the history kept only the start of stdout, as `code_cut`.
    pub stdout_cut: bool,
    /// Whether the history kept only the start of stderr, as `code_cut`.
    pub stderr_cut: bool,
    /// The dependency stage, when the execution named dependencies (absent for executions
    /// recorded before it was kept).
    pub dependencies: Option<CompileRecord>,
    /// The compile stage, for compiled languages.
    pub compile: Option<CompileRecord>,
    /// Findings and violations, when the execution was analysed.
    pub security: Option<SecurityRecord>,
    /// What the history kept of this execution's code and output.
    pub retention: Retention,
    /// The interface that asked (absent for executions recorded before it was kept).
    pub api: Option<String>,
    /// The name of the API token that asked, if any.
    pub token: Option<String>,
    /// The network policy it ran under, when that policy let traffic out (absent under
    /// `no_access`, and for executions recorded before the traffic log was kept).
    pub network_policy: Option<String>,
    /// How many of its connection attempts that policy denied.
    pub network_denied: Option<u32>,
    /// The policy and every connection attempt, when asked for (one execution, not a list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkReport>,
    /// The tool it ran for, when it was a tool call (one execution, not a list).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The code, when kept and asked for.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy")]
    pub code: Option<Vec<u8>>,
    /// Standard output, when kept and asked for.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy")]
    pub stdout: Option<Vec<u8>>,
    /// Standard error, when kept and asked for.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "lossy")]
    pub stderr: Option<Vec<u8>>,
}

impl HistoryEntry {
    /// When the execution finished, as RFC 3339 UTC with milliseconds.
    pub fn finished_at_utc(&self) -> String {
        utc(unix_ms(self.finished_at))
    }
}

/// What the record needs from the result's security section.
struct Facts {
    mode: String,
    threat_level: Option<ThreatLevel>,
    record: Option<SecurityRecord>,
}

fn facts_of(result: &ExecutionResult) -> Facts {
    let security = &result.security;
    Facts {
        mode: security.mode.name().to_owned(),
        threat_level: Some(security.threat_level),
        record: Some(SecurityRecord {
            reason: security.reason.clone(),
            findings: security.findings.clone(),
            parse_error: security.parse_error.clone(),
            violations: security.violations.clone(),
            volumes: result.volumes.clone(),
        }),
    }
}

/// The values of one `executions` row, ready to insert.
pub(super) struct Row {
    id: String,
    finished_at_ms: i64,
    language: String,
    security: Facts,
    outcome_kind: OutcomeKind,
    outcome: String,
    usage: Usage,
    input: (i64, Option<i64>),
    output: (i64, i64, bool, bool),
    limits: String,
    dependencies: Option<String>,
    compile: Option<String>,
    retention: Retention,
    origin: (String, Option<String>),
    network: Option<NetworkReport>,
    /// The dependency installer's connections, kept in the traffic log beside the program's.
    installer_network: Option<NetworkReport>,
    code: Option<Vec<u8>>,
    stdout: Option<Vec<u8>>,
    stderr: Option<Vec<u8>>,
}

impl Row {
    /// The row of `result`, finished at `now`, keeping of its code and output what `retention`
    /// says, each at most `max_kept` bytes.
    pub(super) fn new(
        result: &ExecutionResult,
        input: RecordInput<'_>,
        (retention, max_kept): (Retention, ByteSize),
        now: SystemTime,
    ) -> Self {
        let mut security = facts_of(result);
        if let (false, Some(record)) = (retention.keeps_code(), &mut security.record) {
            // Excerpts quote the code, and a parse error may.
            record.findings.iter_mut().for_each(|f| f.excerpt.clear());
            record.parse_error = None;
        }
        let output = retention.keeps_output();
        let keep = |bytes: &[u8]| cut(bytes, max_kept).0.to_vec();
        Self {
            id: result.id.as_str().to_owned(),
            finished_at_ms: unix_ms(now),
            language: result.language.to_string(),
            security,
            outcome_kind: result.outcome.kind(),
            outcome: to_json(&result.outcome),
            usage: result.usage,
            input: (len(input.code), input.stdin_bytes.map(signed)),
            output: (
                len(&result.stdout),
                len(&result.stderr),
                result.stdout_truncated,
                result.stderr_truncated,
            ),
            limits: to_json(&result.limits),
            dependencies: result
                .dependencies
                .as_ref()
                .map(|d| to_json(&compile(d, output.then_some(max_kept)))),
            compile: result
                .compile
                .as_ref()
                .map(|c| to_json(&compile(c, output.then_some(max_kept)))),
            retention,
            origin: (input.api.to_owned(), input.token.map(str::to_owned)),
            // What the sandbox let out or stopped is metadata: kept at every retention.
            network: result.network.clone(),
            installer_network: result.dependencies.as_ref().and_then(|d| d.network.clone()),
            code: retention.keeps_code().then(|| keep(input.code)),
            stdout: output.then(|| keep(&result.stdout)),
            stderr: output.then(|| keep(&result.stderr)),
        }
    }

    /// Inserts the row and its connections; returns the row's rowid.
    pub(super) fn insert(&self, tx: &Transaction<'_>) -> rusqlite::Result<i64> {
        let security = &self.security;
        let findings = security.record.as_ref().map_or(0, |r| r.findings.len());
        let violations = security.record.as_ref().map_or(0, |r| r.violations.len());
        tx.execute(
            "INSERT INTO executions (id, finished_at_ms, language, mode, outcome_kind, outcome, \
             cpu_time_ms, wall_time_ms, peak_memory_bytes, code_bytes, stdin_bytes, \
             stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, limits, compile, \
             retention, code, stdout, stderr, threat_level, finding_count, violation_count, \
             security, api, token, network_policy, dependencies, network_dropped, \
             dependencies_network_dropped) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, \
             ?28, ?29, ?30, ?31)",
            params![
                self.id,
                self.finished_at_ms,
                self.language,
                security.mode,
                self.outcome_kind.name(),
                self.outcome,
                millis(self.usage.cpu_time),
                millis(self.usage.wall_time),
                signed(self.usage.peak_memory.bytes()),
                self.input.0,
                self.input.1,
                self.output.0,
                self.output.1,
                self.output.2,
                self.output.3,
                self.limits,
                self.compile,
                self.retention.name(),
                self.code,
                self.stdout,
                self.stderr,
                security.threat_level.map(ThreatLevel::name),
                signed(findings as u64),
                signed(violations as u64),
                security.record.as_ref().map(to_json),
                self.origin.0,
                self.origin.1,
                self.network.as_ref().map(|n| n.policy.as_str()),
                self.dependencies,
                signed(self.network.as_ref().map_or(0, |n| n.dropped)),
                signed(self.installer_network.as_ref().map_or(0, |n| n.dropped)),
            ],
        )?;
        let rowid = tx.last_insert_rowid();
        let ran = match &self.network {
            Some(report) => {
                traffic::insert(tx, &self.id, report, None, 0)?;
                report.connections.len()
            }
            None => 0,
        };
        if let Some(report) = &self.installer_network {
            traffic::insert(tx, &self.id, report, Some(traffic::DEPENDENCIES), ran)?;
        }
        Ok(rowid)
    }
}

/// The record of a stage; its output kept when `max_kept` is given, each stream cut at it.
fn compile(stage: &StageResult, max_kept: Option<ByteSize>) -> CompileRecord {
    let text = |bytes: &[u8]| {
        let (kept, cut) = max_kept.map_or((&[][..], false), |max| cut(bytes, max));
        (
            max_kept.map(|_| String::from_utf8_lossy(kept).into_owned()),
            cut,
        )
    };
    let ((stdout, stdout_cut), (stderr, stderr_cut)) = (text(&stage.stdout), text(&stage.stderr));
    CompileRecord {
        outcome: stage.outcome.clone(),
        usage: stage.usage,
        cached: stage.cached,
        stdout_bytes: stage.stdout.len() as u64,
        stderr_bytes: stage.stderr.len() as u64,
        stdout,
        stderr,
        stdout_cut,
        stderr_cut,
        // The installer's go to the traffic log, read back with the execution.
        network: None,
    }
}

/// The start of `bytes` the history keeps, at most `max` bytes, and whether that is less
/// than all of it. A cut that would split a UTF-8 character ends before it, so that text
/// reads back without a broken last character.
fn cut(bytes: &[u8], max: ByteSize) -> (&[u8], bool) {
    let max = usize::try_from(max.bytes()).unwrap_or(usize::MAX);
    if bytes.len() <= max {
        return (bytes, false);
    }
    // The first byte of the last character begun before the cut: at most 3 bytes back.
    let first = (max.saturating_sub(3)..max)
        .rev()
        .find(|&i| bytes[i] & 0xC0 != 0x80);
    let end = match first {
        Some(i) if i + utf8_len(bytes[i]) > max => i,
        _ => max,
    };
    (&bytes[..end], true)
}

/// How many bytes the UTF-8 character starting with `first` has (1 for a byte that starts
/// none).
fn utf8_len(first: u8) -> usize {
    match first.leading_ones() {
        2 => 2,
        3 => 3,
        4 => 4,
        _ => 1,
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("history values serialize to JSON")
}

/// The columns [`Raw::read`] takes, in order. The 23rd counts the denied attempts (each
/// row's folded repeats, and the refusals the full log dropped) through the `connections`
/// primary key's index: a list stays one query. The last three say whether the code, stdout
/// and stderr kept are shorter than they were (cut at `[history] max_kept`): the sizes of
/// blobs, which SQLite reads from the row's header without their content.
const COLUMNS: &str = "id, finished_at_ms, language, mode, outcome, cpu_time_ms, wall_time_ms, \
    peak_memory_bytes, code_bytes, stdin_bytes, stdout_bytes, stderr_bytes, stdout_truncated, \
    stderr_truncated, limits, compile, retention, threat_level, security, api, token, \
    network_policy, CASE WHEN network_policy IS NULL THEN NULL ELSE network_dropped + \
    (SELECT coalesce(sum(1 + c.repeats), 0) FROM connections c \
    WHERE c.execution_id = executions.id AND c.allowed = 0 AND c.stage IS NULL) END, \
    dependencies, coalesce(octet_length(code) < code_bytes, 0), \
    coalesce(octet_length(stdout) < stdout_bytes, 0), \
    coalesce(octet_length(stderr) < stderr_bytes, 0)";

/// A row as SQLite returns it, before its JSON columns are decoded.
struct Raw {
    id: String,
    finished_at_ms: i64,
    language: String,
    mode: String,
    outcome: String,
    numbers: [i64; 6],
    stdin_bytes: Option<i64>,
    truncated: (bool, bool),
    /// Whether the code, stdout and stderr kept were cut at `[history] max_kept`.
    cut: [bool; 3],
    limits: String,
    dependencies: Option<String>,
    compile: Option<String>,
    retention: String,
    threat_level: Option<String>,
    security: Option<String>,
    origin: (Option<String>, Option<String>),
    network: (Option<String>, Option<i64>),
    payload: [Option<Vec<u8>>; 3],
}

impl Raw {
    fn read(row: &SqlRow<'_>, with_payload: bool) -> rusqlite::Result<Self> {
        let payload = if with_payload {
            [row.get(27)?, row.get(28)?, row.get(29)?]
        } else {
            [None, None, None]
        };
        Ok(Self {
            id: row.get(0)?,
            finished_at_ms: row.get(1)?,
            language: row.get(2)?,
            mode: row.get(3)?,
            outcome: row.get(4)?,
            numbers: [
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
                row.get(8)?,
                row.get(10)?,
                row.get(11)?,
            ],
            stdin_bytes: row.get(9)?,
            truncated: (row.get(12)?, row.get(13)?),
            cut: [row.get(24)?, row.get(25)?, row.get(26)?],
            limits: row.get(14)?,
            dependencies: row.get(23)?,
            compile: row.get(15)?,
            retention: row.get(16)?,
            threat_level: row.get(17)?,
            security: row.get(18)?,
            origin: (row.get(19)?, row.get(20)?),
            network: (row.get(21)?, row.get(22)?),
            payload,
        })
    }

    fn decode(self, path: &Path) -> Result<HistoryEntry, HistoryError> {
        let fail = |column| HistoryError::Decode {
            path: path.to_owned(),
            id: self.id.clone(),
            column,
        };
        let id = execution_id(&self.id).ok_or_else(|| fail("id"))?;
        let outcome = serde_json::from_str(&self.outcome).map_err(|_| fail("outcome"))?;
        let dependencies =
            decode_opt(self.dependencies.as_deref()).map_err(|_| fail("dependencies"))?;
        let compile = decode_opt(self.compile.as_deref()).map_err(|_| fail("compile"))?;
        let security = decode_opt(self.security.as_deref()).map_err(|_| fail("security"))?;
        let retention = self.retention.parse().map_err(|_| fail("retention"))?;
        let language = LanguageId::new(&self.language).map_err(|_| fail("language"))?;
        let mode = self.mode.parse().map_err(|_| fail("mode"))?;
        let [cpu, wall, memory, code_bytes, stdout_bytes, stderr_bytes] =
            self.numbers.map(unsigned);
        let [code, stdout, stderr] = self.payload;
        let [code_cut, stdout_cut, stderr_cut] = self.cut;
        Ok(HistoryEntry {
            id,
            finished_at: SystemTime::UNIX_EPOCH
                + Duration::from_millis(unsigned(self.finished_at_ms)),
            language,
            mode,
            threat_level: self.threat_level.and_then(|t| t.parse().ok()),
            outcome,
            usage: Usage {
                cpu_time: Duration::from_millis(cpu),
                wall_time: Duration::from_millis(wall),
                peak_memory: ByteSize(memory),
            },
            // Limits gain fields over time; an old row's limits are shown when they still parse.
            limits: serde_json::from_str(&self.limits).ok(),
            code_bytes,
            stdin_bytes: self.stdin_bytes.map(unsigned),
            stdout_bytes,
            stderr_bytes,
            stdout_truncated: self.truncated.0,
            stderr_truncated: self.truncated.1,
            code_cut,
            stdout_cut,
            stderr_cut,
            dependencies,
            compile,
            security,
            retention,
            api: self.origin.0,
            token: self.origin.1,
            network_policy: self.network.0,
            network_denied: self.network.1.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
            network: None,
            tool: None,
            code,
            stdout,
            stderr,
        })
    }
}

fn decode_opt<T: for<'de> Deserialize<'de>>(json: Option<&str>) -> serde_json::Result<Option<T>> {
    json.map(serde_json::from_str).transpose()
}

/// The executions matching `filter`, newest first, without payloads.
///
/// `after` is the position of [`HistoryFilter::before`]'s execution, once resolved: its finish
/// time and full id.
pub(super) fn list(
    conn: &Connection,
    path: &Path,
    filter: &HistoryFilter,
    after: Option<(i64, &str)>,
) -> Result<Vec<HistoryEntry>, HistoryError> {
    let mut sql = format!("SELECT {COLUMNS} FROM executions WHERE 1 = 1");
    let mut args = Vec::new();
    let text = [
        ("language", filter.language.as_ref().map(LanguageId::as_str)),
        ("outcome_kind", filter.outcome.map(OutcomeKind::name)),
        ("mode", filter.mode.map(Mode::name)),
        ("token", filter.token.as_deref()),
    ];
    for (column, value) in text {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            args.push(Value::Text(value.to_owned()));
        }
    }
    if let Some(since) = filter.since {
        sql.push_str(" AND finished_at_ms >= ?");
        args.push(Value::Integer(unix_ms(since)));
    }
    if let Some((finished_at_ms, id)) = after {
        // A row value: a range of the time index, which ends with the id.
        sql.push_str(" AND (finished_at_ms, id) < (?, ?)");
        args.push(Value::Integer(finished_at_ms));
        args.push(Value::Text(id.to_owned()));
    }
    sql.push_str(" ORDER BY finished_at_ms DESC, id DESC");
    if let Some(limit) = filter.limit {
        sql.push_str(" LIMIT ?");
        args.push(Value::Integer(limit.into()));
    }
    let step = "listing executions";
    let raws = conn
        .prepare(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(rusqlite::params_from_iter(args), |r| Raw::read(r, false))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| classify(path, step, e))?;
    // One row that cannot be read (written by a newer warden, or edited by hand) is left out
    // with a warning naming it, rather than hiding every other execution behind an error.
    Ok(raws
        .into_iter()
        .filter_map(|raw| {
            raw.decode(path)
                .inspect_err(|e| tracing::warn!("{e}; the listing goes on without it"))
                .ok()
        })
        .collect())
}

/// The execution with exactly this id, with its payloads and its connections.
pub(super) fn get(
    conn: &Connection,
    path: &Path,
    id: &str,
) -> Result<Option<HistoryEntry>, HistoryError> {
    let step = "reading an execution";
    let sql = format!("SELECT {COLUMNS}, code, stdout, stderr FROM executions WHERE id = ?1");
    // One read transaction: a prune between the two reads would leave a policy without its
    // connections.
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Deferred)
        .map_err(|e| classify(path, step, e))?;
    let raw = tx
        .query_row(&sql, [id], |r| Raw::read(r, true))
        .optional()
        .map_err(|e| classify(path, step, e))?;
    let Some(raw) = raw else {
        return Ok(None);
    };
    let report = match &raw.network.0 {
        Some(policy) => {
            Some(traffic::report(&tx, id, policy.clone()).map_err(|e| classify(path, step, e))?)
        }
        None => None,
    };
    let installer = traffic::dependencies_report(&tx, id).map_err(|e| classify(path, step, e))?;
    let tool = super::tool_calls::tool_of(&tx, id).map_err(|e| classify(path, step, e))?;
    tx.commit().map_err(|e| classify(path, step, e))?;
    let mut entry = raw.decode(path)?;
    entry.network = report;
    if let Some(stage) = entry.dependencies.as_mut() {
        stage.network = installer;
    }
    entry.tool = tool;
    Ok(Some(entry))
}

/// An id read back from the database; `None` if it is not one.
pub(super) fn execution_id(text: &str) -> Option<ExecutionId> {
    let text: StrDeserializer<'_, serde::de::value::Error> = text.into_deserializer();
    ExecutionId::deserialize(text).ok()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn len(bytes: &[u8]) -> i64 {
    signed(bytes.len() as u64)
}

pub(super) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn lossy<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&String::from_utf8_lossy(b)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_names_round_trip() {
        for r in [Retention::Metadata, Retention::Code, Retention::Full] {
            assert_eq!(r.name().parse(), Ok(r));
        }
        assert!("everything".parse::<Retention>().is_err());
    }

    #[test]
    fn a_cut_keeps_the_start_and_never_splits_a_character() {
        let max = ByteSize(5);
        assert_eq!(cut(b"hello", max), (&b"hello"[..], false));
        assert_eq!(cut(b"hello!", max), (&b"hello"[..], true));
        // "ab" then "é" (2 bytes) then "€" (3 bytes): the cut at 5 would split the euro.
        let text = "abé€".as_bytes();
        assert_eq!(cut(text, max), (&text[..4], true));
        assert_eq!(cut(text, ByteSize(7)), (text, false));
        assert_eq!(cut(text, ByteSize(6)), (&text[..4], true));
        assert_eq!(cut(text, ByteSize(3)), (&text[..2], true));
        // Bytes that are not UTF-8 are cut where the bound is.
        assert_eq!(cut(&[0xff; 9], max), (&[0xff; 5][..], true));
        assert_eq!(cut(&[0x80; 9], max), (&[0x80; 5][..], true));
        assert_eq!(cut(b"abc", ByteSize(0)), (&b""[..], true));
    }
}
