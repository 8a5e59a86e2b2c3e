/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * chm_internal.h - what every backend shares: the per-map header, the ops table that chm.h
 * dispatches through, and inline key helpers. Internal: not installed.
 *
 * A backend plugs in with two tables:
 *   - `struct chm_backend` (public identity: name, thread safety, create), listed in backends.c;
 *   - `struct chm_ops` (per map: the operations). create() may pick one of several ops tables
 *     for one backend (chm_rwlock has one per lock kind), so the hot path never switches on a kind:
 *     chm_get() is one NULL check and one indirect call.
 * Each backend's map struct starts with `struct chm` (the header below).
 */
#ifndef CHM_INTERNAL_H
#define CHM_INTERNAL_H

#include "chm.h"

#include <stdatomic.h>
#include <stdalign.h>

#define CHM_CACHELINE 64

#if defined(__GNUC__)
#define chm_likely(x) __builtin_expect(!!(x), 1)
#define chm_unlikely(x) __builtin_expect(!!(x), 0)
#define CHM_HIDDEN __attribute__((visibility("hidden")))
#else
#define chm_likely(x) (x)
#define chm_unlikely(x) (x)
#define CHM_HIDDEN
#endif

struct chm_ops {
    int (*get)(chm *m, uint64_t key, uint64_t *value);
    /* Optional: get for maps with chm_keys_u64 (m->int_keys), NULL = get. Written as a leaf on
     * its fast path (no call but tail calls: smr.h, chm__smr_lookup_begin), hash and key
     * comparison inline. */
    int (*get_u64)(chm *m, uint64_t key, uint64_t *value);
    int (*put)(chm *m, uint64_t key, uint64_t value, uint64_t *old);
    int (*put_if_absent)(chm *m, uint64_t key, uint64_t value, uint64_t *current);
    int (*remove)(chm *m, uint64_t key, uint64_t *old);
    int (*replace)(chm *m, uint64_t key, uint64_t expected, uint64_t desired);
    int (*compute_if_absent)(chm *m, uint64_t key, chm_compute_fn *fn, void *arg, uint64_t *value);
    size_t (*size)(chm *m);
    int (*compute)(chm *m, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result);
    int (*remove_if)(chm *m, uint64_t key, uint64_t expected);
    int (*clear)(chm *m);
    int (*visit)(chm *m, uint64_t key, chm_visit_fn *fn, void *arg);
    void (*stats)(chm *m, chm_stats *st); /* every field filled */
    int (*iter_init)(chm_iter *it, chm *m);
    int (*iter_next)(chm_iter *it, uint64_t *key, uint64_t *value);
    void (*iter_fini)(chm_iter *it);
    void (*destroy)(chm *m); /* frees everything, values and keys included */
    int (*validate)(chm *m); /* quiescent self-check: 0 = sound, <0 names the broken invariant */
    const char *(*invariant)(int code); /* what a validate code means (NULL: codes only) */
};

struct chm_backend {
    const char *name;
    unsigned caps; /* CHM_CAP_* (chm.h): what tests and benchmarks ask instead of the name */
    /* Allocate and initialise a map; `opt` is resolved (keys and concurrency filled in,
     * validated; seed 0 still means "random": chm__header_init draws it).
     * Returns NULL with errno set (ENOMEM, EINVAL). */
    chm *(*create)(const chm_backend *b, const chm_options *opt);
};

/* The header every backend's map starts with. Read-only after chm_new. */
struct chm {
    int (*get)(chm *m, uint64_t key, uint64_t *value); /* what chm_get jumps to (map.c) */
    const struct chm_ops *ops;
    const chm_backend *backend;
    const chm_keyops *keys;
    uint64_t seed;
    uint64_t hash_mul; /* chm__hash_mul(seed): the integer hash's multiplier, computed once */
    bool int_keys; /* keys == &chm_keys_u64: hash and compare inline, no indirect call */
    void (*value_free)(uint64_t value, void *ctx);
    void *ctx;
    chm_options opt; /* the resolved options, for backend-specific fields; opt.seed == 0
                        means the seed above was drawn at random */
    /* The records that take replaced values to value_free after a grace period (src/smr.h,
     * chm__value_retire_reserve): a pool created by the first reservation, freed with the
     * map's SMR domain. NULL until then, and for maps that never reserve one. */
    _Atomic(struct chm_pool *) value_recs;
};

/* Fill the header; called by each backend's create(). */
CHM_HIDDEN void chm__header_init(chm *m, const struct chm_ops *ops, const chm_backend *b,
                                 const chm_options *opt);

/* Every iterator starts with this; core sets ops before calling the backend's iter_init and
 * clears it in chm_iter_fini. Backends overlay their own struct (checked with
 * CHM_ITER_STATIC_ASSERT). */
struct chm__iter_base {
    const struct chm_ops *ops;
    chm *m;
};
#define CHM_ITER_STATIC_ASSERT(type)                                                               \
    _Static_assert(sizeof(type) <= CHM_ITER_SIZE && alignof(type) <= 16,                           \
                   #type " does not fit chm_iter")

/* ---- hashing ---------------------------------------------------------------------------- */

/* A seeded strong 64-bit mixer (two multiply-xorshift rounds, after splitmix64's finaliser):
 * every input bit affects every output bit, and the seed enters before the first round so
 * collisions cannot be precomputed without it. */
static inline uint64_t chm__mix64(uint64_t key, uint64_t seed)
{
    uint64_t x = key ^ seed;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x ^ (seed >> 17);
}

/* The integer keys' hash (chm_keys_u64, chm_hash_u64): two folded multiplies. A folded multiply
 * is the 128-bit product of two words with its halves xored (the primitive of wyhash and
 * rapidhash, written here from the idea). The first multiplies key ^ seed by a per-seed odd
 * multiplier (chm.hash_mul, computed once per map), the second by a fixed constant: nine
 * instructions with the multiplier at hand, against fifteen for chm__mix64's two rounds.
 * Two, because one is linear enough in its input that structured keys (0..n-1, multiples of
 * 2^k) pile into a few bins for some seeds; two spread them as evenly as chm__mix64, in low and
 * high bits (measured: docs/design.md, "Hashing"). The seed enters before the first multiply
 * and the multiplier derives from it, both secret, so keys chosen without the seed land in bins
 * at random (tests/test_flood.c). */
static inline uint64_t chm__fold_mul(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t chm__hash_mul(uint64_t seed)
{
    return chm__mix64(seed, 0xa0761d6478bd642fULL) | 1;
}

/* The second multiplier of chm__hash_u64 (readmostly keeps a copy in its map: rm_hash_u64). */
#define CHM__HASH_K2 0xd6e8feb86659fd93ULL

static inline uint64_t chm__hash_u64(uint64_t key, uint64_t seed, uint64_t mul)
{
    return chm__fold_mul(chm__fold_mul(key ^ seed, mul), CHM__HASH_K2);
}

static inline uint64_t chm__hash(const chm *m, uint64_t key)
{
    return chm_likely(m->int_keys) ? chm__hash_u64(key, m->seed, m->hash_mul)
                                   : m->keys->hash(key, m->seed);
}

static inline bool chm__key_equal(const chm *m, uint64_t a, uint64_t b)
{
    return chm_likely(m->int_keys) ? a == b : m->keys->equal(a, b);
}

/* Make the stored copy of a key being inserted; false = out of memory. */
static inline bool chm__key_retain(const chm *m, uint64_t key, uint64_t *stored)
{
    if (m->keys->retain == NULL) {
        *stored = key;
        return true;
    }
    return m->keys->retain(key, stored);
}

static inline void chm__key_release(const chm *m, uint64_t stored)
{
    if (m->keys->release != NULL)
        m->keys->release(stored);
}

static inline void chm__value_free(const chm *m, uint64_t value)
{
    if (m->value_free != NULL)
        m->value_free(value, m->ctx);
}

/* A fresh random seed from getrandom(), never 0. */
CHM_HIDDEN uint64_t chm__random_seed(void);

/* ---- allocation (every allocation of the library goes through these; see alloc.c) ------- */

/* Each call names its call site ("file:line", a string literal) so that the failure-injection
 * hook below can tell the sites apart; unarmed, the extra argument is never read. */
#define CHM__STR2(x) #x
#define CHM__STR(x) CHM__STR2(x)
#define CHM__ALLOC_SITE __FILE__ ":" CHM__STR(__LINE__)
#define chm__malloc(size) chm__malloc_at((size), CHM__ALLOC_SITE)
#define chm__calloc(n, size) chm__calloc_at((n), (size), CHM__ALLOC_SITE) /* NULL on overflow */
#define chm__aligned_alloc(align, size) chm__aligned_alloc_at((align), (size), CHM__ALLOC_SITE)
CHM_HIDDEN void *chm__malloc_at(size_t size, const char *site);
CHM_HIDDEN void *chm__calloc_at(size_t n, size_t size, const char *site);
CHM_HIDDEN void *chm__aligned_alloc_at(size_t align, size_t size, const char *site);
CHM_HIDDEN void chm__free(void *p);

/* Invariant tables. A backend lists its self-check's codes once, as X(NAME, code, "meaning")
 * entries of one macro (binlock.h's BL_INVARIANTS); these expand a list into its enum and into
 * the function that names a code for messages (the chm_ops.invariant of the backend). */
#define CHM__INVARIANT_ENUMERATOR(name, code, text) name = code,
#define CHM__INVARIANT_CASE(name, code, text)                                                      \
    case name:                                                                                     \
        return text;
#define CHM__INVARIANT_ENUM(tag, LIST) enum tag { LIST(CHM__INVARIANT_ENUMERATOR) }
#define CHM__INVARIANT_NAMER(fn, LIST)                                                             \
    const char *fn(int code)                                                                       \
    {                                                                                              \
        switch (code) {                                                                            \
            LIST(CHM__INVARIANT_CASE)                                                              \
        default: return NULL;                                                                      \
        }                                                                                          \
    }

/* Check a quiescent map's internal invariants (no operation may run concurrently): 0 when
 * sound, a negative backend-specific code for the first broken invariant. For tests. */
CHM_HIDDEN int chm__validate(chm *m);
/* The broken invariant a chm__validate code names, for messages. */
CHM_HIDDEN const char *chm__invariant(const chm *m, int code);

/* Test hooks (linked by the tests through the static library). */
CHM_HIDDEN void chm__alloc_fail_nth(uint64_t n); /* arm counting (resets both counters);
                                                    n >= 1: the n-th allocation from now fails,
                                                    the others succeed; 0 = count only */
CHM_HIDDEN void chm__alloc_disarm(void);         /* stop counting and failing */
CHM_HIDDEN uint64_t chm__alloc_count(void);      /* allocations attempted while armed */
CHM_HIDDEN long chm__alloc_live(void);           /* blocks allocated minus freed while armed */
/* While armed, make every allocation fail (@on) or stop that; these failures are not counted
 * in chm__alloc_count, so a fail-the-n-th sweep is numbered the same around them. For calls
 * that must work with no memory at all (chm_visit, chm_stats_get). Arming clears it. */
CHM_HIDDEN void chm__alloc_fail_every(bool on);
CHM_HIDDEN uint64_t chm__alloc_denied(void); /* allocations it failed since arming */

/* Allocation sites seen while armed (kept across chm__alloc_fail_nth calls until reset). */
struct chm__alloc_site {
    const char *site;      /* "file:line" of the call (one literal per call site) */
    uint64_t reached;      /* attempts at this site */
    uint64_t failed;       /* attempts made to fail here */
    uint64_t first_before; /* smallest attempt number n at which the site was reached with
                              n <= the armed failure point (or with none armed): no failure
                              preceded it, so re-arming with chm__alloc_fail_nth(first_before)
                              fails this site, if the caller's workload is deterministic;
                              0 = never reached before a failure */
};
CHM_HIDDEN void chm__alloc_sites_reset(void);
/* Copy up to @max sites into @out; returns how many sites there are. */
CHM_HIDDEN size_t chm__alloc_sites(struct chm__alloc_site *out, size_t max);

#endif /* CHM_INTERNAL_H */
