/*
 * The isolation probe: runs INSIDE a warden sandbox and reports, as one JSON object on stdout,
 * what the sandbox looks like from the inside (identity, capabilities, seccomp mode, network
 * interfaces, rlimits, mounts), the result of named escape attempts and denied system calls, and
 * of calls the policy narrows but must still allow (the socket families programs need).
 * tests/isolation.rs compiles it (gcc -static), runs it and asserts on the report.
 *
 * Modes:
 *   probe                  the report
 *   probe fatal <name>     makes one call the policy answers with a kill (SIGSYS)
 *   probe x32              a call with the x32 bit set: the filter must kill the process
 *   probe i386             a call through the i386 ABI (int $0x80): the filter must kill
 *
 * Never run it on the host: it is meant to be refused everything. Even so, every attempt uses
 * arguments that make the call fail harmlessly (or do nothing lasting) were it not filtered, and
 * it only ever connects to 1.1.1.1:80 and 10.0.2.2:80.
 *
 * Each attempt runs in a forked child so that one that wrongly succeeds (an unshare, a chroot,
 * PTRACE_TRACEME) cannot change what the next one sees. "ok": true means the attempt SUCCEEDED,
 * which is a sandbox failure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- JSON output --------------------------------------------------------------------------- */

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p == '\n') {
            fputs("\\n", stdout);
        } else if (*p < 0x20 || *p >= 0x7f) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

static void read_file(const char *path, char *buf, size_t size) {
    buf[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(buf, size, "<open failed: errno %d>", errno);
        return;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(fd);
}

/* ---- Facts --------------------------------------------------------------------------------- */

static void report_status_lines(void) {
    static const char *const keys[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                       "NoNewPrivs", "Seccomp", "Seccomp_filters", "SigIgn",
                                       "SigBlk"};
    static char status[16384];
    read_file("/proc/self/status", status, sizeof status);
    printf("\"status\":{");
    int first = 1;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        size_t klen = strlen(keys[k]);
        for (char *line = status; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            if (strncmp(line, keys[k], klen) != 0 || line[klen] != ':') {
                continue;
            }
            char value[128];
            const char *v = line + klen + 1;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            size_t n = strcspn(v, "\n");
            if (n >= sizeof value) {
                n = sizeof value - 1;
            }
            memcpy(value, v, n);
            value[n] = '\0';
            printf("%s", first ? "" : ",");
            first = 0;
            json_string(keys[k]);
            putchar(':');
            json_string(value);
            break;
        }
    }
    printf("}");
}

/* Interface names from /proc/net/dev (two header lines, then "  name: counters"). */
static void report_interfaces(void) {
    static char dev[16384];
    read_file("/proc/net/dev", dev, sizeof dev);
    printf("\"interfaces\":[");
    int line_no = 0, first = 1;
    for (char *line = dev; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (line_no++ < 2) {
            continue;
        }
        while (*line == ' ') {
            line++;
        }
        char *colon = strchr(line, ':');
        char *eol = strchr(line, '\n');
        if (!colon || (eol && colon > eol)) {
            continue;
        }
        char name[64];
        size_t n = (size_t)(colon - line) < sizeof name - 1 ? (size_t)(colon - line) : sizeof name - 1;
        memcpy(name, line, n);
        name[n] = '\0';
        printf("%s", first ? "" : ",");
        first = 0;
        json_string(name);
    }
    printf("]");
}

static void report_rlimits(void) {
    static const struct {
        const char *name;
        int resource;
    } limits[] = {{"cpu", RLIMIT_CPU},     {"fsize", RLIMIT_FSIZE}, {"nofile", RLIMIT_NOFILE},
                  {"nproc", RLIMIT_NPROC}, {"core", RLIMIT_CORE},   {"sigpending", RLIMIT_SIGPENDING},
                  {"msgqueue", RLIMIT_MSGQUEUE}, {"stack", RLIMIT_STACK}, {"rtprio", RLIMIT_RTPRIO},
                  {"nice", RLIMIT_NICE},   {"memlock", RLIMIT_MEMLOCK}};
    printf("\"rlimits\":{");
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        struct rlimit rl;
        if (getrlimit(limits[i].resource, &rl) != 0) {
            rl.rlim_cur = rl.rlim_max = 0;
        }
        printf("%s\"%s\":[%llu,%llu]", i ? "," : "", limits[i].name, (unsigned long long)rl.rlim_cur,
               (unsigned long long)rl.rlim_max);
    }
    printf("}");
}

/* The owner of this process's user namespace, as this namespace sees it (ioctl_ns(2)
 * NS_GET_OWNER_UID); -1 when it cannot be read. An owner outside the namespace's map reads as
 * the overflow uid. */
static long userns_owner(void) {
    int fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    uid_t owner;
    long r = ioctl(fd, 0xb704 /* NS_GET_OWNER_UID */, &owner);
    close(fd);
    return r == 0 ? (long)owner : -1;
}

/* Mount point and per-mount options of every line of /proc/self/mountinfo. */
static void report_mounts(void) {
    static char info[65536];
    read_file("/proc/self/mountinfo", info, sizeof info);
    printf("\"mounts\":[");
    int first = 1;
    for (char *line = info; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char path[1024], options[512];
        if (sscanf(line, "%*s %*s %*s %*s %1023s %511s", path, options) != 2) {
            continue;
        }
        printf("%s{\"path\":", first ? "" : ",");
        first = 0;
        json_string(path);
        printf(",\"options\":");
        json_string(options);
        printf("}");
    }
    printf("]");
}

/* Every entry of /dev with its type: c (character device), l (symlink), d, f or ?. */
static void report_dev(void) {
    printf("\"dev\":[");
    DIR *dir = opendir("/dev");
    int first = 1;
    for (struct dirent *e = dir ? readdir(dir) : NULL; e; e = readdir(dir)) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char path[512];
        snprintf(path, sizeof path, "/dev/%s", e->d_name);
        struct stat st;
        char type = '?';
        if (lstat(path, &st) == 0) {
            type = S_ISCHR(st.st_mode) ? 'c' : S_ISLNK(st.st_mode) ? 'l' : S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : '?';
        }
        printf("%s\"%c %s\"", first ? "" : ",", type, e->d_name);
        first = 0;
    }
    if (dir) {
        closedir(dir);
    }
    printf("]");
}

/* ---- Attempts ------------------------------------------------------------------------------ */

/* Each returns what the call returned (negative with errno set on failure). */
typedef long (*attempt_fn)(void);

struct attempt {
    const char *name;
    attempt_fn run;
};

static long try_open_read(const char *path, int flags) {
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    return n < 0 && errno != EISDIR ? -1 : 0;
}

static long try_create(const char *path) {
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

/* A TCP connection to ip:80, non-blocking with a one-second bound. */
static long try_connect(const char *ip) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(80)};
    inet_pton(AF_INET, ip, &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        return 0;
    }
    if (errno != EINPROGRESS) {
        return -1;
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    if (poll(&p, 1, 1000) <= 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

static long esc_shadow(void) { return try_open_read("/etc/shadow", O_RDONLY); }
static long esc_root(void) { return try_open_read("/root", O_RDONLY | O_DIRECTORY); }
static long esc_opt(void) { return try_open_read("/opt", O_RDONLY | O_DIRECTORY); }
static long esc_srv(void) { return try_open_read("/srv", O_RDONLY | O_DIRECTORY); }
static long esc_var(void) { return try_open_read("/var", O_RDONLY | O_DIRECTORY); }
static long esc_home(void) { return try_open_read("/home", O_RDONLY | O_DIRECTORY); }
static long esc_sys(void) { return try_open_read("/sys", O_RDONLY | O_DIRECTORY); }
static long esc_run(void) { return try_open_read("/run", O_RDONLY | O_DIRECTORY); }
static long esc_init_environ(void) { return try_open_read("/proc/1/environ", O_RDONLY); }
static long esc_write_usr(void) { return try_create("/usr/x"); }
static long esc_write_root(void) { return try_create("/x"); }
static long esc_write_etc(void) { return try_create("/etc/x"); }
static long esc_write_dev(void) { return try_create("/dev/x"); }
static long esc_mkdir_proc(void) { return mkdir("/proc/x", 0755); }
static long esc_chmod_dev_null(void) { return chmod("/dev/null", 0600); }
static long esc_mkdir_dev(void) { return mkdir("/dev/x", 0755); }
/* A pseudo-terminal pair, through either multiplexer. */
static long esc_open_ptmx(void) { return open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC); }
static long esc_open_pts_ptmx(void) { return open("/dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC); }
static long esc_connect_public(void) { return try_connect("1.1.1.1"); }
static long esc_connect_gateway(void) { return try_connect("10.0.2.2"); }

static const struct attempt escapes[] = {
    {"open /etc/shadow", esc_shadow},
    {"open /root", esc_root},
    {"open /opt", esc_opt},
    {"open /srv", esc_srv},
    {"open /var", esc_var},
    {"open /home", esc_home},
    {"open /sys", esc_sys},
    {"open /run", esc_run},
    {"read /proc/1/environ", esc_init_environ},
    {"write /usr/x", esc_write_usr},
    {"write /x", esc_write_root},
    {"write /etc/x", esc_write_etc},
    {"write /dev/x", esc_write_dev},
    {"mkdir /proc/x", esc_mkdir_proc},
    {"chmod /dev/null", esc_chmod_dev_null},
    {"mkdir /dev/x", esc_mkdir_dev},
    {"open /dev/ptmx", esc_open_ptmx},
    {"open /dev/pts/ptmx", esc_open_pts_ptmx},
    {"connect 1.1.1.1:80", esc_connect_public},
    {"connect 10.0.2.2:80", esc_connect_gateway},
};

#define NOWHERE "/nonexistent-warden-probe"

/* clone(2) as a raw call, fork-like (no new stack); a child that exists exits at once. */
static long raw_clone(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) {
        _exit(0);
    }
    if (pid > 0) {
        waitpid((pid_t)pid, NULL, 0);
    }
    return pid;
}

static long sc_mount(void) { return syscall(SYS_mount, "none", NOWHERE, "tmpfs", 0, NULL); }
static long sc_umount2(void) { return syscall(SYS_umount2, NOWHERE, 0); }
static long sc_fsopen(void) { return syscall(SYS_fsopen, "warden-no-such-fs", 0); }
static long sc_fsconfig(void) { return syscall(SYS_fsconfig, -1, 0, NULL, NULL, 0); }
static long sc_fsmount(void) { return syscall(SYS_fsmount, -1, 0, 0); }
static long sc_fspick(void) { return syscall(SYS_fspick, AT_FDCWD, NOWHERE, 0); }
static long sc_move_mount(void) { return syscall(SYS_move_mount, -1, "", -1, "", 0); }
/* Without OPEN_TREE_CLONE this only opens an O_PATH descriptor: needs no privilege. */
static long sc_open_tree(void) { return syscall(SYS_open_tree, AT_FDCWD, "/", O_CLOEXEC); }
static long sc_mount_setattr(void) { return syscall(SYS_mount_setattr, -1, "", 0, NULL, 0); }
static long sc_pivot_root(void) { return syscall(SYS_pivot_root, NOWHERE, NOWHERE); }
/* Unfiltered: ENOENT, since the path is looked up before the capability check. */
static long sc_chroot(void) { return syscall(SYS_chroot, NOWHERE); }
/* Unfiltered: EOVERFLOW (a zero-sized handle buffer); needs no privilege. */
static long sc_name_to_handle_at(void) {
    struct {
        unsigned int handle_bytes;
        int handle_type;
    } handle = {0, 0};
    int mount_id;
    return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", &handle, &mount_id, 0);
}
static long sc_quotactl(void) { return syscall(SYS_quotactl, 0, NULL, 0, NULL); }
static long sc_quotactl_fd(void) { return syscall(SYS_quotactl_fd, -1, 0, 0, NULL); }
/* FAN_CLASS_NOTIF | FAN_REPORT_FID: the unprivileged form (Linux 5.13). */
static long sc_fanotify_init(void) { return syscall(SYS_fanotify_init, 0x00000200, O_RDONLY); }
/* Unfiltered: succeeds (a nested user namespace needs no privilege). */
static long sc_unshare_user(void) { return syscall(SYS_unshare, CLONE_NEWUSER); }
static long sc_unshare_mount(void) { return syscall(SYS_unshare, CLONE_NEWNS); }
/* Unfiltered: EBADF. */
static long sc_setns(void) { return syscall(SYS_setns, -1, 0); }
static long sc_clone_user(void) { return raw_clone(CLONE_NEWUSER); }
static long sc_clone_ns(void) { return raw_clone(CLONE_NEWNS); }
static long sc_clone_uts(void) { return raw_clone(CLONE_NEWUTS); }
static long sc_clone_ipc(void) { return raw_clone(CLONE_NEWIPC); }
static long sc_clone_pid(void) { return raw_clone(CLONE_NEWPID); }
static long sc_clone_net(void) { return raw_clone(CLONE_NEWNET); }
static long sc_clone_cgroup(void) { return raw_clone(CLONE_NEWCGROUP); }
/* CLONE_NEWTIME (0x80) shares clone(2)'s exit-signal byte; unfiltered: EINVAL. */
static long sc_clone_time(void) { return raw_clone(0x80); }
/* Unfiltered: EINVAL (a NULL, zero-sized clone_args). */
static long sc_clone3(void) { return syscall(SYS_clone3, NULL, 0); }
/* Unfiltered: succeeds. */
static long sc_ptrace(void) { return syscall(SYS_ptrace, PTRACE_TRACEME, 0, NULL, NULL); }
/* Unfiltered: 0 bytes moved from or to our own memory. */
static long sc_process_vm_readv(void) { return syscall(SYS_process_vm_readv, getpid(), NULL, 0, NULL, 0, 0); }
static long sc_process_vm_writev(void) { return syscall(SYS_process_vm_writev, getpid(), NULL, 0, NULL, 0, 0); }
static long sc_pidfd_getfd(void) { return syscall(SYS_pidfd_getfd, -1, 0, 0); }
static long sc_process_madvise(void) { return syscall(SYS_process_madvise, -1, NULL, 0, 0, 0); }
/* KCMP_FILE on our own descriptor 0: unfiltered 0 (equal). */
static long sc_kcmp(void) { return syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0); }
/* Reads the init's file size limit. Unfiltered: succeeds (same uid); a write would lower it
   for every later job of the sandbox, so the probe only reads. */
static long sc_prlimit64_init(void) {
    struct rlimit old;
    return syscall(SYS_prlimit64, 1, RLIMIT_FSIZE, NULL, &old);
}
static long sc_bpf(void) { return syscall(SYS_bpf, 0, NULL, 0); }
static long sc_perf_event_open(void) { return syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0); }
/* UFFD_USER_MODE_ONLY: the unprivileged form. */
static long sc_userfaultfd(void) { return syscall(SYS_userfaultfd, O_CLOEXEC | 1); }
static long sc_io_uring_setup(void) {
    static char params[120];
    memset(params, 0, sizeof params);
    return syscall(SYS_io_uring_setup, 1, params);
}
static long sc_io_uring_enter(void) { return syscall(SYS_io_uring_enter, -1, 0, 0, 0, NULL, 0); }
static long sc_io_uring_register(void) { return syscall(SYS_io_uring_register, -1, 0, NULL, 0); }
/* Unfiltered, io_setup makes a context of one event, gone with the attempt's child; the
 * others fail with EINVAL on context 0. */
static long sc_io_setup(void) {
    unsigned long ctx = 0;
    return syscall(SYS_io_setup, 1, &ctx);
}
static long sc_io_destroy(void) { return syscall(SYS_io_destroy, 0); }
static long sc_io_submit(void) { return syscall(SYS_io_submit, 0, 0, NULL); }
static long sc_io_cancel(void) { return syscall(SYS_io_cancel, 0, NULL, NULL); }
static long sc_io_getevents(void) { return syscall(SYS_io_getevents, 0, 0, 0, NULL, NULL); }
static long sc_io_pgetevents(void) { return syscall(SYS_io_pgetevents, 0, 0, 0, NULL, NULL, NULL); }
/* Reads the (empty) LDT. */
static long sc_modify_ldt(void) {
    static char ldt[16];
    return syscall(SYS_modify_ldt, 0, ldt, sizeof ldt);
}
static long sc_uselib(void) { return syscall(SYS_uselib, NOWHERE); }
static long sc_nfsservctl(void) { return syscall(SYS_nfsservctl, 0, NULL, NULL); }
/* In the process keyring, which dies with the process. */
static long sc_add_key(void) { return syscall(SYS_add_key, "user", "warden-probe", "x", 1, -2); }
static long sc_request_key(void) { return syscall(SYS_request_key, "user", "warden-probe-absent", NULL, 0); }
/* KEYCTL_GET_KEYRING_ID of the process keyring, without creating it. */
static long sc_keyctl(void) { return syscall(SYS_keyctl, 0, -2, 0); }
/* Magic 0: EINVAL even for a privileged caller, so it could never reboot anything. */
static long sc_reboot(void) { return syscall(SYS_reboot, 0, 0, 0, NULL); }
static long sc_swapon(void) { return syscall(SYS_swapon, NOWHERE, 0); }
static long sc_swapoff(void) { return syscall(SYS_swapoff, NOWHERE); }
static long sc_acct(void) { return syscall(SYS_acct, NOWHERE); }
/* SYSLOG_ACTION_SIZE_BUFFER: a read. */
static long sc_syslog(void) { return syscall(SYS_syslog, 10, NULL, 0); }
static long sc_lookup_dcookie(void) { return syscall(SYS_lookup_dcookie, 0, NULL, 0); }
/* Level 0 never raises anything. */
static long sc_iopl(void) { return syscall(SYS_iopl, 0); }
/* An empty range: EINVAL. */
static long sc_ioperm(void) { return syscall(SYS_ioperm, 0, 0, 0); }
/* In a new session: no controlling terminal to hang up. */
static long sc_vhangup(void) {
    setsid();
    return syscall(SYS_vhangup);
}
/* Clock id 1000 does not exist: EINVAL. */
static long sc_clock_settime(void) {
    struct timespec ts = {0, 0};
    return syscall(SYS_clock_settime, 1000, &ts);
}
/* tv_usec out of range: EINVAL before anything is set. */
static long sc_settimeofday(void) {
    struct timeval tv = {0, 2000000};
    return syscall(SYS_settimeofday, &tv, NULL);
}
/* modes 0 only reads the clock state, which needs no privilege. */
static long sc_adjtimex(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    return syscall(SYS_adjtimex, &tx);
}
static long sc_clock_adjtime(void) {
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    return syscall(SYS_clock_adjtime, 1000, &tx);
}
/*
 * Socket families outside the allow list (issue 8). Unfiltered, AF_VSOCK succeeds wherever the
 * kernel has it (a virtual machine guest); AF_PACKET fails with EPERM (no CAP_NET_RAW), which
 * tells the filter's EAFNOSUPPORT apart.
 */
static long sc_socket_vsock(void) { return socket(AF_VSOCK, SOCK_STREAM, 0); }
/* The kernel reads the family as an int: this is AF_VSOCK to it, and must be to the filter. */
static long sc_socket_vsock_high(void) { return syscall(SYS_socket, (1L << 32) | AF_VSOCK, SOCK_STREAM, 0); }
static long sc_socket_packet(void) { return socket(AF_PACKET, SOCK_RAW, 0); }
static long sc_socket_alg(void) { return socket(AF_ALG, SOCK_SEQPACKET, 0); }
/* PF_KEY_V2 (2), <linux/pfkeyv2.h>. */
static long sc_socket_key(void) { return socket(AF_KEY, SOCK_RAW, 2); }
/* BTPROTO_HCI (1), <bluetooth/bluetooth.h>. */
static long sc_socket_bluetooth(void) { return socket(AF_BLUETOOTH, SOCK_RAW, 1); }
/*
 * Netlink, NETLINK_ROUTE included: its receive queues are memory no cgroup is charged for.
 * Unfiltered, creating either needs no privilege.
 */
static long sc_socket_netlink_route(void) { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE); }
static long sc_socket_netlink_audit(void) { return socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT); }
static long sc_socketpair_vsock(void) {
    int sv[2];
    return socketpair(AF_VSOCK, SOCK_STREAM, 0, sv);
}

/*
 * Hunt escape F2: inet sockets of types and protocols beyond TCP, UDP and ICMP. Unfiltered,
 * AF_INET with SOCK_PACKET becomes an AF_PACKET socket in the kernel (EPERM without
 * CAP_NET_RAW), MPTCP and UDP-Lite succeed, SCTP and DCCP load their modules where the kernel
 * has them (EPROTONOSUPPORT or ESOCKTNOSUPPORT where it has not): none is the filter's
 * EAFNOSUPPORT.
 */
#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif
static long sc_socket_inet_packet(void) { return socket(AF_INET, SOCK_PACKET, htons(3)); }
static long sc_socket_inet_mptcp(void) { return socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP); }
static long sc_socket_inet6_mptcp(void) { return socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_MPTCP); }
static long sc_socket_inet_udplite(void) { return socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE); }
static long sc_socket_inet6_sctp(void) { return socket(AF_INET6, SOCK_SEQPACKET, IPPROTO_SCTP); }
static long sc_socket_inet_dccp(void) { return socket(AF_INET, SOCK_DCCP, IPPROTO_DCCP); }
/*
 * Hunt escape F1: secret memory leaves the kernel's direct map split. Unfiltered, this makes a
 * descriptor and no memory (nothing is split before a page is touched).
 */
static long sc_memfd_secret(void) { return syscall(447 /* SYS_memfd_secret */, 0); }

/* A filter of the program's own (a NULL program: EFAULT unfiltered, nothing installed). */
static long sc_seccomp_filter(void) { return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL); }
static long sc_prctl_set_seccomp(void) { return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0); }

/*
 * Hunt escape F1: a classic BPF socket filter, compiled against the host-wide BPF JIT budget.
 * Unfiltered, this attaches a one-instruction filter (accept all) to a UDP socket.
 */
static long attach_filter(int option) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    struct sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0xffffffff)};
    struct sock_fprog prog = {.len = 1, .filter = code};
    return setsockopt(fd, SOL_SOCKET, option, &prog, sizeof prog);
}
static long sc_attach_filter(void) { return attach_filter(SO_ATTACH_FILTER); }
static long sc_attach_reuseport_cbpf(void) { return attach_filter(51 /* SO_ATTACH_REUSEPORT_CBPF */); }

/* Calls the policy answers with an error. Names are "<syscall>" or "<syscall>:<detail>". */
static const struct attempt denied[] = {
    {"mount", sc_mount},
    {"umount2", sc_umount2},
    {"fsopen", sc_fsopen},
    {"fsconfig", sc_fsconfig},
    {"fsmount", sc_fsmount},
    {"fspick", sc_fspick},
    {"move_mount", sc_move_mount},
    {"open_tree", sc_open_tree},
    {"mount_setattr", sc_mount_setattr},
    {"pivot_root", sc_pivot_root},
    {"chroot", sc_chroot},
    {"name_to_handle_at", sc_name_to_handle_at},
    {"quotactl", sc_quotactl},
    {"quotactl_fd", sc_quotactl_fd},
    {"fanotify_init", sc_fanotify_init},
    {"unshare:CLONE_NEWUSER", sc_unshare_user},
    {"unshare:CLONE_NEWNS", sc_unshare_mount},
    {"setns", sc_setns},
    {"clone:CLONE_NEWUSER", sc_clone_user},
    {"clone:CLONE_NEWNS", sc_clone_ns},
    {"clone:CLONE_NEWUTS", sc_clone_uts},
    {"clone:CLONE_NEWIPC", sc_clone_ipc},
    {"clone:CLONE_NEWPID", sc_clone_pid},
    {"clone:CLONE_NEWNET", sc_clone_net},
    {"clone:CLONE_NEWCGROUP", sc_clone_cgroup},
    {"clone:CLONE_NEWTIME", sc_clone_time},
    {"clone3", sc_clone3},
    {"ptrace:PTRACE_TRACEME", sc_ptrace},
    {"process_vm_readv", sc_process_vm_readv},
    {"process_vm_writev", sc_process_vm_writev},
    {"pidfd_getfd", sc_pidfd_getfd},
    {"process_madvise", sc_process_madvise},
    {"kcmp", sc_kcmp},
    {"prlimit64:pid 1", sc_prlimit64_init},
    {"bpf", sc_bpf},
    {"perf_event_open", sc_perf_event_open},
    {"userfaultfd", sc_userfaultfd},
    {"io_uring_setup", sc_io_uring_setup},
    {"io_uring_enter", sc_io_uring_enter},
    {"io_uring_register", sc_io_uring_register},
    {"io_setup", sc_io_setup},
    {"io_destroy", sc_io_destroy},
    {"io_submit", sc_io_submit},
    {"io_cancel", sc_io_cancel},
    {"io_getevents", sc_io_getevents},
    {"io_pgetevents", sc_io_pgetevents},
    {"modify_ldt", sc_modify_ldt},
    {"uselib", sc_uselib},
    {"nfsservctl", sc_nfsservctl},
    {"add_key", sc_add_key},
    {"request_key", sc_request_key},
    {"keyctl", sc_keyctl},
    {"reboot", sc_reboot},
    {"swapon", sc_swapon},
    {"swapoff", sc_swapoff},
    {"acct", sc_acct},
    {"syslog", sc_syslog},
    {"lookup_dcookie", sc_lookup_dcookie},
    {"iopl", sc_iopl},
    {"ioperm", sc_ioperm},
    {"vhangup", sc_vhangup},
    {"clock_settime", sc_clock_settime},
    {"settimeofday", sc_settimeofday},
    {"adjtimex", sc_adjtimex},
    {"clock_adjtime", sc_clock_adjtime},
    {"socket:AF_VSOCK", sc_socket_vsock},
    {"socket:AF_VSOCK+high", sc_socket_vsock_high},
    {"socket:AF_PACKET", sc_socket_packet},
    {"socket:AF_ALG", sc_socket_alg},
    {"socket:AF_KEY", sc_socket_key},
    {"socket:AF_BLUETOOTH", sc_socket_bluetooth},
    {"socket:NETLINK_ROUTE", sc_socket_netlink_route},
    {"socket:NETLINK_AUDIT", sc_socket_netlink_audit},
    {"socketpair:AF_VSOCK", sc_socketpair_vsock},
    {"socket:AF_INET/SOCK_PACKET", sc_socket_inet_packet},
    {"socket:AF_INET/IPPROTO_MPTCP", sc_socket_inet_mptcp},
    {"socket:AF_INET6/IPPROTO_MPTCP", sc_socket_inet6_mptcp},
    {"socket:AF_INET/IPPROTO_UDPLITE", sc_socket_inet_udplite},
    {"socket:AF_INET6/IPPROTO_SCTP", sc_socket_inet6_sctp},
    {"socket:AF_INET/SOCK_DCCP", sc_socket_inet_dccp},
    {"memfd_secret", sc_memfd_secret},
    {"seccomp:SECCOMP_SET_MODE_FILTER", sc_seccomp_filter},
    {"prctl:PR_SET_SECCOMP", sc_prctl_set_seccomp},
    {"setsockopt:SO_ATTACH_FILTER", sc_attach_filter},
    {"setsockopt:SO_ATTACH_REUSEPORT_CBPF", sc_attach_reuseport_cbpf},
};

/* Calls the policy narrows and must still let through: the socket families programs need, and
   a program's own limits. */
static long ok_unix_stream(void) { return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); }
static long ok_unix_dgram(void) { return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0); }
static long ok_inet_stream(void) { return socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0); }
static long ok_inet_dgram(void) { return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); }
static long ok_inet6_stream(void) { return socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0); }
static long ok_inet6_dgram(void) { return socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0); }
static long ok_inet_tcp(void) { return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP); }
static long ok_inet6_udp(void) { return socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_UDP); }
/* Advice the policy ignores: returns 0 whether it runs or not (tests/hostile.rs measures it). */
static long ok_fadvise_dontneed(void) {
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    int err = posix_fadvise(fd, 0, 4096, POSIX_FADV_DONTNEED);
    errno = err;
    return err ? -1 : 0;
}
static long ok_socketpair_unix(void) {
    int sv[2];
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

/* The probe's own limit, as glibc's getrlimit reads it (pid 0). */
static long ok_prlimit64_self(void) {
    struct rlimit old;
    return syscall(SYS_prlimit64, 0, RLIMIT_FSIZE, NULL, &old);
}

/* The seccomp operations that install nothing, and prctl's other options. */
static long ok_seccomp_action_avail(void) {
    unsigned int action = SECCOMP_RET_ERRNO;
    return syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action);
}
static long ok_prctl_get_seccomp(void) { return prctl(PR_GET_SECCOMP, 0, 0, 0, 0); }

/* Every other socket option. */
static long ok_setsockopt_reuseaddr(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    return fd < 0 ? -1 : setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
}

static const struct attempt allowed[] = {
    {"socket:AF_UNIX/SOCK_STREAM", ok_unix_stream},
    {"socket:AF_UNIX/SOCK_DGRAM", ok_unix_dgram},
    {"socket:AF_INET/SOCK_STREAM", ok_inet_stream},
    {"socket:AF_INET/SOCK_DGRAM", ok_inet_dgram},
    {"socket:AF_INET6/SOCK_STREAM", ok_inet6_stream},
    {"socket:AF_INET6/SOCK_DGRAM", ok_inet6_dgram},
    {"socket:AF_INET/IPPROTO_TCP", ok_inet_tcp},
    {"socket:AF_INET6/IPPROTO_UDP", ok_inet6_udp},
    {"socketpair:AF_UNIX", ok_socketpair_unix},
    {"prlimit64:pid 0", ok_prlimit64_self},
    {"seccomp:SECCOMP_GET_ACTION_AVAIL", ok_seccomp_action_avail},
    {"prctl:PR_GET_SECCOMP", ok_prctl_get_seccomp},
    {"fadvise64:POSIX_FADV_DONTNEED", ok_fadvise_dontneed},
    {"setsockopt:SO_REUSEADDR", ok_setsockopt_reuseaddr},
};

static long sc_open_by_handle_at(void) { return syscall(SYS_open_by_handle_at, -1, NULL, 0); }
static long sc_init_module(void) { return syscall(SYS_init_module, NULL, 0, ""); }
static long sc_finit_module(void) { return syscall(SYS_finit_module, -1, "", 0); }
static long sc_delete_module(void) { return syscall(SYS_delete_module, "warden_probe_absent", O_NONBLOCK); }
/* 17 segments (one over KEXEC_SEGMENT_MAX) and an unknown flag: EINVAL, nothing unloaded. */
static long sc_kexec_load(void) { return syscall(SYS_kexec_load, 0, 17, NULL, 0x100); }
static long sc_kexec_file_load(void) { return syscall(SYS_kexec_file_load, -1, -1, 0, "", 0x100); }

/* Calls the policy answers by killing the process: one per `probe fatal <name>` run. */
static const struct attempt fatal[] = {
    {"open_by_handle_at", sc_open_by_handle_at},
    {"init_module", sc_init_module},
    {"finit_module", sc_finit_module},
    {"delete_module", sc_delete_module},
    {"kexec_load", sc_kexec_load},
    {"kexec_file_load", sc_kexec_file_load},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Runs one attempt in a child. The child exits with SUCCEEDED if the call returned >= 0,
 * otherwise with its errno (all below SUCCEEDED).
 */
#define SUCCEEDED 200

static void report_attempt(const struct attempt *a, int first) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        errno = 0;
        long r = a->run();
        _exit(r >= 0 ? SUCCEEDED : (errno > 0 && errno < SUCCEEDED ? errno : SUCCEEDED - 1));
    }
    int status = 0, ok = 0, err = 0, sig = 0;
    if (pid < 0) {
        err = errno;
    } else if (waitpid(pid, &status, 0) < 0) {
        err = errno;
    } else if (WIFSIGNALED(status)) {
        sig = WTERMSIG(status);
    } else if (WEXITSTATUS(status) == SUCCEEDED) {
        ok = 1;
    } else {
        err = WEXITSTATUS(status);
    }
    printf("%s{\"name\":", first ? "" : ",");
    json_string(a->name);
    printf(",\"ok\":%s,\"errno\":%d,\"signal\":%d}", ok ? "true" : "false", err, sig);
}

static void report_attempts(const char *key, const struct attempt *list, size_t n) {
    printf("\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        report_attempt(&list[i], i == 0);
    }
    printf("]");
}

/* ---- Modes --------------------------------------------------------------------------------- */

static int report(void) {
    char uid_map[512], gid_map[512];
    read_file("/proc/self/uid_map", uid_map, sizeof uid_map);
    read_file("/proc/self/gid_map", gid_map, sizeof gid_map);
    struct utsname uts;
    uname(&uts);
    printf("{\"uid\":%u,\"gid\":%u,\"euid\":%u,\"egid\":%u,\"pid\":%d,\"ppid\":%d,", getuid(), getgid(),
           geteuid(), getegid(), getpid(), getppid());
    printf("\"hostname\":");
    json_string(uts.nodename);
    printf(",\"uid_map\":");
    json_string(uid_map);
    printf(",\"gid_map\":");
    json_string(gid_map);
    printf(",\"userns_owner\":%ld,", userns_owner());
    printf("\"no_new_privs\":%d,", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    report_dev();
    printf(",");
    report_status_lines();
    printf(",");
    report_interfaces();
    printf(",");
    report_rlimits();
    printf(",");
    report_mounts();
    printf(",");
    report_attempts("escapes", escapes, COUNT(escapes));
    printf(",");
    report_attempts("syscalls", denied, COUNT(denied));
    printf(",");
    report_attempts("allowed", allowed, COUNT(allowed));
    printf(",\"fatal\":[");
    for (size_t i = 0; i < COUNT(fatal); i++) {
        printf("%s", i ? "," : "");
        json_string(fatal[i].name);
    }
    printf("]}\n");
    return 0;
}

/* Only reached if the call was not fatal: reports what it returned. */
static int survived(const char *what, long r) {
    printf("{\"survived\":");
    json_string(what);
    printf(",\"ret\":%ld,\"errno\":%d}\n", r, r < 0 ? errno : 0);
    return 0;
}

static int run_fatal(const char *name) {
    for (size_t i = 0; i < COUNT(fatal); i++) {
        if (strcmp(fatal[i].name, name) == 0) {
            errno = 0;
            long r = fatal[i].run();
            return survived(name, r);
        }
    }
    fprintf(stderr, "probe: no fatal call named %s\n", name);
    return 2;
}

static int run_x32(void) {
    errno = 0;
    long r = syscall(0x40000000L | SYS_getpid);
    return survived("x32 getpid", r);
}

static int run_i386(void) {
    long r = 20; /* getpid in the i386 table */
    __asm__ volatile("int $0x80" : "+a"(r) : : "r8", "r9", "r10", "r11", "memory");
    if (r < 0) {
        errno = (int)-r;
        r = -1;
    }
    return survived("i386 getpid", r);
}

/* Calls newer than the policy's review (statmount 457 .. file_setattr 469) and a number no
 * kernel has: one line each, "NR ERRNO" (0 when the call succeeded). Arguments are all zero:
 * an implemented call fails with EINVAL or EFAULT, never ENOSYS. */
static int run_newer(void) {
    for (long nr = 457; nr <= 469; nr++) {
        long r = syscall(nr, 0, 0, 0, 0, 0, 0);
        printf("%ld %d\n", nr, r == -1 ? errno : 0);
    }
    long r = syscall(1000, 0, 0, 0, 0, 0, 0);
    printf("%d %d\n", 1000, r == -1 ? errno : 0);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 1) {
        return report();
    }
    if (strcmp(argv[1], "newer") == 0) {
        return run_newer();
    }
    if (strcmp(argv[1], "fatal") == 0 && argc == 3) {
        return run_fatal(argv[2]);
    }
    if (strcmp(argv[1], "x32") == 0) {
        return run_x32();
    }
    if (strcmp(argv[1], "i386") == 0) {
        return run_i386();
    }
    fprintf(stderr, "usage: probe [fatal <name> | x32 | i386 | newer]\n");
    return 2;
}
