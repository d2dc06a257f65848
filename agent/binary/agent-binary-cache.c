/* SPDX-License-Identifier: GPL-2.0-or-later */

/*
 * Hash cache for files trusted in place (docs/design.md §4).
 *
 * Invariants:
 *  - Only in-place files are cached (root-owned, root-controlled directories, lease held
 *    while the key is read), so only root can make an entry stale, and every change to
 *    the content changes ctime (and usually mtime/size) or, for a replaced inode, the
 *    inode number or generation. The caller does not insert a hash whose file changed
 *    so recently that a later change could carry the same timestamps.
 *  - Bounded: at most max_entries; the least recently used entry is evicted.
 *  - Thread-safe: one mutex around every operation; worker threads share one cache.
 */

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent-binary-internal.h"
#include "list.h"

#define CACHE_MAX_ENTRIES (1U << 20)

typedef struct Entry {
        BinaryCacheKey key;
        uint8_t sha[SHA256_LEN];
        struct Entry *chain;            /* next in the bucket */
        LIST_FIELDS(struct Entry, lru); /* LRU order, most recent first */
} Entry;

struct BinaryCache {
        pthread_mutex_t lock;
        size_t max, n, n_buckets; /* n_buckets is a power of two */
        Entry **buckets;
        Entry *lru; /* most recent first; its prev is the oldest */
        uint64_t hits, misses;
};

int binary_cache_new(size_t max_entries, BinaryCache **ret) {
        BinaryCache *c;
        size_t nb = 16;

        if (max_entries == 0 || max_entries > CACHE_MAX_ENTRIES)
                return -EINVAL;
        while (nb < max_entries)
                nb *= 2;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->buckets = calloc(nb, sizeof(Entry *));
        if (!c->buckets) {
                free(c);
                return -ENOMEM;
        }
        pthread_mutex_init(&c->lock, NULL);
        c->max = max_entries;
        c->n_buckets = nb;
        *ret = c;
        return 0;
}

void binary_cache_free(BinaryCache *c) {
        if (!c)
                return;
        Entry *e;

        while ((e = LIST_POP(lru, c->lru)))
                free(e);
        free(c->buckets);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

void binary_cache_stats(BinaryCache *c, uint64_t *ret_hits, uint64_t *ret_misses) {
        pthread_mutex_lock(&c->lock);
        if (ret_hits)
                *ret_hits = c->hits;
        if (ret_misses)
                *ret_misses = c->misses;
        pthread_mutex_unlock(&c->lock);
}

static uint64_t mix(uint64_t h, uint64_t v) {
        h ^= v;
        h *= UINT64_C(0x9e3779b97f4a7c15);
        return h ^ (h >> 29);
}

static size_t bucket_of(const BinaryCache *c, const BinaryCacheKey *k) {
        uint64_t h = 0;

        h = mix(h, k->dev);
        h = mix(h, k->ino);
        h = mix(h, k->mnt_id);
        h = mix(h, k->size);
        h = mix(h, (uint64_t) k->mtime_ns);
        h = mix(h, (uint64_t) k->ctime_ns);
        h = mix(h, k->generation);
        return (size_t) (h & (c->n_buckets - 1));
}

static bool key_eq(const BinaryCacheKey *a, const BinaryCacheKey *b) {
        return a->dev == b->dev && a->ino == b->ino && a->mnt_id == b->mnt_id && a->size == b->size &&
               a->mtime_ns == b->mtime_ns && a->ctime_ns == b->ctime_ns && a->generation == b->generation;
}

static Entry *find(BinaryCache *c, const BinaryCacheKey *k) {
        for (Entry *e = c->buckets[bucket_of(c, k)]; e; e = e->chain)
                if (key_eq(&e->key, k))
                        return e;
        return NULL;
}

static void lru_unlink(BinaryCache *c, Entry *e) {
        LIST_REMOVE(lru, c->lru, e);
}

static void lru_push_front(BinaryCache *c, Entry *e) {
        LIST_PREPEND(lru, c->lru, e);
}

static void evict(BinaryCache *c, Entry *e) {
        Entry **p = &c->buckets[bucket_of(c, &e->key)];

        while (*p != e)
                p = &(*p)->chain;
        *p = e->chain;
        lru_unlink(c, e);
        free(e);
        c->n--;
}

bool binary_cache_lookup(BinaryCache *c, const BinaryCacheKey *k, uint8_t ret_sha[static SHA256_LEN]) {
        Entry *e;

        pthread_mutex_lock(&c->lock);
        e = find(c, k);
        if (e) {
                memcpy(ret_sha, e->sha, SHA256_LEN);
                lru_unlink(c, e);
                lru_push_front(c, e);
                c->hits++;
        } else
                c->misses++;
        pthread_mutex_unlock(&c->lock);
        return e != NULL;
}

int binary_cache_insert(BinaryCache *c, const BinaryCacheKey *k, const uint8_t sha[static SHA256_LEN]) {
        Entry *e;
        size_t b;

        pthread_mutex_lock(&c->lock);
        e = find(c, k);
        if (e) {
                memcpy(e->sha, sha, SHA256_LEN);
                lru_unlink(c, e);
                lru_push_front(c, e);
                pthread_mutex_unlock(&c->lock);
                return 0;
        }
        if (c->n >= c->max && c->lru)
                evict(c, LIST_TAIL(lru, c->lru));
        e = calloc(1, sizeof(*e));
        if (!e) {
                pthread_mutex_unlock(&c->lock);
                return -ENOMEM;
        }
        e->key = *k;
        memcpy(e->sha, sha, SHA256_LEN);
        b = bucket_of(c, k);
        e->chain = c->buckets[b];
        c->buckets[b] = e;
        lru_push_front(c, e);
        c->n++;
        pthread_mutex_unlock(&c->lock);
        return 0;
}
