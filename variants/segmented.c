/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * segmented.c - chm_segmented: Java 7's ConcurrentHashMap (lock striping) in C.
 *
 * HOW IT WORKS
 *
 * The map is split into `concurrency` segments (default 16, a power of two, at most 2^16). A
 * key's hash picks its segment with its high bits and its bin inside the segment's table with its
 * low bits. Each segment is a small hash table of chained nodes with its own lock, entry count,
 * modification count and table; it grows on its own. Writers lock one segment; readers lock
 * nothing.
 *
 *   chm_get (Java: get)        read section; acquire-load the segment's table, the bin head and
 *                              each `next`; compare keys (other than integer keys: the kept
 *                              hash first, as Java; see "Node memory");
 *                              acquire-load the value. No lock, no store to shared memory.
 *   chm_put, put_if_absent     (Segment.put) lock the segment the Java way (scan_and_lock:
 *                              spin on try-lock up to 64 times while walking the bin, allocating
 *                              the node if the key is absent, then block); on a hit replace the
 *                              value, on a miss link a new node at the bin's head, growing the
 *                              table first when count + 1 > threshold.
 *   chm_remove, chm_replace    (Segment.remove / replace) scan_and_lock without allocating; unlink
 *   chm_remove_if              in place. The unlinked node stays intact for readers standing on
 *                              it and goes to the segment's sack of removed nodes (sack_reserve,
 *                              before the unlink: the only allocation a remove may need).
 *                              remove_if is Segment.remove(key, hash, value).
 *   chm_compute                (Java 8's compute, on a segment) lock as put does, allocate what the
 *                              decision could need (a node and any rehash for an absent key, a
 *                              value record for a present one), run the function under the lock,
 *                              then apply it as put (in-place value store, or link) or remove.
 *   chm_visit                  chm_get's lookup, then the function inside the same read section.
 *   chm_clear (clear)          lock each segment in turn and take its whole table out (one
 *                              store), retired with its chains; the next write makes a new one.
 *   rehash (Segment.rehash)    under the segment lock: double the table; per bin, find lastRun,
 *                              the tail of nodes that all go to one new bin, and reuse it as is
 *                              (each node's bin from its key's hash, recomputed: nodes keep none);
 *                              clone the nodes before it. Old chains are never changed, so a
 *                              reader still walking the old table sees a consistent stale view.
 *                              The new table is published with a release store.
 *   chm_size (size)            up to three unlocked passes summing counts and modification
 *                              counts; done when two passes see the same modification sum,
 *                              otherwise lock every segment and count exactly. chm_stats_get
 *                              takes the unlocked passes only, and reads the tables and per-
 *                              segment counters (rehashes, key-copy bytes) without locks.
 *   iteration (HashIterator)   segments last to first, bins last to first, over the table each
 *                              segment had when the iterator reached it: weakly consistent.
 *
 * Memory ordering. A node is fully written before it is published by a release store (of a bin
 * head or of a `next`), and readers acquire-load every pointer they follow, so a reader that
 * reaches a node sees its key and value. The same holds for tables (release store of
 * segment->table) and for values (release store; a pointer value is safe to dereference).
 * count and modcount are only written under the segment lock; they are relaxed atomics because
 * chm_size reads them without it.
 *
 * Node memory. Nodes come from a pool the map owns (src/pool.h: per-thread stripes of free
 * nodes, slabs given back at chm_free), not from malloc per insert, and a node is 24 bytes: key,
 * next, value. With integer keys it keeps no hash: the walks compare keys (the one compare the
 * hash test would have cost), and the rehash, the one place that needs a node's hash,
 * recomputes it from the key with the seeded mixer (a few instructions). Other keys' nodes keep
 * the hash after the value (32 bytes, struct seg_hnode): recomputing it would be a keyops.hash
 * call per node and doubling, and with it the walks test the hash before calling keyops.equal,
 * as Java 7 does (node_hash, node_matches). Nor does a node carry a
 * reclamation record: a removed node keeps key, value and next for the readers standing on it,
 * so it is collected in its segment's sack instead (see "sacks" below).
 *
 * Reclamation (src/smr.h). Everything a reader may hold is retired, not freed: removed nodes
 * (with their key copy and value, which go to release / value_free after the grace period), in
 * sacks of SEG_SACK_SLOTS; the originals of cloned nodes (their key and value now belong to the
 * clones), in one sack per rehash; old tables; a cleared table with its chains; and replaced
 * values when the map has a value_free (a small record per replaced value). Sacks and cleared
 * tables count as the nodes they hold (smr.h, chm_smr_bulk), so smr.h's R (what one call
 * retires) is a sack's worth for a remove and a segment's nodes for a chm_clear (whose thread
 * reclaims them when the clear returns); THE BOUND also grows by up to a sack less one per
 * segment, the partial sacks (chm__smr_domain_set_flush: chm_reclaim retires them). An
 * iterator holds a read section inside each chm_iter_next only; between calls its table and
 * node stay valid because it is counted open in the domain from chm_iter_init to chm_iter_fini
 * (chm__smr_iter_open/close: what is retired meanwhile is parked, not freed).
 *
 * Layout. Each segment's hot fields (lock and table at the start, count and modcount at the end)
 * take exactly one 64-byte line and segments sit in one array aligned to 64 bytes, so writers on
 * two segments never share a line. With chm_options.packed the array starts 32 bytes into a line
 * instead: every line then holds the second half of one segment and the first half of the next, as
 * two neighbouring heap objects would (Java 7's Segments are plain objects), so the false-sharing
 * benchmark can show what the alignment buys. The counters only chm_stats_get reads (rehashes,
 * key-copy bytes) sit in a separate array, off the hot lines.
 *
 * Deliberate differences from Java 7
 *   - Segment headers are allocated together at creation, in one array; what is created lazily
 *     (ensureSegment's CAS) is each segment's table. Java creates whole Segment objects lazily,
 *     cloning segment 0's parameters; the effect (memory only for segments in use) is the same.
 *   - The lock is the library's futex mutex, src/mutex.h (Java: the Segment *is* a
 *     ReentrantLock). It has the try-lock + blocking lock that scan_and_lock needs and sleeps
 *     in the kernel when the owner is descheduled, which matters on a two-core machine
 *     (Concurrency Kit's locks only spin), in 4 bytes with both fast paths inline: a pthread
 *     mutex, used before, cost two calls into libc per write (an overwrite took 243
 *     instructions, now 182: docs/benchmarks.md, "The write path"). It is not re-entrant: see
 *     compute_if_absent below.
 *   - Allocations that a change needs happen before the change: a rehash allocates the new table
 *     and every clone it will need before touching anything, so CHM_ENOMEM leaves the map intact.
 *     compute_if_absent and chm_compute allocate their node and, when the insert will double the
 *     table, that table and its clones (chm_compute: or, for a present key, the record that
 *     hands a replaced value to value_free), before the function runs: on CHM_ENOMEM the
 *     function did not run, and its decision always applies.
 *   - Hash: the library's seeded 64-bit mixer instead of Java's 32-bit Wang/Jenkins variant;
 *     segment = top 16 bits (masked), bin = low bits.
 *   - chm_compute_if_absent and chm_compute (Java 7 has neither; Java 8's ConcurrentMap defaults
 *     are not atomic; chm_compute is Java 8 CHM's compute, with keep / set / delete) run the
 *     function under the segment lock, so racing callers for one key run it exactly once and
 *     their decisions apply one after another. If the function calls back into the same map
 *     (itself, or from a compute in another map), chm_get, chm_visit, chm_size (unlocked passes
 *     only) and iteration work; any write (chm_clear included) returns CHM_EDEADLK instead of
 *     deadlocking (src/reentry.h knows which maps a thread computes or visits in). A visit
 *     function likewise: reads work, writes get CHM_EDEADLK.
 *   - chm_clear takes each segment's table out whole (Java 7 stores null into every bin and
 *     keeps the table): no walk of the chains under the lock, nothing to allocate, and the
 *     memory goes back with the grace period; a cleared segment's next write makes a table of
 *     the map's initial capacity, as its first write did.
 *   - No null keys or values to reject: every 64-bit key and value is legal.
 *   - Nodes keep no reclamation record, and with integer keys no hash (24 bytes; Java 7's
 *     HashEntry has a final int hash): lookups compare integer keys without testing a hash
 *     first, the rehash recomputes their hashes, and removed nodes wait in sacks (see "Node
 *     memory").
 *   - A remove (chm_remove, chm_remove_if, chm_compute's DELETE) may return CHM_ENOMEM, the map
 *     unchanged, when its segment's sack is full and no new one can be allocated (once per
 *     SEG_SACK_SLOTS removes a sack is taken from the map's pool).
 */
#include "mutex.h"
#include "pool.h"
#include "reentry.h"
#include "smr.h"
#include "torture.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#define MAX_SEGMENTS (1u << 16)
#define MIN_SEGMENT_TABLE_CAPACITY 2
#define MAX_SEGMENT_TABLE_CAPACITY ((size_t)1 << 40) /* Java: 1 << 30 for the whole map */
#define MAX_SCAN_RETRIES 64                          /* Java: 64 on multi-core machines */
#define RETRIES_BEFORE_LOCK 2

/* 24 bytes, from the map's pool: no hash (recomputed from the key where a rehash needs it;
 * other keys than integers keep it, struct seg_hnode) and no reclamation record (a removed node
 * waits in its segment's sack; see "Node memory" above). At a 24-byte stride one node in four
 * straddles two cache lines; key and next, the two words every step of a chain walk reads, are
 * adjacent, so only one in eight has them on two lines (with the value between them, two in
 * eight: 1.4% more simulated L2 misses in a churn, docs/benchmarks.md). */
struct seg_node {
    uint64_t key; /* immutable: the stored copy */
    _Atomic(struct seg_node *) next;
    _Atomic uint64_t value; /* release store, acquire load */
};
_Static_assert(sizeof(struct seg_node) == 24, "a node is three words");

/* A node of a map whose keys are not integers (chm_keys_string, a user's keyops): 32 bytes, the
 * key's hash kept after the node. Recomputing it is a keyops.hash call (a walk over a string),
 * which every rehash would pay for every node, twice (1.75 times the instructions of a growth
 * to 200,000 string keys); and with it the walks test the hash before calling keyops.equal, as
 * Java does. Immutable from before the node is published until it is freed, so lock-free
 * readers may read it too. See node_hash. */
struct seg_hnode {
    struct seg_node n;
    uint64_t hash;
};

/* Nodes retired together, counted as what they hold (smr.h, chm_smr_bulk): a segment's removed
 * nodes (one sack at a time, filled under its lock), or the originals a rehash cloned. */
struct seg_sack {
    chm_smr_bulk smr; /* weight: n, set when the sack is retired */
    atomic_uint n;    /* nodes in it; written under the segment lock, read by chm_stats_get */
    unsigned cap;
    struct seg_node *node[];
};
/* A segment's sack of removed nodes: one 2 KiB block from the map's sack pool. */
#define SEG_SACK_BYTES 2048
#define SEG_SACK_SLOTS ((SEG_SACK_BYTES - sizeof(struct seg_sack)) / sizeof(struct seg_node *))
_Static_assert(SEG_SACK_SLOTS >= 200, "a sack amortises its retire over many removes");

struct seg_table {
    chm_smr_bulk smr; /* weight 1 when a rehash retires it, 1 + its nodes when chm_clear does */
    size_t mask;      /* number of bins - 1 */
    size_t threshold; /* grow when count would exceed it: 3/4 of the bins, as Java */
    _Atomic(struct seg_node *) bins[];
};

/* A segment's hot fields: exactly one cache line (see Layout). */
struct segment {
    chm__mutex lock;                   /* Java's ReentrantLock: src/mutex.h */
    _Atomic(struct seg_table *) table; /* NULL until the segment's first write, and after clear */
    /* The sack this segment's removes fill: NULL, or not full. Written under the lock (release:
     * chm_stats_get's acquire load then sees its fields); see sack_reserve. */
    _Atomic(struct seg_sack *) sack;
    /* The counts at the end of the line, the lock and table at its start: every write touches
     * both halves, so the packed layout (half a line in, see Layout) puts one segment's counts
     * on the line of the next one's lock, as two neighbouring objects would share it. */
    unsigned char gap[CHM_CACHELINE - 5 * sizeof(uint64_t)];
    atomic_size_t count;    /* written under lock; relaxed (chm_size reads it) */
    atomic_size_t modcount; /* likewise */
};
_Static_assert(sizeof(struct segment) == CHM_CACHELINE, "a segment is one cache line");
_Static_assert(offsetof(struct segment, table) < CHM_CACHELINE / 2 &&
                   offsetof(struct segment, count) >= CHM_CACHELINE / 2,
               "hot fields in both halves of the line (the packed layout's false sharing)");

/* A segment's cold fields, for chm_stats_get only: kept out of the hot line (which has no room
 * left) in an array of their own. Written under the segment's lock, rarely (a rehash; an insert
 * or removal on a map with chm_keys_string); relaxed atomics because chm_stats_get reads them
 * without the lock. Four segments share a line: the writes are too rare to matter. */
struct seg_cold {
    atomic_size_t resizes;   /* rehashes completed */
    atomic_size_t key_bytes; /* bytes of the stored key copies that chm_keys_string made */
};

struct seg_map {
    chm base;
    chm_smr_domain *domain; /* read-only after create */
    unsigned nsegments;
    size_t initial_capacity; /* bins of a segment's first table */
    void *segments_raw;      /* the allocation; segments points 0 or 32 bytes into it */
    struct segment *segments;
    struct seg_cold *cold; /* one per segment */
    chm_pool *nodes;       /* every seg_node of the map (src/pool.h) */
    chm_pool *sacks;       /* the segments' sacks of removed nodes (SEG_SACK_BYTES each) */
};

struct seg_iter {
    struct chm__iter_base base;
    int seg;               /* current segment, counting down */
    size_t bin;            /* next bin to visit in t, counting down; 0 = none left */
    struct seg_table *t;   /* the segment's table when the iterator reached it */
    struct seg_node *node; /* next node of the current chain */
};
CHM_ITER_STATIC_ASSERT(struct seg_iter);

static struct seg_map *as_seg(chm *m)
{
    return (struct seg_map *)m;
}

static inline struct segment *segment_for(struct seg_map *m, uint64_t hash)
{
    return &m->segments[(hash >> 48) & (m->nsegments - 1)];
}

static inline _Atomic(struct seg_node *) *bin_for(struct seg_table *t, uint64_t hash)
{
    return &t->bins[hash & t->mask];
}

/* ---- reclamation callbacks (run after a grace period) ----------------------------------- */

/* Nodes come from the map's pool: no malloc or free per write, no malloc header or rounding per
 * node, and the memory goes back to the system with the map (src/pool.h). NULL when out of
 * memory. */
static struct seg_node *node_alloc(struct seg_map *m)
{
    return chm__pool_alloc(m->nodes);
}

/* A node no reader has seen (never linked), or NULL. */
static void node_discard(struct seg_map *m, struct seg_node *e)
{
    if (e != NULL)
        chm__pool_put(m->nodes, e);
}

/* A node that has left the map for good (removed, past its grace period; or the map is being
 * freed): its key copy and value go to release / value_free, its memory back to the pool. */
static void node_free_full(struct seg_map *m, struct seg_node *e)
{
    chm__key_release(&m->base, e->key);
    chm__value_free(&m->base, atomic_load_explicit(&e->value, memory_order_relaxed));
    chm__pool_put(m->nodes, e);
}

/* ---- sacks: how removed nodes reach the reclamation --------------------------------------
 *
 * A node has no reclamation record: a removed node still has to keep key, value and next for
 * the readers standing on it, so there is no word to link it into a retire queue with. The
 * segment collects its removed nodes instead, under the lock every remove holds anyway, in a
 * sack: an array of node pointers, appended to with plain stores. A full sack is retired as one
 * bulk object (smr.h, chm_smr_bulk) that counts as its nodes, so the batch rule and THE BOUND
 * still count nodes, while the reclamation pays one CAS per sack and its free_fn walks an array
 * (prefetching ahead) instead of a chain of cache misses. The nodes in a segment's partial sack
 * are retired too (chm_stats_get counts them in pending): the barriers of chm_reclaim retire
 * partial sacks first (seg_flush), and chm_free frees them.
 *
 * The price: a remove needs a free slot before it unlinks (sack_reserve). The segment's sack is
 * NULL or has room (a sack is retired the moment it fills), so that is a load and a test, and a
 * pool allocation once per SEG_SACK_SLOTS removes; when that allocation fails the remove returns
 * CHM_ENOMEM with the map unchanged. A rehash's originals go in a sack of the exact size,
 * allocated with the new table before anything changes. chm_clear needs no sack: it retires a
 * segment's whole table with its chains (free_table_cleared). */

#define SEG_FREE_AHEAD 4 /* nodes a sack's free_fn prefetches ahead of the one it frees */

static unsigned sack_count(struct seg_sack *k)
{
    return atomic_load_explicit(&k->n, memory_order_relaxed); /* written under the lock only */
}

/* A full sack of removed nodes, after its grace period: free each, then the sack. */
static void free_sack_removed(chm_smr_node *n, void *owner)
{
    struct seg_sack *k = (struct seg_sack *)n;
    struct seg_map *m = owner;
    unsigned cnt = sack_count(k);
    for (unsigned i = 0; i < cnt; i++) {
        if (i + SEG_FREE_AHEAD < cnt)
            __builtin_prefetch(k->node[i + SEG_FREE_AHEAD], 1);
        node_free_full(m, k->node[i]);
    }
    chm__pool_put(m->sacks, k);
}

/* A rehash's sack of cloned originals: the clones own their keys and values. */
static void free_sack_shells(chm_smr_node *n, void *owner)
{
    struct seg_sack *k = (struct seg_sack *)n;
    struct seg_map *m = owner;
    unsigned cnt = sack_count(k);
    for (unsigned i = 0; i < cnt; i++)
        chm__pool_put(m->nodes, k->node[i]);
    chm__free(k);
}

/* Retire @k, which holds its n nodes, for @free_fn. */
static void sack_retire(struct seg_map *m, struct seg_sack *k, chm_smr_free_fn *free_fn)
{
    k->smr.weight = sack_count(k);
    chm__smr_retire_bulk(m->domain, &k->smr, free_fn, false);
}

/* Before a remove unlinks anything: make sure @s has a sack with a free slot. false = out of
 * memory (nothing changed). Under the lock. */
static bool sack_reserve(struct seg_map *m, struct segment *s)
{
    if (chm_likely(atomic_load_explicit(&s->sack, memory_order_relaxed) != NULL))
        return true; /* never full: sack_add retires a sack as it fills */
    struct seg_sack *k = chm__pool_alloc(m->sacks);
    if (k == NULL)
        return false;
    atomic_store_explicit(&k->n, 0, memory_order_relaxed);
    k->cap = (unsigned)SEG_SACK_SLOTS;
    /* Release pairs with chm_stats_get's acquire load: it reads n of an initialised sack. */
    atomic_store_explicit(&s->sack, k, memory_order_release);
    return true;
}

/* Put the unlinked node @e in @s's sack (sack_reserve made room); retire the sack if that fills
 * it. Under the lock. */
static void sack_add(struct seg_map *m, struct segment *s, struct seg_node *e)
{
    struct seg_sack *k = atomic_load_explicit(&s->sack, memory_order_relaxed);
    unsigned n = sack_count(k);
    k->node[n++] = e;
    atomic_store_explicit(&k->n, n, memory_order_relaxed);
    if (n == k->cap) {
        atomic_store_explicit(&s->sack, NULL, memory_order_relaxed);
        sack_retire(m, k, free_sack_removed);
    }
}

/* The flush hook of the map's domain (smr.h, chm__smr_domain_set_flush): retire every partial
 * sack, so that chm_reclaim (and the tests' barrier) find their nodes in the queues. Takes each
 * segment's lock whose sack holds a node; the caller holds none. */
static void seg_flush(void *owner)
{
    struct seg_map *m = owner;
    for (unsigned i = 0; i < m->nsegments; i++) {
        struct segment *s = &m->segments[i];
        if (atomic_load_explicit(&s->sack, memory_order_relaxed) == NULL)
            continue; /* a sack installed meanwhile holds what was removed after the call */
        chm__mutex_lock(&s->lock);
        struct seg_sack *k = atomic_load_explicit(&s->sack, memory_order_relaxed);
        if (k != NULL && sack_count(k) != 0) {
            atomic_store_explicit(&s->sack, NULL, memory_order_relaxed);
            sack_retire(m, k, free_sack_removed);
        }
        chm__mutex_unlock(&s->lock);
    }
}

/* A table chm_clear took out of its segment with every node still linked in it: free the nodes
 * in full, then the table. The older tables that share some of these nodes (a rehash's shared
 * tails) free only themselves, and no node of these chains is in a sack: each is freed once. */
static void free_table_cleared(chm_smr_node *n, void *owner)
{
    struct seg_table *t = (struct seg_table *)n;
    struct seg_map *m = owner;
    for (size_t b = 0; b <= t->mask; b++) {
        struct seg_node *e = atomic_load_explicit(&t->bins[b], memory_order_relaxed);
        while (e != NULL) {
            struct seg_node *next = atomic_load_explicit(&e->next, memory_order_relaxed);
            node_free_full(m, e);
            e = next;
        }
    }
    chm__free(t);
}

/* ---- tables and segments ---------------------------------------------------------------- */

static struct seg_table *new_table(size_t nbins)
{
    if (nbins > MAX_SEGMENT_TABLE_CAPACITY)
        return NULL;
    struct seg_table *t = chm__calloc(1, sizeof *t + nbins * sizeof t->bins[0]);
    if (t == NULL)
        return NULL;
    t->mask = nbins - 1;
    t->threshold = nbins - nbins / 4;
    return t;
}

/* Java's ensureSegment, for the table: create it at first use; racing creators agree by CAS. */
static struct seg_table *ensure_table(struct seg_map *m, struct segment *s)
{
    /* Acquire pairs with the release CAS below or the release store in rehash(): a table seen
     * here is fully initialised. */
    struct seg_table *t = atomic_load_explicit(&s->table, memory_order_acquire);
    if (t != NULL)
        return t;
    struct seg_table *fresh = new_table(m->initial_capacity);
    if (fresh == NULL)
        return NULL;
    CHM_YIELD_POINT("seg.ensure_table.before_cas"); /* racing creators */
    /* Release publishes the zeroed bins; acquire on failure reads the winner's table. */
    if (atomic_compare_exchange_strong_explicit(&s->table, &t, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    chm__free(fresh); /* never published: no grace period needed */
    return t;
}

/* @s's table, loaded under its lock (or NULL: taken by chm_clear). Acquire, although the lock
 * orders every table change made under it (rehash, clear): after a clear, the table may have
 * been created by another thread's ensure_table CAS outside the lock, and this load pairs with
 * that release (the zeroed bins). */
static struct seg_table *current_table(struct segment *s)
{
    return atomic_load_explicit(&s->table, memory_order_acquire);
}

/* @s's table under its lock, created if chm_clear took it since the caller's ensure_table; NULL
 * when out of memory (nothing changed). */
static struct seg_table *table_or_new(struct seg_map *m, struct segment *s)
{
    struct seg_table *t = current_table(s);
    if (chm_likely(t != NULL))
        return t;
    struct seg_table *fresh = new_table(m->initial_capacity);
    if (fresh == NULL)
        return NULL;
    /* A CAS, not a store, although the lock is held: ensure_table's CAS from NULL does not take
     * the lock, and a store could overwrite (and leak) the table it installed since our load.
     * Release publishes the zeroed bins; acquire on failure reads the winner's (as there). */
    if (atomic_compare_exchange_strong_explicit(&s->table, &t, fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    chm__free(fresh); /* never published */
    return t;
}

/* A node's hash: for integer keys recomputed from the key (the seeded mixer: a few
 * instructions; such nodes keep no hash, see "Node memory"), for other keys the one kept after
 * the node (struct seg_hnode). */
static inline uint64_t node_hash(const struct seg_map *m, const struct seg_node *e)
{
    if (chm_likely(m->base.int_keys))
        return chm__hash_u64(e->key, m->base.seed, m->base.hash_mul);
    return ((const struct seg_hnode *)e)->hash;
}

/* Set @e's hash where it is kept (not for integer keys). Before @e is published. */
static inline void node_set_hash(const struct seg_map *m, struct seg_node *e, uint64_t hash)
{
    if (!m->base.int_keys)
        ((struct seg_hnode *)e)->hash = hash;
}

/* Whether @e holds @key, whose hash is @hash: integer keys compare at once; other keys test the
 * kept hash before calling keyops.equal. Inside a read section or under the lock. */
static inline bool node_matches(const chm *m, const struct seg_node *e, uint64_t hash, uint64_t key)
{
    if (chm_likely(m->int_keys))
        return e->key == key;
    return ((const struct seg_hnode *)e)->hash == hash && m->keys->equal(e->key, key);
}

/* ---- lookup ----------------------------------------------------------------------------- */

/* The node for @key in @t, or NULL. Call inside a read section or under the segment lock. */
/* @u64: the map has integer keys, known where the caller is (seg_get_u64): the comparison is
 * then a plain ==, without chm__key_equal's test of m->int_keys. */
static inline struct seg_node *find_in(const chm *m, struct seg_table *t, uint64_t hash,
                                       uint64_t key, bool u64)
{
    /* Acquire loads pair with the release stores that publish nodes (insert, unlink, rehash):
     * a node reached here has its hash, key and value visible. */
    struct seg_node *e = atomic_load_explicit(bin_for(t, hash), memory_order_acquire);
    for (; e != NULL; e = atomic_load_explicit(&e->next, memory_order_acquire))
        if (u64 ? e->key == key : node_matches(m, e, hash, key))
            return e;
    return NULL;
}

static struct seg_node *find(const chm *m, struct seg_table *t, uint64_t hash, uint64_t key)
{
    return find_in(m, t, hash, key, false);
}

/* The lock-free lookup of chm_get and chm_visit: the key's node, or NULL. Call inside a read
 * section, which keeps the node (and its value, see load_value) valid until it ends. One
 * function for both, so they share the yield points and the linearization argument. */
static inline struct seg_node *lookup_in(struct seg_map *m, uint64_t hash, uint64_t key, bool u64)
{
    struct segment *s = segment_for(m, hash);
    /* Acquire pairs with the table's publication (ensure_table's CAS, rehash's store). */
    struct seg_table *t = atomic_load_explicit(&s->table, memory_order_acquire);
    if (t == NULL)
        return NULL;
    CHM_YIELD_POINT("seg.get.table_loaded"); /* a rehash may publish and retire t */
    struct seg_node *e = find_in(&m->base, t, hash, key, u64);
    if (e != NULL)
        CHM_YIELD_POINT("seg.get.before_value"); /* e may be unlinked and retired */
    return e;
}

static inline struct seg_node *lookup(struct seg_map *m, uint64_t hash, uint64_t key)
{
    return lookup_in(m, hash, key, false);
}

/* A found node's value, lock-free: the linearization point of chm_get and chm_visit. */
static inline uint64_t load_value(struct seg_node *e)
{
    /* Acquire pairs with the release store of the value (store_value, prepare/link): what a
     * pointer value points to was written before the put that stored it. */
    return atomic_load_explicit(&e->value, memory_order_acquire);
}

/* chm_get with the hash already computed (compute_if_absent's fast path reuses it). */
static int get_hashed(struct seg_map *m, uint64_t hash, uint64_t key, uint64_t *value)
{
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct seg_node *e = lookup(m, hash, key);
    if (e != NULL) {
        uint64_t v = load_value(e);
        if (value != NULL)
            *value = v;
        rc = CHM_OK;
    }
    chm__smr_read_unlock();
    return rc;
}

static int seg_get(chm *cm, uint64_t key, uint64_t *value)
{
    return get_hashed(as_seg(cm), chm__hash(cm, key), key, value);
}

/* get for integer keys (ops.get_u64): get_hashed as a leaf function, every call a tail call
 * (smr.h, chm__smr_lookup_begin), the hash and the key comparison inline. */
static int seg_get_u64(chm *cm, uint64_t key, uint64_t *value)
{
    chm__smr_reader *r = chm__smr_lookup_begin();
    if (chm_unlikely(r == NULL))
        return seg_get(cm, key, value); /* the fast path is off (smr.h) */
    struct seg_node *e =
        lookup_in(as_seg(cm), chm__hash_u64(key, cm->seed, cm->hash_mul), key, true);
    if (e == NULL)
        return chm__smr_lookup_return(r, CHM_NOTFOUND);
    uint64_t v = load_value(e);
    if (value != NULL)
        *value = v;
    return chm__smr_lookup_return(r, CHM_OK);
}

/* ---- locking (Segment.scanAndLockForPut / scanAndLock) ---------------------------------- */

/*
 * Take the segment lock, spinning on try-lock while walking the key's bin so the chain is in
 * cache when the lock comes, then blocking. With @prealloc, allocate the node if the walk finds
 * the key absent (the allocation overlaps the wait). As Java, every other retry checks whether
 * the bin's head changed and rescans if it did.
 */
static void scan_and_lock(struct seg_map *m, struct segment *s, uint64_t hash, uint64_t key,
                          struct seg_node **prealloc)
{
    if (chm__mutex_trylock(&s->lock))
        return;
    int retries = -1;
    chm__smr_read_lock();
    /* NULL: chm_clear took the table; the writer makes a new one under the lock. */
    struct seg_table *t = atomic_load_explicit(&s->table, memory_order_acquire);
    struct seg_node *first =
        t != NULL ? atomic_load_explicit(bin_for(t, hash), memory_order_acquire) : NULL;
    struct seg_node *e = first;
    while (!chm__mutex_trylock(&s->lock)) {
        CHM_YIELD_POINT("seg.scan.retry"); /* the holder may rehash or relink the bin */
        if (retries < 0) {
            if (e == NULL) {
                if (prealloc != NULL && *prealloc == NULL)
                    *prealloc = node_alloc(m); /* NULL: retried under lock */
                retries = 0;
            } else if (node_matches(&m->base, e, hash, key)) {
                retries = 0;
            } else {
                e = atomic_load_explicit(&e->next, memory_order_acquire);
            }
        } else if (++retries > MAX_SCAN_RETRIES) {
            chm__smr_read_unlock(); /* do not hold up grace periods while asleep */
            chm__mutex_lock(&s->lock);
            return;
        } else if ((retries & 1) == 0) {
            t = atomic_load_explicit(&s->table, memory_order_acquire);
            struct seg_node *f =
                t != NULL ? atomic_load_explicit(bin_for(t, hash), memory_order_acquire) : NULL;
            if (f != first) {
                e = first = f;
                retries = -1;
            }
        }
    }
    chm__smr_read_unlock();
}

static void unlock(struct segment *s)
{
    chm__mutex_unlock(&s->lock);
}

static void bump(atomic_size_t *c, ptrdiff_t delta)
{
    /* Relaxed: only the lock holder writes it; chm_size's unlocked reads need atomicity only. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (size_t)delta,
                          memory_order_relaxed);
}

static struct seg_cold *cold_of(struct seg_map *m, struct segment *s)
{
    return &m->cold[s - m->segments];
}

/* The bytes of a stored key copy that chm_stats_get counts: chm_keys_string's copies (the
 * string and its NUL, as str_retain allocates them); 0 for every other key set, whose copies,
 * if any, have a size the map cannot know. */
static size_t key_bytes(const struct seg_map *m, uint64_t stored)
{
    if (chm_likely(m->base.int_keys) || m->base.keys != &chm_keys_string)
        return 0;
    return strlen((const char *)(uintptr_t)stored) + 1;
}

/* ---- rehash (Segment.rehash) ------------------------------------------------------------ */

/* Count the nodes rehash must clone: those before each chain's lastRun. */
static size_t clones_needed(const struct seg_map *m, struct seg_table *old, size_t newmask)
{
    size_t n = 0;
    for (size_t i = 0; i <= old->mask; i++) {
        struct seg_node *e = atomic_load_explicit(&old->bins[i], memory_order_relaxed);
        if (e == NULL)
            continue;
        size_t run = 0, since = 0, last_idx = node_hash(m, e) & newmask;
        for (struct seg_node *p = e; p != NULL;
             p = atomic_load_explicit(&p->next, memory_order_relaxed)) {
            size_t k = node_hash(m, p) & newmask;
            if (k != last_idx) {
                last_idx = k;
                run += since;
                since = 0;
            }
            since++;
        }
        n += run;
    }
    return n;
}

/* What doubling a table needs, allocated before anything changes: the new table and one node
 * per clone. Prepared while the lock is held; the table cannot change until it is used. */
struct seg_grow {
    struct seg_table *nt;    /* NULL: nothing prepared */
    struct seg_node *pool;   /* clones to be, chained through next */
    struct seg_sack *shells; /* room for the originals of the clones (NULL: none cloned) */
};

static void grow_discard(struct seg_map *m, struct seg_grow *g)
{
    while (g->pool != NULL) {
        struct seg_node *next = atomic_load_explicit(&g->pool->next, memory_order_relaxed);
        node_discard(m, g->pool);
        g->pool = next;
    }
    chm__free(g->shells);
    g->shells = NULL;
    chm__free(g->nt);
    g->nt = NULL;
}

/* Allocate everything doubling @old needs into @g; false = out of memory (nothing held). */
static bool grow_prepare(struct seg_map *m, struct seg_table *old, struct seg_grow *g)
{
    g->pool = NULL;
    g->shells = NULL;
    if ((g->nt = new_table((old->mask + 1) * 2)) == NULL)
        return false;
    size_t n = clones_needed(m, old, g->nt->mask);
    if (n == 0)
        return true;
    if (n > UINT_MAX ||
        (g->shells = chm__malloc(sizeof *g->shells + n * sizeof g->shells->node[0])) == NULL) {
        grow_discard(m, g);
        return false;
    }
    atomic_store_explicit(&g->shells->n, 0, memory_order_relaxed);
    g->shells->cap = (unsigned)n;
    for (; n > 0; n--) {
        struct seg_node *c = node_alloc(m);
        if (c == NULL) {
            grow_discard(m, g);
            return false;
        }
        /* a free list until the node is used (relaxed: this thread's alone) */
        atomic_store_explicit(&c->next, g->pool, memory_order_relaxed);
        g->pool = c;
    }
    return true;
}

/* Whether linking one more node into @s's table @t doubles it first (Java: count > threshold). */
static bool needs_grow(struct segment *s, struct seg_table *t)
{
    return atomic_load_explicit(&s->count, memory_order_relaxed) + 1 > t->threshold &&
           t->mask + 1 < MAX_SEGMENT_TABLE_CAPACITY;
}

/*
 * Double @s's table and link @node (whose hash is @hash) into the new one, with what
 * grow_prepare allocated (@g is consumed). Nothing can fail here. Called under the lock.
 */
static void rehash(struct seg_map *m, struct segment *s, struct seg_table *old,
                   struct seg_node *node, uint64_t hash, struct seg_grow *g)
{
    struct seg_table *nt = g->nt;
    struct seg_node *pool = g->pool;
    struct seg_sack *shells = g->shells;
    g->nt = NULL;
    g->pool = NULL;
    g->shells = NULL;

    /* The originals of cloned nodes go in the shells sack, retired only once the new table is
     * published: retiring one earlier would let a grace period start while new readers can
     * still reach it through the old table. */
    unsigned nshells = 0;
    for (size_t i = 0; i <= old->mask; i++) {
        struct seg_node *e = atomic_load_explicit(&old->bins[i], memory_order_relaxed);
        if (e == NULL)
            continue;
        struct seg_node *next = atomic_load_explicit(&e->next, memory_order_relaxed);
        size_t idx = node_hash(m, e) & nt->mask;
        if (next == NULL) { /* a single node moves as it is */
            atomic_store_explicit(&nt->bins[idx], e, memory_order_relaxed);
            continue;
        }
        struct seg_node *last_run = e;
        size_t last_idx = idx;
        for (struct seg_node *p = next; p != NULL;
             p = atomic_load_explicit(&p->next, memory_order_relaxed)) {
            size_t k = node_hash(m, p) & nt->mask;
            if (k != last_idx) {
                last_idx = k;
                last_run = p;
            }
        }
        /* The tail from lastRun is shared by both tables; the prefix is cloned. */
        atomic_store_explicit(&nt->bins[last_idx], last_run, memory_order_relaxed);
        for (struct seg_node *p = e; p != last_run;
             p = atomic_load_explicit(&p->next, memory_order_relaxed)) {
            struct seg_node *c = pool;
            pool = atomic_load_explicit(&c->next, memory_order_relaxed);
            uint64_t h = node_hash(m, p);
            size_t k = h & nt->mask;
            c->key = p->key;
            node_set_hash(m, c, h);
            atomic_store_explicit(&c->value, atomic_load_explicit(&p->value, memory_order_relaxed),
                                  memory_order_relaxed);
            atomic_store_explicit(&c->next,
                                  atomic_load_explicit(&nt->bins[k], memory_order_relaxed),
                                  memory_order_relaxed);
            atomic_store_explicit(&nt->bins[k], c, memory_order_relaxed);
            shells->node[nshells++] = p; /* clones_needed counted exactly these */
        }
    }
    _Atomic(struct seg_node *) *b = bin_for(nt, hash);
    atomic_store_explicit(&node->next, atomic_load_explicit(b, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(b, node, memory_order_relaxed);
    CHM_YIELD_POINT("seg.rehash.before_publish"); /* readers on the old table */
    /* Release publishes the whole new table (bins, clones, the new node) to readers, whose
     * acquire load of s->table pairs with it. Nothing of it was visible before. */
    atomic_store_explicit(&s->table, nt, memory_order_release);
    CHM_YIELD_POINT("seg.rehash.before_retire"); /* readers still walking the old chains */
    /* Now unreachable for new readers; readers still on the old table hold up the grace period. */
    if (shells != NULL) {
        atomic_store_explicit(&shells->n, nshells, memory_order_relaxed);
        sack_retire(m, shells, free_sack_shells);
    }
    chm__smr_retire_soon(m->domain, &old->smr.smr, chm__smr_free_plain); /* and the shells */
    bump(&cold_of(m, s)->resizes, 1); /* for chm_stats_get */
}

/* ---- writes ----------------------------------------------------------------------------- */

/* Link a prepared node (key and value set; @hash its key's) at the head of its bin, through the
 * doubled table when @g holds one (grow_prepare, called because needs_grow said so). Under the
 * lock; cannot fail. */
static void link_prepared(struct seg_map *m, struct segment *s, struct seg_table *t,
                          struct seg_node *node, uint64_t hash, struct seg_grow *g)
{
    size_t c = atomic_load_explicit(&s->count, memory_order_relaxed) + 1;
    if (g->nt != NULL) {
        rehash(m, s, t, node, hash, g);
    } else {
        _Atomic(struct seg_node *) *b = bin_for(t, hash);
        atomic_store_explicit(&node->next, atomic_load_explicit(b, memory_order_relaxed),
                              memory_order_relaxed);
        CHM_YIELD_POINT("seg.link.before_publish");
        /* Release pairs with readers' acquire load of the bin head: they see the node whole. */
        atomic_store_explicit(b, node, memory_order_release);
    }
    bump(&s->modcount, 1);
    atomic_store_explicit(&s->count, c, memory_order_relaxed);
    size_t kb = key_bytes(m, node->key);
    if (kb != 0)
        bump(&cold_of(m, s)->key_bytes, (ptrdiff_t)kb);
}

/* The node for @key in @t under the segment lock, with the link that points to it in *@link
 * (the bin head or the predecessor's `next`), as Segment.remove walks; NULL if absent. */
static struct seg_node *find_link(const chm *cm, struct seg_table *t, uint64_t hash, uint64_t key,
                                  _Atomic(struct seg_node *) **link)
{
    _Atomic(struct seg_node *) *l = bin_for(t, hash);
    struct seg_node *e = atomic_load_explicit(l, memory_order_relaxed); /* the lock orders it */
    while (e != NULL && !node_matches(cm, e, hash, key)) {
        l = &e->next;
        e = atomic_load_explicit(l, memory_order_relaxed);
    }
    *link = l;
    return e;
}

/*
 * Segment.remove's step, shared by every removal (chm_remove, chm_remove_if, a chm_compute that
 * deletes): unlink @e, found at *@link in @s's current table, and put it in the segment's sack
 * with its key and value (release / value_free after the grace period). Returns the value it
 * held, read before: once the sack is retired, a reclaiming thread may free the node (this
 * thread is not in a read section). Under the lock, after sack_reserve; cannot fail.
 */
static uint64_t unlink_node(struct seg_map *m, struct segment *s, _Atomic(struct seg_node *) *link,
                            struct seg_node *e)
{
    CHM_YIELD_POINT("seg.remove.before_unlink"); /* readers walk past e */
    /* Release: readers that load the link and follow it acquire the successor whole. The
     * removed node keeps its own `next`, so a reader standing on it walks on. */
    atomic_store_explicit(link, atomic_load_explicit(&e->next, memory_order_relaxed),
                          memory_order_release);
    bump(&s->modcount, 1);
    bump(&s->count, -1);
    size_t kb = key_bytes(m, e->key);
    if (kb != 0)
        bump(&cold_of(m, s)->key_bytes, -(ptrdiff_t)kb);
    uint64_t v = atomic_load_explicit(&e->value, memory_order_relaxed); /* only we write it */
    CHM_YIELD_POINT("seg.remove.before_retire"); /* unlinked, readers still on it */
    sack_add(m, s, e);
    return v;
}

/* Segment.put's hit, shared by chm_put, chm_replace and a chm_compute that sets a present key:
 * store @value into @e in place. The caller hands the value it replaces to chm__value_retire
 * (after this store: readers that load it are in sections the grace period waits for). Under
 * the lock. */
static void store_value(struct segment *s, struct seg_node *e, uint64_t value)
{
    CHM_YIELD_POINT("seg.put.before_value_store");
    /* Release pairs with the acquire load in load_value (chm_get, chm_visit) and iteration. */
    atomic_store_explicit(&e->value, value, memory_order_release);
    bump(&s->modcount, 1);
}

/* link_prepared, allocating first what a doubling needs. CHM_OK, or CHM_ENOMEM (not linked,
 * nothing changed). */
static int link_node(struct seg_map *m, struct segment *s, struct seg_table *t,
                     struct seg_node *node, uint64_t hash)
{
    struct seg_grow g = {NULL, NULL, NULL};
    if (needs_grow(s, t) && !grow_prepare(m, t, &g))
        return CHM_ENOMEM;
    link_prepared(m, s, t, node, hash, &g);
    return CHM_OK;
}

/* Fill a node for an absent key: retain the key (the node may come from the scan). Inline (every
 * insert runs it; out of line it cost an insert 25 instructions, tools/instr_count.sh). */
static inline __attribute__((always_inline)) struct seg_node *
prepare_node(struct seg_map *m, struct seg_node *node, uint64_t hash, uint64_t key, uint64_t value)
{
    if (node == NULL && (node = node_alloc(m)) == NULL)
        return NULL;
    uint64_t stored;
    if (!chm__key_retain(&m->base, key, &stored)) {
        node_discard(m, node);
        return NULL;
    }
    node->key = stored;
    node_set_hash(m, node, hash);
    atomic_store_explicit(&node->value, value, memory_order_relaxed);
    atomic_store_explicit(&node->next, NULL, memory_order_relaxed);
    return node;
}

/* The writers' entry for a key that may be inserted: create the segment's table if needed, take
 * the lock (the scan may preallocate *node) and find the key. Returns the locked segment, with
 * its table in *t and the key's node (or NULL) in *e; NULL when the table cannot be allocated
 * (unlocked, *node given back). */
static struct segment *lock_for_insert(struct seg_map *m, uint64_t hash, uint64_t key,
                                       struct seg_node **node, struct seg_table **t,
                                       struct seg_node **e)
{
    struct segment *s = segment_for(m, hash);
    if (ensure_table(m, s) == NULL)
        return NULL;
    scan_and_lock(m, s, hash, key, node);
    if ((*t = table_or_new(m, s)) == NULL) { /* cleared meanwhile, and no memory for a table */
        unlock(s);
        node_discard(m, *node);
        *node = NULL;
        return NULL;
    }
    *e = find(&m->base, *t, hash, key);
    return s;
}

/* Segment.put: CHM_OK (inserted), CHM_EXISTS (*prev set; replaced unless only_if_absent). */
static int seg_put_common(chm *cm, uint64_t key, uint64_t value, bool only_if_absent,
                          uint64_t *prev)
{
    struct seg_map *m = as_seg(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key);
    struct seg_node *node = NULL, *e;
    struct seg_table *t;
    struct segment *s = lock_for_insert(m, hash, key, &node, &t, &e);
    if (s == NULL)
        return CHM_ENOMEM;
    int rc;
    chm_value_retire *rec = NULL;
    if (e != NULL) {
        *prev = atomic_load_explicit(&e->value, memory_order_relaxed);
        rc = CHM_EXISTS;
        if (!only_if_absent) {
            /* No record when the value stays: a value replaced by itself has not left. */
            if (*prev != value && !chm__value_retire_reserve(cm, &rec)) {
                rc = CHM_ENOMEM;
            } else {
                store_value(s, e, value);
                chm__value_retire(cm, m->domain, &rec, *prev);
            }
        }
    } else if ((node = prepare_node(m, node, hash, key, value)) == NULL) {
        rc = CHM_ENOMEM;
    } else if (link_node(m, s, t, node, hash) != CHM_OK) {
        chm__key_release(cm, node->key);
        rc = CHM_ENOMEM;
    } else {
        node = NULL; /* linked */
        rc = CHM_OK;
    }
    unlock(s);
    node_discard(m, node); /* an unused preallocation, or the node of a failed insert */
    return rc;
}

static int seg_put(chm *cm, uint64_t key, uint64_t value, uint64_t *old)
{
    uint64_t prev = 0;
    int rc = seg_put_common(cm, key, value, false, &prev);
    if (rc == CHM_EXISTS && old != NULL)
        *old = prev;
    return rc;
}

static int seg_put_if_absent(chm *cm, uint64_t key, uint64_t value, uint64_t *current)
{
    uint64_t prev = 0;
    int rc = seg_put_common(cm, key, value, true, &prev);
    if (rc == CHM_EXISTS && current != NULL)
        *current = prev;
    return rc;
}

static int seg_compute_if_absent(chm *cm, uint64_t key, chm_compute_fn *fn, void *arg,
                                 uint64_t *value)
{
    struct seg_map *m = as_seg(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    uint64_t v = 0, hash = chm__hash(cm, key);
    if (get_hashed(m, hash, key, &v) == CHM_OK) { /* fast path, lock-free: present */
        if (value != NULL)
            *value = v;
        return CHM_EXISTS;
    }
    struct seg_node *node = NULL, *e;
    struct seg_table *t;
    struct seg_grow g = {NULL, NULL, NULL};
    struct segment *s = lock_for_insert(m, hash, key, &node, &t, &e);
    if (s == NULL)
        return CHM_ENOMEM;
    if (e != NULL) {
        v = atomic_load_explicit(&e->value, memory_order_relaxed);
        rc = CHM_EXISTS;
    } else if ((node = prepare_node(m, node, hash, key, 0)) == NULL) {
        rc = CHM_ENOMEM; /* before fn: it does not run */
    } else if (needs_grow(s, t) && !grow_prepare(m, t, &g)) {
        chm__key_release(cm, node->key);
        rc = CHM_ENOMEM; /* likewise: every allocation comes before fn, so fn's value is
                            never lost to a failure after it */
    } else {
        v = chm__reentry_run(cm, CHM__HOLD_PART, fn, key, arg); /* nested writes: EDEADLK */
        atomic_store_explicit(&node->value, v, memory_order_relaxed);
        /* The table is still t, and g was prepared for it: only this lock holder could change
         * it, and fn's writes to this map were refused. */
        link_prepared(m, s, t, node, hash, &g);
        node = NULL;
        rc = CHM_OK;
    }
    unlock(s);
    node_discard(m, node);
    if (rc >= 0 && value != NULL)
        *value = v;
    return rc;
}

/* Take @s's lock (nothing to preallocate) and find the key in its current table: its node or
 * NULL (also when chm_clear took the table), and in *link the link that points to it (for
 * unlink_node). */
static inline struct seg_node *lock_find(struct seg_map *m, struct segment *s, uint64_t hash,
                                         uint64_t key, _Atomic(struct seg_node *) **link)
{
    scan_and_lock(m, s, hash, key, NULL);
    struct seg_table *t = current_table(s);
    if (t == NULL)
        return NULL;
    return find_link(&m->base, t, hash, key, link);
}

/* Java 7's Segment.remove(key, hash, value) and Segment.replace(key, hash, oldValue, newValue)
 * in one body, as Java 8's replaceNode: under the segment lock, find the key's node, then
 *   - @remove (chm_remove, and chm_remove_if when @cv: only if it holds @expected): unlink it
 *     into the segment's sack with its key and value (release / value_free after the grace
 *     period), CHM_ENOMEM with nothing changed if the sack is full and no new one can be had;
 *   - else (chm_replace): if it holds @expected, store @desired, the old value retired through a
 *     record allocated before the lock (none when desired == expected: the value stays).
 * A segment without a table holds no key (never written, or cleared): the key is absent,
 * linearizable at that acquire load (it pairs with the table's publication, ensure_table's CAS),
 * and no lock is taken. Otherwise the compare and the write happen under the lock, the linearization point of
 * every outcome. Inline into each caller, so each compiles for its own flags. */
static inline __attribute__((always_inline)) int replace_node(chm *cm, uint64_t key, bool remove,
                                                              bool cv, uint64_t expected,
                                                              uint64_t desired, uint64_t *old)
{
    struct seg_map *m = as_seg(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key);
    struct segment *s = segment_for(m, hash);
    if (atomic_load_explicit(&s->table, memory_order_acquire) == NULL)
        return CHM_NOTFOUND;
    chm_value_retire *rec = NULL;
    if (!remove && expected != desired && !chm__value_retire_reserve(cm, &rec))
        return CHM_ENOMEM;
    _Atomic(struct seg_node *) *link;
    struct seg_node *e = lock_find(m, s, hash, key, &link);
    int rc = CHM_NOTFOUND;
    if (e != NULL) {
        if ((cv || !remove) && atomic_load_explicit(&e->value, memory_order_relaxed) != expected) {
            rc = CHM_EXISTS;
        } else if (remove && !sack_reserve(m, s)) {
            rc = CHM_ENOMEM;
        } else if (remove) {
            uint64_t v = unlink_node(m, s, link, e);
            if (old != NULL)
                *old = v;
            rc = CHM_OK;
        } else {
            store_value(s, e, desired);
            chm__value_retire(cm, m->domain, &rec, expected); /* no record if it stays */
            rc = CHM_OK;
        }
    }
    unlock(s);
    chm__value_retire_discard(cm, rec);
    return rc;
}

/* chm_remove: Segment.remove(key, hash, null). */
static int seg_remove(chm *cm, uint64_t key, uint64_t *old)
{
    return replace_node(cm, key, true, false, 0, 0, old);
}

/* Segment.replace(key, hash, oldValue, newValue). */
static int seg_replace(chm *cm, uint64_t key, uint64_t expected, uint64_t desired)
{
    return replace_node(cm, key, false, false, expected, desired, NULL);
}

/*
 * chm_compute: Java 8's ConcurrentHashMap.compute on one segment (Java 7 has none). Like
 * compute_if_absent, always under the segment lock (no lock-free fast path: every outcome
 * depends on fn). Once the lock is held and the key looked up, everything the decision could
 * need is allocated before fn runs -- for an absent key the node (with its key copy) and, when
 * linking it would double the table, that table and its clones (grow_prepare); for a present
 * key the record that hands a replaced value to value_free and a slot in the segment's sack for
 * a DELETE (sack_reserve; the node goes there with its value) -- so CHM_ENOMEM means fn did not
 * run and nothing changed, and fn's decision is never lost. fn runs with (map, CHM__HOLD_PART) pushed: a nested write to this map
 * returns CHM_EDEADLK (this lock is not re-entrant), nested reads work. Nothing fn can do
 * changes the segment meanwhile (its writes are refused, other threads wait for the lock), so
 * the node found, its link and the prepared growth are still right when the decision applies.
 * Linearization point: the store that applies the decision (the value store, the bin-head store
 * of link_prepared or of rehash's table publication, the unlink store), or for a KEEP the read
 * of the key's state under the lock. Unused reservations are freed after the unlock.
 */
static int seg_compute(chm *cm, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result)
{
    struct seg_map *m = as_seg(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    uint64_t hash = chm__hash(cm, key);
    struct segment *s = segment_for(m, hash);
    /* Before fn: without a table the key is absent and nothing has changed. */
    if (ensure_table(m, s) == NULL)
        return CHM_ENOMEM;
    struct seg_node *node = NULL; /* the scan may preallocate it */
    scan_and_lock(m, s, hash, key, &node);
    struct seg_table *t = table_or_new(m, s);
    if (t == NULL) { /* cleared meanwhile, and no memory for a table: fn does not run */
        unlock(s);
        node_discard(m, node);
        return CHM_ENOMEM;
    }
    _Atomic(struct seg_node *) *link;
    struct seg_node *e = find_link(cm, t, hash, key, &link);
    chm_value_retire *rec = NULL;
    struct seg_grow g = {NULL, NULL, NULL};
    uint64_t old = 0, v = 0;
    if (e != NULL) {
        old = atomic_load_explicit(&e->value, memory_order_relaxed); /* only we write it */
        /* A SET may replace old: its record now, used or not; a DELETE needs a sack slot. */
        if (!chm__value_retire_reserve(cm, &rec) || !sack_reserve(m, s))
            rc = CHM_ENOMEM;
    } else if ((node = prepare_node(m, node, hash, key, 0)) == NULL) {
        rc = CHM_ENOMEM; /* a SET would insert: no node, no fn */
    } else if (needs_grow(s, t) && !grow_prepare(m, t, &g)) {
        chm__key_release(cm, node->key); /* never published */
        rc = CHM_ENOMEM;
    }
    if (rc == CHM_OK) {
        chm_compute_action a =
            chm__reentry_update(cm, CHM__HOLD_PART, fn, key, e != NULL, old, &v, arg);
        if (e != NULL && a == CHM_COMPUTE_DELETE) {
            (void)unlink_node(m, s, link, e); /* old goes to value_free with the node */
            rc = CHM_NOTFOUND;
        } else if (e != NULL) {
            if (a == CHM_COMPUTE_SET && v != old) {
                store_value(s, e, v);
                chm__value_retire(cm, m->domain, &rec, old);
            } else {
                v = old; /* KEEP, or a SET of the value it holds: nothing leaves the map */
            }
        } else if (a == CHM_COMPUTE_SET) {
            /* Relaxed: link_prepared's release store publishes the whole node. */
            atomic_store_explicit(&node->value, v, memory_order_relaxed);
            link_prepared(m, s, t, node, hash, &g); /* consumes g */
            node = NULL;
        } else {
            chm__key_release(cm, node->key); /* absent and stays so: the node was never seen */
            rc = CHM_NOTFOUND;
        }
    }
    unlock(s);
    node_discard(m, node); /* an unused preallocation or prepared node */
    chm__value_retire_discard(cm, rec); /* unused unless a different value was set */
    grow_discard(m, &g);
    if (rc == CHM_OK && result != NULL)
        *result = v;
    return rc;
}

/* chm_remove_if: Segment.remove(key, hash, value), the mirror of seg_replace. The node is
 * retired with its value, which is @expected. */
static int seg_remove_if(chm *cm, uint64_t key, uint64_t expected)
{
    return replace_node(cm, key, true, true, expected, 0, NULL);
}

/*
 * chm_clear: Java 7's clear(), a segment at a time: lock it, take its whole table out (the
 * segment is left without one, as before its first write; the next write makes a new table of
 * the map's initial size) and retire the table with every node still linked in it, as one bulk
 * counting those nodes (free_table_cleared: their keys and values go to release / value_free
 * after the grace period). Java stores null into every bin and keeps the table; taking the
 * table needs no allocation and no walk of the chains under the lock, so clear never returns
 * CHM_ENOMEM and costs O(segments) under the locks. Each segment's clear is one store, the
 * linearization point of the removal of all its keys; count, modcount and stored-key bytes
 * follow. Readers and weakly consistent iterators keep their guarantees: a reader or iterator
 * standing in the old table walks on through its unchanged chains, which stay valid until it
 * leaves its section (iterators: until chm_iter_fini, smr.h). Only one segment lock is held at
 * a time, so clear never waits for a lock while holding another. A segment without a table,
 * or with an empty one, is skipped. Refused (CHM_EDEADLK) from a compute or visit function of
 * this map: it would wait for the lock its own thread holds.
 */
static int seg_clear(chm *cm)
{
    struct seg_map *m = as_seg(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    for (unsigned i = 0; i < m->nsegments; i++) {
        struct segment *s = &m->segments[i];
        /* Acquire pairs with the table's publication: NULL = nothing to remove (a key put
         * meanwhile is a concurrent put, which may survive). */
        if (atomic_load_explicit(&s->table, memory_order_acquire) == NULL)
            continue;
        chm__mutex_lock(&s->lock);
        struct seg_table *t = current_table(s);
        size_t n = atomic_load_explicit(&s->count, memory_order_relaxed);
        if (t != NULL && n != 0) {
            /* Relaxed: NULL publishes nothing; a writer that finds it makes a new table
             * (table_or_new), and a reader that loads it finds nothing. */
            atomic_store_explicit(&s->table, NULL, memory_order_relaxed);
            bump(&s->modcount, 1);
            atomic_store_explicit(&s->count, 0, memory_order_relaxed);
            atomic_store_explicit(&cold_of(m, s)->key_bytes, 0, memory_order_relaxed);
            t->smr.weight = n + 1; /* its nodes and itself */
            chm__smr_retire_bulk(m->domain, &t->smr, free_table_cleared, true);
        }
        unlock(s);
    }
    return CHM_OK;
}

/* ---- size ------------------------------------------------------------------------------- */

/* Java 7's size(): up to three unlocked passes, then (if @may_lock) every segment lock. */
static size_t count_entries(struct seg_map *m, bool may_lock)
{
    size_t last = 0, size = 0;
    int retries = -1;
    bool locked = false;
    for (;;) {
        if (retries++ == RETRIES_BEFORE_LOCK && may_lock) {
            for (unsigned i = 0; i < m->nsegments; i++)
                chm__mutex_lock(&m->segments[i].lock);
            locked = true;
        }
        size_t sum = 0;
        size = 0;
        for (unsigned i = 0; i < m->nsegments; i++) {
            sum += atomic_load_explicit(&m->segments[i].modcount, memory_order_relaxed);
            size += atomic_load_explicit(&m->segments[i].count, memory_order_relaxed);
        }
        if (sum == last || locked || retries > RETRIES_BEFORE_LOCK + 1)
            break;
        last = sum;
        CHM_YIELD_POINT("seg.size.between_passes");
    }
    if (locked)
        for (unsigned i = 0; i < m->nsegments; i++)
            chm__mutex_unlock(&m->segments[i].lock);
    return size;
}

/*
 * chm_size. Inside a compute function this thread holds a segment lock: locking all would
 * deadlock, so it gets the unlocked estimate. Inside a visit function (CHM__HOLD_READ: this
 * thread is in a read section) it gets the unlocked estimate too. The library itself never
 * waits for a grace period while it holds a segment lock (writers reclaim after their outermost
 * call, locks released), so taking the locks in a read section would be safe on its own; but a
 * compute function runs under a segment lock and may call anything on other maps, chm_free (a
 * grace-period wait) included, and a visit function blocked on that lock would hold up the very
 * grace period the lock's holder waits for. chm.h promises that what a visit function calls
 * never locks what a writer may hold.
 */
static size_t seg_size(chm *cm)
{
    return count_entries(as_seg(cm), !chm__reentry_holds(cm));
}

/* ---- visit, stats ----------------------------------------------------------------------- */

/*
 * chm_visit: chm_get's lookup (lookup, load_value: same linearization point, the acquire load of
 * the value), then fn with that value while the read section is still held. A value replaced or
 * removed meanwhile reaches value_free only after a grace period that starts after the store
 * that replaced or unlinked it (chm__value_retire, unlink_node), so it waits for this section:
 * fn may dereference a pointer value. fn gets the caller's @key (equal to the stored one). It
 * runs with (map, CHM__HOLD_READ) pushed: a nested write, compute or clear of this map returns
 * CHM_EDEADLK; nested chm_get, chm_visit (nested sections) and chm_size (unlocked, see seg_size)
 * work.
 */
static int seg_visit(chm *cm, uint64_t key, chm_visit_fn *fn, void *arg)
{
    struct seg_map *m = as_seg(cm);
    uint64_t hash = chm__hash(cm, key);
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct seg_node *e = lookup(m, hash, key);
    if (e != NULL) {
        chm__reentry_visit(cm, fn, key, load_value(e), arg);
        rc = CHM_OK;
    }
    chm__smr_read_unlock();
    return rc;
}

/*
 * chm_stats_get, lock-free: no segment lock, so it never waits for a writer (entries come from
 * chm_size's unlocked passes only). The tables are read inside a read section (a rehash may
 * retire one). What `bytes` counts: the map struct, the segment array (with its extra line for
 * the alignment), the cold counters, each segment's current table (header and bins), the slabs
 * of the node pool, the sack pool and the value records' pool (live, free and retired objects
 * alike), and
 * the bytes of chm_keys_string's key copies (an exact running sum per segment). Not counted:
 * the SMR domain (a small fixed struct private to smr.c), old tables retired and not yet freed
 * (`pending` counts retired objects), the key copies of other keyops with retain (their size is
 * unknown), malloc's rounding. `resizes`: segment
 * rehashes (table doublings) since chm_new; a segment's first table is not a resize.
 */
static void seg_stats(chm *cm, chm_stats *st)
{
    struct seg_map *m = as_seg(cm);
    size_t entries = count_entries(m, false);
    size_t buckets = 0, resizes = 0, keyb = 0, sacked = 0;
    size_t bytes = sizeof *m + (size_t)(m->nsegments + 1) * CHM_CACHELINE +
                   (size_t)m->nsegments * sizeof m->cold[0];
    chm__smr_read_lock();
    for (unsigned i = 0; i < m->nsegments; i++) {
        /* Acquire pairs with the table's publication: its mask is initialised. */
        struct seg_table *t = atomic_load_explicit(&m->segments[i].table, memory_order_acquire);
        if (t != NULL) {
            buckets += t->mask + 1;
            bytes += sizeof *t + (t->mask + 1) * sizeof t->bins[0];
        }
        resizes += atomic_load_explicit(&m->cold[i].resizes, memory_order_relaxed);
        keyb += atomic_load_explicit(&m->cold[i].key_bytes, memory_order_relaxed);
        /* Acquire pairs with sack_reserve's release: n is initialised. The section keeps a
         * sack retired meanwhile from being freed. */
        struct seg_sack *k = atomic_load_explicit(&m->segments[i].sack, memory_order_acquire);
        if (k != NULL)
            sacked += sack_count(k);
    }
    chm__smr_read_unlock();
    st->entries = entries;
    st->buckets = buckets;
    st->bytes = bytes + chm__pool_bytes(m->nodes) + chm__pool_bytes(m->sacks) +
                chm__value_retire_bytes(cm) + keyb;
    st->resizes = resizes;
    st->pending = chm__smr_pending(m->domain) + sacked; /* the partial sacks' nodes too */
}

/* ---- iteration (HashIterator) ----------------------------------------------------------- */

static struct seg_iter *as_iter(chm_iter *it)
{
    return (struct seg_iter *)(void *)it->opaque;
}

static int seg_iter_init(chm_iter *it, chm *cm)
{
    struct seg_iter *si = as_iter(it);
    si->seg = (int)as_seg(cm)->nsegments;
    si->bin = 0;
    si->t = NULL;
    si->node = NULL;
    /* Counted open until chm_iter_fini: the table and node kept between calls stay valid. No
     * read section here: nothing shared is loaded yet. */
    chm__smr_iter_open(as_seg(cm)->domain);
    return CHM_OK;
}

static int seg_iter_next(chm_iter *it, uint64_t *key, uint64_t *value)
{
    struct seg_iter *si = as_iter(it);
    struct seg_map *m = as_seg(si->base.m);
    chm__smr_read_lock();
    while (si->node == NULL) {
        if (si->bin == 0) {
            if (si->seg == 0) {
                chm__smr_read_unlock();
                return CHM_END;
            }
            si->seg--;
            /* Acquire pairs with the table's publication. */
            si->t = atomic_load_explicit(&m->segments[si->seg].table, memory_order_acquire);
            si->bin = si->t != NULL ? si->t->mask + 1 : 0;
            continue;
        }
        si->bin--;
        si->node = atomic_load_explicit(&si->t->bins[si->bin], memory_order_acquire);
        if (si->node != NULL)
            CHM_YIELD_POINT("seg.iter.head_loaded"); /* the chain may change under the walk */
    }
    struct seg_node *e = si->node;
    si->node = atomic_load_explicit(&e->next, memory_order_acquire);
    if (key != NULL)
        *key = e->key;
    if (value != NULL)
        *value = atomic_load_explicit(&e->value, memory_order_acquire);
    chm__smr_read_unlock();
    return CHM_OK;
}

static void seg_iter_fini(chm_iter *it)
{
    chm__smr_iter_close(as_seg(as_iter(it)->base.m)->domain);
}

/* ---- self-check ------------------------------------------------------------------------- */

/* The invariants seg_validate checks, one line each: the name it returns, the number (stable:
 * messages print it) and what it means. seg_invariant's switch is generated from this table, so a
 * number used twice does not compile (duplicate case). */
#define SEG_INVARIANTS(X)                                                                          \
    X(SEG_INV_COUNT, -1, "a segment's count differs from its chains")                              \
    X(SEG_INV_HASH, -2, "a kept hash differs from its key's")                                      \
    X(SEG_INV_WRONG_BIN, -3, "node in the wrong bin or segment")                                   \
    X(SEG_INV_DUPLICATE, -4, "duplicate key in a chain")                                           \
    X(SEG_INV_NOT_GROWN, -5, "table above its threshold (a rehash was missed)")                    \
    X(SEG_INV_LOCKED, -6, "a segment lock still held")                                             \
    X(SEG_INV_MODCOUNT, -7, "modcount below count")                                                \
    X(SEG_INV_TABLE_SHAPE, -8, "table size or threshold malformed")                                \
    X(SEG_INV_KEY_BYTES, -9, "a segment's stored-key byte count differs from its chains")          \
    X(SEG_INV_SACK, -10, "a segment's sack is full, or holds a node still linked in its table")

CHM__INVARIANT_ENUM(seg_invariant, SEG_INVARIANTS);

static int seg_validate(chm *cm)
{
    struct seg_map *m = as_seg(cm);
    for (unsigned i = 0; i < m->nsegments; i++) {
        struct segment *s = &m->segments[i];
        struct seg_table *t = atomic_load_explicit(&s->table, memory_order_acquire);
        size_t n = 0, kb = 0;
        if (chm__mutex_held(&s->lock))
            return SEG_INV_LOCKED;
        struct seg_sack *k = atomic_load_explicit(&s->sack, memory_order_acquire);
        if (k != NULL) { /* sack_add retires a sack as it fills; removed nodes are unlinked */
            if (sack_count(k) >= k->cap)
                return SEG_INV_SACK;
            for (unsigned j = 0; t != NULL && j < sack_count(k); j++)
                if (find(cm, t, node_hash(m, k->node[j]), k->node[j]->key) == k->node[j])
                    return SEG_INV_SACK;
        }
        if (atomic_load_explicit(&s->modcount, memory_order_relaxed) <
            atomic_load_explicit(&s->count, memory_order_relaxed))
            return SEG_INV_MODCOUNT;
        if (t != NULL) {
            size_t nbins = t->mask + 1;
            if ((nbins & t->mask) != 0 || nbins < m->initial_capacity ||
                t->threshold != nbins - nbins / 4)
                return SEG_INV_TABLE_SHAPE;
            for (size_t b = 0; b <= t->mask; b++) {
                for (struct seg_node *e = atomic_load_explicit(&t->bins[b], memory_order_acquire);
                     e != NULL; e = atomic_load_explicit(&e->next, memory_order_acquire)) {
                    uint64_t h = node_hash(m, e);
                    if (h != chm__hash(cm, e->key))
                        return SEG_INV_HASH;
                    if ((h & t->mask) != b || segment_for(m, h) != s)
                        return SEG_INV_WRONG_BIN;
                    if (find(cm, t, h, e->key) != e)
                        return SEG_INV_DUPLICATE;
                    n++;
                    kb += key_bytes(m, e->key);
                }
            }
            if (n > t->threshold && t->mask + 1 < MAX_SEGMENT_TABLE_CAPACITY)
                return SEG_INV_NOT_GROWN;
        }
        if (n != atomic_load_explicit(&s->count, memory_order_relaxed))
            return SEG_INV_COUNT;
        if (kb != atomic_load_explicit(&m->cold[i].key_bytes, memory_order_relaxed))
            return SEG_INV_KEY_BYTES;
    }
    return 0;
}

static CHM__INVARIANT_NAMER(seg_invariant, SEG_INVARIANTS)

/* ---- life cycle ------------------------------------------------------------------------- */

static void seg_destroy(chm *cm)
{
    struct seg_map *m = as_seg(cm);
    /* Retired nodes first: their callbacks read the map's header, and once they are done no
     * value_free of this map runs on another thread while the live ones are freed here. */
    chm__smr_drain(m->domain);
    for (unsigned i = 0; i < m->nsegments; i++) {
        struct segment *s = &m->segments[i];
        struct seg_sack *k = atomic_load_explicit(&s->sack, memory_order_relaxed);
        if (k != NULL) /* removed nodes not yet retired: no reader is left */
            free_sack_removed(&k->smr.smr, m);
        struct seg_table *t = atomic_load_explicit(&s->table, memory_order_acquire);
        if (t != NULL) /* the live nodes, and the table */
            free_table_cleared(&t->smr.smr, m);
        if (chm__mutex_held(&s->lock)) /* chm_free while a call on the map runs */
            chm__lock_failed(EBUSY, "segment lock held at chm_free",
                             __FILE__ ":" CHM__STR(__LINE__));
    }
    chm__free(m->cold);
    chm__free(m->segments_raw);
    chm__smr_domain_free(m->domain);
    chm__pool_free(m->nodes); /* after the drain: free_fns put nodes and sacks back */
    chm__pool_free(m->sacks);
    chm__free(m);
}

static const struct chm_ops seg_ops = {
    .get = seg_get,
    .get_u64 = seg_get_u64,
    .put = seg_put,
    .put_if_absent = seg_put_if_absent,
    .remove = seg_remove,
    .replace = seg_replace,
    .compute_if_absent = seg_compute_if_absent,
    .size = seg_size,
    .compute = seg_compute,
    .remove_if = seg_remove_if,
    .clear = seg_clear,
    .visit = seg_visit,
    .stats = seg_stats,
    .iter_init = seg_iter_init,
    .iter_next = seg_iter_next,
    .iter_fini = seg_iter_fini,
    .destroy = seg_destroy,
    .validate = seg_validate,
    .invariant = seg_invariant,
};

static size_t round_up_pow2(size_t x)
{
    size_t p = 1;
    while (p < x)
        p <<= 1;
    return p;
}

static chm *seg_create(const chm_backend *b, const chm_options *opt)
{
    unsigned nseg = opt->concurrency > MAX_SEGMENTS ? MAX_SEGMENTS : opt->concurrency;
    nseg = (unsigned)round_up_pow2(nseg);
    /* Java: per-segment capacity = max(2, ceil(capacity / segments)), a power of two; the
     * threshold is 3/4 of it, so size the table for capacity / 0.75 entries. */
    size_t per = opt->capacity / nseg + (opt->capacity % nseg != 0);
    if (per > MAX_SEGMENT_TABLE_CAPACITY / 2) {
        errno = ENOMEM;
        return NULL;
    }
    per += per / 3;
    size_t cap = round_up_pow2(per < MIN_SEGMENT_TABLE_CAPACITY ? MIN_SEGMENT_TABLE_CAPACITY : per);

    struct seg_map *m = chm__calloc(1, sizeof *m);
    if (m == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    m->domain = chm__smr_domain_new(m, nseg); /* a retire queue per segment, as the pool */
    if (m->domain == NULL) {
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    m->segments_raw = chm__aligned_alloc(CHM_CACHELINE, (size_t)(nseg + 1) * CHM_CACHELINE);
    if (m->segments_raw == NULL) {
        chm__smr_domain_free(m->domain);
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    memset(m->segments_raw, 0, (size_t)(nseg + 1) * CHM_CACHELINE);
    m->cold = chm__calloc(nseg, sizeof *m->cold); /* zeroed: no resize, no key bytes */
    /* As many pool stripes as segments (Java's concurrencyLevel: the writers expected), so
     * writers allocate and free nodes without sharing a line, up to the pool's 64. */
    m->nodes = chm__pool_new(
        opt->keys == &chm_keys_u64 ? sizeof(struct seg_node) : sizeof(struct seg_hnode), nseg);
    /* One stripe: a sack is taken once per SEG_SACK_SLOTS removes. */
    m->sacks = chm__pool_new(SEG_SACK_BYTES, 1);
    if (m->cold == NULL || m->nodes == NULL || m->sacks == NULL) {
        chm__pool_free(m->sacks);
        chm__pool_free(m->nodes);
        chm__free(m->cold);
        chm__free(m->segments_raw);
        chm__smr_domain_free(m->domain);
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    chm__smr_domain_set_pool(m->domain, m->nodes); /* reclamation batches its puts */
    /* chm_reclaim retires the partial sacks, which hold up to a sack less one per segment */
    chm__smr_domain_set_flush(m->domain, seg_flush, (size_t)nseg * (SEG_SACK_SLOTS - 1));
    m->segments =
        (struct segment *)((char *)m->segments_raw + (opt->packed ? CHM_CACHELINE / 2 : 0));
    chm__header_init(&m->base, &seg_ops, b, opt);
    m->nsegments = nseg;
    m->initial_capacity = cap;
    for (unsigned i = 0; i < nseg; i++)
        chm__mutex_init(&m->segments[i].lock);
    if (opt->capacity != 0) { /* presized: create the tables now, so growth never happens */
        for (unsigned i = 0; i < nseg; i++) {
            if (ensure_table(m, &m->segments[i]) == NULL) {
                seg_destroy(&m->base);
                errno = ENOMEM;
                return NULL;
            }
        }
    }
    return &m->base;
}

const chm_backend chm_segmented = {
    .name = "segmented",
    /* ITER_HOLDS_RECLAIM: seg_iter_init counts the iterator open in the domain until
     * seg_iter_fini, and smr.c parks what is reclaimed meanwhile (see "Reclamation" above). */
    .caps = CHM_CAP_THREAD_SAFE | CHM_CAP_STORE_FREE_GET | CHM_CAP_PADDING_SWITCH |
            CHM_CAP_DEFERRED_FREE | CHM_CAP_SEGMENTS | CHM_CAP_ITER_HOLDS_RECLAIM,
    .create = seg_create,
};
