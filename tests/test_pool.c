/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * test_pool.c - the node pool (src/pool.h) on its own: objects never overlap and keep their
 * contents while handed out, the in-use count is exact, memory is bounded by what is in use,
 * threads that allocate and threads that put back can differ (and memory stays bounded when every
 * object is freed into another thread's stripe), allocation failure leaves the
 * pool usable, batched puts (chm__pool_defer_begin/end) reach the pool exactly when they say,
 * and chm__pool_free gives every block back. Under AddressSanitizer a use after
 * chm__pool_put must be reported (a child process checks it).
 */
#include "testlib.h"

#include "pool.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Objects of @size bytes hold a 64-bit id in every word: stamping and checking them finds any
 * overlap between two objects handed out at once. */
static void stamp(void *o, size_t size, uint64_t id)
{
    for (size_t i = 0; i < size / 8; i++)
        ((uint64_t *)o)[i] = id ^ i;
}

static bool stamped(const void *o, size_t size, uint64_t id)
{
    for (size_t i = 0; i < size / 8; i++)
        if (((const uint64_t *)o)[i] != (id ^ i))
            return false;
    return true;
}

/* Random allocs and puts against a model (the set of live objects): contents intact, count
 * exact, bytes bounded by the peak in use. */
static void sub_model(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    chm__alloc_fail_nth(0); /* count blocks */
    chm_pool *p = chm__pool_new(size, 4);
    if (!CHECK(p != NULL))
        return;
    enum { MAX = 5000 };
    void **live = calloc(MAX, sizeof *live);
    uint64_t *ids = calloc(MAX, sizeof *ids);
    size_t n = 0, peak = 0;
    tl_rng r = tl_rng_seed(42 + size);
    uint64_t next_id = 1;
    for (int step = 0; step < 200000; step++) {
        bool grow = n == 0 || (n < MAX && tl_below(&r, 100) < (step < 100000 ? 60 : 40));
        if (grow) {
            void *o = chm__pool_alloc(p);
            if (!CHECK(o != NULL))
                break;
            if (!CHECK(((uintptr_t)o & 7) == 0))
                break;
            stamp(o, size, next_id);
            live[n] = o;
            ids[n++] = next_id++;
            if (n > peak)
                peak = n;
        } else {
            size_t i = (size_t)tl_below(&r, n);
            if (!CHECK(stamped(live[i], size, ids[i])))
                break;
            chm__pool_put(p, live[i]);
            live[i] = live[--n];
            ids[i] = ids[n];
        }
        if (step % 9973 == 0 && !CHECK_EQ(chm__pool_in_use(p), n))
            break;
    }
    for (size_t i = 0; i < n; i++)
        CHECK(stamped(live[i], size, ids[i]));
    CHECK_EQ(chm__pool_in_use(p), n);
    /* A slab is carved by one stripe (this thread's); slabs double up to 64 KiB, so what is held
     * beyond the peak in use is at most the last slab plus the doubling's slack. */
    size_t bound = 2 * peak * ((size + 7) & ~(size_t)7) + 64 * 1024 + 64 * 64 + 4096;
    if (!CHECK(chm__pool_bytes(p) <= bound))
        tl_note("bytes %zu > bound %zu (peak %zu objects of %zu)", chm__pool_bytes(p), bound,
                peak, size);
    chm__pool_free(p);
    CHECK_EQ(chm__alloc_live(), 0); /* every slab back */
    chm__alloc_disarm();
    free(live);
    free(ids);
}

/* One thread allocates, the other puts back what the first handed over (a node inserted by one
 * writer and reclaimed by another): objects migrate between stripes; nothing overlaps. */
struct xfer {
    chm_pool *p;
    size_t size;
    _Atomic(void *) slot[64];
    atomic_bool done;
};

static void xfer_thread(int idx, void *arg)
{
    struct xfer *x = arg;
    uint64_t rounds = tl_scaled(300000, 20000);
    if (idx == 0) {
        for (uint64_t i = 0; i < rounds; i++) {
            void *o = chm__pool_alloc(x->p);
            if (!CHECK(o != NULL))
                break;
            stamp(o, x->size, i + 1);
            size_t s = i % 64;
            void *expect = NULL;
            /* Release: the stamp, for the putting thread's check. */
            while (!atomic_compare_exchange_weak_explicit(&x->slot[s], &expect, o,
                                                          memory_order_release,
                                                          memory_order_relaxed)) {
                expect = NULL;
                sched_yield();
            }
            if (i % 2 == 0) { /* and keep one for itself now and then */
                void *own = chm__pool_alloc(x->p);
                if (!CHECK(own != NULL))
                    break;
                stamp(own, x->size, ~i);
                CHECK(stamped(own, x->size, ~i));
                chm__pool_put(x->p, own);
            }
        }
        atomic_store_explicit(&x->done, true, memory_order_release);
    } else {
        uint64_t got = 0;
        for (;;) {
            bool any = false;
            for (size_t s = 0; s < 64; s++) {
                /* Acquire: pairs with the release CAS above. */
                void *o = atomic_exchange_explicit(&x->slot[s], NULL, memory_order_acquire);
                if (o == NULL)
                    continue;
                any = true;
                uint64_t id = ((uint64_t *)o)[0];
                CHECK(id != 0 && stamped(o, x->size, id));
                chm__pool_put(x->p, o);
                got++;
            }
            if (!any && atomic_load_explicit(&x->done, memory_order_acquire)) {
                bool empty = true;
                for (size_t s = 0; s < 64; s++)
                    empty &= atomic_load_explicit(&x->slot[s], memory_order_acquire) == NULL;
                if (empty)
                    break;
            }
            if (!any)
                sched_yield();
        }
        CHECK_EQ(got, rounds);
    }
}

static void sub_cross_thread(void *arg)
{
    (void)arg;
    struct xfer *x = calloc(1, sizeof *x);
    x->size = 24;
    x->p = chm__pool_new(x->size, 2);
    if (!CHECK(x->p != NULL))
        return;
    tl_run_threads(2, xfer_thread, x);
    CHECK_EQ(chm__pool_in_use(x->p), 0);
    /* At most 64 + 1 objects are out at once, but every one is freed into the other thread's
     * stripe: without refills taking the other stripe's list, the allocating stripe would carve
     * a slab whenever it ran dry (300,000 objects: 7 MB). With them, a few slabs suffice:
     * bounded by each stripe's slabs, whatever the interleaving. */
    size_t bytes = chm__pool_bytes(x->p);
    if (!CHECK(bytes <= 4 * 64 * 1024))
        tl_note("the pool holds %zu bytes for at most 65 objects of 24 in use at once", bytes);
    chm__pool_free(x->p);
    free(x);
}

/* Every allocation the pool makes fails in turn: the call that needed it returns NULL, the pool
 * stays usable and the next call succeeds; nothing leaks. */
static void sub_alloc_fail(void *arg)
{
    (void)arg;
    /* First a run without failures, to learn how many allocations 2000 objects take. */
    chm__alloc_fail_nth(0);
    chm_pool *probe = chm__pool_new(40, 1);
    for (int i = 0; i < 2000; i++)
        CHECK(chm__pool_alloc(probe) != NULL);
    uint64_t total = chm__alloc_count();
    chm__pool_free(probe);
    CHECK(total >= 8); /* the pool and slabs of 16, 32, ... 1024 objects at least */
    for (uint64_t nth = 1; nth <= total; nth++) {
        chm__alloc_fail_nth(nth);
        chm_pool *p = chm__pool_new(40, 1);
        if (p == NULL) { /* the pool itself was the nth allocation */
            CHECK_EQ(nth, 1);
            CHECK_EQ(chm__alloc_live(), 0);
            continue;
        }
        void *objs[2000];
        size_t n = 0;
        int nulls = 0;
        for (int i = 0; i < 2000; i++) {
            void *o = chm__pool_alloc(p);
            if (o == NULL) {
                nulls++;
                continue;
            }
            stamp(o, 40, (uint64_t)i + 1);
            objs[n++] = o;
        }
        CHECK_EQ(nulls, 1); /* exactly the injected failure */
        CHECK_EQ(chm__pool_in_use(p), n);
        for (size_t i = 0; i < n; i++)
            chm__pool_put(p, objs[i]);
        CHECK_EQ(chm__pool_in_use(p), 0);
        chm__pool_free(p);
        CHECK_EQ(chm__alloc_live(), 0);
    }
    chm__alloc_disarm();
}

/* Batched puts (chm__pool_defer_begin/end): inside a bracket for P, puts for P are held by the
 * thread and reach P every CHM__POOL_DEFER_MAX objects and at the end -- the in-use count says
 * exactly when -- while puts for another pool go straight to it; a nested bracket for Q hands
 * P's held objects over first and restores P's bracket after. Then every object is reused:
 * allocating them all again carves no new slab, and none overlaps a live one. */
static void sub_deferred_puts(void *arg)
{
    (void)arg;
    enum { N = 1000, SIZE = 40, BATCH = CHM__POOL_DEFER_MAX };
    _Static_assert(N > 2 * BATCH + 10, "the walk below crosses two flushes");
    chm_pool *p = chm__pool_new(SIZE, 1), *q = chm__pool_new(SIZE, 1);
    if (!CHECK(p != NULL && q != NULL))
        return;
    void *po[N], *qo[N];
    for (uint64_t i = 0; i < N; i++) {
        po[i] = chm__pool_alloc(p);
        qo[i] = chm__pool_alloc(q);
        if (!CHECK(po[i] != NULL && qo[i] != NULL))
            return;
        stamp(po[i], SIZE, i + 1);
        stamp(qo[i], SIZE, N + i + 1);
    }
    size_t pbytes = chm__pool_bytes(p), qbytes = chm__pool_bytes(q);
    chm_pool *outer = chm__pool_defer_begin(p);
    CHECK(outer == NULL); /* no enclosing bracket */
    size_t put = 0; /* objects of p put so far */
    for (; put < 2 * BATCH + 10; put++) {
        chm__pool_put(p, po[put]);
        /* held until a whole batch is there: flushed in BATCH steps */
        if (!CHECK_EQ(chm__pool_in_use(p), N - (put + 1) / BATCH * BATCH))
            break;
    }
    chm__pool_put(q, qo[0]); /* another pool: straight back */
    CHECK_EQ(chm__pool_in_use(q), N - 1);
    chm_pool *inner = chm__pool_defer_begin(q); /* nested: p's 10 held objects go back first */
    CHECK(inner == p);
    CHECK_EQ(chm__pool_in_use(p), N - put);
    for (size_t i = 1; i < 6; i++)
        chm__pool_put(q, qo[i]);
    CHECK_EQ(chm__pool_in_use(q), N - 1); /* held by the inner bracket */
    chm__pool_put(p, po[put++]);          /* p's bracket is not the innermost: straight back */
    CHECK_EQ(chm__pool_in_use(p), N - put);
    chm__pool_defer_end(inner);
    CHECK_EQ(chm__pool_in_use(q), N - 6);
    for (; put < N; put++) /* the outer bracket again */
        chm__pool_put(p, po[put]);
    CHECK_EQ(chm__pool_in_use(p), N - (2 * BATCH + 11) - (N - (2 * BATCH + 11)) / BATCH * BATCH);
    chm__pool_defer_end(outer);
    CHECK_EQ(chm__pool_in_use(p), 0);
    chm__pool_put(p, po[0] = chm__pool_alloc(p)); /* after the bracket: straight back */
    CHECK_EQ(chm__pool_in_use(p), 0);
    /* Every object came back: N allocations reuse them all (no slab carved), none twice. */
    for (uint64_t i = 0; i < N; i++) {
        po[i] = chm__pool_alloc(p);
        if (!CHECK(po[i] != NULL))
            return;
        stamp(po[i], SIZE, 2 * N + i + 1);
    }
    for (uint64_t i = 0; i < N; i++)
        CHECK(stamped(po[i], SIZE, 2 * N + i + 1));
    CHECK_EQ(chm__pool_bytes(p), pbytes);
    for (uint64_t i = 6; i < N; i++)
        CHECK(stamped(qo[i], SIZE, N + i + 1)); /* q's live objects untouched */
    CHECK_EQ(chm__pool_bytes(q), qbytes);
    chm__pool_free(p);
    chm__pool_free(q);
}

/* Under AddressSanitizer, a read of an object after chm__pool_put is a use after free. */
static void asan_child(void)
{
    chm_pool *p = chm__pool_new(32, 1);
    uint64_t *o = chm__pool_alloc(p);
    o[2] = 7;
    chm__pool_put(p, o);
    volatile uint64_t v = o[2]; /* must be reported */
    (void)v;
    chm__pool_free(p);
    exit(0);
}

static void sub_asan_poison(void *arg)
{
    (void)arg;
    if (!TL_ASAN) {
        tl_note("not an AddressSanitizer build: nothing to check");
        return;
    }
    tl_child child;
    if (!CHECK(tl_child_run("asan-poison", NULL, 60, &child)))
        return;
    CHECK(!child.timed_out && !(child.exited && child.status == 0));
    CHECK(strstr(child.err, "use-after-poison") != NULL);
    tl_child_fini(&child);
}

int main(int argc, char **argv)
{
    const char *child = tl_init(argc, argv);
    if (child != NULL) {
        if (strcmp(child, "asan-poison") == 0)
            asan_child();
        return 2;
    }
    tl_run("model_24", sub_model, (void *)(uintptr_t)24);
    tl_run("model_40", sub_model, (void *)(uintptr_t)40);
    tl_run("model_8", sub_model, (void *)(uintptr_t)8);
    tl_run("cross_thread", sub_cross_thread, NULL);
    tl_run("alloc_fail", sub_alloc_fail, NULL);
    tl_run("deferred_puts", sub_deferred_puts, NULL);
    tl_run("asan_poison", sub_asan_poison, NULL);
    return tl_finish();
}
