/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A library an attacker plants (LD_PRELOAD, LD_AUDIT, a GCONV_PATH module, an $ORIGIN
 * neighbour): when anything loads it, it leaves "<its own path>.loaded" beside itself and
 * says so on stderr. The tests check that no elevated program ever loads it. */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void planted(void) {
        Dl_info info = {};
        char path[4096];
        int fd;

        if (dladdr((void *) planted, &info) == 0 || !info.dli_fname)
                return;
        snprintf(path, sizeof(path), "%s.loaded", info.dli_fname);
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
                char line[64];
                int n = snprintf(line, sizeof(line), "uid %u\n", (unsigned) geteuid());
                (void) !write(fd, line, (size_t) n);
                close(fd);
        }
        (void) !write(2, "PLANTED LIBRARY LOADED\n", 23);
}

#define EXPORT __attribute__((visibility("default")))

EXPORT unsigned int la_version(unsigned int v);
EXPORT int gconv_init(void *step);
EXPORT int gconv(void *a, void *b, const unsigned char **c, const unsigned char *d, unsigned char **e, size_t *f, int g,
                 int h);

/* what ld.so looks for in an LD_AUDIT library, and glibc in a gconv module */
unsigned int la_version(unsigned int v) {
        return v;
}

int gconv_init(void *step) {
        (void) step;
        return 1; /* __GCONV_NOCONV: the constructor has done its work; convert nothing */
}

int gconv(void *a, void *b, const unsigned char **c, const unsigned char *d, unsigned char **e, size_t *f, int g,
          int h) {
        (void) a, (void) b, (void) c, (void) d, (void) e, (void) f, (void) g, (void) h;
        return 0;
}
