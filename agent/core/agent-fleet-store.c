/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * What the fleet module reads and keeps on disk (agent-fleet-internal.h).
 *
 * Invariants:
 *  - fleet.conf, the trust directory and the drop-in directory are root's configuration:
 *    each file must be a regular file (never a symbolic link), root's and not writable by
 *    group or others, in a directory chain that is root's and not writable by others
 *    (sticky excepted) — the checks of the policy file. Anything else refuses the whole
 *    read, naming the file; nothing is skipped silently.
 *  - Every read is bounded before it starts: fleet.conf FLEET_CONF_MAX, a bundle
 *    BUNDLE_MAX_SIZE, at most BUNDLE_MAX_INPUTS bundles and FLEET_TRUST_SCAN_MAX directory
 *    entries, the kept release FLEET_STORE_MAX. No read waits: regular files only, opened
 *    O_NONBLOCK.
 *  - The kept release is replaced atomically (a new file, fsync, rename, fsync of the
 *    directory), root's and 0600 in the 0700 state directory.
 */

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent-fleet-internal.h"
#include "agent-fleet.h"
#include "base64.h"
#include "proto.h"
#include "util.h"

void fleet_setup_done(FleetSetup *s) {
        free(s->host);
        strv_free(s->groups);
        *s = (FleetSetup){};
}

/* /etc/elevate/fleet.conf, read like the policy file: root's, not writable by others, nor
 * any directory above. A missing file is an empty configuration. */
static int fleet_conf_load(Agent *a, FleetConf *ret, char *err, size_t size) {
        _cleanup_free_ char *buf = NULL;
        FleetConfError cerr = {};
        PolicyError perr = {};
        size_t len = 0;
        int r;

        *ret = (FleetConf){};
        r = policy_read_file(a->fleet_conf, true, &buf, &len, &perr);
        if (r >= 0)
                r = fleet_conf_parse(buf, len, ret, &cerr);
        if (r < 0 && r != -ENOENT) {
                snprintf(err, size, "%s: %s", a->fleet_conf, perr.message[0] ? perr.message : cerr.message);
                return r == -ENOMEM ? r : -EINVAL;
        }
        return 0;
}

int agent_fleet_host(Agent *a, char **ret, char *err, size_t size) {
        FleetConf conf = {};
        int r;

        /* root's file; never a name fleetd gives */
        r = fleet_conf_load(a, &conf, err, size);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(conf.host_id);
        fleet_conf_done(&conf);
        if (*ret)
                return 0;
        r = fleet_default_host_id(ret);
        if (r < 0)
                snprintf(err, size,
                         "this machine's host name is not a fleet name (1..%d of A-Z a-z 0-9 _ -): set "
                         "host_id in %s",
                         BUNDLE_NAME_MAX, a->fleet_conf);
        return r;
}

int fleet_setup_read(Agent *a, FleetSetup *ret, char *err, size_t size) {
        _cleanup_close_ int dfd = -EBADF;
        FleetSetup s = {};
        FleetConf conf = {};
        FleetTrustError terr = {};
        int r;

        r = fleet_conf_load(a, &conf, err, size);
        if (r < 0)
                return r;
        s.on_expiry = conf.on_expiry;
        s.warning = conf.expiry_warning;
        s.host = TAKE_PTR(conf.host_id);
        s.groups = TAKE_PTR(conf.groups);
        fleet_conf_done(&conf);
        if (!s.groups)
                s.groups = calloc(1, sizeof(char *));
        if (!s.groups)
                return -ENOMEM;
        if (!s.host) {
                r = fleet_default_host_id(&s.host);
                if (r < 0) {
                        fleet_setup_done(&s);
                        snprintf(err, size,
                                 "this machine's host name is not a fleet name (1..%d of A-Z a-z 0-9 _ -): "
                                 "set "
                                 "host_id in %s",
                                 BUNDLE_NAME_MAX, a->fleet_conf);
                        return r == -ENOMEM ? r : -EINVAL;
                }
        }
        dfd = fleet_trust_open(a->trust_dir, true, &terr);
        if (dfd >= 0)
                r = fleet_trust_load(dfd, true, &s.trust, &terr);
        if (dfd < 0 || r < 0) {
                fleet_setup_done(&s);
                snprintf(err, size, "trust directory %s: %s", a->trust_dir, terr.message);
                return -EINVAL;
        }
        *ret = s;
        return 0;
}

void fleet_inputs_done(FleetInputs *i) {
        for (size_t k = 0; k < i->n; k++)
                free(i->data[k]);
        *i = (FleetInputs){};
}

int fleet_inputs_add(FleetInputs *i, char *buf, size_t len, const char *name) {
        if (i->n >= BUNDLE_MAX_INPUTS) {
                free(buf);
                return -E2BIG;
        }
        i->data[i->n] = buf;
        i->in[i->n] = (BundleInput){ .data = buf, .len = len };
        snprintf(i->names[i->n], sizeof i->names[i->n], "%s", name);
        i->n++;
        return 0;
}

static const char *source_name(PolicyOrigin o) {
        return o == POLICY_ORIGIN_DROP_IN ? "drop-in" : "fleet";
}

int fleet_store_load(Agent *a, FleetInputs *ret, PolicyOrigin *ret_source, char **ret_path, char *err, size_t size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        _cleanup_json_ json_t *o = NULL;
        FleetInputs in = {};
        json_t *list, *v;
        const char *source, *path;
        struct stat st;
        size_t len = 0, k;
        int r;

        fd = openat(a->state_fd, FLEET_STORE_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? -ENOENT : negative_errno();
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0077)) {
                snprintf(err, size, "%s/%s is not a root-owned private file", a->state_dir, FLEET_STORE_NAME);
                return -EPERM;
        }
        r = read_fd_full(fd, FLEET_STORE_MAX, &buf, &len);
        if (r < 0) {
                snprintf(err, size, "cannot read %s/%s: %s", a->state_dir, FLEET_STORE_NAME, strerror(-r));
                return r;
        }
        o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
        list = json_object_get(o, "bundles");
        source = json_string_value(json_object_get(o, "source"));
        path = json_string_value(json_object_get(o, "path"));
        if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > BUNDLE_MAX_INPUTS ||
            !source) {
                snprintf(err, size, "%s/%s is damaged", a->state_dir, FLEET_STORE_NAME);
                return -EBADMSG;
        }
        json_array_foreach(list, k, v) {
                const char *s = json_string_value(v);
                size_t n = 0, dec = 0;
                char *data, name[32];

                if (!s || base64_decoded_size(s, strlen(s), &n) < 0 || n > BUNDLE_MAX_SIZE) {
                        fleet_inputs_done(&in);
                        snprintf(err, size, "%s/%s is damaged (bundle %zu)", a->state_dir, FLEET_STORE_NAME, k);
                        return -EBADMSG;
                }
                data = malloc(n + 1);
                if (!data || base64_decode(s, strlen(s), (uint8_t *) data, n + 1, &dec) < 0) {
                        free(data);
                        fleet_inputs_done(&in);
                        snprintf(err, size, "%s/%s is damaged (bundle %zu)", a->state_dir, FLEET_STORE_NAME, k);
                        return -EBADMSG;
                }
                snprintf(name, sizeof name, "kept-%zu", k);
                r = fleet_inputs_add(&in, data, dec, name);
                if (r < 0) {
                        fleet_inputs_done(&in);
                        return r;
                }
        }
        if (ret_path) {
                *ret_path = path ? strdup(path) : NULL;
                if (path && !*ret_path) {
                        fleet_inputs_done(&in);
                        return -ENOMEM;
                }
        }
        *ret_source = streq(source, "drop-in") ? POLICY_ORIGIN_DROP_IN : POLICY_ORIGIN_FLEET;
        *ret = in;
        return 0;
}

int fleet_store_save(Agent *a, const FleetInputs *in, const bool *keep, PolicyOrigin source, const char *path) {
        _cleanup_json_ json_t *o = NULL, *list = json_array();
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < in->n; i++) {
                _cleanup_free_ char *b = NULL;

                if (!keep[i])
                        continue;
                b = malloc(BASE64_ENCODED_SIZE(in->in[i].len));
                if (!b)
                        return -ENOMEM;
                base64_encode(in->in[i].data, in->in[i].len, b);
                if (json_array_append_new(list, json_string(b)) < 0)
                        return -ENOMEM;
        }
        o = json_pack("{s:s,s:s?,s:I,s:O}", "source", source_name(source), "path", path, "saved",
                      (json_int_t) now_usec(CLOCK_REALTIME), "bundles", list);
        text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (!text)
                return -ENOMEM;
        (void) unlinkat(a->state_fd, FLEET_STORE_NAME ".new", 0);
        fd = openat(a->state_fd, FLEET_STORE_NAME ".new", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return negative_errno();
        r = write_full(fd, text, strlen(text));
        if (r < 0)
                return r;
        if (fsync(fd) < 0 || renameat(a->state_fd, FLEET_STORE_NAME ".new", a->state_fd, FLEET_STORE_NAME) < 0 ||
            fsync(a->state_fd) < 0)
                return negative_errno();
        return 0;
}

static int cmp_names(const void *x, const void *y) {
        return strcmp(*(char *const *) x, *(char *const *) y);
}

static bool dropin_name(const char *n) {
        size_t l = strlen(n), s = strlen(FLEET_DROPIN_SUFFIX);

        /* editors' and package managers' leftovers (".x.swp", "x.bundle.dpkg-new") are not
         * bundles: only NAME.bundle, NAME not hidden */
        return n[0] != '.' && l > s && l <= BUNDLE_NAME_MAX + s && streq(n + l - s, FLEET_DROPIN_SUFFIX);
}

/* The names of the bundles in the directory, sorted. */
static int dropin_list(int dfd, const char *dir, char ***ret, size_t *ret_n, char *err, size_t size) {
        _cleanup_strv_free_ char **names = calloc(BUNDLE_MAX_INPUTS + 2, sizeof(char *));
        DIR *d;
        struct dirent *de;
        size_t n = 0, seen = 0;
        int dup_fd;

        if (!names)
                return -ENOMEM;
        dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return negative_errno();
        d = fdopendir(dup_fd);
        if (!d) {
                safe_close(dup_fd);
                return negative_errno();
        }
        while ((de = readdir(d))) {
                if (++seen > FLEET_TRUST_SCAN_MAX) {
                        closedir(d);
                        snprintf(err, size, "%s has more than %d entries; keep only bundles there", dir,
                                 FLEET_TRUST_SCAN_MAX);
                        return -E2BIG;
                }
                if (!dropin_name(de->d_name))
                        continue;
                if (n >= BUNDLE_MAX_INPUTS) {
                        closedir(d);
                        snprintf(err, size, "%s holds more than %d bundles; remove the old ones", dir,
                                 BUNDLE_MAX_INPUTS);
                        return -E2BIG;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        closedir(d);
                        return -ENOMEM;
                }
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(char *), cmp_names);
        *ret = TAKE_PTR(names);
        *ret_n = n;
        return 0;
}

static int dropin_read_one(int dfd, const char *dir, const char *name, char **ret, size_t *ret_len, char *err,
                           size_t size) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        int r;

        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = negative_errno();
                snprintf(err, size, "%s/%s: cannot open: %s", dir, name,
                         r == -ELOOP ? "is a symbolic link" : strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
                snprintf(err, size,
                         "%s/%s: refused: must be a regular file owned by root and not writable by group "
                         "or others (owner %u, mode %04o)",
                         dir, name, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        if (st.st_size > BUNDLE_MAX_SIZE) {
                snprintf(err, size, "%s/%s: larger than a bundle may be (%d bytes)", dir, name, BUNDLE_MAX_SIZE);
                return -EFBIG;
        }
        r = read_fd_full(fd, BUNDLE_MAX_SIZE, ret, ret_len);
        if (r < 0)
                snprintf(err, size, "%s/%s: cannot read: %s", dir, name, strerror(-r));
        return r;
}

int fleet_dropin_read(const char *dir, FleetInputs *ret, char *err, size_t size) {
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_close_ int dfd = -EBADF;
        FleetTrustError terr = {};
        FleetInputs in = {};
        size_t n = 0;
        int r;

        /* the same chain checks as the trust directory's: root's, not writable by others */
        dfd = fleet_trust_open(dir, true, &terr);
        if (dfd < 0) {
                if (dfd == -ENOENT)
                        return -ENOENT;
                snprintf(err, size, "%s: %s", dir, terr.message);
                return dfd;
        }
        r = dropin_list(dfd, dir, &names, &n, err, size);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                char *buf = NULL;
                size_t len = 0;

                r = dropin_read_one(dfd, dir, names[i], &buf, &len, err, size);
                if (r >= 0)
                        r = fleet_inputs_add(&in, buf, len, names[i]);
                if (r < 0) {
                        fleet_inputs_done(&in);
                        return r;
                }
        }
        *ret = in;
        return 0;
}
