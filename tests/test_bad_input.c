/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_bad_input.c - every entry point of include/chm.h fed bad or extreme arguments.
 *
 *   backends        chm_backend_find with NULL, "", unknown and wrongly cased names -> NULL;
 *                   chm_backend_name / chm_backend_thread_safe / chm_map_backend of NULL;
 *                   chm_strerror of every code and of unknown ones; chm_hash_bytes(NULL, 0)
 *   new_invalid     chm_new with a NULL or foreign backend, key ops without hash or equal, an
 *                   unknown on_race or rwlock kind -> NULL, errno EINVAL (per backend)
 *   null_map        every operation on a NULL map -> CHM_EINVAL (chm_size 0, chm_free no-op)
 *   null_args       per backend: compute_if_absent with a NULL function -> CHM_EINVAL and the map
 *                   unchanged; NULL out-pointers accepted by every operation; iterator entry
 *                   points with NULL iterator / NULL map, next after a failed init or after
 *                   fini (CHM_EINVAL: checked as implemented, the header does not say), double
 *                   fini, NULL key/value out-pointers in chm_iter_next
 *   capacity_huge   capacity SIZE_MAX, SIZE_MAX / 2 and SIZE_MAX / 64 + 1 -> NULL, errno ENOMEM
 *                   (per backend)
 *   extreme_valid   NULL options, zeroed options, concurrency 0, 1, 2^20, 2^31 and UINT_MAX
 *                   (with capacity 0 and 1000), packed, the ck and pthread rwlocks, on_race =
 *                   RETURN on every backend: the map works (a model-checked workload), or --
 *                   only where a concurrency lower bound makes the presized table impossible --
 *                   NULL with errno ENOMEM, which is reported (binlock with capacity 1000 and
 *                   concurrency >= 2^31: a 2^31-bin table, the header's "a capacity the machine
 *                   cannot hold")
 * Run under ASan/UBSan in the sanitizer build: no crash, no leak.
 */
#include "testlib.h"

#include "chm_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

static chm_options zero_opts(void)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    return o;
}

/* chm_new must fail with NULL and errno == want. */
static void expect_new_fails(const chm_backend *b, const chm_options *o, int want, const char *what)
{
    errno = 0;
    chm *m = chm_new(b, o);
    if (!CHECK(m == NULL)) {
        FAIL("chm_new(%s, %s) succeeded", b ? chm_backend_name(b) : "NULL", what);
        chm_free(m);
        return;
    }
    if (!CHECK_EQ(errno, want))
        FAIL("chm_new(%s, %s): errno %d, want %d", b ? chm_backend_name(b) : "NULL", what, errno,
             want);
}

/* ---- backends, strerror, hash ----------------------------------------------------------------- */

static void test_backends(void *arg)
{
    (void)arg;
    CHECK(chm_backend_find(NULL) == NULL);
    CHECK(chm_backend_find("") == NULL);
    CHECK(chm_backend_find("nope") == NULL);
    CHECK(chm_backend_find("UNSAFE") == NULL);
    CHECK(chm_backend_find("unsafe ") == NULL);
    CHECK(chm_backend_name(NULL) == NULL);
    CHECK(!chm_backend_thread_safe(NULL));
    CHECK(chm_map_backend(NULL) == NULL);
    size_t n = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++, n++) {
        CHECK(chm_backend_find(chm_backend_name(*p)) == *p);
        /* the capability bit; of the contract's five, "false only for chm_unsafe" */
        CHECK_EQ(chm_backend_thread_safe(*p), (chm_backend_caps(*p) & CHM_CAP_THREAD_SAFE) != 0);
    }
    CHECK(n >= 5); /* the contract's five, and any a later version adds */
    CHECK(!chm_backend_thread_safe(chm_backend_find("unsafe")));

    static const int codes[] = {CHM_OK,     CHM_NOTFOUND,    CHM_EXISTS, CHM_END,    CHM_EINVAL,
                                CHM_ENOMEM, CHM_ECONCURRENT, CHM_ERACE,  CHM_EDEADLK};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = chm_strerror(codes[i]);
        CHECK(s != NULL && strcmp(s, "unknown status") != 0);
    }
    static const int unknown[] = {4, 100, -6, -100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = chm_strerror(unknown[i]);
        CHECK(s != NULL && strcmp(s, "unknown status") == 0);
    }
    /* zero bytes at NULL: nothing is read; seeded like any input */
    CHECK(chm_hash_bytes(NULL, 0, 1) != chm_hash_bytes(NULL, 0, 2));
    CHECK_EQ(chm_hash_bytes(NULL, 0, 3), chm_hash_bytes("", 0, 3));
}

/* ---- chm_new with invalid arguments ----------------------------------------------------------- */

static uint64_t some_hash(uint64_t key, uint64_t seed)
{
    return chm_hash_u64(key, seed);
}
static bool some_equal(uint64_t a, uint64_t b)
{
    return a == b;
}

static void test_new_null_backend(void *arg)
{
    (void)arg;
    chm_options o = zero_opts();
    expect_new_fails(NULL, NULL, EINVAL, "NULL options");
    expect_new_fails(NULL, &o, EINVAL, "zeroed options");
    /* a pointer that is not one of chm_backend_list(): never dereferenced as a backend */
    static const uint64_t not_a_backend[16];
    expect_new_fails((const chm_backend *)(const void *)not_a_backend, NULL, EINVAL,
                     "foreign backend pointer");
}

static void test_new_invalid(const chm_backend *b)
{
    static const chm_keyops no_hash = {.equal = some_equal};
    static const chm_keyops no_equal = {.hash = some_hash};
    static const chm_keyops none = {0};
    chm_options o = zero_opts();
    o.keys = &no_hash;
    expect_new_fails(b, &o, EINVAL, "keyops without hash");
    o.keys = &no_equal;
    expect_new_fails(b, &o, EINVAL, "keyops without equal");
    o.keys = &none;
    expect_new_fails(b, &o, EINVAL, "empty keyops");
    o = zero_opts();
    o.on_race = (chm_race_policy)2;
    expect_new_fails(b, &o, EINVAL, "on_race = 2");
    o.on_race = (chm_race_policy)-1;
    expect_new_fails(b, &o, EINVAL, "on_race = -1");
    o = zero_opts();
    o.rwlock = (chm_rwlock_kind)3;
    expect_new_fails(b, &o, EINVAL, "rwlock = 3");
    o.rwlock = (chm_rwlock_kind)-1;
    expect_new_fails(b, &o, EINVAL, "rwlock = -1");
    o.rwlock = (chm_rwlock_kind)0x7fffffff;
    expect_new_fails(b, &o, EINVAL, "rwlock = INT_MAX");
}

/* ---- NULL map --------------------------------------------------------------------------------- */

static uint64_t compute_fn(uint64_t key, void *arg)
{
    (void)arg;
    return key + 1;
}

static void test_null_map(void *arg)
{
    (void)arg;
    uint64_t v = 7;
    CHECK_RC(chm_get(NULL, 1, &v), CHM_EINVAL);
    CHECK_RC(chm_get(NULL, 1, NULL), CHM_EINVAL);
    CHECK_RC(chm_put(NULL, 1, 2, &v), CHM_EINVAL);
    CHECK_RC(chm_put(NULL, 1, 2, NULL), CHM_EINVAL);
    CHECK_RC(chm_put_if_absent(NULL, 1, 2, &v), CHM_EINVAL);
    CHECK_RC(chm_remove(NULL, 1, &v), CHM_EINVAL);
    CHECK_RC(chm_replace(NULL, 1, 2, 3), CHM_EINVAL);
    CHECK_RC(chm_compute_if_absent(NULL, 1, compute_fn, NULL, &v), CHM_EINVAL);
    CHECK_RC(chm_compute_if_absent(NULL, 1, NULL, NULL, NULL), CHM_EINVAL);
    CHECK_EQ(v, 7); /* no out-pointer written on CHM_EINVAL */
    CHECK_EQ(chm_size(NULL), 0);
    chm_free(NULL);

    chm_iter it;
    memset(&it, 0xa5, sizeof it); /* garbage: chm_iter_init must not read it */
    CHECK_RC(chm_iter_init(&it, NULL), CHM_EINVAL);
    uint64_t k;
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_EINVAL); /* after a failed init */
    chm_iter_fini(&it);                               /* documented: always call it */
    chm_iter_fini(&it);
    CHECK_RC(chm_iter_init(NULL, NULL), CHM_EINVAL);
    CHECK_RC(chm_iter_next(NULL, &k, &v), CHM_EINVAL);
    CHECK_RC(chm_iter_next(NULL, NULL, NULL), CHM_EINVAL);
    chm_iter_fini(NULL);
}

/* ---- NULL arguments on a real map ------------------------------------------------------------- */

static int calls;
static uint64_t counting_fn(uint64_t key, void *arg)
{
    (void)arg;
    calls++;
    return key * 3;
}

static void test_null_args(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    CHECK(chm_map_backend(m) == b);
    uint64_t v = 99;
    CHECK_RC(chm_compute_if_absent(m, 5, NULL, NULL, &v), CHM_EINVAL);
    CHECK_RC(chm_compute_if_absent(m, 5, NULL, NULL, NULL), CHM_EINVAL);
    CHECK_EQ(v, 99);
    CHECK_EQ(chm_size(m), 0);
    CHECK_RC(chm_get(m, 5, NULL), CHM_NOTFOUND);

    /* NULL out-pointers everywhere they are optional */
    CHECK_RC(chm_put(m, 1, 10, NULL), CHM_OK);
    CHECK_RC(chm_put(m, 1, 11, NULL), CHM_EXISTS);
    CHECK_RC(chm_get(m, 1, NULL), CHM_OK);
    CHECK_RC(chm_put_if_absent(m, 1, 12, NULL), CHM_EXISTS);
    CHECK_RC(chm_put_if_absent(m, 2, 20, NULL), CHM_OK);
    calls = 0;
    CHECK_RC(chm_compute_if_absent(m, 3, counting_fn, NULL, NULL), CHM_OK);
    CHECK_RC(chm_compute_if_absent(m, 3, counting_fn, NULL, NULL), CHM_EXISTS);
    CHECK_EQ(calls, 1);
    CHECK_RC(chm_remove(m, 2, NULL), CHM_OK);
    CHECK_RC(chm_remove(m, 2, NULL), CHM_NOTFOUND);
    CHECK_RC(chm_get(m, 1, &v), CHM_OK);
    CHECK_EQ(v, 11);
    CHECK_RC(chm_get(m, 3, &v), CHM_OK);
    CHECK_EQ(v, 9);

    /* iterator: NULL iterator, NULL out-pointers, next after the end and after fini */
    CHECK_RC(chm_iter_init(NULL, m), CHM_EINVAL);
    chm_iter it;
    if (CHECK_RC(chm_iter_init(&it, m), CHM_OK)) {
        int n = 0, rc;
        while ((rc = chm_iter_next(&it, NULL, NULL)) == CHM_OK)
            n++;
        CHECK_RC(rc, CHM_END);
        CHECK_EQ(n, 2);
        CHECK_RC(chm_iter_next(&it, NULL, NULL), CHM_END);
        chm_iter_fini(&it);
        chm_iter_fini(&it); /* documented no-op */
        uint64_t k;
        CHECK_RC(chm_iter_next(&it, &k, &v), CHM_EINVAL); /* after fini (not documented) */
    }
    CHECK_EQ(chm_size(m), 2);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(m), 0);
    chm_free(m);
}

/* ---- capacities the machine cannot hold ------------------------------------------------------- */

static void test_capacity_huge(const chm_backend *b)
{
    static const size_t caps[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX / 64 + 1};
    static const char *const names[] = {"capacity SIZE_MAX", "capacity SIZE_MAX / 2",
                                        "capacity SIZE_MAX / 64 + 1"};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        chm_options o = zero_opts();
        o.capacity = caps[i];
        expect_new_fails(b, &o, ENOMEM, names[i]);
        o.concurrency = 1;
        expect_new_fails(b, &o, ENOMEM, names[i]);
    }
}

/* ---- extreme but valid options -------------------------------------------------------------------- */

/* A short model-checked workload: inserts through several growths, overwrites, removes. */
static void exercise(chm *m)
{
    tl_model model;
    tl_model_init(&model);
    tl_rng r = tl_rng_seed(7);
    for (int i = 0; i < 3000; i++) {
        uint64_t k = tl_below(&r, 1500), v = tl_next(&r);
        if (tl_below(&r, 4) == 0) {
            bool had = tl_model_remove(&model, k, NULL);
            if (!CHECK_RC(chm_remove(m, k, NULL), had ? CHM_OK : CHM_NOTFOUND))
                break;
        } else {
            bool fresh = tl_model_put(&model, k, v, NULL);
            if (!CHECK_RC(chm_put(m, k, v, NULL), fresh ? CHM_OK : CHM_EXISTS))
                break;
        }
    }
    tl_map_equals_model(m, &model);
    tl_model_fini(&model);
}

struct extreme {
    const char *name;
    size_t capacity;
    unsigned concurrency;
    bool packed;
    chm_rwlock_kind rwlock;
    chm_race_policy on_race;
};

static const struct extreme extremes[] = {
    {"concurrency 0", 0, 0, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"concurrency 1", 0, 1, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"concurrency 2^20", 0, 1u << 20, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"concurrency 2^31", 0, 1u << 31, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"concurrency UINT_MAX", 0, UINT_MAX, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"capacity 1, concurrency 1", 1, 1, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"capacity 1000, concurrency 1", 1000, 1, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"capacity 1000, concurrency 2^20", 1000, 1u << 20, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"capacity 1000, concurrency 2^31", 1000, 1u << 31, false, CHM_RWLOCK_ADAPTIVE, CHM_RACE_ABORT},
    {"capacity 1000, concurrency UINT_MAX", 1000, UINT_MAX, false, CHM_RWLOCK_ADAPTIVE,
     CHM_RACE_ABORT},
    {"packed, ck rwlock, race return", 0, 3, true, CHM_RWLOCK_CK, CHM_RACE_RETURN},
    {"pthread rwlock, concurrency UINT_MAX", 0, UINT_MAX, false, CHM_RWLOCK_PTHREAD,
     CHM_RACE_ABORT},
};

static void test_extreme_valid(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (CHECK(m != NULL)) {
        exercise(m);
        chm_free(m);
    }
    chm_options z = zero_opts();
    m = chm_new(b, &z);
    if (CHECK(m != NULL)) {
        exercise(m);
        chm_free(m);
    }
    for (size_t i = 0; i < sizeof extremes / sizeof extremes[0]; i++) {
        const struct extreme *e = &extremes[i];
        chm_options o = zero_opts();
        o.capacity = e->capacity;
        o.concurrency = e->concurrency;
        o.packed = e->packed;
        o.rwlock = e->rwlock;
        o.on_race = e->on_race;
        long before = tl_failures();
        errno = 0;
        m = chm_new(b, &o);
        if (m == NULL) {
            /* Allowed only when a presized table would have to hold `concurrency` bins (the
             * documented lower bound): the header's "a capacity the machine cannot hold" */
            int err = errno;
            tl_note("%s: chm_new(%s) = NULL, errno %d (%s)", chm_backend_name(b), e->name, err,
                    strerror(err));
            CHECK(e->capacity != 0 && e->concurrency >= (1u << 31));
            CHECK_EQ(err, ENOMEM);
            continue;
        }
        exercise(m);
        chm_free(m);
        if (tl_failures() != before)
            FAIL("%s with %s", chm_backend_name(b), e->name);
    }
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(250);
    tl_run("backends", test_backends, NULL);
    tl_run("new_null_backend", test_new_null_backend, NULL);
    tl_each_backend("new_invalid", test_new_invalid, NULL);
    tl_run("null_map", test_null_map, NULL);
    tl_each_backend("null_args", test_null_args, NULL);
    tl_each_backend("capacity_huge", test_capacity_huge, NULL);
    tl_each_backend("extreme_valid", test_extreme_valid, NULL);
    return tl_finish();
}
