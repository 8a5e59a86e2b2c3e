/*
 * cuckoo_peer.c - libcuckoo's cuckoohash_map as a harness peer, through the C shim of
 * cxx_peers.h (cuckoo_shim.cpp says how libcuckoo is used). Nothing to register per thread and
 * nothing retired: libcuckoo frees what it replaces at once, under its bucket locks.
 *
 * Built only when CMake found libcuckoo (CHMBENCH_HAVE_CUCKOO). Without it the peer is still
 * listed, with the reason, and every trial naming it is reported skipped rather than silently
 * left out.
 */
#include "../chmbench.h"

#if CHMBENCH_HAVE_CUCKOO
#include "cxx_peers.h"

#define CUCKOO_SEED 0x5eed5eedULL /* fixed, as the other peers: no per-map seed to switch */

static bench_map *peer_create(const bench_map_impl *impl, const bench_map_options *opt)
{
    (void)impl; /* packed, concurrency, seed: nothing to switch */
    return (bench_map *)cuckoo_map_new(opt->capacity, CUCKOO_SEED);
}

static void peer_destroy(bench_map *m)
{
    cuckoo_map_free((cuckoo_map *)m);
}

static bool peer_get(bench_map *m, uint64_t key, uint64_t *value)
{
    return cuckoo_map_get((cuckoo_map *)m, key, value) == CXX_PEER_OK;
}

/* An error status (a caught exception: the map is unchanged) counts as no insert, as for the
 * library's backends, so the size check after the trial stays exact. */
static bool peer_put(bench_map *m, uint64_t key, uint64_t value)
{
    return cuckoo_map_put((cuckoo_map *)m, key, value) == CXX_PEER_OK;
}

static bool peer_update(bench_map *m, uint64_t key, uint64_t value)
{
    return cuckoo_map_update((cuckoo_map *)m, key, value) == CXX_PEER_OK;
}

static bool peer_remove(bench_map *m, uint64_t key)
{
    return cuckoo_map_remove((cuckoo_map *)m, key) == CXX_PEER_OK;
}

static size_t peer_size(bench_map *m)
{
    return cuckoo_map_size((cuckoo_map *)m);
}

const bench_map_impl bench_peer_cuckoo = {
    .name = "cuckoo",
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
const bench_map_impl bench_peer_cuckoo = {
    .name = "cuckoo",
    .thread_safe = true,
    .unavailable =
        "libcuckoo was not found when CMake configured this build (Debian: libcuckoo-dev; "
        "tools/install-deps.sh installs it, then configure again)",
};
#endif
