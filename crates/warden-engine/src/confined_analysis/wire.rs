//! What goes between a caller and the process that analyses: a request (the files, sent only
//! to a worker: a forked child has them in its copy of memory) and the answer, each one frame.
//! Both ends are warden; the caller still reads the answer with a deadline and a bound, since
//! the process that writes it parses untrusted code.

use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::time::Instant;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};
use warden_analysis::{ReadElsewhere, RequestAnalysis, RequestFile};
use warden_core::Analysis;

/// The largest answer read: a file's findings are capped (`warden_analysis::MAX_FINDINGS`),
/// and so are a request's files.
const MAX_ANSWER: usize = 256 << 20;

/// Why no answer came.
#[derive(Debug)]
pub(super) enum Unanswered {
    /// The deadline passed first.
    TimedOut,
    /// The process closed its end before the whole answer (it died: killed at its memory or
    /// cpu limit, or aborted).
    Ended,
    /// The answer is not one (a bug).
    Malformed(String),
}

#[derive(Serialize, Deserialize)]
struct Answer {
    files: Vec<Option<Analysis>>,
    budget_spent: bool,
}

/// The request for `files`: their count, then each one's kind (bits: may be data, named by a
/// source, among other files), language and contents, and, among other files, what those
/// read (`ReadElsewhere::to_bytes`), each length a `u32` (little-endian).
pub(super) fn encode_request(files: &[RequestFile<'_>]) -> Option<Vec<u8>> {
    let elsewhere: Vec<Option<Vec<u8>>> = files
        .iter()
        .map(|f| f.among_others.map(ReadElsewhere::to_bytes))
        .collect();
    let size: usize = files
        .iter()
        .zip(&elsewhere)
        .map(|(f, e)| 13 + f.language.len() + f.code.len() + e.as_ref().map_or(0, Vec::len))
        .sum();
    let mut out = Vec::with_capacity(4 + size);
    out.extend(u32::try_from(files.len()).ok()?.to_le_bytes());
    for (file, elsewhere) in files.iter().zip(&elsewhere) {
        out.push(
            u8::from(file.maybe_data)
                | u8::from(file.named) << 1
                | u8::from(file.among_others.is_some()) << 2,
        );
        out.extend(u32::try_from(file.language.len()).ok()?.to_le_bytes());
        out.extend(file.language.as_bytes());
        out.extend(u32::try_from(file.code.len()).ok()?.to_le_bytes());
        out.extend(file.code);
        if let Some(elsewhere) = elsewhere {
            out.extend(u32::try_from(elsewhere.len()).ok()?.to_le_bytes());
            out.extend(elsewhere);
        }
    }
    Some(out)
}

/// One file of a request as read: a [`RequestFile`] that owns its language and code.
#[derive(Debug)]
pub(super) struct OwnedFile {
    language: String,
    code: Vec<u8>,
    kind: u8,
    elsewhere: Option<ReadElsewhere>,
}

impl OwnedFile {
    /// The file, as the analyzer takes it.
    pub(super) fn as_request(&self) -> RequestFile<'_> {
        RequestFile {
            language: &self.language,
            code: &self.code,
            maybe_data: self.kind & 1 != 0,
            named: self.kind & 2 != 0,
            among_others: self.elsewhere.as_ref(),
        }
    }
}

/// Reads one request; `None` at the end of the input before a request starts.
pub(super) fn read_request(input: &mut impl Read) -> std::io::Result<Option<Vec<OwnedFile>>> {
    let mut count = [0u8; 4];
    match input.read_exact(&mut count) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let mut files = Vec::new();
    for _ in 0..u32::from_le_bytes(count) {
        let mut kind = [0u8; 1];
        input.read_exact(&mut kind)?;
        let language = String::from_utf8(read_sized(input)?)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        let code = read_sized(input)?;
        let elsewhere = match kind[0] & 4 {
            0 => None,
            _ => Some(ReadElsewhere::from_bytes(&read_sized(input)?)),
        };
        files.push(OwnedFile {
            language,
            code,
            kind: kind[0],
            elsewhere,
        });
    }
    Ok(Some(files))
}

fn read_sized(input: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    input.read_exact(&mut len)?;
    let len = usize::try_from(u32::from_le_bytes(len)).unwrap_or(usize::MAX);
    let mut bytes = Vec::new();
    input.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() == len {
        Ok(bytes)
    } else {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// Writes `answer` as one frame: its length (`u32`, little-endian), then JSON.
pub(super) fn write_answer(out: &mut impl Write, answer: RequestAnalysis) -> std::io::Result<()> {
    // One write, length and body: the reader wakes once.
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(
        &mut frame,
        &Answer {
            files: answer.files,
            budget_spent: answer.budget_spent,
        },
    )?;
    let len = u32::try_from(frame.len() - 4)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    frame[..4].copy_from_slice(&len.to_le_bytes());
    out.write_all(&frame)?;
    out.flush()
}

/// Reads one answer frame from `fd` (a pipe) by `deadline`.
pub(super) fn read_answer(
    fd: BorrowedFd<'_>,
    deadline: Instant,
) -> Result<RequestAnalysis, Unanswered> {
    let mut frame: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        if let Some(len) = frame_len(&frame) {
            if len > MAX_ANSWER {
                return Err(Unanswered::Malformed(format!("an answer of {len} bytes")));
            }
            if frame.len() >= 4 + len {
                let answer: Answer = serde_json::from_slice(&frame[4..4 + len])
                    .map_err(|e| Unanswered::Malformed(e.to_string()))?;
                return Ok(RequestAnalysis {
                    files: answer.files,
                    budget_spent: answer.budget_spent,
                });
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return Err(Unanswered::TimedOut),
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Unanswered::Malformed(format!("poll: {e}"))),
        }
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => return Err(Unanswered::Ended),
            Ok(n) => frame.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => {}
            Err(e) => return Err(Unanswered::Malformed(format!("read: {e}"))),
        }
    }
}

fn frame_len(frame: &[u8]) -> Option<usize> {
    let len: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(len)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_sent() {
        let reads =
            warden_analysis::ProgramReads::of([&b"$MODE $X"[..]]).besides(b"MODE=1 X=2", false);
        let files = [
            RequestFile {
                language: "python",
                code: b"print(1)\n",
                maybe_data: false,
                named: false,
                among_others: None,
            },
            RequestFile {
                language: "c",
                code: b"\0\xff",
                maybe_data: true,
                named: true,
                among_others: Some(&reads),
            },
        ];
        let bytes = encode_request(&files).expect("encodes");
        let mut input = &bytes[..];
        let read = read_request(&mut input).expect("reads").expect("a request");
        let read: Vec<RequestFile<'_>> = read.iter().map(OwnedFile::as_request).collect();
        assert_eq!(read, files);
        assert!(read_request(&mut input).expect("reads").is_none());
        let mut cut = &bytes[..bytes.len() - 1];
        assert!(read_request(&mut cut).is_err(), "a cut request is an error");
    }

    #[test]
    fn an_answer_reads_back_and_a_closed_pipe_is_no_answer() {
        let (read, write) = nix::unistd::pipe().expect("pipe");
        let answer = RequestAnalysis {
            files: vec![Some(Analysis::default()), None],
            budget_spent: true,
        };
        let mut writer = std::fs::File::from(write);
        write_answer(&mut writer, answer.clone()).expect("written");
        drop(writer);
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        use std::os::fd::AsFd;
        let got = read_answer(read.as_fd(), deadline).expect("an answer");
        assert_eq!(got, answer);
        let (read, write) = nix::unistd::pipe().expect("pipe");
        drop(write);
        assert!(matches!(
            read_answer(read.as_fd(), deadline),
            Err(Unanswered::Ended)
        ));
    }
}
