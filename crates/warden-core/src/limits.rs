//! Resource limits of one execution: defaults, per-language and per-request overrides, the
//! operator's maxima, and the bounds outside which a value is refused as absurd.
//!
//! The order is fixed: defaults ⊕ language overrides ⊕ request overrides, then validated against
//! [`LimitBounds`] (absurd values are an error), then clamped to the operator's [`Limits`] maxima
//! (a request can never widen what the operator allows).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{
    format_duration, format_duration_human, human_age_opt, human_duration, ByteSize,
};

/// The effective limits of one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU time of the whole process tree (cgroup accounting), user plus system.
    #[serde(with = "human_duration")]
    pub cpu_time: Duration,
    /// Wall-clock time from the start of the program.
    #[serde(with = "human_duration")]
    pub wall_time: Duration,
    /// Memory of the whole tree, charged by the memory cgroup (never `RLIMIT_AS`).
    pub memory: ByteSize,
    /// Processes plus threads at once (pids cgroup).
    pub max_procs: u32,
    /// Bytes kept of each of stdout and stderr; the run is killed past it.
    pub max_output: ByteSize,
    /// Largest file the program may write (`RLIMIT_FSIZE`).
    pub max_file_size: ByteSize,
    /// Size of the writable workspace tmpfs (`/work` and `/tmp` together).
    pub workspace_size: ByteSize,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub max_open_files: u32,
    /// Stack of each process's main thread (`RLIMIT_STACK`; glibc also makes it the default
    /// size of a new thread's stack). Its pages are memory like any other, charged to the
    /// memory limit. Rows recorded before it existed read the default.
    #[serde(default = "default_stack_size")]
    pub stack_size: ByteSize,
}

/// The default stack: Judge0's (64 000 KB), deep enough for the recursion of judged programs
/// (a depth-first search over a million nodes), where the usual 8 MiB is not.
fn default_stack_size() -> ByteSize {
    ByteSize::mib(64)
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_time: Duration::from_secs(5),
            wall_time: Duration::from_secs(10),
            memory: ByteSize::mib(256),
            max_procs: 64,
            max_output: ByteSize::mib(1),
            max_file_size: ByteSize::mib(16),
            workspace_size: ByteSize::mib(64),
            max_open_files: 256,
            stack_size: default_stack_size(),
        }
    }
}

impl Limits {
    /// The operator maxima used when no configuration says otherwise.
    pub fn default_maxima() -> Self {
        Self {
            cpu_time: Duration::from_secs(300),
            wall_time: Duration::from_secs(600),
            memory: ByteSize(8 * ByteSize::GIB),
            max_procs: 4096,
            max_output: ByteSize::mib(256),
            max_file_size: ByteSize(4 * ByteSize::GIB),
            workspace_size: ByteSize(4 * ByteSize::GIB),
            max_open_files: 65_536,
            stack_size: ByteSize(ByteSize::GIB),
        }
    }

    /// These limits with every field `overrides` sets replaced.
    pub fn with(mut self, overrides: &LimitOverrides) -> Self {
        let o = overrides;
        self.cpu_time = o.cpu_time.unwrap_or(self.cpu_time);
        self.wall_time = o.wall_time.unwrap_or(self.wall_time);
        self.memory = o.memory.unwrap_or(self.memory);
        self.max_procs = o.max_procs.unwrap_or(self.max_procs);
        self.max_output = o.max_output.unwrap_or(self.max_output);
        self.max_file_size = o.max_file_size.unwrap_or(self.max_file_size);
        self.workspace_size = o.workspace_size.unwrap_or(self.workspace_size);
        self.max_open_files = o.max_open_files.unwrap_or(self.max_open_files);
        self.stack_size = o.stack_size.unwrap_or(self.stack_size);
        self
    }

    /// Refuses values outside `bounds` with a message naming the limit and the accepted range.
    pub fn validate(&self, bounds: &LimitBounds) -> Result<(), LimitError> {
        check_duration(
            "cpu-time",
            self.cpu_time,
            bounds.min.cpu_time,
            bounds.max.cpu_time,
        )?;
        check_duration(
            "wall-time",
            self.wall_time,
            bounds.min.wall_time,
            bounds.max.wall_time,
        )?;
        check_size("memory", self.memory, bounds.min.memory, bounds.max.memory)?;
        check_count(
            "max-procs",
            self.max_procs,
            bounds.min.max_procs,
            bounds.max.max_procs,
        )?;
        check_size(
            "max-output",
            self.max_output,
            bounds.min.max_output,
            bounds.max.max_output,
        )?;
        check_size(
            "max-file-size",
            self.max_file_size,
            bounds.min.max_file_size,
            bounds.max.max_file_size,
        )?;
        check_size(
            "workspace-size",
            self.workspace_size,
            bounds.min.workspace_size,
            bounds.max.workspace_size,
        )?;
        check_count(
            "max-open-files",
            self.max_open_files,
            bounds.min.max_open_files,
            bounds.max.max_open_files,
        )?;
        check_size(
            "stack-size",
            self.stack_size,
            bounds.min.stack_size,
            bounds.max.stack_size,
        )
    }

    /// The fields of `asked` above the operator's `maxima`, each as `name value (maximum
    /// max)`: what [`Limits::clamp_to`] lowers, for the caller to be told.
    pub fn above_maxima(asked: &LimitOverrides, maxima: &Limits) -> Vec<String> {
        Self::over_maxima(asked, maxima)
            .into_iter()
            .map(|over| {
                format!(
                    "{} {} (maximum {})",
                    over.field.replace('_', "-"),
                    over.asked,
                    over.maximum
                )
            })
            .collect()
    }

    /// The fields of `asked` above the operator's `maxima`, in the order of the fields, for
    /// an interface that refuses them rather than lower them (a tool's `[limits]`, the
    /// `limits` of a `run_code` call).
    pub fn over_maxima(asked: &LimitOverrides, maxima: &Limits) -> Vec<OverMaximum> {
        fn above<T: PartialOrd + Copy>(
            field: &'static str,
            asked: Option<T>,
            max: T,
            show: impl Fn(T) -> String,
        ) -> Option<OverMaximum> {
            let asked = asked.filter(|v| *v > max)?;
            Some(OverMaximum {
                field,
                asked: show(asked),
                maximum: show(max),
            })
        }
        let (a, m) = (asked, maxima);
        let size = |v: ByteSize| v.to_string();
        let count = |v: u32| v.to_string();
        [
            above("cpu_time", a.cpu_time, m.cpu_time, format_duration),
            above("wall_time", a.wall_time, m.wall_time, format_duration),
            above("memory", a.memory, m.memory, size),
            above("max_procs", a.max_procs, m.max_procs, count),
            above("max_output", a.max_output, m.max_output, size),
            above("max_file_size", a.max_file_size, m.max_file_size, size),
            above("workspace_size", a.workspace_size, m.workspace_size, size),
            above("max_open_files", a.max_open_files, m.max_open_files, count),
            above("stack_size", a.stack_size, m.stack_size, size),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Every field lowered to at most the operator's `maxima`.
    pub fn clamp_to(self, maxima: &Limits) -> Self {
        Self {
            cpu_time: self.cpu_time.min(maxima.cpu_time),
            wall_time: self.wall_time.min(maxima.wall_time),
            memory: self.memory.min(maxima.memory),
            max_procs: self.max_procs.min(maxima.max_procs),
            max_output: self.max_output.min(maxima.max_output),
            max_file_size: self.max_file_size.min(maxima.max_file_size),
            workspace_size: self.workspace_size.min(maxima.workspace_size),
            max_open_files: self.max_open_files.min(maxima.max_open_files),
            stack_size: self.stack_size.min(maxima.stack_size),
        }
    }
}

/// A limit asked above the operator's maximum ([`Limits::over_maxima`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverMaximum {
    /// The field, as files and JSON name it (`wall_time`).
    pub field: &'static str,
    /// The value asked, as files write it (`2h`, `64TiB`).
    pub asked: String,
    /// The operator's maximum, written the same way.
    pub maximum: String,
}

impl std::fmt::Display for OverMaximum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} is above the operator's maximum of {}",
            self.field, self.asked, self.maximum
        )
    }
}

/// Limits that a language file or a request sets; unset fields keep the value below them.
/// Read from a file (a language's, a tool's, `[maxima]`), its durations take days and weeks
/// too, as every duration of `warden.toml` does; API requests parse their own
/// (`warden-server`'s `execution_request.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// See [`Limits::cpu_time`].
    #[serde(
        default,
        with = "human_age_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub cpu_time: Option<Duration>,
    /// See [`Limits::wall_time`].
    #[serde(
        default,
        with = "human_age_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub wall_time: Option<Duration>,
    /// See [`Limits::memory`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// See [`Limits::max_procs`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_procs: Option<u32>,
    /// See [`Limits::max_output`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<ByteSize>,
    /// See [`Limits::max_file_size`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<ByteSize>,
    /// See [`Limits::workspace_size`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_size: Option<ByteSize>,
    /// See [`Limits::max_open_files`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<u32>,
    /// See [`Limits::stack_size`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_size: Option<ByteSize>,
}

impl LimitOverrides {
    /// These overrides with `later`'s set fields replacing them (a tool's limits, then its
    /// caller's).
    pub fn overridden_by(&self, later: &LimitOverrides) -> LimitOverrides {
        LimitOverrides {
            cpu_time: later.cpu_time.or(self.cpu_time),
            wall_time: later.wall_time.or(self.wall_time),
            memory: later.memory.or(self.memory),
            max_procs: later.max_procs.or(self.max_procs),
            max_output: later.max_output.or(self.max_output),
            max_file_size: later.max_file_size.or(self.max_file_size),
            workspace_size: later.workspace_size.or(self.workspace_size),
            max_open_files: later.max_open_files.or(self.max_open_files),
            stack_size: later.stack_size.or(self.stack_size),
        }
    }
}

/// The range a limit must fall in to be taken at all; outside it the request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitBounds {
    /// Smallest accepted values.
    pub min: Limits,
    /// Largest accepted values (sanity, not policy: the operator's maxima clamp further).
    pub max: Limits,
}

impl Default for LimitBounds {
    fn default() -> Self {
        Self {
            min: Limits {
                cpu_time: Duration::from_millis(10),
                wall_time: Duration::from_millis(10),
                memory: ByteSize::mib(8),
                max_procs: 1,
                max_output: ByteSize(0),
                max_file_size: ByteSize(0),
                workspace_size: ByteSize::kib(64),
                max_open_files: 8,
                // The dynamic loader and a runtime's start need a few hundred kilobytes.
                stack_size: ByteSize::kib(512),
            },
            max: Limits {
                cpu_time: Duration::from_secs(24 * 3600),
                wall_time: Duration::from_secs(24 * 3600),
                memory: ByteSize(1 << 40),
                max_procs: 1 << 20,
                max_output: ByteSize(1 << 32),
                max_file_size: ByteSize(1 << 40),
                workspace_size: ByteSize(1 << 40),
                max_open_files: 1 << 20,
                stack_size: ByteSize(1 << 40),
            },
        }
    }
}

/// A limit outside the accepted range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} {value} is outside the accepted range {min} – {max}")]
pub struct LimitError {
    /// The flag name of the limit.
    pub name: &'static str,
    /// The value given, as text.
    pub value: String,
    /// The smallest accepted value.
    pub min: String,
    /// The largest accepted value.
    pub max: String,
}

fn check_duration(
    name: &'static str,
    v: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), LimitError> {
    if (min..=max).contains(&v) {
        return Ok(());
    }
    Err(LimitError {
        name,
        value: format_duration_human(v),
        min: format_duration_human(min),
        max: format_duration_human(max),
    })
}

fn check_size(
    name: &'static str,
    v: ByteSize,
    min: ByteSize,
    max: ByteSize,
) -> Result<(), LimitError> {
    if (min..=max).contains(&v) {
        return Ok(());
    }
    Err(LimitError {
        name,
        value: v.to_string(),
        min: min.to_string(),
        max: max.to_string(),
    })
}

fn check_count(name: &'static str, v: u32, min: u32, max: u32) -> Result<(), LimitError> {
    if (min..=max).contains(&v) {
        return Ok(());
    }
    Err(LimitError {
        name,
        value: v.to_string(),
        min: min.to_string(),
        max: max.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_request_asks_above_the_maxima_is_named() {
        let maxima = Limits::default_maxima();
        let asked = LimitOverrides {
            memory: Some(ByteSize::mib(1 << 20)),
            cpu_time: Some(Duration::from_secs(1)),
            max_procs: Some(maxima.max_procs + 1),
            ..LimitOverrides::default()
        };
        assert_eq!(
            Limits::above_maxima(&asked, &maxima),
            [
                format!("memory 1024GiB (maximum {})", maxima.memory),
                format!(
                    "max-procs {} (maximum {})",
                    maxima.max_procs + 1,
                    maxima.max_procs
                ),
            ]
        );
        assert!(Limits::above_maxima(&LimitOverrides::default(), &maxima).is_empty());
    }

    /// Bug hunt (docs, finding 13): the range was written in Rust's notation and in seconds
    /// (`10ms..=86400s`), where docs/cli.md's table says `10ms – 24h`.
    #[test]
    fn a_limit_out_of_range_names_the_range_as_the_docs_write_it() {
        let short = Limits {
            cpu_time: Duration::from_millis(5),
            ..Limits::default()
        };
        let e = short
            .validate(&LimitBounds::default())
            .expect_err("5ms is below the range");
        assert_eq!(
            e.to_string(),
            "cpu-time 5ms is outside the accepted range 10ms – 24h"
        );
        let small = Limits {
            memory: ByteSize(1),
            ..Limits::default()
        };
        let e = small
            .validate(&LimitBounds::default())
            .expect_err("1B is below the range");
        assert_eq!(
            e.to_string(),
            "memory 1B is outside the accepted range 8MiB – 1024GiB"
        );
    }

    #[test]
    fn defaults_are_within_bounds_and_maxima() {
        let defaults = Limits::default();
        defaults
            .validate(&LimitBounds::default())
            .expect("defaults are valid");
        assert_eq!(defaults.clamp_to(&Limits::default_maxima()), defaults);
    }

    #[test]
    fn overrides_replace_only_what_they_set() {
        let o = LimitOverrides {
            memory: Some(ByteSize::mib(512)),
            ..Default::default()
        };
        let l = Limits::default().with(&o);
        assert_eq!(l.memory, ByteSize::mib(512));
        assert_eq!(l.cpu_time, Limits::default().cpu_time);
        let stack = LimitOverrides {
            stack_size: Some(ByteSize::mib(256)),
            ..Default::default()
        };
        assert_eq!(
            Limits::default().with(&stack).stack_size,
            ByteSize::mib(256)
        );
        let small = Limits::default().with(&LimitOverrides {
            stack_size: Some(ByteSize::kib(4)),
            ..Default::default()
        });
        assert_eq!(
            small.validate(&LimitBounds::default()).map_err(|e| e.name),
            Err("stack-size")
        );
    }

    #[test]
    fn limits_recorded_before_the_stack_size_still_read() {
        let old = r#"{"cpu_time":"5s","wall_time":"10s","memory":"256MiB","max_procs":64,"max_output":"1MiB","max_file_size":"16MiB","workspace_size":"64MiB","max_open_files":256}"#;
        let limits: Limits = serde_json::from_str(old).expect("an old row's limits");
        assert_eq!(limits, Limits::default());
    }

    #[test]
    fn absurd_values_are_refused_by_name() {
        let l = Limits {
            memory: ByteSize(1),
            ..Default::default()
        };
        let err = l
            .validate(&LimitBounds::default())
            .expect_err("1 byte of memory is absurd");
        assert_eq!(err.name, "memory");
        assert!(err.to_string().contains("memory 1B"), "{err}");
        let l = Limits {
            wall_time: Duration::from_secs(10 * 24 * 3600),
            ..Default::default()
        };
        assert_eq!(
            l.validate(&LimitBounds::default()).map_err(|e| e.name),
            Err("wall-time")
        );
    }

    #[test]
    fn maxima_lower_but_never_raise() {
        let maxima = Limits {
            cpu_time: Duration::from_secs(1),
            ..Limits::default_maxima()
        };
        let l = Limits::default().clamp_to(&maxima);
        assert_eq!(l.cpu_time, Duration::from_secs(1));
        assert_eq!(l.memory, Limits::default().memory);
    }

    #[test]
    fn overrides_read_human_units_from_toml() {
        let o: LimitOverrides =
            toml::from_str("cpu_time = \"1500ms\"\nmemory = \"1GiB\"\nmax_procs = 128\n")
                .expect("valid overrides");
        assert_eq!(o.cpu_time, Some(Duration::from_millis(1500)));
        assert_eq!(o.memory, Some(ByteSize(ByteSize::GIB)));
        assert_eq!(o.max_procs, Some(128));
        assert!(
            toml::from_str::<LimitOverrides>("cpu = \"1s\"").is_err(),
            "unknown fields are refused"
        );
    }
}
