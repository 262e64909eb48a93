int base(void) { return BASE; }
