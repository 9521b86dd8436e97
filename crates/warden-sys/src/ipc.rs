//! System V IPC objects (message queues, semaphore sets, shared memory segments) of one user
//! in the caller's IPC namespace: found in `/proc/sysvipc/*` and removed. A trusted run has an
//! IPC namespace of its own now; what a uid made in the host's (a build before that one) would
//! outlive it unless removed, and the next trusted run given the same uid could read it (and
//! shared memory stays charged to no one).

use std::io;

/// One kind of object, as `/proc/sysvipc` lists it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Queue,
    Semaphores,
    Memory,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Queue, Kind::Semaphores, Kind::Memory];

    /// Its file, and the columns of the id and of the owner's uid there.
    fn listing(self) -> (&'static str, usize, usize) {
        match self {
            // key msqid perms cbytes qnum lspid lrpid uid ...
            Kind::Queue => ("/proc/sysvipc/msg", 1, 7),
            // key semid perms nsems uid ...
            Kind::Semaphores => ("/proc/sysvipc/sem", 1, 4),
            // key shmid perms size cpid lpid nattch uid ...
            Kind::Memory => ("/proc/sysvipc/shm", 1, 7),
        }
    }

    /// Removes the object `id`.
    fn remove(self, id: i32) -> io::Result<()> {
        // SAFETY: IPC_RMID takes no buffer (a null pointer is what the man pages give); the
        // calls only act on the id, and fail harmlessly (EINVAL, EIDRM, EPERM) when it is gone
        // or not ours to remove.
        let result = unsafe {
            match self {
                Kind::Queue => libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()),
                Kind::Semaphores => libc::semctl(id, 0, libc::IPC_RMID),
                Kind::Memory => libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()),
            }
        };
        if result == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// The ids of `listing` (a `/proc/sysvipc` file's text) whose owner is `uid`.
fn owned_ids(listing: &str, id_column: usize, uid_column: usize, uid: u32) -> Vec<i32> {
    listing
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owner: u32 = fields.get(uid_column)?.parse().ok()?;
            let id: i32 = fields.get(id_column)?.parse().ok()?;
            (owner == uid).then_some(id)
        })
        .collect()
}

/// Removes every System V IPC object of `uid` in this IPC namespace; how many. An object gone
/// meanwhile is no error.
pub fn remove_owned(uid: u32) -> io::Result<usize> {
    let mut removed = 0;
    for kind in Kind::ALL {
        let (path, id_column, uid_column) = kind.listing();
        let listing = match std::fs::read_to_string(path) {
            Ok(listing) => listing,
            // A kernel without System V IPC.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for id in owned_ids(&listing, id_column, uid_column, uid) {
            match kind.remove(id) {
                Ok(()) => removed += 1,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EIDRM)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owners_ids_are_read_from_the_listing() {
        let shm = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                   0          32769   600                    16  1234     0      0  1500000001     0  1500000001  0  0 0 0 4096 0\n\
                   51966          7   644                  4096  1     0      1     0     0     0     0 0 0 0 4096 0\n";
        assert_eq!(owned_ids(shm, 1, 7, 1_500_000_001), [32769]);
        assert_eq!(owned_ids(shm, 1, 7, 0), [7]);
        let sem = "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n\
                   0              3   600          1  1500000001 0 1500000001 0 0 0\n";
        assert_eq!(owned_ids(sem, 1, 4, 1_500_000_001), [3]);
        assert!(owned_ids("", 1, 4, 0).is_empty());
    }
}
