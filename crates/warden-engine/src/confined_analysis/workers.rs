//! A multi-threaded caller's analysis processes: long-lived `warden __analysis-worker`s
//! (`worker.rs`), exec'd rather than forked (a fork of a threaded process may inherit a lock
//! another thread held). Each request takes an idle worker or starts one; a worker that
//! passes the deadline or dies is killed and reaped, and the next request starts another.
//! How many run at once is bounded by the callers' admission (docs/server.md); at most
//! [`MAX_IDLE`] wait between requests.
//!
//! Runs in the caller (the server, `warden batch`, `warden mcp`).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use warden_analysis::{RequestAnalysis, RequestFile};

use super::wire;

/// How many idle workers are kept.
const MAX_IDLE: usize = 8;

/// The workers of one engine.
#[derive(Debug)]
pub(crate) struct Workers {
    binary: PathBuf,
    idle: Mutex<Vec<Worker>>,
}

/// One worker process and its pipes.
#[derive(Debug)]
struct Worker {
    process: Child,
    requests: ChildStdin,
    answers: ChildStdout,
}

impl Workers {
    /// Workers exec'd from `binary` (the warden binary), none started yet.
    pub(crate) fn new(binary: PathBuf) -> Workers {
        Workers {
            binary,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The analysis of `files` by a worker, or why it was stopped.
    pub(crate) fn analyze(&self, files: &[RequestFile<'_>]) -> Result<RequestAnalysis, String> {
        let request = wire::encode_request(files)
            .ok_or_else(|| "the analysis request is too large".to_owned())?;
        let idle = self.lock().pop();
        let mut worker = match idle {
            Some(worker) => worker,
            None => self.start()?,
        };
        // An idle worker may have died meanwhile (killed from outside): then one fresh one
        // gets the request.
        if worker.requests.write_all(&request).is_err() {
            worker.stop();
            worker = self.start()?;
            if let Err(e) = worker.requests.write_all(&request) {
                let status = worker.stop();
                return Err(format!(
                    "the analysis worker took no request ({e}; {status})"
                ));
            }
        }
        let deadline = Instant::now() + super::WALL_LIMIT;
        match wire::read_answer(worker.answers.as_fd(), deadline) {
            Ok(answer) => {
                if worker.spent() {
                    worker.stop();
                    return Ok(answer);
                }
                let mut idle = self.lock();
                if idle.len() < MAX_IDLE {
                    idle.push(worker);
                }
                Ok(answer)
            }
            Err(why) => {
                let status = worker.stop();
                Err(super::stopped_because(&why, &status))
            }
        }
    }

    fn start(&self) -> Result<Worker, String> {
        let mut process = Command::new(&self.binary)
            .arg(super::WORKER_ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // Its own process group: a terminal's ^C reaches it only through its caller.
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "the analysis worker {} could not start: {e}",
                    self.binary.display()
                )
            })?;
        match (process.stdin.take(), process.stdout.take()) {
            (Some(requests), Some(answers)) => Ok(Worker {
                process,
                requests,
                answers,
            }),
            _ => {
                let _ = process.kill();
                let _ = process.wait();
                Err("the analysis worker has no pipes".to_owned())
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Worker {
    /// Whether the worker has kept mapped so much of what it may map (its limit is set once,
    /// from its size at start; an allocator keeps what earlier analyses freed) that a later
    /// analysis would have less than three quarters of [`super::MEMORY_LIMIT`]: one caller's
    /// large inputs then shrank every later caller's allowance, until an ordinary analysis
    /// was stopped and graded as a timeout. A spent worker is ended after its answer, and the
    /// next request starts a fresh one. Unreadable, it is not spent.
    fn spent(&self) -> bool {
        let pid = self.process.id().to_string();
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
        match (address_space_limit(&limits), super::mapped_size(&pid)) {
            (Some(limit), Ok(mapped)) => limit.saturating_sub(mapped) < super::MEMORY_LIMIT / 4 * 3,
            _ => false,
        }
    }

    /// Kills and reaps the worker; how it ended.
    fn stop(&mut self) -> String {
        let _ = self.process.kill();
        match self.process.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("not reaped: {e}"),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Idle workers of an engine that goes away; `stop` may have reaped it already, and a
        // second kill and wait of a reaped child do nothing.
        if matches!(self.process.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// The soft `Max address space` of a `/proc/PID/limits` text, in bytes; `None` when unlimited
/// or absent.
fn address_space_limit(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt xrun (not proven there): a long-lived worker grew from 33 to 124 MB over a few
    /// 1 MiB analyses and kept it, so that each later analysis had that much less of its
    /// limit. The limit is read as the kernel shows it.
    #[test]
    fn the_address_space_limit_is_read_from_the_kernels_table() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              4                    unlimited            seconds   \n\
                      Max address space         572653568            572653568            bytes     \n";
        assert_eq!(address_space_limit(limits), Some(572_653_568));
        let unlimited =
            "Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(address_space_limit(unlimited), None);
        assert_eq!(address_space_limit(""), None);
        // This process's own table has the line.
        let own = std::fs::read_to_string("/proc/self/limits").expect("limits");
        assert!(own.contains("Max address space"), "{own}");
    }

    /// A worker with less than three quarters of its allowance left is spent; one with all of
    /// it is not.
    #[test]
    fn a_worker_with_a_quarter_of_its_allowance_gone_is_spent() {
        let spent = |limit: u64| {
            let mut process = Command::new("/bin/sh")
                .args(["-c", "ulimit -v $1; exec sleep 30", "sh"])
                .arg((limit >> 10).to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("sh runs");
            let limits = format!("/proc/{}/limits", process.id());
            // Until the shell has set the limit.
            let deadline = Instant::now() + std::time::Duration::from_secs(10);
            while address_space_limit(&std::fs::read_to_string(&limits).unwrap_or_default())
                .is_none()
            {
                assert!(Instant::now() < deadline, "the limit was never set");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let (requests, answers) = (process.stdin.take(), process.stdout.take());
            let mut worker = Worker {
                process,
                requests: requests.expect("stdin"),
                answers: answers.expect("stdout"),
            };
            let spent = worker.spent();
            worker.stop();
            spent
        };
        let allowance = super::super::MEMORY_LIMIT;
        assert!(!spent(allowance + (64 << 20)));
        assert!(spent(allowance / 2));
    }
}
