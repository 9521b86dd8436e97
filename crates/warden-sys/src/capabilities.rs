//! Dropping every capability for good: bounding set, ambient set, securebits and the
//! effective/permitted/inheritable sets.
//!
//! Inside a user namespace the sandbox runs as uid 0 of that namespace. Without securebits and an
//! empty bounding set, an execve as uid 0 would grant the full capability set again
//! (capabilities(7), "Capabilities and execution of programs by root").

use nix::errno::Errno;

const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;
const SECBIT_NO_CAP_AMBIENT_RAISE: libc::c_ulong = 1 << 6;
const SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED: libc::c_ulong = 1 << 7;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> Result<libc::c_int, Errno> {
    // SAFETY: the prctl options used here (PR_CAPBSET_*, PR_CAP_AMBIENT, PR_SET_SECUREBITS,
    // PR_GET_SECUREBITS) take integer arguments only.
    let ret = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

/// Empties the capability bounding set, which limits what any later execve of this process
/// or its descendants can grant. The set only ever shrinks and children inherit it, so a
/// parent that forks many sandboxed processes calls this once, and each child's
/// [`drop_all`] finds it empty. The caller keeps its own capabilities. Needs CAP_SETPCAP.
pub fn drop_bounding_set() -> Result<(), Errno> {
    for cap in 0..=last_capability() {
        match prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(_) | Err(Errno::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes every capability from the effective, permitted, inheritable and ambient sets, and
/// locks securebits so that no later execve (even as uid 0) can give any back. The bounding
/// set must already be empty ([`drop_bounding_set`], in this process or an ancestor). Needs
/// CAP_SETPCAP in the current user namespace, which the sandbox init has.
pub fn drop_all() -> Result<(), Errno> {
    let bits = SECBIT_NOROOT
        | SECBIT_NOROOT_LOCKED
        | SECBIT_NO_SETUID_FIXUP
        | SECBIT_NO_SETUID_FIXUP_LOCKED
        | SECBIT_KEEP_CAPS_LOCKED
        | SECBIT_NO_CAP_AMBIENT_RAISE
        | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
    prctl(libc::PR_SET_SECUREBITS, bits)?;
    match prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
    ) {
        Ok(_) | Err(Errno::EINVAL) => {}
        Err(e) => return Err(e),
    }
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: header and data point to live, correctly laid out structs for the duration of the
    // call (version 3 takes an array of two CapData); the kernel only reads them.
    let ret =
        unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`).
fn last_capability() -> libc::c_ulong {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}
