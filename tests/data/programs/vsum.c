/* A program that executes vector instructions unconditionally (inline vsetvli and
 * vle32.v): SIGILL on a CPU without V. GCC 12 does not auto-vectorise, hence the asm. */
#include <stddef.h>
#include <stdio.h>
int vsum(const int *a, size_t n) {
    size_t vl;
    __asm__ volatile("vsetvli %0, %1, e32, m1, ta, ma\n\tvle32.v v1, (%2)"
                     : "=r"(vl) : "r"(n), "r"(a) : "memory");
    return (int)vl;
}
int main(void) { int a[4] = {1, 2, 3, 4}; printf("%d\n", vsum(a, 4)); return 0; }
