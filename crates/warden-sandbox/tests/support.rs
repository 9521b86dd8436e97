//! Shared helpers of the privileged sandbox tests.

#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use warden_core::{FilesystemPolicy, Limits, SeccompPolicy};
use warden_sandbox::{Sandbox, SandboxPlan, SandboxRun, Stdin};

/// The sandbox, with the crate's stand-alone helper binary.
pub fn sandbox() -> Sandbox {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the sandbox tests must run as root (CI does)"
    );
    Sandbox::new(PathBuf::from(env!("CARGO_BIN_EXE_warden-sandbox-helper")))
        .expect("this host supports the sandbox")
}

/// A plan for `argv` with the base policies and default limits.
pub fn plan(argv: &[&str]) -> SandboxPlan {
    SandboxPlan::new(
        argv.iter().map(|s| (*s).to_owned()).collect(),
        &FilesystemPolicy::builtin().expect("builtin filesystem policy"),
        SeccompPolicy::builtin().expect("builtin seccomp policy"),
    )
}

/// Runs a shell script in the sandbox.
pub fn sh(script: &str, limits: Limits) -> SandboxRun {
    let mut p = plan(&["/bin/sh", "-c", script]);
    p.limits = limits;
    sandbox()
        .run(&p, Stdin::Null)
        .expect("warden ran the program")
}

/// Stdout as text.
pub fn out(run: &SandboxRun) -> String {
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// Whether a prerequisite of a test is met. When it is not, prints why the test skips; in CI
/// (`CI` set) a test must not skip, so a missing prerequisite fails it instead.
pub fn prerequisite(met: bool, what: &str) -> bool {
    if !met {
        assert!(std::env::var_os("CI").is_none(), "CI must provide {what}");
        eprintln!("skipped: {what} is not available on this machine");
    }
    met
}
