/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Peer identity. Invariants (see agent-peer.h): identity only from the kernel; /proc
 * facts believed only while the pidfd shows the same process alive; any failure denies.
 * Nothing here reads a user-controlled file: /proc files are kernel-generated and never
 * block.
 */

#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <systemd/sd-login.h>
#include <time.h>
#include <unistd.h>

#include "agent-cgroup.h"
#include "agent-peer.h"
#include "user.h"
#include "util.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

static char *chomp(char *s) {
        size_t l = strlen(s);

        while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == ' '))
                s[--l] = 0;
        return s;
}

static int pidfd_open_raw(pid_t pid) {
        return (int) syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_alive(int pidfd) {
        if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0) < 0)
                return negative_errno();
        return 0;
}

/* PIDFD_GET_INFO (Linux 6.13): the ids straight from the process's credentials, through
 * its pidfd (so they are that process's, whatever its pid became), instead of from
 * /proc/PID/status, which the kernel renders as text, memory statistics included, at
 * every read: the most expensive read of a request. Its first published layout (64
 * bytes), under our own names: Debian 12's headers predate it. Older kernels: -ENOTTY. */
struct peer_pidfd_info {
        uint64_t mask, cgroupid;
        uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
        int32_t exit_code;
};
_Static_assert(sizeof(struct peer_pidfd_info) == 64, "PIDFD_INFO_SIZE_VER0");
#define PEER_PIDFD_INFO_CREDS (UINT64_C(1) << 1)
#define PEER_PIDFD_GET_INFO _IOWR(0xFF, 11, struct peer_pidfd_info)

static int pidfd_ids(int pidfd, uint32_t u[3], uint32_t g[3]) {
        struct peer_pidfd_info i = { .mask = PEER_PIDFD_INFO_CREDS };

        if (ioctl(pidfd, PEER_PIDFD_GET_INFO, &i) < 0)
                return negative_errno();
        if (!(i.mask & PEER_PIDFD_INFO_CREDS))
                return -ENOTTY;
        u[0] = i.ruid, u[1] = i.euid, u[2] = i.suid;
        g[0] = i.rgid, g[1] = i.egid, g[2] = i.sgid;
        return 0;
}

#define PROC_FILE_MAX 16383

/* name below dir_fd (AT_FDCWD: an absolute path). The kernel makes each file read here
 * (stat, status, cgroup, loginuid, sessionid) whole before it copies any of it, so a read
 * that returns less than was asked for returned the rest of it: no second read to see the
 * end (every system call counts here: this runs for each connection). */
static int read_proc_file(int dir_fd, const char *name, char **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        ssize_t k;

        fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        /* procfs files ignore offsets for some entries: read sequentially */
        buf = malloc(PROC_FILE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        while (len < PROC_FILE_MAX) {
                size_t want = PROC_FILE_MAX - len;

                k = read(fd, buf + len, want);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                len += (size_t) k;
                if ((size_t) k < want)
                        break;
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* "Uid:\t1000\t1000\t1000\t1000" -> the first three numbers */
static int parse_id_line(const char *status, const char *key, uint32_t ids[3]) {
        const char *p = status;
        size_t kl = strlen(key);

        while (p && *p) {
                if (strncmp(p, key, kl) == 0) {
                        unsigned long a, b, c;
                        if (sscanf(p + kl, " %lu %lu %lu", &a, &b, &c) != 3)
                                return -EBADMSG;
                        ids[0] = (uint32_t) a;
                        ids[1] = (uint32_t) b;
                        ids[2] = (uint32_t) c;
                        return 0;
                }
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        return -ENOENT;
}

/* Fields of /proc/PID/stat after the comm, which may contain anything, even ") ". */
typedef struct ProcStat {
        char comm[64];
        char state;
        pid_t ppid;
        pid_t session;
        int tty_nr;
        uint64_t start_time;
} ProcStat;

static int parse_stat(const char *s, ProcStat *ret) {
        const char *open = strchr(s, '('), *close = strrchr(s, ')');
        unsigned long long start = 0;
        int ppid, session, tty, n;
        size_t cl;

        if (!open || !close || close < open)
                return -EBADMSG;
        cl = (size_t) (close - open - 1);
        {
                _cleanup_free_ char *e = escape_display(open + 1, cl, 32);
                if (!e)
                        return -ENOMEM;
                snprintf(ret->comm, sizeof(ret->comm), "%s", e);
        }
        /* state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime
         * cutime cstime priority nice num_threads itrealvalue starttime */
        n = sscanf(close + 1, " %c %d %*d %d %d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
                   &ret->state, &ppid, &session, &tty, &start);
        if (n != 5)
                return -EBADMSG;
        ret->ppid = ppid;
        ret->session = session;
        ret->tty_nr = tty;
        ret->start_time = start;
        return 0;
}

static int proc_stat(int dir_fd, const char *name, ProcStat *ret) {
        _cleanup_free_ char *s = NULL;
        int r;

        r = read_proc_file(dir_fd, name, &s);
        if (r < 0)
                return r;
        return parse_stat(s, ret);
}

static char *tty_name(int tty_nr) {
        unsigned maj = ((unsigned) tty_nr >> 8) & 0xfff,
                 min = ((unsigned) tty_nr & 0xff) | (((unsigned) tty_nr >> 12) & 0xfff00);

        if (tty_nr == 0)
                return NULL;
        if (maj >= 136 && maj <= 143)
                return strdup_printf("pts/%u", (maj - 136) * 256 + min);
        if (maj == 4 && min < 64)
                return strdup_printf("tty%u", min);
        if (maj == 4)
                return strdup_printf("ttyS%u", min - 64);
        return strdup_printf("tty(%u:%u)", maj, min);
}

static int read_groups(int sock, Peer *p) {
        socklen_t len = 64 * sizeof(gid_t);

        for (;;) {
                gid_t *g = malloc(len + sizeof(gid_t));
                socklen_t l = len;

                if (!g)
                        return -ENOMEM;
                if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, g + 1, &l) < 0) {
                        free(g);
                        if (errno == ERANGE && l > len && l <= PEER_MAX_GROUPS * sizeof(gid_t)) {
                                len = l;
                                continue;
                        }
                        return errno == ERANGE ? -E2BIG : negative_errno();
                }
                g[0] = p->gid;
                p->gids = g;
                p->n_gids = 1 + l / sizeof(gid_t);
                return 0;
        }
}

static int pid_pidfd(int sock, Peer *p, char **ret_error) {
        socklen_t l = sizeof(int);
        int fd = -EBADF;

        if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &fd, &l) == 0 && fd >= 0) {
                (void) fd_set_cloexec(fd, true);
                p->pidfd = fd;
                return 0;
        }
        if (errno != ENOPROTOOPT && errno != EINVAL) {
                *ret_error = strdup_printf("SO_PEERPIDFD: %m");
                return negative_errno();
        }
        /* Older kernel: open a pidfd for the pid and make sure it is the process that
         * connected, by checking it started before now (a recycled pid would be younger
         * than the connection). The start-time check happens after /proc is opened. */
        fd = pidfd_open_raw(p->pid);
        if (fd < 0) {
                *ret_error = strdup_printf("pidfd_open(%d): %m", (int) p->pid);
                return negative_errno();
        }
        p->pidfd = fd;
        return 1;
}

static void read_user(Peer *p) {
        UserRecord u;

        if (user_lookup(NULL, p->uid, &u) >= 0) {
                p->user = TAKE_PTR(u.name);
                p->home = TAKE_PTR(u.home);
                user_record_done(&u);
        }
}

/* The agent's own namespaces, read once: it never calls setns() or unshare(). */
static struct {
        bool read;
        int error;
        struct stat user, mnt;
} own_ns;

static bool ns_differs(int proc_fd, const char *ns) {
        const struct stat *b = streq(ns, "user") ? &own_ns.user : &own_ns.mnt;
        struct stat a;
        char path[16];

        if (!own_ns.read) {
                own_ns.error =
                        stat("/proc/self/ns/user", &own_ns.user) < 0 || stat("/proc/self/ns/mnt", &own_ns.mnt) < 0;
                own_ns.read = !own_ns.error;
        }
        snprintf(path, sizeof(path), "ns/%s", ns);
        if (own_ns.error || fstatat(proc_fd, path, &a, 0) < 0)
                return true; /* unknown counts as different: fail closed */
        return a.st_dev != b->st_dev || a.st_ino != b->st_ino;
}

static void read_sandbox(Peer *p) {
        static const char *const markers[] = {
                "flatpak-", "/snap.", "/docker", "/lxc", "libpod-", "/machine.slice/", "/containerd",
        };

        if (ns_differs(p->proc_fd, "user")) {
                p->sandboxed = true;
                p->sandbox_reason = strdup("runs in another user namespace");
                return;
        }
        if (ns_differs(p->proc_fd, "mnt")) {
                p->sandboxed = true;
                p->sandbox_reason = strdup("runs in another mount namespace");
                return;
        }
        for (size_t i = 0; p->cgroup && i < ELEMENTSOF(markers); i++)
                if (strstr(p->cgroup, markers[i])) {
                        p->sandboxed = true;
                        p->sandbox_reason = strdup_printf("cgroup %s looks like a sandbox or container", p->cgroup);
                        return;
                }
}

/* cgroups: the caller's /proc/PID/cgroup, NULL if unread. logind puts every session's
 * processes in a "session-<id>.scope" (in the unified hierarchy or systemd's named one):
 * without one in the text, asking sd-login (which reads the file again, and init's) would
 * only say that there is none. */
static void read_sessions(Peer *p, const char *cgroups) {
        _cleanup_free_ char *s = NULL, *session = NULL;
        uint64_t n;

        p->loginuid = (uid_t) -1;
        p->audit_session = UINT32_MAX;
        if (read_proc_file(p->proc_fd, "loginuid", &s) >= 0 && parse_uint64(chomp(s), &n) >= 0 && n < UINT32_MAX)
                p->loginuid = (uid_t) n;
        free(s);
        s = NULL;
        if (read_proc_file(p->proc_fd, "sessionid", &s) >= 0 && parse_uint64(chomp(s), &n) >= 0 && n < UINT32_MAX)
                p->audit_session = (uint32_t) n;

        p->session = POLICY_SESSION_UNKNOWN;
        if (cgroups && !strstr(cgroups, "/session-"))
                return;
        if (sd_pid_get_session(p->pid, &session) >= 0) {
                int remote = sd_session_is_remote(session);
                p->session = remote > 0    ? POLICY_SESSION_REMOTE
                             : remote == 0 ? POLICY_SESSION_LOCAL
                                           : POLICY_SESSION_UNKNOWN;
                p->logind_session = TAKE_PTR(session);
        }
}

/* The leader of the caller's session, where logind and the audit session say nothing:
 * processes cannot join a session they were not born into, so the leader (pid and start
 * time, read while a pidfd shows it alive) names the caller's terminal or login the way a
 * session id would. The kernel keeps a session's id from being reused while any member
 * lives; the start time tells a later session of the same number apart. A session of pid
 * 0 or 1 (init's, shared by everything not in a session of its own) or a leader that is
 * gone establishes nothing. */
static void read_session_leader(Peer *p, pid_t sid) {
        _cleanup_close_ int pidfd = -EBADF;
        char path[32];
        ProcStat st = {};

        if (sid <= 1)
                return;
        pidfd = pidfd_open_raw(sid);
        if (pidfd < 0)
                return;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) sid);
        if (proc_stat(AT_FDCWD, path, &st) < 0 || st.session != sid || st.state == 'Z' || st.state == 'X')
                return;
        if (pidfd_alive(pidfd) < 0)
                return;
        p->leader = sid;
        p->leader_start = st.start_time;
}

static void read_ancestry(Peer *p, pid_t ppid) {
        while (ppid > 1 && p->n_ancestry < PEER_MAX_ANCESTRY) {
                char path[32];
                ProcStat st = {};

                snprintf(path, sizeof(path), "/proc/%d/stat", (int) ppid);
                if (proc_stat(AT_FDCWD, path, &st) < 0)
                        break;
                p->ancestry[p->n_ancestry].pid = ppid;
                snprintf(p->ancestry[p->n_ancestry].comm, sizeof(p->ancestry[0].comm), "%s", st.comm);
                p->n_ancestry++;
                ppid = st.ppid;
        }
}

/* The "State:" letter of a status text, 0 if there is none. */
static char status_state(const char *status) {
        const char *l = status;

        while (l && *l) {
                if (strncmp(l, "State:", 6) == 0)
                        return l[6 + strspn(l + 6, " \t")];
                l = strchr(l, '\n');
                if (l)
                        l++;
        }
        return 0;
}

/* Whether the process has exited, for the PIDFD_GET_INFO path: the state of its first
 * thread (the one whose id is its pid, whose ids PIDFD_GET_INFO reports), from stat, the
 * short rendering. Neither the pidfd (readable only once every thread has exited) nor a
 * thread pidfd of the first thread (not readable either while other threads live) says
 * that it is a zombie; a process whose first thread exited while another lives on with
 * ids of its own would pass as the process that connected. */
static int first_thread_exited(const Peer *p) {
        ProcStat st = {};
        int r;

        r = proc_stat(p->proc_fd, "stat", &st);
        if (r < 0)
                return r;
        return st.state == 'Z' || st.state == 'X';
}

/* The real, effective and saved ids are still the connect-time ones; with ret_exited,
 * also whether the process has exited (its first thread's state: from stat after the
 * ids were read, or from the same reading of status on a kernel without PIDFD_GET_INFO). */
static int verify_ids(const Peer *p, bool *ret_exited) {
        _cleanup_free_ char *status = NULL;
        uint32_t u[3], g[3];
        int r;

        r = p->pidfd >= 0 ? pidfd_ids(p->pidfd, u, g) : -ENOTTY;
        if (r < 0 && r != -ENOTTY && r != -EINVAL)
                return r; /* -ESRCH: gone and reaped */
        if (r < 0) {
                /* no PIDFD_GET_INFO: status has the ids and the state in one reading */
                r = read_proc_file(p->proc_fd, "status", &status);
                if (r < 0)
                        return r;
                if (parse_id_line(status, "Uid:", u) < 0 || parse_id_line(status, "Gid:", g) < 0)
                        return -EBADMSG;
        }
        for (int i = 0; i < 3; i++)
                if (u[i] != p->uid || g[i] != p->gid)
                        return -EPERM;
        if (!ret_exited)
                return 0;
        if (status) {
                char state = status_state(status);

                if (state == 0)
                        return -EBADMSG;
                *ret_exited = state == 'Z' || state == 'X';
                return 0;
        }
        r = first_thread_exited(p); /* after the ids were read */
        if (r < 0)
                return r;
        *ret_exited = r > 0;
        return 0;
}

int peer_identify(int sock, Peer *p, char **ret_error) {
        struct ucred cred;
        socklen_t l = sizeof(cred);
        char path[32];
        ProcStat st = {};
        int r, fallback;

        /* nested and sandboxed until the context says otherwise (peer_read_context()) */
        *p = (Peer){ .pidfd = -EBADF,
                     .proc_fd = -EBADF,
                     .loginuid = (uid_t) -1,
                     .audit_session = UINT32_MAX,
                     .nested = true,
                     .sandboxed = true };
        *ret_error = NULL;

        if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0 || l != sizeof(cred)) {
                *ret_error = strdup_printf("SO_PEERCRED: %m");
                return -EIO;
        }
        if (cred.pid <= 0 || cred.uid == (uid_t) -1 || cred.gid == (gid_t) -1) {
                *ret_error = strdup("peer has no process or an unmapped id (another user namespace?)");
                return -EPERM;
        }
        p->pid = cred.pid;
        p->uid = cred.uid;
        p->gid = cred.gid;

        r = read_groups(sock, p);
        if (r < 0) {
                *ret_error = strdup_printf("SO_PEERGROUPS: %s", strerror(-r));
                return r;
        }
        fallback = pid_pidfd(sock, p, ret_error);
        if (fallback < 0)
                return fallback;

        snprintf(path, sizeof(path), "/proc/%d", (int) p->pid);
        p->proc_fd = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (p->proc_fd < 0) {
                r = negative_errno();
                *ret_error = strdup_printf("open %s: %s", path, strerror(-r));
                return r == -ENOENT ? -ESRCH : r; /* gone (and reaped) */
        }
        r = proc_stat(p->proc_fd, "stat", &st);
        if (r < 0) {
                *ret_error = strdup_printf("reading /proc/%d/stat: %s", (int) p->pid, strerror(-r));
                return r;
        }
        p->start_time = st.start_time;
        if (st.state == 'Z' || st.state == 'X') {
                *ret_error = strdup("peer process has exited");
                return -ESRCH;
        }
        if (fallback) {
                long hz = sysconf(_SC_CLK_TCK);
                uint64_t started = hz > 0 ? st.start_time * USEC_PER_SEC / (uint64_t) hz : UINT64_MAX;
                if (started > now_usec(CLOCK_BOOTTIME)) {
                        *ret_error = strdup("peer process started after it connected (pid reused)");
                        return -ESRCH;
                }
        }
        p->tty = tty_name(st.tty_nr);
        r = verify_ids(p, NULL);
        if (r < 0) {
                *ret_error = strdup(r == -EPERM ? "real, effective and saved ids differ from the connect-time ids"
                                                : "cannot read the peer's ids");
                return r;
        }
        p->ppid = st.ppid;
        p->sid = st.session;

        /* Everything above was read from /proc/PID: it belongs to the peer only if the
         * peer is still alive now (a pid cannot be reused while its pidfd process lives). */
        r = pidfd_alive(p->pidfd);
        if (r < 0) {
                *ret_error = strdup("peer process exited while it was being identified");
                return r;
        }
        return 0;
}

int peer_read_context(Peer *p, Cgroups *cgroups) {
        _cleanup_free_ char *cgroup_text = NULL;
        int r;

        if (p->context_read)
                return p->context_error;
        p->context_read = true;
        if (p->proc_fd < 0 || p->pidfd < 0)
                return (p->context_error = -ESRCH);
        p->nested = p->sandboxed = false;
        /* read once: the unified path (nested?) and the session's scope (read_sessions) */
        if (read_proc_file(p->proc_fd, "cgroup", &cgroup_text) >= 0)
                (void) cgroup_parse_unified(cgroup_text, &p->cgroup);
        if (cgroups)
                p->nested = !p->cgroup || cgroup_path_in_launch(cgroups, p->cgroup); /* unknown counts as nested */
        read_sessions(p, cgroup_text);
        if (!p->logind_session && p->audit_session == UINT32_MAX)
                read_session_leader(p, p->sid);
        read_sandbox(p);
        read_ancestry(p, p->ppid);
        read_user(p);

        /* the same as at identification: all of it was the peer's only if it still lives */
        r = pidfd_alive(p->pidfd);
        if (r < 0) {
                p->context_error = r;
                p->nested = p->sandboxed = true;
        }
        return p->context_error;
}

int peer_verify(const Peer *p) {
        bool exited = true;
        int r;

        if (p->pidfd < 0 || p->proc_fd < 0 || p->context_error < 0)
                return -ESRCH;
        /* one reading of status: the ids, and the state, since a zombie still answers to
         * signal 0 ("alive" means not yet exited) */
        r = verify_ids(p, &exited);
        if (r < 0)
                return r;
        if (exited)
                return -ESRCH;
        return pidfd_alive(p->pidfd);
}

void peer_done(Peer *p) {
        free(p->gids);
        free(p->user);
        free(p->home);
        free(p->cgroup);
        free(p->logind_session);
        free(p->tty);
        free(p->sandbox_reason);
        safe_close(p->pidfd);
        safe_close(p->proc_fd);
        *p = (Peer){ .pidfd = -EBADF, .proc_fd = -EBADF };
}

bool peer_is_root(const Peer *p) {
        /* verify_ids() established real == effective == saved == p->uid */
        return p->uid == 0;
}

bool peer_in_group(const Peer *p, gid_t gid) {
        for (size_t i = 0; i < p->n_gids; i++)
                if (p->gids[i] == gid)
                        return true;
        return false;
}

const char *peer_session_key(const Peer *p, char *buf, size_t len) {
        if (p->logind_session)
                snprintf(buf, len, "logind:%s", p->logind_session);
        else if (p->audit_session != UINT32_MAX)
                snprintf(buf, len, "audit:%u", p->audit_session);
        else if (p->leader > 0 && p->tty)
                snprintf(buf, len, "terminal:%s:%d@%" PRIu64, p->tty, (int) p->leader, p->leader_start);
        else if (p->leader > 0)
                snprintf(buf, len, "session:%d@%" PRIu64, (int) p->leader, p->leader_start);
        else
                snprintf(buf, len, "none");
        return buf;
}

const char *peer_session_binding(const char *key) {
        static const char *const prefixes[] = { "logind", "audit", "terminal", "session" };

        for (size_t i = 0; key && i < ELEMENTSOF(prefixes); i++) {
                size_t l = strlen(prefixes[i]);
                if (strncmp(key, prefixes[i], l) == 0 && key[l] == ':')
                        return prefixes[i];
        }
        return "single-use";
}

int peer_to_json(const Peer *p, json_t *obj) {
        json_t *anc = json_array();
        char key[128];

        if (!anc)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_ancestry; i++)
                json_array_append_new(anc, json_pack("{s:i,s:s}", "pid", (json_int_t) p->ancestry[i].pid, "comm",
                                                     p->ancestry[i].comm));
        if (json_object_set_new(obj, "pid", json_integer(p->pid)) < 0 ||
            json_object_set_new(obj, "user", p->user ? json_string(p->user) : json_null()) < 0 ||
            json_object_set_new(obj, "tty", p->tty ? json_string(p->tty) : json_null()) < 0 ||
            json_object_set_new(obj, "session", json_string(peer_session_key(p, key, sizeof(key)))) < 0 ||
            json_object_set_new(obj, "session_binding", json_string(peer_session_binding(key))) < 0 ||
            json_object_set_new(obj, "cgroup", p->cgroup ? json_string(p->cgroup) : json_null()) < 0 ||
            json_object_set_new(obj, "ancestry", anc) < 0)
                return -ENOMEM;
        return 0;
}
