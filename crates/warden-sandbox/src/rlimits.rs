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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use warden_core::ByteSize;

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
}
