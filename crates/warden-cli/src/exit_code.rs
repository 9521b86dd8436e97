//! The exit status of `warden run` without `--json` (docs/cli.md): the program's own status
//! when it exited, 128+N when a signal N killed it, and these codes for everything else.

use warden_core::Outcome;

/// A limit of time (cpu or wall) was reached (as `timeout(1)`).
pub(crate) const TIME_LIMIT: u8 = 124;
/// warden itself failed (as `env(1)`, `docker run`).
pub(crate) const WARDEN_ERROR: u8 = 125;
/// The memory limit was reached.
pub(crate) const MEMORY_LIMIT: u8 = 123;
/// The output limit was reached.
pub(crate) const OUTPUT_LIMIT: u8 = 122;
/// The file size limit was reached.
pub(crate) const FILE_SIZE_LIMIT: u8 = 121;
/// The sandbox stopped a forbidden operation.
pub(crate) const VIOLATION: u8 = 120;
/// The program did not compile.
pub(crate) const COMPILE_ERROR: u8 = 119;
/// The dependencies could not be installed.
pub(crate) const DEPENDENCY_ERROR: u8 = 117;
/// The configuration's mode policy refused to run the program.
pub(crate) const REFUSED: u8 = 118;
/// Standard output's reader left before warden wrote all of it (any command): 128 + `SIGPIPE`,
/// what the shell reports for a command that the signal ended.
pub(crate) const BROKEN_PIPE: u8 = 141;
/// `warden network check`: the policy denies the destination (as `grep` finding nothing).
pub(crate) const DENIED: u8 = 1;
/// `warden batch`: some programs have no result (their lines say why).
pub(crate) const BATCH_INCOMPLETE: u8 = 1;
/// `warden mcp wrap`: the wrapped server stopped reading its input, and was stopped.
pub(crate) const MCP_SERVER_FAILED: u8 = 1;

/// The exit status that stands for `outcome`.
pub(crate) fn for_outcome(outcome: &Outcome) -> u8 {
    match outcome {
        Outcome::Exited { code } => u8::try_from(*code & 0xff).unwrap_or(1),
        Outcome::Signaled { signal } => u8::try_from((128 + signal.0).min(255)).unwrap_or(255),
        Outcome::TimeLimit { .. } => TIME_LIMIT,
        Outcome::MemoryLimit => MEMORY_LIMIT,
        Outcome::OutputLimit { .. } => OUTPUT_LIMIT,
        Outcome::FileSizeLimit { .. } => FILE_SIZE_LIMIT,
        Outcome::Violation { .. } => VIOLATION,
        Outcome::CompileError => COMPILE_ERROR,
        Outcome::DependencyError => DEPENDENCY_ERROR,
        // The cancel killed the program (`SIGKILL`); only a recorded execution says so.
        Outcome::Cancelled => 128 + 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::{Signal, TimeLimitKind};

    #[test]
    fn codes_are_distinct_and_follow_conventions() {
        assert_eq!(for_outcome(&Outcome::Exited { code: 3 }), 3);
        assert_eq!(for_outcome(&Outcome::Signaled { signal: Signal(11) }), 139);
        assert_eq!(
            for_outcome(&Outcome::TimeLimit {
                which: TimeLimitKind::Cpu
            }),
            124
        );
        let mut codes = [
            TIME_LIMIT,
            WARDEN_ERROR,
            MEMORY_LIMIT,
            OUTPUT_LIMIT,
            FILE_SIZE_LIMIT,
            VIOLATION,
            COMPILE_ERROR,
            REFUSED,
            DEPENDENCY_ERROR,
        ]
        .to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), 9);
    }
}
