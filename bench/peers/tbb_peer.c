/*
 * tbb_peer.c - oneTBB's concurrent_hash_map as a harness peer, through the C shim of
 * cxx_peers.h (tbb_shim.cpp says how oneTBB is used). Nothing to register per thread and
 * nothing retired: an erased element is freed by the erasing call once no accessor holds it.
 *
 * Built only when CMake found oneTBB (CHMBENCH_HAVE_TBB). Without it the peer is still
 * listed, with the reason, and every trial naming it is reported skipped rather than silently
 * left out.
 */
#include "../chmbench.h"

#if CHMBENCH_HAVE_TBB
#include "cxx_peers.h"

#define TBB_SEED 0x5eed5eedULL /* fixed, as the other peers: no per-map seed to switch */

static bench_map *peer_create(const bench_map_impl *impl, const bench_map_options *opt)
{
    (void)impl; /* packed, concurrency, seed: nothing to switch */
    return (bench_map *)tbb_map_new(opt->capacity, TBB_SEED);
}

static void peer_destroy(bench_map *m)
{
    tbb_map_free((tbb_map *)m);
}

static bool peer_get(bench_map *m, uint64_t key, uint64_t *value)
{
    return tbb_map_get((tbb_map *)m, key, value) == CXX_PEER_OK;
}

/* An error status (a caught exception: the map is unchanged) counts as no insert, as for the
 * library's backends, so the size check after the trial stays exact. */
static bool peer_put(bench_map *m, uint64_t key, uint64_t value)
{
    return tbb_map_put((tbb_map *)m, key, value) == CXX_PEER_OK;
}

static bool peer_update(bench_map *m, uint64_t key, uint64_t value)
{
    return tbb_map_update((tbb_map *)m, key, value) == CXX_PEER_OK;
}

static bool peer_remove(bench_map *m, uint64_t key)
{
    return tbb_map_remove((tbb_map *)m, key) == CXX_PEER_OK;
}

static size_t peer_size(bench_map *m)
{
    return tbb_map_size((tbb_map *)m);
}

const bench_map_impl bench_peer_tbb = {
    .name = "tbb",
    .thread_safe = true,
    .create = peer_create,
    .destroy = peer_destroy,
    .get = peer_get,
    .put = peer_put,
    .update = peer_update,
    .remove = peer_remove,
    .size = peer_size,
};
#else
const bench_map_impl bench_peer_tbb = {
    .name = "tbb",
    .thread_safe = true,
    .unavailable = "oneTBB was not found when CMake configured this build (Debian: libtbb-dev; "
                   "tools/install-deps.sh installs it, then configure again)",
};
#endif
