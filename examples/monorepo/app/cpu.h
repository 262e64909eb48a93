#ifndef APP_CPU_H_
#define APP_CPU_H_

/* The CPU this program was built for ("x86_64", "arm64"). Defined by the one
 * cpu_<name>.c source that //app:hello's select() picks for the target
 * platform. */
const char *cpu_name(void);

#endif /* APP_CPU_H_ */
