//! Reading a program's files from the command line: one or more files (the first is the
//! entry), or a directory and the name of its entry file.

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{Mode, SFlag};
use warden_core::ByteSize;
use warden_engine::{Cancellation, SourceFile};

/// Largest total size of a program's files.
pub(crate) const MAX_TOTAL: u64 = 16 << 20;
/// Most files read from a directory.
const MAX_FILES: usize = 1000;

/// Files given one by one: each keeps its file name (without the directories).
pub(crate) fn from_files(paths: &[PathBuf]) -> anyhow::Result<Vec<SourceFile>> {
    let mut budget = MAX_TOTAL;
    paths
        .iter()
        .enumerate()
        .map(|(index, path)| {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            let (code, executable) =
                read(path, &mut budget).map_err(|e| match missing_hint(index, path, &e) {
                    Some(hint) => anyhow::anyhow!("{e:#}; {hint}"),
                    None => e,
                })?;
            Ok(SourceFile {
                name,
                code,
                executable,
            })
        })
        .collect()
}

/// What the user most likely meant when a program file does not exist: every argument before
/// `--` is a program file, so `warden run prog.py a b` reads `a` as one (a file after the
/// first), and `--memory 10 MiB` reads `MiB` as one (a unit's name, wherever it is).
fn missing_hint(index: usize, path: &Path, e: &anyhow::Error) -> Option<&'static str> {
    let missing = e
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::NotFound);
    if !missing {
        return None;
    }
    let text = path.to_str().unwrap_or_default();
    let a_unit = !text.is_empty()
        && text.chars().all(|c| c.is_alphabetic())
        && (format!("1{text}").parse::<ByteSize>().is_ok()
            || warden_core::units::parse_duration(&format!("1{text}")).is_ok());
    if a_unit {
        Some("a limit's value and its unit are one argument (`--memory 10MiB`, `--wall-time 2s`)")
    } else if index > 0 {
        Some("the program's arguments go after `--` (`warden run prog.py -- ARGS...`)")
    } else {
        None
    }
}

/// One program file of `warden batch`, as [`from_files`] reads it, except that a FIFO (or
/// `<(...)`) is waited on only until `cancel`: `warden batch` catches the signals that end
/// it, and a worker stuck in `open(2)` of a FIFO with no writer kept it alive after them.
pub(crate) fn from_file_until(path: &Path, cancel: &Cancellation) -> anyhow::Result<SourceFile> {
    let shown = || super::printable(&path.display().to_string());
    // O_NONBLOCK: opening a FIFO returns at once, writer or not.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("opening {}", shown()))
        // Every argument is a program here: only a unit's name read as one has a hint.
        .map_err(|e| match missing_hint(0, path, &e) {
            Some(hint) => anyhow::anyhow!("{e:#}; {hint}"),
            None => e,
        })?;
    let metadata = file
        .metadata()
        .with_context(|| format!("reading {}", shown()))?;
    let mut budget = MAX_TOTAL;
    let code = if metadata.is_file() {
        read_within(file, path, &mut budget)?
    } else {
        read_within(UntilCancelled { file, cancel }, path, &mut budget)?
    };
    Ok(SourceFile {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()),
        code,
        executable: metadata.permissions().mode() & 0o111 != 0,
    })
}

/// A FIFO (or a device) opened with `O_NONBLOCK`, read as a blocking one that gives up once
/// `cancel` is cancelled. Before a writer comes, `poll(2)` does not report a FIFO (Linux
/// remembers that none has come since the open), so an absent writer is waited for, not read
/// as an empty file.
struct UntilCancelled<'a> {
    file: fs::File,
    cancel: &'a Cancellation,
}

/// How often, in milliseconds, a wait for a FIFO's writer looks whether the batch was
/// interrupted.
const POLL_MS: u16 = 50;

impl Read for UntilCancelled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.cancel.is_cancelled() {
                // Not `Interrupted`, which `read_to_end` retries.
                return Err(io::Error::other("warden batch was interrupted"));
            }
            let mut fds = [PollFd::new(self.file.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
            match self.file.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                read => return read,
            }
        }
    }
}

/// Every regular file under `dir` (symlinks are not followed), named by its path relative to
/// `dir`, with `entry` first.
///
/// Everything below `dir` is opened relative to its directory's descriptor, without following
/// a link, and read from the descriptor it was checked on: a directory another user can write
/// to (a submission folder graded by root) could otherwise swap a file or a subdirectory for a
/// link, or a FIFO, between the listing and the read, and put a host file in the workspace or
/// hang the run. An entry whose kind changes meanwhile is taken for what it is when opened.
pub(crate) fn from_directory(dir: &Path, entry: &str) -> anyhow::Result<Vec<SourceFile>> {
    let entry = entry_path(entry)?;
    let root = open_dir(dir)?;
    let mut found = Vec::new();
    let mut budget = MAX_TOTAL;
    walk(&root, dir, Path::new(""), &mut found, &mut budget)?;
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let position = found
        .iter()
        .position(|(rel, _)| *rel == entry)
        .with_context(|| format!("{} is not a file in {}", entry.display(), dir.display()))?;
    let first = found.remove(position);
    found.insert(0, first);
    Ok(found.into_iter().map(|(_, file)| file).collect())
}

/// `--entry`'s path as the walk names files: relative, without `.` parts (`./main.py`).
fn entry_path(entry: &str) -> anyhow::Result<PathBuf> {
    use std::path::Component;
    let mut path = PathBuf::new();
    for part in Path::new(entry).components() {
        match part {
            Component::Normal(name) => path.push(name),
            Component::CurDir => {}
            _ => bail!(
                "--entry {entry:?} must be a path inside the directory (no '..', no leading '/')"
            ),
        }
    }
    if path.as_os_str().is_empty() {
        bail!("--entry {entry:?} names no file");
    }
    Ok(path)
}

/// Opens the directory the user named, for listing.
fn open_dir(dir: &Path) -> anyhow::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    nix::fcntl::open(dir, flags, Mode::empty())
        .with_context(|| format!("reading {}", super::printable(&dir.display().to_string())))
}

/// Reads every regular file below `dir` (the directory `rel` of `root`, shown as `shown`) into
/// `out`, within `budget`.
fn walk(
    dir: &OwnedFd,
    root: &Path,
    rel: &Path,
    out: &mut Vec<(PathBuf, SourceFile)>,
    budget: &mut u64,
) -> anyhow::Result<()> {
    let shown = || super::printable(&root.join(rel).display().to_string());
    let mut listing = nix::dir::Dir::from_fd(
        nix::unistd::dup(dir).with_context(|| format!("reading {}", shown()))?,
    )
    .with_context(|| format!("reading {}", shown()))?;
    let mut names = Vec::new();
    for entry in listing.iter() {
        let entry = entry.with_context(|| format!("reading {}", shown()))?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(std::ffi::OsStr::from_bytes(name).to_os_string());
        }
    }
    for name in names {
        let path = rel.join(&name);
        let Some(utf8) = path.to_str() else {
            bail!(
                "{} is not a UTF-8 name: the program's files are named by text",
                super::printable(&root.join(&path).display().to_string())
            );
        };
        let utf8 = utf8.to_owned();
        // O_NONBLOCK: a FIFO put here opens at once and is then seen for what it is.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let fd = match openat(dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            // A link (not followed), or gone since the listing.
            Err(Errno::ELOOP | Errno::ENOENT) => continue,
            // A socket, or a device without its driver.
            Err(Errno::ENXIO | Errno::EOPNOTSUPP | Errno::ENODEV) => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "opening {}",
                        super::printable(&root.join(&path).display().to_string())
                    )
                })
            }
        };
        let st = nix::sys::stat::fstat(&fd).with_context(|| {
            format!(
                "reading {}",
                super::printable(&root.join(&path).display().to_string())
            )
        })?;
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            // Listed through the descriptor it was checked on.
            SFlag::S_IFDIR => walk(&fd, root, &path, out, budget)?,
            SFlag::S_IFREG => {
                if out.len() == MAX_FILES {
                    bail!("{} holds more than {MAX_FILES} files", root.display());
                }
                // Back to blocking reads: a regular file never blocks, and the flag is the
                // open file's.
                let file = fs::File::from(fd);
                let code = read_within(&file, &root.join(&path), budget)?;
                out.push((
                    path,
                    SourceFile {
                        code,
                        name: Some(utf8),
                        executable: st.st_mode & 0o111 != 0,
                    },
                ));
            }
            // A FIFO, a device: not a program file.
            _ => {}
        }
    }
    Ok(())
}

/// The contents of `path`, and whether any of its executable bits is set (a script the program
/// runs by its path must stay executable in the sandbox).
pub(crate) fn read(path: &Path, budget: &mut u64) -> anyhow::Result<(Vec<u8>, bool)> {
    let shown = || super::printable(&path.display().to_string());
    let file = fs::File::open(path).with_context(|| format!("opening {}", shown()))?;
    let mode = file
        .metadata()
        .with_context(|| format!("reading {}", shown()))?
        .permissions()
        .mode();
    let code = read_within(file, path, budget)?;
    Ok((code, mode & 0o111 != 0))
}

/// What `file` (at `path`) holds, taken from `budget`: the most the program's files may
/// still hold.
fn read_within(file: impl Read, path: &Path, budget: &mut u64) -> anyhow::Result<Vec<u8>> {
    let code = match warden_core::bounded_file::read_from(file, *budget) {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::FileTooLarge => bail!(
            "the program's files are larger than {} in total",
            ByteSize(MAX_TOTAL)
        ),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("reading {}", super::printable(&path.display().to_string()))
            })
        }
    };
    *budget -= code.len() as u64;
    Ok(code)
}
