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
 *
 * The rwlock backend runs twice, once per lock kind. Operation counts scale with tl_scale() so the
 * ThreadSanitizer build stays well under a minute.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        /* rwlock: once per lock kind; the others ignore the field */
        int kinds = strcmp(chm_backend_name(*p), "rwlock") == 0 ? 2 : 1;
        for (int kind = 0; kind < kinds; kind++) {
            g_kind = kind == 0 ? CHM_RWLOCK_PTHREAD : CHM_RWLOCK_CK;
            for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
                char name[128];
                snprintf(name, sizeof name, "%s/%s%s", tests[i].name, chm_backend_name(*p),
                         kind == 1 ? "(ck)" : "");
                struct call c = {tests[i].fn, *p};
                tl_run(name, call, &c);
            }
        }
    }
    if (backends == 0)
        tl_skip("concurrency", "no thread-safe backend is built");
    return tl_finish();
}
