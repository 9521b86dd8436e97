//! The native isolation backend of warden: a [`SandboxPlan`] goes in, an exact
//! [`warden_core::Outcome`] comes out.
//!
//! Processes involved, and which module runs in which:
//! - the **parent** (the warden process; `parent`, `watch`, `cgroup`, `idmap`) reserves a uid
//!   slot and a cgroup, spawns the helper and watches the run;
//! - the **helper** (`helper`), a freshly exec'd single-threaded copy of the warden binary,
//!   clones the init into new namespaces, writes its id maps and makes its volumes' id-mapped
//!   mounts (`volumes`);
//! - the **init** (`child`, `mounts`, `volumes`), pid 1 of the sandbox, builds the filesystem
//!   and reaps;
//! - the **payload** (`payload`, `rlimits`, `seccomp`) drops every privilege and execs the
//!   program.
//!
//! Two more backends reuse the parent and the helper: `gvisor` (isolated mode: the helper execs
//! `runsc` in the run's cgroup) and `trusted` (limits only: the helper forks the init without
//! namespaces, and the init runs as the run's unprivileged uid on the host).
//!
//! docs/sandbox-setup.md lists the steps in order.

mod backend;
mod cgroup;
mod child;
mod collect;
mod control;
mod denials;
mod file_size_signal;
mod files_at_limit;
mod gvisor;
mod helper;
pub mod host;
mod idmap;
mod live;
mod mounts;
mod native;
mod parent;
mod payload;
mod pipes;
mod plan;
mod report;
mod rlimits;
mod seccomp;
mod stale;
mod standby;
mod stream;
mod trusted;
mod verdict;
mod volumes;
mod watch;
mod workspace;
mod writes;
mod zygote;

pub use backend::{run_once, Backend, CancelHandle};
pub use cgroup::{CgroupError, CgroupFs, WARDEN_CGROUP};
pub use collect::{CollectedFile, SpooledFiles};
pub use denials::{DeniedSyscall, KilledSyscall};
pub use gvisor::{
    cgroup_exec_main, runsc_path, seccomp_exec_main, Gvisor, CGROUP_EXEC_ARG, SECCOMP_EXEC_ARG,
};
pub use helper::{helper_main, HELPER_ARG};
pub use idmap::{IdMapError, HOST_ID_BASE, SLOTS};
pub use live::{LiveSandbox, UsageReader};
pub use native::Native;
pub use parent::{Sandbox, SandboxError, SandboxRun, Stdin};
pub use plan::{
    base_environment, Bind, Job, PlanError, SandboxPlan, SandboxSpec, VolumeMount, WorkspaceFile,
    WORKDIR,
};
pub use stream::{OutputOrder, OutputSink};
pub use trusted::Trusted;
pub use watch::{MAX_SAMPLES, SAMPLE_EVERY};
pub use writes::{ReadOnlyWrites, WriteAttempt};
pub use zygote::{zygote_main, ZYGOTE_ARG};

/// Names this process by its role (`/proc/PID/comm`: what `ps`, `top` and a profiler show),
/// since every process of a sandbox is the warden binary until the payload's exec. Best
/// effort: a name is only ever a label.
pub(crate) fn name_process(role: &std::ffi::CStr) {
    let _ = nix::sys::prctl::set_name(role);
}
