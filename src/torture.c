/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * torture.c - the yield points of the CHM_VALIDATE torture build (see torture.h). Empty in a
 * normal build.
 */
#include "torture.h"

#if defined(CHM_VALIDATE) && CHM_VALIDATE

#include "spin.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* The section's bounds, provided by the linker for any section named like a C identifier
 * (the library always has sites in a torture build). */
extern struct chm__yield_site __start_chm_yield_sites[] __attribute__((visibility("hidden")));
extern struct chm__yield_site __stop_chm_yield_sites[] __attribute__((visibility("hidden")));

/* -1 until the first yield point reads CHM_TORTURE. Relaxed: racing first readers compute the
 * same value from the same environment; nothing else is published through it. */
static atomic_int torture_mode = -1;

/* This thread's xorshift64 state; 0 = not seeded yet. */
static _Thread_local uint64_t torture_rng __attribute__((tls_model("initial-exec")));

static enum chm__torture_mode mode_from_env(void)
{
    const char *e = getenv("CHM_TORTURE");
    if (e == NULL || *e == '\0' || strcmp(e, "light") == 0)
        return CHM_TORTURE_LIGHT;
    if (strcmp(e, "off") == 0 || strcmp(e, "0") == 0)
        return CHM_TORTURE_OFF;
    if (strcmp(e, "heavy") == 0)
        return CHM_TORTURE_HEAVY;
    return CHM_TORTURE_LIGHT; /* unknown words get the default rather than an error */
}

enum chm__torture_mode chm__torture_mode(void)
{
    int m = atomic_load_explicit(&torture_mode, memory_order_relaxed);
    if (chm_unlikely(m < 0)) {
        m = (int)mode_from_env();
        atomic_store_explicit(&torture_mode, m, memory_order_relaxed);
    }
    return (enum chm__torture_mode)m;
}

void chm__torture_set_mode(enum chm__torture_mode mode)
{
    atomic_store_explicit(&torture_mode, (int)mode, memory_order_relaxed);
}

static uint64_t next_random(void)
{
    uint64_t x = torture_rng;
    if (chm_unlikely(x == 0)) {
        /* Distinct per thread: a global sequence mixed with this thread's TLS address. */
        static atomic_uint_fast64_t seeder;
        uint64_t s =
            atomic_fetch_add_explicit(&seeder, 0x9e3779b97f4a7c15ULL, memory_order_relaxed);
        x = chm__mix64(s, (uint64_t)(uintptr_t)&torture_rng) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    torture_rng = x;
    return x;
}

static void spin(uint64_t pauses)
{
    for (uint64_t i = 0; i < pauses; i++)
        chm__cpu_relax();
}

void chm__yield(struct chm__yield_site *site)
{
    atomic_fetch_add_explicit(&site->hits, 1, memory_order_relaxed);
    enum chm__torture_mode mode = chm__torture_mode();
    if (mode == CHM_TORTURE_OFF)
        return;
    uint64_t r = next_random();
    unsigned pick = (unsigned)(r & 63); /* 1/64 steps */
    uint64_t len = r >> 32;
    if (mode == CHM_TORTURE_HEAVY) {
        if (pick < 2) /* 1/32: a yield inside a lock on a loaded machine can cost a slice */
            sched_yield();
        else if (pick < 18) /* 1/4 */
            spin(len & 1023);
    } else {
        if (pick < 1) /* 1/64 */
            sched_yield();
        else if (pick < 9) /* 1/8 */
            spin(len & 63);
    }
}

size_t chm__yield_sites(struct chm__yield_site **first)
{
    *first = __start_chm_yield_sites;
    return (size_t)(__stop_chm_yield_sites - __start_chm_yield_sites);
}

#else

/* ISO C wants at least one declaration in a translation unit. */
typedef int chm__torture_unused;

#endif
