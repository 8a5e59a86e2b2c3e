/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * backends.c - chm_backends: the library's backends, selected by capability, for scripts.
 *
 *   chm_backends [CAP ...]
 *
 * prints, comma-separated on one line, the names of chm_backend_list()'s backends (in its order)
 * whose chm_backend_caps() has every CAP given: a CHM_CAP_* name without the prefix, e.g.
 * `chm_backends PADDING_SWITCH` -> the backends with chm_options.packed. An unknown CAP is an
 * error (exit 2). tools/make_bench.sh builds make bench's and make compare's backend lists with
 * it, so that a new backend is benchmarked with no edit there.
 */
#include <chm.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    unsigned bit;
} caps[] = {
    {"THREAD_SAFE", CHM_CAP_THREAD_SAFE},
    {"FAIL_FAST_ITER", CHM_CAP_FAIL_FAST_ITER},
    {"STORE_FREE_GET", CHM_CAP_STORE_FREE_GET},
    {"TREE_BINS", CHM_CAP_TREE_BINS},
    {"RACE_DETECT", CHM_CAP_RACE_DETECT},
    {"PADDING_SWITCH", CHM_CAP_PADDING_SWITCH},
    {"RWLOCK_KINDS", CHM_CAP_RWLOCK_KINDS},
    {"COMPUTE_EXCLUSIVE", CHM_CAP_COMPUTE_EXCLUSIVE},
    {"DEFERRED_FREE", CHM_CAP_DEFERRED_FREE},
    {"SEGMENTS", CHM_CAP_SEGMENTS},
    {"ITER_HOLDS_RECLAIM", CHM_CAP_ITER_HOLDS_RECLAIM},
};

int main(int argc, char **argv)
{
    unsigned want = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = strncmp(argv[i], "CHM_CAP_", 8) == 0 ? argv[i] + 8 : argv[i];
        size_t k = 0;
        while (k < sizeof caps / sizeof caps[0] && strcmp(caps[k].name, arg) != 0)
            k++;
        if (k == sizeof caps / sizeof caps[0]) {
            fprintf(stderr, "chm_backends: unknown capability '%s'; one of:", argv[i]);
            for (k = 0; k < sizeof caps / sizeof caps[0]; k++)
                fprintf(stderr, " %s", caps[k].name);
            fputc('\n', stderr);
            return 2;
        }
        want |= caps[k].bit;
    }
    const char *sep = "";
    for (const chm_backend *const *b = chm_backend_list(); *b; b++)
        if ((chm_backend_caps(*b) & want) == want) {
            printf("%s%s", sep, chm_backend_name(*b));
            sep = ",";
        }
    putchar('\n');
    return 0;
}
