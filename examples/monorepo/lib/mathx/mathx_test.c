/* Unit test for //lib/mathx. Exits non-zero if any check fails. */
#include <stdio.h>

#include "lib/mathx/mathx.h"

static int failures = 0;

static void check(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "FAILED: %s\n", what);
    failures++;
  }
}

int main(void) {
  check(mx_gcd(84, 36) == 12, "gcd(84, 36) == 12");
  check(mx_gcd(-15, 10) == 5, "gcd(-15, 10) == 5");
  check(mx_gcd(0, 0) == 0, "gcd(0, 0) == 0");
  check(mx_factorial(0) == 1, "0! == 1");
  check(mx_factorial(10) == 3628800L, "10! == 3628800");
  check(mx_factorial(21) == -1, "21! is out of range");
  check(mx_is_palindrome(12321), "12321 is a palindrome");
  check(!mx_is_palindrome(1231), "1231 is not a palindrome");
  check(!mx_is_palindrome(-1), "negative numbers are not palindromes");

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("mathx_test: all checks passed\n");
  return 0;
}
