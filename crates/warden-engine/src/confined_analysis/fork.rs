//! A single-threaded caller's analysis (the CLI's): a forked child analyses under its bounds,
//! writes the answer into a pipe and exits; the caller kills it past the deadline. A fork
//! costs far less than exec'ing a worker (issue 14: a one-shot `warden run` pays for every
//! millisecond), and the child inherits whatever rules the caller has compiled.
//!
//! Runs in the caller, and (`child`) in the forked child.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use warden_analysis::{Analyzer, RequestAnalysis, RequestFile};
use warden_sys::process::{fork_single_threaded, ForkResult};

use super::wire;

/// The analysis of `files` in a forked child, or why it was stopped; `None` when this
/// process cannot fork safely now (it has other threads) or at all, for the caller to ask a
/// worker instead.
pub(super) fn analyze(
    analyzer: &Analyzer,
    files: &[RequestFile<'_>],
) -> Option<Result<RequestAnalysis, String>> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    let deadline = Instant::now() + super::WALL_LIMIT;
    let child = match fork_single_threaded() {
        Ok(ForkResult::Child) => {
            drop(read);
            child(analyzer, files, write)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => return None,
    };
    drop(write);
    let answer = wire::read_answer(read.as_fd(), deadline);
    if answer.is_err() {
        // Harmless if it already ended: it is not reaped yet, so the pid is still its.
        let _ = kill(child, Signal::SIGKILL);
    }
    let status = reap(child);
    Some(answer.map_err(|why| super::stopped_because(&why, &status)))
}

/// Waits for the child; its status, described.
fn reap(child: Pid) -> String {
    loop {
        match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => return format!("exit status {code}"),
            Ok(WaitStatus::Signaled(_, signal, _)) => return format!("signal {signal}"),
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return format!("not reaped: {e}"),
        }
    }
}

/// The child: bound itself, analyse, answer, exit. Its stderr goes nowhere, so that an abort
/// at the memory limit does not print into the caller's terminal.
fn child(analyzer: &Analyzer, files: &[RequestFile<'_>], answer: OwnedFd) -> ! {
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stderr(null);
    }
    if super::limit_memory().is_err() || super::limit_cpu(true).is_err() {
        warden_sys::process::exit_immediately(1);
    }
    let analysis = analyzer.analyze_request(files);
    let mut out = std::fs::File::from(answer);
    let code = i32::from(wire::write_answer(&mut out, analysis).is_err());
    warden_sys::process::exit_immediately(code)
}

#[cfg(test)]
mod tests {
    /// Forking needs a single-threaded process, which a test is not (its harness's threads):
    /// the caller then asks a worker instead.
    #[test]
    fn a_multi_threaded_caller_does_not_fork() {
        let _other = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_secs(1)));
        let analyzer = warden_analysis::Analyzer::builtin().expect("rules");
        assert!(super::analyze(&analyzer, &[]).is_none());
    }
}
