/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "fleetd-types.h"

/* fleetd-store.c */
int fleetd_store_open(Fleetd *f);
int fleetd_store_load(Fleetd *f);
/* Replaces the held value of key (data NULL: forget it); false if nothing changed. */
int fleetd_store_set(Fleetd *f, const char *key, const char *data, size_t len, uint64_t revision, bool *ret_changed);

/* Keeps a value read from the broker (data NULL: there is none) and, when it changed,
 * schedules an offer to the agent (loop thread). */
int fleetd_take_value(Fleetd *f, const char *key, const char *data, size_t len, uint64_t revision);
