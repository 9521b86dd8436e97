/* Reads lines until EOF and counts each in a thread, joined at once. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static size_t total;

static void *count(void *arg) {
    total += strlen((const char *)arg);
    return NULL;
}

int main(void) {
    char line[256];
    for (;;) {
        if (!fgets(line, sizeof line, stdin)) {
            break;
        }
        pthread_t t;
        pthread_create(&t, NULL, count, line);
        pthread_join(t, NULL);
    }
    printf("%zu\n", total);
    return 0;
}
