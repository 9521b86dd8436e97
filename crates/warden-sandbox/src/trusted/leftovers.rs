//! What a trusted run leaves in the host's world-writable directories (`/tmp`, `/var/tmp`,
//! `/dev/shm`, `/dev/mqueue`, and those found under `/run`, `/var` and `/dev`: [`shared_dirs`]):
//! the run's uid is a per-run slot that the next trusted run may
//! get, which could then read and change what this one left there. So at the end of the run,
//! once the init has killed and reaped every process of the uid (nothing of it can create or
//! rename an entry any more), the top-level entries the uid owns are removed. Runs in the
//! parent (or, when warden died, in the helper), as root.
//!
//! Links are never followed: each entry is examined with `lstat`, a symlink or a file is
//! unlinked itself, and a directory removed by `remove_dir_all`, which does not follow links
//! inside it. Under the sticky bit of these directories no other user can swap an entry of
//! the uid between the check and the removal. Bounded: at most [`MAX_SCANNED`] entries of each
//! directory are looked at.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The host directories every user may write to, and so a trusted run's program too.
pub(crate) const SHARED_DIRS: [&str; 4] = ["/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"];

/// Where else world-writable directories are looked for ([`shared_dirs`]), and how deep.
const SEARCHED: [&str; 3] = ["/run", "/var", "/dev"];
const SEARCH_DEPTH: usize = 3;

/// The most directories [`shared_dirs`] looks at under [`SEARCHED`].
const MAX_SEARCHED: usize = 20_000;

/// [`SHARED_DIRS`] and every other world-writable directory under `/run`, `/var` and `/dev`,
/// up to three levels down, found now (a Debian host has `/run/lock` and
/// `/var/lib/php/sessions`), links never followed. Looked for at each run's end, not once:
/// an operator's package may make one at any time.
pub(crate) fn shared_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = SHARED_DIRS.iter().map(Into::into).collect();
    let mut budget = MAX_SEARCHED;
    for root in SEARCHED {
        world_writable(Path::new(root), SEARCH_DEPTH, &mut budget, &mut dirs);
    }
    dirs
}

fn world_writable(
    dir: &Path,
    depth: usize,
    budget: &mut usize,
    found: &mut Vec<std::path::PathBuf>,
) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        // `file_type` and `metadata` of a directory entry do not follow a link.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let writable = entry.metadata().is_ok_and(|m| m.mode() & 0o002 != 0);
        if writable && !found.contains(&path) {
            found.push(path.clone());
        }
        if depth > 1 {
            world_writable(&path, depth - 1, budget, found);
        }
    }
}

/// The most entries of one directory looked at: a host whose `/tmp` holds more has the
/// rest of the uid's entries left (and a warning logged).
pub(crate) const MAX_SCANNED: usize = 100_000;

/// Removes the top-level entries of each of `dirs` owned by `uid` (a directory that does not
/// exist is skipped), and the System V IPC objects of `uid` (message queues, semaphores,
/// shared memory: the host's IPC namespace is the run's). The first error, after trying
/// everything else.
pub(crate) fn remove_owned(dirs: &[&Path], uid: u32) -> Result<(), std::io::Error> {
    let mut first_error = None;
    // Only a run's own uid, never another user's (root's, in the tests' own run).
    let ipc = if (crate::HOST_ID_BASE..crate::HOST_ID_BASE + crate::SLOTS).contains(&uid) {
        warden_sys::ipc::remove_owned(uid)
    } else {
        Ok(0)
    };
    match ipc {
        Ok(0) => {}
        Ok(n) => tracing::debug!(uid, n, "removed a trusted run's System V IPC objects"),
        Err(e) => {
            tracing::warn!(uid, error = %e, "trusted run's System V IPC objects");
            first_error = Some(e);
        }
    }
    for dir in dirs {
        if let Err(e) = remove_owned_in(dir, uid) {
            tracing::warn!(dir = %dir.display(), uid, error = %e, "trusted run's leftovers");
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn remove_owned_in(dir: &Path, uid: u32) -> Result<(), std::io::Error> {
    let entries = match fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        entries => entries?,
    };
    let mut first_error = None;
    for (scanned, entry) in entries.enumerate() {
        if scanned == MAX_SCANNED {
            tracing::warn!(dir = %dir.display(), uid, "more than {MAX_SCANNED} entries: the rest is not looked at");
            break;
        }
        let Ok(entry) = entry else { continue };
        let path = entry.path();
        // lstat: a symlink is the link's own owner and is removed itself.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != uid {
            continue;
        }
        let removed = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                first_error.get_or_insert(e);
            }
            _ => tracing::debug!(path = %path.display(), "removed a trusted run's leftover"),
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without root the entries cannot be given to another uid; this checks what the current
    /// user's are: its own are removed, links are not followed, a missing directory is fine.
    #[test]
    fn the_uids_top_level_entries_go_and_links_are_not_followed() {
        let uid = nix::unistd::geteuid().as_raw();
        let outside = tempfile::tempdir().expect("tempdir");
        let kept = outside.path().join("kept");
        fs::create_dir(&kept).expect("mkdir");
        fs::write(kept.join("file"), "x").expect("write");
        let shared = tempfile::tempdir().expect("tempdir");
        fs::write(shared.path().join("file"), "x").expect("write");
        fs::create_dir_all(shared.path().join("dir/sub")).expect("mkdir");
        std::os::unix::fs::symlink(&kept, shared.path().join("dir/sub/link")).expect("symlink");
        std::os::unix::fs::symlink(&kept, shared.path().join("link")).expect("symlink");
        let missing = outside.path().join("missing");

        remove_owned(&[shared.path(), &missing], uid).expect("removed");
        assert_eq!(fs::read_dir(shared.path()).expect("readdir").count(), 0);
        assert!(kept.join("file").exists(), "a link was followed");

        fs::write(shared.path().join("other"), "x").expect("write");
        remove_owned(&[shared.path()], uid.wrapping_add(1)).expect("nothing of that uid");
        assert!(
            shared.path().join("other").exists(),
            "another uid's entry was removed"
        );
    }
}
