/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * How many bytes of sealed copies the agent holds at once (docs/design.md §4, policy copy_budget).
 *
 * A copy of a file that is not trusted in place lives in memory (a memfd) or in the
 * state directory (O_TMPFILE) for as long as its request lives: through inspection, a
 * wait for approval and the run of the program. A user who asks for many large files
 * (sparse ones cost her nothing on disk) could otherwise make the agent hold any amount.
 *
 * Invariants:
 *  - A copy reserves the file's full size (st_size: sparse files count whole) before its
 *    first byte is written; a reservation that does not fit, for the uid or for the
 *    agent as a whole, refuses the copy and nothing is read.
 *  - Whoever owns the copy owns its reservation: it is released exactly once, when the
 *    Binary holding the copy (or the failed attempt) is freed.
 *  - Thread-safe (worker threads reserve, the loop mostly releases); memory is one small
 *    entry per uid that holds a copy right now.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/sysinfo.h>

#include "agent-binary-internal.h"
#include "util.h"

typedef struct Holder {
        uid_t uid;
        uint64_t held;
} Holder;

struct CopyBudget {
        pthread_mutex_t lock;
        uint64_t total; /* the agent's limit */
        uint64_t held;  /* all uids */
        Holder *holders;
        size_t n_holders, n_alloc;
};

int copy_budget_new(uint64_t total, CopyBudget **ret) {
        CopyBudget *b = calloc(1, sizeof(*b));

        if (!b)
                return -ENOMEM;
        pthread_mutex_init(&b->lock, NULL);
        b->total = total;
        *ret = b;
        return 0;
}

void copy_budget_free(CopyBudget *b) {
        if (!b)
                return;
        free(b->holders);
        pthread_mutex_destroy(&b->lock);
        free(b);
}

uint64_t copy_budget_total(CopyBudget *b) {
        return b->total;
}

uint64_t copy_budget_default_total(void) {
        struct sysinfo si;
        uint64_t ram = 0;

        if (sysinfo(&si) == 0)
                ram = (uint64_t) si.totalram * (si.mem_unit ?: 1);
        return MAX(ram / 4, UINT64_C(64) << 20);
}

static Holder *holder_find(CopyBudget *b, uid_t uid) {
        for (size_t i = 0; i < b->n_holders; i++)
                if (b->holders[i].uid == uid)
                        return &b->holders[i];
        return NULL;
}

void copy_budget_held(CopyBudget *b, uid_t uid, uint64_t *ret_all, uint64_t *ret_uid) {
        Holder *h;

        pthread_mutex_lock(&b->lock);
        h = holder_find(b, uid);
        if (ret_all)
                *ret_all = b->held;
        if (ret_uid)
                *ret_uid = h ? h->held : 0;
        pthread_mutex_unlock(&b->lock);
}

static uint64_t mib(uint64_t n) {
        return (n + (1 << 20) - 1) >> 20;
}

int copy_budget_reserve(CopyBudget *b, uid_t uid, uint64_t uid_limit, uint64_t size, const char *display,
                        char **ret_error) {
        uint64_t mine;
        Holder *h;

        if (size == 0)
                return 0;
        pthread_mutex_lock(&b->lock);
        h = holder_find(b, uid);
        mine = h ? h->held : 0;
        if (size > uid_limit || mine > uid_limit - size) {
                pthread_mutex_unlock(&b->lock);
                *ret_error = strdup_printf(
                        "%s (%" PRIu64 " MiB) cannot be copied now: the copies of your requests would hold more "
                        "than your copy budget of %" PRIu64 " MiB (%" PRIu64 " MiB held now). Wait for your other "
                        "requests to end, or withdraw waiting ones (elevate --status, elevate --cancel ID)",
                        display, mib(size), mib(uid_limit), mib(mine));
                return -EDQUOT;
        }
        if (size > b->total || b->held > b->total - size) {
                uint64_t all = b->held;
                pthread_mutex_unlock(&b->lock);
                *ret_error = strdup_printf("%s (%" PRIu64 " MiB) cannot be copied now: the agent holds %" PRIu64
                                           " MiB of copies for all "
                                           "users and its budget is %" PRIu64 " MiB; try again later",
                                           display, mib(size), mib(all), mib(b->total));
                return -ENOSPC;
        }
        if (!h) {
                if (b->n_holders == b->n_alloc) {
                        size_t n = MAX(b->n_alloc * 2, (size_t) 8);
                        Holder *p = reallocarray(b->holders, n, sizeof(*p));
                        if (!p) {
                                pthread_mutex_unlock(&b->lock);
                                return -ENOMEM;
                        }
                        b->holders = p;
                        b->n_alloc = n;
                }
                h = &b->holders[b->n_holders++];
                *h = (Holder){ .uid = uid };
        }
        h->held += size;
        b->held += size;
        pthread_mutex_unlock(&b->lock);
        return 0;
}

void copy_budget_release(CopyBudget *b, uid_t uid, uint64_t size) {
        Holder *h;

        if (!b || size == 0)
                return;
        pthread_mutex_lock(&b->lock);
        h = holder_find(b, uid);
        if (h) {
                h->held -= MIN(h->held, size);
                if (h->held == 0)
                        *h = b->holders[--b->n_holders];
        }
        b->held -= MIN(b->held, size);
        pthread_mutex_unlock(&b->lock);
}
