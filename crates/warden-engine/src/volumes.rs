//! Named persistent volumes (issue 12, docs/volumes.md): a directory that outlives executions,
//! with a quota, mounted read-write or read-only into the sandboxes of the runs that ask for it.
//!
//! A volume is `<dir>/<name>/`: `image`, a sparse file of the quota's size formatted ext4 (so
//! that a program filling it gets `ENOSPC` and nothing else on the host fills up), `meta.json`
//! (size, creation, last use, bytes used) and `mnt/`, where the image is loop-mounted on the
//! host while a run uses it. The sandbox gets `mnt/` as an id-mapped bind
//! ([`warden_sandbox::VolumeMount`]); no sandbox sees a volume it did not ask for, since
//! `<dir>` is in none of their binds.
//!
//! The CLI and a server may use one volume at once, so what must be exclusive is decided by
//! `flock(2)` locks on files of the volume, which the kernel releases when a process dies:
//! `mount.lock` serialises mounting and unmounting; every process that has the volume mounted
//! for a lease holds `users.lock` shared, and the last one out (the one that can take it
//! exclusively) unmounts; a writer holds `writer.lock`, so there is at most one writer at a
//! time across processes. Readers are allowed beside a writer and see its writes as they are
//! made. A mount left by a process that died is found at the next attach and reused, and
//! undone when that lease ends (or by `remove`).

mod disk;
mod meta;
mod sessions;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use warden_core::config::ConcurrentWriters;
use warden_core::ByteSize;

use meta::Meta;

use crate::cancel::Cancellation;

/// The smallest quota: below a few MiB ext4's own metadata is most of the image.
pub const MIN_VOLUME_SIZE: ByteSize = warden_core::config::MIN_VOLUME_SIZE;

/// Where volumes are kept when nothing else says.
pub const SYSTEM_VOLUMES_DIR: &str = "/var/lib/warden/volumes";

/// How the names of sessions' own workspaces begin (`session-<id>`): no other volume may.
pub const SESSION_PREFIX: &str = "session-";

/// How long a waiting writer sleeps between tries of the writer lock.
const WRITER_POLL: Duration = Duration::from_millis(50);

/// The `[volumes]` settings, `WARDEN_VOLUMES_DIR` applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumesSettings {
    /// Where volumes are kept.
    pub dir: PathBuf,
    /// The largest quota `create` accepts.
    pub max_size: ByteSize,
    /// The most one owner's volumes (its sessions' own workspaces included) reserve together.
    pub quota_per_caller: ByteSize,
    /// `prune` removes volumes unused this long; `None`, every volume not in use.
    pub prune_after: Option<Duration>,
    /// What a second writer gets.
    pub concurrent_writers: ConcurrentWriters,
    /// The longest a writer waits under [`ConcurrentWriters::Wait`].
    pub writer_wait: Duration,
}

impl VolumesSettings {
    /// The defaults, volumes kept in `dir`.
    pub fn in_dir(dir: PathBuf) -> Self {
        Self {
            dir,
            max_size: warden_core::config::DEFAULT_MAX_VOLUME_SIZE,
            quota_per_caller: warden_core::config::DEFAULT_QUOTA_PER_CALLER,
            prune_after: None,
            concurrent_writers: ConcurrentWriters::Refuse,
            writer_wait: warden_core::config::DEFAULT_WRITER_WAIT,
        }
    }
}

/// What is known of one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    /// Its name.
    pub name: String,
    /// Its quota: the size of its filesystem.
    #[serde(rename = "size_bytes", serialize_with = "as_bytes")]
    pub size: ByteSize,
    /// Bytes its files take: read from the filesystem while it is mounted, else as the last
    /// lease left it.
    #[serde(rename = "used_bytes", serialize_with = "as_bytes")]
    pub used: ByteSize,
    /// When it was created.
    #[serde(serialize_with = "crate::history::time::rfc3339")]
    pub created_at: SystemTime,
    /// When a lease on it last ended or began; absent if no run ever used it.
    #[serde(serialize_with = "rfc3339_opt")]
    pub last_used_at: Option<SystemTime>,
    /// Who uses it now.
    pub in_use: InUse,
    /// The API token that created it; absent for the local caller's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The session whose own workspace it is (removed with it); absent for others.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The sessions, running or stopped, that use it as their workspace (`workspace: NAME`):
    /// it is not removed or pruned while one does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workspace_of: Vec<String>,
}

/// Who uses a volume now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct InUse {
    /// Whether some process (this one or another) has it mounted for a lease.
    pub attached: bool,
    /// Whether some process holds it for writing.
    pub writer: bool,
    /// Read-only leases of this process.
    pub readers_here: usize,
    /// Read-write leases of this process (0 or 1).
    pub writers_here: usize,
}

impl InUse {
    /// Whether anything uses the volume.
    pub fn any(&self) -> bool {
        self.attached || self.writer || self.readers_here + self.writers_here > 0
    }
}

/// A volume operation failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// The name is not `[a-z0-9][a-z0-9_.-]{0,62}`.
    #[error("invalid volume name {name:?}: use 1 to 63 of a-z 0-9 _ . - starting with a letter or digit")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The size is below the floor or above `[volumes] max_size`.
    #[error("volume size {size} is outside {min} to {max} ([volumes] max_size)")]
    InvalidSize {
        /// The size asked for.
        size: ByteSize,
        /// The smallest size.
        min: ByteSize,
        /// The largest size.
        max: ByteSize,
    },
    /// A volume of this name exists.
    #[error("volume {name:?} already exists")]
    Exists {
        /// The volume.
        name: String,
    },
    /// No volume has this name.
    #[error("no volume named {name:?}")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The volume is a session's own workspace, which goes with the session (`remove`).
    #[error("volume {name:?} is the workspace of session {session}: remove the session instead")]
    SessionWorkspace {
        /// The volume.
        name: String,
        /// The session.
        session: String,
    },
    /// A session, running or stopped, uses the volume as its workspace (`remove`).
    #[error(
        "volume {name:?} is the workspace of session {session}: remove the session first (the \
         volume is kept)"
    )]
    WorkspaceOf {
        /// The volume.
        name: String,
        /// The session.
        session: String,
    },
    /// The name is kept for sessions' workspaces (`create`).
    #[error("invalid volume name {name:?}: names starting with {SESSION_PREFIX:?} are kept for sessions' workspaces")]
    Reserved {
        /// The name given.
        name: String,
    },
    /// The volume is attached to a run or session (`remove`).
    #[error("volume {name:?} is in use")]
    InUse {
        /// The volume.
        name: String,
    },
    /// Another run or session writes to the volume (`[volumes] concurrent_writers`).
    #[error(
        "volume {name:?} already has a writer{}",
        waited.map(|w| format!(" (waited {:.1}s)", w.as_secs_f64())).unwrap_or_default()
    )]
    WriterBusy {
        /// The volume.
        name: String,
        /// How long this writer waited, under `concurrent_writers = "wait"`.
        waited: Option<Duration>,
    },
    /// The execution that waited for another writer was cancelled
    /// ([`Volumes::attach_within`]): the engine answers it as that execution's cancel.
    #[error("the wait for volume {name:?}'s writer was cancelled")]
    Cancelled {
        /// The volume.
        name: String,
    },
    /// The owner's volumes would reserve more than `[volumes] quota_per_caller` (`create`).
    #[error(
        "a volume of {size} would take this caller's volumes (its sessions' workspaces \
         included) to {total}, above its quota of {quota} ([volumes] quota_per_caller): remove \
         a volume or a session first"
    )]
    OverQuota {
        /// The volume's size.
        size: ByteSize,
        /// What the owner's volumes would reserve with it.
        total: ByteSize,
        /// The quota.
        quota: ByteSize,
    },
    /// The host's file system has no room for the volume's image (`create`).
    #[error("no room on the host for a volume of {size} in {dir}")]
    NoSpace {
        /// The volume's size.
        size: ByteSize,
        /// The volumes' directory.
        dir: PathBuf,
    },
    /// A host program volumes need is missing.
    #[error("{program} is missing (apt-get install {package})")]
    MissingProgram {
        /// Its path.
        program: &'static str,
        /// The package that has it.
        package: &'static str,
    },
    /// A host program failed.
    #[error("{step}: {program} failed ({status}): {stderr}")]
    Program {
        /// What it was for.
        step: &'static str,
        /// Its path.
        program: &'static str,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What it said.
        stderr: String,
    },
    /// A file operation failed.
    #[error("{step} {path}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// `meta.json` does not parse.
    #[error("reading {path}")]
    Meta {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: serde_json::Error,
    },
}

/// Whose fault a [`VolumeError`] is, for an adapter's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeErrorKind {
    /// A bad name or size (HTTP 400).
    Invalid,
    /// No such volume (HTTP 404).
    NotFound,
    /// It exists, is in use, or has a writer (HTTP 409).
    Conflict,
    /// The caller's volumes would pass its quota (HTTP 507).
    Quota,
    /// The host lacks a program volumes need, or room for one (HTTP 503).
    Unavailable,
    /// warden failed (HTTP 500).
    Internal,
}

impl VolumeError {
    /// Whose fault it is.
    pub fn kind(&self) -> VolumeErrorKind {
        match self {
            VolumeError::InvalidName { .. }
            | VolumeError::InvalidSize { .. }
            | VolumeError::Reserved { .. } => VolumeErrorKind::Invalid,
            VolumeError::NotFound { .. } => VolumeErrorKind::NotFound,
            VolumeError::Exists { .. }
            | VolumeError::SessionWorkspace { .. }
            | VolumeError::WorkspaceOf { .. }
            | VolumeError::InUse { .. }
            | VolumeError::WriterBusy { .. }
            | VolumeError::Cancelled { .. } => VolumeErrorKind::Conflict,
            VolumeError::OverQuota { .. } => VolumeErrorKind::Quota,
            VolumeError::MissingProgram { .. } | VolumeError::NoSpace { .. } => {
                VolumeErrorKind::Unavailable
            }
            VolumeError::Program { .. } | VolumeError::Io { .. } | VolumeError::Meta { .. } => {
                VolumeErrorKind::Internal
            }
        }
    }

    fn io(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.to_owned();
        move |source| VolumeError::Io { step, path, source }
    }
}

/// Checks a volume name: `[a-z0-9][a-z0-9_.-]{0,62}`, so that it is one path component that
/// is never `.`, `..` or hidden.
pub fn check_name(name: &str) -> Result<(), VolumeError> {
    let bytes = name.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(b));
    if first_ok && rest_ok && bytes.len() <= 63 {
        Ok(())
    } else {
        Err(VolumeError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// The volumes of one host, shared by clones (one per engine).
#[derive(Debug, Clone)]
pub struct Volumes {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: VolumesSettings,
    /// This process's mounted volumes, by name.
    attached: Mutex<HashMap<String, Attached>>,
}

/// A volume this process has mounted for its leases.
#[derive(Debug)]
struct Attached {
    readers: usize,
    writers: usize,
    /// `users.lock`, held shared while this process has leases.
    users: Flock<File>,
}

impl Volumes {
    /// The volumes kept as `settings` say. Nothing is touched until the first call.
    pub fn new(settings: VolumesSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                attached: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &VolumesSettings {
        &self.inner.settings
    }

    /// Creates an empty volume of `size`, the local caller's.
    pub fn create(&self, name: &str, size: ByteSize) -> Result<VolumeInfo, VolumeError> {
        self.of(None).create(name, size)
    }

    /// Creates the own workspace of the session `session`, of `owner`, kept in the sessions
    /// directory whose identity is `store`.
    pub(crate) fn create_workspace(
        &self,
        name: &str,
        size: ByteSize,
        owner: Option<&str>,
        (session, store): (&str, Option<&str>),
    ) -> Result<VolumeInfo, VolumeError> {
        let mut meta = Meta::new(size, owner, Some(session));
        meta.store = store.map(str::to_owned);
        self.build(name, size, meta)
    }

    /// Creates a volume with `meta`.
    fn build(&self, name: &str, size: ByteSize, meta: Meta) -> Result<VolumeInfo, VolumeError> {
        check_name(name)?;
        let max = self.inner.settings.max_size;
        if size < MIN_VOLUME_SIZE || size > max {
            return Err(VolumeError::InvalidSize {
                size,
                min: MIN_VOLUME_SIZE,
                max,
            });
        }
        let root = self.root()?;
        let dir = root.join(name);
        if dir.exists() {
            return Err(VolumeError::Exists {
                name: name.to_owned(),
            });
        }
        // Every creation of the host, across processes, one at a time from the owner's count
        // to the volume in place: two at once cannot both fit in what one had left. The lock
        // is the volumes' directory's own, which leaves no file behind.
        let _creating = File::open(&root)
            .map_err(VolumeError::io("opening", &root))
            .and_then(|dir| {
                Flock::lock(dir, FlockArg::LockExclusive)
                    .map_err(|(_, e)| VolumeError::io("locking", &root)(e.into()))
            })?;
        if dir.exists() {
            return Err(VolumeError::Exists {
                name: name.to_owned(),
            });
        }
        self.check_quota(meta.owner.as_deref(), size)?;
        // Built under a hidden name and renamed into place, so that a volume either exists
        // whole or not at all; a crash leaves a hidden directory that `prune` removes.
        // Unique to this attempt (a server's threads share its pid): another creation of the
        // same name meanwhile builds beside it, and a failed one removes only its own. The pid
        // ends the name, as the sweep of a crash's leftovers reads it.
        static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
        let attempt = ATTEMPTS.fetch_add(1, Ordering::Relaxed);
        let building = root.join(format!(".{name}.new-{attempt}-{}", std::process::id()));
        let built = disk::build(&building, size).and_then(|()| {
            meta.write(&building)?;
            // rename(2) fails on an existing non-empty directory: another process created
            // the same volume meanwhile.
            std::fs::rename(&building, &dir).map_err(|e| {
                if dir.join(meta::FILE).exists() {
                    VolumeError::Exists {
                        name: name.to_owned(),
                    }
                } else {
                    VolumeError::io("moving the new volume to", &dir)(e)
                }
            })
        });
        if built.is_err() {
            let _ = std::fs::remove_dir_all(&building);
        }
        built?;
        tracing::info!(volume = name, size = %size, "volume created");
        self.inspect(name)
    }

    /// Refuses a new volume of `size` that would take `owner`'s volumes past `[volumes]
    /// quota_per_caller`. Each volume reserves its whole size on the host.
    fn check_quota(&self, owner: Option<&str>, size: ByteSize) -> Result<(), VolumeError> {
        let root = &self.inner.settings.dir;
        let entries = std::fs::read_dir(root).map_err(VolumeError::io("listing", root))?;
        let mut held = 0u64;
        for name in entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
        {
            match Meta::read(&root.join(&name), &name) {
                Ok(meta) if meta.owner.as_deref() == owner => {
                    held = held.saturating_add(meta.size.bytes());
                }
                // Removed meanwhile, or not a volume.
                Ok(_) | Err(VolumeError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let quota = self.inner.settings.quota_per_caller;
        let total = ByteSize(held.saturating_add(size.bytes()));
        if total > quota {
            return Err(VolumeError::OverQuota { size, total, quota });
        }
        Ok(())
    }

    /// Every volume, by name.
    pub fn list(&self) -> Result<Vec<VolumeInfo>, VolumeError> {
        let root = &self.inner.settings.dir;
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(VolumeError::io("listing", root)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            match self.inspect(&name) {
                Ok(info) => infos.push(info),
                // Removed meanwhile (its files may have gone under the reads).
                Err(VolumeError::NotFound { .. }) => {}
                Err(_) if self.existing(&name).is_err() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(infos)
    }

    /// One volume.
    pub fn inspect(&self, name: &str) -> Result<VolumeInfo, VolumeError> {
        let dir = self.existing(name)?;
        let meta = Meta::read(&dir, name)?;
        let in_use = self.in_use(name, &dir)?;
        let mnt = dir.join("mnt");
        let used = if in_use.attached {
            disk::used(&mnt).unwrap_or(meta.used)
        } else {
            meta.used
        };
        Ok(VolumeInfo {
            name: name.to_owned(),
            size: meta.size,
            used,
            created_at: meta.created_at(),
            last_used_at: meta.last_used_at(),
            in_use,
            owner: meta.owner,
            session: meta.session,
            workspace_of: meta.workspace_of.into_keys().collect(),
        })
    }

    /// Removes a volume and its files; refused while a run or session uses it, while a
    /// session (running or stopped) has it as its workspace, and for a session's own
    /// workspace (which goes with its session).
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        let dir = self.existing(name)?;
        if let Some(session) = Meta::read(&dir, name)?.session {
            return Err(VolumeError::SessionWorkspace {
                name: name.to_owned(),
                session,
            });
        }
        self.remove_dir(name, dir)
    }

    /// Removes the own workspace of a session that is removed; gone already is fine.
    pub(crate) fn remove_workspace(&self, name: &str) -> Result<(), VolumeError> {
        match self
            .existing(name)
            .and_then(|dir| self.remove_dir(name, dir))
        {
            // Gone before, or while this waited for the removal ahead of it.
            Err(VolumeError::NotFound { .. }) => Ok(()),
            removed => removed,
        }
    }

    fn remove_dir(&self, name: &str, dir: PathBuf) -> Result<(), VolumeError> {
        let attached = self.attached();
        let _mounting = lock_mounting(name, &dir)?;
        // Under the lock a session's claim takes: a session given the volume meanwhile
        // keeps it.
        if let Some(session) = Meta::read(&dir, name)?.workspace_of.into_keys().next() {
            return Err(VolumeError::WorkspaceOf {
                name: name.to_owned(),
                session,
            });
        }
        let busy = VolumeError::InUse {
            name: name.to_owned(),
        };
        if attached.contains_key(name) {
            return Err(busy);
        }
        let users = try_lock(&dir.join("users.lock"), true)?.ok_or(busy)?;
        let mnt = dir.join("mnt");
        if disk::is_mounted(&mnt)? {
            // Left by a process that died while a run used the volume.
            disk::unmount(&mnt)?;
        }
        // Renamed first, so that an attach waiting for `mount.lock` finds no volume.
        let doomed = self
            .inner
            .settings
            .dir
            .join(format!(".{name}.removing-{}", std::process::id()));
        std::fs::rename(&dir, &doomed).map_err(VolumeError::io("renaming", &dir))?;
        drop(users);
        std::fs::remove_dir_all(&doomed).map_err(VolumeError::io("removing", &doomed))?;
        tracing::info!(volume = name, "volume removed");
        Ok(())
    }

    /// Removes every volume not in use whose last use (or creation) is older than
    /// `[volumes] prune_after`, or every volume not in use when that is unset; and what a
    /// crash left half-built or half-removed. Returns the names of the volumes removed.
    pub fn prune(&self) -> Result<Vec<String>, VolumeError> {
        self.of(None).prune()
    }

    /// [`Volumes::prune`] of the volumes in `infos`; sessions' workspaces (their own, and
    /// those given to a session that is not removed) are skipped.
    fn prune_these(&self, infos: Vec<VolumeInfo>) -> Result<Vec<String>, VolumeError> {
        let now = SystemTime::now();
        let mut removed = Vec::new();
        let workspace = |i: &VolumeInfo| i.session.is_some() || !i.workspace_of.is_empty();
        for info in infos.into_iter().filter(|i| !workspace(i)) {
            let last = info.last_used_at.unwrap_or(info.created_at);
            let idle = now.duration_since(last).unwrap_or_default();
            let old_enough = self
                .inner
                .settings
                .prune_after
                .is_none_or(|age| idle >= age);
            if info.in_use.any() || !old_enough {
                continue;
            }
            match self.remove(&info.name) {
                Ok(()) => removed.push(info.name),
                // Attached meanwhile, or removed by another process.
                Err(
                    VolumeError::InUse { .. }
                    | VolumeError::NotFound { .. }
                    | VolumeError::SessionWorkspace { .. }
                    | VolumeError::WorkspaceOf { .. },
                ) => {}
                Err(e) => return Err(e),
            }
        }
        self.sweep_leftovers();
        self.release_stale_mounts();
        Ok(removed)
    }

    /// Attaches a volume for a run or session, waiting for another writer at most
    /// `[volumes] writer_wait` when `concurrent_writers = "wait"`.
    pub fn attach(&self, name: &str, writable: bool) -> Result<VolumeLease, VolumeError> {
        self.attach_within(name, writable, self.inner.settings.writer_wait, None)
    }

    /// Attaches a volume, a writer waiting at most `max_wait` (and at most `[volumes]
    /// writer_wait`) for another, and no longer than `cancel`, the execution's, is not
    /// cancelled ([`VolumeError::Cancelled`]): the volume's image is mounted on the host if no
    /// lease of any process has it mounted, and stays mounted until the last lease ends.
    pub fn attach_within(
        &self,
        name: &str,
        writable: bool,
        max_wait: Duration,
        cancel: Option<&Cancellation>,
    ) -> Result<VolumeLease, VolumeError> {
        let dir = self.existing(name)?;
        let writer = if writable {
            Some(self.take_writer(name, &dir, max_wait, cancel)?)
        } else {
            None
        };
        let mut attached = self.attached();
        match attached.get_mut(name) {
            Some(a) if writable => a.writers += 1,
            Some(a) => a.readers += 1,
            None => {
                let users = self.mount(name, &dir)?;
                attached.insert(
                    name.to_owned(),
                    Attached {
                        readers: usize::from(!writable),
                        writers: usize::from(writable),
                        users,
                    },
                );
            }
        }
        drop(attached);
        let touched = lock(&dir.join("mount.lock"), FlockArg::LockExclusive)
            .and_then(|_mounting| Meta::touch(&dir, name, None));
        if let Err(e) = touched {
            tracing::warn!(volume = name, error = %e, "volume's last use not recorded");
        }
        Ok(VolumeLease {
            volumes: self.clone(),
            name: name.to_owned(),
            host: dir.join("mnt"),
            writable,
            _writer: writer,
        })
    }

    /// The volumes' directory, created 0700 if missing: volumes hold callers' files.
    fn root(&self) -> Result<PathBuf, VolumeError> {
        let root = &self.inner.settings.dir;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(VolumeError::io("creating", root))?;
        Ok(root.clone())
    }

    /// The directory of an existing volume.
    fn existing(&self, name: &str) -> Result<PathBuf, VolumeError> {
        check_name(name)?;
        let dir = self.inner.settings.dir.join(name);
        if dir.join(meta::FILE).is_file() {
            Ok(dir)
        } else {
            Err(VolumeError::NotFound {
                name: name.to_owned(),
            })
        }
    }

    fn attached(&self) -> MutexGuard<'_, HashMap<String, Attached>> {
        // A panic while holding the lock leaves the map as consistent as the last update.
        self.inner
            .attached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Who uses a volume: this process's leases, and probes of the other processes' locks
    /// under `mount.lock`, so that a probe never makes an attach fail.
    fn in_use(&self, name: &str, dir: &Path) -> Result<InUse, VolumeError> {
        let (readers_here, writers_here) = self
            .attached()
            .get(name)
            .map_or((0, 0), |a| (a.readers, a.writers));
        let _mounting = lock_mounting(name, dir)?;
        let attached =
            readers_here + writers_here > 0 || try_lock(&dir.join("users.lock"), true)?.is_none();
        let writer = writers_here > 0 || try_lock(&dir.join("writer.lock"), true)?.is_none();
        Ok(InUse {
            attached,
            writer,
            readers_here,
            writers_here,
        })
    }

    /// Takes the volume's writer lock: at once, or polling until `max_wait` (capped by
    /// `writer_wait`) under `concurrent_writers = "wait"`, or until `cancel` is cancelled: a
    /// wait that went on after its client left kept the execution's worker and its token's
    /// place until the deadline (hunt srv 5).
    fn take_writer(
        &self,
        name: &str,
        dir: &Path,
        max_wait: Duration,
        cancel: Option<&Cancellation>,
    ) -> Result<Flock<File>, VolumeError> {
        let settings = &self.inner.settings;
        let waits = settings.concurrent_writers == ConcurrentWriters::Wait;
        let started = Instant::now();
        let deadline = started + max_wait.min(settings.writer_wait);
        loop {
            if cancel.is_some_and(Cancellation::is_cancelled) {
                return Err(VolumeError::Cancelled {
                    name: name.to_owned(),
                });
            }
            {
                let _mounting = lock_mounting(name, dir)?;
                if let Some(writer) = try_lock(&dir.join("writer.lock"), true)? {
                    return Ok(writer);
                }
            }
            if !waits || Instant::now() >= deadline {
                return Err(VolumeError::WriterBusy {
                    name: name.to_owned(),
                    waited: waits.then(|| started.elapsed()),
                });
            }
            std::thread::sleep(WRITER_POLL);
        }
    }

    /// Mounts the volume for this process's first lease (or finds it mounted by another
    /// process, or left mounted by one that died) and holds `users.lock` shared.
    fn mount(&self, name: &str, dir: &Path) -> Result<Flock<File>, VolumeError> {
        // Removed while this attach waited for the lock: not found.
        let _mounting = lock_mounting(name, dir)?;
        self.existing(name)?;
        let users = lock(&dir.join("users.lock"), FlockArg::LockShared)?;
        let mnt = dir.join("mnt");
        if disk::is_mounted(&mnt)? {
            tracing::debug!(volume = name, "volume already mounted on the host; reused");
        } else {
            disk::mount(&dir.join("image"), &mnt)?;
            tracing::debug!(volume = name, "volume mounted on the host");
        }
        Ok(users)
    }

    /// Ends one lease; the last of this process unmounts the volume unless another process
    /// still has leases on it.
    fn release(&self, name: &str, writable: bool) {
        let mut attached = self.attached();
        let Some(a) = attached.get_mut(name) else {
            return;
        };
        if writable {
            a.writers -= 1;
        } else {
            a.readers -= 1;
        }
        if a.readers + a.writers > 0 {
            return;
        }
        let Some(a) = attached.remove(name) else {
            return;
        };
        let dir = self.inner.settings.dir.join(name);
        if let Err(e) = self.unmount_if_last(name, &dir, a.users) {
            tracing::warn!(volume = name, error = %e, "volume not unmounted");
        }
    }

    fn unmount_if_last(
        &self,
        name: &str,
        dir: &Path,
        users: Flock<File>,
    ) -> Result<(), VolumeError> {
        let _mounting = lock(&dir.join("mount.lock"), FlockArg::LockExclusive)?;
        let mnt = dir.join("mnt");
        let used = disk::used(&mnt).ok();
        if let Err(e) = Meta::touch(dir, name, used) {
            // Its last use unrecorded, the volume is unmounted all the same.
            tracing::warn!(volume = name, error = %e, "volume's use not recorded");
        }
        // Converting a flock is not atomic, but every conversion and new shared lock happens
        // under `mount.lock`, which this process holds.
        match users.relock(FlockArg::LockExclusiveNonblock) {
            Ok(()) => {
                disk::unmount(&mnt)?;
                tracing::debug!(volume = name, "volume unmounted from the host");
            }
            Err(nix::errno::Errno::EWOULDBLOCK) => {
                tracing::debug!(volume = name, "volume still used by another process");
            }
            Err(e) => {
                return Err(VolumeError::io("locking", &dir.join("users.lock"))(
                    e.into(),
                ));
            }
        }
        Ok(())
    }

    /// Unmounts the volumes a process that died left mounted on the host (no process holds
    /// their `users.lock`): a killed server's sessions and runs. Returns their names. Run by
    /// `warden serve` at its start and by `prune`.
    pub fn release_stale_mounts(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.inner.settings.dir) else {
            return Vec::new();
        };
        let mut released = Vec::new();
        for name in entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
        {
            if self.attached().contains_key(&name) {
                continue;
            }
            let dir = self.inner.settings.dir.join(&name);
            let mnt = dir.join("mnt");
            let stale = lock(&dir.join("mount.lock"), FlockArg::LockExclusive).and_then(|_m| {
                if !disk::is_mounted(&mnt)? {
                    return Ok(false);
                }
                // Nobody leases it: the mount is a dead process's.
                let Some(_users) = try_lock(&dir.join("users.lock"), true)? else {
                    return Ok(false);
                };
                disk::unmount(&mnt)?;
                Ok(true)
            });
            match stale {
                Ok(true) => released.push(name),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(volume = name, error = %e, "a stale mount was not released")
                }
            }
        }
        if !released.is_empty() {
            tracing::warn!(volumes = ?released, "unmounted volumes that a process which died had mounted");
        }
        released
    }

    /// Removes what a crash left: hidden directories of a create or remove whose process is
    /// gone.
    fn sweep_leftovers(&self) {
        let Ok(entries) = std::fs::read_dir(&self.inner.settings.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix('.')
                .and_then(|n| n.rsplit_once('-'))
                .and_then(|(_, pid)| pid.parse::<u32>().ok());
            let gone = pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists());
            if gone {
                let path = entry.path();
                if let Err(e) = disk::unmount_if_mounted(&path.join("mnt")).and_then(|()| {
                    std::fs::remove_dir_all(&path).map_err(VolumeError::io("removing", &path))
                }) {
                    tracing::warn!(path = %path.display(), error = %e, "leftover not removed");
                }
            }
        }
    }
}

impl Volumes {
    /// The volumes as `caller` reaches them: an API token (`Some`) the ones it created, as if
    /// no other existed; the local caller (`None`: the CLI, a server without tokens) every
    /// one.
    pub fn of<'a>(&'a self, caller: Option<&'a str>) -> CallersVolumes<'a> {
        CallersVolumes {
            volumes: self,
            caller,
        }
    }
}

/// [`Volumes`] as one caller reaches them ([`Volumes::of`]).
#[derive(Debug, Clone, Copy)]
pub struct CallersVolumes<'a> {
    volumes: &'a Volumes,
    caller: Option<&'a str>,
}

impl CallersVolumes<'_> {
    /// Whether the caller reaches a volume of `owner`.
    fn reaches(&self, owner: Option<&str>) -> bool {
        self.caller.is_none() || owner == self.caller
    }

    /// The directory of a volume the caller reaches; any other is not found.
    fn existing(&self, name: &str) -> Result<PathBuf, VolumeError> {
        let dir = self.volumes.existing(name)?;
        if self.reaches(Meta::read(&dir, name)?.owner.as_deref()) {
            Ok(dir)
        } else {
            Err(VolumeError::NotFound {
                name: name.to_owned(),
            })
        }
    }

    /// Creates an empty volume of `size`, the caller's. A name of a session's workspace's
    /// shape (`session-...`) is refused.
    pub fn create(&self, name: &str, size: ByteSize) -> Result<VolumeInfo, VolumeError> {
        if name.starts_with(SESSION_PREFIX) {
            return Err(VolumeError::Reserved {
                name: name.to_owned(),
            });
        }
        self.volumes
            .build(name, size, Meta::new(size, self.caller, None))
    }

    /// The volumes the caller reaches, by name.
    pub fn list(&self) -> Result<Vec<VolumeInfo>, VolumeError> {
        let mut all = self.volumes.list()?;
        all.retain(|info| self.reaches(info.owner.as_deref()));
        Ok(all)
    }

    /// One volume the caller reaches.
    pub fn inspect(&self, name: &str) -> Result<VolumeInfo, VolumeError> {
        self.existing(name)?;
        self.volumes.inspect(name)
    }

    /// Removes a volume the caller reaches ([`Volumes::remove`]).
    pub fn remove(&self, name: &str) -> Result<(), VolumeError> {
        self.existing(name)?;
        self.volumes.remove(name)
    }

    /// Removes the unused volumes the caller reaches ([`Volumes::prune`]).
    pub fn prune(&self) -> Result<Vec<String>, VolumeError> {
        self.volumes.prune_these(self.list()?)
    }

    /// Attaches a volume the caller reaches ([`Volumes::attach_within`]); checked again once
    /// attached, so that a volume made in its place meanwhile (another token's) is not.
    pub fn attach_within(
        &self,
        name: &str,
        writable: bool,
        max_wait: Duration,
        cancel: Option<&Cancellation>,
    ) -> Result<VolumeLease, VolumeError> {
        self.attach_identified(name, writable, max_wait, cancel, None)
    }
}

/// A volume attached for one run or session: its host directory stays mounted, and a writer
/// keeps the writer lock, until the lease is dropped.
#[derive(Debug)]
pub struct VolumeLease {
    volumes: Volumes,
    name: String,
    host: PathBuf,
    writable: bool,
    _writer: Option<Flock<File>>,
}

impl VolumeLease {
    /// The volume's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host directory the volume is mounted on.
    pub fn host_path(&self) -> &Path {
        &self.host
    }

    /// Whether the lease may write.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The sandbox mount of this volume at `target`.
    pub fn mount(&self, target: &Path) -> warden_sandbox::VolumeMount {
        warden_sandbox::VolumeMount {
            host: self.host.clone(),
            target: target.to_owned(),
            writable: self.writable,
        }
    }
}

impl Drop for VolumeLease {
    fn drop(&mut self) {
        self.volumes.release(&self.name, self.writable);
    }
}

/// Opens (creating) `path` and locks it, waiting.
/// Takes the volume `name`'s `mount.lock` in `dir`; `NotFound` when the volume is gone, or
/// went while this waited for the lock (a removal renames the directory under the lock): two
/// removals at once, or a listing during one, answer that and not an error of the lock file.
fn lock_mounting(name: &str, dir: &Path) -> Result<Flock<File>, VolumeError> {
    let gone = || VolumeError::NotFound {
        name: name.to_owned(),
    };
    let path = dir.join("mount.lock");
    let file = match open_lock(&path) {
        Err(VolumeError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(gone())
        }
        opened => opened?,
    };
    let locked = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| VolumeError::io("locking", &path)(e.into()))?;
    match std::fs::symlink_metadata(dir) {
        Ok(_) => Ok(locked),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(gone()),
        Err(e) => Err(VolumeError::io("reading", dir)(e)),
    }
}

fn lock(path: &Path, how: FlockArg) -> Result<Flock<File>, VolumeError> {
    let file = open_lock(path)?;
    Flock::lock(file, how).map_err(|(_, e)| VolumeError::io("locking", path)(e.into()))
}

/// Opens (creating) `path` and tries to lock it, exclusively or shared; `None` if another
/// open file description holds a conflicting lock.
fn try_lock(path: &Path, exclusive: bool) -> Result<Option<Flock<File>>, VolumeError> {
    let file = open_lock(path)?;
    let how = if exclusive {
        FlockArg::LockExclusiveNonblock
    } else {
        FlockArg::LockSharedNonblock
    };
    match Flock::lock(file, how) {
        Ok(locked) => Ok(Some(locked)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(VolumeError::io("locking", path)(e.into())),
    }
}

fn open_lock(path: &Path) -> Result<File, VolumeError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(VolumeError::io("opening", path))
}

fn as_bytes<S: serde::Serializer>(size: &ByteSize, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(size.bytes())
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => crate::history::time::rfc3339(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_plain_path_component() {
        for good in ["a", "0", "data", "my-vol_1.2", &"x".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "-x",
            "_x",
            "A",
            "a/b",
            "a b",
            "é",
            &"x".repeat(64),
        ] {
            let err = check_name(bad).expect_err(bad);
            assert!(matches!(err, VolumeError::InvalidName { .. }), "{bad}");
            assert_eq!(err.kind(), VolumeErrorKind::Invalid);
        }
    }

    /// Bug hunt: the creations of one name at once in one server shared their build
    /// directory (named by the pid alone): each removed the others' half-built image, and
    /// every one failed (500s), another token's creation of the same name too.
    #[test]
    fn creations_of_one_name_at_once_make_one_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("volumes");
        let volumes = Volumes::new(VolumesSettings::in_dir(root.clone()));
        let start = std::sync::Barrier::new(6);
        let results: Vec<Result<VolumeInfo, VolumeError>> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..6)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        volumes.create("same", ByteSize::mib(8))
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().expect("no panic"))
                .collect()
        });
        let created = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(created, 1, "{results:?}");
        for err in results.iter().filter_map(|r| r.as_ref().err()) {
            assert!(matches!(err, VolumeError::Exists { .. }), "{err}");
        }
        let left: Vec<_> = std::fs::read_dir(&root)
            .expect("the volumes' directory")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["same"], "no build directory is left");
    }

    /// Bug hunt "vol": removals of one volume at once, and listings during removals, failed
    /// with 500s (`opening .../mount.lock`): a removal that waited for the lock found the
    /// volume's directory renamed away by the one before it. They answer not found now, and
    /// a listing leaves out what went.
    #[test]
    fn removals_at_once_and_listings_during_them_find_the_volume_or_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let volumes = Volumes::new(VolumesSettings::in_dir(dir.path().join("volumes")));
        for _ in 0..10 {
            volumes.create("dup", ByteSize::mib(8)).expect("created");
            let start = std::sync::Barrier::new(5);
            let results: Vec<Result<(), VolumeError>> = std::thread::scope(|s| {
                let removals: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            start.wait();
                            volumes.remove("dup")
                        })
                    })
                    .collect();
                let listing = s.spawn(|| {
                    start.wait();
                    (0..20).try_for_each(|_| volumes.list().map(drop))
                });
                let mut results: Vec<_> = removals
                    .into_iter()
                    .map(|t| t.join().expect("no panic"))
                    .collect();
                results.push(listing.join().expect("no panic"));
                results
            });
            let removed = results[..4].iter().filter(|r| r.is_ok()).count();
            assert_eq!(removed, 1, "{results:?}");
            for err in results[..4].iter().filter_map(|r| r.as_ref().err()) {
                assert_eq!(err.kind(), VolumeErrorKind::NotFound, "{err}");
            }
            assert!(results[4].is_ok(), "the listing: {results:?}");
        }
        // A session's own workspace, removed by removals of its session at once: each is done.
        volumes.create("dup", ByteSize::mib(8)).expect("created");
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    start.wait();
                    volumes.remove_workspace("dup").expect("removed, or gone");
                });
            }
        });
    }

    /// Regression (hunt srv 5): under `concurrent_writers = "wait"`, a writer waited until
    /// `writer_wait` though its execution was cancelled (its client gone), holding the
    /// execution's worker and its token's place all the while. The cancel ends the wait.
    #[test]
    fn a_cancelled_writers_wait_ends_at_the_cancel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hour = Duration::from_secs(3600);
        let volumes = Volumes::new(VolumesSettings {
            concurrent_writers: ConcurrentWriters::Wait,
            writer_wait: hour,
            ..VolumesSettings::in_dir(dir.path().join("volumes"))
        });
        let volume = dir.path().join("volumes").join("q");
        std::fs::create_dir_all(&volume).expect("mkdir");
        let _writer = try_lock(&volume.join("writer.lock"), true)
            .expect("locked")
            .expect("free");
        let cancel = Cancellation::new();
        let waited = std::thread::scope(|s| {
            let waiting = s.spawn(|| volumes.take_writer("q", &volume, hour, Some(&cancel)));
            cancel.cancel();
            waiting.join().expect("no panic")
        });
        let err = waited.expect_err("cancelled");
        assert!(matches!(err, VolumeError::Cancelled { .. }), "{err}");
    }

    /// Bug hunt "vol": the wait read `waited 3020235028ns`.
    #[test]
    fn a_writers_wait_reads_in_seconds() {
        let busy = VolumeError::WriterBusy {
            name: "q1".into(),
            waited: Some(Duration::from_nanos(3_020_235_028)),
        };
        assert_eq!(
            busy.to_string(),
            "volume \"q1\" already has a writer (waited 3.0s)"
        );
    }

    #[test]
    fn sizes_outside_the_floor_and_the_maximum_are_refused_before_anything_is_made() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("volumes");
        let volumes = Volumes::new(VolumesSettings {
            max_size: ByteSize::mib(64),
            ..VolumesSettings::in_dir(root.clone())
        });
        for size in [ByteSize::mib(1), ByteSize::mib(65)] {
            let err = volumes.create("v", size).expect_err("out of range");
            assert!(matches!(err, VolumeError::InvalidSize { .. }), "{err}");
            assert!(err.to_string().contains("[volumes] max_size"), "{err}");
        }
        let err = volumes
            .create("Bad", ByteSize::mib(8))
            .expect_err("bad name");
        assert_eq!(err.kind(), VolumeErrorKind::Invalid);
        assert!(!root.exists(), "nothing was created");
        assert!(volumes.list().expect("empty").is_empty());
        let err = volumes.inspect("v").expect_err("none");
        assert_eq!(err.kind(), VolumeErrorKind::NotFound);
        let err = volumes.attach("v", true).expect_err("none");
        assert_eq!(err.kind(), VolumeErrorKind::NotFound);
    }
}
