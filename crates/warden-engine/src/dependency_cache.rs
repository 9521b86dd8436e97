//! The dependency cache: installed dependency sets, one directory each, addressed by a SHA-256
//! of what determines them (language, the identity of its runtime and installer, the installer
//! command and environment, the sorted dependency list). Later runs bind an entry read-only at
//! its own path (docs/network.md#dependencies).
//!
//! As in the compile cache (`compile_cache.rs`, whose key hashing, temporary naming and
//! eviction this shares), only warden writes here, from what an install sandbox sent back
//! through the artifact pipe. An entry is written under a temporary name and renamed into
//! place, so a concurrent run sees a complete set or none; two runs installing the same set
//! both install, and the first rename wins. The cache is bounded: after each insertion the
//! least recently used entries go until the total fits, except entries an execution holds
//! (`SetInUse`), however recently the others were used; a set larger than a [`SET_SHARE`]
//! of the bound is not stored. A temporary name nobody holds is a writer's that died, removed
//! at the next lookup or insertion.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use nix::fcntl::{Flock, FlockArg};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use warden_core::{ByteSize, Language};
use warden_sandbox::{CollectedFile, SpooledFiles};

use crate::compile_cache::{
    evict_oldest, gone, is_key_name, own_named_root_of, temp_path, KeyHasher,
};

/// What [`own_root_of`] calls this cache.
const NAME: &str = "dependency cache";

/// The largest set kept is the bound divided by this (256 MiB of the default 1 GiB): the cache
/// is shared by every caller, and one set as large as the bound would evict all the others.
pub const SET_SHARE: u64 = 4;

/// A set of the cache held for an execution: a shared lock on its directory, which eviction
/// (in any warden process) never removes while it is held. An execution of many test cases
/// may use its set for hours; another caller's insertion evicted it halfway through, and the
/// later cases failed to import what they had installed.
#[derive(Debug)]
pub(crate) struct SetInUse {
    dir: PathBuf,
    _held: Flock<fs::File>,
}

impl SetInUse {
    /// The set's directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Holds the set at `dir`; `None` when it is gone, or went while this waited (an eviction
    /// renames it away under its exclusive lock).
    fn hold(dir: PathBuf) -> Option<Self> {
        let file = fs::File::open(&dir).ok()?;
        let held = Flock::lock(file, FlockArg::LockShared).ok()?;
        let still_there = fs::metadata(&dir).ok()?;
        let locked = held.metadata().ok()?;
        (still_there.dev() == locked.dev() && still_there.ino() == locked.ino())
            .then_some(Self { dir, _held: held })
    }
}

/// A bounded, content-addressed store of installed dependency sets.
#[derive(Debug, Clone)]
pub struct DependencyCache {
    root: PathBuf,
    max_bytes: u64,
}

/// The address of one installed set: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DependencyKey(String);

impl DependencyKey {
    /// The key of installing `specs` (normalised) for `language` with the toolchain identified
    /// by `toolchain`.
    pub(crate) fn new(language: &Language, toolchain: &str, specs: &[String]) -> Self {
        let mut h = KeyHasher::default();
        h.field(b"warden-dependencies-v1");
        h.field(language.id.as_str().as_bytes());
        h.field(toolchain.as_bytes());
        if let Some(installer) = &language.dependencies {
            for arg in &installer.argv {
                h.field(arg.as_bytes());
            }
            // Where an index is named, these arguments are the command's too: an operator
            // who adds one (`--ignore-scripts`) must not be served the sets installed without.
            h.field(b"index_args");
            for arg in &installer.index_args {
                h.field(arg.as_bytes());
            }
            for (k, v) in installer.install_env.iter().chain(&language.env) {
                h.field(k.as_bytes());
                h.field(v.as_bytes());
            }
        }
        // One key for the spellings the installer reads as the same request (pip's `Six==1.0`
        // and `six==1.0.0`), so the bound is not spent on copies of one set.
        let manifest = language.dependencies.as_ref().and_then(|i| i.manifest);
        let mut spelled: Vec<String> = specs
            .iter()
            .map(|spec| manifest.map_or_else(|| spec.clone(), |m| m.cache_spelling(spec)))
            .collect();
        spelled.sort();
        spelled.dedup();
        h.field(b"specs");
        for spec in &spelled {
            h.field(spec.as_bytes());
        }
        Self(h.hex())
    }

    /// The key as text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl DependencyCache {
    /// A cache in `root` bounded to `max_bytes`, each set to `max_bytes / SET_SHARE`.
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self { root, max_bytes }
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry(&self, key: &DependencyKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// The set stored under `key`, if any, held and marked as just used. A directory shared
    /// with other users is not read (another user could have planted the set).
    pub(crate) fn get(&self, key: &DependencyKey) -> Option<SetInUse> {
        own_named_root_of(&self.root, NAME).ok()?;
        sweep_abandoned_temps(&self.root);
        let path = self.entry(key);
        if !path.is_dir() {
            return None;
        }
        let held = SetInUse::hold(path)?;
        // Mark as recently used for eviction; failure only makes it older.
        let _ = held._held.set_modified(SystemTime::now());
        Some(held)
    }

    /// Whether the cache's directory is one warden may write into (its own, not a link).
    pub(crate) fn is_own(&self) -> bool {
        own_named_root_of(&self.root, NAME).is_ok()
    }

    /// Stores `files`, each under `prefix` in the sandbox's workspace, as the set of `key`, then
    /// evicts beyond the bound; the set, held.
    pub(crate) fn put(
        &self,
        key: &DependencyKey,
        prefix: &Path,
        files: &[CollectedFile],
    ) -> io::Result<SetInUse> {
        let size = files.iter().map(|f| f.contents.len() as u64).sum();
        self.store(key, size, |dir| {
            for file in files {
                write_file(
                    dir,
                    prefix,
                    &file.path,
                    file.executable,
                    &mut &file.contents[..],
                )?;
            }
            Ok(())
        })
    }

    /// [`DependencyCache::put`] of the files a sandbox spooled to disk, read one at a time.
    pub(crate) fn put_spooled(
        &self,
        key: &DependencyKey,
        prefix: &Path,
        files: &SpooledFiles,
    ) -> io::Result<SetInUse> {
        self.store(key, files.bytes(), |dir| {
            files.for_each(|path, executable, contents| {
                write_file(dir, prefix, path, executable, contents)
            })
        })
    }

    /// Stores the set of `key`, `size` bytes, which `write` writes into the new directory it
    /// is given, then evicts beyond the bound; the set, held.
    fn store(
        &self,
        key: &DependencyKey,
        size: u64,
        write: impl FnOnce(&Path) -> io::Result<()>,
    ) -> io::Result<SetInUse> {
        let cap = self.max_bytes / SET_SHARE;
        if size > cap {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!(
                    "the installed set ({}) is larger than a set the cache keeps ({}, a \
                     quarter of [cache] max_size)",
                    ByteSize(size),
                    ByteSize(cap)
                ),
            ));
        }
        fs::create_dir_all(&self.root)?;
        own_named_root_of(&self.root, NAME)?;
        let (temp, writing) = locked_temp(&self.root, key.as_str())?;
        let written = fs::set_permissions(&temp, fs::Permissions::from_mode(0o755))
            .and_then(|()| write(&temp))
            // Directories made on the way took the umask's mode: open them all to the
            // sandbox's user.
            .and_then(|()| open_directories(&temp));
        let entry = self.entry(key);
        let held = match written.and_then(|()| fs::rename(&temp, &entry)) {
            // Still locked, now as the entry: shared, the lock of an execution that holds it.
            Ok(()) => {
                writing.relock(FlockArg::LockShared)?;
                SetInUse {
                    dir: entry.clone(),
                    _held: writing,
                }
            }
            // Another run stored the same set first: theirs is as good.
            Err(_) if entry.is_dir() => {
                let _ = fs::remove_dir_all(&temp);
                drop(writing);
                // Held before the eviction, which skips what is held.
                SetInUse::hold(entry.clone()).ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("the set {} went as it was stored", entry.display()),
                    )
                })?
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&temp);
                return Err(e);
            }
        };
        self.evict(&entry)?;
        Ok(held)
    }

    /// Removes the least recently used entries, other than `keep` and those still in use,
    /// until the total fits the bound.
    fn evict(&self, keep: &Path) -> io::Result<()> {
        let mut entries = Vec::new();
        let mut kept = 0;
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let path = entry.path();
            // Only what a put names: anything else is not the cache's to evict.
            if !is_key_name(entry.file_name().as_encoded_bytes()) || !path.is_dir() {
                continue;
            }
            let used = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let size = tree_size(&path);
            if path == keep {
                kept = size;
            } else {
                entries.push((used, size, path));
            }
        }
        let bound = self.max_bytes.saturating_sub(kept);
        evict_oldest(entries, bound, |path| {
            // A set an execution holds stays, however long ago it was taken; one used a
            // moment ago but let go does not (its next use installs it again).
            let Ok(file) = fs::File::open(path) else {
                return gone(Err(io::Error::from(io::ErrorKind::NotFound)));
            };
            let Ok(_unheld) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
                return false;
            };
            // Renamed away first, so that no reader finds a half-removed set.
            let doomed = temp_path(&self.root, "evicted");
            let renamed = fs::rename(path, &doomed);
            if renamed.is_err() {
                return gone(renamed);
            }
            fs::remove_dir_all(&doomed).is_ok()
        });
        sweep_abandoned_temps(&self.root);
        Ok(())
    }
}

/// A new temporary directory in `root` for the set of `key`, and the exclusive lock its writer
/// holds on it until the set is renamed into place: [`sweep_abandoned_temps`] takes an unlocked
/// one for the leftover of a writer that died.
fn locked_temp(root: &Path, key: &str) -> io::Result<(PathBuf, Flock<fs::File>)> {
    for _ in 0..3 {
        let temp = temp_path(root, key);
        fs::create_dir(&temp)?;
        let file = fs::File::open(&temp)?;
        let locked = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e)?;
        // A sweep may have taken it, between its creation and the lock, for abandoned.
        let here = fs::symlink_metadata(&temp);
        let meta = locked.metadata()?;
        if here.is_ok_and(|h| h.dev() == meta.dev() && h.ino() == meta.ino()) {
            return Ok((temp, locked));
        }
    }
    Err(io::Error::other(
        "no temporary directory of its own for the set",
    ))
}

/// Removes from `root` the `.tmp-` names nobody holds: what a writer (or an eviction) killed
/// before it finished left, a partial set that no bound counts and nothing else would remove.
/// Writers hold their temporary directory locked ([`locked_temp`]), evictions the set they
/// renamed away, so one unlocked is abandoned whatever its age.
fn sweep_abandoned_temps(root: &Path) {
    let Ok(dir) = fs::read_dir(root) else { return };
    for entry in dir.flatten() {
        if !entry.file_name().as_encoded_bytes().starts_with(b".tmp-") {
            continue;
        }
        let path = entry.path();
        let Ok(file) = fs::File::open(&path) else {
            continue;
        };
        let Ok(_abandoned) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            continue;
        };
        let removed = match entry.file_type() {
            Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
        match removed {
            Ok(()) => tracing::info!(path = %path.display(), "removed an abandoned partial set"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "removing an abandoned partial set")
            }
        }
    }
}

/// Writes one installed file, `path` under `prefix` in the sandbox's workspace, into the set
/// being written in `dir`, readable by every user (the sandbox's), executable where it was.
fn write_file(
    dir: &Path,
    prefix: &Path,
    path: &Path,
    executable: bool,
    contents: &mut dyn io::Read,
) -> io::Result<()> {
    let relative = path.strip_prefix(prefix).unwrap_or(path);
    // The paths come from the sandbox: refuse any that would leave the entry.
    if relative.as_os_str().is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("installed file {} is outside the set", path.display()),
        ));
    }
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut out = fs::File::create(&path)?;
    io::copy(contents, &mut out)?;
    let mode = if executable { 0o755 } else { 0o644 };
    out.set_permissions(fs::Permissions::from_mode(mode))
}

fn open_directories(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755))?;
            open_directories(&entry.path())?;
        }
    }
    Ok(())
}

/// The bytes of the regular files under `dir`.
fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use warden_core::Catalog;

    fn file(path: &str, n: usize) -> CollectedFile {
        CollectedFile {
            path: path.into(),
            contents: vec![b'x'; n],
            executable: false,
        }
    }

    fn key(specs: &[&str]) -> DependencyKey {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let specs: Vec<String> = specs.iter().map(|s| (*s).to_owned()).collect();
        DependencyKey::new(python, "python-1", &specs)
    }

    #[test]
    fn keys_depend_on_the_set_and_the_toolchain() {
        let catalog = Catalog::builtin().expect("catalog");
        let python = catalog.get("python").expect("python");
        let node = catalog.get("javascript").expect("javascript");
        let six = vec!["six==1.16.0".to_owned()];
        let base = DependencyKey::new(python, "t1", &six);
        assert_eq!(base, DependencyKey::new(python, "t1", &six));
        assert_ne!(base, DependencyKey::new(python, "t2", &six));
        assert_ne!(base, DependencyKey::new(node, "t1", &six));
        assert_ne!(base, key(&["six==1.15.0"]));
        // Bug hunt "deps": each spelling of one pip request had its own key (and set).
        assert_eq!(
            base,
            DependencyKey::new(python, "t1", &["Six==1.16".to_owned()])
        );
        let is_number = |spec: &str| DependencyKey::new(node, "t1", &[spec.to_owned()]);
        assert_ne!(is_number("is-number@7.0"), is_number("is-number@7.0.0"));
        assert_eq!(base.as_str().len(), 64);
        // Bug hunt "deps": an installer hardened by its index arguments (`--ignore-scripts`)
        // was served the sets installed without them.
        let mut hardened = python.clone();
        if let Some(installer) = hardened.dependencies.as_mut() {
            installer.index_args.push("--no-build-isolation".into());
        }
        assert_ne!(base, DependencyKey::new(&hardened, "t1", &six));
    }

    #[test]
    fn a_set_is_stored_as_a_readable_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DependencyCache::new(dir.path().join("deps"), 1 << 20);
        let k = key(&["six"]);
        assert!(cache.get(&k).is_none());
        let files = [
            file(".deps/six.py", 3),
            file(".deps/six-1.dist-info/RECORD", 2),
        ];
        let held = cache.put(&k, Path::new(".deps"), &files).expect("put");
        let entry = held.path().to_owned();
        assert_eq!(
            cache.get(&k).map(|s| s.path().to_owned()),
            Some(entry.clone())
        );
        assert_eq!(fs::read(entry.join("six.py")).expect("read"), b"xxx");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&entry.join("six-1.dist-info")), 0o755);
        assert_eq!(mode(&entry.join("six-1.dist-info/RECORD")), 0o644);
        // The same set stored again (a concurrent install) keeps the first.
        assert_eq!(
            cache
                .put(&k, Path::new(".deps"), &files)
                .expect("again")
                .path(),
            entry
        );
    }

    /// Hunt deps: a set (up to 512 MiB) was held whole in memory from the sandbox to the
    /// cache; spooled to disk by the sandbox, it is stored one file at a time.
    #[test]
    fn a_spooled_set_is_stored_as_one_in_memory_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DependencyCache::new(dir.path().join("deps"), 1 << 20);
        let mut files = vec![
            file(".deps/six.py", 3),
            file(".deps/six-1.dist-info/RECORD", 2),
        ];
        files[1].executable = true;
        let mut spool = tempfile::tempfile().expect("a spool");
        CollectedFile::write_all(&files, &mut spool).expect("spooled");
        let spooled = SpooledFiles::scan(spool).expect("a valid stream");
        let k = key(&["six"]);
        let held = cache
            .put_spooled(&k, Path::new(".deps"), &spooled)
            .expect("put");
        assert_eq!(fs::read(held.path().join("six.py")).expect("read"), b"xxx");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&held.path().join("six-1.dist-info")), 0o755);
        assert_eq!(mode(&held.path().join("six-1.dist-info/RECORD")), 0o755);
        assert_eq!(mode(&held.path().join("six.py")), 0o644);
        let mut escaping = tempfile::tempfile().expect("a spool");
        CollectedFile::write_all(&[file(".deps/../../x", 1)], &mut escaping).expect("spooled");
        assert!(
            SpooledFiles::scan(escaping).is_err(),
            "a path leaving the workspace"
        );
        drop(held);
        assert_eq!(
            fs::read_dir(cache.root()).expect("dir").count(),
            1,
            "no leftovers"
        );
    }

    /// Bug hunt "deps": another user who could write into the cache's directory planted a set
    /// that every run of those specs imported.
    #[test]
    fn a_directory_other_users_may_write_into_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("deps");
        let cache = DependencyCache::new(root.clone(), 1 << 20);
        let k = key(&["six"]);
        let files = [file(".deps/six.py", 3)];
        cache.put(&k, Path::new(".deps"), &files).expect("put");
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).expect("chmod");
        assert!(cache.get(&k).is_none(), "a set there may be anyone's");
        let err = cache
            .put(&key(&["attrs"]), Path::new(".deps"), &files)
            .expect_err("not written");
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("dependency cache"), "{err}");
    }

    /// The directory is named beside the compile cache's, so in a shared parent (`/tmp`)
    /// another user could plant a link in its place to a root-owned directory: warden wrote
    /// its sets there and evicted that directory's subdirectories as old sets.
    #[test]
    fn a_link_in_the_directorys_place_is_neither_read_nor_written_nor_evicted_from() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("usr-lib");
        fs::create_dir(&target).expect("mkdir");
        fs::create_dir(target.join("python3")).expect("mkdir");
        fs::write(target.join("python3/os.py"), vec![b'#'; 4096]).expect("write");
        let root = dir.path().join("deps");
        std::os::unix::fs::symlink(&target, &root).expect("symlink");
        let cache = DependencyCache::new(root, 1 << 20);
        let files = [file(".deps/six.py", 3)];
        let err = cache
            .put(&key(&["six"]), Path::new(".deps"), &files)
            .expect_err("not written");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let names: Vec<_> = fs::read_dir(&target)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["python3"], "nothing written, nothing evicted");
    }

    /// Ages the set at `path` to `ago` before now.
    fn age(path: &Path, ago: Duration) {
        fs::File::open(path)
            .and_then(|f| f.set_modified(SystemTime::now() - ago))
            .expect("aged");
    }

    #[test]
    fn only_entries_are_evicted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("deps");
        let cache = DependencyCache::new(root.clone(), 4 * 3);
        let prefix = Path::new(".deps");
        drop(cache.put(&key(&["six"]), prefix, &[file(".deps/six.py", 3)]));
        fs::create_dir(root.join("kept-by-the-operator")).expect("mkdir");
        fs::write(root.join("kept-by-the-operator/x"), b"x").expect("write");
        for entry in fs::read_dir(&root).expect("dir") {
            age(&entry.expect("entry").path(), Duration::from_secs(3600));
        }
        for name in ["a", "b", "c", "d"] {
            drop(cache.put(&key(&[name]), prefix, &[file(".deps/x.py", 3)]));
        }
        assert!(root.join("kept-by-the-operator/x").exists(), "not an entry");
        assert!(!root.join(key(&["six"]).as_str()).exists(), "an old entry");
    }

    /// Bug hunt "deps": a run killed while its set was written left the partial `.tmp-` set in
    /// the cache's directory, counted by no bound and removed only ten minutes later, at some
    /// insertion. The next lookup removes it; a set still being written (locked) stays.
    #[test]
    fn a_partial_set_left_by_a_killed_writer_goes_at_the_next_lookup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("deps");
        let cache = DependencyCache::new(root.clone(), 1 << 20);
        let k = key(&["six"]);
        fs::create_dir(&root).expect("mkdir");
        let abandoned = root.join(format!(".tmp-{}-1-0", k.as_str()));
        fs::create_dir_all(abandoned.join("six-1.dist-info")).expect("mkdir");
        fs::write(abandoned.join("six.py"), b"partial").expect("write");
        let (writing, lock) = locked_temp(&root, k.as_str()).expect("a writer's temporary");
        assert!(cache.get(&k).is_none(), "a partial set is never used");
        assert!(!abandoned.exists(), "the abandoned set went");
        assert!(writing.is_dir(), "one being written stays");
        drop(lock);
        assert!(cache.get(&k).is_none());
        assert!(!writing.exists(), "its writer gone, it went too");
        let held = cache
            .put(&k, Path::new(".deps"), &[file(".deps/six.py", 3)])
            .expect("put");
        let names: Vec<_> = fs::read_dir(&root)
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [k.as_str()], "only the set: {names:?}");
        drop(held);
    }

    #[test]
    fn paths_leaving_the_set_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DependencyCache::new(dir.path().to_owned(), 1 << 20);
        let k = key(&["evil"]);
        let err = cache
            .put(&k, Path::new(".deps"), &[file(".deps/../../etc/x", 1)])
            .expect_err("escapes");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(cache.get(&k).is_none());
        assert_eq!(
            fs::read_dir(dir.path()).expect("list").count(),
            0,
            "no leftovers"
        );
    }

    /// Bug hunt "deps": sets used in the last 30 minutes were never evicted, so a busy cache
    /// grew past its bound without limit; and one set could be as large as the bound. Now the
    /// least recently used set goes however recent, unless an execution holds it, and a set
    /// larger than a quarter of the bound is not stored.
    #[test]
    fn the_bound_holds_evicting_recent_sets_but_not_held_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DependencyCache::new(dir.path().to_owned(), 4000);
        let prefix = Path::new(".deps");
        let path = |k: &DependencyKey| dir.path().join(k.as_str());
        let keys: Vec<DependencyKey> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|n| key(&[n]))
            .collect();
        for (i, k) in keys[..4].iter().enumerate() {
            drop(cache.put(k, prefix, &[file(".deps/x", 1000)]).expect("put"));
            age(&path(k), Duration::from_secs(60 - 10 * i as u64));
        }
        drop(
            cache
                .put(&keys[4], prefix, &[file(".deps/x", 1000)])
                .expect("e"),
        );
        assert!(!path(&keys[0]).exists(), "the least recently used went");
        assert!(keys[1..5].iter().all(|k| path(k).is_dir()));
        assert!(tree_size(dir.path()) <= 4000);
        let held = cache.get(&keys[1]).expect("b held");
        for (i, k) in keys[1..5].iter().enumerate() {
            age(&path(k), Duration::from_secs(60 - 10 * i as u64));
        }
        drop(
            cache
                .put(&keys[5], prefix, &[file(".deps/x", 1000)])
                .expect("f"),
        );
        assert!(held.path().join("x").is_file(), "held, it stays");
        assert!(!path(&keys[2]).exists(), "the oldest one not held went");
        assert!(tree_size(dir.path()) <= 4000);
        let err = cache
            .put(&key(&["big"]), prefix, &[file(".deps/x", 1001)])
            .expect_err("larger than a set may be");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge, "{err}");
        assert!(err.to_string().contains("max_size"), "{err}");
        assert!(!path(&key(&["big"])).exists());
        assert_eq!(
            fs::read_dir(dir.path()).expect("dir").count(),
            4,
            "no leftovers"
        );
    }

    /// Bug hunt "deps": an execution of many test cases used its set for longer than the 30
    /// minutes it was spared for, and another caller's insertion evicted it halfway through.
    /// A set held is never evicted, however old; let go, it is.
    #[test]
    fn a_set_an_execution_holds_is_not_evicted_however_old() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = DependencyCache::new(dir.path().to_owned(), 4000);
        let prefix = Path::new(".deps");
        let hour = Duration::from_secs(3600);
        let held = cache
            .put(&key(&["a"]), prefix, &[file(".deps/a", 1000)])
            .expect("a");
        age(held.path(), 2 * hour);
        for name in ["b", "c", "d", "e"] {
            drop(
                cache
                    .put(&key(&[name]), prefix, &[file(".deps/x", 1000)])
                    .expect("put"),
            );
        }
        assert!(held.path().join("a").is_file(), "held, it stays");
        let a = held.path().to_owned();
        drop(held);
        age(&a, 2 * hour);
        drop(
            cache
                .put(&key(&["f"]), prefix, &[file(".deps/x", 1000)])
                .expect("f"),
        );
        assert!(cache.get(&key(&["a"])).is_none(), "let go, the oldest went");
    }
}
