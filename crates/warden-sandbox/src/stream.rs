//! A job's output handed over while it runs ([`OutputSink`]), for callers that must see it
//! live: a relay to a long-lived sandboxed server, or a run streamed to a client as events.
//! Runs in the parent, on the thread that runs the job ([`crate::LiveSandbox::run_streaming`]),
//! inside the watch's poll loop (`watch.rs`).

use warden_core::{Stream, UsageSample};

/// Receives a job's output as the parent reads it from the job's pipes, before the job ends.
///
/// Each chunk is what one read returned, in the order it was read; the chunks of one stream
/// concatenate to that stream's output (the two streams interleave only as the reads did).
/// The output limit holds as for a run without a sink: a stream's bytes past
/// `Limits::max_output` are neither captured nor sent, and the job ends with
/// `Outcome::OutputLimit`. The run's `SandboxRun::stdout`/`stderr` still hold the same bytes.
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
