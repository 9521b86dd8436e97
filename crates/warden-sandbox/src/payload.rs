//! The payload: the process that becomes the untrusted program. Forked by the init; drops
//! everything it can, installs the seccomp filter last, and execs. A failure before exec is
//! reported on the close-on-exec report pipe, so a successful exec closes it silently.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use warden_sys::process::exit_immediately;

use crate::child::{Confinement, SetupError};
use crate::plan::SandboxPlan;
use crate::rlimits;

/// Descriptor number of the report pipe in the payload (close-on-exec).
const REPORT_FD: i32 = 3;

/// Prepares and execs the program; never returns.
pub(crate) fn exec(
    plan: &SandboxPlan,
    workdir: &Path,
    confinement: Confinement<'_>,
    report: &OwnedFd,
) -> ! {
    let report_fd = match move_report_fd(report) {
        Ok(fd) => fd,
        Err(e) => {
            e.report().send(report.as_fd());
            exit_immediately(127)
        }
    };
    match replace_process(plan, workdir, confinement) {
        Ok(never) => match never {},
        Err(e) => {
            e.report().send(report_fd.as_fd());
            exit_immediately(127)
        }
    }
}

/// Runs in the payload. Each step assumes the ones before it (docs/sandbox-setup.md).
fn replace_process(
    plan: &SandboxPlan,
    workdir: &Path,
    confinement: Confinement<'_>,
) -> Result<Infallible, SetupError> {
    let (argv, env) = c_strings(plan)?;
    warden_sys::signals::reset_all().map_err(|e| SetupError::errno("reset signals", e))?;
    nix::unistd::setsid().map_err(|e| SetupError::errno("setsid", e))?;
    nix::unistd::chdir(workdir).map_err(|e| SetupError::errno("chdir to the workspace", e))?;
    rlimits::lower(&plan.limits)?;
    warden_sys::process::close_fds_from(REPORT_FD + 1)
        .map_err(|e| SetupError::errno("close_range", e))?;
    match confinement {
        Confinement::Sandbox(filter) => {
            warden_sys::capabilities::drop_all()
                .map_err(|e| SetupError::errno("drop capabilities", e))?;
            set_no_new_privs()?;
            warden_sys::seccomp::install_filter(filter)
                .map_err(|e| SetupError::errno("install seccomp filter", e))?;
        }
        Confinement::Trusted => set_no_new_privs()?,
    }
    let Err(err) = nix::unistd::execve(&argv[0], &argv, &env);
    Err(SetupError::new(
        &format!("execve {}", plan.argv[0]),
        format!("{err} ({})", err.desc()),
    ))
}

fn set_no_new_privs() -> Result<(), SetupError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SetupError::errno("set no_new_privs", e))
}

/// Puts the report pipe on descriptor 3, close-on-exec, so `close_fds_from(4)` keeps it.
fn move_report_fd(report: &OwnedFd) -> Result<OwnedFd, SetupError> {
    if report.as_raw_fd() == REPORT_FD {
        let fd = report
            .try_clone()
            .map_err(|e| SetupError::new("dup report fd", e))?;
        fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
            .map_err(|e| SetupError::errno("set close-on-exec", e))?;
        return Ok(fd);
    }
    let fd = warden_sys::process::dup_onto(report.as_fd(), REPORT_FD, true)
        .map_err(|e| SetupError::errno("dup report fd", e))?;
    Ok(fd)
}

fn c_strings(plan: &SandboxPlan) -> Result<(Vec<CString>, Vec<CString>), SetupError> {
    let nul = |_| SetupError::new("prepare argv", "a string contains a NUL byte");
    let argv = plan
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    let env = plan
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.is_empty() {
        return Err(SetupError::new("prepare argv", "the command is empty"));
    }
    Ok((argv, env))
}
