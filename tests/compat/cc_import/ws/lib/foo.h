int foo(void);
