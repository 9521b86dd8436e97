//! Writing a job's files into the workspace. Runs in the init. Earlier jobs of the same sandbox
//! ran untrusted code that could write there, so every step is relative to an open directory
//! and never follows a link: a directory on the way must be a real directory (`O_NOFOLLOW`),
//! and a file is created anew under a temporary name (`O_EXCL | O_NOFOLLOW`) and renamed over
//! the one of the same name, so a planted symlink or FIFO is replaced, never written through.
//! A job's files are all renamed into place once every one is written, so that a job refused
//! halfway through leaves the workspace as it was: a session's or a volume's outlives it.
//!
//! The files must fit the job's room ([`Room`]): the workspace's size cap, the job's
//! `workspace_size`, and, where the workspace's pages are charged to the job's cgroup (the
//! native sandbox's tmpfs), its memory. A job they do not fit is refused before anything is
//! written ([`Misfit`]), not left to fail as an out-of-memory kill of the init or a full disk
//! halfway through.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};
use serde::{Deserialize, Serialize};
use warden_core::ByteSize;

use crate::child::SetupError;
use crate::control::FileBytes;
use crate::plan::WorkspaceFile;

/// The setup step that writes a job's file, followed by its path ([`SandboxError::setup`]).
///
/// [`SandboxError::setup`]: crate::SandboxError
pub(crate) const WRITE_STEP: &str = "write workspace file";

/// The setup step that refuses a job whose files do not fit its room; its detail is a
/// [`Misfit`] as JSON ([`SandboxError::setup`]).
///
/// [`SandboxError::setup`]: crate::SandboxError
pub(crate) const FIT_STEP: &str = "fit the job's files";

/// What a job's files must fit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Room {
    /// The workspace's size cap: the job's `workspace_size`.
    pub(crate) size: ByteSize,
    /// What the workspace holds before the job's files (an earlier job's files and output,
    /// the compile stage's in a shared sandbox).
    pub(crate) holds: ByteSize,
    /// The job's memory, when the workspace's pages are charged to the job's cgroup and the
    /// files go there (the native sandbox's tmpfs, `/work` not a volume): files that take it
    /// all leave the program nothing, and the init writing them would be killed.
    pub(crate) memory: Option<ByteSize>,
}

/// Why a job's files do not fit its room, as the init reports it (the detail of
/// [`FIT_STEP`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Misfit {
    /// The limit they do not fit: `workspace_size` or `memory`.
    pub(crate) limit: String,
    /// That limit, in bytes.
    pub(crate) size: u64,
    /// What the workspace held before the job's files, in bytes.
    pub(crate) holds: u64,
    /// The job's files, in bytes.
    pub(crate) files: u64,
}

impl Misfit {
    fn error(&self) -> SetupError {
        SetupError::new(
            FIT_STEP,
            serde_json::to_string(self).unwrap_or_else(|e| e.to_string()),
        )
    }

    /// The workspace holds more than `size` (a job's `workspace_size`) before any file of the
    /// job is written.
    pub(crate) fn holds_more(size: ByteSize, holds: u64) -> SetupError {
        Misfit {
            limit: "workspace_size".into(),
            size: size.bytes(),
            holds,
            files: 0,
        }
        .error()
    }
}

/// Where the contents of a job's files come from, in job order.
pub(crate) trait Contents {
    /// Writes the contents of `file`, the next one, into `out`.
    fn write_next(&mut self, file: &WorkspaceFile, out: &mut std::fs::File) -> std::io::Result<()>;
}

/// The files' own [`WorkspaceFile::contents`]: the parent writing a runtime's workspace from
/// the host (gVisor).
pub(crate) struct InMemory;

impl Contents for InMemory {
    fn write_next(&mut self, file: &WorkspaceFile, out: &mut std::fs::File) -> std::io::Result<()> {
        out.write_all(&file.contents)
    }
}

impl Contents for FileBytes {
    fn write_next(&mut self, file: &WorkspaceFile, out: &mut std::fs::File) -> std::io::Result<()> {
        self.copy_next(file.len, out)
    }
}

/// Writes `files` under `workdir`, their contents taken from `contents`: all of them, or none
/// when one cannot be. Every path is checked first (a link or a file where a directory of it
/// goes, a directory where it goes, one file's path a directory of another's), and the files'
/// size against `room`. Then each file is written under a temporary name beside its place
/// ([`Staged`]), and only once all are written are they renamed into place: a session's
/// workspace or a volume outlives the call, and a call refused halfway through (a full
/// workspace: `room` is reckoned from the tmpfs's use, which rounds to pages, and a session's
/// workspace has none) left some files overwritten, the old contents lost. A full workspace
/// halfway through is a [`Misfit`] where there is a `room`.
pub(crate) fn write_files(
    workdir: &Path,
    files: &[WorkspaceFile],
    contents: &mut dyn Contents,
    room: Option<Room>,
) -> Result<(), SetupError> {
    if files.is_empty() {
        return Ok(());
    }
    let root = open_dir(None, workdir).map_err(|e| SetupError::sys("open", workdir, e))?;
    let paths: HashSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
    for file in files {
        check_one(&root, file, &paths).map_err(|e| SetupError::sys(WRITE_STEP, &file.path, e))?;
    }
    let total = files.iter().map(|f| f.len).fold(0u64, u64::saturating_add);
    if let Some(room) = room {
        check_room(&room, total)?;
    }
    let mut staged = Staged::default();
    for file in files {
        if let Err(e) = staged.write(&root, file, contents, &paths) {
            staged.discard();
            return Err(match (e, room) {
                (Errno::ENOSPC, Some(room)) => Misfit {
                    limit: "workspace_size".into(),
                    size: room.size.bytes(),
                    holds: room.holds.bytes(),
                    files: total,
                }
                .error(),
                (e, _) => SetupError::sys(WRITE_STEP, &file.path, e),
            });
        }
    }
    staged.commit()
}

/// Refuses files of `total` bytes that do not fit `room`. The files they replace count: they
/// are kept until every new one is written ([`Staged`]).
fn check_room(room: &Room, total: u64) -> Result<(), SetupError> {
    let after = room.holds.bytes().saturating_add(total);
    let misfit = |limit: &str, size: ByteSize| Misfit {
        limit: limit.into(),
        size: size.bytes(),
        holds: room.holds.bytes(),
        files: total,
    };
    if after > room.size.bytes() {
        return Err(misfit("workspace_size", room.size).error());
    }
    match room.memory {
        Some(memory) if after >= memory.bytes() => Err(misfit("memory", memory).error()),
        _ => Ok(()),
    }
}

/// The bytes a filesystem's files take (its blocks in use), as `statvfs` of `path` tells.
pub(crate) fn used_bytes(path: &Path) -> Result<u64, SetupError> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(|e| SetupError::sys("statvfs", path, e))?;
    let blocks = stat.blocks().saturating_sub(stat.blocks_free());
    Ok(blocks.saturating_mul(stat.fragment_size()))
}

/// The normal components of a file's path.
fn components(file: &WorkspaceFile) -> Result<Vec<&std::ffi::OsStr>, Errno> {
    file.path
        .components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(Errno::EINVAL),
        })
        .collect()
}

/// Fails as [`Staged::write`] or [`Staged::commit`] would on what is there now, writing
/// nothing: a directory of the path that is a link or a file, a directory where the file goes,
/// or a directory of the path that is another of the job's files (`paths`). What is missing
/// is made by the write.
fn check_one(root: &OwnedFd, file: &WorkspaceFile, paths: &HashSet<&Path>) -> Result<(), Errno> {
    let components = components(file)?;
    let (name, parents) = components.split_last().ok_or(Errno::EINVAL)?;
    if file.path.ancestors().skip(1).any(|dir| paths.contains(dir)) {
        return Err(Errno::ENOTDIR);
    }
    let mut dir = root.try_clone().map_err(|_| Errno::EBADF)?;
    for parent in parents {
        dir = match open_dir(Some(&dir), Path::new(parent)) {
            Ok(next) => next,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(e),
        };
    }
    match nix::sys::stat::fstatat(dir.as_fd(), *name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => Err(Errno::EISDIR),
        Ok(_) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A job's files written under temporary names beside their places, and the directories made
/// for them: renamed into place together ([`Staged::commit`]), or removed, the workspace left
/// as it was ([`Staged::discard`]).
#[derive(Default)]
struct Staged {
    /// Each file's directory, its temporary name and its name, in job order.
    files: Vec<(Rc<OwnedFd>, OsString, OsString)>,
    /// The directories made, each with the directory it is in, in the order they were made.
    made: Vec<(OwnedFd, OsString)>,
    /// The files' directories opened so far, by path: one descriptor each, however many files
    /// a directory gets (a job of thousands of files stays under the descriptor limit).
    dirs: HashMap<PathBuf, Rc<OwnedFd>>,
}

impl Staged {
    /// Writes `file` under a new temporary name in its directory, made first where missing.
    /// Each directory on the way is opened `O_NOFOLLOW` and the file created `O_EXCL |
    /// O_NOFOLLOW`, relative to `root`: a link planted in the workspace is never followed.
    fn write(
        &mut self,
        root: &OwnedFd,
        file: &WorkspaceFile,
        contents: &mut dyn Contents,
        paths: &HashSet<&Path>,
    ) -> Result<(), Errno> {
        let components = components(file)?;
        let (name, parents) = components.split_last().ok_or(Errno::EINVAL)?;
        let path: PathBuf = parents.iter().collect();
        let dir = match self.dirs.get(&path) {
            Some(dir) => Rc::clone(dir),
            None => {
                let dir = Rc::new(self.make_dirs(root, parents)?);
                self.dirs.insert(path.clone(), Rc::clone(&dir));
                dir
            }
        };
        let mode = Mode::from_bits_truncate(if file.executable { 0o755 } else { 0o644 });
        // Never the name of one of the job's own files there: its temporary would be renamed
        // onto the other's, and the other's contents swapped in.
        let reserved = |temporary: &std::ffi::OsStr| paths.contains(path.join(temporary).as_path());
        let (fd, temporary) = create_temporary(&dir, self.files.len(), mode, reserved)?;
        self.files.push((dir, temporary, name.to_os_string()));
        // The umask may have taken bits off.
        fchmod(fd.as_fd(), mode)?;
        contents
            .write_next(file, &mut std::fs::File::from(fd))
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
    }

    /// Opens the directory `parents` names under `root`, making what is missing.
    fn make_dirs(
        &mut self,
        root: &OwnedFd,
        parents: &[&std::ffi::OsStr],
    ) -> Result<OwnedFd, Errno> {
        let mut dir = root.try_clone().map_err(|_| Errno::EBADF)?;
        for parent in parents {
            match mkdirat(dir.as_fd(), *parent, Mode::from_bits_truncate(0o755)) {
                Ok(()) => {
                    let at = dir.try_clone().map_err(|_| Errno::EBADF)?;
                    self.made.push((at, parent.to_os_string()));
                }
                Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            dir = open_dir(Some(&dir), Path::new(parent))?;
        }
        Ok(dir)
    }

    /// Renames every file into place, replacing what is there (a file, or a link, never
    /// followed). The checks before the writes leave a rename nothing to fail on; should one
    /// fail even so, the files not yet renamed are removed.
    fn commit(mut self) -> Result<(), SetupError> {
        let files = std::mem::take(&mut self.files);
        let mut files = files.into_iter();
        while let Some((dir, temporary, name)) = files.next() {
            if let Err(e) = renameat(dir.as_fd(), &*temporary, dir.as_fd(), &*name) {
                self.files = files.collect();
                self.discard();
                return Err(SetupError::sys(WRITE_STEP, Path::new(&name), e));
            }
        }
        Ok(())
    }

    /// Removes the temporary files and then, newest first, the directories made for them,
    /// should they be empty.
    fn discard(self) {
        for (dir, temporary, _) in &self.files {
            let _ = unlinkat(dir.as_fd(), &**temporary, UnlinkatFlags::NoRemoveDir);
        }
        for (dir, name) in self.made.iter().rev() {
            let _ = unlinkat(dir.as_fd(), &**name, UnlinkatFlags::RemoveDir);
        }
    }
}

/// Creates the temporary file of the job's `index`th file in `dir`, of a name not there yet
/// (`O_EXCL`: the session's programs may have planted a file or a link of that name) and not
/// `reserved` (one of the job's own files), and returns it and its name.
fn create_temporary(
    dir: &OwnedFd,
    index: usize,
    mode: Mode,
    reserved: impl Fn(&std::ffi::OsStr) -> bool,
) -> Result<(OwnedFd, OsString), Errno> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut attempt = 0u32;
    loop {
        let name = OsString::from(format!(".warden-write.{index}.{attempt}"));
        if reserved(&name) && attempt < 1000 {
            attempt += 1;
            continue;
        }
        match openat(dir.as_fd(), name.as_os_str(), flags, mode) {
            Ok(fd) => return Ok((fd, name)),
            Err(Errno::EEXIST) if attempt < 1000 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Opens a directory without following a final symlink (relative to `at` when given).
fn open_dir(at: Option<&OwnedFd>, path: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match at {
        Some(dir) => openat(dir.as_fd(), path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_land_in_place_and_replace_earlier_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_files(
            dir.path(),
            &[
                WorkspaceFile::new("a.txt", "one"),
                WorkspaceFile::executable("sub/dir/run", "#!/bin/sh\n"),
            ],
            &mut InMemory,
            None,
        )
        .expect("written");
        write_files(
            dir.path(),
            &[WorkspaceFile::new("a.txt", "two")],
            &mut InMemory,
            None,
        )
        .expect("replaced");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).expect("read"),
            "two"
        );
        let mode = std::fs::metadata(dir.path().join("sub/dir/run"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    /// Bug hunt: a session call's files `m.py` and `lib/x.py`, where an earlier call had
    /// made `lib` a link, were refused (422) after `m.py` had been written: the refused call
    /// changed the workspace.
    #[test]
    fn nothing_is_written_when_one_file_cannot_be() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("lib")).expect("symlink");
        std::fs::create_dir(dir.path().join("taken")).expect("a directory");
        for second in ["lib/x.py", "taken"] {
            let refused = write_files(
                dir.path(),
                &[
                    WorkspaceFile::new("m.py", "print(1)"),
                    WorkspaceFile::new("new/dir/n.py", "print(2)"),
                    WorkspaceFile::new(second, "x = 1"),
                ],
                &mut InMemory,
                None,
            );
            assert!(refused.is_err(), "{second}");
            assert!(!dir.path().join("m.py").exists(), "{second}: m.py written");
            assert!(!dir.path().join("new").exists(), "{second}: new/ made");
        }
        assert_eq!(
            std::fs::read_dir(outside.path()).expect("listed").count(),
            0
        );
    }

    /// Contents that run out of room at the file named `full`, as a full workspace does.
    struct FullAt(&'static str);

    impl Contents for FullAt {
        fn write_next(
            &mut self,
            file: &WorkspaceFile,
            out: &mut std::fs::File,
        ) -> std::io::Result<()> {
            out.write_all(&file.contents)?;
            if file.path == Path::new(self.0) {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            Ok(())
        }
    }

    /// Bug hunt: a session call whose second file did not fit the workspace was refused
    /// (422) after its first file, and part of the second, had replaced the files there:
    /// their old contents were lost.
    #[test]
    fn a_file_that_does_not_fit_leaves_every_file_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), "old a").expect("write");
        std::fs::write(dir.path().join("b.txt"), "precious data").expect("write");
        let refused = write_files(
            dir.path(),
            &[
                WorkspaceFile::new("a.txt", "new a"),
                WorkspaceFile::new("new/dir/c.txt", "c"),
                WorkspaceFile::new("b.txt", "b".repeat(6000)),
            ],
            &mut FullAt("b.txt"),
            None,
        )
        .expect_err("refused");
        assert!(format!("{refused:?}").contains("b.txt"), "{refused:?}");
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).expect("read");
        assert_eq!(read("a.txt"), "old a");
        assert_eq!(read("b.txt"), "precious data");
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|entry| entry.expect("an entry").file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["a.txt", "b.txt"],
            "the call left files or directories"
        );
    }

    /// A temporary name the session's programs planted, as a file or a link, is neither
    /// written through nor in the way.
    #[test]
    fn planted_temporary_names_are_stepped_around() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("victim");
        std::fs::write(&target, "untouched").expect("write");
        for attempt in 0..10 {
            let name = format!(".warden-write.0.{attempt}");
            std::os::unix::fs::symlink(&target, dir.path().join(name)).expect("symlink");
        }
        write_files(
            dir.path(),
            &[WorkspaceFile::new("a.txt", "new")],
            &mut InMemory,
            None,
        )
        .expect("written");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).expect("read"),
            "new"
        );
    }

    /// Bug hunt "regr2": a job's own file named like a temporary (`.warden-write.2.0`) was
    /// renamed onto another file's place and that file's contents swapped in.
    #[test]
    fn a_file_named_like_a_temporary_keeps_its_own_contents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [
            WorkspaceFile::new("main.sh", "cat y"),
            WorkspaceFile::new(".warden-write.2.0", "WW"),
            WorkspaceFile::new("y", "YY"),
            WorkspaceFile::new("d/.warden-write.1.0", "DD"),
            WorkspaceFile::new("d/z", "ZZ"),
        ];
        write_files(dir.path(), &files, &mut InMemory, None).expect("written");
        for (name, want) in [
            ("main.sh", "cat y"),
            (".warden-write.2.0", "WW"),
            ("y", "YY"),
            ("d/.warden-write.1.0", "DD"),
            ("d/z", "ZZ"),
        ] {
            let got = std::fs::read_to_string(dir.path().join(name)).expect("read");
            assert_eq!(got, want, "{name}");
        }
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name())
            .collect();
        left.sort();
        assert_eq!(left, [".warden-write.2.0", "d", "main.sh", "y"]);
    }

    /// The files of one directory share its descriptor until they are renamed into place: a
    /// job of more files than the descriptor limit is written.
    #[test]
    fn many_files_in_one_directory_are_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (limit, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .expect("getrlimit");
        let count = limit.saturating_add(16).min(50_000);
        let files: Vec<_> = (0..count)
            .map(|i| WorkspaceFile::new(format!("many/f{i}"), "x"))
            .collect();
        write_files(dir.path(), &files, &mut InMemory, None).expect("written");
        let names = std::fs::read_dir(dir.path().join("many")).expect("listed");
        assert_eq!(u64::try_from(names.count()).expect("a count"), count);
    }

    /// One file of a call where another's directory goes is refused before anything is
    /// written, in either order.
    #[test]
    fn a_file_where_another_files_directory_goes_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (file, under) = (
            WorkspaceFile::new("lib", "x"),
            WorkspaceFile::new("lib/x.py", "x = 1"),
        );
        for files in [[file.clone(), under.clone()], [under, file]] {
            assert!(write_files(dir.path(), &files, &mut InMemory, None).is_err());
            assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 0);
        }
    }

    #[test]
    fn planted_links_are_replaced_or_refused_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("victim");
        std::fs::write(&target, "untouched").expect("write");
        std::os::unix::fs::symlink(&target, dir.path().join("a.txt")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).expect("symlink");
        write_files(
            dir.path(),
            &[WorkspaceFile::new("a.txt", "new")],
            &mut InMemory,
            None,
        )
        .expect("replaced");
        assert!(write_files(
            dir.path(),
            &[WorkspaceFile::new("sub/b.txt", "x")],
            &mut InMemory,
            None
        )
        .is_err());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");
        assert!(!outside.path().join("b.txt").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).expect("read"),
            "new"
        );
    }
}
