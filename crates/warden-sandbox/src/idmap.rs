//! User and group identity of a sandbox: its uid 0 is mapped to an unprivileged host uid that
//! no other concurrent sandbox has. Slots are byte-range locks on one file
//! (`/run/warden/uid-slots`), released by the kernel when the parent closes the file or dies.
//! user_namespaces(7).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

/// First host uid (and gid) handed to sandboxes.
pub const HOST_ID_BASE: u32 = 1_500_000_000;
/// How many sandboxes may run at once on one host.
pub const SLOTS: u32 = 65_536;

/// Where the slot lock file lives.
pub(crate) const DEFAULT_SLOT_FILE: &str = "/run/warden/uid-slots";

/// A host uid reserved for one sandbox while this value lives.
#[derive(Debug)]
pub(crate) struct IdSlot {
    host_id: u32,
    _lock: File,
}

/// No slot could be reserved.
#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    /// The lock file cannot be opened.
    #[error("opening the uid slot file {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Locking failed for another reason than contention.
    #[error("locking a uid slot in {path}")]
    Lock {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: nix::errno::Errno,
    },
    /// Every slot is taken.
    #[error("all {SLOTS} sandbox uid slots are in use")]
    Exhausted,
    /// Writing a map of the child failed (helper side).
    #[error("writing {path} = {contents:?}")]
    WriteMap {
        /// The /proc file.
        path: PathBuf,
        /// What was written.
        contents: String,
        /// The error.
        #[source]
        source: io::Error,
    },
}

impl IdSlot {
    /// Reserves a free host id, starting the search at a point derived from `hint`.
    pub(crate) fn reserve(slot_file: &Path, hint: u64) -> Result<Self, IdMapError> {
        if let Some(dir) = slot_file.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(slot_file)
            .map_err(|source| IdMapError::Open {
                path: slot_file.to_owned(),
                source,
            })?;
        let start = u32::try_from(hint.wrapping_mul(2_654_435_761) % u64::from(SLOTS)).unwrap_or(0);
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let taken = warden_sys::lock::try_lock_byte(file.as_fd(), u64::from(slot)).map_err(
                |source| IdMapError::Lock {
                    path: slot_file.to_owned(),
                    source,
                },
            )?;
            if taken {
                return Ok(IdSlot {
                    host_id: HOST_ID_BASE + slot,
                    _lock: file,
                });
            }
        }
        Err(IdMapError::Exhausted)
    }

    /// The host uid and gid of the sandbox's root.
    pub(crate) fn host_id(&self) -> u32 {
        self.host_id
    }
}

/// Writes `setgroups`, `uid_map` and `gid_map` of `child` so that its uid and gid 0 are
/// `host_id` on the host. Runs in the helper, which still has host privileges.
pub(crate) fn write_maps(child: Pid, host_id: u32) -> Result<(), IdMapError> {
    let proc_dir = PathBuf::from(format!("/proc/{child}"));
    let map = format!("0 {host_id} 1\n");
    for (file, contents) in [
        ("setgroups", "deny\n"),
        ("uid_map", map.as_str()),
        ("gid_map", map.as_str()),
    ] {
        let path = proc_dir.join(file);
        fs::write(&path, contents).map_err(|source| IdMapError::WriteMap {
            path,
            contents: contents.to_owned(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_reservations_get_distinct_ids_and_release_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("slots");
        let a = IdSlot::reserve(&file, 7).expect("first");
        let b = IdSlot::reserve(&file, 7).expect("second");
        assert_ne!(a.host_id(), b.host_id());
        assert!(a.host_id() >= HOST_ID_BASE && a.host_id() < HOST_ID_BASE + SLOTS);
        let first = a.host_id();
        drop(a);
        let c = IdSlot::reserve(&file, 7).expect("third");
        assert_eq!(c.host_id(), first, "a released slot is reused");
    }
}
