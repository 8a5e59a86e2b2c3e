/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * maps.c - the harness's map interface over the library's backends (every entry of
 * chm_backend_list(), so a new backend is benchmarked without touching the harness), followed
 * by the peers of bench/peers/ (ck_ht, lfht, cuckoo, tbb; a peer missing from this build stays
 * listed with the reason, see bench_map_impl.unavailable) and the Java and Go originals of
 * bench/originals/ (java:chm ... go:map, whose trials run in child processes).
 */
#include "chmbench.h"

#include "chm.h" /* the public header only: chmbench links libchm as a user's program does */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bench_map *chm_adapter_create(const bench_map_impl *impl, const bench_map_options *opt)
{
    chm_options options = {0};
    options.capacity = opt->capacity; /* presized: no resize inside the measured window */
    options.packed = opt->packed;
    options.concurrency = opt->concurrency ? opt->concurrency : impl->variant_concurrency;
    options.packed |= impl->variant_packed;
    options.rwlock = (chm_rwlock_kind)impl->variant_rwlock;
    options.seed = opt->seed;
    return (bench_map *)chm_new((const chm_backend *)impl->chm_backend, &options);
}

static void chm_adapter_destroy(bench_map *m)
{
    chm_free((chm *)m);
}

static bool chm_adapter_get(bench_map *m, uint64_t key, uint64_t *value)
{
    return chm_get((chm *)m, key, value) == CHM_OK;
}

static bool chm_adapter_put(bench_map *m, uint64_t key, uint64_t value)
{
    /* CHM_OK: inserted; CHM_EXISTS: replaced. An error (ENOMEM) counts as no insert, and the
     * size check after the trial then stays exact. */
    return chm_put((chm *)m, key, value, NULL) == CHM_OK;
}

/* chm has no unconditional "set if present": chm_replace is a compare-and-set on the value, so
 * read the value and replace exactly it, again if another writer changed it in between (each
 * step linearizable; the update takes effect at the successful chm_replace). chm_compute would
 * do it in one call once every backend implements it. */
static bool chm_adapter_update(bench_map *m, uint64_t key, uint64_t value)
{
    uint64_t seen;
    for (;;) {
        if (chm_get((chm *)m, key, &seen) != CHM_OK)
            return false;
        int rc = chm_replace((chm *)m, key, seen, value);
        if (rc != CHM_EXISTS) /* OK, NOTFOUND (removed meanwhile), or an error */
            return rc == CHM_OK;
    }
}

static bool chm_adapter_remove(bench_map *m, uint64_t key)
{
    return chm_remove((chm *)m, key, NULL) == CHM_OK;
}

static size_t chm_adapter_size(bench_map *m)
{
    return chm_size((chm *)m);
}

/* Everything the map retired so far is freed once chm_reclaim returns, so the memory
 * benchmark's allocator statistics hold no reclamation backlog. It cannot fail here (the
 * harness calls it outside any chm call); if it did, the measurement would be wrong. */
static void chm_adapter_reclaim(bench_map *m)
{
    int rc = chm_reclaim((chm *)m);
    if (rc != CHM_OK) {
        fprintf(stderr, "chmbench: chm_reclaim: %s\n", chm_strerror(rc));
        abort();
    }
}

/* The peers and originals after the library's backends, in this order. */
static const bench_map_impl *const others[] = {
    &bench_peer_ck_ht,           &bench_peer_lfht,
    &bench_peer_cuckoo,          &bench_peer_tbb,
    &bench_original_java_chm,    &bench_original_java_sync,
    &bench_original_java_rwlock, &bench_original_java_segments,
    &bench_original_go_syncmap,  &bench_original_go_rwmutex,
    &bench_original_go_map,
};
#define OTHER_COUNT (int)(sizeof others / sizeof others[0])
#define MAX_IMPLS 32
static bench_map_impl chm_impls[MAX_IMPLS];
static const bench_map_impl *all_impls[MAX_IMPLS + 1];

static bool has_padding_switch(const chm_backend *b)
{
    /* include/chm.h: chm_options.packed drops the 64-byte padding of hot per-segment /
     * per-counter fields on the backends that have the switch. */
    return (chm_backend_caps(b) & CHM_CAP_PADDING_SWITCH) != 0;
}

const bench_map_impl *const *bench_map_impls(void)
{
    if (all_impls[0])
        return all_impls;
    int n = 0;
    for (const chm_backend *const *b = chm_backend_list(); *b && n < MAX_IMPLS - OTHER_COUNT;
         b++, n++) {
        chm_impls[n] = (bench_map_impl){
            .name = chm_backend_name(*b),
            .thread_safe = chm_backend_thread_safe(*b),
            .chm_backend = *b,
            .has_padding_switch = has_padding_switch(*b),
            .create = chm_adapter_create,
            .destroy = chm_adapter_destroy,
            .get = chm_adapter_get,
            .put = chm_adapter_put,
            .update = chm_adapter_update,
            .remove = chm_adapter_remove,
            .size = chm_adapter_size,
            .reclaim = chm_adapter_reclaim,
        };
        all_impls[n] = &chm_impls[n];
    }
    for (int i = 0; i < OTHER_COUNT; i++)
        all_impls[n++] = others[i];
    all_impls[n] = NULL;
    return all_impls;
}

/* The chm_options.rwlock kind a variant option names (rwlock:adaptive, rwlock:pthread,
 * rwlock:ck); false when it names none. */
static bool rwlock_kind_named(const char *option, int *kind)
{
    static const struct {
        const char *name;
        chm_rwlock_kind kind;
    } kinds[] = {
        {"adaptive", CHM_RWLOCK_ADAPTIVE},
        {"pthread", CHM_RWLOCK_PTHREAD},
        {"ck", CHM_RWLOCK_CK},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(option, kinds[i].name) == 0) {
            *kind = (int)kinds[i].kind;
            return true;
        }
    return false;
}

/* Applies one ":"-separated variant option; false when it is not one. */
static bool apply_variant_option(bench_map_impl *v, const char *option)
{
    bool lock_kinds =
        (chm_backend_caps((const chm_backend *)v->chm_backend) & CHM_CAP_RWLOCK_KINDS) != 0;
    if (strcmp(option, "packed") == 0) {
        v->variant_packed = true;
    } else if (strncmp(option, "concurrency=", 12) == 0) {
        uint64_t c;
        if (!bench_parse_u64(option + 12, 1, 1u << 16, &c))
            return false;
        v->variant_concurrency = (unsigned)c;
    } else {
        return lock_kinds && rwlock_kind_named(option, &v->variant_rwlock);
    }
    return true;
}

/* Variants are made on first use and live until exit (trials point at them). */
#define MAX_VARIANTS 32
static bench_map_impl variants[MAX_VARIANTS];
static int variant_count;
static pthread_mutex_t variants_lock = PTHREAD_MUTEX_INITIALIZER;

static const bench_map_impl *find_variant(const char *name)
{
    const char *colon = strchr(name, ':');
    size_t base_len = (size_t)(colon - name);
    const bench_map_impl *base = NULL;
    for (const bench_map_impl *const *i = bench_map_impls(); *i; i++)
        if (strlen((*i)->name) == base_len && strncmp((*i)->name, name, base_len) == 0)
            base = *i;
    if (!base || !base->chm_backend) /* peers have no options */
        return NULL;
    const bench_map_impl *found = NULL;
    pthread_mutex_lock(&variants_lock);
    for (int i = 0; i < variant_count && !found; i++)
        if (strcmp(variants[i].name, name) == 0)
            found = &variants[i];
    if (!found && variant_count < MAX_VARIANTS) {
        bench_map_impl v = *base;
        v.name = strdup(name);
        char *options = strdup(colon + 1), *save = NULL;
        bool ok = v.name && options && *options;
        for (char *o = ok ? strtok_r(options, ":", &save) : NULL; o && ok;
             o = strtok_r(NULL, ":", &save))
            ok = apply_variant_option(&v, o);
        free(options);
        if (ok) {
            variants[variant_count] = v;
            found = &variants[variant_count++];
        } else
            free((char *)v.name);
    }
    pthread_mutex_unlock(&variants_lock);
    return found;
}

const bench_map_impl *bench_map_find(const char *name)
{
    for (const bench_map_impl *const *i = bench_map_impls(); *i; i++)
        if (strcmp((*i)->name, name) == 0)
            return *i;
    return strchr(name, ':') ? find_variant(name) : NULL;
}

/* Names joined by commas: thread_safe_only drops unsafe and go:map, originals adds them. */
static const char *names_list(char *names, size_t size, bool thread_safe_only, bool originals)
{
    if (!names[0])
        for (const bench_map_impl *const *i = bench_map_impls(); *i; i++) {
            if ((thread_safe_only && !(*i)->thread_safe) || (!originals && (*i)->original))
                continue;
            if (names[0])
                strncat(names, ",", size - strlen(names) - 1);
            strncat(names, (*i)->name, size - strlen(names) - 1);
        }
    return names;
}

const char *bench_map_names(bool thread_safe_only)
{
    static char lists[2][512]; /* [thread_safe_only]: built once, read by every trial */
    return names_list(lists[thread_safe_only], sizeof lists[0], thread_safe_only, false);
}

const char *bench_map_names_with_originals(void)
{
    static char list[512];
    return names_list(list, sizeof list, false, true);
}
