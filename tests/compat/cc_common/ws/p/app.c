#include <stdio.h>

#include "p/extra.h"
#include "p/top.h"

int main(void) {
    printf("top() + extra() = %d\n", top() + extra());
    return 0;
}
