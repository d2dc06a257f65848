/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "fleetd-types.h"

/* fleetd-helpdesk.c */
int fleetd_hd_setup(Fleetd *f);
void fleetd_hd_done(Fleetd *f);
/* The broker is (back): publish what is not, look for decisions made meanwhile. */
void fleetd_hd_connected(Fleetd *f);
/* A decision was published for request id (the subscription): read what the stream holds. */
void fleetd_hd_decision(Fleetd *f, const char *id);
