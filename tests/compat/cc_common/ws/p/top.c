#include "p/base.h"
int top(void) { return base() + 1; }
