/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Per-launch cgroups (agent-cgroup.c) with real processes launched into them. Needs
 * root and a cgroup2 mount; exits 77 otherwise. Each test moves its (forked) test
 * process into a fresh subtree and puts it back afterwards. */

#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent-cgroup.h"
#include "agent-launch.h"
#include "hash.h"
#include "macro.h"
#include "util.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* Fixed, so a run that crashed half-way is swept by the next one (see main()). */
static const char state_id[] = "elevate-test-cgroup";
static char *orig_cgroup;
static Cgroups *cg;

static char *own_cgroup(void) {
        _cleanup_close_ int self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
        char *p = NULL;

        if (self < 0 || cgroup_of_proc(self, &p) < 0)
                return NULL;
        return p;
}

static int write_file(const char *path, const char *s) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

        return fd < 0 ? -errno : write_full(fd, s, strlen(s));
}

static int enter(char **err) {
        orig_cgroup = own_cgroup();
        if (!orig_cgroup)
                return -ENODATA;
        return cgroup_setup(state_id, &cg, err);
}

/* Back to where we were; every launch cgroup, agent and (if we made it) base go away. */
static void leave(void) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *procs = NULL, *agent = NULL, *base = NULL;

        if (!cg)
                return;
        procs = strdup_printf("%s%s/cgroup.procs", cgroup_mount(cg), streq(orig_cgroup, "/") ? "" : orig_cgroup);
        (void) write_file(procs, "0");
        if (cgroup_launch_list(cg, &names) >= 0)
                for (char **n = names; *n; n++) {
                        (void) cgroup_launch_kill(cg, *n);
                        for (int i = 0; i < 200 && cgroup_launch_populated(cg, *n) > 0; i++)
                                usleep(10000);
                        (void) cgroup_launch_remove(cg, *n);
                }
        agent = strdup_printf("%s%s/agent", cgroup_mount(cg), cgroup_base(cg));
        base = strdup_printf("%s%s", cgroup_mount(cg), cgroup_base(cg));
        (void) rmdir(agent);
        if (strncmp(strrchr(base, '/'), "/elevated-", 10) == 0)
                (void) rmdir(base);
        cgroup_free(cg);
        cg = NULL;
        free(orig_cgroup);
        orig_cgroup = NULL;
}

static void setup(void) {
        _cleanup_free_ char *err = NULL;

        ck_assert_int_eq(enter(&err), 0);
        ck_assert_msg(cg, "cgroup2 unusable: %s", err);
}

static void teardown(void) {
        leave();
}

static int proc_dir(pid_t pid) {
        char path[32];
        int fd;

        (void) snprintf(path, sizeof(path), "/proc/%d", (int) pid);
        fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static LaunchResult spawn_in(int cgroup_fd, char **argv) {
        _cleanup_free_ char *err = NULL;
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        LaunchSpec s = {
                .exec_fd = open("/bin/sh", O_RDONLY | O_CLOEXEC),
                .argv = argv,
                .envp = (char *[]){ "PATH=/usr/bin:/bin", NULL },
                .stdio = { null, null, null },
                .cwd_fd = -1,
                .loginuid = (uid_t) -1,
                .cgroup_fd = cgroup_fd,
                .ctty_fd = -1,
        };
        LaunchResult res = {};

        ck_assert_msg(launch_spawn(&s, &res, &err) == 0, "launch: %s", err);
        close(s.exec_fd);
        close(null);
        return res;
}

static size_t count_procs(const char *name) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t n = 0;

        path = strdup_printf("%s%s/launch-%s/cgroup.procs", cgroup_mount(cg), cgroup_base(cg), name);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read_fd_full(fd, 1 << 20, &buf, NULL), 0);
        for (char *p = buf; *p; p++)
                n += *p == '\n';
        return n;
}

static void wait_procs(const char *name, size_t want) {
        for (int i = 0; i < 500 && count_procs(name) != want; i++)
                usleep(10000);
        ck_assert_uint_eq(count_procs(name), want);
}

static void wait_unpopulated(const char *name) {
        for (int i = 0; i < 500 && cgroup_launch_populated(cg, name) != 0; i++)
                usleep(10000);
        ck_assert_int_eq(cgroup_launch_populated(cg, name), 0);
}

static siginfo_t reap(LaunchResult *res) {
        siginfo_t si = {};

        ck_assert_int_eq(waitid(P_PIDFD, (id_t) res->pidfd, &si, WEXITED), 0);
        close(res->pidfd);
        return si;
}

START_TEST(test_setup_layout) {
        _cleanup_free_ char *own = own_cgroup(), *expect_base = NULL, *again_err = NULL;
        uint8_t digest[SHA256_LEN];
        char hex[SHA256_HEX_LEN];
        Cgroups *again = NULL;
        struct statfs sfs;

        ck_assert_ptr_nonnull(own);
        ck_assert_int_eq(statfs(cgroup_mount(cg), &sfs), 0);
        ck_assert_int_eq((long) sfs.f_type, (long) CGROUP2_SUPER_MAGIC);

        ck_assert_int_eq(sha256_buf(state_id, strlen(state_id), digest), 0);
        hex_encode(digest, SHA256_LEN, hex);
        hex[8] = 0;
        if (!strstr(orig_cgroup, ".service")) {
                expect_base = strdup_printf("%s/elevated-%s", streq(orig_cgroup, "/") ? "" : orig_cgroup, hex);
                ck_assert_str_eq(cgroup_base(cg), expect_base);
        }
        /* we now live in base/agent */
        ck_assert_ptr_nonnull(strstr(own, cgroup_base(cg)));
        ck_assert_str_eq(own + strlen(cgroup_base(cg)), "/agent");

        /* a restart from inside base/agent finds the same base, whatever its state id */
        ck_assert_int_eq(cgroup_setup("another-state", &again, &again_err), 0);
        ck_assert_ptr_nonnull(again);
        ck_assert_str_eq(cgroup_base(again), cgroup_base(cg));
        ck_assert_str_eq(cgroup_mount(again), cgroup_mount(cg));
        cgroup_free(again);
}
END_TEST

START_TEST(test_create_list_remove) {
        _cleanup_strv_free_ char **names = NULL, **after = NULL;
        _cleanup_free_ char *events = NULL, *expect = NULL;
        int a = -1, b = -1, x = -1;
        struct stat st;

        ck_assert_int_eq(cgroup_launch_create(cg, "b2", &b), 0);
        ck_assert_int_eq(cgroup_launch_create(cg, "a1", &a), 0);
        ck_assert_int_eq(fstat(a, &st), 0);
        ck_assert(S_ISDIR(st.st_mode));
        ck_assert_int_eq(st.st_uid, 0);
        ck_assert_int_eq(st.st_mode & 0022, 0); /* nobody else may move processes */
        ck_assert_int_eq(fcntl(a, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ck_assert_int_eq(cgroup_launch_create(cg, "a1", &x), -EEXIST);
        ck_assert_int_eq(cgroup_launch_create(cg, "../x", &x), -EINVAL);
        ck_assert_int_eq(cgroup_launch_create(cg, "a/b", &x), -EINVAL);
        ck_assert_int_eq(cgroup_launch_create(cg, ".hidden", &x), -EINVAL);
        ck_assert_int_eq(cgroup_launch_create(cg, "", &x), -EINVAL);
        ck_assert_int_eq(x, -1);

        ck_assert_int_eq(cgroup_launch_list(cg, &names), 0);
        ck_assert_uint_eq(strv_length(names), 2);
        ck_assert_str_eq(names[0], "a1");
        ck_assert_str_eq(names[1], "b2");

        events = cgroup_launch_events_path(cg, "a1");
        expect = strdup_printf("%s%s/launch-a1/cgroup.events", cgroup_mount(cg), cgroup_base(cg));
        ck_assert_str_eq(events, expect);
        ck_assert_int_eq(access(events, R_OK), 0);
        ck_assert_ptr_null(cgroup_launch_events_path(cg, "../../etc"));
        ck_assert_int_eq(cgroup_launch_populated(cg, "a1"), 0);
        /* cgroups a program made below its own go with it (b2: one rmdir is not enough) */
        ck_assert_int_eq(mkdirat(b, "sub", 0755), 0);
        ck_assert_int_eq(mkdirat(b, "sub/deeper", 0755), 0);

        ck_assert_int_eq(cgroup_launch_remove(cg, "a1"), 0);
        ck_assert_int_eq(cgroup_launch_remove(cg, "b2"), 0);
        ck_assert_int_eq(faccessat(b, "sub", F_OK, 0), -1);
        ck_assert_int_eq(cgroup_launch_remove(cg, "b2"), -ENOENT);
        ck_assert_int_eq(cgroup_launch_list(cg, &after), 0);
        ck_assert_uint_eq(strv_length(after), 0);
        close(a);
        close(b);
}
END_TEST

START_TEST(test_spawn_into_launch) {
        char *argv[] = { "sh", "-c", "exec sleep 100", NULL };
        _cleanup_free_ char *path = NULL, *expect = NULL;
        _cleanup_close_ int pdir = -EBADF, self = -EBADF;
        LaunchResult res;
        siginfo_t si;
        int fd = -1;

        ck_assert_int_eq(cgroup_launch_create(cg, "run1", &fd), 0);
        res = spawn_in(fd, argv);
        close(fd);

        pdir = proc_dir(res.pid);
        ck_assert_int_eq(cgroup_of_proc(pdir, &path), 0);
        expect = strdup_printf("%s/launch-run1", cgroup_base(cg));
        ck_assert_str_eq(path, expect);
        ck_assert_int_eq(cgroup_pid_in_launch(cg, pdir), 1);
        self = proc_dir(getpid());
        ck_assert_int_eq(cgroup_pid_in_launch(cg, self), 0);
        ck_assert_int_eq(cgroup_launch_populated(cg, "run1"), 1);
        ck_assert_int_eq(cgroup_launch_remove(cg, "run1"), -EBUSY);

        ck_assert_int_eq(cgroup_launch_signal(cg, "run1", SIGTERM), 1);
        si = reap(&res);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGTERM);
        wait_unpopulated("run1");
        ck_assert_int_eq(cgroup_launch_remove(cg, "run1"), 0);
        /* a process that is gone is unknown, not "outside" */
        ck_assert_int_lt(cgroup_pid_in_launch(cg, pdir), 0);
}
END_TEST

/* Background children and an orphan that left the process tree: the signal still
 * reaches all of them because it follows the cgroup, not the tree. */
START_TEST(test_signal_reaches_escapees) {
        char *argv[] = { "sh", "-c", "(sleep 100 &); sleep 100 & sleep 100 & wait", NULL };
        LaunchResult res;
        siginfo_t si;
        int fd = -1;

        ck_assert_int_eq(cgroup_launch_create(cg, "tree", &fd), 0);
        res = spawn_in(fd, argv);
        close(fd);
        wait_procs("tree", 4);

        ck_assert_int_eq(cgroup_launch_signal(cg, "tree", SIGTERM), 4);
        si = reap(&res);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        wait_unpopulated("tree");
        ck_assert_int_eq(cgroup_launch_remove(cg, "tree"), 0);
}
END_TEST

START_TEST(test_kill) {
        char *argv[] = { "sh", "-c", "trap '' TERM; (sleep 100 &); sleep 100 & wait", NULL };
        LaunchResult res;
        siginfo_t si;
        int fd = -1;

        ck_assert_int_eq(cgroup_launch_create(cg, "k", &fd), 0);
        res = spawn_in(fd, argv);
        close(fd);
        wait_procs("k", 3);

        ck_assert_int_eq(cgroup_launch_kill(cg, "k"), 0);
        si = reap(&res);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        ck_assert_int_eq(si.si_status, SIGKILL);
        wait_unpopulated("k");
        ck_assert_int_eq(cgroup_launch_remove(cg, "k"), 0);
        ck_assert_int_eq(cgroup_launch_kill(cg, "k"), -ENOENT);
}
END_TEST

/* A root program may make cgroups below its launch cgroup and move into them; it is
 * still ours, still signalled, and removal takes the subtree. */
START_TEST(test_nested_cgroup) {
        _cleanup_free_ char *sub = NULL, *script = NULL;
        _cleanup_close_ int pdir = -EBADF;
        char *argv[] = { "sh", "-c", NULL, NULL };
        LaunchResult res;
        siginfo_t si;
        int fd = -1;

        ck_assert_int_eq(cgroup_launch_create(cg, "nest", &fd), 0);
        sub = strdup_printf("%s%s/launch-nest/sub", cgroup_mount(cg), cgroup_base(cg));
        script = strdup_printf("mkdir %s && echo 0 > %s/cgroup.procs && exec sleep 100", sub, sub);
        argv[2] = script;
        res = spawn_in(fd, argv);
        close(fd);
        for (int i = 0; i < 500 && access(sub, F_OK) < 0; i++)
                usleep(10000);
        wait_procs("nest", 0);

        pdir = proc_dir(res.pid);
        ck_assert_int_eq(cgroup_pid_in_launch(cg, pdir), 1);
        ck_assert_int_eq(cgroup_launch_populated(cg, "nest"), 1);
        ck_assert_int_eq(cgroup_launch_signal(cg, "nest", SIGTERM), 1);
        si = reap(&res);
        ck_assert_int_eq(si.si_code, CLD_KILLED);
        wait_unpopulated("nest");
        ck_assert_int_eq(cgroup_launch_remove(cg, "nest"), 0);
        ck_assert_int_eq(access(sub, F_OK), -1);
}
END_TEST

START_TEST(test_signal_edge_cases) {
        int fd = -1;

        ck_assert_int_eq(cgroup_launch_create(cg, "empty", &fd), 0);
        close(fd);
        ck_assert_int_eq(cgroup_launch_signal(cg, "empty", SIGTERM), 0);
        ck_assert_int_eq(cgroup_launch_signal(cg, "missing", SIGTERM), -ENOENT);
        ck_assert_int_eq(cgroup_launch_signal(cg, "../agent", SIGTERM), -EINVAL);
        ck_assert_int_eq(cgroup_launch_populated(cg, "missing"), -ENOENT);
        ck_assert_int_eq(cgroup_launch_remove(cg, "empty"), 0);
}
END_TEST

START_TEST(test_clone_into_removed_cgroup) {
        char *argv[] = { "true", NULL };
        _cleanup_free_ char *err = NULL;
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        LaunchSpec s = {
                .exec_fd = open("/usr/bin/true", O_RDONLY | O_CLOEXEC),
                .argv = argv,
                .envp = (char *[]){ NULL },
                .stdio = { null, null, null },
                .cwd_fd = -1,
                .loginuid = (uid_t) -1,
                .ctty_fd = -1,
        };
        LaunchResult res = { .pidfd = -1 };
        int r;

        ck_assert_int_eq(cgroup_launch_create(cg, "gone", &s.cgroup_fd), 0);
        ck_assert_int_eq(cgroup_launch_remove(cg, "gone"), 0);
        r = launch_spawn(&s, &res, &err);
        ck_assert_int_lt(r, 0);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strncmp(err, "clone3: ", 8) == 0, "error: %s", err);
        ck_assert_int_eq(res.pidfd, -1);
}
END_TEST

/* A launch as another user whose child never gets to its exec: here a frozen launch
 * cgroup holds it (the copy is born in it), as a SIGSTOP from that user would after the id
 * change. launch_spawn() runs on the agent's event loop, so it must give up after its
 * deadline, kill the child and say why, never wait for it. */
static void freeze(const char *name, bool on) {
        _cleanup_free_ char *path =
                strdup_printf("%s%s/launch-%s/cgroup.freeze", cgroup_mount(cg), cgroup_base(cg), name);

        ck_assert_int_eq(write_file(path, on ? "1" : "0"), 0);
}

static LaunchSpec spec_as_nobody(int cgroup_fd, char **argv) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);

        return (LaunchSpec){
                .exec_fd = open("/usr/bin/true", O_RDONLY | O_CLOEXEC),
                .argv = argv,
                .envp = (char *[]){ NULL },
                .uid = 65534,
                .gid = 65534,
                .stdio = { null, null, null },
                .cwd_fd = -1,
                .loginuid = (uid_t) -1,
                .cgroup_fd = cgroup_fd,
                .ctty_fd = -1,
        };
}

START_TEST(test_child_that_never_execs_is_given_up) {
        char *argv[] = { "true", NULL };
        _cleanup_free_ char *err = NULL;
        LaunchResult res = { .pidfd = -1 };
        LaunchSpec s;
        uint64_t start, took;
        int fd = -1, r;

        ck_assert_int_eq(cgroup_launch_create(cg, "frozen", &fd), 0);
        freeze("frozen", true);
        s = spec_as_nobody(fd, argv);
        start = now_usec(CLOCK_MONOTONIC);
        r = launch_spawn(&s, &res, &err);
        took = now_usec(CLOCK_MONOTONIC) - start;
        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_msg(err && strstr(err, "did not reach its start within 3 s"), "error: %s", err);
        ck_assert_int_eq(res.pidfd, -1);
        ck_assert_msg(took >= 2900000 && took < 6000000, "gave up after %" PRIu64 " us", took);
        /* killed and reaped: the cgroup is empty (a frozen cgroup still lets SIGKILL in) */
        wait_unpopulated("frozen");
        freeze("frozen", false);
        ck_assert_int_eq(cgroup_launch_remove(cg, "frozen"), 0);
        close(fd);
        close(s.exec_fd);
        close(s.stdio[0]);
}
END_TEST

typedef struct StopArgs {
        const char *name;
        pid_t stopped;
} StopArgs;

/* Waits for the (frozen) child to appear in the cgroup, stops it, thaws the cgroup: the
 * child then stops before it can run another instruction. */
static void *stop_the_child(void *userdata) {
        StopArgs *a = userdata;
        _cleanup_free_ char *path =
                strdup_printf("%s%s/launch-%s/cgroup.procs", cgroup_mount(cg), cgroup_base(cg), a->name);

        for (int i = 0; i < 500 && a->stopped == 0; i++) {
                _cleanup_free_ char *buf = NULL;
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

                if (fd >= 0 && read_fd_full(fd, 1 << 16, &buf, NULL) == 0 && buf[0]) {
                        long pid = strtol(buf, NULL, 10);

                        if (pid > 0 && pid <= INT_MAX && kill((pid_t) pid, SIGSTOP) == 0)
                                a->stopped = (pid_t) pid;
                }
                if (!a->stopped)
                        usleep(2000);
        }
        freeze(a->name, false);
        return NULL;
}

START_TEST(test_child_stopped_before_exec_is_given_up_at_once) {
        char *argv[] = { "true", NULL };
        _cleanup_free_ char *err = NULL;
        LaunchResult res = { .pidfd = -1 };
        StopArgs args = { .name = "stopped" };
        pthread_t t;
        LaunchSpec s;
        uint64_t start, took;
        int fd = -1, r;

        ck_assert_int_eq(cgroup_launch_create(cg, "stopped", &fd), 0);
        freeze("stopped", true);
        s = spec_as_nobody(fd, argv);
        ck_assert_int_eq(pthread_create(&t, NULL, stop_the_child, &args), 0);
        start = now_usec(CLOCK_MONOTONIC);
        r = launch_spawn(&s, &res, &err);
        took = now_usec(CLOCK_MONOTONIC) - start;
        ck_assert_int_eq(pthread_join(t, NULL), 0);
        ck_assert_int_gt(args.stopped, 0);
        ck_assert_int_eq(r, -ETIMEDOUT);
        ck_assert_msg(err && strstr(err, "stopped (SIGSTOP) before it started"), "error: %s", err);
        ck_assert_int_eq(res.pidfd, -1);
        /* the stop is seen within a tick or two of the thaw, long before the deadline */
        ck_assert_msg(took < 2000000, "gave up after %" PRIu64 " us", took);
        wait_unpopulated("stopped");
        ck_assert_int_eq(cgroup_launch_remove(cg, "stopped"), 0);
        close(fd);
        close(s.exec_fd);
        close(s.stdio[0]);
}
END_TEST

/* Without a writable cgroup2 the module says why and the caller falls back. */
START_TEST(test_fallback_read_only) {
        _cleanup_free_ char *err = NULL, *err2 = NULL, *mnt = NULL;
        Cgroups *c = NULL;

        /* learn the mount, then hide it behind a read-only bind in a private namespace */
        setup();
        mnt = strdup(cgroup_mount(cg));
        teardown();

        ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
        ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        ck_assert_int_eq(mount(mnt, mnt, NULL, MS_BIND, NULL), 0);
        ck_assert_int_eq(mount(NULL, mnt, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
        ck_assert_int_eq(cgroup_setup("test-cgroup-readonly", &c, &err), 0);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(err);
        ck_assert_msg(strstr(err, "Read-only file system"), "reason: %s", err);

        ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
        ck_assert_int_eq(umount2(mnt, MNT_DETACH), 0);
        ck_assert_int_eq(cgroup_setup("test-cgroup-nomount", &c, &err2), 0);
        ck_assert_ptr_null(c);
        ck_assert_msg(err2 && strstr(err2, "no cgroup2 mount"), "reason: %s", err2);
}
END_TEST

static bool cgroup2_mounted(void) {
        _cleanup_close_ int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;

        return fd >= 0 && read_fd_full(fd, 16 << 20, &buf, NULL) >= 0 && strstr(buf, " - cgroup2 ");
}

static Suite *cgroup_suite(void) {
        Suite *s = suite_create("cgroup");
        TCase *tc = tcase_create("launch");
        TCase *fb = tcase_create("fallback");

        tcase_set_timeout(tc, 60);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_setup_layout);
        tcase_add_test(tc, test_create_list_remove);
        tcase_add_test(tc, test_spawn_into_launch);
        tcase_add_test(tc, test_signal_reaches_escapees);
        tcase_add_test(tc, test_kill);
        tcase_add_test(tc, test_nested_cgroup);
        tcase_add_test(tc, test_signal_edge_cases);
        tcase_add_test(tc, test_clone_into_removed_cgroup);
        tcase_add_test(tc, test_child_that_never_execs_is_given_up);
        tcase_add_test(tc, test_child_stopped_before_exec_is_given_up_at_once);
        suite_add_tcase(s, tc);
        tcase_add_test(fb, test_fallback_read_only);
        suite_add_tcase(s, fb);
        return s;
}

int main(void) {
        _cleanup_free_ char *why = NULL;
        SRunner *sr;
        int failed;

        if (geteuid() != 0) {
                fprintf(stderr, "test-cgroup needs root; skipping\n");
                return 77;
        }
        if (!cgroup2_mounted()) {
                fprintf(stderr, "no cgroup2 mount; skipping\n");
                return 77;
        }
        /* Checked teardowns do not run after a failed test: sweep before and after. This
         * also tells whether cgroup2 is usable here at all (a read-only /sys/fs/cgroup in
         * a container is not). */
        if (enter(&why) < 0 || !cg) {
                fprintf(stderr, "cgroup2 unusable (%s); skipping\n", why ?: "setup failed");
                return 77;
        }
        leave();
        sr = srunner_create(cgroup_suite());
        srunner_set_fork_status(sr, CK_FORK); /* tests change fds, signals, namespaces */
        srunner_run_all(sr, CK_NORMAL);
        if (enter(NULL) >= 0)
                leave();
        failed = srunner_ntests_failed(sr);
        srunner_free(sr);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
