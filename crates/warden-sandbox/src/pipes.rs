//! The pipes and sockets between the parent and a live sandbox, made in the parent: the report
//! pipe and its line reader, a job's output and input channels.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::parent::{SandboxError, Stdin};
use crate::report::{drain_lines, Report};

/// The report pipe, read line by line.
#[derive(Debug)]
pub(crate) struct ReportReader {
    pub(crate) fd: OwnedFd,
    buffer: Vec<u8>,
    pub(crate) eof: bool,
    /// Messages read but left for the next reader (what followed `Ready`).
    pending: Vec<Result<Report, String>>,
}

impl ReportReader {
    /// A reader of the report pipe's read end (made non-blocking here).
    pub(crate) fn new(fd: OwnedFd) -> Result<Self, SandboxError> {
        nonblocking(&fd)?;
        Ok(Self {
            fd,
            buffer: Vec::new(),
            eof: false,
            pending: Vec::new(),
        })
    }

    /// Leaves messages for the next `read`.
    pub(crate) fn keep(&mut self, reports: impl IntoIterator<Item = Result<Report, String>>) {
        self.pending.extend(reports);
    }

    /// Reads what is there (non-blocking) and returns the complete messages.
    pub(crate) fn read(&mut self) -> Vec<Result<Report, String>> {
        let mut out = std::mem::take(&mut self.pending);
        out.extend(self.read_pipe());
        out
    }

    fn read_pipe(&mut self) -> Vec<Result<Report, String>> {
        let mut chunk = [0u8; 4096];
        loop {
            match nix::unistd::read(&self.fd, &mut chunk) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => {}
                Err(_) => {
                    self.eof = true;
                    break;
                }
            }
            if self.buffer.len() > 1 << 20 {
                // A flood on the report pipe can only come from a broken helper.
                self.buffer.clear();
            }
        }
        drain_lines(&mut self.buffer)
    }
}

pub(crate) fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SandboxError::Helper {
        action: "creating a pipe",
        source: e.into(),
    })
}

/// A connected pair of Unix stream sockets, used like a pipe (read end, write end).
pub(crate) fn socket_pair() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    use nix::sys::socket::{shutdown, socketpair, AddressFamily, Shutdown, SockFlag, SockType};
    let (read, write) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SandboxError::Helper {
        action: "creating a socket pair",
        source: e.into(),
    })?;
    // One direction only, as a pipe: the program cannot read what the parent never writes.
    let _ = shutdown(std::os::fd::AsRawFd::as_raw_fd(&read), Shutdown::Write);
    let _ = shutdown(std::os::fd::AsRawFd::as_raw_fd(&write), Shutdown::Read);
    Ok((read, write))
}

pub(crate) fn nonblocking(fd: &OwnedFd) -> Result<(), SandboxError> {
    nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map(drop)
        .map_err(|e| SandboxError::Helper {
            action: "making a pipe non-blocking",
            source: e.into(),
        })
}

/// What the watch writes into the program's stdin pipe: `bytes`, then what `relay` gives.
pub(crate) struct StdinFeed {
    /// The pipe's write end.
    pub(crate) pipe: OwnedFd,
    pub(crate) bytes: Vec<u8>,
    /// `Stdin::Relay`'s descriptor.
    pub(crate) relay: Option<OwnedFd>,
}

/// The program's stdin pipe end for the sandbox and, for byte or relayed input, what the watch
/// feeds it.
pub(crate) type StdinEnds = (Option<OwnedFd>, Option<StdinFeed>);

pub(crate) fn stdin_source(stdin: Stdin) -> Result<StdinEnds, SandboxError> {
    let (bytes, relay) = match stdin {
        Stdin::Null => return Ok((None, None)),
        Stdin::Pipe(fd) => return Ok((Some(fd), None)),
        Stdin::Bytes(bytes) => (bytes, None),
        Stdin::Relay(fd) => (Vec::new(), Some(fd)),
    };
    let (read, pipe) = pipe()?;
    Ok((Some(read), Some(StdinFeed { pipe, bytes, relay })))
}
