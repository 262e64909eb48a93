int top(void);
