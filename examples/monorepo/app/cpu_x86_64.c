/* cpu_name() for x86_64 target platforms; see //app:hello. */
#include "app/cpu.h"

const char *cpu_name(void) { return "x86_64"; }
