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
