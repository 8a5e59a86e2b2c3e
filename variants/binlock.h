/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock.h - internals of chm_binlock (Java 8's ConcurrentHashMap), shared by its files.
 * Internal: not installed.
 *
 *   binlock.c          HOW IT WORKS (the design, the map to Java 8, every deliberate
 *                      difference); the operations, then the helpers only they use
 *   binlock_node.c     nodes: their memory (the map's pool, malloc for TreeNodes), the
 *                      reclamation callbacks, chains of spare nodes, the bin lock's slow path
 *   binlock_count.c    counting: the base counter and counter cells (addCount, sumCount), and the
 *                      byte count behind chm_stats_get
 *   binlock_resize.c   sizeCtl: initTable, addCount's resize trigger, transfer, helpTransfer,
 *                      tryPresize
 *   binlock_tree.c     TreeBin: the red-black tree of a bin of colliding keys
 *   binlock_check.c    the self-check (chm__validate), its invariant table, the test statistics
 *
 * This header: the types (nodes, tables, the map), the named memory orderings every file uses
 * (each says once what it pairs with), and the functions one file calls in another (chm__bl_*,
 * hidden). The statistics call is the one thing tests use (tests/test_binlock.c).
 */
#ifndef CHM_BINLOCK_H
#define CHM_BINLOCK_H

#include "mutex.h"
#include "pool.h"
#include "smr.h"
#include "torture.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- statistics (for tests and curiosity; quiescent reads) ---------------------------------- */

struct chm__binlock_stats {
    size_t table_bins;      /* bins of the current table (0: not created yet) */
    size_t tree_bins;       /* bins of the current table that are TreeBins now */
    size_t tree_nodes;      /* entries held in those TreeBins */
    size_t longest_list;    /* longest plain list of the current table */
    uint64_t treeifies;     /* treeifyBin turned a list into a TreeBin */
    uint64_t untreeifies;   /* a TreeBin became a list again (remove or transfer split) */
    uint64_t resizes;       /* transfers committed (table doubled) */
    uint64_t resize_joins;  /* threads that joined a running transfer (helpTransfer, addCount) */
    uint64_t resize_pauses; /* transfers paused by an allocation failure, resumed later */
    uint64_t sacks;         /* sacks of cloned originals transfers retired (binlock_resize.c) */
    uint64_t sacked_shells; /* the originals those sacks held */
    uint64_t lone_shells;   /* originals retired alone (no memory for a sack) */
    size_t pool_nodes;      /* plain nodes out of the map's pool: in the map, or retired and
                               not yet back */
    size_t tnodes;          /* entries whose node is a TreeNode (malloc'ed): in TreeBins, or in
                               lists that a TreeBin left (untreeified) */
    unsigned counter_cells; /* counter cells in use (0: only the base counter so far) */
    bool resizing;          /* a transfer is running or paused (nextTable set) */
};

/* Fill @out for a binlock map. Not concurrent with writes (counts are walked). binlock_check.c */
CHM_HIDDEN void chm__binlock_stats(chm *m, struct chm__binlock_stats *out);

/* Test hook: the calling thread's counter-cell probe (ThreadLocalRandom.getProbe), drawn first
 * if it has none. binlock_count.c */
CHM_HIDDEN uint32_t chm__binlock_probe(void);

/* Test hook: the next @n bin splits of any transfer fail as if their clones could not be
 * allocated (0 = none; process-wide), so tests can drive a transfer into its pause.
 * binlock_resize.c */
CHM_HIDDEN void chm__binlock_fail_splits(unsigned n);

/* ---- node kinds: Java's negative hashes -------------------------------------------------------
 * A node's hash is 32 bits, as Java's int hash: the low 31 bits of the key's hash for a real
 * node (top bit clear), and a value with the top bit set for a special node (MOVED, TREEBIN,
 * RESERVED, as Java's -1, -2, -3), so no key or value word is ever taken as a marker: all 2^64
 * keys and values stay legal. 31 bits index up to 2^31 bins (BL_MAX_CAPACITY); the hash shares
 * its 8-byte word with the bin lock, which keeps a node at 40 bytes (struct bl_node). */
typedef uint32_t bl_hash_t;
#define BL_HASH_BITS ((bl_hash_t)0x7fffffffu)
#define BL_MOVED ((bl_hash_t)0xffffffffu)    /* ForwardingNode: the bin moved to the next table */
#define BL_TREEBIN ((bl_hash_t)0xfffffffeu)  /* TreeBin: the bin is a red-black tree */
#define BL_RESERVED ((bl_hash_t)0xfffffffdu) /* ReservationNode: compute_if_absent, empty bin */

_Static_assert(BL_MOVED > BL_TREEBIN && BL_TREEBIN > BL_RESERVED && BL_RESERVED > BL_HASH_BITS,
               "the kinds are the three largest hashes, above every real one (bl_special)");

static inline bool bl_special(bl_hash_t hash)
{
    return hash >= BL_RESERVED; /* the three kinds; one compare with memory on the read path */
}

/* spread(h): a chm_keyops hash folded to 32 bits, top bit cleared (a real node's hash; see
 * above). Java folds because a user's hashCode() may be weak in its high bits; so may a
 * chm_keyops hash. */
static inline bl_hash_t spread(uint64_t h)
{
    return (bl_hash_t)(h ^ (h >> 32)) & BL_HASH_BITS;
}

/* A key's node hash. Integer keys skip the fold: chm__hash_u64 is strong in every bit
 * (chm_internal.h), so its low 31 bits are taken as they are. */
static inline bl_hash_t bl_hash_u64(const chm *cm, uint64_t key)
{
    return (bl_hash_t)chm__hash_u64(key, cm->seed, cm->hash_mul) & BL_HASH_BITS;
}

static inline bl_hash_t bl_hash(const chm *cm, uint64_t key)
{
    if (chm_likely(cm->int_keys))
        return bl_hash_u64(cm, key);
    return spread(cm->keys->hash(key, cm->seed));
}

#define BL_TREEIFY_THRESHOLD 8   /* a list with this many nodes (before the insert) is treeified */
#define BL_UNTREEIFY_THRESHOLD 6 /* a transfer split half this small becomes a list */
#define BL_MIN_TREEIFY_CAPACITY 64

#define BL_DEFAULT_CAPACITY 16
#define BL_MAX_CAPACITY ((size_t)1 << 31) /* what a 31-bit hash can index (Java: 1 << 30) */

_Static_assert(sizeof(size_t) == 8, "binlock assumes a 64-bit size_t");

/* ---- the bin lock ----------------------------------------------------------------------------
 * The library's 4-byte futex mutex (src/mutex.h: one CAS to lock, one exchange to unlock, a
 * waiter spins briefly, then sleeps). It lives in the node that heads the bin (Java:
 * synchronized on the first node), so it is reclamation-protected memory: see binlock.c, "Bin
 * locks". A waiter is patient for about BL_LOCK_PATIENCE_NS of sleep at a time: if the holder
 * is still inside then (a compute function runs under the lock), the acquisition fails and the
 * caller leaves its read section for a moment (smr_breathe, so grace periods are never held up
 * for long) and starts over. */
typedef chm__mutex bl_lock;

#define BL_LOCK_PATIENCE_NS 1000000 /* 1 ms */

/* Lock @l; false when the holder kept it longer than the waiter's patience (nothing held). */
static inline bool bl_lock_acquire(bl_lock *l)
{
    return chm__mutex_lock_patient(l, BL_LOCK_PATIENCE_NS);
}

static inline void bl_lock_release(bl_lock *l)
{
    chm__mutex_unlock(l);
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

/* ---- nodes and tables ------------------------------------------------------------------------ */

/* Java's Node: immutable hash and key, atomic value and next, the lock: 40 bytes. The first word
 * is the reclamation record (src/smr.h) from the node's retire on; until then it holds the
 * node's memory kind (node_is_tree: a TreeNode, malloc'ed, or a plain node from the map's pool),
 * which nothing reads after the retire: the retire chooses the free_fn by it (retire_node).
 * The hash shares a word with the lock (Java: an int hash, the monitor in the object header). */
struct bl_node {
    chm_smr_node smr;               /* the memory kind while live, the record once retired */
    bl_hash_t hash;                 /* immutable: bl_hash(key), or a special kind */
    bl_lock lock;                   /* the bin lock while this node heads its bin */
    uint64_t key;                   /* immutable: the stored copy (unused in special nodes) */
    _Atomic uint64_t value;         /* release store under the bin lock, acquire load */
    _Atomic(struct bl_node *) next; /* release store under the bin lock, acquire load */
};
_Static_assert(sizeof(struct bl_node) == 40, "a node is five words (the pool's object size)");
_Static_assert(offsetof(struct bl_node, smr) == 0, "retire() passes a node as its record");

#define BL_NODE_TREE ((uintptr_t)1) /* smr.link of a live TreeNode (a plain node's is 0) */

/* Whether @e's memory is a TreeNode's (malloc) rather than a plain node's (the pool). Read only
 * by the thread that owns @e's memory at that point: its allocator, a writer holding the bin
 * lock, or chm_free -- never after @e is retired (the record has taken the word). */
static inline bool node_is_tree(const struct bl_node *e)
{
    return e->smr.link == BL_NODE_TREE;
}

static inline void node_set_tree(struct bl_node *e, bool tree)
{
    e->smr.link = tree ? BL_NODE_TREE : 0;
}

/* Java's TreeNode: a Node (so the `first/next` list is an ordinary list of nodes) plus the
 * red-black links. left/right are read by lock-free readers and so are atomic; parent, prev and
 * red are touched only under the bin lock. */
struct bl_tnode {
    struct bl_node n;
    _Atomic(struct bl_tnode *) left;
    _Atomic(struct bl_tnode *) right;
    struct bl_tnode *parent;
    struct bl_tnode *prev; /* the `first/next` list's back link, for unlinking */
    bool red;
};

/* Java's TreeBin: the special node (hash TREEBIN) that heads a bin holding a red-black tree; its
 * embedded node's lock is the bin lock. lock_state is the reader/writer word (see
 * binlock_tree.c: a sequence count, odd while the writer restructures the tree). */
struct bl_treebin {
    struct bl_node n;
    _Atomic(struct bl_tnode *) root;
    _Atomic(struct bl_tnode *) first;
    _Atomic uint32_t lock_state;
    _Atomic size_t count; /* nodes in the tree: a step bound for optimistic readers */
};

/* A table of bins. `fwd` is the ForwardingNode that the *previous* table's bins point to once
 * moved here (Java: new ForwardingNode(nextTab)); embedding it makes nextTable the container of
 * the forwarding node and costs no allocation during a transfer. */
struct bl_table {
    chm_smr_node smr;
    size_t n; /* number of bins, a power of two */
    struct bl_node fwd;
    _Atomic(struct bl_node *) bins[];
};

static inline struct bl_table *bl_fwd_table(struct bl_node *fwd)
{
    return (struct bl_table *)(void *)((char *)fwd - offsetof(struct bl_table, fwd));
}

static inline struct bl_tnode *bl_tnode_of(struct bl_node *n)
{
    return (struct bl_tnode *)(void *)n;
}

static inline struct bl_treebin *bl_treebin_of(struct bl_node *n)
{
    return (struct bl_treebin *)(void *)n;
}

/* ---- the map ----------------------------------------------------------------------------------
 * Layout: the fields every operation reads (table, sizeCtl) share a line that only resizes
 * write; transferIndex, the base counter and the cell array pointer each have their own line,
 * so a writer's CAS on one never invalidates the others (Java 8 packs them all into the map
 * object and pads only the cells, @Contended). */

struct bl_map {
    chm base;
    chm_smr_domain *domain; /* read-only after create */
    chm_pool *nodes;        /* plain nodes (binlock_node.c); read-only after create */
    unsigned ncpu;
    unsigned max_cells; /* counter cells at most: ncpu rounded up to a power of two, >= 2 */
    size_t cell_stride; /* 64 (own cache line) or 8 (chm_options.packed) */
    size_t xcell_off;   /* where the byte cells start in the cell array (binlock_count.c) */
    bool key_bytes;     /* keys are chm_keys_string: their stored copies count in xbytes */
    /* Read by every operation, written by resizes only (binlock_resize.c). */
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
    /* Counter cells (binlock_count.c; layout: src/stripes.h): max_cells int64 counters in one
     * 64-byte-aligned array, cell_stride bytes apart: 64, so each has its own line (Java:
     * @Contended), or 8 with chm_options.packed, eight to a line. The byte cells
     * (add_xbytes) share the array: the second word of each padded cell's line, or (packed) a
     * second run of max_cells words after the counters, so packing leaves the counters' lines
     * as they were. */
    alignas(CHM_CACHELINE) _Atomic(unsigned char *) cells;
    _Atomic unsigned ncells;
    _Atomic int cells_busy;
    /* Statistics (rare events only). */
    alignas(CHM_CACHELINE) _Atomic uint64_t st_treeify;
    _Atomic uint64_t st_untreeify, st_resize, st_join, st_pause;
    /* transfers' sacks of shells, the shells in them, shells retired alone (binlock_resize.c) */
    _Atomic uint64_t st_sacks, st_sack_shells, st_lone_shells;
};
_Static_assert(offsetof(struct bl_map, table) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, transfer_index) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, base_count) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, cells) % CHM_CACHELINE == 0 &&
                   offsetof(struct bl_map, size_ctl) < offsetof(struct bl_map, transfer_index),
               "hot map fields on their own cache lines");

static inline struct bl_map *as_bl(chm *m)
{
    return (struct bl_map *)m;
}

/* tableSizeFor: the least power of two >= @c (1 for 0). */
static inline size_t table_size_for(size_t c)
{
    size_t n = 1;
    while (n < c)
        n <<= 1;
    return n;
}

/* ---- named orderings ---------------------------------------------------------------------------
 * Every access to a shared link or value goes through one of these, so each ordering is argued
 * once, here. Readers follow pointers with acquire loads; a node is fully written before the
 * release store (or release CAS) that makes it reachable. Writers holding the bin lock read with
 * relaxed loads: the lock's acquire orders them after the previous holder's writes. The
 * resize handshake (table, nextTable, sizeCtl, transferIndex: seq_cst) is in binlock_resize.c,
 * the counters (relaxed) in binlock_count.c. */

/* The current table. Acquire: pairs with the table's publication (init_table's store, the
 * commit's: seq_cst, so release too): the table's zeroed bins and forwarding node are seen
 * whole. NULL before the first insert. */
static inline struct bl_table *current_table(struct bl_map *m)
{
    return atomic_load_explicit(&m->table, memory_order_acquire);
}

/* tabAt: acquire pairs with the release stores and CASes that publish a bin head (set_tab_at,
 * cas_tab_at): the head is seen whole, and so is whatever it links to. */
static inline struct bl_node *tab_at(struct bl_table *t, size_t i)
{
    return atomic_load_explicit(&t->bins[i], memory_order_acquire);
}

/* setTabAt: release, so a reader that loads the new head (tab_at) sees it, and what it links
 * to, whole. Always called under the bin lock. */
static inline void set_tab_at(struct bl_table *t, size_t i, struct bl_node *v)
{
    atomic_store_explicit(&t->bins[i], v, memory_order_release);
}

/* casTabAt: bin @i from @expected (NULL: an empty bin) to @v, without a lock. Release on
 * success: pairs with tab_at, @v is whole for whoever loads it. Relaxed on failure: the caller
 * reads the bin again with tab_at. */
static inline bool cas_tab_at(struct bl_table *t, size_t i, struct bl_node *expected,
                              struct bl_node *v)
{
    return atomic_compare_exchange_strong_explicit(&t->bins[i], &expected, v, memory_order_release,
                                                   memory_order_relaxed);
}

/* The re-check after locking @f, the head read before the lock: is @f still the head of bin
 * @i? Relaxed: the bin lock's acquire orders this after the last change of the head by a holder
 * of f's lock; any other value means f is no longer the head (retry). */
static inline bool still_head(struct bl_table *t, size_t i, struct bl_node *f)
{
    return atomic_load_explicit(&t->bins[i], memory_order_relaxed) == f;
}

/* A node's value for a reader (get, visit, iteration, put_if_absent's unlocked look). Acquire:
 * pairs with set_value's release; what a pointer value points to was written before the put
 * that stored it. */
static inline uint64_t load_value(struct bl_node *e)
{
    return atomic_load_explicit(&e->value, memory_order_acquire);
}

/* A new value for a published node, under its bin lock. Release: pairs with load_value. */
static inline void set_value(struct bl_node *e, uint64_t v)
{
    atomic_store_explicit(&e->value, v, memory_order_release);
}

/* A node's next for a reader. Acquire: pairs with the release stores that link nodes
 * (set_tab_at, set_next, the TreeBin's links): the next node is seen whole. */
static inline struct bl_node *load_next(struct bl_node *e)
{
    return atomic_load_explicit(&e->next, memory_order_acquire);
}

/* A published node's next changed under the bin lock (an unlink). Release: pairs with
 * load_next; the successor is whole for a reader that loads the link, and the unlinked node
 * keeps its own next for readers on it. */
static inline void set_next(struct bl_node *e, struct bl_node *nx)
{
    atomic_store_explicit(&e->next, nx, memory_order_release);
}

/* Links and values read by a writer that holds the bin lock (or, quiescent, by the self-check
 * and chm_free). Relaxed: only holders of the lock change them, and its acquire orders these
 * loads after the previous holder's stores. */
static inline struct bl_node *locked_next(struct bl_node *e)
{
    return atomic_load_explicit(&e->next, memory_order_relaxed);
}

static inline uint64_t locked_value(struct bl_node *e)
{
    return atomic_load_explicit(&e->value, memory_order_relaxed);
}

static inline struct bl_node *locked_first(struct bl_treebin *tb)
{
    return (struct bl_node *)atomic_load_explicit(&tb->first, memory_order_relaxed);
}

/* Fields of a node no other thread can reach yet (new, a clone, a spare). Relaxed: the release
 * store that publishes the node (set_tab_at, cas_tab_at, a tree link) orders them before it. */
static inline void init_next(struct bl_node *e, struct bl_node *nx)
{
    atomic_store_explicit(&e->next, nx, memory_order_relaxed);
}

static inline void init_value(struct bl_node *e, uint64_t v)
{
    atomic_store_explicit(&e->value, v, memory_order_relaxed);
}

/* The next table, where it is only looked at (chm_stats_get, the self-check, chm_free). Acquire:
 * pairs with the resize start's seq_cst store of nextTable: its bins are seen. The resize
 * handshake itself reads it seq_cst (binlock_resize.c). */
static inline struct bl_table *load_next_table(struct bl_map *m)
{
    return atomic_load_explicit(&m->next_table, memory_order_acquire);
}

/* A TreeBin's first node for a lock-free reader (TreeBin.find, iteration). Acquire: pairs with
 * the release stores of first (tree insert and remove, binlock_tree.c) and the TreeBin's
 * publication: the list is seen whole. */
static inline struct bl_node *treebin_first(struct bl_treebin *tb)
{
    return (struct bl_node *)atomic_load_explicit(&tb->first, memory_order_acquire);
}

/* The counter cell array (binlock_count.c), NULL until the first contention. Acquire: pairs
 * with the release store that publishes it (full_add_count): its zeroed cells are seen. */
static inline unsigned char *load_cells(struct bl_map *m)
{
    return atomic_load_explicit(&m->cells, memory_order_acquire);
}

/* ---- nodes (binlock_node.c) ------------------------------------------------------------------- */

/* A node's fields, before it is published (relaxed: see init_next). */
static inline void node_init(struct bl_node *e, bl_hash_t hash, uint64_t key, uint64_t value)
{
    e->hash = hash;
    e->key = key;
    init_value(e, value);
    init_next(e, NULL);
    atomic_store_explicit(&e->lock.word, 0, memory_order_relaxed);
    node_set_tree(e, false);
}

/* A node (plain or, with @tree, a TreeNode) for a key being inserted: allocated and the key
 * copy made. NULL when out of memory. Published later by a release store. */
CHM_HIDDEN struct bl_node *chm__bl_new_node(struct bl_map *m, bl_hash_t hash, uint64_t key,
                                            uint64_t value, bool tree);

/* chm__bl_new_node for a plain node, inline when the key needs no copy (no retain: integer
 * keys), as on every insert of the common map: the pool's call and node_init, no more. */
static inline struct bl_node *new_plain_node(struct bl_map *m, bl_hash_t hash, uint64_t key,
                                             uint64_t value)
{
    if (chm_unlikely(m->base.keys->retain != NULL))
        return chm__bl_new_node(m, hash, key, value, false);
    struct bl_node *e = chm__pool_alloc(m->nodes);
    if (e != NULL)
        node_init(e, hash, key, value);
    return e;
}

/* Undo chm__bl_new_node for a node @e that was never published (NULL: nothing). */
CHM_HIDDEN void chm__bl_discard_node_now(struct bl_map *m, struct bl_node *e);

static inline void discard_node(struct bl_map *m, struct bl_node *e)
{
    if (e != NULL)
        chm__bl_discard_node_now(m, e);
}

/* Reclamation callbacks (run after a grace period, src/smr.h), one per node memory kind (the
 * record has taken the word that told the kinds apart). A removed node owned its key copy and
 * value (full); a node whose key and value moved to a copy (a transfer's clone, a TreeNode)
 * owns only its memory (shell); an old TreeBin, a reservation or a table is malloc'ed memory
 * only. */
CHM_HIDDEN void chm__bl_free_node_full(chm_smr_node *n, void *owner);
CHM_HIDDEN void chm__bl_free_tnode_full(chm_smr_node *n, void *owner);
CHM_HIDDEN void chm__bl_free_node_shell(chm_smr_node *n, void *owner);
CHM_HIDDEN void chm__bl_free_tnode_shell(chm_smr_node *n, void *owner);
#define bl_free_shell chm__smr_free_plain

/* Free a node that was never retired now, with its key copy and value (chm_free). */
CHM_HIDDEN void chm__bl_free_node_now(struct bl_map *m, struct bl_node *e);

static inline void retire(struct bl_map *m, void *obj, chm_smr_free_fn *fn)
{
    chm__smr_retire(m->domain, (chm_smr_node *)obj, fn);
}

/* Retire unlinked node @e with its key copy and value (a removal). */
static inline void retire_node_full(struct bl_map *m, struct bl_node *e)
{
    retire(m, e, node_is_tree(e) ? chm__bl_free_tnode_full : chm__bl_free_node_full);
}

/* The free_fn of node @e's memory once its key and value belong to a copy (read while its
 * record word still holds its kind). */
static inline chm_smr_free_fn *shell_free_fn(const struct bl_node *e)
{
    return node_is_tree(e) ? chm__bl_free_tnode_shell : chm__bl_free_node_shell;
}

/* Retire unlinked node @e whose key and value now belong to a copy (a clone or a TreeNode). */
static inline void retire_node_shell(struct bl_map *m, struct bl_node *e)
{
    retire(m, e, shell_free_fn(e));
}

/* Spares: a chain of @count unpublished nodes (TreeNodes with @tree) linked through next, for
 * the clones a transfer or treeify makes -- allocated before anything changes, so a bin is
 * never half moved. false (nothing allocated) when out of memory. */
CHM_HIDDEN bool chm__bl_spares_alloc(struct bl_map *m, struct bl_node **spares, size_t count,
                                     bool tree);
CHM_HIDDEN void chm__bl_spares_free(struct bl_map *m, struct bl_node *spares);

static inline struct bl_node *take_spare(struct bl_node **spares)
{
    struct bl_node *e = *spares;
    *spares = locked_next(e);
    return e;
}

/* ---- counting (binlock_count.c) ---------------------------------------------------------------- */

/* addCount(x, check) once there are counter cells or the base CAS failed (Java's branch into
 * the cells); the uncontended case is the inline add_count (after resize_check, below). */
CHM_HIDDEN void chm__bl_add_count_cells(struct bl_map *m, int64_t x, long check);

/* sumCount: the entry count; exact when quiescent, transiently off (even negative) otherwise. */
CHM_HIDDEN int64_t chm__bl_sum_count(struct bl_map *m);

/* xbytes: what entries x sizeof(struct bl_node) misses of the map's bytes (binlock_count.c):
 * the larger size of TreeNodes, TreeBins, and with chm_keys_string the stored key copies. */
#define TNODE_EXTRA ((int64_t)(sizeof(struct bl_tnode) - sizeof(struct bl_node)))
#define TREEBIN_BYTES ((int64_t)sizeof(struct bl_treebin))

CHM_HIDDEN void chm__bl_add_xbytes_now(struct bl_map *m, int64_t x);
CHM_HIDDEN int64_t chm__bl_sum_xbytes(struct bl_map *m);

/* Add @x to xbytes (nothing to do, and no call, for the 0 of a plain node's integer key). */
static inline void add_xbytes(struct bl_map *m, int64_t x)
{
    if (x != 0)
        chm__bl_add_xbytes_now(m, x);
}

/* What node @e takes beyond sizeof(struct bl_node) (its node kind only; its key: key_bytes). */
static inline int64_t node_extra(const struct bl_node *e)
{
    return node_is_tree(e) ? TNODE_EXTRA : 0;
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

/* The size of the counter cell array: the counters, and the byte cells in it (see bl_map). */
static inline size_t cells_bytes(const struct bl_map *m)
{
    size_t n = (size_t)m->max_cells * m->cell_stride;
    return m->cell_stride == CHM_CACHELINE ? n : 2 * n;
}

/* ---- resize (binlock_resize.c) ---------------------------------------------------------------- */

/* initTable: the table, created if there is none yet (size from sizeCtl). NULL when out of
 * memory. */
CHM_HIDDEN struct bl_table *chm__bl_init_table(struct bl_map *m);

/* The count @s reached sizeCtl @sc: join or start resizes while it stays there. */
CHM_HIDDEN void chm__bl_resize(struct bl_map *m, int64_t s, int64_t sc);

/* The resize check of addCount: one load while the count @s is below the threshold (the
 * common case, inline), chm__bl_resize past it. seq_cst: the first of the handshake's loads
 * (chm__bl_resize). */
static inline void resize_check(struct bl_map *m, int64_t s)
{
    int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst);
    if (s >= sc)
        chm__bl_resize(m, s, sc);
}

/* addCount(x, check): count @x entries, then (check >= 0) see whether the table must grow.
 * Inside a read section (a resize walks the bins). Java's first branch is inline: with no
 * counter cells, one CAS on the base count and the resize check; anything else (cells exist,
 * or the CAS failed: contention) goes to chm__bl_add_count_cells. Every insert and remove
 * counts, so the common case pays no call and no register saves (tools/instr_count.sh). */
static inline void add_count(struct bl_map *m, int64_t x, long check)
{
    if (chm_likely(load_cells(m) == NULL)) {
        int64_t b = atomic_load_explicit(&m->base_count, memory_order_relaxed);
        CHM_YIELD_POINT("bl.count.before_cas"); /* base read, CAS pending: contention, cells */
        /* Relaxed: a count needs atomicity only (binlock_count.c, "Memory ordering"). */
        if (chm_likely(atomic_compare_exchange_strong_explicit(
                &m->base_count, &b, b + x, memory_order_relaxed, memory_order_relaxed))) {
            if (check >= 0)
                resize_check(m, b + x);
            return;
        }
    }
    chm__bl_add_count_cells(m, x, check);
}

/* helpTransfer: a writer met the forwarding node @f in @tab; help if that resize can use it,
 * and continue in the table returned (the next one). *@did_join (if not NULL) tells whether
 * this thread ran transfer, which may have left the read section (smr_breathe): then only @tab
 * and the table returned are known to be alive. */
CHM_HIDDEN struct bl_table *chm__bl_help_transfer(struct bl_map *m, struct bl_table *tab,
                                                  struct bl_node *f, bool *did_join);

/* tryPresize(size), as treeifyBin uses it: grow until the table could hold @size entries. */
CHM_HIDDEN void chm__bl_try_presize(struct bl_map *m, size_t size);

#define BL_RESIZE_STAMP_SHIFT 32

/* resizeStamp(n) << RESIZE_STAMP_SHIFT: sizeCtl's upper half while a table of @n bins is being
 * resized (negative, unique per table size). */
static inline int64_t resize_stamp(size_t n)
{
    uint64_t rs = (uint64_t)__builtin_clzll(n) | (1ULL << 31);
    return (int64_t)(rs << BL_RESIZE_STAMP_SHIFT);
}

/* ---- TreeBin (binlock_tree.c) ---------------------------------------------------------------- */

/* TreeBin.find: lock-free lookup in the bin headed by @tb (inside a read section). */
CHM_HIDDEN struct bl_node *chm__bl_tree_find(const chm *m, struct bl_treebin *tb, bl_hash_t h,
                                             uint64_t key);

/* findTreeNode under the bin lock (the tree is stable): the node for @key or NULL. */
CHM_HIDDEN struct bl_tnode *chm__bl_tree_lookup(const chm *m, struct bl_treebin *tb, bl_hash_t h,
                                                uint64_t key);

/* new TreeBin(list): build the red-black tree over the TreeNode list @first (linked by next and
 * prev, not yet published) in the preallocated @tb. */
CHM_HIDDEN void chm__bl_treebin_init(const chm *m, struct bl_treebin *tb, struct bl_tnode *first);

/* putTreeVal for a key known to be absent (chm__bl_tree_lookup returned NULL under the same lock):
 * link the prepared @x (hash, key, value set) at the front of the list and into the tree. */
CHM_HIDDEN void chm__bl_tree_insert(const chm *m, struct bl_treebin *tb, struct bl_tnode *x);

/* removeTreeNode: unlink @p from the list and the tree. Returns true when the bin is now too
 * small for a tree and the caller must replace it by its `first` list (untreeify). */
CHM_HIDDEN bool chm__bl_tree_remove(struct bl_treebin *tb, struct bl_tnode *p);

/* checkInvariants plus order and list/tree agreement; 0 or a negative code (BL_INVARIANTS).
 * Quiescent. */
CHM_HIDDEN int chm__bl_tree_check(const chm *m, struct bl_treebin *tb, size_t *count);

/* ---- self-check (binlock_check.c) ------------------------------------------------------------ */

/* The invariants chm__validate checks, one line each: the name the code returns, its number
 * (stable: messages print it) and what it means. chm__bl_invariant's switch is generated from
 * this table, so a number used twice does not compile (duplicate case). */
#define BL_INVARIANTS(X)                                                                           \
    X(BL_INV_COUNT, -1, "the counters disagree with the bins")                                     \
    X(BL_INV_HASH, -2, "stale hash in a node")                                                     \
    X(BL_INV_WRONG_BIN, -3, "node in the wrong bin")                                               \
    X(BL_INV_SPECIAL_IN_LIST, -4, "a special node where a list node was expected")                 \
    X(BL_INV_DUPLICATE, -5, "duplicate key in a list")                                             \
    X(BL_INV_NEXT_NO_TABLE, -6, "a next table without a table")                                    \
    X(BL_INV_SIZECTL_RESIZING, -7, "sizeCtl says resizing, nothing is")                            \
    X(BL_INV_NEXT_NOT_PAUSED, -8, "a next table without a paused resize")                          \
    X(BL_INV_FORWARDING, -9,                                                                       \
      "forwarding node to a table that is not the next one (forwarding left over)")                \
    X(BL_INV_RESERVATION, -10, "a reservation node left behind")                                   \
    X(BL_INV_BIN_LOCKED, -11, "a bin lock still held")                                             \
    X(BL_INV_SMALL_TREEBIN, -12, "a TreeBin in a table too small for one")                         \
    X(BL_INV_NEXT_FILLED, -13, "next table filled for a bin that did not move")                    \
    X(BL_INV_STRIDES_LEFT, -14, "strides left to claim with no resize")                            \
    X(BL_INV_THRESHOLD, -15, "sizeCtl is not the table's threshold (3/4 of its bins)")             \
    X(BL_INV_CELLS, -16, "counter cells in use: not a power of two in [2, max_cells]")             \
    X(BL_INV_PLAIN_IN_TREE, -17, "a plain node in a TreeBin")                                      \
    X(BL_INV_XBYTES, -18, "the byte count (xbytes) disagrees with the bins")                       \
    X(BL_INV_CELLS_BUSY, -19, "cellsBusy still held")                                              \
    X(BL_INV_TREE_PARENT, -40, "tree: parent link")                                                \
    X(BL_INV_TREE_LEFT, -41, "tree: left child link or hash order")                                \
    X(BL_INV_TREE_RIGHT, -42, "tree: right child link or hash order")                              \
    X(BL_INV_TREE_RED_RED, -43, "tree: red node with a red child")                                 \
    X(BL_INV_TREE_KEY_LEFT, -44, "tree: key order on the left")                                    \
    X(BL_INV_TREE_KEY_RIGHT, -45, "tree: key order on the right")                                  \
    X(BL_INV_TREE_BLACK_HEIGHT, -46, "tree: black heights differ")                                 \
    X(BL_INV_TREE_ROOT, -47, "tree: root has a parent or is red")                                  \
    X(BL_INV_TREE_LOCK_ROOT, -48, "tree: lockRoot still held")                                     \
    X(BL_INV_TREE_PREV, -49, "tree: prev link")                                                    \
    X(BL_INV_TREE_UNFOUND, -50, "tree: a list node the tree does not find")                        \
    X(BL_INV_TREE_COUNT, -51, "tree: list, tree and count disagree")

CHM__INVARIANT_ENUM(bl_invariant, BL_INVARIANTS);

/* chm__validate for binlock: 0, or the first broken invariant (quiescent). */
CHM_HIDDEN int chm__bl_validate(chm *m);

/* What the code chm__bl_validate returned means (NULL: not one of BL_INVARIANTS). */
CHM_HIDDEN const char *chm__bl_invariant(int code);

#endif /* CHM_BINLOCK_H */
