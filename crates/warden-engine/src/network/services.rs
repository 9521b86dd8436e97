//! warden's own services on this host, as the running servers registered them: each `warden
//! serve` writes the addresses it bound into `/run/warden/services/<pid>.json` before it
//! serves, and removes the file when it stops. Every policy's deny set includes them
//! (docs/network.md#the-deny-set): a `warden run`, which knows only `[server] listen`, must not
//! let its sandbox call the API of a server listening elsewhere (`--listen`, port 0). A file
//! whose process no longer runs (a server killed) is ignored, and removed by the next server
//! that registers. Read when an execution's policy lets traffic out; runs in any warden process.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sessions::ProcessMark;

/// Where the running servers register their addresses: warden's runtime directory, which only
/// root writes.
pub const SERVICES_DIR: &str = "/run/warden/services";

/// A registration file is a few addresses; anything larger is not one.
const MAX_FILE: u64 = 64 * 1024;

/// One server's registration.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The server's process, told apart from a later one given its pid.
    process: ProcessMark,
    /// The addresses it listens on, as bound.
    listen: Vec<SocketAddr>,
}

/// This process's registration of its services; dropping it removes it.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
}

impl Registration {
    /// Registers `listen`, the addresses this process serves on, in [`SERVICES_DIR`].
    pub fn register(listen: &[SocketAddr]) -> io::Result<Self> {
        Self::register_in(Path::new(SERVICES_DIR), listen)
    }

    fn register_in(dir: &Path, listen: &[SocketAddr]) -> io::Result<Self> {
        let process = ProcessMark::this()
            .ok_or_else(|| io::Error::other("this process's start time cannot be read"))?;
        std::fs::create_dir_all(dir)?;
        remove_stale(dir);
        let entry = Entry {
            process,
            listen: listen.to_vec(),
        };
        let path = dir.join(format!("{}.json", std::process::id()));
        // Written aside, then renamed: a reader sees the whole file or none.
        let partial = dir.join(format!(".{}.json.partial", std::process::id()));
        std::fs::write(&partial, serde_json::to_vec(&entry)?)?;
        std::fs::rename(&partial, &path)?;
        Ok(Self { path })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "removing this server's registration");
        }
    }
}

/// The addresses of every warden server running on this host, as registered.
pub fn running_services() -> Vec<SocketAddr> {
    running_in(Path::new(SERVICES_DIR))
}

/// How stale [`Services::current`] may be when the directory's time did not move (two
/// changes within one tick of a coarse clock).
const RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// warden's own services as an execution's policy sees them over its life: `own` (this
/// process's listeners) and every server registered on this host, read again when the
/// directory changed, so that a server started while a run goes on is denied to it too.
#[derive(Debug)]
pub(crate) struct Services {
    dir: PathBuf,
    own: Vec<SocketAddr>,
    seen: std::sync::Mutex<Seen>,
}

#[derive(Debug)]
struct Seen {
    /// The directory's modification time at the last read (`None`: none, or no directory).
    changed: Option<std::time::SystemTime>,
    read_at: std::time::Instant,
    all: std::sync::Arc<Vec<SocketAddr>>,
}

impl Services {
    pub(crate) fn new(own: Vec<SocketAddr>) -> Self {
        Self::in_dir(Path::new(SERVICES_DIR), own)
    }

    fn in_dir(dir: &Path, own: Vec<SocketAddr>) -> Self {
        let services = Self {
            dir: dir.to_owned(),
            own,
            seen: std::sync::Mutex::new(Seen {
                changed: None,
                read_at: std::time::Instant::now(),
                all: std::sync::Arc::default(),
            }),
        };
        services.refresh(&mut services.lock());
        services
    }

    /// Every address now: a `stat` of the directory, and a read of it when it changed (or
    /// [`RECHECK`] passed).
    pub(crate) fn current(&self) -> std::sync::Arc<Vec<SocketAddr>> {
        let mut seen = self.lock();
        if modified(&self.dir) != seen.changed || seen.read_at.elapsed() >= RECHECK {
            self.refresh(&mut seen);
        }
        std::sync::Arc::clone(&seen.all)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refresh(&self, seen: &mut Seen) {
        seen.changed = modified(&self.dir);
        seen.read_at = std::time::Instant::now();
        let mut all = self.own.clone();
        for running in running_in(&self.dir) {
            if !all.contains(&running) {
                all.push(running);
            }
        }
        seen.all = std::sync::Arc::new(all);
    }
}

fn modified(dir: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(dir).and_then(|m| m.modified()).ok()
}

fn running_in(dir: &Path) -> Vec<SocketAddr> {
    entries(dir)
        .filter(|(_, entry)| entry.process.is_alive())
        .flat_map(|(_, entry)| entry.listen)
        .collect()
}

/// Removes the registrations of processes that no longer run.
fn remove_stale(dir: &Path) {
    for (path, entry) in entries(dir) {
        if !entry.process.is_alive() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Each registration file in `dir` that can be read, with its path. A missing directory has
/// none.
fn entries(dir: &Path) -> impl Iterator<Item = (PathBuf, Entry)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|dirent| dirent.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter_map(|path| {
            let meta = std::fs::symlink_metadata(&path).ok()?;
            if !meta.is_file() || meta.len() > MAX_FILE {
                return None;
            }
            let entry = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            Some((path, entry))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn a_registration_is_read_while_it_lasts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let services = dir.path().join("services");
        assert!(running_in(&services).is_empty(), "no directory, no service");
        let listen = [addr("127.0.0.1:43791"), addr("[::1]:43792")];
        let registration = Registration::register_in(&services, &listen).expect("registered");
        assert_eq!(running_in(&services), listen);
        drop(registration);
        assert!(running_in(&services).is_empty());
    }

    /// Bug hunt: the services were read once, when the execution was planned: a server
    /// started while a run went on was not in its deny set.
    #[test]
    fn a_server_registered_after_the_start_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dir = dir.path().join("services");
        let own = addr("127.0.0.1:43790");
        let services = Services::in_dir(&dir, vec![own]);
        assert_eq!(*services.current(), [own]);
        let listen = [addr("127.0.0.1:43794")];
        let registration = Registration::register_in(&dir, &listen).expect("registered");
        assert_eq!(*services.current(), [own, listen[0]]);
        drop(registration);
        assert_eq!(*services.current(), [own]);
    }

    #[test]
    fn a_registration_of_a_process_gone_is_ignored_then_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let this = ProcessMark::this().expect("this process");
        // This process's pid with another start time: a process that ran before it.
        let mut gone = serde_json::to_value(Entry {
            process: this,
            listen: vec![addr("127.0.0.1:43793")],
        })
        .expect("serializes");
        gone["process"]["start"] = serde_json::json!(0);
        let stale = dir.path().join("1.json");
        std::fs::write(&stale, gone.to_string()).expect("written");
        std::fs::write(dir.path().join("2.json"), "not json").expect("written");
        assert!(running_in(dir.path()).is_empty());
        let registration =
            Registration::register_in(dir.path(), &[addr("127.0.0.1:43794")]).expect("registered");
        assert!(!stale.exists(), "removed by the next registration");
        assert_eq!(running_in(dir.path()), [addr("127.0.0.1:43794")]);
        drop(registration);
    }
}
