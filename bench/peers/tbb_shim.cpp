// SPDX-License-Identifier: BSD-2-Clause
// tbb_shim.cpp - oneTBB's concurrent_hash_map<uint64_t, uint64_t> behind cxx_peers.h, used as
// oneapi/tbb/concurrent_hash_map.h documents it:
//
//   - Elements are reached through accessors, which hold the element's lock for as long as they
//     live: a const_accessor a read lock (find for reading), an accessor a write lock (insert or
//     find for writing). Each accessor here lives inside one call and is released at its end, so
//     no thread ever holds an element between calls (holding one while calling the map again
//     could deadlock, and an erase of that key would wait for it).
//   - get = find(const_accessor) and a copy of the value under the read lock; put =
//     insert(accessor) (true: a new key, default-constructed, then assigned under the write lock,
//     so no reader sees it before its value); update = find(accessor) and an assignment under the
//     write lock (an absent key is not inserted); remove = erase(key) (true: erased by this
//     call); size = size() (an atomic counter, exact when quiescent).
//   - Created with `capacity` preallocated buckets (the constructor's reserve), 0 = grown on
//     demand.
//   - Allocator: std::allocator (glibc malloc, as every other map of the comparison) instead of
//     the default tbb_allocator, which switches to libtbbmalloc when it is installed: the harness
//     compares maps, not allocators, and the memory benchmark reads glibc's statistics, which
//     would not see tbbmalloc's memory.
//   - Keys are hashed with chm_hash_u64, as the other peers do (TBB's default for integers is the
//     identity, whose low bits pick the bucket).
//   - insert may throw std::bad_alloc (a node); the map is then unchanged. Each exception is
//     caught here and returned as a status (cxx_peers.h).
#include "cxx_peers.h"

#include "chm.h"

#include <oneapi/tbb/concurrent_hash_map.h>

#include <memory>
#include <new>
#include <utility>

namespace
{

struct SeededHashCompare {
    uint64_t seed = 0;
    size_t hash(uint64_t key) const
    {
        return (size_t)chm_hash_u64(key, seed);
    }
    bool equal(uint64_t a, uint64_t b) const
    {
        return a == b;
    }
};

using Table = tbb::concurrent_hash_map<uint64_t, uint64_t, SeededHashCompare,
                                       std::allocator<std::pair<const uint64_t, uint64_t>>>;

} // namespace

struct tbb_map {
    Table table;
    tbb_map(size_t capacity, uint64_t seed) : table(capacity, SeededHashCompare{seed})
    {
    }
};

extern "C" tbb_map *tbb_map_new(size_t capacity, uint64_t seed) noexcept
{
    try {
        return new tbb_map(capacity, seed);
    } catch (...) {
        return nullptr;
    }
}

extern "C" void tbb_map_free(tbb_map *m) noexcept
{
    delete m;
}

extern "C" int tbb_map_get(const tbb_map *m, uint64_t key, uint64_t *value) noexcept
{
    try {
        Table::const_accessor element;
        if (!m->table.find(element, key))
            return CXX_PEER_NOTFOUND;
        *value = element->second;
        return CXX_PEER_OK;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" int tbb_map_put(tbb_map *m, uint64_t key, uint64_t value) noexcept
{
    try {
        Table::accessor element;
        bool fresh = m->table.insert(element, key);
        element->second = value;
        return fresh ? CXX_PEER_OK : CXX_PEER_EXISTS;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" int tbb_map_update(tbb_map *m, uint64_t key, uint64_t value) noexcept
{
    try {
        Table::accessor element;
        if (!m->table.find(element, key))
            return CXX_PEER_NOTFOUND;
        element->second = value;
        return CXX_PEER_OK;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" int tbb_map_remove(tbb_map *m, uint64_t key) noexcept
{
    try {
        return m->table.erase(key) ? CXX_PEER_OK : CXX_PEER_NOTFOUND;
    } catch (const std::bad_alloc &) {
        return CXX_PEER_ENOMEM;
    } catch (...) {
        return CXX_PEER_EFAIL;
    }
}

extern "C" size_t tbb_map_size(const tbb_map *m) noexcept
{
    return m->table.size();
}
