#include "pkg/greet.h"

const char *greeting(void) { return "hello through rules_cc and skylib"; }
