/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ck_ht_peer.c - Concurrency Kit's ck_ht as a harness peer, used as ck documents it:
 *
 *   - CK_HT_MODE_DIRECT: 64-bit keys and values stored in the entry, no key copies.
 *   - ck_ht is single-writer / multi-reader ("spmc"): every put, update and remove takes one
 *     writer lock; gets take no lock.
 *   - Readers run inside ck_epoch sections; memory ck_ht retires (the old table after a grow) is
 *     handed to the allocator's free with defer == true and then freed through ck_epoch_call after
 *     a grace period, as ck_malloc's defer flag requires. Each thread gets its own epoch record,
 *     registered lazily on its first operation.
 *
 * Key mapping: ck_ht's direct mode reserves CK_HT_KEY_EMPTY (0) and CK_HT_KEY_TOMBSTONE (~0). The
 * mix benchmark uses key 0, so this adapter stores key + 1; keys up to UINT64_MAX - 2 are then
 * representable (the harness's keys are below 2^32).
 */
#include "../chmbench.h"

#include "chm.h" /* chm_hash_u64: the same hash quality as the library's backends */

#include <ck_epoch.h>
#include <ck_ht.h>
#include <ck_spinlock.h>
#include <pthread.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct ck_ht_peer {
    ck_ht_t table;
    ck_spinlock_fas_t writer_lock; /* ck_ht's single-writer rule */
    ck_epoch_t epoch;
    pthread_mutex_t records_lock; /* guards the record list (registration only) */
    struct epoch_record_node *records;
};

struct epoch_record_node {
    ck_epoch_record_t record;
    struct epoch_record_node *next;
};

/* The calling thread's record for the one map it works on (the harness runs one map at a time). */
static __thread ck_epoch_record_t *thread_record;
static __thread struct ck_ht_peer *thread_record_owner;

static ck_epoch_record_t *my_record(struct ck_ht_peer *p)
{
    if (thread_record_owner == p && thread_record)
        return thread_record;
    struct epoch_record_node *node = calloc(1, sizeof *node);
    if (!node)
        abort(); /* a benchmark cannot continue without memory */
    ck_epoch_register(&p->epoch, &node->record, NULL);
    pthread_mutex_lock(&p->records_lock);
    node->next = p->records;
    p->records = node;
    pthread_mutex_unlock(&p->records_lock);
    thread_record = &node->record;
    thread_record_owner = p;
    return thread_record;
}

/* Allocations carry an epoch entry in front so a deferred free needs no second allocation. */
struct deferred_block {
    ck_epoch_entry_t epoch_entry;
    alignas(16) char data[];
};

static void *ht_malloc(size_t size)
{
    struct deferred_block *b = malloc(sizeof *b + size);
    return b ? b->data : NULL;
}

static void free_after_grace_period(ck_epoch_entry_t *entry)
{
    free((char *)entry - offsetof(struct deferred_block, epoch_entry));
}

/* ck_ht calls free from the writer (under writer_lock) when it retires a table: the map the
 * calling thread is writing to. Thread-local, so no shared word is written by every put (and
 * ThreadSanitizer, which cannot see ck's spinlock, has nothing to report). */
static __thread struct ck_ht_peer *current_writer_map;

static void ht_free(void *ptr, size_t size, bool defer)
{
    (void)size;
    if (!ptr)
        return;
    struct deferred_block *b =
        (struct deferred_block *)((char *)ptr - offsetof(struct deferred_block, data));
    if (defer && current_writer_map) {
        ck_epoch_record_t *r = my_record(current_writer_map);
        ck_epoch_call(r, &b->epoch_entry, free_after_grace_period);
        ck_epoch_poll(r); /* reclaim what earlier grace periods allow, bounded backlog */
    } else {
        free(b);
    }
}

static void *ht_realloc(void *ptr, size_t old_size, size_t new_size, bool defer)
{
    void *fresh = ht_malloc(new_size);
    if (fresh && ptr) {
        memcpy(fresh, ptr, old_size < new_size ? old_size : new_size);
        ht_free(ptr, old_size, defer);
    }
    return fresh;
}

static struct ck_malloc ht_allocator = {
    .malloc = ht_malloc, .realloc = ht_realloc, .free = ht_free};

static void ht_hash(ck_ht_hash_t *h, const void *key, size_t key_length, uint64_t seed)
{
    (void)key_length;
    uintptr_t k;
    memcpy(&k, key, sizeof k);
    h->value = chm_hash_u64((uint64_t)k, seed);
}

static bench_map *peer_create(const bench_map_impl *impl, const bench_map_options *opt)
{
    (void)impl;
    size_t capacity = opt->capacity; /* packed, concurrency, seed: nothing to switch */
    struct ck_ht_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    ck_epoch_init(&p->epoch);
    ck_spinlock_fas_init(&p->writer_lock);
    pthread_mutex_init(&p->records_lock, NULL);
    /* presized like the library's maps: room for `capacity` entries without a grow */
    if (!ck_ht_init(&p->table, CK_HT_MODE_DIRECT, ht_hash, &ht_allocator,
                    (CK_HT_TYPE)(capacity * 2 + 16), 0x5eed5eedULL)) {
        free(p);
        return NULL;
    }
    return (bench_map *)p;
}

static void peer_thread_exit(bench_map *m)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    if (thread_record_owner == p && thread_record) {
        ck_epoch_barrier(thread_record); /* run this thread's pending deferred frees */
        ck_epoch_unregister(thread_record);
        thread_record = NULL;
        thread_record_owner = NULL;
    }
}

static void peer_destroy(bench_map *m)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    ck_epoch_barrier(my_record(p)); /* every worker has left: flush what is still deferred */
    ck_ht_destroy(&p->table);
    peer_thread_exit(m);
    for (struct epoch_record_node *n = p->records, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    pthread_mutex_destroy(&p->records_lock);
    free(p);
}

/* Memory ck_ht retired is freed by the writer's epoch record (ck_ht_free above): the memory
 * benchmark calls this on the thread that wrote, so a barrier on its record frees it all. */
static void peer_reclaim(bench_map *m)
{
    ck_epoch_barrier(my_record((struct ck_ht_peer *)m));
}

static bool peer_get(bench_map *m, uint64_t key, uint64_t *value)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    ck_epoch_record_t *r = my_record(p);
    ck_ht_hash_t h;
    ck_ht_entry_t e;
    ck_ht_hash_direct(&h, &p->table, (uintptr_t)(key + 1));
    ck_ht_entry_key_set_direct(&e, (uintptr_t)(key + 1));
    ck_epoch_begin(r, NULL);
    bool found = ck_ht_get_spmc(&p->table, h, &e);
    ck_epoch_end(r, NULL);
    if (found)
        *value = (uint64_t)ck_ht_entry_value_direct(&e);
    return found;
}

static bool peer_put(bench_map *m, uint64_t key, uint64_t value)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    ck_epoch_record_t *r = my_record(p);
    ck_ht_hash_t h;
    ck_ht_entry_t e;
    ck_ht_hash_direct(&h, &p->table, (uintptr_t)(key + 1));
    ck_ht_entry_set_direct(&e, h, (uintptr_t)(key + 1), (uintptr_t)value);
    ck_spinlock_fas_lock(&p->writer_lock);
    current_writer_map = p;
    /* set replaces and leaves the previous entry in e: empty key = it was new */
    bool ok = ck_ht_set_spmc(&p->table, h, &e);
    current_writer_map = NULL;
    ck_spinlock_fas_unlock(&p->writer_lock);
    (void)r;
    return ok && ck_ht_entry_empty(&e);
}

/* Set if present, under the writer lock: no other writer can remove the key between the
 * lookup and the set (ck_ht_set_spmc replaces in place; readers see the old or the new value). */
static bool peer_update(bench_map *m, uint64_t key, uint64_t value)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    (void)my_record(p);
    ck_ht_hash_t h;
    ck_ht_entry_t e;
    ck_ht_hash_direct(&h, &p->table, (uintptr_t)(key + 1));
    ck_ht_entry_key_set_direct(&e, (uintptr_t)(key + 1));
    ck_spinlock_fas_lock(&p->writer_lock);
    current_writer_map = p;
    bool found = ck_ht_get_spmc(&p->table, h, &e);
    if (found) {
        ck_ht_entry_set_direct(&e, h, (uintptr_t)(key + 1), (uintptr_t)value);
        found = ck_ht_set_spmc(&p->table, h, &e);
    }
    current_writer_map = NULL;
    ck_spinlock_fas_unlock(&p->writer_lock);
    return found;
}

static bool peer_remove(bench_map *m, uint64_t key)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    (void)my_record(p);
    ck_ht_hash_t h;
    ck_ht_entry_t e;
    ck_ht_hash_direct(&h, &p->table, (uintptr_t)(key + 1));
    ck_ht_entry_key_set_direct(&e, (uintptr_t)(key + 1));
    ck_spinlock_fas_lock(&p->writer_lock);
    current_writer_map = p;
    bool removed = ck_ht_remove_spmc(&p->table, h, &e);
    current_writer_map = NULL;
    ck_spinlock_fas_unlock(&p->writer_lock);
    return removed;
}

static size_t peer_size(bench_map *m)
{
    struct ck_ht_peer *p = (struct ck_ht_peer *)m;
    ck_spinlock_fas_lock(&p->writer_lock);
    size_t n = (size_t)ck_ht_count(&p->table);
    ck_spinlock_fas_unlock(&p->writer_lock);
    return n;
}

const bench_map_impl bench_peer_ck_ht = {
    .name = "ck_ht",
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
