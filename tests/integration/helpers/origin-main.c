/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Linked against liborigin-planted.so with RPATH $ORIGIN: if the loader finds a library
 * beside this binary, the planted code runs. Run as a sealed copy, it must not. */
#include <stdio.h>

const char *planted(void);

int main(void) {
        printf("%s\n", planted());
        return 0;
}
