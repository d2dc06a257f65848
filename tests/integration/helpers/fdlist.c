/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Prints the numbers of the open file descriptors, one per line (the directory stream
 * used to list them is left out): what an elevated program inherited. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;

        if (!d)
                return 1;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.' && strtol(e->d_name, NULL, 10) != dirfd(d))
                        printf("%s\n", e->d_name);
        closedir(d);
        return 0;
}
