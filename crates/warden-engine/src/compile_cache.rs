//! The compile cache: artifacts of finished, successful compiles, addressed by a SHA-256 of
//! everything that determines them (language, mode, toolchain identity, compile command,
//! environment, every source file's name and contents).
//!
//! The mode is in the key because the compiler runs in the request's mode: in `trusted` mode it
//! sees the host's files, so its artifact must never be served to a `sandboxed` or `isolated`
//! run of the same source (issue 8).
//!
//! Only warden writes here, and only from what a compile sandbox sent back through the artifact
//! pipe; nothing is ever taken from a sandbox-writable place. Entries are single files written
//! to a temporary name and renamed into place, so concurrent runs see a complete entry or none.
//! The cache is bounded: after each insertion the least recently used entries are removed until
//! the total fits. It is shared by every caller, so one entry may take at most a sixteenth of the
//! bound ([`ENTRY_SHARE`]): a larger artifact is used by its run and not kept, rather than
//! evicting everyone else's entries (three 400 MiB artifacts emptied a 1 GiB cache).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use warden_core::{Language, Mode};
use warden_sandbox::{CollectedFile, WorkspaceFile};

/// Where the cache lives unless configured otherwise.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/warden/compile";
/// Default bound on the cache's total size.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// The largest entry kept is the bound divided by this (64 MiB of the default 1 GiB).
pub const ENTRY_SHARE: u64 = 16;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// What every entry starts with, before its number of files: an entry cut between two files
/// (a disk's damage, an operator's edit) reads as whole file by file, and a Java entry, which
/// no executable check reads, was served cut at every later run (`ClassNotFoundException`)
/// instead of being compiled again. An entry of an older warden has no such header: it is
/// damaged to this one, removed and compiled again once.
const ENTRY_MAGIC: &[u8; 8] = b"wcache\x00\x01";

/// A bounded, content-addressed store of compile artifacts.
#[derive(Debug, Clone)]
pub struct CompileCache {
    root: PathBuf,
    max_bytes: u64,
    /// The largest entry kept: `max_bytes / ENTRY_SHARE`.
    max_entry_bytes: u64,
}

/// The address of one entry: 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of compiling `files` in `language` with the request's `options`, in `mode`,
    /// with the toolchain identified by `toolchain`.
    pub fn new(
        language: &Language,
        options: &[String],
        mode: Mode,
        toolchain: &str,
        files: &[WorkspaceFile],
    ) -> Self {
        let mut h = KeyHasher::default();
        let mut field = |bytes: &[u8]| h.field(bytes);
        field(b"warden-compile-v2");
        field(language.id.as_str().as_bytes());
        field(mode.name().as_bytes());
        field(toolchain.as_bytes());
        if let Some(compile) = &language.compile {
            for arg in &compile.argv {
                field(arg.as_bytes());
            }
            field(compile.artifact.as_bytes());
        }
        // Counted, so that the options and the environment cannot pass for each other.
        field(&options.len().to_le_bytes());
        for option in options {
            field(option.as_bytes());
        }
        for (k, v) in &language.env {
            field(k.as_bytes());
            field(v.as_bytes());
        }
        for file in files {
            field(file.path.as_os_str().as_encoded_bytes());
            field(&[u8::from(file.executable)]);
            field(&file.contents);
        }
        Self(h.hex())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SHA-256 over length-prefixed fields, so that no two field lists hash alike by
/// concatenation; shared by the compile and the dependency cache.
#[derive(Default)]
pub(crate) struct KeyHasher(Sha256);

impl KeyHasher {
    /// Adds one field.
    pub(crate) fn field(&mut self, bytes: &[u8]) {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    /// The digest as 64 hex digits.
    pub(crate) fn hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A fresh name in `root` for an entry under `key` being written: unique across processes and
/// threads, and starting with `.tmp-` so that no reader takes it for an entry.
pub(crate) fn temp_path(root: &Path, key: &str) -> PathBuf {
    root.join(format!(
        ".tmp-{key}-{}-{}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The mode of `root` when it may hold the cache: a directory of this process's user that no
/// other user may write into (not group- or world-writable, not sticky). Another user could
/// plant an entry there, which warden would run as a program's binary (or, in the dependency
/// cache, import as a package), and warden would remove what others keep there.
pub(crate) fn own_root(root: &Path) -> io::Result<u32> {
    own_root_of(root, "compile cache")
}

/// [`own_root`] of the cache `what` names in its error.
pub(crate) fn own_root_of(root: &Path, what: &str) -> io::Result<u32> {
    own_metadata(&fs::metadata(root)?, root, what)
}

/// [`own_root_of`] of a directory already examined (`meta`, what `fstat` of the opened
/// directory says).
pub(crate) fn own_metadata(meta: &fs::Metadata, root: &Path, what: &str) -> io::Result<u32> {
    let mode = meta.permissions().mode() & 0o7777;
    let owner = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != owner || mode & 0o1022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the {what}'s directory {} is shared with other users (mode {mode:o}, \
                 owner uid {}): set [cache] dir or WARDEN_CACHE_DIR to a directory of \
                 warden's own",
                root.display(),
                meta.uid()
            ),
        ));
    }
    Ok(mode)
}

/// [`own_root_of`] for a directory warden names beside the compile cache's (`dependencies`,
/// `analysis`) rather than one the operator chose: it must not be a symbolic link either. In
/// a shared parent (the cache set to `/tmp/cache` puts them in `/tmp`), another user could
/// plant a link there to a root-owned directory (`/usr/lib`, `/etc/cron.d`), which passes the
/// ownership check (it follows links), and warden would write its entries into it and evict
/// that directory's subdirectories as old entries.
pub(crate) fn own_named_root_of(root: &Path, what: &str) -> io::Result<u32> {
    if fs::symlink_metadata(root)?.file_type().is_symlink() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the {what}'s directory {} is a symbolic link: warden names it beside the \
                 compile cache's and uses only a directory of its own there",
                root.display()
            ),
        ));
    }
    own_root_of(root, what)
}

/// Whether `name` is a cache key's ([`KeyHasher::hex`]: 64 lowercase hex digits).
pub(crate) fn is_key_name(name: &[u8]) -> bool {
    name.len() == 64 && name.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `root` holds nothing but the cache's entries and temporary names.
fn holds_only_entries(root: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(root)? {
        let name = entry?.file_name();
        let name = name.as_encoded_bytes();
        if !(name.ends_with(b".artifact") || name.starts_with(b".tmp-")) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// How old a `.tmp-` name must be before [`sweep_stale_temps`] takes it for the leftover of a
/// writer that died (a crash, a kill) rather than one still writing: no entry takes minutes
/// to write from memory.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Removes from `root` the `.tmp-` files and directories ([`temp_path`]) that no change has
/// touched for [`STALE_TEMP`]: what a writer killed between writing and renaming left, which
/// no bound counts and nothing else would ever remove. A writer slower than that loses its
/// entry (its rename fails), nothing more.
pub(crate) fn sweep_stale_temps(root: &Path) {
    let Ok(dir) = fs::read_dir(root) else { return };
    let now = SystemTime::now();
    for entry in dir.flatten() {
        if !entry.file_name().as_encoded_bytes().starts_with(b".tmp-") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let changed = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if now.duration_since(changed).unwrap_or_default() < STALE_TEMP {
            continue;
        }
        let path = entry.path();
        let removed = if meta.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        match removed {
            Ok(()) => tracing::info!(path = %path.display(), "removed a stale cache temporary"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "removing a stale cache temporary")
            }
        }
    }
}

/// `remove`'s answer for an eviction: whether `path` is gone, by this call or by another's
/// (two evictions run at once from concurrent runs; one that counted the entries the other
/// removed as still there went on to remove every entry, the new ones included).
pub(crate) fn gone(removed: io::Result<()>) -> bool {
    match removed {
        Ok(()) => true,
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Removes the least recently used of `entries` (last use, size, path) with `remove` until
/// their total fits `max_bytes`; an entry `remove` fails on still counts.
pub(crate) fn evict_oldest(
    mut entries: Vec<(SystemTime, u64, PathBuf)>,
    max_bytes: u64,
    remove: impl Fn(&Path) -> bool,
) {
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if remove(&path) {
            total -= len;
        }
    }
}

/// Identifies the toolchain that runs `program` by the file it resolves to, its size, inode and
/// modification time: an upgrade of the compiler changes it. `None` when it is not installed.
pub fn toolchain_identity(program: &str) -> Option<String> {
    let path = fs::canonicalize(program).ok()?;
    let meta = fs::metadata(&path).ok()?;
    Some(format!(
        "{}:{}:{}:{}.{}",
        path.display(),
        meta.len(),
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec()
    ))
}

/// The bytes an entry holds before its files: [`ENTRY_MAGIC`] and the number of files.
const ENTRY_HEADER: u64 = ENTRY_MAGIC.len() as u64 + 8;

/// The files of an entry, all of them, or why it is damaged.
fn read_entry(input: &mut impl io::Read) -> Result<Vec<CollectedFile>, String> {
    let mut header = [0u8; ENTRY_HEADER as usize];
    input
        .read_exact(&mut header)
        .map_err(|e| format!("no header: {e}"))?;
    let (magic, count) = header.split_at(ENTRY_MAGIC.len());
    if magic != ENTRY_MAGIC {
        return Err("not an entry of this warden".to_owned());
    }
    let count = u64::from_le_bytes(count.try_into().expect("eight bytes"));
    let files = CollectedFile::read_all(input)?;
    if files.len() as u64 != count {
        return Err(format!("{} files of {count}", files.len()));
    }
    Ok(files)
}

impl CompileCache {
    /// A cache in `root` bounded to `max_bytes`, each entry to `max_bytes / ENTRY_SHARE`.
    pub fn new(root: PathBuf, max_bytes: u64) -> Self {
        Self {
            root,
            max_bytes,
            max_entry_bytes: max_bytes / ENTRY_SHARE,
        }
    }

    fn entry(&self, key: &CacheKey) -> PathBuf {
        self.root.join(format!("{}.artifact", key.as_str()))
    }

    /// The artifacts stored under `key`, if any. A damaged entry is removed and missed; a
    /// directory shared with other users (`own_root`) is not read.
    pub fn get(&self, key: &CacheKey) -> Option<Vec<CollectedFile>> {
        own_root(&self.root).ok()?;
        let path = self.entry(key);
        let file = fs::File::open(&path).ok()?;
        // Read file by file into the artifacts' own buffers: one copy in memory, not two.
        match read_entry(&mut io::BufReader::new(file)) {
            Ok(files) => {
                // Mark as recently used for eviction; failure only makes it older.
                if let Ok(file) = fs::File::options().write(true).open(&path) {
                    let _ = file.set_modified(SystemTime::now());
                }
                Some(files)
            }
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "removing a damaged compile cache entry");
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `files` under `key`, then evicts the least recently used entries beyond the bound.
    /// Files larger than an entry may be are not stored (nor is anything evicted).
    pub fn put(&self, key: &CacheKey, files: &[CollectedFile]) -> io::Result<()> {
        // The programs' binaries are theirs: warden's alone to read (a trusted run's uid, or
        // any user of the host, read every program's artifact from a 0755 cache).
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)?;
        let mode = own_root(&self.root)?;
        // An older cache left open is closed; a directory that holds anything else (the
        // operator named `/var/cache` itself) is left as it is: the entries are 0600.
        if mode & 0o077 != 0 && holds_only_entries(&self.root)? {
            fs::set_permissions(&self.root, fs::Permissions::from_mode(0o700))?;
        }
        if CollectedFile::encoded_len(files) + ENTRY_HEADER > self.max_entry_bytes {
            tracing::debug!(
                max_entry_bytes = self.max_entry_bytes,
                "a compile artifact too large for the cache is not kept"
            );
            return Ok(());
        }
        let temp = temp_path(&self.root, key.as_str());
        let written = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|f| {
                // Encoded as it is written: no second copy of the artifact in memory.
                let mut out = io::BufWriter::new(f);
                out.write_all(ENTRY_MAGIC)?;
                out.write_all(&(files.len() as u64).to_le_bytes())?;
                CollectedFile::write_all(files, &mut out)?;
                out.into_inner()
                    .map_err(io::IntoInnerError::into_error)?
                    .sync_data()
            });
        if let Err(e) = written.and_then(|()| fs::rename(&temp, self.entry(key))) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        self.evict()
    }

    /// Removes the oldest entries until the total size fits the bound.
    fn evict(&self) -> io::Result<()> {
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let name = entry.file_name();
            if !name.to_string_lossy().ends_with(".artifact") {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            entries.push((
                meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                meta.len(),
                entry.path(),
            ));
        }
        evict_oldest(entries, self.max_bytes, |path| gone(fs::remove_file(path)));
        sweep_stale_temps(&self.root);
        Ok(())
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::Catalog;

    fn artifact(n: usize) -> Vec<CollectedFile> {
        vec![CollectedFile {
            path: "main".into(),
            contents: vec![7u8; n],
            executable: true,
        }]
    }

    fn key(code: &str) -> CacheKey {
        let catalog = Catalog::builtin().expect("catalog");
        let lang = catalog.get("python").expect("python");
        CacheKey::new(
            lang,
            &[],
            Mode::Sandboxed,
            "toolchain-1",
            &[WorkspaceFile::new("main.py", code)],
        )
    }

    #[test]
    fn keys_depend_on_every_input() {
        let catalog = Catalog::builtin().expect("catalog");
        let lang = catalog.get("python").expect("python");
        let files = [WorkspaceFile::new("main.py", "print(1)")];
        let key = |mode, toolchain, files: &[WorkspaceFile]| {
            CacheKey::new(lang, &[], mode, toolchain, files)
        };
        let base = key(Mode::Sandboxed, "t1", &files);
        assert_eq!(base, key(Mode::Sandboxed, "t1", &files), "deterministic");
        assert_ne!(base, key(Mode::Sandboxed, "t2", &files), "toolchain");
        assert_ne!(
            base,
            key(
                Mode::Sandboxed,
                "t1",
                &[WorkspaceFile::new("main.py", "print(2)")]
            ),
            "code"
        );
        assert_ne!(
            base,
            key(
                Mode::Sandboxed,
                "t1",
                &[WorkspaceFile::new("other.py", "print(1)")]
            ),
            "name"
        );
        assert_eq!(base.as_str().len(), 64);
        let c = catalog.get("c").expect("c");
        let c_files = [WorkspaceFile::new("main.c", "int main(void) { return X; }")];
        let with = |options: &[&str]| {
            let options: Vec<String> = options.iter().map(|o| (*o).to_owned()).collect();
            CacheKey::new(c, &options, Mode::Sandboxed, "cc-1", &c_files)
        };
        assert_ne!(with(&[]), with(&["-DX=0"]), "compiler options");
        assert_ne!(with(&["-DX=0"]), with(&["-DX=1"]), "their values");
        assert_ne!(with(&["-O0", "-g"]), with(&["-g", "-O0"]), "their order");
    }

    /// Issue 8: an artifact compiled in `trusted` mode, where the compiler sees the host's
    /// files, must never be served to a `sandboxed` or `isolated` run of the same source.
    #[test]
    fn the_mode_is_part_of_the_key() {
        let catalog = Catalog::builtin().expect("catalog");
        let lang = catalog.get("c").expect("c");
        let files = [WorkspaceFile::new("main.c", "int main(void) { return 0; }")];
        let key = |mode| CacheKey::new(lang, &[], mode, "cc-1", &files);
        assert_ne!(key(Mode::Trusted), key(Mode::Sandboxed));
        assert_ne!(key(Mode::Trusted), key(Mode::Isolated));
        assert_ne!(key(Mode::Sandboxed), key(Mode::Isolated));

        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().to_owned(), 1 << 20);
        cache.put(&key(Mode::Trusted), &artifact(10)).expect("put");
        assert!(cache.get(&key(Mode::Trusted)).is_some());
        assert_eq!(cache.get(&key(Mode::Sandboxed)), None);
        assert_eq!(cache.get(&key(Mode::Isolated)), None);
    }

    #[test]
    fn entries_round_trip_and_the_bound_evicts_the_least_recently_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Entries of up to 1000 bytes, three of which do not fit.
        let cache = CompileCache {
            max_bytes: 2500,
            max_entry_bytes: 1100,
            ..CompileCache::new(dir.path().to_owned(), 2500)
        };
        let (a, b, c) = (key("a"), key("b"), key("c"));
        cache.put(&a, &artifact(1000)).expect("put a");
        assert_eq!(cache.get(&a), Some(artifact(1000)));
        cache.put(&b, &artifact(1000)).expect("put b");
        // Make `a` clearly older than `b` whatever the clock's resolution.
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1);
        fs::File::options()
            .write(true)
            .open(cache.entry(&a))
            .and_then(|f| f.set_modified(old))
            .expect("age a");
        cache.put(&c, &artifact(1000)).expect("put c");
        assert_eq!(cache.get(&a), None, "the oldest entry was evicted");
        assert!(cache.get(&b).is_some() && cache.get(&c).is_some());
        let leftovers = fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            })
            .count();
        assert_eq!(leftovers, 0);
    }

    /// Hunt comp 6: the cache is shared by every caller, and an entry could be as large as the
    /// whole bound but for a byte: three ~400 MiB artifacts of one caller (raised compile
    /// limits, `char a[400<<20] = {1};`) evicted every other caller's entries from the 1 GiB
    /// cache. An entry is at most a sixteenth of the bound; a larger one is not kept and
    /// evicts nothing.
    #[test]
    fn one_entry_takes_at_most_a_sixteenth_of_the_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().to_owned(), 16 << 10);
        let others: Vec<CacheKey> = (0..10).map(|i| key(&format!("other {i}"))).collect();
        for other in &others {
            cache.put(other, &artifact(100)).expect("put");
        }
        let overhead = CollectedFile::encoded_len(&artifact(0)) + ENTRY_HEADER;
        let largest = usize::try_from(1024 - overhead).expect("small");
        cache.put(&key("largest"), &artifact(largest)).expect("put");
        assert!(cache.get(&key("largest")).is_some(), "a sixteenth is kept");
        cache
            .put(&key("past"), &artifact(largest + 1))
            .expect("put");
        assert_eq!(cache.get(&key("past")), None, "past a sixteenth: not kept");
        // Three of these once filled the cache with themselves alone.
        for i in 0..3 {
            let big = key(&format!("big {i}"));
            cache.put(&big, &artifact(5000)).expect("put");
            assert_eq!(cache.get(&big), None, "not kept");
        }
        for other in &others {
            assert!(cache.get(other).is_some(), "nothing evicted");
        }
        assert_eq!(
            CompileCache::new(dir.path().to_owned(), DEFAULT_MAX_BYTES).max_entry_bytes,
            64 << 20
        );
    }

    /// Bug hunt: the cache was 0755 and its entries 0644, so that any user of the host (a
    /// trusted run's uid among them) read every program's compiled artifact.
    #[test]
    fn the_cache_is_warden_s_alone_to_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("compile");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).expect("chmod");
        let cache = CompileCache::new(root.clone(), 1 << 20);
        cache.put(&key("a"), &artifact(10)).expect("put");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&root), 0o700, "an existing cache is closed too");
        assert_eq!(mode(&cache.entry(&key("a"))), 0o600);
        let fresh = CompileCache::new(dir.path().join("new/compile"), 1 << 20);
        fresh.put(&key("a"), &artifact(10)).expect("put");
        assert_eq!(mode(fresh.root()), 0o700);
    }

    /// Bug hunt: the cache's directory was closed to 0700 whatever it was: `WARDEN_CACHE_DIR`
    /// set to a shared temporary directory (1777), to `/var/cache` or to `/` locked every other
    /// user out of it (`/` at 0700 broke the host's sandboxes). A directory that holds other
    /// files keeps its mode, and one other users may write into is not used at all: they could
    /// plant an entry that warden would run.
    #[test]
    fn a_directory_of_others_is_left_as_it_is() {
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
        let dir = tempfile::tempdir().expect("tempdir");
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).expect("mkdir");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).expect("chmod");
        fs::write(shared.join("someone_elses"), "x").expect("write");
        let cache = CompileCache::new(shared.clone(), 1 << 20);
        let refused = cache
            .put(&key("a"), &artifact(10))
            .expect_err("a shared directory");
        assert!(
            refused.to_string().contains("shared with other users"),
            "{refused}"
        );
        assert!(!refused.to_string().contains("  "), "{refused}");
        assert_eq!(mode(&shared), 0o1777);
        // Planted by another user: never read.
        fs::write(cache.entry(&key("a")), b"planted").expect("plant");
        assert_eq!(cache.get(&key("a")), None);
        assert!(cache.entry(&key("a")).exists(), "not removed either");

        let system = dir.path().join("system");
        fs::create_dir(&system).expect("mkdir");
        fs::set_permissions(&system, fs::Permissions::from_mode(0o755)).expect("chmod");
        fs::create_dir(system.join("apt")).expect("mkdir");
        let cache = CompileCache::new(system.clone(), 1 << 20);
        cache.put(&key("b"), &artifact(10)).expect("put");
        assert_eq!(mode(&system), 0o755, "other files: the mode is kept");
        assert_eq!(mode(&cache.entry(&key("b"))), 0o600);
        assert!(cache.get(&key("b")).is_some());
    }

    #[test]
    fn a_damaged_entry_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().to_owned(), 1 << 20);
        let k = key("x");
        fs::write(cache.entry(&k), b"\x05\x00\x00\x00ab").expect("write garbage");
        assert_eq!(cache.get(&k), None);
        assert!(!cache.entry(&k).exists());
    }

    /// Bug hunt: an entry cut between two files (or to nothing) read as whole, file by file,
    /// and a Java entry, which no executable check reads, was served so at every later run
    /// (`ClassNotFoundException`) instead of being compiled again.
    #[test]
    fn an_entry_cut_between_two_files_or_empty_is_a_miss_and_is_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().to_owned(), 1 << 20);
        let k = key("x");
        let files: Vec<CollectedFile> = ["Main.class", "Main$Inner.class", "Helper.class"]
            .into_iter()
            .map(|name| CollectedFile {
                path: name.into(),
                contents: vec![0xca; 100],
                executable: false,
            })
            .collect();
        cache.put(&k, &files).expect("stored");
        assert_eq!(cache.get(&k), Some(files.clone()));
        let whole = fs::read(cache.entry(&k)).expect("the entry");
        let two = CollectedFile::encoded_len(&files[..2]) as usize;
        for length in [ENTRY_HEADER as usize + two, 0] {
            fs::write(cache.entry(&k), &whole[..length]).expect("cut the entry");
            assert_eq!(cache.get(&k), None, "cut at {length}");
            assert!(!cache.entry(&k).exists(), "cut at {length}");
        }
    }

    /// Bug hunt: two evictions at once (two runs storing large artifacts) emptied the cache.
    /// The second found the entries the first had removed already gone, counted them as still
    /// there, and went on removing every other entry, the new ones included.
    #[test]
    fn an_entry_another_eviction_removed_counts_as_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = dir.path().join("old.artifact");
        let new = dir.path().join("new.artifact");
        fs::write(&new, [0u8; 100]).expect("write");
        let at = |secs| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        // `old` listed, then removed by the other eviction before this one reached it.
        let entries = vec![(at(1), 100, old), (at(2), 100, new.clone())];
        evict_oldest(entries, 100, |path| gone(fs::remove_file(path)));
        assert!(
            new.exists(),
            "the newer entry fits once the older one is gone"
        );
    }

    /// Bug hunt: a writer killed between writing its temporary and renaming it left the
    /// `.tmp-` file for good, outside the bound (up to an artifact's 512 MiB a crash).
    #[test]
    fn a_dead_writer_s_temporary_is_swept_once_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = CompileCache::new(dir.path().to_owned(), 1 << 20);
        let stale = temp_path(dir.path(), key("a").as_str());
        let live = temp_path(dir.path(), key("b").as_str());
        let stale_dir = temp_path(dir.path(), "evicted");
        for file in [&stale, &live] {
            fs::write(file, [0u8; 10]).expect("write");
        }
        fs::create_dir(&stale_dir).expect("mkdir");
        fs::write(stale_dir.join("f"), b"x").expect("write");
        let long_ago = SystemTime::now() - STALE_TEMP - std::time::Duration::from_secs(60);
        for path in [&stale, &stale_dir] {
            fs::File::open(path)
                .and_then(|f| f.set_modified(long_ago))
                .expect("age it");
        }
        cache.put(&key("c"), &artifact(10)).expect("put");
        assert!(!stale.exists(), "a stale temporary file is removed");
        assert!(
            !stale_dir.exists(),
            "a stale temporary directory is removed"
        );
        assert!(live.exists(), "one being written is left alone");
        assert!(cache.get(&key("c")).is_some());
    }
}
