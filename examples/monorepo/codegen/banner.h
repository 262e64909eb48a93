#ifndef CODEGEN_BANNER_H_
#define CODEGEN_BANNER_H_

/* The text of banner.txt, embedded at build time by embed_text. */
const char *banner_get_text(void);

/* Number of lines in the banner. */
int banner_line_count(void);

/* "<APP_NAME> <APP_VERSION>", from the generated version.h. */
const char *banner_version(void);

#endif /* CODEGEN_BANNER_H_ */
