/* Makes system calls the seccomp policy denies, for tests/denials.rs, and prints one line per
 * attempt: `name errno` (0 when the call succeeded). Modes:
 *   escapes      unshare(CLONE_NEWUSER), mount, keyctl, once each
 *   child        a forked child calls mount 3 times; the parent calls nothing denied
 *   storm N      N calls of mount; prints `storm <refused with EPERM> <other>`
 *   probe N      N calls of mount, prints `probed N`, then waits for ever (to be cancelled)
 *   kill         init_module, which the policy kills
 *   kill-child   a forked child calls init_module; the parent prints `child signal N` (the
 *                signal that ended it) and exits 0
 *   kill-thread  a second thread calls init_module, which kills the whole process
 *   kill-threads four threads call init_module at once
 *   x32          getpid through the x32 ABI (its number with bit 30 set), which the filter kills
 *   int80        getpid through the i386 ABI (`int $0x80`), which the filter kills
 *   sigsys       raises SIGSYS itself
 *   hide         installs a seccomp filter of its own that notifies for unshare, mount and
 *                init_module (through seccomp, then prctl: `own filter E`, `prctl filter E`),
 *                then makes them as `escapes` and `kill` do. Without a listener a filter of
 *                its own failed them with ENOSYS where warden's notifies: unrecorded, unkilled
 *   none         nothing denied
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

static pthread_barrier_t together;

static void *forbidden(void *unused) {
    (void)unused;
    syscall(SYS_init_module, 0, 0, "");
    return NULL;
}

static void *forbidden_together(void *unused) {
    pthread_barrier_wait(&together);
    return forbidden(unused);
}

static void report(const char *name, long ret) {
    printf("%s %d\n", name, ret == 0 ? 0 : errno);
}

static long try_mount(void) {
    return mount("none", "/tmp", "tmpfs", 0, "size=1m");
}

/* A filter that answers unshare, mount and init_module with SECCOMP_RET_USER_NOTIF, for a
 * listener nobody holds, and allows the rest. */
static void hide(void) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_unshare, 3, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mount, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_init_module, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
    };
    struct sock_fprog program = {.len = sizeof code / sizeof code[0], .filter = code};
    report("own filter", syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program));
    report("prctl filter", prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program, 0, 0));
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "none";
    if (strcmp(mode, "escapes") == 0) {
        report("unshare", unshare(CLONE_NEWUSER));
        report("mount", try_mount());
        /* KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3), without creating it. */
        report("keyctl", syscall(SYS_keyctl, 0, -3, 0));
    } else if (strcmp(mode, "child") == 0) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            for (int i = 0; i < 3; i++) {
                report("mount", try_mount());
            }
            fflush(stdout);
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        printf("child %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else if (strcmp(mode, "storm") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 100000;
        long refused = 0, other = 0;
        for (long i = 0; i < n; i++) {
            if (try_mount() == -1 && errno == EPERM) {
                refused++;
            } else {
                other++;
            }
        }
        printf("storm %ld %ld\n", refused, other);
    } else if (strcmp(mode, "probe") == 0) {
        long n = argc > 2 ? atol(argv[2]) : 1;
        for (long i = 0; i < n; i++) {
            try_mount();
        }
        printf("probed %ld\n", n);
        fflush(stdout);
        for (;;) {
            pause();
        }
    } else if (strcmp(mode, "hide") == 0) {
        hide();
        report("unshare", unshare(CLONE_NEWUSER));
        report("mount", try_mount());
        fflush(stdout);
        report("init_module", syscall(SYS_init_module, 0, 0, ""));
    } else if (strcmp(mode, "kill") == 0) {
        fflush(stdout);
        report("init_module", syscall(SYS_init_module, 0, 0, ""));
    } else if (strcmp(mode, "kill-child") == 0) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            report("init_module", syscall(SYS_init_module, 0, 0, ""));
            _exit(0);
        }
        int status = 0;
        waitpid(child, &status, 0);
        printf("child signal %d\n", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    } else if (strcmp(mode, "kill-thread") == 0) {
        fflush(stdout);
        pthread_t thread;
        pthread_create(&thread, NULL, forbidden, NULL);
        pthread_join(thread, NULL);
        printf("survived\n");
    } else if (strcmp(mode, "kill-threads") == 0) {
        fflush(stdout);
        pthread_t threads[4];
        pthread_barrier_init(&together, NULL, 4);
        for (int i = 0; i < 4; i++) {
            pthread_create(&threads[i], NULL, forbidden_together, NULL);
        }
        for (int i = 0; i < 4; i++) {
            pthread_join(threads[i], NULL);
        }
        printf("survived\n");
    } else if (strcmp(mode, "x32") == 0) {
        fflush(stdout);
        report("x32 getpid", syscall(0x40000000 | SYS_getpid));
    } else if (strcmp(mode, "int80") == 0) {
        fflush(stdout);
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        printf("i386 getpid %ld\n", ret);
    } else if (strcmp(mode, "sigsys") == 0) {
        fflush(stdout);
        raise(SIGSYS);
        printf("survived\n");
    } else {
        printf("hello\n");
    }
    return 0;
}
