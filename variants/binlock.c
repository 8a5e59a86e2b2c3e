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
 *   chm_compute                (compute, computeIfPresent) the same reservation or bin lock, and
 *                              the function always runs under it, deciding keep / set / delete;
 *                              the node, TreeNode or value record a SET could need is allocated
 *                              first. A delete unlinks as remove does; an absent key kept turns
 *                              the reservation back into an empty bin.
 *   chm_remove_if              (replaceNode with cv, i.e. remove(key, value)) remove's path, the
 *                              node unlinked only if it holds the expected value.
 *   chm_clear                  (clear) each non-empty bin locked in turn and set empty, its nodes
 *                              retired, one addCount for all; a forwarded bin is followed into
 *                              the two bins it split into (after helping the transfer), so every
 *                              key present throughout is removed even while tables grow.
 *   chm_visit                  (get) the function runs on the value inside the read section,
 *                              which keeps the value from value_free meanwhile.
 *   chm_stats_get              sumCount; the (next) table's bins; bytes derived from the sizes,
 *                              the count and a striped byte count for what is not a plain node
 *                              (TreeNodes, TreeBins, string key copies); committed transfers.
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
 * Reclamation (src/smr.h). Retired, not freed: removed and cleared nodes (with their key copy
 * and value), originals of nodes cloned by a transfer or treeify (their key and value moved to
 * the copy), old TreeBins, reservation nodes, old tables (after the commit), and replaced values
 * when the map has a value_free. Counter cells live until chm_free.
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
 *   - chm_compute_if_absent and chm_compute: a call the function makes to write to the same map
 *     (any key; itself, or from a compute in another map: src/reentry.h keeps the thread's
 *     stack of them) returns CHM_EDEADLK, detected before any lock is touched (Java throws
 *     IllegalStateException("Recursive update") for the same bin, and may livelock or deadlock
 *     for others during a resize). chm_get, chm_size and iteration from inside work. The
 *     function runs outside the read section (its bin is held by the lock, which keeps the
 *     head and the table alive), so it may do anything else, including waiting for
 *     reclamation. As Java 9+, put_if_absent and compute_if_absent return lock-free when the
 *     bin's head holds the key. chm_compute allocates before its function runs (Java
 *     allocates the new node after it), so out of memory never loses a decision.
 *   - chm_clear walks bins by lineage (see bl_clear) instead of restarting at index 0 of the
 *     next table after a helpTransfer, which can miss keys of bins not yet moved.
 *   - chm_visit has no Java counterpart: get's lookup with a callback inside the read section
 *     (a garbage collector keeps a value alive for whoever holds it; here the section does).
 *   - Bin-lock waits are bounded (see "Bin locks"); Java's monitors wait for as long as it
 *     takes, which a garbage collector does not mind.
 *   - capacity: Java's 1 + capacity / 0.75 rounded up to a power of two; the table is created
 *     at chm_new when a capacity is given (so an impossible one fails there), lazily by
 *     initTable otherwise. `concurrency` is only a lower bound for a given capacity (Java's
 *     three-argument constructor).
 */
#include "binlock.h"
#include "pool.h"
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
    chm_pool *nodes;        /* plain nodes (node_mem_alloc); read-only after create */
    unsigned ncpu;
    unsigned max_cells; /* counter cells at most: ncpu rounded up to a power of two, >= 2 */
    size_t cell_stride; /* 64 (own cache line) or 8 (chm_options.packed) */
    size_t xcell_off;   /* where the byte cells start in the cell array (see xcell_at) */
    bool key_bytes;     /* keys are chm_keys_string: their stored copies count in xbytes */
    /* Read by every operation, written by resizes only. */
    alignas(CHM_CACHELINE) _Atomic(struct bl_table *) table;
    _Atomic(struct bl_table *) next_table;
    _Atomic int64_t size_ctl;
    /* Claimed by transfer workers (CAS). */
    alignas(CHM_CACHELINE) _Atomic int64_t transfer_index;
    /* The base counter, CASed by every uncontended writer: its own line. xbase is the base of
     * the byte count (add_xbytes), written only by writers whose nodes are not plain (tree
     * nodes, string keys): on the line such a writer's base CAS owns already. */
    alignas(CHM_CACHELINE) _Atomic int64_t base_count;
    _Atomic int64_t xbase;
    /* Counter cells (see fullAddCount): max_cells int64 counters in one 64-byte-aligned array,
     * cell_stride bytes apart: 64, so each has its own line (Java: @Contended), or 8 with
     * chm_options.packed, eight to a line, for the false-sharing benchmark. The byte cells
     * (add_xbytes) share the array: the second word of each padded cell's line, or (packed) a
     * second run of max_cells words after the counters, so packing leaves the counters' lines
     * as they were. */
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

/* Node memory: plain nodes come from the map's pool (src/pool.h: no malloc or free per write,
 * no malloc header, slabs back to the system at chm_free); TreeNodes, needed only by bins of
 * 8+ colliding keys, from malloc. A node's `tree` flag, set when its memory is allocated and
 * never changed, says which. NULL when out of memory. */
static struct bl_node *node_mem_alloc(struct bl_map *m, bool tree)
{
    struct bl_node *e =
        tree ? chm__malloc(sizeof(struct bl_tnode)) : chm__pool_alloc(m->nodes);
    if (e != NULL)
        e->tree = tree;
    return e;
}

static void node_mem_free(struct bl_map *m, struct bl_node *e)
{
    if (e->tree)
        chm__free(e);
    else
        chm__pool_put(m->nodes, e);
}

/* A removed node: it owned its key copy and value. */
static void free_node_full(chm_smr_node *n, void *owner)
{
    struct bl_node *e = (struct bl_node *)n;
    struct bl_map *m = owner;
    chm__key_release(&m->base, e->key);
    chm__value_free(&m->base, atomic_load_explicit(&e->value, memory_order_relaxed));
    node_mem_free(m, e);
}

/* A node whose key and value moved to a copy (a transfer's clone, a TreeNode): its memory is all
 * it owns. */
static void free_node_shell(chm_smr_node *n, void *owner)
{
    node_mem_free(owner, (struct bl_node *)n);
}

static inline void retire(struct bl_map *m, void *obj, chm_smr_free_fn *fn)
{
    chm__smr_retire(m->domain, (chm_smr_node *)obj, fn);
}

/* An old TreeBin, a reservation, a table: malloc'ed, the memory is all they own. */
#define free_shell chm__smr_free_plain

/* ---- nodes and tables --------------------------------------------------------------------- */

static void node_init(struct bl_node *e, uint64_t hash, uint64_t key, uint64_t value)
{
    e->hash = hash;
    e->key = key;
    atomic_store_explicit(&e->value, value, memory_order_relaxed);
    atomic_store_explicit(&e->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&e->lock.word, 0, memory_order_relaxed);
    e->tree = false;
}

/* A node (plain or, with @tree, a TreeNode) for a key being inserted: allocated and the key
 * copy made. NULL when out of memory. Published later by a release store. */
static struct bl_node *new_node(struct bl_map *m, uint64_t hash, uint64_t key, uint64_t value,
                                bool tree)
{
    struct bl_node *e = node_mem_alloc(m, tree);
    if (e == NULL)
        return NULL;
    uint64_t stored;
    if (!chm__key_retain(&m->base, key, &stored)) {
        node_mem_free(m, e);
        return NULL;
    }
    node_init(e, hash, stored, value);
    e->tree = tree;
    return e;
}

/* Undo new_node for a node that was never published. */
static void discard_node(struct bl_map *m, struct bl_node *e)
{
    if (e != NULL) {
        chm__key_release(&m->base, e->key);
        node_mem_free(m, e);
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

/* ---- bytes (chm_stats_get) -------------------------------------------------------------------
 * What the map holds is derived, not counted, wherever it can be: the map struct, the tables,
 * the cell array, and sizeof(struct bl_node) per entry (from the entry count). The rest --
 * xbytes -- is what entries x sizeof(struct bl_node) misses: the larger size of TreeNodes
 * (TNODE_EXTRA each), TreeBins, and with chm_keys_string the stored key copies (strlen + 1).
 * It changes only where such objects come and go (tree bins, string keys), so a map of integer
 * keys never writes it. It is striped like the count: a base word on the base counter's line
 * and one byte cell per counter cell, written with relaxed fetch_adds (a sum needs atomicity
 * only, as the count). */
#define TNODE_EXTRA ((int64_t)(sizeof(struct bl_tnode) - sizeof(struct bl_node)))
#define TREEBIN_BYTES ((int64_t)sizeof(struct bl_treebin))

static inline _Atomic int64_t *xcell_at(struct bl_map *m, unsigned char *cells, unsigned i)
{
    return (_Atomic int64_t *)(void *)(cells + m->xcell_off + (size_t)i * m->cell_stride);
}

/* The size of the counter cell array: the counters, and the byte cells in it (see bl_map). */
static inline size_t cells_bytes(const struct bl_map *m)
{
    size_t n = (size_t)m->max_cells * m->cell_stride;
    return m->cell_stride == CHM_CACHELINE ? n : 2 * n;
}

/* What node @e takes beyond sizeof(struct bl_node) (its node kind only; its key: key_bytes). */
static inline int64_t node_extra(const struct bl_node *e)
{
    return e->tree ? TNODE_EXTRA : 0;
}

/* The bytes of the stored copy of key @stored, when they are counted (chm_keys_string). */
static inline int64_t key_bytes(const struct bl_map *m, uint64_t stored)
{
    return chm_unlikely(m->key_bytes) ? (int64_t)strlen((const char *)(uintptr_t)stored) + 1 : 0;
}

/* What the entry in node @e adds to xbytes. */
static inline int64_t entry_xbytes(const struct bl_map *m, const struct bl_node *e)
{
    return node_extra(e) + key_bytes(m, e->key);
}

static uint32_t probe_init(void);

/* Add @x to xbytes: this thread's byte cell once there are cells, else the base word. */
static void add_xbytes(struct bl_map *m, int64_t x)
{
    if (x == 0)
        return;
    /* Acquire: pairs with the release store of cells in full_add_count (the zeroed array). */
    unsigned char *cells = atomic_load_explicit(&m->cells, memory_order_acquire);
    if (cells == NULL) {
        atomic_fetch_add_explicit(&m->xbase, x, memory_order_relaxed);
        return;
    }
    uint32_t h = bl_probe;
    if (h == 0)
        bl_probe = h = probe_init();
    unsigned n = atomic_load_explicit(&m->ncells, memory_order_relaxed); /* >= 2 with cells */
    atomic_fetch_add_explicit(xcell_at(m, cells, h & (n - 1)), x, memory_order_relaxed);
}

static int64_t sum_xbytes(struct bl_map *m)
{
    int64_t sum = atomic_load_explicit(&m->xbase, memory_order_relaxed);
    unsigned char *cells = atomic_load_explicit(&m->cells, memory_order_acquire); /* as above */
    if (cells != NULL) /* every byte cell: ncells may have grown since a writer read it */
        for (unsigned i = 0; i < m->max_cells; i++)
            sum += atomic_load_explicit(xcell_at(m, cells, i), memory_order_relaxed);
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
                size_t bytes = cells_bytes(m);
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

static void free_pool(struct bl_map *m, struct bl_node *pool)
{
    while (pool != NULL) {
        struct bl_node *next = atomic_load_explicit(&pool->next, memory_order_relaxed);
        node_mem_free(m, pool);
        pool = next;
    }
}

/* A chain of @count unpublished nodes (TreeNodes with @tree), linked through next; false
 * (nothing allocated) when out of memory. */
static bool alloc_pool(struct bl_map *m, struct bl_node **pool, size_t count, bool tree)
{
    *pool = NULL;
    for (size_t k = 0; k < count; k++) {
        struct bl_node *e = node_mem_alloc(m, tree);
        if (e == NULL) {
            free_pool(m, *pool);
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
    if (!alloc_pool(m, &pool, before, false))
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
     * this writer is in keeps them valid while the loop reads their links. A TreeNode original
     * (a list left by untreeify) has a plain clone: xbytes shrinks. */
    int64_t xb = 0;
    for (struct bl_node *p = f, *pn; p != last_run; p = pn) {
        pn = atomic_load_explicit(&p->next, memory_order_relaxed);
        xb -= node_extra(p);
        retire(m, p, free_node_shell);
    }
    add_xbytes(m, xb);
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
        if (!alloc_pool(m, &lpool, lc, ltree))
            return false;
        if (!alloc_pool(m, &hpool, hc, htree) ||
            (ltree && (ltb = chm__malloc(sizeof *ltb)) == NULL) ||
            (htree && (htb = chm__malloc(sizeof *htb)) == NULL)) {
            free_pool(m, lpool);
            free_pool(m, hpool);
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
            c->tree = lo ? ltree : htree;
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
        /* xbytes: the copies' kinds and TreeBins replace the originals' (keys moved). */
        int64_t xb = -TREEBIN_BYTES;
        for (struct bl_node *e = first, *en; e != NULL; e = en) {
            en = atomic_load_explicit(&e->next, memory_order_relaxed);
            xb -= node_extra(e);
            retire(m, e, free_node_shell);
        }
        retire(m, t, free_shell);
        if (lc > BL_UNTREEIFY_THRESHOLD)
            xb += (int64_t)lc * TNODE_EXTRA + TREEBIN_BYTES;
        if (hc > BL_UNTREEIFY_THRESHOLD)
            xb += (int64_t)hc * TNODE_EXTRA + TREEBIN_BYTES;
        add_xbytes(m, xb);
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
 * and continue in the next table. *@did_join (if not NULL) tells whether this thread ran
 * transfer, which may have left the read section (smr_breathe): then only @tab and the table
 * returned are known to be alive. */
static struct bl_table *help_transfer_joined(struct bl_map *m, struct bl_table *tab,
                                             struct bl_node *f, bool *did_join)
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
            if (did_join != NULL)
                *did_join = true;
            transfer(m, tab, nt);
            break;
        }
    }
    return nt;
}

static struct bl_table *help_transfer(struct bl_map *m, struct bl_table *tab, struct bl_node *f)
{
    return help_transfer_joined(m, tab, f, NULL);
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
        if (alloc_pool(m, &pool, count, true)) {
            if ((tb = chm__malloc(sizeof *tb)) == NULL)
                free_pool(m, pool);
        }
        if (tb != NULL) { /* else: no memory, the bin stays a list */
            struct bl_tnode *hd = NULL, *tl = NULL;
            for (struct bl_node *e = b; e != NULL;
                 e = atomic_load_explicit(&e->next, memory_order_relaxed)) {
                struct bl_tnode *p = bl_tnode_of(pool_take(&pool));
                node_init(&p->n, e->hash, e->key,
                          atomic_load_explicit(&e->value, memory_order_relaxed));
                p->n.tree = true;
                if ((p->prev = tl) == NULL)
                    hd = p;
                else
                    atomic_store_explicit(&tl->n.next, &p->n, memory_order_relaxed);
                tl = p;
            }
            chm__bl_treebin_init(&m->base, tb, hd);
            CHM_YIELD_POINT("bl.treeify.before_publish"); /* readers still on the list */
            set_tab_at(tab, index, &tb->n); /* the last write: publishes the whole TreeBin */
            int64_t xb = (int64_t)count * TNODE_EXTRA + TREEBIN_BYTES;
            for (struct bl_node *e = b, *en; e != NULL; e = en) {
                en = atomic_load_explicit(&e->next, memory_order_relaxed);
                xb -= node_extra(e);      /* a TreeNode left in the list by untreeify */
                retire(m, e, free_node_shell); /* key and value moved to the TreeNodes */
            }
            add_xbytes(m, xb);
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
    int64_t xb = 0; /* the inserted entry's xbytes */
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
            xb = entry_xbytes(m, node); /* before the CAS: ours alone until then */
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
                        xb = entry_xbytes(m, node);
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
                        xb = entry_xbytes(m, x);
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
    if (rc == CHM_OK) {
        add_count(m, 1, bin_count);
        add_xbytes(m, xb);
    }
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

/* ---- replaceNode (remove, remove_if, replace) ------------------------------------------------ */

/* Unlink the entry @e from bin @i of @t, whose lock the caller holds: from the list (after
 * @pred, NULL when @e heads it), or from the TreeBin @tb, which turns back into a list if that
 * leaves it too small (untreeify: the remaining TreeNodes are a list already). Then retire @e
 * with its key and value. Returns the change of xbytes. Shared by remove, remove_if, compute
 * (DELETE). */
static int64_t unlink_node(struct bl_map *m, struct bl_table *t, size_t i, struct bl_node *e,
                           struct bl_node *pred, struct bl_treebin *tb)
{
    int64_t xb = -entry_xbytes(m, e);
    if (tb == NULL) {
        /* Release stores: a reader that loads the link sees the successor whole; the unlinked
         * node keeps its own next for readers on it. */
        struct bl_node *nx = atomic_load_explicit(&e->next, memory_order_relaxed);
        CHM_YIELD_POINT("bl.remove.before_unlink"); /* readers walk past e */
        if (pred != NULL)
            atomic_store_explicit(&pred->next, nx, memory_order_release);
        else
            set_tab_at(t, i, nx);
    } else if (chm__bl_tree_remove(tb, bl_tnode_of(e))) {
        set_tab_at(t, i, (struct bl_node *)atomic_load_explicit(&tb->first, memory_order_relaxed));
        retire(m, tb, free_shell);
        atomic_fetch_add_explicit(&m->st_untreeify, 1, memory_order_relaxed);
        xb -= TREEBIN_BYTES;
    }
    CHM_YIELD_POINT("bl.remove.before_retire"); /* unlinked, readers on it */
    retire(m, e, free_node_full);
    return xb;
}

/* replaceNode(key, value, cv). @remove: unlink the key's node -- only if its value is
 * @expected when @cv (remove_if: Java's remove(key, value)); else (replace) swap @expected for
 * @desired. */
static int replace_node(struct bl_map *m, uint64_t key, bool remove, bool cv, uint64_t expected,
                        uint64_t desired, uint64_t *old)
{
    chm *cm = &m->base;
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    uint64_t h = spread(chm__hash(cm, key));
    chm_value_retire *rec = NULL;
    bool removed = false;
    int64_t xb = 0;
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
                } else if (cv && ev != expected) {
                    rc = CHM_EXISTS; /* remove_if: another value, nothing changes */
                } else {
                    if (old != NULL)
                        *old = ev;
                    xb = unlink_node(m, t, i, e, pred, tb);
                    removed = true;
                    rc = CHM_OK;
                }
            }
        }
        bl_lock_release(&f->lock);
        if (validated)
            break;
    }
    if (removed) {
        add_count(m, -1, -1);
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    chm__free(rec);
    return rc;
}

static int bl_remove(chm *cm, uint64_t key, uint64_t *old)
{
    return replace_node(as_bl(cm), key, true, false, 0, 0, old);
}

/* chm_remove_if: Java's remove(key, value), i.e. replaceNode(key, null, value): under the bin
 * lock, unlink the node only if it holds @expected. The node goes as in chm_remove (@expected
 * to value_free a grace period later, with the key). Linearizes at the unlink's store on
 * success; a failure, where chm_get would: the acquire load of an empty bin, or the value read
 * under the bin lock (whose acquire orders it after the store that wrote the value). */
static int bl_remove_if(chm *cm, uint64_t key, uint64_t expected)
{
    return replace_node(as_bl(cm), key, true, true, expected, 0, NULL);
}

static int bl_replace(chm *cm, uint64_t key, uint64_t expected, uint64_t desired)
{
    return replace_node(as_bl(cm), key, false, false, expected, desired, NULL);
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
    int64_t xb = 0; /* the inserted entry's xbytes */
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
                xb = entry_xbytes(m, node);
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
                        xb = entry_xbytes(m, node);
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
                        xb = entry_xbytes(m, x);
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
    if (inserted) {
        add_count(m, 1, bin_count);
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    discard_node(m, node);
    chm__free(res); /* never published */
    if (rc >= 0 && value != NULL)
        *value = v;
    return rc;
}

/* ---- compute (Java 8's compute and computeIfPresent) ------------------------------------------ */

/* Run chm_compute's function as run_compute runs compute_if_absent's: on the thread's compute
 * stack (nested writes to this map return CHM_EDEADLK), outside the read section while the
 * caller holds the bin's lock or its reservation -- which keeps the bin's nodes, the head and
 * the table alive, since unlinking, treeifying, moving a bin and committing a transfer all take
 * that lock. */
static chm_compute_action run_update(const chm *cm, chm_update_fn *fn, uint64_t key, bool present,
                                     uint64_t old, uint64_t *value, void *arg)
{
    chm__smr_read_unlock();
    chm_compute_action a =
        chm__reentry_update(cm, CHM__HOLD_PART, fn, key, present, old, value, arg);
    chm__smr_read_lock();
    return a;
}

/* Apply the decision @a on the present entry @e (value @old) of bin @i of @t, locked by the
 * caller (@pred, @tb: as unlink_node). SET of another value: the value is swapped and @old
 * retired through the reserved *@rec; SET of @old itself or KEEP: nothing changes and *@v is
 * @old; DELETE: unlinked and retired as chm_remove does (*@delta -1). Returns CHM_OK (present
 * after) or CHM_NOTFOUND (deleted). */
static int apply_present(struct bl_map *m, struct bl_table *t, size_t i, struct bl_node *e,
                         struct bl_node *pred, struct bl_treebin *tb, uint64_t old,
                         chm_compute_action a, uint64_t *v, chm_value_retire **rec, int64_t *xb,
                         int *delta)
{
    if (a == CHM_COMPUTE_DELETE) {
        *xb = unlink_node(m, t, i, e, pred, tb);
        *delta = -1;
        return CHM_NOTFOUND;
    }
    if (a == CHM_COMPUTE_SET && *v != old) {
        /* Release: pairs with the acquire loads of the value (as put). This store is the
         * compute's linearization point. */
        atomic_store_explicit(&e->value, *v, memory_order_release);
        chm__value_retire(&m->base, m->domain, rec, old);
    } else {
        *v = old; /* KEEP, or a SET of the value it holds: a KEEP (no value_free) */
    }
    return CHM_OK;
}

/*
 * compute: Java 8's compute, with the function deciding keep / set / delete (computeIfPresent is
 * a function that keeps an absent key). As compute_if_absent: an empty bin is reserved by CAS
 * with a locked ReservationNode while the function runs (readers see the key absent; writers
 * wait on its lock); any other bin is locked at its head, and the function runs under that
 * lock. The function always runs, once, holding the bin -- so racing computes of one key apply
 * one after another -- and outside the read section (run_update).
 *
 * Allocation before the function: whatever its SET could need, once the bin's state is known
 * under the lock -- a node for an absent key (a TreeNode in a TreeBin; with the reservation, the
 * node is allocated before the CAS) and, for a present key on a map with value_free, the value's
 * retire record. So CHM_ENOMEM always means the function did not run and nothing changed;
 * unused reservations are freed at the end. What can fail after it (a resize's table, counter
 * cells, treeify) is absorbed, as in put.
 *
 * Linearization point: the store that publishes the decision -- the new head or tree link (an
 * insert), the value store (a SET of another value), the unlink store (DELETE) -- or, for a KEEP
 * (a SET of the same value, a DELETE of an absent key), the moment the function's view was read:
 * the bin lock's acquisition, or the reservation's CAS into the empty bin.
 */
static int bl_compute(chm *cm, uint64_t key, chm_update_fn *fn, void *arg, uint64_t *result)
{
    struct bl_map *m = as_bl(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    uint64_t h = spread(chm__hash(cm, key));
    /* Reservations, each allocated once and kept across retries: the plain node, the TreeNode,
     * the ReservationNode, the value's retire record. */
    struct bl_node *node = NULL, *tnode = NULL, *res = NULL;
    chm_value_retire *rec = NULL;
    uint64_t v = 0;
    long bin_count = 0;
    int delta = 0;  /* the entry count's change */
    int64_t xb = 0; /* xbytes' change */
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
            /* Both allocations first: after the CAS nothing may fail (as compute_if_absent). */
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
            /* Release: as compute_if_absent's reservation. */
            if (atomic_compare_exchange_strong_explicit(bin_at(t, i), &f, res, memory_order_release,
                                                        memory_order_relaxed)) {
                if (run_update(cm, fn, key, false, 0, &v, arg) == CHM_COMPUTE_SET) {
                    atomic_store_explicit(&node->value, v, memory_order_relaxed);
                    xb = entry_xbytes(m, node);
                    set_tab_at(t, i, node); /* publishes the node and its value */
                    node = NULL;
                    delta = 1;
                    rc = CHM_OK;
                } else {
                    set_tab_at(t, i, NULL); /* the bin is empty again (Java: setTabAt null) */
                    rc = CHM_NOTFOUND;
                }
                bl_lock_release(&res->lock); /* waiters see a new head and retry */
                retire(m, res, free_shell);
                res = NULL;
                bin_count = 1;
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
                for (struct bl_node *e = f, *pred = NULL;; ++bin_count) {
                    if (e->hash == h && chm__key_equal(cm, e->key, key)) {
                        uint64_t old = atomic_load_explicit(&e->value, memory_order_relaxed);
                        if (!chm__value_retire_reserve(cm, &rec)) {
                            rc = CHM_ENOMEM; /* before the function: it does not run */
                            break;
                        }
                        chm_compute_action a = run_update(cm, fn, key, true, old, &v, arg);
                        rc = apply_present(m, t, i, e, pred, NULL, old, a, &v, &rec, &xb, &delta);
                        break;
                    }
                    struct bl_node *nx = atomic_load_explicit(&e->next, memory_order_relaxed);
                    if (nx == NULL) { /* absent: a new node would head the bin */
                        if (node == NULL && (node = new_node(m, h, key, 0, false)) == NULL) {
                            rc = CHM_ENOMEM;
                            break;
                        }
                        if (run_update(cm, fn, key, false, 0, &v, arg) == CHM_COMPUTE_SET) {
                            atomic_store_explicit(&node->value, v, memory_order_relaxed);
                            atomic_store_explicit(&node->next, f, memory_order_relaxed);
                            xb = entry_xbytes(m, node);
                            set_tab_at(t, i, node); /* the critical section's last write */
                            node = NULL;
                            delta = 1;
                            rc = CHM_OK;
                        } else {
                            rc = CHM_NOTFOUND;
                        }
                        break;
                    }
                    pred = e;
                    e = nx;
                }
            } else if (fh == BL_TREEBIN) {
                done = true;
                bin_count = 2;
                struct bl_treebin *tb = bl_treebin_of(f);
                struct bl_tnode *p = chm__bl_tree_lookup(cm, tb, h, key);
                if (p != NULL) {
                    uint64_t old = atomic_load_explicit(&p->n.value, memory_order_relaxed);
                    if (!chm__value_retire_reserve(cm, &rec)) {
                        rc = CHM_ENOMEM;
                    } else {
                        chm_compute_action a = run_update(cm, fn, key, true, old, &v, arg);
                        rc = apply_present(m, t, i, &p->n, NULL, tb, old, a, &v, &rec, &xb, &delta);
                    }
                } else if (tnode == NULL && (tnode = new_node(m, h, key, 0, true)) == NULL) {
                    rc = CHM_ENOMEM;
                } else if (run_update(cm, fn, key, false, 0, &v, arg) == CHM_COMPUTE_SET) {
                    atomic_store_explicit(&tnode->value, v, memory_order_relaxed);
                    xb = entry_xbytes(m, tnode);
                    chm__bl_tree_insert(cm, tb, bl_tnode_of(tnode)); /* publishes (release) */
                    tnode = NULL;
                    delta = 1;
                    rc = CHM_OK;
                } else {
                    rc = CHM_NOTFOUND;
                }
            }
            /* else a ReservationNode: its compute finished before we got its lock; retry. */
        }
        bl_lock_release(&f->lock);
        if (done) {
            if (bin_count >= BL_TREEIFY_THRESHOLD && rc >= 0) /* as put_val (Java) */
                treeify_bin(m, t, i);
            break;
        }
    }
    if (delta != 0) {
        add_count(m, delta, delta > 0 ? bin_count : -1); /* addCount: may start a resize */
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    discard_node(m, node); /* reservations the decision did not use */
    discard_node(m, tnode);
    chm__free(res);
    chm__free(rec);
    if (rc == CHM_OK && result != NULL)
        *result = v;
    return rc;
}

/* ---- clear ------------------------------------------------------------------------------------ */

struct clear_tally {
    int64_t removed; /* entries unlinked */
    int64_t xb;      /* xbytes' change */
    bool may_help;   /* help a transfer at the next forwarding node (once per lineage) */
};

/*
 * Empty bin @i of @t: lock its head, re-check it, set the bin to NULL and retire every node
 * (with its key and value: free_node_full) and a TreeBin. A forwarded bin is emptied in the
 * next table: the two bins it split into, complete there once the forwarding node is seen
 * (recursively, through later resizes). Returns false when this thread left its read section
 * meanwhile -- a bin lock's holder outlasted the wait's patience (smr_breathe), or it joined a
 * transfer, which may breathe -- so that every table pointer its callers hold may be stale:
 * the caller starts the bin's lineage again from the current table.
 */
static bool clear_bin(struct bl_map *m, struct bl_table *t, size_t i, struct clear_tally *c)
{
    for (;;) {
        struct bl_node *f = tab_at(t, i);
        if (f == NULL)
            return true;
        if (f->hash == BL_MOVED) {
            struct bl_table *nt = bl_fwd_table(f);
            bool joined = false;
            if (c->may_help) {
                c->may_help = false;
                (void)help_transfer_joined(m, t, f, &joined);
                if (joined)
                    return false;
            }
            /* Both halves were in nt before the forwarding node was published (release, read
             * by tab_at's acquire); nt, reached in this read section, stays valid in it. */
            return clear_bin(m, nt, i, c) && clear_bin(m, nt, i + t->n, c);
        }
        if (!bl_lock_acquire(&f->lock)) {
            smr_breathe(); /* as in put_val: t and f may be gone now */
            return false;
        }
        bool cleared = false;
        /* Relaxed: as in transfer. A ReservationNode is never still the head once its lock is
         * ours (see transfer); were it, the bin would be retried. */
        if (atomic_load_explicit(bin_at(t, i), memory_order_relaxed) == f &&
            f->hash != BL_RESERVED) {
            struct bl_node *e = f;
            if (f->hash == BL_TREEBIN)
                e = (struct bl_node *)atomic_load_explicit(&bl_treebin_of(f)->first,
                                                           memory_order_relaxed);
            /* Release (set_tab_at): the empty bin. Readers already on the nodes walk on through
             * their frozen links (retired, not freed: they are in read sections); writers
             * waiting on f's lock find another head and retry. */
            set_tab_at(t, i, NULL);
            for (struct bl_node *en; e != NULL; e = en) {
                en = atomic_load_explicit(&e->next, memory_order_relaxed);
                c->removed++;
                c->xb -= entry_xbytes(m, e);
                retire(m, e, free_node_full);
            }
            if (f->hash == BL_TREEBIN) {
                c->xb -= TREEBIN_BYTES;
                retire(m, f, free_shell);
            }
            cleared = true;
        }
        bl_lock_release(&f->lock);
        if (cleared)
            return true;
    }
}

/*
 * clear: Java 8's clear() -- lock each non-empty bin in turn, empty it, one addCount for all --
 * with two changes for the contract's "every key present for the whole call is removed":
 *   - Java restarts from index 0 of the next table after helping a transfer, and so misses the
 *     keys of bins not yet moved (they arrive in bins it has passed). Here the walk goes by
 *     *lineage*: bins of the first table read, n0 of them, in order; lineage b is every bin of
 *     the current table whose index is b modulo n0 (tables only double, so a key with hash h
 *     is always in lineage h mod n0), and a forwarded bin is followed into the two bins it
 *     split into (clear_bin), which the transfer completed before forwarding it.
 *   - a wait that leaves the read section (a bin lock held by a long compute function, or
 *     joining a transfer: see clear_bin) makes every table pointer stale: the lineage starts
 *     again from the current table. A lineage joins a transfer at most once (Java helps at
 *     every forwarding node; here a paused transfer that cannot allocate would bring it back
 *     forever).
 * Keys put meanwhile may survive (in a bin already emptied). Never allocates; the table stays.
 * Each bin's NULL store is the linearization point of its keys' removal.
 */
static int bl_clear(chm *cm)
{
    struct bl_map *m = as_bl(cm);
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK; /* from a compute or visit function on this map */
    struct clear_tally c = {0, 0, true};
    chm__smr_read_lock();
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire); /* as bl_get */
    size_t n0 = t != NULL ? t->n : 0;
    for (size_t b = 0; b < n0;) {
        bool ok = true;
        for (size_t j = b; ok && j < t->n; j += n0)
            ok = clear_bin(m, t, j, &c);
        if (ok) {
            b++;
            c.may_help = true;
        }
        /* Acquire: as bl_get. The current table: a multiple of n0 bins. */
        t = atomic_load_explicit(&m->table, memory_order_acquire);
    }
    if (c.removed != 0) {
        add_count(m, -c.removed, -1);
        add_xbytes(m, c.xb);
    }
    chm__smr_read_unlock();
    return CHM_OK;
}

/* ---- visit ------------------------------------------------------------------------------------ */

/* visit: chm_get with the function run on the value inside the read section, so that a value
 * replaced or removed meanwhile reaches value_free only after the function returns: its retire
 * record (or node) is retired after the store that replaced (or unlinked) it, which follows our
 * load, so its grace period waits for this section. Nothing is locked: the function may call
 * chm_get, chm_visit and chm_size of this map (they only nest the section); a write returns
 * CHM_EDEADLK (CHM__HOLD_READ on the thread's stack: a writer may wait for a grace period).
 * Linearizes at the value's acquire load, as chm_get. */
static int bl_visit(chm *cm, uint64_t key, chm_visit_fn *fn, void *arg)
{
    struct bl_map *m = as_bl(cm);
    uint64_t h = spread(chm__hash(cm, key));
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire); /* as bl_get */
    if (t != NULL) {
        struct bl_node *e = find(cm, tab_at(t, h & (t->n - 1)), h, key);
        if (e != NULL) {
            /* Acquire: as bl_get; what a pointer value points to is visible to fn. */
            uint64_t v = atomic_load_explicit(&e->value, memory_order_acquire);
            chm__reentry_visit(cm, fn, key, v, arg);
            rc = CHM_OK;
        }
    }
    chm__smr_read_unlock();
    return rc;
}

/* ---- stats ------------------------------------------------------------------------------------ */

static size_t table_bytes(const struct bl_table *t)
{
    return t != NULL ? sizeof *t + t->n * sizeof t->bins[0] : 0;
}

/*
 * stats: read without stopping writers (relaxed counters, one read section for the tables).
 *   entries  sumCount, as chm_size;
 *   buckets  the bins of nextTable during a transfer (running or paused), else of the table;
 *   bytes    the map struct, the table and nextTable, the counter cell array, entries x
 *            sizeof(struct bl_node), and xbytes: the extra size of TreeNodes, the TreeBins, and
 *            with chm_keys_string the stored key copies (strlen + 1). Not counted: the SMR
 *            domain (smr.c's), objects retired and not yet freed (see pending), a compute's
 *            ReservationNode, key copies made by other keyops' retain (their size is unknown),
 *            what malloc rounds up, and the node pool's free nodes (its slabs keep what the
 *            map once held: bytes counts the live entries' nodes). Exact when quiescent;
 *   resizes  transfers committed since chm_new (a pause is not one);
 *   pending  chm__smr_pending of the map's domain.
 */
static void bl_stats(chm *cm, chm_stats *st)
{
    struct bl_map *m = as_bl(cm);
    int64_t n = sum_count(m);
    size_t entries = n < 0 ? 0 : (size_t)n; /* transiently negative while counts race */
    int64_t xb = sum_xbytes(m);
    chm__smr_read_lock();
    /* Acquire: pair with the publications of the tables (initTable, commit: release; the
     * resize start's seq_cst store of nextTable); their sizes are read in this section. */
    struct bl_table *t = atomic_load_explicit(&m->table, memory_order_acquire);
    struct bl_table *nt = atomic_load_explicit(&m->next_table, memory_order_acquire);
    size_t bytes = sizeof *m + table_bytes(t) + table_bytes(nt);
    st->buckets = nt != NULL ? nt->n : t != NULL ? t->n : 0;
    chm__smr_read_unlock();
    if (atomic_load_explicit(&m->cells, memory_order_acquire) != NULL) /* as sum_count */
        bytes += cells_bytes(m);
    bytes += entries * sizeof(struct bl_node);
    if (xb > 0)
        bytes += (size_t)xb;
    st->entries = entries;
    st->bytes = bytes;
    st->resizes = (size_t)atomic_load_explicit(&m->st_resize, memory_order_relaxed);
    st->pending = chm__smr_pending(m->domain);
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

struct walk {
    size_t count, longest, trees, tree_nodes;
    int64_t xbytes; /* what xbytes should be (see add_xbytes) */
};

/* Check the bin @e that sits at index @idx of a table of @n bins; add it to *@w. */
static int check_bin(struct bl_map *m, struct bl_node *e, size_t idx, size_t n, struct walk *w)
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
            if (!x->tree)
                return -17; /* a plain node in a TreeBin */
            w->xbytes += entry_xbytes(m, x);
        }
        w->xbytes += TREEBIN_BYTES;
        w->count += c;
        w->trees++;
        w->tree_nodes += c;
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
        w->xbytes += entry_xbytes(m, x);
        len++;
    }
    w->count += len;
    if (len > w->longest)
        w->longest = len;
    return 0;
}

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
            if ((rc = check_bin(m, tab_at(nt, i), i, nt->n, w)) != 0 ||
                (rc = check_bin(m, tab_at(nt, i + t->n), i + t->n, nt->n, w)) != 0)
                return rc;
        } else {
            if (nt != NULL && (tab_at(nt, i) != NULL || tab_at(nt, i + t->n) != NULL))
                return -13; /* next table filled for a bin that did not move */
            if ((rc = check_bin(m, e, i, t->n, w)) != 0)
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
    if (w.xbytes != sum_xbytes(m))
        return -18; /* the byte count (xbytes) disagrees with the bins */
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
    case -17: return "a plain node in a TreeBin";
    case -18: return "the byte count (xbytes) disagrees with the bins";
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
    chm__pool_free(m->nodes); /* after the drain: free_fns put nodes back */
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
    .compute = bl_compute,
    .remove_if = bl_remove_if,
    .clear = bl_clear,
    .visit = bl_visit,
    .stats = bl_stats,
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
    /* One pool stripe per expected writer (chm_options.concurrency), up to the pool's 64. */
    m->nodes = chm__pool_new(sizeof(struct bl_node), opt->concurrency);
    if (m->domain == NULL || m->nodes == NULL) {
        chm__pool_free(m->nodes);
        chm__smr_domain_free(m->domain);
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->ncpu = ncpu < 1 ? 1 : ncpu > (1L << 16) ? (1u << 16) : (unsigned)ncpu;
    m->max_cells = (unsigned)table_size_for(m->ncpu < 2 ? 2 : m->ncpu);
    m->cell_stride = opt->packed ? sizeof(int64_t) : CHM_CACHELINE;
    /* The byte cells: the second word of a padded cell's line, or after the packed counters. */
    m->xcell_off = opt->packed ? (size_t)m->max_cells * sizeof(int64_t) : sizeof(int64_t);
    m->key_bytes = opt->keys == &chm_keys_string;
    atomic_init(&m->size_ctl, (int64_t)n);
    if (n != 0 && init_table(m) == NULL) {
        chm__smr_domain_free(m->domain);
        chm__pool_free(m->nodes);
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
