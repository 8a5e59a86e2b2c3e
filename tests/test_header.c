/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_header.c - chm.h compiles on its own as C11 (with -Wpedantic as an error, so no GNU
 * extension hides in it) and every public name of the contract exists with the declared type:
 * types, enums, externs and functions, and the ten CHM_CAP_* bits are distinct single bits. A
 * small run uses each function once, so the names also link.
 */
#pragma GCC diagnostic error "-Wpedantic"
#include "chm.h" /* first: the header must be self-contained */
#pragma GCC diagnostic warning "-Wpedantic"

#if !defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L
#error "test_header.c must be compiled as C11 or later"
#endif

#include <errno.h>
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "testlib.h"

/* ---- compile-time: types, enums and constants ------------------------------------------- */

_Static_assert(CHM_OK == 0, "CHM_OK");
_Static_assert(CHM_NOTFOUND == 1, "CHM_NOTFOUND");
_Static_assert(CHM_EXISTS == 2, "CHM_EXISTS");
_Static_assert(CHM_END == 3, "CHM_END");
_Static_assert(CHM_EINVAL == -1, "CHM_EINVAL");
_Static_assert(CHM_ENOMEM == -2, "CHM_ENOMEM");
_Static_assert(CHM_ECONCURRENT == -3, "CHM_ECONCURRENT");
_Static_assert(CHM_ERACE == -4, "CHM_ERACE");
_Static_assert(CHM_EDEADLK == -5, "CHM_EDEADLK");
_Static_assert(CHM_COMPUTE_KEEP == 0, "CHM_COMPUTE_KEEP is 0 (a zeroed action keeps)");
_Static_assert(CHM_COMPUTE_SET != CHM_COMPUTE_KEEP && CHM_COMPUTE_DELETE != CHM_COMPUTE_KEEP &&
                   CHM_COMPUTE_SET != CHM_COMPUTE_DELETE,
               "chm_compute_action");
/* the capability bits: eleven distinct single bits */
#define CAP_ALL                                                                                    \
    (CHM_CAP_THREAD_SAFE | CHM_CAP_FAIL_FAST_ITER | CHM_CAP_STORE_FREE_GET | CHM_CAP_TREE_BINS |   \
     CHM_CAP_RACE_DETECT | CHM_CAP_PADDING_SWITCH | CHM_CAP_RWLOCK_KINDS |                         \
     CHM_CAP_COMPUTE_EXCLUSIVE | CHM_CAP_DEFERRED_FREE | CHM_CAP_SEGMENTS |                        \
     CHM_CAP_ITER_HOLDS_RECLAIM)
_Static_assert(__builtin_popcount(CAP_ALL) == 11, "CHM_CAP_* bits are distinct single bits");
_Static_assert(offsetof(chm_options, size) + sizeof(size_t) <= sizeof(chm_options),
               "chm_options.size");
_Static_assert(CHM_RACE_ABORT == 0, "CHM_RACE_ABORT is the default");
_Static_assert(CHM_RACE_RETURN != CHM_RACE_ABORT, "CHM_RACE_RETURN");
_Static_assert(CHM_COMPUTE_NESTING_MAX >= 2, "computes nest across maps");
_Static_assert(sizeof(chm_iter) == CHM_ITER_SIZE, "chm_iter size");
_Static_assert(alignof(chm_iter) == 16, "chm_iter alignment");
_Static_assert(CHM_VERSION_MAJOR >= 0 && CHM_VERSION_MINOR >= 0 && CHM_VERSION_PATCH >= 0,
               "version macros");

/* Every function has the contract's exact type (a mismatch is a compile error). */
static const chm_backend *(*const p_find)(const char *) = chm_backend_find;
static const char *(*const p_name)(const chm_backend *) = chm_backend_name;
static const chm_backend *const *(*const p_list)(void) = chm_backend_list;
static bool (*const p_thread_safe)(const chm_backend *) = chm_backend_thread_safe;
static const char *(*const p_strerror)(int) = chm_strerror;
static chm *(*const p_new)(const chm_backend *, const chm_options *) = chm_new;
static void (*const p_free)(chm *) = chm_free;
static int (*const p_get)(chm *, uint64_t, uint64_t *) = chm_get;
static int (*const p_put)(chm *, uint64_t, uint64_t, uint64_t *) = chm_put;
static int (*const p_pia)(chm *, uint64_t, uint64_t, uint64_t *) = chm_put_if_absent;
static int (*const p_remove)(chm *, uint64_t, uint64_t *) = chm_remove;
static int (*const p_replace)(chm *, uint64_t, uint64_t, uint64_t) = chm_replace;
static int (*const p_cia)(chm *, uint64_t, chm_compute_fn *, void *,
                          uint64_t *) = chm_compute_if_absent;
static size_t (*const p_size)(chm *) = chm_size;
static int (*const p_iter_init)(chm_iter *, chm *) = chm_iter_init;
static int (*const p_iter_next)(chm_iter *, uint64_t *, uint64_t *) = chm_iter_next;
static void (*const p_iter_fini)(chm_iter *) = chm_iter_fini;
static int (*const p_compute)(chm *, uint64_t, chm_update_fn *, void *, uint64_t *) = chm_compute;
static int (*const p_remove_if)(chm *, uint64_t, uint64_t) = chm_remove_if;
static int (*const p_clear)(chm *) = chm_clear;
static int (*const p_visit)(chm *, uint64_t, chm_visit_fn *, void *) = chm_visit;
static int (*const p_stats)(chm *, chm_stats *) = chm_stats_get;
static unsigned (*const p_caps)(const chm_backend *) = chm_backend_caps;
/* additions to the contract declared by the header */
static const chm_backend *(*const p_map_backend)(const chm *) = chm_map_backend;
static uint64_t (*const p_hash_u64)(uint64_t, uint64_t) = chm_hash_u64;
static uint64_t (*const p_hash_bytes)(const void *, size_t, uint64_t) = chm_hash_bytes;
static int (*const p_reclaim)(chm *) = chm_reclaim;

/* Every extern has the contract's type. */
static const chm_backend *const p_unsafe = &chm_unsafe;
static const chm_backend *const p_rwlock = &chm_rwlock;
static const chm_backend *const p_segmented = &chm_segmented;
static const chm_backend *const p_binlock = &chm_binlock;
static const chm_backend *const p_readmostly = &chm_readmostly;
static const chm_keyops *const p_keys_u64 = &chm_keys_u64;
static const chm_keyops *const p_keys_string = &chm_keys_string;

/* chm_keyops and chm_options have the contract's fields with the contract's types. */
static uint64_t my_hash(uint64_t key, uint64_t seed)
{
    return key ^ seed;
}
static bool my_equal(uint64_t a, uint64_t b)
{
    return a == b;
}
static int my_compare(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}
static bool my_retain(uint64_t key, uint64_t *stored)
{
    *stored = key;
    return true;
}
static void my_release(uint64_t key)
{
    (void)key;
}
static const chm_keyops my_keys = {
    .hash = my_hash,
    .equal = my_equal,
    .compare = my_compare,
    .retain = my_retain,
    .release = my_release,
};

static unsigned long frees;
static void my_value_free(uint64_t value, void *ctx)
{
    (void)value;
    (void)ctx;
    frees++;
}

static uint64_t my_compute(uint64_t key, void *arg)
{
    return key + *(uint64_t *)arg;
}

static chm_compute_action my_update(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                    void *arg)
{
    (void)key;
    (void)arg;
    if (present && old == 13)
        return CHM_COMPUTE_DELETE;
    *value = old + 1;
    return CHM_COMPUTE_SET;
}

static void my_visit(uint64_t key, uint64_t value, void *arg)
{
    *(uint64_t *)arg = key + value;
}

static void test_names_exist(void *arg)
{
    (void)arg;
    /* the function pointers are the functions */
    CHECK(p_find == chm_backend_find && p_name == chm_backend_name && p_list == chm_backend_list);
    CHECK(p_thread_safe == chm_backend_thread_safe && p_strerror == chm_strerror);
    CHECK(p_new == chm_new && p_free == chm_free && p_get == chm_get && p_put == chm_put);
    CHECK(p_pia == chm_put_if_absent && p_remove == chm_remove && p_replace == chm_replace);
    CHECK(p_cia == chm_compute_if_absent && p_size == chm_size);
    CHECK(p_iter_init == chm_iter_init && p_iter_next == chm_iter_next &&
          p_iter_fini == chm_iter_fini);
    CHECK(p_map_backend == chm_map_backend && p_hash_u64 == chm_hash_u64 &&
          p_hash_bytes == chm_hash_bytes && p_reclaim == chm_reclaim);
    CHECK(p_compute == chm_compute && p_remove_if == chm_remove_if && p_clear == chm_clear &&
          p_visit == chm_visit && p_stats == chm_stats_get && p_caps == chm_backend_caps);
    /* chm_stats has the contract's fields */
    chm_stats st = {.entries = 1, .buckets = 2, .bytes = 3, .resizes = 4, .pending = 5};
    CHECK_EQ(st.entries + st.buckets + st.bytes + st.resizes + st.pending, 15);
    CHECK(p_keys_u64->hash != NULL && p_keys_u64->equal != NULL);
    CHECK(p_keys_string->hash != NULL && p_keys_string->equal != NULL);

    /* the externs are the backends the registry lists, in the contract's order */
    const chm_backend *expected[6];
    int n = 0;
    expected[n++] = p_unsafe;
    expected[n++] = p_rwlock;
    expected[n++] = p_segmented;
    expected[n++] = p_binlock;
    expected[n++] = p_readmostly;
    const chm_backend *const *list = chm_backend_list();
    int i = 0;
    for (; list[i] != NULL && i < n; i++)
        CHECK(list[i] == expected[i]);
    CHECK_EQ(i, n);
    /* Backends a later version adds come after the contract's, each a different one. */
    for (; list[i] != NULL; i++)
        for (int j = 0; j < n; j++)
            CHECK(list[i] != expected[j]);

    /* the enum types exist */
    chm_race_policy pol = CHM_RACE_RETURN;
    chm_rwlock_kind kind = CHM_RWLOCK_CK;
    CHECK(pol != CHM_RACE_ABORT && kind != CHM_RWLOCK_PTHREAD && kind != CHM_RWLOCK_ADAPTIVE);
    /* zeroed options pick the default lock */
    CHECK(CHM_RWLOCK_ADAPTIVE == 0);
}

static void test_use_every_function(void *arg)
{
    (void)arg;
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++) {
        const chm_backend *b = *p;
        CHECK(chm_backend_find(chm_backend_name(b)) == b);
        (void)chm_backend_thread_safe(b);

        chm_options o;
        memset(&o, 0, sizeof o);
        o.capacity = 4;
        o.concurrency = 2;
        o.keys = &my_keys;
        o.seed = 42;
        o.on_race = CHM_RACE_RETURN;
        o.value_free = my_value_free;
        o.ctx = NULL;
        o.rwlock = CHM_RWLOCK_PTHREAD;
        o.packed = false;
        frees = 0;
        chm *m = chm_new(b, &o);
        if (!CHECK(m != NULL))
            continue;
        CHECK(chm_map_backend(m) == b);
        uint64_t v = 0, add = 100;
        CHECK_RC(chm_put(m, 1, 10, NULL), CHM_OK);
        CHECK_RC(chm_put(m, 1, 11, &v), CHM_EXISTS);
        CHECK_EQ(v, 10);
        CHECK_RC(chm_put_if_absent(m, 1, 12, &v), CHM_EXISTS);
        CHECK_EQ(v, 11);
        CHECK_RC(chm_replace(m, 1, 11, 13), CHM_OK);
        CHECK_RC(chm_get(m, 1, &v), CHM_OK);
        CHECK_EQ(v, 13);
        CHECK_RC(chm_compute_if_absent(m, 2, my_compute, &add, &v), CHM_OK);
        CHECK_EQ(v, 102);
        CHECK_EQ(chm_size(m), 2);
        CHECK_RC(chm_compute(m, 3, my_update, NULL, &v), CHM_OK); /* 0 + 1, inserted */
        CHECK_EQ(v, 1);
        CHECK_RC(chm_remove_if(m, 3, 1), CHM_OK); /* frees 1 */
        CHECK_RC(chm_visit(m, 2, my_visit, &v), CHM_OK);
        CHECK_EQ(v, 104);
        chm_stats st;
        CHECK_RC(chm_stats_get(m, &st), CHM_OK);
        CHECK_EQ(st.entries, 2);
        CHECK(((chm_backend_caps(b) & CHM_CAP_THREAD_SAFE) != 0) == chm_backend_thread_safe(b));
        chm_iter it;
        CHECK_RC(chm_iter_init(&it, m), CHM_OK);
        uint64_t k, sum = 0;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
            sum += k + v;
        CHECK_RC(rc, CHM_END);
        chm_iter_fini(&it);
        CHECK_EQ(sum, 1 + 13 + 2 + 102);
        CHECK_RC(chm_remove(m, 1, &v), CHM_OK);
        CHECK_EQ(v, 13);
        CHECK_RC(chm_clear(m), CHM_OK); /* frees 102 */
        CHECK_EQ(chm_size(m), 0);
        o.size = sizeof o;
        chm_free(m);
        m = chm_new(b, &o); /* options with their size */
        if (CHECK(m != NULL))
            chm_free(m);
        CHECK_EQ(frees, 5); /* 10 and 11 replaced, 1 and 13 removed, 102 cleared */
    }
    CHECK(strcmp(chm_strerror(CHM_OK), chm_strerror(CHM_ENOMEM)) != 0);
    CHECK(chm_hash_u64(1, 2) == chm_hash_u64(1, 2));
    CHECK(chm_hash_bytes("ab", 2, 7) == chm_hash_bytes("ab", 2, 7));
    errno = 0;
    CHECK(chm_new(NULL, NULL) == NULL && errno == EINVAL);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_run("header/names_exist", test_names_exist, NULL);
    tl_run("header/use_every_function", test_use_every_function, NULL);
    return tl_finish();
}
