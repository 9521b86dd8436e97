#include <stdio.h>
#include <sys/stat.h>
int main(void) {
  mkdir("data", 0755);
  FILE *f = fopen("data/x.txt", "w"); fprintf(f, "hello\n"); fclose(f);
  char buf[64]; f = fopen("./data/../data/x.txt", "r"); fgets(buf, sizeof buf, f); fclose(f); printf("%s", buf);
  f = fopen("/work/sub/file", "r"); printf("%s\n", f ? "exists" : "missing"); if (f) fclose(f);
  return 0;
}
