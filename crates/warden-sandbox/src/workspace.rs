//! Writing a job's files into the workspace. Runs in the init. Earlier jobs of the same sandbox
//! ran untrusted code that could write there, so every step is relative to an open directory
//! and never follows a link: a directory on the way must be a real directory (`O_NOFOLLOW`),
//! and a file of the same name is unlinked and created anew (`O_EXCL`), so a planted symlink
//! or FIFO is replaced, never written through.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use crate::child::SetupError;
use crate::plan::WorkspaceFile;

/// The setup step that writes a job's file, followed by its path ([`SandboxError::setup`]).
///
/// [`SandboxError::setup`]: crate::SandboxError
pub(crate) const WRITE_STEP: &str = "write workspace file";

/// Writes `files` under `workdir`: all of them, or none when one cannot be (every path is
/// checked first). A session's workspace keeps what an earlier call planted there, a link
/// where a file's directory should be: refused after the files before it were written, the
/// call left them behind although it was refused.
pub(crate) fn write_files(workdir: &Path, files: &[WorkspaceFile]) -> Result<(), SetupError> {
    if files.is_empty() {
        return Ok(());
    }
    let root = open_dir(None, workdir).map_err(|e| SetupError::sys("open", workdir, e))?;
    for file in files {
        check_one(&root, file).map_err(|e| SetupError::sys(WRITE_STEP, &file.path, e))?;
    }
    for file in files {
        write_one(&root, file).map_err(|e| SetupError::sys(WRITE_STEP, &file.path, e))?;
    }
    Ok(())
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

/// Fails as [`write_one`] would on what is there now, writing nothing: a directory of the
/// path that is a link or a file, or a directory where the file goes. What is missing is
/// made by the write.
fn check_one(root: &OwnedFd, file: &WorkspaceFile) -> Result<(), Errno> {
    let components = components(file)?;
    let (name, parents) = components.split_last().ok_or(Errno::EINVAL)?;
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

fn write_one(root: &OwnedFd, file: &WorkspaceFile) -> Result<(), Errno> {
    let components = components(file)?;
    let (name, parents) = components.split_last().ok_or(Errno::EINVAL)?;
    let mut dir = root.try_clone().map_err(|_| Errno::EBADF)?;
    for parent in parents {
        match mkdirat(dir.as_fd(), *parent, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        dir = open_dir(Some(&dir), Path::new(parent))?;
    }
    match unlinkat(dir.as_fd(), *name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let mode = Mode::from_bits_truncate(if file.executable { 0o755 } else { 0o644 });
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir.as_fd(), *name, flags, mode)?;
    // The umask may have taken bits off.
    fchmod(fd.as_fd(), mode)?;
    std::fs::File::from(fd)
        .write_all(&file.contents)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
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
        )
        .expect("written");
        write_files(dir.path(), &[WorkspaceFile::new("a.txt", "two")]).expect("replaced");
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

    #[test]
    fn planted_links_are_replaced_or_refused_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("victim");
        std::fs::write(&target, "untouched").expect("write");
        std::os::unix::fs::symlink(&target, dir.path().join("a.txt")).expect("symlink");
        std::os::unix::fs::symlink(outside.path(), dir.path().join("sub")).expect("symlink");
        write_files(dir.path(), &[WorkspaceFile::new("a.txt", "new")]).expect("replaced");
        assert!(write_files(dir.path(), &[WorkspaceFile::new("sub/b.txt", "x")]).is_err());
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "untouched");
        assert!(!outside.path().join("b.txt").exists());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("a.txt")).expect("read"),
            "new"
        );
    }
}
