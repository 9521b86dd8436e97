/*
 * Preloaded into every dynamically linked program of a gVisor sandbox (the sandbox's own
 * /etc/ld.so.preload, written by bundle.rs): the runsc of Debian 12 (release 20221219) answers
 * EINVAL to statx and newfstatat given AT_NO_AUTOMOUNT, which coreutils passes (`ls /`, `stat`,
 * `cp` failed with "Invalid argument"). The flag means nothing there (gVisor has no automount
 * points), so these wrappers make the same calls without it. Built by build.rs and embedded in
 * the warden binary; a static program does not read ld.so.preload and is unaffected.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
	return (int)syscall(SYS_statx, dirfd, path, flags & ~AT_NO_AUTOMOUNT, mask, buf);
}

int fstatat(int dirfd, const char *path, struct stat *buf, int flags)
{
	return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}

int fstatat64(int dirfd, const char *path, struct stat64 *buf, int flags)
{
	return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags & ~AT_NO_AUTOMOUNT);
}
