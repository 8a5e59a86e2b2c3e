/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock_tree.c - chm_binlock's TreeBin: Java 8's red-black tree bins, for bins that hold many
 * colliding keys (see binlock.c, HOW IT WORKS, for where they are created and removed:
 * treeify_bin, unlink_node; binlock_resize.c, split_tree).
 *
 * The tree code is a port of ConcurrentHashMap.TreeBin and TreeNode (OpenJDK 11): the
 * constructor, findTreeNode, putTreeVal, removeTreeNode, rotateLeft/Right,
 * balanceInsertion/Deletion and checkInvariants keep Java's structure and variable names. All
 * writers hold the bin lock (the TreeBin node's lock), so there is exactly one writer per tree.
 *
 * Order. Nodes are ordered by spread hash, then by the key ops' compare (integer keys:
 * numerically, inline), as Java orders by hash then Comparable. When neither decides (a keyops
 * without compare, or a compare that calls two unequal keys equal), a node is *placed* by a
 * tie-break on the stored key words (Java: tieBreakOrder, by identityHashCode), and a lookup
 * searches both subtrees at such a node (Java does the same), which makes a flood of colliding
 * keys without compare O(n) per operation; with compare it is O(log n).
 *
 * Readers (TreeBin.find). Java's readers CAS lockState += READER and a restructuring writer
 * parks until they leave. Here readers store nothing (chm_get is store-free by contract), so
 * lock_state is a sequence count instead: lockRoot makes it odd, unlockRoot even again. A reader
 * that sees it even searches the tree optimistically -- every node it can reach is protected by
 * the read section, so a concurrent rotation can only mislead it, never crash it -- with a step
 * and depth bound, and trusts the answer only if lock_state is unchanged afterwards; otherwise,
 * or while it is odd, it takes one step along the linear first/next list (Java's fallback) and
 * tries again. A writer never waits for readers, so Java's WAITER bit, `waiter` and
 * contendedLock have nothing to do.
 *
 * Memory ordering. Tree links that readers follow (left, right, root, first, next) are written
 * with release stores and read by readers with acquire loads: a node reached through any of them
 * is seen whole (its hash and key were written before it was first linked). That also orders the
 * sequence count without fences: the odd store precedes every release store of the restructuring
 * (a release store keeps all earlier accesses before it), and a reader's acquire loads keep its
 * final lock_state load after every link it read. So a reader that read any link written inside
 * a restructuring sees the odd (or a later) count and retries. parent, prev and red are read and
 * written only by the writer, under the bin lock: plain fields.
 */
#include "binlock.h"
#include "torture.h"

#define WRITER 1u /* lock_state: odd while the writer restructures */

/* A red-black tree of n nodes is at most 2*log2(n+1) deep: 128 for any n that fits in memory.
 * An optimistic reader that goes deeper is looking at a tree mid-rotation. */
#define MAX_DEPTH 130

/* ---- links ----------------------------------------------------------------------------------
 * Writer side (bin lock held): relaxed loads see the writer's own stores and, through the bin
 * lock's acquire, every earlier writer's; release stores publish to optimistic readers. */

static inline struct bl_tnode *left_of(struct bl_tnode *p)
{
    return atomic_load_explicit(&p->left, memory_order_relaxed);
}

static inline struct bl_tnode *right_of(struct bl_tnode *p)
{
    return atomic_load_explicit(&p->right, memory_order_relaxed);
}

static inline void set_left(struct bl_tnode *p, struct bl_tnode *x)
{
    /* Release: pairs with the acquire loads of find_tree_node; a reader reaching x sees it whole
     * and, if this store is inside lockRoot, sees the odd lock_state. */
    atomic_store_explicit(&p->left, x, memory_order_release);
}

static inline void set_right(struct bl_tnode *p, struct bl_tnode *x)
{
    /* Release: as set_left. */
    atomic_store_explicit(&p->right, x, memory_order_release);
}

static inline struct bl_tnode *next_of(struct bl_tnode *p)
{
    return bl_tnode_of(locked_next(&p->n));
}

/* ---- order ------------------------------------------------------------------------------------ */

/* compareComparables: the key ops' order between the keys of two nodes with equal hashes, or 0
 * when there is none. Integer keys compare numerically without an indirect call. */
static inline int key_order(const chm *m, uint64_t a, uint64_t b)
{
    if (chm_likely(m->int_keys))
        return (a > b) - (a < b);
    if (m->keys->compare != NULL) {
        int c = m->keys->compare(a, b);
        return (c > 0) - (c < 0);
    }
    return 0;
}

/* tieBreakOrder: a stable total placement for keys the order cannot separate: the stored key
 * words (Java: identityHashCode). Used only to place a node; lookups never rely on it. */
static inline int tie_break(uint64_t a, uint64_t b)
{
    return a <= b ? -1 : 1;
}

/* The direction from node p for an inserted key k with hash h (never equal to p's key). */
static inline int insert_dir(const chm *m, bl_hash_t h, uint64_t k, struct bl_tnode *p)
{
    bl_hash_t ph = p->n.hash;
    if (ph > h)
        return -1;
    if (ph < h)
        return 1;
    int dir = key_order(m, k, p->n.key);
    return dir != 0 ? dir : tie_break(k, p->n.key);
}

/* ---- rotations and rebalancing (TreeBin.rotateLeft ... balanceDeletion) ------------------- */

static struct bl_tnode *rotate_left(struct bl_tnode *root, struct bl_tnode *p)
{
    struct bl_tnode *r, *pp, *rl;
    if (p != NULL && (r = right_of(p)) != NULL) {
        rl = left_of(r);
        set_right(p, rl);
        CHM_YIELD_POINT("bl.tree.rotate_left"); /* half rotated: a search may be misled */
        if (rl != NULL)
            rl->parent = p;
        pp = r->parent = p->parent;
        if (pp == NULL) {
            root = r;
            r->red = false;
        } else if (left_of(pp) == p) {
            set_left(pp, r);
        } else {
            set_right(pp, r);
        }
        set_left(r, p);
        p->parent = r;
    }
    return root;
}

static struct bl_tnode *rotate_right(struct bl_tnode *root, struct bl_tnode *p)
{
    struct bl_tnode *l, *pp, *lr;
    if (p != NULL && (l = left_of(p)) != NULL) {
        lr = right_of(l);
        set_left(p, lr);
        CHM_YIELD_POINT("bl.tree.rotate_right"); /* as in rotate_left */
        if (lr != NULL)
            lr->parent = p;
        pp = l->parent = p->parent;
        if (pp == NULL) {
            root = l;
            l->red = false;
        } else if (right_of(pp) == p) {
            set_right(pp, l);
        } else {
            set_left(pp, l);
        }
        set_right(l, p);
        p->parent = l;
    }
    return root;
}

static struct bl_tnode *balance_insertion(struct bl_tnode *root, struct bl_tnode *x)
{
    x->red = true;
    for (struct bl_tnode *xp, *xpp, *xppl, *xppr;;) {
        if ((xp = x->parent) == NULL) {
            x->red = false;
            return x;
        }
        if (!xp->red || (xpp = xp->parent) == NULL)
            return root;
        if (xp == (xppl = left_of(xpp))) {
            if ((xppr = right_of(xpp)) != NULL && xppr->red) {
                xppr->red = false;
                xp->red = false;
                xpp->red = true;
                x = xpp;
            } else {
                if (x == right_of(xp)) {
                    root = rotate_left(root, x = xp);
                    xpp = (xp = x->parent) == NULL ? NULL : xp->parent;
                }
                if (xp != NULL) {
                    xp->red = false;
                    if (xpp != NULL) {
                        xpp->red = true;
                        root = rotate_right(root, xpp);
                    }
                }
            }
        } else {
            if (xppl != NULL && xppl->red) {
                xppl->red = false;
                xp->red = false;
                xpp->red = true;
                x = xpp;
            } else {
                if (x == left_of(xp)) {
                    root = rotate_right(root, x = xp);
                    xpp = (xp = x->parent) == NULL ? NULL : xp->parent;
                }
                if (xp != NULL) {
                    xp->red = false;
                    if (xpp != NULL) {
                        xpp->red = true;
                        root = rotate_left(root, xpp);
                    }
                }
            }
        }
    }
}

static struct bl_tnode *balance_deletion(struct bl_tnode *root, struct bl_tnode *x)
{
    for (struct bl_tnode *xp, *xpl, *xpr;;) {
        if (x == NULL || x == root)
            return root;
        if ((xp = x->parent) == NULL) {
            x->red = false;
            return x;
        }
        if (x->red) {
            x->red = false;
            return root;
        }
        if ((xpl = left_of(xp)) == x) {
            if ((xpr = right_of(xp)) != NULL && xpr->red) {
                xpr->red = false;
                xp->red = true;
                root = rotate_left(root, xp);
                xpr = (xp = x->parent) == NULL ? NULL : right_of(xp);
            }
            if (xpr == NULL) {
                x = xp;
            } else {
                struct bl_tnode *sl = left_of(xpr), *sr = right_of(xpr);
                if ((sr == NULL || !sr->red) && (sl == NULL || !sl->red)) {
                    xpr->red = true;
                    x = xp;
                } else {
                    if (sr == NULL || !sr->red) {
                        if (sl != NULL)
                            sl->red = false;
                        xpr->red = true;
                        root = rotate_right(root, xpr);
                        xpr = (xp = x->parent) == NULL ? NULL : right_of(xp);
                    }
                    if (xpr != NULL) {
                        xpr->red = (xp == NULL) ? false : xp->red;
                        if ((sr = right_of(xpr)) != NULL)
                            sr->red = false;
                    }
                    if (xp != NULL) {
                        xp->red = false;
                        root = rotate_left(root, xp);
                    }
                    x = root;
                }
            }
        } else { /* symmetric */
            if (xpl != NULL && xpl->red) {
                xpl->red = false;
                xp->red = true;
                root = rotate_right(root, xp);
                xpl = (xp = x->parent) == NULL ? NULL : left_of(xp);
            }
            if (xpl == NULL) {
                x = xp;
            } else {
                struct bl_tnode *sl = left_of(xpl), *sr = right_of(xpl);
                if ((sl == NULL || !sl->red) && (sr == NULL || !sr->red)) {
                    xpl->red = true;
                    x = xp;
                } else {
                    if (sl == NULL || !sl->red) {
                        if (sr != NULL)
                            sr->red = false;
                        xpl->red = true;
                        root = rotate_left(root, xpl);
                        xpl = (xp = x->parent) == NULL ? NULL : left_of(xp);
                    }
                    if (xpl != NULL) {
                        xpl->red = (xp == NULL) ? false : xp->red;
                        if ((sl = left_of(xpl)) != NULL)
                            sl->red = false;
                    }
                    if (xp != NULL) {
                        xp->red = false;
                        root = rotate_right(root, xp);
                    }
                    x = root;
                }
            }
        }
    }
}

/* ---- lockRoot / unlockRoot ------------------------------------------------------------------ */

/* Only the bin-lock holder writes lock_state, so no CAS: Java's CAS 0 -> WRITER (and the
 * contendedLock that waits for readers) becomes a store of the next odd count. Relaxed: the
 * restructuring's link stores that follow are release stores, which keep this store before
 * them (see the header). */
static void lock_root(struct bl_treebin *tb)
{
    uint32_t s = atomic_load_explicit(&tb->lock_state, memory_order_relaxed);
    atomic_store_explicit(&tb->lock_state, s + WRITER, memory_order_relaxed);
}

static void unlock_root(struct bl_treebin *tb)
{
    uint32_t s = atomic_load_explicit(&tb->lock_state, memory_order_relaxed);
    /* Release: pairs with the acquire load of lock_state in chm__bl_tree_find; a reader that sees the
     * even count sees the whole restructured tree. */
    atomic_store_explicit(&tb->lock_state, s + WRITER, memory_order_release);
}

/* ---- lookups -------------------------------------------------------------------------------- */

/*
 * TreeNode.findTreeNode from @p. Java recurses into the right subtree when the order cannot
 * decide between the two; here the right subtree is deferred on an explicit stack (at most the
 * tree's depth). @budget bounds the nodes visited; *ok becomes false when the budget or the
 * stack runs out, which only a concurrently restructured tree can cause (optimistic readers).
 * Loads are acquire: see the header (a reader must see each node it reaches whole, and its
 * final lock_state check must come after every link it read).
 */
static struct bl_tnode *find_tree_node(const chm *m, struct bl_tnode *p, bl_hash_t h, uint64_t k,
                                       size_t budget, bool *ok)
{
    struct bl_tnode *pending[MAX_DEPTH];
    int sp = 0;
    *ok = true;
    for (;;) {
        while (p != NULL) {
            if (budget-- == 0) {
                *ok = false;
                return NULL;
            }
            struct bl_tnode *pl = atomic_load_explicit(&p->left, memory_order_acquire);
            struct bl_tnode *pr = atomic_load_explicit(&p->right, memory_order_acquire);
            bl_hash_t ph = p->n.hash;
            int dir;
            if (ph > h) {
                p = pl;
            } else if (ph < h) {
                p = pr;
            } else if (chm__key_equal(m, p->n.key, k)) {
                return p;
            } else if (pl == NULL) {
                p = pr;
            } else if (pr == NULL) {
                p = pl;
            } else if ((dir = key_order(m, k, p->n.key)) != 0) {
                p = dir < 0 ? pl : pr;
            } else { /* no order: both subtrees (Java: pr.findTreeNode, then p = pl) */
                if (sp == MAX_DEPTH) {
                    *ok = false;
                    return NULL;
                }
                pending[sp++] = pr;
                p = pl;
            }
        }
        if (sp == 0)
            return NULL;
        p = pending[--sp];
    }
}

struct bl_tnode *chm__bl_tree_lookup(const chm *m, struct bl_treebin *tb, bl_hash_t h, uint64_t key)
{
    struct bl_tnode *r = atomic_load_explicit(&tb->root, memory_order_relaxed); /* bin locked */
    bool ok;
    return r == NULL ? NULL : find_tree_node(m, r, h, key, SIZE_MAX, &ok);
}

/* TreeBin.find, store-free (see the header). Inside a read section. */
struct bl_node *chm__bl_tree_find(const chm *m, struct bl_treebin *tb, bl_hash_t h, uint64_t key)
{
    struct bl_node *e = treebin_first(tb);
    while (e != NULL) {
        /* Acquire: pairs with unlock_root's release store; an even count read here shows the
         * tree as that unlock left it. */
        uint32_t s = atomic_load_explicit(&tb->lock_state, memory_order_acquire);
        CHM_YIELD_POINT("bl.tree.find_seq_read"); /* a restructuring may start meanwhile */
        if ((s & WRITER) == 0) {
            /* Acquire: pairs with the release stores of root. */
            struct bl_tnode *r = atomic_load_explicit(&tb->root, memory_order_acquire);
            size_t budget = atomic_load_explicit(&tb->count, memory_order_relaxed) + 2 * MAX_DEPTH;
            bool ok = true;
            struct bl_tnode *p = r == NULL ? NULL : find_tree_node(m, r, h, key, budget, &ok);
            CHM_YIELD_POINT("bl.tree.find_before_recheck"); /* answer found, not yet trusted */
            /* Relaxed suffices: the acquire loads above keep this load after them. Unchanged
             * means no restructuring overlapped the search: its answer is the tree's. */
            if (ok && atomic_load_explicit(&tb->lock_state, memory_order_relaxed) == s)
                return p != NULL ? &p->n : NULL;
        }
        /* A writer is (or was) restructuring: one step of the linear list instead. */
        if (e->hash == h && chm__key_equal(m, e->key, key))
            return e;
        e = load_next(e);
    }
    return NULL;
}

/* ---- construction, insertion, removal (bin lock held) -------------------------------------- */

void chm__bl_treebin_init(const chm *m, struct bl_treebin *tb, struct bl_tnode *b)
{
    /* Nothing here is published yet: relaxed stores; the caller's release store of the bin
     * publishes the whole TreeBin. */
    tb->n.hash = BL_TREEBIN;
    tb->n.key = 0;
    atomic_store_explicit(&tb->n.value, 0, memory_order_relaxed);
    atomic_store_explicit(&tb->n.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&tb->n.lock.word, 0, memory_order_relaxed);
    atomic_store_explicit(&tb->first, b, memory_order_relaxed);
    atomic_store_explicit(&tb->lock_state, 0, memory_order_relaxed);
    size_t count = 0;
    struct bl_tnode *r = NULL;
    for (struct bl_tnode *x = b, *next; x != NULL; x = next) {
        next = next_of(x);
        count++;
        atomic_store_explicit(&x->left, NULL, memory_order_relaxed);
        atomic_store_explicit(&x->right, NULL, memory_order_relaxed);
        if (r == NULL) {
            x->parent = NULL;
            x->red = false;
            r = x;
            continue;
        }
        uint64_t k = x->n.key;
        bl_hash_t h = x->n.hash;
        for (struct bl_tnode *p = r;;) {
            int dir = insert_dir(m, h, k, p);
            struct bl_tnode *xp = p;
            if ((p = dir <= 0 ? left_of(p) : right_of(p)) == NULL) {
                x->parent = xp;
                if (dir <= 0)
                    set_left(xp, x);
                else
                    set_right(xp, x);
                r = balance_insertion(r, x);
                break;
            }
        }
    }
    atomic_store_explicit(&tb->root, r, memory_order_relaxed);
    atomic_store_explicit(&tb->count, count, memory_order_relaxed);
}

/* putTreeVal's insertion half (the lookup half is chm__bl_tree_lookup, done first by the caller). */
void chm__bl_tree_insert(const chm *m, struct bl_treebin *tb, struct bl_tnode *x)
{
    bl_hash_t h = x->n.hash;
    uint64_t k = x->n.key;
    struct bl_tnode *f = atomic_load_explicit(&tb->first, memory_order_relaxed);
    struct bl_tnode *p = atomic_load_explicit(&tb->root, memory_order_relaxed);
    atomic_store_explicit(&x->left, NULL, memory_order_relaxed);
    atomic_store_explicit(&x->right, NULL, memory_order_relaxed);
    x->prev = NULL;
    x->red = false;
    atomic_store_explicit(&x->n.next, f != NULL ? &f->n : NULL, memory_order_relaxed);
    atomic_store_explicit(&tb->count, atomic_load_explicit(&tb->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    if (p == NULL) { /* first = root = x */
        x->parent = NULL;
        /* Release: pairs with the acquire loads of first and root in chm__bl_tree_find. */
        atomic_store_explicit(&tb->first, x, memory_order_release);
        atomic_store_explicit(&tb->root, x, memory_order_release);
        return;
    }
    for (;;) {
        int dir = insert_dir(m, h, k, p);
        struct bl_tnode *xp = p;
        if ((p = dir <= 0 ? left_of(p) : right_of(p)) == NULL) {
            x->parent = xp;
            /* Release: pairs with chm__bl_tree_find's acquire load of first (the list walk). */
            atomic_store_explicit(&tb->first, x, memory_order_release);
            if (f != NULL)
                f->prev = x;
            /* As Java, the new leaf is linked before lockRoot: one store from NULL to a whole
             * node cannot mislead a concurrent search. */
            if (dir <= 0)
                set_left(xp, x);
            else
                set_right(xp, x);
            if (!xp->red) {
                x->red = true;
            } else {
                lock_root(tb);
                CHM_YIELD_POINT("bl.tree.insert_restructuring"); /* lock_state odd */
                struct bl_tnode *root = atomic_load_explicit(&tb->root, memory_order_relaxed);
                /* Release: pairs with chm__bl_tree_find's acquire load of root. */
                atomic_store_explicit(&tb->root, balance_insertion(root, x), memory_order_release);
                unlock_root(tb);
            }
            return;
        }
    }
}

bool chm__bl_tree_remove(struct bl_treebin *tb, struct bl_tnode *p)
{
    struct bl_tnode *next = next_of(p);
    struct bl_tnode *pred = p->prev; /* unlink traversal pointers */
    struct bl_tnode *r, *rl;
    /* Release stores: pair with the acquire loads of the list walk (chm__bl_tree_find, iteration);
     * a reader standing on p still walks on through p's own next. */
    if (pred == NULL)
        atomic_store_explicit(&tb->first, next, memory_order_release);
    else
        atomic_store_explicit(&pred->n.next, next != NULL ? &next->n : NULL, memory_order_release);
    if (next != NULL)
        next->prev = pred;
    atomic_store_explicit(&tb->count, atomic_load_explicit(&tb->count, memory_order_relaxed) - 1,
                          memory_order_relaxed);
    if (atomic_load_explicit(&tb->first, memory_order_relaxed) == NULL) {
        atomic_store_explicit(&tb->root, NULL, memory_order_release); /* as the stores above */
        return true;
    }
    if ((r = atomic_load_explicit(&tb->root, memory_order_relaxed)) == NULL ||
        right_of(r) == NULL || (rl = left_of(r)) == NULL || left_of(rl) == NULL)
        return true; /* too small: the caller untreeifies (p stays in this tree, unreachable
                        once the bin is replaced) */
    lock_root(tb);
    CHM_YIELD_POINT("bl.tree.remove_restructuring"); /* lock_state odd */
    struct bl_tnode *replacement;
    struct bl_tnode *pl = left_of(p);
    struct bl_tnode *pr = right_of(p);
    if (pl != NULL && pr != NULL) {
        struct bl_tnode *s = pr, *sl;
        while ((sl = left_of(s)) != NULL) /* find successor */
            s = sl;
        bool c = s->red;
        s->red = p->red;
        p->red = c; /* swap colors */
        struct bl_tnode *sr = right_of(s);
        struct bl_tnode *pp = p->parent;
        if (s == pr) { /* p was s's direct parent */
            p->parent = s;
            set_right(s, p);
        } else {
            struct bl_tnode *sp = s->parent;
            if ((p->parent = sp) != NULL) {
                if (s == left_of(sp))
                    set_left(sp, p);
                else
                    set_right(sp, p);
            }
            set_right(s, pr);
            pr->parent = s;
        }
        set_left(p, NULL);
        set_right(p, sr);
        if (sr != NULL)
            sr->parent = p;
        set_left(s, pl);
        pl->parent = s;
        if ((s->parent = pp) == NULL)
            r = s;
        else if (p == left_of(pp))
            set_left(pp, s);
        else
            set_right(pp, s);
        replacement = sr != NULL ? sr : p;
    } else if (pl != NULL) {
        replacement = pl;
    } else if (pr != NULL) {
        replacement = pr;
    } else {
        replacement = p;
    }
    if (replacement != p) {
        struct bl_tnode *pp = replacement->parent = p->parent;
        if (pp == NULL)
            r = replacement;
        else if (p == left_of(pp))
            set_left(pp, replacement);
        else
            set_right(pp, replacement);
        set_left(p, NULL);
        set_right(p, NULL);
        p->parent = NULL;
    }

    struct bl_tnode *root = p->red ? r : balance_deletion(r, replacement);
    /* Release: pairs with chm__bl_tree_find's acquire load of root. */
    atomic_store_explicit(&tb->root, root, memory_order_release);

    if (p == replacement) { /* detach pointers */
        struct bl_tnode *pp;
        if ((pp = p->parent) != NULL) {
            if (p == left_of(pp))
                set_left(pp, NULL);
            else if (p == right_of(pp))
                set_right(pp, NULL);
            p->parent = NULL;
        }
    }
    unlock_root(tb);
    return false;
}

/* ---- self-check (checkInvariants, extended) ------------------------------------------------- */

/* Red-black and order invariants of the subtree at t; its black height in *bh, its size added
 * to *n. 0 or a negative code (BL_INVARIANTS, binlock.h). */
static int check_subtree(const chm *m, struct bl_tnode *t, int *bh, size_t *n)
{
    if (t == NULL) {
        *bh = 1;
        return 0;
    }
    struct bl_tnode *tp = t->parent, *tl = left_of(t), *tr = right_of(t);
    if (tp != NULL && t != left_of(tp) && t != right_of(tp))
        return BL_INV_TREE_PARENT;
    if (tl != NULL && (tl->parent != t || tl->n.hash > t->n.hash))
        return BL_INV_TREE_LEFT;
    if (tr != NULL && (tr->parent != t || tr->n.hash < t->n.hash))
        return BL_INV_TREE_RIGHT;
    if (t->red && ((tl != NULL && tl->red) || (tr != NULL && tr->red)))
        return BL_INV_TREE_RED_RED;
    if (tl != NULL && tl->n.hash == t->n.hash && key_order(m, tl->n.key, t->n.key) > 0)
        return BL_INV_TREE_KEY_LEFT;
    if (tr != NULL && tr->n.hash == t->n.hash && key_order(m, tr->n.key, t->n.key) < 0)
        return BL_INV_TREE_KEY_RIGHT;
    int lbh, rbh, rc;
    if ((rc = check_subtree(m, tl, &lbh, n)) != 0 || (rc = check_subtree(m, tr, &rbh, n)) != 0)
        return rc;
    if (lbh != rbh)
        return BL_INV_TREE_BLACK_HEIGHT;
    *bh = lbh + (t->red ? 0 : 1);
    (*n)++;
    return 0;
}

int chm__bl_tree_check(const chm *m, struct bl_treebin *tb, size_t *count)
{
    struct bl_tnode *root = atomic_load_explicit(&tb->root, memory_order_relaxed);
    if (root != NULL && (root->parent != NULL || root->red))
        return BL_INV_TREE_ROOT;
    if ((atomic_load_explicit(&tb->lock_state, memory_order_relaxed) & WRITER) != 0)
        return BL_INV_TREE_LOCK_ROOT;
    int bh;
    size_t in_tree = 0, in_list = 0;
    int rc = check_subtree(m, root, &bh, &in_tree);
    if (rc != 0)
        return rc;
    struct bl_tnode *prev = NULL;
    for (struct bl_tnode *e = atomic_load_explicit(&tb->first, memory_order_relaxed); e != NULL;
         prev = e, e = next_of(e)) {
        if (e->prev != prev)
            return BL_INV_TREE_PREV;
        if (chm__bl_tree_lookup(m, tb, e->n.hash, e->n.key) != e)
            return BL_INV_TREE_UNFOUND;
        in_list++;
    }
    if (in_list != in_tree || in_list != atomic_load_explicit(&tb->count, memory_order_relaxed))
        return BL_INV_TREE_COUNT;
    *count = in_list;
    return 0;
}
