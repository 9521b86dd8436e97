//! Compiles the trusted mode's policy (`policies/seccomp/trusted.toml`) into the seccomp-bpf
//! program a trusted run's payload installs before `execve`, after no_new_privs. Pure: the
//! helper compiles it before forking the init. seccomp(2).
//!
//! Trusted mode is "limits only" (docs/modes.md): unlike the sandbox's program (`seccomp.rs`),
//! this one kills nothing, lets every ABI through and allows every call its policy does not
//! name. It refuses only what would let a run lock the next runs given its uid out of their
//! setup (the uid's keyrings). So it must catch those calls under every ABI a 64-bit process can
//! call the kernel with, each with numbers of its own: the native one, the 32-bit one (i386
//! `int 0x80` on x86_64, arm on aarch64) and, on x86_64, x32 (the native numbers with
//! `X32_SYSCALL_BIT`). The program:
//!
//! 1. load `seccomp_data.arch`; for the native arch, load `nr` and search the calls under their
//!    native (and x32) numbers, as `seccomp.rs` does (steps 3 and 4 there);
//! 2. for the 32-bit arch, load `nr` and search them under their 32-bit numbers;
//! 3. allow anything else.
//!
//! Every rule is answered in the kernel (`SECCOMP_RET_ERRNO`): no trusted run has a listener.

use warden_core::seccomp_policy::SeccompAction;
use warden_core::SeccompPolicy;
use warden_sys::seccomp::{
    SockFilter, AUDIT_ARCH_COMPAT, AUDIT_ARCH_NATIVE, BPF_JEQ, BPF_MAXINSNS, SECCOMP_DATA_ARCH,
    SECCOMP_DATA_NR, SECCOMP_RET_ALLOW,
};

use super::{always, dispatch, jump, load, ret, rule_body, syscall_number, Lookup, SeccompError};

/// A call's numbers under the other ABIs of this architecture.
struct OtherAbis {
    /// Under the 32-bit ABI (`AUDIT_ARCH_COMPAT`).
    compat: u32,
    /// Under x32 (x86_64 only: the native number with `X32_SYSCALL_BIT`), when x32 has it.
    x32: Option<u32>,
}

/// The other ABIs' numbers of the calls the trusted policy may name (`asm/unistd_32.h`, the
/// kernel's `syscall_32.tbl`, `syscall_64.tbl`'s "common" entries for x32). To name another
/// call there, add it here.
fn other_abis(name: &str) -> Option<OtherAbis> {
    #[cfg(target_arch = "x86_64")]
    let table: [(&str, u32, Option<u32>); 1] = [(
        "keyctl",
        288,
        Some(warden_sys::seccomp::X32_SYSCALL_BIT | 250),
    )];
    #[cfg(target_arch = "aarch64")]
    let table: [(&str, u32, Option<u32>); 1] = [("keyctl", 311, None)];
    table
        .into_iter()
        .find(|(known, ..)| *known == name)
        .map(|(_, compat, x32)| OtherAbis { compat, x32 })
}

/// Compiles the trusted mode's `policy`. Each rule must refuse with an errno, unrecorded; each
/// call must be one [`other_abis`] knows.
pub(crate) fn compile_trusted(policy: &SeccompPolicy) -> Result<Vec<SockFilter>, SeccompError> {
    let mut native = Vec::new();
    let mut compat = Vec::new();
    for rule in policy.rules() {
        if !matches!(rule.action, SeccompAction::Errno(_)) || rule.record {
            return Err(SeccompError::NotForTrusted {
                name: rule.syscall.clone(),
            });
        }
        let not_for_trusted = || SeccompError::NotForTrusted {
            name: rule.syscall.clone(),
        };
        let Lookup::Native(nr) = syscall_number(&rule.syscall) else {
            return Err(not_for_trusted());
        };
        let others = other_abis(&rule.syscall).ok_or_else(not_for_trusted)?;
        let body = rule_body(rule, false);
        native.push((nr, body.clone()));
        if let Some(x32) = others.x32 {
            native.push((x32, body.clone()));
        }
        compat.push((others.compat, body));
    }
    let mut program = vec![load(SECCOMP_DATA_ARCH)];
    for (arch, bodies) in [(AUDIT_ARCH_NATIVE, native), (AUDIT_ARCH_COMPAT, compat)] {
        if bodies.is_empty() {
            continue;
        }
        let mut search = vec![load(SECCOMP_DATA_NR)];
        search.extend(dispatch(&bodies));
        // Another arch: skip this one's search, which returns on every path.
        match u8::try_from(search.len()) {
            Ok(skip) => program.push(jump(BPF_JEQ, arch, 0, skip)),
            Err(_) => {
                program.push(jump(BPF_JEQ, arch, 1, 0));
                program.push(always(search.len()));
            }
        }
        program.extend(search);
    }
    program.push(ret(SECCOMP_RET_ALLOW));
    if program.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLong {
            instructions: program.len(),
        });
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seccomp::tests::{run, Data};
    use warden_sys::seccomp::{SECCOMP_RET_DATA, SECCOMP_RET_ERRNO};

    const EPERM: u32 = SECCOMP_RET_ERRNO | (libc::EPERM.unsigned_abs() & SECCOMP_RET_DATA);

    fn program() -> Vec<SockFilter> {
        let policy = SeccompPolicy::builtin_trusted().expect("the trusted policy is valid");
        compile_trusted(&policy).expect("the trusted policy compiles")
    }

    fn keyctl(arch: u32, nr: u32, operation: u64) -> Data {
        Data {
            nr: i64::from(nr),
            arch,
            args: [operation, (-4i64).cast_unsigned(), 0, 0, 0, 0],
        }
    }

    /// Hunt esc F2: a trusted program made its uid's user keyring unusable
    /// (`keyctl(KEYCTL_SETPERM, KEY_SPEC_USER_KEYRING, 0)`), and every later trusted run given
    /// the slot failed at its setup until reboot. The operations that lock a keyring are
    /// refused under every ABI a 64-bit program can use; the others, and every other call, run.
    #[test]
    fn the_operations_that_lock_a_keyring_are_refused_under_every_abi() {
        let program = program();
        let native = u32::try_from(libc::SYS_keyctl).expect("a small number");
        let mut abis = vec![(AUDIT_ARCH_NATIVE, native), (AUDIT_ARCH_COMPAT, 0)];
        abis[1].1 = other_abis("keyctl").expect("keyctl's numbers").compat;
        #[cfg(target_arch = "x86_64")]
        abis.push((
            AUDIT_ARCH_NATIVE,
            warden_sys::seccomp::X32_SYSCALL_BIT | native,
        ));
        // KEYCTL_REVOKE, KEYCTL_SETPERM, KEYCTL_SET_TIMEOUT, KEYCTL_RESTRICT_KEYRING
        for (arch, nr) in abis {
            for operation in [3, 5, 15, 29] {
                let refused = run(&program, &keyctl(arch, nr, operation));
                assert_eq!(
                    refused, EPERM,
                    "arch {arch:#x} nr {nr} operation {operation}"
                );
                // High bits do not hide the operation: the kernel reads an int.
                let wide = run(&program, &keyctl(arch, nr, (1 << 32) | operation));
                assert_eq!(wide, EPERM, "arch {arch:#x} nr {nr} operation {operation}");
            }
            // KEYCTL_GET_KEYRING_ID, KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR, KEYCTL_READ
            for operation in [0, 1, 7, 11] {
                let allowed = run(&program, &keyctl(arch, nr, operation));
                assert_eq!(allowed, SECCOMP_RET_ALLOW, "operation {operation}");
            }
        }
    }

    /// Trusted mode kills nothing and lets every ABI through: a call the policy does not name,
    /// a call of the 32-bit ABI under keyctl's native number (another call there), a call
    /// newer than any review.
    #[test]
    fn everything_else_is_allowed() {
        let program = program();
        let native = u32::try_from(libc::SYS_keyctl).expect("a small number");
        for data in [
            keyctl(AUDIT_ARCH_NATIVE, 0, 5),
            keyctl(AUDIT_ARCH_COMPAT, native, 5),
            keyctl(AUDIT_ARCH_NATIVE, 1000, 5),
            keyctl(0x1234, native, 5),
        ] {
            assert_eq!(run(&program, &data), SECCOMP_RET_ALLOW);
        }
    }

    /// The trusted filter cannot kill, notify or name a call it has no other ABIs' numbers for.
    #[test]
    fn only_unrecorded_refusals_of_known_calls_compile() {
        for text in [
            "[[deny]]\nsyscall = \"keyctl\"\nreason = \"r\"\n",
            "[[deny]]\nsyscall = \"keyctl\"\naction = \"kill\"\nreason = \"r\"\n",
            "[[deny]]\nsyscall = \"mount\"\nrecord = false\nreason = \"r\"\n",
        ] {
            let policy = SeccompPolicy::from_toml("t.toml", text).expect("valid file");
            assert!(compile_trusted(&policy).is_err(), "{text}");
        }
    }
}
