/*
 * alloc.c - the library's one allocation path, with a test hook that fails the n-th allocation.
 *
 * Unarmed, the hook costs one relaxed load of a read-mostly flag per allocation (no shared
 * store, so no cache-line bouncing between threads that allocate). Armed, it counts attempts
 * and live blocks so tests can fail each allocation in turn and check that nothing leaks.
 */
#include "chm_internal.h"

#include <stdlib.h>

static atomic_bool armed;
static atomic_uint_fast64_t attempts;
static atomic_uint_fast64_t fail_at; /* 0 = never */
static atomic_long live;

/* True when this allocation must fail. Relaxed everywhere: the hook is driven by a test from one
 * thread at a time; the counters need atomicity, not ordering. */
static bool inject_failure(void)
{
    if (chm_likely(!atomic_load_explicit(&armed, memory_order_relaxed)))
        return false;
    uint64_t n = atomic_fetch_add_explicit(&attempts, 1, memory_order_relaxed) + 1;
    return n == atomic_load_explicit(&fail_at, memory_order_relaxed);
}

static void *counted(void *p)
{
    if (p != NULL && atomic_load_explicit(&armed, memory_order_relaxed))
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *chm__malloc(size_t size)
{
    if (inject_failure())
        return NULL;
    return counted(malloc(size));
}

void *chm__calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    if (inject_failure())
        return NULL;
    return counted(calloc(n, size));
}

void *chm__aligned_alloc(size_t align, size_t size)
{
    if (inject_failure())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    return counted(p);
}

void chm__free(void *p)
{
    if (p != NULL && atomic_load_explicit(&armed, memory_order_relaxed))
        atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
    free(p);
}

void chm__alloc_fail_nth(uint64_t n)
{
    atomic_store_explicit(&attempts, 0, memory_order_relaxed);
    atomic_store_explicit(&live, 0, memory_order_relaxed);
    atomic_store_explicit(&fail_at, n, memory_order_relaxed);
    atomic_store_explicit(&armed, true, memory_order_relaxed);
}

void chm__alloc_disarm(void)
{
    atomic_store_explicit(&armed, false, memory_order_relaxed);
    atomic_store_explicit(&fail_at, 0, memory_order_relaxed);
}

uint64_t chm__alloc_count(void)
{
    return atomic_load_explicit(&attempts, memory_order_relaxed);
}

long chm__alloc_live(void)
{
    return atomic_load_explicit(&live, memory_order_relaxed);
}
