/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * elevate-notify's display (elevate-notify-show.c): the session bus and libnotify. It
 * owns the events posted to it and shows them in order, retrying while the session bus
 * or the notification server is away.
 */

#include "elevate-notify-format.h"

typedef struct NotifierDisplay NotifierDisplay;
typedef void (*NotifierShownFn)(void *userdata);

int notifier_display_new(NotifierShownFn on_shown, void *userdata, NotifierDisplay **ret);
NotifierDisplay *notifier_display_free(NotifierDisplay *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(NotifierDisplay *, notifier_display_free);
/* Takes the event. Shows it now, or queues it (bounded; the oldest is dropped) and
 * retries with backoff while the session bus or the notification server is away. */
void notifier_display_post(NotifierDisplay *d, NotifierEvent *e);
