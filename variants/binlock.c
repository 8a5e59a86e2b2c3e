/*
 * binlock.c - chm_binlock: Java 8's ConcurrentHashMap in C.
 *
 * HOW IT WORKS
 *
 * One table of bins (a power of two), each bin an atomic pointer to its first node. A key's
 * 64-bit hash is spread (folded, top bit cleared) and its low bits pick the bin. A bin is empty,
 * a list of nodes (immutable hash and key, atomic value and next), or a special node: a
 * ForwardingNode (the bin moved to the next table), a TreeBin (a red-black tree of colliding
 * keys, binlock_tree.c) or a ReservationNode (compute_if_absent is filling it). Special nodes are
 * told apart by hash values with the top bit set, as Java's negative hashes, so every key and
 * value word stays legal.
 *
 *   chm_get (get)              read section; acquire-load table, bin head, each next, the value.
 *                              A forwarding node sends it to the next table (as many as there
 *                              are); a TreeBin is searched without blocking (TreeBin.find); a
 *                              reservation means absent. No lock, no store.
 *   chm_put, put_if_absent     (putVal) an empty bin is filled by one CAS, no lock. Otherwise
 *                              lock the bin's first node, re-check it is still the head, then
 *                              update in place, insert, or delegate to the TreeBin
 *                              (putTreeVal). put_if_absent first checks the head lock-free
 *                              (Java 9+). A bin that held >= 8 nodes is treeified afterwards.
 *   chm_remove, chm_replace    (replaceNode) lock the head, unlink or swap the value; a TreeBin
 *                              that becomes too small turns back into a list (untreeify).
 *   compute_if_absent          (computeIfAbsent) an empty bin gets a locked ReservationNode by
 *                              CAS while the function runs (readers see absent, writers wait on
 *                              its lock and retry); otherwise the function runs under the bin
 *                              lock. It runs at most once among racing callers.
 *   counting (addCount)        a base counter and striped counter cells, each on its own cache
 *                              line (@Contended), used once CASes on the base start to fail;
 *                              chm_size (sumCount) adds them up, exact when quiescent.
 *   resize (transfer)          a writer whose addCount finds size >= sizeCtl starts a resize:
 *                              allocates the doubled nextTable, then threads claim strides of
 *                              bins (>= 16) from transferIndex, high to low. Each bin is split
 *                              into a low and a high list, reusing its tail of nodes that all go
 *                              the same way (lastRun) and cloning the nodes before it; the old
 *                              bin then gets the forwarding node. Every writer that meets a
 *                              forwarding node joins (helpTransfer); the last one to finish
 *                              re-sweeps the old table and commits. sizeCtl counts the workers
 *                              under the corrected resize stamp (backends.md 4.4).
 *   tree bins (treeifyBin)     a list bin that held 8 nodes becomes a TreeBin (a table under 64
 *                              bins grows instead, tryPresize); removals that leave the tree
 *                              too small, and transfer halves of <= 6 nodes, turn back into
 *                              lists (untreeify). See binlock_tree.c.
 *   iteration (Traverser)      bins in order; at a forwarding node it visits the two bins the
 *                              bin split into in the next table (recursively), so a key present
 *                              throughout is returned exactly once even while tables change.
 *
 * Bin locks. Java synchronizes on the bin's first node; here every node carries a 4-byte futex
 * mutex (binlock.h) used while it heads a bin. A waiting writer may find, once it has the lock,
 * that the node was unlinked meanwhile (it re-checks the head and retries), so the lock must
 * still exist: writers enter the read section before loading the bin head and leave it only
 * after unlocking, and unlinked nodes are retired, never freed directly (backends.md 6.1, "Key C
 * subtlety"). Why a futex mutex: pthread_mutex_t is 40 bytes per node; Concurrency Kit's
 * spinlocks (ck_spinlock_fas, 4 bytes) never sleep, and on two cores a writer that spins while
 * the holder is preempted -- or runs a compute function -- burns its whole time slice. The
 * futex mutex takes one CAS uncontended, spins 100 pauses, then sleeps; its atomics are C11, so
 * ThreadSanitizer sees its acquire/release edges without annotations. A waiter sleeps at most
 * about 1 ms at a time: if the holder is still inside (it runs a compute function), the waiter
 * leaves its read section for a moment and starts over (smr_breathe). Without that, a compute
 * function that waits for a grace period (chm_free of another map) would deadlock against a
 * writer waiting for its bin, and a long one would stall all reclamation.
 *
 * Memory ordering. A node is fully written before a release store (or release CAS) makes it
 * reachable (a bin head, a next, a tree link), and every pointer a reader follows is loaded with
 * acquire; values are stored with release and loaded with acquire. Writers re-read links under
 * the bin lock with relaxed loads: the lock's acquire already orders them after the previous
 * holder's writes. The table, nextTable, sizeCtl and transferIndex handshake of a resize is
 * seq_cst, as Java's volatiles (backends.md 6.1): its arguments rely on a single order of those
 * four. Counter cells need atomicity only (relaxed): exactness when quiescent comes from the
 * happens-before that quiescence means.
 *
 * Reclamation (src/smr.h). Retired, not freed: removed nodes (with their key copy and value),
 * originals of nodes cloned by a transfer or treeify (their key and value moved to the copy),
 * old TreeBins, reservation nodes, old tables (after the commit), and replaced values when the
 * map has a value_free. Counter cells live until chm_free.
 *
 * Deliberate differences from Java 8 (OpenJDK 11 source, backends.md section 4)
 *   - New nodes go to the *head* of a list (Java appends at the tail). The bin lock then moves
 *     to the new node, which is safe because publishing the new head is the last write of every
 *     critical section. In exchange a traversal only follows links to nodes that were in the
 *     bin when it read the head, so no key is returned twice even if it is removed and put
 *     again during the iteration (the contract's guarantee; Java's Traverser can return such a
 *     key twice).
 *   - Out of memory is a status, and a transfer never fails midway. A writer allocates its node
 *     before the CAS or link that publishes it; a value record (value_free) before the store
 *     that replaces the value. A resize allocates nextTable before any bin moves (on failure
 *     sizeCtl goes back to the threshold and the insert that triggered it still succeeds: Java
 *     keeps inserting into an over-threshold table too). Splitting a bin needs clones: they are
 *     counted and allocated under the bin lock before anything changes; if that fails the
 *     worker leaves the bin in the old table and moves on, and the finisher's re-sweep retries
 *     it. If the re-sweep fails too, the finisher *pauses* the resize instead of committing:
 *     it reopens transferIndex at that bin and sets the worker count to 0 (a sizeCtl state Java
 *     does not have: stamp + 0); the map stays fully usable across the two tables, and the next
 *     writer that meets a forwarding node or passes the threshold check resumes it (joining a
 *     paused resize sets the count to 2, "one worker", as a start does). Treeify allocates all
 *     TreeNodes and the TreeBin first and simply skips treeifying if it cannot; untreeify
 *     allocates nothing: the TreeNodes already form a plain list through next and become the
 *     bin's list as they are.
 *   - sizeCtl and transferIndex are 64-bit: the resize stamp is numberOfLeadingZeros64(n) |
 *     2^31 in the upper 32 bits, the worker count in the lower 32 (RESIZE_STAMP_BITS = 32); the
 *     stamp is compared explicitly before joining, and shifted before adding (the correction
 *     later JDKs made, backends.md 4.4). Maximum table: 2^40 bins.
 *   - TreeBin readers store nothing: lockState is a sequence count instead of a reader count,
 *     and a writer never waits for readers (binlock_tree.c). Order inside a tree: hash, then
 *     keyops.compare (integer keys numerically), then the stored key words as a tie-break.
 *   - The Traverser keeps no TableStack: every forwarding node of a table points at the same
 *     next table, twice its size, and a forwarded bin stays forwarded while the old table can
 *     be read, so the table at depth d is found again from the iteration's first table and the
 *     current index; iteration allocates nothing and fits in chm_iter.
 *   - Counter cells: one array of the final size (the number of CPUs rounded up to a power of
 *     two, at least 2) is allocated at the first contention; "doubling the array" is doubling
 *     the count of cells in use, so no array is ever copied or retired. If that allocation
 *     fails the base counter is used (Java's final fallback).
 *   - The hash: chm's seeded 64-bit mixer, spread as (h ^ h >> 32) & 2^63-1.
 *   - chm_compute_if_absent: a call the function makes to write to the same map (any key;
 *     itself, or from a compute in another map: src/reentry.h keeps the thread's stack of
 *     them) returns CHM_EDEADLK, detected before any lock is touched (Java throws
 *     IllegalStateException("Recursive update") for the same bin, and may livelock or deadlock
 *     for others during a resize). chm_get, chm_size and iteration from inside work. The
 *     function runs outside the read section (its bin is held by the lock, which keeps the
 *     head and the table alive), so it may do anything else, including waiting for
 *     reclamation. As Java 9+, put_if_absent and compute_if_absent return lock-free when the
 *     bin's head holds the key.
 *   - Bin-lock waits are bounded (see "Bin locks"); Java's monitors wait for as long as it
 *     takes, which a garbage collector does not mind.
 *   - capacity: Java's 1 + capacity / 0.75 rounded up to a power of two; the table is created
 *     at chm_new when a capacity is given (so an impossible one fails there), lazily by
 *     initTable otherwise. `concurrency` is only a lower bound for a given capacity (Java's
 *     three-argument constructor).
 */
#include "binlock.h"
#include "reentry.h"
#include "torture.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BL_DEFAULT_CAPACITY 16
#define BL_MAX_CAPACITY ((size_t)1 << 40)
#define BL_MIN_TRANSFER_STRIDE 16
#define BL_RESIZE_STAMP_SHIFT 32
#define BL_LOW_MASK 0xffffffffLL /* sizeCtl's worker-count half during a resize */
#define BL_MAX_RESIZERS 0xffffffffLL
#define BL_LOCK_SPINS 100

_Static_assert(sizeof(size_t) == 8, "binlock assumes a 64-bit size_t");
_Static_assert(sizeof(struct bl_node) <= 72, "a node fits an 80-byte glibc chunk");

/* ---- the map ----------------------------------------------------------------------------------
 * Layout: the fields every operation reads (table, sizeCtl) share a line that only resizes
 * write; transferIndex, the base counter and the cell array pointer each have their own line,
 * so a writer's CAS on one never invalidates the others (Java 8 packs them all into the map
 * object and pads only the cells, @Contended). */

struct bl_map {
    chm base;
    chm_smr_domain *domain; /* read-only after create */
    unsigned ncpu;
    unsigned max_cells; /* counter cells at most: ncpu rounded up to a power of two, >= 2 */
    size_t cell_stride; /* 64 (own cache line) or 8 (chm_options.packed) */
    /* Read by every operation, written by resizes only. */
    alignas(CHM_CACHELINE) _Atomic(struct bl_table *) table;
    _Atomic(struct bl_table *) next_table;
    _Atomic int64_t size_ctl;
    /* Claimed by transfer workers (CAS). */
    alignas(CHM_CACHELINE) _Atomic int64_t transfer_index;
    /* The base counter, CASed by every uncontended writer: its own line. */
    alignas(CHM_CACHELINE) _Atomic int64_t base_count;
    /* Counter cells (see fullAddCount): max_cells int64 counters in one 64-byte-aligned array,
     * cell_stride bytes apart: 64, so each has its own line (Java: @Contended), or 8 with
     * chm_options.packed, eight to a line, for the false-sharing benchmark. */
    alignas(CHM_CACHELINE) _Atomic(unsigned char *) cells;
    _Atomic unsigned ncells;
    _Atomic int cells_busy;
    /* Statistics (rare events only). */
    alignas(CHM_CACHELINE) _Atomic uint64_t st_treeify;
    _Atomic uint64_t st_untreeify, st_resize, st_join, st_pause;
};
_Static_assert(offsetof(struct bl_map, table) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, transfer_index) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, base_count) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, cells) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, size_ctl) < offsetof(struct bl_map, transfer_index),
               "hot map fields on their own cache lines");

/* ThreadLocalRandom.getProbe(): this thread's counter-cell hash; 0 = not initialised. */
static _Thread_local uint32_t bl_probe __attribute__((tls_model("initial-exec")));

static inline struct bl_map *as_bl(chm *m)
{
    return (struct bl_map *)m;
}

static inline uint64_t spread(uint64_t h)
{
    return (h ^ (h >> 32)) & BL_HASH_BITS;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* A bin lock wait ran out of patience (its holder runs a compute function): leave the read
 * section for a moment so grace periods can complete -- the holder may itself be waiting for
 * one -- and re-enter. Every pointer loaded before is stale afterwards, except what the caller
 * owns or what a resize it is registered in keeps alive (its two tables). */
static inline void smr_breathe(void)
{
    chm__smr_read_unlock();
    chm__smr_read_lock();
}

static inline _Atomic(struct bl_node *) *bin_at(struct bl_table *t, size_t i)
{
    return &t->bins[i];
}

/* tabAt: acquire pairs with the release stores and CASes that publish a bin head. */
static inline struct bl_node *tab_at(struct bl_table *t, size_t i)
{
    return atomic_load_explicit(&t->bins[i], memory_order_acquire);
}

/* setTabAt: release, so a reader that loads the new head sees it (and what it links to) whole.
 * Always called under the bin lock. */
static inline void set_tab_at(struct bl_table *t, size_t i, struct bl_node *v)
{
    atomic_store_explicit(&t->bins[i], v, memory_order_release);
}

/* ---- the bin lock (binlock.h) ----------------------------------------------------------------- */

static long bl_futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, timeout, NULL, 0);
}

bool chm__bl_lock_slow(bl_lock *l)
{
    for (int i = 0; i < BL_LOCK_SPINS; i++) {
        cpu_relax();
        uint32_t c = atomic_load_explicit(&l->word, memory_order_relaxed);
        if (c == 0) {
            /* Acquire: as bl_lock_acquire. */
            if (atomic_compare_exchange_weak_explicit(&l->word, &c, 1, memory_order_acquire,
                                                      memory_order_relaxed))
                return true;
        } else if (c == 2) {
            break; /* others already sleep: join them rather than spin */
        }
    }
    /* Announce a sleeper (2) and sleep until the exchange finds the lock free. Acquire: pairs
     * with the release exchange of bl_lock_release. A sleep that times out ends the wait: the
     * caller steps out of its read section and starts over (binlock.h). */
    static const struct timespec patience = {0, BL_LOCK_PATIENCE_NS};
    while (atomic_exchange_explicit(&l->word, 2, memory_order_acquire) != 0) {
        if (bl_futex(&l->word, FUTEX_WAIT_PRIVATE, 2, &patience) != 0 && errno == ETIMEDOUT)
            return atomic_exchange_explicit(&l->word, 2, memory_order_acquire) == 0;
    }
    return true;
}

void chm__bl_unlock_wake(bl_lock *l)
{
    bl_futex(&l->word, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* ---- reclamation callbacks (run after a grace period) --------------------------------------- */

/* A removed node: it owned its key copy and value. */
static void free_node_full(chm_smr_node *n, void *owner)
{
    struct bl_node *e = (struct bl_node *)n;
    struct bl_map *m = owner;
    chm__key_release(&m->base, e->key);
    chm__value_free(&m->base, atomic_load_explicit(&e->value, memory_order_relaxed));
    chm__free(e);
}

static inline void retire(struct bl_map *m, void *obj, chm_smr_free_fn *fn)
{
    chm__smr_retire(m->domain, (chm_smr_node *)obj, fn);
}

/* A node whose key and value moved to a copy, an old TreeBin, a reservation, a table: the
 * memory is all they own. */
#define free_shell chm__smr_free_plain

/* ---- nodes and tables --------------------------------------------------------------------- */

static void node_init(struct bl_node *e, uint64_t hash, uint64_t key, uint64_t value)
{
    e->hash = hash;
    e->key = key;
    atomic_store_explicit(&e->value, value, memory_order_relaxed);
    atomic_store_explicit(&e->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&e->lock.word, 0, memory_order_relaxed);
}

/* A node (plain or, with @tree, a TreeNode) for a key being inserted: allocated and the key
 * copy made. NULL when out of memory. Published later by a release store. */
static struct bl_node *new_node(struct bl_map *m, uint64_t hash, uint64_t key, uint64_t value,
                                bool tree)
{
    struct bl_node *e = chm__malloc(tree ? sizeof(struct bl_tnode) : sizeof(struct bl_node));
    if (e == NULL)
        return NULL;
    uint64_t stored;
    if (!chm__key_retain(&m->base, key, &stored)) {
        chm__free(e);
        return NULL;
    }
    node_init(e, hash, stored, value);
    return e;
}

/* Undo new_node for a node that was never published. */
static void discard_node(struct bl_map *m, struct bl_node *e)
{
    if (e != NULL) {
        chm__key_release(&m->base, e->key);
        chm__free(e);
    }
}

static struct bl_table *new_table(size_t n)
{
    if (n > BL_MAX_CAPACITY)
        return NULL;
    struct bl_table *t = chm__calloc(1, sizeof *t + n * sizeof t->bins[0]);
    if (t == NULL)
        return NULL;
    t->n = n;
    node_init(&t->fwd, BL_MOVED, 0, 0);
    return t;
}

static size_t table_size_for(size_t c)
{
    size_t n = 1;
    while (n < c)
        n <<= 1;
    return n;
}

/* resizeStamp(n) << RESIZE_STAMP_SHIFT: negative, unique per table size. */
static inline int64_t resize_stamp(size_t n)
{
    uint64_t rs = (uint64_t)__builtin_clzll(n) | (1ULL << 31);
    return (int64_t)(rs << BL_RESIZE_STAMP_SHIFT);
}

/* ---- initTable -------------------------------------------------------------------------------- */

static struct bl_table *init_table(struct bl_map *m)
{
    struct bl_table *t;
    /* Acquire: pairs with the release store of table below (and the commit's store). */
    while ((t = atomic_load_explicit(&m->table, memory_order_acquire)) == NULL) {
        int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst);
        if (sc < 0) {
            sched_yield(); /* lost the initialisation race: Thread.yield() */
            continue;
        }
        /* seq_cst, as every sizeCtl transition: -1 excludes other initialisers. */
        CHM_YIELD_POINT("bl.init.before_cas");
        if (atomic_compare_exchange_strong_explicit(&m->size_ctl, &sc, -1, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            t = atomic_load_explicit(&m->table, memory_order_acquire);
            if (t == NULL) {
                size_t n = sc > 0 ? (size_t)sc : BL_DEFAULT_CAPACITY;
                if ((t = new_table(n)) == NULL) {
                    /* seq_cst: back from -1, so a waiting initialiser may try in turn. */
                    atomic_store_explicit(&m->size_ctl, sc, memory_order_seq_cst);
                    return NULL;
                }
                CHM_YIELD_POINT("bl.init.before_publish"); /* others spin on sizeCtl -1 */
                /* Release (seq_cst): pairs with the acquire loads of table; the zeroed bins and
                 * the forwarding node are visible to whoever sees the table. */
                atomic_store_explicit(&m->table, t, memory_order_seq_cst);
                sc = (int64_t)(n - (n >> 2));
            }
            atomic_store_explicit(&m->size_ctl, sc, memory_order_seq_cst);
            return t;
        }
    }
    return t;
}

/* ---- counting (addCount, fullAddCount, sumCount) --------------------------------------------- */

static inline _Atomic int64_t *cell_at(struct bl_map *m, unsigned char *cells, unsigned i)
{
    return (_Atomic int64_t *)(void *)(cells + (size_t)i * m->cell_stride);
}

/* Relaxed everywhere in the counters: a count needs atomicity only. chm_size is exact once the
 * caller happens after every write (quiescent), and the resize check is a heuristic. */
static inline bool cas_add(_Atomic int64_t *c, int64_t x)
{
    int64_t v = atomic_load_explicit(c, memory_order_relaxed);
    return atomic_compare_exchange_strong_explicit(c, &v, v + x, memory_order_relaxed,
                                                   memory_order_relaxed);
}

static int64_t sum_count(struct bl_map *m)
{
    int64_t sum = atomic_load_explicit(&m->base_count, memory_order_relaxed);
    /* Acquire: pairs with the release store of cells in full_add_count (the zeroed array). */
    unsigned char *cells = atomic_load_explicit(&m->cells, memory_order_acquire);
    if (cells != NULL) {
        unsigned n = atomic_load_explicit(&m->ncells, memory_order_relaxed);
        for (unsigned i = 0; i < n; i++)
            sum += atomic_load_explicit(cell_at(m, cells, i), memory_order_relaxed);
    }
    return sum;
}

static uint32_t probe_init(void)
{
    static atomic_uint_fast64_t seeder;
    uint64_t x = atomic_fetch_add_explicit(&seeder, 0x9e3779b97f4a7c15ULL, memory_order_relaxed);
    uint32_t h = (uint32_t)(chm__mix64(x, (uint64_t)(uintptr_t)&bl_probe) >> 32);
    return h != 0 ? h : 1;
}

static inline uint32_t advance_probe(uint32_t h) /* ThreadLocalRandom.advanceProbe: xorshift */
{
    h ^= h << 13;
    h ^= h >> 17;
    h ^= h << 5;
    return h;
}

/* fullAddCount: the LongAdder loop, on a cell array allocated once at its final size. */
static void full_add_count(struct bl_map *m, int64_t x, bool was_uncontended)
{
    uint32_t h = bl_probe;
    if (h == 0) {
        h = probe_init();
        was_uncontended = true;
    }
    bool collide = false;
    for (;;) {
        /* Acquire: pairs with the release store of cells below. */
        unsigned char *cells = atomic_load_explicit(&m->cells, memory_order_acquire);
        unsigned n = cells != NULL ? atomic_load_explicit(&m->ncells, memory_order_relaxed) : 0;
        if (n > 0) {
            _Atomic int64_t *a = cell_at(m, cells, h & (n - 1));
            if (!was_uncontended) {
                was_uncontended = true; /* CAS already known to fail: rehash first */
            } else if (cas_add(a, x)) {
                break;
            } else if (n >= m->max_cells) {
                collide = false; /* at max size */
            } else if (!collide) {
                collide = true;
            } else {
                /* Expand: use twice as many cells (Java copies the array under cellsBusy). */
                atomic_compare_exchange_strong_explicit(&m->ncells, &n, n << 1,
                                                        memory_order_relaxed, memory_order_relaxed);
                collide = false;
                continue;
            }
            h = advance_probe(h);
        } else if (cells == NULL &&
                   atomic_load_explicit(&m->cells_busy, memory_order_relaxed) == 0 &&
                   atomic_exchange_explicit(&m->cells_busy, 1, memory_order_acquire) == 0) {
            /* cellsBusy held (acquire/release pair with its other holders): initialise. */
            bool init = false;
            if (atomic_load_explicit(&m->cells, memory_order_relaxed) == NULL) {
                size_t bytes = (size_t)m->max_cells * m->cell_stride;
                unsigned char *slab = chm__aligned_alloc(CHM_CACHELINE, bytes);
                if (slab != NULL) {
                    memset(slab, 0, bytes);
                    atomic_store_explicit(cell_at(m, slab, h & 1), x, memory_order_relaxed);
                    atomic_store_explicit(&m->ncells, 2, memory_order_relaxed);
                    /* Release: pairs with the acquire loads of cells; the zeroed cells, x
                     * and ncells are visible to whoever sees the array. */
                    atomic_store_explicit(&m->cells, slab, memory_order_release);
                    init = true;
                }
            }
            /* Release: pairs with the acquire exchange of the next holder. */
            atomic_store_explicit(&m->cells_busy, 0, memory_order_release);
            if (init)
                break;
            if (cas_add(&m->base_count, x)) /* no memory for cells: the base it is */
                break;
        } else if (cas_add(&m->base_count, x)) {
            break; /* fall back on using base */
        }
    }
    bl_probe = h;
}

static void resize_check(struct bl_map *m, int64_t s);

/* addCount(x, check): count, then (check >= 0) see whether the table must grow. Inside a read
 * section (a resize walks the bins). */
static void add_count(struct bl_map *m, int64_t x, long check)
{
    unsigned char *cells = atomic_load_explicit(&m->cells, memory_order_acquire); /* as above */
    int64_t s = 0;
    int64_t b = atomic_load_explicit(&m->base_count, memory_order_relaxed);
    CHM_YIELD_POINT("bl.count.before_cas"); /* base read, CAS pending: contention, cells */
    if (cells != NULL ||
        !atomic_compare_exchange_strong_explicit(&m->base_count, &b, b + x, memory_order_relaxed,
                                                 memory_order_relaxed)) {
        bool uncontended = true;
        unsigned n;
        uint32_t h = bl_probe;
        if (cells == NULL || (n = atomic_load_explicit(&m->ncells, memory_order_relaxed)) == 0 ||
            h == 0 || !(uncontended = cas_add(cell_at(m, cells, h & (n - 1)), x))) {
            full_add_count(m, x, uncontended);
            return;
        }
        if (check <= 1)
            return;
        s = sum_count(m);
    } else {
        s = b + x;
    }
    if (check >= 0)
        resize_check(m, s);
}

/* ---- transfer, helpTransfer, tryPresize --------------------------------------------------- */

static inline int64_t sc_workers(int64_t sc)
{
    return sc & BL_LOW_MASK;
}

static inline bool same_stamp(int64_t sc, int64_t rs)
{
    return (sc & ~BL_LOW_MASK) == rs;
}

/* The sizeCtl a thread installs to join resize @sc: one more worker, or, for a paused resize
 * (no worker), the "one worker" value a start sets. */
static inline int64_t joined(int64_t sc)
{
    return sc_workers(sc) == 0 ? sc + 2 : sc + 1;
}

/* May a thread join the resize whose sizeCtl is @sc (negative), of a table with stamp @rs?
 * Not if it is another resize, finishing (1: the finisher re-sweeps alone), full, or has no
 * stride left to hand out. */
static bool may_join(struct bl_map *m, int64_t sc, int64_t rs)
{
    int64_t w = sc_workers(sc);
    /* seq_cst, after the caller's load of sizeCtl: a resize started (or paused) before that
     * load has its transferIndex stored before it (start_resize, the pause). */
    return same_stamp(sc, rs) && w != 1 && w != BL_MAX_RESIZERS &&
           atomic_load_explicit(&m->transfer_index, memory_order_seq_cst) > 0;
}

static void free_pool(struct bl_node *pool)
{
    while (pool != NULL) {
        struct bl_node *next = atomic_load_explicit(&pool->next, memory_order_relaxed);
        chm__free(pool);
        pool = next;
    }
}

/* A chain of @count unpublished nodes of @size bytes, linked through next; false (nothing
 * allocated) when out of memory. */
static bool alloc_pool(struct bl_node **pool, size_t count, size_t size)
{
    *pool = NULL;
    for (size_t k = 0; k < count; k++) {
        struct bl_node *e = chm__malloc(size);
        if (e == NULL) {
            free_pool(*pool);
            *pool = NULL;
            return false;
        }
        atomic_store_explicit(&e->next, *pool, memory_order_relaxed);
        *pool = e;
    }
    return true;
}

static struct bl_node *pool_take(struct bl_node **pool)
{
    struct bl_node *e = *pool;
    *pool = atomic_load_explicit(&e->next, memory_order_relaxed);
    return e;
}

/* chm__binlock_fail_splits: splits still to fail (a test hook; relaxed, read only when a bin is
 * split, so a transfer pays one load per bin). */
static atomic_uint bl_fail_splits;

void chm__binlock_fail_splits(unsigned n)
{
    atomic_store_explicit(&bl_fail_splits, n, memory_order_relaxed);
}

static bool split_should_fail(void)
{
    unsigned n = atomic_load_explicit(&bl_fail_splits, memory_order_relaxed);
    while (n != 0 && !atomic_compare_exchange_weak_explicit(
                         &bl_fail_splits, &n, n - 1, memory_order_relaxed, memory_order_relaxed))
        ;
    return n != 0;
}

/* The list split of transfer for the locked list bin @f at @i: lastRun reused, the nodes
 * before it cloned (prepended, so their order reverses, as Java). The clones are allocated
 * first: false, with nothing changed, when that fails. */
static bool split_list(struct bl_map *m, struct bl_table *tab, struct bl_table *nt, size_t i,
                       struct bl_node *f)
{
    size_t n = tab->n;
    uint64_t run_bit = f->hash & n;
    struct bl_node *last_run = f;
    size_t before = 0, k = 1; /* nodes before last_run; index of p */
    for (struct bl_node *p = atomic_load_explicit(&f->next, memory_order_relaxed); p != NULL;
         p = atomic_load_explicit(&p->next, memory_order_relaxed), k++) {
        uint64_t b = p->hash & n;
        if (b != run_bit) {
            run_bit = b;
            last_run = p;
            before = k;
        }
    }
    struct bl_node *pool;
    if (!alloc_pool(&pool, before, sizeof(struct bl_node)))
        return false;
    struct bl_node *ln = run_bit == 0 ? last_run : NULL;
    struct bl_node *hn = run_bit == 0 ? NULL : last_run;
    for (struct bl_node *p = f; p != last_run;
         p = atomic_load_explicit(&p->next, memory_order_relaxed)) {
        struct bl_node *c = pool_take(&pool);
        node_init(c, p->hash, p->key, atomic_load_explicit(&p->value, memory_order_relaxed));
        if ((p->hash & n) == 0) {
            atomic_store_explicit(&c->next, ln, memory_order_relaxed);
            ln = c;
        } else {
            atomic_store_explicit(&c->next, hn, memory_order_relaxed);
            hn = c;
        }
    }
    set_tab_at(nt, i, ln);
    set_tab_at(nt, i + n, hn);
    CHM_YIELD_POINT("bl.split.before_fwd"); /* halves in nt, old bin still live */
    /* After the two stores above (release order): a reader that sees the forwarding node finds
     * both halves in the next table. */
    set_tab_at(tab, i, &nt->fwd);
    CHM_YIELD_POINT("bl.split.before_retire"); /* readers still on the cloned originals */
    /* The cloned originals: unreachable for new readers, their links frozen. The read section
     * this writer is in keeps them valid while the loop reads their links. */
    for (struct bl_node *p = f, *pn; p != last_run; p = pn) {
        pn = atomic_load_explicit(&p->next, memory_order_relaxed);
        retire(m, p, free_shell);
    }
    return true;
}

/* The TreeBin split of transfer for the locked TreeBin @t at @i: each half becomes a list if it
 * has <= 6 nodes, else a new TreeBin; a half that takes every node keeps @t as it is. Every
 * node and TreeBin needed is allocated first: false, with nothing changed, when that fails. */
static bool split_tree(struct bl_map *m, struct bl_table *tab, struct bl_table *nt, size_t i,
                       struct bl_treebin *t)
{
    size_t n = tab->n, lc = 0, hc = 0;
    struct bl_node *first = (struct bl_node *)atomic_load_explicit(&t->first, memory_order_relaxed);
    for (struct bl_node *e = first; e != NULL;
         e = atomic_load_explicit(&e->next, memory_order_relaxed)) {
        if ((e->hash & n) == 0)
            lc++;
        else
            hc++;
    }
    struct bl_node *ln = NULL, *hn = NULL;
    bool reuse =
        (hc == 0 && lc > BL_UNTREEIFY_THRESHOLD) || (lc == 0 && hc > BL_UNTREEIFY_THRESHOLD);
    if (reuse) {
        ln = lc != 0 ? &t->n : NULL;
        hn = hc != 0 ? &t->n : NULL;
    } else {
        bool ltree = lc > BL_UNTREEIFY_THRESHOLD, htree = hc > BL_UNTREEIFY_THRESHOLD;
        struct bl_node *lpool, *hpool;
        struct bl_treebin *ltb = NULL, *htb = NULL;
        if (!alloc_pool(&lpool, lc, ltree ? sizeof(struct bl_tnode) : sizeof(struct bl_node)))
            return false;
        if (!alloc_pool(&hpool, hc, htree ? sizeof(struct bl_tnode) : sizeof(struct bl_node)) ||
            (ltree && (ltb = chm__malloc(sizeof *ltb)) == NULL) ||
            (htree && (htb = chm__malloc(sizeof *htb)) == NULL)) {
            free_pool(lpool);
            free_pool(hpool);
            chm__free(ltb);
            return false;
        }
        /* Copy in list order (Java: loTail/hiTail appends). */
        struct bl_node *ltail = NULL, *htail = NULL;
        for (struct bl_node *e = first; e != NULL;
             e = atomic_load_explicit(&e->next, memory_order_relaxed)) {
            bool lo = (e->hash & n) == 0;
            struct bl_node *c = pool_take(lo ? &lpool : &hpool);
            node_init(c, e->hash, e->key, atomic_load_explicit(&e->value, memory_order_relaxed));
            struct bl_node **tail = lo ? &ltail : &htail, **head = lo ? &ln : &hn;
            if ((lo ? ltree : htree))
                bl_tnode_of(c)->prev = bl_tnode_of(*tail);
            if (*tail == NULL)
                *head = c;
            else
                atomic_store_explicit(&(*tail)->next, c, memory_order_relaxed);
            *tail = c;
        }
        if (ltree) {
            chm__bl_treebin_init(&m->base, ltb, bl_tnode_of(ln));
            ln = &ltb->n;
        } else if (lc != 0) {
            atomic_fetch_add_explicit(&m->st_untreeify, 1, memory_order_relaxed);
        }
        if (htree) {
            chm__bl_treebin_init(&m->base, htb, bl_tnode_of(hn));
            hn = &htb->n;
        } else if (hc != 0) {
            atomic_fetch_add_explicit(&m->st_untreeify, 1, memory_order_relaxed);
        }
    }
    set_tab_at(nt, i, ln);
    set_tab_at(nt, i + n, hn);
    CHM_YIELD_POINT("bl.split_tree.before_fwd"); /* as in split_list */
    set_tab_at(tab, i, &nt->fwd);                /* after both halves, as in split_list */
    if (!reuse) {
        for (struct bl_node *e = first, *en; e != NULL; e = en) {
            en = atomic_load_explicit(&e->next, memory_order_relaxed);
            retire(m, e, free_shell);
        }
        retire(m, t, free_shell);
    }
    return true;
}

/*
 * transfer(tab, nextTab): move bins of @tab to @nt, cooperatively. The caller has registered as
 * a worker in sizeCtl. Returns false when this call paused the resize (out of memory in the
 * finisher's re-sweep), true otherwise. Inside a read section.
 */
static bool transfer(struct bl_map *m, struct bl_table *tab, struct bl_table *nt)
{
    const int64_t n = (int64_t)tab->n;
    int64_t stride = m->ncpu > 1 ? (n >> 3) / m->ncpu : n;
    if (stride < BL_MIN_TRANSFER_STRIDE)
        stride = BL_MIN_TRANSFER_STRIDE; /* subdivide range */
    const int64_t rs = resize_stamp(tab->n);
    bool advance = true, finishing = false; /* finishing: re-sweep before committing nt */
    int64_t i = 0, bound = 0;
    for (;;) {
        while (advance) {
            int64_t next_index, next_bound;
            if (--i >= bound || finishing) {
                advance = false;
            } else if ((next_index = /* seq_cst: with the CAS below */
                        atomic_load_explicit(&m->transfer_index, memory_order_seq_cst)) <= 0) {
                i = -1;
                advance = false;
            } else {
                next_bound = next_index > stride ? next_index - stride : 0;
                CHM_YIELD_POINT("bl.transfer.before_claim"); /* racing claimers */
                /* seq_cst: claims a stride [next_bound, next_index) exactly once. */
                if (atomic_compare_exchange_strong_explicit(&m->transfer_index, &next_index,
                                                            next_bound, memory_order_seq_cst,
                                                            memory_order_seq_cst)) {
                    bound = next_bound;
                    i = next_index - 1;
                    advance = false;
                }
            }
        }
        if (i < 0 || i >= n) {
            if (finishing) { /* commit */
                /* seq_cst, Java's volatile writes in this order: a thread that sees the new
                 * sizeCtl sees nextTable cleared and the new table. table's store also pairs
                 * with the acquire loads of table (release). */
                atomic_store_explicit(&m->next_table, NULL, memory_order_seq_cst);
                CHM_YIELD_POINT("bl.commit.next_cleared"); /* nextTable NULL, old table current */
                atomic_store_explicit(&m->table, nt, memory_order_seq_cst);
                CHM_YIELD_POINT("bl.commit.table_set"); /* new table, sizeCtl still resizing */
                atomic_store_explicit(&m->size_ctl, 2 * n - n / 2, memory_order_seq_cst);
                atomic_fetch_add_explicit(&m->st_resize, 1, memory_order_relaxed);
                retire(m, tab, free_shell);
                return true;
            }
            /* seq_cst load and CAS: leave the worker count; the one that brings it to 1 is the
             * last, and its re-sweep sees every bin the others moved. */
            int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst);
            CHM_YIELD_POINT("bl.transfer.before_leave"); /* joiners and leavers race on sizeCtl */
            if (atomic_compare_exchange_strong_explicit(
                    &m->size_ctl, &sc, sc - 1, memory_order_seq_cst, memory_order_seq_cst)) {
                if (sc - 2 != rs)
                    return true;
                finishing = advance = true;
                i = n; /* recheck before commit */
            }
            continue;
        }
        struct bl_node *f = tab_at(tab, (size_t)i);
        CHM_YIELD_POINT("bl.transfer.bin_loaded"); /* head read, not yet locked or CASed */
        if (f == NULL) {
            /* Release: pairs with tabAt's acquire; nt (published through nextTable) is whole
             * for whoever follows this forwarding node. */
            advance = atomic_compare_exchange_strong_explicit(
                bin_at(tab, (size_t)i), &f, &nt->fwd, memory_order_release, memory_order_relaxed);
        } else if (f->hash == BL_MOVED) {
            advance = true; /* already processed */
        } else if (!bl_lock_acquire(&f->lock)) {
            /* Out of patience: breathe and retry bin i. tab and nt stay valid: this thread is a
             * registered worker, so the resize cannot commit meanwhile. */
            smr_breathe();
        } else {
            CHM_YIELD_POINT("bl.transfer.locked"); /* locked, head not yet re-checked */
            /* Relaxed: the bin lock's acquire orders this after the last change of the head by a
             * holder of f's lock; any other value means f is no longer the head. */
            if (atomic_load_explicit(bin_at(tab, (size_t)i), memory_order_relaxed) == f) {
                /* (A ReservationNode is never still the head once its lock is ours: its
                 * compute replaced it before unlocking. Were it, the bin would be retried.) */
                bool ok = true;
                if (f->hash != BL_RESERVED && chm_unlikely(split_should_fail()))
                    ok = false;
                else if (!bl_special(f->hash))
                    ok = split_list(m, tab, nt, (size_t)i, f);
                else if (f->hash == BL_TREEBIN)
                    ok = split_tree(m, tab, nt, (size_t)i, bl_treebin_of(f));
                if (f->hash == BL_RESERVED) {
                    /* retry the bin */
                } else if (ok || !finishing) {
                    advance = true; /* a bin that failed is left to the re-sweep */
                } else {
                    /* The re-sweep cannot allocate: pause. Bins [0, i] go back to the pool of
                     * strides, and the worker count to 0 (seq_cst: a joiner that sees 0 sees
                     * the reopened transferIndex). Only the finisher writes sizeCtl in state 1,
                     * so plain stores suffice. */
                    atomic_store_explicit(&m->transfer_index, i + 1, memory_order_seq_cst);
                    atomic_store_explicit(&m->size_ctl, rs, memory_order_seq_cst);
                    atomic_fetch_add_explicit(&m->st_pause, 1, memory_order_relaxed);
                    bl_lock_release(&f->lock);
                    return false;
                }
            }
            bl_lock_release(&f->lock);
        }
    }
}

/* Join the resize of @tab that sizeCtl @sc (negative) describes; the caller read next_table
 * as @nt. Returns false when this thread's transfer paused it. */
static bool join_resize(struct bl_map *m, struct bl_table *tab, struct bl_table *nt, int64_t sc)
{
    CHM_YIELD_POINT("bl.join.before_cas"); /* the resize may commit or pause meanwhile */
    /* seq_cst: one more worker only if sizeCtl is still what was checked. */
    if (!atomic_compare_exchange_strong_explicit(&m->size_ctl, &sc, joined(sc),
                                                 memory_order_seq_cst, memory_order_seq_cst))
        return true;
    atomic_fetch_add_explicit(&m->st_join, 1, memory_order_relaxed);
    return transfer(m, tab, nt);
}

/* Start a resize of @tab whose threshold sizeCtl @sc was seen. 1: done (or someone else
 * started); -1: no memory for the next table (sizeCtl restored) or the transfer paused. */
static int start_resize(struct bl_map *m, struct bl_table *tab, int64_t sc)
{
    int64_t rs = resize_stamp(tab->n);
    /* seq_cst: from threshold to "resizing, one worker". */
    if (!atomic_compare_exchange_strong_explicit(&m->size_ctl, &sc, rs + 2, memory_order_seq_cst,
                                                 memory_order_seq_cst))
        return 1;
    CHM_YIELD_POINT("bl.resize.started"); /* sizeCtl says resizing, no nextTable yet */
    struct bl_table *nt = new_table(tab->n << 1);
    if (nt == NULL) {
        /* Nobody can have joined: nextTable is NULL. Back to the threshold (Java: MAX_VALUE,
         * i.e. never again; here the next insert past the threshold tries again). */
        atomic_store_explicit(&m->size_ctl, sc, memory_order_seq_cst);
        return -1;
    }
    /* seq_cst, in Java's order: nextTable, then transferIndex; a joiner reads them in the
     * opposite order after sizeCtl. */
    atomic_store_explicit(&m->next_table, nt, memory_order_seq_cst);
    CHM_YIELD_POINT("bl.resize.next_published"); /* nextTable set, transferIndex still 0 */
    atomic_store_explicit(&m->transfer_index, (int64_t)tab->n, memory_order_seq_cst);
    return transfer(m, tab, nt) ? 1 : -1;
}

/* The resize check of addCount: while the count is past sizeCtl, join or start resizes. */
static void resize_check(struct bl_map *m, int64_t s)
{
    struct bl_table *tab;
    int64_t sc;
    /* sizeCtl, then table, then (resizing) transferIndex and nextTable: seq_cst loads in the
     * reverse of the order a commit stores them (nextTable, table, sizeCtl) and a start stores
     * them (sizeCtl, nextTable, transferIndex), so a stamp seen here comes with its tables.
     * table's load is also an acquire (the table is followed). */
    while (s >= (sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst)) &&
           (tab = atomic_load_explicit(&m->table, memory_order_acquire)) != NULL &&
           tab->n < BL_MAX_CAPACITY) {
        int64_t rs = resize_stamp(tab->n);
        if (sc < 0) {
            struct bl_table *nt;
            if (!may_join(m, sc, rs) ||
                (nt = atomic_load_explicit(&m->next_table, memory_order_seq_cst)) == NULL)
                break;
            if (!join_resize(m, tab, nt, sc))
                break;
        } else if (start_resize(m, tab, sc) < 0) {
            break; /* out of memory: keep inserting into this table */
        }
        s = sum_count(m);
    }
}

/* helpTransfer: a writer met the forwarding node @f in @tab; help if that resize can use it,
 * and continue in the next table. */
static struct bl_table *help_transfer(struct bl_map *m, struct bl_table *tab, struct bl_node *f)
{
    struct bl_table *nt = bl_fwd_table(f);
    int64_t rs = resize_stamp(tab->n), sc;
    /* seq_cst loads: Java's volatile reads of nextTable, table and sizeCtl; the resize is still
     * the one @f belongs to if nextTable and table still match (checked before each CAS). */
    while (nt == atomic_load_explicit(&m->next_table, memory_order_seq_cst) &&
           tab == atomic_load_explicit(&m->table, memory_order_seq_cst) &&
           (sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst)) < 0) {
        if (!may_join(m, sc, rs))
            break;
        int64_t seen = sc;
        CHM_YIELD_POINT("bl.help.before_join");
        /* seq_cst: as join_resize. */
        if (atomic_compare_exchange_strong_explicit(&m->size_ctl, &seen, joined(sc),
                                                    memory_order_seq_cst, memory_order_seq_cst)) {
            atomic_fetch_add_explicit(&m->st_join, 1, memory_order_relaxed);
            transfer(m, tab, nt);
            break;
        }
    }
    return nt;
}

/* tryPresize(size), as treeifyBin uses it: grow until the table could hold @size entries. */
static void try_presize(struct bl_map *m, size_t size)
{
    size_t c =
        size >= (BL_MAX_CAPACITY >> 1) ? BL_MAX_CAPACITY : table_size_for(size + (size >> 1) + 1);
    int64_t sc;
    /* seq_cst / acquire: as resize_check. */
    while ((sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst)) >= 0) {
        struct bl_table *tab = atomic_load_explicit(&m->table, memory_order_acquire);
        if (tab == NULL || (int64_t)c <= sc || tab->n >= BL_MAX_CAPACITY)
            break;
        if (start_resize(m, tab, sc) < 0)
            break;
    }
}

/* ---- treeifyBin ------------------------------------------------------------------------------- */

static void treeify_bin(struct bl_map *m, struct bl_table *tab, size_t index)
{
    if (tab->n < BL_MIN_TREEIFY_CAPACITY) {
        try_presize(m, tab->n << 1);
        return;
    }
    struct bl_node *b = tab_at(tab, index);
    if (b == NULL || bl_special(b->hash))
        return;
    if (!bl_lock_acquire(&b->lock))
        return; /* the bin is busy for long: treeify another time */
    /* Relaxed: as in transfer (the lock orders it). */
    if (atomic_load_explicit(bin_at(tab, index), memory_order_relaxed) == b) {
        size_t count = 0;
        for (struct bl_node *e = b; e != NULL;
             e = atomic_load_explicit(&e->next, memory_order_relaxed))
            count++;
        struct bl_node *pool;
        struct bl_treebin *tb = NULL;
        if (alloc_pool(&pool, count, sizeof(struct bl_tnode))) {
            if ((tb = chm__malloc(sizeof *tb)) == NULL)
                free_pool(pool);
        }
        if (tb != NULL) { /* else: no memory, the bin stays a list */
            struct bl_tnode *hd = NULL, *tl = NULL;
            for (struct bl_node *e = b; e != NULL;
                 e = atomic_load_explicit(&e->next, memory_order_relaxed)) {
                struct bl_tnode *p = bl_tnode_of(pool_take(&pool));
                node_init(&p->n, e->hash, e->key,
                          atomic_load_explicit(&e->value, memory_order_relaxed));
                if ((p->prev = tl) == NULL)
                    hd = p;
                else
                    atomic_store_explicit(&tl->n.next, &p->n, memory_order_relaxed);
                tl = p;
            }
            chm__bl_treebin_init(&m->base, tb, hd);
            CHM_YIELD_POINT("bl.treeify.before_publish"); /* readers still on the list */
            set_tab_at(tab, index, &tb->n); /* the last write: publishes the whole TreeBin */
            for (struct bl_node *e = b, *en; e != NULL; e = en) {
                en = atomic_load_explicit(&e->next, memory_order_relaxed);
                retire(m, e, free_shell); /* key and value moved to the TreeNodes */
            }
            atomic_fetch_add_explicit(&m->st_treeify, 1, memory_order_relaxed);
        }
    }
    bl_lock_release(&b->lock);
}

/* ---- lookup ----------------------------------------------------------------------------------- */

/* Node.find from a bin head @e, following forwarding nodes. Inside a read section. */
static inline struct bl_node *find(const chm *cm, struct bl_node *e, uint64_t h, uint64_t key)
{
    while (e != NULL) {
        uint64_t eh = e->hash;
        if (eh == h) {
            if (chm__key_equal(cm, e->key, key))
                return e;
        } else if (chm_unlikely(bl_special(eh))) { /* special nodes only ever head a bin */
            if (eh == BL_MOVED) {                  /* ForwardingNode.find: into the next table */
                struct bl_table *nt = bl_fwd_table(e);
                CHM_YIELD_POINT("bl.find.forwarded"); /* the next table may commit meanwhile */
                e = tab_at(nt, h & (nt->n - 1));
                continue;
            }
            if (eh == BL_TREEBIN)
                return chm__bl_tree_find(cm, bl_treebin_of(e), h, key);
            return NULL; /* ReservationNode.find */
        }
        /* Acquire: pairs with the release stores that link nodes. */
        e = atomic_load_explicit(&e->next, memory_order_acquire);
    }
    return NULL;
}

static int bl_get(chm *cm, uint64_t key, uint64_t *value)
{
    struct bl_map *m = as_bl(cm);
    uint64_t h = spread(chm__hash(cm, key));
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    /* Acquire: pairs with the table's publication (initTable, commit). */
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire);
    if (t != NULL) {
        CHM_YIELD_POINT("bl.get.table_loaded"); /* the table may be replaced and retired */
        struct bl_node *f = tab_at(t, h & (t->n - 1));
        CHM_YIELD_POINT("bl.get.head_loaded"); /* head read, forwarding not yet checked */
        struct bl_node *e = find(cm, f, h, key);
        if (e != NULL) {
            CHM_YIELD_POINT("bl.get.before_value"); /* the node may be removed and retired */
            /* Acquire: pairs with the release store of the value; what a pointer value points
             * to was written before the put that stored it. */
            uint64_t v = atomic_load_explicit(&e->value, memory_order_acquire);
            if (value != NULL)
                *value = v;
            rc = CHM_OK;
        }
    }
    chm__smr_read_unlock();
    return rc;
}

/* ---- putVal ----------------------------------------------------------------------------------- */

static int put_val(struct bl_map *m, uint64_t key, uint64_t value, bool only_if_absent,
                   uint64_t *prev)
{
    chm *cm = &m->base;
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t h = spread(chm__hash(cm, key));
    struct bl_node *node = NULL; /* the new node, allocated once */
    chm_value_retire *rec = NULL;
    long bin_count = 0;
    int rc;
    chm__smr_read_lock();
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire); /* as bl_get */
    for (;;) {
        if (t == NULL && (t = init_table(m)) == NULL) {
            rc = CHM_ENOMEM;
            break;
        }
        size_t i = h & (t->n - 1);
        struct bl_node *f = tab_at(t, i);
        if (f == NULL) {
            if (node == NULL && (node = new_node(m, h, key, value, false)) == NULL) {
                rc = CHM_ENOMEM;
                break;
            }
            CHM_YIELD_POINT("bl.put.before_cas_empty"); /* racing inserts and transfers */
            /* casTabAt. Release: the node is whole for readers that load it (acquire); on
             * failure we reload the winner's head with tab_at (acquire). */
            if (atomic_compare_exchange_strong_explicit(
                    bin_at(t, i), &f, node, memory_order_release, memory_order_relaxed)) {
                node = NULL;
                bin_count = 0;
                rc = CHM_OK;
                break;
            }
            continue;
        }
        uint64_t fh = f->hash;
        if (fh == BL_MOVED) {
            t = help_transfer(m, t, f);
            continue;
        }
        if (only_if_absent && fh == h && chm__key_equal(cm, f->key, key)) {
            /* Lock-free: the head holds the key (Java 9+). Acquire: as bl_get. */
            *prev = atomic_load_explicit(&f->value, memory_order_acquire);
            rc = CHM_EXISTS;
            break;
        }
        bool done = false;
        CHM_YIELD_POINT("bl.put.before_lock"); /* head read, the bin may move or change */
        if (!bl_lock_acquire(&f->lock)) {
            smr_breathe(); /* t and f may be gone now: start over from the table */
            t = atomic_load_explicit(&m->table, memory_order_acquire);
            continue;
        }
        CHM_YIELD_POINT("bl.put.locked"); /* locked, head not yet re-checked */
        /* Relaxed: as in transfer. */
        if (atomic_load_explicit(bin_at(t, i), memory_order_relaxed) == f) {
            if (!bl_special(fh)) {
                done = true;
                bin_count = 1;
                for (struct bl_node *e = f;; ++bin_count) {
                    if (e->hash == h && chm__key_equal(cm, e->key, key)) {
                        /* Relaxed: values change only under this lock. */
                        *prev = atomic_load_explicit(&e->value, memory_order_relaxed);
                        rc = CHM_EXISTS;
                        if (!only_if_absent) {
                            /* No record when the value stays: replaced by itself, it has not
                             * left the map. */
                            if (*prev != value && !chm__value_retire_reserve(cm, &rec)) {
                                rc = CHM_ENOMEM;
                            } else {
                                /* Release: pairs with the acquire loads of the value. */
                                atomic_store_explicit(&e->value, value, memory_order_release);
                                chm__value_retire(cm, m->domain, &rec, *prev);
                            }
                        }
                        break;
                    }
                    struct bl_node *nx = atomic_load_explicit(&e->next, memory_order_relaxed);
                    if (nx == NULL) { /* absent: the new node heads the bin */
                        if (node == NULL && (node = new_node(m, h, key, value, false)) == NULL) {
                            rc = CHM_ENOMEM;
                            break;
                        }
                        atomic_store_explicit(&node->next, f, memory_order_relaxed);
                        CHM_YIELD_POINT("bl.put.before_publish");
                        set_tab_at(t, i, node); /* the critical section's last write */
                        node = NULL;
                        rc = CHM_OK;
                        break;
                    }
                    e = nx;
                }
            } else if (fh == BL_TREEBIN) {
                done = true;
                bin_count = 2;
                struct bl_treebin *tb = bl_treebin_of(f);
                struct bl_tnode *p = chm__bl_tree_lookup(cm, tb, h, key);
                if (p != NULL) {
                    *prev = atomic_load_explicit(&p->n.value, memory_order_relaxed);
                    rc = CHM_EXISTS;
                    if (!only_if_absent) {
                        /* No record when the value stays (as above). */
                        if (*prev != value && !chm__value_retire_reserve(cm, &rec)) {
                            rc = CHM_ENOMEM;
                        } else {
                            /* Release: as above. */
                            atomic_store_explicit(&p->n.value, value, memory_order_release);
                            chm__value_retire(cm, m->domain, &rec, *prev);
                        }
                    }
                } else {
                    struct bl_node *x = new_node(m, h, key, value, true);
                    if (x == NULL) {
                        rc = CHM_ENOMEM;
                    } else {
                        chm__bl_tree_insert(cm, tb, bl_tnode_of(x));
                        rc = CHM_OK;
                    }
                }
            }
            /* else a ReservationNode: its compute finished before we got its lock, and the
             * bin has a new head; retry. */
        }
        bl_lock_release(&f->lock);
        if (done) {
            if (bin_count >= BL_TREEIFY_THRESHOLD && rc >= 0)
                treeify_bin(m, t, i);
            break;
        }
    }
    if (rc == CHM_OK)
        add_count(m, 1, bin_count);
    chm__smr_read_unlock();
    discard_node(m, node); /* allocated for a CAS we lost to the same key */
    chm__free(rec);
    return rc;
}

static int bl_put(chm *cm, uint64_t key, uint64_t value, uint64_t *old)
{
    uint64_t prev = 0;
    int rc = put_val(as_bl(cm), key, value, false, &prev);
    if (rc == CHM_EXISTS && old != NULL)
        *old = prev;
    return rc;
}

static int bl_put_if_absent(chm *cm, uint64_t key, uint64_t value, uint64_t *current)
{
    uint64_t prev = 0;
    int rc = put_val(as_bl(cm), key, value, true, &prev);
    if (rc == CHM_EXISTS && current != NULL)
        *current = prev;
    return rc;
}

/* ---- replaceNode (remove, replace) ------------------------------------------------------------ */

static int replace_node(struct bl_map *m, uint64_t key, bool remove, uint64_t expected,
                        uint64_t desired, uint64_t *old)
{
    chm *cm = &m->base;
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t h = spread(chm__hash(cm, key));
    chm_value_retire *rec = NULL;
    bool removed = false;
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire); /* as bl_get */
    for (;;) {
        if (t == NULL)
            break;
        size_t i = h & (t->n - 1);
        struct bl_node *f = tab_at(t, i);
        if (f == NULL)
            break;
        if (f->hash == BL_MOVED) {
            t = help_transfer(m, t, f);
            continue;
        }
        bool validated = false;
        CHM_YIELD_POINT("bl.remove.before_lock"); /* head read, the bin may move or change */
        if (!bl_lock_acquire(&f->lock)) {
            smr_breathe(); /* as in put_val */
            t = atomic_load_explicit(&m->table, memory_order_acquire);
            continue;
        }
        CHM_YIELD_POINT("bl.remove.locked"); /* locked, head not yet re-checked */
        /* Relaxed: as in transfer. */
        if (atomic_load_explicit(bin_at(t, i), memory_order_relaxed) == f) {
            struct bl_node *e = NULL, *pred = NULL;
            struct bl_treebin *tb = NULL;
            if (!bl_special(f->hash)) {
                validated = true;
                for (e = f; e != NULL;
                     pred = e, e = atomic_load_explicit(&e->next, memory_order_relaxed))
                    if (e->hash == h && chm__key_equal(cm, e->key, key))
                        break;
            } else if (f->hash == BL_TREEBIN) {
                validated = true;
                tb = bl_treebin_of(f);
                struct bl_tnode *p = chm__bl_tree_lookup(cm, tb, h, key);
                e = p != NULL ? &p->n : NULL;
            }
            if (e != NULL) {
                uint64_t ev = atomic_load_explicit(&e->value, memory_order_relaxed); /* locked */
                if (!remove) {
                    /* No record when desired == expected: the value stays (as in put_val). */
                    if (ev != expected) {
                        rc = CHM_EXISTS;
                    } else if (desired != ev && !chm__value_retire_reserve(cm, &rec)) {
                        rc = CHM_ENOMEM;
                    } else {
                        /* Release: pairs with the acquire loads of the value. */
                        atomic_store_explicit(&e->value, desired, memory_order_release);
                        chm__value_retire(cm, m->domain, &rec, ev);
                        rc = CHM_OK;
                    }
                } else {
                    if (tb == NULL) {
                        /* Release stores: a reader that loads the link sees the successor
                         * whole; the unlinked node keeps its own next for readers on it. */
                        struct bl_node *nx = atomic_load_explicit(&e->next, memory_order_relaxed);
                        CHM_YIELD_POINT("bl.remove.before_unlink"); /* readers walk past e */
                        if (pred != NULL)
                            atomic_store_explicit(&pred->next, nx, memory_order_release);
                        else
                            set_tab_at(t, i, nx);
                    } else if (chm__bl_tree_remove(tb, bl_tnode_of(e))) {
                        /* untreeify: the remaining TreeNodes are a list already. */
                        set_tab_at(t, i,
                                   (struct bl_node *)atomic_load_explicit(&tb->first,
                                                                          memory_order_relaxed));
                        retire(m, tb, free_shell);
                        atomic_fetch_add_explicit(&m->st_untreeify, 1, memory_order_relaxed);
                    }
                    if (old != NULL)
                        *old = ev;
                    CHM_YIELD_POINT("bl.remove.before_retire"); /* unlinked, readers on it */
                    retire(m, e, free_node_full);
                    removed = true;
                    rc = CHM_OK;
                }
            }
        }
        bl_lock_release(&f->lock);
        if (validated)
            break;
    }
    if (removed)
        add_count(m, -1, -1);
    chm__smr_read_unlock();
    chm__free(rec);
    return rc;
}

static int bl_remove(chm *cm, uint64_t key, uint64_t *old)
{
    return replace_node(as_bl(cm), key, true, 0, 0, old);
}

static int bl_replace(chm *cm, uint64_t key, uint64_t expected, uint64_t desired)
{
    return replace_node(as_bl(cm), key, false, expected, desired, NULL);
}

/* ---- computeIfAbsent -------------------------------------------------------------------------- */

/* Run the compute function with this map on the thread's compute stack (src/reentry.h: nested
 * writes to it return CHM_EDEADLK), outside the read section: the caller holds the bin's lock
 * (its head's, or its reservation's), so neither the head nor the table can be retired meanwhile
 * (unlinking a head and committing a transfer both need that lock), and the function may block
 * for as long as it likes without holding up reclamation. */
static uint64_t run_compute(const chm *cm, chm_compute_fn *fn, uint64_t key, void *arg)
{
    chm__smr_read_unlock();
    uint64_t v = chm__reentry_run(cm, CHM__HOLD_PART, fn, key, arg);
    chm__smr_read_lock();
    return v;
}

static int bl_compute_if_absent(chm *cm, uint64_t key, chm_compute_fn *fn, void *arg,
                                uint64_t *value)
{
    struct bl_map *m = as_bl(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    uint64_t h = spread(chm__hash(cm, key));
    struct bl_node *node = NULL, *res = NULL; /* the new node; the ReservationNode */
    uint64_t v = 0;
    long bin_count = 0;
    bool inserted = false;
    chm__smr_read_lock();
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire); /* as bl_get */
    for (;;) {
        if (t == NULL && (t = init_table(m)) == NULL) {
            rc = CHM_ENOMEM;
            break;
        }
        size_t i = h & (t->n - 1);
        struct bl_node *f = tab_at(t, i);
        if (f == NULL) {
            /* Both allocations first: after the CAS nothing may fail. */
            if (res == NULL) {
                if ((res = chm__malloc(sizeof *res)) == NULL) {
                    rc = CHM_ENOMEM;
                    break;
                }
                node_init(res, BL_RESERVED, 0, 0);
            }
            if (node == NULL && (node = new_node(m, h, key, 0, false)) == NULL) {
                rc = CHM_ENOMEM;
                break;
            }
            (void)bl_lock_acquire(&res->lock); /* unpublished: uncontended, cannot fail */
            CHM_YIELD_POINT("bl.compute.before_reserve"); /* racing inserts and transfers */
            /* Release: readers and writers that load the reservation see it whole (writers then
             * wait on its lock). */
            if (atomic_compare_exchange_strong_explicit(bin_at(t, i), &f, res, memory_order_release,
                                                        memory_order_relaxed)) {
                v = run_compute(cm, fn, key, arg);
                atomic_store_explicit(&node->value, v, memory_order_relaxed);
                CHM_YIELD_POINT("bl.compute.reserved"); /* readers see the reservation */
                set_tab_at(t, i, node);                 /* publishes the node and its value */
                node = NULL;
                bl_lock_release(&res->lock); /* waiters see a new head and retry */
                retire(m, res, free_shell);
                res = NULL;
                bin_count = 1;
                inserted = true;
                rc = CHM_OK;
                break;
            }
            bl_lock_release(&res->lock);
            continue;
        }
        uint64_t fh = f->hash;
        if (fh == BL_MOVED) {
            t = help_transfer(m, t, f);
            continue;
        }
        if (fh == h && chm__key_equal(cm, f->key, key)) {
            /* Lock-free: the head holds the key (Java 9+). Acquire: as bl_get. */
            v = atomic_load_explicit(&f->value, memory_order_acquire);
            rc = CHM_EXISTS;
            break;
        }
        bool done = false;
        if (!bl_lock_acquire(&f->lock)) {
            smr_breathe(); /* t and f may be gone now: start over from the table */
            t = atomic_load_explicit(&m->table, memory_order_acquire);
            continue;
        }
        /* Relaxed: as in transfer. */
        if (atomic_load_explicit(bin_at(t, i), memory_order_relaxed) == f) {
            if (!bl_special(fh)) {
                done = true;
                bin_count = 1;
                for (struct bl_node *e = f;; ++bin_count) {
                    if (e->hash == h && chm__key_equal(cm, e->key, key)) {
                        v = atomic_load_explicit(&e->value, memory_order_relaxed); /* locked */
                        rc = CHM_EXISTS;
                        break;
                    }
                    struct bl_node *nx = atomic_load_explicit(&e->next, memory_order_relaxed);
                    if (nx == NULL) {
                        if (node == NULL && (node = new_node(m, h, key, 0, false)) == NULL) {
                            rc = CHM_ENOMEM; /* before the function: it does not run */
                            break;
                        }
                        v = run_compute(cm, fn, key, arg);
                        atomic_store_explicit(&node->value, v, memory_order_relaxed);
                        atomic_store_explicit(&node->next, f, memory_order_relaxed);
                        set_tab_at(t, i, node); /* the critical section's last write */
                        node = NULL;
                        inserted = true;
                        rc = CHM_OK;
                        break;
                    }
                    e = nx;
                }
            } else if (fh == BL_TREEBIN) {
                done = true;
                bin_count = 2;
                struct bl_treebin *tb = bl_treebin_of(f);
                struct bl_tnode *p = chm__bl_tree_lookup(cm, tb, h, key);
                if (p != NULL) {
                    v = atomic_load_explicit(&p->n.value, memory_order_relaxed); /* locked */
                    rc = CHM_EXISTS;
                } else {
                    struct bl_node *x = new_node(m, h, key, 0, true);
                    if (x == NULL) {
                        rc = CHM_ENOMEM;
                    } else {
                        v = run_compute(cm, fn, key, arg);
                        atomic_store_explicit(&x->value, v, memory_order_relaxed);
                        chm__bl_tree_insert(cm, tb, bl_tnode_of(x)); /* publishes x (release) */
                        inserted = true;
                        rc = CHM_OK;
                    }
                }
            }
        }
        bl_lock_release(&f->lock);
        if (done) {
            if (bin_count >= BL_TREEIFY_THRESHOLD && rc >= 0)
                treeify_bin(m, t, i);
            break;
        }
    }
    if (inserted)
        add_count(m, 1, bin_count);
    chm__smr_read_unlock();
    discard_node(m, node);
    chm__free(res); /* never published */
    if (rc >= 0 && value != NULL)
        *value = v;
    return rc;
}

/* ---- size ------------------------------------------------------------------------------------- */

static size_t bl_size(chm *cm)
{
    int64_t n = sum_count(as_bl(cm));
    return n < 0 ? 0 : (size_t)n; /* transiently negative while counts race */
}

/* ---- iteration (Traverser) -------------------------------------------------------------------- */

struct bl_iter {
    struct chm__iter_base base;
    struct bl_table *tab;      /* the table being visited */
    struct bl_table *base_tab; /* the table at chm_iter_init: depth 0 */
    struct bl_node *next;      /* the node returned last */
    size_t index;              /* next bin of tab */
    size_t base_index;         /* next bin of base_tab */
    size_t base_limit;
    size_t base_size;
    unsigned depth; /* forwarding nodes between base_tab and tab (Java: TableStack depth) */
};
CHM_ITER_STATIC_ASSERT(struct bl_iter);

static struct bl_iter *as_iter(chm_iter *it)
{
    return (struct bl_iter *)(void *)it->opaque;
}

/* The table at it->depth, found again from base_tab: at each level the bin it->index names is a
 * forwarding node to the next level (it stays one, and the tables stay valid, while the
 * iterator is open: chm__smr_iter_open in bl_iter_init). */
static struct bl_table *table_at_depth(struct bl_iter *it)
{
    struct bl_table *t = it->base_tab;
    for (unsigned d = 0; d < it->depth; d++)
        t = bl_fwd_table(tab_at(t, it->index & (t->n - 1)));
    return t;
}

/* recoverState(n), without the stack: after a bin of a table of @n bins at depth > 0, visit
 * the upper twin of the bin (index + n/2) or pop back to the parent table. */
static void recover_state(struct bl_iter *it, size_t n)
{
    while (it->depth > 0) {
        size_t len = n >> 1;
        if ((it->index += len) < n)
            return;
        it->index -= n; /* the parent's index */
        it->depth--;
        n = len;
        it->tab = table_at_depth(it);
    }
    if ((it->index += it->base_size) >= n)
        it->index = ++it->base_index;
}

static struct bl_node *advance(struct bl_iter *it)
{
    struct bl_node *e = it->next;
    if (e != NULL)
        e = atomic_load_explicit(&e->next, memory_order_acquire); /* as in find */
    for (;;) {
        if (e != NULL)
            return it->next = e;
        struct bl_table *t = it->tab;
        size_t i = it->index, n;
        if (it->base_index >= it->base_limit || t == NULL || (n = t->n) <= i)
            return it->next = NULL;
        e = tab_at(t, i);
        if (e != NULL)
            CHM_YIELD_POINT("bl.iter.head_loaded"); /* the bin may be forwarded meanwhile */
        if (e != NULL && bl_special(e->hash)) {
            if (e->hash == BL_MOVED) { /* pushState and continue in the next table */
                it->tab = bl_fwd_table(e);
                it->depth++;
                e = NULL;
                continue;
            }
            if (e->hash == BL_TREEBIN) /* Acquire: as in chm__bl_tree_find */
                e = (struct bl_node *)atomic_load_explicit(&bl_treebin_of(e)->first,
                                                           memory_order_acquire);
            else
                e = NULL;
        }
        if (it->depth > 0)
            recover_state(it, n);
        else if ((it->index = i + it->base_size) >= n)
            it->index = ++it->base_index; /* visit upper slots if present */
    }
}

static int bl_iter_init(chm_iter *it, chm *cm)
{
    struct bl_iter *bi = as_iter(it);
    /* Counted open until chm_iter_fini, before the first read section: the tables and node
     * kept between calls stay valid (retired meanwhile, they are parked, not freed). */
    chm__smr_iter_open(as_bl(cm)->domain);
    chm__smr_read_lock();
    struct bl_table *t = atomic_load_explicit(&as_bl(cm)->table, memory_order_acquire);
    bi->tab = bi->base_tab = t;
    bi->next = NULL;
    bi->index = bi->base_index = 0;
    bi->base_limit = bi->base_size = t != NULL ? t->n : 0;
    bi->depth = 0;
    chm__smr_read_unlock();
    return CHM_OK;
}

static int bl_iter_next(chm_iter *it, uint64_t *key, uint64_t *value)
{
    chm__smr_read_lock(); /* this call only: between calls the open count keeps things valid */
    struct bl_node *e = advance(as_iter(it));
    if (e == NULL) {
        chm__smr_read_unlock();
        return CHM_END;
    }
    if (key != NULL)
        *key = e->key;
    if (value != NULL)
        *value = atomic_load_explicit(&e->value, memory_order_acquire); /* as bl_get */
    chm__smr_read_unlock();
    return CHM_OK;
}

static void bl_iter_fini(chm_iter *it)
{
    chm__smr_iter_close(as_bl(as_iter(it)->base.m)->domain);
}

/* ---- self-check and statistics --------------------------------------------------------------- */

/* Check the bin @e that sits at index @idx of a table of @n bins; add its entries to *count. */
static int check_bin(struct bl_map *m, struct bl_node *e, size_t idx, size_t n, size_t *count,
                     size_t *longest, size_t *trees, size_t *tree_nodes)
{
    chm *cm = &m->base;
    if (e == NULL)
        return 0;
    if (atomic_load_explicit(&e->lock.word, memory_order_relaxed) != 0)
        return -11; /* a bin lock still held */
    if (e->hash == BL_RESERVED)
        return -10; /* a reservation left behind */
    if (e->hash == BL_TREEBIN) {
        struct bl_treebin *tb = bl_treebin_of(e);
        if (n < BL_MIN_TREEIFY_CAPACITY)
            return -12; /* a TreeBin in a table too small for one */
        size_t c;
        int rc = chm__bl_tree_check(cm, tb, &c);
        if (rc != 0)
            return rc;
        for (struct bl_node *x =
                 (struct bl_node *)atomic_load_explicit(&tb->first, memory_order_relaxed);
             x != NULL; x = atomic_load_explicit(&x->next, memory_order_relaxed)) {
            if (x->hash != spread(chm__hash(cm, x->key)))
                return -2; /* stale hash */
            if ((x->hash & (n - 1)) != idx)
                return -3; /* node in the wrong bin */
        }
        *count += c;
        (*trees)++;
        *tree_nodes += c;
        return 0;
    }
    if (bl_special(e->hash))
        return -4; /* a special node where a list was expected */
    size_t len = 0;
    for (struct bl_node *x = e; x != NULL;
         x = atomic_load_explicit(&x->next, memory_order_relaxed)) {
        if (bl_special(x->hash))
            return -4;
        if (x->hash != spread(chm__hash(cm, x->key)))
            return -2;
        if ((x->hash & (n - 1)) != idx)
            return -3;
        if (find(cm, e, x->hash, x->key) != x)
            return -5; /* duplicate key in a list */
        len++;
    }
    *count += len;
    if (len > *longest)
        *longest = len;
    return 0;
}

struct walk {
    size_t count, longest, trees, tree_nodes;
};

/* Walk every entry of a quiescent map: the table, and the next table of a paused resize. */
static int walk_map(struct bl_map *m, struct walk *w)
{
    /* Quiescent (validate, stats, tests): no concurrent writer, so orders do not matter; the
     * loads that lead to followed pointers are acquire all the same, as everywhere. */
    memset(w, 0, sizeof *w);
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire);
    struct bl_table *nt = atomic_load_explicit(&m->next_table, memory_order_acquire);
    if (t == NULL)
        return nt != NULL ? -6 : 0;
    for (size_t i = 0; i < t->n; i++) {
        struct bl_node *e = tab_at(t, i);
        int rc;
        if (e != NULL && e->hash == BL_MOVED) {
            if (nt == NULL || e != &nt->fwd)
                return -9; /* forwarding node to a table that is not the next one */
            if ((rc = check_bin(m, tab_at(nt, i), i, nt->n, &w->count, &w->longest, &w->trees,
                                &w->tree_nodes)) != 0 ||
                (rc = check_bin(m, tab_at(nt, i + t->n), i + t->n, nt->n, &w->count, &w->longest,
                                &w->trees, &w->tree_nodes)) != 0)
                return rc;
        } else {
            if (nt != NULL && (tab_at(nt, i) != NULL || tab_at(nt, i + t->n) != NULL))
                return -13; /* next table filled for a bin that did not move */
            if ((rc = check_bin(m, e, i, t->n, &w->count, &w->longest, &w->trees,
                                &w->tree_nodes)) != 0)
                return rc;
        }
    }
    return 0;
}

static int bl_validate(chm *cm)
{
    /* Quiescent: see walk_map. */
    struct bl_map *m = as_bl(cm);
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire);
    struct bl_table *nt = atomic_load_explicit(&m->next_table, memory_order_acquire);
    int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_relaxed);
    if (t != NULL) {
        if (nt == NULL && sc < 0)
            return -7; /* sizeCtl says resizing, nothing is */
        if (nt == NULL && atomic_load_explicit(&m->transfer_index, memory_order_relaxed) > 0)
            return -14; /* strides left to claim with no resize */
        if (nt == NULL && sc != (int64_t)(t->n - t->n / 4))
            return -15; /* sizeCtl is not the table's threshold (3/4 of its bins) */
        if (nt != NULL && (nt->n != 2 * t->n || sc != resize_stamp(t->n) ||
                           atomic_load_explicit(&m->transfer_index, memory_order_relaxed) <= 0))
            return -8; /* a next table without a paused resize */
    }
    struct walk w;
    int rc = walk_map(m, &w);
    if (rc != 0)
        return rc;
    if ((int64_t)w.count != sum_count(m))
        return -1; /* the counters disagree with the bins */
    unsigned nc = atomic_load_explicit(&m->ncells, memory_order_relaxed);
    if (atomic_load_explicit(&m->cells, memory_order_acquire) != NULL &&
        (nc < 2 || nc > m->max_cells || (nc & (nc - 1)) != 0))
        return -16; /* counter cells in use: not a power of two in [2, max_cells] */
    if (atomic_load_explicit(&m->cells_busy, memory_order_relaxed) != 0)
        return -16; /* cellsBusy still held */
    return 0;
}

static const char *bl_invariant(int code)
{
    switch (code) {
    case -1: return "the counters disagree with the bins";
    case -2: return "stale hash in a node";
    case -3: return "node in the wrong bin";
    case -4: return "a special node where a list node was expected";
    case -5: return "duplicate key in a list";
    case -6: return "a next table without a table";
    case -7: return "sizeCtl says resizing, nothing is";
    case -8: return "a next table without a paused resize";
    case -9: return "forwarding node to a table that is not the next one (forwarding left over)";
    case -10: return "a reservation node left behind";
    case -11: return "a bin lock still held";
    case -12: return "a TreeBin in a table too small for one";
    case -13: return "next table filled for a bin that did not move";
    case -14: return "strides left to claim with no resize";
    case -15: return "sizeCtl is not the table's threshold";
    case -16: return "counter cells malformed or cellsBusy held";
    case -40: return "tree: parent link";
    case -41: return "tree: left child link or hash order";
    case -42: return "tree: right child link or hash order";
    case -43: return "tree: red node with a red child";
    case -44: return "tree: key order on the left";
    case -45: return "tree: key order on the right";
    case -46: return "tree: black heights differ";
    case -47: return "tree: root has a parent or is red";
    case -48: return "tree: lockRoot still held";
    case -49: return "tree: prev link";
    case -50: return "tree: a list node the tree does not find";
    case -51: return "tree: list, tree and count disagree";
    default: return NULL;
    }
}

void chm__binlock_stats(chm *cm, struct chm__binlock_stats *out)
{
    /* Quiescent: see walk_map. */
    struct bl_map *m = as_bl(cm);
    memset(out, 0, sizeof *out);
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire);
    struct walk w;
    (void)walk_map(m, &w);
    out->table_bins = t != NULL ? t->n : 0;
    out->tree_bins = w.trees;
    out->tree_nodes = w.tree_nodes;
    out->longest_list = w.longest;
    out->treeifies = atomic_load_explicit(&m->st_treeify, memory_order_relaxed);
    out->untreeifies = atomic_load_explicit(&m->st_untreeify, memory_order_relaxed);
    out->resizes = atomic_load_explicit(&m->st_resize, memory_order_relaxed);
    out->resize_joins = atomic_load_explicit(&m->st_join, memory_order_relaxed);
    out->resize_pauses = atomic_load_explicit(&m->st_pause, memory_order_relaxed);
    out->counter_cells = atomic_load_explicit(&m->cells, memory_order_acquire) != NULL
                             ? atomic_load_explicit(&m->ncells, memory_order_relaxed)
                             : 0;
    out->resizing = atomic_load_explicit(&m->next_table, memory_order_acquire) != NULL;
}

/* ---- life cycle ------------------------------------------------------------------------------- */

/* Free a bin's entries now (chm_free: no reader, no callback pending). */
static void free_bin(struct bl_map *m, struct bl_node *e)
{
    if (e == NULL || e->hash == BL_MOVED)
        return;
    bool tree = e->hash == BL_TREEBIN;
    struct bl_node *x = e;
    if (tree)
        x = (struct bl_node *)atomic_load_explicit(&bl_treebin_of(e)->first, memory_order_relaxed);
    while (x != NULL) {
        struct bl_node *next = atomic_load_explicit(&x->next, memory_order_relaxed);
        free_node_full(&x->smr, m);
        x = next;
    }
    if (tree)
        chm__free(e);
}

static void bl_destroy(chm *cm)
{
    struct bl_map *m = as_bl(cm);
    /* Not concurrent with anything (chm_free's contract): acquire loads only by habit. */
    /* Retired objects first: their callbacks read the map's header, and once they are done no
     * value_free of this map runs on another thread while the live ones are freed here. */
    chm__smr_drain(m->domain);
    struct bl_table *tabs[2] = {atomic_load_explicit(&m->table, memory_order_acquire),
                                atomic_load_explicit(&m->next_table, memory_order_acquire)};
    for (int k = 0; k < 2; k++) {
        if (tabs[k] == NULL)
            continue;
        for (size_t i = 0; i < tabs[k]->n; i++)
            free_bin(m, tab_at(tabs[k], i));
        chm__free(tabs[k]);
    }
    chm__free(atomic_load_explicit(&m->cells, memory_order_acquire));
    chm__smr_domain_free(m->domain);
    chm__free(m);
}

static const struct chm_ops bl_ops = {
    .get = bl_get,
    .put = bl_put,
    .put_if_absent = bl_put_if_absent,
    .remove = bl_remove,
    .replace = bl_replace,
    .compute_if_absent = bl_compute_if_absent,
    .size = bl_size,
    .iter_init = bl_iter_init,
    .iter_next = bl_iter_next,
    .iter_fini = bl_iter_fini,
    .destroy = bl_destroy,
    .validate = bl_validate,
    .invariant = bl_invariant,
};

static chm *bl_create(const chm_backend *b, const chm_options *opt)
{
    size_t n = 0;
    if (opt->capacity != 0) {
        size_t cap = opt->capacity < opt->concurrency ? opt->concurrency : opt->capacity;
        if (cap > BL_MAX_CAPACITY / 2) {
            errno = ENOMEM;
            return NULL;
        }
        n = table_size_for(1 + cap + cap / 3); /* 1 + cap / 0.75 */
    }
    struct bl_map *m = chm__aligned_alloc(CHM_CACHELINE, sizeof *m);
    if (m == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    chm__header_init(&m->base, &bl_ops, b, opt);
    m->domain = chm__smr_domain_new(m);
    if (m->domain == NULL) {
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->ncpu = ncpu < 1 ? 1 : ncpu > (1L << 16) ? (1u << 16) : (unsigned)ncpu;
    m->max_cells = (unsigned)table_size_for(m->ncpu < 2 ? 2 : m->ncpu);
    m->cell_stride = opt->packed ? sizeof(int64_t) : CHM_CACHELINE;
    atomic_init(&m->size_ctl, (int64_t)n);
    if (n != 0 && init_table(m) == NULL) {
        chm__smr_domain_free(m->domain);
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    return &m->base;
}

const chm_backend chm_binlock = {
    .name = "binlock",
    .caps = CHM_CAP_THREAD_SAFE | CHM_CAP_STORE_FREE_GET | CHM_CAP_TREE_BINS |
            CHM_CAP_PADDING_SWITCH | CHM_CAP_DEFERRED_FREE,
    .create = bl_create,
};
