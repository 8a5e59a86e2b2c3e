/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_gomap.c - the Go table (variants/gomap.h, under chm_unsafe and chm_rwlock) on its own,
 * in the states a map's public calls pass through only for an instant:
 *
 *   no_array      a table without a bucket array (before its first insert, and between
 *                 chm__gomap_clear_detach and _reattach, where chm_rwlock's readers run while
 *                 the cleared entries are released): every lookup, integer-key and generic,
 *                 misses, and the table validates -- the lookup has no test for that state, it
 *                 reads one shared empty bucket with index mask 0 (a mask left at the detached
 *                 array's size would read past that bucket: the validation catches it, code -11);
 *   growing       lookups while an incremental growth is under way (oldbuckets set: the
 *                 integer-key lookup's out-of-line path) find every key, in evacuated and not
 *                 yet evacuated old buckets alike.
 */
#include "testlib.h"

#include "gomap.h"

#include <stdlib.h>
#include <string.h>

enum { N = 5000 };

static uint64_t key_at(int i)
{
    return ((uint64_t)i + 1) * 0x9e3779b97f4a7c15ULL;
}

/* Put key_at(i) -> ~key_at(i) for i in [from, to). */
static bool fill(gomap *g, int from, int to)
{
    for (int i = from; i < to; i++) {
        uint64_t *val;
        int rc = chm__gomap_assign(g, key_at(i), &val);
        if (!CHECK_RC(rc, CHM_OK))
            return false;
        *val = ~key_at(i);
    }
    return true;
}

/* Every key of [0, n) is present with its value (both lookups), none of [n, 2n) is. */
static bool holds_exactly(const gomap *g, int n)
{
    for (int i = 0; i < 2 * n; i++) {
        uint64_t v = 0, w = 0;
        int want = i < n ? CHM_OK : CHM_NOTFOUND;
        int a = chm__gomap_get_u64(g, key_at(i), &v), b = chm__gomap_get(g, key_at(i), &w);
        if (!CHECK_RC(a, want) || !CHECK_RC(b, want)) {
            FAIL("key %d of %d: get_u64 %d, get %d, want %d", i, n, a, b, want);
            return false;
        }
        if (want == CHM_OK && (!CHECK_EQ(v, ~key_at(i)) || !CHECK_EQ(w, ~key_at(i))))
            return false;
    }
    return true;
}

static void sub_no_array(void *arg)
{
    (void)arg;
    chm *owner = chm_new(&chm_unsafe, NULL); /* the seed, hash multiplier and key ops */
    if (!CHECK(owner != NULL))
        return;
    for (size_t hint = 0; hint <= 100000; hint += 100000) {
        gomap g;
        if (!CHECK_RC(chm__gomap_init(&g, owner, hint), CHM_OK))
            break;
        CHECK_EQ((uint64_t)(int64_t)chm__gomap_validate(&g), 0);
        holds_exactly(&g, 0);
        fill(&g, 0, N);
        holds_exactly(&g, N);
        CHECK_RC(chm__gomap_finish_growth(&g), CHM_OK);
        gomap_cleared c;
        if (CHECK(chm__gomap_clear_detach(&g, &c))) {
            /* The instant between detach and reattach, with the array at its grown size. */
            CHECK(g.B > 0);
            if (!CHECK_EQ((uint64_t)(int64_t)chm__gomap_validate(&g), 0))
                FAIL("hint %zu: detached table invalid: %d", hint, chm__gomap_validate(&g));
            holds_exactly(&g, 0);
            chm__gomap_clear_release(owner, &c);
            holds_exactly(&g, 0);
            chm__gomap_clear_reattach(&g, &c);
        }
        CHECK_EQ((uint64_t)(int64_t)chm__gomap_validate(&g), 0);
        holds_exactly(&g, 0);
        fill(&g, 0, N / 2); /* the reattached array takes inserts again */
        holds_exactly(&g, N / 2);
        CHECK_EQ((uint64_t)(int64_t)chm__gomap_validate(&g), 0);
        chm__gomap_destroy(&g);
    }
    chm_free(owner);
}

static void sub_growing(void *arg)
{
    (void)arg;
    chm *owner = chm_new(&chm_unsafe, NULL);
    if (!CHECK(owner != NULL))
        return;
    gomap g;
    if (!CHECK_RC(chm__gomap_init(&g, owner, 0), CHM_OK)) {
        chm_free(owner);
        return;
    }
    int growing_checks = 0;
    for (int n = 0; n < N && tl_failures() == 0; n++) {
        fill(&g, n, n + 1);
        if (gomap_growing(&g) && (growing_checks++ % 16) == 0)
            holds_exactly(&g, n + 1); /* some old buckets evacuated, some not */
    }
    if (!CHECK(growing_checks > 100))
        FAIL("only %d inserts left the table growing: the growth path was not exercised",
             growing_checks);
    CHECK_EQ((uint64_t)(int64_t)chm__gomap_validate(&g), 0);
    holds_exactly(&g, N);
    chm__gomap_destroy(&g);
    chm_free(owner);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_run("no_array", sub_no_array, NULL);
    tl_run("growing", sub_growing, NULL);
    return tl_finish();
}
