//! The kernel's keyrings of the calling user (keyrings(7)): its user keyring, its user-session
//! keyring and its persistent keyring outlive its processes, so a trusted run's keys would
//! reach the next trusted run given the same uid. The caller empties them as that user.

use std::io;

const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
const KEYCTL_CLEAR: libc::c_long = 7;
const KEYCTL_GET_PERSISTENT: libc::c_long = 22;
const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
const KEY_SPEC_USER_SESSION_KEYRING: libc::c_long = -5;
const KEY_SPEC_PROCESS_KEYRING: libc::c_long = -2;

fn keyctl(op: libc::c_long, a: libc::c_long, b: libc::c_long) -> io::Result<libc::c_long> {
    // SAFETY: the operations called here take integers only (keyring ids and a uid), no
    // pointers; the kernel checks them.
    let ret = unsafe { libc::syscall(libc::SYS_keyctl, op, a, b) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Unlinks every key from the calling user's user, user-session and persistent keyrings; a
/// key no keyring holds any more is then destroyed by the kernel. A persistent keyring the
/// kernel does not have (no `CONFIG_PERSISTENT_KEYRINGS`) is nothing to empty.
pub fn forget_own_keys() -> io::Result<()> {
    keyctl(KEYCTL_CLEAR, KEY_SPEC_USER_KEYRING, 0)?;
    keyctl(KEYCTL_CLEAR, KEY_SPEC_USER_SESSION_KEYRING, 0)?;
    // -1: the caller's own uid; linked into the (new) process keyring only to be reached.
    match keyctl(KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS_KEYRING) {
        Ok(persistent) => keyctl(KEYCTL_CLEAR, persistent, 0).map(drop),
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether an error of [`forget_own_keys`] is the keyrings' own refusal, which only that uid's
/// keyrings give: one of them can no longer be found (`ENOKEY`: its permissions, which only
/// its owner could have changed, let no one view it), written (`EACCES`), or used at all
/// (`EKEYREVOKED`, `EKEYEXPIRED`: revoked, or past a timeout, until the kernel's garbage
/// collector removes it). No one, root included, can empty such a keyring.
pub fn refused_by_the_keyrings(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOKEY | libc::EACCES | libc::EKEYREVOKED | libc::EKEYEXPIRED)
    )
}

/// Joins a new anonymous session keyring, owned by the caller's (new) uid, in place of the one
/// the process inherited: a session keyring survives a change of ids, fork and exec, so a
/// process started by a warden that has one of its own (a systemd service's, a login's) would
/// hold warden's, with every key in it, as every other run started so would.
pub fn join_new_session_keyring() -> io::Result<()> {
    // 0: no name, a new anonymous keyring.
    keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0, 0).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hunt esc F2: what a locked keyring answers (a keyring whose permissions let no one view
    /// it, or write it; revoked; expired) is told from the other errors, which any uid's
    /// keyrings would give alike (no keyrings in this kernel, no memory).
    #[test]
    fn a_locked_keyrings_errors_are_told_from_the_others() {
        for locked in [
            libc::ENOKEY,
            libc::EACCES,
            libc::EKEYREVOKED,
            libc::EKEYEXPIRED,
        ] {
            assert!(refused_by_the_keyrings(&io::Error::from_raw_os_error(
                locked
            )));
        }
        for other in [libc::ENOSYS, libc::EOPNOTSUPP, libc::ENOMEM, libc::EDQUOT] {
            assert!(!refused_by_the_keyrings(&io::Error::from_raw_os_error(
                other
            )));
        }
    }
}
