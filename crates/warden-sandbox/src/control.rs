//! The control channel of a live sandbox: a Unix stream socket between the parent and the
//! sandbox's init, created before the init and inherited by it. The parent sends each job on
//! it; the init reads the next job only when the previous one has ended. Closing the parent's
//! end ends the sandbox: the init reads end-of-file and exits.
//!
//! One job on the wire: a single byte carrying the job's descriptors (`SCM_RIGHTS`: stdin,
//! stdout, stderr, then the artifact pipe when the job collects), then `u64 length (LE) | JSON
//! of the job | file contents in job order`. The parent writes it (`send_job`), the init reads
//! the description (`receive`) and then the contents file by file straight into the workspace
//! ([`FileBytes`]): a file is never held whole in the init, whose memory is the job's cgroup's
//! (a compiled program of hundreds of MiB would cost it twice, the copy and the tmpfs's).
//! Between jobs the parent may instead send a reset (`send_reset`): one byte
//! without descriptors, asking the init to renew what a job could have left behind
//! (`child::reset`), which the init answers with `Ready`.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::TimeVal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::child::SetupError;
use crate::plan::Job;

/// Largest job accepted (its description plus its files).
const MAX_JOB: u64 = 1 << 30;

/// The byte that carries a job's descriptors.
const JOB_MARK: u8 = b'J';
/// The byte that asks for a reset.
const RESET_MARK: u8 = b'R';

/// What the init reads from the channel.
#[derive(Debug)]
pub(crate) enum Message {
    /// A job to run, and the bytes of its files, which the init must read (or skip) before
    /// the next message.
    Job(Box<Job>, JobFds, FileBytes),
    /// Renew the sandbox's writable state before the next job.
    Reset,
    /// The parent closed the channel: the sandbox ends.
    End,
}

/// How long the parent waits for the init to take a job's bytes before giving up on the
/// sandbox (an init that stopped reading is broken).
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// A job's descriptors, as the init receives them.
#[derive(Debug)]
pub(crate) struct JobFds {
    pub(crate) stdin: OwnedFd,
    pub(crate) stdout: OwnedFd,
    pub(crate) stderr: OwnedFd,
    /// Where collected files go, when the job collects.
    pub(crate) artifacts: Option<OwnedFd>,
}

/// The descriptors the parent sends with a job.
pub(crate) struct SendFds<'a> {
    pub(crate) stdin: BorrowedFd<'a>,
    pub(crate) stdout: BorrowedFd<'a>,
    pub(crate) stderr: BorrowedFd<'a>,
    pub(crate) artifacts: Option<BorrowedFd<'a>>,
}

/// Makes the parent's writes on `socket` give up after [`SEND_TIMEOUT`].
pub(crate) fn limit_send_time(socket: &OwnedFd) -> std::io::Result<()> {
    let timeout = TimeVal::new(i64::try_from(SEND_TIMEOUT.as_secs()).unwrap_or(10), 0);
    setsockopt(socket, sockopt::SendTimeout, &timeout).map_err(std::io::Error::from)
}

/// In the parent: sends `job` and its descriptors to the init.
pub(crate) fn send_job(socket: &OwnedFd, job: &Job, fds: SendFds<'_>) -> std::io::Result<()> {
    let mut attached = vec![fds.stdin, fds.stdout, fds.stderr];
    attached.extend(fds.artifacts);
    warden_sys::fdpass::send_with_fds(socket.as_fd(), &[JOB_MARK], &attached)?;
    write_json(socket.as_fd(), job)?;
    let mut stream = SocketWriter(socket.as_fd());
    for file in &job.files {
        stream.write_all(&file.contents)?;
    }
    Ok(())
}

/// In the parent: asks the init to reset the sandbox (between jobs only).
pub(crate) fn send_reset(socket: &OwnedFd) -> std::io::Result<()> {
    warden_sys::fdpass::send_with_fds(socket.as_fd(), &[RESET_MARK], &[])?;
    Ok(())
}

/// Writes `u64 length (LE) | JSON of value` on `socket`: how a job and a standby's launch
/// (`standby.rs`) travel.
pub(crate) fn write_json(socket: BorrowedFd<'_>, value: &impl Serialize) -> std::io::Result<()> {
    let json = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let mut stream = SocketWriter(socket);
    stream.write_all(&(json.len() as u64).to_le_bytes())?;
    stream.write_all(&json)
}

/// Reads what [`write_json`] wrote, refusing more than `max` bytes of JSON; returns the value
/// and its length. `what` names it in errors.
pub(crate) fn read_json<T: DeserializeOwned>(
    input: &mut impl Read,
    max: u64,
    what: &str,
) -> Result<(T, u64), SetupError> {
    let step = format!("read the {what}");
    let mut len = [0u8; 8];
    input
        .read_exact(&mut len)
        .map_err(|e| SetupError::new(&step, e))?;
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(SetupError::new(&step, format!("{len} bytes is too large")));
    }
    let mut json = vec![0u8; usize::try_from(len).map_err(|e| SetupError::new(&step, e))?];
    input
        .read_exact(&mut json)
        .map_err(|e| SetupError::new(&step, e))?;
    let value = serde_json::from_slice(&json)
        .map_err(|e| SetupError::new(&format!("parse the {what}"), e))?;
    Ok((value, len))
}

/// Writes with `MSG_NOSIGNAL`: a dead init is an error here, not a SIGPIPE for the caller.
struct SocketWriter<'a>(BorrowedFd<'a>);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match nix::sys::socket::send(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                buf,
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
            ) {
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the sandbox's init stopped taking the job",
                    ))
                }
                other => return other.map_err(std::io::Error::from),
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// In the init: the next message.
pub(crate) fn receive(socket: &OwnedFd) -> Result<Message, SetupError> {
    let mut mark = [0u8; 1];
    let (n, fds) = warden_sys::fdpass::recv_with_fds(socket.as_fd(), &mut mark)
        .map_err(|e| SetupError::errno("receive a job", e))?;
    if n == 0 {
        return Ok(Message::End);
    }
    if mark[0] == RESET_MARK && fds.is_empty() {
        return Ok(Message::Reset);
    }
    let mut fds = fds.into_iter();
    let (Some(stdin), Some(stdout), Some(stderr)) = (fds.next(), fds.next(), fds.next()) else {
        return Err(SetupError::new(
            "receive a job",
            "its descriptors are missing",
        ));
    };
    if mark[0] != JOB_MARK {
        return Err(SetupError::new("receive a job", "unexpected message"));
    }
    let mut input = std::fs::File::from(
        socket
            .try_clone()
            .map_err(|e| SetupError::new("receive a job", e))?,
    );
    let (job, left) = read_job(&mut input)?;
    let artifacts = fds.next();
    if job.collect.is_some() != artifacts.is_some() {
        return Err(SetupError::new(
            "receive a job",
            "the artifact pipe does not match the job",
        ));
    }
    Ok(Message::Job(
        Box::new(job),
        JobFds {
            stdin,
            stdout,
            stderr,
            artifacts,
        },
        FileBytes { input, left },
    ))
}

/// Reads `u64 length (LE) | JSON` of a job and checks the length of the file contents that
/// follow it (returned), which stay on the channel.
fn read_job(input: &mut impl Read) -> Result<(Job, u64), SetupError> {
    let (job, len): (Job, u64) = read_json(input, MAX_JOB, "job")?;
    let files = job
        .files
        .iter()
        .try_fold(0u64, |total, file| total.checked_add(file.len))
        .filter(|files| len.saturating_add(*files) <= MAX_JOB)
        .ok_or_else(|| SetupError::new("read the job", "the job's files are too large"))?;
    Ok((job, files))
}

/// In the init: the contents of a job's files, in job order, as they follow the job on the
/// channel. Each is copied into its file through a small buffer ([`FileBytes::copy_next`]);
/// what a failed write left unread is skipped ([`FileBytes::skip_rest`]) before the next
/// message, which would otherwise be read out of these bytes.
#[derive(Debug)]
pub(crate) struct FileBytes {
    input: std::fs::File,
    /// Bytes of the job's files not read yet.
    left: u64,
}

/// The buffer a file's contents cross the init in: the most of them it holds at once.
const COPY_BUFFER: usize = 64 * 1024;

impl FileBytes {
    /// Copies the next `len` bytes into `out`. A failed write leaves the rest of them unread.
    pub(crate) fn copy_next(&mut self, len: u64, out: &mut impl Write) -> std::io::Result<()> {
        if len > self.left {
            return Err(std::io::Error::other(
                "the job's files are longer than it said",
            ));
        }
        let mut buffer = vec![0u8; COPY_BUFFER];
        let mut rest = len;
        while rest > 0 {
            let want = usize::try_from(rest).map_or(COPY_BUFFER, |r| r.min(COPY_BUFFER));
            let n = self.read_some(&mut buffer[..want])?;
            rest -= n as u64;
            out.write_all(&buffer[..n])?;
        }
        Ok(())
    }

    /// Reads and drops what is left of the job's files.
    pub(crate) fn skip_rest(&mut self) -> Result<(), SetupError> {
        let mut buffer = vec![0u8; COPY_BUFFER];
        while self.left > 0 {
            let want = usize::try_from(self.left).map_or(COPY_BUFFER, |r| r.min(COPY_BUFFER));
            self.read_some(&mut buffer[..want])
                .map_err(|e| SetupError::new("read a workspace file", e))?;
        }
        Ok(())
    }

    /// Reads at least one byte of the files (at most `buffer`'s length).
    fn read_some(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.input.read(buffer) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the job ended early",
                    ))
                }
                Ok(n) => {
                    self.left -= n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::WorkspaceFile;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use warden_core::Limits;

    #[test]
    fn a_job_and_its_descriptors_cross_the_channel() {
        let (parent, init) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let mut job = Job::new(vec!["/bin/cat".into(), "a".into()], Limits::default());
        job.files.push(WorkspaceFile::new("a", "first"));
        job.files
            .push(WorkspaceFile::executable("dir/b", vec![0u8; 300_000]));
        job.collect = Some("out".into());
        let (r, w) = nix::unistd::pipe().expect("pipe");
        let sent = job.clone();
        let sender = std::thread::spawn(move || {
            send_job(
                &parent,
                &sent,
                SendFds {
                    stdin: r.as_fd(),
                    stdout: w.as_fd(),
                    stderr: w.as_fd(),
                    artifacts: Some(w.as_fd()),
                },
            )
            .expect("sent");
            parent
        });
        let Message::Job(received, fds, mut bytes) = receive(&init).expect("received") else {
            panic!("a job was sent");
        };
        // The contents follow on the channel, read file by file.
        let mut contents = Vec::new();
        bytes
            .copy_next(received.files[0].len, &mut contents)
            .expect("first file");
        assert_eq!(contents, b"first");
        bytes.skip_rest().expect("the rest skipped");
        let mut described = job.clone();
        for file in &mut described.files {
            file.contents = Default::default();
        }
        assert_eq!(*received, described);
        assert!(fds.artifacts.is_some());
        let parent = sender.join().expect("sender");
        send_reset(&parent).expect("reset sent");
        assert!(matches!(receive(&init), Ok(Message::Reset)));
        drop(parent);
        assert!(matches!(receive(&init), Ok(Message::End)));
    }
}
