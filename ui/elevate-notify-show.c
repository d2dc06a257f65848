/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Showing events with libnotify on the session bus, and surviving that bus.
 *
 * Invariants:
 *  - A dead or restarted session bus never ends the notifier. GDBus raises SIGTERM
 *    when the shared session connection closes unless told otherwise, so we take that
 *    connection ourselves before libnotify does and turn exit-on-close off; when it has
 *    closed we drop it and libnotify's proxy (notify_uninit) and start over.
 *  - Events that cannot be shown wait in a bounded queue (the oldest is dropped) and are
 *    retried with backoff; nothing here blocks the agent connection for longer than one
 *    D-Bus call.
 *  - Body markup is escaped exactly when the server says it parses it ("body-markup").
 */

#include <syslog.h>

/* ours first: GLib redefines MIN/MAX with an #undef, macro.h does not */
#include "elevate-notify-log.h"
#include "elevate-notify-show.h"

#include <glib.h>
#include <libnotify/notify.h>

#define QUEUE_MAX 32
#define RETRY_MIN_SEC 1u
#define RETRY_MAX_SEC 30u

struct NotifierDisplay {
        GDBusConnection *bus;
        bool caps_known, markup;
        NotifierEvent *queue[QUEUE_MAX];
        size_t n_queue;
        guint retry_id;
        unsigned backoff; /* seconds until the next retry */
        bool failing;     /* the failure was logged; log the recovery */
        NotifierShownFn on_shown;
        void *userdata;
};

int notifier_display_new(NotifierShownFn on_shown, void *userdata, NotifierDisplay **ret) {
        NotifierDisplay *d = calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        d->backoff = RETRY_MIN_SEC;
        d->on_shown = on_shown;
        d->userdata = userdata;
        *ret = d;
        return 0;
}

static void drop_bus(NotifierDisplay *d) {
        /* libnotify caches a proxy on the old connection; uninit drops it */
        if (notify_is_initted())
                notify_uninit();
        g_clear_object(&d->bus);
        d->caps_known = false;
}

NotifierDisplay *notifier_display_free(NotifierDisplay *d) {
        if (!d)
                return NULL;
        if (d->retry_id)
                g_source_remove(d->retry_id);
        for (size_t i = 0; i < d->n_queue; i++)
                notifier_event_free(d->queue[i]);
        drop_bus(d);
        free(d);
        return NULL;
}

static void query_caps(NotifierDisplay *d) {
        GList *caps = notify_get_server_caps();

        /* no answer (no server yet): assume plain text, ask again next time */
        d->caps_known = caps != NULL;
        d->markup = false;
        for (GList *l = caps; l; l = l->next)
                if (l->data && streq((const char *) l->data, "body-markup"))
                        d->markup = true;
        g_list_free_full(caps, g_free);
}

static int bus_ready(NotifierDisplay *d, char *why, size_t len) {
        g_autoptr(GError) err = NULL;

        if (d->bus && g_dbus_connection_is_closed(d->bus))
                drop_bus(d);
        if (!d->bus) {
                d->bus = g_bus_get_sync(G_BUS_TYPE_SESSION, NULL, &err);
                if (!d->bus) {
                        snprintf(why, len, "no session bus: %s", err ? err->message : "unknown error");
                        return -ENOTCONN;
                }
                /* the default raises SIGTERM when the bus goes away; we retry instead */
                g_dbus_connection_set_exit_on_close(d->bus, FALSE);
        }
        if (!notify_is_initted() && !notify_init("elevate")) {
                snprintf(why, len, "libnotify could not be initialised");
                return -EIO;
        }
        if (!d->caps_known)
                query_caps(d);
        return 0;
}

static int show_one(NotifierDisplay *d, const NotifierEvent *e, char *why, size_t len) {
        g_autoptr(GError) err = NULL;
        NotifierText t = {};
        NotifyNotification *n;
        gboolean ok;
        int r;

        r = bus_ready(d, why, len);
        if (r < 0)
                return r;
        r = notifier_format(e, d->markup, &t);
        if (r < 0) {
                snprintf(why, len, "out of memory");
                return r;
        }
        n = notify_notification_new(t.summary, t.body, t.icon);
        notify_notification_set_urgency(n, t.level == NOTIFIER_LEVEL_CRITICAL ? NOTIFY_URGENCY_CRITICAL
                                                                              : NOTIFY_URGENCY_NORMAL);
        notify_notification_set_timeout(n, NOTIFY_EXPIRES_DEFAULT);
        ok = notify_notification_show(n, &err);
        g_object_unref(n);
        notifier_text_done(&t);
        if (!ok) {
                snprintf(why, len, "%s", err ? err->message : "the notification server did not answer");
                /* start over with a fresh connection and proxy next time */
                drop_bus(d);
                return -EIO;
        }
        return 0;
}

static gboolean on_retry(gpointer userdata);

static void flush(NotifierDisplay *d) {
        char why[512];

        while (d->n_queue > 0) {
                if (show_one(d, d->queue[0], why, sizeof(why)) < 0) {
                        if (!d->failing)
                                notifier_log(LOG_WARNING, "Cannot show notifications (%s); retrying.", why);
                        else
                                notifier_log(LOG_DEBUG, "Still cannot show notifications: %s", why);
                        d->failing = true;
                        d->retry_id = g_timeout_add_seconds(d->backoff, on_retry, d);
                        d->backoff = MIN(d->backoff * 2, RETRY_MAX_SEC);
                        return;
                }
                if (d->failing)
                        notifier_log(LOG_INFO, "Notifications are shown again.");
                d->failing = false;
                d->backoff = RETRY_MIN_SEC;
                notifier_event_free(d->queue[0]);
                memmove(d->queue, d->queue + 1, (d->n_queue - 1) * sizeof(d->queue[0]));
                d->n_queue--;
                if (d->on_shown)
                        d->on_shown(d->userdata);
        }
}

static gboolean on_retry(gpointer userdata) {
        NotifierDisplay *d = userdata;

        d->retry_id = 0;
        flush(d);
        return G_SOURCE_REMOVE;
}

void notifier_display_post(NotifierDisplay *d, NotifierEvent *e) {
        if (d->n_queue == QUEUE_MAX) {
                notifier_log(LOG_WARNING, "Too many notifications wait for the display; dropping the oldest (%s).",
                             d->queue[0]->event);
                notifier_event_free(d->queue[0]);
                memmove(d->queue, d->queue + 1, (QUEUE_MAX - 1) * sizeof(d->queue[0]));
                d->n_queue--;
        }
        d->queue[d->n_queue++] = e;
        if (!d->retry_id) /* else the pending retry shows it, in order */
                flush(d);
}
