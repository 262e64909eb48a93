#include <stdio.h>
#include "pkg/greet.h"

int main(void) {
    printf("%s\n", greeting());
    return 0;
}
