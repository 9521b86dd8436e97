//! Removing a directory tree of any depth and width through descriptors, as root: a directory a
//! trusted run left in a shared directory goes whole ([`remove`], called by `leftovers.rs`).
//! Runs in the parent (or, when warden died, in the helper, or in a later warden's stale sweep).
//!
//! std's `remove_dir_all` recurses, holding a descriptor and a stack frame per level: a chain of
//! directories deeper than the process's soft `RLIMIT_NOFILE` failed with `EMFILE` (the run
//! ended 125, the tree stayed for its uid's next run), and a deeper one overflowed the stack of
//! the thread sweeping and aborted the process (`warden serve`, with every run in flight). This
//! walk is a loop that holds one directory open at a time (and a listing of it): it goes down
//! with `openat(O_NOFOLLOW | O_DIRECTORY)` and back up through `..`, which must be the directory
//! it came down from (the inode of each level above is kept: 8 bytes a level, not a
//! descriptor), so that a directory moved elsewhere meanwhile does not lead the walk out of the
//! tree. It never follows a link (a link is an entry, unlinked itself), and never enters another
//! file system (a mount point stays, and the directories above it). openat(2), unlinkat(2).
//!
//! The run's processes are dead when it runs, but another run alive meanwhile may write in a
//! directory the run made world-writable, so the tree may change under the walk: an entry gone
//! is nothing to do, a directory that is not empty when it is to be removed is gone into (again),
//! once more at most after it was found empty, and a level whose `..` is not the directory
//! above ends the walk with `ESTALE` (the caller's next pass starts again from the top).

use std::collections::HashSet;
use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};

use nix::dir::{Dir, Type};
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

const DIRECTORY: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

/// Removes the directory `name` of `parent`, examined as `stat`, with everything it holds. It
/// must still be that directory (opened `O_NOFOLLOW`, its device and inode compared): a link or
/// another directory put in its place is refused with `ESTALE`. The first error, after removing
/// all else that could be.
pub(crate) fn remove(parent: &OwnedFd, name: &CStr, stat: &FileStat) -> Result<(), Errno> {
    // The shared directory's file system: a mount point there is not entered either.
    let dev = fstat(parent.as_fd())?.st_dev;
    if stat.st_dev != dev {
        return Err(Errno::EXDEV);
    }
    let mut walk = Walk {
        dev,
        current: open_checked(parent, name, dev, stat.st_ino)?,
        inode: stat.st_ino,
        above: Vec::new(),
        failed: HashSet::new(),
        found_empty: HashSet::new(),
        first_error: None,
    };
    loop {
        match walk.empty_current()? {
            Level::Down { dir, inode } => {
                walk.above.push(walk.inode);
                walk.current = dir;
                walk.inode = inode;
            }
            Level::Done => {
                let Some(above) = walk.above.pop() else {
                    break;
                };
                walk.current = open_checked(&walk.current, c"..", dev, above)?;
                walk.inode = above;
            }
        }
    }
    drop(walk.current);
    if let Some(e) = walk.first_error {
        return Err(e);
    }
    // Not by name alone: the name may be another directory's by now (removed only if empty).
    let now = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    if (now.st_dev, now.st_ino) != (stat.st_dev, stat.st_ino) {
        return Err(Errno::ESTALE);
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

/// Where the walk is: the directory it empties, and what it knows of those above.
struct Walk {
    /// The file system of the tree: nothing on another is entered.
    dev: u64,
    /// The directory being emptied, and its inode.
    current: OwnedFd,
    inode: u64,
    /// The inodes of the directories above `current`, the tree's top first.
    above: Vec<u64>,
    /// Directories that hold something that could not be removed: not gone into again.
    failed: HashSet<u64>,
    /// Directories whose listing was empty: one not empty again when it is to be removed (the
    /// tree is changing) fails rather than being gone into without end.
    found_empty: HashSet<u64>,
    first_error: Option<Errno>,
}

/// What one listing of a directory came to.
enum Level {
    /// A subdirectory that is not empty, to empty first.
    Down { dir: OwnedFd, inode: u64 },
    /// Everything in the directory that could be removed is: back up.
    Done,
}

impl Walk {
    /// Lists the current directory and removes each entry, up to the first subdirectory that
    /// is not empty, which it returns to go into. Errors of entries are kept in `first_error`
    /// (and the directory then counts as failed); only one that stops the walk is returned.
    fn empty_current(&mut self) -> Result<Level, Errno> {
        let listing = self
            .current
            .try_clone()
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let mut listing = Dir::from_fd(listing)?;
        let mut entries = 0usize;
        let mut failed = None;
        for entry in listing.iter() {
            let entry = entry?;
            let name = entry.file_name();
            if name == c"." || name == c".." {
                continue;
            }
            entries += 1;
            match self.remove_entry(name, entry.file_type()) {
                Ok(None) => {}
                Ok(Some(down)) => return Ok(down),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        if entries == 0 {
            self.found_empty.insert(self.inode);
        }
        if let Some(e) = failed {
            self.first_error.get_or_insert(e);
            self.failed.insert(self.inode);
        }
        Ok(Level::Done)
    }

    /// Removes the entry `name` of the current directory (of type `kind`, when the listing
    /// tells it), or returns the subdirectory to go into when it is not empty.
    fn remove_entry(&self, name: &CStr, kind: Option<Type>) -> Result<Option<Level>, Errno> {
        let gone = |result: Result<(), Errno>| match result {
            Ok(()) | Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e),
        };
        if kind.is_some_and(|kind| kind != Type::Directory) {
            match unlinkat(&self.current, name, UnlinkatFlags::NoRemoveDir) {
                // A directory in its place since the listing.
                Err(Errno::EISDIR | Errno::EPERM) => {}
                other => return gone(other),
            }
        }
        let stat = match fstatat(&self.current, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(None),
            stat => stat?,
        };
        if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            return gone(unlinkat(&self.current, name, UnlinkatFlags::NoRemoveDir));
        }
        if stat.st_dev != self.dev {
            // A mount point: what is mounted there is not the run's to remove.
            return Err(Errno::EXDEV);
        }
        if self.failed.contains(&stat.st_ino) {
            return Err(Errno::ENOTEMPTY);
        }
        match unlinkat(&self.current, name, UnlinkatFlags::RemoveDir) {
            Err(Errno::ENOTEMPTY | Errno::EEXIST) if self.found_empty.contains(&stat.st_ino) => {
                Err(Errno::ENOTEMPTY)
            }
            Err(Errno::ENOTEMPTY | Errno::EEXIST) => {
                match open_checked(&self.current, name, self.dev, stat.st_ino) {
                    Ok(dir) => Ok(Some(Level::Down {
                        dir,
                        inode: stat.st_ino,
                    })),
                    Err(Errno::ENOENT) => Ok(None),
                    Err(e) => Err(e),
                }
            }
            other => gone(other),
        }
    }
}

/// Opens the directory `name` of `dir` without following a link, and checks that it is inode
/// `inode` of device `dev` (`ESTALE` otherwise).
fn open_checked(dir: &OwnedFd, name: &CStr, dev: u64, inode: u64) -> Result<OwnedFd, Errno> {
    let opened = openat(dir, name, DIRECTORY, Mode::empty())?;
    let stat = fstat(opened.as_fd())?;
    if (stat.st_dev, stat.st_ino) != (dev, inode) {
        return Err(Errno::ESTALE);
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::open;
    use std::fs;
    use std::path::Path;

    fn stat_of(parent: &OwnedFd, name: &CStr) -> FileStat {
        fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW).expect("stat")
    }

    fn open_dir(path: &Path) -> OwnedFd {
        open(path, DIRECTORY, Mode::empty()).expect("open")
    }

    /// A directory moved out of the tree while the walk is in it: its `..` is no longer the
    /// directory the walk came down from, and the walk does not go up into where it went.
    #[test]
    fn going_up_from_a_directory_moved_elsewhere_is_refused() {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(root.path().join("tree/sub")).expect("mkdir");
        fs::create_dir(root.path().join("elsewhere")).expect("mkdir");
        fs::write(root.path().join("elsewhere/precious"), "x").expect("write");
        let tree = open_dir(&root.path().join("tree"));
        let tree_stat = fstat(tree.as_fd()).expect("stat");
        let sub = open_dir(&root.path().join("tree/sub"));
        fs::rename(
            root.path().join("tree/sub"),
            root.path().join("elsewhere/sub"),
        )
        .expect("rename");
        assert_eq!(
            open_checked(&sub, c"..", tree_stat.st_dev, tree_stat.st_ino).map(drop),
            Err(Errno::ESTALE)
        );
        assert!(root.path().join("elsewhere/precious").exists());
    }

    /// Links inside the tree are removed, never followed; files, directories and links at
    /// every level go, and the top with them.
    #[test]
    fn a_tree_goes_whole_and_its_links_are_not_followed() {
        let root = tempfile::tempdir().expect("tempdir");
        let kept = root.path().join("kept");
        fs::create_dir(&kept).expect("mkdir");
        fs::write(kept.join("file"), "x").expect("write");
        let top = root.path().join("shared/top");
        fs::create_dir_all(top.join("a/b/c")).expect("mkdir");
        for dir in ["", "a", "a/b", "a/b/c"] {
            fs::write(top.join(dir).join("f"), "x").expect("write");
            std::os::unix::fs::symlink(&kept, top.join(dir).join("link")).expect("symlink");
        }
        fs::create_dir_all(top.join("a/empty")).expect("mkdir");
        let shared = open_dir(&root.path().join("shared"));
        remove(&shared, c"top", &stat_of(&shared, c"top")).expect("removed");
        assert!(!top.exists());
        assert!(kept.join("file").exists(), "a link was followed");
    }

    /// A mount point inside the tree is not entered (the walk never leaves the file system it
    /// started on): what is mounted there stays, and so do the directories above it, with the
    /// error.
    #[test]
    fn a_mount_point_in_the_tree_is_not_entered() {
        if !super::super::tests::as_root("mounting needs root") {
            return;
        }
        let root = tempfile::tempdir().expect("tempdir");
        let top = root.path().join("top");
        let mount_point = top.join("a/mnt");
        fs::create_dir_all(&mount_point).expect("mkdir");
        fs::write(top.join("a/f"), "x").expect("write");
        nix::mount::mount(
            Some("tmpfs"),
            &mount_point,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .expect("mount a tmpfs");
        fs::write(mount_point.join("mounted"), "x").expect("write");
        let parent = open_dir(root.path());
        let removed = remove(&parent, c"top", &stat_of(&parent, c"top"));
        let survived = mount_point.join("mounted").exists();
        nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH).expect("umount");
        assert_eq!(removed, Err(Errno::EXDEV));
        assert!(survived, "the walk went into another file system");
        assert!(!top.join("a/f").exists(), "what else could go, went");
        remove(&parent, c"top", &stat_of(&parent, c"top")).expect("removed once unmounted");
    }
}
