//! Compiles a [`SeccompPolicy`] into the seccomp-bpf program the payload runs under. Pure: the
//! helper compiles it before forking the payload, which installs it last before `execve`, after
//! no_new_privs (`warden_sys::seccomp::install_filter`). See seccomp(2) and
//! <https://docs.kernel.org/userspace-api/seccomp_filter.html>.
//!
//! The program, in order:
//!
//! 1. load `seccomp_data.arch`; a foreign ABI (i386 `int 0x80` on x86_64) kills the process, since
//!    its call numbers mean other calls;
//! 2. load `seccomp_data.nr`; on x86_64 a number with the x32 bit set kills the process, since
//!    x32 calls report the x86_64 arch and would otherwise slip past the comparisons below
//!    (both kills notify, as the policy's kills do: [`foreign_call`] names them); and a call
//!    numbered above [`NEWEST_REVIEWED`] fails with `ENOSYS` in the kernel, as on a kernel
//!    without it: the policy denies by name, so a call added to Linux after the review
//!    (`listmount`, `open_tree_attr`, ...) is not allowed merely because no rule names it;
//! 3. a binary search on the call number (`jge`) over the calls that have code below, ending
//!    in short runs of `jeq`; a call without code is allowed where its search ends;
//! 4. each such call's code: its bodies in order, then allow. A denied call's body is the
//!    action, or
//!    - for a flags condition: load the low word of `args[0]`, `jset` the flag mask, the action,
//!      and reload `nr` for the next body;
//!    - for a pid condition: load the low word of `args[0]` (a `pid_t`), `jeq 0` over the
//!      action, and reload `nr`;
//!    - for a family condition: load the low word of `args[0]`, one `jeq` per allowed family,
//!      the action; then per family narrowed to protocols, load the low word of `args[2]`, one
//!      `jeq` per protocol, the action; then allow. Every path returns;
//!    - for argument conditions: per condition, load the low word of its argument and one `jeq`
//!      per value, each on to the next condition (the last condition's to the action), the
//!      last one's miss past the action; the action; then reload `nr` for the next body;
//!
//!    and after the policy's bodies come those of a call that would send `SIGXFSZ`
//!    (`file_size_signal.rs`: `kill` and its kin, `fcntl(F_SETSIG)`, `clone`'s exit signal,
//!    the last through an `and` with `CSIGNAL`), which fail with `EPERM` in the kernel, so
//!    that a death by `SIGXFSZ` is the kernel's file size limit; then those of a call that
//!    writes to a named path (`writes.rs`): `SECCOMP_RET_USER_NOTIF`, for `open` and `openat`
//!    only when a write flag is set, so that the init can record writes to read-only paths and
//!    let them run.
//!
//! A denied call whose rule is recorded (`record`, the default) returns
//! `SECCOMP_RET_USER_NOTIF` rather than `SECCOMP_RET_ERRNO`: the sandbox's init, which holds the
//! filter's listener, answers it with the rule's errno and counts it ([`CompiledFilter::notified`],
//! `denials.rs`). The program sees the same failure either way. A call the policy kills for
//! notifies too: the init kills the calling process (`SIGKILL`, the call never runs) and
//! records which call it was, which `SECCOMP_RET_KILL_PROCESS` would not tell, and so do the
//! calls of a foreign ABI (steps 1 and 2). With every kill of the filter made by the init, a
//! program that dies of `SIGSYS` raised it itself (or its own filter did): not warden's kill.
//! The program that installs no listener ([`CompiledFilter::errno_only`]) kills in the kernel.
//! Unrecorded rules (routine probes such as `clone3`) fail in the kernel.
//!
//! The kernel's seccomp cache (Linux 5.11) makes every call whose outcome depends only on arch
//! and number skip the program entirely: only `clone`, `socket`, `socketpair`, `prlimit64`,
//! `prctl`, `seccomp`, the calls that take a signal (`kill`, `tgkill`, `fcntl`, ...) and the
//! watched writes (`open`, `openat` among them) run it. To fill that cache, installing a filter runs
//! the program once per call number of the architecture, with interrupts off. Every payload
//! installs one, so the search matters: over a linear list of the ~70 calls (the layout
//! before), each of those ~450 runs walked the whole list, and installing the builtin filter
//! took about 200 µs here; a search takes at most two dozen steps per number, and installing
//! about 110 µs. A jump longer than a `jt` or `jf` offset can hold (8 bits) goes through a
//! `ja` (32 bits).

use warden_core::seccomp_policy::{
    AllowedFamily, ArgCondition, DenyErrno, DenyRule, DenySeverity, NamespaceFlag, SeccompAction,
    SocketFamily, SocketProtocol, SocketType,
};
use warden_core::SeccompPolicy;
use warden_sys::seccomp::{
    seccomp_data_arg_low, SockFilter, AUDIT_ARCH_NATIVE, BPF_ABS, BPF_ALU, BPF_AND, BPF_JA,
    BPF_JEQ, BPF_JGE, BPF_JMP, BPF_JSET, BPF_K, BPF_LD, BPF_MAXINSNS, BPF_RET, BPF_W,
    SECCOMP_DATA_ARCH, SECCOMP_DATA_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO,
    SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_USER_NOTIF,
};

mod trusted;
pub(crate) use trusted::compile_trusted;

/// A seccomp policy that cannot be compiled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SeccompError {
    /// The policy names a call this file's table does not know on any supported architecture.
    #[error("seccomp policy names unknown system call {name:?}")]
    UnknownSyscall {
        /// The name as written in the policy.
        name: String,
    },
    /// The trusted mode's policy has a rule its filter cannot hold: one that kills or is
    /// recorded (no trusted run has a listener), or a call whose other ABIs' numbers the
    /// compiler does not know (`seccomp/trusted.rs`).
    #[error(
        "the trusted seccomp policy's rule for {name:?} must refuse with an errno, unrecorded,          a call whose 32-bit number the compiler knows"
    )]
    NotForTrusted {
        /// The call, as written in the policy.
        name: String,
    },
    /// The program exceeds the kernel's limit.
    #[error(
        "seccomp program has {instructions} instructions, more than the kernel's {BPF_MAXINSNS}"
    )]
    TooLong {
        /// The program's length.
        instructions: usize,
    },
}

/// A compiled policy: the program, and how the init answers the calls it notifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompiledFilter {
    /// The seccomp-bpf program.
    pub(crate) program: Vec<SockFilter>,
    /// The calls the program notifies (recorded errno rules and the calls it kills for), one
    /// per call number.
    pub(crate) notified: Vec<NotifiedCall>,
    /// Whether the program also suspends the calls that write to a named path, for the init
    /// to record writes to read-only paths (`writes.rs`).
    pub(crate) watches_writes: bool,
    /// The same program with every errno rule answered in the kernel, nothing notified (and
    /// no write watched): what
    /// the payload installs when the kernel refuses it a listener (`EBUSY`: a filter installed
    /// above warden, by a container runtime, already has one). The calls are refused alike,
    /// only not recorded.
    pub(crate) errno_only: Vec<SockFilter>,
}

/// A call the program suspends for the init, and the answer it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NotifiedCall {
    /// The call number on this architecture.
    pub(crate) nr: i32,
    /// The policy's name for it.
    pub(crate) name: String,
    /// What the init does with it.
    pub(crate) answer: Answer,
    /// How serious an attempt is (a kill: always high).
    pub(crate) severity: DenySeverity,
}

/// What the init does with a notified call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Fails it with this error.
    Errno {
        /// The policy's name for the error.
        errno: DenyErrno,
        /// Its number.
        code: i32,
    },
    /// Kills the calling process before the call runs.
    Kill,
}

impl CompiledFilter {
    /// The rule behind notified call `nr`, if the program notifies it.
    pub(crate) fn notified_call(&self, nr: i32) -> Option<&NotifiedCall> {
        self.notified.iter().find(|call| call.nr == nr)
    }

    /// Whether the program suspends any call for a listener to answer.
    pub(crate) fn notifies(&self) -> bool {
        !self.notified.is_empty() || self.watches_writes
    }
}

/// Compiles `policy` into a seccomp-bpf program for this architecture. Calls the architecture
/// lacks (`iopl` on aarch64) are skipped.
pub(crate) fn compile(policy: &SeccompPolicy) -> Result<CompiledFilter, SeccompError> {
    let mut bodies = Vec::new();
    let mut errno_bodies = Vec::new();
    let mut notified = Vec::new();
    for rule in policy.rules() {
        match syscall_number(&rule.syscall) {
            Lookup::Native(nr) => {
                bodies.push((nr, rule_body(rule, true)));
                errno_bodies.push((nr, rule_body(rule, false)));
                let answer = match rule.action {
                    SeccompAction::Errno(errno) if rule.record => Some(Answer::Errno {
                        errno,
                        code: errno_code(errno).cast_signed(),
                    }),
                    SeccompAction::Errno(_) | SeccompAction::Ignore => None,
                    SeccompAction::KillProcess => Some(Answer::Kill),
                };
                if let Some(answer) = answer {
                    notified.push(NotifiedCall {
                        nr: i32::try_from(nr).expect("system call numbers are small"),
                        name: rule.syscall.clone(),
                        answer,
                        severity: match answer {
                            Answer::Kill => DenySeverity::High,
                            Answer::Errno { .. } => rule.severity,
                        },
                    });
                }
            }
            Lookup::OtherArch => {}
            Lookup::Unknown => {
                return Err(SeccompError::UnknownSyscall {
                    name: rule.syscall.clone(),
                });
            }
        }
    }
    // After the deny rules, which they can only narrow: a call sending SIGXFSZ fails, in the
    // kernel, with or without a listener.
    let signals = crate::file_size_signal::filter_bodies();
    bodies.extend(signals.iter().cloned());
    errno_bodies.extend(signals);
    // After the deny rules, so that a call the policy denies is denied, never only watched.
    bodies.extend(crate::writes::filter_bodies());
    let mut program = prologue(SECCOMP_RET_USER_NOTIF);
    program.extend(dispatch(&bodies));
    let mut errno_only = prologue(SECCOMP_RET_KILL_PROCESS);
    errno_only.extend(dispatch(&errno_bodies));
    if program.len() > BPF_MAXINSNS {
        return Err(SeccompError::TooLong {
            instructions: program.len(),
        });
    }
    Ok(CompiledFilter {
        program,
        notified,
        watches_writes: true,
        errno_only,
    })
}

/// Steps 3 and 4 for `bodies` (call number, body), in order: expects the call number in the
/// accumulator; every path returns.
fn dispatch(bodies: &[(u32, Vec<SockFilter>)]) -> Vec<SockFilter> {
    let mut calls: std::collections::BTreeMap<u32, Vec<SockFilter>> = Default::default();
    for (nr, body) in bodies {
        calls.entry(*nr).or_default().extend_from_slice(body);
    }
    let calls: Vec<(u32, Vec<SockFilter>)> = calls
        .into_iter()
        .map(|(nr, mut code)| {
            // A body's jumps land inside it: ending in a return, it returns on every path.
            if code.last().is_none_or(|last| last.code != BPF_RET | BPF_K) {
                code.push(ret(SECCOMP_RET_ALLOW));
            }
            (nr, code)
        })
        .collect();
    let mut program = Vec::new();
    search(&calls, &mut program);
    program
}

/// Calls tested one by one at the end of a search. Each level of `jge` adds code for the kernel
/// to check and compile, each `jeq` a step to every run: installing the builtin filter took
/// about 130 µs with runs of 4, 110 µs with 8 to 24 (measured here).
const LINEAR_CALLS: usize = 16;

/// Appends the search over `calls` (sorted by number, each code ending in a return).
fn search(calls: &[(u32, Vec<SockFilter>)], program: &mut Vec<SockFilter>) {
    if calls.len() <= LINEAR_CALLS {
        for (nr, code) in calls {
            // Not this call: skip its code.
            match u8::try_from(code.len()) {
                Ok(skip) => program.push(jump(BPF_JEQ, *nr, 0, skip)),
                Err(_) => {
                    program.push(jump(BPF_JEQ, *nr, 1, 0));
                    program.push(always(code.len()));
                }
            }
            program.extend_from_slice(code);
        }
        program.push(ret(SECCOMP_RET_ALLOW));
        return;
    }
    let (low, high) = calls.split_at(calls.len() / 2);
    let mut below = Vec::new();
    search(low, &mut below);
    // From the first number of the upper half up: skip the lower half's search.
    match u8::try_from(below.len()) {
        Ok(skip) => program.push(jump(BPF_JGE, high[0].0, skip, 0)),
        Err(_) => {
            program.push(jump(BPF_JGE, high[0].0, 0, 1));
            program.push(always(below.len()));
        }
    }
    program.extend(below);
    search(high, program);
}

/// `ja`: skips the next `count` instructions.
fn always(count: usize) -> SockFilter {
    SockFilter::stmt(
        BPF_JMP | BPF_JA,
        u32::try_from(count).expect("a program is at most BPF_MAXINSNS long"),
    )
}

/// The newest system call the built-in policy was reviewed against: `futex_requeue`, Linux
/// 6.7, numbered alike on x86_64 and aarch64 (calls from 424 on share their numbers). Calls
/// after it (`statmount` 457, `listmount` 458, the `lsm_*` calls, `mseal`, the `*xattrat`
/// calls, `open_tree_attr` 467, `file_getattr` ...) answer `ENOSYS` until reviewed.
pub(crate) const NEWEST_REVIEWED: u32 = 456;

/// Steps 1 and 2: answer foreign ABIs with `kill` (`SECCOMP_RET_KILL_PROCESS`, or
/// `SECCOMP_RET_USER_NOTIF` for the init to kill) and calls newer than the review with
/// `ENOSYS`; leave the call number in the accumulator.
fn prologue(kill: u32) -> Vec<SockFilter> {
    let mut program = vec![
        load(SECCOMP_DATA_ARCH),
        jump(BPF_JEQ, AUDIT_ARCH_NATIVE, 1, 0),
        ret(kill),
        load(SECCOMP_DATA_NR),
    ];
    program.extend(abi_check(kill));
    program.push(jump(BPF_JGE, NEWEST_REVIEWED + 1, 0, 1));
    program.push(ret(
        SECCOMP_RET_ERRNO | (libc::ENOSYS.unsigned_abs() & SECCOMP_RET_DATA)
    ));
    program
}

/// Step 2's check of the call number. On x86_64 it also catches nr -1 (all bits set), which
/// only a ptrace tracer uses, to skip a call.
#[cfg(target_arch = "x86_64")]
fn abi_check(kill: u32) -> Vec<SockFilter> {
    vec![
        jump(BPF_JSET, warden_sys::seccomp::X32_SYSCALL_BIT, 0, 1),
        ret(kill),
    ]
}
/// Step 2's check of the call number: aarch64 has a single ABI per arch value.
#[cfg(target_arch = "aarch64")]
fn abi_check(_kill: u32) -> Vec<SockFilter> {
    Vec::new()
}

/// The name of a notified call that steps 1 and 2 kill for (`i386 system call 11`, `x32
/// system call 59`), or `None` for a call of the native ABI, which the policy's rules answer.
pub(crate) fn foreign_call(arch: u32, nr: i32) -> Option<String> {
    if arch != AUDIT_ARCH_NATIVE {
        use warden_sys::seccomp::{AUDIT_ARCH_ARM, AUDIT_ARCH_I386};
        return Some(match arch {
            AUDIT_ARCH_I386 => format!("i386 system call {nr}"),
            AUDIT_ARCH_ARM => format!("arm system call {nr}"),
            other => format!("system call {nr} of architecture {other:#x}"),
        });
    }
    #[cfg(target_arch = "x86_64")]
    {
        let x32 = warden_sys::seccomp::X32_SYSCALL_BIT;
        if nr == -1 {
            return Some("system call -1".to_owned());
        }
        if nr.cast_unsigned() & x32 != 0 {
            return Some(format!("x32 system call {}", nr.cast_unsigned() & !x32));
        }
    }
    None
}

/// Step 4 for one rule: its body, run when the call number (in the accumulator) is the rule's;
/// leaves the number there when it does not return. `notify`: a recorded errno rule notifies.
fn rule_body(rule: &DenyRule, notify: bool) -> Vec<SockFilter> {
    let action = ret(action_value(rule, notify));
    if !rule.when_flags_any.is_empty() {
        vec![
            load(seccomp_data_arg_low(0)),
            jump(BPF_JSET, flag_mask(&rule.when_flags_any), 0, 1),
            action,
            load(SECCOMP_DATA_NR),
        ]
    } else if !rule.allow_families.is_empty() {
        family_body(&rule.allow_families, action)
    } else if rule.when_pid_nonzero {
        // The pid is a `pid_t`: the kernel's syscall wrapper keeps the low 32 bits, so high
        // bits over 0 still name the caller, and bits there cannot hide another pid.
        vec![
            load(seccomp_data_arg_low(0)),
            jump(BPF_JEQ, 0, 1, 0),
            action,
            load(SECCOMP_DATA_NR),
        ]
    } else if !rule.when_args.is_empty() {
        args_body(&rule.when_args, action)
    } else {
        vec![action]
    }
}

/// The body of argument conditions: `action` when every condition holds, each an argument's
/// low word among its values (as the kernel reads an `int`; see [`ArgCondition`]), and the
/// call number back in the accumulator otherwise.
fn args_body(conditions: &[ArgCondition], action: SockFilter) -> Vec<SockFilter> {
    // Layout: per condition, a load and one jeq per value; the action; the reload of `nr`.
    let mut starts = Vec::with_capacity(conditions.len());
    let mut at = 0;
    for condition in conditions {
        starts.push(at);
        at += 1 + condition.values.len();
    }
    let (action_at, miss) = (at, at + 1);
    let mut body = Vec::with_capacity(at + 2);
    for (k, condition) in conditions.iter().enumerate() {
        let holds = starts.get(k + 1).copied().unwrap_or(action_at);
        body.push(load(seccomp_data_arg_low(u32::from(condition.index))));
        for (j, value) in condition.values.iter().enumerate() {
            let jt = offset(body.len(), holds);
            let jf = if j + 1 == condition.values.len() {
                offset(body.len(), miss)
            } else {
                0
            };
            body.push(jump(BPF_JEQ, *value, jt, jf));
        }
    }
    body.push(action);
    body.push(load(SECCOMP_DATA_NR));
    debug_assert_eq!(body.len(), miss + 1, "the layout above matches the body");
    body
}

/// The body of a family condition: `deny` unless the family, and for a family narrowed to
/// types or protocols also the type and the protocol, is allowed. Ends in a return on every
/// path.
///
/// Family, type and protocol are `int` in socket(2) and socketpair(2): the kernel's syscall
/// wrapper truncates the 64-bit register to its low 32 bits, so those bits alone choose what
/// the call creates, and deciding on them is exact. High bits cannot sneak a family past an
/// allow list (as `(1 << 32) | AF_VSOCK` slips past a 64-bit `!= AF_VSOCK`), nor deny a call
/// the kernel would read as an allowed family. The type is compared without its
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC` flags, as the kernel reads it; any other bit makes it
/// no listed type (the kernel fails such a call with `EINVAL`).
fn family_body(families: &[AllowedFamily], deny: SockFilter) -> Vec<SockFilter> {
    let narrowed: Vec<&AllowedFamily> = families
        .iter()
        .filter(|f| !f.types.is_empty() || !f.protocols.is_empty())
        .collect();
    // Layout: load the family, one jeq per family, deny; then per narrowed family: if it lists
    // types, load the type, mask its flags, one jeq per type, deny; if it lists protocols, load
    // the protocol, one jeq per protocol, deny; then allow.
    let type_code = |f: &AllowedFamily| match f.types.len() {
        0 => 0,
        n => n + 3,
    };
    let protocol_code = |f: &AllowedFamily| match f.protocols.len() {
        0 => 0,
        n => n + 2,
    };
    let mut checks = Vec::with_capacity(narrowed.len());
    let mut at = families.len() + 2;
    for family in &narrowed {
        checks.push(at);
        at += type_code(family) + protocol_code(family);
    }
    let allow = at;
    let mut body = vec![load(seccomp_data_arg_low(0))];
    for family in families {
        let target = narrowed
            .iter()
            .position(|n| n.family == family.family)
            .map_or(allow, |k| checks[k]);
        let jt = offset(body.len(), target);
        body.push(jump(BPF_JEQ, family_number(family.family), jt, 0));
    }
    body.push(deny);
    for (k, family) in narrowed.iter().enumerate() {
        // A listed type goes on to the protocols, or to allow when there are none.
        let types_pass = if family.protocols.is_empty() {
            allow
        } else {
            checks[k] + type_code(family)
        };
        let after = checks.get(k + 1).copied().unwrap_or(allow);
        if !family.types.is_empty() {
            body.push(load(seccomp_data_arg_low(1)));
            body.push(SockFilter::stmt(BPF_ALU | BPF_AND | BPF_K, !TYPE_FLAGS));
            for kind in &family.types {
                let jt = offset(body.len(), types_pass);
                body.push(jump(BPF_JEQ, type_number(*kind), jt, 0));
            }
            body.push(deny);
        }
        if !family.protocols.is_empty() {
            body.push(load(seccomp_data_arg_low(2)));
            for protocol in &family.protocols {
                let jt = offset(body.len(), allow);
                body.push(jump(BPF_JEQ, protocol_number(*protocol), jt, 0));
            }
            body.push(deny);
        }
        debug_assert_eq!(body.len(), after, "the layout above matches the body");
    }
    body.push(ret(SECCOMP_RET_ALLOW));
    debug_assert_eq!(body.len(), allow + 1, "the layout above matches the body");
    body
}

/// The flags a socket type carries beside the type (`SOCK_NONBLOCK`, `SOCK_CLOEXEC`).
pub(crate) const TYPE_FLAGS: u32 =
    libc::SOCK_NONBLOCK.unsigned_abs() | libc::SOCK_CLOEXEC.unsigned_abs();

/// The jump offset from the instruction at `from` to the later one at `to`.
fn offset(from: usize, to: usize) -> u8 {
    u8::try_from(to - from - 1).expect(
        "the closed family and protocol tables, and at most 6 conditions of at most \
         MAX_ARG_VALUES values, bound a body to about a hundred instructions",
    )
}

fn family_number(family: SocketFamily) -> u32 {
    let number = match family {
        SocketFamily::Unix => libc::AF_UNIX,
        SocketFamily::Inet => libc::AF_INET,
        SocketFamily::Inet6 => libc::AF_INET6,
        SocketFamily::Netlink => libc::AF_NETLINK,
    };
    number.unsigned_abs()
}

fn protocol_number(protocol: SocketProtocol) -> u32 {
    let number = match protocol {
        SocketProtocol::NetlinkRoute => libc::NETLINK_ROUTE,
        SocketProtocol::Ip => libc::IPPROTO_IP,
        SocketProtocol::Icmp => libc::IPPROTO_ICMP,
        SocketProtocol::Tcp => libc::IPPROTO_TCP,
        SocketProtocol::Udp => libc::IPPROTO_UDP,
        SocketProtocol::Icmpv6 => libc::IPPROTO_ICMPV6,
    };
    number.unsigned_abs()
}

pub(crate) fn type_number(kind: SocketType) -> u32 {
    let number = match kind {
        SocketType::Stream => libc::SOCK_STREAM,
        SocketType::Dgram => libc::SOCK_DGRAM,
        SocketType::Seqpacket => libc::SOCK_SEQPACKET,
        SocketType::Raw => libc::SOCK_RAW,
    };
    number.unsigned_abs()
}

/// The return value of a denied call: with `notify`, a recorded errno rule and a kill suspend
/// the call for the init.
fn action_value(rule: &DenyRule, notify: bool) -> u32 {
    match rule.action {
        SeccompAction::KillProcess if notify => SECCOMP_RET_USER_NOTIF,
        SeccompAction::KillProcess => SECCOMP_RET_KILL_PROCESS,
        SeccompAction::Errno(_) if notify && rule.record => SECCOMP_RET_USER_NOTIF,
        SeccompAction::Errno(errno) => SECCOMP_RET_ERRNO | (errno_code(errno) & SECCOMP_RET_DATA),
        // An error of 0: the kernel skips the call and returns 0 (seccomp(2)).
        SeccompAction::Ignore => SECCOMP_RET_ERRNO,
    }
}

fn errno_code(errno: DenyErrno) -> u32 {
    let code = match errno {
        DenyErrno::Eperm => libc::EPERM,
        DenyErrno::Eacces => libc::EACCES,
        DenyErrno::Enosys => libc::ENOSYS,
        DenyErrno::Eafnosupport => libc::EAFNOSUPPORT,
        DenyErrno::Einval => libc::EINVAL,
    };
    code.unsigned_abs()
}

/// `CLONE_NEWTIME`; the libc crate exports it for glibc targets only.
pub(crate) const CLONE_NEWTIME: libc::c_int = 0x80;

/// The `CLONE_NEW*` bit of one namespace flag (also what gVisor's OCI filter compares).
pub(crate) fn flag_bit(flag: NamespaceFlag) -> u32 {
    let bit = match flag {
        NamespaceFlag::NewNs => libc::CLONE_NEWNS,
        NamespaceFlag::NewUts => libc::CLONE_NEWUTS,
        NamespaceFlag::NewIpc => libc::CLONE_NEWIPC,
        NamespaceFlag::NewUser => libc::CLONE_NEWUSER,
        NamespaceFlag::NewPid => libc::CLONE_NEWPID,
        NamespaceFlag::NewNet => libc::CLONE_NEWNET,
        NamespaceFlag::NewCgroup => libc::CLONE_NEWCGROUP,
        NamespaceFlag::NewTime => CLONE_NEWTIME,
    };
    bit.unsigned_abs()
}

/// The flags as a mask over the low 32 bits of the flags argument: every `CLONE_NEW*` flag lives
/// there, and the kernel's clone(2) ignores the high half (`lower_32_bits(clone_flags)`).
fn flag_mask(flags: &[NamespaceFlag]) -> u32 {
    flags.iter().fold(0, |mask, flag| mask | flag_bit(*flag))
}

pub(crate) const fn load(offset: u32) -> SockFilter {
    SockFilter::stmt(BPF_LD | BPF_W | BPF_ABS, offset)
}

pub(crate) const fn jump(op: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter::jump(BPF_JMP | op | BPF_K, k, jt, jf)
}

pub(crate) const fn ret(value: u32) -> SockFilter {
    SockFilter::stmt(BPF_RET | BPF_K, value)
}

/// Where a policy's call name stands on this architecture.
#[derive(Debug, PartialEq, Eq)]
enum Lookup {
    /// The call's number here.
    Native(u32),
    /// Another supported architecture has the call, this one does not.
    OtherArch,
    /// No supported architecture has it (or the table lacks it).
    Unknown,
}

fn syscall_number(name: &str) -> Lookup {
    if let Some((_, nr)) = SYSCALLS.iter().find(|(known, _)| *known == name) {
        return Lookup::Native(
            u32::try_from(*nr).expect("system call numbers are small and positive"),
        );
    }
    if OTHER_ARCH_ONLY.contains(&name) {
        return Lookup::OtherArch;
    }
    Lookup::Unknown
}

/// The calls a policy may name, with their numbers on this architecture. To deny a call not
/// listed, add it here (and to `OTHER_ARCH_ONLY` for the architectures that lack it).
const SYSCALLS: &[(&str, libc::c_long)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("adjtimex", libc::SYS_adjtimex),
    ("bpf", libc::SYS_bpf),
    ("chroot", libc::SYS_chroot),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("clone", libc::SYS_clone),
    ("clone3", libc::SYS_clone3),
    ("delete_module", libc::SYS_delete_module),
    ("fadvise64", libc::SYS_fadvise64),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("finit_module", libc::SYS_finit_module),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fsopen", libc::SYS_fsopen),
    ("fspick", libc::SYS_fspick),
    ("init_module", libc::SYS_init_module),
    ("io_cancel", libc::SYS_io_cancel),
    ("io_destroy", libc::SYS_io_destroy),
    ("io_getevents", libc::SYS_io_getevents),
    ("io_pgetevents", SYS_IO_PGETEVENTS),
    ("io_setup", libc::SYS_io_setup),
    ("io_submit", libc::SYS_io_submit),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mbind", libc::SYS_mbind),
    ("memfd_secret", libc::SYS_memfd_secret),
    ("migrate_pages", libc::SYS_migrate_pages),
    ("mount", libc::SYS_mount),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("move_mount", libc::SYS_move_mount),
    ("move_pages", libc::SYS_move_pages),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("nfsservctl", libc::SYS_nfsservctl),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("open_tree", libc::SYS_open_tree),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("personality", libc::SYS_personality),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("pivot_root", libc::SYS_pivot_root),
    ("prctl", libc::SYS_prctl),
    ("process_madvise", libc::SYS_process_madvise),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("prlimit64", libc::SYS_prlimit64),
    ("ptrace", libc::SYS_ptrace),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", libc::SYS_quotactl_fd),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("seccomp", libc::SYS_seccomp),
    ("setdomainname", libc::SYS_setdomainname),
    ("sethostname", libc::SYS_sethostname),
    ("setns", libc::SYS_setns),
    ("setsockopt", libc::SYS_setsockopt),
    ("settimeofday", libc::SYS_settimeofday),
    ("socket", libc::SYS_socket),
    ("socketpair", libc::SYS_socketpair),
    ("swapoff", libc::SYS_swapoff),
    ("swapon", libc::SYS_swapon),
    ("syslog", libc::SYS_syslog),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("vhangup", libc::SYS_vhangup),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("modify_ldt", libc::SYS_modify_ldt),
    #[cfg(target_arch = "x86_64")]
    ("uselib", libc::SYS_uselib),
];

/// `io_pgetevents` (Linux 4.18), which the libc crate does not export.
#[cfg(target_arch = "x86_64")]
const SYS_IO_PGETEVENTS: libc::c_long = 333;
/// `io_pgetevents` (Linux 4.18), which the libc crate does not export.
#[cfg(target_arch = "aarch64")]
const SYS_IO_PGETEVENTS: libc::c_long = 292;

/// Calls of another supported architecture that this one lacks: a policy naming them is valid,
/// the entry is skipped here.
#[cfg(target_arch = "x86_64")]
const OTHER_ARCH_ONLY: &[&str] = &[];
/// Calls of another supported architecture that this one lacks: a policy naming them is valid,
/// the entry is skipped here.
#[cfg(target_arch = "aarch64")]
const OTHER_ARCH_ONLY: &[&str] = &["ioperm", "iopl", "modify_ldt", "uselib"];

#[cfg(test)]
mod tests {
    use super::*;

    /// `struct seccomp_data` for the interpreter.
    pub(super) struct Data {
        pub(super) nr: i64,
        pub(super) arch: u32,
        pub(super) args: [u64; 6],
    }

    impl Data {
        fn call(nr: libc::c_long, arg0: u64) -> Self {
            Self {
                nr,
                arch: AUDIT_ARCH_NATIVE,
                args: [arg0, 0, 0, 0, 0, 0],
            }
        }

        /// `socket(family, type, protocol)`, or `socketpair` with `nr`.
        fn socket(nr: libc::c_long, family: u64, kind: libc::c_int, protocol: u64) -> Self {
            Self {
                nr,
                arch: AUDIT_ARCH_NATIVE,
                args: [family, flags(kind), protocol, 0, 0, 0],
            }
        }

        /// The 32-bit word at `offset`, as a BPF_ABS load reads it.
        fn word(&self, offset: u32) -> u32 {
            let mut bytes = Vec::with_capacity(64);
            bytes.extend_from_slice(&(self.nr as i32).to_ne_bytes());
            bytes.extend_from_slice(&self.arch.to_ne_bytes());
            bytes.extend_from_slice(&0u64.to_ne_bytes());
            for arg in self.args {
                bytes.extend_from_slice(&arg.to_ne_bytes());
            }
            let at = offset as usize;
            assert_eq!(at % 4, 0, "unaligned load at {offset}");
            assert!(at + 4 <= bytes.len(), "load past the end at {offset}");
            u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
        }
    }

    /// Runs the BPF subset `compile` emits, as the kernel would.
    pub(super) fn run(program: &[SockFilter], data: &Data) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = program[pc];
            let taken = |cond: bool| usize::from(if cond { ins.jt } else { ins.jf });
            pc += 1;
            match ins.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => acc = data.word(ins.k),
                c if c == BPF_JMP | BPF_JEQ | BPF_K => pc += taken(acc == ins.k),
                c if c == BPF_JMP | BPF_JGE | BPF_K => pc += taken(acc >= ins.k),
                c if c == BPF_JMP | BPF_JSET | BPF_K => pc += taken(acc & ins.k != 0),
                c if c == BPF_JMP | BPF_JA => pc += ins.k as usize,
                c if c == BPF_ALU | BPF_AND | BPF_K => acc &= ins.k,
                c if c == BPF_RET | BPF_K => return ins.k,
                other => panic!("the interpreter does not know opcode {other:#x}"),
            }
        }
    }

    fn builtin() -> CompiledFilter {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        compile(&policy).expect("builtin policy compiles")
    }

    /// What the calling program sees: the program's verdict, with a notified call answered as
    /// the init answers it (its rule's errno, or the process killed).
    fn answered(filter: &CompiledFilter, data: &Data) -> u32 {
        match run(&filter.program, data) {
            SECCOMP_RET_USER_NOTIF
                if foreign_call(data.arch, i32::try_from(data.nr).expect("small")).is_some() =>
            {
                SECCOMP_RET_KILL_PROCESS
            }
            SECCOMP_RET_USER_NOTIF => {
                let nr = i32::try_from(data.nr).expect("a native call number");
                let call = filter
                    .notified_call(nr)
                    .expect("every notified call has an answer");
                match call.answer {
                    Answer::Errno { code, .. } => SECCOMP_RET_ERRNO | code.unsigned_abs(),
                    Answer::Kill => SECCOMP_RET_KILL_PROCESS,
                }
            }
            verdict => verdict,
        }
    }

    fn errno(code: libc::c_int) -> u32 {
        SECCOMP_RET_ERRNO | code.unsigned_abs()
    }

    const THREAD_FLAGS: libc::c_int = libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID;

    /// Socket types the libc crate does not export for glibc targets (<bits/socket_type.h>).
    const SOCK_RDM: libc::c_int = 4;
    const SOCK_DCCP: libc::c_int = 6;
    const SOCK_PACKET: libc::c_int = 10;

    fn flags(bits: libc::c_int) -> u64 {
        u64::from(bits.unsigned_abs())
    }

    #[test]
    fn the_program_has_a_sane_length_and_checks_the_arch_first() {
        let program = builtin().program;
        assert!(
            (60..=400).contains(&program.len()),
            "{} instructions",
            program.len()
        );
        assert_eq!(program[0], load(SECCOMP_DATA_ARCH));
        assert_eq!(program[1], jump(BPF_JEQ, AUDIT_ARCH_NATIVE, 1, 0));
        assert_eq!(program[2], ret(SECCOMP_RET_USER_NOTIF));
        assert_eq!(program[3], load(SECCOMP_DATA_NR));
        let plain = builtin().errno_only;
        assert_eq!(plain[2], ret(SECCOMP_RET_KILL_PROCESS));
        assert_eq!(program.last(), Some(&ret(SECCOMP_RET_ALLOW)));
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let program = builtin().program;
        for (pc, ins) in program.iter().enumerate() {
            if ins.code == BPF_JMP | BPF_JA {
                assert!(pc + 1 + (ins.k as usize) < program.len(), "ja at {pc}");
            } else if ins.code & 0x07 == BPF_JMP {
                let furthest = pc + 1 + usize::from(ins.jt.max(ins.jf));
                assert!(furthest < program.len(), "jump at {pc} leaves the program");
            }
        }
    }

    #[test]
    fn every_builtin_entry_compiles_to_its_action() {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        let program = compile(&policy).expect("builtin policy compiles");
        for rule in policy.rules() {
            let Lookup::Native(nr) = syscall_number(&rule.syscall) else {
                assert_eq!(
                    syscall_number(&rule.syscall),
                    Lookup::OtherArch,
                    "{}",
                    rule.syscall
                );
                continue;
            };
            let arg0 = if !rule.when_flags_any.is_empty() {
                flags(libc::CLONE_NEWUSER)
            } else if !rule.allow_families.is_empty() {
                flags(libc::AF_VSOCK)
            } else if rule.when_pid_nonzero {
                1
            } else {
                0
            };
            let mut data = Data::call(nr.into(), arg0);
            for condition in &rule.when_args {
                data.args[usize::from(condition.index)] = u64::from(condition.values[0]);
            }
            let verdict = run(&program.program, &data);
            let expected = match rule.action {
                SeccompAction::KillProcess => SECCOMP_RET_USER_NOTIF,
                SeccompAction::Errno(_) if rule.record => SECCOMP_RET_USER_NOTIF,
                SeccompAction::Errno(e) => SECCOMP_RET_ERRNO | errno_code(e),
                SeccompAction::Ignore => SECCOMP_RET_ERRNO,
            };
            assert_eq!(verdict, expected, "{}", rule.syscall);
            let nr = i32::try_from(nr).expect("small");
            match (rule.action, rule.record) {
                (SeccompAction::Errno(e), true) => {
                    let call = program.notified_call(nr).expect("notified");
                    assert_eq!(call.name, rule.syscall);
                    assert!(matches!(call.answer, Answer::Errno { errno, .. } if errno == e));
                }
                (SeccompAction::KillProcess, _) => {
                    let call = program.notified_call(nr).expect("notified");
                    assert_eq!(
                        (call.answer, call.severity),
                        (Answer::Kill, DenySeverity::High)
                    );
                }
                _ => assert_eq!(program.notified_call(nr), None, "{}", rule.syscall),
            }
        }
    }

    /// Calls newer than the review (and numbers no kernel has) fail with ENOSYS in the
    /// kernel, in both programs; the newest reviewed one is decided by the policy as before.
    #[test]
    fn calls_newer_than_the_review_are_enosys() {
        let filter = builtin();
        for program in [&filter.program, &filter.errno_only] {
            for nr in [457, 458, 462, 467, 469, 1000, 0x3fff_ffff] {
                assert_eq!(
                    run(program, &Data::call(nr, 0)),
                    errno(libc::ENOSYS),
                    "{nr}"
                );
            }
            // futex_requeue, the newest reviewed.
            assert_eq!(run(program, &Data::call(456, 0)), SECCOMP_RET_ALLOW);
            // Hunt escape F1: below the review line, refused by the policy (unrecorded).
            assert_eq!(
                run(program, &Data::call(libc::SYS_memfd_secret, 0)),
                errno(libc::ENOSYS)
            );
        }
    }

    #[test]
    fn recorded_calls_and_kills_are_notified_and_probes_are_not() {
        let filter = builtin();
        let raw = |nr: libc::c_long| run(&filter.program, &Data::call(nr, 0));
        assert_eq!(raw(libc::SYS_mount), SECCOMP_RET_USER_NOTIF);
        assert_eq!(raw(libc::SYS_keyctl), SECCOMP_RET_USER_NOTIF);
        assert_eq!(raw(libc::SYS_clone3), errno(libc::ENOSYS));
        assert_eq!(raw(libc::SYS_io_uring_setup), errno(libc::EPERM));
        assert_eq!(raw(libc::SYS_init_module), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            answered(&filter, &Data::call(libc::SYS_init_module, 0)),
            SECCOMP_RET_KILL_PROCESS
        );
        let plain = |nr: libc::c_long| run(&filter.errno_only, &Data::call(nr, 0));
        assert_eq!(plain(libc::SYS_mount), errno(libc::EPERM));
        assert_eq!(plain(libc::SYS_clone3), errno(libc::ENOSYS));
        assert_eq!(plain(libc::SYS_init_module), SECCOMP_RET_KILL_PROCESS);
        for nr in 0..512 {
            for arg in [
                0,
                u64::MAX,
                flags(libc::O_WRONLY),
                flags(libc::CLONE_NEWUSER),
            ] {
                let data = Data::call(nr, arg);
                assert_ne!(
                    run(&filter.errno_only, &data),
                    SECCOMP_RET_USER_NOTIF,
                    "{nr}"
                );
            }
        }
        let mount = filter
            .notified_call(libc::SYS_mount as i32)
            .expect("mount is notified");
        assert_eq!(
            (mount.answer, mount.severity),
            (
                Answer::Errno {
                    errno: DenyErrno::Eperm,
                    code: libc::EPERM
                },
                DenySeverity::High
            )
        );
        let socket = filter
            .notified_call(libc::SYS_socket as i32)
            .expect("socket is notified");
        assert_eq!(
            (socket.answer, socket.severity),
            (
                Answer::Errno {
                    errno: DenyErrno::Eafnosupport,
                    code: libc::EAFNOSUPPORT
                },
                DenySeverity::Low
            )
        );
    }

    /// Hunt esc F1: a program stacked a filter of its own answering `SECCOMP_RET_USER_NOTIF`
    /// without a listener; the kernel keeps the newest filter's answer among equal ones, so the
    /// calls warden's filter notifies failed with ENOSYS, unrecorded, and kill entries no longer
    /// killed. Installing a filter is refused with EINVAL and recorded; the other operations of
    /// seccomp and prctl are not.
    #[test]
    fn a_filter_of_the_programs_own_is_refused_and_the_other_operations_are_not() {
        let filter = builtin();
        let call = |nr, args: [u64; 2]| {
            let mut data = Data::call(nr, args[0]);
            data.args[1] = args[1];
            data
        };
        let einval = errno(libc::EINVAL);
        let seccomp = |op: u64| answered(&filter, &call(libc::SYS_seccomp, [op, 0]));
        let set_mode_filter = u64::from(libc::SECCOMP_SET_MODE_FILTER);
        assert_eq!(seccomp(set_mode_filter), einval);
        // The operation is an unsigned int: high bits over it are the same operation.
        assert_eq!(seccomp((1 << 32) | set_mode_filter), einval);
        for op in [
            libc::SECCOMP_SET_MODE_STRICT,
            libc::SECCOMP_GET_ACTION_AVAIL,
            libc::SECCOMP_GET_NOTIF_SIZES,
        ] {
            assert_eq!(seccomp(u64::from(op)), SECCOMP_RET_ALLOW, "operation {op}");
        }
        assert_eq!(seccomp(1 << 32), SECCOMP_RET_ALLOW);
        let prctl =
            |option: u64, arg2: u64| answered(&filter, &call(libc::SYS_prctl, [option, arg2]));
        let set_seccomp = flags(libc::PR_SET_SECCOMP);
        let mode_filter = u64::from(libc::SECCOMP_MODE_FILTER);
        assert_eq!(prctl(set_seccomp, mode_filter), einval);
        assert_eq!(prctl((1 << 32) | set_seccomp, mode_filter), einval);
        // The mode is an unsigned long the kernel would refuse with high bits: stricter.
        assert_eq!(prctl(set_seccomp, (1 << 32) | mode_filter), einval);
        let mode_strict = u64::from(libc::SECCOMP_MODE_STRICT);
        assert_eq!(prctl(set_seccomp, mode_strict), SECCOMP_RET_ALLOW);
        for option in [
            libc::PR_GET_SECCOMP,
            libc::PR_SET_NAME,
            libc::PR_SET_NO_NEW_PRIVS,
            libc::PR_SET_PDEATHSIG,
        ] {
            assert_eq!(
                prctl(flags(option), mode_filter),
                SECCOMP_RET_ALLOW,
                "{option}"
            );
        }
        for nr in [libc::SYS_seccomp, libc::SYS_prctl] {
            let refused = if nr == libc::SYS_seccomp {
                call(nr, [set_mode_filter, 0])
            } else {
                call(nr, [set_seccomp, mode_filter])
            };
            assert_eq!(
                run(&filter.program, &refused),
                SECCOMP_RET_USER_NOTIF,
                "recorded"
            );
            assert_eq!(run(&filter.errno_only, &refused), einval);
            let rule = filter
                .notified_call(i32::try_from(nr).expect("small"))
                .expect("notified");
            assert_eq!(
                (rule.answer, rule.severity),
                (
                    Answer::Errno {
                        errno: DenyErrno::Einval,
                        code: libc::EINVAL
                    },
                    DenySeverity::Medium
                )
            );
        }
        // Calls after their code still see the call number.
        assert_eq!(
            answered(&filter, &Data::call(libc::SYS_ptrace, 0)),
            errno(libc::EPERM)
        );
    }

    /// Conditions on several arguments with several values: the call is denied exactly when
    /// every argument's low word is one of its values, in any order of the conditions.
    #[test]
    fn argument_conditions_deny_only_when_every_one_holds() {
        let text = "[[deny]]\nsyscall = \"prctl\"\nreason = \"r\"\n\
            [[deny.when_arg]]\nindex = 3\nvalues = [7, 0, 4294967295]\n\
            [[deny.when_arg]]\nindex = 0\nvalues = [22]\n\
            [[deny.when_arg]]\nindex = 5\nvalues = [1, 2]\n\
            [[deny]]\nsyscall = \"mount\"\nreason = \"r\"\n";
        let policy = SeccompPolicy::from_toml("t.toml", text).expect("valid file");
        let filter = compile(&policy).expect("compiles");
        let denied = errno(libc::EPERM);
        let values = [
            0,
            1,
            2,
            3,
            7,
            22,
            u64::from(u32::MAX),
            1 << 32,
            (1 << 32) | 22,
        ];
        for a0 in values {
            for a3 in values {
                for a5 in values {
                    let data = Data {
                        nr: libc::SYS_prctl,
                        arch: AUDIT_ARCH_NATIVE,
                        args: [a0, 0, 0, a3, 0, a5],
                    };
                    let low = |v: u64| v & u64::from(u32::MAX);
                    let holds = low(a0) == 22
                        && [7, 0, u64::from(u32::MAX)].contains(&low(a3))
                        && [1, 2].contains(&low(a5));
                    let expected = if holds { denied } else { SECCOMP_RET_ALLOW };
                    assert_eq!(
                        answered(&filter, &data),
                        expected,
                        "{a0:#x} {a3:#x} {a5:#x}"
                    );
                }
            }
        }
        assert_eq!(
            answered(&filter, &Data::call(libc::SYS_mount, 0)),
            errno(libc::EPERM)
        );
    }

    /// Bug hunt: the program shares its uid with the sandbox's init, and lowered the init's
    /// rlimits with `prlimit(1, ...)`; every later job of the sandbox inherited them.
    #[test]
    fn prlimit64_is_refused_only_for_another_process() {
        let filter = builtin();
        let prlimit = |pid: u64| answered(&filter, &Data::call(libc::SYS_prlimit64, pid));
        // pid 0, the caller itself: what glibc's getrlimit and setrlimit pass.
        assert_eq!(prlimit(0), SECCOMP_RET_ALLOW);
        for pid in [1, 2, 4_194_304, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(prlimit(pid), errno(libc::EPERM), "pid {pid:#x}");
        }
        // The kernel reads the pid as an int: high bits alone are pid 0.
        assert_eq!(prlimit(1 << 32), SECCOMP_RET_ALLOW);
        assert_eq!(prlimit((1 << 32) | 1), errno(libc::EPERM));
        let raw = |program: &[SockFilter], pid| run(program, &Data::call(libc::SYS_prlimit64, pid));
        assert_eq!(raw(&filter.program, 1), SECCOMP_RET_USER_NOTIF, "recorded");
        assert_eq!(raw(&filter.errno_only, 1), errno(libc::EPERM));
        assert_eq!(raw(&filter.errno_only, 0), SECCOMP_RET_ALLOW);
        let call = filter
            .notified_call(libc::SYS_prlimit64 as i32)
            .expect("prlimit64 is notified");
        assert_eq!(call.severity, DenySeverity::Medium);
        // The pid-less calls act on the caller alone.
        for nr in [libc::SYS_setrlimit, libc::SYS_getrlimit] {
            assert_eq!(answered(&filter, &Data::call(nr, 1)), SECCOMP_RET_ALLOW);
        }
        // Calls after prlimit64's code still see the call number, not the pid.
        assert_eq!(
            answered(&filter, &Data::call(libc::SYS_ptrace, 0)),
            errno(libc::EPERM)
        );
    }

    #[test]
    fn writes_are_suspended_for_the_init_and_reads_are_not() {
        let filter = builtin();
        let openat = |flags: u64| Data {
            nr: libc::SYS_openat,
            arch: AUDIT_ARCH_NATIVE,
            args: [libc::AT_FDCWD as u64, 0x1000, flags, 0, 0, 0],
        };
        let raw = |data: &Data| run(&filter.program, data);
        for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_CREAT, libc::O_TRUNC] {
            let flags = (flags | libc::O_CLOEXEC) as u64;
            assert_eq!(raw(&openat(flags)), SECCOMP_RET_USER_NOTIF, "{flags:#o}");
        }
        for flags in [
            libc::O_RDONLY,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        ] {
            assert_eq!(raw(&openat(flags as u64)), SECCOMP_RET_ALLOW, "{flags:#o}");
        }
        // The kernel reads the flags as an int: high bits alone are a read.
        assert_eq!(raw(&openat(1 << 32)), SECCOMP_RET_ALLOW);
        for nr in [
            libc::SYS_mkdirat,
            libc::SYS_unlinkat,
            libc::SYS_renameat2,
            libc::SYS_fchmod,
        ] {
            assert_eq!(raw(&Data::call(nr, 0)), SECCOMP_RET_USER_NOTIF, "{nr}");
            assert!(filter.notified_call(nr as i32).is_none());
        }
        assert!(filter.notifies());
        // Without a listener, writes run in the kernel.
        assert_eq!(
            run(&filter.errno_only, &openat(libc::O_WRONLY as u64)),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run(&filter.errno_only, &Data::call(libc::SYS_mkdirat, 0)),
            SECCOMP_RET_ALLOW
        );
    }

    #[test]
    fn the_interpreter_agrees_on_sample_calls() {
        let program = builtin();
        let verdict = |nr, arg0| answered(&program, &Data::call(nr, arg0));
        assert_eq!(verdict(libc::SYS_mount, 0), errno(libc::EPERM));
        assert_eq!(verdict(libc::SYS_read, 0), SECCOMP_RET_ALLOW);
        assert_eq!(verdict(libc::SYS_clone3, 0), errno(libc::ENOSYS));
        assert_eq!(verdict(libc::SYS_init_module, 0), SECCOMP_RET_KILL_PROCESS);
        for nr in [
            libc::SYS_execve,
            libc::SYS_mmap,
            libc::SYS_mprotect,
            libc::SYS_prctl,
            libc::SYS_connect,
        ] {
            assert_eq!(verdict(nr, 0), SECCOMP_RET_ALLOW, "syscall {nr}");
        }
    }

    #[test]
    fn clone_is_denied_only_with_namespace_flags() {
        let program = builtin();
        let clone = |arg0| answered(&program, &Data::call(libc::SYS_clone, arg0));
        let sigchld = flags(libc::SIGCHLD);
        assert_eq!(
            clone(flags(libc::CLONE_NEWUSER) | sigchld),
            errno(libc::EPERM)
        );
        assert_eq!(
            clone(flags(libc::CLONE_NEWNET | libc::CLONE_NEWNS)),
            errno(libc::EPERM)
        );
        assert_eq!(clone(flags(THREAD_FLAGS)), SECCOMP_RET_ALLOW);
        let fork = libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID;
        assert_eq!(clone(flags(fork) | sigchld), SECCOMP_RET_ALLOW);
        // The kernel ignores the high half of the flags; so does the filter.
        assert_eq!(clone(0xffff_ffff_0000_0000 | sigchld), SECCOMP_RET_ALLOW);
        // Calls after clone's block still see the call number, not the flags.
        assert_eq!(
            answered(&program, &Data::call(libc::SYS_ptrace, 0)),
            errno(libc::EPERM)
        );
    }

    /// Regression hunt: a program could send itself SIGXFSZ and pass for a write past the
    /// file size limit; every call that sends it, or has it sent later, fails with EPERM in
    /// the kernel (with or without a listener), and the same calls with other signals run.
    #[test]
    fn sending_sigxfsz_is_refused_and_other_signals_are_not() {
        let filter = builtin();
        let xfsz = u64::from(libc::SIGXFSZ.unsigned_abs());
        let term = u64::from(libc::SIGTERM.unsigned_abs());
        let call = |nr: libc::c_long, args: [u64; 6]| Data {
            nr,
            arch: AUDIT_ARCH_NATIVE,
            args,
        };
        let fork = flags(libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID);
        let f_setsig = 10;
        let refused = [
            call(libc::SYS_kill, [7, xfsz, 0, 0, 0, 0]),
            call(
                libc::SYS_kill,
                [0, xfsz | 0xffff_ffff_0000_0000, 0, 0, 0, 0],
            ),
            call(libc::SYS_tkill, [7, xfsz, 0, 0, 0, 0]),
            call(libc::SYS_tgkill, [7, 7, xfsz, 0, 0, 0]),
            call(libc::SYS_rt_sigqueueinfo, [7, xfsz, 0, 0, 0, 0]),
            call(libc::SYS_rt_tgsigqueueinfo, [7, 7, xfsz, 0, 0, 0]),
            call(libc::SYS_pidfd_send_signal, [3, xfsz, 0, 0, 0, 0]),
            call(libc::SYS_fcntl, [3, f_setsig, xfsz, 0, 0, 0]),
            call(libc::SYS_clone, [fork | xfsz, 0, 0, 0, 0, 0]),
        ];
        let allowed = [
            call(libc::SYS_kill, [7, term, 0, 0, 0, 0]),
            call(libc::SYS_kill, [xfsz, 0, 0, 0, 0, 0]),
            call(libc::SYS_tgkill, [7, xfsz, term, 0, 0, 0]),
            call(libc::SYS_pidfd_send_signal, [3, term, 0, 0, 0, 0]),
            call(libc::SYS_fcntl, [3, f_setsig, term, 0, 0, 0]),
            call(libc::SYS_fcntl, [3, libc::F_SETFD as u64, xfsz, 0, 0, 0]),
            call(
                libc::SYS_clone,
                [fork | flags(libc::SIGCHLD), 0, 0, 0, 0, 0],
            ),
            call(libc::SYS_clone, [flags(THREAD_FLAGS), 0, 0, 0, 0, 0]),
            call(libc::SYS_prctl, [1, xfsz, 0, 0, 0, 0]),
        ];
        for program in [&filter.program, &filter.errno_only] {
            for data in &refused {
                assert_eq!(
                    run(program, data),
                    errno(libc::EPERM),
                    "{} {:?}",
                    data.nr,
                    data.args
                );
            }
            for data in &allowed {
                assert_eq!(
                    run(program, data),
                    SECCOMP_RET_ALLOW,
                    "{} {:?}",
                    data.nr,
                    data.args
                );
            }
        }
    }

    /// Issue 8: a sandboxed program could open AF_VSOCK sockets, reaching the VM host's side.
    /// Bug hunt: AF_NETLINK sockets held gigabytes of kernel memory charged to no cgroup.
    #[test]
    fn socket_is_allowed_only_for_unix_inet_and_inet6() {
        let program = builtin();
        let socket = |family: libc::c_int, kind, protocol: libc::c_int| {
            let data = Data::socket(libc::SYS_socket, flags(family), kind, flags(protocol));
            answered(&program, &data)
        };
        let denied = errno(libc::EAFNOSUPPORT);
        for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            for kind in [libc::SOCK_STREAM, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC] {
                assert_eq!(socket(family, kind, 0), SECCOMP_RET_ALLOW, "{family}");
            }
        }
        assert_eq!(
            socket(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_TCP),
            SECCOMP_RET_ALLOW
        );
        for protocol in [
            libc::NETLINK_ROUTE,
            libc::NETLINK_AUDIT,
            libc::NETLINK_NETFILTER,
            libc::NETLINK_XFRM,
            libc::NETLINK_GENERIC,
            libc::NETLINK_KOBJECT_UEVENT,
            libc::NETLINK_SOCK_DIAG,
        ] {
            assert_eq!(
                socket(libc::AF_NETLINK, libc::SOCK_RAW, protocol),
                denied,
                "netlink protocol {protocol}"
            );
        }
        let allowed = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6];
        // Every family number the kernel knows (AF_MAX is 46 in Linux 6.x) and a margin.
        for family in 0..64 {
            let expected = if allowed.contains(&family) {
                SECCOMP_RET_ALLOW
            } else {
                denied
            };
            assert_eq!(socket(family, libc::SOCK_STREAM, 0), expected, "{family}");
        }
        for family in [libc::AF_VSOCK, libc::AF_PACKET, libc::AF_ALG, libc::AF_KEY] {
            assert_eq!(socket(family, libc::SOCK_DGRAM, 0), denied, "{family}");
        }
    }

    /// Hunt escape F2: the filter looked at the family alone. `AF_INET` with `SOCK_PACKET`
    /// became an AF_PACKET socket in the kernel, and MPTCP, UDP-Lite, SCTP, DCCP and L2TP
    /// reached (or loaded) their protocols' code. Inet sockets are narrowed to the types
    /// `SOCK_STREAM`, `SOCK_DGRAM` and `SOCK_RAW` (with their flags) and the protocols TCP,
    /// UDP and ICMP of the family (or 0, the type's default).
    #[test]
    fn inet_sockets_are_narrowed_to_tcp_udp_and_icmp() {
        let program = builtin();
        let socket = |family: libc::c_int, kind: libc::c_int, protocol: libc::c_int| {
            let data = Data::socket(libc::SYS_socket, flags(family), kind, flags(protocol));
            answered(&program, &data)
        };
        let denied = errno(libc::EAFNOSUPPORT);
        let flagged = [
            0,
            libc::SOCK_NONBLOCK,
            libc::SOCK_CLOEXEC,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        ];
        for (family, icmp) in [
            (libc::AF_INET, libc::IPPROTO_ICMP),
            (libc::AF_INET6, libc::IPPROTO_ICMPV6),
        ] {
            for flag in flagged {
                for (kind, protocol) in [
                    (libc::SOCK_STREAM, 0),
                    (libc::SOCK_STREAM, libc::IPPROTO_TCP),
                    (libc::SOCK_DGRAM, 0),
                    (libc::SOCK_DGRAM, libc::IPPROTO_UDP),
                    (libc::SOCK_DGRAM, icmp),
                    // Raw sockets need CAP_NET_RAW, which the kernel checks.
                    (libc::SOCK_RAW, icmp),
                ] {
                    assert_eq!(
                        socket(family, kind | flag, protocol),
                        SECCOMP_RET_ALLOW,
                        "{family} {kind:#x} {flag:#x} {protocol}"
                    );
                }
                for (kind, protocol) in [
                    // The kernel turns this into an AF_PACKET socket.
                    (SOCK_PACKET, 0),
                    (SOCK_PACKET, 0x300),
                    (libc::SOCK_SEQPACKET, libc::IPPROTO_SCTP),
                    (libc::SOCK_STREAM, libc::IPPROTO_SCTP),
                    (libc::SOCK_STREAM, libc::IPPROTO_MPTCP),
                    (libc::SOCK_DGRAM, libc::IPPROTO_UDPLITE),
                    (libc::SOCK_DGRAM, 115),  // IPPROTO_L2TP
                    (libc::SOCK_STREAM, 256), // IPPROTO_SMC
                    (SOCK_DCCP, libc::IPPROTO_DCCP),
                    (SOCK_RDM, 0),
                    (libc::SOCK_RAW, libc::IPPROTO_RAW),
                ] {
                    assert_eq!(
                        socket(family, kind | flag, protocol),
                        denied,
                        "{family} {kind:#x} {flag:#x} {protocol}"
                    );
                }
            }
            // Another bit beside the flags is no type the filter allows (the kernel: EINVAL).
            assert_eq!(socket(family, libc::SOCK_STREAM | 0x100, 0), denied);
            // The other family's ICMP is no protocol of this one.
            let other = if icmp == libc::IPPROTO_ICMP {
                libc::IPPROTO_ICMPV6
            } else {
                libc::IPPROTO_ICMP
            };
            assert_eq!(socket(family, libc::SOCK_DGRAM, other), denied, "{family}");
        }
        // Type and protocol are ints: high bits over an allowed one change nothing, and high
        // bits cannot hide a refused one.
        let raw = |kind: u64, protocol: u64| {
            let mut data = Data::socket(libc::SYS_socket, flags(libc::AF_INET), 0, protocol);
            data.args[1] = kind;
            answered(&program, &data)
        };
        let high = 0xffff_ffff_0000_0000;
        assert_eq!(raw(high | 1, high | 6), SECCOMP_RET_ALLOW);
        assert_eq!(raw(high | 10, 0), denied);
        assert_eq!(raw(1, high | 262), denied);
        // AF_UNIX is not narrowed.
        assert_eq!(
            socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0),
            SECCOMP_RET_ALLOW
        );
        // A refused inet socket is recorded.
        let data = Data::socket(libc::SYS_socket, flags(libc::AF_INET), SOCK_PACKET, 0);
        assert_eq!(run(&program.program, &data), SECCOMP_RET_USER_NOTIF);
        assert_eq!(run(&program.errno_only, &data), denied);
    }

    /// Hunt escape F3: `posix_fadvise(POSIX_FADV_DONTNEED)` evicted any readable host file from
    /// the page cache. That advice returns 0 without running (`SECCOMP_RET_ERRNO` with 0), in
    /// the kernel and unrecorded; the other advice runs.
    #[test]
    fn fadvise_dontneed_returns_zero_without_running() {
        let filter = builtin();
        // fadvise64(fd, offset, len, advice) on x86_64 and aarch64 alike.
        let fadvise = |advice: u64| {
            let mut data = Data::call(libc::SYS_fadvise64, 3);
            data.args[3] = advice;
            data
        };
        let dontneed = u64::from(libc::POSIX_FADV_DONTNEED.unsigned_abs());
        for program in [&filter.program, &filter.errno_only] {
            assert_eq!(run(program, &fadvise(dontneed)), SECCOMP_RET_ERRNO);
            assert_eq!(
                run(program, &fadvise((1 << 32) | dontneed)),
                SECCOMP_RET_ERRNO
            );
            for advice in [
                libc::POSIX_FADV_NORMAL,
                libc::POSIX_FADV_RANDOM,
                libc::POSIX_FADV_SEQUENTIAL,
                libc::POSIX_FADV_WILLNEED,
                libc::POSIX_FADV_NOREUSE,
            ] {
                let advice = u64::from(advice.unsigned_abs());
                assert_eq!(
                    run(program, &fadvise(advice)),
                    SECCOMP_RET_ALLOW,
                    "{advice}"
                );
            }
        }
        assert_eq!(filter.notified_call(libc::SYS_fadvise64 as i32), None);
    }

    #[test]
    fn the_family_is_read_from_the_low_half_as_the_kernel_reads_it() {
        let program = builtin();
        let socket = |family: u64, protocol: u64| {
            let data = Data::socket(libc::SYS_socket, family, libc::SOCK_STREAM, protocol);
            answered(&program, &data)
        };
        let denied = errno(libc::EAFNOSUPPORT);
        let high = 0xffff_ffff_0000_0000;
        // The kernel creates an AF_VSOCK socket for these: the filter must see AF_VSOCK too.
        assert_eq!(socket((1 << 32) | flags(libc::AF_VSOCK), 0), denied);
        assert_eq!(socket(high | flags(libc::AF_VSOCK), 0), denied);
        // ... and AF_UNIX for this one.
        assert_eq!(socket(high | flags(libc::AF_UNIX), 0), SECCOMP_RET_ALLOW);
        assert_eq!(socket((1 << 32) | flags(libc::AF_NETLINK), 0), denied);
        // A sign-extended negative family is no family at all.
        assert_eq!(socket(u64::MAX, 0), denied);
    }

    #[test]
    fn socketpair_is_allowed_only_for_unix() {
        let program = builtin();
        let socketpair = |family: libc::c_int| {
            let data = Data::socket(libc::SYS_socketpair, flags(family), libc::SOCK_STREAM, 0);
            answered(&program, &data)
        };
        assert_eq!(socketpair(libc::AF_UNIX), SECCOMP_RET_ALLOW);
        for family in [
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
            libc::AF_VSOCK,
            libc::AF_UNSPEC,
        ] {
            assert_eq!(socketpair(family), errno(libc::EAFNOSUPPORT), "{family}");
        }
    }

    #[test]
    fn family_conditions_compile_in_any_order() {
        let text = "[[deny]]\nsyscall = \"socket\"\naction = \"kill\"\nreason = \"r\"\n\
            [[deny.allow_family]]\nfamily = \"AF_NETLINK\"\nprotocols = [\"NETLINK_ROUTE\"]\nreason = \"r\"\n\
            [[deny.allow_family]]\nfamily = \"AF_INET6\"\nreason = \"r\"\n\
            [[deny]]\nsyscall = \"mount\"\nreason = \"r\"\n";
        let policy = SeccompPolicy::from_toml("t.toml", text).expect("valid file");
        let program = compile(&policy).expect("compiles");
        let socket = |family: libc::c_int, protocol: libc::c_int| {
            let data = Data::socket(
                libc::SYS_socket,
                flags(family),
                libc::SOCK_RAW,
                flags(protocol),
            );
            answered(&program, &data)
        };
        assert_eq!(
            socket(libc::AF_NETLINK, libc::NETLINK_ROUTE),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            socket(libc::AF_NETLINK, libc::NETLINK_AUDIT),
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(socket(libc::AF_INET6, 0), SECCOMP_RET_ALLOW);
        assert_eq!(socket(libc::AF_INET, 0), SECCOMP_RET_KILL_PROCESS);
        // The protocol is an int too: only its low half counts.
        let high = 0xffff_ffff_0000_0000;
        let raw = |protocol: u64| {
            let data = Data::socket(
                libc::SYS_socket,
                flags(libc::AF_NETLINK),
                libc::SOCK_RAW,
                protocol,
            );
            answered(&program, &data)
        };
        assert_eq!(raw(high), SECCOMP_RET_ALLOW);
        assert_eq!(raw(high | 9), SECCOMP_RET_KILL_PROCESS);
        // The block after the socket rule still sees the call number.
        assert_eq!(
            answered(&program, &Data::call(libc::SYS_mount, 0)),
            errno(libc::EPERM)
        );
        assert_eq!(
            answered(&program, &Data::call(libc::SYS_read, 0)),
            SECCOMP_RET_ALLOW
        );
    }

    /// Types and protocols, alone or together, in any order of the families: each family's
    /// checks apply to it alone, and a family narrowed to types alone is allowed on its type.
    #[test]
    fn type_and_protocol_conditions_compile_in_any_order() {
        let text = "[[deny]]\nsyscall = \"socket\"\nerrno = \"EACCES\"\nreason = \"r\"\n\
            [[deny.allow_family]]\nfamily = \"AF_UNIX\"\ntypes = [\"SOCK_SEQPACKET\"]\nreason = \"r\"\n\
            [[deny.allow_family]]\nfamily = \"AF_INET6\"\nreason = \"r\"\n\
            [[deny.allow_family]]\nfamily = \"AF_INET\"\ntypes = [\"SOCK_DGRAM\", \"SOCK_RAW\"]\n\
            protocols = [\"IPPROTO_UDP\", \"IPPROTO_ICMP\"]\nreason = \"r\"\n\
            [[deny.allow_family]]\nfamily = \"AF_NETLINK\"\nprotocols = [\"NETLINK_ROUTE\"]\nreason = \"r\"\n\
            [[deny]]\nsyscall = \"mount\"\nreason = \"r\"\n";
        let policy = SeccompPolicy::from_toml("t.toml", text).expect("valid file");
        let filter = compile(&policy).expect("compiles");
        let denied = errno(libc::EACCES);
        let socket = |family: libc::c_int, kind: u64, protocol: libc::c_int| {
            let mut data = Data::socket(libc::SYS_socket, flags(family), 0, flags(protocol));
            data.args[1] = kind;
            answered(&filter, &data)
        };
        for kind in socket_types() {
            let low = u32::try_from(kind & u64::from(u32::MAX)).expect("low half") & !TYPE_FLAGS;
            for protocol in [0, 1, 6, 17, 58, 262] {
                let unix = if low == libc::SOCK_SEQPACKET.unsigned_abs() {
                    SECCOMP_RET_ALLOW
                } else {
                    denied
                };
                assert_eq!(socket(libc::AF_UNIX, kind, protocol), unix, "{kind:#x}");
                let inet = [libc::SOCK_DGRAM, libc::SOCK_RAW].contains(&low.cast_signed())
                    && [libc::IPPROTO_UDP, libc::IPPROTO_ICMP].contains(&protocol);
                let inet = if inet { SECCOMP_RET_ALLOW } else { denied };
                assert_eq!(
                    socket(libc::AF_INET, kind, protocol),
                    inet,
                    "{kind:#x} {protocol}"
                );
                assert_eq!(socket(libc::AF_INET6, kind, protocol), SECCOMP_RET_ALLOW);
                let netlink = if protocol == 0 {
                    SECCOMP_RET_ALLOW
                } else {
                    denied
                };
                assert_eq!(socket(libc::AF_NETLINK, kind, protocol), netlink);
                assert_eq!(socket(libc::AF_PACKET, kind, protocol), denied);
            }
        }
        assert_eq!(
            answered(&filter, &Data::call(libc::SYS_mount, 0)),
            errno(libc::EPERM)
        );
    }

    #[test]
    fn foreign_abis_are_killed() {
        let program = builtin();
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        let i386_getpid = Data {
            nr: 20,
            arch: AUDIT_ARCH_I386,
            args: [0; 6],
        };
        assert_eq!(answered(&program, &i386_getpid), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(run(&program.program, &i386_getpid), SECCOMP_RET_USER_NOTIF);
        assert_eq!(
            run(&program.errno_only, &i386_getpid),
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            foreign_call(AUDIT_ARCH_I386, 11).as_deref(),
            Some("i386 system call 11")
        );
        assert_eq!(foreign_call(AUDIT_ARCH_NATIVE, libc::SYS_read as i32), None);
        #[cfg(target_arch = "x86_64")]
        {
            let x32_read = Data::call(0x4000_0000 | libc::SYS_read, 0);
            assert_eq!(answered(&program, &x32_read), SECCOMP_RET_KILL_PROCESS);
            let x32_mount = Data::call(0x4000_0000 | libc::SYS_mount, 0);
            assert_eq!(answered(&program, &x32_mount), SECCOMP_RET_KILL_PROCESS);
            assert_eq!(
                run(&program.errno_only, &x32_mount),
                SECCOMP_RET_KILL_PROCESS
            );
            let x32 = i32::try_from(0x4000_0000 | libc::SYS_execve).expect("small");
            assert_eq!(
                foreign_call(AUDIT_ARCH_NATIVE, x32).as_deref(),
                Some("x32 system call 59")
            );
            assert_eq!(
                foreign_call(AUDIT_ARCH_NATIVE, -1).as_deref(),
                Some("system call -1")
            );
        }
    }

    #[test]
    fn unknown_names_are_errors_and_other_arch_names_are_skipped() {
        let unknown = "[[deny]]\nsyscall = \"frobnicate\"\nreason = \"r\"\n";
        let policy = SeccompPolicy::from_toml("t.toml", unknown).expect("valid file");
        assert!(
            matches!(compile(&policy), Err(SeccompError::UnknownSyscall { name }) if name == "frobnicate")
        );
        for name in OTHER_ARCH_ONLY {
            let text = format!("[[deny]]\nsyscall = \"{name}\"\nreason = \"r\"\n");
            let policy = SeccompPolicy::from_toml("t.toml", &text).expect("valid file");
            assert_eq!(
                compile(&policy).expect("compiles"),
                compile(&empty()).expect("compiles")
            );
        }
    }

    #[test]
    fn the_table_has_no_duplicates() {
        for (i, (name, nr)) in SYSCALLS.iter().enumerate() {
            for (other, other_nr) in &SYSCALLS[i + 1..] {
                assert!(name != other && nr != other_nr, "{name} and {other} clash");
            }
            assert!(
                !OTHER_ARCH_ONLY.contains(name),
                "{name} is both native and foreign"
            );
        }
    }

    fn empty() -> SeccompPolicy {
        SeccompPolicy::from_toml("t.toml", "").expect("an empty policy is valid")
    }

    /// The layout before the search, as the reference: per body, `jeq nr` over it, then allow.
    fn linear(bodies: &[(u32, Vec<SockFilter>)], kill: u32) -> Vec<SockFilter> {
        let mut program = prologue(kill);
        for (nr, body) in bodies {
            let skip = u8::try_from(body.len()).expect("short bodies");
            program.push(jump(BPF_JEQ, *nr, 0, skip));
            program.extend_from_slice(body);
        }
        program.push(ret(SECCOMP_RET_ALLOW));
        program
    }

    /// Argument values that reach every branch of the bodies: each bit alone, the flags and
    /// families the policy names, zero and all ones.
    fn probe_values() -> Vec<u64> {
        let mut values = vec![0, u64::MAX, u64::from(u32::MAX), 1 << 32];
        values.extend((0..32).map(|bit| 1u64 << bit));
        for family in [
            libc::AF_UNIX,
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
            libc::AF_PACKET,
            libc::AF_VSOCK,
            libc::NETLINK_ROUTE,
            libc::O_WRONLY | libc::O_CREAT,
            libc::PR_SET_SECCOMP,
            libc::SIGXFSZ,
        ] {
            values.push(flags(family));
        }
        values.extend(socket_types().into_iter().chain(socket_protocols()));
        values
    }

    /// Socket types with and without their flags, allowed and refused ones.
    fn socket_types() -> Vec<u64> {
        let mut values = Vec::new();
        for kind in [
            libc::SOCK_STREAM,
            libc::SOCK_DGRAM,
            libc::SOCK_RAW,
            SOCK_RDM,
            libc::SOCK_SEQPACKET,
            SOCK_DCCP,
            SOCK_PACKET,
        ] {
            for flag in [
                0,
                libc::SOCK_NONBLOCK,
                libc::SOCK_CLOEXEC,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0x100,
            ] {
                values.push(flags(kind | flag));
            }
        }
        values.push((1 << 32) | flags(libc::SOCK_STREAM));
        values.push((1 << 32) | flags(SOCK_PACKET));
        values
    }

    /// Protocols of the families the policy allows and ones it refuses.
    fn socket_protocols() -> Vec<u64> {
        let mut values: Vec<u64> = [
            libc::IPPROTO_IP,
            libc::IPPROTO_ICMP,
            libc::IPPROTO_TCP,
            libc::IPPROTO_UDP,
            libc::IPPROTO_ICMPV6,
            libc::IPPROTO_MPTCP,
            libc::IPPROTO_UDPLITE,
            libc::IPPROTO_SCTP,
            libc::IPPROTO_DCCP,
            libc::IPPROTO_RAW,
            115, // IPPROTO_L2TP
        ]
        .into_iter()
        .map(flags)
        .collect();
        values.push((1 << 32) | flags(libc::IPPROTO_TCP));
        values.push((1 << 32) | flags(libc::IPPROTO_MPTCP));
        values
    }

    #[test]
    fn the_search_decides_every_call_as_the_linear_list_did() {
        let policy = SeccompPolicy::builtin().expect("builtin policy is valid");
        let (mut bodies, mut errno_bodies) = (Vec::new(), Vec::new());
        for rule in policy.rules() {
            if let Lookup::Native(nr) = syscall_number(&rule.syscall) {
                bodies.push((nr, rule_body(rule, true)));
                errno_bodies.push((nr, rule_body(rule, false)));
            }
        }
        let signals = crate::file_size_signal::filter_bodies();
        bodies.extend(signals.iter().cloned());
        errno_bodies.extend(signals);
        bodies.extend(crate::writes::filter_bodies());
        let filter = compile(&policy).expect("builtin policy compiles");
        let pairs = [
            (&filter.program, linear(&bodies, SECCOMP_RET_USER_NOTIF)),
            (
                &filter.errno_only,
                linear(&errno_bodies, SECCOMP_RET_KILL_PROCESS),
            ),
        ];
        for (program, reference) in &pairs {
            assert!(
                program.len() < reference.len() + reference.len() / 4,
                "{} instructions against {}",
                program.len(),
                reference.len()
            );
        }
        let values = probe_values();
        let mut probes = Vec::new();
        for nr in (0..600).chain([0x4000_0000, 0x4000_0001, -1]) {
            for at in 0..6 {
                for value in &values {
                    let mut data = Data::call(nr, 0);
                    data.args[at] = *value;
                    probes.push(data);
                }
            }
            // Both arguments a socket call reads: the family and the protocol; and both a
            // prctl condition reads: the option and its mode.
            for family in &values {
                for protocol in [0, flags(libc::NETLINK_ROUTE), 1, u64::MAX] {
                    let mut data = Data::call(nr, *family);
                    data.args[2] = protocol;
                    probes.push(data);
                }
                for mode in [0, 1, 2, (1 << 32) | 2] {
                    let mut data = Data::call(nr, *family);
                    data.args[1] = mode;
                    probes.push(data);
                }
            }
        }
        // The three arguments a socket call reads, together.
        for nr in [libc::SYS_socket, libc::SYS_socketpair] {
            for family in [
                libc::AF_UNIX,
                libc::AF_INET,
                libc::AF_INET6,
                libc::AF_NETLINK,
                libc::AF_PACKET,
            ] {
                for kind in socket_types() {
                    for protocol in socket_protocols() {
                        let mut data = Data::call(nr, flags(family));
                        data.args[1] = kind;
                        data.args[2] = protocol;
                        probes.push(data);
                    }
                }
            }
        }
        assert!(probes.len() > 100_000);
        for data in &probes {
            for (program, reference) in &pairs {
                assert_eq!(
                    run(program, data),
                    run(reference, data),
                    "call {}, args {:x?}",
                    data.nr,
                    data.args
                );
            }
        }
    }

    #[test]
    fn long_code_and_long_searches_jump_through_ja() {
        // 40 calls, one with a body longer than an 8-bit offset: jumps over it and over the
        // lower halves of the search need `ja`.
        let mut bodies: Vec<(u32, Vec<SockFilter>)> = (0..40u32)
            .map(|nr| (nr * 3, vec![ret(SECCOMP_RET_ERRNO | nr)]))
            .collect();
        let long: Vec<SockFilter> = (0..300)
            .flat_map(|_| [jump(BPF_JEQ, u32::MAX, 0, 0)])
            .chain([ret(SECCOMP_RET_KILL_PROCESS)])
            .collect();
        bodies.push((7, long));
        let mut program = prologue(SECCOMP_RET_KILL_PROCESS);
        program.extend(dispatch(&bodies));
        assert!(program.iter().any(|ins| ins.code == BPF_JMP | BPF_JA));
        let reference = linear_unchecked(&bodies);
        for nr in 0..130 {
            let data = Data::call(nr, 0);
            assert_eq!(run(&program, &data), run(&reference, &data), "call {nr}");
        }
    }

    /// [`linear`] with `ja` over long bodies.
    fn linear_unchecked(bodies: &[(u32, Vec<SockFilter>)]) -> Vec<SockFilter> {
        let mut program = prologue(SECCOMP_RET_KILL_PROCESS);
        for (nr, body) in bodies {
            program.push(jump(BPF_JEQ, *nr, 1, 0));
            program.push(always(body.len()));
            program.extend_from_slice(body);
        }
        program.push(ret(SECCOMP_RET_ALLOW));
        program
    }
}
