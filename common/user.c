/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <grp.h>
#include <pwd.h>

#include "user.h"
#include "util.h"

/* Evaluates `call` (a get*_r function, which sees the buffer `buf` of `n` bytes and
 * returns 0 or an errno) with a buffer that doubles while it is too small. Returns 0 or
 * -errno; -E2BIG past USER_LOOKUP_MAX_BUFFER. */
#define LOOKUP_GROWING(call)                                                                                           \
        ({                                                                                                             \
                int _r = -ENOMEM;                                                                                      \
                for (size_t n = 4096; n <= USER_LOOKUP_MAX_BUFFER; n *= 2) {                                           \
                        free(buf);                                                                                     \
                        buf = malloc(n);                                                                               \
                        if (!buf) {                                                                                    \
                                _r = -ENOMEM;                                                                          \
                                break;                                                                                 \
                        }                                                                                              \
                        _r = (call);                                                                                   \
                        if (_r != ERANGE)                                                                              \
                                break;                                                                                 \
                }                                                                                                      \
                _r == ERANGE ? -E2BIG : _r > 0 ? -_r : _r;                                                             \
        })

int user_lookup(const char *name, uid_t uid, UserRecord *ret) {
        _cleanup_free_ char *buf = NULL;
        struct passwd pw, *res = NULL;
        UserRecord u;
        int r;

        r = LOOKUP_GROWING(name ? getpwnam_r(name, &pw, buf, n, &res) : getpwuid_r(uid, &pw, buf, n, &res));
        if (r < 0)
                return r;
        if (!res)
                return -ESRCH;
        u = (UserRecord){
                .uid = res->pw_uid,
                .gid = res->pw_gid,
                .name = strdup(res->pw_name),
                .home = strdup(res->pw_dir ?: ""),
                .shell = strdup(res->pw_shell && *res->pw_shell ? res->pw_shell : "/bin/sh"),
        };
        if (!u.name || !u.home || !u.shell) {
                user_record_done(&u);
                return -ENOMEM;
        }
        *ret = u;
        return 0;
}

int user_lookup_name_or_uid(const char *s, UserRecord *ret) {
        uid_t uid;

        if (parse_uid(s, &uid) >= 0)
                return user_lookup(NULL, uid, ret);
        return user_lookup(s, 0, ret);
}

void user_record_done(UserRecord *u) {
        free(u->name);
        free(u->home);
        free(u->shell);
        *u = (UserRecord){};
}

int group_lookup(const char *name, gid_t *ret_gid) {
        _cleanup_free_ char *buf = NULL;
        struct group gr, *res = NULL;
        int r;

        r = LOOKUP_GROWING(getgrnam_r(name, &gr, buf, n, &res));
        if (r < 0)
                return r;
        if (!res)
                return -ESRCH;
        *ret_gid = res->gr_gid;
        return 0;
}

int user_groups(const char *name, gid_t gid, size_t max, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *v = NULL;
        int n = (int) max;

        if (max == 0 || max > USER_MAX_GROUPS * 64)
                return -EINVAL;
        v = calloc(max, sizeof(gid_t));
        if (!v)
                return -ENOMEM;
        if (getgrouplist(name, gid, v, &n) < 0)
                return -E2BIG;
        *ret = TAKE_PTR(v);
        *ret_n = (size_t) n;
        return 0;
}
