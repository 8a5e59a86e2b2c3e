/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * reentry.c - the re-entrancy guard's stack and its two slow paths (see reentry.h).
 */
#include "reentry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local struct chm__reentry chm__reentry __attribute__((tls_model("initial-exec")));

/* Push (@m, @hold), as chm__reentry_run; returns the depth to restore. */
static unsigned push(const chm *m, enum chm__hold hold)
{
    unsigned d = chm__reentry.depth;
    if (chm_unlikely(d >= CHM_COMPUTE_NESTING_MAX)) {
        /* The backend skipped chm__reentry_check: a library bug, not the caller's. */
        fprintf(stderr, "chm: %s: compute functions nested deeper than %d, unchecked\n",
                m->backend->name, CHM_COMPUTE_NESTING_MAX);
        abort();
    }
    chm__reentry.map[d] = m;
    chm__reentry.hold[d] = (unsigned char)hold;
    /* Only this thread reads its own stack: plain stores, visible to the calls fn makes. */
    chm__reentry.depth = d + 1;
    return d;
}

uint64_t chm__reentry_run(const chm *m, enum chm__hold hold, chm_compute_fn *fn, uint64_t key,
                          void *arg)
{
    unsigned d = push(m, hold);
    uint64_t v = fn(key, arg);
    chm__reentry.depth = d; /* fn's own nested computes have popped theirs */
    return v;
}

chm_compute_action chm__reentry_update(const chm *m, enum chm__hold hold, chm_update_fn *fn,
                                       uint64_t key, bool present, uint64_t old, uint64_t *value,
                                       void *arg)
{
    unsigned d = push(m, hold);
    *value = present ? old : 0;
    chm_compute_action a = fn(key, present, present ? old : 0, value, arg);
    chm__reentry.depth = d;
    return a == CHM_COMPUTE_SET || a == CHM_COMPUTE_DELETE ? a : CHM_COMPUTE_KEEP;
}

void chm__reentry_visit(const chm *m, chm_visit_fn *fn, uint64_t key, uint64_t value, void *arg)
{
    unsigned d = chm__reentry.depth;
    if (chm_unlikely(d >= CHM_COMPUTE_NESTING_MAX)) {
        fn(key, value, arg);
        return;
    }
    push(m, CHM__HOLD_READ);
    fn(key, value, arg);
    chm__reentry.depth = d;
}

void chm__lock_failed(int err, const char *call, const char *site)
{
    fprintf(stderr, "chm: %s failed at %s: %s (mutual exclusion would be lost)\n", call, site,
            strerror(err));
    abort();
}
