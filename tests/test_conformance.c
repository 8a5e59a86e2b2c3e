/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_conformance.c - single-threaded conformance of every backend of chm_backend_list() to the
 * contract (include/chm.h, its doc comments). Expectations follow the caps
 * (CHM_CAP_COMPUTE_EXCLUSIVE, CHM_CAP_FAIL_FAST_ITER, CHM_CAP_DEFERRED_FREE, ...), never a
 * backend's name. The two-thread cases are handshakes, not races.
 *
 *   registry             chm_backend_list() starts with the contract's five that are built, in
 *                        its order, any later backend after them; find, name, thread_safe
 *   strerror             a distinct message for every status code, another for unknown ones
 *   invalid_arguments, null_and_zeroed_options, null_out_pointers
 *                        CHM_EINVAL for invalid arguments; NULL and zeroed options make a
 *                        working map; every out-pointer may be NULL
 *   extreme_keys_values  keys and values 0, UINT64_MAX and near them
 *   value_free_exact, value_free_ctx
 *                        value_free runs exactly once per value that left (checked as a
 *                        multiset), with the map's ctx
 *   same_value_stays, same_pointer_value
 *                        a put or replace that stores the value the key already holds frees
 *                        nothing (recorded; then with malloc'd pointer values and free as
 *                        value_free, where AddressSanitizer reports a use after free or a
 *                        double free)
 *   compute_value_not_lost  a compute_if_absent function that allocates its value and changes the
 *                        map: with CHM_CAP_COMPUTE_EXCLUSIVE the compute returns CHM_ECONCURRENT
 *                        and the value goes to value_free within the call, otherwise the nested
 *                        write gets CHM_EDEADLK and the value is inserted; none leaks
 *   compute_if_absent    the function runs once for an absent key (and again once it is
 *                        removed), never for a present one
 *   nested_cross_map, compute_cross_map
 *                        compute(A) -> fn -> compute(B) -> fn -> every call on A, with
 *                        compute_if_absent and then chm_compute: the header's rule for A holds
 *                        (CHM_EDEADLK, or with CHM_CAP_COMPUTE_EXCLUSIVE the call runs and A's
 *                        compute returns CHM_ECONCURRENT) and A ends exactly as the model says,
 *                        with each rwlock kind; each case runs in a child process, so a backend
 *                        that deadlocks itself fails with its name. Then with a second thread
 *                        writing the key A's compute holds: that write must not land before A's
 *                        compute returns (the handshake: struct xthread)
 *   nesting_bound, compute_nesting_bound
 *                        computes nest CHM_COMPUTE_NESTING_MAX deep; one more returns CHM_ENOMEM
 *                        without running its function
 *   random_small, random_options, random_large
 *                        model-based random operations against a reference map: every status
 *                        code and out-value of get, put, put_if_absent, remove, replace,
 *                        compute_if_absent, chm_compute, remove_if (and now and then chm_clear)
 *                        and size, full iterations compared as sets; small key ranges (collisions,
 *                        many removes); colliding keyops, the other rwlock kinds, odd concurrency
 *                        and capacity values; 50k keys from capacity 0 (a dozen doublings).
 *                        CHM_TEST_SEED=N explores other operation streams
 *   string_keys          chm_keys_string with the caller's buffer overwritten after every call
 *   huge_capacity        capacities the machine cannot hold -> NULL, errno ENOMEM; 100,000 works
 *   fixed_seed_order     with a fixed seed two maps fed the same operations iterate in the same
 *                        order (asserted for the fail-fast backends, which are built on Go's
 *                        table)
 *
 * The capabilities, chm_options.size and the calls beyond get / put / remove, exactly:
 *   caps_registry        chm_backend_caps(NULL) == 0; THREAD_SAFE == chm_backend_thread_safe;
 *                        RACE_DETECT iff not thread-safe; the bits' implications hold
 *   options_size         chm_options.size: NULL, zeroed (size 0), sizeof and sizeof + 8 with a
 *                        zero tail work and honour value_free; a non-zero byte within the extra 8
 *                        -> NULL, EINVAL; sizes 1, 4, 8, sizeof / 2, sizeof - 1 -> EINVAL
 *   compute_actions      chm_compute with each decision on present and absent keys: the status,
 *                        *result set or untouched, fn ran once and saw present, old and *value ==
 *                        old; an action outside the enum is a KEEP; a SET of the value held frees
 *                        nothing; every replaced or deleted value is freed once -- within the
 *                        call without CHM_CAP_DEFERRED_FREE -- and the multiset is exact after
 *                        chm_free; a NULL fn or map -> CHM_EINVAL, fn not run
 *   compute_originals    Java's compute, computeIfPresent, merge and Go's Swap, CompareAndSwap,
 *                        CompareAndDelete, LoadOrStore, LoadAndDelete, a counter and a refcount
 *                        drop, each written as an update function and checked
 *   compute_boxes        malloc'd values through chm_compute (ASan sees every box)
 *   compute_nested       from a chm_compute function, every write kind x every decision x
 *                        present / absent key, with nested get / visit / size working
 *                        throughout: CHM_EDEADLK without CHM_CAP_COMPUTE_EXCLUSIVE; with it the
 *                        write runs, and a structural one, or a put of the key being computed,
 *                        makes the compute return CHM_ECONCURRENT and apply nothing, its SET
 *                        value freed within the call -- except a SET of the value fn saw, which
 *                        is the map's and must not be freed (a use after free, or a double free
 *                        after a nested clear)
 *   remove_if            CHM_OK / CHM_NOTFOUND / CHM_EXISTS; the expected value freed once
 *   clear                an empty map; every value freed once; the map usable after
 *   clear_string_keys    counted key copies all released; chm_keys_string's copies gone from
 *                        chm_stats.bytes
 *   clear_iterator       an open fail-fast iterator gets CHM_ECONCURRENT if the map was not
 *                        empty and not if it was; weakly consistent iterators go on
 *   visit                the value, CHM_NOTFOUND, CHM_EINVAL; fn gets the caller's key, not the
 *                        stored copy; from fn, get / visit / size of the same map work and every
 *                        write (put, put_if_absent, remove, replace, both computes, remove_if,
 *                        clear) returns CHM_EDEADLK
 *   visit_pointer        pointer values, replaced between visits
 *   visit_writer_waiting the nested reads also while a writer waits for the visit, per rwlock
 *                        kind (thread-safe backends)
 *   stats                chm_stats_get: EINVAL for NULL; entries == chm_size; after 10^5
 *                        inserts from empty, resizes > 0, buckets >= entries, bytes grown by >= 16
 *                        per entry (see test_stats for what is weaker after removes)
 *   stats_pending        pending is 0 after chm__smr_barrier(), always 0 without
 *                        CHM_CAP_DEFERRED_FREE, >= 1 with it right after a single remove
 *   reclaim              chm_reclaim: CHM_EINVAL for NULL; pending 0 and value_free exact when
 *                        it returns; CHM_EDEADLK from compute, update and visit functions and
 *                        from value_free wherever it runs (end of a write, chm_reclaim,
 *                        chm_free); an open iterator of the same thread is not waited for
 *   reclaim_writers      chm_reclaim while two threads write the map (thread-safe backends):
 *                        CHM_OK each time; nothing pending and value_free exact afterwards
 *   caps_iteration       a structural change during iteration (put, remove, remove_if, compute
 *                        SET / DELETE, growth) gives CHM_ECONCURRENT iff FAIL_FAST_ITER,
 *                        otherwise the iteration completes with every key present throughout;
 *                        non-structural changes never fail it
 *   caps_compute_exclusive  a nested write from a compute function runs iff COMPUTE_EXCLUSIVE
 *   caps_tree_bins       TREE_BINS iff <= 4 log2 n key comparisons per get among 1,024 colliding
 *                        keys (otherwise >= n / 8), counted through the key ops
 *   caps_padding         without PADDING_SWITCH `packed` changes no byte of chm_stats.bytes;
 *                        with it, never adds one
 *   caps_store_free_get  STORE_FREE_GET iff a chm_get returns while a compute of its key runs
 *                        (threads started inside the compute function, watched through /proc)
 *   caps_rwlock_kinds    RWLOCK_KINDS: a writer waiting for a compute sleeps with the adaptive
 *                        and pthread locks and spins with ck; without the bit it waits the same
 *                        way with every kind
 *   caps_segments        SEGMENTS: with one segment a put of another new key waits for a
 *                        compute; with 256, some of 16 get through
 *   caps_iter_holds_reclaim  ITER_HOLDS_RECLAIM: with an iterator of M open, none of M's
 *                        replaced values freed after a barrier, another map's all freed, M's
 *                        all after chm_iter_fini; without the bit M's all freed while it is open
 */
#define _GNU_SOURCE /* syscall(SYS_gettid) */
#include "testlib.h"

#include "smr.h" /* chm__smr_barrier: deferred frees done (tests link the static library) */

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

/* ---- chm_compute with an update function told what to decide (used by the random operations
 * below and by the chm_compute tests) ---------------------------------------------------- */

#define POISON_OUT 0x5e7e5e7e5e7e5e7eULL /* an out-value no call below ever produces */

static bool has_cap(const chm_backend *b, unsigned cap)
{
    return (chm_backend_caps(b) & cap) != 0;
}

/* Values leave a map within the removing call unless the backend defers them
 * (CHM_CAP_DEFERRED_FREE): then the frees so far are exact, else at most the expected ones. */
static bool vf_check_now(const chm_backend *b, struct vf_expect *e, tl_freelog *log)
{
    if (has_cap(b, CHM_CAP_DEFERRED_FREE))
        return CHECK(tl_freelog_calls(log) <= e->total);
    return CHECK_EQ(tl_freelog_calls(log), e->total);
}

/* After chm_free: every value that left (@e) plus what the model still holds, each exactly as
 * often as it left, and nothing else. */
static void vf_free_and_check(chm *m, tl_model *model, struct vf_expect *e, tl_freelog *log)
{
    size_t pos = 0;
    uint64_t k, v;
    while (tl_model_slot(model, &pos, &k, &v))
        vf_left(e, v);
    chm_free(m);
    vf_check_final(e, log);
}

/* ---- an update function that does what it is told and records what it saw ------------------ */

struct upd {
    int action; /* returned as is (may lie outside the enum) */
    bool write; /* store set_to into *value before returning (whatever the action) */
    uint64_t set_to;
    unsigned calls; /* what fn saw, last call */
    uint64_t key, old, entry;
    bool present;
};

static chm_compute_action upd_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                 void *arg)
{
    struct upd *u = arg;
    u->calls++;
    u->key = key;
    u->present = present;
    u->old = old;
    u->entry = *value;
    if (u->write)
        *value = u->set_to;
    return (chm_compute_action)u->action;
}

/* chm_compute(m, key, upd_fn) deciding @action (storing @v into *value first), checked against
 * the model: status, *result, fn ran once and saw (key, present, old) with *value == old (0 if
 * absent) on entry; an action outside the enum is a KEEP; a SET of the value the key holds is
 * a KEEP; the values that leave go to @vf. */
static void upd_model(chm *m, tl_model *model, struct vf_expect *vf, uint64_t key, int action,
                      uint64_t v, bool null_result)
{
    uint64_t cur = 0, r = POISON_OUT;
    bool present = tl_model_get(model, key, &cur);
    struct upd u = {.action = action, .write = true, .set_to = v};
    int rc = chm_compute(m, key, upd_fn, &u, null_result ? NULL : &r);
    long before = tl_failures();
    CHECK_EQ(u.calls, 1);
    CHECK_EQ(u.key, key);
    CHECK_EQ(u.present, present);
    CHECK_EQ(u.old, present ? cur : 0);
    CHECK_EQ(u.entry, present ? cur : 0);
    if (action == CHM_COMPUTE_SET) {
        if (CHECK_RC(rc, CHM_OK) && !null_result)
            CHECK_EQ(r, v);
        if (present && cur != v)
            vf_left(vf, cur);
        tl_model_put(model, key, v, NULL);
    } else if (action == CHM_COMPUTE_DELETE) {
        CHECK_RC(rc, CHM_NOTFOUND);
        CHECK_EQ(r, POISON_OUT); /* untouched */
        if (present) {
            vf_left(vf, cur);
            tl_model_remove(model, key, NULL);
        }
    } else { /* KEEP, or outside the enum */
        if (CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && present && !null_result)
            CHECK_EQ(r, cur);
        if (!present || null_result)
            CHECK_EQ(r, POISON_OUT);
    }
    uint64_t got = POISON_OUT;
    bool now = tl_model_get(model, key, &cur);
    if (CHECK_RC(chm_get(m, key, &got), now ? CHM_OK : CHM_NOTFOUND) && now)
        CHECK_EQ(got, cur);
    CHECK_EQ(chm_size(m), tl_model_size(model));
    if (tl_failures() != before)
        FAIL("chm_compute(key 0x%" PRIx64 ", action %d, value 0x%" PRIx64 ") on a key %s", key,
             action, v, present ? "present" : "absent");
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
    } else if (op < 86) {
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
    } else if (op < 93) {
        /* chm_compute: SET (a fresh value, or the one the key holds), DELETE, KEEP, or an
         * action outside the enum (a KEEP) */
        static const int actions[] = {CHM_COMPUTE_SET,    CHM_COMPUTE_SET,  CHM_COMPUTE_SET,
                                      CHM_COMPUTE_DELETE, CHM_COMPUTE_KEEP, 7};
        int action = actions[tl_below(r, 6)];
        uint64_t v = present && tl_below(r, 4) == 0 ? cur : random_value(r);
        upd_model(m, model, vf, key, action, v, null_out);
    } else if (op < 97) {
        uint64_t expected = present && tl_below(r, 10) < 6 ? cur : random_value(r);
        rc = chm_remove_if(m, key, expected);
        int want = !present ? CHM_NOTFOUND : cur == expected ? CHM_OK : CHM_EXISTS;
        CHECK_RC(rc, want);
        if (want == CHM_OK) {
            vf_left(vf, cur);
            tl_model_remove(model, key, NULL);
        }
    } else if (op == 97 && tl_below(r, 8) == 0) {
        /* now and then everything goes */
        CHECK_RC(chm_clear(m), CHM_OK);
        size_t pos = 0;
        uint64_t k, v;
        while (tl_model_slot(model, &pos, &k, &v))
            vf_left(vf, v);
        tl_model_clear(model);
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
    /* colliding keyops, the other rwlock kinds, odd concurrency and capacity values */
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
    struct random_cfg pt = ck;
    pt.label = "rwlock = CHM_RWLOCK_PTHREAD";
    pt.seed = 602;
    pt.rwlock = CHM_RWLOCK_PTHREAD;
    run_random(b, &pt);
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
        o.rwlock = tl_lock_kind((int)(i % 3)); /* ignored by the backends without kinds */
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
    CHECK(n >= 1);
    /* the list starts with the contract's backends that are built, in the contract's order;
     * a backend added later follows them (the loop below checks every entry's name) */
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
    CHECK(at <= n);
    for (size_t i = at; i < n; i++)
        for (size_t k = 0; k < 5; k++)
            CHECK(strcmp(chm_backend_name(list[i]), contract_order[k]) != 0);
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
        /* thread_safe is the capability bit (one fact); of the contract's five, only unsafe
         * lacks it (checked below), and a backend added later answers by its caps alone */
        CHECK_EQ(chm_backend_thread_safe(b), (chm_backend_caps(b) & CHM_CAP_THREAD_SAFE) != 0);
        for (size_t j = 0; j < i; j++)
            CHECK(list[j] != b && strcmp(chm_backend_name(list[j]), name) != 0);
    }
    CHECK(!chm_backend_thread_safe(&chm_unsafe));
    CHECK(chm_backend_thread_safe(&chm_rwlock) && chm_backend_thread_safe(&chm_segmented) &&
          chm_backend_thread_safe(&chm_binlock) && chm_backend_thread_safe(&chm_readmostly));
    CHECK(!chm_backend_thread_safe(NULL));
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
 * for them only; other backends are not required to be deterministic. No capability names
 * "Go's table"; the fail-fast backends (CHM_CAP_FAIL_FAST_ITER) are the ones built on it. */
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

/* The self-check's codes are named (chm__invariant, from each backend's invariant table): 0 is
 * "sound", every code the table lists has its own non-empty text, and a code outside it is
 * "unknown invariant". A backend with a self-check names at least one code. */
static void test_invariant_names(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    CHECK(strcmp(chm__invariant(m, 0), "sound") == 0);
    CHECK(strcmp(chm__invariant(m, 1), "unknown invariant") == 0);
    CHECK(strcmp(chm__invariant(m, -100000), "unknown invariant") == 0);
    const char *seen[128];
    int named = 0;
    for (int code = -1; code >= -128; code--) {
        const char *t = chm__invariant(m, code);
        if (strcmp(t, "unknown invariant") == 0)
            continue;
        if (!CHECK(t[0] != '\0'))
            FAIL("%s: code %d has an empty text", b->name, code);
        for (int i = 0; i < named; i++)
            if (!CHECK(strcmp(seen[i], t) != 0))
                FAIL("%s: code %d repeats the text \"%s\"", b->name, code, t);
        seen[named++] = t;
    }
    if (m->ops->validate != NULL && !CHECK(named > 0))
        FAIL("%s: a self-check whose codes have no names", b->name);
    chm_free(m);
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
    if (tl_compute_exclusive(b)) {
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
 * per rwlock kind (tl_lock_kind: each lock waits its own way, and only pthread's reports a
 * relock). */

enum { XK_COMPUTED = 1, XK_PRESENT = 2, XK_OTHER = 3, XK_INNER = 4, XK_B = 5 };
#define XV_A 0xaaaa000000000001ULL /* A's compute function returns it */
#define XV_B 0xbbbb000000000002ULL /* B's */

struct xmap {
    chm *a, *b;
    bool fail_fast; /* CHM_CAP_COMPUTE_EXCLUSIVE: nested writes run instead of CHM_EDEADLK */
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
    x.fail_fast = tl_compute_exclusive(b);
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
 * so this runs with the adaptive and pthread locks only. */
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

static void xmap_threads(const chm_backend *b, chm_rwlock_kind kind)
{
    struct xthread x;
    memset(&x, 0, sizeof x);
    chm_options o = {.rwlock = kind}; /* ignored by the other backends */
    x.a = chm_new(b, &o);
    x.b = chm_new(b, &o);
    if (!CHECK(x.a != NULL && x.b != NULL))
        goto out;
    CHECK_RC(chm_put(x.a, XK_PRESENT, 20, NULL), CHM_OK);
    tl_thread t;
    tl_spawn(&t, xthread_writer, &x);
    uint64_t v = 0;
    if (CHECK_RC(chm_compute_if_absent(x.a, XK_COMPUTED, xthread_outer, &x, &v), CHM_OK))
        CHECK_EQ(v, XV_A);
    tl_join(&t);
    CHECK_RC(x.nested_rc, tl_compute_exclusive(b) ? CHM_EXISTS : CHM_EDEADLK);
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

static void ucross_single(const chm_backend *b, chm_rwlock_kind kind);

/* Child: "xmap:<index in chm_backend_list()>:<rwlock kind>" ("ucross:...": chm_compute's). Exit status 0 when every check
 * passed (failures are printed on stdout as usual). */
static int xmap_child(const char *arg)
{
    unsigned idx, kind;
    bool update = strncmp(arg, "ucross:", 7) == 0;
    if (sscanf(arg, update ? "ucross:%u:%u" : "xmap:%u:%u", &idx, &kind) != 2)
        return 2;
    const chm_backend *const *list = chm_backend_list();
    for (unsigned i = 0; i < idx; i++)
        if (list[i] == NULL)
            return 2;
    const chm_backend *b = list[idx];
    if (b == NULL)
        return 2;
    if (update) {
        ucross_single(b, (chm_rwlock_kind)kind);
        return tl_failures() == 0 ? 0 : 1;
    }
    xmap_single(b, (chm_rwlock_kind)kind);
    if (tl_thread_safe(b) && kind != CHM_RWLOCK_CK) /* ck's writers never sleep: see there */
        xmap_threads(b, (chm_rwlock_kind)kind);
    return tl_failures() == 0 ? 0 : 1;
}

static void nested_cross_map(const chm_backend *b, const char *what)
{
    unsigned idx = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != b; p++)
        idx++;
    for (int i = 0; i < tl_lock_kinds(b); i++) {
        unsigned kind = (unsigned)tl_lock_kind(i);
        char arg[32];
        snprintf(arg, sizeof arg, "%s:%u:%u", what, idx, kind);
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

static void test_nested_cross_map(const chm_backend *b)
{
    nested_cross_map(b, "xmap");
}

/* The same with chm_compute (ucross_single). */
static void test_compute_cross_map(const chm_backend *b)
{
    nested_cross_map(b, "ucross");
}

/* =============================================================================================
 * chm_compute, chm_remove_if, chm_clear, chm_visit, chm_stats_get, chm_backend_caps and
 * chm_options.size. Written against what the backends guarantee (chm_backend_caps),
 * never their names.
 * ========================================================================================== */

static void test_compute_actions(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    struct vf_expect vf;
    vf_init(&vf);
    tl_model model;
    tl_model_init(&model);
    chm *m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    static const struct {
        uint64_t key, a, b;
    } cases[] = {
        {1, 100, 101},
        {0, 0, UINT64_MAX},
        {UINT64_MAX, UINT64_MAX, 0},
        {(uint64_t)1 << 63, 7, 8},
    };
    static const int outside[] = {3, -1, 0x7fffffff, (int)0x80000000u};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t k = cases[i].key, a = cases[i].a, bv = cases[i].b;
        /* absent: KEEP, DELETE, outside the enum leave it absent; SET inserts */
        upd_model(m, &model, &vf, k, CHM_COMPUTE_KEEP, 0x1111, false);
        upd_model(m, &model, &vf, k, CHM_COMPUTE_DELETE, 0x2222, false);
        for (size_t j = 0; j < sizeof outside / sizeof outside[0]; j++)
            upd_model(m, &model, &vf, k, outside[j], 0x3333 + j, false);
        upd_model(m, &model, &vf, k, CHM_COMPUTE_SET, a, false);
        vf_check_now(b, &vf, &log);
        /* present: KEEP and outside the enum keep the value (what fn stored is ignored) */
        upd_model(m, &model, &vf, k, CHM_COMPUTE_KEEP, 0x4444, false);
        for (size_t j = 0; j < sizeof outside / sizeof outside[0]; j++)
            upd_model(m, &model, &vf, k, outside[j], 0x5555 + j, false);
        /* a SET of the value the key holds: nothing leaves */
        upd_model(m, &model, &vf, k, CHM_COMPUTE_SET, a, false);
        upd_model(m, &model, &vf, k, CHM_COMPUTE_SET, a, true);
        vf_check_now(b, &vf, &log);
        /* a SET of another value: the old one leaves, once */
        upd_model(m, &model, &vf, k, CHM_COMPUTE_SET, bv, false);
        vf_check_now(b, &vf, &log);
        /* DELETE: the value leaves, the key is absent, *result untouched */
        upd_model(m, &model, &vf, k, CHM_COMPUTE_DELETE, 0x6666, false);
        vf_check_now(b, &vf, &log);
        upd_model(m, &model, &vf, k, CHM_COMPUTE_DELETE, 0x6667, false);
        /* again, with NULL result pointers */
        upd_model(m, &model, &vf, k, CHM_COMPUTE_SET, a, true);
        upd_model(m, &model, &vf, k, CHM_COMPUTE_KEEP, 0x7777, true);
        upd_model(m, &model, &vf, k, CHM_COMPUTE_SET, bv, true);
        vf_check_now(b, &vf, &log);
        if (tl_failures() != 0)
            break;
    }
    tl_map_equals_model(m, &model);
    /* a NULL fn (present and absent key) and a NULL map: CHM_EINVAL, fn never runs */
    struct upd u = {.action = CHM_COMPUTE_SET, .write = true, .set_to = 9};
    uint64_t r = POISON_OUT;
    CHECK_RC(chm_compute(m, 1, NULL, &u, &r), CHM_EINVAL);
    CHECK_RC(chm_compute(m, 12345, NULL, &u, &r), CHM_EINVAL);
    CHECK_RC(chm_compute(m, 12345, NULL, NULL, NULL), CHM_EINVAL);
    CHECK_RC(chm_compute(NULL, 1, upd_fn, &u, &r), CHM_EINVAL);
    CHECK_EQ(u.calls, 0);
    CHECK_EQ(r, POISON_OUT);
    tl_map_equals_model(m, &model);
    vf_check_now(b, &vf, &log);
    vf_free_and_check(m, &model, &vf, &log);
out:
    tl_model_fini(&model);
    vf_fini(&vf);
    tl_freelog_fini(&log);
}

/* ---- the originals' calls, written as update functions (chm.h's table) --------------------- */

struct orig {
    uint64_t v, o, n; /* the call's arguments */
    unsigned calls;   /* fn ran */
    bool present;     /* what fn saw: the only way out for old/present */
    uint64_t old;
    unsigned f_calls; /* Java's remapping function ran */
};

static void orig_saw(struct orig *a, bool present, uint64_t old)
{
    a->calls++;
    a->present = present;
    a->old = old;
}

/* Java's remapping function f(k, old): null (false) for old == 5, else old * 10 + k; 1 for
 * an absent key. */
static bool java_f(struct orig *a, uint64_t key, bool present, uint64_t old, uint64_t *out)
{
    a->f_calls++;
    if (present && old == 5)
        return false;
    *out = present ? old * 10 + key : 1;
    return true;
}

/* Java compute(k, f): *value = f(k, old); SET, or DELETE for null. */
static chm_compute_action java_compute(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                       void *arg)
{
    struct orig *a = arg;
    orig_saw(a, present, old);
    uint64_t out;
    if (!java_f(a, key, present, old, &out))
        return CHM_COMPUTE_DELETE;
    *value = out;
    return CHM_COMPUTE_SET;
}

/* Java computeIfPresent(k, f): nothing for an absent key, else as compute. */
static chm_compute_action java_compute_if_present(uint64_t key, bool present, uint64_t old,
                                                  uint64_t *value, void *arg)
{
    struct orig *a = arg;
    orig_saw(a, present, old);
    if (!present)
        return CHM_COMPUTE_KEEP;
    uint64_t out;
    if (!java_f(a, key, present, old, &out))
        return CHM_COMPUTE_DELETE;
    *value = out;
    return CHM_COMPUTE_SET;
}

/* Java merge(k, v, f) with f = addition. */
static chm_compute_action java_merge(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                     void *arg)
{
    struct orig *a = arg;
    (void)key;
    orig_saw(a, present, old);
    *value = present ? old + a->v : a->v;
    return CHM_COMPUTE_SET;
}

/* Go Swap(k, v): previous, loaded = old, present. */
static chm_compute_action go_swap(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                  void *arg)
{
    struct orig *a = arg;
    (void)key;
    orig_saw(a, present, old);
    *value = a->v;
    return CHM_COMPUTE_SET;
}

/* Go CompareAndSwap(k, o, n). */
static chm_compute_action go_cas(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                 void *arg)
{
    struct orig *a = arg;
    (void)key;
    orig_saw(a, present, old);
    if (!present || old != a->o)
        return CHM_COMPUTE_KEEP;
    *value = a->n;
    return CHM_COMPUTE_SET;
}

/* Go CompareAndDelete(k, o). */
static chm_compute_action go_cad(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                 void *arg)
{
    struct orig *a = arg;
    (void)key;
    (void)value;
    orig_saw(a, present, old);
    return present && old == a->o ? CHM_COMPUTE_DELETE : CHM_COMPUTE_KEEP;
}

/* Go LoadOrStore(k, v): actual = *result, loaded = present. */
static chm_compute_action go_load_or_store(uint64_t key, bool present, uint64_t old,
                                           uint64_t *value, void *arg)
{
    struct orig *a = arg;
    (void)key;
    orig_saw(a, present, old);
    if (present)
        return CHM_COMPUTE_KEEP;
    *value = a->v;
    return CHM_COMPUTE_SET;
}

/* Go LoadAndDelete(k): value, loaded = old, present. */
static chm_compute_action go_load_and_delete(uint64_t key, bool present, uint64_t old,
                                             uint64_t *value, void *arg)
{
    struct orig *a = arg;
    (void)key;
    (void)value;
    orig_saw(a, present, old);
    return CHM_COMPUTE_DELETE;
}

/* A counter: old + 1. */
static chm_compute_action counter_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                     void *arg)
{
    (void)key;
    (void)present;
    if (arg != NULL)
        orig_saw(arg, present, old);
    *value = old + 1;
    return CHM_COMPUTE_SET;
}

/* A refcount drop: the key goes with its last reference (an absent key stays absent). */
static chm_compute_action refcount_drop(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                        void *arg)
{
    struct orig *a = arg;
    (void)key;
    orig_saw(a, present, old);
    if (!present)
        return CHM_COMPUTE_KEEP;
    if (old == 1)
        return CHM_COMPUTE_DELETE;
    *value = old - 1;
    return CHM_COMPUTE_SET;
}

/* One call of an original: rc and result checked, fn ran once and saw (present, old) as the
 * model says; the model and the expected frees follow the map. */
struct orig_env {
    chm *m;
    tl_model model;
    struct vf_expect vf;
    const char *what;
};

static void orig_call(struct orig_env *e, chm_update_fn *fn, struct orig *a, uint64_t key,
                      int want_rc, uint64_t want_result)
{
    uint64_t cur = 0, r = POISON_OUT;
    bool present = tl_model_get(&e->model, key, &cur);
    a->calls = 0;
    a->f_calls = 0;
    a->present = !present;
    a->old = ~cur;
    int rc = chm_compute(e->m, key, fn, a, &r);
    long before = tl_failures();
    CHECK_EQ(a->calls, 1);
    CHECK_EQ(a->present, present);
    CHECK_EQ(a->old, present ? cur : 0);
    if (CHECK_RC(rc, want_rc))
        CHECK_EQ(r, want_rc == CHM_OK ? want_result : POISON_OUT);
    if (want_rc == CHM_OK) {
        if (present && cur != want_result)
            vf_left(&e->vf, cur);
        tl_model_put(&e->model, key, want_result, NULL);
    } else if (present) {
        vf_left(&e->vf, cur);
        tl_model_remove(&e->model, key, NULL);
    }
    uint64_t got = POISON_OUT;
    bool now = tl_model_get(&e->model, key, &cur);
    if (CHECK_RC(chm_get(e->m, key, &got), now ? CHM_OK : CHM_NOTFOUND) && now)
        CHECK_EQ(got, cur);
    if (tl_failures() != before)
        FAIL("%s on key %" PRIu64 " (%s before)", e->what, key, present ? "present" : "absent");
}

static void orig_put(struct orig_env *e, uint64_t key, uint64_t v)
{
    uint64_t cur;
    bool present = tl_model_get(&e->model, key, &cur);
    CHECK_RC(chm_put(e->m, key, v, NULL), present ? CHM_EXISTS : CHM_OK);
    if (present && cur != v)
        vf_left(&e->vf, cur);
    tl_model_put(&e->model, key, v, NULL);
}

static void test_compute_originals(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    struct orig_env e;
    memset(&e, 0, sizeof e);
    vf_init(&e.vf);
    tl_model_init(&e.model);
    e.m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(e.m != NULL))
        goto out;
    struct orig a;
    memset(&a, 0, sizeof a);

    e.what = "Java compute";
    orig_call(&e, java_compute, &a, 7, CHM_OK, 1); /* absent: f(k, null) = 1 */
    CHECK_EQ(a.f_calls, 1);
    orig_call(&e, java_compute, &a, 7, CHM_OK, 17); /* 1 * 10 + 7 */
    orig_put(&e, 7, 5);
    orig_call(&e, java_compute, &a, 7, CHM_NOTFOUND, 0); /* f returns null: removed */
    CHECK_EQ(a.f_calls, 1);
    orig_call(&e, java_compute, &a, 7, CHM_OK, 1);

    e.what = "Java computeIfPresent";
    orig_call(&e, java_compute_if_present, &a, 8, CHM_NOTFOUND, 0);
    CHECK_EQ(a.f_calls, 0); /* f is not called for an absent key */
    orig_put(&e, 8, 3);
    orig_call(&e, java_compute_if_present, &a, 8, CHM_OK, 38);
    CHECK_EQ(a.f_calls, 1);
    orig_put(&e, 8, 5);
    orig_call(&e, java_compute_if_present, &a, 8, CHM_NOTFOUND, 0);
    orig_call(&e, java_compute_if_present, &a, 8, CHM_NOTFOUND, 0);

    e.what = "Java merge";
    a.v = 4;
    orig_call(&e, java_merge, &a, 9, CHM_OK, 4);
    a.v = 6;
    orig_call(&e, java_merge, &a, 9, CHM_OK, 10);
    a.v = 0; /* merging 0: the same value, nothing leaves */
    orig_call(&e, java_merge, &a, 9, CHM_OK, 10);

    e.what = "Go Swap";
    a.v = 20;
    orig_call(&e, go_swap, &a, 10, CHM_OK, 20);
    CHECK(!a.present); /* loaded = false */
    a.v = 21;
    orig_call(&e, go_swap, &a, 10, CHM_OK, 21);
    CHECK(a.present && a.old == 20);            /* previous = 20, loaded */
    orig_call(&e, go_swap, &a, 10, CHM_OK, 21); /* swapping in the value it holds */
    CHECK_EQ(a.old, 21);

    e.what = "Go CompareAndSwap";
    a.o = 1;
    a.n = 2;
    orig_call(&e, go_cas, &a, 11, CHM_NOTFOUND, 0); /* absent: swapped = false */
    orig_put(&e, 11, 1);
    a.o = 9;
    orig_call(&e, go_cas, &a, 11, CHM_OK, 1); /* another value: unchanged */
    a.o = 1;
    orig_call(&e, go_cas, &a, 11, CHM_OK, 2); /* swapped */
    a.o = 2;
    orig_call(&e, go_cas, &a, 11, CHM_OK, 2); /* old == new: nothing leaves */

    e.what = "Go CompareAndDelete";
    a.o = 1;
    orig_call(&e, go_cad, &a, 12, CHM_NOTFOUND, 0);
    orig_put(&e, 12, 1);
    a.o = 9;
    orig_call(&e, go_cad, &a, 12, CHM_OK, 1); /* deleted = false, the key stays */
    a.o = 1;
    orig_call(&e, go_cad, &a, 12, CHM_NOTFOUND, 0); /* deleted */
    orig_call(&e, go_cad, &a, 12, CHM_NOTFOUND, 0);

    e.what = "Go LoadOrStore";
    a.v = 50;
    orig_call(&e, go_load_or_store, &a, 13, CHM_OK, 50); /* stored: actual = 50, loaded false */
    CHECK(!a.present);
    a.v = 51;
    orig_call(&e, go_load_or_store, &a, 13, CHM_OK, 50); /* loaded: actual = 50; 51 not stored */
    CHECK(a.present && a.old == 50);

    e.what = "Go LoadAndDelete";
    orig_call(&e, go_load_and_delete, &a, 14, CHM_NOTFOUND, 0);
    CHECK(!a.present); /* loaded = false */
    orig_put(&e, 14, 70);
    orig_call(&e, go_load_and_delete, &a, 14, CHM_NOTFOUND, 0);
    CHECK(a.present && a.old == 70); /* value = 70, loaded */

    e.what = "a counter";
    for (uint64_t i = 1; i <= 1000 && tl_failures() == 0; i++)
        orig_call(&e, counter_fn, &a, 15, CHM_OK, i);

    e.what = "a refcount drop";
    orig_put(&e, 16, 3);
    orig_call(&e, refcount_drop, &a, 16, CHM_OK, 2);
    orig_call(&e, refcount_drop, &a, 16, CHM_OK, 1);
    orig_call(&e, refcount_drop, &a, 16, CHM_NOTFOUND, 0); /* the last reference */
    orig_call(&e, refcount_drop, &a, 16, CHM_NOTFOUND, 0);

    tl_map_equals_model(e.m, &e.model);
    vf_check_now(b, &e.vf, &log);
    vf_free_and_check(e.m, &e.model, &e.vf, &log);
out:
    tl_model_fini(&e.model);
    vf_fini(&e.vf);
    tl_freelog_fini(&log);
}

/* A compute whose function mallocs its value and keeps a pointer (a cache of objects): every
 * value either is in the map or reached value_free (box_free); none leaks (LeakSanitizer), none
 * is freed twice (ASan), none is freed while the map holds it. */
static chm_compute_action box_update(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                     void *arg)
{
    atomic_long *live = arg;
    if (present && (key % 3) == 0)
        return CHM_COMPUTE_DELETE;
    if (present && (key % 3) == 1) {
        /* the old box must still be readable: it leaves after fn returns */
        CHECK_EQ(*(const uint64_t *)(uintptr_t)old, key);
        return CHM_COMPUTE_KEEP;
    }
    *value = box_new(live, key);
    return CHM_COMPUTE_SET;
}

static void test_compute_boxes(const chm_backend *b)
{
    atomic_long live = 0;
    chm *m = new_with_value_free(b, NULL, box_free, &live);
    if (!CHECK(m != NULL))
        return;
    for (int round = 0; round < 4; round++) {
        for (uint64_t k = 0; k < 300; k++) {
            uint64_t r = 0;
            int rc = chm_compute(m, k, box_update, &live, &r);
            if (rc == CHM_OK)
                CHECK_EQ(*(const uint64_t *)(uintptr_t)r, k);
            else
                CHECK_RC(rc, CHM_NOTFOUND);
        }
    }
    size_t n = chm_size(m);
    chm__smr_barrier(); /* deferred frees done: the boxes alive are the map's */
    CHECK_EQ(atomic_load(&live), (long)n);
    chm_free(m);
    CHECK_EQ(atomic_load(&live), 0);
}

/* ---- chm_remove_if ------------------------------------------------------------------------- */

static void test_remove_if(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    struct vf_expect vf;
    vf_init(&vf);
    tl_model model;
    tl_model_init(&model);
    chm *m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    CHECK_RC(chm_remove_if(NULL, 1, 1), CHM_EINVAL);
    static const uint64_t keys[] = {1, 0, UINT64_MAX, 42};
    static const uint64_t vals[] = {10, 0, UINT64_MAX, 42};
    for (size_t i = 0; i < 4; i++) {
        uint64_t k = keys[i], v = vals[i], got = 0;
        CHECK_RC(chm_remove_if(m, k, v), CHM_NOTFOUND); /* absent */
        CHECK_RC(chm_put(m, k, v, NULL), CHM_OK);
        tl_model_put(&model, k, v, NULL);
        CHECK_RC(chm_remove_if(m, k, v + 1), CHM_EXISTS); /* another value: nothing changes */
        CHECK_RC(chm_remove_if(m, k, ~v), CHM_EXISTS);
        if (CHECK_RC(chm_get(m, k, &got), CHM_OK))
            CHECK_EQ(got, v);
        vf_check_now(b, &vf, &log);
        CHECK_RC(chm_remove_if(m, k, v), CHM_OK); /* removed: v leaves, once */
        vf_left(&vf, v);
        tl_model_remove(&model, k, NULL);
        CHECK_RC(chm_get(m, k, NULL), CHM_NOTFOUND);
        CHECK_RC(chm_remove_if(m, k, v), CHM_NOTFOUND);
        vf_check_now(b, &vf, &log);
        CHECK_EQ(chm_size(m), tl_model_size(&model));
    }
    /* many keys, every other one removed by value, in a grown table */
    for (uint64_t k = 100; k < 2100; k++) {
        CHECK_RC(chm_put(m, k, k * 3, NULL), CHM_OK);
        tl_model_put(&model, k, k * 3, NULL);
    }
    for (uint64_t k = 100; k < 2100; k += 2) {
        CHECK_RC(chm_remove_if(m, k, k * 3 + 1), CHM_EXISTS);
        if (CHECK_RC(chm_remove_if(m, k, k * 3), CHM_OK)) {
            vf_left(&vf, k * 3);
            tl_model_remove(&model, k, NULL);
        }
    }
    tl_map_equals_model(m, &model);
    vf_check_now(b, &vf, &log);
    vf_free_and_check(m, &model, &vf, &log);
out:
    tl_model_fini(&model);
    vf_fini(&vf);
    tl_freelog_fini(&log);
}

/* ---- chm_clear ----------------------------------------------------------------------------- */

/* String keys whose stored copies are counted: every copy made by retain must reach release
 * once (chm_clear releases the keys it removes). */
static atomic_long skey_retained, skey_released;

static uint64_t skey_hash(uint64_t key, uint64_t seed)
{
    const char *s = (const char *)(uintptr_t)key;
    return chm_hash_bytes(s, strlen(s), seed);
}
static bool skey_equal(uint64_t a, uint64_t b)
{
    return strcmp((const char *)(uintptr_t)a, (const char *)(uintptr_t)b) == 0;
}
static bool skey_retain(uint64_t key, uint64_t *stored)
{
    char *copy = strdup((const char *)(uintptr_t)key);
    if (copy == NULL)
        return false;
    atomic_fetch_add(&skey_retained, 1);
    *stored = (uint64_t)(uintptr_t)copy;
    return true;
}
static void skey_release(uint64_t key)
{
    atomic_fetch_add(&skey_released, 1);
    free((void *)(uintptr_t)key);
}
static const chm_keyops keys_counted_string = {
    .hash = skey_hash, .equal = skey_equal, .retain = skey_retain, .release = skey_release};

static void test_clear(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    struct vf_expect vf;
    vf_init(&vf);
    tl_model model;
    tl_model_init(&model);
    chm *m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    CHECK_RC(chm_clear(NULL), CHM_EINVAL);
    /* an empty map */
    CHECK_RC(chm_clear(m), CHM_OK);
    CHECK_EQ(chm_size(m), 0);
    CHECK_EQ(tl_freelog_calls(&log), 0);
    for (int round = 0; round < 3 && tl_failures() == 0; round++) {
        uint64_t n = round == 1 ? 5000 : 700;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t k = (i + 1 + (uint64_t)round * 100000) * 0x9e3779b97f4a7c15ULL;
            uint64_t v = tl_mix(k + (uint64_t)round);
            CHECK_RC(chm_put(m, k, v, NULL), CHM_OK);
            tl_model_put(&model, k, v, NULL);
        }
        CHECK_RC(chm_put(m, 0, 0, NULL), CHM_OK); /* key 0, value 0 */
        tl_model_put(&model, 0, 0, NULL);
        tl_map_equals_model(m, &model);
        chm_stats before;
        CHECK_RC(chm_stats_get(m, &before), CHM_OK);
        CHECK_RC(chm_clear(m), CHM_OK);
        size_t pos = 0;
        uint64_t k, v;
        while (tl_model_slot(&model, &pos, &k, &v))
            vf_left(&vf, v);
        /* every key is gone: size, gets, iteration */
        CHECK_EQ(chm_size(m), 0);
        pos = 0;
        while (tl_model_slot(&model, &pos, &k, &v))
            if (!CHECK_RC(chm_get(m, k, NULL), CHM_NOTFOUND))
                break;
        tl_model_clear(&model);
        tl_map_equals_model(m, &model);
        vf_check_now(b, &vf, &log);
        chm__smr_barrier(); /* deferred frees done: every value freed once by now */
        CHECK_EQ(tl_freelog_calls(&log), vf.total);
        chm_stats after;
        CHECK_RC(chm_stats_get(m, &after), CHM_OK);
        CHECK_EQ(after.entries, 0);
        /* a second clear finds nothing */
        CHECK_RC(chm_clear(m), CHM_OK);
        chm__smr_barrier();
        CHECK_EQ(tl_freelog_calls(&log), vf.total);
    }
    /* usable afterwards, by every operation */
    CHECK_RC(chm_put(m, 5, 50, NULL), CHM_OK);
    CHECK_RC(chm_put_if_absent(m, 6, 60, NULL), CHM_OK);
    CHECK_RC(chm_replace(m, 5, 50, 51), CHM_OK);
    vf_left(&vf, 50);
    CHECK_RC(chm_remove_if(m, 6, 60), CHM_OK);
    vf_left(&vf, 60);
    tl_model_put(&model, 5, 51, NULL);
    tl_map_equals_model(m, &model);
    vf_free_and_check(m, &model, &vf, &log);
out:
    tl_model_fini(&model);
    vf_fini(&vf);
    tl_freelog_fini(&log);
}

/* chm_clear releases stored keys: counted copies exactly, and chm_keys_string's copies show in
 * chm_stats.bytes. */
static void test_clear_string_keys(const chm_backend *b)
{
    enum { N = 2000 };
    atomic_store(&skey_retained, 0);
    atomic_store(&skey_released, 0);
    tl_freelog log;
    tl_freelog_init(&log, false);
    chm *m = new_with_value_free(b, &keys_counted_string, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    char buf[64];
    uint64_t kb = (uint64_t)(uintptr_t)buf;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            snprintf(buf, sizeof buf, "counted-key-%d-%d", round, i);
            CHECK_RC(chm_put(m, kb, (uint64_t)i, NULL), CHM_OK);
            scribble(buf, sizeof buf);
        }
        CHECK_EQ(atomic_load(&skey_retained), (long)N * (round + 1));
        CHECK_RC(chm_clear(m), CHM_OK);
        CHECK_EQ(chm_size(m), 0);
        snprintf(buf, sizeof buf, "counted-key-%d-%d", round, 7);
        CHECK_RC(chm_get(m, kb, NULL), CHM_NOTFOUND);
        chm__smr_barrier();
        if (!CHECK_EQ(atomic_load(&skey_released), atomic_load(&skey_retained)))
            FAIL("round %d: chm_clear left %ld of %ld stored keys unreleased", round,
                 atomic_load(&skey_retained) - atomic_load(&skey_released),
                 atomic_load(&skey_retained));
        CHECK_EQ(tl_freelog_calls(&log), (unsigned long)N * (round + 1));
    }
    snprintf(buf, sizeof buf, "after");
    CHECK_RC(chm_put(m, kb, 1, NULL), CHM_OK);
    chm_free(m);
    CHECK_EQ(atomic_load(&skey_released), atomic_load(&skey_retained)); /* none twice */

    /* chm_keys_string: the copies are counted in bytes; clear gives them back */
    m = chm_new(b, &(chm_options){.keys = &chm_keys_string});
    if (!CHECK(m != NULL))
        goto out;
    chm_stats empty, full, cleared;
    CHECK_RC(chm_stats_get(m, &empty), CHM_OK);
    char longkey[200];
    for (int i = 0; i < N; i++) {
        snprintf(longkey, sizeof longkey, "%0150d", i); /* 151 bytes with its NUL */
        CHECK_RC(chm_put(m, (uint64_t)(uintptr_t)longkey, (uint64_t)i, NULL), CHM_OK);
    }
    CHECK_RC(chm_stats_get(m, &full), CHM_OK);
    CHECK(full.bytes >= empty.bytes + (size_t)N * 151);
    CHECK_RC(chm_clear(m), CHM_OK);
    chm__smr_barrier();
    CHECK_RC(chm_stats_get(m, &cleared), CHM_OK);
    if (!CHECK(cleared.bytes + (size_t)N * 151 <= full.bytes))
        FAIL("chm_keys_string: %zu bytes with %d keys, %zu after chm_clear (the key copies are "
             "%d bytes)",
             full.bytes, N, cleared.bytes, N * 151);
    chm_free(m);
out:
    tl_freelog_fini(&log);
}

/* chm_clear is a structural modification for a fail-fast iterator when the map was not empty,
 * and not when it was; weakly consistent iterators go on. */
static void test_clear_iterator(const chm_backend *b)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    chm_iter it;
    uint64_t k, v;
    /* an empty map: clear changes nothing */
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    CHECK_RC(chm_clear(m), CHM_OK);
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_END);
    chm_iter_fini(&it);
    /* a map with entries */
    for (uint64_t i = 0; i < 100; i++)
        CHECK_RC(chm_put(m, i, i + 1, NULL), CHM_OK);
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    int rc = chm_iter_next(&it, &k, &v);
    if (CHECK_RC(rc, CHM_OK))
        CHECK_EQ(v, k + 1);
    CHECK_RC(chm_clear(m), CHM_OK);
    if (tl_fail_fast(b)) {
        CHECK_RC(chm_iter_next(&it, &k, &v), CHM_ECONCURRENT);
        CHECK_RC(chm_iter_next(&it, &k, &v), CHM_ECONCURRENT); /* sticky */
    } else {
        /* weakly consistent: whatever it still returns is a (key, value) it held, once */
        tl_model seen;
        tl_model_init(&seen);
        tl_model_put(&seen, k, v, NULL);
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            if (!CHECK(k < 100 && v == k + 1 && tl_model_put(&seen, k, v, NULL)))
                break;
        }
        CHECK_RC(rc, CHM_END);
        tl_model_fini(&seen);
    }
    chm_iter_fini(&it);
    CHECK_EQ(chm_size(m), 0);
    /* an iterator opened after the clear sees an empty map */
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_END);
    chm_iter_fini(&it);
    chm_free(m);
}

/* ---- chm_visit ----------------------------------------------------------------------------- */

struct vis {
    chm *m, *other;
    unsigned calls;
    uint64_t key, value;
    /* nested calls from inside fn */
    bool nest;
    int get_rc, visit_rc, other_rc, inner_calls;
    uint64_t get_v;
    size_t size;
    int write_rc[9];
};

static void vis_inner(uint64_t key, uint64_t value, void *arg)
{
    struct vis *s = arg;
    (void)key;
    (void)value;
    s->inner_calls++;
}

static uint64_t vis_const(uint64_t key, void *arg)
{
    (void)arg;
    return key;
}

static void vis_fn(uint64_t key, uint64_t value, void *arg)
{
    struct vis *s = arg;
    s->calls++;
    s->key = key;
    s->value = value;
    if (!s->nest)
        return;
    /* reads on its own map work (they do not wait for what fn's caller holds) */
    s->get_v = POISON_OUT;
    s->get_rc = chm_get(s->m, key, &s->get_v);
    s->visit_rc = chm_visit(s->m, key, vis_inner, s);
    s->size = chm_size(s->m);
    s->other_rc = chm_get(s->other, 1, NULL);
    /* every write on its own map is refused */
    struct upd u = {.action = CHM_COMPUTE_SET, .write = true, .set_to = 99};
    s->write_rc[0] = chm_put(s->m, key, 1, NULL);
    s->write_rc[1] = chm_put(s->m, 777777, 1, NULL);
    s->write_rc[2] = chm_put_if_absent(s->m, 777777, 1, NULL);
    s->write_rc[3] = chm_remove(s->m, key, NULL);
    s->write_rc[4] = chm_replace(s->m, key, value, value + 1);
    s->write_rc[5] = chm_compute_if_absent(s->m, 777777, vis_const, NULL, NULL);
    s->write_rc[6] = chm_compute(s->m, key, upd_fn, &u, NULL);
    s->write_rc[7] = chm_remove_if(s->m, key, value);
    s->write_rc[8] = chm_clear(s->m);
    CHECK_EQ(u.calls, 0);
}

static void test_visit(const chm_backend *b)
{
    chm *m = chm_new(b, NULL), *other = chm_new(b, NULL);
    if (!CHECK(m != NULL && other != NULL))
        goto out;
    struct vis s;
    memset(&s, 0, sizeof s);
    s.m = m;
    s.other = other;
    CHECK_RC(chm_visit(NULL, 1, vis_fn, &s), CHM_EINVAL);
    CHECK_RC(chm_visit(m, 1, NULL, &s), CHM_EINVAL);
    CHECK_RC(chm_visit(m, 1, vis_fn, &s), CHM_NOTFOUND); /* absent: fn does not run */
    CHECK_EQ(s.calls, 0);
    CHECK_RC(chm_put(m, 1, 11, NULL), CHM_OK);
    CHECK_RC(chm_visit(m, 1, NULL, &s), CHM_EINVAL);
    CHECK_EQ(s.calls, 0);
    static const uint64_t keys[] = {1, 0, UINT64_MAX, 1234567};
    static const uint64_t vals[] = {11, 0, UINT64_MAX, 7};
    for (size_t i = 0; i < 4; i++) {
        chm_put(m, keys[i], vals[i], NULL);
        s.calls = 0;
        if (CHECK_RC(chm_visit(m, keys[i], vis_fn, &s), CHM_OK)) {
            CHECK_EQ(s.calls, 1);
            CHECK_EQ(s.key, keys[i]);
            CHECK_EQ(s.value, vals[i]);
        }
    }
    /* the value seen follows overwrites; a removed key is not visited */
    CHECK_RC(chm_put(m, 1, 12, NULL), CHM_EXISTS);
    s.calls = 0;
    CHECK_RC(chm_visit(m, 1, vis_fn, &s), CHM_OK);
    CHECK_EQ(s.value, 12);
    CHECK_RC(chm_remove(m, 1, NULL), CHM_OK);
    CHECK_RC(chm_visit(m, 1, vis_fn, &s), CHM_NOTFOUND);
    CHECK_EQ(s.calls, 1);
    /* nested calls from the visit function */
    CHECK_RC(chm_put(m, 5, 55, NULL), CHM_OK);
    CHECK_RC(chm_put(other, 1, 2, NULL), CHM_OK);
    size_t size = chm_size(m);
    s.nest = true;
    s.calls = 0;
    if (CHECK_RC(chm_visit(m, 5, vis_fn, &s), CHM_OK)) {
        CHECK_EQ(s.calls, 1);
        if (CHECK_RC(s.get_rc, CHM_OK))
            CHECK_EQ(s.get_v, 55);
        CHECK_RC(s.visit_rc, CHM_OK);
        CHECK_EQ(s.inner_calls, 1);
        CHECK_EQ(s.size, size);
        CHECK_RC(s.other_rc, CHM_OK);
        for (int i = 0; i < 9; i++)
            if (!CHECK_RC(s.write_rc[i], CHM_EDEADLK))
                FAIL("nested write %d from a visit function on its own map", i);
    }
    /* nothing changed, and writes work again once fn returned */
    uint64_t v = 0;
    CHECK_EQ(chm_size(m), size);
    if (CHECK_RC(chm_get(m, 5, &v), CHM_OK))
        CHECK_EQ(v, 55);
    CHECK_RC(chm_get(m, 777777, NULL), CHM_NOTFOUND);
    CHECK_RC(chm_put(m, 5, 56, NULL), CHM_EXISTS);
    CHECK_RC(chm_put(m, 777777, 1, NULL), CHM_OK);
    /* string keys: fn gets the key as the caller passed it, not the map's stored copy */
    chm_free(m);
    m = chm_new(b, &(chm_options){.keys = &chm_keys_string});
    if (!CHECK(m != NULL))
        goto out;
    char put_key[32], probe[32];
    snprintf(put_key, sizeof put_key, "visited-key");
    CHECK_RC(chm_put(m, (uint64_t)(uintptr_t)put_key, 42, NULL), CHM_OK);
    scribble(put_key, sizeof put_key);
    snprintf(probe, sizeof probe, "visited-key");
    memset(&s, 0, sizeof s);
    if (CHECK_RC(chm_visit(m, (uint64_t)(uintptr_t)probe, vis_fn, &s), CHM_OK)) {
        CHECK_EQ(s.key, (uint64_t)(uintptr_t)probe);
        CHECK_EQ(s.value, 42);
    }
out:
    chm_free(m);
    chm_free(other);
}

/* A visit function dereferences a pointer value (a malloc'd box; value_free frees it). */
static void vis_box(uint64_t key, uint64_t value, void *arg)
{
    uint64_t *sum = arg;
    const uint64_t *box = (const uint64_t *)(uintptr_t)value;
    CHECK_EQ(*box, 0xb0c5 + key);
    *sum += *box;
}

static void test_visit_pointer(const chm_backend *b)
{
    atomic_long live = 0;
    chm *m = new_with_value_free(b, NULL, box_free, &live);
    if (!CHECK(m != NULL))
        return;
    uint64_t sum = 0, want = 0;
    for (uint64_t k = 0; k < 200; k++)
        CHECK_RC(chm_put(m, k, box_new(&live, 0xb0c5 + k), NULL), CHM_OK);
    for (int round = 0; round < 3; round++)
        for (uint64_t k = 0; k < 200; k++) {
            if (round == 1 && k % 2 == 0) /* a new box for the same key: the old one leaves */
                CHECK_RC(chm_put(m, k, box_new(&live, 0xb0c5 + k), NULL), CHM_EXISTS);
            CHECK_RC(chm_visit(m, k, vis_box, &sum), CHM_OK);
            want += 0xb0c5 + k;
        }
    CHECK_EQ(sum, want);
    chm_free(m);
    CHECK_EQ(atomic_load(&live), 0);
}

/* A visit function's reads of its own map while another thread's write waits for the visit:
 * on rwlock the writer, queued behind the visit's read lock, holds back every new reader, so a
 * nested read must neither wait for it (a deadlock: the writer waits for this thread) nor let
 * it in early. The function starts the writer, waits until it returned, sleeps, or has spun for
 * VISW_SPIN_S (ck's writers only spin), then reads. Once per lock kind. */
#define VISW_SPIN_S 0.4
struct visw {
    chm *m;
    tl_thread th;
    atomic_int tid, calling, done;
    int put_rc;
    int get_rc[3];
    uint64_t get_v[3];
    size_t size;
    bool done_during_fn;
};

static void *visw_writer(void *arg)
{
    struct visw *w = arg;
    atomic_store(&w->tid, (int)syscall(SYS_gettid));
    atomic_store(&w->calling, 1);
    w->put_rc = chm_put(w->m, 2, 22, NULL);
    atomic_store(&w->done, 1);
    return NULL;
}

static void visw_fn(uint64_t key, uint64_t value, void *arg)
{
    struct visw *w = arg;
    (void)key;
    (void)value;
    tl_spawn(&w->th, visw_writer, w);
    while (atomic_load(&w->calling) == 0 || atomic_load(&w->tid) == 0)
        sched_yield();
    double t0 = tl_now();
    while (!atomic_load(&w->done) && !thread_sleeps(atomic_load(&w->tid)) &&
           tl_now() < t0 + VISW_SPIN_S)
        usleep(500);
    w->get_v[0] = w->get_v[1] = POISON_OUT;
    w->get_rc[0] = chm_get(w->m, 1, &w->get_v[0]); /* the key being visited */
    w->get_rc[1] = chm_get(w->m, 3, &w->get_v[1]);
    w->get_rc[2] = chm_get(w->m, 999, &w->get_v[2]);
    w->size = chm_size(w->m);
    w->done_during_fn = atomic_load(&w->done) != 0;
}

static void test_visit_writer_waiting(const chm_backend *b)
{
    for (int i = 0; i < tl_lock_kinds(b); i++) {
        chm *m = chm_new(b, &(chm_options){.rwlock = tl_lock_kind(i)});
        if (!CHECK(m != NULL))
            return;
        CHECK_RC(chm_put(m, 1, 10, NULL), CHM_OK);
        CHECK_RC(chm_put(m, 3, 30, NULL), CHM_OK);
        struct visw w;
        memset(&w, 0, sizeof w);
        w.m = m;
        CHECK_RC(chm_visit(m, 1, visw_fn, &w), CHM_OK);
        tl_join(&w.th);
        if (CHECK_RC(w.get_rc[0], CHM_OK))
            CHECK_EQ(w.get_v[0], 10);
        if (CHECK_RC(w.get_rc[1], CHM_OK))
            CHECK_EQ(w.get_v[1], 30);
        CHECK_RC(w.get_rc[2], CHM_NOTFOUND);
        CHECK(w.size == 2 || w.size == 3); /* 3: the write did not wait for the visit */
        if (has_cap(b, CHM_CAP_RWLOCK_KINDS) && !CHECK(!w.done_during_fn))
            FAIL("%s%s: a write landed while a visit held the read lock", chm_backend_name(b),
                 tl_lock_kind_label(i));
        CHECK_RC(w.put_rc, CHM_OK);
        uint64_t v = 0;
        if (CHECK_RC(chm_get(m, 2, &v), CHM_OK))
            CHECK_EQ(v, 22);
        chm_free(m);
    }
}

/* ---- nested calls from a chm_compute function, one map -------------------------------------
 * Reads and chm_size work on every backend. A write to the same map: CHM_EDEADLK, unless the
 * backend's compute holds the whole map (CHM_CAP_COMPUTE_EXCLUSIVE): then it runs, and if it
 * changed the map structurally the compute applies nothing and returns CHM_ECONCURRENT, fn's
 * SET value having gone to value_free (never lost). */

enum {
    NW_NONE,
    NW_NEW_KEY,
    NW_OVERWRITE,
    NW_REMOVE,
    NW_PIA,
    NW_REPLACE,
    NW_CIA,
    NW_COMPUTE,
    NW_REMOVE_IF,
    NW_CLEAR,
    NW_SAME_KEY, /* a put of the key being computed */
    NW_COUNT
};

static const char *const nw_names[NW_COUNT] = {"none",
                                               "put (new key)",
                                               "put (overwrite)",
                                               "remove",
                                               "put_if_absent (new key)",
                                               "replace",
                                               "compute_if_absent (new key)",
                                               "compute (SET, new key)",
                                               "remove_if",
                                               "clear",
                                               "put of the key being computed"};

struct ncomp {
    chm *m;
    int nested;   /* NW_* */
    int action;   /* fn's decision */
    uint64_t set; /* fn's value for SET */
    unsigned calls;
    int get_rc, nested_rc, visit_rc;
    uint64_t get_v, visit_v;
    size_t size;
};

#define NC_KEY 50   /* the key being computed */
#define NC_OTHER 51 /* present, another key */
#define NC_NEW 52   /* absent */

static void ncomp_visit(uint64_t key, uint64_t value, void *arg)
{
    (void)key;
    *(uint64_t *)arg = value;
}

static chm_compute_action ncomp_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                   void *arg)
{
    struct ncomp *c = arg;
    (void)key;
    (void)present;
    (void)old;
    c->calls++;
    c->get_v = POISON_OUT;
    c->get_rc = chm_get(c->m, NC_OTHER, &c->get_v);
    c->size = chm_size(c->m);
    c->visit_v = 510;
    c->visit_rc = CHM_OK;
    if (c->nested != NW_NONE) /* "none": a nested chm_get and chm_size only */
        c->visit_rc = chm_visit(c->m, NC_OTHER, ncomp_visit, &c->visit_v);
    struct upd u = {.action = CHM_COMPUTE_SET, .write = true, .set_to = 0x5e7};
    switch (c->nested) {
    case NW_NEW_KEY: c->nested_rc = chm_put(c->m, NC_NEW, 1, NULL); break;
    case NW_OVERWRITE: c->nested_rc = chm_put(c->m, NC_OTHER, 0x0be, NULL); break;
    case NW_REMOVE: c->nested_rc = chm_remove(c->m, NC_OTHER, NULL); break;
    case NW_PIA: c->nested_rc = chm_put_if_absent(c->m, NC_NEW, 2, NULL); break;
    case NW_REPLACE: c->nested_rc = chm_replace(c->m, NC_OTHER, 510, 0x0be); break;
    case NW_CIA: c->nested_rc = chm_compute_if_absent(c->m, NC_NEW, vis_const, NULL, NULL); break;
    case NW_COMPUTE: c->nested_rc = chm_compute(c->m, NC_NEW, upd_fn, &u, NULL); break;
    case NW_REMOVE_IF: c->nested_rc = chm_remove_if(c->m, NC_OTHER, 510); break;
    case NW_CLEAR: c->nested_rc = chm_clear(c->m); break;
    case NW_SAME_KEY: c->nested_rc = chm_put(c->m, NC_KEY, 0xbeef, NULL); break;
    default: break;
    }
    *value = c->set;
    return (chm_compute_action)c->action;
}

/* What the nested write returns when it runs, and whether it fails the compute: it is
 * structural, or it changed the value of the key being computed (fn decided on a value that
 * has left the map). */
static int nw_ran_rc(int nested, bool key_present, bool *fails)
{
    *fails = nested != NW_OVERWRITE && nested != NW_REPLACE;
    switch (nested) {
    case NW_SAME_KEY: return key_present ? CHM_EXISTS : CHM_OK;
    case NW_NEW_KEY:
    case NW_PIA:
    case NW_CIA:
    case NW_COMPUTE:
    case NW_REMOVE:
    case NW_REMOVE_IF:
    case NW_REPLACE:
    case NW_CLEAR: return CHM_OK;
    default: return CHM_EXISTS; /* overwrite */
    }
}

/* One nested case: fn (deciding @action; with @same, a SET stores the value fn saw the key
 * hold) makes the nested call @nested. The map and every value_free are checked exactly. */
static void ncomp_one(const chm_backend *b, int nested, int action, bool key_present, bool same)
{
    tl_freelog log;
    tl_freelog_init(&log, true);
    struct vf_expect vf;
    vf_init(&vf);
    tl_model model;
    tl_model_init(&model);
    struct ncomp c;
    memset(&c, 0, sizeof c);
    c.m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(c.m != NULL))
        goto out;
    c.nested = nested;
    c.action = action;
    c.set = same && key_present ? 500 : 0xf00d;
    CHECK_RC(chm_put(c.m, NC_OTHER, 510, NULL), CHM_OK);
    tl_model_put(&model, NC_OTHER, 510, NULL);
    if (key_present) {
        CHECK_RC(chm_put(c.m, NC_KEY, 500, NULL), CHM_OK);
        tl_model_put(&model, NC_KEY, 500, NULL);
    }
    size_t size0 = chm_size(c.m);
    uint64_t r = POISON_OUT;
    int rc = chm_compute(c.m, NC_KEY, ncomp_fn, &c, &r);
    long before = tl_failures();
    CHECK_EQ(c.calls, 1);
    if (CHECK_RC(c.get_rc, CHM_OK)) /* a nested read works everywhere */
        CHECK_EQ(c.get_v, 510);
    CHECK_EQ(c.size, size0);
    bool exclusive = tl_compute_exclusive(b);
    bool structural = false;
    bool ran = exclusive && nested != NW_NONE;
    if (nested != NW_NONE)
        CHECK_RC(c.nested_rc,
                 exclusive ? nw_ran_rc(nested, key_present, &structural) : CHM_EDEADLK);
    if (CHECK_RC(c.visit_rc, CHM_OK)) /* so does a nested visit */
        CHECK_EQ(c.visit_v, 510);
    /* the map after the call: the nested write (if it ran), then fn's decision (unless the
     * nested write was structural) */
    if (ran) {
        switch (nested) {
        case NW_NEW_KEY: tl_model_put(&model, NC_NEW, 1, NULL); break;
        case NW_PIA: tl_model_put(&model, NC_NEW, 2, NULL); break;
        case NW_CIA: tl_model_put(&model, NC_NEW, NC_NEW, NULL); break;
        case NW_COMPUTE: tl_model_put(&model, NC_NEW, 0x5e7, NULL); break;
        case NW_OVERWRITE:
        case NW_REPLACE:
            vf_left(&vf, 510);
            tl_model_put(&model, NC_OTHER, 0x0be, NULL);
            break;
        case NW_REMOVE:
        case NW_REMOVE_IF:
            vf_left(&vf, 510);
            tl_model_remove(&model, NC_OTHER, NULL);
            break;
        case NW_SAME_KEY:
            if (key_present)
                vf_left(&vf, 500);
            tl_model_put(&model, NC_KEY, 0xbeef, NULL);
            break;
        case NW_CLEAR: {
            size_t pos = 0;
            uint64_t k, v;
            while (tl_model_slot(&model, &pos, &k, &v))
                vf_left(&vf, v);
            tl_model_clear(&model);
            break;
        }
        default: break;
        }
    }
    uint64_t cur = 0;
    bool present = tl_model_get(&model, NC_KEY, &cur);
    if (ran && structural) {
        /* the compute applies nothing, whatever fn decided; fn's SET value went to value_free
         * within the call (never lost) -- unless it is the value fn saw the key hold, which is
         * the map's (a SET of it is a KEEP): freeing that one would free a value still in the
         * map (or, after a nested clear or put of the key, free it twice) */
        CHECK_RC(rc, CHM_ECONCURRENT);
        CHECK_EQ(r, POISON_OUT);
        if (action == CHM_COMPUTE_SET && !(same && key_present))
            vf_left(&vf, 0xf00d);
        chm__smr_barrier();
        CHECK_EQ(freed_count(&log, 0xf00d), action == CHM_COMPUTE_SET && !same ? 1 : 0);
    } else if (action == CHM_COMPUTE_SET) {
        if (CHECK_RC(rc, CHM_OK))
            CHECK_EQ(r, c.set);
        if (present && cur != c.set)
            vf_left(&vf, cur);
        tl_model_put(&model, NC_KEY, c.set, NULL);
    } else if (action == CHM_COMPUTE_DELETE) {
        CHECK_RC(rc, CHM_NOTFOUND);
        CHECK_EQ(r, POISON_OUT);
        if (present) {
            vf_left(&vf, cur);
            tl_model_remove(&model, NC_KEY, NULL);
        }
    } else {
        if (CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && present)
            CHECK_EQ(r, cur);
    }
    tl_map_equals_model(c.m, &model);
    /* a fresh compute on the map works: the nesting state was unwound */
    struct upd u = {.action = CHM_COMPUTE_SET, .write = true, .set_to = 0xaf7e};
    if (CHECK_RC(chm_compute(c.m, NC_NEW + 1, upd_fn, &u, NULL), CHM_OK))
        tl_model_put(&model, NC_NEW + 1, 0xaf7e, NULL);
    vf_check_now(b, &vf, &log);
    vf_free_and_check(c.m, &model, &vf, &log);
    if (tl_failures() != before)
        FAIL("nested %s from a compute deciding %d%s on a key %s", nw_names[nested], action,
             same ? " (the value it saw)" : "", key_present ? "present" : "absent");
out:
    tl_model_fini(&model);
    vf_fini(&vf);
    tl_freelog_fini(&log);
}

static void test_compute_nested(const chm_backend *b)
{
    for (int nested = 0; nested < NW_COUNT; nested++)
        for (int action = CHM_COMPUTE_KEEP; action <= CHM_COMPUTE_DELETE; action++)
            for (int present = 0; present < 2; present++)
                for (int same = 0; same < 2; same++) {
                    if (same && (action != CHM_COMPUTE_SET || !present))
                        continue;
                    ncomp_one(b, nested, action, present, same);
                    if (tl_failures() != 0)
                        return;
                }
}

/* chm_compute nests CHM_COMPUTE_NESTING_MAX deep (each in its own map, mixed with
 * compute_if_absent); one more returns CHM_ENOMEM before its function runs. */
struct unest {
    chm *maps[CHM_COMPUTE_NESTING_MAX + 1];
    int rc[CHM_COMPUTE_NESTING_MAX + 1];
    int depth;
    unsigned calls;
};

static chm_compute_action unest_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                   void *arg)
{
    struct unest *n = arg;
    (void)present;
    (void)old;
    n->calls++;
    int d = ++n->depth;
    if (d <= CHM_COMPUTE_NESTING_MAX)
        n->rc[d] = chm_compute(n->maps[d], key, unest_fn, n, NULL);
    n->depth--;
    *value = key + (uint64_t)d;
    return CHM_COMPUTE_SET;
}

static void test_compute_nesting_bound(const chm_backend *b)
{
    struct unest n;
    memset(&n, 0, sizeof n);
    for (int i = 0; i <= CHM_COMPUTE_NESTING_MAX; i++)
        if (!CHECK((n.maps[i] = chm_new(b, NULL)) != NULL))
            goto out;
    n.rc[0] = chm_compute(n.maps[0], 7, unest_fn, &n, NULL);
    CHECK_EQ(n.calls, CHM_COMPUTE_NESTING_MAX);
    for (int i = 0; i < CHM_COMPUTE_NESTING_MAX; i++) {
        uint64_t v = 0;
        CHECK_RC(n.rc[i], CHM_OK);
        if (CHECK_RC(chm_get(n.maps[i], 7, &v), CHM_OK))
            CHECK_EQ(v, 7 + (uint64_t)i + 1);
    }
    CHECK_RC(n.rc[CHM_COMPUTE_NESTING_MAX], CHM_ENOMEM);
    CHECK_EQ(chm_size(n.maps[CHM_COMPUTE_NESTING_MAX]), 0);
out:
    for (int i = 0; i <= CHM_COMPUTE_NESTING_MAX; i++)
        chm_free(n.maps[i]);
}

/* ---- compute(A) -> fn -> compute(B) -> fn -> a call on A, with chm_compute ------------------
 * As xmap for compute_if_absent: the inner function runs in B, but this thread still holds A's
 * compute. Reads of A work; writes follow A's rule (CHM_EDEADLK, or run on
 * CHM_CAP_COMPUTE_EXCLUSIVE backends, and then A's compute fails with CHM_ECONCURRENT and its
 * SET value goes to value_free). In a child process, once per rwlock kind. */

struct ucross {
    chm *a, *b;
    bool exclusive;
    tl_model model; /* A as it must be */
    unsigned outer_calls, inner_calls;
    int b_rc;
    uint64_t b_value;
    tl_freelog log;
};

static chm_compute_action ucross_inner(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                       void *arg)
{
    struct ucross *x = arg;
    x->inner_calls++;
    CHECK_EQ(key, XK_B);
    CHECK(!present);
    CHECK_EQ(old, 0);
    uint64_t v = 0;
    if (CHECK_RC(chm_get(x->a, XK_PRESENT, &v), CHM_OK))
        CHECK_EQ(v, 20);
    CHECK_EQ(chm_size(x->a), tl_model_size(&x->model));
    int want_ran;
#define UCROSS_WRITE(what, call, ran_rc, apply)                                                    \
    do {                                                                                           \
        want_ran = (ran_rc);                                                                       \
        if (CHECK_RC((call), x->exclusive ? want_ran : CHM_EDEADLK)) {                             \
            if (x->exclusive) {                                                                    \
                apply;                                                                             \
            }                                                                                      \
        } else {                                                                                   \
            FAIL("nested %s on A from inside compute(B) inside compute(A)", what);                 \
        }                                                                                          \
    } while (0)
    struct upd u = {.action = CHM_COMPUTE_SET, .write = true, .set_to = 0xc0};
    UCROSS_WRITE("put of the key being computed", chm_put(x->a, XK_COMPUTED, 10, NULL), CHM_OK,
                 tl_model_put(&x->model, XK_COMPUTED, 10, NULL));
    UCROSS_WRITE("put", chm_put(x->a, XK_PRESENT, 21, NULL), CHM_EXISTS,
                 tl_model_put(&x->model, XK_PRESENT, 21, NULL));
    UCROSS_WRITE("put_if_absent", chm_put_if_absent(x->a, XK_OTHER, 30, NULL), CHM_OK,
                 tl_model_put(&x->model, XK_OTHER, 30, NULL));
    UCROSS_WRITE("compute", chm_compute(x->a, XK_INNER, upd_fn, &u, NULL), CHM_OK,
                 tl_model_put(&x->model, XK_INNER, 0xc0, NULL));
    UCROSS_WRITE("remove_if", chm_remove_if(x->a, XK_OTHER, 30), CHM_OK,
                 tl_model_remove(&x->model, XK_OTHER, NULL));
    UCROSS_WRITE("remove", chm_remove(x->a, XK_PRESENT, NULL), CHM_OK,
                 tl_model_remove(&x->model, XK_PRESENT, NULL));
#undef UCROSS_WRITE
    CHECK_EQ(u.calls, x->exclusive ? 1 : 0);
    xmap_equals_model(x->a, &x->model);
    *value = XV_B;
    return CHM_COMPUTE_SET;
}

static chm_compute_action ucross_outer(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                       void *arg)
{
    struct ucross *x = arg;
    (void)present;
    (void)old;
    x->outer_calls++;
    CHECK_EQ(key, XK_COMPUTED);
    x->b_rc = chm_compute(x->b, XK_B, ucross_inner, x, &x->b_value);
    *value = XV_A;
    return CHM_COMPUTE_SET;
}

static void ucross_single(const chm_backend *b, chm_rwlock_kind kind)
{
    struct ucross x;
    memset(&x, 0, sizeof x);
    tl_freelog_init(&x.log, true);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.rwlock = kind;
    o.value_free = tl_freelog_cb;
    o.ctx = &x.log;
    x.a = chm_new(b, &o);
    x.b = chm_new(b, &o);
    x.exclusive = tl_compute_exclusive(b);
    tl_model_init(&x.model);
    if (!CHECK(x.a != NULL && x.b != NULL))
        goto out;
    CHECK_RC(chm_put(x.a, XK_PRESENT, 20, NULL), CHM_OK);
    tl_model_put(&x.model, XK_PRESENT, 20, NULL);
    uint64_t v = POISON_OUT;
    int rc = chm_compute(x.a, XK_COMPUTED, ucross_outer, &x, &v);
    CHECK_EQ(x.outer_calls, 1);
    CHECK_EQ(x.inner_calls, 1);
    if (CHECK_RC(x.b_rc, CHM_OK)) /* B's compute is not affected */
        CHECK_EQ(x.b_value, XV_B);
    if (x.exclusive) {
        CHECK_RC(rc, CHM_ECONCURRENT);
        CHECK_EQ(v, POISON_OUT);
        chm__smr_barrier();
        CHECK_EQ(freed_count(&x.log, XV_A), 1); /* fn's value was not lost */
    } else if (CHECK_RC(rc, CHM_OK)) {
        CHECK_EQ(v, XV_A);
        tl_model_put(&x.model, XK_COMPUTED, XV_A, NULL);
    }
    tl_map_equals_model(x.a, &x.model);
    if (CHECK_RC(chm_get(x.b, XK_B, &v), CHM_OK))
        CHECK_EQ(v, XV_B);
    CHECK_RC(chm_put(x.a, 99, 1, NULL), CHM_OK);
    CHECK_RC(chm_put(x.b, 99, 1, NULL), CHM_OK);
out:
    tl_model_fini(&x.model);
    chm_free(x.a);
    chm_free(x.b);
    tl_freelog_fini(&x.log);
}

/* ---- chm_stats_get ------------------------------------------------------------------------- */

static chm_stats stats_of(chm *m)
{
    chm_stats st;
    memset(&st, 0xa5, sizeof st);
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    return st;
}

/* What holds on every backend after inserts into an empty map: entries == chm_size; the table
 * grew (resizes > 0) and has a bucket per entry at least -- a slot per entry where buckets
 * counts slots (the Go-table backends), bins at load factor <= 1 on the chained ones (and
 * readmostly's dirty map, which holds every key while only inserts ran: no read promoted it);
 * bytes grew by 16 per entry at least (a key and a value); after a reclamation barrier nothing
 * is pending. Weaker where it must be: after removes and reads only the slot count bounds the
 * entries (a chained table may hold more entries than bins, and readmostly's dirty map may have
 * been promoted away: its buckets may be 0). */
static void test_stats(const chm_backend *b)
{
    enum { N = 100000 };
    chm_stats st;
    CHECK_RC(chm_stats_get(NULL, &st), CHM_EINVAL);
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    CHECK_RC(chm_stats_get(m, NULL), CHM_EINVAL);
    chm_stats s0 = stats_of(m);
    CHECK_EQ(s0.entries, 0);
    CHECK_EQ(s0.resizes, 0); /* chm_new completes no resize */
    CHECK_EQ(s0.pending, 0);
    CHECK(s0.bytes > 0); /* the map itself */
    for (uint64_t i = 0; i < N; i++) {
        if (!CHECK_RC(chm_put(m, i * 0x9e3779b97f4a7c15ULL, i, NULL), CHM_OK))
            break;
        if (i == 100 || i == 5000) {
            chm_stats s = stats_of(m);
            CHECK_EQ(s.entries, i + 1);
            CHECK_EQ(s.entries, chm_size(m));
            CHECK(s.buckets >= s.entries);
        }
    }
    chm_stats s1 = stats_of(m);
    CHECK_EQ(s1.entries, N);
    CHECK_EQ(s1.entries, chm_size(m));
    CHECK(s1.resizes > 0);
    if (!CHECK(s1.buckets >= s1.entries))
        FAIL("%zu buckets for %zu entries", s1.buckets, s1.entries);
    if (!CHECK(s1.bytes >= s0.bytes + (size_t)N * 16))
        FAIL("bytes %zu at 0 entries, %zu at %d", s0.bytes, s1.bytes, N);
    /* removes: pending objects appear only where frees are deferred */
    for (uint64_t i = 0; i < N; i += 2)
        CHECK_RC(chm_remove(m, i * 0x9e3779b97f4a7c15ULL, NULL), CHM_OK);
    for (uint64_t i = 0; i < 1000; i++) /* reads (readmostly: misses may promote dirty) */
        chm_get(m, i * 0x9e3779b97f4a7c15ULL, NULL);
    chm_stats s2 = stats_of(m);
    CHECK_EQ(s2.entries, N / 2);
    CHECK_EQ(s2.entries, chm_size(m));
    CHECK(s2.resizes >= s1.resizes); /* completed resizes never go back */
    if (!has_cap(b, CHM_CAP_DEFERRED_FREE))
        CHECK_EQ(s2.pending, 0);
    if (tl_fail_fast(b)) /* slots: one entry each */
        CHECK(s2.buckets >= s2.entries);
    chm__smr_barrier();
    chm_stats s3 = stats_of(m);
    CHECK_EQ(s3.pending, 0);
    CHECK(s3.bytes <= s2.bytes); /* what was pending is freed */
    CHECK_EQ(s3.entries, N / 2);
    chm_free(m);
}

/* A removed value waits in pending until it is freed (CHM_CAP_DEFERRED_FREE), or is freed
 * within the removing call. */
static void test_stats_pending(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    chm *m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    for (uint64_t i = 0; i < 10; i++)
        CHECK_RC(chm_put(m, i, i, NULL), CHM_OK);
    chm__smr_barrier();
    CHECK_EQ(stats_of(m).pending, 0);
    CHECK_RC(chm_remove(m, 3, NULL), CHM_OK);
    chm_stats s = stats_of(m);
    if (has_cap(b, CHM_CAP_DEFERRED_FREE)) {
        CHECK(s.pending >= 1); /* one object, far from a batch */
        CHECK_EQ(tl_freelog_calls(&log), 0);
    } else {
        CHECK_EQ(s.pending, 0);
        CHECK_EQ(tl_freelog_calls(&log), 1); /* within the removing call */
    }
    chm__smr_barrier();
    CHECK_EQ(stats_of(m).pending, 0);
    CHECK_EQ(tl_freelog_calls(&log), 1);
    chm_free(m);
out:
    tl_freelog_fini(&log);
}

/* ---- chm_reclaim ------------------------------------------------------------------------------ */

/* What the chm_reclaim calls made from inside a function or callback returned: each must be
 * CHM_EDEADLK, whatever the backend and whatever is pending. */
struct reclaim_probe {
    chm *self, *other;
    atomic_long calls;        /* functions or callbacks that probed */
    atomic_long not_deadlock; /* chm_reclaim calls among theirs that did not return CHM_EDEADLK */
};

static void reclaim_probe(struct reclaim_probe *p)
{
    atomic_fetch_add(&p->calls, 1);
    if (chm_reclaim(p->self) != CHM_EDEADLK)
        atomic_fetch_add(&p->not_deadlock, 1);
    if (chm_reclaim(p->other) != CHM_EDEADLK)
        atomic_fetch_add(&p->not_deadlock, 1);
}

static uint64_t reclaim_probe_cia(uint64_t key, void *arg)
{
    reclaim_probe(arg);
    return key;
}

static chm_compute_action reclaim_probe_update(uint64_t key, bool present, uint64_t old,
                                               uint64_t *value, void *arg)
{
    (void)key, (void)present, (void)old;
    reclaim_probe(arg);
    *value = 7;
    return CHM_COMPUTE_SET;
}

static void reclaim_probe_visit(uint64_t key, uint64_t value, void *arg)
{
    (void)key, (void)value;
    reclaim_probe(arg);
}

static void reclaim_probe_value_free(uint64_t value, void *ctx)
{
    (void)value;
    reclaim_probe(ctx);
}

/* chm_reclaim: CHM_EINVAL for NULL; what left the map is freed when it returns (pending 0,
 * value_free exact), deferred or not; CHM_EDEADLK from compute, update and visit functions and
 * from value_free wherever it runs (at the end of a write that crossed a batch, inside
 * chm_reclaim, inside chm_free; within the removing call without CHM_CAP_DEFERRED_FREE); an
 * iterator of the same thread left open does not make it wait. */
static void test_reclaim(const chm_backend *b)
{
    CHECK_RC(chm_reclaim(NULL), CHM_EINVAL);
    bool deferred = has_cap(b, CHM_CAP_DEFERRED_FREE);

    /* 1. Exact: 50 values leave (30 removed, 20 replaced), far from a batch. */
    tl_freelog log;
    tl_freelog_init(&log, false);
    chm *m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    for (uint64_t k = 0; k < 100; k++)
        CHECK_RC(chm_put(m, k, k, NULL), CHM_OK);
    for (uint64_t k = 0; k < 30; k++)
        CHECK_RC(chm_remove(m, k, NULL), CHM_OK);
    for (uint64_t k = 30; k < 50; k++)
        CHECK_RC(chm_put(m, k, k + 1000, NULL), CHM_EXISTS);
    chm_stats s = stats_of(m);
    if (deferred) { /* the precondition: something is pending, nothing freed yet */
        CHECK(s.pending >= 1);
        CHECK_EQ(tl_freelog_calls(&log), 0);
    } else {
        CHECK_EQ(s.pending, 0);
        CHECK_EQ(tl_freelog_calls(&log), 50);
    }
    CHECK_RC(chm_reclaim(m), CHM_OK);
    CHECK_EQ(stats_of(m).pending, 0);
    CHECK_EQ(tl_freelog_calls(&log), 50);
    CHECK_RC(chm_reclaim(m), CHM_OK); /* nothing pending: returns at once */
    CHECK_EQ(tl_freelog_calls(&log), 50);
    CHECK_EQ(chm_size(m), 70);

    /* 2. An iterator of this thread left open between its calls: chm_reclaim returns (a parked
     * batch is not waited for); the chm_iter_fini that closes it frees what it kept. */
    chm_iter it;
    uint64_t ik, iv;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    CHECK_RC(chm_iter_next(&it, &ik, &iv), CHM_OK);
    CHECK_RC(chm_remove(m, 99, NULL), CHM_OK);
    CHECK_RC(chm_reclaim(m), CHM_OK);
    chm_iter_fini(&it);
    CHECK_RC(chm_reclaim(m), CHM_OK);
    CHECK_EQ(stats_of(m).pending, 0);
    CHECK_EQ(tl_freelog_calls(&log), 51);
    chm_free(m);
    CHECK_EQ(tl_freelog_calls(&log), 51 + 69);

    /* 3. From compute, update and visit functions, on the map they run in and on another. */
    struct reclaim_probe p = {0};
    p.self = chm_new(b, NULL);
    p.other = chm_new(b, NULL);
    if (!CHECK(p.self != NULL && p.other != NULL))
        goto probes_done;
    CHECK_RC(chm_compute_if_absent(p.self, 1, reclaim_probe_cia, &p, NULL), CHM_OK);
    CHECK_RC(chm_compute(p.self, 1, reclaim_probe_update, &p, NULL), CHM_OK);
    CHECK_RC(chm_compute(p.self, 2, reclaim_probe_update, &p, NULL), CHM_OK);
    CHECK_RC(chm_visit(p.self, 1, reclaim_probe_visit, &p), CHM_OK);
    CHECK_EQ(atomic_load(&p.calls), 4);
    CHECK_EQ(atomic_load(&p.not_deadlock), 0);
    chm_free(p.self);

    /* 4. From value_free. With a deferred free, 3 batches of removes: the thread that crosses
     * one frees it at the end of its chm_remove (chm__smr_quiesce, nesting depth 0, the path a
     * depth check alone would miss); the rest is freed inside chm_reclaim, the last values
     * inside chm_free. Without, every one within its chm_remove. */
    atomic_store(&p.calls, 0);
    p.self = new_with_value_free(b, NULL, reclaim_probe_value_free, &p);
    if (!CHECK(p.self != NULL))
        goto probes_done;
    enum { NV = 3 * CHM_SMR_BATCH };
    for (uint64_t k = 0; k < NV; k++)
        CHECK_RC(chm_put(p.self, k, k, NULL), CHM_OK);
    for (uint64_t k = 0; k < NV; k++)
        CHECK_RC(chm_remove(p.self, k, NULL), CHM_OK);
    if (deferred)
        CHECK(atomic_load(&p.calls) >= 1); /* a batch was freed at the end of a write */
    else
        CHECK_EQ(atomic_load(&p.calls), NV);
    CHECK_RC(chm_reclaim(p.self), CHM_OK);
    CHECK_EQ(atomic_load(&p.calls), NV);
    CHECK_EQ(stats_of(p.self).pending, 0);
    for (uint64_t k = 0; k < 10; k++)
        CHECK_RC(chm_put(p.self, k, k, NULL), CHM_OK);
    chm_free(p.self); /* value_free inside chm_free */
    CHECK_EQ(atomic_load(&p.calls), NV + 10);
    if (!CHECK_EQ(atomic_load(&p.not_deadlock), 0))
        FAIL("%ld chm_reclaim calls from value_free did not return CHM_EDEADLK",
             atomic_load(&p.not_deadlock));
probes_done:
    chm_free(p.other);
out:
    tl_freelog_fini(&log);
}

/* chm_reclaim while other threads write the same map (thread-safe backends): every call
 * returns CHM_OK, and once the writers are done one more leaves nothing pending and every
 * replaced value freed exactly once. */
enum { RECLAIM_WRITERS = 2, RECLAIM_OPS = 20000, RECLAIM_KEYS = 512 };

struct reclaim_writer {
    chm *m;
    uint64_t id;
    long replaced;
    atomic_int *done;
};

static void *reclaim_writer(void *arg)
{
    struct reclaim_writer *w = arg;
    for (uint64_t i = 0; i < RECLAIM_OPS; i++) {
        /* distinct values across writers: value_free's count is all that is checked */
        int rc = chm_put(w->m, i % RECLAIM_KEYS, (w->id << 32) | i, NULL);
        if (rc == CHM_EXISTS)
            w->replaced++;
        else if (rc != CHM_OK)
            CHECK_RC(rc, CHM_OK);
    }
    atomic_fetch_add(w->done, 1);
    return NULL;
}

static void test_reclaim_writers(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    chm *m = new_with_value_free(b, NULL, tl_freelog_cb, &log);
    if (!CHECK(m != NULL))
        goto out;
    atomic_int done = 0;
    struct reclaim_writer w[RECLAIM_WRITERS];
    tl_thread th[RECLAIM_WRITERS];
    for (int i = 0; i < RECLAIM_WRITERS; i++) {
        w[i] = (struct reclaim_writer){.m = m, .id = (uint64_t)i + 1, .done = &done};
        tl_spawn(&th[i], reclaim_writer, &w[i]);
    }
    long reclaims = 0;
    while (atomic_load(&done) < RECLAIM_WRITERS) {
        CHECK_RC(chm_reclaim(m), CHM_OK);
        reclaims++;
    }
    long replaced = 0;
    for (int i = 0; i < RECLAIM_WRITERS; i++) {
        tl_join(&th[i]);
        replaced += w[i].replaced;
    }
    CHECK_EQ(replaced + RECLAIM_KEYS, (long)RECLAIM_WRITERS * RECLAIM_OPS);
    CHECK_RC(chm_reclaim(m), CHM_OK);
    CHECK_EQ(stats_of(m).pending, 0);
    if (!CHECK_EQ(tl_freelog_calls(&log), (unsigned long)replaced))
        FAIL("%lu values freed of %ld replaced", tl_freelog_calls(&log), replaced);
    tl_note("%s: %ld chm_reclaim calls during %d x %d writes", chm_backend_name(b), reclaims,
            RECLAIM_WRITERS, RECLAIM_OPS);
    chm_free(m);
out:
    tl_freelog_fini(&log);
}

/* ---- chm_backend_caps: the bits against behaviour ------------------------------------------ */

static void test_caps_registry(void *arg)
{
    (void)arg;
    CHECK_EQ(chm_backend_caps(NULL), 0);
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++) {
        unsigned c = chm_backend_caps(*p);
        bool ts = (c & CHM_CAP_THREAD_SAFE) != 0;
        CHECK_EQ(ts, chm_backend_thread_safe(*p));
        /* misuse is detected exactly where it is possible */
        CHECK_EQ((c & CHM_CAP_RACE_DETECT) != 0, !ts);
        /* a backend that is not thread-safe has only fail-fast iteration (weak consistency is
         * a guarantee under concurrency) */
        if (!ts)
            CHECK((c & CHM_CAP_FAIL_FAST_ITER) != 0);
        /* a store-free chm_get is a property of concurrent reads */
        if (c & CHM_CAP_STORE_FREE_GET)
            CHECK(ts);
        /* a read that takes no lock needs frees deferred past it */
        if (c & CHM_CAP_STORE_FREE_GET)
            CHECK(c & CHM_CAP_DEFERRED_FREE);
        /* every backend is thread-safe or detects its misuse */
        CHECK(c & (CHM_CAP_THREAD_SAFE | CHM_CAP_RACE_DETECT));
        /* only a deferred free can be held back by an iterator */
        if (c & CHM_CAP_ITER_HOLDS_RECLAIM)
            CHECK(c & CHM_CAP_DEFERRED_FREE);
        /* the same answer every time */
        CHECK_EQ(chm_backend_caps(*p), c);
    }
}

/* CHM_CAP_ITER_HOLDS_RECLAIM: an open iterator holds back its own map's reclamation, and only
 * its own. With an iterator of M open (one entry returned), four batches' worth of M's values
 * and of another map N's are replaced, then chm__smr_barrier() runs every grace period and
 * every reclamation due. With the bit, none of M's replaced values reached value_free
 * (chm_stats pending counts them), while all of N's did; after chm_iter_fini and a barrier all
 * of M's did. Without it, M's were freed with the iterator still open: after the barrier, or
 * within each call without DEFERRED_FREE. The overwrites are not structural, so a fail-fast
 * iteration still goes on to CHM_END. */
static void test_caps_iter_holds_reclaim(const chm_backend *b)
{
    enum { KEYS = 64, REPLACED = 4 * CHM_SMR_BATCH };
    bool holds = has_cap(b, CHM_CAP_ITER_HOLDS_RECLAIM);
    tl_freelog lm, ln;
    tl_freelog_init(&lm, false);
    tl_freelog_init(&ln, false);
    chm_options om = {.value_free = tl_freelog_cb, .ctx = &lm};
    chm_options on = {.value_free = tl_freelog_cb, .ctx = &ln};
    chm *m = chm_new(b, &om), *n = chm_new(b, &on);
    if (!CHECK(m != NULL && n != NULL)) {
        chm_free(m);
        chm_free(n);
        return;
    }
    for (uint64_t k = 0; k < KEYS; k++) {
        CHECK_RC(chm_put(m, k, k, NULL), CHM_OK);
        CHECK_RC(chm_put(n, k, k, NULL), CHM_OK);
    }
    chm__smr_barrier();
    chm_iter it;
    uint64_t k, v;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_OK); /* the iterator is inside the table */
    for (uint64_t i = 0; i < REPLACED; i++) {
        CHECK_RC(chm_put(m, i % KEYS, KEYS + i, NULL), CHM_EXISTS);
        CHECK_RC(chm_put(n, i % KEYS, KEYS + i, NULL), CHM_EXISTS);
    }
    chm__smr_barrier(); /* every grace period over, every batch due reclaimed (or parked) */
    unsigned long freed_m = tl_freelog_calls(&lm), freed_n = tl_freelog_calls(&ln);
    chm_stats st;
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    if (holds) {
        if (!CHECK_EQ(freed_m, 0))
            FAIL("%s: %lu of M's values freed under its open iterator", chm_backend_name(b),
                 freed_m);
        CHECK(st.pending >= REPLACED);
    } else {
        if (!CHECK_EQ(freed_m, REPLACED))
            FAIL("%s: %lu of %d of M's values freed with an iterator open, no capability "
                 "to hold them",
                 chm_backend_name(b), freed_m, (int)REPLACED);
        CHECK_EQ(st.pending, 0);
    }
    CHECK_EQ(freed_n, REPLACED); /* N is not held back by M's iterator */
    int rc;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
    }
    CHECK_RC(rc, CHM_END);
    chm_iter_fini(&it);
    chm__smr_barrier();
    CHECK_EQ(tl_freelog_calls(&lm), REPLACED);
    CHECK_RC(chm_stats_get(m, &st), CHM_OK);
    CHECK_EQ(st.pending, 0);
    chm_free(m);
    chm_free(n);
    CHECK_EQ(tl_freelog_calls(&lm), REPLACED + KEYS);
    CHECK_EQ(tl_freelog_calls(&ln), REPLACED + KEYS);
    tl_freelog_fini(&lm);
    tl_freelog_fini(&ln);
}

/* Iteration: a structural modification during it gives CHM_ECONCURRENT exactly when the
 * backend is fail-fast; otherwise the iteration goes on, weakly consistent (no key twice, every
 * key present throughout returned). Non-structural changes (an overwrite, a remove of an absent
 * key, a failed remove_if, a compute that keeps or overwrites) never fail it. */
static void iter_modify(const chm_backend *b, int how)
{
    chm *m = chm_new(b, NULL);
    if (!CHECK(m != NULL))
        return;
    for (uint64_t i = 0; i < 64; i++)
        CHECK_RC(chm_put(m, i, i, NULL), CHM_OK);
    chm_iter it;
    uint64_t k, v;
    CHECK_RC(chm_iter_init(&it, m), CHM_OK);
    CHECK_RC(chm_iter_next(&it, &k, &v), CHM_OK);
    tl_model seen;
    tl_model_init(&seen);
    tl_model_put(&seen, k, v, NULL);
    bool structural = true;
    uint64_t touched = 1000; /* the key the change touched (keys < 64 other than it: present
                                throughout) */
    struct upd u = {.action = CHM_COMPUTE_SET, .write = true, .set_to = 77};
    switch (how) {
    case 0: CHECK_RC(chm_put(m, 1000, 1, NULL), CHM_OK); break;
    case 1:
        touched = (k + 1) % 64;
        CHECK_RC(chm_remove(m, touched, NULL), CHM_OK);
        break;
    case 2:
        touched = (k + 1) % 64;
        CHECK_RC(chm_remove_if(m, touched, touched), CHM_OK);
        break;
    case 3: CHECK_RC(chm_compute(m, 1000, upd_fn, &u, NULL), CHM_OK); break;
    case 4:
        touched = (k + 1) % 64;
        u.action = CHM_COMPUTE_DELETE;
        CHECK_RC(chm_compute(m, touched, upd_fn, &u, NULL), CHM_NOTFOUND);
        break;
    case 5: /* growth */
        for (uint64_t i = 1000; i < 3000; i++)
            CHECK_RC(chm_put(m, i, i, NULL), CHM_OK);
        break;
    /* not structural */
    case 6:
        structural = false;
        CHECK_RC(chm_put(m, (k + 1) % 64, 5, NULL), CHM_EXISTS);
        break;
    case 7:
        structural = false;
        CHECK_RC(chm_remove(m, 5000, NULL), CHM_NOTFOUND);
        break;
    case 8:
        structural = false;
        CHECK_RC(chm_remove_if(m, (k + 1) % 64, 999), CHM_EXISTS);
        break;
    case 9:
        structural = false;
        CHECK_RC(chm_compute(m, (k + 1) % 64, upd_fn, &u, NULL), CHM_OK);
        break;
    case 10:
        structural = false;
        u.action = CHM_COMPUTE_KEEP;
        CHECK_RC(chm_compute(m, 5000, upd_fn, &u, NULL), CHM_NOTFOUND);
        break;
    default:
        structural = false;
        u.action = CHM_COMPUTE_DELETE;
        CHECK_RC(chm_compute(m, 5000, upd_fn, &u, NULL), CHM_NOTFOUND);
        break;
    }
    int rc;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
        if (!CHECK(tl_model_put(&seen, k, v, NULL))) /* no key twice */
            break;
    if (structural && tl_fail_fast(b)) {
        if (!CHECK_RC(rc, CHM_ECONCURRENT))
            FAIL("change %d during a fail-fast iteration", how);
    } else {
        if (!CHECK_RC(rc, CHM_END))
            FAIL("change %d during an iteration (%s)", how,
                 tl_fail_fast(b) ? "not structural" : "weakly consistent");
        for (uint64_t i = 0; i < 64; i++)
            if (i != touched && !CHECK(tl_model_get(&seen, i, NULL)))
                FAIL("change %d: key %" PRIu64 ", present throughout, not returned", how, i);
    }
    chm_iter_fini(&it);
    tl_model_fini(&seen);
    chm_free(m);
}

static void test_caps_iteration(const chm_backend *b)
{
    for (int how = 0; how < 12 && tl_failures() == 0; how++)
        iter_modify(b, how);
}

/* Nested writes from a compute function: run iff CHM_CAP_COMPUTE_EXCLUSIVE. */
static void test_caps_compute_exclusive(const chm_backend *b)
{
    ncomp_one(b, NW_OVERWRITE, CHM_COMPUTE_SET, true, false);
    struct ncomp c;
    memset(&c, 0, sizeof c);
    c.m = chm_new(b, NULL);
    if (!CHECK(c.m != NULL))
        return;
    c.nested = NW_NEW_KEY;
    c.action = CHM_COMPUTE_KEEP;
    chm_compute(c.m, NC_KEY, ncomp_fn, &c, NULL);
    CHECK_RC(c.nested_rc, tl_compute_exclusive(b) ? CHM_OK : CHM_EDEADLK);
    CHECK_EQ(chm_get(c.m, NC_NEW, NULL) == CHM_OK, tl_compute_exclusive(b));
    chm_free(c.m);
}

/* Colliding keys with a compare: O(log n) comparisons per lookup iff CHM_CAP_TREE_BINS, else a
 * linear search through the collisions (counted through the key operations, not timed). */
static _Thread_local unsigned long tb_cmps;

static uint64_t tb_hash(uint64_t key, uint64_t seed)
{
    (void)key;
    (void)seed;
    return 0x7777777777777777ULL;
}
static bool tb_equal(uint64_t a, uint64_t b)
{
    tb_cmps++;
    return a == b;
}
static int tb_compare(uint64_t a, uint64_t b)
{
    tb_cmps++;
    return (a > b) - (a < b);
}
static const chm_keyops keys_tb = {.hash = tb_hash, .equal = tb_equal, .compare = tb_compare};

static void test_caps_tree_bins(const chm_backend *b)
{
    enum { N = 1024 };
    chm *m = chm_new(b, &(chm_options){.keys = &keys_tb});
    if (!CHECK(m != NULL))
        return;
    for (uint64_t i = 0; i < N; i++)
        CHECK_RC(chm_put(m, i * 7919, i, NULL), CHM_OK);
    tb_cmps = 0;
    for (uint64_t i = 0; i < N; i++) {
        uint64_t v = 0;
        if (CHECK_RC(chm_get(m, i * 7919, &v), CHM_OK))
            CHECK_EQ(v, i);
    }
    double per_get = (double)tb_cmps / N;
    tl_note("%s: %.1f key comparisons per chm_get among %d colliding keys", chm_backend_name(b),
            per_get, N);
    if (has_cap(b, CHM_CAP_TREE_BINS))
        CHECK(per_get <= 4 * 10 + 4); /* 4 log2(N) */
    else
        CHECK(per_get >= N / 8);
    chm_free(m);
}

/* chm_options.packed: backends without CHM_CAP_PADDING_SWITCH ignore it (the same layout, the
 * same bytes); with it, packing never takes more memory. */
static void test_caps_padding(const chm_backend *b)
{
    size_t bytes[2];
    for (int packed = 0; packed < 2; packed++) {
        chm *m = chm_new(b, &(chm_options){.packed = packed, .seed = 0x9ac4ed});
        if (!CHECK(m != NULL))
            return;
        for (uint64_t i = 0; i < 3000; i++)
            chm_put(m, i, i, NULL);
        for (uint64_t i = 0; i < 3000; i += 3)
            chm_remove(m, i, NULL);
        chm__smr_barrier();
        bytes[packed] = stats_of(m).bytes;
        chm_free(m);
    }
    tl_note("%s: %zu bytes padded, %zu packed", chm_backend_name(b), bytes[0], bytes[1]);
    if (has_cap(b, CHM_CAP_PADDING_SWITCH))
        CHECK(bytes[1] <= bytes[0]);
    else
        CHECK_EQ(bytes[1], bytes[0]);
}

/* Blocking, observed from outside: threads started inside a compute function call into the map
 * while the function holds what the compute holds; each either returns (it did not wait), sleeps
 * in the kernel (a blocking lock, or a spin that gave up), or stays runnable (a spinning lock).
 * Thread states come from /proc (thread_sleeps above). */
struct blk {
    chm *m;
    bool is_get; /* chm_get, else chm_put */
    uint64_t key;
    atomic_int tid, started, done;
    int rc;
};

static void *blk_thread(void *arg)
{
    struct blk *t = arg;
    atomic_store(&t->tid, (int)syscall(SYS_gettid));
    atomic_store(&t->started, 1);
    if (t->is_get)
        t->rc = chm_get(t->m, t->key, NULL);
    else
        t->rc = chm_put(t->m, t->key, 0xb1, NULL);
    atomic_store(&t->done, 1);
    return NULL;
}

enum blk_seen { BLK_RETURNED, BLK_SLEPT, BLK_SPUN, BLK_STUCK };

enum blk_mode {
    BLK_WANT_RETURN, /* wait (30 s at most) until one of the threads returned */
    BLK_WATCH        /* classify each: returned, slept, or spun for BLK_SPIN_S */
};
#define BLK_SPIN_S 0.4
#define BLK_MAX 16

struct blk_fn {
    int n;
    enum blk_mode mode;
    struct blk t[BLK_MAX];
    tl_thread th[BLK_MAX];
    enum blk_seen seen[BLK_MAX];
    bool any_returned;
};

static enum blk_seen blk_watch(struct blk *t)
{
    while (atomic_load(&t->started) == 0 || atomic_load(&t->tid) == 0)
        sched_yield();
    double t0 = tl_now();
    bool runnable_throughout = true;
    for (;;) {
        if (atomic_load(&t->done))
            return BLK_RETURNED;
        if (thread_sleeps(atomic_load(&t->tid)))
            return BLK_SLEPT;
        double now = tl_now();
        if (runnable_throughout && now > t0 + BLK_SPIN_S)
            return BLK_SPUN;
        if (now > t0 + 30)
            return BLK_STUCK;
        usleep(500);
    }
}

static chm_compute_action blk_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                 void *arg)
{
    struct blk_fn *f = arg;
    (void)key;
    (void)present;
    (void)old;
    for (int i = 0; i < f->n; i++)
        tl_spawn(&f->th[i], blk_thread, &f->t[i]);
    if (f->mode == BLK_WANT_RETURN) {
        double until = tl_now() + 30;
        while (!f->any_returned && tl_now() < until) {
            for (int i = 0; i < f->n; i++)
                if (atomic_load(&f->t[i].done))
                    f->any_returned = true;
            usleep(500);
        }
    } else {
        for (int i = 0; i < f->n; i++) {
            f->seen[i] = blk_watch(&f->t[i]);
            f->any_returned |= f->seen[i] == BLK_RETURNED;
        }
    }
    *value = 0xc0;
    return CHM_COMPUTE_SET;
}

/* Run n threads' calls against @m while a chm_compute of key 1 runs; joins them after. */
static int blk_run(chm *m, struct blk_fn *f)
{
    for (int i = 0; i < f->n; i++)
        f->t[i].m = m;
    int rc = chm_compute(m, 1, blk_fn, f, NULL);
    for (int i = 0; i < f->n; i++)
        tl_join(&f->th[i]);
    return rc;
}

static chm *blk_map(const chm_backend *b, chm_rwlock_kind kind, unsigned concurrency)
{
    chm *m = chm_new(b, &(chm_options){.rwlock = kind, .concurrency = concurrency});
    if (!CHECK(m != NULL))
        return NULL;
    for (uint64_t i = 0; i < 100; i++)
        chm_put(m, i, i, NULL);
    tl_model seen; /* an iteration: readmostly's read index then holds every key */
    tl_model_init(&seen);
    tl_collect(m, &seen);
    tl_model_fini(&seen);
    return m;
}

static const char *blk_name(enum blk_seen s)
{
    static const char *const n[] = {"returned", "slept", "spun", "stuck"};
    return n[s];
}

/* CHM_CAP_STORE_FREE_GET: a chm_get of the key being computed does not wait for the compute
 * (it takes no lock); without it (a lock around reads) it does. */
static void test_caps_store_free_get(const chm_backend *b)
{
    chm *m = blk_map(b, CHM_RWLOCK_ADAPTIVE, 0);
    if (m == NULL)
        return;
    struct blk_fn f;
    memset(&f, 0, sizeof f);
    f.n = 1;
    f.t[0].is_get = true;
    f.t[0].key = 1;
    f.mode = BLK_WATCH;
    CHECK_RC(blk_run(m, &f), CHM_OK);
    tl_note("%s: a chm_get during a compute of its key %s", chm_backend_name(b),
            blk_name(f.seen[0]));
    if (has_cap(b, CHM_CAP_STORE_FREE_GET)) {
        /* it returns while fn runs (not asleep, not spinning on a lock) */
        if (f.seen[0] != BLK_RETURNED) {
            memset(&f, 0, sizeof f);
            f.n = 1;
            f.t[0].is_get = true;
            f.t[0].key = 1;
            f.mode = BLK_WANT_RETURN; /* a sleep seen may have been the scheduler's */
            CHECK_RC(blk_run(m, &f), CHM_OK);
            CHECK(f.any_returned);
        }
    } else {
        CHECK(f.seen[0] != BLK_RETURNED);
    }
    CHECK_RC(f.t[0].rc, CHM_OK);
    chm_free(m);
}

/* CHM_CAP_RWLOCK_KINDS: chm_options.rwlock picks the lock: a writer waiting for a compute of
 * its key sleeps with CHM_RWLOCK_ADAPTIVE (after its short spin) and CHM_RWLOCK_PTHREAD, and
 * spins with CHM_RWLOCK_CK. Without the bit the field is ignored: the writer waits the same
 * way with every value. It waits in every case (a put of the key being computed cannot
 * complete before the compute). */
static void test_caps_rwlock_kinds(const chm_backend *b)
{
    static const chm_rwlock_kind kinds[3] = {CHM_RWLOCK_ADAPTIVE, CHM_RWLOCK_PTHREAD,
                                             CHM_RWLOCK_CK};
    enum blk_seen seen[3];
    for (int kind = 0; kind < 3; kind++) {
        chm *m = blk_map(b, kinds[kind], 0);
        if (m == NULL)
            return;
        struct blk_fn f;
        memset(&f, 0, sizeof f);
        f.n = 1;
        f.t[0].key = 1;
        f.mode = BLK_WATCH;
        CHECK_RC(blk_run(m, &f), CHM_OK);
        seen[kind] = f.seen[0];
        CHECK_RC(f.t[0].rc, CHM_EXISTS);
        uint64_t v = 0;
        if (CHECK_RC(chm_get(m, 1, &v), CHM_OK)) /* the put came after the compute */
            CHECK_EQ(v, 0xb1);
        chm_free(m);
    }
    tl_note("%s: a writer waiting for a compute: %s (adaptive), %s (pthread), %s (ck)",
            chm_backend_name(b), blk_name(seen[0]), blk_name(seen[1]), blk_name(seen[2]));
    for (int kind = 0; kind < 3; kind++)
        CHECK(seen[kind] != BLK_RETURNED && seen[kind] != BLK_STUCK);
    if (has_cap(b, CHM_CAP_RWLOCK_KINDS)) {
        CHECK_EQ(seen[0], BLK_SLEPT);
        CHECK_EQ(seen[1], BLK_SLEPT);
        CHECK_EQ(seen[2], BLK_SPUN);
    } else {
        CHECK_EQ(seen[1], seen[0]);
        CHECK_EQ(seen[2], seen[0]);
    }
}

/* CHM_CAP_SEGMENTS: chm_options.concurrency is the number of independently locked segments.
 * With one segment, a put of another new key waits for a compute; with 256, some of 16 new
 * keys land in another segment than the computed key and go through. */
static void test_caps_segments(const chm_backend *b)
{
    if (!has_cap(b, CHM_CAP_SEGMENTS)) {
        tl_note("%s: no segments", chm_backend_name(b));
        return;
    }
    chm *m = blk_map(b, CHM_RWLOCK_ADAPTIVE, 1);
    if (m == NULL)
        return;
    struct blk_fn f;
    memset(&f, 0, sizeof f);
    f.n = 1;
    f.t[0].key = 5000;
    f.mode = BLK_WATCH;
    CHECK_RC(blk_run(m, &f), CHM_OK);
    CHECK(f.seen[0] == BLK_SLEPT || f.seen[0] == BLK_SPUN);
    CHECK_RC(f.t[0].rc, CHM_OK);
    chm_free(m);
    m = blk_map(b, CHM_RWLOCK_ADAPTIVE, 256);
    if (m == NULL)
        return;
    memset(&f, 0, sizeof f);
    f.n = BLK_MAX;
    for (int i = 0; i < BLK_MAX; i++)
        f.t[i].key = 6000 + (uint64_t)i;
    f.mode = BLK_WANT_RETURN;
    CHECK_RC(blk_run(m, &f), CHM_OK);
    CHECK(f.any_returned);
    CHECK_EQ(chm_size(m), 100 + BLK_MAX);
    chm_free(m);
}

/* ---- chm_options.size ---------------------------------------------------------------------- */

static void test_options_size(const chm_backend *b)
{
    struct {
        chm_options o;
        unsigned char tail[16];
    } big;
    uint64_t acc[2] = {0, 0};
    chm *m;
    /* NULL, a zeroed struct (size 0), size = sizeof: all work */
    m = chm_new(b, NULL);
    if (CHECK(m != NULL)) {
        short_workout(m);
        chm_free(m);
    }
    for (int variant = 0; variant < 3; variant++) {
        memset(&big, 0, sizeof big);
        big.o.value_free = ctx_cb; /* honoured: the field is within size */
        big.o.ctx = acc;
        if (variant == 1)
            big.o.size = sizeof(chm_options);
        if (variant == 2) { /* a newer caller whose extra field is zero (= default) */
            big.o.size = sizeof(chm_options) + 8;
            big.tail[8] = 0xff; /* beyond size: never read */
        }
        acc[0] = acc[1] = 0;
        errno = 0;
        m = chm_new(b, &big.o);
        if (!CHECK(m != NULL)) {
            FAIL("size variant %d: errno %d", variant, errno);
            continue;
        }
        short_workout(m);
        chm_free(m);
        CHECK_EQ(acc[0], 1000);
    }
    /* a newer caller that set a field this library does not know: refused */
    for (size_t i = 0; i < 8; i++) {
        memset(&big, 0, sizeof big);
        big.o.size = sizeof(chm_options) + 8;
        big.tail[i] = (unsigned char)(1u << (i % 8));
        errno = 0;
        m = chm_new(b, &big.o);
        if (!CHECK(m == NULL))
            chm_free(m);
        CHECK_EQ(errno, EINVAL);
    }
    /* sizes that are not one */
    static const size_t bad[] = {1, 4, 8, sizeof(chm_options) / 2, sizeof(chm_options) - 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&big, 0, sizeof big);
        big.o.size = bad[i];
        errno = 0;
        m = chm_new(b, &big.o);
        if (!CHECK(m == NULL)) {
            FAIL("chm_options.size = %zu accepted", bad[i]);
            chm_free(m);
        }
        CHECK_EQ(errno, EINVAL);
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
    tl_each_backend("invariant_names", test_invariant_names, NULL);
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
    /* the calls beyond get / put / remove, caps and chm_options.size */
    tl_run("caps_registry", test_caps_registry, NULL);
    tl_each_backend("options_size", test_options_size, NULL);
    tl_each_backend("compute_actions", test_compute_actions, NULL);
    tl_each_backend("compute_originals", test_compute_originals, NULL);
    tl_each_backend("compute_boxes", test_compute_boxes, NULL);
    tl_each_backend("compute_nested", test_compute_nested, NULL);
    tl_each_backend("compute_nesting_bound", test_compute_nesting_bound, NULL);
    tl_each_backend("compute_cross_map", test_compute_cross_map, NULL);
    tl_each_backend("remove_if", test_remove_if, NULL);
    tl_each_backend("clear", test_clear, NULL);
    tl_each_backend("clear_string_keys", test_clear_string_keys, NULL);
    tl_each_backend("clear_iterator", test_clear_iterator, NULL);
    tl_each_backend("visit", test_visit, NULL);
    tl_each_backend("visit_pointer", test_visit_pointer, NULL);
    tl_each_backend("visit_writer_waiting", test_visit_writer_waiting, tl_thread_safe);
    tl_each_backend("stats", test_stats, NULL);
    tl_each_backend("stats_pending", test_stats_pending, NULL);
    tl_each_backend("reclaim", test_reclaim, NULL);
    tl_each_backend("reclaim_writers", test_reclaim_writers, tl_thread_safe);
    tl_each_backend("caps_iteration", test_caps_iteration, NULL);
    tl_each_backend("caps_compute_exclusive", test_caps_compute_exclusive, NULL);
    tl_each_backend("caps_tree_bins", test_caps_tree_bins, NULL);
    tl_each_backend("caps_padding", test_caps_padding, NULL);
    tl_each_backend("caps_store_free_get", test_caps_store_free_get, tl_thread_safe);
    tl_each_backend("caps_rwlock_kinds", test_caps_rwlock_kinds, tl_thread_safe);
    tl_each_backend("caps_segments", test_caps_segments, tl_thread_safe);
    tl_each_backend("caps_iter_holds_reclaim", test_caps_iter_holds_reclaim, NULL);
    return tl_finish();
}
