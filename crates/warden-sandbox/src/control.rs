//! The control channel of a live sandbox: a Unix stream socket between the parent and the
//! sandbox's init, created before the init and inherited by it. The parent sends each job on
//! it; the init reads the next job only when the previous one has ended. Closing the parent's
//! end ends the sandbox: the init reads end-of-file and exits.
//!
//! One job on the wire: a single byte carrying the job's descriptors (`SCM_RIGHTS`: stdin,
//! stdout, stderr, then the artifact pipe when the job collects), then `u64 length (LE) | JSON
//! of the job | file contents in job order`. The parent writes it (`send_job`), the init reads
//! it (`receive`). Between jobs the parent may instead send a reset (`send_reset`): one byte
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
    /// A job to run.
    Job(Job, JobFds),
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
    let job = read_job(&mut std::fs::File::from(
        socket
            .try_clone()
            .map_err(|e| SetupError::new("receive a job", e))?,
    ))?;
    let artifacts = fds.next();
    if job.collect.is_some() != artifacts.is_some() {
        return Err(SetupError::new(
            "receive a job",
            "the artifact pipe does not match the job",
        ));
    }
    Ok(Message::Job(
        job,
        JobFds {
            stdin,
            stdout,
            stderr,
            artifacts,
        },
    ))
}

/// Reads `u64 length (LE) | JSON | file contents in job order`.
fn read_job(input: &mut impl Read) -> Result<Job, SetupError> {
    let step = "read the job";
    let (mut job, len): (Job, u64) = read_json(input, MAX_JOB, "job")?;
    let mut total = len;
    for file in &mut job.files {
        total = total.saturating_add(file.len);
        if total > MAX_JOB {
            return Err(SetupError::new(step, "the job's files are too large"));
        }
        let mut contents = Vec::new();
        input
            .take(file.len)
            .read_to_end(&mut contents)
            .map_err(|e| SetupError::new("read a workspace file", e))?;
        if contents.len() as u64 != file.len {
            return Err(SetupError::new(
                "read a workspace file",
                "the job ended early",
            ));
        }
        file.contents = contents;
    }
    Ok(job)
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
        let Message::Job(received, fds) = receive(&init).expect("received") else {
            panic!("a job was sent");
        };
        assert_eq!(received, job);
        assert!(fds.artifacts.is_some());
        let parent = sender.join().expect("sender");
        send_reset(&parent).expect("reset sent");
        assert!(matches!(receive(&init), Ok(Message::Reset)));
        drop(parent);
        assert!(matches!(receive(&init), Ok(Message::End)));
    }
}
