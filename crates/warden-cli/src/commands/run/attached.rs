//! A local `warden run` attached to its caller while the program runs: the program's output
//! written as it is read (without `--json`), and the signals the CLI gets (a terminal's Ctrl-C,
//! a harness's SIGTERM, a closed terminal's SIGHUP) passed on to the program, which may handle
//! them, instead of killing the CLI and losing the run.
//!
//! The CLI stays single-threaded (its sandbox helper is forked, not exec'd: ARCHITECTURE.md
//! invariant 8), so nothing here runs on a thread of its own: the signals are blocked and read
//! from a signalfd (`passed_on`) that the job's watch polls with the job's pipes
//! (`OutputSink::signal_source`), and the output is written only as far as the caller's
//! stdout and stderr take it without waiting; a reader that stalls gets the rest at the end,
//! so that it never holds up the watch, which enforces the time limits. Man pages:
//! poll(2), pipe(7) (`PIPE_BUF`).

use std::io::Write;

use anyhow::Context;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use warden_core::Stream;
use warden_sandbox::OutputSink;

use crate::commands::passed_on::PassedOn;

/// The most written in one call once poll said the descriptor takes more: a pipe then takes
/// at least `PIPE_BUF` bytes without blocking.
const WRITE_AT_ONCE: usize = 4096;

/// The run's side of the caller: a sink for the engine's interactive run.
pub(super) struct Attached {
    /// The signals passed on; `None` when they could not be taken (the CLI's default
    /// dispositions then stay).
    signals: Option<PassedOn>,
    /// The output as shown; `None` with `--json`, whose object carries it.
    shown: Option<Shown>,
}

/// The output written to the caller's stdout and stderr as it is read; shared between the
/// sink, which the engine owns while it runs, and the CLI, which writes the rest at the end.
#[derive(Clone)]
pub(super) struct Shown(Arc<Mutex<Written>>);

struct Written {
    /// What the caller's stdout and stderr have not taken yet.
    pending: [Vec<u8>; 2],
    /// The caller's stdout was closed by its reader.
    broken: bool,
    /// Why the caller's stdout took no more (a full disk, a closed descriptor): not a reader
    /// that left, so the program runs on, its stdout dropped, and warden fails at the end.
    failed: Option<std::io::Error>,
    stdout: std::io::Stdout,
    stderr: std::io::Stderr,
}

impl Attached {
    /// Takes the signals from now on ([`PassedOn::take`]: they wait for the watch), and, if
    /// `show`, writes the output as it is read (see [`Shown::finish`]).
    pub(super) fn new(show: bool) -> (Self, Option<Shown>) {
        let shown = show.then(|| {
            Shown(Arc::new(Mutex::new(Written {
                pending: [Vec::new(), Vec::new()],
                broken: false,
                failed: None,
                stdout: std::io::stdout(),
                stderr: std::io::stderr(),
            })))
        });
        let attached = Self {
            signals: PassedOn::take(),
            shown: shown.clone(),
        };
        (attached, shown)
    }
}

impl Shown {
    /// Writes what the caller's stdout and stderr have not taken yet, waiting for them, once
    /// the run ended; says whether stdout's reader left (the shell's 141 then). An error when
    /// stdout failed otherwise, during the run or now (warden's 125, as with `--json`).
    pub(super) fn finish(&self) -> anyhow::Result<bool> {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if written.broken {
            return Ok(true);
        }
        let [stdout, stderr] = std::mem::take(&mut written.pending);
        if let Some(e) = written.failed.take() {
            written.stderr.lock().write_all(&stderr)?;
            return Err(e).context("writing the program's output to stdout");
        }
        let mut out = written.stdout.lock();
        out.write_all(&stdout)
            .and_then(|()| out.flush())
            .context("writing the program's output to stdout")?;
        written.stderr.lock().write_all(&stderr)?;
        Ok(false)
    }
}

impl Written {
    /// Writes what `stream`'s descriptor takes without waiting; false when its reader left.
    fn drain(&mut self, stream: Stream) -> bool {
        let (pending, fd) = match stream {
            Stream::Stdout => (&mut self.pending[0], self.stdout.as_fd()),
            Stream::Stderr => (&mut self.pending[1], self.stderr.as_fd()),
        };
        while !pending.is_empty() {
            let mut ready = [PollFd::new(fd, PollFlags::POLLOUT)];
            match poll(&mut ready, PollTimeout::ZERO) {
                Ok(n) if n > 0 => {}
                _ => return true,
            }
            let n = pending.len().min(WRITE_AT_ONCE);
            match nix::unistd::write(fd, &pending[..n]) {
                Ok(written) => {
                    pending.drain(..written);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => return true,
                Err(Errno::EPIPE) if stream == Stream::Stdout => {
                    // The reader left (SIGPIPE is ignored in warden).
                    pending.clear();
                    return false;
                }
                Err(e) => {
                    // A descriptor that takes nothing more (ENOSPC, EBADF, EIO; stderr's
                    // reader gone): the stream's output is dropped from here on; stdout's
                    // failure is warden's, said at the end.
                    pending.clear();
                    if stream == Stream::Stdout {
                        self.failed.get_or_insert(e.into());
                    }
                    return true;
                }
            }
        }
        true
    }
}

impl Attached {
    /// Whether writing `stream`'s pending output now would stop this process
    /// ([`PassedOn::stops_writing_to`]).
    fn stops_writing(&self, written: &Written, stream: Stream) -> bool {
        let fd = match stream {
            Stream::Stdout => written.stdout.as_fd(),
            Stream::Stderr => written.stderr.as_fd(),
        };
        let pending = &written.pending[usize::from(stream == Stream::Stderr)];
        !pending.is_empty()
            && self
                .signals
                .as_ref()
                .is_some_and(|signals| signals.stops_writing_to(fd))
    }
}

impl OutputSink for Attached {
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        let Some(shown) = &self.shown else {
            return true;
        };
        let mut written = shown.0.lock().unwrap_or_else(PoisonError::into_inner);
        if written.broken || (stream == Stream::Stdout && written.failed.is_some()) {
            return true;
        }
        written.pending[usize::from(stream == Stream::Stderr)].extend_from_slice(bytes);
        if self.stops_writing(&written, stream) {
            // The write would stop this process alone (a background job at a `tostop`
            // terminal): the watch stops the program first, and the output goes on `fg`.
            PassedOn::stop_for_output();
            return true;
        }
        if !written.drain(stream) {
            // The program ends as a pipeline's writer would when its reader left.
            written.broken = true;
            return false;
        }
        true
    }

    fn signal_source(&self) -> Option<BorrowedFd<'_>> {
        self.signals.as_ref().map(PassedOn::fd)
    }

    fn suspend(&mut self, signal: i32) {
        PassedOn::suspend(signal);
        // What waited for the terminal goes now, or stops the caller again (still in the
        // background); a reader that left shows at the next chunk.
        let Some(shown) = &self.shown else {
            return;
        };
        let mut written = shown.0.lock().unwrap_or_else(PoisonError::into_inner);
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.stops_writing(&written, stream) {
                PassedOn::stop_for_output();
                return;
            }
            written.drain(stream);
        }
    }

    fn signals(&mut self) -> Vec<i32> {
        self.signals.as_mut().map_or_else(Vec::new, |signals| {
            signals.received().into_iter().map(|s| s as i32).collect()
        })
    }
}
