//! The payload: the process that becomes one job's untrusted program. Forked by the init; puts
//! the job's pipes on descriptors 0-2 and closes every other one, drops everything it can,
//! installs the seccomp filter last, and execs. A failure before exec is
//! reported on the close-on-exec report pipe, so a successful exec closes it silently.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use warden_sys::process::exit_immediately;

use crate::child::{Confinement, SetupError};
use crate::control::JobFds;
use crate::plan::Job;
use crate::rlimits;

/// Descriptor number of the report pipe in the payload (close-on-exec).
const REPORT_FD: i32 = 3;

/// Prepares and execs the job's program; never returns.
pub(crate) fn exec(
    job: &Job,
    fds: &JobFds,
    workdir: &Path,
    confinement: Confinement<'_>,
    report: &OwnedFd,
) -> ! {
    let placed = warden_sys::process::arrange_fds(&[
        (fds.stdin.as_fd(), 0),
        (fds.stdout.as_fd(), 1),
        (fds.stderr.as_fd(), 2),
        (report.as_fd(), REPORT_FD),
    ]);
    // From here on the report pipe is only at REPORT_FD (arrange_fds closed the rest).
    let placed = placed
        .ok()
        .and_then(|()| warden_sys::process::inherited_fd(REPORT_FD));
    let Some(report) =
        placed.filter(|fd| fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_ok())
    else {
        exit_immediately(127)
    };
    match replace_process(job, workdir, confinement) {
        Ok(never) => match never {},
        Err(e) => {
            e.report().send(report.as_fd());
            exit_immediately(127)
        }
    }
}

/// Runs in the payload. Each step assumes the ones before it (docs/sandbox-setup.md).
fn replace_process(
    job: &Job,
    workdir: &Path,
    confinement: Confinement<'_>,
) -> Result<Infallible, SetupError> {
    let (argv, env) = c_strings(job)?;
    warden_sys::signals::reset_all().map_err(|e| SetupError::errno("reset signals", e))?;
    nix::unistd::setsid().map_err(|e| SetupError::errno("setsid", e))?;
    nix::unistd::chdir(workdir).map_err(|e| SetupError::errno("chdir to the workspace", e))?;
    rlimits::lower(&job.limits)?;
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
        &format!("execve {}", job.argv[0]),
        format!("{err} ({})", err.desc()),
    ))
}

fn set_no_new_privs() -> Result<(), SetupError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SetupError::errno("set no_new_privs", e))
}

fn c_strings(job: &Job) -> Result<(Vec<CString>, Vec<CString>), SetupError> {
    let nul = |_| SetupError::new("prepare argv", "a string contains a NUL byte");
    let argv = job
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    let env = job
        .env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.is_empty() {
        return Err(SetupError::new("prepare argv", "the command is empty"));
    }
    Ok((argv, env))
}
