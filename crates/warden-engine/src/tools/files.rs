//! The `files` built-in tool: list, read, write and delete files in a caller's own workspace,
//! a directory under the tools' state directory kept between calls (docs/tools.md#files).
//!
//! Runs in the engine's process, on the host. Every operation walks the path one component at
//! a time from the workspace's descriptor with `O_NOFOLLOW` (DESIGN.md §7.5): a link, wherever
//! it came from, is refused rather than followed, and `..` never reaches the walk.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::Serialize;
use serde_json::{json, Value};

/// The largest file `read` returns.
pub(crate) const MAX_READ: u64 = 1 << 20;
/// The most directories a path goes through to its entry: a directory this deep is listed,
/// and the entries it holds are read, written and deleted.
const MAX_DEPTH: usize = 32;
/// Most entries a workspace may hold (files and directories).
const MAX_ENTRIES: u64 = 10_000;
/// Most entries one listing answers. A session's programs fill its workspace as they like:
/// 65,000 files of 249-byte names made one listing a 97 MB answer, held whole while its
/// client read it, and eight of them at once held 850 MB of the server's memory.
pub const MAX_LISTED: usize = 1_000;

/// A files operation that cannot be done; the caller's mistake, shown as the tool's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilesError {
    /// The path is not a relative path inside the workspace, or not one warden takes.
    #[error("{path:?} is refused: {why}")]
    BadPath {
        /// The path given.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Nothing is there.
    #[error("{0:?} does not exist")]
    NotFound(String),
    /// A link is on the way (never followed).
    #[error("{0:?} is a link; links are not followed")]
    Link(String),
    /// The path names a directory where a file is needed, or the reverse.
    #[error("{path:?} is {what}")]
    WrongKind {
        /// The path.
        path: String,
        /// What it is instead.
        what: &'static str,
    },
    /// The file is larger than `read` returns.
    #[error("{path:?} has {size} bytes, more than the {max} a read returns")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: u64,
        /// The most a read returns (1 MiB).
        max: u64,
    },
    /// The file was cut shorter while it was read (a download sends the size it had when
    /// opened).
    #[error("{path:?} was cut to {read} bytes while it was read; it had {size} when opened")]
    Shrunk {
        /// The path.
        path: String,
        /// Its size when it was opened.
        size: u64,
        /// The bytes read before its end.
        read: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{0:?} is not UTF-8 text")]
    Binary(String),
    /// The write would pass the workspace's quota.
    #[error(
        "writing {path:?} would use {needed} bytes, more than the workspace's quota of {quota}"
    )]
    Quota {
        /// The path.
        path: String,
        /// What the workspace would hold.
        needed: u64,
        /// Its quota.
        quota: u64,
    },
    /// The write would pass the most entries a workspace holds.
    #[error(
        "writing {path:?} would make {entries} files and directories in the workspace, more \
         than the {max} it may hold"
    )]
    TooManyEntries {
        /// The path.
        path: String,
        /// What the workspace would hold.
        entries: u64,
        /// The most it may hold.
        max: u64,
    },
    /// The workspace's filesystem is full (a session's or a volume's quota).
    #[error("no space left in the workspace writing {0:?}")]
    NoSpace(String),
    /// A required field is missing.
    #[error("{0}")]
    Input(String),
    /// A directory that still holds files.
    #[error("{0:?} is a directory that is not empty")]
    NotEmpty(String),
    /// The host refused (not the caller's fault).
    #[error("{step} {path:?}: {errno}")]
    Host {
        /// What was being done.
        step: &'static str,
        /// The path.
        path: String,
        /// Why.
        errno: Errno,
    },
}

impl FilesError {
    /// Whether warden (its host), not the caller, failed.
    pub fn is_internal(&self) -> bool {
        matches!(self, FilesError::Host { .. })
    }
}

/// The workspaces of all callers, under one directory.
#[derive(Debug)]
pub(crate) struct Workspaces {
    root: PathBuf,
    quota: u64,
    /// One operation at a time in this process, so that a quota check and its write are not
    /// interleaved with another write; other processes (the CLI, `warden mcp`, a server share
    /// the local caller's workspace) wait for the workspace's `flock`.
    lock: Mutex<()>,
}

impl Workspaces {
    /// The workspaces under `root` (created when first used), each holding at most `quota`
    /// bytes.
    pub(crate) fn new(root: PathBuf, quota: u64) -> Self {
        Self {
            root,
            quota,
            lock: Mutex::new(()),
        }
    }

    /// Runs one operation of the `files` tool for `caller` (an API token's name; `None` for
    /// a local caller) and answers in JSON.
    pub(crate) fn operate(&self, caller: Option<&str>, input: &Value) -> Result<Value, FilesError> {
        let _one = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let operation = input["operation"].as_str().unwrap_or_default();
        let path = input["path"].as_str().unwrap_or_default();
        let workspace =
            nix::fcntl::Flock::lock(self.open(caller)?, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, errno)| FilesError::Host {
                    step: "locking",
                    path: self.root.join(caller_dir(caller)).display().to_string(),
                    errno,
                })?;
        let workspace: &OwnedFd = &workspace;
        match operation {
            "list" => list(workspace, path, input["after"].as_str().unwrap_or_default()),
            "read" => read(workspace, path),
            "write" => {
                let content = input["content"].as_str().ok_or_else(|| {
                    FilesError::Input("write needs \"content\" (the file's text)".into())
                })?;
                self.write(workspace, path, content.as_bytes())
            }
            "delete" => delete(workspace, path),
            other => Err(FilesError::Input(format!(
                "unknown operation {other:?}: list, read, write or delete"
            ))),
        }
    }

    /// The caller's workspace directory, created on first use, opened without following links.
    fn open(&self, caller: Option<&str>) -> Result<OwnedFd, FilesError> {
        let dir = self.root.join(caller_dir(caller));
        let host = |step, errno| FilesError::Host {
            step,
            path: dir.display().to_string(),
            errno,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| host("creating", io_errno(&e)))?;
        nix::fcntl::open(
            &dir,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
            Mode::empty(),
        )
        .map_err(|e| host("opening", e))
    }

    /// Writes a file after checking what the workspace would then hold: the quota and the
    /// entries it would make (its missing directories, the file if new). Nothing is made for a
    /// write that is refused: made first, a refused write's directories stayed, past the cap.
    fn write(&self, workspace: &OwnedFd, path: &str, content: &[u8]) -> Result<Value, FilesError> {
        let parts = components(path)?;
        let (name, parents) = parts.split_last().ok_or_else(|| bad(path))?;
        let (deepest, missing) = walk_existing(workspace, parents, path)?;
        let existing = match missing {
            0 => stat(&deepest, name, path)?,
            _ => None,
        };
        let old = match existing {
            Some(st) if kind(&st) == "file" => st.st_size as u64,
            Some(st) => {
                return Err(FilesError::WrongKind {
                    path: path.into(),
                    what: article(kind(&st)),
                })
            }
            None => 0,
        };
        let (used, entries) = usage(workspace, path)?;
        let needed = used - old.min(used) + content.len() as u64;
        if needed > self.quota {
            return Err(FilesError::Quota {
                path: path.into(),
                needed,
                quota: self.quota,
            });
        }
        let made = missing as u64 + u64::from(existing.is_none());
        if entries + made > MAX_ENTRIES {
            return Err(FilesError::TooManyEntries {
                path: path.into(),
                entries: entries + made,
                max: MAX_ENTRIES,
            });
        }
        write_making(workspace, parents, path, |dir| {
            replace(dir, name, path, content, Mode::from_bits_truncate(0o600))
        })?;
        Ok(json!({"written": path, "bytes": content.len()}))
    }
}

/// One entry of a directory, for a session's file listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    /// Its name in the directory.
    pub name: String,
    /// `file`, `directory`, `link` or `other`.
    pub kind: &'static str,
    /// Its size in bytes (files only; 0 otherwise).
    pub size: u64,
}

/// Opens `root`, a workspace directory on the host, for the operations below.
pub(crate) fn open_root(root: &Path) -> Result<OwnedFd, FilesError> {
    nix::fcntl::open(
        root,
        OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY,
        Mode::empty(),
    )
    .map_err(|errno| FilesError::Host {
        step: "opening",
        path: root.display().to_string(),
        errno,
    })
}

/// One page of a directory's entries, sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// At most [`MAX_LISTED`] entries, the first by name after the page's start.
    pub entries: Vec<FileEntry>,
    /// Whether the directory has entries after the last one here: the next page starts after
    /// its name.
    pub truncated: bool,
    /// Entries left out: past the first [`MAX_LISTED`] of a group of names answered alike
    /// (`first_names`), which no page can start inside.
    pub omitted: u64,
}

impl Listing {
    /// The page as every API answers it: `omitted` only when some were.
    pub fn to_json(&self, path: &str) -> Value {
        let mut page = json!({"path": path, "entries": self.entries, "truncated": self.truncated});
        if self.omitted > 0 {
            page["omitted"] = self.omitted.into();
        }
        page
    }
}

/// The entries of the directory `path` ("" or "." for the workspace itself) whose names sort
/// after `after` ("" for the first page), sorted by name, at most [`MAX_LISTED`]. A name that
/// is not UTF-8 is answered, and sorted, with U+FFFD for its stray bytes (a name no file
/// operation reaches: they take UTF-8): sorting by what is answered keeps each page after
/// the one before, so that following `truncated` always ends.
pub(crate) fn list_entries(
    workspace: &OwnedFd,
    path: &str,
    after: &str,
) -> Result<Listing, FilesError> {
    let parts = if path.is_empty() || path == "." {
        Vec::new()
    } else {
        components(path)?
    };
    if parts.len() > MAX_DEPTH {
        return Err(FilesError::BadPath {
            path: path.into(),
            why: "its entries would be inside more than 32 directories",
        });
    }
    let dir = walk(workspace, &parts, path)?;
    let (names, truncated, omitted) = first_names(&dir, path, after)?;
    let mut entries = Vec::with_capacity(names.len());
    for (name, raw) in names {
        // Gone since it was read: the page is one shorter.
        let Some(st) = stat(&dir, OsStr::from_bytes(&raw), path)? else {
            continue;
        };
        entries.push(FileEntry {
            name,
            kind: kind(&st),
            size: if kind(&st) == "file" {
                st.st_size as u64
            } else {
                0
            },
        });
    }
    Ok(Listing {
        entries,
        truncated,
        omitted,
    })
}

/// An entry's name as a listing answers it, and the bytes that name it.
type Named = (String, Vec<u8>);

/// The first [`MAX_LISTED`] names of an open directory after `after`, in order (as answered,
/// with the bytes that name the entry), and whether more follow. Holds no more names than it
/// answers, whatever the directory holds. Names that are answered alike (stray bytes that each
/// read as U+FFFD) stay on one page: the next starts after that name, and would have skipped
/// the rest of them (regression hunt); a page grows by at most [`MAX_LISTED`] such names, and
/// says how many more of them it left out (bug hunt: they were dropped without a word).
fn first_names(
    dir: &OwnedFd,
    path: &str,
    after: &str,
) -> Result<(Vec<Named>, bool, u64), FilesError> {
    // The largest kept name on top, to make room for a smaller one.
    let mut kept = std::collections::BinaryHeap::with_capacity(MAX_LISTED + 1);
    each_name(dir, path, |name, raw| {
        if *name <= *after {
            return;
        }
        let named = (name.into_owned(), raw.to_vec());
        if kept.len() <= MAX_LISTED {
            kept.push(named);
        } else if kept.peek().is_some_and(|largest| named < *largest) {
            kept.pop();
            kept.push(named);
        }
    })?;
    let truncated = kept.len() > MAX_LISTED;
    let mut names = kept.into_sorted_vec();
    if !truncated {
        return Ok((names, false, 0));
    }
    let next = names.pop().map(|(name, _)| name);
    let last = names.last().map(|(name, _)| name.clone());
    if next.is_none() || next != last {
        return Ok((names, true, 0));
    }
    // The page ends inside a group of names answered alike: the whole group, in order, up to
    // MAX_LISTED of it.
    let last = last.unwrap_or_default();
    let (mut group, mut omitted) = (Vec::new(), 0);
    each_name(dir, path, |name, raw| {
        if *name == *last {
            if group.len() < MAX_LISTED {
                group.push((name.into_owned(), raw.to_vec()));
            } else {
                omitted += 1;
            }
        }
    })?;
    group.sort();
    names.retain(|(name, _)| *name != last);
    names.extend(group);
    Ok((names, true, omitted))
}

/// Calls `each` with every entry's name of an open directory, as answered and as its bytes.
fn each_name(
    dir: &OwnedFd,
    path: &str,
    mut each: impl FnMut(std::borrow::Cow<'_, str>, &[u8]),
) -> Result<(), FilesError> {
    let listing = Dir::from_fd(reopen(dir, path)?).map_err(|e| at(path, "listing", e))?;
    for entry in listing {
        let entry = entry.map_err(|e| at(path, "listing", e))?;
        let raw = entry.file_name().to_bytes();
        if raw != b"." && raw != b".." {
            each(String::from_utf8_lossy(raw), raw);
        }
    }
    Ok(())
}

/// The bytes of the regular file `path`, at most `max` of them (a larger file is refused).
pub(crate) fn read_bytes(workspace: &OwnedFd, path: &str, max: u64) -> Result<Vec<u8>, FilesError> {
    let (file, size) = open_file(workspace, path, max)?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| at(path, "reading", io_errno(&e)))?;
    if bytes.len() as u64 > max {
        return Err(FilesError::TooLarge {
            path: path.into(),
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

/// Opens the regular file `path` for reading, without following a link at any step, and
/// answers it with its size, at most `max` (a larger file is refused); for a caller that reads
/// it a piece at a time instead of holding it whole.
pub(crate) fn open_file(
    workspace: &OwnedFd,
    path: &str,
    max: u64,
) -> Result<(std::fs::File, u64), FilesError> {
    let parts = file_components(path)?;
    let (name, parents) = parts.split_last().ok_or_else(|| bad(path))?;
    let dir = walk(workspace, parents, path)?;
    // O_NONBLOCK: a FIFO the sandbox planted must not block the host's open.
    let fd = match openat(
        &dir,
        *name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // A special file's open fails in its own ways (a socket's ENXIO, a device's ENODEV or
        // EACCES on a `nodev` mount): say what it is rather than pass on the host's errno.
        Err(errno) => {
            return Err(match at(path, "reading", errno) {
                host @ FilesError::Host { .. } => match stat(&dir, name, path)? {
                    Some(st) if kind(&st) != "file" => FilesError::WrongKind {
                        path: path.into(),
                        what: article(kind(&st)),
                    },
                    _ => host,
                },
                refused => refused,
            })
        }
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| at(path, "reading", e))?;
    if kind(&st) != "file" {
        return Err(FilesError::WrongKind {
            path: path.into(),
            what: article(kind(&st)),
        });
    }
    let size = st.st_size as u64;
    if size > max {
        return Err(FilesError::TooLarge {
            path: path.into(),
            size,
            max,
        });
    }
    Ok((std::fs::File::from(fd), size))
}

/// Writes `content` to `path`, creating the missing directories and replacing a regular
/// file (keeping its permissions); the workspace's filesystem is the quota (ENOSPC is
/// [`FilesError::NoSpace`]). The content goes to a new file beside it, renamed over `path`
/// once whole: a write that fails leaves what was there, and nothing that the workspace's
/// own programs plant at `path` meanwhile (a FIFO, whose open would wait for a reader, a
/// link) is ever opened.
pub(crate) fn write_bytes(
    workspace: &OwnedFd,
    path: &str,
    content: &[u8],
) -> Result<(), FilesError> {
    let parts = file_components(path)?;
    let (name, parents) = parts.split_last().ok_or_else(|| bad(path))?;
    write_making(workspace, parents, path, |dir| {
        let existing = stat(dir, name, path)?;
        if let Some(st) = &existing {
            if kind(st) != "file" {
                return Err(FilesError::WrongKind {
                    path: path.into(),
                    what: article(kind(st)),
                });
            }
        }
        let mode = existing.map_or(0o644, |st| st.st_mode & 0o777);
        replace(dir, name, path, content, Mode::from_bits_truncate(mode))
    })
}

/// Opens (making what is missing) the directory `parents` below `workspace` and has `write`
/// write `path`'s file in it; when either fails, the directories made on the way go again.
fn write_making(
    workspace: &OwnedFd,
    parents: &[&OsStr],
    path: &str,
    write: impl FnOnce(&OwnedFd) -> Result<(), FilesError>,
) -> Result<(), FilesError> {
    let mut made = Made::default();
    let written =
        walk_making(workspace, parents, path, Some(&mut made)).and_then(|dir| write(&dir));
    if written.is_err() {
        made.undo();
    }
    written
}

/// Writes `content` to a new file in `dir` and renames it over `name` (the caller's `path`):
/// whole or not at all, and never opening what is at `name`.
fn replace(
    dir: &OwnedFd,
    name: &OsStr,
    path: &str,
    content: &[u8],
    mode: Mode,
) -> Result<(), FilesError> {
    let no_space = |errno: Errno| match errno {
        Errno::ENOSPC | Errno::EDQUOT => FilesError::NoSpace(path.into()),
        errno => at(path, "writing", errno),
    };
    let (fd, temporary) = new_file_beside(dir, name, mode).map_err(no_space)?;
    let mut file = std::fs::File::from(fd);
    let written = file
        .write_all(content)
        .and_then(|()| file.sync_data())
        .map_err(|e| no_space(io_errno(&e)))
        .and_then(|()| {
            nix::fcntl::renameat(dir, temporary.as_os_str(), dir, name).map_err(|e| match e {
                // Made a directory meanwhile.
                Errno::EISDIR | Errno::ENOTEMPTY | Errno::EEXIST => FilesError::WrongKind {
                    path: path.into(),
                    what: "a directory",
                },
                e => at(path, "writing", e),
            })
        });
    if written.is_err() {
        let _ = unlinkat(dir, temporary.as_os_str(), UnlinkatFlags::NoRemoveDir);
    }
    written
}

/// A new, empty file in `dir` under a hidden name of its own (`.<name>.upload-<pid>-<n>`),
/// open for writing: created, never an existing entry.
fn new_file_beside(dir: &OwnedFd, name: &OsStr, mode: Mode) -> Result<(OwnedFd, PathBuf), Errno> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // The name's last bytes are enough to tell whose it is; NAME_MAX bounds the whole.
    let tail = &name.as_bytes()[name.len().saturating_sub(180)..];
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut temporary = b".".to_vec();
        temporary.extend_from_slice(tail);
        temporary.extend_from_slice(format!(".upload-{}-{n}", std::process::id()).as_bytes());
        let temporary = PathBuf::from(OsStr::from_bytes(&temporary));
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir, temporary.as_os_str(), flags, mode) {
            // Planted by the workspace's programs under this very name: another.
            Err(Errno::EEXIST) => continue,
            opened => return opened.map(|fd| (fd, temporary)),
        }
    }
}

/// Deletes the file, link or empty directory `path`.
pub(crate) fn delete_path(workspace: &OwnedFd, path: &str) -> Result<(), FilesError> {
    delete(workspace, path).map(|_| ())
}

/// The directory name of a caller's workspace: the token's name when it is plain, else `x`
/// and its hex; `local` for a caller without a token (the CLI, MCP over stdio). A plain name
/// of that very form (`x63692e626f74`) is written in hex too, or it would share the directory
/// of the name it spells (`ci.bot`).
fn caller_dir(caller: Option<&str>) -> String {
    let spells_hex = |name: &str| {
        name.strip_prefix('x')
            .is_some_and(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    };
    match caller {
        None => "local".to_owned(),
        Some(name)
            if !name.is_empty()
                && !spells_hex(name)
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            format!("token-{name}")
        }
        Some(name) => format!(
            "token-x{}",
            name.bytes().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

fn list(workspace: &OwnedFd, path: &str, after: &str) -> Result<Value, FilesError> {
    Ok(list_entries(workspace, path, after)?.to_json(path))
}

fn read(workspace: &OwnedFd, path: &str) -> Result<Value, FilesError> {
    let bytes = read_bytes(workspace, path, MAX_READ)?;
    let text = String::from_utf8(bytes).map_err(|_| FilesError::Binary(path.into()))?;
    Ok(json!({"path": path, "content": text}))
}

fn delete(workspace: &OwnedFd, path: &str) -> Result<Value, FilesError> {
    let parts = components(path)?;
    let (name, parents) = parts.split_last().ok_or_else(|| bad(path))?;
    let dir = walk(workspace, parents, path)?;
    let st = stat(&dir, name, path)?.ok_or_else(|| FilesError::NotFound(path.into()))?;
    let flag = if kind(&st) == "directory" {
        UnlinkatFlags::RemoveDir
    } else {
        UnlinkatFlags::NoRemoveDir
    };
    unlinkat(&dir, *name, flag).map_err(|e| match e {
        Errno::ENOTEMPTY | Errno::EEXIST => FilesError::NotEmpty(path.into()),
        e => at(path, "deleting", e),
    })?;
    Ok(json!({"deleted": path}))
}

/// [`components`] of a path that must name a file: one ending in `/` names a directory (a
/// read of `a.txt/` read the file `a.txt`, where the system answers ENOTDIR).
fn file_components(path: &str) -> Result<Vec<&OsStr>, FilesError> {
    if path.ends_with('/') {
        return Err(FilesError::BadPath {
            path: path.into(),
            why: "it ends with '/', which names a directory, not a file",
        });
    }
    components(path)
}

/// The normal components of a relative path, or the refusal.
fn components(path: &str) -> Result<Vec<&OsStr>, FilesError> {
    let refuse = |why| {
        Err(FilesError::BadPath {
            path: path.into(),
            why,
        })
    };
    if path.len() > 1024 {
        return refuse("longer than 1024 bytes");
    }
    if path.contains('\0') {
        return refuse("it holds a NUL byte");
    }
    let mut parts = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(name) if name.len() <= 255 => parts.push(name),
            Component::Normal(_) => return refuse("a part of it is longer than 255 bytes"),
            Component::CurDir => {}
            _ => {
                return refuse("not a relative path inside the workspace (no '..', no leading '/')")
            }
        }
    }
    if parts.is_empty() {
        return refuse("it names no file (empty)");
    }
    // An entry inside at most MAX_DEPTH directories.
    if parts.len() > MAX_DEPTH + 1 {
        return refuse("inside more than 32 directories");
    }
    Ok(parts)
}

fn bad(path: &str) -> FilesError {
    FilesError::BadPath {
        path: path.into(),
        why: "not a file's path",
    }
}

/// Opens the deepest directory of `parts` below `workspace` that exists, as [`walk`] does
/// without making any; with how many of `parts` are missing below it.
fn walk_existing(
    workspace: &OwnedFd,
    parts: &[&OsStr],
    path: &str,
) -> Result<(OwnedFd, usize), FilesError> {
    let mut dir = reopen(workspace, path)?;
    for (i, part) in parts.iter().enumerate() {
        if stat(&dir, part, path)?.is_none() {
            return Ok((dir, parts.len() - i));
        }
        dir = walk(&dir, std::slice::from_ref(part), path)?;
    }
    Ok((dir, 0))
}

/// Opens the directory `parts` below `workspace`, one component at a time, never following a
/// link.
fn walk(workspace: &OwnedFd, parts: &[&OsStr], path: &str) -> Result<OwnedFd, FilesError> {
    walk_making(workspace, parts, path, None)
}

/// The directories a write made on its way ([`walk_making`]), to be removed again when the
/// write fails: a refused upload leaves the workspace as it found it.
#[derive(Default)]
struct Made(Vec<(OwnedFd, std::ffi::OsString)>);

impl Made {
    /// Removes the directories made, the deepest first; one that the workspace's programs
    /// filled meanwhile stays (its removal fails, as it should).
    fn undo(self) {
        for (parent, name) in self.0.into_iter().rev() {
            let _ = unlinkat(&parent, name.as_os_str(), UnlinkatFlags::RemoveDir);
        }
    }
}

/// [`walk`], making the missing directories when `made` is given, and noting there each it
/// made (with its parent, opened).
fn walk_making(
    workspace: &OwnedFd,
    parts: &[&OsStr],
    path: &str,
    mut made: Option<&mut Made>,
) -> Result<OwnedFd, FilesError> {
    let mut dir = reopen(workspace, path)?;
    for part in parts {
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let next = match (
            openat(&dir, *part, flags, Mode::empty()),
            made.as_deref_mut(),
        ) {
            (Err(Errno::ENOENT), Some(made)) => {
                // EEXIST: another call (or the program) made it meanwhile; open it as any.
                match mkdirat(&dir, *part, Mode::from_bits_truncate(0o700)) {
                    Ok(()) => made.0.push((reopen(&dir, path)?, part.to_os_string())),
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(at(path, "creating a directory for", e)),
                }
                openat(&dir, *part, flags, Mode::empty())
            }
            (other, _) => other,
        };
        dir = match next {
            Ok(fd) => fd,
            // O_DIRECTORY is checked on the link itself: a link to a directory fails as
            // "not a directory". Say what it is.
            Err(Errno::ENOTDIR | Errno::ELOOP)
                if stat(&dir, part, path)?.is_some_and(|st| kind(&st) == "link") =>
            {
                return Err(FilesError::Link(path.into()))
            }
            Err(e) => return Err(at(path, "opening", e)),
        };
    }
    Ok(dir)
}

/// The directory `fd` opened again: a description of its own, whose reading position no other
/// listing moves (a `dup` shares it, and a second listing through one workspace descriptor
/// found its directory empty).
fn reopen(fd: &OwnedFd, path: &str) -> Result<OwnedFd, FilesError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    openat(fd, ".", flags, Mode::empty()).map_err(|e| at(path, "opening", e))
}

/// What is at `name` in `dir`, without following a link; `None` when nothing is.
fn stat(
    dir: &OwnedFd,
    name: &OsStr,
    path: &str,
) -> Result<Option<nix::sys::stat::FileStat>, FilesError> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(at(path, "examining", e)),
    }
}

/// The bytes held and the entries in a workspace. Depth first, with one open descriptor per
/// level of the walk and the names of the subdirectories still to measure: a descriptor per
/// pending directory ran out of them (`EMFILE`) in a workspace of 1 000 sibling directories.
fn usage(workspace: &OwnedFd, path: &str) -> Result<(u64, u64), FilesError> {
    let mut sizes = (0, 0);
    let root = reopen(workspace, path)?;
    let subdirectories = measure(&root, path, &mut sizes)?;
    let mut levels = vec![(root, subdirectories)];
    while let Some((dir, pending)) = levels.last_mut() {
        let Some(name) = pending.pop() else {
            levels.pop();
            continue;
        };
        let flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
        let child = match openat(&*dir, name.as_os_str(), flags, Mode::empty()) {
            Ok(child) => child,
            Err(e) => return Err(at(path, "measuring", e)),
        };
        let subdirectories = measure(&child, path, &mut sizes)?;
        levels.push((child, subdirectories));
    }
    Ok(sizes)
}

/// Adds the files' bytes and the entries of the directory `dir` to `sizes` (bytes, entries);
/// answers the names of its subdirectories.
fn measure(
    dir: &OwnedFd,
    path: &str,
    (bytes, entries): &mut (u64, u64),
) -> Result<Vec<std::ffi::OsString>, FilesError> {
    let listing = Dir::from_fd(reopen(dir, path)?).map_err(|e| at(path, "measuring", e))?;
    let mut subdirectories = Vec::new();
    for entry in listing {
        let entry = entry.map_err(|e| at(path, "measuring", e))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let Some(st) = stat(dir, name, path)? else {
            continue;
        };
        *entries += 1;
        match kind(&st) {
            "file" => *bytes += st.st_size as u64,
            "directory" => subdirectories.push(name.to_owned()),
            _ => {}
        }
    }
    Ok(subdirectories)
}

fn kind(st: &nix::sys::stat::FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => "file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFLNK => "link",
        _ => "other",
    }
}

fn article(kind: &'static str) -> &'static str {
    match kind {
        "file" => "a file",
        "directory" => "a directory",
        "link" => "a link",
        _ => "not a regular file",
    }
}

/// The error for a failed step on `path`: the caller's when it is about what is (or is not)
/// there, the host's otherwise.
fn at(path: &str, step: &'static str, errno: Errno) -> FilesError {
    match errno {
        Errno::ENOENT => FilesError::NotFound(path.into()),
        Errno::ELOOP => FilesError::Link(path.into()),
        Errno::ENOTDIR => FilesError::WrongKind {
            path: path.into(),
            what: "not a directory (a file is on the way)",
        },
        Errno::EISDIR => FilesError::WrongKind {
            path: path.into(),
            what: "a directory",
        },
        // Making a directory (or any entry) in a full workspace: its quota, not the host's.
        Errno::ENOSPC | Errno::EDQUOT => FilesError::NoSpace(path.into()),
        // What opening a socket (ENXIO; EOPNOTSUPP on some filesystems) or a device without
        // its driver (ENODEV) answers: not a file warden reads or writes.
        Errno::ENXIO | Errno::EOPNOTSUPP | Errno::ENODEV => FilesError::WrongKind {
            path: path.into(),
            what: "not a regular file",
        },
        errno => FilesError::Host {
            step,
            path: path.into(),
            errno,
        },
    }
}

fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(quota: u64) -> (tempfile::TempDir, Workspaces) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = Workspaces::new(dir.path().join("files"), quota);
        (dir, ws)
    }

    fn op(ws: &Workspaces, caller: Option<&str>, input: Value) -> Result<Value, FilesError> {
        ws.operate(caller, &input)
    }

    /// Hunt sessions 1: a listing held every entry of a directory its programs filled (65,000
    /// files made a 97 MB answer). It answers pages of at most `MAX_LISTED`, in order, each
    /// after the one before, and following `truncated` reaches every entry once, names that
    /// are not UTF-8 included, and ends.
    #[test]
    fn a_large_directory_is_listed_a_bounded_page_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut made = Vec::new();
        for i in 0..(2 * MAX_LISTED + 7) {
            let name = format!("f{i:05}");
            std::fs::write(dir.path().join(&name), b"abc").expect("write");
            made.push(name);
        }
        // Names answered alike (each stray byte reads as U+FFFD) across the first page's end:
        // none skipped.
        for i in 0..6u8 {
            let raw = [b'f', b'0', b'0', b'9', b'9', b'7', 0x80 + i];
            std::fs::write(dir.path().join(OsStr::from_bytes(&raw)), b"x").expect("write");
            made.push(String::from_utf8_lossy(&raw).into_owned());
        }
        // Names whose stray bytes sort after U+FFFD's encoding: listed as U+FFFD.
        for i in 0..5u8 {
            let raw = [b'z', 0xff, 0xfe, b'0' + i];
            std::fs::write(dir.path().join(OsStr::from_bytes(&raw)), b"x").expect("write");
            made.push(String::from_utf8_lossy(&raw).into_owned());
        }
        std::fs::create_dir(dir.path().join("d")).expect("mkdir");
        made.push("d".into());
        made.sort();
        let root = open_root(dir.path()).expect("open");
        let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
        loop {
            let page = list_entries(&root, "", &after).expect("listed");
            pages += 1;
            assert!(page.entries.len() <= 2 * MAX_LISTED, "page {pages}");
            seen.extend(page.entries.iter().map(|e| e.name.clone()));
            if !page.truncated {
                break;
            }
            after = page
                .entries
                .last()
                .expect("a truncated page has entries")
                .name
                .clone();
            assert!(pages < 10, "the pages do not end");
        }
        assert_eq!((pages, seen.len()), (3, made.len()));
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "in order");
        assert_eq!(seen, made, "every entry once, in order");
        let first = list_entries(&root, "", "").expect("listed");
        assert_eq!(first.entries[0].kind, "directory");
        assert_eq!((first.entries[1].kind, first.entries[1].size), ("file", 3));
    }

    /// Hunt sessions 2: past 1,000 names answered alike, the group's rest was dropped without
    /// a word (2,048 files listed as 1,784). A page holds 1,000 of the group and says how many
    /// it left out; the next page goes on after the group.
    #[test]
    fn names_alike_past_a_page_are_counted_as_omitted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let alike = MAX_LISTED + 264;
        for i in 0..alike {
            // Two stray continuation bytes, each read as U+FFFD: every name is answered
            // "\u{fffd}\u{fffd}".
            let raw = [0x80 + (i / 32) as u8, 0x80 + (i % 32) as u8];
            std::fs::write(dir.path().join(OsStr::from_bytes(&raw)), b"x").expect("write");
        }
        std::fs::write(dir.path().join("a"), b"x").expect("write");
        std::fs::write(dir.path().join("\u{ffff}z"), b"x").expect("write");
        let root = open_root(dir.path()).expect("open");
        let first = list_entries(&root, "", "").expect("listed");
        assert_eq!(first.entries.len(), 1 + MAX_LISTED);
        assert_eq!((first.truncated, first.omitted), (true, 264));
        assert_eq!(first.to_json("")["omitted"], 264);
        let after = &first.entries.last().expect("entries").name;
        let second = list_entries(&root, "", after).expect("listed");
        let names: Vec<_> = second.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!((names, second.truncated), (vec!["\u{ffff}z"], false));
        assert!(
            second.to_json("").get("omitted").is_none(),
            "only when some were"
        );
    }

    /// The workspace's own programs swap a FIFO and a file at the path being written, over
    /// and over: every write returns (one that opened the FIFO would wait for a reader for
    /// ever, holding a server thread), as a replaced file or a refusal naming the FIFO.
    #[test]
    fn a_fifo_planted_at_the_path_never_blocks_a_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let swapper = {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let race = root.join("race");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&race);
                    let _ = nix::unistd::mkfifo(&race, Mode::from_bits_truncate(0o600));
                    let _ = std::fs::remove_file(&race);
                    let _ = std::fs::write(&race, b"x");
                }
            })
        };
        let (done, finished) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let workspace = open_root(&root).expect("opened");
            for _ in 0..2000 {
                match write_bytes(&workspace, "race", b"written") {
                    Ok(()) | Err(FilesError::WrongKind { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            let _ = done.send(());
        });
        let answered = finished.recv_timeout(std::time::Duration::from_secs(60));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        swapper.join().expect("the swapper");
        assert!(answered.is_ok(), "a write blocked on the FIFO");
        writer.join().expect("the writer");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "race")
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
    }

    /// Bug hunt: a Unix socket the session's programs bound made a read a 500 ("reading
    /// ...: ENXIO"), and the `files` tool's "warden failed": it is not a regular file, the
    /// caller's mistake, as a FIFO is.
    #[test]
    fn a_socket_is_not_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _bound =
            std::os::unix::net::UnixListener::bind(dir.path().join("sock")).expect("a socket");
        nix::unistd::mkfifo(&dir.path().join("fifo"), Mode::from_bits_truncate(0o600))
            .expect("a FIFO");
        let workspace = open_root(dir.path()).expect("opened");
        for path in ["sock", "fifo"] {
            let read = read_bytes(&workspace, path, MAX_READ);
            let expected = FilesError::WrongKind {
                path: path.into(),
                what: "not a regular file",
            };
            assert_eq!(read, Err(expected), "{path}");
        }
    }

    /// Bug hunt: the quota held within one process only: writes of six processes at once
    /// (the CLI, `warden mcp`, a server) all passed the check, together three times the
    /// quota. Two registries' workspaces on one directory stand for two processes here.
    #[test]
    fn the_quota_holds_across_processes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Workspaces::new(dir.path().join("files"), 1000);
        let b = Workspaces::new(dir.path().join("files"), 1000);
        let start = std::sync::Barrier::new(6);
        let written = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for i in 0..6 {
                let (ws, start, written) = (if i % 2 == 0 { &a } else { &b }, &start, &written);
                s.spawn(move || {
                    start.wait();
                    let input = json!({"operation": "write", "path": format!("f{i}"), "content": "x".repeat(600)});
                    if ws.operate(None, &input).is_ok() {
                        written.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(
            written.into_inner(),
            1,
            "600 bytes each under a quota of 1000"
        );
    }

    /// Bug hunt: writes at once into one new directory failed with a 500 ("creating a
    /// directory for ...: EEXIST") when another made the directory between the open and the
    /// mkdir.
    #[test]
    fn writes_at_once_into_one_new_directory_all_succeed() {
        for round in 0..20 {
            let dir = tempfile::tempdir().expect("tempdir");
            let workspace = open_root(dir.path()).expect("opened");
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                for i in 0..8 {
                    let (workspace, start) = (&workspace, &start);
                    s.spawn(move || {
                        start.wait();
                        let path = format!("r/a/b/f{i}");
                        write_bytes(workspace, &path, b"x")
                            .unwrap_or_else(|e| panic!("round {round}, {path}: {e}"));
                    });
                }
            });
            let written = std::fs::read_dir(dir.path().join("r/a/b")).expect("listed");
            assert_eq!(written.count(), 8, "round {round}");
        }
    }

    /// A write replaces the file and keeps its permissions (a script stays executable). That
    /// a write past the quota leaves the file whole is shown on a real filesystem, by the
    /// sessions' end-to-end tests.
    #[test]
    fn a_write_keeps_the_files_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("run.sh");
        std::fs::write(&script, b"old").expect("written");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o750)).expect("chmod");
        let workspace = open_root(dir.path()).expect("opened");
        write_bytes(&workspace, "run.sh", b"new").expect("replaced");
        assert_eq!(std::fs::read(&script).expect("read"), b"new");
        let mode = std::fs::metadata(&script)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
    }

    #[test]
    fn write_read_list_delete_round_trip() {
        let (_d, ws) = ws(1 << 20);
        let w = op(
            &ws,
            None,
            json!({"operation": "write", "path": "a/b.txt", "content": "hi"}),
        );
        assert_eq!(w.expect("written")["bytes"], 2);
        let r = op(&ws, None, json!({"operation": "read", "path": "a/b.txt"})).expect("read");
        assert_eq!(r["content"], "hi");
        let l = op(&ws, None, json!({"operation": "list", "path": ""})).expect("list");
        assert_eq!(l["entries"][0]["name"], "a");
        assert_eq!(l["entries"][0]["kind"], "directory");
        op(&ws, None, json!({"operation": "delete", "path": "a/b.txt"})).expect("deleted");
        let gone = op(&ws, None, json!({"operation": "read", "path": "a/b.txt"}));
        assert_eq!(gone, Err(FilesError::NotFound("a/b.txt".into())));
    }

    #[test]
    fn callers_do_not_see_each_other() {
        let (_d, ws) = ws(1 << 20);
        op(
            &ws,
            Some("alice"),
            json!({"operation": "write", "path": "s", "content": "x"}),
        )
        .expect("written");
        let bob = op(&ws, Some("bob"), json!({"operation": "read", "path": "s"}));
        assert_eq!(bob, Err(FilesError::NotFound("s".into())));
        let local = op(&ws, None, json!({"operation": "list", "path": ""})).expect("list");
        assert_eq!(local["entries"], json!([]));
    }

    #[test]
    fn escapes_are_refused() {
        let (_d, ws) = ws(1 << 20);
        let escape = "not a relative path inside the workspace (no '..', no leading '/')";
        let deep = "d/".repeat(33) + "f";
        let long = "x".repeat(256);
        for (path, why) in [
            ("../x", escape),
            ("/etc/passwd", escape),
            ("a/../../x", escape),
            ("", "it names no file (empty)"),
            ("a\0b", "it holds a NUL byte"),
            (deep.as_str(), "inside more than 32 directories"),
            (long.as_str(), "a part of it is longer than 255 bytes"),
            (
                "a.txt/",
                "it ends with '/', which names a directory, not a file",
            ),
        ] {
            let r = op(&ws, None, json!({"operation": "read", "path": path}));
            let expected = FilesError::BadPath {
                path: path.into(),
                why,
            };
            assert_eq!(r, Err(expected), "{path}");
        }
    }

    #[test]
    fn an_entry_in_a_directory_32_deep_is_listed_read_and_deleted() {
        // Hunt sess 4: a file 32 directories deep was listed, then refused as "deeper than 32
        // directories" when read, written or deleted.
        let (_d, ws) = ws(1 << 20);
        let dir = "d/".repeat(32);
        let file = format!("{dir}f");
        let write = json!({"operation": "write", "path": file, "content": "x"});
        op(&ws, None, write).expect("written");
        let listed = op(&ws, None, json!({"operation": "list", "path": dir})).expect("listed");
        assert_eq!(listed["entries"][0]["name"], "f", "{listed}");
        let read = op(&ws, None, json!({"operation": "read", "path": file})).expect("read");
        assert_eq!(read["content"], "x");
        op(&ws, None, json!({"operation": "delete", "path": file})).expect("deleted");
        // A directory one deeper is refused for listing: its entries could not be reached.
        let deeper = format!("{dir}d");
        let r = op(&ws, None, json!({"operation": "list", "path": deeper}));
        let expected = FilesError::BadPath {
            path: deeper.clone(),
            why: "its entries would be inside more than 32 directories",
        };
        assert_eq!(r, Err(expected));
    }

    #[test]
    fn a_planted_link_is_never_followed() {
        let (dir, ws) = ws(1 << 20);
        op(
            &ws,
            None,
            json!({"operation": "write", "path": "d/f", "content": "x"}),
        )
        .expect("ok");
        let local = dir.path().join("files/local");
        std::os::unix::fs::symlink("/etc", local.join("etc")).expect("link");
        std::os::unix::fs::symlink("/etc/passwd", local.join("pw")).expect("link");
        let through = op(
            &ws,
            None,
            json!({"operation": "read", "path": "etc/passwd"}),
        );
        assert_eq!(through, Err(FilesError::Link("etc/passwd".into())));
        let direct = op(&ws, None, json!({"operation": "read", "path": "pw"}));
        assert_eq!(direct, Err(FilesError::Link("pw".into())));
        let write = op(
            &ws,
            None,
            json!({"operation": "write", "path": "pw", "content": "y"}),
        );
        assert!(write.is_err(), "{write:?}");
        assert_ne!(std::fs::read_to_string("/etc/passwd").expect("passwd"), "y");
    }

    #[test]
    fn the_quota_holds() {
        let (_d, ws) = ws(10);
        op(
            &ws,
            None,
            json!({"operation": "write", "path": "a", "content": "12345678"}),
        )
        .expect("fits");
        let over = op(
            &ws,
            None,
            json!({"operation": "write", "path": "b", "content": "123"}),
        );
        assert!(
            matches!(over, Err(FilesError::Quota { needed: 11, .. })),
            "{over:?}"
        );
        // Rewriting a file counts its new size, not both.
        op(
            &ws,
            None,
            json!({"operation": "write", "path": "a", "content": "1234567890"}),
        )
        .expect("replaces");
    }

    /// Bug hunt: a refused write made its directories first, and left them: each refusal
    /// added entries past the cap, and the refusal spoke of the bytes quota when the entries
    /// were the reason.
    #[test]
    fn a_refused_write_makes_nothing_and_says_why() {
        let (small, tight) = ws(10);
        let local = small.path().join("files/local");
        let over = op(
            &tight,
            None,
            json!({"operation": "write", "path": "a/b/c/f", "content": "12345678901"}),
        );
        assert!(
            matches!(over, Err(FilesError::Quota { needed: 11, .. })),
            "{over:?}"
        );
        assert!(!local.join("a").exists(), "no directory left");

        let (dir, ws) = ws(1 << 20);
        let local = dir.path().join("files/local");
        op(
            &ws,
            None,
            json!({"operation": "write", "path": "seed", "content": "x"}),
        )
        .expect("written");
        for n in 1..MAX_ENTRIES - 1 {
            std::fs::write(local.join(format!("f{n}")), b"").expect("a file");
        }
        let write = |path: &str| {
            op(
                &ws,
                None,
                json!({"operation": "write", "path": path, "content": "x"}),
            )
        };
        for path in ["x/y/f", "x/f"] {
            let refused = write(path).expect_err("past the cap");
            assert!(
                matches!(
                    refused,
                    FilesError::TooManyEntries {
                        max: MAX_ENTRIES,
                        ..
                    }
                ),
                "{refused:?}"
            );
            assert!(refused.to_string().contains("10000"), "{refused}");
            assert!(!local.join("x").exists(), "no directory left");
        }
        write("last").expect("the last entry fits");
        write("seed").expect("a file replaced makes no entry");
        let refused = write("more").expect_err("past the cap");
        assert!(
            matches!(
                refused,
                FilesError::TooManyEntries {
                    entries: 10_001,
                    ..
                }
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn usage_counts_every_level() {
        let (dir, ws) = ws(1 << 20);
        op(
            &ws,
            None,
            json!({"operation": "write", "path": "a/b/c.txt", "content": "abc"}),
        )
        .expect("written");
        let local = dir.path().join("files/local");
        for n in 0..50 {
            std::fs::create_dir_all(local.join(format!("s/{n}/t"))).expect("directories");
            std::fs::write(local.join(format!("s/{n}/t/f")), b"12").expect("a file");
        }
        let root = open_root(&local).expect("opened");
        // a, a/b, a/b/c.txt, s, and 50 × (n, n/t, n/t/f).
        assert_eq!(usage(&root, "").expect("measured"), (3 + 100, 4 + 150));
    }

    #[test]
    fn wrong_kinds_and_bad_operations() {
        let (_d, ws) = ws(1 << 20);
        op(
            &ws,
            None,
            json!({"operation": "write", "path": "d/f", "content": "x"}),
        )
        .expect("ok");
        assert!(matches!(
            op(&ws, None, json!({"operation": "read", "path": "d"})),
            Err(FilesError::WrongKind { .. })
        ));
        assert_eq!(
            op(&ws, None, json!({"operation": "delete", "path": "d"})),
            Err(FilesError::NotEmpty("d".into()))
        );
        assert!(matches!(
            op(&ws, None, json!({"operation": "chmod", "path": "d"})),
            Err(FilesError::Input(_))
        ));
        assert!(matches!(
            op(&ws, None, json!({"operation": "write", "path": "x"})),
            Err(FilesError::Input(_))
        ));
    }

    #[test]
    fn caller_directories_are_plain_names() {
        assert_eq!(caller_dir(None), "local");
        assert_eq!(caller_dir(Some("alice")), "token-alice");
        assert_eq!(caller_dir(Some("../x")), "token-x2e2e2f78");
        // Bug hunt "auth": a token named `x63692e626f74` read the files of the token `ci.bot`.
        assert_eq!(caller_dir(Some("ci.bot")), "token-x63692e626f74");
        assert_eq!(
            caller_dir(Some("x63692e626f74")),
            "token-x78363336393265363236663734"
        );
        assert_eq!(caller_dir(Some("x")), "token-x78");
        assert_eq!(caller_dir(Some("xavier")), "token-xavier");
        assert_eq!(caller_dir(Some("x0A")), "token-x0A", "not lower-case hex");
    }
}
