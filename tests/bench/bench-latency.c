/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Interleaved latency of whole commands: each round runs every command once, in turn, so
 * a noisy neighbour hurts all of them alike. Prints a table (median, p90, p99 in ms, and
 * the median's ratio to the first command). Never pass/fail.
 *
 *   bench-latency [-n ROUNDS] [-w WARMUP] [--as USER] -- NAME CMD ARGS... -- NAME CMD ... --
 */

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_CMDS 16

typedef struct Cmd {
        const char *name;
        char **argv;
        double *ms;
} Cmd;

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double run_once(char **argv, posix_spawn_file_actions_t *fa) {
        double start = now_ms();
        pid_t pid;
        int status;

        if (posix_spawn(&pid, argv[0], fa, NULL, argv, environ) != 0) {
                fprintf(stderr, "bench-latency: cannot run %s: %s\n", argv[0], strerror(errno));
                exit(1);
        }
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench-latency: %s failed (status %d)\n", argv[0], status);
                exit(1);
        }
        return now_ms() - start;
}

static double pct(double *v, int n, double p) {
        int i = (int) (p * (n - 1) + 0.5);
        return v[i < n ? i : n - 1];
}

int main(int argc, char *argv[]) {
        Cmd cmds[MAX_CMDS];
        int n_cmds = 0, rounds = 200, warmup = 10, c;
        const char *as = NULL;
        posix_spawn_file_actions_t fa;

        while ((c = getopt(argc, argv, "+n:w:u:")) >= 0)
                switch (c) {
                case 'n':
                        rounds = (int) strtol(optarg, NULL, 10);
                        break;
                case 'w':
                        warmup = (int) strtol(optarg, NULL, 10);
                        break;
                case 'u':
                        as = optarg;
                        break;
                default:
                        return 2;
                }
        /* NAME CMD ARGS... separated by "--" */
        for (int i = optind; i < argc && n_cmds < MAX_CMDS;) {
                if (strcmp(argv[i], "--") == 0) {
                        i++;
                        continue;
                }
                cmds[n_cmds].name = argv[i++];
                cmds[n_cmds].argv = &argv[i];
                while (i < argc && strcmp(argv[i], "--") != 0)
                        i++;
                if (i < argc)
                        argv[i++] = NULL;
                cmds[n_cmds].ms = calloc((size_t) rounds, sizeof(double));
                n_cmds++;
        }
        if (n_cmds == 0 || rounds < 1) {
                fprintf(stderr, "usage: bench-latency [-n ROUNDS] [-w WARMUP] [-u USER] -- NAME CMD... -- NAME CMD...\n");
                return 2;
        }
        if (as) {
                struct passwd *pw = getpwnam(as);
                if (!pw || initgroups(pw->pw_name, pw->pw_gid) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
                    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
                        fprintf(stderr, "bench-latency: cannot become %s\n", as);
                        return 1;
                }
        }
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", 0, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
        for (int w = 0; w < warmup; w++)
                for (int k = 0; k < n_cmds; k++)
                        (void) run_once(cmds[k].argv, &fa);
        for (int r = 0; r < rounds; r++)
                for (int k = 0; k < n_cmds; k++)
                        cmds[k].ms[r] = run_once(cmds[k].argv, &fa);

        printf("%-24s %10s %10s %10s %10s\n", "command", "median ms", "p90 ms", "p99 ms", "ratio");
        double base = 0;
        for (int k = 0; k < n_cmds; k++) {
                double med;
                qsort(cmds[k].ms, (size_t) rounds, sizeof(double), cmp_double);
                med = pct(cmds[k].ms, rounds, 0.5);
                if (k == 0)
                        base = med;
                printf("%-24s %10.3f %10.3f %10.3f %9.2fx\n", cmds[k].name, med, pct(cmds[k].ms, rounds, 0.9),
                       pct(cmds[k].ms, rounds, 0.99), base > 0 ? med / base : 0);
        }
        printf("(%d interleaved rounds after %d warm-up rounds)\n", rounds, warmup);
        return 0;
}
