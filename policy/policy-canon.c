/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Resolving what the policy names when it loads: rule paths to canonical real paths,
 * user and group names to ids.
 *
 * Invariants:
 *  - Only the policy's own (root-written) paths are resolved here, never a path a
 *    requester supplied.
 *  - A path that does not exist keeps its written form (with its directory canonical
 *    when that exists), so a rule for a tool installed later still applies.
 *  - A name that does not resolve is not an error: the key is UNKNOWN at match time,
 *    which only deny rules accept.
 *  - The default resolver does one realpath() per distinct directory, and lists a
 *    directory once when many rule paths are in it, so 10,000 rule paths in a few
 *    directories cost a few system calls, not a walk each.
 */

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <sys/stat.h>

#include "policy-internal.h"
#include "user.h"

typedef struct NameCacheValue {
        bool known;
        uint32_t id;
} NameCacheValue;

static int cache_put(HashTable *t, const char *key, void *value) {
        _cleanup_free_ char *k = strdup(key);
        HashEntry *e;
        int r;

        if (!k) {
                free(value);
                return -ENOMEM;
        }
        r = policy_ht_put(t, k, strlen(k), &e);
        if (r < 0) {
                free(value);
                return r;
        }
        if (r == 0) {
                free(e->value);
                e->value = value;
                return 0;
        }
        TAKE_PTR(k);
        e->value = value;
        return 0;
}

/* Normalised absolute paths only: no empty, "." or ".." components, no trailing '/'. */
bool policy_path_is_normal(const char *p) {
        if (p[0] != '/')
                return false;
        if (p[1] == 0)
                return true;
        for (const char *c = p + 1;;) {
                const char *slash = strchr(c, '/');
                size_t l = slash ? (size_t) (slash - c) : strlen(c);

                if (l == 0 || (l == 1 && c[0] == '.') || (l == 2 && c[0] == '.' && c[1] == '.'))
                        return false;
                if (!slash)
                        return true;
                c = slash + 1;
        }
}

/* After this many lookups in one directory, it is listed once instead of one lstat()
 * per path; a directory larger than LIST_MAX_ENTRIES keeps the lstat()s. */
#define LIST_AFTER 8
#define LIST_MAX_ENTRIES 65536

typedef struct DirInfo {
        char *real; /* realpath() of the directory; NULL if it does not resolve */
        unsigned lookups;
        bool listed, list_failed;
        HashTable links; /* when listed: the names of its symbolic links (owned) */
} DirInfo;

static void dir_info_free(DirInfo *d) {
        if (!d)
                return;
        free(d->real);
        policy_ht_done(&d->links);
        free(d);
}

void policy_canon_done(ParseCtx *c) {
        for (size_t i = 0; i < c->dir_cache.cap; i++)
                if (c->dir_cache.e[i].key) {
                        dir_info_free(c->dir_cache.e[i].value);
                        c->dir_cache.e[i].value = NULL;
                }
        policy_ht_done(&c->dir_cache);
}

static int dir_info(ParseCtx *c, const char *dir, DirInfo **ret) {
        HashEntry *e = policy_ht_get(&c->dir_cache, dir, strlen(dir));
        _cleanup_free_ char *key = NULL;
        DirInfo *d;
        int r;

        if (e) {
                *ret = e->value;
                return 0;
        }
        key = strdup(dir);
        d = calloc(1, sizeof(DirInfo));
        if (!key || !d) {
                free(d);
                return -ENOMEM;
        }
        d->links.owns = true;
        d->real = realpath(dir, NULL);
        if (!d->real && errno == ENOMEM) {
                free(d);
                return -ENOMEM;
        }
        r = policy_ht_put(&c->dir_cache, key, strlen(key), &e);
        if (r < 0) {
                dir_info_free(d);
                return r;
        }
        TAKE_PTR(key);
        e->value = d;
        *ret = d;
        return 0;
}

static int add_link(DirInfo *d, const char *name) {
        char *k = strdup(name);
        HashEntry *e;
        int r;

        if (!k)
                return -ENOMEM;
        r = policy_ht_put(&d->links, k, strlen(k), &e);
        if (r <= 0)
                free(k);
        return r < 0 ? r : 0;
}

/* Remembers which names in the directory are symbolic links, in one pass. */
static int dir_list(DirInfo *d) {
        int fd = open(d->real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct dirent *de;
        size_t n = 0;
        DIR *dir;
        int r = 0;

        d->list_failed = true; /* until it worked: never try twice */
        dir = fd >= 0 ? fdopendir(fd) : NULL;
        if (!dir) {
                safe_close(fd);
                return 0;
        }
        while (r >= 0 && (de = readdir(dir))) {
                struct stat st;
                bool link = de->d_type == DT_LNK;

                if (++n > LIST_MAX_ENTRIES)
                        break;
                if (de->d_type == DT_UNKNOWN)
                        link = fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
                if (link)
                        r = add_link(d, de->d_name);
        }
        closedir(dir);
        if (r < 0 || n > LIST_MAX_ENTRIES) {
                policy_ht_done(&d->links);
                return r;
        }
        d->listed = true;
        d->list_failed = false;
        return 0;
}

static int is_symlink(DirInfo *d, const char *path, const char *name, bool *ret) {
        struct stat st;
        int r;

        if (!d->listed && !d->list_failed && ++d->lookups > LIST_AFTER) {
                r = dir_list(d);
                if (r < 0)
                        return r;
        }
        if (d->listed)
                *ret = policy_ht_get(&d->links, name, strlen(name)) != NULL;
        else
                *ret = lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
        return 0;
}

/* A path whose directory resolves is that directory's real path plus the name, unless
 * the name is a symbolic link: then it is realpath() of the whole. */
static int default_canonicalize(ParseCtx *c, const char *path, char **ret) {
        _cleanup_free_ char *dir = NULL, *cand = NULL;
        const char *slash = strrchr(path, '/');
        bool link = false;
        DirInfo *d;
        int r;

        if (!slash || slash[1] == 0)
                return -ENOENT; /* "/" is canonical */
        dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
        if (!dir)
                return -ENOMEM;
        r = dir_info(c, dir, &d);
        if (r < 0)
                return r;
        if (!d->real)
                return -ENOENT;
        cand = strdup_printf("%s/%s", streq(d->real, "/") ? "" : d->real, slash + 1);
        if (!cand)
                return -ENOMEM;
        r = is_symlink(d, cand, slash + 1, &link);
        if (r < 0)
                return r;
        if (link) {
                char *real = realpath(cand, NULL);

                if (real) {
                        *ret = real;
                        return 0;
                }
                if (errno == ENOMEM)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(cand);
        return 0;
}

int policy_canonicalize(ParseCtx *c, const char *path, char **ret) {
        _cleanup_free_ char *out = NULL;
        int r;

        if (c->res && c->res->canonicalize)
                r = c->res->canonicalize(path, &out, c->res->userdata);
        else
                r = default_canonicalize(c, path, &out);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && r != -ENOENT)
                return policy_errorf(c, false, "cannot canonicalize %s: %s", path, strerror(-r));
        if (r < 0 || !out) {
                free(out);
                out = strdup(path);
                if (!out)
                        return -ENOMEM;
        }
        if (!policy_path_is_normal(out))
                return policy_errorf(c, false, "the canonical form of this path is not a normal absolute path");
        *ret = TAKE_PTR(out);
        return 0;
}

static int default_user(const char *name, uint32_t *ret) {
        UserRecord u;
        int r;

        r = user_lookup(name, 0, &u);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -ESRCH;
        *ret = (uint32_t) u.uid;
        user_record_done(&u);
        return 0;
}

static int default_group(const char *name, uint32_t *ret) {
        gid_t gid;
        int r;

        r = group_lookup(name, &gid);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -ESRCH;
        *ret = (uint32_t) gid;
        return 0;
}

static int resolve_name(ParseCtx *c, HashTable *cache, bool group, const char *name, uint32_t *ret) {
        HashEntry *e = policy_ht_get(cache, name, strlen(name));
        NameCacheValue *v;
        int r;

        if (!e) {
                v = calloc(1, sizeof *v);
                if (!v)
                        return -ENOMEM;
                if (group) {
                        gid_t g = 0;

                        r = c->res && c->res->group_to_gid ? c->res->group_to_gid(name, &g, c->res->userdata)
                                                           : default_group(name, &g);
                        v->id = (uint32_t) g;
                } else {
                        uid_t u = 0;

                        r = c->res && c->res->user_to_uid ? c->res->user_to_uid(name, &u, c->res->userdata)
                                                          : default_user(name, &u);
                        v->id = (uint32_t) u;
                }
                if (r == -ENOMEM) {
                        free(v);
                        return r;
                }
                v->known = r >= 0;
                r = cache_put(cache, name, v);
                if (r < 0)
                        return r;
                e = policy_ht_get(cache, name, strlen(name));
                if (!e)
                        return -ENOMEM;
        }
        v = e->value;
        if (!v->known)
                return -ESRCH;
        *ret = v->id;
        return 0;
}

int policy_resolve_user(ParseCtx *c, const char *name, uint32_t *ret) {
        return resolve_name(c, &c->user_cache, false, name, ret);
}

int policy_resolve_group(ParseCtx *c, const char *name, uint32_t *ret) {
        return resolve_name(c, &c->group_cache, true, name, ret);
}
