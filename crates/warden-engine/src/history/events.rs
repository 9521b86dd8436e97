//! Security events (docs/events.md): what the sandbox stopped, read back from the recorded
//! executions' violations (limits hit, forbidden operations, denied connections), each with a
//! severity, newest first; and how many a caller caused lately, for the response rules.

use std::path::Path;
use std::time::SystemTime;

use rusqlite::Connection;
use serde::Serialize;
use warden_core::seccomp_policy::DenySeverity;

use super::entry::{unsigned, SecurityRecord};
use super::{classify, unix_ms, utc_from_unix_ms, HistoryError};
use crate::security::{Stage, Violation, ViolationKind};

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A limit the program hit (time, memory, output, file size, a network policy's connection
    /// and byte limits): what limits are for.
    Low,
    /// A connection the network policy denied.
    Medium,
    /// An operation the sandbox killed the program for (a denied system call, a forbidden
    /// operation), or a refused system call that is a step of a known escape (mount,
    /// namespaces, ptrace, BPF, keyrings).
    High,
}

impl Severity {
    /// The severity of `violation`.
    pub fn of(violation: &Violation) -> Self {
        if let Some(call) = &violation.syscall {
            // A refused call: the seccomp policy says how serious (policies/seccomp).
            return call.severity.into();
        }
        if let Some(writes) = &violation.writes {
            // Writes to read-only paths: medium on the sandbox's system surfaces.
            return writes.severity.into();
        }
        match violation.kind {
            ViolationKind::Violation if violation.detail.starts_with("network:") => {
                Severity::Medium
            }
            ViolationKind::Violation => Severity::High,
            // A fork storm: the program tried to exhaust the host's processes.
            ViolationKind::ProcessLimit => Severity::Medium,
            // Its detail starts with `network:` too, but a limit is what limits are for.
            ViolationKind::NetworkLimit => Severity::Low,
            _ if violation.detail.starts_with("network:") => Severity::Medium,
            _ => Severity::Low,
        }
    }
}

impl From<DenySeverity> for Severity {
    fn from(severity: DenySeverity) -> Self {
        match severity {
            DenySeverity::Low => Severity::Low,
            DenySeverity::Medium => Severity::Medium,
            DenySeverity::High => Severity::High,
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            other => Err(format!("unknown severity {other:?}: low, medium or high")),
        }
    }
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEvent {
    /// When its execution finished (UTC, RFC 3339).
    pub time: String,
    /// The execution.
    pub execution_id: String,
    /// The interface that asked, if known.
    pub api: Option<String>,
    /// The API token's name, if any.
    pub token: Option<String>,
    /// The stage it happened in.
    pub stage: Stage,
    /// What kind of thing was stopped.
    pub kind: ViolationKind,
    /// For people.
    pub detail: String,
    /// How serious.
    pub severity: Severity,
}

/// Which events [`super::HistoryStore::events`] returns.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events of executions that finished at or after this time.
    pub since: Option<SystemTime>,
    /// Only events at least this serious.
    pub severity: Option<Severity>,
    /// At most this many, the newest; 0 for all.
    pub limit: usize,
}

/// The events matching `filter`, newest first.
pub(super) fn list(
    conn: &Connection,
    path: &Path,
    filter: &EventFilter,
) -> Result<Vec<SecurityEvent>, HistoryError> {
    let step = "reading security events";
    let mut stmt = conn
        .prepare(
            "SELECT id, finished_at_ms, api, token, security FROM executions \
             WHERE violation_count > 0 AND finished_at_ms >= ?1 \
             ORDER BY finished_at_ms DESC, id DESC",
        )
        .map_err(|e| classify(path, step, e))?;
    let since = filter.since.map_or(i64::MIN, unix_ms);
    let rows = stmt
        .query_map([since], |r| {
            Ok((
                r.get::<_, String>(0)?,
                unsigned(r.get(1)?),
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })
        .map_err(|e| classify(path, step, e))?;
    let mut events = Vec::new();
    for row in rows {
        let (id, at, api, token, security) = row.map_err(|e| classify(path, step, e))?;
        let Some(record) = security.and_then(|s| serde_json::from_str::<SecurityRecord>(&s).ok())
        else {
            continue;
        };
        for violation in record.violations {
            let severity = Severity::of(&violation);
            if filter.severity.is_some_and(|least| severity < least) {
                continue;
            }
            events.push(SecurityEvent {
                time: utc_from_unix_ms(at),
                execution_id: id.clone(),
                api: api.clone(),
                token: token.clone(),
                stage: violation.stage,
                kind: violation.kind,
                detail: violation.detail,
                severity,
            });
            if filter.limit > 0 && events.len() >= filter.limit {
                return Ok(events);
            }
        }
    }
    Ok(events)
}

/// How many violations the executions of `token` (the local caller when `None`) recorded since
/// `since`.
/// A caller's violations since a time: read before every execution when `[response]` is set.
pub(super) const CALLER_EVENTS: &str = "SELECT COALESCE(SUM(violation_count), 0) \
     FROM executions WHERE finished_at_ms >= ?1 AND token IS ?2";

pub(super) fn count_for(
    conn: &Connection,
    path: &Path,
    token: Option<&str>,
    since: SystemTime,
) -> Result<u64, HistoryError> {
    let step = "counting a caller's security events";
    let n: i64 = conn
        .query_row(
            CALLER_EVENTS,
            rusqlite::params![unix_ms(since), token],
            |r| r.get(0),
        )
        .map_err(|e| classify(path, step, e))?;
    Ok(unsigned(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(kind: ViolationKind, detail: &str) -> Violation {
        Violation {
            stage: Stage::Run,
            kind,
            detail: detail.to_owned(),
            syscall: None,
            writes: None,
        }
    }

    #[test]
    fn severities_follow_what_was_stopped() {
        assert_eq!(
            Severity::of(&violation(ViolationKind::Violation, "seccomp: ptrace")),
            Severity::High
        );
        assert_eq!(
            Severity::of(&violation(
                ViolationKind::Violation,
                "network: tcp 10.0.0.1:80 denied"
            )),
            Severity::Medium
        );
        assert_eq!(
            Severity::of(&violation(
                ViolationKind::MemoryLimit,
                "memory limit exceeded"
            )),
            Severity::Low
        );
        assert_eq!(
            Severity::of(&violation(
                ViolationKind::NetworkLimit,
                "network: tcp 8.8.8.8:80 refused by limits: 1 connection open at once"
            )),
            Severity::Low,
            "a network limit is a limit (docs/events.md), not a denied destination"
        );
        let refused = |severity| {
            Severity::of(&Violation::denied_syscall(
                Stage::Run,
                &warden_sandbox::DeniedSyscall {
                    name: "mount".into(),
                    errno: warden_core::seccomp_policy::DenyErrno::Eperm,
                    severity,
                    count: 1,
                    samples: Vec::new(),
                },
            ))
        };
        assert_eq!(refused(DenySeverity::High), Severity::High);
        assert_eq!(refused(DenySeverity::Low), Severity::Low);
        assert!(Severity::Low < Severity::High);
        assert_eq!("medium".parse(), Ok(Severity::Medium));
        assert!("urgent".parse::<Severity>().is_err());
    }
}
