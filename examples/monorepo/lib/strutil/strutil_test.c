/* Unit test for //lib/strutil. Exits non-zero if any check fails. */
#include <stdio.h>
#include <string.h>

#include "strutil.h"

static int failures = 0;

#define CHECK(cond)                                              \
  do {                                                           \
    if (!(cond)) {                                               \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, \
              #cond);                                            \
      failures++;                                                \
    }                                                            \
  } while (0)

int main(void) {
  char word[] = "bazel";
  char empty[] = "";
  char mixed[] = "Hello, World 42";
  char buf[8];

  CHECK(su_reverse(word) == 5);
  CHECK(strcmp(word, "lezab") == 0);
  CHECK(su_reverse(empty) == 0);

  su_upper(mixed);
  CHECK(strcmp(mixed, "HELLO, WORLD 42") == 0);

  CHECK(su_count_char("banana", 'a') == 3);
  CHECK(su_count_char("banana", 'z') == 0);

  CHECK(su_repeat("ab", 3, buf, sizeof buf) == 0);
  CHECK(strcmp(buf, "ababab") == 0);
  CHECK(su_repeat("abc", 3, buf, sizeof buf) == -1);
  CHECK(su_repeat("x", 0, buf, sizeof buf) == 0 && buf[0] == '\0');

  /* The define comes from the cc_library's `defines` attribute. */
  CHECK(STRUTIL_VERSION == 2);

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("strutil_test: all checks passed\n");
  return 0;
}
