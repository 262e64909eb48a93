#include "strutil.h"

#include <ctype.h>
#include <string.h>

size_t su_reverse(char *s) {
  size_t len = strlen(s);
  size_t i;
  for (i = 0; i < len / 2; i++) {
    char tmp = s[i];
    s[i] = s[len - 1 - i];
    s[len - 1 - i] = tmp;
  }
  return len;
}

void su_upper(char *s) {
  for (; *s != '\0'; s++) {
    *s = (char)toupper((unsigned char)*s);
  }
}

int su_count_char(const char *s, char c) {
  int count = 0;
  for (; *s != '\0'; s++) {
    if (*s == c) {
      count++;
    }
  }
  return count;
}

int su_repeat(const char *s, int n, char *buf, size_t cap) {
  size_t len = strlen(s);
  size_t used = 0;
  int i;
  if (cap == 0) {
    return -1;
  }
  buf[0] = '\0';
  for (i = 0; i < n; i++) {
    if (used + len + 1 > cap) {
      return -1;
    }
    memcpy(buf + used, s, len + 1);
    used += len;
  }
  return 0;
}
