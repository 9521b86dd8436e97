//! The `[volumes]` section of `warden.toml`: where named volumes are kept, how large one may
//! be, what `prune` removes, and what a second writer gets (docs/volumes.md).
//!
//! ```toml
//! [volumes]
//! dir = "/var/lib/warden/volumes"  # WARDEN_VOLUMES_DIR wins; default beside the history
//! max_size = "10GiB"               # the largest quota `create` accepts
//! quota_per_caller = "16GiB"       # the most one caller's volumes reserve together
//! prune_after = "30d"              # prune removes volumes unused this long (unset: all unused)
//! concurrent_writers = "refuse"    # or "wait": a second writer waits for the first
//! writer_wait = "30s"              # the longest a writer waits under "wait"
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::ByteSize;

/// The largest volume, by default.
pub const DEFAULT_MAX_VOLUME_SIZE: ByteSize = ByteSize::mib(10 * 1024);
/// The most one caller's volumes (its sessions' workspaces included) reserve together, by
/// default (at least the largest volume).
pub const DEFAULT_QUOTA_PER_CALLER: ByteSize = ByteSize::mib(16 * 1024);
/// The smallest volume: below a few MiB ext4's own metadata is most of the image.
pub const MIN_VOLUME_SIZE: ByteSize = ByteSize::mib(8);
/// How long a writer waits for another under `concurrent_writers = "wait"`, by default.
pub const DEFAULT_WRITER_WAIT: Duration = Duration::from_secs(30);

/// What a writer gets while another holds the volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrentWriters {
    /// Refused at once, the error naming the volume.
    #[default]
    Refuse,
    /// Waits until the other writer is done, at most `writer_wait` (or the caller's deadline).
    Wait,
}

/// The `[volumes]` section; each field unset keeps its default.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VolumesConfig {
    /// Where volumes are kept (`WARDEN_VOLUMES_DIR` wins).
    pub dir: Option<PathBuf>,
    /// The largest quota a volume may be created with.
    pub max_size: Option<ByteSize>,
    /// The most the volumes of one caller (an API token, or the local caller), its sessions'
    /// own workspaces included, reserve on the host together.
    pub quota_per_caller: Option<ByteSize>,
    /// `prune` removes only volumes unused for this long; unset, every volume not in use.
    #[serde(with = "crate::units::human_age_opt")]
    pub prune_after: Option<Duration>,
    /// What a second writer of a volume gets.
    pub concurrent_writers: ConcurrentWriters,
    /// The longest a writer waits under `concurrent_writers = "wait"`.
    #[serde(with = "crate::units::human_age_opt")]
    pub writer_wait: Option<Duration>,
}

impl VolumesConfig {
    /// The largest quota, the default applied: unset, 10GiB, or `quota_per_caller` if that
    /// is set and smaller.
    pub fn max_size(&self) -> ByteSize {
        match (self.max_size, self.quota_per_caller) {
            (Some(max), _) => max,
            (None, Some(quota)) => DEFAULT_MAX_VOLUME_SIZE.min(quota),
            (None, None) => DEFAULT_MAX_VOLUME_SIZE,
        }
    }

    /// What one caller's volumes may reserve together, the default applied: unset, 16GiB, or
    /// `max_size` if that is set and larger.
    pub fn quota_per_caller(&self) -> ByteSize {
        match (self.quota_per_caller, self.max_size) {
            (Some(quota), _) => quota,
            (None, Some(max)) => DEFAULT_QUOTA_PER_CALLER.max(max),
            (None, None) => DEFAULT_QUOTA_PER_CALLER,
        }
    }

    /// The first mistake a parser cannot see: a largest size below the smallest volume, under
    /// which every `create` (and every session's workspace) would be refused, and a caller's
    /// quota below the smallest volume or below the largest, which no caller could create.
    pub fn check(&self) -> Result<(), String> {
        let (max, quota) = (self.max_size(), self.quota_per_caller());
        for (key, size) in [("max_size", max), ("quota_per_caller", quota)] {
            if size < MIN_VOLUME_SIZE {
                return Err(format!(
                    "[volumes] {key} {size} is below the smallest volume, {MIN_VOLUME_SIZE}"
                ));
            }
        }
        if max > quota {
            return Err(format!(
                "[volumes] max_size {max} is above quota_per_caller, {quota}: no caller could \
                 create a volume of that size"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_reads_and_unknown_keys_are_refused() {
        let config: VolumesConfig = toml::from_str(
            "max_size = \"1GiB\"\nprune_after = \"2w\"\nconcurrent_writers = \"wait\"\n\
             writer_wait = \"5s\"\n",
        )
        .expect("valid");
        assert_eq!(config.max_size, Some(ByteSize::mib(1024)));
        assert_eq!(config.prune_after, Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(config.concurrent_writers, ConcurrentWriters::Wait);
        assert_eq!(config.writer_wait, Some(Duration::from_secs(5)));
        assert_eq!(config.dir, None);
        let empty: VolumesConfig = toml::from_str("").expect("valid");
        assert_eq!(empty.concurrent_writers, ConcurrentWriters::Refuse);
        assert!(toml::from_str::<VolumesConfig>("concurrent_writers = \"queue\"\n").is_err());
        assert!(toml::from_str::<VolumesConfig>("quota = \"1GiB\"\n").is_err());
        assert!(toml::from_str::<VolumesConfig>("prune_after = \"soon\"\n").is_err());
    }

    #[test]
    fn the_callers_quota_and_the_largest_volume_default_within_each_other() {
        let read = |text: &str| toml::from_str::<VolumesConfig>(text).expect("valid");
        let none = read("");
        assert_eq!(none.max_size(), DEFAULT_MAX_VOLUME_SIZE);
        assert_eq!(none.quota_per_caller(), DEFAULT_QUOTA_PER_CALLER);
        let small = read("quota_per_caller = \"1GiB\"\n");
        assert_eq!(small.max_size(), ByteSize::mib(1024));
        assert!(small.check().is_ok());
        let large = read("max_size = \"64GiB\"\n");
        assert_eq!(large.quota_per_caller(), ByteSize::mib(64 * 1024));
        assert!(large.check().is_ok());
        let both = read("max_size = \"2GiB\"\nquota_per_caller = \"1GiB\"\n");
        let err = both.check().expect_err("a volume above the quota");
        assert!(
            err.contains("[volumes] max_size 2GiB is above quota_per_caller, 1GiB"),
            "{err}"
        );
        let loaded = crate::config::Config::from_toml(
            std::path::Path::new("warden.toml"),
            "[volumes]\nmax_size = \"2GiB\"\nquota_per_caller = \"1GiB\"\n",
        );
        let err = loaded.expect_err("refused when read").to_string();
        assert!(err.contains("[volumes] max_size 2GiB is above"), "{err}");
        let tiny = read("quota_per_caller = \"1MiB\"\n");
        let err = tiny.check().expect_err("below the smallest");
        assert!(err.contains("[volumes] max_size 1MiB is below"), "{err}");
        let tiny = read("max_size = \"8MiB\"\nquota_per_caller = \"1MiB\"\n");
        let err = tiny.check().expect_err("below the smallest");
        assert!(
            err.contains("[volumes] quota_per_caller 1MiB is below"),
            "{err}"
        );
    }
}
