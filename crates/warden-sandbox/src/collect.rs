//! Files sent back out of the sandbox: a compiler's output, read by the init after the program
//! exited with status 0 and streamed to the parent on the artifact pipe (fd 5 of the helper).
//!
//! The init opens every path with `O_NOFOLLOW` relative to its directory and sends only regular
//! files, so a program that planted a symlink or a FIFO gets nothing out of it. Wire format,
//! per file: `u32 path length | path | u32 mode | u64 length | contents`, little-endian; a
//! record with path length `u32::MAX` and a message in place of the path reports a refusal.
//! The parent holds the stream in memory, or spools it to an unnamed file on disk when the
//! job names a directory for it (`Job::spool`, [`SpooledFiles`]: a dependency set).

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, Mode, SFlag};

use crate::child::SetupError;

/// Most bytes sent back from one run.
pub(crate) const MAX_TOTAL: u64 = 512 << 20;
/// Most files sent back from one run.
pub(crate) const MAX_FILES: usize = 10_000;
/// Deepest directory nesting followed.
const MAX_DEPTH: usize = 16;

/// A file the sandbox sent back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedFile {
    /// Path relative to the workspace.
    pub path: PathBuf,
    /// Contents.
    pub contents: Vec<u8>,
    /// Whether it had an executable bit.
    pub executable: bool,
}

struct Sender {
    out: std::fs::File,
    sent_bytes: u64,
    sent_files: usize,
}

/// Runs in the init: sends `relative` (a file or a directory tree under `/work`).
pub(crate) fn send(workdir: &Path, relative: &Path, out: &OwnedFd) -> Result<(), SetupError> {
    let out = std::fs::File::from(
        out.try_clone()
            .map_err(|e| SetupError::new("dup artifact fd", e))?,
    );
    let mut sender = Sender {
        out,
        sent_bytes: 0,
        sent_files: 0,
    };
    let base = nix::fcntl::open(
        workdir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| SetupError::sys("open", workdir, e))?;
    if let Err(refusal) = sender.send_path(&base, relative, relative, 0) {
        sender.refuse(&refusal);
    }
    Ok(())
}

impl Sender {
    /// Sends `name` (relative to the open directory `dir`), recorded as `shown`.
    fn send_path(
        &mut self,
        dir: &OwnedFd,
        name: &Path,
        shown: &Path,
        depth: usize,
    ) -> Result<(), String> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let fd = openat(dir.as_fd(), name, flags, Mode::empty())
            .map_err(|e| format!("{} cannot be opened ({})", shown.display(), e.desc()))?;
        let stat = fstat(fd.as_fd()).map_err(|e| format!("{}: {}", shown.display(), e.desc()))?;
        let kind = SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits());
        if kind == SFlag::S_IFREG {
            return self.send_file(
                fd,
                shown,
                stat.st_mode,
                u64::try_from(stat.st_size).unwrap_or(0),
            );
        }
        if kind != SFlag::S_IFDIR {
            return Err(format!(
                "{} is not a regular file or directory",
                shown.display()
            ));
        }
        if depth >= MAX_DEPTH {
            return Err(format!("{} is nested too deeply", shown.display()));
        }
        let mut entries: Vec<OsString> = Vec::new();
        let mut listing = Dir::from_fd(fd.try_clone().map_err(|e| e.to_string())?)
            .map_err(|e| e.desc().to_owned())?;
        for entry in listing.iter() {
            let entry = entry.map_err(|e| e.desc().to_owned())?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name != "." && name != ".." {
                entries.push(name.to_owned());
            }
        }
        entries.sort();
        for entry in entries {
            self.send_path(&fd, Path::new(&entry), &shown.join(&entry), depth + 1)?;
        }
        Ok(())
    }

    fn send_file(&mut self, fd: OwnedFd, shown: &Path, mode: u32, size: u64) -> Result<(), String> {
        self.sent_files += 1;
        self.sent_bytes += size;
        if self.sent_files > MAX_FILES || self.sent_bytes > MAX_TOTAL {
            return Err(format!(
                "the output exceeds {MAX_FILES} files or {MAX_TOTAL} bytes"
            ));
        }
        let mut contents = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        std::fs::File::from(fd)
            .take(size)
            .read_to_end(&mut contents)
            .map_err(|e| format!("{}: {e}", shown.display()))?;
        let path = shown.as_os_str().as_bytes();
        let mut header = Vec::with_capacity(16 + path.len());
        header.extend_from_slice(&u32::try_from(path.len()).unwrap_or(0).to_le_bytes());
        header.extend_from_slice(path);
        header.extend_from_slice(&mode.to_le_bytes());
        header.extend_from_slice(&(contents.len() as u64).to_le_bytes());
        self.out
            .write_all(&header)
            .and_then(|()| self.out.write_all(&contents))
            .map_err(|e| format!("sending {}: {e}", shown.display()))
    }

    fn refuse(&mut self, message: &str) {
        let mut record = u32::MAX.to_le_bytes().to_vec();
        record.extend_from_slice(&u32::try_from(message.len()).unwrap_or(0).to_le_bytes());
        record.extend_from_slice(message.as_bytes());
        let _ = self.out.write_all(&record);
    }
}

impl CollectedFile {
    /// Encodes files in the artifact stream's format (the compile cache stores them so).
    pub fn encode_all(files: &[CollectedFile]) -> Vec<u8> {
        let mut out = Vec::with_capacity(usize::try_from(Self::encoded_len(files)).unwrap_or(0));
        // Writing into a Vec cannot fail.
        let _ = Self::write_all(files, &mut out);
        out
    }

    /// The length of [`CollectedFile::encode_all`]'s encoding of `files`.
    pub fn encoded_len(files: &[CollectedFile]) -> u64 {
        files
            .iter()
            .map(|f| 16 + f.path.as_os_str().len() as u64 + f.contents.len() as u64)
            .sum()
    }

    /// Writes the encoding of [`CollectedFile::encode_all`] into `out` as it goes, never
    /// holding a second copy of the contents.
    pub fn write_all(files: &[CollectedFile], out: &mut impl Write) -> std::io::Result<()> {
        for f in files {
            let path = f.path.as_os_str().as_bytes();
            out.write_all(&u32::try_from(path.len()).unwrap_or(0).to_le_bytes())?;
            out.write_all(path)?;
            let mode: u32 = if f.executable { 0o100755 } else { 0o100644 };
            out.write_all(&mode.to_le_bytes())?;
            out.write_all(&(f.contents.len() as u64).to_le_bytes())?;
            out.write_all(&f.contents)?;
        }
        Ok(())
    }

    /// Decodes what [`CollectedFile::encode_all`] (or the init) wrote; every path is checked
    /// to stay inside the workspace.
    pub fn decode_all(bytes: &[u8]) -> Result<Vec<CollectedFile>, String> {
        parse(bytes)
    }

    /// Decodes what [`CollectedFile::write_all`] wrote, reading each file's contents from
    /// `input` straight into its own buffer (the compile cache's entries, read from disk).
    pub fn read_all(input: &mut impl Read) -> Result<Vec<CollectedFile>, String> {
        let mut files = Vec::new();
        let io = |e: std::io::Error| e.to_string();
        loop {
            let mut word = [0u8; 4];
            match input.read(&mut word[..1]).map_err(io)? {
                0 => return Ok(files),
                _ => input.read_exact(&mut word[1..]).map_err(io)?,
            }
            let path_len = u32::from_le_bytes(word);
            if path_len == u32::MAX {
                return Err("the stream holds a refusal".to_owned());
            }
            let mut path = vec![0u8; path_len as usize];
            input.read_exact(&mut path).map_err(io)?;
            input.read_exact(&mut word).map_err(io)?;
            let mode = u32::from_le_bytes(word);
            let mut len = [0u8; 8];
            input.read_exact(&mut len).map_err(io)?;
            let len = u64::from_le_bytes(len);
            let mut contents = Vec::new();
            input.take(len).read_to_end(&mut contents).map_err(io)?;
            if contents.len() as u64 != len {
                return Err("the artifact stream ended early".to_owned());
            }
            files.push(checked(path, mode, contents)?);
        }
    }
}

/// The files a job sent back, spooled to an unnamed file on disk rather than held in memory
/// (`Job::spool`): read one at a time with [`SpooledFiles::for_each`]. Every record was checked
/// when the run ended (its path stays inside the workspace, the stream is whole and holds no
/// refusal). Clones share the file.
#[derive(Debug, Clone)]
pub struct SpooledFiles {
    file: std::sync::Arc<std::fs::File>,
    files: usize,
    bytes: u64,
}

impl PartialEq for SpooledFiles {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.file, &other.file)
    }
}

impl Eq for SpooledFiles {}

/// Reads a file from an offset on, never moving the descriptor's own (clones share it).
struct ReadAt<'a> {
    file: &'a std::fs::File,
    at: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::os::unix::fs::FileExt::read_at(self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl SpooledFiles {
    /// Checks the stream in `file` (the format of [`CollectedFile::write_all`]) record by
    /// record, reading headers only; `Err` carries the init's refusal or what is malformed.
    pub fn scan(file: std::fs::File) -> Result<Self, String> {
        let end = file.metadata().map_err(|e| e.to_string())?.len();
        let mut input = ReadAt { file: &file, at: 0 };
        let (mut files, mut bytes) = (0, 0);
        while input.at < end {
            let path = read_header_path(&mut input)??;
            let mode = read_u32(&mut input)?;
            let len = read_u64(&mut input)?;
            if input.at.checked_add(len).is_none_or(|e| e > end) {
                return Err("the artifact stream ended early".to_owned());
            }
            checked(path, mode, Vec::new())?;
            input.at += len;
            files += 1;
            bytes += len;
        }
        Ok(Self {
            file: std::sync::Arc::new(file),
            files,
            bytes,
        })
    }

    /// How many files.
    pub fn len(&self) -> usize {
        self.files
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.files == 0
    }

    /// The bytes of their contents together.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Calls `each` with every file's path (relative to the workspace), whether it is
    /// executable, and its contents, in the order sent.
    pub fn for_each(
        &self,
        mut each: impl FnMut(&Path, bool, &mut dyn Read) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let mut input = ReadAt {
            file: &self.file,
            at: 0,
        };
        for _ in 0..self.files {
            let path = read_header_path(&mut input)
                .map_err(invalid)?
                .map_err(invalid)?;
            let mode = read_u32(&mut input).map_err(invalid)?;
            let len = read_u64(&mut input).map_err(invalid)?;
            let file = checked(path, mode, Vec::new()).map_err(invalid)?;
            let start = input.at;
            let mut contents = (&mut input).take(len);
            each(&file.path, file.executable, &mut contents)?;
            input.at = start + len;
        }
        Ok(())
    }
}

/// A record's path, or (inner `Err`) the refusal the record carries instead.
fn read_header_path(input: &mut impl Read) -> Result<Result<Vec<u8>, String>, String> {
    let path_len = read_u32(input)?;
    if path_len == u32::MAX {
        let len = read_u32(input)?;
        let mut message = vec![0u8; len.min(1 << 16) as usize];
        input
            .read_exact(&mut message)
            .map_err(|_| "the artifact stream ended early".to_owned())?;
        return Ok(Err(String::from_utf8_lossy(&message).into_owned()));
    }
    let mut path = vec![0u8; path_len.min(1 << 16) as usize];
    if path.len() != path_len as usize {
        return Err("an artifact path is too long".to_owned());
    }
    input
        .read_exact(&mut path)
        .map_err(|_| "the artifact stream ended early".to_owned())?;
    Ok(Ok(path))
}

fn read_u32(input: &mut impl Read) -> Result<u32, String> {
    let mut word = [0u8; 4];
    input
        .read_exact(&mut word)
        .map_err(|_| "the artifact stream ended early".to_owned())?;
    Ok(u32::from_le_bytes(word))
}

fn read_u64(input: &mut impl Read) -> Result<u64, String> {
    let mut word = [0u8; 8];
    input
        .read_exact(&mut word)
        .map_err(|_| "the artifact stream ended early".to_owned())?;
    Ok(u64::from_le_bytes(word))
}

/// A file of the stream, its path checked to stay inside the workspace.
fn checked(path: Vec<u8>, mode: u32, contents: Vec<u8>) -> Result<CollectedFile, String> {
    let path = PathBuf::from(OsString::from_vec(path));
    if !crate::plan::is_contained_relative(&path) {
        return Err(format!(
            "artifact path {} escapes the workspace",
            path.display()
        ));
    }
    Ok(CollectedFile {
        path,
        contents,
        executable: mode & 0o111 != 0,
    })
}

/// Parses what the parent read from the artifact pipe, as [`parse`] does, taking the buffer:
/// a stream of one file (a compiler's program, the common case and the large one) keeps its
/// contents in place, the header moved out, rather than copied into a second buffer of up to
/// [`MAX_TOTAL`] in warden's memory.
pub(crate) fn parse_owned(mut bytes: Vec<u8>) -> Result<Vec<CollectedFile>, String> {
    let mut rest = &bytes[..];
    let one = (|| {
        let path_len = take_u32(&mut rest).ok().filter(|n| *n != u32::MAX)?;
        let path = take(&mut rest, path_len as usize).ok()?.to_vec();
        let mode = take_u32(&mut rest).ok()?;
        let len = take_u64(&mut rest).ok()?;
        (rest.len() as u64 == len).then_some((path, mode))
    })();
    match one {
        Some((path, mode)) => {
            let header = bytes.len() - rest.len();
            bytes.drain(..header);
            Ok(vec![checked(path, mode, bytes)?])
        }
        None => parse(&bytes),
    }
}

/// Parses what the parent read from the artifact pipe. `Err` carries the init's refusal or a
/// description of a malformed stream.
pub(crate) fn parse(mut bytes: &[u8]) -> Result<Vec<CollectedFile>, String> {
    let mut files = Vec::new();
    while !bytes.is_empty() {
        let path_len = take_u32(&mut bytes)?;
        if path_len == u32::MAX {
            let len = take_u32(&mut bytes)? as usize;
            let message = take(&mut bytes, len)?;
            return Err(String::from_utf8_lossy(message).into_owned());
        }
        let path = take(&mut bytes, path_len as usize)?;
        let mode = take_u32(&mut bytes)?;
        let len = take_u64(&mut bytes)?;
        let contents = take(
            &mut bytes,
            usize::try_from(len).map_err(|_| "length overflow")?,
        )?;
        files.push(checked(path.to_vec(), mode, contents.to_vec())?);
    }
    Ok(files)
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err("the artifact stream ended early".to_owned());
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn take_u32(bytes: &mut &[u8]) -> Result<u32, String> {
    let raw = take(bytes, 4)?;
    Ok(u32::from_le_bytes(
        raw.try_into().map_err(|_| "short read")?,
    ))
}

fn take_u64(bytes: &mut &[u8]) -> Result<u64, String> {
    let raw = take(bytes, 8)?;
    Ok(u64::from_le_bytes(
        raw.try_into().map_err(|_| "short read")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, mode: u32, contents: &[u8]) -> Vec<u8> {
        let mut r = (path.len() as u32).to_le_bytes().to_vec();
        r.extend_from_slice(path.as_bytes());
        r.extend_from_slice(&mode.to_le_bytes());
        r.extend_from_slice(&(contents.len() as u64).to_le_bytes());
        r.extend_from_slice(contents);
        r
    }

    #[test]
    fn records_parse_in_order_with_their_modes() {
        let mut stream = record("main", 0o100755, b"\x7fELF");
        stream.extend(record("classes/Main.class", 0o100644, b"cafe"));
        let files = parse(&stream).expect("valid stream");
        assert_eq!(files.len(), 2);
        assert!(files[0].executable && !files[1].executable);
        assert_eq!(files[1].path, PathBuf::from("classes/Main.class"));
    }

    #[test]
    fn encoding_round_trips() {
        let files = vec![
            CollectedFile {
                path: "main".into(),
                contents: b"elf".to_vec(),
                executable: true,
            },
            CollectedFile {
                path: "classes/A.class".into(),
                contents: Vec::new(),
                executable: false,
            },
        ];
        let encoded = CollectedFile::encode_all(&files);
        assert_eq!(encoded.len() as u64, CollectedFile::encoded_len(&files));
        assert_eq!(
            CollectedFile::read_all(&mut &encoded[..]).as_ref(),
            Ok(&files)
        );
        assert_eq!(parse_owned(encoded.clone()).as_ref(), Ok(&files));
        assert_eq!(CollectedFile::decode_all(&encoded), Ok(files));
    }

    #[test]
    fn a_stream_of_one_file_keeps_its_buffer() {
        let stream = record("main", 0o100755, b"\x7fELF program");
        let files = parse_owned(stream).expect("valid stream");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].contents, b"\x7fELF program");
        assert!(files[0].executable);
        assert!(parse_owned(record("../main", 0o755, b"x")).is_err());
        let full = record("main", 0o755, b"abcdef");
        assert!(parse_owned(full[..full.len() - 1].to_vec()).is_err());
        assert!(CollectedFile::read_all(&mut &full[..full.len() - 1]).is_err());
    }

    fn spooled(stream: &[u8]) -> Result<SpooledFiles, String> {
        let mut file = tempfile::tempfile().expect("a file");
        file.write_all(stream).expect("written");
        SpooledFiles::scan(file)
    }

    /// Hunt deps: a dependency set of up to 512 MiB was held whole in warden's memory (twice,
    /// once cloned); spooled, it is read one file at a time from disk.
    #[test]
    fn a_spooled_stream_is_checked_then_read_one_file_at_a_time() {
        let mut stream = record("site/six.py", 0o100644, b"import os");
        stream.extend(record("bin/tool", 0o100755, b"#!"));
        stream.extend(record("empty", 0o100644, b""));
        let files = spooled(&stream).expect("valid stream");
        assert_eq!((files.len(), files.bytes()), (3, 11));
        let mut seen = Vec::new();
        files
            .for_each(|path, executable, contents| {
                let mut text = Vec::new();
                contents.read_to_end(&mut text)?;
                seen.push((path.to_owned(), executable, text));
                Ok(())
            })
            .expect("read");
        assert_eq!(
            seen,
            [
                (PathBuf::from("site/six.py"), false, b"import os".to_vec()),
                (PathBuf::from("bin/tool"), true, b"#!".to_vec()),
                (PathBuf::from("empty"), false, Vec::new()),
            ]
        );
        // A reader that leaves part of a file unread does not shift the next.
        let mut firsts = Vec::new();
        files
            .for_each(|_, _, contents| {
                let mut one = [0u8; 1];
                let n = contents.read(&mut one)?;
                firsts.push(one[..n].to_vec());
                Ok(())
            })
            .expect("read");
        assert_eq!(firsts, [b"i".to_vec(), b"#".to_vec(), Vec::new()]);
        assert!(spooled(b"").expect("empty").is_empty());
        let mut refused = record("a", 0o644, b"x");
        refused.extend_from_slice(&u32::MAX.to_le_bytes());
        refused.extend_from_slice(&3u32.to_le_bytes());
        refused.extend_from_slice(b"no!");
        assert_eq!(spooled(&refused), Err("no!".to_owned()));
        let full = record("main", 0o755, b"abcdef");
        assert!(spooled(&full[..full.len() - 1]).is_err());
        assert!(spooled(&full[..3]).is_err());
        assert!(spooled(&record("../etc/passwd", 0o644, b"x")).is_err());
    }

    #[test]
    fn refusals_truncation_and_escapes_are_errors() {
        let mut refused = u32::MAX.to_le_bytes().to_vec();
        refused.extend_from_slice(&3u32.to_le_bytes());
        refused.extend_from_slice(b"no!");
        assert_eq!(parse(&refused), Err("no!".to_owned()));
        let full = record("main", 0o755, b"abcdef");
        assert!(parse(&full[..full.len() - 1]).is_err());
        assert!(parse(&record("../etc/passwd", 0o644, b"x")).is_err());
        assert!(parse(&record("/etc/passwd", 0o644, b"x")).is_err());
    }
}
