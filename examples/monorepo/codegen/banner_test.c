/* Test for //codegen:banner. Exits non-zero if any check fails. */
#include <stdio.h>
#include <string.h>

#include "codegen/banner.h"
#include "codegen/version.h"

int main(void) {
  int failures = 0;
  const char *text = banner_get_text();

  if (strcmp(APP_VERSION, "1.4.2") != 0) {
    fprintf(stderr, "FAILED: APP_VERSION is \"%s\"\n", APP_VERSION);
    failures++;
  }
  if (strcmp(banner_version(), "monorepo 1.4.2") != 0) {
    fprintf(stderr, "FAILED: banner_version() is \"%s\"\n", banner_version());
    failures++;
  }
  if (banner_line_count() != 7) {
    fprintf(stderr, "FAILED: banner has %d lines\n", banner_line_count());
    failures++;
  }
  /* Quotes and backslashes must survive the embedding unchanged. */
  if (strstr(text, "\"bp\" says: welcome!\n") == NULL ||
      strstr(text, " | '_ \\| '_ \\\n") == NULL) {
    fprintf(stderr, "FAILED: unexpected banner text:\n%s", text);
    failures++;
  }
  if (failures != 0) {
    return 1;
  }
  fputs(text, stdout);
  printf("banner_test: all checks passed\n");
  return 0;
}
