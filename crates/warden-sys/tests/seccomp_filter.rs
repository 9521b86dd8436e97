//! Privileged: installs hand-built seccomp filters in forked children and checks the kernel
//! enforces them. The full policy is tested end to end by the in-sandbox probe.
//!
//! The child runs only raw system calls between `fork` and `_exit` (no allocation, no panics):
//! the test harness is multi-threaded, and another thread may hold the allocator's lock.

// Forking and raw system calls are what this test exercises; the crate allows unsafe too.
#![allow(unsafe_code)]

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use warden_sys::seccomp::{
    install_filter, SockFilter, AUDIT_ARCH_NATIVE, BPF_ABS, BPF_JA, BPF_JEQ, BPF_JGE, BPF_JMP,
    BPF_K, BPF_LD, BPF_RET, BPF_W, SECCOMP_DATA_ARCH, SECCOMP_DATA_NR, SECCOMP_RET_ALLOW,
    SECCOMP_RET_DATA, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS,
};

/// A filter that kills foreign-arch calls (a wrong `AUDIT_ARCH_NATIVE` would kill every child),
/// fails `mount` with EPERM, kills on `getppid`, and allows the rest.
fn test_program() -> [SockFilter; 9] {
    let nr = |sys: libc::c_long| u32::try_from(sys).expect("syscall numbers are small");
    [
        SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH),
        SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_NATIVE, 1, 0),
        SockFilter::stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR),
        SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, nr(libc::SYS_mount), 0, 1),
        SockFilter::stmt(
            BPF_RET | BPF_K,
            SECCOMP_RET_ERRNO | (libc::EPERM as u32 & SECCOMP_RET_DATA),
        ),
        SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, nr(libc::SYS_getppid), 0, 1),
        SockFilter::stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        SockFilter::stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    ]
}

/// Forks; the child sets no_new_privs, installs `program`, runs `body` and exits with its
/// result (100 and 101 mean setup failed). Returns how the child ended.
fn run_filtered(program: &[SockFilter], body: fn() -> i32) -> WaitStatus {
    // SAFETY: the child only makes raw system calls (prctl, seccomp, the body's calls) and leaves
    // with `_exit`; it touches no lock, allocator or other state another thread may hold.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = if prctl::set_no_new_privs().is_err() {
                100
            } else if install_filter(program).is_err() {
                101
            } else {
                body()
            };
            // SAFETY: `_exit` ends the child without running the parent's atexit handlers or
            // flushing stdio buffers it shares with the parent.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// Mounts a tmpfs on a path that does not exist: without the filter root gets ENOENT and an
/// unprivileged user EPERM. Returns the errno.
fn try_mount() -> i32 {
    // SAFETY: all pointers are NUL-terminated static strings; data may be null.
    let ret = unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/nonexistent/warden-seccomp-test".as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret == 0 {
        0
    } else {
        Errno::last_raw()
    }
}

#[test]
fn mount_fails_with_eperm_and_getpid_still_works() {
    fn body() -> i32 {
        if try_mount() != libc::EPERM {
            return 1;
        }
        // SAFETY: getpid has no arguments and cannot fail.
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        if pid <= 0 {
            return 2;
        }
        0
    }
    // Without the filter the same call must fail otherwise, or EPERM would prove nothing.
    let unfiltered = try_mount();
    if unfiltered == libc::EPERM {
        eprintln!(
            "skipped the control: mount is refused with EPERM even without a filter (not root?)"
        );
    } else {
        assert_eq!(
            unfiltered,
            libc::ENOENT,
            "the unfiltered mount must fail on its missing target"
        );
    }
    let status = run_filtered(&test_program(), body);
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "child failed: {status:?}"
    );
}

#[test]
fn a_kill_action_kills_the_process_with_sigsys() {
    fn body() -> i32 {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
        3
    }
    let status = run_filtered(&test_program(), body);
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "expected death by SIGSYS, got {status:?}"
    );
}

#[test]
fn a_filter_the_kernel_rejects_is_an_error() {
    fn body() -> i32 {
        0
    }
    // A program whose last instruction is not a return fails the kernel's checker: the child
    // reports the failed install with 101.
    let bad = [SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR)];
    assert!(matches!(
        run_filtered(&bad, body),
        WaitStatus::Exited(_, 101)
    ));
}

#[test]
fn jge_and_ja_dispatch_as_warden_compiles_them() {
    fn body() -> i32 {
        if try_mount() != libc::EPERM {
            return 1;
        }
        // SAFETY: getpid has no arguments and cannot fail.
        if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
            return 2;
        }
        0
    }
    // `test_program`'s decisions reached through a `jge` on the call number and a `ja` over
    // 300 padding instructions (longer than an 8-bit offset), as warden-sandbox's search
    // compiles long policies: the kernel must accept both and take them as the tests'
    // interpreter does.
    let nr = |sys: libc::c_long| u32::try_from(sys).expect("syscall numbers are small");
    let mut program = test_program()[..4].to_vec();
    // The lower of the two numbers the tail decides (their order differs between
    // architectures): every call below it is allowed past the padding.
    let split = nr(libc::SYS_mount).min(nr(libc::SYS_getppid));
    program.push(SockFilter::jump(BPF_JMP | BPF_JGE | BPF_K, split, 0, 1));
    program.push(SockFilter::stmt(BPF_JMP | BPF_JA, 301));
    // Below the split: padding, then allow.
    program.extend((0..300).map(|_| SockFilter::jump(BPF_JMP | BPF_JEQ | BPF_K, u32::MAX, 0, 0)));
    program.push(SockFilter::stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    // From the split up: `test_program`'s last five instructions.
    program.extend_from_slice(&test_program()[4..]);
    let status = run_filtered(&program, body);
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "expected exit 0, got {status:?}"
    );
    fn parent() -> i32 {
        // SAFETY: getppid has no arguments and cannot fail.
        unsafe { libc::syscall(libc::SYS_getppid) };
        3
    }
    // getppid reaches its kill through the `ja` too.
    let status = run_filtered(&program, parent);
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "expected death by SIGSYS, got {status:?}"
    );
}
