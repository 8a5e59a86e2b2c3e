/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * refcount.c - pointer values in a chm map: reference-counted objects shared between threads.
 *
 * The map holds one reference to each object it stores. A reader takes its own reference
 * inside chm_visit -- the one moment the library guarantees the object has not reached
 * value_free yet -- and drops it when done; value_free drops the map's reference when the
 * object leaves the map (replaced, removed, cleared, or still there at chm_free). The object
 * is freed by whoever drops the last reference, so a reader never sees it freed under its
 * feet, however fast writers replace it. (docs/choosing.md, "Pointer values".)
 *
 * Only the public header. Build it alone with
 *     cc refcount.c $(pkg-config --cflags --libs chm) -pthread
 * CMake builds it in every configuration and CTest runs it as example_refcount, so ASan and
 * TSan watch it in `make test`: a use after free or a race on an object fails the run.
 *
 * It runs two writers (chm_put, chm_compute, chm_remove_if, chm_remove, now and then
 * chm_clear) against two readers (chm_visit) on every thread-safe backend, checks that every
 * object a reader holds is intact, and that every object ever made is freed exactly once by
 * the end. Prints "OK <backend> ..." per backend and exits 0, or says what broke and exits 1.
 */
#include <chm.h>

#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEYS 64
#define WRITES_PER_WRITER 50000 /* at least; and until the readers found MIN_HITS objects */
#define MIN_HITS 20000
#define MAGIC 0x5afe0b1ec7ULL
#define FREED 0xdeadULL

struct object {
    atomic_long refs; /* the map's reference, plus one per reader holding it */
    uint64_t magic;   /* MAGIC while alive, FREED once freed (a late reader would see it) */
    uint64_t key;
    uint64_t version;
    uint64_t check; /* key * version + 1: what a torn or recycled object would get wrong */
};

static atomic_long made, freed;
static atomic_int failures;

static void fail(const char *what, const struct object *o)
{
    if (atomic_fetch_add(&failures, 1) < 5)
        fprintf(stderr, "refcount: %s (object %p)\n", what, (const void *)o);
}

static struct object *object_new(uint64_t key, uint64_t version)
{
    struct object *o = malloc(sizeof *o);
    if (o == NULL)
        abort();
    atomic_init(&o->refs, 1); /* the reference the map will hold */
    o->magic = MAGIC;
    o->key = key;
    o->version = version;
    o->check = key * version + 1;
    atomic_fetch_add(&made, 1);
    return o;
}

static void object_unref(struct object *o)
{
    long before = atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel);
    if (before <= 0)
        fail("a reference dropped twice", o);
    if (before != 1)
        return;
    o->magic = FREED;
    atomic_fetch_add(&freed, 1);
    free(o);
}

/* value_free: the object left the map, which drops its reference. */
static void drop_map_ref(uint64_t value, void *ctx)
{
    (void)ctx;
    object_unref((struct object *)(uintptr_t)value);
}

/* chm_visit's function: the object cannot reach value_free while this runs, so a reference
 * taken here is a reference to a live object. Short, no locks, no waiting. */
static void take_ref(uint64_t key, uint64_t value, void *arg)
{
    struct object *o = (struct object *)(uintptr_t)value;
    (void)key;
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
    *(struct object **)arg = o;
}

/* The object for @key with a reference the caller must drop (object_unref), or NULL. */
static struct object *lookup(chm *m, uint64_t key)
{
    struct object *o = NULL;
    return chm_visit(m, key, take_ref, &o) == CHM_OK ? o : NULL;
}

/* chm_compute's function: the next version of an object, made from the present one (which
 * the map still holds while fn runs), or a first version; the replaced object goes to
 * value_free after the update. */
static chm_compute_action next_version(uint64_t key, bool present, uint64_t old, uint64_t *value,
                                       void *arg)
{
    (void)arg;
    const struct object *cur = (const struct object *)(uintptr_t)old;
    uint64_t version = present ? cur->version + 1 : 1;
    *value = (uint64_t)(uintptr_t)object_new(key, version);
    return CHM_COMPUTE_SET;
}

struct run {
    chm *m;
    atomic_int started; /* threads at the start line: all four begin together */
    atomic_int writers_left;
    atomic_ulong reads, hits;
};

static uint64_t rnd(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void start_line(struct run *r)
{
    atomic_fetch_add(&r->started, 1);
    while (atomic_load(&r->started) < 4)
        sched_yield();
}

static void *writer(void *arg)
{
    struct run *r = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s | 1;
    start_line(r);
    for (int i = 0;
         i < WRITES_PER_WRITER || (atomic_load(&r->hits) < MIN_HITS && i < 100 * WRITES_PER_WRITER);
         i++) {
        if (i % 64 == 63)
            sched_yield(); /* let the readers in, even on a busy machine */
        uint64_t key = rnd(&s) % KEYS;
        switch (rnd(&s) % 8) {
        case 0:
        case 1:
        case 2: { /* replace (or insert) with a fresh object */
            struct object *o = object_new(key, 1000000 + (uint64_t)i);
            if (chm_put(r->m, key, (uint64_t)(uintptr_t)o, NULL) < 0)
                fail("chm_put failed", o);
            break;
        }
        case 3:
        case 4: /* a new version from the current one, atomically */
            if (chm_compute(r->m, key, next_version, NULL, NULL) != CHM_OK)
                fail("chm_compute failed", NULL);
            break;
        case 5: { /* remove it only if it is still the object we looked at */
            struct object *o = lookup(r->m, key);
            if (o != NULL) {
                chm_remove_if(r->m, key, (uint64_t)(uintptr_t)o); /* OK or EXISTS */
                object_unref(o);
            }
            break;
        }
        case 6: chm_remove(r->m, key, NULL); break;
        default:
            if (i % 5000 == 4999)
                chm_clear(r->m);
            break;
        }
    }
    atomic_fetch_sub(&r->writers_left, 1);
    return NULL;
}

static void *reader(void *arg)
{
    struct run *r = arg;
    uint64_t s = (uint64_t)(uintptr_t)&s | 1;
    start_line(r);
    while (atomic_load(&r->writers_left) > 0) {
        uint64_t key = rnd(&s) % KEYS;
        struct object *o = lookup(r->m, key);
        if (atomic_fetch_add_explicit(&r->reads, 1, memory_order_relaxed) % 256 == 255)
            sched_yield();
        if (o == NULL)
            continue;
        atomic_fetch_add_explicit(&r->hits, 1, memory_order_relaxed);
        /* the object may leave the map right now: our reference keeps it alive */
        for (int spin = 0; spin < 50; spin++) {
            if (o->magic != MAGIC || o->key != key || o->check != o->key * o->version + 1) {
                fail("an object changed or was freed while a reader held it", o);
                break;
            }
        }
        object_unref(o);
    }
    return NULL;
}

static int run_backend(const chm_backend *b)
{
    atomic_store(&made, 0);
    atomic_store(&freed, 0);
    chm_options opt = {.value_free = drop_map_ref};
    struct run r = {.m = chm_new(b, &opt)};
    if (r.m == NULL) {
        perror("refcount: chm_new");
        return 1;
    }
    atomic_init(&r.writers_left, 2);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, i < 2 ? writer : reader, &r);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    size_t left = chm_size(r.m);
    chm_free(r.m); /* drops the map's reference to each object still in it */
    long m = atomic_load(&made), f = atomic_load(&freed);
    if (m != f) {
        fprintf(stderr, "refcount: %s: %ld objects made, %ld freed\n", chm_backend_name(b), m, f);
        return 1;
    }
    printf("OK %s: %ld objects made and freed, %lu lookups (%lu found one), %zu left at "
           "chm_free\n",
           chm_backend_name(b), m, atomic_load(&r.reads), atomic_load(&r.hits), left);
    return atomic_load(&failures) != 0;
}

int main(void)
{
    int rc = 0;
    for (const chm_backend *const *b = chm_backend_list(); *b != NULL; b++)
        if (chm_backend_thread_safe(*b)) /* readers and writers run at once */
            rc |= run_backend(*b);
    return rc | (atomic_load(&failures) != 0);
}
