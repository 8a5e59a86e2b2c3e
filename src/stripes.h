/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * stripes.h - what the library's striped structures share: the number that says which stripe a
 * thread uses, and the memory layout of striped counters. Internal.
 *
 * Thread tickets. chm__thread_ticket() numbers threads 1, 2, 3, ... in the order they first
 * ask; a structure with a power-of-two number of stripes gives thread t stripe t & mask, so
 * up to that many threads never share one. Users: src/pool.c (which free list a thread uses),
 * src/smr.c (which retire queue of a domain) and readmostly's live-entry counter
 * (variants/readmostly.c). binlock's counter cells do not
 * use it: they follow Java's LongAdder, which hashes a per-thread probe and rehashes it when a
 * cell is contended (variants/binlock_count.c says why it keeps Java's algorithm).
 *
 * Counter cells. A striped counter is int64 cells in one cache-line-aligned array, stride bytes
 * apart: a whole cache line each (struct chm__cell_line), so that writers adding to different
 * cells never write the same line, or 8 bytes with chm_options.packed -- eight to a line, the
 * false-sharing benchmark's control. Cells are added to and read with relaxed atomics: a sum
 * needs atomicity only, and is exact once every add happens before it (a join, a lock
 * hand-off), which is all the counters promise (chm_size is exact when quiescent). Users:
 * binlock's counter and byte cells, readmostly's live-entry stripes.
 */
#ifndef CHM_STRIPES_H
#define CHM_STRIPES_H

#include "chm_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* This thread's ticket, 0 until drawn (defined in stripes.c). */
CHM_HIDDEN extern _Thread_local unsigned chm__thread_ticket_tls
    __attribute__((tls_model("initial-exec")));
CHM_HIDDEN extern atomic_uint chm__thread_ticket_next;

/* The calling thread's ticket: 1, 2, 3, ... in the order threads first call it. */
static inline unsigned chm__thread_ticket(void)
{
    unsigned t = chm__thread_ticket_tls;
    if (chm_unlikely(t == 0)) {
        /* Relaxed: a ticket, ordering nothing. 0 again after 2^32 threads: drawn again. */
        t = atomic_fetch_add_explicit(&chm__thread_ticket_next, 1, memory_order_relaxed) + 1;
        chm__thread_ticket_tls = t;
    }
    return t;
}

/* The number of stripes for @wanted threads: a power of two, at least 1, at most @max (itself a
 * power of two). Users: src/pool.c, src/smr.c, variants/readmostly.c. */
static inline unsigned chm__stripe_count(unsigned wanted, unsigned max)
{
    unsigned n = 1;
    while (n < wanted && n < max)
        n <<= 1;
    return n;
}

/* A counter cell with its cache line to itself: the unpacked layout. */
struct chm__cell_line {
    alignas(CHM_CACHELINE) _Atomic int64_t value;
};
_Static_assert(sizeof(struct chm__cell_line) == CHM_CACHELINE, "a padded cell is one line");

/* The distance between cells: a line each, or 8 bytes when @packed. */
static inline size_t chm__cell_stride(bool packed)
{
    return packed ? sizeof(_Atomic int64_t) : sizeof(struct chm__cell_line);
}

/* Cell @i of the array @cells whose cells are @stride bytes apart. */
static inline _Atomic int64_t *chm__cell_at(unsigned char *cells, size_t stride, size_t i)
{
    return (_Atomic int64_t *)(void *)(cells + i * stride);
}

/* The sum of cells [0, @n) (relaxed loads: see the top). */
static inline int64_t chm__cells_sum(unsigned char *cells, size_t stride, size_t n)
{
    int64_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += atomic_load_explicit(chm__cell_at(cells, stride, i), memory_order_relaxed);
    return sum;
}

#endif /* CHM_STRIPES_H */
