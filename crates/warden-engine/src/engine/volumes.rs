//! An execution's named volumes: checked, attached for the compile and run stages' sandboxes
//! (never the dependency stage's, never a pooled one), and released when the execution ends,
//! after its sandboxes (docs/volumes.md).

use std::path::{Component, Path};
use std::time::Duration;

use warden_core::Mode;
use warden_sandbox::{PlanError, SandboxSpec, WORKDIR};

use crate::cancel::Cancellation;
use crate::error::EngineError;
use crate::execution::VolumeRequest;
use crate::volumes::{CallersVolumes, VolumeError, VolumeLease};

/// The longest path a volume may be mounted at, in bytes. The path is made under the
/// sandbox's root (sandboxed) or the gVisor bundle's (isolated), and the whole must fit in the
/// kernel's PATH_MAX (4096): a longer one failed in the sandbox's build, a 500, from about
/// 4060 bytes in isolated mode (hunt srv 4). 1024 leaves either prefix room to spare.
const MAX_VOLUME_PATH: usize = 1024;

/// Attaches `requests` and adds their mounts to `spec`; a writer waits for another writer at
/// most `wait` (the run's wall time), within `[volumes] writer_wait`, and not once `cancel`,
/// the execution's, is cancelled ([`EngineError::Cancelled`]). The leases must outlive the
/// sandboxes.
pub(super) fn attach(
    volumes: CallersVolumes<'_>,
    requests: &[VolumeRequest],
    mode: Mode,
    spec: &mut SandboxSpec,
    wait: Duration,
    cancel: Option<&Cancellation>,
) -> Result<Vec<VolumeLease>, EngineError> {
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    check(requests, mode)?;
    let mut leases = Vec::with_capacity(requests.len());
    for request in requests {
        let lease = volumes
            .attach_within(&request.name, !request.read_only, wait, cancel)
            .map_err(|e| match e {
                VolumeError::Cancelled { .. } => EngineError::Cancelled { ran: None },
                e => e.into(),
            })?;
        spec.volumes.push(lease.mount(&request.path));
        leases.push(lease);
    }
    // The sandbox's own checks of a target: clear of its binds and of the paths its root
    // provides. Other mistakes of the spec are the backend's to report.
    match spec.validate() {
        Err(PlanError::VolumeTarget { path, why }) => Err(EngineError::VolumeRequest {
            why: format!("volume path {} {why}", path.display()),
        }),
        _ => Ok(leases),
    }
}

/// What can be refused before anything is attached: the mode, the paths, a volume asked for
/// twice.
fn check(requests: &[VolumeRequest], mode: Mode) -> Result<(), EngineError> {
    // Trusted mode has no mount namespace to mount a volume in.
    if mode == Mode::Trusted {
        return Err(EngineError::VolumesUnsupported { mode });
    }
    for (i, request) in requests.iter().enumerate() {
        crate::volumes::check_name(&request.name)?;
        let path = &request.path;
        // First, and without the path: a message would quote all of it.
        if path.as_os_str().len() > MAX_VOLUME_PATH {
            return Err(EngineError::VolumeRequest {
                why: format!(
                    "volume path of {} bytes is longer than {MAX_VOLUME_PATH} bytes, the most \
                     a volume path may be",
                    path.as_os_str().len()
                ),
            });
        }
        let refuse = |why: &str| {
            Err(EngineError::VolumeRequest {
                why: format!("volume path {} {why}", path.display()),
            })
        };
        if path.as_os_str().as_encoded_bytes().contains(&0) {
            return Err(EngineError::VolumeRequest {
                why: format!("volume path {path:?} holds a NUL byte, which no path can"),
            });
        }
        // A newline or an escape in a path is a mistake (`"/data\n"` was mounted as such,
        // hunt srv 7), and would reach logs and terminals as it is.
        if path
            .as_os_str()
            .as_encoded_bytes()
            .iter()
            .any(u8::is_ascii_control)
        {
            return Err(EngineError::VolumeRequest {
                why: format!("volume path {path:?} holds a control character"),
            });
        }
        if !is_absolute_normal(path) {
            return refuse("must be an absolute path without .., other than /");
        }
        if path
            .components()
            .any(|c| c.as_os_str().len() > warden_core::source_naming::NAME_MAX)
        {
            return refuse("has a part longer than a file name can be (255 bytes)");
        }
        if path.starts_with(WORKDIR) {
            return refuse("is the run's workspace or inside it");
        }
        if requests[..i].iter().any(|r| r.name == request.name) {
            return Err(EngineError::VolumeRequest {
                why: format!("volume {:?} is asked for twice", request.name),
            });
        }
    }
    Ok(())
}

fn is_absolute_normal(path: &Path) -> bool {
    let mut components = path.components();
    components.next() == Some(Component::RootDir)
        && components.clone().next().is_some()
        && components.all(|c| matches!(c, Component::Normal(_)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, path: &str) -> VolumeRequest {
        VolumeRequest {
            name: name.into(),
            path: path.into(),
            read_only: false,
        }
    }

    #[test]
    fn paths_modes_and_repeats_are_refused_before_anything_is_attached() {
        let long = format!("/{}", "d".repeat(256));
        // Regression (hunt srv 4): each part fits, the whole is past PATH_MAX (a 500 at the
        // sandbox's build), or past what isolated mode's bundle leaves of it.
        let longest = "/a".repeat(MAX_VOLUME_PATH / 2);
        let longer = format!("{longest}/b");
        // Regression (hunt srv 7): a control character (a newline), which `--volume` or a
        // JSON string carries as it was typed, is refused; a `:` is a path's own over HTTP.
        for path in [
            "data",
            "/",
            "/work",
            "/work/data",
            "/a/../b",
            "/da\0ta",
            &long,
            &longer,
            "/data\n",
            "/da\tta",
            "/data\u{7f}",
        ] {
            let err = check(&[request("v", path)], Mode::Sandboxed).expect_err(path);
            assert!(
                matches!(err, EngineError::VolumeRequest { .. }),
                "{path}: {err}"
            );
            assert_eq!(err.kind(), crate::ErrorKind::Request, "{path}");
        }
        assert!(check(
            &[request("v", "/data"), request("w", "/srv/w")],
            Mode::Sandboxed
        )
        .is_ok());
        assert!(check(&[request("v", &longest)], Mode::Isolated).is_ok());
        let err = check(&[request("v", &longer)], Mode::Sandboxed).expect_err("too long");
        assert!(err.to_string().contains("longer than 1024 bytes"), "{err}");
        assert!(check(&[request("v", "/data:ro")], Mode::Sandboxed).is_ok());
        let twice = check(&[request("v", "/a"), request("v", "/b")], Mode::Sandboxed);
        assert!(matches!(twice, Err(EngineError::VolumeRequest { .. })));
        let bad_name = check(&[request("V", "/a")], Mode::Sandboxed).expect_err("bad name");
        assert_eq!(bad_name.kind(), crate::ErrorKind::Request);
        let err = check(&[request("v", "/data")], Mode::Trusted).expect_err("unsupported");
        assert!(err.to_string().contains("trusted"), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::Refused);
        assert!(check(&[request("v", "/data")], Mode::Isolated).is_ok());
    }
}
