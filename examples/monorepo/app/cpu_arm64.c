/* cpu_name() for arm64 target platforms; see //app:hello. */
#include "app/cpu.h"

const char *cpu_name(void) { return "arm64"; }
