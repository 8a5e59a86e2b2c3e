/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * binlock_count.c - chm_binlock's counting: Java 8's addCount, fullAddCount and sumCount (a
 * LongAdder), and the byte count behind chm_stats_get.
 *
 * The entry count is a base counter CASed by uncontended writers and, once those CASes start to
 * fail, striped counter cells, each on its own cache line (Java: @Contended), picked by a
 * per-thread probe. chm_size (sumCount) adds them up: exact when quiescent. Unlike Java, the
 * cell array is allocated once at its final size (the number of CPUs rounded up to a power of
 * two, at least 2) at the first contention; "doubling the array" is doubling the count of cells
 * in use, so no array is ever copied or retired. If that allocation fails the base counter is
 * used (Java's final fallback).
 *
 * Why Java's algorithm and not readmostly's simpler striped counter (a fixed cell per writer
 * thread, chosen by its ticket): this backend ports ConcurrentHashMap, whose addCount also
 * drives the resize check (sumCount after a contended add), and the LongAdder shape is what
 * makes an uncontended map pay one CAS on one word and no cell array at all. The cells' memory
 * layout is shared with readmostly (src/stripes.h); the choice of cell is not.
 *
 * Memory ordering. Relaxed everywhere in the counters: a count needs atomicity only. chm_size
 * is exact once the caller happens after every write (quiescent), and the resize check is a
 * heuristic. Only the cell array's publication is release/acquire (load_cells, binlock.h).
 *
 * Bytes. What the map holds is derived, not counted, wherever it can be: the map struct, the
 * tables, the cell array, and sizeof(struct bl_node) per entry (from the entry count). The rest
 * -- xbytes -- is what entries x sizeof(struct bl_node) misses: the larger size of TreeNodes
 * (TNODE_EXTRA each), TreeBins, and with chm_keys_string the stored key copies (strlen + 1). It
 * changes only where such objects come and go (tree bins, string keys), so a map of integer
 * keys never writes it. It is striped like the count: a base word on the base counter's line
 * and one byte cell per counter cell, written with relaxed fetch_adds (a sum needs atomicity
 * only, as the count).
 */
#include "binlock.h"
#include "stripes.h"
#include "torture.h"

/* ThreadLocalRandom.getProbe(): this thread's counter-cell hash; 0 = not initialised. */
static _Thread_local uint32_t bl_probe __attribute__((tls_model("initial-exec")));

/* ThreadLocalRandom.localInit(): probes are drawn in sequence, PROBE_INCREMENT apart, not at
 * random. The increment is odd, and an odd step is a permutation modulo every power of two, so
 * k threads that draw in a row start on k distinct cells of any array of k or more cells: two
 * writers of a two-cell array never share a cell line unless a failed CAS rehashes one. With a
 * random probe (this port's first version) they shared one half of the time, and then every
 * count moved the line between cores -- a CAS that does not fail never rehashes. */
#define BL_PROBE_INCREMENT 0x9e3779b9u

static uint32_t probe_init(void)
{
    static atomic_uint seeder;
    uint32_t h = atomic_fetch_add_explicit(&seeder, BL_PROBE_INCREMENT, memory_order_relaxed) +
                 BL_PROBE_INCREMENT;
    return h != 0 ? h : 1; /* skip 0, as Java */
}

uint32_t chm__binlock_probe(void)
{
    if (bl_probe == 0)
        bl_probe = probe_init();
    return bl_probe;
}

static inline uint32_t advance_probe(uint32_t h) /* ThreadLocalRandom.advanceProbe: xorshift */
{
    h ^= h << 13;
    h ^= h >> 17;
    h ^= h << 5;
    return h;
}

static inline _Atomic int64_t *cell_at(struct bl_map *m, unsigned char *cells, unsigned i)
{
    return chm__cell_at(cells, m->cell_stride, i);
}

/* The byte cell beside counter cell @i (see bl_map). */
static inline _Atomic int64_t *xcell_at(struct bl_map *m, unsigned char *cells, unsigned i)
{
    return chm__cell_at(cells + m->xcell_off, m->cell_stride, i);
}

static inline bool cas_add(_Atomic int64_t *c, int64_t x)
{
    int64_t v = atomic_load_explicit(c, memory_order_relaxed);
    return atomic_compare_exchange_strong_explicit(c, &v, v + x, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* ---- the entry count --------------------------------------------------------------------------- */

static void full_add_count(struct bl_map *m, int64_t x, bool was_uncontended);

void chm__bl_add_count_cells(struct bl_map *m, int64_t x, long check)
{
    unsigned char *cells = load_cells(m);
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
    int64_t s = chm__bl_sum_count(m);
    if (check >= 0)
        resize_check(m, s);
}

int64_t chm__bl_sum_count(struct bl_map *m)
{
    int64_t sum = atomic_load_explicit(&m->base_count, memory_order_relaxed);
    unsigned char *cells = load_cells(m);
    if (cells != NULL)
        sum += chm__cells_sum(cells, m->cell_stride,
                              atomic_load_explicit(&m->ncells, memory_order_relaxed));
    return sum;
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
        unsigned char *cells = load_cells(m);
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
                    /* Release: pairs with load_cells; the zeroed cells, x and ncells are
                     * visible to whoever sees the array. */
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

/* ---- bytes (chm_stats_get) --------------------------------------------------------------------- */

/* Add @x to xbytes: this thread's byte cell once there are cells, else the base word. */
void chm__bl_add_xbytes_now(struct bl_map *m, int64_t x)
{
    unsigned char *cells = load_cells(m);
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

int64_t chm__bl_sum_xbytes(struct bl_map *m)
{
    int64_t sum = atomic_load_explicit(&m->xbase, memory_order_relaxed);
    unsigned char *cells = load_cells(m);
    if (cells != NULL) /* every byte cell: ncells may have grown since a writer read it */
        sum += chm__cells_sum(cells + m->xcell_off, m->cell_stride, m->max_cells);
    return sum;
}
