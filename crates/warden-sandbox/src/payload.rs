//! The payload: the process that becomes one job's untrusted program. Forked by the init (or
//! ahead of its job, as the standby, `standby.rs`); puts the job's pipes on descriptors 0-2 and
//! closes every other one, lowers its rlimits, drops everything it can, installs the seccomp
//! filter last, and execs. A failure before exec is reported on the close-on-exec report pipe,
//! so a successful exec closes it silently.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, IntoRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use warden_sys::process::exit_immediately;

use crate::child::{Confinement, SetupError};
use crate::control::JobFds;
use crate::plan::Job;
use crate::rlimits;
use crate::seccomp::CompiledFilter;
use nix::unistd::Pid;
use warden_core::Limits;

/// Descriptor number of the report pipe in the payload (close-on-exec).
pub(crate) const REPORT_FD: i32 = 3;
/// Descriptor number of the socket the seccomp listener goes to the init on (closed before
/// exec).
const HANDOFF_FD: i32 = 4;

/// What the init establishes once for all the payloads it forks, so that each payload does
/// only its own part.
pub(crate) struct PayloadSetup<'a> {
    /// How each payload is confined.
    pub(crate) confinement: Confinement<'a>,
    /// The signals the init ignores. A payload resets these: ignored signals survive execve,
    /// caught ones go back to their default there by themselves.
    ignored_signals: Vec<libc::c_int>,
}

impl<'a> PayloadSetup<'a> {
    /// Runs in the init before its first job. Under the native sandbox it empties the init's
    /// capability bounding set: the set only ever shrinks and every payload inherits it, so no
    /// payload's execve can raise a capability and no payload drops them one by one. The
    /// init keeps its own capabilities (the bounding set limits only what an execve grants),
    /// and it never execs.
    pub(crate) fn new(confinement: Confinement<'a>) -> Result<Self, SetupError> {
        if let Confinement::Sandbox(_) = confinement {
            warden_sys::capabilities::drop_bounding_set()
                .map_err(|e| SetupError::errno("empty the capability bounding set", e))?;
        }
        let ignored_signals = warden_sys::signals::ignored()
            .map_err(|e| SetupError::errno("read the ignored signals", e))?;
        Ok(Self {
            confinement,
            ignored_signals,
        })
    }
}

/// Prepares and execs the job's program; never returns.
pub(crate) fn exec(
    job: &Job,
    fds: &JobFds,
    workdir: &Path,
    setup: &PayloadSetup<'_>,
    to_init: Option<OwnedFd>,
    report: &OwnedFd,
) -> ! {
    let mut targets = vec![
        (fds.stdin.as_fd(), 0),
        (fds.stdout.as_fd(), 1),
        (fds.stderr.as_fd(), 2),
        (report.as_fd(), REPORT_FD),
    ];
    if let Some(fd) = &to_init {
        targets.push((fd.as_fd(), HANDOFF_FD));
    }
    let placed = warden_sys::process::arrange_fds(&targets);
    // From here on the report pipe is only at REPORT_FD, the handoff only at HANDOFF_FD
    // (arrange_fds closed the rest).
    let placed = placed
        .ok()
        .and_then(|()| warden_sys::process::inherited_fd(REPORT_FD));
    let Some(report) =
        placed.filter(|fd| fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_ok())
    else {
        exit_immediately(127)
    };
    // The original number was closed by arrange_fds: forget its owner without closing again.
    let handoff = to_init.and_then(|fd| {
        let _ = fd.into_raw_fd();
        warden_sys::process::inherited_fd(HANDOFF_FD)
    });
    let (argv, env) = match c_strings(&job.argv, &job.env) {
        Ok(strings) => strings,
        Err(e) => fail(&e, &report),
    };
    if let Err(e) = confine(workdir, setup, Some(&job.limits), handoff) {
        fail(&e, &report)
    }
    let Err(e) = replace_process(&argv, &env);
    fail(&e, &report)
}

/// Reports a failure before exec and exits.
fn fail(e: &SetupError, report: &OwnedFd) -> ! {
    e.report().send(report.as_fd());
    exit_immediately(127)
}

/// Runs in the payload (and in a standby, before its job, without `limits`: the init lowers
/// them on its pid once the job is known). Each step assumes the ones before it
/// (docs/sandbox-setup.md); the seccomp filter comes last.
pub(crate) fn confine(
    workdir: &Path,
    setup: &PayloadSetup<'_>,
    limits: Option<&Limits>,
    handoff: Option<OwnedFd>,
) -> Result<(), SetupError> {
    warden_sys::signals::reset(&setup.ignored_signals)
        .map_err(|e| SetupError::errno("reset signals", e))?;
    nix::unistd::setsid().map_err(|e| SetupError::errno("setsid", e))?;
    nix::unistd::chdir(workdir).map_err(|e| SetupError::errno("chdir to the workspace", e))?;
    if let Some(limits) = limits {
        rlimits::lower(Pid::from_raw(0), limits)?;
    }
    match setup.confinement {
        Confinement::Sandbox(filter) => {
            warden_sys::capabilities::drop_all()
                .map_err(|e| SetupError::errno("drop capabilities", e))?;
            set_no_new_privs()?;
            install_seccomp(filter, handoff)
        }
        Confinement::Trusted(program) => {
            set_no_new_privs()?;
            warden_sys::seccomp::install_filter(program)
                .map_err(|e| SetupError::errno("install the trusted seccomp filter", e))
        }
    }
}

/// Runs in the confined payload: execs the job's program. Returns only the failure.
pub(crate) fn replace_process(argv: &[CString], env: &[CString]) -> Result<Infallible, SetupError> {
    let Err(err) = nix::unistd::execve(&argv[0], argv, env);
    Err(SetupError::new(
        &format!("execve {}", argv[0].to_string_lossy()),
        format!("{err} ({})", err.desc()),
    ))
}

/// Installs the filter, last before exec. A filter that notifies calls hands its listener to
/// the init, which answers them (`denials.rs`); the payload's copies of the listener and the
/// handoff socket close here, so the program never holds the listener, which could let its
/// own calls run.
fn install_seccomp(filter: &CompiledFilter, handoff: Option<OwnedFd>) -> Result<(), SetupError> {
    let step = "install seccomp filter";
    match handoff {
        Some(handoff) if filter.notifies() => {
            match warden_sys::seccomp::install_filter_with_listener(&filter.program) {
                Ok(listener) => {
                    warden_sys::fdpass::send_with_fds(handoff.as_fd(), b"L", &[listener.as_fd()])
                        .map_err(|e| SetupError::errno("hand the seccomp listener to the init", e))
                        .map(drop)
                }
                // A filter above warden's has the listener: refuse the calls alike, unrecorded.
                Err(Errno::EBUSY) => warden_sys::seccomp::install_filter(&filter.errno_only)
                    .map_err(|e| SetupError::errno(step, e)),
                Err(e) => Err(SetupError::errno(step, e)),
            }
        }
        // No listener to hand over: the filter that kills in the kernel (the other would fail
        // its notified calls with ENOSYS rather than kill).
        _ => warden_sys::seccomp::install_filter(&filter.errno_only)
            .map_err(|e| SetupError::errno(step, e)),
    }
}

fn set_no_new_privs() -> Result<(), SetupError> {
    nix::sys::prctl::set_no_new_privs().map_err(|e| SetupError::errno("set no_new_privs", e))
}

/// The command and environment as execve takes them.
pub(crate) fn c_strings(
    argv: &[String],
    env: &[(String, String)],
) -> Result<(Vec<CString>, Vec<CString>), SetupError> {
    let nul = |_| SetupError::new("prepare argv", "a string contains a NUL byte");
    let argv = argv
        .iter()
        .map(|a| CString::new(a.as_str()).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    let env = env
        .iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).map_err(nul))
        .collect::<Result<Vec<_>, _>>()?;
    if argv.is_empty() {
        return Err(SetupError::new("prepare argv", "the command is empty"));
    }
    Ok((argv, env))
}
