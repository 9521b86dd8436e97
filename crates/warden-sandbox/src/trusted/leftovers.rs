//! What a trusted run leaves in the host's world-writable directories (`/tmp`, `/var/tmp`,
//! `/dev/shm`, `/dev/mqueue`, and those found under `/tmp`, `/run`, `/var` and `/dev`:
//! [`shared_dirs`]): the run's uid is a per-run slot that the next trusted run may get, which
//! could then read and change what this one left there. So at the end of the run, once the
//! init has killed and reaped every process of the uid (nothing of it can create or rename an
//! entry any more), the top-level entries the uid owns are removed. Runs in the parent (or,
//! when warden died, in the helper), as root.
//!
//! Other runs may still be alive meanwhile, as other slot uids, and may change any directory
//! they own or can write to. So nothing is done by path below a shared directory: each is
//! opened once (`O_NOFOLLOW`), and every entry is examined (`fstatat`, not following links),
//! opened (`O_DIRECTORY | O_NOFOLLOW`, checked to be the inode examined) and removed
//! (`unlinkat`) relative to its parent's descriptor; a directory of the uid goes whole, through
//! descriptors too ([`remove_at`]). A directory swapped for a link between the check and the
//! removal is then not followed (a path walk was: a second run made root delete what the link
//! named). Every entry of the uid goes, however many the run made (a cap on the entries looked
//! at let a run that made 100,010 in `/dev/shm` keep the rest); only the host's own entries are
//! bounded ([`MAX_HOST_ENTRIES`]), which no run can add to.
//!
//! A world-writable directory owned by a slot uid is another run's leftover, not a shared
//! directory: it is neither kept as one nor searched (a run filling such a directory with
//! entries spent the search's budget, so that shared directories further on were not found).

use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, AtFlags, OFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// The host directories every user may write to, and so a trusted run's program too.
pub(crate) const SHARED_DIRS: [&str; 4] = ["/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"];

/// Where else world-writable directories are looked for ([`shared_dirs`]), and how deep.
const SEARCHED: [&str; 4] = ["/run", "/var", "/dev", "/tmp"];
const SEARCH_DEPTH: usize = 3;

/// The most directories [`shared_dirs`] looks into under [`SEARCHED`] (files are passed over
/// by their type, and the directories of slot uids by their owner, without counting: a run
/// cannot spend the budget); past it, a warning is logged.
const MAX_SEARCHED: usize = 20_000;

/// Whether `uid` is a sandbox's (a run's slot).
fn is_slot(uid: u32) -> bool {
    (crate::HOST_ID_BASE..crate::HOST_ID_BASE + crate::SLOTS).contains(&uid)
}

/// [`SHARED_DIRS`] and every other world-writable directory under `/tmp`, `/run`, `/var` and
/// `/dev`, up to three levels down, found now (a Debian host has `/run/lock`,
/// `/var/lib/php/sessions`, often `/tmp/.X11-unix`), links never followed, and none owned by a
/// slot uid (searched into neither). Looked for at each run's end, not once: an operator's
/// package may make one at any time.
pub(crate) fn shared_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<std::path::PathBuf> = SHARED_DIRS.iter().map(Into::into).collect();
    let mut budget = MAX_SEARCHED;
    for root in SEARCHED {
        world_writable(Path::new(root), SEARCH_DEPTH, &mut budget, &mut dirs);
    }
    if budget == 0 {
        tracing::warn!("more than {MAX_SEARCHED} directories searched for world-writable ones: the rest is not");
    }
    dirs
}

fn world_writable(
    dir: &Path,
    depth: usize,
    budget: &mut usize,
    found: &mut Vec<std::path::PathBuf>,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // `file_type` and `metadata` of a directory entry do not follow a link.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if *budget == 0 {
            return;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if is_slot(meta.uid()) {
            continue;
        }
        *budget -= 1;
        let path = entry.path();
        if meta.mode() & 0o002 != 0 && !found.contains(&path) {
            found.push(path.clone());
        }
        if depth > 1 {
            world_writable(&path, depth - 1, budget, found);
        }
    }
}

/// The most of the host's own entries of one directory looked at ([`counts`]): a host whose
/// `/tmp` holds more has the rest not looked at (and a warning logged). Entries of the run's
/// uid, which are all removed, and of other runs' uids do not count: a run cannot spend it.
pub(crate) const MAX_HOST_ENTRIES: usize = 100_000;

/// Removes the top-level entries of each of `dirs` owned by `uid` (a directory that does not
/// exist is skipped), and the System V IPC objects of `uid` (message queues, semaphores,
/// shared memory: the host's IPC namespace is the run's). The first error, after trying
/// everything else.
pub(crate) fn remove_owned(dirs: &[&Path], uid: u32) -> Result<(), std::io::Error> {
    let mut first_error = None;
    // Only a run's own uid, never another user's (root's, in the tests' own run).
    let ipc = if is_slot(uid) {
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
            first_error.get_or_insert(e.into());
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes what `uid` left in `dirs` ([`remove_owned`]); what cannot all go is kept from the
/// next trusted runs given the uid by marking its slot, in `slot_file`, unusable for trusted
/// runs until reboot (idmap.rs), and the sweep counts as done: the run's result stands, where
/// a failed sweep ended it as warden's error (exit 125), its result lost, and left the files
/// to the slot's next run all the same. An error only when the mark failed too.
pub(crate) fn remove_or_pass_over(
    dirs: &[&Path],
    uid: u32,
    slot_file: &Path,
) -> Result<(), std::io::Error> {
    let Err(e) = remove_owned(dirs, uid) else {
        return Ok(());
    };
    let why = crate::idmap::Unusable::Leftovers;
    if let Err(mark) = crate::idmap::mark_unusable_for_trusted(slot_file, uid, why) {
        tracing::warn!(uid, error = %mark, "marking a slot unusable for trusted runs");
        return Err(e);
    }
    tracing::warn!(
        uid,
        error = %e,
        "what a trusted run left cannot all be removed: its slot is passed over by trusted runs \
         until reboot"
    );
    Ok(())
}

const DIRECTORY: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn remove_owned_in(dir: &Path, uid: u32) -> Result<(), Errno> {
    remove_owned_within(dir, uid, MAX_HOST_ENTRIES)
}

/// [`remove_owned_in`] looking at no more than `budget` of the host's own entries per pass.
/// Each entry is examined as it is read and the uid's removed at once, so that nothing is held
/// per entry: the directory may hold as many as the run could make. POSIX leaves unspecified
/// what a directory read returns once entries are unlinked during it (std's `remove_dir_all`
/// unlinks as it reads too), so a pass that removed anything is followed by another, until
/// one finds nothing of the uid: its processes are gone, and no one else can give it a file.
fn remove_owned_within(dir: &Path, uid: u32, budget: usize) -> Result<(), Errno> {
    loop {
        match remove_pass(dir, uid, budget)? {
            Pass::RemovedSome => continue,
            Pass::Clean => return Ok(()),
            Pass::Failed(e) => return Err(e),
        }
    }
}

/// What one pass over a directory did.
enum Pass {
    /// It removed entries of the uid: another pass looks again.
    RemovedSome,
    /// It found nothing of the uid.
    Clean,
    /// It removed nothing and failed to remove an entry (the first error; the rest were
    /// tried).
    Failed(Errno),
}

fn remove_pass(dir: &Path, uid: u32, budget: usize) -> Result<Pass, Errno> {
    let top = match open(dir, DIRECTORY, Mode::empty()) {
        // Gone, or a link (a shared directory is never one).
        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => return Ok(Pass::Clean),
        top => top?,
    };
    let clone = top
        .try_clone()
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let mut listing = nix::dir::Dir::from_fd(clone)?;
    let mut host_entries = 0;
    let mut first_error = None;
    let mut removed = false;
    for entry in listing.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        // A link is the link's own owner and is removed itself.
        let Ok(stat) = fstatat(&top, name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            continue;
        };
        if stat.st_uid != uid {
            if counts(&stat) {
                host_entries += 1;
                if host_entries > budget {
                    tracing::warn!(dir = %dir.display(), "more than {budget} of the host's entries: the rest is not looked at");
                    break;
                }
            }
            continue;
        }
        match remove_at(&top, name, &stat) {
            Err(Errno::ENOENT) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(()) => {
                removed = true;
                tracing::debug!(dir = %dir.display(), ?name, "removed a trusted run's leftover");
            }
        }
    }
    // An entry that failed fails again in the next pass, which removes nothing else: the
    // passes end.
    Ok(match (removed, first_error) {
        (true, _) => Pass::RemovedSome,
        (false, Some(e)) => Pass::Failed(e),
        (false, None) => Pass::Clean,
    })
}

/// Whether an entry of another owner counts towards the budget of host entries: not one of a
/// run's uid (each run's own are its cleanup's work, bounded by what it made), nor a hard link
/// to a file named elsewhere too, which a run may make to any host file it can read and write
/// (`fs.protected_hardlinks`), as many as it likes, under the file's owner.
fn counts(stat: &FileStat) -> bool {
    let directory = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
    !is_slot(stat.st_uid) && (directory || stat.st_nlink <= 1)
}

/// Removes the entry `name` of `parent`, examined as `stat`. A directory is checked to be the
/// one examined (opened `O_NOFOLLOW`, its inode compared: a link or another directory put in
/// its place is refused), then removed with all it holds through descriptors, one level open at
/// a time, never following a link nor entering another file system (`tree.rs`). No depth or
/// size bound: a tree the run made deep or wide (5,000 levels under a descriptor limit of 256,
/// 100,001 files) goes whole, as its uid's next run must not find it.
fn remove_at(parent: &OwnedFd, name: &CStr, stat: &FileStat) -> Result<(), Errno> {
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        return unlinkat(parent, name, UnlinkatFlags::NoRemoveDir);
    }
    super::tree::remove(parent, name, stat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::openat;
    use std::fs;

    /// Bug hunt: the check of an entry and its removal went by path, so another run could
    /// swap the directory checked for a link between the two, and root removed what the link
    /// named. The removal now goes through the descriptor of what was checked: a link put in
    /// its place is not followed.
    #[test]
    fn a_directory_swapped_for_a_link_after_its_check_is_not_followed() {
        let victim = tempfile::tempdir().expect("tempdir");
        fs::write(victim.path().join("precious"), "x").expect("write");
        let shared = tempfile::tempdir().expect("tempdir");
        let parent = open(shared.path(), DIRECTORY, Mode::empty()).expect("open");
        fs::create_dir(shared.path().join("d")).expect("mkdir");
        fs::write(shared.path().join("d/mine"), "x").expect("write");
        let checked =
            fstatat(&parent, c"d", AtFlags::AT_SYMLINK_NOFOLLOW).expect("the directory checked");
        // Swapped for a link to the victim after the check.
        fs::rename(shared.path().join("d"), shared.path().join("moved")).expect("rename");
        std::os::unix::fs::symlink(victim.path(), shared.path().join("d")).expect("symlink");
        let removed = remove_at(&parent, c"d", &checked);
        assert!(removed.is_err(), "{removed:?}");
        assert!(
            victim.path().join("precious").exists(),
            "the link was followed"
        );
        // Another directory in its place is refused too.
        fs::remove_file(shared.path().join("d")).expect("unlink");
        fs::create_dir(shared.path().join("d")).expect("mkdir");
        fs::write(shared.path().join("d/other"), "x").expect("write");
        assert_eq!(remove_at(&parent, c"d", &checked), Err(Errno::ESTALE));
        assert!(shared.path().join("d/other").exists());
    }

    /// Bug hunt: a tree deeper than the walk's bound (200 levels) was left, and its uid's next
    /// trusted runs all failed on it. A tree of any depth goes whole.
    #[test]
    fn a_deep_tree_goes_whole() {
        let uid = nix::unistd::geteuid().as_raw();
        let shared = tempfile::tempdir().expect("tempdir");
        let mut deep = shared.path().join("deep");
        for _ in 0..300 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).expect("mkdir -p");
        fs::write(deep.join("file"), "x").expect("write");
        let wide = shared.path().join("wide");
        fs::create_dir(&wide).expect("mkdir");
        for i in 0..2000 {
            fs::write(wide.join(i.to_string()), "").expect("write");
        }
        remove_owned(&[shared.path()], uid).expect("removed");
        assert_eq!(fs::read_dir(shared.path()).expect("readdir").count(), 0);
    }

    /// A chain of `depth` directories `d/d/...` under `dir`, made through descriptors (its
    /// path is longer than `PATH_MAX`), with a file at the bottom.
    fn chain(dir: &Path, depth: usize) {
        let mut at = open(dir, DIRECTORY, Mode::empty()).expect("open");
        for _ in 0..depth {
            nix::sys::stat::mkdirat(&at, c"d", Mode::from_bits_truncate(0o755)).expect("mkdir");
            at = openat(&at, c"d", DIRECTORY, Mode::empty()).expect("open");
        }
        let file = openat(
            &at,
            c"file",
            OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        );
        drop(file.expect("create"));
    }

    /// Bug hunt esc F1: std's `remove_dir_all` holds a descriptor per level, so a tree deeper
    /// than the soft `RLIMIT_NOFILE` failed with `EMFILE` (the run ended 125 and the tree was
    /// left to its uid's next run). One level is open at a time now: 5,000 levels go under a
    /// limit of 256. (nextest runs each test in a process of its own, whose limit this lowers.)
    #[test]
    fn a_tree_deeper_than_the_descriptor_limit_goes_whole() {
        use nix::sys::resource::{getrlimit, setrlimit, Resource};
        let uid = nix::unistd::geteuid().as_raw();
        let shared = tempfile::tempdir().expect("tempdir");
        fs::create_dir(shared.path().join("deep")).expect("mkdir");
        chain(&shared.path().join("deep"), 5000);
        fs::write(shared.path().join("deep/beside"), "x").expect("write");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        setrlimit(Resource::RLIMIT_NOFILE, 256, hard).expect("lower the limit");
        let removed = remove_owned(&[shared.path()], uid);
        setrlimit(Resource::RLIMIT_NOFILE, soft, hard).expect("restore the limit");
        removed.expect("removed");
        assert_eq!(fs::read_dir(shared.path()).expect("readdir").count(), 0);
    }

    /// Bug hunt esc F1: std's `remove_dir_all` recurses once per level, so a deep enough tree
    /// overflowed the stack of the thread sweeping and aborted the process (`warden serve`, and
    /// every run in flight with it). The walk is a loop now: 3,000 levels go on a thread of
    /// 128 KiB of stack.
    #[test]
    fn a_tree_deeper_than_the_stack_goes_whole() {
        let uid = nix::unistd::geteuid().as_raw();
        let shared = tempfile::tempdir().expect("tempdir");
        fs::create_dir(shared.path().join("deep")).expect("mkdir");
        chain(&shared.path().join("deep"), 3000);
        let path = shared.path().to_owned();
        let sweep = std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || remove_owned(&[&path], uid))
            .expect("spawn");
        sweep.join().expect("no overflow").expect("removed");
        assert_eq!(fs::read_dir(shared.path()).expect("readdir").count(), 0);
    }

    /// What the sweep cannot remove (here beneath a mount point, which it never enters) is kept
    /// from the uid's next trusted runs by its slot's mark, and the sweep counts as done, so
    /// that the run's result stands (it was lost to exit 125, and the files stayed all the
    /// same); what could go went.
    #[test]
    fn what_cannot_be_removed_marks_the_slot_and_the_sweep_is_done() {
        if !super::super::tests::as_root("giving entries to a slot uid and mounting need root") {
            return;
        }
        let uid = crate::HOST_ID_BASE + 11;
        let state = tempfile::tempdir().expect("tempdir");
        let slot_file = state.path().join("slots");
        fs::write(&slot_file, "").expect("a slot file");
        let shared = tempfile::tempdir().expect("tempdir");
        let mount_point = shared.path().join("top/mnt");
        fs::create_dir_all(&mount_point).expect("mkdir");
        fs::write(shared.path().join("file"), "x").expect("write");
        for path in [
            shared.path().join("top"),
            mount_point.clone(),
            shared.path().join("file"),
        ] {
            std::os::unix::fs::chown(&path, Some(uid), Some(uid)).expect("chown");
        }
        nix::mount::mount(
            Some("tmpfs"),
            &mount_point,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .expect("mount a tmpfs");
        let swept = remove_or_pass_over(&[shared.path()], uid, &slot_file);
        nix::mount::umount2(&mount_point, nix::mount::MntFlags::MNT_DETACH).expect("umount");
        swept.expect("the sweep counts as done");
        assert!(crate::idmap::marked_unusable_for_trusted(&slot_file, uid));
        assert!(!shared.path().join("file").exists(), "what could go went");
        assert!(mount_point.exists(), "what could not stayed");
        let other = crate::HOST_ID_BASE + 12;
        remove_or_pass_over(&[shared.path()], other, &slot_file).expect("nothing of its");
        assert!(!crate::idmap::marked_unusable_for_trusted(
            &slot_file, other
        ));
    }

    /// A world-writable directory a run (a slot uid) made is neither a shared directory nor
    /// searched: a run filling one spent the search's budget before the host's were found.
    #[test]
    fn a_runs_world_writable_directory_is_not_searched() {
        if !super::super::tests::as_root("giving a directory to a slot uid needs root") {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let host = root.path().join("host");
        let run = root.path().join("run");
        for dir in [&host, &run, &run.join("inner")] {
            fs::create_dir(dir).expect("mkdir");
            fs::set_permissions(dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        let slot = Some(nix::unistd::Uid::from_raw(crate::HOST_ID_BASE + 7));
        nix::unistd::chown(&run, slot, None).expect("chown");
        let mut budget = 10;
        let mut found = Vec::new();
        world_writable(root.path(), 3, &mut budget, &mut found);
        assert_eq!(found, [host], "only the host's");
        assert_eq!(
            budget, 9,
            "the host's directory only: the run's costs nothing"
        );
    }

    /// Bug hunt: the first 100,000 entries of a directory were looked at, the run's own
    /// among them, so a run that made more kept the rest for its uid's next run. Only the
    /// host's own entries count now (here a budget of 3): neither the run's, nor another
    /// run's, nor hard links to a file that has another name too.
    #[test]
    fn only_the_hosts_own_entries_spend_the_budget() {
        if !super::super::tests::as_root("giving entries to slot uids needs root") {
            return;
        }
        let run = crate::HOST_ID_BASE + 9;
        let other = crate::HOST_ID_BASE + 7;
        let shared = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("tempdir");
        let host_file = outside.path().join("host");
        fs::write(&host_file, "x").expect("write");
        let give = |name: String, uid: u32| {
            let path = shared.path().join(name);
            fs::write(&path, "x").expect("write");
            std::os::unix::fs::chown(&path, Some(uid), Some(uid)).expect("chown");
        };
        for i in 0..50 {
            give(format!("other-{i}"), other);
            give(format!("run-{i}"), run);
            // On the same filesystem as the shared directory: a hard link to the host's file.
            let _ = fs::hard_link(&host_file, shared.path().join(format!("link-{i}")));
        }
        for i in 0..3 {
            fs::write(shared.path().join(format!("host-{i}")), "x").expect("write");
        }
        remove_owned_within(shared.path(), run, 3).expect("removed");
        let mut left: Vec<String> = fs::read_dir(shared.path())
            .expect("readdir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert!(!left.iter().any(|n| n.starts_with("run-")), "{left:?}");
        assert_eq!(
            left.iter().filter(|n| n.starts_with("other-")).count(),
            50,
            "another run's entries stay"
        );
        assert_eq!(
            left.iter().filter(|n| n.starts_with("host-")).count(),
            3,
            "the host's entries stay"
        );
    }

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
