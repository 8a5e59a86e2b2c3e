/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * fuzz_support.c - see fuzz_support.h.
 */
#include "fuzz_support.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- mismatch reporting ------------------------------------------------------------------- */

const char *fz_ctx_backend = "?";
unsigned long fz_ctx_op;

void fz_fail(const char *fmt, ...)
{
    fprintf(stderr, "fuzz_chm: MISMATCH (backend %s, operation #%lu): ", fz_ctx_backend, fz_ctx_op);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(replay with FUZZ_CHM_TRACE=1 to print every operation)\n");
    fflush(stderr);
    abort();
}

/* ---- pair set ----------------------------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        fprintf(stderr, "fuzz_chm: out of memory in the harness\n");
        abort();
    }
    return p;
}

void fz_pairset_init(fz_pairset *s)
{
    s->cap = 64;
    s->n = 0;
    s->keys = xcalloc(s->cap, sizeof *s->keys);
    s->vals = xcalloc(s->cap, sizeof *s->vals);
    s->used = xcalloc(s->cap, 1);
}

void fz_pairset_fini(fz_pairset *s)
{
    free(s->keys);
    free(s->vals);
    free(s->used);
    memset(s, 0, sizeof *s);
}

void fz_pairset_clear(fz_pairset *s)
{
    memset(s->used, 0, s->cap);
    s->n = 0;
}

static size_t pair_slot(const fz_pairset *s, uint64_t key, uint64_t val)
{
    size_t mask = s->cap - 1;
    size_t i = (size_t)tl_mix(key ^ tl_mix(val)) & mask;
    while (s->used[i] && (s->keys[i] != key || s->vals[i] != val))
        i = (i + 1) & mask;
    return i;
}

void fz_pairset_add(fz_pairset *s, uint64_t key, uint64_t val)
{
    if (2 * (s->n + 1) > s->cap) {
        fz_pairset old = *s;
        s->cap = old.cap * 2;
        s->n = 0;
        s->keys = xcalloc(s->cap, sizeof *s->keys);
        s->vals = xcalloc(s->cap, sizeof *s->vals);
        s->used = xcalloc(s->cap, 1);
        for (size_t i = 0; i < old.cap; i++)
            if (old.used[i])
                fz_pairset_add(s, old.keys[i], old.vals[i]);
        fz_pairset_fini(&old);
    }
    size_t i = pair_slot(s, key, val);
    if (!s->used[i]) {
        s->used[i] = 1;
        s->keys[i] = key;
        s->vals[i] = val;
        s->n++;
    }
}

bool fz_pairset_has(const fz_pairset *s, uint64_t key, uint64_t val)
{
    return s->used[pair_slot(s, key, val)] != 0;
}

/* ---- integer keyops ----------------------------------------------------------------------- */

static uint64_t weaken(int quality, uint64_t h)
{
    switch (quality) {
    case FZ_HASH_LOW: return h & 7;
    case FZ_HASH_TOP: return h & 0xff00000000000000ULL;
    case FZ_HASH_CONST: return 0x5555aaaa5555aaaaULL;
    default: return h;
    }
}

static bool int_equal(uint64_t a, uint64_t b)
{
    return a == b;
}
static int int_compare(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

#define INT_HASH(q)                                                                                \
    static uint64_t int_hash_##q(uint64_t key, uint64_t seed)                                      \
    {                                                                                              \
        return weaken(q, chm_hash_u64(key, seed));                                                 \
    }
INT_HASH(0)
INT_HASH(1)
INT_HASH(2)
INT_HASH(3)

static const chm_keyops int_keys[FZ_HASH_COUNT][2] = {
    {{.hash = int_hash_0, .equal = int_equal}, {int_hash_0, int_equal, int_compare, NULL, NULL}},
    {{.hash = int_hash_1, .equal = int_equal}, {int_hash_1, int_equal, int_compare, NULL, NULL}},
    {{.hash = int_hash_2, .equal = int_equal}, {int_hash_2, int_equal, int_compare, NULL, NULL}},
    {{.hash = int_hash_3, .equal = int_equal}, {int_hash_3, int_equal, int_compare, NULL, NULL}},
};

const chm_keyops *fz_int_keys(int quality, bool with_compare)
{
    return &int_keys[quality % FZ_HASH_COUNT][with_compare ? 1 : 0];
}

/* ---- string keyops with counted copies ---------------------------------------------------- */

/* Release may run on another writing thread, so the bookkeeping is under a mutex. */
static pthread_mutex_t str_lock = PTHREAD_MUTEX_INITIALIZER;
static tl_model str_live; /* pointer of a live copy -> 1 */
static bool str_live_ready;
static unsigned long str_retained, str_released;
static bool str_fail_retain;

static const char *as_str(uint64_t key)
{
    return (const char *)(uintptr_t)key;
}

static bool str_equal(uint64_t a, uint64_t b)
{
    return strcmp(as_str(a), as_str(b)) == 0;
}
static int str_compare(uint64_t a, uint64_t b)
{
    int c = strcmp(as_str(a), as_str(b));
    return (c > 0) - (c < 0);
}

static bool str_retain(uint64_t key, uint64_t *stored)
{
    const char *s = as_str(key);
    pthread_mutex_lock(&str_lock);
    if (str_fail_retain) {
        str_fail_retain = false;
        pthread_mutex_unlock(&str_lock);
        return false;
    }
    size_t len = strlen(s);
    char *copy = xcalloc(len + 1, 1);
    memcpy(copy, s, len);
    if (!str_live_ready) {
        tl_model_init(&str_live);
        str_live_ready = true;
    }
    tl_model_put(&str_live, (uint64_t)(uintptr_t)copy, 1, NULL);
    str_retained++;
    pthread_mutex_unlock(&str_lock);
    *stored = (uint64_t)(uintptr_t)copy;
    return true;
}

static void str_release(uint64_t stored)
{
    pthread_mutex_lock(&str_lock);
    bool live = str_live_ready && tl_model_remove(&str_live, stored, NULL);
    if (!live) {
        pthread_mutex_unlock(&str_lock);
        fz_fail("keyops.release(%p): not a live stored key copy (released twice, or never "
                "retained)",
                (void *)(uintptr_t)stored);
    }
    str_released++;
    pthread_mutex_unlock(&str_lock);
    free((void *)(uintptr_t)stored);
}

#define STR_HASH(q)                                                                                \
    static uint64_t str_hash_##q(uint64_t key, uint64_t seed)                                      \
    {                                                                                              \
        const char *s = as_str(key);                                                               \
        return weaken(q, chm_hash_bytes(s, strlen(s), seed));                                      \
    }
STR_HASH(0)
STR_HASH(1)
STR_HASH(2)
STR_HASH(3)

#define STR_OPS(q, cmp)                                                                            \
    {                                                                                              \
        str_hash_##q, str_equal, cmp, str_retain, str_release                                      \
    }
static const chm_keyops str_keys[FZ_HASH_COUNT][2] = {
    {STR_OPS(0, NULL), STR_OPS(0, str_compare)},
    {STR_OPS(1, NULL), STR_OPS(1, str_compare)},
    {STR_OPS(2, NULL), STR_OPS(2, str_compare)},
    {STR_OPS(3, NULL), STR_OPS(3, str_compare)},
};

const chm_keyops *fz_str_keys(int quality, bool with_compare)
{
    return &str_keys[quality % FZ_HASH_COUNT][with_compare ? 1 : 0];
}

void fz_str_reset(void)
{
    pthread_mutex_lock(&str_lock);
    if (str_live_ready)
        tl_model_clear(&str_live);
    str_retained = str_released = 0;
    str_fail_retain = false;
    pthread_mutex_unlock(&str_lock);
}

void fz_str_fail_next_retain(bool on)
{
    pthread_mutex_lock(&str_lock);
    str_fail_retain = on;
    pthread_mutex_unlock(&str_lock);
}

bool fz_str_is_live(uint64_t stored)
{
    pthread_mutex_lock(&str_lock);
    bool live = str_live_ready && tl_model_get(&str_live, stored, NULL);
    pthread_mutex_unlock(&str_lock);
    return live;
}

void fz_str_counts(unsigned long *retained, unsigned long *released)
{
    pthread_mutex_lock(&str_lock);
    *retained = str_retained;
    *released = str_released;
    pthread_mutex_unlock(&str_lock);
}
