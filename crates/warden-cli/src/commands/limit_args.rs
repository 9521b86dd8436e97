//! The limit flags of a command that runs programs (`warden run`, `warden batch`).

use std::time::Duration;

use clap::Args;
use warden_core::{parse_duration, ByteSize, LimitOverrides};

/// Limits asked for on the command line; what is not given comes from the language and the
/// configuration, and nothing goes above the configuration's maxima.
#[derive(Debug, Default, Args)]
pub(crate) struct LimitArgs {
    /// CPU time of the whole process tree (e.g. 2s, 500ms).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    cpu_time: Option<Duration>,
    /// Wall-clock time (e.g. 5s).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    wall_time: Option<Duration>,
    /// Memory of the whole process tree (e.g. 256MiB).
    #[arg(long, value_name = "SIZE")]
    memory: Option<ByteSize>,
    /// Processes and threads at once.
    #[arg(long, value_name = "N")]
    max_procs: Option<u32>,
    /// Bytes kept of each of stdout and stderr; the run is killed past it (e.g. 1MiB).
    #[arg(long, value_name = "SIZE")]
    max_output: Option<ByteSize>,
    /// Largest file the program may write (e.g. 16MiB).
    #[arg(long, value_name = "SIZE")]
    max_file_size: Option<ByteSize>,
    /// Size of the writable workspace, /work and /tmp together (e.g. 64MiB).
    #[arg(long, value_name = "SIZE")]
    workspace_size: Option<ByteSize>,
    /// Open file descriptors per process.
    #[arg(long, value_name = "N")]
    max_open_files: Option<u32>,
    /// Stack of each process's main thread, and glibc's default for new threads (e.g. 64MiB).
    #[arg(long, value_name = "SIZE")]
    stack_size: Option<ByteSize>,
}

impl LimitArgs {
    /// The limits as the engine takes them.
    pub(crate) fn overrides(&self) -> LimitOverrides {
        LimitOverrides {
            cpu_time: self.cpu_time,
            wall_time: self.wall_time,
            memory: self.memory,
            max_procs: self.max_procs,
            max_output: self.max_output,
            max_file_size: self.max_file_size,
            workspace_size: self.workspace_size,
            max_open_files: self.max_open_files,
            stack_size: self.stack_size,
        }
    }
}
