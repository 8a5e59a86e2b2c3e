/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cxx_peer_adapters.c - the two C++ peers (cxx_peers.h) as harness peers: libcuckoo's
 * cuckoohash_map (`cuckoo`) and oneTBB's concurrent_hash_map (`tbb`). Their shims have the same
 * C interface, so one macro writes both adapters; each keeps direct calls into its shim (no
 * table of function pointers between the harness and the map). Nothing to register per thread
 * and nothing retired: libcuckoo frees what it replaces at once, under its bucket locks; oneTBB
 * frees an erased element in the erasing call once no accessor holds it.
 *
 * A peer is built only when CMake found its library (CHMBENCH_HAVE_CUCKOO, CHMBENCH_HAVE_TBB).
 * Without it the peer is still listed, with the reason, and every trial naming it is reported
 * skipped rather than silently left out.
 */
#include "../chmbench.h"

#if CHMBENCH_HAVE_CUCKOO || CHMBENCH_HAVE_TBB
#include "cxx_peers.h"
#endif

#define CXX_PEER_SEED 0x5eed5eedULL /* fixed, as the other peers: no per-map seed to switch */

/* The adapter of shim P (P##_map_new, P##_map_get, ...) as peer NAME. An error status (a caught
 * exception: the map is unchanged) counts as no insert / no removal, as for the library's
 * backends, so the size check after the trial stays exact. */
#define CXX_PEER_ADAPTER(P, NAME)                                                                  \
    static bench_map *P##_create(const bench_map_impl *impl, const bench_map_options *opt)         \
    {                                                                                              \
        (void)impl; /* packed, concurrency, seed: nothing to switch */                             \
        return (bench_map *)P##_map_new(opt->capacity, CXX_PEER_SEED);                             \
    }                                                                                              \
    static void P##_destroy(bench_map *m)                                                          \
    {                                                                                              \
        P##_map_free((P##_map *)m);                                                                \
    }                                                                                              \
    static bool P##_get(bench_map *m, uint64_t key, uint64_t *value)                               \
    {                                                                                              \
        return P##_map_get((P##_map *)m, key, value) == CXX_PEER_OK;                               \
    }                                                                                              \
    static bool P##_put(bench_map *m, uint64_t key, uint64_t value)                                \
    {                                                                                              \
        return P##_map_put((P##_map *)m, key, value) == CXX_PEER_OK;                               \
    }                                                                                              \
    static bool P##_update(bench_map *m, uint64_t key, uint64_t value)                             \
    {                                                                                              \
        return P##_map_update((P##_map *)m, key, value) == CXX_PEER_OK;                            \
    }                                                                                              \
    static bool P##_remove(bench_map *m, uint64_t key)                                             \
    {                                                                                              \
        return P##_map_remove((P##_map *)m, key) == CXX_PEER_OK;                                   \
    }                                                                                              \
    static size_t P##_size(bench_map *m)                                                           \
    {                                                                                              \
        return P##_map_size((P##_map *)m);                                                         \
    }                                                                                              \
    const bench_map_impl bench_peer_##P = {                                                        \
        .name = NAME,                                                                              \
        .thread_safe = true,                                                                       \
        .create = P##_create,                                                                      \
        .destroy = P##_destroy,                                                                    \
        .get = P##_get,                                                                            \
        .put = P##_put,                                                                            \
        .update = P##_update,                                                                      \
        .remove = P##_remove,                                                                      \
        .size = P##_size,                                                                          \
    }

/* A peer this build lacks: listed, with why and how to get it. */
#define CXX_PEER_UNAVAILABLE(P, NAME, WHY)                                                         \
    const bench_map_impl bench_peer_##P = {.name = NAME, .thread_safe = true, .unavailable = WHY}

#if CHMBENCH_HAVE_CUCKOO
CXX_PEER_ADAPTER(cuckoo, "cuckoo");
#else
CXX_PEER_UNAVAILABLE(cuckoo, "cuckoo",
                     "libcuckoo was not found when CMake configured this build (Debian: "
                     "libcuckoo-dev; tools/install-deps.sh installs it, then configure again)");
#endif

#if CHMBENCH_HAVE_TBB
CXX_PEER_ADAPTER(tbb, "tbb");
#else
CXX_PEER_UNAVAILABLE(tbb, "tbb",
                     "oneTBB was not found when CMake configured this build (Debian: libtbb-dev; "
                     "tools/install-deps.sh installs it, then configure again)");
#endif
