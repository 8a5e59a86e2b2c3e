/*
 * test_churn.c - insert/remove churn with an ever-growing key set: memory stays flat and nothing
 * leaks, for every backend.
 *
 * Each thread t inserts the keys t, t + T, t + 2T, ... (every insert is a new key, the workload
 * that hurts Go's sync.Map) and removes the key it inserted WINDOW steps earlier, reading a recent
 * key in between, so the map holds about T * WINDOW entries while the key set keeps moving. After a
 * warm-up the resident set size is recorded; after the churn it must not have grown by more than
 * a tolerance (retired memory is being reclaimed, not piling up). At the end the size is exact,
 * value_free ran once per value that left, and chm_free leaves no live allocation.
 *
 * Memory is measured after letting reclamation catch up (retired nodes are freed a grace period
 * later, on liburcu's worker, in batches) and trimming the allocator: the library's live block
 * count (allocation hook) in every build, RSS only in plain builds, since sanitizers keep freed
 * memory in quarantine on purpose.
 */
#include "chm_internal.h"
#include "testlib.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WINDOW 4096

struct churn {
    chm *m;
    int threads;
    atomic_bool stop;
    atomic_ulong freed;   /* value_free calls */
    atomic_ulong removed; /* successful removes */
    atomic_ulong inserted;
};

static void count_free(uint64_t value, void *ctx)
{
    (void)value;
    atomic_fetch_add_explicit(&((struct churn *)ctx)->freed, 1, memory_order_relaxed);
}

static long rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* Give the reclaimer time to free what was retired (it batches for 10 ms, then waits for a
 * grace period, which stretches on a loaded machine where it competes with other tests): wait,
 * for at most 10 s, until the live block count is at most @bound (0: until it stops falling),
 * then return free memory to the system so RSS reflects what is in use. Returns the count. */
static long settle(long bound)
{
    long prev = chm__alloc_live(), now = prev;
    for (int i = 0; i < 330; i++) {
        usleep(30 * 1000);
        now = chm__alloc_live();
        if (bound > 0 ? now <= bound : now >= prev && i >= 2)
            break;
        prev = now;
    }
    malloc_trim(0);
    if (getenv("CHURN_DEBUG")) {
        struct mallinfo2 mi = mallinfo2();
        tl_note("arena %zu KiB, in use %zu KiB, free %zu KiB, mmap %zu KiB", mi.arena / 1024,
                mi.uordblks / 1024, mi.fordblks / 1024, mi.hblkhd / 1024);
    }
    return now;
}

static void churn_thread(int idx, void *arg)
{
    struct churn *c = arg;
    uint64_t T = (uint64_t)c->threads;
    unsigned long ins = 0, rem = 0;
    for (uint64_t i = 0; !atomic_load_explicit(&c->stop, memory_order_relaxed); i++) {
        uint64_t key = i * T + (uint64_t)idx;
        int rc = chm_put(c->m, key, ~key, NULL);
        if (!CHECK_RC(rc, CHM_OK))
            break;
        ins++;
        if (i >= WINDOW) {
            uint64_t old = 0, gone = (i - WINDOW) * T + (uint64_t)idx;
            if (!CHECK_RC(chm_remove(c->m, gone, &old), CHM_OK) || !CHECK_EQ(old, ~gone))
                break;
            rem++;
        }
        uint64_t v = 0;
        uint64_t recent = (i / 2) * T + (uint64_t)idx;
        if (chm_get(c->m, recent, &v) == CHM_OK && !CHECK_EQ(v, ~recent))
            break;
    }
    atomic_fetch_add_explicit(&c->inserted, ins, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->removed, rem, memory_order_relaxed);
}

struct phase {
    struct churn *c;
    double seconds;
};

static void *stopper(void *arg)
{
    struct phase *p = arg;
    double end = tl_now() + p->seconds;
    while (tl_now() < end)
        usleep(1000);
    atomic_store_explicit(&p->c->stop, true, memory_order_relaxed);
    return NULL;
}

static void run_phase(struct churn *c, int threads, double seconds)
{
    atomic_store(&c->stop, false);
    struct phase p = {c, seconds};
    tl_thread t;
    tl_spawn(&t, stopper, &p);
    tl_run_threads(threads, churn_thread, c);
    tl_join(&t);
}

static void test_churn(const chm_backend *b)
{
    struct churn c;
    memset(&c, 0, sizeof c);
    c.threads = chm_backend_thread_safe(b) ? 2 : 1;
    bool plain = !TL_TSAN && !TL_ASAN;
    double warm = plain ? tl_budget() : 0.3, churn = plain ? 3 * tl_budget() : 0.6;

    chm__alloc_fail_nth(0); /* count live allocations, fail none */
    chm_options o = {.value_free = count_free, .ctx = &c};
    c.m = chm_new(b, &o);
    if (!CHECK(c.m != NULL))
        return;

    /* Warm-up: the map reaches its working size and the allocator its working set. Each phase
     * restarts the key sequence, so the map is emptied first. */
    run_phase(&c, c.threads, warm);
    long live_warm = settle(0);
    long rss_warm = rss_bytes();
    unsigned long ins_warm = atomic_load(&c.inserted), rem_warm = atomic_load(&c.removed);
    CHECK_EQ(chm_size(c.m), ins_warm - rem_warm);

    /* Clear the warm-up's keys so the churn phase can reuse the sequence from 0. */
    chm_iter it;
    uint64_t k;
    CHECK_RC(chm_iter_init(&it, c.m), CHM_OK);
    uint64_t *keys = calloc(ins_warm - rem_warm + 1, sizeof *keys);
    size_t n = 0;
    while (n <= ins_warm - rem_warm && chm_iter_next(&it, &k, NULL) == CHM_OK)
        keys[n++] = k;
    chm_iter_fini(&it);
    CHECK_EQ(n, ins_warm - rem_warm);
    for (size_t i = 0; i < n; i++)
        CHECK_RC(chm_remove(c.m, keys[i], NULL), CHM_OK);
    free(keys);
    atomic_store(&c.removed, rem_warm + n);

    run_phase(&c, c.threads, churn);
    /* The same number of entries is live as after the warm-up: once reclamation has caught up,
     * the block count must be back near that level (a partial batch or a grace period in
     * progress may still hold some), not grown with the churn. */
    long live_bound = live_warm + live_warm / 4 + 20000;
    long live_end = settle(live_bound);
    long rss_end = rss_bytes();
    unsigned long ins = atomic_load(&c.inserted), rem = atomic_load(&c.removed);
    CHECK_EQ(chm_size(c.m), ins - rem);
    tl_note("%s: %lu inserts, %lu removes; live blocks %ld -> %ld; RSS %ld -> %ld KiB",
            chm_backend_name(b), ins, rem, live_warm, live_end, rss_warm / 1024, rss_end / 1024);
    CHECK(live_end <= live_bound);
    if (plain && rss_warm > 0 && rss_end > 0) {
        /* Flat: the churn pushed millions of nodes through the map, so leaking them would cost
         * hundreds of MiB. Allow 128 MiB or half the warm-up level, whichever is larger, for
         * what the allocator keeps after a reclamation backlog on a loaded machine (freed and
         * trimmed, but fragmented across thread arenas; see the closing note of issue 2).
         * Smaller leaks of library memory are caught exactly by the live block count above. */
        long slack = rss_warm / 2 > (128L << 20) ? rss_warm / 2 : (128L << 20);
        if (!CHECK(rss_end <= rss_warm + slack))
            tl_note("RSS grew from %ld to %ld KiB", rss_warm / 1024, rss_end / 1024);
    }

    chm_free(c.m);
    CHECK_EQ(atomic_load(&c.freed), ins); /* every value left: removed or at chm_free */
    CHECK_EQ((uint64_t)chm__alloc_live(), 0);
    chm__alloc_disarm();
}

int main(int argc, char **argv)
{
    tl_init(argc, argv);
    tl_watchdog(200);
    tl_each_backend("churn", test_churn, NULL);
    return tl_finish();
}
