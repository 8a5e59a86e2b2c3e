/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pool.h - node memory for the backends: fixed-size objects carved from slabs that the map owns,
 * recycled instead of returned to malloc. Implementation and design in pool.c.
 *
 * Why: a node-based map that mallocs every insert and frees every remove pays glibc twice per
 * write, and more when the free runs on another thread than the malloc (a reclaiming writer
 * frees what any writer allocated: glibc's cross-arena slow path), and every node carries
 * malloc's 8-byte header and rounding (a 56-byte node takes a 64-byte chunk). A pool per map
 * hands out objects of one size from per-thread stripes, so two writers never touch the same
 * free list, and gives its slabs back to the system when the map is freed.
 *
 * Rules:
 *   - chm__pool_alloc may fail (NULL: a new slab could not be allocated); callers allocate
 *     before they change anything, as with malloc.
 *   - chm__pool_put takes an object that no thread can reach any more: never published, or
 *     retired and past its grace period (a free_fn of src/smr.h). It never fails, never blocks
 *     for long (one uncontended spinlock), and may run inside or outside a read-side section.
 *   - chm__pool_free releases every slab; the objects must all be unreachable (chm_free).
 * Thread-safe: any thread may allocate and put concurrently.
 */
#ifndef CHM_POOL_H
#define CHM_POOL_H

#include "chm_internal.h"

typedef struct chm_pool chm_pool;

/* A pool of @objsize-byte objects (rounded up to a multiple of 8, at least 8), aligned to 8 (or
 * 16 if @objsize is a multiple of 16), with @stripes free lists (rounded up to a power of two,
 * at most 64): give it the number of threads expected to write the map. NULL when out of
 * memory. */
CHM_HIDDEN chm_pool *chm__pool_new(size_t objsize, unsigned stripes);

/* Give every slab back. No object of @p may be used afterwards. NULL is a no-op. */
CHM_HIDDEN void chm__pool_free(chm_pool *p);

/* An object of @p (contents undefined), or NULL when out of memory. */
CHM_HIDDEN void *chm__pool_alloc(chm_pool *p);

/* Return @obj to @p for reuse (see the rules above). */
CHM_HIDDEN void chm__pool_put(chm_pool *p, void *obj);

/* Batched puts. Between outer = chm__pool_defer_begin(@p) and chm__pool_defer_end(outer) on
 * one thread, that thread's chm__pool_put calls for @p go to a thread-local chain, which reaches
 * @p's free list in one locked splice every CHM__POOL_DEFER_MAX objects and at
 * chm__pool_defer_end, not one stripe lock per object (a reclamation batch frees thousands:
 * pool.c, HOW IT WORKS, says what that cost). Puts for any other pool go directly, as
 * outside the bracket. Brackets nest (a free_fn's own chm calls may run another domain's
 * batch): begin hands the enclosing bracket's objects to its pool first, end restores the
 * enclosing pool. Rule: @p must outlive the bracket -- src/smr.c brackets the free_fns of a
 * batch of @p's map's domain, and chm_free of that map waits for the batch. */
#define CHM__POOL_DEFER_MAX 256
/* Returns the enclosing bracket's pool (NULL: none), for chm__pool_defer_end. */
CHM_HIDDEN chm_pool *chm__pool_defer_begin(chm_pool *p);
CHM_HIDDEN void chm__pool_defer_end(chm_pool *outer);

/* The bytes @p holds from the system (slabs, free and used objects alike, and the pool itself). */
CHM_HIDDEN size_t chm__pool_bytes(const chm_pool *p);

/* Objects handed out by chm__pool_alloc and not yet put back (for tests and chm_stats: exact
 * when no alloc or put runs concurrently). */
CHM_HIDDEN size_t chm__pool_in_use(const chm_pool *p);

#endif /* CHM_POOL_H */
