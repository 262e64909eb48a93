/* Usage: hello [NAME] -- greets NAME (default "world") and shows off the
 * //lib/strutil and //lib/mathx libraries, then the CPU it was built for. */
#include <stdio.h>
#include <string.h>

#include "app/cpu.h"
#include "lib/mathx/mathx.h"
#include "strutil.h"

int main(int argc, char **argv) {
  char name[64];
  char rule[32];
  const char *who = argc > 1 ? argv[1] : "world";

  if (strlen(who) >= sizeof name) {
    fprintf(stderr, "hello: name too long\n");
    return 2;
  }
  strcpy(name, who);
  su_upper(name);

  if (su_repeat("=-", 10, rule, sizeof rule) != 0) {
    return 1;
  }
  printf("%s\n", rule);
  printf("Hello, %s!\n", name);
  printf("strutil v%d\n", STRUTIL_VERSION);
  printf("gcd(84, 36) = %ld\n", mx_gcd(84, 36));
  printf("5! = %ld\n", mx_factorial(5));
  printf("12321 is %sa palindrome\n", mx_is_palindrome(12321) ? "" : "not ");
  printf("built for %s\n", cpu_name());
  return 0;
}
