/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * torture.h - yield points for the CHM_VALIDATE torture build (liburcu's debug-yield idea).
 *
 * CHM_YIELD_POINT("backend.window") marks a critical window: between a lock-free read and the
 * check that validates it, inside a resize step, before a publication store, between CAS
 * attempts. In a normal build it expands to nothing. With -DCHM_VALIDATE=1 (cmake
 * -DCHM_VALIDATE=ON) each use becomes a call that counts a hit for its site and, drawing from a
 * thread-local xorshift generator, does nothing, sched_yield()s, or spins a random number of
 * pauses: interleavings that are one instruction wide in a normal run become thousands of
 * cycles wide, so the concurrency suites meet them.
 *
 * The probabilities come from the environment variable CHM_TORTURE, read once per process:
 *   off     count hits only, never perturb
 *   light   (default) yield 1/64, spin up to 64 pauses 1/8
 *   heavy   yield 1/32, spin up to 1024 pauses 1/4
 *
 * Each site is a static record placed in the linker section "chm_yield_sites", so the table of
 * every site compiled into the library can be walked (tests assert that each was reached: a
 * yield point that is never reached widens nothing). Hit counters are relaxed atomics.
 */
#ifndef CHM_TORTURE_H
#define CHM_TORTURE_H

#include "chm_internal.h"

#if defined(CHM_VALIDATE) && CHM_VALIDATE

struct chm__yield_site {
    const char *name; /* "backend.window" */
    const char *file;
    unsigned line;
    atomic_uint_fast64_t hits; /* relaxed: a statistic */
} __attribute__((aligned(32)));
_Static_assert(sizeof(struct chm__yield_site) == 32, "sites pack into a dense section array");

/* Count a hit on @site, then perhaps yield or spin (see above). */
CHM_HIDDEN void chm__yield(struct chm__yield_site *site);

#define CHM_YIELD_POINT(site_name)                                                                 \
    do {                                                                                           \
        static struct chm__yield_site chm__ys                                                      \
            __attribute__((section("chm_yield_sites"), used)) = {(site_name), __FILE__, __LINE__,  \
                                                                 0};                               \
        chm__yield(&chm__ys);                                                                      \
    } while (0)

/* ---- for tests ---------------------------------------------------------------------------- */

enum chm__torture_mode { CHM_TORTURE_OFF, CHM_TORTURE_LIGHT, CHM_TORTURE_HEAVY };

/* Every site compiled into the library: *first and the count. */
CHM_HIDDEN size_t chm__yield_sites(struct chm__yield_site **first);
/* The mode in force (CHM_TORTURE, read on first use); set overrides it from now on. */
CHM_HIDDEN enum chm__torture_mode chm__torture_mode(void);
CHM_HIDDEN void chm__torture_set_mode(enum chm__torture_mode mode);

#else

#define CHM_YIELD_POINT(site_name) ((void)0)

#endif

#endif /* CHM_TORTURE_H */
