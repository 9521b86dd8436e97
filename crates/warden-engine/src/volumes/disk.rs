//! A volume's filesystem on the host: the image made with `mkfs.ext4`, loop-mounted with
//! `mount(8)` and unmounted with `umount2(2)`. Programs run as children with a clean
//! environment and absolute paths; they are off the hot path (create, and a volume's first
//! lease). mount(8) sets up the loop device with autoclear, so the kernel detaches it when
//! the filesystem is unmounted (losetup(8), "autoclear").

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use warden_core::ByteSize;

use super::VolumeError;

const MKFS: &str = "/usr/sbin/mkfs.ext4";
const MOUNT: &str = "/usr/bin/mount";

/// Makes a volume's directory at `dir` (0700): its `image` of `size`, its blocks reserved on
/// the host's file system (a sparse image would take them only as the program writes, and a
/// host file system filling up meanwhile would lose the writes the program was told had
/// succeeded: a volume's quota is space it has), formatted ext4,
/// owned 0:0 at its root (the sandbox's root, through the id-mapped bind), no journal (a
/// volume is rebuilt by nobody; the journal would take quota), no blocks reserved for root
/// (all of the quota is usable), and the empty mount point `mnt/`.
pub(super) fn build(dir: &Path, size: ByteSize) -> Result<(), VolumeError> {
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(VolumeError::io("creating", dir))?;
    let image = dir.join("image");
    let file = std::fs::File::create(&image).map_err(VolumeError::io("creating", &image))?;
    let len = i64::try_from(size.bytes()).map_err(|_| {
        VolumeError::io("sizing", &image)(std::io::Error::from(nix::errno::Errno::EFBIG))
    })?;
    match nix::fcntl::fallocate(&file, nix::fcntl::FallocateFlags::empty(), 0, len) {
        Ok(()) => {}
        Err(nix::errno::Errno::ENOSPC) => {
            return Err(VolumeError::NoSpace {
                size,
                dir: dir.parent().unwrap_or(dir).to_owned(),
            })
        }
        // A file system that cannot reserve (ext2, ext3 without extents, some network file
        // systems): a sparse image, as before, the host's free space then being the limit.
        Err(nix::errno::Errno::EOPNOTSUPP) => {
            tracing::warn!(image = %image.display(), "the file system cannot reserve a volume's space: its image is sparse");
            file.set_len(size.bytes())
                .map_err(VolumeError::io("sizing", &image))?;
        }
        Err(e) => return Err(VolumeError::io("reserving the space of", &image)(e.into())),
    }
    drop(file);
    let mut mkfs = command(MKFS, "e2fsprogs")?;
    mkfs.args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
        .args(["-E", "root_owner=0:0,nodiscard"])
        .arg(&image);
    run("formatting the volume's image", MKFS, mkfs)?;
    let mnt = dir.join("mnt");
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&mnt)
        .map_err(VolumeError::io("creating", &mnt))
}

/// Loop-mounts `image` on `mnt`: `nosuid` and `nodev`, but not `noexec`, which would reach the
/// sandbox's bind too, and a program may keep a script on a volume.
pub(super) fn mount(image: &Path, mnt: &Path) -> Result<(), VolumeError> {
    let mut mount = command(MOUNT, "mount")?;
    mount
        .args(["-t", "ext4", "-o", "loop,nosuid,nodev"])
        .arg(image)
        .arg(mnt);
    run("mounting the volume", MOUNT, mount)
}

/// How long an unmount waits for the kernel to detach the volume's loop device.
const LOOP_DETACH_WAIT: Duration = Duration::from_secs(5);

/// Unmounts `mnt` and waits until its loop device is detached: the kernel clears an autoclear
/// device after the last close from a work queue, so without the wait a `remove` could delete
/// the image while a loop device still holds it, and a test could see the device left. A host
/// process with a file open there keeps the mount busy: it is then detached, and the kernel
/// frees it (and the loop device) when that file closes.
pub(super) fn unmount(mnt: &Path) -> Result<(), VolumeError> {
    let device = loop_device_of(mnt);
    match umount2(mnt, MntFlags::empty()) {
        Ok(()) => {
            if let Some(device) = device {
                wait_detached(&device);
            }
            Ok(())
        }
        Err(nix::errno::Errno::EBUSY) => {
            tracing::warn!(mnt = %mnt.display(), "volume busy on the host; detached");
            umount2(mnt, MntFlags::MNT_DETACH)
                .map_err(|e| VolumeError::io("unmounting", mnt)(e.into()))
        }
        Err(e) => Err(VolumeError::io("unmounting", mnt)(e.into())),
    }
}

/// Unmounts `mnt` if something is mounted there.
pub(super) fn unmount_if_mounted(mnt: &Path) -> Result<(), VolumeError> {
    if is_mounted(mnt)? {
        unmount(mnt)?;
    }
    Ok(())
}

/// Whether a filesystem is mounted on `mnt` in this process's mount namespace
/// (`/proc/self/mountinfo`, proc(5)).
pub(super) fn is_mounted(mnt: &Path) -> Result<bool, VolumeError> {
    let Ok(mnt) = std::fs::canonicalize(mnt) else {
        return Ok(false);
    };
    let info = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(info).map_err(VolumeError::io("reading", info))?;
    let mounted = mount_points(&text).any(|p| p == mnt);
    Ok(mounted)
}

/// The loop device (`loop2`) mounted on `mnt`, if any.
fn loop_device_of(mnt: &Path) -> Option<String> {
    let mnt = std::fs::canonicalize(mnt).ok()?;
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let line = text
        .lines()
        .find(|line| line.split(' ').nth(4).map(unescape).as_deref() == Some(mnt.as_path()))?;
    // The source follows the separator and the filesystem type.
    let (_, after) = line.split_once(" - ")?;
    let source = after.split(' ').nth(1)?;
    source
        .strip_prefix("/dev/")
        .filter(|d| d.starts_with("loop"))
        .map(str::to_owned)
}

/// Waits, at most [`LOOP_DETACH_WAIT`], until `device` has no backing file.
fn wait_detached(device: &str) {
    let backing = PathBuf::from(format!("/sys/block/{device}/loop/backing_file"));
    let started = Instant::now();
    while backing.exists() {
        if started.elapsed() >= LOOP_DETACH_WAIT {
            tracing::warn!(device, "loop device still attached after the unmount");
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The mount points of a mountinfo text: the fifth field, with its octal escapes undone.
fn mount_points(text: &str) -> impl Iterator<Item = PathBuf> + '_ {
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
}

/// Undoes the kernel's `\ooo` escapes of space, tab, newline and backslash.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The bytes used in the filesystem mounted on `mnt` (statvfs(3)); an error when nothing is
/// mounted there, since the host's filesystem would answer instead.
pub(super) fn used(mnt: &Path) -> Result<ByteSize, VolumeError> {
    if !is_mounted(mnt)? {
        return Err(VolumeError::io("measuring", mnt)(std::io::Error::other(
            "not mounted",
        )));
    }
    let stat =
        nix::sys::statvfs::statvfs(mnt).map_err(|e| VolumeError::io("measuring", mnt)(e.into()))?;
    let blocks = stat.blocks().saturating_sub(stat.blocks_free());
    Ok(ByteSize(blocks.saturating_mul(stat.fragment_size())))
}

/// `program` with a clean environment, no input, its output captured; refused when missing.
fn command(program: &'static str, package: &'static str) -> Result<Command, VolumeError> {
    if !Path::new(program).exists() {
        return Err(VolumeError::MissingProgram { program, package });
    }
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Ok(cmd)
}

fn run(step: &'static str, program: &'static str, mut cmd: Command) -> Result<(), VolumeError> {
    let out = cmd
        .output()
        .map_err(VolumeError::io("running", Path::new(program)))?;
    if out.status.success() {
        return Ok(());
    }
    Err(VolumeError::Program {
        step,
        program,
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_with_their_escapes_undone() {
        let text = "36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n\
                    37 35 98:0 /x /srv/back\\134slash rw - ext4 /dev/sda1 rw\n";
        let points: Vec<PathBuf> = mount_points(text).collect();
        assert_eq!(
            points,
            [PathBuf::from("/mnt/a b"), PathBuf::from("/srv/back\\slash")]
        );
    }
}
