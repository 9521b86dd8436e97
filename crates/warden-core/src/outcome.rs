//! What happened to a program: the outcome of one stage and the resources it used.
//!
//! An outcome is data about untrusted code, never an error of warden's (DESIGN.md §7.4).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::ByteSize;

/// How a program's run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The program exited by itself with this status.
    Exited {
        /// The exit status (0-255).
        code: i32,
    },
    /// The program was killed by a signal it did not choose to treat as a limit.
    Signaled {
        /// The signal, by name.
        signal: Signal,
    },
    /// The cpu or the wall time limit was reached.
    TimeLimit {
        /// Which clock ran out.
        which: TimeLimitKind,
    },
    /// The memory cgroup killed the program.
    MemoryLimit,
    /// A stream produced more than the output limit; the run was killed.
    OutputLimit {
        /// The stream that overflowed.
        stream: Stream,
    },
    /// The program exceeded the file size limit: the kernel's `SIGXFSZ` killed it, or (a
    /// runtime that ignores `SIGXFSZ`: CPython, Node, Go, the JVM) the write failed with `EFBIG`
    /// and the program then ended by itself, leaving a file cut at the limit.
    FileSizeLimit {
        /// How the program ended by itself after the refused write; `None` when `SIGXFSZ`
        /// killed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended: Option<ProgramEnd>,
    },
    /// The sandbox stopped the program for a forbidden operation.
    Violation {
        /// What was forbidden.
        detail: String,
    },
    /// The compile stage failed; the program never ran (the compile stage's own outcome says
    /// how the compiler ended).
    CompileError,
    /// The dependency installation failed; the program never ran (the `dependencies` stage's
    /// own outcome and output say how the installer ended).
    DependencyError,
    /// Its caller cancelled the execution before its result (the client left, a `DELETE`, the
    /// server's shutdown deadline): the program was killed where it was. Nobody gets it as an
    /// answer; the history records it, with what the sandbox stopped until then
    /// (docs/events.md).
    Cancelled,
}

/// How a program ended by itself, where a limit's verdict takes the place of its own outcome
/// ([`Outcome::FileSizeLimit`]): the [`Outcome::Exited`] or [`Outcome::Signaled`] it would
/// have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProgramEnd {
    /// It exited with this status.
    Exited {
        /// The exit status (1-255).
        code: i32,
    },
    /// A signal that is not a limit's killed it.
    Signaled {
        /// The signal, by name.
        signal: Signal,
    },
}

impl From<ProgramEnd> for Outcome {
    fn from(end: ProgramEnd) -> Self {
        match end {
            ProgramEnd::Exited { code } => Outcome::Exited { code },
            ProgramEnd::Signaled { signal } => Outcome::Signaled { signal },
        }
    }
}

/// The kind of an [`Outcome`], without its details: the `kind` tag of its JSON form, what
/// history filters and statistics group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeKind {
    /// [`Outcome::Exited`].
    Exited,
    /// [`Outcome::Signaled`].
    Signaled,
    /// [`Outcome::TimeLimit`].
    TimeLimit,
    /// [`Outcome::MemoryLimit`].
    MemoryLimit,
    /// [`Outcome::OutputLimit`].
    OutputLimit,
    /// [`Outcome::FileSizeLimit`].
    FileSizeLimit,
    /// [`Outcome::Violation`].
    Violation,
    /// [`Outcome::CompileError`].
    CompileError,
    /// [`Outcome::DependencyError`].
    DependencyError,
    /// [`Outcome::Cancelled`].
    Cancelled,
}

impl OutcomeKind {
    /// Every kind, in declaration order.
    pub const ALL: [OutcomeKind; 10] = [
        OutcomeKind::Exited,
        OutcomeKind::Signaled,
        OutcomeKind::TimeLimit,
        OutcomeKind::MemoryLimit,
        OutcomeKind::OutputLimit,
        OutcomeKind::FileSizeLimit,
        OutcomeKind::Violation,
        OutcomeKind::CompileError,
        OutcomeKind::DependencyError,
        OutcomeKind::Cancelled,
    ];

    /// The name used in JSON, the history database and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            OutcomeKind::Exited => "exited",
            OutcomeKind::Signaled => "signaled",
            OutcomeKind::TimeLimit => "time_limit",
            OutcomeKind::MemoryLimit => "memory_limit",
            OutcomeKind::OutputLimit => "output_limit",
            OutcomeKind::FileSizeLimit => "file_size_limit",
            OutcomeKind::Violation => "violation",
            OutcomeKind::CompileError => "compile_error",
            OutcomeKind::DependencyError => "dependency_error",
            OutcomeKind::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OutcomeKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown outcome kind {s:?}"))
    }
}

impl Outcome {
    /// The kind of this outcome.
    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Exited { .. } => OutcomeKind::Exited,
            Outcome::Signaled { .. } => OutcomeKind::Signaled,
            Outcome::TimeLimit { .. } => OutcomeKind::TimeLimit,
            Outcome::MemoryLimit => OutcomeKind::MemoryLimit,
            Outcome::OutputLimit { .. } => OutcomeKind::OutputLimit,
            Outcome::FileSizeLimit { .. } => OutcomeKind::FileSizeLimit,
            Outcome::Violation { .. } => OutcomeKind::Violation,
            Outcome::CompileError => OutcomeKind::CompileError,
            Outcome::DependencyError => OutcomeKind::DependencyError,
            Outcome::Cancelled => OutcomeKind::Cancelled,
        }
    }

    /// True when the program exited with status 0.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Exited { code: 0 })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Exited { code } => write!(f, "exited with status {code}"),
            Outcome::Signaled { signal } => write!(f, "killed by {signal}"),
            Outcome::TimeLimit { which } => write!(f, "{which} time limit exceeded"),
            Outcome::MemoryLimit => write!(f, "memory limit exceeded"),
            Outcome::OutputLimit { stream } => write!(f, "output limit exceeded on {stream}"),
            Outcome::FileSizeLimit { ended: None } => write!(f, "file size limit exceeded"),
            Outcome::FileSizeLimit { ended: Some(end) } => write!(
                f,
                "file size limit exceeded: a write failed at the limit (EFBIG), and the \
                 program ended by itself: {}",
                Outcome::from(*end)
            ),
            Outcome::Violation { detail } => write!(f, "security violation: {detail}"),
            Outcome::CompileError => write!(f, "compilation failed"),
            Outcome::DependencyError => write!(f, "dependency installation failed"),
            Outcome::Cancelled => write!(f, "cancelled before its result"),
        }
    }
}

/// Which time limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeLimitKind {
    /// CPU time of the process tree.
    Cpu,
    /// Wall-clock time.
    Wall,
}

impl fmt::Display for TimeLimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeLimitKind::Cpu => "cpu",
            TimeLimitKind::Wall => "wall",
        })
    }
}

/// An output stream of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        })
    }
}

/// A Linux signal number, shown and serialized by name (`SIGSEGV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

/// Linux x86_64 / aarch64 signal names by number (they agree for 1..=31).
const SIGNAL_NAMES: [&str; 32] = [
    "",
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

impl Signal {
    /// `SIGINT`: an interrupt, as a terminal's Ctrl-C sends it.
    pub const INT: Signal = Signal(2);
    /// `SIGKILL`.
    pub const KILL: Signal = Signal(9);
    /// `SIGTERM`.
    pub const TERM: Signal = Signal(15);
    /// `SIGXCPU`: `RLIMIT_CPU` soft limit.
    pub const XCPU: Signal = Signal(24);
    /// `SIGXFSZ`: `RLIMIT_FSIZE`.
    pub const XFSZ: Signal = Signal(25);
    /// `SIGSYS`: a bad system call (a seccomp kill in the kernel).
    pub const SYS: Signal = Signal(31);

    /// The conventional name, or `SIGRTMIN+n` / `SIG<n>`.
    pub fn name(self) -> String {
        match usize::try_from(self.0) {
            Ok(n @ 1..=31) => SIGNAL_NAMES[n].to_owned(),
            Ok(n @ 34..=64) => format!("SIGRTMIN+{}", n - 34),
            _ => format!("SIG{}", self.0),
        }
    }

    /// Reads a name produced by [`Signal::name`] (or a bare number).
    pub fn from_name(name: &str) -> Option<Signal> {
        if let Some(n) = SIGNAL_NAMES
            .iter()
            .position(|s| !s.is_empty() && *s == name)
        {
            return i32::try_from(n).ok().map(Signal);
        }
        if let Some(rt) = name.strip_prefix("SIGRTMIN+") {
            return rt.parse::<i32>().ok().map(|n| Signal(n + 34));
        }
        name.trim_start_matches("SIG").parse().ok().map(Signal)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

impl<'de> Deserialize<'de> for Signal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Signal::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown signal {name:?}")))
    }
}

/// Resources a stage used, measured by the kernel (cgroup accounting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time of the whole process tree.
    #[serde(rename = "cpu_time_ms", with = "millis")]
    pub cpu_time: Duration,
    /// Wall-clock time of the program, from its start to its end.
    #[serde(rename = "wall_time_ms", with = "millis")]
    pub wall_time: Duration,
    /// Highest memory charge of the tree.
    #[serde(rename = "peak_memory_bytes", with = "bytes")]
    pub peak_memory: ByteSize,
}

/// One reading of a running program's cgroup (live resource monitoring): how far into the run,
/// the cpu time used so far, the memory charged and the tasks alive at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageSample {
    /// Since the program started.
    #[serde(rename = "t_ms", with = "millis")]
    pub at: Duration,
    /// CPU time of the tree so far.
    #[serde(rename = "cpu_time_ms", with = "millis")]
    pub cpu_time: Duration,
    /// Memory charged at that moment.
    #[serde(rename = "memory_bytes", with = "bytes")]
    pub memory: ByteSize,
    /// Tasks (processes and threads) alive.
    pub pids: u64,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod bytes {
    use crate::units::ByteSize;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(b.bytes())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
        u64::deserialize(d).map(ByteSize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_the_json_tag_and_round_trip() {
        let outcome = Outcome::TimeLimit {
            which: TimeLimitKind::Cpu,
        };
        let json = serde_json::to_value(&outcome).expect("serializable");
        assert_eq!(json["kind"], outcome.kind().name());
        for kind in OutcomeKind::ALL {
            assert_eq!(kind.name().parse(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).expect("serializable"),
                kind.name()
            );
        }
        assert!("finished".parse::<OutcomeKind>().is_err());
    }

    #[test]
    fn outcomes_serialize_with_a_kind_tag() {
        let cases = [
            (Outcome::Exited { code: 3 }, r#"{"kind":"exited","code":3}"#),
            (
                Outcome::Signaled { signal: Signal(11) },
                r#"{"kind":"signaled","signal":"SIGSEGV"}"#,
            ),
            (
                Outcome::TimeLimit {
                    which: TimeLimitKind::Wall,
                },
                r#"{"kind":"time_limit","which":"wall"}"#,
            ),
            (Outcome::MemoryLimit, r#"{"kind":"memory_limit"}"#),
            (Outcome::CompileError, r#"{"kind":"compile_error"}"#),
            (Outcome::DependencyError, r#"{"kind":"dependency_error"}"#),
            (Outcome::Cancelled, r#"{"kind":"cancelled"}"#),
            (
                Outcome::OutputLimit {
                    stream: Stream::Stderr,
                },
                r#"{"kind":"output_limit","stream":"stderr"}"#,
            ),
            // As results and the history held it before a program's own end was kept.
            (
                Outcome::FileSizeLimit { ended: None },
                r#"{"kind":"file_size_limit"}"#,
            ),
            (
                Outcome::FileSizeLimit {
                    ended: Some(ProgramEnd::Exited { code: 1 }),
                },
                r#"{"kind":"file_size_limit","ended":{"kind":"exited","code":1}}"#,
            ),
            (
                Outcome::FileSizeLimit {
                    ended: Some(ProgramEnd::Signaled { signal: Signal(6) }),
                },
                r#"{"kind":"file_size_limit","ended":{"kind":"signaled","signal":"SIGABRT"}}"#,
            ),
        ];
        for (outcome, json) in cases {
            assert_eq!(serde_json::to_string(&outcome).expect("serializable"), json);
            assert_eq!(
                serde_json::from_str::<Outcome>(json).expect("parses"),
                outcome
            );
        }
    }

    #[test]
    fn signal_names_round_trip() {
        for n in 1..=64 {
            if n == 32 || n == 33 {
                continue;
            }
            assert_eq!(Signal::from_name(&Signal(n).name()), Some(Signal(n)), "{n}");
        }
        assert_eq!(Signal(31).name(), "SIGSYS");
    }

    #[test]
    fn usage_serializes_in_milliseconds_and_bytes() {
        let u = Usage {
            cpu_time: Duration::from_millis(1500),
            wall_time: Duration::from_millis(20),
            peak_memory: ByteSize(4096),
        };
        assert_eq!(
            serde_json::to_string(&u).expect("serializable"),
            r#"{"cpu_time_ms":1500,"wall_time_ms":20,"peak_memory_bytes":4096}"#
        );
    }
}
