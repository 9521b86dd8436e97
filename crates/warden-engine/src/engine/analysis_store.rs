//! The analyses kept on disk between processes: a one-shot `warden run` or `warden analyze`
//! starts with an empty [`AnalysisCache`](super::analysis_cache::AnalysisCache), and the same
//! program run again (a harness retrying, a judge's resubmission, a user's edit-run loop) was
//! analysed again: a fork, the language's rules compiled, the parse, about 1.5 ms of a python
//! hello's 20 (docs/BENCHMARKS.md).
//!
//! An analysis is a pure function of the cache's key (language, content, what the program's
//! other files read) and of the analyzer, whose rules are embedded in the binary. So an entry
//! is addressed by a SHA-256 of the key and of the running binary's identity (its file's
//! device, inode, size and modification time, and warden's version): a rebuilt or upgraded warden, whose
//! rules may grade the same code otherwise, finds none of the old entries.
//!
//! The store is [`SLOTS`] files, one entry each, the slot chosen by the address's first byte:
//! bounded by construction (at most `SLOTS` × [`MAX_ENTRY`] bytes), nothing to evict. An entry
//! holds its whole address, so a slot holding another program's analysis is a miss, and one
//! that cannot be read whole or parsed is a miss too. An entry is written to a temporary name
//! and renamed into place: a reader sees a whole entry or the one before.
//!
//! A kept analysis chooses a run's mode, so no other user may write here: the directory is
//! warden's own and closed to others (`compile_cache::own_root_of`), as the compile cache's,
//! whose entries run as programs, and it is neither read nor written otherwise.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};
use warden_core::Analysis;

use crate::compile_cache::{own_metadata, sweep_stale_temps, temp_path};

/// How many entries the store holds.
pub(super) const SLOTS: usize = 256;
/// The largest entry kept (its address and its analysis as JSON): a program with thousands of
/// findings is analysed again rather than stored.
pub(super) const MAX_ENTRY: usize = 64 * 1024;
/// What the directory is called in errors.
const NAME: &str = "analysis cache";

/// Analyses on disk in `dir`, for the binary `identity` names.
#[derive(Debug)]
pub(super) struct AnalysisStore {
    dir: PathBuf,
    identity: OnceLock<Option<[u8; 32]>>,
}

impl AnalysisStore {
    /// The store in `dir` (created at the first entry kept), for the running binary.
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            identity: OnceLock::new(),
        }
    }

    /// The store in `dir` for a binary of `identity` (tests: another build).
    #[cfg(test)]
    pub(super) fn for_binary(dir: PathBuf, identity: [u8; 32]) -> Self {
        Self {
            dir,
            identity: OnceLock::from(Some(identity)),
        }
    }

    /// The address of the analysis the memory cache keeps under `key`, or `None` when the
    /// running binary cannot be identified (then nothing is read or written).
    fn address(&self, key: &[u8; 32]) -> Option<[u8; 32]> {
        let identity = (*self.identity.get_or_init(binary_identity))?;
        let mut hash = Sha256::new();
        hash.update(b"warden-analysis-v1");
        hash.update(identity);
        hash.update(key);
        Some(hash.finalize().into())
    }

    /// The analysis kept under `key`, if its slot holds it.
    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Analysis> {
        let address = self.address(key)?;
        let dir = self.open_dir().ok()?;
        // Not blocking: a FIFO in a slot's place (only the directory's owner could put one
        // there) would otherwise hold the run before any of its limits, signals blocked.
        let slot = nix::fcntl::openat(
            &dir,
            slot_name(&address).as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
        let file = fs::File::from(slot);
        if !file.metadata().ok()?.is_file() {
            return None;
        }
        let mut entry = Vec::new();
        file.take(MAX_ENTRY as u64 + 1)
            .read_to_end(&mut entry)
            .ok()?;
        if entry.len() > MAX_ENTRY {
            return None;
        }
        let (stored, analysis) = entry.split_at_checked(address.len())?;
        if stored != address {
            return None;
        }
        serde_json::from_slice(analysis).ok()
    }

    /// Keeps `analysis` under `key`, in place of whatever its slot held. Failing to keep it
    /// (a full disk, a directory others may write into) costs only the next run's analysis.
    pub(super) fn put(&self, key: &[u8; 32], analysis: &Analysis) {
        if let Err(e) = self.try_put(key, analysis) {
            tracing::debug!(dir = %self.dir.display(), error = %e, "keeping an analysis");
        }
    }

    fn try_put(&self, key: &[u8; 32], analysis: &Analysis) -> io::Result<()> {
        let Some(address) = self.address(key) else {
            return Ok(());
        };
        let mut entry = address.to_vec();
        serde_json::to_writer(&mut entry, analysis)?;
        if entry.len() > MAX_ENTRY {
            return Ok(());
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let dir = self.open_dir()?;
        let slot = slot_name(&address);
        let temp = temp_path(Path::new(""), &slot);
        let temp = temp.to_string_lossy();
        let written = nix::fcntl::openat(
            &dir,
            temp.as_ref(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(io::Error::from)
        .and_then(|fd| fs::File::from(fd).write_all(&entry))
        .and_then(|()| {
            nix::fcntl::renameat(&dir, temp.as_ref(), &dir, slot.as_str()).map_err(io::Error::from)
        });
        if written.is_err() {
            let _ =
                nix::unistd::unlinkat(&dir, temp.as_ref(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        // A writer killed between its write and its rename leaves its temporary behind; one
        // put in `SLOTS` looks for such leftovers.
        if address[0] == 0 {
            sweep_stale_temps(&self.dir);
        }
        written
    }

    /// The directory, opened without following a link, if it may hold the store: warden's
    /// own and closed to others (`compile_cache::own_named_root_of`'s rule, checked on what
    /// was opened). Every slot is then opened in it, so that the directory checked is the one
    /// read and written, whatever is renamed into its path meanwhile.
    fn open_dir(&self) -> io::Result<fs::File> {
        let dir = nix::fcntl::open(
            &self.dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the {NAME}'s directory {} is a symbolic link or not a directory",
                    self.dir.display()
                ),
            ),
            e => io::Error::from(e),
        })?;
        let dir = fs::File::from(dir);
        own_metadata(&dir.metadata()?, &self.dir, NAME)?;
        Ok(dir)
    }

    /// The store's directory.
    #[cfg(test)]
    pub(super) fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// The name of the slot that holds the entry at `address`.
fn slot_name(address: &[u8; 32]) -> String {
    format!("{:02x}", usize::from(address[0]) % SLOTS)
}

/// What tells this build of warden from any other: its version and its binary file's device,
/// inode, size and modification time (a rebuild or an upgrade changes them; a copy is another
/// file). Not its change time, which a new hard link to it moves (`perf` makes them), though
/// the binary is the same. `None` when the binary's file cannot be examined.
fn binary_identity() -> Option<[u8; 32]> {
    let meta = fs::metadata("/proc/self/exe").ok()?;
    let mut hash = Sha256::new();
    hash.update(env!("CARGO_PKG_VERSION").as_bytes());
    hash.update([0]);
    for value in [
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
    ] {
        hash.update(value.to_le_bytes());
    }
    Some(hash.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use warden_core::{Finding, ThreatLevel};

    fn high() -> Analysis {
        Analysis {
            threat_level: ThreatLevel::High,
            findings: vec![Finding {
                rule: "python.eval".into(),
                severity: ThreatLevel::High,
                line: 1,
                excerpt: "eval(x)".into(),
                explanation: "runs code".into(),
            }],
            parse_error: None,
        }
    }

    /// The one file of `store`'s directory.
    fn only_slot(store: &AnalysisStore) -> PathBuf {
        let mut files = fs::read_dir(store.dir()).expect("dir");
        let slot = files.next().expect("a slot").expect("entry").path();
        assert!(files.next().is_none(), "one slot");
        slot
    }

    #[test]
    fn an_entry_is_read_back_by_the_same_binary_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("analysis");
        let store = AnalysisStore::for_binary(root.clone(), [1; 32]);
        assert_eq!(store.get(&[7; 32]), None, "nothing kept yet");
        store.put(&[7; 32], &high());
        assert_eq!(store.get(&[7; 32]), Some(high()));
        assert_eq!(store.get(&[8; 32]), None, "another key");
        let again = AnalysisStore::for_binary(root.clone(), [1; 32]);
        assert_eq!(again.get(&[7; 32]), Some(high()), "another process");
        let rebuilt = AnalysisStore::for_binary(root.clone(), [2; 32]);
        assert_eq!(rebuilt.get(&[7; 32]), None, "another build of warden");
        let mode = fs::metadata(&root).expect("dir").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let names: Vec<_> = fs::read_dir(&root)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "one slot, no temporary left: {names:?}");
    }

    #[test]
    fn the_store_is_bounded_by_its_slots() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AnalysisStore::for_binary(dir.path().join("a"), [1; 32]);
        for i in 0..4 * SLOTS as u32 {
            let mut key = [0; 32];
            key[..4].copy_from_slice(&i.to_le_bytes());
            store.put(&key, &high());
        }
        let files = fs::read_dir(store.dir()).expect("dir").count();
        assert!(files <= SLOTS, "{files} files");
        let mut big = high();
        big.findings = vec![big.findings[0].clone(); MAX_ENTRY / 40];
        store.put(&[9; 32], &big);
        assert_eq!(
            store.get(&[9; 32]),
            None,
            "an entry past the bound is not kept"
        );
    }

    #[test]
    fn a_damaged_or_foreign_slot_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AnalysisStore::for_binary(dir.path().join("a"), [1; 32]);
        store.put(&[7; 32], &high());
        let slot = only_slot(&store);
        let entry = fs::read(&slot).expect("slot");
        fs::write(&slot, &entry[..entry.len() - 1]).expect("truncate");
        assert_eq!(store.get(&[7; 32]), None, "a truncated entry");
        let mut other = entry.clone();
        other[31] ^= 1;
        fs::write(&slot, &other).expect("write");
        assert_eq!(store.get(&[7; 32]), None, "another address in the slot");
        fs::remove_file(&slot).expect("rm");
        std::os::unix::fs::symlink("/etc/hostname", &slot).expect("symlink");
        assert_eq!(store.get(&[7; 32]), None, "a symlink is not followed");
    }

    /// Regression hunt F1: a FIFO in a slot's place (only the directory's owner can put one
    /// there) held `warden run` in `open` forever, before any of its limits, with SIGTERM
    /// blocked.
    #[test]
    fn a_fifo_or_a_directory_in_a_slots_place_is_a_miss_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = AnalysisStore::for_binary(dir.path().join("a"), [1; 32]);
        store.put(&[7; 32], &high());
        let slot = only_slot(&store);
        fs::remove_file(&slot).expect("rm");
        nix::unistd::mkfifo(&slot, Mode::from_bits_truncate(0o600)).expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = AnalysisStore::for_binary(store.dir().to_owned(), [1; 32]);
        std::thread::spawn(move || tx.send(reader.get(&[7; 32])).expect("send"));
        let answer = rx.recv_timeout(std::time::Duration::from_secs(60));
        if answer.is_err() {
            // Unblock the reader before failing, so the test process can end.
            let _ = fs::OpenOptions::new().write(true).open(&slot);
        }
        assert_eq!(answer, Ok(None), "a FIFO is a miss, not a wait");
        fs::remove_file(&slot).expect("rm");
        fs::create_dir(&slot).expect("mkdir");
        assert_eq!(store.get(&[7; 32]), None, "a directory");
    }

    #[test]
    fn a_directory_other_users_may_write_into_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("a");
        let store = AnalysisStore::for_binary(root.clone(), [1; 32]);
        store.put(&[7; 32], &high());
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).expect("chmod");
        assert_eq!(
            store.get(&[7; 32]),
            None,
            "a planted entry could pass for ours"
        );
        let before: Vec<_> = fs::read_dir(&root).expect("dir").collect();
        store.put(&[8; 32], &high());
        let after: Vec<_> = fs::read_dir(&root).expect("dir").collect();
        assert_eq!(before.len(), after.len(), "nothing written");
    }

    #[test]
    fn a_link_in_the_directorys_place_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("elsewhere");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&target)
            .expect("mkdir");
        let root = dir.path().join("a");
        std::os::unix::fs::symlink(&target, &root).expect("symlink");
        let store = AnalysisStore::for_binary(root.clone(), [1; 32]);
        store.put(&[7; 32], &high());
        assert_eq!(
            fs::read_dir(&target).expect("dir").count(),
            0,
            "nothing written through the link"
        );
        let direct = AnalysisStore::for_binary(target.clone(), [1; 32]);
        direct.put(&[7; 32], &high());
        assert_eq!(store.get(&[7; 32]), None, "nothing read through the link");
    }

    #[test]
    fn the_running_binary_is_identified() {
        assert!(binary_identity().is_some());
        assert_eq!(binary_identity(), binary_identity());
    }
}
