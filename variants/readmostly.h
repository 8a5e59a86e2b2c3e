/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * readmostly.h - test hooks of chm_readmostly (variants/readmostly.c). Internal: not installed.
 *
 * The backend itself is reached through chm.h (chm_readmostly); this header only lets
 * tests/test_readmostly.c observe the Go sync.Map state machine (promotions, dirty rebuilds,
 * expunged entries) that the public API hides.
 */
#ifndef CHM_READMOSTLY_H
#define CHM_READMOSTLY_H

#include "chm_internal.h"

/* A snapshot of a chm_readmostly map's internals. Take it only while no other thread uses the
 * map (it reads fields that writers change under the mutex without taking it itself). */
struct chm__rm_stats {
    bool amended;          /* the read snapshot's amended flag */
    bool has_dirty;        /* a dirty map exists */
    size_t read_entries;   /* entries in the read index (live, deleted and expunged) */
    size_t read_live;      /* ... of which live */
    size_t read_deleted;   /* ... of which deleted (p == NULL) */
    size_t read_expunged;  /* ... of which expunged */
    size_t read_slots;     /* slots of the read index (a power of two) */
    size_t dirty_entries;  /* entries in the dirty map (0 without one) */
    size_t misses;         /* Go's misses */
    uint64_t promotions;   /* dirty maps promoted to the read snapshot so far */
    uint64_t dirty_builds; /* dirtyLocked copies so far */
};

/* Fill *out for @m, which must be a chm_readmostly map. CHM_OK, or CHM_EINVAL for another
 * backend. */
CHM_HIDDEN int chm__readmostly_stats(chm *m, struct chm__rm_stats *out);

/* The slots of its index that the chm_readmostly iterator @it has visited so far (after
 * chm_iter_init: 0). A cost counter for tests: how far an iteration walks to its first key. */
CHM_HIDDEN size_t chm__readmostly_iter_scanned(const chm_iter *it);

#endif /* CHM_READMOSTLY_H */
