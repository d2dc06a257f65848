/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Per-launch cgroups (docs/design.md §7).
 *
 * Invariants (MUST):
 *  - Every path comes from the kernel (/proc/self/mountinfo, /proc/self/cgroup) or is
 *    built from our own names; a launch name is checked ([A-Za-z0-9_.-], no leading
 *    '.') before it becomes a path component, so it can never climb out of the base.
 *  - All operations on launch cgroups go through an fd of the base directory opened at
 *    setup, not through a path resolved again later.
 *  - The agent sits in base/agent, a leaf of its own, so launch cgroups beside it can
 *    be created, emptied and removed while the agent runs, and a restarted agent finds
 *    the same base (its own parent, or the same elevated-<id> name).
 *  - A signal is only ever sent through a pidfd, and only after /proc/PID/cgroup of the
 *    process the pidfd pins says it is inside the launch cgroup: a pid read from
 *    cgroup.procs may be recycled before we act on it.
 *  - Launch cgroups are root-owned (0755): a non-root program cannot move itself out.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent-cgroup.h"
#include "hash.h"
#include "macro.h"
#include "util.h"

#define LAUNCH_PREFIX "launch-"
#define LAUNCH_NAME_MAX 128
#define CGROUP_FILE_MAX (64 * 1024)
#define MOUNTINFO_MAX (16 * 1024 * 1024)
#define PROCS_MAX (16 * 1024 * 1024)
#define SIGNAL_PASSES_MAX 64
#define SIGNAL_TRACKED_MAX 65536
#define TREE_DEPTH_MAX 16

struct Cgroups {
        char *mount;         /* where cgroup2 is mounted, e.g. /sys/fs/cgroup/unified */
        char *base;          /* our subtree, as a cgroup path ("/elevated-ab12cd34") */
        char *rel;           /* the same below the mount ("" when it is the mount itself) */
        char *launch_prefix; /* base + "/launch-", what launch cgroup paths start with */
        int base_fd;         /* O_DIRECTORY of the base */
        char *own;           /* the cgroup we were started in, below the mount, when we made the base */
};

static bool launch_name_valid(const char *name) {
        size_t n;

        if (!name || name[0] == '.' || name[0] == 0)
                return false;
        n = strlen(name);
        if (n > LAUNCH_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char ch = name[i];
                if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                      ch == '-' || ch == '.'))
                        return false;
        }
        return true;
}

/* Is path equal to prefix or below it (component-wise)? */
static bool path_under(const char *path, const char *prefix) {
        size_t n = strlen(prefix);

        if (streq(prefix, "/"))
                return path[0] == '/';
        return strncmp(path, prefix, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* Undoes mountinfo's octal escapes (\040 for space, …) in place. */
static void unescape_octal(char *s) {
        char *w = s;

        for (char *r = s; *r; r++) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
                    r[3] <= '7') {
                        *w++ = (char) ((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 3;
                } else
                        *w++ = *r;
        }
        *w = 0;
}

/* Cuts the next space-separated field off *p (in place); NULL when there is none. */
static char *next_field(char **p) {
        char *start = *p, *end;

        while (*start == ' ')
                start++;
        if (!*start)
                return NULL;
        end = strchrnul(start, ' ');
        *p = *end ? end + 1 : end;
        *end = 0;
        return start;
}

/* Splits one mountinfo line into root, mount point and fs type (in place).
 * Format: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER */
static bool mountinfo_split(char *line, char **root, char **where, char **fstype) {
        char *field[5], *sep, *p = line;

        sep = strstr(line, " - ");
        if (!sep)
                return false;
        *sep = 0;
        for (size_t i = 0; i < ELEMENTSOF(field); i++) {
                field[i] = next_field(&p);
                if (!field[i])
                        return false;
        }
        *root = field[3];
        *where = field[4];
        p = sep + 3;
        *fstype = next_field(&p);
        return *fstype != NULL;
}

/* Finds a cgroup2 mount whose root contains our cgroup. Returns the mount point and the
 * path below it that corresponds to own. */
static int find_cgroup2_mount(const char *own, char **ret_mount, char **ret_rel) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        char *line, *next;
        int r;

        fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        r = read_fd_full(fd, MOUNTINFO_MAX, &buf, NULL);
        if (r < 0)
                return r;

        for (line = buf; line; line = next) {
                char *end = strchrnul(line, '\n'), *root, *where, *fstype, *m, *rel;

                next = *end ? end + 1 : NULL;
                *end = 0;
                if (!mountinfo_split(line, &root, &where, &fstype) || !streq(fstype, "cgroup2"))
                        continue;
                unescape_octal(root);
                unescape_octal(where);
                if (!path_under(own, root))
                        continue;

                rel = strdup(streq(root, "/") ? own : own + strlen(root));
                m = strdup(where);
                if (!rel || !m) {
                        free(rel);
                        free(m);
                        return -ENOMEM;
                }
                *ret_mount = m;
                *ret_rel = rel;
                return 0;
        }
        return -ENOENT;
}

int cgroup_of_proc(int proc_dirfd, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        int r;

        if (proc_dirfd < 0 || !ret)
                return -EINVAL;
        fd = openat(proc_dirfd, "cgroup", O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        r = read_fd_full(fd, CGROUP_FILE_MAX, &buf, NULL);
        if (r < 0)
                return r;
        return cgroup_parse_unified(buf, ret);
}

int cgroup_parse_unified(const char *text, char **ret) {
        const char *p, *end;
        char *s;

        for (p = text; *p; p = end + 1) {
                end = strchrnul(p, '\n');
                if (strncmp(p, "0::", 3) == 0 && p[3] == '/') {
                        s = strndup(p + 3, (size_t) (end - p - 3));
                        if (!s)
                                return -ENOMEM;
                        *ret = s;
                        return 0;
                }
                if (!*end)
                        break;
        }
        return -ENODATA; /* no unified hierarchy for this process */
}

/* "a" + "/" + "b" without doubling the slash when a is "/" or "". */
static char *path_join(const char *a, const char *b) {
        size_t n = strlen(a);

        return strdup_printf("%s%s%s", a, n > 0 && a[n - 1] == '/' ? "" : "/", b);
}

static const char *last_component(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

static bool ends_with(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

/* Decides the base from our own cgroup (see the header for the rules). */
static int base_from_own(const char *own, const char *state_id, char **ret) {
        uint8_t digest[SHA256_LEN];
        char hex[2 * 4 + 1], name[32];
        int r;

        if (streq(last_component(own), "agent") && !streq(own, "/agent")) {
                *ret = strndup(own, (size_t) (last_component(own) - own - 1));
                return *ret ? 0 : -ENOMEM;
        }
        if (ends_with(own, ".service")) {
                *ret = strdup(own);
                return *ret ? 0 : -ENOMEM;
        }

        r = sha256_buf(state_id, strlen(state_id), digest);
        if (r < 0)
                return r;
        hex_encode(digest, 4, hex);
        (void) snprintf(name, sizeof(name), "elevated-%s", hex);
        *ret = path_join(own, name);
        return *ret ? 0 : -ENOMEM;
}

void cgroup_free(Cgroups *c) {
        if (!c)
                return;
        free(c->mount);
        free(c->base);
        free(c->rel);
        free(c->launch_prefix);
        free(c->own);
        safe_close(c->base_fd);
        free(c);
}

static int mkdirat_ok(int dfd, const char *path) {
        if (mkdirat(dfd, path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* Creates the base and base/agent, moves us into base/agent, opens the base. */
static int cgroup_enter(Cgroups *c, const char **ret_what) {
        _cleanup_close_ int mfd = -EBADF, procs = -EBADF;
        const char *rel = c->rel[0] == '/' ? c->rel + 1 : c->rel;
        int r;

        *ret_what = "open the cgroup2 mount";
        mfd = open(c->mount, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0)
                return negative_errno();
        *ret_what = "create the base cgroup";
        if (*rel && (r = mkdirat_ok(mfd, rel)) < 0)
                return r;
        *ret_what = "open the base cgroup";
        c->base_fd = openat(mfd, *rel ? rel : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (c->base_fd < 0)
                return negative_errno();
        *ret_what = "create the agent cgroup";
        if ((r = mkdirat_ok(c->base_fd, "agent")) < 0)
                return r;

        /* "0" means the writing process; all its threads move with it. */
        *ret_what = "move into the agent cgroup";
        procs = openat(c->base_fd, "agent/cgroup.procs", O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (procs < 0)
                return negative_errno();
        return write_full(procs, "0", 1);
}

static int fallback(char **ret_error, const char *what, int error) {
        if (ret_error) {
                char *s = error > 0 ? strdup_printf("cannot %s: %s", what, strerror(error)) : strdup(what);
                if (!s)
                        return -ENOMEM;
                *ret_error = s;
        }
        return 0;
}

int cgroup_setup(const char *state_id, Cgroups **ret, char **ret_error) {
        _cleanup_(cgroup_freep) Cgroups *c = NULL;
        _cleanup_free_ char *own = NULL;
        _cleanup_close_ int self = -EBADF;
        const char *what;
        int r;

        if (!state_id || !ret)
                return -EINVAL;
        *ret = NULL;

        self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (self < 0)
                return fallback(ret_error, "open /proc/self", errno);
        r = cgroup_of_proc(self, &own);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fallback(ret_error, "find our own cgroup2 cgroup", -r);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->base_fd = -EBADF;

        r = base_from_own(own, state_id, &c->base);
        if (r < 0)
                return r;
        c->launch_prefix = path_join(c->base, LAUNCH_PREFIX);
        if (!c->launch_prefix)
                return -ENOMEM;
        r = find_cgroup2_mount(c->base, &c->mount, &c->rel);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fallback(ret_error, "no cgroup2 mount contains our cgroup", 0);

        /* a base we name ourselves is ours to remove on a clean stop (cgroup_teardown) */
        if (strncmp(last_component(c->base), "elevated-", strlen("elevated-")) == 0) {
                _cleanup_free_ char *m = NULL, *rel = NULL;
                if (find_cgroup2_mount(own, &m, &rel) >= 0)
                        c->own = TAKE_PTR(rel);
        }
        r = cgroup_enter(c, &what);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return fallback(ret_error, what, -r);

        *ret = TAKE_PTR(c);
        return 0;
}

/* A clean stop: the subtree we made (elevated-<id>) goes, unless launches still run in it
 * (they outlive the agent and the next start re-adopts them). We move back to the cgroup
 * we were started in, then remove .../agent and the base. Under systemd the service's own
 * cgroup is systemd's to remove; nothing is done. */
int cgroup_teardown(Cgroups *c, size_t *ret_launches) {
        _cleanup_strv_free_ char **launches = NULL;
        _cleanup_close_ int mfd = -EBADF, procs = -EBADF;
        int r;

        *ret_launches = 0;
        if (!c || !c->own)
                return 0;
        r = cgroup_launch_list(c, &launches);
        if (r < 0)
                return r;
        *ret_launches = strv_length(launches);
        if (*ret_launches > 0)
                return 0;
        mfd = open(c->mount, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (mfd < 0)
                return negative_errno();
        {
                const char *own = c->own[0] == '/' ? c->own + 1 : c->own;
                _cleanup_free_ char *p = strdup_printf("%s%scgroup.procs", own, *own ? "/" : "");
                if (!p)
                        return -ENOMEM;
                procs = openat(mfd, p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        }
        if (procs < 0)
                return negative_errno();
        r = write_full(procs, "0", 1);
        if (r < 0)
                return r;
        if (unlinkat(c->base_fd, "agent", AT_REMOVEDIR) < 0 && errno != ENOENT)
                return negative_errno();
        {
                const char *rel = c->rel[0] == '/' ? c->rel + 1 : c->rel;
                if (unlinkat(mfd, rel, AT_REMOVEDIR) < 0 && errno != ENOENT)
                        return negative_errno();
        }
        return 1;
}

const char *cgroup_base(const Cgroups *c) {
        return c ? c->base : NULL;
}

const char *cgroup_mount(const Cgroups *c) {
        return c ? c->mount : NULL;
}

/* "launch-<name>" into buf, or -EINVAL for a name that is not ours to make. */
static int launch_dir(const char *name, char buf[static sizeof(LAUNCH_PREFIX) + LAUNCH_NAME_MAX]) {
        if (!launch_name_valid(name))
                return -EINVAL;
        (void) snprintf(buf, sizeof(LAUNCH_PREFIX) + LAUNCH_NAME_MAX, LAUNCH_PREFIX "%s", name);
        return 0;
}

static int launch_open(Cgroups *c, const char *name, const char *file, int flags) {
        char dir[sizeof(LAUNCH_PREFIX) + LAUNCH_NAME_MAX];
        _cleanup_free_ char *p = NULL;
        int fd, r;

        if (!c)
                return -EINVAL;
        r = launch_dir(name, dir);
        if (r < 0)
                return r;
        if (file) {
                p = path_join(dir, file);
                if (!p)
                        return -ENOMEM;
        }
        fd = openat(c->base_fd, p ?: dir, flags | O_CLOEXEC | O_NOFOLLOW);
        return fd < 0 ? negative_errno() : fd;
}

int cgroup_launch_create(Cgroups *c, const char *name, int *ret_fd) {
        char dir[sizeof(LAUNCH_PREFIX) + LAUNCH_NAME_MAX];
        int fd, r;

        if (!c || !ret_fd)
                return -EINVAL;
        r = launch_dir(name, dir);
        if (r < 0)
                return r;
        if (mkdirat(c->base_fd, dir, 0755) < 0)
                return negative_errno();
        fd = openat(c->base_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                r = negative_errno();
                (void) unlinkat(c->base_fd, dir, AT_REMOVEDIR);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

int cgroup_launch_kill(Cgroups *c, const char *name) {
        _cleanup_close_ int fd = -EBADF;

        fd = launch_open(c, name, "cgroup.kill", O_WRONLY);
        if (fd < 0)
                return fd;
        return write_full(fd, "1", 1);
}

int cgroup_launch_populated(Cgroups *c, const char *name) {
        _cleanup_close_ int fd = -EBADF;
        char buf[256]; /* "populated N" is its first line; one read, at every exit */
        const char *p;
        ssize_t n;

        fd = launch_open(c, name, "cgroup.events", O_RDONLY);
        if (fd < 0)
                return fd;
        n = pread(fd, buf, sizeof(buf) - 1, 0);
        if (n < 0)
                return negative_errno();
        buf[n] = 0;
        for (p = buf; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
                if (strncmp(p, "populated ", 10) == 0)
                        return p[10] == '1' ? 1 : p[10] == '0' ? 0 : -EBADMSG;
        return -EBADMSG;
}

char *cgroup_launch_events_path(Cgroups *c, const char *name) {
        char dir[sizeof(LAUNCH_PREFIX) + LAUNCH_NAME_MAX];

        if (!c || launch_dir(name, dir) < 0)
                return NULL;
        return strdup_printf("%s%s/%s/cgroup.events", c->mount, c->rel, dir);
}

/* A directory stream on dfd/path (path "." for dfd itself). */
static int dir_open(int dfd, const char *path, DIR **ret) {
        int fd, r;

        fd = openat(dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        *ret = fdopendir(fd);
        if (!*ret) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }
        return 0;
}

static bool is_subdir(const struct dirent *de) {
        return de->d_type == DT_DIR && !streq(de->d_name, ".") && !streq(de->d_name, "..");
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int cgroup_launch_list(Cgroups *c, char ***ret) {
        _cleanup_strv_free_ char **v = NULL;
        struct dirent *de;
        size_t n = 0, cap = 0;
        DIR *d;
        int r;

        if (!c || !ret)
                return -EINVAL;
        r = dir_open(c->base_fd, ".", &d);
        if (r < 0)
                return r;

        while ((errno = 0, de = readdir(d))) {
                const char *name = de->d_name + strlen(LAUNCH_PREFIX);

                if (de->d_type != DT_DIR || strncmp(de->d_name, LAUNCH_PREFIX, strlen(LAUNCH_PREFIX)) != 0 ||
                    !launch_name_valid(name))
                        continue;
                if (n + 2 > cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        char **nv = reallocarray(v, ncap, sizeof(char *));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        cap = ncap;
                }
                v[n] = strdup(name);
                if (!v[n]) {
                        r = -ENOMEM;
                        break;
                }
                v[++n] = NULL;
        }
        if (r == 0 && errno != 0)
                r = negative_errno();
        closedir(d);
        if (r < 0)
                return r;

        if (!v) {
                v = calloc(1, sizeof(char *));
                if (!v)
                        return -ENOMEM;
        }
        qsort(v, n, sizeof(char *), name_cmp);
        *ret = TAKE_PTR(v);
        return 0;
}

/* Removes dir (below dfd) and every child cgroup in it, deepest first. */
static int remove_tree(int dfd, const char *dir, unsigned depth) {
        struct dirent *de;
        DIR *d;
        int r;

        if (depth > TREE_DEPTH_MAX)
                return -ELOOP;
        r = dir_open(dfd, dir, &d);
        if (r < 0)
                return r;
        while (r >= 0 && (de = readdir(d)))
                if (is_subdir(de))
                        r = remove_tree(dirfd(d), de->d_name, depth + 1);
        closedir(d);
        if (r < 0)
                return r;
        return unlinkat(dfd, dir, AT_REMOVEDIR) < 0 ? negative_errno() : 0;
}

int cgroup_launch_remove(Cgroups *c, const char *name) {
        char dir[sizeof(LAUNCH_PREFIX) + LAUNCH_NAME_MAX];
        int r;

        if (!c)
                return -EINVAL;
        r = launch_dir(name, dir);
        if (r < 0)
                return r;
        /* mostly a leaf: one rmdir; a program that made cgroups of its own leaves children */
        if (unlinkat(c->base_fd, dir, AT_REMOVEDIR) >= 0)
                return 0;
        if (errno != EBUSY && errno != ENOTEMPTY)
                return negative_errno();
        return remove_tree(c->base_fd, dir, 0);
}

/* Is a cgroup path inside one of our launch cgroups? With name, inside that one. */
static bool path_in_launch(const Cgroups *c, const char *path, const char *name) {
        size_t n = strlen(c->launch_prefix), k;

        if (strncmp(path, c->launch_prefix, n) != 0)
                return false;
        if (!name)
                return path[n] != 0 && path[n] != '/';
        k = strlen(name);
        return strncmp(path + n, name, k) == 0 && (path[n + k] == 0 || path[n + k] == '/');
}

bool cgroup_path_in_launch(const Cgroups *c, const char *path) {
        return c && path && path_in_launch(c, path, NULL);
}

int cgroup_pid_in_launch(Cgroups *c, int proc_dirfd) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!c)
                return -EINVAL;
        r = cgroup_of_proc(proc_dirfd, &path);
        if (r < 0)
                return r;
        return path_in_launch(c, path, NULL);
}

/* ---- signalling every process of a launch ---- */

typedef struct SignalState {
        Cgroups *c;
        const char *name;
        int sig;
        int proc_fd;
        pid_t *seen; /* sorted: every pid signalled by earlier passes */
        size_t n_seen;
        pid_t *fresh; /* signalled in this pass */
        size_t n_fresh, cap_fresh;
} SignalState;

static int pid_cmp(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return x < y ? -1 : x > y;
}

/* The pidfd pins one process. Its /proc entry is read after the pidfd was taken, and
 * the process is checked alive afterwards: so the pid named this same process while we
 * read its cgroup, and a recycled pid can never make us signal a stranger. */
static int signal_one(SignalState *s, pid_t pid) {
        _cleanup_close_ int pidfd = -EBADF, pdir = -EBADF;
        _cleanup_free_ char *path = NULL;
        char buf[16];
        int r;

        if (s->n_seen > 0 && bsearch(&pid, s->seen, s->n_seen, sizeof(pid_t), pid_cmp))
                return 0;
        pidfd = (int) syscall(SYS_pidfd_open, pid, 0);
        if (pidfd < 0)
                return errno == ESRCH ? 0 : negative_errno();
        (void) snprintf(buf, sizeof(buf), "%d", (int) pid);
        pdir = openat(s->proc_fd, buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (pdir < 0)
                return 0;
        r = cgroup_of_proc(pdir, &path);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0 || !path_in_launch(s->c, path, s->name))
                return 0;

        if (s->n_seen + s->n_fresh >= SIGNAL_TRACKED_MAX)
                return -EAGAIN;
        if (s->n_fresh == s->cap_fresh) {
                size_t ncap = s->cap_fresh ? s->cap_fresh * 2 : 64;
                pid_t *n = reallocarray(s->fresh, ncap, sizeof(pid_t));
                if (!n)
                        return -ENOMEM;
                s->fresh = n;
                s->cap_fresh = ncap;
        }
        if (syscall(SYS_pidfd_send_signal, pidfd, s->sig, NULL, 0) < 0 && errno != ESRCH)
                return negative_errno();
        s->fresh[s->n_fresh++] = pid;
        return 0;
}

static int signal_procs_file(SignalState *s, int dfd) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        char *line, *next;
        int r;

        fd = openat(dfd, "cgroup.procs", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return errno == ENOENT ? 0 : negative_errno(); /* removed meanwhile */
        r = read_fd_full(fd, PROCS_MAX, &buf, NULL);
        if (r < 0)
                return r;
        for (line = buf; line && *line; line = next) {
                char *end = strchrnul(line, '\n');
                uint64_t pid;

                next = *end ? end + 1 : NULL;
                *end = 0;
                if (parse_uint64(line, &pid) < 0 || pid == 0 || pid > INT32_MAX)
                        return -EBADMSG;
                r = signal_one(s, (pid_t) pid);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One pass over the launch cgroup and every cgroup below it (a root program may have
 * made some). */
static int signal_tree(SignalState *s, int dfd, unsigned depth) {
        struct dirent *de;
        DIR *d;
        int r;

        r = signal_procs_file(s, dfd);
        if (r < 0 || depth >= TREE_DEPTH_MAX)
                return r;
        r = dir_open(dfd, ".", &d);
        if (r < 0)
                return r;
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_close_ int cfd = -EBADF;

                if (!is_subdir(de))
                        continue;
                cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                if (cfd >= 0)
                        r = signal_tree(s, cfd, depth + 1);
        }
        closedir(d);
        return r;
}

/* Moves this pass's pids into the sorted seen set. */
static int signal_merge(SignalState *s) {
        pid_t *n;

        if (s->n_fresh == 0)
                return 0;
        n = reallocarray(s->seen, s->n_seen + s->n_fresh, sizeof(pid_t));
        if (!n)
                return -ENOMEM;
        memcpy(n + s->n_seen, s->fresh, s->n_fresh * sizeof(pid_t));
        s->seen = n;
        s->n_seen += s->n_fresh;
        s->n_fresh = 0;
        qsort(s->seen, s->n_seen, sizeof(pid_t), pid_cmp);
        return 0;
}

/* Returns the number of processes signalled. Repeats until a pass finds nobody new, so
 * a process forked while we worked is caught; gives up with -EAGAIN when the cgroup
 * keeps producing processes (a fork bomb: use cgroup_launch_kill()). A pid that exits
 * and is recycled inside the cgroup during the call counts as seen; the caller's
 * escalation to cgroup.kill covers that. */
int cgroup_launch_signal(Cgroups *c, const char *name, int sig) {
        _cleanup_close_ int dfd = -EBADF;
        SignalState s = { .c = c, .name = name, .sig = sig, .proc_fd = -EBADF };
        int r = -EAGAIN;

        dfd = launch_open(c, name, NULL, O_RDONLY | O_DIRECTORY);
        if (dfd < 0)
                return dfd;
        s.proc_fd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (s.proc_fd < 0)
                return negative_errno();

        for (unsigned pass = 0; pass < SIGNAL_PASSES_MAX; pass++) {
                int k = signal_tree(&s, dfd, 0);
                bool none = s.n_fresh == 0;

                if (k >= 0)
                        k = signal_merge(&s);
                if (k < 0) {
                        r = k;
                        break;
                }
                if (none) {
                        r = (int) s.n_seen;
                        break;
                }
        }

        safe_close(s.proc_fd);
        free(s.seen);
        free(s.fresh);
        return r;
}
