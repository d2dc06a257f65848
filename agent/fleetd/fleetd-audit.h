/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "fleetd-types.h"

/* fleetd-audit.c */
int fleetd_audit_setup(Fleetd *f);
void fleetd_audit_done(Fleetd *f);
void fleetd_audit_connected(Fleetd *f);
void fleetd_audit_disconnected(Fleetd *f);
