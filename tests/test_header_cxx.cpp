// SPDX-License-Identifier: BSD-2-Clause
// test_header_cxx.cpp - chm.h compiles as C++ (-Wall -Wextra -Werror, and -Wpedantic as an
// error while the header is read), has C linkage (the names link against the C library), and
// every public name of the contract exists with the declared type.
#pragma GCC diagnostic error "-Wpedantic"
#include "chm.h" // first: the header must be self-contained
#pragma GCC diagnostic warning "-Wpedantic"

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <type_traits>

// ---- compile-time checks -------------------------------------------------------------------

static_assert(CHM_OK == 0 && CHM_NOTFOUND == 1 && CHM_EXISTS == 2 && CHM_END == 3, "codes");
static_assert(CHM_EINVAL == -1 && CHM_ENOMEM == -2 && CHM_ECONCURRENT == -3 && CHM_ERACE == -4,
              "error codes");
static_assert(CHM_RACE_ABORT == 0 && CHM_RACE_RETURN != CHM_RACE_ABORT, "race policy");
static_assert(CHM_RWLOCK_ADAPTIVE == 0 && CHM_RWLOCK_CK == 1 && CHM_RWLOCK_PTHREAD == 2,
              "rwlock kinds: zeroed options pick the default, CHM_RWLOCK_ADAPTIVE");
static_assert(sizeof(chm_iter) == CHM_ITER_SIZE, "chm_iter size");
static_assert(alignof(chm_iter) == 16, "chm_iter alignment");
static_assert(std::is_standard_layout<chm_options>::value, "chm_options is a C struct");
static_assert(std::is_standard_layout<chm_keyops>::value, "chm_keyops is a C struct");
static_assert(std::is_trivially_copyable<chm_iter>::value, "chm_iter is a C struct");

// Exact types of every function of the contract (a mismatch does not compile).
static_assert(
    std::is_same<decltype(&chm_backend_find), const chm_backend *(*)(const char *)>::value,
    "chm_backend_find");
static_assert(
    std::is_same<decltype(&chm_backend_name), const char *(*)(const chm_backend *)>::value,
    "chm_backend_name");
static_assert(std::is_same<decltype(&chm_backend_list), const chm_backend *const *(*)()>::value,
              "chm_backend_list");
static_assert(
    std::is_same<decltype(&chm_backend_thread_safe), bool (*)(const chm_backend *)>::value,
    "chm_backend_thread_safe");
static_assert(std::is_same<decltype(&chm_strerror), const char *(*)(int)>::value, "chm_strerror");
static_assert(
    std::is_same<decltype(&chm_new), chm *(*)(const chm_backend *, const chm_options *)>::value,
    "chm_new");
static_assert(std::is_same<decltype(&chm_free), void (*)(chm *)>::value, "chm_free");
static_assert(std::is_same<decltype(&chm_get), int (*)(chm *, uint64_t, uint64_t *)>::value,
              "chm_get");
static_assert(
    std::is_same<decltype(&chm_put), int (*)(chm *, uint64_t, uint64_t, uint64_t *)>::value,
    "chm_put");
static_assert(std::is_same<decltype(&chm_put_if_absent),
                           int (*)(chm *, uint64_t, uint64_t, uint64_t *)>::value,
              "chm_put_if_absent");
static_assert(std::is_same<decltype(&chm_remove), int (*)(chm *, uint64_t, uint64_t *)>::value,
              "chm_remove");
static_assert(
    std::is_same<decltype(&chm_replace), int (*)(chm *, uint64_t, uint64_t, uint64_t)>::value,
    "chm_replace");
static_assert(std::is_same<chm_compute_fn, uint64_t(uint64_t, void *)>::value, "chm_compute_fn");
static_assert(std::is_same<decltype(&chm_compute_if_absent),
                           int (*)(chm *, uint64_t, chm_compute_fn *, void *, uint64_t *)>::value,
              "chm_compute_if_absent");
static_assert(std::is_same<chm_update_fn,
                           chm_compute_action(uint64_t, bool, uint64_t, uint64_t *, void *)>::value,
              "chm_update_fn");
static_assert(std::is_same<decltype(&chm_compute),
                           int (*)(chm *, uint64_t, chm_update_fn *, void *, uint64_t *)>::value,
              "chm_compute");
static_assert(std::is_same<decltype(&chm_remove_if), int (*)(chm *, uint64_t, uint64_t)>::value,
              "chm_remove_if");
static_assert(std::is_same<decltype(&chm_clear), int (*)(chm *)>::value, "chm_clear");
static_assert(std::is_same<chm_visit_fn, void(uint64_t, uint64_t, void *)>::value, "chm_visit_fn");
static_assert(
    std::is_same<decltype(&chm_visit), int (*)(chm *, uint64_t, chm_visit_fn *, void *)>::value,
    "chm_visit");
static_assert(std::is_same<decltype(&chm_stats_get), int (*)(chm *, chm_stats *)>::value,
              "chm_stats_get");
static_assert(std::is_same<decltype(&chm_backend_caps), unsigned (*)(const chm_backend *)>::value,
              "chm_backend_caps");
static_assert(std::is_standard_layout<chm_stats>::value, "chm_stats is a C struct");
static_assert(CHM_EDEADLK == -5 && CHM_COMPUTE_KEEP == 0, "status and compute codes");
static_assert(std::is_same<decltype(&chm_size), size_t (*)(chm *)>::value, "chm_size");
static_assert(std::is_same<decltype(&chm_iter_init), int (*)(chm_iter *, chm *)>::value,
              "chm_iter_init");
static_assert(
    std::is_same<decltype(&chm_iter_next), int (*)(chm_iter *, uint64_t *, uint64_t *)>::value,
    "chm_iter_next");
static_assert(std::is_same<decltype(&chm_iter_fini), void (*)(chm_iter *)>::value, "chm_iter_fini");
static_assert(std::is_same<decltype(&chm_map_backend), const chm_backend *(*)(const chm *)>::value,
              "chm_map_backend");
static_assert(std::is_same<decltype(&chm_reclaim), int (*)(chm *)>::value, "chm_reclaim");
static_assert(std::is_same<decltype(&chm_hash_u64), uint64_t (*)(uint64_t, uint64_t)>::value,
              "chm_hash_u64");
static_assert(
    std::is_same<decltype(&chm_hash_bytes), uint64_t (*)(const void *, size_t, uint64_t)>::value,
    "chm_hash_bytes");

// Externs and struct fields.
static_assert(std::is_same<decltype(chm_unsafe), const chm_backend>::value, "chm_unsafe");
static_assert(std::is_same<decltype(chm_rwlock), const chm_backend>::value, "chm_rwlock");
static_assert(std::is_same<decltype(chm_segmented), const chm_backend>::value, "chm_segmented");
static_assert(std::is_same<decltype(chm_binlock), const chm_backend>::value, "chm_binlock");
static_assert(std::is_same<decltype(chm_readmostly), const chm_backend>::value, "chm_readmostly");
static_assert(std::is_same<decltype(chm_keys_u64), const chm_keyops>::value, "chm_keys_u64");
static_assert(std::is_same<decltype(chm_keys_string), const chm_keyops>::value, "chm_keys_string");
static_assert(std::is_same<decltype(chm_keyops::hash), uint64_t (*)(uint64_t, uint64_t)>::value,
              "hash");
static_assert(std::is_same<decltype(chm_keyops::equal), bool (*)(uint64_t, uint64_t)>::value,
              "equal");
static_assert(std::is_same<decltype(chm_keyops::compare), int (*)(uint64_t, uint64_t)>::value,
              "compare");
static_assert(std::is_same<decltype(chm_keyops::retain), bool (*)(uint64_t, uint64_t *)>::value,
              "retain");
static_assert(std::is_same<decltype(chm_keyops::release), void (*)(uint64_t)>::value, "release");
static_assert(std::is_same<decltype(chm_options::capacity), size_t>::value, "capacity");
static_assert(std::is_same<decltype(chm_options::concurrency), unsigned>::value, "concurrency");
static_assert(std::is_same<decltype(chm_options::keys), const chm_keyops *>::value, "keys");
static_assert(std::is_same<decltype(chm_options::seed), uint64_t>::value, "seed");
static_assert(std::is_same<decltype(chm_options::on_race), chm_race_policy>::value, "on_race");
static_assert(std::is_same<decltype(chm_options::value_free), void (*)(uint64_t, void *)>::value,
              "value_free");
static_assert(std::is_same<decltype(chm_options::ctx), void *>::value, "ctx");
static_assert(offsetof(chm_options, capacity) == 0, "capacity is the first field");
static_assert(offsetof(chm_options, capacity) < offsetof(chm_options, concurrency) &&
                  offsetof(chm_options, concurrency) < offsetof(chm_options, keys) &&
                  offsetof(chm_options, keys) < offsetof(chm_options, seed) &&
                  offsetof(chm_options, seed) < offsetof(chm_options, on_race) &&
                  offsetof(chm_options, on_race) < offsetof(chm_options, value_free) &&
                  offsetof(chm_options, value_free) < offsetof(chm_options, ctx),
              "the contract's fields come first, in the contract's order");

// ---- a small run (proves C linkage of every name) ------------------------------------------

static int passed, failed;
static int checks_failed;

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            std::printf("    %s:%d: FAILED: CHECK(%s)\n", __FILE__, __LINE__, #c);                 \
            checks_failed++;                                                                       \
        }                                                                                          \
    } while (0)

static unsigned long frees;
static void count_free(uint64_t, void *ctx)
{
    frees += ctx == &frees ? 1 : 1000;
}

static uint64_t twice(uint64_t key, void *arg)
{
    return key * 2 + (arg != nullptr ? 1 : 0);
}

static void run(const char *name, void (*fn)())
{
    checks_failed = 0;
    std::printf("[ RUN      ] %s\n", name);
    fn();
    if (checks_failed == 0) {
        passed++;
        std::printf("[       OK ] %s\n", name);
    } else {
        failed++;
        std::printf("[  FAILED  ] %s\n", name);
    }
}

static void test_every_backend()
{
    int n = 0;
    for (const chm_backend *const *p = chm_backend_list(); *p != nullptr; p++, n++) {
        const chm_backend *b = *p;
        CHECK(chm_backend_find(chm_backend_name(b)) == b);
        CHECK(chm_backend_thread_safe(b) == ((chm_backend_caps(b) & CHM_CAP_THREAD_SAFE) != 0));

        chm_options o{};
        o.capacity = 0;
        o.concurrency = 0;
        o.keys = &chm_keys_u64;
        o.seed = 1;
        o.on_race = CHM_RACE_ABORT;
        o.value_free = count_free;
        o.ctx = &frees;
        frees = 0;
        chm *m = chm_new(b, &o);
        CHECK(m != nullptr);
        if (m == nullptr)
            continue;
        CHECK(chm_map_backend(m) == b);
        uint64_t v = 0;
        CHECK(chm_put(m, 5, 50, nullptr) == CHM_OK);
        CHECK(chm_put(m, 5, 51, &v) == CHM_EXISTS && v == 50);
        CHECK(chm_put_if_absent(m, 5, 52, &v) == CHM_EXISTS && v == 51);
        CHECK(chm_replace(m, 5, 51, 53) == CHM_OK);
        CHECK(chm_get(m, 5, &v) == CHM_OK && v == 53);
        CHECK(chm_compute_if_absent(m, 6, twice, nullptr, &v) == CHM_OK && v == 12);
        CHECK(chm_size(m) == 2);
        chm_iter it;
        CHECK(chm_iter_init(&it, m) == CHM_OK);
        uint64_t k, sum = 0;
        int rc;
        while ((rc = chm_iter_next(&it, &k, &v)) == CHM_OK)
            sum += k * 1000 + v;
        CHECK(rc == CHM_END);
        chm_iter_fini(&it);
        CHECK(sum == 5053 + 6012);
        CHECK(chm_remove(m, 5, &v) == CHM_OK && v == 53);
        chm_free(m);
        CHECK(frees == 4);

        // string keys through the C++ front door
        chm_options so{};
        so.keys = &chm_keys_string;
        chm *s = chm_new(b, &so);
        CHECK(s != nullptr);
        char buf[16];
        std::snprintf(buf, sizeof buf, "alpha");
        CHECK(chm_put(s, reinterpret_cast<uint64_t>(buf), 1, nullptr) == CHM_OK);
        std::snprintf(buf, sizeof buf, "beta");
        CHECK(chm_get(s, reinterpret_cast<uint64_t>("alpha"), &v) == CHM_OK && v == 1);
        CHECK(chm_get(s, reinterpret_cast<uint64_t>(buf), &v) == CHM_NOTFOUND);
        chm_free(s);
    }
    CHECK(n >= 2);
    CHECK(chm_backend_find("nope") == nullptr);
    CHECK(chm_backend_name(nullptr) == nullptr);
    CHECK(chm_hash_u64(1, 2) == chm_hash_u64(1, 2));
    CHECK(chm_hash_bytes("xy", 2, 3) == chm_hash_bytes("xy", 2, 3));
    for (int c = CHM_ERACE; c <= CHM_END; c++)
        CHECK(chm_strerror(c) != nullptr);
    errno = 0;
    CHECK(chm_new(nullptr, nullptr) == nullptr && errno == EINVAL);
    CHECK(chm_get(nullptr, 1, nullptr) == CHM_EINVAL);
    chm_free(nullptr);
    (void)&chm_unsafe;
    (void)&chm_rwlock;
    (void)&chm_keys_string;
}

int main()
{
    run("header_cxx/every_backend", test_every_backend);
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
