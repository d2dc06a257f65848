/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/*
 * The one lookup of users and groups in the account database (NSS), for the agent, the
 * policy and the console. The client never calls it (it has no NSS: static build).
 *
 * Buffers start at 4 KiB and double while the database says they are too small
 * (ERANGE), up to USER_LOOKUP_MAX_BUFFER; a record larger than that is an error
 * (-E2BIG), never a silent cut. -ESRCH: no such user or group.
 */

#include <stdbool.h>
#include <sys/types.h>

#include "macro.h"

#define USER_LOOKUP_MAX_BUFFER (1024 * 1024)
#define USER_MAX_GROUPS 1024

typedef struct UserRecord {
        uid_t uid;
        gid_t gid;
        char *name, *home, *shell; /* shell: "/bin/sh" when the record has none */
} UserRecord;

/* By name, or by uid when name is NULL. ret is untouched on failure. */
int user_lookup(const char *name, uid_t uid, UserRecord *ret);
/* A user name, or a uid in decimal (what `elevatectl policy explain --user` takes). */
int user_lookup_name_or_uid(const char *s, UserRecord *ret);
void user_record_done(UserRecord *u);

int group_lookup(const char *name, gid_t *ret_gid);

/* The groups of user `name` whose primary group is gid (getgrouplist), at most max:
 * -E2BIG when there are more. *ret is malloc'd. */
int user_groups(const char *name, gid_t gid, size_t max, gid_t **ret, size_t *ret_n);
