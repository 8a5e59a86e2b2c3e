/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_alloc_fail.c - out of memory, every allocation in turn.
 *
 * For every backend and every scripted workload, run the workload with the k-th allocation of the
 * library failing (chm__alloc_fail_nth), for k = 1, 2, ... until a run completes without reaching
 * the k-th allocation (every k in the plain build; the sanitizer builds stride through k after
 * the first 64: see `stride` in main). In every run:
 *   - chm_new fails with NULL and errno ENOMEM, or an operation returns CHM_ENOMEM (a backend may
 *     also absorb a failure it can work around, e.g. a remove whose helping growth step fails:
 *     the model comparison is what must hold);
 *   - right after a CHM_ENOMEM the map equals the model (size, a chm_get of every key, and a full
 *     iteration), i.e. the failed operation changed nothing;
 *   - "continue" mode: the failed operation is retried and must now succeed, and the workload goes
 *     on to the end; "stop" mode: the map is freed right after the failure (a growth may be half
 *     done then), which checks that chm_free copes with every intermediate state;
 *   - value_free is called exactly once per value that left (a multiset comparison), never for the
 *     value of a failed insert, and keyops.release exactly once per stored key copy;
 *   - a compute_if_absent or compute that returns CHM_ENOMEM did not run its function; with a
 *     function that mallocs its value, every such value is in the map, was returned, or went to
 *     value_free (none is left over after chm_free); chm_clear never returns CHM_ENOMEM;
 *   - chm_visit and chm_stats_get, called with every allocation failing
 *     (chm__alloc_fail_every) after each CHM_ENOMEM (on every key) and all along the workloads,
 *     never return CHM_ENOMEM, try no allocation, and answer as the model says (the value
 *     visited, CHM_NOTFOUND for an absent key, entries == the model's size);
 *   - after chm_free, chm__alloc_live() == 0 (and LeakSanitizer sees no leak in the ASan build).
 * Workloads: growth from capacity 0, string keys, put_if_absent, compute_if_absent (also with an
 * allocating function, in one segment), a random mix, iterations, colliding keys (integer and
 * string, without compare), a presized map, colliding keys with a compare (binlock TreeBins:
 * treeify, splits by resizes, untreeify), readmostly's promotions, dirty rebuilds, expunge and
 * unexpunge, and one segment rehashing through every doubling; chm_compute (integer and string
 * keys; with an allocating function and chm_clear, in one segment) and chm_remove_if.
 *
 * Allocation sites: the hook also records each call site reached (chm_internal.h passes
 * "file:line"). alloc_sites/<backend> prints "allocation sites reached: N, failed at least
 * once: M" over all workloads and both modes, and requires M == N (a site a sanitizer build's
 * stride skipped is failed afterwards, at the first attempt where it was reached).
 */
#include "testlib.h"

#include "chm_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- one run ------------------------------------------------------------------------------- */

enum op {
    OP_PUT,
    OP_PIA,
    OP_CIA,
    OP_REMOVE,
    OP_REPLACE,
    OP_GET,
    OP_UPDATE,
    OP_REMOVE_IF,
    OP_CLEAR
};

typedef struct af {
    const chm_backend *b;
    const char *wl; /* workload name */
    uint64_t k;     /* the allocation that fails */
    bool stop_mode; /* free the map right after the first CHM_ENOMEM */
    bool strings;   /* keys are strings "s<i>..." */
    bool fn_allocs; /* compute functions malloc their values; value_free frees them */
    const chm_keyops *keys;
    size_t capacity;

    chm *m;
    tl_model model; /* key index -> value */
    tl_model left;  /* value -> times it left the map */
    unsigned long left_total;
    tl_freelog log;
    int enomem;   /* CHM_ENOMEM returned in this run */
    bool stopped; /* stop mode: a failure happened, the workload must end */
    bool broken;  /* a check failed: end the run */
    uint64_t vctr;
    char buf[96];
} af;

static uint64_t af_key(af *a, uint64_t i)
{
    if (!a->strings)
        return i * 0x9e3779b97f4a7c15ULL; /* spread over the word; 0 included */
    snprintf(a->buf, sizeof a->buf, "s%" PRIu64 "%s", i,
             (i % 3) == 0 ? "-with-a-tail-longer-than-sixteen-bytes" : "");
    return (uint64_t)(uintptr_t)a->buf;
}

/* Overwrite the caller's buffer so a map that kept the pointer is caught. */
static void af_scribble(af *a)
{
    if (a->strings)
        memset(a->buf, '#', sizeof a->buf - 1);
}

static uint64_t key_index_of(const af *a, uint64_t key)
{
    if (!a->strings)
        return key * 0xf1de83e19937733dULL; /* inverse of 0x9e3779b97f4a7c15 mod 2^64 */
    const char *s = (const char *)(uintptr_t)key;
    return s[0] == 's' ? strtoull(s + 1, NULL, 10) : UINT64_MAX;
}

static void af_left(af *a, uint64_t value)
{
    tl_model_add(&a->left, value, 1);
    a->left_total++;
}

/* What a chm_visit function saw. */
struct visit_seen {
    int calls;
    uint64_t key, value;
};

static void visit_fn(uint64_t key, uint64_t value, void *arg)
{
    struct visit_seen *v = arg;
    v->calls++;
    v->key = key;
    v->value = value;
}

/* chm_visit of key index i and (@stats) chm_stats_get with every allocation failing: neither
 * allocates (chm.h lists no CHM_ENOMEM for them; the hook's count of refused allocations says
 * whether one was even tried), and both answer as the model says. Run after each CHM_ENOMEM,
 * when a growth may be half done, and between the workloads' operations. */
static bool af_no_memory_reads(af *a, uint64_t i, bool stats)
{
    long before = tl_failures();
    uint64_t denied = chm__alloc_denied(), want = 0;
    bool present = tl_model_get(&a->model, i, &want);
    uint64_t key = af_key(a, i);
    struct visit_seen seen = {0, 0, 0};
    chm_stats st;
    memset(&st, 0xa5, sizeof st);
    chm__alloc_fail_every(true);
    int vrc = chm_visit(a->m, key, visit_fn, &seen);
    int src = stats ? chm_stats_get(a->m, &st) : CHM_OK;
    chm__alloc_fail_every(false);
    af_scribble(a);
    if (vrc == CHM_ENOMEM || src == CHM_ENOMEM)
        FAIL("with no memory, chm_visit returned %s and chm_stats_get %s", tl_rc_name(vrc),
             tl_rc_name(src));
    if (!CHECK_EQ(chm__alloc_denied(), denied))
        FAIL("chm_visit or chm_stats_get tried to allocate");
    if (CHECK_RC(vrc, present ? CHM_OK : CHM_NOTFOUND)) {
        CHECK_EQ(seen.calls, present ? 1 : 0);
        if (present) {
            CHECK_EQ(seen.value, want);
            CHECK_EQ(seen.key, key); /* the caller's key, not the stored copy */
        }
    }
    if (stats && CHECK_RC(src, CHM_OK)) {
        CHECK_EQ(st.entries, tl_model_size(&a->model));
        CHECK(st.buckets >= 1 || st.entries == 0);
        CHECK(st.bytes >= st.entries * 16); /* at least a key and a value per entry */
        if (!(chm_backend_caps(a->b) & CHM_CAP_DEFERRED_FREE))
            CHECK_EQ(st.pending, 0);
    }
    if (tl_failures() != before) {
        FAIL("chm_visit / chm_stats_get of key index %" PRIu64 " with no memory", i);
        a->broken = true;
        return false;
    }
    return true;
}

/* The map equals the model: size, gets, a chm_visit of every key and chm_stats_get with no
 * memory, and (with_iter) a full iteration. */
static bool af_check(af *a, bool with_iter)
{
    long before = tl_failures();
    CHECK_EQ(chm_size(a->m), tl_model_size(&a->model));
    size_t pos = 0;
    uint64_t i, want;
    while (tl_model_slot(&a->model, &pos, &i, &want)) {
        uint64_t got = ~want;
        int rc = chm_get(a->m, af_key(a, i), &got);
        af_scribble(a);
        if (!CHECK_RC(rc, CHM_OK) || !CHECK_EQ(got, want)) {
            FAIL("key index %" PRIu64, i);
            break;
        }
        if (!af_no_memory_reads(a, i, false))
            break;
    }
    if (tl_failures() == before)
        af_no_memory_reads(a, UINT64_MAX / 2, true); /* an absent key, and the stats */
    if (with_iter && tl_failures() == before) {
        chm_iter it;
        int rc = chm_iter_init(&it, a->m);
        if (rc == CHM_OK) {
            tl_model seen;
            tl_model_init(&seen);
            uint64_t k, v;
            while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
                uint64_t idx = key_index_of(a, k);
                if (!CHECK(tl_model_get(&a->model, idx, &want) && want == v) ||
                    !CHECK(tl_model_put(&seen, idx, v, NULL)))
                    break;
                if (a->strings)
                    CHECK(k != (uint64_t)(uintptr_t)a->buf);
            }
            CHECK_RC(rc, CHM_END);
            CHECK_EQ(tl_model_size(&seen), tl_model_size(&a->model));
            tl_model_fini(&seen);
        } else if (rc != CHM_ENOMEM) { /* ENOMEM: no iteration now; the gets above suffice */
            CHECK_RC(rc, CHM_OK);
        }
        chm_iter_fini(&it);
    }
    if (tl_failures() != before) {
        a->broken = true;
        return false;
    }
    return true;
}

/* A CHM_ENOMEM: the map must be unchanged. Returns true when the caller should retry. */
static bool af_enomem(af *a, int attempt, const char *what, uint64_t i)
{
    a->enomem++;
    if (attempt > 0) {
        FAIL("%s(key index %" PRIu64 ") failed again on retry (only one allocation fails)", what,
             i);
        a->broken = true;
        return false;
    }
    if (!af_check(a, !a->stop_mode)) {
        FAIL("after %s(key index %" PRIu64 ") returned CHM_ENOMEM the map changed", what, i);
        return false;
    }
    if (a->stop_mode) {
        a->stopped = true;
        return false;
    }
    return true;
}

static uint64_t compute_value(uint64_t key, void *arg)
{
    (void)key;
    uint64_t *calls = arg;
    return 0xc0ffee0000000000ULL + ++*calls;
}

/* A compute function that allocates what it returns, as a cache of objects does: the value is
 * a pointer to compute_value's number. Plain malloc, so the injected failures never hit it.
 * fn_blocks counts those blocks not yet freed by value_free (which may run on another thread);
 * a value the map lost -- neither inserted, nor returned, nor passed to value_free -- stays
 * counted (and LeakSanitizer reports it). */
static atomic_long fn_blocks;

static uint64_t compute_alloc_value(uint64_t key, void *arg)
{
    uint64_t *p = malloc(sizeof *p);
    if (p == NULL)
        abort();
    *p = compute_value(key, arg);
    atomic_fetch_add_explicit(&fn_blocks, 1, memory_order_relaxed);
    return (uint64_t)(uintptr_t)p;
}

static void free_alloc_value(uint64_t value, void *ctx)
{
    tl_freelog_cb(value, ctx);
    atomic_fetch_sub_explicit(&fn_blocks, 1, memory_order_relaxed);
    free((void *)(uintptr_t)value);
}

/* chm_compute's function: absent -> SET a fresh value; present -> by key index: DELETE
 * (i % 3 == 0), KEEP (i % 3 == 1) or SET a fresh value. The fresh value is a malloc'd box
 * (fn_allocs) or the attempt's own value. Records the calls and what fn saw. */
struct upd_arg {
    uint64_t idx;
    uint64_t fresh; /* the value to SET when it is not allocated: unique per attempt */
    bool allocs;
    uint64_t calls;
    bool present;
    uint64_t old, set;
};

static chm_compute_action update_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                    void *arg)
{
    struct upd_arg *u = arg;
    u->present = present;
    u->old = old;
    if (present && u->idx % 3 == 0) {
        u->calls++;
        return CHM_COMPUTE_DELETE;
    }
    if (present && u->idx % 3 == 1) {
        u->calls++;
        return CHM_COMPUTE_KEEP;
    }
    if (u->allocs) {
        u->set = compute_alloc_value(key, &u->calls);
    } else {
        u->calls++;
        u->set = u->fresh;
    }
    *value = u->set;
    return CHM_COMPUTE_SET;
}

/* One operation on key index i, checked against the model; retried once after CHM_ENOMEM. */
static bool af_op(af *a, enum op op, uint64_t i)
{
    if (a->stopped || a->broken)
        return false;
    uint64_t cur;
    bool present = tl_model_get(&a->model, i, &cur);
    static const char *const names[] = {"put",     "put_if_absent", "compute_if_absent",
                                        "remove",  "replace",       "get",
                                        "compute", "remove_if",     "clear"};
    for (int attempt = 0; attempt < 2; attempt++) {
        uint64_t v = ++a->vctr * 0x100000001b3ULL, out = 0x5a5a5a5a5a5a5a5aULL;
        uint64_t calls = 0;
        uint64_t key = af_key(a, i);
        struct upd_arg ua = {.idx = i, .fresh = v, .allocs = a->fn_allocs};
        int rc;
        switch (op) {
        case OP_PUT: rc = chm_put(a->m, key, v, &out); break;
        case OP_PIA: rc = chm_put_if_absent(a->m, key, v, &out); break;
        case OP_CIA:
            rc = chm_compute_if_absent(
                a->m, key, a->fn_allocs ? compute_alloc_value : compute_value, &calls, &out);
            v = 0xc0ffee0000000000ULL + 1;
            break;
        case OP_REMOVE: rc = chm_remove(a->m, key, &out); break;
        case OP_REPLACE: rc = chm_replace(a->m, key, cur, v); break;
        case OP_UPDATE: rc = chm_compute(a->m, key, update_fn, &ua, &out); break;
        case OP_REMOVE_IF: rc = chm_remove_if(a->m, key, present ? cur : v); break;
        case OP_CLEAR: rc = chm_clear(a->m); break;
        default: rc = chm_get(a->m, key, &out); break;
        }
        af_scribble(a);
        if (op == OP_CLEAR && rc == CHM_ENOMEM) {
            FAIL("chm_clear returned CHM_ENOMEM (it never fails for lack of memory)");
            a->broken = true;
            return false;
        }
        if (rc == CHM_ENOMEM) {
            /* Every backend allocates before the function runs (chm.h), so that its value is
             * never lost to a failure after it. */
            if (op == OP_CIA && !CHECK_EQ(calls, 0))
                FAIL("compute_if_absent returned CHM_ENOMEM after its function ran");
            if (op == OP_UPDATE && !CHECK_EQ(ua.calls, 0))
                FAIL("compute returned CHM_ENOMEM after its function ran");
            if (!af_enomem(a, attempt, names[op], i))
                return false;
            continue;
        }
        long before = tl_failures();
        switch (op) {
        case OP_PUT:
            if (CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && present)
                CHECK_EQ(out, cur);
            if (present)
                af_left(a, cur);
            tl_model_put(&a->model, i, v, NULL);
            break;
        case OP_PIA:
            if (CHECK_RC(rc, present ? CHM_EXISTS : CHM_OK) && present)
                CHECK_EQ(out, cur);
            if (!present)
                tl_model_put(&a->model, i, v, NULL);
            break;
        case OP_CIA:
            if (present) {
                if (CHECK_RC(rc, CHM_EXISTS))
                    CHECK_EQ(out, cur);
                CHECK_EQ(calls, 0);
            } else {
                /* the value installed is the one computed in this (successful) call */
                if (CHECK_RC(rc, CHM_OK))
                    CHECK_EQ(a->fn_allocs ? *(const uint64_t *)(uintptr_t)out : out,
                             0xc0ffee0000000000ULL + calls);
                CHECK_EQ(calls, 1);
                tl_model_put(&a->model, i, out, NULL);
            }
            break;
        case OP_REMOVE:
            if (CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && present)
                CHECK_EQ(out, cur);
            if (present) {
                af_left(a, cur);
                tl_model_remove(&a->model, i, NULL);
            }
            break;
        case OP_REPLACE:
            CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND);
            if (present) {
                af_left(a, cur);
                tl_model_put(&a->model, i, v, NULL);
            }
            break;
        case OP_UPDATE:
            CHECK_EQ(ua.calls, 1);
            CHECK_EQ(ua.present, present);
            CHECK_EQ(ua.old, present ? cur : 0);
            if (present && i % 3 == 0) { /* deleted */
                CHECK_RC(rc, CHM_NOTFOUND);
                af_left(a, cur);
                tl_model_remove(&a->model, i, NULL);
            } else if (present && i % 3 == 1) { /* kept */
                if (CHECK_RC(rc, CHM_OK))
                    CHECK_EQ(out, cur);
            } else { /* set to a fresh value */
                if (CHECK_RC(rc, CHM_OK))
                    CHECK_EQ(out, ua.set);
                if (present)
                    af_left(a, cur);
                tl_model_put(&a->model, i, ua.set, NULL);
            }
            break;
        case OP_REMOVE_IF:
            CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND);
            if (present) {
                af_left(a, cur);
                tl_model_remove(&a->model, i, NULL);
            }
            break;
        case OP_CLEAR: {
            CHECK_RC(rc, CHM_OK);
            size_t pos = 0;
            uint64_t k, val;
            while (tl_model_slot(&a->model, &pos, &k, &val))
                af_left(a, val);
            tl_model_clear(&a->model);
            break;
        }
        default:
            if (CHECK_RC(rc, present ? CHM_OK : CHM_NOTFOUND) && present)
                CHECK_EQ(out, cur);
            break;
        }
        if (tl_failures() != before) {
            FAIL("%s(key index %" PRIu64 "), attempt %d", names[op], i, attempt);
            a->broken = true;
            return false;
        }
        /* now and then, in the state this operation left (a growth may be under way) */
        if (a->vctr % 8 == 0)
            return af_no_memory_reads(a, i, true);
        return true;
    }
    return false;
}

/* A full iteration as an operation: chm_iter_init may fail with CHM_ENOMEM (it may finish a
 * growth first). */
static bool af_iterate(af *a)
{
    if (a->stopped || a->broken)
        return false;
    for (int attempt = 0; attempt < 2; attempt++) {
        chm_iter it;
        int rc = chm_iter_init(&it, a->m);
        if (rc == CHM_ENOMEM) {
            chm_iter_fini(&it);
            if (!af_enomem(a, attempt, "chm_iter_init", 0))
                return false;
            continue;
        }
        chm_iter_fini(&it);
        if (!CHECK_RC(rc, CHM_OK)) {
            a->broken = true;
            return false;
        }
        return af_check(a, true);
    }
    return false;
}

/* ---- workloads ---------------------------------------------------------------------------- */

typedef void (*workload_fn)(af *a);

/* Capacity 0, then inserts through a dozen doublings, with a few removes and overwrites. */
static void wl_grow(af *a)
{
    for (uint64_t i = 0; i < 1200; i++) {
        if (!af_op(a, OP_PUT, i))
            return;
        if (i % 97 == 0 && !af_op(a, OP_REMOVE, i / 2))
            return;
        if (i % 89 == 0 && !af_op(a, OP_PUT, i / 3))
            return;
    }
}

static void wl_strings(af *a)
{
    for (uint64_t i = 0; i < 300; i++) {
        if (!af_op(a, OP_PUT, i))
            return;
        if (i % 7 == 0 && !af_op(a, OP_PUT, i / 2)) /* an overwrite keeps the stored key */
            return;
        if (i % 11 == 0 && !af_op(a, OP_REMOVE, i / 3))
            return;
        if (i % 5 == 0 && !af_op(a, OP_PIA, i + 1))
            return;
    }
}

static void wl_put_if_absent(af *a)
{
    for (uint64_t i = 0; i < 700; i++)
        if (!af_op(a, OP_PIA, (i * 7) % 500))
            return;
}

static void wl_compute(af *a)
{
    for (uint64_t i = 0; i < 700; i++)
        if (!af_op(a, OP_CIA, (i * 13) % 500))
            return;
}

/* compute_if_absent whose function allocates its value (compute_alloc_value), with removes, in
 * one segment (so every doubling of segmented's table happens inside a compute): at every
 * failure point each value the function made is in the map or went to value_free. */
static void wl_compute_alloc(af *a)
{
    for (uint64_t i = 0; i < 400; i++) {
        if (!af_op(a, OP_CIA, (i * 13) % 300))
            return;
        if (i % 7 == 6 && !af_op(a, OP_REMOVE, (i * 5) % 300))
            return;
    }
}

/* chm_compute over a growing key range: inserts (SET on absent keys, each one through a
 * growth), overwrites, deletes and keeps, with remove_if between; the decisions are the
 * function's (update_fn). A CHM_ENOMEM must come before fn ran, and leave the map unchanged. */
static void wl_update(af *a)
{
    for (uint64_t i = 0; i < 700; i++) {
        if (!af_op(a, OP_UPDATE, (i * 13) % 450))
            return;
        if (i % 11 == 10 && !af_op(a, OP_REMOVE_IF, (i * 7) % 450))
            return;
    }
}

/* The same over fewer string keys (each insert also copies its key before fn runs). */
static void wl_update_strings(af *a)
{
    for (uint64_t i = 0; i < 300; i++) {
        if (!af_op(a, OP_UPDATE, (i * 13) % 200))
            return;
        if (i % 11 == 10 && !af_op(a, OP_REMOVE_IF, (i * 7) % 200))
            return;
    }
}

/* The same with a function that mallocs its values (value_free frees them), in one segment,
 * with a chm_clear now and then (which never fails for lack of memory): no value is lost. */
static void wl_update_clear(af *a)
{
    for (uint64_t i = 0; i < 500; i++) {
        if (!af_op(a, OP_UPDATE, (i * 13) % 300))
            return;
        if (i % 150 == 149 && !af_op(a, OP_CLEAR, 0))
            return;
    }
}

/* Inserts and removes mixed at random: growth, same-size growth over deleted slots, reuse. */
static void wl_mixed(af *a)
{
    tl_rng r = tl_rng_seed(31);
    for (int n = 0; n < 2500; n++) {
        uint64_t i = tl_below(&r, 400);
        unsigned x = (unsigned)tl_below(&r, 10);
        enum op op = x < 4   ? OP_PUT
                     : x < 7 ? OP_REMOVE
                     : x < 8 ? OP_REPLACE
                     : x < 9 ? OP_PIA
                             : OP_GET;
        if (!af_op(a, op, i))
            return;
    }
}

/* Iterations between inserts: chm_iter_init may have a growth to finish. */
static void wl_iterations(af *a)
{
    for (uint64_t i = 0; i < 500; i++) {
        if (!af_op(a, OP_PUT, i))
            return;
        if (i % 23 == 0 && !af_iterate(a))
            return;
    }
}

/* Every key collides: long chains of overflow buckets, moved as a whole by each growth. */
static void wl_collide(af *a)
{
    for (uint64_t i = 0; i < 120; i++) {
        if (!af_op(a, OP_PUT, i))
            return;
        if (i % 9 == 8 && !af_op(a, OP_REMOVE, i - 4))
            return;
    }
    for (uint64_t i = 0; i < 120; i += 2)
        if (!af_op(a, OP_REMOVE, i))
            return;
    for (uint64_t i = 200; i < 260; i++)
        if (!af_op(a, OP_PIA, i))
            return;
}

/* A sized map: the first allocations are large. */
static void wl_sized(af *a)
{
    for (uint64_t i = 0; i < 300; i++)
        if (!af_op(a, OP_PUT, i * 31))
            return;
    af_iterate(a);
}

static uint64_t hash_const(uint64_t key, uint64_t seed)
{
    (void)key;
    (void)seed;
    return 0xfeedfacecafebeefULL;
}
static bool eq_u64(uint64_t x, uint64_t y)
{
    return x == y;
}
static const chm_keyops keys_const = {.hash = hash_const, .equal = eq_u64};

/* Four hash classes that share bin 0 of any table up to 64 bins and separate at 128 and 256:
 * binlock treeifies them at 64 bins and each resize then splits TreeBins into new TreeBins
 * (allocated during the transfer); the compare keeps tree lookups O(log n). */
static uint64_t hash_split(uint64_t key, uint64_t seed)
{
    (void)seed;
    return (key & 3) << 6;
}
static int cmp_u64(uint64_t x, uint64_t y)
{
    return (x > y) - (x < y);
}
static const chm_keyops keys_split_cmp = {.hash = hash_split, .equal = eq_u64, .compare = cmp_u64};

/* Tree bins: treeify, TreeBin splits by two resizes, tree inserts and removes down to untreeify,
 * then refill. */
static void wl_trees(af *a)
{
    for (uint64_t i = 0; i < 150; i++)
        if (!af_op(a, OP_PUT, i))
            return;
    for (uint64_t i = 0; i < 150; i++)
        if (i % 10 != 0 && !af_op(a, OP_REMOVE, i))
            return;
    for (uint64_t i = 0; i < 40; i++)
        if (!af_op(a, OP_PIA, 1000 + i))
            return;
    af_iterate(a);
}

/* readmostly's state machine: new keys go to dirty; gets of them miss until dirty is promoted;
 * removes leave deleted read entries; the next new key rebuilds dirty from the read index
 * (dirtyLocked, an O(n) copy) and expunges them; a put unexpunges; iteration promotes. */
static void wl_promote(af *a)
{
    uint64_t next = 0;
    for (int round = 0; round < 5; round++) {
        for (int j = 0; j < 24; j++)
            if (!af_op(a, OP_PUT, next++))
                return;
        for (int rep = 0; rep < 2; rep++)
            for (uint64_t i = 0; i < next; i++)
                if (!af_op(a, OP_GET, i))
                    return;
        for (uint64_t i = 0; i < 5; i++)
            if (!af_op(a, OP_REMOVE, (uint64_t)round * 24 + i * 3))
                return;
        for (int j = 0; j < 3; j++)
            if (!af_op(a, OP_PUT, next++))
                return;
        if (!af_op(a, OP_PUT, (uint64_t)round * 24) || !af_op(a, OP_REPLACE, next - 1))
            return;
        if (round % 2 == 1 && !af_iterate(a))
            return;
    }
}

/* One segment (concurrency 1): segmented rehashes one table through every doubling. */
static void wl_rehash(af *a)
{
    for (uint64_t i = 0; i < 250; i++) {
        if (!af_op(a, OP_PUT, i))
            return;
        if (i % 37 == 0 && !af_op(a, OP_REMOVE, i / 2))
            return;
    }
}

/* String keys whose every hash collides, with stored copies made through the library's own
 * allocator (so the k-th allocation may be a key copy) and tracked: each copy must be released
 * exactly once. A double release is reported, not performed. */
static tl_model key_copies; /* address of a live copy -> 1 */
static long key_copy_errors;
/* retain and release may run concurrently (another writer may release retired keys). */
static pthread_mutex_t key_copies_lock = PTHREAD_MUTEX_INITIALIZER;

static bool str_eq(uint64_t x, uint64_t y)
{
    return strcmp((const char *)(uintptr_t)x, (const char *)(uintptr_t)y) == 0;
}
static bool str_retain(uint64_t key, uint64_t *stored)
{
    const char *s = (const char *)(uintptr_t)key;
    size_t n = strlen(s) + 1;
    char *copy = chm__malloc(n);
    if (copy == NULL)
        return false;
    memcpy(copy, s, n);
    pthread_mutex_lock(&key_copies_lock);
    tl_model_put(&key_copies, (uint64_t)(uintptr_t)copy, 1, NULL);
    pthread_mutex_unlock(&key_copies_lock);
    *stored = (uint64_t)(uintptr_t)copy;
    return true;
}
static void str_release(uint64_t key)
{
    pthread_mutex_lock(&key_copies_lock);
    bool live = tl_model_remove(&key_copies, key, NULL);
    pthread_mutex_unlock(&key_copies_lock);
    if (!live) {
        if (key_copy_errors++ < 3)
            FAIL("keyops.release(%p): not a live stored copy (released twice?)",
                 (void *)(uintptr_t)key);
        return;
    }
    chm__free((void *)(uintptr_t)key);
}
static const chm_keyops keys_const_string = {
    .hash = hash_const, .equal = str_eq, .retain = str_retain, .release = str_release};

/* ---- the sweep ---------------------------------------------------------------------------- */

struct workload {
    const char *name;
    workload_fn fn;
    bool strings;
    const chm_keyops *keys;
    size_t capacity;
    bool inserts; /* the workload inserts: some failure must surface as CHM_ENOMEM */
    unsigned concurrency;
    bool fn_allocs; /* compute functions allocate their values (compute_alloc_value) */
};

static const struct workload workloads[] = {
    {"grow", wl_grow, false, NULL, 0, true, 0, false},
    {"strings", wl_strings, true, NULL, 0, true, 0, false},
    {"put_if_absent", wl_put_if_absent, false, NULL, 0, true, 0, false},
    {"compute_if_absent", wl_compute, false, NULL, 0, true, 0, false},
    {"compute_allocating", wl_compute_alloc, false, NULL, 0, true, 1, true},
    {"mixed", wl_mixed, false, NULL, 0, true, 0, false},
    {"iterations", wl_iterations, false, NULL, 0, true, 0, false},
    {"collide", wl_collide, false, &keys_const, 0, true, 0, false},
    {"sized", wl_sized, false, NULL, 2000, true, 0, false},
    {"collide_strings", wl_collide, true, &keys_const_string, 0, true, 0, false},
    {"trees", wl_trees, false, &keys_split_cmp, 0, true, 0, false},
    {"promote", wl_promote, false, NULL, 0, true, 0, false},
    {"rehash_one_segment", wl_rehash, false, NULL, 0, true, 1, false},
    {"compute", wl_update, false, NULL, 0, true, 0, false},
    {"compute_strings", wl_update_strings, true, NULL, 0, true, 0, false},
    {"compute_allocating_clear", wl_update_clear, false, NULL, 0, true, 1, true},
};

/* One run with the k-th allocation failing. Returns true if the k-th allocation happened. */
static bool run_once(const chm_backend *b, const struct workload *w, uint64_t k, bool stop_mode,
                     int *enomem_total)
{
    af a;
    memset(&a, 0, sizeof a);
    a.b = b;
    a.wl = w->name;
    a.k = k;
    a.stop_mode = stop_mode;
    a.strings = w->strings;
    a.fn_allocs = w->fn_allocs;
    atomic_store(&fn_blocks, 0);
    tl_model_init(&a.model);
    tl_model_init(&a.left);
    tl_freelog_init(&a.log, true);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.capacity = w->capacity;
    o.concurrency = w->concurrency;
    o.keys = w->keys != NULL ? w->keys : w->strings ? &chm_keys_string : NULL;
    o.seed = 0x5eed0001; /* fixed: the same allocations in every run */
    tl_model_clear(&key_copies);
    key_copy_errors = 0;
    o.value_free = w->fn_allocs ? free_alloc_value : tl_freelog_cb;
    o.ctx = &a.log;

    long before = tl_failures();
    chm__alloc_fail_nth(k);
    errno = 0;
    a.m = chm_new(b, &o);
    bool injected;
    if (a.m == NULL) {
        injected = chm__alloc_count() >= k;
        CHECK(injected); /* chm_new fails only when an allocation failed */
        CHECK_EQ(errno, ENOMEM);
        (*enomem_total)++;
    } else {
        w->fn(&a);
        if (!a.stopped && !a.broken)
            af_check(&a, true);
        injected = chm__alloc_count() >= k;
        /* what is still in the map leaves at chm_free */
        size_t pos = 0;
        uint64_t i, v;
        while (tl_model_slot(&a.model, &pos, &i, &v))
            af_left(&a, v);
        chm_free(a.m);
        CHECK(a.enomem <= 1);
        if (!injected)
            CHECK_EQ(a.enomem, 0);
        *enomem_total += a.enomem;
        /* value_free: exactly the multiset of values that left */
        CHECK_EQ(tl_freelog_calls(&a.log), a.left_total);
        pos = 0;
        int bad = 0;
        while (tl_model_slot(&a.left, &pos, &v, &i)) {
            uint64_t got = 0;
            tl_model_get(&a.log.freed, v, &got);
            if (got != i && bad++ < 3)
                FAIL("value 0x%" PRIx64 " freed %" PRIu64 " times, want %" PRIu64, v, got, i);
        }
    }
    long live = chm__alloc_live();
    chm__alloc_disarm();
    CHECK_EQ(live, 0);
    if (!CHECK_EQ(atomic_load(&fn_blocks), 0)) /* after chm_free: every value freed */
        FAIL("values made by compute functions leaked (lost by the map)");
    CHECK_EQ(tl_model_size(&key_copies), 0); /* every stored key copy was released */
    if (tl_failures() != before)
        FAIL("backend %s, workload %s, %s mode: allocation %" PRIu64 " failed (%s)",
             chm_backend_name(b), w->name, stop_mode ? "stop" : "continue", k,
             injected ? "injected" : "not reached");
    tl_model_fini(&a.model);
    tl_model_fini(&a.left);
    tl_freelog_fini(&a.log);
    return injected;
}

/* ---- allocation sites ------------------------------------------------------------------------
 * The hook in src/alloc.c records each call site ("file:line") reached while armed, and whether
 * the failing allocation was there. Per backend, over every workload and both modes, every site
 * reached must have been failed at least once: a site that is reached but never failed is an
 * out-of-memory path these workloads do not test. */

#define MAX_BACKENDS 8
#define MAX_SITES 256

struct site_acc {
    const char *site;
    uint64_t reached, failed;
};
static struct site_acc site_acc[MAX_BACKENDS][MAX_SITES];
static size_t site_n[MAX_BACKENDS];

static size_t backend_index(const chm_backend *b)
{
    size_t i = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL && *p != b; p++)
        i++;
    return i < MAX_BACKENDS ? i : MAX_BACKENDS - 1;
}

static const char *site_base(const char *site)
{
    const char *slash = strrchr(site, '/');
    return slash != NULL ? slash + 1 : site;
}

/* Add the hook's table to the backend's totals (sites merged by text: one call site may have
 * several copies of its literal when it sits in an inline function of a header). */
static void merge_sites(const chm_backend *b)
{
    struct chm__alloc_site got[MAX_SITES];
    size_t n = chm__alloc_sites(got, MAX_SITES);
    if (!CHECK(n <= MAX_SITES))
        n = MAX_SITES;
    size_t bi = backend_index(b);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < site_n[bi] && strcmp(site_acc[bi][j].site, got[i].site) != 0)
            j++;
        if (j == site_n[bi]) {
            if (!CHECK(j < MAX_SITES))
                return;
            site_acc[bi][j] = (struct site_acc){got[i].site, 0, 0};
            site_n[bi]++;
        }
        site_acc[bi][j].reached += got[i].reached;
        site_acc[bi][j].failed += got[i].failed;
    }
}

static void test_sites(const chm_backend *b)
{
    size_t bi = backend_index(b), failed = 0;
    char line[2048];
    size_t len = 0;
    line[0] = '\0';
    for (size_t j = 0; j < site_n[bi]; j++) {
        const struct site_acc *s = &site_acc[bi][j];
        if (s->failed > 0)
            failed++;
        else
            FAIL("allocation site %s reached %" PRIu64 " times, never failed", s->site, s->reached);
        if (len < sizeof line - 64)
            len += (size_t)snprintf(line + len, sizeof line - len, "%s%s %" PRIu64 "/%" PRIu64,
                                    j ? ", " : "", site_base(s->site), s->failed, s->reached);
    }
    tl_note("%s: allocation sites reached: %zu, failed at least once: %zu", chm_backend_name(b),
            site_n[bi], failed);
    tl_note("%s: site failed/reached: %s", chm_backend_name(b), line);
    CHECK(site_n[bi] > 0);
    CHECK_EQ(failed, site_n[bi]);
}

static void sweep(const chm_backend *b, const struct workload *w)
{
    for (int mode = 0; mode < 2; mode++) {
        int enomem_total = 0;
        uint64_t k = 1;
        /* The plain build fails every allocation in turn. The sanitizer builds, 5-20x slower,
         * fail every one of the first 64 and then every 2nd (ASan) or 5th (TSan): the same
         * allocation sites recur all along a workload, so each is still hit many times; a site
         * that the stride happened to skip is failed afterwards at the first attempt where a run
         * reached it before its failure point (runs are deterministic up to that point). */
        uint64_t stride = TL_TSAN ? 5 : TL_ASAN ? 2 : 1;
        chm__alloc_sites_reset();
        for (; k < 200000; k += k < 64 ? 1 : stride) {
            if (!run_once(b, w, k, mode == 1, &enomem_total))
                break;
            if (tl_failures() != 0)
                return;
        }
        if (!CHECK(k > 1 && k < 200000))
            return;
        struct chm__alloc_site got[MAX_SITES];
        size_t n = chm__alloc_sites(got, MAX_SITES);
        for (size_t i = 0; i < n && i < MAX_SITES; i++) {
            if (got[i].failed > 0 || got[i].first_before == 0)
                continue;
            run_once(b, w, got[i].first_before, mode == 1, &enomem_total);
            if (tl_failures() != 0)
                return;
        }
        merge_sites(b);
        /* failures were not all swallowed: inserts that cannot allocate say so */
        if (w->inserts)
            CHECK(enomem_total > 0);
        if (mode == 0)
            tl_note("%s/%s: %" PRIu64 " allocations, %d failed with CHM_ENOMEM or NULL",
                    chm_backend_name(b), w->name, k - 1, enomem_total);
    }
}

static const struct workload *current;

static void test_workload(const chm_backend *b)
{
    sweep(b, current);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(280); /* a hang (say, in chm_free's drain) fails naming its sub-test */
    tl_model_init(&key_copies);
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "alloc_fail_%s", workloads[i].name);
        current = &workloads[i];
        tl_each_backend(name, test_workload, NULL);
    }
    tl_each_backend("alloc_sites", test_sites, NULL);
    tl_model_fini(&key_copies);
    return tl_finish();
}
