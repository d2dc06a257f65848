/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Listening socket and connections.
 *
 * Invariants:
 *  - The socket is SOCK_SEQPACKET; each connection is identified from the kernel at
 *    accept time (agent-peer.c) before any message is read.
 *  - Connections are capped globally and per uid; the first message must arrive within
 *    AGENT_READ_DEADLINE_USEC; EMFILE pauses accepting instead of spinning.
 *  - The loop never blocks on a client: sockets are non-blocking, a client that does
 *    not read its replies is dropped.
 *  - A connection carries one request (exec, list or an operator command); during a
 *    running exec it may also send signals.
 */

#include <assert.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "agent-log.h"
#include "agent-module.h"
#include "agent-server.h"
#include "config.h"
#include "util.h"

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Every ancestor of the socket must be searchable by everyone, or nobody but root can
 * connect and every request fails with "Permission denied" (docs/design-notes.md). */
static int socket_dir_reachable(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);
        struct stat st;

        if (!p)
                return -ENOMEM;
        for (;;) {
                const char *q = *p ? p : "/";
                char *e;

                if (stat(q, &st) < 0)
                        return log_error_errno(negative_errno(), "Cannot inspect %s", q);
                if (!(st.st_mode & S_IXOTH))
                        return log_error_errno(-EACCES,
                                               "Users cannot reach the socket in %s: %s has mode %04o (others may not "
                                               "enter it). Choose a --socket under a directory everyone can enter, or "
                                               "run chmod o+x %s.",
                                               dir, q, (unsigned) (st.st_mode & 07777), q);
                e = strrchr(p, '/');
                if (!e || !*p)
                        return 0;
                *e = 0;
        }
}

/* The socket's directory. The agent runs with umask 077, so a directory it creates is
 * made 0755 explicitly. The default one (/run/elevate) is the agent's own: a wrong mode
 * is repaired. Any directory that is not root's, or that others may write without the
 * sticky bit, is refused: whoever can write there can replace the socket. */
static int socket_dir_prepare(const char *dir, bool own) {
        _cleanup_close_ int fd = -EBADF;
        bool made = false;
        struct stat st;

        if (mkdir(dir, 0755) == 0)
                made = true;
        else if (errno != EEXIST)
                return log_error_errno(negative_errno(), "Cannot create the socket directory %s", dir);
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(negative_errno(),
                                       "Cannot open the socket directory %s (a symbolic link or not a directory?)",
                                       dir);
        if (fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "Cannot inspect %s", dir);
        if (st.st_uid != 0)
                return log_error_errno(-EPERM,
                                       "The socket directory %s belongs to uid %u, not root: that user could replace "
                                       "the socket. Remove it (the agent makes it) or choose another --socket.",
                                       dir, (unsigned) st.st_uid);
        if ((st.st_mode & 0022) && !(st.st_mode & S_ISVTX))
                return log_error_errno(-EPERM,
                                       "The socket directory %s has mode %04o: others could replace the socket. "
                                       "Run chmod go-w %s or choose another --socket.",
                                       dir, (unsigned) (st.st_mode & 07777), dir);
        if ((made || own) && (st.st_mode & 07777) != 0755) {
                if (fchmod(fd, 0755) < 0)
                        return log_error_errno(negative_errno(), "Cannot make %s mode 0755", dir);
                if (!made)
                        log_notice("The socket directory %s had mode %04o; made it 0755 so that users can reach the "
                                   "socket",
                                   dir, (unsigned) (st.st_mode & 07777));
        }
        return socket_dir_reachable(dir);
}

static int socket_path_prepare(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int probe = -EBADF;
        _cleanup_free_ char *dir = NULL;
        struct stat st;
        char *slash;

        if (strlen(path) >= sizeof(sa.sun_path))
                return log_error_errno(-ENAMETOOLONG, "Socket path %s is too long", path);
        dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                int r;

                *slash = 0;
                r = socket_dir_prepare(dir, streq(path, ELEVATE_SOCKET_PATH));
                if (r < 0)
                        return r;
        }
        if (lstat(path, &st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return log_error_errno(negative_errno(), "Cannot inspect %s", path);
        }
        if (!S_ISSOCK(st.st_mode))
                return log_error_errno(-EEXIST, "%s exists and is not a socket; not removing it", path);

        /* A socket file: stale only if nobody answers on it. */
        memcpy(sa.sun_path, path, strlen(path) + 1);
        probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (probe < 0)
                return negative_errno();
        if (connect(probe, (struct sockaddr *) &sa, sizeof(sa)) == 0)
                return log_error_errno(-EADDRINUSE, "Another agent is listening on %s", path);
        if (errno != ECONNREFUSED && errno != ENOENT)
                return log_error_errno(negative_errno(), "Cannot probe %s", path);
        if (unlink(path) < 0 && errno != ENOENT)
                return log_error_errno(negative_errno(), "Cannot remove stale socket %s", path);
        log_info("Removed stale socket %s", path);
        return 0;
}

static int listen_on_path(Agent *a) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        mode_t old;
        int r;

        r = socket_path_prepare(a->socket_path);
        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return log_error_errno(negative_errno(), "socket()");
        memcpy(sa.sun_path, a->socket_path, strlen(a->socket_path) + 1);
        /* anyone may ask (docs/design.md §3): authorization is per request */
        old = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return log_error_errno(negative_errno(), "Cannot bind %s", a->socket_path);
        a->own_socket = true;
        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(negative_errno(), "listen()");
        a->listen_fd[a->n_listen++] = TAKE_FD(fd);
        return 0;
}

int agent_listen(Agent *a) {
        int n, r;

        n = a->socket_path ? 0 : sd_listen_fds(true);
        if (n < 0)
                return log_error_errno(n, "sd_listen_fds()");
        if (n > AGENT_MAX_LISTEN)
                return log_error_errno(-E2BIG, "Too many sockets passed (%d)", n);
        for (int i = 0; i < n; i++) {
                int fd = SD_LISTEN_FDS_START + i;
                if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0)
                        return log_error_errno(-EINVAL, "Passed fd %d is not a listening SOCK_SEQPACKET socket", fd);
                (void) fd_set_nonblock(fd, true);
                (void) fd_set_cloexec(fd, true);
                a->listen_fd[a->n_listen++] = fd;
        }
        if (n == 0) {
                if (!a->socket_path)
                        a->socket_path = ELEVATE_SOCKET_PATH;
                r = listen_on_path(a);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < a->n_listen; i++) {
                r = sd_event_add_io(a->event, &a->listen_source[i], a->listen_fd[i], EPOLLIN, on_accept, a);
                if (r < 0)
                        return log_error_errno(r, "Cannot watch the socket");
        }
        return 0;
}

void agent_listen_close(Agent *a) {
        for (size_t i = 0; i < a->n_listen; i++) {
                a->listen_source[i] = sd_event_source_disable_unref(a->listen_source[i]);
                a->listen_fd[i] = safe_close(a->listen_fd[i]);
        }
        if (a->own_socket && a->socket_path) {
                (void) unlink(a->socket_path);
                a->own_socket = false;
        }
        a->n_listen = 0;
}

static void accept_pause(Agent *a, bool pause);

static int on_accept_resume(sd_event_source *s, uint64_t usec, void *userdata) {
        accept_pause(userdata, false);
        return 0;
}

static void accept_pause(Agent *a, bool pause) {
        if (a->accept_paused == pause)
                return;
        a->accept_paused = pause;
        for (size_t i = 0; i < a->n_listen; i++)
                (void) sd_event_source_set_enabled(a->listen_source[i], pause ? SD_EVENT_OFF : SD_EVENT_ON);
        a->accept_resume = sd_event_source_disable_unref(a->accept_resume);
        if (pause) {
                log_warning("Out of file descriptors: not accepting for a second or until a connection closes");
                /* fds may be held by something other than connections: retry anyway */
                (void) sd_event_add_time_relative(a->event, &a->accept_resume, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                                  on_accept_resume, a);
        }
}

size_t agent_conns_for_uid(Agent *a, uid_t uid) {
        size_t n = 0;

        Conn *c;

        LIST_FOREACH(conns, c, a->conns)
                if (c->peer_ok && c->peer.uid == uid)
                        n++;
        return n;
}

void conn_free(Conn *c) {
        Agent *a;

        if (!c)
                return;
        a = c->agent;
        /* whatever hangs on the connection lets go of it first */
        if (c->on_free)
                c->on_free(c);
        sd_event_source_disable_unref(c->io);
        sd_event_source_disable_unref(c->deadline);
        sd_event_source_disable_unref(c->close_defer);
        safe_close(c->fd);
        peer_done(&c->peer);
        LIST_REMOVE(conns, a->conns, c);
        a->n_conns--;
        free(c);
        accept_pause(a, false);
}

/* Closes from inside a callback that may still use c: defer the free to the loop. */
static int on_conn_close_defer(sd_event_source *s, void *userdata) {
        conn_free(userdata);
        return 0;
}

void conn_close(Conn *c) {
        if (c->state == CONN_CLOSING)
                return;
        c->state = CONN_CLOSING;
        (void) sd_event_source_set_enabled(c->io, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(c->deadline, SD_EVENT_OFF);
        if (sd_event_add_defer(c->agent->event, &c->close_defer, on_conn_close_defer, c) < 0)
                conn_free(c); /* OOM: free now, callers hold no pointer after conn_close() */
}

int conn_send(Conn *c, json_t *msg, const int *fds, size_t n_fds) {
        int r;

        if (c->state == CONN_CLOSING)
                return -ECONNRESET;
        r = proto_send(c->fd, msg, fds, n_fds);
        if (r < 0) {
                log_debug("Dropping connection of uid %u: cannot send (%s)", (unsigned) c->peer.uid, strerror(-r));
                conn_close(c);
        }
        return r;
}

int conn_send_error(Conn *c, RefusalCode code, const char *fmt, ...) {
        char buf[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (c->state == CONN_CLOSING)
                return -ECONNRESET;
        return proto_send_error(c->fd, refusal_to_proto(code), buf);
}

int agent_modules_init(Agent *a, const AgentModule *const *modules, size_t n) {
        a->modules = modules;
        a->n_modules = n;
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < modules[i]->n_ops; j++) {
                        const AgentOp *op = &modules[i]->ops[j];

                        assert(op->type >= 0 && op->type < _PROTO_TYPE_MAX && op->handle);
                        if (a->ops[op->type])
                                return log_error_errno(-EEXIST, "Two modules answer message \"%s\"",
                                                       proto_type_to_string(op->type) ?: "?");
                        a->ops[op->type] = op;
                }
        return 0;
}

/* Whether op is accepted on c now: one request per connection (docs/protocol.md), and
 * during a running exec or a wait for approval only what belongs to it. */
static bool op_accepted(const Conn *c, const AgentOp *op) {
        bool first = c->state == CONN_IDLE && c->n_messages == 1;

        return ((op->when & AGENT_OP_FIRST) && first) || ((op->when & AGENT_OP_RUNNING) && c->state == CONN_RUNNING) ||
               ((op->when & AGENT_OP_WAITING) && c->state == CONN_WAITING) ||
               ((op->when & AGENT_OP_AUTHENTICATING) && c->state == CONN_AUTHENTICATING);
}

/* Hands the message to the operation registered for its type. Everything not accepted
 * is answered with bad-request and ends the connection. */
static int conn_dispatch(Conn *c, ProtoMsg *m) {
        const AgentOp *op = m->type >= 0 && m->type < _PROTO_TYPE_MAX ? c->agent->ops[m->type] : NULL;
        int r;

        /* Identity is re-checked before anything is done for a message: a process that
         * connected as root and then dropped its ids (or exited) gets nothing. An exec is
         * checked once it has been read (so the refusal is audited with what was asked)
         * and again right before launching. */
        /* Its context (user, sessions, cgroup, ancestry) is read at the first message; an
         * exec reads it while its inspection runs (agent-inspect.c). */
        if (!(op && op->verifies_peer) &&
            (peer_read_context(&c->peer, c->agent->cgroups) < 0 || peer_verify(&c->peer) < 0)) {
                log_notice("uid %u (pid %d) changed identity or exited since it connected; refusing",
                           (unsigned) c->peer.uid, (int) c->peer.pid);
                (void) conn_send_error(c, REFUSAL_NOT_PERMITTED,
                                       "your process changed identity or exited since it connected; nothing was done");
                conn_close(c);
                return 0;
        }
        if (op && op_accepted(c, op)) {
                r = op->handle(c, m);
                if (r != -ENOMSG)
                        return r;
        }
        (void) conn_send_error(c, REFUSAL_BAD_REQUEST, "message \"%s\" is not expected here",
                               proto_type_to_string(m->type) ?: "?");
        conn_close(c);
        return 0;
}

static int on_conn_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Conn *c = userdata;
        ProtoMsg m = {};
        ProtoError err = {};
        int r;

        if (c->state == CONN_CLOSING)
                return 0;
        /* a writer that waited (an audit reader) has room for its next page */
        if (revents & EPOLLOUT) {
                if (c->on_writable)
                        c->on_writable(c);
                if (c->state == CONN_CLOSING || !(revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                        return 0;
        }
        r = proto_recv(fd, &m, &err);
        if (r == -EAGAIN)
                return 0;
        if (r < 0) {
                if (r == -ECONNRESET || r == -EPIPE) {
                        conn_close(c);
                        return 0;
                }
                if (r == -EMSGSIZE || r == -E2BIG)
                        (void) conn_send_error(c, REFUSAL_TOO_LARGE, "%s",
                                               err.message[0] ? err.message : "message too large or too many fds");
                else if (r == -EPROTONOSUPPORT)
                        (void) conn_send_error(c, REFUSAL_UNSUPPORTED_VERSION, "%s",
                                               err.message[0] ? err.message : "unsupported protocol version");
                else if (r == -EBADMSG || r == -EINVAL || r == -EPROTO)
                        (void) conn_send_error(c, REFUSAL_BAD_REQUEST, "%s",
                                               err.message[0] ? err.message : "malformed message");
                log_info("Rejected a message from uid %u (pid %d): %s", (unsigned) c->peer.uid, (int) c->peer.pid,
                         err.message[0] ? err.message : strerror(-r));
                conn_close(c);
                return 0;
        }
        c->n_messages++;
        /* the first message arrived: the read deadline no longer applies */
        c->deadline = sd_event_source_disable_unref(c->deadline);
        r = conn_dispatch(c, &m);
        proto_msg_done(&m);
        if (r < 0) {
                log_error_errno(r, "Handling a message from uid %u failed", (unsigned) c->peer.uid);
                (void) conn_send_error(c, REFUSAL_INTERNAL, "internal error: %s", strerror(-r));
                conn_close(c);
        }
        return 0;
}

static int on_conn_deadline(sd_event_source *s, uint64_t usec, void *userdata) {
        Conn *c = userdata;

        log_info("Dropping connection of uid %u: no request within %llus", (unsigned) c->peer.uid,
                 (unsigned long long) (AGENT_READ_DEADLINE_USEC / USEC_PER_SEC));
        (void) conn_send_error(c, REFUSAL_TIMEOUT, "no request received in time");
        conn_close(c);
        return 0;
}

static int conn_new(Agent *a, int fd) {
        _cleanup_free_ char *why = NULL;
        Conn *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->agent = a;
        c->fd = fd;
        c->peer = (Peer){ .pidfd = -EBADF, .proc_fd = -EBADF };
        LIST_PREPEND(conns, a->conns, c);
        a->n_conns++;

        r = peer_identify(fd, &c->peer, &why);
        if (r == -ESRCH && c->peer.pid > 0) {
                /* The caller exited before it could be identified (perhaps after handing the
                 * socket to another process). Its connect-time credentials are the kernel's:
                 * keep the connection only so that what comes over it is refused and
                 * audited under them. Without its pidfd and /proc entry it can never pass
                 * peer_verify(), which every message meets before anything is done. */
                log_notice("Connection from uid %u (pid %d): %s; what it sends will be refused", (unsigned) c->peer.uid,
                           (int) c->peer.pid, why ?: "the process is gone");
                c->peer.pidfd = safe_close(c->peer.pidfd);
                c->peer.proc_fd = safe_close(c->peer.proc_fd);
                r = 0;
        }
        if (r < 0) {
                log_notice("Refusing a connection: cannot identify the peer: %s", why ?: strerror(-r));
                (void) proto_send_error(fd, refusal_to_proto(REFUSAL_NOT_PERMITTED),
                                        "the agent could not identify you; nothing was done");
                conn_free(c);
                return 0;
        }
        c->peer_ok = true;
        if (a->n_conns > AGENT_MAX_CONNECTIONS || agent_conns_for_uid(a, c->peer.uid) > AGENT_MAX_CONNECTIONS_PER_UID) {
                log_notice("Refusing a connection from uid %u: too many connections", (unsigned) c->peer.uid);
                (void) proto_send_error(fd, refusal_to_proto(REFUSAL_BUSY),
                                        "too many connections from you; try again shortly");
                conn_free(c);
                return 0;
        }
        r = sd_event_add_io(a->event, &c->io, fd, EPOLLIN, on_conn_io, c);
        if (r >= 0)
                r = sd_event_add_time_relative(a->event, &c->deadline, CLOCK_MONOTONIC, AGENT_READ_DEADLINE_USEC, 0,
                                               on_conn_deadline, c);
        if (r < 0) {
                conn_free(c);
                return r;
        }
        return 0;
}

static int on_accept(sd_event_source *s, int lfd, uint32_t revents, void *userdata) {
        Agent *a = userdata;

        /* a bounded batch per wakeup keeps one flood from starving the rest of the loop */
        for (int i = 0; i < 32; i++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd < 0) {
                        if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                                return 0;
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                                accept_pause(a, true);
                                return 0;
                        }
                        log_warning_errno(negative_errno(), "accept()");
                        return 0;
                }
                if (conn_new(a, fd) < 0)
                        log_warning("Could not set up a connection (out of memory)");
        }
        return 0;
}
