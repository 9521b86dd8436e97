/* A calculator with a dispatch table, and a sort through a memcmp wrapper. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int add(int a, int b) { return a + b; }
static int sub(int a, int b) { return a - b; }
static int mul(int a, int b) { return a * b; }

static int memcmp_wrapper(const int *a, const int *b) {
    return memcmp(a, b, sizeof *a) < 0 ? -1 : (*a > *b);
}

int main(void) {
    void *table[] = {(void *)add, (void *)sub, (void *)mul};
    const char *names[] = {"add", "sub", "mul"};
    for (int i = 0; i < 3; i++) {
        int r = ((int (*)(int, int))table[i])(6, 3);
        printf("%s(6, 3) = %d\n", names[i], r);
    }
    int nums[] = {3, 1, 2};
    qsort(nums, 3, sizeof nums[0], (int (*)(const void *, const void *))memcmp_wrapper);
    for (int i = 0; i < 3; i++) printf("%d\n", nums[i]);
    return 0;
}
