#include <stdio.h>

#include "lib/foo.h"

int main(void) {
    printf("foo() = %d\n", foo());
    return 0;
}
