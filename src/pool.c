/*
 * pool.c - per-map object pools (contract in pool.h).
 *
 * HOW IT WORKS. A pool has up to 64 stripes, one cache line each; a thread always uses the
 * stripe its thread index picks (threads are numbered in the order they first touch a pool), so
 * two writers of a map take different locks and free lists unless there are more writers than
 * stripes. A stripe holds, under a Concurrency Kit fetch-and-store spinlock:
 *   - a free list of objects, linked through each free object's first word;
 *   - the untouched tail [bump, end) of the slab it carved last.
 * An allocation pops the free list, else carves from the tail, else allocates a slab for the
 * stripe: the first holds 16 objects and each next one twice as many, up to 64 KiB, so a small
 * map costs little and a large one few malloc calls. A put pushes the object on the putting
 * thread's stripe: objects migrate between stripes with the threads that free them, which
 * balances lists when one thread inserts and another removes.
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
 * orders with __tsan_acquire/__tsan_release.
 */
#include "pool.h"

#include <ck_spinlock.h>
#include <stdalign.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define pool_poison(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define pool_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define pool_poison(p, n) ((void)(p), (void)(n))
#define pool_unpoison(p, n) ((void)(p), (void)(n))
#endif

#if defined(__SANITIZE_THREAD__)
#define POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define POOL_TSAN 1
#endif
#endif
#ifdef POOL_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#endif

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
    void *free;                 /* free objects, linked through their first word */
    unsigned char *bump, *end;  /* the last slab's untouched tail */
    size_t next_slab_objs;      /* objects in this stripe's next slab */
    atomic_long in_use;         /* allocs minus puts on this stripe (a sum is exact, a part may
                                   be negative); written under the lock, read without */
};
_Static_assert(sizeof(struct pool_stripe) == CHM_CACHELINE, "a stripe is one cache line");

struct chm_pool {
    size_t objsize;
    unsigned stripe_mask;
    _Atomic(struct pool_slab *) slabs;
    atomic_size_t bytes;
    struct pool_stripe stripes[];
};

/* The calling thread's number: drawn once per thread, 1, 2, 3, ... (0 = not drawn yet). */
static _Thread_local unsigned pool_thread_index __attribute__((tls_model("initial-exec")));
static atomic_uint pool_next_index;

static struct pool_stripe *stripe_of(chm_pool *p)
{
    unsigned i = pool_thread_index;
    if (chm_unlikely(i == 0)) {
        /* Relaxed: a ticket, ordering nothing. 0 again after 2^32 threads: drawn again. */
        i = atomic_fetch_add_explicit(&pool_next_index, 1, memory_order_relaxed) + 1;
        pool_thread_index = i;
    }
    return &p->stripes[i & p->stripe_mask];
}

static void stripe_lock(struct pool_stripe *s)
{
    ck_spinlock_fas_lock(&s->lock);
#ifdef POOL_TSAN
    __tsan_acquire(&s->lock); /* pairs with the release in stripe_unlock */
#endif
}

static void stripe_unlock(struct pool_stripe *s)
{
#ifdef POOL_TSAN
    __tsan_release(&s->lock);
#endif
    ck_spinlock_fas_unlock(&s->lock);
}

chm_pool *chm__pool_new(size_t objsize, unsigned stripes)
{
    objsize = objsize < sizeof(void *) ? sizeof(void *) : (objsize + 7) & ~(size_t)7;
    unsigned n = 1;
    while (n < stripes && n < POOL_MAX_STRIPES)
        n <<= 1;
    chm_pool *p =
        chm__aligned_alloc(CHM_CACHELINE, sizeof(chm_pool) + n * sizeof(struct pool_stripe));
    if (p == NULL)
        return NULL;
    p->objsize = objsize;
    p->stripe_mask = n - 1;
    atomic_init(&p->slabs, NULL);
    atomic_init(&p->bytes, sizeof(chm_pool) + n * sizeof(struct pool_stripe));
    for (unsigned i = 0; i < n; i++) {
        struct pool_stripe *s = &p->stripes[i];
        ck_spinlock_fas_init(&s->lock);
        s->free = NULL;
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

void *chm__pool_alloc(chm_pool *p)
{
    struct pool_stripe *s = stripe_of(p);
    void *o;
    stripe_lock(s);
    if (s->free != NULL) {
        o = s->free;
        pool_unpoison(o, p->objsize);
        s->free = *(void **)o;
    } else {
        if ((size_t)(s->end - s->bump) < p->objsize && !stripe_grow(p, s)) {
            stripe_unlock(s);
            return NULL;
        }
        o = s->bump;
        s->bump += p->objsize;
        pool_unpoison(o, p->objsize);
    }
    atomic_store_explicit(&s->in_use, atomic_load_explicit(&s->in_use, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    stripe_unlock(s);
    return o;
}

void chm__pool_put(chm_pool *p, void *obj)
{
    struct pool_stripe *s = stripe_of(p);
    stripe_lock(s);
    *(void **)obj = s->free;
    pool_poison(obj, p->objsize);
    s->free = obj;
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
