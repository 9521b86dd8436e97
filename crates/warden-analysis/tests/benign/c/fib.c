#include <stdio.h>
#include <string.h>

typedef struct {
    unsigned long long a, b;
} Pair;

static Pair step(Pair p) {
    Pair q = {p.b, p.a + p.b};
    return q;
}

static void reverse(char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i < n / 2; i++) {
        char t = s[i];
        s[i] = s[n - 1 - i];
        s[n - 1 - i] = t;
    }
}

int main(void) {
    int n = 10;
    Pair p = {0, 1};
    for (int i = 0; i < n; i++) {
        printf("fib(%d) = %llu\n", i, p.a);
        p = step(p);
    }
    char word[] = "hello";
    reverse(word);
    printf("%s\n", word);
    while (1) {
        if (--n < 0) break;
    }
    return 0;
}
