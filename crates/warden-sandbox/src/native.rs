//! The native backend (`sandboxed` mode): warden's own sandbox, built from namespaces, a
//! private root, capabilities dropped and seccomp (docs/sandbox-setup.md). Runs in the parent;
//! the helper and the init do the building.

use crate::backend::{run_once, Backend};
use crate::helper::Backend as HelperBackend;
use crate::idmap::Purpose;
use crate::live::LiveSandbox;
use crate::parent::{init_request, Launch, Sandbox, SandboxError, SandboxRun, Stdin};
use crate::plan::{SandboxPlan, SandboxSpec};

/// Builds native sandboxes on this host.
#[derive(Debug, Clone)]
pub struct Native {
    host: Sandbox,
}

impl Sandbox {
    /// The native backend of this host.
    pub fn native(&self) -> Native {
        Native { host: self.clone() }
    }

    /// Runs the plan to completion in a fresh native sandbox.
    pub fn run(&self, plan: &SandboxPlan, stdin: Stdin) -> Result<SandboxRun, SandboxError> {
        run_once(&self.native(), plan, stdin)
    }
}

impl Backend for Native {
    fn name(&self) -> &'static str {
        "native"
    }

    fn start(&self, spec: &SandboxSpec) -> Result<LiveSandbox, SandboxError> {
        let (slot, cgroup) = self.host.reserve(spec, Purpose::Sandbox)?;
        let request = init_request(spec, &slot, &cgroup, HelperBackend::Namespaces);
        self.host.launch(
            Launch {
                request,
                spec: spec.clone(),
                overhead: (warden_core::ByteSize(0), crate::parent::INIT_PIDS),
                slot: Some(slot),
                cgroup,
                cleanup: Vec::new(),
            },
            None,
        )
    }
}
