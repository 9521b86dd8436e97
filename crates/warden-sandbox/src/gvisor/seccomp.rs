//! The seccomp policy as an OCI `linux.seccomp` section, which runsc enforces inside its own
//! kernel (`--oci-seccomp`). runsc 0.0~20221219 applies it to the container's own process (the
//! lifeline keeper) and what that starts, not to `runsc exec`'s jobs: each job installs the
//! native backend's compiled filter itself (`filter_exec.rs`). The section keeps the policy in
//! the bundle for every process runsc starts from it; a runsc that honours `errnoRet` answers
//! every errno rule exactly.
//!
//! OCI names calls, not numbers, and compares whole 64-bit arguments. The conversion:
//!
//! - the default action allows; each denied call is one or more entries, all with the rule's
//!   action (an entry's `args` must all match, and separate entries for one call are tried in
//!   turn, so "any of" becomes several entries);
//! - a `clone` flags condition: one entry per flag, `(flags & flag) == flag`;
//! - a pid condition: one entry, `pid != 0`;
//! - argument conditions: one entry per combination of one value of each condition, each
//!   value compared as the native filter does, on the argument's low 32 bits
//!   (`(arg & 0xffffffff) == value`);
//! - a rule on `seccomp` is left out: a one-job sandbox's loader is the container's own
//!   process and installs the job's filter under this section, which would refuse it that.
//!   The job's filter carries the rule (`filter_exec.rs`), so the program meets it all the same;
//! - a family condition: entries that match every family *outside* the allowed set (below the
//!   lowest, each number between two allowed ones, above the highest); for a family narrowed to
//!   types, entries matching that family with each type outside its set, compared on the bits
//!   that choose the type (`(type & 0xf) == t`, the kernel's `SOCK_TYPE_MASK`: the flags and
//!   the kernel's `EINVAL` for any other bit do not matter there); and for a family narrowed to
//!   protocols, entries matching that family with a protocol outside its set.
//! - an `ignore` rule: `SCMP_ACT_ERRNO` with `errnoRet` 0, which returns 0 without running
//!   the call where runsc reads `errnoRet`; runsc 0.0~20221219 answers EPERM instead, which
//!   only the container's own process meets (the jobs run the native filter, which ignores
//!   the call as the policy says).
//!   runsc ORs comparisons of one argument within an entry (runc's legacy behaviour), so no
//!   entry compares one argument twice.
//!
//! Where runsc 0.0~20221219 (Debian 12's) falls short of the policy, and what this does:
//!
//! - it ignores `errnoRet` and answers every `SCMP_ACT_ERRNO` with EPERM. `ENOSYS` rules
//!   therefore use `SCMP_ACT_TRACE`, which fails the call with ENOSYS when no tracer is
//!   attached (seccomp(2); gVisor's kernel does the same), and the policy denies `ptrace`, so
//!   none can be: glibc falls back from `clone3` to `clone` only on ENOSYS, and threads would
//!   fail on EPERM. `EAFNOSUPPORT`, `EACCES` and `EINVAL` rules carry `errnoRet` (a runsc that reads it
//!   answers exactly) and fail with EPERM on this one;
//! - it has no `SCMP_ACT_KILL_PROCESS` (the container would not start): `kill` rules use
//!   `SCMP_ACT_KILL`, which kills the calling thread with SIGSYS, the whole program when it has
//!   one thread;
//! - a family or a pid with high bits set is compared whole: `(1 << 32) | AF_UNIX` and
//!   `prlimit64((1 << 32) | 0, ...)` are denied here, where the native filter reads the low
//!   half as the kernel does and allows them. Stricter, never wider;
//! - it checks no ABI: gVisor implements neither i386 nor x32 system calls (they fail with an
//!   error instead of killing the program, as the native filter does).
//!
//! See <https://github.com/opencontainers/runtime-spec/blob/main/config-linux.md#seccomp>.

use serde_json::{json, Value};
use warden_core::seccomp_policy::{
    AllowedFamily, ArgCondition, DenyErrno, DenyRule, NamespaceFlag, SeccompAction, SocketFamily,
    SocketProtocol,
};
use warden_core::SeccompPolicy;

/// The native architecture's OCI name.
#[cfg(target_arch = "x86_64")]
const ARCH: &str = "SCMP_ARCH_X86_64";
/// The native architecture's OCI name.
#[cfg(target_arch = "aarch64")]
const ARCH: &str = "SCMP_ARCH_AARCH64";

/// The `linux.seccomp` section for `policy`.
pub(crate) fn oci_seccomp(policy: &SeccompPolicy) -> Value {
    let syscalls: Vec<Value> = policy
        .rules()
        .iter()
        .filter(|rule| rule.syscall != LOADER_CALL)
        .flat_map(rule_entries)
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [ARCH],
        "syscalls": syscalls,
    })
}

/// The call the loader installs the job's filter with (`warden_sys::seccomp::install_filter`),
/// which no rule of this section may refuse.
const LOADER_CALL: &str = "seccomp";

/// The entries of one rule: each a set of argument comparisons that must all hold.
fn rule_entries(rule: &DenyRule) -> Vec<Value> {
    let conditions: Vec<Vec<Value>> = if !rule.when_flags_any.is_empty() {
        rule.when_flags_any
            .iter()
            .map(|flag| {
                let bit = flag_bit(*flag);
                vec![json!({"index": 0, "value": bit, "valueTwo": bit, "op": "SCMP_CMP_MASKED_EQ"})]
            })
            .collect()
    } else if !rule.allow_families.is_empty() {
        family_conditions(&rule.allow_families)
    } else if rule.when_pid_nonzero {
        vec![vec![json!({"index": 0, "value": 0, "op": "SCMP_CMP_NE"})]]
    } else if !rule.when_args.is_empty() {
        arg_conditions(&rule.when_args)
    } else {
        vec![Vec::new()]
    };
    conditions
        .into_iter()
        .map(|args| {
            let mut entry = action(rule.action);
            entry["names"] = json!([rule.syscall]);
            if !args.is_empty() {
                entry["args"] = Value::Array(args);
            }
            entry
        })
        .collect()
}

/// The OCI action (and `errnoRet`) of a rule; see the module documentation for why ENOSYS is
/// a trace and a kill kills the thread.
fn action(action: SeccompAction) -> Value {
    match action {
        SeccompAction::KillProcess => json!({"action": "SCMP_ACT_KILL"}),
        SeccompAction::Errno(DenyErrno::Enosys) => json!({"action": "SCMP_ACT_TRACE"}),
        SeccompAction::Errno(errno) => {
            json!({"action": "SCMP_ACT_ERRNO", "errnoRet": errno_code(errno)})
        }
        SeccompAction::Ignore => json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 0}),
    }
}

/// One entry per combination of a value of each condition: runsc ORs the entries of a call,
/// and ANDs the comparisons of one entry (each on another argument).
fn arg_conditions(conditions: &[ArgCondition]) -> Vec<Vec<Value>> {
    let mut entries: Vec<Vec<Value>> = vec![Vec::new()];
    for condition in conditions {
        entries = entries
            .into_iter()
            .flat_map(|entry| {
                condition.values.iter().map(move |value| {
                    let mut entry = entry.clone();
                    entry.push(json!({
                        "index": condition.index,
                        "value": u32::MAX,
                        "valueTwo": value,
                        "op": "SCMP_CMP_MASKED_EQ",
                    }));
                    entry
                })
            })
            .collect();
    }
    entries
}

/// Conditions matching every call whose family is not allowed, or whose type or protocol is
/// not allowed for its family.
fn family_conditions(families: &[AllowedFamily]) -> Vec<Vec<Value>> {
    let numbers: Vec<u64> = families.iter().map(|f| family_number(f.family)).collect();
    let mut conditions: Vec<Vec<Value>> =
        outside(0, &numbers).into_iter().map(|c| vec![c]).collect();
    for family in families.iter().filter(|f| !f.types.is_empty()) {
        let is_family =
            json!({"index": 0, "value": family_number(family.family), "op": "SCMP_CMP_EQ"});
        let allowed: Vec<u32> = family
            .types
            .iter()
            .map(|t| crate::seccomp::type_number(*t))
            .collect();
        for kind in (0..=SOCK_TYPE_MASK).filter(|k| !allowed.contains(k)) {
            let is_type = json!({
                "index": 1,
                "value": SOCK_TYPE_MASK,
                "valueTwo": kind,
                "op": "SCMP_CMP_MASKED_EQ",
            });
            conditions.push(vec![is_family.clone(), is_type]);
        }
    }
    for family in families.iter().filter(|f| !f.protocols.is_empty()) {
        let protocols: Vec<u64> = family
            .protocols
            .iter()
            .map(|p| protocol_number(*p))
            .collect();
        let is_family =
            json!({"index": 0, "value": family_number(family.family), "op": "SCMP_CMP_EQ"});
        for protocol in outside(2, &protocols) {
            conditions.push(vec![is_family.clone(), protocol]);
        }
    }
    conditions
}

/// Single comparisons of argument `index` that together match every value not in `allowed`:
/// below the lowest, each value between two allowed ones, above the highest. The closed
/// family and protocol tables keep the gaps small (families are below 46).
fn outside(index: u32, allowed: &[u64]) -> Vec<Value> {
    let mut sorted = allowed.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let (Some(&lowest), Some(&highest)) = (sorted.first(), sorted.last()) else {
        return Vec::new();
    };
    let compare = |op: &str, value: u64| json!({"index": index, "value": value, "op": op});
    let mut conditions = Vec::new();
    if lowest > 0 {
        conditions.push(compare("SCMP_CMP_LT", lowest));
    }
    for pair in sorted.windows(2) {
        conditions.extend((pair[0] + 1..pair[1]).map(|value| compare("SCMP_CMP_EQ", value)));
    }
    conditions.push(compare("SCMP_CMP_GT", highest));
    conditions
}

fn errno_code(errno: DenyErrno) -> i32 {
    match errno {
        DenyErrno::Eperm => libc::EPERM,
        DenyErrno::Eacces => libc::EACCES,
        DenyErrno::Enosys => libc::ENOSYS,
        DenyErrno::Eafnosupport => libc::EAFNOSUPPORT,
        DenyErrno::Einval => libc::EINVAL,
    }
}

fn family_number(family: SocketFamily) -> u64 {
    let number = match family {
        SocketFamily::Unix => libc::AF_UNIX,
        SocketFamily::Inet => libc::AF_INET,
        SocketFamily::Inet6 => libc::AF_INET6,
        SocketFamily::Netlink => libc::AF_NETLINK,
    };
    u64::from(number.unsigned_abs())
}

/// The bits of the type argument that choose the type (the kernel's `SOCK_TYPE_MASK`).
const SOCK_TYPE_MASK: u32 = 0xf;

fn protocol_number(protocol: SocketProtocol) -> u64 {
    let number = match protocol {
        SocketProtocol::NetlinkRoute => libc::NETLINK_ROUTE,
        SocketProtocol::Ip => libc::IPPROTO_IP,
        SocketProtocol::Icmp => libc::IPPROTO_ICMP,
        SocketProtocol::Tcp => libc::IPPROTO_TCP,
        SocketProtocol::Udp => libc::IPPROTO_UDP,
        SocketProtocol::Icmpv6 => libc::IPPROTO_ICMPV6,
    };
    u64::from(number.unsigned_abs())
}

fn flag_bit(flag: NamespaceFlag) -> u64 {
    u64::from(crate::seccomp::flag_bit(flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the OCI section decides for one call, evaluated as runsc does: the first entry
    /// naming the call whose comparisons all hold.
    fn decide(section: &Value, name: &str, args: [u64; 6]) -> Value {
        for entry in section["syscalls"].as_array().expect("syscalls") {
            if entry["names"][0] != name {
                continue;
            }
            let holds = entry["args"].as_array().into_iter().flatten().all(|c| {
                let arg =
                    args[usize::try_from(c["index"].as_u64().expect("index")).expect("small")];
                let value = c["value"].as_u64().expect("value");
                match c["op"].as_str().expect("op") {
                    "SCMP_CMP_EQ" => arg == value,
                    "SCMP_CMP_NE" => arg != value,
                    "SCMP_CMP_LT" => arg < value,
                    "SCMP_CMP_GT" => arg > value,
                    "SCMP_CMP_MASKED_EQ" => arg & value == c["valueTwo"].as_u64().expect("two"),
                    other => panic!("unexpected op {other}"),
                }
            });
            if holds {
                return entry.clone();
            }
        }
        json!({"action": "SCMP_ACT_ALLOW"})
    }

    fn builtin() -> Value {
        oci_seccomp(&SeccompPolicy::builtin().expect("builtin policy"))
    }

    fn call(name: &str, arg0: u64, arg2: u64) -> String {
        let entry = decide(&builtin(), name, [arg0, 1, arg2, 0, 0, 0]);
        match entry["errnoRet"].as_i64() {
            Some(errno) => format!("{} {errno}", entry["action"].as_str().expect("action")),
            None => entry["action"].as_str().expect("action").to_owned(),
        }
    }

    #[test]
    fn every_rule_of_the_builtin_policy_is_in_the_section_with_its_action() {
        let policy = SeccompPolicy::builtin().expect("builtin policy");
        let section = oci_seccomp(&policy);
        assert_eq!(section["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(section["architectures"], json!([ARCH]));
        for rule in policy.rules().iter().filter(|r| r.syscall != LOADER_CALL) {
            let entries: Vec<&Value> = section["syscalls"]
                .as_array()
                .expect("syscalls")
                .iter()
                .filter(|e| e["names"] == json!([rule.syscall]))
                .collect();
            assert!(!entries.is_empty(), "{} is missing", rule.syscall);
            for entry in entries {
                let mut expected = action(rule.action);
                expected["names"] = json!([rule.syscall]);
                if let Some(args) = entry.get("args") {
                    expected["args"] = args.clone();
                }
                assert_eq!(*entry, expected, "{}", rule.syscall);
            }
        }
    }

    #[test]
    fn errors_kills_and_enosys_map_to_what_runsc_can_enforce() {
        assert_eq!(call("mount", 0, 0), "SCMP_ACT_ERRNO 1");
        assert_eq!(call("clone3", 0, 0), "SCMP_ACT_TRACE");
        assert_eq!(call("init_module", 0, 0), "SCMP_ACT_KILL");
        assert_eq!(call("read", 0, 0), "SCMP_ACT_ALLOW");
    }

    #[test]
    fn clone_is_denied_only_with_a_namespace_flag() {
        let sigchld = u64::from(libc::SIGCHLD.unsigned_abs());
        let flag = |f: libc::c_int| u64::from(f.unsigned_abs());
        for f in [
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWNS,
            libc::CLONE_NEWNET,
            crate::seccomp::CLONE_NEWTIME,
        ] {
            assert_eq!(
                call("clone", flag(f) | sigchld, 0),
                "SCMP_ACT_ERRNO 1",
                "{f:#x}"
            );
        }
        let thread = flag(libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SETTLS);
        assert_eq!(call("clone", thread, 0), "SCMP_ACT_ALLOW");
        assert_eq!(call("clone", sigchld, 0), "SCMP_ACT_ALLOW");
    }

    #[test]
    fn only_the_allowed_socket_families_get_through() {
        let denied = "SCMP_ACT_ERRNO 97";
        let allowed = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6];
        for family in 0..64 {
            let expected = if allowed.contains(&family) {
                "SCMP_ACT_ALLOW"
            } else {
                denied
            };
            assert_eq!(
                call("socket", u64::from(family.unsigned_abs()), 0),
                expected,
                "{family}"
            );
        }
        let netlink = u64::from(libc::AF_NETLINK.unsigned_abs());
        assert_eq!(call("socket", netlink, 0), denied, "NETLINK_ROUTE");
        assert_eq!(call("socket", netlink, 9), denied);
        assert_eq!(
            call("socket", (1 << 32) | 40, 0),
            denied,
            "AF_VSOCK with high bits"
        );
        assert_eq!(call("socket", u64::MAX, 0), denied);
        assert_eq!(call("socketpair", 1, 0), "SCMP_ACT_ALLOW");
        assert_eq!(call("socketpair", 2, 0), denied);
        assert_eq!(call("socketpair", 0, 0), denied);
    }

    /// Hunt escape F2: inet sockets are narrowed to stream, datagram and raw sockets of TCP,
    /// UDP and the family's ICMP (or 0), the type read without its flags.
    #[test]
    fn inet_sockets_are_narrowed_to_their_types_and_protocols() {
        let section = builtin();
        let socket = |family: i32, kind: i32, protocol: i32| {
            let args = [family, kind, protocol].map(|v| u64::from(v.unsigned_abs()));
            let entry = decide(&section, "socket", [args[0], args[1], args[2], 0, 0, 0]);
            entry["action"].as_str().expect("action").to_owned()
        };
        let (allow, deny) = ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO");
        let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        for (family, icmp, other) in [
            (libc::AF_INET, libc::IPPROTO_ICMP, libc::IPPROTO_ICMPV6),
            (libc::AF_INET6, libc::IPPROTO_ICMPV6, libc::IPPROTO_ICMP),
        ] {
            for (kind, protocol, expected) in [
                (libc::SOCK_STREAM, 0, allow),
                (libc::SOCK_STREAM | flags, libc::IPPROTO_TCP, allow),
                (
                    libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                    libc::IPPROTO_UDP,
                    allow,
                ),
                (libc::SOCK_DGRAM, icmp, allow),
                (libc::SOCK_RAW, icmp, allow),
                (libc::SOCK_DGRAM, other, deny),
                (10, 0, deny),                         // SOCK_PACKET
                (6 | flags, libc::IPPROTO_DCCP, deny), // SOCK_DCCP
                (libc::SOCK_SEQPACKET, libc::IPPROTO_SCTP, deny),
                (libc::SOCK_STREAM, libc::IPPROTO_MPTCP, deny),
                (libc::SOCK_DGRAM, libc::IPPROTO_UDPLITE, deny),
            ] {
                assert_eq!(
                    socket(family, kind, protocol),
                    expected,
                    "{family} {kind:#x} {protocol}"
                );
            }
        }
        assert_eq!(socket(libc::AF_UNIX, libc::SOCK_SEQPACKET, 0), allow);
        let entry = decide(&section, "socket", [2, 10, 0, 0, 0, 0]);
        assert_eq!(entry["errnoRet"], libc::EAFNOSUPPORT);
    }

    /// Hunt escape F3: an ignored call returns 0 without running where runsc reads `errnoRet`.
    #[test]
    fn fadvise_dontneed_is_ignored() {
        let section = builtin();
        let fadvise = |advice: u64| decide(&section, "fadvise64", [3, 0, 0, advice, 0, 0]);
        assert_eq!(
            fadvise(4),
            json!({
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 0,
                "names": ["fadvise64"],
                "args": [{"index": 3, "value": u32::MAX, "valueTwo": 4, "op": "SCMP_CMP_MASKED_EQ"}],
            })
        );
        assert_eq!(fadvise(3)["action"], "SCMP_ACT_ALLOW");
    }

    /// Bug hunt: a program lowered the sandbox init's rlimits with `prlimit(1, ...)`.
    #[test]
    fn prlimit64_is_denied_only_for_another_process() {
        assert_eq!(call("prlimit64", 0, 0), "SCMP_ACT_ALLOW");
        for pid in [1, 2, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(call("prlimit64", pid, 0), "SCMP_ACT_ERRNO 1", "{pid:#x}");
        }
        // OCI compares the whole argument: high bits over pid 0 are denied, stricter than the
        // kernel's reading of an int.
        assert_eq!(call("prlimit64", 1 << 32, 0), "SCMP_ACT_ERRNO 1");
    }

    /// Hunt esc F1: a filter of the program's own is refused. Here only through prctl: the
    /// loader installs the job's filter with seccomp(2) under this section, and the job's
    /// filter refuses seccomp(SECCOMP_SET_MODE_FILTER) to the program.
    #[test]
    fn prctl_installing_a_filter_is_denied_and_seccomp_is_left_to_the_jobs_filter() {
        let args = |a0: u64, a1: u64| [a0, a1, 0, 0, 0, 0];
        let decide_builtin = |name: &str, a0, a1| {
            let entry = decide(&builtin(), name, args(a0, a1));
            entry["action"].as_str().expect("action").to_owned()
        };
        let (set_seccomp, filter) = (22, 2);
        assert_eq!(
            decide_builtin("prctl", set_seccomp, filter),
            "SCMP_ACT_ERRNO"
        );
        assert_eq!(
            decide_builtin("prctl", (1 << 32) | set_seccomp, filter),
            "SCMP_ACT_ERRNO"
        );
        assert_eq!(decide_builtin("prctl", set_seccomp, 1), "SCMP_ACT_ALLOW");
        assert_eq!(decide_builtin("prctl", 21, filter), "SCMP_ACT_ALLOW");
        assert_eq!(decide_builtin("seccomp", 1, 0), "SCMP_ACT_ALLOW");
        let prctl = decide(&builtin(), "prctl", args(set_seccomp, filter));
        assert_eq!(prctl["errnoRet"], libc::EINVAL);
        // Several values and conditions: every combination, and nothing else.
        let text = "[[deny]]\nsyscall = \"prctl\"\nreason = \"r\"\n\
            [[deny.when_arg]]\nindex = 0\nvalues = [1, 2]\n\
            [[deny.when_arg]]\nindex = 4\nvalues = [5, 6, 7]\n";
        let section = oci_seccomp(&SeccompPolicy::from_toml("t.toml", text).expect("valid"));
        assert_eq!(section["syscalls"].as_array().expect("syscalls").len(), 6);
        for a0 in [0, 1, 2, 3, (1 << 32) | 1] {
            for a4 in [0, 5, 6, 7, 8] {
                let entry = decide(&section, "prctl", [a0, 0, 0, 0, a4, 0]);
                let holds = [1, 2].contains(&(a0 & 0xffff_ffff)) && [5, 6, 7].contains(&a4);
                let expected = if holds {
                    "SCMP_ACT_ERRNO"
                } else {
                    "SCMP_ACT_ALLOW"
                };
                assert_eq!(entry["action"], expected, "{a0:#x} {a4}");
            }
        }
    }

    #[test]
    fn no_entry_compares_one_argument_twice() {
        for entry in builtin()["syscalls"].as_array().expect("syscalls") {
            let mut indices: Vec<u64> = entry["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["index"].as_u64().expect("index"))
                .collect();
            let all = indices.len();
            indices.dedup();
            assert_eq!(indices.len(), all, "runsc would OR these: {entry}");
        }
    }
}
