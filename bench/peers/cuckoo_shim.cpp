// SPDX-License-Identifier: BSD-2-Clause
// cuckoo_shim.cpp - libcuckoo's cuckoohash_map<uint64_t, uint64_t> behind cxx_peers.h, used as
// libcuckoo/cuckoohash_map.hh documents it:
//
//   - "Table Operations ... are safe to call concurrently with each other": find, insert_or_assign,
//     update and erase each lock the key's two buckets (striped spinlocks) for the call only, so
//     no registration, epoch or accessor is needed. Values are copied out under the lock (find).
//   - put = insert_or_assign (true: a new key), update = update (true: the key was there; an
//     absent key is not inserted), remove = erase, size = size() (per-lock counters summed:
//     exact when no write is in flight, as the harness reads it).
//   - Created with room for `capacity` entries (the constructor's reserve); 0 gives the smallest
//     table, grown by the inserting thread (cuckoo_fast_double) as a user's map would be.
//   - Keys are hashed with chm_hash_u64, as the other peers do: std::hash<uint64_t> is the
//     identity, and libcuckoo derives both bucket indexes and its 8-bit partial key from the
//     hash, so raw keys would hand it a worse hash than every other map gets.
//   - Growing allocates a new bucket array and may throw std::bad_alloc, or
//     load_factor_too_low / maximum_hashpower_exceeded; libcuckoo then leaves the table as it
//     was. Each is caught here and returned as a status (cxx_peers.h).
#include "cxx_peers.h"

#include "chm.h"

#include <libcuckoo/cuckoohash_map.hh>

#include <new>

namespace
{

struct SeededHash {
    uint64_t seed = 0;
    size_t operator()(uint64_t key) const noexcept
    {
        return (size_t)chm_hash_u64(key, seed);
    }
};

using Table = libcuckoo::cuckoohash_map<uint64_t, uint64_t, SeededHash>;

} // namespace

struct cuckoo_map {
    Table table;
    cuckoo_map(size_t capacity, uint64_t seed) : table(capacity, SeededHash{seed})
    {
    }
};

extern "C" cuckoo_map *cuckoo_map_new(size_t capacity, uint64_t seed) noexcept
{
    try {
        return new cuckoo_map(capacity, seed);
    } catch (...) {
        return nullptr;
    }
}

extern "C" void cuckoo_map_free(cuckoo_map *m) noexcept
{
    delete m; // the destructor frees the buckets; nothing in it throws
}

extern "C" int cuckoo_map_get(const cuckoo_map *m, uint64_t key, uint64_t *value) noexcept
{
    try {
        return m->table.find(key, *value) ? CXX_PEER_OK : CXX_PEER_NOTFOUND;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" int cuckoo_map_put(cuckoo_map *m, uint64_t key, uint64_t value) noexcept
{
    try {
        return m->table.insert_or_assign(key, value) ? CXX_PEER_OK : CXX_PEER_EXISTS;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" int cuckoo_map_update(cuckoo_map *m, uint64_t key, uint64_t value) noexcept
{
    try {
        return m->table.update(key, value) ? CXX_PEER_OK : CXX_PEER_NOTFOUND;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" int cuckoo_map_remove(cuckoo_map *m, uint64_t key) noexcept
{
    try {
        return m->table.erase(key) ? CXX_PEER_OK : CXX_PEER_NOTFOUND;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" size_t cuckoo_map_size(const cuckoo_map *m) noexcept
{
    return m->table.size(); // sums counters, allocates nothing
}
