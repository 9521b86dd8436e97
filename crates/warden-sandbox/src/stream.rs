//! A job's output handed over while it runs ([`OutputSink`]), for callers that must see it
//! live: a relay to a long-lived sandboxed server, or a run streamed to a client as events.
//! Runs in the parent, on the thread that runs the job ([`crate::LiveSandbox::run_streaming`]),
//! inside the watch's poll loop (`watch.rs`). The sink may also bring the caller's signals for
//! the program ([`OutputSink::signal_source`]): a terminal's Ctrl-C reaching `warden run`.

use std::os::fd::BorrowedFd;

use warden_core::{Stream, UsageSample};

/// Receives a job's output as the parent reads it from the job's pipes, before the job ends.
///
/// Each chunk is what one read returned, in the order it was read; the chunks of one stream
/// concatenate to that stream's output (the two streams interleave only as the reads did).
/// The output limit holds as for a run without a sink: a stream's bytes past
/// `Limits::max_output` are neither captured nor sent, and the job ends with
/// `Outcome::OutputLimit` (or, with `Job::truncate_output`, runs on). The run's
/// `SandboxRun::stdout`/`stderr` still hold the same bytes.
///
/// The sink is called from the watch's loop, which also enforces the job's time limits: a
/// sink that blocks delays them, so it should hand the bytes on (a channel, a buffer) rather
/// than wait on a slow consumer.
///
/// Returning `false` ends the job, as a limit would but with no verdict of its own: it is
/// killed (the init kills every process of the job with SIGKILL), and the run returns `Ok`
/// with the program's status, normally `Outcome::Signaled { signal: SIGKILL }` (or the
/// program's own exit, if it had already exited). The sink is not called again for this
/// job; what is read until the job's pipes close is still captured in the `SandboxRun`. A
/// sandbox with warden's init (native, trusted) lives on for the next job; a gVisor
/// sandbox has no way to end only the job, so it ends with it (like a limit there).
pub trait OutputSink: Send {
    /// A chunk read from `stream`, in order; `false` ends the job (see the trait's docs).
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool;

    /// A reading of the job's cgroup, as it is taken (live resource monitoring); the same
    /// readings end up in `SandboxRun::samples`. Nothing by default.
    fn sample(&mut self, _sample: &UsageSample) {}

    /// A descriptor that polls readable when the caller has signals for the job's program (a
    /// signalfd of the signals a CLI blocked, a pipe): the watch polls it with the job's own
    /// while the program may still run, and then takes them ([`OutputSink::signals`]). None
    /// by default. Signals the caller has before the program starts are delivered as it
    /// starts; those it has after the job ended stay with it.
    fn signal_source(&self) -> Option<BorrowedFd<'_>> {
        None
    }

    /// The signals (numbers) the caller has for the program now, read once
    /// [`OutputSink::signal_source`] polls readable; each is delivered as
    /// [`crate::CancelHandle::signal`] delivers one: forwarded to the program by the init
    /// (SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2), any other ending the job as a
    /// kill; but SIGTSTP, and SIGTTOU (the caller is to write the output to its terminal in
    /// the background under `tostop`), stop the sandbox's processes with the caller
    /// ([`OutputSink::suspend`]).
    fn signals(&mut self) -> Vec<i32> {
        Vec::new()
    }

    /// The caller stops until it is continued, for `signal`: SIGTSTP or SIGTTOU (among its
    /// [`OutputSink::signals`]: a terminal's Ctrl-Z, a write in the background), or SIGTTIN (the terminal relayed as the
    /// program's input, `Stdin::Relay`, is to be read while the caller is not its foreground
    /// job: the read would have stopped the caller alone). Called after the sandbox's
    /// processes were asked to stop, and returning when the caller goes on, whereupon they
    /// continue; the time in between does not count against the wall-clock limit. Nothing by
    /// default (the program then stops and continues at once).
    fn suspend(&mut self, _signal: i32) {}
}

/// A closure is a sink: `|stream, bytes| { ...; true }`.
impl<F> OutputSink for F
where
    F: FnMut(Stream, &[u8]) -> bool + Send,
{
    fn chunk(&mut self, stream: Stream, bytes: &[u8]) -> bool {
        self(stream, bytes)
    }
}

/// The order in which a job's two streams were read: runs of bytes of one stream, so that
/// the captured stdout and stderr can be put back together as they were read
/// ([`OutputOrder::interleave`]: Piston's `output`). At most [`OutputOrder::MAX_RUNS`] runs
/// are recorded (a program that alternates its streams a byte at a time would otherwise make
/// this as large as its output); what was read past them follows the recorded runs, stdout's
/// rest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputOrder {
    runs: Vec<(Stream, u32)>,
    /// More runs were read than recorded.
    overflowed: bool,
}

impl OutputOrder {
    /// The most runs recorded.
    pub const MAX_RUNS: usize = 4096;

    /// `bytes` more were read from `stream`.
    pub(crate) fn push(&mut self, stream: Stream, bytes: usize) {
        if bytes == 0 || self.overflowed {
            return;
        }
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let room = self.runs.len() < Self::MAX_RUNS;
        match self.runs.last_mut() {
            Some((last, n)) if *last == stream => *n = n.saturating_add(bytes),
            _ if room => self.runs.push((stream, bytes)),
            _ => self.overflowed = true,
        }
    }

    /// `stdout` and `stderr` (what was captured of each) in the order they were read.
    pub fn interleave(&self, stdout: &[u8], stderr: &[u8]) -> Vec<u8> {
        let mut merged = Vec::with_capacity(stdout.len() + stderr.len());
        let (mut out, mut err) = (stdout, stderr);
        for &(stream, n) in &self.runs {
            let from = match stream {
                Stream::Stdout => &mut out,
                Stream::Stderr => &mut err,
            };
            let (run, rest) = from.split_at((n as usize).min(from.len()));
            merged.extend_from_slice(run);
            *from = rest;
        }
        merged.extend_from_slice(out);
        merged.extend_from_slice(err);
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streams_are_put_back_in_the_order_they_were_read() {
        let mut order = OutputOrder::default();
        for (stream, n) in [
            (Stream::Stdout, 2),
            (Stream::Stdout, 1),
            (Stream::Stderr, 4),
            (Stream::Stdout, 0),
            (Stream::Stdout, 2),
        ] {
            order.push(stream, n);
        }
        assert_eq!(order.interleave(b"abcde", b"ERR!"), b"abcERR!de");
        // Nothing recorded (another backend, a cached stage): stdout, then stderr.
        assert_eq!(OutputOrder::default().interleave(b"a", b"b"), b"ab");
    }

    #[test]
    fn past_the_recorded_runs_the_rest_follows_stdout_first() {
        let mut order = OutputOrder::default();
        for i in 0..OutputOrder::MAX_RUNS + 10 {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            order.push(stream, 1);
        }
        let half = OutputOrder::MAX_RUNS / 2;
        let (out, err) = (vec![b'o'; half + 5], vec![b'e'; half + 5]);
        let merged = order.interleave(&out, &err);
        assert_eq!(merged.len(), out.len() + err.len());
        assert_eq!(&merged[..4], b"oeoe");
        assert_eq!(&merged[OutputOrder::MAX_RUNS..], b"oooooeeeee");
    }
}
