//! Writes to read-only paths, recorded as a job's security event. The sandbox's root, its
//! runtime binds, `/dev` and read-only volumes are read-only mounts, so the kernel refuses a
//! write to them (`EROFS`) before anything else sees it. To record the attempt, the payload's
//! seccomp filter suspends every call that writes to a named path (an `open` with a write
//! flag, `mkdir`, `unlink`, `rename`, `chmod`, ...) for the init, which holds the listener
//! (`denials.rs`). The init reads the path from the caller's memory, decides as the kernel
//! will whether it lies on a read-only mount, counts it if so, and lets the call run
//! (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`): the kernel checks and answers it as it would without
//! the filter. The init only looks; it decides nothing, so a program that changes the path
//! between the read and the call can at worst make the record wrong, never the refusal.
//!
//! Cost: a write to a writable path (`/work`, `/tmp`) pays one round trip to the init (about
//! 20 µs); reads never reach it (the filter lets an `open` without a write flag pass in the
//! kernel). docs/events.md, Writes to read-only paths.
//!
//! Man pages: seccomp_unotify(2), process_vm_readv(2), statvfs(3), open(2) (`EROFS`).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::stat::{lstat, stat, FileStat, SFlag};
use nix::sys::statvfs::{statvfs, FsFlags};
use serde::{Deserialize, Serialize};
use warden_core::seccomp_policy::DenySeverity;
use warden_sys::seccomp::{
    seccomp_data_arg_low, SockFilter, BPF_JSET, SECCOMP_DATA_NR, SECCOMP_RET_USER_NOTIF,
};

use crate::seccomp::{jump, load, ret};

/// How many attempts keep their call and path.
const SAMPLES: usize = 3;
/// The longest path an attempt keeps, in bytes.
const MAX_SHOWN: usize = 200;

/// The writes to read-only paths a job's processes attempted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadOnlyWrites {
    /// How many calls tried (saturates at `u64::MAX`).
    pub count: u64,
    /// The most serious attempt's severity: `medium` for the sandbox's system surfaces
    /// (`/etc`, `/dev`, `/proc`, `/sys`, `/.warden`), `low` elsewhere.
    pub severity: DenySeverity,
    /// The first few attempts (at most 3), in order.
    pub attempts: Vec<WriteAttempt>,
}

/// One attempted write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteAttempt {
    /// The system call (`openat`, `mkdir`, `unlinkat`).
    pub call: String,
    /// The path, absolute as the sandbox sees it when the init could tell (cut at 200 bytes,
    /// control characters shown as `?`).
    pub path: String,
}

impl Default for ReadOnlyWrites {
    fn default() -> Self {
        Self {
            count: 0,
            severity: DenySeverity::Low,
            attempts: Vec::new(),
        }
    }
}

impl ReadOnlyWrites {
    /// Adds `other`'s attempts to these.
    pub(crate) fn merge(&mut self, other: ReadOnlyWrites) {
        self.count = self.count.saturating_add(other.count);
        self.severity = self.severity.max(other.severity);
        let room = SAMPLES.saturating_sub(self.attempts.len());
        self.attempts.extend(other.attempts.into_iter().take(room));
    }

    fn record(&mut self, call: &str, path: String) {
        self.count = self.count.saturating_add(1);
        self.severity = self.severity.max(severity_of(&path));
        if self.attempts.len() < SAMPLES {
            self.attempts.push(WriteAttempt {
                call: call.to_owned(),
                path,
            });
        }
    }
}

/// How serious a write to `path` is: the surfaces an escape works through are `medium`.
fn severity_of(path: &str) -> DenySeverity {
    const SURFACES: [&str; 5] = ["/etc", "/dev", "/proc", "/sys", "/.warden"];
    let under = |root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if SURFACES.iter().any(|root| under(root)) {
        DenySeverity::Medium
    } else {
        DenySeverity::Low
    }
}

/// Where an `open`'s flags are.
#[derive(Debug, Clone, Copy)]
enum Flags {
    /// In argument `n`.
    Arg(usize),
    /// In the `struct open_how` argument `n` points to (`openat2`).
    OpenHow(usize),
    /// Implied: `creat` is `open` with `O_CREAT | O_WRONLY | O_TRUNC`.
    Creat,
}

/// How a call writes to the name it is given.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// Opens it, for writing if its flags say so, creating it with `O_CREAT`.
    Open(Flags),
    /// Creates it (`mkdir`, `mknod`, a link's or symlink's new name): an existing name fails
    /// with `EEXIST` before the mount is looked at.
    Create,
    /// Replaces or creates it (`rename`'s new name).
    Replace,
    /// Removes it (`unlink`, `rmdir`, `rename`'s old name). The kernel checks the mount
    /// before it looks the name up, so removing a missing name is refused alike.
    Remove,
    /// Changes its attributes or contents (`chmod`, `truncate`, `setxattr`, `utimes`).
    /// `nofollow`: the call works on a final symlink itself; `nofollow_flag`: the argument
    /// whose `AT_SYMLINK_NOFOLLOW` says so.
    Change {
        nofollow: bool,
        nofollow_flag: Option<usize>,
    },
}

/// One name a call writes to: `path` is the argument with its address (`None`: the call
/// works on descriptor `dirfd` itself, `fchmod`), resolved from descriptor `dirfd` (`None`:
/// from the working directory).
#[derive(Debug, Clone, Copy)]
struct Operand {
    dirfd: Option<usize>,
    path: Option<usize>,
    effect: Effect,
}

const fn op(dirfd: Option<usize>, path: usize, effect: Effect) -> Operand {
    Operand {
        dirfd,
        path: Some(path),
        effect,
    }
}

const FOLLOW: Effect = Effect::Change {
    nofollow: false,
    nofollow_flag: None,
};
const NOFOLLOW: Effect = Effect::Change {
    nofollow: true,
    nofollow_flag: None,
};
const fn change_at(flag: usize) -> Effect {
    Effect::Change {
        nofollow: false,
        nofollow_flag: Some(flag),
    }
}
const ON_FD: &[Operand] = &[Operand {
    dirfd: Some(0),
    path: None,
    effect: FOLLOW,
}];

/// The calls the filter suspends for the init: every call that writes to a named file or
/// directory, or changes one through a descriptor.
const WATCHED: &[(&str, libc::c_long, &[Operand])] = &[
    #[cfg(target_arch = "x86_64")]
    (
        "open",
        libc::SYS_open,
        &[op(None, 0, Effect::Open(Flags::Arg(1)))],
    ),
    #[cfg(target_arch = "x86_64")]
    (
        "creat",
        libc::SYS_creat,
        &[op(None, 0, Effect::Open(Flags::Creat))],
    ),
    (
        "openat",
        libc::SYS_openat,
        &[op(Some(0), 1, Effect::Open(Flags::Arg(2)))],
    ),
    (
        "openat2",
        libc::SYS_openat2,
        &[op(Some(0), 1, Effect::Open(Flags::OpenHow(2)))],
    ),
    #[cfg(target_arch = "x86_64")]
    ("mkdir", libc::SYS_mkdir, &[op(None, 0, Effect::Create)]),
    (
        "mkdirat",
        libc::SYS_mkdirat,
        &[op(Some(0), 1, Effect::Create)],
    ),
    #[cfg(target_arch = "x86_64")]
    ("mknod", libc::SYS_mknod, &[op(None, 0, Effect::Create)]),
    (
        "mknodat",
        libc::SYS_mknodat,
        &[op(Some(0), 1, Effect::Create)],
    ),
    #[cfg(target_arch = "x86_64")]
    ("symlink", libc::SYS_symlink, &[op(None, 1, Effect::Create)]),
    (
        "symlinkat",
        libc::SYS_symlinkat,
        &[op(Some(1), 2, Effect::Create)],
    ),
    #[cfg(target_arch = "x86_64")]
    ("link", libc::SYS_link, &[op(None, 1, Effect::Create)]),
    (
        "linkat",
        libc::SYS_linkat,
        &[op(Some(2), 3, Effect::Create)],
    ),
    #[cfg(target_arch = "x86_64")]
    ("unlink", libc::SYS_unlink, &[op(None, 0, Effect::Remove)]),
    #[cfg(target_arch = "x86_64")]
    ("rmdir", libc::SYS_rmdir, &[op(None, 0, Effect::Remove)]),
    (
        "unlinkat",
        libc::SYS_unlinkat,
        &[op(Some(0), 1, Effect::Remove)],
    ),
    #[cfg(target_arch = "x86_64")]
    (
        "rename",
        libc::SYS_rename,
        &[op(None, 0, Effect::Remove), op(None, 1, Effect::Replace)],
    ),
    #[cfg(target_arch = "x86_64")]
    (
        "renameat",
        libc::SYS_renameat,
        &[
            op(Some(0), 1, Effect::Remove),
            op(Some(2), 3, Effect::Replace),
        ],
    ),
    (
        "renameat2",
        libc::SYS_renameat2,
        &[
            op(Some(0), 1, Effect::Remove),
            op(Some(2), 3, Effect::Replace),
        ],
    ),
    ("truncate", libc::SYS_truncate, &[op(None, 0, FOLLOW)]),
    #[cfg(target_arch = "x86_64")]
    ("chmod", libc::SYS_chmod, &[op(None, 0, FOLLOW)]),
    ("fchmodat", libc::SYS_fchmodat, &[op(Some(0), 1, FOLLOW)]),
    (
        "fchmodat2",
        libc::SYS_fchmodat2,
        &[op(Some(0), 1, change_at(3))],
    ),
    #[cfg(target_arch = "x86_64")]
    ("chown", libc::SYS_chown, &[op(None, 0, FOLLOW)]),
    #[cfg(target_arch = "x86_64")]
    ("lchown", libc::SYS_lchown, &[op(None, 0, NOFOLLOW)]),
    (
        "fchownat",
        libc::SYS_fchownat,
        &[op(Some(0), 1, change_at(4))],
    ),
    #[cfg(target_arch = "x86_64")]
    ("utime", libc::SYS_utime, &[op(None, 0, FOLLOW)]),
    #[cfg(target_arch = "x86_64")]
    ("utimes", libc::SYS_utimes, &[op(None, 0, FOLLOW)]),
    #[cfg(target_arch = "x86_64")]
    ("futimesat", libc::SYS_futimesat, &[op(Some(0), 1, FOLLOW)]),
    // A null path changes descriptor `dirfd` itself (see `inspect`).
    (
        "utimensat",
        libc::SYS_utimensat,
        &[op(Some(0), 1, change_at(3))],
    ),
    ("setxattr", libc::SYS_setxattr, &[op(None, 0, FOLLOW)]),
    ("lsetxattr", libc::SYS_lsetxattr, &[op(None, 0, NOFOLLOW)]),
    ("removexattr", libc::SYS_removexattr, &[op(None, 0, FOLLOW)]),
    (
        "lremovexattr",
        libc::SYS_lremovexattr,
        &[op(None, 0, NOFOLLOW)],
    ),
    // Linux 6.13; libc names neither yet. The numbers are shared by every architecture.
    (
        "setxattrat",
        SYS_SETXATTRAT,
        &[op(Some(0), 1, change_at(2))],
    ),
    (
        "removexattrat",
        SYS_REMOVEXATTRAT,
        &[op(Some(0), 1, change_at(2))],
    ),
    ("fchmod", libc::SYS_fchmod, ON_FD),
    ("fchown", libc::SYS_fchown, ON_FD),
    ("fsetxattr", libc::SYS_fsetxattr, ON_FD),
    ("fremovexattr", libc::SYS_fremovexattr, ON_FD),
];

/// `setxattrat(2)`'s number (include/uapi/asm-generic/unistd.h, and x86_64's table).
const SYS_SETXATTRAT: libc::c_long = 463;
/// `removexattrat(2)`'s number.
const SYS_REMOVEXATTRAT: libc::c_long = 466;

/// The flags that make an `open` a write: write access, creation, truncation (`O_TMPFILE`
/// needs write access).
const WRITE_FLAGS: u32 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;

fn number(nr: libc::c_long) -> u32 {
    u32::try_from(nr).expect("system call numbers are small and positive")
}

/// The watched call numbered `nr`: its name and operands.
fn watched(nr: i32) -> Option<(&'static str, &'static [Operand])> {
    WATCHED
        .iter()
        .find(|(_, known, _)| libc::c_long::from(nr) == *known)
        .map(|(name, _, operands)| (*name, *operands))
}

/// Whether the filter suspends call `nr` as a write.
pub(crate) fn watches(nr: i32) -> bool {
    watched(nr).is_some()
}

/// The filter's code for the watched calls, per call number, in the form of `seccomp.rs`'s
/// rule bodies: run when the call number (in the accumulator) is the call's, they leave it
/// there when they do not return. An `open` or `openat` without a write flag is not suspended
/// (the flags are an `int`: their low word is all the kernel reads), nor, since the kernel
/// answers it at once, does any other call pay more than the dispatch.
pub(crate) fn filter_bodies() -> Vec<(u32, Vec<SockFilter>)> {
    let notify = ret(SECCOMP_RET_USER_NOTIF);
    WATCHED
        .iter()
        .map(|(_, nr, operands)| {
            let body = match operands {
                [Operand {
                    effect: Effect::Open(Flags::Arg(at)),
                    ..
                }] => vec![
                    load(seccomp_data_arg_low(
                        u32::try_from(*at).expect("argument indexes are below 6"),
                    )),
                    jump(BPF_JSET, WRITE_FLAGS, 0, 1),
                    notify,
                    load(SECCOMP_DATA_NR),
                ],
                _ => vec![notify],
            };
            (number(*nr), body)
        })
        .collect()
}

/// A suspended call as [`inspect`] needs it.
pub(crate) struct Call {
    pub(crate) pid: u32,
    pub(crate) nr: i32,
    pub(crate) args: [u64; 6],
}

/// Looks at a suspended watched call and records in `writes` each name it writes to that
/// lies on a read-only mount. Reads the caller's memory and the file system only; the call is
/// answered by the caller of this function.
pub(crate) fn inspect(call: &Call, writes: &mut ReadOnlyWrites) {
    let Some((name, operands)) = watched(call.nr) else {
        return;
    };
    for operand in operands {
        if let Some(path) = attempt(call, operand) {
            writes.record(name, path);
        }
    }
}

/// The path `operand` names, if the call will find it on a read-only mount.
fn attempt(call: &Call, operand: &Operand) -> Option<String> {
    let target = Target::of(call, operand)?;
    let (path, parent) = (&target.path, || target.parent());
    let on_read_only = match operand.effect {
        Effect::Open(flags) => opens_read_only(path, open_flags(call, flags)?, parent)?,
        // An existing name fails with EEXIST, a missing parent with ENOENT.
        Effect::Create => lstat(path).is_err_and(|e| e == Errno::ENOENT) && read_only(&parent()),
        // The mount is checked before the name is looked up: a missing name is EROFS too.
        Effect::Replace | Effect::Remove => read_only(&parent()),
        Effect::Change {
            nofollow,
            nofollow_flag,
        } => {
            let nofollow = nofollow || flag_set(call, nofollow_flag, libc::AT_SYMLINK_NOFOLLOW);
            if !nofollow {
                stat(path).is_ok() && read_only(path)
            } else if kind(&lstat(path).ok()?) == SFlag::S_IFLNK {
                read_only(&parent())
            } else {
                read_only(path)
            }
        }
    };
    on_read_only.then(|| shown_path(&target.shown))
}

/// Whether the flags in argument `at` (if the call has one) include `flag`.
fn flag_set(call: &Call, at: Option<usize>, flag: i32) -> bool {
    at.is_some_and(|at| call.args[at] as i32 & flag != 0)
}

/// The name a watched call writes to, as the init reaches it.
struct Target {
    /// The name through `/proc/<pid>/` (the caller's working directory or descriptor) when
    /// relative, else as given: what the init looks at.
    path: PathBuf,
    /// What `path` is relative to.
    base: PathBuf,
    /// The name as the program sees it, absolute when the init can tell.
    shown: PathBuf,
}

impl Target {
    /// Reads the operand's path from the caller's memory and resolves it; `None` when it
    /// cannot be read or names nothing the call could write.
    fn of(call: &Call, operand: &Operand) -> Option<Self> {
        let proc = PathBuf::from(format!("/proc/{}", call.pid));
        let dirfd = operand.dirfd.map(|at| call.args[at] as i32);
        let descriptor = |fd: i32| proc.join("fd").join(fd.to_string());
        let address = match operand.path.map(|at| call.args[at]) {
            // utimensat with a null path, and fchmod and the like: the descriptor itself.
            None | Some(0) => return Some(Self::named(descriptor(dirfd?), None)),
            Some(address) => address,
        };
        let (name, cut) = warden_sys::seccomp::read_process_string(call.pid, address, 4096).ok()?;
        if cut {
            return None;
        }
        let base = match dirfd {
            Some(fd) if fd != libc::AT_FDCWD => descriptor(fd),
            _ if name.is_empty() => return None,
            _ => proc.join("cwd"),
        };
        if name.is_empty() {
            // `AT_EMPTY_PATH`: the descriptor itself; without it the call fails (ENOENT).
            let empty_path = match operand.effect {
                Effect::Change { nofollow_flag, .. } => {
                    flag_set(call, nofollow_flag, libc::AT_EMPTY_PATH)
                }
                _ => false,
            };
            return empty_path.then(|| Self::named(base, None));
        }
        Some(Self::named(base, Some(&name)))
    }

    fn named(base: PathBuf, name: Option<&[u8]>) -> Self {
        let shown_base = || std::fs::read_link(&base).unwrap_or_else(|_| PathBuf::from("?"));
        let (path, shown) = match name.map(OsStr::from_bytes) {
            Some(name) if name.as_bytes().first() == Some(&b'/') => {
                (PathBuf::from(name), PathBuf::from(name))
            }
            Some(name) => (base.join(name), shown_base().join(name)),
            None => (base.clone(), shown_base()),
        };
        Self { path, base, shown }
    }

    /// The directory holding the name.
    fn parent(&self) -> PathBuf {
        self.path
            .parent()
            .map_or_else(|| self.base.clone(), Path::to_path_buf)
    }
}

/// An `open`'s flags, `None` if they cannot be read.
fn open_flags(call: &Call, flags: Flags) -> Option<i32> {
    match flags {
        Flags::Arg(at) => Some(call.args[at] as i32),
        Flags::Creat => Some(libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC),
        Flags::OpenHow(at) => {
            // `struct open_how` starts with the u64 flags.
            let mut how = [0u8; 8];
            warden_sys::seccomp::read_process_memory(call.pid, call.args[at], &mut how).ok()?;
            Some(u64::from_ne_bytes(how) as i32)
        }
    }
}

/// Whether an `open` with `flags` fails with `EROFS`: `None` when it does not write or fails
/// otherwise first. As the kernel decides (`may_open`, `sb_permission`): an existing device,
/// FIFO or socket opens for writing on a read-only mount (`> /dev/null`); an existing file
/// with `O_CREAT` but read access only opens; a missing one is created in its parent.
fn opens_read_only(path: &Path, flags: i32, parent: impl Fn() -> PathBuf) -> Option<bool> {
    if flags as u32 & WRITE_FLAGS == 0 {
        return None;
    }
    let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
    match stat(path) {
        Ok(_) if flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0 => None,
        Ok(st) => {
            let file = matches!(kind(&st), SFlag::S_IFREG | SFlag::S_IFDIR | SFlag::S_IFLNK);
            Some(writes && file && read_only(path))
        }
        Err(Errno::ENOENT) if flags & libc::O_CREAT != 0 => Some(read_only(&parent())),
        Err(_) => None,
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Whether `path` (followed) lies on a read-only mount.
fn read_only(path: &Path) -> bool {
    statvfs(path).is_ok_and(|fs| fs.flags().contains(FsFlags::ST_RDONLY))
}

/// `path` as an attempt keeps it: at most [`MAX_SHOWN`] bytes, control characters as `?`.
fn shown_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut shown = String::new();
    for c in text.chars() {
        if shown.len() + c.len_utf8() > MAX_SHOWN {
            break;
        }
        shown.push(if c.is_control() { '?' } else { c });
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_surfaces_of_an_escape_are_medium_and_the_rest_low() {
        assert_eq!(severity_of("/etc/passwd"), DenySeverity::Medium);
        assert_eq!(severity_of("/proc/sys/kernel/x"), DenySeverity::Medium);
        assert_eq!(severity_of("/dev"), DenySeverity::Medium);
        assert_eq!(severity_of("/etcetera"), DenySeverity::Low);
        assert_eq!(severity_of("/usr/lib/x"), DenySeverity::Low);
    }

    #[test]
    fn attempts_keep_the_first_three_and_the_worst_severity() {
        let mut writes = ReadOnlyWrites::default();
        for path in ["/usr/a", "/usr/b", "/usr/c", "/etc/d"] {
            writes.record("openat", path.into());
        }
        assert_eq!(writes.count, 4);
        assert_eq!(writes.severity, DenySeverity::Medium);
        let paths: Vec<&str> = writes.attempts.iter().map(|a| a.path.as_str()).collect();
        assert_eq!(paths, ["/usr/a", "/usr/b", "/usr/c"]);
    }

    #[test]
    fn shown_paths_are_cut_and_lose_control_characters() {
        assert_eq!(shown_path(Path::new("/usr/a\nb")), "/usr/a?b");
        let long = format!("/{}", "é".repeat(300));
        let shown = shown_path(Path::new(&long));
        assert!(
            shown.len() <= MAX_SHOWN && shown.len() > MAX_SHOWN - 2,
            "{}",
            shown.len()
        );
    }

    #[test]
    fn every_watched_call_is_known_once() {
        let mut numbers: Vec<libc::c_long> = WATCHED.iter().map(|(_, nr, _)| *nr).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), WATCHED.len());
        assert!(watches(i32::try_from(libc::SYS_openat).expect("small")));
        assert!(!watches(i32::try_from(libc::SYS_read).expect("small")));
    }
}
