/*
 * gomap.c - Go's classic map (runtime/map.go, Go 1.0-1.23), the table under chm_unsafe and
 * chm_rwlock.
 *
 * HOW IT WORKS
 *
 * The table is an array of 2^B buckets. A bucket holds 8 slots: 8 top-hash bytes, then the 8 keys,
 * then the 8 values, then a pointer to an overflow bucket. A key's hash picks the bucket with its
 * low B bits; its top byte (raised by MIN_TOPHASH so it never collides with a state code) is kept
 * in tophash[] so a lookup compares one byte per slot before comparing keys. Small tophash values
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
 *   - The seed is re-randomised when the map becomes empty (Go issue 25237) only if the user did
 *     not choose one, so a fixed seed keeps runs reproducible. The next seed is derived from the
 *     current secret one by a mixing step (Go calls its fast random source).
 *   - No NaN keys (keys are words compared by keyops.equal), so evacuation needs no NaN rule.
 */
#include "gomap.h"
#include "torture.h"

#include <string.h>

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

static inline uint8_t tophash(uint64_t hash)
{
    uint8_t top = (uint8_t)(hash >> 56);
    return top < MIN_TOPHASH ? (uint8_t)(top + MIN_TOPHASH) : top;
}

static inline uint64_t hash_of(const gomap *g, uint64_t key)
{
    const chm *m = g->owner;
    return chm_likely(m->int_keys) ? chm__mix64(key, g->seed) : m->keys->hash(key, g->seed);
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

/* Free an array and the overflow buckets its chains reach that were malloc'd separately. */
static void free_bucket_array(gomap_bucket *arr, size_t nalloc, size_t nbuckets)
{
    if (arr == NULL)
        return;
    for (size_t i = 0; i < nbuckets; i++) {
        gomap_bucket *ovf = arr[i].overflow;
        while (ovf != NULL) {
            gomap_bucket *next = ovf->overflow;
            if (!in_array(arr, nalloc, ovf))
                chm__free(ovf);
            ovf = next;
        }
    }
    chm__free(arr);
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

static void link_overflow(gomap *g, gomap_bucket *b, gomap_bucket *ovf)
{
    g->noverflow++;
    b->overflow = ovf;
}

/* Append an empty overflow bucket to @b. NULL = no memory. */
static gomap_bucket *new_overflow(gomap *g, gomap_bucket *b)
{
    bool pooled;
    gomap_bucket *ovf = alloc_overflow(g, &pooled);
    if (ovf != NULL)
        link_overflow(g, b, ovf);
    return ovf;
}

static void set_array(gomap *g, gomap_bucket *arr, size_t nalloc)
{
    g->buckets = arr;
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
    g->reseed = owner->opt.seed == 0; /* the user did not choose one */
    uint8_t B = 0;
    while (B < 58 && over_load_factor(hint, B))
        B++;
    g->B = B;
    if (B == 0)
        return CHM_OK; /* allocated lazily by the first insert, as Go's makemap_small */
    size_t nalloc;
    gomap_bucket *arr = make_bucket_array(B, &nalloc);
    if (arr == NULL)
        return CHM_ENOMEM;
    set_array(g, arr, nalloc);
    return CHM_OK;
}

static void release_bucket_entries(const gomap *g, gomap_bucket *b)
{
    for (; b != NULL; b = b->overflow)
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++)
            if (b->tophash[i] >= MIN_TOPHASH) {
                chm__key_release(g->owner, b->keys[i]);
                chm__value_free(g->owner, b->vals[i]);
            }
}

void chm__gomap_destroy(gomap *g)
{
    if (g->oldbuckets != NULL) {
        size_t n = noldbuckets(g);
        for (size_t i = 0; i < n; i++)
            if (!evacuated(&g->oldbuckets[i]))
                release_bucket_entries(g, &g->oldbuckets[i]);
        free_bucket_array(g->oldbuckets, g->old_nalloc, n);
    }
    if (g->buckets != NULL) {
        for (size_t i = 0; i < bucket_shift(g->B); i++)
            release_bucket_entries(g, &g->buckets[i]);
        free_bucket_array(g->buckets, g->nalloc, bucket_shift(g->B));
    }
    memset(g, 0, sizeof *g);
}

/* ---- lookup ----------------------------------------------------------------------------- */

/* The bucket chain that holds @hash's key now: the old bucket while it is not evacuated. */
static gomap_bucket *home_bucket(const gomap *g, uint64_t hash)
{
    size_t mask = bucket_shift(g->B) - 1;
    gomap_bucket *b = &g->buckets[hash & mask];
    if (g->oldbuckets != NULL) {
        if (!g->same_size_grow)
            mask >>= 1;
        gomap_bucket *oldb = &g->oldbuckets[hash & mask];
        if (!evacuated(oldb))
            b = oldb;
    }
    return b;
}

/* Find @key in the chain from @b (Go's mapaccess loop). Returns the bucket, slot in *slot. */
static gomap_bucket *find_in_chain(const gomap *g, gomap_bucket *b, uint64_t key, uint8_t top,
                                   int *slot)
{
    for (; b != NULL; b = b->overflow) {
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
            if (b->tophash[i] != top) {
                if (b->tophash[i] == EMPTY_REST)
                    return NULL;
                continue;
            }
            if (chm__key_equal(g->owner, key, b->keys[i])) {
                *slot = i;
                return b;
            }
        }
    }
    return NULL;
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
        free_bucket_array(g->oldbuckets, g->old_nalloc, newbit);
        g->oldbuckets = NULL;
        g->old_nalloc = 0;
        g->same_size_grow = false;
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

    if (g->buckets == NULL) {
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
    for (;;) {
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
            if (b->tophash[i] != top) {
                if (is_empty(b->tophash[i]) && *insertb == NULL) {
                    *insertb = b;
                    *inserti = i;
                }
                if (b->tophash[i] == EMPTY_REST)
                    goto bucketloop_done;
                continue;
            }
            if (!chm__key_equal(g->owner, key, b->keys[i]))
                continue;
            *valp = &b->vals[i];
            return CHM_EXISTS;
        }
        if (b->overflow == NULL)
            break;
        b = b->overflow;
    }
bucketloop_done:

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

/* Fill slot @i of @b with the stored key @stored: a new entry whose value the caller sets. */
static uint64_t *place(gomap *g, gomap_bucket *b, int i, uint64_t stored, uint64_t hash)
{
    b->keys[i] = stored;
    b->tophash[i] = tophash(hash);
    g->count++;
    g->modcount++;
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
    link_overflow(g, b, r->spare);
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

int chm__gomap_remove(gomap *g, uint64_t key, uint64_t *old_value, uint64_t *old_key)
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
    *old_value = b->vals[i];
    *old_key = b->keys[i];
    b->tophash[i] = EMPTY_ONE;
    mark_empty_rest(head, b, i);
    g->count--;
    g->modcount++;
    if (g->count == 0 && g->reseed) /* an attacker cannot keep probing one seed forever */
        g->seed = chm__mix64(g->seed, 0x9e3779b97f4a7c15ULL) | 1;
    return CHM_OK;
}

/* ---- iteration -------------------------------------------------------------------------- */

void chm__gomap_iter_init(gomap_iter *it, const gomap *g, uint64_t rnd)
{
    memset(it, 0, sizeof *it);
    it->modcount = g->modcount;
    if (g->buckets == NULL || g->count == 0)
        return; /* i == mask + 1 == 0 buckets: ends at once */
    it->buckets = g->buckets;
    it->mask = bucket_shift(g->B) - 1;
    it->start = (size_t)rnd & it->mask;
    it->offset = (uint8_t)((rnd >> 56) & (GOMAP_BUCKET_CNT - 1));
}

int chm__gomap_iter_next(gomap_iter *it, uint64_t *key, uint64_t *value)
{
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
                *key = it->b->keys[i];
                *value = it->b->vals[i];
                return CHM_OK;
            }
        }
        it->b = it->b->overflow;
        it->slot = 0;
    }
}

/* ---- self-check ------------------------------------------------------------------------- */

static int validate_chain(const gomap *g, const gomap_bucket *b, size_t index, size_t mask,
                          size_t *live)
{
    bool rest = false; /* an EMPTY_REST was seen: everything after must be EMPTY_REST */
    for (; b != NULL; b = b->overflow) {
        for (int i = 0; i < GOMAP_BUCKET_CNT; i++) {
            uint8_t top = b->tophash[i];
            if (rest && top != EMPTY_REST)
                return -2; /* EMPTY_REST followed by something else */
            if (top == EMPTY_REST)
                rest = true;
            if (top > EMPTY_ONE && top < MIN_TOPHASH)
                return -3; /* evacuation mark outside an evacuated old bucket */
            if (top < MIN_TOPHASH)
                continue;
            uint64_t h = hash_of(g, b->keys[i]);
            if ((h & mask) != index || tophash(h) != top)
                return -4; /* entry in the wrong bucket or with a stale tophash */
            int slot;
            if (find_in_chain(g, home_bucket(g, h), b->keys[i], top, &slot) != b || slot != i)
                return -6; /* a lookup finds another slot: duplicate key, or an EMPTY_REST
                              before it */
            (*live)++;
        }
    }
    return 0;
}

int chm__gomap_validate(const gomap *g)
{
    size_t live = 0;
    if (g->oldbuckets == NULL && g->same_size_grow)
        return -7; /* growth state without growth */
    if (g->buckets != NULL) {
        size_t n = bucket_shift(g->B);
        size_t oldn = g->oldbuckets != NULL ? noldbuckets(g) : 0;
        if (oldn != 0 && g->nevacuate >= oldn)
            return -7; /* growth finished but the old array kept */
        for (size_t i = 0; i < g->nevacuate && i < oldn; i++)
            if (!evacuated(&g->oldbuckets[i]))
                return -7; /* the evacuation mark passed an old bucket still live */
        size_t ovf = 0;
        for (size_t i = 0; i < n; i++)
            for (const gomap_bucket *b = g->buckets[i].overflow; b != NULL; b = b->overflow)
                ovf++;
        if (ovf != g->noverflow)
            return -8; /* noverflow differs from the overflow buckets in the chains */
        for (size_t i = 0; i < n; i++) {
            if (oldn != 0 && !evacuated(&g->oldbuckets[i & (oldn - 1)])) {
                /* New bucket not filled yet: it must be empty. */
                for (const gomap_bucket *b = &g->buckets[i]; b != NULL; b = b->overflow)
                    for (int s = 0; s < GOMAP_BUCKET_CNT; s++)
                        if (b->tophash[s] >= MIN_TOPHASH)
                            return -5;
                continue;
            }
            int rc = validate_chain(g, &g->buckets[i], i, n - 1, &live);
            if (rc != 0)
                return rc;
        }
        for (size_t i = 0; i < oldn; i++)
            if (!evacuated(&g->oldbuckets[i])) {
                int rc = validate_chain(g, &g->oldbuckets[i], i, oldn - 1, &live);
                if (rc != 0)
                    return rc;
            }
    }
    return live == g->count ? 0 : -1;
}

const char *chm__gomap_invariant(int code)
{
    switch (code) {
    case -1: return "count differs from the live slots";
    case -2: return "EMPTY_REST followed by a used slot";
    case -3: return "evacuation mark outside an evacuated old bucket";
    case -4: return "entry in the wrong bucket or with a stale tophash";
    case -5: return "new bucket filled before its old bucket was evacuated";
    case -6: return "a lookup finds another slot (duplicate key)";
    case -7: return "growth state (oldbuckets, nevacuate, same_size_grow) inconsistent";
    case -8: return "noverflow differs from the overflow buckets in the chains";
    default: return NULL;
    }
}
