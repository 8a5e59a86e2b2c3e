/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * cxx_peers.h - the C interface of the two C++ peers, each behind one C++ file:
 *
 *   cuckoo_shim.cpp   libcuckoo's libcuckoo::cuckoohash_map<uint64_t, uint64_t>
 *   tbb_shim.cpp      oneTBB's tbb::concurrent_hash_map<uint64_t, uint64_t>
 *
 * Both are used as their headers document for concurrent use (see each .cpp). Every call is
 * noexcept on the C++ side and catches what the library can throw: no C++ exception ever
 * unwinds into a C frame. A call that caught one reports it as a status and leaves the map as
 * it was (both libraries give the strong guarantee for these operations), so the harness's
 * size invariant still holds. The C adapters (cxx_peer_adapters.c) turn these maps into
 * harness peers.
 */
#ifndef CXX_PEERS_H
#define CXX_PEERS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define CXX_PEER_NOEXCEPT noexcept
extern "C" {
#else
#define CXX_PEER_NOEXCEPT
#endif

/* What every call that touches a key returns. */
enum cxx_peer_status {
    CXX_PEER_OK = 0,       /* get: found; put: a new key; remove: removed; update: updated */
    CXX_PEER_NOTFOUND = 1, /* get, remove, update: the key is absent (update inserts nothing) */
    CXX_PEER_EXISTS = 2,   /* put: the key was present, its value is replaced */
    CXX_PEER_ENOMEM = -1,  /* std::bad_alloc was thrown; the map is unchanged */
    CXX_PEER_EFAIL = -2    /* another exception (libcuckoo: load_factor_too_low,
                              maximum_hashpower_exceeded); the map is unchanged */
};

/* libcuckoo. capacity: entries to reserve room for (0: the smallest table, grown on demand);
 * keys are hashed with chm_hash_u64(key, seed). NULL when the map cannot be made. */
typedef struct cuckoo_map cuckoo_map;
cuckoo_map *cuckoo_map_new(size_t capacity, uint64_t seed) CXX_PEER_NOEXCEPT;
void cuckoo_map_free(cuckoo_map *m) CXX_PEER_NOEXCEPT; /* NULL: no-op; not concurrent */
int cuckoo_map_get(const cuckoo_map *m, uint64_t key, uint64_t *value) CXX_PEER_NOEXCEPT;
int cuckoo_map_put(cuckoo_map *m, uint64_t key, uint64_t value) CXX_PEER_NOEXCEPT;
int cuckoo_map_update(cuckoo_map *m, uint64_t key, uint64_t value) CXX_PEER_NOEXCEPT;
int cuckoo_map_remove(cuckoo_map *m, uint64_t key) CXX_PEER_NOEXCEPT;
size_t cuckoo_map_size(const cuckoo_map *m) CXX_PEER_NOEXCEPT; /* exact when quiescent */

/* oneTBB, the same contract. */
typedef struct tbb_map tbb_map;
tbb_map *tbb_map_new(size_t capacity, uint64_t seed) CXX_PEER_NOEXCEPT;
void tbb_map_free(tbb_map *m) CXX_PEER_NOEXCEPT;
int tbb_map_get(const tbb_map *m, uint64_t key, uint64_t *value) CXX_PEER_NOEXCEPT;
int tbb_map_put(tbb_map *m, uint64_t key, uint64_t value) CXX_PEER_NOEXCEPT;
int tbb_map_update(tbb_map *m, uint64_t key, uint64_t value) CXX_PEER_NOEXCEPT;
int tbb_map_remove(tbb_map *m, uint64_t key) CXX_PEER_NOEXCEPT;
size_t tbb_map_size(const tbb_map *m) CXX_PEER_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
