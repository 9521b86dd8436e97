//! A local `warden run` attached to its caller while the program runs: the program's output
//! written as it is read (without `--json`), and the signals the CLI gets (a terminal's Ctrl-C,
//! a harness's SIGTERM, a closed terminal's SIGHUP) passed on to the program, which may handle
//! them, instead of killing the CLI and losing the run.
//!
//! The CLI stays single-threaded (its sandbox helper is forked, not exec'd: ARCHITECTURE.md
//! invariant 8), so nothing here runs on a thread of its own: the signals are blocked and read
//! from a signalfd that the job's watch polls with the job's pipes
//! (`OutputSink::signal_source`), and the output is written only as far as the caller's
//! stdout and stderr take it without waiting; a reader that stalls gets the rest at the end,
//! so that it never holds up the watch, which enforces the time limits. Man pages:
//! signalfd(2), sigprocmask(2), poll(2), pipe(7) (`PIPE_BUF`).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use warden_core::Stream;
use warden_sandbox::OutputSink;

/// The signals passed on to the program: those a terminal or a supervisor sends to end or
/// interrupt a command. The sandbox's init forwards each of them to the program.
const PASSED_ON: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// After this many signals, the program is killed instead: a program that handles or ignores
/// Ctrl-C still ends when the user insists (its run reports the kill).
const KILL_AFTER: u32 = 3;

/// The most written in one call once poll said the descriptor takes more: a pipe then takes
/// at least `PIPE_BUF` bytes without blocking.
const WRITE_AT_ONCE: usize = 4096;

/// The run's side of the caller: a sink for the engine's interactive run.
pub(super) struct Attached {
    /// The signals blocked and read here; `None` when they could not be taken (the CLI's
    /// default dispositions then stay).
    signals: Option<SignalFd>,
    received: u32,
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
    stdout: std::io::Stdout,
    stderr: std::io::Stderr,
}

impl Attached {
    /// Takes the signals from now on (blocked, so that they wait for the watch), and, if
    /// `show`, writes the output as it is read (see [`Shown::finish`]). Signals the CLI was
    /// started with ignored stay ignored: their sender meant the command to go on (a job
    /// started with `&` by a shell without job control).
    pub(super) fn new(show: bool) -> (Self, Option<Shown>) {
        let shown = show.then(|| {
            Shown(Arc::new(Mutex::new(Written {
                pending: [Vec::new(), Vec::new()],
                broken: false,
                stdout: std::io::stdout(),
                stderr: std::io::stderr(),
            })))
        });
        let attached = Self {
            signals: take_signals(),
            received: 0,
            shown: shown.clone(),
        };
        (attached, shown)
    }
}

impl Shown {
    /// Writes what the caller's stdout and stderr have not taken yet, waiting for them, once
    /// the run ended; says whether stdout's reader left (the shell's 141 then).
    pub(super) fn finish(&self) -> anyhow::Result<bool> {
        let mut written = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if written.broken {
            return Ok(true);
        }
        let [stdout, stderr] = std::mem::take(&mut written.pending);
        written.stdout.lock().write_all(&stdout)?;
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
                Err(_) => {
                    // EPIPE (SIGPIPE is ignored in warden), or a descriptor that takes nothing
                    // more: the stream's output is dropped from here on.
                    pending.clear();
                    return stream == Stream::Stderr;
                }
            }
        }
        true
    }
}

impl OutputSink for Attached {
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        let Some(shown) = &self.shown else {
            return true;
        };
        let mut written = shown.0.lock().unwrap_or_else(PoisonError::into_inner);
        if written.broken {
            return true;
        }
        written.pending[usize::from(stream == Stream::Stderr)].extend_from_slice(bytes);
        if !written.drain(stream) {
            // The program ends as a pipeline's writer would when its reader left.
            written.broken = true;
            return false;
        }
        true
    }

    fn signal_source(&self) -> Option<BorrowedFd<'_>> {
        self.signals.as_ref().map(AsFd::as_fd)
    }

    fn signals(&mut self) -> Vec<i32> {
        let Some(fd) = self.signals.as_mut() else {
            return Vec::new();
        };
        let mut signals = Vec::new();
        while let Ok(Some(info)) = fd.read_signal() {
            self.received += 1;
            if self.received >= KILL_AFTER {
                if self.received == KILL_AFTER {
                    eprintln!("warden: signalled {KILL_AFTER} times: killing the program");
                }
                signals.push(Signal::SIGKILL as i32);
            } else {
                signals.push(i32::try_from(info.ssi_signo).unwrap_or(0));
            }
        }
        signals
    }
}

/// Blocks [`PASSED_ON`] (but those ignored) and opens a signalfd for them.
fn take_signals() -> Option<SignalFd> {
    let mut taken = SigSet::empty();
    let mut any = false;
    for signal in PASSED_ON {
        if warden_sys::signals::is_ignored(signal as i32) == Ok(false) {
            taken.add(signal);
            any = true;
        }
    }
    if !any {
        return None;
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&taken), None).ok()?;
    match SignalFd::with_flags(&taken, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC) {
        Ok(fd) => Some(fd),
        Err(_) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&taken), None);
            None
        }
    }
}
