/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * unsafe.c - chm_unsafe: Go's built-in map, for one thread at a time, with Go's detection of
 * concurrent misuse and Java HashMap's fail-fast iteration.
 *
 * HOW IT WORKS
 *
 * The table is gomap.c (Go's classic map, faithfully). This file adds what Go's mapassign,
 * mapaccess and mapiternext do around it:
 *
 *   - A `writing` flag, toggled by every write as Go 1.24 does (`writing ^= 1` on entry, check it
 *     is still set and toggle it back on exit). A write that finds it set reports "concurrent map
 *     writes"; so does a write that finds it cleared on exit (another writer toggled it meanwhile).
 *     A read that finds it set reports "concurrent map read and map write"; an iterator step,
 *     "concurrent map iteration and map write". The report follows chm_options.on_race: print
 *     "chm: <message>" and abort() (Go's fatal error, the default), or return CHM_ERACE.
 *   - The flag is a C11 atomic accessed only with relaxed loads and stores, never a
 *     read-modify-write: single-threaded use pays two plain moves per write, and racing threads
 *     have no undefined behaviour on the flag itself. Detection is best effort, as in Go: two
 *     writers whose flag accesses do not interleave go unnoticed (ThreadSanitizer is the real
 *     tool, and it agrees: see tests/test_race.c).
 *   - Fail-fast iteration: a modification count (Java's modCount) bumped by every structural
 *     change (new key, removed key, growth start). The iterator remembers it and every
 *     chm_iter_next checks it first: CHM_ECONCURRENT once it differs. Value overwrites do not bump
 *     it. chm_iter_init first finishes any incremental growth so the table cannot move under an
 *     iterator without the count changing (gomap.c explains why).
 *
 * Deliberate differences from Go
 *   - Out of memory, bad arguments and detected races are status codes, not crashes (unless the
 *     race policy is abort).
 *   - chm_compute_if_absent calls the function without the writing flag set, so it may read the
 *     map; if it modified the map structurally the call returns CHM_ECONCURRENT and inserts
 *     nothing (Java 9's HashMap.computeIfAbsent throws ConcurrentModificationException there),
 *     handing the function's value to value_free. The insert is prepared before the function
 *     runs (chm__gomap_reserve: the growth, the key copy, an overflow bucket), so CHM_ENOMEM means
 *     the function did not run.
 *   - chm_compute works the same way (fn sees the key's state, its decision is applied in a second
 *     write section; a nested write that changed the map structurally, or the key's value, makes
 *     it CHM_ECONCURRENT). chm_remove_if and chm_clear are writes; chm_clear keeps the current
 *     array (emptied) and frees nothing it would need again. chm_visit is a read that runs its
 *     function with the map marked HOLD_READ on the re-entrancy guard, so that a write from the
 *     function returns CHM_EDEADLK (as on every backend) instead of freeing the value under it:
 *     every write checks the guard first. chm_stats_get is a plain read, as chm_size.
 *   - Iteration starts at a random bucket and slot, as Go's; the draw comes from a per-map
 *     sequence seeded by the hash seed, so a fixed seed gives a reproducible order.
 */
#include "gomap.h"
#include "reentry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct unsafe_map {
    chm base;
    atomic_uchar writing;          /* Go's hashWriting flag; relaxed only (see HOW IT WORKS) */
    atomic_uint_fast64_t iter_rnd; /* per-map source of random iteration starts */
    gomap g;
};

static struct unsafe_map *as_unsafe(chm *m)
{
    return (struct unsafe_map *)m;
}

enum race_kind { RACE_WRITES, RACE_READ, RACE_ITER };

static const char *const race_message[] = {
    [RACE_WRITES] = "concurrent map writes",
    [RACE_READ] = "concurrent map read and map write",
    [RACE_ITER] = "concurrent map iteration and map write",
};

static int race(struct unsafe_map *m, enum race_kind kind)
{
    if (m->base.opt.on_race == CHM_RACE_RETURN)
        return CHM_ERACE;
    fprintf(stderr, "chm: %s\n", race_message[kind]);
    abort();
}

/* Go: `if m.writing != 0 { fatal }; m.writing ^= 1`. Relaxed: the flag orders nothing, it only
 * has to be seen by a racing thread at some point to be useful. */
static bool write_begin(struct unsafe_map *m)
{
    unsigned char w = atomic_load_explicit(&m->writing, memory_order_relaxed);
    if (chm_unlikely(w != 0))
        return false;
    atomic_store_explicit(&m->writing, (unsigned char)(w ^ 1), memory_order_relaxed);
    return true;
}

/* Go: `if m.writing == 0 { fatal }; m.writing ^= 1`: a racing writer toggled it meanwhile. */
static bool write_end(struct unsafe_map *m)
{
    unsigned char w = atomic_load_explicit(&m->writing, memory_order_relaxed);
    if (chm_unlikely(w == 0))
        return false;
    atomic_store_explicit(&m->writing, (unsigned char)(w ^ 1), memory_order_relaxed);
    return true;
}

static bool writer_active(struct unsafe_map *m)
{
    return atomic_load_explicit(&m->writing, memory_order_relaxed) != 0;
}

/* ---- reads ------------------------------------------------------------------------------ */

static int unsafe_get(chm *cm, uint64_t key, uint64_t *value)
{
    struct unsafe_map *m = as_unsafe(cm);
    if (chm_unlikely(writer_active(m)))
        return race(m, RACE_READ);
    return chm__gomap_get(&m->g, key, value);
}

/* get for integer keys (ops.get_u64): the same, through gomap's integer-key lookup. */
static int unsafe_get_u64(chm *cm, uint64_t key, uint64_t *value)
{
    struct unsafe_map *m = as_unsafe(cm);
    if (chm_unlikely(writer_active(m)))
        return race(m, RACE_READ);
    return chm__gomap_get_u64(&m->g, key, value);
}

static size_t unsafe_size(chm *cm)
{
    return as_unsafe(cm)->g.count; /* Go's len(): a plain read */
}

static int unsafe_visit(chm *cm, uint64_t key, chm_visit_fn *fn, void *arg)
{
    /* A read, as chm_get. Nobody else may write the map meanwhile (the contract), so the value
     * is protected by fn's own thread alone: the guard's HOLD_READ entry makes fn's writes to
     * this map return CHM_EDEADLK, as on every backend, instead of freeing the value under it. */
    struct unsafe_map *m = as_unsafe(cm);
    if (chm_unlikely(writer_active(m)))
        return race(m, RACE_READ);
    uint64_t v;
    int rc = chm__gomap_get(&m->g, key, &v);
    if (rc == CHM_OK)
        chm__reentry_visit(cm, fn, key, v, arg);
    return rc;
}

static void unsafe_stats(chm *cm, chm_stats *st)
{
    /* Plain reads, as chm_size: the stats op has no status to report a race with. */
    struct unsafe_map *m = as_unsafe(cm);
    chm__gomap_stats(&m->g, st);
    st->bytes += sizeof *m;
}

/* ---- writes ----------------------------------------------------------------------------- */

/* Shared by put, put_if_absent and compute_if_absent: find-or-insert under the writing flag.
 * `overwrite` replaces a present value (put). Returns the gomap status, or CHM_ERACE. */
static int assign(struct unsafe_map *m, uint64_t key, uint64_t value, bool overwrite,
                  uint64_t *prev)
{
    if (chm__reentry_refuses_write(&m->base)) /* from a chm_visit function: see unsafe_visit */
        return CHM_EDEADLK;
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    int rc = gomap_put(&m->g, key, value, overwrite, prev);
    if (!write_end(m))
        return race(m, RACE_WRITES);
    return rc;
}

static int unsafe_put(chm *cm, uint64_t key, uint64_t value, uint64_t *old)
{
    struct unsafe_map *m = as_unsafe(cm);
    uint64_t prev = 0;
    int rc = assign(m, key, value, true, &prev);
    gomap_put_done(cm, rc, value, prev, old);
    return rc;
}

static int unsafe_put_if_absent(chm *cm, uint64_t key, uint64_t value, uint64_t *current)
{
    uint64_t prev = 0;
    int rc = assign(as_unsafe(cm), key, value, false, &prev);
    if (rc == CHM_EXISTS && current != NULL)
        *current = prev;
    return rc;
}

static int unsafe_compute_if_absent(chm *cm, uint64_t key, chm_compute_fn *fn, void *arg,
                                    uint64_t *value)
{
    struct unsafe_map *m = as_unsafe(cm);
    uint64_t v;
    int rc = chm__reentry_check(cm); /* nested too deep */
    if (rc != CHM_OK)
        return rc;
    rc = unsafe_get(cm, key, &v); /* a present key: a read, as before */
    if (rc != CHM_NOTFOUND) {
        if (rc == CHM_OK && value != NULL)
            *value = v;
        return rc == CHM_OK ? CHM_EXISTS : rc;
    }
    /* Everything the insert needs, before fn (a write: it may grow the table): on CHM_ENOMEM
     * fn does not run, and after fn nothing can fail. */
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    gomap_reservation res;
    rc = chm__gomap_reserve(&m->g, key, &res, &v);
    if (!write_end(m)) {
        if (rc == CHM_OK) {
            chm__gomap_cancel(&res);
            chm__key_release(cm, res.stored);
        }
        return race(m, RACE_WRITES);
    }
    if (rc != CHM_OK) {
        if (rc == CHM_EXISTS && value != NULL) /* impossible without a race */
            *value = v;
        return rc;
    }
    uint64_t before = m->g.modcount;
    /* fn runs without the writing flag, so it may read the map; the map is this thread's alone
     * (the contract), so nested calls simply run; on the guard's stack, this compute counts
     * towards the nesting bound like any other. */
    v = chm__reentry_run(cm, CHM__HOLD_MAP, fn, key, arg);
    rc = m->g.modcount != before ? CHM_ECONCURRENT : !write_begin(m) ? CHM_ERACE : CHM_OK;
    if (rc != CHM_OK) {
        /* fn changed the map under us (or a racing writer holds the flag): insert nothing.
         * fn's value never entered the map and nobody else has it: it goes to value_free, like
         * a value that leaves (the caller may not even have asked for it back). */
        chm__gomap_cancel(&res);
        chm__key_release(cm, res.stored);
        chm__value_free(cm, v);
        return rc == CHM_ECONCURRENT ? rc : race(m, RACE_WRITES);
    }
    chm__gomap_commit(&m->g, &res, v);
    if (!write_end(m))
        return race(m, RACE_WRITES); /* inserted all the same */
    if (value != NULL)
        *value = v;
    return CHM_OK;
}

static int unsafe_remove(chm *cm, uint64_t key, uint64_t *old)
{
    struct unsafe_map *m = as_unsafe(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    uint64_t v, k;
    int rc = chm__gomap_remove(&m->g, key, &v, &k);
    if (!write_end(m))
        return race(m, RACE_WRITES);
    gomap_remove_done(cm, rc, &v, &k, old);
    return rc;
}

static int unsafe_replace(chm *cm, uint64_t key, uint64_t expected, uint64_t desired)
{
    struct unsafe_map *m = as_unsafe(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    int rc = gomap_replace(&m->g, key, expected, desired);
    if (!write_end(m))
        return race(m, RACE_WRITES);
    if (rc == CHM_OK && desired != expected) /* else the value stays: as in unsafe_put */
        chm__value_free(cm, expected);
    return rc;
}

static int unsafe_remove_if(chm *cm, uint64_t key, uint64_t expected)
{
    /* A write even when it removes nothing, as unsafe_replace: the lookup and the removal are
     * one step under the flag. */
    struct unsafe_map *m = as_unsafe(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    uint64_t k;
    int rc = chm__gomap_remove_if(&m->g, key, expected, &k);
    bool raced = !write_end(m);
    if (rc == CHM_OK) { /* removed even if a race is reported: its callbacks are due */
        chm__key_release(cm, k);
        chm__value_free(cm, expected);
    }
    return raced ? race(m, RACE_WRITES) : rc;
}

static int unsafe_compute(chm *cm, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result)
{
    /* As unsafe_compute_if_absent: two write sections around fn, which runs without the flag
     * (so it may read the map, and its nested writes run and are detected as changes). The
     * first does everything that can fail; the second applies fn's decision. */
    struct unsafe_map *m = as_unsafe(cm);
    int rc = chm__reentry_check(cm); /* nested too deep, or from a visit function */
    if (rc != CHM_OK)
        return rc;
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    gomap_update u;
    rc = chm__gomap_update_prepare(&m->g, key, &u);
    if (!write_end(m)) {
        if (rc == CHM_OK) {
            chm__gomap_update_abandon(&u, CHM_COMPUTE_KEEP, 0);
            gomap_update_drop(cm, &u);
        }
        return race(m, RACE_WRITES);
    }
    if (rc != CHM_OK)
        return rc; /* CHM_ENOMEM: fn does not run */
    uint64_t v, after = 0;
    chm_compute_action a =
        chm__reentry_update(cm, CHM__HOLD_MAP, fn, key, u.present, u.old, &v, arg);
    if (!write_begin(m)) {
        /* A racing writer: apply nothing, and do not even read the table it is changing. */
        chm__gomap_update_abandon(&u, a, v);
        gomap_update_drop(cm, &u);
        return race(m, RACE_WRITES);
    }
    rc = chm__gomap_update_apply(&m->g, key, &u, a, v, &after);
    bool raced = !write_end(m);
    gomap_update_drop(cm, &u); /* outside the flag, as unsafe_remove's callbacks */
    if (raced)
        return race(m, RACE_WRITES); /* applied all the same */
    if (rc == CHM_OK && result != NULL)
        *result = after;
    return rc;
}

static int unsafe_clear(chm *cm)
{
    /* One write section throughout: the table is detached, its entries handed to the callbacks
     * and the emptied array put back (gomap.h) without another thread's help, so the split that
     * rwlock needs to run the callbacks outside its lock buys nothing here; a callback that
     * (against the contract) reads this map meanwhile is reported as a race. Nothing allocates,
     * so the only failure is a race, reported after the clear is done. */
    struct unsafe_map *m = as_unsafe(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    if (!write_begin(m))
        return race(m, RACE_WRITES);
    gomap_cleared c;
    if (chm__gomap_clear_detach(&m->g, &c)) {
        chm__gomap_clear_release(cm, &c);
        chm__gomap_clear_reattach(&m->g, &c);
    }
    if (!write_end(m))
        return race(m, RACE_WRITES);
    return CHM_OK;
}

/* ---- iteration -------------------------------------------------------------------------- */

static int unsafe_iter_init(chm_iter *it, chm *cm)
{
    struct unsafe_map *m = as_unsafe(cm);
    if (gomap_growing(&m->g)) { /* finishing the growth is a write */
        if (!write_begin(m))
            return race(m, RACE_ITER);
        int rc = chm__gomap_finish_growth(&m->g);
        if (!write_end(m))
            return race(m, RACE_ITER);
        if (rc != CHM_OK)
            return rc;
    } else if (writer_active(m)) {
        return race(m, RACE_ITER);
    }
    /* Go's mapiterinit draws a random start bucket and slot offset; here from a per-map
     * sequence, so that a fixed seed still gives a reproducible order. Relaxed load and store,
     * no read-modify-write: iterators may run on several threads at once (readers may share a
     * Go map); two that draw the same start only iterate alike. */
    uint64_t rnd =
        chm__mix64(atomic_load_explicit(&m->iter_rnd, memory_order_relaxed) + 1, m->base.seed);
    atomic_store_explicit(&m->iter_rnd, rnd, memory_order_relaxed);
    chm__gomap_iter_init(&gomap_chm_iter_of(it)->gi, &m->g, rnd);
    return CHM_OK;
}

static int unsafe_iter_next(chm_iter *it, uint64_t *key, uint64_t *value)
{
    gomap_chm_iter *gi = gomap_chm_iter_of(it);
    struct unsafe_map *m = as_unsafe(gi->base.m);
    if (chm_unlikely(writer_active(m)))
        return race(m, RACE_ITER);
    return chm__gomap_iter_next(&gi->gi, &m->g, key, value);
}

static void unsafe_iter_fini(chm_iter *it)
{
    (void)it; /* holds nothing */
}

/* ---- life cycle ------------------------------------------------------------------------- */

static void unsafe_destroy(chm *cm)
{
    struct unsafe_map *m = as_unsafe(cm);
    chm__gomap_destroy(&m->g);
    chm__free(m);
}

static int unsafe_validate(chm *cm)
{
    return chm__gomap_validate(&as_unsafe(cm)->g);
}

static const struct chm_ops unsafe_ops = {
    .get = unsafe_get,
    .get_u64 = unsafe_get_u64,
    .put = unsafe_put,
    .put_if_absent = unsafe_put_if_absent,
    .remove = unsafe_remove,
    .replace = unsafe_replace,
    .compute_if_absent = unsafe_compute_if_absent,
    .size = unsafe_size,
    .compute = unsafe_compute,
    .remove_if = unsafe_remove_if,
    .clear = unsafe_clear,
    .visit = unsafe_visit,
    .stats = unsafe_stats,
    .iter_init = unsafe_iter_init,
    .iter_next = unsafe_iter_next,
    .iter_fini = unsafe_iter_fini,
    .destroy = unsafe_destroy,
    .validate = unsafe_validate,
    .invariant = chm__gomap_invariant,
};

static chm *unsafe_create(const chm_backend *b, const chm_options *opt)
{
    struct unsafe_map *m = chm__calloc(1, sizeof *m);
    if (m == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    chm__header_init(&m->base, &unsafe_ops, b, opt);
    atomic_init(&m->iter_rnd, m->base.seed);
    if (chm__gomap_init(&m->g, &m->base, opt->capacity) != CHM_OK) {
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    return &m->base;
}

const chm_backend chm_unsafe = {
    .name = "unsafe",
    .caps = CHM_CAP_RACE_DETECT | CHM_CAP_FAIL_FAST_ITER | CHM_CAP_COMPUTE_EXCLUSIVE,
    .create = unsafe_create,
};
