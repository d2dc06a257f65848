/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * The agent↔launcher wire (agent-launcher-wire.h): encoding an order, decoding it
 * against what was received, and the two socket calls.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent-launcher-wire.h"
#include "macro.h"
#include "util.h"

/* ---- the wire: one order ---- */

static size_t filter_size(const struct sock_fprog *f) {
        return f ? (size_t) f->len * sizeof(struct sock_filter) : 0;
}

int launcher_order_encode(const LaunchSpec *s, uint64_t cookie, void **ret, size_t *ret_len, int *fds, size_t *n_fds) {
        OrderHeader h = {
                .magic = LAUNCHER_MAGIC,
                .cookie = cookie,
                .uid = (uint32_t) s->uid,
                .gid = (uint32_t) s->gid,
                .loginuid = (uint32_t) s->loginuid,
                .n_groups = (uint32_t) s->n_groups,
                .n_seccomp = s->seccomp ? s->seccomp->len : 0,
                .n_notify = s->notify_filter ? s->notify_filter->len : 0,
                .n_extra_fds = (uint32_t) s->n_extra_fds,
        };
        size_t strings = 0, size, n = 0;
        uint8_t *buf, *p;

        if (s->n_extra_fds > LAUNCH_EXTRA_FDS_MAX || s->n_groups > 65536 || h.n_seccomp > ORDER_MAX_FILTER ||
            h.n_notify > ORDER_MAX_FILTER)
                return -E2BIG;
        for (char **a = s->argv; *a; a++, h.n_argv++)
                strings += strlen(*a) + 1;
        for (char **e = s->envp; *e; e++, h.n_envp++)
                strings += strlen(*e) + 1;
        if (h.n_argv == 0 || h.n_argv + h.n_envp > ORDER_MAX_STRINGS)
                return -E2BIG;
        h.strings_len = (uint32_t) strings;
        if (s->keep_exec_fd)
                h.flags |= ORDER_KEEP_EXEC_FD;
        if (s->controlling_tty)
                h.flags |= ORDER_CONTROLLING_TTY;
        if (s->cwd_fd >= 0)
                h.flags |= ORDER_CWD;
        if (s->cgroup_fd >= 0)
                h.flags |= ORDER_CGROUP;
        if (s->controlling_tty && s->ctty_fd >= 0)
                h.flags |= ORDER_CTTY;
        if (s->loginuid != (uid_t) -1)
                h.flags |= ORDER_LOGINUID;
        if (s->gated)
                h.flags |= ORDER_GATE; /* the caller adds ORDER_HOLD */
        if (s->nofile) {
                h.flags |= ORDER_NOFILE;
                h.nofile_cur = s->nofile->rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) s->nofile->rlim_cur;
                h.nofile_max = s->nofile->rlim_max == RLIM_INFINITY ? UINT64_MAX : (uint64_t) s->nofile->rlim_max;
        }
        size = sizeof(h) + s->n_groups * sizeof(uint32_t) + filter_size(s->seccomp) + filter_size(s->notify_filter) +
               strings;
        if (size > ORDER_MAX)
                return -E2BIG;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        p = buf;
        memcpy(p, &h, sizeof(h));
        p += sizeof(h);
        for (size_t i = 0; i < s->n_groups; i++) {
                uint32_t g = (uint32_t) s->groups[i];
                memcpy(p, &g, sizeof(g));
                p += sizeof(g);
        }
        if (s->seccomp) {
                memcpy(p, s->seccomp->filter, filter_size(s->seccomp));
                p += filter_size(s->seccomp);
        }
        if (s->notify_filter) {
                memcpy(p, s->notify_filter->filter, filter_size(s->notify_filter));
                p += filter_size(s->notify_filter);
        }
        for (char **a = s->argv; *a; a++)
                p = (uint8_t *) stpcpy((char *) p, *a) + 1;
        for (char **e = s->envp; *e; e++)
                p = (uint8_t *) stpcpy((char *) p, *e) + 1;

        /* fds, in this order: exec, stdin, stdout, stderr, [cwd], [cgroup], [ctty], [gate], extra… */
        fds[n++] = s->exec_fd;
        for (int i = 0; i < 3; i++)
                fds[n++] = s->stdio[i];
        if (h.flags & ORDER_CWD)
                fds[n++] = s->cwd_fd;
        if (h.flags & ORDER_CGROUP)
                fds[n++] = s->cgroup_fd;
        if (h.flags & ORDER_CTTY)
                fds[n++] = s->ctty_fd;
        if (h.flags & ORDER_GATE)
                fds[n++] = s->gate_fd;
        for (size_t i = 0; i < s->n_extra_fds; i++)
                fds[n++] = s->extra_fds[i];
        *n_fds = n;
        *ret = buf;
        *ret_len = size;
        return 0;
}

void launcher_order_done(Order *o) {
        free(o->groups);
        free(o->strv);
        free(o->seccomp.filter);
        free(o->notify.filter);
        *o = (Order){};
}

/* Decodes an order received with its fds. The fds stay the caller's (closed after the
 * launch); o points into buf. Every length is checked against what was received. */
int launcher_order_decode(const void *buf, size_t len, const int *fds, size_t n_fds, Order *o) {
        const uint8_t *p = buf, *end = p + len;
        OrderHeader h;
        size_t need_fds, k = 0;
        char *s;

        *o = (Order){};
        if (len < sizeof(h))
                return -EBADMSG;
        memcpy(&h, p, sizeof(h));
        p += sizeof(h);
        if (h.magic != LAUNCHER_MAGIC || h.n_extra_fds > LAUNCH_EXTRA_FDS_MAX || h.n_groups > 65536 ||
            h.n_seccomp > ORDER_MAX_FILTER || h.n_notify > ORDER_MAX_FILTER || h.n_argv == 0 ||
            h.n_argv + (uint64_t) h.n_envp > ORDER_MAX_STRINGS)
                return -EBADMSG;
        if ((size_t) (end - p) != (uint64_t) h.n_groups * sizeof(uint32_t) +
                                          ((uint64_t) h.n_seccomp + h.n_notify) * sizeof(struct sock_filter) +
                                          h.strings_len)
                return -EBADMSG;
        if (!(h.flags & ORDER_GATE) != !(h.flags & ORDER_HOLD))
                return -EBADMSG; /* a held order brings its gate, and only a held one has one */
        need_fds = 4 + !!(h.flags & ORDER_CWD) + !!(h.flags & ORDER_CGROUP) + !!(h.flags & ORDER_CTTY) +
                   !!(h.flags & ORDER_GATE) + h.n_extra_fds;
        if (n_fds != need_fds)
                return -EBADMSG;

        o->cookie = h.cookie;
        o->hold = h.flags & ORDER_HOLD;
        o->groups = calloc(h.n_groups ?: 1, sizeof(gid_t));
        o->strv = calloc((size_t) h.n_argv + h.n_envp + 2, sizeof(char *));
        if (!o->groups || !o->strv)
                goto oom;
        for (uint32_t i = 0; i < h.n_groups; i++, p += sizeof(uint32_t)) {
                uint32_t g;
                memcpy(&g, p, sizeof(g));
                o->groups[i] = (gid_t) g;
        }
        if (h.n_seccomp) {
                o->seccomp.len = (unsigned short) h.n_seccomp;
                o->seccomp.filter = malloc(h.n_seccomp * sizeof(struct sock_filter));
                if (!o->seccomp.filter)
                        goto oom;
                memcpy(o->seccomp.filter, p, h.n_seccomp * sizeof(struct sock_filter));
                p += h.n_seccomp * sizeof(struct sock_filter);
        }
        if (h.n_notify) {
                o->notify.len = (unsigned short) h.n_notify;
                o->notify.filter = malloc(h.n_notify * sizeof(struct sock_filter));
                if (!o->notify.filter)
                        goto oom;
                memcpy(o->notify.filter, p, h.n_notify * sizeof(struct sock_filter));
                p += h.n_notify * sizeof(struct sock_filter);
        }
        /* the strings: exactly n_argv + n_envp NUL-terminated ones, filling the rest */
        s = (char *) p;
        for (uint32_t i = 0; i < h.n_argv + h.n_envp; i++) {
                char *z = memchr(s, 0, (size_t) ((const char *) end - s));
                if (!z)
                        goto bad;
                o->strv[i < h.n_argv ? i : i + 1] = s;
                s = z + 1;
        }
        if (s != (const char *) end)
                goto bad;

        o->spec = (LaunchSpec){
                .exec_fd = fds[k++],
                .keep_exec_fd = h.flags & ORDER_KEEP_EXEC_FD,
                .argv = o->strv,
                .envp = o->strv + h.n_argv + 1,
                .uid = (uid_t) h.uid,
                .gid = (gid_t) h.gid,
                .groups = o->groups,
                .n_groups = h.n_groups,
                .controlling_tty = h.flags & ORDER_CONTROLLING_TTY,
                .loginuid = h.flags & ORDER_LOGINUID ? (uid_t) h.loginuid : (uid_t) -1,
                .seccomp = h.n_seccomp ? &o->seccomp : NULL,
                .notify_filter = h.n_notify ? &o->notify : NULL,
                .sibling = true,
                .cwd_fd = -1,
                .cgroup_fd = -1,
                .ctty_fd = -1,
        };
        for (int i = 0; i < 3; i++)
                o->spec.stdio[i] = fds[k++];
        if (h.flags & ORDER_CWD)
                o->spec.cwd_fd = fds[k++];
        if (h.flags & ORDER_CGROUP)
                o->spec.cgroup_fd = fds[k++];
        if (h.flags & ORDER_CTTY)
                o->spec.ctty_fd = fds[k++];
        if (h.flags & ORDER_GATE) {
                o->spec.gated = true;
                o->spec.gate_fd = fds[k++];
        }
        for (uint32_t i = 0; i < h.n_extra_fds; i++)
                o->extra[i] = fds[k++];
        o->spec.extra_fds = o->extra;
        o->spec.n_extra_fds = h.n_extra_fds;
        if (h.flags & ORDER_NOFILE) {
                o->nofile.rlim_cur = h.nofile_cur == UINT64_MAX ? RLIM_INFINITY : (rlim_t) h.nofile_cur;
                o->nofile.rlim_max = h.nofile_max == UINT64_MAX ? RLIM_INFINITY : (rlim_t) h.nofile_max;
                o->spec.nofile = &o->nofile;
        }
        return 0;
bad:
        launcher_order_done(o);
        return -EBADMSG;
oom:
        launcher_order_done(o);
        return -ENOMEM;
}

int launcher_release_send(int sock, uint64_t cookie, bool go) {
        OrderHeader h = { .magic = LAUNCHER_MAGIC,
                          .cookie = cookie,
                          .flags = go ? ORDER_RELEASE_GO : ORDER_RELEASE_ABORT };

        return launcher_send(sock, &h, sizeof h, NULL, 0);
}

bool launcher_is_release(const void *buf, size_t n, uint64_t *cookie, bool *go) {
        OrderHeader h;

        if (n != sizeof h)
                return false;
        memcpy(&h, buf, sizeof h);
        if (h.magic != LAUNCHER_MAGIC || !(h.flags & (ORDER_RELEASE_GO | ORDER_RELEASE_ABORT)))
                return false;
        *cookie = h.cookie;
        *go = h.flags == ORDER_RELEASE_GO;
        return true;
}

ssize_t launcher_recv(int sock, void *buf, size_t size, int *fds, size_t max_fds, size_t *n_fds) {
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * ORDER_MAX_FDS)];
        } c = {};
        struct iovec iov = { .iov_base = buf, .iov_len = size };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &c, .msg_controllen = sizeof(c) };
        ssize_t n;

        *n_fds = 0;
        do
                n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
                        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        for (size_t i = 0; i < k; i++) {
                                int fd;
                                memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
                                if (*n_fds < max_fds)
                                        fds[(*n_fds)++] = fd;
                                else
                                        safe_close(fd);
                        }
                }
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
                return -EMSGSIZE;
        return n;
}

int launcher_send(int sock, const void *buf, size_t len, const int *fds, size_t n_fds) {
        union {
                struct cmsghdr h;
                char b[CMSG_SPACE(sizeof(int) * ORDER_MAX_FDS)];
        } c = {};
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        ssize_t n;

        if (n_fds > ORDER_MAX_FDS)
                return -E2BIG;
        if (n_fds > 0) {
                struct cmsghdr *cm;
                mh.msg_control = &c;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
        }
        do
                n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        return n == (ssize_t) len ? 0 : -EIO;
}
