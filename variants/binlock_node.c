/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock_node.c - chm_binlock's nodes: where their memory comes from and goes back to, and the
 * chains of spare nodes a transfer or treeify clones into. (The bin lock every node carries is
 * src/mutex.h's.)
 *
 * Node memory. Plain nodes come from the map's pool (src/pool.h: no malloc or free per write,
 * no malloc header, slabs back to the system at chm_free); TreeNodes, needed only by bins of
 * 8+ colliding keys, from malloc. A node's memory kind (node_is_tree, binlock.h), set when its
 * memory is allocated and kept until its retire, says which; the retire picks the free_fn of
 * that kind, because the reclamation record then takes the word that held it.
 *
 * Reclamation (src/smr.h). Nothing a reader may still hold is freed directly: it is retired
 * and freed after a grace period. Retired: removed and cleared nodes (with their key copy and
 * value: chm__bl_free_node_full), originals of nodes cloned by a transfer or treeify (their key
 * and value moved to the copy: chm__bl_free_node_shell; a transfer's go in sacks, free_sack in
 * binlock_resize.c) and reservation nodes (pool memory with no key or value, the same
 * callback), old TreeBins and old tables (bl_free_shell), and replaced values when the map has a
 * value_free (src/smr.h's retire records). Counter cells live until chm_free.
 */
#include "binlock.h"


/* ---- node memory -------------------------------------------------------------------------------- */

/* A node's memory, from the pool or (@tree) malloc; NULL when out of memory. */
static struct bl_node *node_mem_alloc(struct bl_map *m, bool tree)
{
    struct bl_node *e = tree ? chm__malloc(sizeof(struct bl_tnode)) : chm__pool_alloc(m->nodes);
    if (e != NULL)
        node_set_tree(e, tree);
    return e;
}

/* Give back the memory of @e, whose kind is @tree (read by the caller while it still could). */
static void node_mem_free_kind(struct bl_map *m, struct bl_node *e, bool tree)
{
    if (tree)
        chm__free(e);
    else
        chm__pool_put(m->nodes, e);
}

static void node_mem_free(struct bl_map *m, struct bl_node *e)
{
    node_mem_free_kind(m, e, node_is_tree(e));
}

struct bl_node *chm__bl_new_node(struct bl_map *m, bl_hash_t hash, uint64_t key, uint64_t value,
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
    node_set_tree(e, tree);
    return e;
}

void chm__bl_discard_node_now(struct bl_map *m, struct bl_node *e)
{
    chm__key_release(&m->base, e->key);
    node_mem_free(m, e);
}

/* ---- reclamation callbacks (run after a grace period) --------------------------------------- */

/* The key copy and value of @e (a removed node owned them), then its memory of kind @tree. */
static void free_node_full_kind(struct bl_map *m, struct bl_node *e, bool tree)
{
    chm__key_release(&m->base, e->key);
    chm__value_free(&m->base, locked_value(e)); /* a grace period after its unlink: frozen */
    node_mem_free_kind(m, e, tree);
}

/* A removed plain node / TreeNode: it owned its key copy and value. */
void chm__bl_free_node_full(chm_smr_node *n, void *owner)
{
    free_node_full_kind(owner, (struct bl_node *)n, false);
}

void chm__bl_free_tnode_full(chm_smr_node *n, void *owner)
{
    free_node_full_kind(owner, (struct bl_node *)n, true);
}

/* A plain node / TreeNode whose key and value moved to a copy (a transfer's clone, a TreeNode):
 * its memory is all it owns. */
void chm__bl_free_node_shell(chm_smr_node *n, void *owner)
{
    node_mem_free_kind(owner, (struct bl_node *)n, false);
}

void chm__bl_free_tnode_shell(chm_smr_node *n, void *owner)
{
    node_mem_free_kind(owner, (struct bl_node *)n, true);
}

void chm__bl_free_node_now(struct bl_map *m, struct bl_node *e)
{
    free_node_full_kind(m, e, node_is_tree(e));
}

/* ---- spares ----------------------------------------------------------------------------------- */

void chm__bl_spares_free(struct bl_map *m, struct bl_node *spares)
{
    while (spares != NULL) {
        struct bl_node *next = locked_next(spares); /* unpublished: ours alone */
        node_mem_free(m, spares);
        spares = next;
    }
}

bool chm__bl_spares_alloc(struct bl_map *m, struct bl_node **spares, size_t count, bool tree)
{
    *spares = NULL;
    for (size_t k = 0; k < count; k++) {
        struct bl_node *e = node_mem_alloc(m, tree);
        if (e == NULL) {
            chm__bl_spares_free(m, *spares);
            *spares = NULL;
            return false;
        }
        init_next(e, *spares);
        *spares = e;
    }
    return true;
}
