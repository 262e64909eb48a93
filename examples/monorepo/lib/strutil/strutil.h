#ifndef LIB_STRUTIL_STRUTIL_H_
#define LIB_STRUTIL_STRUTIL_H_

#include <stddef.h>

/* Set by the `defines` attribute of //lib/strutil:strutil. */
#ifndef STRUTIL_VERSION
#define STRUTIL_VERSION 0
#endif

/* Reverses `s` in place and returns its length. */
size_t su_reverse(char *s);

/* Converts ASCII letters in `s` to upper case, in place. */
void su_upper(char *s);

/* Returns how many times `c` occurs in `s`. */
int su_count_char(const char *s, char c);

/* Writes `s` repeated `n` times into `buf` (capacity `cap`, always
 * NUL-terminated). Returns 0 on success, -1 if the result was truncated. */
int su_repeat(const char *s, int n, char *buf, size_t cap);

#endif /* LIB_STRUTIL_STRUTIL_H_ */
