#include <stdio.h>

/* A logging macro in GNU C's style: `, ##__VA_ARGS__` drops the comma when no argument follows. */
#define LOG(fmt, ...) fprintf(stderr, "[log] " fmt "\n", ##__VA_ARGS__)
#define WARN(fmt, ...) fprintf(stderr, "[warn] " fmt "\n" , ## __VA_ARGS__)

int main(void) {
    LOG("starting");
    LOG("%d items", 3);
    WARN("%s", "done");
    return 0;
}
