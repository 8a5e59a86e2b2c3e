/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_concurrency.c - every thread-safe backend (chm_backend_thread_safe) under 2-4 threads.
 *
 *   disjoint_inserts  threads insert disjoint keys into a capacity-0 map (concurrent growth);
 *                     then the content is exact (size, gets, iteration, value_free at chm_free)
 *   put_if_absent     threads race put_if_absent on the same keys: exactly one CHM_OK per key,
 *                     the others get CHM_EXISTS and see the winner's value; losers' values are
 *                     never freed
 *   compute_if_absent threads race on the same absent keys: the function runs exactly once per
 *                     key, exactly one caller gets CHM_OK and every caller sees the same value
 *   readers_writers   every value is derived from its key (v == f(key, version)), so a reader
 *                     (get or iteration) never sees a torn or foreign value
 *   churn             inserts and removes from all threads: size == prefill + inserts - removes;
 *                     every value that entered the map leaves it exactly once (count, sum and a
 *                     hash of the multiset), and the out-values of the operations add up
 *   overwrite_storm   all threads overwrite a few keys: every replaced value is freed once
 *   iterate_while_growing  two threads grow a capacity-0 map while two iterate it: every entry
 *                     returned is one that was put, once (fail-fast backends may stop with
 *                     CHM_ECONCURRENT), and the final content is exact
 *   string_keys_churn string keys put / removed / read from four threads through buffers that
 *                     are overwritten after each call; size and iteration consistent at the end
 *   compute_counter   two threads chm_compute +1 on one key a million times each: the key ends
 *                     at exactly 2,000,000 (chm_compute's atomicity, always run and asserted in
 *                     full in the plain build; scaled under sanitizers), fn ran once per call,
 *                     value_free saw every replaced count once
 *   compute_counters_growing  four threads increment 64 keys with chm_compute while inserting
 *                     new keys (the table grows under the computes): every counter exact
 *   remove_if_token   a token (the value of one key) passed between four threads that all try
 *                     remove_if(key, token): the winner puts token + 1; exactly one win per
 *                     token, the losers get CHM_EXISTS (a newer token) or CHM_NOTFOUND
 *   clear_concurrent  chm_clear in a loop while two threads put and one gets and iterates; then
 *                     chm__validate, and value_free count == values put - values present, exact
 *   visit_pointer_values  values are malloc'd objects with a magic field, value_free poisons and
 *                     frees them; two threads replace and remove (put, remove, remove_if,
 *                     compute) while two chm_visit them and check the magic (ASan / TSan report
 *                     any visit of a freed object)
 *
 * The rwlock backend runs three times, once per lock kind (tl_lock_kind). Operation counts
 * scale with tl_scale() so the ThreadSanitizer build stays well under a minute.
 */
#include "testlib.h"

#include "chm_internal.h" /* chm__validate */
#include "smr.h"          /* chm__smr_barrier: deferred frees done */

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static chm_rwlock_kind g_kind; /* the rwlock kind of the current pass (ignored by the others) */

static chm *new_map(const chm_backend *b, size_t capacity, tl_freelog *log)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.capacity = capacity;
    o.rwlock = g_kind;
    if (log != NULL) {
        o.value_free = tl_freelog_cb;
        o.ctx = log;
    }
    chm *m = chm_new(b, &o);
    CHECK(m != NULL);
    return m;
}

static uint64_t f_of(uint64_t key)
{
    return tl_mix(key ^ 0xabcdef);
}

/* ---- disjoint inserts --------------------------------------------------------------------- */

struct disjoint {
    chm *m;
    int nthreads;
    uint64_t per_thread;
    tl_barrier start;
};

static uint64_t disjoint_key(int t, uint64_t i, int nthreads)
{
    return (i * (uint64_t)nthreads + (uint64_t)t) * 0x9e3779b97f4a7c15ULL;
}

static void disjoint_worker(int t, void *arg)
{
    struct disjoint *d = arg;
    tl_barrier_wait(&d->start);
    for (uint64_t i = 0; i < d->per_thread; i++) {
        uint64_t k = disjoint_key(t, i, d->nthreads);
        if (!CHECK_RC(chm_put(d->m, k, f_of(k), NULL), CHM_OK))
            return;
        /* our own earlier keys are all still there */
        if (i % 64 == 63) {
            uint64_t j = i / 2, v = 0, kj = disjoint_key(t, j, d->nthreads);
            if (!CHECK_RC(chm_get(d->m, kj, &v), CHM_OK) || !CHECK_EQ(v, f_of(kj)))
                return;
        }
    }
}

static void test_disjoint_inserts(const chm_backend *b)
{
    for (int nthreads = 2; nthreads <= 4 && tl_failures() == 0; nthreads++) {
        tl_freelog log;
        tl_freelog_init(&log, false);
        struct disjoint d = {.m = new_map(b, 0, &log), .nthreads = nthreads};
        if (d.m == NULL)
            return;
        d.per_thread = tl_scaled(120000, 4000) / (uint64_t)nthreads;
        tl_barrier_init(&d.start, (unsigned)nthreads);
        tl_run_threads(nthreads, disjoint_worker, &d);
        uint64_t n = d.per_thread * (uint64_t)nthreads, sum = 0;
        tl_model model;
        tl_model_init(&model);
        for (int t = 0; t < nthreads; t++)
            for (uint64_t i = 0; i < d.per_thread; i++) {
                uint64_t k = disjoint_key(t, i, nthreads);
                tl_model_put(&model, k, f_of(k), NULL);
                sum += f_of(k);
            }
        CHECK_EQ(tl_model_size(&model), n);
        tl_map_equals_model(d.m, &model);
        CHECK_EQ(tl_freelog_calls(&log), 0);
        chm_free(d.m);
        CHECK_EQ(tl_freelog_calls(&log), n);
        CHECK_EQ(atomic_load(&log.sum), sum);
        tl_model_fini(&model);
        tl_freelog_fini(&log);
    }
}

/* ---- put_if_absent race ------------------------------------------------------------------- */

#define RACE_THREADS 4

struct pia_race {
    chm *m;
    uint64_t nkeys;
    tl_barrier start;
    int rc[RACE_THREADS][1024];
    uint64_t seen[RACE_THREADS][1024];
};

static uint64_t race_value(int t, uint64_t k)
{
    return ((uint64_t)(t + 1) << 56) | k;
}

static void pia_worker(int t, void *arg)
{
    struct pia_race *r = arg;
    tl_barrier_wait(&r->start);
    /* each thread walks the keys from its own starting point */
    for (uint64_t n = 0; n < r->nkeys; n++) {
        uint64_t k = (n + (uint64_t)t * 7) % r->nkeys;
        uint64_t cur = ~0ULL;
        int rc = chm_put_if_absent(r->m, k, race_value(t, k), &cur);
        r->rc[t][k] = rc;
        r->seen[t][k] = rc == CHM_EXISTS ? cur : race_value(t, k);
    }
}

static void test_put_if_absent_race(const chm_backend *b)
{
    struct pia_race *r = calloc(1, sizeof *r);
    r->nkeys = 1024;
    uint64_t rounds = tl_scaled(60, 6);
    double deadline = tl_now() + tl_budget();
    for (uint64_t round = 0; round < rounds && tl_failures() == 0; round++) {
        if (round >= 3 && tl_now() > deadline)
            break;
        tl_freelog log;
        tl_freelog_init(&log, false);
        r->m = new_map(b, round % 2 == 0 ? 0 : r->nkeys, &log);
        if (r->m == NULL)
            break;
        tl_barrier_init(&r->start, RACE_THREADS);
        tl_run_threads(RACE_THREADS, pia_worker, r);
        uint64_t winners_sum = 0;
        for (uint64_t k = 0; k < r->nkeys; k++) {
            uint64_t final = 0;
            if (!CHECK_RC(chm_get(r->m, k, &final), CHM_OK))
                break;
            int wins = 0, winner = -1;
            for (int t = 0; t < RACE_THREADS; t++) {
                if (r->rc[t][k] == CHM_OK) {
                    wins++;
                    winner = t;
                } else {
                    CHECK_RC(r->rc[t][k], CHM_EXISTS);
                }
                /* every thread saw the winner's value: its own, or the one that stayed */
                CHECK_EQ(r->seen[t][k], final);
            }
            if (!CHECK_EQ(wins, 1)) {
                FAIL("key %" PRIu64 ": %d winners", k, wins);
                break;
            }
            CHECK_EQ(final, race_value(winner, k));
            winners_sum += final;
        }
        CHECK_EQ(chm_size(r->m), r->nkeys);
        chm_free(r->m);
        /* losers' values never entered the map and are never freed */
        CHECK_EQ(tl_freelog_calls(&log), r->nkeys);
        CHECK_EQ(atomic_load(&log.sum), winners_sum);
        tl_freelog_fini(&log);
    }
    free(r);
}

/* ---- compute_if_absent race --------------------------------------------------------------- */

struct cia_race {
    chm *m;
    uint64_t nkeys;
    tl_barrier start;
    atomic_uint calls[1024];
    atomic_int caller[1024]; /* the thread whose fn ran */
    int rc[RACE_THREADS][1024];
    uint64_t seen[RACE_THREADS][1024];
};

struct cia_arg {
    struct cia_race *r;
    int t;
};

static uint64_t cia_fn(uint64_t key, void *arg)
{
    struct cia_arg *a = arg;
    atomic_fetch_add_explicit(&a->r->calls[key], 1, memory_order_relaxed);
    atomic_store_explicit(&a->r->caller[key], a->t, memory_order_relaxed);
    return race_value(a->t, key);
}

static void cia_worker(int t, void *arg)
{
    struct cia_race *r = arg;
    struct cia_arg a = {r, t};
    tl_barrier_wait(&r->start);
    for (uint64_t n = 0; n < r->nkeys; n++) {
        uint64_t k = (n + (uint64_t)t * 5) % r->nkeys;
        uint64_t v = ~0ULL;
        r->rc[t][k] = chm_compute_if_absent(r->m, k, cia_fn, &a, &v);
        r->seen[t][k] = v;
    }
}

static void test_compute_if_absent_race(const chm_backend *b)
{
    struct cia_race *r = calloc(1, sizeof *r);
    r->nkeys = 1024;
    uint64_t rounds = tl_scaled(60, 6);
    double deadline = tl_now() + tl_budget();
    for (uint64_t round = 0; round < rounds && tl_failures() == 0; round++) {
        if (round >= 3 && tl_now() > deadline)
            break;
        r->m = new_map(b, round % 2 == 0 ? 0 : r->nkeys, NULL);
        if (r->m == NULL)
            break;
        for (uint64_t k = 0; k < r->nkeys; k++) {
            atomic_init(&r->calls[k], 0);
            atomic_init(&r->caller[k], -1);
        }
        tl_barrier_init(&r->start, RACE_THREADS);
        tl_run_threads(RACE_THREADS, cia_worker, r);
        for (uint64_t k = 0; k < r->nkeys; k++) {
            unsigned calls = atomic_load_explicit(&r->calls[k], memory_order_relaxed);
            if (!CHECK_EQ(calls, 1)) {
                FAIL("key %" PRIu64 ": the function ran %u times", k, calls);
                break;
            }
            int ran_in = atomic_load_explicit(&r->caller[k], memory_order_relaxed);
            uint64_t final = 0;
            CHECK_RC(chm_get(r->m, k, &final), CHM_OK);
            CHECK_EQ(final, race_value(ran_in, k));
            int oks = 0;
            for (int t = 0; t < RACE_THREADS; t++) {
                if (r->rc[t][k] == CHM_OK) {
                    oks++;
                    CHECK_EQ(t, ran_in); /* OK exactly for the caller whose fn ran */
                } else {
                    CHECK_RC(r->rc[t][k], CHM_EXISTS);
                }
                CHECK_EQ(r->seen[t][k], final); /* every caller sees the installed value */
            }
            if (!CHECK_EQ(oks, 1))
                break;
        }
        CHECK_EQ(chm_size(r->m), r->nkeys);
        chm_free(r->m);
    }
    free(r);
}

/* ---- readers against writers -------------------------------------------------------------- */

#define RW_RANGE 1024

static uint64_t versioned(uint64_t key, uint64_t version)
{
    return (f_of(key) & ~(uint64_t)0xffff) | (version & 0xffff);
}

static bool valid_value(uint64_t key, uint64_t v)
{
    return (v & ~(uint64_t)0xffff) == (f_of(key) & ~(uint64_t)0xffff);
}

struct rw_test {
    chm *m;
    uint64_t writer_ops;
    double deadline;
    atomic_int writers_left;
    atomic_ulong reads_ok, iterations;
    tl_barrier start;
};

static uint64_t rw_compute(uint64_t key, void *arg)
{
    return versioned(key, *(uint64_t *)arg);
}

static void rw_writer(struct rw_test *w, int t)
{
    tl_rng r = tl_rng_seed(1000 + (uint64_t)t);
    for (uint64_t n = 0; n < w->writer_ops; n++) {
        if (n % 256 == 255 && tl_now() > w->deadline)
            break;
        uint64_t k = tl_below(&r, RW_RANGE), ver = n, out = 0;
        int rc = CHM_OK;
        switch (tl_below(&r, 5)) {
        case 0:
            rc = chm_put(w->m, k, versioned(k, ver), &out);
            if (rc == CHM_EXISTS && !CHECK(valid_value(k, out)))
                return;
            break;
        case 1:
            rc = chm_remove(w->m, k, &out);
            if (rc == CHM_OK && !CHECK(valid_value(k, out)))
                return;
            break;
        case 2:
            rc = chm_put_if_absent(w->m, k, versioned(k, ver), &out);
            if (rc == CHM_EXISTS && !CHECK(valid_value(k, out)))
                return;
            break;
        case 3:
            if (chm_get(w->m, k, &out) == CHM_OK) {
                if (!CHECK(valid_value(k, out)))
                    return;
                rc = chm_replace(w->m, k, out, versioned(k, ver));
                if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS || rc == CHM_NOTFOUND))
                    return;
            }
            break;
        default:
            rc = chm_compute_if_absent(w->m, k, rw_compute, &ver, &out);
            if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS) || !CHECK(valid_value(k, out)))
                return;
            break;
        }
        if (!CHECK(rc >= 0))
            return;
    }
}

static void rw_reader(struct rw_test *w, int t)
{
    tl_rng r = tl_rng_seed(2000 + (uint64_t)t);
    unsigned long ok = 0, iters = 0;
    unsigned char *seen = malloc(RW_RANGE);
    do { /* at least one round, however late this thread is scheduled */
        for (int i = 0; i < 256; i++) {
            uint64_t k = tl_below(&r, RW_RANGE), v = 0;
            int rc = chm_get(w->m, k, &v);
            if (rc == CHM_OK) {
                ok++;
                if (!CHECK(valid_value(k, v))) {
                    FAIL("get(%" PRIu64 ") returned 0x%" PRIx64 ", not a value of that key", k, v);
                    goto out;
                }
            } else if (!CHECK_RC(rc, CHM_NOTFOUND)) {
                goto out;
            }
        }
        /* an iteration: every entry is a key of the range with one of its values, once */
        memset(seen, 0, RW_RANGE);
        chm_iter it;
        if (!CHECK_RC(chm_iter_init(&it, w->m), CHM_OK))
            goto out;
        uint64_t k, v;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            if (!CHECK(k < RW_RANGE) || !CHECK(valid_value(k, v)) || !CHECK(!seen[k])) {
                FAIL("iteration returned key %" PRIu64 " value 0x%" PRIx64, k, v);
                chm_iter_fini(&it);
                goto out;
            }
            seen[k] = 1;
        }
        chm_iter_fini(&it);
        if (rc == CHM_END)
            iters++;
        else if (!CHECK_RC(rc, CHM_ECONCURRENT) || !CHECK(tl_fail_fast(chm_map_backend(w->m))))
            goto out;
    } while (atomic_load_explicit(&w->writers_left, memory_order_acquire) > 0);
out:
    free(seen);
    atomic_fetch_add_explicit(&w->reads_ok, ok, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->iterations, iters, memory_order_relaxed);
}

static void rw_worker(int t, void *arg)
{
    struct rw_test *w = arg;
    tl_barrier_wait(&w->start);
    if (t < 2) {
        rw_writer(w, t);
        atomic_fetch_sub_explicit(&w->writers_left, 1, memory_order_release);
    } else {
        rw_reader(w, t);
    }
}

static void test_readers_writers(const chm_backend *b)
{
    struct rw_test w;
    memset(&w, 0, sizeof w);
    w.m = new_map(b, 0, NULL);
    if (w.m == NULL)
        return;
    for (uint64_t k = 0; k < RW_RANGE; k += 2)
        chm_put(w.m, k, versioned(k, 0), NULL);
    w.writer_ops = tl_scaled(400000, 20000);
    w.deadline = tl_now() + tl_budget();
    atomic_init(&w.writers_left, 2);
    atomic_init(&w.reads_ok, 0);
    atomic_init(&w.iterations, 0);
    tl_barrier_init(&w.start, 4);
    tl_run_threads(4, rw_worker, &w);
    CHECK(atomic_load(&w.reads_ok) > 0); /* the readers did read something */
    tl_note("readers: %lu successful gets, %lu complete iterations", atomic_load(&w.reads_ok),
            atomic_load(&w.iterations));
    /* the final content is consistent too */
    tl_model seen;
    tl_model_init(&seen);
    CHECK_RC(tl_collect(w.m, &seen), CHM_END);
    CHECK_EQ(tl_model_size(&seen), chm_size(w.m));
    size_t pos = 0;
    uint64_t k, v;
    while (tl_model_slot(&seen, &pos, &k, &v))
        if (!CHECK(k < RW_RANGE && valid_value(k, v)))
            break;
    tl_model_fini(&seen);
    chm_free(w.m);
}

/* ---- churn: size and value accounting ----------------------------------------------------- */

#define CHURN_RANGE 4096
#define CHURN_THREADS 4

struct churn_stats {
    uint64_t inserts, removes;                    /* successful */
    uint64_t entered_n, entered_sum, entered_xor; /* values that entered the map */
    uint64_t out_n, out_sum, out_xor; /* values that left, as the operations reported them */
};

struct churn {
    chm *m;
    uint64_t ops;
    double deadline;
    tl_barrier start;
    struct churn_stats st[CHURN_THREADS];
};

static void st_enter(struct churn_stats *s, uint64_t v)
{
    s->entered_n++;
    s->entered_sum += v;
    s->entered_xor ^= tl_mix(v);
}

static void st_out(struct churn_stats *s, uint64_t v)
{
    s->out_n++;
    s->out_sum += v;
    s->out_xor ^= tl_mix(v);
}

static uint64_t churn_compute(uint64_t key, void *arg)
{
    (void)key;
    return *(uint64_t *)arg;
}

static void churn_worker(int t, void *arg)
{
    struct churn *c = arg;
    struct churn_stats *s = &c->st[t];
    tl_rng r = tl_rng_seed(3000 + (uint64_t)t);
    tl_barrier_wait(&c->start);
    for (uint64_t n = 0; n < c->ops; n++) {
        if (n % 256 == 255 && tl_now() > c->deadline)
            break;
        uint64_t k = tl_below(&r, CHURN_RANGE);
        uint64_t v = ((uint64_t)(t + 1) << 48) | (n + 1); /* unique over the whole test */
        uint64_t out = 0;
        int rc;
        switch (tl_below(&r, 6)) {
        case 0:
            rc = chm_put(c->m, k, v, &out);
            if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS))
                return;
            st_enter(s, v);
            if (rc == CHM_OK)
                s->inserts++;
            else
                st_out(s, out);
            break;
        case 1:
            rc = chm_put_if_absent(c->m, k, v, &out);
            if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS))
                return;
            if (rc == CHM_OK) {
                s->inserts++;
                st_enter(s, v);
            }
            break;
        case 2:
        case 3:
            rc = chm_remove(c->m, k, &out);
            if (!CHECK(rc == CHM_OK || rc == CHM_NOTFOUND))
                return;
            if (rc == CHM_OK) {
                s->removes++;
                st_out(s, out);
            }
            break;
        case 4:
            rc = chm_get(c->m, k, &out);
            if (rc == CHM_OK) {
                rc = chm_replace(c->m, k, out, v);
                if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS || rc == CHM_NOTFOUND))
                    return;
                if (rc == CHM_OK) {
                    st_enter(s, v);
                    st_out(s, out);
                }
            }
            break;
        default:
            rc = chm_compute_if_absent(c->m, k, churn_compute, &v, &out);
            if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS))
                return;
            if (rc == CHM_OK) {
                CHECK_EQ(out, v);
                s->inserts++;
                st_enter(s, v);
            }
            break;
        }
    }
}

static void test_churn(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    struct churn *c = calloc(1, sizeof *c);
    c->m = new_map(b, 0, &log);
    if (c->m == NULL)
        goto out;
    struct churn_stats total = {0};
    uint64_t prefill = 1000;
    for (uint64_t k = 0; k < prefill; k++) {
        uint64_t v = ((uint64_t)0xff << 48) | k;
        CHECK_RC(chm_put(c->m, k * 4, v, NULL), CHM_OK);
        st_enter(&total, v);
    }
    c->ops = tl_scaled(400000, 20000);
    c->deadline = tl_now() + tl_budget();
    tl_barrier_init(&c->start, CHURN_THREADS);
    tl_run_threads(CHURN_THREADS, churn_worker, c);
    for (int t = 0; t < CHURN_THREADS; t++) {
        total.inserts += c->st[t].inserts;
        total.removes += c->st[t].removes;
        total.entered_n += c->st[t].entered_n;
        total.entered_sum += c->st[t].entered_sum;
        total.entered_xor ^= c->st[t].entered_xor;
        total.out_n += c->st[t].out_n;
        total.out_sum += c->st[t].out_sum;
        total.out_xor ^= c->st[t].out_xor;
    }
    size_t size = chm_size(c->m);
    CHECK_EQ(size, prefill + total.inserts - total.removes);
    CHECK(total.inserts > 0 && total.removes > 0);
    /* what is left, by iteration: the values that entered and did not leave */
    tl_model rest;
    tl_model_init(&rest);
    CHECK_RC(tl_collect(c->m, &rest), CHM_END);
    CHECK_EQ(tl_model_size(&rest), size);
    uint64_t rest_sum = 0, rest_xor = 0;
    size_t pos = 0;
    uint64_t k, v;
    while (tl_model_slot(&rest, &pos, &k, &v)) {
        rest_sum += v;
        rest_xor ^= tl_mix(v);
        uint64_t got = 0;
        CHECK(k < CHURN_RANGE);
        CHECK_RC(chm_get(c->m, k, &got), CHM_OK);
        CHECK_EQ(got, v);
    }
    CHECK_EQ(total.out_n + size, total.entered_n);
    CHECK_EQ(total.out_sum + rest_sum, total.entered_sum);
    CHECK_EQ(total.out_xor ^ rest_xor, total.entered_xor);
    /* value_free: exactly the values that left, each once */
    CHECK(tl_freelog_calls(&log) <= total.out_n);
    chm_free(c->m);
    CHECK_EQ(tl_freelog_calls(&log), total.entered_n);
    CHECK_EQ(atomic_load(&log.sum), total.entered_sum);
    CHECK_EQ(atomic_load(&log.xor_mix), total.entered_xor);
    tl_model_fini(&rest);
out:
    free(c);
    tl_freelog_fini(&log);
}

/* ---- overwrite storm ---------------------------------------------------------------------- */

struct storm {
    chm *m;
    uint64_t ops;
    double deadline;
    uint64_t done[4];
    tl_barrier start;
    uint64_t sum[4], xr[4], old_sum[4];
};

static void storm_worker(int t, void *arg)
{
    struct storm *s = arg;
    tl_barrier_wait(&s->start);
    for (uint64_t n = 0; n < s->ops; n++) {
        if (n % 256 == 255 && tl_now() > s->deadline)
            break;
        uint64_t v = ((uint64_t)(t + 1) << 40) | n, old = 0;
        s->done[t]++;
        int rc = chm_put(s->m, n % 16, v, &old);
        if (!CHECK_RC(rc, CHM_EXISTS))
            return;
        s->sum[t] += v;
        s->xr[t] ^= tl_mix(v);
        s->old_sum[t] += old;
    }
}

static void test_overwrite_storm(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    struct storm s;
    memset(&s, 0, sizeof s);
    s.m = new_map(b, 0, &log);
    if (s.m == NULL)
        goto out;
    uint64_t sum = 0, xr = 0, old_sum = 0;
    for (uint64_t k = 0; k < 16; k++) {
        chm_put(s.m, k, k, NULL);
        sum += k;
        xr ^= tl_mix(k);
    }
    s.ops = tl_scaled(500000, 20000);
    s.deadline = tl_now() + tl_budget();
    tl_barrier_init(&s.start, 4);
    tl_run_threads(4, storm_worker, &s);
    for (int t = 0; t < 4; t++) {
        sum += s.sum[t];
        xr ^= s.xr[t];
        old_sum += s.old_sum[t];
    }
    uint64_t rest = 0;
    for (uint64_t k = 0; k < 16; k++) {
        uint64_t v = 0;
        CHECK_RC(chm_get(s.m, k, &v), CHM_OK);
        rest += v;
    }
    CHECK_EQ(old_sum + rest, sum); /* every replaced value was reported exactly once */
    CHECK_EQ(chm_size(s.m), 16);
    chm_free(s.m);
    CHECK_EQ(tl_freelog_calls(&log), 16 + s.done[0] + s.done[1] + s.done[2] + s.done[3]);
    CHECK_EQ(atomic_load(&log.sum), sum);
    CHECK_EQ(atomic_load(&log.xor_mix), xr);
out:
    tl_freelog_fini(&log);
}

/* ---- iteration while other threads grow the map ------------------------------------------- */

struct grow_iter {
    chm *m;
    uint64_t per_writer;
    double deadline;
    uint64_t done[2];
    atomic_int writers_left;
    atomic_ulong complete, concurrent;
    tl_barrier start;
};

static void grow_iter_worker(int t, void *arg)
{
    struct grow_iter *g = arg;
    tl_barrier_wait(&g->start);
    if (t < 2) {
        for (uint64_t i = 0; i < g->per_writer; i++) {
            if (i % 256 == 255 && tl_now() > g->deadline)
                break;
            uint64_t k = i * 2 + (uint64_t)t;
            if (!CHECK_RC(chm_put(g->m, k, f_of(k), NULL), CHM_OK))
                break;
            g->done[t]++;
        }
        atomic_fetch_sub_explicit(&g->writers_left, 1, memory_order_release);
        return;
    }
    /* iterators: each entry is a key some writer put, with its value, once */
    tl_model seen;
    tl_model_init(&seen);
    do {
        tl_model_clear(&seen);
        chm_iter it;
        if (!CHECK_RC(chm_iter_init(&it, g->m), CHM_OK))
            break;
        uint64_t k, v;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
            if (!CHECK(k < 2 * g->per_writer && v == f_of(k)) ||
                !CHECK(tl_model_put(&seen, k, v, NULL))) {
                FAIL("iteration returned key %" PRIu64 " value 0x%" PRIx64, k, v);
                rc = CHM_EINVAL;
                break;
            }
        }
        chm_iter_fini(&it);
        if (rc == CHM_END)
            atomic_fetch_add_explicit(&g->complete, 1, memory_order_relaxed);
        else if (rc == CHM_ECONCURRENT && tl_fail_fast(chm_map_backend(g->m)))
            atomic_fetch_add_explicit(&g->concurrent, 1, memory_order_relaxed);
        else {
            CHECK_RC(rc, CHM_END);
            break;
        }
    } while (atomic_load_explicit(&g->writers_left, memory_order_acquire) > 0);
    tl_model_fini(&seen);
}

static void test_iterate_while_growing(const chm_backend *b)
{
    struct grow_iter g;
    memset(&g, 0, sizeof g);
    g.m = new_map(b, 0, NULL);
    if (g.m == NULL)
        return;
    g.per_writer = tl_scaled(150000, 10000);
    g.deadline = tl_now() + tl_budget();
    atomic_init(&g.writers_left, 2);
    tl_barrier_init(&g.start, 4);
    tl_run_threads(4, grow_iter_worker, &g);
    CHECK_EQ(chm_size(g.m), g.done[0] + g.done[1]);
    tl_note("iterations: %lu complete, %lu ended by CHM_ECONCURRENT", atomic_load(&g.complete),
            atomic_load(&g.concurrent));
    /* afterwards, a full iteration is exact */
    tl_model all;
    tl_model_init(&all);
    CHECK_RC(tl_collect(g.m, &all), CHM_END);
    CHECK_EQ(tl_model_size(&all), g.done[0] + g.done[1]);
    for (int t = 0; t < 2; t++)
        for (uint64_t i = 0; i < g.done[t]; i++) {
            uint64_t v = 0;
            if (!CHECK(tl_model_get(&all, i * 2 + (uint64_t)t, &v) &&
                       v == f_of(i * 2 + (uint64_t)t)))
                break;
        }
    tl_model_fini(&all);
    chm_free(g.m);
}

/* ---- string keys from several threads ----------------------------------------------------- */

#define STR_RANGE 512

struct str_churn {
    chm *m;
    uint64_t ops;
    double deadline;
    tl_barrier start;
    long inserts[4], removes[4];
};

static void str_churn_worker(int t, void *arg)
{
    struct str_churn *c = arg;
    tl_rng r = tl_rng_seed(4000 + (uint64_t)t);
    char buf[48];
    uint64_t key = (uint64_t)(uintptr_t)buf;
    tl_barrier_wait(&c->start);
    for (uint64_t n = 0; n < c->ops; n++) {
        if (n % 256 == 255 && tl_now() > c->deadline)
            break;
        uint64_t i = tl_below(&r, STR_RANGE), v = ~0ULL;
        snprintf(buf, sizeof buf, "key-%" PRIu64 "-%s", i, (i & 1) ? "odd-and-long-tail" : "e");
        int rc;
        switch (tl_below(&r, 4)) {
        case 0:
            rc = chm_put(c->m, key, i, &v);
            if (rc == CHM_OK)
                c->inserts[t]++;
            else if (!CHECK_RC(rc, CHM_EXISTS) || !CHECK_EQ(v, i))
                return;
            break;
        case 1:
            rc = chm_remove(c->m, key, &v);
            if (rc == CHM_OK) {
                c->removes[t]++;
                if (!CHECK_EQ(v, i))
                    return;
            } else if (!CHECK_RC(rc, CHM_NOTFOUND)) {
                return;
            }
            break;
        default:
            rc = chm_get(c->m, key, &v);
            if (rc == CHM_OK ? !CHECK_EQ(v, i) : !CHECK_RC(rc, CHM_NOTFOUND))
                return;
            break;
        }
        memset(buf, 'x', sizeof buf - 1); /* the map must not keep the caller's buffer */
    }
}

static void test_string_keys_churn(const chm_backend *b)
{
    chm_options o;
    memset(&o, 0, sizeof o);
    o.keys = &chm_keys_string;
    o.rwlock = g_kind;
    struct str_churn c;
    memset(&c, 0, sizeof c);
    c.m = chm_new(b, &o);
    if (!CHECK(c.m != NULL))
        return;
    c.ops = tl_scaled(200000, 10000);
    c.deadline = tl_now() + tl_budget();
    tl_barrier_init(&c.start, 4);
    tl_run_threads(4, str_churn_worker, &c);
    long size = 0;
    for (int t = 0; t < 4; t++)
        size += c.inserts[t] - c.removes[t];
    CHECK_EQ(chm_size(c.m), size);
    /* iteration: the map's own copies, content consistent with the values */
    chm_iter it;
    CHECK_RC(chm_iter_init(&it, c.m), CHM_OK);
    uint64_t k, v;
    long count = 0;
    int rc;
    while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK) {
        char want[48];
        snprintf(want, sizeof want, "key-%" PRIu64 "-%s", v, (v & 1) ? "odd-and-long-tail" : "e");
        if (!CHECK(strcmp((const char *)(uintptr_t)k, want) == 0))
            break;
        count++;
    }
    CHECK_RC(rc, CHM_END);
    chm_iter_fini(&it);
    CHECK_EQ(count, size);
    chm_free(c.m);
}

/* ---- chm_compute: increments on one key -------------------------------------------------- */

/* The guarantee under test: 2 threads x COUNTER_FULL chm_compute calls end at exactly
 * 2 * COUNTER_FULL. */
#define COUNTER_FULL 1000000

struct counter {
    chm *m;
    uint64_t per_thread;
    double deadline; /* plain build: a stop here fails the test; sanitizers: only noted */
    tl_barrier start;
    atomic_ullong fn_calls;
    uint64_t done[2];
    atomic_bool stopped; /* a worker stopped at the deadline */
};

static chm_compute_action incr_fn(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                  void *arg)
{
    (void)key;
    atomic_ullong *calls = arg;
    atomic_fetch_add_explicit(calls, 1, memory_order_relaxed);
    if (!present && old != 0)
        return CHM_COMPUTE_KEEP; /* *value must be 0 for an absent key: shows as a lost count */
    *value = old + 1;
    return CHM_COMPUTE_SET;
}

static void counter_worker(int t, void *arg)
{
    struct counter *c = arg;
    tl_barrier_wait(&c->start);
    for (uint64_t n = 0; n < c->per_thread; n++) {
        if (n % 1024 == 1023 && tl_now() > c->deadline) {
            atomic_store(&c->stopped, true);
            break;
        }
        uint64_t r = 0;
        int rc = chm_compute(c->m, 42, incr_fn, &c->fn_calls, &r);
        if (!CHECK_RC(rc, CHM_OK) || !CHECK(r >= 1))
            return;
        c->done[t]++;
    }
}

/* Two threads add 1 a million times each: the decisions apply one after another, so the key
 * ends at exactly their sum; every replaced count left the map once (value_free saw
 * 1 .. total-1, then total at chm_free).
 * The plain build always runs the full count (CHM_TEST_SCALE does not shrink it) and fails if
 * the deadline -- 150 budgets, 60 s by default, over 100 times what the slowest backend needs
 * on an idle machine -- stops it first: a pass there means 2,000,000 was reached and checked.
 * It comes well before testlib's watchdog, so the failure names this scenario. The sanitizer
 * builds, 5-20x slower, run the scaled count, and a stop at their deadline (25 budgets) is
 * only noted: every check below holds for the count reached. */
static void test_compute_counter(const chm_backend *b)
{
    const bool full = !(TL_TSAN || TL_ASAN);
    tl_freelog log;
    tl_freelog_init(&log, false);
    struct counter c;
    memset(&c, 0, sizeof c);
    c.m = new_map(b, 0, &log);
    if (c.m == NULL)
        goto out;
    c.per_thread = full ? COUNTER_FULL : tl_scaled(COUNTER_FULL, 20000);
    tl_barrier_init(&c.start, 2);
    double t0 = tl_now();
    c.deadline = t0 + (full ? 150 : 25) * tl_budget();
    tl_run_threads(2, counter_worker, &c);
    uint64_t total = c.done[0] + c.done[1], v = 0;
    tl_note("%" PRIu64 " increments in %.2f s", total, tl_now() - t0);
    if (full || !atomic_load(&c.stopped)) {
        if (!CHECK_EQ(total, 2 * c.per_thread))
            FAIL("compute_counter/%s: %" PRIu64 " of %" PRIu64 " increments%s: the exact count "
                 "was not reached",
                 chm_backend_name(b), total, 2 * c.per_thread,
                 atomic_load(&c.stopped) ? ", stopped at the deadline" : "");
    } else {
        tl_note("stopped at the deadline: %" PRIu64 " of %" PRIu64 " increments", total,
                2 * c.per_thread);
    }
    if (CHECK_RC(chm_get(c.m, 42, &v), CHM_OK))
        CHECK_EQ(v, total);
    CHECK_EQ(atomic_load(&c.fn_calls), total); /* fn ran exactly once per call */
    CHECK_EQ(chm_size(c.m), 1);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
    chm_free(c.m);
    CHECK_EQ(tl_freelog_calls(&log), total);
    CHECK_EQ(atomic_load(&log.sum), total * (total + 1) / 2);
out:
    tl_freelog_fini(&log);
}

/* ---- chm_compute on 64 keys while the table grows ---------------------------------------- */

#define CK_KEYS 64
#define CK_THREADS 4

struct counters {
    chm *m;
    uint64_t ops;
    double deadline;
    tl_barrier start;
    uint64_t adds[CK_THREADS][CK_KEYS];
    uint64_t fillers[CK_THREADS];
};

static uint64_t ck_filler(int t, uint64_t i)
{
    return ((uint64_t)(t + 1) << 40 | i) * 0x9e3779b97f4a7c15ULL | 1;
}

static void counters_worker(int t, void *arg)
{
    struct counters *c = arg;
    tl_rng r = tl_rng_seed(7000 + (uint64_t)t);
    atomic_ullong calls = 0;
    tl_barrier_wait(&c->start);
    for (uint64_t n = 0; n < c->ops; n++) {
        if (n % 256 == 255 && tl_now() > c->deadline)
            break;
        if (tl_below(&r, 4) == 0) {
            /* a new key: the table grows under the computes */
            uint64_t k = ck_filler(t, c->fillers[t]);
            if (!CHECK_RC(chm_put(c->m, k, k, NULL), CHM_OK))
                return;
            c->fillers[t]++;
            continue;
        }
        uint64_t k = tl_below(&r, CK_KEYS) * 2; /* even: never a filler key */
        if (!CHECK_RC(chm_compute(c->m, k, incr_fn, &calls, NULL), CHM_OK))
            return;
        c->adds[t][k / 2]++;
    }
    uint64_t adds = 0;
    for (int i = 0; i < CK_KEYS; i++)
        adds += c->adds[t][i];
    CHECK_EQ(atomic_load(&calls), adds); /* fn ran once per call */
}

static void test_compute_counters_growing(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    struct counters *c = calloc(1, sizeof *c);
    c->m = new_map(b, 0, &log);
    if (c->m == NULL)
        goto out;
    c->ops = tl_scaled(300000, 10000);
    c->deadline = tl_now() + tl_budget();
    tl_barrier_init(&c->start, CK_THREADS);
    tl_run_threads(CK_THREADS, counters_worker, c);
    uint64_t fillers = 0, adds_total = 0, counted = 0;
    for (int t = 0; t < CK_THREADS; t++)
        fillers += c->fillers[t];
    for (uint64_t k = 0; k < CK_KEYS; k++) {
        uint64_t want = 0, v = 0;
        for (int t = 0; t < CK_THREADS; t++)
            want += c->adds[t][k];
        adds_total += want;
        counted += want > 0;
        int rc = chm_get(c->m, k * 2, &v);
        if (want == 0) {
            CHECK_RC(rc, CHM_NOTFOUND);
        } else if (!CHECK_RC(rc, CHM_OK) || !CHECK_EQ(v, want)) {
            FAIL("counter %" PRIu64 ": %" PRIu64 " increments, value %" PRIu64, k, want, v);
            break;
        }
    }
    chm_stats st;
    CHECK_RC(chm_stats_get(c->m, &st), CHM_OK);
    tl_note("%" PRIu64 " increments on %d keys, %" PRIu64 " keys inserted meanwhile, %zu resizes",
            adds_total, CK_KEYS, fillers, st.resizes);
    CHECK(fillers > 1000);
    CHECK(st.resizes > 0);
    CHECK_EQ(chm_size(c->m), fillers + counted);
    CHECK_EQ(st.entries, chm_size(c->m));
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c->m), 0);
    for (int t = 0; t < CK_THREADS; t++) /* every filler key is there, untouched */
        for (uint64_t i = 0; i < c->fillers[t]; i += 97) {
            uint64_t k = ck_filler(t, i), v = 0;
            if (!CHECK_RC(chm_get(c->m, k, &v), CHM_OK) || !CHECK_EQ(v, k))
                break;
        }
    chm_free(c->m);
    /* every count that was replaced left once (all but the first of each key), and what was
     * in the map at chm_free */
    CHECK_EQ(tl_freelog_calls(&log), (adds_total - counted) + (fillers + counted));
out:
    free(c);
    tl_freelog_fini(&log);
}

/* ---- chm_remove_if against chm_put: a token passed between threads ---------------------- */

#define TOKEN_THREADS 4
#define TOKEN_KEY 0x70c3

struct token {
    chm *m;
    uint64_t last; /* tokens 1 .. last at most */
    double deadline;
    atomic_int stop; /* the time budget ran out: no thread takes another token */
    tl_barrier start;
    atomic_uchar *wins; /* per token */
    atomic_ullong passed;
    uint64_t lost_exists[TOKEN_THREADS], lost_absent[TOKEN_THREADS];
};

static void token_worker(int t, void *arg)
{
    struct token *k = arg;
    uint64_t v = 1; /* the token this thread tries to take next */
    tl_barrier_wait(&k->start);
    for (uint64_t n = 0; v < k->last; n++) { /* the last token stays */
        if (n % 256 == 255 && tl_now() > k->deadline)
            atomic_store(&k->stop, 1);
        if (atomic_load_explicit(&k->stop, memory_order_relaxed))
            return;
        int rc = chm_remove_if(k->m, TOKEN_KEY, v);
        if (rc == CHM_OK) {
            /* this thread holds token v: nobody else may have it, and the key is absent until
             * it passes v + 1 on */
            if (!CHECK_EQ(atomic_fetch_add(&k->wins[v], 1), 0))
                FAIL("token %" PRIu64 " won twice", v);
            if (!CHECK_RC(chm_put(k->m, TOKEN_KEY, v + 1, NULL), CHM_OK))
                return;
            atomic_fetch_add_explicit(&k->passed, 1, memory_order_release);
            v++;
            if (v % 8 == 0)
                sched_yield(); /* hand the race to the others now and then */
        } else if (rc == CHM_EXISTS) {
            /* another token is in: a later one (tokens only grow); take that one next */
            k->lost_exists[t]++;
            uint64_t cur = 0;
            rc = chm_get(k->m, TOKEN_KEY, &cur);
            if (rc == CHM_OK) {
                if (!CHECK(cur > v))
                    FAIL("token %" PRIu64 " after %" PRIu64 " was taken", cur, v);
                v = cur;
            } else if (!CHECK_RC(rc, CHM_NOTFOUND)) {
                return;
            }
        } else if (CHECK_RC(rc, CHM_NOTFOUND)) {
            /* taken, not passed on yet: the next one will be v + 1 or later */
            if (k->lost_absent[t]++ % 16 == 15)
                sched_yield(); /* let the winner put the next one */
            if (atomic_load_explicit(&k->passed, memory_order_acquire) > v)
                v = atomic_load_explicit(&k->passed, memory_order_acquire);
        } else {
            return;
        }
    }
}

static void test_remove_if_token(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    struct token k;
    memset(&k, 0, sizeof k);
    k.m = new_map(b, 0, &log);
    if (k.m == NULL)
        goto out;
    k.last = tl_scaled(100000, 3000);
    k.wins = calloc(k.last + 1, sizeof *k.wins);
    atomic_init(&k.passed, 1);
    CHECK_RC(chm_put(k.m, TOKEN_KEY, 1, NULL), CHM_OK);
    k.deadline = tl_now() + 2 * tl_budget();
    tl_barrier_init(&k.start, TOKEN_THREADS);
    tl_run_threads(TOKEN_THREADS, token_worker, &k);
    /* the key holds the last token passed on (a winner always passes its token on) */
    uint64_t last = 0, exists = 0, absent = 0;
    if (!CHECK_RC(chm_get(k.m, TOKEN_KEY, &last), CHM_OK) || !CHECK(last >= 1 && last <= k.last))
        goto done;
    if (!atomic_load(&k.stop))
        CHECK_EQ(last, k.last);
    CHECK_EQ(atomic_load(&k.passed), last);
    for (uint64_t i = 1; i <= k.last; i++)
        if (!CHECK_EQ(atomic_load(&k.wins[i]), i < last ? 1 : 0)) {
            FAIL("token %" PRIu64 " won %u times (the last is %" PRIu64 ")", i,
                 (unsigned)atomic_load(&k.wins[i]), last);
            break;
        }
    for (int t = 0; t < TOKEN_THREADS; t++) {
        exists += k.lost_exists[t];
        absent += k.lost_absent[t];
    }
    tl_note("%" PRIu64 " tokens passed%s; lost remove_if: %" PRIu64 " to a newer token, %" PRIu64
            " to an absent key",
            last - 1, atomic_load(&k.stop) ? " (time budget)" : "", exists, absent);
    CHECK_EQ(chm_size(k.m), 1);
    chm__smr_barrier();
    CHECK_EQ(tl_freelog_calls(&log), last - 1); /* each won token left once */
    chm_free(k.m);
    k.m = NULL;
    CHECK_EQ(tl_freelog_calls(&log), last);
    CHECK_EQ(atomic_load(&log.sum), last * (last + 1) / 2);
done:
    chm_free(k.m);
    free(k.wins);
out:
    tl_freelog_fini(&log);
}

/* ---- chm_clear against puts, gets and iterations ----------------------------------------- */

#define CLR_RANGE 2048

struct clr {
    chm *m;
    uint64_t per_putter;
    double deadline;
    atomic_int putters_left;
    tl_barrier start;
    uint64_t puts[2], put_sum[2], put_xor[2];
    uint64_t clears, iterations, econcurrent;
};

/* value: the key in the top bits, a per-thread sequence number below */
static uint64_t clr_value(uint64_t key, int t, uint64_t n)
{
    return key << 32 | (uint64_t)t << 31 | (n & 0x7fffffff);
}

static void clr_worker(int t, void *arg)
{
    struct clr *c = arg;
    tl_barrier_wait(&c->start);
    if (t < 2) { /* putters */
        tl_rng r = tl_rng_seed(9100 + (uint64_t)t);
        for (uint64_t n = 0; n < c->per_putter; n++) {
            if (n % 256 == 255 && tl_now() > c->deadline)
                break;
            uint64_t k = tl_below(&r, CLR_RANGE), v = clr_value(k, t, n), old = 0;
            int rc = chm_put(c->m, k, v, &old);
            if (!CHECK(rc == CHM_OK || rc == CHM_EXISTS))
                break;
            if (rc == CHM_EXISTS && !CHECK_EQ(old >> 32, k))
                break;
            c->puts[t]++;
            c->put_sum[t] += v;
            c->put_xor[t] ^= tl_mix(v);
        }
        atomic_fetch_sub_explicit(&c->putters_left, 1, memory_order_release);
        return;
    }
    if (t == 2) { /* the clearer */
        while (atomic_load_explicit(&c->putters_left, memory_order_acquire) > 0) {
            if (!CHECK_RC(chm_clear(c->m), CHM_OK))
                return;
            c->clears++;
            usleep(500);
        }
        return;
    }
    /* gets and iterations: every value found is one put for its key */
    tl_rng r = tl_rng_seed(9200);
    tl_model seen;
    tl_model_init(&seen);
    while (atomic_load_explicit(&c->putters_left, memory_order_acquire) > 0) {
        for (int i = 0; i < 64; i++) {
            uint64_t k = tl_below(&r, CLR_RANGE), v = 0;
            int rc = chm_get(c->m, k, &v);
            if (rc == CHM_OK ? !CHECK_EQ(v >> 32, k) : !CHECK_RC(rc, CHM_NOTFOUND))
                goto done;
        }
        chm_iter it;
        if (!CHECK_RC(chm_iter_init(&it, c->m), CHM_OK))
            break;
        tl_model_clear(&seen);
        uint64_t k, v;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
            if (!CHECK(k < CLR_RANGE && v >> 32 == k) || !CHECK(tl_model_put(&seen, k, v, NULL)))
                break;
        chm_iter_fini(&it);
        if (rc == CHM_END)
            c->iterations++;
        else if (rc == CHM_ECONCURRENT && tl_fail_fast(chm_map_backend(c->m)))
            c->econcurrent++;
        else if (!CHECK_RC(rc, CHM_END))
            break;
    }
done:
    tl_model_fini(&seen);
}

static void test_clear_concurrent(const chm_backend *b)
{
    tl_freelog log;
    tl_freelog_init(&log, false);
    struct clr c;
    memset(&c, 0, sizeof c);
    c.m = new_map(b, 0, &log);
    if (c.m == NULL)
        goto out;
    c.per_putter = tl_scaled(300000, 10000);
    c.deadline = tl_now() + tl_budget();
    atomic_init(&c.putters_left, 2);
    tl_barrier_init(&c.start, 4);
    tl_run_threads(4, clr_worker, &c);
    uint64_t puts = c.puts[0] + c.puts[1], sum = c.put_sum[0] + c.put_sum[1];
    uint64_t xr = c.put_xor[0] ^ c.put_xor[1];
    tl_note("%" PRIu64 " puts, %" PRIu64 " clears, %" PRIu64 " iterations (%" PRIu64
            " ended by CHM_ECONCURRENT)",
            puts, c.clears, c.iterations, c.econcurrent);
    CHECK(c.clears > 0);
    CHECK_EQ((uint64_t)(int64_t)chm__validate(c.m), 0);
    /* what is left: size, iteration and gets agree; every value is one put for its key */
    tl_model rest;
    tl_model_init(&rest);
    CHECK_RC(tl_collect(c.m, &rest), CHM_END);
    size_t size = chm_size(c.m);
    CHECK_EQ(tl_model_size(&rest), size);
    uint64_t rest_sum = 0, rest_xor = 0;
    size_t pos = 0;
    uint64_t k, v;
    while (tl_model_slot(&rest, &pos, &k, &v)) {
        uint64_t got = 0;
        CHECK(k < CLR_RANGE && v >> 32 == k);
        if (CHECK_RC(chm_get(c.m, k, &got), CHM_OK))
            CHECK_EQ(got, v);
        rest_sum += v;
        rest_xor ^= tl_mix(v);
    }
    /* every value put entered the map; the ones not there any more left it exactly once */
    chm__smr_barrier();
    CHECK_EQ(tl_freelog_calls(&log), puts - size);
    CHECK_EQ(atomic_load(&log.sum), sum - rest_sum);
    CHECK_EQ(atomic_load(&log.xor_mix), xr ^ rest_xor);
    /* the map works on: one more clear empties it */
    CHECK_RC(chm_clear(c.m), CHM_OK);
    CHECK_EQ(chm_size(c.m), 0);
    chm_free(c.m);
    CHECK_EQ(tl_freelog_calls(&log), puts);
    CHECK_EQ(atomic_load(&log.sum), sum);
    tl_model_fini(&rest);
out:
    tl_freelog_fini(&log);
}

/* ---- chm_visit on pointer values while they are replaced and removed --------------------- */

#define OBJ_MAGIC 0x0b1ec7a11fe5a11dULL
#define OBJ_DEAD 0xdeadde4ddeadde4dULL
#define VIS_RANGE 256

struct obj {
    uint64_t magic;
    uint64_t key;
    uint64_t payload[6];
};

static atomic_long obj_live;

static uint64_t obj_new(uint64_t key)
{
    struct obj *o = malloc(sizeof *o);
    if (o == NULL)
        abort();
    o->magic = OBJ_MAGIC;
    o->key = key;
    for (int i = 0; i < 6; i++)
        o->payload[i] = key ^ (uint64_t)i;
    atomic_fetch_add_explicit(&obj_live, 1, memory_order_relaxed);
    return (uint64_t)(uintptr_t)o;
}

/* value_free: poison, then free (a visit that still ran on it sees the poison, or ASan reports
 * the use after free) */
static void obj_free(uint64_t value, void *ctx)
{
    (void)ctx;
    struct obj *o = (struct obj *)(uintptr_t)value;
    if (o->magic != OBJ_MAGIC)
        FAIL("value_free of object %p twice (magic 0x%" PRIx64 ")", (void *)o, o->magic);
    atomic_store_explicit((_Atomic uint64_t *)&o->magic, OBJ_DEAD, memory_order_relaxed);
    atomic_fetch_sub_explicit(&obj_live, 1, memory_order_relaxed);
    free(o);
}

struct vis_run {
    chm *m;
    uint64_t ops;
    double deadline;
    atomic_int writers_left;
    tl_barrier start;
    uint64_t visits[2], found[2];
};

static void obj_check(uint64_t key, uint64_t value, void *arg)
{
    uint64_t *sum = arg;
    const struct obj *o = (const struct obj *)(uintptr_t)value;
    uint64_t magic = atomic_load_explicit((_Atomic uint64_t *)&o->magic, memory_order_relaxed);
    if (!CHECK_EQ(magic, OBJ_MAGIC) || !CHECK_EQ(o->key, key))
        FAIL("visit of key %" PRIu64 ": object %p is not live", key, (void *)o);
    for (int i = 0; i < 6; i++)
        *sum += o->payload[i];
}

static chm_compute_action obj_replace(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                      void *arg)
{
    (void)arg;
    (void)old;
    if (present && (key & 1))
        return CHM_COMPUTE_DELETE;
    *value = obj_new(key);
    return CHM_COMPUTE_SET;
}

static void vis_worker(int t, void *arg)
{
    struct vis_run *v = arg;
    tl_rng r = tl_rng_seed(9300 + (uint64_t)t);
    tl_barrier_wait(&v->start);
    if (t < 2) { /* writers: replace and remove, by every write that can */
        for (uint64_t n = 0; n < v->ops; n++) {
            if (n % 256 == 255 && tl_now() > v->deadline)
                break;
            uint64_t k = tl_below(&r, VIS_RANGE), cur = 0;
            int rc;
            switch (tl_below(&r, 4)) {
            case 0: {
                uint64_t o = obj_new(k);
                rc = chm_put(v->m, k, o, NULL);
                CHECK(rc == CHM_OK || rc == CHM_EXISTS);
                break;
            }
            case 1: chm_remove(v->m, k, NULL); break;
            case 2:
                if (chm_get(v->m, k, &cur) == CHM_OK) /* cur may be freed by now: compare only */
                    chm_remove_if(v->m, k, cur);
                break;
            default:
                rc = chm_compute(v->m, k, obj_replace, NULL, NULL);
                CHECK(rc == CHM_OK || rc == CHM_NOTFOUND);
                break;
            }
        }
        atomic_fetch_sub_explicit(&v->writers_left, 1, memory_order_release);
        return;
    }
    /* visitors */
    uint64_t sum = 0;
    int i = t - 2;
    while (atomic_load_explicit(&v->writers_left, memory_order_acquire) > 0) {
        uint64_t k = tl_below(&r, VIS_RANGE);
        int rc = chm_visit(v->m, k, obj_check, &sum);
        v->visits[i]++;
        if (rc == CHM_OK)
            v->found[i]++;
        else if (!CHECK_RC(rc, CHM_NOTFOUND))
            break;
    }
    (void)sum;
}

static void test_visit_pointer_values(const chm_backend *b)
{
    atomic_store(&obj_live, 0);
    chm_options o;
    memset(&o, 0, sizeof o);
    o.rwlock = g_kind;
    o.value_free = obj_free;
    struct vis_run v;
    memset(&v, 0, sizeof v);
    v.m = chm_new(b, &o);
    if (!CHECK(v.m != NULL))
        return;
    for (uint64_t k = 0; k < VIS_RANGE; k++)
        CHECK_RC(chm_put(v.m, k, obj_new(k), NULL), CHM_OK);
    v.ops = tl_scaled(300000, 10000);
    v.deadline = tl_now() + tl_budget();
    atomic_init(&v.writers_left, 2);
    tl_barrier_init(&v.start, 4);
    tl_run_threads(4, vis_worker, &v);
    tl_note("%" PRIu64 " visits (%" PRIu64 " found the key)", v.visits[0] + v.visits[1],
            v.found[0] + v.found[1]);
    CHECK(v.found[0] + v.found[1] > 0);
    chm__smr_barrier();
    CHECK_EQ(atomic_load(&obj_live), (long)chm_size(v.m)); /* the map's objects only */
    chm_free(v.m);
    CHECK_EQ(atomic_load(&obj_live), 0);
}

/* ------------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(const chm_backend *b);
} tests[] = {
    {"disjoint_inserts", test_disjoint_inserts},
    {"put_if_absent_race", test_put_if_absent_race},
    {"compute_if_absent_race", test_compute_if_absent_race},
    {"readers_writers", test_readers_writers},
    {"churn", test_churn},
    {"overwrite_storm", test_overwrite_storm},
    {"iterate_while_growing", test_iterate_while_growing},
    {"string_keys_churn", test_string_keys_churn},
    {"compute_counter", test_compute_counter},
    {"compute_counters_growing", test_compute_counters_growing},
    {"remove_if_token", test_remove_if_token},
    {"clear_concurrent", test_clear_concurrent},
    {"visit_pointer_values", test_visit_pointer_values},
};

struct call {
    void (*fn)(const chm_backend *b);
    const chm_backend *b;
};

static void call(void *arg)
{
    struct call *c = arg;
    c->fn(c->b);
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(280);
    int backends = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != NULL; p++) {
        if (!chm_backend_thread_safe(*p))
            continue;
        backends++;
        /* once per lock kind where chm_options.rwlock picks one (CHM_CAP_RWLOCK_KINDS); the
         * others ignore the field */
        int kinds = tl_lock_kinds(*p);
        for (int kind = 0; kind < kinds; kind++) {
            g_kind = tl_lock_kind(kind);
            for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
                char name[128];
                snprintf(name, sizeof name, "%s/%s%s", tests[i].name, chm_backend_name(*p),
                         tl_lock_kind_label(kind));
                struct call c = {tests[i].fn, *p};
                tl_run(name, call, &c);
            }
        }
    }
    if (backends == 0)
        tl_skip("concurrency", "no thread-safe backend is built");
    return tl_finish();
}
