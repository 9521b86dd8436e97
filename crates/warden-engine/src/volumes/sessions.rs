//! A volume as a session's workspace (docs/volumes.md, Sessions' workspaces): the sessions
//! that use a volume given to them (`workspace: NAME`) are written in its `meta.json`, so that
//! no process removes or prunes it while one of them, running or stopped, names it; and a
//! session reaches its workspace by the volume's identity, never by its name alone, so that a
//! volume of the same name made after it was removed (another token's, perhaps) is not taken
//! for it. Each session's own workspace and each mark also name the sessions directory that
//! keeps the session (its identity, `Sessions::identity`): a process whose sessions live
//! elsewhere, sharing only the volumes directory, cannot tell a session gone from one it never
//! knew, and never sweeps them.

use std::time::Duration;

use nix::fcntl::FlockArg;

use super::meta::{now_ms, Meta};
use super::{lock, CallersVolumes, VolumeError, VolumeLease, Volumes};
use crate::cancel::Cancellation;

impl CallersVolumes<'_> {
    /// Writes `session` among the users of the volume `name` as its workspace, with the
    /// identity of the sessions directory that keeps it (`store`), and answers the volume's
    /// identity. A volume the caller does not reach, or (given `identity`) another volume
    /// than that one, is not found.
    pub(crate) fn claim_workspace(
        &self,
        name: &str,
        (session, store): (&str, Option<&str>),
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
        // A session's own workspace goes with its session: it is no other's.
        if let Some(owner) = meta.session {
            return Err(VolumeError::SessionWorkspace {
                name: name.to_owned(),
                session: owner,
            });
        }
        meta.workspace_of.insert(session.to_owned(), now_ms());
        if let Some(store) = store {
            meta.workspace_stores
                .insert(session.to_owned(), store.to_owned());
        }
        meta.write(&dir)?;
        Ok(meta.identity())
    }

    /// Attaches the volume `name` if it is the one whose identity is `identity` (any volume
    /// the caller reaches when `None`), a writer waiting as [`Volumes::attach_within`] does.
    /// Checked again once attached: the lease keeps the volume from being removed, so what it
    /// holds is what was checked, never a volume made in its place between the check and the
    /// attach.
    pub(crate) fn attach_identified(
        &self,
        name: &str,
        writable: bool,
        max_wait: Duration,
        cancel: Option<&Cancellation>,
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
        let lease = self
            .volumes
            .attach_within(name, writable, max_wait, cancel)?;
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
        let stored = meta.workspace_stores.remove(session).is_some();
        if meta.workspace_of.remove(session).is_some() || stored {
            meta.write(&dir)?;
        }
        Ok(())
    }

    /// The sessions written as users of the volume `name`, each with when it was (ms since
    /// the epoch) and the identity of the sessions directory that keeps it, if known: for the
    /// sweep of those that directory's store no longer knows.
    pub(crate) fn workspace_users(&self, name: &str) -> Result<Vec<WorkspaceUser>, VolumeError> {
        let dir = self.existing(name)?;
        let mut meta = Meta::read(&dir, name)?;
        Ok(meta
            .workspace_of
            .into_iter()
            .map(|(session, since_ms)| WorkspaceUser {
                store: meta.workspace_stores.remove(&session),
                session,
                since_ms,
            })
            .collect())
    }

    /// The identity of the sessions directory that keeps the session whose own workspace the
    /// volume `name` is; `None` when the volume does not say (made before it was kept).
    pub(crate) fn workspace_store(&self, name: &str) -> Result<Option<String>, VolumeError> {
        let dir = self.existing(name)?;
        Ok(Meta::read(&dir, name)?.store)
    }

    /// Writes `store` as the sessions directory that keeps `session`, whose own workspace the
    /// volume `name` is, where the volume says none (made before it was kept) or another: the
    /// caller keeps that session's state, so the workspace is its directory's (one that says
    /// another was made before the directory's identity was lost and made anew). A volume
    /// that is not that session's is left as it is.
    pub(crate) fn adopt_workspace(
        &self,
        name: &str,
        session: &str,
        store: &str,
    ) -> Result<(), VolumeError> {
        let dir = self.existing(name)?;
        if Meta::read(&dir, name)?.store.as_deref() == Some(store) {
            return Ok(());
        }
        let _mounting = lock(&dir.join("mount.lock"), FlockArg::LockExclusive)?;
        let dir = self.existing(name)?;
        let mut meta = Meta::read(&dir, name)?;
        if meta.store.as_deref() == Some(store) || meta.session.as_deref() != Some(session) {
            return Ok(());
        }
        if let Some(before) = &meta.store {
            tracing::warn!(volume = name, before, now = store, "a session's workspace said another sessions directory than the one that keeps its session: taken as this one's");
        }
        meta.store = Some(store.to_owned());
        meta.write(&dir)
    }
}

/// A session written as a user of a volume given to it as its workspace.
#[derive(Debug)]
pub(crate) struct WorkspaceUser {
    /// The session's id.
    pub(crate) session: String,
    /// When it was written (ms since the epoch).
    pub(crate) since_ms: u64,
    /// The identity of the sessions directory that keeps it; `None` for a mark written before
    /// it was kept.
    pub(crate) store: Option<String>,
}
