#include "codegen/banner.h"

/* Both headers are generated; see BUILD and defs.bzl. */
#include "codegen/banner_text.h"
#include "codegen/version.h"

const char *banner_get_text(void) { return banner_text; }

int banner_line_count(void) {
  int lines = 0;
  const char *p;
  for (p = banner_text; *p != '\0'; p++) {
    if (*p == '\n') {
      lines++;
    }
  }
  return lines;
}

const char *banner_version(void) { return APP_NAME " " APP_VERSION; }
