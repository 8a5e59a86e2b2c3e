/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gomap.h - Go's classic hash table (runtime/map.go before Go 1.24) for 64-bit keys and values:
 * the storage that chm_unsafe and chm_rwlock share. Not thread-safe; the callers add misuse
 * detection (unsafe.c) or a lock (rwlock.c). See gomap.c for how it works.
 */
#ifndef CHM_GOMAP_H
#define CHM_GOMAP_H

#include "chm_internal.h"

#define GOMAP_BUCKET_CNT 8

typedef struct gomap_bucket gomap_bucket;
struct gomap_bucket {
    uint8_t tophash[GOMAP_BUCKET_CNT]; /* top byte of each slot's hash, or a slot state */
    uint64_t keys[GOMAP_BUCKET_CNT];   /* keys packed, then values packed: no padding */
    uint64_t vals[GOMAP_BUCKET_CNT];
    gomap_bucket *overflow;
};
_Static_assert(sizeof(gomap_bucket) == 8 + 64 + 64 + 8, "gomap_bucket must not be padded");

typedef struct gomap {
    size_t count;        /* live entries */
    uint8_t B;           /* log2 of the number of buckets */
    size_t bucket_mask;  /* 2^B - 1, kept with B: the lookup's index mask */
    bool same_size_grow; /* the current growth keeps B (it compacts overflow chains) */
    bool reseed;         /* the seed was not chosen by the user: re-randomise when empty */
    size_t noverflow;    /* overflow buckets of `buckets` (exact; Go approximates) */
    uint64_t seed;
    uint64_t hash_mul; /* chm__hash_mul(seed) */
    gomap_bucket *buckets; /* 2^B buckets, then preallocated overflow buckets */
    size_t nalloc;         /* buckets allocated in `buckets` (2^B + preallocated) */
    gomap_bucket *next_overflow, *end_overflow; /* the unused preallocated overflow buckets */
    gomap_bucket *oldbuckets;                   /* non-NULL only while growing */
    size_t old_nalloc;
    size_t nevacuate;     /* old buckets below this index are evacuated */
    uint64_t modcount;    /* structural modifications (Java's modCount) */
    size_t resizes;       /* growths completed since init (chm_stats.resizes) */
    size_t heap_overflow; /* overflow buckets malloc'd one by one and linked into either array */
    size_t key_bytes;     /* bytes of the stored key copies (chm_keys_string only) */
    const chm *owner;     /* key operations and value_free */
} gomap;

/* Iterator state: Go's random start and walk, with Java's fail-fast rule on top (once the map
 * has changed structurally since chm__gomap_iter_init, every step is CHM_ECONCURRENT). */
typedef struct gomap_iter {
    gomap_bucket *buckets;
    size_t mask;
    size_t start;      /* random start bucket, as Go */
    size_t i;          /* buckets started so far */
    gomap_bucket *b;   /* current bucket in a chain, NULL between chains */
    uint8_t offset;    /* random start slot, as Go */
    uint8_t slot;      /* slots of b visited */
    uint64_t modcount; /* the map's modcount at init */
    bool failed;       /* CHM_ECONCURRENT is sticky */
} gomap_iter;

/* What both gomap backends (unsafe.c, rwlock.c) keep in a chm_iter. */
typedef struct gomap_chm_iter {
    struct chm__iter_base base;
    gomap_iter gi;
} gomap_chm_iter;
CHM_ITER_STATIC_ASSERT(gomap_chm_iter);

static inline gomap_chm_iter *gomap_chm_iter_of(chm_iter *it)
{
    return (gomap_chm_iter *)(void *)it->opaque;
}

/* Empty table sized for @hint entries (0 = allocate on first insert). CHM_OK or CHM_ENOMEM. */
CHM_HIDDEN int chm__gomap_init(gomap *g, const chm *owner, size_t hint);

/* Free everything; every value goes to value_free and every stored key to release. */
CHM_HIDDEN void chm__gomap_destroy(gomap *g);

/* CHM_OK (*value set) or CHM_NOTFOUND. Pure read. */
CHM_HIDDEN int chm__gomap_get(const gomap *g, uint64_t key, uint64_t *value);
/* chm__gomap_get for a map with chm_keys_u64: the hash and the comparison inline, a leaf. */
CHM_HIDDEN int chm__gomap_get_u64(const gomap *g, uint64_t key, uint64_t *value);

/*
 * Find-or-insert (Go's mapassign). CHM_EXISTS: *valp points at the present value.
 * CHM_OK: a new slot holds the (retained) key and *valp points at its value, which the caller
 * must set before any other call. CHM_ENOMEM: nothing changed (an overwrite of a present key
 * never fails: if growth cannot progress the key is found where it is).
 */
CHM_HIDDEN int chm__gomap_assign(gomap *g, uint64_t key, uint64_t **valp);

/* chm_put and chm_put_if_absent on the table, under the caller's guard: CHM_OK (inserted with
 * @value), CHM_EXISTS (*prev = the present value, replaced by @value when @overwrite) or
 * CHM_ENOMEM (nothing changed). The caller hands a replaced value to gomap_put_done. */
static inline int gomap_put(gomap *g, uint64_t key, uint64_t value, bool overwrite, uint64_t *prev)
{
    uint64_t *slot;
    int rc = chm__gomap_assign(g, key, &slot);
    if (rc == CHM_OK) {
        *slot = value;
    } else if (rc == CHM_EXISTS) {
        *prev = *slot;
        if (overwrite)
            *slot = value;
    }
    return rc;
}

/* After gomap_put's overwrite (@rc, @prev), outside the caller's guard: *@old = the value
 * replaced, which goes to value_free -- unless it was replaced by itself: then it has not left
 * the map. */
static inline void gomap_put_done(const chm *m, int rc, uint64_t value, uint64_t prev,
                                  uint64_t *old)
{
    if (rc == CHM_EXISTS) {
        if (old != NULL)
            *old = prev;
        if (prev != value)
            chm__value_free(m, prev);
    }
}

/* chm_replace on the table, under the caller's guard: CHM_OK (@expected swapped for @desired),
 * CHM_EXISTS (another value) or CHM_NOTFOUND; never fails. A lookup first, not
 * chm__gomap_assign: replace never inserts, so it must not grow or allocate. On CHM_OK the
 * caller hands @expected to value_free unless @desired is the same value. */
static inline int gomap_replace(gomap *g, uint64_t key, uint64_t expected, uint64_t desired)
{
    uint64_t cur;
    int rc = chm__gomap_get(g, key, &cur);
    if (rc == CHM_OK) {
        if (cur != expected) {
            rc = CHM_EXISTS;
        } else {
            uint64_t *slot;
            (void)chm__gomap_assign(g, key, &slot); /* present: an overwrite, never fails */
            *slot = desired;
        }
    }
    return rc;
}

/*
 * An insert prepared before a compute function runs, so that nothing can fail after it
 * (chm_compute_if_absent on unsafe and rwlock). chm__gomap_reserve does everything that can fail:
 * CHM_EXISTS (*present = the value), CHM_ENOMEM (content unchanged), or CHM_OK: @key is absent,
 * its stored copy is made and a spare overflow bucket is set aside if its chain is full. Then
 * exactly one of: chm__gomap_commit (insert with @value; the table must not have changed
 * structurally since -- modcount equal -- though overwrites and other growth work may have
 * run), or chm__gomap_cancel (drops the spare), after which the caller releases r->stored (outside
 * its lock).
 */
typedef struct gomap_reservation {
    uint64_t hash;
    uint64_t stored;     /* the key's stored copy (keyops retain) */
    gomap_bucket *spare; /* an overflow bucket for a full chain, or NULL */
    bool spare_pooled;   /* spare is one of the array's preallocated overflow buckets */
} gomap_reservation;
CHM_HIDDEN int chm__gomap_reserve(gomap *g, uint64_t key, gomap_reservation *r, uint64_t *present);
CHM_HIDDEN void chm__gomap_commit(gomap *g, gomap_reservation *r, uint64_t value);
CHM_HIDDEN void chm__gomap_cancel(gomap_reservation *r);

/* Remove @key: CHM_OK with *old_value and *old_key (the stored copy, to release by the caller),
 * or CHM_NOTFOUND. Never fails. */
CHM_HIDDEN int chm__gomap_remove(gomap *g, uint64_t key, uint64_t *old_value, uint64_t *old_key);

/* After chm__gomap_remove (@rc, *@v, *@k), outside the caller's guard: *@old = the value, the
 * stored key goes to release and the value to value_free. */
static inline void gomap_remove_done(const chm *m, int rc, const uint64_t *v, const uint64_t *k,
                                     uint64_t *old)
{
    if (rc == CHM_OK) {
        if (old != NULL)
            *old = *v;
        chm__key_release(m, *k);
        chm__value_free(m, *v);
    }
}

/* Remove @key if its value is @expected: CHM_OK (*old_key: the stored copy, to release by the
 * caller; the value removed is @expected), CHM_EXISTS (another value; nothing changed) or
 * CHM_NOTFOUND. Never fails. */
CHM_HIDDEN int chm__gomap_remove_if(gomap *g, uint64_t key, uint64_t expected, uint64_t *old_key);

/*
 * chm_compute on the table, split around the update function like the reservation above:
 * chm__gomap_update_prepare does everything that can fail (the reservation a SET of an absent
 * key needs) and reads what fn sees; the caller runs fn; then exactly one of
 * chm__gomap_update_apply (fn's decision, under the same exclusion as prepare) or
 * chm__gomap_update_abandon (the caller cannot apply it: chm_unsafe saw a race). Both leave in
 * drop_key / drop_value what the caller hands to keyops.release / value_free afterwards (outside
 * its lock): gomap_update_drop.
 */
typedef struct gomap_update {
    gomap_reservation res; /* the insert a SET of an absent key commits (present false) */
    uint64_t old;          /* the value fn sees (0 when absent) */
    uint64_t modcount;     /* the table's modcount when fn started */
    bool present;
    bool drop_key, drop_value; /* set by apply / abandon */
    uint64_t key, value;
} gomap_update;

/* CHM_OK (u->present, u->old say what fn sees) or CHM_ENOMEM (content unchanged, nothing to
 * drop; fn must not run). */
CHM_HIDDEN int chm__gomap_update_prepare(gomap *g, uint64_t key, gomap_update *u);

/* Apply fn's decision @a (value @v for a SET). CHM_OK: present after, *after = its value.
 * CHM_NOTFOUND: absent after. CHM_ECONCURRENT: nothing applied, because the table changed
 * structurally while fn ran, or a present key's value is no longer the one fn saw (a nested
 * overwrite of that key); fn's SET value is then dropped unless it is the map's own value. */
CHM_HIDDEN int chm__gomap_update_apply(gomap *g, uint64_t key, gomap_update *u,
                                       chm_compute_action a, uint64_t v, uint64_t *after);

/* Give the prepared update up without touching the table (it may be racing). */
CHM_HIDDEN void chm__gomap_update_abandon(gomap_update *u, chm_compute_action a, uint64_t v);

static inline void gomap_update_drop(const chm *m, const gomap_update *u)
{
    if (u->drop_key)
        chm__key_release(m, u->key);
    if (u->drop_value)
        chm__value_free(m, u->value);
}

/*
 * chm_clear on the table, in three steps so that the callbacks run outside the caller's lock
 * and nothing is allocated: chm__gomap_clear_detach (under the lock) takes both arrays out of
 * the map, leaving it empty with no array (B kept, so an insert meanwhile allocates the same
 * size) -- false if the map was already empty (nothing detached, no modification);
 * chm__gomap_clear_release (no lock needed: the arrays are the caller's now) hands every entry
 * to the callbacks, frees the old array and empties the current one; chm__gomap_clear_reattach
 * (under the lock again) puts the emptied array back unless an insert has allocated another
 * meanwhile (then it is freed).
 */
typedef struct gomap_cleared {
    gomap_bucket *buckets, *oldbuckets;
    size_t nalloc, old_nalloc, noldbuckets;
    uint8_t B;
} gomap_cleared;
CHM_HIDDEN bool chm__gomap_clear_detach(gomap *g, gomap_cleared *c);
CHM_HIDDEN void chm__gomap_clear_release(const chm *owner, gomap_cleared *c);
CHM_HIDDEN void chm__gomap_clear_reattach(gomap *g, gomap_cleared *c);

/* entries, buckets (slots of the current array: 8 per bucket, 0 before the first insert),
 * bytes (both arrays, the overflow buckets malloc'd apart, chm_keys_string copies; the caller
 * adds its own struct), resizes; pending = 0. */
CHM_HIDDEN void chm__gomap_stats(const gomap *g, chm_stats *st);

/* Finish an incremental growth now (iterators need a table that does not move).
 * CHM_OK or CHM_ENOMEM (the growth then stays partly done, content unchanged). */
CHM_HIDDEN int chm__gomap_finish_growth(gomap *g);

static inline bool gomap_growing(const gomap *g)
{
    return g->oldbuckets != NULL;
}

/* Start iterating; the table must not be growing. @rnd picks the random start. */
CHM_HIDDEN void chm__gomap_iter_init(gomap_iter *it, const gomap *g, uint64_t rnd);

/* chm_iter_next on @g, under the caller's guard (unsafe: its writing flag; rwlock: the read
 * lock): CHM_OK with *key and *value set (either may be NULL), CHM_END, or CHM_ECONCURRENT --
 * from the first step that finds g's modcount moved since init on, whatever happens after
 * (Java's fail-fast iterator). */
CHM_HIDDEN int chm__gomap_iter_next(gomap_iter *it, const gomap *g, uint64_t *key, uint64_t *value);

/* Quiescent self-check: every entry in the bucket its hash selects, counts consistent, tophash
 * states well-formed. Returns 0 when sound, else a negative code naming the first problem (the
 * table GOMAP_INVARIANTS in gomap.c). */
CHM_HIDDEN int chm__gomap_validate(const gomap *g);
CHM_HIDDEN const char *chm__gomap_invariant(int code); /* a chm__gomap_validate code in words */

#endif /* CHM_GOMAP_H */
