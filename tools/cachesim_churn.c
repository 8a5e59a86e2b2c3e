/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cachesim_churn.c - a deterministic churn for tools/cachesim_churn.sh: a map of WINDOW integer
 * keys (fixed seed) where each step inserts a new key, removes the oldest and reads one from the
 * middle, so removes and reads miss the caches as the `churn` benchmark's do, but the same
 * accesses happen on every run: cachegrind's simulated misses then compare two builds without
 * the host's noise.
 *
 * usage: cachesim_churn BACKEND [STEPS]   (prints the final size: WINDOW)
 */
#include <chm.h>

#include <stdio.h>
#include <stdlib.h>

#define WINDOW 100000UL

int main(int argc, char **argv)
{
    const chm_backend *b = argc > 1 ? chm_backend_find(argv[1]) : NULL;
    unsigned long steps = argc > 2 ? strtoul(argv[2], NULL, 10) : 300000;
    if (b == NULL) {
        fprintf(stderr, "usage: cachesim_churn BACKEND [STEPS]\n");
        return 2;
    }
    chm_options o = {.seed = 42};
    chm *m = chm_new(b, &o);
    if (m == NULL)
        return 1;
    for (unsigned long i = 0; i < WINDOW; i++)
        chm_put(m, i, i, NULL);
    for (unsigned long i = WINDOW; i < WINDOW + steps; i++) {
        uint64_t v;
        chm_put(m, i, i, NULL);
        chm_remove(m, i - WINDOW, NULL);
        chm_get(m, i - WINDOW / 2, &v);
    }
    printf("%zu\n", chm_size(m));
    chm_free(m);
    return 0;
}
