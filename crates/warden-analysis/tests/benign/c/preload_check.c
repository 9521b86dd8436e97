/* Warns when the dynamic loader injected a library into this process, and removes the
 * loader's variables so that nothing started later inherits them. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    int found = 0;
    const char *preload = getenv("LD_PRELOAD");
    const char *audit = getenv("LD_AUDIT");
    if (preload != NULL && preload[0] != '\0') {
        fprintf(stderr, "preloaded: %s\n", preload);
        found = 1;
    }
    if (audit != NULL) {
        fprintf(stderr, "audited by: %s\n", audit);
        found = 1;
    }
    unsetenv("LD_PRELOAD");
    unsetenv("LD_AUDIT");
    return found;
}
