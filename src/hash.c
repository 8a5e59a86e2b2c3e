/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * hash.c - seeded hashing and the two built-in key sets.
 *
 * Integer keys use chm__hash_u64 (chm_internal.h, where the choice is explained), inlined by
 * the backends with the map's precomputed multiplier. Strings use chm_hash_bytes: eight bytes
 * at a time, each word folded in with a 128-bit multiply (chm__fold_mul), then the 64-bit
 * mixer as a finaliser. The seed enters the state before the first byte.
 */
#include "chm_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define K0 0x9e3779b97f4a7c15ULL
#define K1 0xa0761d6478bd642fULL
#define K2 0xe7037ed1a0b428dbULL

uint64_t chm_hash_u64(uint64_t key, uint64_t seed)
{
    return chm__hash_u64(key, seed, chm__hash_mul(seed));
}


static inline uint64_t load64(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

uint64_t chm_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = seed ^ K0 ^ chm__fold_mul(seed ^ K1, (uint64_t)len ^ K2);
    size_t n = len;
    for (; n >= 16; n -= 16, p += 16)
        h = chm__fold_mul(load64(p) ^ K1 ^ h, load64(p + 8) ^ K2);
    if (n >= 8) {
        h = chm__fold_mul(load64(p) ^ K1, h ^ K2);
        p += 8;
        n -= 8;
    }
    if (n > 0) { /* the last 1..7 bytes, little-endian, without reading past the end */
        uint64_t tail = 0;
        memcpy(&tail, p, n);
        h = chm__fold_mul(tail ^ K2, h ^ K1 ^ n);
    }
    return chm__mix64(h, seed);
}

/* ---- chm_keys_u64 ----------------------------------------------------------------------- */

static bool u64_equal(uint64_t a, uint64_t b)
{
    return a == b;
}

static int u64_compare(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

const chm_keyops chm_keys_u64 = {
    .hash = chm_hash_u64,
    .equal = u64_equal,
    .compare = u64_compare,
};

/* ---- chm_keys_string -------------------------------------------------------------------- */

static const char *str_of(uint64_t key)
{
    return (const char *)(uintptr_t)key;
}

static uint64_t str_hash(uint64_t key, uint64_t seed)
{
    const char *s = str_of(key);
    return chm_hash_bytes(s, strlen(s), seed);
}

static bool str_equal(uint64_t a, uint64_t b)
{
    return a == b || strcmp(str_of(a), str_of(b)) == 0;
}

static int str_compare(uint64_t a, uint64_t b)
{
    int c = strcmp(str_of(a), str_of(b));
    return (c > 0) - (c < 0);
}

static bool str_retain(uint64_t key, uint64_t *stored)
{
    size_t n = strlen(str_of(key)) + 1;
    char *copy = chm__malloc(n);
    if (copy == NULL)
        return false;
    memcpy(copy, str_of(key), n);
    *stored = (uint64_t)(uintptr_t)copy;
    return true;
}

static void str_release(uint64_t key)
{
    chm__free((void *)(uintptr_t)key);
}

const chm_keyops chm_keys_string = {
    .hash = str_hash,
    .equal = str_equal,
    .compare = str_compare,
    .retain = str_retain,
    .release = str_release,
};

/* ---- seeds ------------------------------------------------------------------------------ */

uint64_t chm__random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        /* No entropy yet (early boot) or no syscall: fall back to clock, address and a counter,
         * mixed. Weaker against flooding, never fails. */
        static atomic_uint_fast64_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t c = atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
        seed = chm__mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ c,
                          (uint64_t)(uintptr_t)&seed);
    }
    return seed != 0 ? seed : K0;
}
