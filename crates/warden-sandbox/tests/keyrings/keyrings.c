/* Tries, as a trusted run's program, the keyring operations that would lock its uid's keyrings
 * (tests/trusted.rs): each on a key of its own, through the native ABI and, on x86_64, the i386
 * one (int 0x80); then, only if those were refused, KEYCTL_SETPERM on its user keyring, which
 * would otherwise leave the slot unusable until reboot. One line per operation: the ABI, the
 * operation, and "ok" or the errno's name. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_REVOKE 3
#define KEYCTL_SETPERM 5
#define KEYCTL_SET_TIMEOUT 15
#define KEYCTL_RESTRICT_KEYRING 29
#define KEY_SPEC_SESSION_KEYRING -3
#define KEY_SPEC_USER_KEYRING -4

static const char *result(long r) {
    if (r >= 0) return "ok";
    switch (errno) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOSYS: return "ENOSYS";
    case ENOKEY: return "ENOKEY";
    case EINVAL: return "EINVAL";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return strerror(errno);
    }
}

/* A key (or keyring) of the program's own, in its session keyring. */
static long own_key(const char *name) {
    return syscall(SYS_add_key, "user", name, "x", 1, KEY_SPEC_SESSION_KEYRING);
}
static long own_keyring(const char *name) {
    return syscall(SYS_add_key, "keyring", name, NULL, 0, KEY_SPEC_SESSION_KEYRING);
}

#ifdef __x86_64__
/* keyctl through the i386 ABI: call 288, arguments in ebx, ecx, edx. */
static long keyctl_i386(long op, long a, long b) {
    long r;
    __asm__ volatile("int $0x80" : "=a"(r) : "a"(288L), "b"(op), "c"(a), "d"(b) : "memory");
    if (r < 0 && r > -4096) {
        errno = (int)-r;
        return -1;
    }
    return r;
}
#endif

int main(void) {
    long setperm = syscall(SYS_keyctl, KEYCTL_SETPERM, own_key("setperm"), 0);
    int refused = setperm < 0 && errno == EPERM;
    printf("native setperm %s\n", result(setperm));
    printf("native revoke %s\n", result(syscall(SYS_keyctl, KEYCTL_REVOKE, own_key("revoke"))));
    printf("native set_timeout %s\n",
           result(syscall(SYS_keyctl, KEYCTL_SET_TIMEOUT, own_key("timeout"), 1)));
    printf("native restrict_keyring %s\n",
           result(syscall(SYS_keyctl, KEYCTL_RESTRICT_KEYRING, own_keyring("restrict"),
                          "asymmetric", "builtin_trusted")));
    printf("native get_keyring_id %s\n",
           result(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)));
#ifdef __x86_64__
    long pid;
    __asm__ volatile("int $0x80" : "=a"(pid) : "a"(20L) : "memory"); /* i386 getpid */
    if (pid == getpid()) {
        printf("i386 setperm %s\n", result(keyctl_i386(KEYCTL_SETPERM, own_key("i386-setperm"), 0)));
        printf("i386 revoke %s\n", result(keyctl_i386(KEYCTL_REVOKE, own_key("i386-revoke"), 0)));
        printf("i386 set_timeout %s\n",
               result(keyctl_i386(KEYCTL_SET_TIMEOUT, own_key("i386-timeout"), 1)));
        printf("i386 get_keyring_id %s\n",
               result(keyctl_i386(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)));
    } else {
        printf("i386 unavailable\n");
    }
#endif
    if (refused) {
        printf("native setperm @u %s\n",
               result(syscall(SYS_keyctl, KEYCTL_SETPERM, KEY_SPEC_USER_KEYRING, 0)));
    } else {
        printf("native setperm @u skipped\n");
    }
    return 0;
}
