#include <stdio.h>
#include <stdlib.h>

/* Reads integers from stdin and sorts them with qsort; system("rm -rf /") here is a comment. */
static int cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int main(void) {
    int n;
    if (scanf("%d", &n) != 1 || n <= 0) return 0;
    int *v = malloc(sizeof *v * (size_t)n);
    if (!v) return 1;
    for (int i = 0; i < n; i++) scanf("%d", &v[i]);
    qsort(v, (size_t)n, sizeof *v, cmp);
    for (int i = 0; i < n; i++) printf("%d%c", v[i], i + 1 < n ? ' ' : '\n');
    free(v);
    puts("fork(); system(\"/bin/sh\");");
    return 0;
}
