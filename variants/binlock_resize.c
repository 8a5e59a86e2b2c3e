/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock_resize.c - chm_binlock's table and its growth: Java 8's sizeCtl, initTable, the
 * resize trigger of addCount, transfer, helpTransfer and tryPresize.
 *
 * sizeCtl. 0 or the initial size before the table exists, -1 while one thread creates it, the
 * threshold (3/4 of the bins) between resizes, and during a resize the resize stamp of the
 * table's size in the upper 32 bits with the number of workers + 1 in the lower 32. Java's is
 * 32-bit with a 16-bit stamp; here sizeCtl and transferIndex are 64-bit (RESIZE_STAMP_BITS 32;
 * tables stop at BL_MAX_CAPACITY, 2^31 bins, what the 31-bit hash indexes), and the stamp is
 * compared explicitly (same_stamp) and shifted before the "+ 1" (finishing) and
 * "+ MAX_RESIZERS" (full) comparisons -- the correction later JDKs made: JDK 8 and 11 compare
 * sizeCtl with the unshifted rs + 1 and rs + MAX_RESIZERS, so those two checks never hold.
 *
 * A resize. A writer whose addCount finds the count >= sizeCtl starts one (start_resize): it
 * swaps the threshold for "stamp, one worker", allocates the doubled nextTable and opens
 * transferIndex at the table's size. Workers claim strides of bins (at least 16) from
 * transferIndex, high to low (transfer). Each bin is locked and split into a low and a high list,
 * reusing its tail of nodes that all go the same way (lastRun) and cloning the nodes before it
 * (split_list; a TreeBin: split_tree); the two halves are stored in nextTable, then the old bin
 * gets the forwarding node (the table's embedded `fwd`), which sends readers and writers to the
 * next table. Every writer that meets a forwarding node joins (helpTransfer), as does every
 * writer whose count check sees a resize with strides left; the last worker to leave re-sweeps
 * the old table and commits (nextTable cleared, table set, the new threshold).
 *
 * Out of memory. A transfer never fails midway, and out of memory never fails the write that
 * triggered the resize. nextTable is allocated before any bin moves; without it sizeCtl goes
 * back to the threshold and the insert still succeeds (Java keeps inserting into an
 * over-threshold table too, but sets sizeCtl to MAX_VALUE and never grows again). Splitting a
 * bin needs clones (and TreeNodes, TreeBins): they are counted and allocated under the bin lock
 * before anything changes; if that fails the worker leaves the bin in the old table and moves
 * on, and the finisher's re-sweep retries it. If the re-sweep fails too, the finisher *pauses*
 * the resize instead of committing: it reopens transferIndex at that bin and sets the worker
 * count to 0 (stamp + 0, a sizeCtl state Java does not have; stamp + 1 still means
 * "finishing", which nobody may join). The map stays fully usable across the two tables --
 * readers and writers follow the forwarding nodes of the bins already moved -- and the next
 * writer that meets a forwarding node or passes the threshold check resumes it (joining a
 * paused resize sets the count to 2, "one worker", as a start does). The price while memory
 * stays exhausted: each such writer retries, and each retry walks the bins still to move, so a
 * write past the threshold or through a forwarding node costs O(table) until memory returns.
 *
 * Memory ordering. The handshake on table, nextTable, sizeCtl and transferIndex is seq_cst, as
 * Java's volatiles: its arguments (a stamp seen comes with its tables; the last worker's
 * re-sweep sees every bin the others moved) rely on a single order of those four. The bins move
 * under their bin locks with the orderings of binlock.h (tab_at, set_tab_at, cas_tab_at).
 */
#include "binlock.h"
#include "torture.h"

#include <sched.h>

#define BL_MIN_TRANSFER_STRIDE 16
#define BL_LOW_MASK 0xffffffffLL /* sizeCtl's worker-count half during a resize */
#define BL_MAX_RESIZERS 0xffffffffLL

/* ---- initTable --------------------------------------------------------------------------------- */

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

struct bl_table *chm__bl_init_table(struct bl_map *m)
{
    struct bl_table *t;
    while ((t = current_table(m)) == NULL) {
        int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst);
        if (sc < 0) {
            sched_yield(); /* lost the initialisation race: Thread.yield() */
            continue;
        }
        /* seq_cst, as every sizeCtl transition: -1 excludes other initialisers. */
        CHM_YIELD_POINT("bl.init.before_cas");
        if (atomic_compare_exchange_strong_explicit(&m->size_ctl, &sc, -1, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            t = current_table(m);
            if (t == NULL) {
                size_t n = sc > 0 ? (size_t)sc : BL_DEFAULT_CAPACITY;
                if ((t = new_table(n)) == NULL) {
                    /* seq_cst: back from -1, so a waiting initialiser may try in turn. */
                    atomic_store_explicit(&m->size_ctl, sc, memory_order_seq_cst);
                    return NULL;
                }
                CHM_YIELD_POINT("bl.init.before_publish"); /* others spin on sizeCtl -1 */
                /* Release (seq_cst): pairs with current_table; the zeroed bins and the
                 * forwarding node are visible to whoever sees the table. */
                atomic_store_explicit(&m->table, t, memory_order_seq_cst);
                sc = (int64_t)(n - (n >> 2));
            }
            atomic_store_explicit(&m->size_ctl, sc, memory_order_seq_cst);
            return t;
        }
    }
    return t;
}

/* ---- sizeCtl during a resize ------------------------------------------------------------------- */

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

/* ---- splitting a bin ----------------------------------------------------------------------------- */

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

/* ---- the shells a transfer retires, in sacks ----------------------------------------------------
 * Not in Java (whose garbage collector takes the originals of the nodes a transfer cloned): the
 * originals split_list replaced by clones go to the reclamation in sacks of BL_SACK_SHELLS, one
 * retire per sack, rather than one retire per node. A retire per node cost two atomic
 * instructions on the thread's queue and a write of each original's record word, and its
 * reclamation walked them twice, a cache miss per node each time once a large table's transfer
 * had pushed them out of the caches (the reclamation runs when the resizing call returns:
 * chm__smr_retire_soon). A sack is an array, so its free_fn (free_sack) prefetches the shells
 * ahead of the ones it frees. The sack's memory comes from malloc; without it a shell is
 * retired alone, as before. A sack is retired as a bulk (src/smr.h, chm_smr_bulk) counting the
 * shells it holds, soon (as the old table: the thread reclaims it when its call returns), so
 * THE BOUND and chm_stats_get's pending count shells, not sacks. Each
 * original's record word still holds its memory kind (node_is_tree) when free_sack reads it:
 * nothing retired it. Measured in docs/benchmarks.md ("`resize`: binlock's transfer prefetches
 * its nodes and retires their originals in sacks"). */

#define BL_SACK_SHELLS 509 /* a sack is one 4 KiB block */
#define BL_SACK_AHEAD 8    /* shells free_sack prefetches ahead of the one it frees */

struct bl_sack {
    chm_smr_bulk smr; /* its record once retired (weight: n) */
    size_t n;         /* shells held */
    struct bl_node *shell[BL_SACK_SHELLS];
};
_Static_assert(sizeof(struct bl_sack) <= 4096, "a sack fits a 4 KiB block (fills it with 64-bit "
                                               "pointers)");

static void free_sack(chm_smr_node *n, void *owner)
{
    struct bl_sack *s = (struct bl_sack *)n;
    for (size_t k = 0; k < s->n; k++) {
        if (k + BL_SACK_AHEAD < s->n)
            __builtin_prefetch(s->shell[k + BL_SACK_AHEAD], 1); /* the free list writes it */
        struct bl_node *e = s->shell[k];
        shell_free_fn(e)(&e->smr, owner);
    }
    chm__free(s);
}

/* Retire the sack *@sack holds, if any (the end of a transfer call, or a full sack). */
static void sack_retire(struct bl_map *m, struct bl_sack **sack)
{
    struct bl_sack *s = *sack;
    if (s == NULL)
        return;
    atomic_fetch_add_explicit(&m->st_sacks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->st_sack_shells, s->n, memory_order_relaxed);
    s->smr.weight = s->n;
    chm__smr_retire_bulk(m->domain, &s->smr, free_sack, true);
    *sack = NULL;
}

/* Retire the unlinked original @e of a clone: into *@sack (a new one when it is NULL), alone
 * when there is no memory for a sack. */
static void sack_shell(struct bl_map *m, struct bl_sack **sack, struct bl_node *e)
{
    struct bl_sack *s = *sack;
    if (s == NULL) {
        if ((s = chm__malloc(sizeof *s)) == NULL) {
            atomic_fetch_add_explicit(&m->st_lone_shells, 1, memory_order_relaxed);
            retire_node_shell(m, e);
            return;
        }
        s->n = 0;
        *sack = s;
    }
    s->shell[s->n++] = e;
    if (s->n == BL_SACK_SHELLS)
        sack_retire(m, sack);
}

/* The list split of transfer for the locked list bin @f at @i: lastRun reused, the nodes
 * before it cloned (prepended, so their order reverses, as Java). The clones are allocated
 * first: false, with nothing changed, when that fails. */
static bool split_list(struct bl_map *m, struct bl_table *tab, struct bl_table *nt, size_t i,
                       struct bl_node *f, struct bl_sack **sack)
{
    size_t n = tab->n;
    uint64_t run_bit = f->hash & n;
    struct bl_node *last_run = f;
    size_t before = 0, k = 1; /* nodes before last_run; index of p */
    for (struct bl_node *p = locked_next(f); p != NULL; p = locked_next(p), k++) {
        uint64_t b = p->hash & n;
        if (b != run_bit) {
            run_bit = b;
            last_run = p;
            before = k;
        }
    }
    struct bl_node *spares;
    if (!chm__bl_spares_alloc(m, &spares, before, false))
        return false;
    struct bl_node *ln = run_bit == 0 ? last_run : NULL;
    struct bl_node *hn = run_bit == 0 ? NULL : last_run;
    for (struct bl_node *p = f; p != last_run; p = locked_next(p)) {
        struct bl_node *c = take_spare(&spares);
        node_init(c, p->hash, p->key, locked_value(p));
        if ((p->hash & n) == 0) {
            init_next(c, ln);
            ln = c;
        } else {
            init_next(c, hn);
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
        pn = locked_next(p);
        xb -= node_extra(p);
        sack_shell(m, sack, p);
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
    struct bl_node *first = locked_first(t);
    for (struct bl_node *e = first; e != NULL; e = locked_next(e)) {
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
        struct bl_node *lspares, *hspares;
        struct bl_treebin *ltb = NULL, *htb = NULL;
        if (!chm__bl_spares_alloc(m, &lspares, lc, ltree))
            return false;
        if (!chm__bl_spares_alloc(m, &hspares, hc, htree) ||
            (ltree && (ltb = chm__malloc(sizeof *ltb)) == NULL) ||
            (htree && (htb = chm__malloc(sizeof *htb)) == NULL)) {
            chm__bl_spares_free(m, lspares);
            chm__bl_spares_free(m, hspares);
            chm__free(ltb);
            return false;
        }
        /* Copy in list order (Java: loTail/hiTail appends). */
        struct bl_node *ltail = NULL, *htail = NULL;
        for (struct bl_node *e = first; e != NULL; e = locked_next(e)) {
            bool lo = (e->hash & n) == 0;
            struct bl_node *c = take_spare(lo ? &lspares : &hspares);
            node_init(c, e->hash, e->key, locked_value(e));
            node_set_tree(c, lo ? ltree : htree);
            struct bl_node **tail = lo ? &ltail : &htail, **head = lo ? &ln : &hn;
            if ((lo ? ltree : htree))
                bl_tnode_of(c)->prev = bl_tnode_of(*tail);
            if (*tail == NULL)
                *head = c;
            else
                init_next(*tail, c);
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
            en = locked_next(e);
            xb -= node_extra(e);
            retire_node_shell(m, e);
        }
        retire(m, t, bl_free_shell);
        if (lc > BL_UNTREEIFY_THRESHOLD)
            xb += (int64_t)lc * TNODE_EXTRA + TREEBIN_BYTES;
        if (hc > BL_UNTREEIFY_THRESHOLD)
            xb += (int64_t)hc * TNODE_EXTRA + TREEBIN_BYTES;
        add_xbytes(m, xb);
    }
    return true;
}

/* ---- transfer ------------------------------------------------------------------------------------ */

/* Bins ahead of the one being moved whose nodes transfer prefetches (prefetch_ahead). */
#define BL_TRANSFER_AHEAD 8

/*
 * Not in Java: software prefetch of the nodes transfer is about to lock and split. The bins are
 * read in order, which the hardware prefetches, but each bin's head -- and its successors --
 * sit anywhere in the pool, a cache miss each once the table outgrows the caches. And every
 * miss is paid alone: the lock's CAS on the head is a full barrier, so no load after it starts
 * before it ends, and the next bin's miss cannot overlap this one's. So while bin @i moves, this
 * asks for the head of bin i - 2 * BL_TRANSFER_AHEAD and for the successor of the head of bin
 * i - BL_TRANSFER_AHEAD (prefetched one round before, so its link is in the cache by now):
 * their misses then run beside the CASes in between. A prefetch is a hint: it neither faults
 * nor writes, so a node freed or moved meanwhile costs a wasted line, nothing more, and the
 * loads it needs are the atomic ones any reader makes (inside the read section transfer runs
 * in). Measured in docs/benchmarks.md ("`resize`: binlock's transfer prefetches its nodes and
 * retires their originals in sacks").
 */
static inline void prefetch_ahead(struct bl_table *tab, int64_t i, int64_t bound)
{
    if (i - 2 * BL_TRANSFER_AHEAD >= bound) {
        struct bl_node *g = tab_at(tab, (size_t)(i - 2 * BL_TRANSFER_AHEAD));
        if (g != NULL)
            __builtin_prefetch(g, 1); /* for writing: the transfer locks it */
    }
    if (i - BL_TRANSFER_AHEAD >= bound) {
        struct bl_node *g = tab_at(tab, (size_t)(i - BL_TRANSFER_AHEAD));
        struct bl_node *nx = g != NULL ? load_next(g) : NULL;
        if (nx != NULL)
            __builtin_prefetch(nx, 0);
    }
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
    struct bl_sack *sack = NULL; /* the originals split_list replaced, retired on return */
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
                 * with current_table (release). */
                atomic_store_explicit(&m->next_table, NULL, memory_order_seq_cst);
                CHM_YIELD_POINT("bl.commit.next_cleared"); /* nextTable NULL, old table current */
                atomic_store_explicit(&m->table, nt, memory_order_seq_cst);
                CHM_YIELD_POINT("bl.commit.table_set"); /* new table, sizeCtl still resizing */
                atomic_store_explicit(&m->size_ctl, 2 * n - n / 2, memory_order_seq_cst);
                atomic_fetch_add_explicit(&m->st_resize, 1, memory_order_relaxed);
                /* The old table, and the clones this thread's transfer retired with it. */
                chm__smr_retire_soon(m->domain, (chm_smr_node *)tab, bl_free_shell);
                sack_retire(m, &sack);
                return true;
            }
            /* seq_cst load and CAS: leave the worker count; the one that brings it to 1 is the
             * last, and its re-sweep sees every bin the others moved. */
            int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst);
            CHM_YIELD_POINT("bl.transfer.before_leave"); /* joiners and leavers race on sizeCtl */
            if (atomic_compare_exchange_strong_explicit(
                    &m->size_ctl, &sc, sc - 1, memory_order_seq_cst, memory_order_seq_cst)) {
                if (sc - 2 != rs) {
                    sack_retire(m, &sack);
                    return true;
                }
                finishing = advance = true;
                i = n; /* recheck before commit */
            }
            continue;
        }
        prefetch_ahead(tab, i, bound);
        struct bl_node *f = tab_at(tab, (size_t)i);
        CHM_YIELD_POINT("bl.transfer.bin_loaded"); /* head read, not yet locked or CASed */
        if (f == NULL) {
            /* nt (published through nextTable) is whole for whoever follows this forwarding
             * node: cas_tab_at's release. */
            advance = cas_tab_at(tab, (size_t)i, NULL, &nt->fwd);
        } else if (f->hash == BL_MOVED) {
            advance = true; /* already processed */
        } else if (!bl_lock_acquire(&f->lock)) {
            /* Out of patience: breathe and retry bin i. tab and nt stay valid: this thread is a
             * registered worker, so the resize cannot commit meanwhile. */
            smr_breathe();
        } else {
            CHM_YIELD_POINT("bl.transfer.locked"); /* locked, head not yet re-checked */
            if (still_head(tab, (size_t)i, f)) {
                /* (A ReservationNode is never still the head once its lock is ours: its
                 * compute replaced it before unlocking. Were it, the bin would be retried.) */
                bool ok = true;
                if (f->hash != BL_RESERVED && chm_unlikely(split_should_fail()))
                    ok = false;
                else if (!bl_special(f->hash))
                    ok = split_list(m, tab, nt, (size_t)i, f, &sack);
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
                    sack_retire(m, &sack);
                    return false;
                }
            }
            bl_lock_release(&f->lock);
        }
    }
}

/* ---- starting and joining a resize ------------------------------------------------------------- */

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

void chm__bl_resize(struct bl_map *m, int64_t s, int64_t sc)
{
    struct bl_table *tab;
    /* sizeCtl (@sc, loaded by resize_check), then table, then (resizing) transferIndex and
     * nextTable: seq_cst loads in the reverse of the order a commit stores them (nextTable,
     * table, sizeCtl) and a start stores them (sizeCtl, nextTable, transferIndex), so a stamp
     * seen here comes with its tables. table's load is also an acquire (the table is
     * followed). */
    while ((tab = current_table(m)) != NULL && tab->n < BL_MAX_CAPACITY) {
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
        s = chm__bl_sum_count(m);
        if (s < (sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst)))
            break;
    }
}

struct bl_table *chm__bl_help_transfer(struct bl_map *m, struct bl_table *tab, struct bl_node *f,
                                       bool *did_join)
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

void chm__bl_try_presize(struct bl_map *m, size_t size)
{
    size_t c =
        size >= (BL_MAX_CAPACITY >> 1) ? BL_MAX_CAPACITY : table_size_for(size + (size >> 1) + 1);
    int64_t sc;
    /* seq_cst / acquire: as chm__bl_resize. */
    while ((sc = atomic_load_explicit(&m->size_ctl, memory_order_seq_cst)) >= 0) {
        struct bl_table *tab = current_table(m);
        if (tab == NULL || (int64_t)c <= sc || tab->n >= BL_MAX_CAPACITY)
            break;
        if (start_resize(m, tab, sc) < 0)
            break;
    }
}
