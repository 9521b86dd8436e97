//! Whether a job's write was cut at its file size limit, for a program that ended by itself
//! (docs/result-schema.md, `file_size_limit`). Runs in the sandbox's init (`child.rs`), after
//! the job's processes are gone.
//!
//! The kernel refuses a write past `RLIMIT_FSIZE` (the job's `max_file_size`) with `SIGXFSZ`,
//! which `verdict.rs` reads as the limit. CPython, Node, the Go runtime and the JVM ignore that
//! signal: their write fails with `EFBIG`, and the program ends with its own error. What stays
//! is the file: a write that crosses the limit is cut exactly there (a short write), so the
//! file holds `max_file_size` bytes. Without the process' own accounting of `EFBIG` (the
//! seccomp listener would have to see every write), such a file, changed while the job ran,
//! is the sign.
//!
//! Looked for only after a failure (a non-zero exit, a death by a signal that is no limit's):
//! a job that exits 0, or already has a verdict, costs nothing. The look is bounded
//! ([`MAX_ENTRIES`], [`MAX_DEPTH`]), follows no symbolic link, and stays on each root's file
//! system (a read-only bind inside `/work` is not the job's to write). Its limits: a write at
//! an offset past the limit (`pwrite`, `truncate`) extends nothing, so leaves no file; a file
//! removed before the end (gcc's temporary objects) is not seen, nor one the program wrote
//! over a file of the job's own of that very size, nor one written within the kernel's
//! timestamp tick after the previous job of the sandbox ended (a session's calls back to back);
//! a program that writes exactly `max_file_size` bytes and then fails is taken for one whose
//! write was cut, against itself.

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::report::ExitStatus;

/// Entries looked at, across all roots, at most: a few milliseconds on a tmpfs.
const MAX_ENTRIES: usize = 4096;
/// Directories below a root descended into, at most.
const MAX_DEPTH: usize = 16;

/// A moment as the kernel stamps a file's inode change time (`st_ctime`), seconds and
/// nanoseconds since the epoch.
pub(crate) type Stamp = (i64, i64);

/// The realtime clock's coarse reading: never later than a stamp the kernel gives a file
/// changed after it (its stamps are the coarse clock's, or finer and later). A write's stamp
/// is taken as it begins: Go's one `write` of 20 MiB is stamped a millisecond into the
/// program, within the tick of its start (4 ms at `HZ=250`), so a reading of the fine clock
/// at the start would be later than it. The price: what was changed within the same tick
/// before the start is stamped no earlier; see [`Search::since`].
pub(crate) fn coarse_now() -> Stamp {
    clock(nix::time::ClockId::CLOCK_REALTIME_COARSE)
}

/// The realtime clock's fine reading: later than every stamp the kernel gave before.
pub(crate) fn fine_now() -> Stamp {
    clock(nix::time::ClockId::CLOCK_REALTIME)
}

fn clock(id: nix::time::ClockId) -> Stamp {
    nix::time::clock_gettime(id).map_or((0, 0), |t| (t.tv_sec(), t.tv_nsec()))
}

/// Whether a job that ended with `status` is worth the look: it failed by itself. Not a death
/// by `SIGKILL` (the init's end of a job for a limit or a cancel, the OOM killer's, the cpu
/// backstop's), `SIGXCPU` or `SIGXFSZ`, whose verdicts are decided without it.
pub(crate) fn worth_a_look(status: ExitStatus) -> bool {
    match status {
        ExitStatus::Code(code) => code != 0,
        ExitStatus::Signal(n) => ![libc::SIGKILL, libc::SIGXCPU, libc::SIGXFSZ].contains(&n),
    }
}

/// What to look for, and where.
pub(crate) struct Search<'a> {
    /// The writable places of the job: each looked through on its own file system.
    pub(crate) roots: &'a [PathBuf],
    /// The job's `max_file_size`, in bytes: the size of a file cut at the limit.
    pub(crate) size: u64,
    /// When the job's program started ([`coarse_now`]), or the previous job of the sandbox
    /// ended ([`fine_now`]), whichever is later: a file not changed since is not the
    /// program's (an earlier job's, a volume's).
    pub(crate) since: Stamp,
    /// The job's own files of that very size, which the init wrote before the start, maybe
    /// within its tick.
    pub(crate) written: &'a [PathBuf],
}

impl Search<'_> {
    /// Whether a regular file of exactly `size` bytes, changed since `since`, is found.
    pub(crate) fn finds(&self) -> bool {
        // Under a limit of 0 no write leaves a file cut at it: an empty file is any program's
        // (regression hunt: `touch /tmp/x; exit 3` was this verdict).
        if self.size == 0 {
            return false;
        }
        let mut budget = MAX_ENTRIES;
        self.roots
            .iter()
            .any(|root| self.finds_under(root, &mut budget))
    }

    /// Breadth first under `root`, within `budget` entries (shared by the roots).
    fn finds_under(&self, root: &Path, budget: &mut usize) -> bool {
        let Ok(top) = std::fs::symlink_metadata(root) else {
            return false;
        };
        if !top.is_dir() {
            return false;
        }
        let device = top.dev();
        let mut queue = VecDeque::from([(root.to_path_buf(), 0usize)]);
        while let Some((dir, depth)) = queue.pop_front() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if *budget == 0 {
                    return false;
                }
                *budget -= 1;
                // `file_type` and `metadata` of an entry never follow a link (`lstat`).
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_dir() && depth < MAX_DEPTH {
                    if entry.metadata().is_ok_and(|m| m.dev() == device) {
                        queue.push_back((entry.path(), depth + 1));
                    }
                } else if kind.is_file() && self.is_cut(&entry) {
                    return true;
                }
            }
        }
        false
    }

    fn is_cut(&self, entry: &std::fs::DirEntry) -> bool {
        // The inode's change time, which a program cannot set back as it can its mtime.
        entry.metadata().is_ok_and(|m| {
            m.len() == self.size
                && (m.ctime(), m.ctime_nsec()) >= self.since
                && !self.written.contains(&entry.path())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(roots: &[PathBuf], since: Stamp) -> Search<'_> {
        Search {
            roots,
            size: 1000,
            since,
            written: &[],
        }
    }

    /// The stamp the kernel gave `path`'s last change.
    fn changed(path: &Path) -> Stamp {
        let m = std::fs::symlink_metadata(path).expect("stat");
        (m.ctime(), m.ctime_nsec())
    }

    #[test]
    fn a_file_of_the_limits_size_changed_since_the_start_is_found() {
        let dir = tempfile::tempdir().expect("tempdir");
        let roots = [dir.path().join("work"), dir.path().join("tmp")];
        for root in &roots {
            std::fs::create_dir(root).expect("root");
        }
        std::fs::write(roots[0].join("small"), [0u8; 999]).expect("small");
        std::fs::write(roots[0].join("large"), [0u8; 1001]).expect("larger: not a cut write");
        let since = changed(&roots[0].join("large"));
        assert!(!search(&roots, since).finds());
        let deep = roots[1].join("a/b");
        std::fs::create_dir_all(&deep).expect("dirs");
        std::fs::write(deep.join("f"), [0u8; 1000]).expect("cut");
        let cut = changed(&deep.join("f"));
        assert!(search(&roots, cut).finds());
        // Changed before the start: the job's own, an earlier job's, a volume's.
        assert!(!search(&roots, (cut.0, cut.1 + 1)).finds());
        let given = [deep.join("f")];
        let own = Search {
            written: &given,
            ..search(&roots, cut)
        };
        assert!(!own.finds(), "the job's own file");
        std::fs::write(deep.join("empty"), []).expect("empty");
        let zero = Search {
            size: 0,
            ..search(&roots, changed(&deep.join("empty")))
        };
        assert!(!zero.finds(), "an empty file under a limit of 0");
    }

    #[test]
    fn links_are_not_followed_and_the_look_is_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("work");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&root).expect("root");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(outside.join("f"), [0u8; 1000]).expect("outside");
        let since = changed(&outside.join("f"));
        std::os::unix::fs::symlink(&outside, root.join("dir")).expect("dir link");
        std::os::unix::fs::symlink(outside.join("f"), root.join("file")).expect("file link");
        let roots = [root.clone()];
        assert!(!search(&roots, since).finds());
        // Past the depth bound.
        let mut deep = root.clone();
        for _ in 0..=MAX_DEPTH {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).expect("deep");
        std::fs::write(deep.join("f"), [0u8; 1000]).expect("deep file");
        assert!(!search(&roots, since).finds());
        std::fs::write(root.join("d/f"), [0u8; 1000]).expect("shallow file");
        assert!(search(&roots, since).finds());
    }

    #[test]
    fn only_a_failure_is_worth_a_look() {
        assert!(!worth_a_look(ExitStatus::Code(0)));
        assert!(worth_a_look(ExitStatus::Code(1)));
        assert!(worth_a_look(ExitStatus::Signal(libc::SIGABRT)));
        for limit in [libc::SIGKILL, libc::SIGXCPU, libc::SIGXFSZ] {
            assert!(!worth_a_look(ExitStatus::Signal(limit)));
        }
    }
}
