/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * alloc.c - the library's one allocation path, with a test hook that fails the n-th allocation.
 *
 * Unarmed, the hook costs one relaxed load of a read-mostly flag per allocation (no shared
 * store, so no cache-line bouncing between threads that allocate). Armed, it counts attempts
 * and live blocks so tests can fail each allocation in turn and check that nothing leaks, and
 * record which call sites (chm_internal.h passes "file:line") were reached and failed.
 */
#include "chm_internal.h"

#include <stdlib.h>

static atomic_bool armed;
static atomic_uint_fast64_t attempts;
static atomic_uint_fast64_t fail_at; /* 0 = never */
static atomic_long live;
/* chm__alloc_fail_every: while set (and armed), every allocation fails, outside the count of
 * attempts, so that a fail-the-n-th sweep numbers its allocations the same way around it. */
static atomic_bool fail_every;
static atomic_uint_fast64_t denied; /* allocations failed by fail_every since arming */

/* Call sites seen while armed: an open-addressed table keyed by the site literal's address
 * (claimed by CAS, never removed until reset). Relaxed like the counters above. */
#define SITES 512
static struct {
    _Atomic(const char *) site;
    atomic_uint_fast64_t reached, failed, first_before;
} sites[SITES];

static void note_site(const char *site, uint64_t n, uint64_t fail)
{
    size_t i = (size_t)(((uintptr_t)site >> 3) * 0x9e3779b97f4a7c15ULL >> 55) % SITES;
    for (size_t probe = 0; probe < SITES; probe++, i = (i + 1) % SITES) {
        const char *cur = atomic_load_explicit(&sites[i].site, memory_order_relaxed);
        if (cur == NULL &&
            atomic_compare_exchange_strong_explicit(&sites[i].site, &cur, site,
                                                    memory_order_relaxed, memory_order_relaxed))
            cur = site;
        if (cur != site)
            continue;
        atomic_fetch_add_explicit(&sites[i].reached, 1, memory_order_relaxed);
        if (n == fail)
            atomic_fetch_add_explicit(&sites[i].failed, 1, memory_order_relaxed);
        if (fail == 0 || n <= fail) {
            uint64_t fb = atomic_load_explicit(&sites[i].first_before, memory_order_relaxed);
            while ((fb == 0 || n < fb) &&
                   !atomic_compare_exchange_weak_explicit(
                       &sites[i].first_before, &fb, n, memory_order_relaxed, memory_order_relaxed))
                ;
        }
        return;
    }
}

/* True when this allocation must fail. Relaxed everywhere: the hook is driven by a test from one
 * thread at a time; the counters need atomicity, not ordering. */
static bool inject_failure(const char *site)
{
    if (chm_likely(!atomic_load_explicit(&armed, memory_order_relaxed)))
        return false;
    if (atomic_load_explicit(&fail_every, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&denied, 1, memory_order_relaxed);
        return true;
    }
    uint64_t n = atomic_fetch_add_explicit(&attempts, 1, memory_order_relaxed) + 1;
    uint64_t fail = atomic_load_explicit(&fail_at, memory_order_relaxed);
    note_site(site, n, fail);
    return n == fail;
}

static void *counted(void *p)
{
    if (p != NULL && atomic_load_explicit(&armed, memory_order_relaxed))
        atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    return p;
}

void *chm__malloc_at(size_t size, const char *site)
{
    if (inject_failure(site))
        return NULL;
    return counted(malloc(size));
}

void *chm__calloc_at(size_t n, size_t size, const char *site)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    if (inject_failure(site))
        return NULL;
    return counted(calloc(n, size));
}

void *chm__aligned_alloc_at(size_t align, size_t size, const char *site)
{
    if (inject_failure(site))
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
    atomic_store_explicit(&denied, 0, memory_order_relaxed);
    atomic_store_explicit(&fail_every, false, memory_order_relaxed);
    atomic_store_explicit(&armed, true, memory_order_relaxed);
}

void chm__alloc_disarm(void)
{
    atomic_store_explicit(&armed, false, memory_order_relaxed);
    atomic_store_explicit(&fail_at, 0, memory_order_relaxed);
    atomic_store_explicit(&fail_every, false, memory_order_relaxed);
}

void chm__alloc_fail_every(bool on)
{
    atomic_store_explicit(&fail_every, on, memory_order_relaxed);
}

uint64_t chm__alloc_denied(void)
{
    return atomic_load_explicit(&denied, memory_order_relaxed);
}

uint64_t chm__alloc_count(void)
{
    return atomic_load_explicit(&attempts, memory_order_relaxed);
}

long chm__alloc_live(void)
{
    return atomic_load_explicit(&live, memory_order_relaxed);
}

void chm__alloc_sites_reset(void)
{
    for (size_t i = 0; i < SITES; i++) {
        atomic_store_explicit(&sites[i].site, NULL, memory_order_relaxed);
        atomic_store_explicit(&sites[i].reached, 0, memory_order_relaxed);
        atomic_store_explicit(&sites[i].failed, 0, memory_order_relaxed);
        atomic_store_explicit(&sites[i].first_before, 0, memory_order_relaxed);
    }
}

size_t chm__alloc_sites(struct chm__alloc_site *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < SITES; i++) {
        const char *site = atomic_load_explicit(&sites[i].site, memory_order_relaxed);
        if (site == NULL)
            continue;
        if (n < max)
            out[n] = (struct chm__alloc_site){
                site, atomic_load_explicit(&sites[i].reached, memory_order_relaxed),
                atomic_load_explicit(&sites[i].failed, memory_order_relaxed),
                atomic_load_explicit(&sites[i].first_before, memory_order_relaxed)};
        n++;
    }
    return n;
}
