/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * fleet.conf (fleet-conf.h). Invariants: the file is read with O_NOFOLLOW|O_NONBLOCK as a
 * regular file of at most FLEET_CONF_MAX bytes; parsing is total and strict.
 */

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "bundle.h"
#include "fleet-conf.h"
#include "util.h"

static int fail(FleetConfError *err, int r, const char *fmt, ...) _printf_(3, 4);
static int fail(FleetConfError *err, int r, const char *fmt, ...) {
        va_list ap;

        if (err) {
                va_start(ap, fmt);
                vsnprintf(err->message, sizeof err->message, fmt, ap);
                va_end(ap);
        }
        return r;
}

void fleet_conf_done(FleetConf *c) {
        if (!c)
                return;
        free(c->nats);
        free(c->creds);
        free(c->host_id);
        strv_free(c->groups);
        free(c->socket);
        *c = (FleetConf){};
}

int fleet_groups_parse(const char *s, char ***ret, FleetConfError *err) {
        _cleanup_strv_free_ char **v = calloc(BUNDLE_MAX_GROUPS + 1, sizeof(char *));
        size_t n = 0;
        const char *p = s;

        if (!v)
                return -ENOMEM;
        while (p && *p) {
                const char *comma = strchr(p, ',');
                size_t l = comma ? (size_t) (comma - p) : strlen(p);

                if (n >= BUNDLE_MAX_GROUPS)
                        return fail(err, -EINVAL, "more than %d groups", BUNDLE_MAX_GROUPS);
                v[n] = strndup(p, l);
                if (!v[n])
                        return -ENOMEM;
                if (!bundle_name_ok(v[n++]))
                        return fail(err, -EINVAL, "group \"%.64s\" is not 1..%d of A-Z a-z 0-9 _ -", v[n - 1],
                                    BUNDLE_NAME_MAX);
                for (size_t i = 0; i + 1 < n; i++)
                        if (streq(v[i], v[n - 1]))
                                return fail(err, -EINVAL, "group \"%s\" is named twice", v[i]);
                p = comma ? comma + 1 : NULL;
                if (comma && !*p)
                        return fail(err, -EINVAL, "an empty group name");
        }
        *ret = TAKE_PTR(v);
        return 0;
}

static char *trim(char *s) {
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = 0;
        return s;
}

static int set_once(char **field, const char *key, const char *value, unsigned line, FleetConfError *err) {
        if (*field)
                return fail(err, -EINVAL, "line %u: \"%s\" is set twice", line, key);
        if (!*value || strlen(value) > FLEET_URLS_MAX)
                return fail(err, -EINVAL, "line %u: \"%s\" needs a value (at most %d bytes)", line, key,
                            FLEET_URLS_MAX);
        *field = strdup(value);
        return *field ? 0 : -ENOMEM;
}

static int parse_line(FleetConf *c, char *line, unsigned no, FleetConfError *err) {
        char *eq = strchr(line, '='), *key, *value;
        int r;

        if (!eq)
                return fail(err, -EINVAL, "line %u: expected \"key = value\"", no);
        *eq = 0;
        key = trim(line);
        value = trim(eq + 1);
        if (streq(key, "nats"))
                return set_once(&c->nats, key, value, no, err);
        if (streq(key, "creds"))
                return set_once(&c->creds, key, value, no, err);
        if (streq(key, "socket"))
                return set_once(&c->socket, key, value, no, err);
        if (streq(key, "host_id")) {
                if (!bundle_name_ok(value))
                        return fail(err, -EINVAL, "line %u: host_id must be 1..%d of A-Z a-z 0-9 _ -", no,
                                    BUNDLE_NAME_MAX);
                return set_once(&c->host_id, key, value, no, err);
        }
        if (streq(key, "groups")) {
                FleetConfError e2 = {};
                if (c->groups)
                        return fail(err, -EINVAL, "line %u: \"groups\" is set twice", no);
                r = fleet_groups_parse(value, &c->groups, &e2);
                if (r < 0)
                        return fail(err, r, "line %u: %s", no, e2.message);
                return 0;
        }
        if (streq(key, "on_expiry")) {
                if (c->on_expiry != FLEET_ON_EXPIRY_UNSET)
                        return fail(err, -EINVAL, "line %u: \"on_expiry\" is set twice", no);
                if (streq(value, "deny-all"))
                        c->on_expiry = FLEET_ON_EXPIRY_DENY_ALL;
                else if (streq(value, "keep"))
                        c->on_expiry = FLEET_ON_EXPIRY_KEEP;
                else
                        return fail(err, -EINVAL, "line %u: on_expiry is deny-all or keep", no);
                return 0;
        }
        if (streq(key, "expiry_warning")) {
                uint64_t u;
                if (c->expiry_warning)
                        return fail(err, -EINVAL, "line %u: \"expiry_warning\" is set twice", no);
                if (duration_parse(value, &u) < 0 || u == 0 || u > UINT64_C(366) * 24 * 3600 * USEC_PER_SEC)
                        return fail(err, -EINVAL, "line %u: expiry_warning is a duration from 1s to 366d (\"3d\")", no);
                c->expiry_warning = u;
                return 0;
        }
        return fail(err, -EINVAL,
                    "line %u: unknown key \"%.32s\" (known: nats, creds, host_id, groups, socket, on_expiry, "
                    "expiry_warning)",
                    no, key);
}

int fleet_conf_parse(const char *buf, size_t len, FleetConf *ret, FleetConfError *err) {
        _cleanup_free_ char *copy = NULL;
        FleetConf c = {};
        unsigned no = 0;
        int r = 0;

        if (!buf || !ret)
                return -EINVAL;
        if (len > FLEET_CONF_MAX)
                return fail(err, -EFBIG, "larger than %d bytes", FLEET_CONF_MAX);
        if (memchr(buf, 0, len) || !utf8_is_valid(buf, len))
                return fail(err, -EINVAL, "not UTF-8 text");
        copy = strndup(buf, len);
        if (!copy)
                return -ENOMEM;
        for (char *line = copy, *next; line && r >= 0; line = next) {
                char *t;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                no++;
                t = trim(line);
                if (!*t || *t == '#')
                        continue;
                r = parse_line(&c, t, no, err);
        }
        if (r < 0) {
                fleet_conf_done(&c);
                return r;
        }
        *ret = c;
        return 0;
}

int fleet_conf_read(const char *path, FleetConf *ret, FleetConfError *err) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                r = negative_errno();
                return r == -ENOENT ? r : fail(err, r, "cannot open %s: %s", path, strerror(-r));
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return fail(err, -EINVAL, "%s is not a regular file", path);
        r = read_fd_full(fd, FLEET_CONF_MAX, &buf, &len);
        if (r < 0)
                return fail(err, r, "cannot read %s: %s", path, strerror(-r));
        return fleet_conf_parse(buf, len, ret, err);
}

int fleet_default_host_id(char **ret) {
        struct utsname u;
        char *dot;

        if (uname(&u) < 0)
                return negative_errno();
        dot = strchr(u.nodename, '.');
        if (dot)
                *dot = 0;
        if (!bundle_name_ok(u.nodename))
                return -EINVAL;
        *ret = strdup(u.nodename);
        return *ret ? 0 : -ENOMEM;
}
