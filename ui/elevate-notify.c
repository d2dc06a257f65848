/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * elevate-notify: shows the user's own elevation events (approved, denied, grant
 * expiring, program stopped, …) as desktop notifications. Started per graphical
 * session by a systemd user unit or an XDG autostart entry.
 *
 * Invariants:
 *  - Which events arrive is decided by the agent from the connection's kernel identity
 *    (only our uid's); nothing here is trusted as identity, and every field is escaped
 *    before it is shown (elevate-notify-format.c).
 *  - The agent is never waited on: the socket is non-blocking and watched by the main
 *    loop. When the agent is absent, goes away or refuses, we reconnect after 1 s,
 *    doubling up to 30 s, and subscribe again; a successful subscription resets that.
 *  - A message that does not decode (say, an event a newer agent knows) is logged and
 *    skipped: SOCK_SEQPACKET keeps the next message whole.
 *
 * The loop is GLib's, not sd-event: libnotify and GDBus deliver their replies and
 * signals through the GLib main context, which must be iterated anyway.
 */

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>

#include "config.h"
#include "elevate-notify-format.h"
#include "elevate-notify-log.h"
#include "elevate-notify-show.h"
#include "util.h"

/* after ours: GLib redefines MIN/MAX with an #undef, macro.h does not */
#include <glib-unix.h>
#include <glib.h>

#define BACKOFF_MIN_SEC 1u
#define BACKOFF_MAX_SEC 30u
#define MESSAGES_PER_WAKEUP 16

static const char *arg_socket;
static bool arg_print, arg_once, arg_unique, arg_verbose;

typedef struct Context {
        GMainLoop *loop;
        NotifierDisplay *display;
        int fd;
        guint watch_id, reconnect_id;
        unsigned backoff;
        bool subscribed;
        char last_error[256]; /* a streak of the same failure is logged once */
} Context;

static void schedule_reconnect(Context *c);

/* Logs a failure unless it repeats the previous one (a stopped agent is retried forever). */
static void fail(Context *c, const char *what) {
        int prio = streq(c->last_error, what) ? LOG_DEBUG : LOG_WARNING;

        notifier_log(prio, "%s; trying again in %u s.", what, c->backoff);
        snprintf(c->last_error, sizeof(c->last_error), "%s", what);
}

static void disconnect(Context *c) {
        if (c->watch_id)
                g_source_remove(c->watch_id);
        c->watch_id = 0;
        c->fd = safe_close(c->fd);
        c->subscribed = false;
}

/* --print: one line of JSON per event, with the text as a plain-text server shows it and
 * the ids a developer needs to follow up (elevatectl approve/revoke). */
static void print_event(const NotifierEvent *e) {
        const struct {
                const char *key, *value;
        } ids[] = { { "ticket", e->ticket }, { "request", e->request }, { "grant", e->grant } };
        NotifierText t = {};
        json_t *o;
        char *s;

        if (notifier_format(e, false, &t) < 0)
                return;
        o = json_pack("{s:s,s:s,s:s,s:s}", "event", e->event, "urgency",
                      t.level == NOTIFIER_LEVEL_CRITICAL ? "critical" : "normal", "summary", t.summary, "body", t.body);
        notifier_text_done(&t);
        if (!o)
                return;
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                if (ids[i].value) {
                        _cleanup_free_ char *v = notifier_escape(ids[i].value, NOTIFIER_MAX_NAME, false);
                        if (v)
                                json_object_set_new(o, ids[i].key, json_string(v));
                }
        /* one line whatever the text holds: JSON escapes newlines and non-ASCII */
        s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (s) {
                printf("%s\n", s);
                fflush(stdout);
        }
        free(s);
}

static void on_event(Context *c, const ProtoMsg *m) {
        NotifierEvent *e = NULL;

        if (notifier_event_from_msg(m, now_usec(CLOCK_REALTIME), &e) < 0) {
                notifier_log(LOG_ERR, "Out of memory; an event was not shown.");
                return;
        }
        notifier_log(LOG_DEBUG, "Event %s received.", e->event);
        if (arg_print)
                print_event(e);
        notifier_display_post(c->display, e); /* takes e */
}

/* Handles one message; false when the connection is over. */
static bool on_message(Context *c, const ProtoMsg *m) {
        switch (m->type) {
        case PROTO_OK:
                if (!c->subscribed) {
                        notifier_log(LOG_INFO, "Subscribed to elevation events at %s.", arg_socket);
                        c->subscribed = true;
                        c->backoff = BACKOFF_MIN_SEC;
                        c->last_error[0] = 0;
                }
                return true;
        case PROTO_EVENT:
                on_event(c, m);
                return true;
        case PROTO_ERROR: {
                const char *why = m->message ?: m->code ?: "";
                _cleanup_free_ char *msg = escape_display(why, strlen(why), 200);
                char what[256];

                snprintf(what, sizeof(what), "The agent refused to send events: %s", msg ?: "?");
                fail(c, what);
                return false;
        }
        default:
                notifier_log(LOG_DEBUG, "Ignoring a \"%s\" message from the agent.", proto_type_to_string(m->type));
                return true;
        }
}

static gboolean on_agent(int fd, GIOCondition cond, gpointer userdata) {
        Context *c = userdata;
        char what[256];

        for (int i = 0; i < MESSAGES_PER_WAKEUP; i++) {
                ProtoError err = {};
                ProtoMsg m = {};
                bool keep;
                int r;

                r = proto_recv(fd, &m, &err);
                if (r == -EAGAIN)
                        return G_SOURCE_CONTINUE;
                if (r == -EBADMSG || r == -EMSGSIZE || r == -EPROTONOSUPPORT) {
                        notifier_log(LOG_WARNING, "Skipping a message from the agent: %s", err.message);
                        continue;
                }
                if (r < 0) {
                        snprintf(what, sizeof(what), "Lost the agent at %s: %s", arg_socket,
                                 r == -ECONNRESET ? "it closed the connection" : strerror(-r));
                        fail(c, what);
                        goto reconnect;
                }
                keep = on_message(c, &m);
                proto_msg_done(&m);
                if (!keep)
                        goto reconnect;
        }
        return G_SOURCE_CONTINUE; /* more may wait: the watch fires again, after other sources had a turn */

reconnect:
        c->watch_id = 0; /* returning G_SOURCE_REMOVE removes it */
        disconnect(c);
        schedule_reconnect(c);
        return G_SOURCE_REMOVE;
}

static int connect_agent(Context *c) {
        _cleanup_close_ int fd = -EBADF;
        ProtoError err = {};
        json_t *req;
        int r;

        fd = proto_connect(arg_socket, SOCK_NONBLOCK, &err);
        if (fd < 0)
                r = fd;
        else {
                req = proto_new(PROTO_SUBSCRIBE);
                r = req ? proto_send(fd, req, NULL, 0) : -ENOMEM;
                json_decref(req);
                if (r < 0)
                        snprintf(err.message, sizeof(err.message), "cannot subscribe at %.180s: %s", arg_socket,
                                 strerror(-r));
        }
        if (r < 0) {
                fail(c, err.message);
                return r;
        }
        c->fd = TAKE_FD(fd);
        c->watch_id = g_unix_fd_add(c->fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_agent, c);
        return 0;
}

static gboolean on_reconnect(gpointer userdata) {
        Context *c = userdata;

        c->reconnect_id = 0;
        if (connect_agent(c) < 0)
                schedule_reconnect(c);
        return G_SOURCE_REMOVE;
}

static void schedule_reconnect(Context *c) {
        unsigned delay = c->backoff * 1000u;
        uint16_t jitter = 0;

        /* up to 10% later, so a restarted agent is not hit by every notifier at once */
        (void) random_bytes(&jitter, sizeof(jitter));
        delay = MIN(delay + jitter % (c->backoff * 100u + 1), BACKOFF_MAX_SEC * 1000u);
        if (c->reconnect_id)
                g_source_remove(c->reconnect_id);
        c->reconnect_id = g_timeout_add(delay, on_reconnect, c);
        c->backoff = MIN(c->backoff * 2, BACKOFF_MAX_SEC);
}

static void display_shown(void *userdata) {
        Context *c = userdata;

        if (arg_once)
                g_main_loop_quit(c->loop);
}

static gboolean on_signal(gpointer userdata) {
        g_main_loop_quit(((Context *) userdata)->loop);
        return G_SOURCE_CONTINUE;
}

/* --unique: one notifier per user, whichever of the user unit and the autostart entry
 * starts first. The lock lives as long as the process (the fd is never closed). */
static int take_lock(bool *ret_other) {
        const char *rt = getenv("XDG_RUNTIME_DIR");
        _cleanup_free_ char *path = NULL;
        int fd;

        *ret_other = false;
        if (!rt || rt[0] != '/')
                return 0; /* nowhere private to put it: no lock */
        path = strdup_printf("%s/elevate-notify.lock", rt);
        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = negative_errno();
                safe_close(fd);
                if (r != -EWOULDBLOCK)
                        return r;
                *ret_other = true;
        }
        return 0;
}

static int run(void) {
        Context c = { .fd = -EBADF, .backoff = BACKOFF_MIN_SEC };
        _cleanup_(notifier_display_freep) NotifierDisplay *display = NULL;
        int r;

        r = notifier_display_new(display_shown, &c, &display);
        if (r < 0)
                return r;
        c.display = display;
        c.loop = g_main_loop_new(NULL, FALSE);
        g_unix_signal_add(SIGTERM, on_signal, &c);
        g_unix_signal_add(SIGINT, on_signal, &c);
        g_unix_signal_add(SIGHUP, on_signal, &c);
        if (connect_agent(&c) < 0)
                schedule_reconnect(&c);
        g_main_loop_run(c.loop);

        disconnect(&c);
        if (c.reconnect_id)
                g_source_remove(c.reconnect_id);
        g_main_loop_unref(c.loop);
        return 0;
}

static void help(void) {
        printf("Usage: elevate-notify [OPTIONS]\n"
               "\n"
               "Shows your elevation events as desktop notifications: requests waiting for approval,\n"
               "approvals and denials (with who decided and their comment), grants about to end or\n"
               "ended, and elevated programs that were stopped. Only your own events are shown.\n"
               "\n"
               "Options:\n"
               "      --socket PATH  the agent's socket (default $ELEVATE_SOCKET or %s)\n"
               "      --print        also print each event as a line of JSON on stdout\n"
               "      --once         exit after the first event has been shown\n"
               "      --unique       exit at once if another --unique notifier runs for this user\n"
               "                     (the user unit and the autostart entry both use it)\n"
               "  -v, --verbose      log every retry and every event\n"
               "  -h, --help         show this help\n"
               "      --version      show the version\n"
               "\n"
               "It reconnects by itself when the agent restarts (after 1 s, up to every 30 s) and keeps\n"
               "events it could not show while the session bus or notification server is away.\n",
               ELEVATE_SOCKET_PATH);
}

int main(int argc, char *argv[]) {
        enum { ARG_SOCKET = 0x100, ARG_PRINT, ARG_ONCE, ARG_UNIQUE, ARG_VERSION };
        static const struct option options[] = {
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "print", no_argument, NULL, ARG_PRINT },
                { "once", no_argument, NULL, ARG_ONCE },
                { "unique", no_argument, NULL, ARG_UNIQUE },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        struct sockaddr_un sa;
        bool other = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "hv", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOCKET:
                        arg_socket = optarg;
                        break;
                case ARG_PRINT:
                        arg_print = true;
                        break;
                case ARG_ONCE:
                        arg_once = true;
                        break;
                case ARG_UNIQUE:
                        arg_unique = true;
                        break;
                case 'v':
                        arg_verbose = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("elevate-notify %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        fprintf(stderr, "Try 'elevate-notify --help'.\n");
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "elevate-notify: unexpected argument \"%s\". Try 'elevate-notify --help'.\n",
                        argv[optind]);
                return 2;
        }
        if (!arg_socket) {
                const char *e = getenv("ELEVATE_SOCKET");
                arg_socket = e && *e ? e : ELEVATE_SOCKET_PATH;
        }
        if (strlen(arg_socket) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "elevate-notify: socket path %s is too long.\n", arg_socket);
                return 2;
        }
        notifier_log_setup(arg_verbose);
        /* a reader of --print that goes away must not kill us */
        signal(SIGPIPE, SIG_IGN);

        if (arg_unique) {
                r = take_lock(&other);
                if (r < 0)
                        notifier_log(LOG_WARNING, "Cannot take the single-instance lock (%s); going on.", strerror(-r));
                if (other) {
                        notifier_log(LOG_INFO, "Another elevate-notify already runs for this user; exiting.");
                        return 0;
                }
        }
        r = run();
        if (r < 0) {
                notifier_log(LOG_ERR, "Failed: %s", strerror(-r));
                return 1;
        }
        return 0;
}
