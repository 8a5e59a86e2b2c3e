/*
 * maps.c - the harness's map interface over the library's backends (every entry of
 * chm_backend_list(), so a new backend is benchmarked without touching the harness), followed
 * by the peers of bench/peers/.
 */
#include "chmbench.h"

#include "chm.h"

#include <stdlib.h>
#include <string.h>

static bench_map *chm_adapter_create(const bench_map_impl *impl, size_t capacity)
{
    chm_options options = {0};
    options.capacity = capacity; /* presized: no resize inside the measured window */
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

static bool chm_adapter_remove(bench_map *m, uint64_t key)
{
    return chm_remove((chm *)m, key, NULL) == CHM_OK;
}

static size_t chm_adapter_size(bench_map *m)
{
    return chm_size((chm *)m);
}

#define MAX_IMPLS 24
static bench_map_impl chm_impls[MAX_IMPLS];
static const bench_map_impl *all_impls[MAX_IMPLS + 1];

const bench_map_impl *const *bench_map_impls(void)
{
    if (all_impls[0])
        return all_impls;
    int n = 0;
    for (const chm_backend *const *b = chm_backend_list(); *b && n < MAX_IMPLS - 2; b++, n++) {
        chm_impls[n] = (bench_map_impl){
            .name = chm_backend_name(*b),
            .thread_safe = chm_backend_thread_safe(*b),
            .chm_backend = *b,
            .create = chm_adapter_create,
            .destroy = chm_adapter_destroy,
            .get = chm_adapter_get,
            .put = chm_adapter_put,
            .remove = chm_adapter_remove,
            .size = chm_adapter_size,
        };
        all_impls[n] = &chm_impls[n];
    }
    all_impls[n++] = &bench_peer_ck_ht;
    all_impls[n++] = &bench_peer_lfht;
    all_impls[n] = NULL;
    return all_impls;
}

const bench_map_impl *bench_map_find(const char *name)
{
    for (const bench_map_impl *const *i = bench_map_impls(); *i; i++)
        if (strcmp((*i)->name, name) == 0)
            return *i;
    return NULL;
}
