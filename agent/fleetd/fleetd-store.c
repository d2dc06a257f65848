/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * What fleetd holds, in memory and in its state directory: one file per key
 * ("global.bundle", "group.staff.bundle", "host.h1.bundle"), the exact bytes the broker
 * gave. Nothing here trusts the bytes: they are the agent's to verify.
 *
 * Invariants: files are written to a temporary name, fsynced and renamed over the old
 * one, so a crash leaves the old or the new value, never half of one; a file larger than
 * BUNDLE_MAX_SIZE is not loaded; names are built only from the configured keys.
 */

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "fleetd-offer.h"
#include "fleetd-store.h"
#include "util.h"

int fleetd_store_open(Fleetd *f) {
        (void) mkdir(f->state_dir, 0700);
        f->state_fd = open(f->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return f->state_fd < 0 ? negative_errno() : 0;
}

static Held *find(Fleetd *f, const char *key) {
        for (size_t i = 0; i < f->n_held; i++)
                if (streq(f->held[i].key, key))
                        return &f->held[i];
        return NULL;
}

static void describe(Held *h) {
        _cleanup_(bundle_freep) Bundle *b = NULL;

        h->serial = h->data && bundle_parse(h->data, h->len, &b, NULL) >= 0 ? b->serial : 0;
        if (h->data)
                (void) sha256_buf(h->data, h->len, h->sha256);
}

int fleetd_store_load(Fleetd *f) {
        for (size_t i = 0; i < f->n_held; i++) {
                Held *h = &f->held[i];
                char name[BUNDLE_NAME_MAX + 16];
                _cleanup_close_ int fd = -EBADF;
                int r;

                snprintf(name, sizeof name, "%s.bundle", h->key);
                fd = openat(f->state_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
                if (fd < 0)
                        continue;
                r = read_fd_full(fd, BUNDLE_MAX_SIZE, &h->data, &h->len);
                if (r < 0) {
                        h->data = NULL;
                        h->len = 0;
                        continue;
                }
                describe(h);
        }
        return 0;
}

int fleetd_write_atomic(int dir_fd, const char *name, const char *data, size_t len) {
        char tmp[BUNDLE_NAME_MAX + 64];
        _cleanup_close_ int fd = -EBADF;
        int r = 0;

        snprintf(tmp, sizeof tmp, ".%s.tmp", name);
        (void) unlinkat(dir_fd, tmp, 0);
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        r = write_full(fd, data, len);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = negative_errno();
        if (r < 0)
                (void) unlinkat(dir_fd, tmp, 0);
        else
                (void) fsync(dir_fd);
        return r;
}

int fleetd_store_set(Fleetd *f, const char *key, const char *data, size_t len, uint64_t revision, bool *ret_changed) {
        Held *h = find(f, key);
        char name[BUNDLE_NAME_MAX + 16];
        uint8_t sha[SHA256_LEN];
        char *copy = NULL;
        int r;

        *ret_changed = false;
        if (!h)
                return -ENOENT; /* not one of our keys: never stored */
        snprintf(name, sizeof name, "%s.bundle", key);
        if (!data) {
                if (!h->data)
                        return 0;
                free(h->data);
                h->data = NULL;
                h->len = 0;
                h->serial = 0;
                (void) unlinkat(f->state_fd, name, 0);
                *ret_changed = true;
                return 0;
        }
        if (len > BUNDLE_MAX_SIZE)
                return -EFBIG;
        r = sha256_buf(data, len, sha);
        if (r < 0)
                return r;
        if (h->data && memcmp(sha, h->sha256, SHA256_LEN) == 0) {
                h->revision = MAX(h->revision, revision);
                return 0;
        }
        copy = malloc(len + 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, data, len);
        copy[len] = 0;
        r = fleetd_write_atomic(f->state_fd, name, data, len);
        if (r < 0) {
                /* kept in memory all the same: the agent should still get it */
                fprintf(stderr, "elevate-fleetd: cannot keep %s in %s: %s\n", key, f->state_dir, strerror(-r));
        }
        free(h->data);
        h->data = copy;
        h->len = len;
        h->revision = revision;
        describe(h);
        *ret_changed = true;
        return 0;
}

int fleetd_take_value(Fleetd *f, const char *key, const char *data, size_t len, uint64_t revision) {
        bool changed = false;
        int r;

        r = fleetd_store_set(f, key, data, len, revision, &changed);
        if (r == -ENOENT)
                return 0; /* a subject we did not ask for: ignored */
        if (r < 0) {
                fprintf(stderr, "elevate-fleetd: cannot keep the value of %s: %s\n", key, strerror(-r));
                return r;
        }
        if (changed) {
                fprintf(stderr, "elevate-fleetd: %s: %s\n", key,
                        data ? "a new value; offering it to the agent" : "no value any more");
                f->retry_usec = FLEETD_RETRY_MIN_USEC;
                fleetd_schedule_offer(f, 0);
        }
        return 0;
}
