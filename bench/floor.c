// The floor under any execution server on this machine: the least a server can do per
// request and still run the program in a process of its own. It reads one HTTP request on a
// keep-alive connection, spawns `python3 -c 'print("hello")'` (posix_spawn, stdout on a pipe,
// empty environment), reads its output, reaps it and answers with `{"stdout": ...}`. No
// sandbox, no limits, no accounting, no history: what warden serve costs above this is the
// price of what it enforces and records, and of how it is built (bench/floor.sh).
//
// Usage: floor PYTHON   (listens on a free loopback port, printed on stdout)
// Benchmark aid only: one thread per connection, requests of at most 64 KiB.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *python;

// Reads one request (headers and a Content-Length body) into buf; 0 at the connection's end.
static int read_request(int conn, char *buf, size_t size) {
    size_t have = 0;
    for (;;) {
        ssize_t n = read(conn, buf + have, size - 1 - have);
        if (n <= 0) return 0;
        have += (size_t)n;
        buf[have] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            char *length = strcasestr(buf, "content-length:");
            size_t body = length ? strtoul(length + 15, NULL, 10) : 0;
            if (have >= (size_t)(end + 4 - buf) + body) return 1;
        }
        if (have == size - 1) return 0;
    }
}

// Runs the program once; its stdout in out (NUL-terminated). 0 on failure.
static int run_program(char *out, size_t size) {
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return 0;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipefd[1], 1);
    char *argv[] = {(char *)python, "-c", "print(\"hello\")", NULL};
    char *envp[] = {NULL};
    pid_t pid;
    int spawned = posix_spawn(&pid, python, &actions, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    close(pipefd[1]);
    size_t have = 0;
    ssize_t n;
    while (spawned == 0 && (n = read(pipefd[0], out + have, size - 1 - have)) > 0) have += (size_t)n;
    close(pipefd[0]);
    out[have] = 0;
    if (spawned != 0) return 0;
    int status;
    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void *serve(void *arg) {
    int conn = (int)(long)arg, one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static __thread char request[65536];
    char out[4096], body[4200], answer[4400];
    while (read_request(conn, request, sizeof request)) {
        int ok = run_program(out, sizeof out);
        // The output is python's `hello\n`: escape the newline only.
        char *newline = strchr(out, '\n');
        if (newline) *newline = 0;
        int body_len = snprintf(body, sizeof body, "{\"stdout\": \"%s\\n\"}", out);
        int len = snprintf(answer, sizeof answer,
                           "HTTP/1.1 %s\r\ncontent-type: application/json\r\n"
                           "content-length: %d\r\n\r\n%s",
                           ok ? "200 OK" : "500 Internal Server Error", body_len, body);
        if (write(conn, answer, (size_t)len) != len) break;
    }
    close(conn);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: floor PYTHON\n");
        return 2;
    }
    python = argv[1];
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t addr_len = sizeof addr;
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 64) != 0 || getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
        perror("floor: listen");
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    for (;;) {
        int conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) continue;
        pthread_t thread;
        if (pthread_create(&thread, NULL, serve, (void *)(long)conn) != 0) {
            close(conn);
            continue;
        }
        pthread_detach(thread);
    }
}
