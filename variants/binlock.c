/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock.c - chm_binlock: Java 8's ConcurrentHashMap in C. This file: the design, then the
 * operations, then the helpers only they use. The machinery lives in binlock_*.c (binlock.h
 * lists the files and holds what they share).
 *
 * HOW IT WORKS
 *
 * One table of bins (a power of two), each bin an atomic pointer to its first node. A key's
 * 31-bit hash (bl_hash) picks the bin by its low bits. A bin is empty,
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
 *                              lock the bin's first node, re-check it is still the head (every
 *                              writer's prologue: lock_bin), then update in place, insert, or
 *                              delegate to the TreeBin (putTreeVal). put_if_absent first checks
 *                              the head lock-free (Java 9+). A bin that held >= 8 nodes is
 *                              treeified afterwards.
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
 *   counting (addCount)        a base counter and striped counter cells (LongAdder), each on its
 *                              own cache line; chm_size (sumCount) adds them up, exact when
 *                              quiescent. binlock_count.c.
 *   resize (transfer)          a writer whose addCount finds size >= sizeCtl starts a resize;
 *                              threads claim strides of bins and move them to the doubled
 *                              nextTable, leaving forwarding nodes; every writer that meets one
 *                              joins (helpTransfer); the last one re-sweeps and commits.
 *                              binlock_resize.c.
 *   tree bins (treeifyBin)     a list bin that held 8 nodes becomes a TreeBin (a table under 64
 *                              bins grows instead, tryPresize); removals that leave the tree
 *                              too small, and transfer halves of <= 6 nodes, turn back into
 *                              lists (untreeify). binlock_tree.c.
 *   iteration (Traverser)      bins in order; at a forwarding node it visits the two bins the
 *                              bin split into in the next table (recursively), so a key present
 *                              throughout is returned exactly once even while tables change.
 *
 * Bin locks. Java synchronizes on the bin's first node; here every node carries a 4-byte futex
 * mutex (binlock.h) used while it heads a bin. A waiting writer may find, once it has the lock,
 * that the node was unlinked meanwhile (it re-checks the head and retries), so the lock must
 * still exist: writers enter the read section before loading the bin head and leave it only
 * after unlocking, and unlinked nodes are retired, never freed directly (binlock_node.c) -- the
 * subtlety Java's garbage collector hides. Why a futex mutex: pthread_mutex_t is 40 bytes per
 * node; Concurrency Kit's spinlocks (ck_spinlock_fas, 4 bytes) never sleep, and on two cores a
 * writer that spins while the holder is preempted -- or runs a compute function -- burns its
 * whole time slice. The futex mutex takes one CAS uncontended, spins 100 pauses, then sleeps;
 * its atomics are C11, so ThreadSanitizer sees its acquire/release edges without annotations. A
 * waiter sleeps at most about 1 ms at a time: if the holder is still inside (it runs a compute
 * function), the waiter leaves its read section for a moment and starts over (smr_breathe).
 * Without that, a compute function that waits for a grace period (chm_free of another map)
 * would deadlock against a writer waiting for its bin (tests/test_binlock.c, compute_drain,
 * hangs with unbounded waits), and a long one would stall all reclamation.
 *
 * Memory ordering. A node is fully written before a release store (or release CAS) makes it
 * reachable (a bin head, a next, a tree link), and every pointer a reader follows is loaded with
 * acquire; values are stored with release and loaded with acquire. Writers re-read links under
 * the bin lock with relaxed loads: the lock's acquire already orders them after the previous
 * holder's writes. Each of these orderings is one named accessor in binlock.h (tab_at,
 * set_tab_at, cas_tab_at, still_head, load_value, set_value, ...), which says what it pairs
 * with. The resize handshake is seq_cst (binlock_resize.c); counters are relaxed
 * (binlock_count.c).
 *
 * Reclamation: what is retired, and by which callback, is listed in binlock_node.c.
 *
 * Deliberate differences from Java 8 (read against OpenJDK 11's java.util.concurrent.
 * ConcurrentHashMap)
 *   - New nodes go to the *head* of a list (Java appends at the tail). The bin lock then moves
 *     to the new node, which is safe because publishing the new head is the last write of every
 *     critical section (a writer waiting on the old head re-checks and retries). In exchange a
 *     traversal only follows links to nodes that were in the bin when it read the head, so no
 *     key is returned twice even if it is removed and put again during the iteration (the
 *     contract's guarantee; Java's Traverser can return such a key twice; tests/test_binlock.c,
 *     iteration_readd).
 *   - Out of memory is a status, and a transfer never fails midway. A writer allocates its node
 *     before the CAS or link that publishes it; a value record (value_free) before the store
 *     that replaces the value. A resize allocates nextTable before any bin moves, and the clones
 *     of a bin before it moves; what cannot be allocated is retried later, and a resize that
 *     cannot finish *pauses* (a sizeCtl state Java does not have) with the map fully usable
 *     across its two tables: binlock_resize.c, "Out of memory" (tests/test_binlock.c,
 *     resize_pause). Treeify allocates all TreeNodes and the TreeBin first and simply skips
 *     treeifying if it cannot; untreeify allocates nothing: the TreeNodes already form a plain
 *     list through next and become the bin's list as they are.
 *   - sizeCtl and transferIndex are 64-bit, with a 32-bit resize stamp compared and shifted as
 *     later JDKs correct it: binlock_resize.c, "sizeCtl". Maximum table: 2^31 bins, what a 31-bit
 *     hash indexes (Java 2^30, an int's largest power of two).
 *   - TreeBin readers store nothing: lockState is a sequence count instead of a reader count,
 *     and a writer never waits for readers (binlock_tree.c). Order inside a tree: hash, then
 *     keyops.compare (integer keys numerically), then the stored key words as a tie-break.
 *   - The Traverser keeps no TableStack: every forwarding node of a table points at the same
 *     next table, twice its size, and a forwarded bin stays forwarded while the old table can
 *     be read, so the table at depth d is found again from the iteration's first table and the
 *     current index; iteration allocates nothing and fits in chm_iter.
 *   - Counter cells: one array of the final size, allocated at the first contention, never
 *     copied (binlock_count.c).
 *   - The hash: the low 31 bits of chm's seeded 64-bit hash, kept in 32 bits beside the bin lock
 *     (a 40-byte node, binlock.h); a chm_keyops hash is first folded as (h ^ h >> 32) (Java:
 *     hashCode() spread to 31 bits, for weak hashCode()s).
 *   - chm_compute_if_absent and chm_compute: a call the function makes to write to the same map
 *     (any key; itself, or from a compute in another map: src/reentry.h keeps the thread's
 *     stack of them) returns CHM_EDEADLK, detected before any lock is touched (Java throws
 *     IllegalStateException("Recursive update") for the same bin, and may livelock or deadlock
 *     for others during a resize, JDK-8062841). chm_get, chm_size and iteration from inside
 *     work. The function runs outside the read section (its bin is held by the lock, which keeps
 *     the head and the table alive), so it may do anything else, including waiting for
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
#include "reentry.h"
#include "stripes.h"
#include "torture.h"

#include <errno.h>
#include <unistd.h>

#define BL_INLINE static inline __attribute__((always_inline))

/* ---- the writers' prologue ----------------------------------------------------------------------
 * put_val, replace_node, compute_if_absent and compute start alike: find the key's bin, help a
 * transfer it has moved in, lock its head and re-check it. lock_bin does that (defined with the
 * helpers, after the operations); an empty bin it leaves to the writer, which fills it its own
 * way: a CAS of its node (put), a reservation (the computes, through lock_or_reserve_bin), or
 * not at all (remove). Here is its interface: what a writer asks for, and what it gets. */

#define BIN_CREATE 1u    /* no table yet: create it (initTable); else no table is an empty bin */
#define BIN_PEEK_HEAD 2u /* an unlocked head that holds the key answers (Java 9+'s shortcut) */

/* Which writer asks: each keeps its own yield sites (torture build, src/torture.h). */
enum writer { WRITER_PUT, WRITER_REMOVE, WRITER_COMPUTE_IF_ABSENT, WRITER_COMPUTE };

enum bin_found {
    BIN_LOCKED,       /* b->f heads bin b->i of b->t, is a list or a TreeBin, and is locked */
    BIN_EMPTY,        /* bin b->i of b->t is empty (without BIN_CREATE, b->t may be NULL) */
    BIN_HEAD_HAS_KEY, /* BIN_PEEK_HEAD: the head b->f, not locked, holds the key */
    BIN_NO_MEMORY,    /* BIN_CREATE: the table could not be created */
    BIN_RESERVED,     /* lock_or_reserve_bin: the bin was empty and now holds the caller's
                         locked ReservationNode */
};

/* A writer's bin, as lock_bin found it. Its address goes only to the always-inline helpers:
 * a struct whose address escapes into a real call lives on the stack, and the writers' hot
 * paths would load its fields from there (out-of-line helpers take t and i). */
struct bin {
    struct bl_table *t; /* its table (the caller starts lock_bin from current_table) */
    size_t i;           /* its index in t */
    struct bl_node *f;  /* its head (BIN_LOCKED: locked by this thread) */
};

BL_INLINE enum bin_found lock_bin(struct bl_map *m, struct bin *b, bl_hash_t h, uint64_t key,
                                  unsigned how, enum writer who);
BL_INLINE void unlock_bin(struct bl_map *m, struct bin *b, long bin_count, int rc);
BL_INLINE struct bl_node *bin_lookup(const chm *cm, const struct bin *b, bl_hash_t h, uint64_t key,
                                     struct bl_treebin **tb, long *count, struct bl_node **pred);
BL_INLINE struct bl_node *list_lookup(const chm *cm, struct bl_node *f, bl_hash_t h, uint64_t key,
                                      long *count, struct bl_node **pred);
BL_INLINE void push_head(struct bin *b, struct bl_node *node);

/* compute's and compute_if_absent's way into the bin: lock_bin, and an empty bin reserved
 * (reserve_bin). */
enum reserved { RESERVED, RESERVE_LOST, RESERVE_NO_MEMORY };
BL_INLINE enum reserved reserve_bin(struct bl_map *m, struct bin *b, bl_hash_t h, uint64_t key,
                                    struct bl_node **res, struct bl_node **node, enum writer who);
BL_INLINE void discard_reservation(struct bl_map *m, struct bl_node *res);
BL_INLINE enum bin_found lock_or_reserve_bin(struct bl_map *m, struct bin *b, uint64_t h,
                                             uint64_t key, unsigned how, enum writer who,
                                             struct bl_node **res, struct bl_node **node);
BL_INLINE void unreserve_bin(struct bl_map *m, struct bin *b, struct bl_node *res,
                             struct bl_node *head);

/* ---- the other helpers, also defined after the operations --------------------------------------- */

static inline struct bl_node *find(const chm *cm, struct bl_node *e, bl_hash_t h, uint64_t key);
BL_INLINE int put_present(struct bl_map *m, struct bl_node *e, uint64_t value, bool only_if_absent,
                          uint64_t *prev, chm_value_retire **rec);
static int64_t unlink_node(struct bl_map *m, struct bl_table *t, size_t i, struct bl_node *e,
                           struct bl_node *pred, struct bl_treebin *tb);
static uint64_t run_compute(const chm *cm, chm_compute_fn *fn, uint64_t key, void *arg);
static int compute_present(struct bl_map *m, struct bl_table *t, size_t i, struct bl_node *e,
                           struct bl_node *pred, struct bl_treebin *tb, uint64_t key,
                           chm_update_fn *fn, void *arg, uint64_t *v, chm_value_retire **rec,
                           int64_t *xb, int *delta);
static chm_compute_action run_update(const chm *cm, chm_update_fn *fn, uint64_t key, bool present,
                                     uint64_t old, uint64_t *value, void *arg);
static void treeify_bin(struct bl_map *m, struct bl_table *tab, size_t index);
struct clear_tally;
static bool clear_bin(struct bl_map *m, struct bl_table *t, size_t i, struct clear_tally *c);
struct bl_iter;
static struct bl_iter *as_iter(chm_iter *it);
static struct bl_node *advance(struct bl_iter *it);
static void free_bin(struct bl_map *m, struct bl_node *e);

/* ---- get -------------------------------------------------------------------------------------- */

static int bl_get(chm *cm, uint64_t key, uint64_t *value)
{
    struct bl_map *m = as_bl(cm);
    bl_hash_t h = bl_hash(cm, key);
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct bl_table *t = current_table(m);
    if (t != NULL) {
        CHM_YIELD_POINT("bl.get.table_loaded"); /* the table may be replaced and retired */
        struct bl_node *f = tab_at(t, h & (t->n - 1));
        CHM_YIELD_POINT("bl.get.head_loaded"); /* head read, forwarding not yet checked */
        struct bl_node *e = find(cm, f, h, key);
        if (e != NULL) {
            CHM_YIELD_POINT("bl.get.before_value"); /* the node may be removed and retired */
            uint64_t v = load_value(e);
            if (value != NULL)
                *value = v;
            rc = CHM_OK;
        }
    }
    chm__smr_read_unlock();
    return rc;
}

/* get for integer keys (ops.get_u64): bl_get's work as a leaf function, every call a tail call
 * (smr.h, chm__smr_lookup_begin). A chain's nodes after its head are all real nodes, and an
 * integer key equal to the one sought implies an equal hash, so the walk compares keys only;
 * a special head (forwarding, tree bin, reservation) goes to get_from_head. */
static __attribute__((noinline)) int get_from_head(chm *cm, chm__smr_reader *r, struct bl_node *f,
                                                   bl_hash_t h, uint64_t key, uint64_t *value);

static int bl_get_u64(chm *cm, uint64_t key, uint64_t *value)
{
    struct bl_map *m = as_bl(cm);
    chm__smr_reader *r = chm__smr_lookup_begin();
    if (chm_unlikely(r == NULL))
        return bl_get(cm, key, value); /* the fast path is off (smr.h) */
    /* The full hash, top bit not yet cleared: the bin index never sees that bit. */
    uint64_t x = chm__hash_u64(key, cm->seed, cm->hash_mul);
    struct bl_table *t = current_table(m);
    if (chm_unlikely(t == NULL))
        return chm__smr_lookup_return(r, CHM_NOTFOUND);
    CHM_YIELD_POINT("bl.get.table_loaded"); /* the table may be replaced and retired */
    struct bl_node *e = tab_at(t, x & (t->n - 1));
    CHM_YIELD_POINT("bl.get.head_loaded"); /* head read, forwarding not yet checked */
    if (e != NULL && chm_unlikely(bl_special(e->hash)))
        return get_from_head(cm, r, e, x & BL_HASH_BITS, key, value); /* = bl_hash_u64 */
    for (; e != NULL; e = load_next(e)) {
        if (e->key == key) {
            CHM_YIELD_POINT("bl.get.before_value"); /* the node may be removed and retired */
            uint64_t v = load_value(e);
            if (value != NULL)
                *value = v;
            return chm__smr_lookup_return(r, CHM_OK);
        }
    }
    return chm__smr_lookup_return(r, CHM_NOTFOUND);
}

/* bl_get_u64's special heads: find() follows them (a forwarding node into the next table, a
 * tree bin's lookup), inside the section bl_get_u64 opened, which this closes. */
static __attribute__((noinline)) int get_from_head(chm *cm, chm__smr_reader *r, struct bl_node *f,
                                                   bl_hash_t h, uint64_t key, uint64_t *value)
{
    struct bl_node *e = find(cm, f, h, key);
    int rc = CHM_NOTFOUND;
    if (e != NULL) {
        CHM_YIELD_POINT("bl.get.before_value"); /* the node may be removed and retired */
        uint64_t v = load_value(e);
        if (value != NULL)
            *value = v;
        rc = CHM_OK;
    }
    return chm__smr_lookup_return(r, rc);
}

/* ---- put, put_if_absent (putVal) -------------------------------------------------------------- */

/* The locked bin is searched here branch by branch, TreeBin first, rather than through
 * bin_lookup as the other writers do: put's overwrite is the hot write path, and GCC lays this
 * form out two instructions shorter (tools/instr_count.sh, put). */
static int put_val(struct bl_map *m, uint64_t key, uint64_t value, bool only_if_absent,
                   uint64_t *prev)
{
    chm *cm = &m->base;
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    bl_hash_t h = bl_hash(cm, key);
    struct bl_node *node = NULL; /* the new node, allocated once */
    chm_value_retire *rec = NULL;
    long bin_count = 0;
    int64_t xb = 0; /* the inserted entry's xbytes */
    int rc;
    chm__smr_read_lock();
    struct bin b = {.t = current_table(m)};
    for (;;) {
        enum bin_found found = lock_bin(
            m, &b, h, key, only_if_absent ? BIN_CREATE | BIN_PEEK_HEAD : BIN_CREATE, WRITER_PUT);
        if (found == BIN_NO_MEMORY) {
            rc = CHM_ENOMEM;
        } else if (found == BIN_HEAD_HAS_KEY) {
            *prev = load_value(b.f);
            rc = CHM_EXISTS;
        } else if (found == BIN_EMPTY) {
            if (node == NULL && (node = new_plain_node(m, h, key, value)) == NULL) {
                rc = CHM_ENOMEM;
                break;
            }
            CHM_YIELD_POINT("bl.put.before_cas_empty"); /* racing inserts and transfers */
            xb = entry_xbytes(m, node);                 /* before the CAS: ours alone until then */
            if (!cas_tab_at(b.t, b.i, NULL, node))
                continue; /* another head came first: look at the bin again */
            node = NULL;
            rc = CHM_OK;
        } else if (b.f->hash == BL_TREEBIN) {
            bin_count = 2;
            struct bl_treebin *tb = bl_treebin_of(b.f);
            struct bl_tnode *p = chm__bl_tree_lookup(cm, tb, h, key);
            if (p != NULL) {
                rc = put_present(m, &p->n, value, only_if_absent, prev, &rec);
            } else {
                struct bl_node *x = chm__bl_new_node(m, h, key, value, true);
                if (x == NULL) {
                    rc = CHM_ENOMEM;
                } else {
                    xb = entry_xbytes(m, x);
                    chm__bl_tree_insert(cm, tb, bl_tnode_of(x));
                    rc = CHM_OK;
                }
            }
            unlock_bin(m, &b, bin_count, rc);
        } else {
            struct bl_node *e = list_lookup(cm, b.f, h, key, &bin_count, NULL);
            if (e != NULL) {
                rc = put_present(m, e, value, only_if_absent, prev, &rec);
            } else if (node == NULL && (node = new_plain_node(m, h, key, value)) == NULL) {
                rc = CHM_ENOMEM;
            } else {
                xb = entry_xbytes(m, node);
                CHM_YIELD_POINT("bl.put.before_publish");
                push_head(&b, node);
                node = NULL;
                rc = CHM_OK;
            }
            unlock_bin(m, &b, bin_count, rc);
        }
        break;
    }
    if (rc == CHM_OK) {
        add_count(m, 1, bin_count);
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    discard_node(m, node); /* allocated for a CAS we lost to the same key */
    chm__value_retire_discard(cm, rec);
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

/* ---- remove, remove_if, replace (replaceNode) ------------------------------------------------ */

/* replaceNode(key, value, cv). @remove: unlink the key's node -- only if its value is
 * @expected when @cv (remove_if: Java's remove(key, value)); else (replace) swap @expected for
 * @desired. */
static int replace_node(struct bl_map *m, uint64_t key, bool remove, bool cv, uint64_t expected,
                        uint64_t desired, uint64_t *old)
{
    chm *cm = &m->base;
    if (chm__reentry_refuses_write(cm))
        return CHM_EDEADLK;
    bl_hash_t h = bl_hash(cm, key);
    chm_value_retire *rec = NULL;
    bool removed = false;
    int64_t xb = 0;
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct bin b = {.t = current_table(m)};
    if (lock_bin(m, &b, h, key, 0, WRITER_REMOVE) == BIN_LOCKED) {
        struct bl_node *pred = NULL;
        struct bl_treebin *tb;
        long walked;
        struct bl_node *e = bin_lookup(cm, &b, h, key, &tb, &walked, &pred);
        if (e != NULL) {
            uint64_t ev = locked_value(e);
            if (!remove) {
                /* No record when desired == expected: the value stays (as in put_present). */
                if (ev != expected) {
                    rc = CHM_EXISTS;
                } else if (desired != ev && !chm__value_retire_reserve(cm, &rec)) {
                    rc = CHM_ENOMEM;
                } else {
                    set_value(e, desired);
                    chm__value_retire(cm, m->domain, &rec, ev);
                    rc = CHM_OK;
                }
            } else if (cv && ev != expected) {
                rc = CHM_EXISTS; /* remove_if: another value, nothing changes */
            } else {
                if (old != NULL)
                    *old = ev;
                xb = unlink_node(m, b.t, b.i, e, pred, tb);
                removed = true;
                rc = CHM_OK;
            }
        }
        unlock_bin(m, &b, 0, rc);
    }
    if (removed) {
        add_count(m, -1, -1);
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    chm__value_retire_discard(cm, rec);
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

/* ---- compute_if_absent (computeIfAbsent) ------------------------------------------------------- */

static int bl_compute_if_absent(chm *cm, uint64_t key, chm_compute_fn *fn, void *arg,
                                uint64_t *value)
{
    struct bl_map *m = as_bl(cm);
    int rc = chm__reentry_check(cm); /* a nested write (CHM_EDEADLK), or nested too deep */
    if (rc != CHM_OK)
        return rc;
    bl_hash_t h = bl_hash(cm, key);
    struct bl_node *node = NULL, *res = NULL; /* the new node; the ReservationNode */
    uint64_t v = 0;
    long bin_count = 0;
    int64_t xb = 0; /* the inserted entry's xbytes */
    bool inserted = false;
    chm__smr_read_lock();
    struct bin b = {.t = current_table(m)};
    enum bin_found found =
        lock_or_reserve_bin(m, &b, h, key, BIN_PEEK_HEAD, WRITER_COMPUTE_IF_ABSENT, &res, &node);
    if (found == BIN_NO_MEMORY) {
        rc = CHM_ENOMEM;
    } else if (found == BIN_HEAD_HAS_KEY) {
        v = load_value(b.f);
        rc = CHM_EXISTS;
    } else if (found == BIN_RESERVED) {
        v = run_compute(cm, fn, key, arg);
        init_value(node, v);
        xb = entry_xbytes(m, node);
        CHM_YIELD_POINT("bl.compute.reserved"); /* readers see the reservation */
        unreserve_bin(m, &b, res, node);        /* publishes the node and its value */
        node = res = NULL;
        bin_count = 1;
        inserted = true;
        rc = CHM_OK;
    } else {
        struct bl_treebin *tb;
        struct bl_node *e = bin_lookup(cm, &b, h, key, &tb, &bin_count, NULL);
        if (e != NULL) {
            v = locked_value(e);
            rc = CHM_EXISTS;
        } else if (tb != NULL) {
            struct bl_node *x = chm__bl_new_node(m, h, key, 0, true);
            if (x == NULL) {
                rc = CHM_ENOMEM; /* before the function: it does not run */
            } else {
                v = run_compute(cm, fn, key, arg);
                init_value(x, v);
                xb = entry_xbytes(m, x);
                chm__bl_tree_insert(cm, tb, bl_tnode_of(x)); /* publishes x (release) */
                inserted = true;
                rc = CHM_OK;
            }
        } else if (node == NULL && (node = new_plain_node(m, h, key, 0)) == NULL) {
            rc = CHM_ENOMEM; /* before the function: it does not run */
        } else {
            v = run_compute(cm, fn, key, arg);
            init_value(node, v);
            xb = entry_xbytes(m, node);
            push_head(&b, node);
            node = NULL;
            inserted = true;
            rc = CHM_OK;
        }
        unlock_bin(m, &b, bin_count, rc);
    }
    if (inserted) {
        add_count(m, 1, bin_count);
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    discard_node(m, node);
    discard_reservation(m, res); /* never published */
    if (rc >= 0 && value != NULL)
        *value = v;
    return rc;
}

/* ---- compute (Java 8's compute and computeIfPresent) ------------------------------------------ */

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
    bl_hash_t h = bl_hash(cm, key);
    /* Reservations, each allocated once and kept across retries: the plain node, the TreeNode,
     * the ReservationNode, the value's retire record. */
    struct bl_node *node = NULL, *tnode = NULL, *res = NULL;
    chm_value_retire *rec = NULL;
    uint64_t v = 0;
    long bin_count = 0;
    int delta = 0;  /* the entry count's change */
    int64_t xb = 0; /* xbytes' change */
    chm__smr_read_lock();
    struct bin b = {.t = current_table(m)};
    enum bin_found found = lock_or_reserve_bin(m, &b, h, key, 0, WRITER_COMPUTE, &res, &node);
    if (found == BIN_NO_MEMORY) {
        rc = CHM_ENOMEM;
    } else if (found == BIN_RESERVED) {
        if (run_update(cm, fn, key, false, 0, &v, arg) == CHM_COMPUTE_SET) {
            init_value(node, v);
            xb = entry_xbytes(m, node);
            unreserve_bin(m, &b, res, node); /* publishes the node and its value */
            node = NULL;
            delta = 1;
            rc = CHM_OK;
        } else {
            unreserve_bin(m, &b, res, NULL); /* the bin is empty again (Java: setTabAt null) */
            rc = CHM_NOTFOUND;
        }
        res = NULL;
        bin_count = 1;
    } else {
        struct bl_node *pred = NULL;
        struct bl_treebin *tb;
        struct bl_node *e = bin_lookup(cm, &b, h, key, &tb, &bin_count, &pred);
        /* An absent key's reservation, of the bin's kind: a TreeNode for a TreeBin. */
        struct bl_node **x = tb != NULL ? &tnode : &node;
        if (e != NULL) {
            rc = compute_present(m, b.t, b.i, e, pred, tb, key, fn, arg, &v, &rec, &xb, &delta);
        } else if (*x == NULL && (*x = chm__bl_new_node(m, h, key, 0, tb != NULL)) == NULL) {
            rc = CHM_ENOMEM;
        } else if (run_update(cm, fn, key, false, 0, &v, arg) == CHM_COMPUTE_SET) {
            init_value(*x, v);
            xb = entry_xbytes(m, *x);
            if (tb != NULL)
                chm__bl_tree_insert(cm, tb, bl_tnode_of(*x)); /* publishes (release) */
            else
                push_head(&b, *x);
            *x = NULL;
            delta = 1;
            rc = CHM_OK;
        } else {
            rc = CHM_NOTFOUND;
        }
        unlock_bin(m, &b, bin_count, rc); /* treeifies a list after an insert, as put_val (Java) */
    }
    if (delta != 0) {
        add_count(m, delta, delta > 0 ? bin_count : -1); /* addCount: may resize */
        add_xbytes(m, xb);
    }
    chm__smr_read_unlock();
    discard_node(m, node); /* reservations the decision did not use */
    discard_node(m, tnode);
    discard_reservation(m, res); /* never published */
    chm__value_retire_discard(cm, rec);
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
    struct bl_table *t = current_table(m);
    size_t n0 = t != NULL ? t->n : 0;
    for (size_t b = 0; b < n0;) {
        bool ok = true;
        for (size_t j = b; ok && j < t->n; j += n0)
            ok = clear_bin(m, t, j, &c);
        if (ok) {
            b++;
            c.may_help = true;
        }
        t = current_table(m); /* a multiple of n0 bins */
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
    bl_hash_t h = bl_hash(cm, key);
    int rc = CHM_NOTFOUND;
    chm__smr_read_lock();
    struct bl_table *t = current_table(m);
    if (t != NULL) {
        struct bl_node *e = find(cm, tab_at(t, h & (t->n - 1)), h, key);
        if (e != NULL) {
            chm__reentry_visit(cm, fn, key, load_value(e), arg);
            rc = CHM_OK;
        }
    }
    chm__smr_read_unlock();
    return rc;
}

/* ---- size, stats -------------------------------------------------------------------------------- */

static size_t bl_size(chm *cm)
{
    int64_t n = chm__bl_sum_count(as_bl(cm));
    return n < 0 ? 0 : (size_t)n; /* transiently negative while counts race */
}

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
    int64_t n = chm__bl_sum_count(m);
    size_t entries = n < 0 ? 0 : (size_t)n; /* transiently negative while counts race */
    int64_t xb = chm__bl_sum_xbytes(m);
    chm__smr_read_lock(); /* the tables' sizes are read in this section */
    struct bl_table *t = current_table(m);
    struct bl_table *nt = load_next_table(m);
    size_t bytes = sizeof *m + table_bytes(t) + table_bytes(nt);
    st->buckets = nt != NULL ? nt->n : t != NULL ? t->n : 0;
    chm__smr_read_unlock();
    if (load_cells(m) != NULL)
        bytes += cells_bytes(m);
    bytes += entries * sizeof(struct bl_node);
    if (xb > 0)
        bytes += (size_t)xb;
    st->entries = entries;
    st->bytes = bytes;
    st->resizes = (size_t)atomic_load_explicit(&m->st_resize, memory_order_relaxed);
    st->pending = chm__smr_pending(m->domain);
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

static int bl_iter_init(chm_iter *it, chm *cm)
{
    struct bl_iter *bi = as_iter(it);
    /* Counted open until chm_iter_fini, before the first read section: the tables and node
     * kept between calls stay valid (retired meanwhile, they are parked, not freed). */
    chm__smr_iter_open(as_bl(cm)->domain);
    chm__smr_read_lock();
    struct bl_table *t = current_table(as_bl(cm));
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
        *value = load_value(e);
    chm__smr_read_unlock();
    return CHM_OK;
}

static void bl_iter_fini(chm_iter *it)
{
    chm__smr_iter_close(as_bl(as_iter(it)->base.m)->domain);
}

/* ---- life cycle ------------------------------------------------------------------------------- */

static void bl_destroy(chm *cm)
{
    struct bl_map *m = as_bl(cm);
    /* Not concurrent with anything (chm_free's contract): the accessors' orders only by habit.
     * Retired objects first: their callbacks read the map's header, and once they are done no
     * value_free of this map runs on another thread while the live ones are freed here. */
    chm__smr_drain(m->domain);
    struct bl_table *tabs[2] = {current_table(m), load_next_table(m)};
    for (int k = 0; k < 2; k++) {
        if (tabs[k] == NULL)
            continue;
        for (size_t i = 0; i < tabs[k]->n; i++)
            free_bin(m, tab_at(tabs[k], i));
        chm__free(tabs[k]);
    }
    chm__free(load_cells(m));
    chm__smr_domain_free(m->domain);
    chm__pool_free(m->nodes); /* after the drain: free_fns put nodes back */
    chm__free(m);
}

static const struct chm_ops bl_ops = {
    .get = bl_get,
    .get_u64 = bl_get_u64,
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
    .validate = chm__bl_validate,
    .invariant = chm__bl_invariant,
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
    m->domain = chm__smr_domain_new(m, opt->concurrency);
    /* One pool stripe per expected writer (chm_options.concurrency), up to the pool's 64. */
    m->nodes = chm__pool_new(sizeof(struct bl_node), opt->concurrency);
    if (m->domain == NULL || m->nodes == NULL) {
        chm__pool_free(m->nodes);
        chm__smr_domain_free(m->domain);
        chm__free(m);
        errno = ENOMEM;
        return NULL;
    }
    chm__smr_domain_set_pool(m->domain, m->nodes); /* reclamation batches its puts */
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    m->ncpu = ncpu < 1 ? 1 : ncpu > (1L << 16) ? (1u << 16) : (unsigned)ncpu;
    m->max_cells = (unsigned)table_size_for(m->ncpu < 2 ? 2 : m->ncpu);
    m->cell_stride = chm__cell_stride(opt->packed);
    /* The byte cells: the second word of a padded cell's line, or after the packed counters. */
    m->xcell_off = opt->packed ? (size_t)m->max_cells * sizeof(int64_t) : sizeof(int64_t);
    m->key_bytes = opt->keys == &chm_keys_string;
    atomic_init(&m->size_ctl, (int64_t)n);
    if (n != 0 && chm__bl_init_table(m) == NULL) {
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
    /* ITER_HOLDS_RECLAIM: bl_iter_init counts the iterator open in the domain until
     * bl_iter_fini, and smr.c parks what is reclaimed meanwhile. */
    .caps = CHM_CAP_THREAD_SAFE | CHM_CAP_STORE_FREE_GET | CHM_CAP_TREE_BINS |
            CHM_CAP_PADDING_SWITCH | CHM_CAP_DEFERRED_FREE | CHM_CAP_ITER_HOLDS_RECLAIM,
    .create = bl_create,
};

/* ================================================================================================
 * Helpers
 * ============================================================================================== */

/* ---- lookup: Node.find -------------------------------------------------------------------------- */

/* Node.find from a bin head @e, following forwarding nodes (ForwardingNode.find), searching a
 * TreeBin without blocking (TreeBin.find); a reservation holds nothing (ReservationNode.find).
 * Inside a read section. */
static inline struct bl_node *find(const chm *cm, struct bl_node *e, bl_hash_t h, uint64_t key)
{
    while (e != NULL) {
        bl_hash_t eh = e->hash;
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
        e = load_next(e);
    }
    return NULL;
}

/* ---- the writers' prologue: find the bin, lock its head ----------------------------------------
 * Java's `for (Node<K,V>[] tab = table;;)` loop of putVal, replaceNode, computeIfAbsent and
 * compute, up to `synchronized (f) { if (tabAt(tab, i) == f)`, in one place. An empty bin is
 * the caller's to fill, as each fills it differently: put by a CAS of its node (cas_tab_at),
 * compute and compute_if_absent by a reservation (reserve_bin, retried by lock_or_reserve_bin);
 * remove finds nothing there. */

/*
 * Find the bin of hash @h from b->t and lock its head. A table that is not there yet is created
 * (@how BIN_CREATE) or reads as an empty bin; a forwarding node sends the writer into the next
 * table after helping its transfer (helpTransfer); with BIN_PEEK_HEAD, an unlocked head that
 * holds @key is returned as it is. Otherwise the head is locked and re-checked (still_head):
 * another head -- or a reservation whose compute finished before we got its lock -- means
 * another try. A lock wait that runs out of patience leaves the read section for a moment
 * (smr_breathe) and starts over from the current table. Inside a read section.
 */
BL_INLINE enum bin_found lock_bin(struct bl_map *m, struct bin *b, bl_hash_t h, uint64_t key,
                                  unsigned how, enum writer who)
{
    for (;;) {
        if (b->t == NULL) {
            if (!(how & BIN_CREATE)) {
                b->f = NULL;
                return BIN_EMPTY;
            }
            if ((b->t = chm__bl_init_table(m)) == NULL)
                return BIN_NO_MEMORY;
        }
        b->i = h & (b->t->n - 1);
        struct bl_node *f = b->f = tab_at(b->t, b->i);
        if (f == NULL)
            return BIN_EMPTY;
        bl_hash_t fh = f->hash;
        if (fh == BL_MOVED) {
            b->t = chm__bl_help_transfer(m, b->t, f, NULL);
            continue;
        }
        if ((how & BIN_PEEK_HEAD) && fh == h && chm__key_equal(&m->base, f->key, key))
            return BIN_HEAD_HAS_KEY; /* lock-free: the head holds the key (Java 9+) */
        if (who == WRITER_PUT)
            CHM_YIELD_POINT("bl.put.before_lock"); /* head read, the bin may move or change */
        else if (who == WRITER_REMOVE)
            CHM_YIELD_POINT("bl.remove.before_lock"); /* as put's */
        if (!bl_lock_acquire(&f->lock)) {
            smr_breathe(); /* b->t and f may be gone now: start over from the table */
            b->t = current_table(m);
            continue;
        }
        if (who == WRITER_PUT)
            CHM_YIELD_POINT("bl.put.locked"); /* locked, head not yet re-checked */
        else if (who == WRITER_REMOVE)
            CHM_YIELD_POINT("bl.remove.locked"); /* as put's */
        if (still_head(b->t, b->i, f) && fh != BL_RESERVED)
            return BIN_LOCKED;
        bl_lock_release(&f->lock);
    }
}

/* The end of a writer's critical section on the bin lock_bin locked: unlock, then, after a
 * write that succeeded (@rc >= 0), treeify a list that held BL_TREEIFY_THRESHOLD nodes or more
 * (@bin_count, Java's binCount; a TreeBin counts 2). */
BL_INLINE void unlock_bin(struct bl_map *m, struct bin *b, long bin_count, int rc)
{
    bl_lock_release(&b->f->lock);
    if (bin_count >= BL_TREEIFY_THRESHOLD && rc >= 0)
        treeify_bin(m, b->t, b->i);
}

/* In the bin lock_bin locked: the node of (@h, @key), or NULL, looked up in its TreeBin (*@tb
 * set) or its list (*@tb NULL). *@count: Java's binCount (a TreeBin counts 2, never treeified
 * again; a list, as list_lookup). *@pred (if not NULL): as list_lookup; NULL in a TreeBin. */
BL_INLINE struct bl_node *bin_lookup(const chm *cm, const struct bin *b, bl_hash_t h, uint64_t key,
                                     struct bl_treebin **tb, long *count, struct bl_node **pred)
{
    if (b->f->hash == BL_TREEBIN) {
        *tb = bl_treebin_of(b->f);
        *count = 2;
        if (pred != NULL)
            *pred = NULL;
        struct bl_tnode *p = chm__bl_tree_lookup(cm, *tb, h, key);
        return p != NULL ? &p->n : NULL;
    }
    *tb = NULL;
    return list_lookup(cm, b->f, h, key, count, pred);
}

/* In the locked list bin headed by @f: the node of (@h, @key), or NULL. *@count: the nodes
 * looked at (Java's binCount: the found node's position from 1, or the list's length); *@pred
 * (if not NULL): the node before the one found (NULL when it is the head). */
BL_INLINE struct bl_node *list_lookup(const chm *cm, struct bl_node *f, bl_hash_t h, uint64_t key,
                                      long *count, struct bl_node **pred)
{
    struct bl_node *p = NULL;
    long c = 1;
    for (struct bl_node *e = f;; ++c) {
        if (e->hash == h && chm__key_equal(cm, e->key, key)) {
            *count = c;
            if (pred != NULL)
                *pred = p;
            return e;
        }
        struct bl_node *nx = locked_next(e);
        if (nx == NULL) {
            *count = c;
            return NULL;
        }
        p = e;
        e = nx;
    }
}

/* Insert the prepared @node at the head of the locked list bin: the critical section's last
 * write (the new head takes the bin lock's role over; see HOW IT WORKS). */
BL_INLINE void push_head(struct bin *b, struct bl_node *node)
{
    init_next(node, b->f);
    set_tab_at(b->t, b->i, node);
}

/* put's write to the present entry @e of a locked bin: *@prev is its value; a put (not
 * @only_if_absent) stores @value, the old value retired through *@rec when the map has a
 * value_free -- no record when the value stays: replaced by itself, it has not left the map. */
BL_INLINE int put_present(struct bl_map *m, struct bl_node *e, uint64_t value, bool only_if_absent,
                          uint64_t *prev, chm_value_retire **rec)
{
    *prev = locked_value(e);
    if (only_if_absent)
        return CHM_EXISTS;
    if (*prev != value && !chm__value_retire_reserve(&m->base, rec))
        return CHM_ENOMEM;
    set_value(e, value);
    chm__value_retire(&m->base, m->domain, rec, *prev);
    return CHM_EXISTS;
}

/* A reservation node that was never published, or NULL: back to the pool now. */
BL_INLINE void discard_reservation(struct bl_map *m, struct bl_node *res)
{
    if (res != NULL)
        chm__pool_put(m->nodes, res);
}

/* compute's and compute_if_absent's way into the empty bin @b: a locked ReservationNode CASed in
 * while the function runs (readers see the key absent; writers wait on its lock, then find a
 * new head and retry). Both allocations come first -- the reservation and the node the
 * function's value would go in, kept in *@res and *@node across retries -- as after the CAS
 * nothing may fail. RESERVED: the bin holds *@res, locked by this thread; RESERVE_LOST: another
 * head came first (look at the bin again); RESERVE_NO_MEMORY: nothing changed. */
BL_INLINE enum reserved reserve_bin(struct bl_map *m, struct bin *b, bl_hash_t h, uint64_t key,
                                    struct bl_node **res, struct bl_node **node, enum writer who)
{
    if (*res == NULL) {
        /* A plain node's memory from the pool (a compute on an absent key is no rarer than an
         * insert): a malloc per call before 2026-12-08 (tests/test_churn.c, computes). */
        if ((*res = chm__pool_alloc(m->nodes)) == NULL)
            return RESERVE_NO_MEMORY;
        node_init(*res, BL_RESERVED, 0, 0);
    }
    if (*node == NULL && (*node = new_plain_node(m, h, key, 0)) == NULL)
        return RESERVE_NO_MEMORY;
    (void)bl_lock_acquire(&(*res)->lock); /* unpublished: uncontended, cannot fail */
    if (who == WRITER_COMPUTE_IF_ABSENT)
        CHM_YIELD_POINT("bl.compute.before_reserve"); /* racing inserts and transfers */
    if (cas_tab_at(b->t, b->i, NULL, *res))
        return RESERVED;
    bl_lock_release(&(*res)->lock);
    return RESERVE_LOST;
}

/* The computes' way into the bin of (@h, @key): lock_bin (with BIN_CREATE, and @how's other
 * flags), an empty bin reserved by reserve_bin -- looked at again each time another head wins
 * the CAS -- until the bin is locked or reserved. Returns BIN_RESERVED (b's bin holds *@res,
 * locked by this thread) or what lock_bin found; BIN_NO_MEMORY also when the reservation could
 * not be allocated (nothing changed). *@res and *@node: as reserve_bin's, kept across retries. */
BL_INLINE enum bin_found lock_or_reserve_bin(struct bl_map *m, struct bin *b, uint64_t h,
                                             uint64_t key, unsigned how, enum writer who,
                                             struct bl_node **res, struct bl_node **node)
{
    for (;;) {
        enum bin_found found = lock_bin(m, b, h, key, how | BIN_CREATE, who);
        if (found != BIN_EMPTY)
            return found;
        enum reserved r = reserve_bin(m, b, h, key, res, node, who);
        if (r == RESERVED)
            return BIN_RESERVED;
        if (r == RESERVE_NO_MEMORY)
            return BIN_NO_MEMORY;
    }
}

/* End the reservation @res of bin @b: the bin gets @head (the new node, or NULL: empty again),
 * then the writers waiting on the reservation's lock wake to a new head and retry; the
 * reservation is retired (readers may still be on it). */
BL_INLINE void unreserve_bin(struct bl_map *m, struct bin *b, struct bl_node *res,
                             struct bl_node *head)
{
    set_tab_at(b->t, b->i, head);
    bl_lock_release(&res->lock);
    retire(m, res, chm__bl_free_node_shell); /* no key, no value: back to the pool */
}

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
        struct bl_node *nx = locked_next(e);
        CHM_YIELD_POINT("bl.remove.before_unlink"); /* readers walk past e */
        if (pred != NULL)
            set_next(pred, nx);
        else
            set_tab_at(t, i, nx);
    } else if (chm__bl_tree_remove(tb, bl_tnode_of(e))) {
        set_tab_at(t, i, locked_first(tb));
        retire(m, tb, bl_free_shell);
        atomic_fetch_add_explicit(&m->st_untreeify, 1, memory_order_relaxed);
        xb -= TREEBIN_BYTES;
    }
    CHM_YIELD_POINT("bl.remove.before_retire"); /* unlinked, readers on it */
    retire_node_full(m, e);
    return xb;
}

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

/* compute on the present entry @e of bin @i of @t (locked; @pred, @tb: as unlink_node): the value's
 * retire record is reserved first (CHM_ENOMEM: the function does not run), then the function
 * decides. SET of another value: the value is swapped and the old one retired through *@rec;
 * SET of the old value itself or KEEP: nothing changes and *@v is the old value; DELETE:
 * unlinked and retired as chm_remove does (*@delta -1, *@xb). Returns CHM_OK (present after) or
 * CHM_NOTFOUND (deleted). */
static int compute_present(struct bl_map *m, struct bl_table *t, size_t i, struct bl_node *e,
                           struct bl_node *pred, struct bl_treebin *tb, uint64_t key,
                           chm_update_fn *fn, void *arg, uint64_t *v, chm_value_retire **rec,
                           int64_t *xb, int *delta)
{
    chm *cm = &m->base;
    uint64_t old = locked_value(e);
    if (!chm__value_retire_reserve(cm, rec))
        return CHM_ENOMEM; /* before the function: it does not run */
    chm_compute_action a = run_update(cm, fn, key, true, old, v, arg);
    if (a == CHM_COMPUTE_DELETE) {
        *xb = unlink_node(m, t, i, e, pred, tb);
        *delta = -1;
        return CHM_NOTFOUND;
    }
    if (a == CHM_COMPUTE_SET && *v != old) {
        /* This store is the compute's linearization point. */
        set_value(e, *v);
        chm__value_retire(cm, m->domain, rec, old);
    } else {
        *v = old; /* KEEP, or a SET of the value it holds: a KEEP (no value_free) */
    }
    return CHM_OK;
}

/* ---- treeifyBin ------------------------------------------------------------------------------- */

/* treeifyBin: the list in bin @index of @tab held BL_TREEIFY_THRESHOLD nodes; make it a TreeBin,
 * or grow a table too small for TreeBins instead (tryPresize). TreeNode copies and the TreeBin
 * are allocated first; without memory (or with a bin lock held for long) the bin stays a
 * list. */
static void treeify_bin(struct bl_map *m, struct bl_table *tab, size_t index)
{
    if (tab->n < BL_MIN_TREEIFY_CAPACITY) {
        chm__bl_try_presize(m, tab->n << 1);
        return;
    }
    struct bl_node *b = tab_at(tab, index);
    if (b == NULL || bl_special(b->hash))
        return;
    if (!bl_lock_acquire(&b->lock))
        return; /* the bin is busy for long: treeify another time */
    if (still_head(tab, index, b)) {
        size_t count = 0;
        for (struct bl_node *e = b; e != NULL; e = locked_next(e))
            count++;
        struct bl_node *spares;
        struct bl_treebin *tb = NULL;
        if (chm__bl_spares_alloc(m, &spares, count, true)) {
            if ((tb = chm__malloc(sizeof *tb)) == NULL)
                chm__bl_spares_free(m, spares);
        }
        if (tb != NULL) { /* else: no memory, the bin stays a list */
            struct bl_tnode *hd = NULL, *tl = NULL;
            for (struct bl_node *e = b; e != NULL; e = locked_next(e)) {
                struct bl_tnode *p = bl_tnode_of(take_spare(&spares));
                node_init(&p->n, e->hash, e->key, locked_value(e));
                node_set_tree(&p->n, true);
                if ((p->prev = tl) == NULL)
                    hd = p;
                else
                    init_next(&tl->n, &p->n);
                tl = p;
            }
            chm__bl_treebin_init(&m->base, tb, hd);
            CHM_YIELD_POINT("bl.treeify.before_publish"); /* readers still on the list */
            set_tab_at(tab, index, &tb->n); /* the last write: publishes the whole TreeBin */
            int64_t xb = (int64_t)count * TNODE_EXTRA + TREEBIN_BYTES;
            for (struct bl_node *e = b, *en; e != NULL; e = en) {
                en = locked_next(e);
                xb -= node_extra(e);     /* a TreeNode left in the list by untreeify */
                retire_node_shell(m, e); /* key and value moved to the TreeNodes */
            }
            add_xbytes(m, xb);
            atomic_fetch_add_explicit(&m->st_treeify, 1, memory_order_relaxed);
        }
    }
    bl_lock_release(&b->lock);
}

/* ---- clear_bin ---------------------------------------------------------------------------------- */

/*
 * Empty bin @i of @t: lock its head, re-check it, set the bin to NULL and retire every node
 * (with its key and value: chm__bl_free_node_full) and a TreeBin. A forwarded bin is emptied in
 * the next table: the two bins it split into, complete there once the forwarding node is seen
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
                (void)chm__bl_help_transfer(m, t, f, &joined);
                if (joined)
                    return false;
            }
            /* Both halves were in nt before the forwarding node was published (set_tab_at's
             * release, read by tab_at); nt, reached in this read section, stays valid in it. */
            return clear_bin(m, nt, i, c) && clear_bin(m, nt, i + t->n, c);
        }
        if (!bl_lock_acquire(&f->lock)) {
            smr_breathe(); /* as in lock_bin: t and f may be gone now */
            return false;
        }
        bool cleared = false;
        /* A ReservationNode is never still the head once its lock is ours (see transfer); were
         * it, the bin would be retried. */
        if (still_head(t, i, f) && f->hash != BL_RESERVED) {
            struct bl_node *e = f;
            if (f->hash == BL_TREEBIN)
                e = locked_first(bl_treebin_of(f));
            /* The empty bin. Readers already on the nodes walk on through their frozen links
             * (retired, not freed: they are in read sections); writers waiting on f's lock find
             * another head and retry. */
            set_tab_at(t, i, NULL);
            for (struct bl_node *en; e != NULL; e = en) {
                en = locked_next(e);
                c->removed++;
                c->xb -= entry_xbytes(m, e);
                retire_node_full(m, e);
            }
            if (f->hash == BL_TREEBIN) {
                c->xb -= TREEBIN_BYTES;
                retire(m, f, bl_free_shell);
            }
            cleared = true;
        }
        bl_lock_release(&f->lock);
        if (cleared)
            return true;
    }
}

/* ---- iteration: Traverser.advance ------------------------------------------------------------- */

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
        e = load_next(e);
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
            if (e->hash == BL_TREEBIN)
                e = treebin_first(bl_treebin_of(e));
            else
                e = NULL;
        }
        if (it->depth > 0)
            recover_state(it, n);
        else if ((it->index = i + it->base_size) >= n)
            it->index = ++it->base_index; /* visit upper slots if present */
    }
}

/* ---- chm_free --------------------------------------------------------------------------------- */

/* Free a bin's entries now (chm_free: no reader, no callback pending). */
static void free_bin(struct bl_map *m, struct bl_node *e)
{
    if (e == NULL || e->hash == BL_MOVED)
        return;
    bool tree = e->hash == BL_TREEBIN;
    struct bl_node *x = e;
    if (tree)
        x = locked_first(bl_treebin_of(e));
    while (x != NULL) {
        struct bl_node *next = locked_next(x);
        chm__bl_free_node_now(m, x);
        x = next;
    }
    if (tree)
        chm__free(e);
}
