/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pool.c - per-map object pools (contract in pool.h).
 *
 * HOW IT WORKS. A pool has up to 64 stripes, one cache line each; a thread always uses the
 * stripe its ticket picks (src/stripes.h: threads numbered in the order they first ask), so
 * two writers of a map take different locks and free lists unless there are more writers than
 * stripes. A stripe holds, under a Concurrency Kit fetch-and-store spinlock:
 *   - a free list of objects, linked through each free object's first word;
 *   - the untouched tail [bump, end) of the slab it carved last.
 * An allocation pops the free list, else carves from the tail, else refills the stripe (under
 * the pool's refill lock: another stripe's whole free list, else a new slab): the
 * first holds 16 objects and each next one twice as many, up to 64 KiB, so a small map costs
 * little and a large one few malloc calls. A put pushes the object on the putting thread's
 * stripe, so objects migrate with the threads that free them: one writer may reclaim what
 * every writer retired (src/smr.h's batches), and without the steal its list would grow while
 * the others' stripes, empty, carved new slabs for ever (measured: 7 MB of slabs for a
 * 1,000-key map after 4 s of churn). A steal moves a whole list in one step, so it happens
 * once per list, not once per object. Inside a reclamation batch (chm__pool_defer_begin/end,
 * pool.h) a put goes onto a thread-local chain instead, spliced onto the same stripe's list
 * under one lock per CHM__POOL_DEFER_MAX objects: a batch's thousands of puts, one lock each,
 * were the largest share of its instructions (callgrind, tools/instr_count.sh).
 * Slabs are linked on the pool and given back only by chm__pool_free: a map that shrinks keeps
 * its slabs for its next growth (as its tables' bins are kept by Java's clear; what it holds is
 * in chm_stats.bytes).
 *
 * Alternatives: malloc/free per node (glibc's tcache serves a thread that frees what it
 * allocated; a reclaiming writer frees every writer's nodes, glibc's slow path), and one
 * lock-free list per pool (a CAS on one line per operation for every writer, and ABA to solve).
 * Measurements: docs/design.md, "Node memory".
 *
 * Sanitizers: under AddressSanitizer a free object is poisoned (its link word too, once
 * written), so a use after chm__pool_put is reported as it would be after free(); under
 * ThreadSanitizer the spinlock, whose atomics are inline assembly TSan cannot see, says what it
 * orders with chm__tsan_acquire/chm__tsan_release (src/sanitizers.h).
 */
#include "pool.h"
#include "sanitizers.h"
#include "stripes.h"

#include <ck_spinlock.h>
#include <stdalign.h>
#include <string.h>

#define pool_poison(p, n) chm__asan_poison((p), (n))
#define pool_unpoison(p, n) chm__asan_unpoison((p), (n))

#define POOL_MAX_STRIPES 64
#define POOL_FIRST_SLAB_OBJS 16
#define POOL_MAX_SLAB_BYTES ((size_t)64 * 1024)

struct pool_slab {
    struct pool_slab *next; /* the pool's slabs, newest first */
    size_t bytes;
    alignas(16) unsigned char objs[];
};

struct pool_stripe {
    alignas(CHM_CACHELINE) ck_spinlock_fas_t lock;
    _Atomic(void *) free;      /* free objects, linked through their first word; written under
                                   the lock, peeked at without it (stripe_steal) */
    unsigned char *bump, *end; /* the last slab's untouched tail */
    size_t next_slab_objs;     /* objects in this stripe's next slab */
    atomic_long in_use;        /* allocs minus puts on this stripe (a sum is exact, a part may
                                   be negative); written under the lock, read without */
};
_Static_assert(sizeof(struct pool_stripe) == CHM_CACHELINE, "a stripe is one cache line");

struct chm_pool {
    size_t objsize;
    unsigned stripe_mask;
    ck_spinlock_fas_t refill; /* serialises refills of empty stripes (pool_refill) */
    _Atomic(struct pool_slab *) slabs;
    atomic_size_t bytes;
    struct pool_stripe stripes[];
};

static struct pool_stripe *stripe_of(chm_pool *p)
{
    return &p->stripes[chm__thread_ticket() & p->stripe_mask];
}

/* The free list's head. Relaxed: under the stripe lock, which orders it; stripe_steal's peek
 * without the lock only decides whether to take the lock. */
static inline void *free_head(struct pool_stripe *s)
{
    return atomic_load_explicit(&s->free, memory_order_relaxed);
}

static inline void set_free_head(struct pool_stripe *s, void *head)
{
    atomic_store_explicit(&s->free, head, memory_order_relaxed);
}

static void stripe_lock(struct pool_stripe *s)
{
    ck_spinlock_fas_lock(&s->lock);
    chm__tsan_acquire(&s->lock); /* pairs with the release in stripe_unlock */
}

static void stripe_unlock(struct pool_stripe *s)
{
    chm__tsan_release(&s->lock);
    ck_spinlock_fas_unlock(&s->lock);
}

chm_pool *chm__pool_new(size_t objsize, unsigned stripes)
{
    objsize = objsize < sizeof(void *) ? sizeof(void *) : (objsize + 7) & ~(size_t)7;
    unsigned n = chm__stripe_count(stripes, POOL_MAX_STRIPES);
    chm_pool *p =
        chm__aligned_alloc(CHM_CACHELINE, sizeof(chm_pool) + n * sizeof(struct pool_stripe));
    if (p == NULL)
        return NULL;
    p->objsize = objsize;
    p->stripe_mask = n - 1;
    ck_spinlock_fas_init(&p->refill);
    atomic_init(&p->slabs, NULL);
    atomic_init(&p->bytes, sizeof(chm_pool) + n * sizeof(struct pool_stripe));
    for (unsigned i = 0; i < n; i++) {
        struct pool_stripe *s = &p->stripes[i];
        ck_spinlock_fas_init(&s->lock);
        atomic_init(&s->free, NULL);
        s->bump = s->end = NULL;
        s->next_slab_objs = POOL_FIRST_SLAB_OBJS;
        atomic_init(&s->in_use, 0);
    }
    return p;
}

void chm__pool_free(chm_pool *p)
{
    if (p == NULL)
        return;
    struct pool_slab *sl = atomic_load_explicit(&p->slabs, memory_order_relaxed);
    while (sl != NULL) {
        struct pool_slab *next = sl->next;
        pool_unpoison(sl->objs, sl->bytes - sizeof *sl);
        chm__free(sl);
        sl = next;
    }
    chm__free(p);
}

/* Give @s a fresh slab; false when out of memory. Under @s's lock: rare (each slab doubles, up
 * to 64 KiB), and a writer waiting on this stripe would need the memory anyway. */
static bool stripe_grow(chm_pool *p, struct pool_stripe *s)
{
    size_t objs = s->next_slab_objs;
    size_t bytes = sizeof(struct pool_slab) + objs * p->objsize;
    if (bytes > POOL_MAX_SLAB_BYTES && objs > 1) {
        objs = (POOL_MAX_SLAB_BYTES - sizeof(struct pool_slab)) / p->objsize;
        if (objs == 0)
            objs = 1;
        bytes = sizeof(struct pool_slab) + objs * p->objsize;
    }
    struct pool_slab *sl = chm__malloc(bytes);
    if (sl == NULL)
        return false;
    sl->bytes = bytes;
    pool_poison(sl->objs, bytes - sizeof *sl);
    if (sizeof(struct pool_slab) + 2 * objs * p->objsize <= POOL_MAX_SLAB_BYTES)
        s->next_slab_objs = 2 * objs;
    /* The old tail, if any, is too small for one object: nothing is lost but a few bytes. */
    s->bump = sl->objs;
    s->end = sl->objs + objs * p->objsize;
    /* Relaxed push: the list is walked only by chm__pool_free, after every other call on the
     * pool has returned (chm_free's contract), which orders it after this store. */
    struct pool_slab *top = atomic_load_explicit(&p->slabs, memory_order_relaxed);
    do
        sl->next = top;
    while (!atomic_compare_exchange_weak_explicit(&p->slabs, &top, sl, memory_order_relaxed,
                                                  memory_order_relaxed));
    atomic_fetch_add_explicit(&p->bytes, bytes, memory_order_relaxed);
    return true;
}

/* Push the free list @list on @s's (locked). O(1) when @s's list is empty, as it is unless a
 * put came in while the list was being stolen; otherwise @list is walked to its end. */
static void stripe_push_list(chm_pool *p, struct pool_stripe *s, void *list)
{
    void *mine = free_head(s);
    if (mine != NULL) {
        void **q = list;
        for (;;) {
            pool_unpoison(q, sizeof(void *));
            void **next = *q;
            if (next == NULL)
                break;
            pool_poison(q, p->objsize);
            q = next;
        }
        *q = mine;
        pool_poison(q, p->objsize);
    }
    set_free_head(s, list);
}

static bool stripe_has_object(const chm_pool *p, struct pool_stripe *s)
{
    return free_head(s) != NULL || (size_t)(s->end - s->bump) >= p->objsize;
}

/* Give the empty stripe @s objects: another stripe's whole free list, else a new slab. false
 * when out of memory. Called with no stripe lock held; refills are serialised by p->refill, so
 * a list being moved by one refill is never missed by another (which would carve a slab while
 * free objects exist: unbounded growth when writers free into each other's stripes). Victims'
 * locks are taken one at a time, never two stripe locks at once. */
static bool pool_refill(chm_pool *p, struct pool_stripe *s)
{
    ck_spinlock_fas_lock(&p->refill);
    chm__tsan_acquire(&p->refill);
    bool ok = true;
    stripe_lock(s);
    bool done = stripe_has_object(p, s); /* a put, or a refill by a thread sharing @s */
    stripe_unlock(s);
    unsigned self = (unsigned)(s - p->stripes);
    void *list = NULL;
    for (unsigned k = 1; !done && list == NULL && k <= p->stripe_mask; k++) {
        struct pool_stripe *v = &p->stripes[(self + k) & p->stripe_mask];
        if (free_head(v) == NULL)
            continue; /* racy peek; a list cannot be in flight (refills are serialised), and a
                         put that makes it non-empty meanwhile only costs a slab */
        stripe_lock(v);
        list = free_head(v);
        set_free_head(v, NULL);
        stripe_unlock(v);
    }
    if (!done) {
        stripe_lock(s);
        if (list != NULL)
            stripe_push_list(p, s, list);
        else if (!stripe_has_object(p, s))
            ok = stripe_grow(p, s);
        stripe_unlock(s);
    }
    chm__tsan_release(&p->refill);
    ck_spinlock_fas_unlock(&p->refill);
    return ok;
}

/* Take an object from the locked stripe @s: its free list, else its slab's tail; NULL (and @s
 * still locked) when it has neither. */
static inline void *stripe_take(chm_pool *p, struct pool_stripe *s)
{
    void *o = free_head(s);
    if (chm_likely(o != NULL)) {
        pool_unpoison(o, p->objsize);
        set_free_head(s, *(void **)o);
    } else if (chm_likely((size_t)(s->end - s->bump) >= p->objsize)) {
        o = s->bump;
        s->bump += p->objsize;
        pool_unpoison(o, p->objsize);
    } else {
        return NULL;
    }
    atomic_store_explicit(&s->in_use, atomic_load_explicit(&s->in_use, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    return o;
}

/* chm__pool_alloc when @s was empty: refill it and take again (a thread sharing the stripe may
 * empty it meanwhile: loop). Out of line, so the common case above saves no registers. */
static __attribute__((noinline, cold)) void *pool_alloc_refill(chm_pool *p, struct pool_stripe *s)
{
    for (;;) {
        if (!pool_refill(p, s))
            return NULL;
        stripe_lock(s);
        void *o = stripe_take(p, s);
        stripe_unlock(s);
        if (o != NULL)
            return o;
    }
}

void *chm__pool_alloc(chm_pool *p)
{
    struct pool_stripe *s = stripe_of(p);
    stripe_lock(s);
    void *o = stripe_take(p, s);
    stripe_unlock(s);
    if (chm_unlikely(o == NULL))
        return pool_alloc_refill(p, s);
    return o;
}

/* This thread's batched puts (pool.h). Initial-exec: chm__pool_put tests it on every call. */
struct pool_defer {
    chm_pool *pool; /* whose puts are buffered; NULL outside a bracket */
    void *head;     /* the buffered objects, newest first, linked through their first word */
    void *tail;
    unsigned n;
};
static _Thread_local struct pool_defer pool_defer __attribute__((tls_model("initial-exec")));

/* Splice @b's chain onto the free list of the putting thread's stripe of its pool: one lock. */
static void defer_flush(struct pool_defer *b)
{
    if (b->n == 0)
        return;
    chm_pool *p = b->pool;
    struct pool_stripe *s = stripe_of(p);
    stripe_lock(s);
    pool_unpoison(b->tail, sizeof(void *));
    *(void **)b->tail = free_head(s);
    pool_poison(b->tail, p->objsize);
    set_free_head(s, b->head);
    atomic_store_explicit(&s->in_use,
                          atomic_load_explicit(&s->in_use, memory_order_relaxed) - (long)b->n,
                          memory_order_relaxed);
    stripe_unlock(s);
    b->head = b->tail = NULL;
    b->n = 0;
}

chm_pool *chm__pool_defer_begin(chm_pool *p)
{
    struct pool_defer *b = &pool_defer;
    defer_flush(b); /* the enclosing bracket's objects: its pool is alive (the rule) */
    chm_pool *outer = b->pool;
    b->pool = p;
    return outer;
}

void chm__pool_defer_end(chm_pool *outer)
{
    struct pool_defer *b = &pool_defer;
    defer_flush(b);
    b->pool = outer; /* its chain was flushed by begin */
}

void chm__pool_put(chm_pool *p, void *obj)
{
    struct pool_defer *b = &pool_defer;
    if (p == b->pool) {
        *(void **)obj = b->head;
        pool_poison(obj, p->objsize);
        if (b->head == NULL)
            b->tail = obj;
        b->head = obj;
        if (++b->n >= CHM__POOL_DEFER_MAX)
            defer_flush(b);
        return;
    }
    struct pool_stripe *s = stripe_of(p);
    stripe_lock(s);
    *(void **)obj = free_head(s);
    pool_poison(obj, p->objsize);
    set_free_head(s, obj);
    atomic_store_explicit(&s->in_use, atomic_load_explicit(&s->in_use, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    stripe_unlock(s);
}

size_t chm__pool_bytes(const chm_pool *p)
{
    return atomic_load_explicit(&p->bytes, memory_order_relaxed);
}

size_t chm__pool_in_use(const chm_pool *p)
{
    long n = 0;
    for (unsigned i = 0; i <= p->stripe_mask; i++)
        n += atomic_load_explicit(&p->stripes[i].in_use, memory_order_relaxed);
    return n < 0 ? 0 : (size_t)n;
}
