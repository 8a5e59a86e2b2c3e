/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * gomap.c - Go's classic map (runtime/map.go, Go 1.0-1.23), the table under chm_unsafe and
 * chm_rwlock.
 *
 * HOW IT WORKS
 *
 * The table is an array of 2^B buckets. A bucket holds 8 slots: 8 top-hash bytes, then the 8 keys,
 * then the 8 values, then a pointer to an overflow bucket. A key's hash picks the bucket with its
 * low B bits; its top 7 bits (with bit 7 set, so they never collide with a state code) are kept
 * in tophash[] so a lookup compares one byte per slot, eight at once, before comparing keys. Small tophash values
 * are slot states: EMPTY_REST (this slot and every later one in the chain is empty: a lookup stops
 * there), EMPTY_ONE, and during growth EVAC_X / EVAC_Y / EVAC_EMPTY in old buckets. States live in
 * tophash, never in keys or values, so all 2^64 keys and values stay legal.
 *
 * Growth. An insert that would take the average load past 6.5 entries per bucket doubles the
 * table; an insert into a table with as many overflow buckets as buckets grows it at the same size
 * (the entries are re-packed, compacting chains left sparse by deletes). hash_grow() only
 * allocates the new array and moves the old one to `oldbuckets`; entries move later, incrementally:
 * every write that lands on bucket i first evacuates the old bucket behind i plus one more at the
 * `nevacuate` mark (grow_work). Evacuation splits an old bucket between X (same index) and Y
 * (index + old size) by the hash bit that the doubling added. Lookups during growth read the old
 * bucket while it is not yet evacuated. When the mark passes the last old bucket, the old array and
 * its overflow buckets are freed. From B = 4, 2^(B-4) overflow buckets are preallocated behind the
 * array and handed out by bump allocation before any malloc.
 *
 * Iteration starts at a random bucket and a random slot offset, as Go's mapiterinit; the caller
 * supplies the random word (unsafe.c and rwlock.c draw it from a per-map sequence seeded by the
 * hash seed, so a fixed seed iterates reproducibly).
 *
 * chm_compute splits like the compute-if-absent insert (chm__gomap_update_prepare / _apply): the
 * reservation for an absent key, then fn, then the decision, which is applied only if nothing
 * changed under fn (modcount, and a present key's value). chm_clear takes both arrays out of the
 * map (the map is left with none and B kept), hands their entries to the callbacks, and puts the
 * current array back zeroed: no allocation, and the caller may drop its lock around the
 * callbacks (gomap.h). A growth in progress ends there: the map keeps the new array.
 *
 * For chm_stats the table counts, exactly: completed growths (resizes; same-size ones included,
 * and one a clear cuts short), overflow buckets malloc'd apart from the arrays (heap_overflow,
 * counted when linked), and the bytes of chm_keys_string's key copies (key_bytes; other keyops'
 * copies have no known size). chm__gomap_validate checks both counters.
 *
 * Deliberate differences from Go
 *   - Out-of-memory is a status, not a crash. Every allocation happens before the change it
 *     serves, so CHM_ENOMEM leaves the content unchanged: evacuation copies into the two
 *     destination buckets (empty by construction: nothing is inserted into a new bucket before
 *     its old bucket is evacuated) and marks the old bucket only once all copies succeeded; a
 *     failure re-zeroes the destinations. Overwrites and removes never fail: when growth cannot
 *     progress they act on the key where it currently lives. An insert can also be split in two
 *     (chm__gomap_reserve, then chm__gomap_commit or chm__gomap_cancel) so that a compute function runs between
 *     the part that can fail and the part that cannot.
 *   - noverflow is an exact size_t compared with 2^B. Go keeps a uint16 that it increments with
 *     probability 2^-(B-15) above B = 15 and compares with 2^min(B,15): the same threshold.
 *   - No iterator ever walks an old bucket: chm_iter_init finishes any growth first
 *     (chm__gomap_finish_growth), and a later growth needs an insert, which a fail-fast iterator
 *     reports as CHM_ECONCURRENT before touching the table again. Go keeps old arrays alive for
 *     iterators through its GC instead; here they can be freed as soon as evacuation ends.
 *   - tophash is the hash's top 7 bits with bit 7 set (two instructions), where Go takes the
 *     top 8 bits and moves the values below MIN_TOPHASH up (four more, on every lookup). A
 *     slot then matches a wrong key's tophash with probability 1/128 instead of about 1/251;
 *     with the eight tophashes compared at once (tophash_matches), a false match costs one key
 *     comparison.
 *   - The seed is re-randomised when the map becomes empty (Go issue 25237) only if the user did
 *     not choose one, so a fixed seed keeps runs reproducible. The next seed is derived from the
 *     current secret one by a mixing step (Go calls its fast random source).
 *   - No NaN keys (keys are words compared by keyops.equal), so evacuation needs no NaN rule.
 */
#include "gomap.h"
#include "torture.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

enum {
    EMPTY_REST = 0, /* this slot and all later slots and overflow buckets are empty */
    EMPTY_ONE = 1,  /* this slot is empty */
    EVAC_X = 2,     /* entry moved to the first half of the new table */
    EVAC_Y = 3,     /* entry moved to the second half */
    EVAC_EMPTY = 4, /* slot was empty, bucket evacuated */
    MIN_TOPHASH = 5 /* smallest tophash of a live slot */
};

#define LOAD_FACTOR_NUM 13 /* load factor 6.5 = 13/2 entries per bucket */
#define LOAD_FACTOR_DEN 2

static inline bool is_empty(uint8_t top)
{
    return top <= EMPTY_ONE;
}

static inline bool evacuated(const gomap_bucket *b)
{
    uint8_t h = b->tophash[0];
    return h > EMPTY_ONE && h < MIN_TOPHASH;
}

/* The hash's top 7 bits with bit 7 set, so never below MIN_TOPHASH (see the differences from
 * Go at the top). */
static inline uint8_t tophash(uint64_t hash)
{
    return (uint8_t)(hash >> 56) | 0x80;
}

static inline uint64_t hash_of(const gomap *g, uint64_t key)
{
    const chm *m = g->owner;
    return chm_likely(m->int_keys) ? chm__hash_u64(key, g->seed, g->hash_mul)
                                   : m->keys->hash(key, g->seed);
}

static inline size_t bucket_shift(uint8_t B)
{
    return (size_t)1 << B;
}

/* Go's overLoadFactor: more than one bucket's worth and above 6.5 per bucket on average. */
static bool over_load_factor(size_t count, uint8_t B)
{
    return count > GOMAP_BUCKET_CNT &&
           count / LOAD_FACTOR_NUM >= bucket_shift(B) / LOAD_FACTOR_DEN &&
           (B >= 63 || count > LOAD_FACTOR_NUM * (bucket_shift(B) / LOAD_FACTOR_DEN));
}

static bool too_many_overflow_buckets(size_t noverflow, uint8_t B)
{
    return noverflow >= bucket_shift(B);
}

static size_t noldbuckets(const gomap *g)
{
    return g->same_size_grow ? bucket_shift(g->B) : bucket_shift(g->B) >> 1;
}

/* ---- bucket arrays ---------------------------------------------------------------------- */

/* 2^B buckets plus the preallocated overflow buckets; zeroed, so every slot is EMPTY_REST. */
static gomap_bucket *make_bucket_array(uint8_t B, size_t *nalloc)
{
    size_t base = bucket_shift(B);
    size_t extra = B >= 4 ? bucket_shift((uint8_t)(B - 4)) : 0;
    if (B >= 58 || base + extra > SIZE_MAX / sizeof(gomap_bucket) / 2)
        return NULL; /* no machine has this much memory: fail cleanly */
    *nalloc = base + extra;
    return chm__calloc(base + extra, sizeof(gomap_bucket));
}

static bool in_array(const gomap_bucket *arr, size_t nalloc, const gomap_bucket *b)
{
    return b >= arr && b < arr + nalloc;
}

/* Free the overflow buckets @arr's chains reach that were malloc'd separately (the array itself
 * stays); returns how many, for heap_overflow. */
static size_t free_heap_overflow(gomap_bucket *arr, size_t nalloc, size_t nbuckets)
{
    size_t n = 0;
    for (size_t i = 0; i < nbuckets; i++) {
        gomap_bucket *ovf = arr[i].overflow;
        while (ovf != NULL) {
            gomap_bucket *next = ovf->overflow;
            if (!in_array(arr, nalloc, ovf)) {
                chm__free(ovf);
                n++;
            }
            ovf = next;
        }
    }
    return n;
}

/* Free an array and the overflow buckets its chains reach that were malloc'd separately;
 * returns how many of those, for heap_overflow. */
static size_t free_bucket_array(gomap_bucket *arr, size_t nalloc, size_t nbuckets)
{
    if (arr == NULL)
        return 0;
    size_t n = free_heap_overflow(arr, nalloc, nbuckets);
    chm__free(arr);
    return n;
}

/* An empty overflow bucket, not linked yet: preallocated first, then malloc. NULL = no memory.
 * *@pooled tells which (a preallocated one is freed with its array, never alone). */
static gomap_bucket *alloc_overflow(gomap *g, bool *pooled)
{
    *pooled = g->next_overflow < g->end_overflow;
    if (*pooled)
        return g->next_overflow++;
    return chm__calloc(1, sizeof(gomap_bucket));
}

/* Counted when linked, not when allocated: a reservation's spare may be freed unlinked, by
 * chm__gomap_cancel, which has no table to count in. */
static void link_overflow(gomap *g, gomap_bucket *b, gomap_bucket *ovf, bool pooled)
{
    g->noverflow++;
    if (!pooled)
        g->heap_overflow++;
    b->overflow = ovf;
}

/* Append an empty overflow bucket to @b. NULL = no memory. */
static gomap_bucket *new_overflow(gomap *g, gomap_bucket *b)
{
    bool pooled;
    gomap_bucket *ovf = alloc_overflow(g, &pooled);
    if (ovf != NULL)
        link_overflow(g, b, ovf, pooled);
    return ovf;
}

/* A map without a bucket array (Go: h.buckets == nil, before the first insert and after a
 * clear) points at this one empty bucket, with bucket_mask 0, so a lookup needs no test for
 * it: the bucket's slots are all EMPTY_REST and it has no overflow. Never written (read-only
 * memory: a write would fault); has_array() tells it apart. */
static const gomap_bucket no_array_bucket;

static inline bool has_array(const gomap *g)
{
    return g->buckets != &no_array_bucket;
}

static void set_no_array(gomap *g)
{
    g->buckets = (gomap_bucket *)&no_array_bucket; /* const: see has_array's callers */
    g->bucket_mask = 0;
    g->nalloc = 0;
    g->next_overflow = g->end_overflow = NULL;
}

static void set_array(gomap *g, gomap_bucket *arr, size_t nalloc)
{
    g->buckets = arr;
    g->bucket_mask = bucket_shift(g->B) - 1;
    g->nalloc = nalloc;
    g->next_overflow = arr + bucket_shift(g->B);
    g->end_overflow = arr + nalloc;
}

/* ---- construction ----------------------------------------------------------------------- */

int chm__gomap_init(gomap *g, const chm *owner, size_t hint)
{
    memset(g, 0, sizeof *g);
    g->owner = owner;
    g->seed = owner->seed;
    g->hash_mul = owner->hash_mul;
    g->reseed = owner->opt.seed == 0; /* the user did not choose one */
    uint8_t B = 0;
    while (B < 58 && over_load_factor(hint, B))
        B++;
    g->B = B;
    set_no_array(g);
    if (B == 0)
        return CHM_OK; /* allocated lazily by the first insert, as Go's makemap_small */
    size_t nalloc;
    gomap_bucket *arr = make_bucket_array(B, &nalloc);
    if (arr == NULL)
        return CHM_ENOMEM;
    set_array(g, arr, nalloc);
    return CHM_OK;
}

static void release_bucket_entries(const chm *owner, gomap_bucket *b)
{
    for (; b != NULL; b = b->overflow)
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++)
            if (b->tophash[i] >= MIN_TOPHASH) {
                chm__key_release(owner, b->keys[i]);
                chm__value_free(owner, b->vals[i]);
            }
}

void chm__gomap_destroy(gomap *g)
{
    if (g->oldbuckets != NULL) {
        size_t n = noldbuckets(g);
        for (size_t i = 0; i < n; i++)
            if (!evacuated(&g->oldbuckets[i]))
                release_bucket_entries(g->owner, &g->oldbuckets[i]);
        free_bucket_array(g->oldbuckets, g->old_nalloc, n);
    }
    if (has_array(g)) {
        for (size_t i = 0; i < bucket_shift(g->B); i++)
            release_bucket_entries(g->owner, &g->buckets[i]);
        free_bucket_array(g->buckets, g->nalloc, bucket_shift(g->B));
    }
    memset(g, 0, sizeof *g);
}

/* ---- lookup ----------------------------------------------------------------------------- */

/* During a growth: @hash's old bucket while it is not evacuated, else its new one @b. */
static inline gomap_bucket *home_bucket_growing(const gomap *g, uint64_t hash, gomap_bucket *b)
{
    size_t mask = g->bucket_mask;
    if (!g->same_size_grow)
        mask >>= 1;
    gomap_bucket *oldb = &g->oldbuckets[hash & mask];
    return evacuated(oldb) ? b : oldb;
}

/* The bucket chain that holds @hash's key now: the old bucket while it is not evacuated. */
static inline gomap_bucket *home_bucket(const gomap *g, uint64_t hash)
{
    gomap_bucket *b = &g->buckets[hash & g->bucket_mask];
    if (g->oldbuckets != NULL)
        b = home_bucket_growing(g, hash, b);
    return b;
}

/* A bucket's eight tophash bytes as one word, byte i (slot i) in bits 8i..8i+7. */
static inline uint64_t tophash_word(const gomap_bucket *b)
{
    uint64_t w;
    memcpy(&w, b->tophash, sizeof w);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* The zero bytes of @x as a mask with bit i set for byte i: the eight slots of a bucket tested
 * at once instead of one byte per iteration (Go's own loops go byte by byte). With SSE2 (every
 * x86-64) a byte compare and a movemask; elsewhere the exact zero-byte test in a 64-bit word
 * (no false positives, unlike the shorter (x - 0x01..) & ~x form), its 0x80-per-byte result
 * gathered into one bit per byte by a multiply. */
static inline unsigned zero_bytes(uint64_t x)
{
#ifdef __SSE2__
    __m128i v = _mm_cvtsi64_si128((long long)x); /* the high 8 bytes are zero: masked below */
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) & 0xffu;
#else
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL;
    uint64_t m = ~(((x & lo7) + lo7) | x | lo7) >> 7; /* 1 exactly in the zero bytes' bit 0 */
    return (unsigned)((m * 0x0102040810204080ULL) >> 56); /* byte i's bit to bit i */
#endif
}

/* The slots whose tophash is @top. Exact, so a slot that matches is never an empty one (empty
 * and evacuated marks are below MIN_TOPHASH, @top is not), and an integer-key lookup compares
 * keys without looking at the slot's state. With SSE2 the eight bytes are compared with @top
 * broadcast to all sixteen lanes: the load's upper eight lanes are zero and @top is not, so no
 * mask is needed (seven instructions; the xor-and-zero-test form takes ten). */
static inline unsigned tophash_matches(const gomap_bucket *b, uint8_t top)
{
#ifdef __SSE2__
    __m128i w = _mm_loadl_epi64((const __m128i *)(const void *)b->tophash); /* slot i: lane i */
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8((char)top)));
#else
    return zero_bytes(tophash_word(b) ^ (0x0101010101010101ULL * top));
#endif
}

/* The empty slots (EMPTY_REST or EMPTY_ONE: tophash 0 or 1), and those marked EMPTY_REST. */
static inline unsigned empty_slots(const gomap_bucket *b)
{
    return zero_bytes(tophash_word(b) & 0xfefefefefefefefeULL);
}

static inline unsigned empty_rest_slots(const gomap_bucket *b)
{
    return zero_bytes(tophash_word(b));
}

/* Find @key in the chain from @b (Go's mapaccess loop). Returns the bucket, slot in *slot.
 * Go stops at an EMPTY_REST mark; this follows the chain to its end instead (the buckets after
 * such a mark are empty: no match there, the same answer), which saves a test per slot.
 * @u64: the map has integer keys (gomap_get_u64), the comparison a plain ==. */
static inline gomap_bucket *find_in_chain_k(const gomap *g, gomap_bucket *b, uint64_t key,
                                            uint8_t top, int *slot, bool u64)
{
    for (; b != NULL; b = b->overflow) {
        for (unsigned m = tophash_matches(b, top); m != 0; m &= m - 1) {
            unsigned i = (unsigned)__builtin_ctz(m);
            if (u64 ? b->keys[i] == key : chm__key_equal(g->owner, key, b->keys[i])) {
                *slot = (int)i;
                return b;
            }
        }
    }
    return NULL;
}

static gomap_bucket *find_in_chain(const gomap *g, gomap_bucket *b, uint64_t key, uint8_t top,
                                   int *slot)
{
    return find_in_chain_k(g, b, key, top, slot, false);
}

int chm__gomap_get(const gomap *g, uint64_t key, uint64_t *value)
{
    if (g->count == 0)
        return CHM_NOTFOUND;
    uint64_t hash = hash_of(g, key);
    int i;
    gomap_bucket *b = find_in_chain(g, home_bucket(g, hash), key, tophash(hash), &i);
    if (b == NULL)
        return CHM_NOTFOUND;
    if (value != NULL)
        *value = b->vals[i];
    return CHM_OK;
}

/* The integer-key lookup from @b, @hash's home bucket. */
static inline int lookup_u64(const gomap_bucket *b, uint64_t key, uint8_t top, uint64_t *value)
{
    do {
        for (unsigned m = tophash_matches(b, top); m != 0; m &= m - 1) {
            size_t i = (size_t)__builtin_ctzll(m); /* 64-bit: no extension to index with */
            if (b->keys[i] == key) {
                if (value != NULL)
                    *value = b->vals[i];
                return CHM_OK;
            }
        }
    } while ((b = b->overflow) != NULL);
    return CHM_NOTFOUND;
}

/* chm__gomap_get_u64 during a growth: the old bucket while it is not evacuated. Out of line and
 * reached by a tail call, so the common path needs no stack frame. */
static __attribute__((noinline)) int get_u64_growing(const gomap *g, uint64_t key, uint64_t *value)
{
    uint64_t hash = chm__hash_u64(key, g->seed, g->hash_mul);
    return lookup_u64(home_bucket(g, hash), key, tophash(hash), value);
}

/* Go's mapaccess for integer keys. No test for an empty map (Go's h.count == 0): a map without
 * an array looks up its one empty bucket (no_array_bucket). */
int chm__gomap_get_u64(const gomap *g, uint64_t key, uint64_t *value)
{
    if (chm_unlikely(g->oldbuckets != NULL))
        return get_u64_growing(g, key, value);
    uint64_t hash = chm__hash_u64(key, g->seed, g->hash_mul);
    return lookup_u64(&g->buckets[hash & g->bucket_mask], key, tophash(hash), value);
}

/* ---- growth ----------------------------------------------------------------------------- */

static int hash_grow(gomap *g)
{
    /* Not over the load factor: too many overflow buckets, so grow at the same size. */
    uint8_t bigger = over_load_factor(g->count + 1, g->B) ? 1 : 0;
    size_t nalloc;
    gomap_bucket *arr = make_bucket_array((uint8_t)(g->B + bigger), &nalloc);
    if (arr == NULL)
        return CHM_ENOMEM;
    g->oldbuckets = g->buckets;
    g->old_nalloc = g->nalloc;
    g->B = (uint8_t)(g->B + bigger);
    g->same_size_grow = !bigger;
    set_array(g, arr, nalloc);
    g->nevacuate = 0;
    g->noverflow = 0;
    g->modcount++;
    return CHM_OK;
}

struct evac_dst {
    gomap_bucket *b; /* current destination bucket */
    int i;           /* next free slot in b */
};

/* Zero a destination chain after a failed evacuation; overflow buckets stay linked (empty) and
 * are reused by the retry or freed with the array. */
static void zero_chain(gomap_bucket *b)
{
    for (; b != NULL; b = b->overflow)
        memset(b->tophash, EMPTY_REST, sizeof b->tophash);
}

static void advance_evacuation_mark(gomap *g, size_t newbit)
{
    g->nevacuate++;
    /* Bound the scan (Go: 1024) so one write never walks the whole old table. */
    size_t stop = g->nevacuate + 1024;
    if (stop > newbit)
        stop = newbit;
    while (g->nevacuate != stop && evacuated(&g->oldbuckets[g->nevacuate]))
        g->nevacuate++;
    if (g->nevacuate == newbit) { /* growth done: nothing refers to the old array any more */
        g->heap_overflow -= free_bucket_array(g->oldbuckets, g->old_nalloc, newbit);
        g->oldbuckets = NULL;
        g->old_nalloc = 0;
        g->same_size_grow = false;
        g->resizes++;
    }
}

/* Move old bucket @oldbucket's entries to X (same index) and Y (index + old size). */
static int evacuate(gomap *g, size_t oldbucket)
{
    size_t newbit = noldbuckets(g);
    gomap_bucket *b = &g->oldbuckets[oldbucket];
    if (!evacuated(b)) {
        struct evac_dst d[2] = {{&g->buckets[oldbucket], 0}, {NULL, 0}};
        if (!g->same_size_grow)
            d[1].b = &g->buckets[oldbucket + newbit];
        for (gomap_bucket *ob = b; ob != NULL; ob = ob->overflow) {
            for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
                uint8_t top = ob->tophash[i];
                if (is_empty(top))
                    continue;
                int y = !g->same_size_grow && (hash_of(g, ob->keys[i]) & newbit) != 0;
                struct evac_dst *dst = &d[y];
                if (dst->i == GOMAP_BUCKET_CNT) {
                    gomap_bucket *next = dst->b->overflow;
                    if (next == NULL && (next = new_overflow(g, dst->b)) == NULL) {
                        /* From the chain heads: d[].b has moved on past filled buckets. */
                        zero_chain(&g->buckets[oldbucket]);
                        if (!g->same_size_grow)
                            zero_chain(&g->buckets[oldbucket + newbit]);
                        return CHM_ENOMEM;
                    }
                    dst->b = next;
                    dst->i = 0;
                }
                dst->b->tophash[dst->i] = top;
                dst->b->keys[dst->i] = ob->keys[i];
                dst->b->vals[dst->i] = ob->vals[i];
                dst->i++;
            }
        }
        CHM_YIELD_POINT("gomap.evacuate.before_mark"); /* copied, old bucket still live */
        /* Every copy succeeded: mark the old chain evacuated (lookups switch to X/Y now). */
        for (gomap_bucket *ob = b; ob != NULL; ob = ob->overflow) {
            for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
                if (is_empty(ob->tophash[i]))
                    ob->tophash[i] = EVAC_EMPTY;
                else if (!g->same_size_grow && (hash_of(g, ob->keys[i]) & newbit) != 0)
                    ob->tophash[i] = EVAC_Y;
                else
                    ob->tophash[i] = EVAC_X;
            }
        }
    }
    if (oldbucket == g->nevacuate)
        advance_evacuation_mark(g, newbit);
    return CHM_OK;
}

/* Evacuate the old bucket behind new bucket @bucket, plus one more to make progress. */
static int grow_work(gomap *g, size_t bucket)
{
    int rc = evacuate(g, bucket & (noldbuckets(g) - 1));
    CHM_YIELD_POINT("gomap.grow_work.between"); /* the table half evacuated */
    if (rc == CHM_OK && g->oldbuckets != NULL)
        rc = evacuate(g, g->nevacuate);
    return rc;
}

int chm__gomap_finish_growth(gomap *g)
{
    while (g->oldbuckets != NULL) {
        int rc = evacuate(g, g->nevacuate);
        if (rc != CHM_OK)
            return rc;
    }
    return CHM_OK;
}

/* ---- writes ----------------------------------------------------------------------------- */

/*
 * Where @key goes (Go's mapassign up to the insert): make the array, do the growth work its
 * bucket needs, and grow first if an insert would overload the table. CHM_EXISTS: *valp points at
 * the present value. CHM_OK: absent; *insertb and *inserti name the chain's first free slot, or
 * *insertb is NULL and *last is the chain's last bucket (every slot full). CHM_ENOMEM: the
 * content is unchanged (the growth work that succeeded stays done).
 */
static int find_slot(gomap *g, uint64_t key, uint64_t hash, uint64_t **valp, gomap_bucket **insertb,
                     int *inserti, gomap_bucket **last)
{
    uint8_t top = tophash(hash);
    int slot;

    if (!has_array(g)) {
        size_t nalloc;
        gomap_bucket *arr = make_bucket_array(g->B, &nalloc);
        if (arr == NULL)
            return CHM_ENOMEM;
        set_array(g, arr, nalloc);
    }

again:;
    size_t bucket = hash & (bucket_shift(g->B) - 1);
    if (g->oldbuckets != NULL && grow_work(g, bucket) != CHM_OK) {
        /* No memory to move the old bucket: a present key can still be overwritten where it
         * lives; only an insert has to fail. */
        gomap_bucket *b = find_in_chain(g, home_bucket(g, hash), key, top, &slot);
        if (b == NULL)
            return CHM_ENOMEM;
        *valp = &b->vals[slot];
        return CHM_EXISTS;
    }

    gomap_bucket *b = &g->buckets[bucket];
    *insertb = NULL;
    *inserti = 0;
    /* Go's bucketloop, eight slots at a time: the key among the slots whose tophash matches;
     * the first empty slot of the chain for an insert; and the stop at a bucket holding an
     * EMPTY_REST mark (every later slot and bucket of the chain is empty: no key there). */
    for (;;) {
        for (unsigned m = tophash_matches(b, top); m != 0; m &= m - 1) {
            unsigned i = (unsigned)__builtin_ctz(m);
            if (chm__key_equal(g->owner, key, b->keys[i])) {
                *valp = &b->vals[i];
                return CHM_EXISTS;
            }
        }
        unsigned empty = empty_slots(b);
        if (empty != 0 && *insertb == NULL) {
            *insertb = b;
            *inserti = __builtin_ctz(empty);
        }
        if (empty_rest_slots(b) != 0 || b->overflow == NULL)
            break;
        b = b->overflow;
    }

    /* Key absent. Grow first if the insert would overload the table; then start over, since
     * the key's bucket has moved. */
    if (g->oldbuckets == NULL &&
        (over_load_factor(g->count + 1, g->B) || too_many_overflow_buckets(g->noverflow, g->B))) {
        if (hash_grow(g) != CHM_OK)
            return CHM_ENOMEM;
        goto again;
    }
    *last = b;
    return CHM_OK;
}

/* The bytes a stored key copy holds, for chm_stats.bytes: known for chm_keys_string only (an
 * arbitrary keyops.retain does not say what it allocates). */
static size_t key_copy_bytes(const gomap *g, uint64_t stored)
{
    if (chm_likely(g->owner->int_keys) || g->owner->keys != &chm_keys_string)
        return 0;
    return strlen((const char *)(uintptr_t)stored) + 1;
}

/* Fill slot @i of @b with the stored key @stored: a new entry whose value the caller sets. */
static uint64_t *place(gomap *g, gomap_bucket *b, int i, uint64_t stored, uint64_t hash)
{
    b->keys[i] = stored;
    b->tophash[i] = tophash(hash);
    g->count++;
    g->modcount++;
    g->key_bytes += key_copy_bytes(g, stored);
    return &b->vals[i];
}

int chm__gomap_assign(gomap *g, uint64_t key, uint64_t **valp)
{
    uint64_t hash = hash_of(g, key);
    gomap_bucket *insertb, *last;
    int inserti;
    int rc = find_slot(g, key, hash, valp, &insertb, &inserti, &last);
    if (rc != CHM_OK)
        return rc;
    uint64_t stored;
    if (!chm__key_retain(g->owner, key, &stored))
        return CHM_ENOMEM;
    if (insertb == NULL) { /* every slot of the chain is full: append an overflow bucket */
        insertb = new_overflow(g, last);
        if (insertb == NULL) {
            chm__key_release(g->owner, stored);
            return CHM_ENOMEM;
        }
        inserti = 0;
    }
    *valp = place(g, insertb, inserti, stored, hash);
    return CHM_OK;
}

int chm__gomap_reserve(gomap *g, uint64_t key, gomap_reservation *r, uint64_t *present)
{
    r->hash = hash_of(g, key);
    r->spare = NULL;
    uint64_t *valp;
    gomap_bucket *insertb, *last;
    int inserti;
    int rc = find_slot(g, key, r->hash, &valp, &insertb, &inserti, &last);
    if (rc == CHM_EXISTS)
        *present = *valp;
    if (rc != CHM_OK)
        return rc;
    if (!chm__key_retain(g->owner, key, &r->stored))
        return CHM_ENOMEM;
    if (insertb == NULL && (r->spare = alloc_overflow(g, &r->spare_pooled)) == NULL) {
        chm__key_release(g->owner, r->stored);
        return CHM_ENOMEM;
    }
    return CHM_OK;
}

void chm__gomap_commit(gomap *g, gomap_reservation *r, uint64_t value)
{
    /* The key's chain is where chm__gomap_reserve found it: no growth started since (that needs an
     * insert, which the caller rules out), and no other growth work writes into it (its old
     * bucket was evacuated by chm__gomap_reserve). Its first free slot, or the spare behind it. */
    gomap_bucket *b = &g->buckets[r->hash & (bucket_shift(g->B) - 1)];
    for (;;) {
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
            if (is_empty(b->tophash[i])) {
                *place(g, b, i, r->stored, r->hash) = value;
                chm__gomap_cancel(r); /* a spare, if one was set aside, is not needed */
                return;
            }
        }
        if (b->overflow == NULL)
            break;
        b = b->overflow;
    }
    link_overflow(g, b, r->spare, r->spare_pooled);
    *place(g, r->spare, 0, r->stored, r->hash) = value;
    r->spare = NULL;
}

void chm__gomap_cancel(gomap_reservation *r)
{
    /* A preallocated spare stays in its array unused (freed with it): giving it back would need
     * to know that the array and its pool did not change meanwhile. */
    if (r->spare != NULL && !r->spare_pooled)
        chm__free(r->spare);
    r->spare = NULL;
}

/* After slot i of b became EMPTY_ONE: if nothing live follows it, turn it and the run of
 * EMPTY_ONE slots before it into EMPTY_REST, walking back across the chain from @head. */
static void mark_empty_rest(gomap_bucket *head, gomap_bucket *b, int i)
{
    if (i == GOMAP_BUCKET_CNT - 1) {
        if (b->overflow != NULL && b->overflow->tophash[0] != EMPTY_REST)
            return;
    } else if (b->tophash[i + 1] != EMPTY_REST) {
        return;
    }
    for (;;) {
        b->tophash[i] = EMPTY_REST;
        if (i == 0) {
            if (b == head)
                return;
            gomap_bucket *c = b;
            for (b = head; b->overflow != c; b = b->overflow)
                ;
            i = GOMAP_BUCKET_CNT - 1;
        } else {
            i--;
        }
        if (b->tophash[i] != EMPTY_ONE)
            return;
    }
}

/* The next seed once the map is empty (see the top: Go issue 25237). */
static void reseed_if_empty(gomap *g)
{
    if (g->count == 0 && g->reseed) { /* an attacker cannot keep probing one seed forever */
        g->seed = chm__mix64(g->seed, 0x9e3779b97f4a7c15ULL) | 1;
        g->hash_mul = chm__hash_mul(g->seed);
    }
}

/* chm__gomap_remove and chm__gomap_remove_if: @expected NULL removes whatever value. */
static int remove_entry(gomap *g, uint64_t key, const uint64_t *expected, uint64_t *old_value,
                        uint64_t *old_key)
{
    if (g->count == 0)
        return CHM_NOTFOUND;
    uint64_t hash = hash_of(g, key);
    size_t bucket = hash & (bucket_shift(g->B) - 1);
    if (g->oldbuckets != NULL)
        (void)grow_work(g, bucket); /* on failure the key is removed where it lives */
    gomap_bucket *head = home_bucket(g, hash);
    int i;
    gomap_bucket *b = find_in_chain(g, head, key, tophash(hash), &i);
    if (b == NULL)
        return CHM_NOTFOUND;
    if (expected != NULL && b->vals[i] != *expected)
        return CHM_EXISTS;
    *old_value = b->vals[i];
    *old_key = b->keys[i];
    b->tophash[i] = EMPTY_ONE;
    mark_empty_rest(head, b, i);
    g->count--;
    g->modcount++;
    g->key_bytes -= key_copy_bytes(g, *old_key);
    reseed_if_empty(g);
    return CHM_OK;
}

int chm__gomap_remove(gomap *g, uint64_t key, uint64_t *old_value, uint64_t *old_key)
{
    return remove_entry(g, key, NULL, old_value, old_key);
}

int chm__gomap_remove_if(gomap *g, uint64_t key, uint64_t expected, uint64_t *old_key)
{
    uint64_t v;
    return remove_entry(g, key, &expected, &v, old_key);
}

/* ---- compute ------------------------------------------------------------------------------ */

int chm__gomap_update_prepare(gomap *g, uint64_t key, gomap_update *u)
{
    /* A SET of a present key is an overwrite and a DELETE a removal, neither of which allocates:
     * only an absent key needs what an insert needs, which is what the reservation holds. */
    u->drop_key = u->drop_value = false;
    int rc = chm__gomap_reserve(g, key, &u->res, &u->old);
    if (rc == CHM_ENOMEM)
        return rc;
    u->present = rc == CHM_EXISTS;
    if (!u->present)
        u->old = 0;
    /* Read after the reservation: a growth it started is this call's own, not fn's. */
    u->modcount = g->modcount;
    return CHM_OK;
}

/* Where @key's value lives now (its old bucket while not evacuated, as for a lookup), or NULL. */
static uint64_t *value_slot(const gomap *g, uint64_t key)
{
    if (g->count == 0)
        return NULL;
    uint64_t hash = hash_of(g, key);
    int i;
    gomap_bucket *b = find_in_chain(g, home_bucket(g, hash), key, tophash(hash), &i);
    return b != NULL ? &b->vals[i] : NULL;
}

int chm__gomap_update_apply(gomap *g, uint64_t key, gomap_update *u, chm_compute_action a,
                            uint64_t v, uint64_t *after)
{
    u->drop_key = u->drop_value = false;
    if (a == CHM_COMPUTE_SET && u->present && v == u->old)
        a = CHM_COMPUTE_KEEP; /* the map's own value handed back: it stays, nothing to free */
    /* fn's nested calls may have changed what it decided on. Structurally: the modcount. A
     * present key's value overwritten by a nested put or replace is no structural change, but
     * the decision was made on the value before it (and that value may have gone to value_free
     * already), so it must not be applied either. An evacuation may have moved the entry:
     * look it up again rather than keeping a pointer from before fn. */
    uint64_t *slot = NULL;
    bool changed = g->modcount != u->modcount;
    if (!changed && u->present) {
        slot = value_slot(g, key);
        changed = slot == NULL || *slot != u->old;
    }
    if (changed) {
        if (!u->present) {
            chm__gomap_cancel(&u->res);
            u->drop_key = true;
            u->key = u->res.stored;
        }
        /* fn's value entered no map: value_free, or it leaks (chm_compute_if_absent's rule).
         * Unless a nested call stored that very value for the key: then it is in the map. */
        uint64_t now;
        if (a == CHM_COMPUTE_SET && (chm__gomap_get(g, key, &now) != CHM_OK || now != v)) {
            u->drop_value = true;
            u->value = v;
        }
        return CHM_ECONCURRENT;
    }
    if (u->present) {
        switch (a) {
        case CHM_COMPUTE_SET: /* an overwrite: no structural change */
            *slot = v;
            *after = v;
            u->drop_value = true;
            u->value = u->old;
            return CHM_OK;
        case CHM_COMPUTE_DELETE:
            (void)chm__gomap_remove(g, key, &u->value, &u->key); /* present: CHM_OK */
            u->drop_key = u->drop_value = true;
            return CHM_NOTFOUND;
        default: *after = u->old; return CHM_OK;
        }
    }
    if (a == CHM_COMPUTE_SET) {
        chm__gomap_commit(g, &u->res, v);
        *after = v;
        return CHM_OK;
    }
    chm__gomap_cancel(&u->res); /* absent and kept absent: the key copy was not needed */
    u->drop_key = true;
    u->key = u->res.stored;
    return CHM_NOTFOUND;
}

void chm__gomap_update_abandon(gomap_update *u, chm_compute_action a, uint64_t v)
{
    /* As apply's failure, except that the table is not read (a racing writer may be changing
     * it): a SET value that is not the map's own value as fn saw it is dropped. */
    u->drop_key = u->drop_value = false;
    if (!u->present) {
        chm__gomap_cancel(&u->res);
        u->drop_key = true;
        u->key = u->res.stored;
    }
    if (a == CHM_COMPUTE_SET && !(u->present && v == u->old)) {
        u->drop_value = true;
        u->value = v;
    }
}

/* ---- clear ------------------------------------------------------------------------------ */

bool chm__gomap_clear_detach(gomap *g, gomap_cleared *c)
{
    memset(c, 0, sizeof *c);
    if (g->count == 0)
        return false; /* nothing removed: not a structural modification */
    c->buckets = g->buckets;
    c->nalloc = g->nalloc;
    c->B = g->B;
    if (g->oldbuckets != NULL) {
        /* A growth in progress ends here: its entries are being removed, the map keeps the new
         * (larger) array, so it counts as completed. */
        c->oldbuckets = g->oldbuckets;
        c->old_nalloc = g->old_nalloc;
        c->noldbuckets = noldbuckets(g);
        g->resizes++;
    }
    set_no_array(g);
    g->oldbuckets = NULL;
    g->old_nalloc = 0;
    g->nevacuate = 0;
    g->same_size_grow = false;
    g->noverflow = 0;
    g->heap_overflow = 0;
    g->key_bytes = 0;
    g->count = 0;
    g->modcount++;
    reseed_if_empty(g);
    return true;
}

void chm__gomap_clear_release(const chm *owner, gomap_cleared *c)
{
    if (c->oldbuckets != NULL) {
        for (size_t i = 0; i < c->noldbuckets; i++)
            if (!evacuated(&c->oldbuckets[i]))
                release_bucket_entries(owner, &c->oldbuckets[i]);
        free_bucket_array(c->oldbuckets, c->old_nalloc, c->noldbuckets);
        c->oldbuckets = NULL;
    }
    if (c->buckets != NULL) {
        /* New buckets whose old bucket was not evacuated yet hold nothing (gomap_validate's
         * -5), so every live entry of the array is released exactly once. */
        size_t n = bucket_shift(c->B);
        for (size_t i = 0; i < n; i++)
            release_bucket_entries(owner, &c->buckets[i]);
        (void)free_heap_overflow(c->buckets, c->nalloc, n);
        /* Zero: every slot EMPTY_REST, no chain, the preallocated overflow buckets unused. */
        memset(c->buckets, 0, c->nalloc * sizeof *c->buckets);
    }
}

void chm__gomap_clear_reattach(gomap *g, gomap_cleared *c)
{
    if (c->buckets == NULL)
        return;
    /* B does not change while the map has no array; an insert since the detach made one. */
    if (!has_array(g) && g->B == c->B)
        set_array(g, c->buckets, c->nalloc);
    else
        chm__free(c->buckets);
    c->buckets = NULL;
}

/* ---- stats ------------------------------------------------------------------------------ */

void chm__gomap_stats(const gomap *g, chm_stats *st)
{
    st->entries = g->count;
    st->buckets = has_array(g) ? bucket_shift(g->B) * GOMAP_BUCKET_CNT : 0;
    st->bytes =
        (g->nalloc + g->old_nalloc + g->heap_overflow) * sizeof(gomap_bucket) + g->key_bytes;
    st->resizes = g->resizes;
    st->pending = 0;
}

/* ---- iteration -------------------------------------------------------------------------- */

void chm__gomap_iter_init(gomap_iter *it, const gomap *g, uint64_t rnd)
{
    memset(it, 0, sizeof *it);
    it->modcount = g->modcount;
    if (!has_array(g) || g->count == 0)
        return; /* i == mask + 1 == 0 buckets: ends at once */
    it->buckets = g->buckets;
    it->mask = bucket_shift(g->B) - 1;
    it->start = (size_t)rnd & it->mask;
    it->offset = (uint8_t)((rnd >> 56) & (GOMAP_BUCKET_CNT - 1));
}

int chm__gomap_iter_next(gomap_iter *it, const gomap *g, uint64_t *key, uint64_t *value)
{
    if (it->failed || g->modcount != it->modcount) {
        it->failed = true;
        return CHM_ECONCURRENT;
    }
    if (it->buckets == NULL)
        return CHM_END;
    for (;;) {
        if (it->b == NULL) {
            if (it->i > it->mask)
                return CHM_END;
            it->b = &it->buckets[(it->start + it->i) & it->mask];
            it->i++;
            it->slot = 0;
        }
        while (it->slot < GOMAP_BUCKET_CNT) {
            int i = (it->offset + it->slot) & (GOMAP_BUCKET_CNT - 1);
            it->slot++;
            if (it->b->tophash[i] >= MIN_TOPHASH) {
                if (key != NULL)
                    *key = it->b->keys[i];
                if (value != NULL)
                    *value = it->b->vals[i];
                return CHM_OK;
            }
        }
        it->b = it->b->overflow;
        it->slot = 0;
    }
}

/* ---- self-check ------------------------------------------------------------------------- */

/* The invariants chm__gomap_validate checks, one line each: the name it returns, the number
 * (stable: messages print it) and what it means. chm__gomap_invariant's switch is generated from
 * this table, so a number used twice does not compile (duplicate case). */
#define GOMAP_INVARIANTS(X)                                                                        \
    X(GOMAP_INV_COUNT, -1, "count differs from the live slots")                                    \
    X(GOMAP_INV_EMPTY_REST, -2, "EMPTY_REST followed by a used slot")                              \
    X(GOMAP_INV_EVAC_MARK, -3, "evacuation mark outside an evacuated old bucket")                  \
    X(GOMAP_INV_WRONG_BUCKET, -4, "entry in the wrong bucket or with a stale tophash")             \
    X(GOMAP_INV_FILLED_EARLY, -5, "new bucket filled before its old bucket was evacuated")         \
    X(GOMAP_INV_DUPLICATE, -6, "a lookup finds another slot (duplicate key)")                      \
    X(GOMAP_INV_GROWTH, -7, "growth state (oldbuckets, nevacuate, same_size_grow) inconsistent")   \
    X(GOMAP_INV_NOVERFLOW, -8, "noverflow differs from the overflow buckets in the chains")        \
    X(GOMAP_INV_HEAP_OVERFLOW, -9,                                                                 \
      "heap_overflow differs from the overflow buckets malloc'd apart")                            \
    X(GOMAP_INV_KEY_BYTES, -10, "key_bytes differs from the stored key copies")                    \
    X(GOMAP_INV_MASK, -11, "bucket_mask differs from the array (2^B - 1, or 0 without one)")

CHM__INVARIANT_ENUM(gomap_invariant, GOMAP_INVARIANTS);

static int validate_chain(const gomap *g, const gomap_bucket *b, size_t index, size_t mask,
                          size_t *live, size_t *kbytes)
{
    bool rest = false; /* an EMPTY_REST was seen: everything after must be EMPTY_REST */
    for (; b != NULL; b = b->overflow) {
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
            uint8_t top = b->tophash[i];
            if (rest && top != EMPTY_REST)
                return GOMAP_INV_EMPTY_REST;
            if (top == EMPTY_REST)
                rest = true;
            if (top > EMPTY_ONE && top < MIN_TOPHASH)
                return GOMAP_INV_EVAC_MARK;
            if (top < MIN_TOPHASH)
                continue;
            uint64_t h = hash_of(g, b->keys[i]);
            if ((h & mask) != index || tophash(h) != top)
                return GOMAP_INV_WRONG_BUCKET;
            int slot;
            if (find_in_chain(g, home_bucket(g, h), b->keys[i], top, &slot) != b || slot != i)
                return GOMAP_INV_DUPLICATE; /* duplicate key, or an EMPTY_REST before it */
            (*live)++;
            *kbytes += key_copy_bytes(g, b->keys[i]);
        }
    }
    return 0;
}

/* Overflow buckets of @arr's first @n chains that were malloc'd apart. */
static size_t count_heap_overflow(const gomap_bucket *arr, size_t nalloc, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        for (const gomap_bucket *b = arr[i].overflow; b != NULL; b = b->overflow)
            c += !in_array(arr, nalloc, b);
    return c;
}

int chm__gomap_validate(const gomap *g)
{
    size_t live = 0, kbytes = 0;
    if (g->oldbuckets == NULL && g->same_size_grow)
        return GOMAP_INV_GROWTH; /* growth state without growth */
    if (has_array(g) ? g->bucket_mask != bucket_shift(g->B) - 1 : g->bucket_mask != 0)
        return GOMAP_INV_MASK;
    if (has_array(g)) {
        size_t n = bucket_shift(g->B);
        size_t oldn = g->oldbuckets != NULL ? noldbuckets(g) : 0;
        if (oldn != 0 && g->nevacuate >= oldn)
            return GOMAP_INV_GROWTH; /* growth finished but the old array kept */
        for (size_t i = 0; i < g->nevacuate && i < oldn; i++)
            if (!evacuated(&g->oldbuckets[i]))
                return GOMAP_INV_GROWTH; /* evacuation mark past a live old bucket */
        size_t ovf = 0;
        for (size_t i = 0; i < n; i++)
            for (const gomap_bucket *b = g->buckets[i].overflow; b != NULL; b = b->overflow)
                ovf++;
        if (ovf != g->noverflow)
            return GOMAP_INV_NOVERFLOW;
        size_t heap = count_heap_overflow(g->buckets, g->nalloc, n);
        if (oldn != 0)
            heap += count_heap_overflow(g->oldbuckets, g->old_nalloc, oldn);
        if (heap != g->heap_overflow)
            return GOMAP_INV_HEAP_OVERFLOW;
        for (size_t i = 0; i < n; i++) {
            if (oldn != 0 && !evacuated(&g->oldbuckets[i & (oldn - 1)])) {
                /* New bucket not filled yet: it must be empty. */
                for (const gomap_bucket *b = &g->buckets[i]; b != NULL; b = b->overflow)
                    for (int s = 0; s < GOMAP_BUCKET_CNT; s++)
                        if (b->tophash[s] >= MIN_TOPHASH)
                            return GOMAP_INV_FILLED_EARLY;
                continue;
            }
            int rc = validate_chain(g, &g->buckets[i], i, n - 1, &live, &kbytes);
            if (rc != 0)
                return rc;
        }
        for (size_t i = 0; i < oldn; i++)
            if (!evacuated(&g->oldbuckets[i])) {
                int rc = validate_chain(g, &g->oldbuckets[i], i, oldn - 1, &live, &kbytes);
                if (rc != 0)
                    return rc;
            }
    }
    if (live != g->count)
        return GOMAP_INV_COUNT;
    if (!has_array(g) && g->heap_overflow != 0)
        return GOMAP_INV_HEAP_OVERFLOW;
    return kbytes == g->key_bytes ? 0 : GOMAP_INV_KEY_BYTES;
}

CHM__INVARIANT_NAMER(chm__gomap_invariant, GOMAP_INVARIANTS)
