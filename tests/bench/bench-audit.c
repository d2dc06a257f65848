/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The durable audit commit: rows per second and commits per row with 1 and with 8
 * submissions outstanding (group commit), on disk and on tmpfs.
 *
 *   bench-audit [-d DISK_PARENT] [-t TMPFS_PARENT] [-c N[,N...]] [-n ROWS] [-r ROUNDS]
 *
 * audit_log_open() and audit_submit() exactly as the agent uses them (WAL,
 * synchronous=FULL, the writer thread, the hash chain and HMAC tag per row). Each row is
 * a "request" event with the data and the requests-table upsert of a real elevation, so
 * a row costs what one of the agent's rows costs. "N outstanding" = N submitters that
 * each submit again as soon as their previous row is durable: what N concurrent
 * elevations do. The logs live in fresh directories (mkdtemp, root's, 0700) made in
 * DISK_PARENT (default /var/tmp: the disk /var/lib lives on) and TMPFS_PARENT (default
 * /dev/shm), and are removed afterwards with everything the audit module put in them.
 *
 * Then everything in the log whose key epoch ended is archived (audit_archive(), as
 * `elevatectl audit archive` does): how long the writer is busy with that.
 *
 * Records (bench-util.h):
 *   audit fs=disk|tmpfs outstanding=N rounds=R rows= rows_per_s= us_per_row=
 *     rows_per_commit=                                   (medians over the rounds)
 *   audit-archive fs=disk|tmpfs rows= ms= rows_per_s=    (one archive of the whole log)
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-audit.h"
#include "bench-util.h"
#include "macro.h"

#define MAX_LEVELS 8
#define MAX_ROUNDS 32

typedef struct Run {
        sd_event *event;
        Audit *audit;
        long target, submitted, completed;
        int failed;
} Run;

static void submit_one(Run *run);

static void on_done(int result, void *userdata) {
        Run *run = userdata;

        if (result < 0 && run->failed == 0)
                run->failed = result;
        run->completed++;
        if (run->completed < run->target && !run->failed && run->submitted < run->target)
                submit_one(run);
}

#define TRUE_SHA256 "2bd4c4bfc4fd7a3a2ed1ed6a1e8a9dbb3d3ffa67ef1e93e3c54e0a3c8f1a9e44"

/* The shape of the agent's request row: its data and its state upsert. */
static void submit_one(Run *run) {
        char id[33];
        json_t *data, *row;
        int r;

        (void) snprintf(id, sizeof id, "%016lx%016lx", (unsigned long) getpid(), (unsigned long) run->submitted);
        /* clang-format off */
        data = json_pack("{s:s, s:s, s:{s:s, s:s, s:b, s:n, s:i}, s:[s], s:[], s:{s:i, s:i, s:i, s:[i,i]}}",
                         "user", "elevate-test-alice",
                         "program_name", "/bin/true",
                         "program", "path", "/usr/bin/true", "sha256", TRUE_SHA256, "in_place", 1,
                                    "not_in_place", "size", 35664,
                         "args", "--version",
                         "file_args",
                         "peer", "pid", 4242, "uid", 1001, "gid", 1001, "groups", 1001, 995);
        row = json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:s, s:s}",
                        "id", id, "uid", 1001, "user", "elevate-test-alice", "state", "launching",
                        "created", (json_int_t) 1, "updated", (json_int_t) 2, "rule", "true", "action", "allow",
                        "program", "/usr/bin/true", "sha256", TRUE_SHA256, "argv", "[\"--version\"]",
                        "run_as", "root");
        /* clang-format on */
        if (!data || !row) {
                fprintf(stderr, "bench-audit: out of memory\n");
                exit(1);
        }
        AuditState st = { .table = "requests", .row = row };
        AuditEntry e = { .event = "request", .request = id, .uid = 1001, .data = data, .state = &st, .n_state = 1 };
        r = audit_submit(run->audit, &e, on_done, run);
        json_decref(data);
        json_decref(row);
        if (r < 0) {
                fprintf(stderr, "bench-audit: audit_submit: %s\n", strerror(-r));
                exit(1);
        }
        run->submitted++;
}

typedef struct Result {
        double rows_per_s, rows_per_commit;
} Result;

static Result run_once(sd_event *event, Audit *audit, int outstanding, long rows) {
        Run run = { .event = event, .audit = audit, .target = rows };
        uint64_t rows0, commits0, rows1, commits1, t0;
        int r;

        audit_stats(audit, &rows0, &commits0);
        t0 = bench_now_ns();
        for (int i = 0; i < outstanding && run.submitted < rows; i++)
                submit_one(&run);
        /* sd_event_exit() would finish the loop for good; the rounds reuse it */
        for (r = 0; r >= 0 && run.completed < run.target && run.failed == 0;)
                r = sd_event_run(event, UINT64_MAX);
        if (r < 0 || run.failed < 0) {
                fprintf(stderr, "bench-audit: %s\n", strerror(-(r < 0 ? r : run.failed)));
                exit(1);
        }
        double s = (double) (bench_now_ns() - t0) / 1e9;
        audit_stats(audit, &rows1, &commits1);
        return (Result){
                .rows_per_s = (double) rows / s,
                .rows_per_commit = commits1 > commits0 ? (double) (rows1 - rows0) / (double) (commits1 - commits0) : 0,
        };
}

typedef struct ArchiveRun {
        bool done;
        int result;
} ArchiveRun;

static void on_archived(int result, void *userdata) {
        ArchiveRun *x = userdata;

        x->done = true;
        x->result = result;
}

/* One archive of every row whose epoch ended, into a file in dir (removed with it). */
static void bench_archive(const char *fs, const char *dir, sd_event *event, Audit *audit) {
        _cleanup_free_ char *path = NULL;
        AuditArchiveInfo info = {};
        ArchiveRun x = {};
        uint64_t t0;
        int fd, r;

        if (asprintf(&path, "%s/bench-archive.db", dir) < 0)
                exit(1);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0) {
                fprintf(stderr, "bench-audit: cannot create %s: %m\n", path);
                exit(1);
        }
        t0 = bench_now_ns();
        r = audit_archive(audit, INT64_MAX, fd, &info, on_archived, &x);
        close(fd); /* the job has its own copy */
        while (r >= 0 && !x.done)
                r = sd_event_run(event, UINT64_MAX);
        if (r < 0 || x.result < 0) {
                fprintf(stderr, "bench-audit: archive: %s (%s)\n", strerror(-(r < 0 ? r : x.result)), info.error);
                exit(1);
        }
        double ms = (double) (bench_now_ns() - t0) / 1e6;
        printf("audit-archive fs=%s rows=%" PRIi64 " ms=%.1f rows_per_s=%.0f\n", fs, info.rows, ms,
               (double) info.rows / (ms / 1e3));
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* A fresh directory in parent: nobody else's, so nothing in it is. */
static char *make_state_dir(const char *parent) {
        char *dir = NULL;

        if (asprintf(&dir, "%s/elevate-bench-audit-XXXXXX", parent) < 0)
                return NULL;
        if (!mkdtemp(dir)) {
                free(dir);
                return NULL;
        }
        return dir;
}

/* Everything the audit module made (the database, its WAL and shm files, the chain
 * head...) and the directory; it makes no subdirectories. */
static void remove_state_dir(const char *dir) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        (void) unlinkat(dirfd(d), de->d_name, 0);
        (void) rmdir(dir);
}

static void bench_fs(const char *fs, const char *parent, const int *levels, int n_levels, long rows, int rounds) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_free_ char *dir = make_state_dir(parent);
        Result res[MAX_LEVELS][MAX_ROUNDS];
        Audit *audit = NULL;

        if (!dir) {
                fprintf(stderr, "bench-audit: cannot make a directory in %s: %m\n", parent);
                exit(1);
        }
        if (sd_event_new(&event) < 0 || audit_log_open(event, dir, &audit) < 0 || audit_failed(audit)) {
                fprintf(stderr, "bench-audit: cannot open an audit log in %s: %s\n", dir,
                        audit ? audit_failed(audit) : "audit_log_open failed");
                remove_state_dir(dir);
                exit(1);
        }
        /* a first commit outside the measurement: the database is created lazily */
        (void) run_once(event, audit, 1, 10);
        for (int i = 0; i < rounds; i++)
                for (int k = 0; k < n_levels; k++)
                        res[k][i] = run_once(event, audit, levels[k], rows);
        bench_archive(fs, dir, event, audit);
        audit_log_close(audit);
        remove_state_dir(dir);

        for (int k = 0; k < n_levels; k++) {
                double a[MAX_ROUNDS], b[MAX_ROUNDS];
                BenchStats sa, sb;

                for (int i = 0; i < rounds; i++) {
                        a[i] = res[k][i].rows_per_s;
                        b[i] = res[k][i].rows_per_commit;
                }
                bench_stats(a, (size_t) rounds, &sa);
                bench_stats(b, (size_t) rounds, &sb);
                printf("audit fs=%s outstanding=%d rounds=%d rows=%ld rows_per_s=%.1f us_per_row=%.1f "
                       "rows_per_commit=%.2f\n",
                       fs, levels[k], rounds, rows, sa.median, 1e6 / sa.median, sb.median);
        }
}

int main(int argc, char *argv[]) {
        const char *disk = "/var/tmp", *tmpfs = "/dev/shm";
        int levels[MAX_LEVELS] = { 1, 8 }, n_levels = 2, rounds = 3, c;
        long rows = 1000;

        while ((c = getopt(argc, argv, "d:t:c:n:r:h")) >= 0)
                switch (c) {
                case 'd':
                        disk = optarg;
                        break;
                case 't':
                        tmpfs = optarg;
                        break;
                case 'c': {
                        char *items[MAX_LEVELS];

                        n_levels = bench_split(optarg, items, MAX_LEVELS, "-c");
                        for (int k = 0; k < n_levels; k++)
                                levels[k] = (int) bench_parse_long(items[k], "-c", 1, 1024);
                        break;
                }
                case 'n':
                        rows = bench_parse_long(optarg, "-n", 1, 10000000);
                        break;
                case 'r':
                        rounds = (int) bench_parse_long(optarg, "-r", 1, MAX_ROUNDS);
                        break;
                default:
                        fprintf(stderr, "usage: bench-audit [-d DISK_PARENT] [-t TMPFS_PARENT] [-c N,N...] [-n ROWS] "
                                        "[-r ROUNDS]\n");
                        return 2;
                }
        if (geteuid() != 0) {
                fprintf(stderr, "bench-audit: run as root (the audit log must be root-owned)\n");
                return 77;
        }
        bench_fs("disk", disk, levels, n_levels, rows, rounds);
        bench_fs("tmpfs", tmpfs, levels, n_levels, rows, rounds);
        return 0;
}
