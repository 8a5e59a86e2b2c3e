/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * readmostly.c - chm_readmostly: Go's classic sync.Map (sync/map.go, Go 1.9-1.23) in C.
 *
 * HOW IT WORKS
 *
 * Two maps from key to *entry*, sharing the entries:
 *   - the read snapshot (Go: `read atomic.Pointer[readOnly]`, readOnly{m, amended}): an immutable
 *     open-addressing index, published through one atomic word `read` that also carries the
 *     amended flag. Readers acquire-load it and probe it with no lock and no store.
 *   - the dirty map (Go: `dirty map[any]*entry`), guarded by one pthread mutex `mu`: every entry
 *     of the read index that is not expunged, plus the keys added since the last promotion.
 *     `amended` says that dirty holds keys the read index lacks.
 * An entry (Go: `entry{p atomic.Pointer[any]}`) holds the key, its hash and one atomic pointer p:
 *     p == a box     live: the box is an immutable {value} record
 *     p == NULL      deleted; the entry is in dirty if dirty exists
 *     p == EXPUNGED  deleted, and absent from dirty (dirty exists)
 *     p == RESERVED  (not in Go) absent, and a compute (chm_compute_if_absent, or chm_compute
 *                    of an absent key) is deciding this key's value under mu
 *     p == box|HELD  (not in Go) live, and a chm_compute holds it under mu: readers read the
 *                    box's value as for an untagged box; no other thread changes p until the
 *                    compute stores its decision (lock-free writers see the tag, take mu, wait)
 * Go's states map one to one: nil, expunged, and a pointer to an interface value. All 2^64 values
 * are legal, so a state cannot be a special value: values are boxed, and the states are NULL and
 * the addresses of two static boxes; HELD is bit 0 of a box address (boxes are 8-aligned), so a
 * read pays one AND (box_value). A swap is one pointer CAS, a read is one acquire load and a
 * dependent load. The cost is an allocation per store of a value into an existing entry (put on a
 * present or deleted key, replace, put_if_absent/compute on a deleted key) and a pointer hop per
 * read. Each entry embeds its first box, so an insert of a new key is one allocation and a read
 * of a never-overwritten value touches the entry's line only (p and the inline value share 16
 * bytes); a later store allocates a separate box, from the map's pool of 16-byte boxes
 * (box_new). The alternative, a state word next to an unboxed value, needs either a
 * double-width CAS (a 16-byte atomic load is a locked cmpxchg16b on x86: a store on every read)
 * or a seqlock (readers retry, writers lock per entry), and gives up Go's lock-free trySwap.
 *
 * The read index is a power-of-two array of one-word slots (an entry's address tagged with 16
 * bits of its hash: a probe dereferences only entries whose tag matches), linear probing toward
 * slot 0 and on from the last slot, load factor at most 1/2 (RM_LOAD_LOG: a miss probes ~2.5
 * slots, all but always on one 64-byte line of eight slots; the first design's 16-byte {key,
 * entry*} slots at load 1/4 probed ~1.4 slots on lines of four, for 67 bytes of index per entry
 * instead of 17), no tombstones (it is never written once published). Entries come from a pool
 * the map owns (src/pool.h). It is the same structure as the dirty map, which is mutable only
 * while it is unpublished (it deletes by backward shift, so it needs no tombstones either), so
 * promotion is O(1) as in Go: the dirty table *becomes* the read index. `read` is the address of
 * the index's slots with the amended flag in bit 0: the amended flip allocates nothing, and a
 * reader finds all it needs around that address -- the mask in the word before the always-empty
 * slot that precedes slot 0 (struct rm_index), on the line of the first slots, where a probe
 * that runs past slot 0 stops as at any empty slot and only then checks for the wrap
 * (idx_find_k).
 *
 * Go's methods, one to one:
 *   chm_get            Load: probe read; a hit loads p. A miss with amended (read found
 *                      amended, or replaced, when loaded again: read_miss_final) takes mu,
 *                      re-probes read, probes dirty and counts a miss (missLocked).
 *   chm_put            Swap (Store is Swap without the result): on a read hit trySwap (CAS loop,
 *                      fails only on expunged -- and here on RESERVED or held); else under mu: a
 *                      read hit is unexpungeLocked (re-inserted into dirty) and swapLocked, a
 *                      dirty hit swapLocked, a new key runs dirtyLocked if not amended, flips
 *                      amended and enters dirty.
 *   chm_put_if_absent  LoadOrStore: tryLoadOrStore on a read hit (a held entry is present);
 *                      else the same locked shape, a dirty hit counting a miss.
 *   chm_remove         LoadAndDelete: delete() (CAS to NULL) on a read hit; else under mu,
 *                      counting a miss whether or not the key is in dirty (remove_locked), a
 *                      dirty-only key leaving dirty. A held entry: under mu.
 *   chm_replace        CompareAndSwap by 64-bit equality of the boxed value: tryCompareAndSwap
 *                      on a read hit; under mu otherwise, a dirty hit counting a miss. A held
 *                      entry fails at once on another value, waits under mu on the expected one.
 *   chm_remove_if      CompareAndDelete: its CAS loop (box -> NULL if the value is the
 *                      expected one) on a read hit; else under mu (a held entry too), counting a
 *                      miss whether or not the key is in dirty, as Go; a dirty-only entry
 *                      deleted leaves dirty at once (Go leaves it deleted in dirty).
 *   chm_compute        Swap, CompareAndSwap, CompareAndDelete, LoadOrStore and LoadAndDelete are
 *                      its special cases, with the function choosing: no Go counterpart. Under
 *                      mu, the key's entry held (box -> box|HELD, NULL/EXPUNGED -> RESERVED) or a
 *                      new entry prepared, everything a SET needs allocated, then fn once and
 *                      the decision stored: compute_if_absent's shape (rm_compute).
 *   chm_clear          Clear (Go 1.23): under mu, publish an empty read index (a static one:
 *                      nothing to allocate), drop dirty, misses = 0 -- then expunge every old
 *                      entry and retire its box, where Go lets its GC collect them (rm_clear).
 *   chm_visit          Load, with the function run on the value inside the read section that
 *                      made the load safe; a dirty key is looked up under mu, and the function
 *                      runs after mu is dropped, still inside the section (rm_visit).
 *   chm_stats_get      no Go counterpart: counters, and a walk of both tables under mu.
 *   missLocked         misses++; once misses >= dirty's size, dirty becomes the read index
 *                      (O(1)), dirty = NULL, misses = 0.
 *   dirtyLocked        a new dirty table sized for the live entries, filled with every read
 *                      entry that tryExpungeLocked (CAS NULL -> EXPUNGED) does not expunge. O(n).
 *   iteration          Range: if amended, take mu and promote dirty now; then walk the
 *                      immutable index without locks, skipping deleted and expunged entries,
 *                      from a slot that differs for every iteration (the map's seeded mixer of
 *                      an iteration counter), wrapping around: a Go map's Range starts at a
 *                      random position too (iter_start says what a fixed start costs).
 *   chm_compute_if_absent  LoadOrStore's shape with the value computed under mu (Go has none).
 * Misses, as Go counts them: Load, LoadAndDelete and CompareAndDelete (chm_get, chm_visit,
 * chm_remove, chm_remove_if) count one whenever they consult dirty; LoadOrStore, CompareAndSwap,
 * chm_compute_if_absent and chm_compute only on a dirty hit; Swap (chm_put) never.
 * Everything Go does lock-free stays lock-free here: read hits of Load, Swap, LoadOrStore,
 * LoadAndDelete, CompareAndSwap and CompareAndDelete, and the walk of Range -- except while a
 * chm_compute holds the entry: a writer then waits for its decision under mu.
 *
 * Note the cost Go pays and this port keeps: chm_get of a key that is not in the read index
 * while amended (a key added since the last promotion, or an absent key) takes mu, until enough
 * such misses promote dirty. chm_get is store-free only on read hits and non-amended misses.
 *
 * Memory ordering. `read` is stored with release (promotion, amended flip; under mu) and loaded
 * with acquire by lock-free paths: the index's mask and slots and its entries' key/hash, written
 * before publication, are visible (a lock-free miss loads it once more, relaxed, only to compare:
 * read_miss_final). A box is written before the release (or acq_rel) CAS/exchange/store
 * that installs it in p, and readers acquire-load p before reading box->value. Installing CASes
 * that return the old box's value are acq_rel; a delete (box -> NULL) is acquire, to read the
 * value it removes. The transitions that publish nothing need no release: NULL -> EXPUNGED is
 * relaxed and NULL -> RESERVED acquire only to read the box that beat it; they just decide, by
 * the total order of RMWs on p, which of a lock-free CAS and a locked expunge/reserve wins. The
 * hold (B -> B|HELD) is such a CAS, acquire to read B's value; the compute's decision is a plain
 * store by the only thread allowed to change p: release for a new box and for the untag of a
 * KEEP (a plain store ends the installing CAS's release sequence, so it must carry B's value on
 * itself), relaxed for NULL. chm_clear's exchange to EXPUNGED is acquire: it retires the box.
 *
 * Reclamation (src/smr.h). Lock-free paths run inside a read section. Retired after a grace
 * period: displaced boxes (their value then goes to value_free), and replaced read indexes. An
 * amended flip reuses the same index (only the tag bit changes), so an index is retired only
 * when promotion replaces it with another one. Entries die in two ways:
 *   - expunged entries dropped by a promotion: they are listed at dirtyLocked time; at promotion
 *     the ones still expunged become the old index's dead list and die with that index;
 *   - a dirty-only entry removed by chm_remove (chm_remove_if, a chm_compute DELETE, chm_clear):
 *     it was never in a published index, and every access to it happens under mu, so it dies at
 *     once (key released after mu is dropped);
 *   - every entry of the read index at chm_clear: the index's dead list (rm_clear).
 * Iterators do not hold a read section between calls: chm_iter_init takes a reference on the
 * index (refs), each chm_iter_next opens a section of its own. So an index's dead entries must
 * outlive every index that contains them, and an entry dropped from index k may also be in
 * indexes j < k: each index holds a reference on its successor (`succ`), dropped when the
 * index itself is freed, so indexes die oldest first and an index frees its dead entries only
 * after all older ones are gone. An idle iterator therefore delays only this map's entry and
 * index frees, never the global grace periods other maps need, and a thread may free other maps
 * (chm__smr_drain) between its chm_iter_next calls. The chain ends at chm_clear: the index it
 * replaces takes no reference on the static empty index, which takes none on its successor --
 * nothing of the indexes before the clear is in any index after it (rm_clear says why).
 * An entry and its inline first box are freed together: the entry starts with refs = 2 (itself,
 * its inline box); the inline box's retire callback and the entry's death each drop one.
 *
 * Size. Go's sync.Map has no Len. chm_size sums a striped counter of live entries
 * (chm_options.concurrency stripes rounded up to a power of two, at most RM_MAX_STRIPES = 64;
 * a writer thread picks one by a thread-local index; 64-byte stripes unless chm_options.packed),
 * updated with a relaxed atomic add by writers on every live <-> absent transition. Readers never
 * touch it. It is exact when no write is in flight; during writes it may be off by the writes in
 * flight (never negative: clamped at 0).
 *
 * Re-entrancy. chm_compute_if_absent runs fn under mu, with the key RESERVED (readers and
 * deleters see it absent; writers that would store it wait for mu), so racing callers run fn
 * exactly once, and a racing chm_put waits instead of being overwritten. chm_compute does the
 * same with a present key held (readers see its value, writers wait). The thread's stack of
 * running computes (src/reentry.h) makes a nested call from fn -- or from a compute in another
 * map that fn runs -- safe: nested chm_get, chm_visit, chm_size, chm_stats_get and iteration
 * work (their locked steps skip locking when this thread holds mu: CHM__HOLD_PART on its stack,
 * mu_held_here); every nested write returns CHM_EDEADLK. CHM_ENOMEM from a compute means fn did
 * not run and nothing changed. A chm_visit function runs with CHM__HOLD_READ pushed and no mutex
 * of the map held: its writes return CHM_EDEADLK, its reads lock as any read would.
 *
 * Blocking. mu is never waited for inside a read-side section: a locked path leaves the
 * lock-free path's section first, takes mu, and opens a new section under mu if it reads boxes
 * that lock-free writers may retire (opening a section never blocks). A compute function runs
 * under mu and may block (it may free another map, which waits for a grace period), and a grace
 * period waits for every section: a thread waiting for mu inside a section could deadlock with
 * it, and would delay every map's reclamation while fn runs. The exception is a call nested in
 * a chm_visit function, which runs inside a section by contract: a nested chm_get of a dirty key
 * takes mu there.
 *
 * Deliberate differences from Go
 *   - Boxed values with an inline first box and a refcount (Go: a GC'd *any per Store).
 *   - `read` is a tagged index pointer instead of a pointer to a readOnly struct: one load and
 *     no allocation per amended flip, and no readOnly to reclaim.
 *   - Promotion and dirtyLocked work on open-addressing tables instead of Go maps; dirtyLocked
 *     allocates first, so an allocation failure leaves the map unchanged (CHM_ENOMEM), and sizes
 *     the new table by the live counter (Go: len(read.m), deleted entries included).
 *   - A dirty-only entry is removed from dirty and deleted under mu and dies as soon as mu is
 *     dropped, with no grace period (Go deletes it from dirty, CASes p after unlocking, and the
 *     GC frees it).
 *   - misses is a plain counter under mu, exactly as Go; missLocked does nothing when not
 *     amended (Go never calls it then).
 *   - chm_options.capacity presizes the first dirty table (Go has no size hint).
 *   - chm_clear empties the old entries (EXPUNGED, boxes retired) instead of abandoning them to
 *     a GC, so a lock-free store racing with it is either removed by it or sent to mu (Go loses
 *     such a store); the empty index it publishes is static, not a fresh readOnly.
 *   - chm_remove_if takes a dirty-only entry out of dirty at once (see chm_remove above).
 *   - Iteration starts at a slot drawn from the map's seed and an iteration counter and wraps
 *     (Go: a random bucket and offset of its map, then its own order); with an explicit seed
 *     the sequence of start slots is reproducible.
 *   - RESERVED, HELD, compute_if_absent, compute, visit, stats and the live counter have no Go
 *     counterpart.
 */
#define _GNU_SOURCE
#include "readmostly.h"
#include "reentry.h"
#include "pool.h"
#include "smr.h"
#include "stripes.h"
#include "torture.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#define RM_INDEX_ALIGN CHM_CACHELINE /* struct rm_index's lines (bit 0 of `read` is then free) */
#define RM_MIN_SHIFT 3               /* 8 slots */
#define RM_MAX_SHIFT 58
#ifndef RM_LOAD_LOG
#define RM_LOAD_LOG 1 /* a table of 2^s slots holds at most 2^(s - RM_LOAD_LOG) entries */
#endif
#define RM_MAX_STRIPES 64

struct rm_box {
    uint64_t value; /* immutable once installed */
    chm_smr_node node;
};

struct rm_entry {
    _Atomic(struct rm_box *) p; /* a box, NULL, EXPUNGED or RESERVED */
    struct rm_box first;        /* the inline first box: p and first.value share 16 bytes */
    uint64_t key;               /* the stored copy; immutable */
    uint64_t hash;              /* chm__hash(key); immutable */
    atomic_uint refs;           /* 2 at birth: the entry itself and its inline box */
    struct rm_entry *next_dead; /* under mu: expunged list, then an index's dead list */
};
_Static_assert(offsetof(struct rm_entry, first.value) == 8,
               "p and the inline value share one 16-byte chunk (one line)");

/* A slot is one word: the entry's address shifted up by 16 bits, and below it the top 16 bits
 * of its hash as a tag (0 = empty: an entry's address is not 0). A probe compares the 16-bit tag
 * and dereferences the entry only when it matches (1 in 65,536 for a slot of another key), so an
 * 8-byte slot filters as well as the (key, entry) pair of 16 bytes did, at half the memory.
 * The tag below the address, not above it: the compare is one 16-bit compare of two registers,
 * and the address one shift of the slot word in place, so a probe needs no scratch register and
 * no 48-bit mask constant held in one (idx_find_k). x86-64 and AArch64 user addresses fit 48
 * bits (entry_new checks). */
struct rm_slot {
    uintptr_t w;
};
_Static_assert(sizeof(struct rm_slot) == 8, "eight slots per line");
#define RM_SLOT_PTR_BITS 48
#define RM_SLOT_PTR_MASK (((uintptr_t)1 << RM_SLOT_PTR_BITS) - 1)
#define RM_SLOT_TAG_BITS (64 - RM_SLOT_PTR_BITS)

/* The tag of a key hashing to @hash: the hash's top bits (the index takes its low bits). */
static inline uint16_t slot_tag(uint64_t hash)
{
    return (uint16_t)(hash >> RM_SLOT_PTR_BITS);
}

static inline bool slot_empty(const struct rm_slot *s)
{
    return s->w == 0;
}

static inline struct rm_entry *slot_entry(const struct rm_slot *s)
{
    return (struct rm_entry *)(s->w >> RM_SLOT_TAG_BITS);
}

/* Whether the slot may hold the entry of a key with tag @tag (slot_tag of its hash). */
static inline bool slot_tag_matches(const struct rm_slot *s, uint16_t tag)
{
    return (uint16_t)s->w == tag;
}

/* The read index / dirty table. A reader uses mask, end and slots[] only, reached from the
 * slots' address that `read` holds: mask and end open the line of the first six slots, so the
 * header's line, which iterators and retirers write (refs, succ, dead, node), is never on a
 * reader's path, and nothing from mask on is written once the index is published. Probes run
 * toward slot 0; the one after slot 0 is end, slots[-1], which stays empty: idx_find_k treats
 * reaching it as reaching any empty slot, and only there checks whether it wrapped, so a probe
 * step needs neither the mask nor a bound (dirty tables, probed under mu, wrap by the mask). */
struct rm_index {
    size_t count;          /* entries */
    atomic_size_t refs;    /* published index: 1 while current or in its grace period,
                               + 1 until its predecessor is freed, + 1 per iterator */
    struct rm_index *succ; /* set when a promotion replaces it (under mu) */
    struct rm_entry *dead; /* entries that died with this index (set at promotion) */
    chm_smr_node node;
    alignas(CHM_CACHELINE) size_t mask; /* slots - 1 (a power of two minus one) */
    struct rm_slot end;                 /* slots[-1]: always empty (0) */
    struct rm_slot slots[];
};
_Static_assert(offsetof(struct rm_index, mask) % CHM_CACHELINE == 0 &&
                   offsetof(struct rm_index, end) == offsetof(struct rm_index, mask) + 8 &&
                   offsetof(struct rm_index, slots) == offsetof(struct rm_index, end) + 8,
               "mask and end share a line with the first slots, not with the header's writes");

static inline void slot_set(struct rm_slot *s, const struct rm_entry *e)
{
    s->w = (uintptr_t)e << RM_SLOT_TAG_BITS | slot_tag(e->hash);
}

struct rm_map {
    chm base;
    /* Loaded by every operation; stored only by promotion and the amended flip (rare). */
    _Atomic uintptr_t read;
    uint64_t hash_k2;       /* CHM__HASH_K2, for rm_hash_u64; read-only after create */
    unsigned char *stripes; /* live-entry counter cells (src/stripes.h) */
    size_t stripe_mask, stripe_stride;
    chm_smr_domain *smr; /* read-only after create; the domain's counters have their own line */
    chm_pool *entries;   /* every rm_entry of the map (src/pool.h); read-only after create */
    chm_pool *boxes;     /* every heap rm_box of the map (src/pool.h); read-only after create */
    /* Writers' line: everything below is guarded by mu. */
    alignas(CHM_CACHELINE) pthread_mutex_t mu;
    struct rm_index *dirty;            /* NULL when Go's dirty is nil */
    size_t misses;                     /* Go's misses */
    struct rm_entry *expunged;         /* entries expunged by the last dirtyLocked */
    uint64_t promotions, dirty_builds; /* statistics for the tests */
    uint64_t dirty_growths;            /* dirty tables grown by dirty_reserve (chm_stats) */
    /* chm_iter_init calls so far: where each iteration starts (iter_start). Outside mu, on
     * this line of rare writes (the statistics above): no hot path reads it. */
    atomic_uint_fast64_t iterations;
};
_Static_assert(offsetof(struct rm_map, mu) % CHM_CACHELINE == 0 &&
                   offsetof(struct rm_map, mu) >= offsetof(struct rm_map, smr) + sizeof(void *),
               "the writers' line holds nothing readers or retirers touch");
_Static_assert(offsetof(struct rm_map, iterations) >= offsetof(struct rm_map, mu) + CHM_CACHELINE,
               "iterators do not write the writers' line");

struct rm_iter {
    struct chm__iter_base base;
    struct rm_index *t; /* referenced (refs) until chm_iter_fini */
    size_t pos, n;      /* slots visited so far, of n */
    size_t start;       /* the first slot visited (it varies: see iter_start) */
};
CHM_ITER_STATIC_ASSERT(struct rm_iter);

/* The two state sentinels: small non-zero words no box can have as its address (a box lives
 * in an entry or on the heap, far above the first page), never dereferenced, so that is_box is
 * one compare on the read path (addresses of two static objects took five more instructions). */
#define EXPUNGED ((struct rm_box *)(uintptr_t)8)
#define RESERVED ((struct rm_box *)(uintptr_t)16)
#define RM_SENTINEL_MAX ((uintptr_t)16) /* the largest sentinel; NULL is below it too */

/* A box (heap or inline) is 8-aligned, so bit 0 of p is free: set, it marks a live entry that a
 * chm_compute holds (see HOW IT WORKS). The sentinels are never tagged. */
#define RM_HELD ((uintptr_t)1)
_Static_assert(alignof(struct rm_box) > RM_HELD, "bit 0 of a box address is free for the tag");

/* The empty read index chm_clear publishes (Go's Clear stores a new &readOnly{}; allocating one
 * could fail, and chm_clear must not). One for every map, immortal and never written: it has no
 * entries, so nothing is expunged from it or dies with it, and the functions that would count
 * references on it, give it a successor, retire or free it skip it (EMPTY_INDEX checks). A
 * union, not a struct with a slot array after the index, because a struct with a flexible array
 * member may not be a member of a struct; the union makes room for the 8 slots. */
static alignas(RM_INDEX_ALIGN) union {
    struct rm_index idx;
    unsigned char
        room[sizeof(struct rm_index) + ((size_t)1 << RM_MIN_SHIFT) * sizeof(struct rm_slot)];
} rm_empty = {.idx = {.refs = 1, .mask = ((size_t)1 << RM_MIN_SHIFT) - 1}};
#define EMPTY_INDEX (&rm_empty.idx)

/* Live: a box, tagged or not. */
static inline bool is_box(const struct rm_box *p)
{
    return (uintptr_t)p > RM_SENTINEL_MAX;
}

static inline bool is_held(const struct rm_box *p)
{
    return ((uintptr_t)p & RM_HELD) != 0;
}

static inline struct rm_box *held(struct rm_box *p)
{
    return (struct rm_box *)((uintptr_t)p | RM_HELD);
}

/* The value of a live p, held or not: every reader goes through here (one AND on the path). */
static inline uint64_t box_value(const struct rm_box *p)
{
    return ((const struct rm_box *)((uintptr_t)p & ~RM_HELD))->value;
}

static struct rm_map *as_rm(chm *m)
{
    return (struct rm_map *)m;
}

/* ---- the tagged read word ---------------------------------------------------------------
 * `read` holds the address of the current index's slots (rm_index.slots) with the amended flag
 * in bit 0: a reader probes from that address and finds the mask just below it. */

static inline struct rm_index *slots_index(const struct rm_slot *s)
{
    return (struct rm_index *)((uintptr_t)s - offsetof(struct rm_index, slots));
}

/* The mask of the index whose slots start at @s. */
static inline size_t slots_mask(const struct rm_slot *s)
{
    return slots_index(s)->mask;
}

/* The same, read from memory again: for a probe that wraps (rarely), so that the compiler does
 * not keep the first read in a register through the whole probe loop -- rm_get_u64 has none to
 * spare (gcc would push and pop a callee-saved one: two instructions on every call). Volatile
 * only so that the read happens here; the word never changes once the index is published. The
 * address is computed from @s, not from slots_index(s), which gcc would keep in a register. */
static inline size_t slots_mask_again(const struct rm_slot *s)
{
    return *(const volatile size_t *)((const char *)s - (offsetof(struct rm_index, slots) -
                                                         offsetof(struct rm_index, mask)));
}

static inline const struct rm_slot *rd_slots(uintptr_t r)
{
    return (const struct rm_slot *)(r & ~(uintptr_t)1);
}

static inline struct rm_index *rd_index(uintptr_t r)
{
    return slots_index(rd_slots(r));
}

/* The read word, for a lock-free path (under mu, relaxed loads suffice). Acquire pairs with the
 * release stores of read (promotion, the amended flip, clear): the index it names, its mask,
 * slots, count and entries (key, hash, first box), all written before the store, are visible. */
static inline uintptr_t read_load(struct rm_map *m)
{
    return atomic_load_explicit(&m->read, memory_order_acquire);
}

static inline bool rd_amended(uintptr_t r)
{
    return (r & 1) != 0;
}

static inline uintptr_t rd_make(const struct rm_index *t, bool amended)
{
    return (uintptr_t)t->slots | (uintptr_t)amended;
}

/* ---- the mutex ---------------------------------------------------------------------------- */

static void mu_lock(struct rm_map *m)
{
    CHM__LOCK_CALL(pthread_mutex_lock(&m->mu));
}

static void mu_unlock(struct rm_map *m)
{
    CHM__LOCK_CALL(pthread_mutex_unlock(&m->mu));
}

/* Whether this thread holds mu: a compute of this thread runs in @m (CHM__HOLD_PART anywhere on
 * its stack, src/reentry.h). Not chm__reentry_holds: that answers for the innermost entry of @m
 * only, and a chm_visit function pushes CHM__HOLD_READ, which holds no mutex (its nested calls
 * must lock) -- while a visit nested in a compute's function still runs under that mutex. */
static bool mu_held_here(const struct rm_map *m)
{
    unsigned d = chm__reentry.depth;
    while (chm_unlikely(d-- > 0))
        if (chm__reentry.map[d] == &m->base && chm__reentry.hold[d] == CHM__HOLD_PART)
            return true;
    return false;
}

/* Take mu unless this thread already holds it: a call from a compute function on this map,
 * made by the function itself, from a chm_visit function it runs, or from a compute in another
 * map (src/reentry.h). */
static bool lock_unless_held(struct rm_map *m)
{
    if (mu_held_here(m))
        return false;
    mu_lock(m);
    return true;
}

/* ---- the live-entry counter -------------------------------------------------------------
 * Go's sync.Map has no Len, so there is no algorithm to follow here, and the simplest striped
 * counter does: a fixed number of cells (chm_options.concurrency, see "Size"), the writer
 * thread's ticket picks its cell, every live <-> absent transition is one relaxed fetch_add.
 * Not binlock's LongAdder (a base counter CASed first, cells allocated at the first contention,
 * a probe rehashed on collision), which binlock keeps because it ports Java's addCount: this map
 * is told its writers' number at chm_new, so its cells exist from the start and a thread's
 * ticket picks one -- one fetch_add, no CAS loop, no lazy allocation. Cell layout and tickets:
 * src/stripes.h. */

/* Relaxed: the counter orders nothing; chm_size is exact once the writers' effects happen
 * before it (a join, a lock hand-off), which makes these adds visible. */
static inline void live_add(struct rm_map *m, long d)
{
    unsigned s = chm__thread_ticket();
    atomic_fetch_add_explicit(chm__cell_at(m->stripes, m->stripe_stride, s & m->stripe_mask), d,
                              memory_order_relaxed);
}

static long live_sum(struct rm_map *m)
{
    return chm__cells_sum(m->stripes, m->stripe_stride, m->stripe_mask + 1);
}

/* ---- reclamation callbacks -------------------------------------------------------------- */

static void entry_unref(struct rm_map *m, struct rm_entry *e)
{
    /* acq_rel: the last owner's free happens after the other owner's accesses (release on the
     * first drop, acquire on the last). */
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1)
        chm__pool_put(m->entries, e);
}

static struct rm_box *box_of(chm_smr_node *n)
{
    return (struct rm_box *)((char *)n - offsetof(struct rm_box, node));
}

static void heap_box_retired_value_stays(chm_smr_node *n, void *owner)
{
    chm__pool_put(((struct rm_map *)owner)->boxes, box_of(n));
}

static void heap_box_retired(chm_smr_node *n, void *owner)
{
    chm__value_free(&((struct rm_map *)owner)->base, box_of(n)->value);
    heap_box_retired_value_stays(n, owner);
}

static void inline_box_retired_value_stays(chm_smr_node *n, void *owner)
{
    (void)owner;
    entry_unref(owner, (struct rm_entry *)((char *)box_of(n) - offsetof(struct rm_entry, first)));
}

static void inline_box_retired(chm_smr_node *n, void *owner)
{
    chm__value_free(&((struct rm_map *)owner)->base, box_of(n)->value);
    inline_box_retired_value_stays(n, owner);
}

/* @b left @e's p (it was installed there): free it after a grace period, and hand its value to
 * value_free then, unless the value stays in the map: @b was swapped for a box of the same
 * value (a put or replace of the value the key held), and the key still returns it. */
static void retire_box(struct rm_map *m, struct rm_entry *e, struct rm_box *b, bool value_stays)
{
    chm_smr_free_fn *fn;
    if (b == &e->first)
        fn = value_stays ? inline_box_retired_value_stays : inline_box_retired;
    else
        fn = value_stays ? heap_box_retired_value_stays : heap_box_retired;
    chm__smr_retire(m->smr, &b->node, fn);
}

/* An entry no reader can reach any more: release its key, drop its own reference. */
static void entry_die(struct rm_map *m, struct rm_entry *e)
{
    chm__key_release(&m->base, e->key);
    entry_unref(m, e);
}

/* Take a reference on a published index @t that is current, or in its grace period and held by
 * the caller's read section (so refs >= 1 already): relaxed. The empty index is immortal. */
static void index_ref(struct rm_index *t)
{
    if (t != EMPTY_INDEX)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

/* Drop a reference on @t; the last one frees its dead entries and the index, then drops the
 * reference @t held on its successor (iteratively: a chain may be waiting). The chain ends at
 * the empty index (immortal, counts nothing) or at a successor of none (chm_clear's old index:
 * nothing it holds is in a later index, see rm_clear). */
static void index_unref(struct rm_map *m, struct rm_index *t)
{
    /* acq_rel, as entry_unref: an iterator's reads of the index happen before its free. */
    while (t != NULL && t != EMPTY_INDEX &&
           atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        for (struct rm_entry *e = t->dead, *next; e != NULL; e = next) {
            next = e->next_dead;
            entry_die(m, e);
        }
        struct rm_index *succ = t->succ;
        chm__free(t);
        t = succ;
    }
}

static void index_retired(chm_smr_node *n, void *owner)
{
    struct rm_index *t = (struct rm_index *)((char *)n - offsetof(struct rm_index, node));
    index_unref(owner, t);
}

/* ---- indexes ----------------------------------------------------------------------------- */

/* The shift of a table of at least @slots slots; 0 when no machine has the memory. */
static unsigned shift_for_slots(size_t slots)
{
    unsigned s = RM_MIN_SHIFT;
    while (s <= RM_MAX_SHIFT && ((size_t)1 << s) < slots)
        s++;
    return s <= RM_MAX_SHIFT ? s : 0;
}

/* The shift of a table holding @n entries at the maximum load. */
static unsigned shift_for(size_t n)
{
    return n > (SIZE_MAX >> (RM_LOAD_LOG + 1)) ? 0 : shift_for_slots(n << RM_LOAD_LOG);
}

static struct rm_index *index_new(unsigned shift)
{
    if (shift == 0 || shift > RM_MAX_SHIFT)
        return NULL;
    size_t nslots = (size_t)1 << shift;
    if (nslots > (SIZE_MAX - sizeof(struct rm_index)) / sizeof(struct rm_slot))
        return NULL;
    size_t bytes = sizeof(struct rm_index) + nslots * sizeof(struct rm_slot);
    struct rm_index *t = chm__aligned_alloc(RM_INDEX_ALIGN, bytes);
    if (t == NULL)
        return NULL;
    memset(t, 0, bytes);
    t->mask = nslots - 1;
    atomic_init(&t->refs, 1);
    return t;
}

/* The entry for @key in the index whose slots start at @s, or NULL. Inside a read section for
 * a published index, under mu for dirty. Plain loads: a published index is never written again.
 * The probe runs down from the home slot; an empty slot ends it, unless it is end (slots[-1],
 * i < 0), from which it goes on at the last slot. A step is a decrement and a load, with no
 * mask: rm_get_u64's probe loop keeps the slots' address, the index, the tag, the key and the
 * slot word in registers, and nothing else. Signed: s[-1] is in the index (pointer arithmetic
 * that wraps an unsigned index would be undefined).
 * @u64: the map has integer keys, known where the caller is (rm_get_u64): the comparison is
 * then a plain ==, without chm__key_equal's test of m->int_keys. */
static inline struct rm_entry *idx_find_k(const chm *m, const struct rm_slot *s, uint64_t key,
                                          uint64_t hash, bool u64)
{
    uint16_t tag = slot_tag(hash);
    for (ptrdiff_t i = (ptrdiff_t)(hash & slots_mask(s));; i--) {
        if (chm_unlikely(slot_empty(&s[i]))) {
            if (chm_likely(i >= 0))
                return NULL;
            i = (ptrdiff_t)slots_mask_again(s) + 1; /* end: on at the last slot, mask */
            continue;
        }
        if (slot_tag_matches(&s[i], tag)) {
            struct rm_entry *e = slot_entry(&s[i]);
            if (u64 ? e->key == key : chm__key_equal(m, e->key, key))
                return e;
        }
    }
}

static inline struct rm_entry *idx_find(const chm *m, const struct rm_index *t, uint64_t key,
                                        uint64_t hash)
{
    return idx_find_k(m, t->slots, key, hash, false);
}

static inline struct rm_entry *read_find(const chm *m, uintptr_t r, uint64_t key, uint64_t hash)
{
    return idx_find(m, rd_index(r), key, hash);
}

/* Dirty (unpublished) tables: insert with room guaranteed, remove by backward shift. Probes run
 * down, as idx_find_k's, and wrap by the mask. */
static void dirty_insert(struct rm_index *t, struct rm_entry *e)
{
    size_t mask = t->mask, i = e->hash & mask;
    while (!slot_empty(&t->slots[i]))
        i = (i - 1) & mask;
    slot_set(&t->slots[i], e);
    t->count++;
}

static struct rm_entry *dirty_remove(const chm *m, struct rm_index *t, uint64_t key, uint64_t hash)
{
    size_t mask = t->mask, i = hash & mask;
    for (;; i = (i - 1) & mask) {
        if (slot_empty(&t->slots[i]))
            return NULL;
        if (slot_tag_matches(&t->slots[i], slot_tag(hash)) &&
            chm__key_equal(m, slot_entry(&t->slots[i])->key, key))
            break;
    }
    struct rm_entry *e = slot_entry(&t->slots[i]);
    /* Backward shift: move later members of the cluster whose probe from home to their slot j
     * passes the hole i into it, so every entry stays reachable from its home without
     * tombstones. A member stays if its home is nearer to j than i is (probing runs down). */
    for (size_t j = i;;) {
        j = (j - 1) & mask;
        if (slot_empty(&t->slots[j]))
            break;
        struct rm_entry *x = slot_entry(&t->slots[j]);
        size_t home = x->hash & mask;
        bool stays = ((home - j) & mask) < ((i - j) & mask);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].w = 0;
    t->count--;
    return e;
}

/* Room for @extra more entries in dirty (which exists), growing it if needed. false = out of
 * memory, nothing changed. The old table was never published: freed at once. */
static bool dirty_reserve(struct rm_map *m, size_t extra)
{
    struct rm_index *d = m->dirty;
    if (((d->count + extra) << RM_LOAD_LOG) <= (d->mask + 1))
        return true;
    unsigned shift = shift_for(d->count + extra);
    struct rm_index *g = index_new(shift);
    if (g == NULL)
        return false;
    for (size_t i = 0, n = d->mask + 1; i < n; i++)
        if (!slot_empty(&d->slots[i]))
            dirty_insert(g, slot_entry(&d->slots[i]));
    m->dirty = g;
    m->dirty_growths++;
    chm__free(d);
    return true;
}

/* Go's tryExpungeLocked. Relaxed: NULL -> EXPUNGED publishes nothing; the total order of RMWs
 * on p decides between this and a lock-free CAS NULL -> box (if that wins, the entry is live and
 * stays in dirty; if this wins, the CAS fails on EXPUNGED and its caller takes mu). */
static bool try_expunge_locked(struct rm_entry *e)
{
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
    while (p == NULL) {
        CHM_YIELD_POINT("rm.expunge.before_cas"); /* a lock-free store may resurrect e */
        if (atomic_compare_exchange_weak_explicit(&e->p, &p, EXPUNGED, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
    return p == EXPUNGED;
}

/* Go's dirtyLocked, first half: the table for a dirty map copying read index @r (dirty is NULL),
 * with room for one more entry; NULL = out of memory. Nothing changes: chm_compute allocates it
 * before its function runs and copies into it (dirty_fill_locked) only if the function inserts. */
static struct rm_index *dirty_alloc(struct rm_map *m, uintptr_t r)
{
    struct rm_index *t = rd_index(r);
    /* Sized for the live entries (the deleted ones are about to be expunged), by the live
     * counter: no extra pass. The counter may be off by writes in flight, and deleted entries
     * may be resurrected by lock-free stores during the copy, so the table also gets at least
     * 4/3 of the read index's entries in slots: every read entry fits at load < 3/4 whatever
     * happens; the next insert grows it if it is above the maximum load. */
    long live = live_sum(m);
    size_t want = live > 0 ? (size_t)live + 1 : 1, all = t->count + 1;
    unsigned shift = shift_for(want), floor = shift_for_slots(all + all / 3 + 1);
    return index_new(shift > floor ? shift : floor);
}

/* Go's dirtyLocked, second half: copy read index @r's entries that tryExpungeLocked does not
 * expunge into @d (from dirty_alloc for the same @r), which becomes dirty. Allocates nothing. */
static void dirty_fill_locked(struct rm_map *m, uintptr_t r, struct rm_index *d)
{
    struct rm_index *t = rd_index(r);
    for (size_t i = 0, n = t->mask + 1; i < n; i++) {
        struct rm_entry *e = slot_entry(&t->slots[i]);
        if (e == NULL)
            continue;
        if (try_expunge_locked(e)) {
            e->next_dead = m->expunged;
            m->expunged = e;
        } else {
            dirty_insert(d, e);
        }
    }
    m->dirty = d;
    m->dirty_builds++;
}

/* Go's dirtyLocked (dirty is NULL): a new dirty table with every read entry not expunged, room
 * for one more. Allocates first: false = out of memory, nothing changed. */
static bool dirty_locked(struct rm_map *m, uintptr_t r)
{
    struct rm_index *d = dirty_alloc(m, r);
    if (d == NULL)
        return false;
    dirty_fill_locked(m, r, d);
    return true;
}

/* Promote dirty to the read index (missLocked's second half, and Range's). Under mu, amended. */
static void promote_locked(struct rm_map *m)
{
    /* Relaxed: `read` is stored only under mu, which we hold. */
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed);
    struct rm_index *old = rd_index(r), *fresh = m->dirty;
    /* The entries expunged by the last dirtyLocked and still expunged are in no table but old:
     * they die with it. (An expunged entry can only change back under mu: unexpunge.) */
    struct rm_entry *dead = NULL;
    for (struct rm_entry *e = m->expunged, *next; e != NULL; e = next) {
        next = e->next_dead;
        if (atomic_load_explicit(&e->p, memory_order_relaxed) == EXPUNGED) {
            e->next_dead = dead;
            dead = e;
        }
    }
    if (old != EMPTY_INDEX) {
        old->dead = dead;
        old->succ = fresh;
    }
    /* Current + predecessor (none after the empty index: it holds nothing, and no entry of an
     * index before it is in any index after it, see rm_clear). Relaxed: published by the
     * release store of read below. */
    atomic_store_explicit(&fresh->refs, old != EMPTY_INDEX ? 2 : 1, memory_order_relaxed);
    CHM_YIELD_POINT("rm.promote.before_publish"); /* lock-free ops on the old index */
    /* Release pairs with the acquire loads of read in every lock-free path: the slots of the
     * new index, and the entries they point to, are visible to a reader that loads it. */
    atomic_store_explicit(&m->read, rd_make(fresh, false), memory_order_release);
    m->dirty = NULL;
    m->misses = 0;
    m->expunged = NULL;
    m->promotions++;
    CHM_YIELD_POINT("rm.promote.before_retire"); /* readers still probing the old index */
    if (old != EMPTY_INDEX)
        chm__smr_retire(m->smr, &old->node, index_retired);
}

/* Go's missLocked. */
static void miss_locked(struct rm_map *m)
{
    if (!rd_amended(atomic_load_explicit(&m->read, memory_order_relaxed))) /* under mu */
        return;
    if (++m->misses < m->dirty->count)
        return;
    promote_locked(m);
}

/* ---- entries ---------------------------------------------------------------------------- */

/* A new entry holding @value in its inline box (or RESERVED), with a stored copy of @key. */
static struct rm_entry *entry_new(chm *m, uint64_t key, uint64_t hash, uint64_t value,
                                  bool reserved)
{
    struct rm_map *rm = as_rm(m);
    /* From the map's pool: no malloc per new key, no malloc header (src/pool.h). */
    struct rm_entry *e = chm__pool_alloc(rm->entries);
    if (e == NULL)
        return NULL;
    if (chm_unlikely(((uintptr_t)e & ~RM_SLOT_PTR_MASK) != 0)) {
        /* Above 2^48: a slot cannot hold it (no Linux allocator returns such addresses unless
         * asked for them with mmap hints). Fail as out of memory rather than corrupt. */
        chm__pool_put(rm->entries, e);
        return NULL;
    }
    if (!chm__key_retain(m, key, &e->key)) {
        chm__pool_put(rm->entries, e);
        return NULL;
    }
    e->hash = hash;
    e->first.value = value;
    atomic_init(&e->refs, 2);
    e->next_dead = NULL;
    atomic_init(&e->p, reserved ? RESERVED : &e->first);
    return e;
}

/* An entry that was never reachable: undo entry_new. */
static void entry_discard(chm *m, struct rm_entry *e)
{
    chm__key_release(m, e->key);
    chm__pool_put(as_rm(m)->entries, e);
}

/* A heap box, from the map's box pool: a put that replaces a present key's value allocates one
 * (as sync.Map's Store boxes the value it stores) and the replaced box is retired, so a box
 * per overwrite is the common case of every overwrite-heavy workload. From malloc they cost an
 * overwrite about 190 instructions of glibc (malloc, and a free that, from a reclaiming
 * thread, is not the one that allocated) and a 32-byte chunk each; from the pool, 16 bytes
 * and a stripe's lock. */
static struct rm_box *box_new(struct rm_map *m, uint64_t value)
{
    struct rm_box *b = chm__pool_alloc(m->boxes);
    if (b != NULL)
        b->value = value;
    return b;
}

/* A heap box that was never installed (never published), or NULL: back to the pool now. */
static void box_discard(struct rm_map *m, struct rm_box *b)
{
    if (b != NULL)
        chm__pool_put(m->boxes, b);
}

/* A box replaced @old in @e's p: the outcome of a put. */
static int swapped_in(struct rm_map *m, struct rm_entry *e, struct rm_box *old, uint64_t value,
                      uint64_t *prev)
{
    if (is_box(old)) {
        *prev = old->value;
        retire_box(m, e, old, old->value == value);
        return CHM_EXISTS;
    }
    live_add(m, 1);
    return CHM_OK;
}

/* What a lock-free step returns when the entry is expunged, reserved or held: only a mu holder
 * may change it now, so the caller takes the locked path (1 + CHM_END: no status code). */
#define RM_RETRY (CHM_END + 1)

/* Go's entry.delete: CAS p from a box to NULL. RM_RETRY: held by a chm_compute (lock-free
 * callers only; under mu no other thread's compute holds an entry). */
static int entry_delete(struct rm_map *m, struct rm_entry *e, uint64_t *prev)
{
    /* Relaxed: the CAS below re-reads p; nothing is dereferenced before it succeeds. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
    for (;;) {
        if (!is_box(p))
            return CHM_NOTFOUND; /* RESERVED is absent too: the compute has not happened */
        if (is_held(p))
            return RM_RETRY; /* the compute's decision comes first: wait for it under mu */
        CHM_YIELD_POINT("rm.delete.before_cas"); /* racing swaps and deletes */
        /* Acquire on success pairs with the release that installed p: p->value is visible.
         * Storing NULL publishes nothing. */
        if (atomic_compare_exchange_weak_explicit(&e->p, &p, NULL, memory_order_acquire,
                                                  memory_order_relaxed)) {
            *prev = p->value;
            retire_box(m, e, p, false);
            live_add(m, -1);
            return CHM_OK;
        }
    }
}

/* What entry_cas and entry_cad check of p before their CAS (Go's tryCompareAndSwap and
 * compareAndDelete, value equality): CHM_NOTFOUND (no value), CHM_EXISTS (another value),
 * RM_RETRY (held by a chm_compute with the expected value: its decision comes first), or CHM_OK
 * (a box holding @expected, for the CAS to take). p->value must be visible (an acquire load). */
static inline int box_expect(const struct rm_box *p, uint64_t expected)
{
    if (!is_box(p))
        return CHM_NOTFOUND;
    if (box_value(p) != expected)
        return CHM_EXISTS;
    if (is_held(p))
        return RM_RETRY;
    return CHM_OK;
}

/* Go's tryCompareAndSwap (value equality). *boxp: a preallocated box or NULL. RM_RETRY: held
 * by a chm_compute with the expected value (another value fails at once: CHM_EXISTS is true at
 * the load, whatever the compute decides later). */
static int entry_cas(struct rm_map *m, struct rm_entry *e, uint64_t expected, uint64_t desired,
                     struct rm_box **boxp)
{
    /* Acquire pairs with the release that installed p: p->value is visible. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
    for (;;) {
        int rc = box_expect(p, expected);
        if (rc != CHM_OK)
            return rc;
        if (*boxp == NULL && (*boxp = box_new(m, desired)) == NULL)
            return CHM_ENOMEM;
        CHM_YIELD_POINT("rm.cas.before_cas"); /* value compared, not yet swapped */
        /* Release publishes the new box's value to readers (their acquire load of p); acquire
         * on failure reads the box that won. */
        if (atomic_compare_exchange_weak_explicit(&e->p, &p, *boxp, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            *boxp = NULL;
            retire_box(m, e, p, expected == desired);
            return CHM_OK;
        }
    }
}

/* Go's compareAndDelete loop (CompareAndDelete's lock-free half, value equality): CHM_OK
 * (deleted), CHM_NOTFOUND, CHM_EXISTS, or RM_RETRY: held by a chm_compute with the expected
 * value. */
static int entry_cad(struct rm_map *m, struct rm_entry *e, uint64_t expected)
{
    /* Acquire pairs with the release that installed p: p->value is visible. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
    for (;;) {
        int rc = box_expect(p, expected);
        if (rc != CHM_OK)
            return rc;
        /* Storing NULL publishes nothing, and p->value was read above; acquire on failure reads
         * the box that won (success acquire only because C11 wants it at least as strong). */
        if (atomic_compare_exchange_weak_explicit(&e->p, &p, NULL, memory_order_acquire,
                                                  memory_order_acquire)) {
            retire_box(m, e, p, false);
            live_add(m, -1);
            return CHM_OK;
        }
    }
}

/* tryLoadOrStore on a non-expunged entry, under mu or lock-free. CHM_OK (stored), CHM_EXISTS
 * (*cur = value: a held entry is present), CHM_ENOMEM, or RM_RETRY (expunged or reserved). */
static int entry_load_or_store(struct rm_map *m, struct rm_entry *e, uint64_t value,
                               struct rm_box **boxp, uint64_t *cur)
{
    /* Acquire pairs with the release that installed p: p->value is visible. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
    for (;;) {
        if (p == EXPUNGED || p == RESERVED)
            return RM_RETRY;
        if (p != NULL) {
            *cur = box_value(p);
            return CHM_EXISTS;
        }
        if (*boxp == NULL && (*boxp = box_new(m, value)) == NULL)
            return CHM_ENOMEM;
        CHM_YIELD_POINT("rm.load_or_store.before_cas"); /* racing stores, expunge */
        /* Release publishes the box's value; acquire on failure reads a winner's box. */
        if (atomic_compare_exchange_weak_explicit(&e->p, &p, *boxp, memory_order_release,
                                                  memory_order_acquire)) {
            *boxp = NULL;
            live_add(m, 1);
            return CHM_OK;
        }
    }
}

/* Under mu: a new key enters dirty (dirtyLocked and the amended flip first if needed). Its
 * value is @value in the inline box, or RESERVED. Allocates before changing anything. */
static int insert_new_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t value,
                             bool reserved, struct rm_entry **ep)
{
    struct rm_entry *e = entry_new(&m->base, key, hash, value, reserved);
    if (e == NULL)
        return CHM_ENOMEM;
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    if (!(m->dirty == NULL ? dirty_locked(m, r) : dirty_reserve(m, 1))) {
        entry_discard(&m->base, e);
        return CHM_ENOMEM;
    }
    CHM_YIELD_POINT("rm.amend.before_flip"); /* dirty built, readers see the old word */
    if (!rd_amended(r))
        /* Release, not relaxed: a reader that acquires the flipped word must also see the
         * index it names, published by an earlier release store of read (possibly on another
         * thread); a relaxed store would break that release sequence. */
        atomic_store_explicit(&m->read, rd_make(rd_index(r), true), memory_order_release);
    dirty_insert(m->dirty, e);
    if (!reserved)
        live_add(m, 1);
    *ep = e;
    return CHM_OK;
}

/* Under mu: unexpungeLocked + store @box: @e (in read, EXPUNGED) re-enters dirty. */
static bool unexpunge_store_locked(struct rm_map *m, struct rm_entry *e, struct rm_box *box)
{
    if (!dirty_reserve(m, 1))
        return false;
    dirty_insert(m->dirty, e);
    CHM_YIELD_POINT("rm.unexpunge.before_store"); /* lock-free CASes fail on EXPUNGED */
    /* Only mu holders change an expunged entry (lock-free CASes fail on it), so a store will
     * do. Release publishes box->value (a real box) to readers' acquire loads of p. */
    atomic_store_explicit(&e->p, box, memory_order_release);
    if (is_box(box))
        live_add(m, 1);
    return true;
}

/* ---- operations ------------------------------------------------------------------------- */

/* Load's locked lookup: under mu (this thread's or its compute's), inside a read section, which
 * covers the box it reads (a lock-free writer may displace and retire it meanwhile). */
static int lookup_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t *value)
{
    chm *cm = &m->base;
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    struct rm_entry *e = read_find(cm, r, key, hash);
    if (e == NULL && rd_amended(r)) {
        e = idx_find(cm, m->dirty, key, hash);
        miss_locked(m);
    }
    int rc = CHM_NOTFOUND;
    if (e != NULL) {
        /* Acquire pairs with the release that installed p (a lock-free writer may have). */
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
        if (is_box(p)) {
            *value = box_value(p);
            rc = CHM_OK;
        }
    }
    return rc;
}

/* Load's locked half. Called outside any read section of its own: mu is never waited for inside
 * one (see "Blocking"); the section opens under mu, where it cannot block anything. */
static int get_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t *value)
{
    bool locked = lock_unless_held(m);
    chm__smr_read_lock();
    int rc = lookup_locked(m, key, hash, value);
    chm__smr_read_unlock();
    if (locked)
        mu_unlock(m);
    return rc;
}

/* The lock-free half of Load, inside a read section: the key's live box in the read map, or
 * NULL. *sp gets the slots of the index probed; *has_entry whether it has an entry for the key
 * (a miss without one asks read_miss_final whether to go to the locked path). One function for
 * rm_get and rm_get_u64 (@u64: integer keys, compared inline), so they share the yield points
 * and the linearization argument. */
static inline struct rm_box *read_lookup(const chm *cm, struct rm_map *m, uint64_t key,
                                         uint64_t hash, bool u64, const struct rm_slot **sp,
                                         bool *has_entry)
{
    const struct rm_slot *s = rd_slots(read_load(m));
    CHM_YIELD_POINT("rm.get.read_loaded"); /* a promotion may replace and retire the index */
    *sp = s;
    struct rm_entry *e = idx_find_k(cm, s, key, hash, u64);
    *has_entry = e != NULL;
    if (e == NULL)
        return NULL;
    CHM_YIELD_POINT("rm.get.entry_found"); /* p may change: swap, delete, expunge */
    /* Acquire pairs with the release that installed the box: its value is visible. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
    if (!is_box(p))
        return NULL;
    CHM_YIELD_POINT("rm.get.box_loaded"); /* the box may be displaced and retired */
    return p;
}

/* After read_lookup found no entry for the key in the index with slots @s: whether the key is
 * absent without a look at dirty (Go: !read.amended). Yes if read names that index now, not
 * amended: while it does, dirty holds no key the index lacks (a key enters dirty only after
 * the amended flip), so the key is absent at this load, where the miss linearizes. Anything
 * else (amended, or another index since) takes the locked path, linearizable by itself. Go
 * tests the flag of the word it probed; reading the word again lets rm_get_u64 keep no
 * register for that word through the probe (only the slots' address, compared here), at one
 * more instruction per miss. The word names an index again after amending it only if that is
 * the static empty index, published again by a later chm_clear, which emptied the map: the
 * argument holds. Relaxed: compared, not followed; coherence keeps it no older than
 * read_lookup's load. Called inside the read section that probed @s, and it must be: after
 * the section the index at @s may be retired, freed, and its memory reused for a new index
 * published at the same address, which this compare would take for the one probed. */
static inline bool read_miss_final(struct rm_map *m, const struct rm_slot *s)
{
    return atomic_load_explicit(&m->read, memory_order_relaxed) == (uintptr_t)s;
}

static int rm_get(chm *cm, uint64_t key, uint64_t *value)
{
    struct rm_map *m = as_rm(cm);
    uint64_t hash = chm__hash(cm, key), v = 0;
    int rc = CHM_NOTFOUND;
    const struct rm_slot *s;
    bool has_entry;
    bool settled = true;
    chm__smr_read_lock();
    struct rm_box *p = read_lookup(cm, m, key, hash, false, &s, &has_entry);
    if (p != NULL) {
        v = box_value(p);
        rc = CHM_OK;
    } else if (!has_entry) {
        settled = read_miss_final(m, s); /* inside the section: see there */
    }
    chm__smr_read_unlock(); /* before mu (see "Blocking") */
    if (!settled)
        rc = get_locked(m, key, hash, &v);
    if (rc == CHM_OK && value != NULL)
        *value = v;
    return rc;
}

/* chm__hash_u64 of @key for this map, the second multiplier read from m->hash_k2 (=
 * CHM__HASH_K2): `mulq` takes it from memory (on `read`'s line, which the lookup loads anyway),
 * where the constant would cost a `movabs` and a register of its own. */
static inline uint64_t rm_hash_u64(const struct rm_map *m, uint64_t key)
{
    return chm__fold_mul(chm__fold_mul(key ^ m->base.seed, m->base.hash_mul), m->hash_k2);
}

/* get for integer keys (ops.get_u64): rm_get as a leaf function on a read-map hit, every call a
 * tail call (smr.h, chm__smr_lookup_begin). A miss that read_miss_final does not settle leaves
 * the section and takes the locked path in get_amended_miss, as rm_get does.
 * With no callee-saved register to push and pop either (docs/design.md, "The read path,
 * instruction by instruction"): the probe loop keeps nine values (the reader, liburcu's
 * grace-period state, the map, the key, the value pointer, the slots' address, the tag, the
 * index, the slot word), as many as x86-64 has caller-saved registers. That is why the mask is
 * read again rather than kept (slots_mask_again), a miss reads `read` again (read_miss_final),
 * get_amended_miss recomputes the hash, and the hash comes before the section opens (gcc 12
 * then needs no spare register for it). */
static __attribute__((noinline)) int get_amended_miss(chm *cm, chm__smr_reader *r, uint64_t key,
                                                      uint64_t *value);

static int rm_get_u64(chm *cm, uint64_t key, uint64_t *value)
{
    struct rm_map *m = as_rm(cm);
    uint64_t hash = rm_hash_u64(m, key); /* immutable fields: no section needed */
    chm__smr_reader *r = chm__smr_lookup_begin();
    if (chm_unlikely(r == NULL))
        return rm_get(cm, key, value); /* the fast path is off (smr.h) */
    const struct rm_slot *s;
    bool has_entry;
    struct rm_box *p = read_lookup(cm, m, key, hash, true, &s, &has_entry);
    if (p == NULL) {
        if (!has_entry && !read_miss_final(m, s))
            return get_amended_miss(cm, r, key, value);
        return chm__smr_lookup_return(r, CHM_NOTFOUND);
    }
    uint64_t v = box_value(p);
    if (value != NULL)
        *value = v;
    return chm__smr_lookup_return(r, CHM_OK);
}

static int get_amended_miss(chm *cm, chm__smr_reader *r, uint64_t key, uint64_t *value)
{
    (void)chm__smr_lookup_return(r, 0); /* before mu (see "Blocking") */
    uint64_t v = 0;
    int rc = get_locked(as_rm(cm), key, chm__hash(cm, key), &v);
    if (rc == CHM_OK && value != NULL)
        *value = v;
    return rc;
}

/* Under mu: the key's entry, in read or else in dirty; NULL in neither. *via_dirty: it came from
 * dirty, so the caller counts a miss (miss_locked) once its operation has gone through, as Go's
 * Map does after a dirty hit. The read word is loaded relaxed: only mu holders store it, so
 * under mu it is current, and so is everything it names. */
static inline struct rm_entry *find_locked(struct rm_map *m, uint64_t key, uint64_t hash,
                                           bool *via_dirty)
{
    chm *cm = &m->base;
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    struct rm_entry *e = read_find(cm, r, key, hash);
    *via_dirty = false;
    if (e == NULL && m->dirty != NULL) {
        e = idx_find(cm, m->dirty, key, hash);
        *via_dirty = e != NULL;
    }
    return e;
}

/* The lock-free half of a write or a visit (Go's `read := m.loadReadOnly(); e, ok :=
 * read.m[key]`): opens a read section, which the caller closes before it takes mu (see
 * "Blocking"), and returns the key's entry in the read index, or NULL; *r gets the read word. */
static inline struct rm_entry *read_section_find(struct rm_map *m, uint64_t key, uint64_t hash,
                                                 uintptr_t *r)
{
    chm__smr_read_lock();
    *r = read_load(m);
    return read_find(&m->base, *r, key, hash);
}

/* Swap's locked half. *boxp: a preallocated box or NULL; consumed when installed. Outside any
 * read section (see "Blocking"), and it needs none: under mu the read index is current, and the
 * only box it reads is the one its exchange took out of p, which no other thread retires. */
static int put_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t value,
                      struct rm_box **boxp, uint64_t *prev)
{
    int rc;
    bool via_dirty; /* Swap counts no miss (Go's Swap does not) */
    mu_lock(m);
    struct rm_entry *e = find_locked(m, key, hash, &via_dirty);
    if (e == NULL) {
        rc = insert_new_locked(m, key, hash, value, false, &e);
        goto out;
    }
    if (*boxp == NULL && (*boxp = box_new(m, value)) == NULL) {
        rc = CHM_ENOMEM;
        goto out;
    }
    if (atomic_load_explicit(&e->p, memory_order_relaxed) == EXPUNGED) {
        /* In read, not in dirty (expunged entries change only under mu: relaxed is exact). */
        if (!unexpunge_store_locked(m, e, *boxp)) {
            rc = CHM_ENOMEM;
            goto out;
        }
        rc = CHM_OK;
    } else {
        /* swapLocked. acq_rel: release publishes the box; acquire reads the old box's value
         * (a lock-free writer may have installed it). */
        struct rm_box *old = atomic_exchange_explicit(&e->p, *boxp, memory_order_acq_rel);
        rc = swapped_in(m, e, old, value, prev);
    }
    *boxp = NULL;
out:
    mu_unlock(m);
    return rc;
}

static int rm_put(chm *cm, uint64_t key, uint64_t value, uint64_t *old)
{
    struct rm_map *m = as_rm(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key), prev = 0;
    struct rm_box *box = NULL;
    int rc;
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e != NULL) {
        /* trySwap. Relaxed: only compared with the sentinels and the held tag; the CAS re-reads
         * p. */
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
        if (p != EXPUNGED && p != RESERVED && !is_held(p)) {
            if ((box = box_new(m, value)) == NULL) {
                rc = CHM_ENOMEM;
                goto out;
            }
            CHM_YIELD_POINT("rm.put.before_cas"); /* p may be expunged or swapped */
            /* Success acq_rel: release publishes the box's value, acquire reads the old box's
             * value. Failure relaxed: the new p is only compared with the sentinels. */
            while (!atomic_compare_exchange_weak_explicit(&e->p, &p, box, memory_order_acq_rel,
                                                          memory_order_relaxed)) {
                if (p == EXPUNGED || p == RESERVED || is_held(p))
                    goto slow;
                CHM_YIELD_POINT("rm.put.cas_retry");
            }
            box = NULL;
            rc = swapped_in(m, e, p, value, &prev);
            goto out;
        }
    }
slow:
    chm__smr_read_unlock(); /* before mu (see "Blocking") */
    rc = put_locked(m, key, hash, value, &box, &prev);
    goto done;
out:
    chm__smr_read_unlock();
done:
    box_discard(m, box); /* preallocated and not installed: never published */
    if (rc == CHM_EXISTS && old != NULL)
        *old = prev;
    return rc;
}

/* LoadOrStore's locked half, called outside any read section (see "Blocking"); the section it
 * opens under mu covers the box entry_load_or_store reads (lock-free writers may retire it). */
static int put_if_absent_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t value,
                                struct rm_box **boxp, uint64_t *cur)
{
    int rc;
    bool via_dirty;
    mu_lock(m);
    chm__smr_read_lock();
    struct rm_entry *e = find_locked(m, key, hash, &via_dirty);
    if (e == NULL) {
        rc = insert_new_locked(m, key, hash, value, false, &e);
    } else if (atomic_load_explicit(&e->p, memory_order_relaxed) == EXPUNGED) { /* exact: mu */
        if (*boxp == NULL && (*boxp = box_new(m, value)) == NULL) {
            rc = CHM_ENOMEM;
        } else if (!unexpunge_store_locked(m, e, *boxp)) {
            rc = CHM_ENOMEM;
        } else {
            *boxp = NULL;
            rc = CHM_OK;
        }
    } else {
        rc = entry_load_or_store(m, e, value, boxp, cur); /* never RM_RETRY under mu */
        if (via_dirty && rc != CHM_ENOMEM)
            miss_locked(m);
    }
    chm__smr_read_unlock();
    mu_unlock(m);
    return rc;
}

static int rm_put_if_absent(chm *cm, uint64_t key, uint64_t value, uint64_t *current)
{
    struct rm_map *m = as_rm(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key), cur = 0;
    struct rm_box *box = NULL;
    int rc = RM_RETRY;
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e != NULL)
        rc = entry_load_or_store(m, e, value, &box, &cur);
    chm__smr_read_unlock(); /* before mu (see "Blocking") */
    if (rc == RM_RETRY)
        rc = put_if_absent_locked(m, key, hash, value, &box, &cur);
    box_discard(m, box);
    if (rc == CHM_EXISTS && current != NULL)
        *current = cur;
    return rc;
}

/* LoadAndDelete's locked half (read missed and amended, or the read entry is held by a
 * chm_compute). *gone: a dirty-only entry that left. Outside any read section (see "Blocking"),
 * and it needs none: entry_delete reads only the box its own CAS took out of p. */
static int remove_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t *prev,
                         struct rm_entry **gone)
{
    chm *cm = &m->base;
    int rc = CHM_NOTFOUND;
    mu_lock(m);
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    struct rm_entry *e = read_find(cm, r, key, hash);
    if (e != NULL) {
        rc = entry_delete(m, e, prev);
    } else if (rd_amended(r)) {
        e = dirty_remove(cm, m->dirty, key, hash);
        miss_locked(m); /* as Go: whether or not the key was there */
        if (e != NULL) {
            /* Unreachable now, and only ever reached under mu: it dies when mu is dropped. */
            rc = entry_delete(m, e, prev);
            *gone = e;
        }
    }
    mu_unlock(m);
    return rc;
}

static int rm_remove(chm *cm, uint64_t key, uint64_t *old)
{
    struct rm_map *m = as_rm(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key), prev = 0;
    struct rm_entry *gone = NULL;
    int rc = CHM_NOTFOUND;
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e != NULL)
        rc = entry_delete(m, e, &prev);
    chm__smr_read_unlock(); /* before mu (see "Blocking") */
    if (rc == RM_RETRY || (e == NULL && rd_amended(r)))
        rc = remove_locked(m, key, hash, &prev, &gone);
    if (gone != NULL)
        entry_die(m, gone); /* keyops.release outside mu */
    if (rc == CHM_OK && old != NULL)
        *old = prev;
    return rc;
}

/* CompareAndSwap's locked half (read missed and amended, or the read entry is held by a
 * chm_compute), called outside any read section (see "Blocking"); the section it opens under mu
 * covers the box entry_cas reads. */
static int replace_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t expected,
                          uint64_t desired, struct rm_box **boxp)
{
    int rc = CHM_NOTFOUND;
    bool via_dirty;
    mu_lock(m);
    chm__smr_read_lock();
    struct rm_entry *e = find_locked(m, key, hash, &via_dirty);
    if (e != NULL) {
        rc = entry_cas(m, e, expected, desired, boxp);
        if (via_dirty && rc != CHM_ENOMEM)
            miss_locked(m);
    }
    chm__smr_read_unlock();
    mu_unlock(m);
    return rc;
}

static int rm_replace(chm *cm, uint64_t key, uint64_t expected, uint64_t desired)
{
    struct rm_map *m = as_rm(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key);
    struct rm_box *box = NULL;
    int rc = CHM_NOTFOUND;
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e != NULL)
        rc = entry_cas(m, e, expected, desired, &box);
    chm__smr_read_unlock(); /* before mu (see "Blocking") */
    if (rc == RM_RETRY || (e == NULL && rd_amended(r)))
        rc = replace_locked(m, key, hash, expected, desired, &box);
    box_discard(m, box);
    return rc;
}

static int rm_compute_if_absent(chm *cm, uint64_t key, chm_compute_fn *fn, void *arg,
                                uint64_t *value)
{
    struct rm_map *m = as_rm(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    uint64_t hash = chm__hash(cm, key), v = 0;
    struct rm_box *box = NULL;
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e != NULL) {
        /* Acquire pairs with the release that installed p: p->value is visible. */
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
        if (is_box(p)) {
            v = box_value(p);
            rc = CHM_EXISTS;
            goto out;
        }
    }
    /* mu is never waited for inside a section (see "Blocking"); the section reopened under mu
     * covers the box read below until fn runs. */
    chm__smr_read_unlock();
    mu_lock(m);
    chm__smr_read_lock();
    bool via_dirty;
    e = find_locked(m, key, hash, &via_dirty);
    if (e == NULL) {
        rc = insert_new_locked(m, key, hash, 0, true, &e);
        if (rc != CHM_OK)
            goto unlock;
        box = &e->first;
    } else {
        /* Acquire pairs with the release that installed p: p->value is visible. */
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
        if (is_box(p)) {
            v = box_value(p);
            rc = CHM_EXISTS;
            goto miss;
        }
        if ((box = box_new(m, 0)) == NULL) {
            rc = CHM_ENOMEM;
            goto unlock;
        }
        if (p == EXPUNGED) {
            if (!unexpunge_store_locked(m, e, RESERVED)) {
                rc = CHM_ENOMEM;
                goto unlock;
            }
        } else if (!atomic_compare_exchange_strong_explicit(
                       &e->p, &p, RESERVED, memory_order_acquire, memory_order_acquire)) {
            /* NULL -> RESERVED publishes nothing (no release needed; acquire on success only
             * because C11 wants it at least as strong as the failure order). On failure it
             * lost to a lock-free store of a box (the only other way out of NULL): acquire
             * pairs with that store's release, so the box's value is visible. */
            v = p->value;
            rc = CHM_EXISTS;
            goto miss;
        }
    }
    /* The key is RESERVED: readers and deleters see it absent, storers wait for mu. Run fn
     * outside any read section (it may block, or free other maps) but under mu: e cannot leave
     * the tables (only a write under mu could remove it, and nested writes are refused). */
    chm__smr_read_unlock();
    CHM_YIELD_POINT("rm.compute.reserved"); /* readers and deleters see RESERVED */
    /* On the thread's compute stack: nested writes return CHM_EDEADLK, nested reads skip mu. */
    v = chm__reentry_run(cm, CHM__HOLD_PART, fn, key, arg);
    box->value = v;
    /* Release pairs with readers' acquire loads of p: the value is visible. Only the mu
     * holder changes a RESERVED entry, so a store will do. */
    atomic_store_explicit(&e->p, box, memory_order_release);
    box = NULL;
    live_add(m, 1);
    rc = CHM_OK;
    if (via_dirty)
        miss_locked(m);
    mu_unlock(m);
    if (value != NULL)
        *value = v;
    return rc;
miss:
    if (via_dirty)
        miss_locked(m);
unlock:
    mu_unlock(m);
out:
    chm__smr_read_unlock();
    /* A heap box that was not installed (never &e->first: no failure follows the insertion of a
     * new entry). */
    box_discard(m, box);
    if (rc == CHM_EXISTS && value != NULL)
        *value = v;
    return rc;
}

static size_t rm_size(chm *cm)
{
    long n = live_sum(as_rm(cm));
    return n > 0 ? (size_t)n : 0;
}

/* ---- chm_compute, chm_remove_if, chm_clear, chm_visit, chm_stats_get -------------------- */

/* Under mu: hold @e for chm_compute, so that no other thread changes its p until the compute
 * stores its decision. A box B becomes B|RM_HELD (present: readers go on reading B's value;
 * lock-free writers see the tag and take mu, where they wait); NULL becomes RESERVED (absent,
 * as compute_if_absent's reservation); EXPUNGED re-enters dirty as RESERVED (unexpungeLocked,
 * the one step that allocates: false = out of memory, nothing changed). *@was: B, or NULL for
 * an absent key. */
static bool hold_locked(struct rm_map *m, struct rm_entry *e, struct rm_box **was)
{
    /* Acquire pairs with the release that installed p: B's value is read once B is held. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
    for (;;) {
        if (p == EXPUNGED) { /* exact: only mu holders change an expunged entry */
            if (!unexpunge_store_locked(m, e, RESERVED))
                return false;
            *was = NULL;
            return true;
        }
        /* Neither RESERVED nor held here: only a mu holder sets those, and it stores its
         * decision before it unlocks. */
        struct rm_box *want = p == NULL ? RESERVED : held(p);
        /* The total order of RMWs on p decides between this CAS and a lock-free writer's
         * (trySwap, delete, tryCompareAndSwap, tryLoadOrStore, compareAndDelete): the loser
         * re-reads. Acquire (success and failure) pairs with the release that installed the box
         * held or the one that won; nothing is published (B already was). */
        if (atomic_compare_exchange_weak_explicit(&e->p, &p, want, memory_order_acquire,
                                                  memory_order_acquire)) {
            *was = p;
            return true;
        }
    }
}

/* chm_compute. Go has none (Swap, CompareAndSwap, CompareAndDelete, LoadOrStore and
 * LoadAndDelete are its special cases, see chm.h); this is compute_if_absent's shape: take mu,
 * hold the key's entry (hold_locked) or reserve a new one, allocate everything a SET can need,
 * then run fn once -- under mu, outside any read section -- and store its decision. fn's view
 * stays current meanwhile: a held entry changes through this thread only (lock-free writers
 * wait for mu), and a key in neither table can only enter one under mu. Exactly once with no
 * retry, because the only writers that do not take mu are kept out by the hold itself.
 * Linearization point: the store of the decision (SET: the new box, DELETE: NULL); a KEEP's is
 * the hold, where fn's view was read. No read section: under mu the tables are current, and
 * the held box is retired by this thread only. */
static int rm_compute(chm *cm, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result)
{
    struct rm_map *m = as_rm(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    uint64_t hash = chm__hash(cm, key), old = 0, v = 0;
    /* A SET's box, allocated before mu (no malloc under the lock where it can be avoided). It
     * is also what takes a replaced value to value_free (retire_box): no other record. */
    struct rm_box *box = box_new(m, 0);
    if (box == NULL)
        return CHM_ENOMEM;
    struct rm_entry *fresh = NULL;   /* a new entry: the key was in neither table */
    struct rm_index *fill = NULL;    /* dirty's table for a fresh entry, not yet filled */
    struct rm_entry *discard = NULL; /* never installed: freed after mu (entry_discard) */
    struct rm_entry *gone = NULL;    /* a dirty-only entry deleted: dies after mu */
    struct rm_box *was = NULL;
    bool via_dirty, reserved = false;
    mu_lock(m); /* outside any read section (see "Blocking"): fn may block */
    struct rm_entry *e = find_locked(m, key, hash, &via_dirty);
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu: as found */
    if (e != NULL) {
        if (!hold_locked(m, e, &was)) {
            rc = CHM_ENOMEM;
            goto unlock;
        }
        if (was != NULL)
            old = was->value;
    } else if (rd_amended(r)) {
        /* A new key while amended: reserved in dirty now, as compute_if_absent does, because
         * fn may iterate, which promotes dirty: the entry must be in the table that becomes
         * the read index. Nothing else changes (amended already). */
        rc = insert_new_locked(m, key, hash, 0, true, &fresh);
        if (rc != CHM_OK)
            goto unlock;
        reserved = true;
    } else {
        /* A new key while not amended: no promotion can happen during fn (nothing to promote;
         * nested writes are refused), so the tables stay as they are. Allocate the entry and
         * dirty's room now, change the map after fn and only on a SET: a KEEP of an absent key
         * (Java's computeIfPresent) costs no dirtyLocked copy and no amended flip. */
        fresh = entry_new(cm, key, hash, 0, false);
        if (fresh == NULL ||
            (m->dirty == NULL ? (fill = dirty_alloc(m, r)) == NULL : !dirty_reserve(m, 1))) {
            discard = fresh;
            rc = CHM_ENOMEM;
            goto unlock;
        }
    }
    /* On the thread's compute stack: nested writes return CHM_EDEADLK, nested reads skip mu. */
    chm_compute_action act =
        chm__reentry_update(cm, CHM__HOLD_PART, fn, key, was != NULL, old, &v, arg);
    if (act == CHM_COMPUTE_SET && was != NULL && v == old)
        act = CHM_COMPUTE_KEEP; /* chm.h: a SET of the value the key holds is a KEEP */
    rc = act == CHM_COMPUTE_SET || (act == CHM_COMPUTE_KEEP && was != NULL) ? CHM_OK : CHM_NOTFOUND;
    if (fresh != NULL && !reserved) {
        if (act == CHM_COMPUTE_SET) {
            /* dirtyLocked and the amended flip, as insert_new_locked, with what was allocated
             * before fn; r is still current (see above). The entry is unpublished until then. */
            fresh->first.value = v;
            if (fill != NULL) {
                dirty_fill_locked(m, r, fill);
                fill = NULL;
            }
            dirty_insert(m->dirty, fresh);
            /* Release, as in insert_new_locked: the word names an index published before. */
            atomic_store_explicit(&m->read, rd_make(rd_index(r), true), memory_order_release);
            live_add(m, 1);
        } else {
            discard = fresh; /* never reachable */
        }
    } else if (fresh != NULL) {
        if (act == CHM_COMPUTE_SET) {
            fresh->first.value = v;
            /* Release pairs with readers' acquire loads of p: the value is visible. Only the mu
             * holder changes a RESERVED entry, so a store will do. */
            atomic_store_explicit(&fresh->p, &fresh->first, memory_order_release);
            live_add(m, 1);
        } else if (read_find(cm, atomic_load_explicit(&m->read, memory_order_relaxed), key, hash) ==
                   fresh) {
            /* fn's iteration promoted dirty: the entry stays in the read index, deleted, as
             * after a chm_remove (the next dirtyLocked expunges it, the next promotion drops
             * it). RESERVED -> NULL publishes nothing. */
            atomic_store_explicit(&fresh->p, NULL, memory_order_relaxed);
            entry_unref(m, fresh); /* the inline box's reference: it was never installed */
        } else {
            dirty_remove(cm, m->dirty, key, hash); /* only ever reached under mu */
            discard = fresh;
            /* fn's own reads may have counted misses while the reservation made dirty one
             * larger: with it gone, Go's rule (promote once misses reach len(dirty)) may be
             * due now. */
            if (rd_amended(atomic_load_explicit(&m->read, memory_order_relaxed)) &&
                m->misses >= m->dirty->count)
                promote_locked(m);
        }
    } else if (act == CHM_COMPUTE_SET) {
        box->value = v;
        /* Release pairs with readers' acquire loads of p: the value is visible. Only the mu
         * holder changes a held or RESERVED entry, so a store will do. */
        atomic_store_explicit(&e->p, box, memory_order_release);
        box = NULL;
        if (was != NULL)
            retire_box(m, e, was, false); /* the value left: value_free after a grace period */
        else
            live_add(m, 1);
    } else if (was != NULL && act == CHM_COMPUTE_KEEP) {
        v = old;
        /* Untag. Release: a reader that acquires B from this store must see B's value, and a
         * plain store ends the release sequence of the CAS that installed B; this thread's
         * acquire (hold_locked) saw it, so its release passes it on. */
        atomic_store_explicit(&e->p, was, memory_order_release);
    } else {
        /* DELETE, or an absent key left absent: deleted. Storing NULL publishes nothing. */
        atomic_store_explicit(&e->p, NULL, memory_order_relaxed);
        if (was != NULL) {
            retire_box(m, e, was, false);
            live_add(m, -1);
            if (read_find(cm, atomic_load_explicit(&m->read, memory_order_relaxed), key, hash) !=
                e) {
                /* Dirty-only (fn may have promoted it meanwhile: looked up again): it leaves
                 * dirty and dies once mu is dropped, as in remove_locked. */
                dirty_remove(cm, m->dirty, key, hash);
                gone = e;
            }
        }
    }
    if (via_dirty)
        miss_locked(m); /* the key was read under mu (LoadOrStore counts it too) */
unlock:
    mu_unlock(m);
    box_discard(m, box); /* a heap box that was not installed: never published */
    chm__free(fill);     /* a dirty table that was not filled: never published */
    if (discard != NULL)
        entry_discard(cm, discard); /* keyops.release outside mu */
    if (gone != NULL)
        entry_die(m, gone);
    if (rc == CHM_OK && result != NULL)
        *result = v;
    return rc;
}

/* CompareAndDelete's locked half (read missed and amended, or the read entry is held by a
 * chm_compute with the expected value), called outside any read section (see "Blocking"); the
 * section it opens under mu covers the box entry_cad reads. As Go, a miss is counted whether or
 * not the key is in dirty; unlike Go (which leaves the entry in dirty, deleted, until it is
 * expunged), a dirty-only entry leaves dirty at once, as in remove_locked. */
static int remove_if_locked(struct rm_map *m, uint64_t key, uint64_t hash, uint64_t expected,
                            struct rm_entry **gone)
{
    chm *cm = &m->base;
    int rc = CHM_NOTFOUND;
    mu_lock(m);
    chm__smr_read_lock();
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    struct rm_entry *e = read_find(cm, r, key, hash);
    if (e != NULL) {
        rc = entry_cad(m, e, expected); /* never RM_RETRY under mu */
    } else if (rd_amended(r)) {
        e = idx_find(cm, m->dirty, key, hash);
        if (e != NULL && (rc = entry_cad(m, e, expected)) == CHM_OK) {
            /* Unreachable now, and only ever reached under mu: it dies when mu is dropped. */
            dirty_remove(cm, m->dirty, key, hash);
            *gone = e;
        }
        miss_locked(m);
    }
    chm__smr_read_unlock();
    mu_unlock(m);
    return rc;
}

/* chm_remove_if: Go's CompareAndDelete. Lock-free on a read hit (compareAndDelete's CAS loop);
 * under mu for a key added since the last promotion, or one a chm_compute holds with the
 * expected value (it waits for the decision). Linearization point: the CAS to NULL, or the load
 * that saw the key absent or another value. */
static int rm_remove_if(chm *cm, uint64_t key, uint64_t expected)
{
    struct rm_map *m = as_rm(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t hash = chm__hash(cm, key);
    struct rm_entry *gone = NULL;
    int rc = CHM_NOTFOUND;
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e != NULL)
        rc = entry_cad(m, e, expected);
    chm__smr_read_unlock(); /* before mu (see "Blocking") */
    if (rc == RM_RETRY || (e == NULL && rd_amended(r)))
        rc = remove_if_locked(m, key, hash, expected, &gone);
    if (gone != NULL)
        entry_die(m, gone); /* keyops.release outside mu */
    return rc;
}

/* chm_clear: Go 1.23's Clear. Under mu: publish the empty index (not amended), drop dirty,
 * misses = 0 -- then, unlike Go (whose GC frees the old entries, and which loses a lock-free
 * Store that lands in an old entry after the Clear), empty every old entry so that each value
 * goes to value_free exactly once:
 *   - each entry of the old read index is exchanged to EXPUNGED: a lock-free writer that still
 *     holds it fails its CAS and takes mu (and finds the key absent); a reader sees it absent.
 *     The box taken out is retired (value_free after a grace period), and the entry joins the
 *     old index's dead list: it dies with that index, once every reader is out and every
 *     iterator that holds the index (or an older one) is finished -- iterators keep walking
 *     it, and skip the expunged entries;
 *   - each dirty-only entry (in dirty and not expunged by the step above) loses its box the
 *     same way and dies when mu is dropped (only ever reached under mu, as in remove_locked).
 * Publishing first makes the clear one atomic step for every operation that starts after it
 * (they load the empty index, or wait for mu); a lock-free operation that loaded the old index
 * before and wins a CAS on an old entry before the exchange is ordered before the clear (it
 * began before the publication), and what it stored is removed by the exchange.
 * The empty index is the static EMPTY_INDEX: nothing is allocated, so chm_clear cannot fail.
 * The old index's chain ends here (no successor reference): no entry of it or of an older
 * index is in any later index -- every one of them leaves at the clear, new keys get new
 * entries, and only entries of the current read index are ever unexpunged. */
static int rm_clear(chm *cm)
{
    struct rm_map *m = as_rm(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    chm__smr_read_lock();
    uintptr_t r = read_load(m);
    bool empty = !rd_amended(r) && rd_index(r)->count == 0;
    chm__smr_read_unlock();
    if (empty)
        return CHM_OK; /* Go: an empty read map, not amended: nothing to do, no lock */
    mu_lock(m);        /* outside any read section (see "Blocking") */
    r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    struct rm_index *old = rd_index(r), *d = m->dirty;
    if (!rd_amended(r) && old->count == 0) {
        mu_unlock(m); /* emptied meanwhile; a dirty without amended holds nothing read lacks */
        return CHM_OK;
    }
    /* Release pairs with the acquire loads of read, as every store of it. */
    atomic_store_explicit(&m->read, rd_make(EMPTY_INDEX, false), memory_order_release);
    long removed = 0;
    struct rm_entry *dead = NULL, *dirty_only = NULL;
    for (size_t i = 0, n = old->mask + 1; i < n; i++) {
        struct rm_entry *e = slot_entry(&old->slots[i]);
        if (e == NULL)
            continue;
        /* Acquire pairs with the release that installed the box: its value, read by the
         * retire callback later, is visible to this thread, whose retire passes it on. */
        struct rm_box *p = atomic_exchange_explicit(&e->p, EXPUNGED, memory_order_acquire);
        if (is_box(p)) { /* never held nor RESERVED: only a mu holder sets those */
            retire_box(m, e, p, false);
            removed++;
        }
        e->next_dead = dead; /* the expunged list (m->expunged) is dropped below */
        dead = e;
    }
    if (d != NULL) {
        for (size_t i = 0, n = d->mask + 1; i < n; i++) {
            struct rm_entry *e = slot_entry(&d->slots[i]);
            /* Relaxed: a dirty-only entry's p changes under mu only. EXPUNGED: in old, done. */
            struct rm_box *p =
                e != NULL ? atomic_load_explicit(&e->p, memory_order_relaxed) : EXPUNGED;
            if (p == EXPUNGED)
                continue;
            if (is_box(p)) {
                retire_box(m, e, p, false);
                removed++;
            }
            e->next_dead = dirty_only;
            dirty_only = e;
        }
        chm__free(d); /* never published */
    }
    m->dirty = NULL;
    m->misses = 0;
    m->expunged = NULL;
    live_add(m, -removed);
    if (old != EMPTY_INDEX) {
        old->dead = dead;
        chm__smr_retire(m->smr, &old->node, index_retired);
    }
    mu_unlock(m);
    for (struct rm_entry *e = dirty_only, *next; e != NULL; e = next) {
        next = e->next_dead;
        entry_die(m, e); /* keyops.release outside mu */
    }
    return CHM_OK;
}

/* chm_visit's locked half (read missed, amended): Load's locked lookup, then fn with mu
 * already dropped, inside the read section opened under mu. The section alone keeps the value
 * from value_free: a box displaced or deleted meanwhile, under mu or not, is retired, and its
 * value freed only after a grace period. So fn holds no lock of the map, and its nested calls
 * lock as any call would (a nested chm_get of a dirty key takes mu; unless an outer compute of
 * this thread holds it: then it is still held, and they skip it). Called outside any read
 * section of its own (see "Blocking"). */
static int visit_locked(struct rm_map *m, uint64_t key, uint64_t hash, chm_visit_fn *fn, void *arg)
{
    uint64_t v = 0;
    bool locked = lock_unless_held(m);
    chm__smr_read_lock(); /* under mu: opening a section never blocks */
    int rc = lookup_locked(m, key, hash, &v);
    if (locked)
        mu_unlock(m);
    if (rc == CHM_OK)
        chm__reentry_visit(&m->base, fn, key, v, arg);
    chm__smr_read_unlock();
    return rc;
}

/* chm_visit: Load, with fn run on the value inside the read section that made the load safe
 * (a displaced box and its value are freed a grace period after the section ends). Lock-free and
 * store-free for a key in the read index, as chm_get; under mu otherwise (visit_locked).
 * Linearization point: the load of p, as chm_get. fn receives the caller's @key (the stored
 * copy of a dirty-only key may be released as soon as another thread removes it). */
static int rm_visit(chm *cm, uint64_t key, chm_visit_fn *fn, void *arg)
{
    struct rm_map *m = as_rm(cm);
    uint64_t hash = chm__hash(cm, key);
    uintptr_t r;
    struct rm_entry *e = read_section_find(m, key, hash, &r);
    if (e == NULL) {
        chm__smr_read_unlock(); /* before mu (see "Blocking") */
        return rd_amended(r) ? visit_locked(m, key, hash, fn, arg) : CHM_NOTFOUND;
    }
    int rc = CHM_NOTFOUND;
    /* Acquire pairs with the release that installed the box: its value is visible. */
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
    if (is_box(p)) {
        chm__reentry_visit(cm, fn, key, box_value(p), arg); /* CHM__HOLD_READ pushed */
        rc = CHM_OK;
    }
    chm__smr_read_unlock();
    return rc;
}

/* What an index's allocation holds (the empty index is static: nothing). */
static size_t index_bytes(const struct rm_index *t)
{
    return t == EMPTY_INDEX ? 0 : sizeof *t + (t->mask + 1) * sizeof(struct rm_slot);
}

/* What @e holds beyond the pools' bytes (its entry and its heap box, if any, are in them): the
 * stored copy of a chm_keys_string key (other keyops' copies have no size we know). */
static size_t entry_bytes(const chm *cm, const struct rm_entry *e)
{
    if (cm->keys == &chm_keys_string)
        return strlen((const char *)(uintptr_t)e->key) + 1;
    return 0;
}

/* chm_stats_get (Go has none). entries: chm_size. buckets: the dirty map's slots while there is
 * one (that is where new keys go), else the read index's. bytes: the map struct, its counter
 * stripes, the read index and the dirty table (the static empty index counts 0), the entry and
 * box pools' slabs (live, free and retired entries and heap boxes alike), and for every entry
 * once (with dirty: dirty's entries and the expunged read entries; without: the read index's)
 * its chm_keys_string key copy; not counted: indexes that wait for a grace period (see
 * pending), the SMR domain, malloc's rounding. resizes: dirty tables grown by an insert
 * (dirty_reserve); neither dirtyLocked's copies nor promotions (an O(1) pointer swap) are
 * resizes. pending: chm__smr_pending. Walks both tables under mu (as one dirtyLocked copy would
 * hold it; skipped when an outer compute of this thread holds it), which keeps both indexes
 * and their entries in place; no box is read. */
static void rm_stats(chm *cm, chm_stats *st)
{
    struct rm_map *m = as_rm(cm);
    memset(st, 0, sizeof *st);
    st->entries = rm_size(cm);
    st->pending = chm__smr_pending(m->smr);
    size_t bytes = sizeof *m + (m->stripe_mask + 1) * m->stripe_stride +
                   chm__pool_bytes(m->entries) + chm__pool_bytes(m->boxes);
    bool locked = lock_unless_held(m);
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
    struct rm_index *t = rd_index(r), *d = m->dirty;
    bytes += index_bytes(t);
    for (size_t i = 0, n = t->mask + 1; i < n; i++) {
        struct rm_entry *e = slot_entry(&t->slots[i]);
        if (e == NULL)
            continue;
        /* Relaxed: only EXPUNGED is looked for, which only mu's holder (this thread) stores. */
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
        if (d == NULL || p == EXPUNGED) /* with dirty, the others are counted there */
            bytes += entry_bytes(cm, e);
    }
    if (d != NULL) {
        bytes += index_bytes(d);
        for (size_t i = 0, n = d->mask + 1; i < n; i++) {
            struct rm_entry *e = slot_entry(&d->slots[i]);
            if (e != NULL)
                bytes += entry_bytes(cm, e);
        }
    }
    st->buckets = (d != NULL ? d : t)->mask + 1;
    st->resizes = (size_t)m->dirty_growths;
    if (locked)
        mu_unlock(m);
    st->bytes = bytes;
}

/* ---- iteration (Range) ------------------------------------------------------------------ */

/* Where an iteration of an index of @mask + 1 slots starts. Go randomises Range's order (a Go map
 * iteration starts at a random bucket and offset); always starting at slot 0 makes Go's
 * BenchmarkAdversarialDelete pattern (delete the first key Range yields, store a new key,
 * repeat) degrade: the keys at the low slots are consumed and every later Range first walks
 * the growing empty prefix (tests/test_readmostly.c, adversarial_delete, counts it). Wrapping
 * from another slot visits every slot once all the same, so every guarantee of a walk of an
 * immutable index holds.
 * The start is the map's seeded mixer applied to the number of iterations begun on the map: a
 * different, unpredictable slot for every iteration of a map with a random seed, and yet the
 * same sequence for two maps given the same explicit seed and the same history, as the hash
 * order itself (tests/test_flood.c, seeds, relies on that reproducibility). Not a thread-local
 * generator: that would make the order of a map with an explicit seed depend on which thread
 * iterated what before. Relaxed: the counter orders nothing; one RMW per chm_iter_init, on a
 * line that no hot path reads. */
static size_t iter_start(struct rm_map *m, size_t mask)
{
    uint64_t n = atomic_fetch_add_explicit(&m->iterations, 1, memory_order_relaxed);
    /* the top log2(mask + 1) bits: 64 - log2(slots) is mask's leading zeros (mask >= 7) */
    return (size_t)(chm__mix64(n, m->base.seed) >> __builtin_clzll((unsigned long long)mask));
}

static int rm_iter_init(chm_iter *it, chm *cm)
{
    struct rm_map *m = as_rm(cm);
    struct rm_iter *ri = (struct rm_iter *)(void *)it->opaque;
    chm__smr_read_lock();
    uintptr_t r = read_load(m);
    if (rd_amended(r)) {
        chm__smr_read_unlock(); /* before mu (see "Blocking"); under mu, r is current */
        /* Range: promote dirty first, so the index holds every key present now. */
        bool locked = lock_unless_held(m);
        r = atomic_load_explicit(&m->read, memory_order_relaxed); /* under mu */
        if (rd_amended(r)) {
            promote_locked(m);
            r = atomic_load_explicit(&m->read, memory_order_relaxed);
        }
        /* The index is current (we hold mu), so refs >= 1 already. */
        index_ref(rd_index(r));
        if (locked)
            mu_unlock(m);
    } else {
        CHM_YIELD_POINT("rm.iter.before_ref"); /* the index may be promoted away and retired */
        /* The index is current or in its grace period, which our read section holds open, so
         * refs >= 1. */
        index_ref(rd_index(r));
        chm__smr_read_unlock();
    }
    ri->t = rd_index(r);
    ri->pos = 0;
    ri->n = ri->t->mask + 1;
    ri->start = iter_start(m, ri->t->mask);
    return CHM_OK;
}

size_t chm__readmostly_iter_scanned(const chm_iter *it)
{
    return ((const struct rm_iter *)(const void *)it->opaque)->pos;
}

static int rm_iter_next(chm_iter *it, uint64_t *key, uint64_t *value)
{
    struct rm_iter *ri = (struct rm_iter *)(void *)it->opaque;
    int rc = CHM_END;
    uint64_t k = 0, v = 0;
    chm__smr_read_lock(); /* for the boxes; the index and its entries are held by refs */
    while (ri->pos < ri->n) {
        const struct rm_slot *s = &ri->t->slots[(ri->start + ri->pos++) & (ri->n - 1)];
        if (slot_empty(s))
            continue;
        struct rm_entry *e = slot_entry(s);
        /* Acquire pairs with the release that installed p: p->value is visible. */
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_acquire);
        if (is_box(p)) {
            CHM_YIELD_POINT("rm.iter.box_loaded"); /* the box may be displaced and retired */
            k = e->key;
            v = box_value(p);
            rc = CHM_OK;
            break;
        }
    }
    chm__smr_read_unlock();
    if (rc == CHM_OK) {
        if (key != NULL)
            *key = k;
        if (value != NULL)
            *value = v;
    }
    return rc;
}

static void rm_iter_fini(chm_iter *it)
{
    struct rm_iter *ri = (struct rm_iter *)(void *)it->opaque;
    index_unref(as_rm(ri->base.m), ri->t);
}

/* ---- life cycle ------------------------------------------------------------------------- */

/* chm_free: no reader is left and every callback has run (drained). */
static void entry_final(struct rm_map *m, struct rm_entry *e)
{
    struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
    if (is_box(p)) {
        chm__value_free(&m->base, p->value);
        if (p != &e->first)
            chm__pool_put(m->boxes, p);
    }
    chm__key_release(&m->base, e->key);
    chm__pool_put(m->entries, e); /* its inline box, if displaced, was reclaimed by the drain */
}

static void rm_destroy(chm *cm)
{
    struct rm_map *m = as_rm(cm);
    chm__smr_drain(m->smr); /* every retired box and index freed, callbacks done */
    struct rm_index *t = rd_index(atomic_load_explicit(&m->read, memory_order_relaxed));
    struct rm_index *d = m->dirty;
    size_t n = t->mask + 1;
    /* Every entry once: dirty's, plus the read entries dirty lacks (the expunged ones); without
     * dirty, every read entry. */
    for (size_t i = 0; i < n; i++) {
        struct rm_entry *e = slot_entry(&t->slots[i]);
        if (e != NULL &&
            (d == NULL || atomic_load_explicit(&e->p, memory_order_relaxed) == EXPUNGED))
            entry_final(m, e);
    }
    if (d != NULL) {
        for (size_t i = 0, nd = d->mask + 1; i < nd; i++)
            if (!slot_empty(&d->slots[i]))
                entry_final(m, slot_entry(&d->slots[i]));
        chm__free(d);
    }
    if (t != EMPTY_INDEX)
        chm__free(t);
    CHM__LOCK_CALL(pthread_mutex_destroy(&m->mu));
    chm__smr_domain_free(m->smr);
    chm__pool_free(m->entries); /* after the drain: free_fns put entries and boxes back */
    chm__pool_free(m->boxes);
    chm__free(m->stripes);
    chm__free(m);
}

/* ---- validation ------------------------------------------------------------------------- */

/* The invariants rm_validate checks, one line each: the name it returns, the number (stable:
 * messages print it) and what it means. rm_invariant's switch is generated from this table, so a
 * number used twice does not compile (duplicate case). RM_BAD_EXP_LIST is either an expunged
 * read entry missing from the expunged list (it would leak at promotion) or a listed one the
 * read index does not hold. */
#define RM_INVARIANTS(X)                                                                           \
    X(RM_BAD_LAYOUT, -1, "an index misaligned, mask not 2^k - 1 (k >= 3), or end not empty")       \
    X(RM_BAD_INDEX, -2, "a slot unreachable from its home, a wrong hash or count")                 \
    X(RM_BAD_RESERVED, -3, "a RESERVED or held entry outside a compute")                           \
    X(RM_BAD_EXPUNGED, -4, "an expunged entry while dirty is nil")                                 \
    X(RM_BAD_AMENDED, -5, "amended without dirty")                                                 \
    X(RM_BAD_DIRTY_MISS, -6, "a non-expunged read entry missing from dirty")                       \
    X(RM_BAD_DIRTY_EXP, -7, "an expunged entry in dirty, or dirty and read disagree")              \
    X(RM_BAD_NOT_AMENDED, -8, "dirty holds a key read lacks, but not amended")                     \
    X(RM_BAD_SIZE, -9, "the live counter differs from the live entries")                           \
    X(RM_BAD_REFS, -10, "the current index has a successor, dead entries, or no ref")              \
    X(RM_BAD_LOAD, -11, "an index above the maximum load")                                         \
    X(RM_BAD_MISSES, -12, "misses counted without dirty")                                          \
    X(RM_BAD_PROMOTE, -13, "amended and misses >= dirty's size (promotion missed)")                \
    X(RM_BAD_EXP_LIST, -14, "expunged entries and the expunged list disagree")

CHM__INVARIANT_ENUM(rm_invariant, RM_INVARIANTS);

/* An index's layout: line-aligned (read's bit 0 is free), mask = slots - 1 for a power of two
 * of at least 2^RM_MIN_SHIFT slots, end empty (probes wrap there). */
static bool layout_ok(const struct rm_index *t)
{
    return ((uintptr_t)t & (RM_INDEX_ALIGN - 1)) == 0 &&
           t->mask >= ((size_t)1 << RM_MIN_SHIFT) - 1 && (t->mask & (t->mask + 1)) == 0 &&
           slot_empty(&t->end);
}

static int index_check(chm *cm, const struct rm_index *t)
{
    size_t mask = t->mask, used = 0;
    /* at most 3/4 (dirty_locked's guarantee); the maximum load holds after any insert */
    if (t->count > mask - mask / 4)
        return RM_BAD_LOAD;
    for (size_t i = 0; i <= mask; i++) {
        const struct rm_slot *s = &t->slots[i];
        if (slot_empty(s))
            continue;
        used++;
        struct rm_entry *e = slot_entry(s);
        if (!slot_tag_matches(s, slot_tag(e->hash)) || e->hash != chm__hash(cm, e->key))
            return RM_BAD_INDEX;
        /* the first slot with this key, probing from its home, is this one */
        if (idx_find(cm, t, e->key, e->hash) != e)
            return RM_BAD_INDEX;
    }
    return used == t->count ? 0 : RM_BAD_INDEX;
}

static int rm_validate(chm *cm)
{
    struct rm_map *m = as_rm(cm);
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed);
    struct rm_index *t = rd_index(r), *d = m->dirty;
    if (!layout_ok(t) || (d != NULL && !layout_ok(d)))
        return RM_BAD_LAYOUT;
    int rc = index_check(cm, t);
    if (rc != 0)
        return rc;
    if (d != NULL && (rc = index_check(cm, d)) != 0)
        return rc;
    if (t->succ != NULL || t->dead != NULL ||
        atomic_load_explicit(&t->refs, memory_order_relaxed) < 1)
        return RM_BAD_REFS;
    if (d == NULL && rd_amended(r))
        return RM_BAD_AMENDED;
    if (d == NULL && m->misses != 0)
        return RM_BAD_MISSES;
    if (d != NULL && rd_amended(r) && m->misses >= d->count)
        return RM_BAD_PROMOTE;
    size_t listed = 0, expunged = 0;
    for (struct rm_entry *e = m->expunged; e != NULL; e = e->next_dead) {
        if (atomic_load_explicit(&e->p, memory_order_relaxed) != EXPUNGED)
            continue; /* unexpunged since: back in dirty */
        if (read_find(cm, r, e->key, e->hash) != e)
            return RM_BAD_EXP_LIST;
        listed++;
    }
    long live = 0;
    for (size_t i = 0, n = t->mask + 1; i < n; i++) {
        struct rm_entry *e = slot_entry(&t->slots[i]);
        if (e == NULL)
            continue;
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
        if (p == RESERVED || is_held(p))
            return RM_BAD_RESERVED;
        if (p == EXPUNGED && d == NULL)
            return RM_BAD_EXPUNGED;
        expunged += p == EXPUNGED;
        live += is_box(p);
        if (d != NULL) {
            struct rm_entry *x = idx_find(cm, d, e->key, e->hash);
            if (p == EXPUNGED ? x != NULL : x != e)
                return p == EXPUNGED ? RM_BAD_DIRTY_EXP : RM_BAD_DIRTY_MISS;
        }
    }
    if (d != NULL) {
        for (size_t i = 0, n = d->mask + 1; i < n; i++) {
            struct rm_entry *e = slot_entry(&d->slots[i]);
            if (e == NULL)
                continue;
            struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
            if (p == RESERVED || is_held(p))
                return RM_BAD_RESERVED;
            if (p == EXPUNGED)
                return RM_BAD_DIRTY_EXP;
            if (read_find(cm, r, e->key, e->hash) == NULL) {
                if (!rd_amended(r))
                    return RM_BAD_NOT_AMENDED;
                live += is_box(p);
            }
        }
    }
    if (listed != expunged)
        return RM_BAD_EXP_LIST;
    return live_sum(m) == live ? 0 : RM_BAD_SIZE;
}

static CHM__INVARIANT_NAMER(rm_invariant, RM_INVARIANTS)

int chm__readmostly_stats(chm *cm, struct chm__rm_stats *out)
{
    if (cm == NULL || cm->backend != &chm_readmostly || out == NULL)
        return CHM_EINVAL;
    struct rm_map *m = as_rm(cm);
    memset(out, 0, sizeof *out);
    mu_lock(m);
    uintptr_t r = atomic_load_explicit(&m->read, memory_order_relaxed);
    struct rm_index *t = rd_index(r);
    out->amended = rd_amended(r);
    out->has_dirty = m->dirty != NULL;
    out->read_slots = t->mask + 1;
    for (size_t i = 0; i < out->read_slots; i++) {
        struct rm_entry *e = slot_entry(&t->slots[i]);
        if (e == NULL)
            continue;
        out->read_entries++;
        struct rm_box *p = atomic_load_explicit(&e->p, memory_order_relaxed);
        out->read_live += is_box(p);
        out->read_deleted += p == NULL;
        out->read_expunged += p == EXPUNGED;
    }
    out->dirty_entries = m->dirty != NULL ? m->dirty->count : 0;
    out->misses = m->misses;
    out->promotions = m->promotions;
    out->dirty_builds = m->dirty_builds;
    mu_unlock(m);
    return CHM_OK;
}

static const struct chm_ops rm_ops = {
    .get = rm_get,
    .get_u64 = rm_get_u64,
    .put = rm_put,
    .put_if_absent = rm_put_if_absent,
    .remove = rm_remove,
    .replace = rm_replace,
    .compute_if_absent = rm_compute_if_absent,
    .size = rm_size,
    .compute = rm_compute,
    .remove_if = rm_remove_if,
    .clear = rm_clear,
    .visit = rm_visit,
    .stats = rm_stats,
    .iter_init = rm_iter_init,
    .iter_next = rm_iter_next,
    .iter_fini = rm_iter_fini,
    .destroy = rm_destroy,
    .validate = rm_validate,
    .invariant = rm_invariant,
};

static chm *rm_create(const chm_backend *b, const chm_options *opt)
{
    struct rm_map *m = chm__aligned_alloc(CHM_CACHELINE, sizeof *m);
    if (m == NULL)
        goto nomem;
    memset(m, 0, sizeof *m);
    chm__header_init(&m->base, &rm_ops, b, opt);
    /* One retire queue for the map, not one per writer thread: readers retire too (a
     * promotion in chm_get retires the old read index, which carries its dead entries, O(n)
     * memory), and a thread that only reads never ends a batch of its own queue, so its
     * indexes would wait there; in a shared queue every writer's batch takes them. */
    m->smr = chm__smr_domain_new(m, 1);
    if (m->smr == NULL)
        goto nomem_map;
    unsigned nstripes = chm__stripe_count(opt->concurrency, RM_MAX_STRIPES);
    m->stripe_mask = nstripes - 1;
    m->stripe_stride = chm__cell_stride(opt->packed);
    m->stripes = chm__aligned_alloc(CHM_CACHELINE, nstripes * m->stripe_stride);
    if (m->stripes == NULL)
        goto nomem_domain;
    for (unsigned i = 0; i < nstripes; i++)
        atomic_init(chm__cell_at(m->stripes, m->stripe_stride, i), 0);
    m->entries = chm__pool_new(sizeof(struct rm_entry), nstripes);
    if (m->entries == NULL)
        goto nomem_stripes;
    m->boxes = chm__pool_new(sizeof(struct rm_box), nstripes);
    if (m->boxes == NULL)
        goto nomem_stripes;
    chm__smr_domain_set_pool(m->smr, m->entries); /* reclamation batches its puts */
    struct rm_index *t = index_new(RM_MIN_SHIFT);
    if (t == NULL)
        goto nomem_stripes;
    if (opt->capacity > 0) {
        /* The first dirty table takes the hint (Go has none). Not amended: it adds no key. */
        m->dirty = index_new(opt->capacity > SIZE_MAX / 4 ? 0 : shift_for(opt->capacity));
        if (m->dirty == NULL) {
            chm__free(t);
            goto nomem_stripes;
        }
    }
    int err = pthread_mutex_init(&m->mu, NULL);
    if (err != 0) {
        chm__free(m->dirty);
        chm__free(t);
        chm__pool_free(m->entries);
        chm__pool_free(m->boxes);
        chm__free(m->stripes);
        chm__smr_domain_free(m->smr);
        chm__free(m);
        errno = err;
        return NULL;
    }
    atomic_init(&m->read, rd_make(t, false));
    m->hash_k2 = CHM__HASH_K2;
    atomic_init(&m->iterations, 0);
    return &m->base;
nomem_stripes:
    chm__pool_free(m->entries); /* NULL-safe: either may not exist yet */
    chm__pool_free(m->boxes);
    chm__free(m->stripes);
nomem_domain:
    chm__smr_domain_free(m->smr);
nomem_map:
    chm__free(m);
nomem:
    errno = ENOMEM;
    return NULL;
}

const chm_backend chm_readmostly = {
    .name = "readmostly",
    .caps = CHM_CAP_THREAD_SAFE | CHM_CAP_STORE_FREE_GET | CHM_CAP_PADDING_SWITCH |
            CHM_CAP_DEFERRED_FREE,
    .create = rm_create,
};
