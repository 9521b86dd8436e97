//! seccomp-bpf: the classic-BPF instruction type, the constants a seccomp program is built from,
//! installing a program, and answering a filter's user notifications. The payload process
//! installs its filter right before `execve` and hands the listener to the sandbox's init,
//! which answers each notified call with an error; building the program is pure and lives in
//! `warden-sandbox` (`seccomp.rs`).
//!
//! See seccomp(2), seccomp_unotify(2),
//! <https://docs.kernel.org/userspace-api/seccomp_filter.html> and `linux/filter.h` /
//! `linux/bpf_common.h` for the instruction encoding.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("warden's seccomp layer supports x86_64 and aarch64 only");

use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// The opcode: class | size | mode, or class | op | source (`BPF_JMP | BPF_JEQ | BPF_K`).
    pub code: u16,
    /// Jump offset (in instructions, from the next one) when a conditional jump's test is true.
    pub jt: u8,
    /// Jump offset when the test is false.
    pub jf: u8,
    /// The constant operand: a load offset, a comparison value or a return value.
    pub k: u32,
}

const _: () = assert!(size_of::<SockFilter>() == size_of::<libc::sock_filter>());
const _: () = assert!(size_of::<SockFilter>() == 8);

impl SockFilter {
    /// A non-jump instruction (`BPF_STMT` in C).
    pub const fn stmt(code: u16, k: u32) -> Self {
        Self {
            code,
            jt: 0,
            jf: 0,
            k,
        }
    }

    /// A jump instruction (`BPF_JUMP` in C).
    pub const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Self {
        Self { code, jt, jf, k }
    }
}

/// Instruction class: load into the accumulator.
pub const BPF_LD: u16 = libc::BPF_LD as u16;
/// Instruction class: jump.
pub const BPF_JMP: u16 = libc::BPF_JMP as u16;
/// Instruction class: return.
pub const BPF_RET: u16 = libc::BPF_RET as u16;
/// Instruction class: arithmetic on the accumulator.
pub const BPF_ALU: u16 = libc::BPF_ALU as u16;
/// Arithmetic: the accumulator and-ed with the operand.
pub const BPF_AND: u16 = libc::BPF_AND as u16;
/// Load size: a 32-bit word (the only size seccomp accepts).
pub const BPF_W: u16 = libc::BPF_W as u16;
/// Load mode: at a fixed offset into `struct seccomp_data`.
pub const BPF_ABS: u16 = libc::BPF_ABS as u16;
/// Operand source: the constant `k`.
pub const BPF_K: u16 = libc::BPF_K as u16;
/// Jump if the accumulator equals `k`.
pub const BPF_JEQ: u16 = libc::BPF_JEQ as u16;
/// Jump if the accumulator and `k` have a bit in common.
pub const BPF_JSET: u16 = libc::BPF_JSET as u16;
/// Jump if the accumulator is at least `k` (unsigned).
pub const BPF_JGE: u16 = libc::BPF_JGE as u16;
/// Jump always, `k` instructions ahead (a 32-bit offset, where `jt` and `jf` have 8 bits).
pub const BPF_JA: u16 = libc::BPF_JA as u16;
/// The longest program the kernel accepts, in instructions.
pub const BPF_MAXINSNS: usize = 4096;

/// Kill the whole process with SIGSYS (Linux 4.14).
pub const SECCOMP_RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
/// Fail the call with the errno in the low 16 bits (`SECCOMP_RET_ERRNO | errno`).
pub const SECCOMP_RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
/// Suspend the call and notify the filter's listener, which decides its result (Linux 5.0).
pub const SECCOMP_RET_USER_NOTIF: u32 = libc::SECCOMP_RET_USER_NOTIF;
/// Run the call.
pub const SECCOMP_RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
/// The mask of the data part of a return value (the errno of `SECCOMP_RET_ERRNO`).
pub const SECCOMP_RET_DATA: u32 = libc::SECCOMP_RET_DATA;

/// Offset of `nr` (the system call number) in `struct seccomp_data`.
pub const SECCOMP_DATA_NR: u32 = offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `arch` (an `AUDIT_ARCH_*` value) in `struct seccomp_data`.
pub const SECCOMP_DATA_ARCH: u32 = offset_of!(libc::seccomp_data, arch) as u32;
/// Offset of `args[0]` in `struct seccomp_data`; each argument is a 64-bit slot.
pub const SECCOMP_DATA_ARGS: u32 = offset_of!(libc::seccomp_data, args) as u32;

/// Offset of the low 32 bits of `args[index]`: BPF loads 32-bit words, and which half of the
/// 64-bit slot holds the low bits depends on the byte order.
pub const fn seccomp_data_arg_low(index: u32) -> u32 {
    let slot = SECCOMP_DATA_ARGS + 8 * index;
    if cfg!(target_endian = "little") {
        slot
    } else {
        slot + 4
    }
}

/// `AUDIT_ARCH_X86_64` (`linux/audit.h`): EM_X86_64 | 64-bit | little-endian.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_AARCH64` (`linux/audit.h`): EM_AARCH64 | 64-bit | little-endian.
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_NATIVE: u32 = AUDIT_ARCH_X86_64;
/// The `AUDIT_ARCH_*` value of the architecture this crate is built for.
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_NATIVE: u32 = AUDIT_ARCH_AARCH64;

/// `AUDIT_ARCH_I386` (`linux/audit.h`): the 32-bit ABI of an x86_64 kernel (`int 0x80`), which
/// a 64-bit process may call too, with its own call numbers.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_ARM` (`linux/audit.h`): the 32-bit ABI of an aarch64 kernel.
pub const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// The `AUDIT_ARCH_*` value of the 32-bit ABI of the architecture this crate is built for.
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH_COMPAT: u32 = AUDIT_ARCH_I386;
/// The `AUDIT_ARCH_*` value of the 32-bit ABI of the architecture this crate is built for.
#[cfg(target_arch = "aarch64")]
pub const AUDIT_ARCH_COMPAT: u32 = AUDIT_ARCH_ARM;

/// On x86_64, the bit that marks an x32-ABI call number. x32 calls report `AUDIT_ARCH_X86_64`,
/// so a filter must check this bit or x32 numbers would slip past its x86_64 comparisons.
#[cfg(target_arch = "x86_64")]
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `struct sock_fprog`: the program as the kernel reads it.
#[repr(C)]
struct SockFprog {
    len: u16,
    filter: *const SockFilter,
}

/// Installs `program` as a seccomp filter of the calling thread, inherited across `fork`,
/// `clone` and `execve`. Filters stack: one installed later cannot loosen an earlier one.
///
/// The caller must have set no_new_privs first (`nix::sys::prctl::set_no_new_privs`), otherwise
/// the kernel refuses with `EACCES` unless the caller has `CAP_SYS_ADMIN` in its user namespace.
/// Only the calling thread is filtered (no `SECCOMP_FILTER_FLAG_TSYNC`): call it from a
/// single-threaded process, such as the payload right before `execve`.
///
/// Raw `seccomp(SECCOMP_SET_MODE_FILTER, 0, &prog)` through `libc::syscall`: neither `nix` nor
/// `libc` wraps it. Errors: `EINVAL` for an empty program or one longer than
/// [`BPF_MAXINSNS`] (checked here), or one the kernel's checker rejects; `EACCES` as above;
/// `EFAULT`/`ENOMEM` from the kernel.
pub fn install_filter(program: &[SockFilter]) -> Result<(), Errno> {
    set_mode_filter(program, 0).map(drop)
}

/// Installs `program` as [`install_filter`] does, and returns the filter's listener: the
/// descriptor on which every call the program answers with [`SECCOMP_RET_USER_NOTIF`] waits
/// for an answer ([`receive_notification`], [`deny_notification`]). Every process that inherits
/// the filter notifies the same listener. The kernel opens it close-on-exec.
///
/// Until someone answers, a notified call blocks (killably); once every copy of the listener
/// is closed, pending and later notified calls fail with `ENOSYS`. Whoever holds the listener
/// decides the calls, so it must never reach the filtered program.
///
/// Errors as [`install_filter`], and `EBUSY` when a filter already installed on this thread has
/// a listener (a thread's filters may have one between them).
pub fn install_filter_with_listener(program: &[SockFilter]) -> Result<OwnedFd, Errno> {
    let fd = set_mode_filter(program, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER)?;
    let fd = i32::try_from(fd).map_err(|_| Errno::EBADF)?;
    // SAFETY: with SECCOMP_FILTER_FLAG_NEW_LISTENER a successful seccomp() returns a new
    // descriptor installed in this process for the caller alone; it gets exactly one owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`; returns the call's result.
fn set_mode_filter(program: &[SockFilter], flags: libc::c_ulong) -> Result<libc::c_long, Errno> {
    if program.is_empty() || program.len() > BPF_MAXINSNS {
        return Err(Errno::EINVAL);
    }
    let prog = SockFprog {
        len: u16::try_from(program.len()).map_err(|_| Errno::EINVAL)?,
        filter: program.as_ptr(),
    };
    // SAFETY: `prog` is a valid `struct sock_fprog` whose `filter` points to `len` initialized
    // `SockFilter`s (same layout as `struct sock_filter`, asserted above), all borrowed for the
    // duration of the call; the kernel copies the program and keeps no pointer to our memory.
    // The call only restricts the system calls this thread may make from now on.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
            flags,
            &prog as *const SockFprog,
        )
    };
    Errno::result(ret)
}

/// One suspended system call, as the listener reports it (`struct seccomp_notif`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notification {
    /// The kernel's cookie for this call; the answer names it.
    pub id: u64,
    /// The calling thread, in the listener's pid namespace (0 if it has no number there).
    pub pid: u32,
    /// The system call number.
    pub nr: i32,
    /// The caller's `AUDIT_ARCH_*` value.
    pub arch: u32,
    /// The call's six arguments, as the registers held them.
    pub args: [u64; 6],
}

/// Takes the next suspended call from `listener` (`SECCOMP_IOCTL_NOTIF_RECV`). Blocks while
/// none is pending: call it when `poll` says the listener is readable.
///
/// Errors: `ENOENT` when the call vanished between `poll` and here (its caller was killed),
/// `EINTR` when a signal interrupted the wait.
pub fn receive_notification(listener: BorrowedFd<'_>) -> Result<Notification, Errno> {
    // SAFETY: `seccomp_notif` is plain integers; all zeroes is a valid value, and the kernel
    // requires the buffer zeroed (it refuses with EINVAL otherwise).
    let mut notif: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the ioctl writes one `struct seccomp_notif` (the type libc declares for this
    // request number) into `notif`, which lives across the call; the descriptor is borrowed.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notif as *mut libc::seccomp_notif,
        )
    };
    Errno::result(ret)?;
    Ok(Notification {
        id: notif.id,
        pid: notif.pid,
        nr: notif.data.nr,
        arch: notif.data.arch,
        args: notif.data.args,
    })
}

/// Answers the suspended call `id` with failure `errno` (`SECCOMP_IOCTL_NOTIF_SEND`, without
/// `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the call never runs). The caller sees -1 and `errno`,
/// as with `SECCOMP_RET_ERRNO`.
///
/// Errors: `ENOENT` when the call is gone (its caller was killed meanwhile).
pub fn deny_notification(listener: BorrowedFd<'_>, id: u64, errno: Errno) -> Result<(), Errno> {
    send_response(
        listener,
        libc::seccomp_notif_resp {
            id,
            val: 0,
            error: -(errno as i32),
            flags: 0,
        },
    )
}

/// Lets the suspended call `id` run in the kernel as if no filter had stopped it
/// (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`). The kernel then checks and answers it as it would
/// any call: the listener only looked at it. seccomp_unotify(2) warns that a decision taken
/// from what the listener read is racy (the caller's memory can change before the call runs);
/// a listener that only records, as the sandbox's init does for writes, takes no decision.
///
/// Errors: `ENOENT` when the call is gone (its caller was killed meanwhile).
pub fn continue_notification(listener: BorrowedFd<'_>, id: u64) -> Result<(), Errno> {
    send_response(
        listener,
        libc::seccomp_notif_resp {
            id,
            val: 0,
            error: 0,
            flags: u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).expect("the flag is 1"),
        },
    )
}

/// Answers a suspended call (`SECCOMP_IOCTL_NOTIF_SEND`).
fn send_response(
    listener: BorrowedFd<'_>,
    mut resp: libc::seccomp_notif_resp,
) -> Result<(), Errno> {
    // SAFETY: the ioctl reads one `struct seccomp_notif_resp` (the type libc declares for this
    // request number) from `resp`, which lives across the call; the descriptor is borrowed.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    };
    Errno::result(ret).map(drop)
}

/// Whether the call `id` still waits for its answer (`SECCOMP_IOCTL_NOTIF_ID_VALID`). Asked
/// after reading the caller's memory: if it still waits, its thread (and so the pid the
/// notification named) was not replaced meanwhile, and what was read is the caller's.
pub fn notification_pending(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: the ioctl reads one u64 (the request's declared type) from `id`, which lives
    // across the call; the descriptor is borrowed.
    let ret = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &mut id as *mut u64,
        )
    };
    ret == 0
}

/// Reads `buf.len()` bytes at `addr` in the memory of process `pid` (a thread id in the
/// caller's pid namespace) with process_vm_readv(2). Needs the ptrace read access to `pid`
/// that a notification's listener in its sandbox's init has. Returns how many bytes were
/// read: fewer than asked when the range runs into an unmapped page.
pub fn read_process_memory(pid: u32, addr: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::ESRCH)?;
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: usize::try_from(addr).map_err(|_| Errno::EFAULT)? as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, writable and borrowed for the call; `remote` is only an
    // address in the other process, which the kernel checks.
    let read = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    usize::try_from(Errno::result(read)?).map_err(|_| Errno::EIO)
}

/// Reads the NUL-terminated string at `addr` in process `pid`'s memory
/// ([`read_process_memory`]), at most `max` bytes of it, one page at a time so that a string
/// ending just before an unmapped page reads whole.
///
/// Returns the bytes before the NUL, and whether the string was longer than `max`.
pub fn read_process_string(pid: u32, addr: u64, max: usize) -> Result<(Vec<u8>, bool), Errno> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    let mut buf = [0u8; PAGE as usize];
    while out.len() < max {
        let chunk = usize::try_from(PAGE - at % PAGE)
            .expect("a page is small")
            .min(max - out.len());
        let read = read_process_memory(pid, at, &mut buf[..chunk])?;
        if read == 0 {
            return Err(Errno::EFAULT);
        }
        if let Some(nul) = buf[..read].iter().position(|b| *b == 0) {
            out.extend_from_slice(&buf[..nul]);
            return Ok((out, false));
        }
        out.extend_from_slice(&buf[..read]);
        at += read as u64;
    }
    Ok((out, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seccomp_data_offsets_match_the_kernel_abi() {
        assert_eq!(SECCOMP_DATA_NR, 0);
        assert_eq!(SECCOMP_DATA_ARCH, 4);
        assert_eq!(SECCOMP_DATA_ARGS, 16);
        assert_eq!(
            seccomp_data_arg_low(1),
            if cfg!(target_endian = "little") {
                24
            } else {
                28
            }
        );
    }

    #[test]
    fn opcodes_match_the_c_macros() {
        // BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 4) and BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ...)
        assert_eq!(BPF_LD | BPF_W | BPF_ABS, 0x20);
        assert_eq!(BPF_JMP | BPF_JEQ | BPF_K, 0x15);
        assert_eq!(BPF_JMP | BPF_JSET | BPF_K, 0x45);
        assert_eq!(BPF_RET | BPF_K, 0x06);
    }

    #[test]
    fn empty_and_oversized_programs_are_refused_before_the_kernel() {
        assert_eq!(install_filter(&[]), Err(Errno::EINVAL));
        let allow = SockFilter::stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
        assert_eq!(
            install_filter(&vec![allow; BPF_MAXINSNS + 1]),
            Err(Errno::EINVAL)
        );
    }
}
