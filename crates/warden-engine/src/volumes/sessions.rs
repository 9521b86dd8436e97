//! A volume as a session's workspace (docs/volumes.md, Sessions' workspaces): the sessions
//! that use a volume given to them (`workspace: NAME`) are written in its `meta.json`, so that
//! no process removes or prunes it while one of them, running or stopped, names it; and a
//! session reaches its workspace by the volume's identity, never by its name alone, so that a
//! volume of the same name made after it was removed (another token's, perhaps) is not taken
//! for it.

use std::time::Duration;

use nix::fcntl::FlockArg;

use super::meta::{now_ms, Meta};
use super::{lock, CallersVolumes, VolumeError, VolumeLease, Volumes};

impl CallersVolumes<'_> {
    /// Writes `session` among the users of the volume `name` as its workspace, and answers
    /// the volume's identity. A volume the caller does not reach, or (given `identity`)
    /// another volume than that one, is not found.
    pub(crate) fn claim_workspace(
        &self,
        name: &str,
        session: &str,
        identity: Option<&str>,
    ) -> Result<String, VolumeError> {
        let dir = self.existing(name)?;
        let _mounting = lock(&dir.join("mount.lock"), FlockArg::LockExclusive)?;
        // Under the lock a removal takes: removed meanwhile, it is not found.
        let dir = self.existing(name)?;
        let mut meta = Meta::read(&dir, name)?;
        if identity.is_some_and(|expected| expected != meta.identity()) {
            return Err(VolumeError::NotFound {
                name: name.to_owned(),
            });
        }
        meta.workspace_of.insert(session.to_owned(), now_ms());
        meta.write(&dir)?;
        Ok(meta.identity())
    }

    /// Attaches the volume `name` if it is the one whose identity is `identity` (any volume
    /// the caller reaches when `None`). Checked again once attached: the lease keeps the
    /// volume from being removed, so what it holds is what was checked, never a volume made
    /// in its place between the check and the attach.
    pub(crate) fn attach_identified(
        &self,
        name: &str,
        writable: bool,
        max_wait: Duration,
        identity: Option<&str>,
    ) -> Result<VolumeLease, VolumeError> {
        let dir = self.existing(name)?;
        let checked = Meta::read(&dir, name)?.identity();
        let not_found = || VolumeError::NotFound {
            name: name.to_owned(),
        };
        if identity.is_some_and(|expected| expected != checked) {
            return Err(not_found());
        }
        let lease = self.volumes.attach_within(name, writable, max_wait)?;
        let held = Meta::read(&dir, name)?;
        if held.identity() != checked || !self.reaches(held.owner.as_deref()) {
            drop(lease);
            return Err(not_found());
        }
        Ok(lease)
    }
}

impl Volumes {
    /// The identity of the volume `name` ([`Meta::identity`]).
    pub(crate) fn identity(&self, name: &str) -> Result<String, VolumeError> {
        let dir = self.existing(name)?;
        Ok(Meta::read(&dir, name)?.identity())
    }

    /// Takes `session` off the users of the volume `name` (the session was removed); a volume
    /// gone, or one the session does not use, is left as it is.
    pub(crate) fn release_workspace(&self, name: &str, session: &str) -> Result<(), VolumeError> {
        let dir = match self.existing(name) {
            Ok(dir) => dir,
            Err(VolumeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        let _mounting = lock(&dir.join("mount.lock"), FlockArg::LockExclusive)?;
        let mut meta = match Meta::read(&dir, name) {
            Ok(meta) => meta,
            Err(VolumeError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if meta.workspace_of.remove(session).is_some() {
            meta.write(&dir)?;
        }
        Ok(())
    }

    /// The sessions written as users of the volume `name` with when each was (ms since the
    /// epoch): for the sweep of those no session store knows.
    pub(crate) fn workspace_users(&self, name: &str) -> Result<Vec<(String, u64)>, VolumeError> {
        let dir = self.existing(name)?;
        Ok(Meta::read(&dir, name)?.workspace_of.into_iter().collect())
    }
}
