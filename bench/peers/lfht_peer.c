/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lfht_peer.c - liburcu's lock-free resizable hash table cds_lfht as a harness peer, used as its
 * documentation says:
 *
 *   - The memb flavour (urcu/urcu-memb.h, liburcu-memb + liburcu-cds): readers need no signals and
 *     no quiescent-state announcements. Every thread registers itself with RCU, here lazily on
 *     its first operation, and unregisters when the harness's worker leaves.
 *   - Created presized (the next power of two >= the capacity) with CDS_LFHT_AUTO_RESIZE and
 *     CDS_LFHT_ACCOUNTING: grown from a small table, a 10^6-key prefill takes minutes.
 *   - Lookups and updates run inside rcu_read_lock (cds_lfht requires it for add/del too);
 *     nodes leave through call_rcu, so a reader never sees freed memory.
 *   - put = cds_lfht_add_replace (a new node per put; the replaced node is freed after a grace
 *     period), update = lookup + cds_lfht_replace (nothing added when absent), remove = lookup
 *     + cds_lfht_del.
 */
#define _LGPL_SOURCE /* liburcu's inline fast paths, as its documentation recommends */
#include "../chmbench.h"

#include "chm.h"

#include <malloc.h>
#include <stdlib.h>
#include <time.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

struct lfht_node {
    uint64_t key, value;
    struct cds_lfht_node node;
    struct rcu_head rcu;
};

struct lfht_peer {
    struct cds_lfht *table;
    uint64_t seed;
};

/* Whether this peer registered the thread (and so unregisters it). The library's own SMR
 * registers threads with the same liburcu flavour, and registering twice is an assertion
 * failure: a thread that used a chm map first (with -f 0, trials share the main thread) is
 * already registered, which liburcu's own flag (the one the library checks too) tells. */
static __thread bool rcu_registered;

static void ensure_registered(void)
{
    if (!rcu_registered && !URCU_TLS(urcu_memb_reader).registered) {
        urcu_memb_register_thread();
        rcu_registered = true;
    }
}

static int match_key(struct cds_lfht_node *node, const void *key)
{
    return caa_container_of(node, struct lfht_node, node)->key == *(const uint64_t *)key;
}

static void free_node(struct rcu_head *head)
{
    free(caa_container_of(head, struct lfht_node, rcu));
}

static bench_map *peer_create(const bench_map_impl *impl, const bench_map_options *opt)
{
    (void)impl;
    size_t capacity = opt->capacity; /* packed, concurrency, seed: nothing to switch */
    struct lfht_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    unsigned long buckets = 1;
    while (buckets < capacity)
        buckets <<= 1;
    p->seed = 0x5eed5eedULL;
    p->table = cds_lfht_new_flavor(buckets, buckets, 0, CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
                                   &urcu_memb_flavor, NULL);
    if (!p->table) {
        free(p);
        return NULL;
    }
    return (bench_map *)p;
}

static void peer_thread_exit(bench_map *m)
{
    (void)m;
    if (rcu_registered) {
        urcu_memb_unregister_thread();
        rcu_registered = false;
    }
}

static void peer_destroy(bench_map *m)
{
    struct lfht_peer *p = (struct lfht_peer *)m;
    ensure_registered();
    struct cds_lfht_iter iter;
    struct lfht_node *n;
    urcu_memb_read_lock();
    cds_lfht_for_each_entry(p->table, &iter, n, node)
    {
        if (cds_lfht_del(p->table, &n->node) == 0)
            urcu_memb_call_rcu(&n->rcu, free_node);
    }
    urcu_memb_read_unlock();
    urcu_memb_barrier(); /* every call_rcu callback has run */
    /* Since liburcu 0.10 cds_lfht_destroy has no RCU requirement (its own resize worker); this
     * thread is done with the table, so it leaves RCU first. */
    peer_thread_exit(m);
    cds_lfht_destroy(p->table, NULL);
    free(p);
}

/* Removed nodes are freed by call_rcu callbacks: rcu_barrier waits for them all. Growing the
 * bucket table is asynchronous (CDS_LFHT_AUTO_RESIZE: liburcu 0.13 runs it on its own resize
 * workqueue, which no public call can flush) and allocates as it goes, so after the barrier this
 * waits until the process's allocator statistics (glibc mallinfo2, as the memory benchmark
 * reads them) stay unchanged for 3 checks 5 ms apart, at most 2 s. */
static void peer_reclaim(bench_map *m)
{
    (void)m;
    size_t last = (size_t)-1;
    int stable = 0;
    for (int round = 0; round < 400 && stable < 3; round++) {
        urcu_memb_barrier();
        struct mallinfo2 mi = mallinfo2();
        size_t now = mi.uordblks + mi.hblkhd;
        stable = now == last ? stable + 1 : 0;
        last = now;
        struct timespec pause = {0, 5 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static bool peer_get(bench_map *m, uint64_t key, uint64_t *value)
{
    struct lfht_peer *p = (struct lfht_peer *)m;
    ensure_registered();
    struct cds_lfht_iter iter;
    bool found = false;
    urcu_memb_read_lock();
    cds_lfht_lookup(p->table, chm_hash_u64(key, p->seed), match_key, &key, &iter);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&iter);
    if (node) {
        *value = caa_container_of(node, struct lfht_node, node)->value;
        found = true;
    }
    urcu_memb_read_unlock();
    return found;
}

static bool peer_put(bench_map *m, uint64_t key, uint64_t value)
{
    struct lfht_peer *p = (struct lfht_peer *)m;
    ensure_registered();
    struct lfht_node *n = malloc(sizeof *n);
    if (!n)
        return false;
    n->key = key;
    n->value = value;
    cds_lfht_node_init(&n->node);
    urcu_memb_read_lock();
    struct cds_lfht_node *old =
        cds_lfht_add_replace(p->table, chm_hash_u64(key, p->seed), match_key, &key, &n->node);
    urcu_memb_read_unlock();
    if (old)
        urcu_memb_call_rcu(&caa_container_of(old, struct lfht_node, node)->rcu, free_node);
    return old == NULL;
}

/* Set if present: a new node replaces the one found (cds_lfht_replace), the old one leaves
 * through call_rcu. -ENOENT means the node found was removed or replaced meanwhile: look again
 * (a key removed for good then ends the update, nothing inserted). */
static bool peer_update(bench_map *m, uint64_t key, uint64_t value)
{
    struct lfht_peer *p = (struct lfht_peer *)m;
    ensure_registered();
    struct lfht_node *n = malloc(sizeof *n);
    if (!n)
        return false;
    n->key = key;
    n->value = value;
    cds_lfht_node_init(&n->node);
    const unsigned long hash = chm_hash_u64(key, p->seed);
    bool updated = false;
    urcu_memb_read_lock();
    for (;;) {
        struct cds_lfht_iter iter;
        cds_lfht_lookup(p->table, hash, match_key, &key, &iter);
        struct cds_lfht_node *old = cds_lfht_iter_get_node(&iter);
        if (!old)
            break;
        if (cds_lfht_replace(p->table, &iter, hash, match_key, &key, &n->node) == 0) {
            urcu_memb_call_rcu(&caa_container_of(old, struct lfht_node, node)->rcu, free_node);
            updated = true;
            break;
        }
    }
    urcu_memb_read_unlock();
    if (!updated)
        free(n);
    return updated;
}

static bool peer_remove(bench_map *m, uint64_t key)
{
    struct lfht_peer *p = (struct lfht_peer *)m;
    ensure_registered();
    struct cds_lfht_iter iter;
    bool removed = false;
    urcu_memb_read_lock();
    cds_lfht_lookup(p->table, chm_hash_u64(key, p->seed), match_key, &key, &iter);
    struct cds_lfht_node *node = cds_lfht_iter_get_node(&iter);
    if (node && cds_lfht_del(p->table, node) == 0) {
        urcu_memb_call_rcu(&caa_container_of(node, struct lfht_node, node)->rcu, free_node);
        removed = true;
    }
    urcu_memb_read_unlock();
    return removed;
}

static size_t peer_size(bench_map *m)
{
    struct lfht_peer *p = (struct lfht_peer *)m;
    ensure_registered();
    long before, after;
    unsigned long count;
    urcu_memb_read_lock();
    cds_lfht_count_nodes(p->table, &before, &count, &after);
    urcu_memb_read_unlock();
    return (size_t)count;
}

const bench_map_impl bench_peer_lfht = {
    .name = "lfht",
    .thread_safe = true,
    .create = peer_create,
    .destroy = peer_destroy,
    .get = peer_get,
    .put = peer_put,
    .update = peer_update,
    .remove = peer_remove,
    .size = peer_size,
    .thread_exit = peer_thread_exit,
    .reclaim = peer_reclaim,
};
