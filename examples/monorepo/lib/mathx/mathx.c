#include "lib/mathx/mathx.h"

#include <stdio.h>
#include <string.h>

/* Found through the `includes` attribute of //lib/strutil. */
#include "strutil.h"

long mx_gcd(long a, long b) {
  if (a < 0) a = -a;
  if (b < 0) b = -b;
  while (b != 0) {
    long t = a % b;
    a = b;
    b = t;
  }
  return a;
}

long mx_factorial(int n) {
  long result = 1;
  int i;
  if (n < 0 || n > 20) {
    return -1;
  }
  for (i = 2; i <= n; i++) {
    result *= i;
  }
  return result;
}

int mx_is_palindrome(long n) {
  char digits[32];
  char reversed[32];
  if (n < 0) {
    return 0;
  }
  snprintf(digits, sizeof digits, "%ld", n);
  memcpy(reversed, digits, sizeof digits);
  su_reverse(reversed);
  return strcmp(digits, reversed) == 0;
}
