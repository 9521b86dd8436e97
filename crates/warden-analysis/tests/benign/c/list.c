#include <stdio.h>
#include <stdlib.h>

struct node {
    int value;
    struct node *next;
};

static struct node *push(struct node *head, int value) {
    struct node *n = malloc(sizeof *n);
    if (!n) exit(1);
    n->value = value;
    n->next = head;
    return n;
}

static int sum(const struct node *n) {
    int s = 0;
    for (; n; n = n->next) s += n->value;
    return s;
}

int main(void) {
    struct node *head = NULL;
    char line[256];
    while (fgets(line, sizeof line, stdin)) head = push(head, atoi(line));
    printf("sum = %d\n", sum(head));
    while (head) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
    return 0;
}
