//! A volume's `meta.json`: its quota, when it was created and last used, and the bytes its
//! files took when the last lease ended. Written whole to a temporary file and renamed over
//! the old one, so that a reader never sees half of it; updates are made under the volume's
//! `mount.lock`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use warden_core::ByteSize;

use super::VolumeError;

/// The file's name in the volume's directory; a volume exists when it does.
pub(super) const FILE: &str = "meta.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Meta {
    pub(super) size: ByteSize,
    pub(super) created_at_ms: u64,
    #[serde(default)]
    pub(super) last_used_at_ms: Option<u64>,
    #[serde(default)]
    pub(super) used: ByteSize,
    /// The API token that created it; `None`: the local caller (the CLI, a server without
    /// tokens), or a volume made before owners were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) owner: Option<String>,
    /// The session whose own workspace it is: removed with the session, never alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) session: Option<String>,
    /// The identity of the sessions directory that keeps `session` (`Sessions::identity`):
    /// only a store opened on that directory may find the session gone and sweep the
    /// workspace. `None` for a workspace made before it was kept, which no sweep removes
    /// until that store writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) store: Option<String>,
    /// Random, made with the volume: a volume of the same name made after this one was
    /// removed is another volume, which a session that named this one must not reach.
    /// `None` for a volume made before ids were kept ([`Meta::identity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) id: Option<String>,
    /// The sessions that use it as their workspace (`workspace: NAME`), running or stopped,
    /// each with when it began to (ms since the epoch): it is not removed while one does.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) workspace_of: BTreeMap<String, u64>,
    /// The identity of the sessions directory that keeps each session of `workspace_of`, as
    /// `store` says for `session`: only that directory's store takes a mark off. A session
    /// marked before it was kept has none, until its store writes it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(super) workspace_stores: BTreeMap<String, String>,
}

pub(super) fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl Meta {
    /// A new volume's.
    pub(super) fn new(size: ByteSize, owner: Option<&str>, session: Option<&str>) -> Self {
        Self {
            size,
            created_at_ms: now_ms(),
            last_used_at_ms: None,
            used: ByteSize(0),
            owner: owner.map(str::to_owned),
            session: session.map(str::to_owned),
            // Without random bytes (the kernel gave none), the creation time tells it apart
            // (`identity`), as for a volume made before ids were kept.
            id: crate::id::ExecutionId::random()
                .ok()
                .map(|id| id.as_str().to_owned()),
            workspace_of: BTreeMap::new(),
            workspace_stores: BTreeMap::new(),
            store: None,
        }
    }

    /// What tells this volume from another of the same name: its id, or for a volume made
    /// before ids were kept its creation time (a name is taken again only after a removal,
    /// and a creation takes longer than the millisecond that tells the two apart).
    pub(super) fn identity(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("created-{}", self.created_at_ms))
    }

    pub(super) fn created_at(&self) -> SystemTime {
        time_of(self.created_at_ms)
    }

    pub(super) fn last_used_at(&self) -> Option<SystemTime> {
        self.last_used_at_ms.map(time_of)
    }

    /// Reads the volume `name`'s, in `dir`.
    pub(super) fn read(dir: &Path, name: &str) -> Result<Self, VolumeError> {
        let path = dir.join(FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound {
                    name: name.to_owned(),
                })
            }
            Err(e) => return Err(VolumeError::io("reading", &path)(e)),
        };
        serde_json::from_slice(&text).map_err(|source| VolumeError::Meta { path, source })
    }

    /// Writes it into `dir`.
    pub(super) fn write(&self, dir: &Path) -> Result<(), VolumeError> {
        let path = dir.join(FILE);
        let temporary = dir.join(format!(".{FILE}.{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(|source| VolumeError::Meta {
            path: path.clone(),
            source,
        })?;
        let written = std::fs::write(&temporary, text)
            .map_err(VolumeError::io("writing", &temporary))
            .and_then(|()| {
                std::fs::rename(&temporary, &path).map_err(VolumeError::io("replacing", &path))
            });
        if written.is_err() {
            // A full disk, say: nothing half-written is left beside the volume.
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }

    /// Records a use now, and the bytes used if known.
    pub(super) fn touch(dir: &Path, name: &str, used: Option<ByteSize>) -> Result<(), VolumeError> {
        let mut meta = Self::read(dir, name)?;
        meta.last_used_at_ms = Some(now_ms());
        if let Some(used) = used {
            meta.used = used;
        }
        meta.write(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_a_touch_records_the_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let meta = Meta::new(ByteSize::mib(8), Some("grader"), None);
        meta.write(dir.path()).expect("written");
        assert_eq!(Meta::read(dir.path(), "v").expect("read"), meta);
        Meta::touch(dir.path(), "v", Some(ByteSize(4096))).expect("touched");
        let touched = Meta::read(dir.path(), "v").expect("read");
        assert_eq!(touched.used, ByteSize(4096));
        assert!(touched
            .last_used_at()
            .is_some_and(|t| t >= meta.created_at()));
        let missing = tempfile::tempdir().expect("tempdir");
        let err = Meta::read(missing.path(), "w").expect_err("none");
        assert!(matches!(err, VolumeError::NotFound { .. }), "{err}");
    }
}
