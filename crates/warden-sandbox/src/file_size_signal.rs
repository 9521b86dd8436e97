//! `SIGXFSZ` is the kernel's alone in a sandbox, so that a death by it is the file size limit.
//! The kernel sends it to a process whose write, `truncate`, `fallocate` or `pwrite` would take
//! a file past `RLIMIT_FSIZE` (the job's `max_file_size`), and refuses that call with `EFBIG`;
//! nothing else in the kernel sends it. A program could send it itself, though, and be taken
//! for a limit hit: so the payload's seccomp filter (`seccomp.rs`, after the policy's rules, in
//! the kernel, nothing notified) fails with `EPERM` every call that would send `SIGXFSZ` or
//! have it sent later:
//!
//! - `kill`, `tkill`, `tgkill`, `rt_sigqueueinfo`, `rt_tgsigqueueinfo` and
//!   `pidfd_send_signal` with `SIGXFSZ` as their signal (`raise`, `kill -XFSZ`, `sigqueue`);
//! - `fcntl(fd, F_SETSIG, SIGXFSZ)`, the signal of a descriptor's I/O readiness, lease break
//!   or directory notice;
//! - `clone` with `SIGXFSZ` as the child's exit signal (its low byte, `CSIGNAL`), which the
//!   parent would receive when the child ends.
//!
//! Left open, and so the verdict's limits (docs/result-schema.md, `file_size_limit`): a POSIX
//! timer's or message queue's signal (`timer_create`, `mq_notify`), whose `struct sigevent`
//! lies in the program's memory, out of a filter's reach; and `clone3`'s exit signal, which
//! lies there too (the built-in policy fails `clone3` with `ENOSYS`). `prctl(PR_SET_PDEATHSIG)`
//! needs no rule: it signals a process when its parent ends, and the program's parent, the
//! sandbox's init, outlives the job. Signals from outside the sandbox do not matter either: the
//! init passes on only the few of `child::FORWARDED`, and warden sends no other.
//!
//! Cost: these calls now run the filter's program rather than skip it through the kernel's
//! seccomp cache, a few dozen instructions each.
//!
//! Man pages: signal(7), setrlimit(2) (`RLIMIT_FSIZE`), fcntl(2) (`F_SETSIG`), clone(2).

use warden_sys::seccomp::{
    seccomp_data_arg_low, SockFilter, BPF_ALU, BPF_AND, BPF_JEQ, BPF_K, SECCOMP_DATA_NR,
    SECCOMP_RET_DATA, SECCOMP_RET_ERRNO,
};

use crate::seccomp::{jump, load, ret};

/// `SIGXFSZ`'s number.
const SIGXFSZ: u32 = libc::SIGXFSZ.unsigned_abs();
/// `F_SETSIG` (`<asm-generic/fcntl.h>`, the same on x86_64 and aarch64; the libc crate lacks
/// it there).
const F_SETSIG: u32 = 10;
/// `CSIGNAL`: the bits of clone's flags that hold the child's exit signal.
const CSIGNAL: u32 = libc::CSIGNAL.unsigned_abs();

/// The calls that take a signal number, with the index of the argument that holds it.
const SENDERS: [(libc::c_long, u32); 6] = [
    (libc::SYS_kill, 1),
    (libc::SYS_tkill, 1),
    (libc::SYS_tgkill, 2),
    (libc::SYS_rt_sigqueueinfo, 1),
    (libc::SYS_rt_tgsigqueueinfo, 2),
    (libc::SYS_pidfd_send_signal, 1),
];

/// The filter's bodies (call number, code) that refuse to send `SIGXFSZ`: each expects the
/// call number in the accumulator and leaves it there when it does not return.
pub(crate) fn filter_bodies() -> Vec<(u32, Vec<SockFilter>)> {
    let refuse = ret(SECCOMP_RET_ERRNO | (libc::EPERM.unsigned_abs() & SECCOMP_RET_DATA));
    let mut bodies: Vec<(u32, Vec<SockFilter>)> = SENDERS
        .iter()
        .map(|&(nr, signal_at)| {
            let body = vec![
                load(seccomp_data_arg_low(signal_at)),
                jump(BPF_JEQ, SIGXFSZ, 0, 1),
                refuse,
                load(SECCOMP_DATA_NR),
            ];
            (number(nr), body)
        })
        .collect();
    bodies.push((
        number(libc::SYS_fcntl),
        vec![
            load(seccomp_data_arg_low(1)),
            jump(BPF_JEQ, F_SETSIG, 0, 3),
            load(seccomp_data_arg_low(2)),
            jump(BPF_JEQ, SIGXFSZ, 0, 1),
            refuse,
            load(SECCOMP_DATA_NR),
        ],
    ));
    bodies.push((
        number(libc::SYS_clone),
        vec![
            load(seccomp_data_arg_low(0)),
            SockFilter::stmt(BPF_ALU | BPF_AND | BPF_K, CSIGNAL),
            jump(BPF_JEQ, SIGXFSZ, 0, 1),
            refuse,
            load(SECCOMP_DATA_NR),
        ],
    ));
    bodies
}

fn number(nr: libc::c_long) -> u32 {
    u32::try_from(nr).expect("system call numbers are small and positive")
}
