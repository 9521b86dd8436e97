//! Messages from the helper and the sandbox init to the parent, one JSON object per line on the
//! report pipe. Each message is written with a single `write(2)` shorter than `PIPE_BUF`, so
//! messages from several processes never interleave.

use std::os::fd::BorrowedFd;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::denials::{DeniedSyscall, KilledSyscall};
use crate::writes::ReadOnlyWrites;

/// Longest detail text carried in a message (keeps every line under `PIPE_BUF`).
const MAX_DETAIL: usize = 2048;

/// How the payload process ended, as `waitpid` saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExitStatus {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

/// Who kills a process of a job for a call its seccomp filter kills for (a forbidden call, a
/// foreign ABI's): what a death by `SIGSYS` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SeccompKiller {
    /// The kernel (`SECCOMP_RET_KILL_PROCESS`: the filter had no listener): the process dies
    /// of `SIGSYS`, and the call is not named.
    #[default]
    Kernel,
    /// The sandbox's init, through the filter's listener (`denials.rs`): the process dies of
    /// `SIGKILL` and the call is reported by name, so a death by `SIGSYS` is the program's
    /// own doing (it raised the signal, or its own filter killed it).
    Init,
    /// No one: the filter kills for no call, and lets the program send `SIGXFSZ` (the trusted
    /// backend's, which refuses a few keyring operations with `EPERM` and nothing else). A
    /// death by `SIGSYS` is the program's own doing.
    Nobody,
}

/// One message on the report pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Report {
    /// From the helper: the init exists, with this pid in the host's pid namespace.
    Init {
        /// The init's host pid.
        pid: i32,
    },
    /// From the init: the sandbox is built (or reset) and waits for its next job.
    Ready {
        /// The cgroup's cpu count when the init sent this, in nanoseconds, as the init read it
        /// (after a build, when the counter could be read): where a job sent during the build
        /// starts counting, so that the build is not the job's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cgroup_cpu_ns: Option<u64>,
    },
    /// The payload was forked and is about to exec: the wall clock starts.
    Started,
    /// The job ended: its payload exited and every process it left was killed and reaped.
    /// The last message of every job, also of one whose setup failed.
    Exited {
        /// How.
        status: ExitStatus,
        /// Its wall time, measured by the init with the monotonic clock.
        #[serde(with = "nanos")]
        wall_time: Duration,
        /// Who killed a process for a call the seccomp filter kills for: what a `SIGSYS`
        /// death means.
        #[serde(default)]
        killer: SeccompKiller,
        /// The program failed by itself and left a file cut at its file size limit
        /// (`files_at_limit.rs`): a write that failed with `EFBIG`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        file_at_limit: bool,
    },
    /// A system call the seccomp policy refused, with how often the job tried it: one message
    /// per call, after the job's processes are gone and before its `Exited` (`denials.rs`).
    Denied(DeniedSyscall),
    /// A system call the seccomp policy kills for, with the processes killed for it: one
    /// message per call, after the `Denied` ones (`denials.rs`).
    Killed(KilledSyscall),
    /// The writes to read-only paths the job's processes attempted (`writes.rs`): at most one
    /// message, after the `Killed` ones.
    ReadOnly(ReadOnlyWrites),
    /// The job changed the init itself (its rlimits, lowered from inside with `prlimit`):
    /// every later job would inherit the change, so the sandbox must run no more. Sent after
    /// the job's processes are gone and before its `Exited`.
    Tainted {
        /// What changed, for the log.
        what: String,
    },
    /// A setup step failed: before `Ready`, the sandbox's (it is gone); after, the current
    /// job's (its program never ran, and the sandbox waits for the next job).
    SetupFailed {
        /// The step, as in docs/sandbox-setup.md.
        step: String,
        /// What went wrong.
        detail: String,
    },
}

impl Report {
    /// A setup failure report.
    pub(crate) fn failed(step: &str, detail: impl std::fmt::Display) -> Self {
        let mut detail = detail.to_string();
        if detail.len() > MAX_DETAIL {
            let mut cut = MAX_DETAIL;
            while !detail.is_char_boundary(cut) {
                cut -= 1;
            }
            detail.truncate(cut);
        }
        Report::SetupFailed {
            step: step.chars().take(256).collect(),
            detail,
        }
    }

    /// Writes the message as one line with one `write(2)`. Failures are ignored: the reader
    /// being gone means the parent already decided the outcome.
    pub(crate) fn send(&self, fd: BorrowedFd<'_>) {
        let Ok(mut line) = serde_json::to_vec(self) else {
            return;
        };
        line.push(b'\n');
        let _ = nix::unistd::write(fd, &line);
    }
}

/// Splits complete lines off `buffer` and parses them; the incomplete tail stays.
pub(crate) fn drain_lines(buffer: &mut Vec<u8>) -> Vec<Result<Report, String>> {
    let mut out = Vec::new();
    while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
        let line: Vec<u8> = buffer.drain(..=end).collect();
        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
        out.push(serde_json::from_str(&text).map_err(|_| text));
    }
    out
}

mod nanos {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_partial_lines_wait() {
        let reports = [
            Report::Ready {
                cgroup_cpu_ns: Some(u64::MAX),
            },
            Report::Ready {
                cgroup_cpu_ns: None,
            },
            Report::Started,
            Report::Exited {
                status: ExitStatus::Signal(9),
                wall_time: Duration::from_millis(3),
                killer: SeccompKiller::Init,
                file_at_limit: true,
            },
            Report::failed("mount /usr", "EPERM"),
            Report::Denied(DeniedSyscall {
                name: "mount".into(),
                errno: warden_core::seccomp_policy::DenyErrno::Eperm,
                severity: warden_core::seccomp_policy::DenySeverity::High,
                count: u64::MAX,
                samples: vec![[u64::MAX; 6]; 3],
            }),
        ];
        // The largest `denied` line (every number at its widest) is one atomic pipe write.
        let denied = serde_json::to_vec(&reports[5]).expect("serializable");
        assert!(denied.len() < libc::PIPE_BUF, "{} bytes", denied.len());
        let mut buffer = Vec::new();
        for r in &reports {
            buffer.extend(serde_json::to_vec(r).expect("serializable"));
            buffer.push(b'\n');
        }
        buffer.extend(b"{\"event\":");
        let parsed: Vec<Report> = drain_lines(&mut buffer)
            .into_iter()
            .map(|r| r.expect("valid"))
            .collect();
        assert_eq!(parsed, reports);
        assert_eq!(buffer, b"{\"event\":");
    }

    #[test]
    fn long_details_are_cut_below_pipe_buf() {
        let r = Report::failed("step", "é".repeat(10_000));
        let line = serde_json::to_vec(&r).expect("serializable");
        assert!(line.len() < 4096, "{}", line.len());
    }
}
