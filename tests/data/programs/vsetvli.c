/* Prints the vector length vsetvli grants: SIGILL on a CPU without V. */
#include <stdio.h>
int main(void) {
    unsigned long vl;
    __asm__ volatile ("vsetvli %0, zero, e32, m1, ta, ma" : "=r"(vl));
    printf("vl=%lu\n", vl);
    return 0;
}
