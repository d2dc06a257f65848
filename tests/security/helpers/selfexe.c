/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * selfexe: says which file is running. Prints one line
 *
 *   marker=<MARKER> request=<ELEVATE_REQUEST> dev=<major>:<minor> ino=<inode>
 *
 * where dev and ino are those of /proc/self/exe, the inode the kernel executed. The
 * marker is a fixed-length string in the binary's data; the path-swap tests make a
 * second copy with different marker bytes (same size, different hash) and check that
 * what ran is what the agent hashed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

/* volatile: the bytes must stay in the file exactly as written, found and patched by the tests */
static volatile const char marker[] = "SELFEXE-MARKER-ORIGINAL-0123456789";

int main(void) {
        char copy[sizeof(marker)];
        const char *req = getenv("ELEVATE_REQUEST"); /* unprivileged test helper, not product code */
        struct stat st;

        for (size_t i = 0; i < sizeof(marker); i++)
                copy[i] = marker[i];
        if (stat("/proc/self/exe", &st) < 0) {
                perror("stat /proc/self/exe");
                return 1;
        }
        printf("marker=%s request=%s dev=%u:%u ino=%llu\n", copy, req ? req : "-", major(st.st_dev), minor(st.st_dev),
               (unsigned long long) st.st_ino);
        return 0;
}
