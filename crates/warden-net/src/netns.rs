//! Doing something inside a sandbox's network namespace from warden's process: a short-lived
//! thread `setns(2)`s into it, does the work and ends. Namespaces belong to threads, so the rest
//! of warden stays in the host's namespace; what the thread creates keeps the namespace it was
//! created in (a socket), or inherits it (a process spawned from the thread).
//!
//! Man pages: setns(2), network_namespaces(7).

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

use nix::sched::CloneFlags;

/// A failure to set up a sandbox's network namespace.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// The thread that enters the namespace could not start.
    #[error("cannot start a thread to enter the network namespace")]
    Thread(#[source] io::Error),
    /// `setns(fd, CLONE_NEWNET)` failed (not a network namespace, or no privilege).
    #[error("cannot enter the network namespace")]
    Enter(#[source] nix::Error),
    /// `lo` could not be brought up.
    #[error("cannot bring up lo in the network namespace")]
    Loopback(#[source] nix::Error),
    /// The default route via `lo` could not be added (rtnetlink).
    #[error("cannot add the default route via lo in the network namespace")]
    Route(#[source] nix::Error),
    /// A listener could not be opened.
    #[error("cannot open the {what} listener on {addr} in the network namespace")]
    Listen {
        /// Which listener.
        what: &'static str,
        /// Its address.
        addr: SocketAddr,
        /// The error of `socket`, `bind` or `listen`.
        source: io::Error,
    },
    /// A program warden runs to configure the namespace is not installed.
    #[error("{program} not found (looked in {searched:?})")]
    ProgramMissing {
        /// The program's name.
        program: &'static str,
        /// Where it was looked for.
        searched: &'static [&'static str],
    },
    /// That program could not be run.
    #[error("cannot run {program}")]
    Spawn {
        /// The program's path.
        program: PathBuf,
        /// The error of spawning or waiting for it.
        source: io::Error,
    },
    /// That program failed.
    #[error("{program} {args:?} failed ({status}): {stderr}")]
    Command {
        /// The program's path.
        program: PathBuf,
        /// Its arguments.
        args: Vec<String>,
        /// How it ended.
        status: ExitStatus,
        /// What it said.
        stderr: String,
    },
}

/// Runs `work` on a thread inside the network namespace `netns` and returns its result.
pub(crate) fn run_in<T: Send>(
    netns: &File,
    work: impl FnOnce() -> Result<T, NetnsError> + Send,
) -> Result<T, NetnsError> {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("warden-netns".into())
            .spawn_scoped(scope, || {
                nix::sched::setns(netns, CloneFlags::CLONE_NEWNET).map_err(NetnsError::Enter)?;
                work()
            })
            .map_err(NetnsError::Thread)?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
