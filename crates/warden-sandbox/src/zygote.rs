//! The zygote: a single-threaded process that forks sandbox helpers for a multi-threaded
//! parent (the server). Forking a multi-threaded process is unsound (a child may inherit a lock
//! another thread held, ARCHITECTURE.md invariant 8), and exec'ing the 19 MB binary for every
//! helper costs about 2 ms; the zygote is exec'd once, and forks each helper without exec.
//!
//! Two sides: [`Zygote`] runs in the parent (it starts the zygote and asks it for helpers,
//! one request at a time under a lock); [`zygote_main`] runs in the zygote. One request on the
//! socket: the helper's descriptors attached (`SCM_RIGHTS`: report, lifeline, and the init's end
//! of the control channel when there is one) to `u64 length (LE) | JSON of the HelperRequest`.
//! The answer: the helper's pid as 4 bytes (LE) with a pidfd of it attached, opened before
//! the zygote can reap it, so the parent's handle never refers to a recycled pid. The zygote
//! reaps its children itself (the parent cannot: they are not its children) and exits when the
//! parent closes the socket.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use warden_sys::fdpass::{recv_with_fds, send_with_fds};
use warden_sys::process::{
    exit_immediately, fork_single_threaded, inherited_fd, wait_child, ForkResult, Waited,
};

use crate::helper::{HelperRequest, CONTROL_FD, LIFELINE_FD, REPORT_FD};
use crate::parent::SandboxError;

/// The argument that makes the warden binary act as the zygote.
pub const ZYGOTE_ARG: &str = "__sandbox-zygote";

/// The zygote's end of its socket.
const SOCKET_FD: i32 = 3;

/// How often an idle zygote reaps its ended helpers.
const REAP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest request accepted.
const MAX_REQUEST: u64 = 64 << 20;

/// How long the zygote, at its end, waits for helpers still exiting.
const LAST_CHILDREN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The parent's handle on a running zygote.
#[derive(Debug)]
pub(crate) struct Zygote {
    /// The socket and the zygote process; one request at a time.
    inner: Mutex<(OwnedFd, Child)>,
    /// The warden binary, to start another zygote when this one ended (killed by the OOM
    /// killer, or by hand): the server must not be left without helpers.
    program: std::path::PathBuf,
}

/// A helper the zygote forked.
#[derive(Debug)]
pub(crate) struct ZygoteChild {
    pub(crate) pid: Pid,
    pub(crate) pidfd: OwnedFd,
}

/// The helper's descriptors, in the parent.
pub(crate) struct ChildFds<'a> {
    pub(crate) report: std::os::fd::BorrowedFd<'a>,
    pub(crate) lifeline: std::os::fd::BorrowedFd<'a>,
    pub(crate) control: Option<std::os::fd::BorrowedFd<'a>>,
}

fn io(action: &'static str) -> impl Fn(nix::errno::Errno) -> SandboxError {
    move |e| SandboxError::Helper {
        action,
        source: e.into(),
    }
}

impl Zygote {
    /// Starts the zygote: `program` (the warden binary) with [`ZYGOTE_ARG`].
    pub(crate) fn start(program: &Path) -> Result<Self, SandboxError> {
        Ok(Self {
            inner: Mutex::new(Self::spawn(program)?),
            program: program.to_owned(),
        })
    }

    /// A new zygote process and the parent's end of its socket.
    fn spawn(program: &Path) -> Result<(OwnedFd, Child), SandboxError> {
        let (ours, theirs) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io("creating the zygote's socket"))?;
        let mut command = Command::new(program);
        command
            .arg(ZYGOTE_ARG)
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // A process group of its own, which its helpers inherit: a terminal's Ctrl-C
            // (SIGINT to the foreground group) reaches the parent, which decides what ends and
            // how (cancelling runs, draining), rather than killing the sandboxes under it.
            .process_group(0);
        warden_sys::process::map_fds(&mut command, vec![(theirs, SOCKET_FD)])
            .map_err(io("passing the zygote its socket"))?;
        let child = command.spawn().map_err(|source| SandboxError::Helper {
            action: "starting the zygote",
            source,
        })?;
        Ok((ours, child))
    }

    /// Has the zygote fork a helper for `request` with `fds`; a zygote that has ended is
    /// reaped and replaced first, and once more if it ends during the request.
    pub(crate) fn fork_helper(
        &self,
        request: &HelperRequest,
        fds: ChildFds<'_>,
    ) -> Result<ZygoteChild, SandboxError> {
        let json = serde_json::to_vec(request).map_err(|e| SandboxError::Helper {
            action: "encoding the helper's request",
            source: std::io::Error::other(e),
        })?;
        let mut attached = vec![fds.report, fds.lifeline];
        attached.extend(fds.control);
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut replaced = false;
        loop {
            if let Ok(Some(status)) = guard.1.try_wait() {
                tracing::warn!(%status, "the zygote ended; starting another");
                *guard = Self::spawn(&self.program)?;
                replaced = true;
            }
            match Self::ask(&guard.0, &json, &attached) {
                Err(e) if !replaced && matches!(guard.1.try_wait(), Ok(Some(_))) => {
                    tracing::warn!(error = %e, "the zygote ended during a request");
                }
                answered => return answered,
            }
        }
    }

    /// One request on `socket`: `json` with `attached`, and the answer.
    fn ask(
        socket: &OwnedFd,
        json: &[u8],
        attached: &[std::os::fd::BorrowedFd<'_>],
    ) -> Result<ZygoteChild, SandboxError> {
        let mut message = (json.len() as u64).to_le_bytes().to_vec();
        message.extend_from_slice(json);
        // The descriptors ride on the first bytes; the rest follows on the stream.
        let sent = send_with_fds(socket.as_fd(), &message[..8], attached)
            .map_err(io("sending a request to the zygote"))?;
        let mut stream =
            std::fs::File::from(socket.try_clone().map_err(|source| SandboxError::Helper {
                action: "sending a request to the zygote",
                source,
            })?);
        stream
            .write_all(&message[sent..])
            .map_err(|source| SandboxError::Helper {
                action: "sending a request to the zygote",
                source,
            })?;
        let mut pid = [0u8; 4];
        let (n, mut fds) =
            recv_with_fds(socket.as_fd(), &mut pid).map_err(io("reading the zygote's answer"))?;
        if n < 4 {
            stream
                .read_exact(&mut pid[n..])
                .map_err(|source| SandboxError::Helper {
                    action: "reading the zygote's answer",
                    source,
                })?;
        }
        let pid = i32::from_le_bytes(pid);
        match (pid, fds.pop()) {
            (pid, Some(pidfd)) if pid > 0 => Ok(ZygoteChild {
                pid: Pid::from_raw(pid),
                pidfd,
            }),
            (errno, _) => Err(SandboxError::Helper {
                action: "forking a helper in the zygote",
                source: std::io::Error::from_raw_os_error(-errno),
            }),
        }
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        let guard = self
            .inner
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Closing the socket ends the zygote; reap it.
        let (socket, child) = guard;
        let _ = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            nix::sys::socket::Shutdown::Both,
        );
        let _ = child.wait();
    }
}

/// Entry point of the zygote process; never returns.
pub fn zygote_main() -> ! {
    let Some(socket) = inherited_fd(SOCKET_FD) else {
        exit_immediately(2)
    };
    crate::name_process(c"warden-zygote");
    // Its forks' command line, the sandboxes' inits' among them: what `warden run`'s helper
    // shows, not the binary's path on the host.
    if warden_sys::process::overwrite_own_cmdline(b"warden\0__sandbox-helper").is_err() {
        exit_immediately(2)
    }
    loop {
        reap_children();
        // An idle parent (a server between requests) still gets its ended helpers reaped
        // within a second, not left as zombies until its next request.
        if !readable_within(&socket, REAP_EVERY) {
            continue;
        }
        match next_request(&socket) {
            Ok(Some((request, fds))) => answer(&socket, &request, fds),
            Ok(None) => {
                reap_last_children();
                exit_immediately(0)
            }
            // A broken request: answer with the error, so the parent is not left waiting.
            Err(errno) => send_answer(&socket, -(errno as i32), None),
        }
    }
}

/// At the parent's end: reaps the helpers, which its teardowns have waited for (they have
/// exited, or are exiting), so that none is left to the host's init as a zombie. A helper
/// still running after a grace period (its sandbox not torn down) is left to end on its own.
fn reap_last_children() {
    let deadline = std::time::Instant::now() + LAST_CHILDREN_GRACE;
    loop {
        match wait_child(Pid::from_raw(-1), true) {
            Ok(Waited::StillAlive) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Ok(Waited::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether `socket` has something to read (or hung up) within `timeout`; false on a timeout.
fn readable_within(socket: &OwnedFd, timeout: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(socket.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    // An error (EINTR) reads as ready: the read that follows decides.
    !matches!(poll(&mut fds, timeout), Ok(0))
}

/// Reaps every helper that has exited.
fn reap_children() {
    while let Ok(status) = wait_child(Pid::from_raw(-1), true) {
        if status == Waited::StillAlive {
            break;
        }
    }
}

/// Reads one request; `None` at end-of-file.
fn next_request(
    socket: &OwnedFd,
) -> Result<Option<(HelperRequest, Vec<OwnedFd>)>, nix::errno::Errno> {
    use nix::errno::Errno;
    let mut len = [0u8; 8];
    let (n, fds) = recv_with_fds(socket.as_fd(), &mut len)?;
    if n == 0 {
        return Ok(None);
    }
    let mut stream = std::fs::File::from(socket.try_clone().map_err(|_| Errno::EBADF)?);
    stream.read_exact(&mut len[n..]).map_err(|_| Errno::EIO)?;
    let len = u64::from_le_bytes(len);
    if len > MAX_REQUEST {
        return Err(Errno::E2BIG);
    }
    let mut json = vec![0u8; usize::try_from(len).map_err(|_| Errno::E2BIG)?];
    stream.read_exact(&mut json).map_err(|_| Errno::EIO)?;
    let request = serde_json::from_slice(&json).map_err(|_| Errno::EINVAL)?;
    if fds.len() < 2 {
        return Err(Errno::EBADF);
    }
    Ok(Some((request, fds)))
}

/// Forks the helper and tells the parent its pid, with a pidfd.
fn answer(socket: &OwnedFd, request: &HelperRequest, fds: Vec<OwnedFd>) {
    match fork_single_threaded() {
        Ok(ForkResult::Child) => {
            let mut placed = vec![(fds[0].as_fd(), REPORT_FD), (fds[1].as_fd(), LIFELINE_FD)];
            if let Some(control) = fds.get(2) {
                placed.push((control.as_fd(), CONTROL_FD));
            }
            if warden_sys::process::arrange_fds(&placed).is_err() {
                exit_immediately(2)
            }
            crate::helper::forked_main(request)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(fds);
            match warden_sys::process::pidfd_open(child) {
                Ok(pidfd) => send_answer(socket, child.as_raw(), Some(&pidfd)),
                Err(e) => {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    send_answer(socket, -(e as i32), None);
                }
            }
        }
        Err(e) => send_answer(socket, -(e as i32), None),
    }
}

fn send_answer(socket: &OwnedFd, pid: i32, pidfd: Option<&OwnedFd>) {
    let attached: Vec<_> = pidfd.iter().map(|fd| fd.as_fd()).collect();
    if send_with_fds(socket.as_fd(), &pid.to_le_bytes(), &attached).is_err() {
        // The parent is gone.
        exit_immediately(0)
    }
}
