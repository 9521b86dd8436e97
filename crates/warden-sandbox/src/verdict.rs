//! Turns what the parent observed (its own kill decision, the payload's exit status, the
//! cgroup's accounting) into the program's [`Outcome`]. Pure, so every precedence rule is
//! unit-tested.

use warden_core::{Limits, Outcome, ProgramEnd, Signal, Stream, TimeLimitKind};

use crate::cgroup::CgroupStats;
use crate::report::{ExitStatus, SeccompKiller};

/// Why the parent killed the sandbox, if it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillReason {
    Output(Stream),
    Wall,
    Cpu,
}

/// How far a death by a signal in the status is known to be one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignalCertainty {
    /// The kernel's wait status, passed on as it is (warden's init).
    WaitStatus,
    /// A runtime's exit code 128 + N read as a death by signal N (`runsc`, whose loader exits
    /// so for its program, `gvisor/filter_exec.rs`): the program may as well have exited with
    /// that code itself, so such a death alone says nothing of a limit or a forbidden call.
    ExitCode,
}

/// The outcome, by precedence: the parent's own kill decision; the init's kill of the program
/// for a call the seccomp filter kills for (`killed_for`, the call's name); the memory
/// cgroup's OOM kill; cpu exhaustion (a SIGXCPU or SIGKILL death with the cgroup's cpu time at
/// the limit); the kernel's file-size signal (a SIGXFSZ death under a seccomp filter, which
/// keeps the program from sending SIGXFSZ itself, `file_size_signal.rs`; without one, with the
/// memory peak at the file size limit); a death by SIGSYS where the kernel made the filter's
/// kills (`killer`); a failure of the program's own with a file cut at the file size limit
/// left behind (`file_at_limit`, `files_at_limit.rs`: a runtime that ignores `SIGXFSZ` saw its
/// write fail with `EFBIG`); then the plain status. SIGXFSZ and SIGSYS only from a wait status
/// (`certainty`): a program could fake them with its exit code.
pub(crate) fn decide(
    killed: Option<KillReason>,
    killed_for: Option<&str>,
    killer: SeccompKiller,
    (status, certainty): (Option<ExitStatus>, SignalCertainty),
    file_at_limit: bool,
    stats: &CgroupStats,
    limits: &Limits,
) -> Option<Outcome> {
    let known = certainty == SignalCertainty::WaitStatus;
    match killed {
        Some(KillReason::Output(stream)) => return Some(Outcome::OutputLimit { stream }),
        Some(KillReason::Wall) => {
            return Some(Outcome::TimeLimit {
                which: TimeLimitKind::Wall,
            })
        }
        Some(KillReason::Cpu) => {
            return Some(Outcome::TimeLimit {
                which: TimeLimitKind::Cpu,
            })
        }
        None => {}
    }
    if let (Some(call), Some(ExitStatus::Signal(9))) = (killed_for, status) {
        return Some(Outcome::Violation {
            detail: format!("{call}, a forbidden system call (seccomp killed the process)"),
        });
    }
    if stats.oom_kills > 0 {
        return Some(Outcome::MemoryLimit);
    }
    let cpu_exhausted = stats.cpu_time >= limits.cpu_time;
    // SIGXFSZ is the kernel's answer to a write, truncate or fallocate past RLIMIT_FSIZE.
    // Under the sandbox's seccomp filter (`killer` says which was installed) the program cannot
    // send it itself (`file_size_signal.rs`): the death is the limit, whether the refused call
    // took memory or not (`truncate -s`, `fallocate`, a `pwrite` far past the end take none).
    // Under the trusted backend's, which does not keep it, a program can raise it (`kill
    // -XFSZ $$`): then the memory charged decides, as the cpu time does for SIGXCPU. The
    // writable places are tmpfs (`/work`, `/tmp`), whose pages are charged to the job's
    // cgroup, and a volume's page cache is too as it is written: a write that reached the
    // file size limit took at least that much memory. Below it, no write did.
    let file_size_hit =
        killer != SeccompKiller::Nobody || stats.peak_memory >= limits.max_file_size;
    // The init looks for a file cut at the limit only after a failure of the program's own:
    // a non-zero exit, or a signal that is no limit's (`files_at_limit::worth_a_look`).
    let cut = |end| Outcome::FileSizeLimit { ended: Some(end) };
    match status? {
        ExitStatus::Code(code) if code != 0 && file_at_limit => {
            Some(cut(ProgramEnd::Exited { code }))
        }
        ExitStatus::Code(code) => Some(Outcome::Exited { code }),
        ExitStatus::Signal(n) => Some(match Signal(n) {
            // SIGXCPU is the kernel's RLIMIT_CPU backstop (a second above the budget), but a
            // program can also raise it itself: the accounting decides, not the signal.
            Signal::XCPU | Signal::KILL if cpu_exhausted => Outcome::TimeLimit {
                which: TimeLimitKind::Cpu,
            },
            Signal::XFSZ if known && file_size_hit => Outcome::FileSizeLimit { ended: None },
            // Where the init makes the filter's kills (or the filter kills for nothing), the program
            // raised SIGSYS itself: its own end, not a forbidden call.
            Signal::SYS if killer == SeccompKiller::Kernel && known => Outcome::Violation {
                detail: "a forbidden system call (seccomp killed the process)".to_owned(),
            },
            signal if file_at_limit => cut(ProgramEnd::Signaled { signal }),
            signal => Outcome::Signaled { signal },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stats(cpu_ms: u64, oom_kills: u64) -> CgroupStats {
        CgroupStats {
            cpu_time: Duration::from_millis(cpu_ms),
            oom_kills,
            ..CgroupStats::default()
        }
    }

    /// A job that took `peak` of memory.
    fn peaked(peak: warden_core::ByteSize) -> CgroupStats {
        CgroupStats {
            peak_memory: peak,
            ..stats(10, 0)
        }
    }

    const WAIT: SignalCertainty = SignalCertainty::WaitStatus;

    #[test]
    fn precedence() {
        let limits = Limits::default();
        let killed_by_sigkill = Some(ExitStatus::Signal(9));
        let cases = [
            (
                Some(KillReason::Output(Stream::Stdout)),
                killed_by_sigkill,
                stats(0, 1),
                Outcome::OutputLimit {
                    stream: Stream::Stdout,
                },
            ),
            (
                Some(KillReason::Wall),
                None,
                stats(0, 0),
                Outcome::TimeLimit {
                    which: TimeLimitKind::Wall,
                },
            ),
            (None, killed_by_sigkill, stats(0, 1), Outcome::MemoryLimit),
            (None, None, stats(0, 1), Outcome::MemoryLimit),
            (
                None,
                killed_by_sigkill,
                stats(6000, 0),
                Outcome::TimeLimit {
                    which: TimeLimitKind::Cpu,
                },
            ),
            (
                None,
                Some(ExitStatus::Signal(24)),
                stats(6000, 0),
                Outcome::TimeLimit {
                    which: TimeLimitKind::Cpu,
                },
            ),
            // Issue 8: a program that raises SIGXCPU itself, far below its cpu budget, gets no
            // time-limit verdict.
            (
                None,
                Some(ExitStatus::Signal(24)),
                stats(10, 0),
                Outcome::Signaled {
                    signal: Signal::XCPU,
                },
            ),
            (
                None,
                Some(ExitStatus::Signal(25)),
                peaked(limits.max_file_size),
                Outcome::FileSizeLimit { ended: None },
            ),
            (
                None,
                killed_by_sigkill,
                stats(10, 0),
                Outcome::Signaled {
                    signal: Signal::KILL,
                },
            ),
            (
                None,
                Some(ExitStatus::Signal(11)),
                stats(10, 0),
                Outcome::Signaled { signal: Signal(11) },
            ),
            (
                None,
                Some(ExitStatus::Code(3)),
                stats(10, 0),
                Outcome::Exited { code: 3 },
            ),
        ];
        for (killed, status, stats, expected) in cases {
            assert_eq!(
                decide(
                    killed,
                    None,
                    SeccompKiller::Init,
                    (status, WAIT),
                    false,
                    &stats,
                    &limits
                ),
                Some(expected.clone()),
                "{expected:?}"
            );
        }
        // SIGSYS is the kernel's seccomp kill only where the kernel makes the filter's kills;
        // where the init makes them (or there is no filter), the program raised it itself.
        assert!(matches!(
            decide(
                None,
                None,
                SeccompKiller::Kernel,
                (Some(ExitStatus::Signal(31)), WAIT),
                false,
                &stats(1, 0),
                &limits
            ),
            Some(Outcome::Violation { .. })
        ));
        for killer in [SeccompKiller::Init, SeccompKiller::Nobody] {
            assert_eq!(
                decide(
                    None,
                    None,
                    killer,
                    (Some(ExitStatus::Signal(31)), WAIT),
                    false,
                    &stats(1, 0),
                    &limits
                ),
                Some(Outcome::Signaled {
                    signal: Signal::SYS
                }),
                "{killer:?}"
            );
        }
        // Killed by the init for a forbidden call: a violation naming it, before the memory
        // and cpu accounting; after the parent's own kill.
        let forbidden = Outcome::Violation {
            detail: "kexec_load, a forbidden system call (seccomp killed the process)".to_owned(),
        };
        assert_eq!(
            decide(
                None,
                Some("kexec_load"),
                SeccompKiller::Init,
                (killed_by_sigkill, WAIT),
                false,
                &stats(6000, 1),
                &limits
            ),
            Some(forbidden)
        );
        assert_eq!(
            decide(
                Some(KillReason::Wall),
                Some("kexec_load"),
                SeccompKiller::Init,
                (killed_by_sigkill, WAIT),
                false,
                &stats(0, 0),
                &limits
            ),
            Some(Outcome::TimeLimit {
                which: TimeLimitKind::Wall
            })
        );
        assert_eq!(
            decide(
                None,
                Some("kexec_load"),
                SeccompKiller::Init,
                (Some(ExitStatus::Code(0)), WAIT),
                false,
                &stats(0, 0),
                &limits
            ),
            Some(Outcome::Exited { code: 0 }),
            "a status the kill did not cause"
        );
        assert_eq!(
            decide(
                None,
                None,
                SeccompKiller::Init,
                (None, WAIT),
                false,
                &stats(1, 0),
                &limits
            ),
            None,
            "no status, no kill: unknown"
        );
    }

    /// Regression hunt: a write past the file size limit that takes no memory (`truncate -s`,
    /// `fallocate`, a `pwrite` far past the end: the kernel refuses it before allocating) died
    /// of SIGXFSZ and was `signaled`, since only the memory peak vouched for the limit. Under
    /// a filter the program cannot send SIGXFSZ itself (`file_size_signal.rs`), so the death
    /// is the limit whatever the peak; without one (trusted), a program that raises it itself
    /// having written less than the limit is still `signaled`.
    #[test]
    fn sigxfsz_is_the_file_size_limit_under_a_filter_and_by_the_peak_without() {
        let limits = Limits::default();
        let low = peaked(warden_core::ByteSize(limits.max_file_size.bytes() - 1));
        let high = peaked(limits.max_file_size);
        let xfsz = |killer, stats: &CgroupStats| {
            decide(
                None,
                None,
                killer,
                (Some(ExitStatus::Signal(25)), WAIT),
                false,
                stats,
                &limits,
            )
        };
        for killer in [SeccompKiller::Init, SeccompKiller::Kernel] {
            for stats in [&low, &high] {
                assert_eq!(
                    xfsz(killer, stats),
                    Some(Outcome::FileSizeLimit { ended: None }),
                    "{killer:?} {stats:?}"
                );
            }
        }
        assert_eq!(
            xfsz(SeccompKiller::Nobody, &high),
            Some(Outcome::FileSizeLimit { ended: None })
        );
        assert_eq!(
            xfsz(SeccompKiller::Nobody, &low),
            Some(Outcome::Signaled {
                signal: Signal::XFSZ
            })
        );
    }

    /// A runtime's exit code of 128 + N (gVisor's) cannot tell a death by signal N from a
    /// program's `exit(128 + N)`: it raises no file-size limit and no forbidden call (a fake
    /// security event); a cpu limit only where the cgroup's accounting confirms it.
    #[test]
    fn a_signal_read_from_an_exit_code_claims_no_limit_or_violation() {
        let limits = Limits::default();
        let guessed = |n: i32, cpu_ms| {
            decide(
                None,
                None,
                SeccompKiller::Kernel,
                (Some(ExitStatus::Signal(n)), SignalCertainty::ExitCode),
                false,
                &stats(cpu_ms, 0),
                &limits,
            )
        };
        assert_eq!(
            guessed(25, 0),
            Some(Outcome::Signaled {
                signal: Signal::XFSZ
            })
        );
        assert_eq!(
            guessed(31, 0),
            Some(Outcome::Signaled {
                signal: Signal::SYS
            })
        );
        assert_eq!(
            guessed(9, 0),
            Some(Outcome::Signaled {
                signal: Signal::KILL
            })
        );
        assert_eq!(
            guessed(9, 6000),
            Some(Outcome::TimeLimit {
                which: TimeLimitKind::Cpu
            })
        );
    }

    /// Hunt lang 1: a runtime that ignores SIGXFSZ (CPython, Node, Go, the JVM) sees its write
    /// fail with EFBIG and ends by itself; the file cut at the limit the init found makes that
    /// end the file size limit, keeping the program's own. A limit's verdict stays first, and
    /// an exit 0 stays a success.
    #[test]
    fn a_failure_after_a_write_cut_at_the_limit_is_the_file_size_limit() {
        let limits = Limits::default();
        let ended = |killed, status, cpu_ms, oom| {
            decide(
                killed,
                None,
                SeccompKiller::Init,
                (Some(status), WAIT),
                true,
                &stats(cpu_ms, oom),
                &limits,
            )
        };
        assert_eq!(
            ended(None, ExitStatus::Code(1), 10, 0),
            Some(Outcome::FileSizeLimit {
                ended: Some(ProgramEnd::Exited { code: 1 })
            })
        );
        assert_eq!(
            ended(None, ExitStatus::Signal(6), 10, 0),
            Some(Outcome::FileSizeLimit {
                ended: Some(ProgramEnd::Signaled { signal: Signal(6) })
            })
        );
        assert_eq!(
            ended(None, ExitStatus::Code(0), 10, 0),
            Some(Outcome::Exited { code: 0 })
        );
        assert_eq!(
            ended(None, ExitStatus::Code(1), 10, 1),
            Some(Outcome::MemoryLimit)
        );
        assert_eq!(
            ended(Some(KillReason::Wall), ExitStatus::Signal(9), 10, 0),
            Some(Outcome::TimeLimit {
                which: TimeLimitKind::Wall
            })
        );
        assert_eq!(
            ended(None, ExitStatus::Signal(25), 10, 0),
            Some(Outcome::FileSizeLimit { ended: None })
        );
    }
}
