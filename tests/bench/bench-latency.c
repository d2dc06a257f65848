/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Interleaved latency of whole commands: each round runs every command once, in turn
 * (starting one further along each round), so a noisy neighbour hurts all of them alike.
 * Then, separately, each command's peak RSS.
 *
 *   bench-latency [-n ROUNDS] [-w WARMUP] [-R RSS_RUNS] [-u USER] [-e ERRLOG] [-t] [-i IDLE_MS]
 *                 -- NAME CMD ARGS... -- NAME CMD ARGS... --
 *
 * -i pauses IDLE_MS before every measured run, so each command starts on a machine that
 * was idle, as an elevation typed by a person does (on a VM, idle virtual CPUs and the
 * kernel's own deferred work make the first system calls after a pause cost more);
 * -u drops to USER before anything runs (the clients are unprivileged, as in real use);
 * -t gives every command a pty as stdio and controlling terminal, as in a shell;
 * -e collects the commands' stderr (and terminal output), shown when one fails.
 * Any command failing stops the benchmark: a failed elevation is not a fast one.
 *
 * Records (bench-util.h):
 *   latency name=N rounds=R median_ms= p90_ms= p95_ms= p99_ms= mean_ms= cpu_ms=
 *     (cpu_ms: the median user+system CPU of the command itself and its reaped children)
 *   rss name=N runs=R median_kib= max_kib=
 *     (ru_maxrss of fork+exec'd runs; a posix_spawn child would report our RSS instead)
 */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench-spawn.h"
#include "bench-util.h"
#include "macro.h"

#define MAX_CMDS 16

typedef struct Cmd {
        const char *name;
        char **argv;
        double *ms, *cpu_ms;
} Cmd;

static double run_once(const BenchStdio *s, const Cmd *c, double *ret_cpu_ms) {
        struct rusage ru;
        uint64_t t0 = bench_now_ns();
        pid_t pid = bench_spawn(s, c->argv);
        double ms;

        bench_wait_ok(s, pid, c->name, &ru);
        ms = (double) (bench_now_ns() - t0) / 1e6;
        if (ret_cpu_ms)
                *ret_cpu_ms = bench_tv_ms(&ru.ru_utime) + bench_tv_ms(&ru.ru_stime);
        return ms;
}

static void measure_rss(const BenchStdio *s, const Cmd *c, int runs) {
        _cleanup_free_ double *kib = calloc((size_t) runs, sizeof(double));
        BenchStats st;

        if (!kib)
                exit(1);
        for (int i = 0; i < runs; i++) {
                struct rusage ru;

                bench_wait_ok(s, bench_spawn_fork(s, c->argv), c->name, &ru);
                kib[i] = (double) ru.ru_maxrss;
        }
        bench_stats(kib, (size_t) runs, &st);
        printf("rss name=%s runs=%d median_kib=%.0f max_kib=%.0f\n", c->name, runs, st.median, st.max);
}

/* NAME CMD ARGS... separated by "--"; returns the number of commands */
static int parse_cmds(int argc, char *argv[], int rounds, Cmd *cmds) {
        int n = 0;

        for (int i = optind; i < argc && n < MAX_CMDS;) {
                if (streq(argv[i], "--")) {
                        i++;
                        continue;
                }
                cmds[n].name = argv[i++];
                cmds[n].argv = &argv[i];
                while (i < argc && !streq(argv[i], "--"))
                        i++;
                if (i < argc)
                        argv[i++] = NULL;
                if (!cmds[n].argv[0]) {
                        fprintf(stderr, "bench-latency: %s has no command\n", cmds[n].name);
                        exit(2);
                }
                cmds[n].ms = calloc((size_t) rounds, sizeof(double));
                cmds[n].cpu_ms = calloc((size_t) rounds, sizeof(double));
                if (!cmds[n].ms || !cmds[n].cpu_ms)
                        exit(1);
                n++;
        }
        return n;
}

static void usage(void) {
        fprintf(stderr, "usage: bench-latency [-n ROUNDS] [-w WARMUP] [-R RSS_RUNS] [-u USER] [-e ERRLOG] [-t] "
                        "[-i IDLE_MS] -- NAME CMD... -- NAME CMD...\n");
        exit(2);
}

typedef struct Options {
        int rounds, warmup, rss_runs, idle_ms;
        const char *as, *err_path;
        bool terminal;
} Options;

static void parse_options(int argc, char *argv[], Options *o) {
        int c;

        *o = (Options){ .rounds = 200, .warmup = 10 };
        while ((c = getopt(argc, argv, "+n:w:R:u:e:ti:h")) >= 0)
                switch (c) {
                case 'n':
                        o->rounds = (int) bench_parse_long(optarg, "-n", 1, 1000000);
                        break;
                case 'w':
                        o->warmup = (int) bench_parse_long(optarg, "-w", 0, 1000000);
                        break;
                case 'R':
                        o->rss_runs = (int) bench_parse_long(optarg, "-R", 0, 100000);
                        break;
                case 'u':
                        o->as = optarg;
                        break;
                case 'e':
                        o->err_path = optarg;
                        break;
                case 't':
                        o->terminal = true;
                        break;
                case 'i':
                        o->idle_ms = (int) bench_parse_long(optarg, "-i", 0, 10000);
                        break;
                default:
                        usage();
                }
}

/* The log is opened while still privileged (it lives in the bench's root-owned
 * directory); the pty afterwards, so its slave belongs to the user. */
static void setup_stdio(const Options *o, BenchStdio *s) {
        bench_stdio_open(s, o->err_path, false);
        if (o->as)
                bench_become(o->as);
        if (o->terminal) {
                BenchStdio t;

                bench_stdio_open(&t, NULL, true);
                s->pty = t.pty;
                s->pty_master = t.pty_master;
                (void) safe_close(t.err_fd);
        }
}

static void report(const Cmd *cmds, int n_cmds, int rounds) {
        for (int k = 0; k < n_cmds; k++) {
                BenchStats st, cpu;

                bench_stats(cmds[k].ms, (size_t) rounds, &st);
                bench_stats(cmds[k].cpu_ms, (size_t) rounds, &cpu);
                printf("latency name=%s rounds=%d median_ms=%.3f p90_ms=%.3f p95_ms=%.3f p99_ms=%.3f mean_ms=%.3f "
                       "cpu_ms=%.3f\n",
                       cmds[k].name, rounds, st.median, st.p90, st.p95, st.p99, st.mean, cpu.median);
        }
}

int main(int argc, char *argv[]) {
        Cmd cmds[MAX_CMDS] = {};
        BenchStdio s;
        Options o;
        int n_cmds;

        parse_options(argc, argv, &o);
        n_cmds = parse_cmds(argc, argv, o.rounds, cmds);
        if (n_cmds == 0)
                usage();
        setup_stdio(&o, &s);

        for (int w = 0; w < o.warmup; w++)
                for (int k = 0; k < n_cmds; k++)
                        (void) run_once(&s, &cmds[k], NULL);
        /* each round starts one command further along, so none always runs right after
         * the same other one (and inherits, say, the work it leaves behind) */
        for (int r = 0; r < o.rounds; r++)
                for (int i = 0; i < n_cmds; i++) {
                        int k = (r + i) % n_cmds;

                        if (o.idle_ms > 0)
                                (void) usleep((useconds_t) o.idle_ms * 1000);
                        cmds[k].ms[r] = run_once(&s, &cmds[k], &cmds[k].cpu_ms[r]);
                }
        report(cmds, n_cmds, o.rounds);
        if (o.rss_runs > 0)
                for (int k = 0; k < n_cmds; k++)
                        measure_rss(&s, &cmds[k], o.rss_runs);

        for (int k = 0; k < n_cmds; k++) {
                free(cmds[k].ms);
                free(cmds[k].cpu_ms);
        }
        free(s.pty);
        return 0;
}
