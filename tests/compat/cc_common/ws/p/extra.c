int extra(void) { return 40; }
