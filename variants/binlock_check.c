/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock_check.c - chm_binlock's self-check (chm__validate: every invariant of BL_INVARIANTS,
 * binlock.h) and the statistics tests read (chm__binlock_stats). Both walk every bin of a
 * quiescent map: no writer runs meanwhile, so orderings do not matter; the loads that lead to
 * followed pointers are the same acquire ones as everywhere all the same.
 */
#include "binlock.h"

struct walk {
    size_t count, longest, trees, tree_nodes;
    size_t tnodes; /* entries whose node is a TreeNode (node_is_tree), in a TreeBin or a list */
    int64_t xbytes; /* what xbytes should be (binlock_count.c) */
};

/* The first node of the list from @e that holds @x's key: @x itself, unless the key is there
 * twice. */
static struct bl_node *first_with_key(const chm *cm, struct bl_node *e, struct bl_node *x)
{
    for (; e != NULL; e = locked_next(e))
        if (e->hash == x->hash && chm__key_equal(cm, e->key, x->key))
            return e;
    return NULL;
}

/* Check the bin @e that sits at index @idx of a table of @n bins; add it to *@w. */
static int check_bin(struct bl_map *m, struct bl_node *e, size_t idx, size_t n, struct walk *w)
{
    chm *cm = &m->base;
    if (e == NULL)
        return 0;
    if (atomic_load_explicit(&e->lock.word, memory_order_relaxed) != 0)
        return BL_INV_BIN_LOCKED;
    if (e->hash == BL_RESERVED)
        return BL_INV_RESERVATION;
    if (e->hash == BL_TREEBIN) {
        struct bl_treebin *tb = bl_treebin_of(e);
        if (n < BL_MIN_TREEIFY_CAPACITY)
            return BL_INV_SMALL_TREEBIN;
        size_t c;
        int rc = chm__bl_tree_check(cm, tb, &c);
        if (rc != 0)
            return rc;
        for (struct bl_node *x = locked_first(tb); x != NULL; x = locked_next(x)) {
            if (x->hash != bl_hash(cm, x->key))
                return BL_INV_HASH;
            if ((x->hash & (n - 1)) != idx)
                return BL_INV_WRONG_BIN;
            if (!node_is_tree(x))
                return BL_INV_PLAIN_IN_TREE;
            w->xbytes += entry_xbytes(m, x);
        }
        w->xbytes += TREEBIN_BYTES;
        w->count += c;
        w->trees++;
        w->tree_nodes += c;
        w->tnodes += c;
        return 0;
    }
    if (bl_special(e->hash))
        return BL_INV_SPECIAL_IN_LIST;
    size_t len = 0;
    for (struct bl_node *x = e; x != NULL; x = locked_next(x)) {
        if (bl_special(x->hash))
            return BL_INV_SPECIAL_IN_LIST;
        if (x->hash != bl_hash(cm, x->key))
            return BL_INV_HASH;
        if ((x->hash & (n - 1)) != idx)
            return BL_INV_WRONG_BIN;
        if (first_with_key(cm, e, x) != x)
            return BL_INV_DUPLICATE;
        w->xbytes += entry_xbytes(m, x);
        w->tnodes += node_is_tree(x);
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
    memset(w, 0, sizeof *w);
    struct bl_table *t = current_table(m);
    struct bl_table *nt = load_next_table(m);
    if (t == NULL)
        return nt != NULL ? BL_INV_NEXT_NO_TABLE : 0;
    for (size_t i = 0; i < t->n; i++) {
        struct bl_node *e = tab_at(t, i);
        int rc;
        if (e != NULL && e->hash == BL_MOVED) {
            if (nt == NULL || e != &nt->fwd)
                return BL_INV_FORWARDING;
            if ((rc = check_bin(m, tab_at(nt, i), i, nt->n, w)) != 0 ||
                (rc = check_bin(m, tab_at(nt, i + t->n), i + t->n, nt->n, w)) != 0)
                return rc;
        } else {
            if (nt != NULL && (tab_at(nt, i) != NULL || tab_at(nt, i + t->n) != NULL))
                return BL_INV_NEXT_FILLED;
            if ((rc = check_bin(m, e, i, t->n, w)) != 0)
                return rc;
        }
    }
    return 0;
}

int chm__bl_validate(chm *cm)
{
    struct bl_map *m = as_bl(cm);
    struct bl_table *t = current_table(m);
    struct bl_table *nt = load_next_table(m);
    int64_t sc = atomic_load_explicit(&m->size_ctl, memory_order_relaxed);
    int64_t ti = atomic_load_explicit(&m->transfer_index, memory_order_relaxed);
    if (t != NULL) {
        if (nt == NULL && sc < 0)
            return BL_INV_SIZECTL_RESIZING;
        if (nt == NULL && ti > 0)
            return BL_INV_STRIDES_LEFT;
        if (nt == NULL && sc != (int64_t)(t->n - t->n / 4))
            return BL_INV_THRESHOLD;
        if (nt != NULL && (nt->n != 2 * t->n || sc != resize_stamp(t->n) || ti <= 0))
            return BL_INV_NEXT_NOT_PAUSED;
    }
    struct walk w;
    int rc = walk_map(m, &w);
    if (rc != 0)
        return rc;
    if ((int64_t)w.count != chm__bl_sum_count(m))
        return BL_INV_COUNT;
    if (w.xbytes != chm__bl_sum_xbytes(m))
        return BL_INV_XBYTES;
    unsigned nc = atomic_load_explicit(&m->ncells, memory_order_relaxed);
    if (load_cells(m) != NULL && (nc < 2 || nc > m->max_cells || (nc & (nc - 1)) != 0))
        return BL_INV_CELLS;
    if (atomic_load_explicit(&m->cells_busy, memory_order_relaxed) != 0)
        return BL_INV_CELLS_BUSY;
    return 0;
}

CHM__INVARIANT_NAMER(chm__bl_invariant, BL_INVARIANTS)

void chm__binlock_stats(chm *cm, struct chm__binlock_stats *out)
{
    struct bl_map *m = as_bl(cm);
    memset(out, 0, sizeof *out);
    struct bl_table *t = current_table(m);
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
    out->sacks = atomic_load_explicit(&m->st_sacks, memory_order_relaxed);
    out->sacked_shells = atomic_load_explicit(&m->st_sack_shells, memory_order_relaxed);
    out->lone_shells = atomic_load_explicit(&m->st_lone_shells, memory_order_relaxed);
    out->pool_nodes = chm__pool_in_use(m->nodes);
    out->tnodes = w.tnodes;
    out->counter_cells =
        load_cells(m) != NULL ? atomic_load_explicit(&m->ncells, memory_order_relaxed) : 0;
    out->resizing = load_next_table(m) != NULL;
}
