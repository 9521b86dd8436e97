//! The static analysis of untrusted code, run where the kernel can bound it
//! (docs/analysis.md#bounds). The analyzer's own budget (`warden_analysis`, cpu time checked
//! at tree-sitter's progress calls) cannot stop a parse that spends seconds and gigabytes
//! between two calls: tree-sitter's end-of-input step on a few kilobytes of `a=|` allocates
//! 4 GB in 25 s, a grammar's scanner may loop quadratically inside one lex, and tree-sitter
//! aborts the process when an allocation fails, so no limit inside warden's own process can
//! help. The parse and the rules therefore run in another process, under an address-space
//! limit and a cpu limit, which the caller kills past a wall-clock deadline. A process that
//! ends without its answer makes the analysis stopped, graded as a parse that timed out.
//!
//! Two ways to that process, chosen at each analysis:
//! - a single-threaded caller (the CLI) forks a child that analyses and exits (`fork.rs`):
//!   no exec, and the child inherits the rules already compiled;
//! - any other (the server, `warden batch`, MCP) never forks: it asks one of its long-lived,
//!   single-threaded `warden __analysis-worker` processes (`workers.rs` in the caller,
//!   `worker.rs` in the worker), which keep their compiled rules warm and are killed and
//!   replaced when one passes its bounds.
//!
//! Both send the answer back as one frame (`wire.rs`).

mod fork;
mod wire;
pub(crate) mod worker;
mod workers;

use std::path::PathBuf;
use std::time::Duration;

use warden_analysis::{Analyzer, RequestAnalysis, RequestFile};

/// The argument that makes the warden binary an analysis worker.
pub const WORKER_ARG: &str = "__analysis-worker";

/// How much address space an analysis may add to its process. Ordinary programs need a few
/// megabytes; 1 MiB of hostile but bounded input (the largest accepted) under 200 MB.
pub(crate) const MEMORY_LIMIT: u64 = 512 << 20;

/// How long an analysis may take on the wall clock before its process is killed. The
/// analyzer's own budget is 200 ms of cpu time; this is the backstop for what that budget
/// cannot interrupt, generous so that a loaded machine does not stop an ordinary analysis.
pub(crate) const WALL_LIMIT: Duration = Duration::from_secs(3);

/// The cpu seconds a process that analyses may use for one request (`RLIMIT_CPU`, whole
/// seconds): it ends even when its caller died and no longer kills it.
const CPU_SECONDS: u64 = WALL_LIMIT.as_secs() + 1;

/// Where the engine analyses untrusted code.
#[derive(Debug)]
pub(crate) enum Confinement {
    /// In the caller's own process, unbounded: for a library user or a test without a warden
    /// binary to run as the worker.
    InProcess,
    /// In another process, bounded (the module's doc).
    Process {
        /// Fork a child when the caller is single-threaded at the time.
        fork: bool,
        /// The long-lived workers, for a multi-threaded caller.
        workers: workers::Workers,
    },
}

impl Confinement {
    /// Analyses in another process when `confine`, forking when `fork` and the caller is
    /// single-threaded, else asking a worker exec'd from `binary`.
    pub(crate) fn new(confine: bool, fork: bool, binary: PathBuf) -> Confinement {
        if confine {
            Confinement::Process {
                fork,
                workers: workers::Workers::new(binary),
            }
        } else {
            Confinement::InProcess
        }
    }

    /// The analyses of `files` (one budget for them all), or why the analysis was stopped.
    pub(crate) fn analyze(
        &self,
        analyzer: &Analyzer,
        files: &[RequestFile<'_>],
    ) -> Result<RequestAnalysis, String> {
        match self {
            Confinement::InProcess => Ok(analyzer.analyze_request(files)),
            Confinement::Process { fork, workers } => {
                if *fork {
                    if let Some(answer) = fork::analyze(analyzer, files) {
                        return answer;
                    }
                }
                workers.analyze(files)
            }
        }
    }
}

/// Why an analysis process gave no answer, for the program's `parse_error`; `status` is how
/// the process ended.
fn stopped_because(why: &wire::Unanswered, status: &str) -> String {
    match why {
        wire::Unanswered::TimedOut => {
            format!("the analysis took longer than {WALL_LIMIT:?} and was stopped")
        }
        wire::Unanswered::Ended => format!(
            "the analysis was stopped ({status}) past its limit of {} MiB of memory or of cpu \
             time",
            MEMORY_LIMIT >> 20
        ),
        wire::Unanswered::Malformed(why) => format!("the analysis gave no usable answer: {why}"),
    }
}

/// Bounds the calling process's address space, which is about to analyse: it may grow by
/// [`MEMORY_LIMIT`] from what it maps now. Only lowers (the hard limit too: nothing in this
/// process needs more later).
pub(crate) fn limit_memory() -> std::io::Result<()> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let mapped = mapped_size("self")?;
    // The operator's own limit (`ulimit -v`, a soft one below its hard) stays the lower.
    let (soft, hard) = getrlimit(Resource::RLIMIT_AS)?;
    let limit = mapped.saturating_add(MEMORY_LIMIT).min(soft).min(hard);
    setrlimit(Resource::RLIMIT_AS, limit, limit)?;
    Ok(())
}

/// The address space of process `pid` (`self`, or a number), in bytes: what `RLIMIT_AS`
/// counts.
pub(crate) fn mapped_size(pid: &str) -> std::io::Result<u64> {
    // One small read: statm's first field is the size mapped, in pages.
    let mut statm = [0u8; 128];
    let path = format!("/proc/{pid}/statm");
    let read = std::io::Read::read(&mut std::fs::File::open(path)?, &mut statm)?;
    Ok(std::str::from_utf8(&statm[..read])
        .ok()
        .and_then(|text| text.split_whitespace().next())
        .and_then(|pages| pages.parse::<u64>().ok())
        .ok_or_else(|| std::io::Error::other("statm has no size"))?
        .saturating_mul(warden_sys::process::page_size()))
}

/// Bounds the calling process's cpu time, which is about to analyse: [`CPU_SECONDS`] more
/// than it has used, then `SIGXCPU` (which ends it). With `last`, the hard limit follows one
/// second later (`SIGKILL`, should `SIGXCPU` be blocked); a worker keeps its hard limit, to
/// move the soft one before each request.
pub(crate) fn limit_cpu(last: bool) -> std::io::Result<()> {
    use nix::sys::resource::{getrlimit, getrusage, setrlimit, Resource, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF)?;
    let used = u64::try_from(usage.user_time().tv_sec() + usage.system_time().tv_sec())
        .unwrap_or_default();
    let (soft, hard) = getrlimit(Resource::RLIMIT_CPU)?;
    // The soft limit this process started with (the operator's `ulimit -t`) stays the lower:
    // a worker moves its own soft limit before each request, so it is kept from the first.
    static STARTED_WITH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let operators = *STARTED_WITH.get_or_init(|| soft);
    let soft = used.saturating_add(CPU_SECONDS).min(operators).min(hard);
    let hard = if last {
        soft.saturating_add(1).min(hard)
    } else {
        hard
    };
    setrlimit(Resource::RLIMIT_CPU, soft, hard)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_analyses_each_file() {
        let analyzer = Analyzer::builtin().expect("rules");
        let files = [RequestFile {
            language: "python",
            code: b"import os\nos.system('ls')\n",
            maybe_data: false,
            named: false,
            among_others: None,
        }];
        let answer = Confinement::InProcess
            .analyze(&analyzer, &files)
            .expect("analysed");
        assert_eq!(answer.files.len(), 1);
    }
}
