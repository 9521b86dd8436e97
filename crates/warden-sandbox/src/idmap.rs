//! User and group identity of a sandbox: its uid 0 is mapped to an unprivileged host uid that
//! no other concurrent sandbox has. Slots are byte-range locks on one file
//! (`/run/warden/uid-slots`), released by the kernel when the parent closes the file or dies.
//!
//! A released slot is not free while a process of its uid may live: the same file records,
//! after the lock bytes, the cgroup each slot's last holder made for its run, and a slot whose
//! recorded cgroup still exists is passed over. A run's processes cannot leave their cgroup,
//! so a trusted program that outlived both its warden and its helper (both killed outright)
//! keeps its uid from every later run, whose processes it could otherwise reach (a process of
//! the same host uid owns a sandbox's user namespace), until the stale sweep has killed it and
//! removed its cgroup (`stale.rs`). user_namespaces(7).
//!
//! A slot may also be marked unusable for trusted runs, in a byte of its own after the owners'
//! records ([`mark_unusable_for_trusted`]): its uid keeps something of an earlier trusted run
//! that warden cannot take away (keyrings it cannot empty, which would fail every later trusted
//! run's setup there, or leak their keys; files in the host's shared directories it could not
//! remove). Trusted runs pass such a slot over; sandboxed and isolated runs, which see neither
//! the host's keyrings nor its shared directories, still use it. The file is in `/run`, so the
//! marks last until reboot, as such keyrings do.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::Pid;

/// First host uid (and gid) handed to sandboxes.
pub const HOST_ID_BASE: u32 = 1_500_000_000;
/// How many sandboxes may run at once on one host.
pub const SLOTS: u32 = 65_536;

/// Where the slot lock file lives.
pub(crate) const DEFAULT_SLOT_FILE: &str = "/run/warden/uid-slots";

/// Where the owners' records start in the slot file: after the lock bytes.
const OWNERS_AT: u64 = SLOTS as u64;
/// One owner record: the cgroup's name, padded with NULs.
const OWNER_RECORD: usize = 64;
/// Where the marks of slots unusable for trusted runs start: after the owners' records, one
/// byte per slot ([`Unusable`], or 0).
const MARKS_AT: u64 = OWNERS_AT + SLOTS as u64 * OWNER_RECORD as u64;

/// What a slot is reserved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A sandbox (native or gVisor), whose uid sees nothing of the host's but its binds.
    Sandbox,
    /// A trusted run, on the host as the uid: not a slot marked [`Unusable`].
    Trusted,
}

/// Why a slot is unusable for trusted runs, as its mark records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// Its uid's keyrings cannot be emptied: an earlier trusted run locked them (before the
    /// trusted seccomp filter refused that), and a trusted run there would fail at its setup.
    Keyrings = 1,
    /// What an earlier trusted run of its uid left in the host's shared directories could not
    /// all be removed (`trusted/leftovers.rs`): a trusted run there would find it.
    Leftovers = 2,
}

/// A host uid reserved for one sandbox while this value lives.
#[derive(Debug)]
pub(crate) struct IdSlot {
    host_id: u32,
    slot: u32,
    file: File,
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
    /// Reserves a free host id, starting the search at a point derived from `hint`. A slot
    /// whose last holder's cgroup `in_use` says still exists is passed over, and for a trusted
    /// run so is a slot marked unusable for one.
    pub(crate) fn reserve(
        slot_file: &Path,
        hint: u64,
        in_use: &dyn Fn(&str) -> bool,
        purpose: Purpose,
    ) -> Result<Self, IdMapError> {
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
        let lock_error = |source| IdMapError::Lock {
            path: slot_file.to_owned(),
            source,
        };
        let start = u32::try_from(hint.wrapping_mul(2_654_435_761) % u64::from(SLOTS)).unwrap_or(0);
        for i in 0..SLOTS {
            let slot = (start + i) % SLOTS;
            let taken = warden_sys::lock::try_lock_byte(file.as_fd(), u64::from(slot))
                .map_err(lock_error)?;
            if !taken {
                continue;
            }
            let owner = read_owner(&file, slot);
            if !owner.is_empty() && in_use(&owner) {
                tracing::debug!(
                    slot,
                    owner,
                    "passing over a slot whose last run's cgroup remains"
                );
                warden_sys::lock::unlock_byte(file.as_fd(), u64::from(slot)).map_err(lock_error)?;
                continue;
            }
            if purpose == Purpose::Trusted && read_mark(&file, slot) != 0 {
                tracing::debug!(slot, "passing over a slot unusable for trusted runs");
                warden_sys::lock::unlock_byte(file.as_fd(), u64::from(slot)).map_err(lock_error)?;
                continue;
            }
            return Ok(IdSlot {
                host_id: HOST_ID_BASE + slot,
                slot,
                file,
            });
        }
        Err(IdMapError::Exhausted)
    }

    /// Records `cgroup` (its name) as the cgroup of this slot's run, before any process of the
    /// uid exists.
    pub(crate) fn set_owner(&self, cgroup: &str) -> io::Result<()> {
        let mut record = [0u8; OWNER_RECORD];
        let name = cgroup.as_bytes();
        if name.len() >= OWNER_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a cgroup name longer than {} bytes", OWNER_RECORD - 1),
            ));
        }
        record[..name.len()].copy_from_slice(name);
        self.file.write_all_at(&record, owner_offset(self.slot))
    }

    /// The host uid and gid of the sandbox's root.
    pub(crate) fn host_id(&self) -> u32 {
        self.host_id
    }
}

/// Marks the slot of `host_id` in `slot_file` unusable for trusted runs, for `why` (until
/// reboot: the file is in `/run`). Its holder marks it while it still holds it, so that no
/// trusted run gets it in between.
pub(crate) fn mark_unusable_for_trusted(
    slot_file: &Path,
    host_id: u32,
    why: Unusable,
) -> io::Result<()> {
    let slot = host_id
        .checked_sub(HOST_ID_BASE)
        .filter(|slot| *slot < SLOTS)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a slot's uid"))?;
    let file = OpenOptions::new().write(true).open(slot_file)?;
    file.write_all_at(&[why as u8], MARKS_AT + u64::from(slot))
}

/// Whether the slot of `host_id` in `slot_file` is marked unusable for trusted runs.
#[cfg(test)]
pub(crate) fn marked_unusable_for_trusted(slot_file: &Path, host_id: u32) -> bool {
    File::open(slot_file).is_ok_and(|file| read_mark(&file, host_id - HOST_ID_BASE) != 0)
}

/// The mark of `slot` ([`Unusable`] as a byte), 0 when it has none (or it cannot be read).
fn read_mark(file: &File, slot: u32) -> u8 {
    let mut mark = [0u8];
    match file.read_at(&mut mark, MARKS_AT + u64::from(slot)) {
        Ok(1) => mark[0],
        _ => 0,
    }
}

fn owner_offset(slot: u32) -> u64 {
    OWNERS_AT + u64::from(slot) * OWNER_RECORD as u64
}

/// The cgroup name recorded for `slot`, empty when none is (or it cannot be read).
fn read_owner(file: &File, slot: u32) -> String {
    let mut record = [0u8; OWNER_RECORD];
    let n = file.read_at(&mut record, owner_offset(slot)).unwrap_or(0);
    let end = record[..n].iter().position(|&b| b == 0).unwrap_or(n);
    String::from_utf8_lossy(&record[..end]).into_owned()
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
        let a = IdSlot::reserve(&file, 7, &|_| false, Purpose::Sandbox).expect("first");
        let b = IdSlot::reserve(&file, 7, &|_| false, Purpose::Sandbox).expect("second");
        assert_ne!(a.host_id(), b.host_id());
        assert!(a.host_id() >= HOST_ID_BASE && a.host_id() < HOST_ID_BASE + SLOTS);
        let first = a.host_id();
        drop(a);
        let c = IdSlot::reserve(&file, 7, &|_| false, Purpose::Sandbox).expect("third");
        assert_eq!(c.host_id(), first, "a released slot is reused");
    }

    /// A slot whose last run's cgroup remains (a trusted program outlived its warden and its
    /// helper) is passed over; once the cgroup is gone, it is reused.
    #[test]
    fn a_slot_whose_last_cgroup_remains_is_passed_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("slots");
        let a = IdSlot::reserve(&file, 7, &|_| false, Purpose::Sandbox).expect("first");
        a.set_owner("run-1-0").expect("recorded");
        let first = a.host_id();
        drop(a);
        let remains = |name: &str| name == "run-1-0";
        let b = IdSlot::reserve(&file, 7, &remains, Purpose::Sandbox).expect("another");
        assert_ne!(b.host_id(), first, "the slot of a cgroup that remains");
        b.set_owner("run-1-1").expect("recorded");
        drop(b);
        let c = IdSlot::reserve(&file, 7, &|_| false, Purpose::Sandbox).expect("again");
        assert_eq!(c.host_id(), first, "its cgroup gone, the slot is free");
        assert!(c.set_owner(&"x".repeat(OWNER_RECORD)).is_err());
    }

    /// Hunt esc F2: a slot whose uid's keyrings an earlier trusted run locked failed every
    /// later trusted run given it. Marked, it is passed over by trusted runs (whichever
    /// process reserves), and still given to sandboxes, which never see the host's keyrings.
    #[test]
    fn a_slot_marked_unusable_is_passed_over_by_trusted_runs_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("slots");
        let free = |_: &str| false;
        let a = IdSlot::reserve(&file, 7, &free, Purpose::Trusted).expect("first");
        let marked = a.host_id();
        mark_unusable_for_trusted(&file, marked, Unusable::Keyrings).expect("marked");
        drop(a);
        let b = IdSlot::reserve(&file, 7, &free, Purpose::Trusted).expect("another");
        assert_ne!(b.host_id(), marked, "a trusted run got the marked slot");
        drop(b);
        let c = IdSlot::reserve(&file, 7, &free, Purpose::Sandbox).expect("a sandbox's");
        assert_eq!(c.host_id(), marked, "a sandbox may have it");
        assert!(mark_unusable_for_trusted(&file, HOST_ID_BASE - 1, Unusable::Keyrings).is_err());
    }
}
