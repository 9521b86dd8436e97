//! Resource limits of the payload: set by the payload itself before it drops its capabilities,
//! or, for a standby payload (`standby.rs`), by the init on its pid before it sends the job.
//! A hard limit is only ever lowered: a host without CAP_SYS_RESOURCE could not raise it, and a
//! plan must never widen the host's own limits. A soft limit is the plan's within it (the
//! stack's, 64 MiB by default, is above the usual 8 MiB soft limit of the caller, under its
//! unlimited hard one). getrlimit(2), prlimit(2).

use nix::sys::resource::Resource;
use nix::unistd::Pid;
use warden_core::Limits;

use crate::child::SetupError;

/// Signals queued at once for the program's uid (`RLIMIT_SIGPENDING`).
const SIGPENDING: u64 = 1024;
/// Bytes of POSIX message queues for the program's uid (`RLIMIT_MSGQUEUE`).
const MSGQUEUE: u64 = 256 << 10;
/// Bytes the program may lock in memory (`RLIMIT_MEMLOCK`): the kernel's own default since
/// Linux 5.16, enough for what programs lock (a crypto library's key pages, `memfd_secret`,
/// which it bounds). A caller started with more (`LimitMEMLOCK=infinity`, `--ulimit
/// memlock=-1`, common for databases) would let a program pin its whole memory limit, pages
/// the host can then never reclaim or swap out under pressure.
const MEMLOCK: u64 = 8 << 20;

/// The rlimits derived from the plan's limits: (resource, soft, hard).
pub(crate) fn from_limits(limits: &Limits) -> Vec<(Resource, u64, u64)> {
    // RLIMIT_CPU is a per-process backstop in whole seconds, one above the budget: the parent
    // enforces the exact budget of the whole tree from the cgroup's accounting, and should
    // be the one to stop the program.
    let cpu = limits.cpu_time.as_secs() + u64::from(limits.cpu_time.subsec_nanos() > 0);
    let cpu = cpu.max(1) + 1;
    let fsize = limits.max_file_size.bytes();
    let nofile = u64::from(limits.max_open_files);
    let stack = limits.stack_size.bytes();
    // RLIMIT_NPROC is a backstop one above the limit, as RLIMIT_CPU is: the cgroup's pids.max
    // (the program's `max_procs` and warden's init) counts the same tasks and must be the one
    // to refuse a fork, since only its refusals are counted (`pids.events`), which makes a
    // fork storm a security event (docs/events.md).
    let nproc = u64::from(limits.max_procs) + u64::from(crate::parent::INIT_PIDS) + 1;
    vec![
        (Resource::RLIMIT_CPU, cpu, cpu + 1),
        (Resource::RLIMIT_FSIZE, fsize, fsize),
        (Resource::RLIMIT_NOFILE, nofile, nofile),
        (Resource::RLIMIT_STACK, stack, stack),
        (Resource::RLIMIT_NPROC, nproc, nproc),
        (Resource::RLIMIT_CORE, 0, 0),
        // Both are charged per real uid: low, so one program cannot take a large share of what
        // the kernel allows that uid (the host's default is about 60,000 queued signals and
        // 800 KiB of message queues).
        (Resource::RLIMIT_SIGPENDING, SIGPENDING, SIGPENDING),
        (Resource::RLIMIT_MSGQUEUE, MSGQUEUE, MSGQUEUE),
        // Set whatever warden's caller had: a host that grants real-time priority (a PAM
        // limits.conf entry for an audio group, a unit's `LimitRTPRIO=`, `docker --ulimit
        // rtprio=`) would let the program run SCHED_FIFO threads, which no seccomp rule
        // covers, ahead of every normal task of the host, warden's parent that enforces the
        // limits among them; RLIMIT_NICE above 0 would let it raise its priority (nice < 0).
        (Resource::RLIMIT_RTPRIO, 0, 0),
        (Resource::RLIMIT_NICE, 0, 0),
        (Resource::RLIMIT_MEMLOCK, MEMLOCK, MEMLOCK),
    ]
}

/// Applies each limit to `pid` (0: this process), never above its current hard limit.
pub(crate) fn lower(pid: Pid, limits: &Limits) -> Result<(), SetupError> {
    for (resource, soft, hard) in from_limits(limits) {
        let step = || format!("setrlimit {resource:?}");
        let (_, current_hard) = warden_sys::process::prlimit(pid, resource, None)
            .map_err(|e| SetupError::errno(&step(), e))?;
        let hard = hard.min(current_hard);
        let soft = soft.min(hard);
        warden_sys::process::prlimit(pid, resource, Some((soft, hard)))
            .map_err(|e| SetupError::errno(&step(), e))?;
    }
    Ok(())
}

/// Every rlimit the kernel has (`RLIM_NLIMITS` of them).
const ALL: [Resource; 16] = [
    Resource::RLIMIT_AS,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_LOCKS,
    Resource::RLIMIT_MEMLOCK,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_RSS,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_RTTIME,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_STACK,
];

/// This process's rlimits at one moment: the init's, which every payload inherits. A process
/// of the same uid can lower them with `prlimit(2)`, and a hard limit, once lowered, cannot be
/// raised back without `CAP_SYS_RESOURCE` in the host's user namespace.
#[derive(Debug)]
pub(crate) struct Snapshot(Vec<(Resource, Option<(u64, u64)>)>);

impl Snapshot {
    pub(crate) fn take() -> Self {
        Self(ALL.iter().map(|&r| (r, own(r))).collect())
    }

    /// The limits that differ now from the snapshot's, named; `None` when none does.
    pub(crate) fn changed(&self) -> Option<String> {
        let changed: Vec<String> = self
            .0
            .iter()
            .filter(|(r, then)| own(*r) != *then)
            .map(|(r, _)| format!("{r:?}"))
            .collect();
        (!changed.is_empty()).then(|| changed.join(", "))
    }
}

fn own(resource: Resource) -> Option<(u64, u64)> {
    warden_sys::process::prlimit(Pid::from_raw(0), resource, None).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use warden_core::ByteSize;

    #[test]
    fn a_snapshot_sees_a_changed_limit() {
        let snapshot = Snapshot::take();
        assert_eq!(snapshot.changed(), None);
        // A soft limit, lowered and then restored: the test process keeps its own limits.
        let zero = Pid::from_raw(0);
        let (soft, hard) = own(Resource::RLIMIT_MSGQUEUE).expect("read");
        let lowered = soft.min(hard).saturating_sub(1);
        warden_sys::process::prlimit(zero, Resource::RLIMIT_MSGQUEUE, Some((lowered, hard)))
            .expect("lower");
        let seen = snapshot.changed();
        warden_sys::process::prlimit(zero, Resource::RLIMIT_MSGQUEUE, Some((soft, hard)))
            .expect("restore");
        assert_eq!(seen.as_deref(), Some("RLIMIT_MSGQUEUE"));
        assert_eq!(snapshot.changed(), None);
    }

    #[test]
    fn cpu_backstop_is_a_second_above_the_budget_and_core_dumps_are_off() {
        let limits = Limits {
            cpu_time: Duration::from_millis(1500),
            max_file_size: ByteSize::mib(1),
            ..Limits::default()
        };
        let rl = from_limits(&limits);
        assert!(rl.contains(&(Resource::RLIMIT_CPU, 3, 4)));
        assert!(rl.contains(&(Resource::RLIMIT_FSIZE, 1 << 20, 1 << 20)));
        assert!(rl.contains(&(Resource::RLIMIT_CORE, 0, 0)));
        let tiny = Limits {
            cpu_time: Duration::from_millis(10),
            ..Limits::default()
        };
        assert!(from_limits(&tiny).contains(&(Resource::RLIMIT_CPU, 2, 3)));
    }

    /// Hunt esc F3: RLIMIT_RTPRIO, RLIMIT_NICE and RLIMIT_MEMLOCK came from whoever started
    /// warden; with a non-zero RLIMIT_RTPRIO a program could run SCHED_FIFO threads ahead of
    /// the host's tasks. They are set for every payload (lowered only, by `lower`).
    #[test]
    fn real_time_priority_nice_and_locked_memory_are_the_plans() {
        let rl = from_limits(&Limits::default());
        assert!(rl.contains(&(Resource::RLIMIT_RTPRIO, 0, 0)), "{rl:?}");
        assert!(rl.contains(&(Resource::RLIMIT_NICE, 0, 0)), "{rl:?}");
        assert!(
            rl.contains(&(Resource::RLIMIT_MEMLOCK, 8 << 20, 8 << 20)),
            "{rl:?}"
        );
    }
}
