/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A resolver made of tables, so policy tests do not depend on the machine's users,
 * groups or file system. Shared by the policy test suites. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

typedef struct TestUser {
        const char *name;
        uid_t uid;
        const char *home;
        gid_t gids[4]; /* primary first */
        size_t n_gids;
} TestUser;

/* carol's home has glob metacharacters: ${HOME} must match it literally */
static const TestUser test_users[] = {
        { "root", 0, "/root", { 0 }, 1 },
        { "alice", 1000, "/home/alice", { 1000, 100, 101 }, 3 }, /* staff, users */
        { "bob", 1001, "/home/bob", { 1001, 101 }, 2 },          /* users */
        { "carol", 1002, "/home/c*[r]l", { 1002, 100 }, 2 },     /* staff */
        { "dave", 1003, "/home/dave/", { 1003, 200, 101 }, 3 },  /* helpdesk, users */
        { "postgres", 110, "/var/lib/postgresql", { 110 }, 1 },
};

static const struct {
        const char *name;
        gid_t gid;
} test_groups[] = {
        { "root", 0 },       { "wheel", 10 }, { "staff", 100 },  { "users", 101 },
        { "helpdesk", 200 }, { "dev", 300 },  { "admins", 400 },
};

/* "/bin" is a symlink to "/usr/bin", "/usr/bin/sh" to "dash", like on Debian */
static const struct {
        const char *from, *to;
} test_canon[] = {
        { "/bin", "/usr/bin" },
        { "/sbin", "/usr/sbin" },
        { "/opt/link", "/opt/real" },
        { "/usr/bin/sh", "/usr/bin/dash" },
};

static inline const TestUser *test_user(const char *name) {
        for (size_t i = 0; i < sizeof test_users / sizeof test_users[0]; i++)
                if (strcmp(test_users[i].name, name) == 0)
                        return &test_users[i];
        return NULL;
}

static inline int test_user_to_uid(const char *name, uid_t *ret, void *userdata) {
        const TestUser *u = test_user(name);

        (void) userdata;
        if (!u)
                return -ESRCH;
        *ret = u->uid;
        return 0;
}

static inline int test_group_to_gid(const char *name, gid_t *ret, void *userdata) {
        (void) userdata;
        for (size_t i = 0; i < sizeof test_groups / sizeof test_groups[0]; i++)
                if (strcmp(test_groups[i].name, name) == 0) {
                        *ret = test_groups[i].gid;
                        return 0;
                }
        return -ESRCH;
}

static inline int test_canonicalize(const char *path, char **ret, void *userdata) {
        char *cur = strdup(path);
        bool changed = false;

        (void) userdata;
        if (!cur)
                return -ENOMEM;
        for (int round = 0; round < 8; round++) {
                bool again = false;

                for (size_t i = 0; i < sizeof test_canon / sizeof test_canon[0]; i++) {
                        size_t l = strlen(test_canon[i].from);
                        char *n;

                        if (strncmp(cur, test_canon[i].from, l) != 0 || (cur[l] != 0 && cur[l] != '/'))
                                continue;
                        if (asprintf(&n, "%s%s", test_canon[i].to, cur + l) < 0) {
                                free(cur);
                                return -ENOMEM;
                        }
                        free(cur);
                        cur = n;
                        again = changed = true;
                }
                if (!again)
                        break;
        }
        if (!changed) {
                free(cur);
                return -ENOENT;
        }
        *ret = cur;
        return 0;
}

static const PolicyResolver test_resolver = {
        .user_to_uid = test_user_to_uid,
        .group_to_gid = test_group_to_gid,
        .canonicalize = test_canonicalize,
};
