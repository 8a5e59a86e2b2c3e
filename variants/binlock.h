/*
 * binlock.h - internals of chm_binlock (Java 8's ConcurrentHashMap), shared by binlock.c (table,
 * bins, resize, counting, iteration) and binlock_tree.c (TreeBin). Internal: not installed.
 *
 * The statistics call at the end is the one thing tests use (tests/test_binlock.c).
 * See variants/binlock.c, "HOW IT WORKS", for the design.
 */
#ifndef CHM_BINLOCK_H
#define CHM_BINLOCK_H

#include "smr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
    unsigned counter_cells; /* counter cells in use (0: only the base counter so far) */
    bool resizing;          /* a transfer is running or paused (nextTable set) */
};

/* Fill @out for a binlock map. Not concurrent with writes (counts are walked). */
CHM_HIDDEN void chm__binlock_stats(chm *m, struct chm__binlock_stats *out);

/* Test hook: the next @n bin splits of any transfer fail as if their clones could not be
 * allocated (0 = none; process-wide), so tests can drive a transfer into its pause. */
CHM_HIDDEN void chm__binlock_fail_splits(unsigned n);

/* ---- node kinds: Java's negative hashes -------------------------------------------------------
 * A real node's hash is spread() of the key's hash: its top bit is clear. Special nodes carry a
 * hash with the top bit set (MOVED, TREEBIN, RESERVED, as Java's -1, -2, -3), so no key or value
 * word is ever taken as a marker: all 2^64 keys and values stay legal. */
#define BL_HASH_BITS (UINT64_MAX >> 1)
#define BL_MOVED UINT64_MAX          /* ForwardingNode: the bin moved to the next table */
#define BL_TREEBIN (UINT64_MAX - 1)  /* TreeBin: the bin is a red-black tree */
#define BL_RESERVED (UINT64_MAX - 2) /* ReservationNode: compute_if_absent on an empty bin */

static inline bool bl_special(uint64_t hash)
{
    return (hash & ~BL_HASH_BITS) != 0;
}

#define BL_TREEIFY_THRESHOLD 8   /* a list with this many nodes (before the insert) is treeified */
#define BL_UNTREEIFY_THRESHOLD 6 /* a transfer split half this small becomes a list */
#define BL_MIN_TREEIFY_CAPACITY 64

/* ---- the bin lock ----------------------------------------------------------------------------
 * A 4-byte futex mutex (Drepper's "mutex 3": 0 free, 1 locked, 2 locked with sleepers) that
 * spins briefly before sleeping. It lives in the node that heads the bin (Java: synchronized on
 * the first node), so it is reclamation-protected memory: see binlock.c, "bin locks". A waiter
 * is patient for about BL_LOCK_PATIENCE_NS of sleep at a time: if the holder is still inside
 * then (a compute function runs under the lock), the acquisition fails and the caller leaves its
 * read section for a moment (so grace periods are never held up for long) and starts over. */
typedef struct bl_lock {
    _Atomic uint32_t word;
} bl_lock;

#define BL_LOCK_PATIENCE_NS 1000000 /* 1 ms */

CHM_HIDDEN bool chm__bl_lock_slow(bl_lock *l);
CHM_HIDDEN void chm__bl_unlock_wake(bl_lock *l);

/* Lock @l; false when the holder kept it longer than the waiter's patience (nothing held). */
static inline bool bl_lock_acquire(bl_lock *l)
{
    uint32_t expected = 0;
    /* Acquire: pairs with the release exchange in bl_lock_release, so this holder sees every
     * write of the previous holder's critical section. */
    if (chm_likely(atomic_compare_exchange_strong_explicit(
            &l->word, &expected, 1, memory_order_acquire, memory_order_relaxed)))
        return true;
    return chm__bl_lock_slow(l);
}

static inline void bl_lock_release(bl_lock *l)
{
    /* Release: pairs with the acquiring CAS / exchange of the next holder. */
    if (chm_unlikely(atomic_exchange_explicit(&l->word, 0, memory_order_release) == 2))
        chm__bl_unlock_wake(l);
}

/* ---- nodes and tables ------------------------------------------------------------------------ */

/* Java's Node: immutable hash and key, atomic value and next, the lock: 64 bytes with liburcu
 * 0.13's rcu_head (at most 72 would take the same 80-byte glibc chunk). */
struct bl_node {
    chm_smr_node smr;
    uint64_t hash;                  /* immutable: spread(hash(key)), or a special kind */
    uint64_t key;                   /* immutable: the stored copy (unused in special nodes) */
    _Atomic uint64_t value;         /* release store under the bin lock, acquire load */
    _Atomic(struct bl_node *) next; /* release store under the bin lock, acquire load */
    bl_lock lock;                   /* the bin lock while this node heads its bin */
    bool tree; /* immutable: allocated as a struct bl_tnode (sizes for chm_stats_get; a TreeNode
                  stays one in a list after untreeify or a transfer's lastRun); in padding */
};

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

/* ---- TreeBin (binlock_tree.c) ---------------------------------------------------------------- */

/* TreeBin.find: lock-free lookup in the bin headed by @tb (inside a read section). */
CHM_HIDDEN struct bl_node *chm__bl_tree_find(const chm *m, struct bl_treebin *tb, uint64_t h,
                                             uint64_t key);

/* findTreeNode under the bin lock (the tree is stable): the node for @key or NULL. */
CHM_HIDDEN struct bl_tnode *chm__bl_tree_lookup(const chm *m, struct bl_treebin *tb, uint64_t h,
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

/* checkInvariants plus order and list/tree agreement; 0 or a negative code. Quiescent. */
CHM_HIDDEN int chm__bl_tree_check(const chm *m, struct bl_treebin *tb, size_t *count);

#endif /* CHM_BINLOCK_H */
