/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What an elevated program was given, as one JSON object on stdout: argc, argv and the
 * environment byte for byte (hex, so nothing is lost or reinterpreted), its ids and
 * groups, working directory, session, core limit, and every open descriptor with its
 * target. The security tests compare this with what the caller sent. */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

extern char **environ;

static void hex(const char *s) {
        putchar('"');
        for (; *s; s++)
                printf("%02x", (unsigned char) *s);
        putchar('"');
}

static void strings(const char *name, char **v, int n) {
        printf("\"%s\":[", name);
        for (int i = 0; n < 0 ? v[i] != NULL : i < n; i++) {
                if (i > 0)
                        putchar(',');
                hex(v[i]);
        }
        printf("],");
}

static void fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *e;
        bool first = true;

        printf("\"fds\":{");
        while (d && (e = readdir(d))) {
                char path[PATH_MAX], target[PATH_MAX];
                ssize_t n;

                if (e->d_name[0] == '.' || strtol(e->d_name, NULL, 10) == dirfd(d))
                        continue;
                snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
                n = readlink(path, target, sizeof(target) - 1);
                target[n < 0 ? 0 : n] = 0;
                printf("%s\"%s\":", first ? "" : ",", e->d_name);
                hex(target);
                first = false;
        }
        if (d)
                closedir(d);
        printf("},");
}

int main(int argc, char *argv[]) {
        uid_t ru, eu, su;
        gid_t rg, eg, sg, groups[256];
        char cwd[PATH_MAX];
        struct rlimit core = {};
        int ng;

        printf("{\"argc\":%d,", argc);
        strings("argv", argv, argc);
        strings("env", environ, -1);
        fds();
        (void) getresuid(&ru, &eu, &su);
        (void) getresgid(&rg, &eg, &sg);
        printf("\"uid\":[%u,%u,%u],\"gid\":[%u,%u,%u],\"groups\":[", ru, eu, su, rg, eg, sg);
        ng = getgroups(256, groups);
        for (int i = 0; i < ng; i++)
                printf("%s%u", i ? "," : "", groups[i]);
        (void) getrlimit(RLIMIT_CORE, &core);
        printf("],\"cwd\":");
        hex(getcwd(cwd, sizeof(cwd)) ? cwd : "");
        printf(",\"pid\":%d,\"sid\":%d,\"pgid\":%d,\"core_limit\":%lld,\"dumpable\":%d,\"isatty\":[%d,%d,%d]}\n",
               (int) getpid(), (int) getsid(0), (int) getpgid(0),
               core.rlim_cur == RLIM_INFINITY ? -1LL : (long long) core.rlim_cur, prctl(PR_GET_DUMPABLE), isatty(0),
               isatty(1), isatty(2));
        return 0;
}
