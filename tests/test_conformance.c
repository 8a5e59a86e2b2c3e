/*
 * test_conformance.c - single-threaded conformance of every backend of chm_backend_list() to the
 * contract (shared/CONTRACT.md, include/chm.h).
 *
 *   - model-based random operations against a reference map: every return code and out-value of
 *     get, put, put_if_absent, remove, replace, compute_if_absent, size, and full iterations
 *     compared as sets; small key ranges (collisions, many removes), a large one (50k keys,
 *     growth through many resizes), keys and values 0 / UINT64_MAX and near them; value_free
 *     called exactly once per value that left, checked as a multiset
 *   - string keys (the caller's buffer is overwritten after every call), colliding keyops,
 *     NULL / zeroed options, NULL out-pointers, invalid arguments, the backend registry,
 *     chm_strerror, huge capacities, iteration order with a fixed seed, compute_if_absent
 */
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#include "testlib.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#if TL_TSAN
/* A huge capacity must make chm_new fail with ENOMEM; ThreadSanitizer's allocator aborts on an
 * impossible request unless told to return NULL like the real allocator. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "allocator_may_return_null=1";
}
#endif

/* ---- keys and values ---------------------------------------------------------------------- */

enum key_style { KS_SMALL, KS_TOP, KS_SPREAD, KS_BOTH_ENDS, KS_COUNT };

/* The i-th key of a key range in one of four layouts: 0.., UINT64_MAX.., spread over the word
 * (a bijection, so distinct), and alternating between both ends. */
static uint64_t key_of(int style, uint64_t i)
{
    switch (style) {
    case KS_SMALL: return i;
    case KS_TOP: return UINT64_MAX - i;
    case KS_SPREAD: return i * 0x9e3779b97f4a7c15ULL;
    default: return (i & 1) ? UINT64_MAX - (i >> 1) : i >> 1;
    }
}

static const uint64_t special_values[] = {
    0, 1, 2, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 2, (uint64_t)1 << 63, ((uint64_t)1 << 63) - 1,
};
#define N_SPECIAL (sizeof special_values / sizeof special_values[0])

static uint64_t random_value(tl_rng *r)
{
    uint64_t x = tl_next(r);
    if ((x & 7) == 0)
        return special_values[(x >> 8) % N_SPECIAL];
    return tl_next(r);
}

/* ---- colliding keyops ---------------------------------------------------------------------- */

static uint64_t hash_const(uint64_t key, uint64_t seed)
{
    (void)key;
    (void)seed;
    return 0x1234567890abcdefULL; /* every key collides */
}
static uint64_t hash_top_only(uint64_t key, uint64_t seed)
{
    (void)seed;
    return key << 56; /* one bucket, tophash bytes differ */
}
static uint64_t hash_low_only(uint64_t key, uint64_t seed)
{
    (void)seed;
    return key & 7; /* eight chains, every tophash equal */
}
static bool eq_u64(uint64_t a, uint64_t b)
{
    return a == b;
}
static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static const chm_keyops keys_const = {.hash = hash_const, .equal = eq_u64};
static const chm_keyops keys_const_cmp = {.hash = hash_const, .equal = eq_u64, .compare = cmp_u64};
static const chm_keyops keys_top_only = {.hash = hash_top_only, .equal = eq_u64};
static const chm_keyops keys_low_only = {.hash = hash_low_only, .equal = eq_u64};

/* ---- the compute function ----------------------------------------------------------------- */

struct compute_arg {
    unsigned long calls;
    uint64_t key_seen;
    uint64_t result;
};

static uint64_t compute_fn(uint64_t key, void *arg)
{
    struct compute_arg *a = arg;
    a->calls++;
    a->key_seen = key;
    return a->result;
}

/* ---- value_free accounting against the model ---------------------------------------------- */

struct vf_expect {
    tl_model left;       /* value -> times it left the map (expected frees) */
    unsigned long total; /* sum of the counts */
};

static void vf_init(struct vf_expect *e)
{
    tl_model_init(&e->left);
    e->total = 0;
}

static void vf_left(struct vf_expect *e, uint64_t value)
{
    tl_model_add(&e->left, value, 1);
    e->total++;
}

/* The frees seen so far never exceed the expected ones (backends may defer a free). */
static bool vf_check_progress(struct vf_expect *e, tl_freelog *log)
{
    return CHECK(tl_freelog_calls(log) <= e->total);
}

/* After chm_free: the freed multiset equals the expected one, exactly. */
static bool vf_check_final(struct vf_expect *e, tl_freelog *log)
{
    long before = tl_failures();
    CHECK_EQ(tl_freelog_calls(log), e->total);
    size_t pos = 0;
    uint64_t v, want;
    int bad = 0;
    while (tl_model_slot(&e->left, &pos, &v, &want)) {
        uint64_t got = 0;
        tl_model_get(&log->freed, v, &got);
        if (got != want && bad++ < 3)
            FAIL("value 0x%" PRIx64 " was freed %" PRIu64 " times, want %" PRIu64, v, got, want);
    }
    pos = 0;
    while (tl_model_slot(&log->freed, &pos, &v, &want)) {
        if (!tl_model_get(&e->left, v, NULL) && bad++ < 3)
            FAIL("value 0x%" PRIx64 " was freed %" PRIu64 " times but never left the map", v, want);
    }
    return tl_failures() == before;
}

static void vf_fini(struct vf_expect *e)
{
    tl_model_fini(&e->left);
}

/* ---- model-based random operations -------------------------------------------------------- */

struct random_cfg {
    const char *label;
    uint64_t seed;     /* operation stream */
    uint64_t map_seed; /* options.seed (0 = random) */
    uint64_t nops;
    uint64_t range; /* keys key_of(style, 0 .. range-1) */
    int style;
    size_t capacity;
    const chm_keyops *keys;
    chm_rwlock_kind rwlock;
    unsigned iter_every;  /* full comparison every this many operations */
    unsigned concurrency; /* options.concurrency (segmented: segments) */
    bool packed;          /* options.packed */
};

/* One random operation on (m, model); false after the first mismatch. */
static bool random_step(chm *m, tl_model *model, struct vf_expect *vf, tl_freelog *log, tl_rng *r,
                        const struct random_cfg *c, uint64_t step)
{
    uint64_t key = key_of(c->style, tl_below(r, c->range));
    uint64_t cur;
    bool present = tl_model_get(model, key, &cur);
    bool null_out = tl_below(r, 4) == 0;
    uint64_t out = 0xdeadbeefcafef00dULL;
    unsigned op = (unsigned)tl_below(r, 100);
    int rc;
    long before = tl_failures();

    if (op < 20) {
        rc = chm_get(m, key, null_out ? NULL : &out);
        if (CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && present && !null_out)
            CHECK_EQ(out, cur);
    } else if (op < 45) {
        uint64_t v = random_value(r);
        rc = chm_put(m, key, v, null_out ? NULL : &out);
        if (CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && present && !null_out)
            CHECK_EQ(out, cur);
        if (present && cur != v) /* a value replaced by itself stays */
            vf_left(vf, cur);
        tl_model_put(model, key, v, NULL);
    } else if (op < 58) {
        uint64_t v = random_value(r);
        rc = chm_put_if_absent(m, key, v, null_out ? NULL : &out);
        if (CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && present && !null_out)
            CHECK_EQ(out, cur);
        if (!present)
            tl_model_put(model, key, v, NULL);
    } else if (op < 73) {
        rc = chm_remove(m, key, null_out ? NULL : &out);
        if (CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && present && !null_out)
            CHECK_EQ(out, cur);
        if (present) {
            vf_left(vf, cur);
            tl_model_remove(model, key, NULL);
        }
    } else if (op < 83) {
        uint64_t expected = present && tl_below(r, 10) < 6 ? cur : random_value(r);
        uint64_t desired = random_value(r);
        rc = chm_replace(m, key, expected, desired);
        int want = !present ? CHM_NOTFOUND : cur == expected ? CHM_OK : CHM_EXISTS;
        CHECK_RC(rc, want);
        if (want == CHM_OK) {
            if (cur != desired)
                vf_left(vf, cur);
            tl_model_put(model, key, desired, NULL);
        }
    } else if (op < 93) {
        struct compute_arg a = {0, ~key, random_value(r)};
        rc = chm_compute_if_absent(m, key, compute_fn, &a, null_out ? NULL : &out);
        if (present) {
            if (CHECK_RC(rc, CHM_EXISTS) && !null_out)
                CHECK_EQ(out, cur);
            CHECK_EQ(a.calls, 0);
        } else {
            if (CHECK_RC(rc, CHM_OK) && !null_out)
                CHECK_EQ(out, a.result);
            CHECK_EQ(a.calls, 1);
            CHECK_EQ(a.key_seen, key);
            tl_model_put(model, key, a.result, NULL);
        }
    } else if (tl_model_size(model) <= 600) {
        tl_map_equals_model(m, model); /* big maps: every iter_every steps only */
    }
    CHECK_EQ(chm_size(m), tl_model_size(model));
    if (log != NULL)
        vf_check_progress(vf, log);
    if (c->iter_every != 0 && step % c->iter_every == c->iter_every - 1)
        tl_map_equals_model(m, model);
    if (tl_failures() != before) {
        FAIL("%s: step %" PRIu64 ": op %u on key 0x%" PRIx64 " (%s in the model)", c->label, step,
             op, key, present ? "present" : "absent");
        return false;
    }
    return true;
}

static void run_random(const chm_backend *b, const struct random_cfg *c)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    struct vf_expect vf;
    vf_init(&vf);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.capacity = c->capacity;
    o.keys = c->keys;
    o.seed = c->map_seed;
    o.rwlock = c->rwlock;
    o.concurrency = c->concurrency;
    o.packed = c->packed;
    o.value_free = tl_freelog_cb;
    o.ctx = &log;
    chm *m = chm_new(b, &o);
    if (!CHECK(m != NULL)) {
        FAIL("%s: chm_new failed: errno %d", c->label, errno);
        goto out;
    }
    tl_model model;
    tl_model_init(&model);
    tl_rng r = tl_rng_seed(c->seed);
    for (uint64_t i = 0; i < c->nops; i++) {
        if (!random_step(m, &model, &vf, &log, &r, c, i))
            break;
    }
    tl_map_equals_model(m, &model);
    /* what is still in the map leaves at chm_free */
    size_t pos = 0;
    uint64_t k, v;
    while (tl_model_slot(&model, &pos, &k, &v))
        vf_left(&vf, v);
    chm_free(m);
    if (!vf_check_final(&vf, &log))
        FAIL("%s: value_free accounting", c->label);
    tl_model_fini(&model);
out:
    vf_fini(&vf);
    tl_freelog_fini(&log);
}

static void test_random_small(const chm_backend *b)
{
    static const uint64_t ranges[] = {1, 8, 64, 512};
    uint64_t nops = tl_scaled(20000, 2000);
    /* CHM_TEST_SEED=N explores other operation streams (the failing label names the seed) */
    const char *env = getenv("CHM_TEST_SEED");
    uint64_t base = env != NULL ? strtoull(env, NULL, 0) : 0;
    int cfgs = 0;
    for (size_t ri = 0; ri < sizeof ranges / sizeof ranges[0]; ri++) {
        for (int style = 0; style < KS_COUNT; style++) {
            for (uint64_t seed = 1; seed <= 2; seed++) {
                char label[128];
                snprintf(label, sizeof label,
                         "range %" PRIu64 " style %d stream %" PRIu64 " (CHM_TEST_SEED %" PRIu64
                         ")",
                         ranges[ri], style, base + seed * 1000 + ri * 10 + (uint64_t)style, base);
                struct random_cfg c = {
                    .label = label,
                    .seed = base + seed * 1000 + ri * 10 + (uint64_t)style,
                    .map_seed = seed == 1 ? 0 : 0x5eed,
                    .nops = nops,
                    .range = ranges[ri],
                    .style = style,
                    .capacity = seed == 2 ? ranges[ri] : 0,
                    .iter_every = 997,
                };
                run_random(b, &c);
                cfgs++;
                if (tl_failures() != 0)
                    return;
            }
        }
    }
    CHECK_EQ(cfgs, 32);
}

static void test_random_large(const chm_backend *b)
{
    /* 50k distinct keys from a capacity-0 start: the table doubles a dozen times. */
    uint64_t n = tl_scaled(50000, 20000);
    for (int style = 0; style < KS_COUNT; style += 2) {
        tl_freelog log;
        tl_freelog_init(&log, false);
        chm_options o;
        memset(&o, 0, sizeof o);
        o.value_free = tl_freelog_cb;
        o.ctx = &log;
        chm *m = chm_new(b, &o);
        if (!CHECK(m != NULL))
            return;
        tl_model model;
        tl_model_init(&model);
        tl_rng r = tl_rng_seed(77 + (uint64_t)style);
        uint64_t left = 0, left_sum = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t k = key_of(style, i), v = tl_next(&r);
            if (!CHECK_RC(chm_put(m, k, v, NULL), CHM_OK))
                break;
            tl_model_put(&model, k, v, NULL);
            if ((i & (i + 1)) == 0 || i % 9973 == 0) /* at powers of two and now and then */
                if (!tl_map_equals_model(m, &model))
                    break;
        }
        tl_map_equals_model(m, &model);
        /* random mixed operations over twice the range */
        struct random_cfg c = {.label = "large mixed", .range = 2 * n, .style = style};
        struct vf_expect vf;
        vf_init(&vf);
        for (uint64_t i = 0; i < n && tl_failures() == 0; i++)
            random_step(m, &model, &vf, NULL, &r, &c, i);
        left += vf.total;
        size_t pos = 0;
        uint64_t k, v;
        while (tl_model_slot(&vf.left, &pos, &k, &v))
            left_sum += k * v;
        vf_fini(&vf);
        tl_map_equals_model(m, &model);
        /* remove everything, in key order (not insertion order) */
        for (uint64_t i = 0; i < 2 * n && tl_failures() == 0; i++) {
            uint64_t key = key_of(style, i), want, got = 0;
            bool present = tl_model_remove(&model, key, &want);
            int rc = chm_remove(m, key, &got);
            if (!CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND))
                break;
            if (present) {
                CHECK_EQ(got, want);
                left++;
                left_sum += want;
            }
        }
        CHECK_EQ(chm_size(m), 0);
        tl_map_equals_model(m, &model);
        /* the emptied map is still usable */
        CHECK_RC(chm_put(m, 5, 6, NULL), CHM_OK);
        CHECK_EQ(chm_size(m), 1);
        chm_free(m);
        CHECK_EQ(tl_freelog_calls(&log), left + 1);
        CHECK_EQ(atomic_load(&log.sum), left_sum + 6);
        tl_model_fini(&model);
        tl_freelog_fini(&log);
    }
}

static void test_random_options(const chm_backend *b)
{
    /* colliding keyops, the other rwlock kind, odd concurrency and capacity values */
    static const struct {
        const chm_keyops *keys;
        uint64_t range;
        const char *label;
    } ks[] = {
        {&keys_const, 200, "constant hash"},
        {&keys_const_cmp, 200, "constant hash + compare"},
        {&keys_top_only, 300, "hash = key << 56"},
        {&keys_low_only, 300, "hash = key & 7"},
        {&chm_keys_u64, 300, "chm_keys_u64 explicitly"},
    };
    uint64_t nops = tl_scaled(10000, 2000);
    for (size_t i = 0; i < sizeof ks / sizeof ks[0] && tl_failures() == 0; i++) {
        struct random_cfg c = {
            .label = ks[i].label,
            .seed = 500 + i,
            .nops = nops,
            .range = ks[i].range,
            .style = (int)(i % KS_COUNT),
            .keys = ks[i].keys,
            .iter_every = 499,
        };
        run_random(b, &c);
    }
    struct random_cfg ck = {
        .label = "rwlock = CHM_RWLOCK_CK",
        .seed = 600,
        .nops = nops,
        .range = 256,
        .style = KS_BOTH_ENDS,
        .rwlock = CHM_RWLOCK_CK,
        .iter_every = 499,
    };
    run_random(b, &ck);
    struct random_cfg cap = {
        .label = "capacity 1000",
        .seed = 601,
        .nops = nops,
        .range = 2000,
        .style = KS_SPREAD,
        .capacity = 1000,
        .iter_every = 1999,
    };
    run_random(b, &cap);
    struct random_cfg packed1 = {
        .label = "packed, concurrency 1",
        .seed = 602,
        .nops = nops,
        .range = 3000,
        .style = KS_SPREAD,
        .concurrency = 1,
        .packed = true,
        .iter_every = 2999,
    };
    run_random(b, &packed1);
    struct random_cfg many = {
        .label = "concurrency 300 (rounded up to 512)",
        .seed = 603,
        .nops = nops,
        .range = 3000,
        .style = KS_SPREAD,
        .concurrency = 300,
        .iter_every = 2999,
    };
    run_random(b, &many);
}

/* ---- extremes ----------------------------------------------------------------------------- */

static void test_extreme_keys_values(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    tl_model model;
    tl_model_init(&model);
    for (size_t i = 0; i < N_SPECIAL; i++) {
        for (size_t j = 0; j < N_SPECIAL; j++) {
            uint64_t k = special_values[i], v = special_values[j], old = 42;
            int rc = chm_put(m, k, v, &old);
            if (j == 0) {
                CHECK_RC(rc, CHM_OK);
            } else {
                CHECK_RC(rc, CHM_EXISTS);
                CHECK_EQ(old, special_values[j - 1]);
            }
            tl_model_put(&model, k, v, NULL);
            uint64_t got = ~v;
            CHECK_RC(chm_get(m, k, &got), CHM_OK);
            CHECK_EQ(got, v);
        }
    }
    tl_map_equals_model(m, &model);
    /* value 0 and UINT64_MAX through every operation */
    uint64_t out = 7;
    CHECK_RC(chm_remove(m, 0, &out), CHM_OK);
    CHECK_EQ(out, special_values[N_SPECIAL - 1]);
    CHECK_RC(chm_get(m, 0, NULL), CHM_NOTFOUND);
    CHECK_RC(chm_put_if_absent(m, 0, UINT64_MAX, NULL), CHM_OK);
    CHECK_RC(chm_put_if_absent(m, 0, 0, &out), CHM_EXISTS);
    CHECK_EQ(out, UINT64_MAX);
    CHECK_RC(chm_replace(m, 0, UINT64_MAX, 0), CHM_OK);
    CHECK_RC(chm_get(m, 0, &out), CHM_OK);
    CHECK_EQ(out, 0);
    CHECK_RC(chm_replace(m, 0, UINT64_MAX, 1), CHM_EXISTS);
    CHECK_RC(chm_replace(m, 0, 0, 0), CHM_OK);
    CHECK_RC(chm_remove(m, UINT64_MAX, &out), CHM_OK);
    struct compute_arg a = {0, 0, UINT64_MAX};
    CHECK_RC(chm_compute_if_absent(m, UINT64_MAX, compute_fn, &a, &out), CHM_OK);
    CHECK_EQ(out, UINT64_MAX);
    CHECK_EQ(a.key_seen, UINT64_MAX);
    a.result = 0;
    CHECK_RC(chm_compute_if_absent(m, UINT64_MAX - 1, compute_fn, &a, &out), CHM_EXISTS);
    CHECK_EQ(a.calls, 1);
    CHECK_EQ(chm_size(m), N_SPECIAL);
    chm_free(m);
    tl_model_fini(&model);
}

/* ---- string keys -------------------------------------------------------------------------- */

/* Key i as a string; long and near-equal variants exercise every hashing path. */
static void format_key(char *buf, size_t len, int i)
{
    switch (i % 4) {
    case 0: snprintf(buf, len, "key-%d", i); break;
    case 1: snprintf(buf, len, "a-long-common-prefix-that-exceeds-sixteen-bytes-%d", i); break;
    case 2: snprintf(buf, len, "%d", i); break;
    default: snprintf(buf, len, "%0*d|", 40 + i % 50, i); break;
    }
}

static int parse_key(const char *s)
{
    const char *p = s + strlen(s);
    while (p > s && (p[-1] < '0' || p[-1] > '9'))
        p--;
    while (p > s && p[-1] >= '0' && p[-1] <= '9')
        p--;
    return atoi(p);
}

static void scribble(char *buf, size_t len)
{
    memset(buf, 'Z', len - 1);
    buf[len - 1] = '\0';
}

static void test_string_keys(const chm_backend *b)
{
    enum { N = 3000 };
    tl_freelog log;
    tl_freelog_init(&log, false);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.keys = &chm_keys_string;
    o.value_free = tl_freelog_cb;
    o.ctx = &log;
    chm *m = chm_new(b, &o);
    if (!CHECK(m != NULL))
        goto out;
    char buf[128], probe[128];
    uint64_t kbuf = (uint64_t)(uintptr_t)buf, kprobe = (uint64_t)(uintptr_t)probe;
    unsigned long frees = 0;
    size_t want_size = 0;
    /* insert through one buffer, overwritten after each call */
    for (int i = 0; i < N; i++) {
        format_key(buf, sizeof buf, i);
        if (!CHECK_RC(chm_put(m, kbuf, (uint64_t)i, NULL), CHM_OK))
            goto done;
        scribble(buf, sizeof buf);
    }
    /* a heap copy freed right after the call */
    char *heap = strdup("heap-key-0");
    CHECK_RC(chm_put(m, (uint64_t)(uintptr_t)heap, 0xabc, NULL), CHM_OK);
    free(heap);
    CHECK_RC(chm_get(m, (uint64_t)(uintptr_t) "heap-key-0", NULL), CHM_OK);
    CHECK_RC(chm_remove(m, (uint64_t)(uintptr_t) "heap-key-0", NULL), CHM_OK);
    frees++;
    /* the empty string is a key like any other */
    CHECK_RC(chm_put(m, (uint64_t)(uintptr_t) "", 77, NULL), CHM_OK);
    CHECK_EQ(chm_size(m), N + 1);
    for (int i = 0; i < N; i++) {
        format_key(probe, sizeof probe, i);
        uint64_t v = ~0ULL;
        if (!CHECK_RC(chm_get(m, kprobe, &v), CHM_OK))
            goto done;
        CHECK_EQ(v, i);
        scribble(probe, sizeof probe);
    }
    /* a near miss is absent */
    snprintf(probe, sizeof probe, "key-%d", N + 4);
    CHECK_RC(chm_get(m, kprobe, NULL), CHM_NOTFOUND);
    snprintf(probe, sizeof probe, "key-");
    CHECK_RC(chm_get(m, kprobe, NULL), CHM_NOTFOUND);
    /* overwrite, put_if_absent, replace, compute_if_absent through fresh buffers */
    for (int i = 0; i < N; i += 3) {
        uint64_t old = 0;
        format_key(buf, sizeof buf, i);
        CHECK_RC(chm_put(m, kbuf, (uint64_t)i + 100000, &old), CHM_EXISTS);
        CHECK_EQ(old, i);
        frees++;
        scribble(buf, sizeof buf);
        format_key(buf, sizeof buf, i);
        CHECK_RC(chm_put_if_absent(m, kbuf, 1, &old), CHM_EXISTS);
        CHECK_EQ(old, (uint64_t)i + 100000);
        CHECK_RC(chm_replace(m, kbuf, (uint64_t)i + 100000, (uint64_t)i), CHM_OK);
        frees++;
        struct compute_arg a = {0, 0, 5};
        CHECK_RC(chm_compute_if_absent(m, kbuf, compute_fn, &a, &old), CHM_EXISTS);
        CHECK_EQ(old, i);
        CHECK_EQ(a.calls, 0);
        scribble(buf, sizeof buf);
    }
    for (int i = N; i < N + 50; i++) {
        format_key(buf, sizeof buf, i);
        struct compute_arg a = {0, 0, (uint64_t)i};
        uint64_t got = 0;
        CHECK_RC(chm_compute_if_absent(m, kbuf, compute_fn, &a, &got), CHM_OK);
        CHECK_EQ(a.calls, 1);
        CHECK_EQ(got, i);
        /* the function saw a key with the caller's content */
        CHECK(strcmp((const char *)(uintptr_t)a.key_seen, buf) == 0);
        scribble(buf, sizeof buf);
    }
    /* remove every other key through a fresh buffer */
    for (int i = 0; i < N + 50; i += 2) {
        uint64_t old = 0;
        format_key(buf, sizeof buf, i);
        CHECK_RC(chm_remove(m, kbuf, &old), CHM_OK);
        CHECK_EQ(old, i);
        frees++;
        scribble(buf, sizeof buf);
        format_key(buf, sizeof buf, i);
        CHECK_RC(chm_remove(m, kbuf, NULL), CHM_NOTFOUND);
    }
    want_size = (N + 50) / 2 + 1;
    CHECK_EQ(chm_size(m), want_size);
    /* iteration returns the map's copies: equal content, not the caller's buffers */
    {
        unsigned char *seen = calloc(N + 50, 1);
        chm_iter it;
        CHECK_RC(chm_iter_init(&it, m), CHM_OK);
        uint64_t k, v;
        int rc;
        size_t count = 0;
        bool empty_seen = false;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            const char *s = (const char *)(uintptr_t)k;
            count++;
            if (!CHECK(k != kbuf && k != kprobe))
                break;
            if (s[0] == '\0') {
                CHECK(!empty_seen);
                empty_seen = true;
                CHECK_EQ(v, 77);
                continue;
            }
            int i = parse_key(s);
            char want[128];
            format_key(want, sizeof want, i);
            if (!CHECK(i >= 0 && i < N + 50 && strcmp(s, want) == 0)) {
                FAIL("iteration returned key \"%s\"", s);
                break;
            }
            CHECK(i % 2 == 1);
            CHECK(!seen[i]);
            seen[i] = 1;
            CHECK_EQ(v, i);
        }
        CHECK_RC(rc, CHM_END);
        chm_iter_fini(&it);
        CHECK(empty_seen);
        CHECK_EQ(count, want_size);
        free(seen);
    }
done:
    chm_free(m);
    if (tl_failures() == 0)
        CHECK_EQ(tl_freelog_calls(&log), frees + want_size);
out:
    tl_freelog_fini(&log);
}

/* ---- options ------------------------------------------------------------------------------ */

static void short_workout(chm *m)
{
    tl_model model;
    tl_model_init(&model);
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t k = i * 7919, v = ~i;
        if (!CHECK_RC(chm_put(m, k, v, NULL), CHM_OK))
            break;
        tl_model_put(&model, k, v, NULL);
    }
    for (uint64_t i = 0; i < 1000; i += 3) {
        uint64_t old = 0;
        CHECK_RC(chm_remove(m, i * 7919, &old), CHM_OK);
        CHECK_EQ(old, ~i);
        tl_model_remove(&model, i * 7919, NULL);
    }
    tl_map_equals_model(m, &model);
    tl_model_fini(&model);
}

static void test_null_and_zeroed_options(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (CHECK(m != NULL)) {
        CHECK(chm_map_backend(m) == b);
        short_workout(m);
        chm_free(m);
    }
    chm_options o;
    memset(&o, 0, sizeof o);
    m = chm_new(b, &o);
    if (CHECK(m != NULL)) {
        short_workout(m);
        chm_free(m);
    }
    /* other legal values of every field */
    static const unsigned conc[] = {1, 3, 64, 1000};
    for (size_t i = 0; i < sizeof conc / sizeof conc[0]; i++) {
        memset(&o, 0, sizeof o);
        o.concurrency = conc[i];
        o.capacity = i * 300;
        o.seed = i + 1;
        o.on_race = CHM_RACE_RETURN;
        o.rwlock = (i & 1) ? CHM_RWLOCK_CK : CHM_RWLOCK_PTHREAD;
        o.packed = (i & 2) != 0;
        m = chm_new(b, &o);
        if (CHECK(m != NULL)) {
            short_workout(m);
            chm_free(m);
        }
    }
}

static void test_null_out_pointers(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    struct compute_arg a = {0, 0, 9};
    CHECK_RC(chm_get(m, 1, NULL), CHM_NOTFOUND);
    CHECK_RC(chm_put(m, 1, 2, NULL), CHM_OK);
    CHECK_RC(chm_put(m, 1, 3, NULL), CHM_EXISTS);
    CHECK_RC(chm_get(m, 1, NULL), CHM_OK);
    CHECK_RC(chm_put_if_absent(m, 1, 4, NULL), CHM_EXISTS);
    CHECK_RC(chm_put_if_absent(m, 2, 4, NULL), CHM_OK);
    CHECK_RC(chm_compute_if_absent(m, 3, compute_fn, &a, NULL), CHM_OK);
    CHECK_RC(chm_compute_if_absent(m, 3, compute_fn, &a, NULL), CHM_EXISTS);
    CHECK_EQ(a.calls, 1);
    CHECK_RC(chm_remove(m, 1, NULL), CHM_OK);
    CHECK_RC(chm_remove(m, 1, NULL), CHM_NOTFOUND);
    /* iteration with NULL key and value pointers still counts entries */
    chm_iter it;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    int n = 0, rc;
    while ((rc = chm_iter_next(&it, NULL, NULL)) == CHM_OK)
        n++;
    CHECK_RC(rc, CHM_END);
    chm_iter_fini(&it);
    CHECK_EQ(n, 2);
    uint64_t v = 0;
    CHECK_RC(chm_get(m, 2, &v), CHM_OK);
    CHECK_EQ(v, 4);
    CHECK_RC(chm_get(m, 3, &v), CHM_OK);
    CHECK_EQ(v, 9);
    chm_free(m);
}

/* ---- invalid arguments -------------------------------------------------------------------- */

static uint64_t hash_ok(uint64_t key, uint64_t seed)
{
    return key ^ seed;
}

static void test_invalid_arguments(const chm_backend *b)
{
    uint64_t v = 0;
    struct compute_arg a = {0, 0, 1};
    /* a NULL map, for every operation */
    CHECK_RC(chm_get(NULL, 1, &v), CHM_EINVAL);
    CHECK_RC(chm_put(NULL, 1, 2, &v), CHM_EINVAL);
    CHECK_RC(chm_put_if_absent(NULL, 1, 2, &v), CHM_EINVAL);
    CHECK_RC(chm_remove(NULL, 1, &v), CHM_EINVAL);
    CHECK_RC(chm_replace(NULL, 1, 2, 3), CHM_EINVAL);
    CHECK_RC(chm_compute_if_absent(NULL, 1, compute_fn, &a, &v), CHM_EINVAL);
    CHECK_EQ(a.calls, 0);
    CHECK_EQ(chm_size(NULL), 0);
    CHECK(chm_map_backend(NULL) == NULL);
    chm_free(NULL);
    chm_iter it;
    memset(&it, 0xa5, sizeof it);
    CHECK_RC(chm_iter_init(&it, NULL), CHM_EINVAL);
    chm_iter_fini(&it); /* after a failed init: harmless */
    chm_iter_fini(&it);
    CHECK_RC(chm_iter_next(NULL, &v, &v), CHM_EINVAL);
    chm_iter_fini(NULL);

    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    CHECK_RC(chm_iter_init(NULL, m), CHM_EINVAL);
    /* a NULL function for compute_if_absent, on an absent and a present key */
    CHECK_RC(chm_compute_if_absent(m, 1, NULL, &a, &v), CHM_EINVAL);
    CHECK_RC(chm_get(m, 1, NULL), CHM_NOTFOUND);
    CHECK_RC(chm_put(m, 1, 1, NULL), CHM_OK);
    CHECK_RC(chm_compute_if_absent(m, 1, NULL, NULL, NULL), CHM_EINVAL);
    CHECK_EQ(chm_size(m), 1);
    chm_free(m);

    /* chm_new: NULL backend, a backend not from the list, keyops without hash or equal, an
     * unknown on_race or rwlock kind */
    errno = 0;
    CHECK(chm_new(NULL, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    static const uint64_t fake[16] = {1, 2, 3};
    errno = 0;
    CHECK(chm_new((const chm_backend *)(const void *)fake, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    chm_options o;
    chm_keyops no_hash = {.equal = eq_u64};
    chm_keyops no_equal = {.hash = hash_ok};
    chm_keyops nothing = {0};
    const chm_keyops *bad_keys[] = {&no_hash, &no_equal, &nothing};
    for (size_t i = 0; i < 3; i++) {
        memset(&o, 0, sizeof o);
        o.keys = bad_keys[i];
        errno = 0;
        m = chm_new(b, &o);
        CHECK(m == NULL);
        CHECK_EQ(errno, EINVAL);
        chm_free(m);
    }
    static const int bad_race[] = {2, -1, 1000};
    for (size_t i = 0; i < 3; i++) {
        memset(&o, 0, sizeof o);
        o.on_race = (chm_race_policy)bad_race[i];
        errno = 0;
        m = chm_new(b, &o);
        CHECK(m == NULL);
        CHECK_EQ(errno, EINVAL);
        chm_free(m);
    }
    memset(&o, 0, sizeof o);
    o.rwlock = (chm_rwlock_kind)7;
    errno = 0;
    m = chm_new(b, &o);
    CHECK(m == NULL);
    CHECK_EQ(errno, EINVAL);
    chm_free(m);
}

/* ---- registry and status strings ---------------------------------------------------------- */

static void test_registry(void *arg)
{
    (void)arg;
    static const char *const contract_order[] = {"unsafe", "rwlock", "segmented", "binlock",
                                                 "readmostly"};
    const chm_backend *const *list = chm_backend_list();
    if (!CHECK(list != NULL))
        return;
    size_t n = 0;
    while (list[n] != NULL)
        n++;
    CHECK(n >= 1 && n <= 5);
    /* the list holds exactly the backends find() knows, in the contract's order */
    size_t at = 0;
    for (size_t i = 0; i < 5; i++) {
        const chm_backend *b = chm_backend_find(contract_order[i]);
        if (b == NULL)
            continue;
        if (!CHECK(at < n && list[at] == b))
            FAIL("backend \"%s\" found but not at position %zu of chm_backend_list()",
                 contract_order[i], at);
        at++;
    }
    CHECK_EQ(at, n);
    CHECK(chm_backend_find("unsafe") != NULL);
    CHECK(chm_backend_find("rwlock") != NULL);
    for (size_t i = 0; i < n; i++) {
        const chm_backend *b = list[i];
        const char *name = chm_backend_name(b);
        if (!CHECK(name != NULL))
            continue;
        CHECK(chm_backend_find(name) == b);
        /* the name is a copy-safe string: a copy finds the same backend */
        char copy[64];
        snprintf(copy, sizeof copy, "%s", name);
        CHECK(chm_backend_find(copy) == b);
        bool unsafe = strcmp(name, "unsafe") == 0;
        CHECK_EQ(chm_backend_thread_safe(b), !unsafe);
        for (size_t j = 0; j < i; j++)
            CHECK(list[j] != b && strcmp(chm_backend_name(list[j]), name) != 0);
    }
    CHECK(chm_backend_find("nope") == NULL);
    CHECK(chm_backend_find("") == NULL);
    CHECK(chm_backend_find("UNSAFE") == NULL);
    CHECK(chm_backend_find("unsafe ") == NULL);
    CHECK(chm_backend_find(NULL) == NULL);
    CHECK(chm_backend_name(NULL) == NULL);
    CHECK(!chm_backend_thread_safe(NULL));
}

static void test_strerror(void *arg)
{
    (void)arg;
    static const int codes[] = {CHM_OK,     CHM_NOTFOUND, CHM_EXISTS,      CHM_END,
                                CHM_EINVAL, CHM_ENOMEM,   CHM_ECONCURRENT, CHM_ERACE};
    enum { NC = sizeof codes / sizeof codes[0] };
    const char *unknown = chm_strerror(12345);
    CHECK(unknown != NULL && unknown[0] != '\0');
    CHECK(chm_strerror(-12345) != NULL);
    for (size_t i = 0; i < NC; i++) {
        const char *s = chm_strerror(codes[i]);
        if (!CHECK(s != NULL && s[0] != '\0'))
            continue;
        CHECK(strcmp(s, unknown) != 0);
        for (size_t j = 0; j < i; j++)
            if (!CHECK(strcmp(s, chm_strerror(codes[j])) != 0))
                FAIL("chm_strerror(%d) == chm_strerror(%d) == \"%s\"", codes[i], codes[j], s);
    }
}

/* ---- huge capacities ---------------------------------------------------------------------- */

static void test_huge_capacity(const chm_backend *b)
{
    static const size_t caps[] = {SIZE_MAX,        SIZE_MAX / 2, (size_t)1 << 62,
                                  (size_t)1 << 40, SIZE_MAX - 1, ((size_t)1 << 63) + 1};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        chm_options o;
        memset(&o, 0, sizeof o);
        o.capacity = caps[i];
        errno = 0;
        chm *m = chm_new(b, &o);
        if (!CHECK(m == NULL)) {
            FAIL("capacity %zu: chm_new succeeded", caps[i]);
            chm_free(m);
            continue;
        }
        if (!CHECK_EQ(errno, ENOMEM))
            FAIL("capacity %zu: errno %d", caps[i], errno);
    }
    /* a large but possible capacity works */
    chm_options o;
    memset(&o, 0, sizeof o);
    o.capacity = 100000;
    chm *m = chm_new(b, &o);
    if (CHECK(m != NULL)) {
        short_workout(m);
        chm_free(m);
    }
}

/* ---- iteration order with a fixed seed ---------------------------------------------------- */

static void feed(chm *m, uint64_t seed)
{
    tl_rng r = tl_rng_seed(seed);
    for (int i = 0; i < 3000; i++) {
        uint64_t k = tl_below(&r, 2000);
        if (tl_below(&r, 3) == 0)
            chm_remove(m, k, NULL);
        else
            chm_put(m, k, k * 3, NULL);
    }
}

static size_t iteration_order(chm *m, uint64_t *keys, size_t max)
{
    chm_iter it;
    size_t n = 0;
    uint64_t k;
    if (!CHECK_RC(chm_iter_init(&it, m), CHM_OK))
        return 0;
    while (n < max && chm_iter_next(&it, &k, NULL) == CHM_OK)
        keys[n++] = k;
    chm_iter_fini(&it);
    return n;
}

/* With a fixed seed, two maps fed the same operations iterate in the same order: true of the
 * backends on Go's table (the random iteration start is drawn from the map's seed), asserted
 * for them only; other backends are not required to be deterministic. */
static void test_fixed_seed_order(const chm_backend *b)
{
    if (!tl_fail_fast(b)) {
        tl_note("%s: iteration order with a fixed seed not asserted", chm_backend_name(b));
        return;
    }
    chm_options o;
    memset(&o, 0, sizeof o);
    o.seed = 0x0123456789abcdefULL;
    chm *m1 = chm_new(b, &o), *m2 = chm_new(b, &o);
    if (!CHECK(m1 != NULL && m2 != NULL))
        return;
    feed(m1, 9);
    feed(m2, 9);
    enum { MAX = 4096 };
    uint64_t *a = malloc(MAX * sizeof *a), *c = malloc(MAX * sizeof *c);
    for (int round = 0; round < 3; round++) {
        size_t na = iteration_order(m1, a, MAX), nc = iteration_order(m2, c, MAX);
        CHECK_EQ(na, chm_size(m1));
        CHECK_EQ(na, nc);
        CHECK(na > 100);
        CHECK(memcmp(a, c, na * sizeof *a) == 0);
    }
    free(a);
    free(c);
    chm_free(m1);
    chm_free(m2);
}

/* ---- value_free, exactly ------------------------------------------------------------------ */

static uint64_t freed_count(tl_freelog *log, uint64_t v)
{
    uint64_t c = 0;
    tl_model_get(&log->freed, v, &c);
    return c;
}

static void test_value_free_exact(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.value_free = tl_freelog_cb;
    o.ctx = &log;
    chm *m = chm_new(b, &o);
    if (!CHECK(m != NULL))
        goto out;
    uint64_t old;
    struct compute_arg a = {0, 0, 1000};
#define FREED(v) freed_count(&log, (v))
    CHECK_RC(chm_put(m, 1, 100, NULL), CHM_OK);
    CHECK_RC(chm_put(m, 2, 200, NULL), CHM_OK);
    CHECK_RC(chm_put(m, 3, 300, NULL), CHM_OK);
    CHECK_RC(chm_put(m, 4, 400, NULL), CHM_OK);
    CHECK_EQ(tl_freelog_calls(&log), 0);
    CHECK_RC(chm_put(m, 1, 101, &old), CHM_EXISTS); /* replaced by put: 100 leaves */
    CHECK_EQ(old, 100);
    CHECK_RC(chm_replace(m, 2, 200, 201), CHM_OK);     /* replaced by replace: 200 leaves */
    CHECK_RC(chm_replace(m, 2, 999, 202), CHM_EXISTS); /* no change: nothing leaves */
    CHECK_RC(chm_replace(m, 9, 999, 202), CHM_NOTFOUND);
    CHECK_RC(chm_remove(m, 3, &old), CHM_OK); /* removed: 300 leaves */
    CHECK_EQ(old, 300);
    CHECK_RC(chm_remove(m, 3, NULL), CHM_NOTFOUND);
    CHECK_RC(chm_put_if_absent(m, 4, 401, &old), CHM_EXISTS); /* not inserted: 401 never freed */
    CHECK_EQ(old, 400);
    CHECK_RC(chm_compute_if_absent(m, 4, compute_fn, &a, &old), CHM_EXISTS);
    CHECK_RC(chm_compute_if_absent(m, 5, compute_fn, &a, &old), CHM_OK);
    CHECK_EQ(a.calls, 1);
    CHECK_RC(chm_put(m, 6, 600, NULL), CHM_OK);
    CHECK_RC(chm_put(m, 6, 600, &old), CHM_EXISTS); /* the same value: it has not left */
    CHECK_EQ(old, 600);
    CHECK_RC(chm_replace(m, 6, 600, 600), CHM_OK); /* nor here */
    /* before chm_free: at most the three (deferred frees allowed) */
    CHECK(tl_freelog_calls(&log) <= 3);
    chm_free(m);
    /* after: 100, 200, 300, 600 (once, at free), and 101, 201, 400, 1000 */
    CHECK_EQ(tl_freelog_calls(&log), 8);
    CHECK_EQ(FREED(100), 1);
    CHECK_EQ(FREED(101), 1);
    CHECK_EQ(FREED(200), 1);
    CHECK_EQ(FREED(201), 1);
    CHECK_EQ(FREED(202), 0);
    CHECK_EQ(FREED(300), 1);
    CHECK_EQ(FREED(400), 1);
    CHECK_EQ(FREED(401), 0);
    CHECK_EQ(FREED(1000), 1);
    CHECK_EQ(FREED(600), 1);
#undef FREED
    /* an empty map frees nothing; a NULL value_free is fine */
    unsigned long before = tl_freelog_calls(&log);
    m = chm_new(b, &o);
    if (CHECK(m != NULL))
        chm_free(m);
    CHECK_EQ(tl_freelog_calls(&log), before);
out:
    tl_freelog_fini(&log);
}

/* The ctx pointer reaches value_free unchanged. */
static void ctx_cb(uint64_t value, void *ctx)
{
    uint64_t *slot = ctx;
    slot[0]++;
    slot[1] += value;
}

static void test_value_free_ctx(const chm_backend *b)
{
    uint64_t acc[2] = {0, 0};
    chm_options o;
    memset(&o, 0, sizeof o);
    o.value_free = ctx_cb;
    o.ctx = acc;
    chm *m = chm_new(b, &o);
    if (!CHECK(m != NULL))
        return;
    for (uint64_t i = 0; i < 100; i++)
        chm_put(m, i, i, NULL);
    chm_free(m);
    CHECK_EQ(acc[0], 100);
    CHECK_EQ(acc[1], 4950);
}

/* ---- a value replaced by itself has not left the map -------------------------------------- */

/* A map of backend @b with @keys (NULL: the default) and value_free = @vf(value, @ctx). */
static chm *new_with_value_free(const chm_backend *b, const chm_keyops *keys,
                                void (*vf)(uint64_t value, void *ctx), void *ctx)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.keys = keys;
    o.value_free = vf;
    o.ctx = ctx;
    return chm_new(b, &o);
}

/* put(k, v) where k holds v, and replace(k, v, v), leave v in the map: value_free must not see
 * it. Every overwriting path: fresh keys and (after an iteration, which promotes readmostly's
 * dirty map) keys of the read index, plain bins and, with colliding keys that have a compare,
 * binlock's TreeBins. Nothing leaves before chm_free, so not even a deferred free may show. */
static void same_value_run(const chm_backend *b, const chm_keyops *keys)
{
    enum { N = 80 };
    tl_freelog log;
    tl_freelog_init(&log, true);
    chm *m = new_with_value_free(b, keys, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    for (uint64_t k = 0; k < N; k++)
        CHECK_RC(chm_put(m, k, 1000 + k, NULL), CHM_OK);
    for (int round = 0; round < 2; round++) {
        for (uint64_t k = 0; k < N; k++) {
            uint64_t old = 0;
            CHECK_RC(chm_put(m, k, 1000 + k, &old), CHM_EXISTS);
            CHECK_EQ(old, 1000 + k);
            CHECK_RC(chm_replace(m, k, 1000 + k, 1000 + k), CHM_OK);
        }
        tl_model seen;
        tl_model_init(&seen);
        CHECK_RC(tl_collect(m, &seen), CHM_END);
        CHECK_EQ(tl_model_size(&seen), N);
        tl_model_fini(&seen);
    }
    CHECK_EQ(tl_freelog_calls(&log), 0);
    chm_free(m);
    CHECK_EQ(tl_freelog_calls(&log), N); /* each value once, at chm_free */
    for (uint64_t k = 0; k < N; k++)
        CHECK_EQ(freed_count(&log, 1000 + k), 1);
out:
    tl_freelog_fini(&log);
}

static void test_same_value_stays(const chm_backend *b)
{
    same_value_run(b, NULL);
    same_value_run(b, &keys_const_cmp);
}

/* The same with pointer values and value_free = free, as a program that stores objects does: a
 * value_free call for a value still in the map makes the next dereference a use-after-free
 * (unsafe and rwlock free at once) and chm_free a double free (the lock-free backends defer the
 * free), both of which AddressSanitizer reports. */
static void box_free(uint64_t value, void *ctx)
{
    atomic_fetch_sub_explicit((atomic_long *)ctx, 1, memory_order_relaxed);
    free((void *)(uintptr_t)value);
}

static uint64_t box_new(atomic_long *live, uint64_t content)
{
    uint64_t *p = malloc(sizeof *p);
    if (!CHECK(p != NULL))
        abort();
    *p = content;
    atomic_fetch_add_explicit(live, 1, memory_order_relaxed);
    return (uint64_t)(uintptr_t)p;
}

static void test_same_pointer_value(const chm_backend *b)
{
    atomic_long live = 0;
    chm *m = new_with_value_free(b, NULL, box_free, &live);
    if (!CHECK(m != NULL))
        return;
    uint64_t box[4];
    for (uint64_t k = 0; k < 4; k++) {
        box[k] = box_new(&live, 0xb0c5 + k);
        CHECK_RC(chm_put(m, k, box[k], NULL), CHM_OK);
    }
    for (uint64_t k = 0; k < 4; k++) {
        uint64_t old = 0, v = 0;
        CHECK_RC(chm_put(m, k, box[k], &old), CHM_EXISTS);
        CHECK_EQ(old, box[k]);
        CHECK_RC(chm_replace(m, k, box[k], box[k]), CHM_OK);
        if (CHECK_RC(chm_get(m, k, &v), CHM_OK) && CHECK_EQ(v, box[k]))
            CHECK_EQ(*(const uint64_t *)(uintptr_t)v, 0xb0c5 + k);
    }
    /* a real replacement still frees the replaced box, once */
    uint64_t old = 0;
    CHECK_RC(chm_put(m, 0, box_new(&live, 0xb0c5), &old), CHM_EXISTS);
    CHECK_EQ(old, box[0]);
    chm_free(m);
    CHECK_EQ(atomic_load_explicit(&live, memory_order_relaxed), 0);
}

/* ---- a compute whose value is not inserted ------------------------------------------------
 * A compute function that changes the map structurally makes the compute return
 * CHM_ECONCURRENT and insert nothing on the fail-fast backends; its value then goes to value_free
 * before the call returns (chm.h), so a function that allocates its value does not leak. On the
 * other backends the nested write is refused and the value inserted. Values are malloc'd boxes
 * and value_free frees them: a value the map loses is a leak, counted here and reported by
 * LeakSanitizer. */
struct lost {
    chm *m;
    atomic_long live;
    int nested_rc;
    uint64_t made;
};

static uint64_t lost_fn(uint64_t key, void *arg)
{
    struct lost *l = arg;
    uint64_t other = box_new(&l->live, key + 1);
    l->nested_rc = chm_put(l->m, key + 1, other, NULL); /* a new key: structural */
    if (l->nested_rc != CHM_OK)
        box_free(other, &l->live); /* refused: still ours */
    l->made = box_new(&l->live, key);
    return l->made;
}

static void test_compute_value_not_lost(const chm_backend *b)
{
    struct lost l;
    memset(&l, 0, sizeof l);
    l.m = new_with_value_free(b, NULL, box_free, &l.live);
    if (!CHECK(l.m != NULL))
        return;
    uint64_t v = 0x5e771e;
    int rc = chm_compute_if_absent(l.m, 10, lost_fn, &l, &v);
    if (tl_fail_fast(b)) {
        CHECK_RC(l.nested_rc, CHM_OK);
        CHECK_RC(rc, CHM_ECONCURRENT);
        CHECK_EQ(v, 0x5e771e); /* not set */
        CHECK_RC(chm_get(l.m, 10, NULL), CHM_NOTFOUND);
        CHECK_RC(chm_get(l.m, 11, NULL), CHM_OK);
        /* fn's box went to value_free already: only the nested put's box is alive */
        CHECK_EQ(atomic_load_explicit(&l.live, memory_order_relaxed), 1);
    } else {
        CHECK_RC(l.nested_rc, CHM_EDEADLK);
        if (CHECK_RC(rc, CHM_OK))
            CHECK_EQ(v, l.made);
        CHECK_RC(chm_get(l.m, 11, NULL), CHM_NOTFOUND);
        CHECK_EQ(atomic_load_explicit(&l.live, memory_order_relaxed), 1); /* in the map */
    }
    chm_free(l.m);
    CHECK_EQ(atomic_load_explicit(&l.live, memory_order_relaxed), 0);
}

/* ---- compute_if_absent -------------------------------------------------------------------- */

static void test_compute_if_absent(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    for (uint64_t k = 0; k < 2000; k++) {
        struct compute_arg a = {0, ~k, k * k + 1};
        uint64_t v = 0;
        if (!CHECK_RC(chm_compute_if_absent(m, k, compute_fn, &a, &v), CHM_OK))
            break;
        CHECK_EQ(a.calls, 1); /* ran exactly once */
        CHECK_EQ(a.key_seen, k);
        CHECK_EQ(v, k * k + 1);
        a.result = 5;
        if (!CHECK_RC(chm_compute_if_absent(m, k, compute_fn, &a, &v), CHM_EXISTS))
            break;
        CHECK_EQ(a.calls, 1); /* not at all when present */
        CHECK_EQ(v, k * k + 1);
    }
    CHECK_EQ(chm_size(m), 2000);
    /* after a remove the key is absent again */
    CHECK_RC(chm_remove(m, 7, NULL), CHM_OK);
    struct compute_arg a = {0, 0, 70};
    uint64_t v = 0;
    CHECK_RC(chm_compute_if_absent(m, 7, compute_fn, &a, &v), CHM_OK);
    CHECK_EQ(v, 70);
    CHECK_EQ(a.calls, 1);
    chm_free(m);
}

/* ---- nested computes across maps ---------------------------------------------------------
 * compute(A) -> fn -> compute(B) -> fn -> a write to A: the inner compute runs in another map,
 * but this thread still holds A's compute (its lock, or its reservation). The header's rule for
 * a call into a map whose compute runs on this thread holds at any depth: on the weakly
 * consistent backends every write returns CHM_EDEADLK; on the fail-fast ones the write runs
 * (this thread holds the map exclusively) and A's compute then fails with CHM_ECONCURRENT if
 * the write changed A structurally. Reads work everywhere. Every case runs in a child process,
 * so that a backend that deadlocks itself fails with its name instead of hanging the suite; once
 * per rwlock kind (the ck lock spins where the pthread lock blocks). */

enum { XK_COMPUTED = 1, XK_PRESENT = 2, XK_OTHER = 3, XK_INNER = 4, XK_B = 5 };
#define XV_A 0xaaaa000000000001ULL /* A's compute function returns it */
#define XV_B 0xbbbb000000000002ULL /* B's */

struct xmap {
    chm *a, *b;
    bool fail_fast; /* nested writes run (unsafe, rwlock) instead of CHM_EDEADLK */
    tl_model model; /* A as it must be */
    unsigned outer_calls, inner_calls;
    int b_rc;
    uint64_t b_value;
};

static uint64_t const_fn(uint64_t key, void *arg)
{
    (void)arg;
    return key * 10;
}

/* A nested write to A returned @rc: CHM_EDEADLK, or on a fail-fast backend what the write
 * returns when it runs (@ran), whose effect on the model the caller then applies. */
static bool xmap_write(struct xmap *x, const char *what, int rc, int ran)
{
    if (CHECK_RC(rc, x->fail_fast ? ran : CHM_EDEADLK))
        return x->fail_fast;
    FAIL("nested %s on A from inside compute(B) inside compute(A)", what);
    return false;
}

/* tl_map_equals_model without its quiescent self-check (a compute is running): size, a full
 * iteration as a set, and a get of every key. */
static void xmap_equals_model(chm *m, const tl_model *model)
{
    CHECK_EQ(chm_size(m), tl_model_size(model));
    tl_model seen;
    tl_model_init(&seen);
    CHECK_RC(tl_collect(m, &seen), CHM_END);
    CHECK_EQ(tl_model_size(&seen), tl_model_size(model));
    size_t pos = 0;
    uint64_t k, want, got;
    while (tl_model_slot(model, &pos, &k, &want)) {
        if (CHECK(tl_model_get(&seen, k, &got)))
            CHECK_EQ(got, want);
        got = ~want;
        if (CHECK_RC(chm_get(m, k, &got), CHM_OK))
            CHECK_EQ(got, want);
    }
    tl_model_fini(&seen);
}

/* B's compute function, inside A's: every kind of call on A. */
static uint64_t xmap_inner(uint64_t key, void *arg)
{
    struct xmap *x = arg;
    x->inner_calls++;
    CHECK_EQ(key, XK_B);
    uint64_t v = 0, cur = 0;
    if (CHECK_RC(chm_get(x->a, XK_PRESENT, &v), CHM_OK)) /* reads work on every backend */
        CHECK_EQ(v, 20);
    CHECK_EQ(chm_size(x->a), tl_model_size(&x->model));
    if (xmap_write(x, "put of the key being computed", chm_put(x->a, XK_COMPUTED, 10, NULL),
                   CHM_OK))
        tl_model_put(&x->model, XK_COMPUTED, 10, NULL);
    if (xmap_write(x, "put", chm_put(x->a, XK_PRESENT, 21, NULL), CHM_EXISTS))
        tl_model_put(&x->model, XK_PRESENT, 21, NULL);
    if (xmap_write(x, "put_if_absent", chm_put_if_absent(x->a, XK_OTHER, 30, NULL), CHM_OK))
        tl_model_put(&x->model, XK_OTHER, 30, NULL);
    tl_model_get(&x->model, XK_PRESENT, &cur);
    if (xmap_write(x, "replace", chm_replace(x->a, XK_PRESENT, cur, 22), CHM_OK))
        tl_model_put(&x->model, XK_PRESENT, 22, NULL);
    if (xmap_write(x, "remove", chm_remove(x->a, XK_PRESENT, NULL), CHM_OK))
        tl_model_remove(&x->model, XK_PRESENT, NULL);
    if (xmap_write(x, "compute_if_absent",
                   chm_compute_if_absent(x->a, XK_INNER, const_fn, NULL, NULL), CHM_OK))
        tl_model_put(&x->model, XK_INNER, XK_INNER * 10, NULL);
    xmap_equals_model(x->a, &x->model); /* from inside both computes */
    return XV_B;
}

static uint64_t xmap_outer(uint64_t key, void *arg)
{
    struct xmap *x = arg;
    x->outer_calls++;
    CHECK_EQ(key, XK_COMPUTED);
    x->b_rc = chm_compute_if_absent(x->b, XK_B, xmap_inner, x, &x->b_value);
    return XV_A;
}

static void xmap_single(const chm_backend *b, chm_rwlock_kind kind)
{
    struct xmap x;
    memset(&x, 0, sizeof x);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.rwlock = kind; /* ignored by the other backends */
    x.a = chm_new(b, &o);
    x.b = chm_new(b, &o);
    x.fail_fast = tl_fail_fast(b);
    tl_model_init(&x.model);
    if (!CHECK(x.a != NULL && x.b != NULL))
        goto out;
    CHECK_RC(chm_put(x.a, XK_PRESENT, 20, NULL), CHM_OK);
    tl_model_put(&x.model, XK_PRESENT, 20, NULL);
    uint64_t v = 0;
    int rc = chm_compute_if_absent(x.a, XK_COMPUTED, xmap_outer, &x, &v);
    CHECK_EQ(x.outer_calls, 1);
    CHECK_EQ(x.inner_calls, 1);
    CHECK_RC(x.b_rc, CHM_OK); /* B's compute is not affected */
    CHECK_EQ(x.b_value, XV_B);
    if (x.fail_fast) {
        /* fn changed A structurally: A's compute inserted nothing; the nested writes stand */
        CHECK_RC(rc, CHM_ECONCURRENT);
    } else if (CHECK_RC(rc, CHM_OK)) {
        CHECK_EQ(v, XV_A);
        tl_model_put(&x.model, XK_COMPUTED, XV_A, NULL);
    }
    tl_map_equals_model(x.a, &x.model); /* A's compute completed intact */
    if (CHECK_RC(chm_get(x.b, XK_B, &v), CHM_OK))
        CHECK_EQ(v, XV_B);
    CHECK_EQ(chm_size(x.b), 1);
    /* both computes are over: this thread writes both maps again */
    CHECK_RC(chm_put(x.a, 99, 1, NULL), CHM_OK);
    CHECK_RC(chm_put(x.b, 99, 1, NULL), CHM_OK);
out:
    tl_model_fini(&x.model);
    chm_free(x.a);
    chm_free(x.b);
}

/* The same nesting with a second thread that writes the key A's compute holds: its write must
 * not land while A's compute runs (an unlock of a lock this thread did not take for the nested
 * write would let it through). The handshake: A's function lets the writer go, then waits until
 * the writer either finished (too early: a failure) or sleeps in the kernel, which a writer does
 * only when it waits for the key's lock or reservation (every backend's writers spin a little,
 * then sleep). That wait is repeated after the nested write. The spinning ck lock never sleeps,
 * so this runs with the pthread lock only. */
struct xthread {
    chm *a, *b;
    atomic_int go;      /* A's function runs: the writer may start */
    atomic_int tid;     /* the writer's thread id, 0 until known */
    atomic_int calling; /* the writer is about to call chm_put */
    atomic_int done;    /* its chm_put returned */
    atomic_int fn_done; /* A's function is about to return */
    bool landed_early;  /* the writer's chm_put returned while A's function ran */
    int put_rc;
    uint64_t put_old;
    int nested_rc, b_rc;
};

static bool thread_sleeps(int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* "tid (comm) S ...": comm may contain anything */
    return p != NULL && p[1] == ' ' && p[2] == 'S';
}

static void *xthread_writer(void *arg)
{
    struct xthread *x = arg;
    atomic_store(&x->tid, (int)syscall(SYS_gettid));
    while (atomic_load(&x->go) == 0)
        sched_yield();
    atomic_store(&x->calling, 1);
    x->put_rc = chm_put(x->a, XK_COMPUTED, 0x22, &x->put_old);
    x->landed_early = atomic_load(&x->fn_done) == 0;
    atomic_store(&x->done, 1);
    return NULL;
}

/* Until the writer has finished or sleeps (see above); 30 s bound only for a broken library. */
static void xthread_wait_writer(struct xthread *x)
{
    double deadline = tl_now() + 30;
    while (atomic_load(&x->calling) == 0 || atomic_load(&x->tid) == 0)
        sched_yield();
    while (atomic_load(&x->done) == 0 && !thread_sleeps(atomic_load(&x->tid))) {
        if (tl_now() > deadline) {
            FAIL("the writer neither finished nor blocked within 30 s");
            return;
        }
        sched_yield();
    }
}

static uint64_t xthread_inner(uint64_t key, void *arg)
{
    struct xthread *x = arg;
    (void)key;
    x->nested_rc = chm_put(x->a, XK_PRESENT, 21, NULL); /* an overwrite: not structural */
    return XV_B;
}

static uint64_t xthread_outer(uint64_t key, void *arg)
{
    struct xthread *x = arg;
    (void)key;
    atomic_store(&x->go, 1);
    xthread_wait_writer(x); /* the writer waits for A's compute ... */
    x->b_rc = chm_compute_if_absent(x->b, XK_B, xthread_inner, x, NULL);
    xthread_wait_writer(x); /* ... and still does after the nested write */
    atomic_store(&x->fn_done, 1);
    return XV_A;
}

static void xmap_threads(const chm_backend *b)
{
    struct xthread x;
    memset(&x, 0, sizeof x);
    x.a = chm_new(b, NULL);
    x.b = chm_new(b, NULL);
    if (!CHECK(x.a != NULL && x.b != NULL))
        goto out;
    CHECK_RC(chm_put(x.a, XK_PRESENT, 20, NULL), CHM_OK);
    tl_thread t;
    tl_spawn(&t, xthread_writer, &x);
    uint64_t v = 0;
    if (CHECK_RC(chm_compute_if_absent(x.a, XK_COMPUTED, xthread_outer, &x, &v), CHM_OK))
        CHECK_EQ(v, XV_A);
    tl_join(&t);
    CHECK_RC(x.nested_rc, tl_fail_fast(b) ? CHM_EXISTS : CHM_EDEADLK);
    CHECK_RC(x.b_rc, CHM_OK);
    if (!CHECK(!x.landed_early))
        FAIL("another thread's write to A landed while A's compute was running");
    if (CHECK_RC(x.put_rc, CHM_EXISTS)) /* after the compute: it replaced the computed value */
        CHECK_EQ(x.put_old, XV_A);
    if (CHECK_RC(chm_get(x.a, XK_COMPUTED, &v), CHM_OK))
        CHECK_EQ(v, 0x22);
out:
    chm_free(x.a);
    chm_free(x.b);
}

/* Computes nest CHM_COMPUTE_NESTING_MAX deep, each in its own map; one more returns
 * CHM_ENOMEM before its function runs, and the others complete. */
struct nest {
    chm *maps[CHM_COMPUTE_NESTING_MAX + 1];
    int rc[CHM_COMPUTE_NESTING_MAX + 1];
    int depth; /* computes running */
    unsigned calls;
};

static uint64_t nest_fn(uint64_t key, void *arg)
{
    struct nest *n = arg;
    n->calls++;
    int d = ++n->depth; /* this function belongs to compute number d (1-based) */
    if (d <= CHM_COMPUTE_NESTING_MAX)
        n->rc[d] = chm_compute_if_absent(n->maps[d], key, nest_fn, n, NULL);
    n->depth--;
    return key + (uint64_t)d;
}

static void test_nesting_bound(const chm_backend *b)
{
    struct nest n;
    memset(&n, 0, sizeof n);
    for (int i = 0; i <= CHM_COMPUTE_NESTING_MAX; i++)
        if (!CHECK((n.maps[i] = chm_new(b, NULL)) != NULL))
            goto out;
    n.rc[0] = chm_compute_if_absent(n.maps[0], 7, nest_fn, &n, NULL);
    CHECK_EQ(n.calls, CHM_COMPUTE_NESTING_MAX);
    for (int i = 0; i < CHM_COMPUTE_NESTING_MAX; i++) {
        uint64_t v = 0;
        CHECK_RC(n.rc[i], CHM_OK);
        if (CHECK_RC(chm_get(n.maps[i], 7, &v), CHM_OK))
            CHECK_EQ(v, 7 + (uint64_t)i + 1);
    }
    CHECK_RC(n.rc[CHM_COMPUTE_NESTING_MAX], CHM_ENOMEM);
    CHECK_EQ(chm_size(n.maps[CHM_COMPUTE_NESTING_MAX]), 0);
    /* unwound: the deepest map computes again */
    n.calls = 0;
    n.depth = CHM_COMPUTE_NESTING_MAX;
    CHECK_RC(chm_compute_if_absent(n.maps[CHM_COMPUTE_NESTING_MAX], 7, nest_fn, &n, NULL), CHM_OK);
    CHECK_EQ(n.calls, 1);
out:
    for (int i = 0; i <= CHM_COMPUTE_NESTING_MAX; i++)
        chm_free(n.maps[i]);
}

/* Child: "xmap:<index in chm_backend_list()>:<rwlock kind>". Exit status 0 when every check
 * passed (failures are printed on stdout as usual). */
static int xmap_child(const char *arg)
{
    unsigned idx, kind;
    if (sscanf(arg, "xmap:%u:%u", &idx, &kind) != 2)
        return 2;
    const chm_backend *const *list = chm_backend_list();
    for (unsigned i = 0; i < idx; i++)
        if (list[i] == NULL)
            return 2;
    const chm_backend *b = list[idx];
    if (b == NULL)
        return 2;
    xmap_single(b, (chm_rwlock_kind)kind);
    if (kind == CHM_RWLOCK_PTHREAD && tl_thread_safe(b))
        xmap_threads(b);
    return tl_failures() == 0 ? 0 : 1;
}

static void test_nested_cross_map(const chm_backend *b)
{
    unsigned idx = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != b; p++)
        idx++;
    for (unsigned kind = CHM_RWLOCK_PTHREAD; kind <= CHM_RWLOCK_CK; kind++) {
        char arg[32];
        snprintf(arg, sizeof arg, "xmap:%u:%u", idx, kind);
        tl_child c;
        if (!CHECK(tl_child_run(arg, NULL, 30, &c)))
            return;
        char how[64];
        if (!CHECK(c.exited && c.status == 0))
            FAIL("child %s (rwlock kind %u) ended with %s; stderr: %.2000s", arg, kind,
                 tl_child_describe(&c, how, sizeof how), c.err);
        tl_child_fini(&c);
    }
}

/* ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *child = tl_init(argc, argv);
    if (child != NULL)
        return xmap_child(child);
    tl_watchdog(280); /* a hang (say, in chm_free's drain) fails naming its sub-test */
    tl_run("registry", test_registry, NULL);
    tl_run("strerror", test_strerror, NULL);
    tl_each_backend("invalid_arguments", test_invalid_arguments, NULL);
    tl_each_backend("null_and_zeroed_options", test_null_and_zeroed_options, NULL);
    tl_each_backend("null_out_pointers", test_null_out_pointers, NULL);
    tl_each_backend("extreme_keys_values", test_extreme_keys_values, NULL);
    tl_each_backend("value_free_exact", test_value_free_exact, NULL);
    tl_each_backend("value_free_ctx", test_value_free_ctx, NULL);
    tl_each_backend("same_value_stays", test_same_value_stays, NULL);
    tl_each_backend("same_pointer_value", test_same_pointer_value, NULL);
    tl_each_backend("compute_if_absent", test_compute_if_absent, NULL);
    tl_each_backend("compute_value_not_lost", test_compute_value_not_lost, NULL);
    tl_each_backend("nested_cross_map", test_nested_cross_map, NULL);
    tl_each_backend("nesting_bound", test_nesting_bound, NULL);
    tl_each_backend("random_small", test_random_small, NULL);
    tl_each_backend("random_options", test_random_options, NULL);
    tl_each_backend("random_large", test_random_large, NULL);
    tl_each_backend("string_keys", test_string_keys, NULL);
    tl_each_backend("huge_capacity", test_huge_capacity, NULL);
    tl_each_backend("fixed_seed_order", test_fixed_seed_order, NULL);
    return tl_finish();
}
