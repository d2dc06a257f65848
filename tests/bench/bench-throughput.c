/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Throughput of a command run by N concurrent clients, and the CPU each run costs.
 *
 *   bench-throughput [-c N[,N...]] [-d SECONDS | -N COUNT] [-r ROUNDS] [-p AGENT_PID]
 *                    [-u USER[,USER...]] [-b] [-e ERRLOG] -- CMD ARGS...
 *
 * For each round and each concurrency (interleaved: 1,2,8,1,2,8,...) it keeps N copies
 * of CMD running for SECONDS (or until COUNT have started), then waits for the last.
 * With several users the N clients are spread over them (one worker process per user,
 * each dropped to its user): the agent limits requests in progress per uid.
 * -b counts exit status 126 as "busy" (the agent refused for load) and keeps going;
 * the caller must have shown before that the command is allowed at all.
 *
 * CPU per run: the clients' own (wait4 rusage), the agent's threads and the programs
 * it launched and reaped (utime/stime and cutime/cstime of /proc/AGENT_PID/stat before
 * and after; clock-tick resolution, so runs must last seconds, not milliseconds).
 *
 * Records (bench-util.h):
 *   throughput clients=N users=U rounds=R runs= busy= per_s= per_s_min= per_s_max=
 *     client_user_ms= client_sys_ms= agent_user_ms= agent_sys_ms= program_ms=  (per run)
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench-spawn.h"
#include "bench-util.h"
#include "macro.h"

#define MAX_LEVELS 8
#define MAX_ROUNDS 64
#define MAX_USERS 32
#define STATUS_BUSY 126

typedef struct Options {
        double seconds;
        long count;
        pid_t agent;
        bool busy_ok;
        char **argv;
        char *users[MAX_USERS];
        int n_users;
        BenchStdio stdio;
} Options;

/* What one worker reports through its pipe. */
typedef struct Share {
        long done, busy;
        double client_user_ms, client_sys_ms, seconds;
} Share;

typedef struct Level {
        int clients;
        double per_s[MAX_ROUNDS];
        Share total;
        BenchCpu agent; /* sums of the differences */
} Level;

/* The agent's CPU includes its launcher process (a live child, so not in its children's
 * times until it exits). */
static void add_launcher(pid_t agent, BenchCpu *ret) {
        char path[96], buf[4096], comm[64];
        FILE *f;
        int pid;

        snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int) agent, (int) agent);
        f = fopen(path, "re");
        if (!f)
                return;
        while (fscanf(f, "%d", &pid) == 1) {
                FILE *c;
                BenchCpu l;

                snprintf(buf, sizeof buf, "/proc/%d/comm", pid);
                c = fopen(buf, "re");
                if (!c)
                        continue;
                if (fgets(comm, sizeof comm, c) && strncmp(comm, "elevated-launch", 15) == 0 &&
                    bench_proc_cpu(pid, &l) >= 0) {
                        ret->user_ms += l.user_ms;
                        ret->sys_ms += l.sys_ms;
                }
                fclose(c);
        }
        fclose(f);
}

static void read_agent(const Options *o, BenchCpu *ret) {
        *ret = (BenchCpu){};
        if (o->agent > 0 && bench_proc_cpu(o->agent, ret) < 0) {
                fprintf(stderr, "bench-throughput: cannot read the agent's CPU times (pid %d)\n", (int) o->agent);
                exit(1);
        }
        if (o->agent > 0)
                add_launcher(o->agent, ret);
}

static void account(const Options *o, Share *sh, int status, const struct rusage *ru) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                sh->done++;
        else if (o->busy_ok && WIFEXITED(status) && WEXITSTATUS(status) == STATUS_BUSY)
                sh->busy++;
        else {
                fprintf(stderr, "bench-throughput: %s failed (status 0x%x)\n", o->argv[0], (unsigned) status);
                bench_show_errors(&o->stdio);
                exit(1);
        }
        sh->client_user_ms += bench_tv_ms(&ru->ru_utime);
        sh->client_sys_ms += bench_tv_ms(&ru->ru_stime);
}

/* Keeps `clients` copies running until the deadline or the count; in a worker. */
static Share run_share(const Options *o, int clients, long count) {
        uint64_t t0 = bench_now_ns(), deadline = t0 + (uint64_t) (o->seconds * 1e9), t_end = t0;
        long started = 0, running = 0;
        Share sh = {};

        for (;;) {
                struct rusage ru;
                int status;

                while (running < clients && (count > 0 ? started < count : bench_now_ns() < deadline)) {
                        (void) bench_spawn(&o->stdio, o->argv);
                        started++;
                        running++;
                }
                if (running == 0)
                        break;
                if (wait4(-1, &status, 0, &ru) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "bench-throughput: wait4: %m\n");
                        exit(1);
                }
                running--;
                account(o, &sh, status, &ru);
                t_end = bench_now_ns();
                /* a refused run does not count towards COUNT */
                if (count > 0 && WIFEXITED(status) && WEXITSTATUS(status) == STATUS_BUSY)
                        started--;
        }
        sh.seconds = (double) (t_end - t0) / 1e9;
        return sh;
}

static pid_t start_worker(const Options *o, int user, int clients, long count, int *ret_fd) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
                fprintf(stderr, "bench-throughput: cannot start a worker: %m\n");
                exit(1);
        }
        if (pid == 0) {
                Share sh;

                (void) close(p[0]);
                if (o->n_users > 0)
                        bench_become(o->users[user]);
                sh = run_share(o, clients, count);
                _exit(write(p[1], &sh, sizeof sh) == (ssize_t) sizeof sh ? 0 : 1);
        }
        (void) close(p[1]);
        *ret_fd = p[0];
        return pid;
}

static void run_level(const Options *o, Level *l, int round) {
        int n_workers = MAX(1, MIN(o->n_users, l->clients)), fds[MAX_USERS];
        pid_t pids[MAX_USERS];
        Share sum = {};
        BenchCpu before, after;

        read_agent(o, &before);
        for (int w = 0; w < n_workers; w++) {
                /* clients and COUNT spread evenly, the first workers taking the remainder */
                int share = l->clients / n_workers + (w < l->clients % n_workers);
                long count = o->count > 0 ? o->count / n_workers + (w < o->count % n_workers) : 0;

                pids[w] = start_worker(o, w, share, count, &fds[w]);
        }
        for (int w = 0; w < n_workers; w++) {
                Share sh;
                int status;

                if (read(fds[w], &sh, sizeof sh) != (ssize_t) sizeof sh || waitpid(pids[w], &status, 0) < 0 ||
                    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        fprintf(stderr, "bench-throughput: a worker failed\n");
                        exit(1);
                }
                (void) close(fds[w]);
                sum.done += sh.done;
                sum.busy += sh.busy;
                sum.client_user_ms += sh.client_user_ms;
                sum.client_sys_ms += sh.client_sys_ms;
                sum.seconds = MAX(sum.seconds, sh.seconds);
        }
        /* the agent reaps its program and writes the exit row after the client heard the
         * status: give it a moment so that work is counted with this level */
        usleep(200 * 1000);
        read_agent(o, &after);
        l->agent.user_ms += after.user_ms - before.user_ms;
        l->agent.sys_ms += after.sys_ms - before.sys_ms;
        l->agent.child_user_ms += after.child_user_ms - before.child_user_ms;
        l->agent.child_sys_ms += after.child_sys_ms - before.child_sys_ms;
        l->total.done += sum.done;
        l->total.busy += sum.busy;
        l->total.client_user_ms += sum.client_user_ms;
        l->total.client_sys_ms += sum.client_sys_ms;
        l->per_s[round] = sum.seconds > 0 ? (double) sum.done / sum.seconds : 0;
}

static void report(const Options *o, const Level *l, int rounds) {
        double v[MAX_ROUNDS], n = (double) (l->total.done ? l->total.done : 1);
        BenchStats st;

        memcpy(v, l->per_s, sizeof(double) * (size_t) rounds);
        bench_stats(v, (size_t) rounds, &st);
        printf("throughput clients=%d users=%d rounds=%d runs=%ld busy=%ld per_s=%.1f per_s_min=%.1f "
               "per_s_max=%.1f client_user_ms=%.3f client_sys_ms=%.3f agent_user_ms=%.3f agent_sys_ms=%.3f "
               "program_ms=%.3f\n",
               l->clients, MAX(1, MIN(o->n_users, l->clients)), rounds, l->total.done, l->total.busy, st.median, st.min,
               st.max, l->total.client_user_ms / n, l->total.client_sys_ms / n, l->agent.user_ms / n,
               l->agent.sys_ms / n, (l->agent.child_user_ms + l->agent.child_sys_ms) / n);
}

int main(int argc, char *argv[]) {
        Options o = { .seconds = 5 };
        Level levels[MAX_LEVELS] = { { .clients = 1 } };
        char *items[MAX_LEVELS];
        int n_levels = 1, rounds = 1, c;
        const char *err_path = NULL;

        while ((c = getopt(argc, argv, "+c:d:N:r:p:u:be:h")) >= 0)
                switch (c) {
                case 'c':
                        n_levels = bench_split(optarg, items, MAX_LEVELS, "-c");
                        for (int k = 0; k < n_levels; k++)
                                levels[k] = (Level){ .clients = (int) bench_parse_long(items[k], "-c", 1, 256) };
                        break;
                case 'd':
                        o.seconds = (double) bench_parse_long(optarg, "-d", 1, 3600);
                        break;
                case 'N':
                        o.count = bench_parse_long(optarg, "-N", 1, 100000000);
                        break;
                case 'r':
                        rounds = (int) bench_parse_long(optarg, "-r", 1, MAX_ROUNDS);
                        break;
                case 'p':
                        o.agent = (pid_t) bench_parse_long(optarg, "-p", 1, 1 << 30);
                        break;
                case 'u':
                        o.n_users = bench_split(optarg, o.users, MAX_USERS, "-u");
                        break;
                case 'b':
                        o.busy_ok = true;
                        break;
                case 'e':
                        err_path = optarg;
                        break;
                default:
                        fprintf(stderr, "usage: bench-throughput [-c N,N...] [-d SECONDS | -N COUNT] [-r ROUNDS] "
                                        "[-p AGENT_PID] [-u USER,...] [-b] [-e ERRLOG] -- CMD ARGS...\n");
                        return 2;
                }
        if (optind < argc && streq(argv[optind], "--"))
                optind++;
        if (optind >= argc) {
                fprintf(stderr, "bench-throughput: no command\n");
                return 2;
        }
        o.argv = &argv[optind];
        bench_stdio_open(&o.stdio, err_path, false);

        for (int r = 0; r < rounds; r++)
                for (int k = 0; k < n_levels; k++)
                        run_level(&o, &levels[k], r);
        for (int k = 0; k < n_levels; k++)
                report(&o, &levels[k], rounds);
        return 0;
}
