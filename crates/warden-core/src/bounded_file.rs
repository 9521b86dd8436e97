//! Reading a file the operator names (the configuration, a language override, a network
//! policy, a tool's definition and program) or a stream standing for one (a tool call's
//! input on standard input), with a bound.
//!
//! `std::fs::read` grows its buffer until the file ends: `WARDEN_CONFIG=/dev/zero` (or an
//! override that links to it) grew the process until the host's OOM killer ran, which could
//! end other processes as well. A file where a file is expected must be a regular file: a
//! FIFO would block `open(2)` until a writer comes (forever, when none does), a device or a
//! socket is never what was meant. Errors are `std::io::Error`s, as `std::fs::read`'s are,
//! so that the callers' errors name the file as they already did (`reading PATH: ...`), and a
//! missing file keeps its `NotFound` kind.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::units::ByteSize;

/// The most read of a configuration file, a language's file, a network policy, a tool's
/// definition or a tool call's input: real ones are a few KiB; 4 MiB leaves room for a
/// generated one while a mistake (a device, a log file) fails at once.
pub const MAX_SETTINGS_FILE: u64 = 4 << 20;

/// The most read of a program file an operator's tool definition names: the total
/// `warden run` reads of a program's files.
pub const MAX_PROGRAM_FILE: u64 = 16 << 20;

/// The bytes of the regular file at `path` (symlinks followed), at most `most` of them.
pub fn read(path: &Path, most: u64) -> io::Result<Vec<u8>> {
    // O_NONBLOCK: opening a FIFO with no writer returns at once (and is refused below)
    // instead of blocking; it changes nothing for a regular file's reads.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file ({what})"),
        ));
    }
    read_from(file, most)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, most: u64) -> io::Result<String> {
    String::from_utf8(read(path, most)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// What `reader` gives until its end, refused once it gives more than `most` bytes.
pub fn read_from(reader: impl Read, most: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(most.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > most {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "larger than {}, the most warden reads of it",
                ByteSize(most)
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_or_fifo_is_refused_without_reading_or_blocking() {
        for path in ["/dev/zero", "/dev/null"] {
            let e = read(Path::new(path), 10).expect_err(path);
            assert_eq!(e.to_string(), "not a regular file (a device)", "{path}");
        }
        let dir = tempfile_dir();
        let fifo = dir.join("f");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let e = read(&fifo, 10).expect_err("a FIFO");
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        let e = read(&dir, 10).expect_err("a directory");
        assert_eq!(e.to_string(), "not a regular file (a directory)");
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn a_file_or_stream_longer_than_the_bound_is_refused() {
        let e = read_from(io::repeat(0), 1 << 20).expect_err("endless");
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(
            e.to_string(),
            "larger than 1MiB, the most warden reads of it"
        );
        assert_eq!(read_from(&b"abc"[..], 3).expect("at the bound"), b"abc");
        let dir = tempfile_dir();
        let file = dir.join("f");
        std::fs::write(&file, "x = 1\n").expect("written");
        assert_eq!(read_to_string(&file, 6).expect("read"), "x = 1\n");
        assert!(read_to_string(&file, 5).is_err());
        let missing = read(&dir.join("missing"), 5).expect_err("missing");
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    /// A directory of this test's own.
    fn tempfile_dir() -> std::path::PathBuf {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "warden-core-bounded-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
