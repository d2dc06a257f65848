/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "fleetd-types.h"

/* fleetd-offer.c, shared */
int fleetd_connect_agent(const char *path);
int fleetd_read_sealed(int fd, size_t max, char **ret, size_t *ret_len);
int fleetd_write_atomic(int dir_fd, const char *name, const char *data, size_t len);

/* fleetd-offer.c */
typedef enum OfferResult {
        OFFER_VERDICT, /* the agent answered with bundle_result */
        OFFER_RETRY,   /* unreachable, busy, or an agent that does not take bundles yet */
} OfferResult;
OfferResult fleetd_offer(Fleetd *f);
/* The next offer to the agent, in delay µs (the retry timer; loop thread). */
void fleetd_schedule_offer(Fleetd *f, uint64_t delay_usec);
